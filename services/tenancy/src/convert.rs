//! Between the wire and the domain: every request field validated (with its
//! path in the request), every response field encoded.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use fitflow_api::field_mask::{self, FieldSet};
use fitflow_api::text::{TextKind, check_text};
use fitflow_api::time::{CivilDate, optional_date, to_civil_date, to_timestamp};
use fitflow_error::Violations;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::tenancy as pb;
use fitflow_proto::types::{Money, PostalAddress};
use rust_decimal::Decimal;

use crate::directory::{ContractView, StudioPatch, StudioView, TrainerPatch, TrainerView};
use crate::domain::{
    Address, BankAccount, ClassCategory, ContractState, PaymentTerms, Rates, StudioProfile,
    StudioStatus, SupplierStatus, TaxProfile, TrainerProfile,
};
use crate::formats::{self, CURRENCY, Province};
use crate::repo::{RateRow, TeamInvitationRow};

/// Fields of `Trainer` an update may name.
pub(crate) const TRAINER_UPDATABLE: &[&str] = &[
    "business_name",
    "license_number",
    "specializations",
    "bio",
    "hourly_rate",
    "commission_rate",
    "time_zone",
    "province",
    "settings",
    "tax_profile",
    "bank_account",
];

/// Fields of `Studio` an update may name.
pub(crate) const STUDIO_UPDATABLE: &[&str] = &[
    "parent_studio_id",
    "name",
    "business_number",
    "address",
    "contact",
    "time_zone",
    "payment_terms",
    "settings",
    "is_headquarters",
    "billing_consolidated",
    "status",
    "bank_account",
];

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

/// A name other users see and invitations mail to them (a business or a
/// studio name): a line holding no character that hides or reorders text,
/// which would make it look like another name — or the mail's subject read
/// otherwise ("FitFlow: Pulse\u{202E}…").
fn shown_name(violations: &mut Violations, path: &str, value: &str, required: bool) -> String {
    if value.chars().any(fitflow_api::text::hides_or_reorders_text) {
        violations.add(
            path,
            "must not contain invisible or direction-changing characters",
        );
    }
    if required {
        required_line(violations, path, value, 200)
    } else {
        line(violations, path, value, 200)
    }
}

fn time_zone(violations: &mut Violations, path: &str, value: &str) -> String {
    if value.is_empty() {
        violations.add(path, "is required");
        return String::new();
    }
    match formats::time_zone(value) {
        Ok(zone) => zone.name().to_owned(),
        Err(problem) => {
            violations.add(path, problem);
            String::new()
        }
    }
}

fn province(violations: &mut Violations, path: &str, value: i32) -> Option<Province> {
    let province = Province::from_proto(value);
    if province.is_none() {
        violations.add(path, "is required: a Canadian province or territory");
    }
    province
}

fn money(violations: &mut Violations, path: &str, value: Option<&Money>) -> Option<Decimal> {
    let value = value?;
    match formats::cad_amount(&value.currency_code, &value.amount) {
        Ok(amount) => Some(amount),
        Err(problem) => {
            violations.add(path, problem);
            None
        }
    }
}

fn required_money(violations: &mut Violations, path: &str, value: Option<&Money>) -> Decimal {
    if value.is_none() {
        violations.add(path, "is required");
    }
    money(violations, path, value).unwrap_or_default()
}

fn percentage(violations: &mut Violations, path: &str, value: &str) -> Option<Decimal> {
    if value.is_empty() {
        return None;
    }
    match formats::percentage(value) {
        Ok(rate) => Some(rate),
        Err(problem) => {
            violations.add(path, problem);
            None
        }
    }
}

fn settings(
    violations: &mut Violations,
    path: &str,
    value: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let view: BTreeMap<&str, &str> = value
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    formats::settings(violations, path, &view);
    value.clone()
}

