//! Every SQL statement of the clients service. Row-level security applies to
//! each (the caller's context is set by `fitflow_db::tx`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::ClientsError;
use crate::domain::{AccessLevel, ClientRecord};
use crate::seal::{Lookups, SealedColumns};

/// A `clients` row with the caller's share of it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ClientRow {
    pub id: Uuid,
    pub trainer_id: Uuid,
    pub first_name: Vec<u8>,
    pub last_name: Vec<u8>,
    pub email: Option<Vec<u8>>,
    pub phone: Option<Vec<u8>>,
    pub date_of_birth: Option<Vec<u8>>,
    pub emergency_contact: Option<Vec<u8>>,
    pub medical_info: Option<Vec<u8>>,
    pub goals: Option<Vec<u8>>,
    pub address: Option<Vec<u8>>,
    pub preferences: Json<BTreeMap<String, String>>,
    pub source: String,
    pub status: String,
    pub consent_version: Option<String>,
    pub consent_time: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// The caller's share level (`read`, `write`, `admin`), if any.
    pub share_level: Option<String>,
}

impl ClientRow {
    /// Its sealed columns.
    pub(crate) fn sealed(&self) -> SealedColumns {
        SealedColumns {
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
            date_of_birth: self.date_of_birth.clone(),
            emergency_contact: self.emergency_contact.clone(),
            medical_info: self.medical_info.clone(),
            goals: self.goals.clone(),
            address: self.address.clone(),
        }
    }

    /// The caller's share, parsed.
    pub(crate) fn share(&self) -> Option<AccessLevel> {
        self.share_level
            .as_deref()
            .and_then(AccessLevel::parse_share)
    }
}

const CLIENT_COLUMNS: &str = "c.id, c.trainer_id, c.first_name, c.last_name, c.email, c.phone, \
     c.date_of_birth, c.emergency_contact, c.medical_info, c.goals, c.address, c.preferences, \
     c.source, c.status, c.consent_version, c.consent_time, c.version, c.created_at, \
     c.updated_at, c.deleted_at, p.permission_level AS share_level";

/// What a list shows of a client.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct SummaryRow {
    pub id: Uuid,
    pub trainer_id: Uuid,
    pub first_name: Vec<u8>,
    pub last_name: Vec<u8>,
    pub source: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub share_level: Option<String>,
}

impl SummaryRow {
    /// The caller's share, parsed.
    pub(crate) fn share(&self) -> Option<AccessLevel> {
        self.share_level
            .as_deref()
            .and_then(AccessLevel::parse_share)
    }
}

/// Inserts a new client.
pub(crate) async fn insert_client(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Uuid,
    record: &ClientRecord,
    sealed: &SealedColumns,
    lookups: &Lookups,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO clients (id, trainer_id, first_name, last_name, email, phone, date_of_birth, \
         emergency_contact, medical_info, goals, address, email_index, phone_index, name_tokens, \
         preferences, source, status, consent_version, consent_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(id)
    .bind(owner)
    .bind(&sealed.first_name)
    .bind(&sealed.last_name)
    .bind(&sealed.email)
    .bind(&sealed.phone)
    .bind(&sealed.date_of_birth)
    .bind(&sealed.emergency_contact)
    .bind(&sealed.medical_info)
    .bind(&sealed.goals)
    .bind(&sealed.address)
    .bind(&lookups.email_index)
    .bind(&lookups.phone_index)
    .bind(&lookups.name_tokens)
    .bind(Json(&record.preferences))
    .bind(record.source.as_str())
    .bind(record.status.as_str())
    .bind(record.consent.as_ref().map(|consent| &consent.text_version))
    .bind(record.consent.as_ref().map(|consent| consent.consent_time))
    .execute(conn)
    .await?;
    Ok(())
}

/// A client as `caller` sees it (row-level security decides whether at
/// all), with the caller's share; `lock` takes the row for an update.
pub(crate) async fn client(
    conn: &mut PgConnection,
    id: Uuid,
    caller: Uuid,
    lock: bool,
) -> Result<Option<ClientRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {CLIENT_COLUMNS} FROM clients c \
         LEFT JOIN client_permissions p ON p.client_id = c.id AND p.trainer_id = $2 \
         WHERE c.id = $1{}",
        if lock { " FOR UPDATE OF c" } else { "" }
    );
    sqlx::query_as(&sql)
        .bind(id)
        .bind(caller)
        .fetch_optional(conn)
        .await
}

