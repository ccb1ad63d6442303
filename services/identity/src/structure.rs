//! What a user acts for, asked of tenancy when a token is issued (DESIGN.md
//! §4): the trainers below them in their team and the studios they manage.
//! Tenancy is the only source of supervision and ownership; identity never
//! derives them from roles.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fitflow_proto::tenancy::GetActingForRequest;
use fitflow_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use tonic::transport::Channel;
use uuid::Uuid;

/// Most ids of each kind a token carries (DESIGN.md §4).
pub const MAX_CLAIM_IDS: i32 = 256;
/// Longest wait for tenancy while a login or refresh waits.
const ASK_TIMEOUT: Duration = Duration::from_millis(800);
/// After tenancy failed, tokens are issued partial without asking for this
/// long, so a tenancy outage does not add its timeout to every login.
const BACKOFF: Duration = Duration::from_secs(5);

/// The structure a token carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActingFor {
    /// Trainers below the user in their team (the user themselves excluded).
    pub supervised: Vec<Uuid>,
    /// Studios the user manages.
    pub studios: Vec<Uuid>,
    /// Either list was cut at [`MAX_CLAIM_IDS`].
    pub truncated: bool,
    /// Tenancy was not asked or did not answer: own id only.
    pub partial: bool,
}

impl ActingFor {
    /// The claims of a token issued while tenancy cannot be asked.
    pub fn partial() -> Self {
        Self {
            partial: true,
            ..Self::default()
        }
    }
}

/// Tenancy's `GetActingFor`, over mTLS, with a short timeout and a backoff
/// after failures.
#[derive(Clone)]
pub struct Structure {
    client: TenancyServiceClient<Channel>,
    failed_at: Arc<Mutex<Option<Instant>>>,
}

impl Structure {
    /// Asks tenancy over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: TenancyServiceClient::new(channel),
            failed_at: Arc::default(),
        }
    }

    fn backing_off(&self) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|failed_at| failed_at.elapsed() < BACKOFF)
    }

    fn record(&self, failed: bool) {
        *self
            .failed_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = failed.then(Instant::now);
    }

    /// What `user_id` acts for; partial when tenancy cannot say.
    pub async fn acting_for(&self, user_id: Uuid) -> ActingFor {
        if self.backing_off() {
            return ActingFor::partial();
        }
        let mut request = tonic::Request::new(GetActingForRequest {
            user_id: user_id.to_string(),
            limit: MAX_CLAIM_IDS,
        });
        // Connecting and the handshake are bounded by the platform's channel.
        request.set_timeout(ASK_TIMEOUT);
        let mut client = self.client.clone();
        let response = match client.get_acting_for(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                tracing::warn!(code = ?status.code(), "tenancy's GetActingFor failed; issuing partial claims");
                self.record(true);
                return ActingFor::partial();
            }
        };
        self.record(false);
        let parse = |ids: &[String]| -> Vec<Uuid> {
            ids.iter()
                .filter_map(|id| Uuid::try_parse(id).ok())
                .collect()
        };
        ActingFor {
            supervised: parse(&response.trainer_ids)
                .into_iter()
                .filter(|id| *id != user_id)
                .collect(),
            studios: parse(&response.studio_ids),
            truncated: response.truncated,
            partial: false,
        }
    }
}
