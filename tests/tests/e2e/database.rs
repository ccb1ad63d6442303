//! Each service's database role is confined to its own schema, row-level
//! security is enforced, and migrations are reversible.

use std::time::Duration;

use fitflow_auth::{Caller, Principal, Role};
use fitflow_e2e::schemas;
use secrecy::ExposeSecret as _;
use sqlx::{Connection as _, PgConnection};
use uuid::Uuid;

async fn connect(url: &secrecy::SecretString) -> PgConnection {
    PgConnection::connect(url.expose_secret())
        .await
        .expect("connect")
}

fn permission_denied(result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>) -> bool {
    matches!(result, Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42501"))
}

#[tokio::test]
async fn a_runtime_role_cannot_touch_another_services_schema_or_change_its_own() {
    let db = fitflow_testkit::database(&schemas(&fitflow::registry())).await;
    let mut identity = connect(&db.runtime_url("identity")).await;

    let read_audit = sqlx::query("SELECT * FROM audit.audit_log")
        .execute(&mut identity)
        .await;
    assert!(
        permission_denied(read_audit),
        "identity read the audit schema"
    );
    let write_audit = sqlx::query("DELETE FROM audit.ingested_events")
        .execute(&mut identity)
        .await;
    assert!(
        permission_denied(write_audit),
        "identity wrote the audit schema"
    );

    let create = sqlx::query("CREATE TABLE identity.backdoor (id int)")
        .execute(&mut identity)
        .await;
    assert!(
        permission_denied(create),
        "the runtime role created a table"
    );
    let alter = sqlx::query("ALTER TABLE identity.users DISABLE ROW LEVEL SECURITY")
        .execute(&mut identity)
        .await;
    assert!(
        alter.is_err(),
        "the runtime role altered a table it must not own"
    );
    let public = sqlx::query("CREATE TABLE public.backdoor (id int)")
        .execute(&mut identity)
        .await;
    assert!(
        public.is_err(),
        "the runtime role created a table in public"
    );
}

#[tokio::test]
async fn row_level_security_shows_a_user_only_their_own_account() {
    let db = fitflow_testkit::database(&schemas(&fitflow::registry())).await;
    let admin = db.admin_pool().await;
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    for (id, email) in [(alice, "alice@example.com"), (bob, "bob@example.com")] {
        sqlx::query("INSERT INTO identity.users (id, email, password_hash, display_name_sealed) VALUES ($1, $2, 'x', '\\x00')")
            .bind(id)
            .bind(email)
            .execute(&admin)
            .await
            .unwrap();
    }
    let pool = fitflow_db::connect(&db.runtime_url("identity"), "identity", 2)
        .await
        .unwrap();
    let as_alice = trainer_caller(alice);

    let mut tx = fitflow_db::tx(&pool, &as_alice).await.unwrap();
    let visible: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM users ORDER BY id")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, vec![alice]);
    let updated = sqlx::query("UPDATE users SET email_verified = true WHERE id = $1")
        .bind(bob)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 0, "alice changed bob's row");
    tx.rollback().await.unwrap();

    // The context is transaction-local: the next transaction on the same pool sees nothing.
    let mut tx = fitflow_db::tx(&pool, &Caller::Anonymous).await.unwrap();
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, 0);
}

#[tokio::test]
async fn every_migration_reverts_and_applies_again() {
    let db = fitflow_testkit::database(&schemas(&fitflow::registry())).await;
    let admin_url = db.admin_url();
    for schema in schemas(&fitflow::registry()) {
        fitflow_db::migrate_down(&admin_url, schema.schema, schema.migrator, 0)
            .await
            .unwrap();
        let admin = db.admin_pool().await;
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name <> '_sqlx_migrations'",
        )
        .bind(schema.schema)
        .fetch_one(&admin)
        .await
        .unwrap();
        assert_eq!(tables, 0, "{} keeps tables after reverting", schema.schema);
        fitflow_db::migrate_up(&admin_url, schema.schema, schema.migrator)
            .await
            .unwrap();
    }
}

