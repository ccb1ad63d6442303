//! The retention archive: month partitions past retention leave the database
//! only as verified files.
//!
//! For each partition whose whole month ended at least the retention period
//! before the current month, in one transaction that holds the partition
//! against writes: COPY it out as CSV (ordered by chain and sequence, so the
//! export is deterministic) into `<partition>.csv` in the archive directory,
//! write `<partition>.csv.sha256` (`sha256sum -c` format), read the file back
//! and check it against a second COPY from the database, keep each row's
//! chain link in `archived_links`, record the partition in
//! `archived_partitions`, then DETACH and DROP it. Any failure rolls the
//! database back and leaves the partition in place: nothing is ever dropped
//! that is not in a checked file.
//!
//! Runs as the schema owner or a superuser (the runtime role may not detach
//! or drop); the SQL is in `repo`, this module owns the transaction and the
//! files.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt as _;
use ring::digest;
use sqlx::{PgConnection, PgPool};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::AuditError;
use crate::domain::{self, Log};
use crate::repo::{self, ArchivedPartitionRow};

/// Six years, HIPAA's retention period for documentation.
pub const DEFAULT_RETENTION_MONTHS: u32 = 72;

/// What to archive, where, and whether to only say what would be done.
#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    /// Where the CSV and checksum files go (created if missing).
    pub directory: PathBuf,
    /// Partitions whose month ended this many months before the current
    /// month are archived.
    pub retention_months: u32,
    /// The current time.
    pub now: DateTime<Utc>,
    /// Only list what would be archived; change nothing.
    pub dry_run: bool,
}

/// One partition past retention, archived or (in a dry run) to be archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedPartition {
    /// The partition's table name, e.g. `access_log_y2019m03`.
    pub partition: String,
    /// Its log.
    pub log: Log,
    /// The first day of its month.
    pub month: NaiveDate,
    /// Rows it held.
    pub rows: u64,
    /// The CSV file (not written in a dry run).
    pub file: PathBuf,
    /// Hex SHA-256 of the file; empty in a dry run.
    pub sha256: String,
    /// Whether it was detached and dropped (false in a dry run).
    pub dropped: bool,
}

/// Archives every partition of both logs past retention; see the module
/// documentation. Returns them in name order.
pub async fn archive_expired(
    admin: &PgPool,
    options: &ArchiveOptions,
) -> Result<Vec<ArchivedPartition>, AuditError> {
    let mut expired = Vec::new();
    for name in repo::partitions(admin).await? {
        if let Some((log, month)) = domain::partition_month(&name)
            && domain::past_retention(month, options.now, options.retention_months)
        {
            expired.push((name, log, month));
        }
    }
    if !options.dry_run && !expired.is_empty() {
        tokio::fs::create_dir_all(&options.directory).await?;
    }
    let mut archived = Vec::with_capacity(expired.len());
    for (partition, log, month) in expired {
        let file = options.directory.join(format!("{partition}.csv"));
        if options.dry_run {
            let rows = repo::count_rows(&mut *admin.acquire().await?, &partition).await?;
            archived.push(ArchivedPartition {
                partition,
                log,
                month,
                rows: u64::try_from(rows).unwrap_or(0),
                file,
                sha256: String::new(),
                dropped: false,
            });
            continue;
        }
        let done = archive_partition(admin, &partition, log, month, &file).await?;
        tracing::info!(
            partition = %done.partition,
            rows = done.rows,
            sha256 = %done.sha256,
            "audit partition archived and dropped"
        );
        archived.push(done);
    }
    Ok(archived)
}

async fn archive_partition(
    admin: &PgPool,
    partition: &str,
    log: Log,
    month: NaiveDate,
    file: &Path,
) -> Result<ArchivedPartition, AuditError> {
    if tokio::fs::try_exists(file).await? {
        return Err(AuditError::Archive(format!(
            "{} exists already; move it away before archiving {partition} again",
            file.display()
        )));
    }
    let mut transaction = admin.begin().await?;
    repo::lock_partition(&mut transaction, partition).await?;
    let rows = repo::count_rows(&mut transaction, partition).await?;

    let partial = file.with_extension("csv.partial");
    let written = copy_to_file(&mut transaction, partition, &partial).await?;
    tokio::fs::rename(&partial, file).await?;
    let from_file = sha256_of_file(file).await?;
    let from_database = sha256_of_copy(&mut transaction, partition).await?;
    if from_file != written || from_file != from_database {
        return Err(AuditError::Archive(format!(
            "{} does not match {partition}; the partition was kept",
            file.display()
        )));
    }
    let file_name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let checksum_file = file.with_extension("csv.sha256");
    tokio::fs::write(&checksum_file, format!("{from_file}  {file_name}\n")).await?;
    sync_file(&checksum_file).await?;

    repo::archive_links(&mut transaction, partition).await?;
    repo::record_archived_partition(
        &mut transaction,
        &ArchivedPartitionRow {
            partition,
            log,
            month,
            rows,
            file_name: &file_name,
            sha256: &from_file,
        },
    )
    .await?;
    repo::detach_and_drop(&mut transaction, log, partition).await?;
    transaction.commit().await?;
    Ok(ArchivedPartition {
        partition: partition.to_owned(),
        log,
        month,
        rows: u64::try_from(rows).unwrap_or(0),
        file: file.to_owned(),
        sha256: from_file,
        dropped: true,
    })
}

/// Streams `partition` as CSV into a new file at `path`, synced to disk;
/// returns the hex SHA-256 written.
async fn copy_to_file(
    conn: &mut PgConnection,
    partition: &str,
    path: &Path,
) -> Result<String, AuditError> {
    let mut out = tokio::fs::File::create(path).await?;
    let mut hash = digest::Context::new(&digest::SHA256);
    {
        let mut chunks = repo::copy_partition(conn, partition).await?;
        while let Some(chunk) = chunks.try_next().await? {
            hash.update(&chunk);
            out.write_all(&chunk).await?;
        }
    }
    out.flush().await?;
    out.sync_all().await?;
    Ok(hex::encode(hash.finish()))
}

/// The hex SHA-256 of the CSV copy of `partition` as it is now.
async fn sha256_of_copy(conn: &mut PgConnection, partition: &str) -> Result<String, AuditError> {
    let mut hash = digest::Context::new(&digest::SHA256);
    let mut chunks = repo::copy_partition(conn, partition).await?;
    while let Some(chunk) = chunks.try_next().await? {
        hash.update(&chunk);
    }
    Ok(hex::encode(hash.finish()))
}

/// The hex SHA-256 of the file at `path`, read back from disk.
pub async fn sha256_of_file(path: &Path) -> Result<String, AuditError> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hash = digest::Context::new(&digest::SHA256);
    let mut buffer = vec![0_u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        hash.update(&buffer[..read]);
    }
    Ok(hex::encode(hash.finish()))
}

async fn sync_file(path: &Path) -> Result<(), AuditError> {
    tokio::fs::File::open(path).await?.sync_all().await?;
    Ok(())
}
