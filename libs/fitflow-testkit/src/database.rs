//! Throwaway databases cloned from a migrated template.

use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

/// Bump when the way templates are built changes, so stale templates are not reused.
const TEMPLATE_LAYOUT: &str = "fitflow-testkit template v1";
/// Written on a template once it is fully built; a template without it was
/// left half-built by a killed run and is rebuilt.
const TEMPLATE_COMPLETE: &str = "fitflow-testkit: template complete";
/// Advisory lock (on the admin database) serialising template builds and clones
/// across test processes.
const TEMPLATE_LOCK: i64 = 0x0F17_F10E_7E57;

/// Names the prefix of every throwaway database and template this process
/// creates. `deploy/dev/test` sets it per clone (`fitflow_test_<clone id>`), so
/// clones sharing one PostgreSQL never drop each other's databases.
pub const TEST_DB_PREFIX_VAR: &str = "FITFLOW_TEST_DB_PREFIX";
/// The prefix when [`TEST_DB_PREFIX_VAR`] is unset, as in a plain `cargo test`.
const DEFAULT_TEST_DB_PREFIX: &str = "fitflow_test";
/// The longest prefix that still leaves room for `_<32 hex>` within
/// PostgreSQL's 63-byte identifiers.
const MAX_TEST_DB_PREFIX_LEN: usize = 30;

/// The prefix of this process's throwaway databases (`<prefix>_<random>`) and
/// templates (`<prefix>_tpl_<hash>`): [`TEST_DB_PREFIX_VAR`], or
/// `fitflow_test`. Panics on a prefix that is not a plain lower-case
/// identifier, since it is spliced into SQL unquoted.
pub fn test_database_prefix() -> String {
    let value = std::env::var(TEST_DB_PREFIX_VAR).ok();
    checked_prefix(value.as_deref()).unwrap_or_else(|reason| panic!("{reason}"))
}

/// `value` if it is a usable prefix, the default if there is none.
fn checked_prefix(value: Option<&str>) -> Result<String, String> {
    let Some(prefix) = value.filter(|value| !value.is_empty()) else {
        return Ok(DEFAULT_TEST_DB_PREFIX.to_owned());
    };
    let starts_with_letter = prefix.starts_with(|c: char| c.is_ascii_lowercase());
    let plain = prefix
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if starts_with_letter && plain && prefix.len() <= MAX_TEST_DB_PREFIX_LEN {
        Ok(prefix.to_owned())
    } else {
        Err(format!(
            "{TEST_DB_PREFIX_VAR}={prefix:?} must be a lower-case letter, then lower-case \
             letters, digits or _, at most {MAX_TEST_DB_PREFIX_LEN} characters"
        ))
    }
}

/// `FITFLOW_TEST_DATABASE_URL`, or `postgres://postgres@127.0.0.1:5432/postgres`;
/// it must name a superuser.
pub fn admin_url() -> SecretString {
    let url = std::env::var("FITFLOW_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    SecretString::from(url)
}

/// A service schema and the migrations that build it.
#[derive(Debug, Clone, Copy)]
pub struct MigratedSchema {
    /// The schema name, e.g. `identity`.
    pub schema: &'static str,
    /// The schema's migrations (`sqlx::migrate!`).
    pub migrator: &'static Migrator,
}

/// A throwaway database, dropped (with its connections) when this is dropped.
/// Set `FITFLOW_KEEP_TEST_DATABASES=1` to keep it for inspection.
pub struct TestDatabase {
    /// The database name, `<prefix>_<random>` (see [`test_database_prefix`]).
    pub name: String,
    admin_url: SecretString,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TestDatabase {
    /// A superuser URL for this database.
    pub fn admin_url(&self) -> SecretString {
        url_for(&self.admin_url, &self.name, None)
    }

    /// The URL of `schema`'s runtime role (`fitflow_<schema>`) on this database.
    pub fn runtime_url(&self, schema: &str) -> SecretString {
        let runtime = fitflow_db::SchemaRoles::for_schema(schema).runtime;
        url_for(&self.admin_url, &self.name, Some(&runtime))
    }

    /// The URL of `schema`'s system role (`fitflow_<schema>_system`) on this database.
    pub fn system_url(&self, schema: &str) -> SecretString {
        let system = fitflow_db::SchemaRoles::for_schema(schema).system;
        url_for(&self.admin_url, &self.name, Some(&system))
    }

    /// A superuser pool on this database, for checks with plain SQL.
    pub async fn admin_pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(4)
            .connect(self.admin_url().expose_secret())
            .await
            .expect("connect to the test database as the admin")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if std::env::var_os("FITFLOW_KEEP_TEST_DATABASES").is_some() {
            return;
        }
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime, so the async work gets its own thread and runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(admin_url.expose_secret())
                    .await
                    .map_err(|error| error.to_string())?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map_err(|error| error.to_string())?;
                conn.close().await.map_err(|error| error.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "fitflow-testkit: could not drop test database {}",
                self.name
            );
        }
    }
}

