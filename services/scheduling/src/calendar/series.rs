//! Edits with a series scope, as calendar apps offer them: cancelling or
//! changing one occurrence, this and the following ones, or all to come.
//! Each is one transaction: every occurrence the scope reaches changes, or
//! none does.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use fitflow_api::etag::Etag;
use fitflow_auth::Principal;
use fitflow_error::{ApiError, FieldViolation};
use fitflow_outbox::{Action, AuditEventBuilder};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{AppointmentView, Calendar, commit, user};
use crate::domain::{Location, Policy, Status};
use crate::repo::{self, AppointmentEdit, AppointmentRow, HoldError, SeriesRow};
use crate::series::scope::{self, Occurrence, Scope};
use crate::{SERVICE, SchedulingError};

/// Where a session at a studio may be moved: the studio, its zone and
/// the days the trainer's contracts with it cover.
struct StudioTerms {
    studio_id: Uuid,
    zone: Tz,
    spans: Vec<crate::tenancy::ContractSpan>,
}

/// What an UpdateAppointment writes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub(crate) struct AppointmentChange {
    pub start_time: Option<DateTime<Utc>>,
    pub location: Option<Location>,
    pub location_details: Option<String>,
    /// `Some(None)` clears the price.
    pub client_price: Option<Option<Decimal>>,
}

impl AppointmentChange {
    fn is_empty(&self) -> bool {
        self.start_time.is_none()
            && self.location.is_none()
            && self.location_details.is_none()
            && self.client_price.is_none()
    }
}

/// The named appointment, locked, and (for a scope reaching the series)
/// every occurrence of its series, locked in start order.
struct Locked {
    named: AppointmentRow,
    series: Vec<AppointmentRow>,
}

impl Locked {
    fn occurrence(row: &AppointmentRow) -> Occurrence {
        Occurrence {
            id: row.id,
            start: row.start_time,
            scheduled: Status::parse(&row.status) == Some(Status::Scheduled),
        }
    }

    /// The rows `scope` reaches, in start order.
    fn selected(&self, scope: Scope, now: DateTime<Utc>) -> Vec<AppointmentRow> {
        let occurrences: Vec<Occurrence> = self.series.iter().map(Self::occurrence).collect();
        scope::select(scope, Self::occurrence(&self.named), &occurrences, now)
            .into_iter()
            .filter_map(|picked| {
                if picked.id == self.named.id {
                    Some(self.named.clone())
                } else {
                    self.series.iter().find(|row| row.id == picked.id).cloned()
                }
            })
            .collect()
    }
}

fn zone_of(rule: &SeriesRow) -> Result<Tz, SchedulingError> {
    rule.time_zone
        .parse()
        .map_err(|_| SchedulingError::Corrupt("series time zone"))
}

impl Calendar {
    /// Locks what an edit of `id` with `scope` reaches, checks the caller
    /// acts for its trainer, the etag, and that it is scheduled.
    async fn lock_scope(
        &self,
        tx: &mut fitflow_db::Tx,
        principal: &Principal,
        id: Uuid,
        scope: Scope,
        etag: &str,
    ) -> Result<Locked, SchedulingError> {
        let locked = if scope.reaches_series() {
            // The series' rows are locked in start order, the named one
            // among them, so two edits of one series queue.
            let peek = repo::appointment(tx, id, false)
                .await?
                .filter(|row| principal.acts_for(row.trainer_id))
                .ok_or(SchedulingError::AppointmentNotFound)?;
            let series_id = peek.series_id.ok_or(SchedulingError::NotInSeries)?;
            let series = repo::series_locked(tx, series_id).await?;
            let named = series
                .iter()
                .find(|row| row.id == id)
                .cloned()
                .ok_or(SchedulingError::AppointmentNotFound)?;
            Locked { named, series }
        } else {
            let named = repo::appointment(tx, id, true)
                .await?
                .filter(|row| principal.acts_for(row.trainer_id))
                .ok_or(SchedulingError::AppointmentNotFound)?;
            Locked {
                named,
                series: Vec::new(),
            }
        };
        Etag::of_version(locked.named.id, locked.named.version).check(etag)?;
        if Status::parse(&locked.named.status) != Some(Status::Scheduled) {
            return Err(SchedulingError::AppointmentState);
        }
        Ok(locked)
    }

