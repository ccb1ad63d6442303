//! Test certificates from rcgen.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use tempfile::TempDir;

/// A directory of PEM files: `ca.pem`, and `<name>.pem` / `<name>-key.pem` for
/// each name. The directory is removed when this is dropped.
#[derive(Debug)]
pub struct TestCerts {
    /// The directory holding the files.
    pub dir: PathBuf,
    _tempdir: TempDir,
}

impl TestCerts {
    /// Path of the CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Path of `name`'s certificate.
    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    /// Path of `name`'s private key.
    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-key.pem"))
    }
}

/// A fresh CA and, for each name, a certificate with URI SAN
/// `spiffe://fitflow/<name>`, DNS SANs `<name>` and `localhost`, IP SAN
/// 127.0.0.1, for both client and server authentication.
pub fn certs(names: &[&str]) -> TestCerts {
    issue("FitFlow Test CA", names)
}

/// The same layout as [`certs`], signed by a different CA that nobody trusts.
pub fn foreign_certs(names: &[&str]) -> TestCerts {
    issue("Foreign Untrusted Test CA", names)
}

fn issue(ca_name: &str, names: &[&str]) -> TestCerts {
    let tempdir = tempfile::Builder::new()
        .prefix("fitflow-certs-")
        .tempdir()
        .expect("create a temporary directory for certificates");
    let dir = tempdir.path().to_path_buf();

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name = distinguished_name(ca_name);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().expect("generate the CA key");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("self-sign the CA");
    write(&dir.join("ca.pem"), &ca.pem());

    for name in names {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf parameters");
        params.distinguished_name = distinguished_name(name);
        params.subject_alt_names = vec![
            SanType::URI(
                format!("spiffe://fitflow/{name}")
                    .try_into()
                    .expect("the name is ASCII"),
            ),
            SanType::DnsName((*name).try_into().expect("the name is a DNS label")),
            SanType::DnsName("localhost".try_into().expect("localhost is a DNS name")),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("generate a leaf key");
        let cert = params
            .signed_by(&key, &ca)
            .expect("sign the leaf certificate");
        write(&dir.join(format!("{name}.pem")), &cert.pem());
        write(&dir.join(format!("{name}-key.pem")), &key.serialize_pem());
    }

    TestCerts {
        dir,
        _tempdir: tempdir,
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "FitFlow tests");
    name
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents)
        .unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
}
