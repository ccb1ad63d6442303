//! The services a build hosts, listed once.

use std::sync::Arc;

use crate::service::Service;
use crate::table::{self, ServiceSpec};

/// Why a registry does not match the table of services.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// A registered service has no row in the table.
    #[error("service {0} is registered but not in deploy/services.tsv")]
    NotInTable(String),
    /// A service is registered twice.
    #[error("service {0} is registered twice")]
    Duplicate(String),
    /// A service's peer policy admits a peer its table row does not list.
    #[error(
        "service {service}'s peer policy admits {peer}, which deploy/services.tsv does not list as a caller"
    )]
    UnlistedCaller {
        /// The service.
        service: String,
        /// The peer admitted.
        peer: String,
    },
}

/// The services this build implements, each registered once.
#[derive(Clone, Default)]
pub struct Registry {
    services: Vec<Arc<dyn Service>>,
}

impl Registry {
    /// A registry of `services`, checked against the table of services.
    pub fn new(services: Vec<Arc<dyn Service>>) -> Result<Self, RegistryError> {
        let registry = Self { services };
        registry.check(table::services_table())?;
        Ok(registry)
    }

    /// Adds `service` (test services use this), checked against the table.
    pub fn with(mut self, service: Arc<dyn Service>) -> Result<Self, RegistryError> {
        self.services.push(service);
        self.check(table::services_table())?;
        Ok(self)
    }

    /// Checks that every service has a row in `table`, is registered once,
    /// and admits only the callers its row lists.
    pub fn check(&self, table: &[ServiceSpec]) -> Result<(), RegistryError> {
        for (index, service) in self.services.iter().enumerate() {
            let name = service.name();
            if self.services[..index]
                .iter()
                .any(|other| other.name() == name)
            {
                return Err(RegistryError::Duplicate(name.to_owned()));
            }
            let spec = table
                .iter()
                .find(|spec| spec.name == name)
                .ok_or_else(|| RegistryError::NotInTable(name.to_owned()))?;
            for peer in service.peer_policy().admitted_peers() {
                if !spec.callers.contains(&peer) {
                    return Err(RegistryError::UnlistedCaller {
                        service: name.to_owned(),
                        peer,
                    });
                }
            }
        }
        Ok(())
    }

    /// The registered service called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Service>> {
        self.services.iter().find(|service| service.name() == name)
    }

    /// Every registered service, in registration order.
    pub fn services(&self) -> &[Arc<dyn Service>] {
        &self.services
    }

    /// The registered names, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.services.iter().map(|service| service.name()).collect()
    }
}
