//! Every SQL statement of the billing service (payments' in
//! [`payments`], a client's export's in [`exports`]).

mod billed;
mod exports;
mod packs;
mod payments;
mod recipients;

pub(crate) use billed::*;
pub(crate) use exports::*;
pub(crate) use packs::*;
pub(crate) use payments::*;
pub(crate) use recipients::*;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

/// A `tax_rates` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RateRow {
    pub id: Uuid,
    pub province: Option<String>,
    pub kind: String,
    pub percent: Decimal,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
    pub applies_to_services: bool,
    pub source: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

const RATE_COLUMNS: &str = "id, province, kind, percent, valid_from, valid_until, \
     applies_to_services, source, created_by, created_at";

/// The whole table: federal first, then by province, tax and start.
pub(crate) async fn rates(conn: &mut PgConnection) -> Result<Vec<RateRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RATE_COLUMNS} FROM tax_rates \
         ORDER BY province NULLS FIRST, kind, valid_from"
    ))
    .fetch_all(conn)
    .await
}

/// Serialises changes of one (province, tax) for the transaction.
pub(crate) async fn lock_scope(
    conn: &mut PgConnection,
    province: Option<&str>,
    kind: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('fitflow_tax_rates:' || $1 || ':' || $2))")
        .bind(province.unwrap_or("CA"))
        .bind(kind)
        .execute(conn)
        .await?;
    Ok(())
}

/// The open-ended version of (province, tax), if any.
pub(crate) async fn open_rate(
    conn: &mut PgConnection,
    province: Option<&str>,
    kind: &str,
) -> Result<Option<RateRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RATE_COLUMNS} FROM tax_rates \
         WHERE province IS NOT DISTINCT FROM $1 AND kind = $2 AND valid_until IS NULL"
    ))
    .bind(province)
    .bind(kind)
    .fetch_optional(conn)
    .await
}

/// Ends version `id` on `until`.
pub(crate) async fn end_rate(
    conn: &mut PgConnection,
    id: Uuid,
    until: NaiveDate,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tax_rates SET valid_until = $2 WHERE id = $1")
        .bind(id)
        .bind(until)
        .execute(conn)
        .await?;
    Ok(())
}

/// Adds a version.
pub(crate) async fn insert_rate(conn: &mut PgConnection, row: &RateRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tax_rates (id, province, kind, percent, valid_from, valid_until, \
         applies_to_services, source, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(row.id)
    .bind(&row.province)
    .bind(&row.kind)
    .bind(row.percent)
    .bind(row.valid_from)
    .bind(row.valid_until)
    .bind(row.applies_to_services)
    .bind(&row.source)
    .bind(row.created_by)
    .execute(conn)
    .await?;
    Ok(())
}

/// Version `id`.
pub(crate) async fn rate(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<RateRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RATE_COLUMNS} FROM tax_rates WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// An `invoices` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct InvoiceRow {
    pub id: Uuid,
    pub issuer_id: Uuid,
    /// The client billed; `None` on an invoice to a studio.
    pub client_id: Option<Uuid>,
    /// The studio billed; `None` on an invoice to a client.
    pub studio_id: Option<Uuid>,
    pub status: String,
    pub number: Option<String>,
    pub invoice_date: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
    pub payment_terms_days: i32,
    pub subtotal: Decimal,
    pub tax_total: Decimal,
    pub total: Decimal,
    pub tax_registered: bool,
    pub gst_hst_number: String,
    pub qst_number: String,
    pub notes: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub issued_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
    pub kind: String,
    pub credit_of: Option<Uuid>,
    pub amount_paid: Decimal,
}

/// Whom an invoice bills: exactly one client or one studio.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Payer {
    Client(Uuid),
    Studio(Uuid),
}