    /// Cancels a scheduled appointment, and with a scope more of its
    /// series, each as a single cancel would; frees their time. Returns the
    /// named appointment and every one cancelled, in start order.
    pub(crate) async fn cancel(
        &self,
        principal: &Principal,
        id: Uuid,
        reason: &str,
        etag: &str,
        scope: Scope,
    ) -> Result<(AppointmentView, Vec<AppointmentView>), SchedulingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let locked = self.lock_scope(&mut tx, principal, id, scope, etag).await?;
        let now = Utc::now();
        let selected = locked.selected(scope, now);
        // A series' occurrences share their trainer and studio.
        let policy = self
            .policy_in_tx(&mut tx, locked.named.trainer_id, locked.named.studio_id)
            .await?;
        for row in &selected {
            cancel_one(&mut tx, principal, row, reason, &policy, scope, now).await?;
            self.notify_cancelled(&mut tx, principal, row).await?;
        }
        if scope.reaches_series()
            && let (Some(series_id), Some(first)) = (locked.named.series_id, selected.first())
            && let Some(rule) = repo::series_rule(&mut tx, series_id, true).await?
        {
            let until = scope::ended_until(zone_of(&rule)?, first.start_time, rule.until_date);
            repo::end_series(&mut tx, series_id, until).await?;
            let event =
                AuditEventBuilder::new(SERVICE, Action::Update, "appointment_series", series_id)
                    .actor_user(principal.user_id)
                    .tenant(rule.trainer_id)
                    .change(
                        "until",
                        &rule
                            .until_date
                            .map(|date| date.to_string())
                            .unwrap_or_default(),
                        &until.to_string(),
                    )
                    .change("series_scope", "", scope.as_str())
                    .build();
            fitflow_outbox::record(&mut tx, &event).await?;
        }
        self.reread_all(tx, id, &selected).await
    }

    /// Changes a scheduled appointment, and with a scope more of its
    /// series; a new start moves the others by the same shift of local wall
    /// time in the series' zone. Refuses the whole edit when a moved
    /// occurrence would overlap another appointment, or, at a studio, fall
    /// on a day (in the studio's zone) no contract of the trainer covers.
    pub(crate) async fn update(
        &self,
        principal: &Principal,
        bearer: &str,
        id: Uuid,
        etag: &str,
        scope: Scope,
        change: AppointmentChange,
    ) -> Result<(AppointmentView, Vec<AppointmentView>), SchedulingError> {
        let fallback_zone = if change.start_time.is_some() && scope.reaches_series() {
            self.zone_of_ruleless_series(principal, bearer, id).await?
        } else {
            None
        };
        let studio_terms = match change.start_time {
            Some(_) => self.studio_terms_of(principal, bearer, id).await?,
            None => None,
        };
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let locked = self.lock_scope(&mut tx, principal, id, scope, etag).await?;
        if change.is_empty() {
            let view = AppointmentView::from(locked.named);
            commit(tx).await?;
            return Ok((view.clone(), vec![view]));
        }
        let selected = locked.selected(scope, Utc::now());
        let rule = match (scope.reaches_series(), locked.named.series_id) {
            (true, Some(series_id)) => repo::series_rule(&mut tx, series_id, true).await?,
            _ => None,
        };
        let moves = match change.start_time {
            None => None,
            Some(new_start) if scope == Scope::This => Some(vec![new_start]),
            Some(new_start) => {
                let (zone, rule_time) = match &rule {
                    Some(rule) => (zone_of(rule)?, Some(rule.wall_time)),
                    None => (
                        fallback_zone.ok_or(SchedulingError::Corrupt("series without a zone"))?,
                        None,
                    ),
                };
                let meant = scope::nominal_local(zone, locked.named.start_time, rule_time);
                let shift = scope::wall_shift(zone, meant, new_start);
                let mut starts = Vec::with_capacity(selected.len());
                for row in &selected {
                    let start = if row.id == locked.named.id {
                        Some(new_start)
                    } else {
                        let meant = scope::nominal_local(zone, row.start_time, rule_time);
                        scope::shifted(zone, meant, shift)
                    };
                    starts.push(start.ok_or_else(|| {
                        SchedulingError::Rejected(ApiError::invalid_argument(vec![
                            FieldViolation {
                                field: "appointment.start_time".to_owned(),
                                description: "moves an occurrence outside the calendar".to_owned(),
                            },
                        ]))
                    })?);
                }
                if scope == Scope::All
                    && let Some(rule) = &rule
                {
                    self.move_rule(&mut tx, principal, rule, shift).await?;
                }
                Some(starts)
            }
        };
        // A move is a booking at its new times: at a studio, a contract
        // must cover each one, as BookAppointment and BookSeries check.
        if let (Some(starts), Some(terms)) = (&moves, &studio_terms)
            && locked.named.studio_id == Some(terms.studio_id)
            && let Some(day) = crate::tenancy::first_uncovered(&terms.spans, terms.zone, starts)
        {
            return Err(SchedulingError::NoStudioContract(day));
        }
        if let Some(starts) = &moves {
            // Every moved occurrence lets go of its time first, so moved
            // occurrences never collide with where their siblings were.
            for row in &selected {
                repo::free_time(&mut tx, row.id).await?;
            }
            debug_assert_eq!(starts.len(), selected.len());
        }
        for (index, row) in selected.iter().enumerate() {
            let new_start = moves.as_ref().and_then(|starts| starts.get(index).copied());
            let edit = AppointmentEdit {
                start_time: new_start.unwrap_or(row.start_time),
                end_time: new_start.map_or(row.end_time, |start| {
                    start + (row.end_time - row.start_time)
                }),
                location_type: change.location.map_or_else(
                    || row.location_type.clone(),
                    |location| location.as_str().to_owned(),
                ),
                location_details: change
                    .location_details
                    .clone()
                    .unwrap_or_else(|| row.location_details.clone()),
                client_price: change.client_price.unwrap_or(row.client_price),
            };
            if !crate::domain::ends_in_calendar(edit.end_time) {
                return Err(super::past_the_calendar("appointment.start_time"));
            }
            if new_start.is_some()
                && let Some(conflict) =
                    repo::overlapping(&mut tx, row.trainer_id, edit.start_time, edit.end_time)
                        .await?
            {
                return Err(SchedulingError::TrainerBusy(Some(conflict)));
            }
            repo::edit_appointment(&mut tx, row.id, row.start_time, &edit).await?;
            if new_start.is_some() {
                match repo::hold_time(
                    &mut tx,
                    row.id,
                    row.trainer_id,
                    edit.start_time,
                    edit.end_time,
                )
                .await
                {
                    Ok(()) => {}
                    Err(HoldError::Overlap) => {
                        // A concurrent booking took the time after our
                        // check: name it from a fresh transaction (this one
                        // is aborted, and nothing of the edit is kept).
                        drop(tx);
                        let mut look = fitflow_db::tx(&self.pool, &user(principal)).await?;
                        let conflict = repo::overlapping(
                            &mut look,
                            row.trainer_id,
                            edit.start_time,
                            edit.end_time,
                        )
                        .await?;
                        commit(look).await?;
                        return Err(SchedulingError::TrainerBusy(conflict));
                    }
                    Err(HoldError::Database(error)) => return Err(error.into()),
                }
            }
            let event = edit_event(principal, row, &edit, scope);
            fitflow_outbox::record(&mut tx, &event).await?;
        }
        self.reread_all(tx, id, &selected).await
    }

    /// For an edit of `id` that moves a series booked before series kept
    /// their rule: the trainer's zone from tenancy (asked before the edit's
    /// transaction, so no transaction waits on the network). `None` when
    /// the series has its rule (or `id` is in no series).
    async fn zone_of_ruleless_series(
        &self,
        principal: &Principal,
        bearer: &str,
        id: Uuid,
    ) -> Result<Option<Tz>, SchedulingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = repo::appointment(&mut tx, id, false)
            .await?
            .filter(|row| principal.acts_for(row.trainer_id))
            .ok_or(SchedulingError::AppointmentNotFound)?;
        let ruleless = match row.series_id {
            Some(series_id) => repo::series_rule(&mut tx, series_id, false)
                .await?
                .is_none(),
            None => false,
        };
        commit(tx).await?;
        if ruleless {
            Ok(Some(self.zones.zone(bearer, row.trainer_id).await?))
        } else {
            Ok(None)
        }
    }

    /// For an edit that moves `id`: when it is at a studio, the studio's zone
    /// (asked now, not cached: a deleted studio takes no move) and the
    /// trainer's contracts there, asked before the edit's
    /// transaction (so no transaction waits on the network). The studio of
    /// an appointment never changes, so what this read names still holds
    /// under the edit's lock.
    async fn studio_terms_of(
        &self,
        principal: &Principal,
        bearer: &str,
        id: Uuid,
    ) -> Result<Option<StudioTerms>, SchedulingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = repo::appointment(&mut tx, id, false)
            .await?
            .filter(|row| principal.acts_for(row.trainer_id))
            .ok_or(SchedulingError::AppointmentNotFound)?;
        commit(tx).await?;
        let Some(studio_id) = row.studio_id else {
            return Ok(None);
        };
        let (zone, spans) = tokio::join!(
            self.zones.live_studio_zone(bearer, studio_id),
            self.zones.contract_spans(bearer, row.trainer_id, studio_id)
        );
        Ok(Some(StudioTerms {
            studio_id,
            zone: zone?,
            spans: spans?,
        }))
    }

    /// Moves a series' rule by `shift` of wall time (ALL moved it).
    async fn move_rule(
        &self,
        tx: &mut fitflow_db::Tx,
        principal: &Principal,
        rule: &SeriesRow,
        shift: chrono::Duration,
    ) -> Result<(), SchedulingError> {
        let days: Vec<chrono::Weekday> = rule
            .days
            .iter()
            .filter_map(|day| scope::from_iso_day(*day))
            .collect();
        let (wall_time, moved_days) = scope::shifted_rule(rule.wall_time, &days, shift);
        let moved_days: Vec<i16> = moved_days.into_iter().map(scope::iso_day).collect();
        repo::move_series(tx, rule.id, wall_time, &moved_days).await?;
        let list = |days: &[i16]| {
            days.iter()
                .map(i16::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "appointment_series", rule.id)
            .actor_user(principal.user_id)
            .tenant(rule.trainer_id)
            .change(
                "wall_time",
                &rule.wall_time.format("%H:%M").to_string(),
                &wall_time.format("%H:%M").to_string(),
            )
            .change("days", &list(&rule.days), &list(&moved_days))
            .build();
        fitflow_outbox::record(tx, &event).await?;
        Ok(())
    }

    /// Reads back the named appointment and every selected one, commits.
    async fn reread_all(
        &self,
        mut tx: fitflow_db::Tx,
        named: Uuid,
        selected: &[AppointmentRow],
    ) -> Result<(AppointmentView, Vec<AppointmentView>), SchedulingError> {
        let mut views = Vec::with_capacity(selected.len());
        for row in selected {
            let stored = repo::appointment(&mut tx, row.id, false)
                .await?
                .ok_or(SchedulingError::AppointmentNotFound)?;
            views.push(AppointmentView::from(stored));
        }
        commit(tx).await?;
        views.sort_by_key(|view| (view.row.start_time, view.row.id));
        let named = views
            .iter()
            .find(|view| view.row.id == named)
            .cloned()
            .ok_or(SchedulingError::AppointmentNotFound)?;
        Ok((named, views))
    }
}

