//! Billing under attack: hostile text and numbers in every RPC, money at the
//! limits of NUMERIC(12,2), strangers and foreign supervisors, and races on
//! one invoice. Whatever the input, no RPC answers INTERNAL and a refused
//! request writes nothing.

use std::sync::Arc;

use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::billing as pb;
use fitflow_proto::clients::AccessLevel;
use fitflow_proto::types::{Money, Province};
use tonic::Code;

use crate::billing::{
    EVERYONE, billing, client_of, credit, day, draft, invoice_line, issue, line, quote, rate,
};
use crate::clients::{join_team, share};
use crate::identity_support::{reason, violated_fields};
use crate::tenancy::trainer;

fn refused_on(status: &tonic::Status, mut fields: Vec<&str>) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let mut violated = violated_fields(status);
    violated.sort();
    fields.sort_unstable();
    assert_eq!(violated, fields, "{status:?}");
}

fn amount(money: Option<&Money>) -> &str {
    money.map_or("", |money| money.amount.as_str())
}

async fn get(sandbox: &Sandbox, token: &str, id: &str) -> Result<pb::Invoice, tonic::Status> {
    billing(sandbox, "gateway")
        .get_invoice(bearer(
            pb::GetInvoiceRequest {
                invoice_id: id.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().invoice.expect("invoice"))
}

async fn update(
    sandbox: &Sandbox,
    token: &str,
    invoice: pb::Invoice,
    etag: &str,
) -> Result<pb::Invoice, tonic::Status> {
    billing(sandbox, "gateway")
        .update_invoice(bearer(
            pb::UpdateInvoiceRequest {
                invoice: Some(invoice),
                etag: etag.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().invoice.expect("invoice"))
}

async fn void(
    sandbox: &Sandbox,
    token: &str,
    id: &str,
    etag: &str,
) -> Result<pb::Invoice, tonic::Status> {
    billing(sandbox, "gateway")
        .void_invoice(bearer(
            pb::VoidInvoiceRequest {
                invoice_id: id.into(),
                reason: "Billed twice".into(),
                etag: etag.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().invoice.expect("invoice"))
}

async fn list(
    sandbox: &Sandbox,
    token: &str,
    request: pb::ListInvoicesRequest,
) -> Result<pb::ListInvoicesResponse, tonic::Status> {
    billing(sandbox, "gateway")
        .list_invoices(bearer(request, token))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn hostile_text_and_numbers_in_every_billing_rpc_are_refused_by_field_and_write_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let (_, operator) = sandbox.operator().await;
    let client_id = client_of(&sandbox, &token).await;
    let drafted = draft(
        &sandbox,
        &token,
        &client_id,
        vec![invoice_line("Session", "85", Province::On)],
    )
    .await
    .expect("draft");
    let issued = issue(
        &sandbox,
        &token,
        &draft(
            &sandbox,
            &token,
            &client_id,
            vec![invoice_line("Session", "85", Province::On)],
        )
        .await
        .expect("draft"),
    )
    .await
    .expect("issue");
    let rates_before = billing(&sandbox, "gateway")
        .list_tax_rates(bearer(pb::ListTaxRatesRequest {}, &token))
        .await
        .expect("rates")
        .into_inner()
        .rates;

    let created = billing(&sandbox, "gateway")
        .create_invoice(bearer(
            pb::CreateInvoiceRequest {
                invoice: Some(pb::Invoice {
                    client_id: "\0".into(),
                    payment_terms_days: i32::MIN,
                    notes: "\0".into(),
                    lines: vec![
                        pb::InvoiceLine {
                            quantity: "+-1".into(),
                            unit_price: Some(Money {
                                currency_code: "CA\0".into(),
                                amount: "1\0".into(),
                            }),
                            ..invoice_line("\u{1b}[31mred", "1", Province::On)
                        },
                        pb::InvoiceLine {
                            quantity: "0.005".into(),
                            ..invoice_line("Session", "1", Province::On)
                        },
                        pb::InvoiceLine {
                            quantity: "-0".into(),
                            ..invoice_line("Session", "1", Province::On)
                        },
                        pb::InvoiceLine {
                            quantity: "99999999999999999999".into(),
                            ..invoice_line("Session", "1", Province::On)
                        },
                    ],
                    ..Default::default()
                }),
                request_id: "not a uuid\0".into(),
            },
            &token,
        ))
        .await
        .expect_err("hostile create");
    refused_on(
        &created,
        vec![
            "request_id",
            "invoice.client_id",
            "invoice.payment_terms_days",
            "invoice.notes",
            "invoice.lines[0].description",
            "invoice.lines[0].quantity",
            "invoice.lines[0].unit_price",
            "invoice.lines[1].quantity",
            "invoice.lines[2].quantity",
            "invoice.lines[3].quantity",
        ],
    );

    let updated = update(
        &sandbox,
        &token,
        pb::Invoice {
            id: "\0".into(),
            payment_terms_days: -1,
            notes: "\u{7f}".into(),
            lines: vec![pb::InvoiceLine {
                unit_price: None,
                ..invoice_line("", "1", Province::On)
            }],
            ..Default::default()
        },
        "\0",
    )
    .await
    .expect_err("hostile update");
    refused_on(
        &updated,
        vec![
            "invoice.id",
            "etag",
            "invoice.payment_terms_days",
            "invoice.notes",
            "invoice.lines[0].description",
            "invoice.lines[0].unit_price",
        ],
    );
    let long_etag = update(
        &sandbox,
        &token,
        pb::Invoice {
            id: drafted.id.clone(),
            notes: "x".repeat(2_001),
            lines: vec![invoice_line("Session", "1", Province::On)],
            ..Default::default()
        },
        &"e".repeat(10_000),
    )
    .await
    .expect_err("absurd lengths");
    refused_on(&long_etag, vec!["etag", "invoice.notes"]);

    let issued_hostile = billing(&sandbox, "gateway")
        .issue_invoice(bearer(
            pb::IssueInvoiceRequest {
                invoice_id: format!("{}\0", drafted.id),
                etag: "\u{85}".into(),
            },
            &token,
        ))
        .await
        .expect_err("hostile issue");
    refused_on(&issued_hostile, vec!["invoice_id", "etag"]);

    let voided = billing(&sandbox, "gateway")
        .void_invoice(bearer(
            pb::VoidInvoiceRequest {
                invoice_id: "x".repeat(100_000),
                reason: "\0".into(),
                etag: String::new(),
            },
            &token,
        ))
        .await
        .expect_err("hostile void");
    refused_on(&voided, vec!["invoice_id", "reason", "etag"]);
    let long_reason = billing(&sandbox, "gateway")
        .void_invoice(bearer(
            pb::VoidInvoiceRequest {
                invoice_id: issued.id.clone(),
                reason: "r".repeat(501),
                etag: issued.etag.clone(),
            },
            &token,
        ))
        .await
        .expect_err("a reason too long");
    refused_on(&long_reason, vec!["reason"]);

    let credited = billing(&sandbox, "gateway")
        .issue_credit_note(bearer(
            pb::IssueCreditNoteRequest {
                invoice_id: "\0".into(),
                lines: vec![pb::InvoiceLine {
                    quantity: "1".into(),
                    province: 99,
                    treatment: -1,
                    ..invoice_line("\u{85}", "9999999999.999", Province::On)
                }],
                notes: "\0".into(),
                request_id: "\0".into(),
            },
            &token,
        ))
        .await
        .expect_err("hostile credit note");
    refused_on(
        &credited,
        vec![
            "request_id",
            "invoice_id",
            "lines[0].description",
            "lines[0].unit_price",
            "lines[0].province",
            "lines[0].treatment",
            "notes",
        ],
    );
    let no_lines = billing(&sandbox, "gateway")
        .issue_credit_note(bearer(
            pb::IssueCreditNoteRequest {
                invoice_id: issued.id.clone(),
                lines: Vec::new(),
                notes: "   ".into(),
                request_id: String::new(),
            },
            &token,
        ))
        .await
        .expect_err("nothing to credit");
    refused_on(&no_lines, vec!["request_id", "lines", "notes"]);

    let quoted = quote(
        &sandbox,
        &token,
        day(2026, 2, 30),
        vec![
            line("\0", Province::On),
            line("-9999999999.991", Province::On),
            line("--1", Province::On),
            line("-99999999999", Province::On),
            pb::QuoteLine {
                amount: None,
                province: i32::MAX,
                treatment: i32::MIN,
            },
        ],
    )
    .await
    .expect_err("hostile quote");
    refused_on(
        &quoted,
        vec![
            "tax_date",
            "lines[0].amount",
            "lines[1].amount",
            "lines[2].amount",
            "lines[3].amount",
            "lines[4].amount",
            "lines[4].province",
            "lines[4].treatment",
        ],
    );

    let added = billing(&sandbox, "operator")
        .add_tax_rate(bearer(
            pb::AddTaxRateRequest {
                rate: Some(pb::TaxRate {
                    province: 99,
                    kind: 99,
                    source: "Budget\0".into(),
                    ..rate(
                        Province::On,
                        pb::TaxKind::Hst,
                        "100.00001",
                        day(i32::MAX, 1, 1),
                    )
                }),
            },
            &operator.access_token,
        ))
        .await
        .expect_err("hostile rate");
    refused_on(
        &added,
        vec![
            "rate.kind",
            "rate.province",
            "rate.percent",
            "rate.valid_from",
            "rate.source",
        ],
    );
    for percent in ["-0.0001", "1e2", "NaN", " 5", "5\0", ""] {
        let refused = billing(&sandbox, "operator")
            .add_tax_rate(bearer(
                pb::AddTaxRateRequest {
                    rate: Some(rate(
                        Province::On,
                        pb::TaxKind::Hst,
                        percent,
                        day(2999, 1, 1),
                    )),
                },
                &operator.access_token,
            ))
            .await
            .expect_err(percent);
        refused_on(&refused, vec!["rate.percent"]);
    }

    // Nothing was written: two invoices as they were, the table as it was.
    let listed = list(&sandbox, &token, pb::ListInvoicesRequest::default())
        .await
        .expect("list")
        .invoices;
    let mut etags: Vec<String> = listed.into_iter().map(|invoice| invoice.etag).collect();
    etags.sort();
    let mut expected = vec![drafted.etag.clone(), issued.etag.clone()];
    expected.sort();
    assert_eq!(etags, expected);
    let rates_after = billing(&sandbox, "gateway")
        .list_tax_rates(bearer(pb::ListTaxRatesRequest {}, &token))
        .await
        .expect("rates")
        .into_inner()
        .rates;
    assert_eq!(rates_after, rates_before);
}

#[tokio::test]
async fn money_at_the_numeric_12_2_limits_is_exact_or_refused_and_never_internal() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;

    // Quantities: two decimals, above 0, at most 10000; signs and zeros read plainly.
    for (quantity, read) in [
        ("10000.00", "10000"),
        ("+1", "1"),
        ("00001", "1"),
        ("0.01", "0.01"),
    ] {
        let drafted = draft(
            &sandbox,
            &token,
            &client_id,
            vec![pb::InvoiceLine {
                quantity: quantity.into(),
                ..invoice_line("Session", "1.00", Province::On)
            }],
        )
        .await
        .unwrap_or_else(|status| panic!("{quantity}: {status:?}"));
        assert_eq!(drafted.lines[0].quantity, read);
    }
    for quantity in [
        "0.005", "-0", "0", "10000.01", "-1", "1.", ".", "+", "1 ", "١",
    ] {
        let refused = draft(
            &sandbox,
            &token,
            &client_id,
            vec![pb::InvoiceLine {
                quantity: quantity.into(),
                ..invoice_line("Session", "1.00", Province::On)
            }],
        )
        .await;
        if quantity == "1." {
            // rust_decimal reads "1." as 1: harmless.
            continue;
        }
        let refused = refused.expect_err(quantity);
        refused_on(&refused, vec!["invoice.lines[0].quantity"]);
    }

    // One line at the largest amount NUMERIC(12,2) holds is a draft …
    let largest = draft(
        &sandbox,
        &token,
        &client_id,
        vec![invoice_line("Session", "9999999999.99", Province::On)],
    )
    .await
    .expect("the largest amount");
    assert_eq!(amount(largest.subtotal.as_ref()), "9999999999.99");
    // … but with 13% HST its total cannot be stored: refused, not INTERNAL,
    // and it stays an unnumbered draft.
    let too_large = issue(&sandbox, &token, &largest)
        .await
        .expect_err("its total does not fit");
    assert_eq!(too_large.code(), Code::FailedPrecondition, "{too_large:?}");
    assert_eq!(reason(&too_large), "INVOICE_TOO_LARGE");
    let still = get(&sandbox, &token, &largest.id).await.expect("get");
    assert_eq!(still.status, pb::InvoiceStatus::Draft as i32);
    assert!(still.number.is_empty());
    assert_eq!(still.etag, largest.etag);

    // Sums that overflow are refused on the list of lines.
    let two = draft(
        &sandbox,
        &token,
        &client_id,
        vec![invoice_line("Session", "9999999999.99", Province::On); 2],
    )
    .await
    .expect_err("two largest lines");
    refused_on(&two, vec!["invoice.lines"]);
    let many = draft(
        &sandbox,
        &token,
        &client_id,
        vec![invoice_line("Session", "50000000.01", Province::On); 200],
    )
    .await
    .expect_err("many lines");
    refused_on(&many, vec!["invoice.lines"]);
    let product = draft(
        &sandbox,
        &token,
        &client_id,
        vec![pb::InvoiceLine {
            quantity: "10000".into(),
            ..invoice_line("Session", "1000000.00", Province::On)
        }],
    )
    .await
    .expect_err("quantity × price too large");
    refused_on(&product, vec!["invoice.lines[0].unit_price"]);
    let grown = update(
        &sandbox,
        &token,
        pb::Invoice {
            id: largest.id.clone(),
            lines: vec![invoice_line("Session", "9999999999.99", Province::On); 3],
            ..Default::default()
        },
        &largest.etag,
    )
    .await
    .expect_err("an update that overflows");
    refused_on(&grown, vec!["invoice.lines"]);

    // The largest that fits with its tax is issued, then credited exactly.
    let big = draft(
        &sandbox,
        &token,
        &client_id,
        vec![invoice_line("Season", "8000000000.00", Province::On)],
    )
    .await
    .expect("big draft");
    let big = issue(&sandbox, &token, &big).await.expect("issue big");
    assert_eq!(amount(big.total.as_ref()), "9040000000.00");
    let all = credit(
        &sandbox,
        &token,
        &big.id,
        "8000000000.00",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("credit it all");
    assert_eq!(amount(all.total.as_ref()), "-9040000000.00");
    let beyond = credit(
        &sandbox,
        &token,
        &big.id,
        "0.01",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect_err("a cent more");
    assert_eq!(reason(&beyond), "CREDIT_EXCEEDS_INVOICE");

    // A quote is not stored: it prices even absurd sums, exactly.
    let quoted = quote(
        &sandbox,
        &token,
        day(2026, 6, 1),
        vec![line("9999999999.99", Province::On); 500],
    )
    .await
    .expect("a large quote");
    assert_eq!(amount(quoted.subtotal.as_ref()), "4999999999995.00");
    assert_eq!(amount(quoted.tax_total.as_ref()), "649999999999.35");
}

#[tokio::test]
async fn credit_notes_reach_exactly_the_subtotal_and_fifty_raced_never_credit_more() {
    let sandbox = Arc::new(Sandbox::new().await);
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    let issued = issue(
        &sandbox,
        &token,
        &draft(
            &sandbox,
            &token,
            &client_id,
            vec![invoice_line("Session", "33.33", Province::On); 3],
        )
        .await
        .expect("draft"),
    )
    .await
    .expect("issue");
    credit(
        &sandbox,
        &token,
        &issued.id,
        "99.98",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("all but a cent");
    let over = credit(
        &sandbox,
        &token,
        &issued.id,
        "0.02",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect_err("one cent over");
    assert_eq!(reason(&over), "CREDIT_EXCEEDS_INVOICE");
    credit(
        &sandbox,
        &token,
        &issued.id,
        "0.01",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("exactly the subtotal");
    let after = credit(
        &sandbox,
        &token,
        &issued.id,
        "0.01",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect_err("nothing left");
    assert_eq!(reason(&after), "CREDIT_EXCEEDS_INVOICE");

    let raced = issue(
        &sandbox,
        &token,
        &draft(
            &sandbox,
            &token,
            &client_id,
            vec![invoice_line("Season", "100.00", Province::On)],
        )
        .await
        .expect("draft"),
    )
    .await
    .expect("issue");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (sandbox, token, id) = (Arc::clone(&sandbox), token.clone(), raced.id.clone());
        tasks.push(tokio::spawn(async move {
            credit(
                &sandbox,
                &token,
                &id,
                "3.00",
                &uuid::Uuid::new_v4().to_string(),
            )
            .await
        }));
    }
    let mut notes = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(note) => notes.push(note),
            Err(status) => {
                assert_eq!(
                    reason(&status),
                    "CREDIT_EXCEEDS_INVOICE",
                    "never INTERNAL: {status:?}"
                );
            }
        }
    }
    assert_eq!(notes.len(), 33, "33 × 3.00 ≤ 100.00 < 34 × 3.00");
    let mut numbers: Vec<String> = notes.iter().map(|note| note.number.clone()).collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 33, "each its own number");
    let listed = list(
        &sandbox,
        &token,
        pb::ListInvoicesRequest {
            page_size: 100,
            ..Default::default()
        },
    )
    .await
    .expect("list")
    .invoices;
    let credited: i64 = listed
        .iter()
        .filter(|doc| doc.credit_of_invoice_id == raced.id)
        .map(|doc| {
            let cents = amount(doc.subtotal.as_ref()).replace(['.', '-'], "");
            cents.parse::<i64>().expect("cents")
        })
        .sum();
    assert_eq!(credited, 9_900, "99.00 credited of 100.00");
}

#[tokio::test]
async fn strangers_and_foreign_supervisors_reach_no_invoice_and_bill_no_foreign_client() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let stranger = trainer(&sandbox, "Sam").await;
    let lead = trainer(&sandbox, "Lena").await;
    let member = trainer(&sandbox, "Milo").await;
    let lead_token = join_team(&sandbox, &lead, &member).await;
    let client_id = client_of(&sandbox, &owner.2).await;
    let drafted = draft(
        &sandbox,
        &owner.2,
        &client_id,
        vec![invoice_line("Session", "85", Province::On)],
    )
    .await
    .expect("draft");
    let issued = issue(
        &sandbox,
        &owner.2,
        &draft(
            &sandbox,
            &owner.2,
            &client_id,
            vec![invoice_line("Session", "85", Province::On)],
        )
        .await
        .expect("draft"),
    )
    .await
    .expect("issue");

    for (who, token) in [("stranger", &stranger.2), ("foreign lead", &lead_token)] {
        let got = get(&sandbox, token, &drafted.id).await.expect_err(who);
        assert_eq!(reason(&got), "INVOICE_NOT_FOUND", "{who}");
        let updated = update(
            &sandbox,
            token,
            pb::Invoice {
                id: drafted.id.clone(),
                lines: vec![invoice_line("Rewritten", "1", Province::On)],
                ..Default::default()
            },
            &drafted.etag,
        )
        .await
        .expect_err(who);
        assert_eq!(reason(&updated), "INVOICE_NOT_FOUND", "{who}");
        let issued_by = issue(&sandbox, token, &drafted).await.expect_err(who);
        assert_eq!(reason(&issued_by), "INVOICE_NOT_FOUND", "{who}");
        for target in [&drafted, &issued] {
            let voided = void(&sandbox, token, &target.id, &target.etag)
                .await
                .expect_err(who);
            assert_eq!(reason(&voided), "INVOICE_NOT_FOUND", "{who}");
        }
        let credited = credit(
            &sandbox,
            token,
            &issued.id,
            "1",
            &uuid::Uuid::new_v4().to_string(),
        )
        .await
        .expect_err(who);
        assert_eq!(reason(&credited), "INVOICE_NOT_FOUND", "{who}");
        let listed = list(
            &sandbox,
            token,
            pb::ListInvoicesRequest {
                issuer_id: owner.0.clone(),
                ..Default::default()
            },
        )
        .await
        .expect_err(who);
        assert_eq!(reason(&listed), "TRAINER_NOT_FOUND", "{who}");
        let as_owner = billing(&sandbox, "gateway")
            .create_invoice(bearer(
                pb::CreateInvoiceRequest {
                    invoice: Some(pb::Invoice {
                        issuer_id: owner.0.clone(),
                        client_id: client_id.clone(),
                        lines: vec![invoice_line("Session", "85", Province::On)],
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                token,
            ))
            .await
            .expect_err(who);
        assert_eq!(reason(&as_owner), "TRAINER_NOT_FOUND", "{who}");
        let foreign_client = draft(
            &sandbox,
            token,
            &client_id,
            vec![invoice_line("Session", "85", Province::On)],
        )
        .await
        .expect_err(who);
        assert_eq!(reason(&foreign_client), "CLIENT_NOT_FOUND", "{who}");
    }

    // A supervisor bills for their team member only that member's clients,
    // never their own client under the member's name.
    let leads_client = client_of(&sandbox, &lead_token).await;
    let under_member = billing(&sandbox, "gateway")
        .create_invoice(bearer(
            pb::CreateInvoiceRequest {
                invoice: Some(pb::Invoice {
                    issuer_id: member.0.clone(),
                    client_id: leads_client.clone(),
                    lines: vec![invoice_line("Session", "85", Province::On)],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &lead_token,
        ))
        .await
        .expect_err("the lead's client billed by the member");
    assert_eq!(reason(&under_member), "CLIENT_NOT_FOUND");
    // The member's own client, billed by the supervisor in the member's name.
    let members_client = client_of(&sandbox, &member.2).await;
    let for_member = billing(&sandbox, "gateway")
        .create_invoice(bearer(
            pb::CreateInvoiceRequest {
                invoice: Some(pb::Invoice {
                    issuer_id: member.0.clone(),
                    client_id: members_client,
                    lines: vec![invoice_line("Session", "85", Province::On)],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &lead_token,
        ))
        .await
        .expect("a supervisor bills for their member")
        .into_inner()
        .invoice
        .expect("invoice");
    assert_eq!(for_member.issuer_id, member.0);
    // A client shared for writing is still someone else's to bill.
    share(
        &sandbox,
        &owner.2,
        &client_id,
        &stranger.0,
        AccessLevel::Write,
    )
    .await
    .expect("share");
    let shared = draft(
        &sandbox,
        &stranger.2,
        &client_id,
        vec![invoice_line("Session", "85", Province::On)],
    )
    .await
    .expect_err("a shared client is the owner's to bill");
    assert_eq!(reason(&shared), "CLIENT_NOT_FOUND");
    let members = list(&sandbox, &member.2, pb::ListInvoicesRequest::default())
        .await
        .expect("member's list")
        .invoices;
    assert_eq!(members.len(), 1, "only the one billed in their name");
    assert_eq!(members[0].id, for_member.id);

    // Page tokens: bound to who asked and for which issuer.
    let first = list(
        &sandbox,
        &owner.2,
        pb::ListInvoicesRequest {
            page_size: 1,
            ..Default::default()
        },
    )
    .await
    .expect("first page");
    assert!(!first.next_page_token.is_empty());
    let stolen = list(
        &sandbox,
        &stranger.2,
        pb::ListInvoicesRequest {
            page_size: 1,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        },
    )
    .await
    .expect_err("another caller's token");
    refused_on(&stolen, vec!["page_token"]);
    let refiltered = list(
        &sandbox,
        &owner.2,
        pb::ListInvoicesRequest {
            page_size: 1,
            issuer_id: owner.0.clone(),
            page_token: first.next_page_token.clone(),
        },
    )
    .await
    .expect_err("another filter");
    refused_on(&refiltered, vec!["page_token"]);
    let mut tampered = first.next_page_token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = list(
        &sandbox,
        &owner.2,
        pb::ListInvoicesRequest {
            page_size: 1,
            page_token: String::from_utf8(tampered).expect("ascii"),
            ..Default::default()
        },
    )
    .await
    .expect_err("a tampered token");
    refused_on(&tampered, vec!["page_token"]);
    for junk in ["\0", &"A".repeat(100_000)] {
        let junk = list(
            &sandbox,
            &owner.2,
            pb::ListInvoicesRequest {
                page_token: junk.into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("junk");
        refused_on(&junk, vec!["page_token"]);
    }
}

#[tokio::test]
async fn a_hundred_updates_with_one_etag_let_exactly_one_win() {
    let sandbox = Arc::new(Sandbox::new().await);
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    let drafted = draft(
        &sandbox,
        &token,
        &client_id,
        vec![invoice_line("Session", "85", Province::On)],
    )
    .await
    .expect("draft");
    let mut tasks = Vec::new();
    for index in 0..100 {
        let (sandbox, token, drafted) = (Arc::clone(&sandbox), token.clone(), drafted.clone());
        tasks.push(tokio::spawn(async move {
            update(
                &sandbox,
                &token,
                pb::Invoice {
                    id: drafted.id.clone(),
                    notes: format!("writer {index}"),
                    lines: vec![invoice_line(
                        "Session",
                        &format!("{index}.00"),
                        Province::On,
                    )],
                    ..Default::default()
                },
                &drafted.etag,
            )
            .await
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(invoice) => winners.push(invoice),
            Err(status) => assert_eq!(reason(&status), "ETAG_MISMATCH", "{status:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins");
    let stored = get(&sandbox, &token, &drafted.id).await.expect("get");
    assert_eq!(stored.notes, winners[0].notes);
    assert_eq!(stored.lines, winners[0].lines);
    assert_eq!(stored.etag, winners[0].etag);
}

#[tokio::test]
async fn issue_and_void_raced_on_one_draft_end_issued_or_void_and_never_a_numbered_draft() {
    let sandbox = Arc::new(Sandbox::new().await);
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    let mut issued_count = 0;
    let mut numbers = Vec::new();
    for _ in 0..20 {
        let drafted = draft(
            &sandbox,
            &token,
            &client_id,
            vec![invoice_line("Session", "85", Province::On)],
        )
        .await
        .expect("draft");
        let issuing = {
            let (sandbox, token, drafted) = (Arc::clone(&sandbox), token.clone(), drafted.clone());
            tokio::spawn(async move { issue(&sandbox, &token, &drafted).await })
        };
        let voiding = {
            let (sandbox, token, drafted) = (Arc::clone(&sandbox), token.clone(), drafted.clone());
            tokio::spawn(async move { void(&sandbox, &token, &drafted.id, &drafted.etag).await })
        };
        let (issued, voided) = (issuing.await.expect("task"), voiding.await.expect("task"));
        for outcome in [&issued, &voided] {
            if let Err(status) = outcome {
                assert!(
                    ["ETAG_MISMATCH", "INVOICE_STATE"].contains(&reason(status).as_str()),
                    "{status:?}"
                );
            }
        }
        assert!(issued.is_ok() != voided.is_ok(), "exactly one wins");
        let stored = get(&sandbox, &token, &drafted.id).await.expect("get");
        match issued {
            Ok(issued) => {
                issued_count += 1;
                assert_eq!(stored.status, pb::InvoiceStatus::Issued as i32);
                assert_eq!(stored.number, issued.number);
                numbers.push(issued.number.clone());
                // Voided after it was issued, it keeps its number.
                let voided = void(&sandbox, &token, &stored.id, &stored.etag)
                    .await
                    .expect("void the issued invoice");
                assert_eq!(voided.status, pb::InvoiceStatus::Void as i32);
                assert_eq!(voided.number, issued.number);
            }
            Err(_) => {
                assert_eq!(stored.status, pb::InvoiceStatus::Void as i32);
                assert!(stored.number.is_empty(), "a voided draft has no number");
                assert!(stored.invoice_date.is_none());
            }
        }
    }
    // Gapless: the issued ones hold 1..=n.
    numbers.sort();
    for (index, number) in numbers.iter().enumerate() {
        assert!(
            number.ends_with(&format!("-{:06}", index + 1)),
            "{numbers:?} ({issued_count} issued)"
        );
    }
    let listed = list(
        &sandbox,
        &token,
        pb::ListInvoicesRequest {
            page_size: 100,
            ..Default::default()
        },
    )
    .await
    .expect("list")
    .invoices;
    assert!(
        listed
            .iter()
            .all(|invoice| invoice.status != pb::InvoiceStatus::Draft as i32
                || invoice.number.is_empty()),
        "never a numbered draft"
    );
}

#[tokio::test]
async fn a_credited_invoice_is_never_voided_and_void_raced_with_credit_lets_one_win() {
    let sandbox = Arc::new(Sandbox::new().await);
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    let issued = issue(
        &sandbox,
        &token,
        &draft(
            &sandbox,
            &token,
            &client_id,
            vec![invoice_line("Session", "85", Province::On)],
        )
        .await
        .expect("draft"),
    )
    .await
    .expect("issue");
    credit(
        &sandbox,
        &token,
        &issued.id,
        "10",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("credit");
    let voided = void(&sandbox, &token, &issued.id, &issued.etag)
        .await
        .expect_err("credited already: voiding would correct it twice");
    assert_eq!(voided.code(), Code::FailedPrecondition);
    assert_eq!(reason(&voided), "INVOICE_STATE");

    for _ in 0..10 {
        let issued = issue(
            &sandbox,
            &token,
            &draft(
                &sandbox,
                &token,
                &client_id,
                vec![invoice_line("Session", "85", Province::On)],
            )
            .await
            .expect("draft"),
        )
        .await
        .expect("issue");
        let crediting = {
            let (sandbox, token, id) = (Arc::clone(&sandbox), token.clone(), issued.id.clone());
            tokio::spawn(async move {
                credit(
                    &sandbox,
                    &token,
                    &id,
                    "10",
                    &uuid::Uuid::new_v4().to_string(),
                )
                .await
            })
        };
        let voiding = {
            let (sandbox, token, issued) = (Arc::clone(&sandbox), token.clone(), issued.clone());
            tokio::spawn(async move { void(&sandbox, &token, &issued.id, &issued.etag).await })
        };
        let (credited, voided) = (crediting.await.expect("task"), voiding.await.expect("task"));
        assert!(credited.is_ok() != voided.is_ok(), "exactly one correction");
        for status in [credited.err(), voided.err()].into_iter().flatten() {
            assert_eq!(reason(&status), "INVOICE_STATE", "{status:?}");
        }
    }
}

#[tokio::test]
async fn retries_raced_with_one_request_id_make_one_invoice_and_one_credit_note() {
    let sandbox = Arc::new(Sandbox::new().await);
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (sandbox, token, client_id, request_id) = (
            Arc::clone(&sandbox),
            token.clone(),
            client_id.clone(),
            request_id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            billing(&sandbox, "gateway")
                .create_invoice(bearer(
                    pb::CreateInvoiceRequest {
                        invoice: Some(pb::Invoice {
                            client_id,
                            lines: vec![invoice_line("Session", "85", Province::On)],
                            ..Default::default()
                        }),
                        request_id,
                    },
                    &token,
                ))
                .await
                .map(|response| response.into_inner().invoice.expect("invoice"))
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("task").expect("create or replay").id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one invoice");
    let drafted = get(&sandbox, &token, &ids[0]).await.expect("get");
    let issued = issue(&sandbox, &token, &drafted).await.expect("issue");

    let request_id = uuid::Uuid::new_v4().to_string();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (sandbox, token, id, request_id) = (
            Arc::clone(&sandbox),
            token.clone(),
            issued.id.clone(),
            request_id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            credit(&sandbox, &token, &id, "85", &request_id).await
        }));
    }
    let mut notes = Vec::new();
    for task in tasks {
        notes.push(task.await.expect("task").expect("credit or replay").id);
    }
    notes.sort();
    notes.dedup();
    assert_eq!(notes.len(), 1, "one credit note");
    let listed = list(&sandbox, &token, pb::ListInvoicesRequest::default())
        .await
        .expect("list")
        .invoices;
    assert_eq!(listed.len(), 2, "one invoice and one credit note");
}

#[tokio::test]
async fn an_update_without_terms_keeps_the_30_day_default_and_a_credit_of_nothing_is_refused() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    let drafted = draft(
        &sandbox,
        &token,
        &client_id,
        vec![invoice_line("Session", "85", Province::On)],
    )
    .await
    .expect("draft");
    assert_eq!(drafted.payment_terms_days, 30);
    let updated = update(
        &sandbox,
        &token,
        pb::Invoice {
            id: drafted.id.clone(),
            lines: vec![invoice_line("Session", "90", Province::On)],
            ..Default::default()
        },
        &drafted.etag,
    )
    .await
    .expect("update");
    assert_eq!(
        updated.payment_terms_days, 30,
        "not given: 30 days, as on create"
    );
    let issued = issue(&sandbox, &token, &updated).await.expect("issue");
    let free = billing(&sandbox, "gateway")
        .issue_credit_note(bearer(
            pb::IssueCreditNoteRequest {
                invoice_id: issued.id.clone(),
                lines: vec![invoice_line("Nothing", "0.00", Province::On); 2],
                notes: "Goodwill".into(),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &token,
        ))
        .await
        .expect_err("a credit note of nothing");
    refused_on(&free, vec!["lines"]);
    let note = credit(
        &sandbox,
        &token,
        &issued.id,
        "1",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("a real credit");
    assert!(
        note.number.ends_with("-000001"),
        "no number was taken: {}",
        note.number
    );
}

#[tokio::test]
async fn raced_rate_versions_leave_one_open_version_and_no_overlap() {
    let sandbox = Arc::new(Sandbox::new().await);
    let _stack = sandbox.start(EVERYONE).await;
    let (_, operator) = sandbox.operator().await;
    let next_year = chrono::Datelike::year(&chrono::Utc::now()) + 1;
    let mut tasks = Vec::new();
    for month in 1..=12 {
        for percent in ["12", "14"] {
            let (sandbox, token) = (Arc::clone(&sandbox), operator.access_token.clone());
            tasks.push(tokio::spawn(async move {
                billing(&sandbox, "operator")
                    .add_tax_rate(bearer(
                        pb::AddTaxRateRequest {
                            rate: Some(rate(
                                Province::On,
                                pb::TaxKind::Hst,
                                percent,
                                day(next_year, month, 1),
                            )),
                        },
                        &token,
                    ))
                    .await
            }));
        }
    }
    let mut added = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => added += 1,
            Err(status) => assert_eq!(reason(&status), "TAX_RATE_NOT_LATER", "{status:?}"),
        }
    }
    assert!(added >= 1);
    let mut ontario: Vec<pb::TaxRate> = billing(&sandbox, "gateway")
        .list_tax_rates(bearer(pb::ListTaxRatesRequest {}, &operator.access_token))
        .await
        .expect("rates")
        .into_inner()
        .rates
        .into_iter()
        .filter(|rate| rate.province == Province::On as i32 && rate.kind == pb::TaxKind::Hst as i32)
        .collect();
    ontario.sort_by_key(|rate| {
        let from = rate.valid_from.expect("from");
        (from.year, from.month, from.day)
    });
    assert_eq!(
        ontario.len(),
        added + 1,
        "the seeded version and each added one"
    );
    assert_eq!(
        ontario
            .iter()
            .filter(|rate| rate.valid_until.is_none())
            .count(),
        1,
        "one open version"
    );
    for pair in ontario.windows(2) {
        let until = pair[0].valid_until.expect("closed");
        let from = pair[1].valid_from.expect("from");
        let until =
            chrono::NaiveDate::from_ymd_opt(until.year, until.month as u32, until.day as u32)
                .expect("date");
        let from = chrono::NaiveDate::from_ymd_opt(from.year, from.month as u32, from.day as u32)
            .expect("date");
        assert_eq!(
            until.succ_opt(),
            Some(from),
            "contiguous, never overlapping"
        );
    }
    // Quotes on every day of next year still price: no overlap to trip on.
    for month in 1..=12 {
        quote(
            &sandbox,
            &operator.access_token,
            day(next_year, month, 1),
            vec![line("100", Province::On)],
        )
        .await
        .expect("a quote");
    }
}

#[tokio::test]
async fn a_credit_note_credits_only_what_was_billed_in_that_province_and_treatment() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    let issued = issue(
        &sandbox,
        &token,
        &draft(
            &sandbox,
            &token,
            &client_id,
            vec![
                invoice_line("Session in Alberta", "100", Province::Ab),
                pb::InvoiceLine {
                    treatment: pb::TaxTreatment::Exempt as i32,
                    ..invoice_line("Physiotherapy referral", "50", Province::On)
                },
            ],
        )
        .await
        .expect("draft"),
    )
    .await
    .expect("issue");
    assert_eq!(amount(issued.tax_total.as_ref()), "5.00");
    let credit_as = |description: &'static str,
                     price: &'static str,
                     province: Province,
                     treatment: pb::TaxTreatment| {
        let mut client = billing(&sandbox, "gateway");
        let request = bearer(
            pb::IssueCreditNoteRequest {
                invoice_id: issued.id.clone(),
                lines: vec![pb::InvoiceLine {
                    treatment: treatment as i32,
                    ..invoice_line(description, price, province)
                }],
                notes: "Correction".into(),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &token,
        );
        async move { client.issue_credit_note(request).await }
    };
    // Within the subtotal, but as an Ontario taxable supply it would refund
    // 13% HST where 5% GST was charged.
    let elsewhere = credit_as("Session", "100", Province::On, pb::TaxTreatment::Taxable)
        .await
        .expect_err("never billed in Ontario as taxable");
    assert_eq!(reason(&elsewhere), "CREDIT_EXCEEDS_INVOICE");
    let taxed = credit_as("Referral", "50", Province::On, pb::TaxTreatment::Taxable)
        .await
        .expect_err("billed exempt, not taxable");
    assert_eq!(reason(&taxed), "CREDIT_EXCEEDS_INVOICE");
    let note = credit_as("Session", "60", Province::Ab, pb::TaxTreatment::Taxable)
        .await
        .expect("part of the Alberta supply")
        .into_inner()
        .credit_note
        .expect("note");
    assert_eq!(amount(note.tax_total.as_ref()), "-3.00");
    let beyond = credit_as("Session", "40.01", Province::Ab, pb::TaxTreatment::Taxable)
        .await
        .expect_err("more than the Alberta supply left");
    assert_eq!(reason(&beyond), "CREDIT_EXCEEDS_INVOICE");
    credit_as("Session", "40", Province::Ab, pb::TaxTreatment::Taxable)
        .await
        .expect("the rest of the Alberta supply");
    credit_as("Referral", "50", Province::On, pb::TaxTreatment::Exempt)
        .await
        .expect("the exempt supply");
}

#[tokio::test]
async fn partial_credit_notes_never_refund_a_cent_more_tax_than_was_charged() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    let issued = issue(
        &sandbox,
        &token,
        &draft(
            &sandbox,
            &token,
            &client_id,
            vec![invoice_line("Session", "1.00", Province::On)],
        )
        .await
        .expect("draft"),
    )
    .await
    .expect("issue");
    assert_eq!(amount(issued.tax_total.as_ref()), "0.13");
    let first = credit(
        &sandbox,
        &token,
        &issued.id,
        "0.50",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("half");
    assert_eq!(
        amount(first.tax_total.as_ref()),
        "-0.07",
        "0.065 rounds away from zero"
    );
    let second = credit(
        &sandbox,
        &token,
        &issued.id,
        "0.50",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("the other half");
    assert_eq!(
        amount(second.tax_total.as_ref()),
        "-0.06",
        "only what is left of the tax"
    );
    assert_eq!(amount(second.total.as_ref()), "-0.56");
}

#[tokio::test]
async fn credit_notes_crediting_everything_refund_exactly_the_tax_charged() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    let issued = issue(
        &sandbox,
        &token,
        &draft(
            &sandbox,
            &token,
            &client_id,
            vec![invoice_line("Session", "33.33", Province::On); 3],
        )
        .await
        .expect("draft"),
    )
    .await
    .expect("issue");
    assert_eq!(amount(issued.tax_total.as_ref()), "13.00");
    let mut refunded = Vec::new();
    for _ in 0..3 {
        let note = credit(
            &sandbox,
            &token,
            &issued.id,
            "33.33",
            &uuid::Uuid::new_v4().to_string(),
        )
        .await
        .expect("a third");
        refunded.push(amount(note.tax_total.as_ref()).to_owned());
    }
    assert_eq!(
        refunded,
        ["-4.33", "-4.33", "-4.34"],
        "the last takes the rest"
    );
}
