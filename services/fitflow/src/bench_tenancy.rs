//! `fitflow bench` scenarios of tenancy: a trainer profile read, a studio
//! search over a large directory, and the rate in force on a date among many
//! versions. The directory and the versions are seeded in bulk through
//! FITFLOW_ADMIN_DATABASE_URL first (`--seed`); figures are printed, never
//! asserted.

use std::time::Instant;

use anyhow::Context as _;
use chrono::{Days, Utc};
use fitflow_platform::settings::{ADMIN_DATABASE_URL_VAR, database_url};
use fitflow_proto::google::r#type::Date;
use fitflow_proto::identity::GetCurrentUserRequest;
use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_proto::tenancy as pb;
use fitflow_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use fitflow_proto::types::{Money, PostalAddress, Province};
use secrecy::ExposeSecret as _;
use sqlx::postgres::PgPoolOptions;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::bench::{BenchPlan, BenchReport, Scenario, Tally, bearer};

/// Search terms the studio search rotates through (name words and cities
/// of the seeded directory, as prefixes).
const QUERIES: [&str; 6] = [
    "montr",
    "toronto plat",
    "summit",
    "harbour 12",
    "calg",
    "pulse 7",
];

/// What the workers call with: the bench user's token and resources.
#[derive(Clone)]
struct Target {
    tenancy: TenancyServiceClient<Channel>,
    token: String,
    trainer_id: String,
    studio_id: String,
    versions: u64,
}

/// Prepares and runs a tenancy scenario as the bench user `token`.
pub(crate) async fn run(
    plan: &BenchPlan,
    identity: Channel,
    tenancy: Channel,
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
    let mut client = TenancyServiceClient::new(tenancy);
    client
        .create_trainer(bearer(
            pb::CreateTrainerRequest {
                trainer: Some(pb::Trainer {
                    business_name: "Bench Fitness".into(),
                    time_zone: "America/Toronto".into(),
                    province: Province::On as i32,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &token,
        )?)
        .await
        .context("creating the bench trainer")?;
    let admin_url = database_url(ADMIN_DATABASE_URL_VAR)?;
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect(admin_url.expose_secret())
        .await
        .context("cannot connect with FITFLOW_ADMIN_DATABASE_URL")?;
    let owner = Uuid::try_parse(&user_id).context("the bench user's id")?;
    let seed = i64::try_from(plan.seed).unwrap_or(i64::MAX);
    let mut target = Target {
        tenancy: client.clone(),
        token: token.clone(),
        trainer_id: user_id.clone(),
        studio_id: String::new(),
        versions: plan.seed.max(1),
    };
    match plan.scenario {
        Scenario::StudioSearch => {
            let started = Instant::now();
            fitflow_tenancy::bench::seed_studios(&admin, owner, seed).await?;
            eprintln!(
                "seeded {seed} studios in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Scenario::Rate => {
            target.studio_id = contract_with_self(&mut client, &token, &user_id).await?;
            let contract_id = client
                .list_contracts(bearer(
                    pb::ListContractsRequest {
                        party: Some(pb::list_contracts_request::Party::StudioId(
                            target.studio_id.clone(),
                        )),
                        ..Default::default()
                    },
                    &token,
                )?)
                .await?
                .into_inner()
                .contracts
                .first()
                .map(|contract| contract.id.clone())
                .context("the bench contract")?;
            let started = Instant::now();
            fitflow_tenancy::bench::seed_rate_versions(
                &admin,
                Uuid::try_parse(&contract_id)?,
                owner,
                seed,
            )
            .await?;
            eprintln!(
                "seeded {seed} rate versions in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        _ => {}
    }

    let started = Instant::now();
    let deadline = started + plan.duration;
    let mut workers = Vec::new();
    for worker in 0..plan.concurrency {
        let (target, scenario) = (target.clone(), plan.scenario);
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            let mut turn = worker as u64;
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

/// A studio of the bench user, contracting the bench user from today.
async fn contract_with_self(
    client: &mut TenancyServiceClient<Channel>,
    token: &str,
    user_id: &str,
) -> anyhow::Result<String> {
    let cad = |amount: &str| {
        Some(Money {
            currency_code: "CAD".into(),
            amount: amount.into(),
        })
    };
    let studio = client
        .create_studio(bearer(
            pb::CreateStudioRequest {
                studio: Some(pb::Studio {
                    name: "Bench Studio".into(),
                    address: Some(PostalAddress {
                        street: "1 Bench Street".into(),
                        city: "Toronto".into(),
                        province: Province::On as i32,
                        postal_code: "M5V 2T6".into(),
                        country_code: String::new(),
                    }),
                    time_zone: "America/Toronto".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            token,
        )?)
        .await?
        .into_inner()
        .studio
        .context("no studio")?;
    let today = Utc::now()
        .with_timezone(&chrono_tz::America::Toronto)
        .date_naive();
    let contract = client
        .create_contract(bearer(
            pb::CreateContractRequest {
                studio_id: studio.id.clone(),
                trainer: Some(pb::create_contract_request::Trainer::TrainerId(
                    user_id.to_owned(),
                )),
                role: pb::ContractRole::Contractor as i32,
                start_date: Some(date(today)),
                rates: Some(pb::RateVersion {
                    group_rate: cad("50"),
                    individual_rate: cad("90"),
                    trial_rate: cad("25"),
                    commission_rate: "15".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            token,
        )?)
        .await?
        .into_inner()
        .contract
        .context("no contract")?;
    client
        .accept_contract(bearer(
            pb::AcceptContractRequest {
                contract_id: contract.id,
                etag: String::new(),
            },
            token,
        )?)
        .await?;
    Ok(studio.id)
}

fn date(day: chrono::NaiveDate) -> Date {
    use chrono::Datelike as _;
    Date {
        year: day.year(),
        month: i32::try_from(day.month()).unwrap_or_default(),
        day: i32::try_from(day.day()).unwrap_or_default(),
    }
}

async fn one_request(scenario: Scenario, target: &Target, turn: u64) -> Result<(), tonic::Status> {
    let mut client = target.tenancy.clone();
    match scenario {
        Scenario::Trainer => {
            client
                .get_trainer(bearer(
                    pb::GetTrainerRequest {
                        trainer_id: target.trainer_id.clone(),
                    },
                    &target.token,
                )?)
                .await?;
        }
        Scenario::StudioSearch => {
            let query = QUERIES[usize::try_from(turn).unwrap_or_default() % QUERIES.len()];
            client
                .list_studios(bearer(
                    pb::ListStudiosRequest {
                        query: query.into(),
                        page_size: 20,
                        ..Default::default()
                    },
                    &target.token,
                )?)
                .await?;
        }
        Scenario::Rate => {
            // Any day of the seeded range: the version in force is found by
            // an index probe, whatever the number of versions.
            let day = Utc::now()
                .date_naive()
                .checked_add_days(Days::new(turn % target.versions))
                .unwrap_or_default();
            client
                .get_rate(bearer(
                    pb::GetRateRequest {
                        trainer_id: target.trainer_id.clone(),
                        studio_id: target.studio_id.clone(),
                        category: pb::ClassCategory::Group as i32,
                        date: Some(date(day)),
                    },
                    &target.token,
                )?)
                .await?;
        }
        _ => {}
    }
    Ok(())
}
