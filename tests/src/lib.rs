//! A sandbox for end-to-end tests: the real services, started in-process on
//! listeners the sandbox bound itself (no free-port races between parallel
//! test processes) over real mTLS, against a throwaway PostgreSQL database
//! and the test process's OpenBao dev server, with ready-made clients.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Mutex;
use std::time::Duration;

use fitflow::settings::{PoolSizes, Served};
use fitflow::{Settings, Stack};
use fitflow_platform::Registry;
use fitflow_proto::audit::audit_ingest_service_client::AuditIngestServiceClient;
use fitflow_proto::audit::audit_service_client::AuditServiceClient;
use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_proto::identity::{
    CompleteMfaLoginRequest, ConfirmMfaRequest, EnrollMfaRequest, LoginRequest, LoginResponse,
    RegisterRequest, TokenPair, User, complete_mfa_login_request, login_response,
};
use fitflow_server::tls::TlsPaths;
use fitflow_server::{EDGE_PEERS, SERVICE_PEERS};
use fitflow_testkit::{MigratedSchema, TestCerts, TestDatabase};
use tonic::transport::Channel;

pub mod widget;

/// Every certificate name the sandbox issues: the services and the edge peers.
pub fn peers() -> Vec<&'static str> {
    SERVICE_PEERS.iter().chain(EDGE_PEERS).copied().collect()
}

/// A password that satisfies the policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// The identity service's name.
pub const IDENTITY: &str = "identity";
/// The audit service's name.
pub const AUDIT: &str = "audit";

/// The schemas of `registry`'s services.
pub fn schemas(registry: &Registry) -> Vec<MigratedSchema> {
    registry
        .services()
        .iter()
        .map(|service| MigratedSchema {
            schema: service.name(),
            migrator: service.migrations(),
        })
        .collect()
}

/// The shared parts of a sandbox: certificates, a database, and a bound
/// listener per service.
pub struct Sandbox {
    /// Certificates for every peer.
    pub certs: TestCerts,
    /// The throwaway database.
    pub db: TestDatabase,
    /// Each service's port, bound by the sandbox when it was made.
    pub ports: BTreeMap<&'static str, u16>,
    /// The services it can start.
    pub registry: Registry,
    /// Where identity's mail lands (its verification and reset codes).
    pub mail: fitflow_testkit::SmtpSink,
    /// Listeners bound at creation, handed to the first start of each service.
    listeners: Mutex<BTreeMap<&'static str, TcpListener>>,
}

impl Sandbox {
    /// New certificates, a fresh database, and a listener per service of the
    /// binary's registry.
    pub async fn new() -> Self {
        Self::with_registry(fitflow::registry()).await
    }

    /// The same for `registry` (a test may register a throwaway service).
    pub async fn with_registry(registry: Registry) -> Self {
        fitflow_testkit::init_tracing();
        fitflow_server::install_crypto_provider();
        let mut names: Vec<&'static str> = peers();
        names.extend(registry.names());
        names.sort_unstable();
        names.dedup();
        let certs = fitflow_testkit::certs(&names);
        let db = fitflow_testkit::database(&schemas(&registry)).await;
        let mut ports = BTreeMap::new();
        let mut listeners = BTreeMap::new();
        for spec in fitflow_platform::services_table() {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a listener");
            let port = listener.local_addr().expect("bound address").port();
            ports.insert(spec.name.as_str(), port);
            listeners.insert(spec.name.as_str(), listener);
        }
        Self {
            certs,
            db,
            ports,
            registry,
            mail: fitflow_testkit::SmtpSink::start().await,
            listeners: Mutex::new(listeners),
        }
    }

