//! Claims of idempotency keys in real transactions, one after another and at once.

use std::sync::Arc;
use std::time::Duration;

use fitflow_api::ContractError;
use fitflow_api::idempotency::{self, Claim, IdempotencyKey, RequestHash};
use fitflow_auth::Caller;
use sqlx::PgPool;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::helpers::harness;

const METHOD: &str = "/fitflow.widgets.v1.WidgetService/CreateWidget";

fn key(request_id: Uuid) -> IdempotencyKey {
    IdempotencyKey::new(&Caller::Service("widgets"), METHOD, request_id)
}

/// How a create ended: the widget's id, and whether this call created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Created {
    id: Uuid,
    new: bool,
}

/// A create handler: claim, then insert (holding the claim `hold` long
/// before committing) or re-read the first widget.
async fn create_widget(
    pool: &PgPool,
    key: &IdempotencyKey,
    request: &[u8],
    hold: Duration,
) -> Result<Created, ContractError> {
    let mut tx = pool.begin().await?;
    let hash = RequestHash::of(key, request);
    let new_id = Uuid::now_v7();
    let created = match idempotency::claim(&mut tx, key, &hash, new_id).await? {
        Claim::New => {
            tokio::time::sleep(hold).await;
            sqlx::query("INSERT INTO widgets (id, name) VALUES ($1, 'widget')")
                .bind(new_id)
                .execute(&mut *tx)
                .await?;
            Created {
                id: new_id,
                new: true,
            }
        }
        Claim::Replay(existing) => {
            let id: Uuid = sqlx::query_scalar("SELECT id FROM widgets WHERE id = $1")
                .bind(existing)
                .fetch_one(&mut *tx)
                .await?;
            Created { id, new: false }
        }
    };
    tx.commit().await?;
    Ok(created)
}

#[tokio::test]
async fn a_replayed_request_returns_the_first_resource_without_creating_another() {
    let harness = harness().await;
    let key = key(Uuid::new_v4());
    let first = create_widget(&harness.pool, &key, b"name=a", Duration::ZERO)
        .await
        .expect("first create");
    let again = create_widget(&harness.pool, &key, b"name=a", Duration::ZERO)
        .await
        .expect("replay");
    assert!(first.new);
    assert_eq!(
        again,
        Created {
            id: first.id,
            new: false
        }
    );
    assert_eq!(harness.count("widgets").await, 1);
}

#[tokio::test]
async fn the_same_request_id_with_a_different_request_is_refused_as_reused() {
    let harness = harness().await;
    let key = key(Uuid::new_v4());
    create_widget(&harness.pool, &key, b"name=a", Duration::ZERO)
        .await
        .expect("first create");
    let reused = create_widget(&harness.pool, &key, b"name=b", Duration::ZERO).await;
    assert!(
        matches!(reused, Err(ContractError::RequestIdReused)),
        "{reused:?}"
    );
    assert_eq!(harness.count("widgets").await, 1);
}

#[tokio::test]
async fn request_ids_of_different_callers_or_methods_never_collide() {
    let harness = harness().await;
    let request_id = Uuid::new_v4();
    let keys = [
        IdempotencyKey::new(&Caller::Service("widgets"), METHOD, request_id),
        IdempotencyKey::new(&Caller::Service("gadgets"), METHOD, request_id),
        IdempotencyKey::new(
            &Caller::Service("widgets"),
            "/fitflow.widgets.v1.WidgetService/CopyWidget",
            request_id,
        ),
    ];
    for key in &keys {
        let created = create_widget(&harness.pool, key, b"name=a", Duration::ZERO)
            .await
            .expect("create");
        assert!(created.new);
    }
    assert_eq!(harness.count("widgets").await, 3);
}

#[tokio::test]
async fn twenty_concurrent_creates_with_one_request_id_make_exactly_one_resource() {
    const CREATES: usize = 20;
    let harness = harness().await;
    let key = Arc::new(key(Uuid::new_v4()));
    let start = Arc::new(Barrier::new(CREATES));
    let mut creates = JoinSet::new();
    for _ in 0..CREATES {
        let (pool, key, start) = (harness.pool.clone(), key.clone(), start.clone());
        creates.spawn(async move {
            start.wait().await;
            // The winner holds its uncommitted claim long enough for every
            // other create to run into it.
            create_widget(&pool, &key, b"name=a", Duration::from_millis(300)).await
        });
    }
    let outcomes: Vec<Created> = creates
        .join_all()
        .await
        .into_iter()
        .map(|outcome| outcome.expect("every create succeeds"))
        .collect();

    assert_eq!(outcomes.iter().filter(|created| created.new).count(), 1);
    let winner = outcomes[0].id;
    assert!(outcomes.iter().all(|created| created.id == winner));
    assert_eq!(harness.count("widgets").await, 1);
    assert_eq!(harness.count("idempotency_keys").await, 1);
}

