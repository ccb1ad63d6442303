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

/// Guards a test against the hang it checks for; generous, so a slow
/// machine never fails it (the test asserts the outcome, not a duration).
const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(60);

/// A port that accepts TCP connections (the kernel completes them into the
/// listen backlog) and never says a word, like a hung process.
fn silent_port() -> (std::net::TcpListener, u16) {
    let listener =
        std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).expect("bind a listener");
    let port = listener.local_addr().expect("its address").port();
    (listener, port)
}

#[tokio::test]
async fn a_peer_that_accepts_tcp_and_never_answers_fails_a_call_without_a_deadline_as_unavailable()
{
    fitflow_server::install_crypto_provider();
    let certs = fitflow_testkit::certs(&["audit", "billing"]);
    let (_listener, port) = silent_port();
    let channel = fitflow_server::client::channel(
        &format!("https://127.0.0.1:{port}"),
        "audit",
        &TlsPaths::in_dir(&certs.dir, "billing"),
    )
    .expect("a channel");

    // No deadline on the call: only the channel's handshake bound ends it.
    let answer = tokio::time::timeout(HANG_GUARD, health_over(channel))
        .await
        .expect("the call ends instead of hanging");
    let status = answer.expect_err("a silent peer answers nothing");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[tokio::test]
async fn a_booking_whose_clients_service_accepts_tcp_and_never_answers_is_dependency_unavailable() {
    use crate::identity_support::reason;
    use crate::scheduling::{SCHEDULING, book, class_type, next_year};
    use fitflow_proto::scheduling::ClassCategory;

    let sandbox = Sandbox::new().await;
    // Clients and tenancy are not started: the sandbox keeps their ports
    // bound, so scheduling's (and identity's) connections to them are
    // accepted and never answered.
    let stack = sandbox.start(&[IDENTITY, AUDIT, SCHEDULING]).await;
    let (_, email) = sandbox.register("Trainer").await;
    let token = sandbox.login(&email).await.access_token;
    let class = class_type(&sandbox, &token, ClassCategory::Individual, 1).await;

    let client_id = uuid::Uuid::new_v4().to_string();
    let booking = book(&sandbox, &token, &class.id, next_year(3, 2, 15), &client_id);
    let answer = tokio::time::timeout(HANG_GUARD, booking)
        .await
        .expect("the booking is answered instead of hanging");
    let status = answer.expect_err("clients never answered");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), "DEPENDENCY_UNAVAILABLE");
    stack.shutdown().await;
}
