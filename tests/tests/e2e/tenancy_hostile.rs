//! Tenancy attacked as a hostile client would: control characters in every
//! string field, impossible dates, unknown enum values, forged page tokens,
//! reused request ids, huge and injected input, races, other tenants and
//! wrong peers. Each refusal must name the request's own field, write
//! nothing, and never be INTERNAL.

use chrono::Days;
use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::google::r#type::Date;
use fitflow_proto::tenancy as pb;
use fitflow_proto::types::{Money, PostalAddress, Province};
use prost_types::FieldMask;
use sqlx::PgPool;
use tonic::Code;

use crate::identity_support::{reason, violated_fields};
use crate::tenancy::{
    TENANCY, answer, cad, create_studio, create_trainer, date, invite, invite_to_team, member,
    rates, studio_profile, tenancy, today, trainer, trainer_profile,
};

/// Control characters no field accepts: NUL, vertical tab (whitespace that a
/// trim would silently drop), escape, delete and next line.
const CONTROLS: [&str; 5] = ["\u{0}", "\u{b}", "\u{1b}", "\u{7f}", "\u{85}"];

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
    })
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `outcome` is INVALID_ARGUMENT with a field violation on `field` (or a
/// field inside it, like `studio.settings[note]`).
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

/// A digest of every row tenancy keeps (outbox and idempotency records
/// included), to show that refused calls changed nothing.
async fn digest(admin: &PgPool) -> String {
    sqlx::query_scalar(
        "SELECT coalesce(md5(string_agg(row, '|' ORDER BY row)), '') FROM ( \
           SELECT s::text AS row FROM tenancy.studios s \
           UNION ALL SELECT t::text FROM tenancy.trainers t \
           UNION ALL SELECT c::text FROM tenancy.contracts c \
           UNION ALL SELECT r::text FROM tenancy.rate_versions r \
           UNION ALL SELECT i::text FROM tenancy.team_invitations i \
           UNION ALL SELECT l::text FROM tenancy.team_links l \
           UNION ALL SELECT o.event_id::text FROM tenancy.audit_outbox o \
           UNION ALL SELECT k::text FROM tenancy.idempotency_keys k) AS every_row",
    )
    .fetch_one(admin)
    .await
    .expect("digest")
}

async fn outbox_events(admin: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tenancy.audit_outbox")
        .fetch_one(admin)
        .await
        .expect("count")
}

/// The studio field a test poisons, by its path in the request.
type StudioPoison = fn(&mut pb::Studio, &str);
/// The trainer field a test poisons, by its path in the request.
type TrainerPoison = fn(&mut pb::Trainer, &str);
/// A studio enum field a test sets out of range.
type StudioEnumPoison = fn(&mut pb::Studio, i32);

fn address_of(studio: &mut pb::Studio) -> &mut PostalAddress {
    studio.address.get_or_insert_with(Default::default)
}

fn contact_of(studio: &mut pb::Studio) -> &mut pb::Contact {
    studio.contact.get_or_insert_with(|| pb::Contact {
        phone: "+1 416 555 0100".into(),
        email: "desk@studio.ca".into(),
        website: "https://studio.ca".into(),
    })
}

fn studio_bank(studio: &mut pb::Studio) -> &mut pb::BankAccount {
    studio.bank_account.get_or_insert_with(valid_bank_account)
}

fn valid_bank_account() -> pb::BankAccount {
    pb::BankAccount {
        holder_name: "Studio Nord".into(),
        institution_number: "001".into(),
        transit_number: "12345".into(),
        account_number: "7654321".into(),
    }
}

const STUDIO_POISONS: &[(&str, StudioPoison)] = &[
    ("studio.name", |s, c| s.name = format!("Studio{c}Nord")),
    ("studio.business_number", |s, c| {
        s.business_number = format!("123456782{c}");
    }),
    ("studio.parent_studio_id", |s, c| {
        s.parent_studio_id = format!("{}{c}", uuid::Uuid::new_v4());
    }),
    ("studio.address.street", |s, c| {
        address_of(s).street = format!("1 rue{c} Saint-Denis");
    }),
    ("studio.address.city", |s, c| {
        address_of(s).city = format!("Montr{c}éal");
    }),
    ("studio.address.postal_code", |s, c| {
        address_of(s).postal_code = format!("H2X{c}1Y4");
    }),
    ("studio.address.country_code", |s, c| {
        address_of(s).country_code = format!("CA{c}");
    }),
    ("studio.contact.phone", |s, c| {
        contact_of(s).phone = format!("+1 416 555 0100{c}");
    }),
    ("studio.contact.email", |s, c| {
        contact_of(s).email = format!("desk@studio.ca{c}");
    }),
    ("studio.contact.website", |s, c| {
        contact_of(s).website = format!("https://studio.ca/{c}");
    }),
    ("studio.time_zone", |s, c| {
        s.time_zone = format!("America/Toronto{c}");
    }),
    ("studio.settings", |s, c| {
        s.settings.insert(format!("key{c}"), "value".into());
    }),
    ("studio.settings", |s, c| {
        s.settings.insert("note".into(), format!("val{c}ue"));
    }),
    ("studio.bank_account.holder_name", |s, c| {
        studio_bank(s).holder_name = format!("Studio{c}Nord");
    }),
    ("studio.bank_account.institution_number", |s, c| {
        studio_bank(s).institution_number = format!("001{c}");
    }),
    ("studio.bank_account.transit_number", |s, c| {
        studio_bank(s).transit_number = format!("12345{c}");
    }),
    ("studio.bank_account.account_number", |s, c| {
        studio_bank(s).account_number = format!("7654321{c}");
    }),
];

fn trainer_bank(trainer: &mut pb::Trainer) -> &mut pb::BankAccount {
    trainer.bank_account.get_or_insert_with(valid_bank_account)
}

fn tax_of(trainer: &mut pb::Trainer) -> &mut pb::TaxProfile {
    trainer.tax_profile.get_or_insert_with(Default::default)
}

const TRAINER_POISONS: &[(&str, TrainerPoison)] = &[
    ("trainer.business_name", |t, c| {
        t.business_name = format!("Ana{c}Fitness");
    }),
    ("trainer.license_number", |t, c| {
        t.license_number = format!("NSCA{c}1");
    }),
    ("trainer.specializations", |t, c| {
        t.specializations.push(format!("yoga{c}"));
    }),
    ("trainer.bio", |t, c| t.bio = format!("Coach{c}.")),
    ("trainer.hourly_rate", |t, c| {
        t.hourly_rate = Some(Money {
            currency_code: "CAD".into(),
            amount: format!("85{c}"),
        });
    }),
    ("trainer.hourly_rate", |t, c| {
        t.hourly_rate = Some(Money {
            currency_code: format!("CAD{c}"),
            amount: "85".into(),
        });
    }),
    ("trainer.commission_rate", |t, c| {
        t.commission_rate = format!("12.5{c}");
    }),
    ("trainer.time_zone", |t, c| {
        t.time_zone = format!("America/Toronto{c}");
    }),
    ("trainer.settings", |t, c| {
        t.settings.insert(format!("key{c}"), "value".into());
    }),
    ("trainer.settings", |t, c| {
        t.settings.insert("note".into(), format!("val{c}ue"));
    }),
    ("trainer.tax_profile.gst_hst_number", |t, c| {
        tax_of(t).gst_hst_number = format!("123456782RT0001{c}");
    }),
    ("trainer.tax_profile.qst_number", |t, c| {
        tax_of(t).qst_number = format!("1234567890TQ0001{c}");
    }),
    ("trainer.bank_account.holder_name", |t, c| {
        trainer_bank(t).holder_name = format!("Ana{c}Example");
    }),
    ("trainer.bank_account.institution_number", |t, c| {
        trainer_bank(t).institution_number = format!("{c}001");
    }),
    ("trainer.bank_account.transit_number", |t, c| {
        trainer_bank(t).transit_number = format!("12345{c}");
    }),
    ("trainer.bank_account.account_number", |t, c| {
        trainer_bank(t).account_number = format!("7654321{c}");
    }),
];

/// The top-level field of a path under `studio.` or `trainer.`, for a mask.
fn top_field(path: &str) -> &str {
    let rest = path.split_once('.').map_or(path, |(_, rest)| rest);
    rest.split(['.', '[']).next().unwrap_or(rest)
}

#[tokio::test]
async fn control_characters_in_any_studio_or_trainer_field_are_refused_and_nothing_is_written() {
    let sandbox = Sandbox::new().await;
    // Without the audit service the outbox keeps every event, so the digest
    // sees one written by mistake.
    let _stack = sandbox.start(&[IDENTITY, TENANCY]).await;
    let (trainer_id, _, trainer_token) = member(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let ana = create_trainer(&sandbox, &trainer_token).await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let admin = sandbox.db.admin_pool().await;
    let before = digest(&admin).await;
    let mut client = tenancy(&sandbox, "gateway");

    for control in CONTROLS {
        for (field, poison) in STUDIO_POISONS {
            let case = format!("create, {field} with {control:?}");
            let mut hostile = studio_profile("Studio Nord", "");
            poison(&mut hostile, control);
            let outcome = client
                .create_studio(bearer(
                    pb::CreateStudioRequest {
                        studio: Some(hostile.clone()),
                        request_id: new_id(),
                    },
                    &owner_token,
                ))
                .await;
            assert_refused_on(outcome, field, &case);

            let case = format!("update, {field} with {control:?}");
            hostile.id.clone_from(&studio.id);
            let outcome = client
                .update_studio(bearer(
                    pb::UpdateStudioRequest {
                        studio: Some(hostile),
                        update_mask: mask(&[top_field(field)]),
                        etag: studio.etag.clone(),
                    },
                    &owner_token,
                ))
                .await;
            assert_refused_on(outcome, field, &case);
        }
        let outcome = client
            .create_studio(bearer(
                pb::CreateStudioRequest {
                    studio: Some(studio_profile("Studio Nord", "")),
                    request_id: format!("{}{control}", new_id()),
                },
                &owner_token,
            ))
            .await;
        assert_refused_on(outcome, "request_id", &format!("{control:?}"));
        let outcome = client
            .update_studio(bearer(
                pb::UpdateStudioRequest {
                    studio: Some(pb::Studio {
                        id: format!("{}{control}", studio.id),
                        name: "Renamed".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["name"]),
                    etag: format!("{}{control}", studio.etag),
                },
                &owner_token,
            ))
            .await;
        assert_refused_on(outcome, "studio.id", &format!("{control:?}"));
        let outcome = client
            .update_studio(bearer(
                pb::UpdateStudioRequest {
                    studio: Some(pb::Studio {
                        id: studio.id.clone(),
                        name: "Renamed".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&[&format!("name{control}")]),
                    etag: String::new(),
                },
                &owner_token,
            ))
            .await;
        assert_refused_on(outcome, "update_mask", &format!("{control:?}"));

        for (field, poison) in TRAINER_POISONS {
            let case = format!("create, {field} with {control:?}");
            let mut hostile = trainer_profile();
            poison(&mut hostile, control);
            // The owner has no trainer profile yet: only the field stops it.
            let outcome = client
                .create_trainer(bearer(
                    pb::CreateTrainerRequest {
                        trainer: Some(hostile.clone()),
                        request_id: new_id(),
                    },
                    &owner_token,
                ))
                .await;
            assert_refused_on(outcome, field, &case);

            let case = format!("update, {field} with {control:?}");
            hostile.id.clone_from(&trainer_id);
            let outcome = client
                .update_trainer(bearer(
                    pb::UpdateTrainerRequest {
                        trainer: Some(hostile),
                        update_mask: mask(&[top_field(field)]),
                        etag: ana.etag.clone(),
                    },
                    &trainer_token,
                ))
                .await;
            assert_refused_on(outcome, field, &case);
        }
        let outcome = client
            .update_trainer(bearer(
                pb::UpdateTrainerRequest {
                    trainer: Some(pb::Trainer {
                        id: trainer_id.clone(),
                        bio: "New".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["bio"]),
                    etag: format!("{}{control}", ana.etag),
                },
                &trainer_token,
            ))
            .await;
        assert_refused_on(outcome, "etag", &format!("{control:?}"));
    }
    assert_eq!(digest(&admin).await, before, "a refused call wrote");
}

#[tokio::test]
async fn control_characters_in_ids_tokens_queries_and_emails_of_every_rpc_are_refused() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY]).await;
    let (trainer_id, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (lead_id, _, lead_token) = trainer(&sandbox, "Lena").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let contract = invite(&sandbox, &owner_token, &studio.id, &trainer_email)
        .await
        .expect("invite");
    let invitation = invite_to_team(&sandbox, &lead_token, &lead_id, &trainer_email)
        .await
        .expect("team invitation");
    let admin = sandbox.db.admin_pool().await;
    let before = digest(&admin).await;
    let mut client = tenancy(&sandbox, "gateway");
    let (t, o, l) = (&trainer_token, &owner_token, &lead_token);

    for control in CONTROLS {
        let bad = |value: &str| format!("{value}{control}");
        let case = format!("{control:?}");
        let case = case.as_str();
        macro_rules! refused {
            ($call:expr, $field:expr) => {
                assert_refused_on($call.await, $field, &format!("{} {}", $field, case))
            };
        }
        refused!(
            client.get_trainer(bearer(
                pb::GetTrainerRequest {
                    trainer_id: bad(&trainer_id)
                },
                t
            )),
            "trainer_id"
        );
        refused!(
            client.get_trainer_bank_account(bearer(
                pb::GetTrainerBankAccountRequest {
                    trainer_id: bad(&trainer_id)
                },
                t
            )),
            "trainer_id"
        );
        refused!(
            tenancy(&sandbox, "billing").get_tax_profile(pb::GetTaxProfileRequest {
                trainer_id: bad(&trainer_id)
            }),
            "trainer_id"
        );
        refused!(
            tenancy(&sandbox, IDENTITY).get_acting_for(pb::GetActingForRequest {
                user_id: bad(&trainer_id),
                limit: 0,
            }),
            "user_id"
        );
        refused!(
            client.get_studio(bearer(
                pb::GetStudioRequest {
                    studio_id: bad(&studio.id)
                },
                o
            )),
            "studio_id"
        );
        refused!(
            client.list_studios(bearer(
                pb::ListStudiosRequest {
                    query: bad("yoga"),
                    ..Default::default()
                },
                o
            )),
            "query"
        );
        refused!(
            client.list_studios(bearer(
                pb::ListStudiosRequest {
                    parent_studio_id: bad(&studio.id),
                    ..Default::default()
                },
                o
            )),
            "parent_studio_id"
        );
        refused!(
            client.list_studios(bearer(
                pb::ListStudiosRequest {
                    page_token: bad("AQAAAA"),
                    ..Default::default()
                },
                o
            )),
            "page_token"
        );
        refused!(
            client.delete_studio(bearer(
                pb::DeleteStudioRequest {
                    studio_id: bad(&studio.id),
                    etag: String::new(),
                },
                o
            )),
            "studio_id"
        );
        refused!(
            client.delete_studio(bearer(
                pb::DeleteStudioRequest {
                    studio_id: studio.id.clone(),
                    etag: bad(&studio.etag),
                },
                o
            )),
            "etag"
        );
        refused!(
            client.undelete_studio(bearer(
                pb::UndeleteStudioRequest {
                    studio_id: bad(&studio.id)
                },
                o
            )),
            "studio_id"
        );
        refused!(
            client.get_studio_bank_account(bearer(
                pb::GetStudioBankAccountRequest {
                    studio_id: bad(&studio.id)
                },
                o
            )),
            "studio_id"
        );
        let invitation_to =
            |trainer: pb::create_contract_request::Trainer| pb::CreateContractRequest {
                studio_id: studio.id.clone(),
                trainer: Some(trainer),
                role: pb::ContractRole::Employee as i32,
                start_date: date(today() + Days::new(30)),
                rates: rates("50", None),
                request_id: new_id(),
            };
        let by_id = pb::create_contract_request::Trainer::TrainerId(lead_id.clone());
        let mut request = invitation_to(by_id.clone());
        request.studio_id = bad(&studio.id);
        refused!(client.create_contract(bearer(request, o)), "studio_id");
        refused!(
            client.create_contract(bearer(
                invitation_to(pb::create_contract_request::Trainer::TrainerId(bad(
                    &lead_id
                ))),
                o
            )),
            "trainer_id"
        );
        for email in [
            format!("{trainer_email}{control}"),
            format!("{control}{trainer_email}"),
        ] {
            refused!(
                client.create_contract(bearer(
                    invitation_to(pb::create_contract_request::Trainer::TrainerEmail(
                        email.clone()
                    )),
                    o
                )),
                "trainer_email"
            );
            refused!(
                client.invite_team_member(bearer(
                    pb::InviteTeamMemberRequest {
                        leader_id: lead_id.clone(),
                        trainer: Some(pb::invite_team_member_request::Trainer::TrainerEmail(
                            email.clone()
                        )),
                        request_id: new_id(),
                    },
                    l
                )),
                "trainer_email"
            );
        }
        let mut request = invitation_to(by_id.clone());
        request.request_id = bad(&new_id());
        refused!(client.create_contract(bearer(request, o)), "request_id");
        let mut request = invitation_to(by_id.clone());
        if let Some(rates) = request.rates.as_mut() {
            rates.commission_rate = bad("15");
        }
        refused!(
            client.create_contract(bearer(request, o)),
            "rates.commission_rate"
        );
        let mut request = invitation_to(by_id.clone());
        if let Some(rates) = request.rates.as_mut() {
            rates.group_rate = Some(Money {
                currency_code: "CAD".into(),
                amount: bad("50"),
            });
            rates.trial_rate = Some(Money {
                currency_code: bad("CAD"),
                amount: "50".into(),
            });
        }
        let outcome = client.create_contract(bearer(request, o)).await;
        let fields = outcome
            .as_ref()
            .err()
            .map(violated_fields)
            .unwrap_or_default();
        assert!(
            fields.contains(&"rates.group_rate".to_owned())
                && fields.contains(&"rates.trial_rate".to_owned()),
            "{case}: {fields:?}"
        );
        refused!(
            client.get_contract(bearer(
                pb::GetContractRequest {
                    contract_id: bad(&contract.id)
                },
                t
            )),
            "contract_id"
        );
        refused!(
            client.list_contracts(bearer(
                pb::ListContractsRequest {
                    party: Some(pb::list_contracts_request::Party::TrainerId(bad(
                        &trainer_id
                    ))),
                    ..Default::default()
                },
                t
            )),
            "trainer_id"
        );
        refused!(
            client.list_contracts(bearer(
                pb::ListContractsRequest {
                    party: Some(pb::list_contracts_request::Party::StudioId(bad(&studio.id))),
                    ..Default::default()
                },
                o
            )),
            "studio_id"
        );
        refused!(
            client.list_contracts(bearer(
                pb::ListContractsRequest {
                    party: Some(pb::list_contracts_request::Party::StudioId(
                        studio.id.clone()
                    )),
                    page_token: bad("AQAAAA"),
                    ..Default::default()
                },
                o
            )),
            "page_token"
        );
        refused!(
            client.accept_contract(bearer(
                pb::AcceptContractRequest {
                    contract_id: bad(&contract.id),
                    etag: String::new(),
                },
                t
            )),
            "contract_id"
        );
        refused!(
            client.accept_contract(bearer(
                pb::AcceptContractRequest {
                    contract_id: contract.id.clone(),
                    etag: bad(&contract.etag),
                },
                t
            )),
            "etag"
        );
        refused!(
            client.decline_contract(bearer(
                pb::DeclineContractRequest {
                    contract_id: contract.id.clone(),
                    etag: bad(&contract.etag),
                },
                t
            )),
            "etag"
        );
        refused!(
            client.end_contract(bearer(
                pb::EndContractRequest {
                    contract_id: bad(&contract.id),
                    end_date: None,
                    etag: String::new(),
                },
                t
            )),
            "contract_id"
        );
        refused!(
            client.end_contract(bearer(
                pb::EndContractRequest {
                    contract_id: contract.id.clone(),
                    end_date: None,
                    etag: bad(&contract.etag),
                },
                o
            )),
            "etag"
        );
        refused!(
            client.add_rate_version(bearer(
                pb::AddRateVersionRequest {
                    contract_id: bad(&contract.id),
                    rates: rates("60", Some(today() + Days::new(5))),
                },
                o
            )),
            "contract_id"
        );
        let mut poisoned = rates("60", Some(today() + Days::new(5)));
        if let Some(rates) = poisoned.as_mut() {
            rates.commission_rate = bad("10");
        }
        refused!(
            client.add_rate_version(bearer(
                pb::AddRateVersionRequest {
                    contract_id: contract.id.clone(),
                    rates: poisoned,
                },
                o
            )),
            "rates.commission_rate"
        );
        refused!(
            client.list_rate_versions(bearer(
                pb::ListRateVersionsRequest {
                    contract_id: bad(&contract.id)
                },
                o
            )),
            "contract_id"
        );
        let rate_request = |trainer_id: String, studio_id: String| pb::GetRateRequest {
            trainer_id,
            studio_id,
            category: pb::ClassCategory::Group as i32,
            date: date(today()),
        };
        refused!(
            client.get_rate(bearer(rate_request(bad(&trainer_id), studio.id.clone()), t)),
            "trainer_id"
        );
        refused!(
            tenancy(&sandbox, "billing")
                .get_rate(rate_request(trainer_id.clone(), bad(&studio.id))),
            "studio_id"
        );
        refused!(
            client.invite_team_member(bearer(
                pb::InviteTeamMemberRequest {
                    leader_id: bad(&lead_id),
                    trainer: Some(pb::invite_team_member_request::Trainer::TrainerId(
                        trainer_id.clone()
                    )),
                    request_id: new_id(),
                },
                l
            )),
            "leader_id"
        );
        refused!(
            client.invite_team_member(bearer(
                pb::InviteTeamMemberRequest {
                    leader_id: lead_id.clone(),
                    trainer: Some(pb::invite_team_member_request::Trainer::TrainerId(bad(
                        &trainer_id
                    ))),
                    request_id: new_id(),
                },
                l
            )),
            "trainer_id"
        );
        refused!(
            client.invite_team_member(bearer(
                pb::InviteTeamMemberRequest {
                    leader_id: lead_id.clone(),
                    trainer: Some(pb::invite_team_member_request::Trainer::TrainerId(
                        trainer_id.clone()
                    )),
                    request_id: bad(&new_id()),
                },
                l
            )),
            "request_id"
        );
        refused!(
            client.list_team_invitations(bearer(
                pb::ListTeamInvitationsRequest {
                    trainer_id: bad(&trainer_id)
                },
                t
            )),
            "trainer_id"
        );
        refused!(
            client.answer_team_invitation(bearer(
                pb::AnswerTeamInvitationRequest {
                    invitation_id: bad(&invitation.id),
                    accept: true,
                },
                t
            )),
            "invitation_id"
        );
        refused!(
            client.leave_team(bearer(
                pb::LeaveTeamRequest {
                    trainer_id: bad(&trainer_id)
                },
                t
            )),
            "trainer_id"
        );
        refused!(
            client.list_team_members(bearer(
                pb::ListTeamMembersRequest {
                    leader_id: bad(&lead_id)
                },
                l
            )),
            "leader_id"
        );
    }
    assert_eq!(digest(&admin).await, before, "a refused call wrote");
}

/// Dates `google.type.Date` can carry but no calendar (or PostgreSQL) can.
const IMPOSSIBLE_DATES: [(i32, i32, i32); 9] = [
    (0, 1, 1),
    (-5000, 1, 1),
    (10000, 1, 1),
    (2030, 13, 1),
    (2030, 1, 0),
    (2030, 2, 30),
    (2030, -1, 1),
    (i32::MAX, i32::MAX, i32::MAX),
    (i32::MIN, 1, 1),
];

#[tokio::test]
async fn impossible_dates_in_every_date_field_are_invalid_arguments() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY]).await;
    let (trainer_id, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let contract = invite(&sandbox, &owner_token, &studio.id, &trainer_email)
        .await
        .expect("invite");
    tenancy(&sandbox, "gateway")
        .accept_contract(bearer(
            pb::AcceptContractRequest {
                contract_id: contract.id.clone(),
                etag: String::new(),
            },
            &trainer_token,
        ))
        .await
        .expect("accept");
    let admin = sandbox.db.admin_pool().await;
    let before = digest(&admin).await;
    let mut client = tenancy(&sandbox, "gateway");

    for (year, month, day) in IMPOSSIBLE_DATES {
        let impossible = Some(Date { year, month, day });
        let case = format!("{year}-{month}-{day}");
        let outcome = client
            .create_contract(bearer(
                pb::CreateContractRequest {
                    studio_id: studio.id.clone(),
                    trainer: Some(pb::create_contract_request::Trainer::TrainerId(
                        trainer_id.clone(),
                    )),
                    role: pb::ContractRole::Contractor as i32,
                    start_date: impossible,
                    rates: rates("50", None),
                    request_id: String::new(),
                },
                &owner_token,
            ))
            .await;
        assert_refused_on(outcome, "start_date", &case);
        let outcome = client
            .end_contract(bearer(
                pb::EndContractRequest {
                    contract_id: contract.id.clone(),
                    end_date: impossible,
                    etag: String::new(),
                },
                &owner_token,
            ))
            .await;
        assert_refused_on(outcome, "end_date", &case);
        let mut version = rates("70", None);
        if let Some(version) = version.as_mut() {
            version.effective_date = impossible;
        }
        let outcome = client
            .add_rate_version(bearer(
                pb::AddRateVersionRequest {
                    contract_id: contract.id.clone(),
                    rates: version,
                },
                &owner_token,
            ))
            .await;
        assert_refused_on(outcome, "rates.effective_date", &case);
        let rate_request = pb::GetRateRequest {
            trainer_id: trainer_id.clone(),
            studio_id: studio.id.clone(),
            category: pb::ClassCategory::Group as i32,
            date: impossible,
        };
        let outcome = client
            .get_rate(bearer(rate_request.clone(), &trainer_token))
            .await;
        assert_refused_on(outcome, "date", &case);
        let outcome = tenancy(&sandbox, "billing").get_rate(rate_request).await;
        assert_refused_on(outcome, "date", &format!("billing {case}"));
    }
    assert_eq!(digest(&admin).await, before, "a refused call wrote");
}

#[tokio::test]
async fn unknown_enum_values_are_invalid_arguments_and_never_a_panic() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY]).await;
    let (trainer_id, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    invite(&sandbox, &owner_token, &studio.id, &trainer_email)
        .await
        .expect("invite");
    let admin = sandbox.db.admin_pool().await;
    let before = digest(&admin).await;
    let mut client = tenancy(&sandbox, "gateway");

    for value in [99, 42, 77, -1, i32::MAX, i32::MIN] {
        let case = format!("value {value}");
        let mut hostile = trainer_profile();
        hostile.province = value;
        hostile.id.clone_from(&trainer_id);
        let outcome = client
            .update_trainer(bearer(
                pb::UpdateTrainerRequest {
                    trainer: Some(hostile.clone()),
                    update_mask: mask(&["province"]),
                    etag: String::new(),
                },
                &trainer_token,
            ))
            .await;
        assert_refused_on(outcome, "trainer.province", &case);
        hostile.province = Province::On as i32;
        if let Some(tax) = hostile.tax_profile.as_mut() {
            tax.supplier_status = value;
        }
        let outcome = client
            .update_trainer(bearer(
                pb::UpdateTrainerRequest {
                    trainer: Some(hostile),
                    update_mask: mask(&["tax_profile"]),
                    etag: String::new(),
                },
                &trainer_token,
            ))
            .await;
        assert_refused_on(outcome, "trainer.tax_profile.supplier_status", &case);

        let poisons: [(&str, StudioEnumPoison); 4] = [
            ("studio.address.province", |s, v| {
                address_of(s).province = v;
            }),
            ("studio.status", |s, v| s.status = v),
            ("studio.payment_terms.frequency", |s, v| {
                s.payment_terms = Some(pb::PaymentTerms {
                    frequency: v,
                    net_days: 30,
                    preferred_method: pb::PaymentMethod::Cheque as i32,
                });
            }),
            ("studio.payment_terms.preferred_method", |s, v| {
                s.payment_terms = Some(pb::PaymentTerms {
                    frequency: pb::PaymentFrequency::Monthly as i32,
                    net_days: 30,
                    preferred_method: v,
                });
            }),
        ];
        for (field, poison) in poisons {
            let mut hostile = studio_profile("Studio Sud", "");
            poison(&mut hostile, value);
            let outcome = client
                .create_studio(bearer(
                    pb::CreateStudioRequest {
                        studio: Some(hostile.clone()),
                        request_id: String::new(),
                    },
                    &owner_token,
                ))
                .await;
            assert_refused_on(outcome, field, &case);
            hostile.id.clone_from(&studio.id);
            let outcome = client
                .update_studio(bearer(
                    pb::UpdateStudioRequest {
                        studio: Some(hostile),
                        update_mask: mask(&[top_field(field)]),
                        etag: String::new(),
                    },
                    &owner_token,
                ))
                .await;
            assert_refused_on(outcome, field, &case);
        }
        let outcome = client
            .list_studios(bearer(
                pb::ListStudiosRequest {
                    province: value,
                    ..Default::default()
                },
                &owner_token,
            ))
            .await;
        assert_refused_on(outcome, "province", &case);
        let outcome = client
            .create_contract(bearer(
                pb::CreateContractRequest {
                    studio_id: studio.id.clone(),
                    trainer: Some(pb::create_contract_request::Trainer::TrainerId(new_id())),
                    role: value,
                    start_date: date(today()),
                    rates: rates("50", None),
                    request_id: String::new(),
                },
                &owner_token,
            ))
            .await;
        assert_refused_on(outcome, "role", &case);
        let outcome = client
            .list_contracts(bearer(
                pb::ListContractsRequest {
                    party: Some(pb::list_contracts_request::Party::StudioId(
                        studio.id.clone(),
                    )),
                    state: value,
                    ..Default::default()
                },
                &owner_token,
            ))
            .await;
        assert_refused_on(outcome, "state", &case);
        let outcome = client
            .get_rate(bearer(
                pb::GetRateRequest {
                    trainer_id: trainer_id.clone(),
                    studio_id: studio.id.clone(),
                    category: value,
                    date: date(today()),
                },
                &trainer_token,
            ))
            .await;
        assert_refused_on(outcome, "category", &case);
    }
    assert_eq!(digest(&admin).await, before, "a refused call wrote");
    client
        .get_studio(bearer(
            pb::GetStudioRequest {
                studio_id: studio.id.clone(),
            },
            &owner_token,
        ))
        .await
        .expect("the service still answers");
}

