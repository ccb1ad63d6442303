//! The testkit's own checks: throwaway databases and certificates.

use fitflow_testkit::{MigratedSchema, TestDatabase};
use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::parse_x509_pem;

static MIGRATOR: Migrator = sqlx::migrate!("tests/migrations");
const SCHEMA: MigratedSchema = MigratedSchema {
    schema: "testkit",
    migrator: &MIGRATOR,
};

async fn insert_widget_as_runtime_role(database: &TestDatabase, name: &str) -> i64 {
    let pool = fitflow_db::connect(&database.runtime_url("testkit"), "testkit", 2)
        .await
        .expect("runtime role connects");
    sqlx::query("INSERT INTO widgets (id, name) VALUES ($1, $2)")
        .bind(uuid::Uuid::new_v4())
        .bind(name)
        .execute(&pool)
        .await
        .expect("runtime role writes rows");
    sqlx::query_scalar("SELECT count(*) FROM widgets")
        .fetch_one(&pool)
        .await
        .expect("runtime role reads rows")
}

#[tokio::test]
async fn two_databases_are_distinct_and_both_carry_the_migrated_schema() {
    fitflow_testkit::init_tracing();
    let first = fitflow_testkit::database(&[SCHEMA]).await;
    let second = fitflow_testkit::database(&[SCHEMA]).await;
    assert_ne!(first.name, second.name);
    let prefix = format!("{}_", fitflow_testkit::test_database_prefix());
    assert!(
        first.name.starts_with(&prefix),
        "{} has prefix {prefix}",
        first.name
    );

    assert_eq!(insert_widget_as_runtime_role(&first, "one").await, 1);
    assert_eq!(insert_widget_as_runtime_role(&second, "two").await, 1);

    let admin = first.admin_pool().await;
    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&admin)
        .await
        .expect("query");
    assert_eq!(current, first.name);
    let migrations: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM testkit._sqlx_migrations WHERE version = 20261128000001",
    )
    .fetch_one(&admin)
    .await
    .expect("the migrations table lives in the schema");
    assert_eq!(
        migrations, 1,
        "the schema's own migration is recorded there"
    );
    assert!(
        first
            .runtime_url("testkit")
            .expose_secret()
            .contains(&format!("fitflow_testkit@127.0.0.1:5432/{}", first.name))
            || std::env::var_os("FITFLOW_TEST_DATABASE_URL").is_some()
    );
}

#[tokio::test]
async fn a_dropped_test_database_is_removed() {
    let database = fitflow_testkit::database(&[SCHEMA]).await;
    let name = database.name.clone();
    drop(database);
    let admin = sqlx::PgPool::connect(fitflow_testkit::admin_url().expose_secret())
        .await
        .expect("admin connects");
    let remaining: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&admin)
        .await
        .expect("query");
    assert_eq!(remaining, 0);
}

#[test]
fn certificates_parse_and_carry_the_spiffe_uri_and_host_names() {
    let certs = fitflow_testkit::certs(&["identity", "gateway"]);
    let ca_pem = std::fs::read(certs.dir.join("ca.pem")).expect("ca.pem");
    let (_, ca) = parse_x509_pem(&ca_pem).expect("ca pem");
    let ca = ca.parse_x509().expect("ca x509");
    assert!(ca.is_ca());

    for name in ["identity", "gateway"] {
        assert!(certs.dir.join(format!("{name}-key.pem")).is_file());
        let pem = std::fs::read(certs.dir.join(format!("{name}.pem"))).expect("leaf pem");
        let (_, pem) = parse_x509_pem(&pem).expect("leaf pem parses");
        let cert = pem.parse_x509().expect("leaf x509");
        assert_eq!(cert.issuer(), ca.subject());
        let sans = cert
            .subject_alternative_name()
            .expect("san extension parses")
            .expect("has a san extension");
        let names = &sans.value.general_names;
        let spiffe = format!("spiffe://fitflow/{name}");
        assert!(
            names
                .iter()
                .any(|n| matches!(n, GeneralName::URI(uri) if *uri == spiffe))
        );
        assert!(
            names
                .iter()
                .any(|n| matches!(n, GeneralName::DNSName(dns) if *dns == name))
        );
        assert!(
            names
                .iter()
                .any(|n| matches!(n, GeneralName::DNSName(dns) if *dns == "localhost"))
        );
        assert!(
            names
                .iter()
                .any(|n| matches!(n, GeneralName::IPAddress(ip) if *ip == [127, 0, 0, 1]))
        );
        let usage = cert
            .extended_key_usage()
            .expect("eku parses")
            .expect("has eku");
        assert!(usage.value.server_auth && usage.value.client_auth);
    }
}

#[test]
fn foreign_certificates_come_from_a_different_ca() {
    let ours = fitflow_testkit::certs(&["identity"]);
    let theirs = fitflow_testkit::foreign_certs(&["identity"]);
    let ours_ca = std::fs::read(ours.dir.join("ca.pem")).expect("ours");
    let theirs_ca = std::fs::read(theirs.dir.join("ca.pem")).expect("theirs");
    assert_ne!(ours_ca, theirs_ca);
    let leaf = std::fs::read(theirs.dir.join("identity.pem")).expect("leaf");
    let (_, leaf) = parse_x509_pem(&leaf).expect("leaf pem");
    let (_, ours_ca) = parse_x509_pem(&ours_ca).expect("ca pem");
    assert_ne!(
        leaf.parse_x509().expect("leaf").issuer().to_string(),
        ours_ca.parse_x509().expect("ca").subject().to_string()
    );
}

#[test]
fn the_certificate_directory_is_removed_with_its_handle() {
    let certs = fitflow_testkit::certs(&["identity"]);
    let dir = certs.dir.clone();
    assert!(dir.join("ca.pem").is_file());
    drop(certs);
    assert!(!dir.exists());
}

#[tokio::test]
async fn openbao_is_ready_with_transit_enabled() {
    let vault = fitflow_testkit::vault().await;
    vault
        .ensure_transit_key("testkit-ready", fitflow_crypto::TransitKeyKind::Aes256Gcm96)
        .await
        .expect("transit is mounted");
    let same = fitflow_testkit::openbao().await;
    assert!(same.addr.starts_with("http://127.0.0.1:"));
}
