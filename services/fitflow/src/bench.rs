//! `fitflow bench`: a closed-loop load generator over real mTLS that reports
//! throughput and latency percentiles. Figures are printed, never asserted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_proto::identity::{
    GetCurrentUserRequest, LoginRequest, RegisterRequest, login_response,
};
use fitflow_server::tls::TlsPaths;
use hdrhistogram::Histogram;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use fitflow_platform::settings::{require_tls_files, tls_dir};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// `grpc.health.v1.Health/Check` on identity.
    Health,
    /// `GetCurrentUser` with a bearer token: token verification plus one read.
    CurrentUser,
    /// `Login`: bounded by argon2id.
    Login,
    /// argon2id password hashes (identity's parameters) on blocking threads,
    /// in this process, no network: what bounds `Login` on this machine.
    Hash,
    /// Access-token verification as every service does it: the platform's
    /// verifier with keys fetched once from identity, then cached.
    Verify,
    /// tenancy `GetTrainer` of the caller's own profile: token, RLS, one row.
    Trainer,
    /// tenancy `ListStudios` full-text searches (first page of 20) over a
    /// directory seeded with `--seed` studios.
    StudioSearch,
    /// tenancy `GetRate` on random dates of a contract seeded with `--seed`
    /// rate versions.
    Rate,
    /// clients `GetClient` (every sealed field opened, an access event) at
    /// each of `--steps` (1, 8 and 32), each beside pgbench replaying the same SQL
    /// (deploy/bench/get-client.sql), among `--seed` clients.
    GetClient,
    /// clients `ListClients` by name prefix (first page of 20) among
    /// `--seed` clients.
    ClientSearch,
    /// scheduling `ListAppointments` of a trainer's week (40 appointments)
    /// among `--seed` appointments over three yearly partitions.
    Week,
    /// How long after a logout tenancy refuses the session's token: `--seed`
    /// logouts (50 when 0), one at a time; p50 and p99 of the delay.
    Revocation,
    /// documentation `ListSessionNotes`: a client's last 20 signed notes,
    /// every field opened, among `--seed` notes in all.
    Notes,
    /// documentation `GetProgress`: body weight over five years of a
    /// client's weekly signed notes (260), among `--seed` notes in all.
    Progress,
    /// Each authenticated read beside its SQL replayed by pgbench, and the
    /// health check beside a bare tonic server (`--bare-endpoint`), at each
    /// of `--steps`, with CPU per request (`--server-pid`); see
    /// deploy/bench/compare.
    Compare,
    /// Identity under floods of password work — 500 unknown-email logins,
    /// 200 password resets, 400 wrong-password changes — each beside a
    /// bystander's `GetCurrentUser` (`--concurrency` in flight), with
    /// identity's resident memory (`--server-pid`); see deploy/bench/flood.
    Flood,
    /// scheduling `JoinClass` under contention: `--seed` clients (500 when
    /// 0), each joining one of five group classes of ten places,
    /// `--concurrency` joins in flight; confirmed and waitlisted counted,
    /// then every class checked against its capacity.
    JoinClass,
    /// scheduling `BookAppointment` racing for few slots: `--seed` clients
    /// (200 when 0), each booking one of five hour slots of one trainer,
    /// `--concurrency` in flight; booked and refused (TRAINER_BUSY) counted,
    /// then the trainer's calendar checked for overlaps.
    BookSlots,
    /// billing `IssueInvoice` under contention: `--seed` drafts of one
    /// trainer (100 when 0) issued with `--concurrency` in flight, then the
    /// numbers checked to form 1..N without gap or duplicate.
    IssueInvoices,
    /// billing `DraftClientInvoice` of a month in which one client had
    /// `--seed` completed sessions (200 when 0, at most 200: an invoice's
    /// lines), drafted and voided in turn for `--seconds`.
    DraftInvoice,
}

impl Scenario {
    fn is_clients(self) -> bool {
        matches!(self, Scenario::GetClient | Scenario::ClientSearch)
    }

    fn is_tenancy(self) -> bool {
        matches!(
            self,
            Scenario::Trainer | Scenario::StudioSearch | Scenario::Rate
        )
    }
}

