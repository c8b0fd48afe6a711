//! The platform's metrics, defined once: RPC rate, errors and latency per method, timer
//! lateness, outbox lag, event-consumer lag and notification delivery outcomes. Exported over
//! OTLP with the traces when `telemetry.otlp_endpoint` is set (the collector can expose them to
//! Prometheus: `deploy/otel-collector.yaml`); no-ops otherwise.
//!
//! Attributes are names and codes only (method, server, kind, topic, group, channel,
//! outcome), never ids or personal data, so their cardinality stays small.

use std::{sync::LazyLock, time::Duration};

use opentelemetry::{
    KeyValue, global,
    metrics::{Counter, Histogram},
};

struct Instruments {
    rpc_duration: Histogram<f64>,
    timer_lateness: Histogram<f64>,
    outbox_lag: Histogram<f64>,
    consumer_lag: Histogram<f64>,
    deliveries: Counter<u64>,
    logins_refused: Counter<u64>,
}

/// Made on first use, from the meter provider `telemetry::init` installed before.
static INSTRUMENTS: LazyLock<Instruments> = LazyLock::new(|| {
    let meter = global::meter("crm");
    let ms = |name: &'static str, description: &'static str| {
        meter
            .f64_histogram(name)
            .with_unit("ms")
            .with_description(description)
            .build()
    };
    Instruments {
        rpc_duration: ms(
            "rpc.server.duration",
            "gRPC calls served: duration by server, method and status code (rate and errors from its count)",
        ),
        timer_lateness: ms(
            "crm.timers.lateness",
            "how late each timer fired after its due time, by kind",
        ),
        outbox_lag: ms(
            "crm.events.outbox_lag",
            "from an event's commit to its relay into the stream, by topic",
        ),
        consumer_lag: ms(
            "crm.events.consumer_lag",
            "from an event's commit to its handling by a consumer group, by group and type",
        ),
        deliveries: meter
            .u64_counter("crm.notifications.deliveries")
            .with_description(
                "notification delivery attempts by channel and outcome (sent, retry, failed)",
            )
            .build(),
        logins_refused: meter
            .u64_counter("crm.gateway.logins_refused")
            .with_description(
                "log-ins refused before the password was checked, by why (busy, rate, locked)",
            )
            .build(),
    }
});

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One gRPC call served.
pub fn rpc(server: &str, method: &str, code: &str, took: Duration) {
    INSTRUMENTS.rpc_duration.record(
        millis(took),
        &[
            KeyValue::new("crm.server", server.to_string()),
            KeyValue::new("rpc.method", method.to_string()),
            KeyValue::new("rpc.grpc.status_code", code.to_string()),
        ],
    );
}

/// A timer fired `late` after its due time.
pub fn timer_fired(kind: &str, late: Duration) {
    INSTRUMENTS
        .timer_lateness
        .record(millis(late), &[KeyValue::new("kind", kind.to_string())]);
}

/// An event of `topic` relayed `lag` after its commit.
pub fn event_relayed(topic: &str, lag: Duration) {
    INSTRUMENTS
        .outbox_lag
        .record(millis(lag), &[KeyValue::new("topic", topic.to_string())]);
}

/// An event handled by `group` `lag` after its commit.
pub fn event_handled(group: &str, event_type: &str, lag: Duration) {
    INSTRUMENTS.consumer_lag.record(
        millis(lag),
        &[
            KeyValue::new("group", group.to_string()),
            KeyValue::new("event.type", event_type.to_string()),
        ],
    );
}

/// A delivery attempt on `channel` ended with `outcome` (`sent`, `retry`, `failed`).
pub fn delivery(channel: &str, outcome: &'static str) {
    INSTRUMENTS.deliveries.add(
        1,
        &[
            KeyValue::new("channel", channel.to_string()),
            KeyValue::new("outcome", outcome),
        ],
    );
}

/// A log-in refused before its password was checked: `busy` (hash queue full), `rate`
/// (too many for the user name), `locked` (locked out after failures).
pub fn login_refused(why: &'static str) {
    INSTRUMENTS
        .logins_refused
        .add(1, &[KeyValue::new("why", why)]);
}
