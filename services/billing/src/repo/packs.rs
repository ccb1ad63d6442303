//! `session_packs` and `session_pack_draws`: the packs of sessions sold on
//! issued invoices, and each held session drawn from one (once: the draw's
//! primary key).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A `session_packs` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct PackRow {
    pub id: Uuid,
    pub issuer_id: Uuid,
    pub client_id: Uuid,
    pub sessions: i32,
    pub used: i32,
    pub expires_on: NaiveDate,
    pub invoice_id: Uuid,
    pub position: i32,
    /// `active` or `cancelled`.
    pub state: String,
    pub created_at: DateTime<Utc>,
}

const PACK_COLUMNS: &str =
    "id, issuer_id, client_id, sessions, used, expires_on, invoice_id, position, state, created_at";

/// Writes a pack just sold.
pub(crate) async fn insert_pack(
    conn: &mut PgConnection,
    pack: &PackRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO session_packs (id, issuer_id, client_id, sessions, used, expires_on, \
         invoice_id, position, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(pack.id)
    .bind(pack.issuer_id)
    .bind(pack.client_id)
    .bind(pack.sessions)
    .bind(pack.used)
    .bind(pack.expires_on)
    .bind(pack.invoice_id)
    .bind(pack.position)
    .bind(&pack.state)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every pack `issuer_id` sold `client_id`, locked in id order: whoever
/// draws from them or gives sessions back holds these locks first, so
/// concurrent drafts never overdraw a pack and never wait on each other in
/// a cycle.
pub(crate) async fn lock_client_packs(
    conn: &mut PgConnection,
    issuer_id: Uuid,
    client_id: Uuid,
) -> Result<Vec<PackRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PACK_COLUMNS} FROM session_packs WHERE issuer_id = $1 AND client_id = $2 \
         ORDER BY id FOR UPDATE"
    ))
    .bind(issuer_id)
    .bind(client_id)
    .fetch_all(conn)
    .await
}

/// Sets how many sessions of pack `id` are drawn.
pub(crate) async fn set_used(
    conn: &mut PgConnection,
    id: Uuid,
    used: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE session_packs SET used = $2 WHERE id = $1")
        .bind(id)
        .bind(used)
        .execute(conn)
        .await?;
    Ok(())
}

/// Cancels pack `id` (its invoice is voided).
pub(crate) async fn cancel_pack(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE session_packs SET state = 'cancelled' WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the session (`appointment_id`, `client_id`) as drawn from
/// `pack_id` by the draft `invoice_id`.
pub(crate) async fn insert_draw(
    conn: &mut PgConnection,
    (appointment_id, client_id): (Uuid, Uuid),
    pack_id: Uuid,
    invoice_id: Uuid,
    issuer_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO session_pack_draws (appointment_id, client_id, pack_id, invoice_id, \
         issuer_id) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(appointment_id)
    .bind(client_id)
    .bind(pack_id)
    .bind(invoice_id)
    .bind(issuer_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The sessions `invoice_id` drew: (appointment, client, pack).
pub(crate) async fn draws_of(
    conn: &mut PgConnection,
    invoice_id: Uuid,
) -> Result<Vec<(Uuid, Uuid, Uuid)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT appointment_id, client_id, pack_id FROM session_pack_draws \
         WHERE invoice_id = $1 ORDER BY appointment_id, client_id",
    )
    .bind(invoice_id)
    .fetch_all(conn)
    .await
}

/// Deletes the draws of `invoice_id` (all of them, or only the session of
/// `only`): the packs they came from, one entry per draw.
pub(crate) async fn delete_draws(
    conn: &mut PgConnection,
    invoice_id: Uuid,
    only: Option<(Uuid, Uuid)>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let (appointment_id, client_id) = only.unzip();
    sqlx::query_scalar(
        "DELETE FROM session_pack_draws WHERE invoice_id = $1 \
         AND ($2::uuid IS NULL OR (appointment_id = $2 AND client_id = $3)) RETURNING pack_id",
    )
    .bind(invoice_id)
    .bind(appointment_id)
    .bind(client_id)
    .fetch_all(conn)
    .await
}

/// A page of the packs `issuer_id` sold `client_id` after `after`
/// (expiry, id), the earliest expiring first.
pub(crate) async fn packs_of_client(
    conn: &mut PgConnection,
    issuer_id: Uuid,
    client_id: Uuid,
    after: Option<(NaiveDate, Uuid)>,
    limit: i64,
) -> Result<Vec<PackRow>, sqlx::Error> {
    let (after_date, after_id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT {PACK_COLUMNS} FROM session_packs WHERE issuer_id = $1 AND client_id = $2 \
         AND ($3::date IS NULL OR (expires_on, id) > ($3, $4)) \
         ORDER BY expires_on, id LIMIT $5"
    ))
    .bind(issuer_id)
    .bind(client_id)
    .bind(after_date)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Every pack sold to `client_id`, by any issuer, oldest sold first (the
/// client's export, as the system role).
pub(crate) async fn client_packs(
    conn: &mut PgConnection,
    client_id: Uuid,
) -> Result<Vec<PackRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PACK_COLUMNS} FROM session_packs WHERE client_id = $1 ORDER BY created_at, id"
    ))
    .bind(client_id)
    .fetch_all(conn)
    .await
}
