//! What the notifications tests share: the service on a database of its own with fast retry
//! timing, the event sources it consumes (a customers, a gateway and a repairs schema with their
//! relays),
//! clients for any caller, and small HTTP and SMTP servers standing in for partners, the SMS
//! gateway and the mail server.

#![allow(dead_code)]

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use crm_kit::{
    CancellationToken, Clock, Settings,
    auth::Security,
    events::{NewEvent, Payload},
    testing::{self, Bearer, TestCaller},
};
use crm_notifications::NotificationSettings;
use crm_proto::{
    customers::v1 as customers,
    gateway::v1 as gateway,
    notifications::v1::{self as pb, notification_service_client::NotificationServiceClient},
};
use sqlx::PgPool;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

/// A client with a caller's token.
pub type Client = NotificationServiceClient<InterceptedService<Channel, Bearer>>;

/// The running service and its event sources.
pub struct App {
    /// As an administrator.
    pub admin: Client,
    /// The channel, for other clients.
    pub channel: Channel,
    /// The settings.
    pub settings: Settings,
    /// The notifications schema.
    pub pool: PgPool,
    /// The customers schema whose outbox the test publishes to.
    pub customers: PgPool,
    /// The gateway schema whose outbox the test publishes to.
    pub gateway: PgPool,
    /// The repairs schema whose outbox the test publishes to.
    pub repairs: PgPool,
    _stop: testing::StopOnDrop,
}

/// Settings for tests: the sink for every channel, retries in milliseconds.
pub fn fast(settings: &Settings) -> NotificationSettings {
    let mut n = NotificationSettings::from_settings(settings).expect("notification settings");
    n.retry_base_ms = 50;
    n.retry_max_ms = 200;
    n.max_attempts = 3;
    n.send_poll_ms = 20;
    n.lease_ms = 1000;
    n.providers.webhook = "http".into();
    n
}

/// Starts the service with `tweak` applied to the fast settings.
pub async fn spawn_app(tweak: impl FnOnce(&mut NotificationSettings)) -> App {
    let mut env = testing::test_env().await;
    // an event that failed (waiting for the directory) comes back quickly
    env.settings.events.claim_idle_ms = 300;
    env.settings.events.consumer_block_ms = 200;
    crm_notifications::migrate(&env.settings)
        .await
        .expect("migrate");
    let stop = CancellationToken::new();
    let customers_pool = testing::upstream(&env.settings, "customers", &stop).await;
    let gateway_pool = testing::upstream(&env.settings, "gateway", &stop).await;
    let repairs_pool = testing::upstream(&env.settings, "repairs", &stop).await;
    let mut own = fast(&env.settings);
    tweak(&mut own);
    let security =
        Security::start(&env.settings.auth, &env.settings.redis, stop.clone()).expect("security");
    let app =
        crm_notifications::Application::build_with(&env.settings, own, Clock::system(), security)
            .await
            .expect("build");
    let pool = app.notifications().pool().clone();
    let channel = testing::serve(app, &stop).await;
    let admin = client(
        &channel,
        &env.settings,
        &TestCaller {
            subject: "admin.test",
            roles: &["admin"],
            ..Default::default()
        },
    );
    App {
        admin,
        channel,
        settings: env.settings,
        pool,
        customers: customers_pool,
        gateway: gateway_pool,
        repairs: repairs_pool,
        _stop: testing::StopOnDrop(stop),
    }
}

/// A client calling as `caller`.
pub fn client(channel: &Channel, settings: &Settings, caller: &TestCaller<'_>) -> Client {
    let token = testing::token(settings, caller, 600);
    NotificationServiceClient::with_interceptor(channel.clone(), Bearer::new(&token))
}

impl App {
    /// A client calling as `caller`.
    pub fn client(&self, caller: &TestCaller<'_>) -> Client {
        client(&self.channel, &self.settings, caller)
    }

    /// Publishes an event from `pool`'s outbox (its relay moves it to the stream).
    pub async fn publish(
        &self,
        pool: &PgPool,
        topic: &str,
        event_type: &str,
        aggregate: &str,
        payload: Payload,
        urgent: bool,
    ) -> String {
        testing::events::announce(
            pool,
            NewEvent {
                topic,
                event_type,
                aggregate,
                payload,
                urgent,
            },
        )
        .await
    }