#[tokio::test]
async fn forged_truncated_borrowed_and_foreign_page_tokens_are_refused() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, ana_email, _) = trainer(&sandbox, "Ana").await;
    let (_, ben_email, _) = trainer(&sandbox, "Ben").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let (_, _, other_token) = member(&sandbox, "Mallory").await;
    let studio = create_studio(&sandbox, &owner_token, "Yoga Nord", "").await;
    create_studio(&sandbox, &owner_token, "Yoga Sud", "").await;
    create_studio(&sandbox, &owner_token, "Yoga Est", "").await;
    invite(&sandbox, &owner_token, &studio.id, &ana_email)
        .await
        .expect("invite Ana");
    invite(&sandbox, &owner_token, &studio.id, &ben_email)
        .await
        .expect("invite Ben");
    let mut client = tenancy(&sandbox, "gateway");
    let search = pb::ListStudiosRequest {
        query: "yoga".into(),
        page_size: 1,
        ..Default::default()
    };
    let first = client
        .list_studios(bearer(search.clone(), &owner_token))
        .await
        .expect("first page")
        .into_inner();
    let token = first.next_page_token;
    assert!(!token.is_empty(), "three studios, pages of one");
    let second = client
        .list_studios(bearer(
            pb::ListStudiosRequest {
                page_token: token.clone(),
                ..search.clone()
            },
            &owner_token,
        ))
        .await
        .expect("the genuine token works")
        .into_inner();
    assert_ne!(second.studios[0].id, first.studios[0].id);

    let mut flipped = token.clone().into_bytes();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    let attempts = [
        (
            "truncated",
            search.clone(),
            &token[..token.len() - 1],
            &owner_token,
        ),
        (
            "one character changed",
            search.clone(),
            flipped.as_str(),
            &owner_token,
        ),
        (
            "garbage",
            search.clone(),
            "not a token at all",
            &owner_token,
        ),
        ("huge", search.clone(), &"A".repeat(4000), &owner_token),
        (
            "another query",
            pb::ListStudiosRequest {
                query: "yog".into(),
                ..search.clone()
            },
            token.as_str(),
            &owner_token,
        ),
        (
            "another filter",
            pb::ListStudiosRequest {
                managed_only: true,
                ..search.clone()
            },
            token.as_str(),
            &owner_token,
        ),
        (
            "another province",
            pb::ListStudiosRequest {
                province: Province::Qc as i32,
                ..search.clone()
            },
            token.as_str(),
            &owner_token,
        ),
        ("another user", search.clone(), token.as_str(), &other_token),
    ];
    for (case, request, page_token, caller) in attempts {
        let outcome = client
            .list_studios(bearer(
                pb::ListStudiosRequest {
                    page_token: page_token.to_owned(),
                    ..request
                },
                caller,
            ))
            .await;
        let status = outcome.expect_err(case);
        assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
        assert_eq!(violated_fields(&status), ["page_token"], "{case}");
    }

    let contracts = pb::ListContractsRequest {
        party: Some(pb::list_contracts_request::Party::StudioId(
            studio.id.clone(),
        )),
        page_size: 1,
        ..Default::default()
    };
    let first = client
        .list_contracts(bearer(contracts.clone(), &owner_token))
        .await
        .expect("first page of contracts")
        .into_inner();
    let contract_token = first.next_page_token;
    assert!(!contract_token.is_empty(), "two contracts, pages of one");
    let attempts = [
        (
            "another state",
            pb::ListContractsRequest {
                state: pb::ContractState::Invited as i32,
                page_token: contract_token.clone(),
                ..contracts.clone()
            },
        ),
        (
            "truncated",
            pb::ListContractsRequest {
                page_token: contract_token[..contract_token.len() - 2].to_owned(),
                ..contracts.clone()
            },
        ),
        (
            "a studio search's token",
            pb::ListContractsRequest {
                page_token: token.clone(),
                ..contracts.clone()
            },
        ),
    ];
    for (case, request) in attempts {
        let status = client
            .list_contracts(bearer(request, &owner_token))
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
        assert_eq!(violated_fields(&status), ["page_token"], "{case}");
    }
    // A contract list's token does not page a studio search either.
    let status = client
        .list_studios(bearer(
            pb::ListStudiosRequest {
                page_token: contract_token.clone(),
                ..search.clone()
            },
            &owner_token,
        ))
        .await
        .expect_err("a contract token");
    assert_eq!(violated_fields(&status), ["page_token"]);
    client
        .list_contracts(bearer(
            pb::ListContractsRequest {
                page_token: contract_token,
                ..contracts
            },
            &owner_token,
        ))
        .await
        .expect("the genuine contract token works");
}

