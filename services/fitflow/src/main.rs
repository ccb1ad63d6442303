//! `fitflow`: serve, migrate, health, audit, bench.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use fitflow::bench::{BenchPlan, Scenario};
use fitflow::{ServiceName, Settings, Stack};

#[derive(Parser)]
#[command(
    name = "fitflow",
    version,
    about = "FitFlow back end: one binary for every service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve services, each on its own mTLS port (`all` for every implemented one).
    Serve {
        /// Service names, or `all`.
        #[arg(required = true)]
        services: Vec<String>,
    },
    /// Provision roles and schemas and apply migrations (FITFLOW_ADMIN_DATABASE_URL).
    Migrate {
        #[command(subcommand)]
        direction: Option<MigrateDirection>,
    },
    /// Identity operator commands (FITFLOW_IDENTITY_DATABASE_URL).
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
    /// Exit 0 when the service reports SERVING over mTLS (for Kubernetes probes).
    Health {
        /// The service to ask.
        service: ServiceName,
    },
    /// Audit trail operations: archive, verify, bench.
    Audit {
        #[command(subcommand)]
        command: fitflow::audit_ops::AuditCommand,
    },
    /// Measure throughput and latency against a running stack.
    Bench {
        /// What to measure.
        #[arg(long, value_enum, default_value = "health")]
        scenario: Scenario,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds to measure.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Identity's endpoint.
        #[arg(long, default_value = "https://127.0.0.1:50051")]
        endpoint: String,
    },
}

#[derive(Subcommand)]
enum IdentityCommand {
    /// Grant the operator role to an existing account (bootstraps the first operator).
    GrantOperator {
        /// The account's email.
        email: String,
    },
}

#[derive(Subcommand)]
enum MigrateDirection {
    /// Apply pending migrations (the default).
    Up {
        /// Services to migrate; all implemented ones when empty.
        services: Vec<ServiceName>,
    },
    /// Revert a service's migrations newer than a version.
    Down {
        /// The service.
        service: ServiceName,
        /// Keep migrations up to this version (0 reverts all).
        #[arg(long = "to")]
        to_version: i64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("fitflow: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("fitflow: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { services } => {
            let services = parse_services(&services)?;
            let settings = Settings::from_env(&services)?;
            let _telemetry = fitflow_telemetry::init("fitflow")?;
            let stack = Stack::start(settings).await?;
            wait_for_shutdown_signal().await;
            tracing::info!("shutting down; a second signal exits at once");
            tokio::select! {
                () = stack.shutdown() => {}
                () = wait_for_shutdown_signal() => tracing::warn!("second signal: exiting now"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { direction } => {
            match direction {
                None => fitflow::ops::migrate_up(&ServiceName::IMPLEMENTED).await?,
                Some(MigrateDirection::Up { services }) if services.is_empty() => {
                    fitflow::ops::migrate_up(&ServiceName::IMPLEMENTED).await?;
                }
                Some(MigrateDirection::Up { services }) => {
                    fitflow::ops::migrate_up(&services).await?
                }
                Some(MigrateDirection::Down {
                    service,
                    to_version,
                }) => {
                    fitflow::ops::migrate_down(service, to_version).await?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Identity {
            command: IdentityCommand::GrantOperator { email },
        } => {
            let user_id = fitflow::ops::grant_operator(&email).await?;
            println!("granted operator to user {user_id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Health { service } => Ok(if fitflow::ops::health(service).await? {
            ExitCode::SUCCESS
        } else {
            eprintln!("fitflow: {service} is not serving");
            ExitCode::FAILURE
        }),
        Command::Audit { command } => Ok(if fitflow::audit_ops::run(command).await? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        Command::Bench {
            scenario,
            concurrency,
            seconds,
            endpoint,
        } => {
            let plan = BenchPlan {
                scenario,
                concurrency: concurrency.max(1),
                duration: Duration::from_secs(seconds.max(1)),
                endpoint,
            };
            let report = fitflow::bench::run(&plan).await?;
            report.print(&plan);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_services(names: &[String]) -> anyhow::Result<Vec<ServiceName>> {
    if names.iter().any(|name| name == "all") {
        return Ok(ServiceName::IMPLEMENTED.to_vec());
    }
    let mut services = Vec::new();
    for name in names {
        let service = <ServiceName as clap::ValueEnum>::from_str(name, true)
            .map_err(|_| anyhow::anyhow!("unknown service {name:?}"))?;
        if !service.is_implemented() {
            anyhow::bail!("the {service} service is not implemented in this build");
        }
        if !services.contains(&service) {
            services.push(service);
        }
    }
    Ok(services)
}

async fn wait_for_shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
