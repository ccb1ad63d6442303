//! Availability end to end: weekly rules that never overlap (refused with
//! the rule named, and by the database under a race), exceptions, and the
//! free slots they leave around booked appointments — in the trainer's time
//! zone from tenancy — attacked as another trainer.

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, TimeZone as _, Utc, Weekday};
use fitflow_e2e::{AUDIT, Sandbox, bearer};
use fitflow_proto::audit::audit_service_client::AuditServiceClient;
use fitflow_proto::audit::{Action, EventFilter, ListEventsRequest};
use fitflow_proto::google::r#type::{Date, DayOfWeek, TimeOfDay};
use fitflow_proto::scheduling as pb;
use prost_types::Timestamp;
use tonic::Code;

use crate::identity_support::{reason, violated_fields};
use crate::scheduling::{EVERYONE, at, book, class_type, scheduling};
use crate::tenancy::{answer, invite_to_team, trainer};

pub(crate) fn time(hours: i32, minutes: i32) -> Option<TimeOfDay> {
    Some(TimeOfDay {
        hours,
        minutes,
        seconds: 0,
        nanos: 0,
    })
}

pub(crate) fn date(value: NaiveDate) -> Option<Date> {
    Some(Date {
        year: value.year(),
        month: i32::try_from(value.month()).unwrap(),
        day: i32::try_from(value.day()).unwrap(),
    })
}

/// The first `weekday` of July next year (daylight time in Toronto).
fn next_july(weekday: Weekday) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(Utc::now().year() + 1, 7, 1).unwrap();
    (0..7)
        .map(|offset| first + Duration::days(offset))
        .find(|day| day.weekday() == weekday)
        .unwrap()
}

