//! Authentication and authorisation, written once for every server.
//!
//! The gateway signs short-lived Ed25519 JWTs ([`Signer`]); every server verifies them again
//! ([`Verifier`]), checks the caller's roles against the per-method policy ([`Policy`], default
//! deny) in a tower layer ([`Security::layer`]) and hands the [`Principal`] to the handlers through
//! the request extensions. A call straight to a service gains nothing without a valid token.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, RwLock},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::error::Error;

/// The names of the roles of the domain brief (see [`crate::role::Role`]).
pub const ROLES: &[&str] = &crate::role::NAMES;

/// The `[auth]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// The `iss` of every token.
    pub issuer: String,
    /// Base64 of the 32-byte Ed25519 seed the gateway signs with; empty when this process
    /// does not sign.
    pub signing_key: String,
    /// The key id (`kid`) of the signing key.
    pub signing_key_id: String,
    /// Key id → base64 Ed25519 public key, accepted in addition to the signing key's own.
    pub verification_keys: BTreeMap<String, String>,
    /// Lifetime of an access token.
    pub access_ttl_s: u64,
    /// Lifetime of a refresh token (a session).
    pub refresh_ttl_s: u64,
    /// Default lifetime of a new API key.
    pub api_key_ttl_days: u32,
    /// How often each server reloads the revoked sessions from Redis.
    pub revocation_poll_ms: u64,
    /// Methods callable without a token.
    pub public_methods: Vec<String>,
    /// Methods callable with any valid token.
    pub authenticated_methods: Vec<String>,
    /// Role → methods it may call.
    pub policy: BTreeMap<String, Vec<String>>,
}

/// Whether a caller is a person or a partner system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// An internal user who logged in with a password.
    User,
    /// A partner system with an API key.
    ApiKey,
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id or API key id.
    pub sub: String,
    /// The display name.
    pub name: String,
    /// User or API key.
    pub kind: PrincipalKind,
    /// The caller's roles.
    pub roles: Vec<String>,
    /// The sales region of a sales rep or manager; empty otherwise.
    #[serde(default)]
    pub region: String,
    /// The partner organisation a partner belongs to; empty otherwise.
    #[serde(default)]
    pub partner: String,
    /// The session (refresh token) this token belongs to; revoking it revokes the token.
    pub sid: String,
    /// Issuer.
    pub iss: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user id or API key id.
    pub subject: String,
    /// The display name.
    pub name: String,
    /// User or API key.
    pub kind: PrincipalKind,
    /// The caller's roles.
    pub roles: Vec<String>,
    /// The sales region, for region-scoped roles.
    pub region: String,
    /// The partner organisation, for partners.
    pub partner_id: String,
    /// The session id.
    pub session_id: String,
}

impl Principal {
    /// The platform itself acting as an administrator (tools, demo data, migrations); never
    /// derived from a request.
    pub fn system(subject: &str) -> Self {
        Self {
            subject: subject.to_string(),
            name: subject.to_string(),
            kind: PrincipalKind::User,
            roles: vec!["admin".to_string()],
            region: String::new(),
            partner_id: String::new(),
            session_id: String::new(),
        }
    }

    /// Whether the caller has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the caller holds `role`.
    pub fn has(&self, role: crate::Role) -> bool {
        self.has_role(role.as_str())
    }

