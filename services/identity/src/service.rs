//! Identity as a platform service.

use std::sync::Arc;

use fitflow_platform::{Service, ServiceContext, ServiceRoutes, StartFuture};
use fitflow_proto::identity::identity_service_server::IdentityServiceServer;
use fitflow_server::PeerPolicy;
use sqlx::migrate::Migrator;

use crate::structure::Structure;
use crate::{Accounts, IdentityGrpc, Letters, MIGRATOR, RevocationFeed, SERVICE, TokenSigner};

/// Largest request message: accounts are small.
const MAX_MESSAGE: usize = 64 * 1024;

/// The identity service, for the platform's registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentityService;

impl Service for IdentityService {
    fn name(&self) -> &'static str {
        SERVICE
    }

    fn migrations(&self) -> &'static Migrator {
        &MIGRATOR
    }

    fn peer_policy(&self) -> PeerPolicy {
        crate::peer_policy()
    }

    /// Identity authorizes by roles, never by `sup` or `studios`.
    fn refuses_stale_claims(&self) -> bool {
        false
    }

    /// Verification and password-reset codes leave only by mail.
    fn sends_mail(&self) -> bool {
        true
    }

    fn start(&self, context: ServiceContext) -> StartFuture<'_> {
        Box::pin(async move {
            let mailer = context.mail.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "identity mails verification and reset codes: set FITFLOW_SMTP_URL \
                     (smtp://host:port)"
                )
            })?;
            let signer = TokenSigner::new(context.vault.clone())
                .await
                .map_err(|error| {
                    anyhow::anyhow!("cannot prepare the token signing key: {error}")
                })?;
            let tenancy = context.peers.channel("tenancy").map_err(|error| {
                anyhow::anyhow!("cannot prepare the channel to tenancy: {error}")
            })?;
            let (feed, listener) =
                RevocationFeed::new(context.pool.clone(), context.shutdown.clone());
            context.spawn(listener);
            let accounts = Accounts::new(
                context.pool,
                context.system_pool,
                context.keyring,
                Arc::new(signer),
            )
            .with_structure(Structure::new(tenancy))
            .with_revocation_feed(feed);
            Ok(ServiceRoutes::new().add_service(
                IdentityServiceServer::new(IdentityGrpc::new(accounts, Letters::new(mailer)))
                    .max_decoding_message_size(MAX_MESSAGE),
            ))
        })
    }
}
