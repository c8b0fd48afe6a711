//! One trace per case, across the platform: an in-process OTLP receiver (the collector's
//! trace service from the `opentelemetry-proto` types) takes what the platform exports; a
//! ticket is driven from intake to dispatch through the gateway under one client trace, and
//! every expected span arrives with that trace id and the right parent — the gateway's span
//! under the client's, each service's under the gateway's, each event consumer's under the
//! call that published the event — named after RPCs and events, carrying resource ids and no
//! personal data.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use crm_kit::{Clock, testing};
use crm_proto::{
    gateway::v1::{self as gw, auth_service_client::AuthServiceClient},
    tickets::v1::{self as pb, ticket_service_client::TicketServiceClient},
};
use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    metrics::v1::{Metric, metric::Data},
    trace::v1::Span,
};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status, metadata::MetadataValue, transport::Channel};

const PASSWORD: &str = "correct horse battery staple";

fn captured() -> &'static Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<Mutex<Vec<u8>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(Mutex::default)
}

/// The log output, kept for the test to read.
struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        captured().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The spans received, flattened.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Span>>>);

/// The metrics received, flattened.
#[derive(Clone, Default)]
struct Metrics(Arc<Mutex<Vec<Metric>>>);

#[tonic::async_trait]
impl MetricsService for Metrics {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let mut metrics = self.0.lock().unwrap();
        for resource in request.into_inner().resource_metrics {
            for scope in resource.scope_metrics {
                metrics.extend(scope.metrics);
            }
        }
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

impl Metrics {
    /// The attribute sets of the histogram `name`'s data points received so far.
    fn points(&self, name: &str) -> Vec<Vec<(String, String)>> {
        let pairs = |attrs: &[KeyValue]| {
            attrs
                .iter()
                .map(|kv| (kv.key.clone(), value(kv.value.as_ref()).unwrap_or_default()))
                .collect::<Vec<_>>()
        };
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.name == name)
            .flat_map(|m| match &m.data {
                Some(Data::Histogram(h)) => {
                    h.data_points.iter().map(|p| pairs(&p.attributes)).collect()
                }
                Some(Data::Sum(s)) => s.data_points.iter().map(|p| pairs(&p.attributes)).collect(),
                _ => Vec::new(),
            })
            .collect()
    }
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn receiver() -> (SocketAddr, Received, Metrics) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Received::default();
    let metrics = Metrics::default();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(received.clone()))
            .add_service(MetricsServiceServer::new(metrics.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (addr, received, metrics)
}

fn value(v: Option<&AnyValue>) -> Option<String> {
    match v.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => Some(s.clone()),
        Some(Value::IntValue(i)) => Some(i.to_string()),
        Some(Value::BoolValue(b)) => Some(b.to_string()),
        _ => None,
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| value(kv.value.as_ref()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_from_intake_to_dispatch_is_one_trace_across_the_services() {
    let (addr, received, metrics) = receiver().await;
    let mut env = testing::test_env().await;
    env.settings.telemetry.otlp_endpoint = format!("http://{addr}");
    // a quiet JSON log, as in production: the call and event spans are kept whatever the
    // filter; the gateway's login line is let through to check that lines carry the trace id
    env.settings.telemetry.log_filter = "warn,crm_gateway::sessions=info".into();
    env.settings.telemetry.log_format = "json".into();
    let _telemetry =
        crm_kit::telemetry::init("test", &env.settings.telemetry, || Capture).expect("telemetry");
    let running = crm_tests::start(env.settings.clone(), Clock::system())
        .await
        .expect("platform starts");
    let identity = crm::admin::identity(&running.settings).await.unwrap();
    let mut ids = std::collections::BTreeMap::new();
    for (name, role, region) in [
        ("agent", "hotline_agent", "华东"),
        ("heng", "hotline_engineer", "华东"),
        ("eng", "engineer", "华东"),
    ] {
        let user = gw::User {
            username: name.into(),
            display_name: format!("{name} (test)"),
            roles: vec![role.into()],
            region: region.into(),
            ..Default::default()
        };
        let created =
            crm::admin::create_user(&identity, &format!("seed-{name}"), user, PASSWORD, "t")
                .await
                .unwrap();
        ids.insert(name, created.id);
    }
    // the engineer has reached the tickets service's directory before the traced case starts
    let tickets_db = crm_kit::db::connect(&running.settings.database, "tickets")
        .await
        .unwrap();
    let engineer = ids["eng"].clone();
    testing::wait_until(
        "the engineer in the directory",
        Duration::from_secs(20),
        || {
            let (pool, id) = (tickets_db.clone(), engineer.clone());
            async move {
                sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM directory_members WHERE user_id = $1 AND role = 'engineer')",
                )
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
            }
        },
    )
    .await;
    let customer = running.customer("无锡新材料有限公司", "华东").await;
    let gateway: Channel = running.channel("gateway").await;
    let token = |username: &'static str| {
        let gateway = gateway.clone();
        async move {
            AuthServiceClient::new(gateway)
                .login(gw::LoginRequest {
                    username: username.into(),
                    password: PASSWORD.into(),
                })
                .await
                .expect("login")
                .into_inner()
                .access_token
        }
    };
    // JSON log lines carry the trace id of their call (the one the caller gets back)
    let login = AuthServiceClient::new(gateway.clone())
        .login(gw::LoginRequest {
            username: "agent".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap();
    let login_trace = login
        .metadata()
        .get("x-trace-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let logs = String::from_utf8_lossy(&captured().lock().unwrap()).to_string();
    let line = logs
        .lines()
        .find(|l| l.contains(r#""message":"login""#) && l.contains(&login_trace))
        .unwrap_or_else(|| panic!("no JSON login line with trace {login_trace}: {logs}"));
    let parsed: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    assert_eq!(parsed["span"]["trace_id"], login_trace.as_str(), "{line}");

    // the client's trace: every call of the case carries the same trace id and client span
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let client_span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let traceparent = format!("00-{trace_id}-{client_span}-01");
    let client = |access: String| {
        let bearer: MetadataValue<_> = format!("Bearer {access}").parse().unwrap();
        let parent: MetadataValue<_> = traceparent.parse().unwrap();
        TicketServiceClient::with_interceptor(gateway.clone(), move |mut r: Request<()>| {
            r.metadata_mut().insert("authorization", bearer.clone());
            r.metadata_mut().insert("traceparent", parent.clone());
            Ok(r)
        })
    };
    let mut agent = client(token("agent").await);
    let ticket = agent
        .create_ticket(pb::CreateTicketRequest {
            request_id: "trace-create".into(),
            ticket: Some(pb::Ticket {
                channel: pb::Channel::Hotline as i32,
                customer_id: customer.clone(),
                region: "华东".into(),
                contact_name: "王晓明".into(),
                contact_phone: "+86 138 0013 8000".into(),
                product_model: "X200".into(),
                serial_number: "SN-0001".into(),
                symptom: "无法开机".into(),
                warranty: pb::Warranty::InWarranty as i32,
                service_mode: pb::ServiceMode::OnSite as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("create")
        .into_inner()
        .ticket
        .unwrap();
    agent
        .transition_ticket(pb::TransitionTicketRequest {
            request_id: "trace-hand-on".into(),
            id: ticket.id.clone(),
            transition: pb::Transition::HandToHotlineEngineer as i32,
            ..Default::default()
        })
        .await
        .expect("hand on");
    client(token("heng").await)
        .transition_ticket(pb::TransitionTicketRequest {
            request_id: "trace-dispatch".into(),
            id: ticket.id.clone(),
            transition: pb::Transition::Dispatch as i32,
            assignee_id: ids["eng"].clone(),
            ..Default::default()
        })
        .await
        .expect("dispatch");

    // wait until the case's spans are exported: 3 calls × (gateway + tickets) and the
    // notifications consumer's handling of tickets.created and tickets.dispatched
    let ours = {
        let received = received.clone();
        let trace_id = trace_id.clone();
        move || -> Vec<Span> {
            received
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|s| hex(&s.trace_id) == trace_id)
                .cloned()
                .collect()
        }
    };
    let wanted = |spans: &[Span]| {
        let calls = spans
            .iter()
            .filter(|s| s.name.starts_with("crm.tickets.v1.TicketService/"))
            .count();
        // the notifications consumer's (the customers service consumes the tickets topic too)
        let consumed = ["tickets.created", "tickets.dispatched"]
            .iter()
            .all(|name| {
                spans.iter().any(|s| {
                    s.name == *name && attribute(s, "group").as_deref() == Some("notifications")
                })
            });
        calls >= 6 && consumed
    };
    testing::wait_until(
        "the case's spans at the receiver",
        Duration::from_secs(30),
        || {
            let ours = ours.clone();
            async move {
                tokio::task::spawn_blocking(crm_kit::telemetry::flush)
                    .await
                    .unwrap();
                wanted(&ours())
            }
        },
    )
    .await;
    let spans = ours();
    let server = |s: &Span| attribute(s, "crm.server").unwrap_or_default();
    let named = |name: &str, on: &str| -> Vec<Span> {
        let mut v: Vec<Span> = spans
            .iter()
            .filter(|s| s.name == name && server(s) == on)
            .cloned()
            .collect();
        v.sort_by_key(|s| s.start_time_unix_nano);
        v
    };
    let create = "crm.tickets.v1.TicketService/CreateTicket";
    let transition = "crm.tickets.v1.TicketService/TransitionTicket";
    let (gw_create, t_create) = (named(create, "gateway"), named(create, "tickets"));
    let (gw_moves, t_moves) = (named(transition, "gateway"), named(transition, "tickets"));
    assert_eq!((gw_create.len(), t_create.len()), (1, 1), "{spans:#?}");
    assert_eq!((gw_moves.len(), t_moves.len()), (2, 2));
    // the gateway's spans are children of the client's; each service span of its gateway span
    for (g, t) in gw_create
        .iter()
        .chain(&gw_moves)
        .zip(t_create.iter().chain(&t_moves))
    {
        assert_eq!(hex(&g.parent_span_id), client_span, "{}", g.name);
        assert_eq!(
            t.parent_span_id, g.span_id,
            "{} under the gateway's span",
            t.name
        );
        assert_eq!(
            attribute(t, "crm.resource").as_deref(),
            Some(format!("tickets/{}", ticket.id).as_str()),
            "the ticket's id on {}",
            t.name
        );
    }
    // each event's handling is a child of the call that published it
    let consumed = |name: &str| -> Span {
        spans
            .iter()
            .find(|s| s.name == name && attribute(s, "group").as_deref() == Some("notifications"))
            .cloned()
            .unwrap_or_else(|| panic!("no span for {name}"))
    };
    assert_eq!(
        consumed("tickets.created").parent_span_id,
        t_create[0].span_id
    );
    assert_eq!(
        consumed("tickets.dispatched").parent_span_id,
        t_moves[1].span_id
    );
    // no personal data in any attribute of the case
    for s in &spans {
        for kv in &s.attributes {
            let v = format!("{:?}", kv.value);
            assert!(
                !v.contains("王晓明") && !v.contains("138 0013"),
                "{} carries personal data in {}",
                s.name,
                kv.key
            );
        }
    }

    // and the metrics: RPC latency per server and method (with its status code), event lags
    let has = |name: &str, want: &[(&str, &str)]| {
        metrics.points(name).iter().any(|p| {
            want.iter()
                .all(|(k, v)| p.iter().any(|(pk, pv)| pk == k && pv == v))
        })
    };
    testing::wait_until(
        "the metrics at the receiver",
        Duration::from_secs(30),
        || {
            let has = &has;
            async move {
                tokio::task::spawn_blocking(crm_kit::telemetry::flush)
                    .await
                    .unwrap();
                has(
                    "rpc.server.duration",
                    &[
                        ("crm.server", "tickets"),
                        ("rpc.method", create),
                        ("rpc.grpc.status_code", "0"),
                    ],
                ) && has(
                    "rpc.server.duration",
                    &[("crm.server", "gateway"), ("rpc.method", create)],
                ) && has("crm.events.outbox_lag", &[("topic", "tickets")])
                    && has(
                        "crm.events.consumer_lag",
                        &[
                            ("group", "notifications"),
                            ("event.type", "tickets.created"),
                        ],
                    )
            }
        },
    )
    .await;

    // a JSON call over HTTP/1.1 (what a partner's curl sends) continues the caller's trace the
    // same way and answers its id
    let json_trace = uuid::Uuid::new_v4().simple().to_string();
    let json_parent = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let access = token("agent").await;
    let (status, headers) = json_call(
        running.addrs["gateway"],
        "/crm.tickets.v1.TicketService/GetTicket",
        &access,
        &format!("00-{json_trace}-{json_parent}-01"),
        &format!(r#"{{"id":"{}"}}"#, ticket.id),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-trace-id"], json_trace.as_str());
    let get = "crm.tickets.v1.TicketService/GetTicket";
    let json_spans = || -> Vec<Span> {
        received
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| hex(&s.trace_id) == json_trace && s.name == get)
            .cloned()
            .collect()
    };
    testing::wait_until(
        "the JSON call's spans at the receiver",
        Duration::from_secs(30),
        || {
            let json_spans = &json_spans;
            async move {
                tokio::task::spawn_blocking(crm_kit::telemetry::flush)
                    .await
                    .unwrap();
                json_spans().len() >= 2
            }
        },
    )
    .await;
    let spans = json_spans();
    let on = |server: &str| {
        spans
            .iter()
            .find(|s| attribute(s, "crm.server").as_deref() == Some(server))
            .cloned()
            .unwrap_or_else(|| panic!("no {get} span on {server}: {spans:#?}"))
    };
    let (at_gateway, at_tickets) = (on("gateway"), on("tickets"));
    assert_eq!(hex(&at_gateway.parent_span_id), json_parent);
    assert_eq!(at_tickets.parent_span_id, at_gateway.span_id);
}

/// One JSON call over HTTP/1.1 with a bearer token and a traceparent: the HTTP status and
/// headers of the answer.
async fn json_call(
    addr: SocketAddr,
    path: &str,
    token: &str,
    traceparent: &str,
    body: &str,
) -> (u16, http::HeaderMap) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::post(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .header("traceparent", traceparent)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    (response.status().as_u16(), response.headers().clone())
}
