//! Account rules: validation, normalisation, password hashing, one-time
//! tokens and access-token claims. No I/O, so every rule is unit-tested.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fitflow_auth::{AUDIENCE, Claims, ISSUER, Role};
use fitflow_error::Violations;
use ring::rand::SecureRandom as _;
use uuid::Uuid;

use crate::structure::ActingFor;

/// Lifetime of an access token.
pub const ACCESS_TOKEN_TTL: chrono::Duration = chrono::Duration::minutes(15);
/// Lifetime of a refresh token.
pub const REFRESH_TOKEN_TTL: chrono::Duration = chrono::Duration::days(30);
/// How long after a refresh its spent token may be presented once more, as
/// the retry of a lost response, and get a fresh pair of the same session
/// instead of revoking it as reuse.
pub const REFRESH_RETRY_WINDOW: chrono::Duration = chrono::Duration::seconds(10);
/// Lifetime of an email verification token.
pub const EMAIL_VERIFICATION_TTL: chrono::Duration = chrono::Duration::hours(48);
/// Lifetime of a password reset token.
pub const PASSWORD_RESET_TTL: chrono::Duration = chrono::Duration::hours(1);
/// Shortest time between two verification codes mailed to one account.
pub const RESEND_INTERVAL: chrono::Duration = chrono::Duration::minutes(1);
/// Lifetime of an MFA login challenge.
pub const MFA_CHALLENGE_TTL: chrono::Duration = chrono::Duration::minutes(5);
/// Wrong codes after which an MFA challenge is spent.
pub const MFA_CHALLENGE_MAX_FAILURES: i32 = 5;
/// Length of a TOTP step in seconds (RFC 6238 default, what authenticators use).
pub const TOTP_STEP_SECONDS: u64 = 30;
/// Steps accepted either side of the current one (clock drift).
const TOTP_SKEW_STEPS: i64 = 1;
/// Digits of a TOTP code.
const TOTP_DIGITS: usize = 6;
/// Bytes of a TOTP secret (160 bits, as RFC 4226 recommends).
const TOTP_SECRET_BYTES: usize = 20;
/// Issuer shown by authenticator apps.
const TOTP_ISSUER: &str = "FitFlow";
/// How many recovery codes a confirmation hands out.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Random bytes per recovery code (80 bits: 16 base32 characters).
const RECOVERY_CODE_BYTES: usize = 10;

const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_CHARS: usize = 128;
/// Longest email address accepted (and longest `ListUsers` email prefix).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;
/// Longest free-text metadata we keep from a login (user agent, address).
pub const MAX_CLIENT_FIELD_CHARS: usize = 512;

/// Common passwords of at least 12 characters, lower-cased, one per line.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Trims and lower-cases an email address and checks its shape.
pub fn normalize_email(raw: &str) -> Option<String> {
    // Checked before trimming: a control character is refused wherever it
    // is, never silently dropped (U+0085 and the C0 separators are trimmed
    // as whitespace).
    if raw.chars().any(char::is_control) {
        return None;
    }
    let email = raw.trim().to_lowercase();
    if email.is_empty() || email.chars().count() > MAX_EMAIL_CHARS {
        return None;
    }
    if email
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || is_invisible_in_email(c))
    {
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
    // A NUL cuts the password short in any C-string consumer, and no other
    // control character can be typed the same way on every device.
    if password.chars().any(char::is_control) {
        return Some("must not contain control characters");
    }
    let lowered = password.to_lowercase();
    if COMMON_PASSWORDS.lines().any(|common| common == lowered) {
        return Some("is too common; choose another");
    }
    None
}

/// Checks a display name; returns what is wrong.
pub fn display_name_problem(name: &str) -> Option<&'static str> {
    // Checked before trimming, so a trailing line break or NEL is refused
    // rather than silently dropped.
    if name.chars().any(char::is_control) {
        return Some("must not contain control characters");
    }
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Some("must not be empty");
    }
    if trimmed.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Some("must be at most 100 characters");
    }
    if trimmed.chars().any(is_spoofing_format_character) {
        return Some("must not contain invisible or direction-changing characters");
    }
    None
}

