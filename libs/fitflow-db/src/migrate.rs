//! Roles, schemas and reversible, validated migrations.
//!
//! Every service schema gets the platform's migrations (`platform/`: the
//! shared tables `data_keys`, `audit_outbox`, `idempotency_keys`) followed by
//! the service's own. Platform versions are small integers and service
//! versions are timestamps, so the platform's always come first.
//!
//! Each up migration ends with a validation query in a comment block:
//!
//! ```sql
//! -- validate:
//! -- SELECT to_regclass('widgets') IS NOT NULL;
//! ```
//!
//! [`migrate_up`] applies a migration, runs its validation query in the same
//! transaction, and records the migration only if the query returns true;
//! otherwise the transaction rolls back and nothing of it remains. A
//! migration without a down script or without a validation query is refused
//! before anything runs. The history table keeps sqlx's `_sqlx_migrations`
//! layout, and the runtime role may not write it.
//!
//! A migration whose first line is sqlx's marker `-- no-transaction` runs
//! outside a transaction, for what PostgreSQL refuses inside one (`CREATE
//! INDEX CONCURRENTLY`, which builds a large table's index without blocking
//! its writes). Its statements run one at a time (dollar quoting is refused,
//! since the migrator splits them itself), then its validation query, and it
//! is recorded only if that returns true. Nothing rolls such a migration
//! back: an interrupted or failed run leaves what it did (an INVALID index),
//! so it must be written to run again (`DROP INDEX CONCURRENTLY IF EXISTS`
//! before `CREATE INDEX CONCURRENTLY`) and validated so that a leftover fails
//! (`pg_index.indisvalid`). The same marker on a down script reverts it
//! outside a transaction too.

use std::collections::BTreeMap;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::DbError;

/// The platform's migrations, applied to every service schema first.
pub static PLATFORM_MIGRATOR: Migrator = sqlx::migrate!("./platform");

/// Versions below this are the platform's; services use timestamps.
const PLATFORM_VERSION_LIMIT: i64 = 1_000;

/// The three roles of a service's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRoles {
    /// Owns the schema and its objects; runs migrations; cannot log in.
    pub owner: String,
    /// Logs in at run time; owns nothing; reads and writes rows only.
    pub runtime: String,
    /// The service acting for itself (login, maintenance): logs in with its
    /// own credential; row-level-security policies that let the service see
    /// every row name this role, not a setting. The runtime role is not a
    /// member of it.
    pub system: String,
}

impl SchemaRoles {
    /// The conventional roles for `schema`.
    pub fn for_schema(schema: &str) -> Self {
        Self {
            owner: format!("fitflow_{schema}_owner"),
            runtime: format!("fitflow_{schema}"),
            system: format!("fitflow_{schema}_system"),
        }
    }
}

