//! The pure half of envelope encryption: the sealed-field format, associated
//! data, AES-256-GCM with given key bytes, and blind indexes. No I/O here.
//!
//! A sealed field is `[format 1][u32 BE data-key version][12-byte nonce][ciphertext + 16-byte tag]`.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::CryptoError;

/// The only format written today.
pub(crate) const FORMAT_V1: u8 = 1;
/// Length of a data key in bytes (AES-256 and HMAC-SHA256 alike).
pub(crate) const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
/// Domain separation for the associated data of sealed fields.
const SEAL_CONTEXT: &[u8] = b"fitflow.sealed-field.v1";
/// Domain separation for blind indexes.
const INDEX_CONTEXT: &[u8] = b"fitflow.blind-index.v1";

/// A data key's bytes; wiped on drop and never printed.
#[derive(Clone)]
pub(crate) struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    /// Copies `bytes` into a key; they must be exactly [`KEY_LEN`] long.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return None;
        }
        key.copy_from_slice(bytes);
        Some(Self(key))
    }

    fn aead(&self) -> Result<LessSafeKey, CryptoError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, self.0.as_slice()).map_err(|_| CryptoError::Malformed)?;
        Ok(LessSafeKey::new(unbound))
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Where a sealed value lives; part of the associated data, so a ciphertext
/// only opens at the address it was sealed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldAddress<'a> {
    /// The table holding the value, e.g. `clients`.
    pub table: &'a str,
    /// The column holding the value, e.g. `date_of_birth`.
    pub column: &'a str,
    /// The primary key of the row holding the value.
    pub row_id: Uuid,
}

/// Appends `bytes` with a u32 big-endian length prefix, so that adjacent
/// fields cannot be re-split ("ab"+"c" differs from "a"+"bc").
fn push_prefixed(buffer: &mut Vec<u8>, bytes: &[u8]) {
    // Table, column and scope names are short identifiers; saturate rather than wrap.
    let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    buffer.extend_from_slice(&length.to_be_bytes());
    buffer.extend_from_slice(bytes);
}

/// The associated data of a sealed field: context, format, key version,
/// tenant, table, column and row.
pub(crate) fn associated_data(tenant_id: Uuid, at: FieldAddress<'_>, key_version: u32) -> Vec<u8> {
    let mut ad = Vec::with_capacity(64 + at.table.len() + at.column.len());
    push_prefixed(&mut ad, SEAL_CONTEXT);
    ad.push(FORMAT_V1);
    ad.extend_from_slice(&key_version.to_be_bytes());
    ad.extend_from_slice(tenant_id.as_bytes());
    push_prefixed(&mut ad, at.table.as_bytes());
    push_prefixed(&mut ad, at.column.as_bytes());
    ad.extend_from_slice(at.row_id.as_bytes());
    ad
}

/// Seals `plaintext` for `tenant_id` at `at` under `key` (data key
/// `key_version`) with `nonce`, which must never repeat for this key (draw it
/// at random). The associated data is built here from the same version that
/// goes into the header, so the two cannot disagree.
pub(crate) fn seal_with_key(
    key: &DataKey,
    key_version: u32,
    nonce: [u8; NONCE_LEN],
    tenant_id: Uuid,
    at: FieldAddress<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let associated_data = associated_data(tenant_id, at, key_version);
    let mut sealed = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    sealed.push(FORMAT_V1);
    sealed.extend_from_slice(&key_version.to_be_bytes());
    sealed.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    key.aead()?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated_data.as_slice()),
            &mut body,
        )
        .map_err(|_| CryptoError::Malformed)?;
    sealed.extend_from_slice(&body);
    Ok(sealed)
}

/// A sealed field split into its parts, before its key is known.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SealedField<'a> {
    /// The data-key version that sealed it.
    pub(crate) key_version: u32,
    nonce: [u8; NONCE_LEN],
    ciphertext_and_tag: &'a [u8],
}

