//! Tenancy end to end: trainers, studio chains, contracts and rates by date,
//! through identity, tenancy and audit over real mTLS — and attacked as
//! another tenant, a wrong peer and a hostile client would.

use chrono::{Datelike, Days, NaiveDate, Utc};
use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::google::r#type::Date;
use fitflow_proto::tenancy as pb;
use fitflow_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use fitflow_proto::types::{Money, PostalAddress, Province};
use tonic::Code;
use tonic::transport::Channel;

use crate::identity_support::{reason, violated_fields};

pub(crate) const TENANCY: &str = "tenancy";

pub(crate) fn tenancy(sandbox: &Sandbox, peer: &str) -> TenancyServiceClient<Channel> {
    TenancyServiceClient::new(sandbox.channel(TENANCY, peer))
}

pub(crate) fn cad(amount: &str) -> Option<Money> {
    Some(Money {
        currency_code: "CAD".into(),
        amount: amount.into(),
    })
}

pub(crate) fn date(day: NaiveDate) -> Option<Date> {
    Some(Date {
        year: day.year(),
        month: i32::try_from(day.month()).unwrap(),
        day: i32::try_from(day.day()).unwrap(),
    })
}

/// Today in Montréal, the studios' zone.
pub(crate) fn today() -> NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::America::Toronto)
        .date_naive()
}

pub(crate) fn rates(group: &str, effective: Option<NaiveDate>) -> Option<pb::RateVersion> {
    Some(pb::RateVersion {
        effective_date: effective.and_then(date),
        group_rate: cad(group),
        individual_rate: cad("90.00"),
        trial_rate: cad("25"),
        commission_rate: "15".into(),
        ..Default::default()
    })
}

pub(crate) fn trainer_profile() -> pb::Trainer {
    pb::Trainer {
        business_name: "Ana Fitness".into(),
        specializations: vec!["strength".into(), "mobility".into()],
        bio: "Coach.\nTwo lines.".into(),
        hourly_rate: cad("85"),
        commission_rate: "12.5".into(),
        time_zone: "America/Toronto".into(),
        province: Province::On as i32,
        tax_profile: Some(pb::TaxProfile {
            supplier_status: pb::SupplierStatus::Registered as i32,
            gst_hst_number: "123456782RT0001".into(),
            qst_number: String::new(),
        }),
        bank_account: Some(pb::BankAccount {
            holder_name: "Ana Example".into(),
            institution_number: "001".into(),
            transit_number: "12345".into(),
            account_number: "7654321".into(),
        }),
        ..Default::default()
    }
}

pub(crate) fn studio_profile(name: &str, parent: &str) -> pb::Studio {
    pb::Studio {
        name: name.into(),
        parent_studio_id: parent.into(),
        business_number: "123456782".into(),
        address: Some(PostalAddress {
            street: "123 rue Saint-Denis".into(),
            city: "Montréal".into(),
            province: Province::Qc as i32,
            postal_code: "h2x1y4".into(),
            country_code: String::new(),
        }),
        time_zone: "America/Toronto".into(),
        is_headquarters: parent.is_empty(),
        billing_consolidated: true,
        ..Default::default()
    }
}

/// A user who signed up and logged in: id, email, access token.
pub(crate) async fn member(sandbox: &Sandbox, name: &str) -> (String, String, String) {
    let (user, email) = sandbox.register(name).await;
    let tokens = sandbox.login(&email).await;
    (user.id, email, tokens.access_token)
}

