//! Billing end to end: trainers' bank accounts — numbers sealed under the
//! trainer's key, shown masked, revealed only with an access event — and
//! nobody but the trainer reaches their accounts or remittances.

use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::billing as pb;
use tonic::Code;
use uuid::Uuid;

use crate::billing::{EVERYONE, billing};
use crate::billing_remittances::{calculate, year_period};
use crate::identity_support::{reason, violated_fields};
use crate::tenancy::trainer;

pub(crate) fn account(name: &str, account_number: &str, primary: bool) -> pb::BankAccount {
    pb::BankAccount {
        name: name.into(),
        bank_name: "Banque Nationale".into(),
        account_type: pb::BankAccountType::Chequing as i32,
        currency_code: "CAD".into(),
        primary,
        institution_number: "006".into(),
        transit_number: "12345".into(),
        account_number: account_number.into(),
        ..Default::default()
    }
}

pub(crate) async fn create_account(
    sandbox: &Sandbox,
    token: &str,
    account: pb::BankAccount,
) -> Result<pb::BankAccount, tonic::Status> {
    billing(sandbox, "gateway")
        .create_bank_account(bearer(
            pb::CreateBankAccountRequest {
                bank_account: Some(account),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().bank_account.expect("account"))
}

async fn list(sandbox: &Sandbox, token: &str) -> Vec<pb::BankAccount> {
    billing(sandbox, "gateway")
        .list_bank_accounts(bearer(pb::ListBankAccountsRequest::default(), token))
        .await
        .expect("list")
        .into_inner()
        .bank_accounts
}

async fn reveal(
    sandbox: &Sandbox,
    token: &str,
    id: &str,
) -> Result<pb::RevealBankAccountResponse, tonic::Status> {
    billing(sandbox, "gateway")
        .reveal_bank_account(bearer(
            pb::RevealBankAccountRequest {
                bank_account_id: id.into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn update(
    sandbox: &Sandbox,
    token: &str,
    account: pb::BankAccount,
    etag: &str,
) -> Result<pb::BankAccount, tonic::Status> {
    billing(sandbox, "gateway")
        .update_bank_account(bearer(
            pb::UpdateBankAccountRequest {
                bank_account: Some(account),
                etag: etag.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().bank_account.expect("account"))
}

async fn close(
    sandbox: &Sandbox,
    token: &str,
    id: &str,
    etag: &str,
) -> Result<pb::BankAccount, tonic::Status> {
    billing(sandbox, "gateway")
        .close_bank_account(bearer(
            pb::CloseBankAccountRequest {
                bank_account_id: id.into(),
                etag: etag.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().bank_account.expect("account"))
}

/// How many access events of `resource_type` on `id` reached the audit
/// service, waiting for the relay up to ten seconds for `expected`.
async fn access_events(sandbox: &Sandbox, resource_type: &str, id: &str, expected: i64) -> i64 {
    let admin = sandbox.db.admin_pool().await;
    let mut count = 0;
    for _ in 0..100 {
        count = sqlx::query_scalar(
            "SELECT count(*) FROM audit.access_log WHERE source_service = 'billing' \
             AND resource_type = $1 AND resource_id = $2::uuid AND action::text = 'read' \
             AND purpose = 'payment'",
        )
        .bind(resource_type)
        .bind(id)
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
async fn revealing_a_bank_account_writes_an_access_event_and_responses_show_it_masked() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (trainer_id, _, token) = trainer(&sandbox, "Ana").await;

    let created = create_account(&sandbox, &token, account("Payouts", "9876543123", true))
        .await
        .expect("create");
    assert_eq!(created.trainer_id, trainer_id);
    assert_eq!(created.account_number_masked, "••••123");
    assert!(
        created.account_number.is_empty()
            && created.transit_number.is_empty()
            && created.institution_number.is_empty(),
        "numbers are input only"
    );
    assert!(created.primary);
    assert_eq!(created.status, pb::BankAccountStatus::Active as i32);
    let listed = list(&sandbox, &token).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].account_number_masked, "••••123");
    assert!(listed[0].account_number.is_empty());

    // Sealed at rest: the database holds no number in clear.
    let admin = sandbox.db.admin_pool().await;
    let clear: bool = sqlx::query_scalar(
        "SELECT position(convert_to('9876543123', 'UTF8') IN account_number_sealed) > 0 \
             OR position(convert_to('12345', 'UTF8') IN transit_number_sealed) > 0 \
         FROM billing.bank_accounts WHERE id = $1::uuid",
    )
    .bind(&created.id)
    .fetch_one(&admin)
    .await
    .expect("the row");
    assert!(!clear, "numbers are sealed");

    assert_eq!(
        access_events(&sandbox, "bank_accounts", &created.id, 0).await,
        0
    );
    let revealed = reveal(&sandbox, &token, &created.id).await.expect("reveal");
    let numbers = revealed.numbers.expect("numbers");
    assert_eq!(
        (
            numbers.institution_number.as_str(),
            numbers.transit_number.as_str(),
            numbers.account_number.as_str()
        ),
        ("006", "12345", "9876543123")
    );
    assert_eq!(
        revealed
            .bank_account
            .expect("account")
            .account_number_masked,
        "••••123"
    );
    assert_eq!(
        access_events(&sandbox, "bank_accounts", &created.id, 1).await,
        1,
        "one reveal, one access event"
    );

    // Sealed ciphertext is bound to its row and column: moved to another
    // row it does not open.
    let other = create_account(&sandbox, &token, account("Savings", "1111111", false))
        .await
        .expect("create");
    sqlx::query(
        "UPDATE billing.bank_accounts SET account_number_sealed = \
         (SELECT account_number_sealed FROM billing.bank_accounts WHERE id = $1::uuid) \
         WHERE id = $2::uuid",
    )
    .bind(&created.id)
    .bind(&other.id)
    .execute(&admin)
    .await
    .expect("a ciphertext moved by someone with database access");
    let moved = reveal(&sandbox, &token, &other.id)
        .await
        .expect_err("does not open at another row");
    assert_eq!(moved.code(), Code::DataLoss);
    assert_eq!(reason(&moved), "SEALED_FIELD_UNREADABLE");
}

#[tokio::test]
async fn no_access_event_means_no_numbers_revealed() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let created = create_account(&sandbox, &token, account("Payouts", "9876543123", true))
        .await
        .expect("create");
    let admin = sandbox.db.admin_pool().await;
    sqlx::query(
        "CREATE FUNCTION billing.refuse_events() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'the outbox is down'; END $$",
    )
    .execute(&admin)
    .await
    .expect("a failing outbox");
    sqlx::query(
        "CREATE TRIGGER refuse_events BEFORE INSERT ON billing.audit_outbox \
         FOR EACH ROW EXECUTE FUNCTION billing.refuse_events()",
    )
    .execute(&admin)
    .await
    .expect("installed");
    let refused = reveal(&sandbox, &token, &created.id)
        .await
        .expect_err("the access event cannot be written");
    assert!(
        refused.message().is_empty() || !refused.message().contains("9876543123"),
        "{refused:?}"
    );
    assert!(
        !matches!(refused.code(), Code::Ok),
        "no event, no numbers: {refused:?}"
    );
}

#[tokio::test]
async fn one_primary_account_per_trainer_and_a_closed_account_never_changes() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let first = create_account(&sandbox, &token, account("Payouts", "9876543123", true))
        .await
        .expect("create");
    let second = create_account(&sandbox, &token, account("New bank", "5555555001", true))
        .await
        .expect("create");
    let listed = list(&sandbox, &token).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, second.id, "primary first");
    assert!(listed[0].primary && !listed[1].primary, "one primary");

    // The database refuses a second primary, whoever writes it.
    let admin = sandbox.db.admin_pool().await;
    let twice =
        sqlx::query("UPDATE billing.bank_accounts SET is_primary = true WHERE id = $1::uuid")
            .bind(&first.id)
            .execute(&admin)
            .await
            .expect_err("a partial unique index");
    assert!(
        twice.to_string().contains("bank_accounts_one_primary"),
        "{twice}"
    );

    // Update with the etag read: details, and all three numbers.
    let stale_etag = listed[1].etag.clone();
    let renamed = update(
        &sandbox,
        &token,
        pb::BankAccount {
            id: first.id.clone(),
            account_type: pb::BankAccountType::Savings as i32,
            currency_code: "USD".into(),
            institution_number: "010".into(),
            transit_number: "54321".into(),
            ..account("US dollars", "123456789012", false)
        },
        &stale_etag,
    )
    .await
    .expect("update");
    assert_eq!(renamed.name, "US dollars");
    assert_eq!(renamed.currency_code, "USD");
    assert_eq!(renamed.account_number_masked, "••••012");
    let numbers = reveal(&sandbox, &token, &first.id)
        .await
        .expect("reveal")
        .numbers
        .expect("numbers");
    assert_eq!(
        (numbers.institution_number, numbers.transit_number),
        ("010".to_owned(), "54321".to_owned())
    );
    let conflict = update(&sandbox, &token, renamed.clone(), &stale_etag)
        .await
        .expect_err("stale etag");
    assert_eq!(conflict.code(), Code::Aborted);
    // Without numbers, the numbers stay.
    let kept = update(
        &sandbox,
        &token,
        pb::BankAccount {
            id: first.id.clone(),
            institution_number: String::new(),
            transit_number: String::new(),
            ..account("Renamed", "", true)
        },
        &renamed.etag,
    )
    .await
    .expect("update without numbers");
    assert_eq!(kept.account_number_masked, "••••012");
    assert!(kept.primary);
    let listed = list(&sandbox, &token).await;
    assert_eq!(
        listed[0].id, first.id,
        "the other one stopped being primary"
    );
    assert!(!listed[1].primary);

    let closed = close(&sandbox, &token, &first.id, &kept.etag)
        .await
        .expect("close");
    assert_eq!(closed.status, pb::BankAccountStatus::Closed as i32);
    assert!(!closed.primary && closed.close_time.is_some());
    let again = close(&sandbox, &token, &first.id, &closed.etag)
        .await
        .expect_err("closed already");
    assert_eq!(reason(&again), "BANK_ACCOUNT_STATE");
    let edit = update(
        &sandbox,
        &token,
        pb::BankAccount {
            id: first.id.clone(),
            institution_number: String::new(),
            transit_number: String::new(),
            ..account("Reopened", "", false)
        },
        &closed.etag,
    )
    .await
    .expect_err("a closed account never changes");
    assert_eq!(reason(&edit), "BANK_ACCOUNT_STATE");
    assert_eq!(list(&sandbox, &token).await.len(), 2, "closed stays listed");
}

#[tokio::test]
async fn invalid_transit_institution_and_account_numbers_are_refused_field_by_field() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let refused = create_account(
        &sandbox,
        &token,
        pb::BankAccount {
            name: "Pay\0outs".into(),
            bank_name: String::new(),
            account_type: 9,
            currency_code: "EUR".into(),
            institution_number: "12a".into(),
            transit_number: "1234".into(),
            ..account("", "123456", false)
        },
    )
    .await
    .expect_err("hostile");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let mut fields = violated_fields(&refused);
    fields.sort();
    assert_eq!(
        fields,
        [
            "bank_account.account_number",
            "bank_account.account_type",
            "bank_account.bank_name",
            "bank_account.currency_code",
            "bank_account.institution_number",
            "bank_account.name",
            "bank_account.transit_number",
        ]
    );
    for (institution, transit, account_number, field) in [
        (
            "0061",
            "12345",
            "1234567",
            "bank_account.institution_number",
        ),
        ("006", "123456", "1234567", "bank_account.transit_number"),
        (
            "006",
            "12345",
            "1234567890123",
            "bank_account.account_number",
        ),
        (
            "006",
            "１２３４５",
            "1234567",
            "bank_account.transit_number",
        ),
    ] {
        let refused = create_account(
            &sandbox,
            &token,
            pb::BankAccount {
                institution_number: institution.into(),
                transit_number: transit.into(),
                ..account("Payouts", account_number, false)
            },
        )
        .await
        .expect_err("a bad number");
        assert_eq!(violated_fields(&refused), [field]);
    }
    let created = create_account(&sandbox, &token, account("Payouts", "1234567", false))
        .await
        .expect("seven digits is fine");
    // One number alone would mix two accounts: all three or none.
    let partial = update(
        &sandbox,
        &token,
        pb::BankAccount {
            id: created.id.clone(),
            institution_number: String::new(),
            transit_number: String::new(),
            ..account("Payouts", "7654321", false)
        },
        &created.etag,
    )
    .await
    .expect_err("partial numbers");
    let mut fields = violated_fields(&partial);
    fields.sort();
    assert_eq!(
        fields,
        [
            "bank_account.institution_number",
            "bank_account.transit_number"
        ]
    );
    assert!(list(&sandbox, &token).await.len() == 1, "nothing written");
}

#[tokio::test]
async fn another_trainer_reaches_none_of_a_trainers_bank_accounts_or_remittances() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (owner_id, _, owner) = trainer(&sandbox, "Ana").await;
    let (_, _, intruder) = trainer(&sandbox, "Ivan").await;
    let created = create_account(&sandbox, &owner, account("Payouts", "9876543123", true))
        .await
        .expect("create");
    let (start, end) = year_period();
    let today = crate::billing_payments::date_of(chrono::Utc::now().date_naive());
    let remittance = calculate(
        &sandbox,
        &owner,
        pb::CalculateTaxRemittanceRequest {
            kind: pb::RemittanceKind::GstHst as i32,
            period_start: start,
            period_end: end,
            ..Default::default()
        },
    )
    .await
    .expect("calculate");

    let client = billing(&sandbox, "gateway");
    let mut refusals: Vec<(&str, tonic::Status)> = Vec::new();
    macro_rules! refused {
        ($name:expr, $call:expr) => {
            refusals.push(($name, $call.await.map(drop).expect_err($name)));
        };
    }
    refused!(
        "create for another",
        client.clone().create_bank_account(bearer(
            pb::CreateBankAccountRequest {
                bank_account: Some(pb::BankAccount {
                    trainer_id: owner_id.clone(),
                    ..account("Mine now", "1234567", true)
                }),
                request_id: String::new(),
            },
            &intruder,
        ))
    );
    refused!(
        "update",
        client.clone().update_bank_account(bearer(
            pb::UpdateBankAccountRequest {
                bank_account: Some(pb::BankAccount {
                    id: created.id.clone(),
                    ..account("Mine now", "1234567", true)
                }),
                etag: created.etag.clone(),
            },
            &intruder,
        ))
    );
    refused!(
        "list",
        client.clone().list_bank_accounts(bearer(
            pb::ListBankAccountsRequest {
                trainer_id: owner_id.clone(),
            },
            &intruder,
        ))
    );
    refused!(
        "reveal",
        client.clone().reveal_bank_account(bearer(
            pb::RevealBankAccountRequest {
                bank_account_id: created.id.clone(),
            },
            &intruder,
        ))
    );
    refused!(
        "close",
        client.clone().close_bank_account(bearer(
            pb::CloseBankAccountRequest {
                bank_account_id: created.id.clone(),
                etag: created.etag.clone(),
            },
            &intruder,
        ))
    );
    refused!(
        "calculate for another",
        client.clone().calculate_tax_remittance(bearer(
            pb::CalculateTaxRemittanceRequest {
                trainer_id: owner_id.clone(),
                kind: pb::RemittanceKind::GstHst as i32,
                period_start: start,
                period_end: end,
                ..Default::default()
            },
            &intruder,
        ))
    );
    refused!(
        "get remittance",
        client.clone().get_tax_remittance(bearer(
            pb::GetTaxRemittanceRequest {
                remittance_id: remittance.id.clone(),
            },
            &intruder,
        ))
    );
    refused!(
        "list remittances",
        client.clone().list_tax_remittances(bearer(
            pb::ListTaxRemittancesRequest {
                trainer_id: owner_id.clone(),
                ..Default::default()
            },
            &intruder,
        ))
    );
    refused!(
        "file",
        client.clone().file_tax_remittance(bearer(
            pb::FileTaxRemittanceRequest {
                remittance_id: remittance.id.clone(),
                filed_on: today,
                reference: "CRA-1".into(),
                etag: remittance.etag.clone(),
            },
            &intruder,
        ))
    );
    refused!(
        "pay",
        client.clone().mark_tax_remittance_paid(bearer(
            pb::MarkTaxRemittancePaidRequest {
                remittance_id: remittance.id.clone(),
                paid_on: today,
                reference: "CRA-1".into(),
                etag: remittance.etag.clone(),
            },
            &intruder,
        ))
    );
    assert_eq!(refusals.len(), 10, "every new RPC");
    for (name, status) in &refusals {
        assert!(
            matches!(status.code(), Code::NotFound | Code::PermissionDenied),
            "{name}: {status:?}"
        );
        assert!(
            !status.message().contains("9876543123") && !status.message().contains(&owner_id),
            "{name} leaks: {status:?}"
        );
    }
    // An unknown id answers exactly like a foreign one.
    let unknown = reveal(&sandbox, &intruder, &Uuid::now_v7().to_string())
        .await
        .expect_err("unknown");
    let foreign = &refusals[3].1;
    assert_eq!(
        (unknown.code(), reason(&unknown)),
        (foreign.code(), reason(foreign))
    );
    // The intruder's own list holds nothing of the owner's.
    assert!(list(&sandbox, &intruder).await.is_empty());
    // And nothing changed.
    let mine = list(&sandbox, &owner).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].etag, created.etag);
    // The operator peer does not reach them at all.
    let operator = billing(&sandbox, "operator")
        .list_bank_accounts(bearer(pb::ListBankAccountsRequest::default(), &owner))
        .await
        .expect_err("gateway only");
    assert_eq!(operator.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn concurrent_primary_accounts_leave_exactly_one_primary() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(EVERYONE).await;
    let (_, _, token) = trainer(&sandbox, "Ana").await;
    let first = create_account(&sandbox, &token, account("First", "1000001", true))
        .await
        .expect("create");
    // Creates making themselves primary race an update doing the same.
    let creates = (0..6).map(|index| {
        create_account(
            &sandbox,
            &token,
            account(&format!("Account {index}"), &format!("200000{index}"), true),
        )
    });
    let promote = update(
        &sandbox,
        &token,
        pb::BankAccount {
            id: first.id.clone(),
            institution_number: String::new(),
            transit_number: String::new(),
            ..account("First", "", true)
        },
        &first.etag,
    );
    let (created, promoted) = tokio::join!(futures::future::join_all(creates), promote);
    for result in created {
        result.expect("every create succeeds");
    }
    // A create that demoted it first changed its etag: ABORTED, never a
    // deadlock or an internal error.
    if let Err(status) = promoted {
        assert_eq!(reason(&status), "ETAG_MISMATCH", "{status:?}");
    }
    let listed = list(&sandbox, &token).await;
    assert_eq!(listed.len(), 7);
    assert_eq!(
        listed.iter().filter(|account| account.primary).count(),
        1,
        "{listed:?}"
    );
}
