//! Instants and civil dates between the wire and PostgreSQL, in one place.
//!
//! The accepted range is years 1 to 9999 (0001-01-01T00:00:00Z to
//! 9999-12-31T23:59:59.999999Z). That is the range `google.protobuf.Timestamp`
//! documents and RFC 3339 (its JSON form) can write, and it lies well inside
//! what PostgreSQL stores (`timestamptz` 4713 BC to 294276 AD, `date` to
//! 5874897 AD), so anything accepted here can be stored and read back.
//! Instants are truncated to microseconds, PostgreSQL's precision, so a value
//! echoed back after a round trip through the database equals the one
//! validated (and etags computed from it agree).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use fitflow_error::Violations;
use prost_types::Timestamp;

/// The earliest year accepted.
pub const MIN_YEAR: i32 = 1;
/// The latest year accepted.
pub const MAX_YEAR: i32 = 9999;

/// `0001-01-01T00:00:00Z` in Unix seconds.
const MIN_SECONDS: i64 = -62_135_596_800;
/// `9999-12-31T23:59:59Z` in Unix seconds.
const MAX_SECONDS: i64 = 253_402_300_799;
const NANOS_PER_SECOND: i32 = 1_000_000_000;

const INVALID_TIMESTAMP: &str =
    "must be a valid timestamp between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z";
const INVALID_DATE: &str = "must be a valid date between 0001-01-01 and 9999-12-31";

/// A `google.type.Date`-shaped civil date as it arrives (the generated type
/// is not in our protos yet; map its three fields into this). Only full dates
/// are accepted: the partial forms `google.type.Date` allows (year, month or
/// day 0) are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CivilDate {
    /// The year, 1 to 9999.
    pub year: i32,
    /// The month, 1 to 12.
    pub month: i32,
    /// The day of the month, 1 to 31 depending on the month.
    pub day: i32,
}

/// The instant `timestamp` names, truncated to microseconds, or `None` when
/// its nanos are outside 0..1e9 or it lies outside years 1..=9999.
pub fn parse_timestamp(timestamp: &Timestamp) -> Option<DateTime<Utc>> {
    if !(0..NANOS_PER_SECOND).contains(&timestamp.nanos)
        || !(MIN_SECONDS..=MAX_SECONDS).contains(&timestamp.seconds)
    {
        return None;
    }
    let micros_as_nanos = u32::try_from(timestamp.nanos / 1_000 * 1_000).ok()?;
    DateTime::from_timestamp(timestamp.seconds, micros_as_nanos)
}

/// The wire form of `at`.
pub fn to_timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        // Always below 1e9 except during a leap second, which chrono folds
        // into nanos; clamp so the result stays a valid Timestamp.
        nanos: i32::try_from(at.timestamp_subsec_nanos())
            .unwrap_or(NANOS_PER_SECOND - 1)
            .min(NANOS_PER_SECOND - 1),
    }
}

/// The date `date` names, or `None` when it is partial, impossible (April 31)
/// or outside years 1..=9999.
pub fn parse_date(date: CivilDate) -> Option<NaiveDate> {
    if !(MIN_YEAR..=MAX_YEAR).contains(&date.year) {
        return None;
    }
    let month = u32::try_from(date.month).ok()?;
    let day = u32::try_from(date.day).ok()?;
    NaiveDate::from_ymd_opt(date.year, month, day)
}

/// The wire form of `date`.
pub fn to_civil_date(date: NaiveDate) -> CivilDate {
    CivilDate {
        year: date.year(),
        month: i32::try_from(date.month()).unwrap_or_default(),
        day: i32::try_from(date.day()).unwrap_or_default(),
    }
}

/// A required timestamp field: records `is required` when absent and a
/// range violation when invalid.
pub fn required_timestamp(
    violations: &mut Violations,
    field: &str,
    value: Option<&Timestamp>,
) -> Option<DateTime<Utc>> {
    if value.is_none() {
        violations.add(field, "is required");
    }
    optional_timestamp(violations, field, value)
}

/// An optional timestamp field: `None` when absent; records a violation
/// when given but invalid.
pub fn optional_timestamp(
    violations: &mut Violations,
    field: &str,
    value: Option<&Timestamp>,
) -> Option<DateTime<Utc>> {
    let timestamp = value?;
    let parsed = parse_timestamp(timestamp);
    violations.check(parsed.is_some(), field, INVALID_TIMESTAMP);
    parsed
}

/// A required date field: records `is required` when absent and a
/// violation when invalid.
pub fn required_date(
    violations: &mut Violations,
    field: &str,
    value: Option<CivilDate>,
) -> Option<NaiveDate> {
    if value.is_none() {
        violations.add(field, "is required");
    }
    optional_date(violations, field, value)
}

