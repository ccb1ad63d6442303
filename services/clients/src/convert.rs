//! Between the contract's messages and the domain: every request field is
//! validated here (all bad fields reported at once), and every response is
//! encoded here.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use fitflow_api::canada::{self, Province};
use fitflow_api::text::{TextKind, check_text, text_problem};
use fitflow_api::time::{
    CivilDate, optional_date, required_timestamp, to_civil_date, to_timestamp,
};
use fitflow_error::Violations;
use fitflow_outbox::Purpose;
use fitflow_proto::clients as pb;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::types::PostalAddress;

use crate::book::{ClientView, Contact, ShareView, SummaryView};
use crate::domain::{
    AccessLevel, Address, ClientRecord, Consent, EmergencyContact, MedicalInfo, Source, Status,
};

/// Most entries in one medical list, and in preferences.
const MAX_ENTRIES: usize = 50;
const MAX_PREFERENCES: usize = 32;
/// Consent given more than this far in the future is a clock error.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

fn line(violations: &mut Violations, path: &str, value: &str, max: usize) -> String {
    check_text(violations, path, value, TextKind::Line, max);
    value.trim().to_owned()
}

fn required_line(violations: &mut Violations, path: &str, value: &str, max: usize) -> String {
    if value.trim().is_empty() {
        violations.add(path, "is required");
    }
    line(violations, path, value, max)
}

fn email(violations: &mut Violations, path: &str, value: &str) -> Option<String> {
    // Checked before the trim, which would drop a leading or trailing
    // control character (vertical tab, next line) without a word.
    if !check_text(violations, path, value, TextKind::Line, 254) {
        return None;
    }
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Err(problem) = canada::email(value) {
        violations.add(path, problem);
    }
    Some(value.to_lowercase())
}

fn phone(violations: &mut Violations, path: &str, value: &str) -> Option<String> {
    if !check_text(violations, path, value, TextKind::Line, 30) {
        return None;
    }
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Err(problem) = canada::phone(value) {
        violations.add(path, problem);
    }
    Some(value.to_owned())
}

fn date_of_birth(
    violations: &mut Violations,
    path: &str,
    value: Option<&Date>,
) -> Option<NaiveDate> {
    let date = optional_date(
        violations,
        path,
        value.map(|date| CivilDate {
            year: date.year,
            month: date.month,
            day: date.day,
        }),
    )?;
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default();
    if date < earliest || date > Utc::now().date_naive() {
        violations.add(path, "must be between 1900-01-01 and today");
    }
    Some(date)
}

fn emergency_contact(
    violations: &mut Violations,
    path: &str,
    value: Option<&pb::EmergencyContact>,
) -> Option<EmergencyContact> {
    let value = value?;
    let name = required_line(violations, &format!("{path}.name"), &value.name, 200);
    let phone = if value.phone.trim().is_empty() {
        violations.add(format!("{path}.phone"), "is required");
        String::new()
    } else {
        phone(violations, &format!("{path}.phone"), &value.phone).unwrap_or_default()
    };
    let relationship = line(
        violations,
        &format!("{path}.relationship"),
        &value.relationship,
        100,
    );
    Some(EmergencyContact {
        name,
        phone,
        relationship,
    })
}

fn entries(violations: &mut Violations, path: &str, values: &[String]) -> Vec<String> {
    if values.len() > MAX_ENTRIES {
        violations.add(path, format!("must hold at most {MAX_ENTRIES} entries"));
        return Vec::new();
    }
    values
        .iter()
        .enumerate()
        .map(|(index, value)| required_line(violations, &format!("{path}[{index}]"), value, 500))
        .collect()
}

fn medical_info(
    violations: &mut Violations,
    path: &str,
    value: Option<&pb::MedicalInfo>,
) -> Option<MedicalInfo> {
    let value = value?;
    Some(MedicalInfo {
        conditions: entries(violations, &format!("{path}.conditions"), &value.conditions),
        medications: entries(
            violations,
            &format!("{path}.medications"),
            &value.medications,
        ),
        allergies: entries(violations, &format!("{path}.allergies"), &value.allergies),
    })
}

