//! `crm-events-worker`: an outbox relay or an event consumer in a process of its own, for the
//! tests that kill it with SIGKILL at the worst moments. Settings come from the `CRM__…`
//! environment, as for `crm`.
//!
//!   crm-events-worker relay SCHEMA
//!   crm-events-worker consume SCHEMA    (records each event in SCHEMA.handled; an event of
//!                                        aggregate "block" is held open forever after marking
//!                                        SCHEMA.blocked, so the test can kill mid-event)
//!   crm-events-worker timers SCHEMA     (a timer worker recording each firing in SCHEMA.fired;
//!                                        a timer of kind "block" is held open forever after
//!                                        marking SCHEMA.blocked)

use std::sync::Arc;

use crm_kit::{
    CancellationToken, Settings,
    events::{self, Consumer},
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(schema)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: crm-events-worker relay|consume|timers SCHEMA");
    };
    let schema: &'static str = Box::leak(schema.clone().into_boxed_str());
    let settings = Settings::load(None)?;
    let pool = crm_kit::db::connect(&settings.database, schema).await?;
    let stop = CancellationToken::new();
    let task = match mode.as_str() {
        "relay" => events::spawn_relay(
            pool,
            schema,
            settings.redis.clone(),
            settings.events.clone(),
            stop.clone(),
        ),
        "consume" => {
            let consumer = Consumer {
                group: "test".into(),
                topics: vec![schema.into()],
                handler: Arc::new(crm_kit::testing::events::Record {
                    pool: pool.clone(),
                    block: true,
                }),
            };
            events::spawn_consumer(
                pool,
                consumer,
                settings.redis.clone(),
                settings.events.clone(),
                stop.clone(),
            )
        }
        "timers" => crm_kit::timers::spawn_worker(
            pool.clone(),
            crm_kit::timers::Timers::connect(&settings.redis, schema).await?,
            crm_kit::Clock::system(),
            Arc::new(crm_kit::testing::timers::Record {
                pool: pool.clone(),
                block: true,
            }),
            settings.timers.clone(),
            stop.clone(),
        ),
        other => anyhow::bail!("unknown mode {other}"),
    };
    println!("ready");
    task.await?;
    Ok(())
}
