//! The secrets of sessions and keys (G-1): random secrets, their stored hashes, refresh tokens
//! and a constant-time comparison. No I/O here.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A fresh random secret, base64url.
pub fn secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a secret.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A refresh token: `<session id>.<secret>`.
pub fn refresh_token_string(session: Uuid, secret: &str) -> String {
    format!("{}.{secret}", session.simple())
}

/// Splits a refresh token into its session id and secret.
pub fn parse_refresh_token(token: &str) -> Option<(Uuid, &str)> {
    let (id, secret) = token.trim().split_once('.')?;
    Some((Uuid::parse_str(id).ok()?, secret))
}

/// Compares two hashes in constant time.
pub fn same_hash(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::api_keys::rules::{api_key_string, parse_api_key};

    #[test]
    fn api_keys_and_refresh_tokens_round_trip() {
        let id = Uuid::now_v7();
        let s = secret();
        assert_eq!(s.len(), 43);
        let key = api_key_string(id, &s);
        assert_eq!(parse_api_key(&key), Some((id, s.as_str())));
        assert_eq!(parse_api_key("nope"), None);
        let token = refresh_token_string(id, &s);
        assert_eq!(parse_refresh_token(&token), Some((id, s.as_str())));
        assert!(same_hash(&hash_secret(&s), &hash_secret(&s)));
        assert!(!same_hash(&hash_secret(&s), &hash_secret("x")));
    }
}
