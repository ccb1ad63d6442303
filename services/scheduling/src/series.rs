//! Recurring series as a rule in local wall time (an RFC 5545 RRULE subset:
//! weekly on given days, every N weeks, until a date or a count), expanded
//! into instants with the zone's rules, so a 07:00 class stays at 07:00
//! across daylight-saving changes.

use chrono::{
    DateTime, Datelike as _, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset as _,
    TimeZone as _, Utc, Weekday,
};
use chrono_tz::Tz;
use fitflow_error::FieldViolation;

pub mod scope;

/// Most occurrences one series books.
pub const MAX_OCCURRENCES: usize = 100;
/// How far past the first occurrence a series may reach.
pub const MAX_SPAN_DAYS: i64 = 366;

/// A weekly rule in local wall time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyRule {
    /// The first occurrence, in local wall time; its weekday is one of `days`.
    pub first: NaiveDateTime,
    /// The zone the wall time is read in.
    pub zone: Tz,
    /// The weekdays it happens on.
    pub days: Vec<Weekday>,
    /// Every this many weeks (1 = weekly).
    pub interval_weeks: u32,
    /// Last local date it may happen on.
    pub until: Option<NaiveDate>,
    /// At most this many occurrences.
    pub count: Option<usize>,
}

/// A series' rule as requested, before the zone it is read in is known
/// (the request's, or the trainer's from tenancy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRequest {
    /// The first occurrence.
    pub first: DateTime<Utc>,
    /// The weekdays it happens on (checked: at least one).
    pub days: Vec<Weekday>,
    /// Every this many weeks (checked: 1 to 4).
    pub interval_weeks: u32,
    /// Last local date it may happen on.
    pub until: Option<NaiveDate>,
    /// At most this many occurrences (checked: at most [`MAX_OCCURRENCES`]).
    pub count: Option<usize>,
}

impl RuleRequest {
    /// The rule read in `zone`: its first occurrence's local wall time and
    /// date fix the rule, so the first occurrence's weekday must be one of
    /// `days` and `until` must fall within a year after it.
    pub fn in_zone(&self, zone: Tz) -> Result<WeeklyRule, Vec<FieldViolation>> {
        let first = self.first.with_timezone(&zone).naive_local();
        let mut violations = Vec::new();
        if !self.days.contains(&first.weekday()) {
            violations.push(FieldViolation {
                field: "rule.days".to_owned(),
                description:
                    "must include the weekday of the first occurrence (in the series' time zone)"
                        .to_owned(),
            });
        }
        if let Some(until) = self.until
            && (until < first.date() || until > first.date() + Duration::days(MAX_SPAN_DAYS))
        {
            violations.push(FieldViolation {
                field: "rule.until".to_owned(),
                description: "must be on or after the first occurrence and within a year of it"
                    .to_owned(),
            });
        }
        if !violations.is_empty() {
            return Err(violations);
        }
        Ok(WeeklyRule {
            first,
            zone,
            days: self.days.clone(),
            interval_weeks: self.interval_weeks.max(1),
            until: self.until,
            count: self.count,
        })
    }
}

/// The instant of a local wall time in `zone`. An ambiguous time (the
/// repeated hour when clocks fall back) is its first instant; a time that
/// does not exist (the hour skipped when clocks spring forward) is read with
/// the offset in force before the gap, as RFC 5545 says — a 02:30 class on
/// that night in Toronto happens at 03:30 EDT, the same elapsed time after
/// midnight.
pub fn instant(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _) => Some(earlier.with_timezone(&Utc)),
        LocalResult::None => {
            // Gaps last at most a few hours: three hours earlier the wall
            // time exists, with the offset in force before the gap.
            let before = zone
                .from_local_datetime(&(local - Duration::hours(3)))
                .earliest()?;
            let offset = before.offset().fix();
            offset
                .from_local_datetime(&local)
                .single()
                .map(|at| at.with_timezone(&Utc))
        }
    }
}

