//! Storage: partitions, append-only privileges, reversible migrations.

use chrono::{TimeZone as _, Utc};
use fitflow_audit::{MIGRATOR, SCHEMA};
use uuid::Uuid;

use crate::helpers::{change_event, ingest, test_audit};

async fn partition_of(pool: &sqlx::PgPool, event_id: &str) -> String {
    let event_id = Uuid::try_parse(event_id).expect("uuid");
    sqlx::query_scalar("SELECT tableoid::regclass::text FROM audit_log WHERE event_id = $1")
        .bind(event_id)
        .fetch_one(pool)
        .await
        .expect("the event is stored")
}

#[tokio::test]
async fn an_event_for_a_month_without_a_partition_is_stored_and_moved_once_the_partition_exists() {
    let audit = test_audit().await;
    let mut client = audit.ingest_client(Some("clients")).await;
    let mut old = change_event("clients", 0);
    old.occur_time = Some(prost_types::Timestamp {
        seconds: Utc
            .with_ymd_and_hms(2019, 3, 15, 10, 0, 0)
            .single()
            .expect("time")
            .timestamp(),
        nanos: 0,
    });

    let response = ingest(&mut client, vec![vec![old.clone()]]).await.remove(0);
    assert_eq!(response.acknowledged_event_ids, [old.event_id.clone()]);
    assert_eq!(
        partition_of(&audit.pool, &old.event_id).await,
        "audit_log_default"
    );

    let march_2019 = Utc
        .with_ymd_and_hms(2019, 3, 1, 0, 0, 0)
        .single()
        .expect("time");
    let created = fitflow_audit::ensure_partitions(&audit.pool, march_2019)
        .await
        .expect("the runtime role may ensure partitions");
    assert_eq!(
        created,
        [
            "audit_log_y2019m03",
            "audit_log_y2019m04",
            "audit_log_y2019m05"
        ]
    );
    assert_eq!(
        partition_of(&audit.pool, &old.event_id).await,
        "audit_log_y2019m03"
    );
    let report = fitflow_audit::verify_chain(&audit.pool, "clients")
        .await
        .expect("verify");
    assert!(report.is_intact(), "{report:?}");
}

#[tokio::test]
async fn ensuring_partitions_twice_is_harmless_and_new_events_land_in_them() {
    let audit = test_audit().await;
    let now = Utc::now();
    fitflow_audit::ensure_partitions(&audit.pool, now)
        .await
        .expect("first");
    let names = fitflow_audit::ensure_partitions(&audit.pool, now)
        .await
        .expect("again");
    let access_names: Vec<String> = names
        .iter()
        .map(|name| name.replace("audit_log", "access_log"))
        .collect();
    let existing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class WHERE relname = ANY($1) AND relnamespace = 'audit'::regnamespace",
    )
    .bind([names.clone(), access_names].concat())
    .fetch_one(&audit.pool)
    .await
    .expect("count partitions");
    assert_eq!(existing, 6);

    let mut client = audit.ingest_client(Some("clients")).await;
    let event = change_event("clients", 0);
    ingest(&mut client, vec![vec![event.clone()]]).await;
    assert_eq!(partition_of(&audit.pool, &event.event_id).await, names[0]);
}

#[tokio::test]
async fn the_runtime_role_cannot_update_delete_or_truncate_stored_events() {
    let audit = test_audit().await;
    let mut client = audit.ingest_client(Some("clients")).await;
    ingest(&mut client, vec![vec![change_event("clients", 0)]]).await;
    let names = fitflow_audit::ensure_partitions(&audit.pool, Utc::now())
        .await
        .expect("partitions");

    let statements = [
        "UPDATE audit_log SET resource_type = 'x'".to_owned(),
        "DELETE FROM audit_log".to_owned(),
        "DELETE FROM access_log".to_owned(),
        "TRUNCATE audit_log".to_owned(),
        "DELETE FROM audit_log_default".to_owned(),
        format!("DELETE FROM {}", names[0]),
        format!("UPDATE {} SET hash = ''", names[0]),
        "DELETE FROM ingested_events".to_owned(),
        "DELETE FROM chain_heads".to_owned(),
    ];
    for statement in statements {
        let error = sqlx::query(&statement)
            .execute(&audit.pool)
            .await
            .expect_err("the runtime role must be refused");
        let code = error
            .as_database_error()
            .and_then(|db| db.code())
            .map(|code| code.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{statement}: {error}");
    }
    assert_eq!(audit.stored_count().await, 1);
}

#[tokio::test]
async fn the_migration_reverts_cleanly_and_applies_again() {
    let audit = test_audit().await;
    let admin_url = audit.database.admin_url();
    let admin = audit.admin_pool().await;
    let audit_tables = "SELECT count(*) FROM pg_class WHERE relnamespace = 'audit'::regnamespace \
                        AND relname <> '_sqlx_migrations' AND relname NOT LIKE '_sqlx_migrations%'";
    let functions = "SELECT count(*) FROM pg_proc WHERE pronamespace = 'audit'::regnamespace";

    fitflow_db::migrate_down(&admin_url, SCHEMA, &MIGRATOR, 0)
        .await
        .expect("revert");
    let tables_left: i64 = sqlx::query_scalar(audit_tables)
        .fetch_one(&admin)
        .await
        .expect("count");
    let functions_left: i64 = sqlx::query_scalar(functions)
        .fetch_one(&admin)
        .await
        .expect("count");
    assert_eq!((tables_left, functions_left), (0, 0));

    fitflow_db::migrate_up(&admin_url, SCHEMA, &MIGRATOR)
        .await
        .expect("apply again");
    let mut client = audit.ingest_client(Some("clients")).await;
    let response = ingest(&mut client, vec![vec![change_event("clients", 0)]])
        .await
        .remove(0);
    assert_eq!(response.acknowledged_event_ids.len(), 1);
}
