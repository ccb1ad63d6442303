//! Paging of List methods (AIP-158): `page_size` and opaque, signed page tokens.
//!
//! A page token carries a keyset cursor (where the next page starts) and an
//! HMAC-SHA256 tag over that cursor, the List method, the caller and the
//! request's filter fields. The filter and the caller are not in the token:
//! the server recomputes them from the request that brings the token back, so
//! a token replayed with another filter, by another caller, to another method,
//! edited or made up fails the tag check and is refused as INVALID_ARGUMENT on
//! `page_token` (never INTERNAL), with the same description in every case.
//!
//! The tag authenticates, it does not encrypt: the cursor is readable by
//! whoever holds the token. Cursors must hold only ids and instants (keyset
//! columns such as `(create_time, id)`), never a sorted-by name or other PHI.
//!
//! **Keys.** Each service gets one 32-byte key at start-up (the platform
//! derives it per service), the same on every replica, so a token from one
//! replica works on another. Rotating the key invalidates every outstanding
//! token: a caller holding one gets INVALID_ARGUMENT on `page_token` and
//! starts again from the first page. No data is exposed and nothing fails
//! open; paging simply restarts.
//!
//! Usage in a List handler:
//! 1. `page_size(&mut violations, request.page_size, MAX)`;
//! 2. build the [`PageQuery`] from the method name, the caller and the
//!    request's filter bytes — e.g. the request encoded with `page_size` and
//!    `page_token` cleared (prost encodes a message without map fields
//!    deterministically);
//! 3. `tokens.read::<C>(&mut violations, &query, &request.page_token)`;
//! 4. fetch `page_size + 1` rows after the cursor, then [`split_page`] and
//!    `tokens.issue(&query, &cursor)` for `next_page_token`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use fitflow_auth::Caller;
use fitflow_error::Violations;
use ring::hmac;
use uuid::Uuid;

use crate::caller_subject;

/// Items per page when the request says 0 (or the method's maximum, if lower).
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Longest page token read; longer ones are refused before decoding.
pub const MAX_PAGE_TOKEN_CHARS: usize = 1_024;

/// The token format; a token of another version is refused.
const TOKEN_VERSION: u8 = 1;
/// Separates our tags from any other use of the same key.
const TAG_CONTEXT: &[u8] = b"fitflow.page_token.v1";
const TAG_BYTES: usize = 32;
const INVALID_TOKEN: &str =
    "must be a next_page_token returned for this same query; start again from the first page";

/// The page size to use: 0 → [`DEFAULT_PAGE_SIZE`] (at most `max`), above
/// `max` → `max` (AIP-158 coerces rather than refuses). A negative size is a
/// violation on `page_size`, and the default is returned so validation goes on.
pub fn page_size(violations: &mut Violations, requested: i32, max: u32) -> u32 {
    debug_assert!(max > 0, "a List method's maximum page size is positive");
    match u32::try_from(requested) {
        Ok(0) => DEFAULT_PAGE_SIZE.min(max),
        Ok(size) => size.min(max),
        Err(_) => {
            violations.add("page_size", "must not be negative");
            DEFAULT_PAGE_SIZE.min(max)
        }
    }
}

/// Cuts `rows` — fetched as `page_size + 1` — to one page, and returns the
/// cursor of its last row when there is a next page (the extra row exists).
pub fn split_page<T, C>(
    rows: &mut Vec<T>,
    page_size: u32,
    cursor_of: impl FnOnce(&T) -> C,
) -> Option<C> {
    let page_size = usize::try_from(page_size).unwrap_or(usize::MAX);
    if rows.len() <= page_size {
        return None;
    }
    rows.truncate(page_size);
    rows.last().map(cursor_of)
}

/// A keyset position, serialised into a page token.
pub trait Cursor: Sized {
    /// The cursor's bytes; [`Cursor::from_bytes`] must read them back.
    fn to_bytes(&self) -> Vec<u8>;
    /// Reads bytes made by [`Cursor::to_bytes`]; `None` when they are not.
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
}

