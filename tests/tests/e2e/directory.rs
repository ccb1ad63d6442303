//! Finding accounts: tenancy's internal `LookupUser`.

use fitflow_e2e::{IDENTITY, Sandbox, bearer};
use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_proto::identity::{
    DeleteUserRequest, LookupUserRequest, LookupUserResponse, UserStatus, lookup_user_request,
};
use tonic::Code;
use tonic::transport::Channel;

use crate::identity_support::{reason, violated_fields};

/// Identity, presenting `peer`'s certificate.
fn identity_as(sandbox: &Sandbox, peer: &str) -> IdentityServiceClient<Channel> {
    IdentityServiceClient::new(sandbox.channel(IDENTITY, peer))
}

async fn lookup(
    sandbox: &Sandbox,
    peer: &str,
    key: lookup_user_request::Key,
) -> Result<LookupUserResponse, tonic::Status> {
    identity_as(sandbox, peer)
        .lookup_user(LookupUserRequest { key: Some(key) })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn tenancy_looks_a_user_up_by_id_and_by_email_in_any_case() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (user, email) = sandbox.register("Invited Trainer").await;

    let by_id = lookup(
        &sandbox,
        "tenancy",
        lookup_user_request::Key::UserId(user.id.clone()),
    )
    .await
    .expect("found by id");
    assert_eq!(by_id.user_id, user.id);
    assert_eq!(by_id.email, email);
    assert_eq!(by_id.display_name, "Invited Trainer");
    assert_eq!(by_id.status, UserStatus::Active as i32);
    assert!(!by_id.email_verified);

    let shouted = format!("  {}  ", email.to_uppercase());
    let by_email = lookup(
        &sandbox,
        "tenancy",
        lookup_user_request::Key::Email(shouted),
    )
    .await
    .expect("found by email, whatever its case");
    assert_eq!(by_email, by_id);
    stack.shutdown().await;
}

#[tokio::test]
async fn only_tenancy_may_look_users_up() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Private Person").await;
    // An operator's MFA token does not open it either: the peer decides.
    let (_, operator) = sandbox.operator().await;
    for peer in ["gateway", "operator", "clients", "billing"] {
        let request = bearer(
            LookupUserRequest {
                key: Some(lookup_user_request::Key::Email(email.clone())),
            },
            &operator.access_token,
        );
        let refused = identity_as(&sandbox, peer)
            .lookup_user(request)
            .await
            .expect_err("only tenancy may look users up");
        assert_eq!(refused.code(), Code::PermissionDenied, "{peer}");
        assert_eq!(reason(&refused), "PEER_NOT_ALLOWED", "{peer}");
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn an_unknown_or_deleted_user_is_not_found_by_lookup() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, operator) = sandbox.operator().await;
    let (user, email) = sandbox.register("Departed").await;

    for key in [
        lookup_user_request::Key::UserId(uuid::Uuid::new_v4().to_string()),
        lookup_user_request::Key::Email(format!("nobody-{}@example.com", uuid::Uuid::new_v4())),
    ] {
        let unknown = lookup(&sandbox, "tenancy", key).await.unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound);
        assert_eq!(reason(&unknown), "USER_NOT_FOUND");
    }

    sandbox
        .identity_as_operator()
        .delete_user(bearer(
            DeleteUserRequest {
                user_id: user.id.clone(),
            },
            &operator.access_token,
        ))
        .await
        .expect("deleted");
    for key in [
        lookup_user_request::Key::UserId(user.id.clone()),
        lookup_user_request::Key::Email(email),
    ] {
        let deleted = lookup(&sandbox, "tenancy", key).await.unwrap_err();
        assert_eq!(deleted.code(), Code::NotFound);
        assert_eq!(reason(&deleted), "USER_NOT_FOUND");
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn a_lookup_without_a_key_or_with_a_bad_id_or_email_is_an_invalid_argument() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let tenancy = identity_as(&sandbox, "tenancy");

    let no_key = tenancy
        .clone()
        .lookup_user(LookupUserRequest { key: None })
        .await
        .unwrap_err();
    assert_eq!(no_key.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&no_key), ["key"]);

    let cases = [
        (lookup_user_request::Key::UserId(String::new()), "user_id"),
        (
            lookup_user_request::Key::UserId("not-a-uuid".into()),
            "user_id",
        ),
        (
            lookup_user_request::Key::Email("no-at-sign".into()),
            "email",
        ),
        (
            lookup_user_request::Key::Email("nul\0@example.com".into()),
            "email",
        ),
        (lookup_user_request::Key::Email("a".repeat(300)), "email"),
    ];
    for (key, field) in cases {
        let refused = lookup(&sandbox, "tenancy", key.clone()).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{key:?}");
        assert_eq!(reason(&refused), "INVALID_ARGUMENT", "{key:?}");
        assert_eq!(violated_fields(&refused), [field], "{key:?}");
    }
    stack.shutdown().await;
}
