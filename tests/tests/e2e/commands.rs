//! Reliable effects between services: a command written in a service's
//! transaction is delivered by the platform's relay over mTLS; a command
//! the receiver refuses for good is dead-lettered without blocking the ones
//! behind it, and can be replayed; an unreachable receiver is retried, never
//! dropped; and a receiver applies each command once.

use std::sync::Arc;
use std::time::Duration;

use fitflow_e2e::{AUDIT, IDENTITY, Sandbox};
use fitflow_proto::identity::{ListPublicKeysRequest, LoginRequest};
use sqlx::PgPool;
use uuid::Uuid;

async fn send(pool: &PgPool, target: &str, method: &str, message: &impl prost::Message) -> Uuid {
    let mut tx = pool.begin().await.expect("begin");
    let id = fitflow_outbox::send(&mut tx, target, method, message)
        .await
        .expect("the outbox takes the command");
    tx.commit().await.expect("commit");
    id
}

async fn pending(admin: &PgPool, command_id: Uuid) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT FROM identity.command_outbox WHERE command_id = $1)")
        .bind(command_id)
        .fetch_one(admin)
        .await
        .expect("look in the outbox")
}

async fn dead_letter_reason(admin: &PgPool, command_id: Uuid) -> Option<String> {
    sqlx::query_scalar(
        "SELECT reason FROM identity.outbox_dead_letters WHERE message_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(command_id)
    .fetch_optional(admin)
    .await
    .expect("look in the dead letters")
}

/// Identity and audit running; a superuser pool; identity's runtime pool,
/// through which the tests write commands as identity's handlers would.
async fn running_identity() -> (Sandbox, fitflow::Stack, PgPool, PgPool) {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let admin = sandbox.db.admin_pool().await;
    let identity = fitflow_db::connect(&sandbox.db.runtime_url(IDENTITY), IDENTITY, 2)
        .await
        .expect("identity's runtime pool");
    (sandbox, stack, admin, identity)
}

#[tokio::test]
async fn a_refused_command_is_dead_lettered_and_the_commands_behind_it_are_delivered() {
    // The sandbox owns the database: it lives until the test ends.
    let (_sandbox, stack, admin, identity) = running_identity().await;

    // Login admits only the gateway and operators, so identity's own
    // certificate is refused: PERMISSION_DENIED, permanent.
    let refused = send(
        &identity,
        IDENTITY,
        "/fitflow.identity.v1.IdentityService/Login",
        &LoginRequest::default(),
    )
    .await;
    let delivered = send(
        &identity,
        IDENTITY,
        "/fitflow.identity.v1.IdentityService/ListPublicKeys",
        &ListPublicKeysRequest {},
    )
    .await;
    fitflow_testkit::eventually(
        "both commands leave the outbox",
        Duration::from_secs(20),
        async || !pending(&admin, refused).await && !pending(&admin, delivered).await,
    )
    .await;
    assert_eq!(
        dead_letter_reason(&admin, refused).await.as_deref(),
        Some("PermissionDenied")
    );
    assert_eq!(dead_letter_reason(&admin, delivered).await, None);

    // An operator replays it; refused again, it returns to the dead letters.
    let letters = fitflow_outbox::dead_letters(&identity, 10)
        .await
        .expect("list dead letters");
    let letter = letters
        .iter()
        .find(|letter| letter.message_id == refused)
        .expect("the refused command is listed");
    assert_eq!(letter.kind, "command");
    assert!(
        fitflow_outbox::replay_dead_letter(&identity, letter.id)
            .await
            .expect("replay")
    );
    fitflow_testkit::eventually(
        "the replayed command is refused again",
        Duration::from_secs(20),
        async || {
            fitflow_outbox::dead_letters(&identity, 10)
                .await
                .expect("list dead letters")
                .iter()
                .any(|again| again.message_id == refused && again.id != letter.id)
        },
    )
    .await;
    stack.shutdown().await;
}

#[tokio::test]
async fn a_command_to_an_unreachable_service_is_retried_and_never_dropped() {
    // The sandbox owns the database: it lives until the test ends.
    let (_sandbox, stack, admin, identity) = running_identity().await;
    // Nothing serves tenancy in this sandbox: UNAVAILABLE, transient.
    let waiting = send(
        &identity,
        "tenancy",
        "/fitflow.tenancy.v1.TenancyService/Anything",
        &ListPublicKeysRequest {},
    )
    .await;
    fitflow_testkit::eventually(
        "a failed attempt is counted",
        Duration::from_secs(30),
        async || {
            sqlx::query_scalar::<_, i32>(
                "SELECT attempts FROM identity.command_outbox WHERE command_id = $1",
            )
            .bind(waiting)
            .fetch_one(&admin)
            .await
            .expect("read the command")
                > 0
        },
    )
    .await;
    assert!(
        pending(&admin, waiting).await,
        "the command is still pending"
    );
    assert_eq!(dead_letter_reason(&admin, waiting).await, None);
    stack.shutdown().await;
}

#[tokio::test]
async fn a_receiver_applies_a_command_once_however_often_it_is_delivered() {
    let sandbox = Sandbox::new().await;
    let identity = fitflow_db::connect(&sandbox.db.runtime_url(IDENTITY), IDENTITY, 32)
        .await
        .expect("identity's runtime pool");
    let command_id = Uuid::new_v4();
    let identity = Arc::new(identity);
    let deliveries: Vec<_> = (0..100)
        .map(|_| {
            let pool = Arc::clone(&identity);
            tokio::spawn(async move {
                let mut tx = pool.begin().await.expect("begin");
                let first = fitflow_outbox::accept_once(&mut tx, command_id, "billing")
                    .await
                    .expect("accept");
                tx.commit().await.expect("commit");
                first
            })
        })
        .collect();
    let mut applied = 0;
    for delivery in deliveries {
        if delivery.await.expect("a delivery") {
            applied += 1;
        }
    }
    assert_eq!(
        applied, 1,
        "exactly one of 100 concurrent deliveries applies it"
    );
}
