//! The retention archive's SQL. It runs as the schema owner or a superuser
//! (the runtime role may not detach or drop), so every name is
//! schema-qualified instead of relying on `search_path`.

use chrono::NaiveDate;
use futures::stream::BoxStream;
use futures::{StreamExt as _, TryStreamExt as _};
use sqlx::{PgConnection, PgPool};

use crate::SCHEMA;
use crate::domain::Log;

fn qualified(table: &str) -> String {
    format!("\"{SCHEMA}\".\"{table}\"")
}

/// The month partitions of both logs, by name.
pub(crate) async fn partitions(admin: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT child.relname::text FROM pg_inherits \
         JOIN pg_class child ON child.oid = pg_inherits.inhrelid \
         JOIN pg_class parent ON parent.oid = pg_inherits.inhparent \
         JOIN pg_namespace ON pg_namespace.oid = parent.relnamespace \
         WHERE pg_namespace.nspname = $1 AND parent.relname IN ('audit_log', 'access_log') \
         ORDER BY child.relname",
    )
    .bind(SCHEMA)
    .fetch_all(admin)
    .await
}

/// Rows in `partition`.
pub(crate) async fn count_rows(
    conn: &mut PgConnection,
    partition: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {}", qualified(partition)))
        .fetch_one(conn)
        .await
}

/// Holds `partition` against writes until the transaction ends; reads go on.
pub(crate) async fn lock_partition(
    conn: &mut PgConnection,
    partition: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "LOCK TABLE {} IN EXCLUSIVE MODE",
        qualified(partition)
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// `partition` as CSV with a header, ordered by chain and sequence so that
/// two copies of an unchanged partition are byte for byte the same.
pub(crate) async fn copy_partition<'c>(
    conn: &'c mut PgConnection,
    partition: &str,
) -> Result<BoxStream<'c, Result<Vec<u8>, sqlx::Error>>, sqlx::Error> {
    let copy = format!(
        "COPY (SELECT * FROM {} ORDER BY source_service, chain_sequence) \
         TO STDOUT WITH (FORMAT csv, HEADER true)",
        qualified(partition)
    );
    let chunks = conn.copy_out_raw(&copy).await?;
    Ok(chunks.map_ok(|chunk| chunk.to_vec()).boxed())
}

/// Keeps the chain link (source, sequence, hash) of every row of `partition`.
pub(crate) async fn archive_links(
    conn: &mut PgConnection,
    partition: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO {} (chain, sequence, hash, partition) \
         SELECT source_service, chain_sequence, hash, $1 FROM {}",
        qualified("archived_links"),
        qualified(partition)
    ))
    .bind(partition)
    .execute(conn)
    .await?;
    Ok(())
}

/// One archived partition, as recorded in `archived_partitions`.
#[derive(Debug)]
pub(crate) struct ArchivedPartitionRow<'a> {
    /// The partition's name.
    pub(crate) partition: &'a str,
    /// Its log.
    pub(crate) log: Log,
    /// The first day of its month.
    pub(crate) month: NaiveDate,
    /// Rows it held.
    pub(crate) rows: i64,
    /// The archive file's name.
    pub(crate) file_name: &'a str,
    /// Hex SHA-256 of the archive file.
    pub(crate) sha256: &'a str,
}

/// Records an archived partition.
pub(crate) async fn record_archived_partition(
    conn: &mut PgConnection,
    row: &ArchivedPartitionRow<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO {} (partition, log, month, row_count, file_name, sha256) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        qualified("archived_partitions")
    ))
    .bind(row.partition)
    .bind(row.log.table())
    .bind(row.month)
    .bind(row.rows)
    .bind(row.file_name)
    .bind(row.sha256)
    .execute(conn)
    .await?;
    Ok(())
}

/// Detaches `partition` from `log` and drops it.
pub(crate) async fn detach_and_drop(
    conn: &mut PgConnection,
    log: Log,
    partition: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "ALTER TABLE {} DETACH PARTITION {}",
        qualified(log.table()),
        qualified(partition)
    ))
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!("DROP TABLE {}", qualified(partition)))
        .execute(conn)
        .await?;
    Ok(())
}
