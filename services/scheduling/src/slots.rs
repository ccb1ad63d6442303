//! Free slots: the start times a trainer can still be booked at, computed
//! from their weekly availability rules and one-off exceptions in local wall
//! time, minus their booked appointments and a buffer around each. Pure: no
//! I/O, no clock; the use case reads the rows and the zones and passes them
//! in.
//!
//! A rule's hours are at a *place*: a studio (the rule names it; its wall
//! time is the studio's zone) or the trainer's own (no studio; the trainer's
//! zone). Exceptions carry no studio: they are the trainer's wall time.
//!
//! How a range is read, place by place:
//! 1. For each local date the range touches, every rule of the place in
//!    effect on that date and weekday gives a window `[start, end)` of the
//!    place's wall time.
//! 2. Time off removes the trainer's wall time (whole days, or part of one
//!    day) — at every place: at a place in another zone, the same instants
//!    read in that zone.
//! 3. Extra hours add the trainer's own wall time — after time off is
//!    removed, so extra hours inside a day off are still offered (they are
//!    the more specific word).
//! 4. Candidate starts are the wall times on a [`SLOT_STEP_MINUTES`] grid
//!    (:00, :15, :30, :45) of the place's zone inside a window. Each becomes
//!    an instant with the zone's rules: a wall time that does not exist (the
//!    hour skipped when clocks spring forward) is no slot; an ambiguous one
//!    (the hour repeated when clocks fall back) is its first occurrence
//!    only. So a 07:00–08:00 rule offers 07:00 local on both sides of each
//!    change.
//! 5. A slot is offered when the whole session (class duration) ends by the
//!    window's end, it starts inside the requested range, and it keeps
//!    `buffer` clear of every busy period on both sides. Windows of two
//!    places never join: a session is at one place.
//! 6. A slot names its place and is shown in the place's wall time; when two
//!    places offer one instant (extra hours over a studio's rule), it is
//!    offered once, the trainer's own place first.

use chrono::{
    DateTime, Datelike as _, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone as _,
    Timelike as _, Utc, Weekday,
};
use chrono_tz::Tz;
use uuid::Uuid;

/// Slots start on this grid of local wall time.
pub const SLOT_STEP_MINUTES: i64 = 15;
/// The longest range `ListFreeSlots` reads at once.
pub const MAX_RANGE_DAYS: i64 = 31;
/// The largest buffer between sessions a request may ask for.
pub const MAX_BUFFER_MINUTES: i32 = 240;
/// Minutes in a day: the end of a window that runs to midnight.
pub const DAY_MINUTES: u16 = 1440;

/// The buffer a search keeps around booked appointments: the request's when
/// it asks for one (above 0), else the trainer's default setting. A request
/// cannot ask for less than the default by sending 0, since proto3 cannot
/// tell 0 from unset; 0 is the trainer's own choice through their setting.
pub fn buffer_minutes(requested: i32, trainer_default: i32) -> i32 {
    if requested > 0 {
        requested
    } else {
        trainer_default
    }
}

/// The weekday of an ISO number, 1 Monday .. 7 Sunday.
pub fn iso_weekday(number: i16) -> Option<Weekday> {
    let index = usize::try_from(number.checked_sub(1)?).ok()?;
    [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ]
    .get(index)
    .copied()
}

/// A part of a local day: minutes after midnight, `[start, end)`, with
/// `start < end <= 1440` (no window runs overnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayWindow {
    /// First minute, 0..=1439.
    pub start_minute: u16,
    /// Minute after the last, 1..=1440.
    pub end_minute: u16,
}

impl DayWindow {
    /// The window `[start, end)` if it is one: forward, within the day.
    pub fn new(start_minute: u16, end_minute: u16) -> Option<Self> {
        (start_minute < end_minute && end_minute <= DAY_MINUTES).then_some(Self {
            start_minute,
            end_minute,
        })
    }

