//! Offline verification of access tokens.
//!
//! The identity service signs tokens with an Ed25519 key held in OpenBao
//! transit and publishes the public keys by key id. A verifier caches them and
//! fetches again only when it meets an unknown key id, at most once per
//! [`REFETCH_INTERVAL`], so a flood of forged key ids cannot flood identity.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};
use uuid::Uuid;

use crate::{Principal, Role};

/// The `iss` of every FitFlow access token.
pub const ISSUER: &str = "fitflow-identity";
/// The `aud` of every FitFlow access token.
pub const AUDIENCE: &str = "fitflow";
/// The shortest time between two key fetches caused by unknown key ids.
const REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// Clock skew tolerated on `exp`.
const LEEWAY_SECONDS: u64 = 30;

/// The claims of a FitFlow access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Issuer, always [`ISSUER`].
    pub iss: String,
    /// Audience, always [`AUDIENCE`].
    pub aud: String,
    /// The user's id.
    pub sub: Uuid,
    /// The session's id.
    pub sid: Uuid,
    /// Role names.
    pub roles: Vec<String>,
    /// Supervised trainer ids.
    #[serde(default)]
    pub sup: Vec<Uuid>,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// The token's own id.
    pub jti: Uuid,
    /// Authentication methods of the session (RFC 8176): `["pwd"]` or
    /// `["pwd", "otp"]`. Tokens issued before it existed carry none, which
    /// counts as no second factor.
    #[serde(default)]
    pub amr: Vec<String>,
}

/// A published verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyEntry {
    /// The JWT `kid`.
    pub key_id: String,
    /// The raw 32-byte Ed25519 public key.
    pub public_key: Vec<u8>,
}

/// Fetches the current verification keys (from identity over gRPC, or from
/// OpenBao inside identity itself).
pub type KeySource =
    Arc<dyn Fn() -> BoxFuture<'static, Result<Vec<PublicKeyEntry>, String>> + Send + Sync>;

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT, or an algorithm other than EdDSA (including `none`).
    #[error("malformed token")]
    Malformed,
    /// Signed by a key nobody published.
    #[error("unknown signing key")]
    UnknownKey,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// Bad signature, issuer, audience or claims.
    #[error("invalid token")]
    Invalid,
    /// The keys could not be fetched and none is cached for this key id.
    #[error("verification keys unavailable")]
    KeysUnavailable,
}

impl From<TokenError> for fitflow_error::ApiError {
    fn from(error: TokenError) -> Self {
        use fitflow_error::ApiError;
        match error {
            TokenError::Expired => ApiError::unauthenticated("TOKEN_EXPIRED", "token expired"),
            TokenError::KeysUnavailable => {
                ApiError::unavailable("KEYS_UNAVAILABLE", "token keys unavailable")
            }
            TokenError::Malformed | TokenError::UnknownKey | TokenError::Invalid => {
                ApiError::unauthenticated("TOKEN_INVALID", "invalid token")
            }
        }
    }
}

/// Verifies access tokens against cached public keys.
pub struct TokenVerifier {
    source: KeySource,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: Mutex<Option<Instant>>,
    validation: Validation,
}

impl TokenVerifier {
    /// A verifier that fetches keys from `source` when it meets a new key id.
    pub fn new(source: KeySource) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        Self {
            source,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            validation,
        }
    }

    /// Verifies `token` and returns the principal it carries.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Malformed);
        }
        let key_id = header.kid.ok_or(TokenError::Malformed)?;
        let key = match self.cached_key(&key_id).await {
            Some(key) => key,
            None => {
                self.refetch().await?;
                self.cached_key(&key_id)
                    .await
                    .ok_or(TokenError::UnknownKey)?
            }
        };
        let data =
            jsonwebtoken::decode::<Claims>(token, &key, &self.validation).map_err(|error| {
                match error.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid,
                }
            })?;
        principal_from_claims(data.claims)
    }

    async fn cached_key(&self, key_id: &str) -> Option<DecodingKey> {
        self.keys.read().await.get(key_id).cloned()
    }

    async fn refetch(&self) -> Result<(), TokenError> {
        let mut last_fetch = self.last_fetch.lock().await;
        if last_fetch.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
            return Ok(());
        }
        let entries = (self.source)().await.map_err(|error| {
            tracing::warn!(%error, "fetching token verification keys failed");
            TokenError::KeysUnavailable
        })?;
        *last_fetch = Some(Instant::now());
        let fresh = entries
            .into_iter()
            .map(|entry| (entry.key_id, DecodingKey::from_ed_der(&entry.public_key)))
            .collect();
        *self.keys.write().await = fresh;
        Ok(())
    }
}

