//! `fitflow audit …`: operator commands for the audit trail (archive
//! partitions past retention, verify the hash chains) and the audit
//! benchmark, which prints figures and asserts nothing.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use fitflow_audit::retention::{self, ArchiveOptions, DEFAULT_RETENTION_MONTHS};
use fitflow_auth::{Principal, Role};
use fitflow_crypto::VaultSettings;
use fitflow_outbox::{Action, AuditEventBuilder, Relay};
use fitflow_proto::audit::audit_ingest_service_client::AuditIngestServiceClient;
use fitflow_proto::audit::audit_service_server::AuditService as _;
use fitflow_proto::audit::{EventFilter, ListEventsRequest, Log};
use fitflow_server::config;
use fitflow_server::tls::TlsPaths;
use hdrhistogram::Histogram;
use prost::Message as _;
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Settings, Stack};
use fitflow_platform::settings::{
    ADMIN_DATABASE_URL_VAR, Served, VAULT_ADDR_VAR, VAULT_TOKEN_VAR, database_url,
    require_tls_files, tls_dir,
};

/// `fitflow audit` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Export month partitions past retention to checksummed CSV files, verify
    /// them, then detach and drop them (FITFLOW_ADMIN_DATABASE_URL).
    Archive {
        /// Only list what would be archived; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Where the archive files go.
        #[arg(long, env = "FITFLOW_AUDIT_ARCHIVE_DIR")]
        dir: PathBuf,
        /// Partitions whose month ended this many months ago are archived (default: 6 years).
        #[arg(long, env = "FITFLOW_AUDIT_RETENTION_MONTHS", default_value_t = DEFAULT_RETENTION_MONTHS)]
        retention_months: u32,
    },
    /// Recompute the hash chains and report the first broken link of each
    /// (FITFLOW_AUDIT_DATABASE_URL); exits 1 when one is broken.
    Verify {
        /// Only this source service's chain.
        #[arg(long)]
        source: Option<String>,
    },
    /// Measure ingestion from an outbox to durable storage, and "who viewed
    /// client X" on a large access log, in a scratch database created (and
    /// dropped) on FITFLOW_ADMIN_DATABASE_URL's server; needs FITFLOW_TLS_DIR.
    Bench {
        /// Events relayed from the outbox.
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        /// Rows generated in the access log.
        #[arg(long, default_value_t = 1_000_000)]
        access_rows: u64,
        /// Distinct clients the generated views are about.
        #[arg(long, default_value_t = 20_000)]
        clients: u64,
        /// Queries timed per scenario.
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
        /// Keep the scratch database for inspection.
        #[arg(long)]
        keep_database: bool,
    },
}

/// Runs an `audit` subcommand; returns whether it succeeded.
pub async fn run(command: AuditCommand) -> anyhow::Result<bool> {
    match command {
        AuditCommand::Archive {
            dry_run,
            dir,
            retention_months,
        } => archive(dry_run, dir, retention_months).await,
        AuditCommand::Verify { source } => verify(source.as_deref()).await,
        AuditCommand::Bench {
            events,
            access_rows,
            clients,
            queries,
            keep_database,
        } => {
            let plan = BenchPlan {
                events: events.max(1),
                access_rows: access_rows.max(1),
                clients: clients.max(1),
                queries: queries.max(1),
            };
            bench(&plan, keep_database).await?;
            Ok(true)
        }
    }
}

async fn archive(dry_run: bool, directory: PathBuf, retention_months: u32) -> anyhow::Result<bool> {
    let admin_url = database_url(ADMIN_DATABASE_URL_VAR)?
        .expose_secret()
        .to_owned();
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect(&admin_url)
        .await
        .context("cannot connect with FITFLOW_ADMIN_DATABASE_URL")?;
    let options = ArchiveOptions {
        directory,
        retention_months,
        now: Utc::now(),
        dry_run,
    };
    let partitions = retention::archive_expired(&admin, &options).await?;
    if partitions.is_empty() {
        println!("no audit partition is older than {retention_months} months");
    }
    for partition in &partitions {
        if partition.dropped {
            println!(
                "archived  {:<24} {:>10} rows  {}  sha256 {}",
                partition.partition,
                partition.rows,
                partition.file.display(),
                partition.sha256
            );
        } else {
            println!(
                "would archive  {:<24} {:>10} rows  to {}",
                partition.partition,
                partition.rows,
                partition.file.display()
            );
        }
    }
    Ok(true)
}

