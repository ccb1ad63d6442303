//! Payments, refunds, bank accounts and tax remittances attacked: totals
//! beyond NUMERIC(12,2), dates at the edges of the calendar, forged page
//! tokens, request ids shared between trainers, races on one payment, and
//! tokens revoked or altered after the verifier remembered them. Whatever
//! the input, no RPC answers INTERNAL and a refused request writes nothing.

use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::billing as pb;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::identity::RevokeSessionRequest;
use fitflow_proto::types::{Money, Province};
use tonic::Code;

use crate::billing::{EVERYONE, billing, cad, client_of, day};
use crate::billing_accounts::{account, create_account};
use crate::billing_payments::{
    date_of, get_invoice, invoice_of_fifty, list_payments, new_request_id, pay, payment,
    payment_rows, refund, void,
};
use crate::billing_remittances::{calculate, invoiced, request};
use crate::identity_support::{reason, violated_fields};
use crate::tenancy::{answer, invite_to_team, trainer};

fn amount(money: Option<&Money>) -> &str {
    money.map_or("", |money| money.amount.as_str())
}

async fn remittance_rows(sandbox: &Sandbox) -> i64 {
    let admin = sandbox.db.admin_pool().await;
    sqlx::query_scalar("SELECT count(*) FROM billing.tax_remittances")
        .fetch_one(&admin)
        .await
        .expect("count remittances")
}

/// The first and last day of the `quarter` (1–4) of this year.
fn quarter(quarter: i32) -> (Option<Date>, Option<Date>) {
    let year = chrono::Datelike::year(&Utc::now().with_timezone(&chrono_tz::America::Toronto));
    let first_month = 3 * (quarter - 1) + 1;
    let last_day = if matches!(quarter, 1 | 4) { 31 } else { 30 };
    (
        day(year, first_month, 1),
        day(year, first_month + 2, last_day),
    )
}

#[tokio::test]
async fn remittance_totals_beyond_numeric_12_2_are_refused_and_never_internal() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &token).await;
    // Each invoice fits NUMERIC(12,2) (9,450,000,000.00 with GST); their
    // period's gross revenue, 18,000,000,000.00, does not.
    for _ in 0..2 {
        let issued = invoiced(&sandbox, &token, &client_id, "9000000000.00", Province::Ab).await;
        assert_eq!(amount(issued.total.as_ref()), "9450000000.00");
    }
    let refused = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "0", None),
    )
    .await
    .expect_err("totals NUMERIC(12,2) cannot hold");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused), "REMITTANCE_TOO_LARGE");
    assert_eq!(remittance_rows(&sandbox).await, 0);
    // The largest input tax credits on a period of one such invoice still fit.
    let (period_start, period_end) = quarter(1);
    let fits = calculate(
        &sandbox,
        &token,
        pb::CalculateTaxRemittanceRequest {
            period_start,
            period_end,
            ..request(pb::RemittanceKind::GstHst, "9999999999.99", None)
        },
    )
    .await;
    assert!(
        fits.as_ref()
            .is_ok_and(|remittance| amount(remittance.net_tax.as_ref()) == "-9999999999.99")
            || fits
                .as_ref()
                .is_err_and(|status| status.code() != Code::Internal),
        "{fits:?}"
    );
}

