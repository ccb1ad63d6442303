//! The tonic services: decode, validate, authorize, call the domain and the
//! repository, encode. Every status is built by `ApiError::into_status`.

use std::pin::Pin;

use chrono::Utc;
use fitflow_auth::{PeerIdentity, Principal, Role};
use fitflow_error::ApiError;
use fitflow_proto::audit::audit_ingest_service_server::AuditIngestService;
use fitflow_proto::audit::audit_service_server::AuditService;
use fitflow_proto::audit::{
    AuditEvent, ChainBreakKind, ChainVerification, ExportEventsRequest, ExportEventsResponse,
    IngestRequest, IngestResponse, ListEventsRequest, ListEventsResponse, StoredEvent,
    VerifyChainRequest, VerifyChainResponse,
};
use futures::Stream;
use prost::Message as _;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::domain::{self, BreakKind, EventFilter, ExportPlan, PageCursor};
use crate::{AuditError, ERROR_DOMAIN, repo};

/// Batches answered but not yet read by the caller, per stream.
const RESPONSE_BUFFER: usize = 4;

fn status(error: impl Into<ApiError>) -> Status {
    error.into().into_status(ERROR_DOMAIN)
}

/// `AuditIngestService`: stores batches of events from FitFlow services.
/// The server layer admits only FitFlow peers; this handler further requires
/// each event's source to be the calling peer.
#[derive(Debug, Clone)]
pub struct AuditIngest {
    pool: PgPool,
    shutdown: CancellationToken,
}

impl AuditIngest {
    /// A service storing through `pool` (the runtime role's pool).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            shutdown: CancellationToken::new(),
        }
    }

    /// The same service, ending its open streams when `shutdown` is
    /// cancelled: a batch being stored is finished and answered first, then
    /// the stream closes, so a relay reconnects elsewhere or later instead of
    /// holding the server's graceful shutdown open.
    pub fn with_shutdown(self, shutdown: CancellationToken) -> Self {
        Self { shutdown, ..self }
    }

    /// Validates, stores and answers one batch.
    async fn ingest_batch(
        &self,
        peer: Option<&str>,
        request: IngestRequest,
    ) -> Result<IngestResponse, ApiError> {
        let batch = domain::admit_batch(&request.events, peer, Utc::now())
            .map_err(AuditError::InvalidArgument)?;
        for rejected in &batch.rejected {
            tracing::warn!(
                event_id = %rejected.event_id,
                index = rejected.index,
                reason = %rejected.reason,
                "audit event rejected"
            );
        }
        let acknowledged = repo::store_batch(&self.pool, &batch.valid)
            .await
            .map_err(AuditError::from)?;
        Ok(IngestResponse {
            acknowledged_event_ids: acknowledged.iter().map(ToString::to_string).collect(),
            rejected: batch.rejected,
        })
    }
}

/// The response stream of `Ingest`.
pub type IngestResponseStream = Pin<Box<dyn Stream<Item = Result<IngestResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AuditIngestService for AuditIngest {
    type IngestStream = IngestResponseStream;

    async fn ingest(
        &self,
        request: Request<Streaming<IngestRequest>>,
    ) -> Result<Response<Self::IngestStream>, Status> {
        let peer = fitflow_auth::peer(&request).map(|peer| peer.0.clone());
        let mut batches = request.into_inner();
        let (responses, outbound) = mpsc::channel(RESPONSE_BUFFER);
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = service.shutdown.cancelled() => break,
                    next = batches.message() => next,
                };
                let batch = match next {
                    Ok(Some(batch)) => batch,
                    Ok(None) => break,
                    Err(error) => {
                        tracing::debug!(code = ?error.code(), "ingest stream ended by the client");
                        break;
                    }
                };
                let outcome = service.ingest_batch(peer.as_deref(), batch).await;
                let failed = outcome.is_err();
                if responses.send(outcome.map_err(status)).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(outbound))))
    }
}

/// `AuditService`: lists, exports and verifies the trail. Operators read
/// everything; other users read the tenants they act for.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    pool: PgPool,
}

