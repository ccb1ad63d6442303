//! Between the contract's messages and the domain: every request field is
//! validated here (all bad fields reported at once), and every response is
//! encoded here.

mod availability;
mod billing;

pub(crate) use availability::{exception_out, new_exception, new_rule, rule_out, slot_out};
pub(crate) use billing::{
    BillableToken, billable_item_out, billing_period, payment_change, payment_status_out,
    studio_session_out, studio_sessions_filter,
};

use fitflow_api::field_mask::fields_to_update;
use fitflow_api::money::{CURRENCY, cad_amount, two_decimals};
use fitflow_api::text::{TextKind, check_text, optional_uuid, uuid};
use fitflow_api::time::{parse_timestamp, to_timestamp};
use fitflow_error::Violations;
use fitflow_proto::scheduling as pb;
use fitflow_proto::types::Money;
use rust_decimal::Decimal;

use crate::calendar::{
    AppointmentChange, AppointmentView, NewBooking, NewClassType, PolicyHolder, RosterSession,
};
use crate::domain::Participation;
use crate::domain::{self, Category, Location, Status};
use crate::repo::{ClassTypeRow, ParticipantRow};
use crate::series::scope::Scope;

fn money(violations: &mut Violations, path: &str, value: Option<&Money>) -> Option<Decimal> {
    let value = value?;
    match cad_amount(&value.currency_code, &value.amount) {
        Ok(amount) => Some(amount),
        Err(problem) => {
            violations.add(path, problem);
            None
        }
    }
}

pub(super) fn money_out(value: Option<Decimal>) -> Option<Money> {
    value.map(|amount| Money {
        currency_code: CURRENCY.to_owned(),
        amount: two_decimals(amount),
    })
}

fn required_line(violations: &mut Violations, path: &str, value: &str, max: usize) -> String {
    if value.trim().is_empty() {
        violations.add(path, "is required");
    }
    check_text(violations, path, value, TextKind::Line, max);
    value.trim().to_owned()
}

/// The class type a create request describes.
pub(crate) fn new_class_type(violations: &mut Violations, value: &pb::ClassType) -> NewClassType {
    let trainer_id = optional_uuid(violations, "class_type.trainer_id", &value.trainer_id);
    let name = required_line(violations, "class_type.name", &value.name, 100);
    let category = match pb::ClassCategory::try_from(value.category) {
        Ok(pb::ClassCategory::Group) => Category::Group,
        Ok(pb::ClassCategory::Individual) => Category::Individual,
        Ok(pb::ClassCategory::Trial) => Category::Trial,
        _ => {
            violations.add("class_type.category", "must be GROUP, INDIVIDUAL or TRIAL");
            Category::Individual
        }
    };
    if !(5..=720).contains(&value.duration_minutes) {
        violations.add("class_type.duration_minutes", "must be 5 to 720 minutes");
    }
    let max_participants = if value.max_participants == 0 {
        1
    } else {
        value.max_participants
    };
    if !(1..=500).contains(&max_participants) {
        violations.add("class_type.max_participants", "must be 1 to 500");
    } else if category != Category::Group && max_participants != 1 {
        violations.add(
            "class_type.max_participants",
            "must be 1 for individual and trial classes",
        );
    }
    let default_rate = money(
        violations,
        "class_type.default_rate",
        value.default_rate.as_ref(),
    );
    check_text(
        violations,
        "class_type.description",
        &value.description,
        TextKind::FreeText,
        2000,
    );
    let color = domain::color(&value.color).unwrap_or_else(|| {
        violations.add("class_type.color", "must be \"#RRGGBB\" or empty");
        String::new()
    });
    let active = match pb::ClassTypeStatus::try_from(value.status) {
        Ok(pb::ClassTypeStatus::Unspecified | pb::ClassTypeStatus::Active) => true,
        Ok(pb::ClassTypeStatus::Inactive) => false,
        Err(_) => {
            violations.add("class_type.status", "is not a ClassTypeStatus");
            true
        }
    };
    NewClassType {
        trainer_id,
        name,
        category,
        duration_minutes: value.duration_minutes,
        max_participants,
        default_rate,
        description: value.description.clone(),
        color,
        active,
    }
}

