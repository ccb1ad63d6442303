//! Documentation attacked as an attacker would: control characters and
//! impossible numbers in every field, forged and foreign page tokens, every
//! RPC as a stranger, a reader, another client's caller and a wrong peer,
//! a hundred writers racing for one note or plan, a flood of the costliest
//! reads, and ciphertexts moved between rows, columns and tables.

use chrono::Utc;
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::clients as clients_pb;
use fitflow_proto::clients::AccessPurpose;
use fitflow_proto::documentation as pb;
use fitflow_proto::documentation::documentation_service_client::DocumentationServiceClient;
use futures::future::join_all;
use prost_types::Timestamp;
use tonic::Code;
use tonic::transport::Channel;

use crate::clients::share;
use crate::documentation::{
    DOCUMENTATION, EVERYONE, Trainer, amend, at, client_of, content, create_note, create_plan, day,
    docs, get_note, kg, next_year, plan_of, session, sign, signed_note, signed_note_at,
    submit_summary,
};
use crate::identity_support::{reason, violated_fields};
use crate::tenancy::trainer;

const TREATMENT: i32 = AccessPurpose::Treatment as i32;
/// Text that must never come back in an error nor be stored.
const CANARY: &str = "Canarysymptom";

/// The outcome of a call as (code, reason): ("Ok", "") on success.
fn answer<T>(outcome: &Result<T, tonic::Status>) -> (Code, String) {
    match outcome {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), reason(status)),
    }
}

/// Asserts `outcome` is INVALID_ARGUMENT naming exactly `fields`, and that
/// nothing the caller sent is echoed back.
fn refused<T: std::fmt::Debug>(what: &str, outcome: Result<T, tonic::Status>, fields: &[&str]) {
    let status = outcome.expect_err(what);
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    assert_eq!(violated_fields(&status), fields, "{what}");
    let shown = format!("{status:?}");
    assert!(!shown.contains(CANARY), "{what} echoes the value: {shown}");
}

/// Every text field of a note's content (nested exercise included) holding
/// the canary and `bad`.
fn poisoned(bad: char) -> pb::SessionNoteContent {
    let text = format!("{CANARY}{bad}");
    pb::SessionNoteContent {
        subjective: text.clone(),
        objective: text.clone(),
        assessment: text.clone(),
        plan: text.clone(),
        exercises: vec![pb::Exercise {
            name: text.clone(),
            notes: text.clone(),
            ..Default::default()
        }],
        measurements: None,
        private_notes: text,
    }
}

fn poisoned_fields(prefix: &str) -> Vec<String> {
    [
        "subjective",
        "objective",
        "assessment",
        "plan",
        "private_notes",
        "exercises[0].name",
        "exercises[0].notes",
    ]
    .iter()
    .map(|field| format!("{prefix}.{field}"))
    .collect()
}

/// `plan` with every text field (weeks, sessions, exercises, metrics
/// included) holding the canary and `bad`.
fn poisoned_plan(mut plan: pb::TrainingPlan, bad: char) -> pb::TrainingPlan {
    let text = format!("{CANARY}{bad}");
    plan.name = text.clone();
    plan.goal = text.clone();
    plan.weeks = vec![pb::PlanWeek {
        sessions: vec![pb::PlannedSession {
            name: text.clone(),
            exercises: vec![pb::Exercise {
                name: text.clone(),
                notes: text.clone(),
                ..Default::default()
            }],
        }],
    }];
    plan.metrics = vec![pb::ProgressMetric {
        name: text.clone(),
        target: text,
    }];
    plan
}

const POISONED_PLAN_FIELDS: [&str; 7] = [
    "plan.name",
    "plan.goal",
    "plan.weeks[0].sessions[0].name",
    "plan.weeks[0].sessions[0].exercises[0].name",
    "plan.weeks[0].sessions[0].exercises[0].notes",
    "plan.metrics[0].name",
    "plan.metrics[0].target",
];

fn strs(fields: &[String]) -> Vec<&str> {
    fields.iter().map(String::as_str).collect()
}

async fn list_notes(
    sandbox: &Sandbox,
    token: &str,
    request: pb::ListSessionNotesRequest,
) -> Result<pb::ListSessionNotesResponse, tonic::Status> {
    docs(sandbox)
        .list_session_notes(bearer(request, token))
        .await
        .map(tonic::Response::into_inner)
}

