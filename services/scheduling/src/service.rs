//! Scheduling as a platform service.

use fitflow_platform::{Service, ServiceContext, ServiceRoutes, StartFuture};
use fitflow_proto::scheduling::scheduling_service_server::SchedulingServiceServer;
use fitflow_server::PeerPolicy;
use sqlx::migrate::Migrator;

use crate::notify::NotifySettings;
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

    /// Bookings, waitlist promotions, cancellations and reminders are
    /// mailed to the client.
    fn sends_mail(&self) -> bool {
        true
    }

    fn start(&self, context: ServiceContext) -> StartFuture<'_> {
        Box::pin(async move {
            let settings = NotifySettings::from_env()?;
            let mailer = context.mail.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "scheduling mails clients their bookings and reminders: set FITFLOW_SMTP_URL (smtp://host:port)"
                )
            })?;
            let channel = |peer: &'static str| {
                context.peers.channel(peer).map_err(|error| {
                    anyhow::anyhow!("cannot prepare the channel to {peer}: {error}")
                })
            };
            let clients = ClientAccess::new(channel("clients")?);
            let calendar = Calendar::new(
                context.pool.clone(),
                context.system_pool.clone(),
                clients.clone(),
                TrainerZones::new(channel("tenancy")?),
            );
            calendar.ensure_partitions().await?;
            // The notification relay (one leader per schema) and the
            // reminder sweep (every replica; each reminder is recorded once).
            context.spawn(crate::notify::run_relay(
                context.system_pool.clone(),
                clients,
                mailer,
                context.shutdown.clone(),
            ));
            context.spawn(crate::notify::run_sweeper(
                context.system_pool.clone(),
                settings,
                context.shutdown.clone(),
            ));
            Ok(ServiceRoutes::new().add_service(
                SchedulingServiceServer::new(SchedulingGrpc::new(calendar))
                    .max_decoding_message_size(MAX_MESSAGE),
            ))
        })
    }
}
