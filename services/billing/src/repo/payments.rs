//! Payments, refunds and the payment-aware statuses of invoices.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

/// A `payments` row, with what its refunds gave back (a payment's; zero on
/// a refund).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct PaymentRow {
    pub id: Uuid,
    pub invoice_id: Uuid,
    pub issuer_id: Uuid,
    pub kind: String,
    pub refund_of: Option<Uuid>,
    pub method: String,
    pub amount: Decimal,
    pub currency: String,
    pub reference: String,
    pub paid_on: NaiveDate,
    pub bank_account_id: Option<Uuid>,
    pub reason: String,
    pub recorded_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub refunded: Decimal,
}

pub(super) const PAYMENT_COLUMNS: &str = "p.id, p.invoice_id, p.issuer_id, p.kind, p.refund_of, p.method, \
     p.amount, p.currency, p.reference, p.paid_on, p.bank_account_id, p.reason, p.recorded_by, \
     p.created_at, coalesce((SELECT -sum(r.amount) FROM payments r WHERE r.refund_of = p.id), 0) \
     AS refunded";

/// Records a payment or a refund (`refunded` is ignored).
pub(crate) async fn insert_payment(
    conn: &mut PgConnection,
    row: &PaymentRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payments (id, invoice_id, issuer_id, kind, refund_of, method, amount, \
         currency, reference, paid_on, bank_account_id, reason, recorded_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(row.id)
    .bind(row.invoice_id)
    .bind(row.issuer_id)
    .bind(&row.kind)
    .bind(row.refund_of)
    .bind(&row.method)
    .bind(row.amount)
    .bind(&row.currency)
    .bind(&row.reference)
    .bind(row.paid_on)
    .bind(row.bank_account_id)
    .bind(&row.reason)
    .bind(row.recorded_by)
    .execute(conn)
    .await?;
    Ok(())
}

/// Payment `id`, if the caller sees it.
pub(crate) async fn payment(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments p WHERE p.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// One page of an invoice's payments and refunds, oldest first.
pub(crate) async fn payments_of(
    conn: &mut PgConnection,
    invoice_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<PaymentRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments p WHERE p.invoice_id = $1 \
         AND ($2::timestamptz IS NULL OR (p.created_at, p.id) > ($2, $3)) \
         ORDER BY p.created_at, p.id LIMIT $4"
    ))
    .bind(invoice_id)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The totals of the credit notes of `invoice_id` (a sum of negatives).
pub(crate) async fn credit_note_totals(
    conn: &mut PgConnection,
    invoice_id: Uuid,
) -> Result<Decimal, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(sum(total), 0) FROM invoices \
         WHERE credit_of = $1 AND kind = 'credit_note'",
    )
    .bind(invoice_id)
    .fetch_one(conn)
    .await
}

/// The sums of the credit notes of the invoices `ids` that have any.
pub(crate) async fn credit_note_totals_of(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, Decimal)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT credit_of, sum(total) FROM invoices \
         WHERE credit_of = ANY($1) AND kind = 'credit_note' GROUP BY credit_of",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Records an invoice's new amount paid and status.
pub(crate) async fn set_payment_state(
    conn: &mut PgConnection,
    id: Uuid,
    amount_paid: Decimal,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE invoices SET amount_paid = $2, status = $3, version = version + 1 \
         WHERE id = $1 AND kind = 'invoice' AND status NOT IN ('draft', 'void')",
    )
    .bind(id)
    .bind(amount_paid)
    .bind(status)
    .execute(conn)
    .await?;
    Ok(())
}

/// An invoice the overdue sweep marks.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct OverdueRow {
    pub id: Uuid,
    pub issuer_id: Uuid,
    pub status: String,
}

/// Up to `limit` issued or partially paid invoices due before `today` with
/// a balance above zero, locked (those another transaction holds — a
/// payment under way — are skipped: that payment sets the status itself).
pub(crate) async fn lock_overdue(
    conn: &mut PgConnection,
    today: NaiveDate,
    limit: i64,
) -> Result<Vec<OverdueRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.id, i.issuer_id, i.status FROM invoices i \
         WHERE i.kind = 'invoice' AND i.status IN ('issued', 'partially_paid') \
         AND i.due_date < $1 \
         AND i.total - i.amount_paid + coalesce((SELECT sum(c.total) FROM invoices c \
             WHERE c.credit_of = i.id AND c.kind = 'credit_note'), 0) > 0 \
         ORDER BY i.due_date, i.id LIMIT $2 FOR UPDATE OF i SKIP LOCKED",
    )
    .bind(today)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Marks a locked invoice OVERDUE.
pub(crate) async fn mark_overdue(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE invoices SET status = 'overdue', version = version + 1 \
         WHERE id = $1 AND status IN ('issued', 'partially_paid')",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}