async fn get_plan(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    plan_id: &str,
    version: i32,
) -> Result<pb::TrainingPlan, tonic::Status> {
    docs(sandbox)
        .get_training_plan(bearer(
            pb::GetTrainingPlanRequest {
                client_id: client_id.into(),
                plan_id: plan_id.into(),
                version,
                purpose: TREATMENT,
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().plan.expect("plan"))
}

async fn revise(
    sandbox: &Sandbox,
    token: &str,
    plan: pb::TrainingPlan,
) -> Result<pb::TrainingPlan, tonic::Status> {
    docs(sandbox)
        .revise_training_plan(bearer(
            pb::ReviseTrainingPlanRequest { plan: Some(plan) },
            token,
        ))
        .await
        .map(|response| response.into_inner().plan.expect("plan"))
}

async fn accept(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    note_id: &str,
    etag: &str,
) -> Result<pb::SessionNote, tonic::Status> {
    docs(sandbox)
        .accept_ai_summary(bearer(
            pb::AcceptAiSummaryRequest {
                client_id: client_id.into(),
                note_id: note_id.into(),
                etag: etag.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().note.expect("note"))
}

fn progress_request(client_id: &str) -> pb::GetProgressRequest {
    pb::GetProgressRequest {
        client_id: client_id.into(),
        metric: pb::ProgressMetricKind::BodyWeight as i32,
        start_date: day(2020, 1, 1),
        end_date: day(2029, 12, 31),
        purpose: TREATMENT,
        ..Default::default()
    }
}

/// A draft of `owner`'s client at `start`.
async fn draft_at(
    sandbox: &Sandbox,
    owner: &Trainer,
    client_id: &str,
    start: chrono::DateTime<Utc>,
    subjective: &str,
) -> pb::SessionNote {
    let appointment = session(sandbox, &owner.2, client_id, start, Some(true)).await;
    create_note(
        sandbox,
        &owner.2,
        client_id,
        &appointment,
        content(subjective, "private", kg(80.0)),
    )
    .await
    .expect("draft")
}

#[tokio::test]
async fn a_nul_or_control_character_in_any_string_field_is_refused_by_name_and_writes_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let (client_id, signed) = signed_note(&sandbox, &owner).await;
    let draft = draft_at(&sandbox, &owner, &client_id, next_year(3, 9, 15), "Draft.").await;
    let held = session(
        &sandbox,
        &owner.2,
        &client_id,
        next_year(3, 16, 15),
        Some(true),
    )
    .await;
    let plan = create_plan(&sandbox, &owner.2, plan_of(&client_id))
        .await
        .expect("plan");
    let mut api = docs(&sandbox);

    for bad in ['\0', '\u{1b}', '\u{7f}', '\u{85}', '\u{b}'] {
        let mut fields = vec!["request_id", "client_id", "appointment_id"];
        let content_fields = poisoned_fields("content");
        fields.extend(strs(&content_fields));
        let outcome = api
            .create_session_note(bearer(
                pb::CreateSessionNoteRequest {
                    client_id: format!("{client_id}{bad}"),
                    appointment_id: format!("{held}{bad}"),
                    content: Some(poisoned(bad)),
                    request_id: format!("{}{bad}", uuid::Uuid::new_v4()),
                },
                &owner.2,
            ))
            .await;
        refused(&format!("create {bad:?}"), outcome, &fields);
    }
    // The same content is refused on a valid create too.
    let outcome = create_note(&sandbox, &owner.2, &client_id, &held, poisoned('\0')).await;
    refused("create", outcome, &strs(&poisoned_fields("content")));

    let mut fields = vec!["etag"];
    let content_fields = poisoned_fields("content");
    fields.extend(strs(&content_fields));
    let outcome = api
        .update_session_note(bearer(
            pb::UpdateSessionNoteRequest {
                client_id: client_id.clone(),
                note_id: draft.id.clone(),
                content: Some(poisoned('\0')),
                etag: format!("{}\0", draft.etag),
            },
            &owner.2,
        ))
        .await;
    refused("update", outcome, &fields);
    let outcome = api
        .sign_session_note(bearer(
            pb::SignSessionNoteRequest {
                client_id: client_id.clone(),
                note_id: format!("{}\u{1b}", draft.id),
                etag: format!("{}\u{7}", draft.etag),
            },
            &owner.2,
        ))
        .await;
    refused("sign", outcome, &["note_id", "etag"]);
    let mut fields = vec!["reason", "etag"];
    fields.extend(strs(&content_fields));
    let outcome = api
        .amend_session_note(bearer(
            pb::AmendSessionNoteRequest {
                client_id: client_id.clone(),
                note_id: signed.id.clone(),
                reason: format!("{CANARY}\0"),
                content: Some(poisoned('\0')),
                etag: format!("\0{}", signed.etag),
            },
            &owner.2,
        ))
        .await;
    refused("amend", outcome, &fields);
    let outcome = api
        .get_session_note(bearer(
            pb::GetSessionNoteRequest {
                client_id: format!("{client_id}\0"),
                note_id: format!("{}\0", signed.id),
                purpose: TREATMENT,
                ..Default::default()
            },
            &owner.2,
        ))
        .await;
    refused("get note", outcome, &["client_id", "note_id"]);
    for token in ["\0", "AAAA\u{1b}", "\u{85}"] {
        let outcome = list_notes(
            &sandbox,
            &owner.2,
            pb::ListSessionNotesRequest {
                client_id: client_id.clone(),
                purpose: TREATMENT,
                page_token: token.into(),
                ..Default::default()
            },
        )
        .await;
        refused("list notes", outcome, &["page_token"]);
    }
    let outcome = api
        .submit_ai_summary(bearer(
            pb::SubmitAiSummaryRequest {
                client_id: client_id.clone(),
                note_id: signed.id.clone(),
                summary: Some(pb::AiSummary {
                    text: format!("{CANARY}\0"),
                    model: "model\u{1b}[2J".into(),
                    generate_time: at(Utc::now()),
                    ..Default::default()
                }),
            },
            &owner.2,
        ))
        .await;
    refused(
        "submit summary",
        outcome,
        &["summary.text", "summary.model"],
    );
    let outcome = accept(
        &sandbox,
        &owner.2,
        &client_id,
        &format!("{}\u{7f}", signed.id),
        "\0",
    )
    .await;
    refused("accept summary", outcome, &["note_id", "etag"]);

    let mut fields = vec!["request_id", "plan.client_id", "plan.trainer_id"];
    fields.extend(POISONED_PLAN_FIELDS);
    let mut bad_plan = poisoned_plan(plan_of(&client_id), '\0');
    bad_plan.client_id.push('\0');
    bad_plan.trainer_id = format!("{}\0", owner.0);
    let outcome = api
        .create_training_plan(bearer(
            pb::CreateTrainingPlanRequest {
                plan: Some(bad_plan),
                request_id: "\u{1b}".into(),
            },
            &owner.2,
        ))
        .await;
    refused("create plan", outcome, &fields);
    let mut fields = vec!["plan.id", "plan.etag"];
    fields.extend(POISONED_PLAN_FIELDS);
    let mut bad_revision = poisoned_plan(plan.clone(), '\u{1b}');
    bad_revision.id.push('\u{1b}');
    bad_revision.etag.push('\0');
    let outcome = revise(&sandbox, &owner.2, bad_revision).await;
    refused("revise plan", outcome, &fields);
    let outcome = get_plan(&sandbox, &owner.2, &client_id, &format!("{}\0", plan.id), 0).await;
    refused("get plan", outcome, &["plan_id"]);
    let outcome = api
        .list_training_plans(bearer(
            pb::ListTrainingPlansRequest {
                client_id: format!("\0{client_id}"),
                purpose: TREATMENT,
                ..Default::default()
            },
            &owner.2,
        ))
        .await;
    refused("list plans", outcome, &["client_id"]);
    let mut progress = progress_request(&client_id);
    progress.client_id.push('\u{7}');
    let outcome = api.get_progress(bearer(progress, &owner.2)).await;
    refused("progress", outcome, &["client_id"]);
    let outcome = DocumentationServiceClient::new(sandbox.channel(DOCUMENTATION, "clients"))
        .export_client_documentation(tonic::Request::new(pb::ExportClientDocumentationRequest {
            client_id: format!("{client_id}\0"),
        }))
        .await;
    refused("export", outcome, &["client_id"]);
    let outcome = DocumentationServiceClient::new(sandbox.channel(DOCUMENTATION, "clients"))
        .stream_client_documentation(tonic::Request::new(pb::StreamClientDocumentationRequest {
            client_id: format!("{client_id}\0"),
        }))
        .await;
    refused("streamed export", outcome, &["client_id"]);

    // Nothing was written: the two notes, the signed one unamended and
    // without summary, the draft unchanged, one plan at version 1.
    let notes = list_notes(
        &sandbox,
        &owner.2,
        pb::ListSessionNotesRequest {
            client_id: client_id.clone(),
            purpose: TREATMENT,
            ..Default::default()
        },
    )
    .await
    .expect("list")
    .notes;
    assert_eq!(notes.len(), 2);
    let stored_signed = notes.iter().find(|note| note.id == signed.id).unwrap();
    assert_eq!(stored_signed.etag, signed.etag);
    assert!(stored_signed.ai_summary.is_none());
    let stored_draft = notes.iter().find(|note| note.id == draft.id).unwrap();
    assert_eq!(stored_draft.etag, draft.etag);
    assert_eq!(
        get_plan(&sandbox, &owner.2, &client_id, &plan.id, 0)
            .await
            .expect("plan")
            .version,
        1
    );
}

#[tokio::test]
async fn impossible_numbers_unknown_enums_and_dates_outside_the_calendar_are_refused_by_name() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let (client_id, signed) = signed_note(&sandbox, &owner).await;
    let draft = draft_at(&sandbox, &owner, &client_id, next_year(3, 9, 15), "Draft.").await;
    let plan = create_plan(&sandbox, &owner.2, plan_of(&client_id))
        .await
        .expect("plan");
    let mut api = docs(&sandbox);

    let exercise = |name: &str| pb::Exercise {
        name: name.into(),
        ..Default::default()
    };
    let numbers = pb::SessionNoteContent {
        exercises: vec![
            pb::Exercise {
                sets: -1,
                reps: 1_001,
                load: Some(pb::Weight {
                    value: f64::NAN,
                    unit: pb::WeightUnit::Kg as i32,
                }),
                duration_seconds: -5,
                distance: Some(pb::Distance {
                    value: f64::INFINITY,
                    unit: pb::DistanceUnit::Km as i32,
                }),
                rpe: f64::NAN,
                ..exercise("a")
            },
            pb::Exercise {
                sets: 101,
                reps: i32::MIN,
                load: Some(pb::Weight {
                    value: -1.0,
                    unit: pb::WeightUnit::Lb as i32,
                }),
                duration_seconds: i32::MAX,
                distance: Some(pb::Distance {
                    value: 1.0,
                    unit: 99,
                }),
                rpe: 10.5,
                ..exercise("b")
            },
            pb::Exercise {
                load: Some(pb::Weight {
                    value: f64::MAX,
                    unit: -7,
                }),
                distance: Some(pb::Distance {
                    value: f64::NEG_INFINITY,
                    unit: pb::DistanceUnit::M as i32,
                }),
                rpe: -1.0,
                ..exercise("c")
            },
            pb::Exercise {
                load: Some(pb::Weight {
                    value: f64::MAX,
                    unit: pb::WeightUnit::Lb as i32,
                }),
                distance: Some(pb::Distance {
                    value: 1e300,
                    unit: pb::DistanceUnit::Mi as i32,
                }),
                rpe: f64::INFINITY,
                ..exercise("d")
            },
        ],
        measurements: Some(pb::Measurements {
            body_weight: Some(pb::Weight {
                value: f64::INFINITY,
                unit: pb::WeightUnit::Lb as i32,
            }),
            body_fat_percent: Some(f64::NAN),
            girths: vec![
                pb::Girth {
                    site: 99,
                    value: f64::NAN,
                    unit: pb::LengthUnit::Cm as i32,
                },
                pb::Girth {
                    site: pb::GirthSite::Waist as i32,
                    value: 1e300,
                    unit: 42,
                },
                pb::Girth {
                    site: pb::GirthSite::Calf as i32,
                    value: -30.0,
                    unit: pb::LengthUnit::In as i32,
                },
            ],
            resting_heart_rate: Some(i32::MIN),
            blood_pressure: Some(pb::BloodPressure {
                systolic: i32::MAX,
                diastolic: i32::MIN,
            }),
        }),
        ..Default::default()
    };
    let expected: Vec<String> = [
        "exercises[0].sets",
        "exercises[0].reps",
        "exercises[0].load.value",
        "exercises[0].duration_seconds",
        "exercises[0].distance.value",
        "exercises[0].rpe",
        "exercises[1].sets",
        "exercises[1].reps",
        "exercises[1].load.value",
        "exercises[1].duration_seconds",
        "exercises[1].distance.unit",
        "exercises[1].rpe",
        "exercises[2].load.unit",
        "exercises[2].distance.value",
        "exercises[2].rpe",
        "exercises[3].load.value",
        "exercises[3].distance.value",
        "exercises[3].rpe",
        "measurements.body_weight.value",
        "measurements.body_fat_percent",
        "measurements.girths[0].site",
        "measurements.girths[0].value",
        "measurements.girths[1].unit",
        "measurements.girths[2].value",
        "measurements.resting_heart_rate",
        "measurements.blood_pressure.systolic",
        "measurements.blood_pressure.diastolic",
    ]
    .iter()
    .map(|field| format!("content.{field}"))
    .collect();
    let outcome = api
        .update_session_note(bearer(
            pb::UpdateSessionNoteRequest {
                client_id: client_id.clone(),
                note_id: draft.id.clone(),
                content: Some(numbers.clone()),
                etag: draft.etag.clone(),
            },
            &owner.2,
        ))
        .await;
    refused("numbers in a draft", outcome, &strs(&expected));
    let outcome = amend(&sandbox, &owner.2, &signed, "typo", numbers).await;
    refused("numbers in an amendment", outcome, &strs(&expected));

    // Plans: dates outside years 1..=9999 or partial, an impossible pace,
    // an unknown status, a set count past i32.
    for (start, end, fields) in [
        (
            day(10_000, 1, 1),
            day(2027, 0, 1),
            vec!["plan.start_date", "plan.end_date"],
        ),
        (
            day(-5_000, 1, 1),
            day(2027, 2, 29),
            vec!["plan.start_date", "plan.end_date"],
        ),
        (day(2027, 1, 0), None, vec!["plan.start_date"]),
        (
            None,
            day(2027, 13, 1),
            vec!["plan.start_date", "plan.end_date"],
        ),
        (day(2027, 1, 1), day(2032, 6, 1), vec!["plan.end_date"]),
        (day(2027, 1, 1), day(2026, 12, 31), vec!["plan.end_date"]),
    ] {
        let mut bad = plan_of(&client_id);
        bad.start_date = start;
        bad.end_date = end;
        let outcome = create_plan(&sandbox, &owner.2, bad).await;
        refused(&format!("plan dates {fields:?}"), outcome, &fields);
    }
    for (pace, status) in [(0, 5), (15, -1), (i32::MIN, i32::MAX)] {
        let mut bad = plan_of(&client_id);
        bad.sessions_per_week = pace;
        bad.status = status;
        bad.weeks[0].sessions[0].exercises[0].sets = i32::MAX;
        let outcome = create_plan(&sandbox, &owner.2, bad.clone()).await;
        let fields = [
            "plan.sessions_per_week",
            "plan.status",
            "plan.weeks[0].sessions[0].exercises[0].sets",
        ];
        refused("plan numbers", outcome, &fields);
        bad.id = plan.id.clone();
        bad.etag = plan.etag.clone();
        let outcome = revise(&sandbox, &owner.2, bad).await;
        refused("revision numbers", outcome, &fields);
    }

    // Reads: unknown enums, negative sizes and versions.
    let outcome = list_notes(
        &sandbox,
        &owner.2,
        pb::ListSessionNotesRequest {
            client_id: client_id.clone(),
            view: 99,
            purpose: -1,
            page_size: -1,
            page_token: String::new(),
        },
    )
    .await;
    refused("list enums", outcome, &["view", "purpose", "page_size"]);
    let huge = list_notes(
        &sandbox,
        &owner.2,
        pb::ListSessionNotesRequest {
            client_id: client_id.clone(),
            purpose: TREATMENT,
            page_size: i32::MAX,
            ..Default::default()
        },
    )
    .await
    .expect("a huge page size is clamped");
    assert_eq!(huge.notes.len(), 2);
    let outcome = api
        .get_session_note(bearer(
            pb::GetSessionNoteRequest {
                client_id: client_id.clone(),
                note_id: signed.id.clone(),
                view: -3,
                include_history: true,
                purpose: 99,
            },
            &owner.2,
        ))
        .await;
    refused("get enums", outcome, &["view", "purpose"]);
    let outcome = get_plan(&sandbox, &owner.2, &client_id, &plan.id, -1).await;
    refused("negative version", outcome, &["version"]);
    let far = get_plan(&sandbox, &owner.2, &client_id, &plan.id, i32::MAX)
        .await
        .expect_err("no such version");
    assert_eq!(
        answer::<()>(&Err(far)),
        (Code::NotFound, "PLAN_NOT_FOUND".into())
    );
    let outcome = api
        .list_training_plans(bearer(
            pb::ListTrainingPlansRequest {
                client_id: client_id.clone(),
                purpose: 42,
                ..Default::default()
            },
            &owner.2,
        ))
        .await;
    refused("list plans purpose", outcome, &["purpose"]);
    for (metric, site, start, end, fields) in [
        (
            99,
            99,
            day(2026, 0, 1),
            day(10_000, 1, 1),
            vec!["metric", "start_date", "end_date"],
        ),
        (
            pb::ProgressMetricKind::BodyWeight as i32,
            99,
            day(2026, 1, 1),
            day(2026, 2, 1),
            vec!["girth_site"],
        ),
        (
            pb::ProgressMetricKind::Girth as i32,
            -1,
            day(2026, 1, 1),
            day(2026, 2, 1),
            vec!["girth_site"],
        ),
        (
            pb::ProgressMetricKind::SystolicPressure as i32,
            0,
            day(1, 1, 1),
            day(9999, 12, 31),
            vec!["end_date"],
        ),
        (
            pb::ProgressMetricKind::DiastolicPressure as i32,
            0,
            day(2026, 2, 1),
            day(2026, 1, 1),
            vec!["end_date"],
        ),
        (
            pb::ProgressMetricKind::BodyFatPercent as i32,
            0,
            None,
            Some(fitflow_proto::google::r#type::Date {
                year: 2026,
                month: 2,
                day: 0,
            }),
            vec!["start_date", "end_date"],
        ),
    ] {
        let outcome = api
            .get_progress(bearer(
                pb::GetProgressRequest {
                    metric,
                    girth_site: site,
                    start_date: start,
                    end_date: end,
                    ..progress_request(&client_id)
                },
                &owner.2,
            ))
            .await;
        refused(&format!("progress {fields:?}"), outcome, &fields);
    }
    // The widest range allowed, at the calendar's ends, is answered.
    for (start, end) in [
        (day(1, 1, 1), day(10, 12, 31)),
        (day(9990, 1, 1), day(9999, 12, 31)),
    ] {
        let chart = api
            .get_progress(bearer(
                pb::GetProgressRequest {
                    start_date: start,
                    end_date: end,
                    ..progress_request(&client_id)
                },
                &owner.2,
            ))
            .await
            .expect("a chart at the calendar's end")
            .into_inner();
        assert!(chart.points.is_empty());
        assert!(!chart.adherence.is_empty());
    }
    for generated in [
        Timestamp {
            seconds: 0,
            nanos: -1,
        },
        Timestamp {
            seconds: 0,
            nanos: 1_000_000_000,
        },
        Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        },
        Timestamp {
            seconds: i64::MIN,
            nanos: 0,
        },
    ] {
        let outcome = api
            .submit_ai_summary(bearer(
                pb::SubmitAiSummaryRequest {
                    client_id: client_id.clone(),
                    note_id: signed.id.clone(),
                    summary: Some(pb::AiSummary {
                        text: "summary".into(),
                        model: "m".into(),
                        generate_time: Some(generated),
                        ..Default::default()
                    }),
                },
                &owner.2,
            ))
            .await;
        refused("generate time", outcome, &["summary.generate_time"]);
    }

    // Nothing was written.
    let after = get_note(&sandbox, &owner.2, &signed, pb::NoteView::Trainer, true)
        .await
        .expect("read");
    assert_eq!(after.etag, signed.etag);
    let after = get_note(&sandbox, &owner.2, &draft, pb::NoteView::Trainer, false)
        .await
        .expect("read");
    assert_eq!(after.etag, draft.etag);
    let plans = api
        .list_training_plans(bearer(
            pb::ListTrainingPlansRequest {
                client_id: client_id.clone(),
                purpose: TREATMENT,
                ..Default::default()
            },
            &owner.2,
        ))
        .await
        .expect("plans")
        .into_inner()
        .plans;
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].version, 1);
}

