//! `fitflow.billing.v1.BillingService`: authenticate, validate, call the
//! use case, encode (payments' conversions in [`payments`]).

mod exports;
mod payments;
mod quick_rates;
mod studio;

use std::pin::Pin;

use chrono::NaiveDate;
use fitflow_api::canada::Province;
use fitflow_api::money::{CURRENCY, cad_amount, two_decimals};
use fitflow_api::text::{TextKind, check_text, required};
use fitflow_api::time::{CivilDate, required_date, to_civil_date, to_timestamp};
use fitflow_error::{ApiError, Violations};
use fitflow_proto::billing as pb;
use fitflow_proto::billing::billing_service_server::BillingService;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::types::Money;
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use crate::bank_accounts::{AccountDetails, AccountNumbers, AccountView, masked};
use crate::drafts::ScheduleDraft;
use crate::invoices::{Draft, Idempotency, InvoiceView, treatment_name};
use crate::rates::NewRate;
use crate::remittances::{Calculation, RemittanceView};
use crate::repo::{LineRow, RateRow};
use crate::schedule::Charge;
use crate::tax::{Line, TaxKind, TaxLine, Treatment};
use crate::tax_return::RemittanceKind;
use crate::{BankAccounts, ERROR_DOMAIN, Invoicing, Payments, Remittances, TaxTable};
use fitflow_api::page::{PageQuery, TimeIdCursor, page_size};
use fitflow_api::text::{optional_uuid, uuid};
use fitflow_auth::Caller;

/// Most lines one quote takes.
const MAX_LINES: usize = 500;
/// Longest source of a rate.
const MAX_SOURCE: usize = 500;

/// Most lines of an invoice.
const MAX_INVOICE_LINES: usize = 200;
/// Largest page of ListInvoices.
const MAX_INVOICES_PAGE: u32 = 100;
/// Longest line description or void reason.
const MAX_DESCRIPTION: usize = 500;
/// Longest invoice notes.
const MAX_NOTES: usize = 2_000;
/// Largest amount NUMERIC(12,2) holds: 9,999,999,999.99 (999,999,999,999
/// cents = 232 × 2³² + 3,567,587,327).
pub(crate) const MAX_AMOUNT: Decimal = Decimal::from_parts(3_567_587_327, 232, 0, false, 2);

/// Longest bank-account name, bank name or filing reference.
const MAX_NAME: usize = 100;
/// Largest page of ListTaxRemittances.
const MAX_REMITTANCES_PAGE: u32 = 100;
/// Longest reporting period, in days after its first.
const MAX_PERIOD_DAYS: i64 = 366;
/// Longest period drafted from the schedule, in days after its first
/// (scheduling's `ListBillableAppointments` reads at most 93 dates).
const MAX_DRAFT_PERIOD_DAYS: i64 = 92;

/// The gRPC face of [`TaxTable`], [`Invoicing`], [`BankAccounts`],
/// [`Remittances`] and [`Payments`].
pub struct BillingGrpc {
    table: TaxTable,
    invoicing: Invoicing,
    exports: crate::exports::ClientExports,
    accounts: BankAccounts,
    remittances: Remittances,
    payments: Payments,
}

impl BillingGrpc {
    /// Serves the use cases over gRPC; clients' exports of a client's
    /// invoices read through `system`, the system role's pool.
    pub fn new(
        table: TaxTable,
        invoicing: Invoicing,
        accounts: BankAccounts,
        remittances: Remittances,
        payments: Payments,
        system: fitflow_db::SystemPool,
    ) -> Self {
        Self {
            table,
            exports: crate::exports::ClientExports::new(system),
            invoicing,
            accounts,
            remittances,
            payments,
        }
    }
}

/// A string of ASCII digits whose length is in `count`.
fn all_digits(value: &str, count: std::ops::RangeInclusive<usize>) -> bool {
    count.contains(&value.len()) && value.bytes().all(|byte| byte.is_ascii_digit())
}

/// A bank account's numbers at `path`, checked field by field.
fn account_numbers(
    violations: &mut Violations,
    path: &str,
    account: &pb::BankAccount,
) -> AccountNumbers {
    violations.check(
        all_digits(&account.institution_number, 3..=3),
        &format!("{path}.institution_number"),
        "must be exactly 3 digits",
    );
    violations.check(
        all_digits(&account.transit_number, 5..=5),
        &format!("{path}.transit_number"),
        "must be exactly 5 digits",
    );
    violations.check(
        all_digits(&account.account_number, 7..=12),
        &format!("{path}.account_number"),
        "must be 7 to 12 digits",
    );
    AccountNumbers {
        institution: account.institution_number.clone(),
        transit: account.transit_number.clone(),
        account: account.account_number.clone(),
    }
}

/// A bank account's details at `path`, checked field by field.
fn account_details(
    violations: &mut Violations,
    path: &str,
    account: &pb::BankAccount,
) -> AccountDetails {
    for (field, value) in [("name", &account.name), ("bank_name", &account.bank_name)] {
        let at = format!("{path}.{field}");
        if required(violations, &at, value) {
            check_text(violations, &at, value, TextKind::Line, MAX_NAME);
        }
    }
    let account_type = match pb::BankAccountType::try_from(account.account_type) {
        Ok(pb::BankAccountType::Chequing) => "chequing",
        Ok(pb::BankAccountType::Savings) => "savings",
        Ok(pb::BankAccountType::Unspecified) | Err(_) => {
            violations.add(
                format!("{path}.account_type"),
                "must be CHEQUING or SAVINGS",
            );
            ""
        }
    };
    let currency = match account.currency_code.as_str() {
        "CAD" => "CAD",
        "USD" => "USD",
        _ => {
            violations.add(
                format!("{path}.currency_code"),
                "must be \"CAD\" or \"USD\"",
            );
            ""
        }
    };
    AccountDetails {
        name: account.name.clone(),
        bank_name: account.bank_name.clone(),
        account_type,
        currency,
        primary: account.primary,
    }
}

fn bank_account_out(view: AccountView) -> pb::BankAccount {
    let row = view.row;
    pb::BankAccount {
        id: row.id.to_string(),
        trainer_id: row.trainer_id.to_string(),
        name: row.name,
        bank_name: row.bank_name,
        account_type: match row.account_type.as_str() {
            "chequing" => pb::BankAccountType::Chequing,
            "savings" => pb::BankAccountType::Savings,
            _ => pb::BankAccountType::Unspecified,
        } as i32,
        currency_code: row.currency,
        primary: row.is_primary,
        status: match row.status.as_str() {
            "active" => pb::BankAccountStatus::Active,
            "closed" => pb::BankAccountStatus::Closed,
            _ => pb::BankAccountStatus::Unspecified,
        } as i32,
        institution_number: String::new(),
        transit_number: String::new(),
        account_number: String::new(),
        account_number_masked: masked(&row.account_number_last3),
        create_time: Some(to_timestamp(row.created_at)),
        update_time: Some(to_timestamp(row.updated_at)),
        close_time: row.closed_at.map(to_timestamp),
        etag: view.etag.as_str().to_owned(),
    }
}

