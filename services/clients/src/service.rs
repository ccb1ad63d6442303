//! Clients as a platform service.

use std::time::Duration;

use fitflow_crypto::SubjectKeys;
use fitflow_platform::{Service, ServiceContext, ServiceRoutes, StartFuture};
use fitflow_proto::clients::clients_service_server::ClientsServiceServer;
use fitflow_server::PeerPolicy;
use sqlx::migrate::Migrator;

use crate::{
    Appointments, ClientBook, ClientsGrpc, Documentation, Invoices, MIGRATOR, Peers, SERVICE,
    Trainers,
};

/// Largest request message: a client record is small.
const MAX_MESSAGE: usize = 256 * 1024;
/// How long a client's key stays cached: a purge in another process reaches
/// this one within this time.
const SUBJECT_KEY_TTL: Duration = Duration::from_secs(60);
/// The environment variable of the purge retention period, in days.
pub(crate) const RETENTION_VAR: &str = "FITFLOW_CLIENTS_PURGE_RETENTION_DAYS";
/// The retention period when the variable is unset.
const DEFAULT_RETENTION_DAYS: i64 = 30;

/// The clients service, for the platform's registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientsService {
    /// The retention period; `None` reads [`RETENTION_VAR`] at start.
    retention: Option<chrono::Duration>,
}

impl ClientsService {
    /// Reads the retention period from the environment when it starts.
    pub fn from_env() -> Self {
        Self { retention: None }
    }

    /// A fixed retention period (tests purge without waiting 30 days).
    pub fn with_retention(retention: chrono::Duration) -> Self {
        Self {
            retention: Some(retention),
        }
    }

    fn retention(&self) -> anyhow::Result<chrono::Duration> {
        if let Some(retention) = self.retention {
            return Ok(retention);
        }
        let days = match std::env::var(RETENTION_VAR) {
            Ok(value) => value
                .parse::<i64>()
                .ok()
                .filter(|days| (0..=36_500).contains(days))
                .ok_or_else(|| {
                    anyhow::anyhow!("{RETENTION_VAR} must be a number of days from 0 to 36500")
                })?,
            Err(_) => DEFAULT_RETENTION_DAYS,
        };
        Ok(chrono::Duration::days(days))
    }
}

impl Service for ClientsService {
    fn name(&self) -> &'static str {
        SERVICE
    }

    fn migrations(&self) -> &'static Migrator {
        &MIGRATOR
    }

    fn peer_policy(&self) -> PeerPolicy {
        crate::peer_policy()
    }

    fn start(&self, context: ServiceContext) -> StartFuture<'_> {
        Box::pin(async move {
            let retention = self.retention()?;
            let subjects = SubjectKeys::new(context.vault.clone(), SERVICE, SUBJECT_KEY_TTL);
            let channel = |peer: &str| {
                context.peers.channel(peer).map_err(|error| {
                    anyhow::anyhow!("cannot prepare the channel to {peer}: {error}")
                })
            };
            let peers = Peers {
                appointments: Appointments::new(channel("scheduling")?),
                documentation: Documentation::new(channel("documentation")?),
                invoices: Invoices::new(channel("billing")?),
                trainers: Trainers::new(channel("identity")?, channel("tenancy")?),
            };
            let book = ClientBook::new(
                context.pool,
                context.system_pool,
                peers,
                subjects,
                context.keyring,
                retention,
            );
            Ok(ServiceRoutes::new().add_service(
                ClientsServiceServer::new(ClientsGrpc::new(book))
                    .max_decoding_message_size(MAX_MESSAGE),
            ))
        })
    }
}
