//! Scheduling end to end: class types and appointments that cannot
//! double-book, through identity, tenancy, clients, scheduling and audit over
//! real mTLS — raced with real concurrency and attacked as another trainer.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::clients as clients_pb;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::scheduling as pb;
use fitflow_proto::scheduling::scheduling_service_client::SchedulingServiceClient;
use fitflow_proto::types::Money;
use prost_types::Timestamp;
use tonic::Code;
use tonic::transport::Channel;

use crate::identity_support::{reason, violated_fields};
use crate::tenancy::{TENANCY, answer, invite_to_team, trainer};

const CLIENTS: &str = "clients";
pub(crate) const SCHEDULING: &str = "scheduling";
pub(crate) const EVERYONE: &[&str] = &[IDENTITY, TENANCY, CLIENTS, SCHEDULING, AUDIT];

pub(crate) fn scheduling(sandbox: &Sandbox) -> SchedulingServiceClient<Channel> {
    SchedulingServiceClient::new(sandbox.channel(SCHEDULING, "gateway"))
}

pub(crate) fn at(time: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    })
}

pub(crate) async fn class_type(
    sandbox: &Sandbox,
    token: &str,
    category: pb::ClassCategory,
    max_participants: i32,
) -> pb::ClassType {
    scheduling(sandbox)
        .create_class_type(bearer(
            pb::CreateClassTypeRequest {
                class_type: Some(pb::ClassType {
                    name: "Strength".into(),
                    category: category as i32,
                    duration_minutes: 60,
                    max_participants,
                    default_rate: Some(Money {
                        currency_code: "CAD".into(),
                        amount: "85".into(),
                    }),
                    color: "#1a2b3c".into(),
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

pub(crate) async fn book(
    sandbox: &Sandbox,
    token: &str,
    class_type_id: &str,
    start: DateTime<Utc>,
    client_id: &str,
) -> Result<pb::Appointment, tonic::Status> {
    scheduling(sandbox)
        .book_appointment(bearer(
            pb::BookAppointmentRequest {
                appointment: Some(pb::Appointment {
                    class_type_id: class_type_id.into(),
                    start_time: at(start),
                    client_id: client_id.into(),
                    ..Default::default()
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().appointment.expect("appointment"))
}

/// A new client of the trainer whose `token` this is; its id.
pub(crate) async fn client_of(sandbox: &Sandbox, token: &str) -> String {
    ClientsServiceClient::new(sandbox.channel(CLIENTS, "gateway"))
        .create_client(bearer(
            clients_pb::CreateClientRequest {
                client: Some(clients_pb::Client {
                    first_name: "Zoé".into(),
                    last_name: "Roy".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .expect("create client")
        .into_inner()
        .client
        .expect("client")
        .id
}

/// A time next year, on a whole hour: partitions exist for this year and
/// the next two.
pub(crate) fn next_year(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    let year = chrono::Datelike::year(&Utc::now()) + 1;
    Utc.with_ymd_and_hms(year, month, day, hour, 0, 0).unwrap()
}

/// Runs `bookings` at once and returns (successes, TRAINER_BUSY refusals).
async fn race(
    sandbox: Arc<Sandbox>,
    token: &str,
    class_type_id: &str,
    starts: Vec<DateTime<Utc>>,
) -> (usize, usize) {
    let mut tasks = Vec::new();
    for start in starts {
        let (sandbox, token, class_type_id) = (
            Arc::clone(&sandbox),
            token.to_owned(),
            class_type_id.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            book(&sandbox, &token, &class_type_id, start, "").await
        }));
    }
    let (mut booked, mut busy) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => booked += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert_eq!(reason(&status), "TRAINER_BUSY");
                busy += 1;
            }
        }
    }
    (booked, busy)
}

#[tokio::test]
async fn of_a_hundred_concurrent_overlapping_bookings_exactly_one_is_made() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let base = next_year(3, 10, 14);
    // Every start within 30 minutes of the others: each pair of hour-long
    // sessions overlaps.
    let starts = (0..100).map(|i| base + Duration::minutes(i % 30)).collect();
    let sandbox = Arc::new(sandbox);
    let (booked, busy) = race(Arc::clone(&sandbox), &ana.2, &group.id, starts).await;
    assert_eq!((booked, busy), (1, 99));
    let listed = scheduling(&sandbox)
        .list_appointments(bearer(
            pb::ListAppointmentsRequest {
                start_time: at(base - Duration::hours(1)),
                end_time: at(base + Duration::hours(2)),
                ..Default::default()
            },
            &ana.2,
        ))
        .await
        .expect("list")
        .into_inner()
        .appointments;
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn two_bookings_overlapping_across_new_years_midnight_cannot_both_be_made() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    // 23:30 on 31 December and 00:00 on 1 January fall in two yearly
    // partitions; the exclusion constraint spans both.
    let new_year = next_year(1, 1, 0);
    let starts = vec![new_year - Duration::minutes(30), new_year];
    let sandbox = Arc::new(sandbox);
    for _ in 0..5 {
        let (booked, busy) = race(Arc::clone(&sandbox), &ana.2, &group.id, starts.clone()).await;
        assert_eq!(booked + busy, 2);
        assert!(booked <= 1, "both sides of midnight were booked");
    }
    let refused = book(
        &sandbox,
        &ana.2,
        &group.id,
        new_year - Duration::minutes(30),
        "",
    )
    .await
    .expect_err("the time is taken");
    assert!(
        refused.message().contains("appointment "),
        "the refusal names the appointment: {}",
        refused.message()
    );
}

#[tokio::test]
async fn a_cancelled_appointment_frees_its_time_and_cannot_be_cancelled_twice() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let start = next_year(5, 4, 9);
    let first = book(&sandbox, &ana.2, &group.id, start, "")
        .await
        .expect("book");
    assert_eq!(first.client_price.expect("price").amount, "85.00");
    assert_eq!(first.end_time, at(start + Duration::hours(1)));
    book(
        &sandbox,
        &ana.2,
        &group.id,
        start + Duration::minutes(59),
        "",
    )
    .await
    .expect_err("overlaps by a minute");
    let back_to_back = book(&sandbox, &ana.2, &group.id, start + Duration::hours(1), "")
        .await
        .expect("a session may start when the previous one ends");
    assert_eq!(back_to_back.status, pb::AppointmentStatus::Scheduled as i32);

    let cancelled = scheduling(&sandbox)
        .cancel_appointment(bearer(
            pb::CancelAppointmentRequest {
                appointment_id: first.id.clone(),
                reason: "client sick".into(),
                etag: first.etag.clone(),
                ..Default::default()
            },
            &ana.2,
        ))
        .await
        .expect("cancel")
        .into_inner()
        .appointment
        .expect("appointment");
    assert_eq!(cancelled.status, pb::AppointmentStatus::Cancelled as i32);
    assert_eq!(cancelled.cancelled_by, ana.0);
    book(&sandbox, &ana.2, &group.id, start, "")
        .await
        .expect("the freed time books again");
    let again = scheduling(&sandbox)
        .cancel_appointment(bearer(
            pb::CancelAppointmentRequest {
                appointment_id: first.id.clone(),
                reason: String::new(),
                etag: String::new(),
                ..Default::default()
            },
            &ana.2,
        ))
        .await
        .expect_err("already cancelled");
    assert_eq!(reason(&again), "APPOINTMENT_STATE");
}

#[tokio::test]
async fn booking_a_client_asks_the_clients_service_with_the_callers_token() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let sam = trainer(&sandbox, "Sam").await;
    let individual = class_type(&sandbox, &ana.2, pb::ClassCategory::Individual, 1).await;
    let own = client_of(&sandbox, &ana.2).await;
    let foreign = client_of(&sandbox, &sam.2).await;

    let start = next_year(6, 1, 10);
    let booked = book(&sandbox, &ana.2, &individual.id, start, &own)
        .await
        .expect("book own client");
    assert_eq!(booked.client_id, own);
    let stranger = book(
        &sandbox,
        &ana.2,
        &individual.id,
        start + Duration::hours(2),
        &foreign,
    )
    .await
    .expect_err("another trainer's client");
    assert_eq!(stranger.code(), Code::NotFound);
    assert_eq!(reason(&stranger), "CLIENT_NOT_FOUND");
    let nobody = book(
        &sandbox,
        &ana.2,
        &individual.id,
        start + Duration::hours(4),
        "",
    )
    .await
    .expect_err("an individual class needs a client");
    assert_eq!(reason(&nobody), "CLIENT_REQUIRED");
}

#[tokio::test]
async fn another_trainer_sees_and_books_nothing_while_a_supervisor_manages_it_all() {
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
    // The join makes the lead's tokens stale: log in once identity knows.
    sandbox.structure_settled().await;
    let lead_token = sandbox.login(&lead.1).await.access_token;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let start = next_year(7, 7, 7);
    let booked = book(&sandbox, &ana.2, &group.id, start, "")
        .await
        .expect("book");
    let mut api = scheduling(&sandbox);

    let codes = [
        api.get_appointment(bearer(
            pb::GetAppointmentRequest {
                appointment_id: booked.id.clone(),
            },
            &sam.2,
        ))
        .await
        .map(|_| ())
        .unwrap_err(),
        api.get_class_type(bearer(
            pb::GetClassTypeRequest {
                class_type_id: group.id.clone(),
            },
            &sam.2,
        ))
        .await
        .map(|_| ())
        .unwrap_err(),
        api.cancel_appointment(bearer(
            pb::CancelAppointmentRequest {
                appointment_id: booked.id.clone(),
                reason: String::new(),
                etag: String::new(),
                ..Default::default()
            },
            &sam.2,
        ))
        .await
        .map(|_| ())
        .unwrap_err(),
        api.list_appointments(bearer(
            pb::ListAppointmentsRequest {
                trainer_id: ana.0.clone(),
                start_time: at(start - Duration::days(1)),
                end_time: at(start + Duration::days(1)),
                ..Default::default()
            },
            &sam.2,
        ))
        .await
        .map(|_| ())
        .unwrap_err(),
        api.book_appointment(bearer(
            pb::BookAppointmentRequest {
                appointment: Some(pb::Appointment {
                    trainer_id: ana.0.clone(),
                    class_type_id: group.id.clone(),
                    start_time: at(start + Duration::hours(3)),
                    ..Default::default()
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &sam.2,
        ))
        .await
        .map(|_| ())
        .unwrap_err(),
    ];
    for status in codes {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert!(
            !status.message().contains(&ana.0),
            "no id leaks: {}",
            status.message()
        );
    }
    // Sam's own class type cannot book Ana's time either.
    let sams = class_type(&sandbox, &sam.2, pb::ClassCategory::Group, 5).await;
    let borrowed = api
        .book_appointment(bearer(
            pb::BookAppointmentRequest {
                appointment: Some(pb::Appointment {
                    trainer_id: ana.0.clone(),
                    class_type_id: sams.id.clone(),
                    start_time: at(start + Duration::hours(5)),
                    ..Default::default()
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &sam.2,
        ))
        .await
        .expect_err("not Sam's trainer");
    assert_eq!(reason(&borrowed), "TRAINER_NOT_FOUND");

    // The lead sees and manages the member's calendar.
    let seen = api
        .get_appointment(bearer(
            pb::GetAppointmentRequest {
                appointment_id: booked.id.clone(),
            },
            &lead_token,
        ))
        .await
        .expect("the lead reads")
        .into_inner()
        .appointment
        .expect("appointment");
    let on_behalf = api
        .book_appointment(bearer(
            pb::BookAppointmentRequest {
                appointment: Some(pb::Appointment {
                    trainer_id: ana.0.clone(),
                    class_type_id: group.id.clone(),
                    start_time: at(start + Duration::hours(2)),
                    ..Default::default()
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &lead_token,
        ))
        .await
        .expect("the lead books for the member")
        .into_inner()
        .appointment
        .expect("appointment");
    assert_eq!(on_behalf.trainer_id, ana.0);
    api.cancel_appointment(bearer(
        pb::CancelAppointmentRequest {
            appointment_id: seen.id,
            reason: "moved".into(),
            etag: seen.etag,
            ..Default::default()
        },
        &lead_token,
    ))
    .await
    .expect("the lead cancels");
}

#[tokio::test]
async fn a_week_is_listed_in_start_order_across_pages_and_a_retry_books_nothing_twice() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let monday = next_year(9, 7, 8);
    for day in (0..7).rev() {
        book(
            &sandbox,
            &ana.2,
            &group.id,
            monday + Duration::days(day),
            "",
        )
        .await
        .expect("book");
    }
    let mut api = scheduling(&sandbox);
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = api
            .list_appointments(bearer(
                pb::ListAppointmentsRequest {
                    start_time: at(monday),
                    end_time: at(monday + Duration::days(7)),
                    page_size: 3,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
                &ana.2,
            ))
            .await
            .expect("list")
            .into_inner();
        seen.extend(
            page.appointments
                .into_iter()
                .map(|a| a.start_time.expect("start").seconds),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let expected: Vec<i64> = (0..7)
        .map(|day| (monday + Duration::days(day)).timestamp())
        .collect();
    assert_eq!(seen, expected);

    let request = pb::BookAppointmentRequest {
        appointment: Some(pb::Appointment {
            class_type_id: group.id.clone(),
            start_time: at(monday + Duration::days(8)),
            ..Default::default()
        }),
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let first = api
        .book_appointment(bearer(request.clone(), &ana.2))
        .await
        .expect("book")
        .into_inner();
    let retried = api
        .book_appointment(bearer(request, &ana.2))
        .await
        .expect("the retry answers with the same appointment")
        .into_inner();
    assert_eq!(
        first.appointment.expect("a").id,
        retried.appointment.expect("b").id
    );
}

#[tokio::test]
async fn hostile_input_is_refused_field_by_field() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let mut api = scheduling(&sandbox);
    let bad_type = api
        .create_class_type(bearer(
            pb::CreateClassTypeRequest {
                class_type: Some(pb::ClassType {
                    name: "Yoga\u{0}".into(),
                    category: 0,
                    duration_minutes: 1,
                    max_participants: 3,
                    default_rate: Some(Money {
                        currency_code: "USD".into(),
                        amount: "-1".into(),
                    }),
                    color: "red".into(),
                    description: "ok\u{7}".into(),
                    ..Default::default()
                }),
                request_id: "not-a-uuid".into(),
            },
            &ana.2,
        ))
        .await
        .expect_err("hostile class type");
    let fields = violated_fields(&bad_type);
    for field in [
        "request_id",
        "class_type.name",
        "class_type.category",
        "class_type.duration_minutes",
        "class_type.default_rate",
        "class_type.color",
        "class_type.description",
    ] {
        assert!(
            fields.iter().any(|found| found == field),
            "{field} in {fields:?}"
        );
    }
    let bad_booking = api
        .book_appointment(bearer(
            pb::BookAppointmentRequest {
                appointment: Some(pb::Appointment {
                    class_type_id: "x".into(),
                    start_time: Some(Timestamp {
                        seconds: i64::MAX,
                        nanos: 0,
                    }),
                    location_details: "room\u{0}".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &ana.2,
        ))
        .await
        .expect_err("hostile booking");
    let fields = violated_fields(&bad_booking);
    for field in [
        "request_id",
        "appointment.class_type_id",
        "appointment.start_time",
        "appointment.location_details",
    ] {
        assert!(
            fields.iter().any(|found| found == field),
            "{field} in {fields:?}"
        );
    }
    let off_minute = api
        .book_appointment(bearer(
            pb::BookAppointmentRequest {
                appointment: Some(pb::Appointment {
                    class_type_id: uuid::Uuid::new_v4().to_string(),
                    start_time: Some(Timestamp {
                        seconds: next_year(1, 2, 3).timestamp() + 7,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &ana.2,
        ))
        .await
        .expect_err("not on a minute");
    assert_eq!(violated_fields(&off_minute), vec!["appointment.start_time"]);
    let too_wide = api
        .list_appointments(bearer(
            pb::ListAppointmentsRequest {
                start_time: at(next_year(1, 1, 0)),
                end_time: at(next_year(6, 1, 0)),
                page_token: "forged".into(),
                ..Default::default()
            },
            &ana.2,
        ))
        .await
        .expect_err("half a year, a forged token");
    let fields = violated_fields(&too_wide);
    assert!(fields.contains(&"end_time".to_owned()) && fields.contains(&"page_token".to_owned()));
}

pub(crate) async fn join(
    sandbox: &Sandbox,
    token: &str,
    appointment_id: &str,
    client_id: &str,
) -> Result<pb::Participant, tonic::Status> {
    scheduling(sandbox)
        .join_class(bearer(
            pb::JoinClassRequest {
                appointment_id: appointment_id.into(),
                client_id: client_id.into(),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().participant.expect("participant"))
}

async fn roster(sandbox: &Sandbox, token: &str, appointment_id: &str) -> Vec<pb::Participant> {
    scheduling(sandbox)
        .list_participants(bearer(
            pb::ListParticipantsRequest {
                appointment_id: appointment_id.into(),
                show_cancelled: false,
            },
            token,
        ))
        .await
        .expect("list participants")
        .into_inner()
        .participants
}

#[tokio::test]
async fn of_a_hundred_concurrent_joins_for_ten_places_ten_are_confirmed_and_the_waitlist_moves_up_in_order()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let class = book(&sandbox, &ana.2, &group.id, next_year(4, 2, 18), "")
        .await
        .expect("book the class");
    let sandbox = Arc::new(sandbox);
    let mut creating = Vec::new();
    for _ in 0..100 {
        let (sandbox, token) = (Arc::clone(&sandbox), ana.2.clone());
        creating.push(tokio::spawn(
            async move { client_of(&sandbox, &token).await },
        ));
    }
    let mut clients = Vec::new();
    for task in creating {
        clients.push(task.await.expect("task"));
    }

    let mut joining = Vec::new();
    for client in &clients {
        let (sandbox, token, class_id, client) = (
            Arc::clone(&sandbox),
            ana.2.clone(),
            class.id.clone(),
            client.clone(),
        );
        joining.push(tokio::spawn(async move {
            join(&sandbox, &token, &class_id, &client).await
        }));
    }
    let mut statuses = Vec::new();
    for task in joining {
        statuses.push(task.await.expect("task").expect("join").status);
    }
    let confirmed = pb::ParticipantStatus::Confirmed as i32;
    let waitlisted = pb::ParticipantStatus::Waitlisted as i32;
    assert_eq!(statuses.iter().filter(|s| **s == confirmed).count(), 10);
    assert_eq!(statuses.iter().filter(|s| **s == waitlisted).count(), 90);

    // In commit order: the ten earliest joins have the places.
    let line = roster(&sandbox, &ana.2, &class.id).await;
    assert_eq!(line.len(), 100);
    assert!(
        line.windows(2)
            .all(|pair| pair[0].position < pair[1].position)
    );
    let distinct: std::collections::HashSet<&str> =
        line.iter().map(|p| p.client_id.as_str()).collect();
    assert_eq!(distinct.len(), 100, "no client twice");
    assert!(line[..10].iter().all(|p| p.status == confirmed));
    assert!(line[10..].iter().all(|p| p.status == waitlisted));

    // Three leave: the first three waiting take their places, in order.
    for (leaving, next) in line[..3].iter().zip(&line[10..13]) {
        let left = scheduling(&sandbox)
            .leave_class(bearer(
                pb::LeaveClassRequest {
                    appointment_id: class.id.clone(),
                    client_id: leaving.client_id.clone(),
                },
                &ana.2,
            ))
            .await
            .expect("leave")
            .into_inner();
        let promoted = left.promoted.expect("someone was promoted");
        assert_eq!(promoted.client_id, next.client_id);
        assert_eq!(promoted.status, confirmed);
    }
    let after = roster(&sandbox, &ana.2, &class.id).await;
    assert_eq!(after.len(), 97);
    let now_confirmed: Vec<&str> = after
        .iter()
        .filter(|p| p.status == confirmed)
        .map(|p| p.client_id.as_str())
        .collect();
    let expected: Vec<&str> = line[3..13].iter().map(|p| p.client_id.as_str()).collect();
    assert_eq!(now_confirmed, expected);

    let twice = join(&sandbox, &ana.2, &class.id, &line[20].client_id)
        .await
        .expect_err("already waitlisted");
    assert_eq!(reason(&twice), "PARTICIPANT_EXISTS");
    let back = join(&sandbox, &ana.2, &class.id, &line[0].client_id)
        .await
        .expect("a client who left may join again");
    assert_eq!(back.status, waitlisted, "at the end of the line");
}

#[tokio::test]
async fn only_group_classes_take_participants_and_only_the_trainers_clients() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let sam = trainer(&sandbox, "Sam").await;
    let individual = class_type(&sandbox, &ana.2, pb::ClassCategory::Individual, 1).await;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 4).await;
    let own = client_of(&sandbox, &ana.2).await;
    let foreign = client_of(&sandbox, &sam.2).await;
    let session = book(&sandbox, &ana.2, &individual.id, next_year(8, 3, 9), &own)
        .await
        .expect("book");
    let refused = join(&sandbox, &ana.2, &session.id, &own)
        .await
        .expect_err("individual");
    assert_eq!(reason(&refused), "NOT_A_GROUP_CLASS");
    let class = book(&sandbox, &ana.2, &group.id, next_year(8, 3, 11), "")
        .await
        .expect("book");
    let stranger = join(&sandbox, &ana.2, &class.id, &foreign)
        .await
        .expect_err("foreign client");
    assert_eq!(reason(&stranger), "CLIENT_NOT_FOUND");
    let intruder = join(&sandbox, &sam.2, &class.id, &foreign)
        .await
        .expect_err("foreign class");
    assert_eq!(reason(&intruder), "APPOINTMENT_NOT_FOUND");
    let hidden = scheduling(&sandbox)
        .list_participants(bearer(
            pb::ListParticipantsRequest {
                appointment_id: class.id.clone(),
                show_cancelled: true,
            },
            &sam.2,
        ))
        .await
        .expect_err("another trainer's roster");
    assert_eq!(hidden.code(), Code::NotFound);
}

#[tokio::test]
async fn the_week_bench_seeds_partitions_and_lists_without_errors() {
    use secrecy::ExposeSecret as _;
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let output = tokio::process::Command::new(fitflow_e2e::fitflow_binary())
        .args([
            "bench",
            "--scenario",
            "week",
            "--seed",
            "5000",
            "--seconds",
            "1",
            "--concurrency",
            "2",
            "--endpoint",
            &format!("https://127.0.0.1:{}", sandbox.ports[IDENTITY]),
            "--scheduling-endpoint",
            &format!("https://127.0.0.1:{}", sandbox.ports[SCHEDULING]),
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
        "{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Figures are printed, never asserted: only that requests succeeded.
    assert!(printed.contains(" ok, 0 failed"), "{printed}");
    let admin = sandbox.db.admin_pool().await;
    let (rows, partitions): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM scheduling.appointments), \
                (SELECT count(*) FROM pg_inherits WHERE inhparent = 'scheduling.appointments'::regclass)",
    )
    .fetch_one(&admin)
    .await
    .expect("counts");
    assert!(rows >= 5000, "{rows} appointments");
    assert!(
        partitions >= 4,
        "{partitions} partitions (three years and the default)"
    );
}

/// The next whole minute at least `hours` from now.
pub(crate) fn from_now(hours: i64) -> DateTime<Utc> {
    let later = Utc::now() + Duration::hours(hours) + Duration::minutes(1);
    Utc.timestamp_opt(later.timestamp() - later.timestamp() % 60, 0)
        .single()
        .expect("a time")
}

pub(crate) fn cad(amount: &str) -> Option<Money> {
    Some(Money {
        currency_code: "CAD".into(),
        amount: amount.into(),
    })
}

#[tokio::test]
async fn a_late_cancel_or_a_no_show_owes_the_policys_fee_until_the_trainer_waives_it() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let sam = trainer(&sandbox, "Sam").await;
    let mut api = scheduling(&sandbox);
    let default = api
        .get_cancellation_policy(bearer(pb::GetCancellationPolicyRequest::default(), &ana.2))
        .await
        .expect("default policy")
        .into_inner()
        .policy
        .expect("policy");
    assert_eq!(default.late_cancel_hours, 24);
    assert!(default.late_cancel_fee.is_none());
    api.set_cancellation_policy(bearer(
        pb::SetCancellationPolicyRequest {
            policy: Some(pb::CancellationPolicy {
                late_cancel_hours: 12,
                late_cancel_fee: cad("30"),
                no_show_fee: cad("45.50"),
                ..Default::default()
            }),
        },
        &ana.2,
    ))
    .await
    .expect("set policy");
    let refused = api
        .set_cancellation_policy(bearer(
            pb::SetCancellationPolicyRequest {
                policy: Some(pb::CancellationPolicy {
                    trainer_id: ana.0.clone(),
                    late_cancel_hours: 1,
                    ..Default::default()
                }),
            },
            &sam.2,
        ))
        .await
        .expect_err("another trainer's policy");
    assert_eq!(reason(&refused), "TRAINER_NOT_FOUND");

    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let cancel = |appointment: pb::Appointment| {
        let mut api = scheduling(&sandbox);
        let token = ana.2.clone();
        async move {
            api.cancel_appointment(bearer(
                pb::CancelAppointmentRequest {
                    appointment_id: appointment.id,
                    reason: "sick".into(),
                    etag: appointment.etag,
                    ..Default::default()
                },
                &token,
            ))
            .await
            .expect("cancel")
            .into_inner()
            .appointment
            .expect("appointment")
        }
    };
    let soon = book(&sandbox, &ana.2, &group.id, from_now(2), "")
        .await
        .expect("book");
    let late = cancel(soon).await;
    assert!(late.late_cancel);
    assert_eq!(late.penalty_fee.expect("fee").amount, "30.00");
    let later = book(&sandbox, &ana.2, &group.id, from_now(48), "")
        .await
        .expect("book");
    let early = cancel(later).await;
    assert!(!early.late_cancel);
    assert!(early.penalty_fee.is_none());

    let missed = book(&sandbox, &ana.2, &group.id, from_now(5), "")
        .await
        .expect("book");
    let no_show = api
        .mark_no_show(bearer(
            pb::MarkNoShowRequest {
                appointment_id: missed.id.clone(),
                etag: missed.etag.clone(),
            },
            &ana.2,
        ))
        .await
        .expect("no-show")
        .into_inner()
        .appointment
        .expect("appointment");
    assert_eq!(no_show.status, pb::AppointmentStatus::NoShow as i32);
    assert_eq!(no_show.penalty_fee.expect("fee").amount, "45.50");
    let waived = api
        .waive_fee(bearer(
            pb::WaiveFeeRequest {
                appointment_id: missed.id.clone(),
                reason: "first time".into(),
            },
            &ana.2,
        ))
        .await
        .expect("waive")
        .into_inner()
        .appointment
        .expect("appointment");
    assert!(waived.fee_waived);
    let twice = api
        .waive_fee(bearer(
            pb::WaiveFeeRequest {
                appointment_id: missed.id.clone(),
                reason: "again".into(),
            },
            &ana.2,
        ))
        .await
        .expect_err("nothing left to waive");
    assert_eq!(reason(&twice), "NO_FEE");
    let stranger = api
        .waive_fee(bearer(
            pb::WaiveFeeRequest {
                appointment_id: late.id.clone(),
                reason: "mine now".into(),
            },
            &sam.2,
        ))
        .await
        .expect_err("another trainer's appointment");
    assert_eq!(stranger.code(), Code::NotFound);
}

#[tokio::test]
async fn completing_a_class_records_who_came_and_only_participants_can_be_marked() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let individual = class_type(&sandbox, &ana.2, pb::ClassCategory::Individual, 1).await;
    let (zoe, leo, outsider) = (
        client_of(&sandbox, &ana.2).await,
        client_of(&sandbox, &ana.2).await,
        client_of(&sandbox, &ana.2).await,
    );
    let class = book(&sandbox, &ana.2, &group.id, next_year(10, 5, 17), "")
        .await
        .expect("book");
    join(&sandbox, &ana.2, &class.id, &zoe).await.expect("join");
    join(&sandbox, &ana.2, &class.id, &leo).await.expect("join");
    let mut api = scheduling(&sandbox);
    let wrong = api
        .complete_appointment(bearer(
            pb::CompleteAppointmentRequest {
                appointment_id: class.id.clone(),
                attendance: vec![pb::Attendance {
                    client_id: outsider.clone(),
                    attended: true,
                }],
                etag: String::new(),
            },
            &ana.2,
        ))
        .await
        .expect_err("not a participant");
    assert_eq!(reason(&wrong), "PARTICIPANT_NOT_FOUND");
    let done = api
        .complete_appointment(bearer(
            pb::CompleteAppointmentRequest {
                appointment_id: class.id.clone(),
                attendance: vec![
                    pb::Attendance {
                        client_id: zoe.clone(),
                        attended: true,
                    },
                    pb::Attendance {
                        client_id: leo.clone(),
                        attended: false,
                    },
                ],
                etag: class.etag.clone(),
            },
            &ana.2,
        ))
        .await
        .expect("complete")
        .into_inner()
        .appointment
        .expect("appointment");
    assert_eq!(done.status, pb::AppointmentStatus::Completed as i32);
    let again = api
        .complete_appointment(bearer(
            pb::CompleteAppointmentRequest {
                appointment_id: class.id.clone(),
                attendance: Vec::new(),
                etag: String::new(),
            },
            &ana.2,
        ))
        .await
        .expect_err("completed already");
    assert_eq!(reason(&again), "APPOINTMENT_STATE");

    let session = book(&sandbox, &ana.2, &individual.id, next_year(10, 6, 9), &zoe)
        .await
        .expect("book");
    let held = api
        .complete_appointment(bearer(
            pb::CompleteAppointmentRequest {
                appointment_id: session.id.clone(),
                attendance: vec![pb::Attendance {
                    client_id: zoe.clone(),
                    attended: true,
                }],
                etag: session.etag.clone(),
            },
            &ana.2,
        ))
        .await
        .expect("complete the session")
        .into_inner()
        .appointment
        .expect("appointment");
    assert_eq!(held.client_attended, Some(true));
    let duplicate = api
        .complete_appointment(bearer(
            pb::CompleteAppointmentRequest {
                appointment_id: session.id.clone(),
                attendance: vec![
                    pb::Attendance {
                        client_id: zoe.clone(),
                        attended: true,
                    },
                    pb::Attendance {
                        client_id: zoe.clone(),
                        attended: false,
                    },
                ],
                etag: String::new(),
            },
            &ana.2,
        ))
        .await
        .expect_err("a client listed twice");
    assert_eq!(violated_fields(&duplicate), vec!["attendance[1].client_id"]);
}

#[tokio::test]
async fn a_weekly_series_keeps_its_local_time_across_daylight_saving_and_books_all_or_nothing() {
    use fitflow_proto::google::r#type::{Date, DayOfWeek};
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let zone = chrono_tz::America::St_Johns;
    let year = chrono::Datelike::year(&Utc::now()) + 1;
    // The first Sunday of March next year, 07:00 in St. John's (UTC-3:30,
    // UTC-2:30 from the second Sunday of March).
    let mut first_day = chrono::NaiveDate::from_ymd_opt(year, 3, 1).expect("date");
    while chrono::Datelike::weekday(&first_day) != chrono::Weekday::Sun {
        first_day += Duration::days(1);
    }
    let first = zone
        .from_local_datetime(&first_day.and_hms_opt(7, 0, 0).expect("time"))
        .single()
        .expect("07:00 exists")
        .with_timezone(&Utc);
    let series = |request_id: String, count: i32| pb::BookSeriesRequest {
        appointment: Some(pb::Appointment {
            class_type_id: group.id.clone(),
            start_time: at(first),
            ..Default::default()
        }),
        time_zone: "America/St_Johns".into(),
        rule: Some(pb::WeeklyRule {
            days: vec![DayOfWeek::Sunday as i32],
            interval_weeks: 1,
            until: None,
            count,
        }),
        request_id,
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let booked = scheduling(&sandbox)
        .book_series(bearer(series(request_id.clone(), 4), &ana.2))
        .await
        .expect("book the series")
        .into_inner();
    let local: Vec<String> = booked
        .appointments
        .iter()
        .map(|a| {
            Utc.timestamp_opt(a.start_time.expect("start").seconds, 0)
                .single()
                .expect("instant")
                .with_timezone(&zone)
                .format("%H:%M")
                .to_string()
        })
        .collect();
    assert_eq!(
        local,
        ["07:00", "07:00", "07:00", "07:00"],
        "07:00 local every week"
    );
    let offsets: Vec<i64> = booked
        .appointments
        .windows(2)
        .map(|pair| pair[1].start_time.expect("b").seconds - pair[0].start_time.expect("a").seconds)
        .collect();
    assert!(
        offsets.contains(&(7 * 86_400 - 3_600)),
        "one week is an hour shorter: {offsets:?}"
    );
    assert!(
        booked
            .appointments
            .iter()
            .all(|a| a.series_id == booked.series_id)
    );

    let retried = scheduling(&sandbox)
        .book_series(bearer(series(request_id, 4), &ana.2))
        .await
        .expect("a retry answers with the same series")
        .into_inner();
    assert_eq!(retried.series_id, booked.series_id);
    assert_eq!(retried.appointments.len(), 4);

    // A longer series over the same Sundays conflicts: nothing more is booked.
    let clash = scheduling(&sandbox)
        .book_series(bearer(series(uuid::Uuid::new_v4().to_string(), 6), &ana.2))
        .await
        .expect_err("overlaps the first series");
    assert_eq!(reason(&clash), "TRAINER_BUSY");
    let week_after = Utc
        .timestamp_opt(booked.appointments[3].start_time.expect("s").seconds, 0)
        .single()
        .expect("instant")
        + Duration::days(7);
    let listed = scheduling(&sandbox)
        .list_appointments(bearer(
            pb::ListAppointmentsRequest {
                start_time: at(first - Duration::days(1)),
                end_time: at(week_after + Duration::days(14)),
                ..Default::default()
            },
            &ana.2,
        ))
        .await
        .expect("list")
        .into_inner()
        .appointments;
    assert_eq!(listed.len(), 4, "all or nothing");

    let wrong_day = scheduling(&sandbox)
        .book_series(bearer(
            pb::BookSeriesRequest {
                rule: Some(pb::WeeklyRule {
                    days: vec![DayOfWeek::Monday as i32],
                    until: Some(Date {
                        year: year + 3,
                        month: 1,
                        day: 1,
                    }),
                    ..Default::default()
                }),
                time_zone: "Mars/Olympus".into(),
                ..series(uuid::Uuid::new_v4().to_string(), 2)
            },
            &ana.2,
        ))
        .await
        .expect_err("a bad rule");
    let fields = violated_fields(&wrong_day);
    assert!(fields.contains(&"time_zone".to_owned()), "{fields:?}");
}

#[tokio::test]
async fn two_hundred_concurrent_hundred_occurrence_series_never_answer_internal_and_others_are_served()
 {
    use fitflow_proto::google::r#type::DayOfWeek;
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let sam = trainer(&sandbox, "Sam").await;
    let short = scheduling(&sandbox)
        .create_class_type(bearer(
            pb::CreateClassTypeRequest {
                class_type: Some(pb::ClassType {
                    name: "Sprint".into(),
                    category: pb::ClassCategory::Group as i32,
                    duration_minutes: 5,
                    max_participants: 10,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &ana.2,
        ))
        .await
        .expect("class type")
        .into_inner()
        .class_type
        .expect("class type");
    let sams = class_type(&sandbox, &sam.2, pb::ClassCategory::Group, 5).await;
    let monday = {
        let mut day = next_year(1, 4, 6);
        while chrono::Datelike::weekday(&day) != chrono::Weekday::Mon {
            day += Duration::days(1);
        }
        day
    };
    let sandbox = Arc::new(sandbox);
    let mut tasks = Vec::new();
    for index in 0..200 {
        let (sandbox, token, class_type_id) =
            (Arc::clone(&sandbox), ana.2.clone(), short.id.clone());
        tasks.push(tokio::spawn(async move {
            scheduling(&sandbox)
                .book_series(bearer(
                    pb::BookSeriesRequest {
                        appointment: Some(pb::Appointment {
                            class_type_id,
                            start_time: at(monday + Duration::minutes(5 * index)),
                            ..Default::default()
                        }),
                        time_zone: "UTC".into(),
                        rule: Some(pb::WeeklyRule {
                            days: vec![DayOfWeek::Monday as i32],
                            count: 100,
                            ..Default::default()
                        }),
                        request_id: uuid::Uuid::new_v4().to_string(),
                    },
                    &token,
                ))
                .await
                .map(|_| ())
        }));
    }
    // Another trainer is still answered while the flood runs.
    let other = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        scheduling(&sandbox).get_class_type(bearer(
            pb::GetClassTypeRequest {
                class_type_id: sams.id.clone(),
            },
            &sam.2,
        )),
    )
    .await;
    let (mut booked, mut refusals) = (0, Vec::new());
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => booked += 1,
            Err(status) => {
                assert_ne!(status.code(), Code::Internal, "{status:?}");
                refusals.push(format!("{:?} {}", status.code(), reason(&status)));
            }
        }
    }
    refusals.sort();
    refusals.dedup();
    // No INTERNAL, and the only refusal is the series gate's retryable
    // SCHEDULING_BUSY (4 bookings run at once, 32 wait, the rest are told
    // when to retry): the pool is never starved into DATABASE_UNAVAILABLE.
    assert!(booked > 0, "none booked: {refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|r| r == "ResourceExhausted SCHEDULING_BUSY"),
        "{refusals:?}"
    );
    // Answered, never stalled: served, or at worst the same retryable
    // refusal (admission control per caller is open work).
    let answered = other.expect("another trainer is answered during the flood");
    if let Err(status) = answered {
        assert_eq!(
            (status.code(), reason(&status)),
            (Code::Unavailable, "DATABASE_UNAVAILABLE".to_owned()),
            "{status:?}"
        );
    }
}
