//! Availability: weekly rules (no two of a trainer overlap as real instants,
//! each read in its place's zone — a studio's, or the trainer's), exceptions,
//! and the free slots they leave around booked appointments.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use fitflow_api::etag::Etag;
use fitflow_api::idempotency::{self, Claim};
use fitflow_auth::Principal;
use fitflow_outbox::{Action, AuditEventBuilder};
use uuid::Uuid;

use super::{Calendar, Idempotency, commit, trainer_of, user};
use crate::overlap::{self, ZonedRule};
use crate::repo::{self, ExceptionRow, RuleInsertError, RuleRow};
use crate::slots::{self, DayWindow, Exception, ExceptionKind, PlacedRule, Rule, Slot, SlotQuery};
use crate::{SERVICE, SchedulingError};

const RULES: &str = "availability_rules";
/// Rounds a rule create may take to learn the zones of studios whose rules
/// appear while it runs (created meanwhile by another instance: in one, a
/// trainer's creates run one at a time).
const STUDIO_ROUNDS: usize = 3;
/// The most rules of a trainer whose dates meet a new rule's: each create
/// compares the new rule with all of them, two in different zones week by
/// week to 2100 (up to 13,400 weeks from 1844; about 20 ms unoptimised), so
/// a create costs at most about two seconds there (tenths in a release
/// build). A trainer's week rarely needs more than a few dozen.
pub(crate) const MAX_RULES_MET: usize = 100;
const EXCEPTIONS: &str = "availability_exceptions";

/// A rule to create.
#[derive(Debug, Clone)]
pub(crate) struct NewRule {
    pub trainer_id: Option<Uuid>,
    pub studio_id: Option<Uuid>,
    pub rule: Rule,
}

/// An exception to create.
#[derive(Debug, Clone)]
pub(crate) struct NewException {
    pub trainer_id: Option<Uuid>,
    pub exception: Exception,
}

/// A free-slot question.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotRequest {
    pub trainer_id: Option<Uuid>,
    pub class_type_id: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The request's buffer; 0 takes the trainer's default.
    pub buffer_minutes: i32,
}

/// As stored: `time_off` or `extra_hours`.
pub(crate) fn kind_str(kind: ExceptionKind) -> &'static str {
    match kind {
        ExceptionKind::TimeOff => "time_off",
        ExceptionKind::ExtraHours => "extra_hours",
    }
}

fn minute(value: i16) -> Result<u16, SchedulingError> {
    u16::try_from(value).map_err(|_| SchedulingError::Corrupt("availability minute"))
}

/// A stored rule as the slot computation reads it.
pub(crate) fn rule_of(row: &RuleRow) -> Result<Rule, SchedulingError> {
    Ok(Rule {
        day: slots::iso_weekday(row.day_of_week)
            .ok_or(SchedulingError::Corrupt("availability weekday"))?,
        window: DayWindow::new(minute(row.start_minute)?, minute(row.end_minute)?)
            .ok_or(SchedulingError::Corrupt("availability hours"))?,
        effective_from: row.effective_from,
        effective_until: row.effective_until,
    })
}

/// A stored exception as the slot computation reads it.
pub(crate) fn exception_of(row: &ExceptionRow) -> Result<Exception, SchedulingError> {
    let kind = match row.kind.as_str() {
        "time_off" => ExceptionKind::TimeOff,
        "extra_hours" => ExceptionKind::ExtraHours,
        _ => return Err(SchedulingError::Corrupt("exception kind")),
    };
    let window = match (row.start_minute, row.end_minute) {
        (Some(start), Some(end)) => Some(
            DayWindow::new(minute(start)?, minute(end)?)
                .ok_or(SchedulingError::Corrupt("exception hours"))?,
        ),
        _ => None,
    };
    Ok(Exception {
        kind,
        start_date: row.start_date,
        end_date: row.end_date,
        window,
    })
}

/// `(old, new)` of a field a create sets or a delete clears.
fn change_of(action: Action, value: String) -> (String, String) {
    if action == Action::Delete {
        (value, String::new())
    } else {
        (String::new(), value)
    }
}

/// The audit event of a rule created or deleted: its weekday, hours, dates
/// and studio (no personal information).
fn rule_event(principal: &Principal, action: Action, row: &RuleRow) -> AuditEventBuilder {
    let until = row
        .effective_until
        .map(|until| until.to_string())
        .unwrap_or_default();
    let studio = row.studio_id.map(|id| id.to_string()).unwrap_or_default();
    let mut event = AuditEventBuilder::new(SERVICE, action, RULES, row.id)
        .actor_user(principal.user_id)
        .tenant(row.trainer_id);
    for (field, value) in [
        ("day_of_week", row.day_of_week.to_string()),
        ("start_minute", row.start_minute.to_string()),
        ("end_minute", row.end_minute.to_string()),
        ("effective_from", row.effective_from.to_string()),
        ("effective_until", until),
        ("studio_id", studio),
    ] {
        let (old, new) = change_of(action, value);
        event = event.change(field, &old, &new);
    }
    event
}

