//! The data the server keeps, attacked: spellings of one email address, custom data that
//! would make tokens unreadable, token lifetimes the SDK refuses, and the emails an
//! earlier release stored. Each `attack_*` test is one row of the attack table
//! (docs/security.md).

use http::{Method, StatusCode};
use latchkey::{Credentials, ErrorCode};
use latchkey_protocol::{
    AccessTokenClaims, MAX_ACCESS_TOKEN_LIFETIME_SECS, MAX_CUSTOM_DATA_BYTES,
    MAX_CUSTOM_DATA_DEPTH, MAX_REFRESH_TOKEN_LIFETIME_SECS, MIN_REFRESH_TOKEN_LIFETIME_SECS,
};
use latchkey_server::Config;
use latchkey_server::store::{CredentialStatus, UserpassRecord};
use latchkey_testkit::TestServer;
use serde_json::{Value, json};

use crate::kit::{admin, admin_ok, outbox};
use crate::support::{Captured, app, raw};

const PASSWORD: &str = "s3cret-pass";

/// The issue's spellings of `victim@example.com`, each a different string.
fn victim_spellings() -> Vec<String> {
    vec![
        "VICTIM@example.com".into(),
        "victim@EXAMPLE.COM".into(),
        "Victim@Example.Com".into(),
        // Fullwidth `ａ` in the local part and the domain.
        "victim@ex\u{ff41}mple.com".into(),
        "vict\u{ff49}m@example.com".into(),
        "\u{ff36}ICTIM@example.com".into(),
    ]
}

fn url(server: &TestServer, suffix: &str) -> String {
    format!(
        "{}/api/client/v2.0/app/{}/auth/providers/local-userpass{suffix}",
        server.url(),
        server.app_id()
    )
}

async fn register(server: &TestServer, email: &str) -> (StatusCode, Value) {
    let (status, _, body) = raw(
        Method::POST,
        &url(server, "/register"),
        None,
        Some(json!({ "email": email, "password": PASSWORD })),
    )
    .await;
    (status, body)
}

async fn login(server: &TestServer, email: &str, password: &str) -> (StatusCode, Value) {
    let (status, _, body) = raw(
        Method::POST,
        &url(server, "/login"),
        None,
        Some(json!({ "username": email, "password": password })),
    )
    .await;
    (status, body)
}

async fn post(server: &TestServer, suffix: &str, body: Value) -> StatusCode {
    raw(Method::POST, &url(server, suffix), None, Some(body))
        .await
        .0
}

fn admin_token(config: &Config) -> String {
    config
        .admin_token
        .clone()
        .expect("dev config has an admin token")
        .into_exposed()
}