impl AuditQuery {
    /// A service reading through `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// The response stream of `ExportEvents`.
pub type ExportResponseStream =
    Pin<Box<dyn Stream<Item = Result<ExportEventsResponse, Status>> + Send>>;

/// Chunks of an export buffered ahead of the caller.
const EXPORT_BUFFER: usize = 2;

/// Who may read events of `filter`: anyone may read a tenant they act for
/// (themselves or a trainer they supervise), through the gateway too, so a
/// trainer sees exactly their own records. Anything wider is an operator
/// power: the operator role in a session that completed MFA, over the
/// operator peer's certificate, never through the gateway.
fn authorize(
    principal: &Principal,
    peer: Option<&PeerIdentity>,
    filter: &EventFilter,
) -> Result<(), ApiError> {
    let own_tenant = filter
        .tenant_id
        .is_some_and(|tenant_id| principal.acts_for(tenant_id));
    if own_tenant || !principal.has_role(Role::Operator) {
        return principal.require_tenant(filter.tenant_id).map(drop);
    }
    fitflow_auth::require_operator_peer(peer)?;
    principal.require_role(Role::Operator)
}

fn stored_event(row: repo::ListedEvent) -> StoredEvent {
    let event = AuditEvent::decode(row.event.as_slice()).ok();
    if event.is_none() {
        tracing::error!(event_id = %row.event_id, "stored audit event does not decode");
    }
    StoredEvent {
        event,
        store_time: Some(prost_types::Timestamp {
            seconds: row.stored_at.timestamp(),
            nanos: i32::try_from(row.stored_at.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        sequence: row.chain_sequence,
        chain_hash: hex::encode(&row.hash),
    }
}

/// Cuts `rows` (at most `page_size + 1`) to a page; returns the cursor of the
/// next page, if there is one.
fn cut_page(rows: &mut Vec<repo::ListedEvent>, page_size: u32) -> Option<PageCursor> {
    let page_size = usize::try_from(page_size).unwrap_or(usize::MAX);
    if rows.len() <= page_size {
        return None;
    }
    rows.truncate(page_size);
    rows.last().map(|last| PageCursor {
        occurred_at: last.occurred_at,
        event_id: last.event_id,
    })
}

fn break_kind(kind: BreakKind) -> ChainBreakKind {
    match kind {
        BreakKind::Missing => ChainBreakKind::Missing,
        BreakKind::EventUnreadable => ChainBreakKind::EventUnreadable,
        BreakKind::ColumnsAltered => ChainBreakKind::ColumnsAltered,
        BreakKind::PrevHashMismatch => ChainBreakKind::PrevHashMismatch,
        BreakKind::HashMismatch => ChainBreakKind::HashMismatch,
        BreakKind::HeadMismatch => ChainBreakKind::HeadMismatch,
    }
}

impl AuditQuery {
    /// Stores the EXPORT access event of an export by `actor`; returns its id.
    async fn record_export(&self, plan: &ExportPlan, actor: Uuid) -> Result<Uuid, ApiError> {
        let now = Utc::now();
        let event = domain::export_event(plan, actor, Uuid::now_v7(), now);
        let valid = domain::validate_event(&event, 0, now).map_err(AuditError::InvalidArgument)?;
        let event_id = valid.event_id;
        repo::store_batch(&self.pool, &[valid])
            .await
            .map_err(AuditError::from)?;
        Ok(event_id)
    }
}

#[tonic::async_trait]
impl AuditService for AuditQuery {
    type ExportEventsStream = ExportResponseStream;

    async fn list_events(
        &self,
        request: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        let principal = fitflow_auth::principal(&request).map_err(status)?;
        let peer = fitflow_auth::peer(&request);
        let filter = domain::validate_list_request(request.get_ref())
            .map_err(|violations| status(AuditError::InvalidArgument(violations)))?;
        authorize(principal, peer, &filter).map_err(status)?;
        let mut rows = repo::list_events(&self.pool, &filter)
            .await
            .map_err(|error| status(AuditError::from(error)))?;
        let next_page_token = cut_page(&mut rows, filter.page_size)
            .map(|cursor| cursor.encode())
            .unwrap_or_default();
        Ok(Response::new(ListEventsResponse {
            events: rows.into_iter().map(stored_event).collect(),
            next_page_token,
        }))
    }

    async fn export_events(
        &self,
        request: Request<ExportEventsRequest>,
    ) -> Result<Response<Self::ExportEventsStream>, Status> {
        let principal = fitflow_auth::principal(&request).map_err(status)?;
        let peer = fitflow_auth::peer(&request);
        let plan = domain::validate_export_request(request.get_ref())
            .map_err(|violations| status(AuditError::InvalidArgument(violations)))?;
        authorize(principal, peer, &plan.filter).map_err(status)?;
        // No event, no export: the EXPORT event is durable before any data leaves.
        let export_event_id = self
            .record_export(&plan, principal.user_id)
            .await
            .map_err(status)?;
        tracing::info!(%export_event_id, actor = %principal.user_id, "audit export started");

        let (chunks, outbound) = mpsc::channel(EXPORT_BUFFER);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut filter = plan.filter;
            let mut first = true;
            loop {
                let mut rows = match repo::list_events(&pool, &filter).await {
                    Ok(rows) => rows,
                    Err(error) => {
                        let _ = chunks.send(Err(status(AuditError::from(error)))).await;
                        return;
                    }
                };
                let next = cut_page(&mut rows, filter.page_size);
                let chunk = ExportEventsResponse {
                    events: rows.into_iter().map(stored_event).collect(),
                    export_event_id: if first {
                        export_event_id.to_string()
                    } else {
                        String::new()
                    },
                };
                first = false;
                if chunks.send(Ok(chunk)).await.is_err() {
                    tracing::warn!(%export_event_id, "audit export abandoned by the caller");
                    return;
                }
                match next {
                    Some(cursor) => filter.after = Some(cursor),
                    None => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(outbound))))
    }

    async fn verify_chain(
        &self,
        request: Request<VerifyChainRequest>,
    ) -> Result<Response<VerifyChainResponse>, Status> {
        let principal = fitflow_auth::principal(&request).map_err(status)?;
        // The peer policy admits only the operator peer here; checked again
        // so an in-process caller cannot skip it.
        fitflow_auth::require_operator_peer(fitflow_auth::peer(&request)).map_err(status)?;
        principal.require_role(Role::Operator).map_err(status)?;
        let source = domain::validate_verify_request(request.get_ref())
            .map_err(|violations| status(AuditError::InvalidArgument(violations)))?;
        let reports = crate::verify_chains(&self.pool, source.as_deref())
            .await
            .map_err(status)?;
        let chains: Vec<ChainVerification> = reports
            .into_iter()
            .map(|report| ChainVerification {
                source_service: report.chain,
                verified_links: i64::try_from(report.verified_links).unwrap_or(i64::MAX),
                intact: report.first_break.is_none(),
                broken_sequence: report.first_break.map_or(0, |broken| broken.sequence),
                break_kind: report
                    .first_break
                    .map_or(ChainBreakKind::Unspecified, |broken| {
                        break_kind(broken.kind)
                    }) as i32,
                broken_event_id: report
                    .broken_event_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
            })
            .collect();
        let intact = chains.iter().all(|chain| chain.intact);
        Ok(Response::new(VerifyChainResponse { chains, intact }))
    }
}

#[cfg(test)]
mod tests {
    use fitflow_proto::audit::ListEventsRequest;

    use super::*;

    fn reader(roles: Vec<Role>, amr: Vec<&str>) -> Principal {
        Principal {
            user_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            roles,
            supervised_trainer_ids: vec![],
            amr: amr.into_iter().map(str::to_owned).collect(),
        }
    }

    fn filter_for(tenant_id: Option<Uuid>) -> EventFilter {
        EventFilter {
            tenant_id,
            ..domain::validate_list_request(&ListEventsRequest::default()).expect("valid")
        }
    }

    #[test]
    fn a_trainer_reads_only_a_tenant_they_act_for_and_an_operator_reads_all() {
        let (trainer, supervised) = (Uuid::new_v4(), Uuid::new_v4());
        let supervisor = |roles, amr| Principal {
            user_id: trainer,
            supervised_trainer_ids: vec![supervised],
            ..reader(roles, amr)
        };
        let gateway = PeerIdentity("gateway".to_owned());
        let operator_peer = PeerIdentity("operator".to_owned());
        let trainer_reader = supervisor(vec![Role::TrainerAdmin], vec![]);
        assert_eq!(
            authorize(&trainer_reader, Some(&gateway), &filter_for(Some(trainer))),
            Ok(())
        );
        assert_eq!(
            authorize(
                &trainer_reader,
                Some(&gateway),
                &filter_for(Some(supervised))
            ),
            Ok(())
        );
        let stranger = authorize(
            &trainer_reader,
            Some(&gateway),
            &filter_for(Some(Uuid::new_v4())),
        );
        assert_eq!(stranger.unwrap_err().reason, "TENANT_NOT_ALLOWED");
        let unscoped = authorize(&trainer_reader, Some(&gateway), &filter_for(None));
        assert_eq!(unscoped.unwrap_err().reason, "TENANT_REQUIRED");
        let operator = supervisor(vec![Role::Operator], vec!["pwd", "otp"]);
        assert_eq!(
            authorize(&operator, Some(&operator_peer), &filter_for(None)),
            Ok(())
        );
    }

    #[test]
    fn an_operator_wide_read_through_the_gateway_is_refused() {
        let operator = reader(vec![Role::Operator], vec!["pwd", "otp"]);
        let gateway = PeerIdentity("gateway".to_owned());
        let refused = authorize(&operator, Some(&gateway), &filter_for(None)).unwrap_err();
        assert_eq!(refused.reason, "PEER_NOT_ALLOWED");
        let refused = authorize(&operator, None, &filter_for(Some(Uuid::new_v4()))).unwrap_err();
        assert_eq!(refused.reason, "PEER_NOT_ALLOWED");
    }

    #[test]
    fn an_operator_wide_read_without_mfa_is_refused() {
        let operator = reader(vec![Role::Operator], vec!["pwd"]);
        let operator_peer = PeerIdentity("operator".to_owned());
        let refused = authorize(&operator, Some(&operator_peer), &filter_for(None)).unwrap_err();
        assert_eq!(refused.reason, "MFA_REQUIRED");
    }

    #[test]
    fn an_operator_reads_their_own_tenant_through_the_gateway_like_any_user() {
        let operator = reader(vec![Role::Operator, Role::Trainer], vec!["pwd"]);
        let gateway = PeerIdentity("gateway".to_owned());
        assert_eq!(
            authorize(
                &operator,
                Some(&gateway),
                &filter_for(Some(operator.user_id))
            ),
            Ok(())
        );
    }
}
