//! The audit service as auditors, trainers and operators meet it: chain
//! verification over gRPC, tenant-scoped reads and exports, and no event lost
//! or doubled while audit restarts under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fitflow_auth::Role;
use fitflow_e2e::{AUDIT, IDENTITY};
use fitflow_e2e::{Sandbox, bearer};
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use fitflow_proto::audit::{
    ChainBreakKind, EventFilter, ExportEventsRequest, IngestRequest, ListEventsRequest,
    VerifyChainRequest, VerifyChainResponse,
};
use sqlx::PgPool;
use tonic::Code;
use uuid::Uuid;

/// A token for a fresh user holding `roles` in a session that completed MFA
/// (as the operator role requires), signed by identity's real key.
async fn token_with(roles: &[Role]) -> (Uuid, String) {
    let user_id = Uuid::new_v4();
    let claims = fitflow_identity::domain::access_claims(
        user_id,
        Uuid::new_v4(),
        roles,
        &fitflow_identity::domain::session_amr("totp"),
        &fitflow_identity::structure::ActingFor::default(),
        chrono::Utc::now(),
    );
    let token = fitflow_identity::TokenSigner::new(fitflow_testkit::vault().await)
        .await
        .expect("the signing key")
        .sign(&claims)
        .await
        .expect("a signed token");
    (user_id, token)
}

/// Sends one batch to audit as `peer` and waits for its answer.
async fn ingest_as(sandbox: &Sandbox, peer: &str, events: Vec<fitflow_proto::audit::AuditEvent>) {
    let mut responses = sandbox
        .audit_ingest(peer)
        .ingest(futures::stream::iter([IngestRequest { events }]))
        .await
        .expect("open the ingest stream")
        .into_inner();
    let answer = responses
        .message()
        .await
        .expect("an answer")
        .expect("one answer");
    assert!(answer.rejected.is_empty(), "{:?}", answer.rejected);
}

async fn verify(sandbox: &Sandbox, token: &str, source: &str) -> VerifyChainResponse {
    sandbox
        .audit()
        .verify_chain(bearer(
            VerifyChainRequest {
                source_service: source.to_owned(),
            },
            token,
        ))
        .await
        .expect("verify chain")
        .into_inner()
}

#[tokio::test]
async fn verify_chain_names_the_row_a_superuser_deleted_or_edited_with_plain_sql() {
    let sandbox = Sandbox::new().await;
    let admin = sandbox.db.admin_pool().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let (_, operator) = token_with(&[Role::Operator]).await;
    let events: Vec<_> = (0..4)
        .map(|_| {
            AuditEventBuilder::new("billing", Action::Update, "invoices", Uuid::new_v4())
                .actor_user(Uuid::new_v4())
                .change("status", "draft", "issued")
                .build()
        })
        .collect();
    ingest_as(&sandbox, "billing", events.clone()).await;
    let intact = verify(&sandbox, &operator, "billing").await;
    assert!(intact.intact, "{intact:?}");
    assert_eq!(intact.chains[0].verified_links, 4);

    sqlx::query(
        "DELETE FROM audit.audit_log WHERE source_service = 'billing' AND chain_sequence = 3",
    )
    .execute(&admin)
    .await
    .expect("delete as the superuser");
    let deleted = verify(&sandbox, &operator, "billing").await;
    let chain = &deleted.chains[0];
    assert!(!deleted.intact);
    assert_eq!(
        (chain.broken_sequence, chain.break_kind),
        (3, ChainBreakKind::Missing as i32)
    );

    sqlx::query("UPDATE audit.audit_log SET changes = '[]' WHERE event_id = $1")
        .bind(Uuid::try_parse(&events[1].event_id).unwrap())
        .execute(&admin)
        .await
        .expect("edit as the superuser");
    let edited = verify(&sandbox, &operator, "").await;
    let chain = edited
        .chains
        .iter()
        .find(|chain| chain.source_service == "billing")
        .expect("the billing chain is reported");
    assert_eq!(
        (
            chain.broken_sequence,
            chain.break_kind,
            chain.broken_event_id.as_str()
        ),
        (
            2,
            ChainBreakKind::ColumnsAltered as i32,
            events[1].event_id.as_str()
        )
    );

    let (_, trainer) = token_with(&[Role::Trainer]).await;
    let denied = sandbox
        .audit()
        .verify_chain(bearer(VerifyChainRequest::default(), &trainer))
        .await
        .expect_err("not an operator");
    assert_eq!(denied.code(), Code::PermissionDenied);
    stack.shutdown().await;
}

