//! The pipeline report case (issue 18, P-6): `rows` generated opportunities — 50 reps in 6
//! regions, every stage, one in ten in dollars, close dates over a year, each with its stage in
//! the history — then `GetPipelineReport` over the year by rep and by region, `calls` times
//! each, on the pipeline server: p50 and p99 of a call. `deploy/bench.sh` times the same
//! forecast aggregate as one statement with psql on the same database, in the same run.

use std::time::{Duration, Instant};

use crm_kit::testing;
use crm_proto::{
    common::v1::Date,
    pipeline::v1::{self as pb, pipeline_service_client::PipelineServiceClient},
};
use tonic::transport::Channel;

/// Generates the opportunities and their history rows in one statement each.
async fn seed(pool: &sqlx::PgPool, rows: usize) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO opportunities (id, name, type, customer_id, region, owner_id, \
         amount_currency, amount_units, amount_nanos, expected_close_date, probability, stage, \
         lost_reason, lead_id, version, create_time, created_by, update_time, updated_by) \
         SELECT md5('o' || g)::uuid, 'bench ' || g, 'NEW_BUSINESS', md5('c' || (g % 5000))::uuid, \
           (ARRAY['华东', '华北', '华南', '西南', '华中', '东北'])[1 + g % 6], 'rep-' || (g % 50), \
           CASE WHEN g % 10 = 0 THEN 'USD' ELSE 'CNY' END, 1000 + (g * 7919) % 500000, 0, \
           date '2027-01-01' + (g % 365)::int, \
           (ARRAY[10, 25, 50, 75, 100, 0])[1 + g % 6], \
           (ARRAY['QUALIFICATION', 'NEEDS_ANALYSIS', 'PROPOSAL', 'NEGOTIATION', 'WON', 'LOST'])[1 + g % 6], \
           CASE WHEN g % 6 = 5 THEN 'bench' ELSE '' END, '', 1, now(), 'bench', now(), 'bench' \
         FROM generate_series(1, $1) g",
    )
    .bind(i64::try_from(rows)?)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO history (id, subject, kind, from_value, to_value, reason, via, actor, \
         change_time) SELECT md5('h' || id)::uuid, 'opportunities/' || id, 'changes', '', stage, \
         'bench', 'stage', 'bench', now() FROM opportunities",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "UPDATE opportunities SET furthest = (ARRAY[1, 2, 3, 4, 5, 1])[1 + (substr(name, 7)::bigint % 6)]",
    )
    .execute(pool)
    .await?;
    sqlx::query("ANALYZE opportunities").execute(pool).await?;
    sqlx::query("ANALYZE history").execute(pool).await?;
    Ok(())
}

/// Runs the case and prints one JSON line per grouping.
pub async fn case(
    settings: &crm_kit::Settings,
    channel: Channel,
    token: &str,
    rows: usize,
    calls: usize,
) -> anyhow::Result<()> {
    let pool = crm_kit::db::connect(&settings.database, crm_pipeline::NAME).await?;
    let seeding = Instant::now();
    seed(&pool, rows).await?;
    let seeded_in = seeding.elapsed();
    let mut client = PipelineServiceClient::with_interceptor(channel, testing::Bearer::new(token))
        .max_decoding_message_size(64 << 20);
    for (name, grouping) in [("rep", pb::Grouping::Rep), ("region", pb::Grouping::Region)] {
        let request = pb::GetPipelineReportRequest {
            from: Some(Date {
                year: 2027,
                month: 1,
                day: 1,
            }),
            to: Some(Date {
                year: 2028,
                month: 1,
                day: 1,
            }),
            grouping: grouping as i32,
        };
        let mut latencies: Vec<Duration> = Vec::with_capacity(calls);
        let mut lines = 0;
        for _ in 0..calls {
            let started = Instant::now();
            let report = client.get_pipeline_report(request).await?.into_inner();
            latencies.push(started.elapsed());
            lines = report.funnel.len() + report.conversion.len() + report.forecast.len();
        }
        latencies.sort();
        println!(
            "{}",
            serde_json::json!({
                "op": format!("report_{name}"),
                "clients": 1,
                "rows": rows,
                "requests": calls,
                "lines": lines,
                "seeded_in_s": seeded_in.as_secs_f64(),
                "p50_ms": super::percentile(&latencies, 0.50),
                "p99_ms": super::percentile(&latencies, 0.99),
                "database": settings.database.url,
            })
        );
    }
    Ok(())
}
