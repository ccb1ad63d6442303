//! Floods of password work (issue 8, item 5): hundreds of concurrent calls
//! that each ask identity for an argon2id hash. The checks are of the
//! mechanism, never the clock: beyond the bounded queue calls are refused
//! with RESOURCE_EXHAUSTED and a retry hint, another user is served
//! throughout (a request that held a pool connection while hashing would
//! starve them into DATABASE_UNAVAILABLE), and resident memory stays under a
//! stated bound. `fitflow bench --scenario flood` prints the bystander's
//! latency during the same floods.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fitflow_e2e::{IDENTITY, PASSWORD, Sandbox, bearer};
use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_proto::identity::{ChangePasswordRequest, GetCurrentUserRequest, LoginRequest};
use tonic::Code;
use tonic::transport::Channel;

use crate::identity_support::{reason, retry_delay};

/// The most this process's resident memory may grow during a flood
/// (measured: 1 MiB). Each argon2id hash needs 19 MiB; the hashing threads
/// keep theirs from the first hash on, so a flood adds none. Without the
/// gate, 500 concurrent logins took identity from 16 MiB to 4 GiB; with the
/// gate but memory allocated per hash, to about 390 MiB.
const FLOOD_MEMORY_BOUND_MIB: u64 = 64;

/// What a flood of `callers` concurrent calls was answered, by code and
/// reason, and what happened meanwhile to a bystander.
struct Outcome {
    answers: HashMap<(Code, String), u64>,
    retry_hint_missing: u64,
    bystander_ok: u64,
    bystander_failures: Vec<Code>,
    memory_growth_mib: u64,
}

impl Outcome {
    /// Every refusal says when to retry, the bystander was served every
    /// time, and memory stayed under [`FLOOD_MEMORY_BOUND_MIB`].
    fn assert_bounded_and_bystander_served(&self) {
        assert_eq!(
            self.retry_hint_missing, 0,
            "every refusal says when to retry"
        );
        assert!(self.bystander_ok > 0);
        assert!(
            self.bystander_failures.is_empty(),
            "the bystander was refused: {:?}",
            self.bystander_failures
        );
        assert!(
            self.memory_growth_mib < FLOOD_MEMORY_BOUND_MIB,
            "resident memory grew {} MiB",
            self.memory_growth_mib
        );
    }
}

/// Runs `callers` copies of `call` at once (each once), spread over
/// connections of 100 callers, while the bystander reads their own account
/// one call at a time and this process's resident memory is sampled.
async fn flood<F, Fut>(sandbox: &Sandbox, bystander_token: &str, callers: usize, call: F) -> Outcome
where
    F: Fn(IdentityServiceClient<Channel>, usize) -> Fut,
    Fut: Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let baseline = resident_mib();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let done = Arc::clone(&done);
        async move {
            let mut peak = resident_mib();
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(resident_mib());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        }
    });
    let bystander = tokio::spawn({
        let done = Arc::clone(&done);
        let mut identity = sandbox.identity();
        let token = bystander_token.to_owned();
        async move {
            let (mut ok, mut failures) = (0_u64, Vec::new());
            // At least one read, however quickly the flood is answered.
            loop {
                match identity
                    .get_current_user(bearer(GetCurrentUserRequest {}, &token))
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(status) => failures.push(status.code()),
                }
                if done.load(Ordering::Relaxed) {
                    break (ok, failures);
                }
            }
        }
    });
    let clients: Vec<_> = (0..callers.div_ceil(100))
        .map(|_| IdentityServiceClient::new(sandbox.channel(IDENTITY, "gateway")))
        .collect();
    let calls: Vec<_> = (0..callers)
        .map(|index| tokio::spawn(call(clients[index / 100].clone(), index)))
        .collect();
    let mut answers = HashMap::new();
    let mut retry_hint_missing = 0;
    for call in calls {
        let (code, why) = match call.await.expect("the call ran") {
            Ok(()) => (Code::Ok, String::new()),
            Err(status) => {
                if status.code() == Code::ResourceExhausted && retry_delay(&status).is_none() {
                    retry_hint_missing += 1;
                }
                (status.code(), reason(&status))
            }
        };
        *answers.entry((code, why)).or_insert(0_u64) += 1;
    }
    done.store(true, Ordering::Relaxed);
    let (bystander_ok, bystander_failures) = bystander.await.expect("the bystander ran");
    let peak = sampler.await.expect("the sampler ran");
    Outcome {
        answers,
        retry_hint_missing,
        bystander_ok,
        bystander_failures,
        memory_growth_mib: peak.saturating_sub(baseline),
    }
}