fn remittance_kind_in(value: i32) -> Option<RemittanceKind> {
    match pb::RemittanceKind::try_from(value) {
        Ok(pb::RemittanceKind::GstHst) => Some(RemittanceKind::GstHst),
        Ok(pb::RemittanceKind::Qst) => Some(RemittanceKind::Qst),
        Ok(pb::RemittanceKind::Unspecified) | Err(_) => None,
    }
}

fn remittance_out(view: RemittanceView) -> pb::TaxRemittance {
    let row = view.row;
    pb::TaxRemittance {
        id: row.id.to_string(),
        trainer_id: row.trainer_id.to_string(),
        kind: match RemittanceKind::parse(&row.kind) {
            Some(RemittanceKind::GstHst) => pb::RemittanceKind::GstHst,
            Some(RemittanceKind::Qst) => pb::RemittanceKind::Qst,
            None => pb::RemittanceKind::Unspecified,
        } as i32,
        period_start: Some(date_out(row.period_start)),
        period_end: Some(date_out(row.period_end)),
        status: match row.status.as_str() {
            "calculated" => pb::RemittanceStatus::Calculated,
            "filed" => pb::RemittanceStatus::Filed,
            "paid" => pb::RemittanceStatus::Paid,
            _ => pb::RemittanceStatus::Unspecified,
        } as i32,
        gross_revenue: Some(money(row.gross_revenue)),
        taxable_revenue: Some(money(row.taxable_revenue)),
        tax_collected: Some(money(row.tax_collected)),
        input_tax_credits: Some(money(row.input_tax_credits)),
        net_tax: Some(money(row.net_tax)),
        quick_method: row.quick_method,
        quick_method_base: row.quick_method_base.map(money),
        quick_method_remittance: row.quick_method_remittance.map(money),
        quick_method_credit: row.quick_method_credit.map(money),
        establishment_province: row
            .establishment_province
            .as_deref()
            .and_then(Province::from_code)
            .map_or(0, Province::to_proto),
        filed_on: row.filed_on.map(date_out),
        filing_reference: row.filing_reference,
        paid_on: row.paid_on.map(date_out),
        payment_reference: row.payment_reference,
        calculate_time: Some(to_timestamp(row.calculated_at)),
        etag: view.etag.as_str().to_owned(),
    }
}

/// A confirmation number: required, one line, at most 100 characters.
fn reference_field(violations: &mut Violations, field: &str, value: &str) {
    if required(violations, field, value) {
        check_text(violations, field, value, TextKind::Line, MAX_NAME);
    }
}

fn etag_field(violations: &mut Violations, field: &str, value: &str) {
    if required(violations, field, value) {
        check_text(violations, field, value, TextKind::Line, 100);
    }
}

/// The payment terms asked: 30 days when not given (0), on create and on
/// update alike.
fn terms_or_default(days: i32) -> i32 {
    if days == 0 { 30 } else { days }
}

/// Whether a line may name the scheduled item it bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemRefs {
    /// UpdateInvoice: to keep an item the draft bills.
    Kept,
    /// CreateInvoice, IssueCreditNote: never.
    Refused,
}

/// Whether a line may sell a session pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PackSales {
    /// CreateInvoice, UpdateInvoice: sold when the invoice is issued.
    Allowed,
    /// IssueCreditNote: a credit note corrects a price, it sells nothing.
    Refused,
}

/// The pack a line sells at `at`, if any: (sessions, expiry), both or
/// neither, on a line of quantity 1 naming no appointment.
fn pack_sale(
    violations: &mut Violations,
    at: &str,
    line: &pb::InvoiceLine,
    sales: PackSales,
) -> Option<(i32, NaiveDate)> {
    if line.pack_sessions == 0 && line.pack_expires_on.is_none() {
        return None;
    }
    if sales == PackSales::Refused {
        violations.add(
            format!("{at}.pack_sessions"),
            "a credit note sells no session pack",
        );
        return None;
    }
    let sessions = (1..=crate::packs::MAX_PACK_SESSIONS)
        .contains(&line.pack_sessions)
        .then_some(line.pack_sessions);
    if sessions.is_none() {
        violations.add(
            format!("{at}.pack_sessions"),
            format!(
                "must be 1 to {} with pack_expires_on",
                crate::packs::MAX_PACK_SESSIONS
            ),
        );
    }
    let expires_on = date_in(
        violations,
        &format!("{at}.pack_expires_on"),
        line.pack_expires_on.as_ref(),
    );
    if !(line.quantity.is_empty()
        || fitflow_api::money::decimal(&line.quantity) == Some(Decimal::ONE))
    {
        violations.add(
            format!("{at}.quantity"),
            "must be 1 on a line selling a pack",
        );
    }
    if !line.appointment_id.is_empty() {
        violations.add(
            format!("{at}.appointment_id"),
            "must be empty on a line selling a pack",
        );
    }
    Some((sessions?, expires_on?))
}

/// A draft's lines, terms and notes as asked; line amounts computed.
fn draft(violations: &mut Violations, invoice: &pb::Invoice, refs: ItemRefs) -> Vec<LineRow> {
    if !(0..=120).contains(&invoice.payment_terms_days) {
        violations.add("invoice.payment_terms_days", "must be from 0 to 120 days");
    }
    check_text(
        violations,
        "invoice.notes",
        &invoice.notes,
        TextKind::FreeText,
        MAX_NOTES,
    );
    parse_lines(
        violations,
        "invoice.lines",
        &invoice.lines,
        refs,
        PackSales::Allowed,
    )
}

/// The scheduled item a line names at `at`, if any: an appointment id and
/// a charge, both or neither.
fn item_ref(
    violations: &mut Violations,
    at: &str,
    line: &pb::InvoiceLine,
    refs: ItemRefs,
) -> Option<(uuid::Uuid, Charge)> {
    let charge = match pb::ChargeKind::try_from(line.charge) {
        Ok(pb::ChargeKind::Unspecified) => None,
        Ok(pb::ChargeKind::Session) => Some(Charge::Session),
        Ok(pb::ChargeKind::LateCancel) => Some(Charge::LateCancel),
        Ok(pb::ChargeKind::NoShow) => Some(Charge::NoShow),
        Ok(pb::ChargeKind::StudioRate) => Some(Charge::StudioRate),
        Err(_) => {
            violations.add(format!("{at}.charge"), "must be a known charge");
            return None;
        }
    };
    if line.appointment_id.is_empty() && charge.is_none() {
        return None;
    }
    if refs == ItemRefs::Refused {
        violations.add(
            format!("{at}.appointment_id"),
            "is set only by DraftClientInvoice (and kept by UpdateInvoice)",
        );
        return None;
    }
    let appointment = uuid(
        violations,
        &format!("{at}.appointment_id"),
        &line.appointment_id,
    );
    if charge.is_none() {
        violations.add(format!("{at}.charge"), "is required with appointment_id");
    }
    Some((appointment?, charge?))
}