/// The booking a request describes.
pub(crate) fn new_booking(violations: &mut Violations, value: &pb::Appointment) -> NewBooking {
    let trainer_id = optional_uuid(violations, "appointment.trainer_id", &value.trainer_id);
    let class_type_id = uuid(
        violations,
        "appointment.class_type_id",
        &value.class_type_id,
    );
    let start_time = match value.start_time.as_ref() {
        None => {
            violations.add("appointment.start_time", "is required");
            None
        }
        Some(timestamp) => match parse_timestamp(timestamp) {
            Some(start) if domain::on_whole_minute(start) => Some(start),
            Some(_) => {
                violations.add("appointment.start_time", "must be on a whole minute");
                None
            }
            None => {
                violations.add(
                    "appointment.start_time",
                    "must be a valid time within years 1 to 9999",
                );
                None
            }
        },
    };
    let location = match pb::LocationType::try_from(value.location_type) {
        Ok(pb::LocationType::Unspecified | pb::LocationType::Studio) => Location::Studio,
        Ok(pb::LocationType::Online) => Location::Online,
        Ok(pb::LocationType::ClientLocation) => Location::ClientLocation,
        Err(_) => {
            violations.add("appointment.location_type", "is not a LocationType");
            Location::Studio
        }
    };
    check_text(
        violations,
        "appointment.location_details",
        &value.location_details,
        TextKind::FreeText,
        500,
    );
    let client_id = optional_uuid(violations, "appointment.client_id", &value.client_id);
    let client_price = money(
        violations,
        "appointment.client_price",
        value.client_price.as_ref(),
    );
    let studio_id = optional_uuid(violations, "appointment.studio_id", &value.studio_id);
    NewBooking {
        trainer_id,
        class_type_id: class_type_id.unwrap_or_default(),
        start_time: start_time.unwrap_or_default(),
        location,
        location_details: value.location_details.clone(),
        client_id,
        client_price,
        studio_id,
    }
}

/// The scope a request names; THIS when unspecified.
pub(crate) fn series_scope(violations: &mut Violations, value: i32) -> Scope {
    match pb::SeriesScope::try_from(value) {
        Ok(pb::SeriesScope::Unspecified | pb::SeriesScope::This) => Scope::This,
        Ok(pb::SeriesScope::ThisAndFollowing) => Scope::ThisAndFollowing,
        Ok(pb::SeriesScope::All) => Scope::All,
        Err(_) => {
            violations.add("scope", "is not a SeriesScope");
            Scope::This
        }
    }
}

/// The fields UpdateAppointment may change, as named in `update_mask`.
const UPDATABLE: [&str; 4] = [
    "start_time",
    "location_type",
    "location_details",
    "client_price",
];

/// The change an UpdateAppointment request describes: the fields its mask
/// names (or, with an empty mask, those it populated), validated.
pub(crate) fn appointment_change(
    violations: &mut Violations,
    value: &pb::Appointment,
    mask_paths: &[String],
) -> AppointmentChange {
    let mut populated = Vec::new();
    if value.start_time.is_some() {
        populated.push("start_time");
    }
    if value.location_type != 0 {
        populated.push("location_type");
    }
    if !value.location_details.is_empty() {
        populated.push("location_details");
    }
    if value.client_price.is_some() {
        populated.push("client_price");
    }
    let fields = fields_to_update(violations, mask_paths, &UPDATABLE, &populated);
    let mut change = AppointmentChange::default();
    if fields.contains("start_time") {
        change.start_time = match value.start_time.as_ref().map(parse_timestamp) {
            None => {
                violations.add("appointment.start_time", "is required when in update_mask");
                None
            }
            Some(Some(start)) if domain::on_whole_minute(start) => Some(start),
            Some(Some(_)) => {
                violations.add("appointment.start_time", "must be on a whole minute");
                None
            }
            Some(None) => {
                violations.add(
                    "appointment.start_time",
                    "must be a valid time within years 1 to 9999",
                );
                None
            }
        };
    }
    if fields.contains("location_type") {
        change.location = Some(match pb::LocationType::try_from(value.location_type) {
            Ok(pb::LocationType::Unspecified | pb::LocationType::Studio) => Location::Studio,
            Ok(pb::LocationType::Online) => Location::Online,
            Ok(pb::LocationType::ClientLocation) => Location::ClientLocation,
            Err(_) => {
                violations.add("appointment.location_type", "is not a LocationType");
                Location::Studio
            }
        });
    }
    if fields.contains("location_details") {
        check_text(
            violations,
            "appointment.location_details",
            &value.location_details,
            TextKind::FreeText,
            500,
        );
        change.location_details = Some(value.location_details.clone());
    }
    if fields.contains("client_price") {
        change.client_price = Some(money(
            violations,
            "appointment.client_price",
            value.client_price.as_ref(),
        ));
    }
    change
}