/// Cancels one scheduled appointment as a single cancel does: late or not
/// by the policy, with its fee, its time freed, audited.
async fn cancel_one(
    tx: &mut fitflow_db::Tx,
    principal: &Principal,
    row: &AppointmentRow,
    reason: &str,
    policy: &Policy,
    scope: Scope,
    now: DateTime<Utc>,
) -> Result<(), SchedulingError> {
    let late = policy.is_late_cancel(now, row.start_time);
    let fee = if late {
        policy.late_cancel_penalty()
    } else {
        None
    };
    let cancellation = repo::Cancellation {
        by: principal.user_id,
        reason,
        late,
        fee,
    };
    repo::cancel(tx, row.id, row.start_time, cancellation).await?;
    let mut event = AuditEventBuilder::new(SERVICE, Action::Update, "appointments", row.id)
        .actor_user(principal.user_id)
        .tenant(row.trainer_id)
        .change("status", &row.status, Status::Cancelled.as_str())
        .change("cancelled_by", "", &principal.user_id.to_string())
        .change("late_cancel", "false", &late.to_string());
    if let Some(fee) = fee {
        event = event.change("penalty_fee", "", &fee.to_string());
    }
    if scope.reaches_series() {
        event = event.change("series_scope", "", scope.as_str());
    }
    fitflow_outbox::record(tx, &event.build()).await?;
    Ok(())
}

/// The audit event of an edit of `row`: what changed, never the text of
/// its location details (which may be a client's address).
fn edit_event(
    principal: &Principal,
    row: &AppointmentRow,
    edit: &AppointmentEdit,
    scope: Scope,
) -> fitflow_outbox::AuditEvent {
    let mut event = AuditEventBuilder::new(SERVICE, Action::Update, "appointments", row.id)
        .actor_user(principal.user_id)
        .tenant(row.trainer_id)
        .change("series_scope", "", scope.as_str());
    if edit.start_time != row.start_time {
        event = event.change(
            "start_time",
            &row.start_time.to_rfc3339(),
            &edit.start_time.to_rfc3339(),
        );
    }
    if edit.location_type != row.location_type {
        event = event.change("location_type", &row.location_type, &edit.location_type);
    }
    if edit.location_details != row.location_details {
        event = event.change("location_details_changed", "false", "true");
    }
    if edit.client_price != row.client_price {
        let money =
            |price: Option<Decimal>| price.map(|price| price.to_string()).unwrap_or_default();
        event = event.change(
            "client_price",
            &money(row.client_price),
            &money(edit.client_price),
        );
    }
    event.build()
}