/// Invoice lines at `field` as asked; amounts computed.
fn parse_lines(
    violations: &mut Violations,
    field: &str,
    given: &[pb::InvoiceLine],
    refs: ItemRefs,
    sales: PackSales,
) -> Vec<LineRow> {
    if given.is_empty() || given.len() > MAX_INVOICE_LINES {
        violations.add(field, format!("must hold 1 to {MAX_INVOICE_LINES} lines"));
    }
    let mut lines = Vec::new();
    let mut subtotal = Decimal::ZERO;
    for (index, line) in given.iter().take(MAX_INVOICE_LINES).enumerate() {
        let at = format!("{field}[{index}]");
        let pack = pack_sale(violations, &at, line, sales);
        let description = format!("{at}.description");
        // A pack's line may leave its description to the service.
        let description_text = match pack {
            Some((sessions, expires_on)) if line.description.is_empty() => {
                crate::packs::sale_description(sessions, expires_on)
            }
            _ => line.description.clone(),
        };
        if required(violations, &description, &description_text) {
            check_text(
                violations,
                &description,
                &description_text,
                TextKind::Line,
                MAX_DESCRIPTION,
            );
        }
        let quantity = if line.quantity.is_empty() {
            Some(Decimal::ONE)
        } else {
            fitflow_api::money::decimal(&line.quantity)
        }
        .filter(|quantity| {
            quantity.scale() <= 2 && *quantity > Decimal::ZERO && *quantity <= Decimal::from(10_000)
        });
        violations.check(
            quantity.is_some(),
            &format!("{at}.quantity"),
            "must be a decimal above 0 and at most 10000, with at most two decimals",
        );
        let unit_price = match line.unit_price.as_ref() {
            Some(money) => match cad_amount(&money.currency_code, &money.amount) {
                Ok(price) => Some(price),
                Err(problem) => {
                    violations.add(format!("{at}.unit_price"), problem);
                    None
                }
            },
            None => {
                violations.add(format!("{at}.unit_price"), "is required");
                None
            }
        };
        let province = Province::from_proto(line.province);
        violations.check(
            province.is_some(),
            &format!("{at}.province"),
            "must be a known province",
        );
        let treatment = match pb::TaxTreatment::try_from(line.treatment) {
            Ok(pb::TaxTreatment::Unspecified | pb::TaxTreatment::Taxable) => {
                Some(Treatment::Taxable)
            }
            Ok(pb::TaxTreatment::ZeroRated) => Some(Treatment::ZeroRated),
            Ok(pb::TaxTreatment::Exempt) => Some(Treatment::Exempt),
            Err(_) => None,
        };
        violations.check(
            treatment.is_some(),
            &format!("{at}.treatment"),
            "must be a known treatment",
        );
        let item = item_ref(violations, &at, line, refs);
        if let (Some(quantity), Some(unit_price), Some(province), Some(treatment)) =
            (quantity, unit_price, province, treatment)
        {
            let amount = crate::tax::to_cent(quantity * unit_price);
            if amount > MAX_AMOUNT {
                violations.add(format!("{at}.unit_price"), "the line's amount is too large");
                continue;
            }
            subtotal += amount;
            lines.push(LineRow {
                position: i32::try_from(index + 1).unwrap_or(i32::MAX),
                description: description_text,
                quantity,
                unit_price,
                amount,
                province: province.code().to_owned(),
                treatment: treatment_name(treatment).to_owned(),
                appointment_id: item.map(|(appointment, _)| appointment),
                charge: item.map(|(_, charge)| charge.as_str().to_owned()),
                pack_sessions: pack.map(|(sessions, _)| sessions),
                pack_expires_on: pack.map(|(_, expires_on)| expires_on),
                drawn_pack_id: None,
            });
        }
    }
    if subtotal > MAX_AMOUNT {
        violations.add(field, "the total is too large");
    }
    lines
}

fn invoice_status(status: &str) -> pb::InvoiceStatus {
    match status {
        "draft" => pb::InvoiceStatus::Draft,
        "issued" => pb::InvoiceStatus::Issued,
        "partially_paid" => pb::InvoiceStatus::PartiallyPaid,
        "paid" => pb::InvoiceStatus::Paid,
        "overdue" => pb::InvoiceStatus::Overdue,
        "void" => pb::InvoiceStatus::Void,
        _ => pb::InvoiceStatus::Unspecified,
    }
}

fn invoice_out(view: InvoiceView) -> pb::Invoice {
    let row = view.row;
    pb::Invoice {
        id: row.id.to_string(),
        issuer_id: row.issuer_id.to_string(),
        client_id: row.client_id.map(|id| id.to_string()).unwrap_or_default(),
        studio_id: row.studio_id.map(|id| id.to_string()).unwrap_or_default(),
        status: invoice_status(&row.status) as i32,
        number: row.number.unwrap_or_default(),
        invoice_date: row.invoice_date.map(date_out),
        due_date: row.due_date.map(date_out),
        payment_terms_days: row.payment_terms_days,
        lines: view
            .lines
            .into_iter()
            .map(|line| pb::InvoiceLine {
                description: line.description,
                quantity: line.quantity.normalize().to_string(),
                unit_price: Some(money(line.unit_price)),
                province: Province::from_code(&line.province).map_or(0, Province::to_proto),
                treatment: match line.treatment.as_str() {
                    "zero_rated" => pb::TaxTreatment::ZeroRated,
                    "exempt" => pb::TaxTreatment::Exempt,
                    _ => pb::TaxTreatment::Taxable,
                } as i32,
                amount: Some(money(line.amount)),
                appointment_id: line
                    .appointment_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                charge: match line.charge.as_deref().and_then(Charge::parse) {
                    Some(Charge::Session) => pb::ChargeKind::Session,
                    Some(Charge::LateCancel) => pb::ChargeKind::LateCancel,
                    Some(Charge::NoShow) => pb::ChargeKind::NoShow,
                    Some(Charge::StudioRate) => pb::ChargeKind::StudioRate,
                    None => pb::ChargeKind::Unspecified,
                } as i32,
                pack_sessions: line.pack_sessions.unwrap_or_default(),
                pack_expires_on: line.pack_expires_on.map(date_out),
                drawn_pack_id: line
                    .drawn_pack_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
            })
            .collect(),
        taxes: view
            .taxes
            .into_iter()
            .map(|tax| pb::TaxLine {
                province: Province::from_code(&tax.province).map_or(0, Province::to_proto),
                kind: TaxKind::parse(&tax.kind).map_or(0, |kind| kind_out(kind) as i32),
                percent: tax.percent.normalize().to_string(),
                base: Some(money(tax.base)),
                amount: Some(money(tax.amount)),
            })
            .collect(),
        subtotal: Some(money(row.subtotal)),
        tax_total: Some(money(row.tax_total)),
        total: Some(money(row.total)),
        tax_registered: row.tax_registered,
        gst_hst_number: row.gst_hst_number,
        qst_number: row.qst_number,
        notes: row.notes,
        create_time: Some(to_timestamp(row.created_at)),
        issue_time: row.issued_at.map(to_timestamp),
        void_time: row.voided_at.map(to_timestamp),
        etag: view.etag.as_str().to_owned(),
        kind: if row.kind == "credit_note" {
            pb::DocumentKind::CreditNote
        } else {
            pb::DocumentKind::Invoice
        } as i32,
        credit_of_invoice_id: row.credit_of.map(|id| id.to_string()).unwrap_or_default(),
        amount_paid: Some(money(row.amount_paid)),
        balance_due: Some(money(view.balance)),
    }
}

