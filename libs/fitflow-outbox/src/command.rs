//! Reliable effects between services (DESIGN.md §11): a service writes a
//! command for another service's idempotent internal RPC with [`send`], in
//! the transaction that makes the change; the [`CommandRelay`] delivers it
//! over mTLS, oldest first, and deletes it once the receiver has answered
//! OK. A receiver that refuses it for good (a permanent gRPC code) moves it
//! to `outbox_dead_letters` and the commands behind it go on; a transient
//! failure (unreachable, overloaded, deadline) is retried with backoff, in
//! order. Delivery is at least once; the receiver makes the effect happen
//! once by calling [`accept_once`] in the transaction that applies it.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use sqlx::{PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::OutboxError;
use crate::relay::backoff_delay;
use crate::store;
use crate::wake::Wakeups;

/// The channel on which [`send`] wakes the command relay (delivered at commit).
pub const COMMAND_NOTIFY_CHANNEL: &str = "fitflow_command_outbox";
/// The request metadata key carrying a command's id to its receiver.
pub const COMMAND_ID_HEADER: &str = "fitflow-command-id";

/// Writes a command for `target`'s RPC `method` (its full gRPC path,
/// `/pkg.Service/Method`) with `request` as its message, on `conn` — which
/// should be inside the transaction that makes the change — and wakes the
/// relay at commit. Returns the command's id.
pub async fn send(
    conn: &mut PgConnection,
    target: &str,
    method: &str,
    request: &impl Message,
) -> Result<Uuid, OutboxError> {
    if !(method.starts_with('/') && method[1..].contains('/')) {
        return Err(OutboxError::InvalidEvent(
            "a command's method is a full gRPC path",
        ));
    }
    let command_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO command_outbox (command_id, target, method, payload) VALUES ($1, $2, $3, $4)",
    )
    .bind(command_id)
    .bind(target)
    .bind(method)
    .bind(request.encode_to_vec())
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(COMMAND_NOTIFY_CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(command_id)
}

/// The command id a relayed request carries, if it is one.
pub fn command_id<T>(request: &tonic::Request<T>) -> Option<Uuid> {
    request
        .metadata()
        .get(COMMAND_ID_HEADER)?
        .to_str()
        .ok()
        .and_then(|id| Uuid::try_parse(id).ok())
}

/// On the receiving side, in the transaction that applies a command's
/// effect: true the first time `command_id` is seen, false for a
/// redelivery (whose effect has already been committed). Concurrent
/// deliveries of one id serialise on its row, so exactly one sees true.
pub async fn accept_once(
    conn: &mut PgConnection,
    command_id: Uuid,
    source: &str,
) -> Result<bool, OutboxError> {
    let inserted = sqlx::query(
        "INSERT INTO received_commands (command_id, source) VALUES ($1, $2) \
         ON CONFLICT (command_id) DO NOTHING",
    )
    .bind(command_id)
    .bind(source)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Whether a receiver's answer means "never" (dead-letter it) rather than
/// "not now" (retry it). Unknown codes are retried: losing a command is
/// worse than delaying the ones behind it.
pub fn is_permanent(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unimplemented
            | Code::Unauthenticated
    )
}

/// Opens a channel to a service by name; its connecting and handshake must
/// be bounded (`fitflow_server::client::channel` bounds them), so that a
/// receiver that accepts the TCP connection but never answers (a hung
/// process, a port held by something else) does not stall the relay.
pub type Channels = Arc<dyn Fn(&str) -> Result<Channel, String> + Send + Sync>;

/// How a [`CommandRelay`] paces itself.
#[derive(Debug, Clone)]
pub struct CommandRelayConfig {
    /// Commands read per round.
    pub batch_size: i64,
    /// How often to look at the outbox when no notification arrives.
    pub poll_interval: Duration,
    /// The first retry delay after a transient failure.
    pub backoff_min: Duration,
    /// The longest retry delay.
    pub backoff_max: Duration,
    /// The deadline of one delivery.
    pub call_timeout: Duration,
    /// Transient failures of one command before it is dead-lettered.
    pub max_attempts: i32,
}

impl Default for CommandRelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 100,
            poll_interval: Duration::from_secs(1),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            call_timeout: Duration::from_secs(10),
            max_attempts: 1_000,
        }
    }
}

/// Delivers a service's `command_outbox`. One relay per schema leads (a
/// session advisory lock); replicas stand by.
pub struct CommandRelay {
    pool: PgPool,
    channels: Channels,
    config: CommandRelayConfig,
}

/// Spawns a [`CommandRelay`] with the default configuration; it returns
/// after `shutdown` is cancelled.
pub fn spawn_command_relay(
    pool: PgPool,
    channels: Channels,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(CommandRelay::new(pool, channels).run(shutdown))
}

/// The outcome of one delivery attempt.
enum Delivery {
    Delivered,
    Refused(String),
    Retry(String),
}

impl CommandRelay {
    /// A relay from `pool`'s command outbox, reaching services through `channels`.
    pub fn new(pool: PgPool, channels: Channels) -> Self {
        Self {
            pool,
            channels,
            config: CommandRelayConfig::default(),
        }
    }

