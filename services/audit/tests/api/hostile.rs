//! Hostile input never jams the trail: each test performs an attack and
//! sees it fail while honest events keep flowing.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fitflow_audit::AuditQuery;
use fitflow_auth::{Principal, Role};
use fitflow_proto::audit::audit_service_server::AuditService;
use fitflow_proto::audit::{
    AuditEvent, EventFilter, ExportEventsRequest, IngestRequest, ListEventsRequest, Purpose,
};
use fitflow_proto::types::{Actor, actor};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use uuid::Uuid;

use crate::helpers::{TestAudit, acknowledged, as_user, change_event, ingest, test_audit, user};

fn operator() -> Principal {
    user(vec![Role::Operator])
}

fn rejections(response: &fitflow_proto::audit::IngestResponse) -> Vec<(u32, &str)> {
    response
        .rejected
        .iter()
        .map(|rejected| (rejected.index, rejected.reason.as_str()))
        .collect()
}

fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|violation| violation.field.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Sends one batch with `hostile` between two valid events and checks that
/// exactly the valid ones are stored and `hostile` is rejected for `reason`.
async fn rejected_alone(audit: &TestAudit, hostile: AuditEvent, reason: &str) {
    let mut client = audit.ingest_client(Some("clients")).await;
    let before = audit.stored_count().await;
    let good = [change_event("clients", 2), change_event("clients", 1)];
    let batch = vec![good[0].clone(), hostile, good[1].clone()];

    let response = ingest(&mut client, vec![batch]).await.remove(0);

    assert_eq!(
        acknowledged(&response),
        [good[0].event_id.as_str(), good[1].event_id.as_str()]
    );
    assert_eq!(rejections(&response), [(1, reason)]);
    assert_eq!(audit.stored_count().await, before + 2);
}

#[tokio::test]
async fn nul_in_any_text_field_or_a_year_minus_5000_rejects_only_that_event_and_the_trail_keeps_flowing()
 {
    let audit = test_audit().await;

    let mut nul_resource_type = change_event("clients", 1);
    nul_resource_type.resource_type = "clients\0".to_owned();
    rejected_alone(
        &audit,
        nul_resource_type,
        "events[1].resource_type must not contain control characters",
    )
    .await;

    let mut nul_change_value = change_event("clients", 1);
    nul_change_value.changes[0].new_value = "archived\0".to_owned();
    rejected_alone(
        &audit,
        nul_change_value,
        "events[1].changes[0].new_value must not contain control characters other than tab, CR and LF",
    )
    .await;

    let mut nul_user_agent = change_event("clients", 1);
    nul_user_agent.user_agent = "Mozilla\0".to_owned();
    rejected_alone(
        &audit,
        nul_user_agent,
        "events[1].user_agent must not contain control characters",
    )
    .await;

    let mut nul_client_address = change_event("clients", 1);
    nul_client_address.client_address = "203.0.113.7\0".to_owned();
    rejected_alone(
        &audit,
        nul_client_address,
        "events[1].client_address must be an IP address",
    )
    .await;

    let mut year_minus_5000 = change_event("clients", 1);
    // 5001 BC (year -5000 in ISO numbering), before PostgreSQL's 4713 BC.
    year_minus_5000.occur_time = Some(prost_types::Timestamp {
        seconds: -219_983_155_200,
        nanos: 0,
    });
    rejected_alone(
        &audit,
        year_minus_5000,
        "events[1].occur_time must be between years 1 and 9999",
    )
    .await;

    let mut client = audit.ingest_client(Some("clients")).await;
    let normal: Vec<_> = (0..100).map(|_| change_event("clients", 1)).collect();
    let response = ingest(&mut client, vec![normal]).await.remove(0);
    assert_eq!(response.acknowledged_event_ids.len(), 100);
    assert!(response.rejected.is_empty());
    assert_eq!(audit.stored_count().await, 10 + 100);
    let report = fitflow_audit::verify_chain(&audit.pool, "clients")
        .await
        .expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified_links, 110);
}