/// A wrapped data key of `tenant` in identity's `data_keys`, written as the admin.
async fn seed_data_key(admin: &sqlx::PgPool, tenant: Uuid) {
    sqlx::query(
        "INSERT INTO identity.data_keys (tenant_id, purpose, version, wrapped_key) \
         VALUES ($1, 'seal', 1, 'vault:v1:x')",
    )
    .bind(tenant)
    .execute(admin)
    .await
    .expect("seed a key");
}

#[tokio::test]
async fn a_runtime_role_cannot_destroy_data_keys_or_rewrite_the_migration_history() {
    let db = fitflow_testkit::database(&schemas(&fitflow::registry())).await;
    let admin = db.admin_pool().await;
    for tenant in [Uuid::new_v4(), Uuid::new_v4()] {
        seed_data_key(&admin, tenant).await;
    }
    let mut identity = connect(&db.runtime_url("identity")).await;
    for attack in [
        "DELETE FROM identity.data_keys",
        "UPDATE identity.data_keys SET wrapped_key = 'vault:v1:y'",
        "TRUNCATE identity.data_keys",
        "DELETE FROM identity._sqlx_migrations",
        "UPDATE identity._sqlx_migrations SET checksum = ''",
        "INSERT INTO identity._sqlx_migrations VALUES (99999999999999, 'forged', now(), true, '', 0)",
    ] {
        let result = sqlx::query(attack).execute(&mut identity).await;
        assert!(permission_denied(result), "the runtime role ran: {attack}");
    }
    // Logged in as the service's system role, the same attacks still fail:
    // the bypass role sees every row but holds no more privileges.
    let mut system = connect(&db.system_url("identity")).await;
    for attack in [
        "DELETE FROM identity.data_keys",
        "TRUNCATE identity.data_keys",
        "DELETE FROM identity._sqlx_migrations",
    ] {
        let result = sqlx::query(attack).execute(&mut system).await;
        assert!(permission_denied(result), "the system role ran: {attack}");
    }

    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM identity.data_keys")
        .fetch_one(&admin)
        .await
        .expect("count keys");
    assert_eq!(keys, 2, "every key survived");
}

#[tokio::test]
async fn shredding_deletes_one_tenants_keys_through_the_owners_function_and_nothing_else() {
    let db = fitflow_testkit::database(&schemas(&fitflow::registry())).await;
    let admin = db.admin_pool().await;
    let (victim, bystander) = (Uuid::new_v4(), Uuid::new_v4());
    for tenant in [victim, bystander] {
        seed_data_key(&admin, tenant).await;
    }
    let mut identity = connect(&db.runtime_url("identity")).await;
    let deleted: i64 = sqlx::query_scalar("SELECT identity.shred_tenant_keys($1)")
        .bind(victim)
        .fetch_one(&mut identity)
        .await
        .expect("shred one tenant");
    assert_eq!(deleted, 1);
    let left: Vec<Uuid> = sqlx::query_scalar("SELECT tenant_id FROM identity.data_keys")
        .fetch_all(&admin)
        .await
        .expect("list keys");
    assert_eq!(left, [bystander]);
}

