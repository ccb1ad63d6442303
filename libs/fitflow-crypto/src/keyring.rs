//! Per-tenant data keys: created lazily, wrapped by the service's transit key,
//! stored in the service's `data_keys` table, and cached unwrapped for a while.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ring::aead::NONCE_LEN;
use ring::rand::{SecureRandom, SystemRandom};
use sqlx::PgPool;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::cache::TtlCache;
use crate::envelope::{self, DataKey, FieldAddress, SealedField};
use crate::vault::TransitKeyKind;
use crate::{CryptoError, Vault};

/// At most this many unwrapped keys (and as many "current version" entries) are cached.
const CACHE_CAPACITY: usize = 10_000;
/// How often a lookup retries when a concurrent shred removes a key it just saw.
const MAX_ATTEMPTS: usize = 3;

/// What a data key is for; the `purpose` column of `data_keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Purpose {
    /// Sealing fields; rotated by [`KeyRing::rotate`].
    Seal,
    /// Blind indexes; never rotated, so indexes stay comparable.
    Index,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Seal => "seal",
            Purpose::Index => "index",
        }
    }
}

type KeyId = (Uuid, Purpose, u32);

/// Seals and opens fields, and computes blind indexes, with per-tenant data
/// keys. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct KeyRing {
    inner: Arc<Inner>,
}

