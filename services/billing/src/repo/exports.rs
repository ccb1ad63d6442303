//! A client's billing records for the clients service's export of that
//! client, read in batches (as billing's own system role: every issuer's).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::payments::PAYMENT_COLUMNS;
use super::{INVOICE_COLUMNS, InvoiceRow, PaymentRow};

/// How many invoices (credit notes included) and payments (refunds
/// included) are billed to `client_id`.
pub(crate) async fn client_record_counts(
    conn: &mut PgConnection,
    client_id: Uuid,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM invoices WHERE client_id = $1), \
                (SELECT count(*) FROM payments p JOIN invoices i ON i.id = p.invoice_id \
                 WHERE i.client_id = $1)",
    )
    .bind(client_id)
    .fetch_one(conn)
    .await
}

/// The next `limit` invoices billed to `client_id` after `after`, oldest
/// created first.
pub(crate) async fn client_invoices_batch(
    conn: &mut PgConnection,
    client_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<InvoiceRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices WHERE client_id = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) \
         ORDER BY created_at, id LIMIT $4"
    ))
    .bind(client_id)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The next `limit` payments and refunds of the invoices billed to
/// `client_id` after `after`, oldest recorded first.
pub(crate) async fn client_payments_batch(
    conn: &mut PgConnection,
    client_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<PaymentRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments p JOIN invoices i ON i.id = p.invoice_id \
         WHERE i.client_id = $1 \
         AND ($2::timestamptz IS NULL OR (p.created_at, p.id) > ($2, $3)) \
         ORDER BY p.created_at, p.id LIMIT $4"
    ))
    .bind(client_id)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}