#[tokio::test]
async fn a_page_token_is_refused_from_another_user_another_client_another_view_or_tampered() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let reader = trainer(&sandbox, "Rita").await;
    let first = client_of(&sandbox, &owner).await;
    let second = client_of(&sandbox, &owner).await;
    for (client_id, hour) in [(&first, 9), (&first, 11), (&second, 13), (&second, 15)] {
        let note = draft_at(&sandbox, &owner, client_id, next_year(4, 6, hour), "Text.").await;
        sign(&sandbox, &owner.2, &note).await.expect("sign");
    }
    share(
        &sandbox,
        &owner.2,
        &first,
        &reader.0,
        clients_pb::AccessLevel::Read,
    )
    .await
    .expect("share");
    let page = |client_id: &str, view: pb::NoteView, token: &str| pb::ListSessionNotesRequest {
        client_id: client_id.into(),
        view: view as i32,
        purpose: TREATMENT,
        page_size: 1,
        page_token: token.into(),
    };
    let first_page = list_notes(&sandbox, &owner.2, page(&first, pb::NoteView::Trainer, ""))
        .await
        .expect("first page");
    let token = first_page.next_page_token;
    assert!(!token.is_empty(), "a second page");
    let second_page = list_notes(
        &sandbox,
        &owner.2,
        page(&first, pb::NoteView::Trainer, &token),
    )
    .await
    .expect("the same query resumes");
    assert_eq!(second_page.notes.len(), 1);
    assert_ne!(second_page.notes[0].id, first_page.notes[0].id);

    let mut tampered = token.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (what, who, request) in [
        (
            "another user (who reads the client)",
            &reader.2,
            page(&first, pb::NoteView::Trainer, &token),
        ),
        (
            "another client",
            &owner.2,
            page(&second, pb::NoteView::Trainer, &token),
        ),
        (
            "another view",
            &owner.2,
            page(&first, pb::NoteView::Client, &token),
        ),
        (
            "the same view named differently",
            &owner.2,
            page(&first, pb::NoteView::Unspecified, &token),
        ),
        (
            "a tampered token",
            &owner.2,
            page(&first, pb::NoteView::Trainer, &tampered),
        ),
        (
            "a token with a suffix",
            &owner.2,
            page(&first, pb::NoteView::Trainer, &format!("{token}A")),
        ),
        (
            "an oversized token",
            &owner.2,
            page(&first, pb::NoteView::Trainer, &"A".repeat(5_000)),
        ),
    ] {
        let outcome = list_notes(&sandbox, who, request).await;
        refused(what, outcome, &["page_token"]);
    }
}

