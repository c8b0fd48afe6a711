//! The SQL of the opt-outs (N-6).

use crm_kit::{Result, convert};
use crm_proto::notifications::v1 as pb;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::{opt_outs::rules::OptOutInput, rules::Channel};

/// Whether `address` (normalised) opted out of `channel`.
pub async fn is_opted_out(
    conn: &mut PgConnection,
    channel: Channel,
    address: &str,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM opt_outs WHERE channel = $1 AND address = $2)",
    )
    .bind(channel.as_str())
    .bind(address)
    .fetch_one(&mut *conn)
    .await?)
}

/// Opts out or back in; returns whether anything changed.
pub async fn set_opt_out(
    tx: &mut PgConnection,
    o: &OptOutInput,
    now: OffsetDateTime,
    actor: &str,
) -> Result<bool> {
    let changed = if o.opted_out {
        sqlx::query(
            "INSERT INTO opt_outs (channel, address, customer_id, reason, create_time, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (channel, address) DO NOTHING",
        )
        .bind(o.channel.as_str())
        .bind(&o.address)
        .bind(&o.customer_id)
        .bind(&o.reason)
        .bind(now)
        .bind(actor)
        .execute(&mut *tx)
        .await?
        .rows_affected()
    } else {
        sqlx::query("DELETE FROM opt_outs WHERE channel = $1 AND address = $2")
            .bind(o.channel.as_str())
            .bind(&o.address)
            .execute(&mut *tx)
            .await?
            .rows_affected()
    };
    Ok(changed == 1)
}

#[derive(sqlx::FromRow)]
struct OptOutRow {
    channel: String,
    address: String,
    customer_id: String,
    reason: String,
    create_time: OffsetDateTime,
    created_by: String,
}

/// Opt-outs by (channel, address) after `after`.
pub async fn list_opt_outs(
    conn: &mut PgConnection,
    after: Option<(String, String)>,
    limit: i64,
) -> Result<Vec<(pb::OptOut, (String, String))>> {
    let rows: Vec<OptOutRow> = sqlx::query_as(
        "SELECT channel, address, customer_id, reason, create_time, created_by FROM opt_outs \
         WHERE ($1::text IS NULL OR (channel, address) > ($1, $2)) ORDER BY channel, address LIMIT $3",
    )
    .bind(after.as_ref().map(|a| a.0.clone()))
    .bind(after.as_ref().map(|a| a.1.clone()).unwrap_or_default())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let key = (r.channel.clone(), r.address.clone());
            let channel = pb::Channel::from_str_name(&r.channel).map_or(0, |c| c as i32);
            (
                pb::OptOut {
                    channel,
                    address: crate::rules::mask(&r.address),
                    customer_id: r.customer_id,
                    reason: r.reason,
                    created: Some(convert::stamp(r.create_time, &r.created_by)),
                },
                key,
            )
        })
        .collect())
}
