//! Envelope encryption of sensitive fields for FitFlow services.
//!
//! Each service has one transit key in OpenBao (`fitflow-<service>`, the key
//! encryption key). Each tenant gets data keys from transit `datakey`; only
//! their wrapped form is stored, in the service's own `data_keys` table, and the
//! unwrapped bytes are cached in memory for a bounded time. Fields are sealed
//! with AES-256-GCM whose associated data binds tenant, table, column and row,
//! so a ciphertext cannot be moved. Exact-match lookups use keyed blind indexes.
//! Deleting a tenant's wrapped keys makes its data unreadable (crypto-shredding).
//! A person's (a client's) health data is sealed under that person's own key
//! instead ([`SubjectKeys`]), held in OpenBao only, so destroying it erases the
//! person everywhere at once.
//! If OpenBao is unreachable and a key is not cached, every operation fails closed.

mod cache;
mod envelope;
mod error;
mod keyring;
mod subject;
mod vault;

pub use envelope::FieldAddress;
pub use error::CryptoError;
pub use keyring::{BlindIndexer, KeyRing};
pub use subject::{SUBJECT_KEYS_MOUNT, SubjectKeys, open_with_raw_key};
pub use vault::{TransitKeyKind, Vault, VaultSettings};
