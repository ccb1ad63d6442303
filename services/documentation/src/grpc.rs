//! `fitflow.documentation.v1.DocumentationService`: authenticate, validate,
//! call the use case, encode.

use fitflow_api::idempotency::record;
use fitflow_api::page::{PageQuery, TimeIdCursor, page_size};
use fitflow_api::text::{TextKind, check_text, optional_uuid, required, uuid};
use fitflow_api::time::{required_timestamp, to_civil_date};
use fitflow_auth::{Caller, Principal};
use fitflow_error::{ApiError, Violations};
use fitflow_outbox::Purpose;
use fitflow_proto::clients::AccessPurpose;
use fitflow_proto::documentation as pb;
use fitflow_proto::documentation::documentation_service_server::DocumentationService;
use fitflow_proto::google::r#type::Date;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tonic::{Request, Response, Status};

use crate::domain::{self, Metric, View};
use crate::records::{Asker, ExportPosition, Exported, Idempotency, NoteDraft, PlanDraft, Records};
use crate::validate::{self, MAX_NAME, MAX_SHORT_TEXT, MAX_TEXT};
use crate::{ERROR_DOMAIN, records};

/// Largest page of ListSessionNotes.
const MAX_NOTES_PAGE: u32 = 100;
/// Its page when `page_size` is 0, as the contract says (the platform's
/// default is larger).
const DEFAULT_NOTES_PAGE: u32 = 20;
/// Largest page of ListTrainingPlans, and its page when `page_size` is 0:
/// as many plans as the list returned before it had pages.
const MAX_PLANS_PAGE: u32 = 200;
/// Longest range of GetProgress, in days (ten years).
const MAX_PROGRESS_DAYS: i64 = 3_660;

/// The gRPC face of [`Records`].
pub struct DocumentationGrpc {
    records: Arc<Records>,
}

impl DocumentationGrpc {
    /// Serves `records` over gRPC.
    pub fn new(records: Records) -> Self {
        Self {
            records: Arc::new(records),
        }
    }
}

/// The stream of a client's documentation, message by message.
type DocumentationStream =
    Pin<Box<dyn Stream<Item = Result<pb::StreamClientDocumentationResponse, Status>> + Send>>;

/// A streamed export between two messages: records read but not yet sent,
/// and where reading resumes.
struct ExportState {
    records: Arc<Records>,
    client_id: uuid::Uuid,
    pending: VecDeque<Exported>,
    position: ExportPosition,
    /// Nothing more to read (or a failure was sent): end after `pending`.
    exhausted: bool,
}

/// Bytes `item` adds to a message, with its field tag and length.
fn exported_len(item: &Exported) -> usize {
    match item {
        Exported::Note(note) => prost::encoding::message::encoded_len(1, &**note),
        Exported::Plan(plan) => prost::encoding::message::encoded_len(2, &**plan),
    }
}

/// The next message of an export: records while they fit
/// [`domain::MAX_PAGE_BYTES`] (at least one), reading the next batch when
/// none is pending; `None` when the export is whole.
async fn next_export_message(
    mut state: ExportState,
) -> Option<(
    Result<pb::StreamClientDocumentationResponse, Status>,
    ExportState,
)> {
    let mut message = pb::StreamClientDocumentationResponse::default();
    let mut bytes = 0;
    loop {
        let Some(item) = state.pending.front() else {
            if state.exhausted {
                break;
            }
            match state
                .records
                .export_batch(state.client_id, &mut state.position)
                .await
            {
                Ok(batch) if batch.is_empty() => state.exhausted = true,
                Ok(batch) => state.pending.extend(batch),
                Err(error) => {
                    // The records read so far are dropped: the caller gets
                    // the failure in their place, and the stream ends.
                    state.exhausted = true;
                    state.pending.clear();
                    return Some((Err(error.into()), state));
                }
            }
            continue;
        };
        let size = exported_len(item);
        if !domain::joins_page(bytes, size) {
            break;
        }
        bytes += size;
        match state.pending.pop_front() {
            Some(Exported::Note(note)) => message.notes.push(*note),
            Some(Exported::Plan(plan)) => message.plan_versions.push(*plan),
            None => break,
        }
    }
    if message.notes.is_empty() && message.plan_versions.is_empty() {
        return None;
    }
    Some((Ok(message), state))
}