/// The wire form of a class type.
/// The wire form of a stored class category.
pub(crate) fn category_out(stored: &str) -> pb::ClassCategory {
    match Category::parse(stored) {
        Some(Category::Group) => pb::ClassCategory::Group,
        Some(Category::Individual) => pb::ClassCategory::Individual,
        Some(Category::Trial) => pb::ClassCategory::Trial,
        None => pb::ClassCategory::Unspecified,
    }
}

/// The wire form of a stored appointment status.
fn status_out(stored: &str) -> pb::AppointmentStatus {
    match Status::parse(stored) {
        Some(Status::Scheduled) => pb::AppointmentStatus::Scheduled,
        Some(Status::Completed) => pb::AppointmentStatus::Completed,
        Some(Status::Cancelled) => pb::AppointmentStatus::Cancelled,
        Some(Status::NoShow) => pb::AppointmentStatus::NoShow,
        None => pb::AppointmentStatus::Unspecified,
    }
}

/// The wire form of a participation status.
fn participation_out(stored: &str) -> pb::ParticipantStatus {
    match Participation::parse(stored) {
        Some(Participation::Confirmed) => pb::ParticipantStatus::Confirmed,
        Some(Participation::Waitlisted) => pb::ParticipantStatus::Waitlisted,
        Some(Participation::Cancelled) => pb::ParticipantStatus::Cancelled,
        None => pb::ParticipantStatus::Unspecified,
    }
}

pub(crate) fn class_type_out(row: ClassTypeRow) -> pb::ClassType {
    let category = category_out(&row.category);
    let status = if row.status == "active" {
        pb::ClassTypeStatus::Active
    } else {
        pb::ClassTypeStatus::Inactive
    };
    pb::ClassType {
        id: row.id.to_string(),
        trainer_id: row.trainer_id.to_string(),
        name: row.name,
        category: category as i32,
        duration_minutes: row.duration_minutes,
        max_participants: row.max_participants,
        default_rate: money_out(row.default_rate),
        description: row.description,
        color: row.color,
        status: status as i32,
        create_time: Some(to_timestamp(row.created_at)),
    }
}

/// The wire form of an appointment.
pub(crate) fn appointment_out(view: AppointmentView) -> pb::Appointment {
    let row = view.row;
    let status = status_out(&row.status);
    let location = match Location::parse(&row.location_type) {
        Some(Location::Studio) | None => pb::LocationType::Studio,
        Some(Location::Online) => pb::LocationType::Online,
        Some(Location::ClientLocation) => pb::LocationType::ClientLocation,
    };
    pb::Appointment {
        id: row.id.to_string(),
        trainer_id: row.trainer_id.to_string(),
        class_type_id: row.class_type_id.to_string(),
        start_time: Some(to_timestamp(row.start_time)),
        end_time: Some(to_timestamp(row.end_time)),
        status: status as i32,
        location_type: location as i32,
        location_details: row.location_details,
        client_id: row.client_id.map(|id| id.to_string()).unwrap_or_default(),
        client_price: money_out(row.client_price),
        cancel_time: row.cancelled_at.map(to_timestamp),
        cancel_reason: row.cancel_reason,
        cancelled_by: row
            .cancelled_by
            .map(|id| id.to_string())
            .unwrap_or_default(),
        create_time: Some(to_timestamp(row.created_at)),
        etag: view.etag.as_str().to_owned(),
        penalty_fee: money_out(row.penalty_fee),
        fee_waived: row.fee_waived,
        late_cancel: row.late_cancel,
        client_attended: row.client_attended,
        series_id: row.series_id.map(|id| id.to_string()).unwrap_or_default(),
        studio_id: row.studio_id.map(|id| id.to_string()).unwrap_or_default(),
    }
}

