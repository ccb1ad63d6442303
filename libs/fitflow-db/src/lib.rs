//! PostgreSQL for FitFlow services.
//!
//! Each service owns one schema and reaches it through three roles: an owner
//! (`fitflow_<schema>_owner`, NOLOGIN) that runs migrations and owns every
//! object; a runtime role (`fitflow_<schema>`) that logs in, owns nothing
//! and may only read and write rows in its own schema; and a system role
//! (`fitflow_<schema>_system`) that logs in with its own credential for the
//! service's own work (sign-in lookups, sweeps, purges), which the
//! row-level-security policies that see every row name. The runtime role is
//! not a member of the system role, so a runtime connection cannot become it.
//! Row-level security reads the context that [`tx`] sets with `SET LOCAL`,
//! never session-wide, because pooled connections are shared between requests.

mod error;
mod express;
mod migrate;

use std::str::FromStr;
use std::time::Duration;

use fitflow_auth::Caller;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool, Postgres, Transaction};

pub use error::{DbError, is_unique_violation};
pub use express::{Express, Lent};
pub use migrate::{
    PLATFORM_MIGRATOR, SchemaRoles, Step, migrate_down, migrate_up, plan, provision_schema,
    validation_query,
};

/// How long a request waits for a connection before DATABASE_UNAVAILABLE.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A transaction inside which the row-level-security context is set.
pub type Tx = Transaction<'static, Postgres>;

/// Opens the pool a service uses at run time, with `search_path` pinned to its schema.
pub async fn connect(
    url: &SecretString,
    schema: &str,
    max_connections: u32,
) -> Result<PgPool, DbError> {
    let options = options(url, schema, &format!("fitflow-{schema}"))?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
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

/// A pool logged in as a schema's system role (`fitflow_<schema>_system`).
/// Its own type, so a service's own work cannot run on the runtime pool and
/// a user's request cannot be handed this one by mistake.
#[derive(Debug, Clone)]
pub struct SystemPool(PgPool);

impl SystemPool {
    /// The underlying pool, for work outside a transaction (a relay, a count).
    pub fn pool(&self) -> &PgPool {
        &self.0
    }
}

/// Opens the system pool of `schema`, `search_path` pinned to it. Refuses a
/// URL that logs in as any other role: the runtime role there would see no
/// row where the service expects every row, and the admin role far more.
/// The role is checked on a connection of its own; the pool then connects
/// on demand and lets idle connections go after 30 s, since a service's own
/// work is occasional (identity's sign-ins aside) and seven services share
/// PostgreSQL's connection slots.
pub async fn connect_system(
    url: &SecretString,
    schema: &str,
    max_connections: u32,
) -> Result<SystemPool, DbError> {
    let options = options(url, schema, &format!("fitflow-{schema}-system"))?;
    let mut check = PgConnection::connect_with(&options).await?;
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut check)
        .await?;
    check.close().await?;
    let expected = SchemaRoles::for_schema(schema).system;
    if user != expected {
        return Err(DbError::WrongRole {
            expected,
            found: user,
        });
    }
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .idle_timeout(Duration::from_secs(30))
        .connect_lazy_with(options);
    Ok(SystemPool(pool))
}

/// Connection options from `url` with `search_path` pinned to `schema`.
fn options(
    url: &SecretString,
    schema: &str,
    application: &str,
) -> Result<PgConnectOptions, DbError> {
    Ok(PgConnectOptions::from_str(url.expose_secret())
        .map_err(|_| DbError::InvalidUrl)?
        .options([("search_path", schema)])
        .application_name(application))
}

/// Begins a transaction of the service acting for itself, as its system role.
pub async fn system_tx(pool: &SystemPool) -> Result<Tx, DbError> {
    Ok(pool.0.begin().await?)
}