/// Every RPC as `token`'s user on `client_id`, `note_id` and `plan` (an
/// appointment for the create): (rpc, code, reason), in RPC order.
async fn answers(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    note_id: &str,
    appointment_id: &str,
    plan: &pb::TrainingPlan,
) -> Vec<(&'static str, Code, String)> {
    let mut api = docs(sandbox);
    let etag = "W/\"1\"".to_owned();
    let mut all = Vec::new();
    let mut push = |rpc: &'static str, (code, reason): (Code, String)| {
        all.push((rpc, code, reason));
    };
    let outcome = api
        .create_session_note(bearer(
            pb::CreateSessionNoteRequest {
                client_id: client_id.into(),
                appointment_id: appointment_id.into(),
                content: Some(content("x", "", None)),
                request_id: String::new(),
            },
            token,
        ))
        .await;
    push("CreateSessionNote", answer(&outcome));
    let outcome = api
        .update_session_note(bearer(
            pb::UpdateSessionNoteRequest {
                client_id: client_id.into(),
                note_id: note_id.into(),
                content: Some(content("x", "", None)),
                etag: etag.clone(),
            },
            token,
        ))
        .await;
    push("UpdateSessionNote", answer(&outcome));
    let outcome = api
        .sign_session_note(bearer(
            pb::SignSessionNoteRequest {
                client_id: client_id.into(),
                note_id: note_id.into(),
                etag: etag.clone(),
            },
            token,
        ))
        .await;
    push("SignSessionNote", answer(&outcome));
    let outcome = api
        .amend_session_note(bearer(
            pb::AmendSessionNoteRequest {
                client_id: client_id.into(),
                note_id: note_id.into(),
                reason: "r".into(),
                content: Some(content("x", "", None)),
                etag: etag.clone(),
            },
            token,
        ))
        .await;
    push("AmendSessionNote", answer(&outcome));
    let outcome = api
        .get_session_note(bearer(
            pb::GetSessionNoteRequest {
                client_id: client_id.into(),
                note_id: note_id.into(),
                include_history: true,
                purpose: TREATMENT,
                ..Default::default()
            },
            token,
        ))
        .await;
    push("GetSessionNote", answer(&outcome));
    let outcome = api
        .list_session_notes(bearer(
            pb::ListSessionNotesRequest {
                client_id: client_id.into(),
                purpose: TREATMENT,
                ..Default::default()
            },
            token,
        ))
        .await;
    push("ListSessionNotes", answer(&outcome));
    let outcome = api
        .submit_ai_summary(bearer(
            pb::SubmitAiSummaryRequest {
                client_id: client_id.into(),
                note_id: note_id.into(),
                summary: Some(pb::AiSummary {
                    text: "s".into(),
                    model: "m".into(),
                    generate_time: at(Utc::now()),
                    ..Default::default()
                }),
            },
            token,
        ))
        .await;
    push("SubmitAiSummary", answer(&outcome));
    let outcome = api
        .accept_ai_summary(bearer(
            pb::AcceptAiSummaryRequest {
                client_id: client_id.into(),
                note_id: note_id.into(),
                etag: etag.clone(),
            },
            token,
        ))
        .await;
    push("AcceptAiSummary", answer(&outcome));
    let mut new_plan = plan_of(client_id);
    new_plan.trainer_id = String::new();
    let outcome = api
        .create_training_plan(bearer(
            pb::CreateTrainingPlanRequest {
                plan: Some(new_plan),
                request_id: String::new(),
            },
            token,
        ))
        .await;
    push("CreateTrainingPlan", answer(&outcome));
    let mut revision = plan.clone();
    revision.client_id = client_id.into();
    let outcome = api
        .revise_training_plan(bearer(
            pb::ReviseTrainingPlanRequest {
                plan: Some(revision),
            },
            token,
        ))
        .await;
    push("ReviseTrainingPlan", answer(&outcome));
    let outcome = api
        .get_training_plan(bearer(
            pb::GetTrainingPlanRequest {
                client_id: client_id.into(),
                plan_id: plan.id.clone(),
                version: 0,
                purpose: TREATMENT,
            },
            token,
        ))
        .await;
    push("GetTrainingPlan", answer(&outcome));
    let outcome = api
        .list_training_plans(bearer(
            pb::ListTrainingPlansRequest {
                client_id: client_id.into(),
                purpose: TREATMENT,
                ..Default::default()
            },
            token,
        ))
        .await;
    push("ListTrainingPlans", answer(&outcome));
    let outcome = api
        .get_progress(bearer(progress_request(client_id), token))
        .await;
    push("GetProgress", answer(&outcome));
    all
}

fn made_up(plan: &pb::TrainingPlan) -> pb::TrainingPlan {
    pb::TrainingPlan {
        id: uuid::Uuid::new_v4().to_string(),
        ..plan.clone()
    }
}

#[tokio::test]
async fn to_a_stranger_a_revoked_grantee_or_another_team_a_real_record_answers_like_a_made_up_one()
{
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let stranger = trainer(&sandbox, "Sam").await;
    let revoked = trainer(&sandbox, "Vic").await;
    let lead = trainer(&sandbox, "Lou").await;
    let member = trainer(&sandbox, "Max").await;
    let lead_token = crate::clients::join_team(&sandbox, &lead, &member).await;
    let (client_id, note) = signed_note(&sandbox, &owner).await;
    let held = session(
        &sandbox,
        &owner.2,
        &client_id,
        next_year(5, 4, 10),
        Some(true),
    )
    .await;
    let plan = create_plan(&sandbox, &owner.2, plan_of(&client_id))
        .await
        .expect("plan");
    share(
        &sandbox,
        &owner.2,
        &client_id,
        &revoked.0,
        clients_pb::AccessLevel::Write,
    )
    .await
    .expect("share");
    fitflow_proto::clients::clients_service_client::ClientsServiceClient::new(
        sandbox.channel("clients", "gateway"),
    )
    .revoke_client_share(bearer(
        clients_pb::RevokeClientShareRequest {
            client_id: client_id.clone(),
            trainer_id: revoked.0.clone(),
        },
        &owner.2,
    ))
    .await
    .expect("revoke");
    let fake_client = uuid::Uuid::new_v4().to_string();
    let fake_note = uuid::Uuid::new_v4().to_string();
    let fake_appointment = uuid::Uuid::new_v4().to_string();

    for (who, token) in [
        ("stranger", &stranger.2),
        ("revoked grantee", &revoked.2),
        ("lead of another team", &lead_token),
    ] {
        let real = answers(&sandbox, token, &client_id, &note.id, &held, &plan).await;
        for (rpc, code, reason) in &real {
            assert_eq!(*code, Code::NotFound, "{who} calling {rpc}: {reason}");
            assert_eq!(reason, "CLIENT_NOT_FOUND", "{who} calling {rpc}");
        }
        let ids = answers(
            &sandbox,
            token,
            &client_id,
            &fake_note,
            &fake_appointment,
            &made_up(&plan),
        )
        .await;
        assert_eq!(real, ids, "{who}: made-up note and plan of the real client");
        let client = answers(
            &sandbox,
            token,
            &fake_client,
            &fake_note,
            &fake_appointment,
            &made_up(&plan),
        )
        .await;
        assert_eq!(real, client, "{who}: a made-up client");
    }

    // The owner's records are untouched by all of it.
    let after = get_note(&sandbox, &owner.2, &note, pb::NoteView::Trainer, true)
        .await
        .expect("owner reads");
    assert_eq!(after.etag, note.etag);
    let notes = list_notes(
        &sandbox,
        &owner.2,
        pb::ListSessionNotesRequest {
            client_id: client_id.clone(),
            purpose: TREATMENT,
            ..Default::default()
        },
    )
    .await
    .expect("list")
    .notes;
    assert_eq!(notes.len(), 1, "no note was created by an attacker");
    assert_eq!(
        get_plan(&sandbox, &owner.2, &client_id, &plan.id, 0)
            .await
            .expect("plan")
            .version,
        1
    );
}

#[tokio::test]
async fn a_record_of_one_client_is_not_found_under_another_client_the_caller_reaches() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let reader = trainer(&sandbox, "Rita").await;
    let (first, note) = signed_note(&sandbox, &owner).await;
    let plan = create_plan(&sandbox, &owner.2, plan_of(&first))
        .await
        .expect("plan");
    let (second, _) = signed_note_at(&sandbox, &owner, next_year(3, 3, 15)).await;
    share(
        &sandbox,
        &owner.2,
        &second,
        &reader.0,
        clients_pb::AccessLevel::Write,
    )
    .await
    .expect("share the second client only");
    let held = session(&sandbox, &owner.2, &first, next_year(6, 1, 9), Some(true)).await;
    let fake_note = uuid::Uuid::new_v4().to_string();

    // The owner reaches both clients: the first's note and plan under the
    // second's id answer as made-up ones would.
    let crossed = answers(&sandbox, &owner.2, &second, &note.id, &held, &plan).await;
    let invented = answers(
        &sandbox,
        &owner.2,
        &second,
        &fake_note,
        &held,
        &made_up(&plan),
    )
    .await;
    for (rpc, code, reason) in &crossed {
        let expected = match *rpc {
            "CreateSessionNote" => (Code::NotFound, "APPOINTMENT_NOT_FOUND"),
            "ListSessionNotes" | "ListTrainingPlans" | "GetProgress" | "CreateTrainingPlan" => {
                (Code::Ok, "")
            }
            "ReviseTrainingPlan" | "GetTrainingPlan" => (Code::NotFound, "PLAN_NOT_FOUND"),
            _ => (Code::NotFound, "NOTE_NOT_FOUND"),
        };
        assert_eq!((*code, reason.as_str()), expected, "owner calling {rpc}");
    }
    let strip = |all: Vec<(&'static str, Code, String)>| {
        all.into_iter()
            .filter(|(rpc, _, _)| !rpc.starts_with("Create"))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(crossed), strip(invented.clone()));

    // A writer of the second client only: the same.
    let reader_crossed = answers(&sandbox, &reader.2, &second, &note.id, &held, &plan).await;
    let reader_invented = answers(
        &sandbox,
        &reader.2,
        &second,
        &fake_note,
        &held,
        &made_up(&plan),
    )
    .await;
    assert_eq!(strip(reader_crossed), strip(reader_invented));
    // And the first client, which they do not reach, does not exist.
    for (rpc, code, reason) in answers(&sandbox, &reader.2, &first, &note.id, &held, &plan).await {
        assert_eq!(
            (code, reason.as_str()),
            (Code::NotFound, "CLIENT_NOT_FOUND"),
            "reader calling {rpc} on the other client"
        );
    }

    // The first client's note is intact and was never listed under the second.
    let second_notes = list_notes(
        &sandbox,
        &owner.2,
        pb::ListSessionNotesRequest {
            client_id: second.clone(),
            purpose: TREATMENT,
            ..Default::default()
        },
    )
    .await
    .expect("list")
    .notes;
    assert!(second_notes.iter().all(|listed| listed.id != note.id));
    let after = get_note(&sandbox, &owner.2, &note, pb::NoteView::Trainer, true)
        .await
        .expect("read");
    assert_eq!(after.etag, note.etag);
}