impl InvoiceRow {
    /// A new draft `id` of `issuer_id` to `payer`: no number, no tax, its
    /// total its subtotal.
    pub(crate) fn draft(
        id: Uuid,
        issuer_id: Uuid,
        payer: Payer,
        payment_terms_days: i32,
        notes: String,
        subtotal: Decimal,
    ) -> Self {
        let (client_id, studio_id) = match payer {
            Payer::Client(client) => (Some(client), None),
            Payer::Studio(studio) => (None, Some(studio)),
        };
        InvoiceRow {
            id,
            issuer_id,
            client_id,
            studio_id,
            status: "draft".to_owned(),
            number: None,
            invoice_date: None,
            due_date: None,
            payment_terms_days,
            subtotal,
            tax_total: Decimal::ZERO,
            total: subtotal,
            tax_registered: false,
            gst_hst_number: String::new(),
            qst_number: String::new(),
            notes,
            version: 1,
            created_at: Utc::now(),
            issued_at: None,
            voided_at: None,
            kind: "invoice".to_owned(),
            credit_of: None,
            amount_paid: Decimal::ZERO,
        }
    }
}

const INVOICE_COLUMNS: &str = "id, issuer_id, client_id, studio_id, status, number, invoice_date, due_date, \
     payment_terms_days, subtotal, tax_total, total, tax_registered, gst_hst_number, qst_number, \
     notes, version, created_at, issued_at, voided_at, kind, credit_of, amount_paid";

/// An `invoice_lines` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct LineRow {
    pub position: i32,
    pub description: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub amount: Decimal,
    pub province: String,
    pub treatment: String,
    /// The appointment a drafted line bills; `None` on a manual line.
    pub appointment_id: Option<Uuid>,
    /// What it charges for (`session`, `late_cancel`, `no_show`), with
    /// `appointment_id`.
    pub charge: Option<String>,
    /// On a line selling a session pack: its sessions.
    pub pack_sessions: Option<i32>,
    /// On a line selling a session pack: its last local date.
    pub pack_expires_on: Option<NaiveDate>,
    /// On a drafted 0.00 line: the pack its session was drawn from.
    pub drawn_pack_id: Option<Uuid>,
}

/// The columns of a [`LineRow`].
const LINE_COLUMNS: &str = "position, description, quantity, unit_price, amount, province, \
     treatment, appointment_id, charge, pack_sessions, pack_expires_on, drawn_pack_id";

/// An `invoice_taxes` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct TaxRow {
    pub province: String,
    pub kind: String,
    pub percent: Decimal,
    pub base: Decimal,
    pub amount: Decimal,
}