pub(crate) async fn create_trainer(sandbox: &Sandbox, token: &str) -> pb::Trainer {
    tenancy(sandbox, "gateway")
        .create_trainer(bearer(
            pb::CreateTrainerRequest {
                trainer: Some(trainer_profile()),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .expect("create trainer")
        .into_inner()
        .trainer
        .expect("trainer")
}

pub(crate) async fn create_studio(
    sandbox: &Sandbox,
    token: &str,
    name: &str,
    parent: &str,
) -> pb::Studio {
    tenancy(sandbox, "gateway")
        .create_studio(bearer(
            pb::CreateStudioRequest {
                studio: Some(studio_profile(name, parent)),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .expect("create studio")
        .into_inner()
        .studio
        .expect("studio")
}

pub(crate) async fn invite(
    sandbox: &Sandbox,
    token: &str,
    studio_id: &str,
    trainer_email: &str,
) -> Result<pb::Contract, tonic::Status> {
    tenancy(sandbox, "gateway")
        .create_contract(bearer(
            pb::CreateContractRequest {
                studio_id: studio_id.into(),
                trainer: Some(pb::create_contract_request::Trainer::TrainerEmail(
                    trainer_email.to_uppercase(),
                )),
                role: pb::ContractRole::Contractor as i32,
                start_date: date(today()),
                rates: rates("50", None),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().contract.expect("contract"))
}

pub(crate) async fn rate_on(
    client: &mut TenancyServiceClient<Channel>,
    token: Option<&str>,
    trainer_id: &str,
    studio_id: &str,
    day: NaiveDate,
) -> Result<String, tonic::Status> {
    let message = pb::GetRateRequest {
        trainer_id: trainer_id.into(),
        studio_id: studio_id.into(),
        category: pb::ClassCategory::Group as i32,
        date: date(day),
    };
    let request = match token {
        Some(token) => bearer(message, token),
        None => tonic::Request::new(message),
    };
    client
        .get_rate(request)
        .await
        .map(|response| response.into_inner().rate.expect("rate").amount)
}

#[tokio::test]
async fn a_chain_contracts_a_trainer_and_a_rate_change_never_rewrites_the_past() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (trainer_id, trainer_email, trainer_token) = member(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;

    let trainer = create_trainer(&sandbox, &trainer_token).await;
    assert_eq!(trainer.id, trainer_id);
    assert!(trainer.has_bank_account);
    assert!(
        trainer.bank_account.is_none(),
        "never returned by GetTrainer"
    );
    assert_eq!(trainer.hourly_rate, cad("85.00"));
    assert_eq!(trainer.commission_rate, "12.50");

    let headquarters = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let location = create_studio(&sandbox, &owner_token, "Studio Plateau", &headquarters.id).await;
    assert_eq!(location.parent_studio_id, headquarters.id);
    assert_eq!(
        location.billing_studio_id, headquarters.id,
        "consolidated billing"
    );
    assert_eq!(
        location
            .address
            .as_ref()
            .map(|address| address.postal_code.as_str()),
        Some("H2X 1Y4")
    );

    let contract = invite(&sandbox, &owner_token, &location.id, &trainer_email)
        .await
        .expect("invite by email, in any case");
    assert_eq!(contract.state, pb::ContractState::Invited as i32);
    let mut client = tenancy(&sandbox, "gateway");
    let accepted = client
        .accept_contract(bearer(
            pb::AcceptContractRequest {
                contract_id: contract.id.clone(),
                etag: contract.etag.clone(),
            },
            &trainer_token,
        ))
        .await
        .expect("the trainer accepts")
        .into_inner()
        .contract
        .expect("contract");
    assert_eq!(accepted.state, pb::ContractState::Active as i32);

    let change_day = today().checked_add_days(Days::new(15)).unwrap();
    client
        .add_rate_version(bearer(
            pb::AddRateVersionRequest {
                contract_id: contract.id.clone(),
                rates: rates("60", Some(change_day)),
            },
            &owner_token,
        ))
        .await
        .expect("a new rate from mid-month");

    let before = today().checked_add_days(Days::new(3)).unwrap();
    let after = today().checked_add_days(Days::new(20)).unwrap();
    for token in [Some(owner_token.as_str()), Some(trainer_token.as_str())] {
        assert_eq!(
            rate_on(&mut client, token, &trainer_id, &location.id, before)
                .await
                .unwrap(),
            "50.00"
        );
        assert_eq!(
            rate_on(&mut client, token, &trainer_id, &location.id, after)
                .await
                .unwrap(),
            "60.00"
        );
    }
    // Billing asks without a user token, over its own certificate.
    let mut billing = tenancy(&sandbox, "billing");
    assert_eq!(
        rate_on(&mut billing, None, &trainer_id, &location.id, change_day)
            .await
            .unwrap(),
        "60.00"
    );
    let before_contract = today().checked_sub_days(Days::new(1)).unwrap();
    let refused = rate_on(
        &mut billing,
        None,
        &trainer_id,
        &location.id,
        before_contract,
    )
    .await
    .expect_err("no contract yesterday");
    assert_eq!(reason(&refused), "NO_CONTRACT_ON_DATE");

    // The past is never rewritten, and a version is never replaced.
    for (effective, expected) in [
        (before_contract, "RATE_BACKDATED"),
        (change_day, "RATE_VERSION_EXISTS"),
    ] {
        let refused = client
            .add_rate_version(bearer(
                pb::AddRateVersionRequest {
                    contract_id: contract.id.clone(),
                    rates: rates("70", Some(effective)),
                },
                &owner_token,
            ))
            .await
            .expect_err("refused");
        assert_eq!(reason(&refused), expected);
    }
    let versions = client
        .list_rate_versions(bearer(
            pb::ListRateVersionsRequest {
                contract_id: contract.id.clone(),
            },
            &trainer_token,
        ))
        .await
        .expect("versions")
        .into_inner()
        .versions;
    assert_eq!(versions.len(), 2);

    // Billing reads the tax profile an invoice prints.
    let tax = billing
        .get_tax_profile(pb::GetTaxProfileRequest {
            trainer_id: trainer_id.clone(),
        })
        .await
        .expect("tax profile")
        .into_inner();
    assert_eq!(
        tax.tax_profile.map(|profile| profile.gst_hst_number),
        Some("123456782RT0001".to_owned())
    );

    // Search by a city prefix, accents ignored.
    let found = client
        .list_studios(bearer(
            pb::ListStudiosRequest {
                query: "montreal plat".into(),
                ..Default::default()
            },
            &trainer_token,
        ))
        .await
        .expect("search")
        .into_inner()
        .studios;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, location.id);
    assert!(
        found[0].business_number.is_empty(),
        "a trainer sees the directory card only"
    );

    // Identity's view of what the owner acts for: both studios.
    let acting = tenancy(&sandbox, "identity")
        .get_acting_for(pb::GetActingForRequest {
            user_id: headquarters.owner_id.clone(),
            limit: 0,
        })
        .await
        .expect("acting for")
        .into_inner();
    assert_eq!(acting.studio_ids.len(), 2);
    assert!(!acting.truncated);
}

#[tokio::test]
async fn another_tenant_and_the_wrong_peer_see_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (trainer_id, trainer_email, trainer_token) = member(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let (_, _, intruder_token) = member(&sandbox, "Mallory").await;
    create_trainer(&sandbox, &trainer_token).await;
    create_trainer(&sandbox, &intruder_token).await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let contract = invite(&sandbox, &owner_token, &studio.id, &trainer_email)
        .await
        .expect("invite");
    let mut client = tenancy(&sandbox, "gateway");
    macro_rules! as_intruder {
        ($message:expr) => {
            bearer($message, &intruder_token)
        };
    }

    let not_found = [
        client
            .get_trainer(as_intruder!(pb::GetTrainerRequest {
                trainer_id: trainer_id.clone(),
            }))
            .await
            .map(drop),
        client
            .update_trainer(as_intruder!(pb::UpdateTrainerRequest {
                trainer: Some(pb::Trainer {
                    id: trainer_id.clone(),
                    business_name: "pwned".into(),
                    ..Default::default()
                }),
                update_mask: None,
                etag: String::new(),
            }))
            .await
            .map(drop),
        client
            .get_trainer_bank_account(as_intruder!(pb::GetTrainerBankAccountRequest {
                trainer_id: trainer_id.clone(),
            }))
            .await
            .map(drop),
        client
            .get_contract(as_intruder!(pb::GetContractRequest {
                contract_id: contract.id.clone(),
            }))
            .await
            .map(drop),
        client
            .accept_contract(as_intruder!(pb::AcceptContractRequest {
                contract_id: contract.id.clone(),
                etag: String::new(),
            }))
            .await
            .map(drop),
        client
            .add_rate_version(as_intruder!(pb::AddRateVersionRequest {
                contract_id: contract.id.clone(),
                rates: rates("1", Some(today())),
            }))
            .await
            .map(drop),
        client
            .list_contracts(as_intruder!(pb::ListContractsRequest {
                party: Some(pb::list_contracts_request::Party::TrainerId(
                    trainer_id.clone(),
                )),
                ..Default::default()
            }))
            .await
            .map(drop),
        rate_on(
            &mut client,
            Some(&intruder_token),
            &trainer_id,
            &studio.id,
            today(),
        )
        .await
        .map(drop),
    ];
    for (index, outcome) in not_found.into_iter().enumerate() {
        let status = outcome.expect_err("another tenant is refused");
        assert_eq!(status.code(), Code::NotFound, "call {index}: {status:?}");
    }

    let not_managed = [
        client
            .update_studio(as_intruder!(pb::UpdateStudioRequest {
                studio: Some(pb::Studio {
                    id: studio.id.clone(),
                    name: "pwned".into(),
                    ..Default::default()
                }),
                update_mask: None,
                etag: String::new(),
            }))
            .await
            .map(drop),
        client
            .delete_studio(as_intruder!(pb::DeleteStudioRequest {
                studio_id: studio.id.clone(),
                etag: String::new(),
            }))
            .await
            .map(drop),
        client
            .get_studio_bank_account(as_intruder!(pb::GetStudioBankAccountRequest {
                studio_id: studio.id.clone(),
            }))
            .await
            .map(drop),
        client
            .list_contracts(as_intruder!(pb::ListContractsRequest {
                party: Some(pb::list_contracts_request::Party::StudioId(
                    studio.id.clone()
                )),
                ..Default::default()
            }))
            .await
            .map(drop),
        invite(&sandbox, &intruder_token, &studio.id, &trainer_email)
            .await
            .map(drop),
    ];
    for (index, outcome) in not_managed.into_iter().enumerate() {
        let status = outcome.expect_err("a foreign studio is refused");
        assert_eq!(
            reason(&status),
            "STUDIO_NOT_MANAGED",
            "call {index}: {status:?}"
        );
    }
    let hijack = client
        .create_studio(as_intruder!(pb::CreateStudioRequest {
            studio: Some(studio_profile("Franchise", &studio.id)),
            request_id: String::new(),
        }))
        .await
        .expect_err("no location under another owner's chain");
    assert_eq!(reason(&hijack), "CHAIN_INVALID");

    // Each side keeps to its own powers.
    let studio_accepting = client
        .accept_contract(bearer(
            pb::AcceptContractRequest {
                contract_id: contract.id.clone(),
                etag: String::new(),
            },
            &owner_token,
        ))
        .await
        .expect_err("the studio cannot accept for the trainer");
    assert_eq!(reason(&studio_accepting), "NOT_THE_TRAINER");
    let trainer_pricing = client
        .add_rate_version(bearer(
            pb::AddRateVersionRequest {
                contract_id: contract.id.clone(),
                rates: rates("500", Some(today())),
            },
            &trainer_token,
        ))
        .await
        .expect_err("a trainer cannot set their own rates");
    assert_eq!(reason(&trainer_pricing), "STUDIO_NOT_MANAGED");

    // Internal RPCs refuse the wrong peers.
    let tax_via_gateway = tenancy(&sandbox, "gateway")
        .get_tax_profile(bearer(
            pb::GetTaxProfileRequest {
                trainer_id: trainer_id.clone(),
            },
            &intruder_token,
        ))
        .await
        .expect_err("only billing reads tax profiles");
    assert_eq!(reason(&tax_via_gateway), "PEER_NOT_ALLOWED");
    let acting_via_gateway = tenancy(&sandbox, "gateway")
        .get_acting_for(pb::GetActingForRequest {
            user_id: trainer_id.clone(),
            limit: 0,
        })
        .await
        .expect_err("only services ask what a user acts for");
    assert_eq!(reason(&acting_via_gateway), "PEER_NOT_ALLOWED");
    let rate_via_clients = tenancy(&sandbox, "clients")
        .get_rate(pb::GetRateRequest::default())
        .await
        .expect_err("clients may not ask for rates");
    assert_eq!(reason(&rate_via_clients), "PEER_NOT_ALLOWED");

    // Nothing changed behind the refusals.
    let unchanged = client
        .get_trainer(bearer(
            pb::GetTrainerRequest {
                trainer_id: trainer_id.clone(),
            },
            &trainer_token,
        ))
        .await
        .expect("own profile")
        .into_inner()
        .trainer
        .expect("trainer");
    assert_eq!(unchanged.business_name, "Ana Fitness");
}

#[tokio::test]
async fn hostile_input_gets_field_violations_and_writes_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, token) = member(&sandbox, "Olivia").await;
    let mut client = tenancy(&sandbox, "gateway");

    let mut hostile = studio_profile("Studio\u{0}Nord", "");
    hostile.address = Some(PostalAddress {
        street: "1 rue\u{7}".into(),
        city: "Montréal".into(),
        province: Province::On as i32,
        postal_code: "H2X 1Y4".into(),
        country_code: "US".into(),
    });
    hostile.time_zone = "Mars/Olympus".into();
    hostile.business_number = "123456789".into();
    let refused = client
        .create_studio(bearer(
            pb::CreateStudioRequest {
                studio: Some(hostile),
                request_id: "not-a-uuid".into(),
            },
            &token,
        ))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields = violated_fields(&refused);
    for field in [
        "request_id",
        "studio.name",
        "studio.address.street",
        "studio.address.country_code",
        "studio.address.postal_code",
        "studio.time_zone",
        "studio.business_number",
    ] {
        assert!(
            fields.iter().any(|named| named == field),
            "{field} in {fields:?}"
        );
    }

    let mut profile = trainer_profile();
    profile.tax_profile = Some(pb::TaxProfile {
        supplier_status: pb::SupplierStatus::Registered as i32,
        gst_hst_number: "123456789RT0001".into(),
        qst_number: String::new(),
    });
    profile.hourly_rate = cad("1e3");
    profile.commission_rate = "100.5".into();
    profile.settings.insert("Bad Key".into(), "x".into());
    let refused = client
        .create_trainer(bearer(
            pb::CreateTrainerRequest {
                trainer: Some(profile),
                request_id: String::new(),
            },
            &token,
        ))
        .await
        .expect_err("refused");
    let fields = violated_fields(&refused);
    for field in [
        "trainer.tax_profile.gst_hst_number",
        "trainer.hourly_rate",
        "trainer.commission_rate",
        "trainer.settings",
    ] {
        assert!(
            fields.iter().any(|named| named == field),
            "{field} in {fields:?}"
        );
    }

    // A forged page token and an out-of-range date.
    let forged = client
        .list_studios(bearer(
            pb::ListStudiosRequest {
                page_token: "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                    .into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect_err("forged token");
    assert_eq!(violated_fields(&forged), ["page_token"]);
    let far = client
        .get_rate(bearer(
            pb::GetRateRequest {
                trainer_id: uuid::Uuid::new_v4().to_string(),
                studio_id: uuid::Uuid::new_v4().to_string(),
                category: pb::ClassCategory::Trial as i32,
                date: Some(Date {
                    year: -5000,
                    month: 1,
                    day: 1,
                }),
            },
            &token,
        ))
        .await
        .expect_err("a date PostgreSQL cannot hold");
    assert_eq!(violated_fields(&far), ["date"]);

    // Nothing was written by the refused calls.
    let admin = sandbox.db.admin_pool().await;
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM tenancy.studios) + (SELECT count(*) FROM tenancy.trainers) \
         + (SELECT count(*) FROM tenancy.audit_outbox)",
    )
    .fetch_one(&admin)
    .await
    .expect("count");
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn a_chain_never_becomes_a_cycle_nor_deeper_than_four_levels() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, token) = member(&sandbox, "Olivia").await;
    let top = create_studio(&sandbox, &token, "Top", "").await;
    let second = create_studio(&sandbox, &token, "Second", &top.id).await;
    let third = create_studio(&sandbox, &token, "Third", &second.id).await;
    let fourth = create_studio(&sandbox, &token, "Fourth", &third.id).await;
    let mut client = tenancy(&sandbox, "gateway");

    let too_deep = client
        .create_studio(bearer(
            pb::CreateStudioRequest {
                studio: Some(studio_profile("Fifth", &fourth.id)),
                request_id: String::new(),
            },
            &token,
        ))
        .await
        .expect_err("five levels");
    assert_eq!(reason(&too_deep), "CHAIN_INVALID");

    let cycle = client
        .update_studio(bearer(
            pb::UpdateStudioRequest {
                studio: Some(pb::Studio {
                    id: top.id.clone(),
                    parent_studio_id: third.id.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["parent_studio_id".into()],
                }),
                etag: top.etag.clone(),
            },
            &token,
        ))
        .await
        .expect_err("a studio below its own location");
    assert_eq!(reason(&cycle), "CHAIN_INVALID");

    let in_use = client
        .delete_studio(bearer(
            pb::DeleteStudioRequest {
                studio_id: third.id.clone(),
                etag: String::new(),
            },
            &token,
        ))
        .await
        .expect_err("a studio with live locations stays");
    assert_eq!(reason(&in_use), "STUDIO_IN_USE");
}

#[tokio::test]
async fn a_hundred_parallel_invitations_make_one_contract() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, trainer_email, trainer_token) = member(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    create_trainer(&sandbox, &trainer_token).await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;

    let attempts = (0..100).map(|_| invite(&sandbox, &owner_token, &studio.id, &trainer_email));
    let outcomes = futures::future::join_all(attempts).await;
    let created = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(created, 1, "one live contract per trainer and studio");
    for outcome in outcomes.iter().filter_map(|outcome| outcome.as_ref().err()) {
        assert_eq!(reason(outcome), "CONTRACT_EXISTS", "{outcome:?}");
    }
}

pub(crate) async fn invite_to_team(
    sandbox: &Sandbox,
    token: &str,
    leader_id: &str,
    trainer_email: &str,
) -> Result<pb::TeamInvitation, tonic::Status> {
    tenancy(sandbox, "gateway")
        .invite_team_member(bearer(
            pb::InviteTeamMemberRequest {
                leader_id: leader_id.into(),
                trainer: Some(pb::invite_team_member_request::Trainer::TrainerEmail(
                    trainer_email.into(),
                )),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().invitation.expect("invitation"))
}

pub(crate) async fn answer(
    sandbox: &Sandbox,
    token: &str,
    invitation_id: &str,
    accept: bool,
) -> Result<pb::TeamInvitation, tonic::Status> {
    tenancy(sandbox, "gateway")
        .answer_team_invitation(bearer(
            pb::AnswerTeamInvitationRequest {
                invitation_id: invitation_id.into(),
                accept,
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().invitation.expect("invitation"))
}

/// A trainer with a profile: id, email, token.
pub(crate) async fn trainer(sandbox: &Sandbox, name: &str) -> (String, String, String) {
    let (id, email, token) = member(sandbox, name).await;
    create_trainer(sandbox, &token).await;
    (id, email, token)
}

pub(crate) async fn sees_trainer(sandbox: &Sandbox, token: &str, trainer_id: &str) -> Code {
    match tenancy(sandbox, "gateway")
        .get_trainer(bearer(
            pb::GetTrainerRequest {
                trainer_id: trainer_id.into(),
            },
            token,
        ))
        .await
    {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test]
async fn a_lead_sees_a_member_only_while_the_member_is_in_the_team() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (lead_id, _, lead_token) = trainer(&sandbox, "Lena").await;
    let (member_id, member_email, member_token) = trainer(&sandbox, "Milo").await;
    assert_eq!(
        sees_trainer(&sandbox, &lead_token, &member_id).await,
        Code::NotFound
    );

    let invitation = invite_to_team(&sandbox, &lead_token, &lead_id, &member_email)
        .await
        .expect("invite by email");
    let pending = tenancy(&sandbox, "gateway")
        .list_team_invitations(bearer(
            pb::ListTeamInvitationsRequest {
                trainer_id: member_id.clone(),
            },
            &member_token,
        ))
        .await
        .expect("the invitee sees it")
        .into_inner()
        .invitations;
    assert_eq!(pending.len(), 1);
    let refused = answer(&sandbox, &lead_token, &invitation.id, true)
        .await
        .expect_err("the lead cannot accept for the invitee");
    assert_eq!(reason(&refused), "TEAM_INVITATION_NOT_FOUND");
    let accepted = answer(&sandbox, &member_token, &invitation.id, true)
        .await
        .expect("accept");
    assert_eq!(accepted.state, pb::TeamInvitationState::Accepted as i32);

    assert_eq!(
        sees_trainer(&sandbox, &lead_token, &member_id).await,
        Code::Ok
    );
    let members = tenancy(&sandbox, "gateway")
        .list_team_members(bearer(
            pb::ListTeamMembersRequest {
                leader_id: lead_id.clone(),
            },
            &lead_token,
        ))
        .await
        .expect("members")
        .into_inner()
        .members;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].parent_trainer_id, lead_id);

    let left = tenancy(&sandbox, "gateway")
        .leave_team(bearer(
            pb::LeaveTeamRequest {
                trainer_id: member_id.clone(),
            },
            &member_token,
        ))
        .await
        .expect("leave")
        .into_inner()
        .trainer
        .expect("trainer");
    assert!(left.parent_trainer_id.is_empty());
    assert_eq!(
        sees_trainer(&sandbox, &lead_token, &member_id).await,
        Code::NotFound
    );
}

#[tokio::test]
async fn a_team_never_becomes_a_cycle_even_when_both_accept_at_once() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (a_id, a_email, a_token) = trainer(&sandbox, "Ada").await;
    let (b_id, b_email, b_token) = trainer(&sandbox, "Bea").await;
    // Each invites the other before either has answered.
    let a_invites_b = invite_to_team(&sandbox, &a_token, &a_id, &b_email)
        .await
        .expect("a→b");
    let b_invites_a = invite_to_team(&sandbox, &b_token, &b_id, &a_email)
        .await
        .expect("b→a");
    let (first, second) = tokio::join!(
        answer(&sandbox, &b_token, &a_invites_b.id, true),
        answer(&sandbox, &a_token, &b_invites_a.id, true),
    );
    let outcomes = [first, second];
    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 1);
    let refused = outcomes
        .iter()
        .find_map(|outcome| outcome.as_ref().err())
        .expect("one refused");
    assert_eq!(reason(refused), "TEAM_INVALID");

    // Nor deeper than four levels: a chain of four leads, then a fifth.
    let (c_id, c_email, c_token) = trainer(&sandbox, "Cal").await;
    let (d_id, d_email, d_token) = trainer(&sandbox, "Dov").await;
    let (_, e_email, e_token) = trainer(&sandbox, "Eve").await;
    // Whoever leads now (a or b) is the top; the other is level 2.
    let (top_second_id, top_second_token) = if outcomes[0].is_ok() {
        (b_id.clone(), b_token.clone())
    } else {
        (a_id.clone(), a_token.clone())
    };
    let to_c = invite_to_team(&sandbox, &top_second_token, &top_second_id, &c_email)
        .await
        .expect("level 3");
    answer(&sandbox, &c_token, &to_c.id, true)
        .await
        .expect("join");
    let to_d = invite_to_team(&sandbox, &c_token, &c_id, &d_email)
        .await
        .expect("level 4");
    answer(&sandbox, &d_token, &to_d.id, true)
        .await
        .expect("join");
    let too_deep = match invite_to_team(&sandbox, &d_token, &d_id, &e_email).await {
        Ok(invitation) => answer(&sandbox, &e_token, &invitation.id, true)
            .await
            .expect_err("a fifth level"),
        Err(status) => status,
    };
    assert_eq!(reason(&too_deep), "TEAM_INVALID");
}

#[tokio::test]
async fn strangers_cannot_touch_a_team() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (lead_id, _, lead_token) = trainer(&sandbox, "Lena").await;
    let (member_id, member_email, member_token) = trainer(&sandbox, "Milo").await;
    let (_, _, intruder_token) = trainer(&sandbox, "Mallory").await;
    let invitation = invite_to_team(&sandbox, &lead_token, &lead_id, &member_email)
        .await
        .expect("invite");

    let hijack = answer(&sandbox, &intruder_token, &invitation.id, true)
        .await
        .expect_err("a stranger answers nothing");
    assert_eq!(reason(&hijack), "TEAM_INVITATION_NOT_FOUND");
    let forged_lead = invite_to_team(&sandbox, &intruder_token, &lead_id, &member_email)
        .await
        .expect_err("nobody invites into another's team");
    assert_eq!(reason(&forged_lead), "TRAINER_NOT_FOUND");
    answer(&sandbox, &member_token, &invitation.id, true)
        .await
        .expect("join");
    let removal = tenancy(&sandbox, "gateway")
        .leave_team(bearer(
            pb::LeaveTeamRequest {
                trainer_id: member_id.clone(),
            },
            &intruder_token,
        ))
        .await
        .expect_err("a stranger removes no one");
    assert_eq!(reason(&removal), "TRAINER_NOT_FOUND");
    let listing = tenancy(&sandbox, "gateway")
        .list_team_members(bearer(
            pb::ListTeamMembersRequest {
                leader_id: lead_id.clone(),
            },
            &intruder_token,
        ))
        .await
        .expect_err("a stranger lists no team");
    assert_eq!(reason(&listing), "TRAINER_NOT_FOUND");
    // The lead removes the member; the member is still there until then.
    assert_eq!(
        sees_trainer(&sandbox, &lead_token, &member_id).await,
        Code::Ok
    );
    tenancy(&sandbox, "gateway")
        .leave_team(bearer(
            pb::LeaveTeamRequest {
                trainer_id: member_id.clone(),
            },
            &lead_token,
        ))
        .await
        .expect("the lead removes the member");
    assert_eq!(
        sees_trainer(&sandbox, &lead_token, &member_id).await,
        Code::NotFound
    );
}

/// The claims of an access token, read without verifying it (the services
/// verify; this only looks).
pub(crate) fn claims_of(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

pub(crate) fn ids(claims: &serde_json::Value, name: &str) -> Vec<String> {
    claims[name]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn member_trail(sandbox: &Sandbox, token: &str, member_id: &str) -> Code {
    let request = fitflow_proto::audit::ListEventsRequest {
        filter: Some(fitflow_proto::audit::EventFilter {
            tenant_id: member_id.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    match fitflow_proto::audit::audit_service_client::AuditServiceClient::new(
        sandbox.channel(AUDIT, "gateway"),
    )
    .list_events(bearer(request, token))
    .await
    {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test]
async fn a_token_carries_the_team_and_studios_from_tenancy_so_other_services_honour_them() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (lead_id, lead_email, lead_token) = trainer(&sandbox, "Lena").await;
    let (member_id, member_email, member_token) = trainer(&sandbox, "Milo").await;
    assert!(ids(&claims_of(&lead_token), "sup").is_empty());
    assert_eq!(
        member_trail(&sandbox, &lead_token, &member_id).await,
        Code::PermissionDenied,
        "not yet the lead"
    );
    // After the studio is created, the lead's token is stale at audit
    // (TOKEN_STALE) until refreshed: the login below is that refresh.
    let studio = create_studio(&sandbox, &lead_token, "Studio Nord", "").await;

    let invitation = invite_to_team(&sandbox, &lead_token, &lead_id, &member_email)
        .await
        .expect("invite");
    answer(&sandbox, &member_token, &invitation.id, true)
        .await
        .expect("join");
    sandbox.structure_settled().await;
    let lead_token = sandbox.login(&lead_email).await.access_token;
    let claims = claims_of(&lead_token);
    assert_eq!(ids(&claims, "sup"), vec![member_id.clone()]);
    assert_eq!(ids(&claims, "studios"), vec![studio.id.clone()]);
    assert!(claims.get("claims_partial").is_none());
    // Audit, another service, now lets the lead read the member's trail.
    assert_eq!(
        member_trail(&sandbox, &lead_token, &member_id).await,
        Code::Ok
    );
}

#[tokio::test]
async fn a_token_issued_while_tenancy_is_down_is_partial_and_grants_only_the_user_itself() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let (user_id, email, _) = member(&sandbox, "Ana").await;
    let token = sandbox.login(&email).await.access_token;
    let claims = claims_of(&token);
    assert_eq!(claims["claims_partial"], serde_json::Value::Bool(true));
    assert!(ids(&claims, "sup").is_empty());
    assert_eq!(member_trail(&sandbox, &token, &user_id).await, Code::Ok);
}

/// Runs `fitflow bench` against the sandbox's identity and tenancy.
pub(crate) async fn bench(sandbox: &Sandbox, scenario: &str, seed: &str) -> std::process::Output {
    use secrecy::ExposeSecret as _;
    tokio::process::Command::new(fitflow_e2e::fitflow_binary())
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
            "--tenancy-endpoint",
            &format!("https://127.0.0.1:{}", sandbox.ports[TENANCY]),
        ])
        .env_clear()
        .env("FITFLOW_TLS_DIR", &sandbox.certs.dir)
        .env("FITFLOW_DEV_INSECURE", "1")
        .env(
            "FITFLOW_ADMIN_DATABASE_URL",
            sandbox.db.admin_url().expose_secret(),
        )
        .env("FITFLOW_LOG", "error")
        .output()
        .await
        .expect("run fitflow bench")
}

#[tokio::test]
async fn the_tenancy_bench_seeds_and_runs_every_scenario_without_errors() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    for (scenario, seed) in [
        ("trainer", "0"),
        ("studio-search", "2000"),
        ("rate", "1000"),
    ] {
        let output = bench(&sandbox, scenario, seed).await;
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{scenario}: {printed}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Figures are printed, never asserted: only that requests succeeded.
        assert!(printed.contains(" ok, 0 failed"), "{scenario}: {printed}");
    }
    let admin = sandbox.db.admin_pool().await;
    let (studios, versions): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM tenancy.studios), (SELECT count(*) FROM tenancy.rate_versions)",
    )
    .fetch_one(&admin)
    .await
    .expect("counts");
    assert!(
        studios >= 2000 && versions >= 1000,
        "{studios} studios, {versions} versions"
    );
}

#[tokio::test]
async fn a_stranger_writing_a_bank_account_creates_no_data_key() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let (_, _, intruder_token) = member(&sandbox, "Mallory").await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    let victim_trainer = uuid::Uuid::new_v4().to_string();
    let bank_account = trainer_profile().bank_account;
    let mut client = tenancy(&sandbox, "gateway");
    let refused = client
        .update_studio(bearer(
            pb::UpdateStudioRequest {
                studio: Some(pb::Studio {
                    id: studio.id.clone(),
                    bank_account: bank_account.clone(),
                    ..Default::default()
                }),
                update_mask: None,
                etag: String::new(),
            },
            &intruder_token,
        ))
        .await
        .expect_err("not the intruder's studio");
    assert_eq!(reason(&refused), "STUDIO_NOT_MANAGED");
    let refused = client
        .update_trainer(bearer(
            pb::UpdateTrainerRequest {
                trainer: Some(pb::Trainer {
                    id: victim_trainer.clone(),
                    bank_account,
                    ..Default::default()
                }),
                update_mask: None,
                etag: String::new(),
            },
            &intruder_token,
        ))
        .await
        .expect_err("no such trainer for the intruder");
    assert_eq!(reason(&refused), "TRAINER_NOT_FOUND");
    let admin = sandbox.db.admin_pool().await;
    let keys: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tenancy.data_keys WHERE tenant_id::text = ANY($1)",
    )
    .bind(vec![studio.id.clone(), victim_trainer])
    .fetch_one(&admin)
    .await
    .expect("count keys");
    assert_eq!(keys, 0, "no data key was made for a refused write");
}