    /// Whether the caller holds any of `roles`.
    pub fn has_any(&self, roles: &[crate::Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }
}

impl From<Claims> for Principal {
    fn from(c: Claims) -> Self {
        Self {
            subject: c.sub,
            name: c.name,
            kind: c.kind,
            roles: c.roles,
            region: c.region,
            partner_id: c.partner,
            session_id: c.sid,
        }
    }
}

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

/// The Redis sorted set of revoked sessions (member: session id, score: when its last token
/// expires), shared by every server.
pub fn revoked_sessions_key(keys_prefix: &str) -> String {
    format!("{keys_prefix}{{auth}}:revoked_sessions")
}

/// The Redis key holding the policy overrides made through the admin API (JSON: role →
/// method patterns), shared by every server.
pub fn policy_key(keys_prefix: &str) -> String {
    format!("{keys_prefix}{{auth}}:policy")
}

/// Keeps `security` in step with Redis every `auth.revocation_poll_ms`, until `shutdown`: the
/// revoked sessions (entries whose tokens have all expired are dropped) and the policy
/// overrides.
pub fn spawn_poller(
    security: Security,
    settings: crate::Settings,
    shutdown: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        let every = Duration::from_millis(settings.auth.revocation_poll_ms);
        let revoked_key = revoked_sessions_key(&settings.redis.key_prefix);
        let policy_key = policy_key(&settings.redis.key_prefix);
        let mut conn = None;
        let mut last_policy: Option<String> = None;
        loop {
            if conn.is_none() {
                conn = crate::redis::connect(&settings.redis).await.ok();
            }
            if let Some(c) = conn.as_mut() {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let result: redis::RedisResult<(Vec<String>, Option<String>)> = redis::pipe()
                    .cmd("ZRANGEBYSCORE")
                    .arg(&revoked_key)
                    .arg(now)
                    .arg("+inf")
                    .cmd("GET")
                    .arg(&policy_key)
                    .query_async(c)
                    .await;
                match result {
                    Ok((sessions, policy)) => {
                        security
                            .verifier
                            .set_revoked(sessions.into_iter().collect());
                        if policy != last_policy {
                            let overrides: BTreeMap<String, Vec<String>> = policy
                                .as_deref()
                                .and_then(|p| serde_json::from_str(p).ok())
                                .unwrap_or_default();
                            match security.apply_overrides(&settings.auth, &overrides) {
                                Ok(()) => last_policy = policy,
                                Err(e) => {
                                    tracing::warn!(error = %e, "ignoring an invalid policy override")
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot load revoked sessions and policy"),
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    });
}

#[derive(Debug, Clone)]
enum Pattern {
    Any,
    Prefix(String),
    Exact(String),
}

impl Pattern {
    fn parse(s: &str) -> Self {
        match s.strip_suffix('*') {
            Some("") => Self::Any,
            Some(prefix) => Self::Prefix(prefix.to_string()),
            None => Self::Exact(s.to_string()),
        }
    }

    fn matches(&self, method: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Prefix(p) => method.starts_with(p.as_str()),
            Self::Exact(m) => m == method,
        }
    }
}

/// Who may call a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token.
    Public,
    /// Anyone with a valid token.
    Authenticated,
    /// Only roles the policy grants it.
    Roles,
}

/// The per-method policy: default deny.
#[derive(Debug, Clone)]
pub struct Policy {
    public: Vec<Pattern>,
    authenticated: Vec<Pattern>,
    roles: HashMap<String, Vec<Pattern>>,
    sources: BTreeMap<String, Vec<String>>,
}

/// Checks a method pattern: `package.Service/Method`, `package.Service/Prefix*` or `*`.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern == "*" {
        return Ok(());
    }
    let ok = match pattern.split_once('/') {
        Some((service, method)) => {
            service.contains('.')
                && !service.starts_with('.')
                && service
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
                && method
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '*')
                && method.find('*').is_none_or(|i| i == method.len() - 1)
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{pattern:?} is not a method pattern (package.Service/Method, package.Service/*, *)"
        ))
    }
}

impl Policy {
    /// The policy of `settings`; unknown roles are an error.
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Self> {
        Self::with_overrides(settings, &BTreeMap::new())
    }

    /// The policy of `settings` with some roles' methods replaced by `overrides`.
    pub fn with_overrides(
        settings: &AuthSettings,
        overrides: &BTreeMap<String, Vec<String>>,
    ) -> anyhow::Result<Self> {
        let parse = |v: &[String]| v.iter().map(|s| Pattern::parse(s)).collect::<Vec<_>>();
        let mut sources = settings.policy.clone();
        for (role, methods) in overrides {
            sources.insert(role.clone(), methods.clone());
        }
        let mut roles = HashMap::new();
        for (role, methods) in &sources {
            anyhow::ensure!(
                ROLES.contains(&role.as_str()),
                "auth.policy names an unknown role {role:?}"
            );
            for m in methods {
                check_pattern(m).map_err(|e| anyhow::anyhow!("auth.policy.{role}: {e}"))?;
            }
            roles.insert(role.clone(), parse(methods));
        }
        Ok(Self {
            public: parse(&settings.public_methods),
            authenticated: parse(&settings.authenticated_methods),
            roles,
            sources,
        })
    }

    /// Each role's method patterns, by role (every known role, empty when it has none).
    pub fn roles(&self) -> BTreeMap<String, Vec<String>> {
        ROLES
            .iter()
            .map(|r| {
                (
                    r.to_string(),
                    self.sources.get(*r).cloned().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Who may call `method` (`package.Service/Method`).
    pub fn access(&self, method: &str) -> Access {
        if self.public.iter().any(|p| p.matches(method)) {
            Access::Public
        } else if self.authenticated.iter().any(|p| p.matches(method)) {
            Access::Authenticated
        } else {
            Access::Roles
        }
    }

    /// Whether `principal` may call `method`.
    pub fn allows(&self, principal: &Principal, method: &str) -> bool {
        match self.access(method) {
            Access::Public | Access::Authenticated => true,
            Access::Roles => principal
                .roles
                .iter()
                .filter_map(|r| self.roles.get(r))
                .any(|patterns| patterns.iter().any(|p| p.matches(method))),
        }
    }
}

/// What every server shares to check callers.
#[derive(Clone)]
pub struct Security {
    /// Token verification.
    pub verifier: Arc<Verifier>,
    policy: Arc<RwLock<Arc<Policy>>>,
}

impl Security {
    /// The verifier and policy of `settings`, without following Redis (tools).
    pub fn new(settings: &crate::Settings) -> anyhow::Result<Self> {
        Ok(Self {
            verifier: Arc::new(Verifier::new(&settings.auth)?),
            policy: Arc::new(RwLock::new(Arc::new(Policy::new(&settings.auth)?))),
        })
    }

    /// Like [`Security::new`], following the revoked sessions and policy overrides in Redis
    /// until `shutdown`.
    pub fn start(
        settings: &crate::Settings,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<Self> {
        let security = Self::new(settings)?;
        spawn_poller(security.clone(), settings.clone(), shutdown);
        Ok(security)
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.read().expect("policy lock").clone()
    }

    /// Replaces the policy with the configured one plus `overrides`.
    pub fn apply_overrides(
        &self,
        settings: &AuthSettings,
        overrides: &BTreeMap<String, Vec<String>>,
    ) -> anyhow::Result<()> {
        let policy = Policy::with_overrides(settings, overrides)?;
        *self.policy.write().expect("policy lock") = Arc::new(policy);
        Ok(())
    }

    /// The tower layer that authenticates and authorises every call.
    pub fn layer(&self) -> crate::guard::GuardLayer<Self> {
        crate::guard::GuardLayer::new(self.clone())
    }

    /// Checks one call: its method and its `authorization` header. `Ok(None)` for a public
    /// method called without a token.
    pub fn check(
        &self,
        method: &str,
        authorization: Option<&str>,
    ) -> Result<Option<Principal>, Error> {
        let policy = self.policy();
        let access = policy.access(method);
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        let principal = match (token, &access) {
            (None, Access::Public) => return Ok(None),
            (None, _) => return Err(Error::Unauthenticated("missing bearer token".into())),
            (Some(token), Access::Public) => self.verifier.verify(token).ok(),
            (Some(token), _) => Some(self.verifier.verify(token)?),
        };
        if let Some(p) = &principal
            && !policy.allows(p, method)
        {
            return Err(Error::PermissionDenied {
                permission: method.to_string(),
            });
        }
        Ok(principal)
    }
}

/// The called method (`package.Service/Method`), put into every request's extensions by the
/// auth layer for the audit trail.
#[derive(Debug, Clone)]
pub struct CalledMethod(pub String);

impl crate::guard::Guard for Security {
    /// Authenticates and authorises the call; the caller and the method go into the request's
    /// extensions for the handlers and the audit trail.
    fn check<B>(&self, request: &mut http::Request<B>) -> Result<(), Status> {
        let method = request.uri().path().trim_start_matches('/').to_string();
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match Security::check(self, &method, authorization) {
            Ok(principal) => {
                if let Some(p) = principal {
                    tracing::Span::current().record("enduser.id", p.subject.as_str());
                    request.extensions_mut().insert(p);
                }
                request.extensions_mut().insert(CalledMethod(method));
                Ok(())
            }
            Err(error) => {
                tracing::info!(method, reason = %error, "call refused");
                Err(error.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(seed: &str) -> AuthSettings {
        let mut s = crate::Settings::load(None).unwrap().auth;
        s.signing_key = seed.to_string();
        s
    }

    fn claims(sub: &str, roles: &[&str], exp_in: i64) -> Claims {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Claims {
            sub: sub.into(),
            name: sub.into(),
            kind: PrincipalKind::User,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            region: String::new(),
            partner: String::new(),
            sid: format!("s-{sub}"),
            iss: "crm".into(),
            iat: now,
            exp: now + exp_in,
        }
    }

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

    #[test]
    fn policy_is_default_deny() {
        let policy = Policy::new(&settings("")).unwrap();
        let p = |roles: &[&str]| Principal {
            subject: "u".into(),
            name: "u".into(),
            kind: PrincipalKind::User,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            region: String::new(),
            partner_id: String::new(),
            session_id: String::new(),
        };
        let delete = "crm.customers.v1.CustomerService/DeleteCustomer";
        assert!(policy.allows(&p(&["admin"]), delete));
        assert!(policy.allows(&p(&["sales_manager"]), delete));
        assert!(!policy.allows(&p(&["sales_rep"]), delete));
        assert!(!policy.allows(&p(&[]), "crm.customers.v1.CustomerService/GetCustomer"));
        assert!(!policy.allows(
            &p(&["partner"]),
            "crm.customers.v1.CustomerService/GetCustomer"
        ));
        assert_eq!(policy.access("grpc.health.v1.Health/Check"), Access::Public);
        assert_eq!(
            policy.access("crm.gateway.v1.AuthService/WhoAmI"),
            Access::Authenticated
        );
        assert!(!policy.allows(&p(&["sales_rep"]), "crm.unknown.v1.X/Y"));
    }
}
