//! `fitflow bench --scenario flood`: what an attacker's flood of password
//! work does to everyone else. Beside each flood a bystander — another
//! signed-in user — calls `GetCurrentUser` back to back (`--concurrency` in
//! flight); the bench prints the bystander's latency (the goal is p99 under
//! 100 ms), how identity answered the flood, and identity's resident memory
//! (the peak of `VmRSS`, sampled every 50 ms, when `--server-pid` names the
//! serving process). Each phase lasts `--seconds`. Figures are printed,
//! never asserted.
//!
//! The floods, each from a fixed number of callers that repeat as soon as
//! they are answered, spread over several connections as a botnet would:
//! - 500 logins with unknown emails from random addresses in the
//!   benchmarking range 198.18.0.0/15, so neither the per-account nor the
//!   per-address limit stops them before the decoy hash;
//! - 200 password resets: requests for unknown emails and forged reset codes;
//! - 400 password changes with a wrong current password by one signed-in
//!   user (a stolen access token).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_proto::identity::{
    ChangePasswordRequest, GetCurrentUserRequest, LoginRequest, RequestPasswordResetRequest,
    ResetPasswordRequest,
};
use tonic::transport::Channel;

use crate::bench::{BenchPlan, BenchReport, bearer, closed_loop};

/// Callers per connection, below the server's per-connection stream limit.
const CALLERS_PER_CONNECTION: usize = 100;
/// How often identity's resident memory is read during a phase.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// The bystander's latency goal during a flood.
const GOAL_P99_MS: f64 = 100.0;

/// One call a flooding caller repeats.
type Call = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = tonic::Code> + Send>> + Send + Sync>;

/// The users a flood run needs: a bystander and an attacker, each signed in.
pub(crate) struct Users {
    /// The bystander's access token.
    pub(crate) bystander: String,
    /// The attacker's access token (its password is not what they send).
    pub(crate) attacker: String,
}

/// Runs the quiet baseline and the three floods; returns the bystander's
/// figures of the last flood (the others are printed).
pub(crate) async fn run(
    plan: &BenchPlan,
    connect: impl Fn() -> anyhow::Result<Channel>,
    users: Users,
) -> anyhow::Result<BenchReport> {
    println!(
        "fitflow bench flood: {} s per phase; bystander GetCurrentUser at {} in flight (goal p99 < {GOAL_P99_MS} ms); identity {}",
        plan.duration.as_secs(),
        plan.concurrency,
        plan.server_pid.map_or_else(
            || "memory not read (no --server-pid)".to_owned(),
            |pid| format!("pid {pid}")
        )
    );
    println!(
        "{:<34}  {:>8}  {:>8}  {:>8}  {:>9}  {:>9}  flood answers",
        "phase", "ok/s", "p50 ms", "p99 ms", "RSS MiB", "peak MiB"
    );
    let bystander = connect()?;
    phase(plan, "quiet (no flood)", &bystander, &users, 0, None).await?;
    let logins = login_flood(&connect)?;
    phase(
        plan,
        "500 unknown-email logins",
        &bystander,
        &users,
        500,
        Some(logins),
    )
    .await?;
    let resets = reset_flood(&connect)?;
    phase(
        plan,
        "200 password resets",
        &bystander,
        &users,
        200,
        Some(resets),
    )
    .await?;
    let changes = change_flood(&connect, &users.attacker)?;
    phase(
        plan,
        "400 wrong-password changes",
        &bystander,
        &users,
        400,
        Some(changes),
    )
    .await
}

