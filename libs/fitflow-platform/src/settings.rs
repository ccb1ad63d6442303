//! Settings from environment variables; a missing or malformed value stops
//! the process with an error that names the variable (never its value).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use fitflow_crypto::VaultSettings;
use fitflow_server::config::{self, ConfigError};
use fitflow_server::tls::TlsPaths;
use secrecy::{ExposeSecret, SecretString};

use crate::table::{self, ServiceSpec};

/// Directory holding `ca.pem`, `<service>.pem` and `<service>-key.pem`.
pub const TLS_DIR_VAR: &str = "FITFLOW_TLS_DIR";
/// OpenBao's address.
pub const VAULT_ADDR_VAR: &str = "FITFLOW_VAULT_ADDR";
/// The OpenBao token.
pub const VAULT_TOKEN_VAR: &str = "FITFLOW_VAULT_TOKEN";
/// A superuser URL, used only by `fitflow migrate`.
pub const ADMIN_DATABASE_URL_VAR: &str = "FITFLOW_ADMIN_DATABASE_URL";

/// One service this process serves.
#[derive(Debug, Clone)]
pub struct Served {
    /// Which service.
    pub name: &'static str,
    /// Where it listens (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Its runtime role's connection URL.
    pub database_url: SecretString,
}

/// Everything a `fitflow serve` process needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Certificates directory.
    pub tls_dir: PathBuf,
    /// OpenBao address and token.
    pub vault: VaultSettings,
    /// The services to serve.
    pub served: Vec<Served>,
    /// How to reach every service in the table (`https://host:port`); the
    /// TLS name is the service name.
    pub endpoints: BTreeMap<&'static str, String>,
}

/// The service's environment variable with `suffix`, e.g. `FITFLOW_IDENTITY_DATABASE_URL`.
pub fn env_var(service: &str, suffix: &str) -> String {
    format!("FITFLOW_{}_{suffix}", service.to_uppercase())
}

/// The table row of `name`, with a `'static` name.
pub fn spec(name: &str) -> Result<&'static ServiceSpec, ConfigError> {
    table::spec(name).ok_or_else(|| ConfigError::Invalid {
        var: "service".to_owned(),
        reason: format!("{name:?} is not a FitFlow service"),
    })
}

impl Settings {
    /// Reads the settings for serving `services` (names from the table).
    pub fn from_env(services: &[&'static str]) -> Result<Self, ConfigError> {
        let tls_dir = tls_dir()?;
        for service in services {
            require_tls_files(&tls_dir, service)?;
        }
        let vault_addr = config::required(VAULT_ADDR_VAR)?;
        if !(vault_addr.starts_with("http://") || vault_addr.starts_with("https://")) {
            return Err(invalid(
                VAULT_ADDR_VAR,
                "must be an http:// or https:// URL",
            ));
        }
        let vault = VaultSettings {
            addr: vault_addr,
            token: SecretString::from(config::required(VAULT_TOKEN_VAR)?),
        };
        let mut served = Vec::new();
        for &name in services {
            let default_listen = SocketAddr::from((Ipv4Addr::LOCALHOST, spec(name)?.port));
            let listen = config::parsed_or(&env_var(name, "LISTEN"), default_listen)?;
            let database_var = env_var(name, "DATABASE_URL");
            let database_url = SecretString::from(config::required(&database_var)?);
            let raw_url = database_url.expose_secret();
            let is_postgres =
                raw_url.starts_with("postgres://") || raw_url.starts_with("postgresql://");
            if !is_postgres || sqlx::postgres::PgConnectOptions::from_str(raw_url).is_err() {
                return Err(invalid(&database_var, "must be a postgres:// URL"));
            }
            served.push(Served {
                name,
                listen,
                database_url,
            });
        }
        let mut endpoints = BTreeMap::new();
        for spec in table::services_table() {
            let var = env_var(&spec.name, "ENDPOINT");
            let endpoint = config::optional(&var)?
                .unwrap_or_else(|| format!("https://127.0.0.1:{}", spec.port));
            if !endpoint.starts_with("https://") {
                return Err(invalid(&var, "must be an https:// URL"));
            }
            endpoints.insert(spec.name.as_str(), endpoint);
        }
        Ok(Self {
            tls_dir,
            vault,
            served,
            endpoints,
        })
    }
}

/// The certificates directory from `FITFLOW_TLS_DIR`.
pub fn tls_dir() -> Result<PathBuf, ConfigError> {
    let dir = PathBuf::from(config::required(TLS_DIR_VAR)?);
    if !dir.join("ca.pem").is_file() {
        return Err(invalid(TLS_DIR_VAR, "has no ca.pem"));
    }
    Ok(dir)
}

/// Checks that `<name>.pem` and `<name>-key.pem` exist in `dir`.
pub fn require_tls_files(dir: &std::path::Path, name: &str) -> Result<TlsPaths, ConfigError> {
    let paths = TlsPaths::in_dir(dir, name);
    if !paths.cert.is_file() || !paths.key.is_file() {
        return Err(invalid(
            TLS_DIR_VAR,
            &format!("has no {name}.pem and {name}-key.pem"),
        ));
    }
    Ok(paths)
}

fn invalid(var: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        var: var.to_owned(),
        reason: reason.to_owned(),
    }
}
