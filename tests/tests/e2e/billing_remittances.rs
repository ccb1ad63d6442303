//! Billing end to end: sales-tax remittances computed from issued invoices
//! and credit notes, checked against hand-computed periods — Ontario HST
//! with a credit note, Quebec GST and QST apart, the quick method and its
//! $400,000 limit — then filed and paid.

use chrono::Datelike as _;
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::billing as pb;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::types::Province;
use tonic::Code;

use crate::billing::{EVERYONE, billing, cad, client_of, credit, day, draft, invoice_line, issue};
use crate::billing_payments::date_of;
use crate::identity_support::{reason, violated_fields};
use crate::tenancy::trainer;

/// This calendar year in the trainers' zone (Toronto): a period that holds
/// every invoice a test issues today.
pub(crate) fn year_period() -> (Option<Date>, Option<Date>) {
    let year = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Toronto)
        .year();
    (day(year, 1, 1), day(year, 12, 31))
}

pub(crate) async fn calculate(
    sandbox: &Sandbox,
    token: &str,
    request: pb::CalculateTaxRemittanceRequest,
) -> Result<pb::TaxRemittance, tonic::Status> {
    billing(sandbox, "gateway")
        .calculate_tax_remittance(bearer(request, token))
        .await
        .map(|response| response.into_inner().remittance.expect("remittance"))
}

fn amount(money: Option<&fitflow_proto::types::Money>) -> &str {
    money.map_or("", |money| money.amount.as_str())
}

/// (gross, taxable, collected, credits, net).
fn figures(remittance: &pb::TaxRemittance) -> [&str; 5] {
    [
        amount(remittance.gross_revenue.as_ref()),
        amount(remittance.taxable_revenue.as_ref()),
        amount(remittance.tax_collected.as_ref()),
        amount(remittance.input_tax_credits.as_ref()),
        amount(remittance.net_tax.as_ref()),
    ]
}

/// Issues an invoice of one line of `price` supplied in `province`.
pub(crate) async fn invoiced(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    price: &str,
    province: Province,
) -> pb::Invoice {
    let drafted = draft(
        sandbox,
        token,
        client_id,
        vec![invoice_line("Personal training", price, province)],
    )
    .await
    .expect("draft");
    issue(sandbox, token, &drafted).await.expect("issue")
}

pub(crate) fn request(
    kind: pb::RemittanceKind,
    credits: &str,
    quick_from: Option<Province>,
) -> pb::CalculateTaxRemittanceRequest {
    let (period_start, period_end) = year_period();
    pb::CalculateTaxRemittanceRequest {
        trainer_id: String::new(),
        kind: kind as i32,
        period_start,
        period_end,
        input_tax_credits: cad(credits),
        quick_method: quick_from.is_some(),
        establishment_province: quick_from.map_or(0, |province| province as i32),
    }
}

