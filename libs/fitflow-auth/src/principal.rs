//! The authenticated caller.

use std::fmt;
use std::str::FromStr;

use fitflow_error::ApiError;
use uuid::Uuid;

/// A role a user holds; carried in the access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// An independent trainer.
    Trainer,
    /// A trainer who supervises other trainers.
    TrainerAdmin,
    /// The owner of one or more studios.
    StudioOwner,
    /// FitFlow platform support.
    Operator,
}

impl Role {
    /// The role's name as stored and as carried in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Trainer => "trainer",
            Role::TrainerAdmin => "trainer_admin",
            Role::StudioOwner => "studio_owner",
            Role::Operator => "operator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "trainer" => Ok(Role::Trainer),
            "trainer_admin" => Ok(Role::TrainerAdmin),
            "studio_owner" => Ok(Role::StudioOwner),
            "operator" => Ok(Role::Operator),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// A user authenticated by a verified access token.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's id.
    pub user_id: Uuid,
    /// The session the token belongs to.
    pub session_id: Uuid,
    /// The user's roles.
    pub roles: Vec<Role>,
    /// Trainers this user supervises (trainer hierarchy).
    pub supervised_trainer_ids: Vec<Uuid>,
    /// How the session was authenticated (the token's `amr`, RFC 8176):
    /// `["pwd"]`, or `["pwd", "otp"]` after a second factor.
    pub amr: Vec<String>,
    /// Studios the user manages (owned, and every location below), from
    /// tenancy's structure at login or refresh.
    pub studio_ids: Vec<Uuid>,
    /// The token's structure was cut at 256 ids of a kind. A service that
    /// authorizes from the structure has its verifier complete the lists
    /// from tenancy (`fitflow_auth::structure`), and this stays true only
    /// when tenancy could not answer (the token's own, shorter lists) or
    /// even its answer was cut.
    pub claims_truncated: bool,
    /// Tenancy could not be asked when the token was issued: it carries the
    /// user's own id only (fewer rights, never more); refresh for the rest.
    pub claims_partial: bool,
}

/// The `amr` value of a session that completed a second factor (RFC 8176).
pub const AMR_OTP: &str = "otp";
/// The `amr` value of a password login (RFC 8176).
pub const AMR_PASSWORD: &str = "pwd";

impl Principal {
    /// Whether the user holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the user may act for `trainer_id`: it is the user, or one the user supervises.
    pub fn acts_for(&self, trainer_id: Uuid) -> bool {
        self.user_id == trainer_id || self.supervised_trainer_ids.contains(&trainer_id)
    }

    /// Whether the session behind the token completed a second factor.
    pub fn completed_mfa(&self) -> bool {
        self.amr.iter().any(|method| method == AMR_OTP)
    }

    /// The platform's role check: PERMISSION_DENIED with reason
    /// `ROLE_REQUIRED` (declared in `fitflow.type.v1.ErrorReason`) unless the
    /// user holds `role`. The operator role reaches every account, so a
    /// stolen password alone must not wield it: it counts only in a session
    /// that completed MFA (reason `MFA_REQUIRED` otherwise). Handlers call it
    /// before validating the request, so a caller without the role learns
    /// nothing from validation errors.
    pub fn require_role(&self, role: Role) -> Result<(), ApiError> {
        if !self.has_role(role) {
            return Err(ApiError::permission_denied(
                "ROLE_REQUIRED",
                format!("the {role} role is required"),
            ));
        }
        if role == Role::Operator && !self.completed_mfa() {
            return Err(ApiError::permission_denied(
                "MFA_REQUIRED",
                "the operator role needs a session that completed multi-factor authentication",
            ));
        }
        Ok(())
    }

    /// Whether [`Principal::require_role`] would admit `role`.
    pub fn may_act_as(&self, role: Role) -> bool {
        self.require_role(role).is_ok()
    }

    /// The platform's tenant check for a request that names the tenant it
    /// reads or changes: PERMISSION_DENIED with reason `TENANT_REQUIRED` when
    /// it names none, `TENANT_NOT_ALLOWED` when the user does not act for it
    /// (see [`Principal::acts_for`]); otherwise the tenant. Whether a role
    /// (an operator, say) may skip this check is each RPC's own rule.
    pub fn require_tenant(&self, tenant_id: Option<Uuid>) -> Result<Uuid, ApiError> {
        let Some(tenant_id) = tenant_id else {
            return Err(ApiError::permission_denied(
                "TENANT_REQUIRED",
                "name the tenant you act for in tenant_id",
            ));
        };
        if self.acts_for(tenant_id) {
            Ok(tenant_id)
        } else {
            Err(ApiError::permission_denied(
                "TENANT_NOT_ALLOWED",
                "the caller does not act for this tenant",
            ))
        }
    }
}

// Ids are not secrets, but keep the Debug output short and predictable.
impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("user_id", &self.user_id)
            .field("roles", &self.roles)
            .field("amr", &self.amr)
            .finish_non_exhaustive()
    }
}

/// Who a unit of work runs for; sets the database's row-level-security context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An end user, through a verified token.
    User(Principal),
    /// A FitFlow service acting on its own (relays, maintenance), by name.
    Service(&'static str),
    /// Nobody yet: registration and login, before a token exists.
    Anonymous,
}

