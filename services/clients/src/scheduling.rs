//! What clients asks scheduling: a client's appointments and class places,
//! for the client's export (scheduling's internal `ExportClientAppointments`).

use std::time::Duration;

use fitflow_proto::scheduling::scheduling_service_client::SchedulingServiceClient;
use fitflow_proto::scheduling::{
    ExportClientAppointmentsRequest, ExportClientAppointmentsResponse,
};
use fitflow_server::client::peer_request;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::ClientsError;

/// Longest wait for scheduling when the caller set no shorter deadline.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Scheduling's records of clients, over mTLS.
#[derive(Clone)]
pub struct Appointments {
    client: SchedulingServiceClient<Channel>,
}

impl Appointments {
    /// Asks scheduling over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: SchedulingServiceClient::new(channel),
        }
    }

    /// Every appointment and class place of `client_id`.
    pub(crate) async fn of_client(
        &self,
        client_id: Uuid,
    ) -> Result<ExportClientAppointmentsResponse, ClientsError> {
        let request = peer_request(
            ExportClientAppointmentsRequest {
                client_id: client_id.to_string(),
            },
            EXPORT_TIMEOUT,
        );
        let mut client = self.client.clone();
        client
            .export_client_appointments(request)
            .await
            .map(tonic::Response::into_inner)
            // Scheduling's answer is not the caller's business beyond "down".
            .map_err(|_| ClientsError::SchedulingUnavailable)
    }
}