/// Creates (if missing) the schema's roles and the schema, owned by the owner
/// role, with default privileges that let the runtime and system roles use
/// rows and sequences of objects the owner creates later. Safe to run again.
/// `admin_url` must name a role allowed to create roles (a superuser in dev).
pub async fn provision_schema(
    admin_url: &SecretString,
    schema: &str,
) -> Result<SchemaRoles, DbError> {
    let roles = SchemaRoles::for_schema(schema);
    let mut conn = admin_connection(admin_url).await?;
    // Roles are cluster-wide: serialise concurrent provisioning (parallel test binaries).
    sqlx::query("SELECT pg_advisory_lock(hashtext('fitflow_provision'))")
        .execute(&mut conn)
        .await?;
    let SchemaRoles {
        owner,
        runtime,
        system,
    } = &roles;
    let statements = [
        format!(
            "DO $$ BEGIN \
             IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{owner}') THEN \
             CREATE ROLE {owner} NOLOGIN; END IF; \
             IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{runtime}') THEN \
             CREATE ROLE {runtime} LOGIN; END IF; \
             IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{system}') THEN \
             CREATE ROLE {system} LOGIN; END IF; END $$"
        ),
        // The system role logs in with its own credential; a runtime role
        // provisioned before that may no longer switch to it.
        format!("ALTER ROLE {system} LOGIN"),
        format!("ALTER ROLE {runtime} NOINHERIT"),
        format!(
            "DO $$ BEGIN \
             IF pg_has_role('{runtime}', '{system}', 'MEMBER') THEN \
             REVOKE {system} FROM {runtime}; END IF; END $$"
        ),
        // The admin must be able to SET ROLE to the owner to run migrations.
        format!("GRANT {owner} TO CURRENT_USER"),
        format!("CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {owner}"),
        // Trusted extensions (btree_gist for scheduling's exclusion
        // constraint) are created by the schema owner, which PostgreSQL
        // allows to roles with CREATE on the database.
        format!(
            "DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO {owner}', current_database()); END $$"
        ),
        format!("REVOKE ALL ON SCHEMA {schema} FROM PUBLIC"),
        format!("GRANT USAGE ON SCHEMA {schema} TO {runtime}, {system}"),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} \
             GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {runtime}, {system}"
        ),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} \
             GRANT USAGE, SELECT ON SEQUENCES TO {runtime}, {system}"
        ),
    ];
    let result = async {
        for statement in &statements {
            sqlx::query(statement).execute(&mut conn).await?;
        }
        Ok::<_, DbError>(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock(hashtext('fitflow_provision'))")
        .execute(&mut conn)
        .await?;
    result?;
    Ok(roles)
}

/// One reversible migration, ready to apply or revert.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its version (platform: < 1000; services: a timestamp).
    pub version: i64,
    /// Its description, from the file name.
    pub description: String,
    up: Script,
    down: Script,
    validation: String,
    checksum: Vec<u8>,
}

/// How a script runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Script {
    /// Whole, inside the migration's transaction.
    InTransaction(String),
    /// Statement by statement, each committed on its own (`-- no-transaction`).
    Outside(Vec<String>),
}

impl Script {
    fn of(migration: &Migration) -> Result<Self, DbError> {
        if !migration.no_tx {
            return Ok(Self::InTransaction(migration.sql.to_string()));
        }
        statements(&migration.sql)
            .map(Self::Outside)
            .map_err(|reason| DbError::InvalidMigration {
                version: migration.version,
                reason,
            })
    }
}

/// The statements of a script that runs outside a transaction, without
/// their comments. PostgreSQL runs a message of several statements as one
/// implicit transaction, where `CREATE INDEX CONCURRENTLY` is refused, so
/// each is sent alone. Quotes and comments are honoured; dollar quoting (a
/// function body) is refused rather than parsed, as such a script only needs
/// index and plain DDL statements.
fn statements(sql: &str) -> Result<Vec<String>, &'static str> {
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for skipped in chars.by_ref() {
                    if skipped == '\n' {
                        break;
                    }
                }
                current.push('\n');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                loop {
                    match chars.next() {
                        Some('/') if previous == '*' => break,
                        Some(next) => previous = next,
                        None => return Err("a block comment is not closed"),
                    }
                }
                current.push(' ');
            }
            '\'' | '"' => {
                current.push(c);
                loop {
                    match chars.next() {
                        Some(next) if next == c => {
                            current.push(next);
                            // A doubled quote is the quote itself; go on.
                            if chars.peek() == Some(&c) {
                                current.push(c);
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        Some(next) => current.push(next),
                        None => return Err("a quoted string or name is not closed"),
                    }
                }
            }
            '$' => return Err("a migration outside a transaction may not use dollar quoting"),
            ';' => {
                let statement = current.trim();
                if !statement.is_empty() {
                    statements.push(statement.to_owned());
                }
                current.clear();
            }
            _ => current.push(c),
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        statements.push(rest.to_owned());
    }
    if statements.is_empty() {
        return Err("a migration outside a transaction has no statement");
    }
    Ok(statements)
}

