//! Authentication: JWT verification, login (uid/password and service-account login tokens),
//! password hashing, users and service accounts in an [`AuthStore`].
//!
//! Behaviour follows DC/OS open (`lib/auth/open.lua` + bouncer): any valid token whose `uid` claim
//! is present is accepted (authentication only, no authorisation); `exp` is enforced when present;
//! tokens are accepted from `Authorization: token=<jwt>`, `Authorization: Bearer <jwt>` or, only
//! when there is no `Authorization` header, the `dcos-acs-auth-cookie` cookie.
//!
//! On top of that (see docs/security.md, "Tokens, logins and sessions"):
//! * `nbf` is enforced when present, and a token whose `iat` lies more than
//!   [`IAT_LEEWAY`] in the future is refused;
//! * the `uid` must name an existing user or service account *now* (a deleted user's tokens
//!   stop working);
//! * every uid has a token generation in the store (`token-generations/<uid>`); tokens carry the
//!   generation they were issued under (claim `gen`, absent = 0) and are refused once the
//!   generation has moved on. Logout, a password change, a service-account key change and a
//!   deletion move it on ([`Auth::revoke_tokens`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::store::{AuthStore, StoreError};

/// The cookie the DC/OS UI authenticates with.
pub const AUTH_COOKIE: &str = "dcos-acs-auth-cookie";
/// The informational cookie the DC/OS UI reads; stripped before proxying.
pub const INFO_COOKIE: &str = "dcos-acs-info-cookie";
/// Token lifetime used by DC/OS (bouncer): 5 days.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(5 * 24 * 3600);

const SECRET_KEY: &str = "keys/token-secret";

/// How far in the future a token's `iat` may be (clock skew between masters).
pub const IAT_LEEWAY: Duration = Duration::from_secs(60);
/// Default of [`AuthConfig::uid_cache_ttl`].
pub const DEFAULT_UID_CACHE_TTL: Duration = Duration::from_secs(2);
/// At most this many uids are cached by token verification (the cache is emptied when full).
const UID_CACHE_MAX: usize = 10_000;
/// Longest uid (users and service accounts), as the installer's `superuser_username` rule.
pub const MAX_UID_LEN: usize = 96;

/// A uid that cannot name a user or service account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid uid {shown}: {reason}")]
pub struct InvalidUid {
    /// The uid as received, quoted, escaped and cut to 40 characters.
    pub shown: String,
    pub reason: &'static str,
}

/// Checks that `uid` can name a user or service account: 1 to 96 characters of
/// `a-z A-Z 0-9 . _ @ -`, and not only dots. Everything that passes is a safe store key segment.
pub fn validate_uid(uid: &str) -> Result<(), InvalidUid> {
    let bad = |reason| {
        let cut: String = uid.chars().take(40).collect();
        let more = if uid.chars().nth(40).is_some() {
            "…"
        } else {
            ""
        };
        Err(InvalidUid {
            shown: format!("{cut:?}{more}"),
            reason,
        })
    };
    if uid.is_empty() || uid.len() > MAX_UID_LEN {
        return bad("a uid is 1 to 96 characters long");
    }
    if !uid
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
    {
        return bad("a uid may only contain the characters a-z A-Z 0-9 . _ @ -");
    }
    if uid.chars().all(|c| c == '.') {
        return bad("a uid cannot consist of dots only");
    }
    Ok(())
}

/// How tokens issued by the cluster are signed.
#[derive(Clone)]
pub enum TokenKey {
    /// HMAC-SHA256 with a shared secret (at least 32 bytes recommended).
    Hs256 { secret: Vec<u8> },
    /// RSA-SHA256 with the cluster key pair (PEM, PKCS#1 or PKCS#8).
    Rs256 {
        private_pem: String,
        public_pem: String,
    },
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenKey::Hs256 { .. } => f.write_str("TokenKey::Hs256(<secret>)"),
            TokenKey::Rs256 { .. } => f.write_str("TokenKey::Rs256(<key pair>)"),
        }
    }
}

/// Cost of new password hashes (verification always uses the parameters stored in the hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PasswordCost {
    /// Argon2id with the OWASP/RustCrypto defaults (19 MiB, 2 passes).
    #[default]
    Default,
    /// Argon2id with minimal memory and one pass: for tests only.
    Fast,
}

