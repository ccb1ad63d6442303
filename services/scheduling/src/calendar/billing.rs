//! What billing asks of scheduling (DESIGN.md §11): the billable items of a
//! trainer's period, read as the user whose token billing forwards, and a
//! client's payment status, which billing sets acting for itself through
//! its reliable commands.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, NaiveDate, Utc};
use fitflow_api::idempotency::{self, Claim};
use fitflow_auth::Principal;
use fitflow_outbox::{Action, AuditEventBuilder};
use uuid::Uuid;

use super::{Calendar, Idempotency, commit, trainer_of, user};
use crate::domain;
use crate::repo::{self, BillableRow, StudioSessionRow};
use crate::{SERVICE, SchedulingError};

/// The peer that sends billing's commands.
pub(crate) const BILLING_PEER: &str = "billing";

/// A page position in the billable items: (start time, appointment, client).
pub(crate) type BillableCursor = (DateTime<Utc>, Uuid, Uuid);

/// A period of local dates, inclusive, for a trainer (the caller when none).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BillingPeriod {
    pub trainer_id: Option<Uuid>,
    pub first: NaiveDate,
    pub last: NaiveDate,
}

/// A page of billable items.
pub(crate) struct BillablePage {
    /// The trainer's zone, which the period is read in.
    pub zone: chrono_tz::Tz,
    /// Each item with the zone that dates it.
    pub items: Vec<(chrono_tz::Tz, BillableRow)>,
    /// Where the next page starts.
    pub next: Option<BillableCursor>,
}

/// A page of the sessions held at studios.
pub(crate) struct StudioSessionPage {
    /// Each session with the zone that dates it and its local date.
    pub sessions: Vec<(chrono_tz::Tz, NaiveDate, StudioSessionRow)>,
    /// Where the next page starts.
    pub next: Option<(DateTime<Utc>, Uuid)>,
}

/// Which sessions at studios.
#[derive(Debug, Clone)]
pub(crate) struct StudioSessionQuery {
    pub period: BillingPeriod,
    /// Only these studios; every one when empty.
    pub studios: Vec<Uuid>,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub page_size: u32,
}

/// A payment status billing sets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PaymentChange {
    pub appointment_id: Uuid,
    pub client_id: Uuid,
    /// `pending`, `paid` or `refunded`.
    pub status: &'static str,
}

impl Calendar {
    /// One page of the billable items of a trainer the caller acts for, in
    /// the period's local dates in the trainer's zone (from tenancy, with
    /// the user's `bearer` token); the zone, the items each with the zone
    /// that dates it (its studio's, else the trainer's) and the next page's
    /// position.
    pub(crate) async fn billable(
        &self,
        principal: &Principal,
        bearer: &str,
        period: BillingPeriod,
        after: Option<BillableCursor>,
        page_size: u32,
    ) -> Result<BillablePage, SchedulingError> {
        let trainer_id = trainer_of(principal, period.trainer_id)?;
        // Asked before the transaction: no transaction waits on the network.
        let zone = self.zones.zone(bearer, trainer_id).await?;
        let window = domain::local_period(zone, period.first, period.last);
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let mut rows =
            repo::billable(&mut tx, trainer_id, window, after, i64::from(page_size) + 1).await?;
        fitflow_db::end_read(tx);
        let next = fitflow_api::page::split_page(&mut rows, page_size, |row| {
            (row.start_time, row.appointment_id, row.client_id)
        });
        // "The date of" a session at a studio is in the studio's zone
        // (DESIGN.md §11); a studio deleted since is dated as the trainer's.
        let mut studio_zones: HashMap<Uuid, chrono_tz::Tz> = HashMap::new();
        for studio_id in rows.iter().filter_map(|row| row.studio_id) {
            if let Entry::Vacant(slot) = studio_zones.entry(studio_id) {
                let studio_zone = match self.zones.studio_zone(bearer, studio_id).await {
                    Ok(studio_zone) => studio_zone,
                    Err(SchedulingError::StudioNotFound) => zone,
                    Err(error) => return Err(error),
                };
                slot.insert(studio_zone);
            }
        }
        let dated = rows
            .into_iter()
            .map(|row| {
                let row_zone = row
                    .studio_id
                    .and_then(|studio| studio_zones.get(&studio).copied())
                    .unwrap_or(zone);
                (row_zone, row)
            })
            .collect();
        Ok(BillablePage {
            zone,
            items: dated,
            next,
        })
    }