#[tokio::test]
async fn a_reused_request_id_gives_the_same_resource_once_and_refuses_another_request() {
    let sandbox = Sandbox::new().await;
    // No audit service: the outbox keeps every event to count.
    let _stack = sandbox.start(&[IDENTITY, TENANCY]).await;
    let (trainer_id, trainer_email, trainer_token) = member(&sandbox, "Ana").await;
    let (lead_id, _, lead_token) = trainer(&sandbox, "Lena").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let (_, _, other_token) = member(&sandbox, "Mallory").await;
    let admin = sandbox.db.admin_pool().await;
    let mut client = tenancy(&sandbox, "gateway");
    let request_id = new_id();

    // Studios.
    let create = pb::CreateStudioRequest {
        studio: Some(studio_profile("Studio Nord", "")),
        request_id: request_id.clone(),
    };
    let first = client
        .create_studio(bearer(create.clone(), &owner_token))
        .await
        .expect("create")
        .into_inner()
        .studio
        .expect("studio");
    let events = outbox_events(&admin).await;
    let again = client
        .create_studio(bearer(create.clone(), &owner_token))
        .await
        .expect("the same request again")
        .into_inner()
        .studio
        .expect("studio");
    assert_eq!(again.id, first.id);
    assert_eq!(outbox_events(&admin).await, events, "no second event");
    let mut changed = create.clone();
    if let Some(studio) = changed.studio.as_mut() {
        studio.name = "Studio Sud".into();
    }
    let reused = client
        .create_studio(bearer(changed, &owner_token))
        .await
        .expect_err("another request under the same id");
    assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");
    assert_eq!(reason(&reused), "REQUEST_ID_REUSED");
    // Another user's identical request is theirs: it never returns the
    // first owner's studio.
    let theirs = client
        .create_studio(bearer(create, &other_token))
        .await
        .expect("another user's request id is their own")
        .into_inner()
        .studio
        .expect("studio");
    assert_ne!(theirs.id, first.id);
    let studios: i64 = sqlx::query_scalar("SELECT count(*) FROM tenancy.studios")
        .fetch_one(&admin)
        .await
        .expect("count");
    assert_eq!(studios, 2);

    // Trainers.
    let create = pb::CreateTrainerRequest {
        trainer: Some(trainer_profile()),
        request_id: request_id.clone(),
    };
    let first = client
        .create_trainer(bearer(create.clone(), &trainer_token))
        .await
        .expect("create trainer")
        .into_inner()
        .trainer
        .expect("trainer");
    assert_eq!(first.id, trainer_id);
    let events = outbox_events(&admin).await;
    client
        .create_trainer(bearer(create.clone(), &trainer_token))
        .await
        .expect("the same request again");
    assert_eq!(outbox_events(&admin).await, events, "no second event");
    let mut changed = create;
    if let Some(trainer) = changed.trainer.as_mut() {
        trainer.bio = "Another bio".into();
    }
    let reused = client
        .create_trainer(bearer(changed, &trainer_token))
        .await
        .expect_err("another request under the same id");
    assert_eq!(reason(&reused), "REQUEST_ID_REUSED");

    // Contracts.
    let create = pb::CreateContractRequest {
        studio_id: first_studio_id(&admin).await,
        trainer: Some(pb::create_contract_request::Trainer::TrainerEmail(
            trainer_email.clone(),
        )),
        role: pb::ContractRole::Contractor as i32,
        start_date: date(today()),
        rates: rates("50", None),
        request_id: request_id.clone(),
    };
    let first = client
        .create_contract(bearer(create.clone(), &owner_token))
        .await
        .expect("create contract")
        .into_inner()
        .contract
        .expect("contract");
    let events = outbox_events(&admin).await;
    let again = client
        .create_contract(bearer(create.clone(), &owner_token))
        .await
        .expect("the same request again")
        .into_inner()
        .contract
        .expect("contract");
    assert_eq!(again.id, first.id);
    assert_eq!(outbox_events(&admin).await, events, "no second event");
    let mut changed = create;
    changed.rates = rates("55", None);
    let reused = client
        .create_contract(bearer(changed, &owner_token))
        .await
        .expect_err("another request under the same id");
    assert_eq!(reason(&reused), "REQUEST_ID_REUSED");

    // Team invitations.
    let create = pb::InviteTeamMemberRequest {
        leader_id: lead_id.clone(),
        trainer: Some(pb::invite_team_member_request::Trainer::TrainerId(
            trainer_id.clone(),
        )),
        request_id: request_id.clone(),
    };
    let first = client
        .invite_team_member(bearer(create.clone(), &lead_token))
        .await
        .expect("invite")
        .into_inner()
        .invitation
        .expect("invitation");
    let events = outbox_events(&admin).await;
    let again = client
        .invite_team_member(bearer(create.clone(), &lead_token))
        .await
        .expect("the same request again")
        .into_inner()
        .invitation
        .expect("invitation");
    assert_eq!(again.id, first.id);
    assert_eq!(outbox_events(&admin).await, events, "no second event");
    let mut changed = create;
    changed.trainer = Some(pb::invite_team_member_request::Trainer::TrainerEmail(
        trainer_email,
    ));
    let reused = client
        .invite_team_member(bearer(changed, &lead_token))
        .await
        .expect_err("another request under the same id");
    assert_eq!(reason(&reused), "REQUEST_ID_REUSED");
}

