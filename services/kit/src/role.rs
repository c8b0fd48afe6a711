//! The roles of the domain brief, one type for every service (issue 15): a role is a
//! [`Role`], not a string literal, wherever code decides by role; tokens, the gateway's users
//! and the policy file carry their names (`Role::as_str`).

/// A role of the domain brief.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Collects customer data and imports it (拓展部 / 软件部).
    DataClerk,
    /// Owns customers and works the pipeline.
    SalesRep,
    /// Assigns customers, decides partner changes.
    SalesManager,
    /// A customer's technical-support partner.
    TechSupport,
    /// Takes hotline calls and opens tickets.
    HotlineAgent,
    /// Filters hand-offs and escalations, dispatches.
    HotlineEngineer,
    /// Prepares spare parts and dispatches.
    Coordinator,
    /// Works tickets on site or in the workshop.
    Engineer,
    /// Works escalations routed to its departments.
    TechCenter,
    /// Handles complaints.
    ComplaintOfficer,
    /// A service manager: supervises queues and SLAs.
    Supervisor,
    /// Records payments.
    Finance,
    /// Runs the CRM: templates, reports, return visits.
    CrmLead,
    /// A partner repair centre's user or API key.
    Partner,
    /// Administers the platform.
    Admin,
}

impl Role {
    /// Every role, in the brief's order.
    pub const ALL: [Role; 15] = [
        Role::DataClerk,
        Role::SalesRep,
        Role::SalesManager,
        Role::TechSupport,
        Role::HotlineAgent,
        Role::HotlineEngineer,
        Role::Coordinator,
        Role::Engineer,
        Role::TechCenter,
        Role::ComplaintOfficer,
        Role::Supervisor,
        Role::Finance,
        Role::CrmLead,
        Role::Partner,
        Role::Admin,
    ];

    /// Its name in tokens, users and the policy (`hotline_engineer`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::DataClerk => "data_clerk",
            Role::SalesRep => "sales_rep",
            Role::SalesManager => "sales_manager",
            Role::TechSupport => "tech_support",
            Role::HotlineAgent => "hotline_agent",
            Role::HotlineEngineer => "hotline_engineer",
            Role::Coordinator => "coordinator",
            Role::Engineer => "engineer",
            Role::TechCenter => "tech_center",
            Role::ComplaintOfficer => "complaint_officer",
            Role::Supervisor => "supervisor",
            Role::Finance => "finance",
            Role::CrmLead => "crm_lead",
            Role::Partner => "partner",
            Role::Admin => "admin",
        }
    }

    /// The role named `name`, if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The names of every role, in the brief's order.
pub const NAMES: [&str; 15] = {
    let mut names = [""; 15];
    let mut i = 0;
    while i < Role::ALL.len() {
        names[i] = Role::ALL[i].as_str();
        i += 1;
    }
    names
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("superuser"), None);
        assert_eq!(NAMES.len(), Role::ALL.len());
    }
}
