//! Whether two weekly availability rules of one trainer overlap when each is
//! read in its own zone (a rule at a studio in the studio's, one at no studio
//! in the trainer's). Pure: no I/O, no clock.
//!
//! Two rules overlap when, on some date, their hours meet as real instants:
//! a rule's hours on a local date are the instants from its start wall time
//! (the end of the gap when clocks skip it; the first occurrence when
//! ambiguous, as slots read it) to its end wall time (read as slots read a
//! window's end); touching is not overlapping.
//!
//! - Two rules read in one zone overlap as they always did: same weekday,
//!   shared minutes of wall time, shared effective dates (the database's
//!   exclusion constraint says the same for two rules at one place).
//! - Two rules in different zones are compared date by date: every date of
//!   the first rule that can meet the second (its weekday, within two days
//!   of the second's effective dates — a rule's hours lie within one local
//!   day and two zones' offsets differ by at most 26 hours) is expanded to
//!   instants, with each date of the second within two days of it. Daylight
//!   saving makes this date-dependent (a Toronto 12:00 rule meets a Regina
//!   10:00 one in winter and not in summer), so no week stands for another —
//!   except after [`steady_from`]: from 2100 on, chrono-tz's tables (the ones
//!   slots are computed with) hold no change of offset in any zone (a test
//!   checks it), so every week there is alike, and two weeks past the later
//!   of that day and the first common date stand for all later ones. A pair
//!   of open-ended rules is therefore checked week by week to 2100: about
//!   4,000 weeks, a few milliseconds.

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::slots::Rule;

/// The first date from which no zone's offset changes again in chrono-tz's
/// tables (checked by a test over every zone).
pub fn steady_from() -> NaiveDate {
    NaiveDate::from_ymd_opt(2100, 1, 1).unwrap_or(NaiveDate::MAX)
}

/// Days either side of a date within which another zone's hours may fall.
pub const ZONE_REACH_DAYS: i64 = 2;

/// A rule and the zone its wall time is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZonedRule {
    /// The weekly hours.
    pub rule: Rule,
    /// Its zone: the studio's, or the trainer's for a rule at no studio.
    pub zone: Tz,
}

/// The instants `[start, end)` of the rule's hours on `date` (a date it
/// applies on); none when they do not exist (wholly in a gap, or past the
/// calendar's last instant).
pub fn hours_on(rule: &ZonedRule, date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    let start = midnight + Duration::minutes(i64::from(rule.rule.window.start_minute));
    let end = midnight + Duration::minutes(i64::from(rule.rule.window.end_minute));
    let start_at = crate::slots::window_start(rule.zone, start)?;
    let end_at = crate::series::instant(rule.zone, end)?;
    (start_at < end_at).then_some((start_at, end_at))
}

/// The earlier of two optional last dates (none: no end).
fn earlier(first: Option<NaiveDate>, second: Option<NaiveDate>) -> Option<NaiveDate> {
    match (first, second) {
        (Some(first), Some(second)) => Some(first.min(second)),
        (Some(only), None) | (None, Some(only)) => Some(only),
        (None, None) => None,
    }
}

