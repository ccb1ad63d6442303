//! Operator commands: migrations and health checks.

use std::time::Duration;

use anyhow::Context as _;
use fitflow_server::config;
use secrecy::SecretString;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::ServiceName;
use crate::settings::{ADMIN_DATABASE_URL_VAR, require_tls_files, tls_dir};

/// Provisions roles and schemas and applies pending migrations for `services`.
pub async fn migrate_up(services: &[ServiceName]) -> anyhow::Result<()> {
    let admin_url = SecretString::from(config::required(ADMIN_DATABASE_URL_VAR)?);
    for &service in services {
        let migrator = service
            .migrator()
            .with_context(|| format!("the {service} service is not implemented in this build"))?;
        fitflow_db::provision_schema(&admin_url, service.as_str()).await?;
        fitflow_db::migrate_up(&admin_url, service.as_str(), migrator).await?;
        println!("{service}: migrated");
    }
    Ok(())
}

/// Reverts `service`'s migrations newer than `target_version`.
pub async fn migrate_down(service: ServiceName, target_version: i64) -> anyhow::Result<()> {
    let admin_url = SecretString::from(config::required(ADMIN_DATABASE_URL_VAR)?);
    let migrator = service
        .migrator()
        .with_context(|| format!("the {service} service is not implemented in this build"))?;
    fitflow_db::migrate_down(&admin_url, service.as_str(), migrator, target_version).await?;
    println!("{service}: reverted to version {target_version}");
    Ok(())
}

/// Asks `service` (on its configured listen port) whether it is SERVING, over
/// mTLS with the service's own certificate. Kubernetes probes run this,
/// since kubelet's own gRPC probe cannot present a client certificate.
pub async fn health(service: ServiceName) -> anyhow::Result<bool> {
    fitflow_server::install_crypto_provider();
    let dir = tls_dir()?;
    let paths = require_tls_files(&dir, service.as_str())?;
    let default_listen = std::net::SocketAddr::from(([127, 0, 0, 1], service.default_port()));
    let listen: std::net::SocketAddr =
        config::parsed_or(&service.env_var("LISTEN"), default_listen)?;
    let endpoint = format!("https://127.0.0.1:{}", listen.port());
    let channel = fitflow_server::client::channel(&endpoint, service.as_str(), &paths)?;
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request.set_timeout(Duration::from_secs(3));
    let status = HealthClient::new(channel)
        .check(request)
        .await?
        .into_inner()
        .status;
    Ok(status == ServingStatus::Serving as i32)
}

/// Grants the operator role to the account with `email`, through the
/// identity service's own role and with an audit event.
pub async fn grant_operator(email: &str) -> anyhow::Result<uuid::Uuid> {
    let var = ServiceName::Identity.env_var("DATABASE_URL");
    let url = SecretString::from(config::required(&var)?);
    let pool = fitflow_db::connect(&url, fitflow_identity::SCHEMA, 1).await?;
    fitflow_identity::bootstrap::grant_operator(&pool, email)
        .await
        .map_err(|error| anyhow::anyhow!("cannot grant operator: {error}"))
}
