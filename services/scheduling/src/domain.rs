//! Scheduling's rules as pure functions: class categories, appointment
//! states, when a booking is well-formed, how long a listing may span, and
//! which instants a billing period of local dates covers.

use chrono::{
    DateTime, Datelike as _, Duration, LocalResult, NaiveDate, TimeZone as _, Timelike, Utc,
};
use chrono_tz::Tz;

/// What kind of class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Several participants.
    Group,
    /// One client.
    Individual,
    /// A first session with one client.
    Trial,
}

impl Category {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Group => "group",
            Category::Individual => "individual",
            Category::Trial => "trial",
        }
    }

    /// From storage.
    pub fn parse(value: &str) -> Option<Self> {
        [Category::Group, Category::Individual, Category::Trial]
            .into_iter()
            .find(|category| category.as_str() == value)
    }

    /// Whether a booking of this class names its one client.
    pub fn needs_client(self) -> bool {
        !matches!(self, Category::Group)
    }
}

/// Where an appointment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Booked, not yet held.
    Scheduled,
    /// Held.
    Completed,
    /// Cancelled.
    Cancelled,
    /// The client did not come.
    NoShow,
}

impl Status {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Scheduled => "scheduled",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::NoShow => "no_show",
        }
    }

    /// From storage.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Status::Scheduled,
            Status::Completed,
            Status::Cancelled,
            Status::NoShow,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
    }

    /// Only a scheduled appointment can be cancelled.
    pub fn can_cancel(self) -> bool {
        self == Status::Scheduled
    }
}

/// A client's place in a group class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Participation {
    /// Has a place.
    Confirmed,
    /// Waits for one.
    Waitlisted,
    /// Left.
    Cancelled,
}

impl Participation {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Participation::Confirmed => "confirmed",
            Participation::Waitlisted => "waitlisted",
            Participation::Cancelled => "cancelled",
        }
    }

    /// From storage.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Participation::Confirmed,
            Participation::Waitlisted,
            Participation::Cancelled,
        ]
        .into_iter()
        .find(|participation| participation.as_str() == value)
    }

    /// A new participant's place when `confirmed` of `capacity` places are taken.
    pub fn on_join(confirmed: i64, capacity: i32) -> Self {
        if confirmed < i64::from(capacity) {
            Participation::Confirmed
        } else {
            Participation::Waitlisted
        }
    }
}

/// Where an appointment happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// At a studio.
    Studio,
    /// Online.
    Online,
    /// At the client's place.
    ClientLocation,
}

impl Location {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Studio => "studio",
            Location::Online => "online",
            Location::ClientLocation => "client_location",
        }
    }

    /// From storage.
    pub fn parse(value: &str) -> Option<Self> {
        [Location::Studio, Location::Online, Location::ClientLocation]
            .into_iter()
            .find(|location| location.as_str() == value)
    }
}

/// A trainer's cancellation policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Cancelling less than this many hours before the start is late.
    pub late_cancel_hours: i32,
    /// What a late cancellation costs.
    pub late_cancel_fee: Option<rust_decimal::Decimal>,
    /// What a no-show costs.
    pub no_show_fee: Option<rust_decimal::Decimal>,
}

impl Default for Policy {
    /// A trainer who set none: a day's notice, no fees.
    fn default() -> Self {
        Self {
            late_cancel_hours: 24,
            late_cancel_fee: None,
            no_show_fee: None,
        }
    }
}

impl Policy {
    /// Whether cancelling at `now` a session starting at `start` is late:
    /// inside the window before the start, or after the start.
    pub fn is_late_cancel(&self, now: DateTime<Utc>, start: DateTime<Utc>) -> bool {
        self.late_cancel_hours > 0
            && now > start - Duration::hours(i64::from(self.late_cancel_hours))
    }

    /// The fee a late cancellation owes, if any (a zero fee is none).
    pub fn late_cancel_penalty(&self) -> Option<rust_decimal::Decimal> {
        self.late_cancel_fee.filter(|fee| !fee.is_zero())
    }

