//! Recurring series edited as calendar users expect: cancel or change "this
//! one", "this and following" or "all", in one transaction each, with wall
//! time kept across Toronto's daylight-saving changes, double bookings
//! refused whole, stale etags refused, and other trainers, strangers and
//! wrong peers kept out.

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, TimeZone as _, Utc, Weekday};
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::audit::Action;
use fitflow_proto::google::r#type::DayOfWeek;
use fitflow_proto::scheduling as pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::identity_support::{reason, violated_fields};
use crate::scheduling::{
    EVERYONE, SCHEDULING, at, book, cad, class_type, client_of, from_now, join, scheduling,
};
use crate::scheduling_slots::audited_actions;
use crate::tenancy::{member, trainer};

const TORONTO: chrono_tz::Tz = chrono_tz::America::Toronto;

fn instant(appointment: &pb::Appointment) -> DateTime<Utc> {
    let start = appointment.start_time.expect("start");
    Utc.timestamp_opt(start.seconds, 0)
        .single()
        .expect("instant")
}

/// An appointment's local start in Toronto, "YYYY-MM-DD HH:MM".
fn local(appointment: &pb::Appointment) -> String {
    instant(appointment)
        .with_timezone(&TORONTO)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn status(appointment: &pb::Appointment) -> pb::AppointmentStatus {
    pb::AppointmentStatus::try_from(appointment.status).expect("status")
}

/// The first Sunday of March next year (the week before Toronto springs
/// forward) at `hour`:00 Toronto time.
fn early_march_sunday(hour: u32) -> DateTime<Utc> {
    let mut day = NaiveDate::from_ymd_opt(Utc::now().year() + 1, 3, 1).expect("date");
    while day.weekday() != Weekday::Sun {
        day += Duration::days(1);
    }
    TORONTO
        .from_local_datetime(&day.and_hms_opt(hour, 0, 0).expect("time"))
        .single()
        .expect("exists")
        .with_timezone(&Utc)
}

/// Books a weekly series of `count` on the weekday of `first`; `time_zone`
/// empty means the trainer's (Toronto, from tenancy).
async fn weekly(
    sandbox: &Sandbox,
    token: &str,
    appointment: pb::Appointment,
    time_zone: &str,
    count: i32,
) -> pb::BookSeriesResponse {
    let first = appointment.start_time.expect("first");
    let weekday = Utc
        .timestamp_opt(first.seconds, 0)
        .single()
        .expect("instant")
        .with_timezone(&TORONTO)
        .weekday();
    let day = match weekday {
        Weekday::Mon => DayOfWeek::Monday,
        Weekday::Tue => DayOfWeek::Tuesday,
        Weekday::Wed => DayOfWeek::Wednesday,
        Weekday::Thu => DayOfWeek::Thursday,
        Weekday::Fri => DayOfWeek::Friday,
        Weekday::Sat => DayOfWeek::Saturday,
        Weekday::Sun => DayOfWeek::Sunday,
    };
    scheduling(sandbox)
        .book_series(bearer(
            pb::BookSeriesRequest {
                appointment: Some(appointment),
                time_zone: time_zone.into(),
                rule: Some(pb::WeeklyRule {
                    days: vec![day as i32],
                    interval_weeks: 1,
                    until: None,
                    count,
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            token,
        ))
        .await
        .expect("book the series")
        .into_inner()
}

async fn cancel(
    sandbox: &Sandbox,
    token: &str,
    appointment: &pb::Appointment,
    scope: pb::SeriesScope,
) -> Result<pb::CancelAppointmentResponse, tonic::Status> {
    scheduling(sandbox)
        .cancel_appointment(bearer(
            pb::CancelAppointmentRequest {
                appointment_id: appointment.id.clone(),
                reason: "holiday".into(),
                etag: appointment.etag.clone(),
                scope: scope as i32,
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) async fn update(
    sandbox: &Sandbox,
    token: &str,
    appointment: pb::Appointment,
    paths: &[&str],
    scope: pb::SeriesScope,
) -> Result<pb::UpdateAppointmentResponse, tonic::Status> {
    let etag = appointment.etag.clone();
    scheduling(sandbox)
        .update_appointment(bearer(
            pb::UpdateAppointmentRequest {
                appointment: Some(appointment),
                update_mask: Some(FieldMask {
                    paths: paths.iter().map(|path| (*path).to_owned()).collect(),
                }),
                etag,
                scope: scope as i32,
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) async fn get(sandbox: &Sandbox, token: &str, id: &str) -> pb::Appointment {
    scheduling(sandbox)
        .get_appointment(bearer(
            pb::GetAppointmentRequest {
                appointment_id: id.into(),
            },
            token,
        ))
        .await
        .expect("get")
        .into_inner()
        .appointment
        .expect("appointment")
}

/// Every appointment of the series, read again, in start order.
async fn reread(
    sandbox: &Sandbox,
    token: &str,
    series: &[pb::Appointment],
) -> Vec<pb::Appointment> {
    let mut fresh = Vec::new();
    for appointment in series {
        fresh.push(get(sandbox, token, &appointment.id).await);
    }
    fresh
}

fn ids(appointments: &[pb::Appointment]) -> Vec<String> {
    appointments.iter().map(|a| a.id.clone()).collect()
}

#[tokio::test]
async fn cancelling_this_this_and_following_or_all_cancels_what_a_calendar_user_expects() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let client = client_of(&sandbox, &ana.2).await;
    scheduling(&sandbox)
        .set_cancellation_policy(bearer(
            pb::SetCancellationPolicyRequest {
                policy: Some(pb::CancellationPolicy {
                    late_cancel_hours: 24,
                    late_cancel_fee: cad("25"),
                    ..Default::default()
                }),
            },
            &ana.2,
        ))
        .await
        .expect("policy");
    let individual = class_type(&sandbox, &ana.2, pb::ClassCategory::Individual, 1).await;
    let template = |start: DateTime<Utc>| pb::Appointment {
        class_type_id: individual.id.clone(),
        start_time: at(start),
        client_id: client.clone(),
        ..Default::default()
    };
    // Six weekly sessions, the first within the policy's 24 hours.
    let first = from_now(2);
    let series = weekly(&sandbox, &ana.2, template(first), "", 6).await;
    assert_eq!(series.time_zone, "America/Toronto", "the trainer's zone");
    let six = series.appointments;
    assert_eq!(six.len(), 6);

    // THIS: the third only.
    let this = cancel(&sandbox, &ana.2, &six[2], pb::SeriesScope::This)
        .await
        .expect("cancel this one");
    assert_eq!(ids(&this.cancelled_appointments), [six[2].id.as_str()]);

    // THIS_AND_FOLLOWING from the fourth: the fourth, fifth and sixth.
    let fourth = get(&sandbox, &ana.2, &six[3].id).await;
    let following = cancel(&sandbox, &ana.2, &fourth, pb::SeriesScope::ThisAndFollowing)
        .await
        .expect("cancel this and following");
    assert_eq!(ids(&following.cancelled_appointments), ids(&six[3..]));
    assert!(
        following
            .cancelled_appointments
            .iter()
            .all(|a| status(a) == pb::AppointmentStatus::Cancelled
                && !a.late_cancel
                && a.penalty_fee.is_none()),
        "a week or more ahead is in time: {following:?}"
    );

    // ALL, named from the second: the first and second, both still to
    // come; the first is inside the 24 hours and owes the late fee.
    let second = get(&sandbox, &ana.2, &six[1].id).await;
    let all = cancel(&sandbox, &ana.2, &second, pb::SeriesScope::All)
        .await
        .expect("cancel all");
    assert_eq!(ids(&all.cancelled_appointments), ids(&six[..2]));
    let late = &all.cancelled_appointments[0];
    assert!(late.late_cancel);
    assert_eq!(
        late.penalty_fee.as_ref().map(|fee| fee.amount.as_str()),
        Some("25.00")
    );
    assert!(!all.cancelled_appointments[1].late_cancel);
    let now = reread(&sandbox, &ana.2, &six).await;
    assert!(
        now.iter()
            .all(|a| status(a) == pb::AppointmentStatus::Cancelled)
    );

    // Every cancelled occurrence freed its time: the slots book again.
    for appointment in &six {
        book(
            &sandbox,
            &ana.2,
            &individual.id,
            instant(appointment),
            &client,
        )
        .await
        .expect("the time is free again");
    }
    // And each was audited on its own: created, then cancelled (the trail
    // lists newest first).
    for appointment in [&six[0], &six[4]] {
        let actions = audited_actions(
            &sandbox,
            &ana.2,
            &ana.0,
            ("appointments", &appointment.id),
            2,
        )
        .await;
        assert_eq!(
            actions,
            [Action::Update as i32, Action::Create as i32],
            "{}",
            appointment.id
        );
    }
}

#[tokio::test]
async fn all_leaves_held_occurrences_alone_and_a_series_scope_needs_a_series_and_an_etag() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let template = pb::Appointment {
        class_type_id: group.id.clone(),
        start_time: at(from_now(30)),
        ..Default::default()
    };
    let three = weekly(&sandbox, &ana.2, template, "America/Toronto", 3)
        .await
        .appointments;
    let held = scheduling(&sandbox)
        .complete_appointment(bearer(
            pb::CompleteAppointmentRequest {
                appointment_id: three[0].id.clone(),
                attendance: Vec::new(),
                etag: three[0].etag.clone(),
            },
            &ana.2,
        ))
        .await
        .expect("held")
        .into_inner()
        .appointment
        .expect("appointment");

    // A held occurrence cannot be named, and ALL passes it by.
    let refused = cancel(&sandbox, &ana.2, &held, pb::SeriesScope::All)
        .await
        .expect_err("held");
    assert_eq!(reason(&refused), "APPOINTMENT_STATE");
    // Without the etag a series scope is refused before anything is read.
    let no_etag = pb::Appointment {
        etag: String::new(),
        ..three[1].clone()
    };
    let refused = cancel(&sandbox, &ana.2, &no_etag, pb::SeriesScope::All)
        .await
        .expect_err("no etag");
    assert_eq!(violated_fields(&refused), ["etag"]);
    let all = cancel(&sandbox, &ana.2, &three[1], pb::SeriesScope::All)
        .await
        .expect("cancel all");
    assert_eq!(ids(&all.cancelled_appointments), ids(&three[1..]));
    let now = reread(&sandbox, &ana.2, &three).await;
    assert_eq!(status(&now[0]), pb::AppointmentStatus::Completed);

    // An appointment of no series takes no series scope.
    let single = book(&sandbox, &ana.2, &group.id, from_now(60), "")
        .await
        .expect("single");
    for scope in [pb::SeriesScope::ThisAndFollowing, pb::SeriesScope::All] {
        let refused = cancel(&sandbox, &ana.2, &single, scope)
            .await
            .expect_err("no series");
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert_eq!(reason(&refused), "NOT_IN_SERIES");
        let refused = update(
            &sandbox,
            &ana.2,
            pb::Appointment {
                location_details: "Room 2".into(),
                ..single.clone()
            },
            &["location_details"],
            scope,
        )
        .await
        .expect_err("no series");
        assert_eq!(reason(&refused), "NOT_IN_SERIES");
    }
    assert_eq!(
        status(&get(&sandbox, &ana.2, &single.id).await),
        pb::AppointmentStatus::Scheduled
    );
}

#[tokio::test]
async fn a_series_moved_to_eight_stays_at_eight_local_across_both_toronto_changes() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    // Every Sunday at 07:00 from early March to mid-November: both of
    // Toronto's changes fall inside it.
    let first = early_march_sunday(7);
    let booked = weekly(
        &sandbox,
        &ana.2,
        pb::Appointment {
            class_type_id: group.id.clone(),
            start_time: at(first),
            ..Default::default()
        },
        "",
        38,
    )
    .await;
    assert_eq!(booked.time_zone, "America/Toronto");
    let series = booked.appointments;
    assert!(series.iter().all(|a| local(a).ends_with(" 07:00")));
    let dates: Vec<String> = series.iter().map(|a| local(a)[..10].to_owned()).collect();

    // ALL, named from the second Sunday: 08:00 every week.
    let second = series[1].clone();
    let moved = update(
        &sandbox,
        &ana.2,
        pb::Appointment {
            start_time: at(instant(&second) + Duration::hours(1)),
            ..second.clone()
        },
        &["start_time"],
        pb::SeriesScope::All,
    )
    .await
    .expect("move all");
    assert_eq!(moved.appointments.len(), 38);
    let now = reread(&sandbox, &ana.2, &series).await;
    let expected: Vec<String> = dates.iter().map(|date| format!("{date} 08:00")).collect();
    assert_eq!(now.iter().map(local).collect::<Vec<_>>(), expected);
    assert!(now.iter().all(|a| a.series_id == second.series_id));
    // In UTC the week across the spring change (the second Sunday of
    // March) is an hour shorter.
    assert_eq!(
        instant(&now[1]) - instant(&now[0]),
        Duration::days(7) - Duration::hours(1)
    );

    // The stale etag of the first read cannot move it again.
    let stale = update(
        &sandbox,
        &ana.2,
        pb::Appointment {
            start_time: at(instant(&second) + Duration::hours(2)),
            ..second.clone()
        },
        &["start_time"],
        pb::SeriesScope::All,
    )
    .await
    .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    assert_eq!(reason(&stale), "ETAG_MISMATCH");
    assert_eq!(
        reread(&sandbox, &ana.2, &series)
            .await
            .iter()
            .map(local)
            .collect::<Vec<_>>(),
        expected
    );

    // THIS: the sixth Sunday alone moves to 09:30, and stays in the series.
    let sixth = now[5].clone();
    let nine_thirty = update(
        &sandbox,
        &ana.2,
        pb::Appointment {
            start_time: at(instant(&sixth) + Duration::minutes(90)),
            location_type: pb::LocationType::Online as i32,
            ..sixth.clone()
        },
        &["start_time", "location_type"],
        pb::SeriesScope::This,
    )
    .await
    .expect("move this one");
    assert_eq!(ids(&nine_thirty.appointments), [sixth.id.as_str()]);
    let exception = nine_thirty.appointment.expect("appointment");
    assert_eq!(local(&exception), format!("{} 09:30", dates[5]));
    assert_eq!(exception.series_id, sixth.series_id);
    assert_eq!(exception.location_type, pb::LocationType::Online as i32);

    // THIS_AND_FOLLOWING from the 31st (late October): back to 07:00, with
    // a new price; the 30 before keep 08:00.
    let thirty_first = get(&sandbox, &ana.2, &series[30].id).await;
    let back = update(
        &sandbox,
        &ana.2,
        pb::Appointment {
            start_time: at(instant(&thirty_first) - Duration::hours(1)),
            client_price: cad("40"),
            ..thirty_first.clone()
        },
        &[],
        pb::SeriesScope::ThisAndFollowing,
    )
    .await
    .expect("move this and following");
    assert_eq!(back.appointments.len(), 8);
    let now = reread(&sandbox, &ana.2, &series).await;
    for (index, appointment) in now.iter().enumerate() {
        let clock = match index {
            5 => "09:30",
            0..=29 => "08:00",
            _ => "07:00",
        };
        assert_eq!(
            local(appointment),
            format!("{} {clock}", dates[index]),
            "{index}"
        );
        let price = appointment
            .client_price
            .as_ref()
            .map(|price| price.amount.clone());
        if index >= 30 {
            assert_eq!(price.as_deref(), Some("40.00"));
        }
    }
    // The November change (first Sunday of November) lies among the last
    // eight: still 07:00 on both sides.
    assert!(dates[30..].iter().any(|date| date[5..7] == *"11"));

    // Moved occurrences hold their new time and freed the old one.
    let refused = book(
        &sandbox,
        &ana.2,
        &group.id,
        instant(&now[3]) + Duration::minutes(30),
        "",
    )
    .await
    .expect_err("08:00 is held");
    assert_eq!(reason(&refused), "TRAINER_BUSY");
    book(&sandbox, &ana.2, &group.id, instant(&series[3]), "")
        .await
        .expect("07:00 is free again");
    // Created, moved with all, moved alone (the trail lists newest first).
    let actions =
        audited_actions(&sandbox, &ana.2, &ana.0, ("appointments", &series[5].id), 3).await;
    assert_eq!(
        actions,
        [
            Action::Update as i32,
            Action::Update as i32,
            Action::Create as i32
        ]
    );
}

#[tokio::test]
async fn a_move_that_would_double_book_is_refused_whole_and_changes_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let first = early_march_sunday(7);
    let series = weekly(
        &sandbox,
        &ana.2,
        pb::Appointment {
            class_type_id: group.id.clone(),
            start_time: at(first),
            ..Default::default()
        },
        "America/Toronto",
        4,
    )
    .await
    .appointments;
    // Someone else at 08:00 on the third Sunday.
    let in_the_way = book(
        &sandbox,
        &ana.2,
        &group.id,
        instant(&series[2]) + Duration::hours(1),
        "",
    )
    .await
    .expect("booked");
    let refused = update(
        &sandbox,
        &ana.2,
        pb::Appointment {
            start_time: at(instant(&series[0]) + Duration::hours(1)),
            location_details: "Room 9".into(),
            ..series[0].clone()
        },
        &["start_time", "location_details"],
        pb::SeriesScope::All,
    )
    .await
    .expect_err("the third Sunday would overlap");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "TRAINER_BUSY");
    assert!(
        refused.message().contains(&in_the_way.id),
        "{}",
        refused.message()
    );
    // Nothing moved, nothing changed, and every 07:00 is still held.
    let now = reread(&sandbox, &ana.2, &series).await;
    for (before, after) in series.iter().zip(&now) {
        assert_eq!(after.etag, before.etag);
        assert_eq!(local(after), local(before));
        assert_eq!(after.location_details, "");
        let clash = book(
            &sandbox,
            &ana.2,
            &group.id,
            instant(before) + Duration::minutes(30),
            "",
        )
        .await
        .expect_err("still held");
        assert_eq!(reason(&clash), "TRAINER_BUSY");
    }
}

#[tokio::test]
async fn a_moved_group_class_takes_its_participants_and_cancelling_it_promotes_no_one() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let (zoe, leo) = (
        client_of(&sandbox, &ana.2).await,
        client_of(&sandbox, &ana.2).await,
    );
    let small = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 1).await;
    let series = weekly(
        &sandbox,
        &ana.2,
        pb::Appointment {
            class_type_id: small.id.clone(),
            start_time: at(from_now(48)),
            ..Default::default()
        },
        "America/Toronto",
        3,
    )
    .await
    .appointments;
    join(&sandbox, &ana.2, &series[1].id, &zoe)
        .await
        .expect("zoe");
    let waiting = join(&sandbox, &ana.2, &series[1].id, &leo)
        .await
        .expect("leo");
    assert_eq!(waiting.status, pb::ParticipantStatus::Waitlisted as i32);
    let roster = |id: String| {
        let token = ana.2.clone();
        let sandbox = &sandbox;
        async move {
            scheduling(sandbox)
                .list_participants(bearer(
                    pb::ListParticipantsRequest {
                        appointment_id: id,
                        show_cancelled: true,
                    },
                    &token,
                ))
                .await
                .expect("roster")
                .into_inner()
                .participants
                .into_iter()
                .map(|p| (p.client_id, p.status))
                .collect::<Vec<_>>()
        }
    };
    let before = roster(series[1].id.clone()).await;
    let moved = update(
        &sandbox,
        &ana.2,
        pb::Appointment {
            start_time: at(instant(&series[0]) + Duration::hours(2)),
            ..series[0].clone()
        },
        &["start_time"],
        pb::SeriesScope::All,
    )
    .await
    .expect("move all");
    assert_eq!(moved.appointments.len(), 3);
    assert_eq!(
        roster(series[1].id.clone()).await,
        before,
        "the class moved with its roster"
    );
    let second = get(&sandbox, &ana.2, &series[1].id).await;
    assert_eq!(instant(&second), instant(&series[1]) + Duration::hours(2));
    let cancelled = cancel(&sandbox, &ana.2, &second, pb::SeriesScope::ThisAndFollowing)
        .await
        .expect("cancel");
    assert_eq!(cancelled.cancelled_appointments.len(), 2);
    // As a single cancel: the class is off for everyone, no one is promoted.
    assert_eq!(roster(series[1].id.clone()).await, before);
}

#[tokio::test]
async fn another_trainer_a_stranger_and_a_wrong_peer_cannot_cancel_or_move_a_series() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let sam = trainer(&sandbox, "Sam").await;
    let stranger = member(&sandbox, "Stranger").await;
    let group = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let series = weekly(
        &sandbox,
        &ana.2,
        pb::Appointment {
            class_type_id: group.id.clone(),
            start_time: at(from_now(72)),
            ..Default::default()
        },
        "America/Toronto",
        3,
    )
    .await
    .appointments;
    let named = series[0].clone();
    for token in [&sam.2, &stranger.2] {
        for scope in [pb::SeriesScope::This, pb::SeriesScope::All] {
            let refused = cancel(&sandbox, token, &named, scope)
                .await
                .expect_err("not theirs");
            assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
            assert_eq!(reason(&refused), "APPOINTMENT_NOT_FOUND");
            let refused = update(
                &sandbox,
                token,
                pb::Appointment {
                    start_time: at(instant(&named) + Duration::hours(1)),
                    ..named.clone()
                },
                &["start_time"],
                scope,
            )
            .await
            .expect_err("not theirs");
            assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
            assert!(!refused.message().contains(&ana.0));
        }
    }
    // Billing is a FitFlow peer, but not one that edits calendars.
    let refused =
        fitflow_proto::scheduling::scheduling_service_client::SchedulingServiceClient::new(
            sandbox.channel(SCHEDULING, "billing"),
        )
        .update_appointment(bearer(
            pb::UpdateAppointmentRequest {
                appointment: Some(named.clone()),
                update_mask: Some(FieldMask {
                    paths: vec!["location_details".into()],
                }),
                etag: named.etag.clone(),
                scope: pb::SeriesScope::All as i32,
            },
            &ana.2,
        ))
        .await
        .expect_err("wrong peer");
    assert_eq!(refused.code(), Code::PermissionDenied);
    // Nothing changed.
    let now = reread(&sandbox, &ana.2, &series).await;
    for (before, after) in series.iter().zip(&now) {
        assert_eq!(after.etag, before.etag);
        assert_eq!(status(after), pb::AppointmentStatus::Scheduled);
    }
    // Hostile input is refused field by field.
    let refused = scheduling(&sandbox)
        .update_appointment(bearer(
            pb::UpdateAppointmentRequest {
                appointment: Some(pb::Appointment {
                    id: "not-a-uuid".into(),
                    start_time: Some(prost_types::Timestamp {
                        seconds: 30,
                        nanos: 5,
                    }),
                    location_details: "a\u{0}b".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec![
                        "start_time".into(),
                        "location_details".into(),
                        "status".into(),
                    ],
                }),
                etag: String::new(),
                scope: 99,
            },
            &ana.2,
        ))
        .await
        .expect_err("hostile");
    let mut fields = violated_fields(&refused);
    fields.sort();
    fields.dedup();
    assert_eq!(
        fields,
        [
            "appointment.id",
            "appointment.location_details",
            "appointment.start_time",
            "etag",
            "scope",
            "update_mask.paths[2]",
        ]
    );
}
