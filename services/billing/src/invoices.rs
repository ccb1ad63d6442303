//! Client invoices: drafts, issuing (a gapless number, the taxes of the
//! invoice date, the issuer's tax numbers) and voiding (payments and the
//! statuses they set are in `payments`). Each use case opens
//! one transaction as the caller (row-level security admits the issuer's
//! rows to whoever acts for them), writes its audit or access event in it,
//! and commits only when all of it worked.

mod printing;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike as _, Duration, Utc};
use fitflow_api::canada::Province;
use fitflow_api::etag::Etag;
use fitflow_api::gate::Gate;
use fitflow_api::idempotency::{self, Claim, IdempotencyKey, RequestHash};
use fitflow_api::page::PageTokens;
use fitflow_auth::{Caller, Principal};
use fitflow_crypto::KeyRing;
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::peers::Peers;
use crate::recipient::{self, Recipient};
use crate::repo::{self, InvoiceRow, LineRow, Payer, RecipientRow, TaxRow};
use crate::tax::{self, Line, Treatment};
use crate::{BillingError, SERVICE};

/// A create's idempotency record (AIP-155).
#[derive(Debug, Default)]
pub(crate) struct Idempotency(pub Option<(IdempotencyKey, RequestHash)>);

/// A draft as asked: who bills whom, its lines (amounts computed), its terms.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub issuer_id: Option<Uuid>,
    pub client_id: Uuid,
    pub lines: Vec<LineRow>,
    pub payment_terms_days: i32,
    pub notes: String,
}

impl Draft {
    fn subtotal(&self) -> Decimal {
        self.lines.iter().map(|line| line.amount).sum()
    }
}

/// An invoice as returned: the row, its lines and its taxes.
#[derive(Debug, Clone)]
pub(crate) struct InvoiceView {
    pub row: InvoiceRow,
    /// What remains due on an issued invoice (zero on drafts, void
    /// invoices and credit notes).
    pub balance: Decimal,
    pub lines: Vec<LineRow>,
    pub taxes: Vec<TaxRow>,
    pub etag: Etag,
}

/// The service's invoices.
pub struct Invoicing {
    pub(crate) pool: PgPool,
    pub(crate) peers: Peers,
    keyring: KeyRing,
    page_tokens: PageTokens,
    /// Turns for DraftStudioInvoice, the costliest draft (a studio card, the
    /// schedule's pages and a rate per studio, category and date from two
    /// peers, then the claims): a flood of them neither takes the pool nor
    /// the peers from everyone else's reads.
    pub(crate) studio_drafts: Gate,
}

/// DraftStudioInvoice: at most this many at once per instance, and this many
/// more waiting their turn; the rest are refused with BILLING_BUSY. 500 at
/// once on one connection without the gate held another trainer's
/// GetInvoice and ListInvoices up to 0.55 to 2 s (20 ms unloaded); with it,
/// at most 85 ms, and the slowest draft answered in 0.26 s instead of 2 to
/// 5.6 s.
const CONCURRENT_STUDIO_DRAFTS: (usize, usize) = (4, 32);
/// When a draft refused by the gate has a fair chance.
const BUSY_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) fn user(principal: &Principal) -> Caller {
    Caller::User(principal.clone())
}

pub(crate) async fn commit(tx: fitflow_db::Tx) -> Result<(), BillingError> {
    tx.commit().await.map_err(fitflow_db::DbError::from)?;
    Ok(())
}

fn treatment_of(stored: &str) -> Result<Treatment, BillingError> {
    match stored {
        "taxable" => Ok(Treatment::Taxable),
        "zero_rated" => Ok(Treatment::ZeroRated),
        "exempt" => Ok(Treatment::Exempt),
        _ => Err(BillingError::Corrupt("line treatment")),
    }
}

/// The stored form of a treatment.
pub(crate) fn treatment_name(treatment: Treatment) -> &'static str {
    match treatment {
        Treatment::Taxable => "taxable",
        Treatment::ZeroRated => "zero_rated",
        Treatment::Exempt => "exempt",
    }
}

/// INVOICE_TOO_LARGE unless every amount of a document with `subtotal` and
/// `taxes` fits NUMERIC(12,2): a draft's subtotal fits, but its tax may carry
/// its total beyond what the column holds.
fn fits(subtotal: Decimal, taxes: &[TaxRow]) -> Result<Decimal, BillingError> {
    let max = crate::grpc::MAX_AMOUNT;
    let tax_total: Decimal = taxes.iter().map(|tax| tax.amount).sum();
    let amounts = taxes.iter().flat_map(|tax| [tax.base, tax.amount]).chain([
        subtotal,
        tax_total,
        subtotal + tax_total,
    ]);
    for amount in amounts {
        if amount.abs() > max {
            return Err(BillingError::InvoiceTooLarge);
        }
    }
    Ok(tax_total)
}

