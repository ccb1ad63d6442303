//! Documentation end to end: session notes that are signed and then only
//! amended, training plans that keep every version, progress charts — over
//! identity, tenancy, clients, scheduling, documentation and audit on real
//! mTLS, attacked as another trainer, a revoked or read-only grantee, a
//! supervisor of another team and a wrong peer.

use chrono::{DateTime, TimeZone as _, Utc};
use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::clients as clients_pb;
use fitflow_proto::clients::AccessPurpose;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::documentation as pb;
use fitflow_proto::documentation::documentation_service_client::DocumentationServiceClient;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::scheduling as sched;
use fitflow_proto::scheduling::scheduling_service_client::SchedulingServiceClient;
use prost_types::Timestamp;
use secrecy::ExposeSecret as _;
use tonic::Code;
use tonic::transport::Channel;

use crate::clients::{code, create, full_client, join_team, share};
use crate::identity_support::{reason, violated_fields};
use crate::tenancy::{TENANCY, trainer};

pub(crate) const CLIENTS: &str = "clients";
pub(crate) const SCHEDULING: &str = "scheduling";
pub(crate) const DOCUMENTATION: &str = "documentation";
// Billing too: a client's export (which holds their documentation) asks it.
pub(crate) const EVERYONE: &[&str] = &[
    IDENTITY,
    TENANCY,
    CLIENTS,
    SCHEDULING,
    DOCUMENTATION,
    "billing",
    AUDIT,
];

pub(crate) type Trainer = (String, String, String);

pub(crate) fn docs(sandbox: &Sandbox) -> DocumentationServiceClient<Channel> {
    DocumentationServiceClient::new(sandbox.channel(DOCUMENTATION, "gateway"))
}

fn scheduling(sandbox: &Sandbox) -> SchedulingServiceClient<Channel> {
    SchedulingServiceClient::new(sandbox.channel(SCHEDULING, "gateway"))
}

pub(crate) fn at(time: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    })
}

