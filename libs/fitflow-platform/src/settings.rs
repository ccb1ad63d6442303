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
/// Set to `1` on a developer machine to accept an `http://` OpenBao address
/// and database URLs without `sslmode=verify-full`; never set in production.
pub const DEV_INSECURE_VAR: &str = "FITFLOW_DEV_INSECURE";

/// Whether this process may talk to OpenBao and PostgreSQL without verified TLS.
///
/// Production is the default, so a deployment that forgets a setting fails
/// closed at start instead of sending the OpenBao token and database
/// password in clear text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportPolicy {
    /// OpenBao over `https://` only; PostgreSQL with `sslmode=verify-full` only.
    Production,
    /// `FITFLOW_DEV_INSECURE=1`: plaintext allowed (the dev stack and tests).
    DevInsecure,
}

impl TransportPolicy {
    /// Reads `FITFLOW_DEV_INSECURE`: unset is production, `1` is the dev
    /// flag, anything else is refused so a typo never silently weakens TLS.
    pub fn from_env() -> Result<Self, ConfigError> {
        match config::optional(DEV_INSECURE_VAR)?
            .as_deref()
            .map(str::trim)
        {
            None => Ok(Self::Production),
            Some("1") => Ok(Self::DevInsecure),
            Some(_) => Err(invalid(DEV_INSECURE_VAR, "must be 1 or unset")),
        }
    }

    /// Checks the OpenBao address `var` holds: an `http://` or `https://`
    /// URL, and `https://` unless this is the dev policy.
    pub fn check_vault_addr(self, var: &str, addr: &str) -> Result<(), ConfigError> {
        if addr.starts_with("https://") {
            return Ok(());
        }
        if !addr.starts_with("http://") {
            return Err(invalid(var, "must be an http:// or https:// URL"));
        }
        match self {
            Self::DevInsecure => Ok(()),
            Self::Production => Err(invalid(
                var,
                &format!("must be an https:// URL (http:// only with {DEV_INSECURE_VAR}=1)"),
            )),
        }
    }

    /// Checks the PostgreSQL URL `var` holds: a `postgres://` URL, and one
    /// whose effective `sslmode` is `verify-full` unless this is the dev
    /// policy. Anything weaker (`require`, `verify-ca`, the default
    /// `prefer`) lets a man in the middle read the password and the rows.
    pub fn check_database_url(self, var: &str, url: &str) -> Result<(), ConfigError> {
        let is_postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let options = match sqlx::postgres::PgConnectOptions::from_str(url) {
            Ok(options) if is_postgres => options,
            _ => return Err(invalid(var, "must be a postgres:// URL")),
        };
        let verified = matches!(
            options.get_ssl_mode(),
            sqlx::postgres::PgSslMode::VerifyFull
        );
        match self {
            _ if verified => Ok(()),
            Self::DevInsecure => Ok(()),
            Self::Production => Err(invalid(
                var,
                &format!(
                    "must set sslmode=verify-full (anything else only with {DEV_INSECURE_VAR}=1)"
                ),
            )),
        }
    }
}

/// The PostgreSQL URL in `var`, checked against the transport policy, so
/// operator commands (`fitflow migrate`, `grant-operator`) refuse an
/// unverified connection exactly as `fitflow serve` does.
pub fn database_url(var: &str) -> Result<SecretString, ConfigError> {
    let url = SecretString::from(config::required(var)?);
    TransportPolicy::from_env()?.check_database_url(var, url.expose_secret())?;
    Ok(url)
}

/// One service this process serves.
#[derive(Debug, Clone)]
pub struct Served {
    /// Which service.
    pub name: &'static str,
    /// Where it listens (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Its runtime role's connection URL.
    pub database_url: SecretString,
    /// Its system role's connection URL (the service's own work).
    pub system_database_url: SecretString,
}

/// How many PostgreSQL connections each served service may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSizes {
    /// The runtime role's pool (users' requests, relays, key ring).
    pub runtime: u32,
    /// The system role's pool (sign-in, sweeps, purges, peers' exports);
    /// it connects on demand.
    pub system: u32,
}

impl Default for PoolSizes {
    fn default() -> Self {
        Self {
            runtime: 16,
            system: 8,
        }
    }
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
    /// Where to send mail (`FITFLOW_SMTP_URL`), if anywhere; the services
    /// that send mail (identity, tenancy, scheduling) refuse to start without it.
    pub mail: Option<fitflow_mail::MailSettings>,
    /// Connections per service.
    pub pools: PoolSizes,
}

