//! Superuser password hashing: argon2id, emitted as a PHC string
//! `$argon2id$v=19$m=19456,t=2,p=1$<salt, unpadded base64>$<32-byte hash, unpadded base64>`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};

/// Errors hashing a password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The hasher failed (bad parameters or salt).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// No randomness available for a salt.
    #[error("cannot read random salt from /dev/urandom: {0}")]
    Random(#[from] std::io::Error),
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    // OWASP minimum for argon2id: m=19 MiB, t=2, p=1.
    let params =
        Params::new(19 * 1024, 2, 1, Some(32)).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_with_salt(password: &str, salt: &[u8]) -> Result<String, PasswordError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let h = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(h.to_string())
}

/// Hash with a random 16-byte salt (what `dcos-installer hash-password` prints).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    use std::io::Read;
    let mut salt = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut salt)?;
    hash_with_salt(password, &salt)
}

/// Hash with a salt derived from the cluster and user (sha256 of
/// `dcos-rs superuser salt\0<cluster_name>\0<uid>`, first 16 bytes). Used for a
/// plaintext `superuser_password` so that the same config gives the same
/// bundle id; prefer `superuser_password_hash` with a random salt.
pub fn hash_password_deterministic(
    password: &str,
    cluster_name: &str,
    uid: &str,
) -> Result<String, PasswordError> {
    let mut d = Sha256::new();
    d.update(b"dcos-rs superuser salt\0");
    d.update(cluster_name.as_bytes());
    d.update([0]);
    d.update(uid.as_bytes());
    let digest = d.finalize();
    hash_with_salt(password, &digest[..16])
}

/// Why a string is not an acceptable superuser password hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhcError {
    /// Not a PHC string at all.
    #[error("not a PHC string ({0}); expected $argon2id$v=19$m=…,t=…,p=…$<salt>$<hash> from `dcos-installer hash-password`")]
    NotPhc(String),
    /// A PHC string of another algorithm.
    #[error("algorithm '{0}' is not accepted; use argon2id")]
    Algorithm(String),
    /// Salt or hash missing.
    #[error("PHC string lacks a salt or a hash")]
    Incomplete,
}

/// Check that `phc` is a well-formed argon2id PHC string.
pub fn check_phc(phc: &str) -> Result<(), PhcError> {
    let parsed = PasswordHash::new(phc).map_err(|e| PhcError::NotPhc(e.to_string()))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(PhcError::Algorithm(parsed.algorithm.to_string()));
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err(PhcError::Incomplete);
    }
    Ok(())
}

/// Verify `password` against an argon2id PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}