#[tokio::test]
async fn an_ontario_hst_remittance_nets_credit_notes_and_input_tax_credits_to_the_cent() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (trainer_id, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    // 1,000.00 (HST 130.00) and 33.33 (HST 4.33); a credit note of 100.00
    // on the first (HST −13.00).
    let first = invoiced(&sandbox, &token, &client_id, "1000.00", Province::On).await;
    invoiced(&sandbox, &token, &client_id, "33.33", Province::On).await;
    credit(
        &sandbox,
        &token,
        &first.id,
        "100.00",
        &uuid::Uuid::now_v7().to_string(),
    )
    .await
    .expect("credit note");
    // Neither a void invoice nor a draft counts.
    let voided = invoiced(&sandbox, &token, &client_id, "50.00", Province::On).await;
    billing(&sandbox, "gateway")
        .void_invoice(bearer(
            pb::VoidInvoiceRequest {
                invoice_id: voided.id.clone(),
                reason: "Billed twice".into(),
                etag: voided.etag.clone(),
            },
            &token,
        ))
        .await
        .expect("void");
    draft(
        &sandbox,
        &token,
        &client_id,
        vec![invoice_line("Not issued", "70", Province::On)],
    )
    .await
    .expect("draft");

    // Gross 1,000.00 + 33.33 − 100.00 = 933.33; collected 130.00 + 4.33
    // − 13.00 = 121.33; ITCs 20.55; owing 100.78.
    let calculated = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "20.55", None),
    )
    .await
    .expect("calculate");
    assert_eq!(calculated.trainer_id, trainer_id);
    assert_eq!(calculated.status, pb::RemittanceStatus::Calculated as i32);
    assert_eq!(
        figures(&calculated),
        ["933.33", "933.33", "121.33", "20.55", "100.78"]
    );
    assert!(!calculated.quick_method && calculated.quick_method_base.is_none());
    let qst = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::Qst, "0", None),
    )
    .await
    .expect("a QST return of Ontario supplies");
    assert_eq!(figures(&qst), ["933.33", "0.00", "0.00", "0.00", "0.00"]);

    // Recalculated while calculated: the same remittance, new credits.
    let recalculated = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "121.33", None),
    )
    .await
    .expect("recalculate");
    assert_eq!(recalculated.id, calculated.id);
    assert_eq!(amount(recalculated.net_tax.as_ref()), "0.00");
    // A period overlapping it with other bounds is refused.
    let (start, _) = year_period();
    let overlapping = calculate(
        &sandbox,
        &token,
        pb::CalculateTaxRemittanceRequest {
            period_end: start.map(|date| Date {
                month: 3,
                day: 31,
                ..date
            }),
            ..request(pb::RemittanceKind::GstHst, "0", None)
        },
    )
    .await
    .expect_err("overlaps");
    assert_eq!(reason(&overlapping), "REMITTANCE_PERIOD_OVERLAPS");

    // Filed, then paid; a filed remittance is never recalculated.
    let today = date_of(chrono::Utc::now().date_naive());
    let client = billing(&sandbox, "gateway");
    let filed = client
        .clone()
        .file_tax_remittance(bearer(
            pb::FileTaxRemittanceRequest {
                remittance_id: calculated.id.clone(),
                filed_on: today,
                reference: "CRA-2026-0001".into(),
                etag: recalculated.etag.clone(),
            },
            &token,
        ))
        .await
        .expect("file")
        .into_inner()
        .remittance
        .expect("remittance");
    assert_eq!(filed.status, pb::RemittanceStatus::Filed as i32);
    assert_eq!(filed.filing_reference, "CRA-2026-0001");
    let after_filing = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "0", None),
    )
    .await
    .expect_err("filed");
    assert_eq!(reason(&after_filing), "REMITTANCE_STATE");
    let early = client
        .clone()
        .mark_tax_remittance_paid(bearer(
            pb::MarkTaxRemittancePaidRequest {
                remittance_id: filed.id.clone(),
                paid_on: start,
                reference: "PAY-1".into(),
                etag: filed.etag.clone(),
            },
            &token,
        ))
        .await
        .expect_err("paid before filing");
    assert_eq!(violated_fields(&early), ["paid_on"]);
    let paid = client
        .clone()
        .mark_tax_remittance_paid(bearer(
            pb::MarkTaxRemittancePaidRequest {
                remittance_id: filed.id.clone(),
                paid_on: today,
                reference: "PAY-1".into(),
                etag: filed.etag.clone(),
            },
            &token,
        ))
        .await
        .expect("pay")
        .into_inner()
        .remittance
        .expect("remittance");
    assert_eq!(paid.status, pb::RemittanceStatus::Paid as i32);
    assert_eq!(paid.paid_on, today);
    let twice = client
        .clone()
        .mark_tax_remittance_paid(bearer(
            pb::MarkTaxRemittancePaidRequest {
                remittance_id: filed.id.clone(),
                paid_on: today,
                reference: "PAY-2".into(),
                etag: paid.etag.clone(),
            },
            &token,
        ))
        .await
        .expect_err("paid once");
    assert_eq!(reason(&twice), "REMITTANCE_STATE");
    let admin = sandbox.db.admin_pool().await;
    let rewrite = sqlx::query("UPDATE billing.tax_remittances SET net_tax = 0 WHERE id = $1::uuid")
        .bind(&paid.id)
        .execute(&admin)
        .await
        .expect_err("the database refuses");
    assert!(rewrite.to_string().contains("never changes"), "{rewrite}");

    let got = client
        .clone()
        .get_tax_remittance(bearer(
            pb::GetTaxRemittanceRequest {
                remittance_id: paid.id.clone(),
            },
            &token,
        ))
        .await
        .expect("get")
        .into_inner()
        .remittance
        .expect("remittance");
    assert_eq!(got, paid);
    let listed = client
        .clone()
        .list_tax_remittances(bearer(
            pb::ListTaxRemittancesRequest {
                page_size: 1,
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.remittances.len(), 1);
    assert_eq!(listed.remittances[0].id, qst.id, "newest first");
    let rest = client
        .clone()
        .list_tax_remittances(bearer(
            pb::ListTaxRemittancesRequest {
                page_size: 1,
                page_token: listed.next_page_token,
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("next page")
        .into_inner();
    assert_eq!(rest.remittances.len(), 1);
    assert_eq!(rest.remittances[0].id, paid.id);
}

#[tokio::test]
async fn a_quebec_supply_remits_gst_to_the_cra_and_qst_to_revenu_quebec_separately() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    // 200.00 in Quebec: GST 10.00, QST 19.95; 33.33: GST 1.67, QST 3.32.
    invoiced(&sandbox, &token, &client_id, "200.00", Province::Qc).await;
    invoiced(&sandbox, &token, &client_id, "33.33", Province::Qc).await;
    let gst = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "1.67", None),
    )
    .await
    .expect("GST/HST");
    assert_eq!(
        figures(&gst),
        ["233.33", "233.33", "11.67", "1.67", "10.00"]
    );
    let qst = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::Qst, "5.00", None),
    )
    .await
    .expect("QST");
    assert_eq!(
        figures(&qst),
        ["233.33", "233.33", "23.27", "5.00", "18.27"]
    );
    assert_ne!(gst.id, qst.id, "two returns, two authorities");
    // Quick method from a Quebec establishment: GST 3.6% of 245.00 (GST
    // included) = 8.82, less the 1% credit on the year's first $30,000
    // (2.45) = 6.37; QST 6.6% of 268.27 (GST and QST included) = 17.70582
    // → 17.71, less 2.68 = 15.03.
    let quick_gst = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "0", Some(Province::Qc)),
    )
    .await
    .expect("quick GST");
    assert_eq!(amount(quick_gst.quick_method_base.as_ref()), "245.00");
    assert_eq!(amount(quick_gst.quick_method_remittance.as_ref()), "8.82");
    assert_eq!(amount(quick_gst.quick_method_credit.as_ref()), "2.45");
    assert_eq!(amount(quick_gst.net_tax.as_ref()), "6.37");
    let quick_qst = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::Qst, "0", Some(Province::Qc)),
    )
    .await
    .expect("quick QST");
    assert_eq!(amount(quick_qst.quick_method_base.as_ref()), "268.27");
    assert_eq!(amount(quick_qst.quick_method_remittance.as_ref()), "17.71");
    assert_eq!(amount(quick_qst.quick_method_credit.as_ref()), "2.68");
    assert_eq!(amount(quick_qst.net_tax.as_ref()), "15.03");
    assert_eq!(quick_qst.establishment_province, Province::Qc as i32);
}

