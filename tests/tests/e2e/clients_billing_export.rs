//! Billing's section of a client's export: billing's internal
//! `StreamClientInvoices` (the clients service's certificate only, audited
//! as an export) gives the invoices, credit notes, payments and refunds
//! billed to the client, and the clients service's `ExportClient` holds
//! them — or fails whole when billing cannot be asked.

use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::billing as pb;
use fitflow_proto::billing::billing_service_client::BillingServiceClient;
use fitflow_proto::clients as clients_pb;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::types::Province;
use tonic::Code;

use crate::billing::{BILLING, client_of, credit, draft, invoice_line, issue};
use crate::billing_payments::{new_request_id, pay, payment};
use crate::identity_support::reason;
use crate::tenancy::{TENANCY, trainer};

const CLIENTS: &str = "clients";
/// Every service an export asks.
pub(crate) const EVERYONE: &[&str] = &[
    IDENTITY,
    TENANCY,
    CLIENTS,
    "scheduling",
    "documentation",
    BILLING,
    AUDIT,
];

/// The whole export document of `client_id` as `token`'s user, parsed.
pub(crate) async fn export(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
) -> Result<serde_json::Value, tonic::Status> {
    let mut stream = ClientsServiceClient::new(sandbox.channel(CLIENTS, "gateway"))
        .export_client(bearer(
            clients_pb::ExportClientRequest {
                client_id: client_id.into(),
                purpose: clients_pb::AccessPurpose::Operations as i32,
            },
            token,
        ))
        .await?
        .into_inner();
    let mut document = Vec::new();
    while let Some(chunk) = stream.message().await? {
        document.extend_from_slice(&chunk.data);
    }
    Ok(serde_json::from_slice(&document).expect("the export is JSON"))
}

/// Billing's stream of `client_id`'s records through `peer`'s certificate
/// (with `token` forwarded when given), every message read.
async fn stream_as(
    sandbox: &Sandbox,
    peer: &str,
    token: Option<&str>,
    client_id: &str,
) -> Result<Vec<pb::StreamClientInvoicesResponse>, tonic::Status> {
    let message = pb::StreamClientInvoicesRequest {
        client_id: client_id.into(),
    };
    let request = match token {
        Some(token) => bearer(message, token),
        None => tonic::Request::new(message),
    };
    let mut stream = BillingServiceClient::new(sandbox.channel(BILLING, peer))
        .stream_client_invoices(request)
        .await?
        .into_inner();
    let mut messages = Vec::new();
    while let Some(message) = stream.message().await? {
        messages.push(message);
    }
    Ok(messages)
}