/// The weekly rule of a series request whose first occurrence starts at
/// `first`, and the zone it names (`None` when `time_zone` is empty: the
/// trainer's zone from tenancy, checked once known); the rule is `None`
/// after recording what is wrong. With a zone, the rule is checked against
/// it here, so every bad field is reported at once.
pub(crate) fn weekly_rule(
    violations: &mut Violations,
    first: Option<chrono::DateTime<chrono::Utc>>,
    time_zone: &str,
    rule: Option<&pb::WeeklyRule>,
) -> (Option<chrono_tz::Tz>, Option<crate::series::RuleRequest>) {
    let mut zone_ok = true;
    let zone = if time_zone.is_empty() {
        None
    } else {
        match time_zone.parse::<chrono_tz::Tz>() {
            Ok(zone) => Some(zone),
            Err(_) => {
                violations.add(
                    "time_zone",
                    "must be an IANA time zone like \"America/Toronto\", or empty for the trainer's",
                );
                zone_ok = false;
                None
            }
        }
    };
    let Some(rule) = rule else {
        violations.add("rule", "is required");
        return (zone, None);
    };
    let mut days = Vec::new();
    if rule.days.is_empty() || rule.days.len() > 7 {
        violations.add("rule.days", "must name 1 to 7 weekdays");
    }
    for (index, day) in rule.days.iter().enumerate() {
        use fitflow_proto::google::r#type::DayOfWeek as Day;
        let weekday = match Day::try_from(*day) {
            Ok(Day::Monday) => chrono::Weekday::Mon,
            Ok(Day::Tuesday) => chrono::Weekday::Tue,
            Ok(Day::Wednesday) => chrono::Weekday::Wed,
            Ok(Day::Thursday) => chrono::Weekday::Thu,
            Ok(Day::Friday) => chrono::Weekday::Fri,
            Ok(Day::Saturday) => chrono::Weekday::Sat,
            Ok(Day::Sunday) => chrono::Weekday::Sun,
            _ => {
                violations.add(format!("rule.days[{index}]"), "must be MONDAY to SUNDAY");
                continue;
            }
        };
        days.push(weekday);
    }
    if !(0..=4).contains(&rule.interval_weeks) {
        violations.add("rule.interval_weeks", "must be 1 to 4 (0 means 1)");
    }
    let count = usize::try_from(rule.count)
        .ok()
        .filter(|count| *count <= crate::series::MAX_OCCURRENCES);
    if count.is_none() {
        violations.add("rule.count", "must be 0 to 100");
    }
    let until = fitflow_api::time::optional_date(
        violations,
        "rule.until",
        rule.until
            .as_ref()
            .map(|date| fitflow_api::time::CivilDate {
                year: date.year,
                month: date.month,
                day: date.day,
            }),
    );
    let Some(first) = first else {
        return (zone, None);
    };
    let request = crate::series::RuleRequest {
        first,
        days,
        interval_weeks: u32::try_from(rule.interval_weeks.max(1)).unwrap_or(1),
        until,
        count: count.filter(|count| *count > 0),
    };
    if !zone_ok {
        return (None, None);
    }
    if let Some(zone) = zone
        && !request.days.is_empty()
        && let Err(problems) = request.in_zone(zone)
    {
        for problem in problems {
            violations.add(problem.field, problem.description);
        }
    }
    (zone, Some(request))
}

