//! The report's SQL: grouped scans of the opportunities expected to close in a period, their
//! amounts turned into yuan nanos at the configured rates inside the query (exact `numeric`).

use crm_kit::{Result, scope::Scope};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::Date;

/// The rates as the query takes them: currencies and decimal strings of yuan per unit.
pub struct Rates {
    /// The currencies.
    pub currencies: Vec<String>,
    /// Yuan per unit of each, as exact decimals.
    pub rates: Vec<String>,
}

/// The opportunities of the period in scope, each with its group and its amount in yuan nanos
/// (`y`), as a sub-select named `o`.
fn period(
    b: &mut QueryBuilder<Postgres>,
    rates: &Rates,
    (from, to): (Date, Date),
    by_region: bool,
    scope: &Scope,
) {
    b.push(format!(
        "(SELECT opportunities.*, {} AS grp, \
         (amount_units::numeric * 1000000000 + amount_nanos) * r.rate AS y \
         FROM opportunities JOIN (SELECT c AS currency, x::numeric AS rate FROM unnest(",
        if by_region { "region" } else { "owner_id" }
    ));
    b.push_bind(rates.currencies.clone())
        .push("::text[], ")
        .push_bind(rates.rates.clone())
        .push(
            "::text[]) AS t(c, x)) r ON r.currency = amount_currency WHERE expected_close_date >= ",
        )
        .push_bind(from)
        .push(" AND expected_close_date < ")
        .push_bind(to);
    scope.push_sql(b, crate::service::COLUMNS);
    b.push(") o");
}

/// A funnel group: (group, stage, opportunities, yuan nanos).
pub type Funnel = (String, String, i64, String);

/// The funnel: per group and stage, how many and their amounts.
pub async fn funnel(
    conn: &mut PgConnection,
    rates: &Rates,
    period_: (Date, Date),
    by_region: bool,
    scope: &Scope,
) -> Result<Vec<Funnel>> {
    let mut b = QueryBuilder::new(
        "SELECT grp, stage, count(*)::bigint, round(coalesce(sum(y), 0))::text FROM ",
    );
    period(&mut b, rates, period_, by_region, scope);
    b.push(" GROUP BY 1, 2 ORDER BY 1, 2");
    Ok(b.build_query_as().fetch_all(&mut *conn).await?)
}

/// A forecast group: (group, year, month, open, pipeline, weighted, won) — amounts in yuan
/// nanos.
pub type Forecast = (String, i32, i32, i64, String, String, String);

/// The forecast: per group and month of the expected close.
pub async fn forecast(
    conn: &mut PgConnection,
    rates: &Rates,
    period_: (Date, Date),
    by_region: bool,
    scope: &Scope,
) -> Result<Vec<Forecast>> {
    let mut b = QueryBuilder::new(
        "SELECT grp, extract(year FROM expected_close_date)::int, \
         extract(month FROM expected_close_date)::int, \
         count(*) FILTER (WHERE stage NOT IN ('WON', 'LOST'))::bigint, \
         round(coalesce(sum(y) FILTER (WHERE stage NOT IN ('WON', 'LOST')), 0))::text, \
         round(coalesce(sum(y * probability / 100) FILTER (WHERE stage NOT IN ('WON', 'LOST')), 0))::text, \
         round(coalesce(sum(y) FILTER (WHERE stage = 'WON'), 0))::text FROM ",
    );
    period(&mut b, rates, period_, by_region, scope);
    b.push(" GROUP BY 1, 2, 3 ORDER BY 1, 2, 3");
    Ok(b.build_query_as().fetch_all(&mut *conn).await?)
}