/// A session pack in its contract form.
pub(crate) fn pack_out(row: crate::repo::PackRow) -> pb::SessionPack {
    pb::SessionPack {
        id: row.id.to_string(),
        issuer_id: row.issuer_id.to_string(),
        client_id: row.client_id.to_string(),
        sessions: row.sessions,
        used: row.used,
        remaining: row.sessions - row.used,
        expires_on: Some(date_out(row.expires_on)),
        invoice_id: row.invoice_id.to_string(),
        line_position: row.position,
        state: if row.state == "active" {
            pb::SessionPackState::Active
        } else {
            pb::SessionPackState::Cancelled
        } as i32,
        create_time: Some(to_timestamp(row.created_at)),
    }
}

fitflow_server::handler_helpers!(ERROR_DOMAIN);

/// The period, payment terms and notes of a draft from the schedule
/// (`start_date`, `end_date`, `payment_terms_days`, `notes`), checked the
/// same way for clients and studios: the period when both dates are valid.
pub(crate) fn draft_period(
    violations: &mut Violations,
    (start, end): (Option<&Date>, Option<&Date>),
    payment_terms_days: i32,
    notes: &str,
) -> Option<(NaiveDate, NaiveDate)> {
    let first = date_in(violations, "start_date", start);
    let last = date_in(violations, "end_date", end);
    if let (Some(first), Some(last)) = (first, last) {
        violations.check(
            (0..=MAX_DRAFT_PERIOD_DAYS).contains(&(last - first).num_days()),
            "end_date",
            "must be on or after start_date, at most 92 days after it",
        );
    }
    if !(0..=120).contains(&payment_terms_days) {
        violations.add("payment_terms_days", "must be from 0 to 120 days");
    }
    check_text(violations, "notes", notes, TextKind::FreeText, MAX_NOTES);
    Some((first?, last?))
}

fn date_in(violations: &mut Violations, field: &str, value: Option<&Date>) -> Option<NaiveDate> {
    required_date(
        violations,
        field,
        value.map(|date| CivilDate {
            year: date.year,
            month: date.month,
            day: date.day,
        }),
    )
}

/// A filing or payment is recorded once it happened: its date is at most
/// tomorrow (UTC), the day's grace payments have for clocks and zones.
fn not_to_come(violations: &mut Violations, field: &str, date: Option<NaiveDate>) {
    if date.is_some_and(|date| date > crate::payments::latest_payment_date()) {
        violations.add(field, "must not be more than a day in the future");
    }
}

fn date_out(value: NaiveDate) -> Date {
    let civil = to_civil_date(value);
    Date {
        year: civil.year,
        month: civil.month,
        day: civil.day,
    }
}

fn money(amount: Decimal) -> Money {
    Money {
        currency_code: CURRENCY.to_owned(),
        amount: two_decimals(amount),
    }
}

/// An amount that may be negative (a credit note's line).
fn signed_amount(violations: &mut Violations, field: &str, value: Option<&Money>) -> Decimal {
    let Some(value) = value else {
        violations.add(field, "is required");
        return Decimal::ZERO;
    };
    let (negative, magnitude) = match value.amount.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.amount.as_str()),
    };
    match cad_amount(&value.currency_code, magnitude) {
        Ok(amount) if negative => -amount,
        Ok(amount) => amount,
        Err(problem) => {
            violations.add(field, problem);
            Decimal::ZERO
        }
    }
}

fn kind_in(value: i32) -> Option<TaxKind> {
    match pb::TaxKind::try_from(value) {
        Ok(pb::TaxKind::Gst) => Some(TaxKind::Gst),
        Ok(pb::TaxKind::Hst) => Some(TaxKind::Hst),
        Ok(pb::TaxKind::Qst) => Some(TaxKind::Qst),
        Ok(pb::TaxKind::Pst) => Some(TaxKind::Pst),
        Ok(pb::TaxKind::Rst) => Some(TaxKind::Rst),
        Ok(pb::TaxKind::Unspecified) | Err(_) => None,
    }
}

fn kind_out(kind: TaxKind) -> pb::TaxKind {
    match kind {
        TaxKind::Gst => pb::TaxKind::Gst,
        TaxKind::Hst => pb::TaxKind::Hst,
        TaxKind::Qst => pb::TaxKind::Qst,
        TaxKind::Pst => pb::TaxKind::Pst,
        TaxKind::Rst => pb::TaxKind::Rst,
    }
}

fn rate_out(row: RateRow) -> pb::TaxRate {
    pb::TaxRate {
        id: row.id.to_string(),
        province: row
            .province
            .as_deref()
            .and_then(Province::from_code)
            .map_or(0, Province::to_proto),
        kind: TaxKind::parse(&row.kind).map_or(0, |kind| kind_out(kind) as i32),
        percent: row.percent.normalize().to_string(),
        valid_from: Some(date_out(row.valid_from)),
        valid_until: row.valid_until.map(date_out),
        applies_to_services: row.applies_to_services,
        source: row.source,
        created_by: row.created_by.map(|id| id.to_string()).unwrap_or_default(),
        create_time: Some(to_timestamp(row.created_at)),
    }
}

fn tax_line_out(tax: TaxLine) -> pb::TaxLine {
    pb::TaxLine {
        province: tax.province.to_proto(),
        kind: kind_out(tax.kind) as i32,
        percent: tax.percent.normalize().to_string(),
        base: Some(money(tax.base)),
        amount: Some(money(tax.amount)),
    }
}

/// A rate version as asked.
fn new_rate(violations: &mut Violations, rate: &pb::TaxRate) -> Option<NewRate> {
    let kind = kind_in(rate.kind);
    violations.check(kind.is_some(), "rate.kind", "must be a known tax");
    let province = Province::from_proto(rate.province);
    if rate.province != 0 && province.is_none() {
        violations.add("rate.province", "must be a known province");
    }
    match kind {
        Some(TaxKind::Gst) if rate.province != 0 => {
            violations.add("rate.province", "must be unset for GST, which is federal");
        }
        Some(kind) if kind != TaxKind::Gst && rate.province == 0 => {
            violations.add("rate.province", "is required for a provincial tax or HST");
        }
        _ => {}
    }
    let percent = fitflow_api::money::decimal(&rate.percent)
        .filter(|percent| percent.scale() <= 4 && *percent >= Decimal::ZERO)
        .filter(|percent| *percent <= Decimal::ONE_HUNDRED);
    violations.check(
        percent.is_some(),
        "rate.percent",
        "must be a decimal from 0 to 100 with at most four decimals, e.g. \"9.975\"",
    );
    let valid_from = date_in(violations, "rate.valid_from", rate.valid_from.as_ref());
    if required(violations, "rate.source", &rate.source) {
        check_text(
            violations,
            "rate.source",
            &rate.source,
            TextKind::Line,
            MAX_SOURCE,
        );
    }
    let applies_to_services = rate.applies_to_services || kind.is_some_and(TaxKind::is_federal);
    Some(NewRate {
        province,
        kind: kind?,
        percent: percent?,
        valid_from: valid_from?,
        applies_to_services,
        source: rate.source.clone(),
    })
}

