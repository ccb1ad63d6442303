//! Attacks on availability at studios (issue 11), end to end: rules from
//! year 1 in twenty zones (Chatham's +12:45, Kathmandu's +5:45, St John's
//! -3:30, Lord Howe's half-hour daylight time) and what each create then
//! costs; a hundred concurrent creates by one trainer while another trainer
//! reads and creates; 500 free-slot searches over those zones; hostile
//! strings, instants and dates; a studio deleted or moved to another zone;
//! the replay-first path of bookings (another caller, another body, a
//! hundred racing copies); tenancy down.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, TimeZone as _, Timelike as _, Utc};
use chrono_tz::Tz;
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::google::r#type::{Date, DayOfWeek};
use fitflow_proto::scheduling as pb;
use fitflow_proto::tenancy as tenancy_pb;
use prost_types::Timestamp;
use tonic::Code;

use crate::identity_support::{reason, violated_fields};
use crate::scheduling::{EVERYONE, at, client_of, scheduling};
use crate::scheduling_floods::{Bystander, flood_beside};
use crate::scheduling_slots::{create_rule, rule};
use crate::tenancy::{member, studio_profile, tenancy, trainer};

/// The twenty zones of the studios, in three groups whose hours fall on
/// UTC Monday, Wednesday and Friday; neighbours in a group lie 205 minutes
/// apart, more than any two of these zones' offsets drift against each
/// other over their history (local mean time, daylight saving).
const ZONES: [&[&str]; 3] = [
    &[
        "Pacific/Chatham",
        "Asia/Dubai",
        "America/St_Johns",
        "Asia/Tokyo",
        "Asia/Kathmandu",
        "America/Vancouver",
        "Europe/Paris",
    ],
    &[
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "America/Regina",
        "Europe/London",
        "Australia/Adelaide",
        "Africa/Nairobi",
        "Pacific/Honolulu",
    ],
    &[
        "Pacific/Auckland",
        "America/Sao_Paulo",
        "Asia/Tehran",
        "America/Toronto",
        "Asia/Shanghai",
        "Africa/Cairo",
    ],
];

/// Minutes of each studio rule (and of the class type searched for).
const WINDOW_MINUTES: i64 = 15;

/// The slowest single rule create allowed (unoptimised build, two shared
/// cores): each compares the new rule with up to nineteen open-ended rules
/// from year 1 in other zones.
const CREATE_BOUND: StdDuration = StdDuration::from_secs(3);

