//! Repair logistics through the gateway, as a partner repair centre and the service
//! organisation's staff use it: two partner organisations each with its own API key, an admin
//! and a coordinator who log in. A partner sees and changes only its own centres' stock and
//! part requests on every method (totals included); fifty reservations at once against ten
//! units in stock give exactly ten; a part request goes reserved → issued → settled with
//! every part back, and the centre is told once when its stock runs low.

use std::collections::BTreeMap;

use crm_kit::{Clock, ratelimit::Rate, testing};
use crm_proto::{
    gateway::v1::{self as gw, auth_service_client::AuthServiceClient},
    repairs::v1::{
        self as pb, CentreKind, OrderKind, OrderState, OrderTransition, PartRequestState,
        repair_service_client::RepairServiceClient,
    },
};
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};

type Repairs = RepairServiceClient<InterceptedService<Channel, testing::Bearer>>;

struct Platform {
    running: crm_tests::Running,
    gateway: Channel,
}

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Platform {
    /// The platform with an admin, a coordinator and an engineer at the gateway.
    async fn start() -> Self {
        let mut env = testing::test_env().await;
        // the partners' own limit (20 a second) is the gateway's concern, tested there
        env.settings.rate_limit.roles.insert(
            "partner".into(),
            Rate {
                per_second: 500,
                burst: 500,
            },
        );
        let running = crm_tests::start(env.settings, Clock::system())
            .await
            .expect("platform starts");
        running
            .users(&[
                ("admin", "admin", ""),
                ("coordinator", "coordinator", ""),
                ("engineer", "engineer", "华南"),
            ])
            .await;
        let gateway = running.channel("gateway").await;
        Self { running, gateway }
    }

    fn client(&self, token: &str) -> Repairs {
        RepairServiceClient::with_interceptor(self.gateway.clone(), testing::Bearer::new(token))
    }

    /// A logged-in user's access token.
    async fn token(&self, username: &str) -> String {
        AuthServiceClient::new(self.gateway.clone())
            .login(gw::LoginRequest {
                username: username.into(),
                password: crm_tests::PASSWORD.into(),
            })
            .await
            .expect("login")
            .into_inner()
            .access_token
    }

    /// A logged-in user's client.
    async fn user(&self, username: &str) -> Repairs {
        let token = self.token(username).await;
        self.client(&token)
    }

    /// A partner system's client (see [`Platform::partner_token`]).
    async fn partner(&self, partner: &str) -> Repairs {
        let token = self.partner_token(partner).await;
        self.client(&token)
    }

    /// A partner system's token: an API key of `partner` made by the admin, exchanged at the
    /// gateway as the partner would.
    async fn partner_token(&self, partner: &str) -> String {
        let key = self.running.partner_key(partner).await;
        AuthServiceClient::new(self.gateway.clone())
            .exchange_api_key(gw::ExchangeApiKeyRequest { api_key: key })
            .await
            .expect("the key is exchanged")
            .into_inner()
            .access_token
    }
}

