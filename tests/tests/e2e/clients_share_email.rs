//! Sharing a client with a trainer named by the email of their account:
//! resolved through identity (an active account) and tenancy (a trainer
//! profile), stored and audited as a share by id, and telling a caller no
//! more about an email than tenancy's team invitation by email does.

use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::clients as pb;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use tonic::Code;

use crate::clients::{create, full_client, share};
use crate::identity_support::{reason, violated_fields};
use crate::tenancy::{TENANCY, member, trainer};

const CLIENTS: &str = "clients";
const STACK: &[&str] = &[IDENTITY, TENANCY, CLIENTS, AUDIT];

async fn share_by_email(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
    email: &str,
    level: pb::AccessLevel,
) -> Result<pb::ClientShare, tonic::Status> {
    ClientsServiceClient::new(sandbox.channel(CLIENTS, "gateway"))
        .share_client(bearer(
            pb::ShareClientRequest {
                client_id: client_id.into(),
                trainer_id: String::new(),
                level: level as i32,
                trainer_email: email.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().share.expect("share"))
}

async fn read(
    sandbox: &Sandbox,
    token: &str,
    client_id: &str,
) -> Result<pb::Client, tonic::Status> {
    ClientsServiceClient::new(sandbox.channel(CLIENTS, "gateway"))
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

async fn shares(sandbox: &Sandbox, token: &str, client_id: &str) -> Vec<pb::ClientShare> {
    ClientsServiceClient::new(sandbox.channel(CLIENTS, "gateway"))
        .list_client_shares(bearer(
            pb::ListClientSharesRequest {
                client_id: client_id.into(),
            },
            token,
        ))
        .await
        .expect("list shares")
        .into_inner()
        .shares
}

/// The `changes` of the CREATE client_shares audit event that names
/// `trainer_id`, once it reaches the audit service.
async fn share_audit(sandbox: &Sandbox, client_id: &str, trainer_id: &str) -> serde_json::Value {
    let admin = sandbox.db.admin_pool().await;
    for _ in 0..100 {
        let rows: Vec<(serde_json::Value, Option<uuid::Uuid>)> = sqlx::query_as(
            "SELECT changes, actor_user_id FROM audit.audit_log WHERE source_service = 'clients' \
             AND resource_type = 'client_shares' AND resource_id = $1::uuid AND action = 'create'",
        )
        .bind(client_id)
        .fetch_all(&admin)
        .await
        .expect("audit log");
        if let Some((changes, _)) = rows
            .into_iter()
            .find(|(changes, _)| changes.to_string().contains(trainer_id))
        {
            return changes;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no CREATE client_shares event names the grantee");
}

#[tokio::test]
async fn a_client_shared_by_a_trainers_email_is_readable_by_them_and_audited_as_a_share_by_id() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(STACK).await;
    let owner = trainer(&sandbox, "Ana").await;
    let by_email = trainer(&sandbox, "Gus").await;
    let by_id = trainer(&sandbox, "Ida").await;
    let client = create(&sandbox, &owner.2, full_client("Zoé", "Roy", "", ""))
        .await
        .expect("create");
    assert_eq!(
        reason(
            &read(&sandbox, &by_email.2, &client.id)
                .await
                .expect_err("not shared yet")
        ),
        "CLIENT_NOT_FOUND"
    );

    // Any case and surrounding spaces name the same account.
    let shouted = format!("  {}  ", by_email.1.to_uppercase());
    let stored = share_by_email(
        &sandbox,
        &owner.2,
        &client.id,
        &shouted,
        pb::AccessLevel::Read,
    )
    .await
    .expect("share by email");
    assert_eq!(stored.trainer_id, by_email.0);
    assert_eq!(stored.level, pb::AccessLevel::Read as i32);
    assert_eq!(stored.granted_by, owner.0);
    let seen = read(&sandbox, &by_email.2, &client.id)
        .await
        .expect("the grantee reads");
    assert_eq!(seen.first_name, "Zoé");
    assert_eq!(seen.caller_access, pb::AccessLevel::Read as i32);

    // Sharing again by email changes the level of the same share.
    share_by_email(
        &sandbox,
        &owner.2,
        &client.id,
        &by_email.1,
        pb::AccessLevel::Write,
    )
    .await
    .expect("change the level");
    share(
        &sandbox,
        &owner.2,
        &client.id,
        &by_id.0,
        pb::AccessLevel::Read,
    )
    .await
    .expect("share by id");
    let listed: Vec<(String, i32)> = shares(&sandbox, &owner.2, &client.id)
        .await
        .into_iter()
        .map(|share| (share.trainer_id, share.level))
        .collect();
    assert_eq!(
        listed,
        [
            (by_email.0.clone(), pb::AccessLevel::Write as i32),
            (by_id.0.clone(), pb::AccessLevel::Read as i32),
        ]
    );

    // The audit trail cannot tell the two apart: the grantee's id and the
    // level, never the email.
    let email_event = share_audit(&sandbox, &client.id, &by_email.0).await;
    let id_event = share_audit(&sandbox, &client.id, &by_id.0).await;
    let fields = |changes: &serde_json::Value| -> Vec<String> {
        changes
            .as_array()
            .expect("changes")
            .iter()
            .map(|change| change["field"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(fields(&email_event), ["trainer_id", "level"]);
    assert_eq!(fields(&email_event), fields(&id_event));
    assert!(!email_event.to_string().contains('@'), "{email_event}");
}

#[tokio::test]
async fn an_email_of_no_trainer_answers_trainer_not_found_alike_and_shares_nothing() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(STACK).await;
    let owner = trainer(&sandbox, "Ana").await;
    // An account without a trainer profile (a studio owner, a new user).
    let (_, no_profile, _) = member(&sandbox, "Sam").await;
    let client = create(&sandbox, &owner.2, full_client("Zoé", "Roy", "", ""))
        .await
        .expect("create");
    let unknown = format!("nobody-{}@example.com", uuid::Uuid::new_v4());
    let mut answers = Vec::new();
    for email in [&unknown, &no_profile] {
        let refused = share_by_email(&sandbox, &owner.2, &client.id, email, pb::AccessLevel::Read)
            .await
            .expect_err("no trainer behind the email");
        answers.push((
            refused.code(),
            reason(&refused),
            refused.message().to_owned(),
        ));
    }
    assert_eq!(answers[0].0, Code::NotFound);
    assert_eq!(answers[0].1, "TRAINER_NOT_FOUND");
    // Nothing tells an unknown email from an account without a profile.
    assert_eq!(answers[0], answers[1]);
    assert!(!answers[0].2.contains("example.com"), "{}", answers[0].2);
    assert!(shares(&sandbox, &owner.2, &client.id).await.is_empty());

    // The owner's own email is a trainer's, and the owner's.
    let own = share_by_email(
        &sandbox,
        &owner.2,
        &client.id,
        &owner.1,
        pb::AccessLevel::Read,
    )
    .await
    .expect_err("not with the owner");
    assert_eq!(own.code(), Code::FailedPrecondition);
    assert_eq!(reason(&own), "SHARE_WITH_OWNER");
}

#[tokio::test]
async fn only_who_administers_a_client_shares_it_by_email_and_others_learn_nothing_of_the_email() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(STACK).await;
    let owner = trainer(&sandbox, "Ana").await;
    let grantee = trainer(&sandbox, "Gus").await;
    let stranger = trainer(&sandbox, "Eve").await;
    let client = create(&sandbox, &owner.2, full_client("Zoé", "Roy", "", ""))
        .await
        .expect("create");
    share(
        &sandbox,
        &owner.2,
        &client.id,
        &grantee.0,
        pb::AccessLevel::Read,
    )
    .await
    .expect("share");
    let unknown = format!("nobody-{}@example.com", uuid::Uuid::new_v4());
    // Another trainer's token: the client does not exist for them, whatever
    // the email (a trainer's, their own, or nobody's).
    for email in [&grantee.1, &stranger.1, &unknown] {
        let refused = share_by_email(
            &sandbox,
            &stranger.2,
            &client.id,
            email,
            pb::AccessLevel::Admin,
        )
        .await
        .expect_err("a stranger shares nothing");
        assert_eq!(refused.code(), Code::NotFound, "{email}");
        assert_eq!(reason(&refused), "CLIENT_NOT_FOUND", "{email}");
    }
    // A READ grantee may read, not share.
    for email in [&stranger.1, &unknown] {
        let refused = share_by_email(
            &sandbox,
            &grantee.2,
            &client.id,
            email,
            pb::AccessLevel::Read,
        )
        .await
        .expect_err("a READ grantee shares nothing");
        assert_eq!(refused.code(), Code::PermissionDenied, "{email}");
        assert_eq!(reason(&refused), "ACCESS_LEVEL_INSUFFICIENT", "{email}");
    }
    let listed: Vec<String> = shares(&sandbox, &owner.2, &client.id)
        .await
        .into_iter()
        .map(|share| share.trainer_id)
        .collect();
    assert_eq!(listed, [grantee.0.as_str()]);
    assert_eq!(
        reason(
            &read(&sandbox, &stranger.2, &client.id)
                .await
                .expect_err("the stranger still reads nothing")
        ),
        "CLIENT_NOT_FOUND"
    );
}

#[tokio::test]
async fn a_trainer_email_with_control_characters_or_beside_a_trainer_id_is_refused_field_by_field()
{
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(STACK).await;
    let owner = trainer(&sandbox, "Ana").await;
    let grantee = trainer(&sandbox, "Gus").await;
    let client = create(&sandbox, &owner.2, full_client("Zoé", "Roy", "", ""))
        .await
        .expect("create");
    for control in ["\u{0}", "\u{b}", "\u{1b}", "\u{7f}", "\u{85}", "\r\n"] {
        for email in [
            format!("{}{control}", grantee.1),
            format!("{control}{}", grantee.1),
            grantee.1.replacen('@', &format!("{control}@"), 1),
        ] {
            let refused = share_by_email(
                &sandbox,
                &owner.2,
                &client.id,
                &email,
                pb::AccessLevel::Read,
            )
            .await
            .expect_err("control characters are refused");
            assert_eq!(refused.code(), Code::InvalidArgument, "{email:?}");
            assert_eq!(violated_fields(&refused), ["trainer_email"], "{email:?}");
        }
    }
    let api = || ClientsServiceClient::new(sandbox.channel(CLIENTS, "gateway"));
    // Both ways of naming the trainer at once, with a bad level: every bad
    // field in one answer.
    let both = api()
        .share_client(bearer(
            pb::ShareClientRequest {
                client_id: client.id.clone(),
                trainer_id: grantee.0.clone(),
                level: pb::AccessLevel::Owner as i32,
                trainer_email: grantee.1.clone(),
            },
            &owner.2,
        ))
        .await
        .expect_err("one of trainer_id and trainer_email");
    assert_eq!(violated_fields(&both), ["trainer_email", "level"]);
    for (email, field) in [
        ("not-an-email", "trainer_email"),
        ("   ", "trainer_email"),
        (&*"x".repeat(300), "trainer_email"),
    ] {
        let refused = share_by_email(&sandbox, &owner.2, &client.id, email, pb::AccessLevel::Read)
            .await
            .expect_err("not an email address");
        assert_eq!(violated_fields(&refused), [field], "{email:?}");
    }
    let neither = api()
        .share_client(bearer(
            pb::ShareClientRequest {
                client_id: "nope".into(),
                level: pb::AccessLevel::Read as i32,
                ..Default::default()
            },
            &owner.2,
        ))
        .await
        .expect_err("nobody named");
    assert_eq!(violated_fields(&neither), ["client_id", "trainer_id"]);
    assert!(shares(&sandbox, &owner.2, &client.id).await.is_empty());
}
