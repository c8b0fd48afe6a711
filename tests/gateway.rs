//! The platform through the gateway, as an outside client sees it: log in, call the customers
//! service with the token, be refused without the right one, and find nothing secret in the
//! logs.

use std::{
    io::Write,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use crm_kit::{Clock, testing};
use crm_proto::{
    customers::v1::{self as customers, customer_service_client::CustomerServiceClient},
    gateway::v1::{
        self as gw, admin_service_client::AdminServiceClient,
        auth_service_client::AuthServiceClient,
    },
};
use tonic::{Code, Request, transport::Channel};

/// Every log line of this test binary.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(Arc::default)
}

#[derive(Clone)]
struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        captured().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const PASSWORD: &str = "correct horse battery staple";

struct Platform {
    running: crm_tests::Running,
    gateway: Channel,
}

async fn platform() -> Platform {
    platform_with(|_| {}).await
}

async fn platform_with(tweak: impl FnOnce(&mut crm_kit::Settings)) -> Platform {
    let mut env = testing::test_env().await;
    tweak(&mut env.settings);
    env.settings.telemetry.log_filter = "debug,h2=info,hyper=info,tower=info,sqlx=info".into();
    let _ = crm_kit::telemetry::init("test", &env.settings.telemetry, || Capture);
    let running = crm_tests::start(env.settings, Clock::system())
        .await
        .expect("platform starts");
    let identity = crm::admin::identity(&running.settings).await.unwrap();
    for (name, role, region, partner) in [
        ("admin", "admin", "", ""),
        ("rep.east", "sales_rep", "华东", ""),
        ("manager", "sales_manager", "", ""),
        ("agent", "hotline_agent", "", ""),
        ("support", "tech_support", "", ""),
        ("partner.user", "partner", "", "partner.sz"),
    ] {
        let user = gw::User {
            username: name.into(),
            roles: vec![role.into()],
            region: region.into(),
            partner_id: partner.into(),
            ..Default::default()
        };
        crm::admin::create_user(&identity, &format!("seed-{name}"), user, PASSWORD, "test")
            .await
            .unwrap();
    }
    let gateway = running.channel("gateway").await;
    Platform { running, gateway }
}

