//! `fitflow bench` scenarios of clients: the PHI read (`GetClient`: token
//! check, access check, RLS transaction, every sealed field opened, access
//! event) beside the same SQL replayed by pgbench, and the name-prefix
//! search. The bench trainer's clients are created through the API; the
//! rest of `--seed` clients are filler rows of other trainers, loaded
//! through FITFLOW_ADMIN_DATABASE_URL. Figures are printed, never asserted.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use fitflow_platform::settings::{ADMIN_DATABASE_URL_VAR, database_url};
use fitflow_proto::clients as pb;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::identity::GetCurrentUserRequest;
use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_proto::types::{PostalAddress, Province};
use prost::Message as _;
use secrecy::ExposeSecret as _;
use sqlx::postgres::PgPoolOptions;
use tonic::transport::Channel;

use crate::bench::{BenchPlan, BenchReport, Scenario, Tally, bearer};

/// The pgbench reference: GetClient's work done naively, as five statements.
const GET_CLIENT_SQL: &str = include_str!("../../../deploy/bench/get-client.sql");
/// pgbench replaying the one statement GetClient sends.
const GET_CLIENT_ONE_SQL: &str = include_str!("../../../deploy/bench/get-client-one.sql");
/// Most clients the bench trainer gets through the API (the rest is filler).
const OWN_CLIENTS: u64 = 1_000;
/// First names of the bench trainer's clients: searches rotate through
/// their prefixes, each matching about a twentieth of the book.
const FIRST_NAMES: [&str; 20] = [
    "Alexandre",
    "Béatrice",
    "Camille",
    "Dominique",
    "Élodie",
    "Florence",
    "Gabriel",
    "Hélène",
    "Isabelle",
    "Jérôme",
    "Karine",
    "Laurent",
    "Mathieu",
    "Nathalie",
    "Olivier",
    "Patrice",
    "Quentin",
    "Rosalie",
    "Sébastien",
    "Thérèse",
];
/// Last names, combined with the first names.
const LAST_NAMES: [&str; 10] = [
    "Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie", "Fortin",
    "Gagné",
];

/// What the workers call with.
#[derive(Clone)]
struct Target {
    clients: ClientsServiceClient<Channel>,
    token: String,
    client_id: String,
}

fn client(index: u64) -> pb::Client {
    let pick = |names: &[&str], at: u64| {
        names[usize::try_from(at).unwrap_or_default() % names.len()].to_owned()
    };
    pb::Client {
        first_name: pick(&FIRST_NAMES, index),
        last_name: pick(&LAST_NAMES, index / 20),
        email: format!("client{index}@example.ca"),
        phone: format!("514-555-{:04}", index % 10_000),
        date_of_birth: Some(Date {
            year: 1980 + i32::try_from(index % 30).unwrap_or_default(),
            month: 1 + i32::try_from(index % 12).unwrap_or_default(),
            day: 1 + i32::try_from(index % 28).unwrap_or_default(),
        }),
        emergency_contact: Some(pb::EmergencyContact {
            name: "Paul Tremblay".into(),
            phone: "514-555-0199".into(),
            relationship: "spouse".into(),
        }),
        medical_info: Some(pb::MedicalInfo {
            conditions: vec!["asthma".into()],
            medications: vec!["salbutamol".into()],
            allergies: vec!["peanuts".into()],
        }),
        goals: "Run a 10 km race.".into(),
        address: Some(PostalAddress {
            street: "123 rue Saint-Denis".into(),
            city: "Montréal".into(),
            province: Province::Qc as i32,
            postal_code: "H2X 1Y4".into(),
            country_code: String::new(),
        }),
        health_consent: Some(pb::HealthConsent {
            text_version: "2026-01".into(),
            consent_time: Some(prost_types::Timestamp {
                seconds: chrono::Utc::now().timestamp() - 60,
                nanos: 0,
            }),
        }),
        ..Default::default()
    }
}

/// Prepares and runs a clients scenario as the bench user `token`.
pub(crate) async fn run(
    plan: &BenchPlan,
    identity: Channel,
    clients: Channel,
    token: String,
) -> anyhow::Result<BenchReport> {
    let user_id = IdentityServiceClient::new(identity)
        .get_current_user(bearer(GetCurrentUserRequest {}, &token)?)
        .await
        .context("reading the bench user")?
        .into_inner()
        .user
        .context("no user")?
        .id;
    let mut api = ClientsServiceClient::new(clients);
    let total = plan.seed.max(1);
    let own = total.min(OWN_CLIENTS);
    let started = Instant::now();
    let mut first_id = String::new();
    for index in 0..own {
        let created = api
            .create_client(bearer(
                pb::CreateClientRequest {
                    client: Some(client(index)),
                    request_id: String::new(),
                },
                &token,
            )?)
            .await
            .context("creating a bench client")?
            .into_inner()
            .client
            .context("no client")?;
        if first_id.is_empty() {
            first_id = created.id;
        }
    }
    let filler = total - own;
    if filler > 0 {
        let admin = admin_pool().await?;
        fitflow_clients::bench::seed_filler_clients(
            &admin,
            i64::try_from(filler).unwrap_or(i64::MAX),
        )
        .await?;
    }
    eprintln!(
        "seeded {own} clients of the bench trainer and {filler} of other trainers in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let target = Target {
        clients: api,
        token,
        client_id: first_id,
    };
    match plan.scenario {
        Scenario::GetClient => compare_with_pgbench(plan, &target, &user_id).await,
        _ => measure(plan.scenario, &target, plan.concurrency, plan.duration).await,
    }
}

