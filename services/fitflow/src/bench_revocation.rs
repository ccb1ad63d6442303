//! `fitflow bench --scenario revocation`: how long after a logout another
//! service refuses the session's access token. Logs a bench user in and out
//! `--seed` times (50 when 0), one session at a time; for each, polls
//! tenancy with the token from the moment the logout is sent until tenancy
//! answers UNAUTHENTICATED. Prints p50 and p99 of those delays beside the
//! design's goal (≤ 2 s); figures are printed, never asserted.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_proto::identity::{LoginRequest, RevokeSessionRequest, login_response};
use fitflow_proto::tenancy::ListStudiosRequest;
use fitflow_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::bench::{BenchPlan, BenchReport, Tally, bearer};

/// Logouts measured when `--seed` is 0.
const DEFAULT_LOGOUTS: u64 = 50;
/// How often tenancy is asked while waiting for the refusal.
const POLL_EVERY: Duration = Duration::from_millis(5);
/// A logout still accepted after this long counts as a failure.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// Why one logout could not be measured.
#[derive(Debug, thiserror::Error)]
enum MeasureError {
    /// A call failed.
    #[error("{0}")]
    Call(#[from] tonic::Status),
    /// Tenancy still accepted the token after [`GIVE_UP_AFTER`].
    #[error("the token was still accepted after {GIVE_UP_AFTER:?}")]
    NeverRefused,
    /// Tenancy refused the token before the logout.
    #[error("tenancy refused the fresh token: {0:?}")]
    RefusedEarly(Code),
}

/// Measures `--seed` logouts as the bench user `email`/`password`.
pub(crate) async fn run(
    plan: &BenchPlan,
    identity: Channel,
    tenancy: Channel,
    email: &str,
    password: &str,
) -> anyhow::Result<BenchReport> {
    let logouts = if plan.seed == 0 {
        DEFAULT_LOGOUTS
    } else {
        plan.seed
    };
    let identity = IdentityServiceClient::new(identity);
    let tenancy = TenancyServiceClient::new(tenancy);
    let started = Instant::now();
    let mut tally = Tally::new();
    for _ in 0..logouts {
        let (token, session_id) = login(&identity, email, password).await?;
        let outcome = measure(&identity, &tenancy, &token, &session_id).await;
        if let Err(error) = &outcome {
            eprintln!("a logout was not measured: {error}");
        }
        match outcome {
            Ok(delay) => tally.record_duration(delay),
            Err(error) => tally.record::<(), _>(Instant::now(), Err(error)),
        }
    }
    let report = Tally::merge(started, vec![tokio::spawn(async move { tally })]).await?;
    let ms = |q: f64| report.latency_us.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "revocation   logout → another service refuses: p50 {:.0} ms   p99 {:.0} ms   (goal: p99 ≤ 2000 ms)",
        ms(0.50),
        ms(0.99)
    );
    Ok(report)
}

async fn login(
    identity: &IdentityServiceClient<Channel>,
    email: &str,
    password: &str,
) -> anyhow::Result<(String, String)> {
    let tokens = identity
        .clone()
        .login(LoginRequest {
            email: email.to_owned(),
            password: password.to_owned(),
            ..Default::default()
        })
        .await
        .context("logging in the bench user")?
        .into_inner()
        .result
        .and_then(|result| match result {
            login_response::Result::Tokens(tokens) => Some(tokens),
            login_response::Result::MfaChallenge(_) => None,
        })
        .context("login returned no tokens")?;
    Ok((tokens.access_token, tokens.session_id))
}

/// Logs the session out and returns how long until tenancy refused its
/// token, counted from just before the logout was sent.
async fn measure(
    identity: &IdentityServiceClient<Channel>,
    tenancy: &TenancyServiceClient<Channel>,
    token: &str,
    session_id: &str,
) -> Result<Duration, MeasureError> {
    if let Some(code) = tenancy_refuses(tenancy, token).await? {
        return Err(MeasureError::RefusedEarly(code));
    }
    let sent = Instant::now();
    identity
        .clone()
        .revoke_session(bearer(
            RevokeSessionRequest {
                session_id: session_id.to_owned(),
            },
            token,
        )?)
        .await?;
    while sent.elapsed() < GIVE_UP_AFTER {
        if tenancy_refuses(tenancy, token).await? == Some(Code::Unauthenticated) {
            return Ok(sent.elapsed());
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    Err(MeasureError::NeverRefused)
}

/// `None` while tenancy accepts `token`, else the refusal's code; a failure
/// that is not about the token is an error.
async fn tenancy_refuses(
    tenancy: &TenancyServiceClient<Channel>,
    token: &str,
) -> Result<Option<Code>, MeasureError> {
    let request = bearer(
        ListStudiosRequest {
            page_size: 1,
            ..Default::default()
        },
        token,
    )?;
    match tenancy.clone().list_studios(request).await {
        Ok(_) => Ok(None),
        Err(status) if status.code() == Code::Unauthenticated => Ok(Some(status.code())),
        Err(status) => Err(status.into()),
    }
}
