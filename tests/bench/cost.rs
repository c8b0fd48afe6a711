//! The cost of one call, measured from outside the server (`crm-bench --cost`): the platform
//! runs as `crm serve all` in a process of its own, this load generator sends prepared gRPC
//! bodies over bare HTTP/2 connections (hyper, one connection and one call at a time per
//! client, no tonic codec in between) and counts each answer's `grpc-status`, not its HTTP
//! status. Around each case it reads the CPU time of the server process and of every Postgres
//! process from `/proc/<pid>/stat`, and counts with `perf stat` the messages the server's
//! Postgres backends send (`sendto`): one per round trip, since a backend answers once per
//! `Sync` and flushes once.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use crm_kit::{Settings, testing};
use crm_proto::{customers::v1 as cpb, tickets::v1 as tpb};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;

/// Builds the request message of call `i`.
type BodyFn = Arc<dyn Fn(usize) -> Vec<u8> + Send + Sync>;
/// Takes what a case yields for later ones (the id in an answer).
type TakeFn = fn(&[u8]) -> Option<String>;

/// One case: a method on one server, its bodies, and what to keep from the answers.
struct Case {
    addr: String,
    path: &'static str,
    body: BodyFn,
    take: Option<TakeFn>,
    /// At most this many calls (the objects a case uses up).
    limit: usize,
    /// JSON over HTTP (Connect's unary form: the body is the JSON, success is HTTP 200)
    /// instead of gRPC.
    json: bool,
}

/// What a case measured.
struct Measured {
    codes: BTreeMap<String, usize>,
    latencies: Vec<Duration>,
    kept: Vec<String>,
    elapsed: Duration,
}

/// Frames a protobuf message as one gRPC message (uncompressed).
fn frame(message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out.into()
}

async fn connect(addr: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (send, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(send)
}

/// One call: its `grpc-status` (from the trailers, or the headers of a trailers-only answer)
/// and the response message.
async fn call(
    send: &mut SendRequest<Full<Bytes>>,
    uri: &http::Uri,
    authorization: &http::HeaderValue,
    body: Bytes,
    json: bool,
) -> (String, Bytes) {
    let request = http::Request::post(uri.clone())
        .header(
            http::header::CONTENT_TYPE,
            if json {
                "application/json"
            } else {
                "application/grpc"
            },
        )
        .header(http::header::TE, "trailers")
        .header(http::header::AUTHORIZATION, authorization.clone())
        .body(Full::new(body))
        .expect("request");
    let response = match send.send_request(request).await {
        Ok(r) => r,
        Err(e) => return (format!("transport: {e}"), Bytes::new()),
    };
    if json {
        // Connect: 200 and the message, or the error body's code
        let ok = response.status() == http::StatusCode::OK;
        let bytes = match response.into_body().collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => return (format!("transport: {e}"), Bytes::new()),
        };
        let code = if ok {
            "0".to_string()
        } else {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["code"].as_str().map(str::to_string))
                .unwrap_or_else(|| "missing".into())
        };
        return (code, bytes);
    }
    let early = response.headers().get("grpc-status").cloned();
    let collected = match response.into_body().collect().await {
        Ok(c) => c,
        Err(e) => return (format!("transport: {e}"), Bytes::new()),
    };
    let late = collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .cloned();
    let code = early
        .or(late)
        .and_then(|v| v.to_str().ok().map(str::to_string))
        .unwrap_or_else(|| "missing".into());
    let bytes = collected.to_bytes();
    let message = if bytes.len() >= 5 {
        bytes.slice(5..)
    } else {
        Bytes::new()
    };
    (code, message)
}

