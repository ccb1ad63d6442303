//! `fitflow.identity.v1.IdentityService`: decode, validate, call the use case, encode.

use chrono::{DateTime, Utc};
use fitflow_error::{ApiError, Violations};
use fitflow_proto::identity as pb;
use fitflow_proto::identity::identity_service_server::IdentityService;
use tonic::{Request, Response, Status};

use crate::accounts::{Account, Accounts, ClientContext, IssuedTokens};
use crate::domain::{self, MAX_CLIENT_FIELD_CHARS};
use crate::ERROR_DOMAIN;

/// Longest password accepted at login (the policy caps new ones at 128 characters).
const MAX_LOGIN_PASSWORD_BYTES: usize = 1024;
/// Longest opaque token we look at.
const MAX_TOKEN_BYTES: usize = 256;

/// The gRPC face of [`Accounts`].
pub struct IdentityGrpc {
    accounts: Accounts,
}

impl IdentityGrpc {
    /// Serves `accounts` over gRPC.
    pub fn new(accounts: Accounts) -> Self {
        Self { accounts }
    }
}

fn reject(error: ApiError) -> Status {
    error.into_status(ERROR_DOMAIN)
}

#[tonic::async_trait]
impl IdentityService for IdentityGrpc {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let request = request.into_inner();
        let account = domain::validate_registration(
            &request.email,
            &request.password,
            &request.display_name,
            &request.roles,
        )
        .map_err(reject)?;
        let (account, email_verification_token) =
            self.accounts.register(account, request.password).await?;
        Ok(Response::new(pb::RegisterResponse {
            user: Some(user_to_proto(account)),
            email_verification_token,
        }))
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let email = domain::normalize_email(&request.email);
        violations.check(email.is_some(), "email", "must be an email address");
        violations.check(
            !request.password.is_empty(),
            "password",
            "must not be empty",
        );
        violations.check(
            request.password.len() <= MAX_LOGIN_PASSWORD_BYTES,
            "password",
            "is too long",
        );
        violations.check(
            request.client_address.chars().count() <= MAX_CLIENT_FIELD_CHARS,
            "client_address",
            "is too long",
        );
        violations.check(
            request.user_agent.chars().count() <= MAX_CLIENT_FIELD_CHARS,
            "user_agent",
            "is too long",
        );
        violations.into_result().map_err(reject)?;
        let client = ClientContext {
            address: &request.client_address,
            user_agent: &request.user_agent,
        };
        let tokens = self
            .accounts
            .login(&email.unwrap_or_default(), request.password.clone(), client)
            .await?;
        Ok(Response::new(pb::LoginResponse {
            tokens: Some(tokens_to_proto(tokens)),
        }))
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::RefreshTokenResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        violations.check(
            !request.refresh_token.is_empty(),
            "refresh_token",
            "must not be empty",
        );
        violations.check(
            request.refresh_token.len() <= MAX_TOKEN_BYTES,
            "refresh_token",
            "is too long",
        );
        violations.into_result().map_err(reject)?;
        let tokens = self.accounts.refresh(&request.refresh_token).await?;
        Ok(Response::new(pb::RefreshTokenResponse {
            tokens: Some(tokens_to_proto(tokens)),
        }))
    }

    async fn get_current_user(
        &self,
        request: Request<pb::GetCurrentUserRequest>,
    ) -> Result<Response<pb::GetCurrentUserResponse>, Status> {
        let principal = fitflow_auth::principal(&request).map_err(reject)?;
        let account = self.accounts.current(principal).await?;
        Ok(Response::new(pb::GetCurrentUserResponse {
            user: Some(user_to_proto(account)),
        }))
    }

    async fn list_public_keys(
        &self,
        _request: Request<pb::ListPublicKeysRequest>,
    ) -> Result<Response<pb::ListPublicKeysResponse>, Status> {
        let keys = self.accounts.signer().public_keys().await?;
        Ok(Response::new(pb::ListPublicKeysResponse {
            keys: keys
                .into_iter()
                .map(|key| pb::PublicKey {
                    key_id: key.key_id,
                    algorithm: "EdDSA".to_owned(),
                    public_key: key.public_key,
                })
                .collect(),
        }))
    }
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn user_to_proto(account: Account) -> pb::User {
    let status = match account.status.as_str() {
        "active" => pb::UserStatus::Active,
        "suspended" => pb::UserStatus::Suspended,
        "deleted" => pb::UserStatus::Deleted,
        _ => pb::UserStatus::Unspecified,
    };
    pb::User {
        id: account.id.to_string(),
        email: account.email,
        email_verified: account.email_verified,
        display_name: account.display_name,
        status: status.into(),
        roles: account
            .roles
            .into_iter()
            .map(|role| domain::role_to_proto(role).into())
            .collect(),
        mfa_enabled: account.mfa_enabled,
        create_time: Some(timestamp(account.created_at)),
        last_login_time: account.last_login_at.map(timestamp),
    }
}

fn tokens_to_proto(tokens: IssuedTokens) -> pb::TokenPair {
    pb::TokenPair {
        access_token: tokens.access_token,
        access_token_expire_time: Some(timestamp(tokens.access_expires_at)),
        refresh_token: tokens.refresh_token,
        refresh_token_expire_time: Some(timestamp(tokens.refresh_expires_at)),
        session_id: tokens.session_id.to_string(),
    }
}
