//! Billing end to end: payments and refunds of issued invoices, the statuses
//! they move, and the overdue sweep — over real mTLS, with real concurrency.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{Datelike as _, Duration, NaiveDate, Utc};
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::billing as pb;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::types::Province;
use tonic::Code;

use crate::billing::{EVERYONE, billing, cad, client_of, credit, draft, invoice_line, issue};
use crate::billing_accounts::{account, create_account};
use crate::identity_support::{reason, violated_fields};
use crate::tenancy::trainer;

/// An issued invoice of 50.00: 44.25 in Ontario and 5.75 of HST.
pub(crate) async fn invoice_of_fifty(sandbox: &Sandbox, token: &str) -> pb::Invoice {
    let client_id = client_of(sandbox, token).await;
    let drafted = draft(
        sandbox,
        token,
        &client_id,
        vec![invoice_line("Personal training", "44.25", Province::On)],
    )
    .await
    .expect("draft");
    let issued = issue(sandbox, token, &drafted).await.expect("issue");
    assert_eq!(issued.total.as_ref().unwrap().amount, "50.00");
    issued
}

pub(crate) fn date_of(date: NaiveDate) -> Option<Date> {
    Some(Date {
        year: date.year(),
        month: i32::try_from(date.month()).unwrap(),
        day: i32::try_from(date.day()).unwrap(),
    })
}

pub(crate) fn payment(invoice_id: &str, amount: &str) -> pb::Payment {
    pb::Payment {
        invoice_id: invoice_id.into(),
        method: pb::PaymentMethod::ETransfer as i32,
        amount: cad(amount),
        payment_date: date_of(Utc::now().date_naive()),
        ..Default::default()
    }
}

