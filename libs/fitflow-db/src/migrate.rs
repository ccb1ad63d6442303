//! Roles, schemas and reversible migrations.

use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::DbError;

/// The two roles of a service's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRoles {
    /// Owns the schema and its objects; runs migrations; cannot log in.
    pub owner: String,
    /// Logs in at run time; owns nothing; reads and writes rows only.
    pub runtime: String,
}

impl SchemaRoles {
    /// The conventional roles for `schema`.
    pub fn for_schema(schema: &str) -> Self {
        Self {
            owner: format!("fitflow_{schema}_owner"),
            runtime: format!("fitflow_{schema}"),
        }
    }
}

/// Creates (if missing) the schema's roles and the schema, owned by the owner
/// role, with default privileges that let the runtime role use rows and
/// sequences of objects the owner creates later. Safe to run again.
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
    let statements = [
        format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{owner}') THEN \
             CREATE ROLE {owner} NOLOGIN; END IF; \
             IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{runtime}') THEN \
             CREATE ROLE {runtime} LOGIN; END IF; END $$",
            owner = roles.owner,
            runtime = roles.runtime
        ),
        // The admin must be able to SET ROLE to the owner to run migrations.
        format!("GRANT {} TO CURRENT_USER", roles.owner),
        format!(
            "CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {}",
            roles.owner
        ),
        format!("REVOKE ALL ON SCHEMA {schema} FROM PUBLIC"),
        format!("GRANT USAGE ON SCHEMA {schema} TO {}", roles.runtime),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {schema} \
             GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}",
            roles.owner, roles.runtime
        ),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {schema} \
             GRANT USAGE, SELECT ON SEQUENCES TO {}",
            roles.owner, roles.runtime
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

/// Applies every pending migration of `schema` as its owner role. Its
/// `_sqlx_migrations` table lives in the schema itself.
pub async fn migrate_up(
    admin_url: &SecretString,
    schema: &str,
    migrator: &Migrator,
) -> Result<(), DbError> {
    let mut conn = owner_connection(admin_url, schema).await?;
    migrator.run(&mut conn).await?;
    tracing::info!(schema, "migrations applied");
    Ok(())
}

/// Reverts the migrations of `schema` newer than `target_version` (0 reverts all).
pub async fn migrate_down(
    admin_url: &SecretString,
    schema: &str,
    migrator: &Migrator,
    target_version: i64,
) -> Result<(), DbError> {
    let mut conn = owner_connection(admin_url, schema).await?;
    migrator.undo(&mut conn, target_version).await?;
    tracing::info!(schema, target_version, "migrations reverted");
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