async fn file(
    sandbox: &Sandbox,
    token: &str,
    remittance: &pb::TaxRemittance,
    filed_on: Option<Date>,
) -> Result<pb::TaxRemittance, tonic::Status> {
    billing(sandbox, "gateway")
        .file_tax_remittance(bearer(
            pb::FileTaxRemittanceRequest {
                remittance_id: remittance.id.clone(),
                filed_on,
                reference: "CRA-1".into(),
                etag: remittance.etag.clone(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().remittance.expect("remittance"))
}

async fn mark_paid(
    sandbox: &Sandbox,
    token: &str,
    remittance: &pb::TaxRemittance,
    paid_on: Option<Date>,
) -> Result<pb::TaxRemittance, tonic::Status> {
    billing(sandbox, "gateway")
        .mark_tax_remittance_paid(bearer(
            pb::MarkTaxRemittancePaidRequest {
                remittance_id: remittance.id.clone(),
                paid_on,
                reference: "PAY-1".into(),
                etag: remittance.etag.clone(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().remittance.expect("remittance"))
}

#[tokio::test]
async fn a_remittance_is_never_filed_or_paid_on_a_date_still_to_come() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let remittance = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "0", None),
    )
    .await
    .expect("calculate");
    let today = Utc::now().date_naive();
    for future in [
        today + Duration::days(2),
        NaiveDate::from_ymd_opt(9999, 12, 31).expect("date"),
    ] {
        let refused = file(&sandbox, &token, &remittance, date_of(future))
            .await
            .expect_err("filed in the future");
        assert_eq!(violated_fields(&refused), ["filed_on"], "{future}");
    }
    for absurd in [day(0, 1, 1), day(10000, 1, 1), day(2026, 2, 29)] {
        let refused = file(&sandbox, &token, &remittance, absurd)
            .await
            .expect_err("no such date");
        assert_eq!(violated_fields(&refused), ["filed_on"], "{absurd:?}");
    }
    let filed = file(&sandbox, &token, &remittance, date_of(today))
        .await
        .expect("filed today");
    for future in [
        today + Duration::days(2),
        NaiveDate::from_ymd_opt(9999, 12, 31).expect("date"),
    ] {
        let refused = mark_paid(&sandbox, &token, &filed, date_of(future))
            .await
            .expect_err("paid in the future");
        assert_eq!(violated_fields(&refused), ["paid_on"], "{future}");
    }
    let paid = mark_paid(&sandbox, &token, &filed, date_of(today))
        .await
        .expect("paid today");
    assert_eq!(paid.status, pb::RemittanceStatus::Paid as i32);
}

#[tokio::test]
async fn twenty_concurrent_refunds_never_refund_more_than_the_payment() {
    let sandbox = Arc::new(Sandbox::new().await);
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let invoice = invoice_of_fifty(&sandbox, &token).await;
    let paid = pay(
        &sandbox,
        &token,
        payment(&invoice.id, "50.00"),
        &new_request_id(),
    )
    .await
    .expect("pay")
    .payment
    .expect("payment");
    let token = Arc::new(token);
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (sandbox, token, payment_id) =
            (Arc::clone(&sandbox), Arc::clone(&token), paid.id.clone());
        racers.spawn(async move {
            refund(&sandbox, &token, &payment_id, "10.00", &new_request_id()).await
        });
    }
    let mut refunded = 0;
    while let Some(outcome) = racers.join_next().await {
        match outcome.expect("racer") {
            Ok(_) => refunded += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert_eq!(reason(&status), "REFUND_EXCEEDS_PAYMENT");
            }
        }
    }
    assert_eq!(refunded, 5);
    let after = get_invoice(&sandbox, &token, &invoice.id).await;
    assert_eq!(amount(after.amount_paid.as_ref()), "0.00");
    assert_eq!(after.status, pb::InvoiceStatus::Issued as i32);
    assert_eq!(payment_rows(&sandbox, &invoice.id).await, 6);
}

#[tokio::test]
async fn a_payment_raced_with_a_void_never_leaves_money_on_a_void_invoice() {
    let sandbox = Arc::new(Sandbox::new().await);
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let token = Arc::new(token);
    for _ in 0..5 {
        let invoice = invoice_of_fifty(&sandbox, &token).await;
        let paying = {
            let (sandbox, token, id) =
                (Arc::clone(&sandbox), Arc::clone(&token), invoice.id.clone());
            tokio::spawn(async move {
                pay(&sandbox, &token, payment(&id, "20.00"), &new_request_id()).await
            })
        };
        let voiding = {
            let (sandbox, token, invoice) =
                (Arc::clone(&sandbox), Arc::clone(&token), invoice.clone());
            tokio::spawn(async move { void(&sandbox, &token, &invoice).await })
        };
        let (paid, voided) = (paying.await.expect("pay"), voiding.await.expect("void"));
        let after = get_invoice(&sandbox, &token, &invoice.id).await;
        match (paid, voided) {
            (Ok(_), Err(status)) => {
                assert!(
                    matches!(
                        reason(&status).as_str(),
                        "INVOICE_HAS_PAYMENTS" | "ETAG_MISMATCH"
                    ),
                    "{status:?}"
                );
                assert_eq!(amount(after.amount_paid.as_ref()), "20.00");
            }
            (Err(status), Ok(_)) => {
                assert_eq!(reason(&status), "INVOICE_STATE", "{status:?}");
                assert_eq!(after.status, pb::InvoiceStatus::Void as i32);
                assert_eq!(payment_rows(&sandbox, &invoice.id).await, 0);
            }
            other => panic!("exactly one must win: {other:?}"),
        }
    }
}

#[tokio::test]
async fn page_tokens_forged_or_taken_from_another_list_or_trainer_are_refused() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, ana) = trainer(&sandbox, "Ana").await;
    let (_, _, ben) = trainer(&sandbox, "Ben").await;
    let first = invoice_of_fifty(&sandbox, &ana).await;
    let second = invoice_of_fifty(&sandbox, &ana).await;
    for _ in 0..2 {
        pay(
            &sandbox,
            &ana,
            payment(&first.id, "1.00"),
            &new_request_id(),
        )
        .await
        .expect("pay");
    }
    let page = list_payments(&sandbox, &ana, &first.id, 1, "")
        .await
        .expect("first page");
    let payments_token = page.next_page_token;
    assert!(!payments_token.is_empty());
    for quarter_number in [1, 2] {
        let (period_start, period_end) = quarter(quarter_number);
        calculate(
            &sandbox,
            &ana,
            pb::CalculateTaxRemittanceRequest {
                period_start,
                period_end,
                ..request(pb::RemittanceKind::GstHst, "0", None)
            },
        )
        .await
        .expect("calculate");
    }
    let remittances = |token: &str, page_token: &str| {
        let request = pb::ListTaxRemittancesRequest {
            trainer_id: String::new(),
            page_size: 1,
            page_token: page_token.into(),
        };
        let token = token.to_owned();
        let sandbox = &sandbox;
        async move {
            billing(sandbox, "gateway")
                .list_tax_remittances(bearer(request, &token))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let remittances_token = remittances(&ana, "")
        .await
        .expect("first remittances")
        .next_page_token;
    assert!(!remittances_token.is_empty());
    // Both tokens are good where they were issued.
    list_payments(&sandbox, &ana, &first.id, 1, &payments_token)
        .await
        .expect("second page of payments");
    remittances(&ana, &remittances_token)
        .await
        .expect("second page of remittances");

    let mut tampered = payments_token.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let invoice_upper = first.id.to_uppercase();
    let refusals = [
        // Another invoice's list.
        list_payments(&sandbox, &ana, &second.id, 1, &payments_token).await,
        // The same invoice spelt differently.
        list_payments(&sandbox, &ana, &invoice_upper, 1, &payments_token).await,
        // Another list's token.
        list_payments(&sandbox, &ana, &first.id, 1, &remittances_token).await,
        // One byte changed.
        list_payments(&sandbox, &ana, &first.id, 1, &tampered).await,
        list_payments(&sandbox, &ana, &first.id, 1, "\0").await,
    ];
    for refused in refusals {
        let status = refused.expect_err("a token from elsewhere");
        assert_eq!(violated_fields(&status), ["page_token"], "{status:?}");
    }
    for (token, page_token) in [
        (&ana, payments_token.as_str()),
        (&ben, remittances_token.as_str()),
        (&ana, tampered.as_str()),
    ] {
        let status = remittances(token, page_token)
            .await
            .expect_err("a token from elsewhere");
        assert_eq!(violated_fields(&status), ["page_token"], "{status:?}");
    }
    // Another trainer with Ana's token on Ana's invoice learns nothing more
    // than with no token: the page token is refused, or the invoice is not found.
    let status = list_payments(&sandbox, &ben, &first.id, 1, &payments_token)
        .await
        .expect_err("a stranger");
    assert!(
        violated_fields(&status) == ["page_token"] || status.code() == Code::NotFound,
        "{status:?}"
    );
}

#[tokio::test]
async fn one_request_id_used_by_two_trainers_makes_two_payments_and_replays_neither() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, ana) = trainer(&sandbox, "Ana").await;
    let (_, _, ben) = trainer(&sandbox, "Ben").await;
    let anas = invoice_of_fifty(&sandbox, &ana).await;
    let bens = invoice_of_fifty(&sandbox, &ben).await;
    let shared = new_request_id();
    let anas_payment = pay(&sandbox, &ana, payment(&anas.id, "10.00"), &shared)
        .await
        .expect("Ana pays")
        .payment
        .expect("payment");
    // Ben replaying Ana's exact request reaches no invoice of hers.
    let replayed = pay(&sandbox, &ben, payment(&anas.id, "10.00"), &shared)
        .await
        .expect_err("Ben replays Ana's request");
    assert_eq!(replayed.code(), Code::NotFound, "{replayed:?}");
    let bens_payment = pay(&sandbox, &ben, payment(&bens.id, "10.00"), &shared)
        .await
        .expect("Ben's own payment under the same request id")
        .payment
        .expect("payment");
    assert_ne!(bens_payment.id, anas_payment.id);
    assert_eq!(bens_payment.invoice_id, bens.id);
    let ana_again = pay(&sandbox, &ana, payment(&anas.id, "10.00"), &shared)
        .await
        .expect("Ana's retry")
        .payment
        .expect("payment");
    assert_eq!(ana_again.id, anas_payment.id);
    // A refund under the same id is another method: its own namespace.
    let refunded = refund(&sandbox, &ben, &bens_payment.id, "1.00", &shared)
        .await
        .expect("refund under the same request id");
    assert_eq!(
        refunded.refund.expect("refund").refund_of_payment_id,
        bens_payment.id
    );
    let stolen = refund(&sandbox, &ben, &anas_payment.id, "1.00", &new_request_id())
        .await
        .expect_err("Ben refunds Ana's payment");
    assert_eq!(stolen.code(), Code::NotFound);
    assert_eq!(payment_rows(&sandbox, &anas.id).await, 1);
    assert_eq!(payment_rows(&sandbox, &bens.id).await, 2);
}

