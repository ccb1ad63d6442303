//! Tenancy as a platform service.

use fitflow_platform::{Service, ServiceContext, ServiceRoutes, StartFuture};
use fitflow_proto::tenancy::tenancy_service_server::TenancyServiceServer;
use fitflow_server::PeerPolicy;
use sqlx::migrate::Migrator;

use crate::{Accounts, Directory, Letters, MIGRATOR, SERVICE, TenancyGrpc};

/// Largest request message: profiles and studios are small.
const MAX_MESSAGE: usize = 64 * 1024;

/// The tenancy service, for the platform's registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct TenancyService;

impl Service for TenancyService {
    fn name(&self) -> &'static str {
        SERVICE
    }

    fn migrations(&self) -> &'static Migrator {
        &MIGRATOR
    }

    fn peer_policy(&self) -> PeerPolicy {
        crate::peer_policy()
    }

    /// Tenancy is the structure's authority: it checks who acts for whom
    /// in its own tables, never in the token's claims.
    fn refuses_stale_claims(&self) -> bool {
        false
    }

    /// Team and contract invitations are mailed to the invitee.
    fn sends_mail(&self) -> bool {
        true
    }

    fn start(&self, context: ServiceContext) -> StartFuture<'_> {
        Box::pin(async move {
            let mailer = context.mail.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "tenancy mails invitations: set FITFLOW_SMTP_URL (smtp://host:port)"
                )
            })?;
            let identity = context.peers.channel("identity").map_err(|error| {
                anyhow::anyhow!("cannot prepare the channel to identity: {error}")
            })?;
            let accounts = Accounts::new(identity);
            let letters = Letters::new(mailer, accounts.clone());
            let directory = Directory::new(
                context.pool,
                context.system_pool,
                context.keyring,
                accounts,
                letters,
            );
            Ok(ServiceRoutes::new().add_service(
                TenancyServiceServer::new(TenancyGrpc::new(directory))
                    .max_decoding_message_size(MAX_MESSAGE),
            ))
        })
    }
}
