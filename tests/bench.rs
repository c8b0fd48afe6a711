//! `crm-bench`: customer Create and Get over a real gRPC channel at several concurrencies, with
//! the platform running in this process against the Postgres named by CRM_TEST_DATABASE_URL.
//! Prints one JSON object per case; `deploy/bench.sh` turns them into BENCHMARKS.md.

#[path = "bench/cost.rs"]
mod cost;
#[path = "bench/import.rs"]
mod import;
#[path = "bench/report.rs"]
mod report;
#[path = "bench/reservations.rs"]
mod reservations;

use std::time::{Duration, Instant};

use clap::Parser;
use crm_kit::{Clock, testing};
use crm_proto::customers::v1::{self as pb, customer_service_client::CustomerServiceClient};
use tonic::transport::Channel;

#[derive(Parser)]
struct Args {
    /// Concurrent clients per case.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    clients: Vec<usize>,
    /// How long each case runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Run the events case instead: this many events, committed by `clients[0]` publishers.
    #[arg(long)]
    events: Option<usize>,
    /// Run the timers case instead: this many timers due evenly over `--window` seconds,
    /// fired by two worker replicas.
    #[arg(long)]
    timers: Option<usize>,
    /// The timers case's window.
    #[arg(long, default_value_t = 60)]
    window: u64,
    /// Write a customer file of this many rows (10 % duplicates) to `--file`, and stop.
    #[arg(long)]
    generate: Option<usize>,
    /// Run the import case instead: stream `--file` through the gateway at `--gateway`, as
    /// `--user` (the platform runs in another process).
    #[arg(long)]
    import: bool,
    /// The import case's file.
    #[arg(long, default_value = "target/bench/import.csv")]
    file: std::path::PathBuf,
    /// The gateway the import case calls.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    gateway: String,
    /// The user the import case logs in as, and the password.
    #[arg(long, default_value = "clerk")]
    user: String,
    /// The password of `--user`.
    #[arg(long, default_value = "crm-demo-2026")]
    password: String,
    /// Run the reservation case instead (RequestParts on one hot part and on many).
    #[arg(long)]
    reservations: bool,
    /// Run the pipeline report case instead over this many generated opportunities.
    #[arg(long)]
    report: Option<usize>,
    /// Run the cost-per-call cases instead, against the platform already serving as process
    /// `--server-pid` (`crm serve all`, configured as this process is) on the Postgres whose
    /// postmaster is `--postmaster-pid`.
    #[arg(long)]
    cost: bool,
    /// Run the list cases instead, against the platform already serving (as `--cost`),
    /// labelled with this.
    #[arg(long)]
    lists: Option<String>,
    /// The list cases' calls per list and page.
    #[arg(long, default_value_t = 200)]
    list_calls: usize,
    /// The cost cases to run (default: all).
    #[arg(long, value_delimiter = ',')]
    cost_ops: Vec<String>,
    /// The server process the cost cases measure.
    #[arg(long, default_value_t = 0)]
    server_pid: u32,
    /// The Postgres postmaster whose processes the cost cases measure.
    #[arg(long, default_value_t = 0)]
    postmaster_pid: u32,
    /// The report case's calls per grouping.
    #[arg(long, default_value_t = 20)]
    report_calls: usize,
}

/// Records each firing (a row per firing, no unique key, so duplicates would show).
struct Firings;