    /// Settings serving `services` on their ports.
    pub async fn settings(&self, services: &[&'static str]) -> Settings {
        let served = services
            .iter()
            .map(|&name| Served {
                name,
                listen: SocketAddr::from((Ipv4Addr::LOCALHOST, self.ports[name])),
                database_url: self.db.runtime_url(name),
                system_database_url: self.db.system_url(name),
            })
            .collect();
        let endpoints = self
            .ports
            .iter()
            .map(|(name, port)| (*name, format!("https://127.0.0.1:{port}")))
            .collect();
        Settings {
            tls_dir: self.certs.dir.clone(),
            vault: fitflow_testkit::vault_settings().await,
            served,
            endpoints,
            // Two tests run at once and each stack serves up to seven
            // services: smaller pools keep a run within PostgreSQL's 100
            // connections (a stack peaked at 53 with the serving sizes).
            pools: PoolSizes {
                runtime: 8,
                system: 3,
            },
            mail: Some(fitflow_mail::MailSettings {
                url: self.mail.url(),
                from: "FitFlow <no-reply@fitflow.test>".to_owned(),
            }),
        }
    }

    /// The code of the `count`-th mail to `email` whose subject holds
    /// `subject` (waiting up to 15 s for it): the line after "enter this
    /// code in FitFlow:".
    pub async fn mailed_code(&self, email: &str, subject: &str, count: usize) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let matching: Vec<_> = self
                .mail
                .received_by(email)
                .into_iter()
                .filter(|mail| {
                    mail.header("subject")
                        .is_some_and(|found| found.contains(subject))
                })
                .collect();
            if let Some(mail) = matching.get(count - 1) {
                return code_in(&mail.text()).expect("a code in the mail");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no mail #{count} \"{subject}\" for {email}; got {} mail(s)",
                matching.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Starts `services` in this process: the first time on the listeners
    /// bound at creation; a restart binds the same port again.
    pub async fn start(&self, services: &[&'static str]) -> Stack {
        let settings = self.settings(services).await;
        let mut listeners = Vec::new();
        for served in &settings.served {
            let reserved = self
                .listeners
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(served.name);
            let listener = match reserved {
                Some(listener) => {
                    listener
                        .set_nonblocking(true)
                        .expect("non-blocking listener");
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener")
                }
                None => tokio::net::TcpListener::bind(served.listen)
                    .await
                    .expect("bind the service's port again"),
            };
            listeners.push(listener);
        }
        let stack = Stack::start_on(&self.registry, settings, listeners)
            .await
            .expect("the stack starts");
        for service in services {
            self.wait_until_serving(service).await;
        }
        stack
    }

    /// Gives up the listener reserved for `service`, so that a child process
    /// can bind its port; returns the port.
    pub fn release_port(&self, service: &str) -> u16 {
        self.listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(service);
        self.ports[service]
    }

    /// The TLS files of peer `name`.
    pub fn tls(&self, name: &str) -> TlsPaths {
        TlsPaths::in_dir(&self.certs.dir, name)
    }

    /// An mTLS channel to `service`, presenting `peer`'s certificate.
    pub fn channel(&self, service: &str, peer: &str) -> Channel {
        let endpoint = format!("https://127.0.0.1:{}", self.ports[service]);
        fitflow_server::client::channel(&endpoint, service, &self.tls(peer)).expect("channel")
    }

    /// Identity, as the gateway.
    pub fn identity(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.channel(IDENTITY, "gateway"))
    }

    /// Identity, as an operator's tooling peer (the only peer admitted to
    /// operator powers such as `SuspendUser`).
    pub fn identity_as_operator(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.channel(IDENTITY, "operator"))
    }

    /// The audit query service, as an operator's tooling peer.
    pub fn audit(&self) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(self.channel(AUDIT, "operator"))
    }

    /// The code audit's `ListEvents` answers with `token`: OK for an operator,
    /// PERMISSION_DENIED for a valid non-operator token, UNAUTHENTICATED for a bad one.
    pub async fn audit_answer(&self, token: &str) -> tonic::Code {
        let request = bearer(fitflow_proto::audit::ListEventsRequest::default(), token);
        match self.audit().list_events(request).await {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        }
    }

    /// Audit ingestion, presenting `peer`'s certificate.
    pub fn audit_ingest(&self, peer: &str) -> AuditIngestServiceClient<Channel> {
        AuditIngestServiceClient::new(self.channel(AUDIT, peer))
    }

    /// Waits until `service` answers its health check.
    pub async fn wait_until_serving(&self, service: &str) {
        fitflow_testkit::eventually(
            &format!("{service} serves"),
            Duration::from_secs(10),
            async || is_serving(self.channel(service, "operator")).await,
        )
        .await;
    }

    /// Registers a user with a unique email; returns it and the email used.
    pub async fn register(&self, display_name: &str) -> (User, String) {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4());
        let user = self
            .identity()
            .register(RegisterRequest {
                email: email.clone(),
                password: PASSWORD.into(),
                display_name: display_name.into(),
                roles: vec![],
                request_id: String::new(),
            })
            .await
            .expect("register")
            .into_inner()
            .user
            .expect("user");
        (user, email)
    }

    /// Waits until tenancy's reliable commands (among them its reports of
    /// structure changes to identity) are delivered: a token issued after
    /// that carries the structure as it is and is not refused as stale.
    /// A gateway instead refreshes when a service answers TOKEN_STALE.
    pub async fn structure_settled(&self) {
        let admin = self.db.admin_pool().await;
        fitflow_testkit::eventually(
            "tenancy's commands are delivered",
            Duration::from_secs(30),
            async || {
                sqlx::query_scalar::<_, bool>(
                    "SELECT NOT EXISTS (SELECT FROM tenancy.command_outbox)",
                )
                .fetch_one(&admin)
                .await
                .unwrap_or(false)
            },
        )
        .await;
    }

    /// Logs a user in.
    pub async fn login(&self, email: &str) -> TokenPair {
        match self
            .identity()
            .login(LoginRequest {
                email: email.into(),
                password: PASSWORD.into(),
                client_address: "203.0.113.7".into(),
                user_agent: "e2e".into(),
            })
            .await
            .expect("login")
            .into_inner()
            .result
        {
            Some(login_response::Result::Tokens(tokens)) => tokens,
            other => panic!("login returned no tokens: {other:?}"),
        }
    }
}