    /// One page of the sessions a trainer the caller acts for held at
    /// studios, each dated in its studio's zone (asked of tenancy with the
    /// user's `bearer` token) and kept when that date is in the period.
    pub(crate) async fn studio_sessions(
        &self,
        principal: &Principal,
        bearer: &str,
        query: StudioSessionQuery,
    ) -> Result<StudioSessionPage, SchedulingError> {
        let trainer_id = trainer_of(principal, query.period.trainer_id)?;
        let window = domain::any_zone_period(query.period.first, query.period.last);
        let studios = (!query.studios.is_empty()).then_some(query.studios.as_slice());
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let mut rows = repo::studio_sessions(
            &mut tx,
            trainer_id,
            window,
            studios,
            query.after,
            i64::from(query.page_size) + 1,
        )
        .await?;
        fitflow_db::end_read(tx);
        let next = fitflow_api::page::split_page(&mut rows, query.page_size, |row| {
            (row.start_time, row.id)
        });
        let mut zones: HashMap<Uuid, chrono_tz::Tz> = HashMap::new();
        let mut sessions = Vec::with_capacity(rows.len());
        for row in rows {
            let zone = match zones.entry(row.studio_id) {
                Entry::Occupied(known) => *known.get(),
                Entry::Vacant(slot) => {
                    let zone = match self.zones.studio_zone(bearer, row.studio_id).await {
                        Ok(zone) => zone,
                        Err(SchedulingError::StudioNotFound) => {
                            self.zones.zone(bearer, trainer_id).await?
                        }
                        Err(error) => return Err(error),
                    };
                    *slot.insert(zone)
                }
            };
            let day = row.start_time.with_timezone(&zone).date_naive();
            if (query.period.first..=query.period.last).contains(&day) {
                sessions.push((zone, day, row));
            }
        }
        Ok(StudioSessionPage { sessions, next })
    }

    /// Sets a client's payment status for an appointment, for billing. A
    /// replay (the same `request`, or a redelivered `command_id`) and a
    /// status the client already has change nothing and write no event.
    /// Returns the status now held.
    pub(crate) async fn set_payment_status(
        &self,
        change: PaymentChange,
        request: Idempotency,
        command_id: Option<Uuid>,
    ) -> Result<String, SchedulingError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        // The appointment's row lock serialises every change to its payments.
        let appointment = repo::appointment(&mut tx, change.appointment_id, true)
            .await?
            .ok_or(SchedulingError::AppointmentNotFound)?;
        let (holder, current) =
            repo::payment_status(&mut tx, change.appointment_id, change.client_id)
                .await?
                .ok_or(SchedulingError::ParticipantNotFound)?;
        let mut replay = false;
        if let Some((key, hash)) = &request.0 {
            replay = matches!(
                idempotency::claim(&mut tx, key, hash, change.appointment_id).await?,
                Claim::Replay(_)
            );
        }
        if let Some(command_id) = command_id
            && !replay
        {
            replay = !fitflow_outbox::accept_once(&mut tx, command_id, BILLING_PEER).await?;
        }
        if replay || current == change.status {
            commit(tx).await?;
            return Ok(current);
        }
        repo::set_payment_status(
            &mut tx,
            holder,
            (appointment.id, appointment.start_time),
            change.client_id,
            change.status,
        )
        .await?;
        let event = AuditEventBuilder::new(
            SERVICE,
            Action::Update,
            "appointment_participants",
            appointment.id,
        )
        // The audit service admits only the sending service as a service
        // actor; `requested_by` names billing, whose command this is.
        .actor_service(SERVICE)
        .tenant(appointment.trainer_id)
        .change("client_id", "", &change.client_id.to_string())
        .change("payment_status", &current, change.status)
        .change("requested_by", "", BILLING_PEER)
        .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        commit(tx).await?;
        Ok(change.status.to_owned())
    }
}
