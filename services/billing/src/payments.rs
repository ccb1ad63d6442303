//! Payments and refunds of client invoices, the statuses they set, and the
//! overdue sweep.
//!
//! An issued invoice's balance is its total, less its credit notes' totals,
//! less what was paid net of refunds (`amount_paid`). A payment never takes
//! the balance below 0.00: an overpayment is refused (PAYMENT_EXCEEDS_BALANCE,
//! naming the balance), not kept as a credit, since FitFlow keeps no client
//! credit balance to apply it to. Each payment or refund locks the invoice's
//! row first, so concurrent ones are applied one at a time against the
//! balance the previous one left. Statuses follow [`payment_status`]: PAID
//! once something was paid and nothing is due, OVERDUE while a balance
//! remains after the due date (partly paid or not), PARTIALLY_PAID before
//! it, ISSUED when nothing is paid.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use fitflow_api::idempotency::{self, Claim};
use fitflow_api::page::PageTokens;
use fitflow_auth::{Caller, Principal, Role};
use fitflow_db::SystemPool;
use fitflow_error::{ApiError, FieldViolation};
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use rust_decimal::Decimal;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::invoices::{Idempotency, InvoiceView};
use crate::repo::{self, InvoiceRow, PaymentRow};
use crate::{BillingError, Invoicing, SERVICE};

/// How often the billing service sweeps for overdue invoices.
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// Invoices marked per sweep transaction.
const SWEEP_BATCH: i64 = 500;

/// A payment as asked (validated).
#[derive(Debug, Clone)]
pub(crate) struct NewPayment {
    pub invoice_id: Uuid,
    pub method: &'static str,
    pub amount: Decimal,
    pub reference: String,
    pub paid_on: NaiveDate,
    pub bank_account_id: Option<Uuid>,
}

/// A refund as asked (validated).
#[derive(Debug, Clone)]
pub(crate) struct NewRefund {
    pub payment_id: Uuid,
    pub amount: Decimal,
    pub reason: String,
}

/// The service's payments.
pub struct Payments {
    pool: PgPool,
    /// The system role's pool: the overdue sweep sees every issuer's invoices.
    system: SystemPool,
    page_tokens: PageTokens,
}

fn user(principal: &Principal) -> Caller {
    Caller::User(principal.clone())
}

async fn commit(tx: fitflow_db::Tx) -> Result<(), BillingError> {
    tx.commit().await.map_err(fitflow_db::DbError::from)?;
    Ok(())
}

/// Today as the overdue rules count it: the date in Pacific time, the last
/// Canadian zone to end a day, so no invoice is overdue anywhere in Canada
/// before its due date has ended where its issuer is.
pub fn overdue_today() -> NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::America::Vancouver)
        .date_naive()
}

/// Whether `row` is an issued invoice (not a draft, a void invoice or a
/// credit note): the documents payments apply to.
pub(crate) fn is_payable_kind_and_status(row: &InvoiceRow) -> bool {
    row.kind == "invoice" && !matches!(row.status.as_str(), "draft" | "void")
}

/// The status of an issued invoice with `balance` due and `paid` net paid,
/// due on `due_date`, as of `today`.
pub(crate) fn payment_status(
    balance: Decimal,
    paid: Decimal,
    due_date: Option<NaiveDate>,
    today: NaiveDate,
) -> &'static str {
    let nothing_due = balance <= Decimal::ZERO;
    let past_due = due_date.is_some_and(|due| due < today);
    if nothing_due && paid > Decimal::ZERO {
        "paid"
    } else if !nothing_due && past_due {
        "overdue"
    } else if paid > Decimal::ZERO {
        "partially_paid"
    } else {
        "issued"
    }
}