/// Begins a transaction and sets the row-level-security context for `caller`
/// with `SET LOCAL` semantics, so it ends with the transaction: a user's
/// `fitflow.user_id`, `fitflow.roles` and `fitflow.supervised`. A service
/// acting for itself is refused here: its work runs on its [`SystemPool`]
/// through [`system_tx`].
///
/// The context and the `BEGIN` travel in one simple-protocol message (see
/// [`begin_statement`]): one round trip where a `BEGIN` and a parameterised
/// `set_config` took two, on every request of every service.
pub async fn tx(pool: &PgPool, caller: &Caller) -> Result<Tx, DbError> {
    Ok(pool.begin_with(begin_statement(caller)?).await?)
}

/// Ends a transaction that only read. Its `ROLLBACK` is queued on the
/// connection and sent with the check the pool makes of every connection
/// handed back (sqlx's release ping): one round trip fewer on the request's
/// path than a `COMMIT`, which would have nothing to commit. Never for a
/// transaction that wrote — what it wrote is rolled back.
pub fn end_read(transaction: Tx) {
    drop(transaction);
}

/// The message that sets `caller`'s context and begins the transaction.
///
/// `set_config(.., true)` comes first and `BEGIN` last: PostgreSQL runs a
/// multi-statement message in one implicit transaction, which the `BEGIN`
/// turns into the explicit one, so the settings last until its `COMMIT` or
/// `ROLLBACK`. Had the `BEGIN` come first, a failing `set_config` would
/// leave the pooled connection inside an aborted transaction; this way it
/// fails with nothing begun. The simple protocol
/// takes no parameters, so the values are written as literals, and only
/// from typed ids and role names (see [`literal`]).
pub fn begin_statement(caller: &Caller) -> Result<String, DbError> {
    if matches!(caller, Caller::Anonymous) {
        return Ok("BEGIN".to_owned());
    }
    let [user_id, roles, supervised] = context(caller)?;
    Ok(format!(
        "SELECT set_config('fitflow.user_id', {}, true), set_config('fitflow.roles', {}, true), \
         set_config('fitflow.supervised', {}, true); BEGIN",
        literal(&user_id)?,
        literal(&roles)?,
        literal(&supervised)?,
    ))
}

/// `caller`'s context: user id, roles and supervised trainers, the lists
/// comma-separated; empty for an anonymous caller. A service acting for
/// itself is refused: the runtime role cannot become the system role, so
/// nothing is sent.
fn context(caller: &Caller) -> Result<[String; 3], DbError> {
    match caller {
        Caller::User(principal) => Ok([
            principal.user_id.to_string(),
            join(principal.roles.iter().map(|role| role.as_str())),
            join(
                principal
                    .supervised_trainer_ids
                    .iter()
                    .map(|id| id.to_string()),
            ),
        ]),
        Caller::Service(_) => Err(DbError::SystemWorkOnRuntimePool),
        Caller::Anonymous => Ok([String::new(), String::new(), String::new()]),
    }
}

/// The condition a [`one_trip`] query puts in its `WHERE` clause. It
/// refers to the context the wrapper sets, which makes the query a lateral
/// subquery of it: PostgreSQL must set the context before it scans a row.
pub const CONTEXT_SET: &str = "fitflow_ctx.user_id IS NOT NULL";

/// `select` (a `SELECT … WHERE … AND` [`CONTEXT_SET`], its own parameters
/// from `$4`) wrapped to run as the caller in one statement: the context
/// (`set_config(.., true)`, bound by [`bind_context`] as `$1`–`$3`) is
/// computed first and `select` runs laterally after it, all in the one
/// implicit transaction of a single statement, so the context lasts exactly
/// as long as the read. One prepared statement and one round trip where
/// `BEGIN`, the context, the query and `COMMIT` took four.
///
/// It fails closed: were the planner ever to scan before setting the
/// context, row-level security would read an unset context (every context
/// is transaction-local, so a pooled connection carries none) and see no
/// row — a not-found, never another user's rows. For reads only.
pub fn one_trip(select: &str) -> String {
    format!(
        "SELECT q.* FROM (SELECT set_config('fitflow.user_id', $1, true) AS user_id, \
         set_config('fitflow.roles', $2, true) AS roles, \
         set_config('fitflow.supervised', $3, true) AS supervised) AS fitflow_ctx \
         CROSS JOIN LATERAL ({select} OFFSET 0) AS q"
    )
}

