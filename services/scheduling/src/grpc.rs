//! `fitflow.scheduling.v1.SchedulingService`: authenticate, validate, call
//! the use case, encode.

mod availability;
mod billing;
mod export;
mod roster;
mod settings;

use fitflow_api::idempotency::record;
use fitflow_api::page::{PageQuery, TimeIdCursor, page_size};
use fitflow_api::text::{TextKind, check_text, optional_uuid, uuid};
use fitflow_api::time::required_timestamp;
use fitflow_auth::{Caller, Principal};
use fitflow_error::{ApiError, Violations};
use fitflow_proto::scheduling as pb;
use fitflow_proto::scheduling::scheduling_service_server::SchedulingService;
use prost::Message as _;
use tonic::{Request, Response, Status};

use crate::calendar::{Calendar, Idempotency, PolicyHolder};
use crate::{ERROR_DOMAIN, convert, domain};

/// Largest page of ListClassTypes.
const MAX_CLASS_TYPES_PAGE: u32 = 200;
/// Longest ListClassTypes `query`, in characters.
const MAX_QUERY_CHARS: usize = 100;
/// Largest page of ListAppointments.
const MAX_APPOINTMENTS_PAGE: u32 = 500;
const RPC: &str = "/fitflow.scheduling.v1.SchedulingService/";

/// The gRPC face of [`Calendar`].
pub struct SchedulingGrpc {
    calendar: Calendar,
}

impl SchedulingGrpc {
    /// Serves `calendar` over gRPC.
    pub fn new(calendar: Calendar) -> Self {
        Self { calendar }
    }
}

fitflow_server::handler_helpers!(ERROR_DOMAIN);

/// The idempotency record of a create carrying `request_id`, bound to the
/// caller, the method and the whole request.
fn idempotency<M: prost::Message + Clone>(
    violations: &mut Violations,
    principal: &Principal,
    method: &'static str,
    request: &M,
    request_id_field: fn(&mut M) -> &mut String,
) -> Idempotency {
    let caller = Caller::User(principal.clone());
    Idempotency(record(
        violations,
        &caller,
        method,
        request,
        request_id_field,
    ))
}

fn cursor<T>(next: Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)>, issue: T) -> String
where
    T: FnOnce(&TimeIdCursor) -> String,
{
    next.map(|(at, id)| issue(&TimeIdCursor { at, id }))
        .unwrap_or_default()
}