/// Ordered by id alone (UUIDv7 ids sort by creation time).
impl Cursor for Uuid {
    fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Uuid::from_slice(bytes).ok()
    }
}

/// The usual keyset: ordered by an instant, ties broken by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeIdCursor {
    /// The last row's instant, at microsecond precision (what PostgreSQL keeps).
    pub at: DateTime<Utc>,
    /// The last row's id.
    pub id: Uuid,
}

impl Cursor for TimeIdCursor {
    fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(24);
        bytes.extend_from_slice(&self.at.timestamp_micros().to_be_bytes());
        bytes.extend_from_slice(self.id.as_bytes());
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (micros, id) = bytes.split_first_chunk::<8>()?;
        Some(Self {
            at: DateTime::from_timestamp_micros(i64::from_be_bytes(*micros))?,
            id: Uuid::from_slice(id).ok()?,
        })
    }
}

/// What a page token is bound to: the List method, the caller and the
/// request's filter fields (everything but `page_size` and `page_token`).
#[derive(Debug, Clone, Copy)]
pub struct PageQuery<'a> {
    /// The full gRPC method, e.g. `/fitflow.clients.v1.ClientService/ListClients`,
    /// so two List methods with equal (often empty) filters never share tokens.
    pub method: &'a str,
    /// Who lists.
    pub caller: &'a Caller,
    /// The filter fields in a deterministic encoding.
    pub filter: &'a [u8],
}

/// Issues and reads the page tokens of one service.
pub struct PageTokens {
    key: hmac::Key,
}

// The key is a secret: never print it.
impl fmt::Debug for PageTokens {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("PageTokens { key: [redacted] }")
    }
}

impl PageTokens {
    /// Tokens signed with the service's 32-byte page-token `key`.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// Tokens signed with 32 random bytes drawn now: good only on this
    /// process until it restarts (a caller whose token is refused starts
    /// the listing again). Replicas behind one address need [`Self::new`]
    /// with a shared key.
    pub fn with_random_key() -> Self {
        use ring::rand::SecureRandom as _;
        let mut key = [0; 32];
        if ring::rand::SystemRandom::new().fill(&mut key).is_err() {
            // ring found no generator; uuid's v4 ids come from the OS generator too.
            key[..16].copy_from_slice(Uuid::new_v4().as_bytes());
            key[16..].copy_from_slice(Uuid::new_v4().as_bytes());
        }
        Self::new(&key)
    }