impl<'a> SealedField<'a> {
    /// Splits `sealed`; fails with [`CryptoError::Malformed`] on an unknown
    /// format, a zero key version, or too few bytes.
    pub(crate) fn parse(sealed: &'a [u8]) -> Result<Self, CryptoError> {
        if sealed.len() < HEADER_LEN + TAG_LEN {
            return Err(CryptoError::Malformed);
        }
        let (header, ciphertext_and_tag) = sealed.split_at(HEADER_LEN);
        let (format, rest) = header.split_at(1);
        let (version_bytes, nonce_bytes) = rest.split_at(4);
        if format != [FORMAT_V1] {
            return Err(CryptoError::Malformed);
        }
        let version_array: [u8; 4] = version_bytes
            .try_into()
            .map_err(|_| CryptoError::Malformed)?;
        let key_version = u32::from_be_bytes(version_array);
        if key_version == 0 {
            return Err(CryptoError::Malformed);
        }
        let nonce: [u8; NONCE_LEN] = nonce_bytes.try_into().map_err(|_| CryptoError::Malformed)?;
        Ok(Self {
            key_version,
            nonce,
            ciphertext_and_tag,
        })
    }

    /// Opens the field with its data key, for `tenant_id` at `at`; any edit
    /// (header included), a wrong key, tenant or address fails with
    /// [`CryptoError::Tampered`].
    pub(crate) fn open_with_key(
        &self,
        key: &DataKey,
        tenant_id: Uuid,
        at: FieldAddress<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let associated_data = associated_data(tenant_id, at, self.key_version);
        let mut buffer = Zeroizing::new(self.ciphertext_and_tag.to_vec());
        let plaintext_len = key
            .aead()?
            .open_in_place(
                Nonce::assume_unique_for_key(self.nonce),
                Aad::from(associated_data.as_slice()),
                buffer.as_mut_slice(),
            )
            .map_err(|_| CryptoError::Tampered)?
            .len();
        buffer.truncate(plaintext_len);
        Ok(buffer)
    }
}