/// A bench run's parameters.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// The scenario.
    pub scenario: Scenario,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// How long to measure.
    pub duration: Duration,
    /// Identity's endpoint.
    pub endpoint: String,
    /// Tenancy's endpoint (tenancy scenarios).
    pub tenancy_endpoint: String,
    /// Clients' endpoint (clients scenarios).
    pub clients_endpoint: String,
    /// Scheduling's endpoint (scheduling and documentation scenarios).
    pub scheduling_endpoint: String,
    /// Documentation's endpoint (documentation scenarios).
    pub documentation_endpoint: String,
    /// Billing's endpoint (billing scenarios).
    pub billing_endpoint: String,
    /// The concurrencies get-client measures, each beside pgbench.
    pub steps: Vec<usize>,
    /// Rows to seed first: studios (`studio-search`), rate versions (`rate`)
    /// or clients in all (`get-client`, `client-search`).
    pub seed: u64,
    /// A bare tonic health server to compare the health check with (`compare`).
    pub bare_endpoint: Option<String>,
    /// The serving process, whose CPU time `compare` reads from `/proc`.
    pub server_pid: Option<u32>,
}

/// What a run measured.
#[derive(Debug)]
pub struct BenchReport {
    /// Requests that were in flight at once (workers).
    pub concurrency: usize,
    /// Successful requests.
    pub ok: u64,
    /// Failed requests.
    pub errors: u64,
    /// Wall time measured.
    pub elapsed: Duration,
    /// Latency of successful requests, in microseconds.
    pub latency_us: Histogram<u64>,
}

impl BenchReport {
    /// Prints the figures in one block.
    pub fn print(&self, plan: &BenchPlan) {
        let seconds = self.elapsed.as_secs_f64();
        let ms = |q: f64| self.latency_us.value_at_quantile(q) as f64 / 1000.0;
        println!("scenario     {:?}", plan.scenario);
        println!("concurrency  {}", self.concurrency);
        println!("duration     {seconds:.1} s");
        println!("requests     {} ok, {} failed", self.ok, self.errors);
        let unit = match plan.scenario {
            Scenario::Hash => "hashes/s",
            Scenario::Revocation => "logouts/s (each login, logout and wait in turn)",
            Scenario::JoinClass => "bookings/s (joins confirmed or waitlisted)",
            Scenario::BookSlots => "answers/s (booked or refused TRAINER_BUSY)",
            Scenario::IssueInvoices => "issues/s",
            Scenario::DraftInvoice => "drafts/s (each voided, untimed, before the next)",
            _ => "req/s",
        };
        println!("throughput   {:.0} {unit}", self.ok as f64 / seconds);
        println!(
            "latency      p50 {:.2} ms   p95 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
            ms(0.50),
            ms(0.95),
            ms(0.99),
            self.latency_us.max() as f64 / 1000.0
        );
    }
}

