//! Which rows a caller may see and change (G-2), written once for every service: the common
//! rules are "everything" (managers, back office), "their own" (the rows they own or are
//! assigned), "their region" and "their partner organisation". A service names which roles get
//! which rule in a [`Grants`]; the [`Scope`] it gives is checked on a row in memory
//! ([`Scope::permits`]) and pushed into SQL ([`Scope::push_sql`]) so a list, a count or a
//! report never includes a row the caller could not read one by one.
//!
//! Rules add up: a caller with two roles sees what either role sees. Out of scope is answered
//! as NOT_FOUND by the services, as if the row did not exist.

use sqlx::{Postgres, QueryBuilder};

use crate::{Role, auth::Principal};

/// Which roles get which rule, one list per rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct Grants {
    /// Roles that see every row.
    pub all: &'static [Role],
    /// Roles that see the rows they own (or are assigned).
    pub own: &'static [Role],
    /// Roles that see the rows of their region (the principal's `region`; none when empty).
    pub region: &'static [Role],
    /// Roles that see the rows of their partner organisation (the principal's `partner_id`).
    pub organisation: &'static [Role],
    /// Roles that see the rows naming them as the partner (a customer's tech support).
    pub partnered: &'static [Role],
}

/// The rows a caller may see: the union of the rules its roles are granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Sees every row.
    pub all: bool,
    /// Sees the rows with this owner.
    pub owner: Option<String>,
    /// Sees the rows of this region.
    pub region: Option<String>,
    /// Sees the rows of this partner organisation.
    pub organisation: Option<String>,
    /// Sees the rows naming this subject as their partner.
    pub partner: Option<String>,
}

/// What a row is checked against: its owner, region, partner organisation and partner. A
/// field a kind of row does not have is empty and never matches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Holder<'a> {
    /// Who owns the row (or is assigned it).
    pub owner: &'a str,
    /// The row's region.
    pub region: &'a str,
    /// The partner organisation the row belongs to.
    pub organisation: &'a str,
    /// The subject named as the row's partner.
    pub partner: &'a str,
}

/// The columns of a table that hold a [`Holder`]'s fields; `None` for one it does not have.
#[derive(Debug, Clone, Copy, Default)]
pub struct Columns {
    /// The owner column.
    pub owner: Option<&'static str>,
    /// The region column.
    pub region: Option<&'static str>,
    /// The partner organisation column.
    pub organisation: Option<&'static str>,
    /// The partner column.
    pub partner: Option<&'static str>,
}

/// The caller's own subject, when one of `roles` is theirs: the "own rows" rule.
pub fn own(caller: &Principal, roles: &[Role]) -> Option<String> {
    (caller.has_any(roles) && !caller.subject.is_empty()).then(|| caller.subject.clone())
}

/// The caller's region, when one of `roles` is theirs and they have one: the "region" rule.
pub fn region(caller: &Principal, roles: &[Role]) -> Option<String> {
    (caller.has_any(roles) && !caller.region.is_empty()).then(|| caller.region.clone())
}

/// The caller's partner organisation, when one of `roles` is theirs and they belong to one:
/// the "partner organisation" rule.
pub fn organisation(caller: &Principal, roles: &[Role]) -> Option<String> {
    (caller.has_any(roles) && !caller.partner_id.is_empty()).then(|| caller.partner_id.clone())
}

impl Scope {
    /// The scope `grants` give `caller`.
    pub fn of(caller: &Principal, grants: &Grants) -> Self {
        Self {
            all: caller.has_any(grants.all),
            owner: own(caller, grants.own),
            region: region(caller, grants.region),
            organisation: organisation(caller, grants.organisation),
            partner: own(caller, grants.partnered),
        }
    }

    /// Whether a row held as `row` is in the scope.
    pub fn permits(&self, row: Holder<'_>) -> bool {
        let matches = |mine: &Option<String>, theirs: &str| {
            mine.as_deref()
                .is_some_and(|m| !theirs.is_empty() && m == theirs)
        };
        self.all
            || matches(&self.owner, row.owner)
            || matches(&self.region, row.region)
            || matches(&self.organisation, row.organisation)
            || matches(&self.partner, row.partner)
    }

    /// Appends ` AND (…)` restricting a query to the scope, on the table's `columns`; nothing
    /// when the scope is everything, and `AND (false)` when it is nothing.
    pub fn push_sql(&self, b: &mut QueryBuilder<Postgres>, columns: Columns) {
        if self.all {
            return;
        }
        b.push(" AND (false");
        for (mine, column) in [
            (&self.owner, columns.owner),
            (&self.region, columns.region),
            (&self.organisation, columns.organisation),
            (&self.partner, columns.partner),
        ] {
            if let (Some(value), Some(column)) = (mine, column) {
                b.push(format!(" OR ({column} = "))
                    .push_bind(value.clone())
                    .push(format!(" AND {column} <> '')"));
            }
        }
        b.push(")");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[&str], region: &str, partner: &str) -> Principal {
        Principal {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            region: region.into(),
            partner_id: partner.into(),
            ..Principal::system("u1")
        }
    }

    const GRANTS: Grants = Grants {
        all: &[Role::Admin],
        own: &[Role::SalesRep],
        region: &[Role::SalesRep],
        organisation: &[Role::Partner],
        partnered: &[Role::TechSupport],
    };

    fn row<'a>(owner: &'a str, region: &'a str, org: &'a str, partner: &'a str) -> Holder<'a> {
        Holder {
            owner,
            region,
            organisation: org,
            partner,
        }
    }

    #[test]
    fn rules_add_up_and_empty_never_matches() {
        let rep = Scope::of(&principal(&["sales_rep"], "华东", ""), &GRANTS);
        assert!(rep.permits(row("u1", "华南", "", "")));
        assert!(rep.permits(row("u2", "华东", "", "")));
        assert!(!rep.permits(row("u2", "华南", "", "")));
        let partner = Scope::of(&principal(&["partner"], "", "p1"), &GRANTS);
        assert!(partner.permits(row("u2", "", "p1", "")));
        assert!(!partner.permits(row("u2", "", "p2", "")));
        assert!(!partner.permits(row("", "", "", "")));
        let unaffiliated = Scope::of(&principal(&["partner"], "", ""), &GRANTS);
        assert_eq!(unaffiliated, Scope::default());
        assert!(!unaffiliated.permits(row("", "", "", "")));
        let ts = Scope::of(&principal(&["tech_support"], "", ""), &GRANTS);
        assert!(ts.permits(row("u2", "", "", "u1")));
        assert!(!ts.permits(row("u1", "", "", "")));
        assert!(Scope::of(&principal(&["admin"], "", ""), &GRANTS).permits(row("", "", "", "")));
    }

    #[test]
    fn the_sql_restriction_names_only_the_granted_columns() {
        let columns = Columns {
            owner: Some("owner_id"),
            region: Some("region"),
            organisation: None,
            partner: Some("tech_partner_id"),
        };
        let mut b = QueryBuilder::<Postgres>::new("SELECT 1 WHERE true");
        Scope::of(&principal(&["sales_rep"], "华东", ""), &GRANTS).push_sql(&mut b, columns);
        assert_eq!(
            b.sql(),
            "SELECT 1 WHERE true AND (false OR (owner_id = $1 AND owner_id <> '') \
             OR (region = $2 AND region <> ''))"
        );
        let mut b = QueryBuilder::<Postgres>::new("SELECT 1 WHERE true");
        Scope::of(&principal(&["admin"], "", ""), &GRANTS).push_sql(&mut b, columns);
        assert_eq!(b.sql(), "SELECT 1 WHERE true");
    }
}