fn tax_profile(
    violations: &mut Violations,
    path: &str,
    value: Option<&pb::TaxProfile>,
) -> Option<TaxProfile> {
    let value = value?;
    let supplier_status = match pb::SupplierStatus::try_from(value.supplier_status) {
        Ok(pb::SupplierStatus::Registered) => Some(SupplierStatus::Registered),
        Ok(pb::SupplierStatus::SmallSupplier) => Some(SupplierStatus::SmallSupplier),
        _ => {
            violations.add(format!("{path}.supplier_status"), "is required");
            None
        }
    };
    let gst_hst_number = (!value.gst_hst_number.is_empty()).then(|| {
        if let Err(problem) = formats::gst_hst_number(&value.gst_hst_number) {
            violations.add(format!("{path}.gst_hst_number"), problem);
        }
        value.gst_hst_number.clone()
    });
    let qst_number = (!value.qst_number.is_empty()).then(|| {
        if let Err(problem) = formats::qst_number(&value.qst_number) {
            violations.add(format!("{path}.qst_number"), problem);
        }
        value.qst_number.clone()
    });
    Some(TaxProfile {
        supplier_status: supplier_status?,
        gst_hst_number,
        qst_number,
    })
}

fn bank_account(
    violations: &mut Violations,
    path: &str,
    value: Option<&pb::BankAccount>,
) -> Option<BankAccount> {
    let value = value?;
    formats::bank_account(
        violations,
        path,
        &value.holder_name,
        &value.institution_number,
        &value.transit_number,
        &value.account_number,
    );
    Some(BankAccount {
        holder_name: value.holder_name.trim().to_owned(),
        institution_number: value.institution_number.clone(),
        transit_number: value.transit_number.clone(),
        account_number: value.account_number.clone(),
    })
}

fn specializations(violations: &mut Violations, path: &str, value: &[String]) -> Vec<String> {
    if value.len() > 20 {
        violations.add(path, "must hold at most 20 entries");
    }
    value
        .iter()
        .enumerate()
        .map(|(index, entry)| required_line(violations, &format!("{path}[{index}]"), entry, 100))
        .collect()
}

/// The updatable fields a `Trainer` message populated, for an empty mask.
fn trainer_populated(trainer: &pb::Trainer) -> Vec<&'static str> {
    let mut populated = Vec::new();
    let mut mark = |given: bool, field: &'static str| {
        if given {
            populated.push(field);
        }
    };
    mark(!trainer.business_name.is_empty(), "business_name");
    mark(!trainer.license_number.is_empty(), "license_number");
    mark(!trainer.specializations.is_empty(), "specializations");
    mark(!trainer.bio.is_empty(), "bio");
    mark(trainer.hourly_rate.is_some(), "hourly_rate");
    mark(!trainer.commission_rate.is_empty(), "commission_rate");
    mark(!trainer.time_zone.is_empty(), "time_zone");
    mark(trainer.province != 0, "province");
    mark(!trainer.settings.is_empty(), "settings");
    mark(trainer.tax_profile.is_some(), "tax_profile");
    mark(trainer.bank_account.is_some(), "bank_account");
    populated
}

/// The fields of `trainer` named by `fields`, validated under `trainer.`.
fn trainer_patch(
    violations: &mut Violations,
    trainer: &pb::Trainer,
    fields: &FieldSet,
) -> TrainerPatch {
    let wants = |field: &str| fields.contains(field);
    TrainerPatch {
        business_name: wants("business_name").then(|| {
            shown_name(
                violations,
                "trainer.business_name",
                &trainer.business_name,
                false,
            )
        }),
        license_number: wants("license_number").then(|| {
            line(
                violations,
                "trainer.license_number",
                &trainer.license_number,
                100,
            )
        }),
        specializations: wants("specializations").then(|| {
            specializations(
                violations,
                "trainer.specializations",
                &trainer.specializations,
            )
        }),
        bio: wants("bio").then(|| {
            check_text(
                violations,
                "trainer.bio",
                &trainer.bio,
                TextKind::FreeText,
                5000,
            );
            trainer.bio.clone()
        }),
        hourly_rate: wants("hourly_rate").then(|| {
            money(
                violations,
                "trainer.hourly_rate",
                trainer.hourly_rate.as_ref(),
            )
        }),
        commission_rate: wants("commission_rate").then(|| {
            percentage(
                violations,
                "trainer.commission_rate",
                &trainer.commission_rate,
            )
        }),
        time_zone: wants("time_zone")
            .then(|| time_zone(violations, "trainer.time_zone", &trainer.time_zone)),
        province: wants("province")
            .then(|| province(violations, "trainer.province", trainer.province))
            .flatten(),
        settings: wants("settings")
            .then(|| settings(violations, "trainer.settings", &trainer.settings)),
        tax_profile: wants("tax_profile").then(|| {
            tax_profile(
                violations,
                "trainer.tax_profile",
                trainer.tax_profile.as_ref(),
            )
        }),
        bank_account: wants("bank_account").then(|| {
            bank_account(
                violations,
                "trainer.bank_account",
                trainer.bank_account.as_ref(),
            )
        }),
    }
}