/// "YYYY-NNNNNN".
fn number_text(year: i32, number: i32) -> String {
    format!("{year}-{number:06}")
}

impl Invoicing {
    /// The use cases over `pool`, asking `peers`, sealing recipients with
    /// `keyring` (the tenant is the issuing trainer).
    pub fn new(pool: PgPool, peers: Peers, keyring: KeyRing) -> Self {
        Self {
            pool,
            peers,
            keyring,
            page_tokens: PageTokens::with_random_key(),
            studio_drafts: Gate::new(
                CONCURRENT_STUDIO_DRAFTS.0,
                CONCURRENT_STUDIO_DRAFTS.1,
                BUSY_RETRY_AFTER,
            ),
        }
    }

    /// The client a document was addressed to, opened.
    pub(crate) async fn open_recipient(
        &self,
        row: &RecipientRow,
    ) -> Result<Recipient, BillingError> {
        let opened = self
            .keyring
            .open(
                row.issuer_id,
                recipient::address(row.invoice_id),
                &row.recipient_sealed,
            )
            .await?;
        Recipient::from_bytes(&opened).ok_or(BillingError::Corrupt("invoice recipient"))
    }

    /// `recipient` sealed for document `id` of `issuer`.
    async fn seal_recipient(
        &self,
        issuer: Uuid,
        id: Uuid,
        recipient: &Recipient,
    ) -> Result<Vec<u8>, BillingError> {
        Ok(self
            .keyring
            .seal(issuer, recipient::address(id), &recipient.to_bytes())
            .await?)
    }

    /// The page-token issuer, for ListInvoices.
    pub(crate) fn page_tokens(&self) -> &PageTokens {
        &self.page_tokens
    }

    /// Invoice `id` as returned, with its lines, taxes and balance.
    pub(crate) async fn view(
        tx: &mut fitflow_db::Tx,
        id: Uuid,
    ) -> Result<InvoiceView, BillingError> {
        let row = repo::invoice(tx, id, false)
            .await?
            .ok_or(BillingError::InvoiceNotFound)?;
        let lines = repo::lines(tx, id).await?;
        let taxes = repo::taxes(tx, id).await?;
        let etag = Etag::of_version(row.id, row.version);
        let balance = if crate::payments::is_payable_kind_and_status(&row) {
            row.total + repo::credit_note_totals(tx, id).await? - row.amount_paid
        } else {
            Decimal::ZERO
        };
        Ok(InvoiceView {
            row,
            balance,
            lines,
            taxes,
            etag,
        })
    }

    /// The views of a page of invoices already read: three queries for the
    /// whole page (lines, taxes, credit notes), not four per invoice.
    async fn views(
        tx: &mut fitflow_db::Tx,
        rows: Vec<InvoiceRow>,
    ) -> Result<Vec<InvoiceView>, BillingError> {
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let mut lines = group(repo::lines_of(tx, &ids).await?);
        let mut taxes = group(repo::taxes_of(tx, &ids).await?);
        let credited: HashMap<Uuid, Decimal> = repo::credit_note_totals_of(tx, &ids)
            .await?
            .into_iter()
            .collect();
        Ok(rows
            .into_iter()
            .map(|row| {
                let balance = if crate::payments::is_payable_kind_and_status(&row) {
                    row.total + credited.get(&row.id).copied().unwrap_or_default() - row.amount_paid
                } else {
                    Decimal::ZERO
                };
                InvoiceView {
                    etag: Etag::of_version(row.id, row.version),
                    lines: lines.remove(&row.id).unwrap_or_default(),
                    taxes: taxes.remove(&row.id).unwrap_or_default(),
                    balance,
                    row,
                }
            })
            .collect())
    }

    /// The invoice locked for a change, if the caller acts for its issuer.
    async fn locked(
        tx: &mut fitflow_db::Tx,
        principal: &Principal,
        id: Uuid,
        etag: &str,
    ) -> Result<InvoiceRow, BillingError> {
        let row = repo::invoice(tx, id, true)
            .await?
            .filter(|row| principal.acts_for(row.issuer_id))
            .ok_or(BillingError::InvoiceNotFound)?;
        Etag::of_version(row.id, row.version).check(etag)?;
        Ok(row)
    }

