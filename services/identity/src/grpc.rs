//! `fitflow.identity.v1.IdentityService`: decode, validate, call the use case, encode.

use chrono::{DateTime, Utc};
use fitflow_api::idempotency::{IdempotencyKey, RequestHash};
use fitflow_api::page::PageQuery;
use fitflow_api::text::TextKind;
use fitflow_auth::Caller;
use fitflow_error::{ApiError, Violations};
use fitflow_proto::identity as pb;
use fitflow_proto::identity::identity_service_server::IdentityService;
use prost::Message as _;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::ERROR_DOMAIN;
use crate::accounts::{
    Account, Accounts, ClientContext, IssuedTokens, LoginOutcome, LookupKey, MfaProof,
    OperatorCall, ProfileChange, RegisterRetry, RoleChange, session_page_size,
};
use crate::domain::{self, MAX_CLIENT_FIELD_CHARS, RevocationKind};
use crate::letters::Letters;
use crate::revocations::RevocationBatch;
use futures::StreamExt as _;

/// The mTLS peer name of the BFF/gateway.
const GATEWAY_PEER: &str = "gateway";
/// Longest password accepted at login (the policy caps new ones at 128 characters).
const MAX_LOGIN_PASSWORD_BYTES: usize = 1024;
/// Longest reason an operator gives for resetting a user's MFA.
const MAX_RESET_REASON_CHARS: usize = 500;
/// Longest opaque token we look at.
const MAX_TOKEN_BYTES: usize = 256;
/// What `UpdateProfile` may change (paths of `update_mask`).
const PROFILE_FIELDS: &[&str] = &["display_name"];
/// Longest `etag` looked at (ours are 24 characters).
const MAX_ETAG_CHARS: usize = 64;
/// Most accounts per `ListUsers` page.
const MAX_USER_PAGE_SIZE: u32 = 100;
/// `Register`'s method path, which its request ids are bound to.
const REGISTER_METHOD: &str = "/fitflow.identity.v1.IdentityService/Register";
/// `ListUsers`' method path, which its page tokens are bound to.
const LIST_USERS_METHOD: &str = "/fitflow.identity.v1.IdentityService/ListUsers";

/// The gRPC face of [`Accounts`].
pub struct IdentityGrpc {
    accounts: Accounts,
    letters: Letters,
}

impl IdentityGrpc {
    /// Serves `accounts` over gRPC, mailing codes with `letters`.
    pub fn new(accounts: Accounts, letters: Letters) -> Self {
        Self { accounts, letters }
    }
}

fitflow_server::handler_helpers!(ERROR_DOMAIN);

/// What `WatchRevocations` answers with.
type RevocationResponses =
    futures::stream::BoxStream<'static, Result<pb::WatchRevocationsResponse, Status>>;

