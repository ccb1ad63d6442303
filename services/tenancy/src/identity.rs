//! What tenancy asks identity: whether an account is active, whose account
//! an email is, and where to mail an invitee (identity's internal
//! `LookupUser`, tenancy only).

use std::time::Duration;

use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_proto::identity::{LookupUserRequest, UserStatus, lookup_user_request};
use fitflow_server::client::peer_request;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::TenancyError;

/// Longest wait for identity when the caller set no shorter deadline.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Where and how to address an account's owner.
#[derive(Clone)]
pub(crate) struct Contact {
    /// The normalised email address.
    pub email: String,
    /// The name shown to other users.
    pub display_name: String,
}

/// One account as identity describes it.
struct Account {
    id: Uuid,
    active: bool,
    contact: Contact,
}

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

    /// The account; `None` when identity knows no such account (or it is
    /// deleted).
    async fn lookup(&self, key: lookup_user_request::Key) -> Result<Option<Account>, TenancyError> {
        let request = peer_request(LookupUserRequest { key: Some(key) }, LOOKUP_TIMEOUT);
        let mut client = self.client.clone();
        match client.lookup_user(request).await {
            Ok(response) => {
                let response = response.into_inner();
                let id = Uuid::try_parse(&response.user_id)
                    .map_err(|_| TenancyError::IdentityUnavailable("a malformed user id".into()))?;
                Ok(Some(Account {
                    id,
                    active: response.status == UserStatus::Active as i32,
                    contact: Contact {
                        email: response.email,
                        display_name: response.display_name,
                    },
                }))
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
            Some(account) if account.active => Ok(()),
            _ => Err(TenancyError::UserNotActive),
        }
    }

    /// The active account behind `email`, if any.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<Uuid>, TenancyError> {
        Ok(self
            .lookup(lookup_user_request::Key::Email(email.to_owned()))
            .await?
            .filter(|account| account.active)
            .map(|account| account.id))
    }

    /// The trainer id to invite for `email`: the active account's, or for
    /// an address that is none a fresh id that no trainer has, so that the
    /// invitation goes on to fail as one of an account without a trainer
    /// profile would (TRAINER_NOT_FOUND at the same step, after the same
    /// checks and work): neither the answer nor its timing tells whether
    /// the address is an account.
    pub async fn trainer_id_by_email(&self, email: &str) -> Result<Uuid, TenancyError> {
        Ok(self
            .find_by_email(email)
            .await?
            .unwrap_or_else(Uuid::new_v4))
    }

    /// Where to mail the owner of `user_id`: `None` unless it is an active
    /// account.
    pub(crate) async fn contact(&self, user_id: Uuid) -> Result<Option<Contact>, TenancyError> {
        Ok(self
            .lookup(lookup_user_request::Key::UserId(user_id.to_string()))
            .await?
            .filter(|account| account.active)
            .map(|account| account.contact))
    }
}
