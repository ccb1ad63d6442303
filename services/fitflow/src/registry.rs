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
    use std::collections::BTreeMap;
    use std::path::Path;

    use fitflow_platform::drift;

    #[test]
    fn every_service_that_sends_mail_is_deployed_with_an_smtp_server() {
        let registry = super::registry();
        let senders: Vec<&str> = registry
            .services()
            .iter()
            .filter(|service| service.sends_mail())
            .map(|service| service.name())
            .collect();
        assert_eq!(senders, ["identity", "tenancy", "scheduling"]);
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let files: BTreeMap<String, String> = [drift::K8S_BASE, drift::DEV_UP]
            .into_iter()
            .map(|path| {
                let text = std::fs::read_to_string(root.join(path))
                    .unwrap_or_else(|error| panic!("read {path}: {error}"));
                (path.to_owned(), text)
            })
            .collect();
        let drifts = drift::check_mail(&senders, &files);
        assert!(drifts.is_empty(), "{drifts:?}");
    }

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