#[tokio::test]
async fn a_contracted_studio_sees_the_trainer_card_and_nothing_private() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (trainer_id, trainer_email, trainer_token) = trainer(&sandbox, "Ana").await;
    let (_, _, owner_token) = member(&sandbox, "Olivia").await;
    let (_, _, other_owner_token) = member(&sandbox, "Otto").await;
    let studio = create_studio(&sandbox, &owner_token, "Studio Nord", "").await;
    create_studio(&sandbox, &other_owner_token, "Studio Sud", "").await;
    assert_eq!(
        sees_trainer(&sandbox, &owner_token, &trainer_id).await,
        Code::NotFound
    );

    invite(&sandbox, &owner_token, &studio.id, &trainer_email)
        .await
        .expect("invite");
    let card = tenancy(&sandbox, "gateway")
        .get_trainer(bearer(
            pb::GetTrainerRequest {
                trainer_id: trainer_id.clone(),
            },
            &owner_token,
        ))
        .await
        .expect("the contracted studio reads the card")
        .into_inner()
        .trainer
        .expect("trainer");
    assert_eq!(card.business_name, "Ana Fitness");
    assert!(card.tax_profile.is_none());
    assert!(card.hourly_rate.is_none());
    assert!(card.commission_rate.is_empty());
    assert!(card.settings.is_empty());
    assert!(!card.has_bank_account);
    assert!(card.etag.is_empty(), "a card cannot be updated");
    let update = tenancy(&sandbox, "gateway")
        .update_trainer(bearer(
            pb::UpdateTrainerRequest {
                trainer: Some(pb::Trainer {
                    id: trainer_id.clone(),
                    business_name: "pwned".into(),
                    ..Default::default()
                }),
                update_mask: None,
                etag: String::new(),
            },
            &owner_token,
        ))
        .await
        .expect_err("a card is read-only");
    assert_eq!(reason(&update), "TRAINER_NOT_FOUND");
    assert_eq!(
        sees_trainer(&sandbox, &other_owner_token, &trainer_id).await,
        Code::NotFound,
        "a studio without a contract sees nothing"
    );
    assert_eq!(
        sees_trainer(&sandbox, &trainer_token, &trainer_id).await,
        Code::Ok
    );
}