fn address(
    violations: &mut Violations,
    path: &str,
    value: Option<&PostalAddress>,
) -> Option<Address> {
    let value = value?;
    let street_path = format!("{path}.street");
    if value.street.trim().is_empty() {
        violations.add(&street_path, "is required");
    }
    check_text(
        violations,
        &street_path,
        &value.street,
        TextKind::FreeText,
        200,
    );
    let city = required_line(violations, &format!("{path}.city"), &value.city, 100);
    let province = Province::from_proto(value.province);
    if province.is_none() {
        violations.add(
            format!("{path}.province"),
            "is required: a Canadian province or territory",
        );
    }
    if !(value.country_code.is_empty() || value.country_code == "CA") {
        violations.add(format!("{path}.country_code"), "must be \"CA\" (or empty)");
    }
    let postal_code = match canada::postal_code(&value.postal_code, province) {
        Ok(code) => code,
        Err(problem) => {
            violations.add(format!("{path}.postal_code"), problem);
            String::new()
        }
    };
    Some(Address {
        street: value.street.trim().to_owned(),
        city,
        province: province.map(Province::code).unwrap_or_default().to_owned(),
        postal_code,
    })
}

fn preferences(
    violations: &mut Violations,
    path: &str,
    value: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    if value.len() > MAX_PREFERENCES {
        violations.add(path, format!("must hold at most {MAX_PREFERENCES} entries"));
        return BTreeMap::new();
    }
    for (key, entry) in value {
        let key_ok = (1..=64).contains(&key.len())
            && key
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
        if !key_ok {
            violations.add(path, "keys must be 1 to 64 letters, digits or _");
            continue;
        }
        if let Some(problem) = text_problem(entry, TextKind::FreeText, 1000) {
            violations.add(format!("{path}[{key}]"), problem);
        }
    }
    value.clone()
}

fn source(violations: &mut Violations, path: &str, value: i32) -> Source {
    match pb::ClientSource::try_from(value) {
        Ok(pb::ClientSource::Unspecified) => Source::Unspecified,
        Ok(pb::ClientSource::Referral) => Source::Referral,
        Ok(pb::ClientSource::WalkIn) => Source::WalkIn,
        Ok(pb::ClientSource::Online) => Source::Online,
        Err(_) => {
            violations.add(path, "is not a ClientSource");
            Source::Unspecified
        }
    }
}

fn status(violations: &mut Violations, path: &str, value: i32, on_create: bool) -> Status {
    match pb::ClientStatus::try_from(value) {
        Ok(pb::ClientStatus::Unspecified) if on_create => Status::Active,
        Ok(pb::ClientStatus::Active) => Status::Active,
        Ok(pb::ClientStatus::Inactive) => Status::Inactive,
        Ok(pb::ClientStatus::Archived) => Status::Archived,
        Ok(pb::ClientStatus::Unspecified) | Err(_) => {
            violations.add(path, "must be ACTIVE, INACTIVE or ARCHIVED");
            Status::Active
        }
    }
}

fn consent(
    violations: &mut Violations,
    path: &str,
    value: Option<&pb::HealthConsent>,
) -> Option<Consent> {
    let value = value?;
    let text_version = required_line(
        violations,
        &format!("{path}.text_version"),
        &value.text_version,
        50,
    );
    let time_path = format!("{path}.consent_time");
    let consent_time = required_timestamp(violations, &time_path, value.consent_time.as_ref())?;
    if consent_time > Utc::now() + CLOCK_SKEW {
        violations.add(&time_path, "must not be in the future");
    }
    Some(Consent {
        text_version,
        consent_time,
    })
}