#[tonic::async_trait]
impl crm_kit::timers::TimerHandler for Firings {
    async fn fire(
        &self,
        tx: &mut sqlx::PgConnection,
        timer: &crm_kit::timers::Timer,
    ) -> Result<(), crm_kit::Error> {
        sqlx::query(
            "INSERT INTO fired (timer_id, due_time, fire_time) VALUES ($1, $2, clock_timestamp())",
        )
        .bind(timer.id)
        .bind(timer.due_time)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// Timers: `total` scheduled (durable rows and sorted-set entries), due evenly over `window`,
/// fired by two workers; reports firings per second, lateness, duplicates and misses.
async fn timers_case(env: testing::TestEnv, total: usize, window: Duration) -> anyhow::Result<()> {
    use crm_kit::timers::{self, NewTimer, Timers};
    let schema = "benchtimers";
    let pool = crm_kit::db::connect(&env.settings.database, schema).await?;
    crm_kit::db::migrate(&pool, schema, &sqlx::migrate::Migrator::DEFAULT).await?;
    sqlx::query("CREATE TABLE fired (timer_id uuid NOT NULL, due_time timestamptz NOT NULL, fire_time timestamptz NOT NULL)")
        .execute(&pool)
        .await?;
    // schedule everything first, due from `lead` on; the workers start once it is in place
    let scheduling = Instant::now();
    let lead = Duration::from_secs(10) + Duration::from_micros(total as u64 * 60);
    let start = time::OffsetDateTime::now_utc() + lead;
    let arm = Timers::connect(&env.settings.redis, schema).await?;
    for chunk in (0..total).collect::<Vec<_>>().chunks(10_000) {
        let batch: Vec<NewTimer> = chunk
            .iter()
            .map(|i| NewTimer {
                kind: "bench.due".into(),
                subject: format!("things/{i}"),
                due: start + window.mul_f64(*i as f64 / total as f64),
                payload: serde_json::json!({}),
            })
            .collect();
        let mut tx = pool.begin().await?;
        let armed = timers::schedule(&mut tx, &batch, time::OffsetDateTime::now_utc()).await?;
        tx.commit().await?;
        arm.arm(&armed).await;
    }
    let scheduled_in = scheduling.elapsed();
    anyhow::ensure!(
        time::OffsetDateTime::now_utc() < start,
        "scheduling took {scheduled_in:?}, past the lead of {lead:?}"
    );
    let stop = crm_kit::CancellationToken::new();
    for _ in 0..2 {
        timers::spawn_worker(
            pool.clone(),
            Timers::connect(&env.settings.redis, schema).await?,
            Clock::system(),
            std::sync::Arc::new(Firings),
            env.settings.timers.clone(),
            stop.clone(),
        );
    }
    // wait for the window and then until every timer fired, or a minute beyond the window
    let give_up = start + window + time::Duration::seconds(60);
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM timers WHERE state = 'scheduled'")
            .fetch_one(&pool)
            .await?;
        if left == 0 || time::OffsetDateTime::now_utc() > give_up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    let (fired, distinct, p50, p99, max, first, last): (i64, i64, f64, f64, f64, time::OffsetDateTime, time::OffsetDateTime) =
        sqlx::query_as(
            "SELECT count(*), count(DISTINCT timer_id), \
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM fire_time - due_time)) * 1000, \
               percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM fire_time - due_time)) * 1000, \
               max(extract(epoch FROM fire_time - due_time))::float8 * 1000, min(fire_time), max(fire_time) FROM fired",
        )
        .fetch_one(&pool)
        .await?;
    let missed: i64 = sqlx::query_scalar("SELECT count(*) FROM timers WHERE state = 'scheduled'")
        .fetch_one(&pool)
        .await?;
    let span = (last - first).as_seconds_f64().max(0.001);
    println!(
        "{}",
        serde_json::json!({
            "op": "timers",
            "clients": 2,
            "requests": total,
            "window_s": window.as_secs(),
            "scheduled_in_s": scheduled_in.as_secs_f64(),
            "rps": fired as f64 / span,
            "p50_ms": p50,
            "p99_ms": p99,
            "max_ms": max,
            "duplicates": fired - distinct,
            "missed": missed,
        })
    );
    Ok(())
}

/// Records when each event reached its consumer.
struct Latency {
    seen: std::sync::Mutex<Vec<Duration>>,
}

#[tonic::async_trait]
impl crm_kit::events::Handler for Latency {
    async fn handle(
        &self,
        _tx: &mut sqlx::PgConnection,
        event: &crm_proto::events::v1::Event,
    ) -> Result<(), crm_kit::Error> {
        let committed = event.time.as_ref().map_or(0, |t| {
            t.seconds as i128 * 1_000_000_000 + i128::from(t.nanos)
        });
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let waited = Duration::from_nanos(u64::try_from((now - committed).max(0)).unwrap_or(0));
        self.seen.lock().expect("latency lock").push(waited);
        Ok(())
    }
}

/// Events from commit to consumer acknowledgement, with two relays (one active, one standby).
async fn events_case(
    mut env: testing::TestEnv,
    total: usize,
    publishers: usize,
) -> anyhow::Result<()> {
    use crm_kit::events::{self, Consumer, NewEvent, Payload};
    env.settings.events.relay_poll_ms = 5;
    env.settings.events.consumer_block_ms = 50;
    let schema = "benchevents";
    let pool = crm_kit::db::connect(&env.settings.database, schema).await?;
    crm_kit::db::migrate(&pool, schema, &sqlx::migrate::Migrator::DEFAULT).await?;
    let stop = crm_kit::CancellationToken::new();
    for _ in 0..2 {
        events::spawn_relay(
            pool.clone(),
            schema,
            env.settings.redis.clone(),
            env.settings.events.clone(),
            stop.clone(),
        );
    }
    let latency = std::sync::Arc::new(Latency {
        seen: std::sync::Mutex::new(Vec::new()),
    });
    let consumer = Consumer {
        group: "bench".into(),
        topics: vec![schema.into()],
        handler: latency.clone(),
    };
    events::spawn_consumer(
        pool.clone(),
        consumer,
        env.settings.redis.clone(),
        env.settings.events.clone(),
        stop.clone(),
    );
    let call = crm_kit::context::Call::system("bench", "bench/Publish");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let (pool, call) = (pool.clone(), call.clone());
        tasks.push(tokio::spawn(async move {
            for i in (p..total).step_by(publishers) {
                let mut tx = pool.begin().await.expect("begin");
                let payload = Payload::of(&crm_proto::common::v1::Date {
                    year: 2026,
                    month: 1,
                    day: 1,
                });
                let aggregate = format!("customers/{}", i % 1000);
                let event = NewEvent {
                    topic: schema,
                    event_type: "bench.happened",
                    aggregate: &aggregate,
                    payload,
                    urgent: false,
                };
                events::publish(&mut tx, &call, time::OffsetDateTime::now_utc(), event)
                    .await
                    .expect("publish");
                tx.commit().await.expect("commit");
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    while latency.seen.lock().expect("latency lock").len() < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    stop.cancel();
    let mut seen = latency.seen.lock().expect("latency lock").clone();
    seen.sort();
    println!(
        "{}",
        serde_json::json!({
            "op": "events",
            "clients": publishers,
            "requests": total,
            "rps": total as f64 / elapsed.as_secs_f64(),
            "p50_ms": percentile(&seen, 0.50),
            "p99_ms": percentile(&seen, 0.99),
        })
    );
    Ok(())
}

fn customer(i: usize) -> pb::Customer {
    pb::Customer {
        display_name: format!("基准测试客户 {i} Benchmark Co., Ltd."),
        industry: "electronics".into(),
        region: ["华东", "华北", "华南", "西南"][i % 4].into(),
        contacts: vec![pb::Contact {
            name: "王晓明".into(),
            phone: format!("+86 138 {:04} {:04}", i / 10000 % 10000, i % 10000),
            email: format!("user{i}@example.cn"),
            role: "IT".into(),
        }],
        tags: vec!["bench".into()],
        owner_id: format!("rep.{}", i % 16),
        ..Default::default()
    }
}

struct Outcome {
    latencies: Vec<Duration>,
    ids: Vec<String>,
    elapsed: Duration,
}

async fn run_case(
    channel: &Channel,
    token: &str,
    clients: usize,
    duration: Duration,
    op: &'static str,
    ids: &[String],
) -> Outcome {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client =
            CustomerServiceClient::with_interceptor(channel.clone(), testing::Bearer::new(token));
        let mut tickets =
            crm_proto::tickets::v1::ticket_service_client::TicketServiceClient::with_interceptor(
                channel.clone(),
                testing::Bearer::new(token),
            );
        let ids = ids.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut created = Vec::new();
            let mut i = c;
            while Instant::now() < deadline {
                let t = Instant::now();
                if op == "create" {
                    let r = client
                        .create_customer(pb::CreateCustomerRequest {
                            request_id: uuid::Uuid::new_v4().to_string(),
                            customer: Some(customer(i)),
                        })
                        .await
                        .expect("create");
                    created.push(r.into_inner().customer.expect("customer").id);
                } else if op == "create_ticket" {
                    tickets
                        .create_ticket(crm_proto::tickets::v1::CreateTicketRequest {
                            request_id: uuid::Uuid::new_v4().to_string(),
                            ticket: Some(ticket(&ids[i % ids.len()], i)),
                        })
                        .await
                        .expect("create ticket");
                } else {
                    let id = ids[i % ids.len()].clone();
                    client
                        .get_customer(pb::GetCustomerRequest { id })
                        .await
                        .expect("get");
                }
                latencies.push(t.elapsed());
                i += clients;
            }
            (latencies, created)
        }));
    }
    let mut outcome = Outcome {
        latencies: Vec::new(),
        ids: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (l, c) = t.await.expect("client task");
        outcome.latencies.extend(l);
        outcome.ids.extend(c);
    }
    outcome.elapsed = start.elapsed();
    outcome
}

/// A complete hotline ticket for customer `customer`.
fn ticket(customer: &str, i: usize) -> crm_proto::tickets::v1::Ticket {
    use crm_proto::tickets::v1 as t;
    t::Ticket {
        channel: t::Channel::Hotline as i32,
        customer_id: customer.to_string(),
        region: ["华东", "华北", "华南", "西南"][i % 4].into(),
        contact_name: format!("联系人 {i}"),
        contact_phone: format!("+86 138 {:04} {:04}", i % 10_000, (i / 7) % 10_000),
        product_model: "X200".into(),
        serial_number: format!("SN-{i:08}"),
        symptom: "无法开机".into(),
        warranty: t::Warranty::InWarranty as i32,
        service_mode: t::ServiceMode::OnSite as i32,
        ..Default::default()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(rows) = args.generate {
        return import::generate(&args.file, rows);
    }
    if args.import {
        return import::upload(&args.file, &args.gateway, &args.user, &args.password).await;
    }
    if let Some(label) = &args.lists {
        let settings = crm_kit::Settings::load(None)?;
        return cost::lists(&settings, label, args.list_calls).await;
    }
    if args.cost {
        let settings = crm_kit::Settings::load(None)?;
        return cost::case(
            &settings,
            args.server_pid,
            args.postmaster_pid,
            &args.clients,
            args.seconds,
            &args.cost_ops,
        )
        .await;
    }
    let mut env = testing::test_env().await;
    if let Some(total) = args.events {
        return events_case(env, total, args.clients.first().copied().unwrap_or(8)).await;
    }
    if let Some(total) = args.timers {
        return timers_case(env, total, Duration::from_secs(args.window)).await;
    }
    env.settings.database.max_connections = 40;
    // the limiter stays on (its cost is part of the gateway's) but never refuses the benchmark
    env.settings.rate_limit.roles.insert(
        "admin".into(),
        crm_kit::ratelimit::Rate {
            per_second: 10_000_000,
            burst: 10_000_000,
        },
    );
    let running = crm_tests::start(env.settings.clone(), Clock::system()).await?;
    if let Some(rows) = args.report {
        let token = testing::token(
            &running.settings,
            &testing::TestCaller {
                subject: "bench",
                roles: &["admin"],
                ..Default::default()
            },
            24 * 3600,
        );
        let pipeline = running.channel("pipeline").await;
        return report::case(&running.settings, pipeline, &token, rows, args.report_calls).await;
    }
    if args.reservations {
        let token = testing::token(
            &running.settings,
            &testing::TestCaller {
                subject: "bench",
                roles: &["admin"],
                ..Default::default()
            },
            24 * 3600,
        );
        let repairs = running.channel("repairs").await;
        return reservations::case(
            &running.settings,
            repairs,
            &token,
            &args.clients,
            args.seconds,
        )
        .await;
    }
    let channel = running.channel("customers").await;
    let gateway = running.channel("gateway").await;
    let token = testing::token(
        &running.settings,
        &testing::TestCaller {
            subject: "bench",
            roles: &["admin"],
            ..Default::default()
        },
        24 * 3600,
    );
    // warm up connections and caches
    run_case(&channel, &token, 4, Duration::from_secs(1), "create", &[]).await;
    for &clients in &args.clients {
        let duration = Duration::from_secs(args.seconds);
        let create = run_case(&channel, &token, clients, duration, "create", &[]).await;
        let get = run_case(&channel, &token, clients, duration, "get", &create.ids).await;
        let via_gateway = run_case(&gateway, &token, clients, duration, "get", &create.ids).await;
        // tickets through the gateway: the ticket, its history, six SLA timers (rows, then
        // armed in Redis), an outbox event, audit and the stored response per call
        let tickets = run_case(
            &gateway,
            &token,
            clients,
            duration,
            "create_ticket",
            &create.ids,
        )
        .await;
        for (op, mut o) in [
            ("create", create),
            ("get", get),
            ("get_via_gateway", via_gateway),
            ("create_ticket", tickets),
        ] {
            o.latencies.sort();
            let n = o.latencies.len();
            println!(
                "{}",
                serde_json::json!({
                    "op": op,
                    "clients": clients,
                    "requests": n,
                    "rps": n as f64 / o.elapsed.as_secs_f64(),
                    "p50_ms": percentile(&o.latencies, 0.50),
                    "p99_ms": percentile(&o.latencies, 0.99),
                })
            );
        }
    }
    drop(running);
    Ok(())
}
