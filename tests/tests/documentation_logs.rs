//! No session note or plan text reaches the logs, on the documentation
//! service's success paths or its error paths (validation errors carrying
//! the text, a stale etag, a stranger, a ciphertext moved to another row).
//! Its own test binary, because it installs the process-wide tracing
//! subscriber (at TRACE, spans included) and captures everything it writes.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::{Datelike as _, TimeZone as _, Utc};
use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::clients as clients_pb;
use fitflow_proto::clients::AccessPurpose;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::documentation as pb;
use fitflow_proto::documentation::documentation_service_client::DocumentationServiceClient;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::scheduling as sched;
use fitflow_proto::scheduling::scheduling_service_client::SchedulingServiceClient;
use fitflow_proto::tenancy as tenancy_pb;
use fitflow_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use fitflow_proto::types::{Money, Province};
use prost_types::Timestamp;
use tonic::Code;
use tracing_subscriber::fmt::format::FmtSpan;

/// Every byte the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// Values that appear nowhere but in a note, an amendment, a summary or a plan.
const CANARIES: [&str; 12] = [
    "Canarysubjective",
    "Canaryobjective",
    "Canaryassessment",
    "Canaryplantext",
    "Canaryprivate",
    "Canaryexercise",
    "Canaryexercisenote",
    "Canaryreason",
    "Canarysummary",
    "Canarygoal",
    "Canaryplanname",
    "Canarytarget",
];

const TREATMENT: i32 = AccessPurpose::Treatment as i32;