/// `smtp://host[:port]` (STARTTLS when offered) or `smtps://host[:port]`.
pub const SMTP_URL_VAR: &str = "FITFLOW_SMTP_URL";
/// The sender of FitFlow's mail, e.g. `FitFlow <no-reply@fitflow.example>`.
pub const MAIL_FROM_VAR: &str = "FITFLOW_MAIL_FROM";
/// The sender when [`MAIL_FROM_VAR`] is unset.
const DEFAULT_MAIL_FROM: &str = "FitFlow <no-reply@fitflow.invalid>";

/// The mail settings from the environment, if `FITFLOW_SMTP_URL` is set.
pub fn mail_settings() -> Result<Option<fitflow_mail::MailSettings>, ConfigError> {
    let Some(url) = config::optional(SMTP_URL_VAR)? else {
        return Ok(None);
    };
    if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
        return Err(invalid(SMTP_URL_VAR, "must be an smtp:// or smtps:// URL"));
    }
    let from = config::optional(MAIL_FROM_VAR)?.unwrap_or_else(|| DEFAULT_MAIL_FROM.to_owned());
    Ok(Some(fitflow_mail::MailSettings { url, from }))
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
        let transport = TransportPolicy::from_env()?;
        let vault_addr = config::required(VAULT_ADDR_VAR)?;
        transport.check_vault_addr(VAULT_ADDR_VAR, &vault_addr)?;
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
            transport.check_database_url(&database_var, database_url.expose_secret())?;
            let system_var = env_var(name, "SYSTEM_DATABASE_URL");
            let system_database_url = SecretString::from(config::required(&system_var)?);
            transport.check_database_url(&system_var, system_database_url.expose_secret())?;
            served.push(Served {
                name,
                listen,
                database_url,
                system_database_url,
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
            mail: mail_settings()?,
            pools: PoolSizes::default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    const VAR: &str = "FITFLOW_IDENTITY_DATABASE_URL";

    #[test]
    fn production_refuses_a_plaintext_openbao_address_and_names_the_variable() {
        let error = TransportPolicy::Production
            .check_vault_addr(VAULT_ADDR_VAR, "http://bao.internal:8200")
            .unwrap_err();
        assert!(error.to_string().contains(VAULT_ADDR_VAR), "{error}");
        assert!(!error.to_string().contains("bao.internal"), "{error}");
    }

    #[test]
    fn the_dev_flag_accepts_a_plaintext_openbao_address() {
        TransportPolicy::DevInsecure
            .check_vault_addr(VAULT_ADDR_VAR, "http://127.0.0.1:8200")
            .unwrap();
        TransportPolicy::Production
            .check_vault_addr(VAULT_ADDR_VAR, "https://bao.internal:8200")
            .unwrap();
    }

    #[test]
    fn no_policy_accepts_an_openbao_address_that_is_not_a_url() {
        for policy in [TransportPolicy::Production, TransportPolicy::DevInsecure] {
            assert!(policy.check_vault_addr(VAULT_ADDR_VAR, "bao:8200").is_err());
        }
    }

    #[test]
    fn production_refuses_a_database_url_without_verify_full_and_names_the_variable() {
        for url in [
            "postgres://fitflow_identity:secret-password@db/fitflow",
            "postgres://fitflow_identity:secret-password@db/fitflow?sslmode=disable",
            "postgres://fitflow_identity:secret-password@db/fitflow?sslmode=require",
            "postgres://fitflow_identity:secret-password@db/fitflow?sslmode=verify-ca",
        ] {
            let error = TransportPolicy::Production
                .check_database_url(VAR, url)
                .unwrap_err();
            assert!(error.to_string().contains(VAR), "{error}");
            assert!(!error.to_string().contains("secret-password"), "{error}");
        }
    }

    #[test]
    fn production_accepts_a_database_url_with_verify_full() {
        TransportPolicy::Production
            .check_database_url(
                VAR,
                "postgres://fitflow_identity@db/fitflow?sslmode=verify-full",
            )
            .unwrap();
    }

    #[test]
    fn the_dev_flag_accepts_a_database_url_without_tls() {
        TransportPolicy::DevInsecure
            .check_database_url(VAR, "postgres://fitflow_identity@127.0.0.1/fitflow")
            .unwrap();
    }

    #[test]
    fn no_policy_accepts_a_database_url_that_is_not_postgres() {
        for policy in [TransportPolicy::Production, TransportPolicy::DevInsecure] {
            assert!(
                policy
                    .check_database_url(VAR, "mysql://db/fitflow?sslmode=verify-full")
                    .is_err()
            );
        }
    }
}