/// The audit event of an exception created or deleted: its kind, dates and
/// hours (no reason is kept, so none is recorded).
fn exception_event(principal: &Principal, action: Action, row: &ExceptionRow) -> AuditEventBuilder {
    let minute = |value: Option<i16>| value.map(|minute| minute.to_string()).unwrap_or_default();
    let mut event = AuditEventBuilder::new(SERVICE, action, EXCEPTIONS, row.id)
        .actor_user(principal.user_id)
        .tenant(row.trainer_id);
    for (field, value) in [
        ("kind", row.kind.clone()),
        ("start_date", row.start_date.to_string()),
        ("end_date", row.end_date.to_string()),
        ("start_minute", minute(row.start_minute)),
        ("end_minute", minute(row.end_minute)),
    ] {
        let (old, new) = change_of(action, value);
        event = event.change(field, &old, &new);
    }
    event
}

fn as_i16(value: u16) -> i16 {
    // Minutes of a day (at most 1440) always fit.
    i16::try_from(value).unwrap_or(i16::MAX)
}

impl Calendar {
    /// Creates a weekly rule for a trainer the caller acts for, unless it
    /// overlaps one of theirs as real instants (each rule read in its
    /// place's zone: see [`overlap`]). A rule at a studio needs the studio
    /// live in tenancy now (no contract: the booking checks that). Checked
    /// here under the trainer's rule lock, so concurrent creates are
    /// serialized and the check names the rule; rules of one place are also
    /// kept apart by the database's exclusion constraint, which holds
    /// whatever the code does.
    pub(crate) async fn create_rule(
        &self,
        principal: &Principal,
        bearer: &str,
        new: NewRule,
        request: Idempotency,
    ) -> Result<RuleRow, SchedulingError> {
        let trainer_id = trainer_of(principal, new.trainer_id)?;
        // A retry of a committed create answers its rule before tenancy is
        // asked (a studio deleted since does not turn it into an error).
        if let Some(existing) = self.committed_create(principal, &request).await? {
            let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
            let row = repo::rule(&mut tx, existing, false)
                .await?
                .ok_or(SchedulingError::AvailabilityRuleNotFound)?;
            commit(tx).await?;
            return Ok(row);
        }
        // One create of the trainer's at a time, 32 waiting, and few of
        // all trainers: each holds a connection and the trainer's rule lock
        // while it compares (see `rule_creates`).
        let line = self.rule_lines.of(trainer_id);
        let _mine = line.enter().await?;
        let _turn = self.rule_creates.enter().await?;
        // Asked before the transaction: no transaction waits on the network.
        let (trainer_zone, studio_zone) =
            tokio::join!(self.zones.zone(bearer, trainer_id), async {
                match new.studio_id {
                    Some(studio_id) => self
                        .zones
                        .live_studio_zone(bearer, studio_id)
                        .await
                        .map(Some),
                    None => Ok(None),
                }
            });
        let trainer_zone = trainer_zone?;
        let new_zone = studio_zone?.unwrap_or(trainer_zone);
        // The zones of the studios of the trainer's other rules, learnt as
        // the rules are read; `None`: a studio tenancy no longer knows,
        // whose rules give no hours anywhere and so overlap nothing.
        let mut studio_zones: HashMap<Uuid, Option<chrono_tz::Tz>> = HashMap::new();
        if let Some(studio_id) = new.studio_id {
            studio_zones.insert(studio_id, Some(new_zone));
        }
        let id = Uuid::now_v7();
        let row = RuleRow {
            id,
            trainer_id,
            studio_id: new.studio_id,
            day_of_week: i16::from(u8::try_from(new.rule.day.number_from_monday()).unwrap_or(1)),
            start_minute: as_i16(new.rule.window.start_minute),
            end_minute: as_i16(new.rule.window.end_minute),
            effective_from: new.rule.effective_from,
            effective_until: new.rule.effective_until,
            version: 1,
            created_at: Utc::now(),
        };
        let zoned = ZonedRule {
            rule: new.rule,
            zone: new_zone,
        };
        // Rules on dates this one's hours can reach from another zone.
        let reach = Duration::days(overlap::ZONE_REACH_DAYS);
        let first = row.effective_from - reach;
        let last = row.effective_until.map(|until| until + reach);
        // A rule at a studio not yet seen (created meanwhile by another
        // request) sends us out of the transaction to ask its zone, then
        // back; three rounds are far beyond what a trainer's edits need.
        for _ in 0..STUDIO_ROUNDS {
            let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
            if let Some((key, hash)) = &request.0
                && let Claim::Replay(existing) = idempotency::claim(&mut tx, key, hash, id).await?
            {
                let row = repo::rule(&mut tx, existing, false)
                    .await?
                    .ok_or(SchedulingError::AvailabilityRuleNotFound)?;
                commit(tx).await?;
                return Ok(row);
            }
            repo::lock_trainer_rules(&mut tx, trainer_id).await?;
            let others = repo::rules_meeting(
                &mut tx,
                trainer_id,
                (first, last),
                i64::try_from(MAX_RULES_MET).unwrap_or(i64::MAX),
            )
            .await?;
            if others.len() >= MAX_RULES_MET {
                return Err(SchedulingError::AvailabilityRuleLimit(MAX_RULES_MET));
            }
            let unseen: Vec<Uuid> = others
                .iter()
                .filter_map(|other| other.studio_id)
                .filter(|studio_id| !studio_zones.contains_key(studio_id))
                .collect();
            if !unseen.is_empty() {
                drop(tx);
                self.learn_studio_zones(bearer, unseen, &mut studio_zones)
                    .await?;
                continue;
            }
            let mut compared = Vec::with_capacity(others.len());
            for other in &others {
                let other_zone = match other.studio_id {
                    Some(studio_id) => studio_zones.get(&studio_id).copied().flatten(),
                    None => Some(trainer_zone),
                };
                let Some(other_zone) = other_zone else {
                    continue;
                };
                compared.push((
                    other.id,
                    ZonedRule {
                        rule: rule_of(other)?,
                        zone: other_zone,
                    },
                ));
            }
            // Up to a hundred walks of thousands of weeks: off the async
            // workers, so that other requests are served meanwhile.
            let conflict = tokio::task::spawn_blocking(move || {
                compared
                    .iter()
                    .find(|(_, other)| overlap::overlap(&zoned, other))
                    .map(|(id, _)| *id)
            })
            .await
            .map_err(|_| SchedulingError::Corrupt("the overlap check stopped"))?;
            if let Some(other) = conflict {
                return Err(SchedulingError::AvailabilityRuleOverlap(Some(other)));
            }
            match repo::insert_rule(&mut tx, &row).await {
                Ok(()) => {}
                Err(RuleInsertError::Overlap) => {
                    // The constraint saw what the check above did not (it
                    // cannot, under the lock, but it is the last word):
                    // name the rule from a fresh transaction (this one is
                    // aborted).
                    drop(tx);
                    let mut look = fitflow_db::tx(&self.pool, &user(principal)).await?;
                    let conflict = repo::overlapping_rule(&mut look, &row).await?;
                    commit(look).await?;
                    return Err(SchedulingError::AvailabilityRuleOverlap(conflict));
                }
                Err(RuleInsertError::Database(error)) => return Err(error.into()),
            }
            fitflow_outbox::record(
                &mut tx,
                &rule_event(principal, Action::Create, &row).build(),
            )
            .await?;
            let stored = repo::rule(&mut tx, id, false)
                .await?
                .ok_or(SchedulingError::AvailabilityRuleNotFound)?;
            commit(tx).await?;
            return Ok(stored);
        }
        // Rules at new studios kept appearing (another instance's creates
        // for this trainer): busy, not tenancy's fault — a retry meets
        // them all as seen (issue 11: 26 of 30 racing creates answered
        // DEPENDENCY_UNAVAILABLE with tenancy up).
        Err(SchedulingError::Busy(fitflow_api::gate::Busy {
            retry_after: super::BUSY_RETRY_AFTER,
        }))
    }