/// How far the opportunities got: (group, the furthest rung reached — 1 qualification … 5 won,
/// kept on the row at every stage move — and how many got that far).
pub async fn reached(
    conn: &mut PgConnection,
    rates: &Rates,
    period_: (Date, Date),
    by_region: bool,
    scope: &Scope,
) -> Result<Vec<(String, i32, i64)>> {
    let mut b = QueryBuilder::new("SELECT grp, furthest, count(*)::bigint FROM ");
    period(&mut b, rates, period_, by_region, scope);
    b.push(" GROUP BY 1, 2 ORDER BY 1, 2");
    Ok(b.build_query_as().fetch_all(&mut *conn).await?)
}

/// Sets (or replaces) a target, in yuan nanos.
pub async fn set_target(
    tx: &mut PgConnection,
    (owner, region): (&str, &str),
    (year, month): (i32, i32),
    nanos: i128,
    (now, actor): (time::OffsetDateTime, &str),
) -> Result<()> {
    sqlx::query(
        "INSERT INTO targets (owner_id, year, month, region, amount_nanos, set_time, set_by) \
         VALUES ($1, $2, $3, $4, $5::numeric, $6, $7) ON CONFLICT (owner_id, year, month) \
         DO UPDATE SET region = $4, amount_nanos = $5::numeric, set_time = $6, set_by = $7",
    )
    .bind(owner)
    .bind(year)
    .bind(month)
    .bind(region)
    .bind(nanos.to_string())
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Replaces the snapshot of `taken_on` with the forecast of every open opportunity now, per
/// rep, region and month of expected close; how many lines.
pub async fn take_snapshot(tx: &mut PgConnection, rates: &Rates, taken_on: Date) -> Result<u64> {
    sqlx::query("DELETE FROM forecast_snapshots WHERE taken_on = $1")
        .bind(taken_on)
        .execute(&mut *tx)
        .await?;
    let mut b = QueryBuilder::new(
        "INSERT INTO forecast_snapshots (taken_on, owner_id, region, year, month, open, \
         pipeline_nanos, weighted_nanos) SELECT ",
    );
    b.push_bind(taken_on).push(
        ", owner_id, region, extract(year FROM expected_close_date)::int, \
         extract(month FROM expected_close_date)::int, count(*)::int, round(sum(y)), \
         round(sum(y * probability / 100)) FROM ",
    );
    let everyone = Scope {
        all: true,
        ..Scope::default()
    };
    period(
        &mut b,
        rates,
        (time::macros::date!(1900 - 01 - 01), Date::MAX),
        false,
        &everyone,
    );
    b.push(" WHERE stage NOT IN ('WON', 'LOST') GROUP BY 2, 3, 4, 5");
    Ok(b.build().execute(&mut *tx).await?.rows_affected())
}

/// A rep's month for the attainment: (owner, region, target nanos, forecast nanos).
pub type Planned = (String, String, String, String);

/// The targets of a month and what the snapshot of `taken_on` (if any) said of it, per rep in
/// `scope`.
pub async fn planned(
    conn: &mut PgConnection,
    scope: &Scope,
    (year, month): (i32, i32),
    taken_on: Option<Date>,
) -> Result<Vec<Planned>> {
    let mut b = QueryBuilder::new(
        "SELECT owner_id, region, coalesce(max(t), 0)::text, coalesce(max(f), 0)::text FROM ( \
         SELECT owner_id, region, amount_nanos AS t, NULL::numeric AS f FROM targets \
         WHERE year = ",
    );
    b.push_bind(year).push(" AND month = ").push_bind(month);
    scope.push_sql(&mut b, crate::service::COLUMNS);
    b.push(
        " UNION ALL SELECT owner_id, region, NULL, sum(weighted_nanos) FROM forecast_snapshots \
         WHERE taken_on = ",
    );
    b.push_bind(taken_on)
        .push(" AND year = ")
        .push_bind(year)
        .push(" AND month = ")
        .push_bind(month);
    scope.push_sql(&mut b, crate::service::COLUMNS);
    b.push(" GROUP BY owner_id, region) x GROUP BY 1, 2 ORDER BY 1, 2");
    Ok(b.build_query_as().fetch_all(&mut *conn).await?)
}
