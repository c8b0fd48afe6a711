//! `crm-bench`: customer Create and Get over a real gRPC channel at several concurrencies, with
//! the platform running in this process against the Postgres named by CRM_TEST_DATABASE_URL.
//! Prints one JSON object per case; `deploy/bench.sh` turns them into BENCHMARKS.md.

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
        tier: pb::Tier::Ordinary.into(),
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

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut env = testing::test_env().await;
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
        for (op, mut o) in [
            ("create", create),
            ("get", get),
            ("get_via_gateway", via_gateway),
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
