//! Database errors, classified once.

use fitflow_error::ApiError;

/// A failure talking to PostgreSQL. Its text may hold database messages and
/// is only ever logged, never returned to a caller.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The connection URL does not parse.
    #[error("the database URL is invalid")]
    InvalidUrl,
    /// A migration failed or the recorded history does not match.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A migration is malformed (no down script, no validation query, a
    /// reserved version) or was changed after it was applied.
    #[error("migration {version}: {reason}")]
    InvalidMigration {
        /// The migration's version.
        version: i64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A migration's validation query did not return true; it was not
    /// recorded, and rolled back (or, for one that runs outside a
    /// transaction, left for its next run to redo).
    #[error("migration {version} ({description}) failed its validation query")]
    ValidationFailed {
        /// The migration's version.
        version: i64,
        /// Its description.
        description: String,
    },
    /// A row-level-security context value held a character that is never
    /// in an id or a role name (a bug, never caller input).
    #[error("a row-level-security context value is not an id or a role name")]
    UnsafeContext,
    /// A service's own work was begun on the runtime pool (a bug): it needs
    /// the system pool ([`crate::system_tx`]).
    #[error("a service's own work needs its system pool, not the runtime pool")]
    SystemWorkOnRuntimePool,
    /// A pool logged in as another role than the one it is for.
    #[error("the database URL logs in as {found}, not {expected}")]
    WrongRole {
        /// The role the pool is for.
        expected: String,
        /// The role the URL logged in as.
        found: String,
    },
    /// Any other database error.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
}

impl DbError {
    /// Whether PostgreSQL could not be reached (so the caller may retry).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            DbError::Sqlx(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed)
        )
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(%error, "database unavailable");
            ApiError::unavailable("DATABASE_UNAVAILABLE", "the database is unavailable")
        } else {
            ApiError::internal(&error)
        }
    }
}

/// Whether `error` is a unique violation of the constraint named `constraint`.
pub fn is_unique_violation(error: &sqlx::Error, constraint: &str) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() && db.constraint() == Some(constraint)
        }
        _ => false,
    }
}
