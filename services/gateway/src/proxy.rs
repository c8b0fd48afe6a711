//! Forwarding: every call the gateway does not answer itself goes to the service that owns its
//! package (`/crm.<area>.v1.Service/Method` → `<area>`), as HTTP/2 frames, without decoding the
//! message. Streams and large messages pass through; `grpc-timeout` travels with the headers,
//! and the gateway's own deadline handling cancels the forward when it expires.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use crm_kit::Settings;
use tonic::{Status, transport::Channel};

/// The forwarding service (the gateway router's fallback).
#[derive(Clone)]
pub struct Proxy {
    routes: Arc<HashMap<String, Channel>>,
}

impl Proxy {
    /// Lazily connected channels to every configured service but the gateway.
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let mut routes = HashMap::new();
        for (name, endpoint) in &settings.services {
            if name == crate::NAME {
                continue;
            }
            let channel = Channel::from_shared(endpoint.url.clone())
                .map_err(|e| anyhow::anyhow!("services.{name}.url {:?}: {e}", endpoint.url))?
                .tcp_nodelay(true)
                .http2_adaptive_window(true)
                .connect_lazy();
            routes.insert(name.clone(), channel);
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

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl tower::Service<http::Request<axum::body::Body>> for Proxy {
    type Response = http::Response<axum::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        let path = request.uri().path().to_string();
        let Some((area, channel)) =
            Self::area(&path).and_then(|a| self.routes.get(a).map(|c| (a.to_string(), c.clone())))
        else {
            let status = Status::unimplemented(format!("no service serves {path}"));
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let mut request = request.map(tonic::body::Body::new);
        Box::pin(async move {
            // inside the call's span (the future is polled in it): the service's span becomes
            // a child of the gateway's, not a sibling
            crm_kit::telemetry::inject_into_headers(request.headers_mut());
            let mut channel = channel;
            match tower::ServiceExt::oneshot(&mut channel, request).await {
                Ok(response) => Ok(response.map(axum::body::Body::new)),
                Err(e) => {
                    tracing::warn!(service = area, error = %e, "forwarding failed");
                    Ok(
                        Status::unavailable(format!("the {area} service is unavailable"))
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