/// A studio in `zone`, created by the user whose token this is.
async fn studio_in(sandbox: &Sandbox, token: &str, name: &str, zone: &str) -> tenancy_pb::Studio {
    let mut profile = studio_profile(name, "");
    profile.time_zone = zone.into();
    tenancy(sandbox, "gateway")
        .create_studio(bearer(
            tenancy_pb::CreateStudioRequest {
                studio: Some(profile),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .expect("create studio")
        .into_inner()
        .studio
        .expect("studio")
}

/// A class type of `WINDOW_MINUTES` for one client.
async fn short_class(sandbox: &Sandbox, token: &str) -> pb::ClassType {
    scheduling(sandbox)
        .create_class_type(bearer(
            pb::CreateClassTypeRequest {
                class_type: Some(pb::ClassType {
                    name: "Check-in".into(),
                    category: pb::ClassCategory::Individual as i32,
                    duration_minutes: i32::try_from(WINDOW_MINUTES).expect("minutes"),
                    max_participants: 1,
                    default_rate: crate::scheduling::cad("20"),
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

fn day_of_week(day: chrono::Weekday) -> DayOfWeek {
    match day {
        chrono::Weekday::Mon => DayOfWeek::Monday,
        chrono::Weekday::Tue => DayOfWeek::Tuesday,
        chrono::Weekday::Wed => DayOfWeek::Wednesday,
        chrono::Weekday::Thu => DayOfWeek::Thursday,
        chrono::Weekday::Fri => DayOfWeek::Friday,
        chrono::Weekday::Sat => DayOfWeek::Saturday,
        chrono::Weekday::Sun => DayOfWeek::Sunday,
    }
}

/// The first Monday of next January (UTC).
fn reference_monday() -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(Utc::now().year() + 1, 1, 1).unwrap();
    (0..7)
        .map(|offset| first + Duration::days(offset))
        .find(|day| day.weekday() == chrono::Weekday::Mon)
        .unwrap()
}

/// The rule of the `slot`-th studio of `group`: `WINDOW_MINUTES` of its
/// local wall time that fall, next January, at its place on the group's
/// UTC day — effective from year 1, open-ended.
fn zone_rule(zone: Tz, group: usize, slot: usize, studio_id: &str) -> pb::AvailabilityRule {
    let utc_day = reference_monday() + Duration::days(2 * i64::try_from(group).unwrap());
    let instant = utc_day.and_hms_opt(1, 0, 0).unwrap().and_utc()
        + Duration::minutes(205 * i64::try_from(slot).unwrap());
    let local = instant.with_timezone(&zone);
    // On the quarter-hour grid slots are offered on.
    let start =
        (i64::from(local.hour() * 60 + local.minute()) / 15 * 15).min(1440 - WINDOW_MINUTES);
    let end = start + WINDOW_MINUTES;
    let hm = |minute: i64| {
        (
            i32::try_from(minute / 60).unwrap(),
            i32::try_from(minute % 60).unwrap(),
        )
    };
    let mut hours = rule(
        day_of_week(local.weekday()),
        hm(start),
        hm(end),
        NaiveDate::from_ymd_opt(1, 1, 1).unwrap(),
        None,
    );
    hours.studio_id = studio_id.into();
    hours
}

/// Twenty studios of `owner_token`'s in the twenty zones, and the trainer's
/// open-ended rule from year 1 at each (created one by one, each timed).
async fn rules_in_twenty_zones(
    sandbox: &Sandbox,
    owner_token: &str,
    trainer_token: &str,
) -> Vec<(tenancy_pb::Studio, Tz)> {
    let mut placed = Vec::new();
    let mut slowest = StdDuration::ZERO;
    for (group, zones) in ZONES.iter().enumerate() {
        for (slot, name) in zones.iter().enumerate() {
            let studio = studio_in(sandbox, owner_token, &format!("Studio {name}"), name).await;
            let zone: Tz = name.parse().expect("a zone");
            let started = Instant::now();
            create_rule(
                sandbox,
                trainer_token,
                zone_rule(zone, group, slot, &studio.id),
            )
            .await
            .unwrap_or_else(|status| panic!("the rule at {name}: {status:?}"));
            slowest = slowest.max(started.elapsed());
            placed.push((studio, zone));
        }
    }
    assert!(
        slowest < CREATE_BOUND,
        "a create took {slowest:?} against rules from year 1"
    );
    placed
}

#[tokio::test]
async fn rules_from_year_one_in_twenty_zones_are_checked_quickly_and_a_flood_of_creates_leaves_others_served()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, ana_token) = trainer(&sandbox, "Ana").await;
    let (_, _, bea_token) = trainer(&sandbox, "Bea").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    rules_in_twenty_zones(&sandbox, &owner_token, &ana_token).await;

    // A rule from year 1 in Ana's own zone, against all twenty: the
    // costliest single check there is (twenty walks from 1844 to 2100).
    let saturday = reference_monday() + Duration::days(5);
    let started = Instant::now();
    create_rule(
        &sandbox,
        &ana_token,
        rule(
            DayOfWeek::Saturday,
            (15, 0),
            (16, 0),
            NaiveDate::from_ymd_opt(1, 1, 1).unwrap(),
            None,
        ),
    )
    .await
    .expect("Saturday afternoons in Toronto meet none of the twenty");
    let took = started.elapsed();
    eprintln!("a rule from year 1 against twenty zones: {took:?}");
    assert!(took < CREATE_BOUND, "{took:?}");

    // Bea's session, read throughout the flood.
    let bea_class = short_class(&sandbox, &bea_token).await;
    let base = crate::scheduling::next_year(3, 1, 6);
    let bea_client = client_of(&sandbox, &bea_token).await;
    let bea_session =
        crate::scheduling::book(&sandbox, &bea_token, &bea_class.id, base, &bea_client)
            .await
            .expect("Bea's session");

    // A hundred creates at once by Ana, each of nine minutes of Saturday
    // morning in Toronto from next year on (none overlaps another, each is
    // compared with the twenty-one), while Bea reads her calendar and, in
    // the middle of it, creates a rule of her own.
    let tokens = Arc::new(ana_token.clone());
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let flood = flood_beside(
        &sandbox,
        Bystander {
            token: &bea_token,
            class_type_id: &bea_class.id,
            appointment: Some((&bea_session.id, base)),
        },
        100,
        move |mut api| {
            let token = Arc::clone(&tokens);
            let index = i32::try_from(NEXT.fetch_add(1, Ordering::Relaxed)).expect("index");
            async move {
                let start = index * 9;
                api.create_availability_rule(bearer(
                    pb::CreateAvailabilityRuleRequest {
                        rule: Some(rule(
                            DayOfWeek::Saturday,
                            (start / 60, start % 60),
                            ((start + 9) / 60, (start + 9) % 60),
                            saturday,
                            None,
                        )),
                        request_id: uuid::Uuid::new_v4().to_string(),
                    },
                    &token,
                ))
                .await
                .map(drop)
            }
        },
    );
    let bea_creates = async {
        tokio::time::sleep(StdDuration::from_millis(200)).await;
        let started = Instant::now();
        let made = create_rule(
            &sandbox,
            &bea_token,
            rule(DayOfWeek::Monday, (9, 0), (10, 0), saturday, None),
        )
        .await;
        (made, started.elapsed())
    };
    let (outcome, (bea_rule, bea_took)) = tokio::join!(flood, bea_creates);
    outcome.assert_answered_as(&[]);
    let bea_rule = bea_rule.expect("Bea's create is not refused for Ana's flood");
    eprintln!("Bea's create during Ana's flood: {bea_took:?}");
    assert!(bea_took < StdDuration::from_secs(5), "{bea_took:?}");
    assert!(!bea_rule.id.is_empty());
}

#[tokio::test]
async fn a_trainer_holds_at_most_a_hundred_rules_meeting_a_new_ones_dates() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, ana_token) = trainer(&sandbox, "Ana").await;
    let monday = reference_monday();
    let last_of_year = NaiveDate::from_ymd_opt(monday.year(), 12, 31).unwrap();
    // A hundred ten-minute rules on Mondays of next year.
    for index in 0..100 {
        let start = index * 10;
        create_rule(
            &sandbox,
            &ana_token,
            rule(
                DayOfWeek::Monday,
                (start / 60, start % 60),
                ((start + 10) / 60, (start + 10) % 60),
                monday,
                Some(last_of_year),
            ),
        )
        .await
        .unwrap_or_else(|status| panic!("rule {index}: {status:?}"));
    }
    let limit = create_rule(
        &sandbox,
        &ana_token,
        rule(DayOfWeek::Tuesday, (9, 0), (10, 0), monday, None),
    )
    .await
    .expect_err("a hundred-and-first rule meeting the others' dates");
    assert_eq!(limit.code(), Code::FailedPrecondition);
    assert_eq!(reason(&limit), "AVAILABILITY_RULE_LIMIT");
    // From the year after, the hundred are behind: room again.
    create_rule(
        &sandbox,
        &ana_token,
        rule(
            DayOfWeek::Tuesday,
            (9, 0),
            (10, 0),
            last_of_year + Duration::days(3),
            None,
        ),
    )
    .await
    .expect("a rule after the hundred end");
    let admin = sandbox.db.admin_pool().await;
    let (stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM scheduling.availability_rules")
        .fetch_one(&admin)
        .await
        .expect("count rules");
    assert_eq!(stored, 101, "the refused create wrote nothing");
}

#[tokio::test]
async fn five_hundred_free_slot_searches_over_twenty_zones_are_answered_or_busy() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, ana_token) = trainer(&sandbox, "Ana").await;
    let (_, _, bea_token) = trainer(&sandbox, "Bea").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let placed = rules_in_twenty_zones(&sandbox, &owner_token, &ana_token).await;
    let ana_class = short_class(&sandbox, &ana_token).await;
    let bea_class = short_class(&sandbox, &bea_token).await;
    let from = reference_monday().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let to = from + Duration::days(31);
    let search = pb::ListFreeSlotsRequest {
        class_type_id: ana_class.id.clone(),
        start_time: at(from),
        end_time: at(to),
        ..Default::default()
    };
    let answer = scheduling(&sandbox)
        .list_free_slots(bearer(search.clone(), &ana_token))
        .await
        .expect("free slots")
        .into_inner();
    // One slot per rule per week, each at its studio, in its zone.
    let studios: std::collections::HashSet<&str> = answer
        .slots
        .iter()
        .map(|slot| slot.studio_id.as_str())
        .collect();
    assert_eq!(studios.len(), placed.len(), "every studio offers its hours");
    for slot in &answer.slots {
        let (_, zone) = placed
            .iter()
            .find(|(studio, _)| studio.id == slot.studio_id)
            .expect("a known studio");
        assert_eq!(slot.time_zone, zone.name());
    }
    assert!(
        answer.slots.len() >= 4 * placed.len(),
        "{}",
        answer.slots.len()
    );

    let search = Arc::new((search, ana_token.clone()));
    let outcome = flood_beside(
        &sandbox,
        Bystander {
            token: &bea_token,
            class_type_id: &bea_class.id,
            appointment: None,
        },
        500,
        move |mut api| {
            let search = Arc::clone(&search);
            async move {
                api.list_free_slots(bearer(search.0.clone(), &search.1))
                    .await
                    .map(drop)
            }
        },
    )
    .await;
    outcome.assert_answered_as(&[]);
}

/// Strings no id may hold.
const HOSTILE_TEXT: &[&str] = &[
    "\u{0}",
    "6f1c2d1e-0000-4000-8000-00000000000\u{0}",
    "\u{1b}[31m",
    "line\r\nbreak",
    "\u{202e}6f1c2d1e-0000-4000-8000-000000000001",
    "6f1c2d1e-0000-4000-8000-000000000001\u{200f}",
    "\u{7f}",
];

/// Instants no Timestamp field may hold: before year 1, after 9999, bad
/// nanos.
fn hostile_instants() -> [Timestamp; 4] {
    [
        Timestamp {
            seconds: -62_135_596_801,
            nanos: 0,
        },
        Timestamp {
            seconds: 253_402_300_800,
            nanos: 0,
        },
        Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        },
        Timestamp {
            seconds: 1_900_000_000,
            nanos: -1,
        },
    ]
}

fn refused_by(result: Result<impl std::fmt::Debug, tonic::Status>, field: &str, what: &str) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    assert!(
        violated_fields(&status).iter().any(|found| found == field),
        "{what}: {:?} does not name {field}",
        violated_fields(&status)
    );
    assert!(
        !status.message().contains('\u{0}') && !status.message().contains('\u{202e}'),
        "{what}: the message echoes nothing hostile"
    );
}

#[tokio::test]
async fn hostile_ids_instants_and_dates_are_refused_by_field_and_write_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, ana_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let kiritimati = studio_in(&sandbox, &owner_token, "Studio Line", "Pacific/Kiritimati").await;
    let pago = studio_in(&sandbox, &owner_token, "Studio Pago", "Pacific/Pago_Pago").await;
    let class = short_class(&sandbox, &ana_token).await;
    let client_id = client_of(&sandbox, &ana_token).await;
    let monday = reference_monday();
    let hours = rule(DayOfWeek::Monday, (9, 0), (10, 0), monday, None);
    let mut api = scheduling(&sandbox);

    for text in HOSTILE_TEXT {
        let what = format!("{text:?}");
        let mut at_studio = hours.clone();
        at_studio.studio_id = (*text).into();
        refused_by(
            create_rule(&sandbox, &ana_token, at_studio).await,
            "rule.studio_id",
            &what,
        );
        let mut for_trainer = hours.clone();
        for_trainer.trainer_id = (*text).into();
        refused_by(
            create_rule(&sandbox, &ana_token, for_trainer).await,
            "rule.trainer_id",
            &what,
        );
        let request_id = api
            .create_availability_rule(bearer(
                pb::CreateAvailabilityRuleRequest {
                    rule: Some(hours.clone()),
                    request_id: (*text).into(),
                },
                &ana_token,
            ))
            .await;
        refused_by(request_id, "request_id", &what);
        for field in ["trainer_id", "class_type_id"] {
            let mut search = pb::ListFreeSlotsRequest {
                class_type_id: class.id.clone(),
                start_time: at(monday.and_hms_opt(0, 0, 0).unwrap().and_utc()),
                end_time: at(monday.and_hms_opt(23, 0, 0).unwrap().and_utc()),
                ..Default::default()
            };
            if field == "trainer_id" {
                search.trainer_id = (*text).into();
            } else {
                search.class_type_id = (*text).into();
            }
            refused_by(
                api.list_free_slots(bearer(search, &ana_token)).await,
                field,
                &what,
            );
        }
        let booking = pb::Appointment {
            class_type_id: class.id.clone(),
            client_id: client_id.clone(),
            start_time: at(monday.and_hms_opt(14, 0, 0).unwrap().and_utc()),
            ..Default::default()
        };
        for field in ["studio_id", "class_type_id", "client_id"] {
            let mut hostile = booking.clone();
            match field {
                "studio_id" => hostile.studio_id = (*text).into(),
                "class_type_id" => hostile.class_type_id = (*text).into(),
                _ => hostile.client_id = (*text).into(),
            }
            refused_by(
                api.book_appointment(bearer(
                    pb::BookAppointmentRequest {
                        appointment: Some(hostile),
                        request_id: uuid::Uuid::new_v4().to_string(),
                    },
                    &ana_token,
                ))
                .await,
                &format!("appointment.{field}"),
                &what,
            );
        }
        refused_by(
            api.book_appointment(bearer(
                pb::BookAppointmentRequest {
                    appointment: Some(booking.clone()),
                    request_id: (*text).into(),
                },
                &ana_token,
            ))
            .await,
            "request_id",
            &what,
        );
    }

    for instant in hostile_instants() {
        let what = format!("{instant:?}");
        for field in ["start_time", "end_time"] {
            let mut search = pb::ListFreeSlotsRequest {
                class_type_id: class.id.clone(),
                start_time: at(monday.and_hms_opt(0, 0, 0).unwrap().and_utc()),
                end_time: at(monday.and_hms_opt(23, 0, 0).unwrap().and_utc()),
                ..Default::default()
            };
            if field == "start_time" {
                search.start_time = Some(instant);
            } else {
                search.end_time = Some(instant);
            }
            refused_by(
                api.list_free_slots(bearer(search, &ana_token)).await,
                field,
                &what,
            );
        }
        refused_by(
            api.book_appointment(bearer(
                pb::BookAppointmentRequest {
                    appointment: Some(pb::Appointment {
                        class_type_id: class.id.clone(),
                        client_id: client_id.clone(),
                        start_time: Some(instant),
                        ..Default::default()
                    }),
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
                &ana_token,
            ))
            .await,
            "appointment.start_time",
            &what,
        );
    }

    // Dates: year 0 and 10000 are refused, an impossible day too.
    for (from, until, field) in [
        ((0, 1, 1), None, "rule.effective_from"),
        ((2027, 2, 30), None, "rule.effective_from"),
        ((1, 1, 1), Some((10000, 1, 1)), "rule.effective_until"),
        ((9999, 12, 31), Some((9999, 12, 30)), "rule.effective_until"),
    ] {
        let mut dated = hours.clone();
        dated.studio_id = kiritimati.id.clone();
        dated.effective_from = Some(Date {
            year: from.0,
            month: from.1,
            day: from.2,
        });
        dated.effective_until = until.map(|(year, month, day)| Date { year, month, day });
        refused_by(
            create_rule(&sandbox, &ana_token, dated).await,
            field,
            &format!("{from:?} {until:?}"),
        );
    }
    let admin = sandbox.db.admin_pool().await;
    let count = |table: &'static str| {
        let admin = admin.clone();
        async move {
            let (rows,): (i64,) =
                sqlx::query_as(&format!("SELECT count(*) FROM scheduling.{table}"))
                    .fetch_one(&admin)
                    .await
                    .expect("count");
            rows
        }
    };
    assert_eq!(count("availability_rules").await, 0, "nothing written");
    assert_eq!(count("appointments").await, 0, "nothing written");

    // Year 1 to 9999 at a studio 14 hours ahead of UTC and one 11 behind:
    // accepted, and the last month of the calendar is searched without
    // error — no slot ends past 9999-12-31T23:59:59Z.
    let whole_calendar =
        |studio_id: &str, day: DayOfWeek, (start, end): ((i32, i32), (i32, i32))| {
            let mut dated = rule(
                day,
                start,
                end,
                NaiveDate::from_ymd_opt(1, 1, 1).unwrap(),
                Some(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap()),
            );
            dated.studio_id = studio_id.into();
            dated
        };
    // 9999-12-31 is a Friday: Friday 20:00-24:00 at Pago Pago (UTC-11) is
    // past the calendar's end; Friday 09:00-10:00 at Kiritimati (UTC+14)
    // is Thursday 19:00 UTC.
    create_rule(
        &sandbox,
        &ana_token,
        whole_calendar(&pago.id, DayOfWeek::Friday, ((20, 0), (24, 0))),
    )
    .await
    .expect("Fridays at Pago Pago for ever");
    create_rule(
        &sandbox,
        &ana_token,
        whole_calendar(&kiritimati.id, DayOfWeek::Friday, ((9, 0), (10, 0))),
    )
    .await
    .expect("Fridays at Kiritimati for ever");
    let last_second = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
    let slots = api
        .list_free_slots(bearer(
            pb::ListFreeSlotsRequest {
                class_type_id: class.id.clone(),
                start_time: at(last_second - Duration::days(31)),
                end_time: at(last_second),
                ..Default::default()
            },
            &ana_token,
        ))
        .await
        .expect("the last month of the calendar")
        .into_inner();
    assert!(!slots.slots.is_empty());
    for slot in &slots.slots {
        let end = slot.end_time.as_ref().expect("end");
        assert!(end.seconds <= last_second.timestamp(), "{slot:?}");
    }
    let at_kiritimati = slots
        .slots
        .iter()
        .filter(|slot| slot.studio_id == kiritimati.id)
        .count();
    assert!(at_kiritimati >= 4, "{at_kiritimati}");
    // Pago Pago's last Friday evening (10000-01-01 in UTC) is no slot.
    let last_pago = slots
        .slots
        .iter()
        .filter(|slot| slot.studio_id == pago.id)
        .filter_map(|slot| slot.start_time.as_ref())
        .map(|start| start.seconds)
        .max()
        .expect("Pago Pago's Fridays");
    assert!(
        last_pago
            < Utc
                .with_ymd_and_hms(9999, 12, 30, 0, 0, 0)
                .unwrap()
                .timestamp()
    );

    // A forged page token of the rules list: refused, not decoded.
    for token in ["AAAA", "not-a-token", "\u{0}", &"A".repeat(4096)] {
        let forged = api
            .list_availability_rules(bearer(
                pb::ListAvailabilityRulesRequest {
                    page_token: token.into(),
                    ..Default::default()
                },
                &ana_token,
            ))
            .await;
        refused_by(forged, "page_token", token);
    }
}