async fn first_studio_id(admin: &PgPool) -> String {
    let id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM tenancy.studios ORDER BY created_at LIMIT 1")
            .fetch_one(admin)
            .await
            .expect("a studio");
    id.to_string()
}

#[tokio::test]
async fn huge_inputs_are_refused_and_the_service_keeps_serving_others() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY]).await;
    let (trainer_id, _, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let admin = sandbox.db.admin_pool().await;
    let before = digest(&admin).await;
    let mut client = tenancy(&sandbox, "gateway");
    let refused = |status: &tonic::Status| {
        matches!(
            status.code(),
            Code::ResourceExhausted | Code::InvalidArgument
        )
    };

    let mut many = pb::Trainer {
        id: trainer_id.clone(),
        ..Default::default()
    };
    for index in 0..10_000 {
        many.settings.insert(format!("k{index}"), "v".into());
    }
    let status = client
        .update_trainer(bearer(
            pb::UpdateTrainerRequest {
                trainer: Some(many),
                update_mask: mask(&["settings"]),
                etag: String::new(),
            },
            &trainer_token,
        ))
        .await
        .expect_err("10,000 settings");
    assert!(refused(&status), "{status:?}");

    // Under the message limit, the entry limit refuses it by field.
    let mut some = pb::Trainer {
        id: trainer_id.clone(),
        ..Default::default()
    };
    for index in 0..2_000 {
        some.settings.insert(format!("k{index}"), "v".into());
    }
    let status = client
        .update_trainer(bearer(
            pb::UpdateTrainerRequest {
                trainer: Some(some),
                update_mask: mask(&["settings"]),
                etag: String::new(),
            },
            &trainer_token,
        ))
        .await
        .expect_err("2,000 settings");
    assert_eq!(violated_fields(&status), ["trainer.settings"]);

    let megabyte = "a".repeat(1 << 20);
    let outcomes = [
        client
            .create_studio(bearer(
                pb::CreateStudioRequest {
                    studio: Some(studio_profile(&megabyte, "")),
                    request_id: String::new(),
                },
                &owner_token,
            ))
            .await
            .map(drop),
        client
            .list_studios(bearer(
                pb::ListStudiosRequest {
                    query: megabyte.clone(),
                    ..Default::default()
                },
                &owner_token,
            ))
            .await
            .map(drop),
        client
            .get_studio(bearer(
                pb::GetStudioRequest {
                    studio_id: megabyte.clone(),
                },
                &owner_token,
            ))
            .await
            .map(drop),
    ];
    for outcome in outcomes {
        let status = outcome.expect_err("a megabyte");
        assert!(refused(&status), "{status:?}");
    }
    // Just under the limit: refused by the field's own length.
    let status = client
        .update_trainer(bearer(
            pb::UpdateTrainerRequest {
                trainer: Some(pb::Trainer {
                    id: trainer_id.clone(),
                    bio: "b".repeat(60_000),
                    ..Default::default()
                }),
                update_mask: mask(&["bio"]),
                etag: String::new(),
            },
            &trainer_token,
        ))
        .await
        .expect_err("a 60 kB bio");
    assert_eq!(violated_fields(&status), ["trainer.bio"]);

    assert_eq!(digest(&admin).await, before, "a refused call wrote");
    let card = client
        .get_studio(bearer(
            pb::GetStudioRequest {
                studio_id: studio.id.clone(),
            },
            &trainer_token,
        ))
        .await
        .expect("the service still serves others")
        .into_inner()
        .studio
        .expect("studio");
    assert_eq!(card.name, "Studio Nord");
}

#[tokio::test]
async fn search_queries_with_operators_punctuation_or_many_words_never_fail_internally() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = create_studio(&sandbox, &owner_token, "Yoga Nord", "").await;
    let mut client = tenancy(&sandbox, "gateway");
    let search = |query: &str| pb::ListStudiosRequest {
        query: query.into(),
        ..Default::default()
    };

    let hostile = [
        "&|!():*'\\",
        "yoga & | ! ( ) : * ' \\",
        "yoga:* | nord",
        "!yoga",
        "(yoga",
        "yoga'); DROP TABLE tenancy.studios; --",
        "'''",
        "\\\\\\",
        ":*",
        "<->",
        "yoga <-> nord",
        "yoga <2> nord",
        "½ ² ⅷ 𝟘",
        "ǅ ß İ",
        "y\u{301}oga",
        "\u{200b}yoga\u{feff}",
        "....",
        "-- /* */",
        "%_%",
    ];
    for query in hostile {
        let outcome = client
            .list_studios(bearer(search(query), &owner_token))
            .await;
        assert!(outcome.is_ok(), "{query:?}: {outcome:?}");
    }
    // The operators are dropped, the words kept: the studio is still found
    // (words of three characters or more are prefixes).
    let found = client
        .list_studios(bearer(search("yog:* & !nor|"), &owner_token))
        .await
        .expect("search")
        .into_inner()
        .studios;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, studio.id);

    let thousand_words = vec!["yoga"; 1000].join(" ");
    let status = client
        .list_studios(bearer(search(&thousand_words), &owner_token))
        .await
        .expect_err("longer than 100 characters");
    assert_eq!(violated_fields(&status), ["query"]);
    // The most words that fit: 25 three-letter prefixes (the first eight
    // count).
    let many_words = vec!["yog"; 25].join(" ");
    let found = client
        .list_studios(bearer(search(&many_words), &owner_token))
        .await
        .expect("fifty words")
        .into_inner()
        .studios;
    assert_eq!(found.len(), 1);
}

#[tokio::test]
async fn five_hundred_concurrent_searches_all_answer_and_another_user_is_still_served() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let (_, _, other_token) = member(&sandbox, "Ana").await;
    for name in ["Yoga Nord", "Yoga Sud", "Pilates Est", "Yoga Ouest"] {
        create_studio(&sandbox, &owner_token, name, "").await;
    }
    let studio = create_studio(&sandbox, &owner_token, "Studio Centre", "").await;
    let client = tenancy(&sandbox, "gateway");

    let searches = (0..500).map(|index| {
        let mut client = client.clone();
        let token = owner_token.clone();
        async move {
            client
                .list_studios(bearer(
                    pb::ListStudiosRequest {
                        query: format!("yoga {}", ["nord", "sud", "oue", ""][index % 4]),
                        page_size: 200,
                        ..Default::default()
                    },
                    &token,
                ))
                .await
        }
    });
    let searching = futures::future::join_all(searches);
    let other = async {
        let mut client = client.clone();
        let mut answers = Vec::new();
        for _ in 0..20 {
            answers.push(
                client
                    .get_studio(bearer(
                        pb::GetStudioRequest {
                            studio_id: studio.id.clone(),
                        },
                        &other_token,
                    ))
                    .await,
            );
        }
        answers
    };
    let (searched, served) = tokio::join!(searching, other);
    for (index, outcome) in searched.into_iter().enumerate() {
        let found = outcome.unwrap_or_else(|status| panic!("search {index}: {status:?}"));
        assert!(!found.into_inner().studios.is_empty(), "search {index}");
    }
    for outcome in served {
        let card = outcome.expect("the other user is served").into_inner();
        assert_eq!(card.studio.expect("studio").name, "Studio Centre");
    }
}

#[tokio::test]
async fn a_hundred_parallel_rate_versions_on_one_date_make_exactly_one() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let contract = invite(&sandbox, &owner_token, &studio.id, &trainer_email)
        .await
        .expect("invite");
    let client = tenancy(&sandbox, "gateway");
    client
        .clone()
        .accept_contract(bearer(
            pb::AcceptContractRequest {
                contract_id: contract.id.clone(),
                etag: String::new(),
            },
            &trainer_token,
        ))
        .await
        .expect("accept");
    let effective = today() + Days::new(10);

    let attempts = (0..100).map(|index| {
        let mut client = client.clone();
        let token = owner_token.clone();
        let contract_id = contract.id.clone();
        async move {
            client
                .add_rate_version(bearer(
                    pb::AddRateVersionRequest {
                        contract_id,
                        rates: rates(&format!("{}", 60 + index), Some(effective)),
                    },
                    &token,
                ))
                .await
        }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let added: Vec<_> = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok())
        .collect();
    assert_eq!(added.len(), 1, "one version per date");
    for status in outcomes.iter().filter_map(|outcome| outcome.as_ref().err()) {
        assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
        assert_eq!(reason(status), "RATE_VERSION_EXISTS");
    }
    let versions = client
        .clone()
        .list_rate_versions(bearer(
            pb::ListRateVersionsRequest {
                contract_id: contract.id.clone(),
            },
            &owner_token,
        ))
        .await
        .expect("versions")
        .into_inner()
        .versions;
    assert_eq!(versions.len(), 2, "the first and the one added");
    let winner = added[0].get_ref().version.as_ref().expect("version");
    assert_eq!(versions[0].group_rate, winner.group_rate);
}

