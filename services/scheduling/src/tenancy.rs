//! What scheduling asks the tenancy service: a trainer's IANA time zone
//! (`GetTrainer`, the user's token forwarded), the zone availability rules
//! are read in. A zone is reused for [`ZONE_TTL`] and asked once however
//! many requests want it at once: 500 concurrent free-slot searches for
//! one trainer made 500 `GetTrainer` calls, and tenancy, queueing them,
//! timed most of them out (DEPENDENCY_UNAVAILABLE). Callers have already
//! checked that the user acts for the trainer; the zone is not a secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use fitflow_proto::tenancy::GetTrainerRequest;
use fitflow_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use fitflow_server::client::forwarding_request;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::SchedulingError;

/// Longest wait for tenancy when the caller set no shorter deadline.
const ZONE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a trainer's zone is reused: a zone changed in tenancy applies
/// here within this.
pub(crate) const ZONE_TTL: Duration = Duration::from_secs(60);
/// Most trainers whose zones are kept; beyond it, stale ones are dropped
/// (and all, if none is stale).
const MAX_CACHED: usize = 10_000;

/// A trainer's zone, asked once: every request that wants it while it is
/// being asked waits for the same answer; a failed ask leaves it empty for
/// the next request to try again.
struct Cached {
    zone: Arc<OnceCell<chrono_tz::Tz>>,
    since: Instant,
}

/// Trainers' time zones, from tenancy over mTLS.
#[derive(Clone)]
pub struct TrainerZones {
    client: TenancyServiceClient<Channel>,
    cache: Arc<Mutex<HashMap<Uuid, Cached>>>,
}

impl TrainerZones {
    /// Asks tenancy over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: TenancyServiceClient::new(channel),
            cache: Arc::default(),
        }
    }

    /// The trainer's zone from their tenancy profile (asked as the user
    /// whose `bearer` token this is, who acts for the trainer); UTC for a
    /// trainer without a profile (or with a zone this build does not know),
    /// as documentation does. Reused for [`ZONE_TTL`].
    pub async fn zone(
        &self,
        bearer: &str,
        trainer_id: Uuid,
    ) -> Result<chrono_tz::Tz, SchedulingError> {
        let cell = self.cell(trainer_id);
        cell.get_or_try_init(|| self.ask(bearer, trainer_id))
            .await
            .copied()
    }

    /// The cell holding (or about to hold) the trainer's zone.
    fn cell(&self, trainer_id: Uuid) -> Arc<OnceCell<chrono_tz::Tz>> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if let Some(cached) = cache.get(&trainer_id)
            && now.duration_since(cached.since) < ZONE_TTL
        {
            return Arc::clone(&cached.zone);
        }
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, cached| now.duration_since(cached.since) < ZONE_TTL);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        let zone = Arc::new(OnceCell::new());
        cache.insert(
            trainer_id,
            Cached {
                zone: Arc::clone(&zone),
                since: now,
            },
        );
        zone
    }

    /// Tenancy's answer.
    async fn ask(&self, bearer: &str, trainer_id: Uuid) -> Result<chrono_tz::Tz, SchedulingError> {
        let request = forwarding_request(
            GetTrainerRequest {
                trainer_id: trainer_id.to_string(),
            },
            bearer,
            ZONE_TIMEOUT,
        )
        .map_err(|_| SchedulingError::TrainerNotFound)?;
        let mut client = self.client.clone();
        match client.get_trainer(request).await {
            Ok(answer) => Ok(answer
                .into_inner()
                .trainer
                .and_then(|trainer| trainer.time_zone.parse().ok())
                .unwrap_or(chrono_tz::UTC)),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(chrono_tz::UTC),
            Err(status) => Err(SchedulingError::TenancyUnavailable(format!(
                "GetTrainer: {:?}",
                status.code()
            ))),
        }
    }
}
