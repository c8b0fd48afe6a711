//! The security matrix (issue 21, point 5), generated from the policy and the contracts: every
//! method of every service, called through the gateway by every role (and without a token),
//! is refused with PERMISSION_DENIED naming it exactly when the policy denies it, and
//! UNAUTHENTICATED without a token exactly when it is not public. The calls carry empty
//! request messages, so they also show that no method answers an empty request with a server
//! fault (INTERNAL or UNKNOWN).

use std::collections::BTreeMap;

use bytes::Bytes;
use crm_kit::{
    Clock,
    auth::{Access, Policy, ROLES},
    testing,
};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::Code;

/// Every `crm.*` method, as `package.Service/Method`.
fn methods() -> Vec<String> {
    let pool = crm_kit::connect::descriptors().unwrap();
    let mut all: Vec<String> = pool
        .services()
        .filter(|s| s.full_name().starts_with("crm."))
        .flat_map(|s| {
            s.methods()
                .map(|m| format!("{}/{}", s.full_name(), m.name()))
                .collect::<Vec<_>>()
        })
        .collect();
    all.sort();
    all
}

/// One gRPC call with an empty request message: its code and message.
async fn call(
    send: &mut SendRequest<Full<Bytes>>,
    authority: &str,
    method: &str,
    token: Option<&str>,
) -> (Code, String) {
    let mut request = http::Request::post(format!("http://{authority}/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        // bounded, so a server stream that would go on is cut: the code is then the deadline
        .header("grpc-timeout", "5S");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap();
    send.ready().await.unwrap();
    let response = send.send_request(request).await.expect("an answer");
    let headers = response.headers().clone();
    let collected = response.into_body().collect().await.expect("a body");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status = tonic::Status::from_header_map(&headers)
        .or_else(|| tonic::Status::from_header_map(&trailers))
        .unwrap_or_else(|| tonic::Status::unknown("no grpc-status"));
    (status.code(), status.message().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_is_allowed_or_denied_to_every_role_exactly_as_the_policy_says() {
    let mut env = testing::test_env().await;
    env.settings.rate_limit.enabled = false;
    let running = crm_tests::start(env.settings, Clock::system())
        .await
        .expect("platform starts");
    let policy = Policy::new(&running.settings.auth).unwrap();
    let authority = running.addrs["gateway"].to_string();
    let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let (mut send, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);

    let methods = methods();
    assert!(methods.len() > 100, "{} methods", methods.len());
    let mut wrong = Vec::new();
    let mut faults = Vec::new();
    let mut tally = BTreeMap::<&str, (usize, usize)>::new();

    // without a token: only the public methods get past authentication
    for method in &methods {
        let (code, message) = call(&mut send, &authority, method, None).await;
        let public = policy.access(method) == Access::Public;
        // a public method may refuse bad credentials (a wrong password), never a missing token
        let refused = code == Code::Unauthenticated && message.contains("missing bearer token");
        if public == refused {
            wrong.push(format!("anonymous {method}: {code:?} {message}"));
        }
    }

    // the roles side by side, each on its own stream of the one connection
    let mut tasks = Vec::new();
    for role in ROLES {
        let (mut send, authority, methods, policy) = (
            send.clone(),
            authority.clone(),
            methods.clone(),
            policy.clone(),
        );
        let subject = format!("matrix.{role}");
        let token = testing::token(
            &running.settings,
            &testing::TestCaller {
                subject: &subject,
                roles: &[role],
                region: "华东",
                partner: if *role == "partner" { "partner.a" } else { "" },
            },
            600,
        );
        tasks.push(tokio::spawn(async move {
            let (mut wrong, mut faults, mut counts) = (Vec::new(), Vec::new(), (0, 0));
            for method in &methods {
                // logging out would end the session the rest of the role's calls use
                if method == "crm.gateway.v1.AuthService/Logout" {
                    continue;
                }
                let allowed = policy.access(method) != Access::Roles
                    || policy.roles_allowed(method).iter().any(|r| r == role);
                let (code, message) = call(&mut send, &authority, method, Some(&token)).await;
                let denied = code == Code::PermissionDenied && message.contains(method.as_str());
                if allowed == denied {
                    wrong.push(format!(
                        "{role} {method}: policy {}, got {code:?} {message}",
                        if allowed { "allows" } else { "denies" }
                    ));
                }
                if matches!(code, Code::Internal | Code::Unknown) {
                    faults.push(format!("{role} {method}: {code:?} {message}"));
                }
                if allowed {
                    counts.0 += 1;
                } else {
                    counts.1 += 1;
                }
            }
            (*role, wrong, faults, counts)
        }));
    }
    for task in tasks {
        let (role, w, f, counts) = task.await.unwrap();
        wrong.extend(w);
        faults.extend(f);
        tally.insert(role, counts);
    }
    assert!(
        wrong.is_empty(),
        "{} calls disagree with the policy:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(
        faults.is_empty(),
        "empty requests answered as server faults:\n{}",
        faults.join("\n")
    );
    // every role may do something and is refused something (but the admin, allowed all)
    for (role, (allowed, denied)) in &tally {
        assert!(*allowed > 0, "{role} may call nothing");
        assert!(*role == "admin" || *denied > 0, "{role} is refused nothing");
    }
}