#[tokio::test]
async fn payment_amounts_that_are_not_plain_cents_are_refused_and_write_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let invoice = invoice_of_fifty(&sandbox, &token).await;
    for bad in [
        "-0",
        "-0.00",
        "0.001",
        "1.000",
        "1e3",
        "1E1",
        "NaN",
        "inf",
        " 1.00",
        "1.00 ",
        "1,00",
        "0x10",
        "1_0",
        "١",
        "99999999999.99",
        "10000000000",
        "79228162514264337593543950336",
        "",
        "--1",
        "+-1",
        ".",
    ] {
        let refused = pay(
            &sandbox,
            &token,
            payment(&invoice.id, bad),
            &new_request_id(),
        )
        .await
        .expect_err("not an amount");
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{bad:?}: {refused:?}"
        );
        assert_eq!(violated_fields(&refused), ["payment.amount"], "{bad:?}");
        let refused = refund(
            &sandbox,
            &token,
            &uuid::Uuid::new_v4().to_string(),
            bad,
            &new_request_id(),
        )
        .await
        .expect_err("not an amount");
        assert_eq!(violated_fields(&refused), ["amount"], "{bad:?}");
    }
    for far in [
        NaiveDate::from_ymd_opt(1, 1, 1).expect("date"),
        NaiveDate::from_ymd_opt(9999, 12, 31).expect("date"),
    ] {
        let refused = pay(
            &sandbox,
            &token,
            pb::Payment {
                payment_date: date_of(far),
                ..payment(&invoice.id, "1.00")
            },
            &new_request_id(),
        )
        .await
        .expect_err("a date out of reach");
        assert_eq!(violated_fields(&refused), ["payment.payment_date"], "{far}");
    }
    assert_eq!(payment_rows(&sandbox, &invoice.id).await, 0);
}

