//! All of the audit service's SQL, and nothing else. Functions that must
//! run inside a use case's transaction take a connection; the use case opens
//! and commits the transaction.

mod bench;
mod retention;

pub(crate) use bench::{
    create_database, drop_database, fill_outbox, generate_access_log, pending_outbox,
};
pub(crate) use retention::{
    ArchivedPartitionRow, archive_links, copy_partition, count_rows, detach_and_drop,
    lock_partition, partitions, record_archived_partition,
};

use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt as _;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Transaction};
use uuid::Uuid;

use crate::domain::{EventFilter, GENESIS_HASH, Log, StoredColumns, ValidEvent};

/// A chain's last link: its sequence and hash.
#[derive(Debug, Clone)]
pub(crate) struct ChainHead {
    /// The last link's sequence; 0 for an empty chain.
    pub(crate) sequence: i64,
    /// The last link's hash; [`GENESIS_HASH`] for an empty chain.
    pub(crate) hash: Vec<u8>,
}

/// Locks the head of `chain` until the transaction ends, creating it on
/// first use, and returns it.
pub(crate) async fn lock_chain_head(
    conn: &mut PgConnection,
    chain: &str,
) -> Result<ChainHead, sqlx::Error> {
    // The no-op update makes RETURNING yield the existing row.
    let (sequence, hash): (i64, Vec<u8>) = sqlx::query_as(
        "INSERT INTO chain_heads (chain, sequence, hash) VALUES ($1, 0, $2) \
         ON CONFLICT (chain) DO UPDATE SET chain = EXCLUDED.chain \
         RETURNING sequence, hash",
    )
    .bind(chain)
    .bind(GENESIS_HASH.as_slice())
    .fetch_one(conn)
    .await?;
    Ok(ChainHead { sequence, hash })
}