/// Inserts a draft (its totals are its subtotal).
pub(crate) async fn insert_invoice(
    conn: &mut PgConnection,
    row: &InvoiceRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO invoices (id, issuer_id, client_id, studio_id, payment_terms_days, subtotal, \
         total, notes) VALUES ($1, $2, $3, $7, $4, $5, $5, $6)",
    )
    .bind(row.id)
    .bind(row.issuer_id)
    .bind(row.client_id)
    .bind(row.payment_terms_days)
    .bind(row.subtotal)
    .bind(&row.notes)
    .bind(row.studio_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes a draft's lines (after [`delete_lines`] on an update).
pub(crate) async fn insert_lines(
    conn: &mut PgConnection,
    invoice_id: Uuid,
    issuer_id: Uuid,
    lines: &[LineRow],
) -> Result<(), sqlx::Error> {
    for line in lines {
        sqlx::query(
            "INSERT INTO invoice_lines (invoice_id, position, issuer_id, description, quantity, \
             unit_price, amount, province, treatment, appointment_id, charge, pack_sessions, \
             pack_expires_on, drawn_pack_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(invoice_id)
        .bind(line.position)
        .bind(issuer_id)
        .bind(&line.description)
        .bind(line.quantity)
        .bind(line.unit_price)
        .bind(line.amount)
        .bind(&line.province)
        .bind(&line.treatment)
        .bind(line.appointment_id)
        .bind(&line.charge)
        .bind(line.pack_sessions)
        .bind(line.pack_expires_on)
        .bind(line.drawn_pack_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Removes a draft's lines.
pub(crate) async fn delete_lines(
    conn: &mut PgConnection,
    invoice_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM invoice_lines WHERE invoice_id = $1")
        .bind(invoice_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Invoice `id`, if the caller sees it (locked for a change).
pub(crate) async fn invoice(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// An invoice's lines, in order.
pub(crate) async fn lines(conn: &mut PgConnection, id: Uuid) -> Result<Vec<LineRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {LINE_COLUMNS} FROM invoice_lines WHERE invoice_id = $1 ORDER BY position"
    ))
    .bind(id)
    .fetch_all(conn)
    .await
}

/// An invoice's taxes, in order.
pub(crate) async fn taxes(conn: &mut PgConnection, id: Uuid) -> Result<Vec<TaxRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT province, kind, percent, base, amount FROM invoice_taxes \
         WHERE invoice_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(conn)
    .await
}

/// A row of one of several invoices, keyed by its invoice.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Keyed<T> {
    pub invoice_id: Uuid,
    #[sqlx(flatten)]
    pub row: T,
}

/// The lines of the invoices `ids`, in order within each invoice: one query
/// for a page of invoices, not one per invoice.
pub(crate) async fn lines_of(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<Keyed<LineRow>>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT invoice_id, {LINE_COLUMNS} FROM invoice_lines WHERE invoice_id = ANY($1) \
         ORDER BY invoice_id, position"
    ))
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// The taxes of the invoices `ids`, in order within each invoice.
pub(crate) async fn taxes_of(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<Keyed<TaxRow>>, sqlx::Error> {
    sqlx::query_as(
        "SELECT invoice_id, province, kind, percent, base, amount FROM invoice_taxes \
         WHERE invoice_id = ANY($1) ORDER BY invoice_id, position",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Replaces a draft's terms, notes and subtotal.
pub(crate) async fn update_draft(
    conn: &mut PgConnection,
    id: Uuid,
    payment_terms_days: i32,
    notes: &str,
    subtotal: Decimal,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE invoices SET payment_terms_days = $2, notes = $3, subtotal = $4, total = $4, \
         version = version + 1 WHERE id = $1 AND status = 'draft'",
    )
    .bind(id)
    .bind(payment_terms_days)
    .bind(notes)
    .bind(subtotal)
    .execute(conn)
    .await?;
    Ok(())
}

/// The issuer's next number of `doc_type` (`invoice`, `credit_note`) in
/// `year`, taken in this transaction (the series row stays locked until it
/// ends, so numbers follow the order issues commit in, and a rollback gives
/// the number back).
pub(crate) async fn next_number(
    conn: &mut PgConnection,
    issuer_id: Uuid,
    doc_type: &str,
    year: i32,
) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO invoice_series (issuer_id, doc_type, year, last_number) \
         VALUES ($1, $2, $3, 1) \
         ON CONFLICT (issuer_id, doc_type, year) \
         DO UPDATE SET last_number = invoice_series.last_number + 1 \
         RETURNING last_number",
    )
    .bind(issuer_id)
    .bind(doc_type)
    .bind(year)
    .fetch_one(conn)
    .await
}

/// How much the credit notes of `invoice_id` credit so far (a positive sum).
pub(crate) async fn credited(
    conn: &mut PgConnection,
    invoice_id: Uuid,
) -> Result<Decimal, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(-sum(subtotal), 0) FROM invoices \
         WHERE credit_of = $1 AND kind = 'credit_note'",
    )
    .bind(invoice_id)
    .fetch_one(conn)
    .await
}

/// What the credit notes of `invoice_id` credit so far per (province,
/// treatment) of their lines (positive sums).
pub(crate) async fn credited_by_supply(
    conn: &mut PgConnection,
    invoice_id: Uuid,
) -> Result<Vec<(String, String, Decimal)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT l.province, l.treatment, -sum(l.amount) FROM invoice_lines l \
         JOIN invoices i ON i.id = l.invoice_id \
         WHERE i.credit_of = $1 AND i.kind = 'credit_note' \
         GROUP BY l.province, l.treatment",
    )
    .bind(invoice_id)
    .fetch_all(conn)
    .await
}

