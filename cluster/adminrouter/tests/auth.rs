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
