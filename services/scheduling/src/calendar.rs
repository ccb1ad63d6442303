//! Scheduling's use cases: each opens one transaction as the caller, checks
//! that the caller acts for the trainer (row-level security is the second
//! wall), writes its audit event in the same transaction and commits only
//! when all of it worked.

mod availability;
mod billing;
mod classes;
mod export;
mod outcomes;
mod roster;
mod series;
mod settings;

pub(crate) use availability::{NewException, NewRule, SlotRequest};
pub(crate) use billing::{
    BILLING_PEER, BillableCursor, BillingPeriod, PaymentChange, StudioSessionQuery,
};

pub(crate) use outcomes::{Attended, PolicyHolder};
pub(crate) use roster::{RosterQuery, RosterSession};
pub(crate) use series::AppointmentChange;
pub(crate) use settings::{Settings, SettingsChange};

use chrono::{DateTime, Datelike as _, Utc};
use fitflow_api::etag::Etag;
use fitflow_api::gate::Gate;
use fitflow_api::idempotency::{self, Claim, IdempotencyKey, RequestHash};
use fitflow_api::page::PageTokens;
use fitflow_auth::{Caller, Principal};
use fitflow_db::SystemPool;
use fitflow_error::{ApiError, FieldViolation};
use fitflow_outbox::{Action, AuditEventBuilder};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::clients::ClientAccess;
use crate::domain::{self, Category, Location, Status};
use crate::notify;
use crate::repo::{self, AppointmentRow, ClassTypeRow, HoldError, SeriesRow};
use crate::tenancy::TrainerZones;
use crate::{SERVICE, SchedulingError};

/// A create's idempotency record (AIP-155).
#[derive(Debug, Default)]
pub(crate) struct Idempotency(pub Option<(IdempotencyKey, RequestHash)>);

/// A class type to create.
#[derive(Debug, Clone)]
pub(crate) struct NewClassType {
    pub trainer_id: Option<Uuid>,
    pub name: String,
    pub category: Category,
    pub duration_minutes: i32,
    pub max_participants: i32,
    pub default_rate: Option<Decimal>,
    pub description: String,
    pub color: String,
    pub active: bool,
}

/// A booking to make.
#[derive(Debug, Clone)]
pub(crate) struct NewBooking {
    pub trainer_id: Option<Uuid>,
    pub class_type_id: Uuid,
    pub start_time: DateTime<Utc>,
    pub location: Location,
    pub location_details: String,
    pub client_id: Option<Uuid>,
    pub client_price: Option<Decimal>,
    /// The studio it is at, if any.
    pub studio_id: Option<Uuid>,
}

/// An appointment as returned.
#[derive(Debug, Clone)]
pub(crate) struct AppointmentView {
    pub row: AppointmentRow,
    pub etag: Etag,
}

impl From<AppointmentRow> for AppointmentView {
    fn from(row: AppointmentRow) -> Self {
        let etag = Etag::of_version(row.id, row.version);
        Self { row, etag }
    }
}

/// The service's state: its pool, the clients and tenancy services, page
/// tokens.
pub struct Calendar {
    pool: PgPool,
    /// The system role's pool: exports and questions from peers that
    /// checked the user's access themselves, and payment updates.
    system: SystemPool,
    clients: ClientAccess,
    zones: TrainerZones,
    page_tokens: PageTokens,
    /// Turns for calendar exports, each of which builds its whole file (up
    /// to 5,000 events) in memory: a flood of them waits here, holding
    /// neither memory nor a database connection, and beyond the queue is
    /// refused (SCHEDULING_BUSY).
    exports: Gate,
    /// Turns for free-slot searches (three reads over up to 33 days, then
    /// the grid of a month): a flood of them leaves the rest of the pool to
    /// everyone else's requests.
    slot_searches: Gate,
    /// Turns for series bookings, each of which holds a connection for up
    /// to 100 appointments (rows, held time, audit events) in one
    /// transaction: 200 at once on a pool of 8 took every connection, and
    /// 182 of them and other trainers' reads timed out waiting for one.
    series_bookings: Gate,
    /// Turns for availability rule creates, each of which holds a
    /// connection (and its trainer's rule lock) while it compares the new
    /// rule with up to 100 others: 100 at once by one trainer, each holding
    /// a connection while waiting for the lock, left 57 of them and other
    /// requests timing out waiting for the pool (issue 11).
    rule_creates: Gate,
    /// Each trainer's line of rule creates, taken before [`Self::rule_creates`]:
    /// one at a time per trainer (rivals wait here, holding no connection,
    /// and cannot commit rules at studios a running create has not seen),
    /// so one trainer's flood is refused on its own line and leaves the
    /// shared turns to others.
    rule_lines: TrainerLines,
}

