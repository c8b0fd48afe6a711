//! The whole platform in one process (`crm serve all`): every server answers health checks and
//! reflection, carries the trace context, serves the customers API, and stops gracefully.

use std::time::Duration;

use crm_kit::{Clock, testing};
use crm_proto::customers::v1::{self as pb, customer_service_client::CustomerServiceClient};
use tokio_stream::StreamExt;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

async fn platform() -> crm_tests::Running {
    let env = testing::test_env().await;
    let _ = crm_kit::telemetry::init("test", &env.settings.telemetry, std::io::sink);
    crm_tests::start(env.settings, Clock::system())
        .await
        .expect("platform starts")
}

#[tokio::test]
async fn every_server_reports_health() {
    let running = platform().await;
    let own = |service: &str| match service {
        "gateway" => "crm.gateway.v1.AuthService",
        "customers" => "crm.customers.v1.CustomerService",
        "notifications" => "crm.notifications.v1.NotificationService",
        "tickets" => "crm.tickets.v1.TicketService",
        "repairs" => "crm.repairs.v1.RepairService",
        "complaints" => "crm.complaints.v1.ComplaintService",
        "pipeline" => "crm.pipeline.v1.PipelineService",
        other => panic!("no health name known for {other}"),
    };
    assert_eq!(
        running.addrs.keys().copied().collect::<Vec<_>>(),
        [
            "complaints",
            "customers",
            "gateway",
            "notifications",
            "pipeline",
            "repairs",
            "tickets"
        ]
    );
    for (service, _) in running.addrs.iter() {
        let mut health = HealthClient::new(running.channel(service).await);
        for name in ["", own(service)] {
            let status = health
                .check(HealthCheckRequest {
                    service: name.into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status;
            assert_eq!(status, ServingStatus::Serving as i32, "{service} {name:?}");
        }
    }
}

#[tokio::test]
async fn reflection_lists_the_services_and_describes_them() {
    let running = platform().await;
    let mut reflection = ServerReflectionClient::new(running.channel("customers").await);
    let requests = tokio_stream::iter([
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "crm.customers.v1.CustomerService".into(),
            )),
        },
    ]);
    let mut responses = reflection
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"crm.customers.v1.CustomerService"),
        "{names:?}"
    );
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected file descriptors");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

#[tokio::test]
async fn the_caller_trace_context_is_continued() {
    let running = platform().await;
    let token = testing::token(
        &running.settings,
        &testing::TestCaller {
            subject: "admin.test",
            roles: &["admin"],
            ..Default::default()
        },
        60,
    );
    let mut client = CustomerServiceClient::with_interceptor(
        running.channel("customers").await,
        testing::Bearer::new(&token),
    );
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = tonic::Request::new(pb::ListCustomersRequest::default());
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    let response = client.list_customers(request).await.unwrap();
    let echoed = response
        .metadata()
        .get("x-trace-id")
        .expect("trace id header")
        .to_str()
        .unwrap();
    assert_eq!(echoed, trace_id);

    // without a parent, the server starts a trace of its own
    let response = client
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .unwrap();
    let own = response
        .metadata()
        .get("x-trace-id")
        .expect("trace id header")
        .to_str()
        .unwrap();
    assert_eq!(own.len(), 32);
    assert_ne!(own, trace_id);
}