    /// Starts a draft.
    pub(crate) async fn create(
        &self,
        principal: &Principal,
        bearer: &str,
        draft: Draft,
        request: Idempotency,
    ) -> Result<InvoiceView, BillingError> {
        let issuer_id = draft.issuer_id.unwrap_or(principal.user_id);
        if !principal.acts_for(issuer_id) {
            return Err(BillingError::TrainerNotFound);
        }
        self.peers
            .require_client(bearer, draft.client_id, issuer_id)
            .await?;
        let id = Uuid::now_v7();
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) = idempotency::claim(&mut tx, key, hash, id).await?
        {
            let view = Self::view(&mut tx, existing).await?;
            commit(tx).await?;
            return Ok(view);
        }
        let subtotal = draft.subtotal();
        let row = InvoiceRow::draft(
            id,
            issuer_id,
            Payer::Client(draft.client_id),
            draft.payment_terms_days,
            draft.notes,
            subtotal,
        );
        repo::insert_invoice(&mut tx, &row).await?;
        repo::insert_lines(&mut tx, id, issuer_id, &draft.lines).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Create, "invoices", id)
            .actor_user(principal.user_id)
            .tenant(issuer_id)
            .change("client_id", "", &draft.client_id.to_string())
            .change("lines", "", &draft.lines.len().to_string())
            .change("subtotal", "", &subtotal.to_string())
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let view = Self::view(&mut tx, id).await?;
        commit(tx).await?;
        Ok(view)
    }

    /// Replaces a draft's lines, terms and notes.
    pub(crate) async fn update(
        &self,
        principal: &Principal,
        id: Uuid,
        draft: Draft,
        etag: &str,
    ) -> Result<InvoiceView, BillingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = Self::locked(&mut tx, principal, id, etag).await?;
        if row.status != "draft" {
            return Err(BillingError::InvoiceState);
        }
        if row.studio_id.is_some() {
            no_packs_to_a_studio(&draft.lines)?;
        }
        let mut draft = draft;
        let (dropped, given_back) =
            keep_billed_items(&mut tx, principal, &row, &mut draft.lines).await?;
        let subtotal = draft.subtotal();
        repo::delete_lines(&mut tx, id).await?;
        repo::insert_lines(&mut tx, id, row.issuer_id, &draft.lines).await?;
        repo::update_draft(
            &mut tx,
            id,
            draft.payment_terms_days,
            &draft.notes,
            subtotal,
        )
        .await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "invoices", id)
            .actor_user(principal.user_id)
            .tenant(row.issuer_id)
            .change("subtotal", &row.subtotal.to_string(), &subtotal.to_string())
            .change("lines", "", &draft.lines.len().to_string())
            .change("billed_items_dropped", "", &dropped.to_string())
            .change("pack_sessions_given_back", "", &given_back.to_string())
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let view = Self::view(&mut tx, id).await?;
        commit(tx).await?;
        Ok(view)
    }

    /// Issues a draft: the next number, today's date in the issuer's zone,
    /// the taxes of that date, the issuer's tax numbers.
    pub(crate) async fn issue(
        &self,
        principal: &Principal,
        bearer: &str,
        id: Uuid,
        etag: &str,
    ) -> Result<InvoiceView, BillingError> {
        // The peers first: no transaction waits on another service.
        let (issuer, payer) = {
            let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
            let row = repo::invoice(&mut tx, id, false)
                .await?
                .filter(|row| principal.acts_for(row.issuer_id))
                .ok_or(BillingError::InvoiceNotFound)?;
            commit(tx).await?;
            if row.status != "draft" {
                return Err(BillingError::InvoiceState);
            }
            (row.issuer_id, (row.client_id, row.studio_id))
        };
        let standing = self.peers.tax_standing(issuer).await?;
        let (zone, issuer_name) = self.peers.issuer_card(bearer, issuer).await?;
        let invoice_date = Utc::now().with_timezone(&zone).date_naive();
        // Whom it is addressed to, as of now, sealed under the issuer's key:
        // the client's contact (an access event in clients), or the
        // studio's card.
        let contact = match payer {
            (Some(client), _) => self.peers.contact(bearer, client).await?,
            (None, Some(studio)) => self.peers.studio_card(bearer, studio).await?.recipient,
            (None, None) => return Err(BillingError::Corrupt("an invoice to nobody")),
        };
        let recipient = RecipientRow {
            invoice_id: id,
            issuer_id: issuer,
            issuer_name,
            recipient_sealed: self.seal_recipient(issuer, id, &contact).await?,
            language: contact.language().code().to_owned(),
        };

        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = Self::locked(&mut tx, principal, id, etag).await?;
        if row.status != "draft" {
            return Err(BillingError::InvoiceState);
        }
        let lines = repo::lines(&mut tx, id).await?;
        let mut priced = Vec::with_capacity(lines.len());
        for line in &lines {
            priced.push(Line {
                amount: line.amount,
                province: Province::from_code(&line.province)
                    .ok_or(BillingError::Corrupt("line province"))?,
                treatment: treatment_of(&line.treatment)?,
            });
        }
        let table = repo::rates(&mut tx)
            .await?
            .iter()
            .map(crate::rates::engine_rate)
            .collect::<Result<Vec<_>, _>>()?;
        let taxes = tax::compute(&table, invoice_date, &priced, standing.registered)?;
        let tax_rows: Vec<TaxRow> = taxes
            .iter()
            .map(|tax| TaxRow {
                province: tax.province.code().to_owned(),
                kind: tax.kind.as_str().to_owned(),
                percent: tax.percent,
                base: tax.base,
                amount: tax.amount,
            })
            .collect();
        let tax_total = fits(row.subtotal, &tax_rows)?;
        let year = invoice_date.year();
        let number = number_text(
            year,
            repo::next_number(&mut tx, row.issuer_id, "invoice", year).await?,
        );
        let due_date = invoice_date + Duration::days(i64::from(row.payment_terms_days));
        repo::issue(
            &mut tx,
            id,
            row.issuer_id,
            &repo::Issue {
                number: &number,
                invoice_date,
                due_date,
                tax_total,
                registered: standing.registered,
                gst_hst_number: &standing.gst_hst_number,
                qst_number: &standing.qst_number,
            },
            &tax_rows,
        )
        .await?;
        repo::insert_recipient(&mut tx, &recipient).await?;
        // Issued, its pack lines are sold: the packs become usable now.
        let packs_sold = crate::pack_sales::sell(&mut tx, principal, &row, &lines).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "invoices", id)
            .actor_user(principal.user_id)
            .tenant(row.issuer_id)
            .change("status", "draft", "issued")
            .change("number", "", &number)
            .change("tax_total", "", &tax_total.to_string())
            .change("total", "", &(row.subtotal + tax_total).to_string())
            .change("session_packs_sold", "", &packs_sold.to_string())
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let view = Self::view(&mut tx, id).await?;
        commit(tx).await?;
        Ok(view)
    }

    /// Issues a credit note correcting an issued invoice: its own series'
    /// next number, the credited `lines` (stored negative) taxed as of the
    /// invoice's date with its registration, never more than its subtotal.
    pub(crate) async fn credit(
        &self,
        principal: &Principal,
        bearer: &str,
        invoice_id: Uuid,
        credit: Draft,
        request: Idempotency,
    ) -> Result<InvoiceView, BillingError> {
        let (issuer, addressed) = {
            let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
            let row = repo::invoice(&mut tx, invoice_id, false)
                .await?
                .filter(|row| principal.acts_for(row.issuer_id))
                .ok_or(BillingError::InvoiceNotFound)?;
            let addressed = repo::recipient(&mut tx, invoice_id).await?;
            commit(tx).await?;
            (row.issuer_id, addressed)
        };
        let zone = self.peers.zone(bearer, issuer).await?;
        let credit_date = Utc::now().with_timezone(&zone).date_naive();
        let id = Uuid::now_v7();
        // A credit note goes to whom the invoice went: its recipient, sealed
        // again for the credit note's row (an invoice issued before
        // recipients were kept has none to copy).
        let recipient = match addressed {
            Some(original) => {
                let opened = self.open_recipient(&original).await?;
                Some(RecipientRow {
                    invoice_id: id,
                    recipient_sealed: self.seal_recipient(issuer, id, &opened).await?,
                    ..original
                })
            }
            None => None,
        };

        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) = idempotency::claim(&mut tx, key, hash, id).await?
        {
            let view = Self::view(&mut tx, existing).await?;
            commit(tx).await?;
            return Ok(view);
        }
        // Locked: two credit notes of one invoice are added one at a time.
        let original = repo::invoice(&mut tx, invoice_id, true)
            .await?
            .filter(|row| principal.acts_for(row.issuer_id))
            .ok_or(BillingError::InvoiceNotFound)?;
        let invoice_date = match (original.kind.as_str(), original.status.as_str()) {
            ("invoice", "issued" | "partially_paid" | "paid" | "overdue") => original
                .invoice_date
                .ok_or(BillingError::Corrupt("issued without a date"))?,
            _ => return Err(BillingError::InvoiceState),
        };
        // A credit note corrects what was billed before anything is paid:
        // with payments, it could leave more paid than due (refund first).
        if original.amount_paid > Decimal::ZERO {
            return Err(BillingError::InvoiceHasPayments);
        }
        let credited = credit.subtotal();
        if repo::credited(&mut tx, invoice_id).await? + credited > original.subtotal {
            return Err(BillingError::CreditExceedsInvoice);
        }
        // And per (province, treatment): a credit is taxed like the supply it
        // corrects, so it never credits what was not billed there (crediting
        // an Alberta invoice as an Ontario supply would refund 13% HST where
        // 5% GST was charged).
        let mut left: BTreeMap<(String, String), Decimal> = BTreeMap::new();
        for line in repo::lines(&mut tx, invoice_id).await? {
            *left.entry((line.province, line.treatment)).or_default() += line.amount;
        }
        for (province, treatment, amount) in repo::credited_by_supply(&mut tx, invoice_id).await? {
            *left.entry((province, treatment)).or_default() -= amount;
        }
        for line in &credit.lines {
            let supply = (line.province.clone(), line.treatment.clone());
            let remaining = left.entry(supply).or_default();
            *remaining -= line.amount;
            if *remaining < Decimal::ZERO {
                return Err(BillingError::CreditExceedsInvoice);
            }
        }
        let lines: Vec<LineRow> = credit
            .lines
            .into_iter()
            .map(|line| LineRow {
                amount: -line.amount,
                ..line
            })
            .collect();
        let mut priced = Vec::with_capacity(lines.len());
        for line in &lines {
            priced.push(Line {
                amount: line.amount,
                province: Province::from_code(&line.province)
                    .ok_or(BillingError::Corrupt("line province"))?,
                treatment: treatment_of(&line.treatment)?,
            });
        }
        let table = repo::rates(&mut tx)
            .await?
            .iter()
            .map(crate::rates::engine_rate)
            .collect::<Result<Vec<_>, _>>()?;
        // The original supply's tax point: a credit note adjusts the tax
        // charged then, at the rates charged then.
        let taxes = tax::compute(&table, invoice_date, &priced, original.tax_registered)?;
        let tax_rows: Vec<TaxRow> = taxes
            .iter()
            .map(|tax| TaxRow {
                province: tax.province.code().to_owned(),
                kind: tax.kind.as_str().to_owned(),
                percent: tax.percent,
                base: tax.base,
                amount: tax.amount,
            })
            .collect();
        // Rounded per credit note, partial credits could refund a cent more
        // tax than was charged (1.00 at 13% is 0.13; two credits of 0.50
        // round to 0.07 each), or a cent less once all is credited: each tax
        // refunds at most what is left of it, and all that is left of it
        // with the rest of its base.
        let mut left: BTreeMap<(String, String), (Decimal, Decimal)> = BTreeMap::new();
        for tax in repo::taxes(&mut tx, invoice_id).await? {
            let entry = left.entry((tax.province, tax.kind)).or_default();
            entry.0 += tax.amount;
            entry.1 += tax.base;
        }
        for (province, kind, amount, base) in repo::credited_taxes(&mut tx, invoice_id).await? {
            let entry = left.entry((province, kind)).or_default();
            entry.0 += amount;
            entry.1 += base;
        }
        let tax_rows: Vec<TaxRow> = tax_rows
            .into_iter()
            .map(|tax| {
                let (tax_left, base_left) = left
                    .get(&(tax.province.clone(), tax.kind.clone()))
                    .copied()
                    .unwrap_or_default();
                let tax_left = tax_left.max(Decimal::ZERO);
                let amount = if -tax.base >= base_left {
                    -tax_left
                } else {
                    tax.amount.max(-tax_left)
                };
                TaxRow { amount, ..tax }
            })
            .collect();
        let tax_total = fits(-credited, &tax_rows)?;
        let year = credit_date.year();
        let number = number_text(
            year,
            repo::next_number(&mut tx, original.issuer_id, "credit_note", year).await?,
        );
        let row = InvoiceRow {
            id,
            issuer_id: original.issuer_id,
            client_id: original.client_id,
            studio_id: original.studio_id,
            status: "issued".to_owned(),
            number: Some(number.clone()),
            invoice_date: Some(credit_date),
            due_date: Some(credit_date),
            payment_terms_days: 0,
            subtotal: -credited,
            tax_total,
            total: tax_total - credited,
            tax_registered: original.tax_registered,
            gst_hst_number: original.gst_hst_number.clone(),
            qst_number: original.qst_number.clone(),
            notes: credit.notes,
            version: 1,
            created_at: Utc::now(),
            issued_at: Some(Utc::now()),
            voided_at: None,
            kind: "credit_note".to_owned(),
            credit_of: Some(invoice_id),
            amount_paid: Decimal::ZERO,
        };
        repo::insert_credit_note(&mut tx, &row).await?;
        repo::insert_lines(&mut tx, id, row.issuer_id, &lines).await?;
        repo::issue(
            &mut tx,
            id,
            row.issuer_id,
            &repo::Issue {
                number: &number,
                invoice_date: credit_date,
                due_date: credit_date,
                tax_total,
                registered: row.tax_registered,
                gst_hst_number: &row.gst_hst_number,
                qst_number: &row.qst_number,
            },
            &tax_rows,
        )
        .await?;
        if let Some(recipient) = &recipient {
            repo::insert_recipient(&mut tx, recipient).await?;
        }
        // A credit that leaves nothing due ends an overdue status.
        let balance = original.total + repo::credit_note_totals(&mut tx, invoice_id).await?;
        let status = crate::payments::payment_status(
            balance,
            original.amount_paid,
            original.due_date,
            crate::payments::overdue_today(),
        );
        if status != original.status {
            repo::set_payment_state(&mut tx, invoice_id, original.amount_paid, status).await?;
            let event = AuditEventBuilder::new(SERVICE, Action::Update, "invoices", invoice_id)
                .actor_user(principal.user_id)
                .tenant(original.issuer_id)
                .change("status", &original.status, status)
                .build();
            fitflow_outbox::record(&mut tx, &event).await?;
        }
        let event = AuditEventBuilder::new(SERVICE, Action::Create, "invoices", id)
            .actor_user(principal.user_id)
            .tenant(row.issuer_id)
            .change("kind", "", "credit_note")
            .change("credit_of", "", &invoice_id.to_string())
            .change("number", "", &number)
            .change("subtotal", "", &row.subtotal.to_string())
            .change("tax_total", "", &tax_total.to_string())
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let view = Self::view(&mut tx, id).await?;
        commit(tx).await?;
        Ok(view)
    }

    /// A transaction in which `principal` may read document `id`, with the
    /// document: as one who acts for its issuer, else as a manager of the
    /// studio it is addressed to, once issued (the token's studios);
    /// INVOICE_NOT_FOUND for anyone else, as for an id that exists nowhere.
    async fn readable(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<(fitflow_db::Tx, InvoiceView), BillingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        match Self::view(&mut tx, id).await {
            Ok(view) if principal.acts_for(view.row.issuer_id) => return Ok((tx, view)),
            Ok(_) | Err(BillingError::InvoiceNotFound) => fitflow_db::end_read(tx),
            Err(error) => return Err(error),
        }
        // Only a manager's second look sets the studios: a trainer's read
        // costs no extra statement.
        if principal.studio_ids.is_empty() {
            return Err(BillingError::InvoiceNotFound);
        }
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        repo::manage_studios(&mut tx, &principal.studio_ids).await?;
        let view = Self::view(&mut tx, id).await?;
        let addressed_to_them = view
            .row
            .studio_id
            .is_some_and(|studio| principal.studio_ids.contains(&studio));
        if !addressed_to_them || view.row.status == "draft" {
            return Err(BillingError::InvoiceNotFound);
        }
        Ok((tx, view))
    }

    /// Reads an invoice, with an access event (financial data).
    pub(crate) async fn get(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<InvoiceView, BillingError> {
        let (mut tx, view) = self.readable(principal, id).await?;
        let mut access = AuditEventBuilder::new(SERVICE, Action::Read, "invoices", id)
            .actor_user(principal.user_id)
            .tenant(view.row.issuer_id)
            .purpose(Purpose::Payment);
        if let Some(studio) = view.row.studio_id {
            access = access.change("studio_id", "", &studio.to_string());
        }
        fitflow_outbox::record(&mut tx, &access.build()).await?;
        commit(tx).await?;
        Ok(view)
    }

    /// One page of the issued documents addressed to `studio_id`, for its
    /// managers, with one access event.
    pub(crate) async fn list_for_studio(
        &self,
        principal: &Principal,
        studio_id: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        page_size: u32,
    ) -> Result<(Vec<InvoiceView>, Option<(DateTime<Utc>, Uuid)>), BillingError> {
        if !principal.studio_ids.contains(&studio_id) {
            return Err(BillingError::StudioNotManaged);
        }
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        repo::manage_studios(&mut tx, &[studio_id]).await?;
        let mut rows =
            repo::invoices_to_studio(&mut tx, studio_id, after, i64::from(page_size) + 1).await?;
        let next =
            fitflow_api::page::split_page(&mut rows, page_size, |row| (row.created_at, row.id));
        let access = AuditEventBuilder::new(SERVICE, Action::Read, "invoice_list", studio_id)
            .actor_user(principal.user_id)
            .tenant(studio_id)
            .change("invoices", "", &rows.len().to_string())
            .purpose(Purpose::Payment)
            .build();
        fitflow_outbox::record(&mut tx, &access).await?;
        let views = Self::views(&mut tx, rows).await?;
        commit(tx).await?;
        Ok((views, next))
    }

    /// One page of an issuer's invoices, with one access event.
    pub(crate) async fn list(
        &self,
        principal: &Principal,
        issuer: Option<Uuid>,
        after: Option<(DateTime<Utc>, Uuid)>,
        page_size: u32,
    ) -> Result<(Vec<InvoiceView>, Option<(DateTime<Utc>, Uuid)>), BillingError> {
        let issuer_id = issuer.unwrap_or(principal.user_id);
        if !principal.acts_for(issuer_id) {
            return Err(BillingError::TrainerNotFound);
        }
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let mut rows =
            repo::invoices_of(&mut tx, issuer_id, after, i64::from(page_size) + 1).await?;
        let next =
            fitflow_api::page::split_page(&mut rows, page_size, |row| (row.created_at, row.id));
        let access = AuditEventBuilder::new(SERVICE, Action::Read, "invoice_list", issuer_id)
            .actor_user(principal.user_id)
            .tenant(issuer_id)
            .change("invoices", "", &rows.len().to_string())
            .purpose(Purpose::Payment)
            .build();
        fitflow_outbox::record(&mut tx, &access).await?;
        let views = Self::views(&mut tx, rows).await?;
        commit(tx).await?;
        Ok((views, next))
    }

    /// Voids a draft or an issued invoice no credit note corrects; an issued
    /// one keeps its number.
    pub(crate) async fn void(
        &self,
        principal: &Principal,
        id: Uuid,
        reason: &str,
        etag: &str,
    ) -> Result<InvoiceView, BillingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = Self::locked(&mut tx, principal, id, etag).await?;
        if row.status == "void" || row.kind == "credit_note" {
            return Err(BillingError::InvoiceState);
        }
        // Credited already: voiding it too would correct it twice. The row
        // lock above orders this after any credit note being added.
        if repo::has_credit_notes(&mut tx, id).await? {
            return Err(BillingError::InvoiceState);
        }
        // Money received is given back before the invoice goes away.
        if row.amount_paid > Decimal::ZERO {
            return Err(BillingError::InvoiceHasPayments);
        }
        // The sessions it drew go back to their packs; the packs it sold
        // are cancelled, unless a session is drawn from one.
        let (given_back, packs_cancelled) =
            crate::pack_sales::on_void(&mut tx, principal, &row).await?;
        repo::void(&mut tx, id, reason).await?;
        // What it billed from the schedule may be billed again.
        let freed = repo::free_items(&mut tx, id).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "invoices", id)
            .actor_user(principal.user_id)
            .tenant(row.issuer_id)
            .change("status", &row.status, "void")
            .change("billed_items_freed", "", &freed.to_string())
            .change("pack_sessions_given_back", "", &given_back.to_string())
            .change("session_packs_cancelled", "", &packs_cancelled.to_string())
            .change(
                "void_reason_length",
                "",
                &reason.chars().count().to_string(),
            )
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let view = Self::view(&mut tx, id).await?;
        commit(tx).await?;
        Ok(view)
    }
}