#[tokio::test]
async fn concurrent_creates_with_one_request_id_but_different_requests_make_one_resource() {
    const CREATES: usize = 10;
    let harness = harness().await;
    let key = Arc::new(key(Uuid::new_v4()));
    let start = Arc::new(Barrier::new(CREATES));
    let mut creates = JoinSet::new();
    for index in 0..CREATES {
        let (pool, key, start) = (harness.pool.clone(), key.clone(), start.clone());
        let request = if index % 2 == 0 { "name=a" } else { "name=b" };
        creates.spawn(async move {
            start.wait().await;
            let outcome =
                create_widget(&pool, &key, request.as_bytes(), Duration::from_millis(200)).await;
            (request, outcome)
        });
    }
    let outcomes = creates.join_all().await;

    let winners: Vec<_> = outcomes
        .iter()
        .filter(|(_, outcome)| matches!(outcome, Ok(created) if created.new))
        .collect();
    assert_eq!(winners.len(), 1);
    let winning_request = winners[0].0;
    for (request, outcome) in &outcomes {
        if *request == winning_request {
            assert!(outcome.is_ok(), "{outcome:?}");
        } else {
            assert!(
                matches!(outcome, Err(ContractError::RequestIdReused)),
                "{outcome:?}"
            );
        }
    }
    assert_eq!(harness.count("widgets").await, 1);
}

#[tokio::test]
async fn a_create_that_rolls_back_frees_its_request_id_for_the_one_waiting_on_it() {
    let harness = harness().await;
    let key = key(Uuid::new_v4());
    let hash = RequestHash::of(&key, b"name=a");

    let mut failing = harness.pool.begin().await.expect("begin");
    let claimed = idempotency::claim(&mut failing, &key, &hash, Uuid::now_v7())
        .await
        .expect("claim");
    assert_eq!(claimed, Claim::New);
    let waiting = {
        let (pool, key) = (harness.pool.clone(), key.clone());
        tokio::spawn(async move { create_widget(&pool, &key, b"name=a", Duration::ZERO).await })
    };
    // Let the second create reach the key and wait on it, then fail the first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the second create waits on the first"
    );
    failing.rollback().await.expect("roll back");

    let created = waiting.await.expect("join").expect("create");
    assert!(created.new, "the waiting create became the first");
    assert_eq!(harness.count("widgets").await, 1);
}

#[tokio::test]
async fn a_record_older_than_24_hours_counts_as_absent() {
    let harness = harness().await;
    let key = key(Uuid::new_v4());
    let first = create_widget(&harness.pool, &key, b"name=a", Duration::ZERO)
        .await
        .expect("first create");
    sqlx::query("UPDATE apitest.idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&harness.admin)
        .await
        .expect("age the record");

    // Even a different request may use the forgotten id.
    let later = create_widget(&harness.pool, &key, b"name=b", Duration::ZERO)
        .await
        .expect("create after expiry");
    assert!(later.new);
    assert_ne!(later.id, first.id);
    let remembered: Uuid = sqlx::query_scalar("SELECT resource_id FROM apitest.idempotency_keys")
        .fetch_one(&harness.admin)
        .await
        .expect("the one record");
    assert_eq!(remembered, later.id);
}

#[tokio::test]
async fn pruning_deletes_only_expired_records_in_bounded_batches() {
    let harness = harness().await;
    for _ in 0..4 {
        create_widget(&harness.pool, &key(Uuid::new_v4()), b"x", Duration::ZERO)
            .await
            .expect("create");
    }
    sqlx::query(
        "UPDATE apitest.idempotency_keys SET created_at = now() - interval '25 hours' \
         WHERE request_id IN (SELECT request_id FROM apitest.idempotency_keys LIMIT 3)",
    )
    .execute(&harness.admin)
    .await
    .expect("age three records");

    let mut conn = harness.pool.acquire().await.expect("connection");
    let pruned: Vec<u64> = [
        idempotency::prune_expired(&mut conn, 2).await,
        idempotency::prune_expired(&mut conn, 2).await,
        idempotency::prune_expired(&mut conn, 2).await,
    ]
    .into_iter()
    .map(|pruned| pruned.expect("prune"))
    .collect();
    assert_eq!(pruned, [2, 1, 0]);
    assert_eq!(harness.count("idempotency_keys").await, 1);
}

#[tokio::test]
async fn the_record_holds_a_hash_and_ids_but_never_the_request() {
    let harness = harness().await;
    let key = key(Uuid::new_v4());
    create_widget(
        &harness.pool,
        &key,
        b"first_name=Ana;condition=asthma",
        Duration::ZERO,
    )
    .await
    .expect("create");
    let row: String =
        sqlx::query_scalar("SELECT row_to_json(k)::text FROM apitest.idempotency_keys k")
            .fetch_one(&harness.admin)
            .await
            .expect("the record");
    assert!(!row.contains("asthma") && !row.contains("Ana"), "{row}");
    let hash_length: i32 =
        sqlx::query_scalar("SELECT octet_length(request_hash) FROM apitest.idempotency_keys")
            .fetch_one(&harness.admin)
            .await
            .expect("the hash");
    assert_eq!(hash_length, 32);
}