fn audit_invoice_change(
    principal: &Principal,
    invoice: &InvoiceRow,
    amount_paid: Decimal,
    status: &str,
) -> fitflow_outbox::AuditEvent {
    let mut event = AuditEventBuilder::new(SERVICE, Action::Update, "invoices", invoice.id)
        .actor_user(principal.user_id)
        .tenant(invoice.issuer_id)
        .change(
            "amount_paid",
            &invoice.amount_paid.to_string(),
            &amount_paid.to_string(),
        );
    if status != invoice.status {
        event = event.change("status", &invoice.status, status);
    }
    event.build()
}

/// The receiving service of billing's reliable effects on payments.
const SCHEDULING: &str = "scheduling";
/// Its internal RPC that records a client's payment of an appointment.
const SET_PAYMENT_STATUS: &str = "/fitflow.scheduling.v1.SchedulingService/SetPaymentStatus";

/// When a payment or refund moves `invoice` (as locked, before the change)
/// to `status`, tells scheduling what became of the client's payment of
/// each appointment the invoice bills ([`crate::schedule::participant_status`]):
/// one command per appointment in billing's outbox, on `tx` (the payment's
/// own transaction), so the payment and the notice commit together and the
/// platform's relay delivers it to scheduling, retrying until it answers.
async fn tell_scheduling(
    tx: &mut fitflow_db::Tx,
    invoice: &InvoiceRow,
    status: &str,
) -> Result<(), BillingError> {
    use fitflow_proto::scheduling::{PaymentStatus, SetPaymentStatusRequest};
    // A studio's payment is the studio's business with the trainer: the
    // clients' payment statuses in scheduling are not touched by it.
    let Some(client_id) = invoice.client_id else {
        return Ok(());
    };
    let Some(participant) = crate::schedule::participant_status(&invoice.status, status) else {
        return Ok(());
    };
    let participant = match participant {
        "paid" => PaymentStatus::Paid,
        _ => PaymentStatus::Refunded,
    };
    let appointments: std::collections::BTreeSet<Uuid> = repo::lines(tx, invoice.id)
        .await?
        .into_iter()
        .filter_map(|line| line.appointment_id)
        .collect();
    for appointment_id in appointments {
        let request = SetPaymentStatusRequest {
            appointment_id: appointment_id.to_string(),
            client_id: client_id.to_string(),
            status: participant as i32,
            // Each notice its own: scheduling's idempotency keys it, and
            // its `accept_once` the command id on redelivery.
            request_id: Uuid::now_v7().to_string(),
        };
        fitflow_outbox::send(tx, SCHEDULING, SET_PAYMENT_STATUS, &request).await?;
    }
    Ok(())
}

impl Payments {
    /// The use cases over `pool`; the sweep runs on `system`.
    pub fn new(pool: PgPool, system: SystemPool) -> Self {
        Self {
            pool,
            system,
            page_tokens: PageTokens::with_random_key(),
        }
    }

    /// The page-token issuer, for ListPayments.
    pub(crate) fn page_tokens(&self) -> &PageTokens {
        &self.page_tokens
    }

    /// The invoice of `id` locked, if the caller acts for its issuer.
    async fn locked_invoice(
        tx: &mut fitflow_db::Tx,
        principal: &Principal,
        id: Uuid,
    ) -> Result<InvoiceRow, BillingError> {
        repo::invoice(tx, id, true)
            .await?
            .filter(|row| principal.acts_for(row.issuer_id))
            .ok_or(BillingError::InvoiceNotFound)
    }

    async fn replay(
        tx: &mut fitflow_db::Tx,
        existing: Uuid,
    ) -> Result<(PaymentRow, InvoiceView), BillingError> {
        let payment = repo::payment(tx, existing)
            .await?
            .ok_or(BillingError::PaymentNotFound)?;
        let invoice = Invoicing::view(tx, payment.invoice_id).await?;
        Ok((payment, invoice))
    }

