//! Who is calling: the [`Principal`] carried by an access token, the token's
//! [`Claims`], and a [`TokenVerifier`] that checks tokens offline against the
//! identity service's published keys and the revocations it pushes.

mod principal;
pub mod revocation;
pub mod structure;
mod verified;
mod verifier;

pub use principal::{
    AMR_OTP, AMR_PASSWORD, Caller, OPERATOR_PEER, PeerIdentity, Principal, Role, forwarded_bearer,
    peer, principal, require_operator_peer,
};
pub use revocation::{
    Revocation, RevocationBatch, RevocationFollower, RevocationSource, RevocationStream,
};
pub use structure::{ActingFor, MAX_ACTING_FOR_IDS, STRUCTURE_TTL, StructureSource};
pub use verifier::{
    AUDIENCE, Claims, EXPIRY_LEEWAY, ISSUER, KEY_SET_TTL, KeySource, MIN_FETCH_GAP, PublicKeyEntry,
    TokenError, TokenVerifier,
};
