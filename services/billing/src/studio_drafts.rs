//! Studio invoices drafted from the schedule (DraftStudioInvoice): the
//! sessions a trainer held at a studio in a period become one draft to the
//! studio, each at the contract's rate on its date. A session is billed to
//! its studio once across the invoices that are not void: its claim in
//! `billed_items` (keyed by the studio where it was held — its `client_id`
//! column — and charge `studio_rate`) is the rule, taken in this
//! transaction in start order, as client drafts take theirs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use fitflow_api::idempotency::{self, Claim};
use fitflow_auth::Principal;
use fitflow_outbox::{Action, AuditEventBuilder};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::invoices::{Idempotency, InvoiceView, commit, user};
use crate::peers::StudioCard;
use crate::repo::{self, InvoiceRow, LineRow, Payer};
use crate::schedule::Charge;
use crate::studio_invoices::{self, Location, StudioLine, StudioSession};
use crate::{BillingError, Invoicing, SERVICE};

/// A studio draft as asked (validated).
#[derive(Debug, Clone)]
pub(crate) struct StudioDraft {
    /// The issuer; the caller when `None`.
    pub issuer_id: Option<Uuid>,
    pub studio_id: Uuid,
    /// The period's first and last local dates in the studio's zone.
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub payment_terms_days: i32,
    pub notes: String,
}

/// The stored line of a session at `position`.
fn line_row(position: usize, line: StudioLine) -> LineRow {
    LineRow {
        position: i32::try_from(position).unwrap_or(i32::MAX),
        description: line.description,
        quantity: Decimal::ONE,
        unit_price: line.unit_price,
        amount: crate::tax::to_cent(line.unit_price),
        province: line.province.code().to_owned(),
        treatment: crate::invoices::treatment_name(crate::tax::Treatment::Taxable).to_owned(),
        appointment_id: Some(line.appointment_id),
        charge: Some(Charge::StudioRate.as_str().to_owned()),
        pack_sessions: None,
        pack_expires_on: None,
        drawn_pack_id: None,
    }
}

impl Invoicing {
    /// Drafts the sessions `asked.studio_id` owes the issuer for the period
    /// into one invoice to the studio; NOTHING_TO_BILL (and nothing
    /// written) when every session is billed already.
    pub(crate) async fn draft_for_studio(
        &self,
        principal: &Principal,
        bearer: &str,
        asked: StudioDraft,
        request: Idempotency,
    ) -> Result<InvoiceView, BillingError> {
        let issuer_id = asked.issuer_id.unwrap_or(principal.user_id);
        if !principal.acts_for(issuer_id) {
            return Err(BillingError::TrainerNotFound);
        }
        // Held to the end: the peers' calls and the claims are the cost.
        let _turn = self.studio_drafts.enter().await?;
        // The peers first: no transaction waits on another service.
        let payer = self.peers.studio_card(bearer, asked.studio_id).await?;
        if payer.billing_studio_id != asked.studio_id {
            return Err(BillingError::StudioBilledElsewhere(payer.billing_studio_id));
        }
        let mut sessions = self
            .peers
            .studio_sessions(bearer, issuer_id, (asked.first, asked.last))
            .await?;
        // Those billed already are left out before pricing, so the first
        // 200 still to bill are drafted. The claims below decide: a session
        // a concurrent draft takes meanwhile is left out there.
        let listed: Vec<Uuid> = sessions
            .iter()
            .map(|session| session.appointment_id)
            .collect();
        let billed = {
            let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
            let billed = repo::billed_among(&mut tx, Charge::StudioRate.as_str(), &listed).await?;
            fitflow_db::end_read(tx);
            billed
        };
        sessions.retain(|session| !billed.contains(&session.appointment_id));
        let locations = self
            .locations(bearer, asked.studio_id, payer, &sessions)
            .await?;
        let drafted = studio_invoices::billed_here(&sessions, &locations);
        let mut rates = BTreeMap::new();
        for (studio, category, date) in studio_invoices::rates_needed(&drafted) {
            if let Some(rate) = self.peers.rate(issuer_id, studio, category, date).await? {
                rates.insert((studio, category, date), rate);
            }
        }
        let priced = studio_invoices::lines_for(&drafted, &rates, &locations)
            .map_err(BillingError::NoContractRate)?;

        let id = Uuid::now_v7();
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) = idempotency::claim(&mut tx, key, hash, id).await?
        {
            let view = Self::view(&mut tx, existing).await?;
            commit(tx).await?;
            return Ok(view);
        }
        // In start order, as every draft of this studio claims: concurrent
        // drafts never wait on each other in a cycle. The claim is keyed by
        // the studio where the session was held, not the one billed: a
        // session is held at one studio, so the key holds "billed once"
        // whichever studio its invoice goes to. Keyed by the payer, a draft
        // to a headquarters and one to its location racing a change of
        // `billing_consolidated` each took their own key for the same
        // session (the check above reads before either claims).
        let mut lines = Vec::new();
        for line in priced {
            if repo::claim_item(
                &mut tx,
                (
                    line.appointment_id,
                    line.studio_id,
                    Charge::StudioRate.as_str(),
                ),
                id,
                issuer_id,
            )
            .await?
            {
                lines.push(line_row(lines.len() + 1, line));
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
            Payer::Studio(asked.studio_id),
            asked.payment_terms_days,
            asked.notes,
            subtotal,
        );
        repo::insert_invoice(&mut tx, &row).await?;
        repo::insert_lines(&mut tx, id, issuer_id, &lines).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Create, "invoices", id)
            .actor_user(principal.user_id)
            .tenant(issuer_id)
            .change("studio_id", "", &asked.studio_id.to_string())
            .change("source", "", "studio_sessions")
            .change("period", "", &format!("{}..{}", asked.first, asked.last))
            .change("lines", "", &lines.len().to_string())
            .change("subtotal", "", &subtotal.to_string())
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let view = Self::view(&mut tx, id).await?;
        commit(tx).await?;
        Ok(view)
    }

    /// The studios whose sessions an invoice to `payer_id` bills: the payer
    /// itself, and each studio in `sessions` whose invoices tenancy says go
    /// to it (a chain's location consolidated at its headquarters). A
    /// studio tenancy no longer shows (deleted) is left out with its
    /// sessions: where its invoices go is unknown.
    async fn locations(
        &self,
        bearer: &str,
        payer_id: Uuid,
        payer: StudioCard,
        sessions: &[StudioSession],
    ) -> Result<HashMap<Uuid, Location>, BillingError> {
        let mut locations = HashMap::from([(
            payer_id,
            Location {
                province: payer
                    .province
                    .ok_or(BillingError::ProvinceOfSupplyUnknown)?,
                named: None,
            },
        )]);
        let others: BTreeSet<Uuid> = sessions
            .iter()
            .map(|session| session.studio_id)
            .filter(|studio| *studio != payer_id)
            .collect();
        for studio in others {
            let card = match self.peers.studio_card(bearer, studio).await {
                Ok(card) => card,
                Err(BillingError::StudioNotFound) => continue,
                Err(error) => return Err(error),
            };
            if card.billing_studio_id == payer_id {
                locations.insert(
                    studio,
                    Location {
                        province: card.province.ok_or(BillingError::ProvinceOfSupplyUnknown)?,
                        named: Some(card.name),
                    },
                );
            }
        }
        Ok(locations)
    }
}