/// Waits until audit refuses `token` as stale (its structure claims changed).
async fn refused_as_stale(sandbox: &Sandbox, token: &str, own_id: &str) {
    fitflow_testkit::eventually(
        "audit refuses the owner's stale token",
        std::time::Duration::from_secs(20),
        async || member_trail(sandbox, token, own_id).await == Code::Unauthenticated,
    )
    .await;
}

#[tokio::test]
async fn moving_deleting_and_restoring_a_location_makes_its_owners_token_stale_each_time() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (owner_id, owner_email, _) = member(&sandbox, "Olga").await;
    let token = sandbox.login(&owner_email).await.access_token;
    let first = create_studio(&sandbox, &token, "Chain One", "").await;
    let second = create_studio(&sandbox, &token, "Chain Two", "").await;
    let location = create_studio(&sandbox, &token, "Location", &first.id).await;
    sandbox.structure_settled().await;
    let token = sandbox.login(&owner_email).await.access_token;
    let mut studios = ids(&claims_of(&token), "studios");
    studios.sort();
    let mut expected = vec![first.id.clone(), second.id.clone(), location.id.clone()];
    expected.sort();
    assert_eq!(studios, expected);
    assert_eq!(member_trail(&sandbox, &token, &owner_id).await, Code::Ok);
    let mut client = tenancy(&sandbox, "gateway");

    // Moved into the other chain.
    client
        .update_studio(bearer(
            pb::UpdateStudioRequest {
                studio: Some(pb::Studio {
                    id: location.id.clone(),
                    parent_studio_id: second.id.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["parent_studio_id".into()],
                }),
                etag: String::new(),
            },
            &token,
        ))
        .await
        .expect("move the location");
    refused_as_stale(&sandbox, &token, &owner_id).await;
    let token = sandbox.login(&owner_email).await.access_token;
    assert!(ids(&claims_of(&token), "studios").contains(&location.id));

    // Deleted: the refreshed token no longer holds it.
    client
        .delete_studio(bearer(
            pb::DeleteStudioRequest {
                studio_id: location.id.clone(),
                etag: String::new(),
            },
            &token,
        ))
        .await
        .expect("delete the location");
    refused_as_stale(&sandbox, &token, &owner_id).await;
    let token = sandbox.login(&owner_email).await.access_token;
    assert!(!ids(&claims_of(&token), "studios").contains(&location.id));
    assert_eq!(member_trail(&sandbox, &token, &owner_id).await, Code::Ok);

    // Restored: stale again, and back in the claims after a refresh.
    client
        .undelete_studio(bearer(
            pb::UndeleteStudioRequest {
                studio_id: location.id.clone(),
            },
            &token,
        ))
        .await
        .expect("restore the location");
    refused_as_stale(&sandbox, &token, &owner_id).await;
    let token = sandbox.login(&owner_email).await.access_token;
    assert!(ids(&claims_of(&token), "studios").contains(&location.id));
    assert_eq!(member_trail(&sandbox, &token, &owner_id).await, Code::Ok);
}

