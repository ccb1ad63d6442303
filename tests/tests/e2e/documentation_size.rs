//! Every documentation answer fits one default gRPC message (4 MiB), by
//! design, tested with the largest input the validation and the 1 MiB
//! request limit admit: a note with its whole history, pages of plans near
//! the size limit, and an export of many such records through clients.

use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::clients as clients_pb;
use fitflow_proto::clients::AccessPurpose;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::documentation as pb;
use fitflow_proto::documentation::documentation_service_client::DocumentationServiceClient;
use prost::Message as _;
use tonic::Code;

use crate::documentation::{
    CLIENTS, DOCUMENTATION, EVERYONE, accept_summary, amend, at, client_of, create_note,
    create_plan, docs, get_note, next_year, plan_of, session, sign,
};
use crate::identity_support::{reason, violated_fields};
use crate::tenancy::trainer;

const TREATMENT: i32 = AccessPurpose::Treatment as i32;
/// The documentation service's largest request.
const REQUEST_LIMIT: usize = 1024 * 1024;
/// gRPC's default largest message, which every answer must fit.
const MESSAGE_LIMIT: usize = 4 * 1024 * 1024;
/// The budget of a note with its history (AI summary aside).
const HISTORY_BUDGET: usize = 3 * 1024 * 1024 + 512 * 1024;

/// `chars` four-byte characters, the first ones spelling `tag`.
fn text(tag: &str, chars: usize) -> String {
    format!("{tag}{}", "𝄞".repeat(chars - tag.chars().count()))
}

/// The fullest note content a request whose size `request_len` gives still
/// carries: every SOAP field and the private notes at 20,000 four-byte
/// characters, and as many exercises with 2,000-character notes as fit.
fn fullest_content(
    tag: &str,
    request_len: impl Fn(&pb::SessionNoteContent) -> usize,
) -> pb::SessionNoteContent {
    let mut content = pb::SessionNoteContent {
        subjective: text(tag, 20_000),
        objective: text(tag, 20_000),
        assessment: text(tag, 20_000),
        plan: text(tag, 20_000),
        private_notes: text(tag, 20_000),
        ..Default::default()
    };
    loop {
        content.exercises.push(pb::Exercise {
            name: "Row".into(),
            notes: text(tag, 2_000),
            ..Default::default()
        });
        if request_len(&content) > REQUEST_LIMIT {
            content.exercises.pop();
            return content;
        }
    }
}

/// The fullest content a CreateSessionNote request carries.
fn fullest_draft(tag: &str, client_id: &str, appointment_id: &str) -> pb::SessionNoteContent {
    fullest_content(tag, |content| {
        pb::CreateSessionNoteRequest {
            client_id: client_id.into(),
            appointment_id: appointment_id.into(),
            content: Some(content.clone()),
            request_id: String::new(),
        }
        .encoded_len()
    })
}

/// The fullest content an AmendSessionNote request of `note` with `reason`
/// carries.
fn fullest_amendment(tag: &str, note: &pb::SessionNote, reason: &str) -> pb::SessionNoteContent {
    fullest_content(tag, |content| {
        pb::AmendSessionNoteRequest {
            client_id: note.client_id.clone(),
            note_id: note.id.clone(),
            reason: reason.into(),
            content: Some(content.clone()),
            etag: note.etag.clone(),
        }
        .encoded_len()
    })
}

/// The bytes of `note` counted against its history budget.
fn history_bytes(note: &pb::SessionNote) -> usize {
    let mut note = note.clone();
    note.ai_summary = None;
    note.encoded_len()
}

/// The fullest plan of `client_id` a CreateTrainingPlan request carries:
/// name and goal at their limits in four-byte characters, and sessions of
/// fifty exercises with 2,000-character notes while they fit.
fn fullest_plan(client_id: &str, tag: &str) -> pb::TrainingPlan {
    let mut plan = pb::TrainingPlan {
        name: text(tag, 200),
        goal: text(tag, 2_000),
        weeks: vec![pb::PlanWeek::default()],
        ..plan_of(client_id)
    };
    let size = |plan: &pb::TrainingPlan| {
        pb::CreateTrainingPlanRequest {
            plan: Some(plan.clone()),
            request_id: String::new(),
        }
        .encoded_len()
    };
    loop {
        let sessions = &mut plan.weeks[0].sessions;
        if sessions
            .last()
            .is_none_or(|last| last.exercises.len() == 50)
        {
            sessions.push(pb::PlannedSession {
                name: text(tag, 200),
                exercises: Vec::new(),
            });
        }
        let last = sessions.len() - 1;
        sessions[last].exercises.push(pb::Exercise {
            name: "Row".into(),
            sets: 3,
            reps: 10,
            notes: text(tag, 2_000),
            ..Default::default()
        });
        if size(&plan) > REQUEST_LIMIT {
            let sessions = &mut plan.weeks[0].sessions;
            sessions[last].exercises.pop();
            if sessions[last].exercises.is_empty() {
                sessions.pop();
            }
            return plan;
        }
    }
}