/// Moves the head of `chain` to `head`.
pub(crate) async fn move_chain_head(
    conn: &mut PgConnection,
    chain: &str,
    head: &ChainHead,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE chain_heads SET sequence = $2, hash = $3 WHERE chain = $1")
        .bind(chain)
        .bind(head.sequence)
        .bind(&head.hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Inserts the (source, id) keys of `events` into `ingested_events` in one
/// statement and returns those that were not there yet.
pub(crate) async fn claim_event_ids(
    conn: &mut PgConnection,
    events: &[ValidEvent],
) -> Result<Vec<(String, Uuid)>, sqlx::Error> {
    let mut event_ids = Vec::with_capacity(events.len());
    let mut sources = Vec::with_capacity(events.len());
    let mut logs = Vec::with_capacity(events.len());
    let mut occurred = Vec::with_capacity(events.len());
    for event in events {
        event_ids.push(event.event_id);
        sources.push(event.source_service.clone());
        logs.push(event.log().table().to_owned());
        occurred.push(event.occurred_at);
    }
    sqlx::query_as(
        "INSERT INTO ingested_events (event_id, source_service, log, occurred_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) \
         ON CONFLICT (source_service, event_id) DO NOTHING RETURNING source_service, event_id",
    )
    .bind(event_ids)
    .bind(sources)
    .bind(logs)
    .bind(occurred)
    .fetch_all(conn)
    .await
}

/// One new link of a chain: an event and where it goes.
#[derive(Debug)]
pub(crate) struct NewLink<'a> {
    /// The event.
    pub(crate) event: &'a ValidEvent,
    /// Its sequence in its source's chain.
    pub(crate) sequence: i64,
    /// The previous link's hash.
    pub(crate) prev_hash: Vec<u8>,
    /// Its own hash.
    pub(crate) hash: Vec<u8>,
}

/// The rows of one log to insert, column by column, for `UNNEST`.
#[derive(Default)]
struct LinkRows {
    event_id: Vec<Uuid>,
    occurred_at: Vec<DateTime<Utc>>,
    source_service: Vec<String>,
    chain_sequence: Vec<i64>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
    action: Vec<String>,
    actor_user_id: Vec<Option<Uuid>>,
    actor_service: Vec<Option<String>>,
    tenant_id: Vec<Option<Uuid>>,
    resource_type: Vec<String>,
    resource_id: Vec<Uuid>,
    changes: Vec<String>,
    client_address: Vec<Option<String>>,
    user_agent: Vec<Option<String>>,
    purpose: Vec<Option<String>>,
    trace_id: Vec<Option<String>>,
    event: Vec<Vec<u8>>,
}

impl LinkRows {
    fn push(&mut self, link: &NewLink<'_>) {
        let columns = link.event.columns();
        self.event_id.push(columns.event_id);
        self.occurred_at.push(columns.occurred_at);
        self.source_service.push(columns.source_service);
        self.chain_sequence.push(link.sequence);
        self.prev_hash.push(link.prev_hash.clone());
        self.hash.push(link.hash.clone());
        self.action.push(columns.action);
        self.actor_user_id.push(columns.actor_user_id);
        self.actor_service.push(columns.actor_service);
        self.tenant_id.push(columns.tenant_id);
        self.resource_type.push(columns.resource_type);
        self.resource_id.push(columns.resource_id);
        self.changes.push(columns.changes.to_string());
        self.client_address
            .push(columns.client_address.map(|address| address.to_string()));
        self.user_agent.push(columns.user_agent);
        self.purpose.push(columns.purpose);
        self.trace_id.push(columns.trace_id);
        self.event.push(link.event.encoded.clone());
    }
}

/// Inserts `links` into `log` with one multi-row statement.
pub(crate) async fn insert_links(
    conn: &mut PgConnection,
    log: Log,
    links: &[NewLink<'_>],
) -> Result<(), sqlx::Error> {
    let mut rows = LinkRows::default();
    for link in links {
        rows.push(link);
    }
    let statement = format!(
        "INSERT INTO {table} (event_id, occurred_at, source_service, chain_sequence, prev_hash, \
         hash, action, actor_user_id, actor_service, tenant_id, resource_type, resource_id, \
         changes, client_address, user_agent, purpose, trace_id, event) \
         SELECT event_id, occurred_at, source_service, chain_sequence, prev_hash, hash, action, \
         actor_user_id, actor_service, tenant_id, resource_type, resource_id, changes::jsonb, \
         client_address::inet, user_agent, purpose, trace_id, event \
         FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::bigint[], $5::bytea[], \
         $6::bytea[], $7::text[], $8::uuid[], $9::text[], $10::uuid[], $11::text[], $12::uuid[], \
         $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::bytea[]) \
         AS rows (event_id, occurred_at, source_service, chain_sequence, prev_hash, hash, action, \
         actor_user_id, actor_service, tenant_id, resource_type, resource_id, changes, \
         client_address, user_agent, purpose, trace_id, event)",
        table = log.table()
    );
    sqlx::query(&statement)
        .bind(rows.event_id)
        .bind(rows.occurred_at)
        .bind(rows.source_service)
        .bind(rows.chain_sequence)
        .bind(rows.prev_hash)
        .bind(rows.hash)
        .bind(rows.action)
        .bind(rows.actor_user_id)
        .bind(rows.actor_service)
        .bind(rows.tenant_id)
        .bind(rows.resource_type)
        .bind(rows.resource_id)
        .bind(rows.changes)
        .bind(rows.client_address)
        .bind(rows.user_agent)
        .bind(rows.purpose)
        .bind(rows.trace_id)
        .bind(rows.event)
        .execute(conn)
        .await?;
    Ok(())
}

/// One stored event as listed.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ListedEvent {
    pub(crate) event_id: Uuid,
    pub(crate) occurred_at: DateTime<Utc>,
    pub(crate) stored_at: DateTime<Utc>,
    pub(crate) chain_sequence: i64,
    pub(crate) hash: Vec<u8>,
    pub(crate) event: Vec<u8>,
}

/// Events of both logs matching `filter`, newest first (by occur time, then
/// event id), after the filter's cursor; at most `page_size + 1` rows so the
/// caller can tell whether another page follows.
pub(crate) async fn list_events(
    pool: &PgPool,
    filter: &EventFilter,
) -> Result<Vec<ListedEvent>, sqlx::Error> {
    let limit = i64::from(filter.page_size) + 1;
    let mut query = QueryBuilder::<Postgres>::new("SELECT * FROM (");
    let logs: Vec<Log> = match filter.log {
        Some(log) => vec![log],
        None => Log::ALL.to_vec(),
    };
    for (position, log) in logs.into_iter().enumerate() {
        if position > 0 {
            query.push(" UNION ALL ");
        }
        query.push(format!(
            "(SELECT event_id, occurred_at, stored_at, chain_sequence, hash, event FROM {} WHERE TRUE",
            log.table()
        ));
        if let Some(resource_type) = &filter.resource_type {
            query
                .push(" AND resource_type = ")
                .push_bind(resource_type.clone());
        }
        if let Some(resource_id) = filter.resource_id {
            query.push(" AND resource_id = ").push_bind(resource_id);
        }
        if let Some(actor_user_id) = filter.actor_user_id {
            query.push(" AND actor_user_id = ").push_bind(actor_user_id);
        }
        if let Some(tenant_id) = filter.tenant_id {
            query.push(" AND tenant_id = ").push_bind(tenant_id);
        }
        if let Some(start_time) = filter.start_time {
            query.push(" AND occurred_at >= ").push_bind(start_time);
        }
        if let Some(end_time) = filter.end_time {
            query.push(" AND occurred_at < ").push_bind(end_time);
        }
        if let Some(source_service) = &filter.source_service {
            query
                .push(" AND source_service = ")
                .push_bind(source_service.clone());
        }
        if let Some(after) = filter.after {
            query
                .push(" AND (occurred_at, event_id) < (")
                .push_bind(after.occurred_at)
                .push(", ")
                .push_bind(after.event_id)
                .push(")");
        }
        query
            .push(" ORDER BY occurred_at DESC, event_id DESC LIMIT ")
            .push_bind(limit)
            .push(")");
    }
    query
        .push(") AS events ORDER BY occurred_at DESC, event_id DESC LIMIT ")
        .push_bind(limit);
    query.build_query_as::<ListedEvent>().fetch_all(pool).await
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    archived: bool,
    chain_sequence: i64,
    hash: Vec<u8>,
    prev_hash: Option<Vec<u8>>,
    event: Option<Vec<u8>>,
    event_id: Option<Uuid>,
    occurred_at: Option<DateTime<Utc>>,
    source_service: Option<String>,
    action: Option<String>,
    actor_user_id: Option<Uuid>,
    actor_service: Option<String>,
    tenant_id: Option<Uuid>,
    resource_type: Option<String>,
    resource_id: Option<Uuid>,
    changes: Option<Json<serde_json::Value>>,
    client_address: Option<String>,
    user_agent: Option<String>,
    purpose: Option<String>,
    trace_id: Option<String>,
}

/// A stored row of a chain, as read back.
pub(crate) struct StoredLink {
    /// Its sequence.
    pub(crate) sequence: i64,
    /// The previous link's hash, as stored.
    pub(crate) prev_hash: Vec<u8>,
    /// Its hash, as stored.
    pub(crate) hash: Vec<u8>,
    /// The event's bytes, as stored.
    pub(crate) event: Vec<u8>,
    /// The row's queryable columns.
    pub(crate) columns: StoredColumns,
}

/// A link of a chain as read back: a stored row, or an archived one of
/// which only the sequence and hash remain.
pub(crate) enum VisitedLink {
    /// A row still in the logs.
    Stored(Box<StoredLink>),
    /// A row the retention archive exported and dropped.
    Archived { sequence: i64, hash: Vec<u8> },
}

fn required<T>(value: Option<T>) -> Result<T, sqlx::Error> {
    value.ok_or_else(|| sqlx::Error::Protocol("a stored chain link has a NULL column".to_owned()))
}

impl TryFrom<LinkRow> for VisitedLink {
    type Error = sqlx::Error;

    fn try_from(row: LinkRow) -> Result<Self, Self::Error> {
        if row.archived {
            return Ok(VisitedLink::Archived {
                sequence: row.chain_sequence,
                hash: row.hash,
            });
        }
        // PostgreSQL's host() of an inet always parses; anything else is a decode failure.
        let client_address = row
            .client_address
            .map(|text| text.parse::<IpAddr>())
            .transpose()
            .map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
        Ok(VisitedLink::Stored(Box::new(StoredLink {
            sequence: row.chain_sequence,
            prev_hash: required(row.prev_hash)?,
            hash: row.hash,
            event: required(row.event)?,
            columns: StoredColumns {
                event_id: required(row.event_id)?,
                occurred_at: required(row.occurred_at)?,
                source_service: required(row.source_service)?,
                action: required(row.action)?,
                actor_user_id: row.actor_user_id,
                actor_service: row.actor_service,
                tenant_id: row.tenant_id,
                resource_type: required(row.resource_type)?,
                resource_id: required(row.resource_id)?,
                changes: required(row.changes)?.0,
                client_address,
                user_agent: row.user_agent,
                purpose: row.purpose,
                trace_id: row.trace_id,
            },
        })))
    }
}

/// A read-only transaction that sees one snapshot throughout.
pub(crate) async fn begin_snapshot(
    pool: &PgPool,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *transaction)
        .await?;
    Ok(transaction)
}

