//! Quick-method rates kept by operators end to end: a rate the seed left out
//! is added (audited, operators with MFA only) and calculations use it at
//! once; a rate a date already has never changes; anyone signed in reads the
//! table; bad fields are refused one by one.

use chrono::{Datelike as _, Duration, Utc};
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::billing as pb;
use fitflow_proto::types::Province;
use tonic::Code;

use crate::billing::{EVERYONE, billing, client_of, day};
use crate::billing_remittances::{calculate, invoiced, request};
use crate::identity_support::{reason, violated_fields};
use crate::tenancy::trainer;

fn quick_rate(
    establishment: pb::QuickMethodRegion,
    supply: pb::QuickMethodRegion,
    percent: &str,
    from: chrono::NaiveDate,
) -> pb::QuickMethodRate {
    pb::QuickMethodRate {
        kind: pb::RemittanceKind::GstHst as i32,
        establishment_region: establishment as i32,
        supply_region: supply as i32,
        percent: percent.into(),
        valid_from: day(from.year(), from.month() as i32, from.day() as i32),
        source: "test: as published".into(),
        ..Default::default()
    }
}

async fn add(
    sandbox: &Sandbox,
    peer: &str,
    token: &str,
    rate: pb::QuickMethodRate,
) -> Result<pb::AddQuickMethodRateResponse, tonic::Status> {
    billing(sandbox, peer)
        .add_quick_method_rate(bearer(
            pb::AddQuickMethodRateRequest { rate: Some(rate) },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn an_operator_adds_a_missing_quick_method_rate_and_never_changes_a_dated_one() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let (operator_user, operator) = sandbox.operator().await;
    let client_id = client_of(&sandbox, &token).await;
    invoiced(&sandbox, &token, &client_id, "1000.00", Province::On).await;

    // Ontario supplies from an Alberta establishment: no rate yet.
    let missing = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "0", Some(Province::Ab)),
    )
    .await
    .expect_err("no rate yet");
    assert_eq!(reason(&missing), "QUICK_METHOD_RATE_MISSING");

    let since_2008 = "2008-01-01".parse().unwrap();
    let np_to_on = quick_rate(
        pb::QuickMethodRegion::NonParticipating,
        pb::QuickMethodRegion::On,
        "8.8",
        since_2008,
    );
    // Only an operator, through the operator peer, with MFA.
    let by_trainer = add(&sandbox, "operator", &token, np_to_on.clone())
        .await
        .expect_err("a trainer adds nothing");
    assert_eq!(by_trainer.code(), Code::PermissionDenied);
    assert_eq!(reason(&by_trainer), "ROLE_REQUIRED");
    let through_gateway = add(
        &sandbox,
        "gateway",
        &operator.access_token,
        np_to_on.clone(),
    )
    .await
    .expect_err("operators only through the operator peer");
    assert_eq!(through_gateway.code(), Code::PermissionDenied);

    // No version of that key yet: it may start in the past.
    let added = add(
        &sandbox,
        "operator",
        &operator.access_token,
        np_to_on.clone(),
    )
    .await
    .expect("the missing rate");
    let rate = added.rate.expect("rate");
    assert_eq!(rate.percent, "8.8");
    assert_eq!(rate.created_by, operator_user.id);
    assert!(rate.valid_until.is_none());
    assert!(added.ended.is_none());

    // 8.8% of 1,130.00 (1,000.00 and 130.00 HST) = 99.44; the 1% credit
    // 11.30 → 88.14.
    let quick = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "0", Some(Province::Ab)),
    )
    .await
    .expect("the rate applies at once");
    assert_eq!(
        quick.net_tax.as_ref().map(|money| money.amount.as_str()),
        Some("88.14")
    );

    // What a date already has never changes: not the same start again,
    // not before today while a version is in force.
    let again = add(&sandbox, "operator", &operator.access_token, np_to_on)
        .await
        .expect_err("the same start");
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(reason(&again), "TAX_RATE_NOT_LATER");
    let yesterday = Utc::now().date_naive() - Duration::days(1);
    let retroactive = add(
        &sandbox,
        "operator",
        &operator.access_token,
        quick_rate(
            pb::QuickMethodRegion::NonParticipating,
            pb::QuickMethodRegion::On,
            "9",
            yesterday,
        ),
    )
    .await
    .expect_err("retroactive");
    assert_eq!(reason(&retroactive), "TAX_RATE_NOT_LATER");
    let next_year = chrono::NaiveDate::from_ymd_opt(Utc::now().year() + 1, 1, 1).unwrap();
    let changed = add(
        &sandbox,
        "operator",
        &operator.access_token,
        quick_rate(
            pb::QuickMethodRegion::NonParticipating,
            pb::QuickMethodRegion::On,
            "9",
            next_year,
        ),
    )
    .await
    .expect("a change from next year");
    let ended = changed.ended.expect("the version it ends");
    assert_eq!(ended.id, rate.id);
    let last_day = next_year - Duration::days(1);
    assert_eq!(
        ended.valid_until,
        day(
            last_day.year(),
            last_day.month() as i32,
            last_day.day() as i32
        )
    );

    // Anyone signed in reads the table: the seed's seven and the two added.
    let listed = billing(&sandbox, "gateway")
        .list_quick_method_rates(bearer(pb::ListQuickMethodRatesRequest {}, &token))
        .await
        .expect("list")
        .into_inner()
        .rates;
    assert_eq!(listed.len(), 9);
    assert_eq!(
        listed
            .iter()
            .filter(|rate| !rate.created_by.is_empty())
            .count(),
        2
    );
    let anonymous = billing(&sandbox, "gateway")
        .list_quick_method_rates(pb::ListQuickMethodRatesRequest {})
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_quick_method_rate_with_bad_fields_is_refused_field_by_field() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, operator) = sandbox.operator().await;
    let bad = pb::QuickMethodRate {
        kind: pb::RemittanceKind::Qst as i32,
        establishment_region: pb::QuickMethodRegion::On as i32,
        supply_region: 99,
        percent: "100.5".into(),
        valid_from: None,
        source: "line\0break".into(),
        ..Default::default()
    };
    let refused = add(&sandbox, "operator", &operator.access_token, bad)
        .await
        .expect_err("bad fields");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let mut fields = violated_fields(&refused);
    fields.sort();
    fields.dedup();
    assert_eq!(
        fields,
        [
            "rate.establishment_region",
            "rate.percent",
            "rate.source",
            "rate.supply_region",
            "rate.valid_from"
        ]
    );
    let gst_in_quebec = pb::QuickMethodRate {
        kind: pb::RemittanceKind::GstHst as i32,
        establishment_region: pb::QuickMethodRegion::Qc as i32,
        supply_region: pb::QuickMethodRegion::NonParticipating as i32,
        percent: "3.6".into(),
        valid_from: day(2030, 1, 1),
        source: "test".into(),
        ..Default::default()
    };
    let refused = add(&sandbox, "operator", &operator.access_token, gst_in_quebec)
        .await
        .expect_err("Quebec is non-participating under the GST");
    assert_eq!(violated_fields(&refused), ["rate.establishment_region"]);
    let missing = add(
        &sandbox,
        "operator",
        &operator.access_token,
        pb::QuickMethodRate::default(),
    )
    .await
    .expect_err("empty");
    assert_eq!(missing.code(), Code::InvalidArgument);
}