#[tokio::test]
async fn a_hundred_parallel_updates_with_one_etag_make_exactly_one_change() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let client = tenancy(&sandbox, "gateway");

    let attempts = (0..100).map(|index| {
        let mut client = client.clone();
        let token = owner_token.clone();
        let (id, etag) = (studio.id.clone(), studio.etag.clone());
        async move {
            client
                .update_studio(bearer(
                    pb::UpdateStudioRequest {
                        studio: Some(pb::Studio {
                            id,
                            name: format!("Studio {index}"),
                            ..Default::default()
                        }),
                        update_mask: mask(&["name"]),
                        etag,
                    },
                    &token,
                ))
                .await
        }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let updated: Vec<_> = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok())
        .collect();
    assert_eq!(updated.len(), 1, "one update per etag");
    for status in outcomes.iter().filter_map(|outcome| outcome.as_ref().err()) {
        assert_eq!(status.code(), Code::Aborted, "{status:?}");
        assert_eq!(reason(status), "ETAG_MISMATCH");
    }
    let stored = client
        .clone()
        .get_studio(bearer(
            pb::GetStudioRequest {
                studio_id: studio.id.clone(),
            },
            &owner_token,
        ))
        .await
        .expect("studio")
        .into_inner()
        .studio
        .expect("studio");
    let winner = updated[0].get_ref().studio.as_ref().expect("studio");
    assert_eq!(stored.name, winner.name);
    assert_eq!(stored.etag, winner.etag);
}

#[tokio::test]
async fn another_chain_a_stranger_a_former_lead_and_wrong_peers_learn_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (trainer_id, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (lead_id, _, lead_token) = trainer(&sandbox, "Lena").await;
    let (_, _, stranger_token) = trainer(&sandbox, "Mallory").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let (_, _, rival_token) = member(&sandbox, "Rita").await;
    let chain = create_studio(&sandbox, &owner_token, "Chaîne Nord", "").await;
    let location = create_studio(&sandbox, &owner_token, "Nord Plateau", &chain.id).await;
    let rival = create_studio(&sandbox, &rival_token, "Rival", "").await;
    let contract = invite(&sandbox, &owner_token, &location.id, &trainer_email)
        .await
        .expect("invite");
    let mut client = tenancy(&sandbox, "gateway");
    client
        .accept_contract(bearer(
            pb::AcceptContractRequest {
                contract_id: contract.id.clone(),
                etag: String::new(),
            },
            &trainer_token,
        ))
        .await
        .expect("accept");
    // Ana joins Lena's team, then leaves it.
    let invitation = invite_to_team(&sandbox, &lead_token, &lead_id, &trainer_email)
        .await
        .expect("team invitation");
    answer(&sandbox, &trainer_token, &invitation.id, true)
        .await
        .expect("join");
    client
        .leave_team(bearer(
            pb::LeaveTeamRequest {
                trainer_id: trainer_id.clone(),
            },
            &trainer_token,
        ))
        .await
        .expect("leave");

    // The rival chain's owner, a stranger trainer and the former lead: the
    // trainer, her contract and the chain's managed fields stay hidden.
    for (who, token) in [
        ("rival owner", &rival_token),
        ("stranger", &stranger_token),
        ("former lead", &lead_token),
    ] {
        let as_them = |message| bearer(message, token);
        let hidden: Vec<(&str, Result<String, tonic::Status>)> = vec![
            (
                "GetTrainer",
                client
                    .get_trainer(as_them(pb::GetTrainerRequest {
                        trainer_id: trainer_id.clone(),
                    }))
                    .await
                    .map(|r| format!("{:?}", r.into_inner())),
            ),
            (
                "GetTrainerBankAccount",
                client
                    .get_trainer_bank_account(bearer(
                        pb::GetTrainerBankAccountRequest {
                            trainer_id: trainer_id.clone(),
                        },
                        token,
                    ))
                    .await
                    .map(|r| format!("{:?}", r.into_inner())),
            ),
            (
                "UpdateTrainer",
                client
                    .update_trainer(bearer(
                        pb::UpdateTrainerRequest {
                            trainer: Some(pb::Trainer {
                                id: trainer_id.clone(),
                                bio: "pwned".into(),
                                ..Default::default()
                            }),
                            update_mask: mask(&["bio"]),
                            etag: String::new(),
                        },
                        token,
                    ))
                    .await
                    .map(|r| format!("{:?}", r.into_inner())),
            ),
            (
                "GetContract",
                client
                    .get_contract(bearer(
                        pb::GetContractRequest {
                            contract_id: contract.id.clone(),
                        },
                        token,
                    ))
                    .await
                    .map(|r| format!("{:?}", r.into_inner())),
            ),
            (
                "ListRateVersions",
                client
                    .list_rate_versions(bearer(
                        pb::ListRateVersionsRequest {
                            contract_id: contract.id.clone(),
                        },
                        token,
                    ))
                    .await
                    .map(|r| format!("{:?}", r.into_inner())),
            ),
            (
                "EndContract",
                client
                    .end_contract(bearer(
                        pb::EndContractRequest {
                            contract_id: contract.id.clone(),
                            end_date: date(today()),
                            etag: String::new(),
                        },
                        token,
                    ))
                    .await
                    .map(|r| format!("{:?}", r.into_inner())),
            ),
            (
                "DeclineContract",
                client
                    .decline_contract(bearer(
                        pb::DeclineContractRequest {
                            contract_id: contract.id.clone(),
                            etag: String::new(),
                        },
                        token,
                    ))
                    .await
                    .map(|r| format!("{:?}", r.into_inner())),
            ),
            (
                "ListContracts",
                client
                    .list_contracts(bearer(
                        pb::ListContractsRequest {
                            party: Some(pb::list_contracts_request::Party::TrainerId(
                                trainer_id.clone(),
                            )),
                            ..Default::default()
                        },
                        token,
                    ))
                    .await
                    .map(|r| format!("{:?}", r.into_inner())),
            ),
            (
                "GetRate",
                client
                    .get_rate(bearer(
                        pb::GetRateRequest {
                            trainer_id: trainer_id.clone(),
                            studio_id: location.id.clone(),
                            category: pb::ClassCategory::Group as i32,
                            date: date(today()),
                        },
                        token,
                    ))
                    .await
                    .map(|r| format!("{:?}", r.into_inner())),
            ),
            (
                "LeaveTeam",
                client
                    .leave_team(bearer(
                        pb::LeaveTeamRequest {
                            trainer_id: trainer_id.clone(),
                        },
                        token,
                    ))
                    .await
                    .map(|r| format!("{:?}", r.into_inner())),
            ),
            (
                "ListTeamInvitations",
                client
                    .list_team_invitations(bearer(
                        pb::ListTeamInvitationsRequest {
                            trainer_id: trainer_id.clone(),
                        },
                        token,
                    ))
                    .await
                    .map(|r| format!("{:?}", r.into_inner())),
            ),
            (
                "ListTeamMembers",
                client
                    .list_team_members(bearer(
                        pb::ListTeamMembersRequest {
                            leader_id: trainer_id.clone(),
                        },
                        token,
                    ))
                    .await
                    .map(|r| format!("{:?}", r.into_inner())),
            ),
        ];
        for (rpc, outcome) in hidden {
            let status = outcome.expect_err(&format!("{who}: {rpc} answered"));
            assert_eq!(status.code(), Code::NotFound, "{who}: {rpc}: {status:?}");
            assert!(
                !status.message().contains(&trainer_email) && !status.message().contains("7654321"),
                "{who}: {rpc} leaks in {status:?}"
            );
        }
        // The chain's managed fields: a directory card only, and no power
        // over it.
        for studio_id in [&chain.id, &location.id] {
            let card = client
                .get_studio(bearer(
                    pb::GetStudioRequest {
                        studio_id: studio_id.clone(),
                    },
                    token,
                ))
                .await
                .expect("the directory card")
                .into_inner()
                .studio
                .expect("studio");
            assert!(!card.managed_by_caller, "{who}");
            assert!(card.business_number.is_empty(), "{who}");
            assert!(card.payment_terms.is_none(), "{who}");
            assert!(card.settings.is_empty(), "{who}");
            assert!(card.billing_studio_id.is_empty(), "{who}");
            assert!(!card.has_bank_account, "{who}");
        }
        let managed = client
            .list_studios(bearer(
                pb::ListStudiosRequest {
                    managed_only: true,
                    show_deleted: true,
                    ..Default::default()
                },
                token,
            ))
            .await
            .expect("list")
            .into_inner()
            .studios;
        assert!(
            managed
                .iter()
                .all(|studio| studio.id != chain.id && studio.id != location.id),
            "{who}"
        );
        let refusals = [
            client
                .get_studio_bank_account(bearer(
                    pb::GetStudioBankAccountRequest {
                        studio_id: location.id.clone(),
                    },
                    token,
                ))
                .await
                .map(|r| format!("{:?}", r.into_inner())),
            client
                .undelete_studio(bearer(
                    pb::UndeleteStudioRequest {
                        studio_id: chain.id.clone(),
                    },
                    token,
                ))
                .await
                .map(|r| format!("{:?}", r.into_inner())),
            client
                .add_rate_version(bearer(
                    pb::AddRateVersionRequest {
                        contract_id: contract.id.clone(),
                        rates: rates("1", Some(today() + Days::new(3))),
                    },
                    token,
                ))
                .await
                .map(|r| format!("{:?}", r.into_inner())),
            client
                .list_contracts(bearer(
                    pb::ListContractsRequest {
                        party: Some(pb::list_contracts_request::Party::StudioId(
                            location.id.clone(),
                        )),
                        ..Default::default()
                    },
                    token,
                ))
                .await
                .map(|r| format!("{:?}", r.into_inner())),
        ];
        for (index, outcome) in refusals.into_iter().enumerate() {
            let status = outcome.expect_err(&format!("{who}: call {index} answered"));
            assert!(
                matches!(status.code(), Code::NotFound | Code::PermissionDenied),
                "{who}: call {index}: {status:?}"
            );
        }
    }

    // A trainer never acts as the studio: no rates of their own, no studio
    // bank account, no studio contract list.
    let trainer_as_manager = [
        client
            .add_rate_version(bearer(
                pb::AddRateVersionRequest {
                    contract_id: contract.id.clone(),
                    rates: rates("999", Some(today() + Days::new(3))),
                },
                &trainer_token,
            ))
            .await
            .map(drop),
        client
            .get_studio_bank_account(bearer(
                pb::GetStudioBankAccountRequest {
                    studio_id: location.id.clone(),
                },
                &trainer_token,
            ))
            .await
            .map(drop),
        client
            .update_studio(bearer(
                pb::UpdateStudioRequest {
                    studio: Some(pb::Studio {
                        id: location.id.clone(),
                        name: "pwned".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["name"]),
                    etag: String::new(),
                },
                &trainer_token,
            ))
            .await
            .map(drop),
    ];
    for (index, outcome) in trainer_as_manager.into_iter().enumerate() {
        let status = outcome.expect_err("a trainer is not a manager");
        assert_eq!(reason(&status), "STUDIO_NOT_MANAGED", "call {index}");
    }
    // The rival manages only their own studio; moving it under the chain is
    // refused.
    let hijack = client
        .update_studio(bearer(
            pb::UpdateStudioRequest {
                studio: Some(pb::Studio {
                    id: rival.id.clone(),
                    parent_studio_id: chain.id.clone(),
                    ..Default::default()
                }),
                update_mask: mask(&["parent_studio_id"]),
                etag: String::new(),
            },
            &rival_token,
        ))
        .await
        .expect_err("no move under another owner's chain");
    assert!(
        matches!(
            reason(&hijack).as_str(),
            "CHAIN_INVALID" | "STUDIO_NOT_FOUND" | "STUDIO_NOT_MANAGED"
        ),
        "{hijack:?}"
    );

    // Internal RPCs: each refuses every peer but its own, with or without
    // a user token.
    let internal_peers = ["gateway", "operator", "clients", "scheduling", "audit"];
    for peer in internal_peers {
        let mut as_peer = tenancy(&sandbox, peer);
        let status = as_peer
            .get_tax_profile(bearer(
                pb::GetTaxProfileRequest {
                    trainer_id: trainer_id.clone(),
                },
                &trainer_token,
            ))
            .await
            .expect_err("only billing reads tax profiles");
        assert_eq!(reason(&status), "PEER_NOT_ALLOWED", "{peer}");
        if matches!(peer, "gateway" | "operator") {
            let status = as_peer
                .get_acting_for(pb::GetActingForRequest {
                    user_id: trainer_id.clone(),
                    limit: 0,
                })
                .await
                .expect_err("only services ask what a user acts for");
            assert_eq!(reason(&status), "PEER_NOT_ALLOWED", "{peer}");
        }
    }
    let status = tenancy(&sandbox, IDENTITY)
        .get_tax_profile(pb::GetTaxProfileRequest {
            trainer_id: trainer_id.clone(),
        })
        .await
        .expect_err("identity does not read tax profiles");
    assert_eq!(reason(&status), "PEER_NOT_ALLOWED");
    tenancy(&sandbox, "clients")
        .get_acting_for(pb::GetActingForRequest {
            user_id: trainer_id.clone(),
            limit: 0,
        })
        .await
        .expect("a service completing a truncated token asks what a user acts for");
    for peer in ["clients", "scheduling", "identity", "audit"] {
        let status = tenancy(&sandbox, peer)
            .get_rate(pb::GetRateRequest {
                trainer_id: trainer_id.clone(),
                studio_id: location.id.clone(),
                category: pb::ClassCategory::Group as i32,
                date: date(today()),
            })
            .await
            .expect_err("only billing and the parties read rates");
        assert_eq!(reason(&status), "PEER_NOT_ALLOWED", "{peer}");
    }
    // The right peers are answered, so the refusals above are the peer's.
    tenancy(&sandbox, "billing")
        .get_tax_profile(pb::GetTaxProfileRequest {
            trainer_id: trainer_id.clone(),
        })
        .await
        .expect("billing reads the tax profile");
    let acting = tenancy(&sandbox, IDENTITY)
        .get_acting_for(pb::GetActingForRequest {
            user_id: lead_id.clone(),
            limit: 0,
        })
        .await
        .expect("identity asks")
        .into_inner();
    assert_eq!(acting.trainer_ids, [lead_id], "the team was left");
}

#[tokio::test]
async fn bank_accounts_are_ciphertext_at_rest_and_every_read_is_audited_with_it() {
    let sandbox = Sandbox::new().await;
    // No audit service: the access events stay in the outbox to read.
    let _stack = sandbox.start(&[IDENTITY, TENANCY]).await;
    let (trainer_id, _, trainer_token) = member(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let mut profile = trainer_profile();
    profile.bank_account = Some(pb::BankAccount {
        holder_name: "Ana Example".into(),
        institution_number: "001".into(),
        transit_number: "12345".into(),
        account_number: "918273645501".into(),
    });
    let mut client = tenancy(&sandbox, "gateway");
    client
        .create_trainer(bearer(
            pb::CreateTrainerRequest {
                trainer: Some(profile),
                request_id: String::new(),
            },
            &trainer_token,
        ))
        .await
        .expect("create trainer");
    let mut studio = studio_profile("Studio Nord", "");
    studio.bank_account = Some(pb::BankAccount {
        holder_name: "Studio Nord Inc".into(),
        institution_number: "002".into(),
        transit_number: "54321".into(),
        account_number: "564738291002".into(),
    });
    let studio = client
        .create_studio(bearer(
            pb::CreateStudioRequest {
                studio: Some(studio),
                request_id: String::new(),
            },
            &owner_token,
        ))
        .await
        .expect("create studio")
        .into_inner()
        .studio
        .expect("studio");
    let admin = sandbox.db.admin_pool().await;

    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT bank_account_sealed FROM tenancy.trainers WHERE id = $1::uuid")
            .bind(&trainer_id)
            .fetch_one(&admin)
            .await
            .expect("trainer row");
    let studio_sealed: Vec<u8> =
        sqlx::query_scalar("SELECT bank_account_sealed FROM tenancy.studios WHERE id = $1::uuid")
            .bind(&studio.id)
            .fetch_one(&admin)
            .await
            .expect("studio row");
    for (sealed, secrets) in [
        (&sealed, ["918273645501", "Ana Example"]),
        (&studio_sealed, ["564738291002", "Studio Nord Inc"]),
    ] {
        assert!(sealed.len() > 16, "a ciphertext with its tag");
        for secret in secrets {
            assert!(
                !sealed
                    .windows(secret.len())
                    .any(|window| window == secret.as_bytes()),
                "{secret} in the clear"
            );
        }
    }
    // Nowhere else in the rows either.
    let rows: String = sqlx::query_scalar(
        "SELECT (SELECT string_agg(t::text, '|') FROM tenancy.trainers t) \
           || (SELECT string_agg(s::text, '|') FROM tenancy.studios s)",
    )
    .fetch_one(&admin)
    .await
    .expect("rows");
    assert!(!rows.contains("918273645501") && !rows.contains("564738291002"));

    // Each read writes its access event with it.
    let before = outbox_events(&admin).await;
    let account = client
        .get_trainer_bank_account(bearer(
            pb::GetTrainerBankAccountRequest {
                trainer_id: trainer_id.clone(),
            },
            &trainer_token,
        ))
        .await
        .expect("own account")
        .into_inner()
        .bank_account
        .expect("account");
    assert_eq!(account.account_number, "918273645501");
    let payloads: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM tenancy.audit_outbox ORDER BY id OFFSET $1")
            .bind(before)
            .fetch_all(&admin)
            .await
            .expect("events");
    assert_eq!(payloads.len(), 1, "one access event per read");
    use prost::Message as _;
    let event = fitflow_proto::audit::AuditEvent::decode(payloads[0].as_slice()).expect("event");
    assert_eq!(event.action, fitflow_proto::audit::Action::Read as i32);
    assert_eq!(event.resource_id, trainer_id);
    assert!(
        !format!("{event:?}").contains("918273645501"),
        "the event names the read, never the account"
    );

    let before = outbox_events(&admin).await;
    let account = client
        .get_studio_bank_account(bearer(
            pb::GetStudioBankAccountRequest {
                studio_id: studio.id.clone(),
            },
            &owner_token,
        ))
        .await
        .expect("own studio's account")
        .into_inner()
        .bank_account
        .expect("account");
    assert_eq!(account.account_number, "564738291002");
    assert_eq!(outbox_events(&admin).await, before + 1);

    // A refused read writes no event and returns no data.
    let before = outbox_events(&admin).await;
    let status = client
        .get_trainer_bank_account(bearer(
            pb::GetTrainerBankAccountRequest {
                trainer_id: trainer_id.clone(),
            },
            &owner_token,
        ))
        .await
        .expect_err("not the trainer");
    assert_eq!(status.code(), Code::NotFound);
    assert!(!status.message().contains("918273645501"));
    assert_eq!(outbox_events(&admin).await, before);
}

#[tokio::test]
async fn fifty_parallel_creates_with_one_request_id_make_one_resource() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY]).await;
    let (trainer_id, _, trainer_token) = member(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let client = tenancy(&sandbox, "gateway");
    let admin = sandbox.db.admin_pool().await;

    let create = pb::CreateStudioRequest {
        studio: Some(studio_profile("Studio Nord", "")),
        request_id: new_id(),
    };
    let attempts = (0..50).map(|_| {
        let mut client = client.clone();
        let request = bearer(create.clone(), &owner_token);
        async move { client.create_studio(request).await }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let mut ids = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(response) => ids.push(response.into_inner().studio.expect("studio").id),
            // A retry racing the first may be told to retry, never INTERNAL.
            Err(status) => assert!(
                matches!(status.code(), Code::Aborted | Code::Unavailable),
                "{status:?}"
            ),
        }
    }
    assert!(!ids.is_empty());
    assert!(ids.iter().all(|id| *id == ids[0]), "one studio: {ids:?}");
    let studios: i64 = sqlx::query_scalar("SELECT count(*) FROM tenancy.studios")
        .fetch_one(&admin)
        .await
        .expect("count");
    assert_eq!(studios, 1);
    assert_eq!(outbox_events(&admin).await, 1, "one CREATE event");

    // Fifty parallel trainer profiles for one user, without a request id:
    // one is created, the rest are told it exists.
    let attempts = (0..50).map(|_| {
        let mut client = client.clone();
        let request = bearer(
            pb::CreateTrainerRequest {
                trainer: Some(trainer_profile()),
                request_id: String::new(),
            },
            &trainer_token,
        );
        async move { client.create_trainer(request).await }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let created: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].get_ref().trainer.as_ref().expect("trainer").id,
        trainer_id
    );
    for status in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert_eq!(reason(status), "TRAINER_EXISTS", "{status:?}");
    }
}

