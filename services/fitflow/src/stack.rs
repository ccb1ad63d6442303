//! Hosts any set of services in one process, each on its own mTLS port.
//! Even when they share a process, services reach each other only through
//! their gRPC clients.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use fitflow_auth::{KeySource, PublicKeyEntry, TokenVerifier};
use fitflow_crypto::{KeyRing, TransitKeyKind, Vault};
use fitflow_proto::audit::audit_ingest_service_client::AuditIngestServiceClient;
use fitflow_proto::audit::audit_ingest_service_server::AuditIngestServiceServer;
use fitflow_proto::audit::audit_service_server::AuditServiceServer;
use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_proto::identity::identity_service_server::IdentityServiceServer;
use fitflow_server::tls::{self, TlsPaths};
use fitflow_server::{EDGE_PEERS, GuardLayer, PeerPolicy, SERVICE_PEERS, ServeOptions};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::ServiceName;
use crate::settings::{Served, Settings};

/// How long unwrapped data keys stay in memory.
const DATA_KEY_CACHE_TTL: Duration = Duration::from_secs(300);
/// Largest request message: accounts are small.
const IDENTITY_MAX_MESSAGE: usize = 64 * 1024;
/// Largest ingest batch message (1,000 events).
const AUDIT_MAX_MESSAGE: usize = 8 * 1024 * 1024;
/// Database connections per service.
const POOL_SIZE: u32 = 16;

/// A running set of services.
pub struct Stack {
    /// Where each served service listens.
    pub addrs: BTreeMap<ServiceName, SocketAddr>,
    servers: CancellationToken,
    relays: CancellationToken,
    audit_server: CancellationToken,
    server_tasks: Vec<JoinHandle<()>>,
    relay_tasks: Vec<JoinHandle<()>>,
    audit_tasks: Vec<JoinHandle<()>>,
}

impl Stack {
    /// Starts every service in `settings`. Listeners bind first, so that
    /// services served together call each other at their real addresses.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        fitflow_server::install_crypto_provider();
        fitflow_telemetry::install_propagator();
        let mut listeners = Vec::new();
        let mut endpoints = settings.endpoints.clone();
        let mut addrs = BTreeMap::new();
        for served in &settings.served {
            let listener = TcpListener::bind(served.listen).await.with_context(|| {
                format!("cannot listen on {} for {}", served.listen, served.name)
            })?;
            let addr = listener.local_addr()?;
            endpoints.insert(served.name, format!("https://{addr}"));
            addrs.insert(served.name, addr);
            listeners.push((served.clone(), listener));
        }
        let vault =
            Vault::connect(&settings.vault).context("cannot configure the OpenBao client")?;

        let mut stack = Stack {
            addrs,
            servers: CancellationToken::new(),
            relays: CancellationToken::new(),
            audit_server: CancellationToken::new(),
            server_tasks: Vec::new(),
            relay_tasks: Vec::new(),
            audit_tasks: Vec::new(),
        };
        let context = StartContext {
            tls_dir: settings.tls_dir.clone(),
            vault,
            endpoints,
        };
        for (served, listener) in listeners {
            stack.start_service(&context, served, listener).await?;
        }
        Ok(stack)
    }

    async fn start_service(
        &mut self,
        context: &StartContext,
        served: Served,
        listener: TcpListener,
    ) -> anyhow::Result<()> {
        let name = served.name;
        let service = name.as_str();
        let paths = TlsPaths::in_dir(&context.tls_dir, service);
        let (tls_config, cert_resolver) =
            tls::server_config(&paths).with_context(|| format!("TLS for {service}"))?;
        let pool = fitflow_db::connect(&served.database_url, service, POOL_SIZE)
            .await
            .with_context(|| format!("cannot connect {service} to PostgreSQL"))?;
        let verifier = Arc::new(TokenVerifier::new(identity_key_source(context, &paths)?));

        let (routes, policy, grpc_services, shutdown) = match name {
            ServiceName::Identity => {
                let routes = identity_routes(context, pool.clone()).await?;
                (
                    routes,
                    fitflow_identity::peer_policy(),
                    fitflow_identity::GRPC_SERVICES.to_vec(),
                    self.servers.clone(),
                )
            }
            ServiceName::Audit => {
                fitflow_audit::ensure_partitions(&pool, chrono::Utc::now())
                    .await
                    .context("cannot create audit partitions")?;
                self.audit_tasks.push(spawn_partition_maintenance(
                    pool.clone(),
                    self.audit_server.clone(),
                ));
                (
                    audit_routes(pool.clone(), self.audit_server.clone()),
                    audit_policy(),
                    AUDIT_GRPC_SERVICES.to_vec(),
                    self.audit_server.clone(),
                )
            }
            other => anyhow::bail!("the {other} service is not implemented in this build"),
        };
        if name != ServiceName::Audit {
            let audit = fitflow_server::client::channel(
                &context.endpoints[&ServiceName::Audit],
                "audit",
                &paths,
            )?;
            let client =
                AuditIngestServiceClient::new(audit).max_decoding_message_size(AUDIT_MAX_MESSAGE);
            self.relay_tasks.push(fitflow_outbox::spawn_relay(
                pool,
                client,
                self.relays.clone(),
            ));
        }
        let options = ServeOptions {
            service,
            grpc_services,
            tls: tls_config,
            cert_resolver,
            guard: GuardLayer::new(service, policy, Some(verifier)),
            concurrency_per_connection: 256,
            request_timeout: Duration::from_secs(30),
        };
        let task = tokio::spawn(async move {
            if let Err(error) = fitflow_server::serve(listener, routes, options, shutdown).await {
                tracing::error!(service, %error, "server stopped with an error");
            }
        });
        if name == ServiceName::Audit {
            self.audit_tasks.push(task);
        } else {
            self.server_tasks.push(task);
        }
        Ok(())
    }

    /// Stops gracefully: other servers drain first, then the outbox relays
    /// flush to audit, and audit stops last so the flush can land.
    pub async fn shutdown(self) {
        self.servers.cancel();
        for task in self.server_tasks {
            let _ = task.await;
        }
        self.relays.cancel();
        for task in self.relay_tasks {
            let _ = task.await;
        }
        self.audit_server.cancel();
        for task in self.audit_tasks {
            let _ = task.await;
        }
    }

    /// Stops only the audit server (tests use this to take audit down while
    /// the others keep writing).
    pub fn audit_shutdown_token(&self) -> CancellationToken {
        self.audit_server.clone()
    }
}

