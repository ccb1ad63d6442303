//! The relay: streams the outbox to the audit service, oldest first, one
//! batch at a time, and deletes what the audit service has settled.

use std::collections::HashSet;
use std::time::Duration;

use fitflow_proto::audit::audit_ingest_service_client::AuditIngestServiceClient;
use fitflow_proto::audit::{AuditEvent, IngestRequest, IngestResponse};
use prost::Message as _;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::store::{self, NOTIFY_CHANNEL};
use crate::wake::Wakeups;

/// How a [`Relay`] paces itself.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Events per `IngestRequest`.
    pub batch_size: usize,
    /// Payload bytes per `IngestRequest` (at least one event is always sent),
    /// kept well under the audit service's message size limit.
    pub max_batch_bytes: usize,
    /// How often to look at the outbox when no notification arrives.
    pub poll_interval: Duration,
    /// The first retry delay while the audit service is unreachable.
    pub backoff_min: Duration,
    /// The longest retry delay.
    pub backoff_max: Duration,
    /// How long to wait for the answer to one batch (and to open a stream).
    pub response_timeout: Duration,
    /// How long to keep delivering after shutdown is requested.
    pub drain_timeout: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            max_batch_bytes: 1024 * 1024,
            poll_interval: Duration::from_secs(1),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            response_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// Streams a service's `audit_outbox` to the audit service. Batches go in id
/// order and one at a time, so each source's order is preserved. Rows are
/// deleted once acknowledged, or once rejected (a retry would be rejected
/// again; the rejection is logged with event id and reason, never values).
#[derive(Debug, Clone)]
pub struct Relay {
    pool: PgPool,
    client: AuditIngestServiceClient<Channel>,
    config: RelayConfig,
}

/// Spawns a [`Relay`] with the default [`RelayConfig`]; it returns after
/// `shutdown` is cancelled and it has tried, for at most ~5 s, to deliver
/// what is pending.
pub fn spawn_relay(
    pool: PgPool,
    client: AuditIngestServiceClient<Channel>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(Relay::new(pool, client).run(shutdown))
}

/// Why a delivery attempt stopped; the relay backs off and reopens the stream.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("audit service: {}", .0.code())]
    Audit(#[from] tonic::Status),
    #[error("the ingest stream closed")]
    StreamClosed,
    #[error("the audit service did not answer in time")]
    Timeout,
    #[error("the audit service settled none of the batch")]
    NoProgress,
}

/// An open `Ingest` stream: requests go in, one response per batch comes out.
struct IngestStream {
    requests: mpsc::Sender<IngestRequest>,
    responses: Streaming<IngestResponse>,
}

impl Relay {
    /// A relay from `pool`'s outbox to `client`, with the default configuration.
    pub fn new(pool: PgPool, client: AuditIngestServiceClient<Channel>) -> Self {
        Self {
            pool,
            client,
            config: RelayConfig::default(),
        }
    }

    /// The same relay with `config`.
    pub fn with_config(self, config: RelayConfig) -> Self {
        Self { config, ..self }
    }