#[tokio::test]
async fn two_studios_moved_under_each_other_at_once_never_make_a_cycle() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let client = tenancy(&sandbox, "gateway");
    let admin = sandbox.db.admin_pool().await;
    let move_under = |studio: &pb::Studio, parent: &pb::Studio| {
        let mut client = client.clone();
        let request = bearer(
            pb::UpdateStudioRequest {
                studio: Some(pb::Studio {
                    id: studio.id.clone(),
                    parent_studio_id: parent.id.clone(),
                    ..Default::default()
                }),
                update_mask: mask(&["parent_studio_id"]),
                etag: String::new(),
            },
            &owner_token,
        );
        async move { client.update_studio(request).await }
    };

    for round in 0..10 {
        let first = create_studio(&sandbox, &owner_token, &format!("A{round}"), "").await;
        let second = create_studio(&sandbox, &owner_token, &format!("B{round}"), "").await;
        // A location created under the first while both move.
        let mut creating = client.clone();
        let location = bearer(
            pb::CreateStudioRequest {
                studio: Some(studio_profile(&format!("C{round}"), &first.id)),
                request_id: String::new(),
            },
            &owner_token,
        );
        let (one, other, created) = tokio::join!(
            move_under(&first, &second),
            move_under(&second, &first),
            creating.create_studio(location)
        );
        created.unwrap_or_else(|status| panic!("round {round}: {status:?}"));
        let moved = [&one, &other].iter().filter(|o| o.is_ok()).count();
        assert!(moved <= 1, "round {round}: both moved");
        for status in [one, other].into_iter().filter_map(Result::err) {
            assert_eq!(
                reason(&status),
                "CHAIN_INVALID",
                "round {round}: {status:?}"
            );
        }
    }
    // A studio under itself, directly.
    let lone = create_studio(&sandbox, &owner_token, "Lone", "").await;
    let status = move_under(&lone, &lone).await.expect_err("its own parent");
    assert_eq!(reason(&status), "CHAIN_INVALID");
    let cycles: i64 = sqlx::query_scalar(
        "WITH RECURSIVE up(start, id, depth) AS ( \
           SELECT id, parent_studio_id, 1 FROM tenancy.studios WHERE parent_studio_id IS NOT NULL \
           UNION ALL SELECT up.start, s.parent_studio_id, up.depth + 1 \
           FROM up JOIN tenancy.studios s ON s.id = up.id \
           WHERE s.parent_studio_id IS NOT NULL AND up.depth < 10) \
         SELECT count(*) FROM up WHERE id = start",
    )
    .fetch_one(&admin)
    .await
    .expect("cycles");
    assert_eq!(cycles, 0);
}

#[tokio::test]
async fn a_trainer_accepting_two_teams_at_once_joins_exactly_one() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let admin = sandbox.db.admin_pool().await;
    for round in 0..5 {
        let (first_id, _, first_token) = trainer(&sandbox, &format!("Lena{round}")).await;
        let (second_id, _, second_token) = trainer(&sandbox, &format!("Lou{round}")).await;
        let (member_id, member_email, member_token) =
            trainer(&sandbox, &format!("Milo{round}")).await;
        let to_first = invite_to_team(&sandbox, &first_token, &first_id, &member_email)
            .await
            .expect("first invitation");
        let to_second = invite_to_team(&sandbox, &second_token, &second_id, &member_email)
            .await
            .expect("second invitation");
        let (one, other) = tokio::join!(
            answer(&sandbox, &member_token, &to_first.id, true),
            answer(&sandbox, &member_token, &to_second.id, true)
        );
        let joined = [&one, &other].iter().filter(|o| o.is_ok()).count();
        assert_eq!(joined, 1, "round {round}: one team per trainer");
        for status in [one, other].into_iter().filter_map(Result::err) {
            assert!(
                matches!(
                    reason(&status).as_str(),
                    "TEAM_INVALID" | "TEAM_INVITATION_NOT_FOUND"
                ),
                "round {round}: {status:?}"
            );
        }
        let leads: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM tenancy.team_links WHERE trainer_id = $1::uuid",
        )
        .bind(&member_id)
        .fetch_one(&admin)
        .await
        .expect("links");
        assert_eq!(leads, 1, "round {round}");
    }
}