#[tokio::test]
async fn a_service_replaying_another_services_event_id_cannot_suppress_its_event() {
    let audit = test_audit().await;
    let mut billing = audit.ingest_client(Some("billing")).await;
    let mut clients = audit.ingest_client(Some("clients")).await;
    let real = change_event("clients", 1);
    let squatted = AuditEvent {
        source_service: "billing".to_owned(),
        ..change_event("billing", 2)
    };
    let squatted = AuditEvent {
        event_id: real.event_id.clone(),
        ..squatted
    };

    let first = ingest(&mut billing, vec![vec![squatted]]).await.remove(0);
    let second = ingest(&mut clients, vec![vec![real.clone()]])
        .await
        .remove(0);
    let retried = ingest(&mut clients, vec![vec![real.clone()]])
        .await
        .remove(0);

    assert_eq!(acknowledged(&first), [real.event_id.as_str()]);
    assert_eq!(acknowledged(&second), [real.event_id.as_str()]);
    assert_eq!(acknowledged(&retried), [real.event_id.as_str()]);
    let sources: Vec<String> = sqlx::query_scalar(
        "SELECT source_service FROM audit_log WHERE event_id = $1 ORDER BY source_service",
    )
    .bind(Uuid::try_parse(&real.event_id).expect("uuid"))
    .fetch_all(&audit.pool)
    .await
    .expect("stored");
    assert_eq!(sources, ["billing", "clients"]);
    for chain in ["billing", "clients"] {
        let report = fitflow_audit::verify_chain(&audit.pool, chain)
            .await
            .expect("verify");
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.verified_links, 1);
    }
}

#[tokio::test]
async fn an_ingest_stream_without_a_peer_identity_is_refused_and_stores_nothing() {
    let audit = test_audit().await;
    let mut anonymous = audit.ingest_client(None).await;
    let refused = anonymous
        .ingest(tokio_stream::iter([IngestRequest {
            events: vec![change_event("clients", 1)],
        }]))
        .await
        .expect_err("no peer, no stream");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(
        refused
            .get_error_details()
            .error_info()
            .map(|info| info.reason.clone()),
        Some("PEER_UNIDENTIFIED".to_owned())
    );
    assert_eq!(audit.stored_count().await, 0);
}

#[tokio::test]
async fn an_event_naming_another_service_as_its_actor_is_rejected() {
    let audit = test_audit().await;
    let mut impostor = change_event("clients", 1);
    impostor.actor = Some(Actor {
        kind: Some(actor::Kind::Service("spiffe://fitflow/identity".to_owned())),
    });
    rejected_alone(
        &audit,
        impostor,
        "events[1].actor.service must be the calling service",
    )
    .await;
    let mut itself = change_event("clients", 1);
    itself.actor = Some(Actor {
        kind: Some(actor::Kind::Service("spiffe://fitflow/clients".to_owned())),
    });
    let mut client = audit.ingest_client(Some("clients")).await;
    let response = ingest(&mut client, vec![vec![itself]]).await.remove(0);
    assert_eq!(response.acknowledged_event_ids.len(), 1);
}

/// Counts ERROR events logged on this thread while it lives.
struct ErrorCounter(Arc<Mutex<usize>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ErrorCounter {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _context: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() == tracing::Level::ERROR {
            *self.0.lock().expect("counter") += 1;
        }
    }
}

