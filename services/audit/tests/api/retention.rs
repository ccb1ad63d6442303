//! Retention: partitions past retention leave only as verified files, and
//! time ranges prune partitions.

use chrono::{TimeZone as _, Utc};
use fitflow_audit::retention::{self, ArchiveOptions, DEFAULT_RETENTION_MONTHS};
use fitflow_proto::audit::AuditEvent;

use crate::helpers::{TestAudit, change_event, ingest, test_audit, view_event};

fn in_march_2019(event: AuditEvent, day: u32) -> AuditEvent {
    AuditEvent {
        occur_time: Some(prost_types::Timestamp {
            seconds: Utc
                .with_ymd_and_hms(2019, 3, day, 10, 0, 0)
                .single()
                .expect("time")
                .timestamp(),
            nanos: 0,
        }),
        ..event
    }
}

/// Partitions for March to May 2019, and a chain of five events in which
/// two old ones (one per log) sit between recent ones.
async fn with_an_old_month() -> TestAudit {
    let audit = test_audit().await;
    let march_2019 = Utc
        .with_ymd_and_hms(2019, 3, 1, 0, 0, 0)
        .single()
        .expect("time");
    fitflow_audit::ensure_partitions(&audit.pool, march_2019)
        .await
        .expect("old partitions");
    let mut client = audit.ingest_client(Some("clients")).await;
    let batch = vec![
        change_event("clients", 3),
        in_march_2019(change_event("clients", 0), 10),
        view_event("clients", 2),
        in_march_2019(view_event("clients", 0), 11),
        change_event("clients", 1),
    ];
    ingest(&mut client, vec![batch]).await;
    audit
}

async fn table_exists(audit: &TestAudit, name: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("audit.{name}"))
        .fetch_one(&audit.pool)
        .await
        .expect("look up the table")
}

#[tokio::test]
async fn a_partition_past_retention_is_written_checked_and_only_then_dropped() {
    let audit = with_an_old_month().await;
    let admin = audit.admin_pool().await;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let options = ArchiveOptions {
        directory: directory.path().to_owned(),
        retention_months: DEFAULT_RETENTION_MONTHS,
        now: Utc::now(),
        dry_run: true,
    };

    let planned = retention::archive_expired(&admin, &options)
        .await
        .expect("dry run");
    let names: Vec<&str> = planned.iter().map(|p| p.partition.as_str()).collect();
    assert_eq!(
        names,
        [
            "access_log_y2019m03",
            "access_log_y2019m04",
            "access_log_y2019m05",
            "audit_log_y2019m03",
            "audit_log_y2019m04",
            "audit_log_y2019m05"
        ]
    );
    assert!(planned.iter().all(|p| !p.dropped));
    assert_eq!(planned[0].rows, 1);
    assert!(table_exists(&audit, "audit_log_y2019m03").await);
    assert_eq!(audit.stored_count().await, 5);

    let archived = retention::archive_expired(
        &admin,
        &ArchiveOptions {
            dry_run: false,
            ..options
        },
    )
    .await
    .expect("archive");
    assert_eq!(archived.len(), 6);
    for partition in &archived {
        assert!(partition.dropped);
        assert!(!table_exists(&audit, &partition.partition).await);
        let on_disk = retention::sha256_of_file(&partition.file)
            .await
            .expect("the file is readable");
        assert_eq!(on_disk, partition.sha256);
        let checksum_line =
            std::fs::read_to_string(partition.file.with_extension("csv.sha256")).expect("sum");
        assert_eq!(
            checksum_line,
            format!("{}  {}.csv\n", partition.sha256, partition.partition)
        );
    }
    let march = std::fs::read_to_string(directory.path().join("audit_log_y2019m03.csv"))
        .expect("the archive");
    assert_eq!(march.lines().count(), 2, "a header and the one old change");
    assert_eq!(audit.stored_count().await, 3);

    // The chain still verifies across the archived links, and keeps growing.
    let report = fitflow_audit::verify_chain(&audit.pool, "clients")
        .await
        .expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified_links, 5);
    let mut client = audit.ingest_client(Some("clients")).await;
    ingest(&mut client, vec![vec![change_event("clients", 0)]]).await;
    let report = fitflow_audit::verify_chain(&audit.pool, "clients")
        .await
        .expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified_links, 6);
}

#[tokio::test]
async fn a_partition_whose_archive_file_exists_is_kept() {
    let audit = with_an_old_month().await;
    let directory = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        directory.path().join("access_log_y2019m03.csv"),
        "older run",
    )
    .expect("write");
    let refused = retention::archive_expired(
        &audit.admin_pool().await,
        &ArchiveOptions {
            directory: directory.path().to_owned(),
            retention_months: DEFAULT_RETENTION_MONTHS,
            now: Utc::now(),
            dry_run: false,
        },
    )
    .await;
    assert!(refused.is_err());
    assert!(table_exists(&audit, "access_log_y2019m03").await);
    assert_eq!(audit.stored_count().await, 5);
}

#[tokio::test]
async fn a_time_range_lets_postgresql_prune_to_the_months_it_covers() {
    let audit = with_an_old_month().await;
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT event_id FROM access_log \
         WHERE resource_type = 'clients' AND resource_id = gen_random_uuid() \
         AND occurred_at >= '2019-03-05T00:00:00Z' AND occurred_at < '2019-04-01T00:00:00Z' \
         ORDER BY occurred_at DESC, event_id DESC LIMIT 51",
    )
    .fetch_all(&audit.pool)
    .await
    .expect("explain");
    // Every scan names its table after "on": only March 2019 is read.
    let scanned: std::collections::BTreeSet<&str> = plan
        .iter()
        .flat_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words
                .windows(2)
                .filter(|pair| pair[0] == "on")
                .map(|pair| pair[1])
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        scanned.into_iter().collect::<Vec<_>>(),
        ["access_log_y2019m03"],
        "{}",
        plan.join("\n")
    );
}
