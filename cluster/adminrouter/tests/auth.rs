//! Authentication through the Admin Router: login, the three token carriers, the whitelist,
//! and forged / expired / wrongly signed tokens.

mod common;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use dcos_adminrouter::auth::{
    AuthConfig, Credential, PasswordCost, ServiceAccount, Superuser, TokenKey,
};
use dcos_adminrouter::store::{AuthStore, FileAuthStore, MemoryAuthStore};
use dcos_adminrouter::AdminRouterConfig;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn auth_config(store: Arc<dyn AuthStore>, key: Option<TokenKey>) -> AuthConfig {
    let mut a = AuthConfig::enabled(store);
    a.password_cost = PasswordCost::Fast;
    a.token_key = key;
    a.superuser = Some(Superuser {
        uid: "admin".into(),
        credential: Credential::Plain("s3cret".into()),
    });
    a.service_accounts = vec![ServiceAccount {
        uid: "ci-bot".into(),
        public_key: fixture("sa-public.pem"),
        description: "CI".into(),
    }];
    a
}

async fn setup(key: Option<TokenKey>) -> (String, Echo) {
    let (marathon_url, marathon) = start_echo("marathon").await;
    let mut cfg = AdminRouterConfig::new("11111111-2222-4333-8444-555555555555");
    cfg.marathon = Some(marathon_url.clone());
    cfg.cosmos = Some(marathon_url);
    cfg.auth = auth_config(Arc::new(MemoryAuthStore::new()), key);
    let (ar, _) = start_router(cfg).await;
    (ar, marathon)
}

async fn login(ar: &str, body: Value) -> (u16, Value) {
    let r = http()
        .post(format!("{ar}/acs/api/v1/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn get_with(ar: &str, path: &str, header: Option<(&str, String)>) -> reqwest::Response {
    let mut rb = http().get(format!("{ar}{path}"));
    if let Some((k, v)) = header {
        rb = rb.header(k, v);
    }
    rb.send().await.unwrap()
}

fn assert_401(r: &reqwest::Response) {
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "oauthjwt");
}

#[tokio::test]
async fn protected_routes_need_a_token_and_whitelist_is_open() {
    let (ar, _) = setup(None).await;
    for path in [
        "/service/marathon/v2/apps",
        "/package/search",
        "/capabilities",
        "/metadata",
        "/pkgpanda/active.buildinfo.full.json",
        "/system/health/v1",
        "/mesos/master/state",
        "/agent/a1/files/read",
        "/service/someapp/",
        "/acs/api/v1/users",
    ] {
        let r = get_with(&ar, path, None).await;
        assert_401(&r);
        let body = r.text().await.unwrap();
        assert!(body.contains("401"), "{path}: {body}");
    }
    let r = http()
        .head(format!("{ar}/pkgpanda/active.buildinfo.full.json"))
        .send()
        .await
        .unwrap();
    assert_401(&r);
    // The unauthenticated whitelist.
    for path in [
        "/dcos-metadata/dcos-version.json",
        "/acs/api/v1/auth/providers",
    ] {
        assert_eq!(get_with(&ar, path, None).await.status(), 200, "{path}");
    }
    let (s, v) = login(&ar, json!({"uid": "admin", "password": "wrong"})).await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["code"], "ERR_INVALID_CREDENTIALS");
}