#[tokio::test]
async fn a_studio_moved_to_another_zone_moves_its_rules_and_a_deleted_one_offers_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, ana_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = studio_in(&sandbox, &owner_token, "Studio Kits", "America/Vancouver").await;
    let class = short_class(&sandbox, &ana_token).await;
    let monday = reference_monday();
    let mut at_kits = rule(DayOfWeek::Monday, (9, 0), (10, 0), monday, None);
    at_kits.studio_id = studio.id.clone();
    create_rule(&sandbox, &ana_token, at_kits)
        .await
        .expect("09:00 Vancouver (12:00 Toronto)");
    // Ana's own 09:00 Toronto meets nothing while the studio is in
    // Vancouver.
    create_rule(
        &sandbox,
        &ana_token,
        rule(DayOfWeek::Monday, (9, 0), (9, 30), monday, None),
    )
    .await
    .expect("09:00-09:30 Toronto");

    // The studio moves to Toronto: its 09:00 is now Ana's 09:00.
    tenancy(&sandbox, "gateway")
        .update_studio(bearer(
            tenancy_pb::UpdateStudioRequest {
                studio: Some(tenancy_pb::Studio {
                    id: studio.id.clone(),
                    time_zone: "America/Toronto".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["time_zone".into()],
                }),
                etag: String::new(),
            },
            &owner_token,
        ))
        .await
        .expect("the studio moves");
    // A create at the studio asks tenancy afresh: its new zone is learnt,
    // and the new rule is compared in it.
    let mut tuesday = rule(DayOfWeek::Tuesday, (9, 0), (10, 0), monday, None);
    tuesday.studio_id = studio.id.clone();
    create_rule(&sandbox, &ana_token, tuesday)
        .await
        .expect("Tuesdays at the studio");
    let toronto = chrono_tz::America::Toronto;
    let day = |hour| {
        toronto
            .from_local_datetime(&monday.and_hms_opt(hour, 0, 0).unwrap())
            .single()
            .unwrap()
            .with_timezone(&Utc)
    };
    let search = pb::ListFreeSlotsRequest {
        class_type_id: class.id.clone(),
        start_time: at(day(0)),
        end_time: at(day(23)),
        ..Default::default()
    };
    let slots = scheduling(&sandbox)
        .list_free_slots(bearer(search.clone(), &ana_token))
        .await
        .expect("free slots")
        .into_inner();
    let starts: Vec<(i64, String, String)> = slots
        .slots
        .iter()
        .map(|slot| {
            (
                slot.start_time.as_ref().expect("start").seconds,
                slot.time_zone.clone(),
                slot.studio_id.clone(),
            )
        })
        .collect();
    // Both places' 09:00 are 09:00 Toronto now (the overlap the move made
    // is the studio's doing, documented as unchecked; of two places
    // offering one instant the trainer's own stays): the studio's slots
    // are read in its new zone, from 09:30, never at 12:00.
    let half_past_nine = day(9).timestamp() + 30 * 60;
    assert!(
        starts
            .iter()
            .any(|(start, zone, id)| *start == half_past_nine
                && zone == "America/Toronto"
                && *id == studio.id),
        "{starts:?}"
    );
    assert!(
        starts
            .iter()
            .all(|(start, _, _)| *start < day(12).timestamp()),
        "{starts:?}"
    );
    // A new rule at 09:30-10:00 Toronto now meets the studio's hours.
    let overlap = create_rule(
        &sandbox,
        &ana_token,
        rule(DayOfWeek::Monday, (9, 30), (10, 0), monday, None),
    )
    .await
    .expect_err("the studio's 09:00-10:00 is Toronto's now");
    assert_eq!(reason(&overlap), "AVAILABILITY_RULE_OVERLAP");

    // Deleted: its rules give no hours, a rule there is refused.
    tenancy(&sandbox, "gateway")
        .delete_studio(bearer(
            tenancy_pb::DeleteStudioRequest {
                studio_id: studio.id.clone(),
                etag: String::new(),
            },
            &owner_token,
        ))
        .await
        .expect("delete studio");
    let mut wednesday = rule(DayOfWeek::Wednesday, (9, 0), (10, 0), monday, None);
    wednesday.studio_id = studio.id.clone();
    let gone = create_rule(&sandbox, &ana_token, wednesday)
        .await
        .expect_err("a deleted studio");
    assert_eq!(reason(&gone), "STUDIO_NOT_FOUND");
    let slots = scheduling(&sandbox)
        .list_free_slots(bearer(search, &ana_token))
        .await
        .expect("free slots")
        .into_inner();
    assert!(
        slots.slots.iter().all(|slot| slot.studio_id.is_empty()),
        "nothing at the deleted studio: {:?}",
        slots.slots
    );
    // Its hours are gone, so 09:30 Toronto is free for Ana's own rule.
    create_rule(
        &sandbox,
        &ana_token,
        rule(DayOfWeek::Monday, (9, 30), (10, 0), monday, None),
    )
    .await
    .expect("the deleted studio's hours overlap nothing");
}

