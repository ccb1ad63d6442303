//! Account rules: validation, normalisation, password hashing, one-time
//! tokens and access-token claims. No I/O, so every rule is unit-tested.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fitflow_auth::{AUDIENCE, Claims, ISSUER, Role};
use fitflow_error::Violations;
use ring::rand::SecureRandom as _;
use uuid::Uuid;

/// Lifetime of an access token.
pub const ACCESS_TOKEN_TTL: chrono::Duration = chrono::Duration::minutes(15);
/// Lifetime of a refresh token.
pub const REFRESH_TOKEN_TTL: chrono::Duration = chrono::Duration::days(30);
/// Lifetime of an email verification token.
pub const EMAIL_VERIFICATION_TTL: chrono::Duration = chrono::Duration::hours(48);

const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_CHARS: usize = 128;
const MAX_EMAIL_CHARS: usize = 254;
const MAX_DISPLAY_NAME_CHARS: usize = 100;
/// Longest free-text metadata we keep from a login (user agent, address).
pub const MAX_CLIENT_FIELD_CHARS: usize = 512;

/// Common passwords of at least 12 characters, lower-cased, one per line.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Trims and lower-cases an email address and checks its shape.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() || email.chars().count() > MAX_EMAIL_CHARS {
        return None;
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    let valid = !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..");
    valid.then_some(email)
}

/// Checks a new password against the policy; returns what is wrong.
pub fn password_problem(password: &str) -> Option<&'static str> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_CHARS {
        return Some("must be at least 12 characters");
    }
    if length > MAX_PASSWORD_CHARS {
        return Some("must be at most 128 characters");
    }
    let lowered = password.to_lowercase();
    if COMMON_PASSWORDS.lines().any(|common| common == lowered) {
        return Some("is too common; choose another");
    }
    None
}

/// Checks a display name; returns what is wrong.
pub fn display_name_problem(name: &str) -> Option<&'static str> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Some("must not be empty");
    }
    if trimmed.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Some("must be at most 100 characters");
    }
    if trimmed.chars().any(char::is_control) {
        return Some("must not contain control characters");
    }
    None
}

/// A validated registration.
#[derive(Clone)]
pub struct NewAccount {
    /// Normalised email.
    pub email: String,
    /// Trimmed display name.
    pub display_name: String,
    /// Granted roles (never operator at sign-up).
    pub roles: Vec<Role>,
}

