//! One database holding a source service's outbox (schema `relaytest`) and
//! the audit service's schema; an audit server that can be started late.

use std::net::SocketAddr;
use std::time::Duration;

use fitflow_outbox::{Action, AuditEvent, AuditEventBuilder, RelayConfig};
use fitflow_proto::audit::audit_ingest_service_client::AuditIngestServiceClient;
use fitflow_testkit::{MigratedSchema, TestDatabase};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use uuid::Uuid;

/// The source service of these tests.
pub(crate) const SOURCE: &str = "relaytest";

/// No migrations of its own: the platform creates `audit_outbox`.
static SOURCE_MIGRATOR: Migrator = Migrator::DEFAULT;

pub(crate) struct Harness {
    _database: TestDatabase,
    /// The source service's runtime pool (its outbox).
    pub(crate) source_pool: PgPool,
    /// The audit service's runtime pool.
    pub(crate) audit_pool: PgPool,
    /// Where the audit service listens (or will).
    pub(crate) audit_address: SocketAddr,
    audit_shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.audit_shutdown.cancel();
    }
}

pub(crate) async fn harness() -> Harness {
    fitflow_testkit::init_tracing();
    let database = fitflow_testkit::database(&[
        MigratedSchema {
            schema: fitflow_audit::SCHEMA,
            migrator: &fitflow_audit::MIGRATOR,
        },
        MigratedSchema {
            schema: SOURCE,
            migrator: &SOURCE_MIGRATOR,
        },
    ])
    .await;
    let source_pool = fitflow_db::connect(&database.runtime_url(SOURCE), SOURCE, 4)
        .await
        .expect("connect as the source runtime role");
    let audit_pool = fitflow_db::connect(
        &database.runtime_url(fitflow_audit::SCHEMA),
        fitflow_audit::SCHEMA,
        4,
    )
    .await
    .expect("connect as the audit runtime role");
    // Reserve a port, then free it: the audit service starts there when a test says so.
    let audit_address = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("address");
    Harness {
        _database: database,
        source_pool,
        audit_pool,
        audit_address,
        audit_shutdown: CancellationToken::new(),
    }
}

impl Harness {
    /// The database's superuser URL.
    pub(crate) fn admin_url(&self) -> secrecy::SecretString {
        self._database.admin_url()
    }

    /// Starts the real audit ingest service, as called by the mTLS peer `relaytest`.
    pub(crate) async fn start_audit(&self) {
        let listener = TcpListener::bind(self.audit_address)
            .await
            .expect("bind the reserved audit port");
        fitflow_testkit::serve_audit_ingest(
            self.audit_pool.clone(),
            Some(SOURCE),
            listener,
            self.audit_shutdown.clone(),
        );
    }

    /// A client that connects lazily, so it can exist while audit is down.
    pub(crate) fn audit_client(&self) -> AuditIngestServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.audit_address))
            .expect("a valid URI")
            .connect_timeout(Duration::from_millis(500))
            .connect_lazy();
        AuditIngestServiceClient::new(channel)
    }

    /// Records `event` in its own committed transaction, as a handler would.
    pub(crate) async fn record(&self, event: &AuditEvent) {
        let mut transaction = self.source_pool.begin().await.expect("begin");
        fitflow_outbox::record(&mut transaction, event)
            .await
            .expect("record");
        transaction.commit().await.expect("commit");
    }

    pub(crate) async fn outbox_len(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM audit_outbox")
            .fetch_one(&self.source_pool)
            .await
            .expect("count the outbox")
    }

    /// Event ids stored by the audit service, with how many rows each has.
    pub(crate) async fn stored(&self) -> Vec<(Uuid, i64)> {
        sqlx::query_as(
            "SELECT event_id, count(*) FROM (SELECT event_id FROM audit_log UNION ALL \
             SELECT event_id FROM access_log) AS stored GROUP BY event_id ORDER BY event_id",
        )
        .fetch_all(&self.audit_pool)
        .await
        .expect("read stored events")
    }
}

/// Fast pacing for tests.
pub(crate) fn fast_config() -> RelayConfig {
    RelayConfig {
        poll_interval: Duration::from_millis(200),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        response_timeout: Duration::from_secs(5),
        ..RelayConfig::default()
    }
}

/// A valid change event of the test source.
pub(crate) fn event() -> AuditEvent {
    AuditEventBuilder::new(SOURCE, Action::Update, "widgets", Uuid::new_v4())
        .actor_user(Uuid::new_v4())
        .change("colour", "red", "blue")
        .build()
}

/// Waits up to 10 s for `condition`.
pub(crate) async fn eventually(what: &str, condition: impl AsyncFnMut() -> bool) {
    fitflow_testkit::eventually(what, Duration::from_secs(10), condition).await;
}
