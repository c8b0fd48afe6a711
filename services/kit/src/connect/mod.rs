//! JSON over HTTP in front of a gRPC server: the [Connect protocol]'s unary form, transcoded
//! from the contracts' descriptors (`prost-reflect`), so a partner with an HTTP client and a
//! JSON library calls the same methods as a gRPC client, through the same stack.
//!
//! `POST /<package>.<Service>/<Method>` with `Content-Type: application/json` (the proto3 JSON
//! mapping) or `application/proto` (binary protobuf), over HTTP/1.1 or HTTP/2, becomes a gRPC
//! request to the layers inside — authentication, policy, rate limits, deadlines, the services
//! or the forwarding to them — and the gRPC answer becomes a Connect answer: the response
//! message, or the Connect error body with the code, message and `google.rpc` details (each
//! with its `debug` JSON, e.g. BadRequest's field violations). `Connect-Timeout-Ms` becomes
//! `grpc-timeout`; every other header (authorization, `traceparent`) travels unchanged, and
//! the body is read and transcoded only inside, after authentication and the rate limit
//! ([`BodyLayer`]); the
//! answer carries the gRPC response headers, its trailers as `trailer-*` headers, and
//! `x-trace-id`. Streaming methods are refused with a message naming the protocols that serve
//! them (gRPC, gRPC-Web). The layer also serves fixed documents by `GET` (the gateway's
//! `/openapi.json`).
//!
//! gRPC (`application/grpc…`) and gRPC-Web (`application/grpc-web…`) requests pass through
//! untouched; any other content type is answered `415 Unsupported Media Type` with a Connect
//! error naming the ones served.
//!
//! [Connect protocol]: https://connectrpc.com/docs/protocol

use std::{
    collections::HashMap,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use prost_reflect::{DescriptorPool, MethodDescriptor};
use tonic::{Code, body::Body};
use tower::ServiceExt;

mod body;
mod codec;
mod error;
mod settings;

pub use body::{BodyLayer, BodyService};
pub use error::{code_name, http_status};
pub use settings::{HttpFront, HttpSettings};

use body::Pending;
use codec::{proto_to_json, too_large, unframe};
use error::ConnectError;

/// The content types this layer answers, as told in a 415's `Accept`.
pub const SERVED_CONTENT_TYPES: &str =
    "application/json, application/proto, application/grpc, application/grpc-web";

/// What the layer knows: the descriptors it transcodes with, the body limit and the documents
/// it serves.
pub struct Front {
    pool: DescriptorPool,
    max_body_bytes: usize,
    documents: HashMap<String, (HeaderValue, Bytes)>,
}

impl Front {
    /// Transcodes with the platform's contracts (plus health and the `google.rpc` details),
    /// refusing request bodies over `max_body_bytes`.
    pub fn new(max_body_bytes: usize) -> anyhow::Result<Self> {
        Ok(Self {
            pool: descriptors()?,
            max_body_bytes,
            documents: HashMap::new(),
        })
    }

    /// Also serves `body` at `GET path` with `content_type`.
    pub fn with_document(
        mut self,
        path: &str,
        content_type: &'static str,
        body: impl Into<Bytes>,
    ) -> Self {
        self.documents.insert(
            path.to_string(),
            (HeaderValue::from_static(content_type), body.into()),
        );
        self
    }

    /// The layer, for a server's stack.
    pub fn layer(self) -> ConnectLayer {
        ConnectLayer(Arc::new(self))
    }
}

/// Every descriptor the platform serves: its contracts, health and the `google.rpc` details.
/// Decoded once per process (the gateway's layer and its documents share it; a pool is a
/// handle, cheap to clone).
pub fn descriptors() -> anyhow::Result<DescriptorPool> {
    static POOL: std::sync::OnceLock<DescriptorPool> = std::sync::OnceLock::new();
    if let Some(pool) = POOL.get() {
        return Ok(pool.clone());
    }
    let mut pool = DescriptorPool::decode(crm_proto::FILE_DESCRIPTOR_SET)?;
    pool.decode_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)?;
    pool.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)?;
    Ok(POOL.get_or_init(|| pool).clone())
}