async fn admin_pool() -> anyhow::Result<sqlx::PgPool> {
    let admin_url = database_url(ADMIN_DATABASE_URL_VAR)?;
    PgPoolOptions::new()
        .max_connections(2)
        .connect(admin_url.expose_secret())
        .await
        .context("cannot connect with FITFLOW_ADMIN_DATABASE_URL")
}

async fn measure(
    scenario: Scenario,
    target: &Target,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<BenchReport> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let target = target.clone();
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            let mut turn = worker;
            while Instant::now() < deadline {
                let begun = Instant::now();
                let outcome = one_request(scenario, &target, turn).await;
                tally.record(begun, outcome);
                turn += 1;
            }
            tally
        }));
    }
    Tally::merge(started, workers).await
}

/// GetClient at each of the plan's steps, each followed by pgbench at the
/// same concurrency replaying the same work done naively (five statements,
/// the goal's reference) and then the one statement GetClient sends; prints
/// all three and the ratios.
async fn compare_with_pgbench(
    plan: &BenchPlan,
    target: &Target,
    user_id: &str,
) -> anyhow::Result<BenchReport> {
    let scripts = [GET_CLIENT_SQL, GET_CLIENT_ONE_SQL].map(|sql| {
        (
            sql,
            std::env::temp_dir().join(format!("fitflow-get-client-{}.sql", uuid::Uuid::new_v4())),
        )
    });
    for (sql, path) in &scripts {
        std::fs::write(path, sql).context("writing the pgbench script")?;
    }
    let payload = sample_event(user_id, &target.client_id);
    let runtime_url = std::env::var("FITFLOW_CLIENTS_DATABASE_URL").ok();
    println!("GetClient (one client, every sealed field opened) vs. pgbench replaying its SQL:");
    println!(
        "  five statements (BEGIN, context, read, event, COMMIT), then the one statement sent"
    );
    println!(
        "{:>5}  {:>12}  {:>10}  {:>14}  {:>7}  {:>14}  {:>7}",
        "conc.", "GetClient/s", "p99 ms", "pgbench 5 st/s", "ratio", "pgbench 1 st/s", "ratio"
    );
    let mut last = None;
    for &concurrency in &plan.steps {
        let report = measure(Scenario::GetClient, target, concurrency, plan.duration).await?;
        let rpc_rate = report.ok as f64 / report.elapsed.as_secs_f64();
        let p99 = report.latency_us.value_at_quantile(0.99) as f64 / 1000.0;
        let mut line = format!("{concurrency:>5}  {rpc_rate:>12.0}  {p99:>10.2}");
        for (_, script) in &scripts {
            let pgbench = match &runtime_url {
                Some(url) => crate::bench_pgbench::run(
                    script,
                    url,
                    concurrency,
                    plan.duration,
                    &[
                        ("uid", user_id),
                        ("cid", &target.client_id),
                        ("payload", &payload),
                        ("showdel", "false"),
                    ],
                )
                .await
                .map(|figures| figures.tps),
                None => Err(anyhow::anyhow!("FITFLOW_CLIENTS_DATABASE_URL is not set")),
            };
            match pgbench {
                Ok(tps) => line.push_str(&format!("  {tps:>14.0}  {:>6.2}x", rpc_rate / tps)),
                Err(error) => line.push_str(&format!("  {:>14}  (pgbench: {error})", "-")),
            }
        }
        println!("{line}");
        last = Some(report);
    }
    for (_, script) in &scripts {
        let _ = std::fs::remove_file(script);
    }
    last.context("no step ran")
}

/// An encoded access event like the one GetClient writes, as `\x` hex.
fn sample_event(user_id: &str, client_id: &str) -> String {
    let event = fitflow_outbox::AuditEventBuilder::new(
        "clients",
        fitflow_outbox::Action::Read,
        "clients",
        uuid::Uuid::try_parse(client_id).unwrap_or_default(),
    )
    .actor_user(uuid::Uuid::try_parse(user_id).unwrap_or_default())
    .tenant(uuid::Uuid::try_parse(user_id).unwrap_or_default())
    .purpose(fitflow_outbox::Purpose::Treatment)
    .build();
    // Without its id: the script puts a fresh one first (field 1).
    let event = fitflow_proto::audit::AuditEvent {
        event_id: String::new(),
        ..event
    };
    let bytes = event.encode_to_vec();
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("\\x{hex}")
}

async fn one_request(
    scenario: Scenario,
    target: &Target,
    turn: usize,
) -> Result<(), tonic::Status> {
    let mut api = target.clients.clone();
    match scenario {
        Scenario::GetClient => {
            api.get_client(bearer(
                pb::GetClientRequest {
                    client_id: target.client_id.clone(),
                    purpose: pb::AccessPurpose::Treatment as i32,
                    show_deleted: false,
                },
                &target.token,
            )?)
            .await?;
        }
        Scenario::ClientSearch => {
            let name = FIRST_NAMES[turn % FIRST_NAMES.len()];
            let prefix: String = name.chars().take(3 + turn % 3).collect();
            api.list_clients(bearer(
                pb::ListClientsRequest {
                    name_prefix: prefix,
                    page_size: 20,
                    ..Default::default()
                },
                &target.token,
            )?)
            .await?;
        }
        _ => {}
    }
    Ok(())
}
