//! A migrated audit database, an in-process ingest server and event factories.

use std::time::{Duration, SystemTime};

use fitflow_audit::{MIGRATOR, SCHEMA};
use fitflow_auth::{Principal, Role};
use fitflow_proto::audit::audit_ingest_service_client::AuditIngestServiceClient;
use fitflow_proto::audit::{Action, AuditEvent, IngestRequest, IngestResponse, Purpose};
use fitflow_proto::types::{Actor, actor};
use fitflow_testkit::{MigratedSchema, TestDatabase};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::Request;
use tonic::transport::Channel;
use uuid::Uuid;

/// A migrated database and a pool of the audit runtime role.
pub(crate) struct TestAudit {
    pub(crate) database: TestDatabase,
    pub(crate) pool: PgPool,
    shutdown: CancellationToken,
}

impl Drop for TestAudit {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub(crate) async fn test_audit() -> TestAudit {
    fitflow_testkit::init_tracing();
    let database = fitflow_testkit::database(&[MigratedSchema {
        schema: SCHEMA,
        migrator: &MIGRATOR,
    }])
    .await;
    let pool = fitflow_db::connect(&database.runtime_url(SCHEMA), SCHEMA, 8)
        .await
        .expect("connect as the audit runtime role");
    TestAudit {
        database,
        pool,
        shutdown: CancellationToken::new(),
    }
}

impl TestAudit {
    /// Serves `AuditIngestService` on 127.0.0.1:0 as if called by the mTLS
    /// peer `peer` (or by an unidentified peer) and returns a client.
    pub(crate) async fn ingest_client(
        &self,
        peer: Option<&'static str>,
    ) -> AuditIngestServiceClient<Channel> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let address = listener.local_addr().expect("local address");
        fitflow_testkit::serve_audit_ingest(
            self.pool.clone(),
            peer,
            listener,
            self.shutdown.clone(),
        );
        let channel = Channel::from_shared(format!("http://{address}"))
            .expect("a valid URI")
            .connect()
            .await
            .expect("connect to the in-process server");
        AuditIngestServiceClient::new(channel)
    }

    /// A superuser pool on the test database (qualify names with `audit.`).
    pub(crate) async fn admin_pool(&self) -> PgPool {
        self.database.admin_pool().await
    }

    /// Rows stored in both logs.
    pub(crate) async fn stored_count(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM audit_log) + (SELECT count(*) FROM access_log)",
        )
        .fetch_one(&self.pool)
        .await
        .expect("count stored events")
    }
}

/// Sends `batches` on one stream and returns one response per batch.
pub(crate) async fn ingest(
    client: &mut AuditIngestServiceClient<Channel>,
    batches: Vec<Vec<AuditEvent>>,
) -> Vec<IngestResponse> {
    let count = batches.len();
    let requests = tokio_stream::iter(batches.into_iter().map(|events| IngestRequest { events }));
    let mut responses = client
        .ingest(requests)
        .await
        .expect("open the ingest stream")
        .into_inner();
    let mut answered = Vec::with_capacity(count);
    for _ in 0..count {
        let response = responses
            .message()
            .await
            .expect("a response")
            .expect("one response per batch");
        answered.push(response);
    }
    answered
}

/// A valid change event of `source` by a random user, `minutes_ago` minutes old.
pub(crate) fn change_event(source: &str, minutes_ago: u64) -> AuditEvent {
    AuditEvent {
        event_id: Uuid::now_v7().to_string(),
        source_service: source.to_owned(),
        actor: Some(Actor {
            kind: Some(actor::Kind::UserId(Uuid::new_v4().to_string())),
        }),
        action: Action::Update as i32,
        resource_type: "clients".to_owned(),
        resource_id: Uuid::new_v4().to_string(),
        changes: vec![fitflow_proto::audit::FieldChange {
            field: "status".to_owned(),
            old_value: "active".to_owned(),
            new_value: "archived".to_owned(),
            hashed: false,
        }],
        client_address: "203.0.113.7".to_owned(),
        user_agent: "tests".to_owned(),
        occur_time: Some(prost_types::Timestamp::from(
            SystemTime::now() - Duration::from_secs(minutes_ago * 60),
        )),
        ..AuditEvent::default()
    }
}

/// A valid access (view) event of `source`.
pub(crate) fn view_event(source: &str, minutes_ago: u64) -> AuditEvent {
    AuditEvent {
        action: Action::View as i32,
        purpose: Purpose::Treatment as i32,
        changes: Vec::new(),
        ..change_event(source, minutes_ago)
    }
}

pub(crate) fn acknowledged(response: &IngestResponse) -> Vec<&str> {
    response
        .acknowledged_event_ids
        .iter()
        .map(String::as_str)
        .collect()
}

/// A user with `roles`, in a session that completed MFA.
pub(crate) fn user(roles: Vec<Role>) -> Principal {
    Principal {
        user_id: Uuid::new_v4(),
        session_id: Uuid::new_v4(),
        roles,
        supervised_trainer_ids: Vec::new(),
        // A session that completed MFA, as the operator role requires.
        amr: vec!["pwd".into(), "otp".into()],
        studio_ids: Vec::new(),
        claims_truncated: false,
        claims_partial: false,
    }
}

/// `message` from `principal` over the operator peer, as the platform
/// attaches them.
pub(crate) fn as_user<T>(principal: &Principal, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(principal.clone());
    // Operator-wide reads are accepted only over the operator certificate;
    // tenant-scoped reads do not look at the peer.
    request
        .extensions_mut()
        .insert(fitflow_auth::PeerIdentity("operator".to_owned()));
    request
}