/// Calls `inner` with a request the layer leaves alone, its answer's body boxed.
fn pass<S, ResBody>(
    inner: &mut S,
    request: Request<Body>,
) -> BoxFuture<Result<Response<Body>, S::Error>>
where
    S: tower::Service<Request<Body>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tower::BoxError>,
{
    let future = inner.call(request);
    Box::pin(async move { future.await.map(|r| r.map(Body::new)) })
}

/// The service made ready, taken for one call and replaced by a clone for the next (tower's
/// usual swap: the clone that was polled ready is the one called).
fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

/// The Connect layer (see the module).
#[derive(Clone)]
pub struct ConnectLayer(Arc<Front>);

impl<S> tower::Layer<S> for ConnectLayer {
    type Service = Connect<S>;
    fn layer(&self, inner: S) -> Connect<S> {
        Connect {
            inner,
            front: self.0.clone(),
        }
    }
}

/// The Connect service (see the module).
#[derive(Clone)]
pub struct Connect<S> {
    inner: S,
    front: Arc<Front>,
}

/// How a request is answered.
enum Kind {
    /// gRPC or gRPC-Web: to the inner layers as it is.
    Pass,
    /// Connect unary with this message encoding.
    Unary(Codec),
    /// A document served by `GET`.
    Document(HeaderValue, Bytes),
    /// No protocol served here.
    Unsupported(String),
}

/// The message encoding of a Connect call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Codec {
    Json,
    Proto,
}

impl Codec {
    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Codec::Json => "application/json",
            Codec::Proto => "application/proto",
        })
    }
}

fn classify(front: &Front, request: &Request<Body>) -> Kind {
    if request.method() == Method::GET
        && let Some((content_type, body)) = front.documents.get(request.uri().path())
    {
        return Kind::Document(content_type.clone(), body.clone());
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Kind::Unary(Codec::Json),
        "application/proto" => Kind::Unary(Codec::Proto),
        t if t.starts_with("application/grpc") => Kind::Pass,
        "" => Kind::Unsupported("the request has no content-type".into()),
        t => Kind::Unsupported(format!("content-type {t} is not served")),
    }
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, ResBody> tower::Service<Request<Body>> for Connect<S>
where
    S: tower::Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tower::BoxError> + std::fmt::Display,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        match classify(&self.front, &request) {
            Kind::Pass => pass(&mut self.inner, request),
            Kind::Document(content_type, body) => Box::pin(async move {
                let mut response = Response::new(Body::new(Full::new(body)));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type);
                Ok(response)
            }),
            Kind::Unsupported(what) => Box::pin(async move {
                let mut response = ConnectError::new(
                    Code::Unimplemented,
                    format!(
                        "{what}: the gateway serves {SERVED_CONTENT_TYPES} \
                         (JSON and binary protobuf in the Connect protocol's unary form: POST \
                         /<package>.<Service>/<Method>)"
                    ),
                )
                .with_http(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                .into_response();
                response.headers_mut().insert(
                    header::ACCEPT,
                    HeaderValue::from_static(SERVED_CONTENT_TYPES),
                );
                Ok(response)
            }),
            Kind::Unary(codec) => {
                let inner = take_ready(&mut self.inner);
                let front = self.front.clone();
                Box::pin(async move {
                    let response = match unary(&front, inner, codec, request).await {
                        Ok(response) => response,
                        Err(error) => error.into_response(),
                    };
                    Ok(with_trace_id(response))
                })
            }
        }
    }
}

