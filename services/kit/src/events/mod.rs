//! Events that are never lost, written once for every service.
//!
//! - [`publish`] writes the event to the service's `outbox` in the transaction of the change.
//! - [`spawn_relay`] moves outbox rows, in commit order, to a Redis Stream per topic. One relay
//!   per schema is active at a time (a Postgres advisory lock), so events of an aggregate keep
//!   their order; other replicas stand by. A crash between the stream append and marking the row
//!   published republishes it; consumers de-duplicate. If Redis loses its data, the relay sees
//!   its epoch marker gone and publishes again everything committed within
//!   `events.replay_window_s`.
//! - [`spawn_consumer`] reads a topic with a consumer group. Each event is handled in one
//!   Postgres transaction that also records its id in `processed_events`, so an event is acted
//!   on once however often it is delivered; it is acknowledged after the commit. Deliveries left
//!   pending by a consumer that died are claimed by a live one (XAUTOCLAIM).

use std::{sync::Arc, time::Duration};

use crm_proto::events::v1 as pb;
use opentelemetry::propagation::TextMapPropagator;
use prost::{Message, Name};
use redis::{aio::ConnectionManager, streams::StreamId};
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

use crate::{Error, config::RedisSettings, context::Call, convert};

/// The `[events]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    /// Outbox rows a relay moves per round trip.
    pub relay_batch: i64,
    /// How long an idle relay waits before looking again.
    pub relay_poll_ms: u64,
    /// Events a consumer reads at once.
    pub consumer_batch: usize,
    /// How long a consumer blocks waiting for new events.
    pub consumer_block_ms: u64,
    /// How long a delivery may stay pending before another consumer claims it.
    pub claim_idle_ms: u64,
    /// After Redis lost its data, how far back the relay publishes again.
    pub replay_window_s: i64,
}

/// The stream of a topic.
pub fn stream_key(prefix: &str, topic: &str) -> String {
    format!("{prefix}{{{topic}}}:events")
}

fn epoch_key(prefix: &str, schema: &str) -> String {
    format!("{prefix}{{{schema}}}:events:epoch")
}

/// An event's data: a protobuf message and its type URL
/// (`type.googleapis.com/crm.customers.v1.Customer`), named by its generated type.
pub struct Payload {
    /// The message's type URL.
    pub type_url: String,
    /// The encoded message.
    pub bytes: Vec<u8>,
}

impl Payload {
    /// The payload of `message`.
    pub fn of<M: Name>(message: &M) -> Self {
        Self {
            type_url: M::type_url(),
            bytes: message.encode_to_vec(),
        }
    }
}

/// The payload of a consumed event if it is an `M` (by its type URL); `None` for an event
/// carrying another message or none. A payload of the type that does not decode is an error:
/// the consumer will see it again, and the failure is logged.
pub fn payload_as<M: Name + Default>(event: &pb::Event) -> Result<Option<M>, Error> {
    let Some(payload) = event
        .payload
        .as_ref()
        .filter(|p| p.type_url == M::type_url())
    else {
        return Ok(None);
    };
    M::decode(payload.value.as_slice())
        .map(Some)
        .map_err(|e| Error::Internal(anyhow::anyhow!("event {} payload: {e}", event.id)))
}

/// The payload of a consumed event, which must be an `M`: an event of that type carrying
/// another message (or none) is an error, as is one that does not decode.
pub fn decode<M: Name + Default>(event: &pb::Event) -> Result<M, Error> {
    payload_as(event)?.ok_or_else(|| {
        Error::Internal(anyhow::anyhow!(
            "event {} ({}) carries no {}",
            event.id,
            event.r#type,
            M::full_name()
        ))
    })
}

/// An event to publish.
pub struct NewEvent<'a> {
    /// The topic (stream): the publishing service's name.
    pub topic: &'a str,
    /// What happened, e.g. `customers.stage_changed`.
    pub event_type: &'a str,
    /// The resource it happened to.
    pub aggregate: &'a str,
    /// Its data.
    pub payload: Payload,
    /// Whether it must reach people fast.
    pub urgent: bool,
}

/// Adds an event to the outbox, in the transaction of the change it describes.
pub async fn publish(
    tx: &mut PgConnection,
    call: &Call,
    now: OffsetDateTime,
    event: NewEvent<'_>,
) -> Result<Uuid, Error> {
    let NewEvent {
        topic,
        event_type,
        aggregate,
        payload,
        urgent,
    } = event;
    let id = Uuid::now_v7();
    let mut traceparent = std::collections::HashMap::new();
    opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .inject_context(&tracing::Span::current().context(), &mut traceparent);
    let envelope = pb::Event {
        id: id.to_string(),
        r#type: event_type.to_string(),
        aggregate: aggregate.to_string(),
        time: Some(convert::timestamp(now)),
        actor: call.principal.subject.clone(),
        traceparent: traceparent.remove("traceparent").unwrap_or_default(),
        payload: Some(prost_types::Any {
            type_url: payload.type_url,
            value: payload.bytes,
        }),
        urgent,
    };
    sqlx::query("INSERT INTO outbox (id, topic, aggregate, envelope, create_time) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(topic)
        .bind(aggregate)
        .bind(envelope.encode_to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(id)
}

mod consumer;
mod relay;

pub use consumer::{Consumer, Handler, spawn_consumer};
pub use relay::spawn_relay;
