//! The gateway without a gRPC stack (issue 20): the same calls as JSON over HTTP/1.1 (the
//! Connect protocol's unary form, what `curl` sends), as gRPC-Web and as gRPC give the same
//! answers and the same errors — codes and field violations — with the same authentication,
//! policy, scope, rate limits, audit and traces; bad HTTP input gets a Connect error and the
//! gateway stays up; CORS is off unless configured; the OpenAPI document is served.

use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use crm_kit::{Clock, ratelimit::Rate, testing};
use crm_proto::{
    customers::v1::{self as customers, customer_service_client::CustomerServiceClient},
    repairs::v1::{self as repairs, repair_service_client::RepairServiceClient},
    tickets::v1::{self as tickets, ticket_service_client::TicketServiceClient},
};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Value, json};
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The platform and HTTP/1.1 clients of its gateway.
struct Platform {
    running: crm_tests::Running,
    gateway: Channel,
    addr: SocketAddr,
    pool: DescriptorPool,
}

/// An HTTP answer: status, headers, body.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The Connect code ("ok" for a success).
    fn code(&self) -> String {
        if self.status == StatusCode::OK {
            return "ok".into();
        }
        self.json()["code"].as_str().unwrap_or("").to_string()
    }

    /// The fields of a BadRequest detail, from its `debug` JSON.
    fn fields(&self) -> Vec<String> {
        let body = self.json();
        let mut fields = Vec::new();
        for detail in body["details"].as_array().into_iter().flatten() {
            if detail["type"] == "google.rpc.BadRequest" {
                for v in detail["debug"]["fieldViolations"].as_array().unwrap() {
                    fields.push(v["field"].as_str().unwrap().to_string());
                }
            }
        }
        fields
    }
}

/// The Connect name of a gRPC code.
fn connect_code(code: Code) -> &'static str {
    crm_kit::connect::code_name(code)
}

fn bad_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

impl Platform {
    async fn start(tweak: impl FnOnce(&mut crm_kit::Settings)) -> Self {
        Self::start_with(&[], tweak).await
    }

