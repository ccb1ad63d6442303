//! `StreamClientInvoices`: a client's billing records, message by message.

use std::collections::VecDeque;
use std::pin::Pin;

use fitflow_proto::billing as pb;
use futures::Stream;
use tonic::Status;
use uuid::Uuid;

use super::invoice_out;
use super::payments::payment_out;
use crate::exports::{ClientExports, ExportPosition, Exported, joins_message};

/// The stream of a client's billing records.
pub(super) type InvoiceStream =
    Pin<Box<dyn Stream<Item = Result<pb::StreamClientInvoicesResponse, Status>> + Send>>;

/// A streamed export between two messages: records read and converted but
/// not yet sent, and where reading resumes.
pub(super) struct ExportState {
    exports: ClientExports,
    client_id: Uuid,
    pending: VecDeque<Item>,
    position: ExportPosition,
    /// Nothing more to read (or a failure was sent): end after `pending`.
    exhausted: bool,
}

/// One record in its contract form.
enum Item {
    Invoice(Box<pb::Invoice>),
    Payment(Box<pb::Payment>),
    Pack(Box<pb::SessionPack>),
}

impl Item {
    fn of(record: Exported) -> Self {
        match record {
            Exported::Invoice(view) => Item::Invoice(Box::new(invoice_out(*view))),
            Exported::Payment(row) => {
                let mut payment = payment_out(*row);
                // The issuer's bank account is not the client's data.
                payment.bank_account_id.clear();
                Item::Payment(Box::new(payment))
            }
            Exported::Pack(row) => Item::Pack(Box::new(super::pack_out(*row))),
        }
    }

    /// Bytes it adds to a message, with its field tag and length.
    fn encoded_len(&self) -> usize {
        match self {
            Item::Invoice(invoice) => prost::encoding::message::encoded_len(1, &**invoice),
            Item::Payment(payment) => prost::encoding::message::encoded_len(2, &**payment),
            Item::Pack(pack) => prost::encoding::message::encoded_len(3, &**pack),
        }
    }
}

impl ExportState {
    /// An export of `client_id` whose first batch is `first`.
    pub(super) fn new(
        exports: ClientExports,
        client_id: Uuid,
        first: Vec<Exported>,
        position: ExportPosition,
    ) -> Self {
        Self {
            exports,
            client_id,
            exhausted: first.is_empty(),
            pending: first.into_iter().map(Item::of).collect(),
            position,
        }
    }
}

/// The next message of an export: records while they fit (at least one),
/// reading the next batch when none is pending; `None` when it is whole.
pub(super) async fn next_message(
    mut state: ExportState,
) -> Option<(
    Result<pb::StreamClientInvoicesResponse, Status>,
    ExportState,
)> {
    let mut message = pb::StreamClientInvoicesResponse::default();
    let mut bytes = 0;
    loop {
        let Some(item) = state.pending.front() else {
            if state.exhausted {
                break;
            }
            match state
                .exports
                .batch(state.client_id, &mut state.position)
                .await
            {
                Ok(batch) if batch.is_empty() => state.exhausted = true,
                Ok(batch) => state.pending.extend(batch.into_iter().map(Item::of)),
                Err(error) => {
                    // The records read so far are dropped: the caller gets
                    // the failure in their place, and the stream ends.
                    state.exhausted = true;
                    state.pending.clear();
                    return Some((Err(error.into()), state));
                }
            }
            continue;
        };
        let size = item.encoded_len();
        if !joins_message(bytes, size) {
            break;
        }
        bytes += size;
        match state.pending.pop_front() {
            Some(Item::Invoice(invoice)) => message.invoices.push(*invoice),
            Some(Item::Payment(payment)) => message.payments.push(*payment),
            Some(Item::Pack(pack)) => message.session_packs.push(*pack),
            None => break,
        }
    }
    if message.invoices.is_empty()
        && message.payments.is_empty()
        && message.session_packs.is_empty()
    {
        return None;
    }
    Some((Ok(message), state))
}

#[cfg(test)]
mod tests {
    use fitflow_proto::types::Money;

    use super::*;

    fn money() -> Option<Money> {
        Some(Money {
            currency_code: "CAD".into(),
            amount: "-9999999999.99".into(),
        })
    }

    #[test]
    fn the_largest_invoice_fits_a_message_alone() {
        // 200 lines of 500 four-byte characters, the longest notes, every
        // amount at its widest: what one message must always carry.
        let line = pb::InvoiceLine {
            description: "\u{1F3CB}".repeat(500),
            quantity: "9999999999.99".into(),
            unit_price: money(),
            amount: money(),
            province: i32::MAX,
            treatment: i32::MAX,
            appointment_id: Uuid::max().to_string(),
            charge: i32::MAX,
            pack_sessions: i32::MAX,
            pack_expires_on: Some(fitflow_proto::google::r#type::Date {
                year: i32::MAX,
                month: i32::MAX,
                day: i32::MAX,
            }),
            drawn_pack_id: Uuid::max().to_string(),
        };
        let invoice = pb::Invoice {
            id: Uuid::max().to_string(),
            issuer_id: Uuid::max().to_string(),
            client_id: Uuid::max().to_string(),
            lines: vec![line; 200],
            notes: "\u{1F3CB}".repeat(2_000),
            subtotal: money(),
            tax_total: money(),
            total: money(),
            amount_paid: money(),
            balance_due: money(),
            ..Default::default()
        };
        let item = Item::Invoice(Box::new(invoice));
        assert!(item.encoded_len() <= crate::exports::MAX_MESSAGE_BYTES);
        assert!(joins_message(0, item.encoded_len()));
    }
}
