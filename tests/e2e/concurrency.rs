//! Single-flight refresh against the real server: many concurrent callers, one
//! `POST /auth/session`.

use std::time::Duration;

use http::Method;
use latchkey::events::UserEvent;
use latchkey::{App, Credentials, ErrorKind, UserState};
use latchkey_testkit::TestServer;
use latchkey_testkit::record::RecordingTransport;
use latchkey_transport_reqwest::ReqwestTransport;

use crate::kit::{admin_ok, drain};

const SESSION: &str = "/api/client/v2.0/auth/session";

/// A server whose access tokens live 1 s (refresh buffer 100 ms), its admin token, and
/// an App that records its requests.
async fn short_lived() -> (
    TestServer,
    String,
    App,
    RecordingTransport<ReqwestTransport>,
) {
    let mut config = TestServer::config();
    // 2 s, not 1: a token minted at x.999 s with a 1 s lifetime expires 1 ms later (whole
    // seconds), so the login's own profile fetch could already see it expired on a busy machine.
    config.apps[0].access_token_ttl_secs = 2;
    let admin = config.admin_token.clone().unwrap().into_exposed();
    let server = TestServer::start_with(config).await;
    let recorder = RecordingTransport::new(ReqwestTransport::new());
    let app = App::builder(server.app_id())
        .base_url(server.url())
        .in_memory_store()
        .transport(recorder.clone())
        .build()
        .unwrap();
    (server, admin, app, recorder)
}

fn session_posts(recorder: &RecordingTransport<ReqwestTransport>) -> usize {
    recorder
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == SESSION)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_thousand_callers_share_one_refresh() {
    let (server, _admin, app, recorder) = short_lived().await;
    app.email_password_auth()
        .register_user("many@example.com", "s3cret-pass")
        .await
        .unwrap();
    let user = app
        .log_in(Credentials::email_password(
            "many@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap();
    let old = user.access_token().unwrap();
    let mut events = app.subscribe();

    // Expired for the client (1 s lifetime, 1.1 s later) and for the server (its clock
    // is also 31 minutes ahead).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    server.advance_clock(Duration::from_secs(31 * 60));
    assert_eq!(session_posts(&recorder), 0);

    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(1000));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let user = user.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                user.valid_access_token().await
            })
        })
        .collect();
    let mut tokens = Vec::with_capacity(1000);
    for t in tasks {
        tokens.push(t.await.unwrap().expect("a valid token"));
    }
    assert_eq!(session_posts(&recorder), 1, "exactly one refresh");
    let first = &tokens[0];
    assert_ne!(first, &old);
    assert!(
        tokens.iter().all(|t| t == first),
        "everyone got the same token"
    );
    assert_eq!(user.state(), UserState::LoggedIn);
    let refreshed = drain(&mut events)
        .into_iter()
        .filter(|e| matches!(e, UserEvent::TokenRefreshed { .. }))
        .count();
    assert_eq!(refreshed, 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_callers_of_a_revoked_session_share_one_failed_refresh() {
    let (server, admin, app, recorder) = short_lived().await;
    app.email_password_auth()
        .register_user("gone@example.com", "s3cret-pass")
        .await
        .unwrap();
    let user = app
        .log_in(Credentials::email_password(
            "gone@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap();
    let mut events = app.subscribe();
    admin_ok(
        &server,
        &admin,
        Method::DELETE,
        &format!("/users/{}/sessions", user.id()),
        None,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let user = user.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                user.valid_access_token().await
            })
        })
        .collect();
    let mut expired = 0;
    for t in tasks {
        let err = t.await.unwrap().expect_err("the session is over");
        // Callers that arrive after the user was logged out get NotLoggedIn.
        assert!(
            err.is_session_expired() || err.kind() == ErrorKind::NotLoggedIn,
            "{err:?}"
        );
        if err.is_session_expired() {
            expired += 1;
        }
    }
    assert!(expired >= 1);
    assert_eq!(session_posts(&recorder), 1, "exactly one refresh attempt");
    assert_eq!(user.state(), UserState::LoggedOut);
    let expiries = drain(&mut events)
        .into_iter()
        .filter(|e| matches!(e, UserEvent::SessionExpired { .. }))
        .count();
    assert_eq!(expiries, 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_401s_share_one_refresh_and_every_request_is_replayed() {
    let server = TestServer::start().await;
    let recorder = RecordingTransport::new(ReqwestTransport::new());
    let app = App::builder(server.app_id())
        .base_url(server.url())
        .in_memory_store()
        .transport(recorder.clone())
        .build()
        .unwrap();
    let user = app.log_in(Credentials::anonymous()).await.unwrap();
    let old = user.access_token().unwrap();
    // Only the server knows the token expired: every request gets a 401 first.
    server.advance_clock(Duration::from_secs(31 * 60));

    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let user = user.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let req = http::Request::get("/api/client/v2.0/auth/profile")
                    .body(bytes::Bytes::new())
                    .unwrap();
                user.request(req).await
            })
        })
        .collect();
    for t in tasks {
        let resp = t.await.unwrap().expect("replayed");
        assert_eq!(resp.status(), http::StatusCode::OK);
    }
    assert_eq!(session_posts(&recorder), 1, "exactly one refresh");
    assert_ne!(user.access_token().unwrap(), old);
    let profiles = recorder
        .requests()
        .iter()
        .filter(|r| r.path == "/api/client/v2.0/auth/profile")
        .count();
    // One at login, 200 first tries, at most 200 replays (early 401s only).
    assert!((202..=401).contains(&profiles), "{profiles}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_first_logins_with_one_identity_make_one_user() {
    let stack = latchkey_testkit::FullStack::start().await;
    let server = stack.server();
    let token = stack.custom_jwt("race-1", "Ray Race", "ray@example.com");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = crate::support::app(server);
            let token = token.clone();
            tokio::spawn(async move { app.log_in(Credentials::jwt(token)).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().expect("login").id().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one user: {ids:?}");

    // Concurrent registrations of one email: exactly one succeeds.
    let app = crate::support::app(server);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let auth = app.email_password_auth();
            tokio::spawn(async move { auth.register_user("race@example.com", "s3cret-pass").await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => assert_eq!(
                e.error_code(),
                Some(latchkey::ErrorCode::AccountNameInUse),
                "{e:?}"
            ),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_logins_on_one_app_are_all_kept_and_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let app = App::builder(server.app_id())
        .base_url(server.url())
        .storage_dir(dir.path())
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.log_in(Credentials::anonymous_no_reuse()).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().expect("login").id().to_owned());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50, "50 distinct anonymous users");
    let mut known: Vec<String> = app.all_users().iter().map(|u| u.id().to_owned()).collect();
    known.sort();
    assert_eq!(known, ids);
    let current = app.current_user().unwrap().id().to_owned();

    let restored = App::builder(server.app_id())
        .base_url(server.url())
        .storage_dir(dir.path())
        .build()
        .unwrap();
    let mut again: Vec<String> = restored
        .all_users()
        .iter()
        .map(|u| u.id().to_owned())
        .collect();
    again.sort();
    assert_eq!(again, ids, "every login was persisted");
    assert_eq!(restored.current_user().unwrap().id(), current);
    assert!(
        restored
            .all_users()
            .iter()
            .all(|u| u.state() == UserState::LoggedIn)
    );
    server.shutdown().await;
}