/// The occurrences of `rule`, in order: every listed weekday of every
/// `interval_weeks`-th week from the first occurrence's week, at the first
/// occurrence's wall time, up to `until`, `count`, [`MAX_OCCURRENCES`] and
/// [`MAX_SPAN_DAYS`].
pub fn expand(rule: &WeeklyRule) -> Vec<DateTime<Utc>> {
    let mut occurrences = Vec::new();
    let limit = rule.count.unwrap_or(MAX_OCCURRENCES).min(MAX_OCCURRENCES);
    let first_date = rule.first.date();
    let last_date = first_date + Duration::days(MAX_SPAN_DAYS);
    let last_date = rule.until.map_or(last_date, |until| until.min(last_date));
    let week_start =
        first_date - Duration::days(i64::from(first_date.weekday().num_days_from_monday()));
    let mut days = rule.days.clone();
    days.sort_by_key(Weekday::num_days_from_monday);
    days.dedup();
    let mut week = week_start;
    while week <= last_date && occurrences.len() < limit {
        for day in &days {
            let date = week + Duration::days(i64::from(day.num_days_from_monday()));
            if date < first_date || date > last_date || occurrences.len() >= limit {
                continue;
            }
            if let Some(at) = instant(rule.zone, date.and_time(rule.first.time())) {
                occurrences.push(at);
            }
        }
        week += Duration::weeks(i64::from(rule.interval_weeks.max(1)));
    }
    occurrences
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveTime, Timelike as _};

    use super::*;

    fn weekly(zone: Tz, first: &str, days: &[Weekday], count: usize) -> WeeklyRule {
        WeeklyRule {
            first: NaiveDateTime::parse_from_str(first, "%Y-%m-%d %H:%M").unwrap(),
            zone,
            days: days.to_vec(),
            interval_weeks: 1,
            until: None,
            count: Some(count),
        }
    }

    fn local_times(rule: &WeeklyRule) -> Vec<NaiveTime> {
        expand(rule)
            .into_iter()
            .map(|at| at.with_timezone(&rule.zone).time())
            .collect()
    }

    #[test]
    fn a_seven_oclock_class_stays_at_seven_across_both_changes_in_four_zones() {
        // From early March (before the spring change) to mid-November
        // (after the fall change), weekly on Sundays, the day clocks change.
        for zone in [
            chrono_tz::America::Toronto,
            chrono_tz::America::Halifax,
            chrono_tz::America::St_Johns,
            chrono_tz::America::Regina,
        ] {
            let rule = weekly(zone, "2027-03-07 07:00", &[Weekday::Sun], 38);
            let times = local_times(&rule);
            assert_eq!(times.len(), 38, "{zone}");
            assert!(
                times
                    .iter()
                    .all(|time| *time == NaiveTime::from_hms_opt(7, 0, 0).unwrap()),
                "{zone}: {times:?}"
            );
        }
    }

    #[test]
    fn the_utc_instant_moves_by_an_hour_where_clocks_change_and_not_in_regina() {
        let toronto = expand(&weekly(
            chrono_tz::America::Toronto,
            "2027-03-07 07:00",
            &[Weekday::Sun],
            2,
        ));
        assert_eq!(toronto[0].hour(), 12, "EST is UTC-5");
        assert_eq!(toronto[1].hour(), 11, "EDT is UTC-4 from 14 March 2027");
        let st_johns = expand(&weekly(
            chrono_tz::America::St_Johns,
            "2027-03-07 07:00",
            &[Weekday::Sun],
            2,
        ));
        assert_eq!(
            (st_johns[0].hour(), st_johns[0].minute()),
            (10, 30),
            "NST is UTC-3:30"
        );
        assert_eq!(
            (st_johns[1].hour(), st_johns[1].minute()),
            (9, 30),
            "NDT is UTC-2:30"
        );
        let regina = expand(&weekly(
            chrono_tz::America::Regina,
            "2027-03-07 07:00",
            &[Weekday::Sun],
            2,
        ));
        assert_eq!(
            regina[0].hour(),
            regina[1].hour(),
            "Regina keeps CST all year"
        );
    }

    #[test]
    fn a_class_in_the_skipped_spring_hour_happens_at_the_first_time_after_the_gap() {
        // 14 March 2027, Toronto: 02:00 EST jumps to 03:00 EDT.
        let rule = weekly(
            chrono_tz::America::Toronto,
            "2027-03-07 02:30",
            &[Weekday::Sun],
            3,
        );
        let local: Vec<String> = expand(&rule)
            .into_iter()
            .map(|at| {
                at.with_timezone(&rule.zone)
                    .format("%m-%d %H:%M")
                    .to_string()
            })
            .collect();
        assert_eq!(local, ["03-07 02:30", "03-14 03:30", "03-21 02:30"]);
    }

    #[test]
    fn a_class_in_the_repeated_fall_hour_happens_once_at_its_first_instant() {
        // 7 November 2027, Toronto: 01:00-02:00 happens twice.
        let rule = weekly(
            chrono_tz::America::Toronto,
            "2027-11-07 01:30",
            &[Weekday::Sun],
            1,
        );
        let at = expand(&rule)[0];
        assert_eq!((at.hour(), at.minute()), (5, 30), "01:30 EDT is 05:30 UTC");
    }

    #[test]
    fn every_other_week_on_two_days_until_a_date() {
        let rule = WeeklyRule {
            interval_weeks: 2,
            until: NaiveDate::from_ymd_opt(2027, 2, 28),
            count: None,
            ..weekly(
                chrono_tz::America::Toronto,
                "2027-02-01 18:00",
                &[Weekday::Wed, Weekday::Mon],
                0,
            )
        };
        let dates: Vec<String> = expand(&rule)
            .into_iter()
            .map(|at| at.with_timezone(&rule.zone).format("%m-%d").to_string())
            .collect();
        assert_eq!(dates, ["02-01", "02-03", "02-15", "02-17"]);
    }

    #[test]
    fn a_series_never_books_more_than_a_hundred_or_past_a_year() {
        let rule = WeeklyRule {
            count: None,
            ..weekly(
                chrono_tz::America::Toronto,
                "2027-01-04 06:00",
                &[
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                ],
                0,
            )
        };
        assert_eq!(expand(&rule).len(), MAX_OCCURRENCES);
        let weekly_forever = WeeklyRule {
            count: None,
            ..weekly(
                chrono_tz::America::Toronto,
                "2027-01-04 06:00",
                &[Weekday::Mon],
                0,
            )
        };
        assert_eq!(expand(&weekly_forever).len(), 53);
    }

    #[test]
    fn a_requested_rule_is_read_in_its_zone_so_the_first_weekday_is_local() {
        use chrono::TimeZone as _;
        // Monday 23:30 in Toronto is Tuesday 04:30 UTC.
        let first = chrono_tz::America::Toronto
            .with_ymd_and_hms(2027, 3, 1, 23, 30, 0)
            .unwrap()
            .with_timezone(&Utc);
        let request = RuleRequest {
            first,
            days: vec![Weekday::Mon],
            interval_weeks: 1,
            until: NaiveDate::from_ymd_opt(2027, 3, 31),
            count: None,
        };
        let rule = request.in_zone(chrono_tz::America::Toronto).unwrap();
        assert_eq!(rule.first.to_string(), "2027-03-01 23:30:00");
        assert_eq!(expand(&rule).len(), 5);
        let refused = request.in_zone(chrono_tz::UTC).unwrap_err();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].field, "rule.days");
        let too_late = RuleRequest {
            until: NaiveDate::from_ymd_opt(2029, 1, 1),
            ..request
        };
        let refused = too_late.in_zone(chrono_tz::America::Toronto).unwrap_err();
        assert_eq!(refused[0].field, "rule.until");
    }
}