fitflow_server::handler_helpers!(ERROR_DOMAIN);

fn purpose(violations: &mut Violations, value: i32) -> Purpose {
    match AccessPurpose::try_from(value) {
        Ok(AccessPurpose::Treatment) => Purpose::Treatment,
        Ok(AccessPurpose::Payment) => Purpose::Payment,
        Ok(AccessPurpose::Operations) => Purpose::Operations,
        Ok(AccessPurpose::Unspecified) | Err(_) => {
            violations.add("purpose", "is required: TREATMENT, PAYMENT or OPERATIONS");
            Purpose::Unspecified
        }
    }
}

fn view(violations: &mut Violations, value: i32) -> View {
    match pb::NoteView::try_from(value) {
        Ok(pb::NoteView::Unspecified | pb::NoteView::Trainer) => View::Trainer,
        Ok(pb::NoteView::Client) => View::Client,
        Err(_) => {
            violations.add("view", "must be TRAINER or CLIENT");
            View::Trainer
        }
    }
}

fn etag(violations: &mut Violations, value: &str) {
    if required(violations, "etag", value) {
        check_text(violations, "etag", value, TextKind::Line, 100);
    }
}

fn content(
    violations: &mut Violations,
    value: Option<pb::SessionNoteContent>,
) -> pb::SessionNoteContent {
    let content = value.unwrap_or_default();
    validate::note_content(violations, "content", &content);
    content
}

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

fn metric(violations: &mut Violations, kind: i32, site: i32) -> Option<Metric> {
    let site = pb::GirthSite::try_from(site).ok();
    let metric = match pb::ProgressMetricKind::try_from(kind) {
        Ok(pb::ProgressMetricKind::BodyWeight) => Metric::BodyWeight,
        Ok(pb::ProgressMetricKind::BodyFatPercent) => Metric::BodyFat,
        Ok(pb::ProgressMetricKind::RestingHeartRate) => Metric::RestingHeartRate,
        Ok(pb::ProgressMetricKind::SystolicPressure) => Metric::Systolic,
        Ok(pb::ProgressMetricKind::DiastolicPressure) => Metric::Diastolic,
        Ok(pb::ProgressMetricKind::Girth) => match site {
            Some(site) if site != pb::GirthSite::Unspecified => Metric::Girth(site),
            _ => {
                violations.add("girth_site", "is required for GIRTH: a known site");
                return None;
            }
        },
        Ok(pb::ProgressMetricKind::Unspecified) | Err(_) => {
            violations.add("metric", "is required: a known metric");
            return None;
        }
    };
    if !matches!(metric, Metric::Girth(_)) && site != Some(pb::GirthSite::Unspecified) {
        violations.add("girth_site", "is only given with metric GIRTH");
    }
    Some(metric)
}

fn date(value: chrono::NaiveDate) -> Date {
    let civil = to_civil_date(value);
    Date {
        year: civil.year,
        month: civil.month,
        day: civil.day,
    }
}

