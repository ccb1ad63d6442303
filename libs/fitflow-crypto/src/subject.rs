//! Keys of one person (a client): held in OpenBao only, never in PostgreSQL,
//! so destroying one erases that person's sealed data in every service and
//! every database backup at once (crypto-shredding).
//!
//! The key is a random 256-bit AES key written to OpenBao's key/value engine
//! (version 1, mount [`SUBJECT_KEYS_MOUNT`], path `<kind>/<id>`); there is no
//! wrapped copy anywhere else. Version 1 of the engine keeps no history, so a
//! delete is final (OpenBao's own storage backups are the one place it
//! outlives a purge, for as long as they are kept). Only the owning service
//! creates a key; others can only use or miss it: a missing key means the
//! person was erased ([`CryptoError::SubjectErased`]), never "make a new one".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::aead::NONCE_LEN;
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::cache::TtlCache;
use crate::envelope::{self, DataKey, FieldAddress, KEY_LEN, SealedField};
use crate::{CryptoError, Vault};

/// The key/value (version 1) mount holding every subject key.
pub const SUBJECT_KEYS_MOUNT: &str = "fitflow-subject-keys";
/// Subject keys have one version: they are destroyed, never rotated.
const SUBJECT_KEY_VERSION: u32 = 1;
/// At most this many subject keys are cached.
const CACHE_CAPACITY: usize = 50_000;

/// Seals and opens the fields of one kind of subject (`"clients"`) under each
/// subject's own key. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct SubjectKeys {
    inner: Arc<Inner>,
}

struct Inner {
    vault: Vault,
    kind: &'static str,
    random: SystemRandom,
    keys: Mutex<TtlCache<Uuid, DataKey>>,
}

impl std::fmt::Debug for SubjectKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubjectKeys")
            .field("kind", &self.inner.kind)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SubjectKeys {
    /// Keys of subjects of `kind` (a path segment: lower-case letters).
    /// Keys stay cached for `cache_ttl`: a key destroyed by another process
    /// still opens here until then (zero disables caching).
    pub fn new(vault: Vault, kind: &'static str, cache_ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                vault,
                kind,
                random: SystemRandom::new(),
                keys: Mutex::new(TtlCache::new(cache_ttl, CACHE_CAPACITY)),
            }),
        }
    }

    fn path(&self, subject: Uuid) -> String {
        format!("{}/{subject}", self.inner.kind)
    }

    /// Creates the key of a new subject. The id must be fresh (a new UUID):
    /// the engine has no compare-and-set, and overwriting a key would lose
    /// every field sealed under it.
    pub async fn create(&self, subject: Uuid) -> Result<(), CryptoError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        self.inner
            .random
            .fill(bytes.as_mut_slice())
            .map_err(|_| CryptoError::Randomness)?;
        let encoded = Zeroizing::new(BASE64.encode(bytes.as_slice()));
        let mut data = HashMap::new();
        data.insert("key", encoded.as_str());
        vaultrs::kv1::set(
            self.inner.vault.client(),
            SUBJECT_KEYS_MOUNT,
            &self.path(subject),
            &data,
        )
        .await
        .map_err(CryptoError::from_vault)?;
        let key = DataKey::from_slice(bytes.as_slice()).ok_or(CryptoError::Malformed)?;
        lock(&self.inner.keys).insert(subject, key, Instant::now());
        Ok(())
    }

    /// Seals `plaintext` for the field at `at` of `subject`.
    pub async fn seal(
        &self,
        subject: Uuid,
        at: FieldAddress<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let key = self.key(subject).await?;
        let mut nonce = [0u8; NONCE_LEN];
        self.inner
            .random
            .fill(&mut nonce)
            .map_err(|_| CryptoError::Randomness)?;
        envelope::seal_with_key(&key, SUBJECT_KEY_VERSION, nonce, subject, at, plaintext)
    }

    /// Opens a field sealed by [`SubjectKeys::seal`] for the same subject and address.
    pub async fn open(
        &self,
        subject: Uuid,
        at: FieldAddress<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let field = SealedField::parse(sealed)?;
        let key = self.key(subject).await?;
        field.open_with_key(&key, subject, at)
    }

    /// Destroys the subject's key in OpenBao and forgets it here; idempotent.
    /// Other processes forget their cached copy within their cache time.
    pub async fn destroy(&self, subject: Uuid) -> Result<(), CryptoError> {
        match vaultrs::kv1::delete(
            self.inner.vault.client(),
            SUBJECT_KEYS_MOUNT,
            &self.path(subject),
        )
        .await
        {
            Ok(()) => {}
            Err(vaultrs::error::ClientError::APIError { code: 404, .. }) => {}
            Err(error) => return Err(CryptoError::from_vault(error)),
        }
        lock(&self.inner.keys).remove_where(|cached| *cached == subject);
        tracing::info!(kind = self.inner.kind, %subject, "subject key destroyed");
        Ok(())
    }

    async fn key(&self, subject: Uuid) -> Result<DataKey, CryptoError> {
        let cached = lock(&self.inner.keys).get(&subject, Instant::now());
        if let Some(key) = cached {
            return Ok(key);
        }
        let data: HashMap<String, String> = match vaultrs::kv1::get(
            self.inner.vault.client(),
            SUBJECT_KEYS_MOUNT,
            &self.path(subject),
        )
        .await
        {
            Ok(data) => data,
            Err(vaultrs::error::ClientError::APIError { code: 404, .. }) => {
                return Err(CryptoError::SubjectErased);
            }
            Err(error) => return Err(CryptoError::from_vault(error)),
        };
        let encoded = Zeroizing::new(data.get("key").cloned().ok_or(
            CryptoError::UnexpectedResponse("the subject key entry has no key"),
        )?);
        let bytes = Zeroizing::new(
            BASE64
                .decode(encoded.as_bytes())
                .map_err(|_| CryptoError::UnexpectedResponse("the subject key is not base64"))?,
        );
        let key = DataKey::from_slice(&bytes).ok_or(CryptoError::UnexpectedResponse(
            "the subject key is not 32 bytes",
        ))?;
        lock(&self.inner.keys).insert(subject, key.clone(), Instant::now());
        Ok(key)
    }
}

/// Opens a field with raw key bytes (32), for the erasure checks of tests and
/// investigations: "can any key we still hold open this backup?". Services
/// use [`SubjectKeys::open`] or [`crate::KeyRing::open`].
pub fn open_with_raw_key(
    key: &[u8],
    tenant_or_subject: Uuid,
    at: FieldAddress<'_>,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let key = DataKey::from_slice(key).ok_or(CryptoError::Malformed)?;
    SealedField::parse(sealed)?.open_with_key(&key, tenant_or_subject, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_key_of_the_wrong_length_is_refused() {
        let at = FieldAddress {
            table: "clients",
            column: "first_name",
            row_id: Uuid::nil(),
        };
        assert!(matches!(
            open_with_raw_key(&[0u8; 16], Uuid::nil(), at, &[1u8; 64]),
            Err(CryptoError::Malformed)
        ));
    }
}
