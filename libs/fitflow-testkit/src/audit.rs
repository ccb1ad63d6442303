//! The one in-process audit ingestion server of the tests: the real
//! `AuditIngest` handler on a listener the test bound, as if called by a
//! given mTLS peer, without TLS (transport is tested end to end elsewhere).

use fitflow_audit::AuditIngest;
use fitflow_auth::PeerIdentity;
use fitflow_proto::audit::audit_ingest_service_server::AuditIngestServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

/// Serves audit ingestion from `pool` on `listener` until `shutdown` is
/// cancelled; every request carries the peer identity `peer` (none: an
/// unidentified caller), as the platform's mTLS layer would attach it.
pub fn serve_audit_ingest(
    pool: PgPool,
    peer: Option<&'static str>,
    listener: TcpListener,
    shutdown: CancellationToken,
) {
    let service = AuditIngestServiceServer::with_interceptor(
        AuditIngest::new(pool),
        move |mut request: tonic::Request<()>| {
            if let Some(peer) = peer {
                request
                    .extensions_mut()
                    .insert(PeerIdentity(peer.to_owned()));
            }
            Ok(request)
        },
    );
    tokio::spawn(async move {
        Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled())
            .await
            .expect("serve audit ingest");
    });
}