/// A new trainer profile and bank account from a `CreateTrainerRequest`.
pub(crate) fn new_trainer(
    violations: &mut Violations,
    trainer: Option<&pb::Trainer>,
) -> Option<(TrainerProfile, Option<BankAccount>)> {
    let Some(trainer) = trainer else {
        violations.add("trainer", "is required");
        return None;
    };
    let every_field =
        field_mask::fields_to_update(violations, &["*".to_owned()], TRAINER_UPDATABLE, &[]);
    let patch = trainer_patch(violations, trainer, &every_field);
    let profile = TrainerProfile {
        business_name: patch.business_name?,
        license_number: patch.license_number?,
        specializations: patch.specializations?,
        bio: patch.bio?,
        hourly_rate: patch.hourly_rate?,
        commission_rate: patch.commission_rate?,
        time_zone: patch.time_zone?,
        province: patch.province?,
        settings: patch.settings?,
        tax_profile: patch.tax_profile?,
    };
    Some((profile, patch.bank_account.flatten()))
}

/// The patch of an `UpdateTrainerRequest`.
pub(crate) fn trainer_update(
    violations: &mut Violations,
    trainer: &pb::Trainer,
    mask_paths: &[String],
) -> TrainerPatch {
    let fields = field_mask::fields_to_update(
        violations,
        mask_paths,
        TRAINER_UPDATABLE,
        &trainer_populated(trainer),
    );
    trainer_patch(violations, trainer, &fields)
}

fn money_out(amount: Decimal) -> Money {
    Money {
        currency_code: CURRENCY.to_owned(),
        amount: formats::two_decimals(amount),
    }
}

fn date_out(date: NaiveDate) -> Date {
    let civil = to_civil_date(date);
    Date {
        year: civil.year,
        month: civil.month,
        day: civil.day,
    }
}

/// A civil date field.
pub(crate) fn date(
    violations: &mut Violations,
    path: &str,
    value: Option<&Date>,
    required: bool,
) -> Option<NaiveDate> {
    if required && value.is_none() {
        violations.add(path, "is required");
    }
    optional_date(
        violations,
        path,
        value.map(|date| CivilDate {
            year: date.year,
            month: date.month,
            day: date.day,
        }),
    )
}

fn tax_profile_out(tax: &TaxProfile) -> pb::TaxProfile {
    pb::TaxProfile {
        supplier_status: match tax.supplier_status {
            SupplierStatus::Registered => pb::SupplierStatus::Registered,
            SupplierStatus::SmallSupplier => pb::SupplierStatus::SmallSupplier,
        } as i32,
        gst_hst_number: tax.gst_hst_number.clone().unwrap_or_default(),
        qst_number: tax.qst_number.clone().unwrap_or_default(),
    }
}

/// The wire form of a trainer (never the bank account).
pub(crate) fn trainer_out(view: TrainerView) -> pb::Trainer {
    let TrainerView {
        row,
        profile,
        etag,
        card_only,
    } = view;
    let trainer = pb::Trainer {
        id: row.id.to_string(),
        parent_trainer_id: row.leader_id.map(|id| id.to_string()).unwrap_or_default(),
        business_name: profile.business_name,
        license_number: profile.license_number,
        specializations: profile.specializations,
        bio: profile.bio,
        hourly_rate: profile.hourly_rate.map(money_out),
        commission_rate: profile
            .commission_rate
            .map(formats::two_decimals)
            .unwrap_or_default(),
        time_zone: profile.time_zone,
        province: profile.province.to_proto(),
        settings: profile.settings,
        tax_profile: profile.tax_profile.as_ref().map(tax_profile_out),
        bank_account: None,
        has_bank_account: row.has_bank_account,
        create_time: Some(to_timestamp(row.created_at)),
        update_time: Some(to_timestamp(row.updated_at)),
        etag: etag.into(),
    };
    if !card_only {
        return trainer;
    }
    // A contracted studio sees who the trainer is, not their own rates,
    // tax registration, settings or team.
    pb::Trainer {
        id: trainer.id,
        business_name: trainer.business_name,
        license_number: trainer.license_number,
        specializations: trainer.specializations,
        bio: trainer.bio,
        time_zone: trainer.time_zone,
        province: trainer.province,
        ..pb::Trainer::default()
    }
}