/// A line per trainer (one at a time, 32 more waiting), made on demand
/// and dropped when unused once many are kept.
#[derive(Debug)]
struct TrainerLines {
    lines: std::sync::Mutex<std::collections::HashMap<Uuid, std::sync::Arc<Gate>>>,
}

/// Lines kept before unused ones are dropped.
const KEPT_LINES: usize = 1024;

impl TrainerLines {
    fn new() -> Self {
        Self {
            lines: std::sync::Mutex::default(),
        }
    }

    /// `trainer_id`'s line.
    fn of(&self, trainer_id: Uuid) -> std::sync::Arc<Gate> {
        let mut lines = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if lines.len() >= KEPT_LINES {
            // A line in use is held by its turns' requests too.
            lines.retain(|_, line| std::sync::Arc::strong_count(line) > 1);
        }
        std::sync::Arc::clone(lines.entry(trainer_id).or_insert_with(|| {
            std::sync::Arc::new(Gate::new(
                RULE_CREATES_PER_TRAINER.0,
                RULE_CREATES_PER_TRAINER.1,
                BUSY_RETRY_AFTER,
            ))
        }))
    }
}

/// Calendar exports built at once per process, and how many more wait.
const CONCURRENT_EXPORTS: (usize, usize) = (4, 32);
/// Free-slot searches run at once per process, and how many more wait.
const CONCURRENT_SLOT_SEARCHES: (usize, usize) = (4, 64);
/// Series bookings run at once per process, and how many more wait.
const CONCURRENT_SERIES_BOOKINGS: (usize, usize) = (4, 32);
/// Availability rule creates run at once per process, and how many more wait.
const CONCURRENT_RULE_CREATES: (usize, usize) = (4, 64);
/// One trainer's rule creates run at once per process, and how many more wait.
const RULE_CREATES_PER_TRAINER: (usize, usize) = (1, 32);
/// When a refused costly read or series booking may try again.
const BUSY_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

fn user(principal: &Principal) -> Caller {
    Caller::User(principal.clone())
}

async fn commit(tx: fitflow_db::Tx) -> Result<(), SchedulingError> {
    tx.commit().await.map_err(fitflow_db::DbError::from)?;
    Ok(())
}

/// A session that would end after the last instant a Timestamp names.
fn past_the_calendar(field: &str) -> SchedulingError {
    SchedulingError::Rejected(ApiError::invalid_argument(vec![FieldViolation {
        field: field.to_owned(),
        description: "the session must end by 9999-12-31T23:59:59Z".to_owned(),
    }]))
}

/// The trainer a request names (the caller when none), if the caller acts for them.
fn trainer_of(principal: &Principal, named: Option<Uuid>) -> Result<Uuid, SchedulingError> {
    let trainer = named.unwrap_or(principal.user_id);
    if principal.acts_for(trainer) {
        Ok(trainer)
    } else {
        Err(SchedulingError::TrainerNotFound)
    }
}