#[tonic::async_trait]
impl DocumentationService for DocumentationGrpc {
    async fn create_session_note(
        &self,
        request: Request<pb::CreateSessionNoteRequest>,
    ) -> Result<Response<pb::CreateSessionNoteResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let idempotency = idempotency(
            &mut violations,
            &principal,
            "/fitflow.documentation.v1.DocumentationService/CreateSessionNote",
            &request,
            |request| &mut request.request_id,
        );
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let appointment_id = uuid(&mut violations, "appointment_id", &request.appointment_id);
        let content = content(&mut violations, request.content);
        done(violations)?;
        let asker = Asker {
            principal: &principal,
            bearer: &token,
        };
        let draft = NoteDraft {
            client_id: client_id.unwrap_or_default(),
            appointment_id: appointment_id.unwrap_or_default(),
            content,
        };
        let note = self.records.create_note(asker, draft, idempotency).await?;
        Ok(Response::new(pb::CreateSessionNoteResponse {
            note: Some(note),
        }))
    }

    async fn update_session_note(
        &self,
        request: Request<pb::UpdateSessionNoteRequest>,
    ) -> Result<Response<pb::UpdateSessionNoteResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let note_id = uuid(&mut violations, "note_id", &request.note_id);
        etag(&mut violations, &request.etag);
        let content = content(&mut violations, request.content);
        done(violations)?;
        let asker = Asker {
            principal: &principal,
            bearer: &token,
        };
        let note = self
            .records
            .update_note(
                asker,
                client_id.unwrap_or_default(),
                note_id.unwrap_or_default(),
                content,
                &request.etag,
            )
            .await?;
        Ok(Response::new(pb::UpdateSessionNoteResponse {
            note: Some(note),
        }))
    }

    async fn sign_session_note(
        &self,
        request: Request<pb::SignSessionNoteRequest>,
    ) -> Result<Response<pb::SignSessionNoteResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let note_id = uuid(&mut violations, "note_id", &request.note_id);
        etag(&mut violations, &request.etag);
        done(violations)?;
        let asker = Asker {
            principal: &principal,
            bearer: &token,
        };
        let note = self
            .records
            .sign_note(
                asker,
                client_id.unwrap_or_default(),
                note_id.unwrap_or_default(),
                &request.etag,
            )
            .await?;
        Ok(Response::new(pb::SignSessionNoteResponse {
            note: Some(note),
        }))
    }

    async fn amend_session_note(
        &self,
        request: Request<pb::AmendSessionNoteRequest>,
    ) -> Result<Response<pb::AmendSessionNoteResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let note_id = uuid(&mut violations, "note_id", &request.note_id);
        if required(&mut violations, "reason", &request.reason) {
            check_text(
                &mut violations,
                "reason",
                &request.reason,
                TextKind::FreeText,
                MAX_SHORT_TEXT,
            );
        }
        etag(&mut violations, &request.etag);
        let content = content(&mut violations, request.content);
        done(violations)?;
        let asker = Asker {
            principal: &principal,
            bearer: &token,
        };
        let note = self
            .records
            .amend_note(
                asker,
                client_id.unwrap_or_default(),
                note_id.unwrap_or_default(),
                &request.reason,
                content,
                &request.etag,
            )
            .await?;
        Ok(Response::new(pb::AmendSessionNoteResponse {
            note: Some(note),
        }))
    }

    async fn get_session_note(
        &self,
        request: Request<pb::GetSessionNoteRequest>,
    ) -> Result<Response<pb::GetSessionNoteResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let note_id = uuid(&mut violations, "note_id", &request.note_id);
        let view = view(&mut violations, request.view);
        let purpose = purpose(&mut violations, request.purpose);
        done(violations)?;
        let asker = Asker {
            principal: &principal,
            bearer: &token,
        };
        let note = self
            .records
            .note(
                asker,
                client_id.unwrap_or_default(),
                note_id.unwrap_or_default(),
                view,
                request.include_history,
                purpose,
            )
            .await?;
        Ok(Response::new(pb::GetSessionNoteResponse {
            note: Some(note),
        }))
    }

    async fn list_session_notes(
        &self,
        request: Request<pb::ListSessionNotesRequest>,
    ) -> Result<Response<pb::ListSessionNotesResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let view = view(&mut violations, request.view);
        let purpose = purpose(&mut violations, request.purpose);
        let size = match request.page_size {
            0 => DEFAULT_NOTES_PAGE,
            asked => page_size(&mut violations, asked, MAX_NOTES_PAGE),
        };
        let caller = Caller::User(principal.clone());
        let mut filter = request.client_id.as_bytes().to_vec();
        filter.extend_from_slice(&request.view.to_be_bytes());
        let query = PageQuery {
            method: "/fitflow.documentation.v1.DocumentationService/ListSessionNotes",
            caller: &caller,
            filter: &filter,
        };
        let after: Option<TimeIdCursor> =
            self.records
                .page_tokens()
                .read(&mut violations, &query, &request.page_token);
        done(violations)?;
        let asker = Asker {
            principal: &principal,
            bearer: &token,
        };
        let (notes, next) = self
            .records
            .notes(
                asker,
                client_id.unwrap_or_default(),
                view,
                purpose,
                after.map(|cursor| (cursor.at, cursor.id)),
                size,
            )
            .await?;
        let next_page_token = next
            .map(|(at, id)| {
                self.records
                    .page_tokens()
                    .issue(&query, &TimeIdCursor { at, id })
            })
            .unwrap_or_default();
        Ok(Response::new(pb::ListSessionNotesResponse {
            notes,
            next_page_token,
        }))
    }

    async fn submit_ai_summary(
        &self,
        request: Request<pb::SubmitAiSummaryRequest>,
    ) -> Result<Response<pb::SubmitAiSummaryResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let note_id = uuid(&mut violations, "note_id", &request.note_id);
        let summary = request.summary.unwrap_or_default();
        if required(&mut violations, "summary.text", &summary.text) {
            check_text(
                &mut violations,
                "summary.text",
                &summary.text,
                TextKind::FreeText,
                MAX_TEXT,
            );
        }
        if required(&mut violations, "summary.model", &summary.model) {
            check_text(
                &mut violations,
                "summary.model",
                &summary.model,
                TextKind::Line,
                MAX_NAME,
            );
        }
        let generated_at = required_timestamp(
            &mut violations,
            "summary.generate_time",
            summary.generate_time.as_ref(),
        );
        if let Some(at) = generated_at {
            violations.check(
                at <= chrono::Utc::now() + chrono::Duration::minutes(5),
                "summary.generate_time",
                "must not be in the future",
            );
        }
        done(violations)?;
        let asker = Asker {
            principal: &principal,
            bearer: &token,
        };
        let draft = records::AiSummaryDraft {
            text: summary.text,
            model: summary.model,
            generated_at: generated_at.unwrap_or_default(),
        };
        let note = self
            .records
            .submit_ai_summary(
                asker,
                client_id.unwrap_or_default(),
                note_id.unwrap_or_default(),
                draft,
            )
            .await?;
        Ok(Response::new(pb::SubmitAiSummaryResponse {
            note: Some(note),
        }))
    }

    async fn accept_ai_summary(
        &self,
        request: Request<pb::AcceptAiSummaryRequest>,
    ) -> Result<Response<pb::AcceptAiSummaryResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let note_id = uuid(&mut violations, "note_id", &request.note_id);
        etag(&mut violations, &request.etag);
        done(violations)?;
        let asker = Asker {
            principal: &principal,
            bearer: &token,
        };
        let note = self
            .records
            .accept_ai_summary(
                asker,
                client_id.unwrap_or_default(),
                note_id.unwrap_or_default(),
                &request.etag,
            )
            .await?;
        Ok(Response::new(pb::AcceptAiSummaryResponse {
            note: Some(note),
        }))
    }

    async fn create_training_plan(
        &self,
        request: Request<pb::CreateTrainingPlanRequest>,
    ) -> Result<Response<pb::CreateTrainingPlanResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let idempotency = idempotency(
            &mut violations,
            &principal,
            "/fitflow.documentation.v1.DocumentationService/CreateTrainingPlan",
            &request,
            |request| &mut request.request_id,
        );
        let plan = request.plan.unwrap_or_default();
        let client_id = uuid(&mut violations, "plan.client_id", &plan.client_id);
        let trainer_id = optional_uuid(&mut violations, "plan.trainer_id", &plan.trainer_id);
        let header = validate::plan(&mut violations, "plan", &plan);
        done(violations)?;
        let Some(header) = header else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let asker = Asker {
            principal: &principal,
            bearer: &token,
        };
        let draft = PlanDraft {
            client_id: client_id.unwrap_or_default(),
            trainer_id,
            header,
            plan,
        };
        let plan = self.records.create_plan(asker, draft, idempotency).await?;
        Ok(Response::new(pb::CreateTrainingPlanResponse {
            plan: Some(plan),
        }))
    }

    async fn revise_training_plan(
        &self,
        request: Request<pb::ReviseTrainingPlanRequest>,
    ) -> Result<Response<pb::ReviseTrainingPlanResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let plan = request.into_inner().plan.unwrap_or_default();
        let mut violations = Violations::new();
        let plan_id = uuid(&mut violations, "plan.id", &plan.id);
        let client_id = uuid(&mut violations, "plan.client_id", &plan.client_id);
        if required(&mut violations, "plan.etag", &plan.etag) {
            check_text(
                &mut violations,
                "plan.etag",
                &plan.etag,
                TextKind::Line,
                100,
            );
        }
        let header = validate::plan(&mut violations, "plan", &plan);
        done(violations)?;
        let Some(header) = header else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let asker = Asker {
            principal: &principal,
            bearer: &token,
        };
        let etag = plan.etag.clone();
        let draft = PlanDraft {
            client_id: client_id.unwrap_or_default(),
            trainer_id: None,
            header,
            plan,
        };
        let plan = self
            .records
            .revise_plan(asker, plan_id.unwrap_or_default(), draft, &etag)
            .await?;
        Ok(Response::new(pb::ReviseTrainingPlanResponse {
            plan: Some(plan),
        }))
    }

    async fn get_training_plan(
        &self,
        request: Request<pb::GetTrainingPlanRequest>,
    ) -> Result<Response<pb::GetTrainingPlanResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let plan_id = uuid(&mut violations, "plan_id", &request.plan_id);
        violations.check(
            request.version >= 0,
            "version",
            "must be 0 (current) or above",
        );
        let purpose = purpose(&mut violations, request.purpose);
        done(violations)?;
        let asker = Asker {
            principal: &principal,
            bearer: &token,
        };
        let plan = self
            .records
            .plan(
                asker,
                client_id.unwrap_or_default(),
                plan_id.unwrap_or_default(),
                request.version,
                purpose,
            )
            .await?;
        Ok(Response::new(pb::GetTrainingPlanResponse {
            plan: Some(plan),
        }))
    }

    async fn list_training_plans(
        &self,
        request: Request<pb::ListTrainingPlansRequest>,
    ) -> Result<Response<pb::ListTrainingPlansResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let purpose = purpose(&mut violations, request.purpose);
        let size = match request.page_size {
            0 => MAX_PLANS_PAGE,
            asked => page_size(&mut violations, asked, MAX_PLANS_PAGE),
        };
        let caller = Caller::User(principal.clone());
        let query = PageQuery {
            method: "/fitflow.documentation.v1.DocumentationService/ListTrainingPlans",
            caller: &caller,
            filter: request.client_id.as_bytes(),
        };
        let after: Option<TimeIdCursor> =
            self.records
                .page_tokens()
                .read(&mut violations, &query, &request.page_token);
        done(violations)?;
        let asker = Asker {
            principal: &principal,
            bearer: &token,
        };
        let (plans, next) = self
            .records
            .plans(
                asker,
                client_id.unwrap_or_default(),
                purpose,
                after.map(|cursor| (cursor.at, cursor.id)),
                size,
            )
            .await?;
        let next_page_token = next
            .map(|(at, id)| {
                self.records
                    .page_tokens()
                    .issue(&query, &TimeIdCursor { at, id })
            })
            .unwrap_or_default();
        Ok(Response::new(pb::ListTrainingPlansResponse {
            plans,
            next_page_token,
        }))
    }

    async fn get_progress(
        &self,
        request: Request<pb::GetProgressRequest>,
    ) -> Result<Response<pb::GetProgressResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let metric = metric(&mut violations, request.metric, request.girth_site);
        let first = validate::required_civil_date(
            &mut violations,
            "start_date",
            request.start_date.as_ref(),
        );
        let last =
            validate::required_civil_date(&mut violations, "end_date", request.end_date.as_ref());
        if let (Some(first), Some(last)) = (first, last) {
            let days = (last - first).num_days();
            violations.check(days >= 0, "end_date", "must not be before start_date");
            violations.check(
                days <= MAX_PROGRESS_DAYS,
                "end_date",
                "must be at most 10 years after start_date",
            );
        }
        let purpose = purpose(&mut violations, request.purpose);
        done(violations)?;
        let (Some(metric), Some(first), Some(last)) = (metric, first, last) else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let asker = Asker {
            principal: &principal,
            bearer: &token,
        };
        let progress = self
            .records
            .progress(
                asker,
                client_id.unwrap_or_default(),
                metric,
                (first, last),
                purpose,
            )
            .await?;
        Ok(Response::new(pb::GetProgressResponse {
            unit: progress.unit.to_owned(),
            points: progress
                .points
                .into_iter()
                .map(|(day, value, note_id)| pb::ProgressPoint {
                    date: Some(date(day)),
                    value,
                    note_id: note_id.to_string(),
                })
                .collect(),
            adherence: progress
                .weeks
                .into_iter()
                .map(|(monday, done, planned)| pb::WeekAdherence {
                    week_start: Some(date(monday)),
                    sessions_done: done,
                    sessions_planned: planned,
                })
                .collect(),
        }))
    }

    async fn export_client_documentation(
        &self,
        request: Request<pb::ExportClientDocumentationRequest>,
    ) -> Result<Response<pb::ExportClientDocumentationResponse>, Status> {
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.get_ref().client_id);
        done(violations)?;
        let (notes, plan_versions) = self.records.export(client_id.unwrap_or_default()).await?;
        Ok(Response::new(pb::ExportClientDocumentationResponse {
            notes,
            plan_versions,
        }))
    }

    type StreamClientDocumentationStream = DocumentationStream;

    async fn stream_client_documentation(
        &self,
        request: Request<pb::StreamClientDocumentationRequest>,
    ) -> Result<Response<Self::StreamClientDocumentationStream>, Status> {
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.get_ref().client_id);
        done(violations)?;
        let client_id = client_id.unwrap_or_default();
        // The event commits, and the first batch is read, before the stream
        // starts: an erased client fails as the call's own answer.
        let (first, position) = self.records.begin_export(client_id).await?;
        let state = ExportState {
            records: Arc::clone(&self.records),
            client_id,
            exhausted: first.is_empty(),
            pending: first.into(),
            position,
        };
        Ok(Response::new(Box::pin(futures::stream::unfold(
            state,
            next_export_message,
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_progress_answer_fits_one_grpc_message() {
        use prost::Message as _;
        let day = Some(Date {
            year: 9999,
            month: 12,
            day: 31,
        });
        let answer = pb::GetProgressResponse {
            unit: "mmHg".into(),
            // One point per note read, at most.
            points: (0..domain::MAX_PROGRESS_NOTES)
                .map(|_| pb::ProgressPoint {
                    date: day,
                    value: f64::MAX,
                    note_id: uuid::Uuid::max().to_string(),
                })
                .collect(),
            // Every ISO week overlapping the longest range.
            adherence: (0..=MAX_PROGRESS_DAYS / 7 + 2)
                .map(|_| pb::WeekAdherence {
                    week_start: day,
                    sessions_done: i32::MAX,
                    sessions_planned: i32::MAX,
                })
                .collect(),
        };
        assert!(answer.encoded_len() < domain::MAX_MESSAGE_BYTES);
    }

    #[test]
    fn a_girth_chart_needs_a_site_and_other_charts_refuse_one() {
        let mut violations = Violations::new();
        assert_eq!(
            metric(&mut violations, pb::ProgressMetricKind::Girth as i32, 0),
            None
        );
        assert_eq!(
            metric(
                &mut violations,
                pb::ProgressMetricKind::BodyWeight as i32,
                pb::GirthSite::Waist as i32
            ),
            Some(Metric::BodyWeight)
        );
        assert_eq!(metric(&mut violations, 99, 0), None);
        let fields: Vec<&str> = violations.fields().collect();
        assert_eq!(fields, ["girth_site", "girth_site", "metric"]);
    }
}
