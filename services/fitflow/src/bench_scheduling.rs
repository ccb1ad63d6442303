//! `fitflow bench` scenario of scheduling: a trainer's week
//! (`ListAppointments`, forty appointments) among `--seed` appointments of
//! other trainers spread over three yearly partitions, loaded through
//! FITFLOW_ADMIN_DATABASE_URL. Figures are printed, never asserted.

use std::time::Instant;

use anyhow::Context as _;
use chrono::{Datelike as _, Duration, TimeZone as _, Utc};
use fitflow_platform::settings::{ADMIN_DATABASE_URL_VAR, database_url};
use fitflow_proto::scheduling as pb;
use fitflow_proto::scheduling::scheduling_service_client::SchedulingServiceClient;
use prost_types::Timestamp;
use secrecy::ExposeSecret as _;
use sqlx::postgres::PgPoolOptions;
use tonic::transport::Channel;

use crate::bench::{BenchPlan, BenchReport, Tally, bearer};

/// The bench trainer's appointments in the measured week.
const WEEK_APPOINTMENTS: i64 = 40;

fn at(time: chrono::DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    })
}

/// Prepares the week and the filler, then lists the week over and over.
pub(crate) async fn run(
    plan: &BenchPlan,
    scheduling: Channel,
    token: String,
) -> anyhow::Result<BenchReport> {
    let mut api = SchedulingServiceClient::new(scheduling);
    let class_type = api
        .create_class_type(bearer(
            pb::CreateClassTypeRequest {
                class_type: Some(pb::ClassType {
                    name: "Bench group".into(),
                    category: pb::ClassCategory::Group as i32,
                    duration_minutes: 45,
                    max_participants: 12,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &token,
        )?)
        .await
        .context("creating the bench class type")?
        .into_inner()
        .class_type
        .context("no class type")?;
    let year = Utc::now().year() + 1;
    // The first Monday of March next year, 07:00 UTC.
    let mut monday = Utc
        .with_ymd_and_hms(year, 3, 1, 7, 0, 0)
        .single()
        .context("a valid date")?;
    while monday.weekday() != chrono::Weekday::Mon {
        monday += Duration::days(1);
    }
    let started = Instant::now();
    for index in 0..WEEK_APPOINTMENTS {
        let start = monday + Duration::days(index / 8) + Duration::hours(index % 8);
        api.book_appointment(bearer(
            pb::BookAppointmentRequest {
                appointment: Some(pb::Appointment {
                    class_type_id: class_type.id.clone(),
                    start_time: at(start),
                    ..Default::default()
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &token,
        )?)
        .await
        .context("booking the bench week")?;
    }
    let filler = i64::try_from(plan.seed).unwrap_or(i64::MAX) - WEEK_APPOINTMENTS;
    if filler > 0 {
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .connect(database_url(ADMIN_DATABASE_URL_VAR)?.expose_secret())
            .await
            .context("cannot connect with FITFLOW_ADMIN_DATABASE_URL")?;
        fitflow_scheduling::bench::seed_appointments(
            &admin,
            uuid::Uuid::try_parse(&class_type.id)?,
            year - 1,
            filler,
        )
        .await?;
    }
    eprintln!(
        "seeded a week of {WEEK_APPOINTMENTS} appointments and {} of other trainers in {:.1} s",
        filler.max(0),
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let deadline = started + plan.duration;
    let mut workers = Vec::new();
    for _ in 0..plan.concurrency {
        let (mut api, token) = (api.clone(), token.clone());
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            while Instant::now() < deadline {
                let begun = Instant::now();
                let outcome = match bearer(
                    pb::ListAppointmentsRequest {
                        start_time: at(monday),
                        end_time: at(monday + Duration::days(7)),
                        page_size: 100,
                        ..Default::default()
                    },
                    &token,
                ) {
                    Ok(request) => api.list_appointments(request).await.map(|_| ()),
                    Err(status) => Err(status),
                };
                tally.record(begun, outcome);
            }
            tally
        }));
    }
    Tally::merge(started, workers).await
}
