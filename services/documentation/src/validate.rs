//! Field-by-field checks of notes, measurements and plans as they arrive:
//! every violation is named at once, and nothing out of range (or not a
//! number) is stored.

use std::collections::HashSet;

use chrono::NaiveDate;
use fitflow_api::text::{TextKind, check_text, required};
use fitflow_api::time::{CivilDate, optional_date, required_date};
use fitflow_error::Violations;
use fitflow_proto::documentation as pb;
use fitflow_proto::google::r#type::Date;

use crate::domain::{self, PlanStatus};

/// Longest SOAP text, private notes or AI summary.
pub const MAX_TEXT: usize = 20_000;
/// Longest name (exercise, session, plan, metric, model).
pub const MAX_NAME: usize = 200;
/// Longest short free text (exercise notes, reasons, goals).
pub const MAX_SHORT_TEXT: usize = 2_000;
const MAX_NOTE_EXERCISES: usize = 100;
const MAX_SESSION_EXERCISES: usize = 50;
const MAX_WEEKS: usize = 104;
const MAX_SESSIONS_PER_WEEK: usize = 14;
const MAX_METRICS: usize = 20;
/// Longest plan, in days (five years).
const MAX_PLAN_DAYS: i64 = 5 * 366;

fn civil(date: Option<&Date>) -> Option<CivilDate> {
    date.map(|date| CivilDate {
        year: date.year,
        month: date.month,
        day: date.day,
    })
}

/// A required `google.type.Date` field.
pub fn required_civil_date(
    violations: &mut Violations,
    field: &str,
    value: Option<&Date>,
) -> Option<NaiveDate> {
    required_date(violations, field, civil(value))
}

fn in_range(violations: &mut Violations, field: &str, value: f64, low: f64, high: f64) {
    if !value.is_finite() || value < low || value > high {
        violations.add(field, format!("must be a number from {low} to {high}"));
    }
}

fn int_in_range(violations: &mut Violations, field: &str, value: i32, low: i32, high: i32) {
    if !(low..=high).contains(&value) {
        violations.add(field, format!("must be from {low} to {high}"));
    }
}

fn unit_given(violations: &mut Violations, field: &str, known: bool) -> bool {
    violations.check(known, field, "must be a known unit");
    known
}

/// A weight within (0, `max_kg`] kg, or [`min_kg`, `max_kg`] when `min_kg` > 0.
fn weight(violations: &mut Violations, field: &str, weight: &pb::Weight, min_kg: f64, max_kg: f64) {
    let known = matches!(
        pb::WeightUnit::try_from(weight.unit),
        Ok(pb::WeightUnit::Kg | pb::WeightUnit::Lb)
    );
    if !unit_given(violations, &format!("{field}.unit"), known) {
        return;
    }
    let kg = domain::kilograms(weight);
    let field = format!("{field}.value");
    if !weight.value.is_finite() || weight.value <= 0.0 || kg < min_kg || kg > max_kg {
        violations.add(
            field,
            format!("must be a number above 0, from {min_kg} to {max_kg} kg in the unit given"),
        );
    }
}

/// One exercise at `field` (e.g. `content.exercises[2]`).
pub fn exercise(violations: &mut Violations, field: &str, exercise: &pb::Exercise) {
    let name = format!("{field}.name");
    if required(violations, &name, &exercise.name) {
        check_text(violations, &name, &exercise.name, TextKind::Line, MAX_NAME);
    }
    int_in_range(violations, &format!("{field}.sets"), exercise.sets, 0, 100);
    int_in_range(
        violations,
        &format!("{field}.reps"),
        exercise.reps,
        0,
        1_000,
    );
    if let Some(load) = &exercise.load {
        weight(violations, &format!("{field}.load"), load, 0.0, 1_000.0);
    }
    int_in_range(
        violations,
        &format!("{field}.duration_seconds"),
        exercise.duration_seconds,
        0,
        86_400,
    );
    if let Some(distance) = &exercise.distance {
        let known = matches!(
            pb::DistanceUnit::try_from(distance.unit),
            Ok(pb::DistanceUnit::M | pb::DistanceUnit::Km | pb::DistanceUnit::Mi)
        );
        if unit_given(violations, &format!("{field}.distance.unit"), known) {
            let km = domain::kilometres(distance);
            if !distance.value.is_finite() || distance.value <= 0.0 || km > 1_000.0 {
                violations.add(
                    format!("{field}.distance.value"),
                    "must be a number above 0 and at most 1000 km in the unit given",
                );
            }
        }
    }
    let rpe = exercise.rpe;
    if !(rpe == 0.0 || ((1.0..=10.0).contains(&rpe) && (rpe * 2.0).fract() == 0.0)) {
        violations.add(
            format!("{field}.rpe"),
            "must be 0 (not given) or from 1 to 10 in steps of 0.5",
        );
    }
    check_text(
        violations,
        &format!("{field}.notes"),
        &exercise.notes,
        TextKind::FreeText,
        MAX_SHORT_TEXT,
    );
}

