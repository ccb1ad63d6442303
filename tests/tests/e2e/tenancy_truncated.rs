//! A token cut at 256 ids (`claims_truncated`) grants what tenancy says, in
//! every service that authorizes from it: the platform's verifier asks
//! tenancy's `GetActingFor` for the rest (cached ≤ 2 s). Here audit admits a
//! lead to the trail of a member beyond the cap, stops when that member
//! leaves, and falls back to the token's own ids while tenancy is down.

use std::time::Duration;

use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::tenancy as pb;
use tonic::Code;
use uuid::Uuid;

use crate::tenancy::{TENANCY, claims_of, ids, member, member_trail, tenancy, trainer};

/// Members seeded below the lead: more than the 256 ids a token carries.
const MEMBERS: i64 = 300;
/// A generous bound for what must happen within the 2 s revocation bound.
const SETTLE: Duration = Duration::from_secs(20);

/// Seeds `MEMBERS` trainers in `lead_id`'s team as the database admin (the
/// API would take minutes); returns their ids.
async fn seed_team(sandbox: &Sandbox, lead_id: &str) -> Vec<String> {
    let admin = sandbox.db.admin_pool().await;
    let lead = Uuid::parse_str(lead_id).expect("a uuid");
    let members: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO tenancy.trainers (id, business_name, time_zone, province) \
         SELECT gen_random_uuid(), 'Seeded ' || n, 'America/Toronto', 'ON' \
         FROM generate_series(1, $1) AS n RETURNING id",
    )
    .bind(MEMBERS)
    .fetch_all(&admin)
    .await
    .expect("seed trainers");
    sqlx::query(
        "INSERT INTO tenancy.team_links (trainer_id, leader_id) SELECT unnest($1::uuid[]), $2",
    )
    .bind(&members)
    .bind(lead)
    .execute(&admin)
    .await
    .expect("seed the team");
    members.iter().map(ToString::to_string).collect()
}

/// A lead of `MEMBERS` trainers with a fresh token: id, email, token, the
/// members the token carries and those beyond its cap.
async fn truncated_lead(sandbox: &Sandbox) -> (String, String, String, Vec<String>, Vec<String>) {
    let (lead_id, lead_email, _) = trainer(sandbox, "Lena").await;
    let members = seed_team(sandbox, &lead_id).await;
    let token = sandbox.login(&lead_email).await.access_token;
    let claims = claims_of(&token);
    assert_eq!(claims["claims_truncated"], serde_json::Value::Bool(true));
    let carried = ids(&claims, "sup");
    assert!(carried.len() <= 256, "{} ids", carried.len());
    let (inside, beyond): (Vec<String>, Vec<String>) =
        members.into_iter().partition(|id| carried.contains(id));
    assert!(!inside.is_empty() && beyond.len() >= 44, "{}", beyond.len());
    (lead_id, lead_email, token, inside, beyond)
}

#[tokio::test]
async fn a_truncated_token_reaches_a_member_beyond_the_cap_until_the_member_leaves() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, lead_email, token, _, beyond) = truncated_lead(&sandbox).await;
    let (leaving, staying) = (&beyond[0], &beyond[1]);

    assert_eq!(member_trail(&sandbox, &token, leaving).await, Code::Ok);
    assert_eq!(member_trail(&sandbox, &token, staying).await, Code::Ok);
    let (_, _, stranger) = member(&sandbox, "Sam").await;
    assert_eq!(
        member_trail(&sandbox, &stranger, leaving).await,
        Code::PermissionDenied,
        "tenancy completes the lead's token only"
    );

    // The lead removes the member; tenancy marks the lead's claims stale.
    tenancy(&sandbox, "gateway")
        .leave_team(bearer(
            pb::LeaveTeamRequest {
                trainer_id: leaving.clone(),
            },
            &token,
        ))
        .await
        .expect("the lead removes the member");
    sandbox.structure_settled().await;
    fitflow_testkit::eventually("the old token is refused as stale", SETTLE, async || {
        member_trail(&sandbox, &token, staying).await == Code::Unauthenticated
    })
    .await;
    let refreshed = sandbox.login(&lead_email).await.access_token;
    assert_eq!(
        claims_of(&refreshed)["claims_truncated"],
        serde_json::Value::Bool(true),
        "still more than 256"
    );
    fitflow_testkit::eventually("the member who left is out of reach", SETTLE, async || {
        member_trail(&sandbox, &refreshed, leaving).await == Code::PermissionDenied
    })
    .await;
    assert_eq!(
        member_trail(&sandbox, &refreshed, staying).await,
        Code::Ok,
        "the others beyond the cap are still reached"
    );
}

#[tokio::test]
async fn while_tenancy_is_down_a_truncated_token_grants_only_the_ids_it_carries() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let tenancy_stack = sandbox.start(&[TENANCY]).await;
    let (_, _, token, inside, beyond) = truncated_lead(&sandbox).await;
    assert_eq!(member_trail(&sandbox, &token, &beyond[0]).await, Code::Ok);

    tenancy_stack.shutdown().await;
    fitflow_testkit::eventually(
        "a member beyond the cap is out of reach without tenancy",
        SETTLE,
        async || member_trail(&sandbox, &token, &beyond[0]).await == Code::PermissionDenied,
    )
    .await;
    assert_eq!(
        member_trail(&sandbox, &token, &inside[0]).await,
        Code::Ok,
        "the token's own ids still count"
    );
}