/// Whether `c` draws nothing or reorders the text after it (the platform's
/// rule for names shown to others, `fitflow_api::text`).
fn is_spoofing_format_character(c: char) -> bool {
    fitflow_api::text::hides_or_reorders_text(c)
}

/// Whether `c` must never be in an email address: every invisible
/// formatting character (the joiners, the soft hyphen, variation selectors and
/// tag characters too), since no real mailbox needs one and an address
/// holding one would be a second account that looks like the first.
fn is_invisible_in_email(c: char) -> bool {
    is_spoofing_format_character(c)
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{180E}'
                | '\u{200C}'
                | '\u{200D}'
                | '\u{206A}'..='\u{206F}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{E0000}'..='\u{E007F}'
        )
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
    // Supervision and studio ownership come only from tenancy's structure
    // (DESIGN.md §4), and operators are made by operators: a caller may ask
    // for nothing or for `trainer`, the role every account starts with.
    for (index, raw) in requested_roles.iter().enumerate() {
        match ProtoRole::try_from(*raw) {
            Ok(ProtoRole::Trainer) => {}
            Ok(ProtoRole::TrainerAdmin | ProtoRole::StudioOwner | ProtoRole::Operator) => {
                violations.add(
                    format!("roles[{index}]"),
                    "only trainer can be requested at sign-up",
                );
            }
            Ok(ProtoRole::Unspecified) | Err(_) => {
                violations.add(format!("roles[{index}]"), "must be a known role");
            }
        }
    }
    violations.into_result()?;
    Ok(NewAccount {
        email: normalized.unwrap_or_default(),
        display_name: display_name.trim().to_owned(),
        roles: vec![Role::Trainer],
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

/// Maps a proto enum value to a role; `None` for unspecified or unknown values.
pub fn role_from_proto(raw: i32) -> Option<Role> {
    use fitflow_proto::identity::Role as ProtoRole;
    match ProtoRole::try_from(raw).ok()? {
        ProtoRole::Trainer => Some(Role::Trainer),
        ProtoRole::TrainerAdmin => Some(Role::TrainerAdmin),
        ProtoRole::StudioOwner => Some(Role::StudioOwner),
        ProtoRole::Operator => Some(Role::Operator),
        ProtoRole::Unspecified => None,
    }
}

/// OWASP's recommended argon2id parameters: 19 MiB, 2 passes, 1 lane.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).unwrap_or_default()
}

/// argon2id with [`params`].
fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

/// argon2id's working memory (19 MiB at our parameters), kept by a hashing
/// thread and reused for every hash. Allocated per hash, as the library
/// does by default, each freed block stayed resident (glibc seldom reuses
/// freed 64-byte-aligned blocks): measured, every hash added 19 MiB to the
/// process until it plateaued at hundreds of MiB.
pub struct HashMemory(Vec<Block>);

impl HashMemory {
    /// Memory for our parameters; grows if a stored hash needs more.
    pub fn new() -> Self {
        Self(vec![Block::default(); params().block_count()])
    }

    fn blocks_for(&mut self, params: &Params) -> &mut [Block] {
        let needed = params.block_count();
        if self.0.len() < needed {
            self.0.resize(needed, Block::default());
        }
        &mut self.0[..needed]
    }
}

impl Default for HashMemory {
    fn default() -> Self {
        Self::new()
    }
}

/// Hashes a password into a PHC string. CPU-heavy: call on a blocking thread.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    hash_password_in(&mut HashMemory::new(), password)
}

