//! What scheduling asks the tenancy service: a trainer's IANA time zone
//! (`GetTrainer`, the user's token forwarded), the zone availability rules
//! are read in.

use std::time::Duration;

use fitflow_proto::tenancy::GetTrainerRequest;
use fitflow_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use fitflow_server::client::forwarding_request;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::SchedulingError;

/// Longest wait for tenancy when the caller set no shorter deadline.
const ZONE_TIMEOUT: Duration = Duration::from_secs(3);

/// Trainers' time zones, from tenancy over mTLS.
#[derive(Clone)]
pub struct TrainerZones {
    client: TenancyServiceClient<Channel>,
}

impl TrainerZones {
    /// Asks tenancy over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: TenancyServiceClient::new(channel),
        }
    }

    /// The trainer's zone from their tenancy profile, as the user whose
    /// `bearer` token this is sees it; UTC for a trainer without a profile
    /// (or with a zone this build does not know), as documentation does.
    pub async fn zone(
        &self,
        bearer: &str,
        trainer_id: Uuid,
    ) -> Result<chrono_tz::Tz, SchedulingError> {
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
