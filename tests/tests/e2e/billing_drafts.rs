//! Client invoices drafted from the schedule end to end: scheduling's
//! billable items of a client's period become one draft, each (appointment,
//! client, charge) billed on at most one invoice that is not void — held by
//! the database under real concurrency — and paying the invoice marks the
//! sessions paid in scheduling through billing's reliable effects.

use std::sync::Arc;

use chrono::Duration;
use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::billing as pb;
use fitflow_proto::scheduling as scheduling_pb;
use fitflow_proto::types::Province;
use tonic::Code;

use crate::billing::{BILLING, billing, invoice_line, issue};
use crate::billing_payments::{new_request_id, pay, payment, refund, void};
use crate::identity_support::{reason, violated_fields};
use crate::scheduling::{SCHEDULING, book, class_type, client_of, from_now, join, scheduling};
use crate::scheduling_billing::{
    all_items, cancel, complete, date, next_days, set_policy, toronto_today,
};
use crate::tenancy::{TENANCY, member, trainer};

const CLIENTS: &str = "clients";
const STACK: &[&str] = &[IDENTITY, TENANCY, CLIENTS, SCHEDULING, BILLING, AUDIT];

/// A draft request for `client_id`'s next four local days (Toronto), from
/// `issuer_id` (the caller when empty).
fn next_days_of(issuer_id: &str, client_id: &str) -> pb::DraftClientInvoiceRequest {
    let today = toronto_today();
    pb::DraftClientInvoiceRequest {
        issuer_id: issuer_id.into(),
        client_id: client_id.into(),
        start_date: date(today),
        end_date: date(today + Duration::days(3)),
        ..Default::default()
    }
}

async fn draft_from_schedule(
    sandbox: &Sandbox,
    token: &str,
    request: pb::DraftClientInvoiceRequest,
) -> Result<pb::Invoice, tonic::Status> {
    billing(sandbox, "gateway")
        .draft_client_invoice(bearer(request, token))
        .await
        .map(|response| response.into_inner().invoice.expect("invoice"))
}

/// What a line bills, in one comparable tuple: (appointment, charge,
/// description's first word, unit price, province).
fn billed(line: &pb::InvoiceLine) -> (String, i32, String, String, i32) {
    (
        line.appointment_id.clone(),
        line.charge,
        line.description
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned(),
        line.unit_price
            .as_ref()
            .map(|money| money.amount.clone())
            .unwrap_or_default(),
        line.province,
    )
}

/// The items a line names: (appointment, charge).
fn items(invoice: &pb::Invoice) -> Vec<(String, i32)> {
    invoice
        .lines
        .iter()
        .map(|line| (line.appointment_id.clone(), line.charge))
        .collect()
}

/// A trainer's schedule to bill: for Zoé, a held session (85.00), a late
/// cancellation (fee 30.00), a no-show (fee 45.50) and a waived no-show;
/// for Léo, a held session; and a session still to come for Zoé.
struct Schedule {
    /// (id, email, token) of Ana, in Toronto, Ontario.
    ana: (String, String, String),
    zoe: String,
    leo: String,
    held: String,
    late: String,
    missed: String,
    class: String,
}

/// A session of `client_id` in `hours` the client missed; its id.
async fn no_show(
    sandbox: &Sandbox,
    token: &str,
    class_type_id: &str,
    client_id: &str,
    hours: i64,
) -> String {
    let missed = book(sandbox, token, class_type_id, from_now(hours), client_id)
        .await
        .expect("book");
    scheduling(sandbox)
        .mark_no_show(bearer(
            scheduling_pb::MarkNoShowRequest {
                appointment_id: missed.id.clone(),
                etag: String::new(),
            },
            token,
        ))
        .await
        .expect("no-show");
    missed.id
}

