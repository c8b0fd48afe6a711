//! Serving one service: its routes plus grpc.health.v1 and server reflection (v1 and v1alpha),
//! the tracing span of every call, and graceful shutdown.

use std::{net::SocketAddr, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{
    Code,
    server::NamedService,
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::ServingStatus;

use crate::{audit::AuditReader, auth::Security, ratelimit::Limits, telemetry};
use crm_proto::audit::v1::audit_service_server::AuditServiceServer;

/// Binds a listener; port 0 picks a free port (see [`TcpListener::local_addr`]).
pub async fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    Ok(listener)
}

/// The gRPC name of a generated server type, e.g. `crm.customers.v1.CustomerService`.
pub fn service_name<S: NamedService>(_: &S) -> &'static str {
    S::NAME
}

/// How [`serve_with`] serves.
pub struct Options<'a> {
    /// The gRPC services of the routes, reported by health.
    pub names: &'a [&'static str],
    /// The services reflection advertises (the gateway adds those it forwards to).
    pub advertised: &'a [&'static str],
    /// Server settings.
    pub server: &'a ServerSettings,
    /// Authentication and authorisation.
    pub security: &'a Security,
    /// Per-caller rate limits (the gateway only, so a call is counted once).
    pub limits: Option<Limits>,
    /// The server's audit trail, served as `crm.audit.v1.AuditService`.
    pub audit: AuditReader,
    /// JSON over HTTP, gRPC-Web and CORS (the gateway only; HTTP/1.1 is then accepted too).
    pub http: Option<crate::connect::HttpFront>,
}

/// Serves `routes` on `listener` with health, reflection and the audit trail, every call
/// authenticated and authorised by the security layer (and rate-limited where configured),
/// until `shutdown` is cancelled. On shutdown it reports NOT_SERVING, stops accepting, and gives
/// in-flight calls up to `server.shutdown_grace_ms` to finish.
pub async fn serve_with(
    listener: TcpListener,
    routes: Routes,
    options: Options<'_>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Options {
        names,
        advertised,
        server: settings,
        security,
        limits,
        audit,
        http,
    } = options;
    let addr: SocketAddr = listener.local_addr()?;
    let audit = AuditServiceServer::new(audit);
    let mut names = names.to_vec();
    names.push(service_name(&audit));
    let mut advertised = advertised.to_vec();
    advertised.push(service_name(&audit));
    let names = names.as_slice();
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in names {
        reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let mut v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crm_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health");
    let mut v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crm_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health");
    for name in &advertised {
        v1 = v1.with_service_name(*name);
        v1alpha = v1alpha.with_service_name(*name);
    }
    let routes = routes
        .add_service(audit)
        .add_service(health)
        .add_service(v1.build_v1()?)
        .add_service(v1alpha.build_v1alpha()?);

    tracing::info!(%addr, services = ?names, "serving");
    let grace = Duration::from_millis(settings.shutdown_grace_ms);
    let stopping = shutdown.clone();
    let owned = names.to_vec();
    let signal = async move {
        stopping.cancelled().await;
        for name in owned {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        tracing::info!(%addr, "shutting down: finishing in-flight calls");
    };
    // the platform's name of this server (`tickets`), from its first gRPC service's package
    let server_name: String = names
        .first()
        .and_then(|n| n.strip_prefix("crm."))
        .and_then(|n| n.split('.').next())
        .unwrap_or("crm")
        .to_string();
    let (connect, grpc_web, cors) = match http {
        Some(front) => (front.connect, front.grpc_web, front.cors),
        None => (None, false, None),
    };
    let (connect, connect_body) = connect.unzip();
    let server = Server::builder()
        .accept_http1(connect.is_some() || grpc_web)
        .trace_fn({
            let server_name = server_name.clone();
            move |request| telemetry::server_span(&server_name, request)
        })
        .layer(tower::util::option_layer(cors))
        .layer(tower::util::option_layer(connect))
        .layer(tower::util::option_layer(
            grpc_web.then(tonic_web::GrpcWebLayer::new),
        ))
        .layer(tower::layer::layer_fn(|inner| RequireGrpc { inner }))
        .layer(tower::layer::layer_fn(move |inner| RpcMetrics {
            inner,
            server: server_name.clone().into(),
        }))
        .layer(tower::util::MapResponseLayer::new(client_errors))
        .layer(tower::util::MapResponseLayer::new(add_trace_id))
        .layer(security.layer())
        .layer(tower::util::option_layer(limits.map(|l| l.layer())))
        .layer(tower::util::option_layer(connect_body))
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), signal);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result?,
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(%addr, "grace period over: dropping the remaining calls");
        }
    }
    tracing::info!(%addr, "stopped");
    Ok(())
}