/// A client `caller` may read (row-level security decides), with the
/// caller's share, read in one statement that records `access` — its access
/// event, the tenant the client's owner — exactly when the row is found
/// ([`fitflow_outbox::recorded_read`]): one round trip, no event without
/// the read and no read without its event. A deleted client is found only
/// with `show_deleted`.
pub(crate) async fn client_read_recorded(
    express: &fitflow_db::Express,
    caller: &fitflow_auth::Principal,
    id: Uuid,
    show_deleted: bool,
    access: &fitflow_outbox::AuditEvent,
) -> Result<Option<ClientRow>, ClientsError> {
    // One text, so each connection prepares it once.
    static SQL: LazyLock<String> = LazyLock::new(|| {
        fitflow_outbox::recorded_read(
            &fitflow_db::one_trip(&format!(
                "SELECT {CLIENT_COLUMNS} FROM clients c \
                 LEFT JOIN client_permissions p ON p.client_id = c.id AND p.trainer_id = $7 \
                 WHERE c.id = $6 AND ($8 OR c.deleted_at IS NULL) AND {}",
                fitflow_db::CONTEXT_SET
            )),
            "trainer_id",
        )
    });
    let query = fitflow_db::bind_context(
        sqlx::query_as(SQL.as_str()),
        &fitflow_auth::Caller::User(caller.clone()),
    )?;
    let query = fitflow_outbox::bind_event(query, access)?
        .bind(id)
        .bind(caller.user_id)
        .bind(show_deleted);
    let row = express.fetch_optional(query).await?;
    if row.is_some() {
        fitflow_outbox::ring(crate::SERVICE);
    }
    Ok(row)
}

/// Writes a changed record (all its columns) and bumps its version.
pub(crate) async fn update_client(
    conn: &mut PgConnection,
    id: Uuid,
    record: &ClientRecord,
    sealed: &SealedColumns,
    lookups: &Lookups,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE clients SET first_name = $2, last_name = $3, email = $4, phone = $5, \
         date_of_birth = $6, emergency_contact = $7, medical_info = $8, goals = $9, address = $10, \
         email_index = $11, phone_index = $12, name_tokens = $13, preferences = $14, source = $15, \
         status = $16, consent_version = $17, consent_time = $18, version = version + 1, \
         updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(&sealed.first_name)
    .bind(&sealed.last_name)
    .bind(&sealed.email)
    .bind(&sealed.phone)
    .bind(&sealed.date_of_birth)
    .bind(&sealed.emergency_contact)
    .bind(&sealed.medical_info)
    .bind(&sealed.goals)
    .bind(&sealed.address)
    .bind(&lookups.email_index)
    .bind(&lookups.phone_index)
    .bind(&lookups.name_tokens)
    .bind(Json(&record.preferences))
    .bind(record.source.as_str())
    .bind(record.status.as_str())
    .bind(record.consent.as_ref().map(|consent| &consent.text_version))
    .bind(record.consent.as_ref().map(|consent| consent.consent_time))
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a client deleted (`Some(now)`) or live (`None`).
pub(crate) async fn set_deleted(
    conn: &mut PgConnection,
    id: Uuid,
    deleted: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE clients SET deleted_at = CASE WHEN $2 THEN now() END, version = version + 1, \
         updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(deleted)
    .execute(conn)
    .await?;
    Ok(())
}

/// Which clients a list shows.
#[derive(Debug, Clone)]
pub(crate) enum Finder {
    /// Every client the caller may see.
    All,
    /// Clients whose email index is one of these (one per owner).
    Email(Vec<Vec<u8>>),
    /// Clients whose phone index is one of these.
    Phone(Vec<Vec<u8>>),
    /// Clients holding one of these name tokens (candidates only).
    NameTokens(Vec<i32>),
}

/// What a list asks the database for.
#[derive(Debug, Clone)]
pub(crate) struct ListSpec<'a> {
    /// The caller.
    pub caller: Uuid,
    /// The trainers the caller acts for (themselves and their team).
    pub acting_for: &'a [Uuid],
    /// Which clients.
    pub finder: Finder,
    /// Only this owner's.
    pub owner: Option<Uuid>,
    /// Deleted ones too.
    pub show_deleted: bool,
    /// Resume after this (created_at, id).
    pub after: Option<(DateTime<Utc>, Uuid)>,
    /// At most this many rows.
    pub limit: i64,
}