    /// The fee a no-show owes, if any.
    pub fn no_show_penalty(&self) -> Option<rust_decimal::Decimal> {
        self.no_show_fee.filter(|fee| !fee.is_zero())
    }
}

/// Bookings start on whole minutes (calendars think in minutes; it also
/// keeps equal times equal after a round trip through clients).
pub fn on_whole_minute(start: DateTime<Utc>) -> bool {
    start.second() == 0 && start.nanosecond() == 0
}

/// When a session of `duration_minutes` starting at `start` ends.
pub fn end_of(start: DateTime<Utc>, duration_minutes: i32) -> DateTime<Utc> {
    start + Duration::minutes(i64::from(duration_minutes))
}

/// Whether a session ending at `end` ends within the calendar a
/// `google.protobuf.Timestamp` may name (by 9999-12-31T23:59:59.999999Z):
/// one starting in the last hour of year 9999 would end in year 10000, a
/// time no RFC 3339 reader (a JSON gateway, a client library) can take.
pub fn ends_in_calendar(end: DateTime<Utc>) -> bool {
    end.year() <= fitflow_api::time::MAX_YEAR
}

/// The longest window `ListAppointments` reads at once.
pub const MAX_LIST_SPAN: Duration = Duration::days(92);

/// Whether [start, end) is a listing window: end after start, at most 92 days.
pub fn valid_window(start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    end > start && end - start <= MAX_LIST_SPAN
}

/// The longest range one `ListStudioRoster` covers.
pub const MAX_ROSTER_SPAN: Duration = Duration::days(31);

/// Whether [start, end) is a roster's range: not empty, at most
/// [`MAX_ROSTER_SPAN`].
pub fn valid_roster_window(start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    end > start && end - start <= MAX_ROSTER_SPAN
}

/// The longest range one `ExportTrainerCalendar` covers: a year, leap day
/// included.
pub const MAX_EXPORT_SPAN: Duration = Duration::days(366);

/// Most appointments one `ExportTrainerCalendar` carries (a busy trainer's
/// year: 5,000 is about 14 a day, every day); a range holding more is
/// refused, never cut short.
pub const MAX_EXPORT_EVENTS: usize = 5_000;

/// Whether [start, end) is a calendar export's range: end after start, at
/// most [`MAX_EXPORT_SPAN`].
pub fn valid_export_window(start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    end > start && end - start <= MAX_EXPORT_SPAN
}

/// The most local dates one `ListBillableAppointments` period holds.
pub const MAX_BILLING_DAYS: i64 = 93;

/// Whether [first, last] (local dates, inclusive) is a billing period: in
/// order, at most [`MAX_BILLING_DAYS`] dates.
pub fn valid_billing_period(first: NaiveDate, last: NaiveDate) -> bool {
    last >= first && (last - first).num_days() < MAX_BILLING_DAYS
}

/// The first instant of local `date` in `zone`: its midnight (the first one
/// when midnight repeats), or, where clocks skip midnight, the instant the
/// gap ends (the date's first wall time).
pub fn start_of_local_day(zone: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    // A gap lasts at most a few hours; look minute by minute past it.
    for minutes in 0..=24 * 60 {
        match zone.from_local_datetime(&(midnight + Duration::minutes(minutes))) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => {
                return at.with_timezone(&Utc);
            }
            LocalResult::None => {}
        }
    }
    // Unreachable for any real zone; read the date as UTC then.
    midnight.and_utc()
}

/// The instants [from, to) of the local dates [first, last] in `zone`.
pub fn local_period(zone: Tz, first: NaiveDate, last: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        start_of_local_day(zone, first),
        start_of_local_day(zone, last + Duration::days(1)),
    )
}

/// The instants whose local date falls in [first, last] in at least one
/// time zone (UTC−12 to UTC+14): a day before `first` to two after `last`
/// at UTC midnight, so that every zone's dates are covered; callers date
/// each instant in its own zone and keep those in the period.
pub fn any_zone_period(first: NaiveDate, last: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let midnight = |day: NaiveDate| day.and_time(chrono::NaiveTime::MIN).and_utc();
    (
        midnight(first - Duration::days(1)),
        midnight(last + Duration::days(2)),
    )
}

