//! The seven FitFlow services by name, with their ports and schemas.

use std::fmt;

/// A FitFlow service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum ServiceName {
    /// Accounts and tokens.
    Identity,
    /// Trainers, studios, contracts.
    Tenancy,
    /// Client records.
    Clients,
    /// Classes and appointments.
    Scheduling,
    /// Session notes and training plans.
    Documentation,
    /// Invoices, payments, tax.
    Billing,
    /// The audit trail.
    Audit,
}

impl ServiceName {
    /// Every service, in port order.
    pub const ALL: [ServiceName; 7] = [
        ServiceName::Identity,
        ServiceName::Tenancy,
        ServiceName::Clients,
        ServiceName::Scheduling,
        ServiceName::Documentation,
        ServiceName::Billing,
        ServiceName::Audit,
    ];

    /// The services this build implements; `serve all` serves these.
    pub const IMPLEMENTED: [ServiceName; 2] = [ServiceName::Identity, ServiceName::Audit];

    /// The lower-case name: peer name, schema and audit source.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Identity => "identity",
            ServiceName::Tenancy => "tenancy",
            ServiceName::Clients => "clients",
            ServiceName::Scheduling => "scheduling",
            ServiceName::Documentation => "documentation",
            ServiceName::Billing => "billing",
            ServiceName::Audit => "audit",
        }
    }

    /// The fixed default port operators and scripts rely on.
    pub fn default_port(self) -> u16 {
        match self {
            ServiceName::Identity => 50051,
            ServiceName::Tenancy => 50052,
            ServiceName::Clients => 50053,
            ServiceName::Scheduling => 50054,
            ServiceName::Documentation => 50055,
            ServiceName::Billing => 50056,
            ServiceName::Audit => 50057,
        }
    }

    /// The service's environment variable with `suffix`, e.g. `FITFLOW_IDENTITY_DATABASE_URL`.
    pub fn env_var(self, suffix: &str) -> String {
        format!("FITFLOW_{}_{suffix}", self.as_str().to_uppercase())
    }

    /// Whether this build implements the service.
    pub fn is_implemented(self) -> bool {
        Self::IMPLEMENTED.contains(&self)
    }

    /// The service's migrations, if implemented.
    pub fn migrator(self) -> Option<&'static sqlx::migrate::Migrator> {
        match self {
            ServiceName::Identity => Some(&fitflow_identity::MIGRATOR),
            ServiceName::Audit => Some(&fitflow_audit::MIGRATOR),
            _ => None,
        }
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
