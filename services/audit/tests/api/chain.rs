//! The hash chain detects edited and deleted rows.

use fitflow_audit::{BreakKind, ChainBreak};

use crate::helpers::{change_event, ingest, test_audit, view_event};

async fn five_linked_events() -> crate::helpers::TestAudit {
    let audit = test_audit().await;
    let mut client = audit.ingest_client(Some("clients")).await;
    let batch = vec![
        change_event("clients", 5),
        view_event("clients", 4),
        change_event("clients", 3),
        view_event("clients", 2),
        change_event("clients", 1),
    ];
    ingest(&mut client, vec![batch]).await;
    let report = fitflow_audit::verify_chain(&audit.pool, "clients")
        .await
        .expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified_links, 5);
    audit
}

async fn run_as_superuser(audit: &crate::helpers::TestAudit, statement: &str) {
    let admin = audit.admin_pool().await;
    for table in ["audit_log", "access_log"] {
        sqlx::query(&statement.replace("{table}", table))
            .execute(&admin)
            .await
            .expect("tamper as the superuser");
    }
}

#[tokio::test]
async fn an_edited_column_is_named_as_the_first_broken_sequence() {
    let audit = five_linked_events().await;
    run_as_superuser(
        &audit,
        "UPDATE audit.{table} SET resource_type = 'invoices' WHERE chain_sequence = 3",
    )
    .await;

    let report = fitflow_audit::verify_chain(&audit.pool, "clients")
        .await
        .expect("verify");

    assert_eq!(
        report.first_break,
        Some(ChainBreak {
            sequence: 3,
            kind: BreakKind::ColumnsAltered
        })
    );
    assert_eq!(report.verified_links, 2);
}

#[tokio::test]
async fn a_rewritten_hash_is_named_as_the_first_broken_sequence() {
    let audit = five_linked_events().await;
    run_as_superuser(
        &audit,
        "UPDATE audit.{table} SET hash = sha256('forged'::bytea) WHERE chain_sequence = 3",
    )
    .await;

    let report = fitflow_audit::verify_chain(&audit.pool, "clients")
        .await
        .expect("verify");

    assert_eq!(
        report.first_break,
        Some(ChainBreak {
            sequence: 3,
            kind: BreakKind::HashMismatch
        })
    );
}

#[tokio::test]
async fn a_deleted_row_is_named_as_the_first_broken_sequence() {
    let audit = five_linked_events().await;
    run_as_superuser(&audit, "DELETE FROM audit.{table} WHERE chain_sequence = 2").await;

    let report = fitflow_audit::verify_chain(&audit.pool, "clients")
        .await
        .expect("verify");

    assert_eq!(
        report.first_break,
        Some(ChainBreak {
            sequence: 2,
            kind: BreakKind::Missing
        })
    );
}

#[tokio::test]
async fn a_deleted_newest_row_is_caught_by_the_chain_head() {
    let audit = five_linked_events().await;
    run_as_superuser(&audit, "DELETE FROM audit.{table} WHERE chain_sequence = 5").await;

    let report = fitflow_audit::verify_chain(&audit.pool, "clients")
        .await
        .expect("verify");

    assert_eq!(
        report.first_break,
        Some(ChainBreak {
            sequence: 5,
            kind: BreakKind::Missing
        })
    );
}