/// Why an availability rule effective from `from` (until `until`, if it
/// ends) cannot be ended on `end`: ending only shortens a rule, to a date
/// on or after its first. `None` when it can.
pub fn rule_end_problem(
    from: NaiveDate,
    until: Option<NaiveDate>,
    end: NaiveDate,
) -> Option<String> {
    if end < from {
        return Some(format!(
            "must be on or after the rule's effective_from ({from})"
        ));
    }
    match until {
        Some(until) if end > until => Some(format!(
            "must not be after the rule's current end ({until}): ending only shortens a rule"
        )),
        _ => None,
    }
}

/// A calendar colour "#RRGGBB" (upper-cased), or empty.
pub fn color(value: &str) -> Option<String> {
    let upper = value.to_ascii_uppercase();
    let ok = upper.is_empty()
        || (upper.len() == 7
            && upper.starts_with('#')
            && upper[1..].bytes().all(|byte| byte.is_ascii_hexdigit()));
    ok.then_some(upper)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn a_billing_period_is_in_order_and_at_most_ninety_three_dates() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        assert!(valid_billing_period(day, day));
        assert!(valid_billing_period(day, day + Duration::days(92)));
        assert!(!valid_billing_period(day, day + Duration::days(93)));
        assert!(!valid_billing_period(day, day - Duration::days(1)));
    }

    #[test]
    fn a_local_period_runs_from_the_first_dates_midnight_to_the_day_after_the_last() {
        let toronto = chrono_tz::America::Toronto;
        let (from, to) = local_period(
            toronto,
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
        );
        // EST before the March change, EDT after.
        assert_eq!(from, Utc.with_ymd_and_hms(2026, 3, 1, 5, 0, 0).unwrap());
        assert_eq!(to, Utc.with_ymd_and_hms(2026, 4, 1, 4, 0, 0).unwrap());
    }

    #[test]
    fn a_date_whose_midnight_is_skipped_starts_when_the_gap_ends() {
        // Havana springs forward at midnight: 00:00 CST becomes 01:00 CDT.
        let havana = chrono_tz::America::Havana;
        let day = NaiveDate::from_ymd_opt(2025, 3, 9).unwrap();
        assert_eq!(
            start_of_local_day(havana, day),
            Utc.with_ymd_and_hms(2025, 3, 9, 5, 0, 0).unwrap()
        );
    }

    #[test]
    fn only_group_classes_book_without_a_client() {
        assert!(!Category::Group.needs_client());
        assert!(Category::Individual.needs_client());
        assert!(Category::Trial.needs_client());
    }

    #[test]
    fn a_join_is_confirmed_while_places_last_then_waitlisted() {
        assert_eq!(Participation::on_join(0, 10), Participation::Confirmed);
        assert_eq!(Participation::on_join(9, 10), Participation::Confirmed);
        assert_eq!(Participation::on_join(10, 10), Participation::Waitlisted);
        assert_eq!(Participation::on_join(11, 10), Participation::Waitlisted);
    }

    #[test]
    fn only_a_scheduled_appointment_can_be_cancelled() {
        assert!(Status::Scheduled.can_cancel());
        for status in [Status::Completed, Status::Cancelled, Status::NoShow] {
            assert!(!status.can_cancel());
        }
    }

    #[test]
    fn a_session_ends_its_duration_after_it_starts_even_across_the_year() {
        let start = Utc.with_ymd_and_hms(2026, 12, 31, 23, 30, 0).unwrap();
        assert_eq!(
            end_of(start, 60),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 30, 0).unwrap()
        );
        assert!(on_whole_minute(start));
        assert!(!on_whole_minute(start + Duration::seconds(1)));
    }

    #[test]
    fn a_session_ends_by_the_last_instant_of_year_9999_or_not_at_all() {
        let last_hour = Utc.with_ymd_and_hms(9999, 12, 31, 23, 0, 0).unwrap();
        assert!(ends_in_calendar(end_of(last_hour, 59)));
        assert!(!ends_in_calendar(end_of(last_hour, 60)));
        assert!(ends_in_calendar(end_of(last_hour - Duration::hours(1), 60)));
    }

    #[test]
    fn an_export_range_is_forward_and_at_most_three_hundred_sixty_six_days() {
        let start = Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).unwrap();
        // 2028 is a leap year: the whole of it fits.
        assert!(valid_export_window(
            start,
            Utc.with_ymd_and_hms(2029, 1, 1, 0, 0, 0).unwrap()
        ));
        assert!(!valid_export_window(
            start,
            start + MAX_EXPORT_SPAN + Duration::seconds(1)
        ));
        assert!(!valid_export_window(start, start));
        assert!(!valid_export_window(start, start - Duration::days(1)));
    }

    #[test]
    fn any_zones_period_covers_the_dates_of_kiribati_and_baker_island() {
        let day = NaiveDate::from_ymd_opt(2027, 3, 10).unwrap();
        let (from, to) = any_zone_period(day, day);
        // 00:00 on the 10th at UTC+14 and 23:59 on the 10th at UTC−12.
        let earliest = Utc.with_ymd_and_hms(2027, 3, 9, 10, 0, 0).unwrap();
        let latest = Utc.with_ymd_and_hms(2027, 3, 11, 11, 59, 0).unwrap();
        assert!(from <= earliest && latest < to);
    }

    #[test]
    fn a_roster_window_is_forward_and_at_most_thirty_one_days() {
        let start = Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).unwrap();
        assert!(valid_roster_window(start, start + Duration::days(31)));
        assert!(!valid_roster_window(
            start,
            start + Duration::days(31) + Duration::seconds(1)
        ));
        assert!(!valid_roster_window(start, start));
    }

    #[test]
    fn a_listing_window_is_forward_and_at_most_ninety_two_days() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert!(valid_window(start, start + Duration::days(7)));
        assert!(valid_window(start, start + MAX_LIST_SPAN));
        assert!(!valid_window(
            start,
            start + MAX_LIST_SPAN + Duration::seconds(1)
        ));
        assert!(!valid_window(start, start));
    }

    #[test]
    fn a_cancellation_inside_the_window_or_after_the_start_is_late() {
        let start = Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).unwrap();
        let policy = Policy::default();
        assert!(!policy.is_late_cancel(start - Duration::hours(25), start));
        assert!(policy.is_late_cancel(start - Duration::hours(23), start));
        assert!(policy.is_late_cancel(start + Duration::minutes(5), start));
        let never = Policy {
            late_cancel_hours: 0,
            ..Policy::default()
        };
        assert!(!never.is_late_cancel(start, start));
    }

    #[test]
    fn a_zero_fee_owes_nothing() {
        let policy = Policy {
            late_cancel_hours: 24,
            late_cancel_fee: Some(rust_decimal::Decimal::ZERO),
            no_show_fee: Some(rust_decimal::Decimal::new(4000, 2)),
        };
        assert_eq!(policy.late_cancel_penalty(), None);
        assert_eq!(
            policy.no_show_penalty(),
            Some(rust_decimal::Decimal::new(4000, 2))
        );
    }

    #[test]
    fn a_rule_ends_on_or_after_its_first_date_and_never_later_than_it_ended() {
        let day = |d| NaiveDate::from_ymd_opt(2027, 3, d).unwrap();
        assert_eq!(rule_end_problem(day(1), None, day(1)), None);
        assert_eq!(rule_end_problem(day(1), None, day(31)), None);
        assert_eq!(rule_end_problem(day(1), Some(day(20)), day(20)), None);
        assert_eq!(rule_end_problem(day(1), Some(day(20)), day(10)), None);
        assert!(rule_end_problem(day(2), None, day(1)).is_some());
        assert!(rule_end_problem(day(1), Some(day(20)), day(21)).is_some());
    }

    #[test]
    fn colours_are_hash_and_six_hex_digits() {
        assert_eq!(color("#a1b2c3").as_deref(), Some("#A1B2C3"));
        assert_eq!(color("").as_deref(), Some(""));
        assert_eq!(color("a1b2c3"), None);
        assert_eq!(color("#a1b2c"), None);
        assert_eq!(color("#GGGGGG"), None);
    }
}