    /// Records a payment on an issued invoice and moves its status.
    pub(crate) async fn record(
        &self,
        principal: &Principal,
        new: NewPayment,
        request: Idempotency,
    ) -> Result<(PaymentRow, InvoiceView), BillingError> {
        let id = Uuid::now_v7();
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) = idempotency::claim(&mut tx, key, hash, id).await?
        {
            let replayed = Self::replay(&mut tx, existing).await?;
            commit(tx).await?;
            return Ok(replayed);
        }
        // Locked: payments of one invoice are applied one at a time.
        let invoice = Self::locked_invoice(&mut tx, principal, new.invoice_id).await?;
        if !is_payable_kind_and_status(&invoice) {
            return Err(BillingError::InvoiceState);
        }
        if invoice.status == "paid" {
            return Err(BillingError::InvoicePaid);
        }
        let invoice_date = invoice
            .invoice_date
            .ok_or(BillingError::Corrupt("issued without a date"))?;
        if new.paid_on < invoice_date {
            return Err(BillingError::Rejected(ApiError::invalid_argument(vec![
                FieldViolation {
                    field: "payment.payment_date".to_owned(),
                    description: "must not be before the invoice's date".to_owned(),
                },
            ])));
        }
        if let Some(account_id) = new.bank_account_id {
            // Row-level security shows a trainer's accounts to the trainer
            // only, so a supervisor finds none.
            let account = repo::bank_account(&mut tx, account_id, false)
                .await?
                .filter(|account| account.trainer_id == invoice.issuer_id)
                .ok_or(BillingError::BankAccountNotFound)?;
            if account.status != "active" {
                return Err(BillingError::BankAccountState);
            }
        }
        let balance = invoice.total + repo::credit_note_totals(&mut tx, invoice.id).await?
            - invoice.amount_paid;
        if new.amount > balance {
            return Err(BillingError::PaymentExceedsBalance {
                balance: balance.max(Decimal::ZERO),
            });
        }
        let row = PaymentRow {
            id,
            invoice_id: invoice.id,
            issuer_id: invoice.issuer_id,
            kind: "payment".to_owned(),
            refund_of: None,
            method: new.method.to_owned(),
            amount: new.amount,
            currency: fitflow_api::money::CURRENCY.to_owned(),
            reference: new.reference,
            paid_on: new.paid_on,
            bank_account_id: new.bank_account_id,
            reason: String::new(),
            recorded_by: principal.user_id,
            created_at: Utc::now(),
            refunded: Decimal::ZERO,
        };
        repo::insert_payment(&mut tx, &row).await?;
        let amount_paid = invoice.amount_paid + new.amount;
        let status = payment_status(
            balance - new.amount,
            amount_paid,
            invoice.due_date,
            overdue_today(),
        );
        repo::set_payment_state(&mut tx, invoice.id, amount_paid, status).await?;
        tell_scheduling(&mut tx, &invoice, status).await?;
        let created = AuditEventBuilder::new(SERVICE, Action::Create, "payments", id)
            .actor_user(principal.user_id)
            .tenant(invoice.issuer_id)
            .change("invoice_id", "", &invoice.id.to_string())
            .change("method", "", new.method)
            .change("amount", "", &new.amount.to_string())
            .change("payment_date", "", &new.paid_on.to_string())
            .change(
                "reference_length",
                "",
                &row.reference.chars().count().to_string(),
            )
            .build();
        fitflow_outbox::record(&mut tx, &created).await?;
        let changed = audit_invoice_change(principal, &invoice, amount_paid, status);
        fitflow_outbox::record(&mut tx, &changed).await?;
        let recorded = Self::replay(&mut tx, id).await?;
        commit(tx).await?;
        Ok(recorded)
    }

    /// Refunds part or all of a payment and moves the invoice's status back.
    pub(crate) async fn refund(
        &self,
        principal: &Principal,
        new: NewRefund,
        request: Idempotency,
    ) -> Result<(PaymentRow, InvoiceView), BillingError> {
        let id = Uuid::now_v7();
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) = idempotency::claim(&mut tx, key, hash, id).await?
        {
            let replayed = Self::replay(&mut tx, existing).await?;
            commit(tx).await?;
            return Ok(replayed);
        }
        let invoice_id = repo::payment(&mut tx, new.payment_id)
            .await?
            .filter(|payment| principal.acts_for(payment.issuer_id))
            .ok_or(BillingError::PaymentNotFound)?
            .invoice_id;
        // The invoice's lock orders the refunds of its payments too; the
        // payment is read again under it, with every refund committed.
        // An invoice the caller cannot see hides its payment too; a database
        // failure stays what it is (retryable), never a NOT_FOUND.
        let invoice = Self::locked_invoice(&mut tx, principal, invoice_id)
            .await
            .map_err(|error| match error {
                BillingError::InvoiceNotFound => BillingError::PaymentNotFound,
                other => other,
            })?;
        let payment = repo::payment(&mut tx, new.payment_id)
            .await?
            .ok_or(BillingError::PaymentNotFound)?;
        if payment.kind != "payment" {
            return Err(BillingError::PaymentState);
        }
        let refundable = payment.amount - payment.refunded;
        if new.amount > refundable {
            return Err(BillingError::RefundExceedsPayment {
                refundable: refundable.max(Decimal::ZERO),
            });
        }
        let row = PaymentRow {
            id,
            invoice_id,
            issuer_id: invoice.issuer_id,
            kind: "refund".to_owned(),
            refund_of: Some(payment.id),
            method: payment.method.clone(),
            amount: -new.amount,
            currency: payment.currency.clone(),
            reference: String::new(),
            paid_on: Utc::now().date_naive().max(payment.paid_on),
            bank_account_id: None,
            reason: new.reason,
            recorded_by: principal.user_id,
            created_at: Utc::now(),
            refunded: Decimal::ZERO,
        };
        repo::insert_payment(&mut tx, &row).await?;
        let amount_paid = invoice.amount_paid - new.amount;
        let balance =
            invoice.total + repo::credit_note_totals(&mut tx, invoice.id).await? - amount_paid;
        let status = payment_status(balance, amount_paid, invoice.due_date, overdue_today());
        repo::set_payment_state(&mut tx, invoice.id, amount_paid, status).await?;
        tell_scheduling(&mut tx, &invoice, status).await?;
        let created = AuditEventBuilder::new(SERVICE, Action::Create, "payments", id)
            .actor_user(principal.user_id)
            .tenant(invoice.issuer_id)
            .change("kind", "", "refund")
            .change("refund_of", "", &payment.id.to_string())
            .change("amount", "", &row.amount.to_string())
            .change("reason_length", "", &row.reason.chars().count().to_string())
            .build();
        fitflow_outbox::record(&mut tx, &created).await?;
        let changed = audit_invoice_change(principal, &invoice, amount_paid, status);
        fitflow_outbox::record(&mut tx, &changed).await?;
        let refunded = Self::replay(&mut tx, id).await?;
        commit(tx).await?;
        Ok(refunded)
    }

    /// Reads a payment or refund, with an access event.
    pub(crate) async fn get(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<PaymentRow, BillingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let payment = repo::payment(&mut tx, id)
            .await?
            .filter(|payment| principal.acts_for(payment.issuer_id))
            .ok_or(BillingError::PaymentNotFound)?;
        let access = AuditEventBuilder::new(SERVICE, Action::Read, "payments", id)
            .actor_user(principal.user_id)
            .tenant(payment.issuer_id)
            .purpose(Purpose::Payment)
            .build();
        fitflow_outbox::record(&mut tx, &access).await?;
        commit(tx).await?;
        Ok(payment)
    }

    /// One page of an invoice's payments and refunds, with one access event.
    pub(crate) async fn list(
        &self,
        principal: &Principal,
        invoice_id: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        page_size: u32,
    ) -> Result<(Vec<PaymentRow>, Option<(DateTime<Utc>, Uuid)>), BillingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let invoice = repo::invoice(&mut tx, invoice_id, false)
            .await?
            .filter(|row| principal.acts_for(row.issuer_id))
            .ok_or(BillingError::InvoiceNotFound)?;
        let mut rows =
            repo::payments_of(&mut tx, invoice_id, after, i64::from(page_size) + 1).await?;
        let next =
            fitflow_api::page::split_page(&mut rows, page_size, |row| (row.created_at, row.id));
        let access = AuditEventBuilder::new(SERVICE, Action::Read, "payment_list", invoice_id)
            .actor_user(principal.user_id)
            .tenant(invoice.issuer_id)
            .change("payments", "", &rows.len().to_string())
            .purpose(Purpose::Payment)
            .build();
        fitflow_outbox::record(&mut tx, &access).await?;
        commit(tx).await?;
        Ok((rows, next))
    }

    /// One overdue sweep now, for an operator.
    pub(crate) async fn sweep_now(&self, principal: &Principal) -> Result<u64, BillingError> {
        principal.require_role(Role::Operator)?;
        sweep_overdue(&self.system, overdue_today()).await
    }
}

