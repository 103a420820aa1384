//! The example API, the real latchkey-server and the SDK together: a valid token is
//! accepted, an expired one is refreshed by the SDK and accepted, forged and other-app
//! tokens are refused, and a key rotation (server restart on the same database) is
//! survived without logging anyone out.

use std::time::Duration;

use bytes::Bytes;
use latchkey::{App, Credentials};
use latchkey_server::config::{SigningKeyConfig, TokenAlgorithm};
use latchkey_server::keys::{RotateOptions, new_signing_key, rotate};
use latchkey_server::{AppConfig, Clock, Config, RunningServer, Server, tokens};
use latchkey_verify::Verifier;
use serde_json::Value;

const APP: &str = "verified-app";
const OTHER: &str = "other-app";
const TTL: u64 = 600;

fn es256(kid: &str) -> SigningKeyConfig {
    new_signing_key(kid, TokenAlgorithm::ES256, true).unwrap()
}

fn config(db: &std::path::Path) -> Config {
    let mut c = Config::dev();
    let mut app = AppConfig::new(APP, tokens::generate_key(TokenAlgorithm::HS256).unwrap())
        .with_all_providers();
    app.access_token_ttl_secs = TTL;
    app.signing_keys = vec![es256("k-2026-11")];
    let mut other = AppConfig::new(OTHER, tokens::generate_key(TokenAlgorithm::HS256).unwrap())
        .with_all_providers();
    other.signing_keys = vec![es256("k-other")];
    c.apps = vec![app, other];
    c.database = format!("sqlite://{}", db.display()).into();
    c
}

async fn start(config: Config, clock: &Clock) -> RunningServer {
    Server::start_with_clock(config, clock.clone())
        .await
        .expect("server starts")
}

/// `GET {api}/me` through the SDK: its token, refreshed and replayed on a 401.
async fn me(user: &latchkey::User, api: &str) -> (u16, Value) {
    let req = http::Request::get(format!("{api}/me"))
        .body(Bytes::new())
        .unwrap();
    let resp = user.request(req).await.expect("request");
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_slice(resp.body()).unwrap_or(Value::Null),
    )
}

/// `GET {api}/me` with a raw bearer token: (status, WWW-Authenticate).
async fn raw(api: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("{api}/me"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let www = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (resp.status().as_u16(), www)
}

fn header(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_trusts_sdk_tokens_through_expiry_forgery_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::system();
    let mut cfg = config(&dir.path().join("latchkey.db"));
    let server = start(cfg.clone(), &clock).await;
    let url = server.url();
    // Restarts listen on the same address, so the SDK keeps its base URL.
    cfg.listen = server.local_addr();

    let api_clock = clock.clone();
    let verifier = Verifier::builder(&url, APP)
        .clock(move || api_clock.now_secs())
        .leeway(Duration::ZERO)
        .refetch_cooldown(Duration::ZERO)
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(verified_api::serve(listener, verifier));

    let app = App::builder(APP)
        .base_url(&url)
        .in_memory_store()
        .build()
        .unwrap();
    let user = app.log_in(Credentials::anonymous()).await.unwrap();

    // 1. A valid token is accepted; the API sees the user's ids.
    let (status, body) = me(&user, &api).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], user.id());
    assert_eq!(body["app_id"], APP);
    assert_eq!(body["device_id"], user.device_id().unwrap_or_default());

    // 2. Expired (the server's and the API's clock move on; the SDK's does not): the
    // API answers 401, the SDK refreshes once and replays, and the new token is taken.
    let first = user.access_token().unwrap();
    clock.advance(Duration::from_secs(TTL + 1));
    assert_eq!(raw(&api, Some(&first)).await.0, 401);
    let (status, body) = me(&user, &api).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(user.access_token().unwrap(), first, "the SDK refreshed");

    // 3. Forged and foreign tokens are refused with WWW-Authenticate.
    let (status, www) = raw(&api, None).await;
    assert_eq!((status, www.as_str()), (401, r#"Bearer realm="latchkey""#));
    let good = user.access_token().unwrap();
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    // A payload edited to another user, signature kept.
    let mut claims: Value = {
        use base64::Engine as _;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&parts[1])
                .unwrap(),
        )
        .unwrap()
    };
    claims["sub"] = "000000000000000000000000".into();
    parts[1] = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string())
    };
    let edited = parts.join(".");
    // HS256 with the app's own signing_secret: the API never trusts a shared secret.
    let secret = cfg.apps[0].signing_secret.expose().to_owned();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = header(&good)["kid"].as_str().map(str::to_owned);
    let hs = jsonwebtoken::encode(
        &h,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap();
    // A token of another app on the same server.
    let other = reqwest::Client::new()
        .post(format!(
            "{url}/api/client/v2.0/app/{OTHER}/auth/providers/anon-user/login"
        ))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for (what, token) in [
        ("edited payload", edited.as_str()),
        ("HS256 with the app secret", hs.as_str()),
        ("other app", other.as_str()),
        ("garbage", "a.b.c"),
    ] {
        let (status, www) = raw(&api, Some(token)).await;
        assert_eq!(status, 401, "{what}");
        assert!(www.contains(r#"error="invalid_token""#), "{what}: {www}");
    }
    assert_eq!(raw(&api, Some(&good)).await.0, 200);

    // 4. Rotation: a new key signs, the old one verifies until its tokens expire.
    let before_rotation = user.access_token().unwrap();
    server.shutdown().await;
    let rotated = rotate(
        &toml::to_string(&cfg).unwrap(),
        &RotateOptions {
            app: Some(APP.into()),
            algorithm: TokenAlgorithm::EdDSA,
            stage: false,
            key_dir: None,
            now: clock.now_secs(),
        },
    )
    .unwrap();
    let server = start(Config::from_toml_str(&rotated.text).unwrap(), &clock).await;
    assert_eq!(server.url(), url);
    // The token minted before the rotation is still accepted, by the API and the server.
    let (status, _) = me(&user, &api).await;
    assert_eq!(status, 200);
    assert_eq!(user.access_token().unwrap(), before_rotation);
    user.refresh_custom_data().await.unwrap();
    // Once it expires, the SDK refreshes with its old refresh token and the API
    // fetches the new key it has not seen yet.
    clock.advance(Duration::from_secs(TTL + 1));
    assert_eq!(raw(&api, Some(&before_rotation)).await.0, 401);
    let (status, body) = me(&user, &api).await;
    assert_eq!(status, 200, "{body}");
    let after = user.access_token().unwrap();
    assert_eq!(header(&after)["alg"], "EdDSA");
    assert_eq!(body["user_id"], user.id());
    server.shutdown().await;
}