#[tokio::test]
async fn a_service_peer_calls_no_public_rpc_and_only_clients_exports() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let (client_id, note) = signed_note(&sandbox, &owner).await;
    let plan = create_plan(&sandbox, &owner.2, plan_of(&client_id))
        .await
        .expect("plan");
    let held = session(
        &sandbox,
        &owner.2,
        &client_id,
        next_year(5, 4, 10),
        Some(true),
    )
    .await;
    // `answers` goes through the gateway; redo it through billing.
    for peer in ["billing", "scheduling", "clients"] {
        let api = DocumentationServiceClient::new(sandbox.channel(DOCUMENTATION, peer));
        for (rpc, code, reason) in
            answers_via(api, &owner.2, &client_id, &note.id, &held, &plan).await
        {
            assert_eq!(code, Code::PermissionDenied, "{peer} calling {rpc}");
            assert_eq!(reason, "PEER_NOT_ALLOWED", "{peer} calling {rpc}");
        }
    }
    for peer in ["gateway", "operator", "billing", "scheduling"] {
        let export = DocumentationServiceClient::new(sandbox.channel(DOCUMENTATION, peer))
            .export_client_documentation(bearer(
                pb::ExportClientDocumentationRequest {
                    client_id: client_id.clone(),
                },
                &owner.2,
            ))
            .await
            .expect_err("only clients exports");
        assert_eq!(
            answer::<()>(&Err(export)),
            (Code::PermissionDenied, "PEER_NOT_ALLOWED".into()),
            "{peer} exporting"
        );
        let streamed = DocumentationServiceClient::new(sandbox.channel(DOCUMENTATION, peer))
            .stream_client_documentation(bearer(
                pb::StreamClientDocumentationRequest {
                    client_id: client_id.clone(),
                },
                &owner.2,
            ))
            .await;
        assert_eq!(
            answer(&streamed),
            (Code::PermissionDenied, "PEER_NOT_ALLOWED".into()),
            "{peer} streaming an export"
        );
    }
    let exported = DocumentationServiceClient::new(sandbox.channel(DOCUMENTATION, "clients"))
        .export_client_documentation(tonic::Request::new(pb::ExportClientDocumentationRequest {
            client_id: client_id.clone(),
        }))
        .await
        .expect("clients exports")
        .into_inner();
    assert_eq!(exported.notes.len(), 1);
    let mut streamed = DocumentationServiceClient::new(sandbox.channel(DOCUMENTATION, "clients"))
        .stream_client_documentation(tonic::Request::new(pb::StreamClientDocumentationRequest {
            client_id: client_id.clone(),
        }))
        .await
        .expect("clients streams the export")
        .into_inner();
    let mut notes = 0;
    while let Some(message) = streamed.message().await.expect("a message") {
        notes += message.notes.len();
    }
    assert_eq!(notes, 1);
}

/// [`answers`] through `api` (another peer's channel).
async fn answers_via(
    api: DocumentationServiceClient<Channel>,
    token: &str,
    client_id: &str,
    note_id: &str,
    appointment_id: &str,
    plan: &pb::TrainingPlan,
) -> Vec<(&'static str, Code, String)> {
    let mut api = api;
    let mut all = Vec::new();
    let outcome = api
        .create_session_note(bearer(
            pb::CreateSessionNoteRequest {
                client_id: client_id.into(),
                appointment_id: appointment_id.into(),
                content: Some(content("x", "", None)),
                request_id: String::new(),
            },
            token,
        ))
        .await;
    all.push(("CreateSessionNote", answer(&outcome)));
    let outcome = api
        .get_session_note(bearer(
            pb::GetSessionNoteRequest {
                client_id: client_id.into(),
                note_id: note_id.into(),
                purpose: TREATMENT,
                ..Default::default()
            },
            token,
        ))
        .await;
    all.push(("GetSessionNote", answer(&outcome)));
    let outcome = api
        .sign_session_note(bearer(
            pb::SignSessionNoteRequest {
                client_id: client_id.into(),
                note_id: note_id.into(),
                etag: "W/\"1\"".into(),
            },
            token,
        ))
        .await;
    all.push(("SignSessionNote", answer(&outcome)));
    let outcome = api
        .list_session_notes(bearer(
            pb::ListSessionNotesRequest {
                client_id: client_id.into(),
                purpose: TREATMENT,
                ..Default::default()
            },
            token,
        ))
        .await;
    all.push(("ListSessionNotes", answer(&outcome)));
    let outcome = api
        .accept_ai_summary(bearer(
            pb::AcceptAiSummaryRequest {
                client_id: client_id.into(),
                note_id: note_id.into(),
                etag: "W/\"1\"".into(),
            },
            token,
        ))
        .await;
    all.push(("AcceptAiSummary", answer(&outcome)));
    let outcome = api
        .revise_training_plan(bearer(
            pb::ReviseTrainingPlanRequest {
                plan: Some(plan.clone()),
            },
            token,
        ))
        .await;
    all.push(("ReviseTrainingPlan", answer(&outcome)));
    let outcome = api
        .list_training_plans(bearer(
            pb::ListTrainingPlansRequest {
                client_id: client_id.into(),
                purpose: TREATMENT,
                ..Default::default()
            },
            token,
        ))
        .await;
    all.push(("ListTrainingPlans", answer(&outcome)));
    let outcome = api
        .get_progress(bearer(progress_request(client_id), token))
        .await;
    all.push(("GetProgress", answer(&outcome)));
    all.into_iter()
        .map(|(rpc, (code, reason))| (rpc, code, reason))
        .collect()
}

/// Counts outcomes by (code, reason).
fn tally(outcomes: &[(Code, String)]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for (code, reason) in outcomes {
        *counts.entry(format!("{code:?} {reason}")).or_insert(0) += 1;
    }
    counts
}

/// What a loaded stack may answer any request: retryable, nothing written.
const SHED: [(Code, &str); 2] = [
    (Code::Unavailable, "DATABASE_UNAVAILABLE"),
    (Code::Unavailable, "DEPENDENCY_UNAVAILABLE"),
];

/// Asserts exactly one success and every other outcome among `losers` (or
/// shed under load): never INTERNAL, never a second change.
fn one_winner(what: &str, outcomes: &[(Code, String)], losers: &[(Code, &str)]) {
    let counts = tally(outcomes);
    let wins = outcomes
        .iter()
        .filter(|(code, _)| *code == Code::Ok)
        .count();
    assert_eq!(wins, 1, "{what}: {counts:?}");
    for (code, reason) in outcomes.iter().filter(|(code, _)| *code != Code::Ok) {
        assert!(
            losers
                .iter()
                .chain(SHED.iter())
                .any(|(lost, why)| lost == code && why == reason),
            "{what}: {counts:?}"
        );
    }
}

const RACERS: usize = 100;

#[tokio::test]
async fn a_hundred_concurrent_writers_of_one_note_or_plan_leave_exactly_one_change() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    let api = docs(&sandbox);

    // A hundred drafts of one session.
    let held = session(
        &sandbox,
        &owner.2,
        &client_id,
        next_year(3, 2, 9),
        Some(true),
    )
    .await;
    let creates = (0..RACERS).map(|index| {
        let mut api = api.clone();
        let request = pb::CreateSessionNoteRequest {
            client_id: client_id.clone(),
            appointment_id: held.clone(),
            content: Some(content(&format!("Racer {index}."), "", kg(80.0))),
            request_id: uuid::Uuid::new_v4().to_string(),
        };
        let token = owner.2.clone();
        async move { answer(&api.create_session_note(bearer(request, &token)).await) }
    });
    let outcomes = join_all(creates).await;
    one_winner("create", &outcomes, &[(Code::AlreadyExists, "NOTE_EXISTS")]);
    let notes = list_notes(
        &sandbox,
        &owner.2,
        pb::ListSessionNotesRequest {
            client_id: client_id.clone(),
            purpose: TREATMENT,
            ..Default::default()
        },
    )
    .await
    .expect("list")
    .notes;
    assert_eq!(notes.len(), 1, "one note per session");
    let draft = notes[0].clone();

    // A hundred signatures of it.
    let signs = (0..RACERS).map(|_| {
        let mut api = api.clone();
        let request = pb::SignSessionNoteRequest {
            client_id: client_id.clone(),
            note_id: draft.id.clone(),
            etag: draft.etag.clone(),
        };
        let token = owner.2.clone();
        async move { answer(&api.sign_session_note(bearer(request, &token)).await) }
    });
    let outcomes = join_all(signs).await;
    one_winner(
        "sign",
        &outcomes,
        &[
            (Code::FailedPrecondition, "NOTE_SIGNED"),
            (Code::Aborted, "ETAG_MISMATCH"),
        ],
    );
    let signed = get_note(&sandbox, &owner.2, &draft, pb::NoteView::Trainer, false)
        .await
        .expect("read");
    assert_eq!(signed.status, pb::NoteStatus::Signed as i32);

    // A hundred amendments from the same read.
    let amends = (0..RACERS).map(|index| {
        let mut api = api.clone();
        let request = pb::AmendSessionNoteRequest {
            client_id: client_id.clone(),
            note_id: signed.id.clone(),
            reason: format!("correction {index}"),
            content: Some(content(&format!("Amended {index}."), "", None)),
            etag: signed.etag.clone(),
        };
        let token = owner.2.clone();
        async move { answer(&api.amend_session_note(bearer(request, &token)).await) }
    });
    let outcomes = join_all(amends).await;
    one_winner("amend", &outcomes, &[(Code::Aborted, "ETAG_MISMATCH")]);
    let amended = get_note(&sandbox, &owner.2, &signed, pb::NoteView::Trainer, true)
        .await
        .expect("read");
    assert_eq!(amended.amendment_count, 1);
    assert_eq!(amended.amendments.len(), 1);

    // A hundred retries of one create (one request id): one plan, the same
    // answer to all.
    let request = pb::CreateTrainingPlanRequest {
        plan: Some(plan_of(&client_id)),
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let retries = (0..RACERS).map(|_| {
        let mut api = api.clone();
        let request = request.clone();
        let token = owner.2.clone();
        async move {
            api.create_training_plan(bearer(request, &token))
                .await
                .map(|response| response.into_inner().plan.expect("plan").id)
        }
    });
    let mut ids = Vec::new();
    for outcome in join_all(retries).await {
        match outcome {
            Ok(id) => ids.push(id),
            Err(status) => assert!(
                SHED.contains(&(status.code(), reason(&status).as_str())),
                "a retry is answered or shed: {status:?}"
            ),
        }
    }
    assert!(!ids.is_empty());
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one plan for one request id"
    );
    let plans = api
        .clone()
        .list_training_plans(bearer(
            pb::ListTrainingPlansRequest {
                client_id: client_id.clone(),
                purpose: TREATMENT,
                ..Default::default()
            },
            &owner.2,
        ))
        .await
        .expect("plans")
        .into_inner()
        .plans;
    assert_eq!(plans.len(), 1);

    // A hundred revisions of one plan version.
    let plan = plans[0].clone();
    let revisions = (0..RACERS).map(|index| {
        let mut api = api.clone();
        let mut revision = plan.clone();
        revision.goal = format!("Goal {index}");
        let token = owner.2.clone();
        async move {
            answer(
                &api.revise_training_plan(bearer(
                    pb::ReviseTrainingPlanRequest {
                        plan: Some(revision),
                    },
                    &token,
                ))
                .await,
            )
        }
    });
    let outcomes = join_all(revisions).await;
    one_winner("revise", &outcomes, &[(Code::Aborted, "ETAG_MISMATCH")]);
    let current = get_plan(&sandbox, &owner.2, &client_id, &plan.id, 0)
        .await
        .expect("plan");
    assert_eq!(current.version, 2);
    let beyond = get_plan(&sandbox, &owner.2, &client_id, &plan.id, 3)
        .await
        .expect_err("no third version");
    assert_eq!(reason(&beyond), "PLAN_NOT_FOUND");
}