/// One Connect unary call: decoded, called as gRPC, answered.
async fn unary<S, ResBody>(
    front: &Front,
    inner: S,
    codec: Codec,
    request: Request<Body>,
) -> Result<Response<Body>, ConnectError>
where
    S: tower::Service<Request<Body>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tower::BoxError> + std::fmt::Display,
{
    let path = request.uri().path().to_string();
    let method = front.method(&path)?;
    if request.method() != Method::POST {
        return Err(ConnectError::new(
            Code::Unimplemented,
            format!(
                "{} {path}: a call is a POST (the Connect protocol's unary form)",
                request.method()
            ),
        )
        .with_http(StatusCode::METHOD_NOT_ALLOWED));
    }
    if let Some(encoding) = request
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .filter(|e| !e.eq_ignore_ascii_case("identity"))
    {
        return Err(ConnectError::new(
            Code::Unimplemented,
            format!("content-encoding {encoding} is not supported: send the body uncompressed"),
        ));
    }
    if let Some(length) = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length > front.max_body_bytes as u64
    {
        return Err(too_large(front.max_body_bytes));
    }
    let (timeout, deadline) = grpc_timeout(request.headers())?.unzip();
    let (mut parts, body) = request.into_parts();

    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::ACCEPT_ENCODING,
        header::ACCEPT,
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        parts.headers.remove(name);
    }
    parts.headers.remove("connect-protocol-version");
    parts.headers.remove("connect-timeout-ms");
    parts.headers.remove("keep-alive");
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    parts
        .headers
        .insert(header::TE, HeaderValue::from_static("trailers"));
    if let Some(timeout) = timeout {
        parts.headers.insert("grpc-timeout", timeout);
    }
    parts.version = http::Version::HTTP_2;
    // the body is read and transcoded further in, by [`BodyLayer`], once the call is
    // authenticated, authorised and within its rate: an anonymous caller cannot make the
    // gateway buffer megabytes
    parts.extensions.insert(Pending {
        codec,
        method: method.clone(),
        limit: front.max_body_bytes,
    });
    let grpc = Request::from_parts(parts, body);

    // the deadline is the gateway's too (tonic's own deadline handling sits outside this
    // layer, where the header did not exist yet), answered as Connect says
    let call = inner.oneshot(grpc);
    let response = match deadline {
        Some(deadline) => tokio::time::timeout(deadline, call)
            .await
            .map_err(|_| ConnectError::new(Code::DeadlineExceeded, "the deadline passed"))?,
        None => call.await,
    }
    .map_err(|_| ConnectError::new(Code::Internal, "the call failed inside the server"))?;
    let (parts, body) = response.into_parts();
    let mut headers = answer_headers(&parts.headers);
    if parts.status != StatusCode::OK {
        return Err(ConnectError::new(
            Code::Unknown,
            format!("the server answered HTTP {}", parts.status),
        ));
    }
    // a trailers-only answer (how errors are sent) carries its status in the headers
    if let Some(status) = tonic::Status::from_header_map(&parts.headers)
        && status.code() != Code::Ok
    {
        return Err(ConnectError::from_status(&status, &front.pool).with_headers(headers));
    }
    let collected = body.collect().await.map_err(|e| {
        ConnectError::new(Code::Unavailable, format!("the answer was cut off: {e}"))
    })?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let data = collected.to_bytes();
    for (name, value) in &trailers {
        if !name.as_str().starts_with("grpc-")
            && let Ok(name) = HeaderName::try_from(format!("trailer-{name}"))
        {
            headers.append(name, value.clone());
        }
    }
    let status = tonic::Status::from_header_map(&trailers).ok_or_else(|| {
        ConnectError::new(Code::Internal, "the service answered without a status")
    })?;
    if status.code() != Code::Ok {
        return Err(ConnectError::from_status(&status, &front.pool).with_headers(headers));
    }
    let message = unframe(&data)?;
    let body = match codec {
        Codec::Proto => message,
        Codec::Json => proto_to_json(&method, message)?,
    };
    let mut response = Response::new(Body::new(Full::new(body)));
    *response.headers_mut() = headers;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, codec.content_type());
    Ok(response)
}