async fn schedule(sandbox: &Sandbox) -> Schedule {
    let ana = trainer(sandbox, "Ana").await;
    set_policy(sandbox, &ana.2).await;
    let individual = class_type(sandbox, &ana.2, scheduling_pb::ClassCategory::Individual, 1).await;
    let group = class_type(sandbox, &ana.2, scheduling_pb::ClassCategory::Group, 10).await;
    let zoe = client_of(sandbox, &ana.2).await;
    let leo = client_of(sandbox, &ana.2).await;
    let held = book(sandbox, &ana.2, &individual.id, from_now(2), &zoe)
        .await
        .expect("book");
    complete(sandbox, &ana.2, &held.id, &[(&zoe, true)]).await;
    let late = book(sandbox, &ana.2, &individual.id, from_now(4), &zoe)
        .await
        .expect("book");
    assert!(cancel(sandbox, &ana.2, &late.id).await.late_cancel);
    let missed = no_show(sandbox, &ana.2, &individual.id, &zoe, 6).await;
    let waived = no_show(sandbox, &ana.2, &individual.id, &zoe, 8).await;
    scheduling(sandbox)
        .waive_fee(bearer(
            scheduling_pb::WaiveFeeRequest {
                appointment_id: waived,
                reason: "first time".into(),
            },
            &ana.2,
        ))
        .await
        .expect("waive");
    // A group class Léo attended (Zoé did not join it).
    let class = book(sandbox, &ana.2, &group.id, from_now(10), "")
        .await
        .expect("book");
    join(sandbox, &ana.2, &class.id, &leo).await.expect("join");
    complete(sandbox, &ana.2, &class.id, &[(&leo, true)]).await;
    // Still to come: not billable yet.
    book(sandbox, &ana.2, &individual.id, from_now(12), &zoe)
        .await
        .expect("book");
    Schedule {
        ana,
        zoe,
        leo,
        held: held.id,
        late: late.id,
        missed,
        class: class.id,
    }
}

/// Zoé's three billable items, as drafted lines.
fn zoes_lines(plan: &Schedule) -> Vec<(String, i32, String, String, i32)> {
    let ontario = Province::On as i32;
    vec![
        (
            plan.held.clone(),
            pb::ChargeKind::Session as i32,
            "Training".into(),
            "85.00".into(),
            ontario,
        ),
        (
            plan.late.clone(),
            pb::ChargeKind::LateCancel as i32,
            "Late".into(),
            "30.00".into(),
            ontario,
        ),
        (
            plan.missed.clone(),
            pb::ChargeKind::NoShow as i32,
            "No-show".into(),
            "45.50".into(),
            ontario,
        ),
    ]
}

async fn billed_rows(sandbox: &Sandbox) -> i64 {
    let admin = sandbox.db.admin_pool().await;
    sqlx::query_scalar("SELECT count(*) FROM billing.billed_items")
        .fetch_one(&admin)
        .await
        .expect("count billed items")
}

fn nothing_to_bill(status: &tonic::Status) -> bool {
    status.code() == Code::FailedPrecondition && reason(status) == "NOTHING_TO_BILL"
}

