//! Connections kept between single-statement requests, so that handing one
//! back costs nothing.
//!
//! sqlx's pool tests every connection handed back to it with a `Sync` and
//! waits for PostgreSQL's answer: a second round trip for each one-statement
//! read ([`crate::one_trip`]), paid in both processes' CPU (a `perf` profile
//! of `GetCurrentUser` at 16 in flight: about two sends per request, half
//! of them that test). An [`Express`] keeps a few connections checked out of
//! the pool and lends them without the test. A connection is only taken
//! back when its statement completed; one whose request failed or was
//! cancelled mid-statement goes back to the pool, whose test then cleans it
//! up or closes it, exactly as before.
//!
//! Only for statements that leave nothing behind on the connection: one
//! implicit transaction each, with a transaction-local context.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::{ACQUIRE_TIMEOUT, DbError};

/// Up to `size` connections of `pool`, lent without sqlx's release test.
#[derive(Debug)]
pub struct Express {
    pool: PgPool,
    idle: Mutex<Vec<PoolConnection<Postgres>>>,
    lendable: Semaphore,
}

impl Express {
    /// Lends at most `size` connections of `pool` at once (each taken from
    /// the pool when first needed, and counted against its size).
    pub fn new(pool: PgPool, size: usize) -> Self {
        Self {
            pool,
            idle: Mutex::new(Vec::with_capacity(size)),
            lendable: Semaphore::new(size),
        }
    }

    /// Lends at most half of `pool`'s connections (at least one): the other
    /// half stays for transactions, so a flood of reads never starves a
    /// write of a connection.
    pub fn half_of(pool: PgPool) -> Self {
        let size = (pool.options().get_max_connections() / 2).max(1);
        Self::new(pool, usize::try_from(size).unwrap_or(1))
    }

    /// A connection for one statement; waits while all are lent, as long
    /// as the pool would ([`ACQUIRE_TIMEOUT`]).
    pub async fn lend(&self) -> Result<Lent<'_>, DbError> {
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, self.lendable.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let kept = self.idle().pop();
        let connection = match kept {
            Some(connection) => connection,
            None => self.pool.acquire().await?,
        };
        Ok(Lent {
            express: self,
            connection: Some(connection),
            completed: false,
            _permit: permit,
        })
    }

    /// Runs `query` (one statement that leaves nothing behind on its
    /// connection) on a lent connection: at most one row.
    pub async fn fetch_optional<'q, O>(
        &self,
        query: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    ) -> Result<Option<O>, DbError>
    where
        O: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let mut connection = self.lend().await?;
        let row = query.fetch_optional(&mut *connection).await?;
        connection.completed();
        Ok(row)
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<PoolConnection<Postgres>>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A lent connection. Call [`Lent::completed`] once its statement has
/// returned; dropped without it, it goes back to the pool to be tested.
#[derive(Debug)]
pub struct Lent<'a> {
    express: &'a Express,
    connection: Option<PoolConnection<Postgres>>,
    completed: bool,
    _permit: SemaphorePermit<'a>,
}

impl Lent<'_> {
    /// The statement returned (rows or a database error answered in full):
    /// the connection is ready for the next one.
    pub fn completed(mut self) {
        self.completed = true;
    }
}

impl Deref for Lent<'_> {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.connection.as_deref().expect("held until dropped")
    }
}

impl DerefMut for Lent<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.connection.as_deref_mut().expect("held until dropped")
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take()
            && self.completed
        {
            self.express.idle().push(connection);
        }
        // Otherwise `connection` drops here: back to the pool, whose test
        // flushes what was left half-done or closes a broken connection.
    }
}