#[tokio::test]
async fn control_characters_in_every_new_billing_text_are_refused_by_field_and_write_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let invoice = invoice_of_fifty(&sandbox, &token).await;
    let paid = pay(
        &sandbox,
        &token,
        payment(&invoice.id, "5.00"),
        &new_request_id(),
    )
    .await
    .expect("pay")
    .payment
    .expect("payment");
    let good = create_account(&sandbox, &token, account("Payouts", "1234567", true))
        .await
        .expect("account");
    let remittance = calculate(
        &sandbox,
        &token,
        request(pb::RemittanceKind::GstHst, "0", None),
    )
    .await
    .expect("calculate");
    let today = date_of(Utc::now().date_naive());
    for hostile in [
        "a\0b",
        "a\u{1b}[31mb",
        "a\u{7f}b",
        "a\u{85}b",
        "a\nb",
        "a\u{9f}b",
    ] {
        let refused = pay(
            &sandbox,
            &token,
            pb::Payment {
                reference: hostile.into(),
                ..payment(&invoice.id, "1.00")
            },
            &new_request_id(),
        )
        .await
        .expect_err("reference");
        assert_eq!(
            violated_fields(&refused),
            ["payment.reference"],
            "{hostile:?}"
        );
        if hostile != "a\nb" {
            let refused = billing(&sandbox, "gateway")
                .refund_payment(bearer(
                    pb::RefundPaymentRequest {
                        payment_id: paid.id.clone(),
                        amount: cad("1.00"),
                        reason: hostile.into(),
                        request_id: new_request_id(),
                    },
                    &token,
                ))
                .await
                .expect_err("reason");
            assert_eq!(violated_fields(&refused), ["reason"], "{hostile:?}");
        }
        for (name, bank_name) in [(hostile, "Bank"), ("Name", hostile)] {
            let refused = create_account(
                &sandbox,
                &token,
                pb::BankAccount {
                    name: name.into(),
                    bank_name: bank_name.into(),
                    ..account("x", "7654321", false)
                },
            )
            .await
            .expect_err("account text");
            let field = if name == hostile {
                "bank_account.name"
            } else {
                "bank_account.bank_name"
            };
            assert_eq!(violated_fields(&refused), [field], "{hostile:?}");
            let refused = billing(&sandbox, "gateway")
                .update_bank_account(bearer(
                    pb::UpdateBankAccountRequest {
                        bank_account: Some(pb::BankAccount {
                            id: good.id.clone(),
                            name: name.into(),
                            bank_name: bank_name.into(),
                            institution_number: String::new(),
                            transit_number: String::new(),
                            ..account("x", "", true)
                        }),
                        etag: good.etag.clone(),
                    },
                    &token,
                ))
                .await
                .expect_err("account text");
            assert_eq!(violated_fields(&refused), [field], "{hostile:?}");
        }
        let refused = billing(&sandbox, "gateway")
            .file_tax_remittance(bearer(
                pb::FileTaxRemittanceRequest {
                    remittance_id: remittance.id.clone(),
                    filed_on: today,
                    reference: hostile.into(),
                    etag: remittance.etag.clone(),
                },
                &token,
            ))
            .await
            .expect_err("filing reference");
        assert_eq!(violated_fields(&refused), ["reference"], "{hostile:?}");
        let refused = billing(&sandbox, "gateway")
            .mark_tax_remittance_paid(bearer(
                pb::MarkTaxRemittancePaidRequest {
                    remittance_id: remittance.id.clone(),
                    paid_on: today,
                    reference: hostile.into(),
                    etag: remittance.etag.clone(),
                },
                &token,
            ))
            .await
            .expect_err("payment reference");
        assert_eq!(violated_fields(&refused), ["reference"], "{hostile:?}");
    }
    assert_eq!(payment_rows(&sandbox, &invoice.id).await, 1);
    let accounts = billing(&sandbox, "gateway")
        .list_bank_accounts(bearer(pb::ListBankAccountsRequest::default(), &token))
        .await
        .expect("list")
        .into_inner()
        .bank_accounts;
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].etag, good.etag);
    let unchanged = billing(&sandbox, "gateway")
        .get_tax_remittance(bearer(
            pb::GetTaxRemittanceRequest {
                remittance_id: remittance.id.clone(),
            },
            &token,
        ))
        .await
        .expect("get")
        .into_inner()
        .remittance
        .expect("remittance");
    assert_eq!(unchanged.etag, remittance.etag);
}

