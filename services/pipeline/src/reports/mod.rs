//! The pipeline report (P-6): over the opportunities expected to close in a period, in the
//! caller's scope (a rep their own, a manager their region), grouped by rep or by region, in
//! yuan at the configured rates: the funnel by stage, the conversion between consecutive stages
//! (how far each got, kept on its row), and per month the open pipeline, the forecast (amount ×
//! probability) and what was won — each figure one grouped query over the rows, so a test can
//! recompute it. Targets per rep and month; forecast snapshots, taken on the last day of every
//! month by a scheduled job (or on demand), so the attainment report can set "forecast at T"
//! beside what was won. `StreamPipelineReport` sends the same lines in chunks.

mod store;

use std::collections::BTreeMap;

use crm_kit::{
    Error, Result, audit,
    auth::Principal,
    context::Call,
    convert,
    idempotency::RequestKey,
    money,
    schedule::{Job, Task},
};
use crm_proto::pipeline::v1::{self as pb, Grouping, Stage};
use sqlx::PgConnection;
use time::{Date, OffsetDateTime};

use crate::{
    rules::{OPEN, stage_of},
    service::{Pipeline, holder, require_managing, scope},
};

/// The stages in the order the conversion follows.
const LADDER: [Stage; 5] = [OPEN[0], OPEN[1], OPEN[2], OPEN[3], Stage::Won];

/// Yuan nanos as the query gives them (a decimal string) as Money.
fn yuan(nanos: &str) -> crm_proto::common::v1::Money {
    money::from_nanos("CNY", nanos.parse::<i128>().unwrap_or(0))
}

/// The job that keeps the forecast on the last day of every month.
struct MonthEndSnapshot(Pipeline);

#[tonic::async_trait]
impl Task for MonthEndSnapshot {
    async fn run(&self, tx: &mut PgConnection, now: OffsetDateTime) -> Result<bool, Error> {
        let today = now.to_offset(self.0.calendar.offset()).date();
        let last_of_month = today.next_day().is_none_or(|d| d.month() != today.month());
        if last_of_month {
            let n = store::take_snapshot(tx, &self.0.rates(), today).await?;
            tracing::info!(%today, lines = n, "month-end forecast snapshot");
        }
        Ok(false)
    }
}

impl Pipeline {
    /// The scheduled jobs: the month-end forecast snapshot, looked at every hour.
    pub fn jobs(&self) -> Vec<Job> {
        vec![Job {
            name: "pipeline.month_end_snapshot",
            every: std::time::Duration::from_secs(3600),
            task: std::sync::Arc::new(MonthEndSnapshot(self.clone())),
        }]
    }

    fn rates(&self) -> store::Rates {
        let (currencies, rates) = self.settings.rates_decimal();
        store::Rates { currencies, rates }
    }

