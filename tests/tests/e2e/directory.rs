//! Finding accounts: tenancy's internal `LookupUser`, and the operators'
//! directory (`GetUser`, `ListUsers`).

use fitflow_e2e::{IDENTITY, PASSWORD, Sandbox, bearer};
use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_proto::identity::{
    DeleteUserRequest, GetUserRequest, GrantRoleRequest, ListUsersRequest, ListUsersResponse,
    LookupUserRequest, LookupUserResponse, Role, SuspendUserRequest, User, UserStatus,
    lookup_user_request,
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
async fn only_tenancy_and_clients_may_look_users_up() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Private Person").await;
    // An operator's MFA token does not open it either: the peer decides.
    let (_, operator) = sandbox.operator().await;
    for peer in ["gateway", "operator", "scheduling", "billing"] {
        let request = bearer(
            LookupUserRequest {
                key: Some(lookup_user_request::Key::Email(email.clone())),
            },
            &operator.access_token,
        );
        let refused = identity_as(&sandbox, peer)
            .lookup_user(request)
            .await
            .expect_err("only tenancy and clients may look users up");
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

/// The operator directory, over the operator peer with `token`.
async fn list_users(
    sandbox: &Sandbox,
    token: &str,
    request: ListUsersRequest,
) -> Result<ListUsersResponse, tonic::Status> {
    sandbox
        .identity_as_operator()
        .list_users(bearer(request, token))
        .await
        .map(tonic::Response::into_inner)
}

fn ids(users: &[User]) -> Vec<String> {
    users.iter().map(|user| user.id.clone()).collect()
}

/// Registers `count` users whose emails share a fresh prefix; returns the
/// prefix and the users, oldest first.
async fn register_with_prefix(sandbox: &Sandbox, count: usize) -> (String, Vec<User>) {
    let prefix = format!("dir-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut users = Vec::new();
    for index in 0..count {
        let user = sandbox
            .identity()
            .register(fitflow_proto::identity::RegisterRequest {
                email: format!("{prefix}-{index}@example.com"),
                password: PASSWORD.into(),
                display_name: format!("Listed {index}"),
                roles: vec![],
                request_id: String::new(),
            })
            .await
            .expect("register")
            .into_inner()
            .user
            .expect("user");
        users.push(user);
    }
    (prefix, users)
}

/// The access events in identity's outbox (audit is not running) whose
/// `event` change is `event`: (user id read, actor user id).
async fn operator_reads(sandbox: &Sandbox, event: &str) -> Vec<(String, String)> {
    use fitflow_proto::audit::{Action, AuditEvent, Purpose};
    use fitflow_proto::types::actor::Kind;
    use prost::Message as _;
    let admin = sandbox.db.admin_pool().await;
    let payloads: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM identity.audit_outbox ORDER BY id")
            .fetch_all(&admin)
            .await
            .expect("outbox payloads");
    payloads
        .iter()
        .map(|payload| AuditEvent::decode(payload.as_slice()).expect("an audit event"))
        .filter(|found| {
            found
                .changes
                .iter()
                .any(|change| change.field == "event" && change.new_value == event)
        })
        .map(|found| {
            assert_eq!(found.action, Action::Read as i32);
            assert_eq!(found.purpose, Purpose::Operations as i32);
            assert_eq!(
                found.tenant_id, found.resource_id,
                "in the user's own trail"
            );
            assert!(
                found
                    .changes
                    .iter()
                    .any(|change| change.field == "caller_peer" && change.new_value == "operator")
            );
            let actor = match found.actor.and_then(|actor| actor.kind) {
                Some(Kind::UserId(id)) => id,
                other => panic!("an operator read names the operator: {other:?}"),
            };
            (found.resource_id, actor)
        })
        .collect()
}

#[tokio::test]
async fn an_operator_finds_accounts_by_email_prefix_status_and_role_page_by_page() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (operator_user, operator) = sandbox.operator().await;
    let (prefix, users) = register_with_prefix(&sandbox, 3).await;

    // Any case, surrounding whitespace ignored; oldest first, two per page.
    let shouted = format!(" {} ", prefix.to_uppercase());
    let first = list_users(
        &sandbox,
        &operator.access_token,
        ListUsersRequest {
            email_prefix: shouted.clone(),
            page_size: 2,
            ..Default::default()
        },
    )
    .await
    .expect("first page");
    assert_eq!(ids(&first.users), ids(&users[..2]));
    assert_eq!(first.users[0].display_name, "Listed 0");
    assert!(!first.next_page_token.is_empty());
    let second = list_users(
        &sandbox,
        &operator.access_token,
        ListUsersRequest {
            email_prefix: shouted,
            page_size: 2,
            page_token: first.next_page_token,
            ..Default::default()
        },
    )
    .await
    .expect("second page");
    assert_eq!(ids(&second.users), ids(&users[2..]));
    assert!(second.next_page_token.is_empty(), "the last page");

    sandbox
        .identity_as_operator()
        .suspend_user(bearer(
            SuspendUserRequest {
                user_id: users[1].id.clone(),
            },
            &operator.access_token,
        ))
        .await
        .expect("suspended");
    sandbox
        .identity_as_operator()
        .grant_role(bearer(
            GrantRoleRequest {
                user_id: users[2].id.clone(),
                role: Role::StudioOwner as i32,
            },
            &operator.access_token,
        ))
        .await
        .expect("granted");
    let suspended = list_users(
        &sandbox,
        &operator.access_token,
        ListUsersRequest {
            email_prefix: prefix.clone(),
            status: UserStatus::Suspended as i32,
            ..Default::default()
        },
    )
    .await
    .expect("suspended ones");
    assert_eq!(ids(&suspended.users), ids(&users[1..2]));
    let owners = list_users(
        &sandbox,
        &operator.access_token,
        ListUsersRequest {
            email_prefix: prefix.clone(),
            role: Role::StudioOwner as i32,
            ..Default::default()
        },
    )
    .await
    .expect("studio owners");
    assert_eq!(ids(&owners.users), ids(&users[2..]));
    // `%` and `_` are plain characters, not patterns.
    let wildcard = list_users(
        &sandbox,
        &operator.access_token,
        ListUsersRequest {
            email_prefix: "%".into(),
            ..Default::default()
        },
    )
    .await
    .expect("a prefix of one percent sign");
    assert!(wildcard.users.is_empty());

    let one = sandbox
        .identity_as_operator()
        .get_user(bearer(
            GetUserRequest {
                user_id: users[1].id.clone(),
            },
            &operator.access_token,
        ))
        .await
        .expect("one account")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(one.id, users[1].id);
    assert_eq!(one.status, UserStatus::Suspended as i32);
    let unknown = sandbox
        .identity_as_operator()
        .get_user(bearer(
            GetUserRequest {
                user_id: uuid::Uuid::new_v4().to_string(),
            },
            &operator.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(reason(&unknown), "USER_NOT_FOUND");

    // Every account shown to the operator is in its user's trail.
    let listed = operator_reads(&sandbox, "user_listed_by_operator").await;
    for user in &users {
        assert!(
            listed.contains(&(user.id.clone(), operator_user.id.clone())),
            "{} listed",
            user.id
        );
    }
    assert_eq!(
        operator_reads(&sandbox, "user_read_by_operator").await,
        [(users[1].id.clone(), operator_user.id.clone())]
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn the_operator_directory_is_refused_through_the_gateway_to_non_operators_and_without_mfa() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, operator) = sandbox.operator().await;
    let (_, _, password_only) = sandbox.operator_without_mfa().await;
    let (trainer, trainer_email) = sandbox.register("Curious Trainer").await;
    let trainer_tokens = sandbox.login(&trainer_email).await;

    let through_gateway = sandbox
        .identity()
        .list_users(bearer(ListUsersRequest::default(), &operator.access_token))
        .await
        .unwrap_err();
    assert_eq!(through_gateway.code(), Code::PermissionDenied);
    assert_eq!(reason(&through_gateway), "PEER_NOT_ALLOWED");
    let get_through_gateway = sandbox
        .identity()
        .get_user(bearer(
            GetUserRequest {
                user_id: trainer.id.clone(),
            },
            &operator.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&get_through_gateway), "PEER_NOT_ALLOWED");

    for (token, expected) in [
        (&trainer_tokens.access_token, "ROLE_REQUIRED"),
        (&password_only.access_token, "MFA_REQUIRED"),
    ] {
        let listed = list_users(&sandbox, token, ListUsersRequest::default())
            .await
            .unwrap_err();
        assert_eq!(listed.code(), Code::PermissionDenied, "{expected}");
        assert_eq!(reason(&listed), expected);
        let read = sandbox
            .identity_as_operator()
            .get_user(bearer(
                GetUserRequest {
                    user_id: trainer.id.clone(),
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_eq!(reason(&read), expected);
    }

    let anonymous = sandbox
        .identity_as_operator()
        .list_users(ListUsersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    assert_eq!(reason(&anonymous), "TOKEN_REQUIRED");
    // Nothing was read, so nothing is in the trail.
    assert!(
        operator_reads(&sandbox, "user_listed_by_operator")
            .await
            .is_empty()
    );
    assert!(
        operator_reads(&sandbox, "user_read_by_operator")
            .await
            .is_empty()
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn a_forged_altered_or_replayed_page_token_or_a_nul_in_the_prefix_is_an_invalid_argument() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, operator) = sandbox.operator().await;
    let (prefix, _) = register_with_prefix(&sandbox, 2).await;
    let first = list_users(
        &sandbox,
        &operator.access_token,
        ListUsersRequest {
            email_prefix: prefix.clone(),
            page_size: 1,
            ..Default::default()
        },
    )
    .await
    .expect("first page");
    let token = first.next_page_token;
    assert!(!token.is_empty());

    let mut altered: Vec<char> = token.chars().collect();
    altered[4] = if altered[4] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    let bad_tokens = [
        altered,
        "forged-page-token".to_owned(),
        token[..token.len() - 1].to_owned(),
        "A".repeat(5000),
    ];
    for bad in bad_tokens {
        let refused = list_users(
            &sandbox,
            &operator.access_token,
            ListUsersRequest {
                email_prefix: prefix.clone(),
                page_size: 1,
                page_token: bad.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{bad}");
        assert_eq!(violated_fields(&refused), ["page_token"], "{bad}");
    }

    // The real token with other filters: bound to the query it came from.
    for other_query in [
        ListUsersRequest {
            email_prefix: "dir-".into(),
            ..Default::default()
        },
        ListUsersRequest {
            email_prefix: prefix.clone(),
            status: UserStatus::Active as i32,
            ..Default::default()
        },
    ] {
        let refused = list_users(
            &sandbox,
            &operator.access_token,
            ListUsersRequest {
                page_token: token.clone(),
                ..other_query
            },
        )
        .await
        .unwrap_err();
        assert_eq!(violated_fields(&refused), ["page_token"]);
    }

    let refused = list_users(
        &sandbox,
        &operator.access_token,
        ListUsersRequest {
            email_prefix: "ana\0".into(),
            page_size: -1,
            status: 99,
            role: 42,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(reason(&refused), "INVALID_ARGUMENT");
    let mut fields = violated_fields(&refused);
    fields.sort();
    assert_eq!(fields, ["email_prefix", "page_size", "role", "status"]);
    let too_long = list_users(
        &sandbox,
        &operator.access_token,
        ListUsersRequest {
            email_prefix: "a".repeat(255),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&too_long), ["email_prefix"]);
    let bad_id = sandbox
        .identity_as_operator()
        .get_user(bearer(
            GetUserRequest {
                user_id: "user\0".into(),
            },
            &operator.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad_id), ["user_id"]);
    stack.shutdown().await;
}