async fn bank_accounts(sandbox: &Sandbox, token: &str) -> Result<(), String> {
    billing(sandbox, "gateway")
        .list_bank_accounts(bearer(pb::ListBankAccountsRequest::default(), token))
        .await
        .map(drop)
        .map_err(|status| reason(&status))
}

#[tokio::test]
async fn a_remembered_token_is_refused_once_its_session_ends_and_an_altered_one_never_passes() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, email, _) = trainer(&sandbox, "Ana").await;
    let phone = sandbox.login(&email).await;
    let laptop = sandbox.login(&email).await;
    // Verified once, then served from the verifier's memory.
    for _ in 0..3 {
        assert_eq!(bank_accounts(&sandbox, &phone.access_token).await, Ok(()));
    }
    // Any one character changed, in the header, the claims or the
    // signature, is a token never verified.
    let token = phone.access_token.clone();
    let dots: Vec<usize> = token.match_indices('.').map(|(at, _)| at).collect();
    for at in [1, dots[0] + 5, dots[1] - 3, dots[1] + 10, token.len() - 2] {
        let mut altered = token.clone().into_bytes();
        altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).expect("ascii");
        let refused = billing(&sandbox, "gateway")
            .list_bank_accounts(bearer(pb::ListBankAccountsRequest::default(), &altered))
            .await
            .expect_err("an altered token");
        assert_eq!(
            refused.code(),
            Code::Unauthenticated,
            "byte {at}: {refused:?}"
        );
    }
    assert_eq!(bank_accounts(&sandbox, &phone.access_token).await, Ok(()));

    sandbox
        .identity()
        .revoke_session(bearer(
            RevokeSessionRequest {
                session_id: phone.session_id.clone(),
            },
            &laptop.access_token,
        ))
        .await
        .expect("log the phone out");
    fitflow_testkit::eventually(
        "billing refuses the remembered token",
        std::time::Duration::from_secs(10),
        async || bank_accounts(&sandbox, &phone.access_token).await == Err("TOKEN_REVOKED".into()),
    )
    .await;
    // And keeps refusing it, while the other session is served.
    for _ in 0..3 {
        assert_eq!(
            bank_accounts(&sandbox, &phone.access_token).await,
            Err("TOKEN_REVOKED".to_owned())
        );
    }
    assert_eq!(bank_accounts(&sandbox, &laptop.access_token).await, Ok(()));
}

