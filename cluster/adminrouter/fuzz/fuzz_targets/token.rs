//! Tokens from untrusted bytes: `extract_token` on arbitrary `Authorization` and `Cookie`
//! header values, `verify_token` on arbitrary token strings, and `verify_token` on arbitrary
//! claims signed with the right key (so that the claim checks after the signature — `uid`,
//! `exp`, `nbf`, `iat`, `gen`, the uid lookup — see hostile values too). Every call must answer
//! (Ok or an error), never panic; a signed token is accepted only for an existing uid.
#![no_main]

use std::sync::{Arc, OnceLock};

use dcos_adminrouter::auth::{
    extract_token, validate_uid, Auth, AuthConfig, Credential, PasswordCost, Superuser, TokenKey,
};
use dcos_adminrouter::store::MemoryAuthStore;
use http::{header, HeaderMap, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"adminrouter-fuzz-secret-0123456789abcdef";

fn auth() -> &'static Auth {
    static AUTH: OnceLock<Auth> = OnceLock::new();
    AUTH.get_or_init(|| {
        let mut cfg = AuthConfig::enabled(Arc::new(MemoryAuthStore::new()));
        cfg.password_cost = PasswordCost::Fast;
        cfg.token_key = Some(TokenKey::Hs256 {
            secret: SECRET.to_vec(),
        });
        cfg.superuser = Some(Superuser {
            uid: "admin".into(),
            credential: Credential::Plain("fuzz-password".into()),
        });
        match Auth::new(cfg) {
            Ok(a) => a,
            Err(e) => panic!("fuzz setup: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let a = auth();
    if let Ok(v) = HeaderValue::from_bytes(data) {
        for name in [header::AUTHORIZATION, header::COOKIE] {
            let mut h = HeaderMap::new();
            h.insert(name, v.clone());
            if let Ok((token, _)) = extract_token(&h) {
                let _ = a.verify_token(&token);
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = a.verify_token(text);
        let _ = validate_uid(text);
    }
    if let Ok(claims) = serde_json::from_slice::<serde_json::Value>(data) {
        let key = EncodingKey::from_secret(SECRET);
        if let Ok(t) = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key) {
            if let Ok(c) = a.verify_token(&t) {
                // Only the superuser exists: nothing else may get through.
                assert_eq!(c.uid, "admin", "accepted a token for {:?}", c.uid);
            }
        }
    }
});
