//! Access tokens: Ed25519 JWTs signed by the gateway and verified again by every server, with
//! key rotation and a cache of verified tokens.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use super::{AuthSettings, Claims, Principal};
use crate::error::Error;

/// Makes a new random Ed25519 seed, base64-encoded.
pub fn generate_signing_key() -> String {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the operating system provides randomness");
    STANDARD.encode(seed)
}

fn signing_key(seed_b64: &str) -> anyhow::Result<SigningKey> {
    let seed = STANDARD
        .decode(seed_b64.trim())
        .map_err(|_| anyhow::anyhow!("auth.signing_key is not base64"))?;
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| anyhow::anyhow!("auth.signing_key must be 32 bytes"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The base64 public key of a base64 seed.
pub fn public_key(seed_b64: &str) -> anyhow::Result<String> {
    Ok(STANDARD.encode(signing_key(seed_b64)?.verifying_key().to_bytes()))
}

/// Signs access tokens (the gateway only).
#[derive(Clone)]
pub struct Signer {
    header: Header,
    key: EncodingKey,
    issuer: String,
}

impl Signer {
    /// The signer of `settings.signing_key`.
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !settings.signing_key.is_empty(),
            "auth.signing_key is not set"
        );
        let der = signing_key(&settings.signing_key)?
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("cannot encode the signing key: {e}"))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(settings.signing_key_id.clone());
        Ok(Self {
            header,
            key: EncodingKey::from_ed_der(der.as_bytes()),
            issuer: settings.issuer.clone(),
        })
    }

    /// The issuer to put in claims.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        Ok(jsonwebtoken::encode(&self.header, claims, &self.key)?)
    }
}

/// Verifies access tokens: signature by a known key id, issuer, expiry, and that the session
/// is not revoked.
pub struct Verifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
    revoked: Arc<RwLock<HashSet<String>>>,
    /// Sessions this process revoked itself, and when: kept in `revoked` across reloads for a
    /// while, so a reload that read Redis just before the revocation reached it cannot undo it.
    revoked_here: RwLock<HashMap<String, std::time::Instant>>,
    /// Tokens already verified, with their expiry: a signature is checked once per token, not
    /// once per call. Bounded: emptied when full.
    verified: RwLock<HashMap<String, (Principal, i64)>>,
}

/// How many verified tokens a server remembers.
const VERIFIED_CACHE: usize = 10_000;

impl Verifier {
    /// The verifier of `settings`: the verification keys plus the signing key's public key.
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Self> {
        let mut keys = HashMap::new();
        for (kid, public) in &settings.verification_keys {
            let bytes = STANDARD
                .decode(public.trim())
                .map_err(|_| anyhow::anyhow!("auth.verification_keys.{kid} is not base64"))?;
            anyhow::ensure!(
                bytes.len() == 32,
                "auth.verification_keys.{kid} must be 32 bytes"
            );
            keys.insert(kid.clone(), DecodingKey::from_ed_der(&bytes));
        }
        if !settings.signing_key.is_empty() {
            let public = STANDARD.decode(public_key(&settings.signing_key)?)?;
            keys.insert(
                settings.signing_key_id.clone(),
                DecodingKey::from_ed_der(&public),
            );
        }
        anyhow::ensure!(
            !keys.is_empty(),
            "no token verification key: set auth.verification_keys (or auth.signing_key)"
        );
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 0;
        Ok(Self {
            keys,
            validation,
            revoked: Arc::default(),
            revoked_here: RwLock::default(),
            verified: RwLock::default(),
        })
    }