/// The policy a request describes, and whose: a trainer's (the caller when
/// none is named) or, with `studio_id`, a studio's override.
pub(crate) fn policy_in(
    violations: &mut Violations,
    value: &pb::CancellationPolicy,
) -> (PolicyHolder, crate::domain::Policy) {
    let trainer_id = optional_uuid(violations, "policy.trainer_id", &value.trainer_id);
    let studio_id = optional_uuid(violations, "policy.studio_id", &value.studio_id);
    if !(0..=168).contains(&value.late_cancel_hours) {
        violations.add("policy.late_cancel_hours", "must be 0 to 168");
    }
    let policy = crate::domain::Policy {
        late_cancel_hours: value.late_cancel_hours,
        late_cancel_fee: money(
            violations,
            "policy.late_cancel_fee",
            value.late_cancel_fee.as_ref(),
        ),
        no_show_fee: money(violations, "policy.no_show_fee", value.no_show_fee.as_ref()),
    };
    let holder = match studio_id {
        Some(studio_id) => PolicyHolder::Studio(studio_id),
        None => PolicyHolder::Trainer(trainer_id),
    };
    (holder, policy)
}

/// The wire form of a policy and whose it is.
pub(crate) fn policy_out(
    holder: PolicyHolder,
    policy: crate::domain::Policy,
) -> pb::CancellationPolicy {
    let (trainer_id, studio_id) = match holder {
        PolicyHolder::Trainer(trainer) => (trainer, None),
        PolicyHolder::Studio(studio) => (None, Some(studio)),
    };
    pb::CancellationPolicy {
        trainer_id: trainer_id.map(|id| id.to_string()).unwrap_or_default(),
        late_cancel_hours: policy.late_cancel_hours,
        late_cancel_fee: money_out(policy.late_cancel_fee),
        no_show_fee: money_out(policy.no_show_fee),
        studio_id: studio_id.map(|id| id.to_string()).unwrap_or_default(),
    }
}

/// The attendance a request lists: each client once, at most 500.
pub(crate) fn attendance(
    violations: &mut Violations,
    values: &[pb::Attendance],
) -> Vec<crate::calendar::Attended> {
    if values.len() > 500 {
        violations.add("attendance", "must hold at most 500 entries");
        return Vec::new();
    }
    let mut seen = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        let path = format!("attendance[{index}].client_id");
        if let Some(client_id) = uuid(violations, &path, &value.client_id) {
            if seen
                .iter()
                .any(|entry: &crate::calendar::Attended| entry.client_id == client_id)
            {
                violations.add(&path, "names a client already listed");
            } else {
                seen.push(crate::calendar::Attended {
                    client_id,
                    attended: value.attended,
                });
            }
        }
    }
    seen
}

/// The wire form of a participant.
pub(crate) fn participant_out(row: ParticipantRow) -> pb::Participant {
    let status = participation_out(&row.status);
    pb::Participant {
        appointment_id: row.appointment_id.to_string(),
        client_id: row.client_id.to_string(),
        status: status as i32,
        position: row.position,
        join_time: Some(to_timestamp(row.joined_at)),
    }
}

/// The wire form of a roster's session: names and attendance, nothing else
/// of a client.
pub(crate) fn roster_session_out(session: RosterSession) -> pb::RosterSession {
    let row = session.row;
    pb::RosterSession {
        appointment_id: row.id.to_string(),
        trainer_id: row.trainer_id.to_string(),
        class_type_id: row.class_type_id.to_string(),
        class_type_name: row.class_type_name,
        category: category_out(&row.category) as i32,
        max_participants: row.max_participants,
        start_time: Some(to_timestamp(row.start_time)),
        end_time: Some(to_timestamp(row.end_time)),
        status: status_out(&row.status) as i32,
        clients: session
            .clients
            .into_iter()
            .map(|client| {
                let (first_name, last_name) = client.names.unwrap_or_default();
                pb::RosterClient {
                    client_id: client.client_id.to_string(),
                    first_name,
                    last_name,
                    status: participation_out(&client.status) as i32,
                    attended: client.attended,
                }
            })
            .collect(),
    }
}
