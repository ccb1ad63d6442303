//! Billing's requests in, billable items and payment statuses out.

use chrono::{DateTime, Utc};
use fitflow_api::page::Cursor;
use fitflow_api::text::{optional_uuid, uuid};
use fitflow_api::time::{required_date, to_timestamp};
use fitflow_error::Violations;
use fitflow_proto::scheduling as pb;
use uuid::Uuid;

use super::availability::{civil, date_out};
use super::money_out;
use crate::calendar::{BillableCursor, BillingPeriod, PaymentChange};
use crate::domain;
use crate::repo::{BillableRow, StudioSessionRow};

/// A page token's position in the billable items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BillableToken(pub BillableCursor);

impl Cursor for BillableToken {
    fn to_bytes(&self) -> Vec<u8> {
        let (at, appointment_id, client_id) = self.0;
        let mut bytes = Vec::with_capacity(40);
        bytes.extend_from_slice(&at.timestamp_micros().to_be_bytes());
        bytes.extend_from_slice(appointment_id.as_bytes());
        bytes.extend_from_slice(client_id.as_bytes());
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (micros, ids) = bytes.split_first_chunk::<8>()?;
        if ids.len() != 32 {
            return None;
        }
        let (appointment_id, client_id) = ids.split_at(16);
        Some(Self((
            DateTime::<Utc>::from_timestamp_micros(i64::from_be_bytes(*micros))?,
            Uuid::from_slice(appointment_id).ok()?,
            Uuid::from_slice(client_id).ok()?,
        )))
    }
}

/// The period of a `ListBillableAppointments`: local dates, in order, at
/// most [`domain::MAX_BILLING_DAYS`] of them.
pub(crate) fn billing_period(
    violations: &mut Violations,
    request: &pb::ListBillableAppointmentsRequest,
) -> Option<BillingPeriod> {
    period_of(
        violations,
        &request.trainer_id,
        request.start_date.as_ref(),
        request.end_date.as_ref(),
    )
}

/// A trainer (the caller when empty) and a period of local dates, in order,
/// at most [`domain::MAX_BILLING_DAYS`] of them.
fn period_of(
    violations: &mut Violations,
    trainer_id: &str,
    start_date: Option<&fitflow_proto::google::r#type::Date>,
    end_date: Option<&fitflow_proto::google::r#type::Date>,
) -> Option<BillingPeriod> {
    let trainer_id = optional_uuid(violations, "trainer_id", trainer_id);
    let first = required_date(violations, "start_date", civil(start_date));
    let last = required_date(violations, "end_date", civil(end_date));
    let (first, last) = (first?, last?);
    if !domain::valid_billing_period(first, last) {
        violations.add(
            "end_date",
            "must be on or after start_date and at most 92 days later",
        );
        return None;
    }
    Some(BillingPeriod {
        trainer_id,
        first,
        last,
    })
}

/// Most studios one `ListStudioSessions` names.
const MAX_STUDIO_FILTER: usize = 100;

/// The period and studios of a `ListStudioSessions` (the page is the
/// caller's to add).
pub(crate) fn studio_sessions_filter(
    violations: &mut Violations,
    request: &pb::ListStudioSessionsRequest,
) -> Option<(BillingPeriod, Vec<Uuid>)> {
    let period = period_of(
        violations,
        &request.trainer_id,
        request.start_date.as_ref(),
        request.end_date.as_ref(),
    );
    if request.studio_ids.len() > MAX_STUDIO_FILTER {
        violations.add("studio_ids", "must name at most 100 studios");
        return None;
    }
    let mut studios = Vec::with_capacity(request.studio_ids.len());
    for (index, value) in request.studio_ids.iter().enumerate() {
        if let Some(id) = uuid(violations, &format!("studio_ids[{index}]"), value)
            && !studios.contains(&id)
        {
            studios.push(id);
        }
    }
    Some((period?, studios))
}

/// The wire form of a session held at a studio, dated `local_date` in
/// `zone`.
pub(crate) fn studio_session_out(
    (zone, local_date, row): (chrono_tz::Tz, chrono::NaiveDate, StudioSessionRow),
) -> pb::StudioSession {
    pb::StudioSession {
        appointment_id: row.id.to_string(),
        studio_id: row.studio_id.to_string(),
        class_type_id: row.class_type_id.to_string(),
        class_type_name: row.class_type_name,
        category: super::category_out(&row.category) as i32,
        start_time: Some(to_timestamp(row.start_time)),
        local_date: Some(date_out(local_date)),
        time_zone: zone.name().to_owned(),
        clients_present: i32::try_from(row.clients_present).unwrap_or(i32::MAX),
    }
}

/// The change of a `SetPaymentStatus`.
pub(crate) fn payment_change(
    violations: &mut Violations,
    request: &pb::SetPaymentStatusRequest,
) -> Option<PaymentChange> {
    let appointment_id = uuid(violations, "appointment_id", &request.appointment_id);
    let client_id = uuid(violations, "client_id", &request.client_id);
    let status = match pb::PaymentStatus::try_from(request.status) {
        Ok(pb::PaymentStatus::Pending) => Some("pending"),
        Ok(pb::PaymentStatus::Paid) => Some("paid"),
        Ok(pb::PaymentStatus::Refunded) => Some("refunded"),
        Ok(pb::PaymentStatus::Unspecified) | Err(_) => {
            violations.add("status", "must be PENDING, PAID or REFUNDED");
            None
        }
    };
    Some(PaymentChange {
        appointment_id: appointment_id?,
        client_id: client_id?,
        status: status?,
    })
}

/// The wire form of a stored payment status.
pub(crate) fn payment_status_out(status: &str) -> pb::PaymentStatus {
    match status {
        "pending" => pb::PaymentStatus::Pending,
        "paid" => pb::PaymentStatus::Paid,
        "refunded" => pb::PaymentStatus::Refunded,
        _ => pb::PaymentStatus::Unspecified,
    }
}

/// The wire form of a billable item, dated in `zone` (its studio's, else
/// its trainer's).
pub(crate) fn billable_item_out(zone: chrono_tz::Tz, row: BillableRow) -> pb::BillableItem {
    let kind = match row.kind.as_str() {
        "session" => pb::BillableKind::Session,
        "late_cancel" => pb::BillableKind::LateCancel,
        "no_show" => pb::BillableKind::NoShow,
        _ => pb::BillableKind::Unspecified,
    };
    let category = super::category_out(&row.category);
    pb::BillableItem {
        appointment_id: row.appointment_id.to_string(),
        client_id: row.client_id.to_string(),
        kind: kind as i32,
        amount: money_out(row.amount),
        class_type_id: row.class_type_id.to_string(),
        category: category as i32,
        studio_id: row
            .studio_id
            .map(|studio| studio.to_string())
            .unwrap_or_default(),
        local_date: Some(date_out(row.start_time.with_timezone(&zone).date_naive())),
        start_time: Some(to_timestamp(row.start_time)),
        payment_status: payment_status_out(&row.payment_status) as i32,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn a_billable_page_position_reads_back_from_its_bytes_and_nothing_else_does() {
        let position = BillableToken((
            Utc.with_ymd_and_hms(2026, 11, 1, 9, 30, 0).unwrap(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        ));
        assert_eq!(
            BillableToken::from_bytes(&position.to_bytes()),
            Some(position)
        );
        assert_eq!(BillableToken::from_bytes(&position.to_bytes()[..39]), None);
        assert_eq!(BillableToken::from_bytes(&[]), None);
    }
}