/// The tax and base the credit notes of `invoice_id` credit so far per
/// (province, kind) (negative sums).
pub(crate) async fn credited_taxes(
    conn: &mut PgConnection,
    invoice_id: Uuid,
) -> Result<Vec<(String, String, Decimal, Decimal)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.province, t.kind, sum(t.amount), sum(t.base) FROM invoice_taxes t \
         JOIN invoices i ON i.id = t.invoice_id \
         WHERE i.credit_of = $1 AND i.kind = 'credit_note' \
         GROUP BY t.province, t.kind",
    )
    .bind(invoice_id)
    .fetch_all(conn)
    .await
}

/// Whether any credit note corrects `invoice_id`.
pub(crate) async fn has_credit_notes(
    conn: &mut PgConnection,
    invoice_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM invoices WHERE credit_of = $1 AND kind = 'credit_note')",
    )
    .bind(invoice_id)
    .fetch_one(conn)
    .await
}

/// Inserts a credit note as a draft (its lines go in next; [`issue`] then
/// numbers it, in the same transaction).
pub(crate) async fn insert_credit_note(
    conn: &mut PgConnection,
    row: &InvoiceRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO invoices (id, issuer_id, client_id, studio_id, payment_terms_days, subtotal, \
         total, notes, kind, credit_of) VALUES ($1, $2, $3, $7, 0, $4, $4, $5, 'credit_note', $6)",
    )
    .bind(row.id)
    .bind(row.issuer_id)
    .bind(row.client_id)
    .bind(row.subtotal)
    .bind(&row.notes)
    .bind(row.credit_of)
    .bind(row.studio_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a document's taxes.
pub(crate) async fn insert_taxes(
    conn: &mut PgConnection,
    id: Uuid,
    issuer_id: Uuid,
    taxes: &[TaxRow],
) -> Result<(), sqlx::Error> {
    for (index, tax) in taxes.iter().enumerate() {
        sqlx::query(
            "INSERT INTO invoice_taxes (invoice_id, position, issuer_id, province, kind, percent, \
             base, amount) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(i32::try_from(index + 1).unwrap_or(i32::MAX))
        .bind(issuer_id)
        .bind(&tax.province)
        .bind(&tax.kind)
        .bind(tax.percent)
        .bind(tax.base)
        .bind(tax.amount)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// What issuing records.
#[derive(Debug, Clone)]
pub(crate) struct Issue<'a> {
    pub number: &'a str,
    pub invoice_date: NaiveDate,
    pub due_date: NaiveDate,
    pub tax_total: Decimal,
    pub registered: bool,
    pub gst_hst_number: &'a str,
    pub qst_number: &'a str,
}

/// Issues a draft and stores its taxes.
pub(crate) async fn issue(
    conn: &mut PgConnection,
    id: Uuid,
    issuer_id: Uuid,
    issue: &Issue<'_>,
    taxes: &[TaxRow],
) -> Result<(), sqlx::Error> {
    insert_taxes(&mut *conn, id, issuer_id, taxes).await?;
    sqlx::query(
        "UPDATE invoices SET status = 'issued', number = $2, invoice_date = $3, due_date = $4, \
         tax_total = $5, total = subtotal + $5, tax_registered = $6, gst_hst_number = $7, \
         qst_number = $8, issued_at = now(), version = version + 1 \
         WHERE id = $1 AND status = 'draft'",
    )
    .bind(id)
    .bind(issue.number)
    .bind(issue.invoice_date)
    .bind(issue.due_date)
    .bind(issue.tax_total)
    .bind(issue.registered)
    .bind(issue.gst_hst_number)
    .bind(issue.qst_number)
    .execute(conn)
    .await?;
    Ok(())
}

/// Voids an invoice.
pub(crate) async fn void(
    conn: &mut PgConnection,
    id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE invoices SET status = 'void', voided_at = now(), void_reason = $2, \
         version = version + 1 WHERE id = $1 AND status <> 'void'",
    )
    .bind(id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// One page of an issuer's invoices, newest first.
pub(crate) async fn invoices_of(
    conn: &mut PgConnection,
    issuer_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<InvoiceRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE issuer_id = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(issuer_id)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Lets this transaction read, as a manager, the issued documents
/// addressed to `studios` (the token's studios; row-level security's
/// `caller_manages`), until it ends.
pub(crate) async fn manage_studios(
    conn: &mut PgConnection,
    studios: &[Uuid],
) -> Result<(), sqlx::Error> {
    let joined = studios
        .iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(",");
    sqlx::query("SELECT set_config('fitflow.managed_studios', $1, true)")
        .bind(joined)
        .execute(conn)
        .await?;
    Ok(())
}

/// A page of the issued documents addressed to `studio_id`, newest first
/// (drafts are their issuer's alone).
pub(crate) async fn invoices_to_studio(
    conn: &mut PgConnection,
    studio_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<InvoiceRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE studio_id = $1 AND status <> 'draft' \
         AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(studio_id)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A `bank_accounts` row (the numbers sealed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct BankAccountRow {
    pub id: Uuid,
    pub trainer_id: Uuid,
    pub name: String,
    pub bank_name: String,
    pub account_type: String,
    pub currency: String,
    pub is_primary: bool,
    pub status: String,
    pub institution_number_sealed: Vec<u8>,
    pub transit_number_sealed: Vec<u8>,
    pub account_number_sealed: Vec<u8>,
    pub account_number_last3: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

const BANK_ACCOUNT_COLUMNS: &str = "id, trainer_id, name, bank_name, account_type, currency, \
     is_primary, status, institution_number_sealed, transit_number_sealed, account_number_sealed, \
     account_number_last3, version, created_at, updated_at, closed_at";

/// Serialises a trainer's bank-account changes (the primary flag, the
/// count) for the transaction.
pub(crate) async fn lock_bank_accounts(
    conn: &mut PgConnection,
    trainer_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('fitflow_bank_accounts:' || $1::text))")
        .bind(trainer_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// How many bank accounts the trainer has, closed ones included.
pub(crate) async fn bank_account_count(
    conn: &mut PgConnection,
    trainer_id: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM bank_accounts WHERE trainer_id = $1")
        .bind(trainer_id)
        .fetch_one(conn)
        .await
}

/// Adds a bank account.
pub(crate) async fn insert_bank_account(
    conn: &mut PgConnection,
    row: &BankAccountRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO bank_accounts (id, trainer_id, name, bank_name, account_type, currency, \
         is_primary, institution_number_sealed, transit_number_sealed, account_number_sealed, \
         account_number_last3) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(row.id)
    .bind(row.trainer_id)
    .bind(&row.name)
    .bind(&row.bank_name)
    .bind(&row.account_type)
    .bind(&row.currency)
    .bind(row.is_primary)
    .bind(&row.institution_number_sealed)
    .bind(&row.transit_number_sealed)
    .bind(&row.account_number_sealed)
    .bind(&row.account_number_last3)
    .execute(conn)
    .await?;
    Ok(())
}

/// Bank account `id`, if the caller owns it (locked for a change).
pub(crate) async fn bank_account(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<BankAccountRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {BANK_ACCOUNT_COLUMNS} FROM bank_accounts WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A trainer's bank accounts: primary first, then by creation.
pub(crate) async fn bank_accounts_of(
    conn: &mut PgConnection,
    trainer_id: Uuid,
) -> Result<Vec<BankAccountRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {BANK_ACCOUNT_COLUMNS} FROM bank_accounts WHERE trainer_id = $1 \
         ORDER BY is_primary DESC, created_at, id"
    ))
    .bind(trainer_id)
    .fetch_all(conn)
    .await
}

/// The trainer's primary account other than `except`, if any.
pub(crate) async fn other_primary(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    except: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM bank_accounts WHERE trainer_id = $1 AND is_primary AND id <> $2",
    )
    .bind(trainer_id)
    .bind(except)
    .fetch_optional(conn)
    .await
}

/// Makes account `id` not primary.
pub(crate) async fn unset_primary(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE bank_accounts SET is_primary = false, version = version + 1, updated_at = now() \
         WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces an active account's details (and its sealed numbers, kept
/// as they are when `None`).
pub(crate) async fn update_bank_account(
    conn: &mut PgConnection,
    row: &BankAccountRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE bank_accounts SET name = $2, bank_name = $3, account_type = $4, currency = $5, \
         is_primary = $6, institution_number_sealed = $7, transit_number_sealed = $8, \
         account_number_sealed = $9, account_number_last3 = $10, version = version + 1, \
         updated_at = now() WHERE id = $1 AND status = 'active'",
    )
    .bind(row.id)
    .bind(&row.name)
    .bind(&row.bank_name)
    .bind(&row.account_type)
    .bind(&row.currency)
    .bind(row.is_primary)
    .bind(&row.institution_number_sealed)
    .bind(&row.transit_number_sealed)
    .bind(&row.account_number_sealed)
    .bind(&row.account_number_last3)
    .execute(conn)
    .await?;
    Ok(())
}

/// Closes an account.
pub(crate) async fn close_bank_account(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE bank_accounts SET status = 'closed', is_primary = false, closed_at = now(), \
         updated_at = now(), version = version + 1 WHERE id = $1 AND status = 'active'",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A `tax_remittances` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RemittanceRow {
    pub id: Uuid,
    pub trainer_id: Uuid,
    pub kind: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub status: String,
    pub gross_revenue: Decimal,
    pub taxable_revenue: Decimal,
    pub tax_collected: Decimal,
    pub input_tax_credits: Decimal,
    pub net_tax: Decimal,
    pub quick_method: bool,
    pub quick_method_base: Option<Decimal>,
    pub quick_method_remittance: Option<Decimal>,
    pub quick_method_credit: Option<Decimal>,
    pub establishment_province: Option<String>,
    pub filed_on: Option<NaiveDate>,
    pub filing_reference: String,
    pub paid_on: Option<NaiveDate>,
    pub payment_reference: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub calculated_at: DateTime<Utc>,
}

const REMITTANCE_COLUMNS: &str = "id, trainer_id, kind, period_start, period_end, status, \
     gross_revenue, taxable_revenue, tax_collected, input_tax_credits, net_tax, quick_method, \
     quick_method_base, quick_method_remittance, quick_method_credit, establishment_province, \
     filed_on, filing_reference, paid_on, payment_reference, version, created_at, calculated_at";

/// Serialises a trainer's calculations of one tax for the transaction.
pub(crate) async fn lock_remittances(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    kind: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtext('fitflow_tax_remittances:' || $1::text || ':' || $2))",
    )
    .bind(trainer_id)
    .bind(kind)
    .execute(conn)
    .await?;
    Ok(())
}

/// Remittance `id`, if the caller owns it (locked for a change).
pub(crate) async fn remittance(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<RemittanceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REMITTANCE_COLUMNS} FROM tax_remittances WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The trainer's remittances of `kind` whose period overlaps `start..=end`.
pub(crate) async fn overlapping_remittances(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    kind: &str,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<RemittanceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REMITTANCE_COLUMNS} FROM tax_remittances \
         WHERE trainer_id = $1 AND kind = $2 AND period_start <= $4 AND period_end >= $3 \
         FOR UPDATE"
    ))
    .bind(trainer_id)
    .bind(kind)
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await
}

/// Stores a new remittance, or the recalculation of `row.id`.
pub(crate) async fn upsert_remittance(
    conn: &mut PgConnection,
    row: &RemittanceRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tax_remittances (id, trainer_id, kind, period_start, period_end, \
         gross_revenue, taxable_revenue, tax_collected, input_tax_credits, net_tax, quick_method, \
         quick_method_base, quick_method_remittance, establishment_province, quick_method_credit) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (id) DO UPDATE SET gross_revenue = $6, taxable_revenue = $7, \
         tax_collected = $8, input_tax_credits = $9, net_tax = $10, quick_method = $11, \
         quick_method_base = $12, quick_method_remittance = $13, establishment_province = $14, \
         quick_method_credit = $15, \
         calculated_at = now(), version = tax_remittances.version + 1 \
         WHERE tax_remittances.status = 'calculated'",
    )
    .bind(row.id)
    .bind(row.trainer_id)
    .bind(&row.kind)
    .bind(row.period_start)
    .bind(row.period_end)
    .bind(row.gross_revenue)
    .bind(row.taxable_revenue)
    .bind(row.tax_collected)
    .bind(row.input_tax_credits)
    .bind(row.net_tax)
    .bind(row.quick_method)
    .bind(row.quick_method_base)
    .bind(row.quick_method_remittance)
    .bind(&row.establishment_province)
    .bind(row.quick_method_credit)
    .execute(conn)
    .await?;
    Ok(())
}

