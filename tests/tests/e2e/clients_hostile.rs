//! The clients service attacked as a hostile caller would: control
//! characters in every string field of every RPC, times PostgreSQL cannot
//! hold, forged and replayed page tokens, oversized records, other trainers,
//! under-privileged grantees and wrong peers on every RPC, pointless or
//! impossible requests, and real races. Every refusal carries its documented
//! code, names the request's own field, writes nothing and leaks no client
//! data; a well-formed request never gets INTERNAL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::clients as pb;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::types::{PostalAddress, Province};
use prost_types::{FieldMask, Timestamp};
use sqlx::PgPool;
use tonic::Code;
use tonic::transport::Channel;

use crate::identity_support::{reason, violated_fields};
use crate::tenancy::{TENANCY, trainer};

const CLIENTS: &str = "clients";
// Scheduling, documentation and billing too: a client's export holds their
// appointments, notes and plans, and invoices.
const EVERYONE: &[&str] = &[
    IDENTITY,
    TENANCY,
    CLIENTS,
    "scheduling",
    "documentation",
    "billing",
    AUDIT,
];

/// Control characters no field accepts: NUL, vertical tab and next line
/// (whitespace a trim would silently drop), escape and delete.
const CONTROLS: [&str; 5] = ["\u{0}", "\u{b}", "\u{1b}", "\u{7f}", "\u{85}"];
/// What free text (goals, street, preference values) may hold but a single
/// line (names, email, phone, codes) may not.
const LINE_BREAKS: [&str; 3] = ["\n", "\r", "\t"];

/// The client's data: none of it may appear in an error, a log or a refusal.
const FIRST: &str = "Zoélie";
const LAST: &str = "Quenneville";
const EMAIL: &str = "zoelie.q@example.ca";
const CONDITION: &str = "hypertrophiccardiomyopathy";

fn clients(sandbox: &Sandbox, peer: &str) -> ClientsServiceClient<Channel> {
    ClientsServiceClient::new(sandbox.channel(CLIENTS, peer))
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
    })
}

fn consent() -> Option<pb::HealthConsent> {
    Some(pb::HealthConsent {
        text_version: "2026-01".into(),
        consent_time: Some(Timestamp {
            // A fixed past instant: bodies built twice must be equal (retries).
            seconds: 1_767_225_600,
            nanos: 0,
        }),
    })
}

/// A whole client, every field set.
fn full_client() -> pb::Client {
    pb::Client {
        first_name: FIRST.into(),
        last_name: LAST.into(),
        email: EMAIL.into(),
        phone: "514-555-0100".into(),
        date_of_birth: Some(Date {
            year: 1988,
            month: 4,
            day: 12,
        }),
        emergency_contact: Some(pb::EmergencyContact {
            name: "Paul Tremblay".into(),
            phone: "514-555-0199".into(),
            relationship: "spouse".into(),
        }),
        medical_info: Some(pb::MedicalInfo {
            conditions: vec![CONDITION.into()],
            medications: vec!["salbutamol".into()],
            allergies: vec!["peanuts".into()],
        }),
        goals: "Run a 10 km race.\nStay injury-free.".into(),
        address: Some(PostalAddress {
            street: "123 rue Saint-Denis".into(),
            city: "Montréal".into(),
            province: Province::Qc as i32,
            postal_code: "H2X 1Y4".into(),
            country_code: "CA".into(),
        }),
        preferences: [("session_time".to_owned(), "mornings".to_owned())].into(),
        source: pb::ClientSource::Referral as i32,
        health_consent: consent(),
        ..Default::default()
    }
}

fn named(first: &str, last: &str) -> pb::Client {
    pb::Client {
        first_name: first.into(),
        last_name: last.into(),
        ..Default::default()
    }
}

