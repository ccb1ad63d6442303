//! Offline verification of access tokens.
//!
//! The identity service signs tokens with an Ed25519 key held in OpenBao
//! transit and publishes the public keys by key id. A verifier caches the
//! key set for [`KEY_SET_TTL`], so a key identity stops publishing (rotated
//! out, or withdrawn after a compromise) stops verifying within a minute. A
//! token with a key id the set lacks triggers a fetch at most once per
//! [`KEY_SET_TTL`] for that key id (unknown ids are remembered) and never
//! sooner than [`MIN_FETCH_GAP`] after the last fetch, so a flood of forged
//! key ids cannot flood identity.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};
use uuid::Uuid;

use crate::revocation::{RevocationFollower, RevocationSource, SharedRevocations, unix_now};
use crate::structure::{Structure, StructureSource};
use crate::verified::{Verified, VerifiedTokens};
use crate::{Principal, Role};

/// The `iss` of every FitFlow access token.
pub const ISSUER: &str = "fitflow-identity";
/// The `aud` of every FitFlow access token.
pub const AUDIENCE: &str = "fitflow";
/// How long a fetched key set is trusted before it is fetched again.
pub const KEY_SET_TTL: Duration = Duration::from_secs(60);
/// The shortest time between two fetches, whatever caused them.
pub const MIN_FETCH_GAP: Duration = Duration::from_secs(5);
/// Most unknown key ids remembered; beyond it an unknown id is refused
/// without a fetch until the memory frees up (ids are forged for free).
const MAX_REMEMBERED_UNKNOWN_KIDS: usize = 1024;
/// Clock skew tolerated on `exp`: a token is accepted until this long after
/// it expires, so revocations must outlive tokens by as much.
pub const EXPIRY_LEEWAY: Duration = Duration::from_secs(30);
/// How long a verification waits for the first replay of revocations
/// before it fails closed (a service that has just started).
const FIRST_REPLAY_WAIT: Duration = Duration::from_secs(5);

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
    /// Studios the user manages (tenancy's structure at issue time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub studios: Vec<Uuid>,
    /// `sup` or `studios` was cut at 256 ids: ask tenancy for the rest.
    #[serde(default, skip_serializing_if = "is_false")]
    pub claims_truncated: bool,
    /// Tenancy was unreachable at issue time: the token carries the user's
    /// own id only; refresh it for the rest.
    #[serde(default, skip_serializing_if = "is_false")]
    pub claims_partial: bool,
}

// serde's `skip_serializing_if` takes a function of a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(value: &bool) -> bool {
    !*value
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
    /// Its session was revoked, or its account suspended or deleted.
    #[error("token revoked")]
    Revoked,
    /// Issued before the user's team or studio ownership changed.
    #[error("token claims stale")]
    Stale,
    /// Identity's revocations have not been loaded yet (just started).
    #[error("token revocations unavailable")]
    RevocationsUnavailable,
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
            TokenError::Revoked => {
                ApiError::unauthenticated("TOKEN_REVOKED", "the token was revoked; log in again")
            }
            TokenError::Stale => ApiError::unauthenticated(
                "TOKEN_STALE",
                "the token's team or studio claims changed; refresh it",
            ),
            TokenError::RevocationsUnavailable => {
                ApiError::unavailable("KEYS_UNAVAILABLE", "token revocations unavailable")
            }
        }
    }
}

/// The cached key set and what the verifier remembers about fetching it.
#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    /// When the key set was last fetched successfully.
    fetched_at: Option<Instant>,
    /// When a fetch was last attempted (successful or not).
    attempted_at: Option<Instant>,
    /// Key ids a fetch did not contain, with when that fetch happened.
    unknown_kids: HashMap<String, Instant>,
}

impl KeyCache {
    fn is_fresh(&self, now: Instant) -> bool {
        self.fetched_at
            .is_some_and(|at| now.duration_since(at) < KEY_SET_TTL)
    }

