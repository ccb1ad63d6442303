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

/// Signs access tokens with the latest version of the transit key.
pub struct TokenSigner {
    vault: Vault,
    latest_version: Mutex<Option<(u64, Instant)>>,
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
        })
    }

    /// Every public key that may have signed a live token.
    pub async fn public_keys(&self) -> Result<Vec<PublicKeyEntry>, IdentityError> {
        let keys = self.vault.ed25519_public_keys(SIGNING_KEY).await?;
        Ok(keys
            .into_iter()
            .map(|(version, public_key)| PublicKeyEntry {
                key_id: key_id(SIGNING_KEY, version),
                public_key,
            })
            .collect())
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