/// The quick-method bases of a trainer's `kind` remittances whose periods
/// end in [year_start, before): the fiscal year's supplies that have
/// already used the quick method's credit ceiling.
pub(crate) async fn earlier_quick_bases(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    kind: &str,
    year_start: NaiveDate,
    before: NaiveDate,
) -> Result<Decimal, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(sum(quick_method_base), 0) FROM tax_remittances \
         WHERE trainer_id = $1 AND kind = $2 AND quick_method \
           AND period_end >= $3 AND period_end < $4",
    )
    .bind(trainer_id)
    .bind(kind)
    .bind(year_start)
    .bind(before)
    .fetch_one(conn)
    .await
}

/// Records the filing of a calculated remittance.
pub(crate) async fn file_remittance(
    conn: &mut PgConnection,
    id: Uuid,
    filed_on: NaiveDate,
    reference: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tax_remittances SET status = 'filed', filed_on = $2, filing_reference = $3, \
         version = version + 1 WHERE id = $1 AND status = 'calculated'",
    )
    .bind(id)
    .bind(filed_on)
    .bind(reference)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the payment of a filed remittance.
pub(crate) async fn pay_remittance(
    conn: &mut PgConnection,
    id: Uuid,
    paid_on: NaiveDate,
    reference: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tax_remittances SET status = 'paid', paid_on = $2, payment_reference = $3, \
         version = version + 1 WHERE id = $1 AND status = 'filed'",
    )
    .bind(id)
    .bind(paid_on)
    .bind(reference)
    .execute(conn)
    .await?;
    Ok(())
}

