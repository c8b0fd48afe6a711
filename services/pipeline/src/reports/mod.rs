//! The pipeline report (P-6): over the opportunities expected to close in a period, in the
//! caller's scope (a rep their own, a manager their region), grouped by rep or by region, in
//! yuan at the configured rates: the funnel by stage, the conversion between consecutive stages
//! from the stage history, and per month the open pipeline, the forecast (amount ×
//! probability) and what was won — each figure one grouped query over the rows, so a test can
//! recompute it.

mod store;

use std::collections::BTreeMap;

use crm_kit::{Error, Result, auth::Principal, convert, money};
use crm_proto::pipeline::v1::{self as pb, Grouping, Stage};

use crate::{
    rules::{OPEN, stage_of},
    service::{Pipeline, scope},
};

/// The stages in the order the conversion follows.
const LADDER: [Stage; 5] = [OPEN[0], OPEN[1], OPEN[2], OPEN[3], Stage::Won];

/// Yuan nanos as the query gives them (a decimal string) as Money.
fn yuan(nanos: &str) -> crm_proto::common::v1::Money {
    money::from_nanos("CNY", nanos.parse::<i128>().unwrap_or(0))
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
