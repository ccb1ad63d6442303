//! A throwaway database whose schema `apitest` holds the platform tables and
//! a `widgets` table standing in for a service's resources.

use fitflow_testkit::{MigratedSchema, TestDatabase};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

/// The test schema.
pub(crate) const SCHEMA: &str = "apitest";

/// No migrations of its own: `fitflow_db::migrate_up` applies every platform
/// migration first, exactly as services get them.
pub(crate) static PLATFORM: Migrator = Migrator::DEFAULT;

pub(crate) struct Harness {
    pub(crate) database: TestDatabase,
    /// The schema's runtime role, as a service connects.
    pub(crate) pool: PgPool,
    /// A superuser, for arranging and inspecting rows.
    pub(crate) admin: PgPool,
}

pub(crate) async fn harness() -> Harness {
    fitflow_testkit::init_tracing();
    let database = fitflow_testkit::database(&[MigratedSchema {
        schema: SCHEMA,
        migrator: &PLATFORM,
    }])
    .await;
    let admin = database.admin_pool().await;
    for statement in [
        "CREATE TABLE apitest.widgets (id uuid PRIMARY KEY, name text NOT NULL)",
        "GRANT SELECT, INSERT ON apitest.widgets TO fitflow_apitest",
    ] {
        sqlx::query(statement)
            .execute(&admin)
            .await
            .expect("create the widgets table");
    }
    // 20 concurrent transactions each hold a connection.
    let pool = fitflow_db::connect(&database.runtime_url(SCHEMA), SCHEMA, 24)
        .await
        .expect("connect as the runtime role");
    Harness {
        database,
        pool,
        admin,
    }
}

impl Harness {
    /// Rows in `apitest.<table>`.
    pub(crate) async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM apitest.{table}"))
            .fetch_one(&self.admin)
            .await
            .expect("count rows")
    }
}