#[tokio::test]
async fn a_note_with_the_largest_history_its_budget_admits_reads_back_whole_and_an_amendment_past_it_writes_nothing()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    // A session two days ago, on the hour: an AI summary is generated after it.
    let start = chrono::Utc::now() - chrono::Duration::days(2);
    let start = chrono::DateTime::from_timestamp(start.timestamp() - start.timestamp() % 3600, 0)
        .expect("an instant");
    let appointment = session(&sandbox, &owner.2, &client_id, start, Some(true)).await;
    let original = fullest_draft("original", &client_id, &appointment);
    let draft = create_note(
        &sandbox,
        &owner.2,
        &client_id,
        &appointment,
        original.clone(),
    )
    .await
    .expect("the largest draft");
    let signed = sign(&sandbox, &owner.2, &draft).await.expect("sign");

    // The first amendment of the largest request always fits.
    let why = text("why", 2_000);
    let first = fullest_amendment("first", &signed, &why);
    let amended = amend(&sandbox, &owner.2, &signed, &why, first.clone())
        .await
        .expect("a first amendment of the largest request");
    assert_eq!(amended.amendment_count, 1);

    // A second one as large would take the history past its budget: refused,
    // and nothing is written.
    let second = fullest_amendment("second", &amended, &why);
    let refused = amend(&sandbox, &owner.2, &amended, &why, second.clone())
        .await
        .expect_err("past the budget");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "NOTE_HISTORY_TOO_LARGE");
    let unchanged = get_note(&sandbox, &owner.2, &signed, pb::NoteView::Trainer, false)
        .await
        .expect("read");
    assert_eq!(unchanged.amendment_count, 1, "no amendment written");
    assert_eq!(unchanged.etag, amended.etag, "the note is untouched");

    // The largest second amendment that fits takes the note to its budget.
    let mut last = second;
    let fitted = loop {
        let mut predicted = amended.clone();
        predicted.amendments.push(pb::Amendment {
            id: amended.id.clone(),
            author_id: owner.0.clone(),
            create_time: at(start),
            reason: why.clone(),
            content: Some(last.clone()),
        });
        predicted.content = Some(last.clone());
        if history_bytes(&predicted) <= HISTORY_BUDGET - 64 {
            break amend(&sandbox, &owner.2, &amended, &why, last.clone())
                .await
                .expect("an amendment within the budget");
        }
        last.exercises.pop();
    };
    assert_eq!(fitted.amendment_count, 2);
    assert!(
        history_bytes(&fitted) > HISTORY_BUDGET - 20 * 1024,
        "{} bytes: at the budget",
        history_bytes(&fitted)
    );

    // With the longest AI summary, accepted, it still reads back whole.
    let summary_text = text("summary", 20_000);
    let with_summary = docs(&sandbox)
        .submit_ai_summary(bearer(
            pb::SubmitAiSummaryRequest {
                client_id: client_id.clone(),
                note_id: signed.id.clone(),
                summary: Some(pb::AiSummary {
                    text: summary_text.clone(),
                    model: text("model", 200),
                    generate_time: at(start),
                    ..Default::default()
                }),
            },
            &owner.2,
        ))
        .await
        .expect("the longest summary")
        .into_inner()
        .note
        .expect("note");
    accept_summary(&sandbox, &owner.2, &with_summary)
        .await
        .expect("accept");
    for view in [pb::NoteView::Trainer, pb::NoteView::Client] {
        let read = get_note(&sandbox, &owner.2, &signed, view, true)
            .await
            .expect("the whole history in one default gRPC message");
        let strip = |content: &pb::SessionNoteContent| pb::SessionNoteContent {
            private_notes: if view == pb::NoteView::Trainer {
                content.private_notes.clone()
            } else {
                String::new()
            },
            ..content.clone()
        };
        assert!(read.original_content == Some(strip(&original)), "original");
        assert_eq!(read.amendments.len(), 2);
        assert!(read.amendments[0].content == Some(strip(&first)), "first");
        assert!(read.amendments[1].content == Some(strip(&last)), "second");
        assert_eq!(read.amendments[1].reason, why);
        assert!(read.content == Some(strip(&last)), "current text");
        assert_eq!(
            read.ai_summary.as_ref().expect("accepted summary").text,
            summary_text
        );
        if view == pb::NoteView::Trainer {
            let answer = pb::GetSessionNoteResponse { note: Some(read) }.encoded_len();
            assert!(
                answer > HISTORY_BUDGET && answer < MESSAGE_LIMIT,
                "{answer} bytes"
            );
        }
    }
}