#[tokio::test]
async fn the_rls_bypass_needs_the_system_role_not_a_setting() {
    let db = fitflow_testkit::database(&schemas(&fitflow::registry())).await;
    let admin = db.admin_pool().await;
    sqlx::query(
        "INSERT INTO identity.users (id, email, password_hash, display_name_sealed) \
         VALUES ($1, 'someone@example.com', 'x', '\\x00')",
    )
    .bind(Uuid::new_v4())
    .execute(&admin)
    .await
    .expect("seed a user");
    let mut identity = connect(&db.runtime_url("identity")).await;
    // The old bypass was a setting anyone connected could set; it admits nothing now.
    sqlx::query("SELECT set_config('fitflow.service', 'identity', false)")
        .execute(&mut identity)
        .await
        .expect("set the old setting");
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM identity.users")
        .fetch_one(&mut identity)
        .await
        .expect("count users");
    assert_eq!(seen, 0, "a setting bypassed row-level security");

    // No runtime role can take a system role, its own service's included:
    // the system role has its own credential. Roles are cluster-wide and
    // this database was cloned from a template, so provision again first:
    // what is checked is what provisioning leaves, whatever ran before.
    for schema in ["audit", "identity", "clients"] {
        fitflow_db::provision_schema(&db.admin_url(), schema)
            .await
            .expect("provision again");
    }
    for (runtime, system) in [
        ("audit", "fitflow_identity_system"),
        ("identity", "fitflow_identity_system"),
        ("clients", "fitflow_clients_system"),
    ] {
        let mut conn = connect(&db.runtime_url(runtime)).await;
        for attempt in [
            format!("SELECT set_config('role', '{system}', false)"),
            format!("SET ROLE {system}"),
            format!("SET SESSION AUTHORIZATION {system}"),
        ] {
            let result = sqlx::query(&attempt).execute(&mut conn).await;
            assert!(result.is_err(), "{runtime}'s runtime role ran: {attempt}");
        }
        let user: String = sqlx::query_scalar("SELECT current_user::text")
            .fetch_one(&mut conn)
            .await
            .expect("still connected");
        assert_eq!(user, format!("fitflow_{runtime}"));
    }

    // A system pool refuses a URL that logs in as the runtime role.
    let wrong = fitflow_db::connect_system(&db.runtime_url("identity"), "identity", 1).await;
    assert!(
        matches!(wrong, Err(fitflow_db::DbError::WrongRole { .. })),
        "a runtime URL made a system pool"
    );
    // The service's own work is refused on the runtime pool.
    let runtime = fitflow_db::connect(&db.runtime_url("identity"), "identity", 1)
        .await
        .expect("identity's runtime pool");
    assert!(matches!(
        fitflow_db::tx(&runtime, &Caller::Service("identity")).await,
        Err(fitflow_db::DbError::SystemWorkOnRuntimePool)
    ));

    let pool = fitflow_db::connect_system(&db.system_url("identity"), "identity", 1)
        .await
        .expect("identity's system pool");
    let mut tx = fitflow_db::system_tx(&pool)
        .await
        .expect("a service transaction");
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut *tx)
        .await
        .expect("count users");
    assert_eq!(seen, 1, "the service acting for itself sees every row");
}

#[tokio::test]
async fn a_migration_whose_validation_fails_is_rolled_back_and_not_recorded() {
    let folder = tempfile::tempdir().expect("a temp dir");
    std::fs::write(
        folder.path().join("20270101000001_gadgets.up.sql"),
        "CREATE TABLE gadgets (id int);\n\n-- validate:\n-- SELECT to_regclass('gadgets') IS NOT NULL;\n",
    )
    .expect("write");
    std::fs::write(
        folder.path().join("20270101000001_gadgets.down.sql"),
        "DROP TABLE gadgets;\n",
    )
    .expect("write");
    // Its validation query expects a column the migration forgot to add.
    std::fs::write(
        folder.path().join("20270101000002_gadget_names.up.sql"),
        "ALTER TABLE gadgets ADD COLUMN label text;\n\n-- validate:\n\
         -- SELECT EXISTS (SELECT FROM information_schema.columns\n\
         --                WHERE table_name = 'gadgets' AND column_name = 'name');\n",
    )
    .expect("write");
    std::fs::write(
        folder.path().join("20270101000002_gadget_names.down.sql"),
        "ALTER TABLE gadgets DROP COLUMN label;\n",
    )
    .expect("write");
    let migrator = sqlx::migrate::Migrator::new(folder.path())
        .await
        .expect("read the migrations");

    let db = fitflow_testkit::database(&[]).await;
    let admin_url = db.admin_url();
    fitflow_db::provision_schema(&admin_url, "gadgets")
        .await
        .expect("provision");
    let error = fitflow_db::migrate_up(&admin_url, "gadgets", &migrator)
        .await
        .expect_err("the second migration fails its validation");
    assert!(
        matches!(
            error,
            fitflow_db::DbError::ValidationFailed {
                version: 20270101000002,
                ..
            }
        ),
        "{error}"
    );
    let admin = db.admin_pool().await;
    let recorded: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM gadgets._sqlx_migrations ORDER BY version")
            .fetch_all(&admin)
            .await
            .expect("read the history");
    assert!(recorded.contains(&20270101000001));
    assert!(
        !recorded.contains(&20270101000002),
        "the failed migration was recorded"
    );
    let label: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM information_schema.columns \
         WHERE table_schema = 'gadgets' AND table_name = 'gadgets' AND column_name = 'label')",
    )
    .fetch_one(&admin)
    .await
    .expect("look for the column");
    assert!(!label, "the failed migration's change was kept");
}

