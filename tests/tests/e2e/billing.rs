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

use crate::clients::{create, full_client};
use crate::identity_support::{reason, violated_fields};
use crate::tenancy::{TENANCY, member, trainer};

pub(crate) const BILLING: &str = "billing";
const CLIENTS: &str = "clients";
pub(crate) const EVERYONE: &[&str] = &[IDENTITY, TENANCY, CLIENTS, BILLING, AUDIT];

pub(crate) fn billing(sandbox: &Sandbox, peer: &str) -> BillingServiceClient<Channel> {
    BillingServiceClient::new(sandbox.channel(BILLING, peer))
}

pub(crate) fn day(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

pub(crate) fn cad(amount: &str) -> Option<Money> {
    Some(Money {
        currency_code: "CAD".into(),
        amount: amount.into(),
    })
}

pub(crate) fn line(amount: &str, province: Province) -> pb::QuoteLine {
    pb::QuoteLine {
        amount: cad(amount),
        province: province as i32,
        treatment: 0,
    }
}

pub(crate) async fn quote(
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

pub(crate) fn rate(
    province: Province,
    kind: pb::TaxKind,
    percent: &str,
    from: Option<Date>,
) -> pb::TaxRate {
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

pub(crate) fn invoice_line(description: &str, price: &str, province: Province) -> pb::InvoiceLine {
    pb::InvoiceLine {
        description: description.into(),
        quantity: String::new(),
        unit_price: cad(price),
        province: province as i32,
        ..Default::default()
    }
}

pub(crate) async fn draft(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    lines: Vec<pb::InvoiceLine>,
) -> Result<pb::Invoice, tonic::Status> {
    billing(sandbox, "gateway")
        .create_invoice(bearer(
            pb::CreateInvoiceRequest {
                invoice: Some(pb::Invoice {
                    client_id: client_id.into(),
                    lines,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().invoice.expect("invoice"))
}

pub(crate) async fn issue(
    sandbox: &Sandbox,
    token: &str,
    invoice: &pb::Invoice,
) -> Result<pb::Invoice, tonic::Status> {
    billing(sandbox, "gateway")
        .issue_invoice(bearer(
            pb::IssueInvoiceRequest {
                invoice_id: invoice.id.clone(),
                etag: invoice.etag.clone(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().invoice.expect("invoice"))
}

pub(crate) async fn client_of(sandbox: &Sandbox, token: &str) -> String {
    create(sandbox, token, full_client("Zoé", "Roy", "", ""))
        .await
        .expect("client")
        .id
}

#[tokio::test]
async fn an_issued_invoice_is_numbered_taxed_as_of_its_date_and_never_changes() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (trainer_id, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    let mut lines = vec![invoice_line("Personal training, 60 min", "33.33", Province::On); 3];
    lines.push(pb::InvoiceLine {
        quantity: "2".into(),
        ..invoice_line("Online session (client in Quebec)", "16.665", Province::Qc)
    });
    let refused = draft(&sandbox, &token, &client_id, lines.clone())
        .await
        .expect_err("a price with three decimals");
    assert_eq!(violated_fields(&refused), ["invoice.lines[3].unit_price"]);
    lines[3].unit_price = cad("16.67");
    let drafted = draft(&sandbox, &token, &client_id, lines)
        .await
        .expect("draft");
    assert_eq!(drafted.status, pb::InvoiceStatus::Draft as i32);
    assert!(drafted.number.is_empty() && drafted.taxes.is_empty());
    assert_eq!(drafted.subtotal.as_ref().unwrap().amount, "133.33");
    assert_eq!(drafted.issuer_id, trainer_id);

    let issued = issue(&sandbox, &token, &drafted).await.expect("issue");
    let year = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Toronto)
        .year();
    assert_eq!(issued.number, format!("{year}-000001"));
    assert_eq!(issued.status, pb::InvoiceStatus::Issued as i32);
    assert!(issued.tax_registered);
    assert_eq!(issued.gst_hst_number, "123456782RT0001");
    let taxes: Vec<(i32, i32, String)> = issued
        .taxes
        .iter()
        .map(|tax| (tax.province, tax.kind, tax.amount.clone().unwrap().amount))
        .collect();
    assert_eq!(
        taxes,
        [
            (Province::On as i32, pb::TaxKind::Hst as i32, "13.00".into()),
            (Province::Qc as i32, pb::TaxKind::Gst as i32, "1.67".into()),
            (Province::Qc as i32, pb::TaxKind::Qst as i32, "3.33".into()),
        ]
    );
    assert_eq!(issued.tax_total.as_ref().unwrap().amount, "18.00");
    assert_eq!(issued.total.as_ref().unwrap().amount, "151.33");
    let (date, due) = (issued.invoice_date.unwrap(), issued.due_date.unwrap());
    let date =
        chrono::NaiveDate::from_ymd_opt(date.year, date.month as u32, date.day as u32).unwrap();
    let due = chrono::NaiveDate::from_ymd_opt(due.year, due.month as u32, due.day as u32).unwrap();
    assert_eq!((due - date).num_days(), 30, "30 days' terms by default");

    // Never changes: not through the API, not even as the schema's owner.
    let edit = billing(&sandbox, "gateway")
        .update_invoice(bearer(
            pb::UpdateInvoiceRequest {
                invoice: Some(pb::Invoice {
                    id: issued.id.clone(),
                    lines: vec![invoice_line("Rewritten", "1", Province::On)],
                    ..Default::default()
                }),
                etag: issued.etag.clone(),
            },
            &token,
        ))
        .await
        .expect_err("issued");
    assert_eq!(reason(&edit), "INVOICE_STATE");
    let again = issue(&sandbox, &token, &issued)
        .await
        .expect_err("issued once");
    assert_eq!(reason(&again), "INVOICE_STATE");
    let admin = sandbox.db.admin_pool().await;
    let rewrite = sqlx::query("UPDATE billing.invoices SET notes = 'x' WHERE id = $1::uuid")
        .bind(&issued.id)
        .execute(&admin)
        .await
        .expect_err("the database refuses");
    assert!(rewrite.to_string().contains("never changes"), "{rewrite}");
    let line_rewrite =
        sqlx::query("UPDATE billing.invoice_lines SET unit_price = 0 WHERE invoice_id = $1::uuid")
            .bind(&issued.id)
            .execute(&admin)
            .await
            .expect_err("the database refuses");
    assert!(
        line_rewrite.to_string().contains("never change"),
        "{line_rewrite}"
    );

    // Void keeps the number.
    let voided = billing(&sandbox, "gateway")
        .void_invoice(bearer(
            pb::VoidInvoiceRequest {
                invoice_id: issued.id.clone(),
                reason: "Billed twice".into(),
                etag: issued.etag.clone(),
            },
            &token,
        ))
        .await
        .expect("void")
        .into_inner()
        .invoice
        .unwrap();
    assert_eq!(voided.status, pb::InvoiceStatus::Void as i32);
    assert_eq!(voided.number, issued.number);
    let listed = billing(&sandbox, "gateway")
        .list_invoices(bearer(pb::ListInvoicesRequest::default(), &token))
        .await
        .expect("list")
        .into_inner()
        .invoices;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].lines.len(), 4);
}

#[tokio::test]
async fn a_hundred_concurrent_issues_take_numbers_one_to_a_hundred_and_a_failed_issue_takes_none() {
    let sandbox = std::sync::Arc::new(Sandbox::new().await);
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    let mut drafts = Vec::new();
    for _ in 0..100 {
        drafts.push(
            draft(
                &sandbox,
                &token,
                &client_id,
                vec![invoice_line("Session", "85", Province::On)],
            )
            .await
            .expect("draft"),
        );
    }
    let mut tasks = Vec::new();
    for invoice in drafts {
        let (sandbox, token) = (std::sync::Arc::clone(&sandbox), token.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                match issue(&sandbox, &token, &invoice).await {
                    Ok(issued) => return issued.number,
                    // Under this load the pool may refuse; a retry is safe.
                    Err(status) if status.code() == Code::Unavailable => {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    Err(status) => panic!("issue: {status:?}"),
                }
            }
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        let number = task.await.expect("task");
        let (_, sequence) = number.split_once('-').expect("YYYY-NNNNNN");
        numbers.push(sequence.parse::<u32>().expect("digits"));
    }
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (1..=100).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );

    // A failure inside the issuing transaction, after the number is taken,
    // gives the number back.
    let admin = sandbox.db.admin_pool().await;
    sqlx::query(
        "CREATE FUNCTION billing.poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.notes = 'poison' AND NEW.status = 'issued' THEN \
         RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$",
    )
    .execute(&admin)
    .await
    .expect("a failing trigger");
    sqlx::query(
        "CREATE TRIGGER poison BEFORE UPDATE ON billing.invoices \
         FOR EACH ROW EXECUTE FUNCTION billing.poison()",
    )
    .execute(&admin)
    .await
    .expect("installed");
    let poisoned = billing(&sandbox, "gateway")
        .create_invoice(bearer(
            pb::CreateInvoiceRequest {
                invoice: Some(pb::Invoice {
                    client_id: client_id.clone(),
                    lines: vec![invoice_line("Session", "85", Province::On)],
                    notes: "poison".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &token,
        ))
        .await
        .expect("draft")
        .into_inner()
        .invoice
        .unwrap();
    issue(&sandbox, &token, &poisoned)
        .await
        .expect_err("the injected failure");
    let next = draft(
        &sandbox,
        &token,
        &client_id,
        vec![invoice_line("Session", "85", Province::On)],
    )
    .await
    .expect("draft");
    let issued = issue(&sandbox, &token, &next).await.expect("issue");
    assert!(issued.number.ends_with("-000101"), "{}", issued.number);
}

#[tokio::test]
async fn another_trainer_reaches_no_invoice_and_bills_no_client_of_someone_else() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (owner_id, _, owner) = trainer(&sandbox, "Ana").await;
    let (_, _, stranger) = trainer(&sandbox, "Sam").await;
    let client_id = client_of(&sandbox, &owner).await;
    let invoice = draft(
        &sandbox,
        &owner,
        &client_id,
        vec![invoice_line("Session", "85", Province::On)],
    )
    .await
    .expect("draft");

    let theirs = draft(
        &sandbox,
        &stranger,
        &client_id,
        vec![invoice_line("Session", "85", Province::On)],
    )
    .await
    .expect_err("not their client");
    assert_eq!(reason(&theirs), "CLIENT_NOT_FOUND");
    let get = billing(&sandbox, "gateway")
        .get_invoice(bearer(
            pb::GetInvoiceRequest {
                invoice_id: invoice.id.clone(),
            },
            &stranger,
        ))
        .await
        .expect_err("not theirs");
    assert_eq!(reason(&get), "INVOICE_NOT_FOUND");
    let issued = issue(&sandbox, &stranger, &invoice)
        .await
        .expect_err("not theirs");
    assert_eq!(reason(&issued), "INVOICE_NOT_FOUND");
    let voided = billing(&sandbox, "gateway")
        .void_invoice(bearer(
            pb::VoidInvoiceRequest {
                invoice_id: invoice.id.clone(),
                reason: "attack".into(),
                etag: invoice.etag.clone(),
            },
            &stranger,
        ))
        .await
        .expect_err("not theirs");
    assert_eq!(reason(&voided), "INVOICE_NOT_FOUND");
    let listed = billing(&sandbox, "gateway")
        .list_invoices(bearer(
            pb::ListInvoicesRequest {
                issuer_id: owner_id.clone(),
                ..Default::default()
            },
            &stranger,
        ))
        .await
        .expect_err("another issuer");
    assert_eq!(reason(&listed), "TRAINER_NOT_FOUND");
    let own = billing(&sandbox, "gateway")
        .list_invoices(bearer(pb::ListInvoicesRequest::default(), &stranger))
        .await
        .expect("their own list")
        .into_inner();
    assert!(own.invoices.is_empty());

    // A trainer without a tax profile cannot issue: whether to charge tax
    // is unknown.
    let (_, _, bare) = member(&sandbox, "Bea").await;
    let bare_client = client_of(&sandbox, &bare).await;
    let bare_invoice = draft(
        &sandbox,
        &bare,
        &bare_client,
        vec![invoice_line("Session", "85", Province::On)],
    )
    .await
    .expect("draft");
    let no_profile = issue(&sandbox, &bare, &bare_invoice)
        .await
        .expect_err("no tax profile");
    assert_eq!(reason(&no_profile), "TAX_PROFILE_REQUIRED");
}

#[tokio::test]
async fn a_hostile_draft_is_refused_field_by_field_and_writes_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    let refused = billing(&sandbox, "gateway")
        .create_invoice(bearer(
            pb::CreateInvoiceRequest {
                invoice: Some(pb::Invoice {
                    client_id: client_id.clone(),
                    issuer_id: "\0".into(),
                    payment_terms_days: 121,
                    notes: "bell\u{7}".into(),
                    lines: vec![
                        pb::InvoiceLine {
                            description: "nul\0".into(),
                            quantity: "0".into(),
                            unit_price: cad("-1"),
                            province: 99,
                            treatment: 9,
                            ..Default::default()
                        },
                        pb::InvoiceLine {
                            quantity: "1e3".into(),
                            ..invoice_line("Session", "9999999999.99", Province::On)
                        },
                        pb::InvoiceLine {
                            quantity: "10000".into(),
                            ..invoice_line("Session", "9999999999.99", Province::On)
                        },
                    ],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &token,
        ))
        .await
        .expect_err("hostile");
    assert_eq!(
        violated_fields(&refused),
        [
            "invoice.issuer_id",
            "invoice.payment_terms_days",
            "invoice.notes",
            "invoice.lines[0].description",
            "invoice.lines[0].quantity",
            "invoice.lines[0].unit_price",
            "invoice.lines[0].province",
            "invoice.lines[0].treatment",
            "invoice.lines[1].quantity",
            "invoice.lines[2].unit_price",
        ]
    );
    let too_many = draft(
        &sandbox,
        &token,
        &client_id,
        vec![invoice_line("Session", "1", Province::On); 201],
    )
    .await
    .expect_err("too many lines");
    assert_eq!(violated_fields(&too_many), ["invoice.lines"]);
    let listed = billing(&sandbox, "gateway")
        .list_invoices(bearer(pb::ListInvoicesRequest::default(), &token))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.invoices.is_empty(), "nothing was written");
    let forged = billing(&sandbox, "gateway")
        .list_invoices(bearer(
            pb::ListInvoicesRequest {
                page_token: "forged".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect_err("a forged page token");
    assert_eq!(violated_fields(&forged), ["page_token"]);
}

pub(crate) async fn credit(
    sandbox: &Sandbox,
    token: &str,
    invoice_id: &str,
    amount: &str,
    request_id: &str,
) -> Result<pb::Invoice, tonic::Status> {
    billing(sandbox, "gateway")
        .issue_credit_note(bearer(
            pb::IssueCreditNoteRequest {
                invoice_id: invoice_id.into(),
                lines: vec![invoice_line("Session not held", amount, Province::On)],
                notes: "Refund of a cancelled session".into(),
                request_id: request_id.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().credit_note.expect("credit note"))
}

#[tokio::test]
async fn a_credit_note_corrects_an_issued_invoice_with_its_own_number_and_mirrored_tax() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    let drafted = draft(
        &sandbox,
        &token,
        &client_id,
        vec![invoice_line("Personal training", "33.33", Province::On); 3],
    )
    .await
    .expect("draft");
    let on_draft = credit(
        &sandbox,
        &token,
        &drafted.id,
        "1",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect_err("only an issued invoice is credited");
    assert_eq!(reason(&on_draft), "INVOICE_STATE");
    let issued = issue(&sandbox, &token, &drafted).await.expect("issue");

    let request_id = uuid::Uuid::new_v4().to_string();
    let note = credit(&sandbox, &token, &issued.id, "33.33", &request_id)
        .await
        .expect("a credit note");
    assert_eq!(note.kind, pb::DocumentKind::CreditNote as i32);
    assert_eq!(note.status, pb::InvoiceStatus::Issued as i32);
    assert_eq!(note.credit_of_invoice_id, issued.id);
    assert!(
        note.number.ends_with("-000001"),
        "its own series: {}",
        note.number
    );
    assert_eq!(note.subtotal.as_ref().unwrap().amount, "-33.33");
    assert_eq!(note.tax_total.as_ref().unwrap().amount, "-4.33");
    assert_eq!(note.total.as_ref().unwrap().amount, "-37.66");
    assert_eq!(note.lines[0].amount.as_ref().unwrap().amount, "-33.33");
    let retried = credit(&sandbox, &token, &issued.id, "33.33", &request_id)
        .await
        .expect("a retry answers the same credit note");
    assert_eq!(retried.id, note.id);

    let rest = credit(
        &sandbox,
        &token,
        &issued.id,
        "66.66",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("the rest of the invoice");
    assert!(rest.number.ends_with("-000002"), "{}", rest.number);
    let beyond = credit(
        &sandbox,
        &token,
        &issued.id,
        "0.01",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect_err("more than was billed");
    assert_eq!(beyond.code(), Code::FailedPrecondition);
    assert_eq!(reason(&beyond), "CREDIT_EXCEEDS_INVOICE");
    let of_a_credit = credit(
        &sandbox,
        &token,
        &note.id,
        "1",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect_err("a credit note is not credited");
    assert_eq!(reason(&of_a_credit), "INVOICE_STATE");
    let void_credit = billing(&sandbox, "gateway")
        .void_invoice(bearer(
            pb::VoidInvoiceRequest {
                invoice_id: note.id.clone(),
                reason: "undo".into(),
                etag: note.etag.clone(),
            },
            &token,
        ))
        .await
        .expect_err("a credit note is never voided");
    assert_eq!(reason(&void_credit), "INVOICE_STATE");
    let (_, _, stranger) = trainer(&sandbox, "Sam").await;
    let foreign = credit(
        &sandbox,
        &stranger,
        &issued.id,
        "1",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect_err("not theirs");
    assert_eq!(reason(&foreign), "INVOICE_NOT_FOUND");

    // The invoice itself is untouched, and its own number series continues.
    let read = billing(&sandbox, "gateway")
        .get_invoice(bearer(
            pb::GetInvoiceRequest {
                invoice_id: issued.id.clone(),
            },
            &token,
        ))
        .await
        .expect("read")
        .into_inner()
        .invoice
        .unwrap();
    assert_eq!(read.total, issued.total);
    assert_eq!(read.etag, issued.etag);
}