/// The record a request's `client` describes; on create every field is
/// read, on update only those in `fields` (the others keep their values).
pub(crate) fn record_in(
    violations: &mut Violations,
    value: &pb::Client,
    fields: Option<&[&'static str]>,
) -> ClientRecord {
    let wants = |field: &str| fields.is_none_or(|fields| fields.contains(&field));
    let on_create = fields.is_none();
    let mut record = ClientRecord::default();
    if wants("first_name") {
        record.first_name = required_line(violations, "client.first_name", &value.first_name, 100);
    }
    if wants("last_name") {
        record.last_name = required_line(violations, "client.last_name", &value.last_name, 100);
    }
    if wants("email") {
        record.email = email(violations, "client.email", &value.email);
    }
    if wants("phone") {
        record.phone = phone(violations, "client.phone", &value.phone);
    }
    if wants("date_of_birth") {
        record.date_of_birth = date_of_birth(
            violations,
            "client.date_of_birth",
            value.date_of_birth.as_ref(),
        );
    }
    if wants("emergency_contact") {
        record.emergency_contact = emergency_contact(
            violations,
            "client.emergency_contact",
            value.emergency_contact.as_ref(),
        );
    }
    if wants("medical_info") {
        record.medical_info = medical_info(
            violations,
            "client.medical_info",
            value.medical_info.as_ref(),
        );
    }
    if wants("goals") {
        check_text(
            violations,
            "client.goals",
            &value.goals,
            TextKind::FreeText,
            5000,
        );
        record.goals = (!value.goals.trim().is_empty()).then(|| value.goals.clone());
    }
    if wants("address") {
        record.address = address(violations, "client.address", value.address.as_ref());
    }
    if wants("preferences") {
        record.preferences = preferences(violations, "client.preferences", &value.preferences);
    }
    if wants("source") {
        record.source = source(violations, "client.source", value.source);
    }
    if wants("status") {
        record.status = status(violations, "client.status", value.status, on_create);
    }
    if wants("health_consent") {
        record.consent = consent(
            violations,
            "client.health_consent",
            value.health_consent.as_ref(),
        );
    }
    record
}

/// The access purpose of a read; required.
pub(crate) fn purpose(violations: &mut Violations, path: &str, value: i32) -> Purpose {
    match pb::AccessPurpose::try_from(value) {
        Ok(pb::AccessPurpose::Treatment) => Purpose::Treatment,
        Ok(pb::AccessPurpose::Payment) => Purpose::Payment,
        Ok(pb::AccessPurpose::Operations) => Purpose::Operations,
        Ok(pb::AccessPurpose::Unspecified) | Err(_) => {
            violations.add(path, "is required: TREATMENT, PAYMENT or OPERATIONS");
            Purpose::Unspecified
        }
    }
}

/// The purpose of a contact read: PAYMENT (an invoice) or OPERATIONS (a
/// reminder); a contact is never read for treatment.
pub(crate) fn contact_purpose(violations: &mut Violations, path: &str, value: i32) -> Purpose {
    match pb::AccessPurpose::try_from(value) {
        Ok(pb::AccessPurpose::Payment) => Purpose::Payment,
        Ok(pb::AccessPurpose::Operations) => Purpose::Operations,
        _ => {
            violations.add(path, "is required: PAYMENT or OPERATIONS");
            Purpose::Unspecified
        }
    }
}

/// Most clients named in one `ListRosterNames`.
pub(crate) const MAX_ROSTER_IDS: usize = 500;

/// The client ids of a roster page: 1 to [`MAX_ROSTER_IDS`] UUIDs, each once.
pub(crate) fn roster_ids(violations: &mut Violations, values: &[String]) -> Vec<uuid::Uuid> {
    if values.is_empty() || values.len() > MAX_ROSTER_IDS {
        violations.add("client_ids", "must name 1 to 500 clients");
        return Vec::new();
    }
    let mut ids = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        match uuid::Uuid::try_parse(value) {
            Ok(id) if ids.contains(&id) => {
                violations.add(format!("client_ids[{index}]"), "is named twice");
            }
            Ok(id) => ids.push(id),
            Err(_) => violations.add(format!("client_ids[{index}]"), "must be a UUID"),
        }
    }
    ids
}

/// Who a client is shared with, as the request names them.
pub(crate) enum Grantee {
    /// By trainer id.
    Id(uuid::Uuid),
    /// By the (normalised) email of their account.
    Email(String),
}

/// The grantee of a share: exactly one of `trainer_id` and `trainer_email`
/// (a nil id, refused in `violations`, when neither or both are usable).
pub(crate) fn grantee(
    violations: &mut Violations,
    trainer_id: &str,
    trainer_email: &str,
) -> Grantee {
    match (trainer_id.is_empty(), trainer_email.is_empty()) {
        (false, false) => {
            violations.add(
                "trainer_email",
                "set either trainer_id or trainer_email, not both",
            );
            Grantee::Id(uuid::Uuid::nil())
        }
        (true, false) => match crate::domain::grantee_email(trainer_email) {
            Ok(email) => Grantee::Email(email),
            Err(problem) => {
                violations.add("trainer_email", problem);
                Grantee::Id(uuid::Uuid::nil())
            }
        },
        _ => Grantee::Id(
            fitflow_api::text::uuid(violations, "trainer_id", trainer_id).unwrap_or_default(),
        ),
    }
}

/// A share's level: READ, WRITE or ADMIN.
pub(crate) fn share_level(violations: &mut Violations, path: &str, value: i32) -> AccessLevel {
    match pb::AccessLevel::try_from(value) {
        Ok(pb::AccessLevel::Read) => AccessLevel::Read,
        Ok(pb::AccessLevel::Write) => AccessLevel::Write,
        Ok(pb::AccessLevel::Admin) => AccessLevel::Admin,
        _ => {
            violations.add(path, "must be READ, WRITE or ADMIN");
            AccessLevel::Read
        }
    }
}

