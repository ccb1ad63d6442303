//! Ingestion: idempotency, per-event rejection, forged sources, concurrency.

use fitflow_proto::audit::IngestRequest;
use tonic::Code;

use crate::helpers::{acknowledged, change_event, ingest, test_audit, view_event};

#[tokio::test]
async fn a_retried_batch_is_stored_once() {
    let audit = test_audit().await;
    let mut client = audit.ingest_client(Some("clients")).await;
    let batch = vec![
        change_event("clients", 3),
        view_event("clients", 2),
        change_event("clients", 1),
    ];
    let ids: Vec<String> = batch.iter().map(|event| event.event_id.clone()).collect();

    let first = ingest(&mut client, vec![batch.clone()]).await;
    let retried = ingest(&mut client, vec![batch]).await;

    assert_eq!(acknowledged(&first[0]), ids);
    assert_eq!(acknowledged(&retried[0]), ids);
    assert_eq!(audit.stored_count().await, 3);
    let report = fitflow_audit::verify_chain(&audit.pool, "clients")
        .await
        .expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified_links, 3);
}

#[tokio::test]
async fn an_invalid_event_is_rejected_while_the_rest_of_its_batch_is_stored() {
    let audit = test_audit().await;
    let mut client = audit.ingest_client(Some("clients")).await;
    let mut without_purpose = view_event("clients", 1);
    without_purpose.purpose = 0;
    let mut bad_resource = change_event("clients", 1);
    bad_resource.resource_id = "42".to_owned();
    let good = [change_event("clients", 1), view_event("clients", 1)];
    let batch = vec![
        good[0].clone(),
        without_purpose,
        bad_resource,
        good[1].clone(),
    ];

    let response = ingest(&mut client, vec![batch]).await.remove(0);

    assert_eq!(
        acknowledged(&response),
        [good[0].event_id.as_str(), good[1].event_id.as_str()]
    );
    let rejected: Vec<_> = response
        .rejected
        .iter()
        .map(|rejected| (rejected.index, rejected.reason.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [
            (1, "events[1].purpose is required for access events"),
            (2, "events[2].resource_id must be a UUID")
        ]
    );
    assert_eq!(audit.stored_count().await, 2);
}

#[tokio::test]
async fn a_service_cannot_send_events_in_another_services_name() {
    let audit = test_audit().await;
    let mut client = audit.ingest_client(Some("clients")).await;
    let own = change_event("clients", 1);
    let forged = change_event("billing", 1);

    let response = ingest(&mut client, vec![vec![own.clone(), forged]])
        .await
        .remove(0);

    assert_eq!(acknowledged(&response), [own.event_id.as_str()]);
    assert_eq!(response.rejected.len(), 1);
    assert_eq!(
        response.rejected[0].reason,
        "events[1].source_service must be the calling service"
    );
    assert_eq!(audit.stored_count().await, 1);
}

#[tokio::test]
async fn a_batch_of_more_than_a_thousand_events_ends_the_stream_with_invalid_argument() {
    let audit = test_audit().await;
    let mut client = audit.ingest_client(Some("clients")).await;
    let events = vec![change_event("clients", 1); 1_001];
    let mut responses = client
        .ingest(tokio_stream::iter([IngestRequest { events }]))
        .await
        .expect("open the stream")
        .into_inner();
    let status = responses.message().await.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(audit.stored_count().await, 0);
}

#[tokio::test]
async fn concurrent_batches_of_one_source_on_two_streams_keep_one_unbroken_chain() {
    let audit = test_audit().await;
    let client = audit.ingest_client(Some("clients")).await;
    let batches = |count| {
        (0..count)
            .map(|_| (0..5).map(|_| change_event("clients", 1)).collect())
            .collect::<Vec<_>>()
    };
    let (mut left, mut right) = (client.clone(), client);
    let (left_batches, right_batches) = (batches(10), batches(10));
    let (left_responses, right_responses) = tokio::join!(
        ingest(&mut left, left_batches),
        ingest(&mut right, right_batches)
    );
    assert!(
        left_responses
            .iter()
            .chain(&right_responses)
            .all(|r| r.acknowledged_event_ids.len() == 5)
    );

    let report = fitflow_audit::verify_chain(&audit.pool, "clients")
        .await
        .expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified_links, 100);
}

#[tokio::test]
async fn an_event_repeated_within_one_batch_and_across_batches_is_stored_once_in_chain_order() {
    let audit = test_audit().await;
    let mut client = audit.ingest_client(Some("clients")).await;
    let (first, second) = (change_event("clients", 2), view_event("clients", 1));
    let batch = vec![first.clone(), second.clone(), first.clone()];

    let answered = ingest(
        &mut client,
        vec![batch, vec![second.clone(), first.clone()]],
    )
    .await;

    assert_eq!(
        acknowledged(&answered[0]),
        [
            first.event_id.as_str(),
            second.event_id.as_str(),
            first.event_id.as_str()
        ]
    );
    assert_eq!(answered[1].acknowledged_event_ids.len(), 2);
    assert_eq!(audit.stored_count().await, 2);
    let first_sequence: i64 =
        sqlx::query_scalar("SELECT chain_sequence FROM audit_log WHERE event_id = $1")
            .bind(uuid::Uuid::try_parse(&first.event_id).expect("uuid"))
            .fetch_one(&audit.pool)
            .await
            .expect("stored");
    assert_eq!(first_sequence, 1, "batch order is chain order");
    let report = fitflow_audit::verify_chain(&audit.pool, "clients")
        .await
        .expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified_links, 2);
}