/// HMAC-SHA256 of a normalised value under a tenant's index key, separated by `scope`.
pub(crate) fn blind_index_with_key(key: &DataKey, scope: &str, normalized_value: &[u8]) -> Vec<u8> {
    let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, key.0.as_slice());
    let mut context = hmac::Context::with_key(&hmac_key);
    let mut prefix = Vec::with_capacity(INDEX_CONTEXT.len() + scope.len() + 8);
    push_prefixed(&mut prefix, INDEX_CONTEXT);
    push_prefixed(&mut prefix, scope.as_bytes());
    context.update(&prefix);
    context.update(normalized_value);
    context.sign().as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: Uuid = Uuid::from_u128(0x1111);
    const ROW: Uuid = Uuid::from_u128(0x2222);

    fn key(byte: u8) -> DataKey {
        DataKey::from_slice(&[byte; KEY_LEN]).expect("32 bytes")
    }

    fn address<'a>(table: &'a str, column: &'a str) -> FieldAddress<'a> {
        FieldAddress {
            table,
            column,
            row_id: ROW,
        }
    }

    fn seal(plaintext: &[u8]) -> Vec<u8> {
        seal_with_key(
            &key(1),
            7,
            [9; NONCE_LEN],
            TENANT,
            address("clients", "notes"),
            plaintext,
        )
        .expect("seal")
    }

    #[test]
    fn a_sealed_field_opens_with_its_key_and_address() {
        let sealed = seal(b"knee injury");
        let field = SealedField::parse(&sealed).expect("parse");
        assert_eq!(field.key_version, 7);
        let opened = field
            .open_with_key(&key(1), TENANT, address("clients", "notes"))
            .expect("open");
        assert_eq!(opened.as_slice(), b"knee injury");
    }

    #[test]
    fn the_format_is_version_byte_key_version_nonce_then_ciphertext_and_tag() {
        let sealed = seal(b"abc");
        assert_eq!(sealed[0], FORMAT_V1);
        assert_eq!(&sealed[1..5], &7u32.to_be_bytes());
        assert_eq!(&sealed[5..17], &[9; NONCE_LEN]);
        assert_eq!(sealed.len(), HEADER_LEN + 3 + TAG_LEN);
    }

    #[test]
    fn an_empty_plaintext_round_trips() {
        let sealed = seal(b"");
        let opened = SealedField::parse(&sealed)
            .and_then(|field| field.open_with_key(&key(1), TENANT, address("clients", "notes")))
            .expect("open");
        assert!(opened.is_empty());
    }

    #[test]
    fn a_wrong_key_does_not_open() {
        let sealed = seal(b"secret");
        let result = SealedField::parse(&sealed)
            .and_then(|field| field.open_with_key(&key(2), TENANT, address("clients", "notes")));
        assert!(matches!(result, Err(CryptoError::Tampered)));
    }

    #[test]
    fn a_field_opened_for_another_tenant_or_address_is_tampered() {
        let sealed = seal(b"secret");
        let field = SealedField::parse(&sealed).expect("parse");
        let other_tenant = field.open_with_key(
            &key(1),
            Uuid::from_u128(0x3333),
            address("clients", "notes"),
        );
        assert!(matches!(other_tenant, Err(CryptoError::Tampered)));
        let other_column = field.open_with_key(&key(1), TENANT, address("clients", "email"));
        assert!(matches!(other_column, Err(CryptoError::Tampered)));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let sealed = seal(b"secret");
        for index in 0..sealed.len() {
            let mut edited = sealed.clone();
            edited[index] ^= 0x01;
            let result = SealedField::parse(&edited).and_then(|field| {
                field.open_with_key(&key(1), TENANT, address("clients", "notes"))
            });
            assert!(result.is_err(), "flipping byte {index} went unnoticed");
        }
    }

    #[test]
    fn associated_data_binds_tenant_table_column_row_and_version() {
        let base = associated_data(TENANT, address("clients", "notes"), 7);
        let others = [
            associated_data(Uuid::from_u128(0x3333), address("clients", "notes"), 7),
            associated_data(TENANT, address("invoices", "notes"), 7),
            associated_data(TENANT, address("clients", "email"), 7),
            associated_data(
                TENANT,
                FieldAddress {
                    row_id: Uuid::from_u128(0x4444),
                    ..address("clients", "notes")
                },
                7,
            ),
            associated_data(TENANT, address("clients", "notes"), 8),
        ];
        for other in others {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn associated_data_is_length_prefixed_so_names_cannot_be_resplit() {
        let ab_c = associated_data(TENANT, address("ab", "c"), 1);
        let a_bc = associated_data(TENANT, address("a", "bc"), 1);
        assert_ne!(ab_c, a_bc);
    }

    #[test]
    fn unknown_formats_short_inputs_and_version_zero_are_malformed() {
        let mut unknown_format = seal(b"x");
        unknown_format[0] = 2;
        let mut version_zero = seal(b"x");
        version_zero[1..5].copy_from_slice(&0u32.to_be_bytes());
        for bytes in [
            &[][..],
            &[FORMAT_V1; 10][..],
            &unknown_format[..],
            &version_zero[..],
        ] {
            assert!(matches!(
                SealedField::parse(bytes),
                Err(CryptoError::Malformed)
            ));
        }
    }

    #[test]
    fn a_data_key_must_be_32_bytes_and_never_prints() {
        assert!(DataKey::from_slice(&[0; 31]).is_none());
        assert!(DataKey::from_slice(&[0; 33]).is_none());
        assert_eq!(format!("{:?}", key(0xAB)), "DataKey(<redacted>)");
    }

    #[test]
    fn a_blind_index_is_deterministic_and_separated_by_key_and_scope() {
        let first = blind_index_with_key(&key(1), "clients.email", b"a@example.com");
        assert_eq!(first.len(), 32);
        assert_eq!(
            first,
            blind_index_with_key(&key(1), "clients.email", b"a@example.com")
        );
        assert_ne!(
            first,
            blind_index_with_key(&key(2), "clients.email", b"a@example.com")
        );
        assert_ne!(
            first,
            blind_index_with_key(&key(1), "clients.phone", b"a@example.com")
        );
        assert_ne!(
            first,
            blind_index_with_key(&key(1), "clients.email", b"b@example.com")
        );
    }
}
