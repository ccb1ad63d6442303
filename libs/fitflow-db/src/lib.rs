//! PostgreSQL for FitFlow services.
//!
//! Each service owns one schema and reaches it through two roles: an owner
//! (`fitflow_<schema>_owner`, NOLOGIN) that runs migrations and owns every
//! object, and a runtime role (`fitflow_<schema>`) that logs in, owns nothing
//! and may only read and write rows in its own schema. Row-level security reads
//! the context that [`tx`] sets with `SET LOCAL`, never session-wide, because
//! pooled connections are shared between requests.

mod error;
mod migrate;

use std::str::FromStr;
use std::time::Duration;

use fitflow_auth::Caller;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

pub use error::{DbError, is_unique_violation};
pub use migrate::{
    PLATFORM_MIGRATOR, SchemaRoles, Step, migrate_down, migrate_up, plan, provision_schema,
    validation_query,
};

/// A transaction inside which the row-level-security context is set.
pub type Tx = Transaction<'static, Postgres>;

/// Opens the pool a service uses at run time, with `search_path` pinned to its schema.
pub async fn connect(
    url: &SecretString,
    schema: &str,
    max_connections: u32,
) -> Result<PgPool, DbError> {
    let options = PgConnectOptions::from_str(url.expose_secret())
        .map_err(|_| DbError::InvalidUrl)?
        .options([("search_path", schema)])
        .application_name(&format!("fitflow-{schema}"));
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // No ping before each transaction: it was a sixth round trip on a
        // five-statement read (`fitflow bench --scenario get-client`). A
        // connection that broke while idle fails its next request once with
        // DATABASE_UNAVAILABLE (retryable) and is dropped; idle connections
        // are retired before servers and proxies time them out.
        .test_before_acquire(false)
        .idle_timeout(Duration::from_secs(300))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Begins a transaction and sets the row-level-security context for `caller`
/// with `SET LOCAL` semantics, so it ends with the transaction: a user's
/// `fitflow.user_id`, `fitflow.roles` and `fitflow.supervised`; a service
/// acting for itself switches to its schema's system role
/// (`fitflow_<schema>_system`), which the policies that see every row name.
pub async fn tx(pool: &PgPool, caller: &Caller) -> Result<Tx, DbError> {
    let mut transaction = pool.begin().await?;
    match caller {
        Caller::User(principal) => {
            sqlx::query(
                "SELECT set_config('fitflow.user_id', $1, true), set_config('fitflow.roles', $2, true), \
                 set_config('fitflow.supervised', $3, true)",
            )
            .bind(principal.user_id.to_string())
            .bind(join(principal.roles.iter().map(|role| role.as_str())))
            .bind(join(
                principal
                    .supervised_trainer_ids
                    .iter()
                    .map(|id| id.to_string()),
            ))
            .execute(&mut *transaction)
            .await?;
        }
        Caller::Service(_) => {
            // The pool pins search_path to the service's schema, so
            // current_schema() names it; the role exists once provisioned.
            sqlx::query(
                "SELECT set_config('role', 'fitflow_' || current_schema() || '_system', true)",
            )
            .execute(&mut *transaction)
            .await?;
        }
        Caller::Anonymous => {}
    }
    Ok(transaction)
}

fn join<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    items
        .map(|item| item.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(",")
}
