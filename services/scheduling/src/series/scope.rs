//! Edits of a recurring series, as calendar apps offer them: which
//! occurrences a scope reaches, and how a move of one occurrence's start
//! becomes a shift of local wall time for the others (so a 07:00 class
//! moved to 08:00 is at 08:00 local on both sides of a daylight-saving
//! change). Pure: no I/O, no proto.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use uuid::Uuid;

use super::instant;

/// Which occurrences of a series an edit reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The named appointment only.
    This,
    /// The named appointment and every later scheduled occurrence.
    ThisAndFollowing,
    /// The named appointment and every scheduled occurrence starting after
    /// now.
    All,
}

impl Scope {
    /// As audited.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::This => "this",
            Scope::ThisAndFollowing => "this_and_following",
            Scope::All => "all",
        }
    }

    /// Whether the edit may reach beyond the named appointment.
    pub fn reaches_series(self) -> bool {
        self != Scope::This
    }
}

/// An occurrence of a series as the scope rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    /// The appointment.
    pub id: Uuid,
    /// When it starts.
    pub start: DateTime<Utc>,
    /// Whether it is still scheduled (not held, missed or cancelled).
    pub scheduled: bool,
}

/// The occurrences `scope` reaches from `named`, in start order: the named
/// one always (the caller checked it is scheduled), then, of `series` (the
/// series' occurrences, in any order, the named one among them or not):
/// with `ThisAndFollowing` every scheduled one starting after it, with
/// `All` every scheduled one starting after `now`. Held, missed and
/// cancelled occurrences are history: no scope reaches them.
pub fn select(
    scope: Scope,
    named: Occurrence,
    series: &[Occurrence],
    now: DateTime<Utc>,
) -> Vec<Occurrence> {
    let reached = |occurrence: &Occurrence| {
        occurrence.id != named.id
            && occurrence.scheduled
            && match scope {
                Scope::This => false,
                Scope::ThisAndFollowing => {
                    (occurrence.start, occurrence.id) > (named.start, named.id)
                }
                Scope::All => occurrence.start > now,
            }
    };
    let mut selected: Vec<Occurrence> = std::iter::once(named)
        .chain(series.iter().copied().filter(reached))
        .collect();
    selected.sort_by_key(|occurrence| (occurrence.start, occurrence.id));
    selected
}

/// The wall time an occurrence starting at `start` was meant for: the
/// series' rule wall time on its local date when that wall time lands at
/// `start` (which also recovers 02:30 on the night clocks spring forward,
/// held at 03:30), otherwise its own local wall time (an exception moved
/// on its own, or a series whose rule is not known).
pub fn nominal_local(
    zone: Tz,
    start: DateTime<Utc>,
    rule_time: Option<NaiveTime>,
) -> NaiveDateTime {
    let local = start.with_timezone(&zone).naive_local();
    if let Some(time) = rule_time {
        let meant = local.date().and_time(time);
        if instant(zone, meant) == Some(start) {
            return meant;
        }
    }
    local
}

/// The shift of local wall time that moves `from` (an occurrence meant for
/// wall time `from`) to the instant `to`, in `zone`: whole days and the
/// change of clock time, as a person reads it on a wall calendar.
pub fn wall_shift(zone: Tz, from: NaiveDateTime, to: DateTime<Utc>) -> Duration {
    to.with_timezone(&zone).naive_local() - from
}

/// Where an occurrence meant for wall time `meant` lands after `shift` of
/// local wall time in `zone`, read as BookSeries reads its rule (a skipped
/// wall time with the offset in force before the gap, an ambiguous one at
/// its first instant); `None` only outside the calendar.
pub fn shifted(zone: Tz, meant: NaiveDateTime, shift: Duration) -> Option<DateTime<Utc>> {
    instant(zone, meant.checked_add_signed(shift)?)
}

/// A rule's wall time and weekdays after `shift` of wall time: the clock
/// time moves by the shift, and each weekday by the whole days it crosses
/// (a 23:00 Monday class moved two hours later is a 01:00 Tuesday class).
pub fn shifted_rule(
    wall_time: NaiveTime,
    days: &[Weekday],
    shift: Duration,
) -> (NaiveTime, Vec<Weekday>) {
    // Any date will do: only the time and the number of days crossed count.
    let anchor = NaiveDate::from_ymd_opt(2000, 1, 3).unwrap_or_default();
    let moved = anchor.and_time(wall_time) + shift;
    let days_crossed = (moved.date() - anchor).num_days().rem_euclid(7);
    let mut moved_days: Vec<Weekday> = days
        .iter()
        .map(|day| {
            let mut weekday = *day;
            for _ in 0..days_crossed {
                weekday = weekday.succ();
            }
            weekday
        })
        .collect();
    moved_days.sort_by_key(Weekday::num_days_from_monday);
    moved_days.dedup();
    (moved.time(), moved_days)
}