    /// Relays until `shutdown` is cancelled, then drains for at most
    /// `drain_timeout` and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        // One relay per outbox: with several replicas of a service, the others
        // wait here as standbys and take over when the leader's session ends.
        let Some(leadership) = self.become_leader(&shutdown).await else {
            return;
        };
        self.relay_as_leader(&shutdown).await;
        // Closing the session releases the lock for a standby.
        let _ = sqlx::Connection::close(leadership).await;
    }

    /// Waits until this relay holds its outbox's leader lock (a session-level
    /// advisory lock keyed by the schema, on a connection kept out of the pool),
    /// or until shutdown.
    async fn become_leader(&self, shutdown: &CancellationToken) -> Option<sqlx::PgConnection> {
        let mut waiting_logged = false;
        loop {
            match store::try_lead(&self.pool).await {
                Ok(Some(connection)) => return Some(connection),
                Ok(None) if !waiting_logged => {
                    tracing::info!("another relay leads this outbox; standing by");
                    waiting_logged = true;
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "cannot take the outbox relay lock"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    async fn relay_as_leader(&self, shutdown: &CancellationToken) {
        let mut stream = None;
        // Listening starts before the first read, so a commit between a read
        // and the wait still wakes us (the wake-up stays pending). The bell
        // rings when this process records an event; NOTIFY comes from other
        // processes (an operator's replay).
        let bell = match schema_of(&self.pool).await {
            Ok(schema) => Some(crate::doorbell::listen(&schema)),
            Err(error) => {
                tracing::warn!(%error, "cannot name the outbox's schema; polling only");
                None
            }
        };
        let wakeups = Wakeups::spawn(
            self.pool.clone(),
            NOTIFY_CHANNEL,
            "audit",
            self.config.poll_interval,
            shutdown.child_token(),
        );
        let mut failures: u32 = 0;
        let mut recheck = Recheck::default();
        while !shutdown.is_cancelled() {
            // Shutdown interrupts a delivery stuck on an unreachable audit
            // service (connecting can take the whole response timeout); the
            // drain below tries once more within its own deadline. Cutting a
            // delivery short is safe: ingestion is idempotent by (source,
            // event id), so a batch stored but not yet deleted is resent.
            let delivered = tokio::select! {
                result = self.deliver_pending(&mut stream) => result,
                () = shutdown.cancelled() => break,
            };
            match delivered {
                Ok(sent) => {
                    failures = 0;
                    let wait = recheck.after_delivery(sent, self.config.poll_interval);
                    let rung = async {
                        match &bell {
                            Some(bell) => bell.notified().await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = tokio::time::sleep(wait) => {}
                        () = wakeups.notified() => {}
                        () = rung => {
                            recheck.rung();
                            // Let the recording transaction commit first.
                            tokio::time::sleep(RING_SETTLE).await;
                        }
                    }
                }
                Err(error) => {
                    stream = None;
                    let delay = backoff_delay(
                        failures,
                        self.config.backoff_min,
                        self.config.backoff_max,
                        random_fraction(),
                    );
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, retry_in_ms = delay.as_millis(), "audit relay cannot deliver");
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        match tokio::time::timeout(self.config.drain_timeout, self.deliver_pending(&mut stream))
            .await
        {
            Ok(Ok(_)) => tracing::info!("audit relay drained the outbox and stopped"),
            Ok(Err(error)) => tracing::warn!(%error, "audit relay stopped with events pending"),
            Err(_) => {
                tracing::warn!("audit relay stopped at its drain deadline with events pending")
            }
        }
    }

    /// Sends batches until the outbox is empty; how many events it sent.
    async fn deliver_pending(
        &self,
        stream: &mut Option<IngestStream>,
    ) -> Result<usize, RelayError> {
        let mut sent = 0;
        loop {
            let mut pending = store::oldest(&self.pool, self.config.batch_size).await?;
            if pending.is_empty() {
                return Ok(sent);
            }
            sent += pending.len();
            pending.truncate(within_bytes(&pending, self.config.max_batch_bytes));
            let mut batch_ids = Vec::with_capacity(pending.len());
            let mut events = Vec::with_capacity(pending.len());
            let mut undecodable = Vec::new();
            let mut mislabelled = Vec::new();
            for row in pending {
                match AuditEvent::decode(row.payload.as_slice()) {
                    // Acknowledgements name the event's own id: a row filed
                    // under another id could never be settled and would hold
                    // every event behind it (only a hand-written row can be).
                    Ok(event) if Uuid::try_parse(&event.event_id).ok() != Some(row.event_id) => {
                        tracing::error!(event_id = %row.event_id, "outbox row and its event disagree on the id; moved to outbox_dead_letters");
                        crate::dead_lettered("audit");
                        mislabelled.push((
                            row.event_id,
                            "the row's event_id differs from its event's".to_owned(),
                        ));
                    }
                    Ok(event) => {
                        batch_ids.push(row.event_id);
                        events.push(event);
                    }
                    Err(_) => {
                        tracing::error!(event_id = %row.event_id, "outbox payload does not decode; dropping it");
                        undecodable.push(row.event_id);
                    }
                }
            }
            store::delete(&self.pool, &undecodable).await?;
            store::dead_letter_events(&self.pool, &mislabelled).await?;
            if events.is_empty() {
                continue;
            }

            let response = self.exchange(stream, IngestRequest { events }).await?;
            let settled = settle(&batch_ids, &response);
            let rejected = rejections(&batch_ids, &response);
            for (event_id, reason) in &rejected {
                tracing::error!(
                    %event_id,
                    %reason,
                    "audit rejected an outbox event for good; moved to outbox_dead_letters"
                );
                crate::dead_lettered("audit");
            }
            if settled.is_empty() {
                return Err(RelayError::NoProgress);
            }
            // Rejected events leave the outbox for the dead letters, so the
            // events behind them flow; an operator can replay them.
            store::dead_letter_events(&self.pool, &rejected).await?;
            let deleted = store::delete(&self.pool, &settled).await?;
            tracing::debug!(sent = batch_ids.len(), deleted, "audit batch delivered");
        }
    }

    /// Sends one batch on the open stream (opening one if needed) and waits for its answer.
    async fn exchange(
        &self,
        stream: &mut Option<IngestStream>,
        request: IngestRequest,
    ) -> Result<IngestResponse, RelayError> {
        let open = match stream {
            Some(open) => open,
            None => stream.insert(self.open().await?),
        };
        open.requests
            .send(request)
            .await
            .map_err(|_| RelayError::StreamClosed)?;
        match tokio::time::timeout(self.config.response_timeout, open.responses.message()).await {
            Err(_) => Err(RelayError::Timeout),
            Ok(Err(status)) => Err(RelayError::Audit(status)),
            Ok(Ok(None)) => Err(RelayError::StreamClosed),
            Ok(Ok(Some(response))) => Ok(response),
        }
    }

    async fn open(&self) -> Result<IngestStream, RelayError> {
        let (requests, outbound) = mpsc::channel(1);
        let mut client = self.client.clone();
        let response = tokio::time::timeout(
            self.config.response_timeout,
            client.ingest(ReceiverStream::new(outbound)),
        )
        .await
        .map_err(|_| RelayError::Timeout)??;
        Ok(IngestStream {
            requests,
            responses: response.into_inner(),
        })
    }
}

/// How long a relay woken by its bell waits before reading: the ring comes
/// from inside the recording transaction, a moment before its commit.
const RING_SETTLE: Duration = Duration::from_millis(1);

/// When to look again after a ring found nothing: a recording transaction
/// may commit well after it rang. The looks back off from 4 ms by fourfold
/// steps to the poll interval; anything delivered, or a new ring, starts
/// over.
#[derive(Debug, Default)]
struct Recheck {
    next: Option<Duration>,
}

impl Recheck {
    const FIRST: Duration = Duration::from_millis(4);

    /// A ring arrived: the next read that finds nothing looks again soon.
    fn rung(&mut self) {
        self.next = Some(Self::FIRST);
    }

    /// How long to wait after a delivery that sent `sent` events.
    fn after_delivery(&mut self, sent: usize, poll_interval: Duration) -> Duration {
        if sent > 0 {
            // More may be committing: look again at once if rung, else poll.
            self.next = None;
            return poll_interval;
        }
        match self.next {
            Some(wait) if wait < poll_interval => {
                self.next = Some(wait.saturating_mul(4));
                wait
            }
            _ => {
                self.next = None;
                poll_interval
            }
        }
    }
}

/// The schema whose outbox `pool` reaches (its pinned `search_path`).
async fn schema_of(pool: &PgPool) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(pool)
        .await
}

/// How many of the oldest `pending` rows fit in `max_bytes` of payload (at least one).
fn within_bytes(pending: &[store::PendingEvent], max_bytes: usize) -> usize {
    let mut total = 0_usize;
    let fitting = pending
        .iter()
        .take_while(|row| {
            total = total.saturating_add(row.payload.len());
            total <= max_bytes
        })
        .count();
    fitting.max(1)
}

/// The event ids of `batch_ids` that `response` settled: acknowledged, or
/// rejected (by index). Ids the batch did not hold are ignored.
fn settle(batch_ids: &[Uuid], response: &IngestResponse) -> Vec<Uuid> {
    let acknowledged: HashSet<Uuid> = response
        .acknowledged_event_ids
        .iter()
        .filter_map(|id| Uuid::try_parse(id).ok())
        .collect();
    let rejected: HashSet<Uuid> = response
        .rejected
        .iter()
        .filter_map(|rejected| {
            batch_ids
                .get(usize::try_from(rejected.index).ok()?)
                .copied()
        })
        .collect();
    batch_ids
        .iter()
        .filter(|id| acknowledged.contains(id) || rejected.contains(id))
        .copied()
        .collect()
}

/// The event ids of `batch_ids` that `response` rejected, with audit's reason.
fn rejections(batch_ids: &[Uuid], response: &IngestResponse) -> Vec<(Uuid, String)> {
    response
        .rejected
        .iter()
        .filter_map(|rejected| {
            let id = batch_ids.get(usize::try_from(rejected.index).ok()?)?;
            Some((*id, rejected.reason.clone()))
        })
        .collect()
}

/// The delay before retry number `attempt` (0-based): `min · 2^attempt`,
/// capped at `max`, scaled into its upper half by `random` in `[0, 1)`
/// ("equal jitter"), so relays of many replicas do not retry in step.
pub(crate) fn backoff_delay(attempt: u32, min: Duration, max: Duration, random: f64) -> Duration {
    let exponential = min
        .saturating_mul(2_u32.saturating_pow(attempt.min(31)))
        .min(max);
    exponential.mul_f64(0.5 + random.clamp(0.0, 1.0) / 2.0)
}

fn random_fraction() -> f64 {
    let bits = Uuid::new_v4().as_u128() & 0xFFFF_FFFF;
    bits as f64 / (u64::from(u32::MAX) + 1) as f64
}

#[cfg(test)]
mod tests {
    use fitflow_proto::audit::RejectedEvent;

    use super::*;

    #[test]
    fn after_a_ring_that_found_nothing_the_relay_looks_again_sooner_then_later() {
        let poll = Duration::from_secs(1);
        let mut recheck = Recheck::default();
        assert_eq!(recheck.after_delivery(0, poll), poll, "no ring: poll");
        recheck.rung();
        let waits: Vec<u64> = (0..6)
            .map(|_| recheck.after_delivery(0, poll).as_millis() as u64)
            .collect();
        assert_eq!(waits, [4, 16, 64, 256, 1000, 1000]);
        recheck.rung();
        assert_eq!(
            recheck.after_delivery(3, poll),
            poll,
            "delivered: start over"
        );
        assert_eq!(recheck.after_delivery(0, poll), poll);
    }

    #[test]
    fn backoff_doubles_from_the_minimum_and_stops_at_the_cap() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(30));
        assert_eq!(backoff_delay(0, min, max, 1.0), Duration::from_millis(100));
        assert_eq!(backoff_delay(0, min, max, 0.0), Duration::from_millis(50));
        assert_eq!(backoff_delay(3, min, max, 0.0), Duration::from_millis(400));
        assert_eq!(backoff_delay(40, min, max, 0.0), Duration::from_secs(15));
        assert_eq!(backoff_delay(40, min, max, 1.0), max);
    }

    #[test]
    fn a_batch_is_cut_at_its_byte_budget_but_never_empty() {
        let rows = |sizes: &[usize]| -> Vec<store::PendingEvent> {
            sizes
                .iter()
                .map(|size| store::PendingEvent {
                    event_id: Uuid::new_v4(),
                    payload: vec![0; *size],
                })
                .collect()
        };
        assert_eq!(within_bytes(&rows(&[400, 400, 400]), 1_000), 2);
        assert_eq!(within_bytes(&rows(&[400, 400]), 1_000), 2);
        assert_eq!(within_bytes(&rows(&[5_000, 1]), 1_000), 1);
    }

    #[test]
    fn acknowledged_and_rejected_events_are_settled_and_strangers_ignored() {
        let ids = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
        let response = IngestResponse {
            acknowledged_event_ids: vec![ids[0].to_string(), Uuid::new_v4().to_string()],
            rejected: vec![
                RejectedEvent {
                    event_id: "anything".to_owned(),
                    index: 2,
                    reason: "bad".to_owned(),
                },
                RejectedEvent {
                    event_id: String::new(),
                    index: 99,
                    reason: "out of range".to_owned(),
                },
            ],
        };
        assert_eq!(settle(&ids, &response), [ids[0], ids[2]]);
    }
}
