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
const SCHEDULING: &str = "scheduling";
const EVERYONE: &[&str] = &[IDENTITY, TENANCY, CLIENTS, SCHEDULING, AUDIT];

fn scheduling(sandbox: &Sandbox) -> SchedulingServiceClient<Channel> {
    SchedulingServiceClient::new(sandbox.channel(SCHEDULING, "gateway"))
}

fn at(time: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    })
}

async fn class_type(
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

async fn book(
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
async fn client_of(sandbox: &Sandbox, token: &str) -> String {
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
fn next_year(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
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
