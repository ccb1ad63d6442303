//! Between the contract's messages and the domain: every request field is
//! validated here (all bad fields reported at once), and every response is
//! encoded here.

use fitflow_api::money::{CURRENCY, cad_amount, two_decimals};
use fitflow_api::text::{TextKind, check_text, optional_uuid, uuid};
use fitflow_api::time::{parse_timestamp, to_timestamp};
use fitflow_error::Violations;
use fitflow_proto::scheduling as pb;
use fitflow_proto::types::Money;
use rust_decimal::Decimal;

use crate::calendar::{AppointmentView, NewBooking, NewClassType};
use crate::domain::{self, Category, Location, Status};
use crate::repo::ClassTypeRow;

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

fn money_out(value: Option<Decimal>) -> Option<Money> {
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
    NewBooking {
        trainer_id,
        class_type_id: class_type_id.unwrap_or_default(),
        start_time: start_time.unwrap_or_default(),
        location,
        location_details: value.location_details.clone(),
        client_id,
        client_price,
    }
}

/// The wire form of a class type.
pub(crate) fn class_type_out(row: ClassTypeRow) -> pb::ClassType {
    let category = match Category::parse(&row.category) {
        Some(Category::Group) => pb::ClassCategory::Group,
        Some(Category::Individual) => pb::ClassCategory::Individual,
        Some(Category::Trial) => pb::ClassCategory::Trial,
        None => pb::ClassCategory::Unspecified,
    };
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
    let status = match Status::parse(&row.status) {
        Some(Status::Scheduled) => pb::AppointmentStatus::Scheduled,
        Some(Status::Completed) => pb::AppointmentStatus::Completed,
        Some(Status::Cancelled) => pb::AppointmentStatus::Cancelled,
        Some(Status::NoShow) => pb::AppointmentStatus::NoShow,
        None => pb::AppointmentStatus::Unspecified,
    };
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
    }
}
