//! No client's personal data reaches the logs, on the clients service's
//! success paths or its error paths. Its own test binary, because it
//! installs the process-wide tracing subscriber (at TRACE, spans included)
//! and captures everything it writes.

use std::io::Write;
use std::sync::{Arc, Mutex};

use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::clients as pb;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::tenancy as tenancy_pb;
use fitflow_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use fitflow_proto::types::{Money, PostalAddress, Province};
use prost_types::{FieldMask, Timestamp};
use tracing_subscriber::fmt::format::FmtSpan;

/// Every byte the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// Values that appear nowhere but in the client's record.
const CANARIES: [&str; 9] = [
    "Canaryfirstname",
    "Canarylastname",
    "canary.mailbox@example.ca",
    "6135550142",
    "Canaryemergency",
    "canaryconditionx",
    "canarymedicationx",
    "Canary goal text",
    "42 rue Canarystreet",
];

async fn trainer(sandbox: &Sandbox, name: &str) -> (String, String) {
    let (user, email) = sandbox.register(name).await;
    let token = sandbox.login(&email).await.access_token;
    TenancyServiceClient::new(sandbox.channel("tenancy", "gateway"))
        .create_trainer(bearer(
            tenancy_pb::CreateTrainerRequest {
                trainer: Some(tenancy_pb::Trainer {
                    business_name: format!("{name} Fitness"),
                    hourly_rate: Some(Money {
                        currency_code: "CAD".into(),
                        amount: "85".into(),
                    }),
                    commission_rate: "12.5".into(),
                    time_zone: "America/Toronto".into(),
                    province: Province::On as i32,
                    tax_profile: Some(tenancy_pb::TaxProfile {
                        supplier_status: tenancy_pb::SupplierStatus::Registered as i32,
                        gst_hst_number: "123456782RT0001".into(),
                        qst_number: String::new(),
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &token,
        ))
        .await
        .expect("create trainer");
    (user.id, token)
}

fn canary_client() -> pb::Client {
    pb::Client {
        first_name: CANARIES[0].into(),
        last_name: CANARIES[1].into(),
        email: CANARIES[2].into(),
        phone: CANARIES[3].into(),
        date_of_birth: Some(Date {
            year: 1977,
            month: 7,
            day: 7,
        }),
        emergency_contact: Some(pb::EmergencyContact {
            name: CANARIES[4].into(),
            phone: "514-555-0199".into(),
            relationship: "spouse".into(),
        }),
        medical_info: Some(pb::MedicalInfo {
            conditions: vec![CANARIES[5].into()],
            medications: vec![CANARIES[6].into()],
            allergies: Vec::new(),
        }),
        goals: CANARIES[7].into(),
        address: Some(PostalAddress {
            street: CANARIES[8].into(),
            city: "Ottawa".into(),
            province: Province::On as i32,
            postal_code: "K1A 0B1".into(),
            country_code: String::new(),
        }),
        health_consent: Some(pb::HealthConsent {
            text_version: "2026-01".into(),
            consent_time: Some(Timestamp {
                seconds: chrono::Utc::now().timestamp() - 60,
                nanos: 0,
            }),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn no_client_data_of_any_success_or_error_path_appears_in_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,h2=debug,hyper=debug,hyper_util=debug,rustls=debug,tower=debug",
        ))
        .with_span_events(FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let sandbox = Sandbox::new().await;
    let stack = sandbox
        .start(&[
            IDENTITY,
            "tenancy",
            "clients",
            "scheduling",
            "documentation",
            "billing",
            AUDIT,
        ])
        .await;
    let (_, owner) = trainer(&sandbox, "Ana").await;
    let (_, stranger) = trainer(&sandbox, "Sam").await;
    let mut api = ClientsServiceClient::new(sandbox.channel("clients", "gateway"));
    let creator = api.clone();
    let create = |client: pb::Client, token: String| {
        let mut api = creator.clone();
        async move {
            api.create_client(bearer(
                pb::CreateClientRequest {
                    client: Some(client),
                    request_id: String::new(),
                },
                &token,
            ))
            .await
        }
    };

    // Success paths: create, read, find, update, export, contact.
    let client = create(canary_client(), owner.clone())
        .await
        .expect("create")
        .into_inner()
        .client
        .expect("client");
    let get = pb::GetClientRequest {
        client_id: client.id.clone(),
        purpose: pb::AccessPurpose::Treatment as i32,
        show_deleted: false,
    };
    api.get_client(bearer(get.clone(), &owner))
        .await
        .expect("read");
    for request in [
        pb::ListClientsRequest {
            email: CANARIES[2].into(),
            ..Default::default()
        },
        pb::ListClientsRequest {
            phone: CANARIES[3].into(),
            ..Default::default()
        },
        pb::ListClientsRequest {
            name_prefix: CANARIES[0].into(),
            ..Default::default()
        },
    ] {
        let found = api
            .list_clients(bearer(request, &owner))
            .await
            .expect("find")
            .into_inner()
            .clients;
        assert_eq!(found.len(), 1);
    }
    let mut export = api
        .export_client(bearer(
            pb::ExportClientRequest {
                client_id: client.id.clone(),
                purpose: pb::AccessPurpose::Operations as i32,
            },
            &owner,
        ))
        .await
        .expect("export")
        .into_inner();
    while export.message().await.expect("chunk").is_some() {}
    ClientsServiceClient::new(sandbox.channel("clients", "billing"))
        .get_contact(tonic::Request::new(pb::GetContactRequest {
            client_id: client.id.clone(),
            purpose: pb::AccessPurpose::Payment as i32,
        }))
        .await
        .expect("contact");

    // Error paths: hostile input carrying the canaries, consent missing, a
    // stale etag, a stranger, a ciphertext moved to another row.
    let hostile = pb::Client {
        first_name: format!("{}\u{0}", CANARIES[0]),
        email: format!("{}\u{b}", CANARIES[2]),
        goals: format!("{}\u{1b}", CANARIES[7]),
        ..canary_client()
    };
    let refused = create(hostile, owner.clone()).await.expect_err("hostile");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let no_consent = pb::Client {
        health_consent: None,
        ..canary_client()
    };
    let refused = create(no_consent, owner.clone())
        .await
        .expect_err("no consent");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    let stale = api
        .update_client(bearer(
            pb::UpdateClientRequest {
                client: Some(pb::Client {
                    id: client.id.clone(),
                    ..canary_client()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["goals".into(), "first_name".into()],
                }),
                etag: "W/\"stale\"".into(),
            },
            &owner,
        ))
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), tonic::Code::Aborted);
    let hidden = api
        .get_client(bearer(get.clone(), &stranger))
        .await
        .expect_err("a stranger");
    assert_eq!(hidden.code(), tonic::Code::NotFound);
    let other = create(
        pb::Client {
            first_name: "Plain".into(),
            last_name: "Other".into(),
            ..Default::default()
        },
        owner.clone(),
    )
    .await
    .expect("another client")
    .into_inner()
    .client
    .expect("client");
    let admin = sandbox.db.admin_pool().await;
    sqlx::query(
        "UPDATE clients.clients SET goals = (SELECT goals FROM clients.clients WHERE id = $1::uuid), \
         first_name = (SELECT first_name FROM clients.clients WHERE id = $1::uuid) \
         WHERE id = $2::uuid",
    )
    .bind(&client.id)
    .bind(&other.id)
    .execute(&admin)
    .await
    .expect("move ciphertexts to another row");
    let moved = api
        .get_client(bearer(
            pb::GetClientRequest {
                client_id: other.id.clone(),
                ..get.clone()
            },
            &owner,
        ))
        .await
        .expect_err("a moved ciphertext");
    assert_eq!(moved.code(), tonic::Code::DataLoss);
    let listed = api
        .list_clients(bearer(pb::ListClientsRequest::default(), &owner))
        .await
        .expect_err("a list holding a moved name");
    assert_eq!(listed.code(), tonic::Code::DataLoss);

    // Let the audit relay deliver and log what it does with these events.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    drop(stack);
    let logs = captured.text();
    assert!(logs.contains("clients"), "the capture saw the service");
    for canary in CANARIES {
        assert!(
            !logs.to_lowercase().contains(&canary.to_lowercase()),
            "{canary} appears in the logs"
        );
    }
}
