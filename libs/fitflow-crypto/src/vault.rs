//! The OpenBao (Vault API) client: transit keys, data keys and signatures.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretString};
use vaultrs::api::transit::KeyType;
use vaultrs::api::transit::requests::{CreateKeyRequest, DataKeyType};
use vaultrs::api::transit::responses::ReadKeyData;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::transit;
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::envelope::DataKey;

/// The mount path of the transit secrets engine.
pub(crate) const TRANSIT_MOUNT: &str = "transit";
/// How long one OpenBao request may take before it counts as unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where OpenBao is and how to authenticate to it.
#[derive(Debug, Clone)]
pub struct VaultSettings {
    /// The server address, e.g. `https://openbao:8200`.
    pub addr: String,
    /// The token the service authenticates with.
    pub token: SecretString,
}

/// The kind of a transit key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitKeyKind {
    /// AES-256-GCM with a 96-bit nonce, for wrapping data keys.
    Aes256Gcm96,
    /// Ed25519, for signing tokens.
    Ed25519,
}

/// A cheap-to-clone OpenBao client.
#[derive(Clone)]
pub struct Vault {
    client: Arc<VaultClient>,
    addr: String,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("addr", &self.addr)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Vault {
    /// Builds a client; does not contact the server.
    pub fn connect(settings: &VaultSettings) -> Result<Self, CryptoError> {
        let parsed = url::Url::parse(&settings.addr)
            .map_err(|_| CryptoError::InvalidSettings("the openbao address is not a URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(CryptoError::InvalidSettings(
                "the openbao address must be http or https",
            ));
        }
        let client_settings = VaultClientSettingsBuilder::default()
            .address(parsed.as_str())
            .token(settings.token.expose_secret())
            .timeout(Some(REQUEST_TIMEOUT))
            .build()
            .map_err(|_| CryptoError::InvalidSettings("the openbao settings are incomplete"))?;
        let client = VaultClient::new(client_settings)
            .map_err(|_| CryptoError::InvalidSettings("the openbao client cannot be built"))?;
        Ok(Self {
            client: Arc::new(client),
            addr: settings.addr.clone(),
        })
    }

    /// The underlying client, for the engines other modules use.
    pub(crate) fn client(&self) -> &VaultClient {
        &self.client
    }

    /// Creates the transit key `name` of `kind` if it is missing (mount
    /// `transit`); an existing key is left as it is.
    pub async fn ensure_transit_key(
        &self,
        name: &str,
        kind: TransitKeyKind,
    ) -> Result<(), CryptoError> {
        let key_type = match kind {
            TransitKeyKind::Aes256Gcm96 => KeyType::Aes256Gcm96,
            TransitKeyKind::Ed25519 => KeyType::Ed25519,
        };
        let mut request = CreateKeyRequest::builder();
        request.key_type(key_type);
        transit::key::create(&*self.client, TRANSIT_MOUNT, name, Some(&mut request))
            .await
            .map_err(CryptoError::from_vault)
    }

    /// Adds a new version to the transit key `name`; older versions still decrypt and verify.
    pub async fn rotate_transit_key(&self, name: &str) -> Result<(), CryptoError> {
        transit::key::rotate(&*self.client, TRANSIT_MOUNT, name)
            .await
            .map_err(CryptoError::from_vault)
    }

    /// Signs `message` with the ed25519 transit key `key`; returns the key
    /// version used and the raw 64-byte signature.
    pub async fn sign_ed25519(
        &self,
        key: &str,
        message: &[u8],
    ) -> Result<(u64, Vec<u8>), CryptoError> {
        let input = BASE64.encode(message);
        let response = transit::data::sign(&*self.client, TRANSIT_MOUNT, key, &input, None)
            .await
            .map_err(CryptoError::from_vault)?;
        let (version, signature) = parse_transit_value(&response.signature).ok_or(
            CryptoError::UnexpectedResponse("signature is not vault:vN:base64"),
        )?;
        if signature.len() != 64 {
            return Err(CryptoError::UnexpectedResponse("signature is not 64 bytes"));
        }
        Ok((version, signature))
    }