/// A password as given in the cluster config: plain text (hashed on start) or an argon2 PHC hash.
#[derive(Clone)]
pub enum Credential {
    Plain(String),
    /// A PHC string such as `$argon2id$v=19$m=19456,t=2,p=1$…` (see [`hash_password`]).
    Hash(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Plain(_) => f.write_str("Credential::Plain(<redacted>)"),
            Credential::Hash(h) => write!(f, "Credential::Hash({h})"),
        }
    }
}

/// The superuser created from the cluster config (`superuser_username`/`superuser_password_hash`).
#[derive(Debug, Clone)]
pub struct Superuser {
    pub uid: String,
    pub credential: Credential,
}

/// A service account: logs in with an RS256 JWT `{uid, exp}` signed by its private key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceAccount {
    pub uid: String,
    /// RSA public key, PEM.
    pub public_key: String,
    #[serde(default)]
    pub description: String,
}

/// A local user (uid/password).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub uid: String,
    pub password_hash: String,
    #[serde(default)]
    pub description: String,
}

/// Auth settings of the Admin Router.
#[derive(Clone)]
pub struct AuthConfig {
    /// `oauth_enabled` in the cluster config. When false every route is open.
    pub enabled: bool,
    /// Where users, service accounts and the generated token secret are kept.
    pub store: Arc<dyn AuthStore>,
    /// Created or updated on start.
    pub superuser: Option<Superuser>,
    /// Added or updated on start.
    pub service_accounts: Vec<ServiceAccount>,
    /// `None`: an HS256 secret is generated once and kept in the store.
    pub token_key: Option<TokenKey>,
    pub token_ttl: Duration,
    pub password_cost: PasswordCost,
    /// Value of `WWW-Authenticate` on a 401 from a protected route (`oauthjwt` in DC/OS open).
    pub www_authenticate: String,
    /// How long token verification trusts its cached view of a uid (exists? token generation?)
    /// before reading the store again. Changes made through this [`Auth`] take effect at once;
    /// changes made on another master are seen within this delay.
    pub uid_cache_ttl: Duration,
    /// Limits on failed logins.
    pub login_throttle: crate::throttle::LoginThrottle,
}

impl AuthConfig {
    /// Auth on, with the given store and defaults for everything else.
    pub fn enabled(store: Arc<dyn AuthStore>) -> Self {
        Self {
            enabled: true,
            store,
            superuser: None,
            service_accounts: Vec::new(),
            token_key: None,
            token_ttl: DEFAULT_TOKEN_TTL,
            password_cost: PasswordCost::Default,
            www_authenticate: "oauthjwt".to_string(),
            uid_cache_ttl: DEFAULT_UID_CACHE_TTL,
            login_throttle: crate::throttle::LoginThrottle::default(),
        }
    }

    /// Auth off (local sandbox): every route open; login still works if users exist.
    pub fn disabled() -> Self {
        let mut c = Self::enabled(Arc::new(crate::store::MemoryAuthStore::new()));
        c.enabled = false;
        c
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("enabled", &self.enabled)
            .field("superuser", &self.superuser)
            .field("service_accounts", &self.service_accounts.len())
            .field("token_key", &self.token_key)
            .field("token_ttl", &self.token_ttl)
            .finish()
    }
}

/// Errors setting up auth.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid key: {0}")]
    Key(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("stored record {key} is invalid: {message}")]
    Record { key: String, message: String },
    #[error(transparent)]
    InvalidUid(#[from] InvalidUid),
}

/// Why a request's token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no authentication token (send 'Authorization: token=<jwt>')")]
    Missing,
    #[error("unsupported Authorization scheme (use 'token=<jwt>' or 'Bearer <jwt>')")]
    BadScheme,
    #[error("the authentication token has expired")]
    Expired,
    #[error("the authentication token is not valid yet (nbf or iat in the future)")]
    NotYetValid,
    #[error("the authentication token has been revoked (logout or password change): log in again")]
    Revoked,
    #[error("the authentication token's uid is not a user or service account of this cluster")]
    UnknownUid,
    #[error("the authentication token is invalid: {0}")]
    Invalid(String),
    /// The auth store could not be read: the token can be neither accepted nor refused (503).
    #[error("cannot check the authentication token: {0}")]
    Unavailable(String),
}

/// Why a login failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Internal(String),
}

/// Claims of a cluster token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub uid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issued at (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// The uid's token generation when the token was issued (absent: 0).
    #[serde(default, rename = "gen", skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
}

