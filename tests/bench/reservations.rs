//! The reservation case (issue 16, R-3): `RequestParts` on the repairs server at several
//! concurrencies, every client on one hot part (all on one stock row) and spread over many
//! parts; then an exhaustion probe — 32 clients against 500 units until refused — whose
//! successes must be exactly 500. Oversells are counted from the database, not the responses:
//! stored requests beyond the stock, or reserved beyond on hand.

use std::time::{Duration, Instant};

use crm_kit::testing;
use crm_proto::repairs::v1::{self as pb, repair_service_client::RepairServiceClient};
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};

type Client = RepairServiceClient<InterceptedService<Channel, testing::Bearer>>;

/// Parts in the "many parts" case.
const MANY: usize = 64;

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn setup(
    client: &mut Client,
    code: &str,
    parts: usize,
    stock: i32,
) -> anyhow::Result<(String, Vec<String>)> {
    let centre = client
        .create_centre(pb::CreateCentreRequest {
            request_id: rid(),
            centre: Some(pb::Centre {
                code: code.into(),
                name: code.into(),
                kind: pb::CentreKind::Hq as i32,
                region: "华北".into(),
                address: "bench".into(),
                opening_hours: "24h".into(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .centre
        .unwrap_or_default()
        .id;
    let mut ids = Vec::new();
    for p in 0..parts {
        let part = client
            .create_part(pb::CreatePartRequest {
                request_id: rid(),
                part: Some(pb::Part {
                    part_number: format!("{code}-P{p:03}"),
                    name: "bench".into(),
                    minimum_stock: 0,
                    ..Default::default()
                }),
            })
            .await?
            .into_inner()
            .part
            .unwrap_or_default()
            .id;
        let mut left = stock;
        while left > 0 {
            let quantity = left.min(100_000);
            client
                .receive_stock(pb::ReceiveStockRequest {
                    request_id: rid(),
                    centre_id: centre.clone(),
                    part_id: part.clone(),
                    quantity,
                    note: String::new(),
                })
                .await?;
            left -= quantity;
        }
        ids.push(part);
    }
    Ok((centre, ids))
}

/// Reservations of one unit by `clients` for `duration`, client `c`'s n-th on part
/// `(c + n) % parts.len()`; latencies of the successes, and the refusals.
async fn hammer(
    client: &Client,
    centre: &str,
    parts: &[String],
    clients: usize,
    duration: Duration,
) -> (Vec<Duration>, usize, Duration) {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (mut client, centre, parts) = (client.clone(), centre.to_string(), parts.to_vec());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut refused) = (Vec::new(), 0usize);
            let mut n = c;
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = client
                    .request_parts(pb::RequestPartsRequest {
                        request_id: rid(),
                        centre_id: centre.clone(),
                        part_id: parts[n % parts.len()].clone(),
                        quantity: 1,
                        ticket_id: String::new(),
                        note: String::new(),
                    })
                    .await;
                match r {
                    Ok(_) => ok.push(t.elapsed()),
                    Err(s) if s.code() == Code::FailedPrecondition => refused += 1,
                    Err(s) => panic!("reservation failed: {s}"),
                }
                n += 1;
            }
            (ok, refused)
        }));
    }
    let (mut ok, mut refused) = (Vec::new(), 0);
    for t in tasks {
        let (o, r) = t.await.expect("client task");
        ok.extend(o);
        refused += r;
    }
    (ok, refused, start.elapsed())
}

/// Oversells at `centre`: requests stored beyond what was reserved, or reserved beyond on hand.
async fn oversells(pool: &sqlx::PgPool, centre: &str) -> anyhow::Result<i64> {
    let centre = uuid::Uuid::parse_str(centre)?;
    Ok(sqlx::query_scalar(
        "SELECT coalesce(sum(greatest(r.n - s.reserved, 0) + greatest(s.reserved - s.on_hand, 0)), 0)::bigint \
         FROM stock s JOIN (SELECT part_id, sum(quantity) AS n FROM part_requests WHERE centre_id = $1 \
         GROUP BY part_id) r ON r.part_id = s.part_id WHERE s.centre_id = $1",
    )
    .bind(centre)
    .fetch_one(pool)
    .await?)
}

/// Runs the case and prints one JSON row per (shape, clients), and the exhaustion probe's.
pub async fn case(
    settings: &crm_kit::Settings,
    channel: Channel,
    token: &str,
    clients: &[usize],
    seconds: u64,
) -> anyhow::Result<()> {
    let mut client = RepairServiceClient::with_interceptor(channel, testing::Bearer::new(token));
    let pool = crm_kit::db::connect(&settings.database, crm_repairs::NAME).await?;
    for &c in clients {
        for (shape, parts) in [("hot", 1), ("many", MANY)] {
            let code = format!("{shape}-{c}");
            let (centre, ids) = setup(&mut client, &code, parts, 2_000_000).await?;
            let (mut ok, refused, elapsed) =
                hammer(&client, &centre, &ids, c, Duration::from_secs(seconds)).await;
            ok.sort();
            println!(
                "{}",
                serde_json::json!({
                    "op": format!("reserve_{shape}"),
                    "clients": c,
                    "requests": ok.len(),
                    "refused": refused,
                    "rps": ok.len() as f64 / elapsed.as_secs_f64(),
                    "p50_ms": super::percentile(&ok, 0.50),
                    "p99_ms": super::percentile(&ok, 0.99),
                    "oversells": oversells(&pool, &centre).await?,
                })
            );
        }
    }
    // exhaustion: 32 clients against 500 units until refused (in slices, at most a minute)
    let (centre, ids) = setup(&mut client, "exhaust", 1, 500).await?;
    let (mut ok, mut refused) = (Vec::new(), 0);
    let started = Instant::now();
    while refused == 0 && started.elapsed() < Duration::from_secs(60) {
        let (o, r, _) = hammer(&client, &centre, &ids, 32, Duration::from_secs(1)).await;
        ok.extend(o);
        refused += r;
    }
    println!(
        "{}",
        serde_json::json!({
            "op": "reserve_exhaust",
            "clients": 32,
            "requests": ok.len(),
            "refused": refused,
            "stock": 500,
            "oversells": oversells(&pool, &centre).await? + (ok.len() as i64 - 500).max(0),
        })
    );
    Ok(())
}
