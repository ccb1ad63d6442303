//! How an appointment ends: held (with attendance), a no-show, or cancelled
//! late — and the trainer's cancellation policy that prices the last two.

use fitflow_api::etag::Etag;
use fitflow_auth::Principal;
use fitflow_outbox::{Action, AuditEventBuilder};
use uuid::Uuid;

use super::{AppointmentView, Calendar, commit, trainer_of, user};
use crate::domain::{Category, Policy, Status};
use crate::repo::{self, AppointmentRow};
use crate::{SERVICE, SchedulingError};

/// One client's attendance, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attended {
    pub client_id: Uuid,
    pub attended: bool,
}

/// Whose cancellation policy: a trainer's (the caller when `None`), or a
/// studio's override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PolicyHolder {
    Trainer(Option<Uuid>),
    Studio(Uuid),
}

/// An audit event's `late_cancel_hours`, `late_cancel_fee` and
/// `no_show_fee` changes from `before` to `after`.
fn policy_changes(
    event: AuditEventBuilder,
    before: Option<&Policy>,
    after: &Policy,
) -> AuditEventBuilder {
    let money =
        |fee: Option<rust_decimal::Decimal>| fee.map(|fee| fee.to_string()).unwrap_or_default();
    event
        .change(
            "late_cancel_hours",
            &before
                .map(|policy| policy.late_cancel_hours.to_string())
                .unwrap_or_default(),
            &after.late_cancel_hours.to_string(),
        )
        .change(
            "late_cancel_fee",
            &before
                .map(|policy| money(policy.late_cancel_fee))
                .unwrap_or_default(),
            &money(after.late_cancel_fee),
        )
        .change(
            "no_show_fee",
            &before
                .map(|policy| money(policy.no_show_fee))
                .unwrap_or_default(),
            &money(after.no_show_fee),
        )
}

fn policy_of((late_cancel_hours, late_cancel_fee, no_show_fee): repo::PolicyRow) -> Policy {
    Policy {
        late_cancel_hours,
        late_cancel_fee,
        no_show_fee,
    }
}

impl Calendar {
    /// The policy in force for a session of `trainer_id` at `studio_id`:
    /// the studio's override when it set one, else the trainer's (the
    /// default when none is set).
    pub(super) async fn policy_in_tx(
        &self,
        tx: &mut fitflow_db::Tx,
        trainer_id: Uuid,
        studio_id: Option<Uuid>,
    ) -> Result<Policy, SchedulingError> {
        if let Some(studio_id) = studio_id
            && let Some(row) = repo::studio_policy(tx, studio_id).await?
        {
            return Ok(policy_of(row));
        }
        Ok(repo::policy(tx, trainer_id)
            .await?
            .map(policy_of)
            .unwrap_or_default())
    }