impl Front {
    /// The unary method of a path `/<package>.<Service>/<Method>`.
    fn method(&self, path: &str) -> Result<MethodDescriptor, ConnectError> {
        let unknown = || {
            ConnectError::new(Code::Unimplemented, format!("no method {path}"))
                .with_http(StatusCode::NOT_FOUND)
        };
        let (service, name) = path
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .ok_or_else(unknown)?;
        let method = self
            .pool
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == name))
            .ok_or_else(unknown)?;
        if method.is_client_streaming() || method.is_server_streaming() {
            let kind = match (method.is_client_streaming(), method.is_server_streaming()) {
                (true, true) => "bidirectional streaming",
                (true, false) => "client streaming",
                _ => "server streaming",
            };
            return Err(ConnectError::new(
                Code::Unimplemented,
                format!(
                    "{path} is a {kind} method: call it over gRPC (application/grpc, HTTP/2){}; \
                     JSON over HTTP serves unary methods",
                    if method.is_client_streaming() {
                        ""
                    } else {
                        " or gRPC-Web (application/grpc-web)"
                    }
                ),
            ));
        }
        Ok(method)
    }
}

/// `Connect-Timeout-Ms` as a `grpc-timeout` value (at most 10 digits, as Connect says) and
/// as a duration.
fn grpc_timeout(
    headers: &HeaderMap,
) -> Result<Option<(HeaderValue, std::time::Duration)>, ConnectError> {
    let Some(value) = headers.get("connect-timeout-ms") else {
        return Ok(None);
    };
    let bad = || {
        ConnectError::new(
            Code::InvalidArgument,
            "connect-timeout-ms must be a number of milliseconds (at most 10 digits)",
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // grpc-timeout allows at most 8 digits: larger values in seconds
    let ms: u64 = text.parse().map_err(|_| bad())?;
    let value = if ms < 100_000_000 {
        format!("{ms}m")
    } else {
        format!("{}S", ms / 1000)
    };
    let value = HeaderValue::from_str(&value).map_err(|_| bad())?;
    Ok(Some((value, std::time::Duration::from_millis(ms))))
}

/// The gRPC response headers a Connect answer keeps (not the gRPC protocol's own).
fn answer_headers(grpc: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in grpc {
        let n = name.as_str();
        if n.starts_with("grpc-") || name == header::CONTENT_TYPE || name == header::TE {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    headers
}

fn with_trace_id(mut response: Response<Body>) -> Response<Body> {
    if !response
        .headers()
        .contains_key(crate::server::TRACE_ID_HEADER)
        && let Some(id) = crate::telemetry::current_trace_id()
        && let Ok(value) = HeaderValue::from_str(&id)
    {
        response
            .headers_mut()
            .insert(crate::server::TRACE_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_become_grpc_timeouts() {
        let mut headers = HeaderMap::new();
        assert_eq!(grpc_timeout(&headers).unwrap(), None);
        headers.insert("connect-timeout-ms", HeaderValue::from_static("1500"));
        let (value, duration) = grpc_timeout(&headers).unwrap().unwrap();
        assert_eq!(
            (value.to_str().unwrap(), duration.as_millis()),
            ("1500m", 1500)
        );
        headers.insert("connect-timeout-ms", HeaderValue::from_static("9999999999"));
        assert_eq!(grpc_timeout(&headers).unwrap().unwrap().0, "9999999S");
        for bad in ["", "-1", "1.5", "12345678901", "soon"] {
            headers.insert("connect-timeout-ms", HeaderValue::from_str(bad).unwrap());
            let error = grpc_timeout(&headers).unwrap_err();
            assert_eq!(error.code, Code::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn methods_are_found_by_path_and_streams_refused_with_the_protocols_that_serve_them() {
        let front = Front::new(1024).unwrap();
        let get = front
            .method("/crm.customers.v1.CustomerService/GetCustomer")
            .unwrap();
        assert_eq!(
            get.input().full_name(),
            "crm.customers.v1.GetCustomerRequest"
        );
        let unknown = front
            .method("/crm.customers.v1.CustomerService/Nope")
            .unwrap_err();
        assert_eq!(
            (unknown.code, unknown.http),
            (Code::Unimplemented, Some(StatusCode::NOT_FOUND))
        );
        assert!(front.method("nonsense").is_err());
        let stream = front
            .method("/crm.customers.v1.CustomerService/UploadImport")
            .unwrap_err();
        assert!(
            stream.message.contains("client streaming"),
            "{}",
            stream.message
        );
        assert!(stream.message.contains("gRPC"), "{}", stream.message);
    }
}
