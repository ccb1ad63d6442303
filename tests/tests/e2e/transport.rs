//! Every port speaks mutual TLS 1.3, serves health and reflection, and admits
//! only the peers each RPC names.

use fitflow_e2e::Sandbox;
use fitflow_e2e::{AUDIT, IDENTITY};
use fitflow_proto::audit::IngestRequest;
use fitflow_server::tls::TlsPaths;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

async fn health_over(channel: tonic::transport::Channel) -> Result<i32, tonic::Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|response| response.into_inner().status)
}

#[tokio::test]
async fn plaintext_unknown_ca_and_unlisted_peers_are_all_refused() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let audit_port = sandbox.ports[&AUDIT];

    // A known peer is served.
    assert!(health_over(sandbox.channel(AUDIT, "billing")).await.is_ok());

    // Plaintext HTTP/2.
    let plaintext =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{audit_port}"))
            .unwrap()
            .connect_lazy();
    assert!(
        health_over(plaintext).await.is_err(),
        "plaintext must be refused"
    );

    // A certificate from a CA nobody trusts, even naming a real service.
    let foreign = fitflow_testkit::foreign_certs(&["identity"]);
    let impostor = TlsPaths {
        ca: sandbox.certs.ca(),
        cert: foreign.cert("identity"),
        key: foreign.key("identity"),
    };
    let channel = fitflow_server::client::channel(
        &format!("https://127.0.0.1:{audit_port}"),
        "audit",
        &impostor,
    )
    .unwrap();
    assert!(
        health_over(channel).await.is_err(),
        "unknown CA must be refused"
    );

    // A valid certificate of a peer not on the ingest allow-list.
    let requests = futures::stream::iter(vec![IngestRequest { events: vec![] }]);
    let status = sandbox
        .audit_ingest("gateway")
        .ingest(requests)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    stack.shutdown().await;
}

/// The service names a reflection endpoint lists; `$version` is `v1` or
/// `v1alpha` (grpcurl 1.8 speaks only v1alpha), whose types differ but not their shape.
macro_rules! reflected_services {
    ($version:ident, $channel:expr) => {{
        use tonic_reflection::pb::$version as reflection;
        let request = reflection::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                reflection::server_reflection_request::MessageRequest::ListServices(String::new()),
            ),
        };
        let mut responses =
            reflection::server_reflection_client::ServerReflectionClient::new($channel)
                .server_reflection_info(futures::stream::iter(vec![request]))
                .await
                .unwrap()
                .into_inner();
        match responses
            .message()
            .await
            .unwrap()
            .unwrap()
            .message_response
            .unwrap()
        {
            reflection::server_reflection_response::MessageResponse::ListServicesResponse(list) => {
                list.service
                    .into_iter()
                    .map(|service| service.name)
                    .collect::<Vec<_>>()
            }
            other => panic!("unexpected reflection answer {other:?}"),
        }
    }};
}

#[tokio::test]
async fn every_port_serves_health_and_reflection_for_old_and_new_tools() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    for (service, expected) in [
        (IDENTITY, "fitflow.identity.v1.IdentityService"),
        (AUDIT, "fitflow.audit.v1.AuditService"),
    ] {
        let status = health_over(sandbox.channel(service, "operator"))
            .await
            .unwrap();
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
        let v1alpha = reflected_services!(v1alpha, sandbox.channel(service, "operator"));
        assert!(
            v1alpha.iter().any(|name| name == expected),
            "v1alpha lists {expected}"
        );
        let v1 = reflected_services!(v1, sandbox.channel(service, "operator"));
        assert!(
            v1.iter().any(|name| name == expected),
            "v1 lists {expected}"
        );
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn reflection_describes_error_details_so_grpcurl_can_decode_them() {
    use tonic_reflection::pb::v1alpha as reflection;
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    for symbol in ["google.rpc.ErrorInfo", "google.rpc.BadRequest"] {
        let request = reflection::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                reflection::server_reflection_request::MessageRequest::FileContainingSymbol(
                    symbol.to_owned(),
                ),
            ),
        };
        let mut responses = reflection::server_reflection_client::ServerReflectionClient::new(
            sandbox.channel(IDENTITY, "operator"),
        )
        .server_reflection_info(futures::stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
        let answer = responses
            .message()
            .await
            .unwrap()
            .unwrap()
            .message_response
            .unwrap();
        assert!(
            matches!(
                answer,
                reflection::server_reflection_response::MessageResponse::FileDescriptorResponse(_)
            ),
            "{symbol} is not described: {answer:?}"
        );
    }
    stack.shutdown().await;
}