/// Rewrites `base` to point at `database` (and log in as `user` without a password, if given).
fn url_for(base: &SecretString, database: &str, user: Option<&str>) -> SecretString {
    let mut url = url::Url::from_str(base.expose_secret()).expect("the admin URL is a URL");
    url.set_path(&format!("/{database}"));
    if let Some(user) = user {
        url.set_username(user).expect("the admin URL has a host");
        url.set_password(None).expect("the admin URL has a host");
    }
    SecretString::from(url.to_string())
}

/// The template's name, `<prefix>_tpl_<hash>`: a hash of the schema names and
/// their migrations' versions and checksums, so changed migrations get a new
/// template. The prefix keeps one clone's template rebuild (which drops it)
/// away from another clone's tests.
fn template_name(prefix: &str, schemas: &[MigratedSchema]) -> String {
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    hash.update(TEMPLATE_LAYOUT.as_bytes());
    for migration in fitflow_db::PLATFORM_MIGRATOR.iter() {
        hash.update(&migration.version.to_be_bytes());
        hash.update(&migration.checksum);
    }
    for schema in schemas {
        hash.update(b"\0schema\0");
        hash.update(schema.schema.as_bytes());
        for migration in schema.migrator.iter() {
            hash.update(&migration.version.to_be_bytes());
            hash.update(format!("{:?}", migration.migration_type).as_bytes());
            hash.update(&migration.checksum);
        }
    }
    let digest = hash.finish();
    format!("{prefix}_tpl_{}", hex::encode(&digest.as_ref()[..8]))
}

/// A fresh database `<prefix>_<random>` holding `schemas`, provisioned and
/// migrated. The first call for a set of schemas builds a template database
/// once (across processes); later calls clone it, which is fast.
pub async fn database(schemas: &[MigratedSchema]) -> TestDatabase {
    let admin_url = admin_url();
    let prefix = test_database_prefix();
    let template = template_name(&prefix, schemas);
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(admin_url.expose_secret())
        .await
        .expect("connect to PostgreSQL as the admin (set FITFLOW_TEST_DATABASE_URL)");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(TEMPLATE_LOCK)
        .execute(&mut conn)
        .await
        .expect("take the template lock");
    ensure_template(&mut conn, &admin_url, &template, schemas).await;
    sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .execute(&mut conn)
        .await
        .expect("clone the template database");
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(TEMPLATE_LOCK)
        .execute(&mut conn)
        .await
        .expect("release the template lock");
    let _ = conn.close().await;
    TestDatabase { name, admin_url }
}

