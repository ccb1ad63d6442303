//! Clients end to end: sealed records, finding them without opening
//! everyone, sharing on purpose, supervision from the team tree, access
//! events for every read, and erasure by crypto-shredding — through
//! identity, tenancy, clients and audit over real mTLS, attacked as another
//! trainer, a revoked grantee, a former supervisor and a wrong peer would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::audit::audit_service_client::AuditServiceClient;
use fitflow_proto::clients as pb;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::types::{PostalAddress, Province};
use prost_types::{FieldMask, Timestamp};
use secrecy::ExposeSecret as _;
use tonic::Code;
use tonic::transport::Channel;

use crate::identity_support::{reason, violated_fields};
use crate::tenancy::{TENANCY, answer, invite_to_team, trainer};

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

fn clients(sandbox: &Sandbox, peer: &str) -> ClientsServiceClient<Channel> {
    ClientsServiceClient::new(sandbox.channel(CLIENTS, peer))
}

fn consent() -> Option<pb::HealthConsent> {
    Some(pb::HealthConsent {
        text_version: "2026-01".into(),
        consent_time: Some(Timestamp {
            seconds: chrono::Utc::now().timestamp() - 60,
            nanos: 0,
        }),
    })
}

/// A whole client with health information; names and contacts from `tag`.
pub(crate) fn full_client(first: &str, last: &str, email: &str, phone: &str) -> pb::Client {
    pb::Client {
        first_name: first.into(),
        last_name: last.into(),
        email: email.into(),
        phone: phone.into(),
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
            conditions: vec!["asthma".into()],
            medications: vec!["salbutamol".into()],
            allergies: vec!["peanuts".into()],
        }),
        goals: "Run a 10 km race.\nStay injury-free.".into(),
        address: Some(PostalAddress {
            street: "123 rue Saint-Denis".into(),
            city: "Montréal".into(),
            province: Province::Qc as i32,
            postal_code: "h2x1y4".into(),
            country_code: String::new(),
        }),
        source: pb::ClientSource::Referral as i32,
        health_consent: consent(),
        ..Default::default()
    }
}