/// The wire form of a tax profile read.
pub(crate) fn tax_profile_response(view: TrainerView) -> pb::GetTaxProfileResponse {
    pb::GetTaxProfileResponse {
        trainer_id: view.row.id.to_string(),
        business_name: view.profile.business_name.clone(),
        province: view.profile.province.to_proto(),
        tax_profile: view.profile.tax_profile.as_ref().map(tax_profile_out),
    }
}

/// The wire form of a bank account.
pub(crate) fn bank_account_out(account: &BankAccount) -> pb::BankAccount {
    pb::BankAccount {
        holder_name: account.holder_name.clone(),
        institution_number: account.institution_number.clone(),
        transit_number: account.transit_number.clone(),
        account_number: account.account_number.clone(),
    }
}

fn address(
    violations: &mut Violations,
    path: &str,
    value: Option<&PostalAddress>,
) -> Option<Address> {
    let Some(value) = value else {
        violations.add(path, "is required");
        return None;
    };
    // The street may hold two lines; other control characters are refused.
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
    let province = province(violations, &format!("{path}.province"), value.province);
    if !(value.country_code.is_empty() || value.country_code == "CA") {
        violations.add(format!("{path}.country_code"), "must be \"CA\" (or empty)");
    }
    let postal_code = match formats::postal_code(&value.postal_code, province) {
        Ok(code) => code,
        Err(problem) => {
            violations.add(format!("{path}.postal_code"), problem);
            String::new()
        }
    };
    Some(Address {
        street: value.street.trim().to_owned(),
        city,
        province: province?,
        postal_code,
    })
}

fn contact(
    violations: &mut Violations,
    path: &str,
    value: Option<&pb::Contact>,
) -> (String, String, String) {
    let Some(value) = value else {
        return Default::default();
    };
    let mut check = |field: &str, text: &str, rule: fn(&str) -> Result<(), &'static str>| {
        if !text.is_empty()
            && let Err(problem) = rule(text)
        {
            violations.add(format!("{path}.{field}"), problem);
        }
    };
    check("phone", &value.phone, formats::phone);
    check("email", &value.email, formats::email);
    check("website", &value.website, formats::website);
    (
        value.phone.clone(),
        value.email.trim().to_lowercase(),
        value.website.clone(),
    )
}

fn payment_terms(
    violations: &mut Violations,
    path: &str,
    value: Option<&pb::PaymentTerms>,
) -> PaymentTerms {
    let Some(value) = value else {
        return PaymentTerms::default();
    };
    let frequency = match pb::PaymentFrequency::try_from(value.frequency) {
        Ok(pb::PaymentFrequency::Unspecified) => None,
        Ok(pb::PaymentFrequency::Weekly) => Some("weekly"),
        Ok(pb::PaymentFrequency::Biweekly) => Some("biweekly"),
        Ok(pb::PaymentFrequency::Monthly) => Some("monthly"),
        Err(_) => {
            violations.add(format!("{path}.frequency"), "is not a known frequency");
            None
        }
    };
    let method = match pb::PaymentMethod::try_from(value.preferred_method) {
        Ok(pb::PaymentMethod::Unspecified) => None,
        Ok(pb::PaymentMethod::DirectDeposit) => Some("direct_deposit"),
        Ok(pb::PaymentMethod::ETransfer) => Some("e_transfer"),
        Ok(pb::PaymentMethod::Cheque) => Some("cheque"),
        Err(_) => {
            violations.add(format!("{path}.preferred_method"), "is not a known method");
            None
        }
    };
    violations.check(
        (0..=120).contains(&value.net_days),
        &format!("{path}.net_days"),
        "must be 0 to 120",
    );
    PaymentTerms {
        frequency,
        net_days: (value.net_days != 0 || frequency.is_some()).then_some(value.net_days),
        method,
    }
}

fn studio_status(violations: &mut Violations, path: &str, value: i32) -> StudioStatus {
    match pb::StudioStatus::try_from(value) {
        Ok(pb::StudioStatus::Unspecified | pb::StudioStatus::Active) => StudioStatus::Active,
        Ok(pb::StudioStatus::Inactive) => StudioStatus::Inactive,
        Err(_) => {
            violations.add(path, "is not a known status");
            StudioStatus::Active
        }
    }
}

