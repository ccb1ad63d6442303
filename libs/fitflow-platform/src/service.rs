//! The trait every FitFlow service implements, and what it is given to start.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use fitflow_auth::TokenVerifier;
use fitflow_crypto::{KeyRing, Vault};
use fitflow_db::SystemPool;
use fitflow_server::PeerPolicy;
use fitflow_server::client::ClientError;
use fitflow_server::tls::TlsPaths;
use futures::future::BoxFuture;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::Channel;

/// What [`Service::start`] returns.
pub type StartFuture<'a> = BoxFuture<'a, anyhow::Result<ServiceRoutes>>;

/// Where a service stands in the shutdown order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServiceKind {
    /// An ordinary service: writes audit events to its outbox, which the
    /// platform relays; stops first.
    Producer,
    /// The audit service: receives every other service's events, has no
    /// relay of its own, and stops last so the others' final flush lands.
    AuditSink,
}

/// A FitFlow service, as the platform hosts it.
pub trait Service: Send + Sync + 'static {
    /// Its name in the table of services (`deploy/services.tsv`).
    fn name(&self) -> &'static str;

    /// Its own reversible migrations (the platform's are applied first).
    fn migrations(&self) -> &'static Migrator;

    /// Which mTLS peers may call which of its RPCs.
    fn peer_policy(&self) -> PeerPolicy;

    /// Its place in the shutdown order.
    fn kind(&self) -> ServiceKind {
        ServiceKind::Producer
    }

    /// Whether it authorizes from the token's structure claims (`sup`,
    /// `studios`): its verifier then refuses tokens whose claims went stale
    /// (TOKEN_STALE) and completes a token that says `claims_truncated` from
    /// tenancy's `GetActingFor` (cached ≤ 2 s). One that never reads them
    /// (tenancy keeps the structure itself, identity checks roles only) says
    /// false, so a structure change costs its callers no refresh there.
    fn refuses_stale_claims(&self) -> bool {
        true
    }

    /// Whether it sends mail: the platform then refuses to start it without
    /// an SMTP server (`FITFLOW_SMTP_URL`), and the deployment files must
    /// name one (a test checks them against the registry).
    fn sends_mail(&self) -> bool {
        false
    }

    /// Builds its gRPC services from `context`. Long-running work goes
    /// through [`ServiceContext::spawn`] so that shutdown waits for it.
    fn start(&self, context: ServiceContext) -> StartFuture<'_>;
}

/// Everything a service needs to start, prepared by the platform.
#[derive(Clone)]
pub struct ServiceContext {
    /// The service's name.
    pub name: &'static str,
    /// Its runtime role's pool, `search_path` pinned to its schema.
    pub pool: PgPool,
    /// Its system role's pool, for the service's own work.
    pub system_pool: SystemPool,
    /// The OpenBao client.
    pub vault: Vault,
    /// Its per-tenant data keys (transit key `fitflow-<name>`, table `data_keys`).
    pub keyring: KeyRing,
    /// Verifies user tokens with identity's published keys.
    pub verifier: Arc<TokenVerifier>,
    /// mTLS channels to the other services.
    pub peers: PeerClients,
    /// Sends mail, when the settings name an SMTP server.
    pub mail: Option<fitflow_mail::Mailer>,
    /// Cancelled when the service must stop.
    pub shutdown: CancellationToken,
    pub(crate) tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl ServiceContext {
    /// Runs `task` in the background; shutdown cancels [`Self::shutdown`]
    /// and waits for it to return.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(handle);
    }
}

/// mTLS channels from one service to the others, presenting its own certificate.
#[derive(Debug, Clone)]
pub struct PeerClients {
    pub(crate) own_tls: TlsPaths,
    pub(crate) endpoints: Arc<BTreeMap<&'static str, String>>,
}

impl PeerClients {
    /// A lazily-connecting channel to `service` (its TLS name is its name).
    pub fn channel(&self, service: &str) -> Result<Channel, ClientError> {
        let endpoint = self
            .endpoints
            .get(service)
            .ok_or_else(|| ClientError::Endpoint(format!("no endpoint for {service}")))?;
        fitflow_server::client::channel(endpoint, service, &self.own_tls)
    }
}

/// A service's tonic routes and the names health reports them under, both
/// taken from the generated servers themselves (`NamedService::NAME`).
#[derive(Debug, Default)]
pub struct ServiceRoutes {
    pub(crate) routes: Routes,
    pub(crate) names: Vec<&'static str>,
    pub(crate) descriptors: Vec<&'static [u8]>,
}

impl ServiceRoutes {
    /// No services yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a generated tonic server.
    pub fn add_service<S>(mut self, server: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Error = Infallible,
                Response: axum::response::IntoResponse,
                Future: Send + 'static,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
    {
        self.names.push(S::NAME);
        self.routes = self.routes.add_service(server);
        self
    }

    /// Registers an encoded descriptor set for reflection, for contracts
    /// outside `fitflow-proto` (FitFlow's own are always registered).
    pub fn with_descriptors(mut self, descriptors: &'static [u8]) -> Self {
        self.descriptors.push(descriptors);
        self
    }

    /// The gRPC service names, for health.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
}