/// A Toronto wall time as an instant (July: EDT, UTC−4).
fn toronto(day: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    chrono_tz::America::Toronto
        .from_local_datetime(&day.and_hms_opt(hour, minute, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

pub(crate) fn rule(
    day: DayOfWeek,
    (start_hour, start_minute): (i32, i32),
    (end_hour, end_minute): (i32, i32),
    from: NaiveDate,
    until: Option<NaiveDate>,
) -> pb::AvailabilityRule {
    pb::AvailabilityRule {
        day_of_week: day as i32,
        start_time: time(start_hour, start_minute),
        end_time: time(end_hour, end_minute),
        effective_from: date(from),
        effective_until: until.and_then(date),
        ..Default::default()
    }
}

pub(crate) async fn create_rule(
    sandbox: &Sandbox,
    token: &str,
    rule: pb::AvailabilityRule,
) -> Result<pb::AvailabilityRule, tonic::Status> {
    scheduling(sandbox)
        .create_availability_rule(bearer(
            pb::CreateAvailabilityRuleRequest {
                rule: Some(rule),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().rule.expect("rule"))
}

pub(crate) async fn create_exception(
    sandbox: &Sandbox,
    token: &str,
    exception: pb::AvailabilityException,
) -> pb::AvailabilityException {
    scheduling(sandbox)
        .create_availability_exception(bearer(
            pb::CreateAvailabilityExceptionRequest {
                exception: Some(exception),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .expect("create exception")
        .into_inner()
        .exception
        .expect("exception")
}

async fn free_slots(
    sandbox: &Sandbox,
    token: &str,
    class_type_id: &str,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    buffer_minutes: i32,
) -> pb::ListFreeSlotsResponse {
    scheduling(sandbox)
        .list_free_slots(bearer(
            pb::ListFreeSlotsRequest {
                class_type_id: class_type_id.into(),
                start_time: at(from),
                end_time: at(to),
                buffer_minutes,
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("free slots")
        .into_inner()
}

/// Each slot as "YYYY-MM-DD HH:MM" local wall time.
fn wall_times(response: &pb::ListFreeSlotsResponse) -> Vec<String> {
    response
        .slots
        .iter()
        .map(|slot| {
            let day = slot.local_date.as_ref().expect("local date");
            let clock = slot.local_time.as_ref().expect("local time");
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                day.year, day.month, day.day, clock.hours, clock.minutes
            )
        })
        .collect()
}

/// Waits (up to 20 s) until the audit trail of `trainer_id` holds `count`
/// events about `resource_type` `resource_id`; their actions in order.
pub(crate) async fn audited_actions(
    sandbox: &Sandbox,
    token: &str,
    trainer_id: &str,
    (resource_type, resource_id): (&str, &str),
    count: usize,
) -> Vec<i32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let events = AuditServiceClient::new(sandbox.channel(AUDIT, "gateway"))
            .list_events(bearer(
                ListEventsRequest {
                    filter: Some(EventFilter {
                        tenant_id: trainer_id.into(),
                        resource_type: resource_type.into(),
                        resource_id: resource_id.into(),
                        ..Default::default()
                    }),
                    page_size: 100,
                    ..Default::default()
                },
                token,
            ))
            .await
            .expect("list events")
            .into_inner()
            .events;
        let actions: Vec<i32> = events
            .iter()
            .filter_map(|stored| stored.event.as_ref())
            .map(|event| event.action)
            .collect();
        if actions.len() >= count || std::time::Instant::now() > deadline {
            return actions;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn wall(day: NaiveDate, clock: &str) -> String {
    format!("{} {clock}", day.format("%Y-%m-%d"))
}

#[tokio::test]
async fn overlapping_rules_are_refused_naming_the_rule_and_of_twenty_racing_creates_one_is_made() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let start = next_july(Weekday::Mon);
    let mornings = create_rule(
        &sandbox,
        &ana.2,
        rule(DayOfWeek::Monday, (9, 0), (12, 0), start, None),
    )
    .await
    .expect("a first rule");
    assert_eq!(mornings.trainer_id, ana.0);

    let overlap = create_rule(
        &sandbox,
        &ana.2,
        rule(
            DayOfWeek::Monday,
            (11, 0),
            (13, 0),
            start + Duration::days(70),
            None,
        ),
    )
    .await
    .expect_err("overlapping hours on a Monday both rules cover");
    assert_eq!(overlap.code(), Code::FailedPrecondition);
    assert_eq!(reason(&overlap), "AVAILABILITY_RULE_OVERLAP");
    assert!(
        overlap.message().contains(&mornings.id),
        "the refusal names the rule: {}",
        overlap.message()
    );
    // Touching hours, another weekday, or dates that end before: no overlap.
    for allowed in [
        rule(DayOfWeek::Monday, (12, 0), (24, 0), start, None),
        rule(DayOfWeek::Tuesday, (9, 0), (12, 0), start, None),
        rule(
            DayOfWeek::Monday,
            (9, 0),
            (12, 0),
            start - Duration::days(364),
            Some(start - Duration::days(1)),
        ),
    ] {
        create_rule(&sandbox, &ana.2, allowed)
            .await
            .expect("a rule that overlaps nothing");
    }

    // Twenty overlapping Wednesday rules at once (over one connection, so
    // the race is between transactions, not TLS handshakes): one is made.
    let shared = scheduling(&sandbox);
    let mut tasks = Vec::new();
    for minute in 0..20 {
        let (mut api, token) = (shared.clone(), ana.2.clone());
        tasks.push(tokio::spawn(async move {
            api.create_availability_rule(bearer(
                pb::CreateAvailabilityRuleRequest {
                    rule: Some(rule(
                        DayOfWeek::Wednesday,
                        (8, minute),
                        (10, 0),
                        start,
                        None,
                    )),
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
                &token,
            ))
            .await
        }));
    }
    let (mut made, mut refused) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => made += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert_eq!(reason(&status), "AVAILABILITY_RULE_OVERLAP");
                refused += 1;
            }
        }
    }
    assert_eq!((made, refused), (1, 19));

    let mut api = scheduling(&sandbox);
    let listed = api
        .list_availability_rules(bearer(pb::ListAvailabilityRulesRequest::default(), &ana.2))
        .await
        .expect("list")
        .into_inner()
        .rules;
    assert_eq!(listed.len(), 5, "{listed:?}");
    assert!(listed.iter().any(|rule| rule.end_time == time(24, 0)));

    // A retry with the same request id returns the same rule.
    let retry = pb::CreateAvailabilityRuleRequest {
        rule: Some(rule(DayOfWeek::Friday, (7, 0), (8, 0), start, None)),
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let first = api
        .create_availability_rule(bearer(retry.clone(), &ana.2))
        .await
        .expect("create")
        .into_inner()
        .rule
        .expect("rule");
    let again = api
        .create_availability_rule(bearer(retry, &ana.2))
        .await
        .expect("retry")
        .into_inner()
        .rule
        .expect("rule");
    assert_eq!(first.id, again.id);

    // Deleting takes the current etag; then the hours are free again.
    let stale = api
        .delete_availability_rule(bearer(
            pb::DeleteAvailabilityRuleRequest {
                rule_id: mornings.id.clone(),
                etag: "\"stale\"".into(),
            },
            &ana.2,
        ))
        .await
        .expect_err("a stale etag");
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    let mornings_id = mornings.id.clone();
    api.delete_availability_rule(bearer(
        pb::DeleteAvailabilityRuleRequest {
            rule_id: mornings.id.clone(),
            etag: mornings.etag.clone(),
        },
        &ana.2,
    ))
    .await
    .expect("delete");
    create_rule(
        &sandbox,
        &ana.2,
        rule(DayOfWeek::Monday, (11, 0), (12, 0), start, None),
    )
    .await
    .expect("the deleted rule's hours are free");
    let gone = api
        .delete_availability_rule(bearer(
            pb::DeleteAvailabilityRuleRequest {
                rule_id: mornings.id,
                etag: String::new(),
            },
            &ana.2,
        ))
        .await
        .expect_err("deleted already");
    assert_eq!(reason(&gone), "AVAILABILITY_RULE_NOT_FOUND");
    // Both changes reached the audit trail through the outbox.
    let mut actions = audited_actions(
        &sandbox,
        &ana.2,
        &ana.0,
        ("availability_rules", &mornings_id),
        2,
    )
    .await;
    actions.sort_unstable();
    assert_eq!(actions, [Action::Create as i32, Action::Delete as i32]);
}

#[tokio::test]
async fn a_slot_is_not_offered_inside_time_off_or_a_booked_appointment_and_extra_hours_add_slots() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    // Ana's tenancy profile says America/Toronto.
    let ana = trainer(&sandbox, "Ana").await;
    let hour_long = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let monday = next_july(Weekday::Mon);
    let saturday = monday + Duration::days(5);
    let next_monday = monday + Duration::days(7);
    create_rule(
        &sandbox,
        &ana.2,
        rule(DayOfWeek::Monday, (9, 0), (12, 0), monday, None),
    )
    .await
    .expect("rule");
    book(&sandbox, &ana.2, &hour_long.id, toronto(monday, 10, 0), "")
        .await
        .expect("book 10:00");
    let day_off = create_exception(
        &sandbox,
        &ana.2,
        pb::AvailabilityException {
            kind: pb::AvailabilityExceptionKind::TimeOff as i32,
            start_date: date(next_monday),
            ..Default::default()
        },
    )
    .await;
    create_exception(
        &sandbox,
        &ana.2,
        pb::AvailabilityException {
            kind: pb::AvailabilityExceptionKind::ExtraHours as i32,
            start_date: date(saturday),
            start_time: time(13, 0),
            end_time: time(14, 30),
            ..Default::default()
        },
    )
    .await;
    let range = (
        toronto(monday, 0, 0),
        toronto(next_monday + Duration::days(1), 0, 0),
    );

    let slots = free_slots(&sandbox, &ana.2, &hour_long.id, range, 0).await;
    assert_eq!(slots.time_zone, "America/Toronto");
    assert_eq!(
        wall_times(&slots),
        [
            wall(monday, "09:00"),
            wall(monday, "11:00"),
            wall(saturday, "13:00"),
            wall(saturday, "13:15"),
            wall(saturday, "13:30"),
        ],
        "the booked hour splits Monday; the day off leaves the next Monday empty"
    );
    let first = &slots.slots[0];
    assert_eq!(first.start_time, at(toronto(monday, 9, 0)), "09:00 EDT");
    assert_eq!(first.end_time, at(toronto(monday, 10, 0)));
    assert!(
        slots
            .slots
            .iter()
            .all(|slot| slot.time_zone == "America/Toronto")
    );

    let buffered = free_slots(&sandbox, &ana.2, &hour_long.id, range, 15).await;
    assert_eq!(
        wall_times(&buffered),
        [
            wall(saturday, "13:00"),
            wall(saturday, "13:15"),
            wall(saturday, "13:30"),
        ],
        "a quarter hour kept clear around the booking leaves no Monday slot"
    );

    // Without the day off, the next Monday opens.
    let mut api = scheduling(&sandbox);
    let exceptions = api
        .list_availability_exceptions(bearer(
            pb::ListAvailabilityExceptionsRequest::default(),
            &ana.2,
        ))
        .await
        .expect("list exceptions")
        .into_inner()
        .exceptions;
    assert_eq!(exceptions.len(), 2);
    api.delete_availability_exception(bearer(
        pb::DeleteAvailabilityExceptionRequest {
            exception_id: day_off.id,
            etag: day_off.etag,
        },
        &ana.2,
    ))
    .await
    .expect("delete the day off");
    let reopened = free_slots(&sandbox, &ana.2, &hour_long.id, range, 0).await;
    let next_monday_slots: Vec<String> = wall_times(&reopened)
        .into_iter()
        .filter(|slot| slot.starts_with(&next_monday.format("%Y-%m-%d").to_string()))
        .collect();
    assert_eq!(
        next_monday_slots.len(),
        9,
        "09:00 to 11:00 by quarter hours"
    );

    // At most 31 days at once.
    let too_long = api
        .list_free_slots(bearer(
            pb::ListFreeSlotsRequest {
                class_type_id: hour_long.id.clone(),
                start_time: at(range.0),
                end_time: at(range.0 + Duration::days(32)),
                ..Default::default()
            },
            &ana.2,
        ))
        .await
        .expect_err("32 days");
    assert_eq!(violated_fields(&too_long), ["end_time"]);
}

#[tokio::test]
async fn another_trainer_reaches_no_rule_exception_or_slot_while_a_supervisor_manages_them() {
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
    let monday = next_july(Weekday::Mon);
    let hour_long = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let anas_rule = create_rule(
        &sandbox,
        &ana.2,
        rule(DayOfWeek::Monday, (9, 0), (12, 0), monday, None),
    )
    .await
    .expect("rule");
    let anas_day_off = create_exception(
        &sandbox,
        &ana.2,
        pb::AvailabilityException {
            kind: pb::AvailabilityExceptionKind::TimeOff as i32,
            start_date: date(monday + Duration::days(7)),
            ..Default::default()
        },
    )
    .await;
    let range = (toronto(monday, 0, 0), toronto(monday, 23, 0));
    let mut api = scheduling(&sandbox);

    let refusals: Vec<(&str, tonic::Status)> = vec![
        (
            "CreateAvailabilityRule",
            api.create_availability_rule(bearer(
                pb::CreateAvailabilityRuleRequest {
                    rule: Some(pb::AvailabilityRule {
                        trainer_id: ana.0.clone(),
                        ..rule(DayOfWeek::Sunday, (9, 0), (10, 0), monday, None)
                    }),
                    request_id: String::new(),
                },
                &sam.2,
            ))
            .await
            .map(|_| ())
            .unwrap_err(),
        ),
        (
            "ListAvailabilityRules",
            api.list_availability_rules(bearer(
                pb::ListAvailabilityRulesRequest {
                    trainer_id: ana.0.clone(),
                    ..Default::default()
                },
                &sam.2,
            ))
            .await
            .map(|_| ())
            .unwrap_err(),
        ),
        (
            "DeleteAvailabilityRule",
            api.delete_availability_rule(bearer(
                pb::DeleteAvailabilityRuleRequest {
                    rule_id: anas_rule.id.clone(),
                    etag: anas_rule.etag.clone(),
                },
                &sam.2,
            ))
            .await
            .map(|_| ())
            .unwrap_err(),
        ),
        (
            "CreateAvailabilityException",
            api.create_availability_exception(bearer(
                pb::CreateAvailabilityExceptionRequest {
                    exception: Some(pb::AvailabilityException {
                        trainer_id: ana.0.clone(),
                        kind: pb::AvailabilityExceptionKind::TimeOff as i32,
                        start_date: date(monday),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &sam.2,
            ))
            .await
            .map(|_| ())
            .unwrap_err(),
        ),
        (
            "ListAvailabilityExceptions",
            api.list_availability_exceptions(bearer(
                pb::ListAvailabilityExceptionsRequest {
                    trainer_id: ana.0.clone(),
                    ..Default::default()
                },
                &sam.2,
            ))
            .await
            .map(|_| ())
            .unwrap_err(),
        ),
        (
            "DeleteAvailabilityException",
            api.delete_availability_exception(bearer(
                pb::DeleteAvailabilityExceptionRequest {
                    exception_id: anas_day_off.id.clone(),
                    etag: anas_day_off.etag.clone(),
                },
                &sam.2,
            ))
            .await
            .map(|_| ())
            .unwrap_err(),
        ),
        (
            "ListFreeSlots (Ana's calendar)",
            api.list_free_slots(bearer(
                pb::ListFreeSlotsRequest {
                    trainer_id: ana.0.clone(),
                    class_type_id: hour_long.id.clone(),
                    start_time: at(range.0),
                    end_time: at(range.1),
                    ..Default::default()
                },
                &sam.2,
            ))
            .await
            .map(|_| ())
            .unwrap_err(),
        ),
        (
            "ListFreeSlots (Ana's class type on Sam's calendar)",
            api.list_free_slots(bearer(
                pb::ListFreeSlotsRequest {
                    class_type_id: hour_long.id.clone(),
                    start_time: at(range.0),
                    end_time: at(range.1),
                    ..Default::default()
                },
                &sam.2,
            ))
            .await
            .map(|_| ())
            .unwrap_err(),
        ),
    ];
    for (rpc, status) in refusals {
        assert_eq!(status.code(), Code::NotFound, "{rpc}: {status:?}");
        for secret in [&ana.0, &anas_rule.id, &anas_day_off.id, &hour_long.id] {
            assert!(
                !status.message().contains(secret.as_str()),
                "{rpc} leaks an id: {}",
                status.message()
            );
        }
    }
    // Sam's own lists hold nothing of Ana's.
    let sams_rules = api
        .list_availability_rules(bearer(pb::ListAvailabilityRulesRequest::default(), &sam.2))
        .await
        .expect("Sam's rules")
        .into_inner()
        .rules;
    let sams_exceptions = api
        .list_availability_exceptions(bearer(
            pb::ListAvailabilityExceptionsRequest::default(),
            &sam.2,
        ))
        .await
        .expect("Sam's exceptions")
        .into_inner()
        .exceptions;
    assert!(sams_rules.is_empty() && sams_exceptions.is_empty());

    // Ana's rule and day off are untouched; her lead sees and manages them.
    let seen_by_lead = api
        .list_availability_rules(bearer(
            pb::ListAvailabilityRulesRequest {
                trainer_id: ana.0.clone(),
                ..Default::default()
            },
            &lead_token,
        ))
        .await
        .expect("the lead lists")
        .into_inner()
        .rules;
    assert_eq!(seen_by_lead.len(), 1);
    assert_eq!(seen_by_lead[0].etag, anas_rule.etag, "unchanged");
    let lead_slots = api
        .list_free_slots(bearer(
            pb::ListFreeSlotsRequest {
                trainer_id: ana.0.clone(),
                class_type_id: hour_long.id.clone(),
                start_time: at(range.0),
                end_time: at(range.1),
                ..Default::default()
            },
            &lead_token,
        ))
        .await
        .expect("the lead asks for Ana's slots")
        .into_inner();
    assert_eq!(lead_slots.time_zone, "America/Toronto");
    assert_eq!(lead_slots.slots.len(), 9, "09:00 to 11:00 by quarter hours");
    api.create_availability_exception(bearer(
        pb::CreateAvailabilityExceptionRequest {
            exception: Some(pb::AvailabilityException {
                trainer_id: ana.0.clone(),
                kind: pb::AvailabilityExceptionKind::ExtraHours as i32,
                start_date: date(monday + Duration::days(1)),
                start_time: time(18, 0),
                end_time: time(19, 0),
                ..Default::default()
            }),
            request_id: String::new(),
        },
        &lead_token,
    ))
    .await
    .expect("the lead adds hours for Ana");
    api.delete_availability_rule(bearer(
        pb::DeleteAvailabilityRuleRequest {
            rule_id: anas_rule.id,
            etag: anas_rule.etag,
        },
        &lead_token,
    ))
    .await
    .expect("the lead deletes Ana's rule");
}

#[tokio::test]
async fn availability_input_is_refused_field_by_field() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let hour_long = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let mut api = scheduling(&sandbox);
    let bad_rule = api
        .create_availability_rule(bearer(
            pb::CreateAvailabilityRuleRequest {
                rule: Some(pb::AvailabilityRule {
                    trainer_id: "ana\u{0}".into(),
                    studio_id: "studio\u{7}".into(),
                    day_of_week: 0,
                    start_time: time(25, 0),
                    end_time: Some(TimeOfDay {
                        hours: 10,
                        minutes: 0,
                        seconds: 30,
                        nanos: 0,
                    }),
                    effective_from: Some(Date {
                        year: 10000,
                        month: 1,
                        day: 1,
                    }),
                    effective_until: Some(Date {
                        year: 2027,
                        month: 2,
                        day: 30,
                    }),
                    ..Default::default()
                }),
                request_id: "not-a-uuid".into(),
            },
            &ana.2,
        ))
        .await
        .expect_err("hostile rule");
    let fields = violated_fields(&bad_rule);
    for field in [
        "request_id",
        "rule.trainer_id",
        "rule.studio_id",
        "rule.day_of_week",
        "rule.start_time",
        "rule.end_time",
        "rule.effective_from",
        "rule.effective_until",
    ] {
        assert!(
            fields.iter().any(|found| found == field),
            "{field} in {fields:?}"
        );
    }
    let monday = next_july(Weekday::Mon);
    let backwards = api
        .create_availability_rule(bearer(
            pb::CreateAvailabilityRuleRequest {
                rule: Some(rule(
                    DayOfWeek::Monday,
                    (22, 0),
                    (6, 0),
                    monday,
                    Some(monday - Duration::days(1)),
                )),
                request_id: String::new(),
            },
            &ana.2,
        ))
        .await
        .expect_err("overnight hours and dates that end before they start");
    assert_eq!(
        violated_fields(&backwards),
        ["rule.end_time", "rule.effective_until"]
    );

    let bad_extra = api
        .create_availability_exception(bearer(
            pb::CreateAvailabilityExceptionRequest {
                exception: Some(pb::AvailabilityException {
                    kind: pb::AvailabilityExceptionKind::ExtraHours as i32,
                    start_date: date(monday),
                    end_date: date(monday - Duration::days(1)),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &ana.2,
        ))
        .await
        .expect_err("extra hours without hours, ending before they start");
    let fields = violated_fields(&bad_extra);
    for field in [
        "exception.start_time",
        "exception.end_time",
        "exception.end_date",
    ] {
        assert!(
            fields.iter().any(|found| found == field),
            "{field} in {fields:?}"
        );
    }
    let bad_time_off = api
        .create_availability_exception(bearer(
            pb::CreateAvailabilityExceptionRequest {
                exception: Some(pb::AvailabilityException {
                    kind: 7,
                    start_date: date(monday),
                    end_date: date(monday + Duration::days(400)),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &ana.2,
        ))
        .await
        .expect_err("an unknown kind over more than a year");
    assert_eq!(
        violated_fields(&bad_time_off),
        ["exception.kind", "exception.end_date"]
    );

    let bad_slots = api
        .list_free_slots(bearer(
            pb::ListFreeSlotsRequest {
                trainer_id: "\u{0}".into(),
                class_type_id: format!("{}\u{1b}", hour_long.id),
                start_time: Some(Timestamp {
                    seconds: i64::MAX,
                    nanos: 0,
                }),
                end_time: None,
                buffer_minutes: 241,
            },
            &ana.2,
        ))
        .await
        .expect_err("hostile slot question");
    let fields = violated_fields(&bad_slots);
    for field in [
        "trainer_id",
        "class_type_id",
        "start_time",
        "end_time",
        "buffer_minutes",
    ] {
        assert!(
            fields.iter().any(|found| found == field),
            "{field} in {fields:?}"
        );
    }
    let backwards = api
        .list_free_slots(bearer(
            pb::ListFreeSlotsRequest {
                class_type_id: hour_long.id.clone(),
                start_time: at(toronto(monday, 12, 0)),
                end_time: at(toronto(monday, 9, 0)),
                buffer_minutes: -1,
                ..Default::default()
            },
            &ana.2,
        ))
        .await
        .expect_err("a range that ends before it starts, a negative buffer");
    assert_eq!(violated_fields(&backwards), ["end_time", "buffer_minutes"]);
}

async fn update_settings(
    sandbox: &Sandbox,
    token: &str,
    settings: pb::SchedulingSettings,
    mask: &[&str],
) -> Result<pb::SchedulingSettings, tonic::Status> {
    scheduling(sandbox)
        .update_scheduling_settings(bearer(
            pb::UpdateSchedulingSettingsRequest {
                settings: Some(settings),
                update_mask: Some(prost_types::FieldMask {
                    paths: mask.iter().map(|path| (*path).to_owned()).collect(),
                }),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().settings.expect("settings"))
}

#[tokio::test]
async fn a_trainer_default_buffer_keeps_slots_clear_unless_the_request_asks_its_own() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let sam = trainer(&sandbox, "Sam").await;
    let hour_long = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    let monday = next_july(Weekday::Mon);
    create_rule(
        &sandbox,
        &ana.2,
        rule(DayOfWeek::Monday, (8, 0), (13, 0), monday, None),
    )
    .await
    .expect("rule");
    book(&sandbox, &ana.2, &hour_long.id, toronto(monday, 10, 0), "")
        .await
        .expect("book 10:00");
    let range = (toronto(monday, 0, 0), toronto(monday, 23, 0));
    let clock =
        |times: &[&str]| -> Vec<String> { times.iter().map(|time| wall(monday, time)).collect() };
    let unbuffered = clock(&[
        "08:00", "08:15", "08:30", "08:45", "09:00", "11:00", "11:15", "11:30", "11:45", "12:00",
    ]);
    let mut api = scheduling(&sandbox);

    let defaults = api
        .get_scheduling_settings(bearer(pb::GetSchedulingSettingsRequest::default(), &ana.2))
        .await
        .expect("get the defaults")
        .into_inner()
        .settings
        .expect("settings");
    assert_eq!(defaults.trainer_id, ana.0);
    assert_eq!(defaults.default_buffer_minutes, 0);
    assert!(defaults.etag.is_empty() && defaults.update_time.is_none());
    assert_eq!(
        wall_times(&free_slots(&sandbox, &ana.2, &hour_long.id, range, 0).await),
        unbuffered
    );

    let half_hour = update_settings(
        &sandbox,
        &ana.2,
        pb::SchedulingSettings {
            default_buffer_minutes: 30,
            ..Default::default()
        },
        &[],
    )
    .await
    .expect("a 30-minute default");
    assert_eq!(half_hour.default_buffer_minutes, 30);
    assert!(!half_hour.etag.is_empty());
    assert_eq!(
        wall_times(&free_slots(&sandbox, &ana.2, &hour_long.id, range, 0).await),
        clock(&["08:00", "08:15", "08:30", "11:30", "11:45", "12:00"]),
        "no buffer asked: half an hour kept clear either side of 10:00-11:00"
    );
    assert_eq!(
        wall_times(&free_slots(&sandbox, &ana.2, &hour_long.id, range, 15).await),
        clock(&[
            "08:00", "08:15", "08:30", "08:45", "11:15", "11:30", "11:45", "12:00"
        ]),
        "the request's quarter hour wins over the default"
    );

    // Rewriting the value held is not a change; a stale etag is refused.
    let same = update_settings(&sandbox, &ana.2, half_hour.clone(), &[])
        .await
        .expect("the same value");
    assert_eq!(same.etag, half_hour.etag, "nothing written");
    let cleared = update_settings(
        &sandbox,
        &ana.2,
        pb::SchedulingSettings {
            etag: half_hour.etag.clone(),
            ..Default::default()
        },
        &["default_buffer_minutes"],
    )
    .await
    .expect("cleared by the mask");
    assert_eq!(cleared.default_buffer_minutes, 0);
    assert_ne!(cleared.etag, half_hour.etag);
    let stale = update_settings(&sandbox, &ana.2, half_hour.clone(), &[])
        .await
        .expect_err("the etag of the 30-minute write");
    assert_eq!(stale.code(), Code::Aborted);
    assert_eq!(reason(&stale), "ETAG_MISMATCH");
    assert_eq!(
        wall_times(&free_slots(&sandbox, &ana.2, &hour_long.id, range, 0).await),
        unbuffered
    );
    let out_of_range = update_settings(
        &sandbox,
        &ana.2,
        pb::SchedulingSettings {
            default_buffer_minutes: 241,
            ..Default::default()
        },
        &[],
    )
    .await
    .expect_err("241 minutes");
    assert_eq!(
        violated_fields(&out_of_range),
        ["settings.default_buffer_minutes"]
    );

    // Another trainer neither reads nor writes them; a peer that is not the
    // gateway or an operator, and a call without a token, are refused.
    let theirs = pb::SchedulingSettings {
        trainer_id: ana.0.clone(),
        default_buffer_minutes: 240,
        ..Default::default()
    };
    let read = api
        .get_scheduling_settings(bearer(
            pb::GetSchedulingSettingsRequest {
                trainer_id: ana.0.clone(),
            },
            &sam.2,
        ))
        .await
        .expect_err("Sam reads Ana's settings");
    assert_eq!(
        (read.code(), reason(&read)),
        (Code::NotFound, "TRAINER_NOT_FOUND".to_owned())
    );
    let written = update_settings(&sandbox, &sam.2, theirs.clone(), &[])
        .await
        .expect_err("Sam writes Ana's settings");
    assert_eq!(
        (written.code(), reason(&written)),
        (Code::NotFound, "TRAINER_NOT_FOUND".to_owned())
    );
    let anonymous = api
        .update_scheduling_settings(pb::UpdateSchedulingSettingsRequest {
            settings: Some(theirs.clone()),
            update_mask: None,
        })
        .await
        .expect_err("no token");
    assert_eq!(reason(&anonymous), "TOKEN_REQUIRED");
    let wrong_peer = pb::scheduling_service_client::SchedulingServiceClient::new(
        sandbox.channel(crate::scheduling::SCHEDULING, "billing"),
    )
    .update_scheduling_settings(bearer(
        pb::UpdateSchedulingSettingsRequest {
            settings: Some(theirs),
            update_mask: None,
        },
        &ana.2,
    ))
    .await
    .expect_err("billing's certificate");
    assert_eq!(reason(&wrong_peer), "PEER_NOT_ALLOWED");
    let kept = api
        .get_scheduling_settings(bearer(pb::GetSchedulingSettingsRequest::default(), &ana.2))
        .await
        .expect("get")
        .into_inner()
        .settings
        .expect("settings");
    assert_eq!(kept.etag, cleared.etag, "no refused write reached the row");

    // Two changes, two UPDATE events (the unchanged write recorded none).
    let actions =
        audited_actions(&sandbox, &ana.2, &ana.0, ("scheduling_settings", &ana.0), 2).await;
    assert_eq!(actions, [Action::Update as i32, Action::Update as i32]);
}
