//! Whom issued documents are addressed to (sealed; see `recipient`).

use sqlx::PgConnection;
use uuid::Uuid;

/// An `invoice_recipients` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RecipientRow {
    pub invoice_id: Uuid,
    pub issuer_id: Uuid,
    pub issuer_name: String,
    pub recipient_sealed: Vec<u8>,
    /// "en" or "fr".
    pub language: String,
}

/// Records whom a document being issued is addressed to.
pub(crate) async fn insert_recipient(
    conn: &mut PgConnection,
    row: &RecipientRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO invoice_recipients \
         (invoice_id, issuer_id, issuer_name, recipient_sealed, language) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(row.invoice_id)
    .bind(row.issuer_id)
    .bind(&row.issuer_name)
    .bind(&row.recipient_sealed)
    .bind(&row.language)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whom document `id` is addressed to, if it was issued with a recipient.
pub(crate) async fn recipient(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<RecipientRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT invoice_id, issuer_id, issuer_name, recipient_sealed, language \
         FROM invoice_recipients WHERE invoice_id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}