async fn verify(source: Option<&str>) -> anyhow::Result<bool> {
    let url = database_url(&fitflow_platform::settings::env_var(
        fitflow_audit::SCHEMA,
        "DATABASE_URL",
    ))?;
    let pool = fitflow_db::connect(&url, fitflow_audit::SCHEMA, 2).await?;
    let reports = fitflow_audit::verify_chains(&pool, source).await?;
    if reports.is_empty() {
        println!("no audit chain has any event yet");
    }
    let mut intact = true;
    for report in &reports {
        match report.first_break {
            None => println!(
                "{:<16} intact  {} links",
                report.chain, report.verified_links
            ),
            Some(broken) => {
                intact = false;
                println!(
                    "{:<16} BROKEN at sequence {} ({:?}){}  after {} intact links",
                    report.chain,
                    broken.sequence,
                    broken.kind,
                    report
                        .broken_event_id
                        .map(|id| format!(", event {id}"))
                        .unwrap_or_default(),
                    report.verified_links
                );
            }
        }
    }
    Ok(intact)
}

/// What `fitflow audit bench` generates and times.
#[derive(Debug, Clone)]
struct BenchPlan {
    events: usize,
    access_rows: u64,
    clients: u64,
    queries: usize,
}

/// A scratch database on the admin URL's server, dropped on request.
struct ScratchDatabase {
    admin_url: String,
    name: String,
}

impl ScratchDatabase {
    async fn create(admin_url: String) -> anyhow::Result<Self> {
        let name = format!("fitflow_bench_{}", Uuid::new_v4().simple());
        fitflow_audit::bench::create_database(&admin_url, &name).await?;
        Ok(Self { admin_url, name })
    }

    /// The admin URL pointed at this database, as `user` when given.
    fn url(&self, user: Option<&str>) -> anyhow::Result<SecretString> {
        let (scheme, rest) = self
            .admin_url
            .split_once("://")
            .context("FITFLOW_ADMIN_DATABASE_URL is not a URL")?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let query = path.split_once('?').map(|(_, query)| query);
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let authority = match user {
            Some(user) => format!("{user}@{host}"),
            None => authority.to_owned(),
        };
        let mut url = format!("{scheme}://{authority}/{}", self.name);
        if let Some(query) = query {
            url.push('?');
            url.push_str(query);
        }
        Ok(SecretString::from(url))
    }

    async fn drop_database(self) -> anyhow::Result<()> {
        fitflow_audit::bench::drop_database(&self.admin_url, &self.name).await?;
        Ok(())
    }
}

async fn bench(plan: &BenchPlan, keep_database: bool) -> anyhow::Result<()> {
    fitflow_server::install_crypto_provider();
    let admin_url = config::required(ADMIN_DATABASE_URL_VAR)?;
    let tls = tls_dir()?;
    let source_tls = require_tls_files(&tls, fitflow_identity::SCHEMA)?;
    require_tls_files(&tls, fitflow_audit::SCHEMA)?;
    let scratch = ScratchDatabase::create(admin_url).await?;
    println!("scratch database {}", scratch.name);
    let outcome = bench_in(plan, &scratch, tls, &source_tls).await;
    if keep_database {
        println!("kept {}", scratch.name);
    } else {
        scratch.drop_database().await?;
    }
    outcome
}

async fn bench_in(
    plan: &BenchPlan,
    scratch: &ScratchDatabase,
    tls_dir: PathBuf,
    source_tls: &TlsPaths,
) -> anyhow::Result<()> {
    let admin_url = scratch.url(None)?;
    let registry = crate::registry();
    for service in registry.services() {
        fitflow_db::provision_schema(&admin_url, service.name()).await?;
        fitflow_db::migrate_up(&admin_url, service.name(), service.migrations()).await?;
    }
    let audit_url = scratch.url(Some("fitflow_audit"))?;
    let source_url = scratch.url(Some("fitflow_identity"))?;

    // The real audit server, over mTLS, on a free port.
    let vault = VaultSettings {
        addr: config::optional(VAULT_ADDR_VAR)?
            .unwrap_or_else(|| "http://127.0.0.1:8200".to_owned()),
        token: SecretString::from(config::optional(VAULT_TOKEN_VAR)?.unwrap_or_default()),
    };
    let settings = Settings {
        pools: fitflow_platform::settings::PoolSizes::default(),
        tls_dir,
        vault,
        served: vec![Served {
            name: fitflow_audit::SCHEMA,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            database_url: audit_url.clone(),
            system_database_url: scratch.url(Some("fitflow_audit_system"))?,
        }],
        // Audit calls only identity (for token keys, lazily); no query here needs a token.
        endpoints: fitflow_platform::services_table()
            .iter()
            .map(|spec| {
                (
                    spec.name.as_str(),
                    format!("https://127.0.0.1:{}", spec.port),
                )
            })
            .collect::<BTreeMap<_, _>>(),
        // Audit sends no mail.
        mail: None,
    };
    let stack = Stack::start(&registry, settings).await?;
    let audit_addr = stack.addrs[fitflow_audit::SCHEMA];

    let ingestion = bench_ingestion(plan, &source_url, source_tls, audit_addr).await;
    stack.shutdown().await;
    let (events, elapsed) = ingestion?;
    println!();
    println!(
        "ingestion: outbox -> relay -> Ingest over mTLS -> audit_log (hash-chained, idempotent)"
    );
    println!("  events       {events}");
    println!("  elapsed      {:.2} s", elapsed.as_secs_f64());
    println!(
        "  throughput   {:.0} events/s",
        events as f64 / elapsed.as_secs_f64()
    );

    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect(admin_url.expose_secret())
        .await?;
    let audit_pool = fitflow_db::connect(&audit_url, fitflow_audit::SCHEMA, 8).await?;
    let generated = Instant::now();
    fitflow_audit::bench::generate_access_log(
        &admin,
        &audit_pool,
        plan.access_rows,
        plan.clients,
        Utc::now(),
    )
    .await?;
    println!();
    println!(
        "access log: {} rows over 24 monthly partitions, {} clients, generated in {:.1} s",
        plan.access_rows,
        plan.clients,
        generated.elapsed().as_secs_f64()
    );
    let query = fitflow_audit::AuditQuery::new(audit_pool);
    for (label, last_days) in [
        ("who viewed client X (all time)", None),
        ("who viewed client X (last 30 days)", Some(30)),
    ] {
        let latency = time_who_viewed(plan, &query, last_days).await?;
        let ms = |quantile: f64| latency.value_at_quantile(quantile) as f64 / 1000.0;
        println!("  {label}: {} queries, first page of 50", latency.len());
        println!(
            "    p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
            ms(0.50),
            ms(0.99),
            latency.max() as f64 / 1000.0
        );
    }
    Ok(())
}

