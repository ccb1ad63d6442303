//! `fitflow`: serve, migrate, health, audit, bench.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use fitflow::bench::{BenchPlan, Scenario};
use fitflow::{Settings, Stack};

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
        service: String,
    },
    /// Audit trail operations: archive, verify, bench.
    Audit {
        #[command(subcommand)]
        command: fitflow::audit_ops::AuditCommand,
    },
    /// What a service's relays could not deliver: list and replay dead letters
    /// (FITFLOW_<SERVICE>_DATABASE_URL).
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
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
        /// Tenancy's endpoint (tenancy scenarios).
        #[arg(long, default_value = "https://127.0.0.1:50052")]
        tenancy_endpoint: String,
        /// Clients' endpoint (clients scenarios).
        #[arg(long, default_value = "https://127.0.0.1:50053")]
        clients_endpoint: String,
        /// Scheduling's endpoint (scheduling and documentation scenarios).
        #[arg(long, default_value = "https://127.0.0.1:50054")]
        scheduling_endpoint: String,
        /// Documentation's endpoint (documentation scenarios).
        #[arg(long, default_value = "https://127.0.0.1:50055")]
        documentation_endpoint: String,
        /// Billing's endpoint (billing scenarios).
        #[arg(long, default_value = "https://127.0.0.1:50056")]
        billing_endpoint: String,
        /// The concurrencies get-client measures, each beside pgbench (which
        /// opens that many connections).
        #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 32])]
        steps: Vec<usize>,
        /// Rows to seed first through FITFLOW_ADMIN_DATABASE_URL: studios
        /// (studio-search), rate versions (rate), or clients in all
        /// (get-client, client-search: up to 1,000 of the bench trainer's
        /// through the API, the rest other trainers' filler rows), or
        /// appointments in all (week), or notes in all (notes, progress);
        /// through the API: clients racing (join-class, book-slots), drafts
        /// issued (issue-invoices), sessions in the month (draft-invoice).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// compare: a bare tonic health server holding identity's certificates
        /// (deploy/bench/compare starts one).
        #[arg(long)]
        bare_endpoint: Option<String>,
        /// compare: the serving process, whose CPU time is read from /proc.
        #[arg(long)]
        server_pid: Option<u32>,
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
enum OutboxCommand {
    /// List the newest dead letters of a service (ids, kinds, reasons; no payloads).
    DeadLetters {
        /// The service.
        service: String,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Put a dead letter back into its outbox, once its cause is fixed.
    Replay {
        /// The service.
        service: String,
        /// The dead letter's id, from `dead-letters`.
        id: i64,
    },
}

#[derive(Subcommand)]
enum MigrateDirection {
    /// Apply pending migrations (the default).
    Up {
        /// Services to migrate; all implemented ones when empty.
        services: Vec<String>,
    },
    /// Revert a service's migrations newer than a version.
    Down {
        /// The service.
        service: String,
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
            let registry = fitflow::registry();
            let services = parse_services(&registry, &services)?;
            let settings = Settings::from_env(&services)?;
            let _telemetry = fitflow_telemetry::init("fitflow")?;
            let stack = Stack::start(&registry, settings).await?;
            wait_for_shutdown_signal().await;
            tracing::info!("shutting down; a second signal exits at once");
            tokio::select! {
                () = stack.shutdown() => {}
                () = wait_for_shutdown_signal() => tracing::warn!("second signal: exiting now"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { direction } => {
            let registry = fitflow::registry();
            match direction {
                None => fitflow::ops::migrate_up(&registry, &registry.names()).await?,
                Some(MigrateDirection::Up { services }) => {
                    let services = parse_services(&registry, &services)?;
                    fitflow::ops::migrate_up(&registry, &services).await?;
                }
                Some(MigrateDirection::Down {
                    service,
                    to_version,
                }) => {
                    let service = parse_services(&registry, &[service])?[0];
                    fitflow::ops::migrate_down(&registry, service, to_version).await?;
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
        Command::Outbox { command } => {
            match command {
                OutboxCommand::DeadLetters { service, limit } => {
                    for letter in fitflow::ops::dead_letters(&service, limit).await? {
                        println!(
                            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                            letter.id,
                            letter.failed_at.to_rfc3339(),
                            letter.kind,
                            letter.message_id,
                            letter.target,
                            letter.method,
                            letter.reason
                        );
                    }
                }
                OutboxCommand::Replay { service, id } => {
                    if !fitflow::ops::replay(&service, id).await? {
                        anyhow::bail!("{service} has no dead letter {id}");
                    }
                    println!("dead letter {id} is back in {service}'s outbox");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Health { service } => Ok(if fitflow::ops::health(&service).await? {
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
            tenancy_endpoint,
            clients_endpoint,
            scheduling_endpoint,
            documentation_endpoint,
            billing_endpoint,
            steps,
            seed,
            bare_endpoint,
            server_pid,
        } => {
            let plan = BenchPlan {
                scenario,
                concurrency: concurrency.max(1),
                duration: Duration::from_secs(seconds.max(1)),
                endpoint,
                tenancy_endpoint,
                clients_endpoint,
                scheduling_endpoint,
                documentation_endpoint,
                billing_endpoint,
                steps: steps.into_iter().map(|step| step.max(1)).collect(),
                seed,
                bare_endpoint,
                server_pid,
            };
            let report = fitflow::bench::run(&plan).await?;
            report.print(&plan);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The registered services named in `names` (`all`, or none, for every one).
fn parse_services(
    registry: &fitflow_platform::Registry,
    names: &[String],
) -> anyhow::Result<Vec<&'static str>> {
    if names.is_empty() || names.iter().any(|name| name == "all") {
        return Ok(registry.names());
    }
    let mut services = Vec::new();
    for name in names {
        let Some(service) = registry.get(name) else {
            if fitflow_platform::table::spec(name).is_some() {
                anyhow::bail!("the {name} service is not implemented in this build");
            }
            anyhow::bail!("unknown service {name:?}");
        };
        if !services.contains(&service.name()) {
            services.push(service.name());
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