/// Measurements at `field`.
pub fn measurements(violations: &mut Violations, field: &str, measurements: &pb::Measurements) {
    if let Some(body_weight) = &measurements.body_weight {
        weight(
            violations,
            &format!("{field}.body_weight"),
            body_weight,
            20.0,
            400.0,
        );
    }
    if let Some(fat) = measurements.body_fat_percent {
        in_range(
            violations,
            &format!("{field}.body_fat_percent"),
            fat,
            1.0,
            75.0,
        );
    }
    let mut sites = HashSet::new();
    for (index, girth) in measurements.girths.iter().enumerate() {
        let at = format!("{field}.girths[{index}]");
        let site_known = pb::GirthSite::try_from(girth.site)
            .is_ok_and(|site| site != pb::GirthSite::Unspecified);
        violations.check(site_known, &format!("{at}.site"), "must be a known site");
        if site_known && !sites.insert(girth.site) {
            violations.add(format!("{at}.site"), "is measured twice in one note");
        }
        let known = matches!(
            pb::LengthUnit::try_from(girth.unit),
            Ok(pb::LengthUnit::Cm | pb::LengthUnit::In)
        );
        if unit_given(violations, &format!("{at}.unit"), known) {
            let cm = domain::centimetres(girth);
            if !girth.value.is_finite() || !(5.0..=300.0).contains(&cm) {
                violations.add(
                    format!("{at}.value"),
                    "must be a number from 5 to 300 cm in the unit given",
                );
            }
        }
    }
    if let Some(rate) = measurements.resting_heart_rate {
        int_in_range(
            violations,
            &format!("{field}.resting_heart_rate"),
            rate,
            20,
            250,
        );
    }
    if let Some(pressure) = &measurements.blood_pressure {
        int_in_range(
            violations,
            &format!("{field}.blood_pressure.systolic"),
            pressure.systolic,
            50,
            300,
        );
        int_in_range(
            violations,
            &format!("{field}.blood_pressure.diastolic"),
            pressure.diastolic,
            20,
            200,
        );
        violations.check(
            pressure.systolic > pressure.diastolic,
            &format!("{field}.blood_pressure"),
            "systolic must be above diastolic",
        );
    }
}

/// A note's content at `field`.
pub fn note_content(violations: &mut Violations, field: &str, content: &pb::SessionNoteContent) {
    for (name, text) in [
        ("subjective", &content.subjective),
        ("objective", &content.objective),
        ("assessment", &content.assessment),
        ("plan", &content.plan),
        ("private_notes", &content.private_notes),
    ] {
        check_text(
            violations,
            &format!("{field}.{name}"),
            text,
            TextKind::FreeText,
            MAX_TEXT,
        );
    }
    if content.exercises.len() > MAX_NOTE_EXERCISES {
        violations.add(
            format!("{field}.exercises"),
            format!("must hold at most {MAX_NOTE_EXERCISES} exercises"),
        );
    } else {
        for (index, item) in content.exercises.iter().enumerate() {
            exercise(violations, &format!("{field}.exercises[{index}]"), item);
        }
    }
    if let Some(taken) = &content.measurements {
        measurements(violations, &format!("{field}.measurements"), taken);
    }
}

/// A plan's checked header: dates, pace and status.
#[derive(Debug, Clone, Copy)]
pub struct PlanHeader {
    /// First day.
    pub start: NaiveDate,
    /// Last day, if any.
    pub end: Option<NaiveDate>,
    /// Sessions per week.
    pub sessions_per_week: i32,
    /// Its status.
    pub status: PlanStatus,
}

