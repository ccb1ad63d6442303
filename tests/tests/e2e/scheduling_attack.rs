//! Availability attacked: rules and exceptions at the edges of the calendar,
//! free slots asked for the first and last days PostgreSQL and the contracts
//! hold, and page tokens forged or taken from another list or trainer.
//! Whatever the input, no RPC answers INTERNAL.

use chrono::{DateTime, NaiveDate, Utc};
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::google::r#type::DayOfWeek;
use fitflow_proto::scheduling as pb;
use prost_types::Timestamp;
use tonic::Code;

use crate::identity_support::violated_fields;
use crate::scheduling::{EVERYONE, at, class_type, scheduling};
use crate::scheduling_slots::{create_exception, create_rule, date, rule};
use crate::tenancy::trainer;

fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("date")
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("instant")
        .with_timezone(&Utc)
}

async fn slots(
    sandbox: &Sandbox,
    token: &str,
    class_type_id: &str,
    start_time: Option<Timestamp>,
    end_time: Option<Timestamp>,
) -> Result<pb::ListFreeSlotsResponse, tonic::Status> {
    scheduling(sandbox)
        .list_free_slots(bearer(
            pb::ListFreeSlotsRequest {
                class_type_id: class_type_id.into(),
                start_time,
                end_time,
                ..Default::default()
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn availability_at_the_edges_of_the_calendar_is_kept_or_refused_and_never_internal() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let hour_long = class_type(&sandbox, &ana.2, pb::ClassCategory::Group, 10).await;
    // 9999-12-31, the last day a google.type.Date holds, is a Friday.
    let last = create_rule(
        &sandbox,
        &ana.2,
        rule(
            DayOfWeek::Friday,
            (0, 0),
            (24, 0),
            ymd(9999, 12, 27),
            Some(ymd(9999, 12, 31)),
        ),
    )
    .await
    .expect("a rule on the last day");
    assert_eq!(last.effective_until, date(ymd(9999, 12, 31)));
    create_rule(
        &sandbox,
        &ana.2,
        rule(DayOfWeek::Monday, (9, 0), (10, 0), ymd(1, 1, 1), None),
    )
    .await
    .expect("a rule from the first day, never ending");
    create_exception(
        &sandbox,
        &ana.2,
        pb::AvailabilityException {
            kind: pb::AvailabilityExceptionKind::TimeOff as i32,
            start_date: date(ymd(9999, 1, 1)),
            end_date: date(ymd(9999, 12, 31)),
            ..Default::default()
        },
    )
    .await;
    for (from, to) in [
        // The last day and a half of the calendar.
        ("9999-12-30T12:00:00Z", "9999-12-31T23:59:59Z"),
        // Long ago: nothing before now is offered.
        ("0001-01-01T00:00:00Z", "0001-01-31T00:00:00Z"),
    ] {
        let answered = slots(&sandbox, &ana.2, &hour_long.id, at(utc(from)), at(utc(to)))
            .await
            .unwrap_or_else(|status| panic!("{from}..{to}: {status:?}"));
        assert!(answered.slots.is_empty(), "{from}: {answered:?}");
    }
    for (from, to) in [
        // Reversed.
        (
            at(utc("2030-01-02T00:00:00Z")),
            at(utc("2030-01-01T00:00:00Z")),
        ),
        // Empty.
        (
            at(utc("2030-01-01T00:00:00Z")),
            at(utc("2030-01-01T00:00:00Z")),
        ),
        // Enormous.
        (
            at(utc("2030-01-01T00:00:00Z")),
            at(utc("9999-12-31T23:59:59Z")),
        ),
    ] {
        let refused = slots(&sandbox, &ana.2, &hour_long.id, from, to)
            .await
            .expect_err("a range of no or too many days");
        assert_eq!(violated_fields(&refused), ["end_time"], "{from:?}..{to:?}");
    }
    for (from, to) in [
        // Past the year 9999 and before the year 1.
        (
            Some(Timestamp {
                seconds: 253_402_300_800,
                nanos: 0,
            }),
            Some(Timestamp {
                seconds: 253_402_300_900,
                nanos: 0,
            }),
        ),
        (
            Some(Timestamp {
                seconds: -62_135_596_801,
                nanos: 0,
            }),
            at(utc("0001-01-02T00:00:00Z")),
        ),
        (
            at(utc("2030-01-01T00:00:00Z")),
            Some(Timestamp {
                seconds: 1_893_456_000,
                nanos: -1,
            }),
        ),
    ] {
        let refused = slots(&sandbox, &ana.2, &hour_long.id, from, to)
            .await
            .expect_err("an instant out of range");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    }
    for (from, until) in [
        (ymd(2030, 1, 1), Some(ymd(2029, 12, 31))),
        (ymd(9999, 12, 31), Some(ymd(1, 1, 1))),
    ] {
        let refused = create_rule(
            &sandbox,
            &ana.2,
            rule(DayOfWeek::Tuesday, (9, 0), (10, 0), from, until),
        )
        .await
        .expect_err("dates that end before they start");
        assert_eq!(violated_fields(&refused), ["rule.effective_until"]);
    }
}

async fn rules_page(
    sandbox: &Sandbox,
    token: &str,
    trainer_id: &str,
    page_token: &str,
) -> Result<pb::ListAvailabilityRulesResponse, tonic::Status> {
    scheduling(sandbox)
        .list_availability_rules(bearer(
            pb::ListAvailabilityRulesRequest {
                trainer_id: trainer_id.into(),
                page_size: 1,
                page_token: page_token.into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn exceptions_page(
    sandbox: &Sandbox,
    token: &str,
    page_token: &str,
) -> Result<pb::ListAvailabilityExceptionsResponse, tonic::Status> {
    scheduling(sandbox)
        .list_availability_exceptions(bearer(
            pb::ListAvailabilityExceptionsRequest {
                trainer_id: String::new(),
                page_size: 1,
                page_token: page_token.into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn availability_page_tokens_forged_or_from_another_list_or_trainer_are_refused() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let ben = trainer(&sandbox, "Ben").await;
    for (who, day) in [(&ana, DayOfWeek::Monday), (&ana, DayOfWeek::Tuesday)] {
        create_rule(
            &sandbox,
            &who.2,
            rule(day, (9, 0), (10, 0), ymd(2030, 1, 1), None),
        )
        .await
        .expect("rule");
    }
    for day in [1, 2] {
        create_exception(
            &sandbox,
            &ana.2,
            pb::AvailabilityException {
                kind: pb::AvailabilityExceptionKind::TimeOff as i32,
                start_date: date(ymd(2030, 2, day)),
                ..Default::default()
            },
        )
        .await;
    }
    let rules_token = rules_page(&sandbox, &ana.2, "", "")
        .await
        .expect("rules")
        .next_page_token;
    let exceptions_token = exceptions_page(&sandbox, &ana.2, "")
        .await
        .expect("exceptions")
        .next_page_token;
    assert!(!rules_token.is_empty() && !exceptions_token.is_empty());
    let second = rules_page(&sandbox, &ana.2, "", &rules_token)
        .await
        .expect("the second page where the token was issued");
    assert_eq!(second.rules.len(), 1);

    let mut tampered = rules_token.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let refusals = [
        // The exceptions' token on the rules.
        rules_page(&sandbox, &ana.2, "", &exceptions_token).await,
        // Ana's token with her id spelt out: another filter.
        rules_page(&sandbox, &ana.2, &ana.0, &rules_token).await,
        // Ana's token sent by Ben, for his own rules or hers.
        rules_page(&sandbox, &ben.2, "", &rules_token).await,
        rules_page(&sandbox, &ben.2, &ana.0, &rules_token).await,
        rules_page(&sandbox, &ana.2, "", &tampered).await,
        rules_page(&sandbox, &ana.2, "", "\0\u{1b}").await,
    ];
    for refused in refusals {
        let status = refused.expect_err("a token from elsewhere");
        assert_eq!(violated_fields(&status), ["page_token"], "{status:?}");
    }
    let status = exceptions_page(&sandbox, &ana.2, &rules_token)
        .await
        .expect_err("the rules' token on the exceptions");
    assert_eq!(violated_fields(&status), ["page_token"], "{status:?}");
}
