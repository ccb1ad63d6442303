//! The SQL billing's internal RPCs run: billable items and payment status.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

/// A billable item: one client of one appointment, with what it owes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct BillableRow {
    pub appointment_id: Uuid,
    pub client_id: Uuid,
    pub start_time: DateTime<Utc>,
    /// `session`, `late_cancel` or `no_show`.
    pub kind: String,
    pub amount: Option<Decimal>,
    pub class_type_id: Uuid,
    pub category: String,
    pub payment_status: String,
    pub studio_id: Option<Uuid>,
}

/// One page of the billable items of `trainer_id`'s appointments starting
/// in [from, to), ordered by (start time, appointment, client), after
/// `after`. An individual or trial class's client owes its price when it
/// was held and they were not recorded absent, or its fee (non-zero, not
/// waived) when it was cancelled late or missed; a group class's confirmed
/// participants not recorded absent owe its price when it was held.
pub(crate) async fn billable(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    after: Option<(DateTime<Utc>, Uuid, Uuid)>,
    limit: i64,
) -> Result<Vec<BillableRow>, sqlx::Error> {
    sqlx::query_as(
        "WITH items AS ( \
             SELECT a.id AS appointment_id, a.client_id, a.start_time, \
                    CASE a.status WHEN 'completed' THEN 'session' WHEN 'no_show' THEN 'no_show' \
                         ELSE 'late_cancel' END AS kind, \
                    CASE a.status WHEN 'completed' THEN a.client_price ELSE a.penalty_fee END AS amount, \
                    a.class_type_id, c.category, a.payment_status, a.studio_id \
             FROM appointments a JOIN class_types c ON c.id = a.class_type_id \
             WHERE a.trainer_id = $1 AND a.start_time >= $2 AND a.start_time < $3 \
               AND a.client_id IS NOT NULL \
               AND ((a.status = 'completed' AND a.client_attended IS NOT FALSE) \
                 OR (a.status = 'no_show' AND a.penalty_fee > 0 AND NOT a.fee_waived) \
                 OR (a.status = 'cancelled' AND a.late_cancel AND a.penalty_fee > 0 \
                     AND NOT a.fee_waived)) \
             UNION ALL \
             SELECT a.id, p.client_id, a.start_time, 'session', a.client_price, \
                    a.class_type_id, c.category, p.payment_status, a.studio_id \
             FROM appointments a JOIN class_types c ON c.id = a.class_type_id \
             JOIN appointment_participants p \
               ON p.appointment_id = a.id AND p.start_time = a.start_time \
             WHERE a.trainer_id = $1 AND a.start_time >= $2 AND a.start_time < $3 \
               AND a.status = 'completed' AND p.status = 'confirmed' \
               AND p.attended IS NOT FALSE) \
         SELECT kind, appointment_id, client_id, start_time, amount, class_type_id, category, \
                payment_status, studio_id \
         FROM items \
         WHERE $4::timestamptz IS NULL \
            OR (start_time, appointment_id, client_id) > ($4, $5, $6) \
         ORDER BY start_time, appointment_id, client_id LIMIT $7",
    )
    .bind(trainer_id)
    .bind(from)
    .bind(to)
    .bind(after.map(|(at, _, _)| at))
    .bind(after.map(|(_, appointment, _)| appointment).unwrap_or_default())
    .bind(after.map(|(_, _, client)| client).unwrap_or_default())
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Where a client's payment for an appointment is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PaymentHolder {
    /// On the appointment: its own client (individual and trial classes).
    Appointment,
    /// On the participant row of a group class.
    Participant,
}

/// The payment status of `client_id` at appointment `id` (locked:
/// the caller holds the appointment's row lock), and where it is kept;
/// `None` when the client is neither the appointment's client nor a
/// participant.
pub(crate) async fn payment_status(
    conn: &mut PgConnection,
    id: Uuid,
    client_id: Uuid,
) -> Result<Option<(PaymentHolder, String)>, sqlx::Error> {
    let own: Option<String> = sqlx::query_scalar(
        "SELECT payment_status FROM appointments WHERE id = $1 AND client_id = $2",
    )
    .bind(id)
    .bind(client_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(status) = own {
        return Ok(Some((PaymentHolder::Appointment, status)));
    }
    let participant: Option<String> = sqlx::query_scalar(
        "SELECT payment_status FROM appointment_participants \
         WHERE appointment_id = $1 AND client_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(client_id)
    .fetch_optional(conn)
    .await?;
    Ok(participant.map(|status| (PaymentHolder::Participant, status)))
}

/// Sets the payment status of `client_id` at appointment `id` where
/// `holder` keeps it.
pub(crate) async fn set_payment_status(
    conn: &mut PgConnection,
    holder: PaymentHolder,
    (id, start_time): (Uuid, DateTime<Utc>),
    client_id: Uuid,
    status: &str,
) -> Result<(), sqlx::Error> {
    let statement = match holder {
        PaymentHolder::Appointment => {
            "UPDATE appointments SET payment_status = $4 \
             WHERE id = $1 AND start_time = $2 AND client_id = $3"
        }
        PaymentHolder::Participant => {
            "UPDATE appointment_participants SET payment_status = $4 \
             WHERE appointment_id = $1 AND start_time = $2 AND client_id = $3"
        }
    };
    sqlx::query(statement)
        .bind(id)
        .bind(start_time)
        .bind(client_id)
        .bind(status)
        .execute(conn)
        .await?;
    Ok(())
}

/// A session held at a studio, as billing's studio invoices need it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct StudioSessionRow {
    pub id: Uuid,
    pub studio_id: Uuid,
    pub class_type_id: Uuid,
    pub class_type_name: String,
    pub category: String,
    pub start_time: DateTime<Utc>,
    pub clients_present: i64,
}

/// One page of `trainer_id`'s completed sessions at a studio (of
/// `studios`, when given) starting in [from, to), in start order, after
/// `after`.
pub(crate) async fn studio_sessions(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    studios: Option<&[Uuid]>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<StudioSessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, a.studio_id, a.class_type_id, c.name AS class_type_name, c.category, \
                a.start_time, \
                CASE WHEN a.client_id IS NOT NULL \
                     THEN CASE WHEN a.client_attended IS FALSE THEN 0 ELSE 1 END \
                     ELSE (SELECT count(*) FROM appointment_participants p \
                           WHERE p.appointment_id = a.id AND p.start_time = a.start_time \
                             AND p.status = 'confirmed' AND p.attended IS NOT FALSE) \
                END::bigint AS clients_present \
         FROM appointments a JOIN class_types c ON c.id = a.class_type_id \
         WHERE a.trainer_id = $1 AND a.start_time >= $2 AND a.start_time < $3 \
           AND a.status = 'completed' AND a.studio_id IS NOT NULL \
           AND ($4::uuid[] IS NULL OR a.studio_id = ANY ($4)) \
           AND ($5::timestamptz IS NULL OR (a.start_time, a.id) > ($5, $6)) \
         ORDER BY a.start_time, a.id LIMIT $7",
    )
    .bind(trainer_id)
    .bind(from)
    .bind(to)
    .bind(studios)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id).unwrap_or_default())
    .bind(limit)
    .fetch_all(conn)
    .await
}
