//! The services this build hosts: one line each. Everything the binary
//! does per service — serve, migrate, health, relays, shutdown order —
//! derives from this list.

use std::sync::Arc;

use fitflow_platform::Registry;

/// Every service this build implements.
pub fn registry() -> Registry {
    Registry::new(vec![
        Arc::new(fitflow_identity::IdentityService),
        Arc::new(fitflow_tenancy::TenancyService),
        Arc::new(fitflow_clients::ClientsService::from_env()),
        Arc::new(fitflow_scheduling::SchedulingService),
        Arc::new(fitflow_documentation::DocumentationService),
        Arc::new(fitflow_billing::BillingService),
        Arc::new(fitflow_audit::AuditService),
    ])
    .expect("the registry matches deploy/services.tsv")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_registry_matches_the_table_of_services() {
        let names = super::registry().names();
        assert_eq!(
            names,
            [
                "identity",
                "tenancy",
                "clients",
                "scheduling",
                "documentation",
                "billing",
                "audit"
            ]
        );
    }
}
