//! Sealing notes and plans under the client's own key (held in OpenBao;
//! created and destroyed by the clients service only). A sealed column holds
//! the protobuf encoding of its part, bound to its table, column and row.

use fitflow_crypto::{CryptoError, FieldAddress, SubjectKeys};
use prost::Message;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::DocumentationError;

/// Seals and opens one client's documentation.
#[derive(Clone, Debug)]
pub(crate) struct Sealer {
    keys: SubjectKeys,
}

/// Where a sealed value lives: its table, column and row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub table: &'static str,
    pub column: &'static str,
    pub row: Uuid,
}

impl Slot {
    fn address(self) -> FieldAddress<'static> {
        FieldAddress {
            table: self.table,
            column: self.column,
            row_id: self.row,
        }
    }
}

impl Sealer {
    pub(crate) fn new(keys: SubjectKeys) -> Self {
        Self { keys }
    }

    /// Seals `value` of client `client_id` for `slot`.
    pub(crate) async fn seal<M: Message>(
        &self,
        client_id: Uuid,
        slot: Slot,
        value: &M,
    ) -> Result<Vec<u8>, CryptoError> {
        let plaintext = Zeroizing::new(value.encode_to_vec());
        self.keys.seal(client_id, slot.address(), &plaintext).await
    }

    /// Seals `text` of client `client_id` for `slot`.
    pub(crate) async fn seal_text(
        &self,
        client_id: Uuid,
        slot: Slot,
        text: &str,
    ) -> Result<Vec<u8>, CryptoError> {
        self.keys
            .seal(client_id, slot.address(), text.as_bytes())
            .await
    }

    /// Opens a value sealed by [`Sealer::seal`].
    pub(crate) async fn open<M: Message + Default>(
        &self,
        client_id: Uuid,
        slot: Slot,
        sealed: &[u8],
    ) -> Result<M, DocumentationError> {
        let plaintext = self.keys.open(client_id, slot.address(), sealed).await?;
        M::decode(plaintext.as_slice()).map_err(|_| DocumentationError::Corrupt("sealed message"))
    }

    /// Opens text sealed by [`Sealer::seal_text`].
    pub(crate) async fn open_text(
        &self,
        client_id: Uuid,
        slot: Slot,
        sealed: &[u8],
    ) -> Result<String, DocumentationError> {
        let plaintext = self.keys.open(client_id, slot.address(), sealed).await?;
        String::from_utf8(plaintext.to_vec())
            .map_err(|_| DocumentationError::Corrupt("sealed text"))
    }
}
