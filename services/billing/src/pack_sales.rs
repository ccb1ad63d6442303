//! Session packs in the invoices' use cases: issuing an invoice sells the
//! packs of its lines, voiding it cancels them (refused while a session is
//! drawn from one) and gives back the sessions it drew, and
//! ListSessionPacks reads a client's packs with an access event. Every step
//! runs inside the caller's transaction, after the client's packs are
//! locked (the one order: invoice row, then packs, then billed items).

use std::collections::HashMap;

use chrono::NaiveDate;
use fitflow_auth::Principal;
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use uuid::Uuid;

use crate::invoices::{commit, user};
use crate::repo::{self, InvoiceRow, LineRow, PackRow};
use crate::{BillingError, Invoicing, SERVICE};

/// Audits the change of a pack's balance.
pub(crate) async fn record_used(
    tx: &mut fitflow_db::Tx,
    principal: &Principal,
    issuer_id: Uuid,
    pack_id: Uuid,
    before: i32,
    after: i32,
) -> Result<(), BillingError> {
    let event = AuditEventBuilder::new(SERVICE, Action::Update, "session_packs", pack_id)
        .actor_user(principal.user_id)
        .tenant(issuer_id)
        .change("used", &before.to_string(), &after.to_string())
        .build();
    fitflow_outbox::record(tx, &event).await?;
    Ok(())
}

/// Sells the packs of an issued invoice's `lines` (each ACTIVE, nothing
/// used), audited one by one; how many.
pub(crate) async fn sell(
    tx: &mut fitflow_db::Tx,
    principal: &Principal,
    invoice: &InvoiceRow,
    lines: &[LineRow],
) -> Result<usize, BillingError> {
    // Packs are sold to clients only; a studio invoice carries none (its
    // lines are refused before).
    let Some(client_id) = invoice.client_id else {
        return Ok(0);
    };
    let mut sold = 0;
    for line in lines {
        let (Some(sessions), Some(expires_on)) = (line.pack_sessions, line.pack_expires_on) else {
            continue;
        };
        let pack = PackRow {
            id: Uuid::now_v7(),
            issuer_id: invoice.issuer_id,
            client_id,
            sessions,
            used: 0,
            expires_on,
            invoice_id: invoice.id,
            position: line.position,
            state: "active".to_owned(),
            created_at: chrono::Utc::now(),
        };
        repo::insert_pack(tx, &pack).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Create, "session_packs", pack.id)
            .actor_user(principal.user_id)
            .tenant(invoice.issuer_id)
            .change("client_id", "", &client_id.to_string())
            .change("invoice_id", "", &invoice.id.to_string())
            .change("sessions", "", &sessions.to_string())
            .change("expires_on", "", &expires_on.to_string())
            .build();
        fitflow_outbox::record(tx, &event).await?;
        sold += 1;
    }
    Ok(sold)
}

/// Gives back to their packs the sessions `invoice` drew (all of them, or
/// the one session of `only`), auditing each pack's new balance; how many.
/// The client's packs must be locked already (`locked`, updated here).
pub(crate) async fn give_back(
    tx: &mut fitflow_db::Tx,
    principal: &Principal,
    invoice: &InvoiceRow,
    locked: &mut [PackRow],
    only: Option<(Uuid, Uuid)>,
) -> Result<usize, BillingError> {
    let given_back = repo::delete_draws(tx, invoice.id, only).await?;
    let mut per_pack: HashMap<Uuid, i32> = HashMap::new();
    for pack_id in &given_back {
        *per_pack.entry(*pack_id).or_default() += 1;
    }
    for pack in locked.iter_mut() {
        let Some(count) = per_pack.get(&pack.id) else {
            continue;
        };
        let before = pack.used;
        pack.used = (before - count).max(0);
        repo::set_used(tx, pack.id, pack.used).await?;
        record_used(tx, principal, invoice.issuer_id, pack.id, before, pack.used).await?;
    }
    Ok(given_back.len())
}

/// What voiding `invoice` does to packs: the sessions it drew go back to
/// their packs, and the packs it sold are cancelled — SESSION_PACK_IN_USE
/// (and the caller's transaction rolls back) while a session is drawn from
/// one. Returns (sessions given back, packs cancelled).
pub(crate) async fn on_void(
    tx: &mut fitflow_db::Tx,
    principal: &Principal,
    invoice: &InvoiceRow,
) -> Result<(usize, usize), BillingError> {
    // A studio invoice neither sells nor draws from packs.
    let Some(client_id) = invoice.client_id else {
        return Ok((0, 0));
    };
    let mut locked = repo::lock_client_packs(tx, invoice.issuer_id, client_id).await?;
    let given_back = give_back(tx, principal, invoice, &mut locked, None).await?;
    let sold: Vec<&PackRow> = locked
        .iter()
        .filter(|pack| pack.invoice_id == invoice.id && pack.state == "active")
        .collect();
    if sold.iter().any(|pack| pack.used > 0) {
        return Err(BillingError::SessionPackInUse);
    }
    for pack in &sold {
        repo::cancel_pack(tx, pack.id).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "session_packs", pack.id)
            .actor_user(principal.user_id)
            .tenant(invoice.issuer_id)
            .change("state", "active", "cancelled")
            .build();
        fitflow_outbox::record(tx, &event).await?;
    }
    Ok((given_back, sold.len()))
}

impl Invoicing {
    /// One page of the packs `issuer` (the caller when `None`) sold
    /// `client_id`, the earliest expiring first, with one access event.
    pub(crate) async fn list_packs(
        &self,
        principal: &Principal,
        issuer: Option<Uuid>,
        client_id: Uuid,
        after: Option<(NaiveDate, Uuid)>,
        page_size: u32,
    ) -> Result<(Vec<PackRow>, Option<(NaiveDate, Uuid)>), BillingError> {
        let issuer_id = issuer.unwrap_or(principal.user_id);
        if !principal.acts_for(issuer_id) {
            return Err(BillingError::TrainerNotFound);
        }
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let mut rows = repo::packs_of_client(
            &mut tx,
            issuer_id,
            client_id,
            after,
            i64::from(page_size) + 1,
        )
        .await?;
        let next =
            fitflow_api::page::split_page(&mut rows, page_size, |row| (row.expires_on, row.id));
        let access = AuditEventBuilder::new(SERVICE, Action::Read, "session_packs", client_id)
            .actor_user(principal.user_id)
            .tenant(issuer_id)
            .change("session_packs", "", &rows.len().to_string())
            .purpose(Purpose::Payment)
            .build();
        fitflow_outbox::record(&mut tx, &access).await?;
        commit(tx).await?;
        Ok((rows, next))
    }
}