#[tokio::test]
async fn the_quick_method_remits_the_published_rate_and_is_refused_above_400000() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    invoiced(&sandbox, &token, &client_id, "1000.00", Province::On).await;
    invoiced(&sandbox, &token, &client_id, "33.33", Province::On).await;
    // 8.8% of (1,033.33 + 134.33 HST) = 8.8% of 1,167.66 = 102.75408 →
    // 102.75; the 1% credit on it (all within the year's first $30,000)
    // 11.68; capital ITCs 2.75 → 88.32 (HST collected 134.33 is kept).
    let quick = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "2.75", Some(Province::On)),
    )
    .await
    .expect("quick method");
    assert!(quick.quick_method);
    assert_eq!(
        figures(&quick),
        ["1033.33", "1033.33", "134.33", "2.75", "88.32"]
    );
    assert_eq!(amount(quick.quick_method_base.as_ref()), "1167.66");
    assert_eq!(amount(quick.quick_method_remittance.as_ref()), "102.75");
    assert_eq!(amount(quick.quick_method_credit.as_ref()), "11.68");
    // No published rate for Ontario supplies from an Alberta establishment.
    let elsewhere = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "0", Some(Province::Ab)),
    )
    .await
    .expect_err("no rate");
    assert_eq!(elsewhere.code(), Code::FailedPrecondition);
    assert_eq!(reason(&elsewhere), "QUICK_METHOD_RATE_MISSING");

    // Past $400,000 of taxable supplies in four quarters: refused, and the
    // regular method still answers.
    // 1,033.33 + 398,966.67 = 400,000.00: still eligible.
    invoiced(&sandbox, &token, &client_id, "398966.67", Province::On).await;
    calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "0", Some(Province::On)),
    )
    .await
    .expect("at the limit");
    invoiced(&sandbox, &token, &client_id, "0.01", Province::On).await;
    let above = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "0", Some(Province::On)),
    )
    .await
    .expect_err("above the limit");
    assert_eq!(above.code(), Code::FailedPrecondition);
    assert_eq!(reason(&above), "QUICK_METHOD_NOT_ELIGIBLE");
    let regular = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "0", None),
    )
    .await
    .expect("the regular method has no limit");
    assert!(!regular.quick_method);
}