/// A plan at `field`; its header when every part is valid.
pub fn plan(
    violations: &mut Violations,
    field: &str,
    plan: &pb::TrainingPlan,
) -> Option<PlanHeader> {
    let before = violations.len();
    let name = format!("{field}.name");
    if required(violations, &name, &plan.name) {
        check_text(violations, &name, &plan.name, TextKind::Line, MAX_NAME);
    }
    check_text(
        violations,
        &format!("{field}.goal"),
        &plan.goal,
        TextKind::FreeText,
        MAX_SHORT_TEXT,
    );
    let start = required_civil_date(
        violations,
        &format!("{field}.start_date"),
        plan.start_date.as_ref(),
    );
    let end = optional_date(
        violations,
        &format!("{field}.end_date"),
        civil(plan.end_date.as_ref()),
    );
    if let (Some(start), Some(end)) = (start, end) {
        let days = (end - start).num_days();
        if days < 0 {
            violations.add(format!("{field}.end_date"), "must not be before start_date");
        } else if days > MAX_PLAN_DAYS {
            violations.add(
                format!("{field}.end_date"),
                "must be at most 5 years after start_date",
            );
        }
    }
    int_in_range(
        violations,
        &format!("{field}.sessions_per_week"),
        plan.sessions_per_week,
        1,
        14,
    );
    let status = match pb::PlanStatus::try_from(plan.status) {
        Ok(pb::PlanStatus::Unspecified | pb::PlanStatus::Active) => Some(PlanStatus::Active),
        Ok(pb::PlanStatus::Paused) => Some(PlanStatus::Paused),
        Ok(pb::PlanStatus::Completed) => Some(PlanStatus::Completed),
        Ok(pb::PlanStatus::Cancelled) => Some(PlanStatus::Cancelled),
        Err(_) => {
            violations.add(format!("{field}.status"), "must be a known status");
            None
        }
    };
    if plan.weeks.len() > MAX_WEEKS {
        violations.add(
            format!("{field}.weeks"),
            format!("must hold at most {MAX_WEEKS} weeks"),
        );
    } else {
        for (w, week) in plan.weeks.iter().enumerate() {
            plan_week(violations, &format!("{field}.weeks[{w}]"), week);
        }
    }
    if plan.metrics.len() > MAX_METRICS {
        violations.add(
            format!("{field}.metrics"),
            format!("must hold at most {MAX_METRICS} metrics"),
        );
    } else {
        for (index, metric) in plan.metrics.iter().enumerate() {
            let at = format!("{field}.metrics[{index}]");
            let name = format!("{at}.name");
            if required(violations, &name, &metric.name) {
                check_text(violations, &name, &metric.name, TextKind::Line, MAX_NAME);
            }
            check_text(
                violations,
                &format!("{at}.target"),
                &metric.target,
                TextKind::Line,
                MAX_NAME,
            );
        }
    }
    if violations.len() > before {
        return None;
    }
    Some(PlanHeader {
        start: start?,
        end,
        sessions_per_week: plan.sessions_per_week,
        status: status?,
    })
}