/// One phase: the bystander measured for the plan's duration while
/// `callers` repeat `flood` (none in the quiet phase).
async fn phase(
    plan: &BenchPlan,
    name: &str,
    bystander: &Channel,
    users: &Users,
    callers: usize,
    flood: Option<Vec<Call>>,
) -> anyhow::Result<BenchReport> {
    let memory_before = plan.server_pid.and_then(resident_mib);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = plan
        .server_pid
        .map(|pid| tokio::spawn(peak_resident(pid, Arc::clone(&stop))));
    let mut flooders = Vec::new();
    if let Some(calls) = &flood {
        for index in 0..callers {
            let call = Arc::clone(&calls[index % calls.len()]);
            let stop = Arc::clone(&stop);
            flooders.push(tokio::spawn(async move {
                let mut answers = BTreeMap::<String, u64>::new();
                while !stop.load(Ordering::Relaxed) {
                    let code = call().await;
                    *answers.entry(format!("{code:?}")).or_default() += 1;
                }
                answers
            }));
        }
    }
    let token = users.bystander.clone();
    let channel = bystander.clone();
    let report = closed_loop(plan.concurrency, plan.duration, move || {
        let mut client = IdentityServiceClient::new(channel.clone());
        let token = token.clone();
        Box::pin(async move {
            client
                .get_current_user(bearer(GetCurrentUserRequest {}, &token)?)
                .await
                .map(|_| ())
        })
    })
    .await?;
    stop.store(true, Ordering::Relaxed);
    let mut answers = BTreeMap::<String, u64>::new();
    for flooder in flooders {
        for (code, count) in flooder.await? {
            *answers.entry(code).or_default() += count;
        }
    }
    let peak = match sampler {
        Some(sampler) => sampler.await?,
        None => None,
    };
    let mib = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let answers = if answers.is_empty() {
        "-".to_owned()
    } else {
        answers
            .iter()
            .map(|(code, count)| format!("{code} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ms = |q: f64| report.latency_us.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{name:<34}  {:>8.0}  {:>8.2}  {:>8.2}  {:>9}  {:>9}  {answers}{}",
        report.ok as f64 / report.elapsed.as_secs_f64(),
        ms(0.50),
        ms(0.99),
        mib(memory_before),
        mib(peak),
        if report.errors > 0 {
            format!("; bystander failed {} times", report.errors)
        } else {
            String::new()
        }
    );
    Ok(report)
}

/// Unknown-email logins from random benchmarking-range addresses.
fn login_flood(connect: &impl Fn() -> anyhow::Result<Channel>) -> anyhow::Result<Vec<Call>> {
    spread(connect, 500, |client| {
        Arc::new(move || {
            let mut client = client.clone();
            Box::pin(async move {
                let request = LoginRequest {
                    email: format!("flood-{}@example.invalid", uuid::Uuid::new_v4()),
                    password: "a guess that is long enough".into(),
                    client_address: benchmarking_address(),
                    user_agent: "fitflow bench flood".into(),
                };
                code_of(client.login(request).await)
            })
        })
    })
}

/// Reset requests for unknown emails and forged reset codes, alternately.
fn reset_flood(connect: &impl Fn() -> anyhow::Result<Channel>) -> anyhow::Result<Vec<Call>> {
    let mut turn = 0_usize;
    spread(connect, 200, move |client| {
        turn += 1;
        if turn.is_multiple_of(2) {
            Arc::new(move || {
                let mut client = client.clone();
                Box::pin(async move {
                    let request = RequestPasswordResetRequest {
                        email: format!("flood-{}@example.invalid", uuid::Uuid::new_v4()),
                    };
                    code_of(client.request_password_reset(request).await)
                })
            })
        } else {
            Arc::new(move || {
                let mut client = client.clone();
                Box::pin(async move {
                    let request = ResetPasswordRequest {
                        reset_token: uuid::Uuid::new_v4().simple().to_string(),
                        new_password: "a new password that is long enough".into(),
                    };
                    code_of(client.reset_password(request).await)
                })
            })
        }
    })
}

/// Password changes with a wrong current password, as the attacker.
fn change_flood(
    connect: &impl Fn() -> anyhow::Result<Channel>,
    token: &str,
) -> anyhow::Result<Vec<Call>> {
    let token = token.to_owned();
    spread(connect, 400, move |client| {
        let token = token.clone();
        Arc::new(move || {
            let mut client = client.clone();
            let token = token.clone();
            Box::pin(async move {
                let request = ChangePasswordRequest {
                    current_password: "not the current password".into(),
                    new_password: "a new password that is long enough".into(),
                };
                match bearer(request, &token) {
                    Ok(request) => code_of(client.change_password(request).await),
                    Err(status) => status.code(),
                }
            })
        })
    })
}

/// One call per connection for `callers` callers, spread over as many
/// connections as keep each under [`CALLERS_PER_CONNECTION`].
fn spread(
    connect: &impl Fn() -> anyhow::Result<Channel>,
    callers: usize,
    mut call_on: impl FnMut(IdentityServiceClient<Channel>) -> Call,
) -> anyhow::Result<Vec<Call>> {
    let connections = callers.div_ceil(CALLERS_PER_CONNECTION).max(1);
    (0..connections)
        .map(|_| Ok(call_on(IdentityServiceClient::new(connect()?))))
        .collect()
}

fn code_of<T>(outcome: Result<T, tonic::Status>) -> tonic::Code {
    outcome.map_or_else(|status| status.code(), |_| tonic::Code::Ok)
}

/// A random address in 198.18.0.0/15 (RFC 2544's benchmarking range).
fn benchmarking_address() -> String {
    let random = uuid::Uuid::new_v4();
    let bytes = random.as_bytes();
    format!("198.{}.{}.{}", 18 + (bytes[0] & 1), bytes[1], bytes[2])
}

/// The highest `VmRSS` of `pid` seen until `stop` is set.
async fn peak_resident(pid: u32, stop: Arc<AtomicBool>) -> Option<u64> {
    let mut peak = None;
    while !stop.load(Ordering::Relaxed) {
        if let Some(now) = resident_mib(pid) {
            peak = Some(peak.map_or(now, |seen: u64| seen.max(now)));
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    peak
}

/// `pid`'s resident memory in MiB, from `/proc/<pid>/status`.
fn resident_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss_kib(&status).map(|kib| kib / 1024)
}

/// The `VmRSS:` line of a `/proc/<pid>/status` document, in KiB.
pub(crate) fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|number| number.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_the_vm_rss_line() {
        let status = "Name:\tfitflow\nVmPeak:\t 1234 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss_kib(status), Some(20_480));
        assert_eq!(parse_vm_rss_kib("Name:\tkthreadd\n"), None);
        assert_eq!(parse_vm_rss_kib("VmRSS:\t lots kB\n"), None);
    }

    #[test]
    fn flood_addresses_stay_in_the_benchmarking_range() {
        for _ in 0..1000 {
            let address: std::net::Ipv4Addr = benchmarking_address().parse().unwrap();
            let [first, second, ..] = address.octets();
            assert_eq!(first, 198);
            assert!(second == 18 || second == 19, "{address}");
        }
    }
}