    /// A trainer's cancellation policy, or a studio's override.
    pub(crate) async fn policy(
        &self,
        principal: &Principal,
        holder: PolicyHolder,
    ) -> Result<(PolicyHolder, Policy), SchedulingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let answer = match holder {
            PolicyHolder::Trainer(trainer) => {
                let trainer_id = trainer_of(principal, trainer)?;
                let policy = self.policy_in_tx(&mut tx, trainer_id, None).await?;
                (PolicyHolder::Trainer(Some(trainer_id)), policy)
            }
            PolicyHolder::Studio(studio_id) => {
                let row = repo::studio_policy(&mut tx, studio_id)
                    .await?
                    .ok_or(SchedulingError::NoStudioPolicy)?;
                (holder, policy_of(row))
            }
        };
        fitflow_db::end_read(tx);
        Ok(answer)
    }

    /// Sets a trainer's cancellation policy, or a studio's override (for a
    /// manager of the studio).
    pub(crate) async fn set_policy(
        &self,
        principal: &Principal,
        holder: PolicyHolder,
        policy: Policy,
    ) -> Result<(PolicyHolder, Policy), SchedulingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let holder = match holder {
            PolicyHolder::Trainer(trainer) => {
                let trainer_id = trainer_of(principal, trainer)?;
                let before = self.policy_in_tx(&mut tx, trainer_id, None).await?;
                repo::put_policy(&mut tx, trainer_id, &policy).await?;
                let event = AuditEventBuilder::new(
                    SERVICE,
                    Action::Update,
                    "cancellation_policies",
                    trainer_id,
                )
                .actor_user(principal.user_id)
                .tenant(trainer_id);
                let event = policy_changes(event, Some(&before), &policy).build();
                fitflow_outbox::record(&mut tx, &event).await?;
                PolicyHolder::Trainer(Some(trainer_id))
            }
            PolicyHolder::Studio(studio_id) => {
                if !principal.studio_ids.contains(&studio_id) {
                    return Err(SchedulingError::StudioNotManaged);
                }
                repo::admit_studio_manager(&mut tx, studio_id).await?;
                let before = repo::studio_policy(&mut tx, studio_id)
                    .await?
                    .map(policy_of);
                repo::put_studio_policy(&mut tx, studio_id, &policy, principal.user_id).await?;
                let event = AuditEventBuilder::new(
                    SERVICE,
                    Action::Update,
                    "studio_cancellation_policies",
                    studio_id,
                )
                .actor_user(principal.user_id)
                .tenant(studio_id);
                let event = policy_changes(event, before.as_ref(), &policy).build();
                fitflow_outbox::record(&mut tx, &event).await?;
                holder
            }
        };
        commit(tx).await?;
        Ok((holder, policy))
    }

    /// The scheduled appointment `id` of a trainer the caller acts for,
    /// locked, if `etag` is current.
    async fn scheduled(
        &self,
        tx: &mut fitflow_db::Tx,
        principal: &Principal,
        id: Uuid,
        etag: &str,
    ) -> Result<AppointmentRow, SchedulingError> {
        let row = repo::appointment(tx, id, true)
            .await?
            .filter(|row| principal.acts_for(row.trainer_id))
            .ok_or(SchedulingError::AppointmentNotFound)?;
        Etag::of_version(row.id, row.version).check(etag)?;
        if Status::parse(&row.status) != Some(Status::Scheduled) {
            return Err(SchedulingError::AppointmentState);
        }
        Ok(row)
    }

    async fn reread(
        &self,
        mut tx: fitflow_db::Tx,
        id: Uuid,
    ) -> Result<AppointmentView, SchedulingError> {
        let row = repo::appointment(&mut tx, id, false)
            .await?
            .ok_or(SchedulingError::AppointmentNotFound)?;
        commit(tx).await?;
        Ok(row.into())
    }

    /// Marks a scheduled appointment held, with who came.
    pub(crate) async fn complete(
        &self,
        principal: &Principal,
        id: Uuid,
        attendance: &[Attended],
        etag: &str,
    ) -> Result<AppointmentView, SchedulingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = self.scheduled(&mut tx, principal, id, etag).await?;
        let (category, _) = repo::capacity(&mut tx, row.class_type_id)
            .await?
            .ok_or(SchedulingError::Corrupt("class type of an appointment"))?;
        let group = Category::parse(&category) == Some(Category::Group);
        let mut client_attended = None;
        for entry in attendance {
            if group {
                if !repo::set_attended(&mut tx, id, entry.client_id, entry.attended).await? {
                    return Err(SchedulingError::ParticipantNotFound);
                }
            } else if row.client_id == Some(entry.client_id) {
                client_attended = Some(entry.attended);
            } else {
                return Err(SchedulingError::ParticipantNotFound);
            }
        }
        repo::close(
            &mut tx,
            id,
            row.start_time,
            Status::Completed.as_str(),
            None,
            client_attended,
        )
        .await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "appointments", id)
            .actor_user(principal.user_id)
            .tenant(row.trainer_id)
            .change(
                "status",
                Status::Scheduled.as_str(),
                Status::Completed.as_str(),
            )
            .change("attendance_recorded", "", &attendance.len().to_string())
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        self.reread(tx, id).await
    }

    /// Marks a scheduled appointment a no-show, owing the policy's fee.
    pub(crate) async fn no_show(
        &self,
        principal: &Principal,
        id: Uuid,
        etag: &str,
    ) -> Result<AppointmentView, SchedulingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = self.scheduled(&mut tx, principal, id, etag).await?;
        let fee = self
            .policy_in_tx(&mut tx, row.trainer_id, row.studio_id)
            .await?
            .no_show_penalty();
        let attended = row.client_id.map(|_| false);
        repo::close(
            &mut tx,
            id,
            row.start_time,
            Status::NoShow.as_str(),
            fee,
            attended,
        )
        .await?;
        let mut event = AuditEventBuilder::new(SERVICE, Action::Update, "appointments", id)
            .actor_user(principal.user_id)
            .tenant(row.trainer_id)
            .change(
                "status",
                Status::Scheduled.as_str(),
                Status::NoShow.as_str(),
            );
        if let Some(fee) = fee {
            event = event.change("penalty_fee", "", &fee.to_string());
        }
        fitflow_outbox::record(&mut tx, &event.build()).await?;
        self.reread(tx, id).await
    }

    /// Waives the fee a late cancellation or a no-show owes.
    pub(crate) async fn waive(
        &self,
        principal: &Principal,
        id: Uuid,
        reason: &str,
    ) -> Result<AppointmentView, SchedulingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = repo::appointment(&mut tx, id, true)
            .await?
            .filter(|row| principal.acts_for(row.trainer_id))
            .ok_or(SchedulingError::AppointmentNotFound)?;
        if row.penalty_fee.is_none() || row.fee_waived {
            return Err(SchedulingError::NoFee);
        }
        repo::waive(&mut tx, id, row.start_time).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "appointments", id)
            .actor_user(principal.user_id)
            .tenant(row.trainer_id)
            .change("fee_waived", "false", "true")
            // The reason is free text a trainer typed: only its length is kept.
            .change(
                "waive_reason_chars",
                "",
                &reason.chars().count().to_string(),
            )
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        self.reread(tx, id).await
    }
}
