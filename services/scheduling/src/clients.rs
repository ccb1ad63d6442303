//! What scheduling asks the clients service: may this user write this
//! client's records (`CheckClientAccess`, the user's token forwarded)?

use std::time::Duration;

use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::clients::{AccessLevel, CheckClientAccessRequest};
use fitflow_server::client::forwarding_request;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::SchedulingError;

/// Longest wait for clients when the caller set no shorter deadline.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The clients service's access decisions, over mTLS.
#[derive(Clone)]
pub struct ClientAccess {
    client: ClientsServiceClient<Channel>,
}

impl ClientAccess {
    /// Asks clients over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: ClientsServiceClient::new(channel),
        }
    }

    /// CLIENT_NOT_FOUND unless the user whose `bearer` token this is may
    /// write `client_id`'s records.
    pub async fn require_write(
        &self,
        bearer: &str,
        client_id: Uuid,
    ) -> Result<(), SchedulingError> {
        let request = forwarding_request(
            CheckClientAccessRequest {
                client_id: client_id.to_string(),
                level: AccessLevel::Write as i32,
            },
            bearer,
            CHECK_TIMEOUT,
        )
        .map_err(|_| SchedulingError::ClientNotFound)?;
        let mut client = self.client.clone();
        let answer = client
            .check_client_access(request)
            .await
            .map_err(|status| {
                SchedulingError::ClientsUnavailable(format!(
                    "CheckClientAccess: {:?}",
                    status.code()
                ))
            })?;
        if answer.into_inner().allowed {
            Ok(())
        } else {
            Err(SchedulingError::ClientNotFound)
        }
    }
}