/// Checks a draft's new `lines` against the items it bills: a line naming
/// an appointment keeps an item billed on this draft (each once); an item
/// no line names is freed. A line naming anything else is refused, so no
/// caller bills (or blocks) an item DraftClientInvoice did not bill here.
/// A line keeping a session drawn from a pack stays at 0.00 and names the
/// pack again; a drawn session no line keeps goes back to its pack.
/// Returns how many items were freed, and how many sessions given back.
async fn keep_billed_items(
    tx: &mut fitflow_db::Tx,
    principal: &Principal,
    draft: &InvoiceRow,
    lines: &mut [LineRow],
) -> Result<(usize, usize), BillingError> {
    let billed: Vec<(Uuid, Uuid, String)> = repo::billed_items_of(tx, draft.id).await?;
    let draws: HashMap<(Uuid, Uuid), Uuid> = repo::draws_of(tx, draft.id)
        .await?
        .into_iter()
        .map(|(appointment, client, pack)| ((appointment, client), pack))
        .collect();
    let mut kept = std::collections::HashSet::new();
    let mut violations = Vec::new();
    for (index, line) in lines.iter_mut().enumerate() {
        line.drawn_pack_id = None;
        let (Some(appointment_id), Some(charge)) = (line.appointment_id, line.charge.as_deref())
        else {
            continue;
        };
        // The items this draft bills (read by its id): an appointment is
        // billed once per charge, whoever pays.
        let on_draft = billed.iter().any(|(appointment, _, billed_charge)| {
            *appointment == appointment_id && billed_charge == charge
        });
        if !on_draft || !kept.insert((appointment_id, charge.to_owned())) {
            violations.push(fitflow_error::FieldViolation {
                field: format!("invoice.lines[{index}].appointment_id"),
                description: "must name an item this draft bills, each once (only \
                              DraftClientInvoice bills an appointment)"
                    .to_owned(),
            });
            continue;
        }
        if charge == crate::schedule::Charge::Session.as_str()
            && let Some(pack_id) = draft
                .client_id
                .and_then(|client| draws.get(&(appointment_id, client)))
        {
            if !line.amount.is_zero() {
                violations.push(fitflow_error::FieldViolation {
                    field: format!("invoice.lines[{index}].unit_price"),
                    description: "must be 0 for a session drawn from a pack (drop the line to \
                                  give the session back and bill it)"
                        .to_owned(),
                });
            }
            line.drawn_pack_id = Some(*pack_id);
        }
    }
    if !violations.is_empty() {
        return Err(BillingError::Rejected(
            fitflow_error::ApiError::invalid_argument(violations),
        ));
    }
    // The client's packs first (invoice row, packs, billed items: the
    // order drafts and voids take too), when a drawn session may go back.
    let mut locked = match draft.client_id {
        Some(client) if !draws.is_empty() => {
            repo::lock_client_packs(tx, draft.issuer_id, client).await?
        }
        _ => Vec::new(),
    };
    let mut freed = 0;
    let mut given_back = 0;
    for (appointment_id, client_id, charge) in &billed {
        if !kept.contains(&(*appointment_id, charge.clone())) {
            if draws.contains_key(&(*appointment_id, *client_id)) {
                given_back += crate::pack_sales::give_back(
                    tx,
                    principal,
                    draft,
                    &mut locked,
                    Some((*appointment_id, *client_id)),
                )
                .await?;
            }
            repo::free_item(tx, draft.id, (*appointment_id, *client_id, charge)).await?;
            freed += 1;
        }
    }
    Ok((freed, given_back))
}