#[tokio::test]
async fn accepting_declining_and_withdrawing_one_invitation_at_once_leaves_one_outcome() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let client = tenancy(&sandbox, "gateway");
    for round in 0..5 {
        let (_, trainer_email, trainer_token) = trainer(&sandbox, &format!("Ana{round}")).await;
        let contract = invite(&sandbox, &owner_token, &studio.id, &trainer_email)
            .await
            .expect("invite");
        let (mut accepting, mut declining, mut withdrawing) =
            (client.clone(), client.clone(), client.clone());
        let (accepted, declined, withdrawn) = tokio::join!(
            accepting.accept_contract(bearer(
                pb::AcceptContractRequest {
                    contract_id: contract.id.clone(),
                    etag: contract.etag.clone(),
                },
                &trainer_token,
            )),
            declining.decline_contract(bearer(
                pb::DeclineContractRequest {
                    contract_id: contract.id.clone(),
                    etag: contract.etag.clone(),
                },
                &trainer_token,
            )),
            withdrawing.end_contract(bearer(
                pb::EndContractRequest {
                    contract_id: contract.id.clone(),
                    end_date: None,
                    etag: contract.etag.clone(),
                },
                &owner_token,
            ))
        );
        let outcomes = [
            accepted.map(|r| r.into_inner().contract),
            declined.map(|r| r.into_inner().contract),
            withdrawn.map(|r| r.into_inner().contract),
        ];
        let won: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: one answer wins");
        for status in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            assert!(
                matches!(status.code(), Code::Aborted | Code::FailedPrecondition),
                "round {round}: {status:?}"
            );
        }
        let stored = client
            .clone()
            .get_contract(bearer(
                pb::GetContractRequest {
                    contract_id: contract.id.clone(),
                },
                &owner_token,
            ))
            .await
            .expect("contract")
            .into_inner()
            .contract
            .expect("contract");
        let winner = won[0].as_ref().expect("contract");
        assert_eq!(stored.state, winner.state, "round {round}");
    }
}

#[tokio::test]
async fn a_deleted_studio_and_read_only_fields_stay_out_of_a_strangers_and_a_masks_reach() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (trainer_id, _, trainer_token) = trainer(&sandbox, "Ana").await;
    let (owner_id, _, owner_token) = member(&sandbox, "Olivia").await;
    let (_, _, stranger_token) = member(&sandbox, "Mallory").await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Fermé", "").await;
    let mut client = tenancy(&sandbox, "gateway");
    client
        .delete_studio(bearer(
            pb::DeleteStudioRequest {
                studio_id: studio.id.clone(),
                etag: studio.etag.clone(),
            },
            &owner_token,
        ))
        .await
        .expect("delete");

    let status = client
        .get_studio(bearer(
            pb::GetStudioRequest {
                studio_id: studio.id.clone(),
            },
            &stranger_token,
        ))
        .await
        .expect_err("a deleted studio is hidden from non-managers");
    assert_eq!(status.code(), Code::NotFound);
    for request in [
        pb::ListStudiosRequest {
            show_deleted: true,
            ..Default::default()
        },
        pb::ListStudiosRequest {
            query: "ferme".into(),
            show_deleted: true,
            ..Default::default()
        },
    ] {
        let listed = client
            .list_studios(bearer(request, &stranger_token))
            .await
            .expect("list")
            .into_inner()
            .studios;
        assert!(listed.iter().all(|listed| listed.id != studio.id));
    }
    let managed = client
        .list_studios(bearer(
            pb::ListStudiosRequest {
                show_deleted: true,
                managed_only: true,
                ..Default::default()
            },
            &owner_token,
        ))
        .await
        .expect("list")
        .into_inner()
        .studios;
    assert_eq!(managed.len(), 1, "its manager still finds it");
    let status = client
        .update_studio(bearer(
            pb::UpdateStudioRequest {
                studio: Some(pb::Studio {
                    id: studio.id.clone(),
                    name: "Back".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["name"]),
                etag: String::new(),
            },
            &owner_token,
        ))
        .await
        .expect_err("a deleted studio is not changed");
    assert_eq!(reason(&status), "RESOURCE_DELETED");

    // Output-only and unknown fields in a mask are refused by name.
    for path in [
        "owner_id",
        "id",
        "managed_by_caller",
        "billing_studio_id",
        "etag",
        "nope",
    ] {
        let status = client
            .update_studio(bearer(
                pb::UpdateStudioRequest {
                    studio: Some(pb::Studio {
                        id: studio.id.clone(),
                        owner_id: trainer_id.clone(),
                        ..Default::default()
                    }),
                    update_mask: mask(&[path]),
                    etag: String::new(),
                },
                &owner_token,
            ))
            .await
            .expect_err(path);
        assert_eq!(violated_fields(&status), ["update_mask.paths[0]"], "{path}");
    }
    for path in [
        "id",
        "parent_trainer_id",
        "has_bank_account",
        "etag",
        "create_time",
    ] {
        let status = client
            .update_trainer(bearer(
                pb::UpdateTrainerRequest {
                    trainer: Some(pb::Trainer {
                        id: trainer_id.clone(),
                        parent_trainer_id: owner_id.clone(),
                        ..Default::default()
                    }),
                    update_mask: mask(&[path]),
                    etag: String::new(),
                },
                &trainer_token,
            ))
            .await
            .expect_err(path);
        assert_eq!(violated_fields(&status), ["update_mask.paths[0]"], "{path}");
    }
    // Without a mask, output-only fields sent are ignored, never applied.
    let unchanged = client
        .update_trainer(bearer(
            pb::UpdateTrainerRequest {
                trainer: Some(pb::Trainer {
                    id: trainer_id.clone(),
                    parent_trainer_id: owner_id.clone(),
                    has_bank_account: false,
                    bio: "Still me.".into(),
                    ..Default::default()
                }),
                update_mask: None,
                etag: String::new(),
            },
            &trainer_token,
        ))
        .await
        .expect("bio only")
        .into_inner()
        .trainer
        .expect("trainer");
    assert!(unchanged.parent_trainer_id.is_empty(), "no lead by request");
    assert!(unchanged.has_bank_account);
}

#[tokio::test]
async fn parallel_deletes_restores_and_trainer_updates_each_happen_once() {
    let sandbox = Sandbox::new().await;
    // No audit service: every event stays in the outbox to count.
    let _stack = sandbox.start(&[IDENTITY, TENANCY]).await;
    let (trainer_id, _, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let client = tenancy(&sandbox, "gateway");
    let admin = sandbox.db.admin_pool().await;

    let events = outbox_events(&admin).await;
    let deletes = (0..50).map(|_| {
        let mut client = client.clone();
        let request = bearer(
            pb::DeleteStudioRequest {
                studio_id: studio.id.clone(),
                etag: String::new(),
            },
            &owner_token,
        );
        async move { client.delete_studio(request).await }
    });
    let outcomes = futures::future::join_all(deletes).await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    for status in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert_eq!(reason(status), "RESOURCE_ALREADY_DELETED");
    }
    assert_eq!(outbox_events(&admin).await, events + 1, "one DELETE event");

    let restores = (0..50).map(|_| {
        let mut client = client.clone();
        let request = bearer(
            pb::UndeleteStudioRequest {
                studio_id: studio.id.clone(),
            },
            &owner_token,
        );
        async move { client.undelete_studio(request).await }
    });
    let outcomes = futures::future::join_all(restores).await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    for status in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
        assert_eq!(reason(status), "RESOURCE_NOT_DELETED");
    }
    assert_eq!(outbox_events(&admin).await, events + 2, "one restore event");

    let etag = client
        .clone()
        .get_trainer(bearer(
            pb::GetTrainerRequest {
                trainer_id: trainer_id.clone(),
            },
            &trainer_token,
        ))
        .await
        .expect("trainer")
        .into_inner()
        .trainer
        .expect("trainer")
        .etag;
    let updates = (0..100).map(|index| {
        let mut client = client.clone();
        let request = bearer(
            pb::UpdateTrainerRequest {
                trainer: Some(pb::Trainer {
                    id: trainer_id.clone(),
                    bio: format!("Version {index}"),
                    ..Default::default()
                }),
                update_mask: mask(&["bio"]),
                etag: etag.clone(),
            },
            &trainer_token,
        );
        async move { client.update_trainer(request).await }
    });
    let outcomes = futures::future::join_all(updates).await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    for status in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert_eq!(status.code(), Code::Aborted, "{status:?}");
        assert_eq!(reason(status), "ETAG_MISMATCH");
    }
    assert_eq!(outbox_events(&admin).await, events + 3, "one UPDATE event");
}

#[tokio::test]
async fn the_first_and_last_representable_dates_are_answered_by_rule_never_internally() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (trainer_id, _, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let mut client = tenancy(&sandbox, "gateway");
    let first = Some(Date {
        year: 1,
        month: 1,
        day: 1,
    });
    let last = Some(Date {
        year: 9999,
        month: 12,
        day: 31,
    });
    let contract_from = |start_date: Option<Date>| pb::CreateContractRequest {
        studio_id: studio.id.clone(),
        trainer: Some(pb::create_contract_request::Trainer::TrainerId(
            trainer_id.clone(),
        )),
        role: pb::ContractRole::Contractor as i32,
        start_date,
        rates: rates("50", None),
        request_id: String::new(),
    };

    let backdated = client
        .create_contract(bearer(contract_from(first), &owner_token))
        .await
        .expect_err("year 1 is in the past");
    assert_eq!(reason(&backdated), "RATE_BACKDATED");
    let contract = client
        .create_contract(bearer(contract_from(last), &owner_token))
        .await
        .expect("the last day there is")
        .into_inner()
        .contract
        .expect("contract");
    assert_eq!(contract.start_date, last);
    client
        .accept_contract(bearer(
            pb::AcceptContractRequest {
                contract_id: contract.id.clone(),
                etag: String::new(),
            },
            &trainer_token,
        ))
        .await
        .expect("accept");
    let rate = client
        .get_rate(bearer(
            pb::GetRateRequest {
                trainer_id: trainer_id.clone(),
                studio_id: studio.id.clone(),
                category: pb::ClassCategory::Group as i32,
                date: last,
            },
            &trainer_token,
        ))
        .await
        .expect("the rate on the last day")
        .into_inner();
    assert_eq!(rate.rate.expect("rate").amount, "50.00");
    for day in [first, date(today())] {
        let status = client
            .get_rate(bearer(
                pb::GetRateRequest {
                    trainer_id: trainer_id.clone(),
                    studio_id: studio.id.clone(),
                    category: pb::ClassCategory::Trial as i32,
                    date: day,
                },
                &trainer_token,
            ))
            .await
            .expect_err("before the contract");
        assert_eq!(reason(&status), "NO_CONTRACT_ON_DATE");
    }
    let existing = client
        .add_rate_version(bearer(
            pb::AddRateVersionRequest {
                contract_id: contract.id.clone(),
                rates: rates("60", None),
            },
            &owner_token,
        ))
        .await
        .expect_err("no effective date");
    assert_eq!(violated_fields(&existing), ["rates.effective_date"]);
    let mut on_last = rates("60", None);
    if let Some(version) = on_last.as_mut() {
        version.effective_date = last;
    }
    let status = client
        .add_rate_version(bearer(
            pb::AddRateVersionRequest {
                contract_id: contract.id.clone(),
                rates: on_last,
            },
            &owner_token,
        ))
        .await
        .expect_err("the start already has its version");
    assert_eq!(reason(&status), "RATE_VERSION_EXISTS");
    let ended = client
        .end_contract(bearer(
            pb::EndContractRequest {
                contract_id: contract.id.clone(),
                end_date: last,
                etag: String::new(),
            },
            &owner_token,
        ))
        .await
        .expect("ends on its only day")
        .into_inner()
        .contract
        .expect("contract");
    assert_eq!(ended.end_date, last);
}

#[tokio::test]
async fn inviting_by_email_does_not_tell_an_unknown_address_from_an_account_without_a_profile() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (lead_id, _, lead_token) = trainer(&sandbox, "Lena").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let (_, no_profile_email, _) = member(&sandbox, "Nadia").await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let unknown_email = format!("nobody-{}@example.com", uuid::Uuid::new_v4().simple());
    let mut client = tenancy(&sandbox, "gateway");

    let mut answers = Vec::new();
    for email in [&unknown_email, &no_profile_email] {
        let contract = invite(&sandbox, &owner_token, &studio.id, email)
            .await
            .expect_err("no trainer to invite");
        let team = client
            .invite_team_member(bearer(
                pb::InviteTeamMemberRequest {
                    leader_id: lead_id.clone(),
                    trainer: Some(pb::invite_team_member_request::Trainer::TrainerEmail(
                        email.clone(),
                    )),
                    request_id: String::new(),
                },
                &lead_token,
            ))
            .await
            .expect_err("no trainer to invite");
        answers.push(
            [contract, team]
                .map(|status| (status.code(), reason(&status), status.message().to_owned())),
        );
    }
    assert_eq!(answers[0], answers[1], "the answers tell the two apart");
    assert_eq!(answers[0][0].1, "TRAINER_NOT_FOUND");
}