    /// Announces a user as the gateway does.
    pub async fn announce_user(&self, user: gateway::User) {
        let aggregate = format!("users/{}", user.id);
        self.publish(
            &self.gateway,
            "gateway",
            "gateway.user_changed",
            &aggregate,
            Payload::of(&user),
            false,
        )
        .await;
        let id = user.id.clone();
        let pool = self.pool.clone();
        testing::wait_until(
            "the user reaches the directory",
            Duration::from_secs(10),
            || {
                let pool = pool.clone();
                let id = id.clone();
                async move {
                    sqlx::query_scalar::<_, bool>(
                        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)",
                    )
                    .bind(id)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                }
            },
        )
        .await;
    }

    /// Publishes a customers event about `customer`.
    pub async fn customer_event(
        &self,
        event_type: &str,
        event: customers::CustomerEvent,
        urgent: bool,
    ) -> String {
        let aggregate = format!(
            "customers/{}",
            event
                .customer
                .as_ref()
                .map(|c| c.id.clone())
                .unwrap_or_default()
        );
        self.publish(
            &self.customers,
            "customers",
            event_type,
            &aggregate,
            Payload::of(&event),
            urgent,
        )
        .await
    }

    /// Saves a template as the administrator.
    pub async fn template(
        &self,
        name: &str,
        language: &str,
        kind: &str,
        subject: &str,
        body: &str,
    ) {
        self.save(name, language, kind, subject, body, &[]).await;
    }

    /// Saves a template of kind `manual` declaring `variables`.
    pub async fn manual(
        &self,
        name: &str,
        language: &str,
        subject: &str,
        body: &str,
        variables: &[&str],
    ) {
        self.save(name, language, "manual", subject, body, variables)
            .await;
    }

    async fn save(
        &self,
        name: &str,
        language: &str,
        kind: &str,
        subject: &str,
        body: &str,
        variables: &[&str],
    ) {
        self.admin
            .clone()
            .save_template(pb::SaveTemplateRequest {
                template: Some(pb::Template {
                    name: name.into(),
                    language: language.into(),
                    kind: kind.into(),
                    subject: subject.into(),
                    body: body.into(),
                    variables: variables.iter().map(|v| v.to_string()).collect(),
                    ..Default::default()
                }),
                version: 0,
            })
            .await
            .expect("save template");
    }

    /// What the development sink recorded on `channel`, newest first.
    pub async fn sent(&self, channel: pb::Channel) -> Vec<pb::SentMessage> {
        self.admin
            .clone()
            .list_sent_messages(pb::ListSentMessagesRequest {
                channel: channel as i32,
                page: None,
            })
            .await
            .expect("list sent messages")
            .into_inner()
            .messages
    }

    /// The notifications of a kind, waiting until there are `n` whose deliveries are all
    /// settled (no longer pending or sending).
    pub async fn settled(&self, kind: &str, n: usize) -> Vec<pb::Notification> {
        let mut client = self.admin.clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let found = client
                .list_notifications(pb::ListNotificationsRequest {
                    filter: Some(pb::NotificationFilter {
                        kind: kind.into(),
                        ..Default::default()
                    }),
                    page: None,
                })
                .await
                .expect("list")
                .into_inner()
                .notifications;
            let settled = found.iter().all(|x| {
                x.deliveries.iter().all(|d| {
                    d.state != pb::DeliveryState::Pending as i32
                        && d.state != pb::DeliveryState::Sending as i32
                })
            });
            if found.len() >= n && settled {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {n} settled {kind} notifications; have {found:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A user as the gateway announces them.
pub fn user(
    id: &str,
    roles: &[&str],
    region: &str,
    email: &str,
    phone: &str,
    language: &str,
) -> gateway::User {
    gateway::User {
        id: id.into(),
        username: id.into(),
        display_name: format!("Name of {id}"),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        region: region.into(),
        email: email.into(),
        phone: phone.into(),
        language: language.into(),
        ..Default::default()
    }
}

/// A customer as customers events carry it.
pub fn customer(id: &str, region: &str, owner: &str, partner: &str) -> customers::Customer {
    customers::Customer {
        id: id.into(),
        display_name: "上海精工电子有限公司".into(),
        region: region.into(),
        owner_id: owner.into(),
        tech_partner_id: partner.into(),
        tier: customers::Tier::Vip as i32,
        stage: customers::Stage::Signed as i32,
        contacts: vec![customers::Contact {
            name: "王晓明".into(),
            phone: "+86 138 0013 8000".into(),
            email: "wang@example.com".into(),
            role: "IT".into(),
        }],
        ..Default::default()
    }
}

/// One HTTP request a test server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its headers.
    pub headers: http::HeaderMap,
    /// Its body.
    pub body: Vec<u8>,
}

/// An HTTP server answering `fail_first` requests with 500, then 200, recording each request.
pub struct HttpSink {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it received.
    pub received: Arc<Mutex<Vec<Received>>>,
}

/// Starts an [`HttpSink`].
pub async fn http_sink(fail_first: usize) -> HttpSink {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = received.clone();
    let router =
        axum::Router::new().fallback(move |headers: http::HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let mut all = seen.lock().unwrap();
                all.push(Received {
                    headers,
                    body: body.to_vec(),
                });
                if all.len() <= fail_first {
                    http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    http::StatusCode::OK
                }
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    HttpSink { addr, received }
}

/// One mail the SMTP server received.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The raw message.
    pub data: Vec<u8>,
}

#[derive(Clone, Default)]
struct MailHandler {
    current: Mail,
    inbox: Arc<Mutex<Vec<Mail>>>,
}

impl mailin_embedded::Handler for MailHandler {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        to: &[String],
    ) -> mailin_embedded::Response {
        self.current = Mail {
            to: to.to_vec(),
            data: Vec::new(),
        };
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        self.inbox
            .lock()
            .unwrap()
            .push(std::mem::take(&mut self.current));
        mailin_embedded::response::OK
    }
}

/// Starts an SMTP server (plain, no authentication) on a free port; returns the port and the
/// mails it receives. It runs on its own threads until the test process ends.
pub fn smtp_server() -> (u16, Arc<Mutex<Vec<Mail>>>) {
    let inbox: Arc<Mutex<Vec<Mail>>> = Arc::default();
    let handler = MailHandler {
        current: Mail::default(),
        inbox: inbox.clone(),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut server = mailin_embedded::Server::new(handler);
    server
        .with_name("smtp.test")
        .with_ssl(mailin_embedded::SslConfig::None)
        .unwrap()
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    (port, inbox)
}
