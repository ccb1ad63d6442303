//! Availability requests in, rules, exceptions and slots out.

use chrono::{Datelike as _, NaiveDate, Timelike as _};
use fitflow_api::etag::Etag;
use fitflow_api::text::optional_uuid;
use fitflow_api::time::{CivilDate, optional_date, required_date, to_civil_date, to_timestamp};
use fitflow_error::Violations;
use fitflow_proto::google::r#type::{Date, DayOfWeek, TimeOfDay};
use fitflow_proto::scheduling as pb;

use crate::calendar::{NewException, NewRule};
use crate::repo::{ExceptionRow, RuleRow};
use crate::slots::{DAY_MINUTES, DayWindow, Exception, ExceptionKind, Rule, Slot};

/// The longest time off one exception holds, in days after its first.
const MAX_EXCEPTION_DAYS: i64 = 366;

pub(super) fn civil(date: Option<&Date>) -> Option<CivilDate> {
    date.map(|date| CivilDate {
        year: date.year,
        month: date.month,
        day: date.day,
    })
}

pub(super) fn date_out(date: NaiveDate) -> Date {
    let civil = to_civil_date(date);
    Date {
        year: civil.year,
        month: civil.month,
        day: civil.day,
    }
}

/// Minutes after midnight of a time of day: whole minutes, 00:00 to 23:59,
/// or 24:00 when `end` is set; `None` after recording what is wrong.
fn minute_of_day(
    violations: &mut Violations,
    path: &str,
    value: Option<&TimeOfDay>,
    end: bool,
) -> Option<u16> {
    let Some(value) = value else {
        violations.add(path, "is required");
        return None;
    };
    let whole_minute = value.seconds == 0 && value.nanos == 0;
    let in_day = (0..=23).contains(&value.hours) && (0..=59).contains(&value.minutes);
    let midnight_end = end && value.hours == 24 && value.minutes == 0;
    if !whole_minute || !(in_day || midnight_end) {
        violations.add(
            path,
            if end {
                "must be a whole minute from 00:01 to 24:00"
            } else {
                "must be a whole minute from 00:00 to 23:59"
            },
        );
        return None;
    }
    u16::try_from(value.hours * 60 + value.minutes).ok()
}

/// The window `start_path` to `end_path` describe: both valid and forward.
fn window(
    violations: &mut Violations,
    (start_path, start): (&str, Option<&TimeOfDay>),
    (end_path, end): (&str, Option<&TimeOfDay>),
) -> Option<DayWindow> {
    let start = minute_of_day(violations, start_path, start, false);
    let end = minute_of_day(violations, end_path, end, true);
    let (start, end) = (start?, end?);
    let window = DayWindow::new(start, end);
    if window.is_none() {
        violations.add(
            end_path,
            format!("must be after {start_path} on the same day (no overnight hours: split them at midnight)"),
        );
    }
    window
}

fn time_out(minute: u16) -> TimeOfDay {
    TimeOfDay {
        hours: i32::from(minute / 60),
        minutes: i32::from(minute % 60),
        seconds: 0,
        nanos: 0,
    }
}

/// The rule a create request describes; `None` after recording what is wrong.
pub(crate) fn new_rule(
    violations: &mut Violations,
    value: &pb::AvailabilityRule,
) -> Option<NewRule> {
    let trainer_id = optional_uuid(violations, "rule.trainer_id", &value.trainer_id);
    let studio_id = optional_uuid(violations, "rule.studio_id", &value.studio_id);
    let day = match DayOfWeek::try_from(value.day_of_week) {
        Ok(DayOfWeek::Monday) => Some(chrono::Weekday::Mon),
        Ok(DayOfWeek::Tuesday) => Some(chrono::Weekday::Tue),
        Ok(DayOfWeek::Wednesday) => Some(chrono::Weekday::Wed),
        Ok(DayOfWeek::Thursday) => Some(chrono::Weekday::Thu),
        Ok(DayOfWeek::Friday) => Some(chrono::Weekday::Fri),
        Ok(DayOfWeek::Saturday) => Some(chrono::Weekday::Sat),
        Ok(DayOfWeek::Sunday) => Some(chrono::Weekday::Sun),
        _ => {
            violations.add("rule.day_of_week", "must be MONDAY to SUNDAY");
            None
        }
    };
    let window = window(
        violations,
        ("rule.start_time", value.start_time.as_ref()),
        ("rule.end_time", value.end_time.as_ref()),
    );
    let effective_from = required_date(
        violations,
        "rule.effective_from",
        civil(value.effective_from.as_ref()),
    );
    let effective_until = optional_date(
        violations,
        "rule.effective_until",
        civil(value.effective_until.as_ref()),
    );
    if let (Some(from), Some(until)) = (effective_from, effective_until)
        && until < from
    {
        violations.add("rule.effective_until", "must be on or after effective_from");
    }
    Some(NewRule {
        trainer_id,
        studio_id,
        rule: Rule {
            day: day?,
            window: window?,
            effective_from: effective_from?,
            effective_until,
        },
    })
}