    /// The same relay with `config`.
    pub fn with_config(self, config: CommandRelayConfig) -> Self {
        Self { config, ..self }
    }

    /// Delivers until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let leadership = loop {
            match store::try_lead_as(&self.pool, "command_outbox_relay").await {
                Ok(Some(connection)) => break connection,
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "cannot take the command relay lock"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        };
        let wakeups = Wakeups::spawn(
            self.pool.clone(),
            COMMAND_NOTIFY_CHANNEL,
            "command",
            self.config.poll_interval,
            shutdown.child_token(),
        );
        let mut failures: u32 = 0;
        while !shutdown.is_cancelled() {
            let delay = match self.deliver_pending().await {
                Ok(true) => {
                    failures = 0;
                    None
                }
                Ok(false) => {
                    let delay = backoff_delay(
                        failures,
                        self.config.backoff_min,
                        self.config.backoff_max,
                        0.5,
                    );
                    failures = failures.saturating_add(1);
                    Some(delay)
                }
                Err(error) => {
                    tracing::warn!(%error, "command relay cannot read its outbox");
                    Some(self.config.backoff_max.min(Duration::from_secs(5)))
                }
            };
            let wait = delay.unwrap_or(self.config.poll_interval);
            // While backing off, a new command does not cut the wait short.
            let notified = async {
                if delay.is_none() {
                    wakeups.notified().await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(wait) => {}
                () = notified => {}
            }
        }
        let _ = sqlx::Connection::close(leadership).await;
    }

    /// Delivers pending commands oldest first; false when one must be
    /// retried later (the ones behind it wait, so order holds).
    async fn deliver_pending(&self) -> Result<bool, sqlx::Error> {
        loop {
            let pending = store::oldest_commands(&self.pool, self.config.batch_size).await?;
            if pending.is_empty() {
                return Ok(true);
            }
            for command in pending {
                match self.deliver(&command).await {
                    Delivery::Delivered => store::delete_command(&self.pool, command.id).await?,
                    Delivery::Refused(reason) => {
                        store::dead_letter_command(&self.pool, &command, &reason).await?;
                        crate::dead_lettered("command");
                        tracing::error!(
                            command_id = %command.command_id,
                            target = %command.target,
                            method = %command.method,
                            %reason,
                            "a service refused a command for good; moved to outbox_dead_letters"
                        );
                    }
                    Delivery::Retry(reason) if command.attempts + 1 >= self.config.max_attempts => {
                        let reason =
                            format!("gave up after {} attempts: {reason}", command.attempts + 1);
                        store::dead_letter_command(&self.pool, &command, &reason).await?;
                        crate::dead_lettered("command");
                        tracing::error!(command_id = %command.command_id, %reason, "command dead-lettered");
                    }
                    Delivery::Retry(reason) => {
                        store::record_attempt(&self.pool, command.id, &reason).await?;
                        tracing::warn!(
                            command_id = %command.command_id,
                            target = %command.target,
                            %reason,
                            "command not delivered; retrying"
                        );
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// One delivery attempt, bounded by [`CommandRelayConfig::call_timeout`]
    /// once connected and by the channel's own bounds before.
    async fn deliver(&self, command: &store::PendingCommand) -> Delivery {
        let channel = match (self.channels)(&command.target) {
            Ok(channel) => channel,
            Err(error) => return Delivery::Retry(format!("no channel: {error}")),
        };
        let Ok(path) = http::uri::PathAndQuery::from_str(&command.method) else {
            return Delivery::Refused("the method is not a gRPC path".to_owned());
        };
        let mut grpc = tonic::client::Grpc::new(channel);
        if let Err(error) = grpc.ready().await {
            return Delivery::Retry(format!("not ready: {error}"));
        }
        let mut request = tonic::Request::new(command.payload.clone());
        request.set_timeout(self.config.call_timeout);
        if let Ok(value) = command.command_id.to_string().parse() {
            request.metadata_mut().insert(COMMAND_ID_HEADER, value);
        }
        fitflow_telemetry::inject_current_context(request.metadata_mut());
        match grpc.unary(request, path, RawCodec).await {
            Ok(_) => Delivery::Delivered,
            Err(status) if is_permanent(status.code()) => {
                Delivery::Refused(format!("{:?}", status.code()))
            }
            Err(status) => Delivery::Retry(format!("{:?}", status.code())),
        }
    }
}

/// Passes already-encoded messages through: the relay neither knows nor
/// needs the command's message type.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf as _;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_permanent_and_outages_are_retried() {
        for code in [
            Code::InvalidArgument,
            Code::PermissionDenied,
            Code::NotFound,
            Code::FailedPrecondition,
            Code::Unimplemented,
        ] {
            assert!(is_permanent(code), "{code:?} is permanent");
        }
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
            Code::Aborted,
            Code::Internal,
            Code::Unknown,
        ] {
            assert!(!is_permanent(code), "{code:?} is retried");
        }
    }
}