    /// Adds the zones of `studio_ids` (cached; `None` for a studio tenancy
    /// does not know) to `zones`, asking them at once.
    async fn learn_studio_zones(
        &self,
        bearer: &str,
        studio_ids: Vec<Uuid>,
        zones: &mut HashMap<Uuid, Option<chrono_tz::Tz>>,
    ) -> Result<(), SchedulingError> {
        let mut studio_ids = studio_ids;
        studio_ids.sort_unstable();
        studio_ids.dedup();
        let answers = futures::future::join_all(
            studio_ids
                .iter()
                .map(|studio_id| self.zones.studio_zone(bearer, *studio_id)),
        )
        .await;
        for (studio_id, answer) in studio_ids.into_iter().zip(answers) {
            let zone = match answer {
                Ok(zone) => Some(zone),
                Err(SchedulingError::StudioNotFound) => None,
                Err(error) => return Err(error),
            };
            zones.insert(studio_id, zone);
        }
        Ok(())
    }

    /// One page of a trainer's rules.
    pub(crate) async fn rules(
        &self,
        principal: &Principal,
        trainer: Option<Uuid>,
        after: Option<(DateTime<Utc>, Uuid)>,
        page_size: u32,
    ) -> Result<(Vec<RuleRow>, Option<(DateTime<Utc>, Uuid)>), SchedulingError> {
        let trainer_id = trainer_of(principal, trainer)?;
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let mut rows = repo::rules(&mut tx, trainer_id, after, i64::from(page_size) + 1).await?;
        commit(tx).await?;
        let next =
            fitflow_api::page::split_page(&mut rows, page_size, |row| (row.created_at, row.id));
        Ok((rows, next))
    }

