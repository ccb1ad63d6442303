//! Billing end to end, first part: the tax table as data and tax quotes from
//! it, over real mTLS — read by anyone signed in, extended only by an
//! operator with MFA, audited, and never changed retroactively.

use chrono::{Datelike as _, Utc};
use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::billing as pb;
use fitflow_proto::billing::billing_service_client::BillingServiceClient;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::types::{Money, Province};
use tonic::Code;
use tonic::transport::Channel;

use crate::identity_support::{reason, violated_fields};
use crate::tenancy::{TENANCY, trainer};

const BILLING: &str = "billing";
const EVERYONE: &[&str] = &[IDENTITY, TENANCY, BILLING, AUDIT];

fn billing(sandbox: &Sandbox, peer: &str) -> BillingServiceClient<Channel> {
    BillingServiceClient::new(sandbox.channel(BILLING, peer))
}

fn day(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

fn cad(amount: &str) -> Option<Money> {
    Some(Money {
        currency_code: "CAD".into(),
        amount: amount.into(),
    })
}

fn line(amount: &str, province: Province) -> pb::QuoteLine {
    pb::QuoteLine {
        amount: cad(amount),
        province: province as i32,
        treatment: 0,
    }
}

async fn quote(
    sandbox: &Sandbox,
    token: &str,
    date: Option<Date>,
    lines: Vec<pb::QuoteLine>,
) -> Result<pb::QuoteTaxResponse, tonic::Status> {
    billing(sandbox, "gateway")
        .quote_tax(bearer(
            pb::QuoteTaxRequest {
                tax_date: date,
                lines,
                registered: true,
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

fn taxes(response: &pb::QuoteTaxResponse) -> Vec<(i32, i32, String)> {
    response
        .taxes
        .iter()
        .map(|tax| {
            (
                tax.province,
                tax.kind,
                tax.amount
                    .as_ref()
                    .map(|m| m.amount.clone())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn quotes_follow_the_seeded_statutory_table_to_the_cent() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;

    let quebec = quote(
        &sandbox,
        &token,
        day(2026, 6, 1),
        vec![line("33.33", Province::Qc)],
    )
    .await
    .expect("quote");
    assert_eq!(
        taxes(&quebec),
        [
            (Province::Qc as i32, pb::TaxKind::Gst as i32, "1.67".into()),
            (Province::Qc as i32, pb::TaxKind::Qst as i32, "3.32".into()),
        ]
    );
    assert_eq!(quebec.total.unwrap().amount, "38.32");
    let ontario = quote(
        &sandbox,
        &token,
        day(2026, 6, 1),
        vec![line("33.33", Province::On); 3],
    )
    .await
    .expect("quote");
    assert_eq!(
        taxes(&ontario),
        [(Province::On as i32, pb::TaxKind::Hst as i32, "13.00".into())]
    );
    for (date, expected) in [(day(2025, 3, 31), "15.00"), (day(2025, 4, 1), "14.00")] {
        let nova_scotia = quote(&sandbox, &token, date, vec![line("100", Province::Ns)])
            .await
            .expect("quote");
        assert_eq!(
            taxes(&nova_scotia),
            [(
                Province::Ns as i32,
                pb::TaxKind::Hst as i32,
                expected.into()
            )]
        );
    }
    let credit = quote(
        &sandbox,
        &token,
        day(2026, 6, 1),
        vec![line("-0.10", Province::Ab)],
    )
    .await
    .expect("a credit note's line");
    assert_eq!(
        taxes(&credit),
        [(Province::Ab as i32, pb::TaxKind::Gst as i32, "-0.01".into())]
    );
    let before = quote(
        &sandbox,
        &token,
        day(1990, 1, 1),
        vec![line("1", Province::Ab)],
    )
    .await
    .expect_err("before the table starts");
    assert_eq!(before.code(), Code::FailedPrecondition);
    assert_eq!(reason(&before), "NO_TAX_RATE");
}

#[tokio::test]
async fn hostile_quotes_are_refused_field_by_field() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let refused = quote(
        &sandbox,
        &token,
        day(-5000, 13, 1),
        vec![
            pb::QuoteLine {
                amount: Some(Money {
                    currency_code: "USD".into(),
                    amount: "1".into(),
                }),
                province: 99,
                treatment: 7,
            },
            line("1.005", Province::On),
            line("1e3", Province::On),
            line("NaN", Province::On),
            line("99999999999", Province::On),
        ],
    )
    .await
    .expect_err("hostile");
    assert_eq!(
        violated_fields(&refused),
        [
            "tax_date",
            "lines[0].amount",
            "lines[0].province",
            "lines[0].treatment",
            "lines[1].amount",
            "lines[2].amount",
            "lines[3].amount",
            "lines[4].amount",
        ]
    );
    let empty = quote(&sandbox, &token, day(2026, 1, 1), Vec::new())
        .await
        .expect_err("no lines");
    assert_eq!(violated_fields(&empty), ["lines"]);
    let flood = quote(
        &sandbox,
        &token,
        day(2026, 1, 1),
        vec![line("1", Province::On); 501],
    )
    .await
    .expect_err("too many lines");
    assert_eq!(violated_fields(&flood), ["lines"]);
    let anonymous = billing(&sandbox, "gateway")
        .list_tax_rates(pb::ListTaxRatesRequest {})
        .await
        .expect_err("a token is required");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
}

fn rate(province: Province, kind: pb::TaxKind, percent: &str, from: Option<Date>) -> pb::TaxRate {
    pb::TaxRate {
        province: province as i32,
        kind: kind as i32,
        percent: percent.into(),
        valid_from: from,
        applies_to_services: true,
        source: "Budget 2027, Notice of Ways and Means Motion".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn only_an_operator_with_mfa_adds_a_rate_and_never_retroactively() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, trainer_token) = trainer(&sandbox, "Ana").await;
    let (operator_user, operator) = sandbox.operator().await;
    let next_year = Utc::now().year() + 1;
    let change = rate(Province::On, pb::TaxKind::Hst, "12", day(next_year, 7, 1));

    let by_trainer = billing(&sandbox, "gateway")
        .add_tax_rate(bearer(
            pb::AddTaxRateRequest {
                rate: Some(change.clone()),
            },
            &trainer_token,
        ))
        .await
        .expect_err("the gateway may not call it");
    assert_eq!(by_trainer.code(), Code::PermissionDenied);
    let trainer_as_operator_peer = billing(&sandbox, "operator")
        .add_tax_rate(bearer(
            pb::AddTaxRateRequest {
                rate: Some(change.clone()),
            },
            &trainer_token,
        ))
        .await
        .expect_err("a trainer is not an operator");
    assert_eq!(trainer_as_operator_peer.code(), Code::PermissionDenied);
    assert_eq!(reason(&trainer_as_operator_peer), "ROLE_REQUIRED");

    let retroactive = billing(&sandbox, "operator")
        .add_tax_rate(bearer(
            pb::AddTaxRateRequest {
                rate: Some(rate(Province::On, pb::TaxKind::Hst, "12", day(2024, 1, 1))),
            },
            &operator.access_token,
        ))
        .await
        .expect_err("never retroactive");
    assert_eq!(reason(&retroactive), "TAX_RATE_NOT_LATER");
    let malformed = billing(&sandbox, "operator")
        .add_tax_rate(bearer(
            pb::AddTaxRateRequest {
                rate: Some(pb::TaxRate {
                    source: "x\0".into(),
                    ..rate(
                        Province::Qc,
                        pb::TaxKind::Gst,
                        "101.5",
                        day(next_year, 2, 30),
                    )
                }),
            },
            &operator.access_token,
        ))
        .await
        .expect_err("malformed");
    assert_eq!(
        violated_fields(&malformed),
        [
            "rate.province",
            "rate.percent",
            "rate.valid_from",
            "rate.source"
        ]
    );

    let added = billing(&sandbox, "operator")
        .add_tax_rate(bearer(
            pb::AddTaxRateRequest {
                rate: Some(change.clone()),
            },
            &operator.access_token,
        ))
        .await
        .expect("an operator adds a version")
        .into_inner();
    let ended = added.ended.expect("the 13% version ends");
    assert_eq!(ended.percent, "13");
    assert_eq!(ended.valid_until, day(next_year, 6, 30));
    assert_eq!(added.rate.expect("added").created_by, operator_user.id);
    let twice = billing(&sandbox, "operator")
        .add_tax_rate(bearer(
            pb::AddTaxRateRequest { rate: Some(change) },
            &operator.access_token,
        ))
        .await
        .expect_err("the same start again");
    assert_eq!(reason(&twice), "TAX_RATE_NOT_LATER");

    // Quotes on each side of the change.
    for (date, expected) in [
        (day(next_year, 6, 30), "13.00"),
        (day(next_year, 7, 1), "12.00"),
    ] {
        let response = quote(
            &sandbox,
            &trainer_token,
            date,
            vec![line("100", Province::On)],
        )
        .await
        .expect("quote");
        assert_eq!(
            taxes(&response),
            [(
                Province::On as i32,
                pb::TaxKind::Hst as i32,
                expected.into()
            )]
        );
    }
    let rates = billing(&sandbox, "gateway")
        .list_tax_rates(bearer(pb::ListTaxRatesRequest {}, &trainer_token))
        .await
        .expect("list")
        .into_inner()
        .rates;
    assert_eq!(rates.len(), 12, "eleven seeded versions and one added");
    assert_eq!(rates[0].kind, pb::TaxKind::Gst as i32, "federal first");

    // The change is in the audit trail.
    let admin = sandbox.db.admin_pool().await;
    let mut found = false;
    for _ in 0..100 {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM audit.audit_log \
             WHERE source_service = 'billing' AND resource_type = 'tax_rates'",
        )
        .fetch_one(&admin)
        .await
        .expect("count");
        if count == 1 {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(found, "the new rate is audited");
}