/// The platform's migrations followed by `service`'s, checked: every up has
/// a down and a validation query, and no service version collides with the
/// platform's range.
pub fn plan(service: &Migrator) -> Result<Vec<Step>, DbError> {
    let mut steps = steps_of(&PLATFORM_MIGRATOR)?;
    let own = steps_of(service)?;
    if let Some(step) = own
        .iter()
        .find(|step| step.version < PLATFORM_VERSION_LIMIT)
    {
        return Err(DbError::InvalidMigration {
            version: step.version,
            reason: "versions below 1000 are reserved for platform migrations",
        });
    }
    steps.extend(own);
    Ok(steps)
}

fn steps_of(migrator: &Migrator) -> Result<Vec<Step>, DbError> {
    let mut ups: BTreeMap<i64, &Migration> = BTreeMap::new();
    let mut downs: BTreeMap<i64, &Migration> = BTreeMap::new();
    for migration in migrator.iter() {
        match migration.migration_type {
            MigrationType::ReversibleUp => {
                ups.insert(migration.version, migration);
            }
            MigrationType::ReversibleDown => {
                downs.insert(migration.version, migration);
            }
            MigrationType::Simple => {
                return Err(DbError::InvalidMigration {
                    version: migration.version,
                    reason: "every migration must be reversible (.up.sql and .down.sql)",
                });
            }
        }
    }
    ups.into_iter()
        .map(|(version, up)| {
            let down = downs.get(&version).ok_or(DbError::InvalidMigration {
                version,
                reason: "the migration has no down script",
            })?;
            let validation = validation_query(&up.sql).ok_or(DbError::InvalidMigration {
                version,
                reason: "the up script has no `-- validate:` query",
            })?;
            Ok(Step {
                version,
                description: up.description.to_string(),
                up: Script::of(up)?,
                down: Script::of(down)?,
                validation,
                checksum: up.checksum.to_vec(),
            })
        })
        .collect()
}

/// The query in the `-- validate:` comment block of an up script: the
/// comment lines after the marker, with their `--` stripped.
pub fn validation_query(sql: &str) -> Option<String> {
    let mut lines = sql.lines().skip_while(|line| line.trim() != "-- validate:");
    lines.next()?;
    let query: Vec<&str> = lines
        .map(str::trim)
        .take_while(|line| line.starts_with("--"))
        .map(|line| line.trim_start_matches("--").trim())
        .collect();
    let query = query.join("\n");
    (!query.trim().is_empty()).then_some(query)
}

/// Applies every pending platform and service migration of `schema` as its
/// owner role, each in its own transaction with its validation query (or,
/// when marked `-- no-transaction`, outside one), and keeps the runtime role
/// out of the migration history.
pub async fn migrate_up(
    admin_url: &SecretString,
    schema: &str,
    migrator: &Migrator,
) -> Result<(), DbError> {
    let steps = plan(migrator)?;
    let roles = SchemaRoles::for_schema(schema);
    let mut conn = owner_connection(admin_url, schema).await?;
    lock_schema(&mut conn, schema).await?;
    let result = apply_pending(&mut conn, &roles, &steps).await;
    unlock_schema(&mut conn, schema).await?;
    result?;
    tracing::info!(schema, "migrations applied");
    Ok(())
}

async fn apply_pending(
    conn: &mut PgConnection,
    roles: &SchemaRoles,
    steps: &[Step],
) -> Result<(), DbError> {
    ensure_history_table(conn, roles).await?;
    let applied = applied(conn).await?;
    for step in steps {
        match applied.get(&step.version) {
            Some(checksum) if *checksum == step.checksum => continue,
            Some(_) => {
                return Err(DbError::InvalidMigration {
                    version: step.version,
                    reason: "an applied migration was changed after it was applied",
                });
            }
            None => apply(conn, step).await?,
        }
    }
    Ok(())
}

async fn apply(conn: &mut PgConnection, step: &Step) -> Result<(), DbError> {
    let up = match &step.up {
        Script::InTransaction(up) => up,
        Script::Outside(statements) => {
            return apply_outside_transaction(conn, step, statements).await;
        }
    };
    let started = std::time::Instant::now();
    let mut transaction = conn.begin().await?;
    sqlx::raw_sql(up).execute(&mut *transaction).await?;
    let valid: Option<bool> = sqlx::query_scalar(&step.validation)
        .fetch_one(&mut *transaction)
        .await?;
    if valid != Some(true) {
        transaction.rollback().await?;
        tracing::error!(
            version = step.version,
            description = %step.description,
            "migration validation failed; rolled back and not recorded"
        );
        return Err(DbError::ValidationFailed {
            version: step.version,
            description: step.description.clone(),
        });
    }
    record(&mut transaction, step, started).await?;
    transaction.commit().await?;
    tracing::info!(version = step.version, description = %step.description, "migration applied");
    Ok(())
}

