//! A trainer's schedule as an iCalendar file (ExportTrainerCalendar): read
//! in one transaction with its access event, formatted by [`crate::ics`].

use chrono::{DateTime, Utc};
use fitflow_auth::Principal;
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use uuid::Uuid;

use super::{Calendar, commit, trainer_of, user};
use crate::domain::{MAX_EXPORT_EVENTS, Status};
use crate::ics;
use crate::repo::{self, CalendarEventRow};
use crate::{SERVICE, SchedulingError};

/// The audit trail's name for a trainer's exported schedule.
const RESOURCE: &str = "trainer_calendar";

/// A finished export: the `.ics` text and its access event.
#[derive(Debug)]
pub(crate) struct CalendarExport {
    /// The whole file.
    pub ics: String,
    /// The id of the EXPORT access event written for it.
    pub event_id: String,
}

/// The calendar event of an appointment.
fn event_of(row: CalendarEventRow) -> Result<ics::Event, SchedulingError> {
    let status = Status::parse(&row.status).ok_or(SchedulingError::Corrupt("status"))?;
    // Versions start at 1; SEQUENCE starts at 0 (RFC 5545 §3.8.7.4).
    let sequence =
        u32::try_from(row.version - 1).map_err(|_| SchedulingError::Corrupt("version"))?;
    Ok(ics::Event {
        appointment_id: row.id,
        start: row.start_time,
        end: row.end_time,
        summary: row.class_type_name,
        cancelled: status == Status::Cancelled,
        sequence,
    })
}

impl Calendar {
    /// The appointments of a trainer the caller acts for that start in
    /// `window`, as an `.ics` file, after an EXPORT access event committed
    /// in the same transaction as the read. More than
    /// [`MAX_EXPORT_EVENTS`] appointments: refused, nothing audited.
    pub(crate) async fn export_trainer_calendar(
        &self,
        principal: &Principal,
        trainer: Option<Uuid>,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<CalendarExport, SchedulingError> {
        let trainer_id = trainer_of(principal, trainer)?;
        let (from, to) = window;
        let _turn = self.exports.enter().await?;
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let limit = i64::try_from(MAX_EXPORT_EVENTS + 1).unwrap_or(i64::MAX);
        let rows = repo::calendar_events(&mut tx, trainer_id, from, to, limit).await?;
        if rows.len() > MAX_EXPORT_EVENTS {
            return Err(SchedulingError::ExportTooLarge);
        }
        let events = rows
            .into_iter()
            .map(event_of)
            .collect::<Result<Vec<_>, _>>()?;
        let event = AuditEventBuilder::new(SERVICE, Action::Export, RESOURCE, trainer_id)
            .actor_user(principal.user_id)
            .tenant(trainer_id)
            .change("start_time", "", &from.to_rfc3339())
            .change("end_time", "", &to.to_rfc3339())
            .change("events", "", &events.len().to_string())
            .purpose(Purpose::Operations)
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        commit(tx).await?;
        Ok(CalendarExport {
            ics: ics::calendar(&events, Utc::now()),
            event_id: event.event_id,
        })
    }
}
