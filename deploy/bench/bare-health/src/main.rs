//! A bare tonic health server holding a FitFlow service's certificates and
//! asking clients for theirs (mTLS), with nothing else: no peer policy, no
//! tracing, no metrics. `deploy/bench/compare` measures our health check
//! against it. Built from the workspace for that comparison only; never
//! shipped in the `fitflow` binary.
//!
//! Usage: `bare-health <listen address> <TLS directory> <certificate name>`

use std::net::SocketAddr;
use std::path::PathBuf;

use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bare-health <listen address> <TLS directory> <certificate name>";
    let address: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let dir = PathBuf::from(args.next().ok_or(usage)?);
    let name = args.next().ok_or(usage)?;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            std::fs::read(dir.join(format!("{name}.pem")))?,
            std::fs::read(dir.join(format!("{name}-key.pem")))?,
        ))
        .client_ca_root(Certificate::from_pem(std::fs::read(dir.join("ca.pem"))?));
    let (_reporter, health) = tonic_health::server::health_reporter();
    eprintln!("bare-health: serving grpc.health.v1 on {address}");
    Server::builder()
        .tls_config(tls)?
        .add_service(health)
        .serve_with_shutdown(address, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
