//! Studio invoices end to end: a contractor trainer bills a studio for the
//! sessions held there in a period, each at the contract's rate on its
//! date, once across the invoices that are not void; the studio's managers
//! read what was issued to them, and nobody else does. Attacked as another
//! trainer, another studio's owner, with drafts, bad fields and no token.

use chrono::Duration;
use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::billing as pb;
use fitflow_proto::scheduling as scheduling_pb;
use fitflow_proto::tenancy as tenancy_pb;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::billing::{BILLING, billing, issue};
use crate::identity_support::{reason, violated_fields};
use crate::scheduling::{SCHEDULING, class_type, client_of, join};
use crate::scheduling_billing::{cancel, complete};
use crate::scheduling_studios::{book_at, vancouver, vancouver_studio, vancouver_today};
use crate::tenancy::{TENANCY, date, member, rates, tenancy, trainer};

pub(crate) const STACK: &[&str] = &[IDENTITY, TENANCY, "clients", SCHEDULING, BILLING, AUDIT];

/// The studio invites the trainer (group 50.00, individual 90.00, trial
/// 25.00) from today and the trainer accepts; returns the contract's id.
pub(crate) async fn contract_with_rates(
    sandbox: &Sandbox,
    owner_token: &str,
    trainer_token: &str,
    studio_id: &str,
    trainer_email: &str,
) -> String {
    let mut api = tenancy(sandbox, "gateway");
    let invited = api
        .create_contract(bearer(
            tenancy_pb::CreateContractRequest {
                studio_id: studio_id.into(),
                trainer: Some(tenancy_pb::create_contract_request::Trainer::TrainerEmail(
                    trainer_email.into(),
                )),
                role: tenancy_pb::ContractRole::Contractor as i32,
                start_date: date(vancouver_today()),
                rates: rates("50", None),
                request_id: String::new(),
            },
            owner_token,
        ))
        .await
        .expect("invite")
        .into_inner()
        .contract
        .expect("contract");
    api.accept_contract(bearer(
        tenancy_pb::AcceptContractRequest {
            contract_id: invited.id.clone(),
            etag: String::new(),
        },
        trainer_token,
    ))
    .await
    .expect("accept");
    invited.id
}

pub(crate) fn studio_draft(studio_id: &str, days: i64) -> pb::DraftStudioInvoiceRequest {
    let today = vancouver_today();
    pb::DraftStudioInvoiceRequest {
        studio_id: studio_id.into(),
        start_date: date(today),
        end_date: date(today + Duration::days(days)),
        ..Default::default()
    }
}

pub(crate) async fn draft_for_studio(
    sandbox: &Sandbox,
    token: &str,
    request: pb::DraftStudioInvoiceRequest,
) -> Result<pb::Invoice, tonic::Status> {
    billing(sandbox, "gateway")
        .draft_studio_invoice(bearer(request, token))
        .await
        .map(|response| response.into_inner().invoice.expect("invoice"))
}

