//! Identity's service-level tests: the gRPC handlers called in-process (no
//! TLS, no other service) against a real PostgreSQL and OpenBao, so account
//! rules are checked quickly beside the end-to-end suite.

mod accounts;

use std::sync::Arc;
use std::time::Duration;

use fitflow_auth::TokenVerifier;
use fitflow_crypto::{KeyRing, TransitKeyKind};
use fitflow_identity::{Accounts, IdentityGrpc, MIGRATOR, SCHEMA, TokenSigner};
use fitflow_proto::identity::identity_service_server::IdentityService as _;
use fitflow_proto::identity::{LoginRequest, RegisterRequest, TokenPair, User, login_response};
use fitflow_testkit::{MigratedSchema, TestDatabase};
use tonic::Request;

/// A password that satisfies the policy.
const PASSWORD: &str = "correct horse battery staple";

/// Identity's handlers over a throwaway database, and a verifier that
/// trusts its signing keys.
struct Identity {
    grpc: IdentityGrpc,
    verifier: TokenVerifier,
    _database: TestDatabase,
    _mail: fitflow_testkit::SmtpSink,
}

async fn identity() -> Identity {
    fitflow_testkit::init_tracing();
    let database = fitflow_testkit::database(&[MigratedSchema {
        schema: SCHEMA,
        migrator: &MIGRATOR,
    }])
    .await;
    let pool = fitflow_db::connect(&database.runtime_url(SCHEMA), SCHEMA, 8)
        .await
        .expect("identity's runtime pool");
    let system = fitflow_db::connect_system(&database.system_url(SCHEMA), SCHEMA, 4)
        .await
        .expect("identity's system pool");
    let vault = fitflow_testkit::vault().await;
    vault
        .ensure_transit_key("fitflow-identity", TransitKeyKind::Aes256Gcm96)
        .await
        .expect("identity's transit key");
    let keyring = KeyRing::new(vault.clone(), pool.clone(), SCHEMA, Duration::from_secs(60));
    let signer = Arc::new(TokenSigner::new(vault).await.expect("the signing key"));
    let keys = Arc::clone(&signer);
    let verifier = TokenVerifier::new(Arc::new(move || {
        let keys = Arc::clone(&keys);
        Box::pin(async move { keys.public_keys().await.map_err(|error| error.to_string()) })
    }));
    let mail = fitflow_testkit::SmtpSink::start().await;
    let mailer = fitflow_mail::Mailer::new(&fitflow_mail::MailSettings {
        url: mail.url(),
        from: "FitFlow <no-reply@fitflow.test>".to_owned(),
    })
    .expect("a mailer for the sink");
    Identity {
        grpc: IdentityGrpc::new(
            Accounts::new(pool, system, keyring, signer),
            fitflow_identity::Letters::new(mailer),
        ),
        verifier,
        _database: database,
        _mail: mail,
    }
}

impl Identity {
    async fn register(&self, email: &str) -> Result<User, tonic::Status> {
        self.grpc
            .register(Request::new(RegisterRequest {
                email: email.into(),
                password: PASSWORD.into(),
                display_name: "Ana".into(),
                roles: vec![],
                request_id: String::new(),
            }))
            .await
            .map(|response| response.into_inner().user.expect("a user"))
    }

    async fn login(&self, email: &str, password: &str) -> Result<TokenPair, tonic::Status> {
        let response = self
            .grpc
            .login(Request::new(LoginRequest {
                email: email.into(),
                password: password.into(),
                client_address: "203.0.113.9".into(),
                user_agent: "service test".into(),
            }))
            .await?
            .into_inner();
        match response.result {
            Some(login_response::Result::Tokens(tokens)) => Ok(tokens),
            other => panic!("no tokens: {other:?}"),
        }
    }

    /// `message` as a request carrying the principal of `access_token`, as
    /// the platform's token layer would attach it.
    async fn authorized<T>(&self, message: T, access_token: &str) -> Request<T> {
        let principal = self
            .verifier
            .verify(access_token)
            .await
            .expect("a valid token");
        let mut request = Request::new(message);
        request.extensions_mut().insert(principal);
        request
    }
}

fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4())
}

/// The `google.rpc.ErrorInfo` reason of `status`.
fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt as _;
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}
