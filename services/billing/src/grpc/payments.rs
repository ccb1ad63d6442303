//! Payments' requests and responses: decode and validate, encode.

use fitflow_api::money::cad_amount;
use fitflow_api::page::{PageQuery, TimeIdCursor, page_size};
use fitflow_api::text::{TextKind, check_text, optional_uuid, required, uuid};
use fitflow_auth::{Caller, Principal};
use fitflow_error::{ApiError, Violations};
use fitflow_proto::billing as pb;
use fitflow_proto::types::Money;
use rust_decimal::Decimal;
use tonic::Status;

use super::{MAX_DESCRIPTION, date_in, date_out, done, invoice_out, money, reject};
use crate::Payments;
use crate::invoices::{Idempotency, InvoiceView};
use crate::payments::{NewPayment, NewRefund, latest_payment_date};
use crate::repo::PaymentRow;

/// Longest payment reference.
const MAX_REFERENCE: usize = 100;
/// Largest page of ListPayments.
const MAX_PAYMENTS_PAGE: u32 = 100;

/// The stored form of a method, if it is a known one.
fn method_in(value: i32) -> Option<&'static str> {
    match pb::PaymentMethod::try_from(value) {
        Ok(pb::PaymentMethod::Cheque) => Some("cheque"),
        Ok(pb::PaymentMethod::ETransfer) => Some("e_transfer"),
        Ok(pb::PaymentMethod::Cash) => Some("cash"),
        Ok(pb::PaymentMethod::CreditCard) => Some("credit_card"),
        Ok(pb::PaymentMethod::Unspecified) | Err(_) => None,
    }
}

fn method_out(stored: &str) -> pb::PaymentMethod {
    match stored {
        "cheque" => pb::PaymentMethod::Cheque,
        "e_transfer" => pb::PaymentMethod::ETransfer,
        "cash" => pb::PaymentMethod::Cash,
        "credit_card" => pb::PaymentMethod::CreditCard,
        _ => pb::PaymentMethod::Unspecified,
    }
}

/// A required amount above 0.00 in CAD (the currency of every invoice).
fn positive_amount(violations: &mut Violations, field: &str, value: Option<&Money>) -> Decimal {
    let Some(value) = value else {
        violations.add(field, "is required");
        return Decimal::ZERO;
    };
    match cad_amount(&value.currency_code, &value.amount) {
        Ok(amount) if amount > Decimal::ZERO => amount,
        Ok(_) => {
            violations.add(field, "must be above 0.00");
            Decimal::ZERO
        }
        Err(problem) => {
            violations.add(field, problem);
            Decimal::ZERO
        }
    }
}

/// A payment or refund without its required `request_id`.
fn require_request_id(violations: &mut Violations, request_id: &str) {
    if request_id.is_empty() {
        violations.add("request_id", "is required: a UUID that makes retries safe");
    }
}

/// A payment or refund as returned.
pub(super) fn payment_out(row: PaymentRow) -> pb::Payment {
    let is_refund = row.kind == "refund";
    pb::Payment {
        id: row.id.to_string(),
        invoice_id: row.invoice_id.to_string(),
        issuer_id: row.issuer_id.to_string(),
        kind: if is_refund {
            pb::PaymentKind::Refund
        } else {
            pb::PaymentKind::Payment
        } as i32,
        method: method_out(&row.method) as i32,
        amount: Some(money(row.amount)),
        reference: row.reference,
        payment_date: Some(date_out(row.paid_on)),
        bank_account_id: row
            .bank_account_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        refund_of_payment_id: row.refund_of.map(|id| id.to_string()).unwrap_or_default(),
        refunded: (!is_refund).then(|| money(row.refunded)),
        reason: row.reason,
        recorded_by: row.recorded_by.to_string(),
        create_time: Some(fitflow_api::time::to_timestamp(row.created_at)),
    }
}

fn paid(payment: PaymentRow, invoice: InvoiceView) -> (Option<pb::Payment>, Option<pb::Invoice>) {
    (Some(payment_out(payment)), Some(invoice_out(invoice)))
}

