//! Studio invoices' requests and responses: decode and validate, encode.

use fitflow_api::page::{PageQuery, TimeIdCursor, page_size};
use fitflow_api::text::{optional_uuid, uuid};
use fitflow_auth::{Caller, Principal};
use fitflow_error::{ApiError, Violations};
use fitflow_proto::billing as pb;
use tonic::Status;

use super::{MAX_INVOICES_PAGE, done, draft_period, invoice_out, reject, terms_or_default};
use crate::Invoicing;
use crate::invoices::Idempotency;
use crate::studio_drafts::StudioDraft;

/// DraftStudioInvoice: validated, then drafted as the caller.
pub(super) async fn draft(
    invoicing: &Invoicing,
    principal: &Principal,
    token: &str,
    request: pb::DraftStudioInvoiceRequest,
) -> Result<pb::DraftStudioInvoiceResponse, Status> {
    let mut violations = Violations::new();
    let idempotency = Idempotency(fitflow_api::idempotency::record(
        &mut violations,
        &Caller::User(principal.clone()),
        "/fitflow.billing.v1.BillingService/DraftStudioInvoice",
        &request,
        |request| &mut request.request_id,
    ));
    let issuer_id = optional_uuid(&mut violations, "issuer_id", &request.issuer_id);
    let studio_id = uuid(&mut violations, "studio_id", &request.studio_id);
    let period = draft_period(
        &mut violations,
        (request.start_date.as_ref(), request.end_date.as_ref()),
        request.payment_terms_days,
        &request.notes,
    );
    done(violations)?;
    let (Some(studio_id), Some((first, last))) = (studio_id, period) else {
        return Err(reject(ApiError::invalid_argument(Vec::new())));
    };
    let asked = StudioDraft {
        issuer_id,
        studio_id,
        first,
        last,
        payment_terms_days: terms_or_default(request.payment_terms_days),
        notes: request.notes,
    };
    let view = invoicing
        .draft_for_studio(principal, token, asked, idempotency)
        .await?;
    Ok(pb::DraftStudioInvoiceResponse {
        invoice: Some(invoice_out(view)),
    })
}

/// ListStudioInvoices: a manager's page, its token bound to the studio.
pub(super) async fn list(
    invoicing: &Invoicing,
    principal: &Principal,
    request: pb::ListStudioInvoicesRequest,
) -> Result<pb::ListStudioInvoicesResponse, Status> {
    let mut violations = Violations::new();
    let studio_id = uuid(&mut violations, "studio_id", &request.studio_id);
    let size = page_size(&mut violations, request.page_size, MAX_INVOICES_PAGE);
    let caller = Caller::User(principal.clone());
    let filter = request.studio_id.as_bytes().to_vec();
    let query = PageQuery {
        method: "/fitflow.billing.v1.BillingService/ListStudioInvoices",
        caller: &caller,
        filter: &filter,
    };
    let after: Option<TimeIdCursor> =
        invoicing
            .page_tokens()
            .read(&mut violations, &query, &request.page_token);
    done(violations)?;
    let Some(studio_id) = studio_id else {
        return Err(reject(ApiError::invalid_argument(Vec::new())));
    };
    let (views, next) = invoicing
        .list_for_studio(
            principal,
            studio_id,
            after.map(|cursor| (cursor.at, cursor.id)),
            size,
        )
        .await?;
    let next_page_token = next
        .map(|(at, id)| {
            invoicing
                .page_tokens()
                .issue(&query, &TimeIdCursor { at, id })
        })
        .unwrap_or_default();
    Ok(pb::ListStudioInvoicesResponse {
        invoices: views.into_iter().map(invoice_out).collect(),
        next_page_token,
    })
}
