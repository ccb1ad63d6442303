//! All of the audit service's SQL.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt as _;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::{self, ChainLink, EventFilter, GENESIS_HASH, Log, StoredColumns, ValidEvent};

/// A chain's last link: its sequence and hash.
struct ChainHead {
    sequence: i64,
    hash: Vec<u8>,
}

/// Stores `events` in one transaction, each as the next link of its source's
/// chain, skipping event ids already stored. Returns every event id, stored
/// now or before. Chain heads are locked in name order, so concurrent
/// batches of one source serialise and batches of several never deadlock.
pub(crate) async fn store_batch(
    pool: &PgPool,
    events: &[ValidEvent],
) -> Result<Vec<Uuid>, sqlx::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut transaction = pool.begin().await?;
    let chains: BTreeSet<&str> = events
        .iter()
        .map(|event| event.source_service.as_str())
        .collect();
    let mut heads = BTreeMap::new();
    for chain in chains {
        sqlx::query(
            "INSERT INTO chain_heads (chain, sequence, hash) VALUES ($1, 0, $2) \
             ON CONFLICT (chain) DO NOTHING",
        )
        .bind(chain)
        .bind(GENESIS_HASH.as_slice())
        .execute(&mut *transaction)
        .await?;
        let (sequence, hash): (i64, Vec<u8>) =
            sqlx::query_as("SELECT sequence, hash FROM chain_heads WHERE chain = $1 FOR UPDATE")
                .bind(chain)
                .fetch_one(&mut *transaction)
                .await?;
        heads.insert(chain, ChainHead { sequence, hash });
    }

    let mut acknowledged = Vec::with_capacity(events.len());
    for event in events {
        let log = event.log();
        let first_time = sqlx::query(
            "INSERT INTO ingested_events (event_id, source_service, log, occurred_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event.event_id)
        .bind(&event.source_service)
        .bind(log.table())
        .bind(event.occurred_at)
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            == 1;
        if first_time {
            let Some(head) = heads.get_mut(event.source_service.as_str()) else {
                return Err(sqlx::Error::Protocol("chain head not locked".to_owned()));
            };
            let sequence = head.sequence + 1;
            let hash = domain::chain_hash(&head.hash, sequence, event);
            insert_event(&mut transaction, log, event, sequence, &head.hash, &hash).await?;
            head.sequence = sequence;
            head.hash = hash.to_vec();
        }
        acknowledged.push(event.event_id);
    }

    for (chain, head) in &heads {
        sqlx::query("UPDATE chain_heads SET sequence = $2, hash = $3 WHERE chain = $1")
            .bind(chain)
            .bind(head.sequence)
            .bind(&head.hash)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(acknowledged)
}

async fn insert_event(
    transaction: &mut sqlx::Transaction<'_, Postgres>,
    log: Log,
    event: &ValidEvent,
    sequence: i64,
    prev_hash: &[u8],
    hash: &[u8],
) -> Result<(), sqlx::Error> {
    let columns = event.columns();
    let statement = format!(
        "INSERT INTO {table} (event_id, occurred_at, source_service, chain_sequence, prev_hash, \
         hash, action, actor_user_id, actor_service, tenant_id, resource_type, resource_id, \
         changes, client_address, user_agent, purpose, trace_id, event) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::inet, $15, $16, $17, $18)",
        table = log.table()
    );
    sqlx::query(&statement)
        .bind(columns.event_id)
        .bind(columns.occurred_at)
        .bind(&columns.source_service)
        .bind(sequence)
        .bind(prev_hash)
        .bind(hash)
        .bind(&columns.action)
        .bind(columns.actor_user_id)
        .bind(&columns.actor_service)
        .bind(columns.tenant_id)
        .bind(&columns.resource_type)
        .bind(columns.resource_id)
        .bind(Json(&columns.changes))
        .bind(columns.client_address.map(|address| address.to_string()))
        .bind(&columns.user_agent)
        .bind(&columns.purpose)
        .bind(&columns.trace_id)
        .bind(&event.encoded)
        .execute(&mut **transaction)
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
    let mut query = QueryBuilder::<Postgres>::new("");
    for (position, log) in Log::ALL.into_iter().enumerate() {
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
        .push(" ORDER BY occurred_at DESC, event_id DESC LIMIT ")
        .push_bind(limit);
    query.build_query_as::<ListedEvent>().fetch_all(pool).await
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    chain_sequence: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
    event: Vec<u8>,
    event_id: Uuid,
    occurred_at: DateTime<Utc>,
    source_service: String,
    action: String,
    actor_user_id: Option<Uuid>,
    actor_service: Option<String>,
    tenant_id: Option<Uuid>,
    resource_type: String,
    resource_id: Uuid,
    changes: Json<serde_json::Value>,
    client_address: Option<String>,
    user_agent: Option<String>,
    purpose: Option<String>,
    trace_id: Option<String>,
}

impl TryFrom<LinkRow> for ChainLink {
    type Error = sqlx::Error;

    fn try_from(row: LinkRow) -> Result<Self, Self::Error> {
        // PostgreSQL's host() of an inet always parses; anything else is a decode failure.
        let client_address = row
            .client_address
            .map(|text| text.parse::<IpAddr>())
            .transpose()
            .map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
        Ok(ChainLink {
            sequence: row.chain_sequence,
            prev_hash: row.prev_hash,
            hash: row.hash,
            event: row.event,
            columns: StoredColumns {
                event_id: row.event_id,
                occurred_at: row.occurred_at,
                source_service: row.source_service,
                action: row.action,
                actor_user_id: row.actor_user_id,
                actor_service: row.actor_service,
                tenant_id: row.tenant_id,
                resource_type: row.resource_type,
                resource_id: row.resource_id,
                changes: row.changes.0,
                client_address,
                user_agent: row.user_agent,
                purpose: row.purpose,
                trace_id: row.trace_id,
            },
        })
    }
}

/// Streams the links of `chain` in sequence order into `visit` (until it
/// returns false), then returns the chain head, all from one snapshot.
pub(crate) async fn visit_chain(
    pool: &PgPool,
    chain: &str,
    mut visit: impl FnMut(ChainLink) -> bool,
) -> Result<Option<(i64, Vec<u8>)>, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *transaction)
        .await?;
    let head: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT sequence, hash FROM chain_heads WHERE chain = $1")
            .bind(chain)
            .fetch_optional(&mut *transaction)
            .await?;
    let mut statement = String::new();
    for (position, log) in Log::ALL.into_iter().enumerate() {
        if position > 0 {
            statement.push_str(" UNION ALL ");
        }
        statement.push_str(&format!(
            "SELECT chain_sequence, prev_hash, hash, event, event_id, occurred_at, source_service, \
             action, actor_user_id, actor_service, tenant_id, resource_type, resource_id, changes, \
             host(client_address) AS client_address, user_agent, purpose, trace_id \
             FROM {} WHERE source_service = $1",
            log.table()
        ));
    }
    statement.push_str(" ORDER BY chain_sequence");
    {
        let mut rows = sqlx::query_as::<_, LinkRow>(&statement)
            .bind(chain)
            .fetch(&mut *transaction);
        while let Some(row) = rows.try_next().await? {
            if !visit(ChainLink::try_from(row)?) {
                break;
            }
        }
    }
    transaction.commit().await?;
    Ok(head)
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