fn business_number(violations: &mut Violations, path: &str, value: &str) -> String {
    if !value.is_empty()
        && let Err(problem) = formats::business_number(value)
    {
        violations.add(path, problem);
    }
    value.to_owned()
}

fn parent(violations: &mut Violations, path: &str, value: &str) -> Option<uuid::Uuid> {
    fitflow_api::text::optional_uuid(violations, path, value)
}

fn studio_populated(studio: &pb::Studio) -> Vec<&'static str> {
    let mut populated = Vec::new();
    let mut mark = |given: bool, field: &'static str| {
        if given {
            populated.push(field);
        }
    };
    mark(!studio.parent_studio_id.is_empty(), "parent_studio_id");
    mark(!studio.name.is_empty(), "name");
    mark(!studio.business_number.is_empty(), "business_number");
    mark(studio.address.is_some(), "address");
    mark(studio.contact.is_some(), "contact");
    mark(!studio.time_zone.is_empty(), "time_zone");
    mark(studio.payment_terms.is_some(), "payment_terms");
    mark(!studio.settings.is_empty(), "settings");
    mark(studio.is_headquarters, "is_headquarters");
    mark(studio.billing_consolidated, "billing_consolidated");
    mark(studio.status != 0, "status");
    mark(studio.bank_account.is_some(), "bank_account");
    populated
}

fn studio_patch(
    violations: &mut Violations,
    studio: &pb::Studio,
    fields: &FieldSet,
) -> StudioPatch {
    let wants = |field: &str| fields.contains(field);
    StudioPatch {
        parent_studio_id: wants("parent_studio_id").then(|| {
            parent(
                violations,
                "studio.parent_studio_id",
                &studio.parent_studio_id,
            )
        }),
        name: wants("name").then(|| shown_name(violations, "studio.name", &studio.name, true)),
        business_number: wants("business_number").then(|| {
            business_number(
                violations,
                "studio.business_number",
                &studio.business_number,
            )
        }),
        address: wants("address")
            .then(|| address(violations, "studio.address", studio.address.as_ref()))
            .flatten(),
        contact: wants("contact")
            .then(|| contact(violations, "studio.contact", studio.contact.as_ref())),
        time_zone: wants("time_zone")
            .then(|| time_zone(violations, "studio.time_zone", &studio.time_zone)),
        payment_terms: wants("payment_terms").then(|| {
            payment_terms(
                violations,
                "studio.payment_terms",
                studio.payment_terms.as_ref(),
            )
        }),
        settings: wants("settings")
            .then(|| settings(violations, "studio.settings", &studio.settings)),
        is_headquarters: wants("is_headquarters").then_some(studio.is_headquarters),
        billing_consolidated: wants("billing_consolidated").then_some(studio.billing_consolidated),
        status: wants("status").then(|| studio_status(violations, "studio.status", studio.status)),
        bank_account: wants("bank_account").then(|| {
            bank_account(
                violations,
                "studio.bank_account",
                studio.bank_account.as_ref(),
            )
        }),
    }
}

/// A new studio and bank account from a `CreateStudioRequest`.
pub(crate) fn new_studio(
    violations: &mut Violations,
    studio: Option<&pb::Studio>,
) -> Option<(StudioProfile, Option<BankAccount>)> {
    let Some(studio) = studio else {
        violations.add("studio", "is required");
        return None;
    };
    let every_field =
        field_mask::fields_to_update(violations, &["*".to_owned()], STUDIO_UPDATABLE, &[]);
    let patch = studio_patch(violations, studio, &every_field);
    let (phone, email, website) = patch.contact.clone().unwrap_or_default();
    let profile = StudioProfile {
        parent_studio_id: patch.parent_studio_id?,
        name: patch.name.clone()?,
        business_number: patch.business_number.clone()?,
        address: patch.address.clone()?,
        phone,
        email,
        website,
        time_zone: patch.time_zone.clone()?,
        payment_terms: patch.payment_terms.clone()?,
        settings: patch.settings.clone()?,
        is_headquarters: patch.is_headquarters?,
        billing_consolidated: patch.billing_consolidated?,
        status: patch.status?,
    };
    Some((profile, patch.bank_account.flatten()))
}