#[tonic::async_trait]
impl IdentityService for IdentityGrpc {
    type WatchRevocationsStream = RevocationResponses;

    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let request_id = fitflow_api::idempotency::request_id(
            &mut violations,
            "request_id",
            &request.request_id,
        );
        let account = match domain::validate_registration(
            &request.email,
            &request.password,
            &request.display_name,
            &request.roles,
        ) {
            Ok(account) => {
                done(violations)?;
                account
            }
            Err(mut invalid) => {
                // Every bad field at once.
                if let Err(more) = violations.into_result() {
                    invalid.violations.extend(more.violations);
                }
                return Err(reject(invalid));
            }
        };
        // The key and a hash of the request without its password: a
        // password is never hashed fast, so a replay checks it against the
        // account's argon2id hash instead.
        let retry = request_id.map(|request_id| {
            let key = IdempotencyKey::new(&Caller::Anonymous, REGISTER_METHOD, request_id);
            let without_password = pb::RegisterRequest {
                password: String::new(),
                ..request.clone()
            };
            let hash = RequestHash::of(&key, &without_password.encode_to_vec());
            RegisterRetry { key, hash }
        });
        let (account, verification_code) = self
            .accounts
            .register(account, request.password, retry)
            .await?;
        if !verification_code.is_empty() {
            self.letters
                .send_verification(&account.email, verification_code);
        }
        Ok(Response::new(pb::RegisterResponse {
            user: Some(user_to_proto(account)),
            // Mailed, never returned (the field stays for wire compatibility).
            email_verification_token: String::new(),
        }))
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        // The gateway always knows the end user's address; without it the
        // per-address login limit could not apply.
        let from_gateway = fitflow_auth::peer(&request).is_some_and(|peer| peer.0 == GATEWAY_PEER);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let email = domain::normalize_email(&request.email);
        violations.check(email.is_some(), "email", "must be an email address");
        let client_ip = fitflow_outbox::client_ip(&request.client_address);
        let address_fits = request.client_address.chars().count() <= MAX_CLIENT_FIELD_CHARS;
        // One violation per field: a too-long address is not also "not an IP".
        violations.check(
            !address_fits || request.client_address.is_empty() || client_ip.is_some(),
            "client_address",
            "must be an IP address, optionally with a port",
        );
        violations.check(
            !(from_gateway && request.client_address.is_empty()),
            "client_address",
            "is required from the gateway",
        );
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
        // It lands in audit events: refused here, it can never jam the trail.
        violations.check(
            !request.user_agent.chars().any(char::is_control),
            "user_agent",
            "must not contain control characters",
        );
        done(violations)?;
        // Limits and audit events key on the one normalised form of the address.
        let address = client_ip.map(|ip| ip.to_string()).unwrap_or_default();
        let client = ClientContext {
            address: &address,
            user_agent: &request.user_agent,
        };
        let outcome = self
            .accounts
            .login(&email.unwrap_or_default(), request.password, client)
            .await?;
        let result = match outcome {
            LoginOutcome::Tokens(tokens) => {
                pb::login_response::Result::Tokens(tokens_to_proto(tokens))
            }
            LoginOutcome::MfaRequired {
                challenge_token,
                expires_at,
            } => pb::login_response::Result::MfaChallenge(pb::MfaChallenge {
                challenge_token,
                expire_time: Some(timestamp(expires_at)),
            }),
        };
        Ok(Response::new(pb::LoginResponse {
            result: Some(result),
        }))
    }

    async fn verify_email(
        &self,
        request: Request<pb::VerifyEmailRequest>,
    ) -> Result<Response<pb::VerifyEmailResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        check_token(&mut violations, "token", &request.token);
        done(violations)?;
        let account = self.accounts.verify_email(&request.token).await?;
        Ok(Response::new(pb::VerifyEmailResponse {
            user: Some(user_to_proto(account)),
        }))
    }

    async fn complete_mfa_login(
        &self,
        request: Request<pb::CompleteMfaLoginRequest>,
    ) -> Result<Response<pb::CompleteMfaLoginResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        check_token(&mut violations, "challenge_token", &request.challenge_token);
        let proof = mfa_proof(&mut violations, request.proof.map(MfaProofField::from));
        done(violations)?;
        let tokens = self
            .accounts
            .complete_mfa_login(&request.challenge_token, proof)
            .await?;
        Ok(Response::new(pb::CompleteMfaLoginResponse {
            tokens: Some(tokens_to_proto(tokens)),
        }))
    }

    async fn update_profile(
        &self,
        request: Request<pb::UpdateProfileRequest>,
    ) -> Result<Response<pb::UpdateProfileResponse>, Status> {
        let principal = principal(&request)?;
        let message = request.into_inner();
        let mut violations = Violations::new();
        let mask_paths = message
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        let populated: &[&'static str] = if message.display_name.is_empty() {
            &[]
        } else {
            &["display_name"]
        };
        let fields = fitflow_api::field_mask::fields_to_update(
            &mut violations,
            &mask_paths,
            PROFILE_FIELDS,
            populated,
        );
        if fields.contains("display_name") {
            if let Some(problem) = domain::display_name_problem(&message.display_name) {
                violations.add("display_name", problem);
            }
        } else {
            // Not written, but still never let through with control characters.
            fitflow_api::text::check_text(
                &mut violations,
                "display_name",
                &message.display_name,
                TextKind::Line,
                domain::MAX_DISPLAY_NAME_CHARS,
            );
        }
        fitflow_api::text::check_text(
            &mut violations,
            "etag",
            &message.etag,
            TextKind::Line,
            MAX_ETAG_CHARS,
        );
        done(violations)?;
        let change = ProfileChange {
            display_name: fields
                .contains("display_name")
                .then(|| message.display_name.trim().to_owned()),
        };
        let account = self
            .accounts
            .update_profile(&principal, change, &message.etag)
            .await?;
        Ok(Response::new(pb::UpdateProfileResponse {
            user: Some(user_to_proto(account)),
        }))
    }

    async fn enroll_mfa(
        &self,
        request: Request<pb::EnrollMfaRequest>,
    ) -> Result<Response<pb::EnrollMfaResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        check_password(
            &mut violations,
            "current_password",
            &request.current_password,
        );
        done(violations)?;
        let enrollment = self
            .accounts
            .enroll_mfa(&principal, request.current_password)
            .await?;
        Ok(Response::new(pb::EnrollMfaResponse {
            provisioning_uri: enrollment.provisioning_uri,
            secret: enrollment.secret_base32,
        }))
    }

    async fn confirm_mfa(
        &self,
        request: Request<pb::ConfirmMfaRequest>,
    ) -> Result<Response<pb::ConfirmMfaResponse>, Status> {
        let principal = principal(&request)?;
        let code = &request.get_ref().totp_code;
        let mut violations = Violations::new();
        violations.check(
            domain::is_totp_code_shape(code),
            "totp_code",
            "must be 6 digits",
        );
        done(violations)?;
        let recovery_codes = self.accounts.confirm_mfa(&principal, code).await?;
        Ok(Response::new(pb::ConfirmMfaResponse { recovery_codes }))
    }

    async fn disable_mfa(
        &self,
        request: Request<pb::DisableMfaRequest>,
    ) -> Result<Response<pb::DisableMfaResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        check_password(&mut violations, "password", &request.password);
        let proof = mfa_proof(&mut violations, request.proof.map(MfaProofField::from));
        done(violations)?;
        self.accounts
            .disable_mfa(&principal, request.password, proof)
            .await?;
        Ok(Response::new(pb::DisableMfaResponse {}))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let principal = principal(&request)?;
        let message = request.get_ref();
        let mut violations = Violations::new();
        let page_size = session_page_size(message.page_size);
        violations.check(page_size.is_some(), "page_size", "must be 0 to 100");
        let after = if message.page_token.is_empty() {
            None
        } else {
            let parsed = Uuid::try_parse(&message.page_token).ok();
            violations.check(
                parsed.is_some(),
                "page_token",
                "must be a next_page_token from a previous response",
            );
            parsed
        };
        done(violations)?;
        let page = self
            .accounts
            .list_sessions(&principal, page_size.unwrap_or_default(), after)
            .await?;
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: page
                .sessions
                .into_iter()
                .map(|session| pb::Session {
                    id: session.id.to_string(),
                    user_agent: session.user_agent,
                    client_address: session.client_address,
                    create_time: Some(timestamp(session.created_at)),
                    last_use_time: Some(timestamp(session.last_used_at)),
                    current: session.current,
                })
                .collect(),
            next_page_token: page.next_after.map(|id| id.to_string()).unwrap_or_default(),
        }))
    }

    async fn revoke_session(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Result<Response<pb::RevokeSessionResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let session_id = check_uuid(&mut violations, "session_id", &request.get_ref().session_id);
        done(violations)?;
        self.accounts
            .revoke_session(&principal, session_id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::RevokeSessionResponse {}))
    }

    async fn revoke_all_sessions(
        &self,
        request: Request<pb::RevokeAllSessionsRequest>,
    ) -> Result<Response<pb::RevokeAllSessionsResponse>, Status> {
        let principal = principal(&request)?;
        let revoked = self.accounts.revoke_all_sessions(&principal).await?;
        Ok(Response::new(pb::RevokeAllSessionsResponse {
            revoked_count: i32::try_from(revoked).unwrap_or(i32::MAX),
        }))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        check_password(
            &mut violations,
            "current_password",
            &request.current_password,
        );
        if let Some(problem) = domain::password_problem(&request.new_password) {
            violations.add("new_password", problem);
        }
        done(violations)?;
        let revoked = self
            .accounts
            .change_password(&principal, request.current_password, request.new_password)
            .await?;
        Ok(Response::new(pb::ChangePasswordResponse {
            revoked_session_count: i32::try_from(revoked).unwrap_or(i32::MAX),
        }))
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<Response<pb::RequestPasswordResetResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let email = domain::normalize_email(&request.email);
        violations.check(email.is_some(), "email", "must be an email address");
        done(violations)?;
        let email = email.unwrap_or_default();
        if let Some(code) = self.accounts.request_password_reset(&email).await? {
            self.letters.send_reset(&email, code);
        }
        // Mailed, never returned; the same answer whether or not the
        // address has an account.
        Ok(Response::new(pb::RequestPasswordResetResponse {
            reset_token: String::new(),
        }))
    }

    async fn resend_verification(
        &self,
        request: Request<pb::ResendVerificationRequest>,
    ) -> Result<Response<pb::ResendVerificationResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let email = domain::normalize_email(&request.email);
        violations.check(email.is_some(), "email", "must be an email address");
        done(violations)?;
        let email = email.unwrap_or_default();
        if let Some(code) = self.accounts.resend_verification(&email).await? {
            self.letters.send_verification(&email, code);
        }
        Ok(Response::new(pb::ResendVerificationResponse {}))
    }

    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::ResetPasswordResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        check_token(&mut violations, "reset_token", &request.reset_token);
        if let Some(problem) = domain::password_problem(&request.new_password) {
            violations.add("new_password", problem);
        }
        done(violations)?;
        self.accounts
            .reset_password(&request.reset_token, request.new_password)
            .await?;
        Ok(Response::new(pb::ResetPasswordResponse {}))
    }

    async fn suspend_user(
        &self,
        request: Request<pb::SuspendUserRequest>,
    ) -> Result<Response<pb::SuspendUserResponse>, Status> {
        let (operator, user_id) = operator_and_user(&request, &request.get_ref().user_id)?;
        let account = self.accounts.suspend_user(operator, user_id).await?;
        Ok(Response::new(pb::SuspendUserResponse {
            user: Some(user_to_proto(account)),
        }))
    }

    async fn restore_user(
        &self,
        request: Request<pb::RestoreUserRequest>,
    ) -> Result<Response<pb::RestoreUserResponse>, Status> {
        let (operator, user_id) = operator_and_user(&request, &request.get_ref().user_id)?;
        let account = self.accounts.restore_user(operator, user_id).await?;
        Ok(Response::new(pb::RestoreUserResponse {
            user: Some(user_to_proto(account)),
        }))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let (operator, user_id) = operator_and_user(&request, &request.get_ref().user_id)?;
        let account = self.accounts.delete_user(operator, user_id).await?;
        Ok(Response::new(pb::DeleteUserResponse {
            user: Some(user_to_proto(account)),
        }))
    }

    async fn reset_user_mfa(
        &self,
        request: Request<pb::ResetUserMfaRequest>,
    ) -> Result<Response<pb::ResetUserMfaResponse>, Status> {
        let operator = operator(&request)?;
        let message = request.get_ref();
        let mut violations = Violations::new();
        let user_id = check_uuid(&mut violations, "user_id", &message.user_id);
        // The reason lands in the audit trail: one line, bounded.
        violations.check(
            !message.reason.chars().any(char::is_control),
            "reason",
            "must not contain control characters",
        );
        violations.check(
            message.reason.chars().count() <= MAX_RESET_REASON_CHARS,
            "reason",
            "must be at most 500 characters",
        );
        violations.check(
            !message.reason.trim().is_empty(),
            "reason",
            "must say why (e.g. the support ticket)",
        );
        done(violations)?;
        let account = self
            .accounts
            .reset_user_mfa(operator, user_id.unwrap_or_default(), message.reason.trim())
            .await?;
        Ok(Response::new(pb::ResetUserMfaResponse {
            user: Some(user_to_proto(account)),
        }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let (operator, user_id) = operator_and_user(&request, &request.get_ref().user_id)?;
        let account = self.accounts.get_user(operator, user_id).await?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(user_to_proto(account)),
        }))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let operator = operator(&request)?;
        let message = request.get_ref();
        let mut violations = Violations::new();
        let page_size =
            fitflow_api::page::page_size(&mut violations, message.page_size, MAX_USER_PAGE_SIZE);
        fitflow_api::text::check_text(
            &mut violations,
            "email_prefix",
            &message.email_prefix,
            TextKind::Line,
            domain::MAX_EMAIL_CHARS,
        );
        let email_prefix = message.email_prefix.trim().to_lowercase();
        let status = match pb::UserStatus::try_from(message.status) {
            Ok(pb::UserStatus::Unspecified) => None,
            Ok(pb::UserStatus::Active) => Some("active"),
            Ok(pb::UserStatus::Suspended) => Some("suspended"),
            Ok(pb::UserStatus::Deleted) => Some("deleted"),
            Err(_) => {
                violations.add("status", "must be a known status");
                None
            }
        };
        let role = if message.role == pb::Role::Unspecified as i32 {
            None
        } else {
            let role = domain::role_from_proto(message.role);
            violations.check(role.is_some(), "role", "must be a known role");
            role
        };
        // The token is bound to the filters as they are applied (normalised).
        let filter = pb::ListUsersRequest {
            page_size: 0,
            page_token: String::new(),
            email_prefix: email_prefix.clone(),
            status: message.status,
            role: message.role,
        }
        .encode_to_vec();
        let caller = Caller::User(operator.principal.clone());
        let query = PageQuery {
            method: LIST_USERS_METHOD,
            caller: &caller,
            filter: &filter,
        };
        let page_tokens = self.accounts.page_tokens().await?;
        let after = page_tokens.read::<Uuid>(&mut violations, &query, &message.page_token);
        done(violations)?;
        let user_filter = crate::repo::UserFilter {
            email_prefix: &email_prefix,
            status,
            role: role.map(fitflow_auth::Role::as_str),
        };
        let page = self
            .accounts
            .list_users(operator, &user_filter, page_size, after)
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            next_page_token: page
                .next_after
                .map(|cursor| page_tokens.issue(&query, &cursor))
                .unwrap_or_default(),
            users: page.accounts.into_iter().map(user_to_proto).collect(),
        }))
    }

    async fn grant_role(
        &self,
        request: Request<pb::GrantRoleRequest>,
    ) -> Result<Response<pb::GrantRoleResponse>, Status> {
        let message = request.get_ref();
        let (operator, user_id, role) =
            operator_user_and_role(&request, &message.user_id, message.role)?;
        let account = self
            .accounts
            .change_role(operator, user_id, RoleChange::Grant(role))
            .await?;
        Ok(Response::new(pb::GrantRoleResponse {
            user: Some(user_to_proto(account)),
        }))
    }

    async fn revoke_role(
        &self,
        request: Request<pb::RevokeRoleRequest>,
    ) -> Result<Response<pb::RevokeRoleResponse>, Status> {
        let message = request.get_ref();
        let (operator, user_id, role) =
            operator_user_and_role(&request, &message.user_id, message.role)?;
        let account = self
            .accounts
            .change_role(operator, user_id, RoleChange::Revoke(role))
            .await?;
        Ok(Response::new(pb::RevokeRoleResponse {
            user: Some(user_to_proto(account)),
        }))
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::RefreshTokenResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        check_token(&mut violations, "refresh_token", &request.refresh_token);
        done(violations)?;
        let tokens = self.accounts.refresh(&request.refresh_token).await?;
        Ok(Response::new(pb::RefreshTokenResponse {
            tokens: Some(tokens_to_proto(tokens)),
        }))
    }

    async fn get_current_user(
        &self,
        request: Request<pb::GetCurrentUserRequest>,
    ) -> Result<Response<pb::GetCurrentUserResponse>, Status> {
        let principal = principal(&request)?;
        let account = self.accounts.current(&principal).await?;
        Ok(Response::new(pb::GetCurrentUserResponse {
            user: Some(user_to_proto(account)),
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        let keys = self.accounts.signer().public_keys().await?;
        Ok(Response::new(pb::GetJwksResponse {
            jwks_json: domain::jwks_json(&keys),
        }))
    }

    async fn lookup_user(
        &self,
        request: Request<pb::LookupUserRequest>,
    ) -> Result<Response<pb::LookupUserResponse>, Status> {
        require_lookup_peer(&request).map_err(reject)?;
        let key = lookup_key(request.into_inner().key).map_err(reject)?;
        let account = self.accounts.lookup_user(&key).await?;
        Ok(Response::new(pb::LookupUserResponse {
            user_id: account.id.to_string(),
            email: account.email,
            display_name: account.display_name,
            status: status_to_proto(&account.status).into(),
            email_verified: account.email_verified,
        }))
    }

    async fn watch_revocations(
        &self,
        request: Request<pb::WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        require_service_peer(&request).map_err(reject)?;
        let after = request.get_ref().after_position;
        let mut violations = Violations::new();
        violations.check(after >= 0, "after_position", "must not be negative");
        done(violations)?;
        let batches = self
            .accounts
            .watch_revocations(after)
            .map(|batch| batch.map(revocations_to_proto).map_err(Status::from));
        Ok(Response::new(Box::pin(batches)))
    }

    async fn invalidate_claims(
        &self,
        request: Request<pb::InvalidateClaimsRequest>,
    ) -> Result<Response<pb::InvalidateClaimsResponse>, Status> {
        require_tenancy_peer(&request).map_err(reject)?;
        let command_id = fitflow_outbox::command_id(&request);
        let user_ids = claims_user_ids(&request.get_ref().user_ids).map_err(reject)?;
        self.accounts
            .invalidate_claims(command_id, user_ids)
            .await?;
        Ok(Response::new(pb::InvalidateClaimsResponse {}))
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

fn check_token(violations: &mut Violations, field: &str, token: &str) {
    violations.check(!token.is_empty(), field, "must not be empty");
    violations.check(token.len() <= MAX_TOKEN_BYTES, field, "is too long");
}

fn check_password(violations: &mut Violations, field: &str, password: &str) {
    violations.check(!password.is_empty(), field, "must not be empty");
    violations.check(
        password.len() <= MAX_LOGIN_PASSWORD_BYTES,
        field,
        "is too long",
    );
}

fn check_uuid(violations: &mut Violations, field: &str, raw: &str) -> Option<Uuid> {
    let parsed = Uuid::try_parse(raw).ok();
    violations.check(parsed.is_some(), field, "must be a UUID");
    parsed
}

/// PERMISSION_DENIED unless tenancy or clients calls `LookupUser`: the
/// peer policy admits no one else; checked again here so the handler never
/// relies on a policy table alone for an RPC that finds any account by
/// email.
fn require_lookup_peer<T>(request: &Request<T>) -> Result<(), ApiError> {
    let peer = fitflow_auth::peer(request);
    if peer.is_some_and(|peer| crate::LOOKUP_PEERS.contains(&peer.0.as_str())) {
        Ok(())
    } else {
        Err(ApiError::permission_denied(
            "PEER_NOT_ALLOWED",
            "only the tenancy and clients services may call this method",
        ))
    }
}

/// PERMISSION_DENIED unless tenancy calls. The peer policy admits no one
/// else to `InvalidateClaims`; checked again here so the handler never
/// relies on a policy table alone for an RPC that logs users out.
fn require_tenancy_peer<T>(request: &Request<T>) -> Result<(), ApiError> {
    let peer = fitflow_auth::peer(request);
    if peer.is_some_and(|peer| peer.0 == crate::TENANCY_PEER) {
        Ok(())
    } else {
        Err(ApiError::permission_denied(
            "PEER_NOT_ALLOWED",
            "only the tenancy service may call this method",
        ))
    }
}

/// PERMISSION_DENIED unless a FitFlow service calls (checked again beside
/// the peer policy, like [`require_tenancy_peer`]).
fn require_service_peer<T>(request: &Request<T>) -> Result<(), ApiError> {
    let peer = fitflow_auth::peer(request);
    if peer.is_some_and(|peer| fitflow_server::SERVICE_PEERS.contains(&peer.0.as_str())) {
        Ok(())
    } else {
        Err(ApiError::permission_denied(
            "PEER_NOT_ALLOWED",
            "only FitFlow services may watch revocations",
        ))
    }
}

/// Most users one `InvalidateClaims` names.
const MAX_INVALIDATED_USERS: usize = 1_000;

/// The users of an `InvalidateClaims`, each once; field violations for an
/// empty or too long list and for values that are not UUIDs.
fn claims_user_ids(raw: &[String]) -> Result<Vec<Uuid>, ApiError> {
    let mut violations = Violations::new();
    violations.check(!raw.is_empty(), "user_ids", "must name at least one user");
    violations.check(
        raw.len() <= MAX_INVALIDATED_USERS,
        "user_ids",
        "must name at most 1000 users",
    );
    let mut user_ids = Vec::with_capacity(raw.len());
    for (index, id) in raw.iter().enumerate().take(MAX_INVALIDATED_USERS) {
        if let Some(id) = check_uuid(&mut violations, &format!("user_ids[{index}]"), id) {
            user_ids.push(id);
        }
    }
    violations.into_result()?;
    user_ids.sort_unstable();
    user_ids.dedup();
    Ok(user_ids)
}

fn revocations_to_proto(batch: RevocationBatch) -> pb::WatchRevocationsResponse {
    pb::WatchRevocationsResponse {
        revocations: batch
            .entries
            .into_iter()
            .map(|entry| pb::Revocation {
                position: entry.position,
                kind: revocation_kind_to_proto(entry.kind).into(),
                subject_id: entry.subject_id.to_string(),
                issued_before: Some(timestamp(entry.issued_before)),
                expire_time: Some(timestamp(entry.expires_at)),
            })
            .collect(),
        position: batch.position,
        caught_up: batch.caught_up,
    }
}

fn revocation_kind_to_proto(kind: RevocationKind) -> pb::RevocationKind {
    match kind {
        RevocationKind::SessionRevoked => pb::RevocationKind::SessionRevoked,
        RevocationKind::UserDisabled => pb::RevocationKind::UserDisabled,
        RevocationKind::ClaimsStale => pb::RevocationKind::ClaimsStale,
    }
}

/// The account `LookupUser` asks for; field violations for a missing key, a
/// bad id or a bad email (normalised as `Register` does).
fn lookup_key(key: Option<pb::lookup_user_request::Key>) -> Result<LookupKey, ApiError> {
    let mut violations = Violations::new();
    let found = match key {
        Some(pb::lookup_user_request::Key::UserId(raw)) => {
            check_uuid(&mut violations, "user_id", &raw).map(LookupKey::UserId)
        }
        Some(pb::lookup_user_request::Key::Email(raw)) => {
            let email = domain::normalize_email(&raw);
            violations.check(
                email.is_some(),
                "email",
                "must be an email address of at most 254 characters",
            );
            email.map(LookupKey::Email)
        }
        None => {
            violations.add("key", "set user_id or email");
            None
        }
    };
    violations.into_result()?;
    found.ok_or_else(|| ApiError::internal(&"a valid lookup key was not kept"))
}

/// The second-factor oneof of `CompleteMfaLogin` and `DisableMfa`, unified.
enum MfaProofField {
    Totp(String),
    Recovery(String),
}

impl From<pb::complete_mfa_login_request::Proof> for MfaProofField {
    fn from(proof: pb::complete_mfa_login_request::Proof) -> Self {
        match proof {
            pb::complete_mfa_login_request::Proof::TotpCode(code) => MfaProofField::Totp(code),
            pb::complete_mfa_login_request::Proof::RecoveryCode(code) => {
                MfaProofField::Recovery(code)
            }
        }
    }
}

impl From<pb::disable_mfa_request::Proof> for MfaProofField {
    fn from(proof: pb::disable_mfa_request::Proof) -> Self {
        match proof {
            pb::disable_mfa_request::Proof::TotpCode(code) => MfaProofField::Totp(code),
            pb::disable_mfa_request::Proof::RecoveryCode(code) => MfaProofField::Recovery(code),
        }
    }
}

fn mfa_proof(violations: &mut Violations, proof: Option<MfaProofField>) -> MfaProof {
    match proof {
        Some(MfaProofField::Totp(code)) => {
            violations.check(
                domain::is_totp_code_shape(&code),
                "totp_code",
                "must be 6 digits",
            );
            MfaProof::TotpCode(code)
        }
        Some(MfaProofField::Recovery(code)) => {
            violations.check(
                domain::normalize_recovery_code(&code).is_some(),
                "recovery_code",
                "must be a recovery code (xxxx-xxxx-xxxx-xxxx)",
            );
            MfaProof::RecoveryCode(code)
        }
        None => {
            violations.add("proof", "set totp_code or recovery_code");
            MfaProof::TotpCode(String::new())
        }
    }
}

/// The caller, who must call over the operator certificate (the peer policy
/// already admits no other peer here) and hold the operator role in a
/// session that completed MFA; checked before the request is validated, so
/// anyone else learns nothing from validation errors.
fn operator<T>(request: &Request<T>) -> Result<OperatorCall<'_>, Status> {
    let peer = fitflow_auth::peer(request);
    fitflow_auth::require_operator_peer(peer).map_err(reject)?;
    let principal = fitflow_auth::principal(request).map_err(reject)?;
    principal
        .require_role(fitflow_auth::Role::Operator)
        .map_err(reject)?;
    Ok(OperatorCall {
        principal,
        peer: peer.map_or("", |peer| peer.0.as_str()),
    })
}

fn operator_and_user<'r, T>(
    request: &'r Request<T>,
    raw_user_id: &str,
) -> Result<(OperatorCall<'r>, Uuid), Status> {
    let principal = operator(request)?;
    let mut violations = Violations::new();
    let user_id = check_uuid(&mut violations, "user_id", raw_user_id);
    done(violations)?;
    Ok((principal, user_id.unwrap_or_default()))
}

fn operator_user_and_role<'r, T>(
    request: &'r Request<T>,
    raw_user_id: &str,
    raw_role: i32,
) -> Result<(OperatorCall<'r>, Uuid, fitflow_auth::Role), Status> {
    let principal = operator(request)?;
    let mut violations = Violations::new();
    let user_id = check_uuid(&mut violations, "user_id", raw_user_id);
    let role = domain::role_from_proto(raw_role);
    violations.check(role.is_some(), "role", "must be a known role");
    done(violations)?;
    Ok((
        principal,
        user_id.unwrap_or_default(),
        role.unwrap_or(fitflow_auth::Role::Trainer),
    ))
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn status_to_proto(status: &str) -> pb::UserStatus {
    match status {
        "active" => pb::UserStatus::Active,
        "suspended" => pb::UserStatus::Suspended,
        "deleted" => pb::UserStatus::Deleted,
        _ => pb::UserStatus::Unspecified,
    }
}

fn user_to_proto(account: Account) -> pb::User {
    let status = status_to_proto(&account.status);
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
        delete_time: account.deleted_at.map(timestamp),
        etag: account.etag.into(),
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
