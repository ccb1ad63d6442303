//! Crypto errors, classified once.

use fitflow_error::ApiError;
use tonic::Code;
use vaultrs::error::ClientError;

/// A failure to seal, open or index a field, or to talk to OpenBao. Its text
/// never holds a key, a plaintext or a token.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// OpenBao could not be reached (or is sealed) and the key was not cached:
    /// the operation fails closed.
    #[error("openbao is unavailable: {0}")]
    Unavailable(#[source] ClientError),
    /// The authentication tag did not verify: the ciphertext was edited, moved to
    /// another tenant, table, column or row, or its data key was shredded.
    #[error("the sealed field does not authenticate")]
    Tampered,
    /// The bytes are not a sealed field of a known format.
    #[error("the sealed field is malformed")]
    Malformed,
    /// PostgreSQL failed while reading or writing wrapped data keys.
    #[error("data key storage failed: {0}")]
    Database(#[from] sqlx::Error),
    /// OpenBao refused the request (bad token, missing key, policy...).
    #[error("openbao refused the request: {0}")]
    Vault(#[source] ClientError),
    /// OpenBao answered with something this client does not understand.
    #[error("unexpected answer from openbao: {0}")]
    UnexpectedResponse(&'static str),
    /// The OpenBao settings are invalid (e.g. the address does not parse).
    #[error("invalid openbao settings: {0}")]
    InvalidSettings(&'static str),
    /// The tenant's keys kept changing under a lookup (e.g. a concurrent shred); retry.
    #[error("the tenant's data keys changed concurrently")]
    KeysChanged,
    /// The person's own key was destroyed (they were erased) or never
    /// existed: their sealed data can never be opened.
    #[error("the subject's key does not exist (erased)")]
    SubjectErased,
    /// The system random number generator failed.
    #[error("the random number generator failed")]
    Randomness,
}

impl CryptoError {
    /// Classifies an OpenBao client error: transport failures and 5xx answers
    /// (sealed, standby, overloaded) mean unavailable; other answers are refusals.
    pub(crate) fn from_vault(error: ClientError) -> Self {
        match &error {
            ClientError::RestClientError { .. } => CryptoError::Unavailable(error),
            ClientError::APIError { code, .. } if *code >= 500 => CryptoError::Unavailable(error),
            _ => CryptoError::Vault(error),
        }
    }

    /// Whether the caller may retry later (OpenBao or PostgreSQL unreachable).
    pub fn is_unavailable(&self) -> bool {
        match self {
            CryptoError::Unavailable(_) => true,
            CryptoError::Database(error) => is_database_unavailable(error),
            _ => false,
        }
    }
}

fn is_database_unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
    )
}

impl From<CryptoError> for ApiError {
    fn from(error: CryptoError) -> Self {
        match &error {
            CryptoError::Unavailable(_) => {
                tracing::warn!(%error, "encryption keys unavailable");
                ApiError::unavailable("KEYS_UNAVAILABLE", "encryption keys are unavailable")
            }
            CryptoError::Database(db) if is_database_unavailable(db) => {
                tracing::warn!(%error, "database unavailable");
                ApiError::unavailable("DATABASE_UNAVAILABLE", "the database is unavailable")
            }
            CryptoError::Tampered | CryptoError::Malformed => {
                tracing::error!(%error, "sealed field unreadable");
                ApiError::new(
                    Code::DataLoss,
                    "SEALED_FIELD_UNREADABLE",
                    "a protected field cannot be read",
                )
            }
            CryptoError::SubjectErased => {
                ApiError::not_found("SUBJECT_ERASED", "the person this data is about was erased")
            }
            _ => ApiError::internal(&error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tampered_fields_become_data_loss_without_detail() {
        let api: ApiError = CryptoError::Tampered.into();
        assert_eq!(api.code, Code::DataLoss);
        assert_eq!(api.reason, "SEALED_FIELD_UNREADABLE");
    }

    #[test]
    fn a_sealed_openbao_becomes_unavailable_keys() {
        let sealed = ClientError::APIError {
            code: 503,
            errors: vec!["Vault is sealed".to_owned()],
        };
        let api: ApiError = CryptoError::from_vault(sealed).into();
        assert_eq!(api.code, Code::Unavailable);
        assert_eq!(api.reason, "KEYS_UNAVAILABLE");
    }

    #[test]
    fn a_refusal_by_openbao_is_internal() {
        let refusal = ClientError::APIError {
            code: 403,
            errors: vec!["permission denied".to_owned()],
        };
        let api: ApiError = CryptoError::from_vault(refusal).into();
        assert_eq!(api.code, Code::Internal);
    }
}