    /// The `next_page_token` that resumes `query` at `cursor`:
    /// base64url (no padding) of version, cursor and tag.
    pub fn issue<C: Cursor>(&self, query: &PageQuery<'_>, cursor: &C) -> String {
        let cursor = cursor.to_bytes();
        let tag = self.tag(query, &cursor);
        let mut token = Vec::with_capacity(1 + cursor.len() + TAG_BYTES);
        token.push(TOKEN_VERSION);
        token.extend_from_slice(&cursor);
        token.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The cursor of `token` for `query`: `None` for an empty token (the first
    /// page). A token that was not issued for this very query and caller under
    /// the current key records a violation on `page_token` and gives `None`.
    pub fn read<C: Cursor>(
        &self,
        violations: &mut Violations,
        query: &PageQuery<'_>,
        token: &str,
    ) -> Option<C> {
        if token.is_empty() {
            return None;
        }
        let cursor = self.verify(query, token);
        violations.check(cursor.is_some(), "page_token", INVALID_TOKEN);
        cursor
    }

    fn verify<C: Cursor>(&self, query: &PageQuery<'_>, token: &str) -> Option<C> {
        if token.len() > MAX_PAGE_TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let (version, rest) = bytes.split_first()?;
        if *version != TOKEN_VERSION || rest.len() < TAG_BYTES {
            return None;
        }
        let (cursor, tag) = rest.split_at(rest.len() - TAG_BYTES);
        // Constant-time comparison, inside ring.
        hmac::verify(&self.key, &tag_input(query, cursor), tag).ok()?;
        C::from_bytes(cursor)
    }

    fn tag(&self, query: &PageQuery<'_>, cursor: &[u8]) -> hmac::Tag {
        hmac::sign(&self.key, &tag_input(query, cursor))
    }
}

/// Length-prefixed, so no two different (method, caller, filter, cursor)
/// lists encode to the same bytes.
fn tag_input(query: &PageQuery<'_>, cursor: &[u8]) -> Vec<u8> {
    let subject = caller_subject(query.caller);
    let mut input = Vec::with_capacity(
        TAG_CONTEXT.len()
            + 32
            + query.method.len()
            + subject.len()
            + query.filter.len()
            + cursor.len(),
    );
    for part in [
        TAG_CONTEXT,
        query.method.as_bytes(),
        subject.as_bytes(),
        query.filter,
        cursor,
    ] {
        let length = u64::try_from(part.len()).unwrap_or(u64::MAX);
        input.extend_from_slice(&length.to_be_bytes());
        input.extend_from_slice(part);
    }
    input
}

#[cfg(test)]
mod tests {
    use fitflow_auth::Principal;

    use super::*;

    const METHOD: &str = "/fitflow.clients.v1.ClientService/ListClients";

    fn user() -> Caller {
        Caller::User(Principal {
            user_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            roles: vec![],
            supervised_trainer_ids: vec![],
            amr: vec![],
            studio_ids: Vec::new(),
            claims_truncated: false,
            claims_partial: false,
        })
    }

    fn tokens() -> PageTokens {
        PageTokens::new(&[7; 32])
    }

    fn cursor() -> TimeIdCursor {
        TimeIdCursor {
            at: DateTime::from_timestamp_micros(1_764_300_000_123_456).expect("instant"),
            id: Uuid::now_v7(),
        }
    }

    fn read(
        tokens: &PageTokens,
        query: &PageQuery<'_>,
        token: &str,
    ) -> Result<Option<TimeIdCursor>, Vec<String>> {
        let mut violations = Violations::new();
        let cursor = tokens.read(&mut violations, query, token);
        match violations.into_result() {
            Ok(()) => Ok(cursor),
            Err(error) => Err(error.violations.into_iter().map(|v| v.field).collect()),
        }
    }

    #[test]
    fn a_page_token_round_trips_for_the_same_query_and_caller() {
        let caller = user();
        let query = PageQuery {
            method: METHOD,
            caller: &caller,
            filter: b"trainer=1",
        };
        let cursor = cursor();
        let token = tokens().issue(&query, &cursor);
        assert_eq!(read(&tokens(), &query, &token), Ok(Some(cursor)));
    }

    #[test]
    fn an_empty_page_token_is_the_first_page() {
        let caller = user();
        let query = PageQuery {
            method: METHOD,
            caller: &caller,
            filter: b"",
        };
        assert_eq!(read(&tokens(), &query, ""), Ok(None));
    }

    #[test]
    fn a_page_token_from_another_query_is_refused() {
        let caller = user();
        let query = PageQuery {
            method: METHOD,
            caller: &caller,
            filter: b"trainer=1",
        };
        let token = tokens().issue(&query, &cursor());
        let other_filter = PageQuery {
            filter: b"trainer=2",
            ..query
        };
        assert_eq!(
            read(&tokens(), &other_filter, &token),
            Err(vec!["page_token".to_owned()])
        );
        let other_method = PageQuery {
            method: "/fitflow.billing.v1.BillingService/ListInvoices",
            ..query
        };
        assert!(read(&tokens(), &other_method, &token).is_err());
    }

    #[test]
    fn a_page_token_replayed_by_another_caller_is_refused() {
        let (owner, other) = (user(), user());
        let query = PageQuery {
            method: METHOD,
            caller: &owner,
            filter: b"",
        };
        let token = tokens().issue(&query, &cursor());
        let replayed = PageQuery {
            caller: &other,
            ..query
        };
        assert!(read(&tokens(), &replayed, &token).is_err());
        let service = Caller::Service("billing");
        let as_service = PageQuery {
            caller: &service,
            ..query
        };
        assert!(read(&tokens(), &as_service, &token).is_err());
    }

    #[test]
    fn a_tampered_page_token_is_refused() {
        let caller = user();
        let query = PageQuery {
            method: METHOD,
            caller: &caller,
            filter: b"",
        };
        let token = tokens().issue(&query, &cursor());
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64url");
        // Move the cursor one microsecond on.
        bytes[8] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(&bytes);
        assert!(read(&tokens(), &query, &tampered).is_err());
        let truncated = &token[..token.len() - 2];
        assert!(read(&tokens(), &query, truncated).is_err());
    }

    #[test]
    fn a_forged_or_garbage_page_token_is_refused_not_an_internal_error() {
        let caller = user();
        let query = PageQuery {
            method: METHOD,
            caller: &caller,
            filter: b"",
        };
        let unsigned = URL_SAFE_NO_PAD.encode([&[TOKEN_VERSION][..], &[0; 24], &[0; 32]].concat());
        let oversized = "A".repeat(MAX_PAGE_TOKEN_CHARS + 4);
        for token in ["garbage!", "AA", unsigned.as_str(), oversized.as_str()] {
            assert_eq!(
                read(&tokens(), &query, token),
                Err(vec!["page_token".to_owned()]),
                "{token}"
            );
        }
    }

    #[test]
    fn a_key_rotation_makes_old_page_tokens_fail_cleanly() {
        let caller = user();
        let query = PageQuery {
            method: METHOD,
            caller: &caller,
            filter: b"",
        };
        let token = PageTokens::new(&[1; 32]).issue(&query, &cursor());
        let rotated = PageTokens::new(&[2; 32]);
        assert_eq!(
            read(&rotated, &query, &token),
            Err(vec!["page_token".to_owned()])
        );
    }

    #[test]
    fn a_page_token_is_url_safe_without_padding_and_hides_the_filter() {
        let caller = user();
        let query = PageQuery {
            method: METHOD,
            caller: &caller,
            filter: b"last_name=Tremblay",
        };
        let token = tokens().issue(&query, &cursor());
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64url");
        assert!(!bytes.windows(8).any(|window| window == b"Tremblay"));
    }

    #[test]
    fn page_size_zero_is_the_default_and_large_sizes_are_clamped() {
        let mut violations = Violations::new();
        assert_eq!(page_size(&mut violations, 0, 500), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(&mut violations, 0, 20), 20);
        assert_eq!(page_size(&mut violations, 7, 500), 7);
        assert_eq!(page_size(&mut violations, 10_000, 500), 500);
        assert!(violations.is_empty());
    }

    #[test]
    fn a_negative_page_size_is_a_violation() {
        let mut violations = Violations::new();
        assert_eq!(page_size(&mut violations, -1, 500), DEFAULT_PAGE_SIZE);
        let error = violations.into_result().expect_err("violation");
        assert_eq!(error.violations[0].field, "page_size");
    }

    #[test]
    fn a_page_is_cut_at_its_size_and_names_its_last_row_only_when_more_follow() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(split_page(&mut rows, 2, |row| *row), Some(2));
        assert_eq!(rows, [1, 2]);
        let mut last_page = vec![1, 2];
        assert_eq!(split_page(&mut last_page, 2, |row| *row), None);
        assert_eq!(last_page, [1, 2]);
    }

    #[test]
    fn cursors_read_back_only_their_own_bytes() {
        let cursor = cursor();
        assert_eq!(TimeIdCursor::from_bytes(&cursor.to_bytes()), Some(cursor));
        assert_eq!(TimeIdCursor::from_bytes(&[0; 23]), None);
        let id = Uuid::now_v7();
        assert_eq!(
            <Uuid as Cursor>::from_bytes(&Cursor::to_bytes(&id)),
            Some(id)
        );
        assert_eq!(<Uuid as Cursor>::from_bytes(&[1; 3]), None);
    }
}