#[tokio::test]
async fn shutdown_reports_not_serving_and_stops() {
    let mut running = platform().await;
    let token = testing::token(
        &running.settings,
        &testing::TestCaller {
            subject: "admin.test",
            roles: &["admin"],
            ..Default::default()
        },
        60,
    );
    let mut client = CustomerServiceClient::with_interceptor(
        running.channel("customers").await,
        testing::Bearer::new(&token),
    );
    client
        .create_customer(pb::CreateCustomerRequest {
            request_id: "e2e-1".into(),
            customer: Some(pb::Customer {
                display_name: "Fabrikam GmbH".into(),
                region: "europe".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let platform = running.platform.take().unwrap();
    running.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), platform.wait())
        .await
        .expect("stops within the deadline")
        .expect("stops cleanly");
    let stopped = tokio::net::TcpStream::connect(running.addrs["customers"]).await;
    assert!(stopped.is_err(), "the port is closed after shutdown");
}

/// The Helm chart deploys exactly the services this binary serves: one block each under
/// `services:` in `helm/crm/values.yaml` (and the CI values that turn features on name no
/// other).
#[test]
fn the_helm_chart_deploys_the_services_the_binary_serves() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let blocks = |file: &str| -> Vec<String> {
        let text = std::fs::read_to_string(root.join(file)).expect("chart values");
        let mut out = Vec::new();
        let mut inside = false;
        for line in text.lines() {
            if line.starts_with("services:") {
                inside = true;
            } else if inside && !line.starts_with(' ') && !line.trim().is_empty() {
                inside = false;
            } else if inside
                && let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
                && !name.starts_with(' ')
            {
                out.push(name.to_string());
            }
        }
        out.sort();
        out
    };
    let mut served: Vec<String> = crm::SERVICES.iter().map(|s| s.to_string()).collect();
    served.sort();
    assert_eq!(blocks("helm/crm/values.yaml"), served);
    let featured = blocks("helm/crm/ci/all-features-values.yaml");
    assert!(featured.iter().all(|s| served.contains(s)), "{featured:?}");
}

/// A service's schema on a database of its own (`[database.urls] customers = …`, as on a
/// Postgres cluster of its own): the customers service migrates and works there, nothing of it
/// is in the shared database, and the platform around it works as before (a ticket is opened
/// for a customer it holds, through its event).
#[tokio::test]
async fn a_service_whose_schema_lives_on_a_database_of_its_own_works_there() {
    use sqlx::Connection;
    let mut env = testing::test_env().await;
    let shared = env.settings.database.url.clone();
    let own = format!("{shared}_customers");
    let own_name = own.rsplit('/').next().unwrap().to_string();
    let mut admin = sqlx::PgConnection::connect(&shared).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {own_name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    env.settings
        .database
        .urls
        .insert("customers".into(), own.clone());
    let running = crm_tests::start(env.settings, Clock::system())
        .await
        .expect("platform starts");
    let id = running.customer("无锡新材料有限公司", "华东").await;

    let count = |url: String, sql: &'static str| async move {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(
        count(own.clone(), "SELECT count(*) FROM customers.customers").await,
        1,
        "the customer is in the service's own database"
    );
    assert_eq!(
        count(
            shared.clone(),
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'customers'"
        )
        .await,
        0,
        "and the shared one has no customers schema"
    );
    assert_eq!(
        count(
            shared.clone(),
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'tickets'"
        )
        .await,
        1,
        "while the other services stay in the shared one"
    );
    // the tickets service learns of the customer from its event and opens a ticket for it
    let token = testing::token(
        &running.settings,
        &testing::TestCaller {
            subject: "test.agent",
            roles: &["hotline_agent"],
            ..Default::default()
        },
        600,
    );
    use crm_proto::tickets::v1 as tpb;
    let ticket = tpb::ticket_service_client::TicketServiceClient::with_interceptor(
        running.channel("tickets").await,
        testing::Bearer::new(&token),
    )
    .create_ticket(tpb::CreateTicketRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        ticket: Some(tpb::Ticket {
            channel: tpb::Channel::Hotline as i32,
            customer_id: id.clone(),
            region: "华东".into(),
            contact_name: "王晓明".into(),
            contact_phone: "+86 138 0013 8000".into(),
            product_model: "X200".into(),
            serial_number: "SN-0001".into(),
            symptom: "无法开机".into(),
            warranty: tpb::Warranty::InWarranty as i32,
            service_mode: tpb::ServiceMode::OnSite as i32,
            ..Default::default()
        }),
    })
    .await
    .expect("a ticket for the customer held elsewhere")
    .into_inner()
    .ticket
    .unwrap();
    assert_eq!(ticket.customer_id, id);
}