#[tokio::test]
async fn a_trainer_reads_and_exports_only_their_own_records_and_the_export_is_logged() {
    let sandbox = Sandbox::new().await;
    let admin = sandbox.db.admin_pool().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let (trainer_id, trainer) = token_with(&[Role::Trainer]).await;
    let client_id = Uuid::new_v4();
    let viewed = |tenant: Uuid| {
        AuditEventBuilder::new("clients", Action::View, "clients", client_id)
            .actor_user(Uuid::new_v4())
            .tenant(tenant)
            .purpose(Purpose::Treatment)
            .build()
    };
    let mine = viewed(trainer_id);
    ingest_as(
        &sandbox,
        "clients",
        vec![mine.clone(), viewed(Uuid::new_v4())],
    )
    .await;

    let listed = sandbox
        .audit()
        .list_events(bearer(
            ListEventsRequest {
                filter: Some(EventFilter {
                    tenant_id: trainer_id.to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            &trainer,
        ))
        .await
        .expect("a trainer lists their own records")
        .into_inner();
    assert_eq!(listed.events.len(), 1);
    assert_eq!(listed.events[0].event.as_ref(), Some(&mine));
    let unscoped = sandbox
        .audit()
        .list_events(bearer(ListEventsRequest::default(), &trainer))
        .await
        .expect_err("a trainer is not an auditor");
    assert_eq!(unscoped.code(), Code::PermissionDenied);

    let mut export = sandbox
        .audit()
        .export_events(bearer(
            ExportEventsRequest {
                filter: Some(EventFilter {
                    tenant_id: trainer_id.to_string(),
                    resource_type: "clients".to_owned(),
                    resource_id: client_id.to_string(),
                    ..Default::default()
                }),
                purpose: Purpose::Operations as i32,
            },
            &trainer,
        ))
        .await
        .expect("a trainer exports their own records")
        .into_inner();
    let mut exported = Vec::new();
    let mut export_event_id = String::new();
    while let Some(chunk) = export.message().await.expect("a chunk") {
        if export_event_id.is_empty() {
            export_event_id = chunk.export_event_id;
        }
        exported.extend(chunk.events.into_iter().filter_map(|stored| stored.event));
    }
    assert_eq!(exported.len(), 2, "the export event and the trainer's view");
    assert_eq!(exported[1], mine);
    let (action, actor, purpose): (String, Uuid, String) = sqlx::query_as(
        "SELECT action, actor_user_id, purpose FROM audit.access_log WHERE event_id = $1",
    )
    .bind(Uuid::try_parse(&export_event_id).expect("an export event id"))
    .fetch_one(&admin)
    .await
    .expect("the export is in the access log");
    assert_eq!(
        (action.as_str(), actor, purpose.as_str()),
        ("export", trainer_id, "operations")
    );
    stack.shutdown().await;
}

const CHANGES: usize = 10_000;
const CHANGES_PER_TRANSACTION: usize = 50;

/// Writes `CHANGES` audited changes into identity's outbox, as identity's
/// runtime role, `CHANGES_PER_TRANSACTION` per transaction, numbering them in
/// order in their one change; `written` counts committed changes.
async fn write_changes(pool: PgPool, written: Arc<AtomicUsize>) {
    for first in (0..CHANGES).step_by(CHANGES_PER_TRANSACTION) {
        let mut transaction = pool.begin().await.expect("begin");
        for number in first..first + CHANGES_PER_TRANSACTION {
            let event =
                AuditEventBuilder::new("identity", Action::Update, "reliability", Uuid::new_v4())
                    .actor_service("identity")
                    .change("number", "", &number.to_string())
                    .build();
            fitflow_outbox::record(&mut transaction, &event)
                .await
                .expect("the outbox accepts the change");
        }
        transaction.commit().await.expect("commit");
        written.fetch_add(CHANGES_PER_TRANSACTION, Ordering::SeqCst);
    }
}

async fn wait_until(what: &str, done: impl AsyncFnMut() -> bool) {
    fitflow_testkit::eventually(what, Duration::from_secs(120), done).await;
}

async fn count(pool: &PgPool, statement: &str) -> i64 {
    sqlx::query_scalar(statement)
        .fetch_one(pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn ten_thousand_changes_survive_an_audit_restart_once_each_and_in_order() {
    let sandbox = Sandbox::new().await;
    let admin = sandbox.db.admin_pool().await;
    let identity = sandbox.start(&[IDENTITY]).await;
    let audit = sandbox.start(&[AUDIT]).await;
    let source = fitflow_db::connect(&sandbox.db.runtime_url("identity"), "identity", 4)
        .await
        .expect("identity's runtime pool");
    let written = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn(write_changes(source, Arc::clone(&written)));

    wait_until("a third is written", async || {
        written.load(Ordering::SeqCst) >= CHANGES / 3
    })
    .await;
    audit.shutdown().await;
    let written_at_stop = written.load(Ordering::SeqCst);
    wait_until("writes go on while audit is down", async || {
        written.load(Ordering::SeqCst) >= written_at_stop + CHANGES / 3
    })
    .await;
    assert!(
        count(&admin, "SELECT count(*) FROM identity.audit_outbox").await > 0,
        "the outbox holds what audit could not take"
    );
    let audit = sandbox.start(&[AUDIT]).await;
    writer.await.expect("the writer finishes");
    wait_until("the outbox drains", async || {
        count(&admin, "SELECT count(*) FROM identity.audit_outbox").await == 0
    })
    .await;

    assert_exactly_once_in_order(&sandbox, &admin).await;

    identity.shutdown().await;
    audit.shutdown().await;
}

/// Exactly `CHANGES` reliability events are stored, each once, chained in
/// the order they were written, and the chain verifies.
async fn assert_exactly_once_in_order(sandbox: &Sandbox, admin: &PgPool) {
    let stored = "FROM audit.audit_log WHERE resource_type = 'reliability'";
    assert_eq!(
        count(admin, &format!("SELECT count(*) {stored}")).await,
        10_000
    );
    assert_eq!(
        count(admin, &format!("SELECT count(DISTINCT event_id) {stored}")).await,
        10_000
    );
    let numbers: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT (changes -> 0 ->> 'new_value')::bigint {stored} ORDER BY chain_sequence"
    ))
    .fetch_all(admin)
    .await
    .expect("numbers in chain order");
    let in_outbox_order: Vec<i64> = (0..10_000).collect();
    assert!(
        numbers == in_outbox_order,
        "chain order differs from outbox order"
    );
    let audit_pool = fitflow_db::connect(&sandbox.db.runtime_url("audit"), "audit", 2)
        .await
        .expect("audit's runtime pool");
    let report = fitflow_audit::verify_chain(&audit_pool, "identity")
        .await
        .expect("verify");
    assert!(report.is_intact(), "{report:?}");
}

/// Runs `fitflow serve audit` as its own process on the sandbox's audit port.
fn spawn_audit_process(sandbox: &Sandbox, bao: &fitflow_testkit::OpenBao) -> tokio::process::Child {
    use secrecy::ExposeSecret as _;
    tokio::process::Command::new(fitflow_e2e::fitflow_binary())
        .args(["serve", "audit"])
        .env_clear()
        .env("FITFLOW_TLS_DIR", &sandbox.certs.dir)
        // The test OpenBao speaks http:// and the test database has no TLS.
        .env("FITFLOW_DEV_INSECURE", "1")
        .env("FITFLOW_VAULT_ADDR", &bao.addr)
        .env("FITFLOW_VAULT_TOKEN", bao.root_token.expose_secret())
        .env(
            "FITFLOW_AUDIT_DATABASE_URL",
            sandbox.db.runtime_url("audit").expose_secret(),
        )
        .env(
            "FITFLOW_AUDIT_SYSTEM_DATABASE_URL",
            sandbox.db.system_url("audit").expose_secret(),
        )
        .env(
            "FITFLOW_AUDIT_LISTEN",
            format!("127.0.0.1:{}", sandbox.release_port(AUDIT)),
        )
        .env("FITFLOW_LOG", "error")
        .kill_on_drop(true)
        .spawn()
        .expect("start fitflow serve audit")
}

#[tokio::test]
async fn ten_thousand_changes_survive_an_audit_process_killed_mid_stream() {
    let sandbox = Sandbox::new().await;
    let admin = sandbox.db.admin_pool().await;
    let bao = fitflow_testkit::openbao().await;
    let identity = sandbox.start(&[IDENTITY]).await;
    let mut audit = spawn_audit_process(&sandbox, bao);
    sandbox.wait_until_serving(AUDIT).await;
    let source = fitflow_db::connect(&sandbox.db.runtime_url("identity"), "identity", 4)
        .await
        .expect("identity's runtime pool");
    let written = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn(write_changes(source, Arc::clone(&written)));

    wait_until("a third is written and some of it stored", async || {
        written.load(Ordering::SeqCst) >= CHANGES / 3
            && count(&admin, "SELECT count(*) FROM audit.audit_log").await > 0
    })
    .await;
    // SIGKILL: no drain, no goodbye; a batch may be stored but never acknowledged.
    audit.start_kill().expect("kill the audit process");
    audit.wait().await.expect("reap the audit process");
    let written_at_kill = written.load(Ordering::SeqCst);
    wait_until("writes go on while audit is dead", async || {
        written.load(Ordering::SeqCst) >= written_at_kill + CHANGES / 3
    })
    .await;
    assert!(count(&admin, "SELECT count(*) FROM identity.audit_outbox").await > 0);

    let mut restarted = spawn_audit_process(&sandbox, bao);
    sandbox.wait_until_serving(AUDIT).await;
    writer.await.expect("the writer finishes");
    wait_until("the outbox drains", async || {
        count(&admin, "SELECT count(*) FROM identity.audit_outbox").await == 0
    })
    .await;
    assert_exactly_once_in_order(&sandbox, &admin).await;

    identity.shutdown().await;
    restarted.start_kill().expect("stop the audit process");
    let _ = restarted.wait().await;
}