async fn centre(admin: &mut Repairs, code: &str, kind: CentreKind, partner: &str) -> pb::Centre {
    admin
        .create_centre(pb::CreateCentreRequest {
            request_id: rid(),
            centre: Some(pb::Centre {
                code: code.into(),
                name: format!("{code} 维修中心"),
                kind: kind as i32,
                region: "华南".into(),
                address: "深圳市南山区科技园".into(),
                opening_hours: "周一至周五 09:00–18:00".into(),
                partner_id: partner.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("a centre")
        .into_inner()
        .centre
        .unwrap()
}

async fn part(admin: &mut Repairs, number: &str, minimum: i32) -> pb::Part {
    admin
        .create_part(pb::CreatePartRequest {
            request_id: rid(),
            part: Some(pb::Part {
                part_number: number.into(),
                name: format!("{number} 备件"),
                serialised: false,
                minimum_stock: minimum,
                ..Default::default()
            }),
        })
        .await
        .expect("a part")
        .into_inner()
        .part
        .unwrap()
}

async fn receive(client: &mut Repairs, centre: &str, part: &str, quantity: i32) -> pb::Stock {
    client
        .receive_stock(pb::ReceiveStockRequest {
            request_id: rid(),
            centre_id: centre.into(),
            part_id: part.into(),
            quantity,
            note: "delivery".into(),
        })
        .await
        .expect("stock received")
        .into_inner()
        .stock
        .unwrap()
}

async fn request(
    client: &mut Repairs,
    centre: &str,
    part: &str,
    quantity: i32,
) -> Result<pb::RequestPartsResponse, tonic::Status> {
    client
        .request_parts(pb::RequestPartsRequest {
            request_id: rid(),
            centre_id: centre.into(),
            part_id: part.into(),
            quantity,
            ticket_id: String::new(),
            note: "on-site job".into(),
        })
        .await
        .map(|r| r.into_inner())
}

fn order(kind: OrderKind) -> pb::RepairOrder {
    pb::RepairOrder {
        kind: kind as i32,
        contact_name: "王晓明".into(),
        contact_phone: "+86 138 0013 8000".into(),
        product_model: "X200".into(),
        serial_number: "SN-0001".into(),
        fault_description: "无法开机".into(),
        ..Default::default()
    }
}

async fn create_order(client: &mut Repairs, centre: &str, kind: OrderKind) -> pb::RepairOrder {
    client
        .create_repair_order(pb::CreateRepairOrderRequest {
            request_id: rid(),
            repair_order: Some(pb::RepairOrder {
                centre_id: centre.into(),
                ..order(kind)
            }),
        })
        .await
        .expect("a repair order")
        .into_inner()
        .repair_order
        .unwrap()
}

/// Takes `id` one step; the response.
async fn go(
    client: &mut Repairs,
    id: &str,
    transition: OrderTransition,
    edit: impl FnOnce(&mut pb::TransitionRepairOrderRequest),
) -> Result<pb::TransitionRepairOrderResponse, tonic::Status> {
    let mut r = pb::TransitionRepairOrderRequest {
        request_id: rid(),
        id: id.into(),
        transition: transition as i32,
        ..Default::default()
    };
    edit(&mut r);
    client
        .transition_repair_order(r)
        .await
        .map(|r| r.into_inner())
}

fn state(r: &pb::TransitionRepairOrderResponse) -> OrderState {
    OrderState::try_from(r.repair_order.as_ref().unwrap().state).unwrap()
}

/// The code of a call's outcome.
fn code<T>(r: Result<T, tonic::Status>) -> Code {
    r.map_or_else(|s| s.code(), |_| Code::Ok)
}

fn field(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_partner_sees_and_changes_only_its_own_centres_on_every_method() {
    let p = Platform::start().await;
    let mut admin = p.user("admin").await;
    let hq = centre(&mut admin, "HQ", CentreKind::Hq, "").await;
    let a = centre(&mut admin, "SZ-A", CentreKind::Partner, "partner.a").await;
    let b = centre(&mut admin, "GZ-B", CentreKind::Agent, "partner.b").await;
    let psu = part(&mut admin, "PSU-500W", 0).await;
    receive(&mut admin, &hq.id, &psu.id, 100).await;
    receive(&mut admin, &b.id, &psu.id, 7).await;

    let mut pa = p.partner("partner.a").await;
    let mut pb_ = p.partner("partner.b").await;
    // each partner books its own deliveries and requests its own parts
    receive(&mut pa, &a.id, &psu.id, 10).await;
    request(&mut pa, &a.id, &psu.id, 2)
        .await
        .expect("A's own request");
    let b_request = request(&mut pb_, &b.id, &psu.id, 3)
        .await
        .expect("B's own request")
        .part_request
        .unwrap();

    let b_order = create_order(&mut pb_, &b.id, OrderKind::CarryIn).await;
    // B's swap (its removed unit on the way to HQ) and a transfer from HQ to B
    let b_repair = create_order(&mut pb_, &b.id, OrderKind::CarryIn).await;
    go(&mut pb_, &b_repair.id, OrderTransition::Inspect, |r| {
        r.configuration = "8G".into();
        r.customer_confirmed = true;
    })
    .await
    .unwrap();
    let psu_s = serial_part(&mut admin, "PSU-S").await;
    let b_swap = pb_
        .record_swap(swap(&b.id, &psu_s.id, &b_repair.id, "B0", "B1", &hq.id))
        .await
        .unwrap()
        .into_inner()
        .swap
        .unwrap();
    let b_transfer = admin
        .transfer_stock(pb::TransferStockRequest {
            request_id: rid(),
            transfer: Some(pb::Transfer {
                from_centre_id: hq.id.clone(),
                to_centre_id: b.id.clone(),
                part_id: psu.id.clone(),
                quantity: 1,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    let a_order = create_order(&mut pa, &a.id, OrderKind::MailIn).await;

    // A's lists and totals hold only A's rows
    let centres = pa
        .list_centres(pb::ListCentresRequest::default())
        .await
        .unwrap()
        .into_inner()
        .centres;
    assert_eq!(
        centres.iter().map(|c| c.code.as_str()).collect::<Vec<_>>(),
        ["SZ-A"]
    );
    let stock = pa
        .list_stock(pb::ListStockRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stock;
    assert_eq!(
        stock
            .iter()
            .map(|s| (s.centre_id.as_str(), s.on_hand, s.reserved))
            .collect::<Vec<_>>(),
        [(a.id.as_str(), 10, 2)]
    );
    let totals = pa
        .summarise_stock(pb::SummariseStockRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (totals.on_hand, totals.reserved, totals.centres.len()),
        (10, 2, 1)
    );
    let requests = pa
        .list_part_requests(pb::ListPartRequestsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .part_requests;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].centre_id, a.id);
    let orders = pa
        .list_repair_orders(pb::ListRepairOrdersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .repair_orders;
    assert_eq!(
        orders.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        [a_order.id.as_str()]
    );
    // the staff see everything
    let all = admin
        .summarise_stock(pb::SummariseStockRequest {})
        .await
        .unwrap()
        .into_inner();
    // 100 + 7 + 10, less the unit in transit from HQ to B
    assert_eq!((all.on_hand, all.reserved, all.centres.len()), (116, 5, 3));

    // A's token on every method with B's ids: NOT_FOUND (or PERMISSION_DENIED), never data
    let mut refusals: BTreeMap<&str, Code> = BTreeMap::new();
    refusals.insert(
        "GetCentre",
        code(
            pa.get_centre(pb::GetCentreRequest { id: b.id.clone() })
                .await,
        ),
    );
    refusals.insert(
        "GetStock",
        code(
            pa.get_stock(pb::GetStockRequest {
                centre_id: b.id.clone(),
                part_id: psu.id.clone(),
            })
            .await,
        ),
    );
    refusals.insert(
        "ListStock",
        code(
            pa.list_stock(pb::ListStockRequest {
                centre_id: b.id.clone(),
                ..Default::default()
            })
            .await,
        ),
    );
    refusals.insert(
        "ListPartRequests",
        code(
            pa.list_part_requests(pb::ListPartRequestsRequest {
                centre_id: b.id.clone(),
                ..Default::default()
            })
            .await,
        ),
    );
    refusals.insert(
        "ReceiveStock",
        code(
            pa.receive_stock(pb::ReceiveStockRequest {
                request_id: rid(),
                centre_id: b.id.clone(),
                part_id: psu.id.clone(),
                quantity: 1,
                note: String::new(),
            })
            .await,
        ),
    );
    refusals.insert(
        "RequestParts",
        code(request(&mut pa, &b.id, &psu.id, 1).await),
    );
    refusals.insert(
        "GetPartRequest",
        code(
            pa.get_part_request(pb::GetPartRequestRequest {
                id: b_request.id.clone(),
            })
            .await,
        ),
    );
    refusals.insert(
        "IssuePartRequest",
        code(
            pa.issue_part_request(pb::IssuePartRequestRequest {
                request_id: rid(),
                id: b_request.id.clone(),
            })
            .await,
        ),
    );
    refusals.insert(
        "SettlePartRequest",
        code(
            pa.settle_part_request(pb::SettlePartRequestRequest {
                request_id: rid(),
                id: b_request.id.clone(),
                used: 3,
                returned: 0,
            })
            .await,
        ),
    );
    refusals.insert(
        "CancelPartRequest",
        code(
            pa.cancel_part_request(pb::CancelPartRequestRequest {
                request_id: rid(),
                id: b_request.id.clone(),
                reason: "not mine".into(),
            })
            .await,
        ),
    );
    refusals.insert(
        "CreateCentre",
        code(
            pa.create_centre(pb::CreateCentreRequest {
                request_id: rid(),
                centre: b.clone().into(),
            })
            .await,
        ),
    );
    refusals.insert(
        "CreatePart",
        code(
            pa.create_part(pb::CreatePartRequest {
                request_id: rid(),
                part: psu.clone().into(),
            })
            .await,
        ),
    );
    refusals.insert(
        "CreateRepairOrder",
        code(
            pa.create_repair_order(pb::CreateRepairOrderRequest {
                request_id: rid(),
                repair_order: Some(pb::RepairOrder {
                    centre_id: b.id.clone(),
                    ..order(OrderKind::CarryIn)
                }),
            })
            .await,
        ),
    );
    refusals.insert(
        "GetRepairOrder",
        code(
            pa.get_repair_order(pb::GetRepairOrderRequest {
                id: b_order.id.clone(),
            })
            .await,
        ),
    );
    refusals.insert(
        "ListRepairOrders",
        code(
            pa.list_repair_orders(pb::ListRepairOrdersRequest {
                centre_id: b.id.clone(),
                ..Default::default()
            })
            .await,
        ),
    );
    refusals.insert(
        "TransitionRepairOrder",
        code(
            pa.transition_repair_order(pb::TransitionRepairOrderRequest {
                request_id: rid(),
                id: b_order.id.clone(),
                transition: OrderTransition::Inspect as i32,
                configuration: "8G".into(),
                customer_confirmed: true,
                ..Default::default()
            })
            .await,
        ),
    );
    refusals.insert(
        "ListRepairOrderHistory",
        code(
            pa.list_repair_order_history(pb::ListRepairOrderHistoryRequest {
                id: b_order.id.clone(),
                page: None,
            })
            .await,
        ),
    );
    refusals.insert(
        "RecordSwap",
        code(
            pa.record_swap(swap(&b.id, &psu_s.id, &b_repair.id, "B1", "A1", &a.id))
                .await,
        ),
    );
    refusals.insert(
        "ReceiveReturnedPart",
        code(
            pa.receive_returned_part(pb::ReceiveReturnedPartRequest {
                request_id: rid(),
                swap_id: b_swap.id.clone(),
            })
            .await,
        ),
    );
    refusals.insert(
        "ListSwaps",
        code(
            pa.list_swaps(pb::ListSwapsRequest {
                centre_id: b.id.clone(),
                ..Default::default()
            })
            .await,
        ),
    );
    refusals.insert(
        "GetSerialHistory",
        code(
            pa.get_serial_history(pb::GetSerialHistoryRequest {
                part_id: psu_s.id.clone(),
                serial: "B1".into(),
            })
            .await,
        ),
    );
    refusals.insert(
        "TransferStock",
        code(
            pa.transfer_stock(pb::TransferStockRequest {
                request_id: rid(),
                transfer: Some(pb::Transfer {
                    from_centre_id: b.id.clone(),
                    to_centre_id: a.id.clone(),
                    part_id: psu.id.clone(),
                    quantity: 1,
                    ..Default::default()
                }),
            })
            .await,
        ),
    );
    refusals.insert(
        "ReceiveTransfer",
        code(
            pa.receive_transfer(pb::ReceiveTransferRequest {
                request_id: rid(),
                transfer_id: b_transfer.id.clone(),
            })
            .await,
        ),
    );
    refusals.insert(
        "ListTransfers",
        code(
            pa.list_transfers(pb::ListTransfersRequest {
                centre_id: b.id.clone(),
                page: None,
            })
            .await,
        ),
    );
    let swaps = pa
        .list_swaps(pb::ListSwapsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .swaps;
    assert!(swaps.is_empty(), "A lists none of B's swaps");
    // B's return/exchange request at its agent centre
    let b_customer = uuid::Uuid::new_v4().to_string();
    admin
        .register_delivery(pb::RegisterDeliveryRequest {
            request_id: rid(),
            delivery: Some(pb::Delivery {
                customer_id: b_customer.clone(),
                product_model: "X200".into(),
                serial_number: "B-UNIT".into(),
                quantity: 1,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let b_rma_request = |request_id: String| pb::RequestRmaRequest {
        request_id,
        rma: Some(pb::Rma {
            centre_id: b.id.clone(),
            customer_id: b_customer.clone(),
            serial_number: "B-UNIT".into(),
            quantity: 1,
            reason: "坏".into(),
            ..Default::default()
        }),
    };
    let b_rma = pb_
        .request_rma(b_rma_request(rid()))
        .await
        .unwrap()
        .into_inner()
        .rma
        .unwrap();
    refusals.insert(
        "RequestRma",
        code(pa.request_rma(b_rma_request(rid())).await),
    );
    refusals.insert(
        "GetRma",
        code(
            pa.get_rma(pb::GetRmaRequest {
                id: b_rma.id.clone(),
            })
            .await,
        ),
    );
    refusals.insert(
        "TransitionRma",
        code(
            pa.transition_rma(pb::TransitionRmaRequest {
                request_id: rid(),
                id: b_rma.id.clone(),
                step: pb::RmaStep::Diagnose as i32,
                fault_cause: "x".into(),
                customer_situation: "x".into(),
                return_reason: "x".into(),
                ..Default::default()
            })
            .await,
        ),
    );
    let rmas = pa
        .list_rmas(pb::ListRmasRequest::default())
        .await
        .unwrap()
        .into_inner()
        .rmas;
    assert!(rmas.is_empty(), "A lists none of B's requests");
    let turnaround = pa
        .report_turnaround(pb::ReportTurnaroundRequest {
            from_time: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            to_time: Some(prost_types::Timestamp {
                seconds: 4_000_000_000,
                nanos: 0,
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .centres;
    assert!(
        turnaround.iter().all(|l| l.centre_id == a.id),
        "A's turnaround report holds only its own centre"
    );
    for (method, code) in &refusals {
        let expected = if ["CreateCentre", "CreatePart"].contains(method) {
            Code::PermissionDenied
        } else {
            Code::NotFound
        };
        assert_eq!(*code, expected, "{method} with partner B's ids");
    }
    // every method of the service was tried (the reads of the catalogue hold no partner rows)
    let methods = [
        "GetCentre",
        "ListCentres",
        "CreateCentre",
        "CreatePart",
        "ListParts",
        "ReceiveStock",
        "GetStock",
        "ListStock",
        "SummariseStock",
        "RequestParts",
        "GetPartRequest",
        "ListPartRequests",
        "IssuePartRequest",
        "SettlePartRequest",
        "CancelPartRequest",
    ];
    for m in methods {
        assert!(
            refusals.contains_key(m)
                || [
                    "ListCentres",
                    "ListParts",
                    "SummariseStock",
                    "ReportTurnaround",
                    "RegisterDelivery",
                    "ListRmas"
                ]
                .contains(&m),
            "{m} not tried"
        );
    }

    // B's rows are as B left them
    let b_stock = pb_
        .get_stock(pb::GetStockRequest {
            centre_id: b.id.clone(),
            part_id: psu.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stock
        .unwrap();
    assert_eq!((b_stock.on_hand, b_stock.reserved), (7, 3));
    let b_request = pb_
        .get_part_request(pb::GetPartRequestRequest {
            id: b_request.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .part_request
        .unwrap();
    assert_eq!(b_request.state, PartRequestState::Reserved as i32);
    let b_order = pb_
        .get_repair_order(pb::GetRepairOrderRequest { id: b_order.id })
        .await
        .unwrap()
        .into_inner()
        .repair_order
        .unwrap();
    assert_eq!(b_order.state, OrderState::Received as i32);
}

#[tokio::test]
async fn fifty_reservations_at_once_against_ten_in_stock_give_exactly_ten() {
    let p = Platform::start().await;
    let mut admin = p.user("admin").await;
    let hq = centre(&mut admin, "HQ", CentreKind::Hq, "").await;
    let part = part(&mut admin, "FAN-80", 0).await;
    receive(&mut admin, &hq.id, &part.id, 10).await;
    let coordinator = p.user("coordinator").await;

    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let mut c = coordinator.clone();
        let (centre, part) = (hq.id.clone(), part.id.clone());
        calls.spawn(async move {
            request(&mut c, &centre, &part, 1)
                .await
                .map_err(|s| s.code())
        });
    }
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    while let Some(r) = calls.join_next().await {
        let key = match r.unwrap() {
            Ok(_) => "ok".to_string(),
            Err(code) => format!("{code:?}"),
        };
        *outcomes.entry(key).or_default() += 1;
    }
    assert_eq!(
        outcomes,
        BTreeMap::from([
            ("FailedPrecondition".to_string(), 40),
            ("ok".to_string(), 10)
        ])
    );
    let stock = admin
        .get_stock(pb::GetStockRequest {
            centre_id: hq.id.clone(),
            part_id: part.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stock
        .unwrap();
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.available),
        (10, 10, 0)
    );
    let requests = admin
        .list_part_requests(pb::ListPartRequestsRequest {
            centre_id: hq.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .part_requests;
    assert_eq!(
        requests.len(),
        10,
        "exactly the successful requests were stored"
    );

    // the database refuses an oversell whatever the application does
    let pool = crm_kit::db::connect(&p.running.settings.database, crm_repairs::NAME)
        .await
        .unwrap();
    let refused = sqlx::query("UPDATE stock SET reserved = on_hand + 1")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("stock_reserved_within_on_hand"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_part_request_is_reserved_issued_and_settled_with_every_part_back() {
    let p = Platform::start().await;
    let mut admin = p.user("admin").await;
    let hq = centre(&mut admin, "HQ", CentreKind::Hq, "").await;
    let board = part(&mut admin, "MB-X200", 2).await;
    let stock = receive(&mut admin, &hq.id, &board.id, 5).await;
    assert_eq!((stock.on_hand, stock.minimum, stock.low), (5, 2, false));
    let mut engineer = p.user("engineer").await;
    let mut coordinator = p.user("coordinator").await;
    let pool = crm_kit::db::connect(&p.running.settings.database, crm_repairs::NAME)
        .await
        .unwrap();
    let stored = |table: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {table}"
            )))
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };

    // bad input: named, nothing written
    let status = request(&mut engineer, &hq.id, &uuid::Uuid::new_v4().to_string(), 1)
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), field(&status)),
        (Code::InvalidArgument, vec!["part_id".into()])
    );
    let status = request(&mut engineer, &hq.id, &board.id, 0)
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), field(&status)),
        (Code::InvalidArgument, vec!["quantity".into()])
    );
    let status = request(&mut engineer, &hq.id, &board.id, 6)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("5 available"),
        "{}",
        status.message()
    );
    assert_eq!(stored("part_requests").await, 0);

    // four of five reserved: available 1, below the minimum of 2 — the centre is told once
    let reserved = request(&mut engineer, &hq.id, &board.id, 4).await.unwrap();
    let stock = reserved.stock.unwrap();
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.available, stock.low),
        (5, 4, 1, true)
    );
    let id = reserved.part_request.unwrap().id;
    let issued = coordinator
        .issue_part_request(pb::IssuePartRequestRequest {
            request_id: rid(),
            id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let stock = issued.stock.unwrap();
    assert_eq!((stock.on_hand, stock.reserved, stock.available), (1, 0, 1));
    let outstanding = coordinator
        .list_part_requests(pb::ListPartRequestsRequest {
            outstanding: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .part_requests;
    assert_eq!(
        outstanding
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        [id.as_str()]
    );

    // every part comes back, used or not
    let settle = |used: i32, returned: i32| pb::SettlePartRequestRequest {
        request_id: rid(),
        id: id.clone(),
        used,
        returned,
    };
    let status = coordinator
        .settle_part_request(settle(1, 2))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), field(&status)),
        (Code::InvalidArgument, vec!["returned".into()])
    );
    let status = coordinator
        .cancel_part_request(pb::CancelPartRequestRequest {
            request_id: rid(),
            id: id.clone(),
            reason: "too late".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let settled = coordinator
        .settle_part_request(settle(1, 3))
        .await
        .unwrap()
        .into_inner();
    let request_after = settled.part_request.unwrap();
    assert_eq!(
        (
            request_after.state,
            request_after.used,
            request_after.returned
        ),
        (PartRequestState::Settled as i32, 1, 3)
    );
    let stock = settled.stock.unwrap();
    assert_eq!((stock.on_hand, stock.reserved, stock.low), (4, 0, false));
    let status = coordinator
        .settle_part_request(settle(1, 3))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    // a cancelled request releases its reservation; a cancellation needs a reason
    let second = request(&mut engineer, &hq.id, &board.id, 3).await.unwrap();
    let second_id = second.part_request.unwrap().id;
    let cancel = |reason: &str| pb::CancelPartRequestRequest {
        request_id: rid(),
        id: second_id.clone(),
        reason: reason.into(),
    };
    let status = engineer.cancel_part_request(cancel(" ")).await.unwrap_err();
    assert_eq!(
        (status.code(), field(&status)),
        (Code::InvalidArgument, vec!["reason".into()])
    );
    let cancelled = engineer
        .cancel_part_request(cancel("the customer fixed it"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.stock.unwrap().reserved, 0);

    // the history of each step, and one stock_low per fall below the minimum
    let steps: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT from_value, to_value, via FROM history WHERE subject = $1 ORDER BY id",
    )
    .bind(format!("part_requests/{id}"))
    .fetch_all(&pool)
    .await
    .unwrap();
    let steps: Vec<_> = steps
        .iter()
        .map(|(f, t, v)| (f.as_str(), t.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("", "RESERVED", "request"),
            ("RESERVED", "ISSUED", "issue"),
            ("ISSUED", "SETTLED", "settle")
        ]
    );
    let low: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE aggregate LIKE 'centres/%/stock/%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    // fell at the first reservation (1 < 2); the second (3 of 4) left 1 again: a new fall
    assert_eq!(low, 2);
}

#[tokio::test]
async fn carry_in_is_repaired_while_the_customer_waits_or_picked_up_against_the_receipt() {
    let p = Platform::start().await;
    let mut admin = p.user("admin").await;
    let a = centre(&mut admin, "SZ-A", CentreKind::Partner, "partner.a").await;
    let mut partner = p.partner("partner.a").await;
    use OrderTransition as T;

    // repaired while the customer waits: inspected with the customer, repaired, signed for
    let waited = create_order(&mut partner, &a.id, OrderKind::CarryIn).await;
    assert_eq!(waited.state, OrderState::Received as i32);
    assert!(waited.number.starts_with('R') && waited.due_time.is_some());
    let status = go(&mut partner, &waited.id, T::Inspect, |r| {
        r.configuration = "8G/256G".into()
    })
    .await
    .unwrap_err();
    assert_eq!(
        (status.code(), field(&status)),
        (Code::InvalidArgument, vec!["customer_confirmed".into()])
    );
    let inspected = go(&mut partner, &waited.id, T::Inspect, |r| {
        r.configuration = "8G/256G".into();
        r.fault_reproduced = true;
        r.accessories = vec!["电源适配器".into(), "包".into()];
        r.customer_confirmed = true;
    })
    .await
    .unwrap();
    assert_eq!(state(&inspected), OrderState::Inspected);
    let status = go(&mut partner, &waited.id, T::HandOver, |r| {
        r.signature = "王晓明".into()
    })
    .await
    .unwrap_err();
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "no hand-over before the repair"
    );
    let repaired = go(&mut partner, &waited.id, T::RepairWhileWaiting, |r| {
        r.service_record = "更换电源模块".into();
        r.tested = true;
    })
    .await
    .unwrap();
    assert_eq!(state(&repaired), OrderState::Repaired);
    let done = go(&mut partner, &waited.id, T::HandOver, |r| {
        r.signature = "王晓明".into()
    })
    .await
    .unwrap();
    let done = done.repair_order.unwrap();
    assert_eq!(
        (done.state, done.signed_by.as_str(), done.receipt_issued),
        (OrderState::Completed as i32, "王晓明", false)
    );
    assert!(done.counter_wait_seconds >= 0);
    assert_eq!(done.accessories, ["电源适配器", "包"]);

    // not repaired at once, after a paid-service quote: the reason told, a receipt issued;
    // the unit comes back only against the receipt's code
    let left = create_order(&mut partner, &a.id, OrderKind::CarryIn).await;
    go(&mut partner, &left.id, T::Inspect, |r| {
        r.configuration = "16G/1T".into();
        r.customer_confirmed = true;
    })
    .await
    .unwrap();
    let status = go(&mut partner, &left.id, T::Quote, |r| {
        r.quote = Some(crm_proto::common::v1::Money {
            currency_code: "CNY".into(),
            units: 350,
            nanos: 0,
        });
    })
    .await
    .unwrap_err();
    assert_eq!(field(&status), ["price_policy_told"]);
    go(&mut partner, &left.id, T::Quote, |r| {
        r.price_policy_told = true;
        r.quote = Some(crm_proto::common::v1::Money {
            currency_code: "CNY".into(),
            units: 350,
            nanos: 0,
        });
    })
    .await
    .unwrap();
    let status = go(&mut partner, &left.id, T::IssueReceipt, |r| {
        r.note = "需要更换主板".into()
    })
    .await
    .unwrap_err();
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "the quote is answered first"
    );
    go(&mut partner, &left.id, T::AcceptQuote, |_| {})
        .await
        .unwrap();
    let receipt = go(&mut partner, &left.id, T::IssueReceipt, |r| {
        r.note = "需要更换主板，三天后取机".into()
    })
    .await
    .unwrap();
    assert_eq!(state(&receipt), OrderState::InRepair);
    let code = receipt.receipt_code.clone();
    assert_eq!(code.len(), 11, "{code}");
    let shown = receipt.repair_order.unwrap();
    assert!(shown.receipt_issued && shown.paid);
    go(&mut partner, &left.id, T::CompleteRepair, |r| {
        r.service_record = "更换主板，测试通过".into();
        r.tested = true;
    })
    .await
    .unwrap();
    go(&mut partner, &left.id, T::NotifyCustomer, |r| {
        r.note = "已电话通知取机".into()
    })
    .await
    .unwrap();
    for wrong in ["", "00000-00000"] {
        let status = go(&mut partner, &left.id, T::HandOver, |r| {
            r.signature = "王晓明".into();
            r.receipt_code = wrong.into();
        })
        .await
        .unwrap_err();
        assert_eq!(
            (status.code(), field(&status)),
            (Code::InvalidArgument, vec!["receipt_code".into()])
        );
    }
    let picked = go(&mut partner, &left.id, T::HandOver, |r| {
        r.signature = "王晓明".into();
        r.receipt_code = code.to_lowercase();
    })
    .await
    .unwrap();
    assert_eq!(state(&picked), OrderState::Completed);
    assert_eq!(picked.receipt_code, "", "the code is shown once");

    let history = partner
        .list_repair_order_history(pb::ListRepairOrderHistoryRequest {
            id: left.id.clone(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let steps: Vec<i32> = history.iter().map(|e| e.transition).collect();
    assert_eq!(
        steps,
        [
            T::Unspecified,
            T::Inspect,
            T::Quote,
            T::AcceptQuote,
            T::IssueReceipt,
            T::CompleteRepair,
            T::NotifyCustomer,
            T::HandOver
        ]
        .map(|t| t as i32)
    );
    assert_eq!(history[4].note, "需要更换主板，三天后取机");
    assert!(history.iter().all(|e| e.changed.is_some()));
    let open = partner
        .list_repair_orders(pb::ListRepairOrdersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .repair_orders;
    assert!(open.is_empty(), "both orders are closed");
}

#[tokio::test]
async fn a_mail_in_unit_is_inspected_first_then_the_customer_contacted_and_shipped_back() {
    let p = Platform::start().await;
    let mut admin = p.user("admin").await;
    let hq = centre(&mut admin, "HQ", CentreKind::Hq, "").await;
    let mut coordinator = p.user("coordinator").await;
    use OrderTransition as T;
    let ticket = uuid::Uuid::new_v4().to_string();
    let mailed = coordinator
        .create_repair_order(pb::CreateRepairOrderRequest {
            request_id: rid(),
            repair_order: Some(pb::RepairOrder {
                centre_id: hq.id.clone(),
                ticket_id: ticket.clone(),
                ..order(OrderKind::MailIn)
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .repair_order
        .unwrap();
    assert_eq!(
        (mailed.state, mailed.ticket_id.as_str()),
        (OrderState::AwaitingArrival as i32, ticket.as_str())
    );
    let walk_in = create_order(&mut coordinator, &hq.id, OrderKind::CarryIn).await;
    // open orders by turnaround deadline: the carry-in (8 business hours) before the mail-in (40)
    let open = coordinator
        .list_repair_orders(pb::ListRepairOrdersRequest {
            centre_id: hq.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .repair_orders;
    assert_eq!(
        open.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        [walk_in.id.as_str(), mailed.id.as_str()]
    );

    let status = go(&mut coordinator, &mailed.id, T::Inspect, |r| {
        r.configuration = "8G".into()
    })
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "not arrived yet");
    let status = go(&mut coordinator, &mailed.id, T::ReceiveShipment, |_| {})
        .await
        .unwrap_err();
    assert_eq!(field(&status), ["carrier", "tracking_number"]);
    let arrived = go(&mut coordinator, &mailed.id, T::ReceiveShipment, |r| {
        r.carrier = "顺丰".into();
        r.tracking_number = "SF1234567890".into();
    })
    .await
    .unwrap();
    assert_eq!(
        arrived.repair_order.as_ref().unwrap().inbound_tracking,
        "SF1234567890"
    );
    // the engineer inspects first (no customer at a counter), then contacts the customer
    go(&mut coordinator, &mailed.id, T::Inspect, |r| {
        r.configuration = "8G/256G".into();
        r.fault_reproduced = true;
    })
    .await
    .unwrap();
    let status = go(&mut coordinator, &mailed.id, T::StartRepair, |r| {
        r.note = "电源故障".into()
    })
    .await
    .unwrap_err();
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "the customer is contacted first"
    );
    go(&mut coordinator, &mailed.id, T::ContactCustomer, |r| {
        r.note = "确认故障，保修内免费".into()
    })
    .await
    .unwrap();
    go(&mut coordinator, &mailed.id, T::StartRepair, |r| {
        r.note = "电源故障".into()
    })
    .await
    .unwrap();
    go(&mut coordinator, &mailed.id, T::CompleteRepair, |r| {
        r.service_record = "更换电源，测试通过".into();
        r.tested = true;
    })
    .await
    .unwrap();
    go(&mut coordinator, &mailed.id, T::NotifyCustomer, |r| {
        r.note = "通知客户即将寄回".into()
    })
    .await
    .unwrap();
    let status = go(&mut coordinator, &mailed.id, T::HandOver, |r| {
        r.signature = "x".into()
    })
    .await
    .unwrap_err();
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "a mail-in unit is shipped back"
    );
    let status = go(&mut coordinator, &mailed.id, T::ShipBack, |r| {
        r.carrier = "顺丰".into();
        r.tracking_number = "SF0987654321".into();
    })
    .await
    .unwrap_err();
    assert_eq!(field(&status), ["record_copy_enclosed"]);
    let shipped = go(&mut coordinator, &mailed.id, T::ShipBack, |r| {
        r.carrier = "顺丰".into();
        r.tracking_number = "SF0987654321".into();
        r.record_copy_enclosed = true;
    })
    .await
    .unwrap();
    let shipped = shipped.repair_order.unwrap();
    assert_eq!(
        (
            shipped.state,
            shipped.outbound_tracking.as_str(),
            shipped.service_record.as_str()
        ),
        (
            OrderState::Shipped as i32,
            "SF0987654321",
            "更换电源，测试通过"
        )
    );
    let open = coordinator
        .list_repair_orders(pb::ListRepairOrdersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .repair_orders;
    assert_eq!(open.len(), 1);
    let all = coordinator
        .list_repair_orders(pb::ListRepairOrdersRequest {
            include_closed: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .repair_orders;
    assert_eq!(all.len(), 2);
    // every step was published for the notifications service
    let pool = crm_kit::db::connect(&p.running.settings.database, crm_repairs::NAME)
        .await
        .unwrap();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE aggregate = $1")
        .bind(format!("repair_orders/{}", mailed.id))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, 8, "created and seven steps");
}

async fn serial_part(admin: &mut Repairs, number: &str) -> pb::Part {
    admin
        .create_part(pb::CreatePartRequest {
            request_id: rid(),
            part: Some(pb::Part {
                part_number: number.into(),
                name: format!("{number} 备件"),
                serialised: true,
                minimum_stock: 0,
                ..Default::default()
            }),
        })
        .await
        .expect("a part")
        .into_inner()
        .part
        .unwrap()
}

fn swap(
    centre: &str,
    part: &str,
    order: &str,
    removed: &str,
    installed: &str,
    back: &str,
) -> pb::RecordSwapRequest {
    pb::RecordSwapRequest {
        request_id: rid(),
        swap: Some(pb::Swap {
            centre_id: centre.into(),
            part_id: part.into(),
            order_id: order.into(),
            removed_serial: removed.into(),
            fault: "无输出".into(),
            installed_serial: installed.into(),
            return_centre_id: back.into(),
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn swaps_label_the_removed_unit_track_it_back_and_chain_the_serials() {
    let p = Platform::start().await;
    let mut admin = p.user("admin").await;
    let hq = centre(&mut admin, "HQ", CentreKind::Hq, "").await;
    let a = centre(&mut admin, "SZ-A", CentreKind::Partner, "partner.a").await;
    let psu = serial_part(&mut admin, "PSU-S").await;
    let fan = part(&mut admin, "FAN-80", 0).await;
    let mut partner = p.partner("partner.a").await;
    let mut other = p.partner("partner.b").await;
    use OrderTransition as T;
    let in_repair = |client: &Repairs| {
        let mut client = client.clone();
        let centre = a.id.clone();
        async move {
            let o = create_order(&mut client, &centre, OrderKind::CarryIn).await;
            go(&mut client, &o.id, T::Inspect, |r| {
                r.configuration = "8G".into();
                r.customer_confirmed = true;
            })
            .await
            .unwrap();
            go(&mut client, &o.id, T::IssueReceipt, |r| {
                r.note = "换电源".into()
            })
            .await
            .unwrap();
            o.id
        }
    };
    let first = in_repair(&partner).await;
    let second = in_repair(&partner).await;

    // bad swaps: nothing written
    let status = partner
        .record_swap(swap(&a.id, &fan.id, &first, "F1", "F2", &hq.id))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), field(&status)),
        (Code::InvalidArgument, vec!["swap.part_id".into()])
    );
    let status = other
        .record_swap(swap(&a.id, &psu.id, &first, "S0", "S1", &hq.id))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "another partner's centre");

    // S0 (as shipped) → S1 on the first order; S1 → S2 on the second
    let one = partner
        .record_swap(swap(&a.id, &psu.id, &first, "S0", "S1", &hq.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.return_stock.unwrap().in_transit, 1);
    let label = one.swap.unwrap();
    assert_eq!(
        (
            label.part_number.as_str(),
            label.removed_serial.as_str(),
            label.fault.as_str(),
            label.order_id.as_str(),
            label.in_transit
        ),
        ("PSU-S", "S0", "无输出", first.as_str(), true)
    );
    // a serial is installed once: S1 again, or the faulty S0, is refused
    for installed in ["S1", "S0"] {
        let status = partner
            .record_swap(swap(&a.id, &psu.id, &second, "X9", installed, &hq.id))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{installed}");
    }
    let two = partner
        .record_swap(swap(&a.id, &psu.id, &second, "S1", "S2", &hq.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(two.return_stock.unwrap().in_transit, 2);

    let history = partner
        .get_serial_history(pb::GetSerialHistoryRequest {
            part_id: psu.id.clone(),
            serial: "S1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.chain, ["S0", "S1", "S2"]);
    assert_eq!(history.swaps.len(), 2);
    assert_eq!(history.state, pb::SerialState::FaultyInTransit as i32);
    let last = partner
        .get_serial_history(pb::GetSerialHistoryRequest {
            part_id: psu.id.clone(),
            serial: "S2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (last.chain.clone(), last.state),
        (
            vec!["S0".to_string(), "S1".into(), "S2".into()],
            pb::SerialState::Installed as i32
        )
    );
    let status = other
        .get_serial_history(pb::GetSerialHistoryRequest {
            part_id: psu.id.clone(),
            serial: "S1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "B sees none of A's swaps");

    // the warehouse (HQ) receives the removed units; the partner cannot book them in for it
    let status = partner
        .receive_returned_part(pb::ReceiveReturnedPartRequest {
            request_id: rid(),
            swap_id: label.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let in_transit = partner
        .list_swaps(pb::ListSwapsRequest {
            in_transit_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .swaps;
    assert_eq!(in_transit.len(), 2);
    let got = admin
        .receive_returned_part(pb::ReceiveReturnedPartRequest {
            request_id: rid(),
            swap_id: label.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .swap
        .unwrap();
    assert!(!got.in_transit && got.received.is_some());
    let status = admin
        .receive_returned_part(pb::ReceiveReturnedPartRequest {
            request_id: rid(),
            swap_id: label.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let hq_stock = admin
        .get_stock(pb::GetStockRequest {
            centre_id: hq.id.clone(),
            part_id: psu.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stock
        .unwrap();
    assert_eq!(
        (hq_stock.in_transit, hq_stock.on_hand),
        (1, 0),
        "faulty units are not usable stock"
    );
    let s0 = admin
        .get_serial_history(pb::GetSerialHistoryRequest {
            part_id: psu.id.clone(),
            serial: "S0".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s0.state, pb::SerialState::FaultyReceived as i32);
}

#[tokio::test]
async fn a_transfer_leaves_the_sender_at_once_and_arrives_when_booked_in() {
    let p = Platform::start().await;
    let mut admin = p.user("admin").await;
    let hq = centre(&mut admin, "HQ", CentreKind::Hq, "").await;
    let a = centre(&mut admin, "SZ-A", CentreKind::Partner, "partner.a").await;
    let fan = part(&mut admin, "FAN-80", 3).await;
    receive(&mut admin, &hq.id, &fan.id, 10).await;
    let mut partner = p.partner("partner.a").await;
    let mut other = p.partner("partner.b").await;
    let transfer = |from: &str, to: &str, quantity: i32| pb::TransferStockRequest {
        request_id: rid(),
        transfer: Some(pb::Transfer {
            from_centre_id: from.into(),
            to_centre_id: to.into(),
            part_id: fan.id.clone(),
            quantity,
            note: "补货".into(),
            ..Default::default()
        }),
    };
    let status = admin
        .transfer_stock(transfer(&hq.id, &a.id, 11))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = partner
        .transfer_stock(transfer(&hq.id, &a.id, 1))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::NotFound,
        "a partner sends only from its own centres"
    );
    let sent = admin
        .transfer_stock(transfer(&hq.id, &a.id, 4))
        .await
        .unwrap()
        .into_inner();
    let from = sent.from_stock.unwrap();
    assert_eq!((from.on_hand, from.available), (6, 6));
    let t = sent.transfer.unwrap();
    let arriving = partner
        .get_stock(pb::GetStockRequest {
            centre_id: a.id.clone(),
            part_id: fan.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stock
        .unwrap();
    assert_eq!((arriving.on_hand, arriving.in_transit), (0, 4));
    let status = other
        .receive_transfer(pb::ReceiveTransferRequest {
            request_id: rid(),
            transfer_id: t.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let got = partner
        .receive_transfer(pb::ReceiveTransferRequest {
            request_id: rid(),
            transfer_id: t.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let to = got.to_stock.unwrap();
    assert_eq!((to.on_hand, to.in_transit, to.low), (4, 0, false));
    assert_eq!(
        got.transfer.unwrap().state,
        pb::TransferState::Received as i32
    );
    let status = partner
        .receive_transfer(pb::ReceiveTransferRequest {
            request_id: rid(),
            transfer_id: t.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let listed = partner
        .list_transfers(pb::ListTransfersRequest {
            centre_id: a.id.clone(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .transfers;
    assert_eq!(listed.len(), 1);
    let status = other
        .list_transfers(pb::ListTransfersRequest {
            centre_id: a.id.clone(),
            page: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn the_repairs_demo_loads_twice_alike_and_its_partner_sees_only_its_centre() {
    let p = Platform::start().await;
    let first = crm::demo::repairs::load(&p.running.settings)
        .await
        .expect("demo");
    let again = crm::demo::repairs::load(&p.running.settings)
        .await
        .expect("demo again");
    assert_eq!((first.centres, first.orders), (again.centres, again.orders));
    let mut admin = p.user("admin").await;
    let all = admin
        .list_repair_orders(pb::ListRepairOrdersRequest {
            include_closed: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .repair_orders;
    assert_eq!(all.len(), 4, "a second run made nothing new");
    let mut partner = p.partner(crm::demo::repairs::PARTNERS[0]).await;
    let centres = partner
        .list_centres(pb::ListCentresRequest::default())
        .await
        .unwrap()
        .into_inner()
        .centres;
    assert_eq!(
        centres.iter().map(|c| c.code.as_str()).collect::<Vec<_>>(),
        ["SZ-P1"]
    );
    let open = partner
        .list_repair_orders(pb::ListRepairOrdersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .repair_orders;
    let states: Vec<i32> = open.iter().map(|o| o.state).collect();
    assert_eq!(open.len(), 2);
    assert!(states.contains(&(OrderState::Inspected as i32)));
    assert!(states.contains(&(OrderState::AwaitingArrival as i32)));
}

#[tokio::test]
async fn a_centre_hears_of_its_low_stock_and_a_partner_of_its_orders() {
    use crm_proto::notifications::v1::{
        self as npb, notification_service_client::NotificationServiceClient,
    };
    let p = Platform::start().await;
    let mut admin = p.user("admin").await;
    let hq = centre(&mut admin, "HQ", CentreKind::Hq, "").await;
    let a = centre(&mut admin, "SZ-A", CentreKind::Partner, "partner.a").await;
    let board = part(&mut admin, "MB-X200", 3).await;
    receive(&mut admin, &hq.id, &board.id, 4).await;
    let mut partner = p.partner("partner.a").await;
    receive(&mut partner, &a.id, &board.id, 4).await;
    // both fall below the minimum of 3
    request(&mut partner, &a.id, &board.id, 2).await.unwrap();
    let mut coordinator = p.user("coordinator").await;
    request(&mut coordinator, &hq.id, &board.id, 2)
        .await
        .unwrap();
    create_order(&mut partner, &a.id, OrderKind::CarryIn).await;

    // the partner organisation's inbox (its API key reads it) and the HQ coordinators'
    let inbox = |token: String| {
        let channel = p.gateway.clone();
        async move {
            NotificationServiceClient::with_interceptor(channel, testing::Bearer::new(&token))
                .list_inbox(npb::ListInboxRequest::default())
                .await
                .map(|r| r.into_inner().items)
                .unwrap_or_default()
        }
    };
    let partner_token = p.partner_token("partner.a").await;
    let coordinator_token = p.token("coordinator").await;
    for (who, token) in [
        ("partner.a", partner_token.clone()),
        ("coordinator", coordinator_token.clone()),
    ] {
        testing::wait_until(
            &format!("{who} hears of the low stock"),
            std::time::Duration::from_secs(30),
            || {
                let inbox = inbox(token.clone());
                async move {
                    inbox.await.iter().any(|i| {
                        i.subject.starts_with("备件库存不足") && i.body.contains("MB-X200")
                    })
                }
            },
        )
        .await;
    }
    let partner_items = inbox(partner_token).await;
    assert!(
        partner_items.iter().all(|i| !i.body.contains("HQ")),
        "A hears only of its own centre"
    );
    let coordinator_items = inbox(coordinator_token).await;
    assert_eq!(
        coordinator_items
            .iter()
            .filter(|i| i.subject.starts_with("备件库存不足"))
            .count(),
        1,
        "told once, of HQ only"
    );
}

#[tokio::test]
async fn a_return_or_exchange_is_diagnosed_by_its_centre_judged_and_approved_by_another() {
    use pb::{RmaOutcome, RmaState, RmaStep};
    let p = Platform::start().await;
    p.running
        .users(&[
            ("agent", "hotline_agent", ""),
            ("engineer.north", "engineer", "华北"),
            ("tech.center", "tech_center", ""),
            ("supervisor", "supervisor", ""),
            ("supervisor2", "supervisor", ""),
        ])
        .await;
    let mut admin = p.user("admin").await;
    let branch = centre(&mut admin, "GZ-BR", CentreKind::Branch, "").await;
    let replacement = part(&mut admin, "X200-UNIT", 0).await;
    receive(&mut admin, &branch.id, &replacement.id, 2).await;
    let (c1, c2) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    for serial in ["SN-A", "SN-B"] {
        admin
            .register_delivery(pb::RegisterDeliveryRequest {
                request_id: rid(),
                delivery: Some(pb::Delivery {
                    customer_id: c1.clone(),
                    product_model: "X200".into(),
                    serial_number: serial.into(),
                    quantity: 1,
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    let rma = |customer: &str, serial: &str, quantity: i32| pb::RequestRmaRequest {
        request_id: rid(),
        rma: Some(pb::Rma {
            centre_id: branch.id.clone(),
            customer_id: customer.into(),
            serial_number: serial.into(),
            quantity,
            reason: "开箱即坏".into(),
            ..Default::default()
        }),
    };
    let mut agent = p.user("agent").await;
    // another customer's unit, or more than was delivered: refused, nothing written
    let status = agent.request_rma(rma(&c2, "SN-A", 1)).await.unwrap_err();
    assert_eq!(
        (status.code(), field(&status)),
        (Code::InvalidArgument, vec!["rma.serial_number".into()])
    );
    let status = agent.request_rma(rma(&c1, "SN-A", 2)).await.unwrap_err();
    assert_eq!(
        (status.code(), field(&status)),
        (Code::InvalidArgument, vec!["rma.quantity".into()])
    );
    // two requests on one serial at once: one is made
    let (mut first, mut second) = (agent.clone(), agent.clone());
    let (one, two) = tokio::join!(
        first.request_rma(rma(&c1, "SN-A", 1)),
        second.request_rma(rma(&c1, "SN-A", 1))
    );
    let made: Vec<_> = [one, two].into_iter().filter_map(|r| r.ok()).collect();
    assert_eq!(
        made.len(),
        1,
        "of two concurrent requests on one serial only one succeeds"
    );
    let id = made[0].get_ref().rma.as_ref().unwrap().id.clone();
    let status = agent.request_rma(rma(&c1, "SN-A", 1)).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    let step = |id: &str, s: RmaStep| pb::TransitionRmaRequest {
        request_id: rid(),
        id: id.into(),
        step: s as i32,
        ..Default::default()
    };
    let diagnosis = |id: &str| pb::TransitionRmaRequest {
        fault_cause: "主板电源管理芯片击穿".into(),
        customer_situation: "新购三天，急用".into(),
        return_reason: "硬件故障，符合七天换机".into(),
        qualifies: true,
        ..step(id, RmaStep::Diagnose)
    };
    // only an engineer of the handling centre files the report, and never without a cause
    let mut north = p.user("engineer.north").await;
    let status = north.transition_rma(diagnosis(&id)).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "another department's engineer"
    );
    let mut engineer = p.user("engineer").await;
    let status = engineer
        .transition_rma(pb::TransitionRmaRequest {
            fault_cause: String::new(),
            ..diagnosis(&id)
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), field(&status)),
        (Code::InvalidArgument, vec!["fault_cause".into()])
    );
    // the judgement is not skipped
    let mut boss = p.user("supervisor").await;
    let decide = |id: &str, outcome: RmaOutcome| pb::TransitionRmaRequest {
        note: "符合换机政策".into(),
        outcome: outcome as i32,
        replacement_part_id: if outcome == RmaOutcome::Exchange {
            replacement.id.clone()
        } else {
            String::new()
        },
        ..step(id, RmaStep::Decide)
    };
    let status = boss
        .transition_rma(decide(&id, RmaOutcome::Exchange))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "no decision before the diagnosis and judgement"
    );
    engineer.transition_rma(diagnosis(&id)).await.unwrap();
    let mut tech = p.user("tech.center").await;
    let status = engineer
        .transition_rma(pb::TransitionRmaRequest {
            note: "换".into(),
            ..step(&id, RmaStep::Judge)
        })
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "an engineer does not judge"
    );
    tech.transition_rma(pb::TransitionRmaRequest {
        note: "确认硬件故障，建议换机".into(),
        outcome: RmaOutcome::Exchange as i32,
        ..step(&id, RmaStep::Judge)
    })
    .await
    .unwrap();
    let status = engineer
        .transition_rma(decide(&id, RmaOutcome::Exchange))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "an engineer never decides"
    );
    let decided = boss
        .transition_rma(decide(&id, RmaOutcome::Exchange))
        .await
        .unwrap()
        .into_inner()
        .rma
        .unwrap();
    assert_eq!(decided.state, RmaState::ExchangeApproved as i32);
    let stock = admin
        .get_stock(pb::GetStockRequest {
            centre_id: branch.id.clone(),
            part_id: replacement.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stock
        .unwrap();
    assert_eq!(
        stock.reserved, 1,
        "the replacement is reserved and prepared"
    );

    // shipped before the faulty unit is back: the obligation and its timer
    let mut coordinator = p.user("coordinator").await;
    let shipped = coordinator
        .transition_rma(pb::TransitionRmaRequest {
            carrier: "顺丰".into(),
            tracking_number: "SF555".into(),
            ..step(&id, RmaStep::ShipReplacement)
        })
        .await
        .unwrap()
        .into_inner()
        .rma
        .unwrap();
    assert_eq!(shipped.state, RmaState::AwaitingReturn as i32);
    assert!(shipped.return_due_time.is_some());
    let pool = crm_kit::db::connect(&p.running.settings.database, crm_repairs::NAME)
        .await
        .unwrap();
    let timers = |state: &'static str| {
        let (pool, subject) = (pool.clone(), format!("rmas/{id}"));
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM timers WHERE subject = $1 AND kind = 'repairs.rma_return_due' AND state = $2",
            )
            .bind(subject)
            .bind(state)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(timers("scheduled").await, 1);
    let closed = coordinator
        .transition_rma(step(&id, RmaStep::ReceiveFaultyUnit))
        .await
        .unwrap()
        .into_inner()
        .rma
        .unwrap();
    assert_eq!(closed.state, RmaState::Closed as i32);
    assert_eq!(
        (timers("scheduled").await, timers("cancelled").await),
        (0, 1)
    );

    // the approver is never the requester
    let own = boss
        .request_rma(rma(&c1, "SN-B", 1))
        .await
        .unwrap()
        .into_inner()
        .rma
        .unwrap();
    engineer.transition_rma(diagnosis(&own.id)).await.unwrap();
    tech.transition_rma(pb::TransitionRmaRequest {
        note: "不属质量问题".into(),
        outcome: RmaOutcome::Reject as i32,
        ..step(&own.id, RmaStep::Judge)
    })
    .await
    .unwrap();
    let status = boss
        .transition_rma(decide(&own.id, RmaOutcome::Reject))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "approved by its requester"
    );
    let mut other_boss = p.user("supervisor2").await;
    let rejected = other_boss
        .transition_rma(decide(&own.id, RmaOutcome::Reject))
        .await
        .unwrap()
        .into_inner()
        .rma
        .unwrap();
    assert_eq!(
        (rejected.state, rejected.outcome),
        (RmaState::Closed as i32, RmaOutcome::Reject as i32)
    );
    // each decision was published for the requester
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE aggregate LIKE 'rmas/%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(events, 10, "two requests and their eight steps");
    // the requester hears of each decision: the agent's inbox tells the exchange
    use crm_proto::notifications::v1::{
        self as npb, notification_service_client::NotificationServiceClient,
    };
    let notifications = NotificationServiceClient::with_interceptor(
        p.gateway.clone(),
        testing::Bearer::new(&p.token("agent").await),
    );
    testing::wait_until(
        "the requester hears of the exchange",
        std::time::Duration::from_secs(30),
        || {
            let mut n = notifications.clone();
            async move {
                n.list_inbox(npb::ListInboxRequest::default())
                    .await
                    .map(|r| r.into_inner().items)
                    .unwrap_or_default()
                    .iter()
                    .any(|i| i.subject.contains("SN-A") && i.body.contains("结论：换货"))
            }
        },
    )
    .await;
}

#[tokio::test]
async fn a_ticket_is_routed_to_the_partner_centre_its_repair_order_is_at_and_seen_by_it_alone() {
    use crm_proto::tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient};
    let p = Platform::start().await;
    let mut admin = p.user("admin").await;
    let a = centre(&mut admin, "SZ-A", CentreKind::Partner, "partner.a").await;
    centre(&mut admin, "GZ-B", CentreKind::Partner, "partner.b").await;
    let customer = p.running.customer("深圳精密仪器有限公司", "华南").await;
    let tickets = |token: String| {
        TicketServiceClient::with_interceptor(p.gateway.clone(), testing::Bearer::new(&token))
    };
    let new_ticket = tpb::Ticket {
        channel: tpb::Channel::Hotline as i32,
        customer_id: customer,
        region: "华南".into(),
        contact_name: "王晓明".into(),
        contact_phone: "+86 138 0013 8000".into(),
        product_model: "X200".into(),
        serial_number: "SN-0001".into(),
        symptom: "无法开机".into(),
        warranty: tpb::Warranty::InWarranty as i32,
        service_mode: tpb::ServiceMode::MailIn as i32,
        ..Default::default()
    };
    let mut staff = tickets(p.token("admin").await);
    let open = |ticket: tpb::Ticket| {
        let mut staff = staff.clone();
        async move {
            staff
                .create_ticket(tpb::CreateTicketRequest {
                    request_id: rid(),
                    ticket: Some(ticket),
                })
                .await
                .expect("a ticket")
                .into_inner()
                .ticket
                .unwrap()
        }
    };
    let routed = open(new_ticket.clone()).await;
    let other = open(new_ticket).await;

    // before anything is routed to them, the partners see no ticket at all
    let mut partner_a = tickets(p.partner_token("partner.a").await);
    let mut partner_b = tickets(p.partner_token("partner.b").await);
    let get = |id: &str| tpb::GetTicketRequest { id: id.into() };
    assert_eq!(
        code(partner_a.get_ticket(get(&routed.id)).await),
        Code::NotFound
    );
    let listed = |client: &mut TicketServiceClient<_>| {
        let mut client = client.clone();
        async move {
            client
                .list_tickets(tpb::ListTicketsRequest::default())
                .await
                .expect("a list")
                .into_inner()
                .tickets
                .into_iter()
                .map(|t| t.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(&mut partner_a).await, Vec::<String>::new());

    // the hotline registers the mail-in at A's centre from the ticket
    let order = admin
        .create_repair_order(pb::CreateRepairOrderRequest {
            request_id: rid(),
            repair_order: Some(pb::RepairOrder {
                centre_id: a.id.clone(),
                ticket_id: routed.id.clone(),
                inbound_carrier: "顺丰".into(),
                inbound_tracking: "SF1234567890".into(),
                ..order(OrderKind::MailIn)
            }),
        })
        .await
        .expect("a mail-in order")
        .into_inner()
        .repair_order
        .unwrap();
    testing::wait_until(
        "the ticket is routed to A",
        std::time::Duration::from_secs(30),
        || {
            let mut partner_a = partner_a.clone();
            let id = routed.id.clone();
            async move { partner_a.get_ticket(get(&id)).await.is_ok() }
        },
    )
    .await;
    let seen = partner_a
        .get_ticket(get(&routed.id))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(
        (seen.routed_centre_id.as_str(), seen.partner_id.as_str()),
        (a.id.as_str(), "partner.a")
    );
    // A lists that ticket alone; B sees neither, the staff both
    assert_eq!(listed(&mut partner_a).await, vec![routed.id.clone()]);
    assert_eq!(listed(&mut partner_b).await, Vec::<String>::new());
    for id in [&routed.id, &other.id] {
        assert_eq!(code(partner_b.get_ticket(get(id)).await), Code::NotFound);
        assert_eq!(
            code(
                partner_b
                    .list_ticket_history(tpb::ListTicketHistoryRequest {
                        id: id.clone(),
                        ..Default::default()
                    })
                    .await
            ),
            Code::NotFound
        );
    }
    assert_eq!(
        code(partner_a.get_ticket(get(&other.id)).await),
        Code::NotFound
    );
    let everything = listed(&mut staff).await;
    assert!(everything.contains(&routed.id) && everything.contains(&other.id));
    // the routing is a named step in the ticket's history, with the order that made it
    let history = partner_a
        .list_ticket_history(tpb::ListTicketHistoryRequest {
            id: routed.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let step = history
        .iter()
        .find(|e| e.transition == tpb::Transition::RouteToCentre as i32)
        .expect("the routing in the history");
    assert!(step.reason.contains(&order.number), "{}", step.reason);
    // a partner only reads tickets: it changes them through its repair orders
    assert_eq!(
        code(
            partner_a
                .transition_ticket(tpb::TransitionTicketRequest {
                    request_id: rid(),
                    id: routed.id.clone(),
                    transition: tpb::Transition::HandToHotlineEngineer as i32,
                    ..Default::default()
                })
                .await
        ),
        Code::PermissionDenied
    );
    // and the step is the service's own: nobody asks for it
    assert_eq!(
        code(
            staff
                .transition_ticket(tpb::TransitionTicketRequest {
                    request_id: rid(),
                    id: other.id.clone(),
                    transition: tpb::Transition::RouteToCentre as i32,
                    ..Default::default()
                })
                .await
        ),
        Code::InvalidArgument
    );
}
