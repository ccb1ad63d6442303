//! The platform migration 0003: its validation query and its reversal.

use sqlx::PgPool;

use crate::helpers::{PLATFORM, SCHEMA, harness};

const UP: &str = include_str!("../../../fitflow-db/platform/0003_idempotency_keys.up.sql");

/// The query the platform migrator runs after applying the migration: the
/// file must end with `-- validate:` and `-- SELECT …;`.
fn validation_query() -> &'static str {
    let mut lines = UP.lines().rev().filter(|line| !line.trim().is_empty());
    let query = lines.next().expect("a last line");
    assert_eq!(lines.next(), Some("-- validate:"));
    let query = query.strip_prefix("-- ").expect("a commented query");
    assert!(
        query.starts_with("SELECT ") && query.ends_with(';'),
        "{query}"
    );
    query
}

async fn validates(admin: &PgPool) -> bool {
    let mut conn = admin.acquire().await.expect("connection");
    sqlx::query(&format!("SET search_path TO {SCHEMA}"))
        .execute(&mut *conn)
        .await
        .expect("search path");
    sqlx::query_scalar(validation_query())
        .fetch_one(&mut *conn)
        .await
        .expect("run the validation query")
}

#[tokio::test]
async fn the_migration_validates_when_applied_and_not_after_it_is_reverted() {
    let harness = harness().await;
    assert!(validates(&harness.admin).await);

    let admin_url = harness.database.admin_url();
    fitflow_db::migrate_down(&admin_url, SCHEMA, &PLATFORM, 2)
        .await
        .expect("revert 0003");
    assert!(!validates(&harness.admin).await);

    fitflow_db::migrate_up(&admin_url, SCHEMA, &PLATFORM)
        .await
        .expect("apply 0003 again");
    assert!(validates(&harness.admin).await);
}
