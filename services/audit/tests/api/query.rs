//! ListEvents: operator-only, filtered, newest first, paginated.

use std::time::Duration;

use fitflow_audit::AuditQuery;
use fitflow_auth::{Principal, Role};
use fitflow_proto::audit::audit_service_server::AuditService;
use fitflow_proto::audit::{AuditEvent, EventFilter, ListEventsRequest, ListEventsResponse};
use tonic::{Code, Request};
use tonic_types::StatusExt as _;
use uuid::Uuid;

use crate::helpers::{TestAudit, change_event, ingest, test_audit, view_event};

fn principal(roles: Vec<Role>) -> Principal {
    Principal {
        user_id: Uuid::new_v4(),
        session_id: Uuid::new_v4(),
        roles,
        supervised_trainer_ids: Vec::new(),
        // A session that completed MFA, as the operator role requires.
        amr: vec!["pwd".into(), "otp".into()],
        studio_ids: Vec::new(),
        claims_truncated: false,
        claims_partial: false,
    }
}

async fn list_as(
    audit: &TestAudit,
    principal: Option<Principal>,
    request: ListEventsRequest,
) -> Result<ListEventsResponse, tonic::Status> {
    let mut request = Request::new(request);
    if let Some(principal) = principal {
        request.extensions_mut().insert(principal);
    }
    // Operator-wide reads are accepted only over the operator certificate.
    request
        .extensions_mut()
        .insert(fitflow_auth::PeerIdentity("operator".to_owned()));
    AuditQuery::new(audit.pool.clone())
        .list_events(request)
        .await
        .map(tonic::Response::into_inner)
}

/// Lists as one operator throughout, since a page token is bound to its caller.
async fn list(audit: &TestAudit, request: ListEventsRequest) -> ListEventsResponse {
    let operator = Principal {
        user_id: Uuid::from_u128(1),
        ..principal(vec![Role::Operator])
    };
    list_as(audit, Some(operator), request)
        .await
        .expect("an operator may list")
}

fn ids(response: &ListEventsResponse) -> Vec<String> {
    response
        .events
        .iter()
        .map(|stored| {
            stored
                .event
                .as_ref()
                .map(|event| event.event_id.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// Five events about one client (minutes 5..1 ago, one per minute, so newest
/// first is reverse order), two about another, from two sources.
async fn seeded() -> (TestAudit, Vec<AuditEvent>, Vec<AuditEvent>) {
    let audit = test_audit().await;
    let client_id = Uuid::new_v4().to_string();
    let about_client: Vec<AuditEvent> = (1..=5)
        .rev()
        .map(|minutes_ago| {
            let event = if minutes_ago % 2 == 0 {
                view_event("clients", minutes_ago)
            } else {
                change_event("clients", minutes_ago)
            };
            AuditEvent {
                resource_id: client_id.clone(),
                ..event
            }
        })
        .collect();
    let others = vec![change_event("billing", 10), change_event("billing", 0)];
    let mut clients = audit.ingest_client(Some("clients")).await;
    ingest(&mut clients, vec![about_client.clone()]).await;
    let mut billing = audit.ingest_client(Some("billing")).await;
    ingest(&mut billing, vec![others.clone()]).await;
    (audit, about_client, others)
}

#[tokio::test]
async fn list_events_filters_by_record_and_pages_newest_first() {
    let (audit, about_client, _) = seeded().await;
    let newest_first: Vec<String> = about_client
        .iter()
        .rev()
        .map(|e| e.event_id.clone())
        .collect();
    let mut request = ListEventsRequest {
        filter: Some(EventFilter {
            resource_type: "clients".to_owned(),
            resource_id: about_client[0].resource_id.clone(),
            ..Default::default()
        }),
        page_size: 2,
        ..Default::default()
    };

    let mut pages = Vec::new();
    loop {
        let page = list(&audit, request.clone()).await;
        pages.push(ids(&page));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }

    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(pages.concat(), newest_first);
}

#[tokio::test]
async fn list_events_filters_by_actor_source_and_time() {
    let (audit, about_client, others) = seeded().await;
    let actor = match about_client[2]
        .actor
        .as_ref()
        .and_then(|actor| actor.kind.clone())
    {
        Some(fitflow_proto::types::actor::Kind::UserId(user_id)) => user_id,
        _ => panic!("seeded events have user actors"),
    };
    let by_actor = list(
        &audit,
        ListEventsRequest {
            filter: Some(EventFilter {
                actor_user_id: actor,
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&by_actor), [about_client[2].event_id.clone()]);

    let from_billing = list(
        &audit,
        ListEventsRequest {
            filter: Some(EventFilter {
                source_service: "billing".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        ids(&from_billing),
        [others[1].event_id.clone(), others[0].event_id.clone()]
    );
    assert_eq!(from_billing.events[0].sequence, 2);
    assert_eq!(from_billing.events[0].chain_hash.len(), 64);
    assert!(from_billing.events[0].store_time.is_some());

    let now = std::time::SystemTime::now();
    let last_three_minutes = list(
        &audit,
        ListEventsRequest {
            filter: Some(EventFilter {
                start_time: Some((now - Duration::from_secs(150)).into()),
                end_time: Some((now - Duration::from_secs(30)).into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        ids(&last_three_minutes),
        [
            about_client[4].event_id.clone(),
            about_client[3].event_id.clone()
        ]
    );
    assert_eq!(
        last_three_minutes.events[0].event.as_ref(),
        Some(&about_client[4])
    );
}

#[tokio::test]
async fn a_non_operator_gets_permission_denied_and_an_anonymous_caller_unauthenticated() {
    let audit = test_audit().await;
    let denied = list_as(
        &audit,
        Some(principal(vec![Role::Trainer])),
        ListEventsRequest::default(),
    )
    .await
    .expect_err("not an operator");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let anonymous = list_as(&audit, None, ListEventsRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn an_invalid_list_request_names_its_bad_fields() {
    let audit = test_audit().await;
    let status = list_as(
        &audit,
        Some(principal(vec![Role::Operator])),
        ListEventsRequest {
            filter: Some(EventFilter {
                resource_id: "not-a-uuid".to_owned(),
                ..Default::default()
            }),
            page_token: "forged".to_owned(),
            ..Default::default()
        },
    )
    .await
    .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = status.get_error_details();
    let fields: Vec<_> = details
        .bad_request()
        .expect("field violations")
        .field_violations
        .iter()
        .map(|violation| violation.field.as_str())
        .collect();
    assert_eq!(
        fields,
        ["filter.resource_id", "filter.resource_id", "page_token"]
    );
}