/// One page of a trainer's remittances, latest period first.
pub(crate) async fn remittances_of(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<RemittanceRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT {REMITTANCE_COLUMNS} FROM tax_remittances WHERE trainer_id = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(trainer_id)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The subtotals of the trainer's issued invoices and credit notes dated
/// in `start..=end` (void invoices excluded).
pub(crate) async fn period_revenue(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Decimal, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(sum(subtotal), 0) FROM invoices \
         WHERE issuer_id = $1 AND status NOT IN ('draft', 'void') AND invoice_date BETWEEN $2 AND $3",
    )
    .bind(trainer_id)
    .bind(start)
    .bind(end)
    .fetch_one(conn)
    .await
}

/// The tax lines of the trainer's issued invoices and credit notes dated
/// in `start..=end`: (date, province, kind, base, amount).
pub(crate) async fn period_taxes(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<(NaiveDate, String, String, Decimal, Decimal)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.invoice_date, t.province, t.kind, t.base, t.amount FROM invoice_taxes t \
         JOIN invoices i ON i.id = t.invoice_id \
         WHERE i.issuer_id = $1 AND i.status NOT IN ('draft', 'void') AND i.invoice_date BETWEEN $2 AND $3 \
         ORDER BY i.invoice_date, i.id, t.position",
    )
    .bind(trainer_id)
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await
}

