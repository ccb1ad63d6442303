//! The relay: delivers and deletes, waits out an audit outage, drops rejects.

use std::time::Duration;

use fitflow_outbox::{Action, AuditEventBuilder, Relay, RelayConfig};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{SOURCE, event, eventually, fast_config, harness};

#[tokio::test]
async fn the_relay_delivers_recorded_events_and_deletes_them() {
    let harness = harness().await;
    harness.start_audit().await;
    let events = [event(), event(), event()];
    for recorded in &events {
        harness.record(recorded).await;
    }
    let shutdown = CancellationToken::new();
    // Polls only once a minute: the later event below must arrive by notification.
    let config = RelayConfig {
        poll_interval: Duration::from_secs(60),
        ..fast_config()
    };
    let relay = tokio::spawn(
        Relay::new(harness.source_pool.clone(), harness.audit_client())
            .with_config(config)
            .run(shutdown.clone()),
    );

    eventually("the outbox is empty", || async {
        harness.outbox_len().await == 0
    })
    .await;
    let mut expected: Vec<(Uuid, i64)> = events
        .iter()
        .map(|event| (Uuid::try_parse(&event.event_id).expect("uuid"), 1))
        .collect();
    expected.sort();
    assert_eq!(harness.stored().await, expected);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = event();
    harness.record(&later).await;
    eventually("the later event is delivered", || async {
        harness.outbox_len().await == 0
    })
    .await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(6), relay)
        .await
        .expect("the relay stops within its drain deadline")
        .expect("the relay task does not panic");
    let report = fitflow_audit::verify_chain(&harness.audit_pool, SOURCE)
        .await
        .expect("verify");
    assert!(report.is_intact());
    assert_eq!(report.verified_links, 4);
}

#[tokio::test]
async fn an_event_whose_transaction_commits_after_the_ring_is_delivered_long_before_the_poll() {
    let harness = harness().await;
    harness.start_audit().await;
    let shutdown = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(harness.source_pool.clone(), harness.audit_client())
            .with_config(RelayConfig {
                poll_interval: Duration::from_secs(60),
                ..fast_config()
            })
            .run(shutdown.clone()),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The ring comes from `record`, inside the transaction; the commit
    // comes two seconds later. Only the relay's rechecks can find it
    // before its next poll, a minute away.
    let mut transaction = harness.source_pool.begin().await.expect("begin");
    fitflow_outbox::record(&mut transaction, &event())
        .await
        .expect("record");
    tokio::time::sleep(Duration::from_secs(2)).await;
    transaction.commit().await.expect("commit");
    eventually("the late-committed event is delivered", || async {
        harness.outbox_len().await == 0
    })
    .await;
    assert_eq!(harness.stored().await.len(), 1);
    shutdown.cancel();
    relay.await.expect("the relay task does not panic");
}

#[tokio::test]
async fn while_audit_is_down_rows_stay_and_writes_succeed_then_drain_exactly_once() {
    let harness = harness().await;
    let shutdown = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(harness.source_pool.clone(), harness.audit_client())
            .with_config(fast_config())
            .run(shutdown.clone()),
    );
    for _ in 0..3 {
        harness.record(&event()).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    harness.record(&event()).await;
    assert_eq!(harness.outbox_len().await, 4);

    harness.start_audit().await;
    eventually("the outbox drains", || async {
        harness.outbox_len().await == 0
    })
    .await;

    let stored = harness.stored().await;
    assert_eq!(stored.len(), 4);
    assert!(stored.iter().all(|(_, copies)| *copies == 1), "{stored:?}");
    shutdown.cancel();
    relay.await.expect("the relay task does not panic");
}

#[tokio::test]
async fn a_rejected_event_is_dropped_without_blocking_the_rest() {
    let harness = harness().await;
    harness.start_audit().await;
    // A view without a purpose: the outbox takes it, the audit service refuses it.
    let rejected = AuditEventBuilder::new(SOURCE, Action::View, "widgets", Uuid::new_v4())
        .actor_user(Uuid::new_v4())
        .build();
    let (before, after) = (event(), event());
    harness.record(&before).await;
    harness.record(&rejected).await;
    harness.record(&after).await;
    let shutdown = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(harness.source_pool.clone(), harness.audit_client())
            .with_config(fast_config())
            .run(shutdown.clone()),
    );

    eventually("the outbox is empty", || async {
        harness.outbox_len().await == 0
    })
    .await;

    let stored: Vec<Uuid> = harness
        .stored()
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(stored.len(), 2);
    assert!(!stored.contains(&Uuid::try_parse(&rejected.event_id).expect("uuid")));
    shutdown.cancel();
    relay.await.expect("the relay task does not panic");
}

