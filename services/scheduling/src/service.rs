//! Scheduling as a platform service.

use fitflow_platform::{Service, ServiceContext, ServiceRoutes, StartFuture};
use fitflow_proto::scheduling::scheduling_service_server::SchedulingServiceServer;
use fitflow_server::PeerPolicy;
use sqlx::migrate::Migrator;

use crate::{Calendar, ClientAccess, MIGRATOR, SERVICE, SchedulingGrpc, TrainerZones};

/// Largest request message: bookings are small.
const MAX_MESSAGE: usize = 64 * 1024;

/// The scheduling service, for the platform's registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct SchedulingService;

impl Service for SchedulingService {
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
            let calendar = Calendar::new(
                context.pool.clone(),
                context.system_pool.clone(),
                ClientAccess::new(channel("clients")?),
                TrainerZones::new(channel("tenancy")?),
            );
            calendar.ensure_partitions().await?;
            Ok(ServiceRoutes::new().add_service(
                SchedulingServiceServer::new(SchedulingGrpc::new(calendar))
                    .max_decoding_message_size(MAX_MESSAGE),
            ))
        })
    }
}
