//! Billing's internal RPCs: the billable items of a period and the payment
//! status of a client (the trait methods in `grpc.rs` delegate here).

use fitflow_api::idempotency::record;
use fitflow_api::page::{PageQuery, TimeIdCursor, page_size};
use fitflow_auth::Caller;
use fitflow_error::{ApiError, Violations};
use fitflow_proto::scheduling as pb;
use prost::Message as _;
use tonic::{Request, Response, Status};

use super::{RPC, SchedulingGrpc, done, principal, reject};
use crate::calendar::{BILLING_PEER, Idempotency, StudioSessionQuery};
use crate::convert::{self, BillableToken};

/// Largest page of ListBillableAppointments.
const MAX_BILLABLE_PAGE: u32 = 500;

/// PERMISSION_DENIED unless billing calls. The peer policy admits no one
/// else; checked again here so an RPC that lists prices or moves a payment
/// never relies on a policy table alone.
fn require_billing_peer<T>(request: &Request<T>) -> Result<(), Status> {
    let peer = fitflow_auth::peer(request);
    if peer.is_some_and(|peer| peer.0 == BILLING_PEER) {
        Ok(())
    } else {
        Err(reject(ApiError::permission_denied(
            "PEER_NOT_ALLOWED",
            "only the billing service may call this method",
        )))
    }
}

impl SchedulingGrpc {
    pub(super) async fn billable(
        &self,
        request: Request<pb::ListBillableAppointmentsRequest>,
    ) -> Result<Response<pb::ListBillableAppointmentsResponse>, Status> {
        require_billing_peer(&request)?;
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let size = page_size(&mut violations, request.page_size, MAX_BILLABLE_PAGE);
        let period = convert::billing_period(&mut violations, &request);
        let caller = Caller::User(principal.clone());
        let filter = pb::ListBillableAppointmentsRequest {
            page_size: 0,
            page_token: String::new(),
            ..request.clone()
        }
        .encode_to_vec();
        let method = format!("{RPC}ListBillableAppointments");
        let query = PageQuery {
            method: &method,
            caller: &caller,
            filter: &filter,
        };
        let after: Option<BillableToken> =
            self.calendar
                .page_tokens()
                .read(&mut violations, &query, &request.page_token);
        done(violations)?;
        let Some(period) = period else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let page = self
            .calendar
            .billable(&principal, &token, period, after.map(|token| token.0), size)
            .await?;
        let (zone, next) = (page.zone, page.next);
        Ok(Response::new(pb::ListBillableAppointmentsResponse {
            items: page
                .items
                .into_iter()
                .map(|(item_zone, row)| convert::billable_item_out(item_zone, row))
                .collect(),
            next_page_token: next
                .map(|position| {
                    self.calendar
                        .page_tokens()
                        .issue(&query, &BillableToken(position))
                })
                .unwrap_or_default(),
            time_zone: zone.name().to_owned(),
        }))
    }

    pub(super) async fn studio_sessions(
        &self,
        request: Request<pb::ListStudioSessionsRequest>,
    ) -> Result<Response<pb::ListStudioSessionsResponse>, Status> {
        require_billing_peer(&request)?;
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let size = page_size(&mut violations, request.page_size, MAX_BILLABLE_PAGE);
        let filter_of = convert::studio_sessions_filter(&mut violations, &request);
        let caller = Caller::User(principal.clone());
        let filter = pb::ListStudioSessionsRequest {
            page_size: 0,
            page_token: String::new(),
            ..request.clone()
        }
        .encode_to_vec();
        let method = format!("{RPC}ListStudioSessions");
        let query = PageQuery {
            method: &method,
            caller: &caller,
            filter: &filter,
        };
        let after: Option<TimeIdCursor> =
            self.calendar
                .page_tokens()
                .read(&mut violations, &query, &request.page_token);
        done(violations)?;
        let Some((period, studios)) = filter_of else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let page = self
            .calendar
            .studio_sessions(
                &principal,
                &token,
                StudioSessionQuery {
                    period,
                    studios,
                    after: after.map(|position| (position.at, position.id)),
                    page_size: size,
                },
            )
            .await?;
        Ok(Response::new(pb::ListStudioSessionsResponse {
            sessions: page
                .sessions
                .into_iter()
                .map(convert::studio_session_out)
                .collect(),
            next_page_token: super::cursor(page.next, |position| {
                self.calendar.page_tokens().issue(&query, position)
            }),
        }))
    }

    pub(super) async fn payment_status(
        &self,
        request: Request<pb::SetPaymentStatusRequest>,
    ) -> Result<Response<pb::SetPaymentStatusResponse>, Status> {
        require_billing_peer(&request)?;
        let command_id = fitflow_outbox::command_id(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        if request.request_id.is_empty() {
            violations.add("request_id", "is required: a UUID that makes retries safe");
        }
        // Billing acts for itself: its requests share one idempotency space.
        let idempotency = Idempotency(record(
            &mut violations,
            &Caller::Service(BILLING_PEER),
            "/fitflow.scheduling.v1.SchedulingService/SetPaymentStatus",
            &request,
            |request| &mut request.request_id,
        ));
        let change = convert::payment_change(&mut violations, &request);
        done(violations)?;
        let Some(change) = change else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let status = self
            .calendar
            .set_payment_status(change, idempotency, command_id)
            .await?;
        Ok(Response::new(pb::SetPaymentStatusResponse {
            appointment_id: change.appointment_id.to_string(),
            client_id: change.client_id.to_string(),
            status: convert::payment_status_out(&status) as i32,
        }))
    }
}
