//! The tonic services: decode requests into domain drafts ([`codec`]),
//! authorize, call a use case, encode. Every status is built by
//! `ApiError::into_status`, and proto types appear only in this module.

pub(crate) mod codec;

use std::pin::Pin;
use std::sync::{Arc, LazyLock};

use chrono::Utc;
use fitflow_auth::{PeerIdentity, Principal, Role};
use fitflow_error::ApiError;
use fitflow_proto::audit::audit_ingest_service_server::AuditIngestService;
use fitflow_proto::audit::audit_service_server::AuditService;
use fitflow_proto::audit::{
    ExportEventsRequest, ExportEventsResponse, IngestRequest, IngestResponse, ListEventsRequest,
    ListEventsResponse, VerifyChainRequest, VerifyChainResponse,
};
use futures::Stream;
use ring::rand::{SecureRandom as _, SystemRandom};
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::domain::{self, EventFilter, PageBinding, PageTokenKey};
use crate::{AuditError, ERROR_DOMAIN, ingest, trail};

/// Batches answered but not yet read by the caller, per stream.
const RESPONSE_BUFFER: usize = 4;

fn status(error: impl Into<ApiError>) -> Status {
    error.into().into_status(ERROR_DOMAIN)
}

/// The status of a refused export: EXPORTS_BUSY with a retry hint.
fn busy_status(error: AuditError) -> Status {
    use tonic_types::StatusExt as _;
    let AuditError::ExportsBusy { retry_after } = error else {
        return status(error);
    };
    let status = status(error);
    let mut details = status.get_error_details();
    details.set_retry_info(Some(retry_after));
    Status::with_error_details(status.code(), status.message(), details)
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

    /// Decodes, stores and answers one batch.
    async fn ingest_batch(
        &self,
        peer: &str,
        request: IngestRequest,
    ) -> Result<IngestResponse, AuditError> {
        let drafts: Vec<_> = request.events.iter().map(codec::event_draft).collect();
        let outcome = ingest::ingest_batch(&self.pool, peer, &drafts, Utc::now()).await?;
        Ok(IngestResponse {
            acknowledged_event_ids: outcome
                .acknowledged
                .iter()
                .map(ToString::to_string)
                .collect(),
            rejected: outcome
                .rejected
                .into_iter()
                .map(codec::rejected_event)
                .collect(),
        })
    }
}

/// Authorization: ingestion is keyed by source, so a stream without an mTLS
/// peer identity has no source to be keyed by and is refused. (The server's
/// peer policy already refuses one; this keeps the handler safe on its own.)
fn require_peer<T>(request: &Request<T>) -> Result<String, AuditError> {
    fitflow_auth::peer(request)
        .map(|peer| peer.0.clone())
        .ok_or(AuditError::PeerRequired)
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
        let peer = require_peer(&request).map_err(status)?;
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
                let outcome = service.ingest_batch(&peer, batch).await;
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
    page_tokens: Arc<PageTokenKey>,
    exports: Arc<Semaphore>,
}

/// Exports one process runs at once. Each records its EXPORT event on the
/// audit service's own chain, whose head serialises them; unbounded, 500
/// concurrent exports held all 16 pool connections waiting on that lock and
/// 40 % of them failed with DATABASE_UNAVAILABLE, while listings and
/// ingestion queued behind them. A few at a time leave the pool to the rest.
const MAX_CONCURRENT_EXPORTS: usize = 4;

/// How long a refused export is told to wait before trying again.
const EXPORTS_BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl AuditQuery {
    /// A service reading through `pool`. Its page tokens are authenticated
    /// with a key of 32 random bytes drawn once per process, so a token is
    /// good only on the process that issued it, until it restarts: a caller
    /// whose token is refused starts the listing again from the first page.
    /// Replicas behind one address need [`AuditQuery::with_page_token_key`].
    pub fn new(pool: PgPool) -> Self {
        static PROCESS_KEY: LazyLock<Arc<PageTokenKey>> =
            LazyLock::new(|| Arc::new(PageTokenKey::new(&random_key())));
        Self {
            pool,
            page_tokens: Arc::clone(&PROCESS_KEY),
            exports: Arc::new(Semaphore::new(MAX_CONCURRENT_EXPORTS)),
        }
    }

    /// The same service, authenticating page tokens with `secret` instead,
    /// so that replicas sharing it accept each other's tokens and tokens
    /// survive a restart.
    pub fn with_page_token_key(self, secret: &[u8; 32]) -> Self {
        Self {
            page_tokens: Arc::new(PageTokenKey::new(secret)),
            ..self
        }
    }
}

