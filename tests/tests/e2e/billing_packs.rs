//! Session packs end to end: a client buys a pack of N sessions as a line
//! of an invoice, usable once the invoice is issued; drafting the schedule
//! draws held sessions from it (0.00 lines naming the pack) instead of
//! billing them, until it runs out or expires; voiding the draft gives the
//! sessions back; a pack in use keeps its invoice from being voided; no
//! stranger lists or draws a client's packs; concurrent drafts never draw
//! more than a pack holds; the client's export carries the packs.

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::billing as pb;
use fitflow_proto::billing::billing_service_client::BillingServiceClient;
use fitflow_proto::scheduling as scheduling_pb;
use fitflow_proto::types::Province;
use tonic::Code;

use crate::billing::{BILLING, billing, issue};
use crate::billing_payments::void;
use crate::identity_support::{reason, violated_fields};
use crate::scheduling::{SCHEDULING, book, class_type, client_of, from_now};
use crate::scheduling_billing::{complete, date, toronto_today};
use crate::tenancy::{TENANCY, trainer};

const CLIENTS: &str = "clients";
const STACK: &[&str] = &[IDENTITY, TENANCY, CLIENTS, SCHEDULING, BILLING, AUDIT];

/// A line selling a pack of `sessions` expiring on `expires_on`, at
/// `price`, its description left to the service.
fn pack_line(sessions: i32, expires_on: NaiveDate, price: &str) -> pb::InvoiceLine {
    pb::InvoiceLine {
        pack_sessions: sessions,
        pack_expires_on: date(expires_on),
        ..crate::billing::invoice_line("", price, Province::On)
    }
}

/// Sells `client_id` a pack (a draft, then issued); the issued invoice.
async fn sell_pack(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    sessions: i32,
    expires_on: NaiveDate,
) -> pb::Invoice {
    let drafted = crate::billing::draft(
        sandbox,
        token,
        client_id,
        vec![pack_line(sessions, expires_on, "240")],
    )
    .await
    .expect("draft the pack's invoice");
    issue(sandbox, token, &drafted).await.expect("issue")
}