#[tokio::test]
async fn on_shutdown_the_relay_delivers_what_is_pending_before_it_returns() {
    let harness = harness().await;
    harness.start_audit().await;
    for _ in 0..5 {
        harness.record(&event()).await;
    }
    let shutdown = CancellationToken::new();
    shutdown.cancel();

    let relay = fitflow_outbox::spawn_relay(
        harness.source_pool.clone(),
        harness.audit_client(),
        shutdown,
    );
    tokio::time::timeout(Duration::from_secs(6), relay)
        .await
        .expect("the relay stops within its drain deadline")
        .expect("the relay task does not panic");

    assert_eq!(harness.outbox_len().await, 0);
    assert_eq!(harness.stored().await.len(), 5);
}

#[tokio::test]
async fn a_row_filed_under_another_id_is_dead_lettered_and_the_rest_flow() {
    let harness = harness().await;
    harness.start_audit().await;
    // Only a hand-written row can disagree with its event (pgbench, a
    // restore gone wrong); acknowledgements could never settle it.
    let stray = event();
    let filed_as = Uuid::new_v4();
    sqlx::query("INSERT INTO audit_outbox (event_id, payload) VALUES ($1, $2)")
        .bind(filed_as)
        .bind(prost::Message::encode_to_vec(&stray))
        .execute(&harness.source_pool)
        .await
        .expect("insert a mislabelled row");
    let behind = event();
    harness.record(&behind).await;
    let shutdown = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(harness.source_pool.clone(), harness.audit_client())
            .with_config(fast_config())
            .run(shutdown.clone()),
    );
    eventually("the outbox is empty", || async {
        harness.outbox_len().await == 0
    })
    .await;
    let stored: Vec<Uuid> = harness
        .stored()
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        stored,
        vec![Uuid::try_parse(&behind.event_id).expect("uuid")]
    );
    let dead = fitflow_outbox::dead_letters(&harness.source_pool, 10)
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id, filed_as);
    shutdown.cancel();
    relay.await.expect("the relay task does not panic");
}

#[tokio::test]
async fn a_flood_of_notifications_while_audit_is_down_never_blocks_the_database_server() {
    use secrecy::ExposeSecret as _;
    let harness = harness().await;
    // Audit stays down: the relay is in its backoff the whole time.
    harness.record(&event()).await;
    let shutdown = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(harness.source_pool.clone(), harness.audit_client())
            .with_config(RelayConfig {
                backoff_min: Duration::from_secs(30),
                backoff_max: Duration::from_secs(30),
                ..fast_config()
            })
            .run(shutdown.clone()),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Megabytes of notifications (distinct payloads: equal ones are folded
    // within a transaction) for the relay's LISTEN connection.
    for _ in 0..5 {
        sqlx::query(
            "SELECT pg_notify('fitflow_audit_outbox', n::text || repeat('x', 64)) \
             FROM generate_series(1, 20000) AS n",
        )
        .execute(&harness.source_pool)
        .await
        .expect("notify");
    }
    // A server process blocked writing to an unread LISTEN socket cannot
    // absorb a process-wide barrier, which every DROP DATABASE waits for.
    let admin = sqlx::PgPool::connect(harness.admin_url().expose_secret())
        .await
        .expect("admin");
    let scratch = format!("fitflow_barrier_{}", Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {scratch}"))
        .execute(&admin)
        .await
        .expect("create a scratch database");
    tokio::time::timeout(
        Duration::from_secs(30),
        sqlx::query(&format!("DROP DATABASE {scratch}")).execute(&admin),
    )
    .await
    .expect("DROP DATABASE is not held up by the relay's connection")
    .expect("drop the scratch database");
    shutdown.cancel();
    relay.await.expect("the relay task does not panic");
}
