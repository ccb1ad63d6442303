//! What tenancy asks identity: whether an account is active, and whose
//! account an email is (identity's internal `LookupUser`, tenancy only).

use std::time::Duration;

use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_proto::identity::{LookupUserRequest, UserStatus, lookup_user_request};
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::TenancyError;

/// Longest wait for identity when the caller set no shorter deadline.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Identity's account directory, over mTLS.
#[derive(Clone)]
pub struct Accounts {
    client: IdentityServiceClient<Channel>,
}

impl Accounts {
    /// Asks identity over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: IdentityServiceClient::new(channel),
        }
    }

    /// The account's id and whether it is active; `None` when identity
    /// knows no such account (or it is deleted).
    async fn lookup(
        &self,
        key: lookup_user_request::Key,
    ) -> Result<Option<(Uuid, bool)>, TenancyError> {
        let mut request = tonic::Request::new(LookupUserRequest { key: Some(key) });
        let timeout = fitflow_server::deadline::remaining()
            .map_or(LOOKUP_TIMEOUT, |remaining| remaining.min(LOOKUP_TIMEOUT));
        request.set_timeout(timeout);
        // The outer timeout also bounds connecting and the TLS handshake.
        let mut client = self.client.clone();
        let answer = tokio::time::timeout(timeout, client.lookup_user(request))
            .await
            .map_err(|_| TenancyError::IdentityUnavailable("LookupUser timed out".into()))?;
        match answer {
            Ok(response) => {
                let response = response.into_inner();
                let id = Uuid::try_parse(&response.user_id)
                    .map_err(|_| TenancyError::IdentityUnavailable("a malformed user id".into()))?;
                Ok(Some((id, response.status == UserStatus::Active as i32)))
            }
            Err(status) if status.code() == Code::NotFound => Ok(None),
            // Identity's answer is not the caller's business beyond "down".
            Err(status) => Err(TenancyError::IdentityUnavailable(format!(
                "LookupUser: {:?}",
                status.code()
            ))),
        }
    }

    /// USER_NOT_ACTIVE unless `user_id` is an active account.
    pub async fn require_active(&self, user_id: Uuid) -> Result<(), TenancyError> {
        match self
            .lookup(lookup_user_request::Key::UserId(user_id.to_string()))
            .await?
        {
            Some((_, true)) => Ok(()),
            _ => Err(TenancyError::UserNotActive),
        }
    }

    /// The active account behind `email`, if any.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<Uuid>, TenancyError> {
        Ok(self
            .lookup(lookup_user_request::Key::Email(email.to_owned()))
            .await?
            .filter(|(_, active)| *active)
            .map(|(id, _)| id))
    }
}
