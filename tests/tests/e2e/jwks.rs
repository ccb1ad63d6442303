//! Identity's JWKS document lets another team's standard JWT library verify
//! FitFlow access tokens: PyJWT (Python) verifies a real token with it, and
//! refuses a tampered one.

use std::process::Command;

use fitflow_e2e::{IDENTITY, Sandbox};
use fitflow_proto::identity::GetJwksRequest;

use crate::python_support::{pip_target, repo_root};

/// The pinned Python packages: PyJWT with cryptography for EdDSA.
const REQUIREMENTS: &str = include_str!("../../python/jwt-requirements.txt");

/// Runs `tests/python/verify_jwt.py` on `token` with the JWKS document in
/// `jwks_path`; its exit status and output.
async fn pyjwt_verify(jwks_path: &std::path::Path, token: &str) -> std::process::Output {
    let packages = pip_target("pyjwt", "tests/python/jwt-requirements.txt", REQUIREMENTS);
    let mut python = Command::new("python3");
    python
        .arg(repo_root().join("tests/python/verify_jwt.py"))
        .arg("--jwks")
        .arg(jwks_path)
        .arg("--token")
        .arg(token)
        .env("PYTHONPATH", &packages);
    tokio::task::spawn_blocking(move || python.output())
        .await
        .unwrap()
        .expect("python3 runs")
}

#[tokio::test]
async fn pyjwt_verifies_a_real_access_token_with_the_jwks_and_refuses_a_tampered_one() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (user, email) = sandbox.register("Python Verified").await;
    let token = sandbox.login(&email).await.access_token;
    // Any FitFlow service may fetch it, like the key list.
    let jwks = fitflow_proto::identity::identity_service_client::IdentityServiceClient::new(
        sandbox.channel(IDENTITY, "billing"),
    )
    .get_jwks(GetJwksRequest {})
    .await
    .expect("the JWKS document")
    .into_inner()
    .jwks_json;
    let jwks_path =
        std::env::temp_dir().join(format!("fitflow-jwks-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&jwks_path, &jwks).unwrap();

    let verified = pyjwt_verify(&jwks_path, &token).await;
    assert!(
        verified.status.success(),
        "PyJWT refused a real token: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&verified.stdout).trim(), user.id);

    // The same token with its payload swapped for an operator's is refused.
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let payload = String::from_utf8(engine.decode(parts[1]).unwrap()).unwrap();
    let elevated = payload.replace(r#""roles":["trainer"]"#, r#""roles":["operator"]"#);
    assert_ne!(payload, elevated, "the payload carries the trainer role");
    let tampered = format!("{}.{}.{}", parts[0], engine.encode(elevated), parts[2]);
    let refused = pyjwt_verify(&jwks_path, &tampered).await;
    assert!(!refused.status.success(), "PyJWT accepted a tampered token");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("InvalidSignatureError"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let _ = std::fs::remove_file(&jwks_path);
    stack.shutdown().await;
}
