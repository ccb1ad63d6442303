//! Issued invoices printed (RenderInvoicePdf) and read back by another
//! team's PDF parser (Python's `pypdf`): the number, each tax and the total
//! are there, in French for a client in Quebec, addressed to the client as
//! they were at issue (a sealed snapshot, ciphertext at rest), and nobody
//! but the issuer's side prints one.

use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::billing as pb;
use fitflow_proto::types::{PostalAddress, Province};
use tonic::Code;

use crate::billing::{EVERYONE, billing, credit, draft, invoice_line, issue};
use crate::clients::{create, full_client};
use crate::identity_support::{reason, violated_fields};
use crate::python_support::{pip_target, run_json};
use crate::tenancy::trainer;

/// The pinned Python packages of the parser.
const REQUIREMENTS: &str = include_str!("../../python/pdf-requirements.txt");

/// The whole PDF of `invoice_id`, and the first chunk's file name.
async fn render(
    sandbox: &Sandbox,
    peer: &str,
    token: &str,
    invoice_id: &str,
) -> Result<(Vec<u8>, String), tonic::Status> {
    let mut stream = billing(sandbox, peer)
        .render_invoice_pdf(bearer(
            pb::RenderInvoicePdfRequest {
                invoice_id: invoice_id.into(),
            },
            token,
        ))
        .await?
        .into_inner();
    let (mut data, mut file_name) = (Vec::new(), None);
    while let Some(chunk) = stream.message().await? {
        assert!(chunk.data.len() <= 64 * 1024);
        if file_name.is_none() {
            assert_eq!(chunk.content_type, "application/pdf");
        }
        file_name.get_or_insert(chunk.file_name);
        data.extend_from_slice(&chunk.data);
    }
    Ok((data, file_name.unwrap_or_default()))
}

/// What `pypdf` read: page count, title, and all the text (no-break spaces
/// as plain ones).
struct Read {
    pages: u64,
    title: String,
    text: String,
}

async fn read_with_pypdf(pdf: &[u8]) -> Read {
    let packages = pip_target(
        "python-pypdf",
        "tests/python/pdf-requirements.txt",
        REQUIREMENTS,
    );
    let read = run_json(
        "tests/python/extract_pdf.py",
        &packages,
        "invoice.pdf",
        pdf,
        "PDF",
    )
    .await;
    let text = read["text"]
        .as_array()
        .expect("pages' text")
        .iter()
        .map(|page| page.as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
        .replace('\u{a0}', " ");
    Read {
        pages: read["pages"].as_u64().expect("a page count"),
        title: read["title"].as_str().unwrap_or_default().to_owned(),
        text,
    }
}

fn ontario_client() -> fitflow_proto::clients::Client {
    fitflow_proto::clients::Client {
        address: Some(PostalAddress {
            street: "10 King St W".into(),
            city: "Toronto".into(),
            province: Province::On as i32,
            postal_code: "M5H 1A1".into(),
            country_code: String::new(),
        }),
        ..full_client("Liam", "Smith", "liam@example.com", "")
    }
}

#[tokio::test]
async fn an_invoice_to_a_quebec_client_prints_in_french_with_its_number_each_tax_and_the_total() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    // Zoé Roy, of Montréal.
    let client = create(
        &sandbox,
        &token,
        full_client("Zoé", "Roy", "zoe@example.ca", ""),
    )
    .await
    .expect("client");
    let invoice = draft(
        &sandbox,
        &token,
        &client.id,
        vec![
            invoice_line("Séance en ligne, 60 min", "33.33", Province::Qc),
            invoice_line("Personal training at the studio", "1000.00", Province::On),
        ],
    )
    .await
    .expect("draft");
    let printed_draft = render(&sandbox, "gateway", &token, &invoice.id)
        .await
        .expect_err("a draft has no number");
    assert_eq!(printed_draft.code(), Code::FailedPrecondition);
    assert_eq!(reason(&printed_draft), "INVOICE_STATE");
    let issued = issue(&sandbox, &token, &invoice).await.expect("issue");

    let (pdf, file_name) = render(&sandbox, "gateway", &token, &issued.id)
        .await
        .expect("render");
    assert_eq!(file_name, format!("invoice-{}.pdf", issued.number));
    assert!(pdf.starts_with(b"%PDF-"));
    let read = read_with_pypdf(&pdf).await;
    assert_eq!(read.pages, 1);
    assert_eq!(read.title, format!("FACTURE {}", issued.number));
    // 33.33 in Quebec: GST 1.67, QST 3.32; 1000.00 in Ontario: HST 130.00.
    // Total 1033.33 + 134.99 = 1168.32.
    assert_eq!(issued.total.as_ref().expect("total").amount, "1168.32");
    for expected in [
        "FACTURE",
        issued.number.as_str(),
        "Ana Fitness",
        "No de TPS/TVH 123456782RT0001",
        "Facturer à",
        "Zoé Roy",
        "123 rue Saint-Denis",
        "Montréal QC H2X 1Y4",
        "Séance en ligne, 60 min",
        "TPS (QC) 5 %",
        "1,67 $",
        "TVQ (QC) 9,975 %",
        "3,32 $",
        "TVH (ON) 13 %",
        "130,00 $",
        "1 033,33 $",
        "1 168,32 $",
        "Solde dû",
        "Échéance",
        "virement Interac",
    ] {
        assert!(
            read.text.contains(expected),
            "{expected:?} is not in:\n{}",
            read.text
        );
    }
    // No health information is printed.
    for never in ["asthma", "salbutamol", "peanuts"] {
        assert!(!read.text.contains(never), "{never} printed");
    }

    // The snapshot is ciphertext at rest: no name, street or email in it.
    let admin = sandbox.db.admin_pool().await;
    let (sealed, language): (Vec<u8>, String) = sqlx::query_as(
        "SELECT recipient_sealed, language FROM billing.invoice_recipients WHERE invoice_id = $1::uuid",
    )
    .bind(&issued.id)
    .fetch_one(&admin)
    .await
    .expect("a recipient row");
    assert_eq!(language, "fr");
    for clear in ["Zoé", "Roy", "Saint-Denis", "zoe@example.ca"] {
        assert!(
            !sealed
                .windows(clear.len())
                .any(|window| window == clear.as_bytes()),
            "{clear} in the clear"
        );
    }

    // A credit note is addressed to whom the invoice was, and names it.
    let note = credit(
        &sandbox,
        &token,
        &issued.id,
        "100.00",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect("credit note");
    let (pdf, file_name) = render(&sandbox, "gateway", &token, &note.id)
        .await
        .expect("render the credit note");
    assert_eq!(file_name, format!("credit-note-{}.pdf", note.number));
    let read = read_with_pypdf(&pdf).await;
    for expected in [
        "NOTE DE CRÉDIT",
        note.number.as_str(),
        "Corrige la facture",
        issued.number.as_str(),
        "Zoé Roy",
        "-100,00 $",
        "-13,00 $",
    ] {
        assert!(
            read.text.contains(expected),
            "{expected:?} is not in:\n{}",
            read.text
        );
    }
}

#[tokio::test]
async fn an_invoice_to_an_ontario_client_prints_in_english_and_a_long_one_runs_over_pages() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let client = create(&sandbox, &token, ontario_client())
        .await
        .expect("client");
    let lines = (1..=120)
        .map(|index| {
            invoice_line(
                &format!("Session {index}: strength and conditioning, 60 minutes, at the studio on King Street"),
                "85.00",
                Province::On,
            )
        })
        .collect();
    let invoice = draft(&sandbox, &token, &client.id, lines)
        .await
        .expect("draft");
    let issued = issue(&sandbox, &token, &invoice).await.expect("issue");
    let (pdf, _) = render(&sandbox, "operator", &token, &issued.id)
        .await
        .expect("render");
    let read = read_with_pypdf(&pdf).await;
    assert!(read.pages >= 3, "{} pages", read.pages);
    // 120 × 85.00 = 10,200.00; HST 1,326.00; total 11,526.00.
    for expected in [
        "INVOICE",
        issued.number.as_str(),
        "Bill to",
        "Liam Smith",
        "Toronto ON M5H 1A1",
        "GST/HST no. 123456782RT0001",
        "Session 120: strength",
        "HST (ON) 13%",
        "$1,326.00",
        "$11,526.00",
        "Balance due",
        "Interac e-Transfer",
        &format!("Page {} of {}", read.pages, read.pages),
    ] {
        assert!(
            read.text.contains(expected),
            "{expected:?} is not in:\n{}",
            read.text
        );
    }
}

