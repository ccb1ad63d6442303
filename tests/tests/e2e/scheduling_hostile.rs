//! Scheduling attacked after sessions at studios (issue 11): a studio's
//! session moved to a day no contract covers, a client's notice the mail
//! server keeps deferring, hostile input on the studio RPCs (control
//! characters, instants outside the calendar, forged and foreign page
//! tokens, other studios' owners), and 500 concurrent rosters over a month
//! of sessions while the trainer reads their own. Whatever the input, no
//! RPC answers INTERNAL and nothing is written by a refused request.

use chrono::{Datelike as _, Duration, NaiveDate};
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::scheduling as pb;
use fitflow_proto::types::Province;
use prost_types::Timestamp;
use tonic::Code;

use crate::identity_support::{reason, violated_fields};
use crate::scheduling::{EVERYONE, at, cad, class_type, client_of, next_year, scheduling};
use crate::scheduling_floods::{Bystander, flood_beside};
use crate::scheduling_mail::{MAIL_WAIT, book_with, client, email, notifications};
use crate::scheduling_series::{get, update};
use crate::scheduling_studios::{
    book_at, contract, named_client, policy_of, roster, roster_request, set_policy_of, vancouver,
    vancouver_studio, vancouver_today,
};
use crate::tenancy::{member, trainer};

/// `day`'s weekday as `google.type.DayOfWeek` counts it (Monday = 1).
fn weekday(day: NaiveDate) -> i32 {
    i32::try_from(day.weekday().number_from_monday()).expect("a weekday")
}

