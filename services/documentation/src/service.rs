//! Documentation as a platform service.

use std::time::Duration;

use fitflow_crypto::SubjectKeys;
use fitflow_platform::{Service, ServiceContext, ServiceRoutes, StartFuture};
use fitflow_proto::documentation::documentation_service_server::DocumentationServiceServer;
use fitflow_server::PeerPolicy;
use sqlx::migrate::Migrator;

use crate::seal::Sealer;
use crate::{DocumentationGrpc, MIGRATOR, Peers, Records, SERVICE};

/// Largest request message: a note with a hundred exercises, or a two-year
/// plan, fits well within it.
const MAX_MESSAGE: usize = 1024 * 1024;
/// How long a client's key stays cached: a purge by the clients service
/// reaches this process within this time.
const SUBJECT_KEY_TTL: Duration = Duration::from_secs(60);
/// The kind of subject whose keys seal documentation: the clients service's.
const CLIENT_KEYS: &str = "clients";

/// The documentation service, for the platform's registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct DocumentationService;

impl Service for DocumentationService {
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
            let channel = |peer: &'static str| {
                context.peers.channel(peer).map_err(|error| {
                    anyhow::anyhow!("cannot prepare the channel to {peer}: {error}")
                })
            };
            let peers = Peers::new(
                channel("clients")?,
                channel("scheduling")?,
                channel("tenancy")?,
            );
            let sealer = Sealer::new(SubjectKeys::new(
                context.vault.clone(),
                CLIENT_KEYS,
                SUBJECT_KEY_TTL,
            ));
            let records = Records::new(context.pool, context.system_pool, peers, sealer);
            Ok(ServiceRoutes::new().add_service(
                DocumentationServiceServer::new(DocumentationGrpc::new(records))
                    .max_decoding_message_size(MAX_MESSAGE),
            ))
        })
    }
}