#[tokio::test]
async fn two_hundred_concurrent_charts_and_lists_never_answer_internal_and_others_are_served() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let other = trainer(&sandbox, "Sam").await;
    let client_id = client_of(&sandbox, &owner).await;
    for week in 0..6 {
        let start = next_year(2, 2, 9) + chrono::Duration::weeks(week);
        let note = draft_at(&sandbox, &owner, &client_id, start, "Weekly.").await;
        sign(&sandbox, &owner.2, &note).await.expect("sign");
    }
    let (other_client, _) = signed_note(&sandbox, &other).await;
    let api = docs(&sandbox);
    let flood = (0..200).map(|index| {
        let mut api = api.clone();
        let token = owner.2.clone();
        let client_id = client_id.clone();
        async move {
            if index % 2 == 0 {
                answer(
                    &api.get_progress(bearer(progress_request(&client_id), &token))
                        .await,
                )
            } else {
                answer(
                    &api.list_session_notes(bearer(
                        pb::ListSessionNotesRequest {
                            client_id,
                            purpose: TREATMENT,
                            page_size: 100,
                            ..Default::default()
                        },
                        &token,
                    ))
                    .await,
                )
            }
        }
    });
    let flood = tokio::spawn(join_all(flood));
    // Another trainer's simple read is answered meanwhile.
    let served = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        list_notes(
            &sandbox,
            &other.2,
            pb::ListSessionNotesRequest {
                client_id: other_client,
                purpose: TREATMENT,
                ..Default::default()
            },
        ),
    )
    .await
    .expect("answered within 30 s")
    .expect("answered");
    assert_eq!(served.notes.len(), 1);
    let outcomes = flood.await.expect("flood");
    let counts = tally(&outcomes);
    for (code, reason) in &outcomes {
        assert!(
            *code == Code::Ok || SHED.iter().any(|(shed, why)| shed == code && why == reason),
            "{counts:?}"
        );
    }
    assert!(
        outcomes.iter().any(|(code, _)| *code == Code::Ok),
        "{counts:?}"
    );
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_note_column_client_amendment_or_version_does_not_open() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    let other_client = client_of(&sandbox, &owner).await;
    let source = draft_at(&sandbox, &owner, &client_id, next_year(3, 2, 9), "Source.").await;
    let row_target = draft_at(&sandbox, &owner, &client_id, next_year(3, 3, 9), "Row.").await;
    let column_target = draft_at(&sandbox, &owner, &client_id, next_year(3, 4, 9), "Col.").await;
    let client_target = draft_at(
        &sandbox,
        &owner,
        &other_client,
        next_year(3, 5, 9),
        "Other.",
    )
    .await;
    let (_, amended) = signed_note_at(&sandbox, &owner, next_year(3, 6, 9)).await;
    let amended = amend(
        &sandbox,
        &owner.2,
        &amended,
        "typo",
        content("Amended.", "", kg(79.0)),
    )
    .await
    .expect("amend");
    let plan = create_plan(&sandbox, &owner.2, plan_of(&client_id))
        .await
        .expect("plan");
    let mut second = plan.clone();
    second.goal = "Run 21 km".into();
    revise(&sandbox, &owner.2, second).await.expect("revise");
    let admin = sandbox.db.admin_pool().await;
    let run = |sql: &'static str, target: String, from: String| {
        let admin = admin.clone();
        async move {
            sqlx::query(sql)
                .bind(target)
                .bind(from)
                .execute(&admin)
                .await
                .expect(sql);
        }
    };
    let unreadable = |what: &str, outcome: Result<(Code, String), tonic::Status>| {
        let status = outcome.map(|_| ()).expect_err(what);
        assert_eq!(
            (status.code(), reason(&status)),
            (Code::DataLoss, "SEALED_FIELD_UNREADABLE".to_owned()),
            "{what}"
        );
    };
    let read = |note: pb::SessionNote, history: bool| {
        let sandbox = &sandbox;
        let token = owner.2.clone();
        async move {
            get_note(sandbox, &token, &note, pb::NoteView::Trainer, history)
                .await
                .map(|note| (Code::Ok, format!("{:?}", note.content)))
        }
    };

    run(
        "UPDATE documentation.session_notes SET body = \
         (SELECT body FROM documentation.session_notes WHERE id = $2::uuid) WHERE id = $1::uuid",
        row_target.id.clone(),
        source.id.clone(),
    )
    .await;
    unreadable("a body from another note", read(row_target, false).await);
    let listed = list_notes(
        &sandbox,
        &owner.2,
        pb::ListSessionNotesRequest {
            client_id: client_id.clone(),
            purpose: TREATMENT,
            ..Default::default()
        },
    )
    .await
    .map(|_| (Code::Ok, String::new()));
    unreadable("a list holding it", listed);

    run(
        "UPDATE documentation.session_notes SET measurements = \
         (SELECT body FROM documentation.session_notes WHERE id = $2::uuid) WHERE id = $1::uuid",
        column_target.id.clone(),
        column_target.id.clone(),
    )
    .await;
    unreadable(
        "a body in the measurements column",
        read(column_target.clone(), false).await,
    );
    run(
        "UPDATE documentation.session_notes SET private_notes = \
         (SELECT measurements FROM documentation.session_notes WHERE id = $2::uuid) \
         WHERE id = $1::uuid",
        source.id.clone(),
        source.id.clone(),
    )
    .await;
    unreadable(
        "measurements in the private notes column",
        read(source.clone(), false).await,
    );
    run(
        "UPDATE documentation.session_notes SET body = \
         (SELECT body FROM documentation.session_notes WHERE id = $2::uuid) WHERE id = $1::uuid",
        client_target.id.clone(),
        column_target.id.clone(),
    )
    .await;
    unreadable(
        "a body from another client's note",
        read(client_target, false).await,
    );

    // From a note to its amendment; from one amendment column to another.
    run(
        "UPDATE documentation.session_note_amendments SET body = \
         (SELECT body FROM documentation.session_notes WHERE id = $2::uuid) \
         WHERE note_id = $1::uuid",
        amended.id.clone(),
        amended.id.clone(),
    )
    .await;
    unreadable(
        "the note's body in its amendment",
        read(amended.clone(), false).await,
    );
    unreadable("the same, with history", read(amended.clone(), true).await);
    run(
        "UPDATE documentation.session_note_amendments SET measurements = reason \
         WHERE note_id = $1::uuid AND note_id = $2::uuid",
        amended.id.clone(),
        amended.id.clone(),
    )
    .await;
    // The amended note's client (signed_note_at makes one) is charted.
    let chart = docs(&sandbox)
        .get_progress(bearer(progress_request(&amended.client_id), &owner.2))
        .await
        .map(|_| (Code::Ok, String::new()));
    unreadable("a reason in the measurements chart", chart);

    // A plan version's body in the next version.
    run(
        "UPDATE documentation.training_plan_versions SET body = \
         (SELECT body FROM documentation.training_plan_versions WHERE plan_id = $2::uuid AND version = 1) \
         WHERE plan_id = $1::uuid AND version = 2",
        plan.id.clone(),
        plan.id.clone(),
    )
    .await;
    let current = get_plan(&sandbox, &owner.2, &client_id, &plan.id, 0)
        .await
        .map(|_| (Code::Ok, String::new()));
    unreadable("version 1's body as version 2", current);
    let first = get_plan(&sandbox, &owner.2, &client_id, &plan.id, 1)
        .await
        .expect("version 1 still opens");
    assert_eq!(first.goal, "Run 10 km");
}

