//! An issued document printed: everything the PDF shows gathered in one
//! transaction as the caller, the access event recorded in it, the client's
//! sealed snapshot opened only once that has committed.

use fitflow_auth::Principal;
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use uuid::Uuid;

use super::{Invoicing, commit};
use crate::pdf::{self, Language, PdfDocument, PdfLine, PdfTax};
use crate::repo;
use crate::{BillingError, SERVICE};

/// A rendered document: its file name and bytes.
#[derive(Debug)]
pub(crate) struct Printed {
    pub file_name: String,
    pub bytes: Vec<u8>,
}

impl Invoicing {
    /// Issued (or void) document `id` as a PDF, for the trainer or a
    /// supervisor, or a manager of the studio it is addressed to; a draft
    /// has nothing to print yet.
    pub(crate) async fn print(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<Printed, BillingError> {
        let (mut tx, view) = self.readable(principal, id).await?;
        if view.row.status == "draft" {
            return Err(BillingError::InvoiceState);
        }
        let addressed = repo::recipient(&mut tx, id).await?;
        let corrects = match view.row.credit_of {
            Some(original) => repo::invoice(&mut tx, original, false)
                .await?
                .and_then(|row| row.number),
            None => None,
        };
        let access = AuditEventBuilder::new(SERVICE, Action::Read, "invoices", id)
            .actor_user(principal.user_id)
            .tenant(view.row.issuer_id)
            .purpose(Purpose::Payment)
            .build();
        fitflow_outbox::record(&mut tx, &access).await?;
        commit(tx).await?;

        let (issuer_name, language, bill_to) = match &addressed {
            Some(row) => {
                let recipient = self.open_recipient(row).await?;
                (
                    row.issuer_name.clone(),
                    Language::from_code(&row.language)
                        .ok_or(BillingError::Corrupt("recipient language"))?,
                    recipient.lines(),
                )
            }
            None => (String::new(), Language::English, Vec::new()),
        };
        let row = view.row;
        let credit_note = row.kind == "credit_note";
        let number = row.number.unwrap_or_default();
        let document = PdfDocument {
            language,
            credit_note,
            number: number.clone(),
            corrects,
            date: row
                .invoice_date
                .ok_or(BillingError::Corrupt("issued without a date"))?,
            due_date: if credit_note { None } else { row.due_date },
            issuer_name,
            registered: row.tax_registered,
            gst_hst_number: row.gst_hst_number,
            qst_number: row.qst_number,
            bill_to,
            lines: view
                .lines
                .into_iter()
                .map(|line| PdfLine {
                    description: line.description,
                    quantity: line.quantity,
                    unit_price: line.unit_price,
                    amount: line.amount,
                })
                .collect(),
            subtotal: row.subtotal,
            taxes: view
                .taxes
                .into_iter()
                .map(|tax| PdfTax {
                    province: tax.province,
                    kind: tax.kind,
                    percent: tax.percent,
                    amount: tax.amount,
                })
                .collect(),
            total: row.total,
            amount_paid: row.amount_paid,
            balance_due: view.balance,
            notes: row.notes,
            void: row.status == "void",
        };
        let file_name = format!(
            "{}-{number}.pdf",
            if credit_note {
                "credit-note"
            } else {
                "invoice"
            }
        );
        Ok(Printed {
            file_name,
            bytes: pdf::render(&document),
        })
    }
}
