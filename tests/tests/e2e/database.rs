//! Each service's database role is confined to its own schema, row-level
//! security is enforced, and migrations are reversible.

use fitflow_auth::{Caller, Principal, Role};
use fitflow_e2e::schemas;
use secrecy::ExposeSecret as _;
use sqlx::{Connection as _, PgConnection};
use uuid::Uuid;

async fn connect(url: &secrecy::SecretString) -> PgConnection {
    PgConnection::connect(url.expose_secret())
        .await
        .expect("connect")
}

fn permission_denied(result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>) -> bool {
    matches!(result, Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42501"))
}

#[tokio::test]
async fn a_runtime_role_cannot_touch_another_services_schema_or_change_its_own() {
    let db = fitflow_testkit::database(&schemas()).await;
    let mut identity = connect(&db.runtime_url("identity")).await;

    let read_audit = sqlx::query("SELECT * FROM audit.audit_log")
        .execute(&mut identity)
        .await;
    assert!(
        permission_denied(read_audit),
        "identity read the audit schema"
    );
    let write_audit = sqlx::query("DELETE FROM audit.ingested_events")
        .execute(&mut identity)
        .await;
    assert!(
        permission_denied(write_audit),
        "identity wrote the audit schema"
    );

    let create = sqlx::query("CREATE TABLE identity.backdoor (id int)")
        .execute(&mut identity)
        .await;
    assert!(
        permission_denied(create),
        "the runtime role created a table"
    );
    let alter = sqlx::query("ALTER TABLE identity.users DISABLE ROW LEVEL SECURITY")
        .execute(&mut identity)
        .await;
    assert!(
        alter.is_err(),
        "the runtime role altered a table it must not own"
    );
    let public = sqlx::query("CREATE TABLE public.backdoor (id int)")
        .execute(&mut identity)
        .await;
    assert!(
        public.is_err(),
        "the runtime role created a table in public"
    );
}

#[tokio::test]
async fn row_level_security_shows_a_user_only_their_own_account() {
    let db = fitflow_testkit::database(&schemas()).await;
    let admin = db.admin_pool().await;
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    for (id, email) in [(alice, "alice@example.com"), (bob, "bob@example.com")] {
        sqlx::query("INSERT INTO identity.users (id, email, password_hash, display_name_sealed) VALUES ($1, $2, 'x', '\\x00')")
            .bind(id)
            .bind(email)
            .execute(&admin)
            .await
            .unwrap();
    }
    let pool = fitflow_db::connect(&db.runtime_url("identity"), "identity", 2)
        .await
        .unwrap();
    let as_alice = Caller::User(Principal {
        user_id: alice,
        session_id: Uuid::now_v7(),
        roles: vec![Role::Trainer],
        supervised_trainer_ids: vec![],
    });

    let mut tx = fitflow_db::tx(&pool, &as_alice).await.unwrap();
    let visible: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM users ORDER BY id")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, vec![alice]);
    let updated = sqlx::query("UPDATE users SET email_verified = true WHERE id = $1")
        .bind(bob)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 0, "alice changed bob's row");
    tx.rollback().await.unwrap();

    // The context is transaction-local: the next transaction on the same pool sees nothing.
    let mut tx = fitflow_db::tx(&pool, &Caller::Anonymous).await.unwrap();
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, 0);
}

#[tokio::test]
async fn every_migration_reverts_and_applies_again() {
    let db = fitflow_testkit::database(&schemas()).await;
    let admin_url = db.admin_url();
    for schema in schemas() {
        fitflow_db::migrate_down(&admin_url, schema.schema, schema.migrator, 0)
            .await
            .unwrap();
        let admin = db.admin_pool().await;
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name <> '_sqlx_migrations'",
        )
        .bind(schema.schema)
        .fetch_one(&admin)
        .await
        .unwrap();
        assert_eq!(tables, 0, "{} keeps tables after reverting", schema.schema);
        fitflow_db::migrate_up(&admin_url, schema.schema, schema.migrator)
            .await
            .unwrap();
    }
}
