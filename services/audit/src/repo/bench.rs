//! The SQL of `fitflow audit bench`: a scratch database, a source's outbox
//! filled in bulk, and a large generated access log. None of it runs in a
//! serving process.

use sqlx::{Connection as _, PgConnection, PgPool};
use uuid::Uuid;

/// Creates the database `name` on the server of `admin_url`.
pub(crate) async fn create_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await?;
    conn.close().await
}

/// Drops the database `name` (if it exists) on the server of `admin_url`,
/// ending its sessions.
pub(crate) async fn drop_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await
}

/// Appends `(event_id, payload)` rows to the outbox of the source whose
/// runtime pool is `source`, in one statement.
pub(crate) async fn fill_outbox(
    source: &PgPool,
    event_ids: Vec<Uuid>,
    payloads: Vec<Vec<u8>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_outbox (event_id, payload) SELECT * FROM UNNEST($1::uuid[], $2::bytea[])",
    )
    .bind(event_ids)
    .bind(payloads)
    .execute(source)
    .await?;
    Ok(())
}

/// Events still in the outbox of the source whose runtime pool is `source`.
pub(crate) async fn pending_outbox(source: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM audit_outbox")
        .fetch_one(source)
        .await
}

/// Generates `rows` view events server-side, as the superuser `admin`,
/// spread over the last `seconds` seconds, about `clients` clients. Their
/// chain columns are placeholders: this data is for timing queries, not for
/// verification. Analyzes the log afterwards so plans see its size.
pub(crate) async fn generate_access_log(
    admin: &PgPool,
    rows: i64,
    seconds: i64,
    clients: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit.access_log (event_id, occurred_at, source_service, chain_sequence, \
         prev_hash, hash, action, actor_user_id, tenant_id, resource_type, resource_id, purpose, event) \
         SELECT gen_random_uuid(), \
                now() - make_interval(secs => (g * 7919) % $2), \
                'bench', g, \
                '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea, \
                sha256(int8send(g)), 'view', \
                ('00000000-0000-4000-8000-' || lpad(to_hex(g % 5000), 12, '0'))::uuid, \
                ('00000000-0000-4000-a000-' || lpad(to_hex(g % 1000), 12, '0'))::uuid, \
                'clients', \
                ('00000000-0000-4000-9000-' || lpad(to_hex(g % $3), 12, '0'))::uuid, \
                'treatment', ''::bytea \
         FROM generate_series(1, $1::bigint) AS g",
    )
    .bind(rows)
    .bind(seconds)
    .bind(clients)
    .execute(admin)
    .await?;
    sqlx::query("ANALYZE audit.access_log")
        .execute(admin)
        .await?;
    Ok(())
}
