//! What documentation asks other services, over mTLS: clients (may this
//! user read or write this client?), scheduling (was the client at this
//! session?) and tenancy (the trainer's time zone). Each call is bounded by
//! the caller's deadline and at most [`PEER_TIMEOUT`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::clients::{AccessLevel, CheckClientAccessRequest};
use fitflow_proto::scheduling::scheduling_service_client::SchedulingServiceClient;
use fitflow_proto::scheduling::{AppointmentStatus, GetAttendanceRequest};
use fitflow_proto::tenancy::GetTrainerRequest;
use fitflow_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use fitflow_server::client::{forwarding_request, peer_request};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::DocumentationError;

/// Longest wait for a peer when the caller set no shorter deadline.
const PEER_TIMEOUT: Duration = Duration::from_secs(3);

/// How far the clients service admits a user to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// Not at all (or no such client).
    None,
    /// Reads.
    Read,
    /// Reads and writes.
    Write,
}

/// A session as scheduling knows it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Session {
    pub trainer_id: Uuid,
    pub start_time: DateTime<Utc>,
    /// Held (COMPLETED) with the client recorded present.
    pub attended: bool,
}

/// The peers documentation asks.
#[derive(Clone)]
pub struct Peers {
    clients: ClientsServiceClient<Channel>,
    scheduling: SchedulingServiceClient<Channel>,
    tenancy: TenancyServiceClient<Channel>,
}

fn unavailable(rpc: &str, status: &tonic::Status) -> DocumentationError {
    DocumentationError::DependencyUnavailable(format!("{rpc}: {:?}", status.code()))
}

/// `message` for a peer that decides for the user whose `bearer` token
/// this is; a token that is no header value finds no client.
fn with_token<T>(message: T, bearer: &str) -> Result<tonic::Request<T>, DocumentationError> {
    forwarding_request(message, bearer, PEER_TIMEOUT)
        .map_err(|_| DocumentationError::ClientNotFound)
}

impl Peers {
    /// Peers over the given channels.
    pub fn new(clients: Channel, scheduling: Channel, tenancy: Channel) -> Self {
        Self {
            clients: ClientsServiceClient::new(clients),
            scheduling: SchedulingServiceClient::new(scheduling),
            tenancy: TenancyServiceClient::new(tenancy),
        }
    }

    /// How far the user whose `bearer` token this is reaches `client_id`.
    pub(crate) async fn access(
        &self,
        bearer: &str,
        client_id: Uuid,
    ) -> Result<Level, DocumentationError> {
        let request = with_token(
            CheckClientAccessRequest {
                client_id: client_id.to_string(),
                level: AccessLevel::Read as i32,
            },
            bearer,
        )?;
        let mut client = self.clients.clone();
        let answer = client
            .check_client_access(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| unavailable("CheckClientAccess", &status))?;
        if !answer.allowed {
            return Ok(Level::None);
        }
        Ok(match AccessLevel::try_from(answer.granted_level) {
            Ok(AccessLevel::Write | AccessLevel::Admin | AccessLevel::Owner) => Level::Write,
            _ => Level::Read,
        })
    }

    /// The session `appointment_id` with `client_id` in it, if any.
    pub(crate) async fn session(
        &self,
        appointment_id: Uuid,
        client_id: Uuid,
    ) -> Result<Option<Session>, DocumentationError> {
        let request = peer_request(
            GetAttendanceRequest {
                appointment_id: appointment_id.to_string(),
                client_id: client_id.to_string(),
            },
            PEER_TIMEOUT,
        );
        let mut scheduling = self.scheduling.clone();
        let answer = match scheduling
            .get_attendance(request)
            .await
            .map(tonic::Response::into_inner)
        {
            Ok(answer) => answer,
            Err(status) if status.code() == tonic::Code::NotFound => return Ok(None),
            Err(status) => return Err(unavailable("GetAttendance", &status)),
        };
        let trainer_id = Uuid::parse_str(&answer.trainer_id).map_err(|_| {
            DocumentationError::DependencyUnavailable("GetAttendance: trainer".into())
        })?;
        let start_time = answer
            .start_time
            .as_ref()
            .and_then(fitflow_api::time::parse_timestamp)
            .ok_or_else(|| {
                DocumentationError::DependencyUnavailable("GetAttendance: start time".into())
            })?;
        Ok(Some(Session {
            trainer_id,
            start_time,
            attended: answer.attended && answer.status == AppointmentStatus::Completed as i32,
        }))
    }

    /// The trainer's IANA time zone from their tenancy profile; UTC for a
    /// trainer without one (or with a zone this build does not know).
    pub(crate) async fn trainer_zone(
        &self,
        bearer: &str,
        trainer_id: Uuid,
    ) -> Result<chrono_tz::Tz, DocumentationError> {
        let request = with_token(
            GetTrainerRequest {
                trainer_id: trainer_id.to_string(),
            },
            bearer,
        )?;
        let mut tenancy = self.tenancy.clone();
        match tenancy
            .get_trainer(request)
            .await
            .map(tonic::Response::into_inner)
        {
            Ok(answer) => Ok(answer
                .trainer
                .and_then(|trainer| trainer.time_zone.parse().ok())
                .unwrap_or(chrono_tz::UTC)),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(chrono_tz::UTC),
            Err(status) => Err(unavailable("GetTrainer", &status)),
        }
    }
}