/// Whether the two rules' hours meet on some date (see the module doc).
pub fn overlap(first: &ZonedRule, second: &ZonedRule) -> bool {
    if first.zone == second.zone {
        return first.rule.overlaps(&second.rule);
    }
    let reach = Duration::days(ZONE_REACH_DAYS);
    let from = first
        .rule
        .effective_from
        .max(second.rule.effective_from - reach);
    let horizon = from.max(steady_from()) + Duration::days(14);
    let until = earlier(
        earlier(
            first.rule.effective_until,
            second.rule.effective_until.map(|until| until + reach),
        ),
        Some(horizon),
    )
    .unwrap_or(horizon);
    // The first date on or after `from` on the first rule's weekday.
    let ahead = (i64::from(first.rule.day.num_days_from_monday())
        - i64::from(from.weekday().num_days_from_monday()))
    .rem_euclid(7);
    let mut date = from + Duration::days(ahead);
    while date <= until {
        if first.rule.applies_on(date)
            && let Some((start, end)) = hours_on(first, date)
        {
            let meets = (-ZONE_REACH_DAYS..=ZONE_REACH_DAYS)
                .map(|days| date + Duration::days(days))
                .filter(|other| second.rule.applies_on(*other))
                .filter_map(|other| hours_on(second, other))
                .any(|(other_start, other_end)| start < other_end && other_start < end);
            if meets {
                return true;
            }
        }
        date += Duration::weeks(1);
    }
    false
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveTime, Offset as _, TimeZone as _, Timelike as _, Weekday};

    use super::*;
    use crate::slots::DayWindow;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn minute(text: &str) -> u16 {
        if text == "24:00" {
            return 1440;
        }
        let time = NaiveTime::parse_from_str(text, "%H:%M").unwrap();
        u16::try_from(time.num_seconds_from_midnight() / 60).unwrap()
    }

    fn zoned(zone: Tz, day: Weekday, start: &str, end: &str) -> ZonedRule {
        ZonedRule {
            rule: Rule {
                day,
                window: DayWindow::new(minute(start), minute(end)).unwrap(),
                effective_from: date("2027-01-01"),
                effective_until: None,
            },
            zone,
        }
    }

    fn between(rule: ZonedRule, from: &str, until: &str) -> ZonedRule {
        ZonedRule {
            rule: Rule {
                effective_from: date(from),
                effective_until: Some(date(until)),
                ..rule.rule
            },
            ..rule
        }
    }

    fn both_ways(first: &ZonedRule, second: &ZonedRule) -> bool {
        let forward = overlap(first, second);
        assert_eq!(forward, overlap(second, first), "overlap is symmetric");
        forward
    }

    use chrono_tz::America::{Regina, Toronto, Vancouver};

    #[test]
    fn a_rule_at_a_studio_in_another_zone_meets_the_trainers_at_the_same_instants() {
        // 09:00-10:00 in Vancouver is 12:00-13:00 in Toronto, all year.
        let studio = zoned(Vancouver, Weekday::Mon, "09:00", "10:00");
        assert!(both_ways(
            &studio,
            &zoned(Toronto, Weekday::Mon, "12:00", "13:00")
        ));
        assert!(both_ways(
            &studio,
            &zoned(Toronto, Weekday::Mon, "12:30", "12:45")
        ));
        assert!(
            !both_ways(&studio, &zoned(Toronto, Weekday::Mon, "09:00", "10:00")),
            "the same wall time three hours apart"
        );
        assert!(
            !both_ways(&studio, &zoned(Toronto, Weekday::Mon, "13:00", "14:00")),
            "touching"
        );
        assert!(!both_ways(
            &studio,
            &zoned(Toronto, Weekday::Tue, "12:00", "13:00")
        ));
    }

    #[test]
    fn hours_late_in_the_evening_meet_the_next_days_hours_in_a_zone_ahead() {
        // Sunday 22:00-24:00 in Vancouver is Monday 01:00-03:00 in Toronto.
        let sunday_night = zoned(Vancouver, Weekday::Sun, "22:00", "24:00");
        assert!(both_ways(
            &sunday_night,
            &zoned(Toronto, Weekday::Mon, "00:00", "01:30")
        ));
        assert!(!both_ways(
            &sunday_night,
            &zoned(Toronto, Weekday::Sun, "22:00", "24:00")
        ));
        // Effective dates are local: the Vancouver rule's last Sunday
        // reaches the first Monday of a Toronto rule starting the next day.
        let last_sunday = between(sunday_night, "2027-01-01", "2027-02-28");
        let from_monday = between(
            zoned(Toronto, Weekday::Mon, "00:00", "01:30"),
            "2027-03-01",
            "2027-12-31",
        );
        assert!(both_ways(&last_sunday, &from_monday));
        let from_next_monday = between(from_monday, "2027-03-02", "2027-12-31");
        assert!(!both_ways(&last_sunday, &from_next_monday));
    }

    #[test]
    fn a_zone_without_daylight_saving_meets_a_rule_only_in_the_season_it_lines_up() {
        // Regina is UTC-6 all year; Toronto is UTC-5 in winter, UTC-4 from
        // 14 March 2027 to 7 November 2027.
        let toronto_noon = zoned(Toronto, Weekday::Wed, "12:00", "13:00");
        // 10:00 Regina = 16:00 UTC = 11:00 EST / 12:00 EDT.
        let regina_ten = zoned(Regina, Weekday::Wed, "10:00", "11:00");
        let winter = between(regina_ten, "2027-01-01", "2027-03-13");
        let summer = between(regina_ten, "2027-03-14", "2027-11-06");
        assert!(
            !both_ways(&toronto_noon, &winter),
            "11:00-12:00 EST, before noon"
        );
        assert!(both_ways(&toronto_noon, &summer), "12:00-13:00 EDT");
        // One Wednesday of daylight time is enough.
        let one_week = between(regina_ten, "2027-03-17", "2027-03-17");
        assert!(both_ways(&toronto_noon, &one_week));
        // An open-ended Regina rule meets it every summer.
        assert!(both_ways(&toronto_noon, &regina_ten));
        // Summer only from 2099 on: found far ahead, too.
        let late = between(regina_ten, "2099-06-01", "2099-06-30");
        assert!(both_ways(&toronto_noon, &late));
    }

    #[test]
    fn the_spring_forward_sunday_is_read_in_instants() {
        // 14 March 2027, 02:00 EST jumps to 03:00 EDT in Toronto (07:00 UTC).
        // A Toronto rule 02:30-04:00 starts at the jump, 07:00 UTC; a
        // Regina rule 00:30-01:15 is 06:30-07:15 UTC.
        let spring = "2027-03-14";
        let toronto = between(
            zoned(Toronto, Weekday::Sun, "02:30", "04:00"),
            spring,
            spring,
        );
        let regina = between(
            zoned(Regina, Weekday::Sun, "00:30", "01:15"),
            spring,
            spring,
        );
        assert_eq!(
            hours_on(&toronto, date(spring)).map(|(start, _)| start),
            Some(Utc.with_ymd_and_hms(2027, 3, 14, 7, 0, 0).unwrap())
        );
        assert!(both_ways(&toronto, &regina));
        let earlier = between(
            zoned(Regina, Weekday::Sun, "00:00", "01:00"),
            spring,
            spring,
        );
        assert!(!both_ways(&toronto, &earlier), "06:00-07:00 UTC touches");
    }

    #[test]
    fn rules_in_one_zone_compare_in_wall_time_as_before() {
        let monday = zoned(Toronto, Weekday::Mon, "09:00", "12:00");
        assert!(both_ways(
            &monday,
            &zoned(Toronto, Weekday::Mon, "11:00", "13:00")
        ));
        assert!(!both_ways(
            &monday,
            &zoned(Toronto, Weekday::Mon, "12:00", "13:00")
        ));
        let ended = between(monday, "2027-01-01", "2027-06-30");
        let later = between(monday, "2027-07-01", "2027-12-31");
        assert!(!both_ways(&ended, &later));
    }

    #[test]
    fn no_zone_changes_its_offset_after_the_steady_date() {
        let steady = steady_from().and_time(NaiveTime::MIN).and_utc();
        let later = [
            steady + Duration::days(100),
            steady + Duration::days(200),
            steady + Duration::days(300),
            Utc.with_ymd_and_hms(2150, 7, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 6, 1, 0, 0, 0).unwrap(),
        ];
        for zone in chrono_tz::TZ_VARIANTS {
            let offset = |at: DateTime<Utc>| at.with_timezone(&zone).offset().fix();
            for at in later {
                assert_eq!(offset(steady), offset(at), "{zone} at {at}");
            }
        }
    }

    #[test]
    fn an_open_ended_pair_is_checked_quickly() {
        let started = std::time::Instant::now();
        let far_apart = zoned(Vancouver, Weekday::Mon, "09:00", "10:00");
        assert!(!both_ways(
            &far_apart,
            &zoned(Toronto, Weekday::Mon, "09:00", "10:00")
        ));
        // Two full walks to 2100, unoptimised: well under a second.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
}