    /// Every version of the ed25519 transit key `key` with its raw 32-byte
    /// public key, oldest first.
    pub async fn ed25519_public_keys(&self, key: &str) -> Result<Vec<(u64, Vec<u8>)>, CryptoError> {
        let response = transit::key::read(&*self.client, TRANSIT_MOUNT, key)
            .await
            .map_err(CryptoError::from_vault)?;
        let ReadKeyData::Asymmetric(entries) = response.keys else {
            return Err(CryptoError::UnexpectedResponse(
                "the key has no public keys",
            ));
        };
        let mut keys = Vec::with_capacity(entries.len());
        for (version, entry) in entries {
            let version: u64 = version
                .parse()
                .map_err(|_| CryptoError::UnexpectedResponse("key version is not a number"))?;
            let public_key = BASE64
                .decode(entry.public_key.as_bytes())
                .map_err(|_| CryptoError::UnexpectedResponse("public key is not base64"))?;
            if public_key.len() != 32 {
                return Err(CryptoError::UnexpectedResponse(
                    "public key is not 32 bytes",
                ));
            }
            keys.push((version, public_key));
        }
        keys.sort_by_key(|(version, _)| *version);
        Ok(keys)
    }

    /// A fresh 256-bit data key from transit `datakey/plaintext/<kek>`: the key
    /// itself and its wrapped form (`vault:vN:...`), which is all that is stored.
    pub(crate) async fn generate_data_key(
        &self,
        kek: &str,
    ) -> Result<(DataKey, String), CryptoError> {
        let response = transit::generate::data_key(
            &*self.client,
            TRANSIT_MOUNT,
            kek,
            DataKeyType::Plaintext,
            None,
        )
        .await
        .map_err(CryptoError::from_vault)?;
        let plaintext = Zeroizing::new(response.plaintext.ok_or(
            CryptoError::UnexpectedResponse("the data key has no plaintext"),
        )?);
        let key = decode_data_key(&plaintext)?;
        Ok((key, response.ciphertext))
    }

    /// Unwraps a stored data key with transit decrypt.
    pub(crate) async fn unwrap_data_key(
        &self,
        kek: &str,
        wrapped: &str,
    ) -> Result<DataKey, CryptoError> {
        let response = transit::data::decrypt(&*self.client, TRANSIT_MOUNT, kek, wrapped, None)
            .await
            .map_err(CryptoError::from_vault)?;
        let plaintext = Zeroizing::new(response.plaintext);
        decode_data_key(&plaintext)
    }
}

fn decode_data_key(base64_key: &str) -> Result<DataKey, CryptoError> {
    let bytes = Zeroizing::new(
        BASE64
            .decode(base64_key.as_bytes())
            .map_err(|_| CryptoError::UnexpectedResponse("the data key is not base64"))?,
    );
    DataKey::from_slice(&bytes).ok_or(CryptoError::UnexpectedResponse(
        "the data key is not 32 bytes",
    ))
}

/// Splits a transit value `vault:v<N>:<base64>` into `N` and the decoded bytes.
fn parse_transit_value(value: &str) -> Option<(u64, Vec<u8>)> {
    let rest = value.strip_prefix("vault:v")?;
    let (version, encoded) = rest.split_once(':')?;
    let version = version.parse().ok()?;
    let bytes = BASE64.decode(encoded.as_bytes()).ok()?;
    Some((version, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transit_value_splits_into_version_and_bytes() {
        assert_eq!(
            parse_transit_value("vault:v3:AAEC"),
            Some((3, vec![0, 1, 2]))
        );
        assert_eq!(parse_transit_value("vault:vx:AAEC"), None);
        assert_eq!(parse_transit_value("other:v3:AAEC"), None);
        assert_eq!(parse_transit_value("vault:v3:not base64!"), None);
    }

    #[test]
    fn connect_refuses_an_address_that_is_not_http() {
        let settings = VaultSettings {
            addr: "not a url".to_owned(),
            token: SecretString::from("t"),
        };
        assert!(matches!(
            Vault::connect(&settings),
            Err(CryptoError::InvalidSettings(_))
        ));
    }

    #[test]
    fn the_client_debug_output_hides_the_token() {
        let settings = VaultSettings {
            addr: "http://127.0.0.1:8200".to_owned(),
            token: SecretString::from("s.super-secret"),
        };
        let vault = Vault::connect(&settings).expect("valid settings");
        assert!(!format!("{vault:?}").contains("super-secret"));
        assert!(!format!("{settings:?}").contains("super-secret"));
    }
}