/// This process's resident memory in MiB (the stack runs in-process).
fn resident_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|number| number.trim().parse().ok())
        .expect("a VmRSS line");
    kib / 1024
}

/// A random address in 198.18.0.0/15, the benchmarking range: a botnet's
/// spread, so the per-address limit never stops the flood before the hash.
fn botnet_address(index: usize) -> String {
    format!(
        "198.{}.{}.{}",
        18 + index / 65_536 % 2,
        index / 256 % 256,
        index % 256
    )
}

#[tokio::test]
async fn five_hundred_concurrent_unknown_email_logins_are_bounded_and_other_users_are_served() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Bystander").await;
    let bystander = sandbox.login(&email).await.access_token;

    let outcome = flood(
        &sandbox,
        &bystander,
        500,
        |mut identity, index| async move {
            identity
                .login(LoginRequest {
                    email: format!("flood-{index}-{}@example.com", uuid::Uuid::new_v4()),
                    password: PASSWORD.into(),
                    client_address: botnet_address(index),
                    user_agent: "flood".into(),
                })
                .await
                .map(|_| ())
        },
    )
    .await;

    for ((code, why), count) in &outcome.answers {
        assert!(
            matches!(
                (code, why.as_str()),
                (Code::Unauthenticated, "INVALID_CREDENTIALS")
                    | (Code::ResourceExhausted, "PASSWORD_HASHING_BUSY")
            ),
            "{count} logins answered {code:?} {why}"
        );
    }
    let refused = outcome
        .answers
        .get(&(Code::ResourceExhausted, "PASSWORD_HASHING_BUSY".into()))
        .copied()
        .unwrap_or(0);
    assert!(
        refused > 0,
        "500 logins at once overflow the hashing queue: {:?}",
        outcome.answers
    );
    outcome.assert_bounded_and_bystander_served();
    stack.shutdown().await;
}

#[tokio::test]
async fn four_hundred_concurrent_wrong_password_changes_change_nothing_and_other_users_are_served()
{
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, bystander_email) = sandbox.register("Bystander").await;
    let bystander = sandbox.login(&bystander_email).await.access_token;
    let (attacker_user, attacker_email) = sandbox.register("Stolen token").await;
    let stolen = sandbox.login(&attacker_email).await.access_token;
    let admin = sandbox.db.admin_pool().await;
    let hash_of = async || -> String {
        sqlx::query_scalar("SELECT password_hash FROM identity.users WHERE id = $1::uuid")
            .bind(&attacker_user.id)
            .fetch_one(&admin)
            .await
            .expect("the account's hash")
    };
    let hash_before = hash_of().await;

    let outcome = flood(&sandbox, &bystander, 400, |mut identity, _| {
        let stolen = stolen.clone();
        async move {
            let request = ChangePasswordRequest {
                current_password: "not the current password".into(),
                new_password: "a brand new password for me".into(),
            };
            identity
                .change_password(bearer(request, &stolen))
                .await
                .map(|_| ())
        }
    })
    .await;

    for ((code, why), count) in &outcome.answers {
        assert!(
            matches!(
                (code, why.as_str()),
                (Code::Unauthenticated, "INVALID_CREDENTIALS")
                    | (Code::ResourceExhausted, "PASSWORD_HASHING_BUSY")
                    | (Code::ResourceExhausted, "LOGIN_RATE_LIMITED")
            ),
            "{count} changes answered {code:?} {why}"
        );
    }
    outcome.assert_bounded_and_bystander_served();
    assert_eq!(hash_of().await, hash_before, "the password is unchanged");
    // The wrong guesses counted toward the account's login limit.
    let locked = sandbox
        .try_login(&attacker_email, PASSWORD, "203.0.113.77")
        .await
        .expect_err("the account is locked");
    assert_eq!(reason(&locked), "LOGIN_RATE_LIMITED");
    stack.shutdown().await;
}
