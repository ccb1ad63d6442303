//! Hosts any set of registered services in one process, each on its own
//! mTLS port. Even when they share a process, services reach each other only
//! through their gRPC clients. Nothing here names a service: what to start,
//! what to relay and in which order to stop all come from the [`Registry`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use fitflow_auth::{KeySource, PublicKeyEntry, TokenVerifier};
use fitflow_crypto::{KeyRing, TransitKeyKind, Vault};
use fitflow_proto::audit::audit_ingest_service_client::AuditIngestServiceClient;
use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_server::tls::{self, TlsPaths};
use fitflow_server::{GuardLayer, ServeOptions};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::registry::Registry;
use crate::service::{PeerClients, Service, ServiceContext, ServiceKind};
use crate::settings::{Served, Settings};

/// How long unwrapped data keys stay in memory.
const DATA_KEY_CACHE_TTL: Duration = Duration::from_secs(300);
/// Largest message the audit service answers a relay with.
const AUDIT_MAX_MESSAGE: usize = 8 * 1024 * 1024;
/// The service that issues user tokens and publishes their keys.
const TOKEN_ISSUER: &str = "identity";
/// The service whose structure (`GetActingFor`) completes truncated tokens.
const STRUCTURE_AUTHORITY: &str = "tenancy";
/// The service that receives every outbox's audit events.
const AUDIT_SINK: &str = "audit";

/// What stops together, in order: producers' servers and background tasks,
/// then the outbox relays (their final flush), then the audit sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Producers,
    Relays,
    Sink,
}

const SHUTDOWN_ORDER: [Phase; 3] = [Phase::Producers, Phase::Relays, Phase::Sink];

/// Tasks that stop together when their token is cancelled.
#[derive(Default)]
struct TaskGroup {
    token: CancellationToken,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TaskGroup {
    fn push(&self, handle: JoinHandle<()>) {
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(handle);
    }

    async fn stop(self) {
        self.token.cancel();
        let handles = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for handle in handles {
            let _ = handle.await;
        }
    }
}

/// A running set of services.
pub struct Stack {
    /// Where each served service listens.
    pub addrs: BTreeMap<&'static str, SocketAddr>,
    groups: BTreeMap<Phase, TaskGroup>,
}

impl Stack {
    /// Binds every served service's listener, then starts them.
    pub async fn start(registry: &Registry, settings: Settings) -> anyhow::Result<Self> {
        let mut listeners = Vec::new();
        for served in &settings.served {
            let listener = TcpListener::bind(served.listen).await.with_context(|| {
                format!("cannot listen on {} for {}", served.listen, served.name)
            })?;
            listeners.push(listener);
        }
        Self::start_on(registry, settings, listeners).await
    }

    /// Starts the served services on listeners the caller has already bound
    /// (in the order of `settings.served`), so that tests never race for a
    /// free port. Services served together call each other at their real
    /// addresses.
    pub async fn start_on(
        registry: &Registry,
        mut settings: Settings,
        listeners: Vec<TcpListener>,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            listeners.len() == settings.served.len(),
            "one listener per served service"
        );
        fitflow_server::install_crypto_provider();
        fitflow_telemetry::install_propagator();
        let mut addrs = BTreeMap::new();
        for (served, listener) in settings.served.iter().zip(&listeners) {
            let addr = listener.local_addr()?;
            settings
                .endpoints
                .insert(served.name, format!("https://{addr}"));
            addrs.insert(served.name, addr);
        }
        let vault =
            Vault::connect(&settings.vault).context("cannot configure the OpenBao client")?;
        let mut stack = Stack {
            addrs,
            groups: SHUTDOWN_ORDER
                .into_iter()
                .map(|phase| (phase, TaskGroup::default()))
                .collect(),
        };
        let endpoints = Arc::new(settings.endpoints.clone());
        for (served, listener) in settings.served.iter().zip(listeners) {
            let service = registry.get(served.name).with_context(|| {
                format!(
                    "the {} service is not implemented in this build",
                    served.name
                )
            })?;
            stack
                .start_service(
                    service.as_ref(),
                    served,
                    listener,
                    &settings,
                    &vault,
                    &endpoints,
                )
                .await
                .with_context(|| format!("cannot start {}", served.name))?;
        }
        Ok(stack)
    }