#[tokio::test]
async fn a_supervisor_reaches_none_of_a_team_members_bank_accounts_or_remittances() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let lead = trainer(&sandbox, "Lena").await;
    let ana = trainer(&sandbox, "Ana").await;
    let invitation = invite_to_team(&sandbox, &lead.2, &lead.0, &ana.1)
        .await
        .expect("invite");
    answer(&sandbox, &ana.2, &invitation.id, true)
        .await
        .expect("join");
    sandbox.structure_settled().await;
    let lead_token = sandbox.login(&lead.1).await.access_token;
    let anas_account = create_account(&sandbox, &ana.2, account("Payouts", "9876543123", true))
        .await
        .expect("account");
    let anas_remittance = calculate(
        &sandbox,
        &ana.2,
        request(pb::RemittanceKind::GstHst, "0", None),
    )
    .await
    .expect("calculate");
    let invoice = invoice_of_fifty(&sandbox, &ana.2).await;
    // The supervisor records payments of Ana's invoices…
    let client = billing(&sandbox, "gateway");
    pay(
        &sandbox,
        &lead_token,
        payment(&invoice.id, "1.00"),
        &new_request_id(),
    )
    .await
    .expect("a supervisor records a payment");
    // …but never reaches her bank accounts or her remittances.
    let mut refusals = vec![
        (
            "pay into her account",
            pay(
                &sandbox,
                &lead_token,
                pb::Payment {
                    bank_account_id: anas_account.id.clone(),
                    ..payment(&invoice.id, "1.00")
                },
                &new_request_id(),
            )
            .await
            .map(drop),
        ),
        (
            "list",
            client
                .clone()
                .list_bank_accounts(bearer(
                    pb::ListBankAccountsRequest {
                        trainer_id: ana.0.clone(),
                    },
                    &lead_token,
                ))
                .await
                .map(drop),
        ),
        (
            "reveal",
            client
                .clone()
                .reveal_bank_account(bearer(
                    pb::RevealBankAccountRequest {
                        bank_account_id: anas_account.id.clone(),
                    },
                    &lead_token,
                ))
                .await
                .map(drop),
        ),
        (
            "create",
            create_account(
                &sandbox,
                &lead_token,
                pb::BankAccount {
                    trainer_id: ana.0.clone(),
                    ..account("Hers", "1111111", true)
                },
            )
            .await
            .map(drop),
        ),
        (
            "update",
            client
                .clone()
                .update_bank_account(bearer(
                    pb::UpdateBankAccountRequest {
                        bank_account: Some(pb::BankAccount {
                            id: anas_account.id.clone(),
                            ..account("Mine now", "2222222", true)
                        }),
                        etag: anas_account.etag.clone(),
                    },
                    &lead_token,
                ))
                .await
                .map(drop),
        ),
        (
            "close",
            client
                .clone()
                .close_bank_account(bearer(
                    pb::CloseBankAccountRequest {
                        bank_account_id: anas_account.id.clone(),
                        etag: anas_account.etag.clone(),
                    },
                    &lead_token,
                ))
                .await
                .map(drop),
        ),
        (
            "calculate",
            calculate(
                &sandbox,
                &lead_token,
                pb::CalculateTaxRemittanceRequest {
                    trainer_id: ana.0.clone(),
                    ..request(pb::RemittanceKind::Qst, "0", None)
                },
            )
            .await
            .map(drop),
        ),
        (
            "get remittance",
            client
                .clone()
                .get_tax_remittance(bearer(
                    pb::GetTaxRemittanceRequest {
                        remittance_id: anas_remittance.id.clone(),
                    },
                    &lead_token,
                ))
                .await
                .map(drop),
        ),
        (
            "list remittances",
            client
                .clone()
                .list_tax_remittances(bearer(
                    pb::ListTaxRemittancesRequest {
                        trainer_id: ana.0.clone(),
                        ..Default::default()
                    },
                    &lead_token,
                ))
                .await
                .map(drop),
        ),
    ];
    refusals.push((
        "file",
        client
            .clone()
            .file_tax_remittance(bearer(
                pb::FileTaxRemittanceRequest {
                    remittance_id: anas_remittance.id.clone(),
                    filed_on: date_of(Utc::now().date_naive()),
                    reference: "CRA-1".into(),
                    etag: anas_remittance.etag.clone(),
                },
                &lead_token,
            ))
            .await
            .map(drop),
    ));
    for (name, outcome) in refusals {
        let status = outcome.expect_err(name);
        assert_eq!(status.code(), Code::NotFound, "{name}: {status:?}");
        assert!(
            !status.message().contains("987654"),
            "{name} leaks: {status:?}"
        );
    }
    // Nothing changed: Ana's account is as she left it, and one payment was made.
    let accounts = client
        .clone()
        .list_bank_accounts(bearer(pb::ListBankAccountsRequest::default(), &ana.2))
        .await
        .expect("her accounts")
        .into_inner()
        .bank_accounts;
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].etag, anas_account.etag);
    assert_eq!(payment_rows(&sandbox, &invoice.id).await, 1);
}