/// The trainer's taxable supplies (taxable and zero-rated lines, net of
/// credit notes) dated in `start..=end`.
pub(crate) async fn taxable_supplies(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Decimal, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(sum(l.amount), 0) FROM invoice_lines l \
         JOIN invoices i ON i.id = l.invoice_id \
         WHERE i.issuer_id = $1 AND i.status NOT IN ('draft', 'void') AND i.invoice_date BETWEEN $2 AND $3 \
         AND l.treatment IN ('taxable', 'zero_rated')",
    )
    .bind(trainer_id)
    .bind(start)
    .bind(end)
    .fetch_one(conn)
    .await
}

/// A `quick_method_rates` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct QuickRateRow {
    pub kind: String,
    pub establishment_region: String,
    pub supply_region: String,
    pub percent: Decimal,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
}

/// The quick method's published rates.
pub(crate) async fn quick_rates(conn: &mut PgConnection) -> Result<Vec<QuickRateRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kind, establishment_region, supply_region, percent, valid_from, valid_until \
         FROM quick_method_rates ORDER BY kind, establishment_region, supply_region, valid_from",
    )
    .fetch_all(conn)
    .await
}

/// A `quick_method_rates` row as listed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct QuickRateVersion {
    pub id: Uuid,
    pub kind: String,
    pub establishment_region: String,
    pub supply_region: String,
    pub percent: Decimal,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
    pub source: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