/// One page of the clients the caller may see: owned by someone they act
/// for, or shared with them; oldest first.
pub(crate) async fn list_clients(
    conn: &mut PgConnection,
    spec: &ListSpec<'_>,
) -> Result<Vec<SummaryRow>, sqlx::Error> {
    let ListSpec {
        caller,
        acting_for,
        finder,
        owner,
        show_deleted,
        after,
        limit,
    } = spec;
    // One fixed statement per finder, so each gets a plan that uses its index.
    let finder_clause = match finder {
        Finder::All => "",
        Finder::Email(_) => " AND c.email_index = ANY($7)",
        Finder::Phone(_) => " AND c.phone_index = ANY($7)",
        Finder::NameTokens(_) => " AND c.name_tokens && $8",
    };
    // The caller's clients are found through the owner index and their
    // shares (a small set), never by walking every client in time order and
    // filtering: the table holds every trainer's book.
    let sql = format!(
        "WITH visible AS ( \
             SELECT id FROM clients WHERE trainer_id = ANY($2) \
             UNION SELECT client_id FROM client_permissions WHERE trainer_id = $1) \
         SELECT c.id, c.trainer_id, c.first_name, c.last_name, c.source, c.status, c.created_at, \
         c.deleted_at, p.permission_level AS share_level \
         FROM clients c JOIN visible v ON v.id = c.id \
         LEFT JOIN client_permissions p ON p.client_id = c.id AND p.trainer_id = $1 \
         WHERE ($3 OR c.deleted_at IS NULL) \
           AND ($4::uuid IS NULL OR c.trainer_id = $4) \
           AND ($5::timestamptz IS NULL OR (c.created_at, c.id) > ($5, $6)){finder_clause} \
         ORDER BY c.created_at, c.id LIMIT $9"
    );
    let (bytes, tokens): (Vec<Vec<u8>>, Vec<i32>) = match finder {
        Finder::All => (Vec::new(), Vec::new()),
        Finder::Email(indexes) | Finder::Phone(indexes) => (indexes.clone(), Vec::new()),
        Finder::NameTokens(tokens) => (Vec::new(), tokens.clone()),
    };
    sqlx::query_as(&sql)
        .bind(caller)
        .bind(*acting_for)
        .bind(show_deleted)
        .bind(owner)
        .bind(after.map(|(at, _)| at))
        .bind(after.map(|(_, id)| id).unwrap_or_default())
        // Bound for every finder (unused ones are typed and ignored), so the
        // statement's parameters stay fixed.
        .bind(bytes)
        .bind(tokens)
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// The owners of the clients shared with `caller`.
pub(crate) async fn shared_owners(
    conn: &mut PgConnection,
    caller: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT owner_id FROM client_permissions WHERE trainer_id = $1 LIMIT 1000",
    )
    .bind(caller)
    .fetch_all(conn)
    .await
}

/// A share.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ShareRow {
    pub client_id: Uuid,
    pub trainer_id: Uuid,
    pub permission_level: String,
    pub granted_by: Uuid,
    pub granted_at: DateTime<Utc>,
}

/// Grants or changes a share; returns the share and its previous level.
pub(crate) async fn put_share(
    conn: &mut PgConnection,
    client_id: Uuid,
    trainer_id: Uuid,
    owner_id: Uuid,
    level: AccessLevel,
    granted_by: Uuid,
) -> Result<(ShareRow, Option<String>), sqlx::Error> {
    let previous: Option<String> = sqlx::query_scalar(
        "SELECT permission_level FROM client_permissions \
         WHERE client_id = $1 AND trainer_id = $2 FOR UPDATE",
    )
    .bind(client_id)
    .bind(trainer_id)
    .fetch_optional(&mut *conn)
    .await?;
    let share = sqlx::query_as(
        "INSERT INTO client_permissions (client_id, trainer_id, owner_id, permission_level, granted_by) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (client_id, trainer_id) DO UPDATE \
         SET permission_level = EXCLUDED.permission_level, granted_by = EXCLUDED.granted_by, \
             granted_at = now() \
         RETURNING client_id, trainer_id, permission_level, granted_by, granted_at",
    )
    .bind(client_id)
    .bind(trainer_id)
    .bind(owner_id)
    .bind(level.as_str())
    .bind(granted_by)
    .fetch_one(&mut *conn)
    .await?;
    Ok((share, previous))
}