    /// The window's wall times on `date`; an end of 1440 is the next midnight.
    fn on(self, date: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
        let midnight = date.and_time(chrono::NaiveTime::MIN);
        (
            midnight + Duration::minutes(i64::from(self.start_minute)),
            midnight + Duration::minutes(i64::from(self.end_minute)),
        )
    }

    /// Whether the two share a minute.
    pub fn overlaps(self, other: DayWindow) -> bool {
        self.start_minute < other.end_minute && other.start_minute < self.end_minute
    }
}

/// A weekly availability rule in local wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The weekday it applies on.
    pub day: Weekday,
    /// The hours.
    pub window: DayWindow,
    /// First local date it applies on.
    pub effective_from: NaiveDate,
    /// Last local date it applies on (inclusive); none: no end.
    pub effective_until: Option<NaiveDate>,
}

impl Rule {
    /// Whether it gives hours on `date`.
    pub fn applies_on(&self, date: NaiveDate) -> bool {
        date.weekday() == self.day
            && date >= self.effective_from
            && self.effective_until.is_none_or(|until| date <= until)
    }

    /// Whether two rules of one trainer would give the same wall time on
    /// some date: same weekday, overlapping hours, overlapping dates. (The
    /// database's exclusion constraint says the same.)
    pub fn overlaps(&self, other: &Rule) -> bool {
        let dates_meet = self
            .effective_until
            .is_none_or(|until| other.effective_from <= until)
            && other
                .effective_until
                .is_none_or(|until| self.effective_from <= until);
        self.day == other.day && self.window.overlaps(other.window) && dates_meet
    }
}

/// A rule and the place its hours are at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacedRule {
    /// The weekly hours, in `zone`'s wall time.
    pub rule: Rule,
    /// The studio the hours are at; none: the trainer's own.
    pub studio_id: Option<Uuid>,
    /// The zone the hours are read in: the studio's. For the trainer's own
    /// (no studio), the query's `zone` is read and this is not.
    pub zone: Tz,
}

/// What an exception does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionKind {
    /// Removes availability.
    TimeOff,
    /// Adds availability.
    ExtraHours,
}

/// A one-off change to availability, in local dates and wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    /// Removes or adds.
    pub kind: ExceptionKind,
    /// First local date.
    pub start_date: NaiveDate,
    /// Last local date (inclusive); equals `start_date` when `window` is set.
    pub end_date: NaiveDate,
    /// Part of the one date; none: the whole days (time off only).
    pub window: Option<DayWindow>,
}

impl Exception {
    /// Its wall time: whole days from `start_date` to `end_date`, or the
    /// window on `start_date`.
    fn wall_time(&self) -> (NaiveDateTime, NaiveDateTime) {
        match self.window {
            Some(window) => window.on(self.start_date),
            None => (
                self.start_date.and_time(chrono::NaiveTime::MIN),
                (self.end_date + Duration::days(1)).and_time(chrono::NaiveTime::MIN),
            ),
        }
    }
}

/// Everything a free-slot computation reads.
#[derive(Debug, Clone, Copy)]
pub struct SlotQuery<'a> {
    /// The trainer's zone: of exceptions, and of rules at no studio.
    pub zone: Tz,
    /// Slots start at or after this...
    pub from: DateTime<Utc>,
    /// ...and before this.
    pub to: DateTime<Utc>,
    /// How long a session lasts (the class type's duration).
    pub duration: Duration,
    /// Time kept free before and after every busy period.
    pub buffer: Duration,
    /// The trainer's rules, each with its place and zone.
    pub rules: &'a [PlacedRule],
    /// The trainer's exceptions, in the trainer's zone.
    pub exceptions: &'a [Exception],
    /// The trainer's booked periods `[start, end)`.
    pub busy: &'a [(DateTime<Utc>, DateTime<Utc>)],
}

/// An open start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// When the session would start.
    pub start: DateTime<Utc>,
    /// When it would end.
    pub end: DateTime<Utc>,
    /// The start in `zone`'s wall time.
    pub local: NaiveDateTime,
    /// The studio the hours are at; none: the trainer's own.
    pub studio_id: Option<Uuid>,
    /// The zone of the place: the studio's, or the trainer's.
    pub zone: Tz,
}