async fn create_with(
    sandbox: &Sandbox,
    token: &str,
    client: pb::Client,
    request_id: &str,
) -> Result<pb::Client, tonic::Status> {
    clients(sandbox, "gateway")
        .create_client(bearer(
            pb::CreateClientRequest {
                client: Some(client),
                request_id: request_id.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().client.expect("client"))
}

async fn create(sandbox: &Sandbox, token: &str, client: pb::Client) -> pb::Client {
    create_with(sandbox, token, client, "")
        .await
        .expect("create a client")
}

async fn get(sandbox: &Sandbox, token: &str, client_id: &str) -> Result<pb::Client, tonic::Status> {
    clients(sandbox, "gateway")
        .get_client(bearer(
            pb::GetClientRequest {
                client_id: client_id.into(),
                purpose: pb::AccessPurpose::Treatment as i32,
                show_deleted: false,
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().client.expect("client"))
}

async fn list(
    sandbox: &Sandbox,
    token: &str,
    request: pb::ListClientsRequest,
) -> Result<pb::ListClientsResponse, tonic::Status> {
    clients(sandbox, "gateway")
        .list_clients(bearer(request, token))
        .await
        .map(tonic::Response::into_inner)
}

async fn share(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    trainer_id: &str,
    level: pb::AccessLevel,
) -> Result<pb::ClientShare, tonic::Status> {
    clients(sandbox, "gateway")
        .share_client(bearer(
            pb::ShareClientRequest {
                client_id: client_id.into(),
                trainer_id: trainer_id.into(),
                level: level as i32,
                trainer_email: String::new(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().share.expect("share"))
}

async fn revoke(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    trainer_id: &str,
) -> Result<(), tonic::Status> {
    clients(sandbox, "gateway")
        .revoke_client_share(bearer(
            pb::RevokeClientShareRequest {
                client_id: client_id.into(),
                trainer_id: trainer_id.into(),
            },
            token,
        ))
        .await
        .map(|_| ())
}

async fn shares(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
) -> Result<Vec<pb::ClientShare>, tonic::Status> {
    clients(sandbox, "gateway")
        .list_client_shares(bearer(
            pb::ListClientSharesRequest {
                client_id: client_id.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().shares)
}

/// The whole export document of `client_id`, parsed.
async fn export(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
) -> Result<serde_json::Value, tonic::Status> {
    let mut stream = clients(sandbox, "gateway")
        .export_client(bearer(
            pb::ExportClientRequest {
                client_id: client_id.into(),
                purpose: pb::AccessPurpose::Operations as i32,
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

fn code<T>(outcome: &Result<T, tonic::Status>) -> Code {
    match outcome {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// `outcome` is INVALID_ARGUMENT with a field violation on `field` (or a
/// field inside it, like `client.medical_info.conditions[0]`).
#[track_caller]
fn assert_refused_on<T>(outcome: Result<T, tonic::Status>, field: &str, case: &str) {
    let Err(status) = outcome else {
        panic!("{case}: accepted");
    };
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    let fields = violated_fields(&status);
    let names_it = |named: &String| {
        named == field
            || named.starts_with(&format!("{field}."))
            || named.starts_with(&format!("{field}["))
    };
    assert!(
        fields.iter().any(names_it),
        "{case}: {field} not among {fields:?}"
    );
}

/// `outcome` failed with `code` and `reason`, and the refusal carries none
/// of the client's data.
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(
    outcome: Result<T, tonic::Status>,
    code: Code,
    expected_reason: &str,
    case: &str,
) {
    let status = outcome.expect_err(case);
    assert_eq!(status.code(), code, "{case}: {status:?}");
    assert_eq!(reason(&status), expected_reason, "{case}");
    assert_leaks_nothing(&status, case);
}

#[track_caller]
fn assert_leaks_nothing(status: &tonic::Status, case: &str) {
    let said = format!(
        "{} {}",
        status.message(),
        String::from_utf8_lossy(status.details())
    )
    .to_lowercase();
    for secret in [FIRST, LAST, EMAIL, CONDITION, "salbutamol", "saint-denis"] {
        assert!(
            !said.contains(&secret.to_lowercase()),
            "{case}: the refusal names {secret}: {said}"
        );
    }
}

/// A digest of every row the clients service keeps but its outbox (which
/// the relay drains on its own): refused calls must not change it.
async fn digest(admin: &PgPool) -> String {
    sqlx::query_scalar(
        "SELECT coalesce(md5(string_agg(row, '|' ORDER BY row)), '') FROM ( \
           SELECT c::text AS row FROM clients.clients c \
           UNION ALL SELECT p::text FROM clients.client_permissions p \
           UNION ALL SELECT h::text FROM clients.client_share_history h \
           UNION ALL SELECT k::text FROM clients.idempotency_keys k) AS every_row",
    )
    .fetch_one(admin)
    .await
    .expect("digest")
}

/// A field of a client, as a request names it, and how to put a value in it.
struct Field {
    path: &'static str,
    /// The `update_mask` path that covers it.
    mask: &'static str,
    /// A good value, into which the attack inserts control characters.
    good: &'static str,
    /// Whether it is a single line (no tab, CR or LF either).
    line: bool,
    set: fn(&mut pb::Client, String),
}

fn fields() -> Vec<Field> {
    fn contact(client: &mut pb::Client) -> &mut pb::EmergencyContact {
        client
            .emergency_contact
            .get_or_insert_with(Default::default)
    }
    fn medical(client: &mut pb::Client) -> &mut pb::MedicalInfo {
        client.medical_info.get_or_insert_with(Default::default)
    }
    fn address(client: &mut pb::Client) -> &mut PostalAddress {
        client.address.get_or_insert_with(Default::default)
    }
    vec![
        Field {
            path: "client.first_name",
            mask: "first_name",
            good: "Zoé",
            line: true,
            set: |client, value| client.first_name = value,
        },
        Field {
            path: "client.last_name",
            mask: "last_name",
            good: "Roy",
            line: true,
            set: |client, value| client.last_name = value,
        },
        Field {
            path: "client.email",
            mask: "email",
            good: "zoe@example.ca",
            line: true,
            set: |client, value| client.email = value,
        },
        Field {
            path: "client.phone",
            mask: "phone",
            good: "514-555-0100",
            line: true,
            set: |client, value| client.phone = value,
        },
        Field {
            path: "client.emergency_contact.name",
            mask: "emergency_contact",
            good: "Paul",
            line: true,
            set: |client, value| contact(client).name = value,
        },
        Field {
            path: "client.emergency_contact.phone",
            mask: "emergency_contact",
            good: "514-555-0199",
            line: true,
            set: |client, value| contact(client).phone = value,
        },
        Field {
            path: "client.emergency_contact.relationship",
            mask: "emergency_contact",
            good: "spouse",
            line: true,
            set: |client, value| contact(client).relationship = value,
        },
        Field {
            path: "client.medical_info.conditions",
            mask: "medical_info",
            good: "asthma",
            line: true,
            set: |client, value| medical(client).conditions = vec![value],
        },
        Field {
            path: "client.medical_info.medications",
            mask: "medical_info",
            good: "salbutamol",
            line: true,
            set: |client, value| medical(client).medications = vec![value],
        },
        Field {
            path: "client.medical_info.allergies",
            mask: "medical_info",
            good: "peanuts",
            line: true,
            set: |client, value| medical(client).allergies = vec![value],
        },
        Field {
            path: "client.goals",
            mask: "goals",
            good: "Run a race",
            line: false,
            set: |client, value| client.goals = value,
        },
        Field {
            path: "client.address.street",
            mask: "address",
            good: "123 rue Saint-Denis",
            line: false,
            set: |client, value| address(client).street = value,
        },
        Field {
            path: "client.address.city",
            mask: "address",
            good: "Montréal",
            line: true,
            set: |client, value| address(client).city = value,
        },
        Field {
            path: "client.address.postal_code",
            mask: "address",
            good: "H2X 1Y4",
            line: true,
            set: |client, value| address(client).postal_code = value,
        },
        Field {
            path: "client.address.country_code",
            mask: "address",
            good: "CA",
            line: true,
            set: |client, value| address(client).country_code = value,
        },
        Field {
            path: "client.health_consent.text_version",
            mask: "health_consent",
            good: "2026-01",
            line: true,
            set: |client, value| {
                client
                    .health_consent
                    .get_or_insert_with(|| consent().expect("consent"))
                    .text_version = value;
            },
        },
        Field {
            path: "client.preferences",
            mask: "preferences",
            good: "mornings",
            line: false,
            set: |client, value| {
                client.preferences = [("session_time".to_owned(), value)].into();
            },
        },
        Field {
            path: "client.preferences",
            mask: "preferences",
            good: "session_time",
            line: true,
            set: |client, value| {
                client.preferences = [(value, "mornings".to_owned())].into();
            },
        },
    ]
}

/// `good` with `control` inside it, before it and after it (where a trim
/// would drop whitespace-like controls without a word).
fn spoiled(good: &str, control: &str) -> Vec<String> {
    let middle = good.len() / 2;
    let middle = (0..=middle)
        .rev()
        .find(|index| good.is_char_boundary(*index))
        .unwrap_or_default();
    vec![
        format!("{}{control}{}", &good[..middle], &good[middle..]),
        format!("{control}{good}"),
        format!("{good}{control}"),
    ]
}

fn controls_for(line: bool) -> Vec<&'static str> {
    let mut controls = CONTROLS.to_vec();
    if line {
        controls.extend(LINE_BREAKS);
    }
    controls
}

#[tokio::test]
async fn control_characters_in_any_field_of_a_create_or_an_update_are_refused_by_name_and_write_nothing()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let existing = create(&sandbox, &owner.2, full_client()).await;
    let admin = sandbox.db.admin_pool().await;
    let before = digest(&admin).await;
    let mut api = clients(&sandbox, "gateway");

    for field in fields() {
        for control in controls_for(field.line) {
            for value in spoiled(field.good, control) {
                let case = format!("{} = {value:?}", field.path);
                let mut client = full_client();
                (field.set)(&mut client, value.clone());
                assert_refused_on(
                    create_with(&sandbox, &owner.2, client, "").await,
                    field.path,
                    &format!("create: {case}"),
                );

                let mut patch = full_client();
                patch.id.clone_from(&existing.id);
                (field.set)(&mut patch, value);
                let updated = api
                    .update_client(bearer(
                        pb::UpdateClientRequest {
                            client: Some(patch),
                            update_mask: mask(&[field.mask]),
                            etag: String::new(),
                        },
                        &owner.2,
                    ))
                    .await;
                assert_refused_on(updated, field.path, &format!("update: {case}"));
            }
        }
    }
    for control in controls_for(true) {
        for value in spoiled(&owner.0, control) {
            let client = pb::Client {
                owner_trainer_id: value.clone(),
                ..full_client()
            };
            assert_refused_on(
                create_with(&sandbox, &owner.2, client, "").await,
                "client.owner_trainer_id",
                &format!("owner {value:?}"),
            );
        }
        for value in spoiled(&new_id(), control) {
            assert_refused_on(
                create_with(&sandbox, &owner.2, full_client(), &value).await,
                "request_id",
                &format!("request_id {value:?}"),
            );
        }
        for value in spoiled(&existing.id, control) {
            let updated = api
                .update_client(bearer(
                    pb::UpdateClientRequest {
                        client: Some(pb::Client {
                            id: value.clone(),
                            ..full_client()
                        }),
                        update_mask: mask(&["goals"]),
                        etag: String::new(),
                    },
                    &owner.2,
                ))
                .await;
            assert_refused_on(updated, "client.id", &format!("id {value:?}"));
        }
        for value in spoiled(&existing.etag, control) {
            let updated = api
                .update_client(bearer(
                    pb::UpdateClientRequest {
                        client: Some(pb::Client {
                            id: existing.id.clone(),
                            ..full_client()
                        }),
                        update_mask: mask(&["goals"]),
                        etag: value.clone(),
                    },
                    &owner.2,
                ))
                .await;
            assert_refused_on(updated, "etag", &format!("etag {value:?}"));
        }
        for value in spoiled("goals", control) {
            let updated = api
                .update_client(bearer(
                    pb::UpdateClientRequest {
                        client: Some(pb::Client {
                            id: existing.id.clone(),
                            ..full_client()
                        }),
                        update_mask: mask(&[&value]),
                        etag: String::new(),
                    },
                    &owner.2,
                ))
                .await;
            assert_refused_on(updated, "update_mask", &format!("mask {value:?}"));
        }
    }
    assert_eq!(digest(&admin).await, before, "nothing was written");
    let read = get(&sandbox, &owner.2, &existing.id)
        .await
        .expect("still readable");
    assert_eq!(read.first_name, FIRST);
    assert_eq!(read.etag, existing.etag);
}

#[tokio::test]
async fn control_characters_in_the_ids_tokens_and_finders_of_every_other_rpc_are_refused_by_name() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let mate = trainer(&sandbox, "Milo").await;
    let (_, operator) = sandbox.operator().await;
    let existing = create(&sandbox, &owner.2, full_client()).await;
    let listed = list(
        &sandbox,
        &owner.2,
        pb::ListClientsRequest {
            page_size: 1,
            ..Default::default()
        },
    )
    .await
    .expect("list");
    assert!(listed.next_page_token.is_empty(), "one client, one page");
    let admin = sandbox.db.admin_pool().await;
    let before = digest(&admin).await;
    let mut api = clients(&sandbox, "gateway");
    let id = existing.id.as_str();

    for control in controls_for(true) {
        for bad in spoiled(id, control) {
            let case = format!("client_id {bad:?}");
            let get_outcome = api
                .get_client(bearer(
                    pb::GetClientRequest {
                        client_id: bad.clone(),
                        purpose: pb::AccessPurpose::Treatment as i32,
                        show_deleted: false,
                    },
                    &owner.2,
                ))
                .await;
            assert_refused_on(get_outcome, "client_id", &case);
            let deleted = api
                .delete_client(bearer(
                    pb::DeleteClientRequest {
                        client_id: bad.clone(),
                        etag: String::new(),
                    },
                    &owner.2,
                ))
                .await;
            assert_refused_on(deleted, "client_id", &case);
            let undeleted = api
                .undelete_client(bearer(
                    pb::UndeleteClientRequest {
                        client_id: bad.clone(),
                    },
                    &owner.2,
                ))
                .await;
            assert_refused_on(undeleted, "client_id", &case);
            assert_refused_on(
                share(&sandbox, &owner.2, &bad, &mate.0, pb::AccessLevel::Read).await,
                "client_id",
                &case,
            );
            assert_refused_on(
                revoke(&sandbox, &owner.2, &bad, &mate.0).await,
                "client_id",
                &case,
            );
            assert_refused_on(shares(&sandbox, &owner.2, &bad).await, "client_id", &case);
            let transferred = api
                .transfer_client(bearer(
                    pb::TransferClientRequest {
                        client_id: bad.clone(),
                        new_owner_trainer_id: owner.0.clone(),
                        etag: String::new(),
                    },
                    &owner.2,
                ))
                .await;
            assert_refused_on(transferred, "client_id", &case);
            assert_refused_on(export(&sandbox, &owner.2, &bad).await, "client_id", &case);
            let purged = clients(&sandbox, "operator")
                .purge_client(bearer(
                    pb::PurgeClientRequest {
                        client_id: bad.clone(),
                    },
                    &operator.access_token,
                ))
                .await;
            assert_refused_on(purged, "client_id", &case);
            let checked = clients(&sandbox, "scheduling")
                .check_client_access(bearer(
                    pb::CheckClientAccessRequest {
                        client_id: bad.clone(),
                        level: pb::AccessLevel::Read as i32,
                    },
                    &owner.2,
                ))
                .await;
            assert_refused_on(checked, "client_id", &case);
            let contact = clients(&sandbox, "billing")
                .get_contact(tonic::Request::new(pb::GetContactRequest {
                    client_id: bad.clone(),
                    purpose: pb::AccessPurpose::Payment as i32,
                }))
                .await;
            assert_refused_on(contact, "client_id", &case);
        }
        for bad in spoiled(&mate.0, control) {
            let case = format!("trainer_id {bad:?}");
            assert_refused_on(
                share(&sandbox, &owner.2, id, &bad, pb::AccessLevel::Read).await,
                "trainer_id",
                &case,
            );
            assert_refused_on(
                revoke(&sandbox, &owner.2, id, &bad).await,
                "trainer_id",
                &case,
            );
            let transferred = api
                .transfer_client(bearer(
                    pb::TransferClientRequest {
                        client_id: id.into(),
                        new_owner_trainer_id: bad.clone(),
                        etag: String::new(),
                    },
                    &owner.2,
                ))
                .await;
            assert_refused_on(transferred, "new_owner_trainer_id", &case);
        }
        for bad in spoiled(&existing.etag, control) {
            let case = format!("etag {bad:?}");
            let deleted = api
                .delete_client(bearer(
                    pb::DeleteClientRequest {
                        client_id: id.into(),
                        etag: bad.clone(),
                    },
                    &owner.2,
                ))
                .await;
            assert_refused_on(deleted, "etag", &case);
            let transferred = api
                .transfer_client(bearer(
                    pb::TransferClientRequest {
                        client_id: id.into(),
                        new_owner_trainer_id: owner.0.clone(),
                        etag: bad.clone(),
                    },
                    &owner.2,
                ))
                .await;
            assert_refused_on(transferred, "etag", &case);
        }
        let finders: [(&str, &str, ListRequest); 5] = [
            ("email", EMAIL, |value| pb::ListClientsRequest {
                email: value,
                ..Default::default()
            }),
            ("phone", "514-555-0100", |value| pb::ListClientsRequest {
                phone: value,
                ..Default::default()
            }),
            ("name_prefix", "Zoél", |value| pb::ListClientsRequest {
                name_prefix: value,
                ..Default::default()
            }),
            (
                "owner_trainer_id",
                "0190a5b2-7f3c-7000-8000-000000000001",
                |value| pb::ListClientsRequest {
                    owner_trainer_id: value,
                    ..Default::default()
                },
            ),
            (
                "page_token",
                "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAh",
                |value| pb::ListClientsRequest {
                    page_token: value,
                    ..Default::default()
                },
            ),
        ];
        for (field, good, request) in finders {
            for bad in spoiled(good, control) {
                assert_refused_on(
                    list(&sandbox, &owner.2, request(bad.clone())).await,
                    field,
                    &format!("list {field} {bad:?}"),
                );
            }
        }
    }
    assert_eq!(digest(&admin).await, before, "nothing was written");
}

/// Builds a list request around one finder's value.
type ListRequest = fn(String) -> pb::ListClientsRequest;

/// Seconds since the epoch of January 1st of `year` (proleptic, roughly).
fn seconds_of_year(year: i64) -> i64 {
    (year - 1970) * 31_556_952
}

#[tokio::test]
async fn times_outside_what_postgresql_holds_are_invalid_argument_never_internal() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let existing = create(&sandbox, &owner.2, full_client()).await;
    let admin = sandbox.db.admin_pool().await;
    let before = digest(&admin).await;
    let mut api = clients(&sandbox, "gateway");

    let consent_times = [
        (seconds_of_year(-5000), 0),
        (seconds_of_year(-4713), 0),
        (seconds_of_year(0), 0),
        (seconds_of_year(10_000), 0),
        (seconds_of_year(294_277), 0),
        (seconds_of_year(300_000), 0),
        (i64::MIN, 0),
        (i64::MAX, 0),
        (1_700_000_000, -1),
        (1_700_000_000, 1_000_000_000),
        (1_700_000_000, i32::MAX),
        (1_700_000_000, i32::MIN),
    ];
    for (seconds, nanos) in consent_times {
        let case = format!("consent_time {seconds}s {nanos}ns");
        let hostile = pb::Client {
            health_consent: Some(pb::HealthConsent {
                text_version: "2026-01".into(),
                consent_time: Some(Timestamp { seconds, nanos }),
            }),
            ..full_client()
        };
        assert_refused_on(
            create_with(&sandbox, &owner.2, hostile.clone(), "").await,
            "client.health_consent.consent_time",
            &case,
        );
        let updated = api
            .update_client(bearer(
                pb::UpdateClientRequest {
                    client: Some(pb::Client {
                        id: existing.id.clone(),
                        ..hostile
                    }),
                    update_mask: mask(&["health_consent"]),
                    etag: String::new(),
                },
                &owner.2,
            ))
            .await;
        assert_refused_on(updated, "client.health_consent.consent_time", &case);
    }
    let dates = [
        (0, 1, 1),
        (-1, 1, 1),
        (-5000, 6, 15),
        (10_000, 1, 1),
        (300_000, 1, 1),
        (i32::MAX, 12, 31),
        (i32::MIN, 1, 1),
        (1990, 0, 1),
        (1990, 13, 1),
        (1990, 2, 30),
        (1990, 1, 0),
        (1990, 1, 32),
        (1990, -1, -1),
        (1899, 12, 31),
        (9999, 12, 31),
    ];
    for (year, month, day) in dates {
        let case = format!("date_of_birth {year}-{month}-{day}");
        let hostile = pb::Client {
            date_of_birth: Some(Date { year, month, day }),
            ..full_client()
        };
        assert_refused_on(
            create_with(&sandbox, &owner.2, hostile.clone(), "").await,
            "client.date_of_birth",
            &case,
        );
        let updated = api
            .update_client(bearer(
                pb::UpdateClientRequest {
                    client: Some(pb::Client {
                        id: existing.id.clone(),
                        ..hostile
                    }),
                    update_mask: mask(&["date_of_birth"]),
                    etag: String::new(),
                },
                &owner.2,
            ))
            .await;
        assert_refused_on(updated, "client.date_of_birth", &case);
    }
    assert_eq!(digest(&admin).await, before, "nothing was written");

    // The edges that are allowed are stored and read back unchanged.
    let edges = pb::Client {
        date_of_birth: Some(Date {
            year: 1900,
            month: 1,
            day: 1,
        }),
        health_consent: Some(pb::HealthConsent {
            text_version: "1".into(),
            consent_time: Some(Timestamp {
                seconds: seconds_of_year(2),
                nanos: 999_999_999,
            }),
        }),
        ..full_client()
    };
    let created = create(&sandbox, &owner.2, edges).await;
    let read = get(&sandbox, &owner.2, &created.id).await.expect("read");
    assert_eq!(read.date_of_birth, created.date_of_birth);
    assert_eq!(read.health_consent, created.health_consent);
    assert_eq!(
        read.health_consent
            .and_then(|consent| consent.consent_time)
            .map(|time| time.nanos),
        Some(999_999_000),
        "truncated to PostgreSQL's microseconds"
    );
}

#[tokio::test]
async fn forged_replayed_and_foreign_page_tokens_are_invalid_argument() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let stranger = trainer(&sandbox, "Sam").await;
    let lead = trainer(&sandbox, "Lena").await;
    for name in ["Zoé", "Zora", "Zack"] {
        create(&sandbox, &owner.2, named(name, "Roy")).await;
        create(&sandbox, &stranger.2, named(name, "Roy")).await;
    }
    let first = list(
        &sandbox,
        &owner.2,
        pb::ListClientsRequest {
            page_size: 1,
            ..Default::default()
        },
    )
    .await
    .expect("first page");
    let token = first.next_page_token.clone();
    assert!(!token.is_empty());

    let other_filters = [
        pb::ListClientsRequest {
            show_deleted: true,
            ..Default::default()
        },
        pb::ListClientsRequest {
            name_prefix: "zor".into(),
            ..Default::default()
        },
        pb::ListClientsRequest {
            owner_trainer_id: owner.0.clone(),
            ..Default::default()
        },
        pb::ListClientsRequest {
            owner_trainer_id: stranger.0.clone(),
            ..Default::default()
        },
        pb::ListClientsRequest {
            email: "zoe@example.ca".into(),
            ..Default::default()
        },
    ];
    for filter in other_filters {
        let case = format!("owner's token with another filter {filter:?}");
        assert_refused_on(
            list(
                &sandbox,
                &owner.2,
                pb::ListClientsRequest {
                    page_token: token.clone(),
                    ..filter
                },
            )
            .await,
            "page_token",
            &case,
        );
    }
    for (who, caller) in [("another trainer", &stranger.2), ("a third", &lead.2)] {
        assert_refused_on(
            list(
                &sandbox,
                caller,
                pb::ListClientsRequest {
                    page_size: 1,
                    page_token: token.clone(),
                    ..Default::default()
                },
            )
            .await,
            "page_token",
            who,
        );
    }
    // Every single-character change of the token, and a few shapes.
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut forged: Vec<String> = (0..token.len())
        .map(|index| {
            let original = token.as_bytes()[index];
            let replacement = alphabet
                .bytes()
                .find(|candidate| *candidate != original)
                .expect("another character");
            let mut bytes = token.clone().into_bytes();
            bytes[index] = replacement;
            String::from_utf8(bytes).expect("ascii")
        })
        .collect();
    forged.extend([
        format!("{token}A"),
        token[..token.len() - 1].to_owned(),
        format!("{token}=="),
        "A".repeat(100_000),
        "é".repeat(10_000),
        " ".into(),
        "%00".into(),
    ]);
    let slashed = token.replace('-', "+").replace('_', "/");
    if slashed != token {
        forged.push(slashed);
    }
    for bad in forged {
        let outcome = list(
            &sandbox,
            &owner.2,
            pb::ListClientsRequest {
                page_size: 1,
                page_token: bad.clone(),
                ..Default::default()
            },
        )
        .await;
        let shown = &bad[..bad.len().min(40)];
        assert_refused_on(outcome, "page_token", &format!("forged {shown:?}"));
    }
    // A different page size keeps the query; the genuine token still works,
    // and replaying it gives the same page again.
    for _ in 0..2 {
        let second = list(
            &sandbox,
            &owner.2,
            pb::ListClientsRequest {
                page_size: 50,
                page_token: token.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("second page");
        let names: Vec<&str> = second
            .clients
            .iter()
            .map(|client| client.first_name.as_str())
            .collect();
        assert_eq!(names, ["Zora", "Zack"]);
    }
    assert_refused_on(
        list(
            &sandbox,
            &owner.2,
            pb::ListClientsRequest {
                page_size: -1,
                ..Default::default()
            },
        )
        .await,
        "page_size",
        "negative page size",
    );
    let everything = list(
        &sandbox,
        &owner.2,
        pb::ListClientsRequest {
            page_size: i32::MAX,
            ..Default::default()
        },
    )
    .await
    .expect("a huge page size is coerced");
    assert_eq!(everything.clients.len(), 3);
}

#[tokio::test]
async fn oversized_records_are_refused_without_a_panic_or_internal() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let existing = create(&sandbox, &owner.2, full_client()).await;
    let admin = sandbox.db.admin_pool().await;
    let before = digest(&admin).await;

    let ten_thousand = pb::Client {
        medical_info: Some(pb::MedicalInfo {
            conditions: vec!["asthma".into(); 10_000],
            medications: vec!["x".into(); 10_000],
            allergies: Vec::new(),
        }),
        ..full_client()
    };
    let outcome = create_with(&sandbox, &owner.2, ten_thousand, "").await;
    assert_refused_on(
        outcome,
        "client.medical_info.conditions",
        "10,000 conditions",
    );
    let huge_entry = pb::Client {
        medical_info: Some(pb::MedicalInfo {
            allergies: vec!["p".repeat(501)],
            ..Default::default()
        }),
        ..full_client()
    };
    assert_refused_on(
        create_with(&sandbox, &owner.2, huge_entry, "").await,
        "client.medical_info.allergies",
        "a 501-character allergy",
    );
    let prefs: std::collections::BTreeMap<String, String> = (0..1_000)
        .map(|index| (format!("key_{index}"), "v".to_owned()))
        .collect();
    let thousand_prefs = pb::Client {
        preferences: prefs.into_iter().collect(),
        ..full_client()
    };
    assert_refused_on(
        create_with(&sandbox, &owner.2, thousand_prefs, "").await,
        "client.preferences",
        "1,000 preferences",
    );
    let long_key = pb::Client {
        preferences: [("k".repeat(65), "v".to_owned())].into(),
        ..full_client()
    };
    assert_refused_on(
        create_with(&sandbox, &owner.2, long_key, "").await,
        "client.preferences",
        "a 65-character preference key",
    );
    let long_value = pb::Client {
        preferences: [("note".to_owned(), "v".repeat(1_001))].into(),
        ..full_client()
    };
    assert_refused_on(
        create_with(&sandbox, &owner.2, long_value, "").await,
        "client.preferences",
        "a 1,001-character preference",
    );
    for (chars, case) in [(5_001, "5,001 characters"), (200_000, "200 KB")] {
        let goals = pb::Client {
            goals: "g".repeat(chars),
            ..full_client()
        };
        assert_refused_on(
            create_with(&sandbox, &owner.2, goals, "").await,
            "client.goals",
            case,
        );
    }
    // Beyond the largest message the service reads: RESOURCE_EXHAUSTED,
    // whatever the RPC.
    let huge = pb::Client {
        goals: "g".repeat(300 * 1024),
        ..full_client()
    };
    let too_big = create_with(&sandbox, &owner.2, huge.clone(), "")
        .await
        .expect_err("300 KB");
    assert_eq!(too_big.code(), Code::ResourceExhausted, "{too_big:?}");
    let too_big = clients(&sandbox, "gateway")
        .update_client(bearer(
            pb::UpdateClientRequest {
                client: Some(pb::Client {
                    id: existing.id.clone(),
                    ..huge
                }),
                update_mask: mask(&["goals"]),
                etag: String::new(),
            },
            &owner.2,
        ))
        .await
        .expect_err("300 KB");
    assert_eq!(too_big.code(), Code::ResourceExhausted, "{too_big:?}");
    let too_big = list(
        &sandbox,
        &owner.2,
        pb::ListClientsRequest {
            name_prefix: "z".repeat(300 * 1024),
            ..Default::default()
        },
    )
    .await
    .expect_err("300 KB");
    assert_eq!(too_big.code(), Code::ResourceExhausted, "{too_big:?}");
    for (field, request) in [
        (
            "name_prefix",
            pb::ListClientsRequest {
                name_prefix: "z".repeat(101),
                ..Default::default()
            },
        ),
        (
            "email",
            pb::ListClientsRequest {
                email: format!("{}@example.ca", "z".repeat(250)),
                ..Default::default()
            },
        ),
        (
            "phone",
            pb::ListClientsRequest {
                phone: "5".repeat(31),
                ..Default::default()
            },
        ),
    ] {
        assert_refused_on(
            list(&sandbox, &owner.2, request).await,
            field,
            &format!("long {field}"),
        );
    }
    assert_eq!(digest(&admin).await, before, "nothing was written");

    // The largest record the contract allows is stored and read back whole.
    let largest = pb::Client {
        first_name: "F".repeat(100),
        last_name: "L".repeat(100),
        goals: "🏋".repeat(5_000),
        medical_info: Some(pb::MedicalInfo {
            conditions: vec!["c".repeat(500); 50],
            medications: vec!["m".repeat(500); 50],
            allergies: vec!["a".repeat(500); 50],
        }),
        preferences: (0..32)
            .map(|index| (format!("{}{index:02}", "k".repeat(62)), "v".repeat(1_000)))
            .collect(),
        ..full_client()
    };
    let created = create(&sandbox, &owner.2, largest.clone()).await;
    let read = get(&sandbox, &owner.2, &created.id).await.expect("read");
    assert_eq!(read.goals, largest.goals);
    assert_eq!(read.medical_info, largest.medical_info);
    assert_eq!(read.preferences, largest.preferences);
    let exported = export(&sandbox, &owner.2, &created.id)
        .await
        .expect("export a large record");
    assert_eq!(exported["client"]["goals"], largest.goals.as_str());
}

/// A trainer: id, email, token.
type Trainer = (String, String, String);

/// What an RPC should answer: its name, code and reason.
type Expected = (&'static str, Code, &'static str);

/// Every public RPC a trainer can call on `client_id`, with `token`; each
/// RPC's outcome. `target` is the trainer the share, revoke and transfer
/// name.
async fn every_rpc(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    target: &str,
) -> Vec<(&'static str, Result<(), tonic::Status>)> {
    let mut api = clients(sandbox, "gateway");
    let id = client_id.to_owned();
    let mut outcomes: Vec<(&'static str, Result<(), tonic::Status>)> = Vec::new();
    let read = get(sandbox, token, &id).await;
    if let Ok(client) = &read {
        assert_eq!(client.first_name, FIRST, "whoever reads reads it whole");
    }
    outcomes.push(("GetClient", read.map(|_| ())));
    let updated = api
        .update_client(bearer(
            pb::UpdateClientRequest {
                client: Some(pb::Client {
                    id: id.clone(),
                    goals: "taken over".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["goals"]),
                etag: String::new(),
            },
            token,
        ))
        .await;
    outcomes.push(("UpdateClient", updated.map(|_| ())));
    outcomes.push((
        "ShareClient",
        share(sandbox, token, &id, target, pb::AccessLevel::Admin)
            .await
            .map(|_| ()),
    ));
    outcomes.push((
        "RevokeClientShare",
        revoke(sandbox, token, &id, target).await,
    ));
    let transferred = api
        .transfer_client(bearer(
            pb::TransferClientRequest {
                client_id: id.clone(),
                new_owner_trainer_id: target.into(),
                etag: String::new(),
            },
            token,
        ))
        .await;
    outcomes.push(("TransferClient", transferred.map(|_| ())));
    outcomes.push((
        "ExportClient",
        export(sandbox, token, &id).await.map(|_| ()),
    ));
    let undeleted = api
        .undelete_client(bearer(
            pb::UndeleteClientRequest {
                client_id: id.clone(),
            },
            token,
        ))
        .await;
    outcomes.push(("UndeleteClient (of a live client)", undeleted.map(|_| ())));
    let deleted = api
        .delete_client(bearer(
            pb::DeleteClientRequest {
                client_id: id.clone(),
                etag: String::new(),
            },
            token,
        ))
        .await;
    let was_deleted = deleted.is_ok();
    outcomes.push(("DeleteClient", deleted.map(|_| ())));
    if was_deleted {
        api.undelete_client(bearer(
            pb::UndeleteClientRequest {
                client_id: id.clone(),
            },
            token,
        ))
        .await
        .expect("whoever deleted restores");
    }
    outcomes
}

#[tokio::test]
async fn on_every_rpc_strangers_and_revoked_grantees_find_nothing_and_grantees_do_only_what_their_level_allows()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let stranger = trainer(&sandbox, "Sam").await;
    let reader = trainer(&sandbox, "Rita").await;
    let writer = trainer(&sandbox, "Will").await;
    let administrator = trainer(&sandbox, "Adam").await;
    let revoked = trainer(&sandbox, "Rene").await;
    let bystander = trainer(&sandbox, "Bea").await;
    let client = create(&sandbox, &owner.2, full_client()).await;
    let id = client.id.clone();
    for (grantee, level) in [
        (&reader, pb::AccessLevel::Read),
        (&writer, pb::AccessLevel::Write),
        (&administrator, pb::AccessLevel::Admin),
        (&revoked, pb::AccessLevel::Admin),
        (&bystander, pb::AccessLevel::Read),
    ] {
        share(&sandbox, &owner.2, &id, &grantee.0, level)
            .await
            .expect("share");
    }
    revoke(&sandbox, &owner.2, &id, &revoked.0)
        .await
        .expect("revoke");

    let not_found = |rpc: &'static str| (rpc, Code::NotFound, "CLIENT_NOT_FOUND");
    let denied = |rpc: &'static str| (rpc, Code::PermissionDenied, "ACCESS_LEVEL_INSUFFICIENT");
    let allowed = |rpc: &'static str| (rpc, Code::Ok, "");
    let invisible = [
        not_found("GetClient"),
        not_found("UpdateClient"),
        not_found("ShareClient"),
        not_found("RevokeClientShare"),
        not_found("TransferClient"),
        not_found("ExportClient"),
        not_found("UndeleteClient (of a live client)"),
        not_found("DeleteClient"),
    ];
    let expectations: Vec<(&str, &Trainer, Vec<Expected>)> = vec![
        ("another trainer", &stranger, invisible.to_vec()),
        ("a revoked grantee", &revoked, invisible.to_vec()),
        (
            "a READ grantee",
            &reader,
            vec![
                allowed("GetClient"),
                denied("UpdateClient"),
                denied("ShareClient"),
                denied("RevokeClientShare"),
                denied("TransferClient"),
                denied("ExportClient"),
                denied("UndeleteClient (of a live client)"),
                denied("DeleteClient"),
            ],
        ),
        (
            "a WRITE grantee",
            &writer,
            vec![
                allowed("GetClient"),
                allowed("UpdateClient"),
                denied("ShareClient"),
                denied("RevokeClientShare"),
                denied("TransferClient"),
                denied("ExportClient"),
                denied("UndeleteClient (of a live client)"),
                denied("DeleteClient"),
            ],
        ),
        (
            "an ADMIN grantee",
            &administrator,
            vec![
                allowed("GetClient"),
                allowed("UpdateClient"),
                allowed("ShareClient"),
                allowed("RevokeClientShare"),
                denied("TransferClient"),
                allowed("ExportClient"),
                (
                    "UndeleteClient (of a live client)",
                    Code::AlreadyExists,
                    "RESOURCE_NOT_DELETED",
                ),
                allowed("DeleteClient"),
            ],
        ),
    ];
    for (who, caller, expected) in expectations {
        // The share, revoke and transfer name the bystander for those who may
        // not touch shares, and themselves for a transfer to oneself.
        let target = if who == "an ADMIN grantee" {
            new_id()
        } else {
            bystander.0.clone()
        };
        let outcomes = every_rpc(&sandbox, &caller.2, &id, &target).await;
        assert_eq!(outcomes.len(), expected.len());
        for ((rpc, outcome), (expected_rpc, expected_code, expected_reason)) in
            outcomes.into_iter().zip(expected)
        {
            assert_eq!(rpc, expected_rpc);
            let case = format!("{who}: {rpc}");
            match outcome {
                Ok(()) => assert_eq!(expected_code, Code::Ok, "{case}: allowed"),
                Err(status) => {
                    assert_eq!(status.code(), expected_code, "{case}: {status:?}");
                    assert_eq!(reason(&status), expected_reason, "{case}");
                    assert_leaks_nothing(&status, &case);
                }
            }
        }
        // A transfer to themselves is the same refusal.
        let to_self = clients(&sandbox, "gateway")
            .transfer_client(bearer(
                pb::TransferClientRequest {
                    client_id: id.clone(),
                    new_owner_trainer_id: caller.0.clone(),
                    etag: String::new(),
                },
                &caller.2,
            ))
            .await;
        let expected_code = if who == "another trainer" || who == "a revoked grantee" {
            Code::NotFound
        } else {
            Code::PermissionDenied
        };
        assert_eq!(code(&to_self), expected_code, "{who}: transfer to oneself");
    }

    // What each may learn of the shares.
    for (who, caller) in [
        ("another trainer", &stranger),
        ("a revoked grantee", &revoked),
    ] {
        assert_refused(
            shares(&sandbox, &caller.2, &id).await,
            Code::NotFound,
            "CLIENT_NOT_FOUND",
            who,
        );
    }
    for caller in [&reader, &writer] {
        let own = shares(&sandbox, &caller.2, &id).await.expect("own share");
        let trainers: Vec<&str> = own.iter().map(|share| share.trainer_id.as_str()).collect();
        assert_eq!(
            trainers,
            [caller.0.as_str()],
            "a grantee sees their own share only"
        );
    }
    let all = shares(&sandbox, &administrator.2, &id)
        .await
        .expect("all shares");
    assert_eq!(all.len(), 4, "reader, writer, administrator, bystander");

    // Lists name nothing to those who may not see the client.
    for (who, caller) in [
        ("another trainer", &stranger),
        ("a revoked grantee", &revoked),
    ] {
        for request in [
            pb::ListClientsRequest::default(),
            pb::ListClientsRequest {
                show_deleted: true,
                ..Default::default()
            },
            pb::ListClientsRequest {
                email: EMAIL.into(),
                ..Default::default()
            },
            pb::ListClientsRequest {
                phone: "514 555 0100".into(),
                ..Default::default()
            },
            pb::ListClientsRequest {
                name_prefix: FIRST.into(),
                ..Default::default()
            },
            pb::ListClientsRequest {
                owner_trainer_id: owner.0.clone(),
                ..Default::default()
            },
        ] {
            let listed = list(&sandbox, &caller.2, request).await.expect("list");
            assert!(listed.clients.is_empty(), "{who} lists nothing");
        }
    }

    // Internal peers: the forwarded user decides, and only they may ask.
    for (who, caller) in [
        ("another trainer", &stranger),
        ("a revoked grantee", &revoked),
    ] {
        let answer = clients(&sandbox, "scheduling")
            .check_client_access(bearer(
                pb::CheckClientAccessRequest {
                    client_id: id.clone(),
                    level: pb::AccessLevel::Read as i32,
                },
                &caller.2,
            ))
            .await
            .expect("an access check answers")
            .into_inner();
        assert!(!answer.allowed, "{who}");
        assert_eq!(answer.granted_level, pb::AccessLevel::Unspecified as i32);
        assert!(answer.owner_trainer_id.is_empty(), "{who}: no owner named");
        assert_refused(
            clients(&sandbox, "billing")
                .get_contact(bearer(
                    pb::GetContactRequest {
                        client_id: id.clone(),
                        purpose: pb::AccessPurpose::Payment as i32,
                    },
                    &caller.2,
                ))
                .await,
            Code::NotFound,
            "CLIENT_NOT_FOUND",
            &format!("{who}: contact"),
        );
    }
    let unauthenticated = clients(&sandbox, "scheduling")
        .check_client_access(tonic::Request::new(pb::CheckClientAccessRequest {
            client_id: id.clone(),
            level: pb::AccessLevel::Read as i32,
        }))
        .await;
    assert_refused(
        unauthenticated,
        Code::Unauthenticated,
        "TOKEN_REQUIRED",
        "an access check without a user",
    );
    for peer in ["scheduling", "billing"] {
        let forged = format!("{}x", owner.2);
        let check = clients(&sandbox, peer)
            .check_client_access(bearer(
                pb::CheckClientAccessRequest {
                    client_id: id.clone(),
                    level: pb::AccessLevel::Read as i32,
                },
                &forged,
            ))
            .await;
        assert_eq!(code(&check), Code::Unauthenticated, "{peer}: forged token");
        // A bad forwarded token is refused, not read as "no user".
        let contact = clients(&sandbox, peer)
            .get_contact(bearer(
                pb::GetContactRequest {
                    client_id: id.clone(),
                    purpose: pb::AccessPurpose::Payment as i32,
                },
                &forged,
            ))
            .await;
        assert_eq!(
            code(&contact),
            Code::Unauthenticated,
            "{peer}: forged token"
        );
    }
    for peer in ["gateway", "tenancy", "identity", "operator"] {
        let check = clients(&sandbox, peer)
            .check_client_access(bearer(
                pb::CheckClientAccessRequest {
                    client_id: id.clone(),
                    level: pb::AccessLevel::Read as i32,
                },
                &owner.2,
            ))
            .await;
        assert_refused(
            check,
            Code::PermissionDenied,
            "PEER_NOT_ALLOWED",
            &format!("{peer}: CheckClientAccess"),
        );
    }
    for peer in ["gateway", "tenancy", "documentation", "operator"] {
        let contact = clients(&sandbox, peer)
            .get_contact(bearer(
                pb::GetContactRequest {
                    client_id: id.clone(),
                    purpose: pb::AccessPurpose::Payment as i32,
                },
                &owner.2,
            ))
            .await;
        assert_refused(
            contact,
            Code::PermissionDenied,
            "PEER_NOT_ALLOWED",
            &format!("{peer}: GetContact"),
        );
    }
    for peer in ["scheduling", "billing", "documentation", "tenancy"] {
        let read = clients(&sandbox, peer)
            .get_client(bearer(
                pb::GetClientRequest {
                    client_id: id.clone(),
                    purpose: pb::AccessPurpose::Treatment as i32,
                    show_deleted: false,
                },
                &owner.2,
            ))
            .await;
        assert_refused(
            read,
            Code::PermissionDenied,
            "PEER_NOT_ALLOWED",
            &format!("{peer}: GetClient"),
        );
    }

    // Purge: operators only, over their own certificate, with MFA.
    let (_, operator) = sandbox.operator().await;
    let (_, _, no_mfa) = sandbox.operator_without_mfa().await;
    let purge = |peer: &'static str, token: String| {
        let sandbox = &sandbox;
        let client_id = id.clone();
        async move {
            clients(sandbox, peer)
                .purge_client(bearer(pb::PurgeClientRequest { client_id }, &token))
                .await
        }
    };
    assert_refused(
        purge("gateway", operator.access_token.clone()).await,
        Code::PermissionDenied,
        "PEER_NOT_ALLOWED",
        "purge through the gateway",
    );
    assert_refused(
        purge("billing", operator.access_token.clone()).await,
        Code::PermissionDenied,
        "PEER_NOT_ALLOWED",
        "purge through billing",
    );
    assert_refused(
        purge("operator", no_mfa.access_token.clone()).await,
        Code::PermissionDenied,
        "MFA_REQUIRED",
        "an operator without MFA",
    );
    assert_refused(
        purge("operator", owner.2.clone()).await,
        Code::PermissionDenied,
        "ROLE_REQUIRED",
        "the owner purging",
    );
    let unauthenticated = clients(&sandbox, "operator")
        .purge_client(tonic::Request::new(pb::PurgeClientRequest {
            client_id: id.clone(),
        }))
        .await;
    assert_eq!(code(&unauthenticated), Code::Unauthenticated);

    // After all of it the client is whole, and owned by its owner.
    let read = get(&sandbox, &owner.2, &id).await.expect("owner reads");
    assert_eq!(read.owner_trainer_id, owner.0);
    assert_eq!(read.first_name, FIRST);
    assert!(read.delete_time.is_none());
    assert_eq!(
        read.medical_info.expect("medical").conditions,
        vec![CONDITION]
    );
}

/// A stack whose clients may be purged as soon as they are deleted.
async fn purging_sandbox() -> Sandbox {
    let registry = fitflow_platform::Registry::new(vec![
        Arc::new(fitflow_identity::IdentityService),
        Arc::new(fitflow_tenancy::TenancyService),
        Arc::new(fitflow_clients::ClientsService::with_retention(
            chrono::Duration::zero(),
        )),
        Arc::new(fitflow_scheduling::SchedulingService),
        Arc::new(fitflow_documentation::DocumentationService),
        Arc::new(fitflow_billing::BillingService),
        Arc::new(fitflow_audit::AuditService),
    ])
    .expect("registry");
    Sandbox::with_registry(registry).await
}

/// The events of a client's sharing history that name `trainer_id`, oldest
/// first, as (event, level).
fn history_of(document: &serde_json::Value, trainer_id: &str) -> Vec<(String, String)> {
    document["sharing_history"]
        .as_array()
        .expect("a history")
        .iter()
        .filter(|entry| entry["trainer_id"] == trainer_id)
        .map(|entry| {
            (
                entry["event"].as_str().unwrap_or_default().to_owned(),
                entry["permission_level"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn sharing_with_the_owner_revoking_nothing_and_purging_the_living_get_their_documented_codes()
{
    let sandbox = purging_sandbox().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let mate = trainer(&sandbox, "Milo").await;
    let (_, operator) = sandbox.operator().await;
    let client = create(&sandbox, &owner.2, full_client()).await;
    let id = client.id.clone();
    let mut api = clients(&sandbox, "gateway");

    assert_refused(
        share(&sandbox, &owner.2, &id, &owner.0, pb::AccessLevel::Read).await,
        Code::FailedPrecondition,
        "SHARE_WITH_OWNER",
        "the owner shares with themselves",
    );
    // An ADMIN grantee may not share with the owner either, nor make
    // themselves more than a share can be.
    share(&sandbox, &owner.2, &id, &mate.0, pb::AccessLevel::Admin)
        .await
        .expect("share");
    assert_refused(
        share(&sandbox, &mate.2, &id, &owner.0, pb::AccessLevel::Admin).await,
        Code::FailedPrecondition,
        "SHARE_WITH_OWNER",
        "an ADMIN grantee shares with the owner",
    );
    assert_refused_on(
        share(&sandbox, &mate.2, &id, &mate.0, pb::AccessLevel::Owner).await,
        "level",
        "a share at OWNER level",
    );
    for level in [pb::AccessLevel::Unspecified as i32, 5, -1] {
        let outcome = api
            .share_client(bearer(
                pb::ShareClientRequest {
                    client_id: id.clone(),
                    trainer_id: mate.0.clone(),
                    level,
                    trainer_email: String::new(),
                },
                &owner.2,
            ))
            .await;
        assert_refused_on(outcome, "level", &format!("level {level}"));
    }
    // Sharing with a trainer id nobody holds is accepted (the service does
    // not know every trainer) and gives nobody anything.
    let ghost = new_id();
    share(&sandbox, &owner.2, &id, &ghost, pb::AccessLevel::Read)
        .await
        .expect("a share with an unknown id");
    revoke(&sandbox, &owner.2, &id, &ghost)
        .await
        .expect("revoked again");
    for (who, trainer_id) in [
        ("a trainer never shared with", new_id()),
        ("the owner", owner.0.clone()),
        ("the ghost again", ghost.clone()),
    ] {
        assert_refused(
            revoke(&sandbox, &owner.2, &id, &trainer_id).await,
            Code::NotFound,
            "SHARE_NOT_FOUND",
            who,
        );
    }
    assert_refused(
        revoke(&sandbox, &owner.2, &new_id(), &mate.0).await,
        Code::NotFound,
        "CLIENT_NOT_FOUND",
        "a client that does not exist",
    );

    // A transfer to the owner changes nothing.
    let before = get(&sandbox, &owner.2, &id).await.expect("read");
    let same = api
        .transfer_client(bearer(
            pb::TransferClientRequest {
                client_id: id.clone(),
                new_owner_trainer_id: owner.0.clone(),
                etag: before.etag.clone(),
            },
            &owner.2,
        ))
        .await
        .expect("a transfer to the owner is a no-op")
        .into_inner()
        .client
        .expect("client");
    assert_eq!(same.owner_trainer_id, owner.0);
    let after = get(&sandbox, &owner.2, &id).await.expect("read");
    assert_eq!(after.etag, before.etag, "nothing changed");
    let document = export(&sandbox, &owner.2, &id).await.expect("export");
    assert!(
        history_of(&document, &owner.0).is_empty(),
        "no transfer recorded"
    );
    // A transfer to someone the owner does not act for.
    assert_refused(
        api.transfer_client(bearer(
            pb::TransferClientRequest {
                client_id: id.clone(),
                new_owner_trainer_id: mate.0.clone(),
                etag: String::new(),
            },
            &owner.2,
        ))
        .await,
        Code::PermissionDenied,
        "TRANSFER_TARGET_NOT_ALLOWED",
        "a transfer to a peer",
    );

    // Undelete of a live client; purge of a live one; purge twice.
    assert_refused(
        api.undelete_client(bearer(
            pb::UndeleteClientRequest {
                client_id: id.clone(),
            },
            &owner.2,
        ))
        .await,
        Code::AlreadyExists,
        "RESOURCE_NOT_DELETED",
        "undelete of a live client",
    );
    let purge = |client_id: String| {
        let sandbox = &sandbox;
        let token = operator.access_token.clone();
        async move {
            clients(sandbox, "operator")
                .purge_client(bearer(pb::PurgeClientRequest { client_id }, &token))
                .await
        }
    };
    assert_refused(
        purge(id.clone()).await,
        Code::FailedPrecondition,
        "RESOURCE_NOT_DELETED",
        "purge of a live client",
    );
    assert_refused(
        purge(new_id()).await,
        Code::NotFound,
        "CLIENT_NOT_FOUND",
        "purge of nobody",
    );
    get(&sandbox, &owner.2, &id)
        .await
        .expect("a refused purge changed nothing");
    api.delete_client(bearer(
        pb::DeleteClientRequest {
            client_id: id.clone(),
            etag: String::new(),
        },
        &owner.2,
    ))
    .await
    .expect("delete");
    assert_refused(
        api.delete_client(bearer(
            pb::DeleteClientRequest {
                client_id: id.clone(),
                etag: String::new(),
            },
            &owner.2,
        ))
        .await,
        Code::NotFound,
        "RESOURCE_ALREADY_DELETED",
        "a second delete",
    );
    assert_refused(
        share(&sandbox, &owner.2, &id, &new_id(), pb::AccessLevel::Read).await,
        Code::FailedPrecondition,
        "RESOURCE_DELETED",
        "sharing a deleted client",
    );
    // Two purges at once, then a third: one erases, the others find nothing.
    let (first, second) = tokio::join!(purge(id.clone()), purge(id.clone()));
    let mut codes = vec![code(&first), code(&second), code(&purge(id.clone()).await)];
    codes.sort_by_key(|code| *code as i32);
    assert_eq!(codes, [Code::Ok, Code::NotFound, Code::NotFound]);
    assert_refused(
        get(&sandbox, &owner.2, &id).await,
        Code::NotFound,
        "CLIENT_NOT_FOUND",
        "a purged client",
    );
    let answer = clients(&sandbox, "scheduling")
        .check_client_access(bearer(
            pb::CheckClientAccessRequest {
                client_id: id.clone(),
                level: pb::AccessLevel::Read as i32,
            },
            &owner.2,
        ))
        .await
        .expect("an access check answers")
        .into_inner();
    assert!(!answer.allowed, "a purged client reaches nobody");
}

#[tokio::test]
async fn a_contact_is_read_only_for_an_invoice_or_a_reminder() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let client = create(&sandbox, &owner.2, full_client()).await;
    for peer in ["billing", "scheduling"] {
        for purpose in [
            pb::AccessPurpose::Unspecified as i32,
            pb::AccessPurpose::Treatment as i32,
            99,
        ] {
            let outcome = clients(&sandbox, peer)
                .get_contact(tonic::Request::new(pb::GetContactRequest {
                    client_id: client.id.clone(),
                    purpose,
                }))
                .await;
            assert_refused_on(outcome, "purpose", &format!("{peer}: purpose {purpose}"));
        }
        for purpose in [pb::AccessPurpose::Payment, pb::AccessPurpose::Operations] {
            let contact = clients(&sandbox, peer)
                .get_contact(tonic::Request::new(pb::GetContactRequest {
                    client_id: client.id.clone(),
                    purpose: purpose as i32,
                }))
                .await
                .expect("a contact")
                .into_inner();
            assert_eq!(contact.email, EMAIL);
        }
    }
}

#[tokio::test]
async fn a_hundred_concurrent_shares_and_revokes_of_one_pair_leave_the_shares_and_the_history_in_agreement()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let mate = trainer(&sandbox, "Milo").await;
    let client = create(&sandbox, &owner.2, full_client()).await;
    let levels = [
        pb::AccessLevel::Read,
        pb::AccessLevel::Write,
        pb::AccessLevel::Admin,
    ];
    let outcomes = futures::future::join_all((0..100).map(|index| {
        let sandbox = &sandbox;
        let token = owner.2.clone();
        let client_id = client.id.clone();
        let trainer_id = mate.0.clone();
        async move {
            if index % 2 == 0 {
                share(
                    sandbox,
                    &token,
                    &client_id,
                    &trainer_id,
                    levels[index / 2 % 3],
                )
                .await
                .map(|_| ())
            } else {
                revoke(sandbox, &token, &client_id, &trainer_id).await
            }
        }
    }))
    .await;
    let mut worked = 0;
    for (index, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Ok(()) => worked += 1,
            // A hundred changes of one row run one at a time; on a loaded
            // machine the last may wait longer than the pool lets them, and
            // are refused having changed nothing.
            Err(status) if reason(status) == "DATABASE_UNAVAILABLE" => {}
            Err(status) => {
                assert!(index % 2 == 1, "share {index} failed: {status:?}");
                assert_eq!(status.code(), Code::NotFound, "{status:?}");
                assert_eq!(reason(status), "SHARE_NOT_FOUND");
            }
        }
    }
    let current = shares(&sandbox, &owner.2, &client.id)
        .await
        .expect("shares");
    let document = export(&sandbox, &owner.2, &client.id)
        .await
        .expect("export");
    let history = history_of(&document, &mate.0);
    assert!(worked >= 50, "most changes were made: {worked}");
    assert_eq!(history.len(), worked, "one history entry per change made");
    let (last_event, last_level) = history.last().expect("some history");
    match current.as_slice() {
        [] => assert_eq!(last_event, "revoked", "{history:?}"),
        [only] => {
            assert_ne!(last_event, "revoked", "{history:?}");
            let level = pb::AccessLevel::try_from(only.level).expect("a level");
            assert_eq!(
                last_level.as_str(),
                level
                    .as_str_name()
                    .trim_start_matches("ACCESS_LEVEL_")
                    .to_lowercase(),
            );
        }
        more => panic!("one pair, several shares: {more:?}"),
    }
    assert_eq!(
        document["shares"].as_array().expect("shares").len(),
        current.len()
    );
    // The history alternates sensibly: nothing is revoked that was not held.
    let mut held = false;
    for (event, _) in &history {
        match event.as_str() {
            "granted" => {
                assert!(!held, "granted while held: {history:?}");
                held = true;
            }
            "changed" => assert!(held, "changed while not held: {history:?}"),
            "revoked" => {
                assert!(held, "revoked while not held: {history:?}");
                held = false;
            }
            other => panic!("unexpected event {other}"),
        }
    }
    // And the grantee's access is what the shares say.
    let read = get(&sandbox, &mate.2, &client.id).await;
    assert_eq!(read.is_ok(), !current.is_empty());
}

#[tokio::test]
async fn a_hundred_concurrent_creates_with_one_request_id_create_exactly_one_client_even_on_a_cold_start()
 {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let request_id = new_id();
    // The very first creates of the service: no key is cached yet.
    let outcomes = futures::future::join_all(
        (0..100).map(|_| create_with(&sandbox, &owner.2, full_client(), &request_id)),
    )
    .await;
    let mut ids = std::collections::BTreeSet::new();
    for outcome in outcomes {
        let client = outcome.expect("every retry answers with the client");
        ids.insert(client.id);
    }
    assert_eq!(ids.len(), 1, "one client: {ids:?}");
    let listed = list(&sandbox, &owner.2, pb::ListClientsRequest::default())
        .await
        .expect("list");
    assert_eq!(listed.clients.len(), 1);
}

#[tokio::test]
async fn the_first_searches_after_a_start_do_not_starve_the_database_pool() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let outcomes = futures::future::join_all((0..64).map(|index| {
        let sandbox = &sandbox;
        let token = owner.2.clone();
        async move {
            let request = match index % 3 {
                0 => pb::ListClientsRequest {
                    name_prefix: "tremb".into(),
                    ..Default::default()
                },
                1 => pb::ListClientsRequest {
                    email: EMAIL.into(),
                    ..Default::default()
                },
                _ => pb::ListClientsRequest {
                    phone: "514-555-0100".into(),
                    ..Default::default()
                },
            };
            list(sandbox, &token, request).await
        }
    }))
    .await;
    // A starved pool answers DATABASE_UNAVAILABLE after its acquire
    // timeout: every search succeeding is the check (no wall-clock bound,
    // which would flake on a shared machine).
    for outcome in outcomes {
        let listed = outcome.expect("a search on a cold start answers");
        assert!(listed.clients.is_empty());
    }
}

#[tokio::test]
async fn a_request_id_reused_with_another_body_is_refused_and_a_retry_returns_the_same_client() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let other = trainer(&sandbox, "Sam").await;
    let request_id = new_id();
    let first = create_with(&sandbox, &owner.2, full_client(), &request_id)
        .await
        .expect("create");
    let retry = create_with(&sandbox, &owner.2, full_client(), &request_id)
        .await
        .expect("retry");
    assert_eq!(retry.id, first.id);
    assert_eq!(retry.etag, first.etag);
    for (case, body) in [
        (
            "another goal",
            pb::Client {
                goals: "something else".into(),
                ..full_client()
            },
        ),
        (
            "another owner",
            pb::Client {
                owner_trainer_id: owner.0.clone(),
                ..full_client()
            },
        ),
        (
            "another preference",
            pb::Client {
                preferences: [
                    ("session_time".to_owned(), "mornings".to_owned()),
                    ("music".to_owned(), "none".to_owned()),
                ]
                .into(),
                ..full_client()
            },
        ),
    ] {
        assert_refused(
            create_with(&sandbox, &owner.2, body, &request_id).await,
            Code::AlreadyExists,
            "REQUEST_ID_REUSED",
            case,
        );
    }
    // The same request id from someone else is their own request.
    let theirs = create_with(&sandbox, &other.2, full_client(), &request_id)
        .await
        .expect("another trainer's create");
    assert_ne!(theirs.id, first.id);
    assert_eq!(theirs.owner_trainer_id, other.0);
    // Map order does not make a retry look like another request.
    let many: std::collections::BTreeMap<String, String> = (0..32)
        .map(|index| (format!("pref_{index}"), format!("value {index}")))
        .collect();
    let with_prefs = pb::Client {
        preferences: many.into_iter().collect(),
        ..full_client()
    };
    let ordered_id = new_id();
    let once = create_with(&sandbox, &owner.2, with_prefs.clone(), &ordered_id)
        .await
        .expect("create");
    for _ in 0..5 {
        let again = create_with(&sandbox, &owner.2, with_prefs.clone(), &ordered_id)
            .await
            .expect("a retry with the same preferences");
        assert_eq!(again.id, once.id);
    }
    // The same id in capitals is the same request; other spellings are
    // refused.
    let shouted = create_with(
        &sandbox,
        &owner.2,
        full_client(),
        &request_id.to_uppercase(),
    )
    .await
    .expect("a retry spelling the id in capitals");
    assert_eq!(shouted.id, first.id);
    for spelling in [
        request_id.replace('-', ""),
        format!("{{{request_id}}}"),
        format!("urn:uuid:{request_id}"),
        uuid::Uuid::nil().to_string(),
    ] {
        assert_refused_on(
            create_with(&sandbox, &owner.2, full_client(), &spelling).await,
            "request_id",
            &spelling,
        );
    }
    let listed = list(&sandbox, &owner.2, pb::ListClientsRequest::default())
        .await
        .expect("list");
    assert_eq!(listed.clients.len(), 2);
}

#[tokio::test]
async fn after_a_revoke_returns_the_former_grantee_never_reads_again() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let mate = trainer(&sandbox, "Milo").await;
    let client = create(&sandbox, &owner.2, full_client()).await;
    share(
        &sandbox,
        &owner.2,
        &client.id,
        &mate.0,
        pb::AccessLevel::Write,
    )
    .await
    .expect("share");
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..100)
        .map(|_| {
            let channel = sandbox.channel(CLIENTS, "gateway");
            let token = mate.2.clone();
            let client_id = client.id.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut api = ClientsServiceClient::new(channel);
                let mut reads = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let outcome = api
                        .get_client(bearer(
                            pb::GetClientRequest {
                                client_id: client_id.clone(),
                                purpose: pb::AccessPurpose::Treatment as i32,
                                show_deleted: false,
                            },
                            &token,
                        ))
                        .await;
                    reads.push((started, outcome.map(|_| ()).map_err(|status| status.code())));
                }
                reads
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    revoke(&sandbox, &owner.2, &client.id, &mate.0)
        .await
        .expect("revoke");
    let revoked_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut before = 0;
    let mut after = 0;
    for reader in readers {
        for (started, outcome) in reader.await.expect("reader") {
            if started >= revoked_at {
                after += 1;
                assert_eq!(outcome, Err(Code::NotFound), "a read after the revoke");
            } else {
                match outcome {
                    Ok(()) => before += 1,
                    Err(code) => assert_eq!(code, Code::NotFound, "no other failure"),
                }
            }
        }
    }
    assert!(before > 0, "the grantee read while shared");
    assert!(after > 0, "reads were tried after the revoke");
}

#[tokio::test]
async fn two_hundred_concurrent_name_searches_never_fail_and_others_are_still_served() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let other = trainer(&sandbox, "Sam").await;
    for index in 0..40 {
        create(
            &sandbox,
            &owner.2,
            named(&format!("Tremblay{index}"), &format!("Tremblant{index}")),
        )
        .await;
    }
    let theirs = create(&sandbox, &other.2, full_client()).await;
    let searches = tokio::spawn({
        let channel = sandbox.channel(CLIENTS, "gateway");
        let token = owner.2.clone();
        async move {
            futures::future::join_all((0..200).map(|index| {
                let mut api = ClientsServiceClient::new(channel.clone());
                let token = token.clone();
                async move {
                    let prefix = ["tre", "tremb", "tremblayx", "Trémblànt"][index % 4];
                    api.list_clients(bearer(
                        pb::ListClientsRequest {
                            name_prefix: prefix.into(),
                            page_size: 200,
                            ..Default::default()
                        },
                        &token,
                    ))
                    .await
                    .map(|response| response.into_inner().clients.len())
                }
            }))
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answered =
        tokio::time::timeout(Duration::from_secs(10), get(&sandbox, &other.2, &theirs.id))
            .await
            .expect("another trainer's read answers within 10 s during the searches");
    answered.expect("and succeeds");
    for (index, outcome) in searches.await.expect("searches").into_iter().enumerate() {
        let found = outcome.unwrap_or_else(|status| panic!("search {index}: {status:?}"));
        let expected = [40, 40, 0, 40][index % 4];
        assert_eq!(found, expected, "search {index}");
    }
}
