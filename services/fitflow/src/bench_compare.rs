//! `fitflow bench --scenario compare`: each authenticated read beside its
//! SQL replayed by pgbench, and our health check beside a bare tonic health
//! server, at each concurrency in the same run, with the ratios and the CPU
//! each side spent per request. `deploy/bench/compare` runs it against the
//! dev stack. Figures are printed, never asserted.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use fitflow_proto::identity::GetCurrentUserRequest;
use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_server::tls::TlsPaths;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::bench::{BenchPlan, BenchReport, bearer, closed_loop};
use crate::{bench_cpu, bench_pgbench};

/// The pgbench script: the SQL of one GetCurrentUser, as sent before the
/// context and `BEGIN` shared a message.
const CURRENT_USER_SQL: &str = include_str!("../../../deploy/bench/current-user.sql");
/// The identity runtime role's URL (set by `deploy/dev/up`'s env file).
const IDENTITY_DATABASE_URL_VAR: &str = "FITFLOW_IDENTITY_DATABASE_URL";

/// Runs the comparison and returns the last step's GetCurrentUser report.
pub(crate) async fn run(
    plan: &BenchPlan,
    identity: Channel,
    paths: &TlsPaths,
    token: String,
) -> anyhow::Result<BenchReport> {
    println!(
        "fitflow bench compare: {} s per figure; serving process {}",
        plan.duration.as_secs(),
        plan.server_pid.map_or_else(
            || "unknown (no --server-pid)".to_owned(),
            |pid| pid.to_string()
        )
    );
    health(plan, identity.clone(), paths).await?;
    current_user(plan, identity, token).await
}

/// Our health check (mTLS, peer policy, no token) beside a bare tonic
/// health server holding the same certificates.
async fn health(plan: &BenchPlan, ours: Channel, paths: &TlsPaths) -> anyhow::Result<()> {
    println!();
    println!("grpc.health.v1.Health/Check over mTLS: identity vs a bare tonic health server");
    println!(
        "{:>5}  {:>10}  {:>8}  {:>10}  {:>8}  {:>6}",
        "conc.", "ours/s", "p99 ms", "bare/s", "p99 ms", "ratio"
    );
    let bare = match &plan.bare_endpoint {
        Some(endpoint) => Some(fitflow_server::client::channel(
            endpoint, "identity", paths,
        )?),
        None => None,
    };
    for &concurrency in &plan.steps {
        let ours_report =
            closed_loop(concurrency, plan.duration, health_check(ours.clone())).await?;
        let (ours_rate, ours_p99) = rate_and_p99(&ours_report);
        match &bare {
            Some(bare) => {
                let bare_report =
                    closed_loop(concurrency, plan.duration, health_check(bare.clone())).await?;
                let (bare_rate, bare_p99) = rate_and_p99(&bare_report);
                println!(
                    "{concurrency:>5}  {ours_rate:>10.0}  {ours_p99:>8.2}  {bare_rate:>10.0}  {bare_p99:>8.2}  {:>5.2}x",
                    ours_rate / bare_rate
                );
            }
            None => println!(
                "{concurrency:>5}  {ours_rate:>10.0}  {ours_p99:>8.2}  {:>10}  {:>8}  (no --bare-endpoint)",
                "-", "-"
            ),
        }
    }
    Ok(())
}

fn health_check(
    channel: Channel,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    move || {
        let mut client = HealthClient::new(channel.clone());
        Box::pin(async move {
            client
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|_| ())
        })
    }
}