    async fn start_with(
        extra: &[(&'static str, String)],
        tweak: impl FnOnce(&mut crm_kit::Settings),
    ) -> Self {
        let mut env = testing::test_env_with(extra).await;
        tweak(&mut env.settings);
        let running = crm_tests::start(env.settings, Clock::system())
            .await
            .expect("platform starts");
        running
            .users(&[
                ("admin", "admin", ""),
                ("rep.east", "sales_rep", "华东"),
                ("rep.south", "sales_rep", "华南"),
                ("agent", "hotline_agent", ""),
                ("hotline.eng", "hotline_engineer", ""),
            ])
            .await;
        let gateway = running.channel("gateway").await;
        let addr = running.addrs["gateway"];
        Self {
            running,
            gateway,
            addr,
            pool: crm_kit::connect::descriptors().unwrap(),
        }
    }

    /// One HTTP/1.1 request on a connection of its own.
    async fn http1(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).unwrap();
        let response = sender.send_request(request).await.expect("an answer");
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    /// A Connect JSON call, as `curl` makes it.
    async fn json(&self, method: &str, token: Option<&str>, body: Value) -> Reply {
        self.json_with(method, token, &[], body).await
    }

    async fn json_with(
        &self,
        method: &str,
        token: Option<&str>,
        extra: &[(&str, &str)],
        body: Value,
    ) -> Reply {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(b) = &bearer {
            headers.push(("authorization", b.as_str()));
        }
        headers.extend_from_slice(extra);
        self.http1(
            Method::POST,
            &format!("/{method}"),
            &headers,
            body.to_string(),
        )
        .await
    }

    /// A JSON answer as the generated type (through its descriptor), to compare with gRPC's.
    fn typed<T: prost::Message + Default + prost::Name>(&self, json: &Value) -> T {
        let descriptor = self
            .pool
            .get_message_by_name(&T::full_name())
            .unwrap_or_else(|| panic!("no descriptor of {}", T::full_name()));
        let message = DynamicMessage::deserialize(descriptor, json.clone())
            .unwrap_or_else(|e| panic!("{} from {json}: {e}", T::full_name()));
        T::decode(prost::Message::encode_to_vec(&message).as_slice()).unwrap()
    }

    /// A gRPC-Web call over HTTP/1.1, as a browser's grpc-web client makes it.
    async fn grpc_web<Q: prost::Message, R: prost::Message + Default>(
        &self,
        method: &str,
        token: &str,
        request: &Q,
    ) -> Result<R, tonic::Status> {
        let message = request.encode_to_vec();
        let mut body = BytesMut::new();
        body.put_u8(0);
        body.put_u32(message.len() as u32);
        body.put_slice(&message);
        let bearer = format!("Bearer {token}");
        let reply = self
            .http1(
                Method::POST,
                &format!("/{method}"),
                &[
                    ("content-type", "application/grpc-web+proto"),
                    ("x-grpc-web", "1"),
                    ("authorization", &bearer),
                ],
                body.freeze(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "gRPC-Web answers HTTP 200");
        // frames: messages (flag 0), then the trailers (flag 0x80) as HTTP/1 header lines
        let mut data = reply.body.clone();
        let mut answer = None;
        let mut trailers = reply.headers.clone();
        while data.remaining() >= 5 {
            let flag = data.get_u8();
            let len = data.get_u32() as usize;
            let frame = data.split_to(len);
            if flag & 0x80 != 0 {
                for line in String::from_utf8(frame.to_vec()).unwrap().split("\r\n") {
                    if let Some((name, value)) = line.split_once(':') {
                        trailers.insert(
                            http::HeaderName::try_from(name.trim()).unwrap(),
                            value.trim().parse().unwrap(),
                        );
                    }
                }
            } else {
                answer = Some(R::decode(frame).unwrap());
            }
        }
        match tonic::Status::from_header_map(&trailers) {
            Some(status) if status.code() != Code::Ok => Err(status),
            _ => Ok(answer.expect("a message")),
        }
    }

    /// GetCustomer in gRPC-Web's text mode: frames in base64 both ways.
    async fn grpc_web_text(
        &self,
        token: &str,
        request: &customers::GetCustomerRequest,
    ) -> customers::GetCustomerResponse {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let message = prost::Message::encode_to_vec(request);
        let mut frame = vec![0];
        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        frame.extend_from_slice(&message);
        let bearer = format!("Bearer {token}");
        let reply = self
            .http1(
                Method::POST,
                "/crm.customers.v1.CustomerService/GetCustomer",
                &[
                    ("content-type", "application/grpc-web-text"),
                    ("accept", "application/grpc-web-text"),
                    ("x-grpc-web", "1"),
                    ("authorization", &bearer),
                ],
                b64.encode(&frame),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(!reply.body.is_empty(), "an answer, not {:?}", reply.headers);
        assert!(
            reply.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/grpc-web-text")
        );
        // the answer: base64 chunks, each padded to whole 4-character groups (a group decodes on
        // its own), the message frame then the trailer frame
        let mut bytes = Vec::new();
        for group in reply.body.chunks(4) {
            bytes.extend(b64.decode(group).expect("base64"));
        }
        assert_eq!(bytes[0], 0, "a message frame first");
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        let answer = prost::Message::decode(&bytes[5..5 + len]).unwrap();
        let trailer = String::from_utf8_lossy(&bytes[5 + len + 5..]).to_string();
        assert!(trailer.contains("grpc-status:0"), "{trailer}");
        answer
    }

    /// A user's access token, logged in over JSON.
    async fn login(&self, username: &str) -> String {
        let reply = self
            .json(
                "crm.gateway.v1.AuthService/Login",
                None,
                json!({ "username": username, "password": crm_tests::PASSWORD }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
        reply.json()["accessToken"].as_str().unwrap().to_string()
    }

    fn customers(
        &self,
        token: &str,
    ) -> CustomerServiceClient<
        tonic::service::interceptor::InterceptedService<Channel, testing::Bearer>,
    > {
        CustomerServiceClient::with_interceptor(self.gateway.clone(), testing::Bearer::new(token))
    }
}

#[tokio::test]
async fn customers_over_json_grpc_web_and_grpc_answer_alike_errors_included() {
    let p = Platform::start(|_| {}).await;
    let rep = p.login("rep.east").await;
    let mut grpc = p.customers(&rep);

    // created over JSON (its trace, continued from the caller's traceparent and answered as
    // x-trace-id, is checked in traces.rs, where telemetry is on)
    let created = p
        .json(
            "crm.customers.v1.CustomerService/CreateCustomer",
            Some(&rep),
            json!({
                "requestId": rid(),
                "customer": {
                    "displayName": "深圳华星科技有限公司",
                    "region": "华东",
                    "contacts": [{ "name": "王晓明", "phone": "+86 138 0013 8000" }],
                    "tier": "TIER_ORDINARY",
                },
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.json());
    assert_eq!(
        created.headers["content-type"], "application/json",
        "a JSON answer"
    );
    let customer = created.json()["customer"].clone();
    assert_eq!(customer["displayName"], "深圳华星科技有限公司");
    let id = customer["id"].as_str().unwrap().to_string();
    assert!(
        customer["version"].is_string(),
        "64-bit integers are strings in the proto3 JSON mapping: {customer}"
    );

    // the same customer, three ways
    let get = customers::GetCustomerRequest { id: id.clone() };
    let over_grpc = grpc.get_customer(get.clone()).await.unwrap().into_inner();
    let over_json = p
        .json(
            "crm.customers.v1.CustomerService/GetCustomer",
            Some(&rep),
            json!({ "id": id }),
        )
        .await;
    assert_eq!(over_json.status, StatusCode::OK);
    let over_json: customers::GetCustomerResponse = p.typed(&over_json.json());
    let over_web: customers::GetCustomerResponse = p
        .grpc_web("crm.customers.v1.CustomerService/GetCustomer", &rep, &get)
        .await
        .unwrap();
    // and gRPC-Web's text mode (base64 frames), what grpc-web's default browser client sends
    let over_text = p.grpc_web_text(&rep, &get).await;
    assert_eq!(over_text, over_grpc);
    assert_eq!(over_json, over_grpc);
    assert_eq!(over_web, over_grpc);
    assert_eq!(
        over_grpc.customer.as_ref().unwrap().tier,
        customers::Tier::Ordinary as i32
    );

    // a list, three ways
    let list = customers::ListCustomersRequest {
        filter: Some(customers::CustomerFilter {
            region: "华东".into(),
            ..Default::default()
        }),
        page: None,
    };
    let over_grpc = grpc
        .list_customers(list.clone())
        .await
        .unwrap()
        .into_inner();
    let over_json = p
        .json(
            "crm.customers.v1.CustomerService/ListCustomers",
            Some(&rep),
            json!({ "filter": { "region": "华东" } }),
        )
        .await;
    let over_json: customers::ListCustomersResponse = p.typed(&over_json.json());
    let over_web: customers::ListCustomersResponse = p
        .grpc_web(
            "crm.customers.v1.CustomerService/ListCustomers",
            &rep,
            &list,
        )
        .await
        .unwrap();
    assert_eq!(over_grpc.customers.len(), 1);
    assert_eq!(over_json, over_grpc);
    assert_eq!(over_web, over_grpc);

    // the same refusal, three ways: a customer without a name or contacts
    let bad = customers::CreateCustomerRequest {
        request_id: rid(),
        customer: Some(customers::Customer {
            region: "华东".into(),
            ..Default::default()
        }),
    };
    let over_grpc = grpc.create_customer(bad.clone()).await.unwrap_err();
    assert_eq!(over_grpc.code(), Code::InvalidArgument);
    let expected = bad_fields(&over_grpc);
    assert!(!expected.is_empty());
    let over_json = p
        .json(
            "crm.customers.v1.CustomerService/CreateCustomer",
            Some(&rep),
            json!({ "requestId": bad.request_id, "customer": { "region": "华东" } }),
        )
        .await;
    assert_eq!(over_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(over_json.code(), "invalid_argument");
    assert_eq!(over_json.fields(), expected, "{}", over_json.json());
    assert_eq!(over_json.json()["message"], over_grpc.message());
    let over_web = p
        .grpc_web::<_, customers::CreateCustomerResponse>(
            "crm.customers.v1.CustomerService/CreateCustomer",
            &rep,
            &bad,
        )
        .await
        .unwrap_err();
    assert_eq!(over_web.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&over_web), expected);

    // unknown ids, other regions, missing rights and missing tokens: the same codes
    let south = p.login("rep.south").await;
    for (token, body, code, http) in [
        (
            Some(rep.as_str()),
            json!({ "id": uuid::Uuid::now_v7().to_string() }),
            Code::NotFound,
            StatusCode::NOT_FOUND,
        ),
        (
            Some(south.as_str()),
            json!({ "id": id }),
            Code::NotFound,
            StatusCode::NOT_FOUND,
        ),
        (
            None,
            json!({ "id": id }),
            Code::Unauthenticated,
            StatusCode::UNAUTHORIZED,
        ),
        (
            Some("not-a-token"),
            json!({ "id": id }),
            Code::Unauthenticated,
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let reply = p
            .json("crm.customers.v1.CustomerService/GetCustomer", token, body)
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (http, connect_code(code).to_string()),
            "{}",
            reply.json()
        );
    }
    let agent = p.login("agent").await;
    let denied = p
        .json(
            "crm.customers.v1.CustomerService/DeleteCustomer",
            Some(&agent),
            json!({ "id": id, "version": "1" }),
        )
        .await;
    assert_eq!(
        (denied.status, denied.code().as_str()),
        (StatusCode::FORBIDDEN, "permission_denied")
    );
    let over_grpc = p
        .customers(&agent)
        .delete_customer(customers::DeleteCustomerRequest {
            id: id.clone(),
            version: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(over_grpc.code(), Code::PermissionDenied);

    // the JSON change is audited with its caller, read back over JSON by the admin
    let admin = p.login("admin").await;
    let audit = p
        .json(
            "crm.gateway.v1.AdminService/ListAuditEvents",
            Some(&admin),
            json!({ "service": "customers" }),
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.json());
    let events = audit.json()["events"].clone();
    let create = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["method"] == "crm.customers.v1.CustomerService/CreateCustomer")
        .unwrap_or_else(|| panic!("the create is audited: {events}"));
    let who = p
        .json("crm.gateway.v1.AuthService/WhoAmI", Some(&rep), json!({}))
        .await
        .json();
    assert_eq!(create["actor"], who["caller"]["subject"]);
    assert_eq!(create["resource"], format!("customers/{id}"));
}

#[tokio::test]
async fn a_ticket_steps_over_json_as_it_does_over_grpc() {
    let p = Platform::start(|_| {}).await;
    let customer = p.running.customer("深圳华星科技有限公司", "华东").await;
    let agent = p.login("agent").await;
    let mut grpc =
        TicketServiceClient::with_interceptor(p.gateway.clone(), testing::Bearer::new(&agent));
    let open = |serial: &str| tickets::CreateTicketRequest {
        request_id: rid(),
        ticket: Some(tickets::Ticket {
            channel: tickets::Channel::Hotline as i32,
            customer_id: customer.clone(),
            region: "华东".into(),
            contact_name: "王晓明".into(),
            contact_phone: "+86 138 0013 8000".into(),
            product_model: "X200".into(),
            serial_number: serial.into(),
            symptom: "系统升级后无法登录".into(),
            warranty: tickets::Warranty::InWarranty as i32,
            service_mode: tickets::ServiceMode::OnSite as i32,
            ..Default::default()
        }),
    };
    let by_grpc = grpc
        .create_ticket(open("SN-0001"))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    let by_json = p
        .json(
            "crm.tickets.v1.TicketService/CreateTicket",
            Some(&agent),
            json!({
                "requestId": rid(),
                "ticket": {
                    "channel": "CHANNEL_HOTLINE",
                    "customerId": customer,
                    "region": "华东",
                    "contactName": "王晓明",
                    "contactPhone": "+86 138 0013 8000",
                    "productModel": "X200",
                    "serialNumber": "SN-0002",
                    "symptom": "系统升级后无法登录",
                    "warranty": "WARRANTY_IN_WARRANTY",
                    "serviceMode": "SERVICE_MODE_ON_SITE",
                },
            }),
        )
        .await;
    assert_eq!(by_json.status, StatusCode::OK, "{}", by_json.json());
    let by_json: tickets::CreateTicketResponse = p.typed(&by_json.json());
    let by_json = by_json.ticket.unwrap();
    assert_eq!(by_json.state, by_grpc.state);

    // the same step: over gRPC on one, over JSON on the other; both land alike
    let step = |id: &str| tickets::TransitionTicketRequest {
        request_id: rid(),
        id: id.into(),
        transition: tickets::Transition::HandToHotlineEngineer as i32,
        ..Default::default()
    };
    let stepped_grpc = grpc
        .transition_ticket(step(&by_grpc.id))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    let request_id = rid();
    let body = json!({
        "requestId": request_id,
        "id": by_json.id,
        "transition": "TRANSITION_HAND_TO_HOTLINE_ENGINEER",
    });
    let reply = p
        .json(
            "crm.tickets.v1.TicketService/TransitionTicket",
            Some(&agent),
            body.clone(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    let stepped_json: tickets::TransitionTicketResponse = p.typed(&reply.json());
    let stepped_json = stepped_json.ticket.unwrap();
    assert_eq!(stepped_json.state, stepped_grpc.state);
    assert_eq!(stepped_json.tier, stepped_grpc.tier);
    let read = grpc
        .get_ticket(tickets::GetTicketRequest {
            id: by_json.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(
        read, stepped_json,
        "what JSON was answered is what is stored"
    );

    // a retry of the JSON request is answered from the first; a new one is refused alike
    let again = p
        .json(
            "crm.tickets.v1.TicketService/TransitionTicket",
            Some(&agent),
            body,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json(), reply.json());
    let refused_grpc = grpc.transition_ticket(step(&by_grpc.id)).await.unwrap_err();
    let refused_json = p
        .json(
            "crm.tickets.v1.TicketService/TransitionTicket",
            Some(&agent),
            json!({
                "requestId": rid(),
                "id": by_json.id,
                "transition": "TRANSITION_HAND_TO_HOTLINE_ENGINEER",
            }),
        )
        .await;
    assert_eq!(refused_json.code(), connect_code(refused_grpc.code()));
    assert_eq!(refused_json.json()["message"], refused_grpc.message());
}

#[tokio::test]
async fn a_partner_on_json_sees_only_its_own_repair_orders() {
    let p = Platform::start(|s| {
        s.rate_limit.roles.insert(
            "partner".into(),
            Rate {
                per_second: 500,
                burst: 500,
            },
        );
    })
    .await;
    let admin_token = p.login("admin").await;
    let mut admin = RepairServiceClient::with_interceptor(
        p.gateway.clone(),
        testing::Bearer::new(&admin_token),
    );
    let mut orders = std::collections::BTreeMap::new();
    let mut keys = std::collections::BTreeMap::new();
    for partner in ["partner.a", "partner.b"] {
        let centre = admin
            .create_centre(repairs::CreateCentreRequest {
                request_id: rid(),
                centre: Some(repairs::Centre {
                    code: partner.to_uppercase().replace('.', "-"),
                    name: format!("{partner} 维修中心"),
                    kind: repairs::CentreKind::Partner as i32,
                    region: "华南".into(),
                    address: "深圳市南山区科技园".into(),
                    opening_hours: "周一至周五 09:00–18:00".into(),
                    partner_id: partner.into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .centre
            .unwrap();
        let order = admin
            .create_repair_order(repairs::CreateRepairOrderRequest {
                request_id: rid(),
                repair_order: Some(repairs::RepairOrder {
                    centre_id: centre.id.clone(),
                    kind: repairs::OrderKind::CarryIn as i32,
                    contact_name: "王晓明".into(),
                    contact_phone: "+86 138 0013 8000".into(),
                    product_model: "X200".into(),
                    serial_number: format!("SN-{partner}"),
                    fault_description: "无法开机".into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .repair_order
            .unwrap();
        orders.insert(partner, order.id);
        keys.insert(partner, p.running.partner_key(partner).await);
    }

    // partner A exchanges its key over JSON, as its PHP system would
    let exchanged = p
        .json(
            "crm.gateway.v1.AuthService/ExchangeApiKey",
            None,
            json!({ "apiKey": keys["partner.a"] }),
        )
        .await;
    assert_eq!(exchanged.status, StatusCode::OK, "{}", exchanged.json());
    let token = exchanged.json()["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(exchanged.json()["caller"]["partnerId"], "partner.a");

    let listed = p
        .json(
            "crm.repairs.v1.RepairService/ListRepairOrders",
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.json());
    let over_json: repairs::ListRepairOrdersResponse = p.typed(&listed.json());
    let ids: Vec<_> = over_json.repair_orders.iter().map(|o| &o.id).collect();
    assert_eq!(ids, [&orders["partner.a"]], "only its own order");
    let over_web: repairs::ListRepairOrdersResponse = p
        .grpc_web(
            "crm.repairs.v1.RepairService/ListRepairOrders",
            &token,
            &repairs::ListRepairOrdersRequest::default(),
        )
        .await
        .unwrap();
    let over_grpc =
        RepairServiceClient::with_interceptor(p.gateway.clone(), testing::Bearer::new(&token))
            .list_repair_orders(repairs::ListRepairOrdersRequest::default())
            .await
            .unwrap()
            .into_inner();
    assert_eq!(over_json, over_grpc);
    assert_eq!(over_web, over_grpc);

    // B's order does not exist for A, on every protocol
    let other = p
        .json(
            "crm.repairs.v1.RepairService/GetRepairOrder",
            Some(&token),
            json!({ "id": orders["partner.b"] }),
        )
        .await;
    assert_eq!(
        (other.status, other.code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let over_web = p
        .grpc_web::<_, repairs::GetRepairOrderResponse>(
            "crm.repairs.v1.RepairService/GetRepairOrder",
            &token,
            &repairs::GetRepairOrderRequest {
                id: orders["partner.b"].clone(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(over_web.code(), Code::NotFound);
    let customers = p
        .json(
            "crm.customers.v1.CustomerService/ListCustomers",
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(customers.code(), "permission_denied", "the policy holds");
}

/// What is sent, and what must come back: (what, method, path, headers, body, HTTP status,
/// Connect code, a word the message says).
type BadCase<'a> = (
    &'a str,
    Method,
    &'a str,
    Vec<(&'a str, &'a str)>,
    Bytes,
    StatusCode,
    &'a str,
    &'a str,
);

#[tokio::test]
async fn bad_http_input_gets_a_connect_error_and_the_gateway_stays_up() {
    let p = Platform::start(|s| {
        s.server.max_message_bytes = 64 * 1024;
        s.rate_limit.roles.insert(
            "sales_rep".into(),
            Rate {
                per_second: 1,
                burst: 12,
            },
        );
    })
    .await;
    let rep = p.login("rep.east").await;
    let get = "/crm.customers.v1.CustomerService/GetCustomer";
    let bearer = format!("Bearer {rep}");
    let json_headers = [
        ("content-type", "application/json"),
        ("authorization", bearer.as_str()),
    ];
    let cases: Vec<BadCase> = vec![
        (
            "malformed JSON",
            Method::POST,
            get,
            json_headers.to_vec(),
            Bytes::from_static(b"{\"id\": "),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "EOF",
        ),
        (
            "an unknown field",
            Method::POST,
            get,
            json_headers.to_vec(),
            Bytes::from_static(br#"{"id": "x", "customerName": "y"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "customerName",
        ),
        (
            "a wrong type",
            Method::POST,
            get,
            json_headers.to_vec(),
            Bytes::from_static(br#"{"id": 42}"#),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "expected a string",
        ),
        (
            "a body past the size limit",
            Method::POST,
            get,
            json_headers.to_vec(),
            Bytes::from(format!(r#"{{"id": "{}"}}"#, "x".repeat(100 * 1024))),
            StatusCode::TOO_MANY_REQUESTS,
            "resource_exhausted",
            "limit",
        ),
        (
            "an unknown method",
            Method::POST,
            "/crm.customers.v1.CustomerService/StealCustomers",
            json_headers.to_vec(),
            Bytes::from_static(b"{}"),
            StatusCode::NOT_FOUND,
            "unimplemented",
            "no method",
        ),
        (
            "a streaming method",
            Method::POST,
            "/crm.customers.v1.CustomerService/UploadImport",
            json_headers.to_vec(),
            Bytes::from_static(b"{}"),
            StatusCode::NOT_IMPLEMENTED,
            "unimplemented",
            "gRPC",
        ),
        (
            "no content type",
            Method::POST,
            get,
            vec![("authorization", bearer.as_str())],
            Bytes::from_static(br#"{"id": "x"}"#),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unimplemented",
            "application/json",
        ),
        (
            "a wrong content type",
            Method::POST,
            get,
            vec![
                ("content-type", "text/plain"),
                ("authorization", bearer.as_str()),
            ],
            Bytes::from_static(br#"{"id": "x"}"#),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unimplemented",
            "text/plain",
        ),
        (
            "a GET",
            Method::GET,
            get,
            json_headers.to_vec(),
            Bytes::new(),
            StatusCode::METHOD_NOT_ALLOWED,
            "unimplemented",
            "POST",
        ),
        (
            "a bad deadline",
            Method::POST,
            get,
            [json_headers.as_slice(), &[("connect-timeout-ms", "soon")]].concat(),
            Bytes::from_static(br#"{"id": "x"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "connect-timeout-ms",
        ),
        (
            "a compressed body",
            Method::POST,
            get,
            [json_headers.as_slice(), &[("content-encoding", "br")]].concat(),
            Bytes::from_static(br#"{"id": "x"}"#),
            StatusCode::NOT_IMPLEMENTED,
            "unimplemented",
            "content-encoding",
        ),
    ];
    for (what, method, path, headers, body, status, code, says) in cases {
        let reply = p.http1(method, path, &headers, body).await;
        let json = reply.json();
        assert_eq!(
            (reply.status, json["code"].as_str().unwrap_or("")),
            (status, code),
            "{what}: {json}"
        );
        let message = json["message"].as_str().unwrap_or("");
        assert!(message.contains(says), "{what}: {message}");
    }

    // a body is read only once the call is authenticated: an anonymous chunked upload of
    // 100 KiB of garbage (no content-length to refuse it by) is refused for its missing token
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(p.addr).await.unwrap();
        let garbage = "x".repeat(100 * 1024);
        let request = format!(
            "POST {get} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\n\r\n{:x}\r\n{garbage}\r\n0\r\n\r\n",
            p.addr,
            garbage.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = vec![0; 4096];
        let n = stream.read(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]).to_string();
        assert!(
            answer.starts_with("HTTP/1.1 401") && answer.contains("unauthenticated"),
            "{answer}"
        );
    }

    // still up: a good call is answered, in binary protobuf too
    let created = p
        .customers(&rep)
        .create_customer(customers::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(customers::Customer {
                display_name: "上海明远贸易有限公司".into(),
                region: "华东".into(),
                contacts: vec![customers::Contact {
                    name: "李娜".into(),
                    phone: "+86 139 0000 1111".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    let proto = p
        .http1(
            Method::POST,
            get,
            &[
                ("content-type", "application/proto"),
                ("authorization", bearer.as_str()),
            ],
            prost::Message::encode_to_vec(&customers::GetCustomerRequest {
                id: created.id.clone(),
            }),
        )
        .await;
    assert_eq!(proto.status, StatusCode::OK);
    assert_eq!(proto.headers["content-type"], "application/proto");
    let answer: customers::GetCustomerResponse = prost::Message::decode(proto.body).unwrap();
    assert_eq!(answer.customer.unwrap().id, created.id);

    // a deadline already past is the service's DEADLINE_EXCEEDED
    let late = p
        .json_with(
            "crm.customers.v1.CustomerService/ListCustomers",
            Some(&rep),
            &[("connect-timeout-ms", "0")],
            json!({}),
        )
        .await;
    assert_eq!(
        (late.status, late.code().as_str()),
        (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded")
    );

    // and the rate limit counts JSON calls like any others
    let mut limited = 0;
    for _ in 0..20 {
        let reply = p
            .json(
                "crm.customers.v1.CustomerService/GetCustomer",
                Some(&rep),
                json!({ "id": created.id }),
            )
            .await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(reply.code(), "resource_exhausted");
            limited += 1;
        } else {
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
        }
    }
    assert!(
        limited > 0,
        "some of 20 calls past a burst of 12 are refused"
    );
}

#[tokio::test]
async fn cors_is_off_by_default_and_answers_only_the_configured_origins() {
    let preflight = |origin: &'static str| {
        [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type,authorization,x-grpc-web",
            ),
        ]
    };
    let path = "/crm.customers.v1.CustomerService/GetCustomer";

    let closed = Platform::start(|_| {}).await;
    let reply = closed
        .http1(
            Method::OPTIONS,
            path,
            &preflight("https://portal.example.com"),
            Bytes::new(),
        )
        .await;
    assert!(
        !reply.headers.contains_key("access-control-allow-origin"),
        "no origin is allowed by default"
    );
    // the OpenAPI document is served, listing what the descriptors hold
    let document = closed
        .http1(Method::GET, "/openapi.json", &[], Bytes::new())
        .await;
    assert_eq!(document.status, StatusCode::OK);
    assert_eq!(document.headers["content-type"], "application/json");
    let document = document.json();
    assert_eq!(document["openapi"], "3.0.3");
    assert!(
        document["paths"]["/crm.repairs.v1.RepairService/ListRepairOrders"]["post"].is_object()
    );

    let open = Platform::start_with(
        &[(
            "gateway.http.cors_origins",
            "https://portal.example.com".to_string(),
        )],
        |_| {},
    )
    .await;
    let allowed = open
        .http1(
            Method::OPTIONS,
            path,
            &preflight("https://portal.example.com"),
            Bytes::new(),
        )
        .await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(
        allowed.headers["access-control-allow-origin"],
        "https://portal.example.com"
    );
    let methods = allowed.headers["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let other = open
        .http1(
            Method::OPTIONS,
            path,
            &preflight("https://evil.example.net"),
            Bytes::new(),
        )
        .await;
    assert!(
        !other.headers.contains_key("access-control-allow-origin"),
        "another origin is not allowed"
    );
    // a real call from the allowed origin is answered with its CORS headers
    let token = open.login("rep.east").await;
    let reply = open
        .json_with(
            "crm.customers.v1.CustomerService/ListCustomers",
            Some(&token),
            &[("origin", "https://portal.example.com")],
            json!({}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers["access-control-allow-origin"],
        "https://portal.example.com"
    );
    let exposed = reply.headers["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("x-trace-id"), "{exposed}");
}