impl Sandbox {
    /// Logs in with any password from any client address; the raw outcome.
    pub async fn try_login(
        &self,
        email: &str,
        password: &str,
        client_address: &str,
    ) -> Result<LoginResponse, tonic::Status> {
        self.identity()
            .login(LoginRequest {
                email: email.into(),
                password: password.into(),
                client_address: client_address.into(),
                user_agent: "e2e".into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// An operator: a registered user given the operator role directly in the
    /// database (as the bootstrap runbook does for the first one), with MFA
    /// enabled, logged in with the second factor (the operator role counts
    /// only in such a session).
    pub async fn operator(&self) -> (User, TokenPair) {
        let (user, email, tokens) = self.operator_without_mfa().await;
        let (secret, _) = self.enable_mfa(&tokens.access_token).await;
        let tokens = self.mfa_login(&email, &secret).await;
        (user, tokens)
    }

    /// Logs in a user whose MFA was just enabled with `secret`: password,
    /// then the TOTP code of the next step (the confirming code spent the
    /// current one; the next is within the window and not a replay).
    pub async fn mfa_login(&self, email: &str, secret: &str) -> TokenPair {
        let challenge = match self.try_login(email, PASSWORD, "203.0.113.7").await {
            Ok(LoginResponse {
                result: Some(login_response::Result::MfaChallenge(challenge)),
            }) => challenge,
            other => panic!("an MFA user's login asks for the second factor: {other:?}"),
        };
        self.identity()
            .complete_mfa_login(CompleteMfaLoginRequest {
                challenge_token: challenge.challenge_token,
                proof: Some(complete_mfa_login_request::Proof::TotpCode(totp(secret, 1))),
            })
            .await
            .expect("complete the MFA login")
            .into_inner()
            .tokens
            .expect("tokens")
    }

    /// A user with the operator role whose session skipped the second
    /// factor (password only); returns the user, its email and the tokens.
    pub async fn operator_without_mfa(&self) -> (User, String, TokenPair) {
        let (user, email) = self.register("Operator").await;
        let admin = self.db.admin_pool().await;
        sqlx::query("UPDATE identity.users SET roles = '{operator}' WHERE id = $1")
            .bind(uuid::Uuid::parse_str(&user.id).expect("user id"))
            .execute(&admin)
            .await
            .expect("grant operator");
        let tokens = self.login(&email).await;
        (user, email, tokens)
    }

    /// Enrols and confirms TOTP for the bearer of `access_token` with the
    /// code of the current step; returns the base32 secret and the recovery codes.
    pub async fn enable_mfa(&self, access_token: &str) -> (String, Vec<String>) {
        let enrollment = self
            .identity()
            .enroll_mfa(bearer(
                EnrollMfaRequest {
                    current_password: PASSWORD.into(),
                },
                access_token,
            ))
            .await
            .expect("enrol mfa")
            .into_inner();
        let codes = self
            .identity()
            .confirm_mfa(bearer(
                ConfirmMfaRequest {
                    totp_code: totp(&enrollment.secret, 0),
                },
                access_token,
            ))
            .await
            .expect("confirm mfa")
            .into_inner()
            .recovery_codes;
        (enrollment.secret, codes)
    }
}

/// The TOTP code of a base32 secret, `steps_from_now` 30-second steps away.
pub fn totp(secret_base32: &str, steps_from_now: i64) -> String {
    let secret =
        fitflow_identity::domain::totp_secret_from_base32(secret_base32).expect("base32 secret");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default();
    fitflow_identity::domain::totp_code(&secret, now + steps_from_now * 30)
}

/// `request` with `authorization: Bearer <token>`.
pub fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}").parse().expect("ascii token");
    request.metadata_mut().insert("authorization", value);
    request
}

/// The one-time code in a FitFlow mail: the first non-empty line after the
/// line "… enter this code in FitFlow:".
pub fn code_in(text: &str) -> Option<String> {
    let mut lines = text.lines().map(str::trim);
    lines.find(|line| line.ends_with("this code in FitFlow:"))?;
    lines.find(|line| !line.is_empty()).map(str::to_owned)
}

/// Whether the server on `channel` reports SERVING.
async fn is_serving(channel: Channel) -> bool {
    use tonic_health::pb::health_check_response::ServingStatus;
    let request = tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    };
    matches!(
        tonic_health::pb::health_client::HealthClient::new(channel).check(request).await,
        Ok(response) if response.get_ref().status == ServingStatus::Serving as i32
    )
}

/// The `fitflow` binary built beside the running test (`cargo nextest run
/// --workspace` builds it, since the binary's own tests need it).
pub fn fitflow_binary() -> std::path::PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test_binary
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps");
    let binary = profile_dir.join("fitflow");
    assert!(
        binary.is_file(),
        "{} is missing: build it first (cargo build -p fitflow), or run the whole workspace's tests",
        binary.display()
    );
    binary
}
