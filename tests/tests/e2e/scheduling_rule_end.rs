//! An availability rule ended in place: it stops offering slots after the
//! given local date and keeps its past, audited; ending only shortens, with
//! the rule's etag, and only for whoever acts for its trainer.

use chrono::{Datelike as _, Duration, NaiveDate, TimeZone as _, Utc, Weekday};
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::audit::Action;
use fitflow_proto::google::r#type::DayOfWeek;
use fitflow_proto::scheduling as pb;
use tonic::Code;

use crate::identity_support::{reason, violated_fields};
use crate::scheduling::{EVERYONE, at, class_type, scheduling};
use crate::scheduling_slots::{audited_actions, create_rule, date, rule};
use crate::tenancy::trainer;

async fn end(
    sandbox: &Sandbox,
    token: &str,
    rule: &pb::AvailabilityRule,
    until: NaiveDate,
) -> Result<pb::AvailabilityRule, tonic::Status> {
    scheduling(sandbox)
        .end_availability_rule(bearer(
            pb::EndAvailabilityRuleRequest {
                rule_id: rule.id.clone(),
                effective_until: date(until),
                etag: rule.etag.clone(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().rule.expect("rule"))
}

/// The local dates with a free slot for `class_type_id` in the 31 days
/// from `first` (Toronto).
async fn dates_offered(
    sandbox: &Sandbox,
    token: &str,
    class_type_id: &str,
    first: NaiveDate,
) -> Vec<NaiveDate> {
    let from = chrono_tz::America::Toronto
        .from_local_datetime(&first.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("exists")
        .with_timezone(&Utc);
    let slots = scheduling(sandbox)
        .list_free_slots(bearer(
            pb::ListFreeSlotsRequest {
                class_type_id: class_type_id.into(),
                start_time: at(from),
                end_time: at(from + Duration::days(31)),
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("free slots")
        .into_inner()
        .slots;
    let mut dates: Vec<NaiveDate> = slots
        .iter()
        .map(|slot| {
            let day = slot.local_date.as_ref().expect("date");
            NaiveDate::from_ymd_opt(day.year, day.month as u32, day.day as u32).expect("date")
        })
        .collect();
    dates.dedup();
    dates
}

#[tokio::test]
async fn a_rule_ended_in_place_stops_after_its_last_date_and_only_shortens() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let ana = trainer(&sandbox, "Ana").await;
    let sam = trainer(&sandbox, "Sam").await;
    let hour = class_type(&sandbox, &ana.2, pb::ClassCategory::Individual, 1).await;
    // Mondays 09:00 to 10:00 from the first Monday of July next year.
    let mut monday = NaiveDate::from_ymd_opt(Utc::now().year() + 1, 7, 1).expect("date");
    while monday.weekday() != Weekday::Mon {
        monday += Duration::days(1);
    }
    let mondays = create_rule(
        &sandbox,
        &ana.2,
        rule(DayOfWeek::Monday, (9, 0), (10, 0), monday, None),
    )
    .await
    .expect("rule");
    assert_eq!(
        dates_offered(&sandbox, &ana.2, &hour.id, monday)
            .await
            .len(),
        5,
        "five Mondays in 31 days"
    );

    let before_it_starts = end(&sandbox, &ana.2, &mondays, monday - Duration::days(1))
        .await
        .expect_err("before effective_from");
    assert_eq!(before_it_starts.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&before_it_starts), ["effective_until"]);
    let no_etag = pb::AvailabilityRule {
        etag: String::new(),
        ..mondays.clone()
    };
    let refused = end(&sandbox, &ana.2, &no_etag, monday + Duration::days(7))
        .await
        .expect_err("no etag");
    assert_eq!(violated_fields(&refused), ["etag"]);
    let refused = end(&sandbox, &sam.2, &mondays, monday + Duration::days(7))
        .await
        .expect_err("Sam's is not Ana's");
    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(reason(&refused), "AVAILABILITY_RULE_NOT_FOUND");

    // Ended on the second Monday: two Mondays left of five.
    let ended = end(&sandbox, &ana.2, &mondays, monday + Duration::days(7))
        .await
        .expect("ended");
    assert_eq!(ended.effective_until, date(monday + Duration::days(7)));
    assert_eq!(ended.effective_from, mondays.effective_from);
    assert_ne!(ended.etag, mondays.etag);
    assert_eq!(
        dates_offered(&sandbox, &ana.2, &hour.id, monday).await,
        [monday, monday + Duration::days(7)]
    );
    // The etag read before the end is stale; a later date never extends it.
    let stale = end(&sandbox, &ana.2, &mondays, monday)
        .await
        .expect_err("stale");
    assert_eq!(reason(&stale), "ETAG_MISMATCH");
    let longer = end(&sandbox, &ana.2, &ended, monday + Duration::days(14))
        .await
        .expect_err("ending only shortens");
    assert_eq!(violated_fields(&longer), ["effective_until"]);
    let actions = audited_actions(
        &sandbox,
        &ana.2,
        &ana.0,
        ("availability_rules", &ended.id),
        2,
    )
    .await;
    assert_eq!(actions, [Action::Update as i32, Action::Create as i32]);
}