/// Body of `POST /acs/api/v1/auth/login`.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct LoginRequest {
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Service-account login token (RS256 JWT `{uid, exp}`).
    #[serde(default)]
    pub token: Option<String>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn argon2_for(cost: PasswordCost) -> Result<Argon2<'static>, AuthError> {
    let params = match cost {
        PasswordCost::Default => Params::default(),
        PasswordCost::Fast => {
            Params::new(64, 1, 1, None).map_err(|e| AuthError::Hash(e.to_string()))?
        }
    };
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into an argon2id PHC string with a random salt.
pub fn hash_password(password: &str, cost: PasswordCost) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2_for(cost)?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Checks a password against a PHC hash. A malformed hash never verifies.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Extracts the token from `Authorization` (or, only when that header is absent, the cookie).
/// Returns whether it came from the cookie.
pub fn extract_token(headers: &axum::http::HeaderMap) -> Result<(String, bool), TokenError> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().map_err(|_| TokenError::BadScheme)?.trim();
        let lower = v.to_ascii_lowercase();
        let t = if lower.starts_with("token=") {
            &v[6..]
        } else if lower.starts_with("bearer ") {
            &v[7..]
        } else {
            return Err(TokenError::BadScheme);
        };
        let t = t.trim();
        if t.is_empty() {
            return Err(TokenError::Missing);
        }
        return Ok((t.to_string(), false));
    }
    for v in headers.get_all(axum::http::header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split(';') {
            if let Some((k, val)) = part.trim().split_once('=') {
                if k.trim() == AUTH_COOKIE && !val.trim().is_empty() {
                    return Ok((val.trim().to_string(), true));
                }
            }
        }
    }
    Err(TokenError::Missing)
}

/// Ready-to-use auth state built from an [`AuthConfig`].
pub struct Auth {
    enabled: bool,
    store: Arc<dyn AuthStore>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    algorithm: jsonwebtoken::Algorithm,
    ttl: Duration,
    cost: PasswordCost,
    www_authenticate: String,
    dummy: std::sync::OnceLock<String>,
    uid_cache_ttl: Duration,
    /// What token verification knows of each uid (see [`Auth::verify_token`]).
    uids: Mutex<HashMap<String, UidState>>,
    /// Bumped (under the `uids` lock) by every local change to a uid, so that a store read
    /// that raced with the change is not cached.
    uid_epoch: AtomicU64,
    throttle: crate::throttle::Throttle,
}