struct StartContext {
    tls_dir: std::path::PathBuf,
    vault: Vault,
    endpoints: BTreeMap<ServiceName, String>,
}

const AUDIT_GRPC_SERVICES: &[&str] = &[
    "fitflow.audit.v1.AuditIngestService",
    "fitflow.audit.v1.AuditService",
];

fn audit_policy() -> PeerPolicy {
    let sources: Vec<&str> = SERVICE_PEERS
        .iter()
        .copied()
        .filter(|name| *name != "audit")
        .collect();
    PeerPolicy::new(EDGE_PEERS).allow("/fitflow.audit.v1.AuditIngestService/", &sources)
}

/// Audit's services. Ingest streams end when `shutdown` is cancelled, so
/// relays let go and the server can drain.
fn audit_routes(pool: PgPool, shutdown: CancellationToken) -> Routes {
    Routes::new(
        AuditIngestServiceServer::new(
            fitflow_audit::AuditIngest::new(pool.clone()).with_shutdown(shutdown),
        )
        .max_decoding_message_size(AUDIT_MAX_MESSAGE),
    )
    .add_service(AuditServiceServer::new(fitflow_audit::AuditQuery::new(
        pool,
    )))
}

async fn identity_routes(context: &StartContext, pool: PgPool) -> anyhow::Result<Routes> {
    let kek = format!("fitflow-{}", fitflow_identity::SERVICE);
    context
        .vault
        .ensure_transit_key(&kek, TransitKeyKind::Aes256Gcm96)
        .await
        .context("cannot prepare identity's transit key")?;
    let keyring = KeyRing::new(
        context.vault.clone(),
        pool.clone(),
        fitflow_identity::SERVICE,
        DATA_KEY_CACHE_TTL,
    );
    let signer = fitflow_identity::TokenSigner::new(context.vault.clone())
        .await
        .map_err(|error| anyhow::anyhow!("cannot prepare the token signing key: {error}"))?;
    let accounts = fitflow_identity::Accounts::new(pool, keyring, Arc::new(signer));
    Ok(Routes::new(
        IdentityServiceServer::new(fitflow_identity::IdentityGrpc::new(accounts))
            .max_decoding_message_size(IDENTITY_MAX_MESSAGE),
    ))
}

/// Token keys come from identity's `ListPublicKeys` over mTLS, as any
/// service would fetch them, carrying the caller's trace context.
fn identity_key_source(context: &StartContext, paths: &TlsPaths) -> anyhow::Result<KeySource> {
    let channel = fitflow_server::client::channel(
        &context.endpoints[&ServiceName::Identity],
        "identity",
        paths,
    )?;
    let client = IdentityServiceClient::new(fitflow_server::client::traced(channel));
    Ok(Arc::new(move || {
        let mut client = client.clone();
        Box::pin(async move {
            let mut request =
                tonic::Request::new(fitflow_proto::identity::ListPublicKeysRequest {});
            request.set_timeout(Duration::from_secs(5));
            let response = client
                .list_public_keys(request)
                .await
                .map_err(|status| format!("ListPublicKeys failed: {}", status.code()))?;
            Ok(response
                .into_inner()
                .keys
                .into_iter()
                .map(|key| PublicKeyEntry {
                    key_id: key.key_id,
                    public_key: key.public_key,
                })
                .collect())
        })
    }))
}

fn spawn_partition_maintenance(pool: PgPool, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut daily = tokio::time::interval(Duration::from_secs(24 * 60 * 60));
        daily.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = daily.tick() => {}
            }
            if let Err(error) = fitflow_audit::ensure_partitions(&pool, chrono::Utc::now()).await {
                tracing::error!(%error, "creating audit partitions failed");
            }
        }
    })
}