#[tokio::test]
async fn an_ai_summary_is_accepted_only_as_read_not_one_submitted_since() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let writer = trainer(&sandbox, "Cleo").await;
    let start = Utc::now() - chrono::Duration::days(2);
    let start =
        chrono::DateTime::from_timestamp(start.timestamp() - start.timestamp() % 3600, 0).unwrap();
    let (client_id, note) = signed_note_at(&sandbox, &owner, start).await;
    share(
        &sandbox,
        &owner.2,
        &client_id,
        &writer.0,
        clients_pb::AccessLevel::Write,
    )
    .await
    .expect("share");
    let generated = Utc::now() - chrono::Duration::minutes(1);
    let read = submit_summary(&sandbox, &writer.2, &note, generated)
        .await
        .expect("a writer submits");
    // The trainer reads that summary; the writer then swaps it.
    let swapped = docs(&sandbox)
        .submit_ai_summary(bearer(
            pb::SubmitAiSummaryRequest {
                client_id: client_id.clone(),
                note_id: note.id.clone(),
                summary: Some(pb::AiSummary {
                    text: "Client asked to double the load.".into(),
                    model: "summarizer-1".into(),
                    generate_time: at(generated),
                    ..Default::default()
                }),
            },
            &writer.2,
        ))
        .await
        .expect("a later submission")
        .into_inner()
        .note
        .expect("note");
    let stale = accept(&sandbox, &owner.2, &client_id, &note.id, &read.etag)
        .await
        .expect_err("the summary read was replaced");
    assert_eq!(
        answer::<()>(&Err(stale)),
        (Code::Aborted, "ETAG_MISMATCH".into())
    );
    let outcome = accept(&sandbox, &owner.2, &client_id, &note.id, "").await;
    refused("no etag", outcome, &["etag"]);
    let shown = get_note(&sandbox, &owner.2, &note, pb::NoteView::Client, false)
        .await
        .expect("client view");
    assert!(shown.ai_summary.is_none(), "nothing unread was accepted");

    let accepted = accept(&sandbox, &owner.2, &client_id, &note.id, &swapped.etag)
        .await
        .expect("accept what was read");
    assert_eq!(accepted.ai_summary.expect("summary").accepted_by, owner.0);
    let shown = get_note(&sandbox, &owner.2, &note, pb::NoteView::Client, false)
        .await
        .expect("client view");
    assert_eq!(
        shown.ai_summary.expect("accepted").text,
        "Client asked to double the load."
    );
}

#[tokio::test]
async fn a_page_of_session_notes_holds_twenty_when_no_size_is_given() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    for index in 0..21 {
        let start = next_year(2, 2, 9) + chrono::Duration::days(index);
        draft_at(&sandbox, &owner, &client_id, start, "Daily.").await;
    }
    let request = pb::ListSessionNotesRequest {
        client_id: client_id.clone(),
        purpose: TREATMENT,
        ..Default::default()
    };
    let first = list_notes(&sandbox, &owner.2, request.clone())
        .await
        .expect("first page");
    assert_eq!(first.notes.len(), 20, "the contract's default");
    let rest = list_notes(
        &sandbox,
        &owner.2,
        pb::ListSessionNotesRequest {
            page_token: first.next_page_token,
            ..request
        },
    )
    .await
    .expect("second page");
    assert_eq!(rest.notes.len(), 1);
    assert!(rest.next_page_token.is_empty());
}