/// Records every call's duration and status code (`crate::metrics::rpc`). The code is the
/// `grpc-status` header of a trailers-only response (how errors are answered), else OK; an
/// unknown method is counted as `unknown`, so random paths cannot grow the series.
#[derive(Clone)]
struct RpcMetrics<S> {
    inner: S,
    server: std::sync::Arc<str>,
}

impl<S, B, R> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().trim_start_matches('/').to_string();
        let server = self.server.clone();
        let start = std::time::Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_string(),
                Err(_) => "2".to_string(),
            };
            let method = if code == "12" { "unknown" } else { &method };
            crate::metrics::rpc(&server, method, &code, start.elapsed());
            result
        })
    }
}

/// Answers a request that is not gRPC (`content-type` other than `application/grpc…`) with
/// HTTP 415 Unsupported Media Type, as the gRPC-over-HTTP/2 specification says, before it
/// reaches authentication or a service.
#[derive(Clone)]
struct RequireGrpc<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for RequireGrpc<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let grpc = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/grpc"));
        if !grpc {
            let mut response = http::Response::new(R::default());
            *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
            response.headers_mut().insert(
                http::header::ACCEPT,
                http::HeaderValue::from_static("application/grpc"),
            );
            return Box::pin(async move { Ok(response) });
        }
        Box::pin(self.inner.call(request))
    }
}

/// The client's mistakes that tonic answers as server faults, answered as what they are:
/// a request message that cannot be decoded (tonic: `INTERNAL`) is `INVALID_ARGUMENT`, one
/// over the size limit (tonic: `OUT_OF_RANGE`) is `RESOURCE_EXHAUSTED` (the gRPC status-code
/// specification). So metrics and alerts count them as client errors, and nobody can trip
/// the server-fault alert by sending garbage.
fn client_errors<B>(mut response: http::Response<B>) -> http::Response<B> {
    // a trailers-only answer carries its status in the headers (tonic decodes the message)
    let Some(status) = tonic::Status::from_header_map(response.headers()) else {
        return response;
    };
    let message = status.message();
    let replacement = match status.code() {
        Code::Internal if message.starts_with("failed to decode Protobuf message") => Some((
            Code::InvalidArgument,
            format!("the request message cannot be decoded: {message}"),
        )),
        Code::OutOfRange if message.starts_with("Error, decoded message length too large") => {
            Some((
                Code::ResourceExhausted,
                format!("the request message is too large: {message}"),
            ))
        }
        _ => None,
    };
    if let Some((code, message)) = replacement {
        let headers = response.headers_mut();
        headers.remove("grpc-status-details-bin");
        let _ = tonic::Status::new(code, message).add_header(headers);
    }
    response
}

/// The response header that tells the caller the trace id of its call, to quote to support.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

fn add_trace_id<B>(mut response: http::Response<B>) -> http::Response<B> {
    if let Some(id) = telemetry::current_trace_id()
        && let Ok(value) = http::HeaderValue::from_str(&id)
    {
        response.headers_mut().insert(TRACE_ID_HEADER, value);
    }
    response
}

/// A token cancelled on SIGINT or SIGTERM (what Kubernetes sends before it kills a pod).
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("install SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("stop signal received");
        trigger.cancel();
    });
    token
}

/// gRPC server settings.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ServerSettings {
    /// How long shutdown waits for in-flight calls.
    pub shutdown_grace_ms: u64,
    /// The largest request message accepted.
    pub max_message_bytes: usize,
}