async fn trainer(sandbox: &Sandbox, name: &str) -> (String, String) {
    let (user, email) = sandbox.register(name).await;
    let token = sandbox.login(&email).await.access_token;
    TenancyServiceClient::new(sandbox.channel("tenancy", "gateway"))
        .create_trainer(bearer(
            tenancy_pb::CreateTrainerRequest {
                trainer: Some(tenancy_pb::Trainer {
                    business_name: format!("{name} Fitness"),
                    hourly_rate: Some(Money {
                        currency_code: "CAD".into(),
                        amount: "85".into(),
                    }),
                    commission_rate: "12.5".into(),
                    time_zone: "America/Toronto".into(),
                    province: Province::On as i32,
                    tax_profile: Some(tenancy_pb::TaxProfile {
                        supplier_status: tenancy_pb::SupplierStatus::Registered as i32,
                        gst_hst_number: "123456782RT0001".into(),
                        qst_number: String::new(),
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &token,
        ))
        .await
        .expect("create trainer");
    (user.id, token)
}

/// The note content, every text field a canary (with `suffix`).
fn canary_content(suffix: &str) -> pb::SessionNoteContent {
    pb::SessionNoteContent {
        subjective: format!("{}{suffix}", CANARIES[0]),
        objective: format!("{}{suffix}", CANARIES[1]),
        assessment: format!("{}{suffix}", CANARIES[2]),
        plan: format!("{}{suffix}", CANARIES[3]),
        exercises: vec![pb::Exercise {
            name: format!("{}{suffix}", CANARIES[5]),
            notes: format!("{}{suffix}", CANARIES[6]),
            sets: 3,
            reps: 5,
            ..Default::default()
        }],
        measurements: Some(pb::Measurements {
            body_weight: Some(pb::Weight {
                value: 81.5,
                unit: pb::WeightUnit::Kg as i32,
            }),
            ..Default::default()
        }),
        private_notes: format!("{}{suffix}", CANARIES[4]),
    }
}

fn canary_plan(client_id: &str, suffix: &str) -> pb::TrainingPlan {
    pb::TrainingPlan {
        client_id: client_id.into(),
        name: format!("{}{suffix}", CANARIES[10]),
        goal: format!("{}{suffix}", CANARIES[9]),
        start_date: Some(Date {
            year: 2027,
            month: 1,
            day: 4,
        }),
        sessions_per_week: 2,
        weeks: vec![pb::PlanWeek {
            sessions: vec![pb::PlannedSession {
                name: format!("{}{suffix}", CANARIES[5]),
                exercises: Vec::new(),
            }],
        }],
        metrics: vec![pb::ProgressMetric {
            name: "body weight".into(),
            target: format!("{}{suffix}", CANARIES[11]),
        }],
        ..Default::default()
    }
}

/// A completed, attended appointment of the trainer with `client_id`.
async fn held_session(sandbox: &Sandbox, token: &str, client_id: &str, hour: u32) -> String {
    let mut scheduling = SchedulingServiceClient::new(sandbox.channel("scheduling", "gateway"));
    let class_type_id = scheduling
        .create_class_type(bearer(
            sched::CreateClassTypeRequest {
                class_type: Some(sched::ClassType {
                    name: "Personal training".into(),
                    category: sched::ClassCategory::Individual as i32,
                    duration_minutes: 60,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .expect("class type")
        .into_inner()
        .class_type
        .expect("class type")
        .id;
    // Two days ago: a summary generated now is after the session.
    let day = Utc::now() - chrono::Duration::days(2);
    let start = Utc
        .with_ymd_and_hms(day.year(), day.month(), day.day(), hour, 0, 0)
        .unwrap();
    let appointment = scheduling
        .book_appointment(bearer(
            sched::BookAppointmentRequest {
                appointment: Some(sched::Appointment {
                    class_type_id,
                    start_time: Some(Timestamp {
                        seconds: start.timestamp(),
                        nanos: 0,
                    }),
                    client_id: client_id.into(),
                    ..Default::default()
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            token,
        ))
        .await
        .expect("book")
        .into_inner()
        .appointment
        .expect("appointment");
    scheduling
        .complete_appointment(bearer(
            sched::CompleteAppointmentRequest {
                appointment_id: appointment.id.clone(),
                attendance: vec![sched::Attendance {
                    client_id: client_id.into(),
                    attended: true,
                }],
                etag: String::new(),
            },
            token,
        ))
        .await
        .expect("complete");
    appointment.id
}

#[tokio::test]
async fn no_note_or_plan_text_of_any_success_or_error_path_appears_in_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,h2=debug,hyper=debug,hyper_util=debug,rustls=debug,tower=debug",
        ))
        .with_span_events(FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let sandbox = Sandbox::new().await;
    let stack = sandbox
        .start(&[
            IDENTITY,
            "tenancy",
            "clients",
            "scheduling",
            "documentation",
            "billing",
            AUDIT,
        ])
        .await;
    let (_, owner) = trainer(&sandbox, "Ana").await;
    let (_, stranger) = trainer(&sandbox, "Sam").await;
    let mut clients = ClientsServiceClient::new(sandbox.channel("clients", "gateway"));
    let mut ids = Vec::new();
    for _ in 0..2 {
        let client = clients
            .create_client(bearer(
                clients_pb::CreateClientRequest {
                    client: Some(clients_pb::Client {
                        first_name: "Plain".into(),
                        last_name: "Name".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &owner,
            ))
            .await
            .expect("client")
            .into_inner()
            .client
            .expect("client");
        ids.push(client.id);
    }
    let (client_id, other_client) = (ids[0].clone(), ids[1].clone());
    let mut api = DocumentationServiceClient::new(sandbox.channel("documentation", "gateway"));

    // Success paths: create, update, sign, amend, read with history, list,
    // summary submitted and accepted, plan created, revised, read, listed,
    // progress, export.
    let appointment = held_session(&sandbox, &owner, &client_id, 9).await;
    let draft = api
        .create_session_note(bearer(
            pb::CreateSessionNoteRequest {
                client_id: client_id.clone(),
                appointment_id: appointment,
                content: Some(canary_content("")),
                request_id: String::new(),
            },
            &owner,
        ))
        .await
        .expect("create")
        .into_inner()
        .note
        .expect("note");
    let draft = api
        .update_session_note(bearer(
            pb::UpdateSessionNoteRequest {
                client_id: client_id.clone(),
                note_id: draft.id.clone(),
                content: Some(canary_content(" again")),
                etag: draft.etag.clone(),
            },
            &owner,
        ))
        .await
        .expect("update")
        .into_inner()
        .note
        .expect("note");
    let signed = api
        .sign_session_note(bearer(
            pb::SignSessionNoteRequest {
                client_id: client_id.clone(),
                note_id: draft.id.clone(),
                etag: draft.etag.clone(),
            },
            &owner,
        ))
        .await
        .expect("sign")
        .into_inner()
        .note
        .expect("note");
    let amended = api
        .amend_session_note(bearer(
            pb::AmendSessionNoteRequest {
                client_id: client_id.clone(),
                note_id: signed.id.clone(),
                reason: CANARIES[7].into(),
                content: Some(canary_content(" amended")),
                etag: signed.etag.clone(),
            },
            &owner,
        ))
        .await
        .expect("amend")
        .into_inner()
        .note
        .expect("note");
    let summarized = api
        .submit_ai_summary(bearer(
            pb::SubmitAiSummaryRequest {
                client_id: client_id.clone(),
                note_id: signed.id.clone(),
                summary: Some(pb::AiSummary {
                    text: CANARIES[8].into(),
                    model: "summarizer-1".into(),
                    generate_time: Some(Timestamp {
                        seconds: Utc::now().timestamp() - 60,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
            },
            &owner,
        ))
        .await
        .expect("summary")
        .into_inner()
        .note
        .expect("note");
    api.accept_ai_summary(bearer(
        pb::AcceptAiSummaryRequest {
            client_id: client_id.clone(),
            note_id: signed.id.clone(),
            etag: summarized.etag.clone(),
        },
        &owner,
    ))
    .await
    .expect("accept");
    for view in [pb::NoteView::Trainer, pb::NoteView::Client] {
        let read = api
            .get_session_note(bearer(
                pb::GetSessionNoteRequest {
                    client_id: client_id.clone(),
                    note_id: signed.id.clone(),
                    view: view as i32,
                    include_history: true,
                    purpose: TREATMENT,
                },
                &owner,
            ))
            .await
            .expect("read")
            .into_inner()
            .note
            .expect("note");
        assert_eq!(read.amendment_count, 1);
        api.list_session_notes(bearer(
            pb::ListSessionNotesRequest {
                client_id: client_id.clone(),
                view: view as i32,
                purpose: TREATMENT,
                ..Default::default()
            },
            &owner,
        ))
        .await
        .expect("list");
    }
    let plan = api
        .create_training_plan(bearer(
            pb::CreateTrainingPlanRequest {
                plan: Some(canary_plan(&client_id, "")),
                request_id: String::new(),
            },
            &owner,
        ))
        .await
        .expect("plan")
        .into_inner()
        .plan
        .expect("plan");
    let revision = pb::TrainingPlan {
        id: plan.id.clone(),
        etag: plan.etag.clone(),
        ..canary_plan(&client_id, " v2")
    };
    api.revise_training_plan(bearer(
        pb::ReviseTrainingPlanRequest {
            plan: Some(revision),
        },
        &owner,
    ))
    .await
    .expect("revise");
    api.get_training_plan(bearer(
        pb::GetTrainingPlanRequest {
            client_id: client_id.clone(),
            plan_id: plan.id.clone(),
            version: 1,
            purpose: TREATMENT,
        },
        &owner,
    ))
    .await
    .expect("plan v1");
    api.list_training_plans(bearer(
        pb::ListTrainingPlansRequest {
            client_id: client_id.clone(),
            purpose: TREATMENT,
            ..Default::default()
        },
        &owner,
    ))
    .await
    .expect("plans");
    let today = Utc::now().date_naive();
    api.get_progress(bearer(
        pb::GetProgressRequest {
            client_id: client_id.clone(),
            metric: pb::ProgressMetricKind::BodyWeight as i32,
            start_date: Some(Date {
                year: today.year() - 1,
                month: 1,
                day: 1,
            }),
            end_date: Some(Date {
                year: today.year(),
                month: 12,
                day: 31,
            }),
            purpose: TREATMENT,
            ..Default::default()
        },
        &owner,
    ))
    .await
    .expect("progress");
    let mut export = clients
        .export_client(bearer(
            clients_pb::ExportClientRequest {
                client_id: client_id.clone(),
                purpose: AccessPurpose::Operations as i32,
            },
            &owner,
        ))
        .await
        .expect("export")
        .into_inner();
    let mut exported = Vec::new();
    while let Some(chunk) = export.message().await.expect("chunk") {
        exported.extend(chunk.data);
    }
    assert!(
        String::from_utf8_lossy(&exported).contains(CANARIES[7]),
        "the export holds the text: the canaries did travel"
    );

    // Error paths: every text with a control character, a stale etag, a
    // stranger, a ciphertext moved to another row.
    let hostile = api
        .amend_session_note(bearer(
            pb::AmendSessionNoteRequest {
                client_id: client_id.clone(),
                note_id: signed.id.clone(),
                reason: format!("{}\u{0}", CANARIES[7]),
                content: Some(canary_content("\u{1b}")),
                etag: amended.etag.clone(),
            },
            &owner,
        ))
        .await
        .expect_err("hostile amendment");
    assert_eq!(hostile.code(), Code::InvalidArgument);
    let hostile = api
        .create_training_plan(bearer(
            pb::CreateTrainingPlanRequest {
                plan: Some(canary_plan(&client_id, "\u{0}")),
                request_id: String::new(),
            },
            &owner,
        ))
        .await
        .expect_err("hostile plan");
    assert_eq!(hostile.code(), Code::InvalidArgument);
    let stale = api
        .amend_session_note(bearer(
            pb::AmendSessionNoteRequest {
                client_id: client_id.clone(),
                note_id: signed.id.clone(),
                reason: CANARIES[7].into(),
                content: Some(canary_content(" stale")),
                etag: signed.etag.clone(),
            },
            &owner,
        ))
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    let hidden = api
        .amend_session_note(bearer(
            pb::AmendSessionNoteRequest {
                client_id: client_id.clone(),
                note_id: signed.id.clone(),
                reason: CANARIES[7].into(),
                content: Some(canary_content(" stranger")),
                etag: amended.etag.clone(),
            },
            &stranger,
        ))
        .await
        .expect_err("a stranger");
    assert_eq!(hidden.code(), Code::NotFound);
    let other_appointment = held_session(&sandbox, &owner, &other_client, 11).await;
    let other = api
        .create_session_note(bearer(
            pb::CreateSessionNoteRequest {
                client_id: other_client.clone(),
                appointment_id: other_appointment,
                content: Some(canary_content(" other")),
                request_id: String::new(),
            },
            &owner,
        ))
        .await
        .expect("another note")
        .into_inner()
        .note
        .expect("note");
    let admin = sandbox.db.admin_pool().await;
    sqlx::query(
        "UPDATE documentation.session_notes SET body = \
         (SELECT body FROM documentation.session_notes WHERE id = $1::uuid), \
         private_notes = (SELECT private_notes FROM documentation.session_notes WHERE id = $1::uuid) \
         WHERE id = $2::uuid",
    )
    .bind(&signed.id)
    .bind(&other.id)
    .execute(&admin)
    .await
    .expect("move ciphertexts to another row");
    let moved = api
        .get_session_note(bearer(
            pb::GetSessionNoteRequest {
                client_id: other_client.clone(),
                note_id: other.id.clone(),
                purpose: TREATMENT,
                ..Default::default()
            },
            &owner,
        ))
        .await
        .expect_err("a moved ciphertext");
    assert_eq!(moved.code(), Code::DataLoss);

    // Let the audit relay deliver and log what it does with these events.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    drop(stack);
    let logs = captured.text();
    assert!(
        logs.contains("documentation"),
        "the capture saw the service"
    );
    let lower = logs.to_lowercase();
    for canary in CANARIES {
        assert!(
            !lower.contains(&canary.to_lowercase()),
            "{canary} appears in the logs"
        );
    }
}
