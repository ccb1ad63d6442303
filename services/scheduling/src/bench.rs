//! What `fitflow bench` needs of scheduling's storage: appointments in bulk,
//! written as the superuser `admin` (as a data load would be, past
//! row-level security), so that listings run against a realistic table.
//! The binary times; this module only prepares.

use sqlx::PgPool;
use uuid::Uuid;

/// Appointments per filler trainer: the filler looks like many calendars.
const FILLER_CALENDAR: i64 = 2_000;

/// Adds `count` appointments of made-up trainers (of class type
/// `class_type_id`) spread evenly over the three years from 1 January of
/// `first_year`, after creating those years' partitions.
pub async fn seed_appointments(
    admin: &PgPool,
    class_type_id: Uuid,
    first_year: i32,
    count: i64,
) -> Result<(), sqlx::Error> {
    for year in first_year..first_year + 3 {
        sqlx::query("SELECT scheduling.ensure_year_partition($1)")
            .bind(year)
            .execute(admin)
            .await?;
    }
    let spacing_seconds = 3.0 * 365.0 * 86_400.0 / count.max(1) as f64;
    sqlx::query(
        "INSERT INTO scheduling.appointments (id, start_time, end_time, trainer_id, class_type_id, \
         client_price) \
         SELECT gen_random_uuid(), start, start + interval '1 hour', \
                md5('fitflow-bench-trainer-' || (n / $4))::uuid, $1, 85 \
         FROM generate_series(1, $3) AS n, \
              LATERAL (SELECT date_trunc('minute', make_timestamptz($2, 1, 1, 0, 0, 0, 'UTC') \
                                + make_interval(secs => n * $5)) AS start) s",
    )
    .bind(class_type_id)
    .bind(first_year)
    .bind(count)
    .bind(FILLER_CALENDAR)
    .bind(spacing_seconds)
    .execute(admin)
    .await?;
    sqlx::query("ANALYZE scheduling.appointments")
        .execute(admin)
        .await?;
    Ok(())
}
