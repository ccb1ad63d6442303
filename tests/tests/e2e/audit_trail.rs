//! Every change reaches the audit trail exactly once, even across an outage.

use std::time::Duration;

use fitflow_e2e::Sandbox;
use fitflow_e2e::{AUDIT, IDENTITY};
use sqlx::PgPool;
use uuid::Uuid;

async fn stored_events(pool: &PgPool, resource_id: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit.audit_log WHERE resource_id = $1")
        .bind(resource_id)
        .fetch_one(pool)
        .await
        .expect("count audit events")
}

async fn pending_in_outbox(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM identity.audit_outbox")
        .fetch_one(pool)
        .await
        .expect("count outbox rows")
}

async fn wait_for_drained_outbox(pool: &PgPool) {
    for _ in 0..600 {
        if pending_in_outbox(pool).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the outbox never drained");
}

#[tokio::test]
async fn a_change_made_while_audit_is_down_is_stored_exactly_once_when_it_returns() {
    let sandbox = Sandbox::new().await;
    let admin = sandbox.db.admin_pool().await;
    let identity = sandbox.start(&[IDENTITY]).await;

    let (user, _) = sandbox.register("Outage Tester").await;
    let user_id: Uuid = user.id.parse().unwrap();
    assert_eq!(
        pending_in_outbox(&admin).await,
        1,
        "the event waits in the outbox"
    );
    assert_eq!(stored_events(&admin, user_id).await, 0);

    let audit = sandbox.start(&[AUDIT]).await;
    wait_for_drained_outbox(&admin).await;
    assert_eq!(stored_events(&admin, user_id).await, 1);

    // A later change flows straight through and the first is not repeated.
    let (second, _) = sandbox.register("Second Tester").await;
    wait_for_drained_outbox(&admin).await;
    assert_eq!(stored_events(&admin, second.id.parse().unwrap()).await, 1);
    assert_eq!(stored_events(&admin, user_id).await, 1);

    identity.shutdown().await;
    audit.shutdown().await;
}

#[tokio::test]
async fn a_change_through_a_running_stack_leaves_one_event_naming_its_actor() {
    let sandbox = Sandbox::new().await;
    let admin = sandbox.db.admin_pool().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let (user, _) = sandbox.register("Actor Tester").await;
    wait_for_drained_outbox(&admin).await;

    let (action, actor, source): (String, Option<Uuid>, String) = sqlx::query_as(
        "SELECT action, actor_user_id, source_service FROM audit.audit_log WHERE resource_id = $1",
    )
    .bind(user.id.parse::<Uuid>().unwrap())
    .fetch_one(&admin)
    .await
    .expect("one event");
    assert_eq!(action, "create");
    assert_eq!(actor, Some(user.id.parse().unwrap()));
    assert_eq!(source, "identity");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_graceful_shutdown_flushes_the_outbox_before_audit_stops() {
    let sandbox = Sandbox::new().await;
    let admin = sandbox.db.admin_pool().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let (user, _) = sandbox.register("Shutdown Tester").await;
    stack.shutdown().await;
    assert_eq!(pending_in_outbox(&admin).await, 0);
    assert_eq!(stored_events(&admin, user.id.parse().unwrap()).await, 1);
}

#[tokio::test]
async fn two_replicas_of_a_service_run_one_relay_and_the_standby_takes_over() {
    let sandbox = Sandbox::new().await;
    let admin = sandbox.db.admin_pool().await;
    let audit = sandbox.start(&[AUDIT]).await;
    let first = sandbox.start(&[IDENTITY]).await;
    let mut replica_settings = sandbox.settings(&[IDENTITY]).await;
    replica_settings.served[0].listen = "127.0.0.1:0".parse().unwrap();
    let second = fitflow::Stack::start(&sandbox.registry, replica_settings)
        .await
        .expect("a second replica starts");

    let relay_locks = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database() \
             AND l.objid = (hashtext('identity.audit_outbox_relay')::bigint & 4294967295)::oid",
        )
        .fetch_one(&admin)
        .await
        .unwrap()
    };
    for _ in 0..50 {
        if relay_locks().await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(relay_locks().await, 1, "exactly one identity relay leads");

    let (before, _) = sandbox.register("Before Failover").await;
    wait_for_drained_outbox(&admin).await;
    first.shutdown().await;

    // The standby notices within its poll interval and delivers what follows.
    let source = fitflow_db::connect(&sandbox.db.runtime_url("identity"), "identity", 1)
        .await
        .unwrap();
    let after = Uuid::now_v7();
    let mut tx = source.begin().await.unwrap();
    let event = fitflow_outbox::AuditEventBuilder::new(
        "identity",
        fitflow_outbox::Action::Update,
        "users",
        after,
    )
    .actor_service("identity")
    .change("failover", "", "true")
    .build();
    fitflow_outbox::record(&mut tx, &event).await.unwrap();
    tx.commit().await.unwrap();
    wait_for_drained_outbox(&admin).await;
    assert_eq!(stored_events(&admin, before.id.parse().unwrap()).await, 1);
    assert_eq!(stored_events(&admin, after).await, 1);
    second.shutdown().await;
    audit.shutdown().await;
}