fn ids(items: &serde_json::Value) -> Vec<String> {
    items
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| item["id"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// How many EXPORT access events billing recorded about `client_id` as
/// itself (its SPIFFE id), once at least `expected` reached the audit
/// service.
async fn billing_exports_of(sandbox: &Sandbox, client_id: &str, expected: i64) -> i64 {
    let admin = sandbox.db.admin_pool().await;
    let mut count = 0;
    for _ in 0..100 {
        count = sqlx::query_scalar(
            "SELECT count(*) FROM audit.access_log WHERE source_service = 'billing' \
             AND resource_type = 'client_invoices' AND resource_id = $1::uuid \
             AND action = 'export' AND purpose = 'operations' \
             AND actor_service = 'spiffe://fitflow/billing' AND actor_user_id IS NULL",
        )
        .bind(client_id)
        .fetch_one(&admin)
        .await
        .expect("access log");
        if count >= expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    count
}

#[tokio::test]
async fn a_clients_export_holds_the_invoices_credit_notes_and_payments_billed_to_them() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client_id = client_of(&sandbox, &owner.2).await;
    let other_client = client_of(&sandbox, &owner.2).await;

    let drafted = draft(
        &sandbox,
        &owner.2,
        &client_id,
        vec![invoice_line(
            "Personal training, 60 min",
            "100.00",
            Province::On,
        )],
    )
    .await
    .expect("draft");
    let issued = issue(&sandbox, &owner.2, &drafted).await.expect("issue");
    let credit_note = credit(&sandbox, &owner.2, &issued.id, "20.00", &new_request_id())
        .await
        .expect("credit note");
    let paid = pay(
        &sandbox,
        &owner.2,
        payment(&issued.id, "50.00"),
        &new_request_id(),
    )
    .await
    .expect("payment")
    .payment
    .expect("payment");
    let still_draft = draft(
        &sandbox,
        &owner.2,
        &client_id,
        vec![invoice_line("Nutrition plan", "40.00", Province::On)],
    )
    .await
    .expect("second draft");
    // Another client's invoice stays out of this client's export.
    let elsewhere = draft(
        &sandbox,
        &owner.2,
        &other_client,
        vec![invoice_line(
            "Someone else's session",
            "70.00",
            Province::On,
        )],
    )
    .await
    .expect("other client's draft");

    let document = export(&sandbox, &owner.2, &client_id)
        .await
        .expect("export");
    assert_eq!(
        document["sections"],
        serde_json::json!(["clients", "scheduling", "documentation", "billing"])
    );
    let billing = &document["billing"];
    assert_eq!(
        ids(&billing["invoices"]),
        [
            issued.id.clone(),
            credit_note.id.clone(),
            still_draft.id.clone()
        ],
        "every invoice and credit note of the client, oldest first"
    );
    assert!(!ids(&billing["invoices"]).contains(&elsewhere.id));
    let invoice = &billing["invoices"][0];
    assert_eq!(invoice["number"], issued.number.as_str());
    assert_eq!(invoice["status"], "INVOICE_STATUS_PARTIALLY_PAID");
    assert_eq!(invoice["clientId"], client_id.as_str());
    assert_eq!(
        invoice["lines"][0]["description"],
        "Personal training, 60 min"
    );
    assert_eq!(invoice["taxes"][0]["kind"], "TAX_KIND_HST");
    assert_eq!(invoice["taxes"][0]["amount"]["amount"], "13.00");
    assert_eq!(invoice["total"]["amount"], "113.00");
    assert_eq!(invoice["amountPaid"]["amount"], "50.00");
    assert_eq!(invoice["balanceDue"]["amount"], "40.40");
    let credited = &billing["invoices"][1];
    assert_eq!(credited["kind"], "DOCUMENT_KIND_CREDIT_NOTE");
    assert_eq!(credited["creditOfInvoiceId"], issued.id.as_str());
    assert_eq!(credited["total"]["amount"], "-22.60");
    assert_eq!(ids(&billing["payments"]), [paid.id.as_str()]);
    let exported_payment = &billing["payments"][0];
    assert_eq!(exported_payment["amount"]["amount"], "50.00");
    assert_eq!(exported_payment["invoiceId"], issued.id.as_str());
    assert!(
        exported_payment.get("bankAccountId").is_none(),
        "the trainer's bank account is not the client's data: {exported_payment}"
    );
    assert_eq!(billing_exports_of(&sandbox, &client_id, 1).await, 1);

    // A client without invoices has an empty section, not a failure.
    let empty = export(&sandbox, &owner.2, &other_client)
        .await
        .expect("export");
    assert_eq!(ids(&empty["billing"]["invoices"]), [elsewhere.id.as_str()]);
    let bare = client_of(&sandbox, &owner.2).await;
    let bare = export(&sandbox, &owner.2, &bare).await.expect("export");
    assert_eq!(bare["billing"], serde_json::json!({}));
}

#[tokio::test]
async fn only_the_clients_service_streams_a_clients_invoices_and_another_trainer_gets_none() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let stranger = trainer(&sandbox, "Eve").await;
    let client_id = client_of(&sandbox, &owner.2).await;
    let drafted = draft(
        &sandbox,
        &owner.2,
        &client_id,
        vec![invoice_line("Personal training", "80.00", Province::On)],
    )
    .await
    .expect("draft");

    // Another trainer, through the clients service: the client does not
    // exist for them.
    let refused = export(&sandbox, &stranger.2, &client_id)
        .await
        .expect_err("a stranger exports nothing");
    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(reason(&refused), "CLIENT_NOT_FOUND");
    // Straight to billing, with either trainer's token, through any
    // certificate but the clients service's: refused by the peer policy.
    for peer in [
        "gateway",
        "operator",
        "identity",
        "tenancy",
        "scheduling",
        "documentation",
        "billing",
        "audit",
    ] {
        for token in [&stranger.2, &owner.2] {
            let refused = stream_as(&sandbox, peer, Some(token), &client_id)
                .await
                .expect_err("only clients streams a client's invoices");
            assert_eq!(refused.code(), Code::PermissionDenied, "{peer}");
            assert_eq!(reason(&refused), "PEER_NOT_ALLOWED", "{peer}");
        }
    }
    assert_eq!(billing_exports_of(&sandbox, &client_id, 0).await, 0);

    // The clients service's certificate reads them (it checked the user's
    // access before it asks), and that is audited.
    let messages = stream_as(&sandbox, CLIENTS, None, &client_id)
        .await
        .expect("clients streams");
    let streamed: Vec<String> = messages
        .iter()
        .flat_map(|message| message.invoices.iter().map(|invoice| invoice.id.clone()))
        .collect();
    assert_eq!(streamed, [drafted.id.as_str()]);
    assert_eq!(billing_exports_of(&sandbox, &client_id, 1).await, 1);
    let bad = stream_as(&sandbox, CLIENTS, None, "not-a-uuid")
        .await
        .expect_err("a client id is a UUID");
    assert_eq!(bad.code(), Code::InvalidArgument);
    // A client with nothing billed: no message at all.
    let nobody = uuid::Uuid::new_v4().to_string();
    assert!(
        stream_as(&sandbox, CLIENTS, None, &nobody)
            .await
            .expect("an empty stream")
            .is_empty()
    );
}

#[tokio::test]
async fn an_export_fails_whole_when_billing_cannot_be_asked() {
    let sandbox = Sandbox::new().await;
    let without_billing: Vec<&str> = EVERYONE
        .iter()
        .copied()
        .filter(|service| *service != BILLING)
        .collect();
    let _stack = sandbox.start(&without_billing).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client = crate::clients::create(
        &sandbox,
        &owner.2,
        crate::clients::full_client("Zoé", "Roy", "", ""),
    )
    .await
    .expect("create");
    let refused = export(&sandbox, &owner.2, &client.id)
        .await
        .expect_err("no export without billing's part");
    assert_eq!(refused.code(), Code::Unavailable);
    assert_eq!(reason(&refused), "DEPENDENCY_UNAVAILABLE");
    assert!(!refused.message().contains(&client.id));
}