/// INVALID_ARGUMENT for a line selling a session pack: packs are sold to
/// clients, never to a studio.
fn no_packs_to_a_studio(lines: &[LineRow]) -> Result<(), BillingError> {
    let violations: Vec<fitflow_error::FieldViolation> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.pack_sessions.is_some())
        .map(|(index, _)| fitflow_error::FieldViolation {
            field: format!("invoice.lines[{index}].pack_sessions"),
            description: "a studio invoice sells no session pack".to_owned(),
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(BillingError::Rejected(
            fitflow_error::ApiError::invalid_argument(violations),
        ))
    }
}

/// Rows of several invoices grouped by invoice, each group in the order read.
fn group<T>(rows: Vec<repo::Keyed<T>>) -> HashMap<Uuid, Vec<T>> {
    let mut groups: HashMap<Uuid, Vec<T>> = HashMap::new();
    for keyed in rows {
        groups.entry(keyed.invoice_id).or_default().push(keyed.row);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_year_dash_six_digits_and_treatments_round_trip() {
        assert_eq!(number_text(2026, 7), "2026-000007");
        assert_eq!(number_text(2027, 123_456), "2027-123456");
        for treatment in [Treatment::Taxable, Treatment::ZeroRated, Treatment::Exempt] {
            assert_eq!(
                treatment_of(treatment_name(treatment)).ok(),
                Some(treatment)
            );
        }
        assert!(treatment_of("taxed").is_err());
    }
}
