//! `recorded_read`: a read and its access event in one statement — the
//! event exactly when the row is found, never without the read committing.

use fitflow_auth::{Caller, Principal, Role};
use fitflow_outbox::{Action, AuditEvent, AuditEventBuilder, Purpose};
use prost::Message as _;
use uuid::Uuid;

use crate::helpers::{SOURCE, harness};

/// The owner it is asked for and the user the context names, when `$7` is
/// true and `1 / $8` does not fail.
fn read_sql() -> String {
    fitflow_outbox::recorded_read(
        &fitflow_db::one_trip(&format!(
            "SELECT $6::uuid AS owner, current_setting('fitflow.user_id') AS user_id \
             WHERE $7 AND 1 / $8 = 1 AND {}",
            fitflow_db::CONTEXT_SET
        )),
        "owner",
    )
}

fn caller(user_id: Uuid) -> Caller {
    Caller::User(Principal {
        user_id,
        session_id: Uuid::new_v4(),
        roles: vec![Role::Trainer],
        supervised_trainer_ids: vec![],
        amr: vec![],
        studio_ids: vec![],
        claims_truncated: false,
        claims_partial: false,
    })
}

fn access(actor: Uuid) -> AuditEvent {
    AuditEventBuilder::new(SOURCE, Action::Read, "widgets", Uuid::new_v4())
        .actor_user(actor)
        .purpose(Purpose::Treatment)
        .build()
}

async fn run(
    pool: &sqlx::PgPool,
    user_id: Uuid,
    event: &AuditEvent,
    owner: Uuid,
    found: bool,
    divisor: i32,
) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    let sql = read_sql();
    let query = fitflow_db::bind_context(sqlx::query_as(&sql), &caller(user_id)).expect("a user");
    fitflow_outbox::bind_event(query, event)
        .expect("a recordable event")
        .bind(owner)
        .bind(found)
        .bind(divisor)
        .fetch_optional(pool)
        .await
}

#[tokio::test]
async fn a_read_that_finds_its_row_records_its_event_with_the_row_owner_as_tenant() {
    let harness = harness().await;
    let (user_id, owner) = (Uuid::new_v4(), Uuid::new_v4());
    let event = access(user_id);
    let row = run(&harness.source_pool, user_id, &event, owner, true, 1)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(row, (owner, user_id.to_string()), "read as the caller");
    let payloads: Vec<(Uuid, Vec<u8>)> =
        sqlx::query_as("SELECT event_id, payload FROM audit_outbox")
            .fetch_all(&harness.source_pool)
            .await
            .expect("outbox");
    assert_eq!(payloads.len(), 1);
    let recorded = AuditEvent::decode(payloads[0].1.as_slice()).expect("a whole event");
    assert_eq!(payloads[0].0.to_string(), event.event_id);
    assert_eq!(
        recorded,
        AuditEvent {
            tenant_id: owner.to_string(),
            ..event
        }
    );
}

#[tokio::test]
async fn a_read_that_finds_nothing_records_nothing() {
    let harness = harness().await;
    let user_id = Uuid::new_v4();
    let row = run(
        &harness.source_pool,
        user_id,
        &access(user_id),
        Uuid::new_v4(),
        false,
        1,
    )
    .await
    .expect("read");
    assert_eq!(row, None);
    assert_eq!(harness.outbox_len().await, 0);
}

#[tokio::test]
async fn a_read_that_fails_records_nothing_and_leaves_the_connection_usable() {
    let harness = harness().await;
    let user_id = Uuid::new_v4();
    run(
        &harness.source_pool,
        user_id,
        &access(user_id),
        Uuid::new_v4(),
        true,
        0,
    )
    .await
    .expect_err("division by zero");
    assert_eq!(harness.outbox_len().await, 0);
    let setting: Option<String> =
        sqlx::query_scalar("SELECT current_setting('fitflow.user_id', true)")
            .fetch_one(&harness.source_pool)
            .await
            .expect("the pool still serves");
    assert!(
        setting.unwrap_or_default().is_empty(),
        "no context outlives its statement"
    );
}

#[test]
fn an_event_without_an_actor_is_refused_before_anything_is_sent() {
    let mut event = access(Uuid::new_v4());
    event.actor = None;
    let sql = read_sql();
    let query = sqlx::query_as::<_, (Uuid,)>(&sql);
    assert!(fitflow_outbox::bind_event(query, &event).is_err());
}
