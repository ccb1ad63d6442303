//! A client's billing records for the clients service's export of that
//! client (PIPEDA access, Quebec Law 25 portability): every invoice and
//! credit note billed to them, by any issuer, then every payment and refund
//! of those, then the session packs sold to them, read in batches as
//! billing itself (the clients service has
//! checked the user's access before it asks). The export is an access event,
//! committed with the first batch.

use chrono::{DateTime, Utc};
use fitflow_db::SystemPool;
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use uuid::Uuid;

use crate::invoices::InvoiceView;
use crate::repo::{self, PackRow, PaymentRow};
use crate::{BillingError, Invoicing, SERVICE};

/// Largest message of the stream: 3 MiB of invoices and payments, well
/// within gRPC's default 4 MiB (one invoice, at most 200 lines, always
/// fits alone).
pub(crate) const MAX_MESSAGE_BYTES: usize = 3 * 1024 * 1024;
/// Invoices read at a time: with at most 200 lines of at most 500
/// characters each, a batch stays within a few MiB of memory.
const INVOICE_BATCH: i64 = 16;
/// Payments read at a time (each a few hundred bytes).
const PAYMENT_BATCH: i64 = 500;

/// One record of the export.
#[derive(Debug, Clone)]
pub(crate) enum Exported {
    /// An invoice or credit note, with its lines and taxes.
    Invoice(Box<InvoiceView>),
    /// A payment or refund.
    Payment(Box<PaymentRow>),
    /// A session pack sold to the client.
    Pack(Box<PackRow>),
}

/// Where the next batch starts.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ExportPosition {
    after_invoice: Option<(DateTime<Utc>, Uuid)>,
    invoices_done: bool,
    after_payment: Option<(DateTime<Utc>, Uuid)>,
    payments_done: bool,
    packs_done: bool,
}

/// Whether an item of `size` bytes joins a message already holding `bytes`:
/// while the message stays within [`MAX_MESSAGE_BYTES`], and always as the
/// first item (one item never waits for a message of its own).
pub(crate) fn joins_message(bytes: usize, size: usize) -> bool {
    bytes == 0 || bytes + size <= MAX_MESSAGE_BYTES
}

/// The clients' exports of billing records.
#[derive(Clone)]
pub(crate) struct ClientExports {
    /// The system role's pool: a client's invoices from every issuer, for
    /// the clients service, which checked the user's access itself.
    system: SystemPool,
}

async fn commit(tx: fitflow_db::Tx) -> Result<(), BillingError> {
    tx.commit().await.map_err(fitflow_db::DbError::from)?;
    Ok(())
}

impl ClientExports {
    /// The exports over the system role's pool.
    pub(crate) fn new(system: SystemPool) -> Self {
        Self { system }
    }

    /// Records the EXPORT access event and reads the first batch, in one
    /// transaction: no event, no records.
    pub(crate) async fn begin(
        &self,
        client_id: Uuid,
    ) -> Result<(Vec<Exported>, ExportPosition), BillingError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let (invoices, payments) = repo::client_record_counts(&mut tx, client_id).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Export, "client_invoices", client_id)
            // Only clients may call this RPC; the audit service admits only
            // the sending service as a service actor.
            .actor_service(SERVICE)
            .change("invoices", "", &invoices.to_string())
            .change("payments", "", &payments.to_string())
            .purpose(Purpose::Operations)
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let mut position = ExportPosition::default();
        let first = Self::batch_in(&mut tx, client_id, &mut position).await?;
        commit(tx).await?;
        Ok((first, position))
    }

    /// The next batch after `position` (moved past it); empty when the
    /// export is whole.
    pub(crate) async fn batch(
        &self,
        client_id: Uuid,
        position: &mut ExportPosition,
    ) -> Result<Vec<Exported>, BillingError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let batch = Self::batch_in(&mut tx, client_id, position).await?;
        commit(tx).await?;
        Ok(batch)
    }

    async fn batch_in(
        tx: &mut fitflow_db::Tx,
        client_id: Uuid,
        position: &mut ExportPosition,
    ) -> Result<Vec<Exported>, BillingError> {
        if !position.invoices_done {
            let rows =
                repo::client_invoices_batch(tx, client_id, position.after_invoice, INVOICE_BATCH)
                    .await?;
            if let Some(last) = rows.last() {
                position.after_invoice = Some((last.created_at, last.id));
                let mut batch = Vec::with_capacity(rows.len());
                for row in &rows {
                    let view = Invoicing::view(tx, row.id).await?;
                    batch.push(Exported::Invoice(Box::new(view)));
                }
                return Ok(batch);
            }
            position.invoices_done = true;
        }
        if !position.payments_done {
            let rows =
                repo::client_payments_batch(tx, client_id, position.after_payment, PAYMENT_BATCH)
                    .await?;
            if let Some(last) = rows.last() {
                position.after_payment = Some((last.created_at, last.id));
                return Ok(rows
                    .into_iter()
                    .map(|row| Exported::Payment(Box::new(row)))
                    .collect());
            }
            position.payments_done = true;
        }
        if position.packs_done {
            return Ok(Vec::new());
        }
        // A client's packs are few (one per line of their invoices at
        // most): one read.
        position.packs_done = true;
        Ok(repo::client_packs(tx, client_id)
            .await?
            .into_iter()
            .map(|row| Exported::Pack(Box::new(row)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_takes_items_while_it_stays_within_three_mib_and_always_takes_the_first() {
        assert!(joins_message(0, MAX_MESSAGE_BYTES * 2));
        assert!(joins_message(1, MAX_MESSAGE_BYTES - 1));
        assert!(!joins_message(1, MAX_MESSAGE_BYTES));
        assert!(joins_message(MAX_MESSAGE_BYTES - 10, 10));
        assert!(!joins_message(MAX_MESSAGE_BYTES - 10, 11));
    }
}
