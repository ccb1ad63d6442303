//! Sealing a client record field by field under the client's own key, and
//! the keyed blind indexes that find clients without opening them.

use chrono::NaiveDate;
use fitflow_crypto::{BlindIndexer, CryptoError, FieldAddress, KeyRing, SubjectKeys};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::ClientsError;
use crate::domain::{self, ClientRecord};

/// The table every sealed field lives in (part of each field's associated data).
pub(crate) const TABLE: &str = "clients";
/// The blind-index key is the service's own, not a tenant's: indexes are
/// scoped by mixing the owner trainer's id into each value instead, so one
/// key serves a supervisor's search across their whole team.
const INDEX_TENANT: Uuid = Uuid::nil();
/// Every client row holds this many name tokens (real ones, then random).
pub(crate) const NAME_TOKENS: usize = 24;
/// Name tokens keep this many bits of their HMAC.
const TOKEN_BITS: u32 = 24;

/// A record's sealed columns.
#[derive(Debug, Default, Clone)]
pub(crate) struct SealedColumns {
    pub first_name: Vec<u8>,
    pub last_name: Vec<u8>,
    pub email: Option<Vec<u8>>,
    pub phone: Option<Vec<u8>>,
    pub date_of_birth: Option<Vec<u8>>,
    pub emergency_contact: Option<Vec<u8>>,
    pub medical_info: Option<Vec<u8>>,
    pub goals: Option<Vec<u8>>,
    pub address: Option<Vec<u8>>,
}

/// A record's lookup columns, computed for its owner.
#[derive(Debug, Default, Clone)]
pub(crate) struct Lookups {
    pub email_index: Option<Vec<u8>>,
    pub phone_index: Option<Vec<u8>>,
    pub name_tokens: Vec<i32>,
}

/// Seals and opens client fields, and computes their lookups.
#[derive(Clone)]
pub(crate) struct Sealer {
    subjects: SubjectKeys,
    indexes: KeyRing,
    random: SystemRandom,
}