    fn recently_unknown(&self, key_id: &str, now: Instant) -> bool {
        self.unknown_kids
            .get(key_id)
            .is_some_and(|at| now.duration_since(*at) < KEY_SET_TTL)
    }

    fn may_fetch(&self, now: Instant) -> bool {
        self.attempted_at
            .is_none_or(|at| now.duration_since(at) >= MIN_FETCH_GAP)
    }

    fn forget_old_unknown_kids(&mut self, now: Instant) {
        self.unknown_kids
            .retain(|_, at| now.duration_since(*at) < KEY_SET_TTL);
    }

    fn remember_unknown(&mut self, key_id: &str, now: Instant) {
        self.forget_old_unknown_kids(now);
        if !self.memory_full() {
            self.unknown_kids.insert(key_id.to_owned(), now);
        }
    }

    fn memory_full(&self) -> bool {
        self.unknown_kids.len() >= MAX_REMEMBERED_UNKNOWN_KIDS
    }
}

/// Verifies access tokens against cached public keys.
pub struct TokenVerifier {
    source: KeySource,
    cache: RwLock<KeyCache>,
    /// Held while fetching, so concurrent misses cause one fetch.
    fetching: Mutex<()>,
    validation: Validation,
    /// Identity's pushed revocations; `None` checks none (tools, tests).
    revocations: Option<Arc<SharedRevocations>>,
    /// Tokens whose signature was already checked.
    verified: VerifiedTokens,
    /// Completes truncated tokens from tenancy; `None` leaves them as they
    /// are (tenancy itself, identity, tools).
    structure: Option<Structure>,
}