/// An optional date field: `None` when absent; records a violation when
/// given but invalid.
pub fn optional_date(
    violations: &mut Violations,
    field: &str,
    value: Option<CivilDate>,
) -> Option<NaiveDate> {
    let date = value?;
    let parsed = parse_date(date);
    violations.check(parsed.is_some(), field, INVALID_DATE);
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timestamp(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    fn date(year: i32, month: i32, day: i32) -> CivilDate {
        CivilDate { year, month, day }
    }

    #[test]
    fn the_range_bounds_are_the_first_and_last_instants_of_years_1_and_9999() {
        let first = parse_timestamp(&timestamp(MIN_SECONDS, 0)).expect("first instant");
        assert_eq!(first.to_rfc3339(), "0001-01-01T00:00:00+00:00");
        let last = parse_timestamp(&timestamp(MAX_SECONDS, 999_999_999)).expect("last instant");
        assert_eq!(last.to_rfc3339(), "9999-12-31T23:59:59.999999+00:00");
        assert_eq!(
            parse_timestamp(&timestamp(MIN_SECONDS - 1, 999_999_999)),
            None
        );
        assert_eq!(parse_timestamp(&timestamp(MAX_SECONDS + 1, 0)), None);
        assert_eq!(parse_timestamp(&timestamp(i64::MIN, 0)), None);
    }

    #[test]
    fn negative_or_overflowing_nanos_are_refused() {
        assert_eq!(parse_timestamp(&timestamp(0, -1)), None);
        assert_eq!(parse_timestamp(&timestamp(0, 1_000_000_000)), None);
        assert!(parse_timestamp(&timestamp(0, 999_999_999)).is_some());
    }

    #[test]
    fn instants_are_truncated_to_microseconds_like_postgresql_stores_them() {
        let parsed = parse_timestamp(&timestamp(1_700_000_000, 123_456_789)).expect("valid");
        assert_eq!(parsed.timestamp_subsec_nanos(), 123_456_000);
        assert_eq!(to_timestamp(parsed), timestamp(1_700_000_000, 123_456_000));
    }

    #[test]
    fn a_timestamp_round_trips_through_the_wire_form() {
        let at = parse_timestamp(&timestamp(-86_400, 5_000)).expect("valid");
        assert_eq!(parse_timestamp(&to_timestamp(at)), Some(at));
    }

    #[test]
    fn impossible_and_partial_dates_are_refused() {
        assert_eq!(parse_date(date(2025, 4, 31)), None);
        assert_eq!(parse_date(date(2025, 2, 29)), None);
        assert!(parse_date(date(2024, 2, 29)).is_some());
        assert_eq!(parse_date(date(0, 5, 1)), None);
        assert_eq!(parse_date(date(2025, 0, 1)), None);
        assert_eq!(parse_date(date(2025, 5, 0)), None);
        assert_eq!(parse_date(date(2025, -1, 1)), None);
        assert_eq!(parse_date(date(10_000, 1, 1)), None);
        assert!(parse_date(date(1, 1, 1)).is_some());
        assert!(parse_date(date(9999, 12, 31)).is_some());
    }

    #[test]
    fn a_date_round_trips_through_the_wire_form() {
        let day = NaiveDate::from_ymd_opt(2025, 4, 1).expect("date");
        assert_eq!(to_civil_date(day), date(2025, 4, 1));
        assert_eq!(parse_date(to_civil_date(day)), Some(day));
    }

    #[test]
    fn missing_required_fields_and_invalid_given_fields_are_violations_on_their_paths() {
        let mut violations = Violations::new();
        assert_eq!(
            required_timestamp(&mut violations, "start_time", None),
            None
        );
        assert_eq!(optional_timestamp(&mut violations, "end_time", None), None);
        let bad = timestamp(0, -5);
        assert_eq!(
            optional_timestamp(&mut violations, "filter.after", Some(&bad)),
            None
        );
        assert_eq!(required_date(&mut violations, "birth_date", None), None);
        assert_eq!(
            optional_date(&mut violations, "tax_point_date", Some(date(2025, 13, 1))),
            None
        );
        let good = NaiveDate::from_ymd_opt(2025, 12, 1);
        assert_eq!(
            required_date(&mut violations, "issue_date", Some(date(2025, 12, 1))),
            good
        );
        let error = violations.into_result().expect_err("violations");
        let found: Vec<_> = error.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            found,
            ["start_time", "filter.after", "birth_date", "tax_point_date"]
        );
    }
}