pub(super) async fn record(
    payments: &Payments,
    principal: &Principal,
    request: pb::RecordPaymentRequest,
) -> Result<pb::RecordPaymentResponse, Status> {
    let mut violations = Violations::new();
    require_request_id(&mut violations, &request.request_id);
    let idempotency = Idempotency(fitflow_api::idempotency::record(
        &mut violations,
        &Caller::User(principal.clone()),
        "/fitflow.billing.v1.BillingService/RecordPayment",
        &request,
        |request| &mut request.request_id,
    ));
    let payment = request.payment.unwrap_or_default();
    let invoice_id = uuid(&mut violations, "payment.invoice_id", &payment.invoice_id);
    let method = method_in(payment.method);
    violations.check(
        method.is_some(),
        "payment.method",
        "must be CHEQUE, E_TRANSFER, CASH or CREDIT_CARD",
    );
    let amount = positive_amount(&mut violations, "payment.amount", payment.amount.as_ref());
    check_text(
        &mut violations,
        "payment.reference",
        &payment.reference,
        TextKind::Line,
        MAX_REFERENCE,
    );
    let paid_on = date_in(
        &mut violations,
        "payment.payment_date",
        payment.payment_date.as_ref(),
    );
    if paid_on.is_some_and(|date| date > latest_payment_date()) {
        violations.add(
            "payment.payment_date",
            "must not be more than a day in the future",
        );
    }
    let bank_account_id = optional_uuid(
        &mut violations,
        "payment.bank_account_id",
        &payment.bank_account_id,
    );
    done(violations)?;
    let (Some(invoice_id), Some(method), Some(paid_on)) = (invoice_id, method, paid_on) else {
        return Err(reject(ApiError::invalid_argument(Vec::new())));
    };
    let new = NewPayment {
        invoice_id,
        method,
        amount,
        reference: payment.reference,
        paid_on,
        bank_account_id,
    };
    let (payment, invoice) = payments.record(principal, new, idempotency).await?;
    let (payment, invoice) = paid(payment, invoice);
    Ok(pb::RecordPaymentResponse { payment, invoice })
}

pub(super) async fn refund(
    payments: &Payments,
    principal: &Principal,
    request: pb::RefundPaymentRequest,
) -> Result<pb::RefundPaymentResponse, Status> {
    let mut violations = Violations::new();
    require_request_id(&mut violations, &request.request_id);
    let idempotency = Idempotency(fitflow_api::idempotency::record(
        &mut violations,
        &Caller::User(principal.clone()),
        "/fitflow.billing.v1.BillingService/RefundPayment",
        &request,
        |request| &mut request.request_id,
    ));
    let payment_id = uuid(&mut violations, "payment_id", &request.payment_id);
    let amount = positive_amount(&mut violations, "amount", request.amount.as_ref());
    if required(&mut violations, "reason", &request.reason) {
        check_text(
            &mut violations,
            "reason",
            &request.reason,
            TextKind::FreeText,
            MAX_DESCRIPTION,
        );
    }
    done(violations)?;
    let new = NewRefund {
        payment_id: payment_id.unwrap_or_default(),
        amount,
        reason: request.reason,
    };
    let (refund, invoice) = payments.refund(principal, new, idempotency).await?;
    let (refund, invoice) = paid(refund, invoice);
    Ok(pb::RefundPaymentResponse { refund, invoice })
}

pub(super) async fn get(
    payments: &Payments,
    principal: &Principal,
    request: &pb::GetPaymentRequest,
) -> Result<pb::GetPaymentResponse, Status> {
    let mut violations = Violations::new();
    let id = uuid(&mut violations, "payment_id", &request.payment_id);
    done(violations)?;
    let payment = payments.get(principal, id.unwrap_or_default()).await?;
    Ok(pb::GetPaymentResponse {
        payment: Some(payment_out(payment)),
    })
}

pub(super) async fn list(
    payments: &Payments,
    principal: &Principal,
    request: pb::ListPaymentsRequest,
) -> Result<pb::ListPaymentsResponse, Status> {
    let mut violations = Violations::new();
    let invoice_id = uuid(&mut violations, "invoice_id", &request.invoice_id);
    let size = page_size(&mut violations, request.page_size, MAX_PAYMENTS_PAGE);
    let caller = Caller::User(principal.clone());
    let filter = request.invoice_id.as_bytes().to_vec();
    let query = PageQuery {
        method: "/fitflow.billing.v1.BillingService/ListPayments",
        caller: &caller,
        filter: &filter,
    };
    let after: Option<TimeIdCursor> =
        payments
            .page_tokens()
            .read(&mut violations, &query, &request.page_token);
    done(violations)?;
    let (rows, next) = payments
        .list(
            principal,
            invoice_id.unwrap_or_default(),
            after.map(|cursor| (cursor.at, cursor.id)),
            size,
        )
        .await?;
    let next_page_token = next
        .map(|(at, id)| {
            payments
                .page_tokens()
                .issue(&query, &TimeIdCursor { at, id })
        })
        .unwrap_or_default();
    Ok(pb::ListPaymentsResponse {
        payments: rows.into_iter().map(payment_out).collect(),
        next_page_token,
    })
}

pub(super) async fn sweep(
    payments: &Payments,
    principal: &Principal,
) -> Result<pb::SweepOverdueInvoicesResponse, Status> {
    let marked = payments.sweep_now(principal).await?;
    Ok(pb::SweepOverdueInvoicesResponse {
        marked_overdue: i64::try_from(marked).unwrap_or(i64::MAX),
    })
}
