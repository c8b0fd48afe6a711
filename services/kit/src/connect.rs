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

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, MethodDescriptor};
use tonic::{Code, body::Body};
use tower::ServiceExt;

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

/// `[gateway.http]`: the protocols beside gRPC that the gateway answers.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct HttpSettings {
    /// JSON (and binary protobuf) over HTTP/1.1 or HTTP/2 in the Connect protocol's unary form.
    pub connect: bool,
    /// gRPC-Web, for browsers.
    pub grpc_web: bool,
    /// The origins a browser may call from (CORS); none by default, so no browser page of
    /// another origin can call. A list, or one comma-separated string (from the environment:
    /// `CRM__GATEWAY__HTTP__CORS_ORIGINS=https://a.example.com,https://b.example.com`).
    #[serde(deserialize_with = "list_or_commas")]
    pub cors_origins: Vec<String>,
    /// How long a browser may keep a preflight's answer.
    pub cors_max_age_s: u64,
}

fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Origins {
        List(Vec<String>),
        Commas(String),
    }
    Ok(match serde::Deserialize::deserialize(d)? {
        Origins::List(list) => list,
        Origins::Commas(text) => text
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(String::from)
            .collect(),
    })
}

/// The protocols a server answers beside gRPC, and CORS: what [`crate::server::Options`]
/// takes (the gateway's; the services answer gRPC only).
pub struct HttpFront {
    /// Connect, if on: the outer half (protocol) and the inner half (the body, read once the
    /// call is authenticated and within its rate).
    pub connect: Option<(ConnectLayer, BodyLayer)>,
    /// gRPC-Web, if on.
    pub grpc_web: bool,
    /// CORS, if any origin is allowed.
    pub cors: Option<tower_http::cors::CorsLayer>,
}

impl HttpFront {
    /// The front `settings` describe, transcoding with `front`.
    pub fn new(settings: &HttpSettings, front: Front) -> anyhow::Result<Self> {
        Ok(Self {
            connect: settings.connect.then(|| (front.layer(), BodyLayer)),
            grpc_web: settings.grpc_web,
            cors: cors(settings)?,
        })
    }
}

/// The CORS layer of `settings`: the allowed origins, POST, the request headers the three
/// protocols send, and the response headers a browser client must read.
fn cors(settings: &HttpSettings) -> anyhow::Result<Option<tower_http::cors::CorsLayer>> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if settings.cors_origins.is_empty() {
        return Ok(None);
    }
    let origins = settings
        .cors_origins
        .iter()
        .map(|o| {
            HeaderValue::from_str(o)
                .map_err(|e| anyhow::anyhow!("gateway.http.cors_origins {o:?}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let names = |list: &[&'static str]| {
        list.iter()
            .map(|n| HeaderName::from_static(n))
            .collect::<Vec<_>>()
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::POST, Method::GET])
            .allow_headers(names(&[
                "authorization",
                "content-type",
                "x-grpc-web",
                "x-user-agent",
                "grpc-timeout",
                "connect-protocol-version",
                "connect-timeout-ms",
                "traceparent",
                "tracestate",
            ]))
            .expose_headers(names(&[
                "grpc-status",
                "grpc-message",
                "grpc-status-details-bin",
                "x-trace-id",
            ]))
            .max_age(std::time::Duration::from_secs(settings.cors_max_age_s)),
    ))
}

/// Every descriptor the platform serves: its contracts, health and the `google.rpc` details.
pub fn descriptors() -> anyhow::Result<DescriptorPool> {
    let mut pool = DescriptorPool::decode(crm_proto::FILE_DESCRIPTOR_SET)?;
    pool.decode_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)?;
    pool.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)?;
    Ok(pool)
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
            Kind::Pass => {
                let future = self.inner.call(request);
                Box::pin(async move { future.await.map(|r| r.map(Body::new)) })
            }
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
                // the clone that was made ready is the one called (tower's usual swap)
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
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

/// What the inner [`BodyLayer`] does to a Connect call's body (a request extension the outer
/// layer sets).
#[derive(Clone)]
struct Pending {
    codec: Codec,
    method: MethodDescriptor,
    limit: usize,
}

/// The inner half of the Connect layer, placed after authentication and the rate limit: reads
/// a Connect call's body (within the size limit) and turns it into one framed protobuf
/// message; a body that is too large or not the method's request message is answered as a
/// gRPC status (`INVALID_ARGUMENT` naming what is wrong, `RESOURCE_EXHAUSTED`), which the
/// outer half writes as a Connect error. Other requests pass untouched.
#[derive(Clone, Default)]
pub struct BodyLayer;