/// [`hash_password`] in `memory`.
pub fn hash_password_in(
    memory: &mut HashMemory,
    password: &str,
) -> Result<String, argon2::password_hash::Error> {
    let mut salt_bytes = [0_u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt_bytes)
        .map_err(|_| argon2::password_hash::Error::Crypto)?;
    let salt = SaltString::encode_b64(&salt_bytes)?;
    let params = params();
    let mut output = [0_u8; Params::DEFAULT_OUTPUT_LEN];
    hasher().hash_password_into_with_memory(
        password.as_bytes(),
        &salt_bytes,
        &mut output,
        memory.blocks_for(&params),
    )?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string. CPU-heavy: call on a blocking thread.
pub fn verify_password(password: &str, phc: &str) -> bool {
    verify_password_in(&mut HashMemory::new(), password, phc)
}

/// [`verify_password`] in `memory`, with the algorithm, version and
/// parameters the PHC string names; the comparison is constant-time
/// (`password_hash::Output`'s equality).
pub fn verify_password_in(memory: &mut HashMemory, password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let Ok(version) = parsed.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    let mut salt_buffer = [0_u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buffer) else {
        return false;
    };
    let mut computed = vec![0_u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut computed,
        memory.blocks_for(&params),
    );
    hashed.is_ok() && Output::new(&computed).is_ok_and(|computed| computed == expected)
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

/// The `amr` of a session opened with `login_method` (`password`, `totp`
/// or `recovery_code`): RFC 8176's `pwd`, plus `otp` after a second factor.
pub fn session_amr(login_method: &str) -> Vec<String> {
    let mut amr = vec![fitflow_auth::AMR_PASSWORD.to_owned()];
    if login_method != "password" {
        amr.push(fitflow_auth::AMR_OTP.to_owned());
    }
    amr
}

/// The claims of a new access token.
pub fn access_claims(
    user_id: Uuid,
    session_id: Uuid,
    roles: &[Role],
    amr: &[String],
    acting_for: &ActingFor,
    now: chrono::DateTime<chrono::Utc>,
) -> Claims {
    Claims {
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        sub: user_id,
        sid: session_id,
        roles: roles.iter().map(|role| role.as_str().to_owned()).collect(),
        sup: acting_for.supervised.clone(),
        iat: now.timestamp(),
        exp: (now + ACCESS_TOKEN_TTL).timestamp(),
        jti: Uuid::now_v7(),
        amr: amr.to_vec(),
        studios: acting_for.studios.clone(),
        claims_truncated: acting_for.truncated,
        claims_partial: acting_for.partial,
    }
}

/// What a `revocations` row refuses (its `kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationKind {
    /// Every token of a session.
    SessionRevoked,
    /// A suspended or deleted account's tokens issued before the mark.
    UserDisabled,
    /// A user's tokens issued before the mark: stale structure claims.
    ClaimsStale,
}

impl RevocationKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationKind::SessionRevoked => "session_revoked",
            RevocationKind::UserDisabled => "user_disabled",
            RevocationKind::ClaimsStale => "claims_stale",
        }
    }

    /// The kind of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            RevocationKind::SessionRevoked,
            RevocationKind::UserDisabled,
            RevocationKind::ClaimsStale,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// Revocation entries to record for `subjects` (session ids or user ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevocations {
    /// What they refuse.
    pub kind: RevocationKind,
    /// Whose tokens.
    pub subjects: Vec<Uuid>,
    /// Tokens whose `iat` is earlier are refused.
    pub issued_before: chrono::DateTime<chrono::Utc>,
    /// When no token they refuse can be valid any more.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl NewRevocations {
    /// Entries for a change made at `now`. A mark on users is the next whole
    /// second: `iat` counts whole seconds, so a token issued earlier in the
    /// same second could not be told from one issued after the change (the
    /// issuer waits for the mark instead, see [`issue_delay`]).
    pub fn at(
        kind: RevocationKind,
        subjects: Vec<Uuid>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let issued_before = match kind {
            RevocationKind::SessionRevoked => now,
            RevocationKind::UserDisabled | RevocationKind::ClaimsStale => next_whole_second(now),
        };
        Self {
            kind,
            subjects,
            issued_before,
            expires_at: issued_before + revocation_lifetime(),
        }
    }
}

/// How long an entry matters: an access token's lifetime plus the clock
/// leeway verifiers grant past its expiry, plus a second for the mark's
/// rounding.
pub fn revocation_lifetime() -> chrono::Duration {
    ACCESS_TOKEN_TTL
        + chrono::Duration::from_std(fitflow_auth::EXPIRY_LEEWAY).unwrap_or_default()
        + chrono::Duration::seconds(1)
}