pub(crate) fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) async fn pay(
    sandbox: &Sandbox,
    token: &str,
    payment: pb::Payment,
    request_id: &str,
) -> Result<pb::RecordPaymentResponse, tonic::Status> {
    billing(sandbox, "gateway")
        .record_payment(bearer(
            pb::RecordPaymentRequest {
                payment: Some(payment),
                request_id: request_id.into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) async fn refund(
    sandbox: &Sandbox,
    token: &str,
    payment_id: &str,
    amount: &str,
    request_id: &str,
) -> Result<pb::RefundPaymentResponse, tonic::Status> {
    billing(sandbox, "gateway")
        .refund_payment(bearer(
            pb::RefundPaymentRequest {
                payment_id: payment_id.into(),
                amount: cad(amount),
                reason: "Session cancelled".into(),
                request_id: request_id.into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) async fn get_invoice(sandbox: &Sandbox, token: &str, id: &str) -> pb::Invoice {
    billing(sandbox, "gateway")
        .get_invoice(bearer(
            pb::GetInvoiceRequest {
                invoice_id: id.into(),
            },
            token,
        ))
        .await
        .expect("get invoice")
        .into_inner()
        .invoice
        .expect("invoice")
}

pub(crate) async fn list_payments(
    sandbox: &Sandbox,
    token: &str,
    invoice_id: &str,
    page_size: i32,
    page_token: &str,
) -> Result<pb::ListPaymentsResponse, tonic::Status> {
    billing(sandbox, "gateway")
        .list_payments(bearer(
            pb::ListPaymentsRequest {
                invoice_id: invoice_id.into(),
                page_size,
                page_token: page_token.into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

fn amount(money: Option<&fitflow_proto::types::Money>) -> &str {
    money.map_or("", |money| money.amount.as_str())
}

/// (status, amount paid, balance due) of an invoice.
fn standing(invoice: &pb::Invoice) -> (i32, &str, &str) {
    (
        invoice.status,
        amount(invoice.amount_paid.as_ref()),
        amount(invoice.balance_due.as_ref()),
    )
}

fn metadata(status: &tonic::Status, key: &str) -> String {
    use tonic_types::StatusExt as _;
    status
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get(key).cloned())
        .unwrap_or_default()
}

pub(crate) async fn payment_rows(sandbox: &Sandbox, invoice_id: &str) -> i64 {
    let admin = sandbox.db.admin_pool().await;
    sqlx::query_scalar("SELECT count(*) FROM billing.payments WHERE invoice_id = $1::uuid")
        .bind(invoice_id)
        .fetch_one(&admin)
        .await
        .expect("count payments")
}

/// How many audit events of `action` on `resource_type` `id` reached the
/// audit service, waiting up to ten seconds for `expected`.
async fn audit_events(
    sandbox: &Sandbox,
    resource_type: &str,
    id: &str,
    action: &str,
    expected: i64,
) -> i64 {
    let admin = sandbox.db.admin_pool().await;
    let mut count = 0;
    for _ in 0..100 {
        count = sqlx::query_scalar(
            "SELECT count(*) FROM audit.audit_log WHERE source_service = 'billing' \
             AND resource_type = $1 AND resource_id = $2::uuid AND action::text = $3",
        )
        .bind(resource_type)
        .bind(id)
        .bind(action)
        .fetch_one(&admin)
        .await
        .expect("audit log");
        if count >= expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    count
}

pub(crate) async fn void(
    sandbox: &Sandbox,
    token: &str,
    invoice: &pb::Invoice,
) -> Result<pb::Invoice, tonic::Status> {
    billing(sandbox, "gateway")
        .void_invoice(bearer(
            pb::VoidInvoiceRequest {
                invoice_id: invoice.id.clone(),
                reason: "Billed twice".into(),
                etag: invoice.etag.clone(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().invoice.expect("invoice"))
}

#[tokio::test]
async fn payments_move_an_invoice_from_issued_to_partially_paid_to_paid() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let invoice = invoice_of_fifty(&sandbox, &token).await;
    assert_eq!(
        standing(&invoice),
        (pb::InvoiceStatus::Issued as i32, "0.00", "50.00")
    );
    let deposit = create_account(&sandbox, &token, account("Business", "1234567", true))
        .await
        .expect("bank account");

    let first = pay(
        &sandbox,
        &token,
        pb::Payment {
            method: pb::PaymentMethod::Cheque as i32,
            reference: "Cheque 104".into(),
            bank_account_id: deposit.id.clone(),
            ..payment(&invoice.id, "20.00")
        },
        &new_request_id(),
    )
    .await
    .expect("a partial payment");
    let first_payment = first.payment.expect("payment");
    assert_eq!(first_payment.kind, pb::PaymentKind::Payment as i32);
    assert_eq!(first_payment.method, pb::PaymentMethod::Cheque as i32);
    assert_eq!(first_payment.bank_account_id, deposit.id);
    assert_eq!(amount(first_payment.refunded.as_ref()), "0.00");
    assert_eq!(
        standing(first.invoice.as_ref().unwrap()),
        (pb::InvoiceStatus::PartiallyPaid as i32, "20.00", "30.00")
    );

    let second = pay(
        &sandbox,
        &token,
        payment(&invoice.id, "30"),
        &new_request_id(),
    )
    .await
    .expect("the balance");
    assert_eq!(
        standing(second.invoice.as_ref().unwrap()),
        (pb::InvoiceStatus::Paid as i32, "50.00", "0.00")
    );
    // Audited: each payment, and each change of the invoice it made.
    assert_eq!(
        audit_events(&sandbox, "payments", &first_payment.id, "create", 1).await,
        1
    );
    assert_eq!(
        audit_events(&sandbox, "invoices", &invoice.id, "update", 3).await,
        3,
        "issued, partially paid, paid"
    );
    let more = pay(
        &sandbox,
        &token,
        payment(&invoice.id, "0.01"),
        &new_request_id(),
    )
    .await
    .expect_err("nothing is due");
    assert_eq!(more.code(), Code::FailedPrecondition);
    assert_eq!(reason(&more), "INVOICE_PAID");

    // Read back: one by one, and page by page, oldest first.
    let got = billing(&sandbox, "gateway")
        .get_payment(bearer(
            pb::GetPaymentRequest {
                payment_id: first_payment.id.clone(),
            },
            &token,
        ))
        .await
        .expect("get payment")
        .into_inner()
        .payment
        .unwrap();
    assert_eq!(got.reference, "Cheque 104");
    assert_eq!(amount(got.amount.as_ref()), "20.00");
    let page = list_payments(&sandbox, &token, &invoice.id, 1, "")
        .await
        .expect("first page");
    assert_eq!(page.payments.len(), 1);
    assert_eq!(page.payments[0].id, first_payment.id);
    assert!(!page.next_page_token.is_empty());
    let rest = list_payments(&sandbox, &token, &invoice.id, 1, &page.next_page_token)
        .await
        .expect("second page");
    assert_eq!(rest.payments.len(), 1);
    assert_eq!(
        rest.payments[0].id,
        second.payment.as_ref().unwrap().id.clone()
    );
    assert!(rest.next_page_token.is_empty());

    // Money received stands in the way of voiding or crediting.
    let paid = get_invoice(&sandbox, &token, &invoice.id).await;
    let voided = void(&sandbox, &token, &paid)
        .await
        .expect_err("paid invoices are not voided");
    assert_eq!(reason(&voided), "INVOICE_HAS_PAYMENTS");
    let credited = credit(&sandbox, &token, &invoice.id, "10", &new_request_id())
        .await
        .expect_err("refund first");
    assert_eq!(reason(&credited), "INVOICE_HAS_PAYMENTS");

    // A draft is not paid.
    let client_id = client_of(&sandbox, &token).await;
    let unissued = draft(
        &sandbox,
        &token,
        &client_id,
        vec![invoice_line("Session", "85", Province::On)],
    )
    .await
    .expect("draft");
    let on_draft = pay(
        &sandbox,
        &token,
        payment(&unissued.id, "1"),
        &new_request_id(),
    )
    .await
    .expect_err("a draft");
    assert_eq!(reason(&on_draft), "INVOICE_STATE");
}

#[tokio::test]
async fn a_hostile_payment_is_refused_field_by_field_and_writes_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let invoice = invoice_of_fifty(&sandbox, &token).await;
    let hostile = pay(
        &sandbox,
        &token,
        pb::Payment {
            invoice_id: "not-a-uuid".into(),
            method: 99,
            amount: Some(fitflow_proto::types::Money {
                currency_code: "USD".into(),
                amount: "1".into(),
            }),
            reference: "Cheque\u{0}104".into(),
            payment_date: date_of(Utc::now().date_naive() + Duration::days(3)),
            bank_account_id: "x".into(),
            ..Default::default()
        },
        "",
    )
    .await
    .expect_err("hostile");
    assert_eq!(
        violated_fields(&hostile),
        [
            "request_id",
            "payment.invoice_id",
            "payment.method",
            "payment.amount",
            "payment.reference",
            "payment.payment_date",
            "payment.bank_account_id",
        ]
    );
    for bad in ["0", "0.00", "-5", "1.005", "1e2", "NaN"] {
        let refused = pay(
            &sandbox,
            &token,
            payment(&invoice.id, bad),
            &new_request_id(),
        )
        .await
        .expect_err("not an amount above zero");
        assert_eq!(violated_fields(&refused), ["payment.amount"], "{bad}");
    }
    let before_invoice = pay(
        &sandbox,
        &token,
        pb::Payment {
            payment_date: date_of(Utc::now().date_naive() - Duration::days(40)),
            ..payment(&invoice.id, "1")
        },
        &new_request_id(),
    )
    .await
    .expect_err("paid before it was issued");
    assert_eq!(violated_fields(&before_invoice), ["payment.payment_date"]);
    let no_refund_reason = billing(&sandbox, "gateway")
        .refund_payment(bearer(
            pb::RefundPaymentRequest {
                payment_id: uuid::Uuid::new_v4().to_string(),
                amount: cad("1"),
                reason: "\u{7}".into(),
                request_id: String::new(),
            },
            &token,
        ))
        .await
        .expect_err("hostile refund");
    assert_eq!(violated_fields(&no_refund_reason), ["request_id", "reason"]);
    assert_eq!(payment_rows(&sandbox, &invoice.id).await, 0);
}

#[tokio::test]
async fn a_payment_retried_with_its_request_id_is_recorded_once() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let invoice = invoice_of_fifty(&sandbox, &token).await;
    let request_id = new_request_id();
    let first = pay(&sandbox, &token, payment(&invoice.id, "10"), &request_id)
        .await
        .expect("pay");
    let again = pay(
        &sandbox,
        &token,
        payment(&invoice.id, "10"),
        &request_id.to_uppercase(),
    )
    .await
    .expect("the retry");
    assert_eq!(again.payment, first.payment, "the same payment");
    assert_eq!(
        standing(again.invoice.as_ref().unwrap()),
        (pb::InvoiceStatus::PartiallyPaid as i32, "10.00", "40.00")
    );
    assert_eq!(payment_rows(&sandbox, &invoice.id).await, 1);

    let other = pay(&sandbox, &token, payment(&invoice.id, "11"), &request_id)
        .await
        .expect_err("another payment under the same request id");
    assert_eq!(other.code(), Code::AlreadyExists);
    assert_eq!(reason(&other), "REQUEST_ID_REUSED");
    assert_eq!(payment_rows(&sandbox, &invoice.id).await, 1);
    let invoice = get_invoice(&sandbox, &token, &invoice.id).await;
    assert_eq!(amount(invoice.amount_paid.as_ref()), "10.00");
}

#[tokio::test]
async fn an_overpayment_is_refused_naming_the_balance_and_writes_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let invoice = invoice_of_fifty(&sandbox, &token).await;
    let over = pay(
        &sandbox,
        &token,
        payment(&invoice.id, "50.01"),
        &new_request_id(),
    )
    .await
    .expect_err("more than is due");
    assert_eq!(over.code(), Code::FailedPrecondition);
    assert_eq!(reason(&over), "PAYMENT_EXCEEDS_BALANCE");
    assert_eq!(metadata(&over, "balance"), "50.00");
    assert_eq!(metadata(&over, "currency_code"), "CAD");
    assert_eq!(payment_rows(&sandbox, &invoice.id).await, 0);
    let unchanged = get_invoice(&sandbox, &token, &invoice.id).await;
    assert_eq!(unchanged.etag, invoice.etag, "the invoice did not change");
    assert_eq!(
        standing(&unchanged),
        (pb::InvoiceStatus::Issued as i32, "0.00", "50.00")
    );

    // A credit note lowers what is due, and so what may be paid.
    credit(&sandbox, &token, &invoice.id, "10", &new_request_id())
        .await
        .expect("credit 10.00 and its 1.30 of HST");
    let credited = pay(
        &sandbox,
        &token,
        payment(&invoice.id, "38.71"),
        &new_request_id(),
    )
    .await
    .expect_err("more than is due after the credit");
    assert_eq!(metadata(&credited, "balance"), "38.70");
    let settled = pay(
        &sandbox,
        &token,
        payment(&invoice.id, "38.70"),
        &new_request_id(),
    )
    .await
    .expect("the balance after the credit");
    assert_eq!(
        standing(settled.invoice.as_ref().unwrap()),
        (pb::InvoiceStatus::Paid as i32, "38.70", "0.00")
    );
}

#[tokio::test]
async fn a_hundred_concurrent_payments_of_one_dollar_settle_a_fifty_dollar_invoice_exactly() {
    let sandbox = Arc::new(Sandbox::new().await);
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let invoice = invoice_of_fifty(&sandbox, &token).await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (sandbox, token, invoice_id) =
            (Arc::clone(&sandbox), token.clone(), invoice.id.clone());
        tasks.push(tokio::spawn(async move {
            let request_id = new_request_id();
            loop {
                match pay(&sandbox, &token, payment(&invoice_id, "1.00"), &request_id).await {
                    Ok(paid) => return Ok(paid.payment.expect("payment").id),
                    // Under this load the pool may refuse; the same request
                    // id makes the retry safe.
                    Err(status) if status.code() == Code::Unavailable => {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    Err(status) => return Err(reason(&status)),
                }
            }
        }));
    }
    let mut recorded = HashSet::new();
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(id) => assert!(recorded.insert(id), "one payment per request"),
            Err(refusal) => {
                assert!(
                    refusal == "PAYMENT_EXCEEDS_BALANCE" || refusal == "INVOICE_PAID",
                    "{refusal}"
                );
                refused += 1;
            }
        }
    }
    assert_eq!(recorded.len(), 50);
    assert_eq!(refused, 50);
    assert_eq!(payment_rows(&sandbox, &invoice.id).await, 50);
    let settled = get_invoice(&sandbox, &token, &invoice.id).await;
    assert_eq!(
        standing(&settled),
        (pb::InvoiceStatus::Paid as i32, "50.00", "0.00")
    );
}

#[tokio::test]
async fn refunds_give_back_at_most_what_a_payment_paid_and_move_the_status_back() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let invoice = invoice_of_fifty(&sandbox, &token).await;
    let paid = pay(
        &sandbox,
        &token,
        payment(&invoice.id, "50"),
        &new_request_id(),
    )
    .await
    .expect("pay in full");
    let payment_id = paid.payment.unwrap().id;

    let request_id = new_request_id();
    let part = refund(&sandbox, &token, &payment_id, "15", &request_id)
        .await
        .expect("a partial refund");
    let refund_row = part.refund.clone().expect("refund");
    assert_eq!(refund_row.kind, pb::PaymentKind::Refund as i32);
    assert_eq!(refund_row.refund_of_payment_id, payment_id);
    assert_eq!(amount(refund_row.amount.as_ref()), "-15.00");
    assert_eq!(refund_row.method, pb::PaymentMethod::ETransfer as i32);
    assert_eq!(
        standing(part.invoice.as_ref().unwrap()),
        (pb::InvoiceStatus::PartiallyPaid as i32, "35.00", "15.00")
    );
    let retried = refund(&sandbox, &token, &payment_id, "15", &request_id)
        .await
        .expect("the retry");
    assert_eq!(retried.refund, part.refund, "refunded once");

    let over = refund(&sandbox, &token, &payment_id, "35.01", &new_request_id())
        .await
        .expect_err("more than remains refundable");
    assert_eq!(reason(&over), "REFUND_EXCEEDS_PAYMENT");
    assert_eq!(metadata(&over, "refundable"), "35.00");
    let of_refund = refund(&sandbox, &token, &refund_row.id, "1", &new_request_id())
        .await
        .expect_err("a refund is not refunded");
    assert_eq!(reason(&of_refund), "PAYMENT_STATE");

    let rest = refund(&sandbox, &token, &payment_id, "35", &new_request_id())
        .await
        .expect("the rest");
    let after = rest.invoice.as_ref().unwrap();
    assert_eq!(
        standing(after),
        (pb::InvoiceStatus::Issued as i32, "0.00", "50.00")
    );
    let got = billing(&sandbox, "gateway")
        .get_payment(bearer(
            pb::GetPaymentRequest {
                payment_id: payment_id.clone(),
            },
            &token,
        ))
        .await
        .expect("the payment")
        .into_inner()
        .payment
        .unwrap();
    assert_eq!(amount(got.refunded.as_ref()), "50.00");
    assert_eq!(payment_rows(&sandbox, &invoice.id).await, 3);

    // Nothing paid any more: it may be voided.
    let voided = void(&sandbox, &token, after).await.expect("void");
    assert_eq!(voided.status, pb::InvoiceStatus::Void as i32);
}

#[tokio::test]
async fn another_trainer_reaches_no_payment_and_pays_no_invoice_of_someone_else() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, owner) = trainer(&sandbox, "Ana").await;
    let (_, _, stranger) = trainer(&sandbox, "Sam").await;
    let invoice = invoice_of_fifty(&sandbox, &owner).await;
    let paid = pay(
        &sandbox,
        &owner,
        payment(&invoice.id, "20"),
        &new_request_id(),
    )
    .await
    .expect("pay");
    let payment_id = paid.payment.unwrap().id;

    let record = pay(
        &sandbox,
        &stranger,
        payment(&invoice.id, "1"),
        &new_request_id(),
    )
    .await
    .expect_err("not their invoice");
    assert_eq!(record.code(), Code::NotFound);
    assert_eq!(reason(&record), "INVOICE_NOT_FOUND");
    let get = billing(&sandbox, "gateway")
        .get_payment(bearer(
            pb::GetPaymentRequest {
                payment_id: payment_id.clone(),
            },
            &stranger,
        ))
        .await
        .expect_err("not theirs");
    assert_eq!(get.code(), Code::NotFound);
    assert_eq!(reason(&get), "PAYMENT_NOT_FOUND");
    let list = list_payments(&sandbox, &stranger, &invoice.id, 0, "")
        .await
        .expect_err("not theirs");
    assert_eq!(list.code(), Code::NotFound);
    assert_eq!(reason(&list), "INVOICE_NOT_FOUND");
    let refunded = refund(&sandbox, &stranger, &payment_id, "1", &new_request_id())
        .await
        .expect_err("not theirs");
    assert_eq!(refunded.code(), Code::NotFound);
    assert_eq!(reason(&refunded), "PAYMENT_NOT_FOUND");

    // Their own bank account is not the issuer's: a payment does not go there.
    let theirs = create_account(&sandbox, &stranger, account("Mine", "7654321", true))
        .await
        .expect("their account");
    let elsewhere = pay(
        &sandbox,
        &owner,
        pb::Payment {
            bank_account_id: theirs.id,
            ..payment(&invoice.id, "1")
        },
        &new_request_id(),
    )
    .await
    .expect_err("someone else's account");
    assert_eq!(reason(&elsewhere), "BANK_ACCOUNT_NOT_FOUND");

    // A trainer cannot run the sweep, nor reach it through the gateway.
    let sweep = billing(&sandbox, "gateway")
        .sweep_overdue_invoices(bearer(pb::SweepOverdueInvoicesRequest {}, &owner))
        .await
        .expect_err("operators only");
    assert_eq!(sweep.code(), Code::PermissionDenied);

    // Nothing changed and nothing leaked.
    let unchanged = get_invoice(&sandbox, &owner, &invoice.id).await;
    assert_eq!(
        standing(&unchanged),
        (pb::InvoiceStatus::PartiallyPaid as i32, "20.00", "30.00")
    );
    assert_eq!(payment_rows(&sandbox, &invoice.id).await, 1);
}

/// The audit events of the sweep on `invoice_id` that reached the audit
/// service, waiting up to ten seconds for `expected`.
async fn sweep_events(sandbox: &Sandbox, invoice_id: &str, expected: i64) -> i64 {
    let admin = sandbox.db.admin_pool().await;
    let mut count = 0;
    for _ in 0..100 {
        count = sqlx::query_scalar(
            "SELECT count(*) FROM audit.audit_log WHERE source_service = 'billing' \
             AND resource_type = 'invoices' AND resource_id = $1::uuid \
             AND actor_service = 'spiffe://fitflow/billing'",
        )
        .bind(invoice_id)
        .fetch_one(&admin)
        .await
        .expect("audit log");
        if count >= expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    count
}

#[tokio::test]
async fn the_overdue_sweep_marks_a_past_due_invoice_once_and_a_payment_that_settles_it_makes_it_paid()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let invoice = invoice_of_fifty(&sandbox, &token).await;
    let not_due = invoice_of_fifty(&sandbox, &token).await;
    // Issued 40 days ago, due 10 days ago: only the database's owner can
    // move an issued invoice's dates, with its guard off for a moment.
    let admin = sandbox.db.admin_pool().await;
    for statement in [
        "ALTER TABLE billing.invoices DISABLE TRIGGER invoices_issued_guard",
        "UPDATE billing.invoices SET invoice_date = invoice_date - 40, \
         due_date = due_date - 40 WHERE id = $1::uuid",
        "ALTER TABLE billing.invoices ENABLE TRIGGER invoices_issued_guard",
    ] {
        sqlx::query(statement)
            .bind(&invoice.id)
            .execute(&admin)
            .await
            .expect("backdate");
    }

    let pool = fitflow_db::connect_system(&sandbox.db.system_url("billing"), "billing", 2)
        .await
        .expect("billing's system pool");
    let today = fitflow_billing::overdue_today();
    let first = fitflow_billing::sweep_overdue(&pool, today)
        .await
        .expect("sweep");
    assert_eq!(first, 1, "the past-due invoice only");
    let second = fitflow_billing::sweep_overdue(&pool, today)
        .await
        .expect("sweep again");
    assert_eq!(second, 0, "idempotent");
    assert_eq!(sweep_events(&sandbox, &invoice.id, 1).await, 1);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(sweep_events(&sandbox, &invoice.id, 2).await, 1, "one event");
    let overdue = get_invoice(&sandbox, &token, &invoice.id).await;
    assert_eq!(
        standing(&overdue),
        (pb::InvoiceStatus::Overdue as i32, "0.00", "50.00")
    );
    assert_eq!(
        get_invoice(&sandbox, &token, &not_due.id).await.status,
        pb::InvoiceStatus::Issued as i32
    );

    // A partial payment leaves it overdue; the rest makes it paid; a refund
    // makes it overdue again.
    let part = pay(
        &sandbox,
        &token,
        payment(&invoice.id, "20"),
        &new_request_id(),
    )
    .await
    .expect("a partial payment");
    assert_eq!(
        standing(part.invoice.as_ref().unwrap()),
        (pb::InvoiceStatus::Overdue as i32, "20.00", "30.00")
    );
    let rest = pay(
        &sandbox,
        &token,
        payment(&invoice.id, "30"),
        &new_request_id(),
    )
    .await
    .expect("the rest");
    assert_eq!(
        standing(rest.invoice.as_ref().unwrap()),
        (pb::InvoiceStatus::Paid as i32, "50.00", "0.00")
    );
    let back = refund(
        &sandbox,
        &token,
        &rest.payment.unwrap().id,
        "5",
        &new_request_id(),
    )
    .await
    .expect("refund");
    assert_eq!(
        standing(back.invoice.as_ref().unwrap()),
        (pb::InvoiceStatus::Overdue as i32, "45.00", "5.00")
    );

    // The operator's RPC runs the same sweep: nothing more to mark.
    let (_, operator) = sandbox.operator().await;
    let swept = billing(&sandbox, "operator")
        .sweep_overdue_invoices(bearer(
            pb::SweepOverdueInvoicesRequest {},
            &operator.access_token,
        ))
        .await
        .expect("an operator sweeps")
        .into_inner();
    assert_eq!(swept.marked_overdue, 0);
    let by_trainer = billing(&sandbox, "operator")
        .sweep_overdue_invoices(bearer(pb::SweepOverdueInvoicesRequest {}, &token))
        .await
        .expect_err("not an operator");
    assert_eq!(by_trainer.code(), Code::PermissionDenied);
}
