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
    ("FITFLOW_VAULT_ADDR", "http://127.0.0.1:1"),
    ("FITFLOW_VAULT_TOKEN", "s.not-a-real-token"),
    (
        "FITFLOW_IDENTITY_DATABASE_URL",
        "postgres://fitflow_identity@127.0.0.1:1/fitflow",
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
        ("FITFLOW_VAULT_ADDR", "bao.internal:8200"),
        ("FITFLOW_AUDIT_ENDPOINT", "http://audit:50057"),
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