#[tokio::test]
async fn only_the_issuers_side_prints_an_invoice_and_a_bad_id_is_refused_by_field() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, owner) = trainer(&sandbox, "Ana").await;
    let (_, _, stranger) = trainer(&sandbox, "Sam").await;
    let client = create(&sandbox, &owner, ontario_client())
        .await
        .expect("client");
    let invoice = draft(
        &sandbox,
        &owner,
        &client.id,
        vec![invoice_line("Session", "85", Province::On)],
    )
    .await
    .expect("draft");
    let issued = issue(&sandbox, &owner, &invoice).await.expect("issue");

    let theirs = render(&sandbox, "gateway", &stranger, &issued.id)
        .await
        .expect_err("another trainer");
    assert_eq!(theirs.code(), Code::NotFound);
    assert_eq!(reason(&theirs), "INVOICE_NOT_FOUND");
    let unknown = render(
        &sandbox,
        "gateway",
        &owner,
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .expect_err("no such invoice");
    assert_eq!(reason(&unknown), "INVOICE_NOT_FOUND");
    for bad in [
        "",
        "not-a-uuid",
        "\0",
        "00000000-0000-0000-0000-00000000000\u{1b}",
    ] {
        let status = render(&sandbox, "gateway", &owner, bad)
            .await
            .expect_err("a bad id");
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}");
        assert_eq!(violated_fields(&status), ["invoice_id"]);
    }
    // A service that is not the edge prints nothing, even with the owner's
    // token.
    for peer in ["clients", "scheduling"] {
        let status = render(&sandbox, peer, &owner, &issued.id)
            .await
            .expect_err("not an edge peer");
        assert_eq!(reason(&status), "PEER_NOT_ALLOWED", "{peer}");
    }
    // Without a token, nothing.
    let anonymous = billing(&sandbox, "gateway")
        .render_invoice_pdf(pb::RenderInvoicePdfRequest {
            invoice_id: issued.id.clone(),
        })
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    // The owner still prints it.
    render(&sandbox, "gateway", &owner, &issued.id)
        .await
        .expect("the owner prints");
}