#[tonic::async_trait]
impl SchedulingService for SchedulingGrpc {
    async fn create_class_type(
        &self,
        request: Request<pb::CreateClassTypeRequest>,
    ) -> Result<Response<pb::CreateClassTypeResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let idempotency = idempotency(
            &mut violations,
            &principal,
            "/fitflow.scheduling.v1.SchedulingService/CreateClassType",
            &request,
            |request| &mut request.request_id,
        );
        let new = convert::new_class_type(&mut violations, &request.class_type.unwrap_or_default());
        done(violations)?;
        let row = self
            .calendar
            .create_class_type(&principal, new, idempotency)
            .await?;
        Ok(Response::new(pb::CreateClassTypeResponse {
            class_type: Some(convert::class_type_out(row)),
        }))
    }

    async fn get_class_type(
        &self,
        request: Request<pb::GetClassTypeRequest>,
    ) -> Result<Response<pb::GetClassTypeResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let id = uuid(
            &mut violations,
            "class_type_id",
            &request.get_ref().class_type_id,
        );
        done(violations)?;
        let row = self
            .calendar
            .class_type(&principal, id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::GetClassTypeResponse {
            class_type: Some(convert::class_type_out(row)),
        }))
    }

    async fn list_class_types(
        &self,
        request: Request<pb::ListClassTypesRequest>,
    ) -> Result<Response<pb::ListClassTypesResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let size = page_size(&mut violations, request.page_size, MAX_CLASS_TYPES_PAGE);
        let trainer = optional_uuid(&mut violations, "trainer_id", &request.trainer_id);
        check_text(
            &mut violations,
            "query",
            &request.query,
            TextKind::Line,
            MAX_QUERY_CHARS,
        );
        let caller = Caller::User(principal.clone());
        // A page token is bound to the trainer and the query it was issued for.
        let filter = pb::ListClassTypesRequest {
            page_size: 0,
            page_token: String::new(),
            ..request.clone()
        }
        .encode_to_vec();
        let query = PageQuery {
            method: "/fitflow.scheduling.v1.SchedulingService/ListClassTypes",
            caller: &caller,
            filter: &filter,
        };
        let after: Option<TimeIdCursor> =
            self.calendar
                .page_tokens()
                .read(&mut violations, &query, &request.page_token);
        done(violations)?;
        let tsquery = fitflow_api::search::all_words_query(&request.query);
        let (rows, next) = self
            .calendar
            .class_types(
                &principal,
                trainer,
                tsquery.as_deref(),
                after.map(|c| (c.at, c.id)),
                size,
            )
            .await?;
        Ok(Response::new(pb::ListClassTypesResponse {
            class_types: rows.into_iter().map(convert::class_type_out).collect(),
            next_page_token: cursor(next, |c| self.calendar.page_tokens().issue(&query, c)),
        }))
    }

    async fn book_appointment(
        &self,
        request: Request<pb::BookAppointmentRequest>,
    ) -> Result<Response<pb::BookAppointmentResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        if request.request_id.is_empty() {
            violations.add("request_id", "is required: a UUID that makes retries safe");
        }
        let idempotency = idempotency(
            &mut violations,
            &principal,
            "/fitflow.scheduling.v1.SchedulingService/BookAppointment",
            &request,
            |request| &mut request.request_id,
        );
        let booking =
            convert::new_booking(&mut violations, &request.appointment.unwrap_or_default());
        done(violations)?;
        let view = self
            .calendar
            .book(&principal, &token, booking, idempotency)
            .await?;
        Ok(Response::new(pb::BookAppointmentResponse {
            appointment: Some(convert::appointment_out(view)),
        }))
    }

    async fn get_appointment(
        &self,
        request: Request<pb::GetAppointmentRequest>,
    ) -> Result<Response<pb::GetAppointmentResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let id = uuid(
            &mut violations,
            "appointment_id",
            &request.get_ref().appointment_id,
        );
        done(violations)?;
        let view = self
            .calendar
            .appointment(&principal, id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::GetAppointmentResponse {
            appointment: Some(convert::appointment_out(view)),
        }))
    }

    async fn cancel_appointment(
        &self,
        request: Request<pb::CancelAppointmentRequest>,
    ) -> Result<Response<pb::CancelAppointmentResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let id = uuid(&mut violations, "appointment_id", &request.appointment_id);
        check_text(
            &mut violations,
            "reason",
            &request.reason,
            TextKind::FreeText,
            500,
        );
        check_text(&mut violations, "etag", &request.etag, TextKind::Line, 100);
        let scope = convert::series_scope(&mut violations, request.scope);
        if scope.reaches_series() && request.etag.is_empty() {
            violations.add(
                "etag",
                "is required with a series scope: the etag last read of the named appointment",
            );
        }
        done(violations)?;
        let (view, cancelled) = self
            .calendar
            .cancel(
                &principal,
                id.unwrap_or_default(),
                &request.reason,
                &request.etag,
                scope,
            )
            .await?;
        Ok(Response::new(pb::CancelAppointmentResponse {
            appointment: Some(convert::appointment_out(view)),
            cancelled_appointments: cancelled
                .into_iter()
                .map(convert::appointment_out)
                .collect(),
        }))
    }

    async fn update_appointment(
        &self,
        request: Request<pb::UpdateAppointmentRequest>,
    ) -> Result<Response<pb::UpdateAppointmentResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let appointment = request.appointment.unwrap_or_default();
        let id = uuid(&mut violations, "appointment.id", &appointment.id);
        if request.etag.is_empty() {
            violations.add("etag", "is required: the etag last read of the appointment");
        }
        check_text(&mut violations, "etag", &request.etag, TextKind::Line, 100);
        let scope = convert::series_scope(&mut violations, request.scope);
        let paths = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        let change = convert::appointment_change(&mut violations, &appointment, &paths);
        done(violations)?;
        let (view, changed) = self
            .calendar
            .update(
                &principal,
                &token,
                id.unwrap_or_default(),
                &request.etag,
                scope,
                change,
            )
            .await?;
        Ok(Response::new(pb::UpdateAppointmentResponse {
            appointment: Some(convert::appointment_out(view)),
            appointments: changed.into_iter().map(convert::appointment_out).collect(),
        }))
    }

    async fn list_appointments(
        &self,
        request: Request<pb::ListAppointmentsRequest>,
    ) -> Result<Response<pb::ListAppointmentsResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let size = page_size(&mut violations, request.page_size, MAX_APPOINTMENTS_PAGE);
        let trainer = optional_uuid(&mut violations, "trainer_id", &request.trainer_id);
        let from = required_timestamp(&mut violations, "start_time", request.start_time.as_ref());
        let to = required_timestamp(&mut violations, "end_time", request.end_time.as_ref());
        if let (Some(from), Some(to)) = (from, to)
            && !domain::valid_window(from, to)
        {
            violations.add(
                "end_time",
                "must be after start_time and at most 92 days later",
            );
        }
        let caller = Caller::User(principal.clone());
        let filter = pb::ListAppointmentsRequest {
            page_size: 0,
            page_token: String::new(),
            ..request.clone()
        }
        .encode_to_vec();
        let method = format!("{RPC}ListAppointments");
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
        let window = (from.unwrap_or_default(), to.unwrap_or_default());
        let (views, next) = self
            .calendar
            .appointments(
                &principal,
                trainer,
                window,
                request.show_cancelled,
                after.map(|c| (c.at, c.id)),
                size,
            )
            .await?;
        Ok(Response::new(pb::ListAppointmentsResponse {
            appointments: views.into_iter().map(convert::appointment_out).collect(),
            next_page_token: cursor(next, |c| self.calendar.page_tokens().issue(&query, c)),
        }))
    }

    async fn join_class(
        &self,
        request: Request<pb::JoinClassRequest>,
    ) -> Result<Response<pb::JoinClassResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let appointment_id = uuid(&mut violations, "appointment_id", &request.appointment_id);
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let idempotency = idempotency(
            &mut violations,
            &principal,
            "/fitflow.scheduling.v1.SchedulingService/JoinClass",
            &request,
            |request| &mut request.request_id,
        );
        done(violations)?;
        let row = self
            .calendar
            .join(
                &principal,
                &token,
                appointment_id.unwrap_or_default(),
                client_id.unwrap_or_default(),
                idempotency,
            )
            .await?;
        Ok(Response::new(pb::JoinClassResponse {
            participant: Some(convert::participant_out(row)),
        }))
    }

    async fn leave_class(
        &self,
        request: Request<pb::LeaveClassRequest>,
    ) -> Result<Response<pb::LeaveClassResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let appointment_id = uuid(&mut violations, "appointment_id", &request.appointment_id);
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        done(violations)?;
        let (left, promoted) = self
            .calendar
            .leave(
                &principal,
                appointment_id.unwrap_or_default(),
                client_id.unwrap_or_default(),
            )
            .await?;
        Ok(Response::new(pb::LeaveClassResponse {
            participant: Some(convert::participant_out(left)),
            promoted: promoted.map(convert::participant_out),
        }))
    }

    async fn list_participants(
        &self,
        request: Request<pb::ListParticipantsRequest>,
    ) -> Result<Response<pb::ListParticipantsResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let appointment_id = uuid(&mut violations, "appointment_id", &request.appointment_id);
        done(violations)?;
        let rows = self
            .calendar
            .participants(
                &principal,
                appointment_id.unwrap_or_default(),
                request.show_cancelled,
            )
            .await?;
        Ok(Response::new(pb::ListParticipantsResponse {
            participants: rows.into_iter().map(convert::participant_out).collect(),
        }))
    }

    async fn set_cancellation_policy(
        &self,
        request: Request<pb::SetCancellationPolicyRequest>,
    ) -> Result<Response<pb::SetCancellationPolicyResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let policy = request.get_ref().policy.clone().unwrap_or_default();
        let (holder, policy) = convert::policy_in(&mut violations, &policy);
        done(violations)?;
        let (holder, policy) = self.calendar.set_policy(&principal, holder, policy).await?;
        Ok(Response::new(pb::SetCancellationPolicyResponse {
            policy: Some(convert::policy_out(holder, policy)),
        }))
    }

    async fn get_cancellation_policy(
        &self,
        request: Request<pb::GetCancellationPolicyRequest>,
    ) -> Result<Response<pb::GetCancellationPolicyResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let trainer = optional_uuid(&mut violations, "trainer_id", &request.get_ref().trainer_id);
        let studio = optional_uuid(&mut violations, "studio_id", &request.get_ref().studio_id);
        done(violations)?;
        let holder = match studio {
            Some(studio) => PolicyHolder::Studio(studio),
            None => PolicyHolder::Trainer(trainer),
        };
        let (holder, policy) = self.calendar.policy(&principal, holder).await?;
        Ok(Response::new(pb::GetCancellationPolicyResponse {
            policy: Some(convert::policy_out(holder, policy)),
        }))
    }

    async fn complete_appointment(
        &self,
        request: Request<pb::CompleteAppointmentRequest>,
    ) -> Result<Response<pb::CompleteAppointmentResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let id = uuid(&mut violations, "appointment_id", &request.appointment_id);
        let attendance = convert::attendance(&mut violations, &request.attendance);
        check_text(&mut violations, "etag", &request.etag, TextKind::Line, 100);
        done(violations)?;
        let view = self
            .calendar
            .complete(
                &principal,
                id.unwrap_or_default(),
                &attendance,
                &request.etag,
            )
            .await?;
        Ok(Response::new(pb::CompleteAppointmentResponse {
            appointment: Some(convert::appointment_out(view)),
        }))
    }

    async fn mark_no_show(
        &self,
        request: Request<pb::MarkNoShowRequest>,
    ) -> Result<Response<pb::MarkNoShowResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let id = uuid(&mut violations, "appointment_id", &request.appointment_id);
        check_text(&mut violations, "etag", &request.etag, TextKind::Line, 100);
        done(violations)?;
        let view = self
            .calendar
            .no_show(&principal, id.unwrap_or_default(), &request.etag)
            .await?;
        Ok(Response::new(pb::MarkNoShowResponse {
            appointment: Some(convert::appointment_out(view)),
        }))
    }

    async fn waive_fee(
        &self,
        request: Request<pb::WaiveFeeRequest>,
    ) -> Result<Response<pb::WaiveFeeResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let id = uuid(&mut violations, "appointment_id", &request.appointment_id);
        if request.reason.trim().is_empty() {
            violations.add("reason", "is required");
        }
        check_text(
            &mut violations,
            "reason",
            &request.reason,
            TextKind::FreeText,
            500,
        );
        done(violations)?;
        let view = self
            .calendar
            .waive(&principal, id.unwrap_or_default(), &request.reason)
            .await?;
        Ok(Response::new(pb::WaiveFeeResponse {
            appointment: Some(convert::appointment_out(view)),
        }))
    }

    async fn book_series(
        &self,
        request: Request<pb::BookSeriesRequest>,
    ) -> Result<Response<pb::BookSeriesResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        if request.request_id.is_empty() {
            violations.add("request_id", "is required: a UUID that makes retries safe");
        }
        let idempotency = idempotency(
            &mut violations,
            &principal,
            "/fitflow.scheduling.v1.SchedulingService/BookSeries",
            &request,
            |request| &mut request.request_id,
        );
        let template = request.appointment.clone().unwrap_or_default();
        let booking = convert::new_booking(&mut violations, &template);
        let first = template
            .start_time
            .as_ref()
            .and_then(fitflow_api::time::parse_timestamp);
        let (zone, rule) = convert::weekly_rule(
            &mut violations,
            first,
            &request.time_zone,
            request.rule.as_ref(),
        );
        done(violations)?;
        let Some(rule) = rule else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let (series_id, zone, views) = self
            .calendar
            .book_series(&principal, &token, booking, zone, &rule, idempotency)
            .await?;
        Ok(Response::new(pb::BookSeriesResponse {
            series_id: series_id.to_string(),
            appointments: views.into_iter().map(convert::appointment_out).collect(),
            time_zone: zone.name().to_owned(),
        }))
    }

    async fn export_client_appointments(
        &self,
        request: Request<pb::ExportClientAppointmentsRequest>,
    ) -> Result<Response<pb::ExportClientAppointmentsResponse>, Status> {
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.get_ref().client_id);
        done(violations)?;
        let (appointments, participations) = self
            .calendar
            .export_client(client_id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::ExportClientAppointmentsResponse {
            appointments: appointments
                .into_iter()
                .map(convert::appointment_out)
                .collect(),
            participations: participations
                .into_iter()
                .map(convert::participant_out)
                .collect(),
        }))
    }

    async fn get_attendance(
        &self,
        request: Request<pb::GetAttendanceRequest>,
    ) -> Result<Response<pb::GetAttendanceResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let id = uuid(&mut violations, "appointment_id", &request.appointment_id);
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        done(violations)?;
        let (view, attended) = self
            .calendar
            .attendance(id.unwrap_or_default(), client_id.unwrap_or_default())
            .await?;
        let appointment = convert::appointment_out(view);
        Ok(Response::new(pb::GetAttendanceResponse {
            trainer_id: appointment.trainer_id,
            start_time: appointment.start_time,
            end_time: appointment.end_time,
            status: appointment.status,
            attended,
        }))
    }

    async fn list_studio_roster(
        &self,
        request: Request<pb::ListStudioRosterRequest>,
    ) -> Result<Response<pb::ListStudioRosterResponse>, Status> {
        self.studio_roster(request).await
    }

    async fn list_studio_sessions(
        &self,
        request: Request<pb::ListStudioSessionsRequest>,
    ) -> Result<Response<pb::ListStudioSessionsResponse>, Status> {
        self.studio_sessions(request).await
    }

    async fn list_billable_appointments(
        &self,
        request: Request<pb::ListBillableAppointmentsRequest>,
    ) -> Result<Response<pb::ListBillableAppointmentsResponse>, Status> {
        self.billable(request).await
    }

    async fn set_payment_status(
        &self,
        request: Request<pb::SetPaymentStatusRequest>,
    ) -> Result<Response<pb::SetPaymentStatusResponse>, Status> {
        self.payment_status(request).await
    }

    async fn create_availability_rule(
        &self,
        request: Request<pb::CreateAvailabilityRuleRequest>,
    ) -> Result<Response<pb::CreateAvailabilityRuleResponse>, Status> {
        self.create_rule(request).await
    }

    async fn list_availability_rules(
        &self,
        request: Request<pb::ListAvailabilityRulesRequest>,
    ) -> Result<Response<pb::ListAvailabilityRulesResponse>, Status> {
        self.list_rules(request).await
    }

    async fn delete_availability_rule(
        &self,
        request: Request<pb::DeleteAvailabilityRuleRequest>,
    ) -> Result<Response<pb::DeleteAvailabilityRuleResponse>, Status> {
        self.delete_rule(request).await
    }

    async fn end_availability_rule(
        &self,
        request: Request<pb::EndAvailabilityRuleRequest>,
    ) -> Result<Response<pb::EndAvailabilityRuleResponse>, Status> {
        self.end_rule(request).await
    }

    async fn create_availability_exception(
        &self,
        request: Request<pb::CreateAvailabilityExceptionRequest>,
    ) -> Result<Response<pb::CreateAvailabilityExceptionResponse>, Status> {
        self.create_exception(request).await
    }

    async fn list_availability_exceptions(
        &self,
        request: Request<pb::ListAvailabilityExceptionsRequest>,
    ) -> Result<Response<pb::ListAvailabilityExceptionsResponse>, Status> {
        self.list_exceptions(request).await
    }

    async fn delete_availability_exception(
        &self,
        request: Request<pb::DeleteAvailabilityExceptionRequest>,
    ) -> Result<Response<pb::DeleteAvailabilityExceptionResponse>, Status> {
        self.delete_exception(request).await
    }

    async fn list_free_slots(
        &self,
        request: Request<pb::ListFreeSlotsRequest>,
    ) -> Result<Response<pb::ListFreeSlotsResponse>, Status> {
        self.free_slots(request).await
    }

    type ExportTrainerCalendarStream = export::CalendarStream;

    async fn export_trainer_calendar(
        &self,
        request: Request<pb::ExportTrainerCalendarRequest>,
    ) -> Result<Response<Self::ExportTrainerCalendarStream>, Status> {
        self.export_calendar(request).await
    }

    async fn get_scheduling_settings(
        &self,
        request: Request<pb::GetSchedulingSettingsRequest>,
    ) -> Result<Response<pb::GetSchedulingSettingsResponse>, Status> {
        self.get_settings(request).await
    }

    async fn update_scheduling_settings(
        &self,
        request: Request<pb::UpdateSchedulingSettingsRequest>,
    ) -> Result<Response<pb::UpdateSchedulingSettingsResponse>, Status> {
        self.update_settings(request).await
    }
}