impl Platform {
    async fn login(&self, username: &str) -> gw::LoginResponse {
        AuthServiceClient::new(self.gateway.clone())
            .login(gw::LoginRequest {
                username: username.into(),
                password: PASSWORD.into(),
            })
            .await
            .expect("login")
            .into_inner()
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

fn sample(name: &str, region: &str) -> customers::Customer {
    customers::Customer {
        display_name: name.into(),
        region: region.into(),
        contacts: vec![customers::Contact {
            name: "李娜".into(),
            phone: "+86 139 0000 1111".into(),
            email: "lina@example.cn".into(),
            role: String::new(),
        }],
        ..Default::default()
    }
}

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn login_then_call_customers_through_the_gateway() {
    let p = platform().await;
    let session = p.login("admin").await;
    assert_eq!(session.caller.as_ref().unwrap().roles, ["admin"]);
    let mut client = p.customers(&session.access_token);
    let created = client
        .create_customer(customers::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(sample("网关测试公司", "华东")),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    // the service recorded the user behind the token
    assert_eq!(
        created.created.unwrap().actor,
        session.caller.unwrap().subject
    );
    let got = client
        .get_customer(customers::GetCustomerRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        got.into_inner().customer.unwrap().display_name,
        "网关测试公司"
    );

    let who = AuthServiceClient::with_interceptor(
        p.gateway.clone(),
        testing::Bearer::new(&session.access_token),
    )
    .who_am_i(gw::WhoAmIRequest {})
    .await
    .unwrap()
    .into_inner()
    .caller
    .unwrap();
    assert_eq!(who.name, "admin");

    // wrong passwords and unknown users are refused alike
    let mut auth = AuthServiceClient::new(p.gateway.clone());
    for (user, password) in [("admin", "wrong password!"), ("nobody", PASSWORD)] {
        let status = auth
            .login(gw::LoginRequest {
                username: user.into(),
                password: password.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (
                Code::Unauthenticated,
                "unauthenticated: wrong user name or password"
            )
        );
    }
}

#[tokio::test]
async fn each_role_is_allowed_and_denied_by_the_policy() {
    let p = platform().await;
    let admin = p.login("admin").await.access_token;
    let c = p
        .customers(&admin)
        .create_customer(customers::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(sample("角色测试", "华东")),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    let get = customers::GetCustomerRequest { id: c.id.clone() };
    let delete = || customers::DeleteCustomerRequest {
        id: c.id.clone(),
        version: 0,
        request_id: rid(),
    };
    let list_users = gw::ListUsersRequest::default();

    // (user, may get, may delete, may list users)
    for (user, get_ok, delete_ok, admin_ok) in [
        ("rep.east", true, false, false),
        ("agent", true, false, false),
        ("partner.user", false, false, false),
        ("manager", true, true, false),
    ] {
        let token = p.login(user).await.access_token;
        let mut client = p.customers(&token);
        let got = client.get_customer(get.clone()).await;
        assert_eq!(got.is_ok(), get_ok, "{user} GetCustomer: {got:?}");
        if !get_ok {
            let status = got.unwrap_err();
            assert_eq!(status.code(), Code::PermissionDenied);
            assert!(
                status
                    .message()
                    .contains("crm.customers.v1.CustomerService/GetCustomer")
            );
        }
        if !delete_ok {
            let status = client.delete_customer(delete()).await.unwrap_err();
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{user} DeleteCustomer"
            );
        }
        let users =
            AdminServiceClient::with_interceptor(p.gateway.clone(), testing::Bearer::new(&token))
                .list_users(list_users.clone())
                .await;
        assert_eq!(users.is_ok(), admin_ok, "{user} ListUsers");
    }
    let mut manager = p.customers(&p.login("manager").await.access_token);
    manager.delete_customer(delete()).await.unwrap();

    // the tech-support user sees only partnered customers: none yet
    let support = p.login("support").await.access_token;
    let status = p
        .customers(&support)
        .get_customer(get.clone())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn a_partner_api_key_works_until_revoked() {
    let p = platform().await;
    let admin = p.login("admin").await.access_token;
    let mut admin_api =
        AdminServiceClient::with_interceptor(p.gateway.clone(), testing::Bearer::new(&admin));
    let created = admin_api
        .create_api_key(gw::CreateApiKeyRequest {
            request_id: rid(),
            api_key: Some(gw::ApiKey {
                name: "Shenzhen repair centre".into(),
                roles: vec!["partner".into()],
                partner_id: "partner.sz".into(),
                ..Default::default()
            }),
            ttl_days: 30,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(created.secret.starts_with("crmk_"));
    let listed = admin_api
        .list_api_keys(gw::ListApiKeysRequest::default())
        .await
        .unwrap()
        .into_inner()
        .api_keys;
    assert_eq!(listed.len(), 1);

    let mut auth = AuthServiceClient::new(p.gateway.clone());
    let token = auth
        .exchange_api_key(gw::ExchangeApiKeyRequest {
            api_key: created.secret.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let caller = token.caller.unwrap();
    assert_eq!(
        (caller.kind.as_str(), caller.partner_id.as_str()),
        ("api_key", "partner.sz")
    );
    let mut who = AuthServiceClient::with_interceptor(
        p.gateway.clone(),
        testing::Bearer::new(&token.access_token),
    );
    who.who_am_i(gw::WhoAmIRequest {}).await.unwrap();
    // a partner sees no customer records
    let status = p
        .customers(&token.access_token)
        .list_customers(customers::ListCustomersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    admin_api
        .revoke_api_key(gw::RevokeApiKeyRequest {
            request_id: rid(),
            id: created.api_key.unwrap().id,
        })
        .await
        .unwrap();
    let status = who.who_am_i(gw::WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = auth
        .exchange_api_key(gw::ExchangeApiKeyRequest {
            api_key: created.secret,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let forged = auth
        .exchange_api_key(gw::ExchangeApiKeyRequest {
            api_key: "crmk_0_nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::Unauthenticated);
}

/// Tokens made by hand, as an attacker would: `alg: none`, a rep's token with its roles edited
/// to admin (signature kept), HS256 signed with the public key (algorithm confusion), the right
/// key with another issuer, a missing key id, and a header of another key id. Each is refused
/// at the gateway and straight at a service, and the genuine token still works.
#[tokio::test]
async fn crafted_tokens_are_refused_at_the_gateway_and_at_the_services() {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let p = platform().await;
    let genuine = p.login("rep.east").await.access_token;
    let parts: Vec<&str> = genuine.split('.').collect();
    let header: serde_json::Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["roles"] = serde_json::json!(["admin"]);
    let admin_claims = b64.encode(claims.to_string());
    let enc = |v: serde_json::Value| b64.encode(v.to_string());
    let none = format!(
        "{}.{admin_claims}.",
        enc(serde_json::json!({ "alg": "none", "typ": "JWT", "kid": header["kid"] }))
    );
    let edited = format!("{}.{admin_claims}.{}", parts[0], parts[2]);
    let hs_header = enc(serde_json::json!({ "alg": "HS256", "typ": "JWT", "kid": header["kid"] }));
    let public = crm_kit::auth::public_key(&p.running.settings.auth.signing_key).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(public.as_bytes()).unwrap();
    mac.update(format!("{hs_header}.{admin_claims}").as_bytes());
    let confused = format!(
        "{hs_header}.{admin_claims}.{}",
        b64.encode(mac.finalize().into_bytes())
    );
    let mut evil = p.running.settings.clone();
    evil.auth.issuer = "evil".into();
    let other_issuer = testing::token(
        &evil,
        &testing::TestCaller {
            subject: "x",
            roles: &["admin"],
            ..Default::default()
        },
        60,
    );
    let mut no_kid = header.clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    let no_kid = format!("{}.{}.{}", enc(no_kid), parts[1], parts[2]);
    let mut other_kid = header.clone();
    other_kid["kid"] = serde_json::json!("k-unknown");
    let other_kid = format!("{}.{}.{}", enc(other_kid), parts[1], parts[2]);

    let direct = p.running.channel("customers").await;
    for (what, token) in [
        ("alg none", &none),
        ("edited roles", &edited),
        ("HS256 with the public key", &confused),
        ("another issuer", &other_issuer),
        ("no key id", &no_kid),
        ("an unknown key id", &other_kid),
    ] {
        let at_gateway = p
            .customers(token)
            .list_customers(customers::ListCustomersRequest::default())
            .await
            .unwrap_err();
        assert_eq!(
            at_gateway.code(),
            Code::Unauthenticated,
            "{what} at the gateway"
        );
        let at_service =
            CustomerServiceClient::with_interceptor(direct.clone(), testing::Bearer::new(token))
                .list_customers(customers::ListCustomersRequest::default())
                .await
                .unwrap_err();
        assert_eq!(
            at_service.code(),
            Code::Unauthenticated,
            "{what} at the service"
        );
    }
    p.customers(&genuine)
        .list_customers(customers::ListCustomersRequest::default())
        .await
        .expect("the genuine token still works");
}

#[tokio::test]
async fn expired_forged_and_revoked_tokens_are_refused() {
    let p = platform().await;
    let who = |token: &str| {
        let mut client =
            AuthServiceClient::with_interceptor(p.gateway.clone(), testing::Bearer::new(token));
        async move { client.who_am_i(gw::WhoAmIRequest {}).await }
    };
    let expired = testing::token(
        &p.running.settings,
        &testing::TestCaller {
            subject: "x",
            roles: &["admin"],
            ..Default::default()
        },
        -1,
    );
    assert_eq!(
        who(&expired).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let other = testing::test_env().await.settings;
    let forged = testing::token(
        &other,
        &testing::TestCaller {
            subject: "x",
            roles: &["admin"],
            ..Default::default()
        },
        60,
    );
    assert_eq!(
        who(&forged).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        who("not-a-jwt").await.unwrap_err().code(),
        Code::Unauthenticated
    );

    let session = p.login("rep.east").await;
    who(&session.access_token).await.unwrap();
    let mut auth = AuthServiceClient::with_interceptor(
        p.gateway.clone(),
        testing::Bearer::new(&session.access_token),
    );
    // refresh rotates the refresh token: the old one stops working
    let refreshed = auth
        .refresh_token(gw::RefreshTokenRequest {
            refresh_token: session.refresh_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let reuse = auth
        .refresh_token(gw::RefreshTokenRequest {
            refresh_token: session.refresh_token.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(reuse.code(), Code::Unauthenticated);
    who(&refreshed.access_token).await.unwrap();

    auth.logout(gw::LogoutRequest {}).await.unwrap();
    // refused at once by the gateway, and by the service itself within its revocation poll
    assert_eq!(
        who(&session.access_token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        who(&refreshed.access_token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let direct = p.running.channel("customers").await;
    let token = refreshed.access_token.clone();
    testing::wait_until("the customers service to refuse the revoked session", Duration::from_secs(5), || {
        let mut client = CustomerServiceClient::with_interceptor(direct.clone(), testing::Bearer::new(&token));
        async move {
            matches!(client.list_customers(customers::ListCustomersRequest::default()).await, Err(s) if s.code() == Code::Unauthenticated)
        }
    })
    .await;
    let again = auth
        .refresh_token(gw::RefreshTokenRequest {
            refresh_token: refreshed.refresh_token,
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_direct_call_to_a_service_without_a_token_gains_nothing() {
    let p = platform().await;
    let mut direct = CustomerServiceClient::new(p.running.channel("customers").await);
    let status = direct
        .list_customers(customers::ListCustomersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut request = Request::new(customers::ListCustomersRequest::default());
    request
        .metadata_mut()
        .insert("x-crm-actor", "admin".parse().unwrap());
    assert_eq!(
        direct.list_customers(request).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn the_gateway_answers_health_and_reflection_for_the_whole_platform() {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let p = platform().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(p.gateway.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let mut reflection = ServerReflectionClient::new(p.gateway.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.clone()).collect();
    for expected in [
        "crm.gateway.v1.AuthService",
        "crm.gateway.v1.AdminService",
        "crm.customers.v1.CustomerService",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn nothing_secret_reaches_the_logs() {
    let p = platform().await;
    let session = p.login("admin").await;
    let _ = AuthServiceClient::new(p.gateway.clone())
        .login(gw::LoginRequest {
            username: "admin".into(),
            password: "a wrong secret password".into(),
        })
        .await;
    let mut admin_api = AdminServiceClient::with_interceptor(
        p.gateway.clone(),
        testing::Bearer::new(&session.access_token),
    );
    let key = admin_api
        .create_api_key(gw::CreateApiKeyRequest {
            request_id: rid(),
            api_key: Some(gw::ApiKey {
                name: "logs".into(),
                roles: vec!["partner".into()],
                partner_id: "p".into(),
                ..Default::default()
            }),
            ttl_days: 1,
        })
        .await
        .unwrap()
        .into_inner();
    let mut client = p.customers(&session.access_token);
    client
        .create_customer(customers::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(sample("日志测试", "华东")),
        })
        .await
        .unwrap();
    let logs = String::from_utf8_lossy(&captured().lock().unwrap()).to_string();
    std::fs::write("/tmp/captured.log", &logs).ok();
    assert!(
        logs.contains("login"),
        "the capture works: {}",
        &logs[..logs.len().min(2000)]
    );
    for secret in [
        PASSWORD,
        "a wrong secret password",
        session.access_token.as_str(),
        session.refresh_token.as_str(),
        key.secret.as_str(),
        "139 0000 1111",
        "lina@example.cn",
    ] {
        assert!(
            !logs.contains(secret),
            "a secret or personal datum reached the logs: {secret}"
        );
    }
}

#[tokio::test]
async fn the_rate_limit_trips_and_recovers() {
    let p = platform_with(|s| {
        s.rate_limit.per_second = 2;
        s.rate_limit.burst = 3;
    })
    .await;
    let rep = p.login("rep.east").await.access_token;
    let agent = p.login("agent").await.access_token;
    let mut who =
        AuthServiceClient::with_interceptor(p.gateway.clone(), testing::Bearer::new(&rep));
    for _ in 0..3 {
        who.who_am_i(gw::WhoAmIRequest {}).await.unwrap();
    }
    let status = who.who_am_i(gw::WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let retry = tonic_types::StatusExt::get_error_details(&status)
        .retry_info()
        .cloned()
        .expect("retry info");
    let delay = retry.retry_delay.expect("a delay");
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(1),
        "{delay:?}"
    );
    // another caller has a bucket of its own
    let mut other =
        AuthServiceClient::with_interceptor(p.gateway.clone(), testing::Bearer::new(&agent));
    other.who_am_i(gw::WhoAmIRequest {}).await.unwrap();
    // and the first one recovers as its bucket refills
    testing::wait_until(
        "the rate limit to let the caller through again",
        Duration::from_secs(5),
        || {
            let mut who = who.clone();
            async move { who.who_am_i(gw::WhoAmIRequest {}).await.is_ok() }
        },
    )
    .await;
}

#[tokio::test]
async fn an_oversized_message_is_refused_and_writes_nothing() {
    let p = platform_with(|s| s.server.max_message_bytes = 64 * 1024).await;
    let admin = p.login("admin").await.access_token;
    let mut client = p.customers(&admin);
    let mut big = sample("大消息公司", "华东");
    big.address = "路".repeat(100 * 1024);
    let status = client
        .create_customer(customers::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(big),
        })
        .await
        .unwrap_err();
    // the gRPC status-code specification: over the receiver's limit is RESOURCE_EXHAUSTED
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let listed = client
        .list_customers(customers::ListCustomersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.customers.is_empty());
}

#[tokio::test]
async fn the_audit_trail_records_changes_and_logins_but_not_reads() {
    let p = platform().await;
    let session = p.login("admin").await;
    let admin_id = session.caller.as_ref().unwrap().subject.clone();
    let mut client = p.customers(&session.access_token);
    let created = client
        .create_customer(customers::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(sample("审计测试公司", "华东")),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    client
        .update_customer(customers::UpdateCustomerRequest {
            customer: Some(customers::Customer {
                id: created.id.clone(),
                version: created.version,
                industry: "energy".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["industry".into()],
            }),
        })
        .await
        .unwrap();
    for _ in 0..3 {
        client
            .get_customer(customers::GetCustomerRequest {
                id: created.id.clone(),
            })
            .await
            .unwrap();
        client
            .list_customers(customers::ListCustomersRequest::default())
            .await
            .unwrap();
    }

    let mut admin_api = AdminServiceClient::with_interceptor(
        p.gateway.clone(),
        testing::Bearer::new(&session.access_token),
    );
    let list =
        |service: &str, filter: crm_proto::audit::v1::AuditFilter| gw::ListAuditEventsRequest {
            service: service.into(),
            filter: Some(filter),
            page: None,
        };
    let events = admin_api
        .list_audit_events(list("customers", Default::default()))
        .await
        .unwrap()
        .into_inner()
        .events;
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.method.as_str(), e.resource.as_str()))
        .collect();
    let resource = format!("customers/{}", created.id);
    assert_eq!(
        seen,
        [
            (
                "crm.customers.v1.CustomerService/UpdateCustomer",
                resource.as_str()
            ),
            (
                "crm.customers.v1.CustomerService/CreateCustomer",
                resource.as_str()
            ),
        ],
        "changes only, newest first"
    );
    let update = &events[0];
    assert_eq!(update.changed_fields, ["industry"]);
    assert_eq!(
        (
            update.actor.as_str(),
            update.actor_kind.as_str(),
            update.service.as_str()
        ),
        (admin_id.as_str(), "user", "customers")
    );
    assert_eq!(update.trace_id.len(), 32);
    assert!(!update.peer.is_empty());
    assert!(events[1].changed_fields.contains(&"contacts".to_string()));
    let text = format!("{events:?}");
    assert!(
        !text.contains("139 0000 1111") && !text.contains("lina@example.cn"),
        "no personal data values in the trail"
    );

    // the gateway's own trail: logins (refused ones too)
    let _ = AuthServiceClient::new(p.gateway.clone())
        .login(gw::LoginRequest {
            username: "admin".into(),
            password: "not the password".into(),
        })
        .await
        .unwrap_err();
    let logins = admin_api
        .list_audit_events(list(
            "",
            crm_proto::audit::v1::AuditFilter {
                method: "crm.gateway.v1.AuthService/Login".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    let outcomes: Vec<_> = logins.iter().map(|e| e.outcome.as_str()).collect();
    assert!(outcomes.starts_with(&["refused", "ok"]), "{outcomes:?}");
    let by_actor = admin_api
        .list_audit_events(list(
            "customers",
            crm_proto::audit::v1::AuditFilter {
                actor: "someone else".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(by_actor.is_empty());

    // only admins read it
    let rep = p.login("rep.east").await.access_token;
    let denied =
        AdminServiceClient::with_interceptor(p.gateway.clone(), testing::Bearer::new(&rep))
            .list_audit_events(list("customers", Default::default()))
            .await
            .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let unknown = admin_api
        .list_audit_events(list("nope", Default::default()))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_policy_change_reaches_every_server_and_is_audited() {
    let p = platform().await;
    let admin = p.login("admin").await.access_token;
    let mut admin_api =
        AdminServiceClient::with_interceptor(p.gateway.clone(), testing::Bearer::new(&admin));
    let policy = admin_api
        .get_policy(gw::GetPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    let finance = policy.roles.iter().find(|r| r.role == "finance").unwrap();
    assert!(
        finance
            .methods
            .contains(&"crm.customers.v1.CustomerService/ListCustomers".to_string())
    );
    assert!(finance.updated.is_none(), "the configured default");

    // finance loses ListCustomers: at the gateway at once, and at the customers server directly
    let finance_token = testing::token(
        &p.running.settings,
        &testing::TestCaller {
            subject: "fin",
            roles: &["finance"],
            ..Default::default()
        },
        60,
    );
    let mut via_gateway = p.customers(&finance_token);
    via_gateway
        .list_customers(customers::ListCustomersRequest::default())
        .await
        .unwrap();
    let changed = admin_api
        .set_role_policy(gw::SetRolePolicyRequest {
            request_id: rid(),
            role: "finance".into(),
            methods: vec!["crm.customers.v1.CustomerService/GetCustomer".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        changed.policy.unwrap().methods,
        ["crm.customers.v1.CustomerService/GetCustomer"]
    );
    let status = via_gateway
        .list_customers(customers::ListCustomersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let direct = p.running.channel("customers").await;
    testing::wait_until("the customers server to apply the new policy", Duration::from_secs(5), || {
        let mut client = CustomerServiceClient::with_interceptor(direct.clone(), testing::Bearer::new(&finance_token));
        async move {
            matches!(client.list_customers(customers::ListCustomersRequest::default()).await, Err(s) if s.code() == Code::PermissionDenied)
        }
    })
    .await;

    let bad = admin_api
        .set_role_policy(gw::SetRolePolicyRequest {
            request_id: rid(),
            role: "wizard".into(),
            methods: vec!["not a pattern".into()],
        })
        .await
        .unwrap_err();
    let fields: Vec<_> = tonic_types::StatusExt::get_error_details(&bad)
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(fields, ["role", "methods[0]"]);
    let admin_fixed = admin_api
        .set_role_policy(gw::SetRolePolicyRequest {
            request_id: rid(),
            role: "admin".into(),
            methods: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(admin_fixed.code(), Code::FailedPrecondition);

    let events = admin_api
        .list_audit_events(gw::ListAuditEventsRequest {
            service: String::new(),
            filter: Some(crm_proto::audit::v1::AuditFilter {
                resource: "policies/finance".into(),
                ..Default::default()
            }),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].changed_fields, ["methods"]);
}

/// A stand-in downstream service the gateway has never heard of (a new RPC needs only its
/// `[services.probe] url`), `crm.probe.v1.ProbeService/Echo`, that answers with the
/// deadline (`grpc-timeout`) it was given, as the caller name of a WhoAmIResponse.
#[derive(Clone)]
struct Probe;

impl tonic::server::NamedService for Probe {
    const NAME: &'static str = "crm.probe.v1.ProbeService";
}

struct Echo(String);

impl tonic::server::UnaryService<gw::WhoAmIRequest> for Echo {
    type Response = gw::WhoAmIResponse;
    type Future = std::future::Ready<Result<tonic::Response<gw::WhoAmIResponse>, tonic::Status>>;

    fn call(&mut self, _request: tonic::Request<gw::WhoAmIRequest>) -> Self::Future {
        let caller = gw::Caller {
            name: self.0.clone(),
            ..Default::default()
        };
        std::future::ready(Ok(tonic::Response::new(gw::WhoAmIResponse {
            caller: Some(caller),
        })))
    }
}

/// `ProbeService/Stream`: three messages of 256 KiB each, one after another.
struct Count;

type ProbeStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<gw::WhoAmIResponse, tonic::Status>> + Send>,
>;

impl tonic::server::ServerStreamingService<gw::WhoAmIRequest> for Count {
    type Response = gw::WhoAmIResponse;
    type ResponseStream = ProbeStream;
    type Future = std::future::Ready<Result<tonic::Response<ProbeStream>, tonic::Status>>;

    fn call(&mut self, _request: tonic::Request<gw::WhoAmIRequest>) -> Self::Future {
        let items = (0..3).map(|i| {
            Ok(gw::WhoAmIResponse {
                caller: Some(gw::Caller {
                    name: format!("{i}{}", "x".repeat(256 * 1024)),
                    ..Default::default()
                }),
            })
        });
        let stream: ProbeStream = Box::pin(tokio_stream::iter(items.collect::<Vec<_>>()));
        std::future::ready(Ok(tonic::Response::new(stream)))
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Probe {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_string();
        let streaming = request.uri().path().ends_with("/Stream");
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(if streaming {
                grpc.server_streaming(Count, request).await
            } else {
                grpc.unary(Echo(timeout), request).await
            })
        })
    }
}

#[tokio::test]
async fn deadlines_streams_and_large_messages_pass_through_the_gateway() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let probe = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(Probe)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let p = platform_with(|s| {
        s.services.insert(
            "probe".into(),
            crm_kit::config::ServiceEndpoint {
                listen: String::new(),
                url: format!("http://{probe}"),
            },
        );
    })
    .await;
    let admin = p.login("admin").await.access_token;
    let mut grpc = tonic::client::Grpc::new(p.gateway.clone());
    grpc.ready().await.unwrap();
    let mut request = Request::new(gw::WhoAmIRequest {});
    request.set_timeout(Duration::from_millis(1500));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {admin}").parse().unwrap());
    let path = http::uri::PathAndQuery::from_static("/crm.probe.v1.ProbeService/Echo");
    let response: tonic::Response<gw::WhoAmIResponse> = grpc
        .unary(request, path, tonic_prost::ProstCodec::default())
        .await
        .expect("forwarded");
    let seen = response.into_inner().caller.unwrap().name;
    // the downstream got the caller's deadline (less what the hop took)
    let millis: u64 = seen
        .strip_suffix('m')
        .and_then(|v| v.parse().ok())
        .or_else(|| {
            seen.strip_suffix('u')
                .and_then(|v| v.parse::<u64>().ok())
                .map(|u| u / 1000)
        })
        .unwrap_or_else(|| panic!("no deadline forwarded: {seen}"));
    assert!((1..=1500).contains(&millis), "{seen}");

    // a server stream passes through message by message
    grpc.ready().await.unwrap();
    let mut request = Request::new(gw::WhoAmIRequest {});
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {admin}").parse().unwrap());
    let path = http::uri::PathAndQuery::from_static("/crm.probe.v1.ProbeService/Stream");
    let mut stream = grpc
        .server_streaming::<_, gw::WhoAmIResponse, _>(
            request,
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect("stream forwarded")
        .into_inner();
    let mut got = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        let name = item.caller.unwrap().name;
        assert_eq!(name.len(), 1 + 256 * 1024);
        got.push(name[..1].to_string());
    }
    assert_eq!(got, ["0", "1", "2"]);

    // a large message (1 MiB, under the 4 MiB limit) passes through whole
    let mut big = sample("大地址公司", "华东");
    big.address = "路".repeat(350_000);
    let created = p
        .customers(&admin)
        .create_customer(customers::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(big.clone()),
        })
        .await
        .unwrap_err();
    // the whole megabyte reached the service, which decoded it to name the field that is too long
    assert_eq!(created.code(), Code::InvalidArgument, "{created:?}");
    assert!(created.message().contains("customer.address"));
}

/// Sends request bodies as given, undecoded: what a broken or hostile client sends.
#[derive(Clone, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        prost::bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = prost::bytes::Buf::remaining(src);
        Ok(Some(prost::bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

/// Calls `method` on `channel` with `body` as the request message, as `token`; its refusal.
async fn raw_call(
    channel: Channel,
    method: &'static str,
    body: &[u8],
    token: &str,
) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = Request::new(body.to_vec());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    grpc.unary::<_, Vec<u8>, _>(
        request,
        http::uri::PathAndQuery::from_static(method),
        RawCodec,
    )
    .await
    .unwrap_err()
}

#[tokio::test]
async fn undecodable_requests_are_the_clients_error_and_other_media_types_are_refused() {
    use tower::Service as _;
    let p = platform().await;
    let admin = p.login("admin").await.access_token;
    let bodies: [(&str, Vec<u8>); 5] = [
        (
            "random bytes",
            vec![0xff, 0xfe, 0x07, 0x99, 0x12, 0x00, 0xab],
        ),
        // field 1 (string) with a length beyond the buffer
        ("a length beyond the buffer", vec![0x0a, 0x40, b'a', b'b']),
        // field 1 (string) of invalid UTF-8
        ("invalid UTF-8", vec![0x0a, 0x02, 0xc3, 0x28]),
        // a truncated varint
        ("a truncated field", vec![0x08, 0xff, 0xff]),
        // 200 nested unknown groups (field 99, start group)
        ("nested unknown groups", [0x9b_u8, 0x06].repeat(200)),
    ];
    let methods = [
        "/crm.customers.v1.CustomerService/CreateCustomer",
        "/crm.tickets.v1.TicketService/GetTicket",
        "/crm.notifications.v1.NotificationService/ListInbox",
        "/crm.gateway.v1.AuthService/Login",
        "/crm.gateway.v1.AdminService/ListUsers",
        "/grpc.health.v1.Health/Check",
    ];
    for method in methods {
        for (what, body) in &bodies {
            let status = raw_call(p.gateway.clone(), method, body, &admin).await;
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{method} with {what}: {status:?}"
            );
            assert!(status.message().contains("cannot be decoded"), "{status:?}");
        }
    }
    // the same straight to a service, bypassing the gateway
    let status = raw_call(
        p.running.channel("tickets").await,
        "/crm.tickets.v1.TicketService/GetTicket",
        &bodies[0].1,
        &admin,
    )
    .await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // plain text at the gateway, and JSON or plain text straight to a service (the services
    // answer gRPC only; JSON over HTTP is the gateway's, tested in http.rs): HTTP 415
    for (server, content_type) in [
        ("gateway", "text/plain"),
        ("tickets", "application/json"),
        ("tickets", "text/plain"),
    ] {
        let request = http::Request::builder()
            .method("POST")
            .uri(format!(
                "http://{}/crm.tickets.v1.TicketService/GetTicket",
                p.running.addrs[server]
            ))
            .header("content-type", content_type)
            .body(tonic::body::Body::empty())
            .unwrap();
        let mut channel = p.running.channel(server).await;
        let response = tower::ServiceExt::ready(&mut channel)
            .await
            .unwrap()
            .call(request)
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type} at {server}"
        );
    }
}
