//! The binary refuses to start on missing or malformed configuration and
//! names the variable, never its value.

use std::process::Command;

fn serve_identity(env: &[(&str, &str)]) -> (bool, String) {
    let certs = fitflow_testkit::certs(&["identity"]);
    let mut command = Command::new(env!("CARGO_BIN_EXE_fitflow"));
    command.args(["serve", "identity"]).env_clear();
    command.env("FITFLOW_TLS_DIR", &certs.dir);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run fitflow");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const VALID: &[(&str, &str)] = &[
    // Plaintext OpenBao and PostgreSQL below are only valid with the dev flag.
    ("FITFLOW_DEV_INSECURE", "1"),
    ("FITFLOW_VAULT_ADDR", "http://127.0.0.1:1"),
    ("FITFLOW_VAULT_TOKEN", "s.not-a-real-token"),
    (
        "FITFLOW_IDENTITY_DATABASE_URL",
        "postgres://fitflow_identity@127.0.0.1:1/fitflow",
    ),
    (
        "FITFLOW_IDENTITY_SYSTEM_DATABASE_URL",
        "postgres://fitflow_identity_system@127.0.0.1:1/fitflow",
    ),
];

fn without(name: &str) -> Vec<(&'static str, &'static str)> {
    VALID
        .iter()
        .copied()
        .filter(|(var, _)| *var != name)
        .collect()
}

#[test]
fn a_missing_variable_stops_the_process_and_is_named() {
    for var in [
        "FITFLOW_VAULT_ADDR",
        "FITFLOW_VAULT_TOKEN",
        "FITFLOW_IDENTITY_DATABASE_URL",
        "FITFLOW_IDENTITY_SYSTEM_DATABASE_URL",
    ] {
        let (ok, stderr) = serve_identity(&without(var));
        assert!(!ok, "fitflow started without {var}");
        assert!(stderr.contains(var), "stderr does not name {var}: {stderr}");
    }
}

#[test]
fn a_malformed_variable_stops_the_process_and_is_named_without_its_value() {
    let cases = [
        ("FITFLOW_IDENTITY_LISTEN", "not-an-address"),
        (
            "FITFLOW_IDENTITY_DATABASE_URL",
            "mysql://secret-password@db",
        ),
        (
            "FITFLOW_IDENTITY_SYSTEM_DATABASE_URL",
            "mysql://secret-password@db",
        ),
        ("FITFLOW_VAULT_ADDR", "bao.internal:8200"),
        ("FITFLOW_AUDIT_ENDPOINT", "http://audit:50057"),
        ("FITFLOW_SMTP_URL", "http://secret-password@mail"),
    ];
    for (var, value) in cases {
        let mut env = without(var);
        env.push((var, value));
        let (ok, stderr) = serve_identity(&env);
        assert!(!ok, "fitflow started with a malformed {var}");
        assert!(stderr.contains(var), "stderr does not name {var}: {stderr}");
        assert!(
            !stderr.contains("secret-password"),
            "stderr leaks the value: {stderr}"
        );
    }
}

#[test]
fn a_tls_directory_without_the_service_certificate_is_refused() {
    let certs = fitflow_testkit::certs(&["billing"]);
    let output = Command::new(env!("CARGO_BIN_EXE_fitflow"))
        .args(["serve", "identity"])
        .env_clear()
        .env("FITFLOW_TLS_DIR", &certs.dir)
        .envs(VALID.iter().copied())
        .output()
        .expect("run fitflow");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("FITFLOW_TLS_DIR"));
}

/// Settings that pass parsing without the dev flag: https OpenBao and a
/// database URL with `sslmode=verify-full` (both unreachable, so the process
/// stops later, at connecting).
const PRODUCTION: &[(&str, &str)] = &[
    ("FITFLOW_VAULT_ADDR", "https://127.0.0.1:1"),
    ("FITFLOW_VAULT_TOKEN", "s.not-a-real-token"),
    (
        "FITFLOW_IDENTITY_DATABASE_URL",
        "postgres://fitflow_identity:secret-password@127.0.0.1:1/fitflow?sslmode=verify-full",
    ),
    (
        "FITFLOW_IDENTITY_SYSTEM_DATABASE_URL",
        "postgres://fitflow_identity_system:secret-password@127.0.0.1:1/fitflow?sslmode=verify-full",
    ),
];

fn production_with(var: &'static str, value: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<_> = PRODUCTION
        .iter()
        .copied()
        .filter(|(name, _)| *name != var)
        .collect();
    env.push((var, value));
    env
}

#[test]
fn without_the_dev_flag_plaintext_openbao_and_unverified_postgres_are_refused_by_name() {
    let cases = [
        ("FITFLOW_VAULT_ADDR", "http://127.0.0.1:8200"),
        (
            "FITFLOW_IDENTITY_DATABASE_URL",
            "postgres://fitflow_identity:secret-password@127.0.0.1:1/fitflow",
        ),
        (
            "FITFLOW_IDENTITY_DATABASE_URL",
            "postgres://fitflow_identity:secret-password@127.0.0.1:1/fitflow?sslmode=require",
        ),
        (
            "FITFLOW_IDENTITY_SYSTEM_DATABASE_URL",
            "postgres://fitflow_identity_system:secret-password@127.0.0.1:1/fitflow",
        ),
    ];
    for (var, value) in cases {
        let (ok, stderr) = serve_identity(&production_with(var, value));
        assert!(!ok, "fitflow started with {var} without verified TLS");
        assert!(
            stderr.contains(&format!("{var} is invalid")),
            "stderr does not name {var}: {stderr}"
        );
        assert!(
            !stderr.contains("secret-password"),
            "stderr leaks the value: {stderr}"
        );
    }
}

#[test]
fn without_the_dev_flag_https_openbao_and_verify_full_postgres_pass_the_settings() {
    // Nothing listens on port 1, so the process stops at connecting; what
    // matters is that the settings themselves were accepted.
    let (_, stderr) = serve_identity(PRODUCTION);
    for var in [
        "FITFLOW_VAULT_ADDR",
        "FITFLOW_IDENTITY_DATABASE_URL",
        "FITFLOW_IDENTITY_SYSTEM_DATABASE_URL",
    ] {
        assert!(
            !stderr.contains(&format!("{var} is invalid")),
            "{var} was refused: {stderr}"
        );
    }
}

#[test]
fn a_dev_flag_other_than_1_is_refused_so_a_typo_never_weakens_tls() {
    let mut env = VALID.to_vec();
    env.retain(|(name, _)| *name != "FITFLOW_DEV_INSECURE");
    env.push(("FITFLOW_DEV_INSECURE", "yes"));
    let (ok, stderr) = serve_identity(&env);
    assert!(!ok);
    assert!(
        stderr.contains("FITFLOW_DEV_INSECURE is invalid"),
        "{stderr}"
    );
}