/// The instant of a wall time that may start a slot: none in a
/// spring-forward gap, the first occurrence when ambiguous.
fn slot_instant(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

/// The first instant of hours that start at wall time `local`: its instant
/// (the first occurrence when ambiguous), or, when clocks skip it, the end
/// of the gap — the first instant whose wall time is at or after `local`.
pub(crate) fn window_start(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    if let Some(at) = slot_instant(zone, local) {
        return Some(at);
    }
    // In a gap (at most a day, in any zone's history; gaps end on a whole
    // minute): the first wall minute after it that exists is the wall time
    // the clock jumped to, and its instant is the jump.
    (1..=2 * i64::from(DAY_MINUTES))
        .map(|minutes| local + Duration::minutes(minutes))
        .find_map(|later| slot_instant(zone, later))
}

/// `intervals` without `[cut_start, cut_end)`.
fn subtract(
    intervals: Vec<(NaiveDateTime, NaiveDateTime)>,
    (cut_start, cut_end): (NaiveDateTime, NaiveDateTime),
) -> Vec<(NaiveDateTime, NaiveDateTime)> {
    let mut kept = Vec::with_capacity(intervals.len() + 1);
    for (start, end) in intervals {
        if cut_end <= start || end <= cut_start {
            kept.push((start, end));
            continue;
        }
        if start < cut_start {
            kept.push((start, cut_start));
        }
        if cut_end < end {
            kept.push((cut_end, end));
        }
    }
    kept
}

/// Sorted, with overlapping and touching intervals joined.
fn merge(
    mut intervals: Vec<(NaiveDateTime, NaiveDateTime)>,
) -> Vec<(NaiveDateTime, NaiveDateTime)> {
    intervals.sort();
    let mut merged: Vec<(NaiveDateTime, NaiveDateTime)> = Vec::with_capacity(intervals.len());
    for (start, end) in intervals {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// The first wall time on the slot grid at or after `at`.
fn grid_ceiling(at: NaiveDateTime) -> NaiveDateTime {
    let whole_minute = at.with_second(0).and_then(|at| at.with_nanosecond(0));
    let mut at = match whole_minute {
        Some(floor) if floor < at => floor + Duration::minutes(1),
        Some(floor) => floor,
        None => at,
    };
    let past_grid = i64::from(at.minute()) % SLOT_STEP_MINUTES;
    if past_grid != 0 {
        at += Duration::minutes(SLOT_STEP_MINUTES - past_grid);
    }
    at
}

/// Where hours are: at a studio, or the trainer's own (none).
type Place = Option<Uuid>;

/// The trainer's wall time `[start, end)` as the wall time of `zone`: the
/// same when the zones are one, else its instants read in `zone`.
fn in_zone(
    (start, end): (NaiveDateTime, NaiveDateTime),
    trainer_zone: Tz,
    zone: Tz,
) -> Option<(NaiveDateTime, NaiveDateTime)> {
    if trainer_zone == zone {
        return Some((start, end));
    }
    let start_at = window_start(trainer_zone, start)?;
    let end_at = crate::series::instant(trainer_zone, end)?;
    Some((
        start_at.with_timezone(&zone).naive_local(),
        end_at.with_timezone(&zone).naive_local(),
    ))
}

/// A place's available wall time around the query's range, in the place's
/// `zone`: its rules, less time off, plus (at the trainer's own place)
/// extra hours; sorted and merged.
fn available_wall_time(
    query: &SlotQuery<'_>,
    place: Place,
    zone: Tz,
) -> Vec<(NaiveDateTime, NaiveDateTime)> {
    // A day either side: the zone's offset moves local dates against UTC.
    let first_date = query.from.with_timezone(&zone).date_naive() - Duration::days(1);
    let last_date = query.to.with_timezone(&zone).date_naive() + Duration::days(1);
    let mut windows = Vec::new();
    let mut date = first_date;
    while date <= last_date {
        windows.extend(
            query
                .rules
                .iter()
                .filter(|placed| placed.studio_id == place && placed.rule.applies_on(date))
                .map(|placed| placed.rule.window.on(date)),
        );
        date += Duration::days(1);
    }
    for exception in query.exceptions {
        if exception.kind == ExceptionKind::TimeOff
            && let Some(cut) = in_zone(exception.wall_time(), query.zone, zone)
        {
            windows = subtract(windows, cut);
        }
    }
    if place.is_none() {
        windows.extend(
            query
                .exceptions
                .iter()
                .filter(|exception| {
                    exception.kind == ExceptionKind::ExtraHours
                        && exception.end_date >= first_date
                        && exception.start_date <= last_date
                })
                .map(Exception::wall_time),
        );
    }
    merge(windows)
}

/// Whether a session `[start, end)` keeps `buffer` clear of every busy period.
fn clear_of_busy(query: &SlotQuery<'_>, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    query.busy.iter().all(|(busy_start, busy_end)| {
        end + query.buffer <= *busy_start || *busy_end + query.buffer <= start
    })
}

/// The places of the query's rules with their zones: the trainer's own
/// first, then each studio in the order its first rule comes.
fn places(query: &SlotQuery<'_>) -> Vec<(Place, Tz)> {
    let mut places: Vec<(Place, Tz)> = vec![(None, query.zone)];
    for placed in query.rules {
        if placed.studio_id.is_some() && !places.iter().any(|(place, _)| *place == placed.studio_id)
        {
            places.push((placed.studio_id, placed.zone));
        }
    }
    places
}

/// The open start times of the query, in order.
pub fn free_slots(query: &SlotQuery<'_>) -> Vec<Slot> {
    let step = Duration::minutes(SLOT_STEP_MINUTES);
    let mut slots = Vec::new();
    for (place, zone) in places(query) {
        for (window_start, window_end) in available_wall_time(query, place, zone) {
            // The window's end as an instant: a wall time in a gap is read
            // with the offset before it (as series do), an ambiguous one at
            // its first occurrence.
            let Some(window_end_at) = crate::series::instant(zone, window_end) else {
                continue;
            };
            let mut local = grid_ceiling(window_start);
            while local < window_end {
                if let Some(start) = slot_instant(zone, local) {
                    let end = start + query.duration;
                    if start >= query.from
                        && start < query.to
                        && end <= window_end_at
                        && crate::domain::ends_in_calendar(end)
                        && clear_of_busy(query, start, end)
                    {
                        slots.push(Slot {
                            start,
                            end,
                            local,
                            studio_id: place,
                            zone,
                        });
                    }
                }
                local += step;
            }
        }
    }
    // Stable: of two places offering one instant, the first place's stays.
    slots.sort_by_key(|slot| slot.start);
    slots.dedup_by_key(|slot| slot.start);
    slots
}

#[cfg(test)]
mod tests {
    use chrono::NaiveTime;

    use super::*;

    #[test]
    fn a_requested_buffer_wins_over_the_trainer_default_and_none_takes_the_default() {
        assert_eq!(buffer_minutes(15, 30), 15, "the request asks for less");
        assert_eq!(buffer_minutes(45, 30), 45, "the request asks for more");
        assert_eq!(
            buffer_minutes(0, 30),
            30,
            "no request: the trainer's default"
        );
        assert_eq!(buffer_minutes(0, 0), 0, "neither: no buffer");
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn minute(text: &str) -> u16 {
        let time = NaiveTime::parse_from_str(text, "%H:%M").unwrap();
        u16::try_from(time.num_seconds_from_midnight() / 60).unwrap()
    }

    fn hours(start: &str, end: &str) -> DayWindow {
        let end = if end == "24:00" {
            DAY_MINUTES
        } else {
            minute(end)
        };
        DayWindow::new(minute(start), end).unwrap()
    }

    fn weekly(day: Weekday, start: &str, end: &str) -> Rule {
        Rule {
            day,
            window: hours(start, end),
            effective_from: date("2020-01-01"),
            effective_until: None,
        }
    }

    /// Rules at the trainer's own place (their zone is the query's).
    fn own(rules: &[Rule]) -> Vec<PlacedRule> {
        rules
            .iter()
            .map(|rule| PlacedRule {
                rule: *rule,
                studio_id: None,
                zone: chrono_tz::UTC,
            })
            .collect()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
    }

    /// Slots of one or more local days in `zone`: from the first date's
    /// local midnight to the day after the last.
    #[allow(clippy::too_many_arguments, reason = "a table row's columns")]
    fn query<'a>(
        zone: Tz,
        first: &str,
        last: &str,
        duration: i64,
        buffer: i64,
        rules: &'a [PlacedRule],
        exceptions: &'a [Exception],
        busy: &'a [(DateTime<Utc>, DateTime<Utc>)],
    ) -> SlotQuery<'a> {
        let from = crate::series::instant(zone, date(first).and_time(NaiveTime::MIN)).unwrap();
        let to = crate::series::instant(
            zone,
            (date(last) + Duration::days(1)).and_time(NaiveTime::MIN),
        )
        .unwrap();
        SlotQuery {
            zone,
            from,
            to,
            duration: Duration::minutes(duration),
            buffer: Duration::minutes(buffer),
            rules,
            exceptions,
            busy,
        }
    }

    fn local(slots: &[Slot]) -> Vec<String> {
        slots
            .iter()
            .map(|slot| slot.local.format("%m-%d %H:%M").to_string())
            .collect()
    }

    fn utc_times(slots: &[Slot]) -> Vec<String> {
        slots
            .iter()
            .map(|slot| slot.start.format("%m-%d %H:%M").to_string())
            .collect()
    }

    #[test]
    fn no_slot_is_offered_that_would_end_after_the_last_instant_of_year_9999() {
        // 9999-12-31 is a Friday; an hour from 23:00 would end in year 10000,
        // which BookAppointment refuses.
        let rules = [weekly(Weekday::Fri, "22:00", "24:00")];
        let slots = free_slots(&query(
            chrono_tz::UTC,
            "9999-12-31",
            "9999-12-31",
            60,
            0,
            &own(&rules),
            &[],
            &[],
        ));
        assert_eq!(
            local(&slots),
            ["12-31 22:00", "12-31 22:15", "12-31 22:30", "12-31 22:45"]
        );
    }

    #[test]
    fn a_seven_oclock_rule_offers_seven_local_on_both_sides_of_each_change() {
        // Sundays 2027: clocks spring forward on 14 March and fall back on
        // 7 November in every Canadian zone that changes.
        let rules = [weekly(Weekday::Sun, "07:00", "08:00")];
        let table = [
            // (zone, UTC before spring, after spring, before fall, after fall)
            (
                chrono_tz::America::Toronto,
                "12:00",
                "11:00",
                "11:00",
                "12:00",
            ),
            (
                chrono_tz::America::Halifax,
                "11:00",
                "10:00",
                "10:00",
                "11:00",
            ),
            (
                chrono_tz::America::St_Johns,
                "10:30",
                "09:30",
                "09:30",
                "10:30",
            ),
            (
                chrono_tz::America::Regina,
                "13:00",
                "13:00",
                "13:00",
                "13:00",
            ),
        ];
        for (zone, spring_before, spring_after, fall_before, fall_after) in table {
            let spring = free_slots(&query(
                zone,
                "2027-03-07",
                "2027-03-14",
                60,
                0,
                &own(&rules),
                &[],
                &[],
            ));
            assert_eq!(local(&spring), ["03-07 07:00", "03-14 07:00"], "{zone}");
            assert_eq!(
                utc_times(&spring),
                [
                    format!("03-07 {spring_before}"),
                    format!("03-14 {spring_after}")
                ],
                "{zone}"
            );
            let fall = free_slots(&query(
                zone,
                "2027-10-31",
                "2027-11-07",
                60,
                0,
                &own(&rules),
                &[],
                &[],
            ));
            assert_eq!(local(&fall), ["10-31 07:00", "11-07 07:00"], "{zone}");
            assert_eq!(
                utc_times(&fall),
                [
                    format!("10-31 {fall_before}"),
                    format!("11-07 {fall_after}")
                ],
                "{zone}"
            );
        }
    }

    #[test]
    fn a_wall_time_skipped_by_spring_forward_is_no_slot() {
        // 14 March 2027, Toronto: 02:00 EST jumps to 03:00 EDT.
        let rules = [weekly(Weekday::Sun, "01:30", "03:30")];
        let slots = free_slots(&query(
            chrono_tz::America::Toronto,
            "2027-03-14",
            "2027-03-14",
            30,
            0,
            &own(&rules),
            &[],
            &[],
        ));
        assert_eq!(
            local(&slots),
            ["03-14 01:30", "03-14 01:45", "03-14 03:00"],
            "02:00 to 02:45 do not exist that night"
        );
        // 01:45 EST ends at 03:15 EDT, half an hour of real time later.
        assert_eq!(
            utc_times(&slots),
            ["03-14 06:30", "03-14 06:45", "03-14 07:00"]
        );
    }

    #[test]
    fn an_ambiguous_fall_back_wall_time_is_offered_once_at_its_first_occurrence() {
        // 7 November 2027, Toronto: 01:00-02:00 happens twice (EDT, then EST).
        let rules = [weekly(Weekday::Sun, "01:00", "02:00")];
        let slots = free_slots(&query(
            chrono_tz::America::Toronto,
            "2027-11-07",
            "2027-11-07",
            30,
            0,
            &own(&rules),
            &[],
            &[],
        ));
        assert_eq!(
            local(&slots),
            ["11-07 01:00", "11-07 01:15", "11-07 01:30", "11-07 01:45"]
        );
        assert_eq!(
            utc_times(&slots),
            ["11-07 05:00", "11-07 05:15", "11-07 05:30", "11-07 05:45"],
            "EDT (UTC-4), the first occurrence"
        );
    }

    #[test]
    fn buffers_appointments_time_off_and_extra_hours_shape_the_slots() {
        let utc_zone = chrono_tz::UTC;
        // Monday 4 January 2027.
        let rules = [weekly(Weekday::Mon, "09:00", "13:00")];
        let appointment = [(utc("2027-01-04 10:00"), utc("2027-01-04 11:00"))];
        let day_off = [Exception {
            kind: ExceptionKind::TimeOff,
            start_date: date("2027-01-04"),
            end_date: date("2027-01-04"),
            window: None,
        }];
        let morning_off = [Exception {
            kind: ExceptionKind::TimeOff,
            start_date: date("2027-01-04"),
            end_date: date("2027-01-04"),
            window: Some(hours("09:00", "11:30")),
        }];
        let extra_saturday = [Exception {
            kind: ExceptionKind::ExtraHours,
            start_date: date("2027-01-09"),
            end_date: date("2027-01-09"),
            window: Some(hours("10:00", "11:30")),
        }];
        let extra_inside_day_off = [
            day_off[0],
            Exception {
                kind: ExceptionKind::ExtraHours,
                start_date: date("2027-01-04"),
                end_date: date("2027-01-04"),
                window: Some(hours("12:00", "13:00")),
            },
        ];
        type Case<'a> = (
            &'a str,
            &'a [Exception],
            &'a [(DateTime<Utc>, DateTime<Utc>)],
            i64,
            &'a [&'a str],
        );
        let table: [Case<'_>; 8] = [
            (
                "an open morning, every quarter hour whose session ends by 13:00",
                &[],
                &[],
                0,
                &[
                    "09:00", "09:15", "09:30", "09:45", "10:00", "10:15", "10:30", "10:45",
                    "11:00", "11:15", "11:30", "11:45", "12:00",
                ],
            ),
            (
                "an appointment splits the window; sessions may touch it",
                &[],
                &appointment,
                0,
                &["09:00", "11:00", "11:15", "11:30", "11:45", "12:00"],
            ),
            (
                "a fifteen-minute buffer keeps a quarter hour clear on both sides",
                &[],
                &appointment,
                15,
                &["11:15", "11:30", "11:45", "12:00"],
            ),
            (
                "a buffer larger than what is left leaves nothing before the appointment",
                &[],
                &appointment,
                45,
                &["11:45", "12:00"],
            ),
            ("a day off removes the rule's hours", &day_off, &[], 0, &[]),
            (
                "part of a day off removes only those hours",
                &morning_off,
                &[],
                0,
                &["11:30", "11:45", "12:00"],
            ),
            (
                "extra hours on a day off are offered",
                &extra_inside_day_off,
                &[],
                0,
                &["12:00"],
            ),
            (
                "extra hours add a day without a rule",
                &extra_saturday,
                &[],
                0,
                &[
                    "09:00",
                    "09:15",
                    "09:30",
                    "09:45",
                    "10:00",
                    "10:15",
                    "10:30",
                    "10:45",
                    "11:00",
                    "11:15",
                    "11:30",
                    "11:45",
                    "12:00",
                    "Sat 10:00",
                    "Sat 10:15",
                    "Sat 10:30",
                ],
            ),
        ];
        for (rule_name, exceptions, busy, buffer, expected) in table {
            let slots = free_slots(&query(
                utc_zone,
                "2027-01-04",
                "2027-01-10",
                60,
                buffer,
                &own(&rules),
                exceptions,
                busy,
            ));
            let seen: Vec<String> = slots
                .iter()
                .map(|slot| {
                    let prefix = if slot.local.weekday() == Weekday::Sat {
                        "Sat "
                    } else {
                        ""
                    };
                    format!("{prefix}{}", slot.local.format("%H:%M"))
                })
                .collect();
            assert_eq!(seen, expected, "{rule_name}");
        }
    }

    #[test]
    fn a_slot_that_would_end_past_its_window_is_not_offered() {
        let rules = [weekly(Weekday::Mon, "09:00", "10:30")];
        let slots = free_slots(&query(
            chrono_tz::America::Toronto,
            "2027-01-04",
            "2027-01-04",
            60,
            0,
            &own(&rules),
            &[],
            &[],
        ));
        assert_eq!(local(&slots), ["01-04 09:00", "01-04 09:15", "01-04 09:30"]);
    }

    #[test]
    fn starts_follow_the_quarter_hour_grid_and_a_rule_may_run_to_midnight() {
        let rules = [weekly(Weekday::Mon, "22:10", "24:00")];
        let slots = free_slots(&query(
            chrono_tz::America::Regina,
            "2027-01-04",
            "2027-01-04",
            45,
            0,
            &own(&rules),
            &[],
            &[],
        ));
        assert_eq!(
            local(&slots),
            [
                "01-04 22:15",
                "01-04 22:30",
                "01-04 22:45",
                "01-04 23:00",
                "01-04 23:15"
            ]
        );
    }

    #[test]
    fn a_rule_gives_hours_only_within_its_effective_dates_and_the_range() {
        let rules = [Rule {
            effective_from: date("2027-01-11"),
            effective_until: Some(date("2027-01-18")),
            ..weekly(Weekday::Mon, "09:00", "10:00")
        }];
        let slots = free_slots(&query(
            chrono_tz::America::Halifax,
            "2027-01-01",
            "2027-01-31",
            60,
            0,
            &own(&rules),
            &[],
            &[],
        ));
        assert_eq!(local(&slots), ["01-11 09:00", "01-18 09:00"]);
        // A range starting mid-morning leaves out the earlier starts.
        let placed = own(&rules);
        let late = SlotQuery {
            from: utc("2027-01-11 13:05"),
            ..query(
                chrono_tz::America::Halifax,
                "2027-01-11",
                "2027-01-11",
                15,
                0,
                &placed,
                &[],
                &[],
            )
        };
        assert_eq!(
            local(&free_slots(&late)),
            ["01-11 09:15", "01-11 09:30", "01-11 09:45"]
        );
    }

    #[test]
    fn rules_overlap_on_one_weekday_with_shared_minutes_and_shared_dates() {
        let monday = weekly(Weekday::Mon, "09:00", "12:00");
        assert!(monday.overlaps(&weekly(Weekday::Mon, "11:00", "13:00")));
        assert!(
            !monday.overlaps(&weekly(Weekday::Mon, "12:00", "13:00")),
            "touching"
        );
        assert!(!monday.overlaps(&weekly(Weekday::Tue, "09:00", "12:00")));
        let ended = Rule {
            effective_until: Some(date("2026-12-31")),
            ..monday
        };
        let later = Rule {
            effective_from: date("2027-01-01"),
            ..monday
        };
        assert!(!ended.overlaps(&later));
        assert!(monday.overlaps(&later));
        assert_eq!(DayWindow::new(600, 600), None);
        assert_eq!(DayWindow::new(0, 1441), None);
    }

    #[test]
    fn a_rule_at_a_studio_is_read_in_its_zone_and_its_slots_name_it() {
        use chrono_tz::America::{Toronto, Vancouver};
        let studio = Uuid::from_u128(7);
        // Monday 5 July 2027: Vancouver PDT (UTC-7), Toronto EDT (UTC-4).
        let rules = [
            PlacedRule {
                rule: weekly(Weekday::Mon, "09:00", "10:30"),
                studio_id: Some(studio),
                zone: Vancouver,
            },
            // The trainer's own hours end when the studio's begin (12:00
            // Toronto = 09:00 Vancouver): two places never join.
            PlacedRule {
                rule: weekly(Weekday::Mon, "11:00", "12:00"),
                studio_id: None,
                zone: Toronto,
            },
        ];
        let slots = free_slots(&query(
            Toronto,
            "2027-07-05",
            "2027-07-05",
            60,
            0,
            &rules,
            &[],
            &[],
        ));
        let seen: Vec<String> = slots
            .iter()
            .map(|slot| {
                format!(
                    "{} {} {}",
                    slot.local.format("%H:%M"),
                    slot.zone,
                    slot.studio_id.is_some()
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                "11:00 America/Toronto false",
                "09:00 America/Vancouver true",
                "09:15 America/Vancouver true",
                "09:30 America/Vancouver true",
            ]
        );
        assert_eq!(
            utc_times(&slots),
            ["07-05 15:00", "07-05 16:00", "07-05 16:15", "07-05 16:30"]
        );
        // Time off is the trainer's wall time: 12:00-12:30 Toronto is
        // 09:00-09:30 at the studio.
        let lunch_off = [Exception {
            kind: ExceptionKind::TimeOff,
            start_date: date("2027-07-05"),
            end_date: date("2027-07-05"),
            window: Some(hours("12:00", "12:30")),
        }];
        let slots = free_slots(&query(
            Toronto,
            "2027-07-05",
            "2027-07-05",
            60,
            0,
            &rules,
            &lunch_off,
            &[],
        ));
        assert_eq!(local(&slots), ["07-05 11:00", "07-05 09:30"]);
    }

    #[test]
    fn a_window_starting_in_the_spring_forward_gap_starts_at_the_jump() {
        let zone = chrono_tz::America::Toronto;
        let in_gap = date("2027-03-14").and_hms_opt(2, 30, 0).unwrap();
        assert_eq!(
            window_start(zone, in_gap).map(|at| at.format("%H:%M").to_string()),
            Some("07:00".to_owned()),
            "03:00 EDT"
        );
        let ordinary = date("2027-03-15").and_hms_opt(2, 30, 0).unwrap();
        assert_eq!(
            window_start(zone, ordinary).map(|at| at.format("%H:%M").to_string()),
            Some("06:30".to_owned())
        );
    }
}