#[tokio::test]
async fn training_plans_near_the_size_limit_are_listed_a_page_at_a_time_each_page_one_grpc_message()
{
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    let mut created = Vec::new();
    for index in 0..5 {
        let plan = fullest_plan(&client_id, &format!("plan{index}"));
        let plan = create_plan(&sandbox, &owner.2, plan)
            .await
            .expect("a plan of the largest request");
        created.push(plan);
    }
    created.push(
        create_plan(&sandbox, &owner.2, plan_of(&client_id))
            .await
            .expect("a short plan"),
    );
    let total: usize = created.iter().map(prost::Message::encoded_len).sum();
    assert!(total > MESSAGE_LIMIT, "{total} bytes in all");
    let expected: Vec<String> = created.iter().rev().map(|plan| plan.id.clone()).collect();

    let list = |page_size: i32, page_token: String| {
        let sandbox = &sandbox;
        let token = owner.2.clone();
        let client_id = client_id.clone();
        async move {
            docs(sandbox)
                .list_training_plans(bearer(
                    pb::ListTrainingPlansRequest {
                        client_id,
                        purpose: TREATMENT,
                        page_size,
                        page_token,
                    },
                    &token,
                ))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    // Without a page size, pages are cut by bytes: every plan once, newest
    // first, each page readable by a default client.
    for page_size in [0, 2] {
        let mut listed = Vec::new();
        let mut pages = 0;
        let mut page_token = String::new();
        loop {
            let page = list(page_size, page_token)
                .await
                .expect("a page within one default gRPC message");
            assert!(!page.plans.is_empty(), "no empty page");
            if page_size > 0 {
                assert!(page.plans.len() <= 2);
            }
            pages += 1;
            listed.extend(page.plans.into_iter().map(|plan| plan.id));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        assert_eq!(listed, expected, "page size {page_size}");
        // Six plans: without a size (200) only bytes cut the pages.
        let least = if page_size == 0 { 2 } else { 3 };
        assert!(pages >= least, "{pages} pages of page size {page_size}");
    }

    // Tokens are bound to the query and the caller.
    let first = list(1, String::new()).await.expect("first page");
    assert_eq!(first.plans.len(), 1);
    let other_client = client_of(&sandbox, &owner).await;
    let foreign = docs(&sandbox)
        .list_training_plans(bearer(
            pb::ListTrainingPlansRequest {
                client_id: other_client,
                purpose: TREATMENT,
                page_size: 1,
                page_token: first.next_page_token.clone(),
            },
            &owner.2,
        ))
        .await
        .expect_err("a token of another client's list");
    assert_eq!(violated_fields(&foreign), ["page_token"]);
    let stranger = trainer(&sandbox, "Bea").await;
    let stolen = docs(&sandbox)
        .list_training_plans(bearer(
            pb::ListTrainingPlansRequest {
                client_id: client_id.clone(),
                purpose: TREATMENT,
                page_size: 1,
                page_token: first.next_page_token.clone(),
            },
            &stranger.2,
        ))
        .await
        .expect_err("another user's token");
    assert_eq!(violated_fields(&stolen), ["page_token"]);
    let negative = list(-1, String::new())
        .await
        .expect_err("a negative page size");
    assert_eq!(violated_fields(&negative), ["page_size"]);
}

#[tokio::test]
async fn a_client_whose_documentation_spans_many_grpc_messages_is_exported_whole_through_clients() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    let mut note_ids = Vec::new();
    for index in 0..3 {
        let start = next_year(5, 4, 9) + chrono::Duration::days(index);
        let appointment = session(&sandbox, &owner.2, &client_id, start, Some(true)).await;
        let content = fullest_draft(&format!("note{index}"), &client_id, &appointment);
        let note = create_note(&sandbox, &owner.2, &client_id, &appointment, content)
            .await
            .expect("a heavy note");
        if index == 1 {
            // One with its largest first amendment: about 3 MiB alone.
            let signed = sign(&sandbox, &owner.2, &note).await.expect("sign");
            let amendment = fullest_amendment("amended", &signed, "typo");
            amend(&sandbox, &owner.2, &signed, "typo", amendment)
                .await
                .expect("amend");
        }
        note_ids.push(note.id);
    }
    let mut version_ids = Vec::new();
    for index in 0..2 {
        let plan = create_plan(
            &sandbox,
            &owner.2,
            fullest_plan(&client_id, &format!("plan{index}")),
        )
        .await
        .expect("a plan of the largest request");
        let revised = docs(&sandbox)
            .revise_training_plan(bearer(
                pb::ReviseTrainingPlanRequest {
                    plan: Some(pb::TrainingPlan {
                        goal: text("revised", 2_000),
                        ..plan.clone()
                    }),
                },
                &owner.2,
            ))
            .await
            .expect("revise")
            .into_inner()
            .plan
            .expect("plan");
        version_ids.push((plan.id.clone(), 1));
        version_ids.push((revised.id, 2));
    }

    // Documentation streams it in messages a default client reads.
    let mut stream = DocumentationServiceClient::new(sandbox.channel(DOCUMENTATION, CLIENTS))
        .stream_client_documentation(tonic::Request::new(pb::StreamClientDocumentationRequest {
            client_id: client_id.clone(),
        }))
        .await
        .expect("stream")
        .into_inner();
    let (mut streamed_notes, mut streamed_versions, mut messages, mut bytes) =
        (Vec::new(), Vec::new(), 0, 0);
    while let Some(message) = stream.message().await.expect("every message") {
        let size = message.encoded_len();
        assert!(size < MESSAGE_LIMIT, "{size} bytes");
        messages += 1;
        bytes += size;
        streamed_notes.extend(message.notes);
        streamed_versions.extend(message.plan_versions);
    }
    assert!(bytes > 2 * MESSAGE_LIMIT, "{bytes} bytes in all");
    assert!(messages >= 4, "{messages} messages");
    let ids: Vec<&str> = streamed_notes.iter().map(|note| note.id.as_str()).collect();
    assert_eq!(ids, note_ids, "every note once, oldest session first");
    assert_eq!(streamed_notes[1].amendments.len(), 1, "with its history");
    let versions: Vec<(String, i32)> = streamed_versions
        .iter()
        .map(|version| (version.id.clone(), version.version))
        .collect();
    assert_eq!(versions, version_ids, "oldest plan and version first");

    // Clients' export holds all of it.
    let mut chunks = ClientsServiceClient::new(sandbox.channel(CLIENTS, "gateway"))
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
    let mut document = Vec::new();
    while let Some(chunk) = chunks.message().await.expect("every chunk") {
        document.extend(chunk.data);
    }
    let document: serde_json::Value = serde_json::from_slice(&document).expect("json");
    let exported = &document["documentation"];
    let notes = exported["notes"].as_array().expect("notes");
    let ids: Vec<&str> = notes
        .iter()
        .filter_map(|note| note["id"].as_str())
        .collect();
    assert_eq!(ids, note_ids);
    assert!(
        notes[1]["amendments"][0]["content"]["subjective"]
            .as_str()
            .is_some_and(|subjective| subjective.starts_with("amended")),
        "the amendment's text"
    );
    assert!(
        notes[2]["content"]["privateNotes"]
            .as_str()
            .is_some_and(|private| private.starts_with("note2")),
        "view TRAINER"
    );
    let versions: Vec<(String, i64)> = exported["planVersions"]
        .as_array()
        .expect("plan versions")
        .iter()
        .map(|version| {
            (
                version["id"].as_str().unwrap_or_default().to_owned(),
                version["version"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    let expected: Vec<(String, i64)> = version_ids
        .iter()
        .map(|(id, version)| (id.clone(), i64::from(*version)))
        .collect();
    assert_eq!(versions, expected);

    // The superseded one-message RPC still answers, to a caller that raises
    // its own limit.
    let whole = DocumentationServiceClient::new(sandbox.channel(DOCUMENTATION, CLIENTS))
        .max_decoding_message_size(64 * 1024 * 1024)
        .export_client_documentation(tonic::Request::new(pb::ExportClientDocumentationRequest {
            client_id: client_id.clone(),
        }))
        .await
        .expect("the old export")
        .into_inner();
    assert_eq!(whole.notes.len(), 3);
    assert_eq!(whole.plan_versions.len(), 4);
}

/// The budget of one list page of notes or plans.
const PAGE_BUDGET: usize = 3 * 1024 * 1024;

/// `count` signed notes of `owner`'s `client_id`, one session a day apart
/// (the latest last), each of the largest request; those at `amended`
/// carry their largest first amendment too. The notes as listed (current
/// text), in session order.
async fn heavy_notes(
    sandbox: &Sandbox,
    owner: &crate::documentation::Trainer,
    client_id: &str,
    count: i64,
    amended: &[i64],
) -> Vec<pb::SessionNote> {
    let mut notes = Vec::new();
    for index in 0..count {
        let start = next_year(6, 1, 9) + chrono::Duration::days(index);
        let appointment = session(sandbox, &owner.2, client_id, start, Some(true)).await;
        let content = fullest_draft(&format!("note{index}"), client_id, &appointment);
        let draft = create_note(sandbox, &owner.2, client_id, &appointment, content)
            .await
            .expect("a note of the largest request");
        let mut note = sign(sandbox, &owner.2, &draft).await.expect("sign");
        if amended.contains(&index) {
            let amendment = fullest_amendment(&format!("amended{index}"), &note, "typo");
            note = amend(sandbox, &owner.2, &note, "typo", amendment)
                .await
                .expect("its largest first amendment");
        }
        notes.push(note);
    }
    notes
}

/// A page of `client_id`'s notes as `token` lists them.
async fn list_notes(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    view: pb::NoteView,
    page_size: i32,
    page_token: String,
) -> Result<pb::ListSessionNotesResponse, tonic::Status> {
    docs(sandbox)
        .list_session_notes(bearer(
            pb::ListSessionNotesRequest {
                client_id: client_id.into(),
                view: view as i32,
                purpose: TREATMENT,
                page_size,
                page_token,
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn session_notes_near_the_size_limit_are_listed_every_one_exactly_once_and_no_page_holds_more_than_its_budget_and_one_note()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    // Seven notes of about 1 MiB, two of them with an amendment as large
    // (a page reads the note and its latest amendment), and a short one.
    let mut notes = heavy_notes(&sandbox, &owner, &client_id, 7, &[2, 5]).await;
    let appointment = session(
        &sandbox,
        &owner.2,
        &client_id,
        next_year(6, 20, 9),
        Some(true),
    )
    .await;
    let short = create_note(
        &sandbox,
        &owner.2,
        &client_id,
        &appointment,
        pb::SessionNoteContent {
            subjective: "short".into(),
            ..Default::default()
        },
    )
    .await
    .expect("a short note");
    notes.push(sign(&sandbox, &owner.2, &short).await.expect("sign"));
    let expected: Vec<String> = notes.iter().rev().map(|note| note.id.clone()).collect();

    for view in [pb::NoteView::Trainer, pb::NoteView::Client] {
        for page_size in [0, 3, 100] {
            let mut listed = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = list_notes(&sandbox, &owner.2, &client_id, view, page_size, page_token)
                    .await
                    .expect("a page within one default gRPC message");
                assert!(!page.notes.is_empty(), "no empty page");
                assert!(page.encoded_len() < MESSAGE_LIMIT, "one default message");
                if page_size > 0 {
                    assert!(page.notes.len() <= usize::try_from(page_size).expect("size"));
                }
                // At most the budget, plus the note that crosses it.
                let before_last: usize = page.notes[..page.notes.len() - 1]
                    .iter()
                    .map(prost::Message::encoded_len)
                    .sum();
                assert!(
                    before_last < PAGE_BUDGET,
                    "{before_last} bytes before the last note"
                );
                for note in &page.notes {
                    let tag = note
                        .content
                        .as_ref()
                        .map(|content| content.subjective.clone())
                        .unwrap_or_default();
                    let created = notes.iter().find(|known| known.id == note.id);
                    let amended = created.is_some_and(|known| known.amendment_count > 0);
                    assert_eq!(
                        tag.starts_with("amended"),
                        amended,
                        "the current text of {}",
                        note.id
                    );
                }
                listed.extend(page.notes.into_iter().map(|note| note.id));
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            assert_eq!(listed, expected, "view {view:?}, page size {page_size}");
        }
    }
}

#[tokio::test]
async fn two_hundred_concurrent_lists_of_large_notes_leave_another_users_read_served() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    heavy_notes(&sandbox, &owner, &client_id, 4, &[1]).await;
    let bystander = trainer(&sandbox, "Bea").await;
    let (_, their_note) = crate::documentation::signed_note(&sandbox, &bystander).await;

    let lists = (0..200).map(|_| {
        let sandbox = &sandbox;
        let token = owner.2.clone();
        let client_id = client_id.clone();
        async move {
            list_notes(
                sandbox,
                &token,
                &client_id,
                pb::NoteView::Trainer,
                0,
                String::new(),
            )
            .await
            .map(|page| page.notes.len())
        }
    });
    let reads = async {
        let mut outcomes = Vec::new();
        for _ in 0..5 {
            outcomes.push(
                get_note(
                    &sandbox,
                    &bystander.2,
                    &their_note,
                    pb::NoteView::Trainer,
                    true,
                )
                .await
                .map(|note| note.id),
            );
        }
        outcomes
    };
    let (listed, read) = tokio::join!(futures::future::join_all(lists), reads);
    for outcome in read {
        assert_eq!(
            outcome.expect("the other user's note is served"),
            their_note.id
        );
    }
    let mut served = 0;
    for outcome in listed {
        match outcome {
            Ok(count) => {
                assert!(count >= 1, "no empty page");
                served += 1;
            }
            // Shedding load (retryable) is allowed; failing is not.
            Err(status) => assert!(
                matches!(status.code(), Code::ResourceExhausted | Code::Unavailable),
                "{status:?}"
            ),
        }
    }
    assert!(served > 0, "some lists were served");
}

#[tokio::test]
async fn the_superseded_one_message_export_refuses_more_than_64_mib_before_reading_it_and_the_stream_exports_it_whole()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner).await;
    // One plan of the largest request revised until its versions pass
    // 64 MiB: about 1 MiB each.
    let mut plan = create_plan(&sandbox, &owner.2, fullest_plan(&client_id, "plan"))
        .await
        .expect("a plan of the largest request");
    let mut stored = plan.encoded_len();
    let mut versions = 1;
    while stored <= 66 * 1024 * 1024 {
        plan = docs(&sandbox)
            .revise_training_plan(bearer(
                pb::ReviseTrainingPlanRequest {
                    plan: Some(pb::TrainingPlan {
                        goal: text(&format!("revision{versions}"), 2_000),
                        ..plan.clone()
                    }),
                },
                &owner.2,
            ))
            .await
            .expect("revise")
            .into_inner()
            .plan
            .expect("plan");
        stored += plan.encoded_len();
        versions += 1;
    }

    let exports = || DocumentationServiceClient::new(sandbox.channel(DOCUMENTATION, CLIENTS));
    let refused = exports()
        .max_decoding_message_size(usize::MAX)
        .export_client_documentation(tonic::Request::new(pb::ExportClientDocumentationRequest {
            client_id: client_id.clone(),
        }))
        .await
        .expect_err("past 64 MiB");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "EXPORT_TOO_LARGE");

    let mut stream = exports()
        .stream_client_documentation(tonic::Request::new(pb::StreamClientDocumentationRequest {
            client_id: client_id.clone(),
        }))
        .await
        .expect("stream")
        .into_inner();
    let mut streamed = Vec::new();
    while let Some(message) = stream.message().await.expect("every message") {
        assert!(message.encoded_len() < MESSAGE_LIMIT);
        streamed.extend(message.plan_versions.into_iter().map(|plan| plan.version));
    }
    let expected: Vec<i32> = (1..=versions).collect();
    assert_eq!(streamed, expected, "every version once, in order");
}