impl<S> tower::Layer<S> for BodyLayer {
    type Service = BodyService<S>;
    fn layer(&self, inner: S) -> BodyService<S> {
        BodyService { inner }
    }
}

/// See [`BodyLayer`].
#[derive(Clone)]
pub struct BodyService<S> {
    inner: S,
}

impl<S, ResBody> tower::Service<Request<Body>> for BodyService<S>
where
    S: tower::Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tower::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let Some(pending) = request.extensions_mut().remove::<Pending>() else {
            let future = self.inner.call(request);
            return Box::pin(async move { future.await.map(|r| r.map(Body::new)) });
        };
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let message = match read_body(body, pending.limit)
                .await
                .and_then(|body| match pending.codec {
                    Codec::Proto => Ok(body),
                    Codec::Json => json_to_proto(&pending.method, &body),
                }) {
                Ok(message) => message,
                Err(e) => return Ok(tonic::Status::new(e.code, e.message).into_http()),
            };
            let request = Request::from_parts(parts, Body::new(Full::new(frame(&message))));
            inner.oneshot(request).await.map(|r| r.map(Body::new))
        })
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

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ConnectError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(limit)),
        Err(e) => Err(ConnectError::new(
            Code::Cancelled,
            format!("the request body could not be read: {e}"),
        )),
    }
}

fn too_large(limit: usize) -> ConnectError {
    ConnectError::new(
        Code::ResourceExhausted,
        format!("the request body is over the limit of {limit} bytes"),
    )
}

/// A request message from its JSON (unknown fields refused, naming them).
fn json_to_proto(method: &MethodDescriptor, body: &[u8]) -> Result<Bytes, ConnectError> {
    let input = method.input();
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let message = DynamicMessage::deserialize_with_options(
        input.clone(),
        &mut deserializer,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .and_then(|m| deserializer.end().map(|()| m))
    .map_err(|e| {
        ConnectError::new(
            Code::InvalidArgument,
            format!("the body is not a {} in JSON: {e}", input.full_name()),
        )
    })?;
    Ok(prost::Message::encode_to_vec(&message).into())
}

/// A response message as JSON (the proto3 JSON mapping: lowerCamelCase names, 64-bit integers
/// as strings, enums by name, default values left out).
fn proto_to_json(method: &MethodDescriptor, message: Bytes) -> Result<Bytes, ConnectError> {
    let message = DynamicMessage::decode(method.output(), message).map_err(|e| {
        ConnectError::new(
            Code::Internal,
            format!("the service's answer does not decode: {e}"),
        )
    })?;
    serde_json::to_vec(&message).map(Bytes::from).map_err(|e| {
        ConnectError::new(
            Code::Internal,
            format!("the answer cannot be written as JSON: {e}"),
        )
    })
}

/// A message in a gRPC frame (uncompressed).
fn frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(message.len() + 5);
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.put_slice(message);
    framed.freeze()
}