/// A series at the studio of `count` sessions of `class_type_id` for
/// `client_id`, from `first` at `hour`:00 Vancouver time, on `days`.
#[allow(clippy::too_many_arguments)]
async fn series_at(
    sandbox: &Sandbox,
    token: &str,
    (class_type_id, client_id, studio_id): (&str, &str, &str),
    first: NaiveDate,
    hour: u32,
    days: Vec<i32>,
    count: i32,
) -> Result<pb::BookSeriesResponse, tonic::Status> {
    scheduling(sandbox)
        .book_series(bearer(
            pb::BookSeriesRequest {
                appointment: Some(pb::Appointment {
                    class_type_id: class_type_id.into(),
                    start_time: at(vancouver(first, hour, 0)),
                    client_id: client_id.into(),
                    studio_id: studio_id.into(),
                    ..Default::default()
                }),
                time_zone: "America/Vancouver".into(),
                rule: Some(pb::WeeklyRule {
                    days,
                    interval_weeks: 1,
                    count,
                    ..Default::default()
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_session_at_a_studio_is_never_moved_to_a_day_no_contract_covers() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    let last_day = vancouver_today() + Duration::days(60);
    contract(
        &sandbox,
        &owner_token,
        &trainer_token,
        &studio.id,
        &trainer_email,
        Some(last_day),
    )
    .await;
    let session = class_type(&sandbox, &trainer_token, pb::ClassCategory::Individual, 1).await;
    let client = client_of(&sandbox, &trainer_token).await;
    let booked = book_at(
        &sandbox,
        &trainer_token,
        &session.id,
        vancouver(last_day - Duration::days(10), 9, 0),
        &client,
        &studio.id,
    )
    .await
    .expect("a session inside the contract");

    let mut past_the_end = booked.clone();
    past_the_end.start_time = at(vancouver(last_day + Duration::days(1), 9, 0));
    let refused = update(
        &sandbox,
        &trainer_token,
        past_the_end,
        &["start_time"],
        pb::SeriesScope::This,
    )
    .await
    .expect_err("moved to the day after the contract");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "NO_STUDIO_CONTRACT");
    assert_eq!(
        get(&sandbox, &trainer_token, &booked.id).await.start_time,
        booked.start_time,
        "nothing moved"
    );
    // 22:30 in Vancouver on the last day is the next day in UTC: the
    // studio's zone dates it, so the contract still covers it.
    let mut last_evening = booked.clone();
    last_evening.start_time = at(vancouver(last_day, 22, 30));
    let moved = update(
        &sandbox,
        &trainer_token,
        last_evening.clone(),
        &["start_time"],
        pb::SeriesScope::This,
    )
    .await
    .expect("moved to the contract's last evening");
    assert_eq!(
        moved.appointment.expect("appointment").start_time,
        last_evening.start_time
    );

    // Three weekly sessions inside the contract; shifting them a week
    // later pushes the last one past it, so none moves.
    let first = last_day - Duration::days(20);
    let series = series_at(
        &sandbox,
        &trainer_token,
        (&session.id, &client, &studio.id),
        first,
        7,
        vec![weekday(first)],
        3,
    )
    .await
    .expect("three weeks inside the contract");
    let mut shifted = series.appointments[0].clone();
    shifted.start_time = at(vancouver(first + Duration::days(7), 7, 0));
    let refused = update(
        &sandbox,
        &trainer_token,
        shifted,
        &["start_time"],
        pb::SeriesScope::ThisAndFollowing,
    )
    .await
    .expect_err("the last occurrence would fall after the contract");
    assert_eq!(reason(&refused), "NO_STUDIO_CONTRACT");
    assert!(
        refused
            .message()
            .contains(&(last_day + Duration::days(1)).to_string()),
        "the refusal names the date: {}",
        refused.message()
    );
    for occurrence in &series.appointments {
        assert_eq!(
            get(&sandbox, &trainer_token, &occurrence.id)
                .await
                .start_time,
            occurrence.start_time,
            "nothing of the series moved"
        );
    }
}

#[tokio::test]
async fn a_notice_the_mail_server_keeps_deferring_does_not_hold_back_the_ones_behind_it() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let deferred_address = format!(
        "{}{}@example.ca",
        fitflow_testkit::GREYLISTED,
        uuid::Uuid::new_v4()
    );
    let deferred = client(&sandbox, &ana.2, &deferred_address, Province::On).await;
    let address = email();
    let zoe = client(&sandbox, &ana.2, &address, Province::On).await;
    let individual = class_type(&sandbox, &ana.2, pb::ClassCategory::Individual, 1).await;
    let poisoned = book_with(
        &sandbox,
        &ana.2,
        &individual.id,
        next_year(5, 3, 15),
        &deferred,
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("book the client whose mail is deferred");
    // Once it has failed, it heads the queue.
    fitflow_testkit::eventually("the deferred notice was tried", MAIL_WAIT, async || {
        notifications(&sandbox, &poisoned.id)
            .await
            .iter()
            .any(|(_, _, _, _, attempts)| *attempts >= 1)
    })
    .await;
    let behind = book_with(
        &sandbox,
        &ana.2,
        &individual.id,
        next_year(5, 4, 15),
        &zoe,
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("book a client whose mail goes through");
    sandbox
        .mail
        .wait_for(&address, 1, MAIL_WAIT)
        .await
        .first()
        .expect("the notice behind the deferred one was mailed");
    // The relay settles a notice after the mail server took it: wait for
    // the state, not only the mail.
    fitflow_testkit::eventually(
        "the notice behind was settled sent",
        MAIL_WAIT,
        async || {
            notifications(&sandbox, &behind.id)
                .await
                .first()
                .is_some_and(|(_, _, state, _, _)| state == "sent")
        },
    )
    .await;
    let still = notifications(&sandbox, &poisoned.id).await;
    assert_eq!(still[0].2, "pending", "retried on its own: {still:?}");
    assert!(sandbox.mail.received_by(&deferred_address).is_empty());
}

/// Instants outside what a Timestamp may name, or malformed.
fn bad_instants() -> Vec<Timestamp> {
    vec![
        Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        },
        Timestamp {
            seconds: i64::MIN,
            nanos: 0,
        },
        // Year 0 and year 10000.
        Timestamp {
            seconds: -62_167_219_200,
            nanos: 0,
        },
        Timestamp {
            seconds: 253_402_300_800,
            nanos: 0,
        },
        Timestamp {
            seconds: 1_900_000_000,
            nanos: -1,
        },
        Timestamp {
            seconds: 1_900_000_000,
            nanos: 1_000_000_000,
        },
    ]
}

/// Strings no id, token or etag may hold.
const HOSTILE_TEXT: &[&str] = &[
    "\u{0}",
    "6f1c2d1e-0000-4000-8000-00000000000\u{0}",
    "\u{1b}[31m",
    "line\r\nbreak",
    "\u{202e}",
    "\u{7f}",
];

#[tokio::test]
async fn the_studio_rpcs_refuse_control_characters_bad_instants_and_foreign_tokens_and_leak_nothing()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, owner_email, owner_token) = member(&sandbox, "Olivia").await;
    let (_, rival_email, rival_token) = member(&sandbox, "Rita").await;
    let studio = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    let rival_studio = vancouver_studio(&sandbox, &rival_token, "Studio Rival").await;
    contract(
        &sandbox,
        &owner_token,
        &trainer_token,
        &studio.id,
        &trainer_email,
        None,
    )
    .await;
    let individual = class_type(&sandbox, &trainer_token, pb::ClassCategory::Individual, 1).await;
    let zoe = named_client(&sandbox, &trainer_token, "Zoé", "Roy").await;
    let day = vancouver_today() + Duration::days(3);
    for hour in [8, 10] {
        book_at(
            &sandbox,
            &trainer_token,
            &individual.id,
            vancouver(day, hour, 0),
            &zoe,
            &studio.id,
        )
        .await
        .expect("a session at the studio");
    }
    sandbox.structure_settled().await;
    let owner_token = sandbox.login(&owner_email).await.access_token;
    let rival_token = sandbox.login(&rival_email).await.access_token;
    let from = vancouver(day, 0, 0);

    // Control characters in the studio id and the page token.
    for text in HOSTILE_TEXT {
        let mut request = roster_request(&studio.id, from);
        request.studio_id = (*text).into();
        let refused = roster(&sandbox, &owner_token, request)
            .await
            .expect_err("a hostile studio id");
        assert_eq!(violated_fields(&refused), ["studio_id"], "{text:?}");
        let mut request = roster_request(&studio.id, from);
        request.page_token = (*text).into();
        let refused = roster(&sandbox, &owner_token, request)
            .await
            .expect_err("a hostile page token");
        assert_eq!(violated_fields(&refused), ["page_token"], "{text:?}");
        let refused = set_policy_of(&sandbox, &owner_token, text, 24, "10", "10")
            .await
            .expect_err("a hostile policy studio id");
        assert_eq!(violated_fields(&refused), ["policy.studio_id"], "{text:?}");
        let refused = policy_of(&sandbox, &owner_token, text)
            .await
            .expect_err("a hostile studio id read");
        assert_eq!(violated_fields(&refused), ["studio_id"], "{text:?}");
        let refused = book_at(
            &sandbox,
            &trainer_token,
            &individual.id,
            vancouver(day, 14, 0),
            &zoe,
            text,
        )
        .await
        .expect_err("a hostile booking studio id");
        assert_eq!(
            violated_fields(&refused),
            ["appointment.studio_id"],
            "{text:?}"
        );
    }
    // Instants outside the calendar or malformed, at either end.
    for instant in bad_instants() {
        let mut request = roster_request(&studio.id, from);
        request.start_time = Some(instant);
        let refused = roster(&sandbox, &owner_token, request)
            .await
            .expect_err("a bad start");
        assert_eq!(refused.code(), Code::InvalidArgument, "{instant:?}");
        assert!(
            violated_fields(&refused).contains(&"start_time".to_owned()),
            "{instant:?}: {refused:?}"
        );
        let mut request = roster_request(&studio.id, from);
        request.end_time = Some(instant);
        let refused = roster(&sandbox, &owner_token, request)
            .await
            .expect_err("a bad end");
        assert_eq!(violated_fields(&refused), ["end_time"], "{instant:?}");
        let refused = scheduling(&sandbox)
            .book_appointment(bearer(
                pb::BookAppointmentRequest {
                    appointment: Some(pb::Appointment {
                        class_type_id: individual.id.clone(),
                        start_time: Some(instant),
                        client_id: zoe.clone(),
                        studio_id: studio.id.clone(),
                        ..Default::default()
                    }),
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
                &trainer_token,
            ))
            .await
            .expect_err("a booking at a bad instant");
        assert_eq!(refused.code(), Code::InvalidArgument, "{instant:?}");
    }
    // The last hour of the calendar: an hour-long session starting there
    // would end in year 10000, which no Timestamp reader takes.
    let refused = book_at(
        &sandbox,
        &trainer_token,
        &individual.id,
        chrono::DateTime::from_timestamp(253_402_297_200, 0).expect("9999-12-31T23:00Z"),
        &zoe,
        &studio.id,
    )
    .await
    .expect_err("a session ending after the calendar");
    assert_eq!(violated_fields(&refused), ["appointment.start_time"]);
    let mut first_day = roster_request(&studio.id, from);
    first_day.start_time = Some(Timestamp {
        seconds: -62_135_596_800,
        nanos: 0,
    });
    first_day.end_time = Some(Timestamp {
        seconds: -62_135_596_800 + 86_400,
        nanos: 0,
    });
    let empty = roster(&sandbox, &owner_token, first_day)
        .await
        .expect("the first day of the calendar");
    assert!(empty.sessions.is_empty());
    let mut last_day = roster_request(&studio.id, from);
    last_day.start_time = Some(Timestamp {
        seconds: 253_402_300_799 - 86_400,
        nanos: 0,
    });
    last_day.end_time = Some(Timestamp {
        seconds: 253_402_300_799,
        nanos: 999_999_999,
    });
    let empty = roster(&sandbox, &owner_token, last_day)
        .await
        .expect("the last day of the calendar");
    assert!(empty.sessions.is_empty());

    // Page tokens: forged, truncated, of another filter or another caller.
    let mut first = roster_request(&studio.id, from);
    first.page_size = 1;
    let page = roster(&sandbox, &owner_token, first.clone())
        .await
        .expect("page one");
    assert!(!page.next_page_token.is_empty());
    let token = page.next_page_token;
    let mut flipped = token.clone().into_bytes();
    flipped[token.len() / 2] = if flipped[token.len() / 2] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let forged = [
        token[..token.len() / 2].to_owned(),
        String::from_utf8(flipped).expect("ascii"),
        format!("{token}{token}"),
        "A".repeat(4096),
    ];
    for bad in forged {
        let mut next = first.clone();
        next.page_token = bad;
        let refused = roster(&sandbox, &owner_token, next)
            .await
            .expect_err("a forged token");
        assert_eq!(violated_fields(&refused), ["page_token"]);
    }
    let mut other_window = first.clone();
    other_window.page_token = token.clone();
    other_window.end_time = at(from + Duration::days(30));
    let refused = roster(&sandbox, &owner_token, other_window)
        .await
        .expect_err("replayed on another window");
    assert_eq!(violated_fields(&refused), ["page_token"]);
    let mut cancelled_too = first.clone();
    cancelled_too.page_token = token.clone();
    cancelled_too.show_cancelled = true;
    let refused = roster(&sandbox, &owner_token, cancelled_too)
        .await
        .expect_err("replayed with cancelled sessions");
    assert_eq!(violated_fields(&refused), ["page_token"]);
    let mut their_own = roster_request(&rival_studio.id, from);
    their_own.page_size = 1;
    their_own.page_token = token;
    let refused = roster(&sandbox, &rival_token, their_own)
        .await
        .expect_err("another caller's token");
    assert_eq!(violated_fields(&refused), ["page_token"]);

    // Another studio's owner gets the same answer for this studio and for
    // one that does not exist, for the roster and the policy alike.
    let unknown = uuid::Uuid::new_v4().to_string();
    for studio_id in [&studio.id, &unknown] {
        let refused = roster(&sandbox, &rival_token, roster_request(studio_id, from))
            .await
            .expect_err("not their studio");
        assert_eq!(
            (refused.code(), reason(&refused)),
            (Code::PermissionDenied, "STUDIO_NOT_MANAGED".to_owned())
        );
        let refused = set_policy_of(&sandbox, &rival_token, studio_id, 48, "99", "99")
            .await
            .expect_err("not their studio's policy");
        assert_eq!(
            (refused.code(), reason(&refused)),
            (Code::PermissionDenied, "STUDIO_NOT_MANAGED".to_owned())
        );
    }
    let refused = policy_of(&sandbox, &rival_token, &studio.id)
        .await
        .expect_err("nothing was set by anyone");
    assert_eq!(reason(&refused), "NO_STUDIO_POLICY");
    // A studio owner is no trainer: their own policy and appointments are
    // nobody's, and the trainer's are out of reach.
    let refused = scheduling(&sandbox)
        .set_cancellation_policy(bearer(
            pb::SetCancellationPolicyRequest {
                policy: Some(pb::CancellationPolicy {
                    trainer_id: trainer_email.clone(),
                    late_cancel_hours: 1,
                    late_cancel_fee: cad("1"),
                    no_show_fee: cad("1"),
                    ..Default::default()
                }),
            },
            &owner_token,
        ))
        .await
        .expect_err("an email is no trainer id");
    assert_eq!(violated_fields(&refused), ["policy.trainer_id"]);
}

#[tokio::test]
async fn five_hundred_concurrent_rosters_of_a_busy_month_are_served_or_refused_for_load_and_the_trainer_is_served()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, owner_email, owner_token) = member(&sandbox, "Olivia").await;
    let studio = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    contract(
        &sandbox,
        &owner_token,
        &trainer_token,
        &studio.id,
        &trainer_email,
        None,
    )
    .await;
    let individual = class_type(&sandbox, &trainer_token, pb::ClassCategory::Individual, 1).await;
    // Ten clients, each seen daily for a month at their own hour: 310
    // sessions, every page of 100 naming all ten.
    let first = vancouver_today() + Duration::days(1);
    let mut one_of_them = None;
    for index in 0..10_u32 {
        let client = named_client(&sandbox, &trainer_token, "Client", &format!("N{index}")).await;
        let booked = series_at(
            &sandbox,
            &trainer_token,
            (&individual.id, &client, &studio.id),
            first,
            6 + index,
            (1..=7).collect(),
            31,
        )
        .await
        .expect("a month of daily sessions");
        one_of_them.get_or_insert((
            booked.appointments[0].id.clone(),
            booked.appointments[0].start_time,
        ));
    }
    sandbox.structure_settled().await;
    let owner_token = sandbox.login(&owner_email).await.access_token;
    let from = vancouver(first, 0, 0);
    let (appointment_id, start) = one_of_them.expect("a session");
    let start = start.expect("a start");
    let start = chrono::DateTime::from_timestamp(start.seconds, 0).expect("an instant");
    let class_type_id = individual.id.clone();
    let bystander = Bystander {
        token: &trainer_token,
        class_type_id: &class_type_id,
        appointment: Some((&appointment_id, start)),
    };
    let request = {
        let mut request = roster_request(&studio.id, from);
        request.page_size = 100;
        request
    };
    let outcome = flood_beside(&sandbox, bystander, 500, |mut api| {
        let request = request.clone();
        let token = owner_token.clone();
        async move {
            let page = api
                .list_studio_roster(bearer(request, &token))
                .await?
                .into_inner();
            assert_eq!(page.sessions.len(), 100, "a full page");
            Ok(())
        }
    })
    .await;
    outcome.assert_answered_as(&[]);
}

/// The ids a probe aims at: a trainer's, or ones that exist nowhere.
struct Target {
    trainer: String,
    appointment: String,
    class: String,
    class_type: String,
    rule: String,
    exception: String,
    client: String,
}

impl Target {
    fn nowhere() -> Self {
        let new = || uuid::Uuid::new_v4().to_string();
        Self {
            trainer: new(),
            appointment: new(),
            class: new(),
            class_type: new(),
            rule: new(),
            exception: new(),
            client: new(),
        }
    }

    fn ids(&self) -> [&str; 7] {
        [
            &self.trainer,
            &self.appointment,
            &self.class,
            &self.class_type,
            &self.rule,
            &self.exception,
            &self.client,
        ]
    }
}

/// How a call was answered: its code and reason, and for an answer
/// whether it named any of the target's ids.
type Answer = (&'static str, Code, String, bool);

fn answer<T: std::fmt::Debug>(
    rpc: &'static str,
    target: &Target,
    result: Result<tonic::Response<T>, tonic::Status>,
) -> Answer {
    match result {
        Ok(response) => {
            let shown = format!("{:?}", response.get_ref());
            let leaks = target.ids().iter().any(|id| shown.contains(id));
            (rpc, Code::Ok, String::new(), leaks)
        }
        Err(status) => (rpc, status.code(), reason(&status), false),
    }
}

/// Every trainer-facing scheduling RPC aimed at `target`'s ids with `token`.
async fn probe(sandbox: &Sandbox, token: &str, target: &Target) -> Vec<Answer> {
    let mut api = scheduling(sandbox);
    let week = next_year(3, 1, 9);
    let mut answers = Vec::new();
    let appointment_id = || target.appointment.clone();
    answers.push(answer(
        "GetAppointment",
        target,
        api.get_appointment(bearer(
            pb::GetAppointmentRequest {
                appointment_id: appointment_id(),
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "CancelAppointment",
        target,
        api.cancel_appointment(bearer(
            pb::CancelAppointmentRequest {
                appointment_id: appointment_id(),
                reason: "mine now".into(),
                ..Default::default()
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "UpdateAppointment",
        target,
        api.update_appointment(bearer(
            pb::UpdateAppointmentRequest {
                appointment: Some(pb::Appointment {
                    id: appointment_id(),
                    start_time: at(week + Duration::hours(3)),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["start_time".into()],
                }),
                etag: "\"x\"".into(),
                scope: pb::SeriesScope::This as i32,
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "CompleteAppointment",
        target,
        api.complete_appointment(bearer(
            pb::CompleteAppointmentRequest {
                appointment_id: appointment_id(),
                ..Default::default()
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "MarkNoShow",
        target,
        api.mark_no_show(bearer(
            pb::MarkNoShowRequest {
                appointment_id: appointment_id(),
                etag: String::new(),
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "WaiveFee",
        target,
        api.waive_fee(bearer(
            pb::WaiveFeeRequest {
                appointment_id: appointment_id(),
                reason: "goodwill".into(),
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "JoinClass",
        target,
        api.join_class(bearer(
            pb::JoinClassRequest {
                appointment_id: target.class.clone(),
                client_id: target.client.clone(),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "LeaveClass",
        target,
        api.leave_class(bearer(
            pb::LeaveClassRequest {
                appointment_id: target.class.clone(),
                client_id: target.client.clone(),
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "ListParticipants",
        target,
        api.list_participants(bearer(
            pb::ListParticipantsRequest {
                appointment_id: target.class.clone(),
                show_cancelled: true,
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "GetClassType",
        target,
        api.get_class_type(bearer(
            pb::GetClassTypeRequest {
                class_type_id: target.class_type.clone(),
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "ListClassTypes",
        target,
        api.list_class_types(bearer(
            pb::ListClassTypesRequest {
                trainer_id: target.trainer.clone(),
                ..Default::default()
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "BookAppointment",
        target,
        api.book_appointment(bearer(
            pb::BookAppointmentRequest {
                appointment: Some(pb::Appointment {
                    class_type_id: target.class_type.clone(),
                    start_time: at(week + Duration::hours(5)),
                    client_id: target.client.clone(),
                    ..Default::default()
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "ListAppointments",
        target,
        api.list_appointments(bearer(
            pb::ListAppointmentsRequest {
                trainer_id: target.trainer.clone(),
                start_time: at(week - Duration::days(1)),
                end_time: at(week + Duration::days(7)),
                ..Default::default()
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "GetCancellationPolicy",
        target,
        api.get_cancellation_policy(bearer(
            pb::GetCancellationPolicyRequest {
                trainer_id: target.trainer.clone(),
                studio_id: String::new(),
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "SetCancellationPolicy",
        target,
        api.set_cancellation_policy(bearer(
            pb::SetCancellationPolicyRequest {
                policy: Some(pb::CancellationPolicy {
                    trainer_id: target.trainer.clone(),
                    late_cancel_hours: 168,
                    late_cancel_fee: cad("999"),
                    no_show_fee: cad("999"),
                    ..Default::default()
                }),
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "ListAvailabilityRules",
        target,
        api.list_availability_rules(bearer(
            pb::ListAvailabilityRulesRequest {
                trainer_id: target.trainer.clone(),
                ..Default::default()
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "DeleteAvailabilityRule",
        target,
        api.delete_availability_rule(bearer(
            pb::DeleteAvailabilityRuleRequest {
                rule_id: target.rule.clone(),
                etag: String::new(),
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "EndAvailabilityRule",
        target,
        api.end_availability_rule(bearer(
            pb::EndAvailabilityRuleRequest {
                rule_id: target.rule.clone(),
                effective_until: crate::scheduling_slots::date(week.date_naive()),
                etag: "\"x\"".into(),
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "ListAvailabilityExceptions",
        target,
        api.list_availability_exceptions(bearer(
            pb::ListAvailabilityExceptionsRequest {
                trainer_id: target.trainer.clone(),
                ..Default::default()
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "DeleteAvailabilityException",
        target,
        api.delete_availability_exception(bearer(
            pb::DeleteAvailabilityExceptionRequest {
                exception_id: target.exception.clone(),
                etag: String::new(),
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "ListFreeSlots",
        target,
        api.list_free_slots(bearer(
            pb::ListFreeSlotsRequest {
                trainer_id: target.trainer.clone(),
                class_type_id: target.class_type.clone(),
                start_time: at(week),
                end_time: at(week + Duration::days(7)),
                buffer_minutes: 0,
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "GetSchedulingSettings",
        target,
        api.get_scheduling_settings(bearer(
            pb::GetSchedulingSettingsRequest {
                trainer_id: target.trainer.clone(),
            },
            token,
        ))
        .await,
    ));
    answers.push(answer(
        "UpdateSchedulingSettings",
        target,
        api.update_scheduling_settings(bearer(
            pb::UpdateSchedulingSettingsRequest {
                settings: Some(pb::SchedulingSettings {
                    trainer_id: target.trainer.clone(),
                    default_buffer_minutes: 240,
                    ..Default::default()
                }),
                update_mask: None,
            },
            token,
        ))
        .await,
    ));
    let export = api
        .export_trainer_calendar(bearer(
            pb::ExportTrainerCalendarRequest {
                trainer_id: target.trainer.clone(),
                start_time: at(week - Duration::days(1)),
                end_time: at(week + Duration::days(7)),
            },
            token,
        ))
        .await;
    let first_chunk = match export {
        Ok(stream) => stream
            .into_inner()
            .message()
            .await
            .map(|chunk| tonic::Response::new(chunk.map(|chunk| chunk.data.len()))),
        Err(status) => Err(status),
    };
    answers.push(answer("ExportTrainerCalendar", target, first_chunk));
    answers
}

#[tokio::test]
async fn another_trainer_and_a_studio_owner_get_the_same_refusals_for_a_trainers_ids_as_for_ids_that_exist_nowhere()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (ana_id, _, ana_token) = trainer(&sandbox, "Ana").await;
    let (_, _, mallory_token) = trainer(&sandbox, "Mallory").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    vancouver_studio(&sandbox, &owner_token, "Studio Olivia").await;
    let individual = class_type(&sandbox, &ana_token, pb::ClassCategory::Individual, 1).await;
    let group = class_type(&sandbox, &ana_token, pb::ClassCategory::Group, 5).await;
    let client = client_of(&sandbox, &ana_token).await;
    let start = next_year(3, 2, 15);
    let appointment = crate::scheduling::book(&sandbox, &ana_token, &individual.id, start, &client)
        .await
        .expect("Ana's session");
    let class = crate::scheduling::book(
        &sandbox,
        &ana_token,
        &group.id,
        start + Duration::hours(2),
        "",
    )
    .await
    .expect("Ana's class");
    crate::scheduling::join(&sandbox, &ana_token, &class.id, &client)
        .await
        .expect("the client joins");
    let rule = crate::scheduling_slots::create_rule(
        &sandbox,
        &ana_token,
        crate::scheduling_slots::rule(
            fitflow_proto::google::r#type::DayOfWeek::Monday,
            (9, 0),
            (17, 0),
            vancouver_today(),
            None,
        ),
    )
    .await
    .expect("Ana's rule");
    let exception = crate::scheduling_slots::create_exception(
        &sandbox,
        &ana_token,
        pb::AvailabilityException {
            kind: pb::AvailabilityExceptionKind::TimeOff as i32,
            start_date: crate::scheduling_slots::date(start.date_naive()),
            end_date: crate::scheduling_slots::date(start.date_naive()),
            ..Default::default()
        },
    )
    .await;
    let victim = Target {
        trainer: ana_id,
        appointment: appointment.id.clone(),
        class: class.id.clone(),
        class_type: individual.id.clone(),
        rule: rule.id.clone(),
        exception: exception.id.clone(),
        client: client.clone(),
    };
    sandbox.structure_settled().await;
    for (who, token) in [
        ("another trainer", &mallory_token),
        ("a studio owner", &owner_token),
    ] {
        let aimed = probe(&sandbox, token, &victim).await;
        let blind = probe(&sandbox, token, &Target::nowhere()).await;
        for (at_victim, at_nothing) in aimed.iter().zip(&blind) {
            assert_eq!(at_victim, at_nothing, "{who}: a victim's ids vs none");
            let (rpc, code, _, leaks) = at_victim;
            assert!(!leaks, "{who}: {rpc} named the victim");
            assert_ne!(*code, Code::Internal, "{who}: {rpc}");
        }
    }
    // Nothing of Ana's changed.
    let after = get(&sandbox, &ana_token, &appointment.id).await;
    assert_eq!(after.etag, appointment.etag);
    let policy = scheduling(&sandbox)
        .get_cancellation_policy(bearer(
            pb::GetCancellationPolicyRequest::default(),
            &ana_token,
        ))
        .await
        .expect("Ana's policy")
        .into_inner()
        .policy
        .expect("policy");
    assert_ne!(policy.late_cancel_hours, 168);

    // The internal RPCs answer their peers alone, whatever token is sent.
    let attendance = |peer: &str| {
        let mut api = pb::scheduling_service_client::SchedulingServiceClient::new(
            sandbox.channel(crate::scheduling::SCHEDULING, peer),
        );
        let request = bearer(
            pb::GetAttendanceRequest {
                appointment_id: appointment.id.clone(),
                client_id: client.clone(),
            },
            &ana_token,
        );
        async move { api.get_attendance(request).await }
    };
    for peer in ["gateway", "clients", "tenancy"] {
        let refused = attendance(peer)
            .await
            .expect_err("not an attendance reader");
        assert_eq!(refused.code(), Code::PermissionDenied, "{peer}");
    }
    for peer in ["gateway", "documentation", "billing"] {
        let refused = pb::scheduling_service_client::SchedulingServiceClient::new(
            sandbox.channel(crate::scheduling::SCHEDULING, peer),
        )
        .export_client_appointments(bearer(
            pb::ExportClientAppointmentsRequest {
                client_id: client.clone(),
            },
            &ana_token,
        ))
        .await
        .expect_err("not the clients service");
        assert_eq!(refused.code(), Code::PermissionDenied, "{peer}");
    }
    for peer in ["gateway", "documentation", "clients"] {
        let mut api = pb::scheduling_service_client::SchedulingServiceClient::new(
            sandbox.channel(crate::scheduling::SCHEDULING, peer),
        );
        let refused = api
            .set_payment_status(bearer(
                pb::SetPaymentStatusRequest {
                    appointment_id: appointment.id.clone(),
                    client_id: client.clone(),
                    status: pb::PaymentStatus::Paid as i32,
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
                &ana_token,
            ))
            .await
            .expect_err("not billing");
        assert_eq!(refused.code(), Code::PermissionDenied, "{peer}");
        let refused = api
            .list_billable_appointments(bearer(
                crate::scheduling_billing::next_days(&victim.trainer),
                &ana_token,
            ))
            .await
            .expect_err("not billing");
        assert_eq!(refused.code(), Code::PermissionDenied, "{peer}");
    }
}

/// `text` (RFC 3339) as an instant.
fn instant(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("an instant")
        .with_timezone(&chrono::Utc)
}

/// Not INTERNAL, whatever else.
fn never_internal<T: std::fmt::Debug>(what: &str, result: &Result<T, tonic::Status>) {
    if let Err(status) = result {
        assert_ne!(status.code(), Code::Internal, "{what}: {status:?}");
        assert_ne!(status.code(), Code::Unknown, "{what}: {status:?}");
    }
}

#[tokio::test]
async fn bookings_moves_lists_exports_and_billing_at_the_ends_of_the_calendar_are_answered_never_internal()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (ana_id, _, ana_token) = trainer(&sandbox, "Ana").await;
    let individual = class_type(&sandbox, &ana_token, pb::ClassCategory::Individual, 1).await;
    let client = client_of(&sandbox, &ana_token).await;
    let book = |start: &str| {
        crate::scheduling::book(
            &sandbox,
            &ana_token,
            &individual.id,
            instant(start),
            &client,
        )
    };

    // The last whole hour that ends within the calendar, and the first hour.
    let last = book("9999-12-31T22:00:00Z")
        .await
        .expect("a session ending at 23:00 on 9999-12-31");
    let first = book("0001-01-01T00:00:00Z").await;
    never_internal("a session on 0001-01-01", &first);
    // A series running off the end of the calendar, in the zone furthest
    // ahead (UTC+14), and one from the first day in a zone whose offset
    // then was not a whole number of minutes (local mean time).
    for (start, zone) in [
        ("9999-12-20T10:00:00Z", "Pacific/Kiritimati"),
        ("0001-01-01T12:00:00Z", "America/St_Johns"),
        ("9999-12-30T09:00:00Z", "Etc/GMT+12"),
    ] {
        let series = scheduling(&sandbox)
            .book_series(bearer(
                pb::BookSeriesRequest {
                    appointment: Some(pb::Appointment {
                        class_type_id: individual.id.clone(),
                        start_time: at(instant(start)),
                        client_id: client.clone(),
                        ..Default::default()
                    }),
                    time_zone: zone.into(),
                    rule: Some(pb::WeeklyRule {
                        days: (1..=7).collect(),
                        interval_weeks: 1,
                        count: 31,
                        ..Default::default()
                    }),
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
                &ana_token,
            ))
            .await;
        never_internal(&format!("a series from {start} in {zone}"), &series);
    }
    // Moved to the last hour: it would end in year 10000.
    let mut late = last.clone();
    late.start_time = at(instant("9999-12-31T23:30:00Z"));
    let refused = update(
        &sandbox,
        &ana_token,
        late,
        &["start_time"],
        pb::SeriesScope::This,
    )
    .await
    .expect_err("a move past the calendar");
    assert_eq!(violated_fields(&refused), ["appointment.start_time"]);

    // Lists and exports over the first and last days.
    for (from, to) in [
        ("9999-12-01T00:00:00Z", "9999-12-31T23:59:59Z"),
        ("0001-01-01T00:00:00Z", "0001-02-01T00:00:00Z"),
    ] {
        let listed = scheduling(&sandbox)
            .list_appointments(bearer(
                pb::ListAppointmentsRequest {
                    start_time: at(instant(from)),
                    end_time: at(instant(to)),
                    page_size: 100,
                    ..Default::default()
                },
                &ana_token,
            ))
            .await;
        never_internal(&format!("appointments {from}..{to}"), &listed);
        let exported = crate::scheduling_calendar::export(
            &sandbox,
            &ana_token,
            "",
            instant(from),
            instant(to),
        )
        .await;
        never_internal(&format!("export {from}..{to}"), &exported);
    }
    let december = scheduling(&sandbox)
        .list_appointments(bearer(
            pb::ListAppointmentsRequest {
                start_time: at(instant("9999-12-01T00:00:00Z")),
                end_time: at(instant("9999-12-31T23:59:59Z")),
                page_size: 100,
                ..Default::default()
            },
            &ana_token,
        ))
        .await
        .expect("the last month")
        .into_inner();
    assert!(
        december
            .appointments
            .iter()
            .any(|appointment| appointment.id == last.id)
    );
    assert!(
        december.appointments.iter().all(|appointment| appointment
            .end_time
            .is_some_and(|end| end.seconds <= 253_402_300_799)),
        "no session ends after the calendar"
    );
    let (ics, _) = crate::scheduling_calendar::export(
        &sandbox,
        &ana_token,
        "",
        instant("9999-12-01T00:00:00Z"),
        instant("9999-12-31T23:59:59Z"),
    )
    .await
    .expect("the last month's export");
    assert!(String::from_utf8_lossy(&ics).contains("99991231T"));

    // Billing's dates at both ends.
    for (start, end) in [
        (
            NaiveDate::from_ymd_opt(9999, 12, 1),
            NaiveDate::from_ymd_opt(9999, 12, 31),
        ),
        (
            NaiveDate::from_ymd_opt(1, 1, 1),
            NaiveDate::from_ymd_opt(1, 1, 31),
        ),
    ] {
        let (start, end) = (start.expect("date"), end.expect("date"));
        let billable = crate::scheduling_billing::as_billing(&sandbox)
            .list_billable_appointments(bearer(
                pb::ListBillableAppointmentsRequest {
                    trainer_id: ana_id.clone(),
                    start_date: crate::scheduling_billing::date(start),
                    end_date: crate::scheduling_billing::date(end),
                    page_size: 0,
                    page_token: String::new(),
                },
                &ana_token,
            ))
            .await;
        never_internal(&format!("billable {start}..{end}"), &billable);
    }
    // Cancelling the last session works out its late-cancel window.
    let cancelled = scheduling(&sandbox)
        .cancel_appointment(bearer(
            pb::CancelAppointmentRequest {
                appointment_id: last.id.clone(),
                reason: "the end of time".into(),
                etag: String::new(),
                ..Default::default()
            },
            &ana_token,
        ))
        .await;
    never_internal("cancel the last session", &cancelled);
}

/// Control characters no single-line field and no free text may hold.
const CONTROL: &[&str] = &["\u{0}", "a\u{1b}[31m", "\u{7f}", "x\u{85}y"];

/// INVALID_ARGUMENT naming `field`.
fn refused_on<T: std::fmt::Debug>(
    what: &str,
    field: &str,
    result: Result<tonic::Response<T>, tonic::Status>,
) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    assert!(
        violated_fields(&status).iter().any(|found| found == field),
        "{what}: {field} not in {:?}",
        violated_fields(&status)
    );
}

#[tokio::test]
async fn control_characters_in_reasons_etags_zones_ids_and_tokens_of_every_rpc_are_refused_by_field_and_write_nothing()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, ana_token) = trainer(&sandbox, "Ana").await;
    let individual = class_type(&sandbox, &ana_token, pb::ClassCategory::Individual, 1).await;
    let group = class_type(&sandbox, &ana_token, pb::ClassCategory::Group, 5).await;
    let client = client_of(&sandbox, &ana_token).await;
    let start = next_year(4, 6, 15);
    let appointment = crate::scheduling::book(&sandbox, &ana_token, &individual.id, start, &client)
        .await
        .expect("a session");
    let class = crate::scheduling::book(
        &sandbox,
        &ana_token,
        &group.id,
        start + Duration::hours(2),
        "",
    )
    .await
    .expect("a class");
    let rule = crate::scheduling_slots::create_rule(
        &sandbox,
        &ana_token,
        crate::scheduling_slots::rule(
            fitflow_proto::google::r#type::DayOfWeek::Tuesday,
            (9, 0),
            (12, 0),
            vancouver_today(),
            None,
        ),
    )
    .await
    .expect("a rule");
    let peer = |name: &str| {
        pb::scheduling_service_client::SchedulingServiceClient::new(
            sandbox.channel(crate::scheduling::SCHEDULING, name),
        )
    };
    let mut api = scheduling(&sandbox);
    for text in CONTROL {
        let text = (*text).to_owned();
        let what = |rpc: &str| format!("{rpc} with {text:?}");
        refused_on(
            &what("CancelAppointment.reason"),
            "reason",
            api.cancel_appointment(bearer(
                pb::CancelAppointmentRequest {
                    appointment_id: appointment.id.clone(),
                    reason: text.clone(),
                    ..Default::default()
                },
                &ana_token,
            ))
            .await,
        );
        refused_on(
            &what("CancelAppointment.etag"),
            "etag",
            api.cancel_appointment(bearer(
                pb::CancelAppointmentRequest {
                    appointment_id: appointment.id.clone(),
                    reason: "ill".into(),
                    etag: text.clone(),
                    ..Default::default()
                },
                &ana_token,
            ))
            .await,
        );
        refused_on(
            &what("WaiveFee.reason"),
            "reason",
            api.waive_fee(bearer(
                pb::WaiveFeeRequest {
                    appointment_id: appointment.id.clone(),
                    reason: text.clone(),
                },
                &ana_token,
            ))
            .await,
        );
        let mut moved = appointment.clone();
        moved.location_details = text.clone();
        refused_on(
            &what("UpdateAppointment.location_details"),
            "appointment.location_details",
            update(
                &sandbox,
                &ana_token,
                moved,
                &["location_details"],
                pb::SeriesScope::This,
            )
            .await
            .map(tonic::Response::new),
        );
        let mut stale = appointment.clone();
        stale.etag = text.clone();
        stale.start_time = at(start + Duration::hours(1));
        refused_on(
            &what("UpdateAppointment.etag"),
            "etag",
            update(
                &sandbox,
                &ana_token,
                stale,
                &["start_time"],
                pb::SeriesScope::This,
            )
            .await
            .map(tonic::Response::new),
        );
        refused_on(
            &what("CompleteAppointment.etag"),
            "etag",
            api.complete_appointment(bearer(
                pb::CompleteAppointmentRequest {
                    appointment_id: appointment.id.clone(),
                    etag: text.clone(),
                    ..Default::default()
                },
                &ana_token,
            ))
            .await,
        );
        refused_on(
            &what("MarkNoShow.etag"),
            "etag",
            api.mark_no_show(bearer(
                pb::MarkNoShowRequest {
                    appointment_id: appointment.id.clone(),
                    etag: text.clone(),
                },
                &ana_token,
            ))
            .await,
        );
        refused_on(
            &what("BookSeries.time_zone"),
            "time_zone",
            api.book_series(bearer(
                pb::BookSeriesRequest {
                    appointment: Some(pb::Appointment {
                        class_type_id: individual.id.clone(),
                        start_time: at(start + Duration::days(1)),
                        client_id: client.clone(),
                        ..Default::default()
                    }),
                    time_zone: format!("America/Toronto{text}"),
                    rule: Some(pb::WeeklyRule {
                        days: vec![1],
                        interval_weeks: 1,
                        count: 2,
                        ..Default::default()
                    }),
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
                &ana_token,
            ))
            .await,
        );
        refused_on(
            &what("JoinClass.client_id"),
            "client_id",
            api.join_class(bearer(
                pb::JoinClassRequest {
                    appointment_id: class.id.clone(),
                    client_id: text.clone(),
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
                &ana_token,
            ))
            .await,
        );
        refused_on(
            &what("JoinClass.request_id"),
            "request_id",
            api.join_class(bearer(
                pb::JoinClassRequest {
                    appointment_id: class.id.clone(),
                    client_id: client.clone(),
                    request_id: text.clone(),
                },
                &ana_token,
            ))
            .await,
        );
        refused_on(
            &what("LeaveClass.appointment_id"),
            "appointment_id",
            api.leave_class(bearer(
                pb::LeaveClassRequest {
                    appointment_id: text.clone(),
                    client_id: client.clone(),
                },
                &ana_token,
            ))
            .await,
        );
        refused_on(
            &what("ListAppointments.page_token"),
            "page_token",
            api.list_appointments(bearer(
                pb::ListAppointmentsRequest {
                    start_time: at(start - Duration::days(1)),
                    end_time: at(start + Duration::days(1)),
                    page_token: text.clone(),
                    ..Default::default()
                },
                &ana_token,
            ))
            .await,
        );
        refused_on(
            &what("ListClassTypes.page_token"),
            "page_token",
            api.list_class_types(bearer(
                pb::ListClassTypesRequest {
                    page_token: text.clone(),
                    ..Default::default()
                },
                &ana_token,
            ))
            .await,
        );
        refused_on(
            &what("GetSchedulingSettings.trainer_id"),
            "trainer_id",
            api.get_scheduling_settings(bearer(
                pb::GetSchedulingSettingsRequest {
                    trainer_id: text.clone(),
                },
                &ana_token,
            ))
            .await,
        );
        refused_on(
            &what("UpdateSchedulingSettings.etag"),
            "settings.etag",
            api.update_scheduling_settings(bearer(
                pb::UpdateSchedulingSettingsRequest {
                    settings: Some(pb::SchedulingSettings {
                        default_buffer_minutes: 30,
                        etag: text.clone(),
                        ..Default::default()
                    }),
                    update_mask: None,
                },
                &ana_token,
            ))
            .await,
        );
        refused_on(
            &what("EndAvailabilityRule.etag"),
            "etag",
            api.end_availability_rule(bearer(
                pb::EndAvailabilityRuleRequest {
                    rule_id: rule.id.clone(),
                    effective_until: crate::scheduling_slots::date(
                        vancouver_today() + Duration::days(30),
                    ),
                    etag: text.clone(),
                },
                &ana_token,
            ))
            .await,
        );
        refused_on(
            &what("GetAttendance.client_id"),
            "client_id",
            peer("documentation")
                .get_attendance(tonic::Request::new(pb::GetAttendanceRequest {
                    appointment_id: appointment.id.clone(),
                    client_id: text.clone(),
                }))
                .await,
        );
        refused_on(
            &what("SetPaymentStatus.request_id"),
            "request_id",
            peer("billing")
                .set_payment_status(tonic::Request::new(pb::SetPaymentStatusRequest {
                    appointment_id: appointment.id.clone(),
                    client_id: client.clone(),
                    status: pb::PaymentStatus::Paid as i32,
                    request_id: text.clone(),
                }))
                .await,
        );
        refused_on(
            &what("ExportClientAppointments.client_id"),
            "client_id",
            peer("clients")
                .export_client_appointments(tonic::Request::new(
                    pb::ExportClientAppointmentsRequest {
                        client_id: text.clone(),
                    },
                ))
                .await,
        );
    }
    // Nothing was written: the session, the class and the rule are as made.
    let after = get(&sandbox, &ana_token, &appointment.id).await;
    assert_eq!(after.etag, appointment.etag);
    assert_eq!(after.status, pb::AppointmentStatus::Scheduled as i32);
    let participants = api
        .list_participants(bearer(
            pb::ListParticipantsRequest {
                appointment_id: class.id.clone(),
                show_cancelled: true,
            },
            &ana_token,
        ))
        .await
        .expect("participants")
        .into_inner()
        .participants;
    assert!(participants.is_empty());
    let settings = api
        .get_scheduling_settings(bearer(
            pb::GetSchedulingSettingsRequest::default(),
            &ana_token,
        ))
        .await
        .expect("settings")
        .into_inner()
        .settings
        .expect("settings");
    assert_eq!(settings.default_buffer_minutes, 0);
}

#[tokio::test]
async fn clients_roster_names_refuses_malformed_or_oversized_id_lists_and_unsigned_callers_even_from_scheduling()
 {
    use fitflow_proto::clients as clients_pb;
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, owner_email, owner_token) = member(&sandbox, "Olivia").await;
    let studio = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    let zoe = named_client(&sandbox, &trainer_token, "Zoé", "Roy").await;
    sandbox.structure_settled().await;
    let owner_token = sandbox.login(&owner_email).await.access_token;
    let mut names = clients_pb::clients_service_client::ClientsServiceClient::new(
        sandbox.channel("clients", crate::scheduling::SCHEDULING),
    );
    let ask = |studio_id: &str, client_ids: Vec<String>| clients_pb::ListRosterNamesRequest {
        studio_id: studio_id.into(),
        client_ids,
    };
    let many: Vec<String> = (0..501).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for (request, field) in [
        (ask(&studio.id, vec![]), "client_ids"),
        (ask(&studio.id, many), "client_ids"),
        (ask(&studio.id, vec!["\u{0}".into()]), "client_ids[0]"),
        (
            ask(&studio.id, vec![zoe.clone(), zoe.clone()]),
            "client_ids[1]",
        ),
        (ask("\u{0}", vec![zoe.clone()]), "studio_id"),
    ] {
        let refused = names
            .list_roster_names(bearer(request, &owner_token))
            .await
            .expect_err("malformed");
        assert_eq!(violated_fields(&refused), [field], "{refused:?}");
    }
    let unsigned = names
        .list_roster_names(tonic::Request::new(ask(&studio.id, vec![zoe.clone()])))
        .await
        .expect_err("no user token");
    assert_eq!(unsigned.code(), Code::Unauthenticated);
    let forged = names
        .list_roster_names(bearer(ask(&studio.id, vec![zoe.clone()]), "not.a.token"))
        .await
        .expect_err("a forged token");
    assert_eq!(forged.code(), Code::Unauthenticated);
}