/// 32 bytes from the operating system's generator.
fn random_key() -> [u8; 32] {
    let mut key = [0; 32];
    if SystemRandom::new().fill(&mut key).is_err() {
        // ring found no generator; uuid's v4 ids come from the OS generator too.
        key[..16].copy_from_slice(Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    }
    key
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

impl AuditQuery {
    /// Stores the EXPORT access event of an export by `actor`; returns its id.
    async fn record_export(
        &self,
        plan: &domain::ExportPlan,
        actor: Uuid,
    ) -> Result<Uuid, AuditError> {
        let now = Utc::now();
        let event = codec::encoded(domain::export_event(plan, actor, Uuid::now_v7(), now));
        trail::record_export(&self.pool, &event, now).await
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
        let draft = codec::list_draft(request.get_ref());
        let binding = PageBinding::new(principal.user_id, &draft.filter);
        let filter = domain::validate_list_request(&draft, &self.page_tokens, &binding)
            .map_err(|violations| status(AuditError::InvalidArgument(violations)))?;
        authorize(principal, peer, &filter).map_err(status)?;
        let page = trail::list_page(&self.pool, &filter)
            .await
            .map_err(status)?;
        Ok(Response::new(ListEventsResponse {
            events: page.rows.into_iter().map(codec::stored_event).collect(),
            next_page_token: page
                .next
                .map(|cursor| cursor.encode(&self.page_tokens, &binding))
                .unwrap_or_default(),
        }))
    }

    async fn export_events(
        &self,
        request: Request<ExportEventsRequest>,
    ) -> Result<Response<Self::ExportEventsStream>, Status> {
        let principal = fitflow_auth::principal(&request).map_err(status)?;
        let peer = fitflow_auth::peer(&request);
        let plan = domain::validate_export_request(&codec::export_draft(request.get_ref()))
            .map_err(|violations| status(AuditError::InvalidArgument(violations)))?;
        authorize(principal, peer, &plan.filter).map_err(status)?;
        // Held until the stream ends; refused before anything is recorded.
        let permit = Arc::clone(&self.exports).try_acquire_owned().map_err(|_| {
            busy_status(AuditError::ExportsBusy {
                retry_after: EXPORTS_BUSY_RETRY,
            })
        })?;
        // No event, no export: the EXPORT event is durable before any data leaves.
        let export_event_id = self
            .record_export(&plan, principal.user_id)
            .await
            .map_err(status)?;
        tracing::info!(%export_event_id, actor = %principal.user_id, "audit export started");

        let (chunks, outbound) = mpsc::channel(EXPORT_BUFFER);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut filter = plan.filter;
            let mut first = true;
            loop {
                let page = match trail::list_page(&pool, &filter).await {
                    Ok(page) => page,
                    Err(error) => {
                        let _ = chunks.send(Err(status(error))).await;
                        return;
                    }
                };
                let chunk = ExportEventsResponse {
                    events: page.rows.into_iter().map(codec::stored_event).collect(),
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
                match page.next {
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
        let source = domain::validate_verify_request(&request.get_ref().source_service)
            .map_err(|violations| status(AuditError::InvalidArgument(violations)))?;
        let reports = crate::verify_chains(&self.pool, source.as_deref())
            .await
            .map_err(status)?;
        let chains: Vec<_> = reports.into_iter().map(codec::chain_verification).collect();
        let intact = chains.iter().all(|chain| chain.intact);
        Ok(Response::new(VerifyChainResponse { chains, intact }))
    }
}

#[cfg(test)]
mod authorization_tests {
    use super::*;

    fn reader(roles: Vec<Role>, amr: Vec<&str>) -> Principal {
        Principal {
            user_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            roles,
            supervised_trainer_ids: vec![],
            amr: amr.into_iter().map(str::to_owned).collect(),
            studio_ids: Vec::new(),
            claims_truncated: false,
            claims_partial: false,
        }
    }

    fn filter_for(tenant_id: Option<Uuid>) -> EventFilter {
        EventFilter {
            resource_type: None,
            resource_id: None,
            actor_user_id: None,
            start_time: None,
            end_time: None,
            source_service: None,
            log: None,
            tenant_id,
            page_size: 50,
            after: None,
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