impl Caller {
    /// The user id for row-level security, if a user is calling.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Caller::User(principal) => Some(principal.user_id),
            Caller::Service(_) | Caller::Anonymous => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_name() {
        for role in [
            Role::Trainer,
            Role::TrainerAdmin,
            Role::StudioOwner,
            Role::Operator,
        ] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn a_supervisor_acts_for_supervised_trainers_only() {
        let supervised = Uuid::new_v4();
        let principal = Principal {
            user_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            roles: vec![Role::TrainerAdmin],
            supervised_trainer_ids: vec![supervised],
            amr: vec![AMR_PASSWORD.into()],
            studio_ids: Vec::new(),
            claims_truncated: false,
            claims_partial: false,
        };
        assert!(principal.acts_for(principal.user_id));
        assert!(principal.acts_for(supervised));
        assert!(!principal.acts_for(Uuid::new_v4()));
    }

    fn trainer_supervising(supervised: Uuid) -> Principal {
        Principal {
            user_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            roles: vec![Role::TrainerAdmin],
            supervised_trainer_ids: vec![supervised],
            amr: vec![AMR_PASSWORD.into()],
            studio_ids: Vec::new(),
            claims_truncated: false,
            claims_partial: false,
        }
    }

    fn operator_with_amr(amr: &[&str]) -> Principal {
        Principal {
            user_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            roles: vec![Role::Operator],
            supervised_trainer_ids: vec![],
            amr: amr.iter().map(|method| (*method).to_owned()).collect(),
            studio_ids: Vec::new(),
            claims_truncated: false,
            claims_partial: false,
        }
    }

    #[test]
    fn an_operator_whose_session_skipped_mfa_is_refused_with_mfa_required() {
        for amr in [&[][..], &[AMR_PASSWORD][..]] {
            let refused = operator_with_amr(amr)
                .require_role(Role::Operator)
                .unwrap_err();
            assert_eq!(refused.code, tonic::Code::PermissionDenied);
            assert_eq!(refused.reason, "MFA_REQUIRED");
        }
    }

    #[test]
    fn an_operator_whose_session_completed_mfa_is_admitted() {
        let operator = operator_with_amr(&[AMR_PASSWORD, AMR_OTP]);
        assert_eq!(operator.require_role(Role::Operator), Ok(()));
        assert!(operator.may_act_as(Role::Operator));
    }

    #[test]
    fn a_trainer_role_needs_no_second_factor() {
        let trainer = Principal {
            roles: vec![Role::Trainer],
            ..operator_with_amr(&[AMR_PASSWORD])
        };
        assert_eq!(trainer.require_role(Role::Trainer), Ok(()));
    }

    #[test]
    fn a_missing_role_is_refused_with_role_required() {
        let principal = trainer_supervising(Uuid::new_v4());
        assert_eq!(principal.require_role(Role::TrainerAdmin), Ok(()));
        let refused = principal.require_role(Role::Operator).unwrap_err();
        assert_eq!(refused.code, tonic::Code::PermissionDenied);
        assert_eq!(refused.reason, "ROLE_REQUIRED");
        assert!(refused.message.contains("operator"), "{}", refused.message);
    }

    #[test]
    fn a_user_may_name_only_a_tenant_they_act_for() {
        let supervised = Uuid::new_v4();
        let principal = trainer_supervising(supervised);
        assert_eq!(
            principal.require_tenant(Some(principal.user_id)),
            Ok(principal.user_id)
        );
        assert_eq!(principal.require_tenant(Some(supervised)), Ok(supervised));
        let stranger = principal.require_tenant(Some(Uuid::new_v4())).unwrap_err();
        assert_eq!(stranger.code, tonic::Code::PermissionDenied);
        assert_eq!(stranger.reason, "TENANT_NOT_ALLOWED");
        let unnamed = principal.require_tenant(None).unwrap_err();
        assert_eq!(unnamed.code, tonic::Code::PermissionDenied);
        assert_eq!(unnamed.reason, "TENANT_REQUIRED");
    }
}

/// The mTLS identity of the calling peer: the last segment of its SPIFFE id
/// (`spiffe://fitflow/<name>`), e.g. `identity`, `gateway` or `operator`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity(pub String);

/// The mTLS peer name of operators' tools (`spiffe://fitflow/operator`).
pub const OPERATOR_PEER: &str = "operator";

/// PERMISSION_DENIED with reason `PEER_NOT_ALLOWED` unless the call came
/// over the operator's own certificate. Operator powers reach every account,
/// so they are refused through the gateway even to an operator's token: a
/// stolen token replayed through the public edge must not wield them.
pub fn require_operator_peer(peer: Option<&PeerIdentity>) -> Result<(), ApiError> {
    if peer.is_some_and(|peer| peer.0 == OPERATOR_PEER) {
        Ok(())
    } else {
        Err(ApiError::permission_denied(
            "PEER_NOT_ALLOWED",
            "operator actions are accepted only over the operator certificate",
        ))
    }
}

/// The principal that the server's token layer attached to `request`, or
/// UNAUTHENTICATED when the request carried no bearer token.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<&Principal, ApiError> {
    request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| ApiError::unauthenticated("TOKEN_REQUIRED", "a bearer token is required"))
}

/// The caller's bearer token as sent, to forward to another service that
/// decides for the same user (the token layer verified it before the
/// handler ran); empty when there is none.
pub fn forwarded_bearer<T>(request: &tonic::Request<T>) -> String {
    request
        .metadata()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The mTLS peer that the server attached to `request`.
pub fn peer<T>(request: &tonic::Request<T>) -> Option<&PeerIdentity> {
    request.extensions().get::<PeerIdentity>()
}