#[tokio::test]
async fn hostile_remittance_requests_are_refused_field_by_field() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let refused = calculate(
        &sandbox,
        &token,
        pb::CalculateTaxRemittanceRequest {
            trainer_id: "not-a-uuid".into(),
            kind: 7,
            period_start: day(2026, 2, 30),
            period_end: None,
            input_tax_credits: cad("-1.00"),
            quick_method: true,
            establishment_province: 99,
        },
    )
    .await
    .expect_err("hostile");
    let mut fields = violated_fields(&refused);
    fields.sort();
    assert_eq!(
        fields,
        [
            "establishment_province",
            "input_tax_credits",
            "kind",
            "period_end",
            "period_start",
            "trainer_id",
        ]
    );
    for (credits, end) in [("1.005", day(2026, 12, 31)), ("1e3", day(2025, 12, 31))] {
        let refused = calculate(
            &sandbox,
            &token,
            pb::CalculateTaxRemittanceRequest {
                input_tax_credits: cad(credits),
                period_start: day(2026, 1, 1),
                period_end: end,
                ..request(pb::RemittanceKind::GstHst, "0", None)
            },
        )
        .await
        .expect_err("bad credits or a reversed period");
        let mut fields = violated_fields(&refused);
        fields.sort();
        let expected: &[&str] = if credits == "1e3" {
            &["input_tax_credits", "period_end"]
        } else {
            &["input_tax_credits"]
        };
        assert_eq!(fields, expected);
    }
    let long = calculate(
        &sandbox,
        &token,
        pb::CalculateTaxRemittanceRequest {
            period_start: day(2025, 1, 1),
            period_end: day(2026, 1, 3),
            ..request(pb::RemittanceKind::GstHst, "0", None)
        },
    )
    .await
    .expect_err("more than a year");
    assert_eq!(violated_fields(&long), ["period_end"]);
    let regular_with_province = calculate(
        &sandbox,
        &token,
        pb::CalculateTaxRemittanceRequest {
            establishment_province: Province::On as i32,
            ..request(pb::RemittanceKind::GstHst, "0", None)
        },
    )
    .await
    .expect_err("a province only with the quick method");
    assert_eq!(
        violated_fields(&regular_with_province),
        ["establishment_province"]
    );
    let remittance = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "0", None),
    )
    .await
    .expect("calculate");
    let file = billing(&sandbox, "gateway")
        .file_tax_remittance(bearer(
            pb::FileTaxRemittanceRequest {
                remittance_id: remittance.id.clone(),
                filed_on: None,
                reference: "CRA\u{0}1".into(),
                etag: String::new(),
            },
            &token,
        ))
        .await
        .expect_err("hostile filing");
    let mut fields = violated_fields(&file);
    fields.sort();
    assert_eq!(fields, ["etag", "filed_on", "reference"]);
    let admin = sandbox.db.admin_pool().await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM billing.tax_remittances")
        .fetch_one(&admin)
        .await
        .expect("count");
    assert_eq!(count, 1, "refused requests write nothing");
}