struct Inner {
    vault: Vault,
    pool: PgPool,
    kek: String,
    random: SystemRandom,
    kek_ready: tokio::sync::OnceCell<()>,
    keys: Mutex<TtlCache<KeyId, DataKey>>,
    current_versions: Mutex<TtlCache<(Uuid, Purpose), u32>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("kek", &self.inner.kek)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn version_from_db(version: i32) -> Result<u32, CryptoError> {
    u32::try_from(version).map_err(|_| CryptoError::Malformed)
}

fn version_to_db(version: u32) -> Result<i32, CryptoError> {
    i32::try_from(version).map_err(|_| CryptoError::Malformed)
}

/// One tenant's blind-index key, from [`KeyRing::blind_indexer`]: computes
/// the same indexes as [`KeyRing::blind_index`], synchronously. Short-lived:
/// hold it for one request, not beyond the key cache's time to live.
#[derive(Clone, Debug)]
pub struct BlindIndexer {
    key: DataKey,
}

impl BlindIndexer {
    /// The keyed blind index of a normalised value in `scope`.
    pub fn index(&self, scope: &str, normalized_value: &[u8]) -> Vec<u8> {
        envelope::blind_index_with_key(&self.key, scope, normalized_value)
    }
}

impl KeyRing {
    /// A key ring for `service`: its transit KEK is `fitflow-<service>` and its
    /// wrapped data keys live in the `data_keys` table reached through `pool`.
    /// Unwrapped keys stay cached for `cache_ttl` (zero disables caching).
    pub fn new(vault: Vault, pool: PgPool, service: &'static str, cache_ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                vault,
                pool,
                kek: format!("fitflow-{service}"),
                random: SystemRandom::new(),
                kek_ready: tokio::sync::OnceCell::new(),
                keys: Mutex::new(TtlCache::new(cache_ttl, CACHE_CAPACITY)),
                current_versions: Mutex::new(TtlCache::new(cache_ttl, CACHE_CAPACITY)),
            }),
        }
    }

    /// Seals `plaintext` for the field at `at` of `tenant_id` with the tenant's
    /// current seal key (created on first use).
    pub async fn seal(
        &self,
        tenant_id: Uuid,
        at: FieldAddress<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let (version, key) = self.current_key(tenant_id, Purpose::Seal).await?;
        let mut nonce = [0u8; NONCE_LEN];
        self.inner
            .random
            .fill(&mut nonce)
            .map_err(|_| CryptoError::Randomness)?;
        envelope::seal_with_key(&key, version, nonce, tenant_id, at, plaintext)
    }

    /// Opens a field sealed by [`KeyRing::seal`] for the same tenant and address.
    pub async fn open(
        &self,
        tenant_id: Uuid,
        at: FieldAddress<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let field = SealedField::parse(sealed)?;
        let key = self
            .key_by_version(tenant_id, Purpose::Seal, field.key_version)
            .await?;
        field.open_with_key(&key, tenant_id, at)
    }

    /// A keyed blind index (HMAC-SHA256 with the tenant's stable index key) of a
    /// normalised value, for exact-match lookups; `scope` (e.g. `clients.email`)
    /// keeps indexes of different columns apart.
    pub async fn blind_index(
        &self,
        tenant_id: Uuid,
        scope: &str,
        normalized_value: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let (_, key) = self.current_key(tenant_id, Purpose::Index).await?;
        Ok(envelope::blind_index_with_key(
            &key,
            scope,
            normalized_value,
        ))
    }

    /// The tenant's blind-index key as a handle that computes indexes
    /// without another lookup. Fetch it before opening a transaction that
    /// will compute indexes: [`KeyRing::blind_index`] may need a pooled
    /// connection to read the key, and a request that already holds one of
    /// the pool's connections must not wait for a second (with the cache cold
    /// and the pool busy with such requests, every one of them would wait
    /// until the pool's acquire timeout).
    pub async fn blind_indexer(&self, tenant_id: Uuid) -> Result<BlindIndexer, CryptoError> {
        let (_, key) = self.current_key(tenant_id, Purpose::Index).await?;
        Ok(BlindIndexer { key })
    }

    /// Adds a new seal key version for the tenant: later seals use it, older
    /// ciphertexts still open. The index key is never rotated.
    pub async fn rotate(&self, tenant_id: Uuid) -> Result<(), CryptoError> {
        self.ensure_kek().await?;
        let (key, wrapped) = self.inner.vault.generate_data_key(&self.inner.kek).await?;
        let inserted: Option<i32> = sqlx::query_scalar(
            "INSERT INTO data_keys (tenant_id, purpose, version, wrapped_key) \
             SELECT $1, 'seal', COALESCE(MAX(version), 0) + 1, $2 \
             FROM data_keys WHERE tenant_id = $1 AND purpose = 'seal' \
             ON CONFLICT DO NOTHING RETURNING version",
        )
        .bind(tenant_id)
        .bind(&wrapped)
        .fetch_optional(&self.inner.pool)
        .await?;
        let now = Instant::now();
        match inserted {
            Some(version) => {
                let version = version_from_db(version)?;
                lock(&self.inner.keys).insert((tenant_id, Purpose::Seal, version), key, now);
                lock(&self.inner.current_versions).insert((tenant_id, Purpose::Seal), version, now);
                tracing::info!(%tenant_id, version, kek = %self.inner.kek, "seal data key rotated");
            }
            None => {
                // A concurrent rotation won the race: the tenant has a new version anyway.
                lock(&self.inner.current_versions).remove_where(|(tenant, purpose)| {
                    *tenant == tenant_id && *purpose == Purpose::Seal
                });
            }
        }
        Ok(())
    }

    /// Crypto-shredding: deletes every wrapped key of the tenant and evicts them
    /// from this process's cache, so its ciphertexts never open again. Other
    /// processes forget their cached copies within their cache time to live.
    pub async fn shred(&self, tenant_id: Uuid) -> Result<(), CryptoError> {
        // The runtime role may not DELETE data keys; the schema owner's
        // function deletes one tenant's keys and nothing else.
        let deleted: i64 = sqlx::query_scalar("SELECT shred_tenant_keys($1)")
            .bind(tenant_id)
            .fetch_one(&self.inner.pool)
            .await?;
        self.evict(tenant_id);
        tracing::info!(%tenant_id, deleted, kek = %self.inner.kek, "tenant data keys shredded");
        Ok(())
    }

    fn evict(&self, tenant_id: Uuid) {
        lock(&self.inner.keys).remove_where(|(tenant, _, _)| *tenant == tenant_id);
        lock(&self.inner.current_versions).remove_where(|(tenant, _)| *tenant == tenant_id);
    }

    async fn ensure_kek(&self) -> Result<(), CryptoError> {
        self.inner
            .kek_ready
            .get_or_try_init(|| {
                self.inner
                    .vault
                    .ensure_transit_key(&self.inner.kek, TransitKeyKind::Aes256Gcm96)
            })
            .await?;
        Ok(())
    }

    /// The newest key of `purpose` for the tenant, creating version 1 if there is none.
    async fn current_key(
        &self,
        tenant_id: Uuid,
        purpose: Purpose,
    ) -> Result<(u32, DataKey), CryptoError> {
        let now = Instant::now();
        let cached_version = lock(&self.inner.current_versions).get(&(tenant_id, purpose), now);
        if let Some(version) = cached_version {
            let cached_key = lock(&self.inner.keys).get(&(tenant_id, purpose, version), now);
            if let Some(key) = cached_key {
                return Ok((version, key));
            }
        }
        for _ in 0..MAX_ATTEMPTS {
            let latest = match self.latest_wrapped_key(tenant_id, purpose).await? {
                Some(latest) => latest,
                None => match self.create_first_key(tenant_id, purpose).await? {
                    Some(created) => created,
                    None => continue,
                },
            };
            let (version, key) = match latest {
                StoredKey::Unwrapped(version, key) => (version, key),
                StoredKey::Wrapped(version, wrapped) => {
                    let key = self
                        .unwrap_and_cache(tenant_id, purpose, version, &wrapped)
                        .await?;
                    (version, key)
                }
            };
            lock(&self.inner.current_versions).insert(
                (tenant_id, purpose),
                version,
                Instant::now(),
            );
            return Ok((version, key));
        }
        Err(CryptoError::KeysChanged)
    }

    async fn latest_wrapped_key(
        &self,
        tenant_id: Uuid,
        purpose: Purpose,
    ) -> Result<Option<StoredKey>, CryptoError> {
        let row: Option<(i32, String)> = sqlx::query_as(
            "SELECT version, wrapped_key FROM data_keys \
             WHERE tenant_id = $1 AND purpose = $2 ORDER BY version DESC LIMIT 1",
        )
        .bind(tenant_id)
        .bind(purpose.as_str())
        .fetch_optional(&self.inner.pool)
        .await?;
        row.map(|(version, wrapped)| Ok(StoredKey::Wrapped(version_from_db(version)?, wrapped)))
            .transpose()
    }

    /// Creates version 1. When a concurrent caller inserted it first, returns
    /// that caller's (wrapped) key instead, so one version exists either way;
    /// `None` if it vanished again (a concurrent shred).
    async fn create_first_key(
        &self,
        tenant_id: Uuid,
        purpose: Purpose,
    ) -> Result<Option<StoredKey>, CryptoError> {
        self.ensure_kek().await?;
        let (key, wrapped) = self.inner.vault.generate_data_key(&self.inner.kek).await?;
        let inserted: Option<i32> = sqlx::query_scalar(
            "INSERT INTO data_keys (tenant_id, purpose, version, wrapped_key) \
             VALUES ($1, $2, 1, $3) ON CONFLICT DO NOTHING RETURNING version",
        )
        .bind(tenant_id)
        .bind(purpose.as_str())
        .bind(&wrapped)
        .fetch_optional(&self.inner.pool)
        .await?;
        if inserted.is_some() {
            tracing::info!(%tenant_id, purpose = purpose.as_str(), kek = %self.inner.kek, "data key created");
            lock(&self.inner.keys).insert((tenant_id, purpose, 1), key.clone(), Instant::now());
            return Ok(Some(StoredKey::Unwrapped(1, key)));
        }
        self.latest_wrapped_key(tenant_id, purpose).await
    }

    /// The key of one version; a version that is not stored (never existed, or
    /// shredded) means the ciphertext cannot be authentic.
    async fn key_by_version(
        &self,
        tenant_id: Uuid,
        purpose: Purpose,
        version: u32,
    ) -> Result<DataKey, CryptoError> {
        let cached = lock(&self.inner.keys).get(&(tenant_id, purpose, version), Instant::now());
        if let Some(key) = cached {
            return Ok(key);
        }
        let wrapped: Option<String> = sqlx::query_scalar(
            "SELECT wrapped_key FROM data_keys WHERE tenant_id = $1 AND purpose = $2 AND version = $3",
        )
        .bind(tenant_id)
        .bind(purpose.as_str())
        .bind(version_to_db(version)?)
        .fetch_optional(&self.inner.pool)
        .await?;
        let wrapped = wrapped.ok_or(CryptoError::Tampered)?;
        self.unwrap_and_cache(tenant_id, purpose, version, &wrapped)
            .await
    }

    async fn unwrap_and_cache(
        &self,
        tenant_id: Uuid,
        purpose: Purpose,
        version: u32,
        wrapped: &str,
    ) -> Result<DataKey, CryptoError> {
        let key = self
            .inner
            .vault
            .unwrap_data_key(&self.inner.kek, wrapped)
            .await?;
        lock(&self.inner.keys).insert((tenant_id, purpose, version), key.clone(), Instant::now());
        Ok(key)
    }
}

/// A data key row, either as stored or already unwrapped (just created here).
enum StoredKey {
    Wrapped(u32, String),
    Unwrapped(u32, DataKey),
}