/// Validates a registration request's fields, collecting every violation.
pub fn validate_registration(
    email: &str,
    password: &str,
    display_name: &str,
    requested_roles: &[i32],
) -> Result<NewAccount, fitflow_error::ApiError> {
    use fitflow_proto::identity::Role as ProtoRole;
    let mut violations = Violations::new();
    let normalized = normalize_email(email);
    violations.check(
        normalized.is_some(),
        "email",
        "must be an email address of at most 254 characters",
    );
    if let Some(problem) = password_problem(password) {
        violations.add("password", problem);
    }
    if let Some(problem) = display_name_problem(display_name) {
        violations.add("display_name", problem);
    }
    let mut roles = Vec::new();
    for (index, raw) in requested_roles.iter().enumerate() {
        let role = match ProtoRole::try_from(*raw) {
            Ok(ProtoRole::Trainer) => Role::Trainer,
            Ok(ProtoRole::TrainerAdmin) => Role::TrainerAdmin,
            Ok(ProtoRole::StudioOwner) => Role::StudioOwner,
            Ok(ProtoRole::Operator) => {
                violations.add(
                    format!("roles[{index}]"),
                    "operator cannot be requested at sign-up",
                );
                continue;
            }
            Ok(ProtoRole::Unspecified) | Err(_) => {
                violations.add(format!("roles[{index}]"), "must be a known role");
                continue;
            }
        };
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    violations.into_result()?;
    if roles.is_empty() {
        roles.push(Role::Trainer);
    }
    Ok(NewAccount {
        email: normalized.unwrap_or_default(),
        display_name: display_name.trim().to_owned(),
        roles,
    })
}

/// Maps a role to its proto enum value.
pub fn role_to_proto(role: Role) -> fitflow_proto::identity::Role {
    use fitflow_proto::identity::Role as ProtoRole;
    match role {
        Role::Trainer => ProtoRole::Trainer,
        Role::TrainerAdmin => ProtoRole::TrainerAdmin,
        Role::StudioOwner => ProtoRole::StudioOwner,
        Role::Operator => ProtoRole::Operator,
    }
}

/// argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string. CPU-heavy: call on a blocking thread.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt_bytes = [0_u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt_bytes)
        .map_err(|_| argon2::password_hash::Error::Crypto)?;
    let salt = SaltString::encode_b64(&salt_bytes)?;
    Ok(hasher()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Whether `password` matches the PHC string. CPU-heavy: call on a blocking thread.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            hasher()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A fresh opaque token (256 random bits, base64url) and the hash we store.
pub fn new_opaque_token() -> Result<(String, Vec<u8>), ring::error::Unspecified> {
    let mut bytes = [0_u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes)?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    Ok((token, hash))
}

/// The stored form of an opaque token: its SHA-256.
pub fn hash_token(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// The claims of a new access token.
pub fn access_claims(
    user_id: Uuid,
    session_id: Uuid,
    roles: &[Role],
    now: chrono::DateTime<chrono::Utc>,
) -> Claims {
    Claims {
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        sub: user_id,
        sid: session_id,
        roles: roles.iter().map(|role| role.as_str().to_owned()).collect(),
        sup: Vec::new(),
        iat: now.timestamp(),
        exp: (now + ACCESS_TOKEN_TTL).timestamp(),
        jti: Uuid::now_v7(),
    }
}

/// The `kid` of a transit signing key version.
pub fn key_id(key_name: &str, version: u64) -> String {
    format!("{key_name}:v{version}")
}

/// The JWS signing input (`header.payload`, base64url) for `claims` under `key_id`.
pub fn signing_input(claims: &Claims, key_id: &str) -> Result<String, serde_json::Error> {
    let header = serde_json::json!({ "alg": "EdDSA", "typ": "JWT", "kid": key_id });
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
    ))
}

/// A compact JWS from its signing input and raw signature.
pub fn compact_jws(signing_input: &str, signature: &[u8]) -> String {
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            normalize_email("  Ana.Silva@Example.COM "),
            Some("ana.silva@example.com".into())
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "no-at-sign",
            "a@b",
            "a@@b.ca",
            "@example.com",
            "a b@example.com",
            "a@.example.com",
            "a@example..com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad:?} should be refused");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(normalize_email(&long), None);
    }

    #[test]
    fn passwords_shorter_than_twelve_characters_are_refused() {
        assert!(password_problem("elevenchars").is_some());
        assert!(password_problem("correct horse battery").is_none());
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        assert_eq!(
            password_problem("PasswordPassword"),
            Some("is too common; choose another")
        );
    }

    #[test]
    fn operator_cannot_be_requested_at_sign_up() {
        let error = validate_registration(
            "a@example.com",
            "correct horse battery",
            "Ana",
            &[fitflow_proto::identity::Role::Operator as i32],
        )
        .err()
        .expect("refused");
        assert_eq!(error.violations[0].field, "roles[0]");
    }

    #[test]
    fn registration_reports_every_bad_field_at_once() {
        let error = validate_registration("nope", "short", "", &[99])
            .err()
            .expect("refused");
        let fields: Vec<_> = error.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["email", "password", "display_name", "roles[0]"]);
    }

    #[test]
    fn a_registration_without_roles_is_a_trainer() {
        let account =
            validate_registration("a@example.com", "correct horse battery", " Ana ", &[]).unwrap();
        assert_eq!(account.roles, vec![Role::Trainer]);
        assert_eq!(account.display_name, "Ana");
    }

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse battery!", &phc));
    }

    #[test]
    fn opaque_tokens_are_random_and_stored_only_as_hashes() {
        let (first, first_hash) = new_opaque_token().unwrap();
        let (second, _) = new_opaque_token().unwrap();
        assert_ne!(first, second);
        assert_eq!(first_hash, hash_token(&first));
        assert_eq!(first_hash.len(), 32);
    }
}