#[tokio::test]
async fn a_draft_bills_the_clients_held_sessions_and_unwaived_fees_once_and_a_void_frees_them() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(STACK).await;
    let plan = schedule(&sandbox).await;
    let token = &plan.ana.2;

    let drafted = draft_from_schedule(&sandbox, token, next_days_of("", &plan.zoe))
        .await
        .expect("draft");
    assert_eq!(drafted.status, pb::InvoiceStatus::Draft as i32);
    assert_eq!(
        (drafted.client_id.as_str(), drafted.issuer_id.as_str()),
        (plan.zoe.as_str(), plan.ana.0.as_str())
    );
    assert_eq!(
        drafted.lines.iter().map(billed).collect::<Vec<_>>(),
        zoes_lines(&plan)
    );
    assert_eq!(drafted.subtotal.as_ref().unwrap().amount, "160.50");
    assert_eq!(drafted.payment_terms_days, 30);
    // Léo's session is his own draft's; a retry with its request id
    // returns the same draft.
    let leos_request = pb::DraftClientInvoiceRequest {
        request_id: new_request_id(),
        ..next_days_of(&plan.ana.0, &plan.leo)
    };
    let leos = draft_from_schedule(&sandbox, token, leos_request.clone())
        .await
        .expect("Léo's draft");
    let retried = draft_from_schedule(&sandbox, token, leos_request)
        .await
        .expect("retried");
    assert_eq!(retried.id, leos.id);
    assert_eq!(
        items(&leos),
        vec![(plan.class.clone(), pb::ChargeKind::Session as i32)]
    );

    // Drafting the period again bills nothing twice: refused, nothing written.
    let again = draft_from_schedule(&sandbox, token, next_days_of("", &plan.zoe))
        .await
        .expect_err("billed already");
    assert!(nothing_to_bill(&again), "{again:?}");
    assert_eq!(billed_rows(&sandbox).await, 4);

    // A manual line is added to the draft, which keeps its billed items by
    // naming them; one dropped from it is billable again.
    let mut kept = drafted.lines[..2].to_vec();
    kept.push(invoice_line("Nutrition plan", "40", Province::On));
    let updated = billing(&sandbox, "gateway")
        .update_invoice(bearer(
            pb::UpdateInvoiceRequest {
                invoice: Some(pb::Invoice {
                    id: drafted.id.clone(),
                    lines: kept,
                    ..Default::default()
                }),
                etag: drafted.etag.clone(),
            },
            token,
        ))
        .await
        .expect("update")
        .into_inner()
        .invoice
        .expect("invoice");
    assert_eq!(
        items(&updated),
        vec![
            (plan.held.clone(), pb::ChargeKind::Session as i32),
            (plan.late.clone(), pb::ChargeKind::LateCancel as i32),
            (String::new(), pb::ChargeKind::Unspecified as i32),
        ]
    );
    assert_eq!(updated.subtotal.as_ref().unwrap().amount, "155.00");
    let rest = draft_from_schedule(&sandbox, token, next_days_of("", &plan.zoe))
        .await
        .expect("the dropped no-show");
    assert_eq!(
        items(&rest),
        vec![(plan.missed.clone(), pb::ChargeKind::NoShow as i32)]
    );

    // A line may not name an item this draft does not bill (another
    // draft's, or one made up), nor one on a new invoice.
    for (appointment_id, charge) in [
        (plan.missed.clone(), pb::ChargeKind::NoShow),
        (uuid::Uuid::new_v4().to_string(), pb::ChargeKind::Session),
        (plan.held.clone(), pb::ChargeKind::NoShow),
    ] {
        let forged = pb::InvoiceLine {
            appointment_id,
            charge: charge as i32,
            ..invoice_line("Forged", "1", Province::On)
        };
        let refused = billing(&sandbox, "gateway")
            .update_invoice(bearer(
                pb::UpdateInvoiceRequest {
                    invoice: Some(pb::Invoice {
                        id: updated.id.clone(),
                        lines: vec![forged.clone()],
                        ..Default::default()
                    }),
                    etag: updated.etag.clone(),
                },
                token,
            ))
            .await
            .expect_err("a forged item");
        assert_eq!(
            violated_fields(&refused),
            vec!["invoice.lines[0].appointment_id"]
        );
        let created = crate::billing::draft(&sandbox, token, &plan.zoe, vec![forged])
            .await
            .expect_err("an item on a manual invoice");
        assert_eq!(
            violated_fields(&created),
            vec!["invoice.lines[0].appointment_id"]
        );
    }
    assert_eq!(billed_rows(&sandbox).await, 4);

    // Voiding a draft frees its items; voiding an issued invoice too.
    void(&sandbox, token, &updated)
        .await
        .expect("void the draft");
    let redrafted = draft_from_schedule(&sandbox, token, next_days_of("", &plan.zoe))
        .await
        .expect("billable again");
    assert_eq!(
        items(&redrafted),
        vec![
            (plan.held.clone(), pb::ChargeKind::Session as i32),
            (plan.late.clone(), pb::ChargeKind::LateCancel as i32),
        ]
    );
    let issued = issue(&sandbox, token, &redrafted).await.expect("issue");
    let still = draft_from_schedule(&sandbox, token, next_days_of("", &plan.zoe))
        .await
        .expect_err("on an issued invoice");
    assert!(nothing_to_bill(&still), "{still:?}");
    void(&sandbox, token, &issued)
        .await
        .expect("void the issued invoice");
    let last = draft_from_schedule(&sandbox, token, next_days_of("", &plan.zoe))
        .await
        .expect("billable again");
    assert_eq!(items(&last).len(), 2);
}

#[tokio::test]
async fn twenty_concurrent_drafts_of_one_period_bill_each_item_on_exactly_one_draft() {
    let sandbox = Arc::new(Sandbox::new().await);
    let _stack = sandbox.start(STACK).await;
    let plan = Arc::new(schedule(&sandbox).await);

    let mut handles = Vec::new();
    for _ in 0..20 {
        let (sandbox, plan) = (Arc::clone(&sandbox), Arc::clone(&plan));
        handles.push(tokio::spawn(async move {
            draft_from_schedule(&sandbox, &plan.ana.2, next_days_of("", &plan.zoe)).await
        }));
    }
    let mut drafted = Vec::new();
    for handle in handles {
        match handle.await.expect("join") {
            Ok(invoice) => drafted.push(invoice),
            Err(status) => assert!(nothing_to_bill(&status), "{status:?}"),
        }
    }
    assert!(!drafted.is_empty());
    let mut every_line: Vec<(String, i32)> = drafted.iter().flat_map(items).collect();
    every_line.sort();
    let mut expected: Vec<(String, i32)> = zoes_lines(&plan)
        .into_iter()
        .map(|(appointment, charge, ..)| (appointment, charge))
        .collect();
    expected.sort();
    assert_eq!(every_line, expected, "each item on exactly one draft");
    assert_eq!(billed_rows(&sandbox).await, 3);
}