/// Runs `plan` against a live stack, as the operator peer.
pub async fn run(plan: &BenchPlan) -> anyhow::Result<BenchReport> {
    if plan.scenario == Scenario::Hash {
        return hash_passwords(plan).await;
    }
    fitflow_server::install_crypto_provider();
    let dir = tls_dir()?;
    let paths = require_tls_files(&dir, "operator")?;
    let channel = connect(&plan.endpoint, &paths).await?;
    let password = "bench password that is long enough".to_owned();
    let email = format!("bench-{}@example.com", uuid::Uuid::new_v4());
    let token = match plan.scenario {
        Scenario::Health => None,
        Scenario::Hash => None,
        Scenario::CurrentUser
        | Scenario::Login
        | Scenario::Verify
        | Scenario::Trainer
        | Scenario::StudioSearch
        | Scenario::Rate
        | Scenario::GetClient
        | Scenario::ClientSearch
        | Scenario::Week
        | Scenario::Revocation
        | Scenario::Notes
        | Scenario::Progress
        | Scenario::Compare
        | Scenario::Flood
        | Scenario::JoinClass
        | Scenario::BookSlots
        | Scenario::IssueInvoices
        | Scenario::DraftInvoice => Some(register_and_log_in(&channel, &email, &password).await?),
    };

    if plan.scenario == Scenario::Verify {
        return verify_tokens(plan, channel, token.unwrap_or_default()).await;
    }
    if plan.scenario == Scenario::Compare {
        return crate::bench_compare::run(plan, channel, &paths, token.unwrap_or_default()).await;
    }
    if plan.scenario == Scenario::Flood {
        let attacker_email = format!("bench-{}@example.com", uuid::Uuid::new_v4());
        let attacker = register_and_log_in(&channel, &attacker_email, &password).await?;
        let users = crate::bench_flood::Users {
            bystander: token.unwrap_or_default(),
            attacker,
        };
        let endpoint = plan.endpoint.clone();
        let connect = move || {
            fitflow_server::client::channel(&endpoint, "identity", &paths).map_err(Into::into)
        };
        return crate::bench_flood::run(plan, connect, users).await;
    }
    if plan.scenario == Scenario::Week {
        let scheduling =
            fitflow_server::client::channel(&plan.scheduling_endpoint, "scheduling", &paths)?;
        return crate::bench_scheduling::run(plan, scheduling, token.unwrap_or_default()).await;
    }
    if matches!(plan.scenario, Scenario::Notes | Scenario::Progress) {
        let channels = crate::bench_documentation::Channels {
            clients: fitflow_server::client::channel(&plan.clients_endpoint, "clients", &paths)?,
            scheduling: fitflow_server::client::channel(
                &plan.scheduling_endpoint,
                "scheduling",
                &paths,
            )?,
            documentation: fitflow_server::client::channel(
                &plan.documentation_endpoint,
                "documentation",
                &paths,
            )?,
        };
        return crate::bench_documentation::run(plan, channels, token.unwrap_or_default()).await;
    }
    if matches!(plan.scenario, Scenario::JoinClass | Scenario::BookSlots) {
        let channels = crate::bench_booking::Channels {
            clients: fitflow_server::client::channel(&plan.clients_endpoint, "clients", &paths)?,
            scheduling: fitflow_server::client::channel(
                &plan.scheduling_endpoint,
                "scheduling",
                &paths,
            )?,
        };
        return crate::bench_booking::run(plan, channels, token.unwrap_or_default()).await;
    }
    if matches!(
        plan.scenario,
        Scenario::IssueInvoices | Scenario::DraftInvoice
    ) {
        let channels = crate::bench_invoicing::Channels {
            tenancy: fitflow_server::client::channel(&plan.tenancy_endpoint, "tenancy", &paths)?,
            clients: fitflow_server::client::channel(&plan.clients_endpoint, "clients", &paths)?,
            scheduling: fitflow_server::client::channel(
                &plan.scheduling_endpoint,
                "scheduling",
                &paths,
            )?,
            billing: fitflow_server::client::channel(&plan.billing_endpoint, "billing", &paths)?,
        };
        return crate::bench_invoicing::run(plan, channels, token.unwrap_or_default()).await;
    }
    if plan.scenario == Scenario::Revocation {
        let tenancy = fitflow_server::client::channel(&plan.tenancy_endpoint, "tenancy", &paths)?;
        return crate::bench_revocation::run(plan, channel, tenancy, &email, &password).await;
    }
    if plan.scenario.is_clients() {
        let clients = fitflow_server::client::channel(&plan.clients_endpoint, "clients", &paths)?;
        return crate::bench_clients::run(plan, channel, clients, token.unwrap_or_default()).await;
    }
    if plan.scenario.is_tenancy() {
        let tenancy = fitflow_server::client::channel(&plan.tenancy_endpoint, "tenancy", &paths)?;
        return crate::bench_tenancy::run(plan, channel, tenancy, token.unwrap_or_default()).await;
    }

    let started = Instant::now();
    let deadline = started + plan.duration;
    let mut workers = Vec::new();
    for _ in 0..plan.concurrency {
        let channel = channel.clone();
        let token = token.clone();
        let (email, password, scenario) = (email.clone(), password.clone(), plan.scenario);
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            while Instant::now() < deadline {
                let begun = Instant::now();
                let outcome = one_request(
                    scenario,
                    channel.clone(),
                    token.as_deref(),
                    &email,
                    &password,
                )
                .await;
                tally.record(begun, outcome);
            }
            tally
        }));
    }
    Tally::merge(started, workers).await
}

/// Registers `email` with `password` and logs it in; its access token.
async fn register_and_log_in(
    channel: &Channel,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let mut identity = IdentityServiceClient::new(channel.clone());
    identity
        .register(RegisterRequest {
            email: email.to_owned(),
            password: password.to_owned(),
            display_name: "Bench User".into(),
            roles: vec![],
            request_id: String::new(),
        })
        .await
        .context("registering a bench user")?;
    let tokens = identity
        .login(LoginRequest {
            email: email.to_owned(),
            password: password.to_owned(),
            ..Default::default()
        })
        .await
        .context("logging in a bench user")?
        .into_inner()
        .result
        .and_then(|result| match result {
            login_response::Result::Tokens(tokens) => Some(tokens),
            login_response::Result::MfaChallenge(_) => None,
        })
        .context("login returned no tokens")?;
    Ok(tokens.access_token)
}

