//! A trainer's schedule exported as iCalendar (ExportTrainerCalendar), read
//! back by another team's parser (Python's `icalendar`), and class types
//! found by full-text search (ListClassTypes.query) — through the real stack.

use std::path::PathBuf;

use chrono::{DateTime, Datelike as _, TimeZone as _, Utc};
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::audit::Action;
use fitflow_proto::google::r#type::DayOfWeek;
use fitflow_proto::scheduling as pb;
use tonic::Code;

use crate::identity_support::{reason, violated_fields};
use crate::python_support::{pip_target, run_json};
use crate::scheduling::{EVERYONE, at, book, class_type, client_of, scheduling};
use crate::scheduling_slots::audited_actions;
use crate::tenancy::{answer, invite_to_team, trainer};

/// The pinned Python packages of the parser.
const REQUIREMENTS: &str = include_str!("../../python/icalendar-requirements.txt");

fn icalendar_packages() -> PathBuf {
    pip_target(
        "python-icalendar",
        "tests/python/icalendar-requirements.txt",
        REQUIREMENTS,
    )
}

/// A class type of the trainer whose `token` this is.
async fn named_class_type(
    sandbox: &Sandbox,
    token: &str,
    name: &str,
    description: &str,
) -> pb::ClassType {
    scheduling(sandbox)
        .create_class_type(bearer(
            pb::CreateClassTypeRequest {
                class_type: Some(pb::ClassType {
                    name: name.into(),
                    description: description.into(),
                    category: pb::ClassCategory::Group as i32,
                    duration_minutes: 60,
                    max_participants: 12,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .expect("create class type")
        .into_inner()
        .class_type
        .expect("class type")
}

/// The whole `.ics` file of `trainer_id`'s appointments in [from, to), and
/// the access event's id from its first chunk.
pub(crate) async fn export(
    sandbox: &Sandbox,
    token: &str,
    trainer_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Vec<u8>, String), tonic::Status> {
    let mut stream = scheduling(sandbox)
        .export_trainer_calendar(bearer(
            pb::ExportTrainerCalendarRequest {
                trainer_id: trainer_id.into(),
                start_time: at(from),
                end_time: at(to),
            },
            token,
        ))
        .await?
        .into_inner();
    let (mut data, mut event_id) = (Vec::new(), None);
    while let Some(chunk) = stream.message().await? {
        event_id.get_or_insert(chunk.export_event_id);
        data.extend_from_slice(&chunk.data);
    }
    Ok((data, event_id.unwrap_or_default()))
}

/// What Python's `icalendar` read from `ics` (tests/python/parse_ics.py).
async fn parsed_by_icalendar(ics: &[u8]) -> serde_json::Value {
    run_json(
        "tests/python/parse_ics.py",
        &icalendar_packages(),
        "export.ics",
        ics,
        "export",
    )
    .await
}

fn instant(value: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a time"))
        .expect("ISO 8601")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn an_exported_schedule_parses_with_icalendar_across_daylight_saving_with_escaped_names_and_no_client()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    // Commas, semicolons, a backslash, accents and emoji (one a ZWJ
    // sequence), long enough that its SUMMARY line is folded.
    let name = "Yoga, flow; stretch \\ Étirements 🧘‍♀️ « doux » — niveau 1, 2; 3 🌅";
    let yoga = named_class_type(&sandbox, &ana.2, name, "").await;
    // A weekly 07:00 class in Toronto from 1 March next year: the second
    // Sunday of March (clocks spring forward) falls between the first and
    // the last of its four occurrences.
    let toronto = chrono_tz::America::Toronto;
    let year = Utc::now().year() + 1;
    let local_seven = |day: u32| {
        toronto
            .with_ymd_and_hms(year, 3, day, 7, 0, 0)
            .single()
            .expect("07:00 exists")
            .with_timezone(&Utc)
    };
    let first = local_seven(1);
    let weekday =
        DayOfWeek::try_from(first.with_timezone(&toronto).weekday().number_from_monday() as i32)
            .expect("a weekday");
    let series = scheduling(&sandbox)
        .book_series(bearer(
            pb::BookSeriesRequest {
                appointment: Some(pb::Appointment {
                    class_type_id: yoga.id.clone(),
                    start_time: at(first),
                    ..Default::default()
                }),
                time_zone: "America/Toronto".into(),
                rule: Some(pb::WeeklyRule {
                    days: vec![weekday as i32],
                    interval_weeks: 1,
                    until: None,
                    count: 4,
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &ana.2,
        ))
        .await
        .expect("book the series")
        .into_inner()
        .appointments;
    assert_eq!(series.len(), 4);
    let expected_starts: Vec<DateTime<Utc>> = [1, 8, 15, 22].map(local_seven).to_vec();
    assert_ne!(
        expected_starts[0].time(),
        expected_starts[3].time(),
        "the range crosses a daylight-saving change"
    );
    // The second occurrence is cancelled.
    scheduling(&sandbox)
        .cancel_appointment(bearer(
            pb::CancelAppointmentRequest {
                appointment_id: series[1].id.clone(),
                reason: "holiday".into(),
                etag: String::new(),
                ..Default::default()
            },
            &ana.2,
        ))
        .await
        .expect("cancel");
    // An individual session with a client, who must not appear in the file.
    let client_id = client_of(&sandbox, &ana.2).await;
    let strength = class_type(&sandbox, &ana.2, pb::ClassCategory::Individual, 1).await;
    let private = book(&sandbox, &ana.2, &strength.id, local_seven(2), &client_id)
        .await
        .expect("book the client");

    let from = Utc.with_ymd_and_hms(year, 2, 20, 0, 0, 0).unwrap();
    let to = Utc.with_ymd_and_hms(year, 4, 1, 0, 0, 0).unwrap();
    let (ics, event_id) = export(&sandbox, &ana.2, "", from, to)
        .await
        .expect("export");
    assert!(
        !event_id.is_empty(),
        "the first chunk names the access event"
    );

    // The raw text: UTF-8, CRLF lines of at most 75 octets, no client.
    let text = String::from_utf8(ics.clone()).expect("UTF-8");
    assert!(text.ends_with("\r\n"));
    for line in text[..text.len() - 2].split("\r\n") {
        assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
    }
    assert!(
        text.lines().any(|line| line.starts_with(' ')),
        "the long SUMMARY is folded"
    );
    assert!(!text.contains(&client_id), "no client id");
    assert!(
        !text.contains("Roy") && !text.contains("Zoé"),
        "no client name"
    );

    // Another team's parser reads the same events back.
    let parsed = parsed_by_icalendar(&ics).await;
    assert_eq!(parsed["version"], "2.0");
    let events = parsed["events"].as_array().expect("events");
    assert_eq!(events.len(), 5, "{parsed}");
    for (appointment, expected_start) in series.iter().zip(&expected_starts) {
        let event = events
            .iter()
            .find(|event| event["uid"] == format!("{}@fitflow", appointment.id))
            .unwrap_or_else(|| panic!("an event for {}", appointment.id));
        assert_eq!(event["summary"], name, "unescaped exactly");
        assert_eq!(instant(&event["start"]), *expected_start);
        assert_eq!(
            instant(&event["end"]) - instant(&event["start"]),
            chrono::Duration::hours(1)
        );
        // 07:00 in Toronto on both sides of the change.
        assert_eq!(
            instant(&event["start"])
                .with_timezone(&toronto)
                .format("%H:%M")
                .to_string(),
            "07:00"
        );
        let cancelled = appointment.id == series[1].id;
        assert_eq!(
            event["status"],
            if cancelled { "CANCELLED" } else { "CONFIRMED" }
        );
        assert_eq!(event["sequence"], if cancelled { 1 } else { 0 });
    }
    let session = events
        .iter()
        .find(|event| event["uid"] == format!("{}@fitflow", private.id))
        .expect("the individual session");
    assert_eq!(session["summary"], "Strength");

    // The export is an access event in the trainer's audit trail.
    let actions = audited_actions(&sandbox, &ana.2, &ana.0, ("trainer_calendar", &ana.0), 1).await;
    assert_eq!(actions, [Action::Export as i32]);
}

#[tokio::test]
async fn a_schedule_export_is_refused_past_366_days_and_to_anyone_but_the_trainer_or_a_supervisor()
{
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let lead = trainer(&sandbox, "Lena").await;
    let ana = trainer(&sandbox, "Ana").await;
    let sam = trainer(&sandbox, "Sam").await;
    let invitation = invite_to_team(&sandbox, &lead.2, &lead.0, &ana.1)
        .await
        .expect("invite");
    answer(&sandbox, &ana.2, &invitation.id, true)
        .await
        .expect("join");
    sandbox.structure_settled().await;
    let lead_token = sandbox.login(&lead.1).await.access_token;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let year = Utc::now().year() + 1;
    let start = Utc.with_ymd_and_hms(year, 5, 5, 15, 0, 0).unwrap();
    let booked = book(&sandbox, &ana.2, &group.id, start, "")
        .await
        .expect("book");
    let from = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap();

    let too_long = export(
        &sandbox,
        &ana.2,
        "",
        from,
        from + chrono::Duration::days(367),
    )
    .await
    .expect_err("367 days");
    assert_eq!(too_long.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&too_long), ["end_time"]);
    let backwards = export(&sandbox, &ana.2, "", from, from)
        .await
        .expect_err("an empty range");
    assert_eq!(backwards.code(), Code::InvalidArgument);
    let missing = scheduling(&sandbox)
        .export_trainer_calendar(bearer(
            pb::ExportTrainerCalendarRequest {
                trainer_id: "not-a-uuid".into(),
                ..Default::default()
            },
            &ana.2,
        ))
        .await
        .expect_err("nothing valid");
    let mut fields = violated_fields(&missing);
    fields.sort();
    assert_eq!(fields, ["end_time", "start_time", "trainer_id"]);

    // A stranger learns nothing, not even that Ana has a schedule.
    let stranger = export(
        &sandbox,
        &sam.2,
        &ana.0,
        from,
        from + chrono::Duration::days(366),
    )
    .await
    .expect_err("not Sam's");
    assert_eq!(stranger.code(), Code::NotFound);
    assert_eq!(reason(&stranger), "TRAINER_NOT_FOUND");

    // Her supervisor exports it, a whole (leap or not) year at once.
    let (ics, _) = export(
        &sandbox,
        &lead_token,
        &ana.0,
        from,
        from + chrono::Duration::days(366),
    )
    .await
    .expect("the lead exports");
    let text = String::from_utf8(ics).expect("UTF-8");
    assert!(
        text.contains(&format!("UID:{}@fitflow\r\n", booked.id)),
        "{text}"
    );
    assert_eq!(text.matches("BEGIN:VEVENT").count(), 1);
}

async fn search(
    sandbox: &Sandbox,
    token: &str,
    trainer_id: &str,
    query: &str,
    page_token: &str,
) -> Result<pb::ListClassTypesResponse, tonic::Status> {
    scheduling(sandbox)
        .list_class_types(bearer(
            pb::ListClassTypesRequest {
                trainer_id: trainer_id.into(),
                page_size: 1,
                page_token: page_token.into(),
                query: query.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner())
}

/// The names of every class type `query` finds, page by page.
async fn found(sandbox: &Sandbox, token: &str, trainer_id: &str, query: &str) -> Vec<String> {
    let (mut names, mut page_token) = (Vec::new(), String::new());
    loop {
        let page = search(sandbox, token, trainer_id, query, &page_token)
            .await
            .unwrap_or_else(|status| panic!("{query:?}: {status:?}"));
        names.extend(page.class_types.into_iter().map(|class| class.name));
        if page.next_page_token.is_empty() {
            return names;
        }
        page_token = page.next_page_token;
    }
}

#[tokio::test]
async fn class_types_are_found_by_words_of_their_description_and_name_prefixes_never_another_trainers()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let ben = trainer(&sandbox, "Ben").await;
    named_class_type(
        &sandbox,
        &ana.2,
        "Yoga doux",
        "Étirements et respiration, en douceur",
    )
    .await;
    named_class_type(
        &sandbox,
        &ana.2,
        "Strength",
        "Barbell work for beginners, endurance",
    )
    .await;
    named_class_type(&sandbox, &ana.2, "Yoga power", "Vinyasa flow").await;
    named_class_type(&sandbox, &ben.2, "Yoga Ben", "Respiration and barbell").await;

    // A word of the description; accents and case ignored both ways.
    assert_eq!(
        found(&sandbox, &ana.2, "", "respiration").await,
        ["Yoga doux"]
    );
    assert_eq!(
        found(&sandbox, &ana.2, "", "ETIREMENTS").await,
        ["Yoga doux"]
    );
    assert_eq!(found(&sandbox, &ana.2, "", "étire").await, ["Yoga doux"]);
    // A prefix of the name; every word must match.
    assert_eq!(found(&sandbox, &ana.2, "", "stren").await, ["Strength"]);
    assert_eq!(
        found(&sandbox, &ana.2, "", "barbell begin").await,
        ["Strength"]
    );
    assert!(found(&sandbox, &ana.2, "", "barbell yoga").await.is_empty());
    // Several matches page one at a time, oldest first.
    assert_eq!(
        found(&sandbox, &ana.2, "", "yoga").await,
        ["Yoga doux", "Yoga power"]
    );
    // A short word matches whole words only: "en" is a word of the first
    // description and only the start of "endurance" in the second.
    assert_eq!(found(&sandbox, &ana.2, "", "en").await, ["Yoga doux"]);
    // Ben's class type matches Ana's words but is never hers to find.
    assert_eq!(found(&sandbox, &ben.2, "", "yoga").await, ["Yoga Ben"]);
    assert!(
        !found(&sandbox, &ana.2, "", "ben")
            .await
            .contains(&"Yoga Ben".to_owned())
    );
    let foreign = search(&sandbox, &ana.2, &ben.0, "yoga", "")
        .await
        .expect_err("Ben's list");
    assert_eq!(foreign.code(), Code::NotFound);
    assert_eq!(reason(&foreign), "TRAINER_NOT_FOUND");
    // A page token is bound to its query.
    let first = search(&sandbox, &ana.2, "", "yoga", "")
        .await
        .expect("page");
    assert!(!first.next_page_token.is_empty());
    let swapped = search(&sandbox, &ana.2, "", "strength", &first.next_page_token)
        .await
        .expect_err("another query's token");
    assert_eq!(swapped.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&swapped), ["page_token"]);
    // No query lists them all.
    assert_eq!(found(&sandbox, &ana.2, "", "").await.len(), 3);
}

#[tokio::test]
async fn hostile_class_type_queries_give_results_or_invalid_argument_never_internal() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    named_class_type(&sandbox, &ana.2, "Yoga doux", "Étirements").await;
    let hostile = [
        "'",
        "\"",
        "\\",
        "yoga'",
        "'yoga' & 'x'",
        "yoga:*",
        "yoga | strength",
        "!yoga",
        "yoga <-> doux",
        "(yoga",
        "yoga)",
        "& | ! <-> :* ( )",
        "yoga:A",
        "' OR 1=1 --",
        "'); DROP TABLE class_types; --",
        "$$",
        "%_%",
        "🧘‍♀️",
        "ÉTIREMENTS 🧘",
        "a b c d e f g h i j k yoga",
        "\u{200b}yoga",
    ];
    for query in hostile {
        match search(&sandbox, &ana.2, "", query, "").await {
            Ok(_) => {}
            Err(status) => assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{query:?}: {status:?}"
            ),
        }
    }
    // Operators are separators: the words still find the class type.
    for query in [
        "yoga:*",
        "!yoga",
        "'yoga'",
        "yoga | strength",
        "yoga <-> doux",
    ] {
        let names: Vec<String> = search(&sandbox, &ana.2, "", query, "")
            .await
            .expect(query)
            .class_types
            .into_iter()
            .map(|class| class.name)
            .collect();
        let expected: &[&str] = if query == "yoga | strength" {
            &[]
        } else {
            &["Yoga doux"]
        };
        assert_eq!(names, expected, "{query:?}");
    }
    // Control characters and overlong queries are bad input.
    for query in ["yoga\0", "\0", "yo\u{1b}ga", &"y".repeat(101)] {
        let status = search(&sandbox, &ana.2, "", query, "")
            .await
            .expect_err("bad input");
        assert_eq!(status.code(), Code::InvalidArgument, "{query:?}");
        assert_eq!(violated_fields(&status), ["query"]);
    }
}

#[tokio::test]
async fn a_schedule_export_over_five_thousand_appointments_is_refused_whole_and_a_shorter_one_streams_in_chunks()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let short = scheduling(&sandbox)
        .create_class_type(bearer(
            pb::CreateClassTypeRequest {
                class_type: Some(pb::ClassType {
                    name: "Check-in".into(),
                    category: pb::ClassCategory::Group as i32,
                    duration_minutes: 5,
                    max_participants: 2,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &ana.2,
        ))
        .await
        .expect("create class type")
        .into_inner()
        .class_type
        .expect("class type");
    let year = Utc::now().year() + 1;
    let base = Utc.with_ymd_and_hms(year, 2, 1, 8, 0, 0).unwrap();
    // 51 daily series of 100 five-minute sessions, each five minutes after
    // the last: 5,100 appointments in 100 days.
    for series in 0..51 {
        scheduling(&sandbox)
            .book_series(bearer(
                pb::BookSeriesRequest {
                    appointment: Some(pb::Appointment {
                        class_type_id: short.id.clone(),
                        start_time: at(base + chrono::Duration::minutes(5 * series)),
                        ..Default::default()
                    }),
                    time_zone: "UTC".into(),
                    rule: Some(pb::WeeklyRule {
                        days: (1..=7).collect(),
                        interval_weeks: 1,
                        until: None,
                        count: 100,
                    }),
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
                &ana.2,
            ))
            .await
            .expect("book a series");
    }
    let too_many = export(
        &sandbox,
        &ana.2,
        "",
        base,
        base + chrono::Duration::days(100),
    )
    .await
    .expect_err("5,100 appointments");
    assert_eq!(too_many.code(), Code::FailedPrecondition);
    assert_eq!(reason(&too_many), "EXPORT_TOO_LARGE");

    // Fifty days hold 2,550: the file comes in several chunks that join
    // into one calendar.
    let mut stream = scheduling(&sandbox)
        .export_trainer_calendar(bearer(
            pb::ExportTrainerCalendarRequest {
                trainer_id: String::new(),
                start_time: at(base),
                end_time: at(base + chrono::Duration::days(50)),
            },
            &ana.2,
        ))
        .await
        .expect("export")
        .into_inner();
    let (mut chunks, mut data) = (0, Vec::new());
    while let Some(chunk) = stream.message().await.expect("a chunk") {
        assert!(chunk.data.len() <= 64 * 1024);
        assert_eq!(chunk.export_event_id.is_empty(), chunks > 0);
        chunks += 1;
        data.extend_from_slice(&chunk.data);
    }
    assert!(chunks > 1, "{chunks} chunk(s)");
    let parsed = parsed_by_icalendar(&data).await;
    assert_eq!(parsed["events"].as_array().expect("events").len(), 2_550);
}