/// Marks OVERDUE every issued or partially paid invoice due before `today`
/// with a balance above 0.00, as the billing service itself (its system
/// role sees every issuer's invoices), one audit event per invoice in the
/// transaction that changes it. Idempotent: an invoice already OVERDUE is
/// not selected again, and one that a payment holds locked is skipped (the
/// payment sets its status). Returns how many it marked.
pub async fn sweep_overdue(pool: &SystemPool, today: NaiveDate) -> Result<u64, BillingError> {
    let mut marked = 0u64;
    loop {
        let mut tx = fitflow_db::system_tx(pool).await?;
        let rows = repo::lock_overdue(&mut tx, today, SWEEP_BATCH).await?;
        for row in &rows {
            repo::mark_overdue(&mut tx, row.id).await?;
            let event = AuditEventBuilder::new(SERVICE, Action::Update, "invoices", row.id)
                .actor_service(SERVICE)
                .tenant(row.issuer_id)
                .change("status", &row.status, "overdue")
                .build();
            fitflow_outbox::record(&mut tx, &event).await?;
        }
        commit(tx).await?;
        marked += u64::try_from(rows.len()).unwrap_or(u64::MAX);
        if i64::try_from(rows.len()).unwrap_or(i64::MAX) < SWEEP_BATCH {
            return Ok(marked);
        }
    }
}

