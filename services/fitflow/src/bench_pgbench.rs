//! pgbench, the reference the benches compare an RPC with: the same SQL,
//! replayed by PostgreSQL's own client at the same concurrency.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

/// What one pgbench run reported.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PgbenchFigures {
    /// Transactions per second.
    pub(crate) tps: f64,
    /// Mean latency of a transaction, in milliseconds.
    pub(crate) latency_ms: f64,
}

/// Runs `script` with `-M prepared` at `concurrency` connections for
/// `duration` against `url`; `defines` become pgbench variables (`-D`), sent
/// as parameters in prepared mode, so they need no SQL quoting.
pub(crate) async fn run(
    script: &Path,
    url: &str,
    concurrency: usize,
    duration: Duration,
    defines: &[(&str, &str)],
) -> anyhow::Result<PgbenchFigures> {
    let mut command = tokio::process::Command::new("pgbench");
    command
        .arg("-n")
        .args(["-M", "prepared"])
        .arg("-f")
        .arg(script)
        .args(["-c", &concurrency.to_string()])
        .args(["-j", &concurrency.min(4).to_string()])
        .args(["-T", &duration.as_secs().max(1).to_string()]);
    for (name, value) in defines {
        command.args(["-D", &format!("{name}={value}")]);
    }
    let output = command
        .arg(url)
        .output()
        .await
        .context("pgbench is not installed (it comes with PostgreSQL's server package)")?;
    if !output.status.success() {
        anyhow::bail!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        );
    }
    parse(&String::from_utf8_lossy(&output.stdout))
}

/// The figures in pgbench's report.
fn parse(stdout: &str) -> anyhow::Result<PgbenchFigures> {
    let figure = |prefix: &str| {
        stdout.lines().find_map(|line| {
            line.strip_prefix(prefix)?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
    };
    Ok(PgbenchFigures {
        tps: figure("tps = ").context("pgbench printed no tps")?,
        latency_ms: figure("latency average = ").unwrap_or(f64::NAN),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_yields_throughput_and_mean_latency() {
        let report = "transaction type: x.sql\nnumber of clients: 16\n\
                      latency average = 0.853 ms\ninitial connection time = 9.1 ms\n\
                      tps = 18757.123456 (without initial connection time)\n";
        let figures = parse(report).unwrap();
        assert!((figures.tps - 18_757.123_456).abs() < 1e-6);
        assert!((figures.latency_ms - 0.853).abs() < 1e-9);
    }

    #[test]
    fn a_report_without_tps_is_an_error() {
        assert!(parse("latency average = 1 ms\n").is_err());
    }
}
