//! `fitflow bench` scenarios of documentation: reading a client's last 20
//! notes (`ListSessionNotes`, every field opened) and charting five years of
//! weekly notes (`GetProgress`), each among `--seed` notes of other clients
//! loaded through FITFLOW_ADMIN_DATABASE_URL. The bench client's notes are
//! made through the API (book, complete, write, sign), so every one is
//! really sealed under that client's key. Figures are printed, never
//! asserted.

use std::time::Instant;

use anyhow::Context as _;
use chrono::{DateTime, Datelike as _, Duration, TimeZone as _, Utc};
use fitflow_platform::settings::{ADMIN_DATABASE_URL_VAR, database_url};
use fitflow_proto::clients as clients_pb;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::documentation as pb;
use fitflow_proto::documentation::documentation_service_client::DocumentationServiceClient;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::scheduling as sched;
use fitflow_proto::scheduling::scheduling_service_client::SchedulingServiceClient;
use prost_types::Timestamp;
use secrecy::ExposeSecret as _;
use sqlx::postgres::PgPoolOptions;
use tonic::transport::Channel;

use crate::bench::{BenchPlan, BenchReport, Scenario, Tally, bearer};

/// The notes the `notes` scenario reads per request (one page).
const PAGE: i32 = 20;
/// Weekly notes the `progress` scenario charts: five years.
const PROGRESS_WEEKS: i64 = 260;

/// The channels the scenarios use.
pub(crate) struct Channels {
    /// Clients, to create the bench client.
    pub clients: Channel,
    /// Scheduling, to book and complete its sessions.
    pub scheduling: Channel,
    /// Documentation, measured.
    pub documentation: Channel,
}

fn at(time: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    })
}

fn day(date: chrono::NaiveDate) -> Option<Date> {
    Some(Date {
        year: date.year(),
        month: i32::try_from(date.month()).unwrap_or_default(),
        day: i32::try_from(date.day()).unwrap_or_default(),
    })
}

/// A realistic signed note: SOAP text, five exercises, measurements.
fn note_content(week: i64) -> pb::SessionNoteContent {
    let kg = |value: f64| {
        Some(pb::Weight {
            value,
            unit: pb::WeightUnit::Kg as i32,
        })
    };
    pb::SessionNoteContent {
        subjective: "Slept well; mild soreness in the left knee after Tuesday's run.".into(),
        objective: "Full squat depth, knee tracking over toes; no swelling.".into(),
        assessment: "Progressing as planned; knee load tolerance improving.".into(),
        plan: "Keep squat load; add one interval session next week.".into(),
        exercises: (0..5)
            .map(|index| pb::Exercise {
                name: format!("Exercise {index}"),
                sets: 4,
                reps: 8,
                load: kg(40.0 + f64::from(index) * 10.0),
                rpe: 7.5,
                notes: "Controlled tempo.".into(),
                ..Default::default()
            })
            .collect(),
        measurements: Some(pb::Measurements {
            body_weight: kg(90.0 - week as f64 * 0.05),
            body_fat_percent: Some(24.0),
            resting_heart_rate: Some(62),
            ..Default::default()
        }),
        private_notes: "Discuss sleep hygiene next time.".into(),
    }
}