/// Runs a `-- no-transaction` migration's statements one at a time, then its
/// validation query; records it only if that returns true. What ran stays
/// either way: the migration redoes it on its next run.
async fn apply_outside_transaction(
    conn: &mut PgConnection,
    step: &Step,
    statements: &[String],
) -> Result<(), DbError> {
    let started = std::time::Instant::now();
    for statement in statements {
        sqlx::raw_sql(statement).execute(&mut *conn).await?;
    }
    let valid: Option<bool> = sqlx::query_scalar(&step.validation)
        .fetch_one(&mut *conn)
        .await?;
    if valid != Some(true) {
        tracing::error!(
            version = step.version,
            description = %step.description,
            "migration outside a transaction failed its validation; not recorded, to be redone on the next run"
        );
        return Err(DbError::ValidationFailed {
            version: step.version,
            description: step.description.clone(),
        });
    }
    record(&mut *conn, step, started).await?;
    tracing::info!(
        version = step.version,
        description = %step.description,
        "migration applied outside a transaction"
    );
    Ok(())
}

/// Records `step` as applied, `started` when it began.
async fn record(
    conn: &mut PgConnection,
    step: &Step,
    started: std::time::Instant,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, $2, true, $3, $4)",
    )
    .bind(step.version)
    .bind(&step.description)
    .bind(&step.checksum)
    .bind(i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Reverts the migrations of `schema` newer than `target_version` (0 reverts
/// all, the platform's included), newest first, each in its own transaction.
pub async fn migrate_down(
    admin_url: &SecretString,
    schema: &str,
    migrator: &Migrator,
    target_version: i64,
) -> Result<(), DbError> {
    let steps = plan(migrator)?;
    let roles = SchemaRoles::for_schema(schema);
    let mut conn = owner_connection(admin_url, schema).await?;
    lock_schema(&mut conn, schema).await?;
    let result = async {
        ensure_history_table(&mut conn, &roles).await?;
        let applied = applied(&mut conn).await?;
        for step in steps.iter().rev() {
            if step.version <= target_version || !applied.contains_key(&step.version) {
                continue;
            }
            revert(&mut conn, step).await?;
        }
        Ok::<_, DbError>(())
    }
    .await;
    unlock_schema(&mut conn, schema).await?;
    result?;
    tracing::info!(schema, target_version, "migrations reverted");
    Ok(())
}

/// Runs `step`'s down script and forgets it: in one transaction, or, for a
/// `-- no-transaction` down script, statement by statement before the
/// history row goes (a failure leaves it recorded, to be reverted again).
async fn revert(conn: &mut PgConnection, step: &Step) -> Result<(), DbError> {
    let forget = sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1").bind(step.version);
    match &step.down {
        Script::InTransaction(down) => {
            let mut transaction = conn.begin().await?;
            sqlx::raw_sql(down).execute(&mut *transaction).await?;
            forget.execute(&mut *transaction).await?;
            transaction.commit().await?;
        }
        Script::Outside(statements) => {
            for statement in statements {
                sqlx::raw_sql(statement).execute(&mut *conn).await?;
            }
            forget.execute(&mut *conn).await?;
        }
    }
    tracing::info!(version = step.version, description = %step.description, "migration reverted");
    Ok(())
}

/// The applied versions of the connection's schema, with their checksums.
async fn applied(conn: &mut PgConnection) -> Result<BTreeMap<i64, Vec<u8>>, DbError> {
    let rows: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// sqlx's history layout, so `sqlx migrate info` still reads it; the
/// runtime and system roles may read it but never write it.
async fn ensure_history_table(conn: &mut PgConnection, roles: &SchemaRoles) -> Result<(), DbError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations ( \
             version BIGINT PRIMARY KEY, \
             description TEXT NOT NULL, \
             installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), \
             success BOOLEAN NOT NULL, \
             checksum BYTEA NOT NULL, \
             execution_time BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "REVOKE ALL ON _sqlx_migrations FROM {runtime}, {system}",
        runtime = roles.runtime,
        system = roles.system
    ))
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "GRANT SELECT ON _sqlx_migrations TO {runtime}, {system}",
        runtime = roles.runtime,
        system = roles.system
    ))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn lock_schema(conn: &mut PgConnection, schema: &str) -> Result<(), DbError> {
    sqlx::query("SELECT pg_advisory_lock(hashtext('fitflow_migrate.' || $1))")
        .bind(schema)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn unlock_schema(conn: &mut PgConnection, schema: &str) -> Result<(), DbError> {
    sqlx::query("SELECT pg_advisory_unlock(hashtext('fitflow_migrate.' || $1))")
        .bind(schema)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn admin_connection(admin_url: &SecretString) -> Result<PgConnection, DbError> {
    let options = PgConnectOptions::from_str(admin_url.expose_secret())
        .map_err(|_| DbError::InvalidUrl)?
        .disable_statement_logging();
    Ok(PgConnection::connect_with(&options).await?)
}

async fn owner_connection(admin_url: &SecretString, schema: &str) -> Result<PgConnection, DbError> {
    let roles = SchemaRoles::for_schema(schema);
    let mut conn = admin_connection(admin_url).await?;
    sqlx::query(&format!("SET ROLE {}", roles.owner))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("SET search_path TO {schema}"))
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_validation_query_is_the_comment_block_after_the_marker() {
        let sql = "CREATE TABLE t (id int);\n\n-- validate:\n-- SELECT to_regclass('t')\n--   IS NOT NULL;\n";
        assert_eq!(
            validation_query(sql).as_deref(),
            Some("SELECT to_regclass('t')\nIS NOT NULL;")
        );
    }

    #[test]
    fn an_up_script_without_a_marker_has_no_validation_query() {
        assert_eq!(validation_query("CREATE TABLE t (id int);"), None);
        assert_eq!(
            validation_query("CREATE TABLE t (id int);\n-- validate:\n"),
            None
        );
    }

    #[test]
    fn a_script_outside_a_transaction_is_sent_statement_by_statement_without_comments() {
        let sql = "-- no-transaction\n\
                   DROP INDEX CONCURRENTLY IF EXISTS widgets_name; -- a leftover\n\
                   /* a; block */ CREATE INDEX CONCURRENTLY widgets_name\n\
                   ON widgets (name) WHERE name <> 'a;b' AND \"odd;\"\"name\" <> 'it''s';\n\
                   \n-- validate:\n-- SELECT true;\n";
        assert_eq!(
            statements(sql).unwrap(),
            [
                "DROP INDEX CONCURRENTLY IF EXISTS widgets_name",
                "CREATE INDEX CONCURRENTLY widgets_name\n\
                 ON widgets (name) WHERE name <> 'a;b' AND \"odd;\"\"name\" <> 'it''s'",
            ]
        );
    }

    #[test]
    fn a_script_outside_a_transaction_refuses_dollar_quotes_open_quotes_and_emptiness() {
        for sql in [
            "DO $$ BEGIN PERFORM 1; END $$;",
            "CREATE INDEX i ON t (a) WHERE b = 'open;",
            "SELECT 1 /* open",
            "-- no-transaction\n-- validate:\n-- SELECT true;\n",
        ] {
            assert!(statements(sql).is_err(), "{sql}");
        }
    }

    #[test]
    fn every_platform_migration_is_reversible_and_validated() {
        let steps = plan(&Migrator::DEFAULT).expect("the platform plan is well-formed");
        assert!(steps.len() >= 2);
        assert!(
            steps
                .iter()
                .all(|step| step.version < PLATFORM_VERSION_LIMIT)
        );
    }
}
