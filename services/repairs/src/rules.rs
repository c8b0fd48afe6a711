//! The rules the repairs capabilities share: the service's settings — the turnaround of a
//! repair order per kind of centre and order, overridable per centre.

use std::collections::BTreeMap;

use crm_proto::repairs::v1::{self as pb, CentreKind, OrderKind};
use serde::Deserialize;

/// Turnaround hours of each kind of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Hours {
    /// Carry-in orders.
    pub carry_in: i64,
    /// Mail-in orders.
    pub mail_in: i64,
}

impl Hours {
    fn of(self, kind: OrderKind) -> i64 {
        match kind {
            OrderKind::MailIn => self.mail_in,
            _ => self.carry_in,
        }
    }
}

/// The `[repairs]` settings.
#[derive(Debug, Clone)]
pub struct RepairSettings {
    /// The fraction of a turnaround at which its warning fires.
    pub warning_at: f64,
    /// Days an exchanged unit's faulty original has to come back when the replacement shipped
    /// first.
    pub return_days: i64,
    by_kind: BTreeMap<String, Hours>,
    by_centre: BTreeMap<String, Hours>,
}

impl RepairSettings {
    /// Reads `[repairs]`; a missing centre kind or a turnaround under an hour stops the start.
    pub fn from_settings(settings: &crm_kit::Settings) -> anyhow::Result<Self> {
        #[derive(Deserialize)]
        struct Section {
            warning_at: f64,
            return_days: i64,
            turnaround_hours: BTreeMap<String, Hours>,
            #[serde(default)]
            centres: BTreeMap<String, Hours>,
        }
        let s: Section = settings.section("repairs")?;
        if s.return_days < 1 {
            anyhow::bail!("repairs.return_days must be at least 1");
        }
        let mut own = Self::new(s.warning_at, s.turnaround_hours, s.centres)?;
        own.return_days = s.return_days;
        Ok(own)
    }

    fn new(
        warning_at: f64,
        by_kind: BTreeMap<String, Hours>,
        by_centre: BTreeMap<String, Hours>,
    ) -> anyhow::Result<Self> {
        if !(0.0..1.0).contains(&warning_at) {
            anyhow::bail!("repairs.warning_at must be in [0, 1)");
        }
        for kind in ["hq", "branch", "partner", "agent"] {
            if !by_kind.contains_key(kind) {
                anyhow::bail!("repairs.turnaround_hours.{kind} is missing");
            }
        }
        for (name, h) in by_kind.iter().chain(&by_centre) {
            if h.carry_in < 1 || h.mail_in < 1 {
                anyhow::bail!("repairs turnaround of {name} must be at least one hour");
            }
        }
        Ok(Self {
            warning_at,
            return_days: 14,
            by_kind,
            by_centre,
        })
    }

    /// The turnaround of an order of `kind` at `centre`: the centre's own, else its kind's.
    pub fn turnaround(&self, centre: &pb::Centre, kind: OrderKind) -> time::Duration {
        let centre_kind = CentreKind::try_from(centre.kind).unwrap_or_default();
        let key = crate::centres::rules::kind_name(centre_kind).to_lowercase();
        let hours = self
            .by_centre
            .get(&centre.code)
            .or_else(|| self.by_kind.get(&key))
            .map_or(24, |h| h.of(kind));
        time::Duration::hours(hours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_centre_overrides_its_kind_and_each_order_kind_has_its_own() {
        let settings = crm_kit::Settings::load_with(None, &[]).unwrap();
        let s = RepairSettings::from_settings(&settings).unwrap();
        let centre = |code: &str, kind: CentreKind| pb::Centre {
            code: code.into(),
            kind: kind as i32,
            ..Default::default()
        };
        let hq = centre("HQ", CentreKind::Hq);
        assert_eq!(
            s.turnaround(&hq, OrderKind::CarryIn),
            time::Duration::hours(8)
        );
        assert_eq!(
            s.turnaround(&hq, OrderKind::MailIn),
            time::Duration::hours(40)
        );
        let mut own = s.clone();
        own.by_centre.insert(
            "SZ-01".into(),
            Hours {
                carry_in: 3,
                mail_in: 5,
            },
        );
        let sz = centre("SZ-01", CentreKind::Partner);
        assert_eq!(
            own.turnaround(&sz, OrderKind::MailIn),
            time::Duration::hours(5)
        );
        assert!(RepairSettings::new(1.0, own.by_kind.clone(), BTreeMap::new()).is_err());
        let mut missing = own.by_kind.clone();
        missing.remove("agent");
        assert!(RepairSettings::new(0.8, missing, BTreeMap::new()).is_err());
    }
}