/// The first whole second strictly after `now`.
fn next_whole_second(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(now.timestamp() + 1, 0).unwrap_or(now)
}

/// How long to wait before issuing a token for a user whose latest mark is
/// `mark`: until the mark, so the token's whole-second `iat` is not before
/// it (else the new token would be refused as the old ones are). At most a
/// second, right after a change; nothing otherwise.
pub fn issue_delay(
    now: chrono::DateTime<chrono::Utc>,
    mark: chrono::DateTime<chrono::Utc>,
) -> Option<std::time::Duration> {
    (mark > now).then(|| (mark - now).to_std().unwrap_or_default())
}

/// The published verification keys as a JWKS document (RFC 7517), each an
/// `OKP` key on curve `Ed25519` whose `x` is the raw public key in base64url
/// without padding (RFC 8037 §2).
pub fn jwks_json(keys: &[fitflow_auth::PublicKeyEntry]) -> String {
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|key| {
            serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(&key.public_key),
                "kid": key.key_id,
                "alg": "EdDSA",
                "use": "sig",
            })
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
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

/// A fresh random TOTP secret.
pub fn new_totp_secret() -> Result<Vec<u8>, ring::error::Unspecified> {
    let mut secret = vec![0_u8; TOTP_SECRET_BYTES];
    ring::rand::SystemRandom::new().fill(&mut secret)?;
    Ok(secret)
}

/// The secret in unpadded base32, as authenticator apps expect it typed.
pub fn totp_secret_base32(secret: &[u8]) -> String {
    match totp_rs::Secret::Raw(secret.to_vec()).to_encoded() {
        totp_rs::Secret::Encoded(encoded) => encoded.trim_end_matches('=').to_owned(),
        totp_rs::Secret::Raw(_) => String::new(),
    }
}

/// Decodes a base32 secret (as returned by [`totp_secret_base32`]).
pub fn totp_secret_from_base32(encoded: &str) -> Option<Vec<u8>> {
    totp_rs::Secret::Encoded(encoded.to_owned()).to_bytes().ok()
}

/// The `otpauth://` URI an authenticator app reads from a QR code.
pub fn provisioning_uri(secret: &[u8], email: &str) -> String {
    let label = percent_encode(&format!("{TOTP_ISSUER}:{email}"));
    format!(
        "otpauth://totp/{label}?secret={}&issuer={TOTP_ISSUER}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECONDS}",
        totp_secret_base32(secret)
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn totp(secret: &[u8]) -> totp_rs::TOTP {
    totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        TOTP_DIGITS,
        0,
        TOTP_STEP_SECONDS,
        secret.to_vec(),
    )
}

/// The TOTP step containing `unix_seconds`.
pub fn totp_step(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(TOTP_STEP_SECONDS as i64)
}

/// The code an authenticator shows for `secret` at `unix_seconds`.
pub fn totp_code(secret: &[u8], unix_seconds: i64) -> String {
    totp(secret).generate(u64::try_from(unix_seconds).unwrap_or(0))
}

/// Whether `code` looks like a TOTP code (six ASCII digits).
pub fn is_totp_code_shape(code: &str) -> bool {
    code.len() == TOTP_DIGITS && code.bytes().all(|byte| byte.is_ascii_digit())
}

/// The step a TOTP `code` belongs to, if it is valid at `unix_seconds`
/// (one step of drift either way) and newer than `last_accepted_step`, so a
/// code is never accepted twice.
pub fn accepted_totp_step(
    secret: &[u8],
    code: &str,
    unix_seconds: i64,
    last_accepted_step: Option<i64>,
) -> Option<i64> {
    if !is_totp_code_shape(code) {
        return None;
    }
    let current = totp_step(unix_seconds);
    let generator = totp(secret);
    let mut matched = None;
    for step in (current - TOTP_SKEW_STEPS)..=(current + TOTP_SKEW_STEPS) {
        let Ok(step_start) = u64::try_from(step * TOTP_STEP_SECONDS as i64) else {
            continue;
        };
        // Compare every candidate, so the time taken does not reveal which matched.
        if constant_time_eq(generator.generate(step_start).as_bytes(), code.as_bytes()) {
            matched = Some(step);
        }
    }
    matched.filter(|step| last_accepted_step.is_none_or(|last| *step > last))
}

fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0_u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// Fresh recovery codes, formatted `xxxx-xxxx-xxxx-xxxx` (base32, 80 bits each).
pub fn new_recovery_codes() -> Result<Vec<String>, ring::error::Unspecified> {
    let random = ring::rand::SystemRandom::new();
    let mut codes = Vec::with_capacity(RECOVERY_CODE_COUNT);
    for _ in 0..RECOVERY_CODE_COUNT {
        let mut bytes = [0_u8; RECOVERY_CODE_BYTES];
        random.fill(&mut bytes)?;
        let plain = totp_secret_base32(&bytes).to_lowercase();
        let groups: Vec<&str> = plain
            .as_bytes()
            .chunks(4)
            .filter_map(|chunk| std::str::from_utf8(chunk).ok())
            .collect();
        codes.push(groups.join("-"));
    }
    Ok(codes)
}

/// A recovery code as typed, without dashes, spaces or case; `None` if it
/// cannot be one.
pub fn normalize_recovery_code(raw: &str) -> Option<String> {
    let code: String = raw
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    let valid = code.len() == 16
        && code
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || (b'2'..=b'7').contains(&byte));
    valid.then_some(code)
}

