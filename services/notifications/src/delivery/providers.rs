//! The providers that send (N-1), one per channel, chosen in `[notifications.providers]`:
//! the development sink (records what it would have sent), SMTP (lettre), partner webhooks
//! (HTTPS POST signed with HMAC-SHA256) and an HTTP SMS gateway. Each receives the delivery id
//! as an idempotency key, so a message sent twice after a crash can be recognised downstream.

use std::{sync::Arc, time::Duration};

use hmac::{Hmac, KeyInit, Mac};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::authentication::Credentials,
};
use sha2::Sha256;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    rules::Channel,
    settings::{NotificationSettings, SmtpSettings},
};

/// One message to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The delivery id: the idempotency key.
    pub delivery_id: Uuid,
    /// The notification.
    pub notification_id: Uuid,
    /// The channel.
    pub channel: Channel,
    /// Phone, e-mail or URL.
    pub address: String,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Urgent.
    pub urgent: bool,
    /// The webhook secret, for webhooks.
    pub secret: Option<String>,
}

/// Why a send failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Worth trying again (timeouts, 5xx, connection refused).
    #[error("{0}")]
    Transient(String),
    /// Trying again will not help (a refused address, a 4xx).
    #[error("{0}")]
    Permanent(String),
}

/// Sends messages of one channel.
#[tonic::async_trait]
pub trait Provider: Send + Sync + 'static {
    /// Sends one message.
    async fn send(&self, message: &Outgoing) -> Result<(), SendError>;
}

/// The provider of each channel.
#[derive(Clone)]
pub struct Providers {
    sms: Arc<dyn Provider>,
    email: Arc<dyn Provider>,
    webhook: Arc<dyn Provider>,
}

impl Providers {
    /// The providers `settings` name.
    pub fn from_settings(pool: &PgPool, settings: &NotificationSettings) -> anyhow::Result<Self> {
        let sink: Arc<dyn Provider> = Arc::new(Sink { pool: pool.clone() });
        let sms: Arc<dyn Provider> = match settings.providers.sms.as_str() {
            "sink" => sink.clone(),
            "http" => Arc::new(HttpSms::new(
                &settings.sms_http.url,
                &settings.sms_http.token,
                Duration::from_millis(settings.sms_http.timeout_ms),
            )?),
            other => {
                anyhow::bail!("notifications.providers.sms: no provider {other:?} (sink, http)")
            }
        };
        let email: Arc<dyn Provider> = match settings.providers.email.as_str() {
            "sink" => sink.clone(),
            "smtp" => Arc::new(Smtp::new(&settings.smtp)?),
            other => {
                anyhow::bail!("notifications.providers.email: no provider {other:?} (sink, smtp)")
            }
        };
        let webhook: Arc<dyn Provider> = match settings.providers.webhook.as_str() {
            "sink" => sink,
            "http" => Arc::new(Webhook::new(Duration::from_millis(
                settings.webhook.timeout_ms,
            ))?),
            other => {
                anyhow::bail!("notifications.providers.webhook: no provider {other:?} (http, sink)")
            }
        };
        Ok(Self {
            sms,
            email,
            webhook,
        })
    }

    /// The provider of `channel` (the inbox needs none: it is written when the message is
    /// made).
    pub fn of(&self, channel: Channel) -> Option<&dyn Provider> {
        match channel {
            Channel::Sms => Some(self.sms.as_ref()),
            Channel::Email => Some(self.email.as_ref()),
            Channel::Webhook => Some(self.webhook.as_ref()),
            Channel::Inbox => None,
        }
    }
}

/// The development sink: records each message in `sink_messages` (once per delivery).
pub struct Sink {
    pool: PgPool,
}

#[tonic::async_trait]
impl Provider for Sink {
    async fn send(&self, m: &Outgoing) -> Result<(), SendError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| SendError::Transient(format!("sink database: {e}")))?;
        super::record_sink_message(
            &mut conn,
            m.delivery_id,
            m.channel,
            &m.address,
            &m.subject,
            &m.body,
            OffsetDateTime::now_utc(),
        )
        .await
        .map_err(|e| SendError::Transient(format!("sink database: {e}")))
    }
}