async fn run(case: &Case, token: &str, clients: usize, duration: Duration) -> Measured {
    let uri: http::Uri = format!("http://{}{}", case.addr, case.path)
        .parse()
        .expect("uri");
    let authorization = http::HeaderValue::from_str(&format!("Bearer {token}")).expect("token");
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (uri, authorization, body, take, addr) = (
            uri.clone(),
            authorization.clone(),
            case.body.clone(),
            case.take,
            case.addr.clone(),
        );
        let (limit, json) = (case.limit, case.json);
        tasks.push(tokio::spawn(async move {
            let mut send = connect(&addr).await.expect("connect");
            let mut codes = BTreeMap::<String, usize>::new();
            let (mut latencies, mut kept) = (Vec::new(), Vec::new());
            let mut i = c;
            while Instant::now() < deadline && i < limit {
                let message = if json {
                    Bytes::from(body(i))
                } else {
                    frame(&body(i))
                };
                let t = Instant::now();
                let (code, answer) = call(&mut send, &uri, &authorization, message, json).await;
                latencies.push(t.elapsed());
                if code == "0"
                    && let Some(f) = take
                    && let Some(id) = f(&answer)
                {
                    kept.push(id);
                }
                *codes.entry(code).or_default() += 1;
                i += clients;
            }
            (codes, latencies, kept)
        }));
    }
    let mut measured = Measured {
        codes: BTreeMap::new(),
        latencies: Vec::new(),
        kept: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (codes, latencies, kept) = t.await.expect("client task");
        for (code, n) in codes {
            *measured.codes.entry(code).or_default() += n;
        }
        measured.latencies.extend(latencies);
        measured.kept.extend(kept);
    }
    measured.elapsed = start.elapsed();
    measured
}

/// utime + stime of a process, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
fn ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // the command name (field 2) is in parentheses and may hold spaces
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (state): utime is field 14, stime field 15
    let get = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(14) + get(15)
}