impl Calendar {
    /// The use cases over `pool`, asking `clients` before booking a client
    /// and `zones` for a trainer's time zone. Page tokens are signed with a
    /// key drawn once per process.
    pub fn new(
        pool: PgPool,
        system: SystemPool,
        clients: ClientAccess,
        zones: TrainerZones,
    ) -> Self {
        Self {
            pool,
            system,
            clients,
            zones,
            page_tokens: PageTokens::with_random_key(),
            exports: Gate::new(CONCURRENT_EXPORTS.0, CONCURRENT_EXPORTS.1, BUSY_RETRY_AFTER),
            slot_searches: Gate::new(
                CONCURRENT_SLOT_SEARCHES.0,
                CONCURRENT_SLOT_SEARCHES.1,
                BUSY_RETRY_AFTER,
            ),
            series_bookings: Gate::new(
                CONCURRENT_SERIES_BOOKINGS.0,
                CONCURRENT_SERIES_BOOKINGS.1,
                BUSY_RETRY_AFTER,
            ),
            rule_creates: Gate::new(
                CONCURRENT_RULE_CREATES.0,
                CONCURRENT_RULE_CREATES.1,
                BUSY_RETRY_AFTER,
            ),
            rule_lines: TrainerLines::new(),
        }
    }

    /// The page-token issuer, for the gRPC layer's List methods.
    pub(crate) fn page_tokens(&self) -> &PageTokens {
        &self.page_tokens
    }

    /// This year's partition and the next two exist (the migration made
    /// them at install; a long-running install needs the later ones).
    pub async fn ensure_partitions(&self) -> Result<(), SchedulingError> {
        let year = Utc::now().year();
        for ahead in 0..3 {
            repo::ensure_year_partition(&self.pool, year + ahead).await?;
        }
        Ok(())
    }