/// The level an access check asks for (READ when unspecified).
pub(crate) fn needed_level(violations: &mut Violations, path: &str, value: i32) -> AccessLevel {
    match pb::AccessLevel::try_from(value) {
        Ok(pb::AccessLevel::Unspecified | pb::AccessLevel::Read) => AccessLevel::Read,
        Ok(pb::AccessLevel::Write) => AccessLevel::Write,
        Ok(pb::AccessLevel::Admin) => AccessLevel::Admin,
        Ok(pb::AccessLevel::Owner) => AccessLevel::Owner,
        Err(_) => {
            violations.add(path, "is not an AccessLevel");
            AccessLevel::Read
        }
    }
}

/// The wire form of a level.
pub(crate) fn level_out(level: Option<AccessLevel>) -> i32 {
    let value = match level {
        None => pb::AccessLevel::Unspecified,
        Some(AccessLevel::Read) => pb::AccessLevel::Read,
        Some(AccessLevel::Write) => pb::AccessLevel::Write,
        Some(AccessLevel::Admin) => pb::AccessLevel::Admin,
        Some(AccessLevel::Owner) => pb::AccessLevel::Owner,
    };
    value as i32
}

fn source_out(source: Source) -> i32 {
    let value = match source {
        Source::Unspecified => pb::ClientSource::Unspecified,
        Source::Referral => pb::ClientSource::Referral,
        Source::WalkIn => pb::ClientSource::WalkIn,
        Source::Online => pb::ClientSource::Online,
    };
    value as i32
}

fn status_out(status: Status) -> i32 {
    let value = match status {
        Status::Active => pb::ClientStatus::Active,
        Status::Inactive => pb::ClientStatus::Inactive,
        Status::Archived => pb::ClientStatus::Archived,
    };
    value as i32
}

/// The wire form of an address.
pub(crate) fn address_out(address: &Address) -> PostalAddress {
    PostalAddress {
        street: address.street.clone(),
        city: address.city.clone(),
        province: address
            .province()
            .map(Province::to_proto)
            .unwrap_or_default(),
        postal_code: address.postal_code.clone(),
        country_code: "CA".to_owned(),
    }
}

/// The wire form of a whole client.
pub(crate) fn client_out(view: ClientView) -> pb::Client {
    let record = view.record;
    let civil = record.date_of_birth.map(to_civil_date);
    pb::Client {
        id: view.id.to_string(),
        owner_trainer_id: view.owner.to_string(),
        first_name: record.first_name,
        last_name: record.last_name,
        email: record.email.unwrap_or_default(),
        phone: record.phone.unwrap_or_default(),
        date_of_birth: civil.map(|date| Date {
            year: date.year,
            month: date.month,
            day: date.day,
        }),
        emergency_contact: record
            .emergency_contact
            .map(|contact| pb::EmergencyContact {
                name: contact.name,
                phone: contact.phone,
                relationship: contact.relationship,
            }),
        medical_info: record.medical_info.map(|medical| pb::MedicalInfo {
            conditions: medical.conditions,
            medications: medical.medications,
            allergies: medical.allergies,
        }),
        goals: record.goals.unwrap_or_default(),
        address: record.address.as_ref().map(address_out),
        preferences: record.preferences,
        source: source_out(record.source),
        status: status_out(record.status),
        health_consent: record.consent.map(|consent| pb::HealthConsent {
            text_version: consent.text_version,
            consent_time: Some(to_timestamp(consent.consent_time)),
        }),
        create_time: Some(to_timestamp(view.created_at)),
        update_time: Some(to_timestamp(view.updated_at)),
        delete_time: view.deleted_at.map(to_timestamp),
        etag: view.etag.as_str().to_owned(),
        caller_access: level_out(Some(view.level)),
    }
}

/// The wire form of a list entry.
pub(crate) fn summary_out(view: SummaryView) -> pb::ClientSummary {
    pb::ClientSummary {
        id: view.id.to_string(),
        owner_trainer_id: view.owner.to_string(),
        first_name: view.first_name,
        last_name: view.last_name,
        status: status_out(view.status),
        source: source_out(view.source),
        create_time: Some(to_timestamp(view.created_at)),
        delete_time: view.deleted_at.map(to_timestamp),
        caller_access: level_out(Some(view.level)),
    }
}

/// The wire form of a share.
pub(crate) fn share_out(view: ShareView) -> pb::ClientShare {
    pb::ClientShare {
        client_id: view.client_id.to_string(),
        trainer_id: view.trainer_id.to_string(),
        level: level_out(Some(view.level)),
        granted_by: view.granted_by.to_string(),
        grant_time: Some(to_timestamp(view.granted_at)),
    }
}