#[tokio::test]
async fn hostile_queries_answer_invalid_argument_naming_the_request_field_and_log_no_error() {
    let audit = test_audit().await;
    let query = AuditQuery::new(audit.pool.clone());
    let errors = Arc::new(Mutex::new(0));
    let subscriber = tracing_subscriber::registry().with(ErrorCounter(errors.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);

    let extreme_time = URL_SAFE_NO_PAD.encode(format!("v1:{}:{}", i64::MIN, Uuid::nil()));
    let old_format_far_future =
        URL_SAFE_NO_PAD.encode(format!("v1:{}:{}", 9_000_000_000_000_000_i64, Uuid::nil()));
    let before_4713_bc = prost_types::Timestamp {
        seconds: -220_000_000_000,
        nanos: 0,
    };
    let cases = [
        (
            ListEventsRequest {
                page_token: extreme_time,
                ..Default::default()
            },
            "page_token",
        ),
        (
            ListEventsRequest {
                page_token: old_format_far_future,
                ..Default::default()
            },
            "page_token",
        ),
        (
            ListEventsRequest {
                filter: Some(EventFilter {
                    resource_type: "clients\0".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            "filter.resource_type",
        ),
        (
            ListEventsRequest {
                filter: Some(EventFilter {
                    end_time: Some(before_4713_bc),
                    ..Default::default()
                }),
                ..Default::default()
            },
            "filter.end_time",
        ),
    ];
    for (request, field) in cases {
        let refused = query
            .list_events(as_user(&operator(), request.clone()))
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{request:?}");
        assert_eq!(violated_fields(&refused), [field]);

        let export = ExportEventsRequest {
            filter: request.filter,
            purpose: Purpose::Operations as i32,
        };
        if field != "page_token" {
            let refused = query
                .export_events(as_user(&operator(), export))
                .await
                .err()
                .expect("refused");
            assert_eq!(refused.code(), Code::InvalidArgument);
            assert_eq!(violated_fields(&refused), [field]);
        }
    }
    assert_eq!(*errors.lock().expect("counter"), 0, "no ERROR was logged");
    assert_eq!(
        audit.stored_count().await,
        0,
        "no EXPORT event for an export that never happened"
    );
}

#[tokio::test]
async fn a_page_token_is_refused_for_another_query_or_another_caller() {
    let audit = test_audit().await;
    let mut client = audit.ingest_client(Some("clients")).await;
    ingest(
        &mut client,
        vec![
            (0..3)
                .map(|minutes| change_event("clients", minutes))
                .collect(),
        ],
    )
    .await;
    let query = AuditQuery::new(audit.pool.clone());
    let alice = operator();
    let by_clients = |page_token: String| ListEventsRequest {
        filter: Some(EventFilter {
            source_service: "clients".to_owned(),
            ..Default::default()
        }),
        page_size: 1,
        page_token,
    };
    let first = query
        .list_events(as_user(&alice, by_clients(String::new())))
        .await
        .expect("first page")
        .into_inner();
    let token = first.next_page_token;
    assert!(!token.is_empty());

    let second = query
        .list_events(as_user(&alice, by_clients(token.clone())))
        .await
        .expect("the same query and caller may page on");
    assert_eq!(second.into_inner().events.len(), 1);

    let other_query = ListEventsRequest {
        filter: None,
        ..by_clients(token.clone())
    };
    let refused = query
        .list_events(as_user(&alice, other_query))
        .await
        .expect_err("another query");
    assert_eq!(violated_fields(&refused), ["page_token"]);

    let refused = query
        .list_events(as_user(&operator(), by_clients(token.clone())))
        .await
        .expect_err("another caller");
    assert_eq!(violated_fields(&refused), ["page_token"]);

    let restarted = AuditQuery::new(audit.pool.clone()).with_page_token_key(&[9; 32]);
    let refused = restarted
        .list_events(as_user(&alice, by_clients(token)))
        .await
        .expect_err("another key");
    assert_eq!(violated_fields(&refused), ["page_token"]);
}

#[tokio::test]
async fn the_source_keyed_migration_passes_its_own_validation_query() {
    let audit = test_audit().await;
    let migration =
        include_str!("../../migrations/20261128000003_ingestion_keyed_by_source.up.sql");
    let validation = migration
        .split_once("-- validate:\n")
        .and_then(|(_, rest)| rest.lines().next())
        .and_then(|line| line.strip_prefix("-- "))
        .expect("a validation query");
    let admin = audit.admin_pool().await;
    let mut conn = admin.acquire().await.expect("connect");
    sqlx::query("SET search_path = audit")
        .execute(&mut *conn)
        .await
        .expect("search path");
    let valid: bool = sqlx::query_scalar(validation)
        .fetch_one(&mut *conn)
        .await
        .expect("the validation query runs");
    assert!(valid);
}