async fn ensure_template(
    conn: &mut PgConnection,
    admin_url: &SecretString,
    template: &str,
    schemas: &[MigratedSchema],
) {
    let status: Option<Option<String>> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
    )
    .bind(template)
    .fetch_optional(&mut *conn)
    .await
    .expect("look up the template database");
    match status {
        Some(Some(comment)) if comment == TEMPLATE_COMPLETE => return,
        Some(_) => {
            eprintln!("fitflow-testkit: rebuilding half-built template {template}");
            sqlx::query(&format!("DROP DATABASE {template} WITH (FORCE)"))
                .execute(&mut *conn)
                .await
                .expect("drop the half-built template database");
        }
        None => {}
    }
    sqlx::query(&format!("CREATE DATABASE {template}"))
        .execute(&mut *conn)
        .await
        .expect("create the template database");
    let template_url = url_for(admin_url, template, None);
    for schema in schemas {
        fitflow_db::provision_schema(&template_url, schema.schema)
            .await
            .unwrap_or_else(|error| panic!("provision schema {}: {error}", schema.schema));
        fitflow_db::migrate_up(&template_url, schema.schema, schema.migrator)
            .await
            .unwrap_or_else(|error| panic!("migrate schema {}: {error}", schema.schema));
    }
    sqlx::query(&format!(
        "COMMENT ON DATABASE {template} IS '{TEMPLATE_COMPLETE}'"
    ))
    .execute(&mut *conn)
    .await
    .expect("mark the template database complete");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_point_at_the_test_database_and_the_runtime_role() {
        let base =
            SecretString::from("postgres://postgres:pw@db.local:6543/postgres?sslmode=disable");
        let admin = url_for(&base, "fitflow_test_x", None);
        assert_eq!(
            admin.expose_secret(),
            "postgres://postgres:pw@db.local:6543/fitflow_test_x?sslmode=disable"
        );
        let runtime = url_for(&base, "fitflow_test_x", Some("fitflow_clients"));
        assert_eq!(
            runtime.expose_secret(),
            "postgres://fitflow_clients@db.local:6543/fitflow_test_x?sslmode=disable"
        );
    }

    #[test]
    fn the_template_name_depends_on_the_schema_names() {
        static EMPTY: Migrator = Migrator::DEFAULT;
        let a = template_name(
            "fitflow_test",
            &[MigratedSchema {
                schema: "a",
                migrator: &EMPTY,
            }],
        );
        let b = template_name(
            "fitflow_test",
            &[MigratedSchema {
                schema: "b",
                migrator: &EMPTY,
            }],
        );
        assert_ne!(a, b);
        assert!(a.starts_with("fitflow_test_tpl_"));
    }

    #[test]
    fn clones_with_different_prefixes_never_share_a_template() {
        static EMPTY: Migrator = Migrator::DEFAULT;
        let schemas = [MigratedSchema {
            schema: "a",
            migrator: &EMPTY,
        }];
        let ours = template_name("fitflow_test_0a1b2c3d", &schemas);
        let theirs = template_name("fitflow_test_9f8e7d6c", &schemas);
        assert_ne!(ours, theirs);
        assert!(ours.starts_with("fitflow_test_0a1b2c3d_tpl_"));
    }

    #[test]
    fn without_a_prefix_set_plain_cargo_test_uses_fitflow_test() {
        assert_eq!(checked_prefix(None).as_deref(), Ok("fitflow_test"));
        assert_eq!(checked_prefix(Some("")).as_deref(), Ok("fitflow_test"));
    }

    #[test]
    fn the_longest_prefix_still_fits_postgres_identifiers() {
        static EMPTY: Migrator = Migrator::DEFAULT;
        let prefix = checked_prefix(Some(&"p".repeat(MAX_TEST_DB_PREFIX_LEN))).expect("fits");
        let database = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let template = template_name(
            &prefix,
            &[MigratedSchema {
                schema: "a",
                migrator: &EMPTY,
            }],
        );
        assert!(database.len() <= 63 && template.len() <= 63);
        assert!(checked_prefix(Some(&"p".repeat(MAX_TEST_DB_PREFIX_LEN + 1))).is_err());
    }

    #[test]
    fn a_prefix_that_is_not_a_plain_identifier_is_refused_by_name() {
        for bad in [
            "Fitflow",
            "1st",
            "fitflow-test",
            "x; DROP DATABASE y",
            "fitflow test",
        ] {
            let error = checked_prefix(Some(bad)).unwrap_err();
            assert!(error.contains(TEST_DB_PREFIX_VAR), "{error}");
        }
    }

    #[tokio::test]
    async fn a_half_built_template_left_by_a_killed_run_is_rebuilt() {
        static WIDGETS: Migrator = sqlx::migrate!("tests/migrations");
        let schemas = [MigratedSchema {
            schema: "testkit_rebuild",
            migrator: &WIDGETS,
        }];
        let template = template_name(&test_database_prefix(), &schemas);
        let admin = admin_url();
        let mut conn = PgConnection::connect(admin.expose_secret())
            .await
            .expect("admin connects");
        // What a run killed mid-build leaves behind: the database without the completion mark.
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(TEMPLATE_LOCK)
            .execute(&mut conn)
            .await
            .expect("lock");
        sqlx::query(&format!("DROP DATABASE IF EXISTS {template} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .expect("drop");
        sqlx::query(&format!("CREATE DATABASE {template}"))
            .execute(&mut conn)
            .await
            .expect("create a half-built template");
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(TEMPLATE_LOCK)
            .execute(&mut conn)
            .await
            .expect("unlock");

        let database = database(&schemas).await;
        let pool = database.admin_pool().await;
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = 'testkit_rebuild' AND table_name = 'widgets'",
        )
        .fetch_one(&pool)
        .await
        .expect("query");
        assert_eq!(tables, 1, "the clone has the migrated schema");
        let mark: Option<String> = sqlx::query_scalar(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
        )
        .bind(&template)
        .fetch_one(&mut conn)
        .await
        .expect("query");
        assert_eq!(mark.as_deref(), Some(TEMPLATE_COMPLETE));
        pool.close().await;
    }
}
