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

/// How far the opportunities got: (group, the furthest stage reached — 1 qualification … 5 won,
/// from the stage history — and how many got that far).
pub async fn reached(
    conn: &mut PgConnection,
    rates: &Rates,
    period_: (Date, Date),
    by_region: bool,
    scope: &Scope,
) -> Result<Vec<(String, i32, i64)>> {
    let mut b = QueryBuilder::new("SELECT grp, h.reached, count(*)::bigint FROM ");
    period(&mut b, rates, period_, by_region, scope);
    b.push(
        " JOIN LATERAL (SELECT coalesce(max(CASE to_value WHEN 'QUALIFICATION' THEN 1 \
         WHEN 'NEEDS_ANALYSIS' THEN 2 WHEN 'PROPOSAL' THEN 3 WHEN 'NEGOTIATION' THEN 4 \
         WHEN 'WON' THEN 5 ELSE 0 END), 0) AS reached FROM history \
         WHERE subject = 'opportunities/' || o.id AND kind = 'changes' AND via = 'stage') h ON true \
         GROUP BY 1, 2 ORDER BY 1, 2",
    );
    Ok(b.build_query_as().fetch_all(&mut *conn).await?)
}