/// Writes a migration's up and down scripts into `folder`.
fn write_migration(folder: &std::path::Path, name: &str, up: &str, down: &str) {
    std::fs::write(folder.join(format!("{name}.up.sql")), up).expect("write the up script");
    std::fs::write(folder.join(format!("{name}.down.sql")), down).expect("write the down script");
}

/// Whether `index` of schema `gadgets` exists, and whether it is valid.
async fn index_state(admin: &sqlx::PgPool, index: &str) -> Option<bool> {
    sqlx::query_scalar(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('gadgets.' || $1)",
    )
    .bind(index)
    .fetch_optional(admin)
    .await
    .expect("read the index")
}

/// The recorded versions of the gadgets' own migrations (not the platform's).
async fn recorded_versions(admin: &sqlx::PgPool) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT version FROM gadgets._sqlx_migrations WHERE version >= 1000 ORDER BY version",
    )
    .fetch_all(admin)
    .await
    .expect("read the history")
}

#[tokio::test]
async fn a_concurrent_index_build_left_invalid_is_refused_by_its_validation_and_redone_by_a_migration_that_drops_it_first()
 {
    const TABLE: &str = "CREATE TABLE gadgets (id int PRIMARY KEY, code text NOT NULL);\n\
         INSERT INTO gadgets VALUES (1, 'a'), (2, 'a'), (3, 'b');\n\n\
         -- validate:\n-- SELECT to_regclass('gadgets') IS NOT NULL;\n";
    const VALID_INDEX: &str = "-- validate:\n\
         -- SELECT coalesce((SELECT indisvalid AND indisready FROM pg_index\n\
         --                  WHERE indexrelid = to_regclass('gadgets_code')), false);\n";
    const DOWN: &str = "-- no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS gadgets_code;\n";
    let folder = tempfile::tempdir().expect("a temp dir");
    write_migration(
        folder.path(),
        "20270101000001_gadgets",
        TABLE,
        "DROP TABLE gadgets;\n",
    );
    // The trap: IF NOT EXISTS keeps an INVALID index left by an earlier run.
    write_migration(
        folder.path(),
        "20270101000002_gadget_codes",
        &format!(
            "-- no-transaction\n\
             CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS gadgets_code ON gadgets (code);\n\n\
             {VALID_INDEX}"
        ),
        DOWN,
    );
    let db = fitflow_testkit::database(&[]).await;
    let admin_url = db.admin_url();
    let admin = db.admin_pool().await;
    fitflow_db::provision_schema(&admin_url, "gadgets")
        .await
        .expect("provision");
    let migrator = sqlx::migrate::Migrator::new(folder.path())
        .await
        .expect("read the migrations");

    // The build fails on the duplicate code and, outside a transaction,
    // leaves its INVALID index behind, as an interrupted build does.
    let failed = fitflow_db::migrate_up(&admin_url, "gadgets", &migrator).await;
    assert!(
        matches!(&failed, Err(fitflow_db::DbError::Sqlx(_))),
        "{failed:?}"
    );
    assert_eq!(index_state(&admin, "gadgets_code").await, Some(false));
    assert_eq!(recorded_versions(&admin).await, [20270101000001]);

    // With the duplicate gone, IF NOT EXISTS skips the build: the
    // validation sees the INVALID index and refuses to record it.
    sqlx::query("DELETE FROM gadgets.gadgets WHERE id = 2")
        .execute(&admin)
        .await
        .expect("remove the duplicate");
    let refused = fitflow_db::migrate_up(&admin_url, "gadgets", &migrator).await;
    assert!(
        matches!(
            refused,
            Err(fitflow_db::DbError::ValidationFailed {
                version: 20270101000002,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(recorded_versions(&admin).await, [20270101000001]);

    // Written as the README says — drop what an earlier run left, then
    // build — the migration redoes the index and is recorded.
    write_migration(
        folder.path(),
        "20270101000002_gadget_codes",
        &format!(
            "-- no-transaction\n\
             DROP INDEX CONCURRENTLY IF EXISTS gadgets_code;\n\
             CREATE UNIQUE INDEX CONCURRENTLY gadgets_code ON gadgets (code);\n\n\
             {VALID_INDEX}"
        ),
        DOWN,
    );
    let migrator = sqlx::migrate::Migrator::new(folder.path())
        .await
        .expect("read the migrations again");
    fitflow_db::migrate_up(&admin_url, "gadgets", &migrator)
        .await
        .expect("the redone build is valid");
    assert_eq!(index_state(&admin, "gadgets_code").await, Some(true));
    assert_eq!(
        recorded_versions(&admin).await,
        [20270101000001, 20270101000002]
    );

    // Its down script runs outside a transaction too.
    fitflow_db::migrate_down(&admin_url, "gadgets", &migrator, 20270101000001)
        .await
        .expect("revert the index");
    assert_eq!(index_state(&admin, "gadgets_code").await, None);
    assert_eq!(recorded_versions(&admin).await, [20270101000001]);
}

#[tokio::test]
async fn a_migration_without_a_down_script_or_validation_query_is_refused_before_anything_runs() {
    let folder = tempfile::tempdir().expect("a temp dir");
    std::fs::write(
        folder.path().join("20270101000001_loose.up.sql"),
        "CREATE TABLE loose (id int);\n",
    )
    .expect("write");
    std::fs::write(
        folder.path().join("20270101000001_loose.down.sql"),
        "DROP TABLE loose;\n",
    )
    .expect("write");
    let migrator = sqlx::migrate::Migrator::new(folder.path())
        .await
        .expect("read the migrations");
    let error = fitflow_db::plan(&migrator).expect_err("no validation query");
    assert!(error.to_string().contains("validate"), "{error}");
}

#[tokio::test]
async fn an_ended_read_hands_back_a_connection_with_nothing_of_its_context_or_writes() {
    let db = fitflow_testkit::database(&schemas(&fitflow::registry())).await;
    let pool = fitflow_db::connect(&db.runtime_url("identity"), "identity", 1)
        .await
        .unwrap();
    let alice = Caller::User(Principal {
        user_id: Uuid::now_v7(),
        session_id: Uuid::now_v7(),
        roles: vec![Role::Trainer],
        supervised_trainer_ids: vec![Uuid::now_v7()],
        amr: vec![],
        studio_ids: Vec::new(),
        claims_truncated: false,
        claims_partial: false,
    });
    for _ in 0..3 {
        let mut tx = fitflow_db::tx(&pool, &alice).await.unwrap();
        let seen: String = sqlx::query_scalar("SELECT current_setting('fitflow.roles')")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(seen, "trainer");
        fitflow_db::end_read(tx);
    }
    // A write inside an ended read does not survive it.
    let system = fitflow_db::connect_system(&db.system_url("identity"), "identity", 1)
        .await
        .unwrap();
    let mut tx = fitflow_db::system_tx(&system).await.unwrap();
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, display_name_sealed) \
         VALUES ($1, 'ended@example.com', 'x', '\\x00')",
    )
    .bind(Uuid::now_v7())
    .execute(&mut *tx)
    .await
    .unwrap();
    fitflow_db::end_read(tx);

    // The one pooled connection comes back outside any transaction, with
    // no user context, and the insert rolled back.
    let mut tx = fitflow_db::tx(&pool, &Caller::Anonymous).await.unwrap();
    let (user, role, user_id): (String, String, Option<String>) = sqlx::query_as(
        "SELECT current_user::text, current_setting('role'), \
         nullif(current_setting('fitflow.user_id', true), '')",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!((user.as_str(), role.as_str()), ("fitflow_identity", "none"));
    assert_eq!(user_id, None);
    tx.commit().await.unwrap();
    let mut tx = fitflow_db::system_tx(&system).await.unwrap();
    let kept: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE email = 'ended@example.com'")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(kept, 0);
}

#[tokio::test]
async fn a_services_own_work_on_the_runtime_pool_sends_nothing_and_the_connection_stays_usable() {
    let db = fitflow_testkit::database(&schemas(&fitflow::registry())).await;
    let pool = fitflow_db::connect(&db.runtime_url("identity"), "identity", 1)
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(
            fitflow_db::tx(&pool, &Caller::Service("identity"))
                .await
                .is_err()
        );
        let mut tx = fitflow_db::tx(&pool, &Caller::Anonymous).await.unwrap();
        let (user, role): (String, String) =
            sqlx::query_as("SELECT current_user::text, current_setting('role')")
                .fetch_one(&mut *tx)
                .await
                .expect("the connection is not left in an aborted transaction");
        assert_eq!((user.as_str(), role.as_str()), ("fitflow_identity", "none"));
        tx.commit().await.unwrap();
    }
}

/// Sets the row-level-security user for the rest of `conn`'s session.
async fn act_as(conn: &mut PgConnection, user: Uuid) {
    sqlx::query("SELECT set_config('fitflow.user_id', $1, false), set_config('fitflow.supervised', '', false)")
        .bind(user.to_string())
        .execute(conn)
        .await
        .expect("set the user");
}

#[tokio::test]
async fn an_admin_grantee_manages_that_clients_shares_under_row_level_security_and_nothing_more() {
    let db = fitflow_testkit::database(&schemas(&fitflow::registry())).await;
    let admin = db.admin_pool().await;
    let [owner, administrator, reader, newcomer, client, other_client] =
        std::array::from_fn(|_| Uuid::new_v4());
    for id in [client, other_client] {
        sqlx::query(
            "INSERT INTO clients.clients (id, trainer_id, first_name, last_name) \
             VALUES ($1, $2, '\\x00', '\\x00')",
        )
        .bind(id)
        .bind(owner)
        .execute(&admin)
        .await
        .expect("seed a client");
    }
    for (id, grantee, level) in [
        (client, administrator, "admin"),
        (client, reader, "read"),
        (other_client, reader, "read"),
    ] {
        sqlx::query(
            "INSERT INTO clients.client_permissions \
             (client_id, trainer_id, owner_id, permission_level, granted_by) \
             VALUES ($1, $2, $3, $4, $3)",
        )
        .bind(id)
        .bind(grantee)
        .bind(owner)
        .bind(level)
        .execute(&admin)
        .await
        .expect("seed a share");
    }
    let grant = "INSERT INTO clients.client_permissions \
                 (client_id, trainer_id, owner_id, permission_level, granted_by) \
                 VALUES ($1, $2, $3, 'read', $4)";
    let count = "SELECT count(*) FROM clients.client_permissions WHERE client_id = $1";
    let revoke = "DELETE FROM clients.client_permissions WHERE client_id = $1 AND trainer_id = $2";
    let mut conn = connect(&db.runtime_url("clients")).await;

    // The ADMIN grantee, on the runtime role: grants, sees and revokes the
    // client's shares, as the owner would.
    act_as(&mut conn, administrator).await;
    sqlx::query(grant)
        .bind(client)
        .bind(newcomer)
        .bind(owner)
        .bind(administrator)
        .execute(&mut conn)
        .await
        .expect("an ADMIN grantee grants a share");
    let seen: i64 = sqlx::query_scalar(count)
        .bind(client)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(seen, 3, "administrator, reader, newcomer");
    let revoked = sqlx::query(revoke)
        .bind(client)
        .bind(reader)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(revoked.rows_affected(), 1);
    // ...and nothing of a client they do not administer.
    let foreign = sqlx::query(grant)
        .bind(other_client)
        .bind(newcomer)
        .bind(owner)
        .bind(administrator)
        .execute(&mut conn)
        .await;
    assert!(permission_denied(foreign), "granted on another client");
    let seen: i64 = sqlx::query_scalar(count)
        .bind(other_client)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(seen, 0, "saw another client's shares");
    let untouched = sqlx::query(revoke)
        .bind(other_client)
        .bind(reader)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(untouched.rows_affected(), 0);

    // A READ grantee grants nothing, sees only their own share and revokes
    // nobody else's.
    act_as(&mut conn, reader).await;
    let refused = sqlx::query(grant)
        .bind(other_client)
        .bind(newcomer)
        .bind(owner)
        .bind(reader)
        .execute(&mut conn)
        .await;
    assert!(permission_denied(refused), "a READ grantee granted a share");
    let seen: i64 = sqlx::query_scalar(count)
        .bind(other_client)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(seen, 1, "their own share only");
    let untouched = sqlx::query(revoke)
        .bind(client)
        .bind(newcomer)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(untouched.rows_affected(), 0);

    let shares: i64 = sqlx::query_scalar("SELECT count(*) FROM clients.client_permissions")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(
        shares, 3,
        "administrator and newcomer on one client, reader on the other"
    );
}

#[tokio::test]
async fn a_one_trip_read_sees_its_context_its_own_rows_only_and_leaves_nothing_behind() {
    let db = fitflow_testkit::database(&schemas(&fitflow::registry())).await;
    let pool = fitflow_db::connect(&db.runtime_url("identity"), "identity", 1)
        .await
        .unwrap();
    let alice_id = Uuid::now_v7();
    let bob_id = Uuid::now_v7();
    let system = fitflow_db::connect_system(&db.system_url("identity"), "identity", 1)
        .await
        .unwrap();
    let mut tx = fitflow_db::system_tx(&system).await.unwrap();
    for (id, email) in [(alice_id, "alice@example.com"), (bob_id, "bob@example.com")] {
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, display_name_sealed) \
             VALUES ($1, $2, 'x', '\\x00')",
        )
        .bind(id)
        .bind(email)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let alice = trainer_caller(alice_id);
    let context_sql = fitflow_db::one_trip(&format!(
        "SELECT current_setting('fitflow.roles') AS roles WHERE {}",
        fitflow_db::CONTEXT_SET
    ));
    for _ in 0..3 {
        let (roles,): (String,) = fitflow_db::bind_context(sqlx::query_as(&context_sql), &alice)
            .unwrap()
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(roles, "trainer");
    }
    // Row-level security reads the context the statement set: Alice's own
    // row, never Bob's.
    let by_id = fitflow_db::one_trip(&format!(
        "SELECT email FROM users WHERE id = $4 AND {}",
        fitflow_db::CONTEXT_SET
    ));
    let read = |id: Uuid| {
        let query = fitflow_db::bind_context(sqlx::query_as::<_, (String,)>(&by_id), &alice)
            .unwrap()
            .bind(id);
        query.fetch_optional(&pool)
    };
    assert_eq!(
        read(alice_id).await.unwrap(),
        Some(("alice@example.com".to_owned(),))
    );
    assert_eq!(read(bob_id).await.unwrap(), None);
    // Without a user, nothing.
    let anonymous =
        fitflow_db::bind_context(sqlx::query_as::<_, (String,)>(&by_id), &Caller::Anonymous)
            .unwrap()
            .bind(alice_id)
            .fetch_optional(&pool)
            .await
            .unwrap();
    assert_eq!(anonymous, None);
    // A service acting for itself sends nothing on the runtime pool.
    assert!(
        fitflow_db::bind_context(
            sqlx::query_as::<_, (String,)>(&by_id),
            &Caller::Service("identity")
        )
        .is_err()
    );
    // A failing read leaves nothing open either.
    let failing = fitflow_db::one_trip(&format!(
        "SELECT 1/0 AS x WHERE {}",
        fitflow_db::CONTEXT_SET
    ));
    assert!(
        fitflow_db::bind_context(sqlx::query_as::<_, (i32,)>(&failing), &alice)
            .unwrap()
            .fetch_one(&pool)
            .await
            .is_err()
    );
    // The one pooled connection: no transaction open, no user context.
    let mut tx = fitflow_db::tx(&pool, &Caller::Anonymous).await.unwrap();
    let user_id: Option<String> =
        sqlx::query_scalar("SELECT nullif(current_setting('fitflow.user_id', true), '')")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(user_id, None);
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn an_express_connection_is_lent_again_clean_and_one_cut_short_goes_back_to_the_pool() {
    let db = fitflow_testkit::database(&schemas(&fitflow::registry())).await;
    let pool = fitflow_db::connect(&db.runtime_url("identity"), "identity", 1)
        .await
        .unwrap();
    let express = fitflow_db::Express::new(pool.clone(), 1);
    let alice = trainer_caller(Uuid::now_v7());
    let context_sql = fitflow_db::one_trip(&format!(
        "SELECT current_setting('fitflow.user_id') AS user_id, pg_backend_pid() AS pid WHERE {}",
        fitflow_db::CONTEXT_SET
    ));
    let mut lent = express.lend().await.unwrap();
    let (user_id, first_pid): (String, i32) =
        fitflow_db::bind_context(sqlx::query_as(&context_sql), &alice)
            .unwrap()
            .fetch_one(&mut *lent)
            .await
            .unwrap();
    assert_eq!(user_id, alice.user_id().unwrap().to_string());
    lent.completed();
    // The same connection comes back, and the context did not outlive
    // its statement.
    let mut lent = express.lend().await.unwrap();
    let (user_id, pid): (Option<String>, i32) = sqlx::query_as(
        "SELECT nullif(current_setting('fitflow.user_id', true), ''), pg_backend_pid()",
    )
    .fetch_one(&mut *lent)
    .await
    .unwrap();
    assert_eq!((user_id, pid), (None, first_pid));
    // Cut short mid-statement: not kept, handed to the pool, whose release
    // test waits the statement out; the next lend takes it from the pool
    // and reads its own answer, not the abandoned one.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        sqlx::query_scalar::<_, i32>("SELECT 7 FROM pg_sleep(0.5)").fetch_one(&mut *lent),
    )
    .await;
    assert!(abandoned.is_err(), "cut short");
    drop(lent);
    let mut lent = express.lend().await.unwrap();
    let answer: i32 = sqlx::query_scalar("SELECT 42")
        .fetch_one(&mut *lent)
        .await
        .unwrap();
    assert_eq!(answer, 42);
    lent.completed();
    // Every lend holds its permit: with one lent, a second waits.
    let _held = express.lend().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), express.lend())
            .await
            .is_err()
    );
    // A service's express lends half its pool: with every lendable one
    // lent, a transaction still gets a connection.
    let pool = fitflow_db::connect(&db.runtime_url("identity"), "identity", 4)
        .await
        .unwrap();
    let express = fitflow_db::Express::half_of(pool.clone());
    let _lent = [express.lend().await.unwrap(), express.lend().await.unwrap()];
    assert!(
        tokio::time::timeout(Duration::from_millis(200), express.lend())
            .await
            .is_err()
    );
    let mut tx = fitflow_db::tx(&pool, &alice).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

/// A trainer with no team, as their token would make them.
fn trainer_caller(user_id: Uuid) -> Caller {
    Caller::User(Principal {
        user_id,
        session_id: Uuid::now_v7(),
        roles: vec![Role::Trainer],
        supervised_trainer_ids: vec![],
        amr: vec![],
        studio_ids: Vec::new(),
        claims_truncated: false,
        claims_partial: false,
    })
}