    /// Sets a rep's target for a month.
    pub async fn set_target(
        &self,
        key: RequestKey,
        r: &pb::SetTargetRequest,
        call: &Call,
    ) -> Result<pb::SetTargetResponse> {
        use crm_kit::text::{self, Lines};
        let t = r.target.clone().unwrap_or_default();
        let mut v = crm_kit::Violations::new();
        text::require(&mut v, "target.owner_id", &t.owner_id, 100, Lines::One);
        text::require(&mut v, "target.region", &t.region, 100, Lines::One);
        if !(2000..=9999).contains(&t.year) {
            v.add("target.year", "must be a year");
        }
        if !(1..=12).contains(&t.month) {
            v.add("target.month", "must be 1 … 12");
        }
        match money::problem(t.amount.as_ref()) {
            Some(p) => v.add("target.amount", p),
            None if t.amount.as_ref().is_some_and(|m| m.currency_code != "CNY") => {
                v.add("target.amount", "targets are in yuan (CNY)");
            }
            None => {}
        }
        v.finish()?;
        require_managing(&call.principal, "setting targets")?;
        if !scope(&call.principal).permits(holder("", &t.region)) {
            return Err(Error::PermissionDenied {
                permission: format!("targets of region {}", t.region),
            });
        }
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let actor = &call.principal.subject;
        let nanos = t.amount.as_ref().map_or(0, money::to_nanos);
        store::set_target(
            &mut tx,
            (&t.owner_id, &t.region),
            (t.year, t.month),
            nanos,
            (now, actor),
        )
        .await?;
        let resource = format!("targets/{}/{}-{:02}", t.owner_id, t.year, t.month);
        audit::record(&mut tx, call, now, &resource, &["amount"]).await?;
        let response = pb::SetTargetResponse {
            target: Some(pb::Target {
                set: Some(convert::stamp(now, actor)),
                ..t
            }),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// Keeps the forecast as of today.
    pub async fn take_snapshot(
        &self,
        key: RequestKey,
        call: &Call,
    ) -> Result<pb::TakeForecastSnapshotResponse> {
        require_managing(&call.principal, "taking forecast snapshots")?;
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let today = self.today();
        let lines = store::take_snapshot(&mut tx, &self.rates(), today).await?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("forecast_snapshots/{today}"),
            &["taken"],
        )
        .await?;
        let response = pb::TakeForecastSnapshotResponse {
            taken_on: Some(convert::date(today)),
            lines: i32::try_from(lines).unwrap_or(i32::MAX),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// Per rep for a month: target, won, attainment, and the snapshot's forecast.
    pub async fn attainment(
        &self,
        r: &pb::ReportAttainmentRequest,
        caller: &Principal,
    ) -> Result<pb::ReportAttainmentResponse> {
        let mut v = crm_kit::Violations::new();
        let start = u8::try_from(r.month)
            .ok()
            .and_then(|m| time::Month::try_from(m).ok())
            .and_then(|m| Date::from_calendar_date(r.year, m, 1).ok());
        if start.is_none() {
            v.add("month", "year and month must name a month");
        }
        let taken_on = match r.snapshot_on.as_ref().map(convert::from_date) {
            None => None,
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                v.add("snapshot_on", e);
                None
            }
        };
        v.finish()?;
        let Some(start) = start else {
            return Err(Error::invalid("month", "year and month must name a month"));
        };
        // the first of the next month
        let end = (start + time::Duration::days(31))
            .replace_day(1)
            .unwrap_or(Date::MAX);
        let scope = scope(caller);
        let mut conn = self.pool.acquire().await?;
        let won = store::forecast(&mut conn, &self.rates(), (start, end), false, &scope).await?;
        let planned = store::planned(&mut conn, &scope, (r.year, r.month), taken_on).await?;
        let zero = || Some(money::from_nanos("CNY", 0));
        let mut lines: BTreeMap<String, pb::AttainmentLine> = BTreeMap::new();
        for (owner, region, target, forecast) in planned {
            lines.insert(
                owner.clone(),
                pb::AttainmentLine {
                    owner_id: owner,
                    region,
                    target: Some(yuan(&target)),
                    won: zero(),
                    attainment: 0.0,
                    forecast: Some(yuan(&forecast)),
                },
            );
        }
        for (owner, _, _, _, _, _, won_nanos) in won {
            let line = lines
                .entry(owner.clone())
                .or_insert_with(|| pb::AttainmentLine {
                    owner_id: owner,
                    target: zero(),
                    won: zero(),
                    forecast: zero(),
                    ..Default::default()
                });
            let sum = line.won.as_ref().map_or(0, money::to_nanos)
                + won_nanos.parse::<i128>().unwrap_or(0);
            line.won = Some(money::from_nanos("CNY", sum));
        }
        for line in lines.values_mut() {
            let target = line.target.as_ref().map_or(0, money::to_nanos);
            let won = line.won.as_ref().map_or(0, money::to_nanos);
            line.attainment = if target == 0 {
                0.0
            } else {
                won as f64 / target as f64
            };
        }
        Ok(pb::ReportAttainmentResponse {
            lines: lines.into_values().collect(),
        })
    }
}

/// The most lines a streamed chunk carries.
const CHUNK: usize = 500;

/// `report` cut into chunks of at most [`CHUNK`] lines, funnel, then conversion, then forecast.
pub fn chunks(report: pb::GetPipelineReportResponse) -> Vec<pb::StreamPipelineReportResponse> {
    let mut out = Vec::new();
    for part in report.funnel.chunks(CHUNK) {
        out.push(pb::StreamPipelineReportResponse {
            funnel: part.to_vec(),
            ..Default::default()
        });
    }
    for part in report.conversion.chunks(CHUNK) {
        out.push(pb::StreamPipelineReportResponse {
            conversion: part.to_vec(),
            ..Default::default()
        });
    }
    for part in report.forecast.chunks(CHUNK) {
        out.push(pb::StreamPipelineReportResponse {
            forecast: part.to_vec(),
            ..Default::default()
        });
    }
    out
}

impl Pipeline {
    /// The report of the request's period.
    pub async fn report(
        &self,
        r: &pb::GetPipelineReportRequest,
        caller: &Principal,
    ) -> Result<pb::GetPipelineReportResponse> {
        let mut v = crm_kit::Violations::new();
        let mut date = |field: &str, d: Option<&crm_proto::common::v1::Date>| match d
            .map(convert::from_date)
        {
            Some(Ok(d)) => Some(d),
            _ => {
                v.add(field, "is required");
                None
            }
        };
        let (from, to) = (date("from", r.from.as_ref()), date("to", r.to.as_ref()));
        if let (Some(f), Some(t)) = (from, to)
            && t <= f
        {
            v.add("to", "must be after from");
        }
        let grouping = Grouping::try_from(r.grouping)
            .map_err(|_| Error::invalid("grouping", "is not a grouping"))?;
        v.finish()?;
        let (Some(from), Some(to)) = (from, to) else {
            return Err(Error::invalid("from", "is required"));
        };
        let by_region = grouping == Grouping::Region;
        let (currencies, rates) = self.settings.rates_decimal();
        let rates = store::Rates { currencies, rates };
        let scope = scope(caller);
        let mut conn = self.pool.acquire().await?;
        let period = (from, to);
        let funnel = store::funnel(&mut conn, &rates, period, by_region, &scope).await?;
        let forecast = store::forecast(&mut conn, &rates, period, by_region, &scope).await?;
        let reached = store::reached(&mut conn, &rates, period, by_region, &scope).await?;
        // per group: how many reached at least each rung of the ladder
        let mut at_least: BTreeMap<String, [i64; 6]> = BTreeMap::new();
        for (group, furthest, n) in reached {
            let counts = at_least.entry(group).or_default();
            let furthest = usize::try_from(furthest).unwrap_or(0).min(5);
            for count in counts.iter_mut().take(furthest + 1).skip(1) {
                *count += n;
            }
        }
        let conversion = at_least
            .into_iter()
            .flat_map(|(group, counts)| {
                LADDER.windows(2).enumerate().map(move |(i, pair)| {
                    let (from_n, to_n) = (counts[i + 1], counts[i + 2]);
                    pb::ConversionLine {
                        group: group.clone(),
                        from_stage: pair[0] as i32,
                        to_stage: pair[1] as i32,
                        reached_from: from_n as i32,
                        reached_to: to_n as i32,
                        rate: if from_n == 0 {
                            0.0
                        } else {
                            to_n as f64 / from_n as f64
                        },
                    }
                })
            })
            .collect();
        Ok(pb::GetPipelineReportResponse {
            funnel: funnel
                .into_iter()
                .map(|(group, stage, n, nanos)| pb::FunnelLine {
                    group,
                    stage: stage_of(&stage) as i32,
                    opportunities: n as i32,
                    amount: Some(yuan(&nanos)),
                })
                .collect(),
            conversion,
            forecast: forecast
                .into_iter()
                .map(
                    |(group, year, month, open, pipeline, weighted, won)| pb::ForecastLine {
                        group,
                        year,
                        month,
                        open: open as i32,
                        pipeline: Some(yuan(&pipeline)),
                        weighted: Some(yuan(&weighted)),
                        won: Some(yuan(&won)),
                    },
                )
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_report_is_cut_into_chunks_in_order() {
        let report = pb::GetPipelineReportResponse {
            funnel: (0..1201)
                .map(|i| pb::FunnelLine {
                    group: format!("rep-{i}"),
                    ..Default::default()
                })
                .collect(),
            conversion: vec![pb::ConversionLine::default(); 3],
            forecast: Vec::new(),
        };
        let chunks = chunks(report.clone());
        let sizes: Vec<(usize, usize)> = chunks
            .iter()
            .map(|c| (c.funnel.len(), c.conversion.len()))
            .collect();
        assert_eq!(sizes, [(500, 0), (500, 0), (201, 0), (0, 3)]);
        let funnel: Vec<pb::FunnelLine> = chunks.into_iter().flat_map(|c| c.funnel).collect();
        assert_eq!(funnel, report.funnel);
    }
}