const QUICK_RATE_COLUMNS: &str = "id, kind, establishment_region, supply_region, percent, \
     valid_from, valid_until, source, created_by, created_at";

/// Every quick-method rate version, by key then start.
pub(crate) async fn quick_rate_versions(
    conn: &mut PgConnection,
) -> Result<Vec<QuickRateVersion>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {QUICK_RATE_COLUMNS} FROM quick_method_rates \
         ORDER BY kind, establishment_region, supply_region, valid_from"
    ))
    .fetch_all(conn)
    .await
}

/// The versions of one (kind, establishment region, supply region).
pub(crate) async fn quick_rate_versions_of(
    conn: &mut PgConnection,
    (kind, establishment, supply): (&str, &str, &str),
) -> Result<Vec<QuickRateVersion>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {QUICK_RATE_COLUMNS} FROM quick_method_rates \
         WHERE kind = $1 AND establishment_region = $2 AND supply_region = $3 ORDER BY valid_from"
    ))
    .bind(kind)
    .bind(establishment)
    .bind(supply)
    .fetch_all(conn)
    .await
}

/// Quick-method rate version `id`.
pub(crate) async fn quick_rate_version(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<QuickRateVersion>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {QUICK_RATE_COLUMNS} FROM quick_method_rates WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Serialises additions to one quick-method rate's versions.
pub(crate) async fn lock_quick_key(
    conn: &mut PgConnection,
    (kind, establishment, supply): (&str, &str, &str),
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('fitflow_quick_rates:' || $1 || ':' || $2 || ':' || $3))")
        .bind(kind)
        .bind(establishment)
        .bind(supply)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends quick-method rate version `id` on `until`.
pub(crate) async fn end_quick_rate(
    conn: &mut PgConnection,
    id: Uuid,
    until: NaiveDate,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE quick_method_rates SET valid_until = $2 WHERE id = $1")
        .bind(id)
        .bind(until)
        .execute(conn)
        .await?;
    Ok(())
}

/// Adds an open-ended quick-method rate version, by `operator`.
pub(crate) async fn insert_quick_rate(
    conn: &mut PgConnection,
    id: Uuid,
    new: &crate::quick_rates::NewQuickRate,
    operator: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO quick_method_rates (id, kind, establishment_region, supply_region, percent, \
         valid_from, source, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(new.kind)
    .bind(new.establishment_region)
    .bind(new.supply_region)
    .bind(new.percent)
    .bind(new.valid_from)
    .bind(&new.source)
    .bind(operator)
    .execute(conn)
    .await?;
    Ok(())
}
