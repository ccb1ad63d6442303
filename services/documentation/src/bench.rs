//! What `fitflow bench` needs of documentation's storage: session notes of
//! made-up clients in bulk, written as the superuser `admin` (as a data
//! load would be, past row-level security), so that reads run against a
//! realistic table. Their sealed columns are random bytes: only the bench
//! client's own notes, made through the API, are ever opened. The binary
//! times; this module only prepares.

use sqlx::PgPool;

/// Notes per filler client: weekly sessions over about two years.
const FILLER_HISTORY: i64 = 100;

/// Adds `count` signed notes of made-up clients and trainers, spread over
/// the five years before now.
pub async fn seed_notes(admin: &PgPool, count: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO documentation.session_notes (id, client_id, trainer_id, appointment_id, \
         session_date, session_time, status, body, measurements, signed_at, signed_by) \
         SELECT gen_random_uuid(), md5('fitflow-bench-client-' || (n / $2))::uuid, \
                md5('fitflow-bench-trainer-' || (n / ($2 * 20)))::uuid, gen_random_uuid(), \
                (t AT TIME ZONE 'UTC')::date, t, 'signed', \
                decode(md5(n::text) || md5((n + 1)::text), 'hex'), \
                decode(md5((n + 2)::text), 'hex'), t + interval '1 hour', \
                md5('fitflow-bench-trainer-' || (n / ($2 * 20)))::uuid \
         FROM generate_series(1, $1) AS n, \
              LATERAL (SELECT now() - make_interval(secs => (n % 157680) * 1000.0) AS t) s",
    )
    .bind(count)
    .bind(FILLER_HISTORY)
    .execute(admin)
    .await?;
    sqlx::query("ANALYZE documentation.session_notes")
        .execute(admin)
        .await?;
    Ok(())
}