#[tokio::test]
async fn every_event_of_edge_but_valid_input_reaches_the_audit_log_and_none_is_dead_lettered() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (trainer_id, trainer_email, trainer_token) = member(&sandbox, "Ana").await;
    let (lead_id, _, lead_token) = trainer(&sandbox, "Lena").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let mut client = tenancy(&sandbox, "gateway");
    let admin = sandbox.db.admin_pool().await;

    let mut profile = trainer_profile();
    profile.business_name = "É".repeat(200);
    profile.bio = "ligne\r\n\tsuivante ".repeat(250);
    profile.specializations = (0..20).map(|index| format!("spécialité {index}")).collect();
    profile.settings = (0..20)
        .map(|index| (format!("key.{index}_x"), "ü".repeat(1000)))
        .collect();
    client
        .create_trainer(bearer(
            pb::CreateTrainerRequest {
                trainer: Some(profile),
                request_id: new_id(),
            },
            &trainer_token,
        ))
        .await
        .expect("an edge-but-valid profile");
    let mut studio = studio_profile(&"Ñ".repeat(200), "");
    studio.bank_account = Some(valid_bank_account());
    studio.settings = [("note".to_owned(), "🧘".repeat(1000))].into();
    let studio = client
        .create_studio(bearer(
            pb::CreateStudioRequest {
                studio: Some(studio),
                request_id: new_id(),
            },
            &owner_token,
        ))
        .await
        .expect("an edge-but-valid studio")
        .into_inner()
        .studio
        .expect("studio");
    let contract = invite(&sandbox, &owner_token, &studio.id, &trainer_email)
        .await
        .expect("invite");
    client
        .accept_contract(bearer(
            pb::AcceptContractRequest {
                contract_id: contract.id.clone(),
                etag: String::new(),
            },
            &trainer_token,
        ))
        .await
        .expect("accept");
    client
        .add_rate_version(bearer(
            pb::AddRateVersionRequest {
                contract_id: contract.id.clone(),
                rates: rates("9999999999.99", Some(today() + Days::new(1))),
            },
            &owner_token,
        ))
        .await
        .expect("the largest rate");
    client
        .get_trainer_bank_account(bearer(
            pb::GetTrainerBankAccountRequest {
                trainer_id: trainer_id.clone(),
            },
            &trainer_token,
        ))
        .await
        .expect("read");
    client
        .get_studio_bank_account(bearer(
            pb::GetStudioBankAccountRequest {
                studio_id: studio.id.clone(),
            },
            &owner_token,
        ))
        .await
        .expect("read");
    tenancy(&sandbox, "billing")
        .get_tax_profile(pb::GetTaxProfileRequest {
            trainer_id: trainer_id.clone(),
        })
        .await
        .expect("billing reads");
    let invitation = invite_to_team(&sandbox, &lead_token, &lead_id, &trainer_email)
        .await
        .expect("team invitation");
    answer(&sandbox, &trainer_token, &invitation.id, true)
        .await
        .expect("join");
    client
        .leave_team(bearer(
            pb::LeaveTeamRequest {
                trainer_id: trainer_id.clone(),
            },
            &lead_token,
        ))
        .await
        .expect("the lead removes her");
    client
        .end_contract(bearer(
            pb::EndContractRequest {
                contract_id: contract.id.clone(),
                end_date: date(today() + Days::new(400)),
                etag: String::new(),
            },
            &trainer_token,
        ))
        .await
        .expect("end");

    // Every other change: a full studio update, a delete and a restore, a
    // trainer update.
    let mut changed = studio_profile("Studio Renommé", "");
    changed.id.clone_from(&studio.id);
    changed.contact = Some(pb::Contact {
        phone: "+1 (514) 555-0100".into(),
        email: "Desk@Studio.ca".into(),
        website: "https://studio.ca/é".into(),
    });
    changed.payment_terms = Some(pb::PaymentTerms {
        frequency: pb::PaymentFrequency::Biweekly as i32,
        net_days: 120,
        preferred_method: pb::PaymentMethod::ETransfer as i32,
    });
    changed.status = pb::StudioStatus::Inactive as i32;
    changed.settings = [("a".to_owned(), String::new())].into();
    client
        .update_studio(bearer(
            pb::UpdateStudioRequest {
                studio: Some(changed),
                update_mask: mask(&["*"]),
                etag: String::new(),
            },
            &owner_token,
        ))
        .await
        .expect("every field at once");
    let (_, _, lone_token) = member(&sandbox, "Lou").await;
    let lone = create_studio(&sandbox, &lone_token, "Seul", "").await;
    for delete in [true, false] {
        if delete {
            client
                .delete_studio(bearer(
                    pb::DeleteStudioRequest {
                        studio_id: lone.id.clone(),
                        etag: lone.etag.clone(),
                    },
                    &lone_token,
                ))
                .await
                .expect("delete");
        } else {
            client
                .undelete_studio(bearer(
                    pb::UndeleteStudioRequest {
                        studio_id: lone.id.clone(),
                    },
                    &lone_token,
                ))
                .await
                .expect("undelete");
        }
    }
    client
        .update_trainer(bearer(
            pb::UpdateTrainerRequest {
                trainer: Some(pb::Trainer {
                    id: trainer_id.clone(),
                    bank_account: None,
                    ..Default::default()
                }),
                update_mask: mask(&["bank_account", "settings", "hourly_rate"]),
                etag: String::new(),
            },
            &trainer_token,
        ))
        .await
        .expect("clear three fields");

    // The relay drains the outbox into the audit log.
    let mut drained = false;
    for _ in 0..150 {
        let left = outbox_events(&admin).await;
        if left == 0 {
            drained = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(drained, "the outbox never drained");
    let dead: Vec<String> = sqlx::query_scalar("SELECT reason FROM tenancy.outbox_dead_letters")
        .fetch_all(&admin)
        .await
        .expect("dead letters");
    assert!(dead.is_empty(), "refused by audit: {dead:?}");
    let logged: Vec<String> = sqlx::query_scalar(
        "SELECT resource_type || ' ' || action FROM ( \
           SELECT resource_type, action::text FROM audit.audit_log WHERE source_service = 'tenancy' \
           UNION ALL \
           SELECT resource_type, action::text FROM audit.access_log WHERE source_service = 'tenancy' \
         ) AS logged ORDER BY 1",
    )
    .fetch_all(&admin)
    .await
    .expect("audit log");
    // Two profiles, a studio, a contract accepted and ended, a rate version,
    // an invitation answered, a team joined and left, three reads, a studio
    // updated, another created, deleted and restored, a trainer updated.
    assert_eq!(logged.len(), 19, "{logged:?}");
    let reads = logged.iter().filter(|kind| kind.ends_with("read")).count();
    assert_eq!(reads, 3, "two bank accounts and a tax profile: {logged:?}");
}

#[tokio::test]
async fn a_studio_deleted_while_it_invites_a_trainer_never_keeps_a_live_contract() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let admin = sandbox.db.admin_pool().await;
    let client = tenancy(&sandbox, "gateway");
    for round in 0..8 {
        let (_, trainer_email, _) = trainer(&sandbox, &format!("Ana{round}")).await;
        let studio = create_studio(&sandbox, &owner_token, &format!("S{round}"), "").await;
        let mut deleting = client.clone();
        let (invited, deleted) = tokio::join!(
            invite(&sandbox, &owner_token, &studio.id, &trainer_email),
            deleting.delete_studio(bearer(
                pb::DeleteStudioRequest {
                    studio_id: studio.id.clone(),
                    etag: String::new(),
                },
                &owner_token,
            ))
        );
        match (&invited, &deleted) {
            (Ok(_), Err(status)) => assert_eq!(reason(status), "STUDIO_IN_USE", "round {round}"),
            (Err(status), Ok(_)) => {
                assert_eq!(reason(status), "RESOURCE_DELETED", "round {round}");
            }
            _ => panic!("round {round}: {invited:?} / {deleted:?}"),
        }
    }
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tenancy.contracts c JOIN tenancy.studios s ON s.id = c.studio_id \
         WHERE s.deleted_at IS NOT NULL AND c.state IN ('invited', 'active')",
    )
    .fetch_one(&admin)
    .await
    .expect("orphans");
    assert_eq!(orphans, 0);
}

#[tokio::test]
async fn out_of_range_numbers_are_refused_by_field() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY]).await;
    let (trainer_id, _, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let admin = sandbox.db.admin_pool().await;
    let before = digest(&admin).await;
    let mut client = tenancy(&sandbox, "gateway");

    for size in [-1, i32::MIN] {
        let outcome = client
            .list_studios(bearer(
                pb::ListStudiosRequest {
                    page_size: size,
                    ..Default::default()
                },
                &owner_token,
            ))
            .await;
        assert_refused_on(outcome, "page_size", "studios");
        let outcome = client
            .list_contracts(bearer(
                pb::ListContractsRequest {
                    party: Some(pb::list_contracts_request::Party::TrainerId(
                        trainer_id.clone(),
                    )),
                    page_size: size,
                    ..Default::default()
                },
                &trainer_token,
            ))
            .await;
        assert_refused_on(outcome, "page_size", "contracts");
    }
    for limit in [-1, 10_001, i32::MAX] {
        let outcome = tenancy(&sandbox, IDENTITY)
            .get_acting_for(pb::GetActingForRequest {
                user_id: trainer_id.clone(),
                limit,
            })
            .await;
        assert_refused_on(outcome, "limit", &format!("{limit}"));
    }
    for net_days in [-1, 121, i32::MAX] {
        let mut hostile = studio_profile("Studio Nord", "");
        hostile.id.clone_from(&studio.id);
        hostile.payment_terms = Some(pb::PaymentTerms {
            frequency: pb::PaymentFrequency::Monthly as i32,
            net_days,
            preferred_method: pb::PaymentMethod::Cheque as i32,
        });
        let outcome = client
            .update_studio(bearer(
                pb::UpdateStudioRequest {
                    studio: Some(hostile),
                    update_mask: mask(&["payment_terms"]),
                    etag: String::new(),
                },
                &owner_token,
            ))
            .await;
        assert_refused_on(
            outcome,
            "studio.payment_terms.net_days",
            &format!("{net_days}"),
        );
    }
    for amount in ["10000000000", "-1", "1e3", "0.001", "١٢", "NaN", "Infinity"] {
        let mut hostile = trainer_profile();
        hostile.id.clone_from(&trainer_id);
        hostile.hourly_rate = cad(amount);
        let outcome = client
            .update_trainer(bearer(
                pb::UpdateTrainerRequest {
                    trainer: Some(hostile),
                    update_mask: mask(&["hourly_rate"]),
                    etag: String::new(),
                },
                &trainer_token,
            ))
            .await;
        assert_refused_on(outcome, "trainer.hourly_rate", amount);
    }
    for rate in ["100.01", "-0.01", "1.005", "1e2", "NaN", ""] {
        let mut version = rates("50", Some(today() + Days::new(2)));
        if let Some(version) = version.as_mut() {
            version.commission_rate = rate.into();
        }
        let outcome = client
            .add_rate_version(bearer(
                pb::AddRateVersionRequest {
                    contract_id: new_id(),
                    rates: version,
                },
                &owner_token,
            ))
            .await;
        assert_refused_on(outcome, "rates.commission_rate", rate);
    }
    assert_eq!(digest(&admin).await, before, "a refused call wrote");
}

#[tokio::test]
async fn a_search_word_shorter_than_three_characters_matches_whole_words_only() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let seven = create_studio(&sandbox, &owner_token, "Pulse 7", "").await;
    let seventy = create_studio(&sandbox, &owner_token, "Pulse 71", "").await;
    let mut client = tenancy(&sandbox, "gateway");
    let mut found = async |query: &str| -> Vec<String> {
        let mut ids: Vec<String> = client
            .list_studios(bearer(
                pb::ListStudiosRequest {
                    query: query.into(),
                    ..Default::default()
                },
                &owner_token,
            ))
            .await
            .expect("search")
            .into_inner()
            .studios
            .into_iter()
            .map(|studio| studio.id)
            .collect();
        ids.sort();
        ids
    };
    let mut both = vec![seven.id.clone(), seventy.id.clone()];
    both.sort();
    assert_eq!(
        found("puls").await,
        both,
        "three characters or more: a prefix"
    );
    assert_eq!(found("pulse 7").await, [seven.id]);
    assert_eq!(found("pulse 71").await, [seventy.id]);
    assert_eq!(
        found("puls").await,
        both,
        "three characters or more: a prefix"
    );
    assert!(found("pu").await.is_empty(), "two: a whole word");
}
