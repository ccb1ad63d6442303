//! What scheduling asks the clients service: may this user write this
//! client's records (`CheckClientAccess`, the user's token forwarded)? The
//! names on a studio's roster, for its manager (`ListRosterNames`, the
//! user's token forwarded; clients writes the access events). And, for the
//! notification relay acting on its own (no user token), where to mail a
//! client (`GetContact`, purpose OPERATIONS).

use std::collections::HashMap;
use std::time::Duration;

use fitflow_error::ApiError;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::clients::{
    AccessLevel, AccessPurpose, CheckClientAccessRequest, GetContactRequest, ListRosterNamesRequest,
};
use fitflow_server::client::forwarding_request;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::SchedulingError;

/// Longest wait for clients when the caller set no shorter deadline.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for a roster's names.
const NAMES_TIMEOUT: Duration = Duration::from_secs(10);
/// Most clients one `ListRosterNames` names.
const NAMES_PER_CALL: usize = 500;

/// A client's first and last names.
pub(crate) type Names = (String, String);

/// Longest wait for a contact (the relay's own call).
const CONTACT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to mail a client, as clients answers it.
pub(crate) struct Contact {
    /// For the greeting.
    pub first_name: String,
    /// Empty when the client has none.
    pub email: String,
    /// The address's province, when the client has an address.
    pub province: Option<fitflow_proto::types::Province>,
}

impl std::fmt::Debug for Contact {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Contact")
            .field("has_email", &!self.email.is_empty())
            .finish_non_exhaustive()
    }
}

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

    /// The names of `client_ids` (live clients only) for the user whose
    /// `bearer` token this is, a manager of `studio_id` whose roster shows
    /// them; clients accounts for each name it opens.
    pub(crate) async fn roster_names(
        &self,
        bearer: &str,
        studio_id: Uuid,
        client_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Names>, SchedulingError> {
        let mut names = HashMap::with_capacity(client_ids.len());
        for chunk in client_ids.chunks(NAMES_PER_CALL) {
            let request = forwarding_request(
                ListRosterNamesRequest {
                    studio_id: studio_id.to_string(),
                    client_ids: chunk.iter().map(Uuid::to_string).collect(),
                },
                bearer,
                NAMES_TIMEOUT,
            )
            .map_err(|_| SchedulingError::ClientsUnavailable("a malformed token".to_owned()))?;
            let mut client = self.client.clone();
            let answer = client.list_roster_names(request).await.map_err(|status| {
                if status.code() == tonic::Code::Unauthenticated {
                    // The user's studios changed since their token was
                    // issued (clients saw it stale): a refresh, not a
                    // retry, is the answer.
                    return SchedulingError::Rejected(ApiError::unauthenticated(
                        "TOKEN_STALE",
                        "the token's team or studio claims changed; refresh it",
                    ));
                }
                SchedulingError::ClientsUnavailable(format!("ListRosterNames: {:?}", status.code()))
            })?;
            for name in answer.into_inner().names {
                if let Ok(id) = Uuid::try_parse(&name.client_id) {
                    names.insert(id, (name.first_name, name.last_name));
                }
            }
        }
        Ok(names)
    }

    /// The client's contact, asked as the scheduling service itself (no
    /// user token: the relay acts on its own), purpose OPERATIONS; clients
    /// writes the access event. Err is clients' gRPC code.
    pub(crate) async fn contact(&self, client_id: Uuid) -> Result<Contact, tonic::Code> {
        let mut request = tonic::Request::new(GetContactRequest {
            client_id: client_id.to_string(),
            purpose: AccessPurpose::Operations as i32,
        });
        request.set_timeout(CONTACT_TIMEOUT);
        fitflow_telemetry::inject_current_context(request.metadata_mut());
        let mut client = self.client.clone();
        let answer = client
            .get_contact(request)
            .await
            .map_err(|status| status.code())?
            .into_inner();
        Ok(Contact {
            first_name: answer.first_name,
            email: answer.email,
            province: answer.address.and_then(|address| {
                fitflow_proto::types::Province::try_from(address.province).ok()
            }),
        })
    }
}