#[tokio::test]
async fn racing_promotions_and_a_close_leave_at_most_one_primary_and_never_internal() {
    let sandbox = Arc::new(Sandbox::new().await);
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let primary = create_account(&sandbox, &token, account("Primary", "1000000", true))
        .await
        .expect("primary");
    let mut others = Vec::new();
    for index in 0..8 {
        others.push(
            create_account(
                &sandbox,
                &token,
                account(&format!("Other {index}"), &format!("200000{index}"), false),
            )
            .await
            .expect("account"),
        );
    }
    let token = Arc::new(token);
    let mut racers = tokio::task::JoinSet::new();
    for other in others {
        let (sandbox, token) = (Arc::clone(&sandbox), Arc::clone(&token));
        racers.spawn(async move {
            billing(&sandbox, "gateway")
                .update_bank_account(bearer(
                    pb::UpdateBankAccountRequest {
                        bank_account: Some(pb::BankAccount {
                            id: other.id.clone(),
                            institution_number: String::new(),
                            transit_number: String::new(),
                            ..account(&other.name, "", true)
                        }),
                        etag: other.etag.clone(),
                    },
                    &token,
                ))
                .await
                .map(drop)
        });
    }
    {
        let (sandbox, token, primary) = (Arc::clone(&sandbox), Arc::clone(&token), primary.clone());
        racers.spawn(async move {
            billing(&sandbox, "gateway")
                .close_bank_account(bearer(
                    pb::CloseBankAccountRequest {
                        bank_account_id: primary.id.clone(),
                        etag: primary.etag.clone(),
                    },
                    &token,
                ))
                .await
                .map(drop)
        });
    }
    while let Some(outcome) = racers.join_next().await {
        if let Err(status) = outcome.expect("racer") {
            assert_ne!(status.code(), Code::Internal, "{status:?}");
            assert_eq!(status.code(), Code::Aborted, "{status:?}");
        }
    }
    let accounts = billing(&sandbox, "gateway")
        .list_bank_accounts(bearer(pb::ListBankAccountsRequest::default(), &token))
        .await
        .expect("list")
        .into_inner()
        .bank_accounts;
    let primaries: Vec<_> = accounts.iter().filter(|account| account.primary).collect();
    assert_eq!(primaries.len(), 1, "{accounts:?}");
    assert_eq!(
        primaries[0].status,
        pb::BankAccountStatus::Active as i32,
        "{accounts:?}"
    );
}
