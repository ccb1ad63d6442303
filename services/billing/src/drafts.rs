//! Client invoices drafted from the schedule (DraftClientInvoice): what
//! scheduling says a client owes for a period becomes one draft, each item
//! billed once across the invoices that are not void. The `billed_items`
//! table's primary key holds that rule in the database: a draft claims its
//! items in its own transaction, in the order scheduling lists them (the
//! same total order for every draft, so two drafts never wait on each
//! other in a cycle), and an item another transaction holds is left out.
//!
//! A held session of a client who bought a session pack is drawn from the
//! pack instead (a 0.00 line naming it): the draft locks the client's packs
//! before it claims anything, so concurrent drafts draw one at a time and
//! never more than a pack holds.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::NaiveDate;
use fitflow_api::canada::Province;
use fitflow_api::idempotency::{self, Claim};
use fitflow_auth::Principal;
use fitflow_outbox::{Action, AuditEventBuilder};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::invoices::{Idempotency, InvoiceView, commit, user};
use crate::packs;
use crate::repo::{self, InvoiceRow, LineRow, Payer};
use crate::schedule::{self, Charge, ItemKey, MAX_DRAFT_LINES};
use crate::{BillingError, Invoicing, SERVICE};

/// A draft from the schedule as asked (validated).
#[derive(Debug, Clone)]
pub(crate) struct ScheduleDraft {
    /// The issuer; the caller when `None`.
    pub issuer_id: Option<Uuid>,
    pub client_id: Uuid,
    /// The period's first and last local dates (inclusive).
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub payment_terms_days: i32,
    pub notes: String,
}

/// The stored line of a drafted item at `position`.
fn line_row(position: usize, line: schedule::DraftLine) -> LineRow {
    LineRow {
        pack_sessions: None,
        pack_expires_on: None,
        drawn_pack_id: None,
        position: i32::try_from(position).unwrap_or(i32::MAX),
        description: line.description,
        quantity: Decimal::ONE,
        unit_price: line.unit_price,
        amount: crate::tax::to_cent(line.unit_price),
        province: line.province.code().to_owned(),
        treatment: crate::invoices::treatment_name(crate::tax::Treatment::Taxable).to_owned(),
        appointment_id: Some(line.key.appointment_id),
        charge: Some(line.key.charge.as_str().to_owned()),
    }
}

impl Invoicing {
    /// Drafts the client's billable items of the period into one invoice;
    /// NOTHING_TO_BILL (and nothing written) when none is left to bill.
    pub(crate) async fn draft_from_schedule(
        &self,
        principal: &Principal,
        bearer: &str,
        asked: ScheduleDraft,
        request: Idempotency,
    ) -> Result<InvoiceView, BillingError> {
        let issuer_id = asked.issuer_id.unwrap_or(principal.user_id);
        if !principal.acts_for(issuer_id) {
            return Err(BillingError::TrainerNotFound);
        }
        // The peers first: no transaction waits on another service.
        self.peers
            .require_client(bearer, asked.client_id, issuer_id)
            .await?;
        let trainer_province = self.peers.province(bearer, issuer_id).await?;
        let listed = self
            .peers
            .billable_items(bearer, issuer_id, asked.first, asked.last)
            .await?;
        let candidates = schedule::candidates(&listed, asked.client_id);
        let mut studios: HashMap<Uuid, Province> = HashMap::new();
        for studio_id in candidates.iter().filter_map(|item| item.studio_id) {
            if let Entry::Vacant(slot) = studios.entry(studio_id) {
                slot.insert(self.peers.studio_province(bearer, studio_id).await?);
            }
        }

        let id = Uuid::now_v7();
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) = idempotency::claim(&mut tx, key, hash, id).await?
        {
            let view = Self::view(&mut tx, existing).await?;
            commit(tx).await?;
            return Ok(view);
        }
        // The client's packs, locked before any claim (the order every
        // draft, update and void takes): concurrent drafts draw one at a
        // time, so `used` never exceeds `sessions`.
        let sessions_listed = candidates
            .iter()
            .any(|item| item.key.charge == Charge::Session);
        let mut packs: Vec<packs::Balance> = if sessions_listed {
            repo::lock_client_packs(&mut tx, issuer_id, asked.client_id)
                .await?
                .into_iter()
                .map(|row| packs::Balance {
                    id: row.id,
                    sessions: row.sessions,
                    used: row.used,
                    expires_on: row.expires_on,
                    active: row.state == "active",
                    sold_at: row.created_at,
                })
                .collect()
        } else {
            Vec::new()
        };
        let used_before: Vec<i32> = packs.iter().map(|pack| pack.used).collect();
        // In the order listed (start, appointment, client): every draft
        // claims in the same order, so concurrent drafts never deadlock.
        let mut lines = Vec::new();
        for item in candidates {
            if lines.len() == MAX_DRAFT_LINES {
                break;
            }
            let ItemKey {
                appointment_id,
                client_id,
                charge,
            } = item.key;
            if repo::claim_item(
                &mut tx,
                (appointment_id, client_id, charge.as_str()),
                id,
                issuer_id,
            )
            .await?
            {
                let studio = item
                    .studio_id
                    .and_then(|studio| studios.get(&studio).copied());
                let line = schedule::line_for(item, studio, trainer_province);
                let mut row = line_row(lines.len() + 1, line);
                if charge == Charge::Session
                    && let Some(index) = packs::draw(&mut packs, item.local_date)
                {
                    let pack = &packs[index];
                    repo::insert_draw(&mut tx, (appointment_id, client_id), pack.id, id, issuer_id)
                        .await?;
                    row.description = packs::drawn_description(&row.description, pack);
                    row.unit_price = Decimal::ZERO;
                    row.amount = Decimal::ZERO;
                    row.drawn_pack_id = Some(pack.id);
                }
                lines.push(row);
            }
        }
        if lines.is_empty() {
            // Dropped unfinished: the transaction rolls back.
            return Err(BillingError::NothingToBill);
        }
        let subtotal: Decimal = lines.iter().map(|line| line.amount).sum();
        if subtotal > crate::grpc::MAX_AMOUNT {
            return Err(BillingError::InvoiceTooLarge);
        }
        let row = InvoiceRow::draft(
            id,
            issuer_id,
            Payer::Client(asked.client_id),
            asked.payment_terms_days,
            asked.notes,
            subtotal,
        );
        repo::insert_invoice(&mut tx, &row).await?;
        repo::insert_lines(&mut tx, id, issuer_id, &lines).await?;
        let drawn = lines
            .iter()
            .filter(|line| line.drawn_pack_id.is_some())
            .count();
        let event = AuditEventBuilder::new(SERVICE, Action::Create, "invoices", id)
            .actor_user(principal.user_id)
            .tenant(issuer_id)
            .change("client_id", "", &asked.client_id.to_string())
            .change("source", "", "schedule")
            .change("period", "", &format!("{}..{}", asked.first, asked.last))
            .change("lines", "", &lines.len().to_string())
            .change("subtotal", "", &subtotal.to_string())
            .change("sessions_drawn", "", &drawn.to_string())
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        for (pack, before) in packs.iter().zip(used_before) {
            if pack.used != before {
                repo::set_used(&mut tx, pack.id, pack.used).await?;
                crate::pack_sales::record_used(
                    &mut tx, principal, issuer_id, pack.id, before, pack.used,
                )
                .await?;
            }
        }
        let view = Self::view(&mut tx, id).await?;
        commit(tx).await?;
        Ok(view)
    }
}