pub(crate) async fn studio_invoices(
    sandbox: &Sandbox,
    token: &str,
    studio_id: &str,
) -> Result<Vec<pb::Invoice>, tonic::Status> {
    billing(sandbox, "gateway")
        .list_studio_invoices(bearer(
            pb::ListStudioInvoicesRequest {
                studio_id: studio_id.into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().invoices)
}

pub(crate) async fn get_invoice(
    sandbox: &Sandbox,
    token: &str,
    invoice_id: &str,
) -> Result<pb::Invoice, tonic::Status> {
    billing(sandbox, "gateway")
        .get_invoice(bearer(
            pb::GetInvoiceRequest {
                invoice_id: invoice_id.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().invoice.expect("invoice"))
}

/// (appointment, charge, unit price, province) of each line.
fn billed(invoice: &pb::Invoice) -> Vec<(String, i32, String, i32)> {
    invoice
        .lines
        .iter()
        .map(|line| {
            (
                line.appointment_id.clone(),
                line.charge,
                line.unit_price.clone().unwrap_or_default().amount,
                line.province,
            )
        })
        .collect()
}

#[tokio::test]
async fn a_studio_is_billed_once_for_each_session_held_there_at_the_rate_of_its_date() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(STACK).await;
    let (trainer_id, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, owner_email, owner_token) = member(&sandbox, "Olivia").await;
    let (_, rival_email, rival_token) = member(&sandbox, "Rita").await;
    let (_, _, stranger_token) = trainer(&sandbox, "Sam").await;
    // In Vancouver's zone, addressed in Quebec: GST and QST, in French.
    let studio = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    let rival_studio = vancouver_studio(&sandbox, &rival_token, "Studio Rival").await;
    let contract_id = contract_with_rates(
        &sandbox,
        &owner_token,
        &trainer_token,
        &studio.id,
        &trainer_email,
    )
    .await;
    let today = vancouver_today();
    // The group rate is 65.00 from the fourth day on.
    tenancy(&sandbox, "gateway")
        .add_rate_version(bearer(
            tenancy_pb::AddRateVersionRequest {
                contract_id,
                rates: rates("65", Some(today + Duration::days(3))),
            },
            &owner_token,
        ))
        .await
        .expect("a new group rate");
    // The owners' tokens name their studios once refreshed after creating them.
    let owner_token = sandbox.login(&owner_email).await.access_token;
    let rival_token = sandbox.login(&rival_email).await.access_token;
    let group = class_type(
        &sandbox,
        &trainer_token,
        scheduling_pb::ClassCategory::Group,
        5,
    )
    .await;
    let individual = class_type(
        &sandbox,
        &trainer_token,
        scheduling_pb::ClassCategory::Individual,
        1,
    )
    .await;
    let (zoe, liam) = (
        client_of(&sandbox, &trainer_token).await,
        client_of(&sandbox, &trainer_token).await,
    );

    // A class on day 1 at 50.00 (one of two came: the studio owes it all the same).
    let early_class = book_at(
        &sandbox,
        &trainer_token,
        &group.id,
        vancouver(today + Duration::days(1), 9, 0),
        "",
        &studio.id,
    )
    .await
    .expect("early class");
    join(&sandbox, &trainer_token, &early_class.id, &zoe)
        .await
        .expect("zoe joins");
    join(&sandbox, &trainer_token, &early_class.id, &liam)
        .await
        .expect("liam joins");
    complete(
        &sandbox,
        &trainer_token,
        &early_class.id,
        &[(&zoe, true), (&liam, false)],
    )
    .await;
    // A one-to-one on day 2 at 90.00, late in the evening: Vancouver's date.
    let session = book_at(
        &sandbox,
        &trainer_token,
        &individual.id,
        vancouver(today + Duration::days(2), 22, 30),
        &zoe,
        &studio.id,
    )
    .await
    .expect("session");
    complete(&sandbox, &trainer_token, &session.id, &[(&zoe, true)]).await;
    // A class on day 4 at the new 65.00.
    let late_class = book_at(
        &sandbox,
        &trainer_token,
        &group.id,
        vancouver(today + Duration::days(4), 9, 0),
        "",
        &studio.id,
    )
    .await
    .expect("late class");
    complete(&sandbox, &trainer_token, &late_class.id, &[]).await;
    // Not billed to the studio: a session at no studio, a cancelled one.
    let elsewhere = book_at(
        &sandbox,
        &trainer_token,
        &individual.id,
        vancouver(today + Duration::days(2), 12, 0),
        &zoe,
        "",
    )
    .await
    .expect("at no studio");
    complete(&sandbox, &trainer_token, &elsewhere.id, &[(&zoe, true)]).await;
    let cancelled = book_at(
        &sandbox,
        &trainer_token,
        &individual.id,
        vancouver(today + Duration::days(3), 12, 0),
        &zoe,
        &studio.id,
    )
    .await
    .expect("to cancel");
    cancel(&sandbox, &trainer_token, &cancelled.id).await;

    // Another trainer cannot bill as Ana, nor see anything owed.
    let mut as_ana = studio_draft(&studio.id, 6);
    as_ana.issuer_id = trainer_id.clone();
    let refused = draft_for_studio(&sandbox, &stranger_token, as_ana)
        .await
        .expect_err("not Ana");
    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(reason(&refused), "TRAINER_NOT_FOUND");

    let drafted = draft_for_studio(&sandbox, &trainer_token, studio_draft(&studio.id, 6))
        .await
        .expect("the studio's draft");
    let studio_rate = pb::ChargeKind::StudioRate as i32;
    let quebec = fitflow_proto::types::Province::Qc as i32;
    assert_eq!(
        billed(&drafted),
        vec![
            (
                early_class.id.clone(),
                studio_rate,
                "50.00".to_owned(),
                quebec
            ),
            (session.id.clone(), studio_rate, "90.00".to_owned(), quebec),
            (
                late_class.id.clone(),
                studio_rate,
                "65.00".to_owned(),
                quebec
            ),
        ]
    );
    assert_eq!(drafted.studio_id, studio.id);
    assert!(drafted.client_id.is_empty());
    assert!(drafted.lines[0].description.contains("(1 present)"));
    assert_eq!(
        drafted.subtotal.clone().unwrap_or_default().amount,
        "205.00"
    );

    // Each session is billed once: nothing is left for a second draft.
    let again = draft_for_studio(&sandbox, &trainer_token, studio_draft(&studio.id, 6))
        .await
        .expect_err("billed already");
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(reason(&again), "NOTHING_TO_BILL");

    // A draft is the trainer's alone: the studio's owner sees none of it.
    let hidden = get_invoice(&sandbox, &owner_token, &drafted.id)
        .await
        .expect_err("a draft");
    assert_eq!(hidden.code(), Code::NotFound);
    assert!(
        studio_invoices(&sandbox, &owner_token, &studio.id)
            .await
            .expect("the owner's list")
            .is_empty()
    );

    let issued = issue(&sandbox, &trainer_token, &drafted)
        .await
        .expect("issued to the studio");
    assert!(!issued.number.is_empty());
    let mut taxes: Vec<(i32, String)> = issued
        .taxes
        .iter()
        .map(|tax| (tax.province, tax.amount.clone().unwrap_or_default().amount))
        .collect();
    taxes.sort();
    // GST 5% of 205.00 and QST 9.975% of 205.00, once each.
    assert_eq!(
        taxes,
        vec![(quebec, "10.25".to_owned()), (quebec, "20.45".to_owned())]
    );

    // The studio's owner reads it; another studio's owner and another
    // trainer do not, and learn nothing of it.
    let listed = studio_invoices(&sandbox, &owner_token, &studio.id)
        .await
        .expect("the owner's list");
    assert_eq!(
        listed
            .iter()
            .map(|invoice| invoice.id.clone())
            .collect::<Vec<_>>(),
        vec![issued.id.clone()]
    );
    let read = get_invoice(&sandbox, &owner_token, &issued.id)
        .await
        .expect("the owner reads it");
    assert_eq!(read.total, issued.total);
    for token in [&rival_token, &stranger_token] {
        let denied = studio_invoices(&sandbox, token, &studio.id)
            .await
            .expect_err("not their studio");
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert_eq!(reason(&denied), "STUDIO_NOT_MANAGED");
        let unseen = get_invoice(&sandbox, token, &issued.id)
            .await
            .expect_err("not theirs");
        assert_eq!(unseen.code(), Code::NotFound);
        assert_eq!(reason(&unseen), "INVOICE_NOT_FOUND");
    }
    assert!(
        studio_invoices(&sandbox, &rival_token, &rival_studio.id)
            .await
            .expect("the rival's own list")
            .is_empty()
    );
    // The owner cannot change what was issued to them.
    let void_by_owner = billing(&sandbox, "gateway")
        .void_invoice(bearer(
            pb::VoidInvoiceRequest {
                invoice_id: issued.id.clone(),
                reason: "not mine to void".into(),
                etag: issued.etag.clone(),
            },
            &owner_token,
        ))
        .await
        .expect_err("the owner voids nothing");
    assert_eq!(void_by_owner.code(), Code::NotFound);

    // The PDF is the studio's too: addressed to it, in French.
    let mut pdf = Vec::new();
    let mut stream = billing(&sandbox, "gateway")
        .render_invoice_pdf(bearer(
            pb::RenderInvoicePdfRequest {
                invoice_id: issued.id.clone(),
            },
            &owner_token,
        ))
        .await
        .expect("the owner prints it")
        .into_inner();
    while let Some(chunk) = stream.message().await.expect("chunk") {
        pdf.extend(chunk.data);
    }
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(
        pdf.windows(b"FACTURE".len()).any(|w| w == b"FACTURE"),
        "a studio in Quebec gets its invoice in French"
    );

    // Voided, its sessions may be billed again.
    let voided = billing(&sandbox, "gateway")
        .void_invoice(bearer(
            pb::VoidInvoiceRequest {
                invoice_id: issued.id.clone(),
                reason: "wrong period".into(),
                etag: issued.etag.clone(),
            },
            &trainer_token,
        ))
        .await
        .expect("void")
        .into_inner()
        .invoice
        .expect("invoice");
    assert_eq!(voided.status, pb::InvoiceStatus::Void as i32);
    let redrafted = draft_for_studio(&sandbox, &trainer_token, studio_draft(&studio.id, 6))
        .await
        .expect("billable again");
    assert_eq!(billed(&redrafted), billed(&drafted));
}

#[tokio::test]
async fn a_studio_draft_refuses_bad_fields_unknown_studios_and_dates_without_a_contract() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(STACK).await;
    let (_, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = vancouver_studio(&sandbox, &owner_token, "Studio Kits").await;
    let contract_id = contract_with_rates(
        &sandbox,
        &owner_token,
        &trainer_token,
        &studio.id,
        &trainer_email,
    )
    .await;

    let today = vancouver_today();
    let bad = pb::DraftStudioInvoiceRequest {
        issuer_id: "not-a-uuid".into(),
        studio_id: "x\0".into(),
        start_date: date(today),
        end_date: date(today + Duration::days(93)),
        payment_terms_days: 121,
        notes: "a\0b".into(),
        request_id: "nope".into(),
    };
    let refused = draft_for_studio(&sandbox, &trainer_token, bad)
        .await
        .expect_err("bad fields");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let mut fields = violated_fields(&refused);
    fields.sort();
    assert_eq!(
        fields,
        [
            "end_date",
            "issuer_id",
            "notes",
            "payment_terms_days",
            "request_id",
            "studio_id"
        ]
    );
    let mut backwards = studio_draft(&studio.id, 0);
    backwards.end_date = date(today - Duration::days(1));
    let refused = draft_for_studio(&sandbox, &trainer_token, backwards)
        .await
        .expect_err("backwards");
    assert_eq!(violated_fields(&refused), ["end_date"]);
    let mut no_dates = studio_draft(&studio.id, 0);
    no_dates.start_date = None;
    no_dates.end_date = None;
    let refused = draft_for_studio(&sandbox, &trainer_token, no_dates)
        .await
        .expect_err("no dates");
    let mut fields = violated_fields(&refused);
    fields.sort();
    assert_eq!(fields, ["end_date", "start_date"]);

    let unknown = draft_for_studio(
        &sandbox,
        &trainer_token,
        studio_draft(&uuid::Uuid::new_v4().to_string(), 6),
    )
    .await
    .expect_err("no such studio");
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(reason(&unknown), "STUDIO_NOT_FOUND");

    // Nothing held there yet: nothing to bill, nothing written.
    let empty = draft_for_studio(&sandbox, &trainer_token, studio_draft(&studio.id, 6))
        .await
        .expect_err("nothing held");
    assert_eq!(reason(&empty), "NOTHING_TO_BILL");

    // The contract ends tomorrow after a session was booked for day 3: the
    // session keeps its booking, but no rate covers its date.
    let group = class_type(
        &sandbox,
        &trainer_token,
        scheduling_pb::ClassCategory::Group,
        5,
    )
    .await;
    let class = book_at(
        &sandbox,
        &trainer_token,
        &group.id,
        vancouver(today + Duration::days(3), 9, 0),
        "",
        &studio.id,
    )
    .await
    .expect("class");
    complete(&sandbox, &trainer_token, &class.id, &[]).await;
    tenancy(&sandbox, "gateway")
        .end_contract(bearer(
            tenancy_pb::EndContractRequest {
                contract_id,
                end_date: date(today + Duration::days(1)),
                etag: String::new(),
            },
            &owner_token,
        ))
        .await
        .expect("ended");
    let unpriced = draft_for_studio(&sandbox, &trainer_token, studio_draft(&studio.id, 6))
        .await
        .expect_err("no rate on day 3");
    assert_eq!(unpriced.code(), Code::FailedPrecondition);
    assert_eq!(reason(&unpriced), "NO_CONTRACT_RATE");
    assert_eq!(
        unpriced
            .get_error_details()
            .error_info()
            .expect("info")
            .metadata
            .get("date")
            .cloned(),
        Some((today + Duration::days(3)).to_string())
    );

    // Without a token nothing is drafted or listed.
    let anonymous = billing(&sandbox, "gateway")
        .list_studio_invoices(pb::ListStudioInvoicesRequest {
            studio_id: studio.id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
}

/// A studio of `owner_token`'s, under `parent` (a location) or not (a
/// chain's headquarters), in Toronto's zone, billed at its headquarters.
pub(crate) async fn chain_studio(
    sandbox: &Sandbox,
    owner_token: &str,
    name: &str,
    parent: &str,
    ontario: bool,
) -> tenancy_pb::Studio {
    let mut profile = crate::tenancy::studio_profile(name, parent);
    if ontario {
        profile.address = Some(fitflow_proto::types::PostalAddress {
            street: "1 King St W".into(),
            city: "Toronto".into(),
            province: fitflow_proto::types::Province::On as i32,
            postal_code: "M5H 1A1".into(),
            country_code: String::new(),
        });
    }
    tenancy(sandbox, "gateway")
        .create_studio(bearer(
            tenancy_pb::CreateStudioRequest {
                studio: Some(profile),
                request_id: String::new(),
            },
            owner_token,
        ))
        .await
        .expect("create studio")
        .into_inner()
        .studio
        .expect("studio")
}

#[tokio::test]
async fn a_consolidated_location_is_billed_at_its_headquarters_each_line_taxed_where_held() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(STACK).await;
    let (_, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, owner_email, owner_token) = member(&sandbox, "Olivia").await;
    // Headquarters in Quebec; a location in Ontario whose invoices go there.
    let hq = chain_studio(&sandbox, &owner_token, "Kits HQ", "", false).await;
    let owner_token = sandbox.login(&owner_email).await.access_token;
    let east = chain_studio(&sandbox, &owner_token, "Kits East", &hq.id, true).await;
    let owner_token = sandbox.login(&owner_email).await.access_token;
    for studio in [&hq.id, &east.id] {
        contract_with_rates(
            &sandbox,
            &owner_token,
            &trainer_token,
            studio,
            &trainer_email,
        )
        .await;
    }
    let group = class_type(
        &sandbox,
        &trainer_token,
        scheduling_pb::ClassCategory::Group,
        5,
    )
    .await;
    let day = vancouver_today() + Duration::days(2);
    let mut held = Vec::new();
    for (studio, hour) in [(&east.id, 8), (&hq.id, 10), (&east.id, 12)] {
        let class = book_at(
            &sandbox,
            &trainer_token,
            &group.id,
            vancouver(day, hour, 0),
            "",
            studio,
        )
        .await
        .expect("class");
        complete(&sandbox, &trainer_token, &class.id, &[]).await;
        held.push(class.id);
    }

    // The location's invoices go to its headquarters: drafting to it says where.
    let elsewhere = draft_for_studio(&sandbox, &trainer_token, studio_draft(&east.id, 6))
        .await
        .expect_err("billed at headquarters");
    assert_eq!(elsewhere.code(), Code::FailedPrecondition);
    assert_eq!(reason(&elsewhere), "STUDIO_BILLED_ELSEWHERE");
    assert_eq!(
        elsewhere
            .get_error_details()
            .error_info()
            .expect("info")
            .metadata
            .get("billing_studio_id"),
        Some(&hq.id)
    );

    let drafted = draft_for_studio(&sandbox, &trainer_token, studio_draft(&hq.id, 6))
        .await
        .expect("the chain's draft");
    let quebec = fitflow_proto::types::Province::Qc as i32;
    let ontario = fitflow_proto::types::Province::On as i32;
    let lines: Vec<(String, i32, bool)> = drafted
        .lines
        .iter()
        .map(|line| {
            (
                line.appointment_id.clone(),
                line.province,
                line.description.starts_with("Kits East: "),
            )
        })
        .collect();
    // Headquarters' own session first, then the location's, in start order.
    assert_eq!(
        lines,
        vec![
            (held[1].clone(), quebec, false),
            (held[0].clone(), ontario, true),
            (held[2].clone(), ontario, true),
        ]
    );
    let issued = issue(&sandbox, &trainer_token, &drafted)
        .await
        .expect("issued to headquarters");
    let mut taxes: Vec<(i32, String)> = issued
        .taxes
        .iter()
        .map(|tax| (tax.province, tax.amount.clone().unwrap_or_default().amount))
        .collect();
    taxes.sort();
    // Quebec: GST 2.50 and QST 4.99 on 50.00; Ontario: HST 13.00 on 100.00.
    assert_eq!(
        taxes,
        vec![
            (ontario, "13.00".to_owned()),
            (quebec, "2.50".to_owned()),
            (quebec, "4.99".to_owned())
        ]
    );
    let listed = studio_invoices(&sandbox, &owner_token, &hq.id)
        .await
        .expect("headquarters' list");
    assert_eq!(listed.len(), 1);
    assert!(
        studio_invoices(&sandbox, &owner_token, &east.id)
            .await
            .expect("the location's list")
            .is_empty()
    );
}