/// Sweeps every [`SWEEP_INTERVAL`] (the first right away) until `shutdown`.
pub(crate) async fn sweep_until(pool: SystemPool, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(SWEEP_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match sweep_overdue(&pool, overdue_today()).await {
            Ok(0) => {}
            Ok(marked) => tracing::info!(marked, "invoices marked overdue"),
            Err(error) => tracing::error!(%error, "overdue sweep failed"),
        }
    }
}

/// The latest payment date accepted: tomorrow (UTC), a day's grace for
/// clocks and zones, never further in the future.
pub(crate) fn latest_payment_date() -> NaiveDate {
    Utc::now().date_naive() + Duration::days(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(day: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(2026, 6, day)
    }

    #[test]
    fn statuses_follow_the_balance_what_was_paid_and_the_due_date() {
        let today = date(15).unwrap_or_default();
        let cases = [
            // (balance, paid, due, status)
            ("50.00", "0.00", date(30), "issued"),
            ("49.00", "1.00", date(30), "partially_paid"),
            ("0.00", "50.00", date(30), "paid"),
            ("0.00", "50.00", date(1), "paid"),
            ("50.00", "0.00", date(14), "overdue"),
            ("10.00", "40.00", date(14), "overdue"),
            ("50.00", "0.00", date(15), "issued"),
            // Fully credited, nothing paid: nothing due, nothing received.
            ("0.00", "0.00", date(1), "issued"),
        ];
        for (balance, paid, due, expected) in cases {
            let balance: Decimal = balance.parse().unwrap_or_default();
            let paid: Decimal = paid.parse().unwrap_or_default();
            assert_eq!(
                payment_status(balance, paid, due, today),
                expected,
                "{balance} due, {paid} paid, due {due:?}"
            );
        }
    }
}