/// The last local date a series' rule may keep once its occurrences from
/// `first_removed` on are gone: the local day before it in `zone`, never
/// later than the rule's own `until`.
pub fn ended_until(zone: Tz, first_removed: DateTime<Utc>, until: Option<NaiveDate>) -> NaiveDate {
    let day_before = first_removed.with_timezone(&zone).date_naive() - Duration::days(1);
    until.map_or(day_before, |until| until.min(day_before))
}

/// ISO weekday number (1 Monday .. 7 Sunday), as stored.
pub fn iso_day(day: Weekday) -> i16 {
    i16::try_from(day.number_from_monday()).unwrap_or(1)
}

/// A weekday from its ISO number.
pub fn from_iso_day(number: i16) -> Option<Weekday> {
    let index = u8::try_from(number.checked_sub(1)?).ok()?;
    Weekday::try_from(index).ok()
}

/// The local date of `at` in `zone`.
pub fn local_date(zone: Tz, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&zone).date_naive()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    const TORONTO: Tz = chrono_tz::America::Toronto;

    fn toronto(text: &str) -> DateTime<Utc> {
        TORONTO
            .from_local_datetime(&NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap())
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn wall(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    fn occurrence(n: u128, start: &str, scheduled: bool) -> Occurrence {
        Occurrence {
            id: Uuid::from_u128(n),
            start: toronto(start),
            scheduled,
        }
    }

    /// Five weekly occurrences: the first held, the third cancelled.
    fn five_weeks() -> Vec<Occurrence> {
        vec![
            occurrence(1, "2027-03-02 07:00", false),
            occurrence(2, "2027-03-09 07:00", true),
            occurrence(3, "2027-03-16 07:00", false),
            occurrence(4, "2027-03-23 07:00", true),
            occurrence(5, "2027-03-30 07:00", true),
        ]
    }

    fn ids(selected: &[Occurrence]) -> Vec<u128> {
        selected
            .iter()
            .map(|occurrence| occurrence.id.as_u128())
            .collect()
    }

    #[test]
    fn this_reaches_the_named_occurrence_only() {
        let series = five_weeks();
        let now = toronto("2027-01-01 00:00");
        assert_eq!(ids(&select(Scope::This, series[3], &series, now)), [4]);
    }

    #[test]
    fn this_and_following_reaches_later_scheduled_occurrences_and_skips_history() {
        let series = five_weeks();
        let now = toronto("2027-01-01 00:00");
        assert_eq!(
            ids(&select(Scope::ThisAndFollowing, series[1], &series, now)),
            [2, 4, 5],
            "the cancelled third stays cancelled"
        );
        assert_eq!(
            ids(&select(Scope::ThisAndFollowing, series[4], &series, now)),
            [5]
        );
    }

    #[test]
    fn all_reaches_every_scheduled_occurrence_after_now_whichever_is_named() {
        let series = five_weeks();
        let now = toronto("2027-03-10 12:00");
        assert_eq!(ids(&select(Scope::All, series[4], &series, now)), [4, 5]);
        // The named one is reached even when it already started (a single
        // cancel of it is allowed too); earlier scheduled ones are past.
        assert_eq!(ids(&select(Scope::All, series[1], &series, now)), [2, 4, 5]);
        let before_everything = toronto("2027-01-01 00:00");
        assert_eq!(
            ids(&select(Scope::All, series[4], &series, before_everything)),
            [2, 4, 5]
        );
    }

    #[test]
    fn a_move_from_seven_to_eight_stays_at_eight_local_in_march_and_november() {
        // Weekly on Sundays at 07:00 Toronto, across both changes of 2027
        // (14 March and 7 November).
        let zone = TORONTO;
        let named = toronto("2027-03-07 07:00");
        let shift = wall_shift(
            zone,
            nominal_local(zone, named, None),
            toronto("2027-03-07 08:00"),
        );
        assert_eq!(shift, Duration::hours(1));
        for day in [
            "2027-03-07",
            "2027-03-14",
            "2027-10-31",
            "2027-11-07",
            "2027-11-14",
        ] {
            let start = toronto(&format!("{day} 07:00"));
            let meant = nominal_local(zone, start, NaiveTime::from_hms_opt(7, 0, 0));
            let moved = shifted(zone, meant, shift).unwrap();
            assert_eq!(
                moved
                    .with_timezone(&zone)
                    .format("%Y-%m-%d %H:%M")
                    .to_string(),
                format!("{day} 08:00")
            );
        }
        // The UTC instants differ by an hour between EST and EDT.
        let march_7 = shifted(zone, wall("2027-03-07 07:00"), shift).unwrap();
        let march_14 = shifted(zone, wall("2027-03-14 07:00"), shift).unwrap();
        assert_eq!(march_14 - march_7, Duration::days(7) - Duration::hours(1));
    }

    #[test]
    fn a_move_to_another_day_moves_every_week_by_the_same_days() {
        let zone = TORONTO;
        let shift = wall_shift(zone, wall("2027-03-09 07:00"), toronto("2027-03-10 06:30"));
        assert_eq!(shift, Duration::hours(23) + Duration::minutes(30));
        let moved = shifted(zone, wall("2027-11-02 07:00"), shift).unwrap();
        assert_eq!(
            moved.with_timezone(&zone).format("%a %H:%M").to_string(),
            "Wed 06:30"
        );
    }

    #[test]
    fn the_class_held_at_three_thirty_on_the_spring_night_was_meant_for_two_thirty() {
        let zone = TORONTO;
        // 02:30 does not exist on 14 March 2027: BookSeries held it at 03:30.
        let held = toronto("2027-03-14 03:30");
        let rule_time = NaiveTime::from_hms_opt(2, 30, 0);
        assert_eq!(
            nominal_local(zone, held, rule_time),
            wall("2027-03-14 02:30")
        );
        // Moved an hour later with the rest, it is at 03:30: 02:30 + 1 h.
        let moved = shifted(zone, wall("2027-03-14 02:30"), Duration::hours(1)).unwrap();
        assert_eq!(moved, held);
        // Without the rule (or for an exception) its own wall time counts.
        assert_eq!(nominal_local(zone, held, None), wall("2027-03-14 03:30"));
        assert_eq!(
            nominal_local(zone, held, NaiveTime::from_hms_opt(9, 0, 0)),
            wall("2027-03-14 03:30")
        );
    }

    #[test]
    fn a_shift_into_the_skipped_hour_is_read_as_booking_reads_it() {
        let zone = TORONTO;
        let moved = shifted(zone, wall("2027-03-14 01:30"), Duration::hours(1)).unwrap();
        assert_eq!(moved, toronto("2027-03-14 03:30"));
        // Into the repeated hour of 7 November: its first instant (EDT).
        let repeated = shifted(zone, wall("2027-11-07 00:30"), Duration::hours(1)).unwrap();
        assert_eq!(
            repeated,
            Utc.with_ymd_and_hms(2027, 11, 7, 5, 30, 0).unwrap()
        );
    }

    #[test]
    fn a_rule_moved_past_midnight_moves_its_weekdays() {
        let (time, days) = shifted_rule(
            NaiveTime::from_hms_opt(23, 0, 0).unwrap(),
            &[Weekday::Mon, Weekday::Sun],
            Duration::hours(2),
        );
        assert_eq!(time, NaiveTime::from_hms_opt(1, 0, 0).unwrap());
        assert_eq!(days, [Weekday::Mon, Weekday::Tue]);
        let (time, days) = shifted_rule(
            NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
            &[Weekday::Mon],
            -Duration::hours(8),
        );
        assert_eq!(time, NaiveTime::from_hms_opt(23, 0, 0).unwrap());
        assert_eq!(days, [Weekday::Sun]);
        let (time, days) = shifted_rule(
            NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
            &[Weekday::Wed],
            Duration::hours(1),
        );
        assert_eq!(
            (time, days),
            (
                NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
                vec![Weekday::Wed]
            )
        );
    }

    #[test]
    fn ending_a_rule_keeps_the_days_before_the_first_removed_occurrence() {
        let first_removed = toronto("2027-03-23 07:00");
        let day_before = NaiveDate::from_ymd_opt(2027, 3, 22).unwrap();
        assert_eq!(ended_until(TORONTO, first_removed, None), day_before);
        let earlier = NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
        assert_eq!(ended_until(TORONTO, first_removed, Some(earlier)), earlier);
        // 21:00 in Toronto is the next day in UTC: the local date counts.
        let evening = toronto("2027-03-23 21:00");
        assert_eq!(ended_until(TORONTO, evening, None), day_before);
    }

    #[test]
    fn weekdays_round_trip_through_their_iso_numbers() {
        for day in [Weekday::Mon, Weekday::Thu, Weekday::Sun] {
            assert_eq!(from_iso_day(iso_day(day)), Some(day));
        }
        assert_eq!(iso_day(Weekday::Sun), 7);
        assert_eq!(from_iso_day(0), None);
        assert_eq!(from_iso_day(8), None);
    }
}
