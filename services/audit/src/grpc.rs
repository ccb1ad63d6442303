//! The tonic services: decode, validate, authorize, call the domain and the
//! repository, encode. Every status is built by `ApiError::into_status`.

use std::pin::Pin;

use chrono::Utc;
use fitflow_auth::Role;
use fitflow_error::ApiError;
use fitflow_proto::audit::audit_ingest_service_server::AuditIngestService;
use fitflow_proto::audit::audit_service_server::AuditService;
use fitflow_proto::audit::{
    AuditEvent, IngestRequest, IngestResponse, ListEventsRequest, ListEventsResponse, StoredEvent,
};
use futures::Stream;
use prost::Message as _;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::domain::{self, PageCursor};
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
}

impl AuditIngest {
    /// A service storing through `pool` (the runtime role's pool).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
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
                let batch = match batches.message().await {
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

/// `AuditService`: lets operators list stored events.
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

#[tonic::async_trait]
impl AuditService for AuditQuery {
    async fn list_events(
        &self,
        request: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        let principal = fitflow_auth::principal(&request).map_err(status)?;
        if !principal.has_role(Role::Operator) {
            return Err(status(AuditError::OperatorRequired));
        }
        let filter = domain::validate_list_request(request.get_ref())
            .map_err(|violations| status(AuditError::InvalidArgument(violations)))?;
        let mut rows = repo::list_events(&self.pool, &filter)
            .await
            .map_err(|error| status(AuditError::from(error)))?;

        let page_size = usize::try_from(filter.page_size).unwrap_or(usize::MAX);
        let next_page_token = if rows.len() > page_size {
            rows.truncate(page_size);
            rows.last()
                .map(|last| {
                    PageCursor {
                        occurred_at: last.occurred_at,
                        event_id: last.event_id,
                    }
                    .encode()
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        let events = rows
            .into_iter()
            .map(|row| {
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
            })
            .collect();
        Ok(Response::new(ListEventsResponse {
            events,
            next_page_token,
        }))
    }
}
