//! The platform's gRPC contracts, re-exported by package: `crm_proto::customers::v1`.

/// The encoded file descriptor set of every contract (with its imports), for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/crm_descriptor.bin"));

/// `crm.common.v1`: types shared by every service.
pub mod common {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("crm.common.v1");
    }
}

/// `crm.customers.v1`: the customers service.
pub mod customers {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("crm.customers.v1");
    }
}

/// `crm.gateway.v1`: authentication and administration on the gateway.
pub mod gateway {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("crm.gateway.v1");
    }
}

/// `crm.audit.v1`: the audit trail every server keeps.
pub mod audit {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("crm.audit.v1");
    }
}

/// `crm.events.v1`: the event envelope.
pub mod events {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("crm.events.v1");
    }
}

/// `crm.notifications.v1`: the notifications service.
pub mod notifications {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("crm.notifications.v1");
    }
}

/// `crm.tickets.v1`: the hotline ticket service.
pub mod tickets {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("crm.tickets.v1");
    }
}

/// `crm.complaints.v1`: the complaints service.
pub mod complaints {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("crm.complaints.v1");
    }
}

/// `crm.pipeline.v1`: the pipeline service.
pub mod pipeline {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("crm.pipeline.v1");
    }
}

/// `crm.repairs.v1`: the repairs service.
pub mod repairs {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("crm.repairs.v1");
    }
}
