//! The SQL of availability rules and exceptions, and of the busy periods
//! free slots avoid.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// An `availability_rules` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RuleRow {
    pub id: Uuid,
    pub trainer_id: Uuid,
    pub studio_id: Option<Uuid>,
    /// ISO weekday, 1 Monday .. 7 Sunday.
    pub day_of_week: i16,
    pub start_minute: i16,
    pub end_minute: i16,
    pub effective_from: NaiveDate,
    pub effective_until: Option<NaiveDate>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

const RULE_COLUMNS: &str = "id, trainer_id, studio_id, day_of_week, start_minute, end_minute, \
     effective_from, effective_until, version, created_at";

/// Why a rule could not be stored.
#[derive(Debug)]
pub(crate) enum RuleInsertError {
    /// Another rule of the trainer overlaps (the exclusion constraint).
    Overlap,
    /// Anything else.
    Database(sqlx::Error),
}

/// Takes the trainer's rule lock until the transaction ends: creates of one
/// trainer's rules run one at a time, so each check sees the rules committed
/// before it and concurrent inserts never wait on each other inside the
/// exclusion constraint (where two could deadlock).
pub(crate) async fn lock_trainer_rules(
    conn: &mut PgConnection,
    trainer_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('fitflow.availability_rules:' || $1::text, 0))")
        .bind(trainer_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Inserts a rule; the database refuses one that overlaps, in wall time,
/// another of the trainer's at the same place (the same studio, or both at
/// none), even when both are created at once.
pub(crate) async fn insert_rule(
    conn: &mut PgConnection,
    row: &RuleRow,
) -> Result<(), RuleInsertError> {
    sqlx::query(
        "INSERT INTO availability_rules (id, trainer_id, studio_id, day_of_week, start_minute, \
         end_minute, effective_from, effective_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(row.id)
    .bind(row.trainer_id)
    .bind(row.studio_id)
    .bind(row.day_of_week)
    .bind(row.start_minute)
    .bind(row.end_minute)
    .bind(row.effective_from)
    .bind(row.effective_until)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(|error| {
        if error
            .as_database_error()
            .is_some_and(|db| db.constraint() == Some("availability_rules_no_overlap"))
        {
            RuleInsertError::Overlap
        } else {
            RuleInsertError::Database(error)
        }
    })
}

/// A rule of the trainer at the same place that `row` would overlap in wall
/// time (what the exclusion constraint refuses), if any.
pub(crate) async fn overlapping_rule(
    conn: &mut PgConnection,
    row: &RuleRow,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM availability_rules \
         WHERE trainer_id = $1 AND day_of_week = $2 \
           AND studio_id IS NOT DISTINCT FROM $7 \
           AND int4range(start_minute, end_minute) && int4range($3, $4) \
           AND daterange(effective_from, effective_until, '[]') && daterange($5, $6, '[]') \
         ORDER BY created_at, id LIMIT 1",
    )
    .bind(row.trainer_id)
    .bind(row.day_of_week)
    .bind(i32::from(row.start_minute))
    .bind(i32::from(row.end_minute))
    .bind(row.effective_from)
    .bind(row.effective_until)
    .bind(row.studio_id)
    .fetch_optional(conn)
    .await
}

/// The trainer's rules in effect on some local date from `first` to `last`
/// (inclusive; none: no end), oldest first, at most `limit`: those a new
/// rule there could overlap.
pub(crate) async fn rules_meeting(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    (first, last): (NaiveDate, Option<NaiveDate>),
    limit: i64,
) -> Result<Vec<RuleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RULE_COLUMNS} FROM availability_rules WHERE trainer_id = $1 \
         AND daterange(effective_from, effective_until, '[]') && daterange($2, $3, '[]') \
         ORDER BY created_at, id LIMIT $4"
    ))
    .bind(trainer_id)
    .bind(first)
    .bind(last)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A rule the caller may see; `lock` takes it for a change.
pub(crate) async fn rule(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<RuleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RULE_COLUMNS} FROM availability_rules WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// One page of a trainer's rules, oldest first, after `after`.
pub(crate) async fn rules(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<RuleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RULE_COLUMNS} FROM availability_rules WHERE trainer_id = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) \
         ORDER BY created_at, id LIMIT $4"
    ))
    .bind(trainer_id)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id).unwrap_or_default())
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The trainer's rules in effect on some local date in [first, last].
pub(crate) async fn rules_between(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Vec<RuleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RULE_COLUMNS} FROM availability_rules WHERE trainer_id = $1 \
         AND effective_from <= $3 AND (effective_until IS NULL OR effective_until >= $2) \
         ORDER BY created_at, id LIMIT 5000"
    ))
    .bind(trainer_id)
    .bind(first)
    .bind(last)
    .fetch_all(conn)
    .await
}

/// Deletes a rule.
pub(crate) async fn delete_rule(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM availability_rules WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends a rule on `until` (inclusive).
pub(crate) async fn end_rule(
    conn: &mut PgConnection,
    id: Uuid,
    until: NaiveDate,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE availability_rules SET effective_until = $2, version = version + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(until)
    .execute(conn)
    .await?;
    Ok(())
}

/// An `availability_exceptions` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ExceptionRow {
    pub id: Uuid,
    pub trainer_id: Uuid,
    /// `time_off` or `extra_hours`.
    pub kind: String,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub start_minute: Option<i16>,
    pub end_minute: Option<i16>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

const EXCEPTION_COLUMNS: &str = "id, trainer_id, kind, start_date, end_date, start_minute, \
     end_minute, version, created_at";

/// Inserts an exception.
pub(crate) async fn insert_exception(
    conn: &mut PgConnection,
    row: &ExceptionRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO availability_exceptions (id, trainer_id, kind, start_date, end_date, \
         start_minute, end_minute) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(row.id)
    .bind(row.trainer_id)
    .bind(&row.kind)
    .bind(row.start_date)
    .bind(row.end_date)
    .bind(row.start_minute)
    .bind(row.end_minute)
    .execute(conn)
    .await?;
    Ok(())
}

/// An exception the caller may see; `lock` takes it for a change.
pub(crate) async fn exception(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<ExceptionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {EXCEPTION_COLUMNS} FROM availability_exceptions WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// One page of a trainer's exceptions, oldest first, after `after`.
pub(crate) async fn exceptions(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ExceptionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {EXCEPTION_COLUMNS} FROM availability_exceptions WHERE trainer_id = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) \
         ORDER BY created_at, id LIMIT $4"
    ))
    .bind(trainer_id)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id).unwrap_or_default())
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The trainer's exceptions touching a local date in [first, last].
pub(crate) async fn exceptions_between(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Vec<ExceptionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {EXCEPTION_COLUMNS} FROM availability_exceptions WHERE trainer_id = $1 \
         AND start_date <= $3 AND end_date >= $2 ORDER BY created_at, id LIMIT 5000"
    ))
    .bind(trainer_id)
    .bind(first)
    .bind(last)
    .fetch_all(conn)
    .await
}

/// Deletes an exception.
pub(crate) async fn delete_exception(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM availability_exceptions WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The trainer's booked periods (live appointments) meeting [from, to).
pub(crate) async fn busy_between(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT lower(period), upper(period) FROM trainer_busy \
         WHERE trainer_id = $1 AND period && tstzrange($2, $3, '[)') \
         ORDER BY lower(period) LIMIT 10000",
    )
    .bind(trainer_id)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
}