/// Makes the bench client and `weeks` weekly signed notes ending last week;
/// returns the client's id.
async fn prepare(channels: &Channels, token: &str, weeks: i64) -> anyhow::Result<String> {
    let mut clients = ClientsServiceClient::new(channels.clients.clone());
    let mut scheduling = SchedulingServiceClient::new(channels.scheduling.clone());
    let mut documentation = DocumentationServiceClient::new(channels.documentation.clone());
    let client_id = clients
        .create_client(bearer(
            clients_pb::CreateClientRequest {
                client: Some(clients_pb::Client {
                    first_name: "Bench".into(),
                    last_name: "Client".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            token,
        )?)
        .await
        .context("creating the bench client")?
        .into_inner()
        .client
        .context("no client")?
        .id;
    let class_type_id = scheduling
        .create_class_type(bearer(
            sched::CreateClassTypeRequest {
                class_type: Some(sched::ClassType {
                    name: "Bench session".into(),
                    category: sched::ClassCategory::Individual as i32,
                    duration_minutes: 60,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            token,
        )?)
        .await
        .context("creating the bench class type")?
        .into_inner()
        .class_type
        .context("no class type")?
        .id;
    let now = Utc::now();
    let last = Utc
        .with_ymd_and_hms(now.year(), now.month(), now.day(), 14, 0, 0)
        .single()
        .context("a valid time")?
        - Duration::days(7);
    for week in 0..weeks {
        let start = last - Duration::weeks(weeks - 1 - week);
        let appointment = scheduling
            .book_appointment(bearer(
                sched::BookAppointmentRequest {
                    appointment: Some(sched::Appointment {
                        class_type_id: class_type_id.clone(),
                        start_time: at(start),
                        client_id: client_id.clone(),
                        ..Default::default()
                    }),
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
                token,
            )?)
            .await
            .context("booking a bench session")?
            .into_inner()
            .appointment
            .context("no appointment")?;
        scheduling
            .complete_appointment(bearer(
                sched::CompleteAppointmentRequest {
                    appointment_id: appointment.id.clone(),
                    attendance: vec![sched::Attendance {
                        client_id: client_id.clone(),
                        attended: true,
                    }],
                    etag: String::new(),
                },
                token,
            )?)
            .await
            .context("completing a bench session")?;
        let draft = documentation
            .create_session_note(bearer(
                pb::CreateSessionNoteRequest {
                    client_id: client_id.clone(),
                    appointment_id: appointment.id,
                    content: Some(note_content(week)),
                    request_id: String::new(),
                },
                token,
            )?)
            .await
            .context("writing a bench note")?
            .into_inner()
            .note
            .context("no note")?;
        documentation
            .sign_session_note(bearer(
                pb::SignSessionNoteRequest {
                    client_id: client_id.clone(),
                    note_id: draft.id,
                    etag: draft.etag,
                },
                token,
            )?)
            .await
            .context("signing a bench note")?;
    }
    Ok(client_id)
}

/// Prepares the client and the filler, then reads over and over.
pub(crate) async fn run(
    plan: &BenchPlan,
    channels: Channels,
    token: String,
) -> anyhow::Result<BenchReport> {
    let weeks = if plan.scenario == Scenario::Progress {
        PROGRESS_WEEKS
    } else {
        i64::from(PAGE)
    };
    let started = Instant::now();
    let client_id = prepare(&channels, &token, weeks).await?;
    let filler = i64::try_from(plan.seed).unwrap_or(i64::MAX) - weeks;
    if filler > 0 {
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .connect(database_url(ADMIN_DATABASE_URL_VAR)?.expose_secret())
            .await
            .context("cannot connect with FITFLOW_ADMIN_DATABASE_URL")?;
        fitflow_documentation::bench::seed_notes(&admin, filler).await?;
    }
    eprintln!(
        "seeded {weeks} signed notes of the bench client and {} of other clients in {:.1} s",
        filler.max(0),
        started.elapsed().as_secs_f64()
    );

    let today = Utc::now().date_naive();
    let first = today - Duration::days(5 * 366);
    let started = Instant::now();
    let deadline = started + plan.duration;
    let mut workers = Vec::new();
    for _ in 0..plan.concurrency {
        let mut api = DocumentationServiceClient::new(channels.documentation.clone());
        let (token, client_id, scenario) = (token.clone(), client_id.clone(), plan.scenario);
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            while Instant::now() < deadline {
                let begun = Instant::now();
                let outcome = if scenario == Scenario::Progress {
                    match bearer(
                        pb::GetProgressRequest {
                            client_id: client_id.clone(),
                            metric: pb::ProgressMetricKind::BodyWeight as i32,
                            start_date: day(first),
                            end_date: day(today),
                            purpose: clients_pb::AccessPurpose::Treatment as i32,
                            ..Default::default()
                        },
                        &token,
                    ) {
                        Ok(request) => api.get_progress(request).await.map(|_| ()),
                        Err(status) => Err(status),
                    }
                } else {
                    match bearer(
                        pb::ListSessionNotesRequest {
                            client_id: client_id.clone(),
                            purpose: clients_pb::AccessPurpose::Treatment as i32,
                            page_size: PAGE,
                            ..Default::default()
                        },
                        &token,
                    ) {
                        Ok(request) => api.list_session_notes(request).await.map(|_| ()),
                        Err(status) => Err(status),
                    }
                };
                tally.record(begun, outcome);
            }
            tally
        }));
    }
    Tally::merge(started, workers).await
}