/// The wire form of a contact.
pub(crate) fn contact_out(contact: Contact) -> pb::GetContactResponse {
    pb::GetContactResponse {
        first_name: contact.first_name,
        last_name: contact.last_name,
        email: contact.email.unwrap_or_default(),
        address: contact.address.as_ref().map(address_out),
        owner_trainer_id: contact.owner.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> pb::Client {
        pb::Client {
            first_name: "Zoé".to_owned(),
            last_name: "Tremblay".to_owned(),
            ..pb::Client::default()
        }
    }

    #[test]
    fn a_minimal_client_is_valid_and_active() {
        let mut violations = Violations::new();
        let record = record_in(&mut violations, &client(), None);
        assert!(violations.is_empty());
        assert_eq!(record.status, Status::Active);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let mut violations = Violations::new();
        let bad = pb::Client {
            first_name: "Zo\u{0}é".to_owned(),
            last_name: String::new(),
            email: "not-an-email".to_owned(),
            phone: "12".to_owned(),
            date_of_birth: Some(Date {
                year: 1850,
                month: 1,
                day: 1,
            }),
            medical_info: Some(pb::MedicalInfo {
                allergies: vec!["peanuts\u{7}".to_owned()],
                ..pb::MedicalInfo::default()
            }),
            address: Some(PostalAddress {
                street: "1 rue Principale".to_owned(),
                city: "Montréal".to_owned(),
                province: Province::Qc.to_proto(),
                postal_code: "K1A 0B1".to_owned(),
                country_code: String::new(),
            }),
            source: 99,
            ..pb::Client::default()
        };
        let _ = record_in(&mut violations, &bad, None);
        let fields: Vec<String> = violations
            .into_result()
            .expect_err("violations")
            .violations
            .into_iter()
            .map(|violation| violation.field)
            .collect();
        for expected in [
            "client.first_name",
            "client.last_name",
            "client.email",
            "client.phone",
            "client.date_of_birth",
            "client.medical_info.allergies[0]",
            "client.address.postal_code",
            "client.source",
        ] {
            assert!(
                fields.iter().any(|field| field == expected),
                "{expected} in {fields:?}"
            );
        }
    }

    #[test]
    fn an_update_reads_only_the_masked_fields() {
        let mut violations = Violations::new();
        let patch = pb::Client {
            email: "ZOE@Example.CA".to_owned(),
            ..pb::Client::default()
        };
        let record = record_in(&mut violations, &patch, Some(&["email"]));
        assert!(violations.is_empty());
        assert_eq!(record.email.as_deref(), Some("zoe@example.ca"));
    }

    #[test]
    fn a_control_character_a_trim_would_drop_is_refused_in_email_and_phone() {
        for control in ["\u{b}", "\u{85}", "\n", "\t"] {
            let mut violations = Violations::new();
            let bad = pb::Client {
                email: format!("{control}zoe@example.ca"),
                phone: format!("514-555-0100{control}"),
                emergency_contact: Some(pb::EmergencyContact {
                    name: "Paul".to_owned(),
                    phone: format!("{control}514-555-0199"),
                    relationship: String::new(),
                }),
                ..client()
            };
            let _ = record_in(&mut violations, &bad, None);
            let fields: Vec<String> = violations
                .into_result()
                .expect_err("violations")
                .violations
                .into_iter()
                .map(|violation| violation.field)
                .collect();
            assert_eq!(
                fields,
                [
                    "client.email",
                    "client.phone",
                    "client.emergency_contact.phone"
                ],
                "{control:?}"
            );
        }
    }

    #[test]
    fn a_contact_is_read_for_payment_or_operations_only() {
        for refused in [0, pb::AccessPurpose::Treatment as i32, 99] {
            let mut violations = Violations::new();
            contact_purpose(&mut violations, "purpose", refused);
            assert!(!violations.is_empty(), "{refused}");
        }
        let mut violations = Violations::new();
        assert_eq!(
            contact_purpose(
                &mut violations,
                "purpose",
                pb::AccessPurpose::Payment as i32
            ),
            Purpose::Payment
        );
        assert!(violations.is_empty());
    }

    #[test]
    fn a_read_needs_a_purpose() {
        let mut violations = Violations::new();
        assert_eq!(purpose(&mut violations, "purpose", 0), Purpose::Unspecified);
        assert!(!violations.is_empty());
    }
}
