//! Access tokens signed by the OpenBao transit key `fitflow-identity-jwt`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use fitflow_auth::{Claims, PublicKeyEntry};
use fitflow_crypto::{TransitKeyKind, Vault};

use crate::IdentityError;
use crate::domain::{compact_jws, key_id, signing_input};

/// The transit key that signs access tokens.
pub const SIGNING_KEY: &str = "fitflow-identity-jwt";
/// How long the latest key version is trusted before asking OpenBao again.
const VERSION_TTL: Duration = Duration::from_secs(60);
/// How long the published key list is served from memory. Every service's
/// verifier asks for it (on start, every minute, on an unknown key id), and
/// anonymous callers may too: without the cache each ask is an OpenBao call.
const PUBLISHED_TTL: Duration = Duration::from_secs(30);

/// Signs access tokens with the latest version of the transit key.
pub struct TokenSigner {
    vault: Vault,
    latest_version: Mutex<Option<(u64, Instant)>>,
    published: Mutex<Option<(Vec<PublicKeyEntry>, Instant)>>,
}

impl TokenSigner {
    /// A signer over `vault`; creates the signing key if it is missing.
    pub async fn new(vault: Vault) -> Result<Self, IdentityError> {
        vault
            .ensure_transit_key(SIGNING_KEY, TransitKeyKind::Ed25519)
            .await?;
        Ok(Self {
            vault,
            latest_version: Mutex::new(None),
            published: Mutex::new(None),
        })
    }

    /// Every public key that may have signed a live token, from memory for
    /// up to [`PUBLISHED_TTL`]. The list always holds the key of every token
    /// this signer issued: signing with a version the list lacks drops it.
    pub async fn public_keys(&self) -> Result<Vec<PublicKeyEntry>, IdentityError> {
        if let Some((keys, at)) = &*self.published.lock().unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < PUBLISHED_TTL
        {
            return Ok(keys.clone());
        }
        let keys: Vec<PublicKeyEntry> = self
            .vault
            .ed25519_public_keys(SIGNING_KEY)
            .await?
            .into_iter()
            .map(|(version, public_key)| PublicKeyEntry {
                key_id: key_id(SIGNING_KEY, version),
                public_key,
            })
            .collect();
        *self.published.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((keys.clone(), Instant::now()));
        Ok(keys)
    }

    /// Forgets the published list unless it holds `signed_key_id`, so a
    /// verifier that meets a token of a freshly rotated key finds it.
    fn publish_key_of(&self, signed_key_id: &str) {
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        let listed = published
            .as_ref()
            .is_some_and(|(keys, _)| keys.iter().any(|key| key.key_id == signed_key_id));
        if !listed {
            *published = None;
        }
    }

    /// Signs `claims` as a compact JWS. The `kid` must name the version that
    /// signs, which transit only reports afterwards: if a rotation slipped in
    /// between, sign again with the fresh version.
    pub async fn sign(&self, claims: &Claims) -> Result<String, IdentityError> {
        let mut expected = self.latest_version(false).await?;
        for _ in 0..2 {
            let input = signing_input(claims, &key_id(SIGNING_KEY, expected))
                .map_err(|error| IdentityError::Signing(error.to_string()))?;
            let (version, signature) = self
                .vault
                .sign_ed25519(SIGNING_KEY, input.as_bytes())
                .await?;
            if version == expected {
                self.publish_key_of(&key_id(SIGNING_KEY, version));
                return Ok(compact_jws(&input, &signature));
            }
            expected = self.latest_version(true).await?;
        }
        Err(IdentityError::Signing(
            "the signing key version kept changing".into(),
        ))
    }

    async fn latest_version(&self, force: bool) -> Result<u64, IdentityError> {
        if !force {
            let cached = *self
                .latest_version
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some((version, at)) = cached
                && at.elapsed() < VERSION_TTL
            {
                return Ok(version);
            }
        }
        let version = self
            .vault
            .ed25519_public_keys(SIGNING_KEY)
            .await?
            .into_iter()
            .map(|(version, _)| version)
            .max()
            .ok_or_else(|| IdentityError::Signing("the signing key has no versions".into()))?;
        *self
            .latest_version
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((version, Instant::now()));
        Ok(version)
    }
}
