//! Operator commands: migrations and health checks.

use std::time::Duration;

use anyhow::Context as _;
use fitflow_server::config;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use fitflow_platform::Registry;
use fitflow_platform::settings::{
    ADMIN_DATABASE_URL_VAR, database_url, env_var, require_tls_files, spec, tls_dir,
};

/// Provisions roles and schemas and applies pending migrations (the
/// platform's, then the service's, each validated) for `services`.
pub async fn migrate_up(registry: &Registry, services: &[&str]) -> anyhow::Result<()> {
    let admin_url = database_url(ADMIN_DATABASE_URL_VAR)?;
    for &name in services {
        let service = registry
            .get(name)
            .with_context(|| format!("the {name} service is not implemented in this build"))?;
        let schema = &spec(name)?.schema;
        fitflow_db::provision_schema(&admin_url, schema).await?;
        fitflow_db::migrate_up(&admin_url, schema, service.migrations()).await?;
        println!("{name}: migrated");
    }
    Ok(())
}

/// Reverts `service`'s migrations newer than `target_version`.
pub async fn migrate_down(
    registry: &Registry,
    name: &str,
    target_version: i64,
) -> anyhow::Result<()> {
    let admin_url = database_url(ADMIN_DATABASE_URL_VAR)?;
    let service = registry
        .get(name)
        .with_context(|| format!("the {name} service is not implemented in this build"))?;
    let schema = &spec(name)?.schema;
    fitflow_db::migrate_down(&admin_url, schema, service.migrations(), target_version).await?;
    println!("{name}: reverted to version {target_version}");
    Ok(())
}

/// Asks `service` (on its configured listen port) whether it is SERVING, over
/// mTLS with the service's own certificate. Kubernetes probes run this,
/// since kubelet's own gRPC probe cannot present a client certificate.
pub async fn health(service: &str) -> anyhow::Result<bool> {
    fitflow_server::install_crypto_provider();
    let port = spec(service)?.port;
    let dir = tls_dir()?;
    let paths = require_tls_files(&dir, service)?;
    let default_listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let listen: std::net::SocketAddr =
        config::parsed_or(&env_var(service, "LISTEN"), default_listen)?;
    let endpoint = format!("https://127.0.0.1:{}", listen.port());
    let channel = fitflow_server::client::channel(&endpoint, service, &paths)?;
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
    let var = env_var(fitflow_identity::SCHEMA, "SYSTEM_DATABASE_URL");
    let url = database_url(&var)?;
    let pool = fitflow_db::connect_system(&url, fitflow_identity::SCHEMA, 1).await?;
    fitflow_identity::bootstrap::grant_operator(&pool, email)
        .await
        .map_err(|error| anyhow::anyhow!("cannot grant operator: {error}"))
}

/// The runtime pool of `service` from `FITFLOW_<SERVICE>_DATABASE_URL`.
async fn runtime_pool(service: &str) -> anyhow::Result<sqlx::PgPool> {
    let schema = &spec(service)?.schema;
    let url = database_url(&env_var(service, "DATABASE_URL"))?;
    Ok(fitflow_db::connect(&url, schema, 1).await?)
}

/// The newest `limit` dead letters of `service`'s relays.
pub async fn dead_letters(
    service: &str,
    limit: i64,
) -> anyhow::Result<Vec<fitflow_outbox::DeadLetter>> {
    let pool = runtime_pool(service).await?;
    Ok(fitflow_outbox::dead_letters(&pool, limit.clamp(1, 1_000)).await?)
}

/// Puts `service`'s dead letter `id` back into its outbox.
pub async fn replay(service: &str, id: i64) -> anyhow::Result<bool> {
    let pool = runtime_pool(service).await?;
    let replayed = fitflow_outbox::replay_dead_letter(&pool, id).await?;
    if replayed {
        tracing::info!(service, id, "dead letter replayed");
    }
    Ok(replayed)
}