fn plan_week(violations: &mut Violations, field: &str, week: &pb::PlanWeek) {
    if week.sessions.len() > MAX_SESSIONS_PER_WEEK {
        violations.add(
            format!("{field}.sessions"),
            format!("must hold at most {MAX_SESSIONS_PER_WEEK} sessions"),
        );
        return;
    }
    for (s, session) in week.sessions.iter().enumerate() {
        let at = format!("{field}.sessions[{s}]");
        let name = format!("{at}.name");
        if required(violations, &name, &session.name) {
            check_text(violations, &name, &session.name, TextKind::Line, MAX_NAME);
        }
        if session.exercises.len() > MAX_SESSION_EXERCISES {
            violations.add(
                format!("{at}.exercises"),
                format!("must hold at most {MAX_SESSION_EXERCISES} exercises"),
            );
            continue;
        }
        for (e, item) in session.exercises.iter().enumerate() {
            exercise(violations, &format!("{at}.exercises[{e}]"), item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(violations: &Violations) -> Vec<String> {
        violations.fields().map(str::to_owned).collect()
    }

    fn squat() -> pb::Exercise {
        pb::Exercise {
            name: "Back squat".into(),
            sets: 5,
            reps: 5,
            load: Some(pb::Weight {
                value: 100.0,
                unit: pb::WeightUnit::Kg as i32,
            }),
            rpe: 8.5,
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_note_passes() {
        let mut violations = Violations::new();
        note_content(
            &mut violations,
            "content",
            &pb::SessionNoteContent {
                subjective: "Slept badly.\r\n\tKnee fine.".into(),
                exercises: vec![squat()],
                measurements: Some(pb::Measurements {
                    body_weight: Some(pb::Weight {
                        value: 180.0,
                        unit: pb::WeightUnit::Lb as i32,
                    }),
                    body_fat_percent: Some(18.5),
                    resting_heart_rate: Some(58),
                    blood_pressure: Some(pb::BloodPressure {
                        systolic: 120,
                        diastolic: 80,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        assert!(violations.is_empty(), "{:?}", fields(&violations));
    }

    #[test]
    fn every_bad_measurement_and_exercise_field_is_named_at_once() {
        let mut violations = Violations::new();
        let content = pb::SessionNoteContent {
            subjective: "nul\0here".into(),
            exercises: vec![pb::Exercise {
                name: String::new(),
                sets: -1,
                rpe: 10.25,
                load: Some(pb::Weight {
                    value: f64::NAN,
                    unit: pb::WeightUnit::Kg as i32,
                }),
                ..squat()
            }],
            measurements: Some(pb::Measurements {
                body_weight: Some(pb::Weight {
                    value: 900.0,
                    unit: pb::WeightUnit::Lb as i32,
                }),
                body_fat_percent: Some(f64::INFINITY),
                girths: vec![
                    pb::Girth {
                        site: pb::GirthSite::Waist as i32,
                        value: 80.0,
                        unit: pb::LengthUnit::Cm as i32,
                    },
                    pb::Girth {
                        site: pb::GirthSite::Waist as i32,
                        value: 200.0,
                        unit: pb::LengthUnit::In as i32,
                    },
                ],
                resting_heart_rate: Some(0),
                blood_pressure: Some(pb::BloodPressure {
                    systolic: 80,
                    diastolic: 90,
                }),
            }),
            ..Default::default()
        };
        note_content(&mut violations, "content", &content);
        assert_eq!(
            fields(&violations),
            [
                "content.subjective",
                "content.exercises[0].name",
                "content.exercises[0].sets",
                "content.exercises[0].load.value",
                "content.exercises[0].rpe",
                "content.measurements.body_weight.value",
                "content.measurements.body_fat_percent",
                "content.measurements.girths[1].site",
                "content.measurements.girths[1].value",
                "content.measurements.resting_heart_rate",
                "content.measurements.blood_pressure",
            ]
        );
    }

    #[test]
    fn a_unit_must_be_given_for_every_quantity() {
        let mut violations = Violations::new();
        measurements(
            &mut violations,
            "m",
            &pb::Measurements {
                body_weight: Some(pb::Weight {
                    value: 70.0,
                    unit: 0,
                }),
                girths: vec![pb::Girth {
                    site: 0,
                    value: 30.0,
                    unit: 9,
                }],
                ..Default::default()
            },
        );
        assert_eq!(
            fields(&violations),
            ["m.body_weight.unit", "m.girths[0].site", "m.girths[0].unit"]
        );
    }

    fn date(year: i32, month: i32, day: i32) -> Option<Date> {
        Some(Date { year, month, day })
    }

    #[test]
    fn a_plan_needs_a_name_a_start_a_pace_and_an_end_not_before_its_start() {
        let mut violations = Violations::new();
        let header = plan(
            &mut violations,
            "plan",
            &pb::TrainingPlan {
                name: "Base\nbuilding".into(),
                start_date: date(2026, 12, 1),
                end_date: date(2026, 11, 1),
                sessions_per_week: 15,
                status: 42,
                ..Default::default()
            },
        );
        assert!(header.is_none());
        assert_eq!(
            fields(&violations),
            [
                "plan.name",
                "plan.end_date",
                "plan.sessions_per_week",
                "plan.status"
            ]
        );
        let mut violations = Violations::new();
        let header = plan(
            &mut violations,
            "plan",
            &pb::TrainingPlan {
                name: "Base building".into(),
                start_date: date(2026, 12, 1),
                sessions_per_week: 3,
                weeks: vec![pb::PlanWeek {
                    sessions: vec![pb::PlannedSession {
                        name: "Lower".into(),
                        exercises: vec![squat()],
                    }],
                }],
                ..Default::default()
            },
        )
        .expect("valid");
        assert_eq!(header.status, PlanStatus::Active);
        assert_eq!(header.sessions_per_week, 3);
    }
}