pub(crate) async fn create(
    sandbox: &Sandbox,
    token: &str,
    client: pb::Client,
) -> Result<pb::Client, tonic::Status> {
    clients(sandbox, "gateway")
        .create_client(bearer(
            pb::CreateClientRequest {
                client: Some(client),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().client.expect("client"))
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

async fn update_goals(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    goals: &str,
    etag: &str,
) -> Result<pb::Client, tonic::Status> {
    clients(sandbox, "gateway")
        .update_client(bearer(
            pb::UpdateClientRequest {
                client: Some(pb::Client {
                    id: client_id.into(),
                    goals: goals.into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["goals".into()],
                }),
                etag: etag.into(),
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
) -> Vec<pb::ClientSummary> {
    clients(sandbox, "gateway")
        .list_clients(bearer(request, token))
        .await
        .expect("list clients")
        .into_inner()
        .clients
}

pub(crate) async fn share(
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

pub(crate) fn code<T>(outcome: &Result<T, tonic::Status>) -> Code {
    match outcome {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// Puts `member` in `lead`'s team and returns the lead's fresh token (the
/// team travels in tokens issued after the change).
pub(crate) async fn join_team(
    sandbox: &Sandbox,
    lead: &(String, String, String),
    member: &(String, String, String),
) -> String {
    let invitation = invite_to_team(sandbox, &lead.2, &lead.0, &member.1)
        .await
        .expect("invite");
    answer(sandbox, &member.2, &invitation.id, true)
        .await
        .expect("join");
    // The join makes the lead's tokens stale: log in once identity knows.
    sandbox.structure_settled().await;
    sandbox.login(&lead.1).await.access_token
}

/// Waits until the audit trail of `owner` holds `count` events about
/// client `client_id` and returns their (action, purpose, actor) triples.
async fn reads_of(
    sandbox: &Sandbox,
    owner_token: &str,
    owner_id: &str,
    client_id: &str,
    count: usize,
) -> Vec<(i32, i32, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = AuditServiceClient::new(sandbox.channel(AUDIT, "gateway"))
            .list_events(bearer(
                fitflow_proto::audit::ListEventsRequest {
                    filter: Some(fitflow_proto::audit::EventFilter {
                        tenant_id: owner_id.into(),
                        resource_type: "clients".into(),
                        resource_id: client_id.into(),
                        ..Default::default()
                    }),
                    page_size: 100,
                    ..Default::default()
                },
                owner_token,
            ))
            .await
            .expect("list events")
            .into_inner()
            .events;
        let reads: Vec<(i32, i32, String)> = events
            .iter()
            .filter_map(|stored| stored.event.as_ref())
            .filter(|event| event.action == fitflow_proto::audit::Action::Read as i32)
            .map(|event| {
                let actor = match event.actor.as_ref().and_then(|actor| actor.kind.as_ref()) {
                    Some(fitflow_proto::types::actor::Kind::UserId(id)) => id.clone(),
                    other => format!("{other:?}"),
                };
                (event.action, event.purpose, actor)
            })
            .collect();
        if reads.len() >= count || Instant::now() > deadline {
            return reads;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_trainer_finds_shares_and_supervises_a_client_and_the_trail_says_who_read_it() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let lead = trainer(&sandbox, "Lena").await;
    let owner = trainer(&sandbox, "Ana").await;
    let mate = trainer(&sandbox, "Milo").await;
    let lead_token = join_team(&sandbox, &lead, &owner).await;

    let created = create(
        &sandbox,
        &owner.2,
        full_client(
            "Zoé",
            "Tremblay-Gagnon",
            "Zoe.T@Example.ca",
            "+1 (514) 555-0100",
        ),
    )
    .await
    .expect("create");
    assert_eq!(created.owner_trainer_id, owner.0);
    assert_eq!(created.email, "zoe.t@example.ca");
    assert_eq!(created.caller_access, pb::AccessLevel::Owner as i32);
    let read = get(&sandbox, &owner.2, &created.id)
        .await
        .expect("owner reads");
    assert_eq!(
        read.medical_info.expect("medical").allergies,
        vec!["peanuts"]
    );
    assert_eq!(read.address.expect("address").postal_code, "H2X 1Y4");

    // Found by email (any case), by phone (any punctuation), by name prefix.
    let by_email = list(
        &sandbox,
        &owner.2,
        pb::ListClientsRequest {
            email: "ZOE.T@example.CA".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_email.len(), 1);
    assert_eq!(by_email[0].first_name, "Zoé");
    let by_phone = list(
        &sandbox,
        &owner.2,
        pb::ListClientsRequest {
            phone: "514.555.0100".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_phone.len(), 1);
    for prefix in ["trem", "ZOE", "tremblay-g"] {
        let found = list(
            &sandbox,
            &owner.2,
            pb::ListClientsRequest {
                name_prefix: prefix.into(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(found.len(), 1, "prefix {prefix}");
    }
    let nobody = list(
        &sandbox,
        &owner.2,
        pb::ListClientsRequest {
            name_prefix: "gagnon".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(
        nobody.is_empty(),
        "prefixes start at the beginning of a name"
    );

    // Shared read-only: the teammate reads but cannot write.
    share(
        &sandbox,
        &owner.2,
        &created.id,
        &mate.0,
        pb::AccessLevel::Read,
    )
    .await
    .expect("share");
    let mate_read = get(&sandbox, &mate.2, &created.id)
        .await
        .expect("grantee reads");
    assert_eq!(mate_read.caller_access, pb::AccessLevel::Read as i32);
    let refused = update_goals(&sandbox, &mate.2, &created.id, "mine now", "")
        .await
        .expect_err("a read grantee cannot write");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(reason(&refused), "ACCESS_LEVEL_INSUFFICIENT");
    let mate_list = list(&sandbox, &mate.2, pb::ListClientsRequest::default()).await;
    assert_eq!(
        mate_list.len(),
        1,
        "a shared client is listed for the grantee"
    );

    // The supervisor sees it through the team tree.
    let lead_read = get(&sandbox, &lead_token, &created.id)
        .await
        .expect("supervisor reads");
    assert_eq!(lead_read.caller_access, pb::AccessLevel::Owner as i32);

    // The trail answers "who viewed this client": three reads, with purposes.
    let reads = reads_of(&sandbox, &owner.2, &owner.0, &created.id, 3).await;
    let readers: Vec<&str> = reads.iter().map(|(_, _, actor)| actor.as_str()).collect();
    for reader in [&owner.0, &mate.0, &lead.0] {
        assert!(
            readers.contains(&reader.as_str()),
            "{reader} in {readers:?}"
        );
    }
    assert!(
        reads
            .iter()
            .all(|(_, purpose, _)| *purpose == fitflow_proto::audit::Purpose::Treatment as i32)
    );
}

#[tokio::test]
async fn strangers_revoked_grantees_former_supervisors_and_studio_owners_see_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let stranger = trainer(&sandbox, "Sam").await;
    let grantee = trainer(&sandbox, "Gus").await;
    let lead = trainer(&sandbox, "Lena").await;
    let mut studio_owner = trainer(&sandbox, "Olga").await;
    crate::tenancy::create_studio(&sandbox, &studio_owner.2, "Studio Nord", "").await;
    // Owning a studio made the owner's token stale (TOKEN_STALE here): a
    // gateway would refresh it.
    sandbox.structure_settled().await;
    studio_owner.2 = sandbox.login(&studio_owner.1).await.access_token;
    let lead_token = join_team(&sandbox, &lead, &owner).await;
    let created = create(
        &sandbox,
        &owner.2,
        full_client("Zoé", "Tremblay", "zoe@example.ca", "514-555-0100"),
    )
    .await
    .expect("create");
    share(
        &sandbox,
        &owner.2,
        &created.id,
        &grantee.0,
        pb::AccessLevel::Admin,
    )
    .await
    .expect("share");
    get(&sandbox, &grantee.2, &created.id)
        .await
        .expect("grantee reads");
    get(&sandbox, &lead_token, &created.id)
        .await
        .expect("lead reads");

    // Revoke the share; the lead's member leaves the team.
    clients(&sandbox, "gateway")
        .revoke_client_share(bearer(
            pb::RevokeClientShareRequest {
                client_id: created.id.clone(),
                trainer_id: grantee.0.clone(),
            },
            &owner.2,
        ))
        .await
        .expect("revoke");
    crate::tenancy::tenancy(&sandbox, "gateway")
        .leave_team(bearer(
            fitflow_proto::tenancy::LeaveTeamRequest {
                trainer_id: owner.0.clone(),
            },
            &owner.2,
        ))
        .await
        .expect("leave the team");
    sandbox.structure_settled().await;
    let former_lead = sandbox.login(&lead.1).await.access_token;

    for (who, token) in [
        ("another trainer", stranger.2.as_str()),
        ("a revoked grantee", grantee.2.as_str()),
        ("a former supervisor", former_lead.as_str()),
        ("a studio owner", studio_owner.2.as_str()),
    ] {
        let outcomes = attack_every_rpc(&sandbox, token, &created).await;
        for (rpc, outcome) in outcomes {
            assert_eq!(outcome, Code::NotFound, "{who}: {rpc}");
        }
        for request in [
            pb::ListClientsRequest::default(),
            pb::ListClientsRequest {
                email: "zoe@example.ca".into(),
                ..Default::default()
            },
            pb::ListClientsRequest {
                name_prefix: "zoe".into(),
                ..Default::default()
            },
            pb::ListClientsRequest {
                owner_trainer_id: owner.0.clone(),
                ..Default::default()
            },
        ] {
            assert!(
                list(&sandbox, token, request).await.is_empty(),
                "{who} lists nothing"
            );
        }
    }
    // The client is intact for its owner after all of that.
    let read = get(&sandbox, &owner.2, &created.id)
        .await
        .expect("owner reads");
    assert_eq!(read.goals, "Run a 10 km race.\nStay injury-free.");
}

/// Every public RPC against `client` with `token`; the code each answered.
async fn attack_every_rpc(
    sandbox: &Sandbox,
    token: &str,
    client: &pb::Client,
) -> Vec<(&'static str, Code)> {
    let mut api = clients(sandbox, "gateway");
    let id = client.id.clone();
    let mut outcomes = vec![
        ("GetClient", code(&get(sandbox, token, &id).await)),
        (
            "UpdateClient",
            code(&update_goals(sandbox, token, &id, "taken over", "").await),
        ),
        (
            "ShareClient",
            code(
                &share(
                    sandbox,
                    token,
                    &id,
                    &uuid::Uuid::new_v4().to_string(),
                    pb::AccessLevel::Admin,
                )
                .await,
            ),
        ),
    ];
    outcomes.push((
        "DeleteClient",
        code(
            &api.delete_client(bearer(
                pb::DeleteClientRequest {
                    client_id: id.clone(),
                    etag: String::new(),
                },
                token,
            ))
            .await,
        ),
    ));
    outcomes.push((
        "UndeleteClient",
        code(
            &api.undelete_client(bearer(
                pb::UndeleteClientRequest {
                    client_id: id.clone(),
                },
                token,
            ))
            .await,
        ),
    ));
    outcomes.push((
        "ListClientShares",
        code(
            &api.list_client_shares(bearer(
                pb::ListClientSharesRequest {
                    client_id: id.clone(),
                },
                token,
            ))
            .await,
        ),
    ));
    outcomes.push((
        "RevokeClientShare",
        code(
            &api.revoke_client_share(bearer(
                pb::RevokeClientShareRequest {
                    client_id: id.clone(),
                    trainer_id: client.owner_trainer_id.clone(),
                },
                token,
            ))
            .await,
        ),
    ));
    outcomes.push((
        "TransferClient",
        code(
            &api.transfer_client(bearer(
                pb::TransferClientRequest {
                    client_id: id.clone(),
                    new_owner_trainer_id: uuid::Uuid::new_v4().to_string(),
                    etag: String::new(),
                },
                token,
            ))
            .await,
        ),
    ));
    let export = api
        .export_client(bearer(
            pb::ExportClientRequest {
                client_id: id.clone(),
                purpose: pb::AccessPurpose::Operations as i32,
            },
            token,
        ))
        .await;
    outcomes.push(("ExportClient", code(&export)));
    outcomes
}

#[tokio::test]
async fn health_information_needs_consent_and_withdrawing_consent_erases_it() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let without_consent = pb::Client {
        health_consent: None,
        ..full_client("Zoé", "Roy", "", "")
    };
    let refused = create(&sandbox, &owner.2, without_consent)
        .await
        .expect_err("no consent");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "CONSENT_REQUIRED");

    let created = create(&sandbox, &owner.2, full_client("Zoé", "Roy", "", ""))
        .await
        .expect("create with consent");
    let withdrawn = clients(&sandbox, "gateway")
        .update_client(bearer(
            pb::UpdateClientRequest {
                client: Some(pb::Client {
                    id: created.id.clone(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["health_consent".into()],
                }),
                etag: created.etag.clone(),
            },
            &owner.2,
        ))
        .await
        .expect("withdraw consent")
        .into_inner()
        .client
        .expect("client");
    assert!(withdrawn.health_consent.is_none());
    assert!(
        withdrawn.medical_info.is_none(),
        "health information goes with the consent"
    );
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT medical_info FROM clients.clients WHERE id = $1::uuid")
            .bind(&created.id)
            .fetch_one(&sandbox.db.admin_pool().await)
            .await
            .expect("row");
    assert!(stored.is_none(), "nothing left in the database either");
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_client_or_column_does_not_open() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let first = create(&sandbox, &owner.2, full_client("Zoé", "Roy", "", ""))
        .await
        .expect("create");
    let second = create(&sandbox, &owner.2, full_client("Léa", "Côté", "", ""))
        .await
        .expect("create");
    let admin = sandbox.db.admin_pool().await;
    sqlx::query(
        "UPDATE clients.clients SET first_name = (SELECT first_name FROM clients.clients WHERE id = $1::uuid) \
         WHERE id = $2::uuid",
    )
    .bind(&first.id)
    .bind(&second.id)
    .execute(&admin)
    .await
    .expect("copy a ciphertext to another row");
    let moved_row = get(&sandbox, &owner.2, &second.id)
        .await
        .expect_err("moved row");
    assert_eq!(moved_row.code(), Code::DataLoss);
    assert_eq!(reason(&moved_row), "SEALED_FIELD_UNREADABLE");

    sqlx::query("UPDATE clients.clients SET last_name = first_name WHERE id = $1::uuid")
        .bind(&first.id)
        .execute(&admin)
        .await
        .expect("copy a ciphertext to another column");
    let moved_column = get(&sandbox, &owner.2, &first.id)
        .await
        .expect_err("moved column");
    assert_eq!(moved_column.code(), Code::DataLoss);
    assert_eq!(reason(&moved_column), "SEALED_FIELD_UNREADABLE");
}

fn pg_dump(sandbox: &Sandbox) -> String {
    let output = std::process::Command::new("pg_dump")
        .args(["--schema=clients", "--no-owner", "--dbname"])
        .arg(sandbox.db.admin_url().expose_secret())
        .output()
        .expect("run pg_dump");
    assert!(
        output.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("a text dump")
}

#[tokio::test]
async fn a_dump_of_the_clients_schema_holds_none_of_twenty_canary_values() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let mut canaries = Vec::new();
    for index in 0..5 {
        let first = format!("Canaryfirst{index}");
        let last = format!("Canarylast{index}");
        let email = format!("canary.mail{index}@example.ca");
        let allergy = format!("canaryallergy{index}");
        let client = pb::Client {
            medical_info: Some(pb::MedicalInfo {
                allergies: vec![allergy.clone()],
                ..Default::default()
            }),
            ..full_client(&first, &last, &email, &format!("514-555-01{index:02}"))
        };
        create(&sandbox, &owner.2, client).await.expect("create");
        canaries.extend([first, last, email, allergy]);
    }
    assert_eq!(canaries.len(), 20);
    let dump = pg_dump(&sandbox).to_lowercase();
    assert!(
        dump.contains("create table clients.clients"),
        "the dump holds the schema"
    );
    let hits: Vec<&String> = canaries
        .iter()
        .filter(|canary| dump.contains(&canary.to_lowercase()))
        .collect();
    assert!(hits.is_empty(), "plaintext in the dump: {hits:?}");
    assert!(!dump.contains("514-555-01"), "no phone in the clear");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub(crate) async fn bao_client() -> vaultrs::client::VaultClient {
    let bao = fitflow_testkit::openbao().await;
    vaultrs::client::VaultClient::new(
        vaultrs::client::VaultClientSettingsBuilder::default()
            .address(&bao.addr)
            .token(bao.root_token.expose_secret())
            .build()
            .expect("settings"),
    )
    .expect("client")
}

/// Every key the system still holds: each live client's own key, and every
/// service's unwrapped data keys.
pub(crate) async fn every_key_still_held(sandbox: &Sandbox) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let bao = bao_client().await;
    let mut keys = Vec::new();
    let subjects = vaultrs::kv1::list(&bao, "fitflow-subject-keys", "clients")
        .await
        .map(|list| list.data.keys)
        .unwrap_or_default();
    for subject in subjects {
        let entry: std::collections::HashMap<String, String> =
            vaultrs::kv1::get(&bao, "fitflow-subject-keys", &format!("clients/{subject}"))
                .await
                .expect("read a subject key");
        keys.push(
            base64::engine::general_purpose::STANDARD
                .decode(&entry["key"])
                .expect("base64"),
        );
    }
    let admin = sandbox.db.admin_pool().await;
    for schema in [
        "identity",
        "tenancy",
        "clients",
        "scheduling",
        "documentation",
        "audit",
    ] {
        let wrapped: Vec<String> =
            sqlx::query_scalar(&format!("SELECT wrapped_key FROM {schema}.data_keys"))
                .fetch_all(&admin)
                .await
                .expect("data keys");
        for wrapped in wrapped {
            let plain = vaultrs::transit::data::decrypt(
                &bao,
                "transit",
                &format!("fitflow-{schema}"),
                &wrapped,
                None,
            )
            .await
            .expect("unwrap a data key");
            keys.push(
                base64::engine::general_purpose::STANDARD
                    .decode(plain.plaintext)
                    .expect("base64"),
            );
        }
    }
    keys
}

#[tokio::test]
async fn a_purged_client_cannot_be_opened_from_a_backup_with_any_key_the_system_still_holds() {
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
    let sandbox = Sandbox::with_registry(registry).await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let kept = create(&sandbox, &owner.2, full_client("Léa", "Côté", "", ""))
        .await
        .expect("create");
    let doomed = create(
        &sandbox,
        &owner.2,
        full_client("Zoé", "Roy", "zoe@example.ca", ""),
    )
    .await
    .expect("create");
    let bao = bao_client().await;
    let doomed_key: std::collections::HashMap<String, String> = vaultrs::kv1::get(
        &bao,
        "fitflow-subject-keys",
        &format!("clients/{}", doomed.id),
    )
    .await
    .expect("the client's key is in OpenBao");

    let (_, operator) = sandbox.operator().await;
    let early = clients(&sandbox, "operator")
        .purge_client(bearer(
            pb::PurgeClientRequest {
                client_id: doomed.id.clone(),
            },
            &operator.access_token,
        ))
        .await
        .expect_err("not deleted yet");
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert_eq!(reason(&early), "RESOURCE_NOT_DELETED");
    clients(&sandbox, "gateway")
        .delete_client(bearer(
            pb::DeleteClientRequest {
                client_id: doomed.id.clone(),
                etag: String::new(),
            },
            &owner.2,
        ))
        .await
        .expect("soft delete");

    // The backup, taken before the purge, with the client's sealed fields.
    let backup = pg_dump(&sandbox);
    let admin = sandbox.db.admin_pool().await;
    let (first_name, medical): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT first_name, medical_info FROM clients.clients WHERE id = $1::uuid")
            .bind(&doomed.id)
            .fetch_one(&admin)
            .await
            .expect("sealed fields");
    assert!(
        backup.contains(&hex(&first_name)),
        "the backup holds the ciphertext"
    );
    use base64::Engine as _;
    let key_bytes = base64::engine::general_purpose::STANDARD
        .decode(&doomed_key["key"])
        .expect("base64");
    assert!(
        !backup.contains(&doomed_key["key"]) && !backup.contains(&hex(&key_bytes)),
        "the client's key (in any form) was never in the database"
    );

    clients(&sandbox, "operator")
        .purge_client(bearer(
            pb::PurgeClientRequest {
                client_id: doomed.id.clone(),
            },
            &operator.access_token,
        ))
        .await
        .expect("purge");
    let gone = vaultrs::kv1::get::<std::collections::HashMap<String, String>>(
        &bao,
        "fitflow-subject-keys",
        &format!("clients/{}", doomed.id),
    )
    .await;
    assert!(gone.is_err(), "the key is destroyed in OpenBao");
    let after = get(&sandbox, &owner.2, &doomed.id)
        .await
        .expect_err("purged");
    assert_eq!(after.code(), Code::NotFound);

    let doomed_id: uuid::Uuid = doomed.id.parse().expect("uuid");
    let keys = every_key_still_held(&sandbox).await;
    assert!(
        keys.len() >= 2,
        "the other client's key and data keys are still held"
    );
    for key in &keys {
        for (column, sealed) in [("first_name", &first_name), ("medical_info", &medical)] {
            let at = fitflow_crypto::FieldAddress {
                table: "clients",
                column,
                row_id: doomed_id,
            };
            assert!(
                fitflow_crypto::open_with_raw_key(key, doomed_id, at, sealed).is_err(),
                "a key still held opens the purged client's {column}"
            );
        }
    }
    // The other client is untouched.
    get(&sandbox, &owner.2, &kept.id)
        .await
        .expect("the other client still reads");
}

#[tokio::test]
async fn a_transfer_moves_the_client_and_ends_the_old_owners_access() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let lead = trainer(&sandbox, "Lena").await;
    let leaving = trainer(&sandbox, "Ana").await;
    let staying = trainer(&sandbox, "Bea").await;
    join_team(&sandbox, &lead, &leaving).await;
    let lead_token = join_team(&sandbox, &lead, &staying).await;
    let created = create(
        &sandbox,
        &leaving.2,
        full_client("Zoé", "Roy", "zoe@example.ca", ""),
    )
    .await
    .expect("create");

    let by_owner = clients(&sandbox, "gateway")
        .transfer_client(bearer(
            pb::TransferClientRequest {
                client_id: created.id.clone(),
                new_owner_trainer_id: staying.0.clone(),
                etag: String::new(),
            },
            &leaving.2,
        ))
        .await
        .expect_err("the owner does not act for a peer");
    assert_eq!(reason(&by_owner), "TRANSFER_TARGET_NOT_ALLOWED");

    let moved = clients(&sandbox, "gateway")
        .transfer_client(bearer(
            pb::TransferClientRequest {
                client_id: created.id.clone(),
                new_owner_trainer_id: staying.0.clone(),
                etag: created.etag.clone(),
            },
            &lead_token,
        ))
        .await
        .expect("the lead moves it")
        .into_inner()
        .client
        .expect("client");
    assert_eq!(moved.owner_trainer_id, staying.0);
    assert_eq!(
        code(&get(&sandbox, &leaving.2, &created.id).await),
        Code::NotFound
    );
    let read = get(&sandbox, &staying.2, &created.id)
        .await
        .expect("the new owner reads");
    assert_eq!(
        read.medical_info.expect("sealed data intact").allergies,
        vec!["peanuts"]
    );
    let found = list(
        &sandbox,
        &staying.2,
        pb::ListClientsRequest {
            email: "zoe@example.ca".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(found.len(), 1, "lookups follow the new owner");
}

#[tokio::test]
async fn other_services_ask_for_access_and_contacts_and_nobody_else_can() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let grantee = trainer(&sandbox, "Gus").await;
    let created = create(
        &sandbox,
        &owner.2,
        full_client("Zoé", "Roy", "zoe@example.ca", ""),
    )
    .await
    .expect("create");
    share(
        &sandbox,
        &owner.2,
        &created.id,
        &grantee.0,
        pb::AccessLevel::Read,
    )
    .await
    .expect("share");
    let check = |peer: &'static str, token: String, level: pb::AccessLevel| {
        let sandbox = &sandbox;
        let client_id = created.id.clone();
        async move {
            clients(sandbox, peer)
                .check_client_access(bearer(
                    pb::CheckClientAccessRequest {
                        client_id,
                        level: level as i32,
                    },
                    &token,
                ))
                .await
        }
    };
    let owner_answer = check("scheduling", owner.2.clone(), pb::AccessLevel::Admin)
        .await
        .expect("scheduling asks")
        .into_inner();
    assert!(owner_answer.allowed);
    assert_eq!(owner_answer.owner_trainer_id, owner.0);
    let read = check("documentation", grantee.2.clone(), pb::AccessLevel::Read)
        .await
        .expect("documentation asks")
        .into_inner();
    assert!(read.allowed);
    let write = check("billing", grantee.2.clone(), pb::AccessLevel::Write)
        .await
        .expect("billing asks")
        .into_inner();
    assert!(!write.allowed, "a read grantee may not write");
    assert!(
        write.owner_trainer_id.is_empty(),
        "no owner named when refused"
    );
    let wrong_peer = check("gateway", owner.2.clone(), pb::AccessLevel::Read)
        .await
        .expect_err("the gateway is not an internal peer");
    assert_eq!(wrong_peer.code(), Code::PermissionDenied);
    assert_eq!(reason(&wrong_peer), "PEER_NOT_ALLOWED");

    let contact = clients(&sandbox, "billing")
        .get_contact(tonic::Request::new(pb::GetContactRequest {
            client_id: created.id.clone(),
            purpose: pb::AccessPurpose::Payment as i32,
        }))
        .await
        .expect("billing reads the contact")
        .into_inner();
    assert_eq!(contact.email, "zoe@example.ca");
    assert_eq!(
        contact.address.expect("address").province,
        Province::Qc as i32
    );
    for peer in ["gateway", "documentation", "tenancy"] {
        let refused = clients(&sandbox, peer)
            .get_contact(bearer(
                pb::GetContactRequest {
                    client_id: created.id.clone(),
                    purpose: pb::AccessPurpose::Payment as i32,
                },
                &owner.2,
            ))
            .await
            .expect_err("not a contact reader");
        assert_eq!(reason(&refused), "PEER_NOT_ALLOWED", "{peer}");
    }
}

#[tokio::test]
async fn an_export_streams_the_whole_record_as_json_and_is_itself_an_access_event() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let grantee = trainer(&sandbox, "Gus").await;
    let created = create(
        &sandbox,
        &owner.2,
        full_client("Zoé", "Roy", "zoe@example.ca", ""),
    )
    .await
    .expect("create");
    share(
        &sandbox,
        &owner.2,
        &created.id,
        &grantee.0,
        pb::AccessLevel::Write,
    )
    .await
    .expect("share");
    let (session_id, class_id) = book_for(&sandbox, &owner.2, &created.id).await;
    let mut stream = clients(&sandbox, "gateway")
        .export_client(bearer(
            pb::ExportClientRequest {
                client_id: created.id.clone(),
                purpose: pb::AccessPurpose::Operations as i32,
            },
            &owner.2,
        ))
        .await
        .expect("export")
        .into_inner();
    let mut document = Vec::new();
    let mut event_id = String::new();
    while let Some(chunk) = stream.message().await.expect("chunk") {
        if event_id.is_empty() {
            event_id = chunk.export_event_id.clone();
        }
        document.extend_from_slice(&chunk.data);
    }
    assert!(uuid::Uuid::parse_str(&event_id).is_ok());
    let json: serde_json::Value = serde_json::from_slice(&document).expect("JSON");
    assert_eq!(json["format"], "fitflow.client-export.v1");
    assert_eq!(json["client"]["medical_info"]["allergies"][0], "peanuts");
    assert_eq!(json["shares"][0]["trainer_id"], grantee.0.as_str());
    assert_eq!(json["sharing_history"][0]["event"], "granted");
    assert_eq!(json["appointments"][0]["id"], session_id.as_str());
    assert_eq!(
        json["appointments"][0]["status"],
        "APPOINTMENT_STATUS_SCHEDULED"
    );
    assert_eq!(
        json["class_participations"][0]["appointment_id"],
        class_id.as_str()
    );
    assert_eq!(json["sections"][1], "scheduling");

    let by_writer = clients(&sandbox, "gateway")
        .export_client(bearer(
            pb::ExportClientRequest {
                client_id: created.id.clone(),
                purpose: pb::AccessPurpose::Operations as i32,
            },
            &grantee.2,
        ))
        .await
        .expect_err("a WRITE grantee does not export");
    assert_eq!(reason(&by_writer), "ACCESS_LEVEL_INSUFFICIENT");
}

#[tokio::test]
async fn of_a_hundred_concurrent_updates_with_one_etag_exactly_one_wins() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let created = create(&sandbox, &owner.2, full_client("Zoé", "Roy", "", ""))
        .await
        .expect("create");
    let sandbox = Arc::new(sandbox);
    let mut tasks = Vec::new();
    for index in 0..100 {
        let sandbox = Arc::clone(&sandbox);
        let token = owner.2.clone();
        let id = created.id.clone();
        let etag = created.etag.clone();
        tasks.push(tokio::spawn(async move {
            update_goals(&sandbox, &token, &id, &format!("goal {index}"), &etag).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => won += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::Aborted, "{status:?}");
                assert_eq!(reason(&status), "ETAG_MISMATCH");
            }
        }
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn hostile_input_is_refused_field_by_field_and_changes_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let hostile = pb::Client {
        first_name: "Zo\u{0}é".into(),
        last_name: "Roy\u{1b}[31m".into(),
        goals: "fine\ttext\u{0}".into(),
        date_of_birth: Some(Date {
            year: 0,
            month: 13,
            day: 40,
        }),
        health_consent: Some(pb::HealthConsent {
            text_version: "v1".into(),
            consent_time: Some(Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            }),
        }),
        owner_trainer_id: "not-a-uuid".into(),
        ..full_client("x", "y", "", "")
    };
    let refused = create(&sandbox, &owner.2, hostile)
        .await
        .expect_err("hostile");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields = violated_fields(&refused);
    for field in [
        "client.first_name",
        "client.last_name",
        "client.goals",
        "client.date_of_birth",
        "client.health_consent.consent_time",
        "client.owner_trainer_id",
    ] {
        assert!(
            fields.iter().any(|found| found == field),
            "{field} in {fields:?}"
        );
    }
    let listed = list(&sandbox, &owner.2, pb::ListClientsRequest::default()).await;
    assert!(listed.is_empty(), "nothing was written");

    let mut api = clients(&sandbox, "gateway");
    for request in [
        pb::ListClientsRequest {
            page_token: "forged-token".into(),
            ..Default::default()
        },
        pb::ListClientsRequest {
            name_prefix: "ab".into(),
            ..Default::default()
        },
        pb::ListClientsRequest {
            email: "a@b.c".into(),
            phone: "5145550100".into(),
            ..Default::default()
        },
        pb::ListClientsRequest {
            name_prefix: "abc\u{0}".into(),
            ..Default::default()
        },
    ] {
        let status = api
            .list_clients(bearer(request, &owner.2))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
    let no_purpose = api
        .get_client(bearer(
            pb::GetClientRequest {
                client_id: uuid::Uuid::new_v4().to_string(),
                purpose: 0,
                show_deleted: false,
            },
            &owner.2,
        ))
        .await
        .expect_err("a read needs a purpose");
    assert_eq!(violated_fields(&no_purpose), vec!["purpose"]);
}

#[tokio::test]
async fn a_deleted_client_is_hidden_until_restored() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let created = create(&sandbox, &owner.2, full_client("Zoé", "Roy", "", ""))
        .await
        .expect("create");
    let mut api = clients(&sandbox, "gateway");
    delete(&sandbox, &owner.2, &created).await;
    assert_eq!(
        code(&get(&sandbox, &owner.2, &created.id).await),
        Code::NotFound
    );
    assert!(
        list(&sandbox, &owner.2, pb::ListClientsRequest::default())
            .await
            .is_empty()
    );
    let shown = list(
        &sandbox,
        &owner.2,
        pb::ListClientsRequest {
            show_deleted: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(shown.len(), 1);
    assert!(shown[0].delete_time.is_some());
    let again = api
        .delete_client(bearer(
            pb::DeleteClientRequest {
                client_id: created.id.clone(),
                etag: String::new(),
            },
            &owner.2,
        ))
        .await
        .expect_err("already deleted");
    assert_eq!(reason(&again), "RESOURCE_ALREADY_DELETED");
    api.undelete_client(bearer(
        pb::UndeleteClientRequest {
            client_id: created.id.clone(),
        },
        &owner.2,
    ))
    .await
    .expect("undelete");
    get(&sandbox, &owner.2, &created.id)
        .await
        .expect("readable again");
}

#[tokio::test]
async fn a_read_that_finds_no_client_records_no_access_event_and_one_that_does_records_one() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let owner = trainer(&sandbox, "Ana").await;
    let stranger = trainer(&sandbox, "Sam").await;
    let created = create(&sandbox, &owner.2, full_client("Zoé", "Roy", "", ""))
        .await
        .expect("create");
    // The stranger is refused as if the client did not exist; the owner's
    // deleted client is not found without `show_deleted`.
    for _ in 0..3 {
        assert_eq!(
            code(&get(&sandbox, &stranger.2, &created.id).await),
            Code::NotFound
        );
    }
    let mut api = clients(&sandbox, "gateway");
    delete(&sandbox, &owner.2, &created).await;
    assert_eq!(
        code(&get(&sandbox, &owner.2, &created.id).await),
        Code::NotFound
    );
    let shown = api
        .get_client(bearer(
            pb::GetClientRequest {
                client_id: created.id.clone(),
                purpose: pb::AccessPurpose::Operations as i32,
                show_deleted: true,
            },
            &owner.2,
        ))
        .await
        .expect("shown when asked")
        .into_inner()
        .client
        .expect("a client");
    assert_eq!(shown.first_name, "Zoé");
    // The relay delivers oldest first: once the owner's read is stored, an
    // event of any refused read before it would be stored too.
    let reads = reads_of(&sandbox, &owner.2, &owner.0, &created.id, 1).await;
    assert_eq!(
        reads,
        vec![(
            fitflow_proto::audit::Action::Read as i32,
            fitflow_proto::audit::Purpose::Operations as i32,
            owner.0.clone()
        )]
    );
}

#[tokio::test]
async fn the_clients_bench_seeds_and_runs_both_scenarios_beside_pgbench() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    for (scenario, seed) in [("get-client", "30"), ("client-search", "3000")] {
        let output = tokio::process::Command::new(fitflow_e2e::fitflow_binary())
            .args([
                "bench",
                "--scenario",
                scenario,
                "--seed",
                seed,
                "--seconds",
                "1",
                "--concurrency",
                "2",
                "--endpoint",
                &format!("https://127.0.0.1:{}", sandbox.ports[IDENTITY]),
                "--clients-endpoint",
                &format!("https://127.0.0.1:{}", sandbox.ports[CLIENTS]),
                // Few pgbench connections: the suite's databases share one server.
                "--steps",
                "1,2,3",
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FITFLOW_TLS_DIR", &sandbox.certs.dir)
            .env("FITFLOW_DEV_INSECURE", "1")
            .env(
                "FITFLOW_ADMIN_DATABASE_URL",
                sandbox.db.admin_url().expose_secret(),
            )
            .env(
                "FITFLOW_CLIENTS_DATABASE_URL",
                sandbox.db.runtime_url(CLIENTS).expose_secret(),
            )
            .env("FITFLOW_LOG", "error")
            .output()
            .await
            .expect("run fitflow bench");
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{scenario}: {printed}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Figures are printed, never asserted: only that requests succeeded
        // and, for get-client, that pgbench replayed the SQL beside them.
        assert!(printed.contains(" ok, 0 failed"), "{scenario}: {printed}");
        if scenario == "get-client" {
            // Two references a step: five statements, then the one sent.
            assert_eq!(printed.matches("x\n").count(), 3, "three steps: {printed}");
            assert_eq!(
                printed.matches("x  ").count(),
                3,
                "two ratios each: {printed}"
            );
        }
    }
    let admin = sandbox.db.admin_pool().await;
    let clients: i64 = sqlx::query_scalar("SELECT count(*) FROM clients.clients")
        .fetch_one(&admin)
        .await
        .expect("count");
    assert!(clients >= 3000, "{clients} clients");
    // pgbench's rows are real access events: the relay delivers them all,
    // nothing stalls behind them.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM clients.audit_outbox")
            .fetch_one(&admin)
            .await
            .expect("count the outbox");
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} events still in the outbox"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Deletes `client` (soft) as the holder of `token`.
async fn delete(sandbox: &Sandbox, token: &str, client: &pb::Client) {
    clients(sandbox, "gateway")
        .delete_client(bearer(
            pb::DeleteClientRequest {
                client_id: client.id.clone(),
                etag: client.etag.clone(),
            },
            token,
        ))
        .await
        .expect("delete");
}

/// An individual session for `client_id` and a place in a group class, booked
/// in scheduling by the trainer whose `token` this is; their ids.
async fn book_for(sandbox: &Sandbox, token: &str, client_id: &str) -> (String, String) {
    use fitflow_proto::scheduling as sched;
    let mut api = sched::scheduling_service_client::SchedulingServiceClient::new(
        sandbox.channel("scheduling", "gateway"),
    );
    let class_type = |category: sched::ClassCategory, places: i32| {
        let mut api = api.clone();
        let token = token.to_owned();
        async move {
            api.create_class_type(bearer(
                sched::CreateClassTypeRequest {
                    class_type: Some(sched::ClassType {
                        name: "Strength".into(),
                        category: category as i32,
                        duration_minutes: 60,
                        max_participants: places,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &token,
            ))
            .await
            .expect("class type")
            .into_inner()
            .class_type
            .expect("class type")
            .id
        }
    };
    let individual = class_type(sched::ClassCategory::Individual, 1).await;
    let group = class_type(sched::ClassCategory::Group, 8).await;
    let start = chrono::Utc::now().timestamp() / 60 * 60 + 30 * 86_400;
    let book = |class_type_id: String, start: i64, client: &str| {
        let mut api = api.clone();
        let token = token.to_owned();
        let client = client.to_owned();
        async move {
            api.book_appointment(bearer(
                sched::BookAppointmentRequest {
                    appointment: Some(sched::Appointment {
                        class_type_id,
                        start_time: Some(prost_types::Timestamp {
                            seconds: start,
                            nanos: 0,
                        }),
                        client_id: client,
                        ..Default::default()
                    }),
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
                &token,
            ))
            .await
            .expect("book")
            .into_inner()
            .appointment
            .expect("appointment")
            .id
        }
    };
    let session = book(individual, start, client_id).await;
    let class = book(group, start + 7_200, "").await;
    api.join_class(bearer(
        sched::JoinClassRequest {
            appointment_id: class.clone(),
            client_id: client_id.to_owned(),
            request_id: String::new(),
        },
        token,
    ))
    .await
    .expect("join the class");
    (session, class)
}
