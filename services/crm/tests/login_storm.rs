//! A storm of anonymous log-ins against a gateway running as its own process (`crm serve
//! gateway`), as on Kubernetes: its memory stays under the chart's limit, nothing answers as a
//! fault, a user name under attack is locked out, and other users still log in (issue 14, G-3).

use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crm_kit::testing;
use crm_proto::gateway::v1::{self as gw, auth_service_client::AuthServiceClient};
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

/// The gateway's memory limit in the Helm chart (`helm/crm/values.yaml`).
const CEILING_MIB: u64 = 256;
const PASSWORD: &str = "correct horse battery staple";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn login(
    client: &mut AuthServiceClient<Channel>,
    user: &str,
    password: &str,
) -> Result<gw::LoginResponse, tonic::Status> {
    client
        .login(gw::LoginRequest {
            username: user.into(),
            password: password.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// A log-in that waits as a RESOURCE_EXHAUSTED refusal says (up to 20 s), then answers.
async fn patient_login(
    client: &mut AuthServiceClient<Channel>,
    user: &str,
    password: &str,
) -> Result<gw::LoginResponse, tonic::Status> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match login(client, user, password).await {
            Err(s)
                if s.code() == Code::ResourceExhausted && std::time::Instant::now() < deadline =>
            {
                let wait = s.get_details_retry_info().and_then(|r| r.retry_delay);
                tokio::time::sleep(wait.unwrap_or(Duration::from_millis(200))).await;
            }
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_storm_keeps_the_gateway_within_its_memory_and_others_still_log_in() {
    let env = testing::test_env().await;
    let settings = env.settings;
    crm_gateway::migrate(&settings).await.unwrap();
    let identity = crm::admin::identity(&settings).await.unwrap();
    for name in ["victim", "bystander"] {
        let user = gw::User {
            username: name.into(),
            roles: vec!["sales_rep".into()],
            region: "华东".into(),
            ..Default::default()
        };
        crm::admin::create_user(&identity, &format!("seed-{name}"), user, PASSWORD, "test")
            .await
            .unwrap();
    }
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["serve", "gateway"])
        .env("CRM__DATABASE__URL", &settings.database.url)
        .env("CRM__REDIS__URL", &settings.redis.url)
        .env("CRM__REDIS__KEY_PREFIX", &settings.redis.key_prefix)
        .env("CRM__AUTH__SIGNING_KEY", &settings.auth.signing_key)
        .env(
            "CRM__SERVICES__GATEWAY__LISTEN",
            format!("127.0.0.1:{port}"),
        )
        .env("CRM__TELEMETRY__LOG_FILTER", "error")
        // one client address here: lift its limit so the storm reaches the hashing itself
        .env("CRM__RATE_LIMIT__ANONYMOUS__PER_SECOND", "1000000")
        .env("CRM__RATE_LIMIT__ANONYMOUS__BURST", "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("crm serve gateway");
    let pid = child.id();
    let _server = Server(child);
    let url = format!("http://127.0.0.1:{port}");
    testing::wait_until("the gateway to serve", Duration::from_secs(30), || {
        let url = url.clone();
        async move { Channel::from_shared(url).unwrap().connect().await.is_ok() }
    })
    .await;
    let mut client =
        AuthServiceClient::new(Channel::from_shared(url).unwrap().connect().await.unwrap());
    // a first log-in warms the process up (its dummy hash, its pools) before idle is measured
    login(&mut client, "bystander", PASSWORD).await.unwrap();
    let idle = rss_kib(pid, "VmRSS:");

    let peak = Arc::new(AtomicU64::new(0));
    let sampling = tokio::spawn({
        let peak = peak.clone();
        async move {
            loop {
                peak.fetch_max(rss_kib(pid, "VmRSS:"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    // 1,500 log-ins, 300 in flight: wrong passwords for one user, and unknown user names
    let gate = Arc::new(tokio::sync::Semaphore::new(300));
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1500 {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let mut client = client.clone();
        calls.spawn(async move {
            let _permit = permit;
            let user = if i % 2 == 0 {
                "victim".to_string()
            } else {
                format!("nobody-{i}")
            };
            login(&mut client, &user, &format!("wrong-{i}"))
                .await
                .map(|_| ())
                .map_err(|s| s.code())
        });
    }
    // meanwhile another user logs in, waiting as the refusals say
    let mut other = client.clone();
    let bystander = tokio::spawn(async move {
        let start = std::time::Instant::now();
        loop {
            match login(&mut other, "bystander", PASSWORD).await {
                Ok(r) => return (start.elapsed(), r),
                Err(s) if s.code() == Code::ResourceExhausted => {
                    let wait = s
                        .get_details_retry_info()
                        .and_then(|r| r.retry_delay)
                        .unwrap_or(Duration::from_millis(100));
                    tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
                }
                Err(s) => panic!("the bystander's log-in failed: {s:?}"),
            }
        }
    });
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    while let Some(result) = calls.join_next().await {
        let code = match result.unwrap() {
            Ok(()) => "OK".to_string(),
            Err(c) => format!("{c:?}"),
        };
        *codes.entry(code).or_default() += 1;
    }
    let (took, logged_in) = bystander.await.unwrap();
    sampling.abort();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "codes {codes:?}; RSS idle {} MiB, peak {} MiB; the bystander logged in after {took:?}",
        idle / 1024,
        peak / 1024
    );
    // nothing is a fault, nothing gets in with a wrong password
    for code in codes.keys() {
        assert!(
            code == "Unauthenticated" || code == "ResourceExhausted",
            "unexpected answers in {codes:?}"
        );
    }
    assert!(
        codes.get("ResourceExhausted").copied().unwrap_or(0) > 0,
        "limits answered: {codes:?}"
    );
    assert!(
        peak / 1024 < CEILING_MIB,
        "peak RSS {} MiB over {CEILING_MIB} MiB",
        peak / 1024
    );
    assert!(
        took < Duration::from_secs(20),
        "the bystander waited {took:?}"
    );
    assert!(!logged_in.access_token.is_empty());

    // the storm's attempts at the victim may mostly have been turned away before their
    // password was checked (busy, rate): fail it until it locks, as the refusals say
    for i in 0.. {
        let s = patient_login(&mut client, "victim", &format!("again-{i}"))
            .await
            .unwrap_err();
        if s.get_details_error_info()
            .is_some_and(|e| e.reason == "LOGIN_LOCKED")
        {
            break;
        }
        assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
        assert!(i < 5, "not locked after {i} more failures");
    }
    // the attacked user name is locked, even with the right password, and says so
    let locked = patient_login(&mut client, "victim", PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::Unauthenticated, "{locked:?}");
    assert_eq!(
        locked.get_details_error_info().map(|i| i.reason),
        Some("LOGIN_LOCKED".to_string()),
        "{locked:?}"
    );
    assert!(locked.get_details_retry_info().is_some());
    // and the lock-out is in the audit trail
    let pool = crm_kit::db::connect(&settings.database, "gateway")
        .await
        .unwrap();
    let locks: i64 = sqlx_count(&pool).await;
    assert!(locks >= 1, "the lock-out is audited");

    // memory goes back down to near its idle level
    testing::wait_until("memory back near idle", Duration::from_secs(10), || async {
        rss_kib(pid, "VmRSS:") < idle + 64 * 1024
    })
    .await;
}

async fn sqlx_count(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE outcome = 'locked'")
        .fetch_one(pool)
        .await
        .unwrap()
}