    /// Deletes a rule of a trainer the caller acts for.
    pub(crate) async fn delete_rule(
        &self,
        principal: &Principal,
        id: Uuid,
        etag: &str,
    ) -> Result<(), SchedulingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = repo::rule(&mut tx, id, true)
            .await?
            .filter(|row| principal.acts_for(row.trainer_id))
            .ok_or(SchedulingError::AvailabilityRuleNotFound)?;
        Etag::of_version(row.id, row.version).check(etag)?;
        repo::delete_rule(&mut tx, id).await?;
        fitflow_outbox::record(
            &mut tx,
            &rule_event(principal, Action::Delete, &row).build(),
        )
        .await?;
        commit(tx).await
    }

    /// Ends a rule on `until` (it only shortens: on or after its first
    /// date, never after its current end).
    pub(crate) async fn end_rule(
        &self,
        principal: &Principal,
        id: Uuid,
        until: chrono::NaiveDate,
        etag: &str,
    ) -> Result<RuleRow, SchedulingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = repo::rule(&mut tx, id, true)
            .await?
            .filter(|row| principal.acts_for(row.trainer_id))
            .ok_or(SchedulingError::AvailabilityRuleNotFound)?;
        Etag::of_version(row.id, row.version).check(etag)?;
        if let Some(problem) =
            crate::domain::rule_end_problem(row.effective_from, row.effective_until, until)
        {
            return Err(SchedulingError::Rejected(
                fitflow_error::ApiError::invalid_argument(vec![fitflow_error::FieldViolation {
                    field: "effective_until".to_owned(),
                    description: problem,
                }]),
            ));
        }
        repo::end_rule(&mut tx, id, until).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, RULES, row.id)
            .actor_user(principal.user_id)
            .tenant(row.trainer_id)
            .change(
                "effective_until",
                &row.effective_until
                    .map(|until| until.to_string())
                    .unwrap_or_default(),
                &until.to_string(),
            )
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let stored = repo::rule(&mut tx, id, false)
            .await?
            .ok_or(SchedulingError::AvailabilityRuleNotFound)?;
        commit(tx).await?;
        Ok(stored)
    }

    /// Creates an exception for a trainer the caller acts for.
    pub(crate) async fn create_exception(
        &self,
        principal: &Principal,
        new: NewException,
        request: Idempotency,
    ) -> Result<ExceptionRow, SchedulingError> {
        let trainer_id = trainer_of(principal, new.trainer_id)?;
        let id = Uuid::now_v7();
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) = idempotency::claim(&mut tx, key, hash, id).await?
        {
            let row = repo::exception(&mut tx, existing, false)
                .await?
                .ok_or(SchedulingError::AvailabilityExceptionNotFound)?;
            commit(tx).await?;
            return Ok(row);
        }
        let exception = new.exception;
        let row = ExceptionRow {
            id,
            trainer_id,
            kind: kind_str(exception.kind).to_owned(),
            start_date: exception.start_date,
            end_date: exception.end_date,
            start_minute: exception.window.map(|window| as_i16(window.start_minute)),
            end_minute: exception.window.map(|window| as_i16(window.end_minute)),
            version: 1,
            created_at: Utc::now(),
        };
        repo::insert_exception(&mut tx, &row).await?;
        fitflow_outbox::record(
            &mut tx,
            &exception_event(principal, Action::Create, &row).build(),
        )
        .await?;
        let stored = repo::exception(&mut tx, id, false)
            .await?
            .ok_or(SchedulingError::AvailabilityExceptionNotFound)?;
        commit(tx).await?;
        Ok(stored)
    }

    /// One page of a trainer's exceptions.
    pub(crate) async fn exceptions(
        &self,
        principal: &Principal,
        trainer: Option<Uuid>,
        after: Option<(DateTime<Utc>, Uuid)>,
        page_size: u32,
    ) -> Result<(Vec<ExceptionRow>, Option<(DateTime<Utc>, Uuid)>), SchedulingError> {
        let trainer_id = trainer_of(principal, trainer)?;
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let mut rows =
            repo::exceptions(&mut tx, trainer_id, after, i64::from(page_size) + 1).await?;
        commit(tx).await?;
        let next =
            fitflow_api::page::split_page(&mut rows, page_size, |row| (row.created_at, row.id));
        Ok((rows, next))
    }

    /// Deletes an exception of a trainer the caller acts for.
    pub(crate) async fn delete_exception(
        &self,
        principal: &Principal,
        id: Uuid,
        etag: &str,
    ) -> Result<(), SchedulingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = repo::exception(&mut tx, id, true)
            .await?
            .filter(|row| principal.acts_for(row.trainer_id))
            .ok_or(SchedulingError::AvailabilityExceptionNotFound)?;
        Etag::of_version(row.id, row.version).check(etag)?;
        repo::delete_exception(&mut tx, id).await?;
        fitflow_outbox::record(
            &mut tx,
            &exception_event(principal, Action::Delete, &row).build(),
        )
        .await?;
        commit(tx).await
    }

    /// The open start times of a class type with a trainer the caller acts
    /// for, and the trainer's zone (of rules at no studio and of
    /// exceptions); each slot names its place and zone.
    pub(crate) async fn free_slots(
        &self,
        principal: &Principal,
        bearer: &str,
        request: SlotRequest,
    ) -> Result<(chrono_tz::Tz, Vec<Slot>), SchedulingError> {
        let trainer_id = trainer_of(principal, request.trainer_id)?;
        let _turn = self.slot_searches.enter().await?;
        // Asked before the transaction: no transaction waits on the network.
        let zone = self.zones.zone(bearer, trainer_id).await?;
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let class = repo::class_type(&mut tx, request.class_type_id)
            .await?
            .filter(|class| class.trainer_id == trainer_id)
            .ok_or(SchedulingError::ClassTypeNotFound)?;
        if class.status != "active" {
            return Err(SchedulingError::ClassTypeInactive);
        }
        // Nothing before now is open.
        let from = request.from.max(Utc::now());
        if from >= request.to {
            commit(tx).await?;
            return Ok((zone, Vec::new()));
        }
        // Local dates run ahead of or behind UTC: a day either side in the
        // trainer's zone, and one more for a studio's zone.
        let first = from.with_timezone(&zone).date_naive() - Duration::days(2);
        let last = request.to.with_timezone(&zone).date_naive() + Duration::days(2);
        let rule_rows = repo::rules_between(&mut tx, trainer_id, first, last).await?;
        let exception_rows = repo::exceptions_between(&mut tx, trainer_id, first, last).await?;
        let trainer_settings = Self::settings_in_tx(&mut tx, trainer_id, false).await?;
        let buffer_minutes = slots::buffer_minutes(
            request.buffer_minutes,
            trainer_settings.default_buffer_minutes,
        );
        let busy = repo::busy_between(
            &mut tx,
            trainer_id,
            from - Duration::days(1),
            request.to + Duration::days(1),
        )
        .await?;
        commit(tx).await?;
        // The zones of the rules' studios (cached); a rule at a studio
        // tenancy no longer knows gives no hours.
        let mut studio_zones = HashMap::new();
        self.learn_studio_zones(
            bearer,
            rule_rows.iter().filter_map(|row| row.studio_id).collect(),
            &mut studio_zones,
        )
        .await?;
        let mut rules = Vec::with_capacity(rule_rows.len());
        for row in &rule_rows {
            let rule_zone = match row.studio_id {
                Some(studio_id) => studio_zones.get(&studio_id).copied().flatten(),
                None => Some(zone),
            };
            if let Some(rule_zone) = rule_zone {
                rules.push(PlacedRule {
                    rule: rule_of(row)?,
                    studio_id: row.studio_id,
                    zone: rule_zone,
                });
            }
        }
        let exceptions = exception_rows
            .iter()
            .map(exception_of)
            .collect::<Result<Vec<_>, _>>()?;
        let query = SlotQuery {
            zone,
            from,
            to: request.to,
            duration: Duration::minutes(i64::from(class.duration_minutes)),
            buffer: Duration::minutes(i64::from(buffer_minutes)),
            rules: &rules,
            exceptions: &exceptions,
            busy: &busy,
        };
        Ok((zone, slots::free_slots(&query)))
    }
}
