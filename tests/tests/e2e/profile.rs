//! The caller's own profile: `UpdateProfile` with `update_mask` and `etag`.

use fitflow_e2e::{IDENTITY, Sandbox, bearer};
use fitflow_proto::identity::{
    GetCurrentUserRequest, UpdateProfileRequest, UpdateProfileResponse, User,
};
use tonic::Code;

use crate::identity_support::{reason, violated_fields};

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
    })
}

async fn current(sandbox: &Sandbox, token: &str) -> User {
    sandbox
        .identity()
        .get_current_user(bearer(GetCurrentUserRequest {}, token))
        .await
        .expect("current user")
        .into_inner()
        .user
        .expect("user")
}

async fn update(
    sandbox: &Sandbox,
    token: &str,
    request: UpdateProfileRequest,
) -> Result<UpdateProfileResponse, tonic::Status> {
    sandbox
        .identity()
        .update_profile(bearer(request, token))
        .await
        .map(tonic::Response::into_inner)
}

/// The outbox events (audit is not running) that change `display_name`.
async fn display_name_changes(sandbox: &Sandbox) -> Vec<fitflow_proto::audit::AuditEvent> {
    use prost::Message as _;
    let admin = sandbox.db.admin_pool().await;
    let payloads: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM identity.audit_outbox ORDER BY id")
            .fetch_all(&admin)
            .await
            .expect("outbox payloads");
    payloads
        .iter()
        .map(|payload| {
            fitflow_proto::audit::AuditEvent::decode(payload.as_slice()).expect("an audit event")
        })
        .filter(|event| {
            event.action == fitflow_proto::audit::Action::Update as i32
                && event
                    .changes
                    .iter()
                    .any(|change| change.field == "display_name")
        })
        .collect()
}

#[tokio::test]
async fn a_user_renames_themselves_with_the_etag_they_read_and_the_trail_never_holds_the_name() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (registered, email) = sandbox.register("Old Name").await;
    let tokens = sandbox.login(&email).await;
    let read = current(&sandbox, &tokens.access_token).await;
    assert!(!read.etag.is_empty());
    // Every write of the account moves its etag (here: the login's time).
    assert_ne!(read.etag, registered.etag);

    let updated = update(
        &sandbox,
        &tokens.access_token,
        UpdateProfileRequest {
            display_name: "  Zoë Renamed  ".into(),
            update_mask: mask(&["display_name"]),
            etag: read.etag.clone(),
        },
    )
    .await
    .expect("renamed")
    .user
    .expect("user");
    assert_eq!(updated.display_name, "Zoë Renamed");
    assert_ne!(updated.etag, read.etag);
    let reread = current(&sandbox, &tokens.access_token).await;
    assert_eq!(reread.display_name, "Zoë Renamed");
    assert_eq!(reread.etag, updated.etag);

    let changes = display_name_changes(&sandbox).await;
    assert_eq!(changes.len(), 1, "one rename, one event");
    let change = changes[0]
        .changes
        .iter()
        .find(|change| change.field == "display_name")
        .expect("the field is named");
    assert!(change.old_value.is_empty() && change.new_value.is_empty());
    let admin = sandbox.db.admin_pool().await;
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM identity.audit_outbox WHERE position($1 in payload) > 0",
    )
    .bind("Renamed".as_bytes())
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(leaked, 0, "the sealed name never reaches the trail");

    // The same name again (empty mask: the fields given; no etag: no
    // check) writes nothing: same etag, no new event.
    let same = update(
        &sandbox,
        &tokens.access_token,
        UpdateProfileRequest {
            display_name: "Zoë Renamed".into(),
            ..Default::default()
        },
    )
    .await
    .expect("idempotent")
    .user
    .expect("user");
    assert_eq!(same.etag, updated.etag);
    assert_eq!(display_name_changes(&sandbox).await.len(), 1);
    stack.shutdown().await;
}

#[tokio::test]
async fn a_rename_with_a_stale_etag_is_aborted_and_changes_nothing() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("First Tab").await;
    let tokens = sandbox.login(&email).await;
    let read = current(&sandbox, &tokens.access_token).await;
    update(
        &sandbox,
        &tokens.access_token,
        UpdateProfileRequest {
            display_name: "Second Tab Wins".into(),
            update_mask: mask(&["*"]),
            etag: read.etag.clone(),
        },
    )
    .await
    .expect("the first write");

    for stale in [read.etag.clone(), "\"not-an-etag\"".to_owned()] {
        let refused = update(
            &sandbox,
            &tokens.access_token,
            UpdateProfileRequest {
                display_name: "First Tab Loses".into(),
                update_mask: mask(&["display_name"]),
                etag: stale,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(refused.code(), Code::Aborted);
        assert_eq!(reason(&refused), "ETAG_MISMATCH");
    }
    assert_eq!(
        current(&sandbox, &tokens.access_token).await.display_name,
        "Second Tab Wins"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn a_profile_update_with_a_bad_name_mask_or_etag_is_an_invalid_argument() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Valid Name").await;
    let tokens = sandbox.login(&email).await;
    let cases = [
        (
            UpdateProfileRequest {
                display_name: String::new(),
                update_mask: mask(&["display_name"]),
                ..Default::default()
            },
            vec!["display_name"],
        ),
        (
            UpdateProfileRequest {
                display_name: "Nul\0Name".into(),
                ..Default::default()
            },
            vec!["display_name"],
        ),
        (
            UpdateProfileRequest {
                display_name: "x".repeat(101),
                ..Default::default()
            },
            vec!["display_name"],
        ),
        (
            UpdateProfileRequest {
                display_name: "Fine".into(),
                update_mask: mask(&["email"]),
                ..Default::default()
            },
            vec!["update_mask.paths[0]"],
        ),
        (
            UpdateProfileRequest {
                display_name: "Bell\u{7}".into(),
                update_mask: mask(&["roles"]),
                ..Default::default()
            },
            vec!["display_name", "update_mask.paths[0]"],
        ),
        (
            UpdateProfileRequest {
                display_name: "Fine".into(),
                etag: "\"abc\0\"".into(),
                ..Default::default()
            },
            vec!["etag"],
        ),
        (
            UpdateProfileRequest {
                display_name: "Fine".into(),
                etag: "e".repeat(65),
                ..Default::default()
            },
            vec!["etag"],
        ),
    ];
    for (request, expected) in cases {
        let described = format!("{request:?}");
        let refused = update(&sandbox, &tokens.access_token, request)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{described}");
        let mut fields = violated_fields(&refused);
        fields.sort();
        assert_eq!(fields, expected, "{described}");
    }
    assert_eq!(
        current(&sandbox, &tokens.access_token).await.display_name,
        "Valid Name"
    );

    let anonymous = sandbox
        .identity()
        .update_profile(UpdateProfileRequest {
            display_name: "Hijack".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    stack.shutdown().await;
}
