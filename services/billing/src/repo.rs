//! Every SQL statement of the billing service.

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
    pub client_id: Uuid,
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
}

const INVOICE_COLUMNS: &str = "id, issuer_id, client_id, status, number, invoice_date, due_date, \
     payment_terms_days, subtotal, tax_total, total, tax_registered, gst_hst_number, qst_number, \
     notes, version, created_at, issued_at, voided_at, kind, credit_of";

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
}

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
        "INSERT INTO invoices (id, issuer_id, client_id, payment_terms_days, subtotal, total, notes) \
         VALUES ($1, $2, $3, $4, $5, $5, $6)",
    )
    .bind(row.id)
    .bind(row.issuer_id)
    .bind(row.client_id)
    .bind(row.payment_terms_days)
    .bind(row.subtotal)
    .bind(&row.notes)
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
             unit_price, amount, province, treatment) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
    sqlx::query_as(
        "SELECT position, description, quantity, unit_price, amount, province, treatment \
         FROM invoice_lines WHERE invoice_id = $1 ORDER BY position",
    )
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
        "INSERT INTO invoices (id, issuer_id, client_id, payment_terms_days, subtotal, total, \
         notes, kind, credit_of) VALUES ($1, $2, $3, 0, $4, $4, $5, 'credit_note', $6)",
    )
    .bind(row.id)
    .bind(row.issuer_id)
    .bind(row.client_id)
    .bind(row.subtotal)
    .bind(&row.notes)
    .bind(row.credit_of)
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
