//! Tokens whose signature a verifier has already checked.
//!
//! An Ed25519 check costs about 50 µs of CPU, more than PostgreSQL spends on
//! a one-row read (`fitflow bench compare`), and a client sends the same
//! token on every call until it expires. A verifier therefore remembers each
//! token it verified, keyed by the whole token, until the token's expiry.
//! Only the signature check is skipped: the expiry, the key still being
//! published and identity's revocations are checked on every use, so a
//! revoked session is refused from the cache as from a fresh token.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::{Claims, Principal};

/// Most tokens remembered. Only identity mints tokens a verifier accepts,
/// and each costs a login or a refresh, so the bound is for memory (about
/// 2 KiB an entry), not for defence; when full of unexpired tokens the
/// memory is emptied and refilled by the next requests.
pub(crate) const CAPACITY: usize = 8_192;

/// What one successful verification learned.
#[derive(Debug)]
pub(crate) struct Verified {
    /// The token's claims, for the revocation check on each use.
    pub(crate) claims: Claims,
    /// The key id that signed it, which must still be published.
    pub(crate) key_id: String,
    /// The principal the claims carry.
    pub(crate) principal: Principal,
    /// The last second (Unix time) at which the token is accepted: its
    /// `exp` plus the leeway.
    pub(crate) usable_until: i64,
}

/// Verified tokens by their full text.
pub(crate) struct VerifiedTokens {
    tokens: RwLock<HashMap<Box<str>, Arc<Verified>>>,
    capacity: usize,
}

impl VerifiedTokens {
    /// An empty memory of at most `capacity` tokens.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            tokens: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// The verification of `token` when it is remembered and still usable at `now`.
    pub(crate) fn get(&self, token: &str, now: i64) -> Option<Arc<Verified>> {
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        tokens
            .get(token)
            .filter(|verified| now <= verified.usable_until)
            .cloned()
    }

    /// Remembers `verified` for `token`, dropping expired tokens (and, when
    /// the memory is still full, everything) to make room.
    pub(crate) fn insert(&self, token: &str, verified: Arc<Verified>, now: i64) {
        let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        if tokens.len() >= self.capacity {
            tokens.retain(|_, remembered| now <= remembered.usable_until);
        }
        if tokens.len() >= self.capacity {
            tokens.clear();
        }
        tokens.insert(token.into(), verified);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn verified(usable_until: i64) -> Arc<Verified> {
        let claims = Claims {
            iss: crate::ISSUER.into(),
            aud: crate::AUDIENCE.into(),
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            roles: vec![],
            sup: vec![],
            iat: 0,
            exp: usable_until,
            jti: Uuid::new_v4(),
            amr: vec![],
            studios: vec![],
            claims_truncated: false,
            claims_partial: false,
        };
        let principal = Principal {
            user_id: claims.sub,
            session_id: claims.sid,
            roles: vec![],
            supervised_trainer_ids: vec![],
            amr: vec![],
            studio_ids: vec![],
            claims_truncated: false,
            claims_partial: false,
        };
        Arc::new(Verified {
            claims,
            key_id: "k1".into(),
            principal,
            usable_until,
        })
    }

    #[test]
    fn a_remembered_token_is_served_until_its_last_usable_second() {
        let memory = VerifiedTokens::new(8);
        memory.insert("token", verified(100), 50);
        assert!(memory.get("token", 100).is_some());
        assert!(memory.get("token", 101).is_none());
    }

    #[test]
    fn only_the_exact_token_is_found() {
        let memory = VerifiedTokens::new(8);
        memory.insert("header.payload.signature", verified(100), 50);
        assert!(memory.get("header.payload.signatur", 60).is_none());
        assert!(memory.get("header.payload.signaturE", 60).is_none());
        assert!(memory.get("header.payload.signature", 60).is_some());
    }

    #[test]
    fn a_full_memory_drops_expired_tokens_first() {
        let memory = VerifiedTokens::new(2);
        memory.insert("old", verified(10), 5);
        memory.insert("live", verified(100), 5);
        memory.insert("new", verified(100), 50);
        assert_eq!(memory.len(), 2);
        assert!(memory.get("live", 50).is_some());
        assert!(memory.get("new", 50).is_some());
    }

    #[test]
    fn a_memory_full_of_live_tokens_starts_again_and_stays_bounded() {
        let memory = VerifiedTokens::new(3);
        for index in 0..10 {
            memory.insert(&format!("token-{index}"), verified(100), 50);
            assert!(memory.len() <= 3);
        }
        assert!(memory.get("token-9", 50).is_some());
    }
}