    /// The caller of a bearer token, or `UNAUTHENTICATED` saying why not.
    pub fn verify(&self, token: &str) -> Result<Principal, Error> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let cached = self
            .verified
            .read()
            .expect("cache lock")
            .get(token)
            .cloned();
        let principal = match cached {
            Some((principal, exp)) if exp > now => principal,
            Some(_) => return Err(Error::Unauthenticated("token expired".into())),
            None => {
                let (principal, exp) = self.check_signature(token)?;
                let mut cache = self.verified.write().expect("cache lock");
                if cache.len() >= VERIFIED_CACHE {
                    cache.clear();
                }
                cache.insert(token.to_string(), (principal.clone(), exp));
                principal
            }
        };
        if self
            .revoked
            .read()
            .expect("revocation lock")
            .contains(&principal.session_id)
        {
            return Err(Error::Unauthenticated("session was revoked".into()));
        }
        Ok(principal)
    }

    fn check_signature(&self, token: &str) -> Result<(Principal, i64), Error> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Error::Unauthenticated("malformed token".into()))?;
        let kid = header.kid.unwrap_or_default();
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| Error::Unauthenticated("token signed by an unknown key".into()))?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            Error::Unauthenticated(
                match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::InvalidSignature => "token signature is not valid",
                    ErrorKind::InvalidIssuer => "token from another issuer",
                    _ => "token is not valid",
                }
                .into(),
            )
        })?;
        let exp = data.claims.exp;
        Ok((data.claims.into(), exp))
    }

    /// Replaces the set of revoked session ids with those read from Redis, keeping the ones
    /// this process revoked in the last minute (the read may predate them).
    pub fn set_revoked(&self, mut sessions: HashSet<String>) {
        {
            let mut here = self.revoked_here.write().expect("revocation lock");
            here.retain(|_, at| at.elapsed() < std::time::Duration::from_secs(60));
            sessions.extend(here.keys().cloned());
        }
        *self.revoked.write().expect("revocation lock") = sessions;
    }

    /// Marks one session revoked in this process at once (the revoking process does not wait
    /// for its next poll).
    pub fn revoke_now(&self, session: &str) {
        self.revoked_here
            .write()
            .expect("revocation lock")
            .insert(session.to_string(), std::time::Instant::now());
        self.revoked
            .write()
            .expect("revocation lock")
            .insert(session.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{claims, settings};

    #[test]
    fn tokens_verify_and_forgeries_fail() {
        let s = settings(&generate_signing_key());
        let signer = Signer::new(&s).unwrap();
        let verifier = Verifier::new(&s).unwrap();
        let token = signer.sign(&claims("u1", &["sales_rep"], 60)).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().subject, "u1");

        let expired = signer.sign(&claims("u1", &["sales_rep"], -5)).unwrap();
        assert!(
            matches!(verifier.verify(&expired), Err(Error::Unauthenticated(m)) if m == "token expired")
        );

        // signed by another key under the same key id
        let other = Signer::new(&settings(&generate_signing_key())).unwrap();
        let forged = other.sign(&claims("u1", &["admin"], 60)).unwrap();
        assert!(verifier.verify(&forged).is_err());

        // a changed payload breaks the signature
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims("u1", &["admin"], 60)).unwrap());
        assert!(verifier.verify(&parts.join(".")).is_err());

        verifier.revoke_now("s-u1");
        assert!(
            matches!(verifier.verify(&token), Err(Error::Unauthenticated(m)) if m == "session was revoked")
        );
        // a reload that read Redis before the revocation reached it does not undo it
        verifier.set_revoked(HashSet::new());
        assert!(
            verifier.verify(&token).is_err(),
            "still revoked after a stale reload"
        );
    }

    #[test]
    fn rotation_accepts_old_and_new_keys() {
        let old_seed = generate_signing_key();
        let old = settings(&old_seed);
        let old_token = Signer::new(&old)
            .unwrap()
            .sign(&claims("u1", &[], 60))
            .unwrap();
        let mut new = settings(&generate_signing_key());
        new.signing_key_id = "k2".into();
        new.verification_keys
            .insert("dev".into(), public_key(&old_seed).unwrap());
        let verifier = Verifier::new(&new).unwrap();
        assert!(verifier.verify(&old_token).is_ok());
        let new_token = Signer::new(&new)
            .unwrap()
            .sign(&claims("u2", &[], 60))
            .unwrap();
        assert!(verifier.verify(&new_token).is_ok());
    }
}