/// The exception a create request describes; `None` after recording what
/// is wrong.
pub(crate) fn new_exception(
    violations: &mut Violations,
    value: &pb::AvailabilityException,
) -> Option<NewException> {
    let trainer_id = optional_uuid(violations, "exception.trainer_id", &value.trainer_id);
    let kind = match pb::AvailabilityExceptionKind::try_from(value.kind) {
        Ok(pb::AvailabilityExceptionKind::TimeOff) => Some(ExceptionKind::TimeOff),
        Ok(pb::AvailabilityExceptionKind::ExtraHours) => Some(ExceptionKind::ExtraHours),
        _ => {
            violations.add("exception.kind", "must be TIME_OFF or EXTRA_HOURS");
            None
        }
    };
    let start_date = required_date(
        violations,
        "exception.start_date",
        civil(value.start_date.as_ref()),
    );
    let end_date = optional_date(
        violations,
        "exception.end_date",
        civil(value.end_date.as_ref()),
    );
    let timed = value.start_time.is_some() || value.end_time.is_some();
    let window = if timed || kind == Some(ExceptionKind::ExtraHours) {
        window(
            violations,
            ("exception.start_time", value.start_time.as_ref()),
            ("exception.end_time", value.end_time.as_ref()),
        )
    } else {
        None
    };
    let start_date = start_date?;
    let end_date = end_date.unwrap_or(start_date);
    if end_date < start_date || (end_date - start_date).num_days() > MAX_EXCEPTION_DAYS {
        violations.add(
            "exception.end_date",
            "must be on or after start_date and at most 366 days later",
        );
    } else if timed && end_date != start_date {
        violations.add(
            "exception.end_date",
            "must equal start_date when start_time and end_time are given",
        );
    }
    if timed && window.is_none() {
        return None;
    }
    Some(NewException {
        trainer_id,
        exception: Exception {
            kind: kind?,
            start_date,
            end_date,
            window,
        },
    })
}

fn minute_out(value: i16) -> TimeOfDay {
    time_out(u16::try_from(value).unwrap_or_default().min(DAY_MINUTES))
}

/// The wire form of a rule.
pub(crate) fn rule_out(row: RuleRow) -> pb::AvailabilityRule {
    let day =
        crate::slots::iso_weekday(row.day_of_week).map_or(
            DayOfWeek::Unspecified,
            |day| match day {
                chrono::Weekday::Mon => DayOfWeek::Monday,
                chrono::Weekday::Tue => DayOfWeek::Tuesday,
                chrono::Weekday::Wed => DayOfWeek::Wednesday,
                chrono::Weekday::Thu => DayOfWeek::Thursday,
                chrono::Weekday::Fri => DayOfWeek::Friday,
                chrono::Weekday::Sat => DayOfWeek::Saturday,
                chrono::Weekday::Sun => DayOfWeek::Sunday,
            },
        );
    pb::AvailabilityRule {
        id: row.id.to_string(),
        trainer_id: row.trainer_id.to_string(),
        studio_id: row.studio_id.map(|id| id.to_string()).unwrap_or_default(),
        day_of_week: day as i32,
        start_time: Some(minute_out(row.start_minute)),
        end_time: Some(minute_out(row.end_minute)),
        effective_from: Some(date_out(row.effective_from)),
        effective_until: row.effective_until.map(date_out),
        etag: Etag::of_version(row.id, row.version).as_str().to_owned(),
        create_time: Some(to_timestamp(row.created_at)),
    }
}

/// The wire form of an exception.
pub(crate) fn exception_out(row: ExceptionRow) -> pb::AvailabilityException {
    let kind = match row.kind.as_str() {
        "time_off" => pb::AvailabilityExceptionKind::TimeOff,
        "extra_hours" => pb::AvailabilityExceptionKind::ExtraHours,
        _ => pb::AvailabilityExceptionKind::Unspecified,
    };
    pb::AvailabilityException {
        id: row.id.to_string(),
        trainer_id: row.trainer_id.to_string(),
        kind: kind as i32,
        start_date: Some(date_out(row.start_date)),
        end_date: Some(date_out(row.end_date)),
        start_time: row.start_minute.map(minute_out),
        end_time: row.end_minute.map(minute_out),
        etag: Etag::of_version(row.id, row.version).as_str().to_owned(),
        create_time: Some(to_timestamp(row.created_at)),
    }
}

/// The wire form of a slot, in its place's zone.
pub(crate) fn slot_out(slot: Slot) -> pb::FreeSlot {
    pb::FreeSlot {
        start_time: Some(to_timestamp(slot.start)),
        end_time: Some(to_timestamp(slot.end)),
        local_date: Some(Date {
            year: slot.local.year(),
            month: i32::try_from(slot.local.month()).unwrap_or_default(),
            day: i32::try_from(slot.local.day()).unwrap_or_default(),
        }),
        local_time: Some(TimeOfDay {
            hours: i32::try_from(slot.local.hour()).unwrap_or_default(),
            minutes: i32::try_from(slot.local.minute()).unwrap_or_default(),
            seconds: 0,
            nanos: 0,
        }),
        time_zone: slot.zone.name().to_owned(),
        studio_id: slot
            .studio_id
            .map(|studio_id| studio_id.to_string())
            .unwrap_or_default(),
    }
}