#[tokio::test]
async fn once_the_client_is_purged_their_documentation_answers_subject_erased_never_internal() {
    // Clients purges at once (no retention period).
    let registry = fitflow_platform::Registry::new(vec![
        std::sync::Arc::new(fitflow_identity::IdentityService),
        std::sync::Arc::new(fitflow_tenancy::TenancyService),
        std::sync::Arc::new(fitflow_clients::ClientsService::with_retention(
            chrono::Duration::zero(),
        )),
        std::sync::Arc::new(fitflow_scheduling::SchedulingService),
        std::sync::Arc::new(fitflow_documentation::DocumentationService),
        std::sync::Arc::new(fitflow_billing::BillingService),
        std::sync::Arc::new(fitflow_audit::AuditService),
    ])
    .expect("registry");
    let sandbox = Sandbox::with_registry(registry).await;
    let stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let (client_id, note) = signed_note(&sandbox, &owner).await;
    let draft = draft_at(&sandbox, &owner, &client_id, next_year(3, 9, 15), "Draft.").await;
    let plan = create_plan(&sandbox, &owner.2, plan_of(&client_id))
        .await
        .expect("plan");
    let clients = |peer: &str| {
        fitflow_proto::clients::clients_service_client::ClientsServiceClient::new(
            sandbox.channel("clients", peer),
        )
    };
    clients("gateway")
        .delete_client(bearer(
            clients_pb::DeleteClientRequest {
                client_id: client_id.clone(),
                etag: String::new(),
            },
            &owner.2,
        ))
        .await
        .expect("soft delete");
    let (_, operator) = sandbox.operator().await;
    clients("operator")
        .purge_client(bearer(
            clients_pb::PurgeClientRequest {
                client_id: client_id.clone(),
            },
            &operator.access_token,
        ))
        .await
        .expect("purge");
    // Other processes forget a cached key within their cache time; a
    // restart stands for that wait.
    stack.shutdown().await;
    let _stack = sandbox.start(EVERYONE).await;

    // The note's own trainer still reaches their rows (RLS), but nothing
    // opens: every read and write answers SUBJECT_ERASED.
    let erased = (Code::NotFound, "SUBJECT_ERASED".to_owned());
    let outcome = get_note(&sandbox, &owner.2, &note, pb::NoteView::Trainer, true).await;
    assert_eq!(answer(&outcome), erased, "GetSessionNote");
    let outcome = list_notes(
        &sandbox,
        &owner.2,
        pb::ListSessionNotesRequest {
            client_id: client_id.clone(),
            purpose: TREATMENT,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(answer(&outcome), erased, "ListSessionNotes");
    let outcome = amend(&sandbox, &owner.2, &note, "late", content("x", "", None)).await;
    assert_eq!(answer(&outcome), erased, "AmendSessionNote");
    let outcome = docs(&sandbox)
        .update_session_note(bearer(
            pb::UpdateSessionNoteRequest {
                client_id: client_id.clone(),
                note_id: draft.id.clone(),
                content: Some(content("x", "", None)),
                etag: draft.etag.clone(),
            },
            &owner.2,
        ))
        .await;
    assert_eq!(answer(&outcome), erased, "UpdateSessionNote");
    let outcome = get_plan(&sandbox, &owner.2, &client_id, &plan.id, 0).await;
    assert_eq!(answer(&outcome), erased, "GetTrainingPlan");
    let outcome = DocumentationServiceClient::new(sandbox.channel(DOCUMENTATION, "clients"))
        .export_client_documentation(tonic::Request::new(pb::ExportClientDocumentationRequest {
            client_id: client_id.clone(),
        }))
        .await;
    assert_eq!(answer(&outcome), erased, "ExportClientDocumentation");
    let outcome = DocumentationServiceClient::new(sandbox.channel(DOCUMENTATION, "clients"))
        .stream_client_documentation(tonic::Request::new(pb::StreamClientDocumentationRequest {
            client_id: client_id.clone(),
        }))
        .await;
    assert_eq!(answer(&outcome), erased, "StreamClientDocumentation");
    let after = get_note(&sandbox, &owner.2, &note, pb::NoteView::Trainer, false)
        .await
        .expect_err("still erased");
    assert!(!format!("{after:?}").contains("Knee"), "no plaintext");
}

/// The largest content one request carries (under the service's 1 MiB
/// limit): every SOAP field at its 20,000 characters and sixty exercises
/// with 2,000-character notes, in four-byte characters.
fn heaviest_content(tag: &str) -> pb::SessionNoteContent {
    let text = |chars: usize| format!("{tag}{}", "𝄞".repeat(chars - tag.chars().count()));
    pb::SessionNoteContent {
        subjective: text(20_000),
        objective: text(20_000),
        assessment: text(20_000),
        plan: text(20_000),
        exercises: (0..60)
            .map(|_| pb::Exercise {
                name: "Row".into(),
                notes: text(2_000),
                ..Default::default()
            })
            .collect(),
        measurements: None,
        private_notes: text(20_000),
    }
}

#[tokio::test]
async fn a_client_with_more_documentation_than_one_default_grpc_message_is_still_exported_and_listed()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    let mut notes = Vec::new();
    for index in 0..5 {
        let start = next_year(2, 2, 9) + chrono::Duration::days(index);
        let appointment = session(&sandbox, &owner.2, &client_id, start, Some(true)).await;
        let note = create_note(
            &sandbox,
            &owner.2,
            &client_id,
            &appointment,
            heaviest_content(&format!("note{index}")),
        )
        .await
        .expect("a heavy note");
        notes.push(note);
    }
    // Over 4 MiB in all: the default gRPC message limit.
    let total: usize = notes.iter().map(prost::Message::encoded_len).sum();
    assert!(total > 4 * 1024 * 1024, "{total} bytes");

    // Every note is listed, a page at a time, each page readable.
    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = list_notes(
            &sandbox,
            &owner.2,
            pb::ListSessionNotesRequest {
                client_id: client_id.clone(),
                purpose: TREATMENT,
                page_size: 100,
                page_token,
                ..Default::default()
            },
        )
        .await
        .expect("a page within the message limit");
        assert!(!page.notes.is_empty());
        listed.extend(page.notes.into_iter().map(|note| note.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut expected: Vec<String> = notes.iter().map(|note| note.id.clone()).collect();
    expected.reverse();
    assert_eq!(listed, expected, "every note once, latest session first");

    // The client's export (the right of access) holds all of it.
    let mut stream = fitflow_proto::clients::clients_service_client::ClientsServiceClient::new(
        sandbox.channel("clients", "gateway"),
    )
    .export_client(bearer(
        clients_pb::ExportClientRequest {
            client_id: client_id.clone(),
            purpose: AccessPurpose::Operations as i32,
        },
        &owner.2,
    ))
    .await
    .expect("export")
    .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await.expect("every chunk") {
        bytes.extend(chunk.data);
    }
    let document: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let exported = document["documentation"]["notes"]
        .as_array()
        .expect("notes");
    assert_eq!(exported.len(), 5);
}

async fn list_plans(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    page_size: i32,
    page_token: &str,
) -> Result<pb::ListTrainingPlansResponse, tonic::Status> {
    docs(sandbox)
        .list_training_plans(bearer(
            pb::ListTrainingPlansRequest {
                client_id: client_id.into(),
                purpose: TREATMENT,
                page_size,
                page_token: page_token.into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_training_plans_page_token_forged_tampered_foreign_or_holding_control_characters_is_refused_by_name()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let reader = trainer(&sandbox, "Rita").await;
    let client_id = client_of(&sandbox, &owner).await;
    for _ in 0..3 {
        create_plan(&sandbox, &owner.2, plan_of(&client_id))
            .await
            .expect("plan");
    }
    share(
        &sandbox,
        &owner.2,
        &client_id,
        &reader.0,
        clients_pb::AccessLevel::Read,
    )
    .await
    .expect("share");
    let first = list_plans(&sandbox, &owner.2, &client_id, 1, "")
        .await
        .expect("first page");
    let token = first.next_page_token;
    assert!(!token.is_empty(), "a second page");
    // A token of the notes list of the same client and caller.
    let note = draft_at(&sandbox, &owner, &client_id, next_year(4, 6, 9), "Text.").await;
    sign(&sandbox, &owner.2, &note).await.expect("sign");
    let note = draft_at(&sandbox, &owner, &client_id, next_year(4, 6, 11), "Text.").await;
    sign(&sandbox, &owner.2, &note).await.expect("sign");
    let notes_token = list_notes(
        &sandbox,
        &owner.2,
        pb::ListSessionNotesRequest {
            client_id: client_id.clone(),
            purpose: TREATMENT,
            page_size: 1,
            ..Default::default()
        },
    )
    .await
    .expect("notes page")
    .next_page_token;
    assert!(!notes_token.is_empty(), "a notes token");

    let mut tampered = token.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    for (what, who, page_token) in [
        (
            "another user (who reads the client)",
            &reader.2,
            token.clone(),
        ),
        ("a tampered token", &owner.2, tampered),
        ("a token with a suffix", &owner.2, format!("{token}A")),
        (
            "a truncated token",
            &owner.2,
            token[..token.len() - 2].to_owned(),
        ),
        ("an oversized token", &owner.2, "A".repeat(5_000)),
        ("a notes list's token", &owner.2, notes_token.clone()),
        ("a NUL in the token", &owner.2, format!("{token}\0")),
        ("an ESC in the token", &owner.2, format!("\u{1b}{token}")),
        (
            "a C1 control in the token",
            &owner.2,
            format!("{token}\u{85}"),
        ),
        (
            "a made-up token",
            &owner.2,
            "AAAAAAAAAAAAAAAAAAAAAAAA".into(),
        ),
    ] {
        let outcome = list_plans(&sandbox, who, &client_id, 1, &page_token).await;
        refused(what, outcome, &["page_token"]);
    }
    for (what, page_size) in [("negative", -1), ("the lowest", i32::MIN)] {
        let outcome = list_plans(&sandbox, &owner.2, &client_id, page_size, "").await;
        refused(what, outcome, &["page_size"]);
    }
    // The notes list refuses the same characters in its token.
    for (what, page_token) in [
        ("a NUL in a notes token", format!("{notes_token}\0")),
        ("a DEL in a notes token", format!("\u{7f}{notes_token}")),
        ("a plans token on notes", token.clone()),
    ] {
        let outcome = list_notes(
            &sandbox,
            &owner.2,
            pb::ListSessionNotesRequest {
                client_id: client_id.clone(),
                purpose: TREATMENT,
                page_size: 1,
                page_token,
                ..Default::default()
            },
        )
        .await;
        refused(what, outcome, &["page_token"]);
    }
    // The largest size is capped, not refused; the token still resumes.
    let whole = list_plans(&sandbox, &owner.2, &client_id, i32::MAX, "")
        .await
        .expect("capped");
    assert_eq!(whole.plans.len(), 3);
    let second = list_plans(&sandbox, &owner.2, &client_id, 1, &token)
        .await
        .expect("the genuine token resumes");
    assert_eq!(second.plans.len(), 1);
    assert_ne!(second.plans[0].id, first.plans[0].id);
}

#[tokio::test]
async fn fifty_amendments_raced_at_the_history_budget_admit_exactly_those_that_fit_and_none_past_it()
 {
    const HISTORY_BUDGET: usize = 3 * 1024 * 1024 + 512 * 1024;
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    let appointment = session(
        &sandbox,
        &owner.2,
        &client_id,
        next_year(7, 1, 9),
        Some(true),
    )
    .await;
    let draft = create_note(
        &sandbox,
        &owner.2,
        &client_id,
        &appointment,
        heaviest_content("original"),
    )
    .await
    .expect("a heavy note");
    let signed = sign(&sandbox, &owner.2, &draft).await.expect("sign");
    // Fifty racers amend with about 320 KiB each, from the same read; a
    // racer whose etag went stale reads again and retries: about seven fit.
    let amendment = |index: usize| {
        let text = format!("racer{index:02}{}", "𝄞".repeat(19_990));
        pb::SessionNoteContent {
            subjective: text.clone(),
            objective: text.clone(),
            assessment: text.clone(),
            plan: text,
            ..Default::default()
        }
    };
    let racers = (0..50).map(|index| {
        let sandbox = &sandbox;
        let token = owner.2.clone();
        let mut note = signed.clone();
        async move {
            for _ in 0..500 {
                match amend(sandbox, &token, &note, "racing", amendment(index)).await {
                    Err(status) if status.code() == Code::Aborted => {
                        note = get_note(sandbox, &token, &note, pb::NoteView::Trainer, false)
                            .await
                            .expect("read again");
                    }
                    outcome => return outcome,
                }
            }
            panic!("racer {index} never got its turn");
        }
    });
    let outcomes = join_all(racers).await;
    let mut admitted = 0;
    for outcome in &outcomes {
        match outcome {
            Ok(note) => {
                admitted += 1;
                let mut whole = note.clone();
                whole.ai_summary = None;
                assert!(prost::Message::encoded_len(&whole) <= HISTORY_BUDGET);
            }
            Err(status) => assert_eq!(
                answer::<()>(&Err(status.clone())),
                (Code::FailedPrecondition, "NOTE_HISTORY_TOO_LARGE".into()),
            ),
        }
    }
    let read = get_note(&sandbox, &owner.2, &signed, pb::NoteView::Trainer, true)
        .await
        .expect("the whole history reads back");
    assert!(admitted > 1 && admitted < 50, "{admitted} admitted");
    assert_eq!(read.amendments.len(), admitted, "exactly the admitted ones");
    assert_eq!(
        usize::try_from(read.amendment_count).expect("count"),
        admitted
    );
    let history = prost::Message::encoded_len(&read);
    assert!(history <= HISTORY_BUDGET, "{history} bytes");
    // At the edge: one more of the same size does not fit either.
    let one_more = amend(&sandbox, &owner.2, &read, "late", amendment(99))
        .await
        .expect_err("past the budget");
    assert_eq!(reason(&one_more), "NOTE_HISTORY_TOO_LARGE");
    let after = get_note(&sandbox, &owner.2, &signed, pb::NoteView::Trainer, true)
        .await
        .expect("read");
    assert_eq!(after.etag, read.etag, "nothing written");
}

#[tokio::test]
async fn a_client_purged_while_their_export_streams_ends_it_whole_or_as_subject_erased_never_internal()
 {
    // Clients purges at once (no retention period).
    let registry = fitflow_platform::Registry::new(vec![
        std::sync::Arc::new(fitflow_identity::IdentityService),
        std::sync::Arc::new(fitflow_tenancy::TenancyService),
        std::sync::Arc::new(fitflow_clients::ClientsService::with_retention(
            chrono::Duration::zero(),
        )),
        std::sync::Arc::new(fitflow_scheduling::SchedulingService),
        std::sync::Arc::new(fitflow_documentation::DocumentationService),
        std::sync::Arc::new(fitflow_billing::BillingService),
        std::sync::Arc::new(fitflow_audit::AuditService),
    ])
    .expect("registry");
    let sandbox = Sandbox::with_registry(registry).await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    // About 10 MB: several messages, each read when the stream asks.
    for index in 0..12 {
        let start = next_year(8, 1, 9) + chrono::Duration::days(index);
        let appointment = session(&sandbox, &owner.2, &client_id, start, Some(true)).await;
        create_note(
            &sandbox,
            &owner.2,
            &client_id,
            &appointment,
            heaviest_content(&format!("note{index}")),
        )
        .await
        .expect("a heavy note");
    }
    let mut stream = DocumentationServiceClient::new(sandbox.channel(DOCUMENTATION, "clients"))
        .stream_client_documentation(tonic::Request::new(pb::StreamClientDocumentationRequest {
            client_id: client_id.clone(),
        }))
        .await
        .expect("the export starts")
        .into_inner();
    let first = stream
        .message()
        .await
        .expect("the first message")
        .expect("some notes");
    let mut notes = first.notes.len();
    assert!(notes < 12, "more than one message");

    let clients = |peer: &str| {
        fitflow_proto::clients::clients_service_client::ClientsServiceClient::new(
            sandbox.channel("clients", peer),
        )
    };
    clients("gateway")
        .delete_client(bearer(
            clients_pb::DeleteClientRequest {
                client_id: client_id.clone(),
                etag: String::new(),
            },
            &owner.2,
        ))
        .await
        .expect("soft delete");
    let (_, operator) = sandbox.operator().await;
    clients("operator")
        .purge_client(bearer(
            clients_pb::PurgeClientRequest {
                client_id: client_id.clone(),
            },
            &operator.access_token,
        ))
        .await
        .expect("purge");

    // The rest comes (keys cached a while) or the stream ends as erased.
    let ended = loop {
        match stream.message().await {
            Ok(Some(message)) => notes += message.notes.len(),
            Ok(None) => break (Code::Ok, String::new()),
            Err(status) => break answer::<()>(&Err(status)),
        }
    };
    match ended {
        (Code::Ok, _) => assert_eq!(notes, 12, "a whole export"),
        ended => assert_eq!(ended, (Code::NotFound, "SUBJECT_ERASED".into())),
    }
}
