//! Reads beyond the operator: a trainer's own records, the access log by
//! resource, exports that leave an EXPORT event, and VerifyChain.

use fitflow_audit::AuditQuery;
use fitflow_auth::Role;
use fitflow_proto::audit::audit_service_server::AuditService;
use fitflow_proto::audit::{
    AuditEvent, ChainBreakKind, EventFilter, ExportEventsRequest, ListEventsRequest, Log, Purpose,
    VerifyChainRequest,
};
use futures::StreamExt as _;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{TestAudit, as_user, change_event, ingest, test_audit, user, view_event};

fn event_ids(events: &[fitflow_proto::audit::StoredEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|stored| stored.event.as_ref().map(|event| event.event_id.clone()))
        .collect()
}

/// Two trainers' events: for `mine`, a change and two views of one client;
/// for another tenant, one view of the same client id.
async fn two_tenants(mine: Uuid) -> (TestAudit, Uuid, Vec<AuditEvent>, AuditEvent) {
    let audit = test_audit().await;
    let client_id = Uuid::new_v4();
    let about = |event: AuditEvent, tenant: Uuid| AuditEvent {
        resource_id: client_id.to_string(),
        tenant_id: tenant.to_string(),
        ..event
    };
    let my_events = vec![
        about(change_event("clients", 3), mine),
        about(view_event("clients", 2), mine),
        about(view_event("clients", 1), mine),
    ];
    let theirs = about(view_event("clients", 0), Uuid::new_v4());
    let mut client = audit.ingest_client(Some("clients")).await;
    let mut batch = my_events.clone();
    batch.push(theirs.clone());
    ingest(&mut client, vec![batch]).await;
    (audit, client_id, my_events, theirs)
}

#[tokio::test]
async fn a_trainer_lists_exactly_the_events_of_their_own_tenant() {
    let trainer = user(vec![Role::Trainer]);
    let (audit, _, mine, _) = two_tenants(trainer.user_id).await;
    let query = AuditQuery::new(audit.pool.clone());

    let listed = query
        .list_events(as_user(
            &trainer,
            ListEventsRequest {
                filter: Some(EventFilter {
                    tenant_id: trainer.user_id.to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("a trainer may list their own tenant")
        .into_inner();
    let newest_first: Vec<String> = mine.iter().rev().map(|e| e.event_id.clone()).collect();
    assert_eq!(event_ids(&listed.events), newest_first);

    let someone_else = query
        .list_events(as_user(
            &trainer,
            ListEventsRequest {
                filter: Some(EventFilter {
                    tenant_id: Uuid::new_v4().to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect_err("not their tenant");
    assert_eq!(someone_else.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn who_viewed_a_client_is_the_access_log_filtered_by_the_record() {
    let (audit, client_id, mine, theirs) = two_tenants(Uuid::new_v4()).await;
    let operator = user(vec![Role::Operator]);
    let viewers = AuditQuery::new(audit.pool.clone())
        .list_events(as_user(
            &operator,
            ListEventsRequest {
                filter: Some(EventFilter {
                    log: Log::Access as i32,
                    resource_type: "clients".to_owned(),
                    resource_id: client_id.to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("an operator may list")
        .into_inner();
    assert_eq!(
        event_ids(&viewers.events),
        [
            theirs.event_id.clone(),
            mine[2].event_id.clone(),
            mine[1].event_id.clone()
        ]
    );
}

#[tokio::test]
async fn an_export_records_an_export_event_by_the_caller_before_it_streams_every_match() {
    let trainer = user(vec![Role::Trainer]);
    let (audit, client_id, mine, _) = two_tenants(trainer.user_id).await;
    let query = AuditQuery::new(audit.pool.clone());

    let mut chunks = query
        .export_events(as_user(
            &trainer,
            ExportEventsRequest {
                filter: Some(EventFilter {
                    tenant_id: trainer.user_id.to_string(),
                    resource_type: "clients".to_owned(),
                    resource_id: client_id.to_string(),
                    ..Default::default()
                }),
                purpose: Purpose::Operations as i32,
            },
        ))
        .await
        .expect("a trainer may export their own tenant")
        .into_inner();
    let mut exported = Vec::new();
    let mut export_event_id = String::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.expect("a chunk");
        if export_event_id.is_empty() {
            export_event_id = chunk.export_event_id.clone();
        }
        exported.extend(event_ids(&chunk.events));
    }

    // The export's own event was stored first, so it is the newest match.
    let mut expected = vec![export_event_id.clone()];
    expected.extend(mine.iter().rev().map(|e| e.event_id.clone()));
    assert_eq!(exported, expected);

    let (action, actor, purpose, source): (String, Uuid, String, String) = sqlx::query_as(
        "SELECT action, actor_user_id, purpose, source_service FROM access_log WHERE event_id = $1",
    )
    .bind(Uuid::try_parse(&export_event_id).expect("uuid"))
    .fetch_one(&audit.pool)
    .await
    .expect("the export event is stored");
    assert_eq!(
        (action.as_str(), actor, purpose.as_str(), source.as_str()),
        ("export", trainer.user_id, "operations", "audit")
    );
    let report = fitflow_audit::verify_chain(&audit.pool, "audit")
        .await
        .expect("verify");
    assert!(report.is_intact(), "{report:?}");
}

#[tokio::test]
async fn an_export_without_a_purpose_is_refused_and_records_nothing() {
    let audit = test_audit().await;
    let status = AuditQuery::new(audit.pool.clone())
        .export_events(as_user(
            &user(vec![Role::Operator]),
            ExportEventsRequest::default(),
        ))
        .await
        .err()
        .expect("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(audit.stored_count().await, 0);
}

#[tokio::test]
async fn verify_chain_names_the_edited_row_and_needs_the_operator_role() {
    let audit = test_audit().await;
    let mut client = audit.ingest_client(Some("clients")).await;
    let events = vec![
        change_event("clients", 3),
        change_event("clients", 2),
        change_event("clients", 1),
    ];
    ingest(&mut client, vec![events.clone()]).await;
    let query = AuditQuery::new(audit.pool.clone());
    let operator = user(vec![Role::Operator]);

    let intact = query
        .verify_chain(as_user(&operator, VerifyChainRequest::default()))
        .await
        .expect("verify")
        .into_inner();
    assert!(intact.intact);
    assert_eq!(intact.chains[0].verified_links, 3);

    sqlx::query("UPDATE audit.audit_log SET action = $1 WHERE event_id = $2")
        .bind(fitflow_audit::domain::action_name(
            fitflow_audit::domain::Action::Delete,
        ))
        .bind(Uuid::try_parse(&events[1].event_id).expect("uuid"))
        .execute(&audit.admin_pool().await)
        .await
        .expect("tamper as the superuser");
    let broken = query
        .verify_chain(as_user(
            &operator,
            VerifyChainRequest {
                source_service: "clients".to_owned(),
            },
        ))
        .await
        .expect("verify")
        .into_inner();
    assert!(!broken.intact);
    let chain = &broken.chains[0];
    assert_eq!(
        (
            chain.broken_sequence,
            chain.break_kind,
            chain.broken_event_id.as_str()
        ),
        (
            2,
            ChainBreakKind::ColumnsAltered as i32,
            events[1].event_id.as_str()
        )
    );

    let denied = query
        .verify_chain(as_user(
            &user(vec![Role::Trainer]),
            VerifyChainRequest::default(),
        ))
        .await
        .expect_err("not an operator");
    assert_eq!(denied.code(), Code::PermissionDenied);
}