/// The stored form of a recovery code (high-entropy, so SHA-256 suffices).
pub fn hash_recovery_code(normalized: &str) -> Vec<u8> {
    hash_token(normalized)
}

/// Limits on failed logins for one key (an account or a client address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit {
    /// Failures allowed within a window before the key is locked.
    pub max_failures: i32,
    /// How long failures are counted together.
    pub window: chrono::Duration,
    /// How long a key stays locked.
    pub lockout: chrono::Duration,
}

/// Per account: 5 failures in 15 minutes lock it for 15 minutes.
pub const ACCOUNT_FAILURE_LIMIT: FailureLimit = FailureLimit {
    max_failures: 5,
    window: chrono::Duration::minutes(15),
    lockout: chrono::Duration::minutes(15),
};

/// Per client address: 20 failures in 15 minutes lock it for 15 minutes.
pub const ADDRESS_FAILURE_LIMIT: FailureLimit = FailureLimit {
    max_failures: 20,
    window: chrono::Duration::minutes(15),
    lockout: chrono::Duration::minutes(15),
};

/// Live sessions one user may hold; a login beyond it revokes the oldest,
/// so a stolen password cannot pile up sessions unnoticed.
pub const MAX_LIVE_SESSIONS: i64 = 20;

/// Per account, second factor: 10 wrong codes in 15 minutes lock the second
/// factor for 15 minutes. Only a complete login resets it, never a correct
/// password, so knowing the password does not buy fresh guesses.
pub const SECOND_FACTOR_FAILURE_LIMIT: FailureLimit = FailureLimit {
    max_failures: 10,
    window: chrono::Duration::minutes(15),
    lockout: chrono::Duration::minutes(15),
};

/// A key's failed-login counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCounter {
    /// When the current counting window began.
    pub window_start: chrono::DateTime<chrono::Utc>,
    /// Failures within the window.
    pub failures: i32,
    /// Locked until then, if locked.
    pub locked_until: Option<chrono::DateTime<chrono::Utc>>,
}

impl FailureCounter {
    /// The counter after one more failure at `now`: a new window when the old
    /// one is over, and a lockout when the limit is reached (counting restarts
    /// with it).
    pub fn after_failure(
        counter: Option<FailureCounter>,
        limit: FailureLimit,
        now: chrono::DateTime<chrono::Utc>,
    ) -> FailureCounter {
        let live = counter.filter(|c| c.window_start + limit.window > now);
        let failures = live.map_or(0, |c| c.failures) + 1;
        let locked_until = counter
            .and_then(|c| c.locked_until)
            .filter(|until| *until > now);
        if failures >= limit.max_failures {
            return FailureCounter {
                window_start: now,
                failures: 0,
                locked_until: Some(now + limit.lockout),
            };
        }
        FailureCounter {
            window_start: live.map_or(now, |c| c.window_start),
            failures,
            locked_until,
        }
    }

