//! Mutual TLS 1.3 with rustls: server configs whose certificate can be swapped
//! at run time, client configs for service-to-service calls, and the SPIFFE
//! identity in a peer certificate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The SPIFFE trust domain prefix of every FitFlow identity.
pub const SPIFFE_PREFIX: &str = "spiffe://fitflow/";

/// A TLS file that is missing or unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot load {path}: {reason}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("invalid TLS configuration: {0}")]
    Config(String),
}

/// Where a peer's CA, certificate and key live.
#[derive(Debug, Clone)]
pub struct TlsPaths {
    /// The CA bundle that signs every FitFlow certificate.
    pub ca: PathBuf,
    /// This peer's certificate chain.
    pub cert: PathBuf,
    /// This peer's private key.
    pub key: PathBuf,
}

impl TlsPaths {
    /// The conventional layout: `<dir>/ca.pem`, `<dir>/<name>.pem`, `<dir>/<name>-key.pem`.
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}-key.pem")),
        }
    }

    /// Reads the CA, certificate and key as PEM text (for tonic's client TLS).
    pub fn read_pem(&self) -> Result<PemFiles, TlsError> {
        Ok(PemFiles {
            ca: read(&self.ca)?,
            cert: read(&self.cert)?,
            key: read(&self.key)?,
        })
    }
}

/// The PEM text of a peer's CA, certificate and key.
pub struct PemFiles {
    /// The CA bundle.
    pub ca: Vec<u8>,
    /// The certificate chain.
    pub cert: Vec<u8>,
    /// The private key.
    pub key: Vec<u8>,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Load {
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

fn load_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Load {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn load_certified_key(paths: &TlsPaths) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_file_iter(&paths.cert)
        .map_err(|e| load_error(&paths.cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| load_error(&paths.cert, e))?;
    if chain.is_empty() {
        return Err(load_error(&paths.cert, "no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_file(&paths.key).map_err(|e| load_error(&paths.key, e))?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| load_error(&paths.key, e))?;
    Ok(CertifiedKey::new(chain, signing_key))
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| load_error(path, e))? {
        roots
            .add(cert.map_err(|e| load_error(path, e))?)
            .map_err(|e| load_error(path, e))?;
    }
    if roots.is_empty() {
        return Err(load_error(path, "no CA certificate found"));
    }
    Ok(roots)
}

/// Serves the current certificate and swaps in a renewed one on [`reload`](Self::reload),
/// so short-lived certificates rotate without a restart.
#[derive(Debug)]
pub struct ReloadingCertResolver {
    paths: TlsPaths,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingCertResolver {
    /// Loads the certificate and key named by `paths`.
    pub fn new(paths: TlsPaths) -> Result<Self, TlsError> {
        let current = RwLock::new(Arc::new(load_certified_key(&paths)?));
        Ok(Self { paths, current })
    }

    /// Reads the files again; new handshakes use the new certificate.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(load_certified_key(&self.paths)?);
        match self.current.write() {
            Ok(mut current) => *current = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }
}

impl ResolvesServerCert for ReloadingCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = match self.current.read() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        Some(Arc::clone(&current))
    }
}

/// A TLS 1.3-only server config that requires a client certificate from the
/// FitFlow CA and speaks HTTP/2. Returns the resolver so the caller can reload it.
pub fn server_config(
    paths: &TlsPaths,
) -> Result<(Arc<ServerConfig>, Arc<ReloadingCertResolver>), TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(load_roots(&paths.ca)?);
    let client_verifier = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider))
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let resolver = Arc::new(ReloadingCertResolver::new(paths.clone())?);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(client_verifier)
        .with_cert_resolver(Arc::clone(&resolver) as Arc<dyn ResolvesServerCert>);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok((Arc::new(config), resolver))
}

/// tonic's client TLS for calling the service whose certificate names `server_name`.
pub fn client_tls(
    paths: &TlsPaths,
    server_name: &str,
) -> Result<tonic::transport::ClientTlsConfig, TlsError> {
    let pem = paths.read_pem()?;
    Ok(tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(pem.ca))
        .identity(tonic::transport::Identity::from_pem(pem.cert, pem.key))
        .domain_name(server_name))
}

/// The FitFlow name in a certificate's `spiffe://fitflow/<name>` URI SAN.
pub fn spiffe_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let san = parsed.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|name| match name {
        x509_parser::extensions::GeneralName::URI(uri) => uri
            .strip_prefix(SPIFFE_PREFIX)
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(str::to_owned),
        _ => None,
    })
}