#[tokio::test]
async fn attack_email_case_variant_is_same_account() {
    let server = TestServer::start().await;
    assert_eq!(
        register(&server, "victim@example.com").await.0,
        StatusCode::NO_CONTENT
    );
    for spelling in victim_spellings() {
        let (status, body) = register(&server, &spelling).await;
        assert_eq!(status, StatusCode::CONFLICT, "{spelling:?}: {body}");
        assert_eq!(body["error_code"], "AccountNameInUse", "{spelling:?}");
    }
    // Every spelling logs in to the one account.
    let (status, first) = login(&server, "victim@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    for spelling in victim_spellings() {
        let (status, body) = login(&server, &spelling, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{spelling:?}: {body}");
        assert_eq!(body["user_id"], first["user_id"], "{spelling:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn attack_email_case_variant_registered_first_owns_the_address() {
    let server = TestServer::start().await;
    let app = app(&server);
    app.email_password_auth()
        .register_user("VICTIM@EXAMPLE.COM", PASSWORD)
        .await
        .unwrap();
    let user = app
        .log_in(Credentials::email_password("victim@example.com", PASSWORD))
        .await
        .unwrap();
    // The identity carries the canonical address.
    let (_, _, profile) = raw(
        Method::GET,
        &format!("{}/api/client/v2.0/auth/profile", server.url()),
        Some(&user.access_token().unwrap()),
        None,
    )
    .await;
    assert_eq!(profile["data"]["email"], "victim@example.com", "{profile}");
    server.shutdown().await;
}

#[tokio::test]
async fn attack_email_with_invisible_character_is_refused() {
    let server = TestServer::start().await;
    register(&server, "victim@example.com").await;
    for (spelling, code) in [
        ("victim@example.com\u{200b}", "U+200B"),
        ("\u{feff}victim@example.com", "U+FEFF"),
        ("vic\u{200d}tim@example.com", "U+200D"),
        ("victim@example.com\u{0007}", "U+0007"),
    ] {
        let (status, body) = register(&server, spelling).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{spelling:?}: {body}");
        assert_eq!(body["error_code"], "BadRequest");
        let message = body["error"].as_str().unwrap();
        assert!(
            message.starts_with("email invalid") && message.contains(code),
            "{message}"
        );
        // Logging in with it is refused the same way, not found as another account.
        let (status, body) = login(&server, spelling, PASSWORD).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{spelling:?}: {body}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn attack_email_nfd_and_nfc_are_one_account() {
    let server = TestServer::start().await;
    let nfc = "caf\u{e9}@example.com";
    let nfd = "cafe\u{301}@example.com";
    assert_eq!(register(&server, nfc).await.0, StatusCode::NO_CONTENT);
    let (status, body) = register(&server, nfd).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (a, first) = login(&server, nfc, PASSWORD).await;
    let (b, second) = login(&server, nfd, PASSWORD).await;
    assert_eq!((a, b), (StatusCode::OK, StatusCode::OK));
    assert_eq!(first["user_id"], second["user_id"]);
    // An internationalised domain in any spelling is the same address too.
    assert_eq!(
        register(&server, "owner@b\u{fc}cher.example").await.0,
        StatusCode::NO_CONTENT
    );
    for spelling in ["owner@B\u{dc}CHER.example", "owner@xn--bcher-kva.example"] {
        assert_eq!(
            register(&server, spelling).await.0,
            StatusCode::CONFLICT,
            "{spelling:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn attack_mail_limit_counts_every_spelling() {
    let mut config = TestServer::config();
    config.apps[0].providers.local_userpass.auto_confirm = false;
    let limit = config.throttle.max_messages_per_email;
    let token = admin_token(&config);
    let server = TestServer::start_with(config).await;
    assert_eq!(
        register(&server, "victim@example.com").await.0,
        StatusCode::NO_CONTENT
    );
    // Ten spellings, each asking again for a confirmation and a reset message.
    let mut spellings = victim_spellings();
    spellings.extend([
        "VICTIM@EXAMPLE.COM".to_owned(),
        "vIcTiM@example.com".to_owned(),
        "victim@Example.com".to_owned(),
        "victiM@example.com".to_owned(),
    ]);
    assert_eq!(spellings.len(), 10);
    for spelling in &spellings {
        register(&server, spelling).await;
        post(&server, "/confirm/send", json!({ "email": spelling })).await;
        post(&server, "/reset/send", json!({ "email": spelling })).await;
    }
    let mails = outbox(&server, &token).await;
    assert!(
        mails.iter().all(|m| m.to == "victim@example.com"),
        "every message goes to the canonical address: {:?}",
        mails.iter().map(|m| &m.to).collect::<Vec<_>>()
    );
    assert!(
        mails.len() <= limit as usize,
        "{} messages in one mailbox against a limit of {limit}",
        mails.len()
    );
    // The limit is reached (not merely unused): the next request is refused.
    assert_eq!(
        post(
            &server,
            "/confirm/send",
            json!({ "email": "victim@example.com" })
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS
    );
    server.shutdown().await;
}

#[tokio::test]
async fn attack_failed_login_throttle_counts_every_spelling() {
    let mut config = TestServer::config();
    config.throttle.max_failures_per_identifier = 3;
    let server = TestServer::start_with(config).await;
    register(&server, "victim@example.com").await;
    for spelling in &victim_spellings()[..3] {
        let (status, body) = login(&server, spelling, "wrong-pass").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{spelling:?}: {body}");
    }
    // A fourth spelling, even with the right password, is locked out with the others.
    let (status, body) = login(&server, &victim_spellings()[3], PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let (status, _) = login(&server, "victim@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    server.shutdown().await;
}

#[tokio::test]
async fn email_flows_use_the_canonical_address() {
    let mut config = TestServer::config();
    config.apps[0].providers.local_userpass.auto_confirm = false;
    let token = admin_token(&config);
    let server = TestServer::start_with(config).await;
    let app = app(&server);
    let auth = app.email_password_auth();
    auth.register_user("Flow@Example.COM", PASSWORD)
        .await
        .unwrap();
    let mails = outbox(&server, &token).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, "flow@example.com");
    auth.confirm_user(mails[0].token.clone(), mails[0].token_id.clone())
        .await
        .unwrap();
    auth.send_reset_password_email("FLOW@example.com")
        .await
        .unwrap();
    let reset = outbox(&server, &token).await.pop().unwrap();
    assert_eq!(
        (reset.to.as_str(), reset.kind.as_str()),
        ("flow@example.com", "reset")
    );
    auth.reset_password(reset.token, reset.token_id, "new-pass-123")
        .await
        .unwrap();
    app.log_in(Credentials::email_password(
        "flow@EXAMPLE.com",
        "new-pass-123",
    ))
    .await
    .unwrap();
    server.shutdown().await;
}

/// `{"a": {"a": ... 1}}`, `levels` objects deep.
fn nested(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels {
        v = json!({ "a": v });
    }
    v
}

#[tokio::test]
async fn attack_deep_custom_data_cannot_lock_a_user_out() {
    let config = TestServer::config();
    let token = admin_token(&config);
    let server = TestServer::start_with(config).await;
    let app = app(&server);
    app.email_password_auth()
        .register_user("deep@example.com", PASSWORD)
        .await
        .unwrap();
    let user = app
        .log_in(Credentials::email_password("deep@example.com", PASSWORD))
        .await
        .unwrap();
    let path = format!("/users/{}/custom_data", user.id());
    // The issue's 127 levels, and one past the bound: refused, nothing stored.
    for levels in [127, MAX_CUSTOM_DATA_DEPTH + 1] {
        let (status, body) = admin(&server, &token, Method::PUT, &path, Some(nested(levels))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{levels}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("nested deeper"),
            "{body}"
        );
    }
    let shown = admin_ok(
        &server,
        &token,
        Method::GET,
        &format!("/users/{}", user.id()),
        None,
    )
    .await;
    assert_eq!(shown["custom_data"], Value::Null);
    // The user is not locked out: refreshes and authenticated calls still work.
    user.refresh_custom_data().await.unwrap();
    assert!(user.refresh_profile().await.is_ok());

    // The deepest accepted data makes a token the server and the SDK read.
    admin_ok(
        &server,
        &token,
        Method::PUT,
        &path,
        Some(nested(MAX_CUSTOM_DATA_DEPTH)),
    )
    .await;
    user.refresh_custom_data().await.unwrap();
    let data = user.custom_data::<Value>().unwrap().unwrap();
    assert_eq!(data, nested(MAX_CUSTOM_DATA_DEPTH));
    assert!(user.refresh_profile().await.is_ok());
    server.shutdown().await;
}

#[tokio::test]
async fn attack_oversize_custom_data_is_413() {
    let config = TestServer::config();
    let token = admin_token(&config);
    let server = TestServer::start_with(config).await;
    let app = app(&server);
    let user = app.log_in(Credentials::anonymous()).await.unwrap();
    let path = format!("/users/{}/custom_data", user.id());
    for size in [MAX_CUSTOM_DATA_BYTES + 1, 100 * 1024] {
        let body = json!({ "blob": "x".repeat(size) });
        let (status, answer) = admin(&server, &token, Method::PUT, &path, Some(body)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{size}: {answer}");
        assert!(
            answer["error_code"].is_string(),
            "JSON error shape: {answer}"
        );
    }
    // The largest accepted data: the access token stays within an 8 KiB header.
    let fits = "x".repeat(MAX_CUSTOM_DATA_BYTES - r#"{"blob":""}"#.len());
    admin_ok(
        &server,
        &token,
        Method::PUT,
        &path,
        Some(json!({ "blob": fits })),
    )
    .await;
    user.refresh_custom_data().await.unwrap();
    let access = user.access_token().unwrap();
    assert!(access.len() < 8 * 1024, "{} bytes", access.len());
    assert!(user.refresh_profile().await.is_ok());
    server.shutdown().await;
}

#[tokio::test]
async fn attack_stored_custom_data_out_of_bounds_is_left_out_of_the_token() {
    let mut config = TestServer::config();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let app_id = config.apps[0].id.clone();
    let server = latchkey_server::Server::start(config).await.unwrap();
    let base = server.url();
    let login_url = format!("{base}/api/client/v2.0/app/{app_id}/auth/providers/anon-user/login");
    let (status, _, first) = raw(Method::POST, &login_url, None, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    let user_id = first["user_id"].as_str().unwrap();
    // Written past the admin API's checks (by an earlier release, or by hand).
    let Value::Object(deep) = nested(127) else {
        unreachable!()
    };
    assert!(
        server
            .store()
            .set_custom_data(&app_id, user_id, Some(&deep))
            .await
            .unwrap()
    );
    let refresh = first["refresh_token"].as_str().unwrap();
    let (status, _, fresh) = raw(
        Method::POST,
        &format!("{base}/api/client/v2.0/auth/session"),
        Some(refresh),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let access = fresh["access_token"].as_str().unwrap();
    let claims = AccessTokenClaims::decode_unverified(access).unwrap();
    assert_eq!(claims.user_data, None, "left out, not issued unreadable");
    // The token it issued is one it reads: the user is not locked out.
    let (status, _, profile) = raw(
        Method::GET,
        &format!("{base}/api/client/v2.0/auth/profile"),
        Some(access),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    server.shutdown().await;
}

fn config_with(app_extra: &str) -> Result<Config, latchkey_server::config::ConfigError> {
    Config::from_toml_str(&format!(
        "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite::memory:\"\n[[apps]]\nid = \"a\"\n\
         signing_secret = \"0123456789abcdef0123456789abcdef\"\n{app_extra}"
    ))
}

#[tokio::test]
async fn attack_refresh_token_lifetime_of_one_second_is_refused() {
    for (extra, key) in [
        ("refresh_token_ttl_secs = 1", "refresh_token_ttl_secs"),
        (
            &*format!(
                "refresh_token_ttl_secs = {}",
                MIN_REFRESH_TOKEN_LIFETIME_SECS - 1
            ),
            "refresh_token_ttl_secs",
        ),
        (
            &*format!(
                "refresh_token_ttl_secs = {}",
                MAX_REFRESH_TOKEN_LIFETIME_SECS + 1
            ),
            "refresh_token_ttl_secs",
        ),
        ("access_token_ttl_secs = 0", "access_token_ttl_secs"),
        (
            &*format!(
                "access_token_ttl_secs = {}",
                MAX_ACCESS_TOKEN_LIFETIME_SECS + 1
            ),
            "access_token_ttl_secs",
        ),
        (
            "access_token_ttl_secs = 7200\nrefresh_token_ttl_secs = 3600",
            "must not be shorter",
        ),
    ] {
        let err = config_with(extra).unwrap_err().to_string();
        assert!(err.contains(key), "{extra}: {err}");
    }
    for extra in [
        format!("refresh_token_ttl_secs = {MIN_REFRESH_TOKEN_LIFETIME_SECS}"),
        format!("refresh_token_ttl_secs = {MAX_REFRESH_TOKEN_LIFETIME_SECS}"),
        "access_token_ttl_secs = 1".to_owned(),
    ] {
        config_with(&extra).unwrap_or_else(|e| panic!("{extra}: {e}"));
    }
    // The server's start refuses what the file check refuses.
    let mut config = TestServer::config();
    config.apps[0].refresh_token_ttl_secs = 1;
    assert!(latchkey_server::Server::start(config).await.is_err());
}

/// The longest access-token lifetime the server accepts is one the SDK accepts: a login
/// on such a server succeeds (it failed with a decode error at 10 years).
#[tokio::test]
async fn access_token_lifetime_bound_is_the_sdks() {
    let mut config = TestServer::config();
    config.apps[0].access_token_ttl_secs = MAX_ACCESS_TOKEN_LIFETIME_SECS;
    config.apps[0].refresh_token_ttl_secs = MAX_REFRESH_TOKEN_LIFETIME_SECS;
    let server = TestServer::start_with(config).await;
    let app = app(&server);
    let user = app.log_in(Credentials::anonymous()).await.unwrap();
    let claims = AccessTokenClaims::decode_unverified(&user.access_token().unwrap()).unwrap();
    assert_eq!(
        (claims.exp - claims.iat) as u64,
        MAX_ACCESS_TOKEN_LIFETIME_SECS
    );
    assert!(user.refresh_profile().await.is_ok());
    server.shutdown().await;
}

/// Credentials as an earlier release stored them: the email as written.
fn legacy(app: &str, id: &str, email: &str, hash: &latchkey_protocol::Secret) -> UserpassRecord {
    UserpassRecord {
        app_id: app.into(),
        id: id.into(),
        email: email.into(),
        password_hash: hash.clone(),
        status: CredentialStatus::Confirmed,
        created_at: 1,
        updated_at: 1,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn stored_emails_are_canonicalised_and_collisions_reported_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("latchkey.db").display());
    let mut config = TestServer::config();
    config.database = database.clone().into();
    let app_id = config.apps[0].id.clone();

    // A database of an earlier release: `victim@example.com`, and beside it spellings
    // that release stored as written.
    let server = TestServer::start_with(config.clone()).await;
    assert_eq!(
        register(&server, "victim@example.com").await.0,
        StatusCode::NO_CONTENT
    );
    server.shutdown().await;
    let store = latchkey_server::store::open(&database).await.unwrap();
    let victim = store
        .find_userpass(&app_id, "victim@example.com")
        .await
        .unwrap()
        .unwrap();
    let hash = victim.password_hash.clone();
    for record in [
        legacy(
            &app_id,
            "5f00000000000000000000b1",
            "VICTIM@example.com",
            &hash,
        ),
        legacy(
            &app_id,
            "5f00000000000000000000b2",
            "Other@Example.COM",
            &hash,
        ),
        legacy(
            &app_id,
            "5f00000000000000000000b3",
            "odd@example.com\u{200b}",
            &hash,
        ),
    ] {
        store.create_userpass(&record).await.unwrap();
    }
    store.close().await;

    // The server starts, canonicalises what it can and reports the rest.
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let server = TestServer::start_with(config).await;
    drop(guard);
    let logs = logs.text();
    let collision = logs
        .lines()
        .find(|l| l.contains("email collision"))
        .unwrap_or_else(|| panic!("no collision reported:\n{logs}"));
    assert!(
        collision.contains("5f00000000000000000000b1") && collision.contains(&victim.id),
        "{collision}"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("no canonical form") && l.contains("5f00000000000000000000b3")),
        "{logs}"
    );

    // Nothing merged: the colliding spelling is still its own account, reachable by the
    // spelling it was registered with; every other spelling is the canonical row's.
    let (status, canonical) = login(&server, "victim@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{canonical}");
    let (status, colliding) = login(&server, "VICTIM@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{colliding}");
    assert_ne!(canonical["user_id"], colliding["user_id"]);
    let (_, other_spelling) = login(&server, "Victim@example.com", PASSWORD).await;
    assert_eq!(other_spelling["user_id"], canonical["user_id"]);
    // A spelling with no collision took its canonical form: any spelling logs in.
    for spelling in [
        "other@example.com",
        "OTHER@EXAMPLE.COM",
        "Other@Example.COM",
    ] {
        let (status, body) = login(&server, spelling, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{spelling}: {body}");
    }
    // The row with no canonical form is left, reachable by its exact spelling only.
    let (status, body) = login(&server, "odd@example.com\u{200b}", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        register(&server, "odd@example.com").await.0,
        StatusCode::NO_CONTENT
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_login_with_an_unknown_spelling_is_the_usual_401() {
    let server = TestServer::start().await;
    let app = app(&server);
    let err = app
        .log_in(Credentials::email_password("NOBODY@example.com", PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(
        err.error_code(),
        Some(ErrorCode::InvalidPassword),
        "{err:?}"
    );
    server.shutdown().await;
}
