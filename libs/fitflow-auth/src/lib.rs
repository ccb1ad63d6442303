//! Who is calling: the [`Principal`] carried by an access token, the token's
//! [`Claims`], and a [`TokenVerifier`] that checks tokens offline against the
//! identity service's published keys.

mod principal;
mod verifier;

pub use principal::{
    AMR_OTP, AMR_PASSWORD, Caller, OPERATOR_PEER, PeerIdentity, Principal, Role, peer, principal,
    require_operator_peer,
};
pub use verifier::{
    AUDIENCE, Claims, ISSUER, KEY_SET_TTL, KeySource, MIN_FETCH_GAP, PublicKeyEntry, TokenError,
    TokenVerifier,
};