/// Binds `caller`'s context as `$1`–`$3` of a [`one_trip`] query; a
/// service acting for itself is refused (its work runs on its
/// [`SystemPool`]).
pub fn bind_context<'q, O>(
    query: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    caller: &Caller,
) -> Result<sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>, DbError> {
    let [user_id, roles, supervised] = context(caller)?;
    Ok(query.bind(user_id).bind(roles).bind(supervised))
}

/// `value` as a SQL string literal. Only ids, role names and lists of them
/// are ever written this way, so anything but ASCII letters, digits, `_`,
/// `-` and `,` is refused rather than escaped.
fn literal(value: &str) -> Result<String, DbError> {
    if value
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b','))
    {
        Ok(format!("'{value}'"))
    } else {
        Err(DbError::UnsafeContext)
    }
}

fn join<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    items
        .map(|item| item.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use fitflow_auth::{Principal, Role};
    use uuid::Uuid;

    fn principal() -> Principal {
        Principal {
            user_id: Uuid::nil(),
            session_id: Uuid::nil(),
            roles: vec![Role::Trainer, Role::StudioOwner],
            supervised_trainer_ids: vec![Uuid::max(), Uuid::nil()],
            amr: vec![],
            studio_ids: vec![],
            claims_truncated: false,
            claims_partial: false,
        }
    }

    #[test]
    fn a_user_context_is_set_before_the_begin_that_keeps_it() {
        let statement = begin_statement(&Caller::User(principal())).unwrap();
        assert_eq!(
            statement,
            "SELECT set_config('fitflow.user_id', '00000000-0000-0000-0000-000000000000', true), \
             set_config('fitflow.roles', 'trainer,studio_owner', true), \
             set_config('fitflow.supervised', \
             'ffffffff-ffff-ffff-ffff-ffffffffffff,00000000-0000-0000-0000-000000000000', true); BEGIN"
        );
    }

    #[test]
    fn a_user_without_roles_or_team_sets_empty_lists() {
        let mut principal = principal();
        principal.roles.clear();
        principal.supervised_trainer_ids.clear();
        let statement = begin_statement(&Caller::User(principal)).unwrap();
        assert!(statement.contains("set_config('fitflow.roles', '', true)"));
        assert!(statement.contains("set_config('fitflow.supervised', '', true); BEGIN"));
    }

    #[test]
    fn a_service_acting_for_itself_is_refused_on_the_runtime_pool() {
        assert!(matches!(
            begin_statement(&Caller::Service("identity")),
            Err(DbError::SystemWorkOnRuntimePool)
        ));
    }

    #[test]
    fn an_anonymous_caller_only_begins() {
        assert_eq!(begin_statement(&Caller::Anonymous).unwrap(), "BEGIN");
    }

    #[test]
    fn a_one_trip_query_sets_the_context_before_its_lateral_read() {
        let wrapped = one_trip(&format!(
            "SELECT id FROM users WHERE id = $4 AND {CONTEXT_SET}"
        ));
        assert!(wrapped.starts_with(
            "SELECT q.* FROM (SELECT set_config('fitflow.user_id', $1, true) AS user_id, "
        ));
        assert!(wrapped.ends_with(
            "CROSS JOIN LATERAL (SELECT id FROM users WHERE id = $4 AND \
             fitflow_ctx.user_id IS NOT NULL OFFSET 0) AS q"
        ));
    }

    #[test]
    fn literals_refuse_quotes_and_anything_but_ids() {
        assert_eq!(literal("a-b_c,1").unwrap(), "'a-b_c,1'");
        for hostile in ["x'; DROP TABLE users; --", "a\\b", "a b", "é", "a\0"] {
            assert!(
                matches!(literal(hostile), Err(DbError::UnsafeContext)),
                "{hostile}"
            );
        }
    }
}
