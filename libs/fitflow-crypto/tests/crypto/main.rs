//! fitflow-crypto against a real OpenBao dev server and a real PostgreSQL.

mod keyring;
mod vault;

use std::time::Duration;

use fitflow_crypto::{FieldAddress, KeyRing, Vault};
use fitflow_testkit::{MigratedSchema, TestDatabase};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use uuid::Uuid;

/// No migrations of its own: the platform creates `data_keys`.
static MIGRATOR: Migrator = Migrator::DEFAULT;
const SCHEMA: &str = "cryptotest";
const LONG_TTL: Duration = Duration::from_secs(300);

/// A migrated database, the service's runtime pool, a superuser pool, and a
/// key ring for `service`.
struct Harness {
    _database: TestDatabase,
    pool: PgPool,
    admin: PgPool,
    vault: Vault,
    keyring: KeyRing,
    service: &'static str,
}

impl Harness {
    async fn new(service: &'static str, cache_ttl: Duration) -> Self {
        fitflow_testkit::init_tracing();
        let database = fitflow_testkit::database(&[MigratedSchema {
            schema: SCHEMA,
            migrator: &MIGRATOR,
        }])
        .await;
        let pool = fitflow_db::connect(&database.runtime_url(SCHEMA), SCHEMA, 8)
            .await
            .expect("runtime pool");
        let admin = database.admin_pool().await;
        let vault = fitflow_testkit::vault().await;
        let keyring = KeyRing::new(vault.clone(), pool.clone(), service, cache_ttl);
        Self {
            _database: database,
            pool,
            admin,
            vault,
            keyring,
            service,
        }
    }

    /// Another replica of the service: same database and OpenBao, its own cache.
    fn replica(&self, cache_ttl: Duration) -> KeyRing {
        KeyRing::new(
            self.vault.clone(),
            self.pool.clone(),
            self.service,
            cache_ttl,
        )
    }

    /// The stored data key rows of a tenant, as (purpose, version, wrapped key).
    async fn key_rows(&self, tenant_id: Uuid) -> Vec<(String, i32, String)> {
        sqlx::query_as(
            "SELECT purpose, version, wrapped_key FROM cryptotest.data_keys \
             WHERE tenant_id = $1 ORDER BY purpose, version",
        )
        .bind(tenant_id)
        .fetch_all(&self.admin)
        .await
        .expect("read data_keys")
    }
}

fn address(row_id: Uuid) -> FieldAddress<'static> {
    FieldAddress {
        table: "clients",
        column: "medical_notes",
        row_id,
    }
}

/// The data-key version recorded in a sealed field's header.
fn sealed_version(sealed: &[u8]) -> u32 {
    let bytes: [u8; 4] = sealed[1..5].try_into().expect("a header");
    u32::from_be_bytes(bytes)
}