impl TokenVerifier {
    /// A verifier that fetches keys from `source` when it meets a new key id.
    pub fn new(source: KeySource) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = EXPIRY_LEEWAY.as_secs();
        Self {
            source,
            cache: RwLock::new(KeyCache::default()),
            fetching: Mutex::new(()),
            validation,
            revocations: None,
            verified: VerifiedTokens::new(crate::verified::CAPACITY),
            structure: None,
        }
    }

    /// The same verifier, replacing the lists of a token that says
    /// `claims_truncated` with `source`'s answer for its user (tenancy's
    /// `GetActingFor`), remembered per user for at most
    /// [`crate::STRUCTURE_TTL`]; see [`crate::structure`].
    #[must_use]
    pub fn with_structure(mut self, source: StructureSource) -> Self {
        self.structure = Some(Structure::new(source));
        self
    }

    /// The same verifier, refusing what identity revokes: tokens of revoked
    /// sessions and of suspended or deleted accounts, and, with
    /// `refuse_stale`, tokens issued before the user's team or studio
    /// ownership changed (a service that never authorizes from `sup` or
    /// `studios` passes false). Run the returned follower for as long as
    /// the verifier serves; until its first replay arrives, verification
    /// fails closed (UNAVAILABLE).
    pub fn with_revocations(
        mut self,
        source: RevocationSource,
        refuse_stale: bool,
    ) -> (Self, RevocationFollower) {
        let shared = Arc::new(SharedRevocations::new(refuse_stale));
        self.revocations = Some(Arc::clone(&shared));
        (self, RevocationFollower { shared, source })
    }

    /// Verifies `token` and returns the principal it carries.
    ///
    /// A token verified before is not checked for its signature again
    /// (see [`crate::verified`]); its expiry, its key still being published
    /// and the revocations are checked every time.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let now = unix_now();
        let verified = match self.verified.get(token, now) {
            Some(verified) => {
                self.key(&verified.key_id).await?;
                verified
            }
            None => {
                let verified = Arc::new(self.check_signature(token).await?);
                self.verified.insert(token, Arc::clone(&verified), now);
                verified
            }
        };
        if let Some(revocations) = &self.revocations {
            revocations
                .check(&verified.claims, FIRST_REPLAY_WAIT)
                .await?;
        }
        let mut principal = verified.principal.clone();
        if principal.claims_truncated
            && let Some(structure) = &self.structure
        {
            structure
                .complete(&mut principal, verified.claims.iat)
                .await;
        }
        Ok(principal)
    }

    /// Decodes `token` and checks its signature, issuer, audience and expiry.
    async fn check_signature(&self, token: &str) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Malformed);
        }
        let key_id = header.kid.ok_or(TokenError::Malformed)?;
        let key = self.key(&key_id).await?;
        let data =
            jsonwebtoken::decode::<Claims>(token, &key, &self.validation).map_err(|error| {
                match error.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid,
                }
            })?;
        let principal = principal_from_claims(data.claims.clone())?;
        let leeway = i64::try_from(EXPIRY_LEEWAY.as_secs()).unwrap_or(i64::MAX);
        Ok(Verified {
            usable_until: data.claims.exp.saturating_add(leeway),
            claims: data.claims,
            key_id,
            principal,
        })
    }

    /// The key for `key_id`: from a fresh cache when it can, else after a
    /// fetch the rules above allow.
    async fn key(&self, key_id: &str) -> Result<DecodingKey, TokenError> {
        if let Some(answer) = self.cached_answer(key_id, Instant::now()).await {
            return answer;
        }
        let _fetching = self.fetching.lock().await;
        // Another caller may have fetched while this one waited.
        let now = Instant::now();
        if let Some(answer) = self.cached_answer(key_id, now).await {
            return answer;
        }
        let (may_fetch, stale_key) = {
            let mut cache = self.cache.write().await;
            cache.forget_old_unknown_kids(now);
            let wanted = !cache.is_fresh(now)
                || (!cache.recently_unknown(key_id, now) && !cache.memory_full());
            (
                wanted && cache.may_fetch(now),
                cache.keys.get(key_id).cloned(),
            )
        };
        if !may_fetch {
            return stale_key.ok_or(TokenError::UnknownKey);
        }
        match (self.source)().await {
            Ok(entries) => {
                let mut cache = self.cache.write().await;
                cache.attempted_at = Some(now);
                cache.fetched_at = Some(now);
                cache.keys = entries
                    .into_iter()
                    .map(|entry| (entry.key_id, DecodingKey::from_ed_der(&entry.public_key)))
                    .collect();
                match cache.keys.get(key_id).cloned() {
                    Some(key) => Ok(key),
                    None => {
                        cache.remember_unknown(key_id, now);
                        Err(TokenError::UnknownKey)
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "fetching token verification keys failed");
                self.cache.write().await.attempted_at = Some(now);
                // Fail closed only when nothing is known of this key: a
                // short identity outage must not log everyone out.
                stale_key.ok_or(TokenError::KeysUnavailable)
            }
        }
    }

    /// What the cache alone can answer: the key from a fresh set, or a
    /// refusal for a key id a recent fetch did not contain.
    async fn cached_answer(
        &self,
        key_id: &str,
        now: Instant,
    ) -> Option<Result<DecodingKey, TokenError>> {
        let cache = self.cache.read().await;
        if !cache.is_fresh(now) {
            return None;
        }
        if let Some(key) = cache.keys.get(key_id) {
            return Some(Ok(key.clone()));
        }
        if cache.recently_unknown(key_id, now) {
            return Some(Err(TokenError::UnknownKey));
        }
        None
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
        studio_ids: claims.studios,
        claims_truncated: claims.claims_truncated,
        claims_partial: claims.claims_partial,
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
            studios: vec![],
            claims_truncated: false,
            claims_partial: false,
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

    /// A key source that counts its fetches and serves what `published` holds.
    struct CountingSource {
        fetches: Arc<std::sync::atomic::AtomicUsize>,
        published: Arc<std::sync::Mutex<Vec<PublicKeyEntry>>>,
    }

    impl CountingSource {
        fn new(published: Vec<PublicKeyEntry>) -> Self {
            Self {
                fetches: Arc::default(),
                published: Arc::new(std::sync::Mutex::new(published)),
            }
        }

        fn verifier(&self) -> TokenVerifier {
            let fetches = Arc::clone(&self.fetches);
            let published = Arc::clone(&self.published);
            TokenVerifier::new(Arc::new(move || {
                fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let keys = published.lock().unwrap().clone();
                Box::pin(async move { Ok(keys) })
            }))
        }

        fn fetches(&self) -> usize {
            self.fetches.load(std::sync::atomic::Ordering::SeqCst)
        }

        fn publish(&self, keys: Vec<PublicKeyEntry>) {
            *self.published.lock().unwrap() = keys;
        }
    }

    fn entry(signer: &Signer, key_id: &str) -> PublicKeyEntry {
        PublicKeyEntry {
            key_id: key_id.into(),
            public_key: signer.public.clone(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_one_forged_key_id_fetches_the_keys_once_a_minute() {
        let signer = signer();
        let source = CountingSource::new(vec![entry(&signer, "k1")]);
        let verifier = source.verifier();
        verifier
            .verify(&sign(&signer, "k1", &claims(900)))
            .await
            .unwrap();
        assert_eq!(source.fetches(), 1);
        tokio::time::advance(MIN_FETCH_GAP).await;
        let forged = sign(&signer, "forged", &claims(900));
        for _ in 0..100 {
            assert_eq!(verifier.verify(&forged).await, Err(TokenError::UnknownKey));
        }
        assert_eq!(source.fetches(), 2, "one fetch for the unknown key id");
        tokio::time::advance(KEY_SET_TTL).await;
        for _ in 0..100 {
            assert_eq!(verifier.verify(&forged).await, Err(TokenError::UnknownKey));
        }
        assert_eq!(source.fetches(), 3, "one more a minute later");
    }

    #[tokio::test(start_paused = true)]
    async fn many_distinct_forged_key_ids_fetch_at_most_once_per_gap() {
        let signer = signer();
        let source = CountingSource::new(vec![entry(&signer, "k1")]);
        let verifier = source.verifier();
        for attempt in 0..200 {
            let forged = sign(&signer, &format!("forged-{attempt}"), &claims(900));
            assert_eq!(verifier.verify(&forged).await, Err(TokenError::UnknownKey));
        }
        assert_eq!(source.fetches(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_withdrawn_key_stops_verifying_once_the_key_set_expires() {
        let signer = signer();
        let source = CountingSource::new(vec![entry(&signer, "k1")]);
        let verifier = source.verifier();
        let token = sign(&signer, "k1", &claims(3600));
        verifier.verify(&token).await.unwrap();
        source.publish(vec![]);
        verifier.verify(&token).await.unwrap();
        tokio::time::advance(KEY_SET_TTL).await;
        assert_eq!(verifier.verify(&token).await, Err(TokenError::UnknownKey));
    }

    #[tokio::test(start_paused = true)]
    async fn a_newly_published_key_verifies_after_the_gap() {
        let old = signer();
        let rotated = signer();
        let source = CountingSource::new(vec![entry(&old, "k1")]);
        let verifier = source.verifier();
        verifier
            .verify(&sign(&old, "k1", &claims(900)))
            .await
            .unwrap();
        source.publish(vec![entry(&old, "k1"), entry(&rotated, "k2")]);
        tokio::time::advance(MIN_FETCH_GAP).await;
        verifier
            .verify(&sign(&rotated, "k2", &claims(900)))
            .await
            .unwrap();
    }

    /// A revocation source that serves one scripted stream per
    /// subscription (then streams that stay open and silent) and records
    /// the position each subscription asked for.
    fn scripted_source(
        scripts: Vec<Vec<crate::RevocationBatch>>,
        asked: Arc<std::sync::Mutex<Vec<i64>>>,
    ) -> crate::RevocationSource {
        let scripts = Arc::new(std::sync::Mutex::new(
            scripts
                .into_iter()
                .collect::<std::collections::VecDeque<_>>(),
        ));
        Arc::new(move |after| {
            asked.lock().unwrap().push(after);
            let script = scripts.lock().unwrap().pop_front();
            Box::pin(async move {
                let stream: crate::RevocationStream = match script {
                    Some(batches) => Box::pin(futures::stream::iter(batches.into_iter().map(Ok))),
                    None => Box::pin(futures::stream::pending()),
                };
                Ok(stream)
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_follower_resubscribes_after_its_position_and_the_verifier_refuses_what_it_learns() {
        let signer = signer();
        let mine = claims(900);
        let mut other_session = claims(900);
        other_session.sub = mine.sub;
        let session_token = sign(&signer, "k1", &mine);
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let later = mine.exp + 60;
        let source = scripted_source(
            vec![
                vec![crate::RevocationBatch {
                    revocations: vec![crate::Revocation::SessionRevoked {
                        session_id: mine.sid,
                        expires_at: later,
                    }],
                    position: 3,
                    caught_up: true,
                }],
                // The stream ended (identity restarted); the next one
                // replays what came after position 3.
                vec![crate::RevocationBatch {
                    revocations: vec![crate::Revocation::UserDisabled {
                        user_id: mine.sub,
                        issued_before: mine.iat + 1,
                        expires_at: later,
                    }],
                    position: 5,
                    caught_up: true,
                }],
            ],
            Arc::clone(&asked),
        );
        let (verifier, follower) = verifier_for(&signer, "k1").with_revocations(source, true);
        let stop = shutdown_signal();
        let follow = tokio::spawn(follower.run(stop.1));
        assert_eq!(
            verifier.verify(&session_token).await,
            Err(TokenError::Revoked)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(*asked.lock().unwrap(), vec![0, 3, 5]);
        assert_eq!(
            verifier.verify(&sign(&signer, "k1", &other_session)).await,
            Err(TokenError::Revoked),
            "every older token of the disabled user"
        );
        let _ = stop.0.send(());
        follow.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_served_from_memory_is_refused_once_its_session_is_revoked() {
        let signer = signer();
        let mine = claims(900);
        let token = sign(&signer, "k1", &mine);
        let (send, receive) = tokio::sync::mpsc::unbounded_channel::<crate::RevocationBatch>();
        let receive = Arc::new(std::sync::Mutex::new(Some(receive)));
        let source: crate::RevocationSource = Arc::new(move |_after| {
            let receive = receive.lock().unwrap().take();
            Box::pin(async move {
                let stream: crate::RevocationStream = match receive {
                    Some(receive) => {
                        Box::pin(futures::stream::unfold(receive, |mut receive| async {
                            receive.recv().await.map(|batch| (Ok(batch), receive))
                        }))
                    }
                    None => Box::pin(futures::stream::pending()),
                };
                Ok(stream)
            })
        });
        let (verifier, follower) = verifier_for(&signer, "k1").with_revocations(source, true);
        let stop = shutdown_signal();
        let follow = tokio::spawn(follower.run(stop.1));
        send.send(crate::RevocationBatch {
            revocations: vec![],
            position: 1,
            caught_up: true,
        })
        .unwrap();
        verifier.verify(&token).await.unwrap();
        verifier.verify(&token).await.unwrap();
        send.send(crate::RevocationBatch {
            revocations: vec![crate::Revocation::SessionRevoked {
                session_id: mine.sid,
                expires_at: mine.exp + 60,
            }],
            position: 2,
            caught_up: true,
        })
        .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(verifier.verify(&token).await, Err(TokenError::Revoked));
        let _ = stop.0.send(());
        follow.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn before_the_first_replay_a_verifier_fails_closed() {
        let signer = signer();
        let source = scripted_source(vec![], Arc::default());
        let (verifier, _follower) = verifier_for(&signer, "k1").with_revocations(source, true);
        assert_eq!(
            verifier.verify(&sign(&signer, "k1", &claims(900))).await,
            Err(TokenError::RevocationsUnavailable)
        );
    }

    /// A shutdown signal for a follower: send to stop it.
    fn shutdown_signal() -> (
        tokio::sync::oneshot::Sender<()>,
        impl Future<Output = ()> + Send + 'static,
    ) {
        let (send, receive) = tokio::sync::oneshot::channel::<()>();
        (send, async move {
            let _ = receive.await;
        })
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