    /// Creates a class type for a trainer the caller acts for.
    pub(crate) async fn create_class_type(
        &self,
        principal: &Principal,
        new: NewClassType,
        request: Idempotency,
    ) -> Result<ClassTypeRow, SchedulingError> {
        let trainer_id = trainer_of(principal, new.trainer_id)?;
        let id = Uuid::now_v7();
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) = idempotency::claim(&mut tx, key, hash, id).await?
        {
            let row = repo::class_type(&mut tx, existing)
                .await?
                .ok_or(SchedulingError::ClassTypeNotFound)?;
            commit(tx).await?;
            return Ok(row);
        }
        let row = ClassTypeRow {
            id,
            trainer_id,
            name: new.name,
            category: new.category.as_str().to_owned(),
            duration_minutes: new.duration_minutes,
            max_participants: new.max_participants,
            default_rate: new.default_rate,
            description: new.description,
            color: new.color,
            status: if new.active { "active" } else { "inactive" }.to_owned(),
            created_at: Utc::now(),
        };
        repo::insert_class_type(&mut tx, &row).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Create, "class_types", id)
            .actor_user(principal.user_id)
            .tenant(trainer_id)
            .change("category", "", &row.category)
            .change("duration_minutes", "", &row.duration_minutes.to_string())
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let stored = repo::class_type(&mut tx, id)
            .await?
            .ok_or(SchedulingError::ClassTypeNotFound)?;
        commit(tx).await?;
        Ok(stored)
    }

    /// A class type of a trainer the caller acts for.
    pub(crate) async fn class_type(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<ClassTypeRow, SchedulingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = repo::class_type(&mut tx, id)
            .await?
            .filter(|row| principal.acts_for(row.trainer_id))
            .ok_or(SchedulingError::ClassTypeNotFound)?;
        commit(tx).await?;
        Ok(row)
    }

    /// One page of a trainer's class types; with `tsquery`, those whose
    /// name or description matches it.
    pub(crate) async fn class_types(
        &self,
        principal: &Principal,
        trainer: Option<Uuid>,
        tsquery: Option<&str>,
        after: Option<(DateTime<Utc>, Uuid)>,
        page_size: u32,
    ) -> Result<(Vec<ClassTypeRow>, Option<(DateTime<Utc>, Uuid)>), SchedulingError> {
        let trainer_id = trainer_of(principal, trainer)?;
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let mut rows = repo::class_types(
            &mut tx,
            trainer_id,
            tsquery,
            after,
            i64::from(page_size) + 1,
        )
        .await?;
        commit(tx).await?;
        let next =
            fitflow_api::page::split_page(&mut rows, page_size, |row| (row.created_at, row.id));
        Ok((rows, next))
    }

    /// Books an appointment; the database refuses a second booking of the
    /// trainer's time even when two arrive at once.
    pub(crate) async fn book(
        &self,
        principal: &Principal,
        bearer: &str,
        booking: NewBooking,
        request: Idempotency,
    ) -> Result<AppointmentView, SchedulingError> {
        let start = booking.start_time;
        let mut booked = self
            .book_all(principal, bearer, booking, &[start], None, request)
            .await?;
        booked.pop().ok_or(SchedulingError::AppointmentNotFound)
    }

    /// Books the occurrences of a weekly rule, all or nothing, read in
    /// `zone` (the trainer's from tenancy when `None`); returns the series
    /// id (the first create's, on a replay), the zone its rule is read in
    /// and the appointments.
    pub(crate) async fn book_series(
        &self,
        principal: &Principal,
        bearer: &str,
        booking: NewBooking,
        zone: Option<chrono_tz::Tz>,
        rule: &crate::series::RuleRequest,
        request: Idempotency,
    ) -> Result<(Uuid, chrono_tz::Tz, Vec<AppointmentView>), SchedulingError> {
        let trainer_id = trainer_of(principal, booking.trainer_id)?;
        // Held until the series is booked (or refused), replays included.
        let _turn = self.series_bookings.enter().await?;
        let zone = match zone {
            Some(zone) => zone,
            // Asked before the transaction: no transaction waits on the network.
            None => self.zones.zone(bearer, trainer_id).await?,
        };
        let rule = rule.in_zone(zone).map_err(|violations| {
            SchedulingError::Rejected(ApiError::invalid_argument(violations))
        })?;
        let starts = crate::series::expand(&rule);
        if starts.is_empty() {
            return Err(SchedulingError::Rejected(ApiError::invalid_argument(vec![
                FieldViolation {
                    field: "rule".to_owned(),
                    description: "yields no occurrence".to_owned(),
                },
            ])));
        }
        let series = SeriesRow {
            id: Uuid::now_v7(),
            trainer_id,
            time_zone: zone.name().to_owned(),
            wall_time: rule.first.time(),
            first_date: rule.first.date(),
            days: rule
                .days
                .iter()
                .map(|day| crate::series::scope::iso_day(*day))
                .collect(),
            interval_weeks: i16::try_from(rule.interval_weeks).unwrap_or(1),
            until_date: rule.until,
            occurrence_limit: rule.count.and_then(|count| i32::try_from(count).ok()),
        };
        let views = self
            .book_all(principal, bearer, booking, &starts, Some(&series), request)
            .await?;
        let booked_series = views
            .first()
            .and_then(|view| view.row.series_id)
            .unwrap_or(series.id);
        if booked_series == series.id {
            return Ok((series.id, zone, views));
        }
        // A replay: the zone the first create read its rule in.
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let stored = repo::series_rule(&mut tx, booked_series, false).await?;
        commit(tx).await?;
        let stored_zone = stored
            .and_then(|rule| rule.time_zone.parse().ok())
            .unwrap_or(zone);
        Ok((booked_series, stored_zone, views))
    }

    /// Books `starts` of one class type for one trainer, all or nothing.
    /// Returns the appointments in start order (on a replay: the first
    /// create's, found through the idempotency record's appointment).
    async fn book_all(
        &self,
        principal: &Principal,
        bearer: &str,
        booking: NewBooking,
        starts: &[DateTime<Utc>],
        series: Option<&SeriesRow>,
        request: Idempotency,
    ) -> Result<Vec<AppointmentView>, SchedulingError> {
        let series_id = series.map(|series| series.id);
        let trainer_id = trainer_of(principal, booking.trainer_id)?;
        // A retry of a booking that committed answers it before clients and
        // tenancy are asked: a contract ended or a client share revoked
        // since must not turn the first answer into an error. (A retry that
        // arrives while the first is still running finds nothing here and
        // meets it at the claim below, as before.)
        if let Some(existing) = self.committed_create(principal, &request).await? {
            let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
            let views = Self::replayed_booking(&mut tx, existing).await?;
            commit(tx).await?;
            return Ok(views);
        }
        // Asked before the transaction: no transaction waits on the network.
        // The trainer's zone, for clients' mail (of this booking, or of the
        // class's participants later), is asked meanwhile.
        let access = async {
            match booking.client_id {
                Some(client_id) => self.clients.require_write(bearer, client_id).await,
                None => Ok(()),
            }
        };
        let at_studio = async {
            match booking.studio_id {
                Some(studio_id) => {
                    self.check_studio(bearer, trainer_id, studio_id, starts)
                        .await
                }
                None => Ok(()),
            }
        };
        let (access, zone, at_studio) =
            tokio::join!(access, self.zone_for_mail(bearer, trainer_id), at_studio);
        access?;
        at_studio?;
        let ids: Vec<Uuid> = starts.iter().map(|_| Uuid::now_v7()).collect();
        let first_id = *ids.first().ok_or(SchedulingError::AppointmentNotFound)?;
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) =
                idempotency::claim(&mut tx, key, hash, first_id).await?
        {
            let views = Self::replayed_booking(&mut tx, existing).await?;
            commit(tx).await?;
            return Ok(views);
        }
        let class = repo::class_type(&mut tx, booking.class_type_id)
            .await?
            .filter(|class| class.trainer_id == trainer_id)
            .ok_or(SchedulingError::ClassTypeNotFound)?;
        if class.status != "active" {
            return Err(SchedulingError::ClassTypeInactive);
        }
        let category =
            Category::parse(&class.category).ok_or(SchedulingError::Corrupt("category"))?;
        match (category.needs_client(), booking.client_id) {
            (true, None) => return Err(SchedulingError::ClientRequired),
            (false, Some(_)) => {
                return Err(SchedulingError::Rejected(ApiError::invalid_argument(vec![
                    FieldViolation {
                        field: "appointment.client_id".to_owned(),
                        description: "must be empty for a group class".to_owned(),
                    },
                ])));
            }
            _ => {}
        }
        if let Some(series) = series {
            repo::insert_series(&mut tx, series).await?;
            let days: Vec<String> = series.days.iter().map(i16::to_string).collect();
            let event =
                AuditEventBuilder::new(SERVICE, Action::Create, "appointment_series", series.id)
                    .actor_user(principal.user_id)
                    .tenant(trainer_id)
                    .change("time_zone", "", &series.time_zone)
                    .change(
                        "wall_time",
                        "",
                        &series.wall_time.format("%H:%M").to_string(),
                    )
                    .change("days", "", &days.join(","))
                    .build();
            fitflow_outbox::record(&mut tx, &event).await?;
        }
        if let Some(zone) = zone {
            repo::remember_zone(&mut tx, trainer_id, zone.name()).await?;
        }
        let mut placed = Vec::with_capacity(starts.len());
        for (id, start) in ids.iter().zip(starts) {
            let end_time = domain::end_of(*start, class.duration_minutes);
            if !domain::ends_in_calendar(end_time) {
                return Err(past_the_calendar("appointment.start_time"));
            }
            if let Some(conflict) = repo::overlapping(&mut tx, trainer_id, *start, end_time).await?
            {
                return Err(SchedulingError::TrainerBusy(Some(conflict)));
            }
            let row = AppointmentRow {
                id: *id,
                start_time: *start,
                end_time,
                trainer_id,
                class_type_id: class.id,
                client_id: booking.client_id,
                status: Status::Scheduled.as_str().to_owned(),
                location_type: booking.location.as_str().to_owned(),
                location_details: booking.location_details.clone(),
                client_price: booking.client_price.or(class.default_rate),
                cancelled_at: None,
                cancel_reason: String::new(),
                cancelled_by: None,
                version: 1,
                created_at: Utc::now(),
                late_cancel: false,
                penalty_fee: None,
                fee_waived: false,
                client_attended: None,
                series_id,
                studio_id: booking.studio_id,
            };
            repo::insert_appointment(&mut tx, &row).await?;
            match repo::hold_time(&mut tx, *id, trainer_id, row.start_time, end_time).await {
                Ok(()) => {}
                Err(HoldError::Overlap) => {
                    // A concurrent booking took the time after our check:
                    // name it from a fresh transaction (this one is aborted).
                    drop(tx);
                    let mut look = fitflow_db::tx(&self.pool, &user(principal)).await?;
                    let conflict =
                        repo::overlapping(&mut look, trainer_id, row.start_time, end_time).await?;
                    commit(look).await?;
                    return Err(SchedulingError::TrainerBusy(conflict));
                }
                Err(HoldError::Database(error)) => return Err(error.into()),
            }
            let mut event = AuditEventBuilder::new(SERVICE, Action::Create, "appointments", *id)
                .actor_user(principal.user_id)
                .tenant(trainer_id)
                .change("start_time", "", &row.start_time.to_rfc3339())
                .change("class_type_id", "", &class.id.to_string());
            if let Some(client_id) = row.client_id {
                event = event.change("client_id", "", &client_id.to_string());
            }
            if let Some(series) = series_id {
                event = event.change("series_id", "", &series.to_string());
            }
            fitflow_outbox::record(&mut tx, &event.build()).await?;
            // The client hears of a series once, with its first session.
            if let Some(client_id) = row.client_id
                && placed.is_empty()
            {
                let intent = notify::Intent {
                    appointment_id: *id,
                    client_id,
                    trainer_id,
                    kind: notify::Kind::Booked,
                    occurrence: 0,
                };
                notify::record(&mut tx, notify::Recorder::User(principal.user_id), intent).await?;
            }
            placed.push(*id);
        }
        let mut stored = Vec::with_capacity(placed.len());
        for id in placed {
            let row = repo::appointment(&mut tx, id, false)
                .await?
                .ok_or(SchedulingError::AppointmentNotFound)?;
            stored.push(AppointmentView::from(row));
        }
        commit(tx).await?;
        Ok(stored)
    }

    /// The first create's resource when `request` repeats a create that
    /// committed (the same caller's request id and request), read before a
    /// create asks other services, so a retry answers its first result even
    /// when those would now refuse it.
    async fn committed_create(
        &self,
        principal: &Principal,
        request: &Idempotency,
    ) -> Result<Option<Uuid>, SchedulingError> {
        let Some((key, hash)) = &request.0 else {
            return Ok(None);
        };
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let existing = idempotency::committed(&mut tx, key, hash).await?;
        commit(tx).await?;
        Ok(existing)
    }

    /// The appointments of a replayed booking whose first appointment is
    /// `existing`: it, or its whole series.
    async fn replayed_booking(
        tx: &mut fitflow_db::Tx,
        existing: Uuid,
    ) -> Result<Vec<AppointmentView>, SchedulingError> {
        let row = repo::appointment(tx, existing, false)
            .await?
            .ok_or(SchedulingError::AppointmentNotFound)?;
        let rows = match row.series_id {
            Some(series) => repo::series(tx, series).await?,
            None => vec![row],
        };
        Ok(rows.into_iter().map(AppointmentView::from).collect())
    }

    /// Whether the trainer may be booked at the studio at each of `starts`:
    /// the studio is live (tenancy asked now, not the zone cache: a studio
    /// deleted a second ago is refused), and one of the trainer's contracts
    /// with it covers each start's local date in the studio's zone.
    async fn check_studio(
        &self,
        bearer: &str,
        trainer_id: Uuid,
        studio_id: Uuid,
        starts: &[DateTime<Utc>],
    ) -> Result<(), SchedulingError> {
        let (zone, spans) = tokio::join!(
            self.zones.live_studio_zone(bearer, studio_id),
            self.zones.contract_spans(bearer, trainer_id, studio_id)
        );
        let (zone, spans) = (zone?, spans?);
        match crate::tenancy::first_uncovered(&spans, zone, starts) {
            Some(day) => Err(SchedulingError::NoStudioContract(day)),
            None => Ok(()),
        }
    }

    /// An appointment of a trainer the caller acts for.
    pub(crate) async fn appointment(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<AppointmentView, SchedulingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = repo::appointment(&mut tx, id, false)
            .await?
            .filter(|row| principal.acts_for(row.trainer_id))
            .ok_or(SchedulingError::AppointmentNotFound)?;
        commit(tx).await?;
        Ok(row.into())
    }

    /// The trainer's zone from tenancy for a client's mail; `None` when
    /// tenancy cannot say now (the booking goes ahead: the relay then uses
    /// the zone last seen, else UTC).
    async fn zone_for_mail(&self, bearer: &str, trainer_id: Uuid) -> Option<chrono_tz::Tz> {
        match self.zones.zone(bearer, trainer_id).await {
            Ok(zone) => Some(zone),
            Err(error) => {
                tracing::warn!(%error, "the trainer's time zone is unknown for a client's mail");
                None
            }
        }
    }

    /// Records the cancellation notices of a cancelled appointment: to its
    /// client, or to each participant who still had a place (confirmed or
    /// waitlisted) in a cancelled class.
    async fn notify_cancelled(
        &self,
        tx: &mut fitflow_db::Tx,
        principal: &Principal,
        row: &AppointmentRow,
    ) -> Result<(), SchedulingError> {
        let places = match row.client_id {
            Some(client_id) => vec![(client_id, 0)],
            None => repo::live_participants(tx, row.id).await?,
        };
        for (client_id, occurrence) in places {
            let intent = notify::Intent {
                appointment_id: row.id,
                client_id,
                trainer_id: row.trainer_id,
                kind: notify::Kind::Cancelled,
                occurrence,
            };
            notify::record(tx, notify::Recorder::User(principal.user_id), intent).await?;
        }
        Ok(())
    }

    /// One page of a trainer's appointments starting in [from, to).
    pub(crate) async fn appointments(
        &self,
        principal: &Principal,
        trainer: Option<Uuid>,
        window: (DateTime<Utc>, DateTime<Utc>),
        show_cancelled: bool,
        after: Option<(DateTime<Utc>, Uuid)>,
        page_size: u32,
    ) -> Result<(Vec<AppointmentView>, Option<(DateTime<Utc>, Uuid)>), SchedulingError> {
        let trainer_id = trainer_of(principal, trainer)?;
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let mut rows = repo::appointments(
            &mut tx,
            trainer_id,
            window.0,
            window.1,
            show_cancelled,
            after,
            i64::from(page_size) + 1,
        )
        .await?;
        commit(tx).await?;
        let next =
            fitflow_api::page::split_page(&mut rows, page_size, |row| (row.start_time, row.id));
        Ok((rows.into_iter().map(AppointmentView::from).collect(), next))
    }

    /// Every appointment and class place of a client, for the clients
    /// service's export (which checked the user's access), with an access
    /// event.
    pub(crate) async fn export_client(
        &self,
        client_id: Uuid,
    ) -> Result<(Vec<AppointmentView>, Vec<repo::ParticipantRow>), SchedulingError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let appointments = repo::appointments_of_client(&mut tx, client_id).await?;
        let participations = repo::participations_of_client(&mut tx, client_id).await?;
        let event =
            AuditEventBuilder::new(SERVICE, Action::Export, "client_appointments", client_id)
                // The audit service admits only the sending service as a service
                // actor; only clients may call this RPC.
                .actor_service(SERVICE)
                .change("appointments", "", &appointments.len().to_string())
                .change("participations", "", &participations.len().to_string())
                .purpose(fitflow_outbox::Purpose::Operations)
                .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        commit(tx).await?;
        Ok((
            appointments
                .into_iter()
                .map(AppointmentView::from)
                .collect(),
            participations,
        ))
    }

    /// Whether `client_id` attended appointment `id` (for documentation and
    /// billing, which checked the user's access): the appointment and the
    /// answer; present only when the appointment was completed.
    pub(crate) async fn attendance(
        &self,
        id: Uuid,
        client_id: Uuid,
    ) -> Result<(AppointmentView, bool), SchedulingError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let (row, attended) = repo::attendance(&mut tx, id, client_id)
            .await?
            .ok_or(SchedulingError::AppointmentNotFound)?;
        commit(tx).await?;
        let held = Status::parse(&row.status) == Some(Status::Completed);
        Ok((row.into(), held && attended))
    }
}
