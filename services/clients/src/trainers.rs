//! Who a trainer is, by the email of their account, for a share by email:
//! identity's internal `LookupUser` (tenancy and clients only) finds the
//! active account, and tenancy's `GetActingFor` (which lists the user first
//! when they have a trainer profile) says whether it is a trainer's.

use std::time::Duration;

use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_proto::identity::{LookupUserRequest, UserStatus, lookup_user_request};
use fitflow_proto::tenancy::GetActingForRequest;
use fitflow_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use fitflow_server::client::peer_request;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::ClientsError;

/// Longest wait for identity or tenancy when the caller set no shorter
/// deadline.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Identity's accounts and tenancy's trainer profiles, over mTLS.
#[derive(Clone)]
pub struct Trainers {
    identity: IdentityServiceClient<Channel>,
    tenancy: TenancyServiceClient<Channel>,
}

impl Trainers {
    /// Asks identity over `identity` and tenancy over `tenancy`.
    pub fn new(identity: Channel, tenancy: Channel) -> Self {
        Self {
            identity: IdentityServiceClient::new(identity),
            tenancy: TenancyServiceClient::new(tenancy),
        }
    }

    /// The trainer whose account uses `email` (normalised): `None` when no
    /// active account does, or when it has no trainer profile — one answer
    /// for both, so the caller learns no more than tenancy's invitation by
    /// email tells.
    pub(crate) async fn by_email(&self, email: &str) -> Result<Option<Uuid>, ClientsError> {
        let request = peer_request(
            LookupUserRequest {
                key: Some(lookup_user_request::Key::Email(email.to_owned())),
            },
            LOOKUP_TIMEOUT,
        );
        let mut identity = self.identity.clone();
        let account = match identity.lookup_user(request).await {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == Code::NotFound => return Ok(None),
            // Identity's answer is not the caller's business beyond "down".
            Err(_) => return Err(ClientsError::IdentityUnavailable),
        };
        if account.status != UserStatus::Active as i32 {
            return Ok(None);
        }
        let user_id =
            Uuid::try_parse(&account.user_id).map_err(|_| ClientsError::IdentityUnavailable)?;
        let request = peer_request(
            GetActingForRequest {
                user_id: user_id.to_string(),
                limit: 1,
            },
            LOOKUP_TIMEOUT,
        );
        let mut tenancy = self.tenancy.clone();
        let acting_for = tenancy
            .get_acting_for(request)
            .await
            .map_err(|_| ClientsError::TenancyUnavailable)?
            .into_inner();
        Ok(crate::domain::has_trainer_profile(user_id, &acting_for.trainer_ids).then_some(user_id))
    }
}