#[tokio::test]
async fn login_and_each_token_carrier() {
    let (ar, marathon) = setup(None).await;
    let (s, v) = login(&ar, json!({"uid": "admin", "password": "s3cret"})).await;
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_string();

    let r = get_with(
        &ar,
        "/service/marathon/v2/apps",
        Some(("authorization", format!("token={token}"))),
    )
    .await;
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["authorization"], format!("token={token}"));

    let r = get_with(
        &ar,
        "/service/marathon/v2/apps",
        Some(("authorization", format!("Bearer {token}"))),
    )
    .await;
    assert_eq!(r.status(), 200);

    let r = get_with(
        &ar,
        "/service/marathon/v2/apps",
        Some((
            "cookie",
            format!("other=1; dcos-acs-auth-cookie={token}; dcos-acs-info-cookie=x"),
        )),
    )
    .await;
    assert_eq!(r.status(), 200);
    // The cookie becomes an Authorization header upstream; DC/OS cookies are stripped.
    let seen = marathon.log.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.authorization, Some(format!("token={token}")));
    assert_eq!(seen.cookie.as_deref(), Some("other=1"));

    // An Authorization header wins over the cookie, even if it is bad.
    let r = get_with(
        &ar,
        "/metadata",
        Some(("authorization", "token=garbage".into())),
    )
    .await;
    assert_401(&r);
    let r = http()
        .get(format!("{ar}/metadata"))
        .header("authorization", "Basic YWRtaW46czNjcmV0")
        .header("cookie", format!("dcos-acs-auth-cookie={token}"))
        .send()
        .await
        .unwrap();
    assert_401(&r);

    let (s, v) = get_json_auth(&ar, "/metadata", &token).await;
    assert_eq!(s, 200);
    assert_eq!(v["CLUSTER_ID"], "11111111-2222-4333-8444-555555555555");
}

async fn get_json_auth(ar: &str, path: &str, token: &str) -> (u16, Value) {
    let r = get_with(ar, path, Some(("authorization", format!("token={token}")))).await;
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn forged_expired_and_wrongly_signed_tokens_are_refused() {
    let cluster_key = TokenKey::Rs256 {
        private_pem: fixture("cluster-private.pem"),
        public_pem: fixture("cluster-public.pem"),
    };
    let (ar, _) = setup(Some(cluster_key)).await;
    let cluster = EncodingKey::from_rsa_pem(fixture("cluster-private.pem").as_bytes()).unwrap();
    let other = EncodingKey::from_rsa_pem(fixture("other-private.pem").as_bytes()).unwrap();
    let rs = Header::new(Algorithm::RS256);

    // Sanity: a token we sign with the cluster key is accepted.
    let good = encode(&rs, &json!({"uid": "admin", "exp": now() + 600}), &cluster).unwrap();
    assert_eq!(get_json_auth(&ar, "/metadata", &good).await.0, 200);
    // No exp at all is accepted (DC/OS: exp optional, enforced when present).
    let no_exp = encode(&rs, &json!({"uid": "admin"}), &cluster).unwrap();
    assert_eq!(get_json_auth(&ar, "/metadata", &no_exp).await.0, 200);

    let expired = encode(&rs, &json!({"uid": "admin", "exp": now() - 10}), &cluster).unwrap();
    let wrong_key = encode(&rs, &json!({"uid": "admin", "exp": now() + 600}), &other).unwrap();
    let no_uid = encode(&rs, &json!({"sub": "admin", "exp": now() + 600}), &cluster).unwrap();
    // HS256 "signed" with the public key: the classic algorithm-confusion forgery.
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &json!({"uid": "admin", "exp": now() + 600}),
        &EncodingKey::from_secret(fixture("cluster-public.pem").as_bytes()),
    )
    .unwrap();
    // alg=none with the payload of a good token.
    let mut parts = good.split('.');
    let (_, payload) = (parts.next().unwrap(), parts.next().unwrap());
    use base64::Engine;
    let none_header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{payload}.");
    // A good token with its payload swapped for another uid (signature no longer matches).
    let forged_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"uid": "root", "exp": now() + 600}).to_string());
    let mut p = good.split('.');
    let tampered = format!("{}.{}.{}", p.next().unwrap(), forged_payload, {
        p.next();
        p.next().unwrap()
    });

    for (name, t) in [
        ("expired", expired),
        ("wrong key", wrong_key),
        ("no uid", no_uid),
        ("alg confusion", confused),
        ("alg none", alg_none),
        ("tampered", tampered),
        ("garbage", "not.a.jwt".to_string()),
    ] {
        for carrier in ["token", "bearer", "cookie"] {
            let header = match carrier {
                "token" => ("authorization", format!("token={t}")),
                "bearer" => ("authorization", format!("Bearer {t}")),
                _ => ("cookie", format!("dcos-acs-auth-cookie={t}")),
            };
            let r = get_with(&ar, "/service/marathon/v2/apps", Some(header)).await;
            assert_eq!(r.status(), 401, "{name} via {carrier}");
            assert_eq!(r.headers()["www-authenticate"], "oauthjwt");
        }
    }
}

