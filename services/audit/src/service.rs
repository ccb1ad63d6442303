//! Audit as a platform service: the sink every outbox relays to.

use std::time::Duration;

use anyhow::Context as _;
use fitflow_platform::{Service, ServiceContext, ServiceKind, ServiceRoutes, StartFuture};
use fitflow_proto::audit::audit_ingest_service_server::AuditIngestServiceServer;
use fitflow_proto::audit::audit_service_server::AuditServiceServer;
use fitflow_server::{EDGE_PEERS, PeerPolicy, SERVICE_PEERS};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

use crate::{AuditIngest, AuditQuery, MIGRATOR, SCHEMA};

/// Largest ingest batch message (1,000 events).
const MAX_MESSAGE: usize = 8 * 1024 * 1024;
/// How often month partitions are created ahead.
const PARTITION_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// The audit service, for the platform's registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditService;

impl Service for AuditService {
    fn name(&self) -> &'static str {
        SCHEMA
    }

    fn migrations(&self) -> &'static Migrator {
        &MIGRATOR
    }

    /// Operators and the gateway read the trail (the handlers keep
    /// operator-wide reads to the operator peer); only operators verify the
    /// chains; every other FitFlow service (never audit itself) streams its
    /// events in.
    fn peer_policy(&self) -> PeerPolicy {
        let sources: Vec<&str> = SERVICE_PEERS
            .iter()
            .copied()
            .filter(|name| *name != SCHEMA)
            .collect();
        PeerPolicy::new(EDGE_PEERS)
            .allow("/fitflow.audit.v1.AuditIngestService/", &sources)
            .allow(
                "/fitflow.audit.v1.AuditService/VerifyChain",
                &[fitflow_auth::OPERATOR_PEER],
            )
    }

    fn kind(&self) -> ServiceKind {
        ServiceKind::AuditSink
    }

    fn start(&self, context: ServiceContext) -> StartFuture<'_> {
        Box::pin(async move {
            crate::ensure_partitions(&context.pool, chrono::Utc::now())
                .await
                .context("cannot create audit partitions")?;
            context.spawn(maintain_partitions(
                context.pool.clone(),
                context.shutdown.clone(),
            ));
            // Ingest streams end when the service stops, so relays let go and
            // the server can drain.
            Ok(ServiceRoutes::new()
                .add_service(
                    AuditIngestServiceServer::new(
                        AuditIngest::new(context.pool.clone()).with_shutdown(context.shutdown),
                    )
                    .max_decoding_message_size(MAX_MESSAGE),
                )
                .add_service(AuditServiceServer::new(AuditQuery::new(context.pool))))
        })
    }
}

/// Creates the coming months' partitions once a day.
async fn maintain_partitions(pool: PgPool, shutdown: CancellationToken) {
    let mut daily = tokio::time::interval(PARTITION_INTERVAL);
    daily.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = daily.tick() => {}
        }
        if let Err(error) = crate::ensure_partitions(&pool, chrono::Utc::now()).await {
            tracing::error!(%error, "creating audit partitions failed");
        }
    }
}
