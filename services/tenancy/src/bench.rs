//! What `fitflow bench` needs of tenancy's storage: rows in bulk, written as
//! the superuser `admin` (as a data load would be, past row-level security),
//! so that the scenarios run against realistic table sizes. The binary
//! times; this module only prepares.

use sqlx::PgPool;
use uuid::Uuid;

/// Adds `count` live studios owned by `owner`, spread over eight cities and
/// eight name words, so that searches match a realistic share of them.
pub async fn seed_studios(admin: &PgPool, owner: Uuid, count: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tenancy.studios (id, owner_id, name, street, city, province, postal_code, \
         time_zone) \
         SELECT gen_random_uuid(), $1, \
                'Studio ' || (ARRAY['Nord','Sud','Plateau','Harbour','Summit','Core','Pulse','Stride'])[1 + n % 8] \
                || ' ' || n, \
                n || ' Main Street', \
                (ARRAY['Toronto','Montréal','Vancouver','Calgary','Halifax','Winnipeg','Regina','Ottawa'])[1 + (n / 8) % 8], \
                'ON', 'K1A 0B1', 'America/Toronto' \
         FROM generate_series(1, $2) AS n",
    )
    .bind(owner)
    .bind(count)
    .execute(admin)
    .await?;
    // Fresh statistics, as autovacuum would soon give a loaded table:
    // without them the planner takes a broad prefix search for a rare one.
    sqlx::query("ANALYZE tenancy.studios")
        .execute(admin)
        .await?;
    Ok(())
}

/// Adds `count` rate versions to `contract_id`, one a day from tomorrow on.
pub async fn seed_rate_versions(
    admin: &PgPool,
    contract_id: Uuid,
    created_by: Uuid,
    count: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tenancy.rate_versions (contract_id, effective_date, group_rate, \
         individual_rate, trial_rate, commission_rate, created_by) \
         SELECT $1, current_date + n::integer, 50 + n % 20, 90, 25, 15, $2 \
         FROM generate_series(1, $3) AS n \
         ON CONFLICT DO NOTHING",
    )
    .bind(contract_id)
    .bind(created_by)
    .bind(count)
    .execute(admin)
    .await?;
    sqlx::query("ANALYZE tenancy.rate_versions")
        .execute(admin)
        .await?;
    Ok(())
}