fn principal_from_claims(claims: Claims) -> Result<Principal, TokenError> {
    let roles = claims
        .roles
        .iter()
        .map(|name| name.parse::<Role>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TokenError::Invalid)?;
    Ok(Principal {
        user_id: claims.sub,
        session_id: claims.sid,
        roles,
        supervised_trainer_ids: claims.sup,
        amr: claims.amr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header};
    use ring::signature::{Ed25519KeyPair, KeyPair};

    struct Signer {
        pkcs8: Vec<u8>,
        public: Vec<u8>,
    }

    fn signer() -> Signer {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .unwrap()
            .as_ref()
            .to_vec();
        let public = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        Signer { pkcs8, public }
    }

    fn claims(expires_in: i64) -> Claims {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            roles: vec!["trainer".into()],
            sup: vec![],
            iat: now,
            exp: now + expires_in,
            jti: Uuid::new_v4(),
            amr: vec!["pwd".into()],
        }
    }

    fn sign(signer: &Signer, key_id: &str, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key_id.into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&signer.pkcs8)).unwrap()
    }

    fn verifier_for(signer: &Signer, key_id: &str) -> TokenVerifier {
        let entry = PublicKeyEntry {
            key_id: key_id.into(),
            public_key: signer.public.clone(),
        };
        TokenVerifier::new(Arc::new(move || {
            let entry = entry.clone();
            Box::pin(async move { Ok(vec![entry]) })
        }))
    }

    #[tokio::test]
    async fn a_valid_token_yields_its_principal() {
        let signer = signer();
        let claims = claims(900);
        let token = sign(&signer, "k1", &claims);
        let principal = verifier_for(&signer, "k1").verify(&token).await.unwrap();
        assert_eq!(principal.user_id, claims.sub);
        assert_eq!(principal.roles, vec![Role::Trainer]);
        assert_eq!(principal.amr, vec!["pwd".to_owned()]);
    }

    #[tokio::test]
    async fn a_forged_otp_amr_breaks_the_signature() {
        let signer = signer();
        let mut forged_claims = claims(900);
        let token = sign(&signer, "k1", &forged_claims);
        forged_claims.roles = vec!["operator".into()];
        forged_claims.amr = vec!["pwd".into(), "otp".into()];
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        let error = verifier_for(&signer, "k1").verify(&forged).await;
        assert_eq!(error, Err(TokenError::Invalid));
    }

    #[tokio::test]
    async fn an_expired_token_is_refused() {
        let signer = signer();
        let token = sign(&signer, "k1", &claims(-120));
        let error = verifier_for(&signer, "k1").verify(&token).await;
        assert_eq!(error, Err(TokenError::Expired));
    }

    #[tokio::test]
    async fn a_tampered_payload_is_refused() {
        let signer = signer();
        let token = sign(&signer, "k1", &claims(900));
        let mut forged_claims = claims(900);
        forged_claims.roles = vec!["operator".into()];
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        let error = verifier_for(&signer, "k1").verify(&forged).await;
        assert_eq!(error, Err(TokenError::Invalid));
    }

    #[tokio::test]
    async fn an_unsigned_alg_none_token_is_refused() {
        let signer = signer();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(900)).unwrap());
        let token = format!("{header}.{payload}.");
        let error = verifier_for(&signer, "k1").verify(&token).await;
        assert_eq!(error, Err(TokenError::Malformed));
    }

    #[tokio::test]
    async fn a_token_signed_by_another_key_is_refused() {
        let published = signer();
        let attacker = signer();
        let token = sign(&attacker, "k1", &claims(900));
        let error = verifier_for(&published, "k1").verify(&token).await;
        assert_eq!(error, Err(TokenError::Invalid));
    }

    #[tokio::test]
    async fn a_token_with_an_unpublished_key_id_is_refused() {
        let signer = signer();
        let token = sign(&signer, "k2", &claims(900));
        let error = verifier_for(&signer, "k1").verify(&token).await;
        assert_eq!(error, Err(TokenError::UnknownKey));
    }
}
