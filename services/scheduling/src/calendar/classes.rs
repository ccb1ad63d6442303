//! Group classes: joining (confirmed while places last, then waitlisted in
//! commit order), leaving (the first waitlisted takes the place in the same
//! transaction), and the roster. A confirmed join, a leave and a promotion
//! each record the client's notice in their transaction.

use fitflow_api::idempotency::{self, Claim};
use fitflow_auth::Principal;
use fitflow_outbox::{Action, AuditEventBuilder};
use uuid::Uuid;

use super::{Calendar, Idempotency, commit, user};
use crate::domain::{Category, Participation, Status};
use crate::notify::{self, Recorder};
use crate::repo::{self, AppointmentRow, ParticipantRow};
use crate::{SERVICE, SchedulingError};

const TABLE: &str = "appointment_participants";

/// An audit event about `client_id` in class `appointment`.
fn event(
    principal: &Principal,
    action: Action,
    appointment: &AppointmentRow,
    client_id: Uuid,
) -> AuditEventBuilder {
    // The resource is the participation: the class and the client together.
    AuditEventBuilder::new(SERVICE, action, TABLE, appointment.id)
        .actor_user(principal.user_id)
        .tenant(appointment.trainer_id)
        .change("client_id", "", &client_id.to_string())
}

/// A notice to `client_id` about their place (at `position`) in class
/// `appointment`.
fn place(
    appointment: &AppointmentRow,
    client_id: Uuid,
    kind: notify::Kind,
    position: i64,
) -> notify::Intent {
    notify::Intent {
        appointment_id: appointment.id,
        client_id,
        trainer_id: appointment.trainer_id,
        kind,
        occurrence: position,
    }
}

impl Calendar {
    /// The class locked for a change of its participants: every join and
    /// leave of one class queue on this lock, so counts and positions are
    /// read and drawn one transaction at a time, in commit order.
    async fn locked_class(
        &self,
        tx: &mut fitflow_db::Tx,
        principal: &Principal,
        appointment_id: Uuid,
    ) -> Result<(AppointmentRow, i32), SchedulingError> {
        let appointment = repo::appointment(tx, appointment_id, true)
            .await?
            .filter(|row| principal.acts_for(row.trainer_id))
            .ok_or(SchedulingError::AppointmentNotFound)?;
        let (category, capacity) = repo::capacity(tx, appointment.class_type_id)
            .await?
            .ok_or(SchedulingError::Corrupt("class type of an appointment"))?;
        if Category::parse(&category) != Some(Category::Group) {
            return Err(SchedulingError::NotAGroupClass);
        }
        Ok((appointment, capacity))
    }

    /// Adds a client to a group class, confirmed or waitlisted.
    pub(crate) async fn join(
        &self,
        principal: &Principal,
        bearer: &str,
        appointment_id: Uuid,
        client_id: Uuid,
        request: Idempotency,
    ) -> Result<ParticipantRow, SchedulingError> {
        self.clients.require_write(bearer, client_id).await?;
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let (appointment, capacity) = self
            .locked_class(&mut tx, principal, appointment_id)
            .await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(_) = idempotency::claim(&mut tx, key, hash, appointment_id).await?
        {
            let row = repo::participant(&mut tx, appointment_id, client_id)
                .await?
                .ok_or(SchedulingError::ParticipantNotFound)?;
            commit(tx).await?;
            return Ok(row);
        }
        if Status::parse(&appointment.status) != Some(Status::Scheduled) {
            return Err(SchedulingError::AppointmentState);
        }
        if let Some(existing) = repo::participant(&mut tx, appointment_id, client_id).await?
            && Participation::parse(&existing.status) != Some(Participation::Cancelled)
        {
            return Err(SchedulingError::ParticipantExists);
        }
        let confirmed = repo::confirmed_count(&mut tx, appointment_id).await?;
        let status = Participation::on_join(confirmed, capacity);
        let row = repo::join(&mut tx, &appointment, client_id, status.as_str()).await?;
        let audit = event(principal, Action::Create, &appointment, client_id)
            .change("status", "", status.as_str())
            .build();
        fitflow_outbox::record(&mut tx, &audit).await?;
        if status == Participation::Confirmed {
            let booked = place(&appointment, client_id, notify::Kind::Booked, row.position);
            notify::record(&mut tx, Recorder::User(principal.user_id), booked).await?;
        }
        commit(tx).await?;
        Ok(row)
    }

    /// Takes a client out of a group class; a confirmed place that frees up
    /// goes to the first waitlisted participant in the same transaction.
    pub(crate) async fn leave(
        &self,
        principal: &Principal,
        appointment_id: Uuid,
        client_id: Uuid,
    ) -> Result<(ParticipantRow, Option<ParticipantRow>), SchedulingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let (appointment, _) = self
            .locked_class(&mut tx, principal, appointment_id)
            .await?;
        let existing = repo::participant(&mut tx, appointment_id, client_id)
            .await?
            .ok_or(SchedulingError::ParticipantNotFound)?;
        let was = Participation::parse(&existing.status)
            .ok_or(SchedulingError::Corrupt("participant status"))?;
        if was == Participation::Cancelled {
            return Err(SchedulingError::ParticipantNotFound);
        }
        let left = repo::set_participant_status(
            &mut tx,
            appointment_id,
            client_id,
            Participation::Cancelled.as_str(),
        )
        .await?;
        let audit = event(principal, Action::Update, &appointment, client_id)
            .change("status", was.as_str(), Participation::Cancelled.as_str())
            .build();
        fitflow_outbox::record(&mut tx, &audit).await?;
        let cancelled = place(
            &appointment,
            client_id,
            notify::Kind::Cancelled,
            existing.position,
        );
        notify::record(&mut tx, Recorder::User(principal.user_id), cancelled).await?;
        let mut promoted = None;
        if was == Participation::Confirmed
            && let Some(next) = repo::first_waitlisted(&mut tx, appointment_id).await?
        {
            let row = repo::set_participant_status(
                &mut tx,
                appointment_id,
                next.client_id,
                Participation::Confirmed.as_str(),
            )
            .await?;
            let audit = event(principal, Action::Update, &appointment, next.client_id)
                .change(
                    "status",
                    Participation::Waitlisted.as_str(),
                    Participation::Confirmed.as_str(),
                )
                .change("promoted_from_waitlist", "", "true")
                .build();
            fitflow_outbox::record(&mut tx, &audit).await?;
            let notice = place(
                &appointment,
                next.client_id,
                notify::Kind::Promoted,
                next.position,
            );
            notify::record(&mut tx, Recorder::User(principal.user_id), notice).await?;
            promoted = Some(row);
        }
        commit(tx).await?;
        Ok((left, promoted))
    }

    /// The class's participants in join order.
    pub(crate) async fn participants(
        &self,
        principal: &Principal,
        appointment_id: Uuid,
        show_cancelled: bool,
    ) -> Result<Vec<ParticipantRow>, SchedulingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        repo::appointment(&mut tx, appointment_id, false)
            .await?
            .filter(|row| principal.acts_for(row.trainer_id))
            .ok_or(SchedulingError::AppointmentNotFound)?;
        let rows = repo::participants(&mut tx, appointment_id, show_cancelled).await?;
        commit(tx).await?;
        Ok(rows)
    }
}