fn at(client_id: Uuid, column: &'static str) -> FieldAddress<'static> {
    FieldAddress {
        table: TABLE,
        column,
        row_id: client_id,
    }
}

impl Sealer {
    pub(crate) fn new(subjects: SubjectKeys, indexes: KeyRing) -> Self {
        Self {
            subjects,
            indexes,
            random: SystemRandom::new(),
        }
    }

    /// Creates the new client's own key.
    pub(crate) async fn create_key(&self, client_id: Uuid) -> Result<(), CryptoError> {
        self.subjects.create(client_id).await
    }

    /// Destroys the client's key: every field sealed under it is gone for good.
    pub(crate) async fn destroy_key(&self, client_id: Uuid) -> Result<(), CryptoError> {
        self.subjects.destroy(client_id).await
    }

    async fn seal_text(
        &self,
        client_id: Uuid,
        column: &'static str,
        value: &str,
    ) -> Result<Vec<u8>, CryptoError> {
        self.subjects
            .seal(client_id, at(client_id, column), value.as_bytes())
            .await
    }

    async fn seal_json<T: Serialize>(
        &self,
        client_id: Uuid,
        column: &'static str,
        value: &T,
    ) -> Result<Vec<u8>, ClientsError> {
        let plaintext = Zeroizing::new(
            serde_json::to_vec(value).map_err(|_| ClientsError::Corrupt("unserialisable field"))?,
        );
        Ok(self
            .subjects
            .seal(client_id, at(client_id, column), &plaintext)
            .await?)
    }

    /// Seals every personal field of `record`.
    pub(crate) async fn seal(
        &self,
        client_id: Uuid,
        record: &ClientRecord,
    ) -> Result<SealedColumns, ClientsError> {
        let mut sealed = SealedColumns {
            first_name: self
                .seal_text(client_id, "first_name", &record.first_name)
                .await?,
            last_name: self
                .seal_text(client_id, "last_name", &record.last_name)
                .await?,
            ..SealedColumns::default()
        };
        if let Some(email) = &record.email {
            sealed.email = Some(self.seal_text(client_id, "email", email).await?);
        }
        if let Some(phone) = &record.phone {
            sealed.phone = Some(self.seal_text(client_id, "phone", phone).await?);
        }
        if let Some(date) = record.date_of_birth {
            let text = date.format("%Y-%m-%d").to_string();
            sealed.date_of_birth = Some(self.seal_text(client_id, "date_of_birth", &text).await?);
        }
        if let Some(contact) = &record.emergency_contact {
            sealed.emergency_contact = Some(
                self.seal_json(client_id, "emergency_contact", contact)
                    .await?,
            );
        }
        if let Some(medical) = &record.medical_info {
            sealed.medical_info = Some(self.seal_json(client_id, "medical_info", medical).await?);
        }
        if let Some(goals) = &record.goals {
            sealed.goals = Some(self.seal_text(client_id, "goals", goals).await?);
        }
        if let Some(address) = &record.address {
            sealed.address = Some(self.seal_json(client_id, "address", address).await?);
        }
        Ok(sealed)
    }

    async fn open_text(
        &self,
        client_id: Uuid,
        column: &'static str,
        sealed: &[u8],
    ) -> Result<String, ClientsError> {
        let plaintext = self
            .subjects
            .open(client_id, at(client_id, column), sealed)
            .await?;
        String::from_utf8(plaintext.to_vec()).map_err(|_| ClientsError::Corrupt("sealed text"))
    }

    async fn open_json<T: DeserializeOwned>(
        &self,
        client_id: Uuid,
        column: &'static str,
        sealed: &[u8],
    ) -> Result<T, ClientsError> {
        let plaintext = self
            .subjects
            .open(client_id, at(client_id, column), sealed)
            .await?;
        serde_json::from_slice(&plaintext).map_err(|_| ClientsError::Corrupt("sealed json"))
    }

    /// Opens one optional text field.
    pub(crate) async fn open_optional_text(
        &self,
        client_id: Uuid,
        column: &'static str,
        sealed: Option<&[u8]>,
    ) -> Result<Option<String>, ClientsError> {
        match sealed {
            Some(sealed) => Ok(Some(self.open_text(client_id, column, sealed).await?)),
            None => Ok(None),
        }
    }

    /// Opens one optional structured field.
    pub(crate) async fn open_optional_json<T: DeserializeOwned>(
        &self,
        client_id: Uuid,
        column: &'static str,
        sealed: Option<&[u8]>,
    ) -> Result<Option<T>, ClientsError> {
        match sealed {
            Some(sealed) => Ok(Some(self.open_json(client_id, column, sealed).await?)),
            None => Ok(None),
        }
    }

    /// Opens the names only (what lists show).
    pub(crate) async fn open_names(
        &self,
        client_id: Uuid,
        first_name: &[u8],
        last_name: &[u8],
    ) -> Result<(String, String), ClientsError> {
        Ok((
            self.open_text(client_id, "first_name", first_name).await?,
            self.open_text(client_id, "last_name", last_name).await?,
        ))
    }

    /// Opens every sealed field into `record` (whose plain fields the caller
    /// filled from the row).
    pub(crate) async fn open_into(
        &self,
        client_id: Uuid,
        sealed: &SealedColumns,
        record: &mut ClientRecord,
    ) -> Result<(), ClientsError> {
        (record.first_name, record.last_name) = self
            .open_names(client_id, &sealed.first_name, &sealed.last_name)
            .await?;
        record.email = self
            .open_optional_text(client_id, "email", sealed.email.as_deref())
            .await?;
        record.phone = self
            .open_optional_text(client_id, "phone", sealed.phone.as_deref())
            .await?;
        record.date_of_birth = match self
            .open_optional_text(client_id, "date_of_birth", sealed.date_of_birth.as_deref())
            .await?
        {
            Some(text) => Some(
                NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                    .map_err(|_| ClientsError::Corrupt("date of birth"))?,
            ),
            None => None,
        };
        record.emergency_contact = self
            .open_optional_json(
                client_id,
                "emergency_contact",
                sealed.emergency_contact.as_deref(),
            )
            .await?;
        record.medical_info = self
            .open_optional_json(client_id, "medical_info", sealed.medical_info.as_deref())
            .await?;
        record.goals = self
            .open_optional_text(client_id, "goals", sealed.goals.as_deref())
            .await?;
        record.address = self
            .open_optional_json(client_id, "address", sealed.address.as_deref())
            .await?;
        Ok(())
    }

    /// The service's blind-index key, for the lookups of one request. Fetch
    /// it before the request's transaction: reading it may take a pooled
    /// connection, and a request must never hold one connection while
    /// waiting for another (a cold cache under load would starve the pool).
    pub(crate) async fn indexer(&self) -> Result<BlindIndexer, CryptoError> {
        self.indexes.blind_indexer(INDEX_TENANT).await
    }

    fn index(indexer: &BlindIndexer, scope: &str, owner: Uuid, value: &str) -> Vec<u8> {
        let mut input = Vec::with_capacity(16 + value.len());
        input.extend_from_slice(owner.as_bytes());
        input.extend_from_slice(value.as_bytes());
        indexer.index(scope, &input)
    }

    fn name_token(indexer: &BlindIndexer, owner: Uuid, prefix: &str) -> i32 {
        truncate(&Self::index(indexer, "clients.name_prefix", owner, prefix))
    }

    /// The blind index of an email for clients of `owner`.
    pub(crate) fn email_index(indexer: &BlindIndexer, owner: Uuid, email: &str) -> Vec<u8> {
        Self::index(
            indexer,
            "clients.email",
            owner,
            &domain::normalized_email(email),
        )
    }

    /// The blind index of a phone number for clients of `owner`.
    pub(crate) fn phone_index(indexer: &BlindIndexer, owner: Uuid, phone: &str) -> Vec<u8> {
        Self::index(
            indexer,
            "clients.phone",
            owner,
            &domain::normalized_phone(phone),
        )
    }

    /// The token of a search prefix (already folded) for clients of `owner`.
    pub(crate) fn prefix_token(indexer: &BlindIndexer, owner: Uuid, prefix: &str) -> i32 {
        Self::name_token(indexer, owner, prefix)
    }

    /// The lookup columns of `record` owned by `owner`: blind indexes, and
    /// the name tokens padded with random ones to [`NAME_TOKENS`].
    pub(crate) fn lookups(
        &self,
        indexer: &BlindIndexer,
        owner: Uuid,
        record: &ClientRecord,
    ) -> Result<Lookups, ClientsError> {
        let email_index = record
            .email
            .as_ref()
            .map(|email| Self::email_index(indexer, owner, email));
        let phone_index = record
            .phone
            .as_ref()
            .map(|phone| Self::phone_index(indexer, owner, phone));
        let mut name_tokens = Vec::with_capacity(NAME_TOKENS);
        for prefix in domain::name_prefixes(&record.first_name, &record.last_name) {
            let token = Self::name_token(indexer, owner, &prefix);
            if !name_tokens.contains(&token) {
                name_tokens.push(token);
            }
        }
        while name_tokens.len() < NAME_TOKENS {
            let mut bytes = [0u8; 4];
            self.random
                .fill(&mut bytes)
                .map_err(|_| CryptoError::Randomness)?;
            name_tokens.push(truncate(&bytes));
        }
        Ok(Lookups {
            email_index,
            phone_index,
            name_tokens,
        })
    }
}

/// The first [`TOKEN_BITS`] bits of `hash` as a non-negative `integer`.
fn truncate(hash: &[u8]) -> i32 {
    let mut word = [0u8; 4];
    for (slot, byte) in word.iter_mut().zip(hash) {
        *slot = *byte;
    }
    let bits = u32::from_be_bytes(word) >> (32 - TOKEN_BITS);
    i32::try_from(bits).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_keeps_twenty_four_bits_and_is_never_negative() {
        assert_eq!(truncate(&[0xff, 0xff, 0xff, 0xff]), 0x00ff_ffff);
        assert_eq!(truncate(&[0x12, 0x34, 0x56, 0x78]), 0x0012_3456);
        assert_eq!(truncate(&[0x80]), 0x0080_0000);
    }
}