/// The one message of a unary gRPC answer.
fn unframe(data: &Bytes) -> Result<Bytes, ConnectError> {
    let broken = || ConnectError::new(Code::Internal, "the service's answer is not one message");
    if data.len() < 5 || data[0] != 0 {
        return Err(broken());
    }
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    if data.len() != 5 + len {
        return Err(broken());
    }
    Ok(data.slice(5..))
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

/// A Connect error: its code, message and `google.rpc` details.
#[derive(Debug)]
struct ConnectError {
    code: Code,
    message: String,
    http: Option<StatusCode>,
    details: Vec<serde_json::Value>,
    /// The service's answer headers, if it got that far (boxed: errors travel by value).
    headers: Option<Box<HeaderMap>>,
}

impl ConnectError {
    fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            http: None,
            details: Vec::new(),
            headers: None,
        }
    }

    fn with_http(mut self, status: StatusCode) -> Self {
        self.http = Some(status);
        self
    }

    fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = Some(Box::new(headers));
        self
    }

    /// A gRPC status with its details (`grpc-status-details-bin`), each detail as Connect
    /// writes it: its type name, its bytes in base64 and, where its type is known, its JSON.
    fn from_status(status: &tonic::Status, pool: &DescriptorPool) -> Self {
        // a tonic server whose deadline passed answers CANCELLED "Timeout expired"
        let code = match status.code() {
            Code::Cancelled if status.message() == "Timeout expired" => Code::DeadlineExceeded,
            code => code,
        };
        let mut error = Self::new(code, status.message());
        if status.details().is_empty() {
            return error;
        }
        let Ok(rich) = <tonic_types::pb::Status as prost::Message>::decode(status.details()) else {
            return error;
        };
        for any in rich.details {
            let name = any.type_url.rsplit('/').next().unwrap_or("").to_string();
            let mut detail = serde_json::json!({
                "type": name,
                "value": base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD_NO_PAD,
                    &any.value
                ),
            });
            if let Some(descriptor) = pool.get_message_by_name(&name)
                && let Ok(message) = DynamicMessage::decode(descriptor, any.value.as_slice())
                && let Ok(debug) = serde_json::to_value(&message)
            {
                detail["debug"] = debug;
            }
            error.details.push(detail);
        }
        error
    }

    fn into_response(self) -> Response<Body> {
        let mut body = serde_json::json!({ "code": code_name(self.code) });
        if !self.message.is_empty() {
            body["message"] = self.message.into();
        }
        if !self.details.is_empty() {
            body["details"] = self.details.into();
        }
        let mut response = Response::new(Body::new(Full::new(Bytes::from(body.to_string()))));
        *response.status_mut() = self.http.unwrap_or_else(|| http_status(self.code));
        if let Some(headers) = self.headers {
            *response.headers_mut() = *headers;
        }
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// A code's name in Connect (`invalid_argument`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status Connect gives a code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).expect("499"),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
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
    fn frames_round_trip_and_broken_ones_are_refused() {
        let framed = frame(b"abc");
        assert_eq!(&framed[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(&unframe(&framed).unwrap()[..], b"abc");
        for broken in [&b""[..], &[0, 0, 0, 0, 4, 1][..], &[1, 0, 0, 0, 0][..]] {
            assert!(unframe(&Bytes::copy_from_slice(broken)).is_err());
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

    #[test]
    fn json_is_checked_against_the_request_message() {
        let front = Front::new(1024).unwrap();
        let get = front
            .method("/crm.customers.v1.CustomerService/GetCustomer")
            .unwrap();
        assert!(json_to_proto(&get, br#"{"id":"c-1"}"#).is_ok());
        assert!(json_to_proto(&get, b"  ").is_ok());
        for (body, named) in [
            (&br#"{"id":"c-1","nope":1}"#[..], "nope"),
            (&br#"{"id":5}"#[..], "string"),
            (&br#"{"id":"c-1"} trailing"#[..], "trailing"),
            (&br#"{"id":"#[..], "EOF"),
        ] {
            let error = json_to_proto(&get, body).unwrap_err();
            assert_eq!(error.code, Code::InvalidArgument);
            assert!(
                error.message.contains(named) || error.message.contains("expected"),
                "{}",
                error.message
            );
        }
    }

    /// Any JSON value, nested a little.
    fn json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
            prop::sample::select(vec![
                "TIER_CORE",
                "1e999",
                "-1",
                "2026-13-45T99:00:00Z",
                "1.5s"
            ])
            .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            let names = prop::sample::select(vec![
                "id",
                "requestId",
                "customer",
                "displayName",
                "contacts",
                "phone",
                "page",
                "pageSize",
                "filter",
                "tier",
                "updateMask",
                "version",
                "ticket",
                "transition",
                "quantity",
                "amount",
                "units",
                "nanos",
                "from",
                "to",
                "nope",
            ]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(names, inner, 0..5).prop_map(|m| {
                    serde_json::Value::Object(
                        m.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                    )
                }),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

        /// Whatever JSON (or bytes) a client sends to whatever unary method: the request
        /// message or a clear INVALID_ARGUMENT, never a panic.
        #[test]
        fn any_json_to_any_method_is_a_message_or_a_clear_refusal(
            value in json(),
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let front = Front::new(1 << 20).unwrap();
            let text = value.to_string();
            for service in front.pool.services().filter(|s| s.full_name().starts_with("crm.")) {
                for method in service.methods().filter(|m| !m.is_client_streaming()) {
                    for body in [text.as_bytes(), bytes.as_slice()] {
                        if let Err(e) = json_to_proto(&method, body) {
                            proptest::prop_assert_eq!(e.code, Code::InvalidArgument);
                            proptest::prop_assert!(e.message.contains(method.input().full_name()));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn errors_carry_connect_codes_and_http_statuses() {
        assert_eq!(code_name(Code::InvalidArgument), "invalid_argument");
        assert_eq!(code_name(Code::Cancelled), "canceled");
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            http_status(Code::ResourceExhausted),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(http_status(Code::Unauthenticated), StatusCode::UNAUTHORIZED);
    }
}
