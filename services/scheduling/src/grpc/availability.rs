//! The availability RPCs: rules, exceptions and free slots (the trait
//! methods in `grpc.rs` delegate here).

use fitflow_api::page::{PageQuery, TimeIdCursor, page_size};
use fitflow_api::text::{TextKind, check_text, optional_uuid, uuid};
use fitflow_api::time::required_timestamp;
use fitflow_auth::Caller;
use fitflow_error::{ApiError, Violations};
use fitflow_proto::scheduling as pb;
use tonic::{Request, Response, Status};

use super::{RPC, SchedulingGrpc, cursor, done, idempotency, principal, reject};
use crate::calendar::SlotRequest;
use crate::convert;
use crate::slots::{MAX_BUFFER_MINUTES, MAX_RANGE_DAYS};

/// Largest page of the availability lists.
const MAX_AVAILABILITY_PAGE: u32 = 200;

impl SchedulingGrpc {
    pub(super) async fn create_rule(
        &self,
        request: Request<pb::CreateAvailabilityRuleRequest>,
    ) -> Result<Response<pb::CreateAvailabilityRuleResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let idempotency = idempotency(
            &mut violations,
            &principal,
            "/fitflow.scheduling.v1.SchedulingService/CreateAvailabilityRule",
            &request,
            |request| &mut request.request_id,
        );
        let new = convert::new_rule(&mut violations, &request.rule.unwrap_or_default());
        done(violations)?;
        let Some(new) = new else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let row = self
            .calendar
            .create_rule(&principal, &token, new, idempotency)
            .await?;
        Ok(Response::new(pb::CreateAvailabilityRuleResponse {
            rule: Some(convert::rule_out(row)),
        }))
    }

    pub(super) async fn list_rules(
        &self,
        request: Request<pb::ListAvailabilityRulesRequest>,
    ) -> Result<Response<pb::ListAvailabilityRulesResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let size = page_size(&mut violations, request.page_size, MAX_AVAILABILITY_PAGE);
        let trainer = optional_uuid(&mut violations, "trainer_id", &request.trainer_id);
        let caller = Caller::User(principal.clone());
        let filter = request.trainer_id.as_bytes().to_vec();
        let method = format!("{RPC}ListAvailabilityRules");
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
        let (rows, next) = self
            .calendar
            .rules(&principal, trainer, after.map(|c| (c.at, c.id)), size)
            .await?;
        Ok(Response::new(pb::ListAvailabilityRulesResponse {
            rules: rows.into_iter().map(convert::rule_out).collect(),
            next_page_token: cursor(next, |c| self.calendar.page_tokens().issue(&query, c)),
        }))
    }

    pub(super) async fn delete_rule(
        &self,
        request: Request<pb::DeleteAvailabilityRuleRequest>,
    ) -> Result<Response<pb::DeleteAvailabilityRuleResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let id = uuid(&mut violations, "rule_id", &request.rule_id);
        check_text(&mut violations, "etag", &request.etag, TextKind::Line, 100);
        done(violations)?;
        self.calendar
            .delete_rule(&principal, id.unwrap_or_default(), &request.etag)
            .await?;
        Ok(Response::new(pb::DeleteAvailabilityRuleResponse {}))
    }

    pub(super) async fn end_rule(
        &self,
        request: Request<pb::EndAvailabilityRuleRequest>,
    ) -> Result<Response<pb::EndAvailabilityRuleResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let id = uuid(&mut violations, "rule_id", &request.rule_id);
        let until = fitflow_api::time::required_date(
            &mut violations,
            "effective_until",
            request
                .effective_until
                .as_ref()
                .map(|date| fitflow_api::time::CivilDate {
                    year: date.year,
                    month: date.month,
                    day: date.day,
                }),
        );
        if request.etag.is_empty() {
            violations.add("etag", "is required: the etag last read of the rule");
        }
        check_text(&mut violations, "etag", &request.etag, TextKind::Line, 100);
        done(violations)?;
        let Some(until) = until else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let row = self
            .calendar
            .end_rule(&principal, id.unwrap_or_default(), until, &request.etag)
            .await?;
        Ok(Response::new(pb::EndAvailabilityRuleResponse {
            rule: Some(convert::rule_out(row)),
        }))
    }

    pub(super) async fn create_exception(
        &self,
        request: Request<pb::CreateAvailabilityExceptionRequest>,
    ) -> Result<Response<pb::CreateAvailabilityExceptionResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let idempotency = idempotency(
            &mut violations,
            &principal,
            "/fitflow.scheduling.v1.SchedulingService/CreateAvailabilityException",
            &request,
            |request| &mut request.request_id,
        );
        let new = convert::new_exception(&mut violations, &request.exception.unwrap_or_default());
        done(violations)?;
        let Some(new) = new else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let row = self
            .calendar
            .create_exception(&principal, new, idempotency)
            .await?;
        Ok(Response::new(pb::CreateAvailabilityExceptionResponse {
            exception: Some(convert::exception_out(row)),
        }))
    }

    pub(super) async fn list_exceptions(
        &self,
        request: Request<pb::ListAvailabilityExceptionsRequest>,
    ) -> Result<Response<pb::ListAvailabilityExceptionsResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let size = page_size(&mut violations, request.page_size, MAX_AVAILABILITY_PAGE);
        let trainer = optional_uuid(&mut violations, "trainer_id", &request.trainer_id);
        let caller = Caller::User(principal.clone());
        let filter = request.trainer_id.as_bytes().to_vec();
        let method = format!("{RPC}ListAvailabilityExceptions");
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
        let (rows, next) = self
            .calendar
            .exceptions(&principal, trainer, after.map(|c| (c.at, c.id)), size)
            .await?;
        Ok(Response::new(pb::ListAvailabilityExceptionsResponse {
            exceptions: rows.into_iter().map(convert::exception_out).collect(),
            next_page_token: cursor(next, |c| self.calendar.page_tokens().issue(&query, c)),
        }))
    }

    pub(super) async fn delete_exception(
        &self,
        request: Request<pb::DeleteAvailabilityExceptionRequest>,
    ) -> Result<Response<pb::DeleteAvailabilityExceptionResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let id = uuid(&mut violations, "exception_id", &request.exception_id);
        check_text(&mut violations, "etag", &request.etag, TextKind::Line, 100);
        done(violations)?;
        self.calendar
            .delete_exception(&principal, id.unwrap_or_default(), &request.etag)
            .await?;
        Ok(Response::new(pb::DeleteAvailabilityExceptionResponse {}))
    }

    pub(super) async fn free_slots(
        &self,
        request: Request<pb::ListFreeSlotsRequest>,
    ) -> Result<Response<pb::ListFreeSlotsResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let trainer_id = optional_uuid(&mut violations, "trainer_id", &request.trainer_id);
        let class_type_id = uuid(&mut violations, "class_type_id", &request.class_type_id);
        let from = required_timestamp(&mut violations, "start_time", request.start_time.as_ref());
        let to = required_timestamp(&mut violations, "end_time", request.end_time.as_ref());
        if let (Some(from), Some(to)) = (from, to)
            && (to <= from || to - from > chrono::Duration::days(MAX_RANGE_DAYS))
        {
            violations.add(
                "end_time",
                "must be after start_time and at most 31 days later",
            );
        }
        if !(0..=MAX_BUFFER_MINUTES).contains(&request.buffer_minutes) {
            violations.add("buffer_minutes", "must be 0 to 240");
        }
        done(violations)?;
        let (zone, slots) = self
            .calendar
            .free_slots(
                &principal,
                &token,
                SlotRequest {
                    trainer_id,
                    class_type_id: class_type_id.unwrap_or_default(),
                    from: from.unwrap_or_default(),
                    to: to.unwrap_or_default(),
                    buffer_minutes: request.buffer_minutes,
                },
            )
            .await?;
        Ok(Response::new(pb::ListFreeSlotsResponse {
            slots: slots.into_iter().map(convert::slot_out).collect(),
            time_zone: zone.name().to_owned(),
        }))
    }
}