#[tonic::async_trait]
impl BillingService for BillingGrpc {
    async fn list_tax_rates(
        &self,
        request: Request<pb::ListTaxRatesRequest>,
    ) -> Result<Response<pb::ListTaxRatesResponse>, Status> {
        let principal = principal(&request)?;
        let rows = self.table.rates(&principal).await?;
        Ok(Response::new(pb::ListTaxRatesResponse {
            rates: rows.into_iter().map(rate_out).collect(),
        }))
    }

    async fn quote_tax(
        &self,
        request: Request<pb::QuoteTaxRequest>,
    ) -> Result<Response<pb::QuoteTaxResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let date = date_in(&mut violations, "tax_date", request.tax_date.as_ref());
        if request.lines.is_empty() || request.lines.len() > MAX_LINES {
            violations.add("lines", format!("must hold 1 to {MAX_LINES} lines"));
        }
        let mut lines = Vec::with_capacity(request.lines.len().min(MAX_LINES));
        for (index, line) in request.lines.iter().take(MAX_LINES).enumerate() {
            let amount = signed_amount(
                &mut violations,
                &format!("lines[{index}].amount"),
                line.amount.as_ref(),
            );
            let province = Province::from_proto(line.province);
            violations.check(
                province.is_some(),
                &format!("lines[{index}].province"),
                "must be a known province",
            );
            let treatment = match pb::TaxTreatment::try_from(line.treatment) {
                Ok(pb::TaxTreatment::Unspecified | pb::TaxTreatment::Taxable) => {
                    Some(Treatment::Taxable)
                }
                Ok(pb::TaxTreatment::ZeroRated) => Some(Treatment::ZeroRated),
                Ok(pb::TaxTreatment::Exempt) => Some(Treatment::Exempt),
                Err(_) => None,
            };
            violations.check(
                treatment.is_some(),
                &format!("lines[{index}].treatment"),
                "must be a known treatment",
            );
            if let (Some(province), Some(treatment)) = (province, treatment) {
                lines.push(Line {
                    amount,
                    province,
                    treatment,
                });
            }
        }
        done(violations)?;
        let Some(date) = date else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let taxes = self
            .table
            .quote(&principal, date, &lines, request.registered)
            .await?;
        let subtotal: Decimal = lines.iter().map(|line| line.amount).sum();
        let tax_total: Decimal = taxes.iter().map(|tax| tax.amount).sum();
        Ok(Response::new(pb::QuoteTaxResponse {
            taxes: taxes.into_iter().map(tax_line_out).collect(),
            subtotal: Some(money(subtotal)),
            tax_total: Some(money(tax_total)),
            total: Some(money(subtotal + tax_total)),
        }))
    }

    async fn add_tax_rate(
        &self,
        request: Request<pb::AddTaxRateRequest>,
    ) -> Result<Response<pb::AddTaxRateResponse>, Status> {
        let principal = principal(&request)?;
        let rate = request.into_inner().rate.unwrap_or_default();
        let mut violations = Violations::new();
        let new = new_rate(&mut violations, &rate);
        done(violations)?;
        let Some(new) = new else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let (added, ended) = self.table.add(&principal, new).await?;
        Ok(Response::new(pb::AddTaxRateResponse {
            rate: Some(rate_out(added)),
            ended: ended.map(rate_out),
        }))
    }

    async fn list_quick_method_rates(
        &self,
        request: Request<pb::ListQuickMethodRatesRequest>,
    ) -> Result<Response<pb::ListQuickMethodRatesResponse>, Status> {
        let principal = principal(&request)?;
        quick_rates::list(&self.table, &principal)
            .await
            .map(Response::new)
    }

    async fn add_quick_method_rate(
        &self,
        request: Request<pb::AddQuickMethodRateRequest>,
    ) -> Result<Response<pb::AddQuickMethodRateResponse>, Status> {
        let principal = principal(&request)?;
        quick_rates::add(&self.table, &principal, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn create_invoice(
        &self,
        request: Request<pb::CreateInvoiceRequest>,
    ) -> Result<Response<pb::CreateInvoiceResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let idempotency = Idempotency(fitflow_api::idempotency::record(
            &mut violations,
            &Caller::User(principal.clone()),
            "/fitflow.billing.v1.BillingService/CreateInvoice",
            &request,
            |request| &mut request.request_id,
        ));
        let invoice = request.invoice.unwrap_or_default();
        let issuer_id = optional_uuid(&mut violations, "invoice.issuer_id", &invoice.issuer_id);
        let client_id = uuid(&mut violations, "invoice.client_id", &invoice.client_id);
        let lines = draft(&mut violations, &invoice, ItemRefs::Refused);
        done(violations)?;
        let draft = Draft {
            issuer_id,
            client_id: client_id.unwrap_or_default(),
            lines,
            payment_terms_days: terms_or_default(invoice.payment_terms_days),
            notes: invoice.notes,
        };
        let view = self
            .invoicing
            .create(&principal, &token, draft, idempotency)
            .await?;
        Ok(Response::new(pb::CreateInvoiceResponse {
            invoice: Some(invoice_out(view)),
        }))
    }

    async fn draft_client_invoice(
        &self,
        request: Request<pb::DraftClientInvoiceRequest>,
    ) -> Result<Response<pb::DraftClientInvoiceResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let idempotency = Idempotency(fitflow_api::idempotency::record(
            &mut violations,
            &Caller::User(principal.clone()),
            "/fitflow.billing.v1.BillingService/DraftClientInvoice",
            &request,
            |request| &mut request.request_id,
        ));
        let issuer_id = optional_uuid(&mut violations, "issuer_id", &request.issuer_id);
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let period = draft_period(
            &mut violations,
            (request.start_date.as_ref(), request.end_date.as_ref()),
            request.payment_terms_days,
            &request.notes,
        );
        done(violations)?;
        let (Some(client_id), Some((first, last))) = (client_id, period) else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let asked = ScheduleDraft {
            issuer_id,
            client_id,
            first,
            last,
            payment_terms_days: terms_or_default(request.payment_terms_days),
            notes: request.notes,
        };
        let view = self
            .invoicing
            .draft_from_schedule(&principal, &token, asked, idempotency)
            .await?;
        Ok(Response::new(pb::DraftClientInvoiceResponse {
            invoice: Some(invoice_out(view)),
        }))
    }

    async fn draft_studio_invoice(
        &self,
        request: Request<pb::DraftStudioInvoiceRequest>,
    ) -> Result<Response<pb::DraftStudioInvoiceResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        studio::draft(&self.invoicing, &principal, &token, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_studio_invoices(
        &self,
        request: Request<pb::ListStudioInvoicesRequest>,
    ) -> Result<Response<pb::ListStudioInvoicesResponse>, Status> {
        let principal = principal(&request)?;
        studio::list(&self.invoicing, &principal, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn update_invoice(
        &self,
        request: Request<pb::UpdateInvoiceRequest>,
    ) -> Result<Response<pb::UpdateInvoiceResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let invoice = request.invoice.unwrap_or_default();
        let id = uuid(&mut violations, "invoice.id", &invoice.id);
        etag_field(&mut violations, "etag", &request.etag);
        let lines = draft(&mut violations, &invoice, ItemRefs::Kept);
        done(violations)?;
        let draft = Draft {
            issuer_id: None,
            client_id: uuid::Uuid::nil(),
            lines,
            payment_terms_days: terms_or_default(invoice.payment_terms_days),
            notes: invoice.notes,
        };
        let view = self
            .invoicing
            .update(&principal, id.unwrap_or_default(), draft, &request.etag)
            .await?;
        Ok(Response::new(pb::UpdateInvoiceResponse {
            invoice: Some(invoice_out(view)),
        }))
    }

    async fn issue_invoice(
        &self,
        request: Request<pb::IssueInvoiceRequest>,
    ) -> Result<Response<pb::IssueInvoiceResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let id = uuid(&mut violations, "invoice_id", &request.invoice_id);
        etag_field(&mut violations, "etag", &request.etag);
        done(violations)?;
        let view = self
            .invoicing
            .issue(&principal, &token, id.unwrap_or_default(), &request.etag)
            .await?;
        Ok(Response::new(pb::IssueInvoiceResponse {
            invoice: Some(invoice_out(view)),
        }))
    }

    async fn get_invoice(
        &self,
        request: Request<pb::GetInvoiceRequest>,
    ) -> Result<Response<pb::GetInvoiceResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let id = uuid(&mut violations, "invoice_id", &request.get_ref().invoice_id);
        done(violations)?;
        let view = self
            .invoicing
            .get(&principal, id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::GetInvoiceResponse {
            invoice: Some(invoice_out(view)),
        }))
    }

    type RenderInvoicePdfStream = PdfStream;

    async fn render_invoice_pdf(
        &self,
        request: Request<pb::RenderInvoicePdfRequest>,
    ) -> Result<Response<Self::RenderInvoicePdfStream>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let id = uuid(&mut violations, "invoice_id", &request.get_ref().invoice_id);
        done(violations)?;
        let printed = self
            .invoicing
            .print(&principal, id.unwrap_or_default())
            .await?;
        Ok(Response::new(pdf_chunks(printed.file_name, printed.bytes)))
    }

    async fn list_invoices(
        &self,
        request: Request<pb::ListInvoicesRequest>,
    ) -> Result<Response<pb::ListInvoicesResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let issuer = optional_uuid(&mut violations, "issuer_id", &request.issuer_id);
        let size = page_size(&mut violations, request.page_size, MAX_INVOICES_PAGE);
        let caller = Caller::User(principal.clone());
        let filter = request.issuer_id.as_bytes().to_vec();
        let query = PageQuery {
            method: "/fitflow.billing.v1.BillingService/ListInvoices",
            caller: &caller,
            filter: &filter,
        };
        let after: Option<TimeIdCursor> =
            self.invoicing
                .page_tokens()
                .read(&mut violations, &query, &request.page_token);
        done(violations)?;
        let (views, next) = self
            .invoicing
            .list(
                &principal,
                issuer,
                after.map(|cursor| (cursor.at, cursor.id)),
                size,
            )
            .await?;
        let next_page_token = next
            .map(|(at, id)| {
                self.invoicing
                    .page_tokens()
                    .issue(&query, &TimeIdCursor { at, id })
            })
            .unwrap_or_default();
        Ok(Response::new(pb::ListInvoicesResponse {
            invoices: views.into_iter().map(invoice_out).collect(),
            next_page_token,
        }))
    }

    async fn issue_credit_note(
        &self,
        request: Request<pb::IssueCreditNoteRequest>,
    ) -> Result<Response<pb::IssueCreditNoteResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        if request.request_id.is_empty() {
            violations.add("request_id", "is required: a UUID that makes retries safe");
        }
        let idempotency = Idempotency(fitflow_api::idempotency::record(
            &mut violations,
            &Caller::User(principal.clone()),
            "/fitflow.billing.v1.BillingService/IssueCreditNote",
            &request,
            |request| &mut request.request_id,
        ));
        let invoice_id = uuid(&mut violations, "invoice_id", &request.invoice_id);
        let lines = parse_lines(
            &mut violations,
            "lines",
            &request.lines,
            ItemRefs::Refused,
            PackSales::Refused,
        );
        if !lines.is_empty() && lines.iter().all(|line| line.amount.is_zero()) {
            // A credit note of nothing would only take a number.
            violations.add("lines", "must credit more than 0.00");
        }
        if required(&mut violations, "notes", &request.notes) {
            check_text(
                &mut violations,
                "notes",
                &request.notes,
                TextKind::FreeText,
                MAX_NOTES,
            );
        }
        done(violations)?;
        let credit = Draft {
            issuer_id: None,
            client_id: uuid::Uuid::nil(),
            lines,
            payment_terms_days: 0,
            notes: request.notes,
        };
        let view = self
            .invoicing
            .credit(
                &principal,
                &token,
                invoice_id.unwrap_or_default(),
                credit,
                idempotency,
            )
            .await?;
        Ok(Response::new(pb::IssueCreditNoteResponse {
            credit_note: Some(invoice_out(view)),
        }))
    }

    async fn void_invoice(
        &self,
        request: Request<pb::VoidInvoiceRequest>,
    ) -> Result<Response<pb::VoidInvoiceResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let id = uuid(&mut violations, "invoice_id", &request.invoice_id);
        if required(&mut violations, "reason", &request.reason) {
            check_text(
                &mut violations,
                "reason",
                &request.reason,
                TextKind::FreeText,
                MAX_DESCRIPTION,
            );
        }
        etag_field(&mut violations, "etag", &request.etag);
        done(violations)?;
        let view = self
            .invoicing
            .void(
                &principal,
                id.unwrap_or_default(),
                &request.reason,
                &request.etag,
            )
            .await?;
        Ok(Response::new(pb::VoidInvoiceResponse {
            invoice: Some(invoice_out(view)),
        }))
    }

    async fn create_bank_account(
        &self,
        request: Request<pb::CreateBankAccountRequest>,
    ) -> Result<Response<pb::CreateBankAccountResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let idempotency = Idempotency(fitflow_api::idempotency::record(
            &mut violations,
            &Caller::User(principal.clone()),
            "/fitflow.billing.v1.BillingService/CreateBankAccount",
            &request,
            |request| &mut request.request_id,
        ));
        let account = request.bank_account.unwrap_or_default();
        let trainer_id = optional_uuid(
            &mut violations,
            "bank_account.trainer_id",
            &account.trainer_id,
        );
        let details = account_details(&mut violations, "bank_account", &account);
        let numbers = account_numbers(&mut violations, "bank_account", &account);
        done(violations)?;
        let view = self
            .accounts
            .create(&principal, trainer_id, details, numbers, idempotency)
            .await?;
        Ok(Response::new(pb::CreateBankAccountResponse {
            bank_account: Some(bank_account_out(view)),
        }))
    }

    async fn update_bank_account(
        &self,
        request: Request<pb::UpdateBankAccountRequest>,
    ) -> Result<Response<pb::UpdateBankAccountResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let account = request.bank_account.unwrap_or_default();
        let id = uuid(&mut violations, "bank_account.id", &account.id);
        etag_field(&mut violations, "etag", &request.etag);
        let details = account_details(&mut violations, "bank_account", &account);
        let any_number = !(account.institution_number.is_empty()
            && account.transit_number.is_empty()
            && account.account_number.is_empty());
        // All three or none: a partial change would mix two accounts.
        let numbers =
            any_number.then(|| account_numbers(&mut violations, "bank_account", &account));
        done(violations)?;
        let view = self
            .accounts
            .update(
                &principal,
                id.unwrap_or_default(),
                details,
                numbers,
                &request.etag,
            )
            .await?;
        Ok(Response::new(pb::UpdateBankAccountResponse {
            bank_account: Some(bank_account_out(view)),
        }))
    }

    async fn list_bank_accounts(
        &self,
        request: Request<pb::ListBankAccountsRequest>,
    ) -> Result<Response<pb::ListBankAccountsResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let trainer_id =
            optional_uuid(&mut violations, "trainer_id", &request.get_ref().trainer_id);
        done(violations)?;
        let views = self.accounts.list(&principal, trainer_id).await?;
        Ok(Response::new(pb::ListBankAccountsResponse {
            bank_accounts: views.into_iter().map(bank_account_out).collect(),
        }))
    }

    async fn reveal_bank_account(
        &self,
        request: Request<pb::RevealBankAccountRequest>,
    ) -> Result<Response<pb::RevealBankAccountResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let id = uuid(
            &mut violations,
            "bank_account_id",
            &request.get_ref().bank_account_id,
        );
        done(violations)?;
        let (view, numbers) = self
            .accounts
            .reveal(&principal, id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::RevealBankAccountResponse {
            bank_account: Some(bank_account_out(view)),
            numbers: Some(pb::BankAccountNumbers {
                institution_number: numbers.institution,
                transit_number: numbers.transit,
                account_number: numbers.account,
            }),
        }))
    }

    async fn close_bank_account(
        &self,
        request: Request<pb::CloseBankAccountRequest>,
    ) -> Result<Response<pb::CloseBankAccountResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let id = uuid(&mut violations, "bank_account_id", &request.bank_account_id);
        etag_field(&mut violations, "etag", &request.etag);
        done(violations)?;
        let view = self
            .accounts
            .close(&principal, id.unwrap_or_default(), &request.etag)
            .await?;
        Ok(Response::new(pb::CloseBankAccountResponse {
            bank_account: Some(bank_account_out(view)),
        }))
    }

    async fn calculate_tax_remittance(
        &self,
        request: Request<pb::CalculateTaxRemittanceRequest>,
    ) -> Result<Response<pb::CalculateTaxRemittanceResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let trainer_id = optional_uuid(&mut violations, "trainer_id", &request.trainer_id);
        let kind = remittance_kind_in(request.kind);
        violations.check(kind.is_some(), "kind", "must be GST_HST or QST");
        let start = date_in(
            &mut violations,
            "period_start",
            request.period_start.as_ref(),
        );
        let end = date_in(&mut violations, "period_end", request.period_end.as_ref());
        if let (Some(start), Some(end)) = (start, end) {
            let days = (end - start).num_days();
            violations.check(
                (0..=MAX_PERIOD_DAYS).contains(&days),
                "period_end",
                "must be on or after period_start, at most 366 days after it",
            );
        }
        let credits = match request.input_tax_credits.as_ref() {
            None => Some(Decimal::ZERO),
            Some(value) => match cad_amount(&value.currency_code, &value.amount) {
                Ok(amount) => Some(amount),
                Err(problem) => {
                    violations.add("input_tax_credits", problem);
                    None
                }
            },
        };
        let establishment = Province::from_proto(request.establishment_province);
        if request.quick_method {
            violations.check(
                establishment.is_some(),
                "establishment_province",
                "is required with the quick method: the province of the permanent establishment",
            );
        } else {
            violations.check(
                request.establishment_province == 0,
                "establishment_province",
                "is given only with the quick method",
            );
        }
        done(violations)?;
        let (Some(kind), Some(period_start), Some(period_end), Some(input_tax_credits)) =
            (kind, start, end, credits)
        else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let view = self
            .remittances
            .calculate(
                &principal,
                Calculation {
                    trainer_id,
                    kind,
                    period_start,
                    period_end,
                    input_tax_credits,
                    quick_method: establishment.filter(|_| request.quick_method),
                },
            )
            .await?;
        Ok(Response::new(pb::CalculateTaxRemittanceResponse {
            remittance: Some(remittance_out(view)),
        }))
    }

    async fn get_tax_remittance(
        &self,
        request: Request<pb::GetTaxRemittanceRequest>,
    ) -> Result<Response<pb::GetTaxRemittanceResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let id = uuid(
            &mut violations,
            "remittance_id",
            &request.get_ref().remittance_id,
        );
        done(violations)?;
        let view = self
            .remittances
            .get(&principal, id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::GetTaxRemittanceResponse {
            remittance: Some(remittance_out(view)),
        }))
    }

    async fn list_tax_remittances(
        &self,
        request: Request<pb::ListTaxRemittancesRequest>,
    ) -> Result<Response<pb::ListTaxRemittancesResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let trainer = optional_uuid(&mut violations, "trainer_id", &request.trainer_id);
        let size = page_size(&mut violations, request.page_size, MAX_REMITTANCES_PAGE);
        let caller = Caller::User(principal.clone());
        let filter = request.trainer_id.as_bytes().to_vec();
        let query = PageQuery {
            method: "/fitflow.billing.v1.BillingService/ListTaxRemittances",
            caller: &caller,
            filter: &filter,
        };
        let after: Option<TimeIdCursor> =
            self.remittances
                .page_tokens()
                .read(&mut violations, &query, &request.page_token);
        done(violations)?;
        let (views, next) = self
            .remittances
            .list(
                &principal,
                trainer,
                after.map(|cursor| (cursor.at, cursor.id)),
                size,
            )
            .await?;
        let next_page_token = next
            .map(|(at, id)| {
                self.remittances
                    .page_tokens()
                    .issue(&query, &TimeIdCursor { at, id })
            })
            .unwrap_or_default();
        Ok(Response::new(pb::ListTaxRemittancesResponse {
            remittances: views.into_iter().map(remittance_out).collect(),
            next_page_token,
        }))
    }

    async fn file_tax_remittance(
        &self,
        request: Request<pb::FileTaxRemittanceRequest>,
    ) -> Result<Response<pb::FileTaxRemittanceResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let id = uuid(&mut violations, "remittance_id", &request.remittance_id);
        let filed_on = date_in(&mut violations, "filed_on", request.filed_on.as_ref());
        not_to_come(&mut violations, "filed_on", filed_on);
        reference_field(&mut violations, "reference", &request.reference);
        etag_field(&mut violations, "etag", &request.etag);
        done(violations)?;
        let Some(filed_on) = filed_on else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let view = self
            .remittances
            .file(
                &principal,
                id.unwrap_or_default(),
                filed_on,
                &request.reference,
                &request.etag,
            )
            .await?;
        Ok(Response::new(pb::FileTaxRemittanceResponse {
            remittance: Some(remittance_out(view)),
        }))
    }

    async fn mark_tax_remittance_paid(
        &self,
        request: Request<pb::MarkTaxRemittancePaidRequest>,
    ) -> Result<Response<pb::MarkTaxRemittancePaidResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let id = uuid(&mut violations, "remittance_id", &request.remittance_id);
        let paid_on = date_in(&mut violations, "paid_on", request.paid_on.as_ref());
        not_to_come(&mut violations, "paid_on", paid_on);
        reference_field(&mut violations, "reference", &request.reference);
        etag_field(&mut violations, "etag", &request.etag);
        done(violations)?;
        let Some(paid_on) = paid_on else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let view = self
            .remittances
            .pay(
                &principal,
                id.unwrap_or_default(),
                paid_on,
                &request.reference,
                &request.etag,
            )
            .await?;
        Ok(Response::new(pb::MarkTaxRemittancePaidResponse {
            remittance: Some(remittance_out(view)),
        }))
    }

    async fn record_payment(
        &self,
        request: Request<pb::RecordPaymentRequest>,
    ) -> Result<Response<pb::RecordPaymentResponse>, Status> {
        let principal = principal(&request)?;
        payments::record(&self.payments, &principal, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_payment(
        &self,
        request: Request<pb::GetPaymentRequest>,
    ) -> Result<Response<pb::GetPaymentResponse>, Status> {
        let principal = principal(&request)?;
        payments::get(&self.payments, &principal, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn list_payments(
        &self,
        request: Request<pb::ListPaymentsRequest>,
    ) -> Result<Response<pb::ListPaymentsResponse>, Status> {
        let principal = principal(&request)?;
        payments::list(&self.payments, &principal, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn refund_payment(
        &self,
        request: Request<pb::RefundPaymentRequest>,
    ) -> Result<Response<pb::RefundPaymentResponse>, Status> {
        let principal = principal(&request)?;
        payments::refund(&self.payments, &principal, request.into_inner())
            .await
            .map(Response::new)
    }

    type StreamClientInvoicesStream = exports::InvoiceStream;

    async fn stream_client_invoices(
        &self,
        request: Request<pb::StreamClientInvoicesRequest>,
    ) -> Result<Response<Self::StreamClientInvoicesStream>, Status> {
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.get_ref().client_id);
        done(violations)?;
        let client_id = client_id.unwrap_or_default();
        // The event commits, and the first batch is read, before the stream
        // starts: a failure is the call's own answer.
        let (first, position) = self.exports.begin(client_id).await?;
        let state = exports::ExportState::new(self.exports.clone(), client_id, first, position);
        Ok(Response::new(Box::pin(futures::stream::unfold(
            state,
            exports::next_message,
        ))))
    }

    async fn list_session_packs(
        &self,
        request: Request<pb::ListSessionPacksRequest>,
    ) -> Result<Response<pb::ListSessionPacksResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let issuer = optional_uuid(&mut violations, "issuer_id", &request.issuer_id);
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let size = page_size(&mut violations, request.page_size, MAX_INVOICES_PAGE);
        let caller = Caller::User(principal.clone());
        let filter = [
            request.issuer_id.as_bytes(),
            b"/",
            request.client_id.as_bytes(),
        ]
        .concat();
        let query = PageQuery {
            method: "/fitflow.billing.v1.BillingService/ListSessionPacks",
            caller: &caller,
            filter: &filter,
        };
        // The cursor's instant is the last pack's expiry date at midnight UTC.
        let after: Option<TimeIdCursor> =
            self.invoicing
                .page_tokens()
                .read(&mut violations, &query, &request.page_token);
        done(violations)?;
        let (packs, next) = self
            .invoicing
            .list_packs(
                &principal,
                issuer,
                client_id.unwrap_or_default(),
                after.map(|cursor| (cursor.at.date_naive(), cursor.id)),
                size,
            )
            .await?;
        let next_page_token = next
            .map(|(expires_on, id)| {
                let at = expires_on.and_time(chrono::NaiveTime::MIN).and_utc();
                self.invoicing
                    .page_tokens()
                    .issue(&query, &TimeIdCursor { at, id })
            })
            .unwrap_or_default();
        Ok(Response::new(pb::ListSessionPacksResponse {
            session_packs: packs.into_iter().map(pack_out).collect(),
            next_page_token,
        }))
    }

    async fn sweep_overdue_invoices(
        &self,
        request: Request<pb::SweepOverdueInvoicesRequest>,
    ) -> Result<Response<pb::SweepOverdueInvoicesResponse>, Status> {
        let principal = principal(&request)?;
        payments::sweep(&self.payments, &principal)
            .await
            .map(Response::new)
    }
}

/// The chunks of a rendered PDF.
pub(crate) type PdfStream =
    Pin<Box<dyn futures::Stream<Item = Result<pb::RenderInvoicePdfResponse, Status>> + Send>>;

/// Largest chunk of a streamed PDF.
const PDF_CHUNK: usize = 64 * 1024;

/// `bytes` as chunks of at most [`PDF_CHUNK`]; the first names the file.
fn pdf_chunks(file_name: String, bytes: Vec<u8>) -> PdfStream {
    let chunks: Vec<_> = bytes
        .chunks(PDF_CHUNK)
        .enumerate()
        .map(|(index, data)| {
            Ok(pb::RenderInvoicePdfResponse {
                data: data.to_vec(),
                file_name: if index == 0 {
                    file_name.clone()
                } else {
                    String::new()
                },
                content_type: if index == 0 {
                    "application/pdf".to_owned()
                } else {
                    String::new()
                },
            })
        })
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_amount_is_what_numeric_12_2_holds() {
        assert_eq!(MAX_AMOUNT.to_string(), "9999999999.99");
    }
}