async fn list_packs(
    sandbox: &Sandbox,
    token: &str,
    issuer_id: &str,
    client_id: &str,
) -> Result<Vec<pb::SessionPack>, tonic::Status> {
    billing(sandbox, "gateway")
        .list_session_packs(bearer(
            pb::ListSessionPacksRequest {
                issuer_id: issuer_id.into(),
                client_id: client_id.into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().session_packs)
}

/// (sessions, used, remaining, state) of each pack, in the listed order.
fn balances(packs: &[pb::SessionPack]) -> Vec<(i32, i32, i32, i32)> {
    packs
        .iter()
        .map(|pack| (pack.sessions, pack.used, pack.remaining, pack.state))
        .collect()
}

fn draft_request(
    client_id: &str,
    first: NaiveDate,
    last: NaiveDate,
) -> pb::DraftClientInvoiceRequest {
    pb::DraftClientInvoiceRequest {
        client_id: client_id.into(),
        start_date: date(first),
        end_date: date(last),
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

/// The next four local days from today (Toronto), as a draft of `client_id`.
fn next_days_of(client_id: &str) -> pb::DraftClientInvoiceRequest {
    let today = toronto_today();
    draft_request(client_id, today, today + Duration::days(3))
}

/// Books and completes a held session of `client_id` `hours` from now; its
/// appointment id and its local date in Toronto.
async fn held_session(
    sandbox: &Sandbox,
    token: &str,
    class_type_id: &str,
    client_id: &str,
    hours: i64,
) -> (String, NaiveDate) {
    let start = from_now(hours);
    let held = book(sandbox, token, class_type_id, start, client_id)
        .await
        .expect("book");
    complete(sandbox, token, &held.id, &[(client_id, true)]).await;
    let local = start
        .with_timezone(&chrono_tz::America::Toronto)
        .date_naive();
    (held.id, local)
}

/// A trainer in Toronto with an individual class type and a client.
struct Practice {
    /// (id, email, token).
    ana: (String, String, String),
    class_type_id: String,
    zoe: String,
}

async fn practice(sandbox: &Sandbox) -> Practice {
    let ana = trainer(sandbox, "Ana").await;
    let individual = class_type(sandbox, &ana.2, scheduling_pb::ClassCategory::Individual, 1).await;
    let zoe = client_of(sandbox, &ana.2).await;
    Practice {
        ana,
        class_type_id: individual.id,
        zoe,
    }
}

/// (drawn pack id, unit price) of each line.
fn draws(invoice: &pb::Invoice) -> Vec<(String, String)> {
    invoice
        .lines
        .iter()
        .map(|line| {
            (
                line.drawn_pack_id.clone(),
                line.unit_price
                    .as_ref()
                    .map(|money| money.amount.clone())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

async fn pack_rows_over_their_sessions(sandbox: &Sandbox) -> i64 {
    let admin = sandbox.db.admin_pool().await;
    sqlx::query_scalar("SELECT count(*) FROM billing.session_packs WHERE used > sessions")
        .fetch_one(&admin)
        .await
        .expect("count packs")
}

#[tokio::test]
async fn a_pack_of_three_draws_three_of_four_held_sessions_and_voiding_the_draft_gives_them_back() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(STACK).await;
    let office = practice(&sandbox).await;
    let (ana_id, token) = (&office.ana.0, &office.ana.2);
    let expires_on = toronto_today() + Duration::days(60);

    // A draft sells nothing; issuing it sells the pack.
    let unissued = crate::billing::draft(
        &sandbox,
        token,
        &office.zoe,
        vec![pack_line(3, expires_on, "240")],
    )
    .await
    .expect("draft");
    assert_eq!(
        unissued.lines[0].description,
        format!("Pack of 3 sessions, expires {expires_on}")
    );
    assert_eq!(unissued.lines[0].pack_sessions, 3);
    assert!(
        list_packs(&sandbox, token, "", &office.zoe)
            .await
            .expect("list")
            .is_empty()
    );
    let sale = issue(&sandbox, token, &unissued).await.expect("issue");
    let packs = list_packs(&sandbox, token, ana_id, &office.zoe)
        .await
        .expect("list");
    assert_eq!(
        balances(&packs),
        vec![(3, 0, 3, pb::SessionPackState::Active as i32)]
    );
    let pack = packs[0].clone();
    assert_eq!(
        (pack.invoice_id.as_str(), pack.line_position),
        (sale.id.as_str(), 1)
    );
    assert_eq!(pack.expires_on, date(expires_on));

    let mut held = Vec::new();
    for hours in [2, 4, 6, 8] {
        held.push(held_session(&sandbox, token, &office.class_type_id, &office.zoe, hours).await);
    }
    let drafted = draft_from_schedule(&sandbox, token, next_days_of(&office.zoe))
        .await
        .expect("draft from the schedule");
    let lines: Vec<String> = drafted
        .lines
        .iter()
        .map(|line| line.appointment_id.clone())
        .collect();
    assert_eq!(
        lines,
        held.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        draws(&drafted),
        vec![
            (pack.id.clone(), "0.00".to_owned()),
            (pack.id.clone(), "0.00".to_owned()),
            (pack.id.clone(), "0.00".to_owned()),
            (String::new(), "85.00".to_owned()),
        ]
    );
    assert!(
        drafted.lines[0]
            .description
            .ends_with(&format!("from pack of 3 sessions, expires {expires_on}")),
        "{}",
        drafted.lines[0].description
    );
    assert_eq!(drafted.subtotal.as_ref().unwrap().amount, "85.00");
    assert_eq!(
        balances(
            &list_packs(&sandbox, token, "", &office.zoe)
                .await
                .expect("list")
        ),
        vec![(3, 3, 0, pb::SessionPackState::Active as i32)]
    );

    // A pack in use keeps its invoice from being voided.
    let in_use = void(&sandbox, token, &sale).await.expect_err("in use");
    assert_eq!(in_use.code(), Code::FailedPrecondition);
    assert_eq!(reason(&in_use), "SESSION_PACK_IN_USE");

    // A drawn session stays at 0.00 on the draft; dropping its line gives
    // it back to the pack.
    let mut priced = drafted.lines.clone();
    priced[0].unit_price = crate::billing::cad("85");
    let refused = billing(&sandbox, "gateway")
        .update_invoice(bearer(
            pb::UpdateInvoiceRequest {
                invoice: Some(pb::Invoice {
                    id: drafted.id.clone(),
                    lines: priced,
                    ..Default::default()
                }),
                etag: drafted.etag.clone(),
            },
            token,
        ))
        .await
        .expect_err("a drawn session billed");
    assert_eq!(
        violated_fields(&refused),
        vec!["invoice.lines[0].unit_price"]
    );
    let updated = billing(&sandbox, "gateway")
        .update_invoice(bearer(
            pb::UpdateInvoiceRequest {
                invoice: Some(pb::Invoice {
                    id: drafted.id.clone(),
                    lines: drafted.lines[1..].to_vec(),
                    ..Default::default()
                }),
                etag: drafted.etag.clone(),
            },
            token,
        ))
        .await
        .expect("drop a drawn session")
        .into_inner()
        .invoice
        .expect("invoice");
    assert_eq!(
        draws(&updated),
        vec![
            (pack.id.clone(), "0.00".to_owned()),
            (pack.id.clone(), "0.00".to_owned()),
            (String::new(), "85.00".to_owned()),
        ]
    );
    assert_eq!(
        balances(
            &list_packs(&sandbox, token, "", &office.zoe)
                .await
                .expect("list")
        ),
        vec![(3, 2, 1, pb::SessionPackState::Active as i32)]
    );

    // Voiding the draft gives back every session it drew.
    void(&sandbox, token, &updated)
        .await
        .expect("void the draft");
    assert_eq!(
        balances(
            &list_packs(&sandbox, token, "", &office.zoe)
                .await
                .expect("list")
        ),
        vec![(3, 0, 3, pb::SessionPackState::Active as i32)]
    );

    // The client's export carries the pack.
    let mut stream = BillingServiceClient::new(sandbox.channel(BILLING, "clients"))
        .stream_client_invoices(pb::StreamClientInvoicesRequest {
            client_id: office.zoe.clone(),
        })
        .await
        .expect("export")
        .into_inner();
    let mut exported = Vec::new();
    while let Some(message) = stream.message().await.expect("a message") {
        exported.extend(message.session_packs);
    }
    assert_eq!(
        exported
            .iter()
            .map(|pack| pack.id.clone())
            .collect::<Vec<_>>(),
        vec![pack.id.clone()]
    );

    // Unused, the pack's invoice is voided and the pack cancelled: the
    // sessions are billed again.
    void(&sandbox, token, &sale).await.expect("void the sale");
    assert_eq!(
        balances(
            &list_packs(&sandbox, token, "", &office.zoe)
                .await
                .expect("list")
        ),
        vec![(3, 0, 3, pb::SessionPackState::Cancelled as i32)]
    );
    let billed = draft_from_schedule(&sandbox, token, next_days_of(&office.zoe))
        .await
        .expect("billed");
    assert_eq!(draws(&billed), vec![(String::new(), "85.00".to_owned()); 4]);
}

#[tokio::test]
async fn an_expired_pack_draws_nothing_and_a_credit_note_sells_no_pack() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(STACK).await;
    let office = practice(&sandbox).await;
    let token = &office.ana.2;
    let yesterday = toronto_today() - Duration::days(1);
    let sale = sell_pack(&sandbox, token, &office.zoe, 5, yesterday).await;
    held_session(&sandbox, token, &office.class_type_id, &office.zoe, 2).await;

    let drafted = draft_from_schedule(&sandbox, token, next_days_of(&office.zoe))
        .await
        .expect("draft");
    assert_eq!(draws(&drafted), vec![(String::new(), "85.00".to_owned())]);
    assert_eq!(
        balances(
            &list_packs(&sandbox, token, "", &office.zoe)
                .await
                .expect("list")
        ),
        vec![(5, 0, 5, pb::SessionPackState::Active as i32)]
    );

    let credit = billing(&sandbox, "gateway")
        .issue_credit_note(bearer(
            pb::IssueCreditNoteRequest {
                invoice_id: sale.id.clone(),
                lines: vec![pb::InvoiceLine {
                    description: "Pack".into(),
                    ..pack_line(5, yesterday, "10")
                }],
                notes: "Goodwill".into(),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            token,
        ))
        .await
        .expect_err("a pack on a credit note");
    assert_eq!(violated_fields(&credit), vec!["lines[0].pack_sessions"]);
    // A pack line is one pack: quantity 1, sessions within bounds.
    let bad = crate::billing::draft(
        &sandbox,
        token,
        &office.zoe,
        vec![
            pb::InvoiceLine {
                quantity: "2".into(),
                ..pack_line(5, yesterday, "10")
            },
            pb::InvoiceLine {
                description: "Pack".into(),
                ..pack_line(0, yesterday, "10")
            },
        ],
    )
    .await
    .expect_err("bad pack lines");
    assert_eq!(
        violated_fields(&bad),
        vec![
            "invoice.lines[0].quantity",
            "invoice.lines[1].pack_sessions"
        ]
    );
}

#[tokio::test]
async fn another_trainers_token_neither_lists_nor_draws_a_clients_packs() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(STACK).await;
    let office = practice(&sandbox).await;
    let (ana_id, token) = (&office.ana.0, &office.ana.2);
    sell_pack(
        &sandbox,
        token,
        &office.zoe,
        3,
        toronto_today() + Duration::days(30),
    )
    .await;
    held_session(&sandbox, token, &office.class_type_id, &office.zoe, 2).await;
    let (_, _, stranger) = trainer(&sandbox, "Bob").await;

    let named = list_packs(&sandbox, &stranger, ana_id, &office.zoe)
        .await
        .expect_err("Ana's packs");
    assert_eq!(
        (named.code(), reason(&named).as_str()),
        (Code::NotFound, "TRAINER_NOT_FOUND")
    );
    assert!(
        list_packs(&sandbox, &stranger, "", &office.zoe)
            .await
            .expect("his own packs of Zoé: none")
            .is_empty()
    );
    for request in [
        pb::DraftClientInvoiceRequest {
            issuer_id: ana_id.clone(),
            ..next_days_of(&office.zoe)
        },
        next_days_of(&office.zoe),
    ] {
        let refused = draft_from_schedule(&sandbox, &stranger, request)
            .await
            .expect_err("a stranger's draft");
        assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    }
    // No token, or a peer that is not the gateway or an operator.
    let anonymous = billing(&sandbox, "gateway")
        .list_session_packs(pb::ListSessionPacksRequest {
            client_id: office.zoe.clone(),
            ..Default::default()
        })
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let wrong_peer = BillingServiceClient::new(sandbox.channel(BILLING, SCHEDULING))
        .list_session_packs(bearer(
            pb::ListSessionPacksRequest {
                client_id: office.zoe.clone(),
                ..Default::default()
            },
            token,
        ))
        .await
        .expect_err("scheduling's certificate");
    assert_eq!(wrong_peer.code(), Code::PermissionDenied);
    assert_eq!(
        balances(
            &list_packs(&sandbox, token, "", &office.zoe)
                .await
                .expect("list")
        ),
        vec![(3, 0, 3, pb::SessionPackState::Active as i32)]
    );
}

#[tokio::test]
async fn twenty_concurrent_drafts_never_draw_more_sessions_than_the_pack_holds() {
    let sandbox = Arc::new(Sandbox::new().await);
    let _stack = sandbox.start(STACK).await;
    let office = practice(&sandbox).await;
    let token = office.ana.2.clone();
    sell_pack(
        &sandbox,
        &token,
        &office.zoe,
        5,
        toronto_today() + Duration::days(60),
    )
    .await;
    // Twenty held sessions a day apart, each drafted on its own: the drafts
    // claim no item in common and meet only at the pack.
    let mut days = Vec::new();
    for day in 0..20 {
        let (_, local) = held_session(
            &sandbox,
            &token,
            &office.class_type_id,
            &office.zoe,
            2 + 24 * day,
        )
        .await;
        days.push(local);
    }
    days.sort();
    days.dedup();

    let mut handles = Vec::new();
    for day in days {
        let (sandbox, token, zoe) = (Arc::clone(&sandbox), token.clone(), office.zoe.clone());
        handles.push(tokio::spawn(async move {
            draft_from_schedule(&sandbox, &token, draft_request(&zoe, day, day)).await
        }));
    }
    let mut lines = Vec::new();
    for handle in handles {
        let drafted = handle.await.expect("join").expect("a draft");
        lines.extend(draws(&drafted));
    }
    assert_eq!(lines.len(), 20, "each session on one draft");
    let drawn = lines.iter().filter(|(pack, _)| !pack.is_empty()).count();
    assert_eq!(drawn, 5, "{lines:?}");
    assert_eq!(
        balances(
            &list_packs(&sandbox, &token, "", &office.zoe)
                .await
                .expect("list")
        ),
        vec![(5, 5, 0, pb::SessionPackState::Active as i32)]
    );
    assert_eq!(pack_rows_over_their_sessions(&sandbox).await, 0);
}

#[tokio::test]
async fn the_clients_full_export_lists_the_packs_sold_to_them_with_their_balance() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(crate::clients_billing_export::EVERYONE).await;
    let office = practice(&sandbox).await;
    let token = &office.ana.2;
    let sale = sell_pack(
        &sandbox,
        token,
        &office.zoe,
        3,
        toronto_today() + Duration::days(30),
    )
    .await;
    held_session(&sandbox, token, &office.class_type_id, &office.zoe, 2).await;
    draft_from_schedule(&sandbox, token, next_days_of(&office.zoe))
        .await
        .expect("draw one session");

    let document = crate::clients_billing_export::export(&sandbox, token, &office.zoe)
        .await
        .expect("export");
    let packs = document["billing"]["sessionPacks"]
        .as_array()
        .expect("the packs");
    assert_eq!(packs.len(), 1, "{packs:?}");
    assert_eq!(packs[0]["invoiceId"], serde_json::json!(sale.id));
    assert_eq!(
        (
            &packs[0]["sessions"],
            &packs[0]["used"],
            &packs[0]["remaining"]
        ),
        (
            &serde_json::json!(3),
            &serde_json::json!(1),
            &serde_json::json!(2)
        )
    );
}