/// Fills the source outbox with `plan.events` changes, then relays them and
/// returns how many were stored and how long that took.
async fn bench_ingestion(
    plan: &BenchPlan,
    source_url: &SecretString,
    source_tls: &TlsPaths,
    audit_addr: SocketAddr,
) -> anyhow::Result<(usize, Duration)> {
    let source = fitflow_db::connect(source_url, fitflow_identity::SCHEMA, 4).await?;
    for first in (0..plan.events).step_by(1_000) {
        let count = 1_000.min(plan.events - first);
        let mut event_ids = Vec::with_capacity(count);
        let mut payloads = Vec::with_capacity(count);
        for number in first..first + count {
            let event = AuditEventBuilder::new("identity", Action::Update, "bench", Uuid::new_v4())
                .actor_service("identity")
                .tenant(Uuid::new_v4())
                .change("number", "", &number.to_string())
                .build();
            event_ids.push(Uuid::try_parse(&event.event_id)?);
            payloads.push(event.encode_to_vec());
        }
        fitflow_audit::bench::fill_outbox(&source, event_ids, payloads).await?;
    }

    let channel =
        fitflow_server::client::channel(&format!("https://{audit_addr}"), "audit", source_tls)?;
    let client = AuditIngestServiceClient::new(channel);
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let relay = tokio::spawn(Relay::new(source.clone(), client).run(shutdown.clone()));
    loop {
        let pending = fitflow_audit::bench::pending_outbox(&source).await?;
        if pending == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("the outbox did not drain within 10 minutes ({pending} left)");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    relay.await?;
    Ok((plan.events, elapsed))
}

fn client_id(index: u64) -> Uuid {
    let text = format!("00000000-0000-4000-9000-{index:012x}");
    Uuid::try_parse(&text).unwrap_or_default()
}

/// Times `ListEvents` (in process, as an operator: validation,
/// authorization, SQL and decoding, without TLS) for random clients.
async fn time_who_viewed(
    plan: &BenchPlan,
    query: &fitflow_audit::AuditQuery,
    last_days: Option<i64>,
) -> anyhow::Result<Histogram<u64>> {
    let operator = Arc::new(Principal {
        user_id: Uuid::new_v4(),
        session_id: Uuid::new_v4(),
        roles: vec![Role::Operator],
        supervised_trainer_ids: Vec::new(),
        // A session that completed MFA, as the operator role requires.
        amr: vec!["pwd".into(), "otp".into()],
        studio_ids: Vec::new(),
        claims_truncated: false,
        claims_partial: false,
    });
    let mut latency = Histogram::<u64>::new(3)?;
    for _ in 0..plan.queries {
        let client = u64::from(Uuid::new_v4().as_u128() as u32) % plan.clients;
        let start_time = last_days.map(|days| {
            let at = Utc::now() - chrono::Duration::days(days);
            prost_types_timestamp(at)
        });
        let mut request = tonic::Request::new(ListEventsRequest {
            filter: Some(EventFilter {
                log: Log::Access as i32,
                resource_type: "clients".to_owned(),
                resource_id: client_id(client).to_string(),
                start_time,
                ..Default::default()
            }),
            page_size: 50,
            ..Default::default()
        });
        request.extensions_mut().insert((*operator).clone());
        let begun = Instant::now();
        query.list_events(request).await?;
        latency.record(u64::try_from(begun.elapsed().as_micros()).unwrap_or(u64::MAX))?;
    }
    Ok(latency)
}

fn prost_types_timestamp(at: chrono::DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}