    async fn start_service(
        &mut self,
        service: &dyn Service,
        served: &Served,
        listener: TcpListener,
        settings: &Settings,
        vault: &Vault,
        endpoints: &Arc<BTreeMap<&'static str, String>>,
    ) -> anyhow::Result<()> {
        let name = service.name();
        if service.sends_mail() && settings.mail.is_none() {
            anyhow::bail!(
                "{name} sends mail and does not start without a mail server: set {} \
                 (smtp://host:port)",
                crate::settings::SMTP_URL_VAR
            );
        }
        let paths = TlsPaths::in_dir(&settings.tls_dir, name);
        let (tls_config, cert_resolver) = tls::server_config(&paths).context("TLS")?;
        let pool = fitflow_db::connect(&served.database_url, name, settings.pools.runtime)
            .await
            .context("cannot connect to PostgreSQL")?;
        let system_pool =
            fitflow_db::connect_system(&served.system_database_url, name, settings.pools.system)
                .await
                .context("cannot connect to PostgreSQL as the service's system role")?;
        vault
            .ensure_transit_key(&format!("fitflow-{name}"), TransitKeyKind::Aes256Gcm96)
            .await
            .context("cannot prepare the service's transit key")?;
        let peers = PeerClients {
            own_tls: paths.clone(),
            endpoints: Arc::clone(endpoints),
        };
        // One connection to identity carries both the key fetches and the
        // revocation stream.
        let issuer = peers.channel(TOKEN_ISSUER)?;
        let mut verifier = TokenVerifier::new(issuer_key_source(issuer.clone()));
        // A service that authorizes from the structure claims completes a
        // truncated token from their authority; the authority itself reads
        // its own tables, and identity authorizes by roles.
        if service.refuses_stale_claims() && name != STRUCTURE_AUTHORITY {
            verifier = verifier.with_structure(crate::structure::tenancy_source(
                peers.channel(STRUCTURE_AUTHORITY)?,
            ));
        }
        let (verifier, revocations) = verifier.with_revocations(
            crate::revocations::identity_source(issuer),
            service.refuses_stale_claims(),
        );
        let verifier = Arc::new(verifier);
        let phase = match service.kind() {
            ServiceKind::Producer => Phase::Producers,
            ServiceKind::AuditSink => Phase::Sink,
        };
        let group = &self.groups[&phase];
        // Followed for as long as the service serves (identity too follows
        // its own stream, so it refuses exactly what every service does).
        group.push(tokio::spawn(
            revocations.run(group.token.clone().cancelled_owned()),
        ));
        let context = ServiceContext {
            name,
            pool: pool.clone(),
            system_pool,
            vault: vault.clone(),
            keyring: KeyRing::new(vault.clone(), pool.clone(), name, DATA_KEY_CACHE_TTL),
            verifier: Arc::clone(&verifier),
            peers: peers.clone(),
            mail: match &settings.mail {
                Some(mail) => {
                    Some(fitflow_mail::Mailer::new(mail).context("cannot configure the mailer")?)
                }
                None => None,
            },
            shutdown: group.token.clone(),
            tasks: Arc::clone(&group.tasks),
        };
        let routes = service.start(context).await?;

        if service.kind() == ServiceKind::Producer {
            let audit = peers.channel(AUDIT_SINK)?;
            let client =
                AuditIngestServiceClient::new(audit).max_decoding_message_size(AUDIT_MAX_MESSAGE);
            let relays = &self.groups[&Phase::Relays];
            relays.push(fitflow_outbox::spawn_relay(
                pool.clone(),
                client,
                relays.token.clone(),
            ));
            let command_peers = peers.clone();
            let channels: fitflow_outbox::command::Channels = Arc::new(move |target: &str| {
                command_peers
                    .channel(target)
                    .map_err(|error| error.to_string())
            });
            relays.push(fitflow_outbox::spawn_command_relay(
                pool,
                channels,
                relays.token.clone(),
            ));
        }
        let options = ServeOptions {
            service: name,
            grpc_services: routes.names.clone(),
            extra_descriptors: routes.descriptors.clone(),
            tls: tls_config,
            cert_resolver,
            guard: GuardLayer::new(name, service.peer_policy(), Some(verifier)),
            concurrency_per_connection: 256,
            request_timeout: Duration::from_secs(30),
        };
        let shutdown = group.token.clone();
        group.push(tokio::spawn(async move {
            if let Err(error) =
                fitflow_server::serve(listener, routes.routes, options, shutdown).await
            {
                tracing::error!(service = name, %error, "server stopped with an error");
            }
        }));
        Ok(())
    }

    /// Stops gracefully, phase by phase: producers drain first, then the
    /// outbox relays flush to audit, and audit stops last so the flush lands.
    pub async fn shutdown(mut self) {
        for phase in SHUTDOWN_ORDER {
            if let Some(group) = self.groups.remove(&phase) {
                group.stop().await;
            }
        }
    }

    /// Stops only the audit sink when cancelled (tests use this to take audit
    /// down while the others keep writing).
    pub fn audit_shutdown_token(&self) -> CancellationToken {
        self.groups[&Phase::Sink].token.clone()
    }
}

/// Token keys come from the issuer's `ListPublicKeys` over mTLS, as any
/// service fetches them, carrying the caller's trace context.
fn issuer_key_source(channel: tonic::transport::Channel) -> KeySource {
    let client = IdentityServiceClient::new(fitflow_server::client::traced(channel));
    Arc::new(move || {
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
    })
}
