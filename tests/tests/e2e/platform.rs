//! A service is a platform trait plus one registry line: a throwaway service,
//! registered in a test, is served with health, reflection, its mTLS peer
//! policy, its validated migrations, an outbox relay and audit events — and
//! the binary's stack code was not edited for it.

use std::sync::Arc;
use std::time::Duration;

use fitflow_e2e::widget::proto::CreateWidgetRequest;
use fitflow_e2e::widget::proto::widget_service_client::WidgetServiceClient;
use fitflow_e2e::widget::{WIDGETS, WidgetService};
use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use uuid::Uuid;

async fn widget_sandbox() -> Sandbox {
    // The widget borrows a real service's row of the table (its port, schema
    // and SPIFFE id), so that service is left out of this registry.
    let others: Vec<_> = fitflow::registry()
        .services()
        .iter()
        .filter(|service| service.name() != WIDGETS)
        .cloned()
        .collect();
    let registry = fitflow_platform::Registry::new(others)
        .expect("the build's other services")
        .with(Arc::new(WidgetService))
        .expect("the throwaway service fits the table");
    Sandbox::with_registry(registry).await
}

#[tokio::test]
async fn a_registered_service_is_served_with_health_reflection_and_its_peer_policy() {
    let sandbox = widget_sandbox().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT, WIDGETS]).await;

    // Health reports the service under the name its generated server carries.
    let status = HealthClient::new(sandbox.channel(WIDGETS, "operator"))
        .check(HealthCheckRequest {
            service: "fitflow.testing.v1.WidgetService".into(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    let listed = reflected_services!(v1, sandbox.channel(WIDGETS, "operator"));
    assert!(
        listed.contains(&"fitflow.testing.v1.WidgetService".to_owned()),
        "reflection lists the service: {listed:?}"
    );

    // Its peer policy admits the gateway and operators, not other services.
    let (_, email) = sandbox.register("Widget Maker").await;
    let token = sandbox.login(&email).await.access_token;
    let refused = WidgetServiceClient::new(sandbox.channel(WIDGETS, "billing"))
        .create_widget(bearer(
            CreateWidgetRequest {
                name: "sprocket".into(),
            },
            &token,
        ))
        .await
        .expect_err("billing may not call the widget service");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let without_token = WidgetServiceClient::new(sandbox.channel(WIDGETS, "gateway"))
        .create_widget(CreateWidgetRequest {
            name: "sprocket".into(),
        })
        .await
        .expect_err("a user call needs a token");
    assert_eq!(without_token.code(), Code::Unauthenticated);
    stack.shutdown().await;
}

#[tokio::test]
async fn a_registered_service_gets_platform_tables_and_its_changes_reach_the_audit_trail() {
    let sandbox = widget_sandbox().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT, WIDGETS]).await;
    let admin = sandbox.db.admin_pool().await;

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'documentation' ORDER BY table_name",
    )
    .fetch_all(&admin)
    .await
    .expect("list tables");
    for table in ["_sqlx_migrations", "audit_outbox", "data_keys", "widgets"] {
        assert!(tables.contains(&table.to_owned()), "{table} in {tables:?}");
    }

    let (_, email) = sandbox.register("Widget Maker").await;
    let token = sandbox.login(&email).await.access_token;
    let widget = WidgetServiceClient::new(sandbox.channel(WIDGETS, "gateway"))
        .create_widget(bearer(
            CreateWidgetRequest {
                name: "sprocket".into(),
            },
            &token,
        ))
        .await
        .expect("the gateway creates a widget")
        .into_inner();
    let widget_id: Uuid = widget.id.parse().expect("a UUID");

    let stored = async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM audit.audit_log \
             WHERE source_service = 'documentation' AND resource_type = 'widgets' \
             AND resource_id = $1",
        )
        .bind(widget_id)
        .fetch_one(&admin)
        .await
        .expect("count audit events")
            == 1
    };
    fitflow_testkit::eventually(
        "the widget's audit event is in the trail",
        Duration::from_secs(20),
        stored,
    )
    .await;
    stack.shutdown().await;
}
