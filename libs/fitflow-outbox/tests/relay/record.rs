//! `record`: the outbox row lives and dies with the caller's transaction.

use fitflow_outbox::OutboxError;

use crate::helpers::{event, harness};

#[tokio::test]
async fn an_event_recorded_in_a_rolled_back_transaction_leaves_no_row() {
    let harness = harness().await;
    let mut transaction = harness.source_pool.begin().await.expect("begin");
    fitflow_outbox::record(&mut transaction, &event())
        .await
        .expect("record");
    transaction.rollback().await.expect("rollback");
    assert_eq!(harness.outbox_len().await, 0);

    harness.record(&event()).await;
    assert_eq!(harness.outbox_len().await, 1);
}

#[tokio::test]
async fn an_event_without_an_actor_is_refused_so_the_work_fails_too() {
    let harness = harness().await;
    let mut without_actor = event();
    without_actor.actor = None;
    let mut connection = harness.source_pool.acquire().await.expect("acquire");
    let error = fitflow_outbox::record(&mut connection, &without_actor)
        .await
        .expect_err("refused");
    assert!(matches!(error, OutboxError::InvalidEvent(_)));
    assert_eq!(harness.outbox_len().await, 0);
}