    /// How long the key stays locked from `now`, if it is locked.
    pub fn retry_after(&self, now: chrono::DateTime<chrono::Utc>) -> Option<chrono::Duration> {
        self.locked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }
}

/// Checks a page size (0 means the default); returns the number of rows to fetch.
pub fn page_size(requested: i32, default: i64, max: i64) -> Option<i64> {
    match i64::from(requested) {
        0 => Some(default),
        size if (1..=max).contains(&size) => Some(size),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_mark_on_users_is_the_next_whole_second_and_outlives_every_token_it_refuses() {
        let now = chrono::DateTime::from_timestamp(1_000, 250_000_000).unwrap();
        let user = Uuid::new_v4();
        let marks = NewRevocations::at(RevocationKind::ClaimsStale, vec![user], now);
        assert_eq!(marks.issued_before.timestamp(), 1_001);
        assert_eq!(marks.issued_before.timestamp_subsec_nanos(), 0);
        // A token issued just before the change: iat 1000 < 1001, refused
        // until it expires at 1900 plus the 30 s leeway.
        let claims = access_claims(
            user,
            Uuid::new_v4(),
            &[],
            &[],
            &ActingFor::partial(),
            now - chrono::Duration::milliseconds(100),
        );
        assert!(claims.iat < marks.issued_before.timestamp());
        assert!(claims.exp + 30 < marks.expires_at.timestamp());
        let exact = chrono::DateTime::from_timestamp(1_000, 0).unwrap();
        assert_eq!(
            NewRevocations::at(RevocationKind::UserDisabled, vec![user], exact)
                .issued_before
                .timestamp(),
            1_001
        );
        let sessions = NewRevocations::at(RevocationKind::SessionRevoked, vec![user], now);
        assert_eq!(sessions.issued_before, now);
    }

    #[test]
    fn a_token_is_issued_no_sooner_than_the_users_mark() {
        let now = chrono::DateTime::from_timestamp(1_000, 250_000_000).unwrap();
        let mark = chrono::DateTime::from_timestamp(1_001, 0).unwrap();
        assert_eq!(
            issue_delay(now, mark),
            Some(std::time::Duration::from_millis(750))
        );
        assert_eq!(issue_delay(mark, mark), None);
        assert_eq!(issue_delay(mark + chrono::Duration::seconds(5), mark), None);
    }

    #[test]
    fn revocation_kinds_round_trip_through_their_stored_names() {
        for kind in [
            RevocationKind::SessionRevoked,
            RevocationKind::UserDisabled,
            RevocationKind::ClaimsStale,
        ] {
            assert_eq!(RevocationKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(RevocationKind::parse("other"), None);
    }

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
    fn an_email_with_an_invisible_character_is_refused_as_a_lookalike() {
        for invisible in [
            "\u{200B}",
            "\u{200D}",
            "\u{202E}",
            "\u{FEFF}",
            "\u{AD}",
            "\u{E0041}",
        ] {
            let lookalike = format!("ana{invisible}@example.com");
            assert_eq!(normalize_email(&lookalike), None, "{invisible:?}");
        }
        assert!(normalize_email("zoë@exemple.ca").is_some());
    }

    #[test]
    fn a_display_name_that_hides_or_reorders_text_is_refused_but_every_script_is_a_name() {
        for invisible in [
            "\u{202E}", "\u{2066}", "\u{200B}", "\u{200F}", "\u{2060}", "\u{FEFF}",
        ] {
            let name = format!("FitFlow {invisible}Support");
            assert!(display_name_problem(&name).is_some(), "{invisible:?}");
        }
        // The zero-width non-joiner shapes Persian; the joiner builds emoji.
        for name in [
            "Zoë Lefèvre",
            "محمد",
            "می\u{200C}خواهم",
            "Ana \u{1F469}\u{200D}\u{1F4BB}",
            "李小龙",
        ] {
            assert_eq!(display_name_problem(name), None, "{name:?}");
        }
    }

    #[test]
    fn passwords_shorter_than_twelve_characters_are_refused() {
        assert!(password_problem("elevenchars").is_some());
        assert!(password_problem("correct horse battery").is_none());
    }

    #[test]
    fn a_control_character_at_either_end_is_refused_not_trimmed_away() {
        for bad in ["Ana\n", "\tAna", "Ana\u{85}", "\u{1c}Ana"] {
            assert!(display_name_problem(bad).is_some(), "{bad:?}");
            assert_eq!(
                normalize_email(&format!("{bad}@example.com")),
                None,
                "{bad:?}"
            );
        }
        assert_eq!(display_name_problem("  Ana  "), None);
    }

    #[test]
    fn a_new_password_holding_a_control_character_is_refused() {
        for bad in [
            "correct horse battery\0",
            "correct\thorse battery",
            "correct horse \u{1b}[0m",
        ] {
            assert!(password_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        assert_eq!(
            password_problem("PasswordPassword"),
            Some("is too common; choose another")
        );
    }

    #[test]
    fn no_privileged_role_can_be_requested_at_sign_up() {
        use fitflow_proto::identity::Role as ProtoRole;
        for privileged in [
            ProtoRole::Operator,
            ProtoRole::TrainerAdmin,
            ProtoRole::StudioOwner,
        ] {
            let error = validate_registration(
                "a@example.com",
                "correct horse battery",
                "Ana",
                &[ProtoRole::Trainer as i32, privileged as i32],
            )
            .err()
            .expect("refused");
            assert_eq!(error.violations[0].field, "roles[1]");
        }
    }

    #[test]
    fn a_registration_asking_for_trainer_is_a_trainer() {
        let account = validate_registration(
            "a@example.com",
            "correct horse battery",
            "Ana",
            &[fitflow_proto::identity::Role::Trainer as i32],
        )
        .unwrap();
        assert_eq!(account.roles, vec![Role::Trainer]);
    }

    #[test]
    fn the_jwks_document_holds_each_key_as_an_rfc_8037_okp_ed25519_key() {
        use base64::Engine as _;
        let public_key: Vec<u8> = (0_u8..32).collect();
        let document = jwks_json(&[fitflow_auth::PublicKeyEntry {
            key_id: "fitflow-identity-jwt:v2".into(),
            public_key: public_key.clone(),
        }]);
        let parsed: serde_json::Value = serde_json::from_str(&document).unwrap();
        let key = &parsed["keys"][0];
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kid"], "fitflow-identity-jwt:v2");
        let x = key["x"].as_str().unwrap();
        assert!(!x.contains('='), "base64url without padding");
        assert_eq!(URL_SAFE_NO_PAD.decode(x).unwrap(), public_key);
        assert!(key.get("d").is_none(), "never a private part");
    }

    #[test]
    fn only_a_second_factor_login_carries_otp_in_amr() {
        assert_eq!(session_amr("password"), ["pwd"]);
        assert_eq!(session_amr("totp"), ["pwd", "otp"]);
        assert_eq!(session_amr("recovery_code"), ["pwd", "otp"]);
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
    fn hashes_in_reused_memory_match_the_librarys_own_hasher_both_ways() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let mut memory = HashMemory::new();
        let ours = hash_password_in(&mut memory, "correct horse battery").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            hasher()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let theirs = hasher()
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password_in(
            &mut memory,
            "correct horse battery",
            &theirs
        ));
        assert!(!verify_password_in(
            &mut memory,
            "correct horse batter",
            &theirs
        ));
        // A stored hash with other parameters is verified with its own.
        let lighter = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"correct horse battery", &salt)
        .unwrap()
        .to_string();
        assert!(verify_password_in(
            &mut memory,
            "correct horse battery",
            &lighter
        ));
        assert!(!verify_password_in(
            &mut memory,
            "x",
            "$argon2id$v=19$garbage"
        ));
    }

    #[test]
    fn opaque_tokens_are_random_and_stored_only_as_hashes() {
        let (first, first_hash) = new_opaque_token().unwrap();
        let (second, _) = new_opaque_token().unwrap();
        assert_ne!(first, second);
        assert_eq!(first_hash, hash_token(&first));
        assert_eq!(first_hash.len(), 32);
    }

    const SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn totp_codes_match_the_rfc_6238_test_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits), so 287082.
        assert_eq!(totp_code(SECRET, 59), "287082");
    }

    #[test]
    fn a_totp_code_is_accepted_one_step_either_side_and_no_further() {
        let now = 1_000_000_000;
        let step = totp_step(now);
        for drift in [-1, 0, 1] {
            let code = totp_code(SECRET, now + drift * 30);
            assert_eq!(
                accepted_totp_step(SECRET, &code, now, None),
                Some(step + drift)
            );
        }
        for drift in [-2, 2] {
            let code = totp_code(SECRET, now + drift * 30);
            assert_eq!(accepted_totp_step(SECRET, &code, now, None), None);
        }
    }

    #[test]
    fn a_totp_code_is_refused_once_its_step_or_a_later_one_was_used() {
        let now = 1_000_000_000;
        let code = totp_code(SECRET, now);
        let step = totp_step(now);
        assert_eq!(accepted_totp_step(SECRET, &code, now, Some(step)), None);
        assert_eq!(accepted_totp_step(SECRET, &code, now, Some(step + 1)), None);
        assert_eq!(
            accepted_totp_step(SECRET, &code, now, Some(step - 1)),
            Some(step)
        );
    }

    #[test]
    fn malformed_totp_codes_are_refused_without_panicking() {
        for bad in ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦"] {
            assert_eq!(accepted_totp_step(SECRET, bad, 1_000_000_000, None), None);
        }
    }

    #[test]
    fn the_provisioning_uri_names_the_issuer_and_encodes_the_account() {
        let uri = provisioning_uri(SECRET, "ana+fit@example.com");
        assert!(uri.starts_with("otpauth://totp/FitFlow%3Aana%2Bfit%40example.com?secret="));
        assert!(uri.contains("&issuer=FitFlow"));
        let secret = totp_secret_base32(SECRET);
        assert_eq!(totp_secret_from_base32(&secret).as_deref(), Some(SECRET));
    }

    #[test]
    fn recovery_codes_are_distinct_and_accepted_in_any_case_with_or_without_dashes() {
        let codes = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODE_COUNT);
        let code = &codes[0];
        assert_eq!(code.len(), 19);
        let typed = code.replace('-', " ").to_uppercase();
        assert_eq!(
            normalize_recovery_code(&typed),
            normalize_recovery_code(code)
        );
        assert!(normalize_recovery_code(code).is_some());
        assert_eq!(normalize_recovery_code("123456"), None);
        assert_eq!(normalize_recovery_code(""), None);
    }

    #[test]
    fn the_fifth_failure_in_a_window_locks_the_account() {
        let now = chrono::Utc::now();
        let mut counter = None;
        for _ in 0..4 {
            let next = FailureCounter::after_failure(counter, ACCOUNT_FAILURE_LIMIT, now);
            assert_eq!(next.retry_after(now), None);
            counter = Some(next);
        }
        let locked = FailureCounter::after_failure(counter, ACCOUNT_FAILURE_LIMIT, now);
        assert_eq!(locked.retry_after(now), Some(chrono::Duration::minutes(15)));
        let later = now + chrono::Duration::minutes(16);
        assert_eq!(locked.retry_after(later), None);
    }

    #[test]
    fn failures_in_an_old_window_are_forgotten() {
        let start = chrono::Utc::now();
        let old = FailureCounter {
            window_start: start,
            failures: 4,
            locked_until: None,
        };
        let later = start + chrono::Duration::minutes(20);
        let next = FailureCounter::after_failure(Some(old), ACCOUNT_FAILURE_LIMIT, later);
        assert_eq!(next.failures, 1);
        assert_eq!(next.window_start, later);
        assert_eq!(next.retry_after(later), None);
    }

    #[test]
    fn page_sizes_default_and_stay_within_bounds() {
        assert_eq!(page_size(0, 50, 100), Some(50));
        assert_eq!(page_size(7, 50, 100), Some(7));
        assert_eq!(page_size(101, 50, 100), None);
        assert_eq!(page_size(-1, 50, 100), None);
    }
}
