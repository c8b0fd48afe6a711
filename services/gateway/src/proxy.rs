//! Forwarding: every call the gateway does not answer itself goes to the service that owns its
//! package (`/crm.<area>.v1.Service/Method` → `<area>`), as HTTP/2 frames, without decoding the
//! message, on one bare hyper HTTP/2 connection per service. Streams and large messages pass through;
//! `grpc-timeout` travels with the headers, and the gateway's own deadline handling cancels the forward when it expires.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use axum::body::Body;
use crm_kit::Settings;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::Status;

/// The forwarding service (the gateway router's fallback).
#[derive(Clone)]
pub struct Proxy {
    routes: Arc<HashMap<String, Arc<Upstream>>>,
}

/// One service's address and the HTTP/2 connection to it, made on first use and again after it
/// broke. Every call is a stream on that one connection: no request buffer and no task of its
/// own between the gateway's call and hyper's connection (what tonic's `Channel` adds).
struct Upstream {
    name: String,
    /// `host:port`, to connect to.
    addr: String,
    /// The URI scheme and authority the forwarded requests carry.
    authority: http::uri::Authority,
    /// The live connection's sender, if there is one.
    sender: Mutex<Option<SendRequest<Body>>>,
    /// Held while connecting, so a burst of calls after a break makes one connection.
    connecting: tokio::sync::Mutex<()>,
}

impl Upstream {
    fn new(name: &str, url: &str) -> anyhow::Result<Self> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| anyhow::anyhow!("services.{name}.url {url:?}: {e}"))?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http"),
            "services.{name}.url {url:?}: the gateway forwards over plain HTTP/2 (http://host:port)"
        );
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("services.{name}.url {url:?} has no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        Ok(Self {
            name: name.to_string(),
            addr: format!("{}:{port}", authority.host()),
            authority,
            sender: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
        })
    }

    fn live(&self) -> Option<SendRequest<Body>> {
        let guard = self.sender.lock().expect("upstream lock");
        guard.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    /// The live connection, or a new one.
    async fn sender(&self) -> anyhow::Result<SendRequest<Body>> {
        if let Some(sender) = self.live() {
            return Ok(sender);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(sender) = self.live() {
            return Ok(sender);
        }
        let stream = tokio::net::TcpStream::connect(&self.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .adaptive_window(true)
            .handshake(TokioIo::new(stream))
            .await?;
        let name = self.name.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(service = name, error = %e, "connection to the service ended");
            }
        });
        *self.sender.lock().expect("upstream lock") = Some(sender.clone());
        Ok(sender)
    }

    /// Forgets a connection that failed a call, so the next call connects again.
    fn broken(&self) {
        *self.sender.lock().expect("upstream lock") = None;
    }

    async fn forward(
        &self,
        mut request: http::Request<Body>,
    ) -> anyhow::Result<http::Response<Body>> {
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        *request.uri_mut() = http::Uri::builder()
            .scheme(http::uri::Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()?;
        // a gRPC-Web or JSON call may have come over HTTP/1.1; it leaves as HTTP/2
        *request.version_mut() = http::Version::HTTP_2;
        // a body whose size is known but not declared (tonic-web's text mode keeps the base64
        // text's length as the decoded body's size): hyper would declare that length and the
        // service would refuse the shorter stream, so it goes without one
        if !request.headers().contains_key(http::header::CONTENT_LENGTH)
            && http_body::Body::size_hint(request.body()).exact().is_some()
        {
            request = request.map(|b| Body::new(Unsized(b)));
        }
        let mut sender = self.sender().await?;
        match sender.send_request(request).await {
            Ok(response) => Ok(response.map(Body::new)),
            Err(e) => {
                self.broken();
                Err(e.into())
            }
        }
    }
}

impl Proxy {
    /// Lazily connected upstreams for every configured service but the gateway.
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let mut routes = HashMap::new();
        for (name, endpoint) in &settings.services {
            if name == crate::NAME {
                continue;
            }
            routes.insert(name.clone(), Arc::new(Upstream::new(name, &endpoint.url)?));
        }
        Ok(Self {
            routes: Arc::new(routes),
        })
    }

    /// The service area of a gRPC path, e.g. `customers` for `/crm.customers.v1.X/Y`.
    pub fn area(path: &str) -> Option<&str> {
        let rest = path.strip_prefix("/crm.")?;
        let (area, _) = rest.split_once('.')?;
        Some(area)
    }
}

/// A body that does not say its size (see [`Upstream::forward`]).
struct Unsized(Body);

impl http_body::Body for Unsized {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl tower::Service<http::Request<Body>> for Proxy {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let upstream = Self::area(request.uri().path()).and_then(|a| self.routes.get(a).cloned());
        let Some(upstream) = upstream else {
            let status =
                Status::unimplemented(format!("no service serves {}", request.uri().path()));
            return Box::pin(async move { Ok(status.into_http()) });
        };
        Box::pin(async move {
            // inside the call's span (the future is polled in it): the service's span becomes
            // a child of the gateway's, not a sibling
            crm_kit::telemetry::inject_into_headers(request.headers_mut());
            match upstream.forward(request).await {
                Ok(response) => Ok(response),
                Err(e) => {
                    tracing::warn!(service = upstream.name, error = %e, "forwarding failed");
                    Ok(
                        Status::unavailable(format!(
                            "the {} service is unavailable",
                            upstream.name
                        ))
                        .into_http(),
                    )
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn areas_come_from_the_package() {
        assert_eq!(
            super::Proxy::area("/crm.customers.v1.CustomerService/GetCustomer"),
            Some("customers")
        );
        assert_eq!(super::Proxy::area("/grpc.health.v1.Health/Check"), None);
    }
}