/// Hashes passwords with identity's argon2id parameters on `concurrency`
/// blocking threads for the plan's duration.
async fn hash_passwords(plan: &BenchPlan) -> anyhow::Result<BenchReport> {
    let started = Instant::now();
    let deadline = started + plan.duration;
    let mut workers = Vec::new();
    for _ in 0..plan.concurrency.max(1) {
        workers.push(tokio::task::spawn_blocking(move || {
            let mut tally = Tally::new();
            // Each worker hashes in its own memory, as identity's do.
            let mut memory = fitflow_identity::domain::HashMemory::new();
            while Instant::now() < deadline {
                let begun = Instant::now();
                let outcome = fitflow_identity::domain::hash_password_in(
                    &mut memory,
                    "bench password that is long enough",
                );
                tally.record(begun, outcome);
            }
            tally
        }));
    }
    Tally::merge(started, workers).await
}

/// Verifies `token` in a loop with the platform's verifier. The first call
/// fetches identity's public keys over mTLS; every later one is an in-memory
/// Ed25519 check, which is what this measures.
async fn verify_tokens(
    plan: &BenchPlan,
    channel: Channel,
    token: String,
) -> anyhow::Result<BenchReport> {
    let identity = IdentityServiceClient::new(channel);
    let source: fitflow_auth::KeySource = Arc::new(move || {
        let mut identity = identity.clone();
        Box::pin(async move {
            let keys = identity
                .list_public_keys(fitflow_proto::identity::ListPublicKeysRequest {})
                .await
                .map_err(|status| status.code().to_string())?
                .into_inner()
                .keys;
            Ok(keys
                .into_iter()
                .map(|key| fitflow_auth::PublicKeyEntry {
                    key_id: key.key_id,
                    public_key: key.public_key,
                })
                .collect())
        })
    });
    let verifier = Arc::new(fitflow_auth::TokenVerifier::new(source));
    verifier
        .verify(&token)
        .await
        .context("the bench token does not verify")?;

    let token = Arc::new(token);
    let started = Instant::now();
    let deadline = started + plan.duration;
    let mut workers = Vec::new();
    for _ in 0..plan.concurrency {
        let (verifier, token) = (Arc::clone(&verifier), Arc::clone(&token));
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            while Instant::now() < deadline {
                let begun = Instant::now();
                let outcome = verifier.verify(&token).await;
                tally.record(begun, outcome);
            }
            tally
        }));
    }
    Tally::merge(started, workers).await
}

/// One worker's successes, failures and latencies.
pub(crate) struct Tally {
    latency_us: Histogram<u64>,
    ok: u64,
    errors: u64,
}

impl Tally {
    pub(crate) fn new() -> Self {
        Self {
            latency_us: Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable_histogram()),
            ok: 0,
            errors: 0,
        }
    }

    /// Counts one successful operation that took `took`.
    pub(crate) fn record_duration(&mut self, took: Duration) {
        self.ok += 1;
        let _ = self.latency_us.record(took.as_micros() as u64);
    }

    /// Counts one operation begun at `begun`; only successes enter the latency histogram.
    pub(crate) fn record<T, E>(&mut self, begun: Instant, outcome: Result<T, E>) {
        match outcome {
            Ok(_) => {
                self.ok += 1;
                let _ = self.latency_us.record(begun.elapsed().as_micros() as u64);
            }
            Err(_) => self.errors += 1,
        }
    }

    /// Waits for every worker and adds up what they measured since `started`.
    pub(crate) async fn merge(
        started: Instant,
        workers: Vec<tokio::task::JoinHandle<Tally>>,
    ) -> anyhow::Result<BenchReport> {
        let mut total = Tally::new();
        let concurrency = workers.len();
        for worker in workers {
            let tally = worker.await?;
            total.latency_us.add(&tally.latency_us)?;
            total.ok += tally.ok;
            total.errors += tally.errors;
        }
        Ok(BenchReport {
            concurrency,
            ok: total.ok,
            errors: total.errors,
            elapsed: started.elapsed(),
            latency_us: total.latency_us,
        })
    }
}

/// `concurrency` workers calling `call` back to back for `duration`.
pub(crate) async fn closed_loop<F>(
    concurrency: usize,
    duration: Duration,
    call: F,
) -> anyhow::Result<BenchReport>
where
    F: Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>>
        + Clone
        + Send
        + 'static,
{
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            while Instant::now() < deadline {
                let begun = Instant::now();
                let outcome = call().await;
                tally.record(begun, outcome);
            }
            tally
        }));
    }
    Tally::merge(started, workers).await
}