/// GetCurrentUser beside pgbench replaying its SQL as identity's runtime role.
async fn current_user(
    plan: &BenchPlan,
    identity: Channel,
    token: String,
) -> anyhow::Result<BenchReport> {
    let user_id = IdentityServiceClient::new(identity.clone())
        .get_current_user(bearer(GetCurrentUserRequest {}, &token)?)
        .await
        .context("GetCurrentUser with the bench token")?
        .into_inner()
        .user
        .context("GetCurrentUser returned no user")?
        .id;
    let url = std::env::var(IDENTITY_DATABASE_URL_VAR).ok();
    let script =
        std::env::temp_dir().join(format!("fitflow-current-user-{}.sql", uuid::Uuid::new_v4()));
    std::fs::write(&script, CURRENT_USER_SQL).context("writing the pgbench script")?;

    println!();
    println!(
        "identity GetCurrentUser (token, RLS transaction, one row, one sealed field) vs pgbench \
         replaying its SQL (deploy/bench/current-user.sql)"
    );
    println!(
        "{:>5}  {:>9}  {:>7}  {:>9}  {:>8}  {:>6}  {:>12}  {:>12}  {:>12}  {:>12}",
        "conc.",
        "rpc/s",
        "p99 ms",
        "pgbench/s",
        "mean ms",
        "ratio",
        "fitflow µs/rq",
        "pg µs/rq",
        "pg µs/tx(pgb)",
        "bench µs/rq"
    );
    let call = {
        let token = token.clone();
        move || {
            let mut client = IdentityServiceClient::new(identity.clone());
            let request = bearer(GetCurrentUserRequest {}, &token);
            Box::pin(async move { client.get_current_user(request?).await.map(|_| ()) })
                as std::pin::Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>>
        }
    };
    let mut last = None;
    for &concurrency in &plan.steps {
        let server_before = plan.server_pid.and_then(bench_cpu::process);
        let pg_before = bench_cpu::postgres();
        // The load generator (this process) shares the cores: its own CPU
        // per request is what the comparison with pgbench's client costs.
        let bench_before = bench_cpu::process(std::process::id());
        let report = closed_loop(concurrency, plan.duration, call.clone()).await?;
        let bench_us = bench_cpu::per_operation_us(
            bench_before,
            bench_cpu::process(std::process::id()),
            report.ok,
        );
        let server_us = bench_cpu::per_operation_us(
            server_before,
            plan.server_pid.and_then(bench_cpu::process),
            report.ok,
        );
        let pg_rpc_us = bench_cpu::per_operation_us(pg_before, bench_cpu::postgres(), report.ok);
        let (rate, p99) = rate_and_p99(&report);

        let pg_before = bench_cpu::postgres();
        let pgbench = match &url {
            Some(url) => {
                bench_pgbench::run(
                    &script,
                    url,
                    concurrency,
                    plan.duration,
                    &[("uid", &user_id)],
                )
                .await
            }
            None => Err(anyhow::anyhow!("{IDENTITY_DATABASE_URL_VAR} is not set")),
        };
        // pgbench's backends have exited; their time reaches the
        // postmaster's account once it has reaped them.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pg_after = bench_cpu::postgres();
        match pgbench {
            Ok(figures) => {
                let transactions = (figures.tps * plan.duration.as_secs_f64()) as u64;
                let pg_tx_us = bench_cpu::per_operation_us(pg_before, pg_after, transactions);
                println!(
                    "{concurrency:>5}  {rate:>9.0}  {p99:>7.2}  {:>9.0}  {:>8.3}  {:>5.2}x  {:>12}  {:>12}  {:>12}  {:>12}",
                    figures.tps,
                    figures.latency_ms,
                    rate / figures.tps,
                    micros(server_us),
                    micros(pg_rpc_us),
                    micros(pg_tx_us),
                    micros(bench_us),
                );
            }
            Err(error) => println!(
                "{concurrency:>5}  {rate:>9.0}  {p99:>7.2}  {:>9}  {:>8}  {:>6}  {:>12}  {:>12}  {:>12}  {:>12}  (pgbench: {error})",
                "-",
                "-",
                "-",
                micros(server_us),
                micros(pg_rpc_us),
                "-",
                micros(bench_us),
            ),
        }
        last = Some(report);
    }
    let _ = std::fs::remove_file(&script);
    last.context("no step ran")
}

fn micros(figure: Option<f64>) -> String {
    figure.map_or_else(|| "-".to_owned(), |us| format!("{us:.0}"))
}

fn rate_and_p99(report: &BenchReport) -> (f64, f64) {
    (
        report.ok as f64 / report.elapsed.as_secs_f64(),
        report.latency_us.value_at_quantile(0.99) as f64 / 1000.0,
    )
}
