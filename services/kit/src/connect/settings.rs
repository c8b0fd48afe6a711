//! `[gateway.http]` and what it turns on: Connect, gRPC-Web and CORS.

use http::{HeaderName, HeaderValue, Method};

use super::{BodyLayer, ConnectLayer, Front};

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