fn unreachable_histogram() -> Histogram<u64> {
    // Three significant figures are always valid; this only satisfies the type.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

async fn connect(endpoint: &str, paths: &TlsPaths) -> anyhow::Result<Channel> {
    let channel = fitflow_server::client::channel(endpoint, "identity", paths)?;
    Ok(channel)
}

async fn one_request(
    scenario: Scenario,
    channel: Channel,
    token: Option<&str>,
    email: &str,
    password: &str,
) -> Result<(), tonic::Status> {
    match scenario {
        Scenario::Health => {
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await?;
        }
        Scenario::CurrentUser => {
            let request = bearer(GetCurrentUserRequest {}, token.unwrap_or_default())?;
            IdentityServiceClient::new(channel)
                .get_current_user(request)
                .await?;
        }
        Scenario::Hash
        | Scenario::Verify
        | Scenario::Trainer
        | Scenario::StudioSearch
        | Scenario::Rate
        | Scenario::GetClient
        | Scenario::ClientSearch
        | Scenario::Week
        | Scenario::Revocation
        | Scenario::Notes
        | Scenario::Progress
        | Scenario::Compare
        | Scenario::Flood
        | Scenario::JoinClass
        | Scenario::BookSlots
        | Scenario::IssueInvoices
        | Scenario::DraftInvoice => {}
        Scenario::Login => {
            IdentityServiceClient::new(channel)
                .login(LoginRequest {
                    email: email.to_owned(),
                    password: password.to_owned(),
                    ..Default::default()
                })
                .await?;
        }
    }
    Ok(())
}

/// `message` with `authorization: Bearer <token>`.
pub(crate) fn bearer<T>(message: T, token: &str) -> Result<tonic::Request<T>, tonic::Status> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| tonic::Status::internal("bad token header"))?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

/// `google.rpc.Status` as tonic carries it in `grpc-status-details-bin`:
/// only what `error_reason` reads.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    /// The details: `Any`s, one of them the `ErrorInfo`.
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// `google.rpc.ErrorInfo`: its reason.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcErrorInfo {
    /// The reason, e.g. `TRAINER_BUSY`.
    #[prost(string, tag = "1")]
    reason: String,
}

/// The type URL of `google.rpc.ErrorInfo` in a status's details.
const ERROR_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// The `ErrorInfo` reason a FitFlow service put in `status`, if any. Read
/// here with prost rather than tonic-types, which this crate does not need
/// otherwise.
pub(crate) fn error_reason(status: &tonic::Status) -> Option<String> {
    use prost::Message as _;
    let details = RpcStatus::decode(status.details()).ok()?;
    details
        .details
        .iter()
        .find(|any| any.type_url == ERROR_INFO_TYPE_URL)
        .and_then(|any| RpcErrorInfo::decode(any.value.as_slice()).ok())
        .map(|info| info.reason)
}

/// A status as a FitFlow service sends it: `code` with an `ErrorInfo` of
/// `reason` (for the scenarios' tests).
#[cfg(test)]
pub(crate) fn refusal(code: tonic::Code, reason: &str) -> tonic::Status {
    use prost::Message as _;
    let info = prost_types::Any {
        type_url: ERROR_INFO_TYPE_URL.into(),
        value: RpcErrorInfo {
            reason: reason.into(),
        }
        .encode_to_vec(),
    };
    let details = RpcStatus {
        details: vec![info],
    };
    tonic::Status::with_details(code, "refused", details.encode_to_vec().into())
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    fn status_with_details(details: Vec<prost_types::Any>) -> tonic::Status {
        let encoded = RpcStatus { details }.encode_to_vec();
        tonic::Status::with_details(tonic::Code::FailedPrecondition, "refused", encoded.into())
    }

    #[test]
    fn error_reason_reads_the_error_info_among_the_details() {
        let info = prost_types::Any {
            type_url: ERROR_INFO_TYPE_URL.into(),
            value: RpcErrorInfo {
                reason: "TRAINER_BUSY".into(),
            }
            .encode_to_vec(),
        };
        let other = prost_types::Any {
            type_url: "type.googleapis.com/google.rpc.BadRequest".into(),
            value: vec![1, 2, 3],
        };
        let status = status_with_details(vec![other, info]);
        assert_eq!(error_reason(&status).as_deref(), Some("TRAINER_BUSY"));
    }

    #[test]
    fn error_reason_is_none_without_details_or_error_info() {
        assert_eq!(error_reason(&tonic::Status::unavailable("down")), None);
        assert_eq!(error_reason(&status_with_details(vec![])), None);
    }
}