/// The patch of an `UpdateStudioRequest`.
pub(crate) fn studio_update(
    violations: &mut Violations,
    studio: &pb::Studio,
    mask_paths: &[String],
) -> StudioPatch {
    let fields = field_mask::fields_to_update(
        violations,
        mask_paths,
        STUDIO_UPDATABLE,
        &studio_populated(studio),
    );
    studio_patch(violations, studio, &fields)
}

/// The wire form of a studio: managers see every field but the bank
/// account; others the directory card.
pub(crate) fn studio_out(view: StudioView) -> pb::Studio {
    let StudioView {
        row,
        profile,
        billing_studio_id,
        etag,
    } = view;
    let managed = row.managed;
    let mut studio = pb::Studio {
        id: row.id.to_string(),
        parent_studio_id: profile
            .parent_studio_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        owner_id: row.owner_id.to_string(),
        name: profile.name,
        address: Some(PostalAddress {
            street: profile.address.street,
            city: profile.address.city,
            province: profile.address.province.to_proto(),
            postal_code: profile.address.postal_code,
            country_code: "CA".to_owned(),
        }),
        contact: Some(pb::Contact {
            phone: profile.phone,
            email: profile.email,
            website: profile.website,
        }),
        time_zone: profile.time_zone,
        is_headquarters: profile.is_headquarters,
        status: match profile.status {
            StudioStatus::Active => pb::StudioStatus::Active,
            StudioStatus::Inactive => pb::StudioStatus::Inactive,
        } as i32,
        managed_by_caller: managed,
        create_time: Some(to_timestamp(row.created_at)),
        update_time: Some(to_timestamp(row.updated_at)),
        delete_time: row.deleted_at.map(to_timestamp),
        etag: etag.into(),
        ..pb::Studio::default()
    };
    if managed {
        studio.business_number = profile.business_number;
        studio.payment_terms = Some(pb::PaymentTerms {
            frequency: match profile.payment_terms.frequency {
                Some("weekly") => pb::PaymentFrequency::Weekly,
                Some("biweekly") => pb::PaymentFrequency::Biweekly,
                Some("monthly") => pb::PaymentFrequency::Monthly,
                _ => pb::PaymentFrequency::Unspecified,
            } as i32,
            net_days: profile.payment_terms.net_days.unwrap_or_default(),
            preferred_method: match profile.payment_terms.method {
                Some("direct_deposit") => pb::PaymentMethod::DirectDeposit,
                Some("e_transfer") => pb::PaymentMethod::ETransfer,
                Some("cheque") => pb::PaymentMethod::Cheque,
                _ => pb::PaymentMethod::Unspecified,
            } as i32,
        });
        studio.settings = profile.settings;
        studio.billing_consolidated = profile.billing_consolidated;
        studio.has_bank_account = row.has_bank_account;
    }
    // Computed only for managers, and for billing (see `GetStudio`).
    studio.billing_studio_id = billing_studio_id
        .map(|id| id.to_string())
        .unwrap_or_default();
    studio
}

/// The rates of a request's `RateVersion` (its date read separately).
pub(crate) fn rates(
    violations: &mut Violations,
    path: &str,
    value: Option<&pb::RateVersion>,
) -> Rates {
    let Some(value) = value else {
        violations.add(path, "is required");
        return Rates {
            group: Decimal::ZERO,
            individual: Decimal::ZERO,
            trial: Decimal::ZERO,
            commission: Decimal::ZERO,
        };
    };
    let commission = if value.commission_rate.is_empty() {
        violations.add(format!("{path}.commission_rate"), "is required");
        Decimal::ZERO
    } else {
        percentage(
            violations,
            &format!("{path}.commission_rate"),
            &value.commission_rate,
        )
        .unwrap_or_default()
    };
    Rates {
        group: required_money(
            violations,
            &format!("{path}.group_rate"),
            value.group_rate.as_ref(),
        ),
        individual: required_money(
            violations,
            &format!("{path}.individual_rate"),
            value.individual_rate.as_ref(),
        ),
        trial: required_money(
            violations,
            &format!("{path}.trial_rate"),
            value.trial_rate.as_ref(),
        ),
        commission,
    }
}