/// E-mail over SMTP.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Smtp {
    /// A transport for `settings`.
    pub fn new(settings: &SmtpSettings) -> anyhow::Result<Self> {
        let builder = match settings.security.as_str() {
            "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host),
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)?,
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)?,
            other => {
                anyhow::bail!("notifications.smtp.security: {other:?} is not none, starttls or tls")
            }
        };
        let mut builder = builder
            .port(settings.port)
            .timeout(Some(Duration::from_millis(settings.timeout_ms)));
        if !settings.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                settings.username.clone(),
                settings.password.clone(),
            ));
        }
        let from = settings
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("notifications.smtp.from: {e}"))?;
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

#[tonic::async_trait]
impl Provider for Smtp {
    async fn send(&self, m: &Outgoing) -> Result<(), SendError> {
        let to: Mailbox = m
            .address
            .parse()
            .map_err(|e| SendError::Permanent(format!("bad address: {e}")))?;
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&m.subject)
            .message_id(Some(format!("<{}@crm.notifications>", m.delivery_id)))
            .header(ContentType::TEXT_PLAIN)
            .body(m.body.clone())
            .map_err(|e| SendError::Permanent(format!("message: {e}")))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("smtp: {e}"))),
            Err(e) => Err(SendError::Transient(format!("smtp: {e}"))),
        }
    }
}

fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a TLS provider of its own: use ring, already in the tree
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .user_agent("crm-notifications")
        .build()?)
}

async fn post(request: reqwest::RequestBuilder) -> Result<(), SendError> {
    let response = request
        .send()
        .await
        .map_err(|e| SendError::Transient(format!("http: {e}")))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let message = format!("http status {}", status.as_u16());
    if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
        Err(SendError::Permanent(message))
    } else {
        Err(SendError::Transient(message))
    }
}

/// The signature header of a webhook body: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
/// "<t>.<body>" with the partner's secret>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Partner webhooks: a JSON POST signed with the partner's secret.
pub struct Webhook {
    client: reqwest::Client,
}

impl Webhook {
    /// A webhook sender with `timeout` per call.
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            client: http_client(timeout)?,
        })
    }
}

#[tonic::async_trait]
impl Provider for Webhook {
    async fn send(&self, m: &Outgoing) -> Result<(), SendError> {
        let secret = m
            .secret
            .as_deref()
            .ok_or_else(|| SendError::Permanent("the partner has no webhook secret".into()))?;
        let body = serde_json::to_vec(&serde_json::json!({
            "delivery_id": m.delivery_id.to_string(),
            "notification_id": m.notification_id.to_string(),
            "subject": m.subject,
            "body": m.body,
            "urgent": m.urgent,
        }))
        .map_err(|e| SendError::Permanent(format!("encode: {e}")))?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        post(
            self.client
                .post(&m.address)
                .header("content-type", "application/json")
                .header("x-crm-delivery", m.delivery_id.to_string())
                .header("x-crm-signature", signature(secret, now, &body))
                .body(body),
        )
        .await
    }
}

/// A generic HTTP SMS gateway: POST `{"id", "to", "text"}` with a bearer token.
pub struct HttpSms {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl HttpSms {
    /// A sender to `url`.
    pub fn new(url: &str, token: &str, timeout: Duration) -> anyhow::Result<Self> {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            anyhow::bail!("notifications.sms_http.url: {url:?} is not an http(s) URL");
        }
        Ok(Self {
            client: http_client(timeout)?,
            url: url.to_string(),
            token: token.to_string(),
        })
    }
}

#[tonic::async_trait]
impl Provider for HttpSms {
    async fn send(&self, m: &Outgoing) -> Result<(), SendError> {
        let body = serde_json::to_vec(&serde_json::json!({
            "id": m.delivery_id.to_string(),
            "to": m.address,
            "text": format!("{} {}", m.subject, m.body),
        }))
        .map_err(|e| SendError::Permanent(format!("encode: {e}")))?;
        post(
            self.client
                .post(&self.url)
                .bearer_auth(&self.token)
                .header("content-type", "application/json")
                .body(body),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_and_body() {
        // python3: hmac.new(b'secret', b'1700000000.{}', hashlib.sha256).hexdigest()
        let s = signature("secret", 1_700_000_000, b"{}");
        assert_eq!(
            s,
            "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
        assert_ne!(s, signature("other", 1_700_000_000, b"{}"));
    }
}