/// The head (last sequence and hash) of `chain`, if it has one.
pub(crate) async fn chain_head(
    conn: &mut PgConnection,
    chain: &str,
) -> Result<Option<(i64, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as("SELECT sequence, hash FROM chain_heads WHERE chain = $1")
        .bind(chain)
        .fetch_optional(conn)
        .await
}

/// Streams the links of `chain` (stored and archived) in sequence order into
/// `visit`, until it returns false.
pub(crate) async fn visit_chain(
    conn: &mut PgConnection,
    chain: &str,
    mut visit: impl FnMut(VisitedLink) -> bool,
) -> Result<(), sqlx::Error> {
    let mut statement = String::new();
    for log in Log::ALL {
        statement.push_str(&format!(
            "SELECT false AS archived, chain_sequence, hash, prev_hash, event, event_id, \
             occurred_at, source_service, action, actor_user_id, actor_service, tenant_id, \
             resource_type, resource_id, changes, host(client_address) AS client_address, \
             user_agent, purpose, trace_id \
             FROM {} WHERE source_service = $1 UNION ALL ",
            log.table()
        ));
    }
    statement.push_str(
        "SELECT true, sequence, hash, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
         NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM archived_links WHERE chain = $1 \
         ORDER BY chain_sequence",
    );
    let mut rows = sqlx::query_as::<_, LinkRow>(&statement)
        .bind(chain)
        .fetch(conn);
    while let Some(row) = rows.try_next().await? {
        if !visit(VisitedLink::try_from(row)?) {
            break;
        }
    }
    Ok(())
}

/// Every chain with a head, by name.
pub(crate) async fn chains(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT chain FROM chain_heads ORDER BY chain")
        .fetch_all(pool)
        .await
}

/// Creates the partitions of both logs for the month starting `month`, unless they exist.
pub(crate) async fn ensure_month_partitions(
    pool: &PgPool,
    month: NaiveDate,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT ensure_month_partitions($1)")
        .bind(month)
        .execute(pool)
        .await?;
    Ok(())
}