#[tokio::test]
async fn hs256_tokens_from_another_cluster_are_refused() {
    let (ar1, _) = setup(None).await;
    let (ar2, _) = setup(None).await;
    let (_, v) = login(&ar1, json!({"uid": "admin", "password": "s3cret"})).await;
    let t1 = v["token"].as_str().unwrap().to_string();
    assert_eq!(get_json_auth(&ar1, "/metadata", &t1).await.0, 200);
    assert_eq!(get_json_auth(&ar2, "/metadata", &t1).await.0, 401);
}

#[tokio::test]
async fn service_account_login() {
    let (ar, _) = setup(None).await;
    let sa = EncodingKey::from_rsa_pem(fixture("sa-private.pem").as_bytes()).unwrap();
    let other = EncodingKey::from_rsa_pem(fixture("other-private.pem").as_bytes()).unwrap();
    let rs = Header::new(Algorithm::RS256);
    let login_token = encode(&rs, &json!({"uid": "ci-bot", "exp": now() + 300}), &sa).unwrap();
    let (s, v) = login(&ar, json!({"uid": "ci-bot", "token": login_token})).await;
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().unwrap();
    assert_eq!(get_json_auth(&ar, "/metadata", token).await.0, 200);

    let bad = [
        (
            "wrong key",
            encode(&rs, &json!({"uid": "ci-bot", "exp": now() + 300}), &other).unwrap(),
            "ci-bot",
        ),
        (
            "expired",
            encode(&rs, &json!({"uid": "ci-bot", "exp": now() - 5}), &sa).unwrap(),
            "ci-bot",
        ),
        (
            "no exp",
            encode(&rs, &json!({"uid": "ci-bot"}), &sa).unwrap(),
            "ci-bot",
        ),
        (
            "uid mismatch",
            encode(&rs, &json!({"uid": "admin", "exp": now() + 300}), &sa).unwrap(),
            "ci-bot",
        ),
        (
            "unknown account",
            encode(&rs, &json!({"uid": "ghost", "exp": now() + 300}), &sa).unwrap(),
            "ghost",
        ),
    ];
    for (name, t, uid) in bad {
        let (s, v) = login(&ar, json!({"uid": uid, "token": t})).await;
        assert_eq!(s, 401, "{name}: {v}");
    }
    let (s, _) = login(&ar, json!({"uid": "ci-bot"})).await;
    assert_eq!(s, 400);
    let r = http()
        .post(format!("{ar}/acs/api/v1/auth/login"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn auth_disabled_opens_everything() {
    let (marathon_url, _) = start_echo("marathon").await;
    let mut cfg = AdminRouterConfig::new("11111111-2222-4333-8444-555555555555");
    cfg.marathon = Some(marathon_url);
    cfg.auth = AuthConfig::disabled();
    let (ar, _) = start_router(cfg).await;
    assert_eq!(
        get_with(&ar, "/service/marathon/v2/apps", None)
            .await
            .status(),
        200
    );
    let r = http()
        .head(format!("{ar}/pkgpanda/active.buildinfo.full.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn users_and_secret_survive_a_restart_with_a_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    let mk = || -> AdminRouterConfig {
        let mut cfg = AdminRouterConfig::new("11111111-2222-4333-8444-555555555555");
        let store: Arc<dyn AuthStore> = Arc::new(FileAuthStore::open(&path).unwrap());
        cfg.auth = auth_config(store, None);
        cfg
    };
    let (ar1, router1) = start_router(mk()).await;
    router1.auth().add_user("alice", "pw-alice", "").unwrap();
    let (_, v) = login(&ar1, json!({"uid": "admin", "password": "s3cret"})).await;
    let token = v["token"].as_str().unwrap().to_string();
    let (ar2, _) = start_router(mk()).await;
    // Same secret: the old token is still valid; the added user can log in.
    assert_eq!(get_json_auth(&ar2, "/metadata", &token).await.0, 200);
    let (s, _) = login(&ar2, json!({"uid": "alice", "password": "pw-alice"})).await;
    assert_eq!(s, 200);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("pw-alice") && !text.contains("s3cret"),
        "passwords are hashed"
    );
}

#[tokio::test]
async fn users_live_in_the_cluster_store() {
    use dcos_adminrouter::cluster_store::ClusterAuthStore;
    let dir = tempfile::tempdir().unwrap();
    let token = {
        let store = Arc::new(dcos_store::EmbeddedStore::open(dir.path()).unwrap());
        let mut cfg = AdminRouterConfig::new("11111111-2222-4333-8444-555555555555");
        cfg.auth = auth_config(Arc::new(ClusterAuthStore::new(store)), None);
        let (ar, router) = start_router(cfg).await;
        router.auth().add_user("bob", "pw-bob", "").unwrap();
        assert_eq!(
            router.auth().list_users().unwrap(),
            vec!["admin".to_string(), "bob".to_string()]
        );
        let (s, v) = login(&ar, json!({"uid": "bob", "password": "pw-bob"})).await;
        assert_eq!(s, 200);
        v["token"].as_str().unwrap().to_string()
    };
    let store = Arc::new(dcos_store::EmbeddedStore::open(dir.path()).unwrap());
    let mut cfg = AdminRouterConfig::new("11111111-2222-4333-8444-555555555555");
    cfg.auth = auth_config(Arc::new(ClusterAuthStore::new(store)), None);
    let (ar, router) = start_router(cfg).await;
    assert_eq!(get_json_auth(&ar, "/metadata", &token).await.0, 200);
    assert!(router.auth().delete_user("bob").unwrap());
    let (s, _) = login(&ar, json!({"uid": "bob", "password": "pw-bob"})).await;
    assert_eq!(s, 401);
}

// ---- revocation, claims, throttling, bad uids, internal credential, listener limits ----------

async fn setup_with(
    f: impl FnOnce(&mut AdminRouterConfig),
) -> (String, Echo, dcos_adminrouter::AdminRouter) {
    let (marathon_url, marathon) = start_echo("marathon").await;
    let mut cfg = AdminRouterConfig::new("11111111-2222-4333-8444-555555555555");
    cfg.marathon = Some(marathon_url);
    cfg.auth = auth_config(Arc::new(MemoryAuthStore::new()), None);
    f(&mut cfg);
    let (ar, router) = start_router(cfg).await;
    (ar, marathon, router)
}

async fn token_for(ar: &str, uid: &str, password: &str) -> String {
    let (s, v) = login(ar, json!({"uid": uid, "password": password})).await;
    assert_eq!(s, 200, "login {uid}: {v}");
    v["token"].as_str().unwrap().to_string()
}

async fn send(
    ar: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = http().request(method, format!("{ar}{path}"));
    if let Some(t) = token {
        rb = rb.header("authorization", format!("token={t}"));
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn logout_revokes_every_token_of_the_uid() {
    let (ar, _, router) = setup_with(|_| {}).await;
    router.auth().add_user("alice", "pw-alice-1", "").unwrap();
    let admin1 = token_for(&ar, "admin", "s3cret").await;
    let admin2 = token_for(&ar, "admin", "s3cret").await;
    let alice = token_for(&ar, "alice", "pw-alice-1").await;
    // Logout without a token, or with a bad one, only expires the cookie.
    for auth in [None, Some("token=garbage".to_string())] {
        let mut rb = http().get(format!("{ar}/acs/api/v1/auth/logout"));
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Expires=Thu, 01 Jan 1970"));
    }
    assert_eq!(get_json_auth(&ar, "/metadata", &admin1).await.0, 200);
    // The UI logs out with its cookie.
    let r = http()
        .post(format!("{ar}/acs/api/v1/auth/logout"))
        .header("cookie", format!("dcos-acs-auth-cookie={admin1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for t in [&admin1, &admin2] {
        let r = get_with(
            &ar,
            "/metadata",
            Some(("authorization", format!("token={t}"))),
        )
        .await;
        assert_401(&r);
        let r = get_with(
            &ar,
            "/service/marathon/v2/apps",
            Some(("cookie", format!("dcos-acs-auth-cookie={t}"))),
        )
        .await;
        assert_401(&r);
    }
    // Other uids are not affected; logging in again works.
    assert_eq!(get_json_auth(&ar, "/metadata", &alice).await.0, 200);
    let admin3 = token_for(&ar, "admin", "s3cret").await;
    assert_eq!(get_json_auth(&ar, "/metadata", &admin3).await.0, 200);
    // A revoked token cannot log out (revoke) again.
    let (s, _) = send(
        &ar,
        reqwest::Method::GET,
        "/acs/api/v1/auth/logout",
        Some(&admin1),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(get_json_auth(&ar, "/metadata", &admin3).await.0, 200);
}

#[tokio::test]
async fn password_change_revokes_and_revocations_live_in_the_cluster_store() {
    use dcos_adminrouter::cluster_store::ClusterAuthStore;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(dcos_store::EmbeddedStore::open(dir.path()).unwrap());
    let mk = |store: Arc<dcos_store::EmbeddedStore>| {
        let mut cfg = AdminRouterConfig::new("11111111-2222-4333-8444-555555555555");
        cfg.auth = auth_config(Arc::new(ClusterAuthStore::new(store)), None);
        cfg
    };
    let (ar, _) = start_router(mk(store.clone())).await;
    let old = token_for(&ar, "admin", "s3cret").await;
    let other = token_for(&ar, "admin", "s3cret").await;
    // Change the password through the users API, with one of the tokens.
    let (s, v) = send(
        &ar,
        reqwest::Method::PATCH,
        "/acs/api/v1/users/admin",
        Some(&other),
        Some(json!({"password": "a new password"})),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(get_json_auth(&ar, "/metadata", &old).await.0, 401);
    assert_eq!(get_json_auth(&ar, "/metadata", &other).await.0, 401);
    assert_eq!(
        login(&ar, json!({"uid": "admin", "password": "s3cret"}))
            .await
            .0,
        401
    );
    let new = token_for(&ar, "admin", "a new password").await;
    assert_eq!(get_json_auth(&ar, "/metadata", &new).await.0, 200);
    // Another Admin Router on the same cluster store (another master, or a restart) refuses
    // the revoked tokens too. (Its configured superuser password resets the password, which
    // is a password change again: the token issued above is revoked by that.)
    drop(store);
    let store = Arc::new(dcos_store::EmbeddedStore::open(dir.path()).unwrap());
    let (ar2, _) = start_router(mk(store)).await;
    assert_eq!(get_json_auth(&ar2, "/metadata", &old).await.0, 401);
    assert_eq!(get_json_auth(&ar2, "/metadata", &new).await.0, 401);
    let again = token_for(&ar2, "admin", "s3cret").await;
    assert_eq!(get_json_auth(&ar2, "/metadata", &again).await.0, 200);
}

#[tokio::test]
async fn nbf_iat_and_unknown_or_deleted_uids_are_refused() {
    let cluster_key = TokenKey::Rs256 {
        private_pem: fixture("cluster-private.pem"),
        public_pem: fixture("cluster-public.pem"),
    };
    let (ar, _, router) = setup_with(|c| c.auth.token_key = Some(cluster_key)).await;
    let cluster = EncodingKey::from_rsa_pem(fixture("cluster-private.pem").as_bytes()).unwrap();
    let rs = Header::new(Algorithm::RS256);
    let sign = |claims: Value| encode(&rs, &claims, &cluster).unwrap();
    let n = now();
    let good = sign(json!({"uid": "admin", "iat": n, "exp": n + 600}));
    assert_eq!(get_json_auth(&ar, "/metadata", &good).await.0, 200);
    let sa = sign(json!({"uid": "ci-bot", "exp": n + 600}));
    assert_eq!(get_json_auth(&ar, "/metadata", &sa).await.0, 200);
    for (name, t) in [
        (
            "nbf in the future",
            sign(json!({"uid": "admin", "nbf": n + 300})),
        ),
        (
            "iat in the future",
            sign(json!({"uid": "admin", "iat": n + 3600})),
        ),
        ("unknown uid", sign(json!({"uid": "root", "exp": n + 600}))),
        (
            "uid that is no key",
            sign(json!({"uid": "../keys/token-secret", "exp": n + 600})),
        ),
    ] {
        let r = get_with(
            &ar,
            "/metadata",
            Some(("authorization", format!("token={t}"))),
        )
        .await;
        assert_eq!(r.status(), 401, "{name}");
    }
    router.auth().add_user("dave", "pw-dave-1", "").unwrap();
    let dave = token_for(&ar, "dave", "pw-dave-1").await;
    assert_eq!(get_json_auth(&ar, "/metadata", &dave).await.0, 200);
    let (s, _) = send(
        &ar,
        reqwest::Method::DELETE,
        "/acs/api/v1/users/dave",
        Some(&good),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(get_json_auth(&ar, "/metadata", &dave).await.0, 401);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_uid_and_per_address() {
    use dcos_adminrouter::throttle::LoginThrottle;
    let limits = LoginThrottle {
        max_failures_per_uid: 3,
        max_failures_per_address: 8,
        window: std::time::Duration::from_secs(60),
        max_tracked: 100,
    };
    let (ar, _, router) = setup_with(|c| c.auth.login_throttle = limits).await;
    router.auth().add_user("erin", "pw-erin-1", "").unwrap();
    // A success resets the uid's counter.
    for _ in 0..2 {
        assert_eq!(
            login(&ar, json!({"uid": "admin", "password": "no"}))
                .await
                .0,
            401
        );
    }
    token_for(&ar, "admin", "s3cret").await;
    for _ in 0..3 {
        assert_eq!(
            login(&ar, json!({"uid": "admin", "password": "no"}))
                .await
                .0,
            401
        );
    }
    // The fourth failure in the window is refused, even with the right password.
    for password in ["no", "s3cret"] {
        let r = http()
            .post(format!("{ar}/acs/api/v1/auth/login"))
            .json(&json!({"uid": "admin", "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        let wait: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "Retry-After {wait}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "ERR_TOO_MANY_LOGIN_ATTEMPTS");
        assert!(
            v["title"].is_string() && v["description"].is_string(),
            "{v}"
        );
    }
    // Another uid still logs in from this address...
    token_for(&ar, "erin", "pw-erin-1").await;
    // ...until this address has failed 8 times in the window, whatever the uids.
    for i in 0..3 {
        let (s, _) = login(&ar, json!({"uid": format!("nobody{i}"), "password": "x"})).await;
        assert_eq!(s, 401);
    }
    for uid in ["nobody9", "erin"] {
        let (s, v) = login(&ar, json!({"uid": uid, "password": "wrong"})).await;
        assert_eq!(s, 429, "{uid}: {v}");
    }
    // Whatever the request, while the address is over its limit.
    let (s, _) = login(&ar, json!({"uid": "erin"})).await;
    assert_eq!(s, 429);
}

#[tokio::test]
async fn uids_that_cannot_be_store_keys_fail_login_and_user_management_cleanly() {
    use dcos_adminrouter::cluster_store::ClusterAuthStore;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(dcos_store::EmbeddedStore::open(dir.path()).unwrap());
    let mut cfg = AdminRouterConfig::new("11111111-2222-4333-8444-555555555555");
    cfg.auth = auth_config(Arc::new(ClusterAuthStore::new(store)), None);
    cfg.auth.login_throttle.max_failures_per_address = 1000;
    let (ar, _) = start_router(cfg).await;
    let token = token_for(&ar, "admin", "s3cret").await;
    for uid in [
        "../keys/token-secret".to_string(),
        "keys/../../adminrouter".to_string(),
        "..".to_string(),
        "a b".to_string(),
        "x".repeat(8000),
    ] {
        for body in [
            json!({"uid": uid, "password": "whatever"}),
            json!({"uid": uid, "token": "a.b.c"}),
        ] {
            let (s, v) = login(&ar, body).await;
            assert_eq!(s, 401, "{v}");
            assert_eq!(v["code"], "ERR_INVALID_CREDENTIALS");
        }
    }
    // The users API: 4xx with a clear message, nothing written.
    for path in [
        "/acs/api/v1/users/a%20b",
        "/acs/api/v1/users/..%2e",
        "/acs/api/v1/users/%C3%A9",
        &format!("/acs/api/v1/users/{}", "u".repeat(97)),
    ] {
        let (s, v) = send(
            &ar,
            reqwest::Method::PUT,
            path,
            Some(&token),
            Some(json!({"password": "long enough"})),
        )
        .await;
        assert_eq!(s, 400, "{path}: {v}");
        assert_eq!(v["code"], "ERR_INVALID_USER_ID", "{path}");
        assert!(
            v["description"].as_str().unwrap().contains("invalid uid"),
            "{v}"
        );
    }
    let (s, _) = send(
        &ar,
        reqwest::Method::PUT,
        "/acs/api/v1/users/..%2fkeys",
        Some(&token),
        Some(json!({"password": "long enough"})),
    )
    .await;
    assert_eq!(s, 400, "an encoded separator is refused by the path rules");
    // The secret was not touched: the token still works.
    assert_eq!(get_json_auth(&ar, "/metadata", &token).await.0, 200);
}

#[tokio::test]
async fn users_api_creates_lists_changes_and_deletes() {
    let (ar, _, _) = setup_with(|_| {}).await;
    let t = token_for(&ar, "admin", "s3cret").await;
    let put = |body: Value| {
        let (ar, t) = (ar.clone(), t.clone());
        async move {
            send(
                &ar,
                reqwest::Method::PUT,
                "/acs/api/v1/users/frank@example.com",
                Some(&t),
                Some(body),
            )
            .await
        }
    };
    assert_eq!(put(json!({"password": "short"})).await.0, 400);
    assert_eq!(put(json!({"description": "no password"})).await.0, 400);
    assert_eq!(
        put(json!({"password": "pw-frank-1", "bogus": 1})).await.0,
        400
    );
    let (s, v) = put(json!({"password": "pw-frank-1", "description": "Frank"})).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = put(json!({"password": "pw-frank-1"})).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("ERR_USER_EXISTS")));
    let (s, v) = send(
        &ar,
        reqwest::Method::GET,
        "/acs/api/v1/users",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let uids: Vec<&str> = v["array"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids, ["admin", "frank@example.com"]);
    let (s, v) = send(
        &ar,
        reqwest::Method::GET,
        "/acs/api/v1/users/frank@example.com",
        Some(&t),
        None,
    )
    .await;
    assert_eq!((s, v["description"].as_str()), (200, Some("Frank")));
    token_for(&ar, "frank@example.com", "pw-frank-1").await;
    let (s, _) = send(
        &ar,
        reqwest::Method::DELETE,
        "/acs/api/v1/users/frank@example.com",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, v) = send(
        &ar,
        reqwest::Method::GET,
        "/acs/api/v1/users/frank@example.com",
        Some(&t),
        None,
    )
    .await;
    assert_eq!((s, v["code"].as_str()), (404, Some("ERR_UNKNOWN_USER_ID")));
    // Without a token: 401 like every protected route.
    let (s, _) = send(&ar, reqwest::Method::GET, "/acs/api/v1/users", None, None).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn internal_token_is_added_for_components_and_never_taken_from_clients() {
    let (app_url, app) = start_echo("app").await;
    let resolver = move |name: &str| (name == "myapp").then(|| app_url.clone());
    let (ar, marathon, _) = setup_with(|c| {
        c.internal_token = Some("cluster-internal-secret".into());
        c.services = Some(Arc::new(resolver));
    })
    .await;
    let t = token_for(&ar, "admin", "s3cret").await;
    let r = http()
        .get(format!("{ar}/service/marathon/v2/apps"))
        .header("authorization", format!("token={t}"))
        .header("dcos-internal-token", "forged-by-client")
        .header("DCOS-Internal-Token", "another copy")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = marathon.log.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        seen.internal_tokens,
        vec!["cluster-internal-secret".to_string()]
    );
    // Apps behind /service/<name> never see the cluster's credential, nor a client's.
    let r = http()
        .get(format!("{ar}/service/myapp/x"))
        .header("authorization", format!("token={t}"))
        .header("dcos-internal-token", "forged-by-client")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = app.log.lock().unwrap().last().cloned().unwrap();
    assert!(
        seen.internal_tokens.is_empty(),
        "{:?}",
        seen.internal_tokens
    );

    // Without an internal token configured, a client's copy is still removed.
    let (ar, marathon, _) = setup_with(|_| {}).await;
    let t = token_for(&ar, "admin", "s3cret").await;
    let r = http()
        .get(format!("{ar}/service/marathon/v2/apps"))
        .header("authorization", format!("token={t}"))
        .header("dcos-internal-token", "forged-by-client")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = marathon.log.lock().unwrap().last().cloned().unwrap();
    assert!(
        seen.internal_tokens.is_empty(),
        "{:?}",
        seen.internal_tokens
    );

    // A token that cannot be a header value is a configuration error, not a panic.
    let mut cfg = AdminRouterConfig::new("11111111-2222-4333-8444-555555555555");
    cfg.internal_token = Some("bad\nvalue".into());
    assert!(dcos_adminrouter::AdminRouter::new(cfg).is_err());
}

#[tokio::test]
async fn stalled_connections_are_closed_and_the_listener_stays_usable() {
    use dcos_adminrouter::ServeLimits;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (marathon_url, _) = start_echo("marathon").await;
    let mut cfg = AdminRouterConfig::new("11111111-2222-4333-8444-555555555555");
    cfg.marathon = Some(marathon_url);
    cfg.auth = AuthConfig::disabled();
    let router = dcos_adminrouter::AdminRouter::new(cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ServeLimits {
        header_read_timeout: Duration::from_millis(500),
        max_connections: 16,
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dcos_adminrouter::serve_with_shutdown(
        listener,
        router.router(),
        limits,
        async {
            let _ = stop_rx.await;
        },
    ));
    // 40 connections (more than the limit) that never finish their headers: half send
    // nothing, half a request line and one header.
    let mut stalled = Vec::new();
    for i in 0..40 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            s.write_all(b"GET /dcos-metadata/dcos-version.json HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        stalled.push(s);
    }
    // A normal request still gets through (once slots free up, at the latest).
    let r = http()
        .get(format!("http://{addr}/service/marathon/v2/apps"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Every stalled connection is closed by the server (EOF or reset), none answered.
    for (i, mut s) in stalled.into_iter().enumerate() {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await;
        let closed = match read {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Err(_) => false,
        };
        assert!(
            closed,
            "stalled connection {i} was not closed by the server"
        );
        let text = String::from_utf8_lossy(&buf);
        assert!(!text.contains("200 OK"), "connection {i}: {text}");
    }
    let r = http()
        .get(format!("http://{addr}/dcos-metadata/dcos-version.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Graceful shutdown still ends the server.
    let _ = stop_tx.send(());
    let ended = tokio::time::timeout(Duration::from_secs(30), server).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