/// Ends a share; its level, or `None` when there was none.
pub(crate) async fn delete_share(
    conn: &mut PgConnection,
    client_id: Uuid,
    trainer_id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "DELETE FROM client_permissions WHERE client_id = $1 AND trainer_id = $2 \
         RETURNING permission_level",
    )
    .bind(client_id)
    .bind(trainer_id)
    .fetch_optional(conn)
    .await
}

/// A client's shares that the caller may see, oldest first.
pub(crate) async fn shares(
    conn: &mut PgConnection,
    client_id: Uuid,
) -> Result<Vec<ShareRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT client_id, trainer_id, permission_level, granted_by, granted_at \
         FROM client_permissions WHERE client_id = $1 ORDER BY granted_at, trainer_id LIMIT 1000",
    )
    .bind(client_id)
    .fetch_all(conn)
    .await
}

/// One entry of a client's sharing history.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub(crate) struct HistoryRow {
    pub trainer_id: Uuid,
    pub event: String,
    pub permission_level: Option<String>,
    pub actor_id: Uuid,
    pub occurred_at: DateTime<Utc>,
}

/// Appends to a client's sharing history.
pub(crate) async fn record_history(
    conn: &mut PgConnection,
    client_id: Uuid,
    trainer_id: Uuid,
    event: &str,
    level: Option<AccessLevel>,
    actor_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO client_share_history (client_id, trainer_id, event, permission_level, actor_id) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(client_id)
    .bind(trainer_id)
    .bind(event)
    .bind(level.map(AccessLevel::as_str))
    .bind(actor_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A client's sharing history, oldest first.
pub(crate) async fn history(
    conn: &mut PgConnection,
    client_id: Uuid,
) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT trainer_id, event, permission_level, actor_id, occurred_at \
         FROM client_share_history WHERE client_id = $1 ORDER BY id LIMIT 10000",
    )
    .bind(client_id)
    .fetch_all(conn)
    .await
}

/// Moves a client to `new_owner` with lookups recomputed for them; the new
/// owner's own share ends (they own it now) and the other shares follow the
/// client. Returns the new owner's former share level.
pub(crate) async fn transfer(
    conn: &mut PgConnection,
    client_id: Uuid,
    new_owner: Uuid,
    lookups: &Lookups,
) -> Result<Option<String>, sqlx::Error> {
    let former_share = delete_share(&mut *conn, client_id, new_owner).await?;
    sqlx::query(
        "UPDATE clients SET trainer_id = $2, email_index = $3, phone_index = $4, name_tokens = $5, \
         version = version + 1, updated_at = now() WHERE id = $1",
    )
    .bind(client_id)
    .bind(new_owner)
    .bind(&lookups.email_index)
    .bind(&lookups.phone_index)
    .bind(&lookups.name_tokens)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE client_permissions SET owner_id = $2 WHERE client_id = $1")
        .bind(client_id)
        .bind(new_owner)
        .execute(&mut *conn)
        .await?;
    Ok(former_share)
}

/// The deletion time of a client, locked for a purge (system role).
pub(crate) async fn lock_for_purge(
    conn: &mut PgConnection,
    client_id: Uuid,
) -> Result<Option<(Uuid, Option<DateTime<Utc>>)>, sqlx::Error> {
    sqlx::query_as("SELECT trainer_id, deleted_at FROM clients WHERE id = $1 FOR UPDATE")
        .bind(client_id)
        .fetch_optional(conn)
        .await
}

/// Deletes a client row, its shares and history (system role).
pub(crate) async fn delete_client(
    conn: &mut PgConnection,
    client_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM clients WHERE id = $1")
        .bind(client_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A client's sealed names and owner.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct NameRow {
    pub id: Uuid,
    pub trainer_id: Uuid,
    pub first_name: Vec<u8>,
    pub last_name: Vec<u8>,
}

/// The sealed names of the live (not deleted) clients among `ids`.
pub(crate) async fn live_names(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<NameRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, trainer_id, first_name, last_name FROM clients \
         WHERE id = ANY($1) AND deleted_at IS NULL",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}
