//! The SQL of client notifications: intents recorded in a booking's
//! transaction or by the reminder sweep, the relay's queue, and the trainer
//! zones the relay writes local times in.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// The channel on which a recorded intent wakes the notification relay
/// (delivered at commit).
pub(crate) const NOTIFY_CHANNEL: &str = "fitflow_scheduling_notifications";

/// Records an intent unless one with the same (appointment, client, kind,
/// occurrence) exists, and wakes the relay at commit; the new intent's id,
/// or `None` when it existed already.
pub(crate) async fn insert_notification(
    conn: &mut PgConnection,
    intent: &crate::notify::Intent,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH recorded AS ( \
             INSERT INTO appointment_notifications \
                 (id, appointment_id, client_id, trainer_id, kind, occurrence) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT ON CONSTRAINT appointment_notifications_once DO NOTHING \
             RETURNING id) \
         SELECT id FROM recorded, LATERAL (SELECT pg_notify($7, '')) AS woken",
    )
    .bind(Uuid::now_v7())
    .bind(intent.appointment_id)
    .bind(intent.client_id)
    .bind(intent.trainer_id)
    .bind(intent.kind.as_str())
    .bind(intent.occurrence)
    .bind(NOTIFY_CHANNEL)
    .fetch_optional(conn)
    .await
}

/// The places a cancelled class took away: its participants still in it
/// (confirmed or waitlisted), as (client, position).
pub(crate) async fn live_participants(
    conn: &mut PgConnection,
    appointment_id: Uuid,
) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT client_id, position FROM appointment_participants \
         WHERE appointment_id = $1 AND status <> 'cancelled' ORDER BY position",
    )
    .bind(appointment_id)
    .fetch_all(conn)
    .await
}

/// Remembers the trainer's time zone as tenancy gave it (only a change is
/// written).
pub(crate) async fn remember_zone(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    time_zone: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO trainer_zones (trainer_id, time_zone) VALUES ($1, $2) \
         ON CONFLICT (trainer_id) DO UPDATE SET time_zone = EXCLUDED.time_zone, updated_at = now() \
         WHERE trainer_zones.time_zone <> EXCLUDED.time_zone",
    )
    .bind(trainer_id)
    .bind(time_zone)
    .execute(conn)
    .await?;
    Ok(())
}

/// A client who is owed a reminder, as the sweep finds them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ReminderCandidate {
    pub appointment_id: Uuid,
    pub client_id: Uuid,
    pub trainer_id: Uuid,
    pub start_time: DateTime<Utc>,
    /// When the appointment was booked, or the participant joined.
    pub booked_at: DateTime<Utc>,
}

/// Scheduled appointments starting in (now, now + lead] that were booked
/// before their reminder window opened, for each client with a place (the
/// appointment's client, or a confirmed participant), who has no reminder
/// recorded yet; soonest first, at most `limit` (system role). The same rule
/// as [`crate::notify::reminder_due`].
pub(crate) async fn reminder_candidates(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    lead: chrono::Duration,
    limit: i64,
) -> Result<Vec<ReminderCandidate>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM ( \
             SELECT a.id AS appointment_id, a.client_id, a.trainer_id, a.start_time, \
                    a.created_at AS booked_at \
             FROM appointments a \
             WHERE a.status = 'scheduled' AND a.client_id IS NOT NULL \
               AND a.start_time > $1 AND a.start_time <= $1 + $2 \
               AND a.created_at <= a.start_time - $2 \
               AND NOT EXISTS (SELECT 1 FROM appointment_notifications n \
                               WHERE n.appointment_id = a.id AND n.client_id = a.client_id \
                                 AND n.kind = 'reminder') \
             UNION ALL \
             SELECT a.id, p.client_id, a.trainer_id, a.start_time, p.joined_at \
             FROM appointments a \
             JOIN appointment_participants p \
               ON p.appointment_id = a.id AND p.start_time = a.start_time \
             WHERE a.status = 'scheduled' AND p.status = 'confirmed' \
               AND a.start_time > $1 AND a.start_time <= $1 + $2 \
               AND p.joined_at <= a.start_time - $2 \
               AND NOT EXISTS (SELECT 1 FROM appointment_notifications n \
                               WHERE n.appointment_id = a.id AND n.client_id = p.client_id \
                                 AND n.kind = 'reminder') \
         ) AS due ORDER BY start_time, appointment_id, client_id LIMIT $3",
    )
    .bind(now)
    .bind(lead)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A pending notification with what its letter says (system role).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct PendingNotification {
    pub id: Uuid,
    pub appointment_id: Uuid,
    pub client_id: Uuid,
    pub trainer_id: Uuid,
    pub kind: String,
    pub attempts: i32,
    pub start_time: DateTime<Utc>,
    pub appointment_status: String,
    pub location_type: String,
    pub class_type_name: String,
    /// The trainer's zone as last seen, if ever.
    pub time_zone: Option<String>,
    /// Whether the client still holds a place: the appointment's own client,
    /// or a confirmed participant.
    pub has_place: bool,
    /// For a series' booking confirmation: its scheduled sessions.
    pub series_sessions: Option<i64>,
}

/// The oldest `limit` pending notifications with their appointments.
pub(crate) async fn pending_notifications(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<PendingNotification>, sqlx::Error> {
    sqlx::query_as(
        "SELECT n.id, n.appointment_id, n.client_id, n.trainer_id, n.kind, n.attempts, \
                a.start_time, a.status AS appointment_status, a.location_type, \
                c.name AS class_type_name, z.time_zone, \
                (a.client_id IS NOT DISTINCT FROM n.client_id OR EXISTS ( \
                    SELECT 1 FROM appointment_participants p \
                    WHERE p.appointment_id = a.id AND p.client_id = n.client_id \
                      AND p.status = 'confirmed')) AS has_place, \
                CASE WHEN n.kind = 'booked' AND a.series_id IS NOT NULL THEN \
                    (SELECT count(*) FROM appointments s \
                     WHERE s.series_id = a.series_id AND s.status = 'scheduled') END \
                    AS series_sessions \
         FROM appointment_notifications n \
         JOIN appointments a ON a.id = n.appointment_id \
         JOIN class_types c ON c.id = a.class_type_id \
         LEFT JOIN trainer_zones z ON z.trainer_id = n.trainer_id \
         WHERE n.status = 'pending' \
           AND (n.next_attempt_at IS NULL OR n.next_attempt_at <= now()) \
         ORDER BY n.created_at, n.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Settles a pending notification (sent, skipped or failed, with the
/// outcome's word); false when it was settled already.
pub(crate) async fn settle_notification(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    outcome: &str,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE appointment_notifications SET status = $2, outcome = $3, settled_at = now() \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status)
    .bind(outcome)
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Counts a transient failure of a pending notification; with `defer`, the
/// relay leaves it until that long from now (without, it is due at once).
pub(crate) async fn notification_attempt_failed(
    conn: &mut PgConnection,
    id: Uuid,
    error: &str,
    defer: Option<std::time::Duration>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE appointment_notifications SET attempts = attempts + 1, last_error = $2, \
                next_attempt_at = now() + make_interval(secs => $3) \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(error)
    .bind(defer.map(|delay| delay.as_secs_f64()))
    .execute(conn)
    .await?;
    Ok(())
}
