//! Another team's Python client, generated from `proto/` with grpcio-tools,
//! calls identity over mutual TLS with the gateway's certificate. Proves the
//! contracts generate and work outside Rust (the well-known types they import
//! ship with grpcio-tools; they import no googleapis files).

use std::path::PathBuf;
use std::process::Command;

use crate::python_support::{pip_target, repo_root};

use fitflow_e2e::{IDENTITY, PASSWORD, Sandbox, bearer};
use fitflow_proto::identity::GetCurrentUserRequest;

/// The pinned Python packages the client needs.
const REQUIREMENTS: &str = include_str!("../../python/requirements.txt");

/// The pinned packages, installed once into the Cargo target directory.
fn python_packages() -> PathBuf {
    pip_target(
        "python-client",
        "tests/python/requirements.txt",
        REQUIREMENTS,
    )
}

#[tokio::test]
async fn a_python_client_generated_from_the_protos_registers_and_logs_in_over_mtls() {
    let packages = python_packages();
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let email = format!("python-{}@example.com", uuid::Uuid::new_v4());
    let gateway = sandbox.tls("gateway");
    let root = repo_root();

    let mut python = Command::new("python3");
    python
        .arg(root.join("tests/python/call_identity.py"))
        .arg("--proto-root")
        .arg(root.join("proto"))
        .arg("--address")
        .arg(format!("127.0.0.1:{}", sandbox.ports[IDENTITY]))
        .args([
            "--server-name",
            "identity",
            "--email",
            &email,
            "--password",
            PASSWORD,
        ])
        .arg("--ca")
        .arg(&gateway.ca)
        .arg("--cert")
        .arg(&gateway.cert)
        .arg("--key")
        .arg(&gateway.key)
        .env("PYTHONPATH", &packages);
    // The client blocks; keep the runtime's workers free to serve it.
    let output = tokio::task::spawn_blocking(move || python.output())
        .await
        .unwrap()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let field = |name: &str| -> String {
        let key = format!("\"{name}\": \"");
        let start = stdout
            .find(&key)
            .unwrap_or_else(|| panic!("{name} in {stdout}"))
            + key.len();
        stdout[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_owned()
    };

    // The account the Python client created is the one Rust logs in to.
    let user_id = field("registered_user_id");
    assert_eq!(field("current_user_id"), user_id);
    assert!(!field("session_id").is_empty());
    assert_eq!(field("duplicate_register_code"), "ALREADY_EXISTS");
    let from_rust = bearer(
        GetCurrentUserRequest {},
        &sandbox.login(&email).await.access_token,
    );
    let current = sandbox
        .identity()
        .get_current_user(from_rust)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(current.user.unwrap().id, user_id);
    stack.shutdown().await;
}