/// Waits (up to 20 s) until scheduling records `expected` as the payment
/// status of every item of `appointments` for `client_id`; what it records.
async fn payment_statuses(
    sandbox: &Sandbox,
    plan: &Schedule,
    appointments: &[&str],
    expected: scheduling_pb::PaymentStatus,
) -> Vec<i32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (listed, _) = all_items(sandbox, &plan.ana.2, next_days(&plan.ana.0)).await;
        let statuses: Vec<i32> = appointments
            .iter()
            .map(|appointment| {
                listed
                    .iter()
                    .find(|item| item.appointment_id == *appointment && item.client_id == plan.zoe)
                    .map_or(0, |item| item.payment_status)
            })
            .collect();
        if statuses.iter().all(|status| *status == expected as i32)
            || std::time::Instant::now() > deadline
        {
            return statuses;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn paying_a_drafted_invoice_marks_its_items_paid_in_scheduling_and_a_refund_refunded() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(STACK).await;
    let plan = schedule(&sandbox).await;
    let token = &plan.ana.2;
    let all = [plan.held.as_str(), plan.late.as_str(), plan.missed.as_str()];

    let drafted = draft_from_schedule(&sandbox, token, next_days_of("", &plan.zoe))
        .await
        .expect("draft");
    let issued = issue(&sandbox, token, &drafted).await.expect("issue");
    let total = issued.total.as_ref().unwrap().amount.clone();
    // 160.50 and 13% HST (Ontario).
    assert_eq!(total, "181.37");
    // Part of it: nothing is paid in full yet.
    let part = pay(
        &sandbox,
        token,
        payment(&issued.id, "100.00"),
        &new_request_id(),
    )
    .await
    .expect("pay part");
    assert_eq!(
        part.invoice.unwrap().status,
        pb::InvoiceStatus::PartiallyPaid as i32
    );
    let rest = pay(
        &sandbox,
        token,
        payment(&issued.id, "81.37"),
        &new_request_id(),
    )
    .await
    .expect("pay the rest");
    assert_eq!(rest.invoice.unwrap().status, pb::InvoiceStatus::Paid as i32);
    let paid = scheduling_pb::PaymentStatus::Paid;
    assert_eq!(
        payment_statuses(&sandbox, &plan, &all, paid).await,
        vec![paid as i32; 3]
    );
    // Léo's session, on no invoice, stays pending.
    let (listed, _) = all_items(&sandbox, token, next_days(&plan.ana.0)).await;
    let leos = listed
        .iter()
        .find(|item| item.client_id == plan.leo)
        .expect("Léo's item");
    assert_eq!(
        leos.payment_status,
        scheduling_pb::PaymentStatus::Pending as i32
    );
    // A settled item is billed no more, even with its invoice's payments
    // refunded.
    let refunded = refund(
        &sandbox,
        token,
        &rest.payment.unwrap().id,
        "10.00",
        &new_request_id(),
    )
    .await
    .expect("refund");
    assert_eq!(
        refunded.invoice.unwrap().status,
        pb::InvoiceStatus::PartiallyPaid as i32
    );
    let given_back = scheduling_pb::PaymentStatus::Refunded;
    assert_eq!(
        payment_statuses(&sandbox, &plan, &all, given_back).await,
        vec![given_back as i32; 3]
    );
    let again = draft_from_schedule(&sandbox, token, next_days_of("", &plan.zoe))
        .await
        .expect_err("billed and settled");
    assert!(nothing_to_bill(&again), "{again:?}");
    // Every notice was delivered (the relay deletes a command once
    // scheduling answered): billing's command outbox empties, and nothing
    // was refused.
    let admin = sandbox.db.admin_pool().await;
    let mut pending: i64 = -1;
    for _ in 0..100 {
        pending = sqlx::query_scalar("SELECT count(*) FROM billing.command_outbox")
            .fetch_one(&admin)
            .await
            .expect("count commands");
        if pending == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(pending, 0);
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM billing.outbox_dead_letters")
        .fetch_one(&admin)
        .await
        .expect("count dead letters");
    assert_eq!(dead, 0);
}

#[tokio::test]
async fn another_trainer_a_stranger_or_a_wrong_peer_drafts_nothing_and_changes_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(STACK).await;
    let plan = schedule(&sandbox).await;
    let sam = trainer(&sandbox, "Sam").await;
    let stranger = member(&sandbox, "Eve").await;
    let sams_client = client_of(&sandbox, &sam.2).await;

    // Sam, for Ana's client under Ana's name, or under his own.
    let as_ana = draft_from_schedule(&sandbox, &sam.2, next_days_of(&plan.ana.0, &plan.zoe))
        .await
        .expect_err("not Sam's trainer");
    assert_eq!(
        (as_ana.code(), reason(&as_ana).as_str()),
        (Code::NotFound, "TRAINER_NOT_FOUND")
    );
    let as_sam = draft_from_schedule(&sandbox, &sam.2, next_days_of("", &plan.zoe))
        .await
        .expect_err("not Sam's client");
    assert_eq!(
        (as_sam.code(), reason(&as_sam).as_str()),
        (Code::NotFound, "CLIENT_NOT_FOUND")
    );
    // Sam's own client, over the same days: his schedule holds nothing.
    let own = draft_from_schedule(&sandbox, &sam.2, next_days_of("", &sams_client))
        .await
        .expect_err("nothing of Sam's");
    assert!(nothing_to_bill(&own), "{own:?}");
    // Ana, for Sam's client.
    let foreign = draft_from_schedule(&sandbox, &plan.ana.2, next_days_of("", &sams_client))
        .await
        .expect_err("not Ana's client");
    assert_eq!(reason(&foreign), "CLIENT_NOT_FOUND");
    // A signed-in stranger, who is no trainer.
    for issuer in ["", plan.ana.0.as_str()] {
        let refused = draft_from_schedule(&sandbox, &stranger.2, next_days_of(issuer, &plan.zoe))
            .await
            .expect_err("a stranger");
        assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    }
    // No token.
    let anonymous = billing(&sandbox, "gateway")
        .draft_client_invoice(next_days_of("", &plan.zoe))
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    // Services are not callers of DraftClientInvoice, even with Ana's token.
    for peer in [CLIENTS, SCHEDULING, "documentation", TENANCY] {
        let refused = billing(&sandbox, peer)
            .draft_client_invoice(bearer(next_days_of("", &plan.zoe), &plan.ana.2))
            .await
            .expect_err("a wrong peer");
        assert_eq!(refused.code(), Code::PermissionDenied, "{peer}");
        assert_eq!(reason(&refused), "PEER_NOT_ALLOWED");
    }
    assert_eq!(billed_rows(&sandbox).await, 0);
    // Ana's own draft bills all of Zoé's items: nothing was taken.
    let drafted = draft_from_schedule(&sandbox, &plan.ana.2, next_days_of("", &plan.zoe))
        .await
        .expect("Ana's draft");
    assert_eq!(
        drafted.lines.iter().map(billed).collect::<Vec<_>>(),
        zoes_lines(&plan)
    );
    // Sam does not void it, and reaches none of its items.
    let voided = void(&sandbox, &sam.2, &drafted).await.expect_err("not his");
    assert_eq!(reason(&voided), "INVOICE_NOT_FOUND");
    assert_eq!(billed_rows(&sandbox).await, 3);
}

