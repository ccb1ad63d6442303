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
//!   of that day and the first common date stand for all later ones.
//!   Likewise before [`steady_before`] (1844: no zone's offset changes
//!   earlier, a test checks it): every week there is alike but for which of
//!   the rules' dates apply, and a week inside both rules' dates — found in
//!   the first two weeks walked — answers for them all (a week at an edge
//!   has fewer dates, so meets only if it does), so the walk jumps from
//!   there to a week before 1844. A pair of open-ended rules is therefore
//!   checked week by week from the later of its first date and 1844 to
//!   2100: at most about 13,400 weeks (tens of milliseconds unoptimised;
//!   4,000 weeks for rules starting now). Without the jump, a rule from year
//!   1 walked 109,000 weeks (150 ms unoptimised) per rule it was checked
//!   against (issue 11).

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::slots::Rule;

/// The first date from which no zone's offset changes again in chrono-tz's
/// tables (checked by a test over every zone).
pub fn steady_from() -> NaiveDate {
    NaiveDate::from_ymd_opt(2100, 1, 1).unwrap_or(NaiveDate::MAX)
}

/// A date before which no zone's offset ever changed in chrono-tz's tables
/// (the first change of all is the Philippines' move across the date line
/// at the end of 1844; a test checks every zone), so that every week before
/// it is alike.
pub fn steady_before() -> NaiveDate {
    NaiveDate::from_ymd_opt(1844, 1, 1).unwrap_or(NaiveDate::MIN)
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
    // Before this, a week and the dates its hours reach are all before
    // `steady_before`: alike but for which dates apply.
    let steady_end = steady_before() - Duration::weeks(1);
    while date <= until {
        if date >= from + Duration::weeks(2) && date < steady_end {
            // The first two weeks walked held one inside both rules' dates
            // (there is one from at most ten days after `from`, as the
            // range is longer), which answers for every week up to here:
            // jump to the first date of the first rule's weekday a week or
            // less before `steady_before`.
            let behind = (steady_end - date).num_days();
            date += Duration::weeks((behind + 6) / 7);
            continue;
        }
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
    fn no_zone_changes_its_offset_before_the_steady_date() {
        let first = NaiveDate::MIN.max(date("0001-01-01"));
        let offset = |zone: Tz, day: NaiveDate| {
            zone.offset_from_utc_datetime(&day.and_time(NaiveTime::MIN))
                .fix()
        };
        // Every year from year 1 to 1800, then every day to two days past
        // the steady date.
        let mut days: Vec<NaiveDate> = (1..1800)
            .filter_map(|year| NaiveDate::from_ymd_opt(year, 1, 1))
            .collect();
        let mut day = date("1800-01-01");
        while day <= steady_from_days_before(steady_before()) {
            days.push(day);
            day += Duration::days(1);
        }
        for zone in chrono_tz::TZ_VARIANTS {
            let before = offset(zone, first);
            for day in &days {
                assert_eq!(before, offset(zone, *day), "{zone} on {day}");
            }
        }
    }

    /// The last instant's date before which a rule's hours could reach
    /// `steady` from any zone (two days).
    fn steady_from_days_before(steady: NaiveDate) -> NaiveDate {
        steady + Duration::days(ZONE_REACH_DAYS)
    }

    #[test]
    fn rules_from_year_one_are_checked_quickly() {
        let started = std::time::Instant::now();
        let open = |rule: ZonedRule| ZonedRule {
            rule: Rule {
                effective_from: date("0001-01-01"),
                effective_until: None,
                ..rule.rule
            },
            ..rule
        };
        // Vancouver 09:00 and Toronto 09:00 never meet; neither do they
        // from year 1, open-ended or to 9999.
        let vancouver = zoned(Vancouver, Weekday::Mon, "09:00", "10:00");
        let toronto = zoned(Toronto, Weekday::Mon, "09:00", "10:00");
        assert!(!both_ways(&open(vancouver), &open(toronto)));
        assert!(!both_ways(
            &between(vancouver, "0001-01-01", "9999-12-31"),
            &between(toronto, "0001-01-01", "9999-12-31")
        ));
        // Toronto kept its local mean time (UTC-5:17:32) until 1895, New
        // York (UTC-4:56:02) until 18 November 1883, then UTC-5: Toronto's
        // 09:00-09:10 meets New York's 09:10-09:20 only from 1883 to 1895
        // — found from year 1, past the jump over the weeks before 1844.
        let new_york = chrono_tz::America::New_York;
        let toronto = zoned(Toronto, Weekday::Wed, "09:00", "09:10");
        let new_york = zoned(new_york, Weekday::Wed, "09:10", "09:20");
        assert!(both_ways(&open(toronto), &open(new_york)));
        assert!(!both_ways(
            &between(toronto, "0001-01-01", "1883-11-01"),
            &between(new_york, "0001-01-01", "1883-11-01")
        ));
        assert!(both_ways(
            &between(toronto, "1883-11-20", "1883-11-30"),
            &between(new_york, "1883-11-20", "1883-11-30")
        ));
        assert!(!both_ways(&toronto, &new_york), "not from 2027");
        // Eight walks from year 1 and 2 from 1844 to 2100, unoptimised:
        // the jump keeps each to the weeks from 1844 (a walk from year 1
        // took 150 ms without it).
        assert!(
            started.elapsed() < std::time::Duration::from_millis(800),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_walk_from_year_one_answers_as_one_from_1843() {
        use chrono_tz::America::{New_York, St_Johns};
        use chrono_tz::Asia::{Kathmandu, Manila};
        use chrono_tz::Australia::Lord_Howe;
        use chrono_tz::Pacific::Chatham;
        // Zones whose offsets moved most (Manila crossed the date line at
        // the end of 1844), windows at either end of the day and between:
        // every week before 1844 is alike, so a walk from year 1 answers
        // as one from December 1843, up to 1900.
        let zones = [Manila, Chatham, Kathmandu, St_Johns, Lord_Howe, New_York];
        let windows = [("00:00", "01:00"), ("09:00", "09:10"), ("22:30", "24:00")];
        let days = [Weekday::Tue, Weekday::Wed];
        let mut met = 0;
        for (index, first_zone) in zones.iter().enumerate() {
            for second_zone in &zones[index + 1..] {
                for (start, end) in windows {
                    for day in days {
                        let first = zoned(*first_zone, Weekday::Tue, "20:00", "23:00");
                        let second = zoned(*second_zone, day, start, end);
                        let from_year_one = both_ways(
                            &between(first, "0001-01-01", "1900-12-31"),
                            &between(second, "0001-01-01", "1900-12-31"),
                        );
                        let from_1843 = both_ways(
                            &between(first, "1843-12-01", "1900-12-31"),
                            &between(second, "1843-12-01", "1900-12-31"),
                        );
                        assert_eq!(
                            from_year_one, from_1843,
                            "{first_zone} {second_zone} {day} {start}"
                        );
                        met += usize::from(from_year_one);
                    }
                }
            }
        }
        assert!(met > 0, "some pairs meet");
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