/// A uid as token verification sees it.
#[derive(Debug, Clone, Copy)]
struct UidState {
    exists: bool,
    generation: u64,
    fetched: Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn generation_key(uid: &str) -> String {
    format!("token-generations/{uid}")
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("enabled", &self.enabled)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

impl Auth {
    /// Loads or creates the signing key, and writes the configured superuser and service
    /// accounts into the store.
    pub fn new(cfg: AuthConfig) -> Result<Self, AuthError> {
        let key = match cfg.token_key {
            Some(k) => k,
            None => match cfg.store.get(SECRET_KEY)? {
                Some(secret) if secret.len() >= 32 => TokenKey::Hs256 { secret },
                _ => {
                    let mut secret = vec![0u8; 48];
                    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
                    cfg.store.put(SECRET_KEY, &secret)?;
                    TokenKey::Hs256 { secret }
                }
            },
        };
        let (encoding, decoding, algorithm) = match &key {
            TokenKey::Hs256 { secret } => (
                EncodingKey::from_secret(secret),
                DecodingKey::from_secret(secret),
                jsonwebtoken::Algorithm::HS256,
            ),
            TokenKey::Rs256 {
                private_pem,
                public_pem,
            } => (
                EncodingKey::from_rsa_pem(private_pem.as_bytes())
                    .map_err(|e| AuthError::Key(format!("cluster private key: {e}")))?,
                DecodingKey::from_rsa_pem(public_pem.as_bytes())
                    .map_err(|e| AuthError::Key(format!("cluster public key: {e}")))?,
                jsonwebtoken::Algorithm::RS256,
            ),
        };
        // Only the algorithm of our own key: no HS/RS confusion, no `none`.
        let mut validation = Validation::new(algorithm);
        validation.required_spec_claims.clear();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = 0;
        let auth = Self {
            enabled: cfg.enabled,
            store: cfg.store,
            encoding,
            decoding,
            validation,
            algorithm,
            ttl: cfg.token_ttl,
            cost: cfg.password_cost,
            www_authenticate: cfg.www_authenticate,
            dummy: std::sync::OnceLock::new(),
            uid_cache_ttl: cfg.uid_cache_ttl,
            uids: Mutex::new(HashMap::new()),
            uid_epoch: AtomicU64::new(0),
            throttle: crate::throttle::Throttle::new(cfg.login_throttle),
        };
        if let Some(su) = cfg.superuser {
            auth.ensure_superuser(&su)?;
        }
        for sa in cfg.service_accounts {
            auth.put_service_account(&sa)?;
        }
        Ok(auth)
    }

    fn dummy_hash(&self) -> &str {
        self.dummy
            .get_or_init(|| hash_password("dummy password", self.cost).unwrap_or_default())
    }

    /// Whether protected routes require a token.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The `WWW-Authenticate` challenge for 401s.
    pub fn challenge(&self) -> &str {
        &self.www_authenticate
    }

    /// The cost new password hashes are made with.
    pub fn password_cost(&self) -> PasswordCost {
        self.cost
    }

    /// The failed-login counters.
    pub(crate) fn throttle(&self) -> &crate::throttle::Throttle {
        &self.throttle
    }

    /// The current token generation of `uid` (0 when never revoked), read from the store.
    fn read_generation(&self, uid: &str) -> Result<u64, AuthError> {
        let key = generation_key(uid);
        match self.store.get(&key)? {
            None => Ok(0),
            Some(b) => std::str::from_utf8(&b)
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .ok_or(AuthError::Record {
                    key,
                    message: "not a decimal token generation".into(),
                }),
        }
    }

    /// Revokes every token issued so far to `uid` (on every master: the generation lives in
    /// the store; on this one at once, on the others within [`AuthConfig::uid_cache_ttl`]).
    /// Returns the new generation.
    pub fn revoke_tokens(&self, uid: &str) -> Result<u64, AuthError> {
        validate_uid(uid)?;
        let next = self.read_generation(uid)?.saturating_add(1);
        self.store
            .put(&generation_key(uid), next.to_string().as_bytes())?;
        self.forget_uid(uid);
        tracing::info!(uid, generation = next, "revoked the tokens of uid");
        Ok(next)
    }

    /// Drops what verification cached about `uid` (after a local change to it).
    fn forget_uid(&self, uid: &str) {
        let mut m = lock(&self.uids);
        m.remove(uid);
        self.uid_epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether `uid` exists and its token generation: from the cache while it is fresh, else
    /// from the store.
    fn uid_state(&self, uid: &str) -> Result<UidState, AuthError> {
        let now = Instant::now();
        if let Some(s) = lock(&self.uids).get(uid) {
            if now.saturating_duration_since(s.fetched) < self.uid_cache_ttl {
                return Ok(*s);
            }
        }
        let epoch = self.uid_epoch.load(Ordering::SeqCst);
        let exists = self.store.get(&format!("users/{uid}"))?.is_some()
            || self
                .store
                .get(&format!("service-accounts/{uid}"))?
                .is_some();
        let state = UidState {
            exists,
            generation: self.read_generation(uid)?,
            fetched: now,
        };
        let mut m = lock(&self.uids);
        if self.uid_epoch.load(Ordering::SeqCst) != epoch {
            // A local change to some uid happened while we read: what we read may predate it.
            // Do not cache; a change to this uid left its fresh state to the next read.
            drop(m);
            return self.uid_state_uncached(uid);
        }
        if m.len() >= UID_CACHE_MAX && !m.contains_key(uid) {
            m.clear();
        }
        m.insert(uid.to_string(), state);
        Ok(state)
    }

    fn uid_state_uncached(&self, uid: &str) -> Result<UidState, AuthError> {
        Ok(UidState {
            exists: self.store.get(&format!("users/{uid}"))?.is_some()
                || self
                    .store
                    .get(&format!("service-accounts/{uid}"))?
                    .is_some(),
            generation: self.read_generation(uid)?,
            fetched: Instant::now(),
        })
    }

    fn ensure_superuser(&self, su: &Superuser) -> Result<(), AuthError> {
        let existing = self.get_user(&su.uid)?;
        match &su.credential {
            Credential::Hash(h) => {
                if existing.as_ref().map(|u| &u.password_hash) != Some(h) {
                    self.put_user(&User {
                        uid: su.uid.clone(),
                        password_hash: h.clone(),
                        description: "superuser".into(),
                    })?;
                }
            }
            Credential::Plain(p) => {
                let ok = existing
                    .as_ref()
                    .is_some_and(|u| verify_password(p, &u.password_hash));
                if !ok {
                    self.add_user(&su.uid, p, "superuser")?;
                }
            }
        }
        Ok(())
    }

    /// Creates or replaces a local user.
    pub fn add_user(&self, uid: &str, password: &str, description: &str) -> Result<(), AuthError> {
        let password_hash = hash_password(password, self.cost)?;
        self.put_user(&User {
            uid: uid.to_string(),
            password_hash,
            description: description.to_string(),
        })
    }

    /// Creates or replaces a local user. A new password revokes the user's tokens (before the
    /// new hash is written: if the write fails, the tokens are gone but the password is not
    /// changed, never the other way round).
    pub fn put_user(&self, u: &User) -> Result<(), AuthError> {
        validate_uid(&u.uid)?;
        let bytes = serde_json::to_vec(u).map_err(|e| AuthError::Hash(e.to_string()))?;
        let old = self.get_user(&u.uid)?;
        if old.is_some_and(|o| o.password_hash != u.password_hash) {
            self.revoke_tokens(&u.uid)?;
        }
        self.store.put(&format!("users/{}", u.uid), &bytes)?;
        self.forget_uid(&u.uid);
        Ok(())
    }

    /// A local user, if it exists.
    pub fn get_user(&self, uid: &str) -> Result<Option<User>, AuthError> {
        validate_uid(uid)?;
        let key = format!("users/{uid}");
        match self.store.get(&key)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| AuthError::Record {
                    key,
                    message: e.to_string(),
                }),
        }
    }

    /// Removes a local user and revokes its tokens (a user created later under the same uid
    /// does not inherit them); true if it existed.
    pub fn delete_user(&self, uid: &str) -> Result<bool, AuthError> {
        if self.get_user(uid)?.is_none() {
            return Ok(false);
        }
        self.revoke_tokens(uid)?;
        let existed = self.store.delete(&format!("users/{uid}"))?;
        self.forget_uid(uid);
        Ok(existed)
    }

    /// uids of all local users.
    pub fn list_users(&self) -> Result<Vec<String>, AuthError> {
        Ok(self
            .store
            .list("users/")?
            .into_iter()
            .map(|k| k.trim_start_matches("users/").to_string())
            .collect())
    }

    /// Creates or replaces a service account (its public key is checked first).
    /// A new public key revokes the account's tokens.
    pub fn put_service_account(&self, sa: &ServiceAccount) -> Result<(), AuthError> {
        validate_uid(&sa.uid)?;
        DecodingKey::from_rsa_pem(sa.public_key.as_bytes())
            .map_err(|e| AuthError::Key(format!("service account {}: {e}", sa.uid)))?;
        let bytes = serde_json::to_vec(sa).map_err(|e| AuthError::Hash(e.to_string()))?;
        let old = self.get_service_account(&sa.uid)?;
        if old.is_some_and(|o| o.public_key != sa.public_key) {
            self.revoke_tokens(&sa.uid)?;
        }
        self.store
            .put(&format!("service-accounts/{}", sa.uid), &bytes)?;
        self.forget_uid(&sa.uid);
        Ok(())
    }

    /// A service account, if it exists.
    pub fn get_service_account(&self, uid: &str) -> Result<Option<ServiceAccount>, AuthError> {
        validate_uid(uid)?;
        let key = format!("service-accounts/{uid}");
        match self.store.get(&key)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| AuthError::Record {
                    key,
                    message: e.to_string(),
                }),
        }
    }

    /// Issues a token for `uid` valid for the configured lifetime, under the uid's current
    /// token generation (read from the store, not the cache).
    pub fn issue_token(&self, uid: &str) -> Result<String, AuthError> {
        validate_uid(uid)?;
        let now = now_secs();
        let generation = self.read_generation(uid)?;
        let claims = Claims {
            uid: uid.to_string(),
            exp: Some(now.saturating_add(self.ttl.as_secs())),
            iat: Some(now),
            nbf: None,
            generation: (generation > 0).then_some(generation),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding)
            .map_err(|e| AuthError::Key(e.to_string()))
    }

    /// Verifies a cluster token: signature by our key, `uid` present, `exp` (if any) in the
    /// future, `nbf` (if any) in the past, `iat` (if any) not beyond [`IAT_LEEWAY`] in the
    /// future, the uid an existing user or service account, and the token's generation current.
    /// Runs on every proxied request: one signature check and a cache lookup (the store is read
    /// when the uid's cached state is older than [`AuthConfig::uid_cache_ttl`]).
    pub fn verify_token(&self, token: &str) -> Result<Claims, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => {
                let claims = data.claims;
                if claims.uid.is_empty() {
                    return Err(TokenError::Invalid("empty uid claim".into()));
                }
                if claims
                    .iat
                    .is_some_and(|iat| iat > now_secs().saturating_add(IAT_LEEWAY.as_secs()))
                {
                    return Err(TokenError::NotYetValid);
                }
                if validate_uid(&claims.uid).is_err() {
                    return Err(TokenError::UnknownUid);
                }
                let state = self
                    .uid_state(&claims.uid)
                    .map_err(|e| TokenError::Unavailable(e.to_string()))?;
                if !state.exists {
                    return Err(TokenError::UnknownUid);
                }
                if claims.generation.unwrap_or(0) < state.generation {
                    return Err(TokenError::Revoked);
                }
                Ok(claims)
            }
            Err(e) => match e.kind() {
                ErrorKind::ExpiredSignature => Err(TokenError::Expired),
                ErrorKind::ImmatureSignature => Err(TokenError::NotYetValid),
                ErrorKind::InvalidSignature => Err(TokenError::Invalid("bad signature".into())),
                ErrorKind::InvalidAlgorithm => {
                    Err(TokenError::Invalid("unexpected signing algorithm".into()))
                }
                _ => Err(TokenError::Invalid(e.to_string())),
            },
        }
    }

    /// Handles a login request; returns a new cluster token. CPU-heavy (password hashing):
    /// call it from a blocking context.
    pub fn login(&self, req: &LoginRequest) -> Result<String, LoginError> {
        let uid = req
            .uid
            .as_deref()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| LoginError::BadRequest("'uid' is required".into()))?;
        if (req.password.is_some() || req.token.is_some()) && validate_uid(uid).is_err() {
            // No such user can exist, and the uid must never reach the store as a key.
            return Err(LoginError::Unauthorized(
                "Invalid credentials: unknown uid or wrong password".into(),
            ));
        }
        let internal = |e: AuthError| LoginError::Internal(e.to_string());
        match (&req.password, &req.token) {
            (Some(password), _) => {
                let user = self.get_user(uid).map_err(internal)?;
                let ok = match &user {
                    Some(u) => verify_password(password, &u.password_hash),
                    None => {
                        // Same work for an unknown uid as for a wrong password, so response
                        // times do not reveal which uids exist.
                        let _ = verify_password(password, self.dummy_hash());
                        false
                    }
                };
                if !ok {
                    return Err(LoginError::Unauthorized(
                        "Invalid credentials: unknown uid or wrong password".into(),
                    ));
                }
            }
            (None, Some(login_token)) => {
                let sa = self
                    .get_service_account(uid)
                    .map_err(internal)?
                    .ok_or_else(|| {
                        LoginError::Unauthorized(format!("Unknown service account '{uid}'"))
                    })?;
                let key = DecodingKey::from_rsa_pem(sa.public_key.as_bytes())
                    .map_err(|e| LoginError::Internal(format!("service account key: {e}")))?;
                let mut v = Validation::new(jsonwebtoken::Algorithm::RS256);
                v.set_required_spec_claims(&["exp"]);
                v.leeway = 0;
                let data = jsonwebtoken::decode::<Claims>(login_token, &key, &v).map_err(|e| {
                    LoginError::Unauthorized(format!("Invalid service login token: {e}"))
                })?;
                if data.claims.uid != uid {
                    return Err(LoginError::Unauthorized(
                        "Invalid service login token: uid claim does not match".into(),
                    ));
                }
            }
            (None, None) => {
                return Err(LoginError::BadRequest(
                    "either 'password' or 'token' is required".into(),
                ))
            }
        }
        self.issue_token(uid).map_err(internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryAuthStore;

    fn auth() -> Auth {
        let mut cfg = AuthConfig::enabled(Arc::new(MemoryAuthStore::new()));
        cfg.password_cost = PasswordCost::Fast;
        cfg.superuser = Some(Superuser {
            uid: "admin".into(),
            credential: Credential::Plain("secret".into()),
        });
        Auth::new(cfg).unwrap()
    }

    #[test]
    fn password_hash_roundtrip() {
        let h = hash_password("pw", PasswordCost::Fast).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("pw", &h));
        assert!(!verify_password("pW", &h));
        assert!(!verify_password("pw", "not-a-hash"));
    }

    #[test]
    fn login_and_verify() {
        let a = auth();
        let t = a
            .login(&LoginRequest {
                uid: Some("admin".into()),
                password: Some("secret".into()),
                token: None,
            })
            .unwrap();
        assert_eq!(a.verify_token(&t).unwrap().uid, "admin");
        let bad = a.login(&LoginRequest {
            uid: Some("admin".into()),
            password: Some("nope".into()),
            token: None,
        });
        assert!(matches!(bad, Err(LoginError::Unauthorized(_))));
        let missing = a.login(&LoginRequest::default());
        assert!(matches!(missing, Err(LoginError::BadRequest(_))));
    }

    #[test]
    fn secret_is_persisted_in_store() {
        let store: Arc<dyn AuthStore> = Arc::new(MemoryAuthStore::new());
        let a1 = Auth::new(AuthConfig::enabled(store.clone())).unwrap();
        a1.put_user(&User {
            uid: "u".into(),
            password_hash: hash_password("pw", PasswordCost::Fast).unwrap(),
            description: String::new(),
        })
        .unwrap();
        let t = a1.issue_token("u").unwrap();
        let a2 = Auth::new(AuthConfig::enabled(store)).unwrap();
        assert!(a2.verify_token(&t).is_ok());
    }

    #[test]
    fn extract_token_carriers() {
        use axum::http::{HeaderMap, HeaderValue};
        let mut h = HeaderMap::new();
        assert_eq!(extract_token(&h), Err(TokenError::Missing));
        h.insert(
            "cookie",
            HeaderValue::from_static("a=b; dcos-acs-auth-cookie=abc"),
        );
        assert_eq!(extract_token(&h).unwrap(), ("abc".into(), true));
        h.insert("authorization", HeaderValue::from_static("token=xyz"));
        assert_eq!(extract_token(&h).unwrap(), ("xyz".into(), false));
        h.insert("authorization", HeaderValue::from_static("Bearer qq"));
        assert_eq!(extract_token(&h).unwrap(), ("qq".into(), false));
        h.insert("authorization", HeaderValue::from_static("Basic qq"));
        assert_eq!(extract_token(&h), Err(TokenError::BadScheme));
    }

    fn sign(a: &Auth, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(a.algorithm), &claims, &a.encoding).unwrap()
    }

    #[test]
    fn uids_that_cannot_be_store_keys_are_invalid() {
        for ok in [
            "admin",
            "ci-bot",
            "alice@example.com",
            "a.b_c-d",
            "x",
            &"u".repeat(96),
        ] {
            assert!(validate_uid(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../keys/token-secret",
            "a/b",
            "a b",
            "a\0",
            "é",
            "a\nb",
            &"u".repeat(97),
        ] {
            let e = validate_uid(bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid uid "), "{e}");
        }
        let long = validate_uid(&"x".repeat(5000)).unwrap_err().to_string();
        assert!(
            long.len() < 200,
            "the message quotes a bounded part: {long}"
        );
        // Never a store key: the API refuses before reading.
        let a = auth();
        assert!(matches!(
            a.get_user("../keys/token-secret"),
            Err(AuthError::InvalidUid(_))
        ));
        assert!(a.add_user("a/b", "pw", "").is_err());
        let bad = a.login(&LoginRequest {
            uid: Some("../keys/token-secret".into()),
            password: Some("x".into()),
            token: None,
        });
        assert!(matches!(bad, Err(LoginError::Unauthorized(_))), "{bad:?}");
    }

    #[test]
    fn nbf_iat_and_unknown_uids() {
        let a = auth();
        let now = now_secs();
        let ok = sign(
            &a,
            serde_json::json!({"uid": "admin", "iat": now, "exp": now + 60}),
        );
        assert_eq!(a.verify_token(&ok).unwrap().uid, "admin");
        let skewed = sign(&a, serde_json::json!({"uid": "admin", "iat": now + 30}));
        assert!(a.verify_token(&skewed).is_ok(), "iat within the leeway");
        let nbf_past = sign(&a, serde_json::json!({"uid": "admin", "nbf": now - 5}));
        assert!(a.verify_token(&nbf_past).is_ok());
        let nbf_future = sign(&a, serde_json::json!({"uid": "admin", "nbf": now + 120}));
        assert_eq!(a.verify_token(&nbf_future), Err(TokenError::NotYetValid));
        let iat_future = sign(&a, serde_json::json!({"uid": "admin", "iat": now + 600}));
        assert_eq!(a.verify_token(&iat_future), Err(TokenError::NotYetValid));
        let huge = sign(
            &a,
            serde_json::json!({"uid": "admin", "iat": u64::MAX, "nbf": u64::MAX}),
        );
        assert_eq!(a.verify_token(&huge), Err(TokenError::NotYetValid));
        let ghost = sign(&a, serde_json::json!({"uid": "ghost", "exp": now + 60}));
        assert_eq!(a.verify_token(&ghost), Err(TokenError::UnknownUid));
        let weird = sign(&a, serde_json::json!({"uid": "../keys/token-secret"}));
        assert_eq!(a.verify_token(&weird), Err(TokenError::UnknownUid));
        // A deleted user's token stops working at once; re-creating the uid does not revive it.
        a.add_user("alice", "pw", "").unwrap();
        let t = a.issue_token("alice").unwrap();
        assert!(a.verify_token(&t).is_ok());
        assert!(a.delete_user("alice").unwrap());
        assert_eq!(a.verify_token(&t), Err(TokenError::UnknownUid));
        a.add_user("alice", "pw", "").unwrap();
        assert_eq!(a.verify_token(&t), Err(TokenError::Revoked));
        assert!(a.verify_token(&a.issue_token("alice").unwrap()).is_ok());
    }

    #[test]
    fn password_and_key_changes_revoke() {
        let a = auth();
        let t = a.issue_token("admin").unwrap();
        // Same password again: no change, tokens kept.
        a.ensure_superuser(&Superuser {
            uid: "admin".into(),
            credential: Credential::Plain("secret".into()),
        })
        .unwrap();
        assert!(a.verify_token(&t).is_ok());
        a.add_user("admin", "new password", "").unwrap();
        assert_eq!(a.verify_token(&t), Err(TokenError::Revoked));
        let t2 = a.issue_token("admin").unwrap();
        assert!(a.verify_token(&t2).is_ok());
        assert_eq!(a.revoke_tokens("admin").unwrap(), 2);
        assert_eq!(a.verify_token(&t2), Err(TokenError::Revoked));
    }

    #[test]
    fn revocation_on_another_master_is_seen_after_the_cache_ttl() {
        let store: Arc<dyn AuthStore> = Arc::new(MemoryAuthStore::new());
        let mk = || {
            let mut c = AuthConfig::enabled(store.clone());
            c.password_cost = PasswordCost::Fast;
            c.uid_cache_ttl = Duration::ZERO;
            Auth::new(c).unwrap()
        };
        let (m1, m2) = (mk(), mk());
        m1.add_user("bob", "pw", "").unwrap();
        let t = m1.issue_token("bob").unwrap();
        assert!(m2.verify_token(&t).is_ok());
        m1.revoke_tokens("bob").unwrap();
        assert_eq!(m2.verify_token(&t), Err(TokenError::Revoked));
    }

    #[test]
    fn a_store_that_cannot_be_read_refuses_with_unavailable() {
        struct Broken(MemoryAuthStore, std::sync::atomic::AtomicBool);
        impl AuthStore for Broken {
            fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
                if self.1.load(Ordering::SeqCst) {
                    return Err(StoreError::Other("disk on fire".into()));
                }
                self.0.get(key)
            }
            fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
                self.0.put(key, value)
            }
            fn delete(&self, key: &str) -> Result<bool, StoreError> {
                self.0.delete(key)
            }
            fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
                self.0.list(prefix)
            }
        }
        let store = Arc::new(Broken(MemoryAuthStore::new(), false.into()));
        let mut c = AuthConfig::enabled(store.clone());
        c.password_cost = PasswordCost::Fast;
        c.uid_cache_ttl = Duration::ZERO;
        let a = Auth::new(c).unwrap();
        a.add_user("carol", "pw", "").unwrap();
        let t = a.issue_token("carol").unwrap();
        store.1.store(true, Ordering::SeqCst);
        assert!(matches!(
            a.verify_token(&t),
            Err(TokenError::Unavailable(m)) if m.contains("disk on fire")
        ));
    }
}