#[tokio::test]
async fn a_hostile_draft_request_is_refused_field_by_field_and_writes_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(STACK).await;
    let ana = trainer(&sandbox, "Ana").await;
    let today = toronto_today();
    let refused = draft_from_schedule(
        &sandbox,
        &ana.2,
        pb::DraftClientInvoiceRequest {
            issuer_id: "ana".into(),
            client_id: String::new(),
            start_date: date(today),
            end_date: date(today + Duration::days(93)),
            payment_terms_days: 121,
            notes: "bad\u{0}".into(),
            request_id: "again".into(),
        },
    )
    .await
    .expect_err("hostile");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let mut fields = violated_fields(&refused);
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "client_id",
            "end_date",
            "issuer_id",
            "notes",
            "payment_terms_days",
            "request_id"
        ]
    );
    let backwards = draft_from_schedule(
        &sandbox,
        &ana.2,
        pb::DraftClientInvoiceRequest {
            start_date: date(today),
            end_date: date(today - Duration::days(1)),
            ..next_days_of("", &uuid::Uuid::new_v4().to_string())
        },
    )
    .await
    .expect_err("a period that ends before it starts");
    assert_eq!(violated_fields(&backwards), vec!["end_date"]);
    let undated = draft_from_schedule(
        &sandbox,
        &ana.2,
        pb::DraftClientInvoiceRequest {
            start_date: None,
            end_date: None,
            ..next_days_of("", &uuid::Uuid::new_v4().to_string())
        },
    )
    .await
    .expect_err("no period");
    let mut fields = violated_fields(&undated);
    fields.sort();
    assert_eq!(fields, vec!["end_date", "start_date"]);
    assert_eq!(billed_rows(&sandbox).await, 0);
}