pub(crate) fn day(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

/// A time next year (partitions exist for this year and the next two).
pub(crate) fn next_year(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    let year = chrono::Datelike::year(&Utc::now()) + 1;
    Utc.with_ymd_and_hms(year, month, day, hour, 0, 0).unwrap()
}

pub(crate) fn kg(value: f64) -> Option<pb::Weight> {
    Some(pb::Weight {
        value,
        unit: pb::WeightUnit::Kg as i32,
    })
}

pub(crate) fn content(
    subjective: &str,
    private_notes: &str,
    weight: Option<pb::Weight>,
) -> pb::SessionNoteContent {
    pb::SessionNoteContent {
        subjective: subjective.into(),
        objective: "Full range of motion.".into(),
        assessment: "Progressing.".into(),
        plan: "Add 2.5 kg next week.".into(),
        exercises: vec![pb::Exercise {
            name: "Back squat".into(),
            sets: 5,
            reps: 5,
            load: kg(80.0),
            rpe: 8.0,
            ..Default::default()
        }],
        measurements: Some(pb::Measurements {
            body_weight: weight,
            resting_heart_rate: Some(58),
            ..Default::default()
        }),
        private_notes: private_notes.into(),
    }
}

/// A client of `owner`'s; its id.
pub(crate) async fn client_of(sandbox: &Sandbox, owner: &Trainer) -> String {
    create(sandbox, &owner.2, full_client("Zoé", "Roy", "", ""))
        .await
        .expect("create client")
        .id
}

/// An individual class type of the trainer whose token this is; its id.
async fn class_type(sandbox: &Sandbox, token: &str) -> String {
    scheduling(sandbox)
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
        .id
}

/// An appointment of the trainer whose token this is with `client_id` at
/// `start`, completed with the client present when `attended`; its id.
pub(crate) async fn session(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    start: DateTime<Utc>,
    attended: Option<bool>,
) -> String {
    let class_type_id = class_type(sandbox, token).await;
    let appointment = scheduling(sandbox)
        .book_appointment(bearer(
            sched::BookAppointmentRequest {
                appointment: Some(sched::Appointment {
                    class_type_id,
                    start_time: at(start),
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
    if let Some(attended) = attended {
        scheduling(sandbox)
            .complete_appointment(bearer(
                sched::CompleteAppointmentRequest {
                    appointment_id: appointment.id.clone(),
                    attendance: vec![sched::Attendance {
                        client_id: client_id.into(),
                        attended,
                    }],
                    etag: String::new(),
                },
                token,
            ))
            .await
            .expect("complete");
    }
    appointment.id
}

pub(crate) async fn create_note(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    appointment_id: &str,
    content: pb::SessionNoteContent,
) -> Result<pb::SessionNote, tonic::Status> {
    docs(sandbox)
        .create_session_note(bearer(
            pb::CreateSessionNoteRequest {
                client_id: client_id.into(),
                appointment_id: appointment_id.into(),
                content: Some(content),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().note.expect("note"))
}

pub(crate) async fn sign(
    sandbox: &Sandbox,
    token: &str,
    note: &pb::SessionNote,
) -> Result<pb::SessionNote, tonic::Status> {
    docs(sandbox)
        .sign_session_note(bearer(
            pb::SignSessionNoteRequest {
                client_id: note.client_id.clone(),
                note_id: note.id.clone(),
                etag: note.etag.clone(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().note.expect("note"))
}

pub(crate) async fn get_note(
    sandbox: &Sandbox,
    token: &str,
    note: &pb::SessionNote,
    view: pb::NoteView,
    include_history: bool,
) -> Result<pb::SessionNote, tonic::Status> {
    docs(sandbox)
        .get_session_note(bearer(
            pb::GetSessionNoteRequest {
                client_id: note.client_id.clone(),
                note_id: note.id.clone(),
                view: view as i32,
                include_history,
                purpose: AccessPurpose::Treatment as i32,
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().note.expect("note"))
}

pub(crate) async fn amend(
    sandbox: &Sandbox,
    token: &str,
    note: &pb::SessionNote,
    reason: &str,
    content: pb::SessionNoteContent,
) -> Result<pb::SessionNote, tonic::Status> {
    docs(sandbox)
        .amend_session_note(bearer(
            pb::AmendSessionNoteRequest {
                client_id: note.client_id.clone(),
                note_id: note.id.clone(),
                reason: reason.into(),
                content: Some(content),
                etag: note.etag.clone(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().note.expect("note"))
}

/// A signed note of `owner`'s new client; (client id, note).
pub(crate) async fn signed_note(sandbox: &Sandbox, owner: &Trainer) -> (String, pb::SessionNote) {
    signed_note_at(sandbox, owner, next_year(3, 2, 15)).await
}

/// The same for a session at `start`.
pub(crate) async fn signed_note_at(
    sandbox: &Sandbox,
    owner: &Trainer,
    start: DateTime<Utc>,
) -> (String, pb::SessionNote) {
    let client_id = client_of(sandbox, owner).await;
    let appointment = session(sandbox, &owner.2, &client_id, start, Some(true)).await;
    let draft = create_note(
        sandbox,
        &owner.2,
        &client_id,
        &appointment,
        content("Knee feels good.", "Mentions stress at work.", kg(80.0)),
    )
    .await
    .expect("create note");
    let note = sign(sandbox, &owner.2, &draft).await.expect("sign");
    (client_id, note)
}

#[tokio::test]
async fn a_signed_note_never_changes_and_amendments_keep_the_original_beside_the_new_text() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    let appointment = session(
        &sandbox,
        &owner.2,
        &client_id,
        next_year(3, 2, 15),
        Some(true),
    )
    .await;
    let draft = create_note(
        &sandbox,
        &owner.2,
        &client_id,
        &appointment,
        content("Knee sore.", "", kg(81.0)),
    )
    .await
    .expect("create note");
    assert_eq!(draft.status, pb::NoteStatus::Draft as i32);
    assert_eq!(draft.trainer_id, owner.0);
    let year = chrono::Datelike::year(&next_year(3, 2, 15));
    assert_eq!(
        draft.session_date,
        day(year, 3, 2),
        "the session's local date"
    );

    // A draft is edited freely (with its etag).
    let edited = docs(&sandbox)
        .update_session_note(bearer(
            pb::UpdateSessionNoteRequest {
                client_id: client_id.clone(),
                note_id: draft.id.clone(),
                content: Some(content("Knee feels good.", "Mentions stress.", kg(80.0))),
                etag: draft.etag.clone(),
            },
            &owner.2,
        ))
        .await
        .expect("edit draft")
        .into_inner()
        .note
        .expect("note");
    let stale = sign(&sandbox, &owner.2, &draft)
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    assert!(
        amend(&sandbox, &owner.2, &edited, "why", content("x", "", None))
            .await
            .is_err_and(|status| reason(&status) == "NOTE_DRAFT"),
        "a draft is edited, not amended"
    );
    let signed = sign(&sandbox, &owner.2, &edited).await.expect("sign");
    assert_eq!(signed.status, pb::NoteStatus::Signed as i32);
    assert_eq!(signed.signed_by, owner.0);

    // No RPC alters the signed text.
    let edit = docs(&sandbox)
        .update_session_note(bearer(
            pb::UpdateSessionNoteRequest {
                client_id: client_id.clone(),
                note_id: signed.id.clone(),
                content: Some(content("Rewritten history.", "", None)),
                etag: signed.etag.clone(),
            },
            &owner.2,
        ))
        .await
        .expect_err("a signed note is not edited");
    assert_eq!(edit.code(), Code::FailedPrecondition);
    assert_eq!(reason(&edit), "NOTE_SIGNED");
    let resign = sign(&sandbox, &owner.2, &signed)
        .await
        .expect_err("signed once");
    assert_eq!(reason(&resign), "NOTE_SIGNED");
    // Not even the schema owner's own runtime role can: a trigger refuses it.
    let admin = sandbox.db.admin_pool().await;
    let rewrite =
        sqlx::query("UPDATE documentation.session_notes SET body = '\\x00' WHERE id = $1::uuid")
            .bind(&signed.id)
            .execute(&admin)
            .await
            .expect_err("the database refuses to rewrite a signed note");
    assert!(rewrite.to_string().contains("never changes"), "{rewrite}");

    let amended = amend(
        &sandbox,
        &owner.2,
        &signed,
        "Weight was misread from the scale.",
        content("Knee feels good.", "Mentions stress.", kg(79.0)),
    )
    .await
    .expect("amend");
    assert_eq!(amended.amendment_count, 1);
    let amendment = &amended.amendments[0];
    assert_eq!(amendment.author_id, owner.0);
    assert_eq!(amendment.reason, "Weight was misread from the scale.");
    let history = get_note(&sandbox, &owner.2, &signed, pb::NoteView::Trainer, true)
        .await
        .expect("read with history");
    let weight = |content: &Option<pb::SessionNoteContent>| {
        content
            .as_ref()
            .and_then(|content| content.measurements.as_ref())
            .and_then(|measurements| measurements.body_weight.as_ref())
            .map(|weight| weight.value)
    };
    assert_eq!(weight(&history.content), Some(79.0), "current text");
    assert_eq!(
        weight(&history.original_content),
        Some(80.0),
        "original kept"
    );
    assert_eq!(history.amendments.len(), 1);
    let current = get_note(&sandbox, &owner.2, &signed, pb::NoteView::Trainer, false)
        .await
        .expect("read");
    assert_eq!(weight(&current.content), Some(79.0));
    assert!(current.amendments.is_empty() && current.original_content.is_none());

    // The client's view: no private notes anywhere in the history.
    let for_client = get_note(&sandbox, &owner.2, &signed, pb::NoteView::Client, true)
        .await
        .expect("client view");
    assert_eq!(for_client.content.as_ref().unwrap().private_notes, "");
    assert_eq!(
        for_client.original_content.as_ref().unwrap().private_notes,
        ""
    );
    assert_eq!(
        for_client.amendments[0]
            .content
            .as_ref()
            .unwrap()
            .private_notes,
        ""
    );
    assert_eq!(
        for_client.content.as_ref().unwrap().subjective,
        "Knee feels good."
    );
    assert_eq!(
        history.content.as_ref().unwrap().private_notes,
        "Mentions stress."
    );
}

#[tokio::test]
async fn a_note_needs_a_held_session_the_client_attended_and_there_is_one_per_session() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let other = trainer(&sandbox, "Olga").await;
    let client_id = client_of(&sandbox, &owner).await;
    let note = || content("Fine.", "", None);

    let booked = session(&sandbox, &owner.2, &client_id, next_year(4, 1, 15), None).await;
    let not_held = create_note(&sandbox, &owner.2, &client_id, &booked, note())
        .await
        .expect_err("not held yet");
    assert_eq!(reason(&not_held), "NOT_ATTENDED");
    let absent = session(
        &sandbox,
        &owner.2,
        &client_id,
        next_year(4, 2, 15),
        Some(false),
    )
    .await;
    let no_show = create_note(&sandbox, &owner.2, &client_id, &absent, note())
        .await
        .expect_err("the client did not come");
    assert_eq!(no_show.code(), Code::FailedPrecondition);
    assert_eq!(reason(&no_show), "NOT_ATTENDED");

    // Another trainer's client and session.
    let theirs = client_of(&sandbox, &other).await;
    let their_session = session(&sandbox, &other.2, &theirs, next_year(4, 3, 15), Some(true)).await;
    let foreign = create_note(&sandbox, &owner.2, &theirs, &their_session, note())
        .await
        .expect_err("not my client");
    assert_eq!(reason(&foreign), "CLIENT_NOT_FOUND");
    let wrong_pair = create_note(&sandbox, &owner.2, &client_id, &their_session, note())
        .await
        .expect_err("my client was not in that session");
    assert_eq!(reason(&wrong_pair), "APPOINTMENT_NOT_FOUND");

    let held = session(
        &sandbox,
        &owner.2,
        &client_id,
        next_year(4, 4, 15),
        Some(true),
    )
    .await;
    let request = pb::CreateSessionNoteRequest {
        client_id: client_id.clone(),
        appointment_id: held.clone(),
        content: Some(note()),
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let first = docs(&sandbox)
        .create_session_note(bearer(request.clone(), &owner.2))
        .await
        .expect("create")
        .into_inner()
        .note
        .expect("note");
    let retry = docs(&sandbox)
        .create_session_note(bearer(request, &owner.2))
        .await
        .expect("a retry answers the same note")
        .into_inner()
        .note
        .expect("note");
    assert_eq!(first.id, retry.id);
    let second = create_note(&sandbox, &owner.2, &client_id, &held, note())
        .await
        .expect_err("one note per session and client");
    assert_eq!(second.code(), Code::AlreadyExists);
    assert_eq!(reason(&second), "NOTE_EXISTS");
}

/// Every RPC as `token`'s user against `owner`'s client and signed note;
/// the codes, in RPC order.
pub(crate) async fn attack(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    note: &pb::SessionNote,
    plan: &pb::TrainingPlan,
) -> Vec<(&'static str, Code)> {
    let mut docs = docs(sandbox);
    let purpose = AccessPurpose::Treatment as i32;
    let mut codes = Vec::new();
    let outcome = docs
        .update_session_note(bearer(
            pb::UpdateSessionNoteRequest {
                client_id: client_id.into(),
                note_id: note.id.clone(),
                content: Some(content("x", "", None)),
                etag: note.etag.clone(),
            },
            token,
        ))
        .await;
    codes.push(("UpdateSessionNote", code(&outcome)));
    let outcome = amend(sandbox, token, note, "attack", content("x", "", None)).await;
    codes.push(("AmendSessionNote", code(&outcome)));
    let outcome = get_note(sandbox, token, note, pb::NoteView::Trainer, true).await;
    codes.push(("GetSessionNote", code(&outcome)));
    let outcome = docs
        .list_session_notes(bearer(
            pb::ListSessionNotesRequest {
                client_id: client_id.into(),
                purpose,
                ..Default::default()
            },
            token,
        ))
        .await;
    codes.push(("ListSessionNotes", code(&outcome)));
    let outcome = docs
        .submit_ai_summary(bearer(
            pb::SubmitAiSummaryRequest {
                client_id: client_id.into(),
                note_id: note.id.clone(),
                summary: Some(pb::AiSummary {
                    text: "attack".into(),
                    model: "m".into(),
                    generate_time: at(Utc::now()),
                    ..Default::default()
                }),
            },
            token,
        ))
        .await;
    codes.push(("SubmitAiSummary", code(&outcome)));
    let outcome = docs
        .revise_training_plan(bearer(
            pb::ReviseTrainingPlanRequest {
                plan: Some(plan.clone()),
            },
            token,
        ))
        .await;
    codes.push(("ReviseTrainingPlan", code(&outcome)));
    let outcome = docs
        .get_training_plan(bearer(
            pb::GetTrainingPlanRequest {
                client_id: client_id.into(),
                plan_id: plan.id.clone(),
                version: 0,
                purpose,
            },
            token,
        ))
        .await;
    codes.push(("GetTrainingPlan", code(&outcome)));
    let outcome = docs
        .list_training_plans(bearer(
            pb::ListTrainingPlansRequest {
                client_id: client_id.into(),
                purpose,
                ..Default::default()
            },
            token,
        ))
        .await;
    codes.push(("ListTrainingPlans", code(&outcome)));
    let outcome = docs
        .get_progress(bearer(
            pb::GetProgressRequest {
                client_id: client_id.into(),
                metric: pb::ProgressMetricKind::BodyWeight as i32,
                start_date: day(2020, 1, 1),
                end_date: day(2029, 12, 31),
                purpose,
                ..Default::default()
            },
            token,
        ))
        .await;
    codes.push(("GetProgress", code(&outcome)));
    let mut new_plan = plan_of(client_id);
    new_plan.trainer_id = String::new();
    let outcome = docs
        .create_training_plan(bearer(
            pb::CreateTrainingPlanRequest {
                plan: Some(new_plan),
                request_id: String::new(),
            },
            token,
        ))
        .await;
    codes.push(("CreateTrainingPlan", code(&outcome)));
    codes
}

pub(crate) fn plan_of(client_id: &str) -> pb::TrainingPlan {
    pb::TrainingPlan {
        client_id: client_id.into(),
        name: "Base building".into(),
        goal: "Run 10 km".into(),
        start_date: day(2027, 1, 4),
        end_date: day(2027, 3, 28),
        sessions_per_week: 2,
        weeks: vec![pb::PlanWeek {
            sessions: vec![pb::PlannedSession {
                name: "Lower body".into(),
                exercises: vec![pb::Exercise {
                    name: "Deadlift".into(),
                    sets: 3,
                    reps: 5,
                    load: kg(100.0),
                    ..Default::default()
                }],
            }],
        }],
        metrics: vec![pb::ProgressMetric {
            name: "body weight".into(),
            target: "75 kg".into(),
        }],
        ..Default::default()
    }
}

pub(crate) async fn create_plan(
    sandbox: &Sandbox,
    token: &str,
    plan: pb::TrainingPlan,
) -> Result<pb::TrainingPlan, tonic::Status> {
    docs(sandbox)
        .create_training_plan(bearer(
            pb::CreateTrainingPlanRequest {
                plan: Some(plan),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().plan.expect("plan"))
}

#[tokio::test]
async fn strangers_revoked_grantees_and_other_teams_reach_nothing_and_readers_cannot_write() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let stranger = trainer(&sandbox, "Sam").await;
    let reader = trainer(&sandbox, "Rita").await;
    let revoked = trainer(&sandbox, "Vic").await;
    let other_lead = trainer(&sandbox, "Lou").await;
    let other_member = trainer(&sandbox, "Max").await;
    let other_lead_token = join_team(&sandbox, &other_lead, &other_member).await;
    let (client_id, note) = signed_note(&sandbox, &owner).await;
    let plan = create_plan(&sandbox, &owner.2, plan_of(&client_id))
        .await
        .expect("plan");
    share(
        &sandbox,
        &owner.2,
        &client_id,
        &reader.0,
        clients_pb::AccessLevel::Read,
    )
    .await
    .expect("share read");
    share(
        &sandbox,
        &owner.2,
        &client_id,
        &revoked.0,
        clients_pb::AccessLevel::Write,
    )
    .await
    .expect("share write");
    ClientsServiceClient::new(sandbox.channel(CLIENTS, "gateway"))
        .revoke_client_share(bearer(
            clients_pb::RevokeClientShareRequest {
                client_id: client_id.clone(),
                trainer_id: revoked.0.clone(),
            },
            &owner.2,
        ))
        .await
        .expect("revoke");

    for (who, token) in [
        ("stranger", &stranger.2),
        ("revoked grantee", &revoked.2),
        ("lead of another team", &other_lead_token),
    ] {
        for (rpc, code) in attack(&sandbox, token, &client_id, &note, &plan).await {
            assert_eq!(code, Code::NotFound, "{who} calling {rpc}");
        }
    }
    let codes = attack(&sandbox, &reader.2, &client_id, &note, &plan).await;
    for (rpc, code) in codes {
        let expected = match rpc {
            "GetSessionNote" | "ListSessionNotes" | "GetTrainingPlan" | "ListTrainingPlans"
            | "GetProgress" => Code::Ok,
            _ => Code::PermissionDenied,
        };
        assert_eq!(code, expected, "read-only grantee calling {rpc}");
    }
    // A reader signs nothing, and only the author accepts a summary.
    let signing = sign(&sandbox, &reader.2, &note)
        .await
        .expect_err("not the author");
    assert_eq!(reason(&signing), "NOT_NOTE_AUTHOR");

    // The owner's note, plan and text are untouched by all of it.
    let after = get_note(&sandbox, &owner.2, &note, pb::NoteView::Trainer, true)
        .await
        .expect("owner reads");
    assert_eq!(after.amendment_count, 0);
    assert!(after.ai_summary.is_none());
    assert_eq!(after.content.unwrap().subjective, "Knee feels good.");

    // Wrong peers: a service may not call the public RPCs, and the gateway
    // may not call the export.
    let from_scheduling =
        DocumentationServiceClient::new(sandbox.channel(DOCUMENTATION, SCHEDULING))
            .get_session_note(bearer(
                pb::GetSessionNoteRequest {
                    client_id: client_id.clone(),
                    note_id: note.id.clone(),
                    purpose: AccessPurpose::Treatment as i32,
                    ..Default::default()
                },
                &owner.2,
            ))
            .await
            .expect_err("scheduling is not an edge peer");
    assert_eq!(from_scheduling.code(), Code::PermissionDenied);
    let export = docs(&sandbox)
        .export_client_documentation(bearer(
            pb::ExportClientDocumentationRequest {
                client_id: client_id.clone(),
            },
            &owner.2,
        ))
        .await
        .expect_err("only clients exports");
    assert_eq!(export.code(), Code::PermissionDenied);
    assert_eq!(reason(&export), "PEER_NOT_ALLOWED");
}

pub(crate) async fn submit_summary(
    sandbox: &Sandbox,
    token: &str,
    note: &pb::SessionNote,
    generated: DateTime<Utc>,
) -> Result<pb::SessionNote, tonic::Status> {
    docs(sandbox)
        .submit_ai_summary(bearer(
            pb::SubmitAiSummaryRequest {
                client_id: note.client_id.clone(),
                note_id: note.id.clone(),
                summary: Some(pb::AiSummary {
                    text: "Client reports less knee pain; squat load up.".into(),
                    model: "summarizer-1".into(),
                    generate_time: at(generated),
                    ..Default::default()
                }),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().note.expect("note"))
}

pub(crate) async fn accept_summary(
    sandbox: &Sandbox,
    token: &str,
    note: &pb::SessionNote,
) -> Result<pb::SessionNote, tonic::Status> {
    docs(sandbox)
        .accept_ai_summary(bearer(
            pb::AcceptAiSummaryRequest {
                client_id: note.client_id.clone(),
                note_id: note.id.clone(),
                etag: note.etag.clone(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().note.expect("note"))
}

#[tokio::test]
async fn an_ai_summary_keeps_its_provenance_and_reaches_the_client_only_once_its_trainer_accepts_it()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let colleague = trainer(&sandbox, "Cleo").await;
    // A session two days ago, on the hour.
    let start = Utc::now() - chrono::Duration::days(2);
    let start = Utc
        .timestamp_opt(start.timestamp() - start.timestamp() % 3600, 0)
        .unwrap();
    let (client_id, note) = signed_note_at(&sandbox, &owner, start).await;
    share(
        &sandbox,
        &owner.2,
        &client_id,
        &colleague.0,
        clients_pb::AccessLevel::Write,
    )
    .await
    .expect("share");

    let none = accept_summary(&sandbox, &owner.2, &note)
        .await
        .expect_err("nothing to accept");
    assert_eq!(reason(&none), "NO_AI_SUMMARY");
    let before = submit_summary(
        &sandbox,
        &owner.2,
        &note,
        start - chrono::Duration::hours(1),
    )
    .await
    .expect_err("generated before the session");
    assert_eq!(violated_fields(&before), ["summary.generate_time"]);
    let future = submit_summary(
        &sandbox,
        &owner.2,
        &note,
        Utc::now() + chrono::Duration::hours(1),
    )
    .await
    .expect_err("generated in the future");
    assert_eq!(violated_fields(&future), ["summary.generate_time"]);

    let generated = Utc::now() - chrono::Duration::minutes(1);
    let submitted = submit_summary(&sandbox, &colleague.2, &note, generated)
        .await
        .expect("a writer submits a summary");
    let read = submitted.clone();
    let summary = submitted.ai_summary.expect("summary");
    assert_eq!(summary.model, "summarizer-1");
    assert_eq!(summary.submitted_by, colleague.0);
    assert_eq!(summary.generate_time, at(generated));
    assert!(summary.accepted_by.is_empty());
    assert_eq!(
        submitted.content.expect("content").subjective,
        "Knee feels good.",
        "the trainer's own text is untouched"
    );
    let hidden = get_note(&sandbox, &owner.2, &note, pb::NoteView::Client, false)
        .await
        .expect("client view");
    assert!(hidden.ai_summary.is_none(), "not accepted yet");

    let by_colleague = accept_summary(&sandbox, &colleague.2, &note)
        .await
        .expect_err("only the note's trainer accepts");
    assert_eq!(by_colleague.code(), Code::PermissionDenied);
    assert_eq!(reason(&by_colleague), "NOT_NOTE_AUTHOR");
    let accepted = accept_summary(&sandbox, &owner.2, &read)
        .await
        .expect("accept the summary read");
    assert_eq!(accepted.ai_summary.expect("summary").accepted_by, owner.0);
    let shown = get_note(&sandbox, &owner.2, &note, pb::NoteView::Client, false)
        .await
        .expect("client view");
    assert_eq!(
        shown.ai_summary.expect("accepted summary").text,
        "Client reports less knee pain; squat load up."
    );
}

#[tokio::test]
async fn progress_is_charted_in_kilograms_from_current_signed_text_with_weekly_adherence() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    let year = chrono::Datelike::year(&Utc::now()) + 1;
    let mut plan = plan_of(&client_id);
    plan.start_date = day(year, 1, 1);
    plan.end_date = day(year, 12, 31);
    plan.sessions_per_week = 2;
    create_plan(&sandbox, &owner.2, plan).await.expect("plan");
    let mut notes = Vec::new();
    for (month, dayn, weight) in [
        (
            2,
            3,
            pb::Weight {
                value: 176.0,
                unit: pb::WeightUnit::Lb as i32,
            },
        ),
        (
            2,
            5,
            pb::Weight {
                value: 79.5,
                unit: pb::WeightUnit::Kg as i32,
            },
        ),
        (
            2,
            17,
            pb::Weight {
                value: 79.0,
                unit: pb::WeightUnit::Kg as i32,
            },
        ),
    ] {
        let start = Utc.with_ymd_and_hms(year, month, dayn, 15, 0, 0).unwrap();
        let appointment = session(&sandbox, &owner.2, &client_id, start, Some(true)).await;
        let draft = create_note(
            &sandbox,
            &owner.2,
            &client_id,
            &appointment,
            content("Fine.", "", Some(weight)),
        )
        .await
        .expect("note");
        notes.push(draft);
    }
    // The last stays a draft: progress reads signed notes only.
    for note in &notes[..2] {
        sign(&sandbox, &owner.2, note).await.expect("sign");
    }
    let second = get_note(&sandbox, &owner.2, &notes[1], pb::NoteView::Trainer, false)
        .await
        .expect("read");
    amend(
        &sandbox,
        &owner.2,
        &second,
        "rescaled",
        content("Fine.", "", kg(78.0)),
    )
    .await
    .expect("amend");

    let progress = docs(&sandbox)
        .get_progress(bearer(
            pb::GetProgressRequest {
                client_id: client_id.clone(),
                metric: pb::ProgressMetricKind::BodyWeight as i32,
                start_date: day(year, 2, 1),
                end_date: day(year, 2, 22),
                purpose: AccessPurpose::Treatment as i32,
                ..Default::default()
            },
            &owner.2,
        ))
        .await
        .expect("progress")
        .into_inner();
    assert_eq!(progress.unit, "kg");
    let values: Vec<f64> = progress.points.iter().map(|point| point.value).collect();
    assert_eq!(values.len(), 2, "{values:?}");
    assert!(
        (values[0] - 79.832_257_12).abs() < 1e-6,
        "176 lb in kg: {values:?}"
    );
    assert!(
        (values[1] - 78.0).abs() < 1e-9,
        "the amended weight: {values:?}"
    );
    let weeks: Vec<(i32, i32)> = progress
        .adherence
        .iter()
        .map(|week| (week.sessions_done, week.sessions_planned))
        .collect();
    assert_eq!(weeks.len(), 4, "{:?}", progress.adherence);
    assert!(weeks.iter().all(|(_, planned)| *planned == 2), "{weeks:?}");
    assert_eq!(
        weeks.iter().map(|(done, _)| done).sum::<i32>(),
        2,
        "{weeks:?}"
    );
}

#[tokio::test]
async fn a_plan_revision_is_a_new_version_and_every_earlier_one_stays_readable() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    let first = create_plan(&sandbox, &owner.2, plan_of(&client_id))
        .await
        .expect("plan");
    assert_eq!(first.version, 1);
    assert_eq!(first.trainer_id, owner.0);
    let mut revised = first.clone();
    revised.goal = "Run a half marathon".into();
    revised.status = pb::PlanStatus::Paused as i32;
    let second = docs(&sandbox)
        .revise_training_plan(bearer(
            pb::ReviseTrainingPlanRequest {
                plan: Some(revised.clone()),
            },
            &owner.2,
        ))
        .await
        .expect("revise")
        .into_inner()
        .plan
        .expect("plan");
    assert_eq!(second.version, 2);
    assert_eq!(second.status, pb::PlanStatus::Paused as i32);
    let stale = docs(&sandbox)
        .revise_training_plan(bearer(
            pb::ReviseTrainingPlanRequest {
                plan: Some(revised),
            },
            &owner.2,
        ))
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    let read = |version: i32| {
        let sandbox = &sandbox;
        let client_id = client_id.clone();
        let plan_id = first.id.clone();
        let token = owner.2.clone();
        async move {
            docs(sandbox)
                .get_training_plan(bearer(
                    pb::GetTrainingPlanRequest {
                        client_id,
                        plan_id,
                        version,
                        purpose: AccessPurpose::Treatment as i32,
                    },
                    &token,
                ))
                .await
                .map(|response| response.into_inner().plan.expect("plan"))
        }
    };
    assert_eq!(read(1).await.expect("v1").goal, "Run 10 km");
    assert_eq!(read(0).await.expect("current").goal, "Run a half marathon");
    assert_eq!(read(3).await.expect_err("no v3").code(), Code::NotFound);
    let listed = docs(&sandbox)
        .list_training_plans(bearer(
            pb::ListTrainingPlansRequest {
                client_id: client_id.clone(),
                purpose: AccessPurpose::Treatment as i32,
                ..Default::default()
            },
            &owner.2,
        ))
        .await
        .expect("list")
        .into_inner()
        .plans;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version, 2);
    assert_eq!(listed[0].weeks[0].sessions[0].exercises[0].name, "Deadlift");
}

fn pg_dump(sandbox: &Sandbox, schema: &str) -> String {
    let output = std::process::Command::new("pg_dump")
        .args([&format!("--schema={schema}"), "--no-owner", "--dbname"])
        .arg(sandbox.db.admin_url().expose_secret())
        .output()
        .expect("run pg_dump");
    assert!(
        output.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("a text dump")
}

#[tokio::test]
async fn a_dump_of_the_documentation_schema_holds_none_of_twenty_canary_values() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    let mut canaries = Vec::new();
    for index in 0..4u32 {
        let start = next_year(5, 1 + index, 15);
        let appointment = session(&sandbox, &owner.2, &client_id, start, Some(true)).await;
        let mut text = content(
            &format!("canarysubjective{index}"),
            &format!("canaryprivate{index}"),
            kg(80.0),
        );
        text.assessment = format!("canaryassessment{index}");
        text.exercises[0].name = format!("canaryexercise{index}");
        let note = create_note(&sandbox, &owner.2, &client_id, &appointment, text)
            .await
            .expect("note");
        let note = sign(&sandbox, &owner.2, &note).await.expect("sign");
        let mut amended = content("x", "", None);
        amended.plan = format!("canaryamended{index}");
        amend(&sandbox, &owner.2, &note, "fix", amended)
            .await
            .expect("amend");
        canaries.extend([
            format!("canarysubjective{index}"),
            format!("canaryprivate{index}"),
            format!("canaryassessment{index}"),
            format!("canaryexercise{index}"),
            format!("canaryamended{index}"),
        ]);
    }
    assert_eq!(canaries.len(), 20);
    let dump = pg_dump(&sandbox, DOCUMENTATION).to_lowercase();
    assert!(dump.contains("create table documentation.session_notes"));
    let hits: Vec<&String> = canaries
        .iter()
        .filter(|canary| dump.contains(canary.as_str()))
        .collect();
    assert!(hits.is_empty(), "plaintext in the dump: {hits:?}");
}

#[tokio::test]
async fn hostile_input_is_refused_field_by_field_and_writes_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let (client_id, note) = signed_note(&sandbox, &owner).await;
    let mut bad = content("nul\0byte", "bell\u{7}", None);
    bad.measurements = Some(pb::Measurements {
        body_weight: Some(pb::Weight {
            value: f64::NAN,
            unit: pb::WeightUnit::Kg as i32,
        }),
        blood_pressure: Some(pb::BloodPressure {
            systolic: 80,
            diastolic: 120,
        }),
        ..Default::default()
    });
    let refused = amend(&sandbox, &owner.2, &note, "reason\0", bad)
        .await
        .expect_err("hostile amendment");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&refused),
        [
            "reason",
            "content.subjective",
            "content.private_notes",
            "content.measurements.body_weight.value",
            "content.measurements.blood_pressure",
        ]
    );
    let untouched = get_note(&sandbox, &owner.2, &note, pb::NoteView::Trainer, true)
        .await
        .expect("read");
    assert_eq!(untouched.amendment_count, 0, "nothing was written");

    let forged = docs(&sandbox)
        .list_session_notes(bearer(
            pb::ListSessionNotesRequest {
                client_id: client_id.clone(),
                purpose: AccessPurpose::Treatment as i32,
                page_token: "AAAA".into(),
                ..Default::default()
            },
            &owner.2,
        ))
        .await
        .expect_err("forged page token");
    assert_eq!(violated_fields(&forged), ["page_token"]);
    let far = docs(&sandbox)
        .get_progress(bearer(
            pb::GetProgressRequest {
                client_id: client_id.clone(),
                metric: pb::ProgressMetricKind::Girth as i32,
                start_date: day(-5000, 1, 1),
                end_date: day(2026, 2, 30),
                ..Default::default()
            },
            &owner.2,
        ))
        .await
        .expect_err("out-of-range dates, no site, no purpose");
    assert_eq!(
        violated_fields(&far),
        ["girth_site", "start_date", "end_date", "purpose"]
    );
    let ids = get_note(
        &sandbox,
        &owner.2,
        &pb::SessionNote {
            client_id: "x\0".into(),
            id: "\u{1b}[2J".into(),
            ..Default::default()
        },
        pb::NoteView::Trainer,
        false,
    )
    .await
    .expect_err("ids that are not ids");
    assert_eq!(violated_fields(&ids), ["client_id", "note_id"]);
}

#[tokio::test]
async fn the_clients_export_holds_every_note_with_its_history_and_every_plan_version() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let (client_id, note) = signed_note(&sandbox, &owner).await;
    amend(
        &sandbox,
        &owner.2,
        &note,
        "typo",
        content("Knee feels great.", "", None),
    )
    .await
    .expect("amend");
    create_plan(&sandbox, &owner.2, plan_of(&client_id))
        .await
        .expect("plan");
    let mut stream = ClientsServiceClient::new(sandbox.channel(CLIENTS, "gateway"))
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
    while let Some(chunk) = stream.message().await.expect("chunk") {
        bytes.extend(chunk.data);
    }
    let document: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(
        document["sections"],
        serde_json::json!(["clients", "scheduling", "documentation", "billing"])
    );
    let notes = document["documentation"]["notes"]
        .as_array()
        .expect("notes");
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["content"]["subjective"], "Knee feels great.");
    assert_eq!(
        notes[0]["originalContent"]["subjective"],
        "Knee feels good."
    );
    assert_eq!(
        notes[0]["originalContent"]["privateNotes"],
        "Mentions stress at work."
    );
    assert_eq!(notes[0]["amendments"][0]["reason"], "typo");
    let plans = document["documentation"]["planVersions"]
        .as_array()
        .expect("plans");
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0]["goal"], "Run 10 km");
}

#[tokio::test]
async fn the_documentation_benches_seed_notes_and_read_them_without_errors() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let endpoint = |service: &str| format!("https://127.0.0.1:{}", sandbox.ports[service]);
    for (scenario, seed) in [("notes", "3000"), ("progress", "0")] {
        let output = tokio::process::Command::new(fitflow_e2e::fitflow_binary())
            .args([
                "bench",
                "--scenario",
                scenario,
                "--seed",
                seed,
                "--seconds",
                "1",
                "--concurrency",
                "2",
                "--endpoint",
                &endpoint(IDENTITY),
                "--clients-endpoint",
                &endpoint(CLIENTS),
                "--scheduling-endpoint",
                &endpoint(SCHEDULING),
                "--documentation-endpoint",
                &endpoint(DOCUMENTATION),
            ])
            .env_clear()
            .env("FITFLOW_TLS_DIR", &sandbox.certs.dir)
            .env("FITFLOW_DEV_INSECURE", "1")
            .env(
                "FITFLOW_ADMIN_DATABASE_URL",
                sandbox.db.admin_url().expose_secret(),
            )
            .env("FITFLOW_LOG", "error")
            .output()
            .await
            .expect("run fitflow bench");
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{scenario}: {printed}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Figures are printed, never asserted: only that requests succeeded.
        assert!(printed.contains(" ok, 0 failed"), "{scenario}: {printed}");
    }
    let admin = sandbox.db.admin_pool().await;
    let (notes, signed): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'signed') \
         FROM documentation.session_notes",
    )
    .fetch_one(&admin)
    .await
    .expect("counts");
    assert!(notes >= 3000 + 260, "{notes} notes");
    assert_eq!(notes, signed, "every note is signed");
}

#[tokio::test]
async fn purging_the_client_erases_their_notes_for_good_even_from_a_backup() {
    use std::sync::Arc;
    let registry = fitflow_platform::Registry::new(vec![
        Arc::new(fitflow_identity::IdentityService),
        Arc::new(fitflow_tenancy::TenancyService),
        Arc::new(fitflow_clients::ClientsService::with_retention(
            chrono::Duration::zero(),
        )),
        Arc::new(fitflow_scheduling::SchedulingService),
        Arc::new(fitflow_documentation::DocumentationService),
        Arc::new(fitflow_billing::BillingService),
        Arc::new(fitflow_audit::AuditService),
    ])
    .expect("registry");
    let sandbox = Sandbox::with_registry(registry).await;
    let stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let (client_id, note) = signed_note(&sandbox, &owner).await;
    let (kept_client, kept_note) = signed_note_at(&sandbox, &owner, next_year(6, 1, 15)).await;
    let admin = sandbox.db.admin_pool().await;
    // The backup, taken before the purge.
    let body: Vec<u8> =
        sqlx::query_scalar("SELECT body FROM documentation.session_notes WHERE id = $1::uuid")
            .bind(&note.id)
            .fetch_one(&admin)
            .await
            .expect("sealed body");

    let mut clients = ClientsServiceClient::new(sandbox.channel(CLIENTS, "gateway"));
    clients
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
    ClientsServiceClient::new(sandbox.channel(CLIENTS, "operator"))
        .purge_client(bearer(
            clients_pb::PurgeClientRequest {
                client_id: client_id.clone(),
            },
            &operator.access_token,
        ))
        .await
        .expect("purge");

    // A fresh documentation process (no key cached): the note's trainer
    // still finds the row, and it no longer opens.
    stack.shutdown().await;
    let _stack = sandbox.start(EVERYONE).await;
    let erased = get_note(&sandbox, &owner.2, &note, pb::NoteView::Trainer, false)
        .await
        .expect_err("erased");
    assert_eq!(
        (erased.code(), reason(&erased).as_str()),
        (Code::NotFound, "SUBJECT_ERASED"),
        "{erased:?}"
    );

    let keys = crate::clients::every_key_still_held(&sandbox).await;
    assert!(
        keys.len() >= 2,
        "the other client's key and data keys remain"
    );
    let note_id: uuid::Uuid = note.id.parse().expect("uuid");
    let client: uuid::Uuid = client_id.parse().expect("uuid");
    for key in &keys {
        let at = fitflow_crypto::FieldAddress {
            table: "session_notes",
            column: "body",
            row_id: note_id,
        };
        assert!(
            fitflow_crypto::open_with_raw_key(key, client, at, &body).is_err(),
            "a key still held opens the purged client's note"
        );
    }
    // The other client's notes are untouched.
    let kept = get_note(&sandbox, &owner.2, &kept_note, pb::NoteView::Trainer, false)
        .await
        .expect("the other client's note still reads");
    assert_eq!(kept.client_id, kept_client);
}