fn parent(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The postmaster and all its children (backends and background processes).
fn postgres_processes(postmaster: u32) -> Vec<u32> {
    let mut pids = vec![postmaster];
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            if let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
                && parent(pid) == Some(postmaster)
            {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Counts the `sendto` calls of `pids` until [`Perf::stop`]; `None` if `perf` cannot.
struct Perf {
    child: std::process::Child,
    output: std::path::PathBuf,
}

impl Perf {
    fn start(pids: &[u32]) -> Option<Self> {
        if pids.is_empty() {
            return None;
        }
        let output = std::env::temp_dir().join(format!("crm-bench-perf-{}", uuid::Uuid::new_v4()));
        let list = pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let child = std::process::Command::new("perf")
            .args(["stat", "-x", ",", "-e", "syscalls:sys_enter_sendto", "-p"])
            .arg(&list)
            .arg("-o")
            .arg(&output)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        // perf attaches within milliseconds; give it a moment before the case starts
        std::thread::sleep(Duration::from_millis(300));
        Some(Self { child, output })
    }

    fn stop(mut self) -> Option<u64> {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.output).ok()?;
        let _ = std::fs::remove_file(&self.output);
        text.lines()
            .find(|l| l.contains("sys_enter_sendto"))
            .and_then(|l| l.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    }
}

/// The Postgres backends of the platform's pools (`application_name` `crm-<schema>`).
async fn platform_backends(admin: &sqlx::PgPool) -> anyhow::Result<Vec<u32>> {
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'crm-%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(admin)
    .await?;
    Ok(pids.into_iter().map(|p| p as u32).collect())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

fn decode_id<M: Message + Default>(bytes: &[u8], id: fn(M) -> Option<String>) -> Option<String> {
    M::decode(bytes).ok().and_then(id)
}

/// Runs every case at every concurrency against the platform at `settings.services`, whose
/// process is `server`, on the Postgres whose postmaster is `postmaster`; prints a JSON line
/// per case and concurrency. `only` names the cases to run (all when empty; a case that uses
/// the ids of an earlier one then needs it named too).
pub async fn case(
    settings: &Settings,
    server: u32,
    postmaster: u32,
    clients: &[usize],
    seconds: u64,
    only: &[String],
) -> anyhow::Result<()> {
    let token = testing::token(
        settings,
        &testing::TestCaller {
            subject: "bench",
            roles: &["admin"],
            ..Default::default()
        },
        24 * 3600,
    );
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&settings.database.url)
        .await?;
    let addr = |service: &str| {
        settings.services[service]
            .url
            .trim_start_matches("http://")
            .to_string()
    };
    let (customers, gateway) = (addr("customers"), addr("gateway"));
    let duration = Duration::from_secs(seconds);
    let warm_up = Duration::from_secs(1);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut customer_ids: Vec<String> = Vec::new();
    let mut ticket_ids: Vec<String> = Vec::new();
    // what the platform does on its own (relays, consumers and timer workers polling), per
    // second, subtracted from every case below
    let idle = {
        let backends = platform_backends(&admin).await?;
        let pg = postgres_processes(postmaster);
        let perf = Perf::start(&backends);
        let started = Instant::now();
        let (s0, p0) = (ticks(server), pg.iter().map(|p| ticks(*p)).sum::<u64>());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (s1, p1) = (ticks(server), pg.iter().map(|p| ticks(*p)).sum::<u64>());
        let secs = started.elapsed().as_secs_f64();
        let sends = perf.and_then(Perf::stop).unwrap_or(0);
        let rates = (
            (s1 - s0) as f64 / secs,
            (p1 - p0) as f64 / secs,
            sends as f64 / secs,
        );
        println!(
            "{}",
            serde_json::json!({
                "op": "cost_idle",
                "clients": 0,
                "server_us_per_s": rates.0 * 10_000.0,
                "pg_us_per_s": rates.1 * 10_000.0,
                "round_trips_per_s": rates.2,
            })
        );
        rates
    };
    for &c in clients {
        for op in OPS
            .into_iter()
            .filter(|op| only.is_empty() || only.iter().any(|o| o == op))
        {
            // each case is built when it runs, from the ids the cases before it kept
            let mut case = build(
                op,
                c,
                &customers,
                &gateway,
                &customer_ids,
                &ticket_ids,
                &run_id,
            );
            // `--seconds 0`: one call per client, no warm-up (to read a call's statements in
            // the Postgres log)
            let single = seconds == 0;
            if single {
                case.limit = case.limit.min(c);
            }
            let duration = if single {
                Duration::from_secs(60)
            } else {
                duration
            };
            // warm up (pool connections opened, caches filled), except where each call uses
            // up an object
            if op != "transition_via_gateway" && !single {
                let w = run(&case, &token, c, warm_up).await;
                if op == "create_customer" {
                    customer_ids.extend(w.kept);
                }
            }
            let backends = platform_backends(&admin).await?;
            let pg = postgres_processes(postmaster);
            let perf = Perf::start(&backends);
            let pg_ticks = || pg.iter().map(|p| ticks(*p)).sum::<u64>();
            let (server_before, pg_before) = (ticks(server), pg_ticks());
            let mut m = run(&case, &token, c, duration).await;
            let (server_after, pg_after) = (ticks(server), pg_ticks());
            let sends = perf.and_then(Perf::stop);
            let secs = m.elapsed.as_secs_f64();
            match op {
                "create_customer" => customer_ids.extend(std::mem::take(&mut m.kept)),
                // the transitions of this round hand these on
                "create_ticket_via_gateway" => ticket_ids = std::mem::take(&mut m.kept),
                _ => {}
            }
            m.latencies.sort();
            let ok = m.codes.get("0").copied().unwrap_or(0);
            let total: usize = m.codes.values().sum();
            let tick_us = 1_000_000.0 / 100.0; // USER_HZ is 100 on Linux
            let net = |spent: u64, idle_per_s: f64| (spent as f64 - idle_per_s * secs).max(0.0);
            let per_call = |ticks: f64| ticks * tick_us / total.max(1) as f64;
            println!(
                "{}",
                serde_json::json!({
                    "op": format!("cost_{op}"),
                    "clients": c,
                    "requests": total,
                    "ok": ok,
                    "codes": m.codes,
                    "rps": ok as f64 / m.elapsed.as_secs_f64(),
                    "p50_ms": percentile(&m.latencies, 0.50),
                    "p99_ms": percentile(&m.latencies, 0.99),
                    "server_us": per_call(net(server_after - server_before, idle.0)),
                    "pg_us": per_call(net(pg_after - pg_before, idle.1)),
                    // perf's window is the case's plus the moment it takes to attach
                    "round_trips": sends.map(|s| net(s, idle.2) / total.max(1) as f64),
                })
            );
        }
    }
    Ok(())
}

/// The cases, in the order they run (a later one uses the ids an earlier one kept).
const OPS: [&str; 8] = [
    "health",
    "create_customer",
    "get_customer",
    "get_customer_via_gateway",
    "get_customer_via_gateway_json",
    "list_customers",
    "create_ticket_via_gateway",
    "transition_via_gateway",
];

/// The case `op` at `clients` clients.
fn build(
    op: &'static str,
    clients: usize,
    customers: &str,
    gateway: &str,
    customer_ids: &[String],
    ticket_ids: &[String],
    run: &str,
) -> Case {
    let ids = Arc::new(customer_ids.to_vec());
    let any_customer = move |i: usize| ids.get(i % ids.len().max(1)).cloned().unwrap_or_default();
    let (addr, path, body, take): (&str, &'static str, BodyFn, Option<TakeFn>) = match op {
        "health" => (
            customers,
            "/grpc.health.v1.Health/Check",
            Arc::new(|_| Vec::new()),
            None,
        ),
        "create_customer" => (
            customers,
            "/crm.customers.v1.CustomerService/CreateCustomer",
            Arc::new(move |i| {
                cpb::CreateCustomerRequest {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    customer: Some(crate::customer(i + clients * 10_000_000)),
                }
                .encode_to_vec()
            }),
            Some(|b| decode_id(b, |r: cpb::CreateCustomerResponse| r.customer.map(|c| c.id))),
        ),
        "get_customer" | "get_customer_via_gateway" => (
            if op == "get_customer" {
                customers
            } else {
                gateway
            },
            "/crm.customers.v1.CustomerService/GetCustomer",
            Arc::new(move |i| {
                cpb::GetCustomerRequest {
                    id: any_customer(i),
                }
                .encode_to_vec()
            }),
            None,
        ),
        "get_customer_via_gateway_json" => (
            gateway,
            "/crm.customers.v1.CustomerService/GetCustomer",
            Arc::new(move |i| {
                serde_json::json!({ "id": any_customer(i) })
                    .to_string()
                    .into_bytes()
            }),
            None,
        ),
        "list_customers" => (
            customers,
            "/crm.customers.v1.CustomerService/ListCustomers",
            Arc::new(|i| {
                cpb::ListCustomersRequest {
                    filter: Some(cpb::CustomerFilter {
                        region: ["华东", "华北", "华南", "西南"][i % 4].into(),
                        ..Default::default()
                    }),
                    page: Some(crm_proto::common::v1::PageRequest {
                        page_size: 20,
                        page_token: String::new(),
                    }),
                }
                .encode_to_vec()
            }),
            None,
        ),
        "create_ticket_via_gateway" => (
            gateway,
            "/crm.tickets.v1.TicketService/CreateTicket",
            Arc::new(move |i| {
                tpb::CreateTicketRequest {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    ticket: Some(crate::ticket(&any_customer(i), i)),
                }
                .encode_to_vec()
            }),
            Some(|b| decode_id(b, |r: tpb::CreateTicketResponse| r.ticket.map(|t| t.id))),
        ),
        "transition_via_gateway" => {
            let tickets = Arc::new(ticket_ids.to_vec());
            let run = format!("{run}-{clients}");
            (
                gateway,
                "/crm.tickets.v1.TicketService/TransitionTicket",
                // each ticket the creation case made is handed on once (the case stops at the
                // last one)
                Arc::new(move |i| {
                    tpb::TransitionTicketRequest {
                        request_id: format!("{run}-{i}"),
                        id: tickets.get(i).cloned().unwrap_or_default(),
                        transition: tpb::Transition::HandToHotlineEngineer as i32,
                        ..Default::default()
                    }
                    .encode_to_vec()
                }),
                None,
            )
        }
        other => unreachable!("no case {other}"),
    };
    Case {
        addr: addr.to_string(),
        path,
        body,
        take,
        limit: if op == "transition_via_gateway" {
            ticket_ids.len()
        } else {
            usize::MAX
        },
        json: op.ends_with("_json"),
    }
}

/// Lists at scale (`crm-bench --lists LABEL`): ListCustomers by region, by a Chinese name
/// fragment, and by owner and tier, one client, first page and page 100 (reached by following
/// the page tokens), each `calls` times; a JSON line per list and page, labelled `label` with
/// the number of live customers.
pub async fn lists(settings: &Settings, label: &str, calls: usize) -> anyhow::Result<()> {
    let token = testing::token(
        settings,
        &testing::TestCaller {
            subject: "bench",
            roles: &["admin"],
            ..Default::default()
        },
        24 * 3600,
    );
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&settings.database.url)
        .await?;
    let customers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM customers.customers WHERE delete_time IS NULL")
            .fetch_one(&admin)
            .await?;
    let addr = settings.services["customers"]
        .url
        .trim_start_matches("http://")
        .to_string();
    let uri: http::Uri =
        format!("http://{addr}/crm.customers.v1.CustomerService/ListCustomers").parse()?;
    let authorization = http::HeaderValue::from_str(&format!("Bearer {token}"))?;
    let mut send = connect(&addr).await?;
    let filters = [
        (
            "region",
            cpb::CustomerFilter {
                region: "华东".into(),
                ..Default::default()
            },
        ),
        (
            "name",
            cpb::CustomerFilter {
                name_contains: "客户00012".into(),
                ..Default::default()
            },
        ),
        (
            "owner_tier",
            cpb::CustomerFilter {
                owner_id: "rep.3".into(),
                tier: cpb::Tier::Ordinary as i32,
                ..Default::default()
            },
        ),
    ];
    for (name, filter) in filters {
        let request = |page_token: String| {
            frame(
                &cpb::ListCustomersRequest {
                    filter: Some(filter.clone()),
                    page: Some(crm_proto::common::v1::PageRequest {
                        page_size: 20,
                        page_token,
                    }),
                }
                .encode_to_vec(),
            )
        };
        // the token of page 100, by following the tokens (fewer pages: the last one there is)
        let mut token_of = String::new();
        let mut page = 1;
        while page < 100 {
            let (code, answer) = call(
                &mut send,
                &uri,
                &authorization,
                request(token_of.clone()),
                false,
            )
            .await;
            anyhow::ensure!(code == "0", "ListCustomers by {name}: grpc-status {code}");
            let next = cpb::ListCustomersResponse::decode(answer)?
                .page
                .map(|p| p.next_page_token)
                .unwrap_or_default();
            if next.is_empty() {
                break;
            }
            token_of = next;
            page += 1;
        }
        for (which, page_token) in [("first", String::new()), ("page100", token_of)] {
            if which == "page100" && page < 100 {
                continue;
            }
            let mut latencies = Vec::with_capacity(calls);
            let mut rows = 0;
            for _ in 0..calls {
                let t = Instant::now();
                let (code, answer) = call(
                    &mut send,
                    &uri,
                    &authorization,
                    request(page_token.clone()),
                    false,
                )
                .await;
                latencies.push(t.elapsed());
                anyhow::ensure!(code == "0", "ListCustomers by {name}: grpc-status {code}");
                rows = cpb::ListCustomersResponse::decode(answer)?.customers.len();
            }
            latencies.sort();
            println!(
                "{}",
                serde_json::json!({
                    "op": "list",
                    "clients": 1,
                    "label": label,
                    "customers": customers,
                    "filter": name,
                    "page": which,
                    "rows": rows,
                    "requests": calls,
                    "p50_ms": percentile(&latencies, 0.50),
                    "p99_ms": percentile(&latencies, 0.99),
                })
            );
        }
    }
    Ok(())
}