/// The wire form of a rate version.
pub(crate) fn rate_version_out(row: &RateRow) -> pb::RateVersion {
    pb::RateVersion {
        effective_date: Some(date_out(row.effective_date)),
        group_rate: Some(money_out(row.group_rate)),
        individual_rate: Some(money_out(row.individual_rate)),
        trial_rate: Some(money_out(row.trial_rate)),
        commission_rate: formats::two_decimals(row.commission_rate),
        create_time: Some(to_timestamp(row.created_at)),
        created_by: row.created_by.to_string(),
    }
}

/// A contract state filter or value.
pub(crate) fn contract_state_out(state: ContractState) -> i32 {
    let state = match state {
        ContractState::Invited => pb::ContractState::Invited,
        ContractState::Active => pb::ContractState::Active,
        ContractState::Declined => pb::ContractState::Declined,
        ContractState::Ended => pb::ContractState::Ended,
    };
    state as i32
}

/// A `ContractState` filter: `None` for any.
pub(crate) fn contract_state_filter(
    violations: &mut Violations,
    value: i32,
) -> Option<ContractState> {
    match pb::ContractState::try_from(value) {
        Ok(pb::ContractState::Unspecified) => None,
        Ok(pb::ContractState::Invited) => Some(ContractState::Invited),
        Ok(pb::ContractState::Active) => Some(ContractState::Active),
        Ok(pb::ContractState::Declined) => Some(ContractState::Declined),
        Ok(pb::ContractState::Ended) => Some(ContractState::Ended),
        Err(_) => {
            violations.add("state", "is not a known contract state");
            None
        }
    }
}

/// A required contract role, as stored.
pub(crate) fn contract_role(violations: &mut Violations, value: i32) -> &'static str {
    match pb::ContractRole::try_from(value) {
        Ok(pb::ContractRole::Contractor) => "contractor",
        Ok(pb::ContractRole::Employee) => "employee",
        _ => {
            violations.add("role", "is required: contractor or employee");
            "contractor"
        }
    }
}

/// A required class category.
pub(crate) fn class_category(violations: &mut Violations, value: i32) -> ClassCategory {
    match pb::ClassCategory::try_from(value) {
        Ok(pb::ClassCategory::Group) => ClassCategory::Group,
        Ok(pb::ClassCategory::Individual) => ClassCategory::Individual,
        Ok(pb::ClassCategory::Trial) => ClassCategory::Trial,
        _ => {
            violations.add("category", "is required: group, individual or trial");
            ClassCategory::Group
        }
    }
}

/// The wire form of a contract.
pub(crate) fn contract_out(view: ContractView) -> pb::Contract {
    let ContractView {
        row,
        state,
        current_rates,
        etag,
    } = view;
    pb::Contract {
        id: row.id.to_string(),
        trainer_id: row.trainer_id.to_string(),
        studio_id: row.studio_id.to_string(),
        role: match row.role.as_str() {
            "employee" => pb::ContractRole::Employee,
            _ => pb::ContractRole::Contractor,
        } as i32,
        state: contract_state_out(state),
        start_date: Some(date_out(row.start_date)),
        end_date: row.end_date.map(date_out),
        current_rates: current_rates.as_ref().map(rate_version_out),
        create_time: Some(to_timestamp(row.created_at)),
        update_time: Some(to_timestamp(row.updated_at)),
        etag: etag.into(),
    }
}

/// The money and date of a `GetRate` answer.
pub(crate) fn rate_response(version: &RateRow, rate: Decimal) -> pb::GetRateResponse {
    pb::GetRateResponse {
        rate: Some(money_out(rate)),
        commission_rate: formats::two_decimals(version.commission_rate),
        contract_id: version.contract_id.to_string(),
        effective_date: Some(date_out(version.effective_date)),
    }
}

/// The wire form of a team invitation.
pub(crate) fn team_invitation_out(row: &TeamInvitationRow) -> pb::TeamInvitation {
    let state = match row.state.as_str() {
        "pending" => pb::TeamInvitationState::Pending,
        "accepted" => pb::TeamInvitationState::Accepted,
        "declined" => pb::TeamInvitationState::Declined,
        _ => pb::TeamInvitationState::Expired,
    };
    pb::TeamInvitation {
        id: row.id.to_string(),
        leader_id: row.leader_id.to_string(),
        trainer_id: row.trainer_id.to_string(),
        state: state as i32,
        create_time: Some(to_timestamp(row.created_at)),
        expire_time: Some(to_timestamp(row.expires_at)),
    }
}