async fn book_as(
    sandbox: &Sandbox,
    token: &str,
    appointment: pb::Appointment,
    request_id: &str,
) -> Result<pb::Appointment, tonic::Status> {
    scheduling(sandbox)
        .book_appointment(bearer(
            pb::BookAppointmentRequest {
                appointment: Some(appointment),
                request_id: request_id.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().appointment.expect("appointment"))
}

fn session(class_type_id: &str, client_id: &str, start: DateTime<Utc>) -> pb::Appointment {
    pb::Appointment {
        class_type_id: class_type_id.into(),
        client_id: client_id.into(),
        start_time: at(start),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_replayed_booking_is_the_callers_own_and_a_hundred_racing_copies_make_one() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, ana_token) = trainer(&sandbox, "Ana").await;
    let (_, _, bo_token) = trainer(&sandbox, "Bo").await;
    let ana_class = short_class(&sandbox, &ana_token).await;
    let bo_class = short_class(&sandbox, &bo_token).await;
    let ana_client = client_of(&sandbox, &ana_token).await;
    let bo_client = client_of(&sandbox, &bo_token).await;
    let base = crate::scheduling::next_year(3, 1, 14);
    let request_id = uuid::Uuid::new_v4().to_string();

    let first = book_as(
        &sandbox,
        &ana_token,
        session(&ana_class.id, &ana_client, base),
        &request_id,
    )
    .await
    .expect("Ana's booking");
    // Bo sends Ana's request id (seen in a log, guessed): his own booking,
    // never Ana's.
    let bos = book_as(
        &sandbox,
        &bo_token,
        session(&bo_class.id, &bo_client, base),
        &request_id,
    )
    .await
    .expect("Bo's own booking");
    assert_ne!(bos.id, first.id);
    assert_eq!(bos.client_id, bo_client);
    // Bo replaying Ana's exact request: Ana's class and client are not his.
    let foreign = book_as(
        &sandbox,
        &bo_token,
        session(&ana_class.id, &ana_client, base),
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect_err("Ana's class type, Bo's token");
    assert!(!foreign.message().contains(&first.id));
    // Bo's replay of his own request id with Ana's body: reused, no peek.
    let reused = book_as(
        &sandbox,
        &bo_token,
        session(&ana_class.id, &ana_client, base),
        &request_id,
    )
    .await
    .expect_err("another body under Bo's request id");
    assert_eq!(reused.code(), Code::AlreadyExists);
    assert_eq!(reason(&reused), "REQUEST_ID_REUSED");
    assert!(!reused.message().contains(&first.id));
    // Ana's retry: her first appointment; another body under it: refused.
    let again = book_as(
        &sandbox,
        &ana_token,
        session(&ana_class.id, &ana_client, base),
        &request_id,
    )
    .await
    .expect("Ana's retry");
    assert_eq!(again.id, first.id);
    let moved = book_as(
        &sandbox,
        &ana_token,
        session(&ana_class.id, &ana_client, base + Duration::hours(1)),
        &request_id,
    )
    .await
    .expect_err("another body under Ana's request id");
    assert_eq!(reason(&moved), "REQUEST_ID_REUSED");

    // A hundred identical requests at once under one fresh request id:
    // one appointment, and every answer is it (or a clear refusal).
    let racing = uuid::Uuid::new_v4().to_string();
    let start = base + Duration::days(1);
    let clients: Vec<_> = (0..2).map(|_| scheduling(&sandbox)).collect();
    let calls: Vec<_> = (0..100)
        .map(|index| {
            let mut api = clients[index % 2].clone();
            let request = pb::BookAppointmentRequest {
                appointment: Some(session(&ana_class.id, &ana_client, start)),
                request_id: racing.clone(),
            };
            let token = ana_token.clone();
            tokio::spawn(async move {
                api.book_appointment(bearer(request, &token))
                    .await
                    .map(|response| response.into_inner().appointment.expect("appointment").id)
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    let mut refusals = std::collections::HashMap::new();
    for call in calls {
        match call.await.expect("the call ran") {
            Ok(id) => {
                ids.insert(id);
            }
            Err(status) => {
                *refusals
                    .entry((status.code(), reason(&status)))
                    .or_insert(0) += 1;
            }
        }
    }
    eprintln!(
        "racing copies: {} answer(s) {ids:?}, refused {refusals:?}",
        ids.len()
    );
    assert_eq!(ids.len(), 1, "one appointment for all answers: {ids:?}");
    assert!(
        refusals.keys().all(|(code, why)| matches!(
            (code, why.as_str()),
            (Code::ResourceExhausted, "SCHEDULING_BUSY")
                | (Code::Unavailable, "DATABASE_UNAVAILABLE")
        )),
        "{refusals:?}"
    );
    let admin = sandbox.db.admin_pool().await;
    let (booked,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM scheduling.appointments WHERE start_time = $1")
            .bind(start)
            .fetch_one(&admin)
            .await
            .expect("count");
    assert_eq!(booked, 1, "exactly one appointment");
}

#[tokio::test]
async fn with_tenancy_down_a_create_is_dependency_unavailable_a_replay_answers_and_nothing_is_written()
 {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(EVERYONE).await;
    let (_, _, ana_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = studio_in(&sandbox, &owner_token, "Studio Kits", "America/Vancouver").await;
    let class = short_class(&sandbox, &ana_token).await;
    let client_id = client_of(&sandbox, &ana_token).await;
    let monday = reference_monday();
    let mut at_kits = rule(DayOfWeek::Monday, (9, 0), (10, 0), monday, None);
    at_kits.studio_id = studio.id.clone();
    let request_id = uuid::Uuid::new_v4().to_string();
    let create = |hours: pb::AvailabilityRule, request_id: String| {
        let mut api = scheduling(&sandbox);
        let token = ana_token.clone();
        async move {
            api.create_availability_rule(bearer(
                pb::CreateAvailabilityRuleRequest {
                    rule: Some(hours),
                    request_id,
                },
                &token,
            ))
            .await
            .map(|response| response.into_inner().rule.expect("rule"))
        }
    };
    let first = create(at_kits.clone(), request_id.clone())
        .await
        .expect("a rule at the studio");
    let booking_id = uuid::Uuid::new_v4().to_string();
    let start = crate::scheduling::next_year(3, 2, 15);
    let booked = book_as(
        &sandbox,
        &ana_token,
        session(&class.id, &client_id, start),
        &booking_id,
    )
    .await
    .expect("a booking");

    // Tenancy stops; the rest restarts without it (no zone cached).
    stack.shutdown().await;
    let without_tenancy: Vec<&str> = EVERYONE
        .iter()
        .copied()
        .filter(|service| *service != crate::tenancy::TENANCY)
        .collect();
    let _stack = sandbox.start(&without_tenancy).await;

    let replay = create(at_kits.clone(), request_id.clone())
        .await
        .expect("a retry answers the first rule without tenancy");
    assert_eq!(replay.id, first.id);
    let rebooked = book_as(
        &sandbox,
        &ana_token,
        session(&class.id, &client_id, start),
        &booking_id,
    )
    .await
    .expect("a retried booking answers without tenancy");
    assert_eq!(rebooked.id, booked.id);
    for hours in [rule(DayOfWeek::Tuesday, (9, 0), (10, 0), monday, None), {
        let mut there = rule(DayOfWeek::Wednesday, (9, 0), (10, 0), monday, None);
        there.studio_id = studio.id.clone();
        there
    }] {
        let started = Instant::now();
        let down = create(hours, uuid::Uuid::new_v4().to_string())
            .await
            .expect_err("no zone without tenancy");
        assert_eq!(down.code(), Code::Unavailable, "{down:?}");
        assert_eq!(reason(&down), "DEPENDENCY_UNAVAILABLE");
        assert!(started.elapsed() < StdDuration::from_secs(10));
    }
    let slots = scheduling(&sandbox)
        .list_free_slots(bearer(
            pb::ListFreeSlotsRequest {
                class_type_id: class.id.clone(),
                start_time: at(monday.and_hms_opt(0, 0, 0).unwrap().and_utc()),
                end_time: at(monday.and_hms_opt(23, 0, 0).unwrap().and_utc()),
                ..Default::default()
            },
            &ana_token,
        ))
        .await
        .expect_err("no zone without tenancy");
    assert_eq!(reason(&slots), "DEPENDENCY_UNAVAILABLE");
    let admin = sandbox.db.admin_pool().await;
    let (rules,): (i64,) = sqlx::query_as("SELECT count(*) FROM scheduling.availability_rules")
        .fetch_one(&admin)
        .await
        .expect("count");
    assert_eq!(rules, 1, "nothing written");
}

#[tokio::test]
async fn racing_creates_at_fresh_studios_are_made_or_refused_never_unavailable() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, ana_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    // Thirty studios Ana has no rule at yet: each create's rivals commit
    // rules at studios it has not seen, sending it back to tenancy.
    let mut studios = Vec::new();
    for index in 0..30 {
        studios.push(
            studio_in(
                &sandbox,
                &owner_token,
                &format!("Studio {index}"),
                if index % 2 == 0 {
                    "Asia/Kathmandu"
                } else {
                    "America/St_Johns"
                },
            )
            .await,
        );
    }
    let monday = reference_monday();
    let calls: Vec<_> = studios
        .iter()
        .enumerate()
        .map(|(index, studio)| {
            let mut api = scheduling(&sandbox);
            let token = ana_token.clone();
            // Ten-minute windows on Thursdays, far apart in both zones
            // (Kathmandu 00:00-06:00 is Wednesday evening in St John's).
            let minute = i32::try_from(index).expect("index") * 10;
            let mut hours = rule(
                DayOfWeek::Thursday,
                (
                    minute / 60 + if index % 2 == 0 { 0 } else { 14 },
                    minute % 60,
                ),
                (
                    (minute + 10) / 60 + if index % 2 == 0 { 0 } else { 14 },
                    (minute + 10) % 60,
                ),
                monday,
                None,
            );
            hours.studio_id = studio.id.clone();
            tokio::spawn(async move {
                api.create_availability_rule(bearer(
                    pb::CreateAvailabilityRuleRequest {
                        rule: Some(hours),
                        request_id: uuid::Uuid::new_v4().to_string(),
                    },
                    &token,
                ))
                .await
                .map(drop)
            })
        })
        .collect();
    let mut answers = std::collections::HashMap::new();
    for call in calls {
        let answer = match call.await.expect("the call ran") {
            Ok(()) => (Code::Ok, String::new()),
            Err(status) => (status.code(), reason(&status)),
        };
        *answers.entry(answer).or_insert(0) += 1;
    }
    eprintln!("racing creates at fresh studios: {answers:?}");
    assert!(
        answers.keys().all(|(code, why)| matches!(
            (code, why.as_str()),
            (Code::Ok, "") | (Code::ResourceExhausted, "SCHEDULING_BUSY")
        )),
        "{answers:?}"
    );
    assert!(
        answers
            .get(&(Code::Ok, String::new()))
            .copied()
            .unwrap_or(0)
            >= 4
    );
}