#[tokio::test]
async fn acting_for_lists_the_user_first_then_each_level_of_their_team() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    // Eight members, so some ids sort before the lead's whatever the draw.
    let lead = trainer(&sandbox, "Lead").await;
    let mut direct = Vec::new();
    for index in 0..4 {
        let member = trainer(&sandbox, &format!("Direct{index}")).await;
        let invitation = invite_to_team(&sandbox, &lead.2, &lead.0, &member.1)
            .await
            .expect("invite");
        answer(&sandbox, &member.2, &invitation.id, true)
            .await
            .expect("accept");
        direct.push(member);
    }
    let mut below = Vec::new();
    for index in 0..4 {
        let member = trainer(&sandbox, &format!("Below{index}")).await;
        let invitation = invite_to_team(&sandbox, &direct[0].2, &direct[0].0, &member.1)
            .await
            .expect("invite");
        answer(&sandbox, &member.2, &invitation.id, true)
            .await
            .expect("accept");
        below.push(member.0);
    }
    let acting = tenancy(&sandbox, IDENTITY)
        .get_acting_for(pb::GetActingForRequest {
            user_id: lead.0.clone(),
            limit: 0,
        })
        .await
        .expect("acting for")
        .into_inner();
    let mut first_level: Vec<String> = direct.iter().map(|member| member.0.clone()).collect();
    first_level.sort();
    below.sort();
    let expected: Vec<String> = std::iter::once(lead.0.clone())
        .chain(first_level)
        .chain(below)
        .collect();
    assert_eq!(acting.trainer_ids, expected);
}
