//! Users of an App against the real server: current/all/switch/remove/delete, linking,
//! identities, device ids, profile, custom data, authenticated requests, session
//! revocation and events.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use latchkey::events::UserEvent;
use latchkey::{App, Credentials, ErrorCode, ErrorKind, UserState};
use latchkey_protocol::AccessTokenClaims;
use latchkey_protocol::routes::Routes;
use latchkey_testkit::record::RecordingTransport;
use latchkey_testkit::{FullStack, TestServer};
use latchkey_transport_reqwest::ReqwestTransport;
use serde_json::json;

use crate::kit::{admin, admin_ok, drain, provider_types};
use crate::support::{app, raw};

/// A server with its admin token.
async fn server_with_admin() -> (TestServer, String) {
    let config = TestServer::config();
    let admin = config
        .admin_token
        .clone()
        .expect("admin token")
        .into_exposed();
    (TestServer::start_with(config).await, admin)
}

async fn register_and_log_in(app: &App, email: &str) -> latchkey::User {
    app.email_password_auth()
        .register_user(email, "s3cret-pass")
        .await
        .unwrap();
    app.log_in(Credentials::email_password(email, "s3cret-pass"))
        .await
        .unwrap()
}

/// Whether the server still accepts `refresh` (`POST /auth/session`).
async fn refresh_token_works(server: &TestServer, refresh: &str) -> bool {
    let (status, _, _) = raw(
        Method::POST,
        &Routes::new(server.url(), server.app_id()).session(),
        Some(refresh),
        None,
    )
    .await;
    status == StatusCode::OK
}

fn logged_in(id: &str) -> UserEvent {
    UserEvent::LoggedIn {
        user_id: id.to_owned(),
    }
}
fn switched(id: Option<&str>) -> UserEvent {
    UserEvent::Switched {
        user_id: id.map(str::to_owned),
    }
}
fn logged_out(id: &str) -> UserEvent {
    UserEvent::LoggedOut {
        user_id: id.to_owned(),
    }
}
fn removed(id: &str) -> UserEvent {
    UserEvent::Removed {
        user_id: id.to_owned(),
    }
}

#[tokio::test]
async fn current_all_switch_remove_with_events() {
    let server = TestServer::start().await;
    let app = app(&server);
    let mut events = app.subscribe();
    assert!(app.current_user().is_none());
    assert!(app.all_users().is_empty());

    let a = register_and_log_in(&app, "a@example.com").await;
    let b = register_and_log_in(&app, "b@example.com").await;
    assert_eq!(
        drain(&mut events),
        vec![
            logged_in(a.id()),
            switched(Some(a.id())),
            logged_in(b.id()),
            switched(Some(b.id())),
        ]
    );
    assert_eq!(app.current_user().as_ref(), Some(&b));
    let all: Vec<String> = app.all_users().iter().map(|u| u.id().to_owned()).collect();
    assert_eq!(
        all,
        vec![a.id().to_owned(), b.id().to_owned()],
        "oldest first"
    );

    app.switch_user(&a).unwrap();
    assert_eq!(app.current_user().unwrap().id(), a.id());
    assert_eq!(drain(&mut events), vec![switched(Some(a.id()))]);
    // Switching to the current user changes nothing and emits nothing.
    app.switch_user(&a).unwrap();
    assert!(drain(&mut events).is_empty());

    // A logged-out user cannot be switched to.
    b.log_out().await.unwrap();
    assert_eq!(drain(&mut events), vec![logged_out(b.id())]);
    let err = app.switch_user(&b).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotLoggedIn, "{err:?}");
    assert_eq!(app.current_user().unwrap().id(), a.id());
    assert_eq!(app.all_users().len(), 2);

    // Removing the logged-in current user: logged out, removed, session revoked.
    let a_refresh = a.refresh_token().unwrap();
    assert!(refresh_token_works(&server, &a_refresh).await);
    app.remove_user(&a).await.unwrap();
    assert_eq!(a.state(), UserState::Removed);
    assert!(a.access_token().is_none());
    assert!(app.current_user().is_none(), "b is logged out");
    let seen = drain(&mut events);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.contains(&logged_out(a.id())), "{seen:?}");
    assert!(seen.contains(&switched(None)), "{seen:?}");
    assert_eq!(seen.last(), Some(&removed(a.id())), "{seen:?}");
    assert!(
        !refresh_token_works(&server, &a_refresh).await,
        "the session was revoked on the server"
    );
    let all: Vec<String> = app.all_users().iter().map(|u| u.id().to_owned()).collect();
    assert_eq!(all, vec![b.id().to_owned()]);

    // Removing the logged-out user: locally only.
    app.remove_user(&b).await.unwrap();
    assert_eq!(b.state(), UserState::Removed);
    assert!(app.all_users().is_empty());
    assert_eq!(drain(&mut events), vec![removed(b.id())]);
    let err = app.remove_user(&b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UserNotFound, "{err:?}");
    let err = app.switch_user(&a).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UserNotFound, "{err:?}");

    // The server account stays: logging in again gives the same id, a new handle.
    let again = app
        .log_in(Credentials::email_password("a@example.com", "s3cret-pass"))
        .await
        .unwrap();
    assert_eq!(again.id(), a.id());
    assert_eq!(again.state(), UserState::LoggedIn);
    assert_eq!(
        a.state(),
        UserState::Removed,
        "the old handle stays removed"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn logged_out_user_is_removed_without_a_request() {
    let server = TestServer::start().await;
    let recorder = RecordingTransport::new(ReqwestTransport::new());
    let app = App::builder(server.app_id())
        .base_url(server.url())
        .in_memory_store()
        .transport(recorder.clone())
        .build()
        .unwrap();
    let user = register_and_log_in(&app, "c@example.com").await;
    user.log_out().await.unwrap();
    let before = recorder.requests().len();
    app.remove_user(&user).await.unwrap();
    assert_eq!(recorder.requests().len(), before, "no request");
    assert!(app.all_users().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn delete_user_removes_the_server_account() {
    let (server, admin_token) = server_with_admin().await;
    let app = app(&server);
    let mut events = app.subscribe();

    // Anonymous: the next anonymous login is a new user.
    let anon = app.log_in(Credentials::anonymous()).await.unwrap();
    let anon_refresh = anon.refresh_token().unwrap();
    app.delete_user(&anon).await.unwrap();
    assert_eq!(anon.state(), UserState::Removed);
    assert!(app.all_users().is_empty());
    assert!(drain(&mut events).contains(&removed(anon.id())));
    let (status, body) = admin(
        &server,
        &admin_token,
        Method::GET,
        &format!("/users/{}", anon.id()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(!refresh_token_works(&server, &anon_refresh).await);
    let new_anon = app.log_in(Credentials::anonymous()).await.unwrap();
    assert_ne!(new_anon.id(), anon.id());
    let err = app.delete_user(&anon).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UserNotFound, "{err:?}");

    // Email/password: credentials go too.
    let ada = register_and_log_in(&app, "ada@example.com").await;
    app.delete_user(&ada).await.unwrap();
    assert_eq!(ada.state(), UserState::Removed);
    let err = app
        .log_in(Credentials::email_password(
            "ada@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err.error_code(),
        Some(ErrorCode::InvalidPassword),
        "{err:?}"
    );

    // A logged-out user cannot be deleted; nothing changes.
    let bob = register_and_log_in(&app, "bob@example.com").await;
    bob.log_out().await.unwrap();
    let err = app.delete_user(&bob).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotLoggedIn, "{err:?}");
    assert_eq!(bob.state(), UserState::LoggedOut);
    admin_ok(
        &server,
        &admin_token,
        Method::GET,
        &format!("/users/{}", bob.id()),
        None,
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn link_email_password_to_an_anonymous_user() {
    let server = TestServer::start().await;
    let app = app(&server);
    let user = app.log_in(Credentials::anonymous()).await.unwrap();
    assert!(user.is_anonymous());
    let refresh = user.refresh_token().unwrap();
    let old_access = user.access_token().unwrap();
    app.email_password_auth()
        .register_user("link@example.com", "s3cret-pass")
        .await
        .unwrap();

    user.link_credentials(Credentials::email_password(
        "link@example.com",
        "s3cret-pass",
    ))
    .await
    .unwrap();
    assert_eq!(
        provider_types(&user),
        vec!["anon-user".to_owned(), "local-userpass".to_owned()]
    );
    assert!(!user.is_anonymous());
    assert_eq!(user.state(), UserState::LoggedIn);
    assert_eq!(user.profile().email().as_deref(), Some("link@example.com"));
    assert_eq!(user.refresh_token().unwrap(), refresh, "refresh token kept");
    assert!(
        refresh_token_works(&server, &refresh).await,
        "old refresh token valid"
    );
    let claims = AccessTokenClaims::decode_unverified(&user.access_token().unwrap()).unwrap();
    let old_claims = AccessTokenClaims::decode_unverified(&old_access).unwrap();
    assert_eq!(claims.sub, user.id());
    assert_eq!(claims.iss, old_claims.iss, "same session");
    user.refresh_access_token().await.unwrap();

    // Logging in with the linked credentials from elsewhere: the same user.
    let other = crate::support::app(&server)
        .log_in(Credentials::email_password(
            "link@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap();
    assert_eq!(other.id(), user.id());
    assert_eq!(other.identities().len(), 2);

    // No longer anonymous: an anonymous login is a new user.
    let anon = app.log_in(Credentials::anonymous()).await.unwrap();
    assert_ne!(anon.id(), user.id());

    // Anonymous credentials are refused locally.
    let err = user
        .link_credentials(Credentials::anonymous())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Credential, "{err:?}");

    // An identity that belongs to another user is refused by the server.
    let taken = register_and_log_in(&app, "taken@example.com").await;
    let err = anon
        .link_credentials(Credentials::email_password(
            "taken@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server, "{err:?}");
    assert_eq!(
        err.error_code(),
        Some(ErrorCode::AccountNameInUse),
        "{err:?}"
    );
    assert_eq!(
        provider_types(&anon),
        vec!["anon-user".to_owned()],
        "unchanged"
    );
    assert_eq!(anon.state(), UserState::LoggedIn);
    assert_ne!(taken.id(), anon.id());

    // A logged-out user cannot link.
    taken.log_out().await.unwrap();
    let err = taken
        .link_credentials(Credentials::email_password("x@example.com", "s3cret-pass"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotLoggedIn, "{err:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn link_oauth_identity_and_refresh_profile_elsewhere() {
    let stack = FullStack::start().await;
    let server = stack.server();
    let phone = app(server);
    let laptop = crate::support::app(server);
    let on_phone = register_and_log_in(&phone, "gina@example.com").await;
    let on_laptop = laptop
        .log_in(Credentials::email_password(
            "gina@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap();
    assert_eq!(on_laptop.id(), on_phone.id());

    on_laptop
        .link_credentials(Credentials::google_id_token(stack.google_id_token(
            "g-1",
            "gina@gmail.example.com",
            "Gina",
        )))
        .await
        .unwrap();
    on_laptop
        .link_credentials(Credentials::jwt(stack.custom_jwt(
            "ext-gina",
            "Gina J",
            "gina@jwt.example.com",
        )))
        .await
        .unwrap();
    assert_eq!(
        provider_types(&on_laptop),
        vec![
            "custom-token".to_owned(),
            "local-userpass".to_owned(),
            "oauth2-google".to_owned()
        ]
    );
    // The phone does not know until it re-reads the profile.
    assert_eq!(on_phone.identities().len(), 1);
    let profile = on_phone.refresh_profile().await.unwrap();
    assert_eq!(profile, on_phone.profile());
    assert_eq!(provider_types(&on_phone), provider_types(&on_laptop));

    // The linked Google account now logs in as Gina.
    let via_google = crate::support::app(server)
        .log_in(Credentials::google_id_token(stack.google_id_token(
            "g-1",
            "gina@gmail.example.com",
            "Gina",
        )))
        .await
        .unwrap();
    assert_eq!(via_google.id(), on_phone.id());
}

#[tokio::test]
async fn device_id_is_kept_and_sent_back() {
    let server = TestServer::start().await;
    let recorder = RecordingTransport::new(ReqwestTransport::new());
    let app = App::builder(server.app_id())
        .base_url(server.url())
        .in_memory_store()
        .transport(recorder.clone())
        .build()
        .unwrap();
    let a = register_and_log_in(&app, "d1@example.com").await;
    let device = a.device_id().expect("a device id");
    assert_eq!(device.len(), 24);
    assert_ne!(device, "000000000000000000000000");
    let claims = AccessTokenClaims::decode_unverified(&a.access_token().unwrap()).unwrap();
    assert_eq!(claims.baas_device_id.as_deref(), Some(device.as_str()));

    // A second login on the same App, as another user: the same device.
    let b = register_and_log_in(&app, "d2@example.com").await;
    assert_eq!(b.device_id().as_deref(), Some(device.as_str()));
    // Logging out and in again: still the same device.
    a.log_out().await.unwrap();
    let a2 = app
        .log_in(Credentials::email_password("d1@example.com", "s3cret-pass"))
        .await
        .unwrap();
    assert_eq!(a2.device_id().as_deref(), Some(device.as_str()));
    let anon = app.log_in(Credentials::anonymous()).await.unwrap();
    assert_eq!(anon.device_id().as_deref(), Some(device.as_str()));
    // Refreshes keep it.
    a2.refresh_access_token().await.unwrap();
    let claims = AccessTokenClaims::decode_unverified(&a2.access_token().unwrap()).unwrap();
    assert_eq!(claims.baas_device_id.as_deref(), Some(device.as_str()));

    // Every login sent options.device.
    let logins: Vec<_> = recorder
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/login"))
        .collect();
    assert_eq!(logins.len(), 4);
    for r in &logins {
        assert!(
            r.body_keys
                .as_ref()
                .unwrap()
                .contains(&"options".to_owned()),
            "{r:?}"
        );
    }

    // Another App (another device) gets another device id.
    let other = crate::support::app(&server)
        .log_in(Credentials::email_password("d1@example.com", "s3cret-pass"))
        .await
        .unwrap();
    assert_ne!(other.device_id().as_deref(), Some(device.as_str()));
    server.shutdown().await;
}

#[derive(Debug, PartialEq, serde::Deserialize)]
struct Plan {
    plan: String,
    seats: u32,
}

#[tokio::test]
async fn custom_data_after_admin_update_and_refresh() {
    let (server, admin_token) = server_with_admin().await;
    let app = app(&server);
    let user = register_and_log_in(&app, "cd@example.com").await;
    assert_eq!(user.custom_data::<Plan>().unwrap(), None);

    let (status, body) = admin(
        &server,
        &admin_token,
        Method::PUT,
        &format!("/users/{}/custom_data", user.id()),
        Some(json!({ "plan": "pro", "seats": 3 })),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(
        user.custom_data::<Plan>().unwrap(),
        None,
        "seen only after a refresh"
    );
    user.refresh_custom_data().await.unwrap();
    assert_eq!(
        user.custom_data::<Plan>().unwrap(),
        Some(Plan {
            plan: "pro".into(),
            seats: 3
        })
    );
    let as_map = user
        .custom_data::<serde_json::Map<String, serde_json::Value>>()
        .unwrap()
        .unwrap();
    assert_eq!(as_map["plan"], "pro");
    // The wrong shape is a typed decode error.
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Wrong {
        plan: u64,
    }
    let err = user.custom_data::<Wrong>().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
    // A new login sees it at once; a logged-out user has none.
    let other = crate::support::app(&server)
        .log_in(Credentials::email_password("cd@example.com", "s3cret-pass"))
        .await
        .unwrap();
    assert_eq!(other.custom_data::<Plan>().unwrap().unwrap().seats, 3);
    user.log_out().await.unwrap();
    assert_eq!(user.custom_data::<Plan>().unwrap(), None);
    server.shutdown().await;
}

#[tokio::test]
async fn request_replays_after_the_server_expired_the_token() {
    let server = TestServer::start().await;
    let app = app(&server);
    let user = register_and_log_in(&app, "req@example.com").await;
    let old = user.access_token().unwrap();
    let mut events = app.subscribe();

    server.advance_clock(Duration::from_secs(31 * 60));
    // The client still believes the token is fresh.
    assert_eq!(user.valid_access_token().await.unwrap(), old);

    let req = http::Request::get("/api/client/v2.0/auth/profile")
        .body(Bytes::new())
        .unwrap();
    let resp = user.request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(body["user_id"], user.id());
    assert_eq!(body["data"]["email"], "req@example.com");
    let new = user.access_token().unwrap();
    assert_ne!(new, old);
    assert_eq!(
        drain(&mut events),
        vec![UserEvent::TokenRefreshed {
            user_id: user.id().to_owned()
        }]
    );

    // An absolute URI works too, and a fresh token needs no refresh.
    let url = Routes::new(server.url(), server.app_id()).profile();
    let resp = user
        .request(http::Request::get(url).body(Bytes::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(user.access_token().unwrap(), new);
    assert!(drain(&mut events).is_empty());

    // A second 401 is returned as it is: a refresh-token route called with the access
    // token answers 401 twice (one refresh in between), and the user stays logged in.
    let resp = user
        .request(
            http::Request::post("/api/client/v2.0/auth/session")
                .body(Bytes::from_static(b"{}"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(user.state(), UserState::LoggedIn);
    assert_eq!(
        drain(&mut events),
        vec![UserEvent::TokenRefreshed {
            user_id: user.id().to_owned()
        }]
    );

    // A non-401 error status is returned as is.
    let resp = user
        .request(
            http::Request::get("/api/client/v2.0/auth/no-such-route")
                .body(Bytes::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(user.state(), UserState::LoggedIn);
    server.shutdown().await;
}

#[tokio::test]
async fn revoked_sessions_end_in_session_expired() {
    let (server, admin_token) = server_with_admin().await;
    let app = app(&server);
    let user = register_and_log_in(&app, "rev@example.com").await;
    let bystander = register_and_log_in(&app, "by@example.com").await;
    app.switch_user(&user).unwrap();
    let mut events = app.subscribe();

    let body = admin_ok(
        &server,
        &admin_token,
        Method::DELETE,
        &format!("/users/{}/sessions", user.id()),
        None,
    )
    .await;
    assert_eq!(body["revoked_sessions"], 1);

    let err = user.refresh_access_token().await.unwrap_err();
    assert!(err.is_session_expired(), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::SessionExpired);
    assert_eq!(user.state(), UserState::LoggedOut);
    assert!(user.access_token().is_none());
    assert_eq!(
        user.profile().email().as_deref(),
        Some("rev@example.com"),
        "profile kept"
    );
    let seen = drain(&mut events);
    assert!(
        seen.contains(&UserEvent::SessionExpired {
            user_id: user.id().to_owned()
        }),
        "{seen:?}"
    );
    assert_eq!(
        app.current_user().unwrap().id(),
        bystander.id(),
        "current moves on"
    );
    let err = user.valid_access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotLoggedIn, "{err:?}");
    assert_eq!(bystander.state(), UserState::LoggedIn);
    bystander.refresh_access_token().await.unwrap();

    // Through an authenticated request: 401 → refresh → 401 → session expired.
    let again = app
        .log_in(Credentials::email_password(
            "rev@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap();
    drain(&mut events);
    admin_ok(
        &server,
        &admin_token,
        Method::DELETE,
        &format!("/users/{}/sessions", again.id()),
        None,
    )
    .await;
    let err = again
        .request(
            http::Request::get("/api/client/v2.0/auth/profile")
                .body(Bytes::new())
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert!(err.is_session_expired(), "{err:?}");
    assert_eq!(again.state(), UserState::LoggedOut);
    assert!(drain(&mut events).contains(&UserEvent::SessionExpired {
        user_id: again.id().to_owned()
    }));
    server.shutdown().await;
}

#[tokio::test]
async fn valid_access_token_on_a_short_lived_token_refreshes_or_expires() {
    let mut config = TestServer::config();
    config.apps[0].access_token_ttl_secs = 1;
    let admin_token = config.admin_token.clone().unwrap().into_exposed();
    let server = TestServer::start_with(config).await;
    let app = app(&server);
    let user = register_and_log_in(&app, "short@example.com").await;
    let other = register_and_log_in(&app, "other@example.com").await;
    let mut events = app.subscribe();
    let old_user = user.access_token().unwrap();
    let old_other = other.access_token().unwrap();

    // The other user's sessions are revoked on the server.
    admin_ok(
        &server,
        &admin_token,
        Method::DELETE,
        &format!("/users/{}/sessions", other.id()),
        None,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Both tokens are due: one refreshes, the other's session is over.
    let fresh = user.valid_access_token().await.unwrap();
    assert_ne!(fresh, old_user);
    assert_eq!(user.state(), UserState::LoggedIn);
    let err = other.valid_access_token().await.unwrap_err();
    assert!(err.is_session_expired(), "{err:?}");
    assert_eq!(other.state(), UserState::LoggedOut);
    assert!(other.access_token().is_none());
    let seen = drain(&mut events);
    assert!(seen.contains(&UserEvent::TokenRefreshed {
        user_id: user.id().to_owned()
    }));
    assert!(seen.contains(&UserEvent::SessionExpired {
        user_id: other.id().to_owned()
    }));
    // The revoked session's last access token is refused by the server too.
    let (status, _, _) = raw(
        Method::GET,
        &Routes::new(server.url(), server.app_id()).profile(),
        Some(&old_other),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.shutdown().await;
}

#[tokio::test]
async fn profile_has_typed_fields_and_refresh_profile_rereads_it() {
    let stack = FullStack::start().await;
    let app = app(stack.server());
    let token = stack.facebook.issue_token(
        latchkey_testkit::idp::FacebookUser::new("77", "Pat Profile")
            .email("pat@example.com")
            .picture_url("https://pics.example.com/pat.png"),
    );
    let user = app.log_in(Credentials::facebook(token)).await.unwrap();
    let p = user.profile();
    assert_eq!(p.name().as_deref(), Some("Pat Profile"));
    assert_eq!(p.first_name().as_deref(), Some("Pat"));
    assert_eq!(p.last_name().as_deref(), Some("Profile"));
    assert_eq!(p.email().as_deref(), Some("pat@example.com"));
    assert_eq!(
        p.picture_url().as_deref(),
        Some("https://pics.example.com/pat.png")
    );
    assert_eq!(p.get("email"), Some(json!("pat@example.com")));
    assert!(p.data().contains_key("name"));
    assert_eq!(p.gender().as_deref(), None);

    let again = user.refresh_profile().await.unwrap();
    assert_eq!(again, p);
    assert_eq!(user.user_type().as_deref(), Some("normal"));
}

#[tokio::test]
async fn link_and_delete_refresh_and_replay_after_server_expiry() {
    let (server, admin_token) = server_with_admin().await;
    let app = app(&server);
    let user = app.log_in(Credentials::anonymous()).await.unwrap();
    app.email_password_auth()
        .register_user("late@example.com", "s3cret-pass")
        .await
        .unwrap();
    let old = user.access_token().unwrap();
    server.advance_clock(Duration::from_secs(31 * 60));
    user.link_credentials(Credentials::email_password(
        "late@example.com",
        "s3cret-pass",
    ))
    .await
    .unwrap();
    assert_eq!(user.identities().len(), 2);
    assert_ne!(user.access_token().unwrap(), old);

    server.advance_clock(Duration::from_secs(31 * 60));
    app.delete_user(&user).await.unwrap();
    assert_eq!(user.state(), UserState::Removed);
    let (status, _) = admin(
        &server,
        &admin_token,
        Method::GET,
        &format!("/users/{}", user.id()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.shutdown().await;
}

#[tokio::test]
async fn users_of_another_app_are_refused() {
    let server = TestServer::start().await;
    let one = app(&server);
    let two = crate::support::app(&server);
    let user = one.log_in(Credentials::anonymous()).await.unwrap();
    let err = two.switch_user(&user).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UserNotFound, "{err:?}");
    let err = two.remove_user(&user).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UserNotFound, "{err:?}");
    let err = two.delete_user(&user).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UserNotFound, "{err:?}");
    assert_eq!(user.state(), UserState::LoggedIn);
    server.shutdown().await;
}

#[tokio::test]
async fn link_remove_and_delete_persist_through_the_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin_token) = server_with_admin().await;
    let recorder = RecordingTransport::new(ReqwestTransport::new());
    let build = |transport: Option<RecordingTransport<ReqwestTransport>>| {
        let b = App::builder(server.app_id())
            .base_url(server.url())
            .storage_dir(dir.path());
        match transport {
            Some(t) => b.transport(t),
            None => b,
        }
        .build()
        .unwrap()
    };
    let app = build(Some(recorder.clone()));
    let linked = app.log_in(Credentials::anonymous()).await.unwrap();
    let gone = register_and_log_in(&app, "gone@example.com").await;
    let removed_user = register_and_log_in(&app, "removed@example.com").await;
    let kept = register_and_log_in(&app, "kept@example.com").await;
    admin_ok(
        &server,
        &admin_token,
        Method::PUT,
        &format!("/users/{}/custom_data", kept.id()),
        Some(json!({ "plan": "team", "seats": 9 })),
    )
    .await;
    kept.refresh_custom_data().await.unwrap();
    app.email_password_auth()
        .register_user("linked@example.com", "s3cret-pass")
        .await
        .unwrap();
    // Linking makes the user current.
    assert_eq!(app.current_user().unwrap().id(), kept.id());
    linked
        .link_credentials(Credentials::email_password(
            "linked@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap();
    assert_eq!(app.current_user().unwrap().id(), linked.id());
    app.delete_user(&gone).await.unwrap();
    app.remove_user(&removed_user).await.unwrap();
    let device = linked.device_id().unwrap();
    let locations = recorder
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/location"))
        .count();
    assert_eq!(locations, 1, "the location is fetched once per App");
    drop(app);

    // A new App on the same directory sees exactly what happened.
    let restored = build(None);
    let mut ids: Vec<String> = restored
        .all_users()
        .iter()
        .map(|u| u.id().to_owned())
        .collect();
    ids.sort();
    let mut expected = vec![linked.id().to_owned(), kept.id().to_owned()];
    expected.sort();
    assert_eq!(ids, expected);
    let current = restored.current_user().unwrap();
    assert_eq!(current.id(), linked.id());
    assert_eq!(
        provider_types(&current),
        vec!["anon-user".to_owned(), "local-userpass".to_owned()]
    );
    assert_eq!(
        current.profile().email().as_deref(),
        Some("linked@example.com")
    );
    assert_eq!(current.device_id().as_deref(), Some(device.as_str()));
    assert_eq!(current.refresh_token(), linked.refresh_token());
    let kept_again = restored
        .all_users()
        .into_iter()
        .find(|u| u.id() == kept.id())
        .unwrap();
    assert_eq!(
        kept_again.custom_data::<Plan>().unwrap(),
        Some(Plan {
            plan: "team".into(),
            seats: 9
        })
    );
    // And its sessions still work against the server.
    current.refresh_profile().await.unwrap();
    kept_again.refresh_access_token().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn disabled_users_cannot_refresh_or_log_in_until_enabled() {
    let (server, admin_token) = server_with_admin().await;
    let app = app(&server);
    let user = register_and_log_in(&app, "dis@example.com").await;
    let key = user.api_keys().create("k").await.unwrap();
    let secret = key.key.unwrap().expose().to_owned();
    let body = admin_ok(
        &server,
        &admin_token,
        Method::PUT,
        &format!("/users/{}/disable", user.id()),
        None,
    )
    .await;
    assert_eq!(body["revoked_sessions"], 1, "{body}");
    let err = user.refresh_access_token().await.unwrap_err();
    assert!(err.is_session_expired(), "{err:?}");
    for creds in [
        Credentials::email_password("dis@example.com", "s3cret-pass"),
        Credentials::api_key(secret.clone()),
    ] {
        let err = app.log_in(creds).await.unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::FORBIDDEN), "{err:?}");
        assert_eq!(err.error_code(), Some(ErrorCode::UserDisabled), "{err:?}");
        assert!(!err.is_session_expired());
    }
    admin_ok(
        &server,
        &admin_token,
        Method::PUT,
        &format!("/users/{}/enable", user.id()),
        None,
    )
    .await;
    let again = app
        .log_in(Credentials::email_password(
            "dis@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap();
    assert_eq!(again.id(), user.id());
    server.shutdown().await;
}

#[tokio::test]
async fn deleting_a_user_deletes_its_api_keys() {
    let server = TestServer::start().await;
    let app = app(&server);
    let user = register_and_log_in(&app, "keys-gone@example.com").await;
    let key = user.api_keys().create("k").await.unwrap();
    let secret = key.key.unwrap().expose().to_owned();
    app.delete_user(&user).await.unwrap();
    let err = app.log_in(Credentials::api_key(secret)).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::AuthError), "{err:?}");
    assert!(app.all_users().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn linking_the_same_identity_twice_and_logging_out_a_linked_user() {
    let server = TestServer::start().await;
    let app = app(&server);
    let user = app.log_in(Credentials::anonymous()).await.unwrap();
    app.email_password_auth()
        .register_user("twice@example.com", "s3cret-pass")
        .await
        .unwrap();
    for _ in 0..2 {
        user.link_credentials(Credentials::email_password(
            "twice@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap();
    }
    assert_eq!(user.identities().len(), 2);
    // A wrong password is refused and changes nothing.
    let err = user
        .link_credentials(Credentials::email_password(
            "twice@example.com",
            "wrong-pass",
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err.error_code(),
        Some(ErrorCode::InvalidPassword),
        "{err:?}"
    );
    assert_eq!(user.state(), UserState::LoggedIn);
    // Linked: no longer anonymous, so logging out keeps the user.
    user.log_out().await.unwrap();
    assert_eq!(user.state(), UserState::LoggedOut);
    assert_eq!(app.all_users().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn request_replays_the_same_method_headers_and_body() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = TestServer::start().await;
    let app = app(&server);
    let user = app.log_in(Credentials::anonymous()).await.unwrap();
    let old = user.access_token().unwrap();
    let other = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/echo"))
        .and(header("authorization", format!("Bearer {old}").as_str()))
        .respond_with(ResponseTemplate::new(401))
        .up_to_n_times(1)
        .mount(&other)
        .await;
    Mock::given(method("POST"))
        .and(path("/echo"))
        .respond_with(ResponseTemplate::new(200).set_body_string("done"))
        .mount(&other)
        .await;

    // A later server time, so that the refreshed token differs from the old one.
    server.advance_clock(Duration::from_secs(60));
    let req = http::Request::post(format!("{}/echo?x=1", other.uri()))
        .header("content-type", "application/json")
        .header("x-custom", "kept")
        .body(Bytes::from_static(br#"{"name":"sum","arguments":[1,2]}"#))
        .unwrap();
    let resp = user.request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(&resp.body()[..], b"done");
    let got = other.received_requests().await.unwrap();
    assert_eq!(got.len(), 2);
    let new = user.access_token().unwrap();
    assert_ne!(new, old);
    for (r, token) in got.iter().zip([&old, &new]) {
        assert_eq!(r.url.path(), "/echo");
        assert_eq!(r.url.query(), Some("x=1"));
        assert_eq!(&r.body[..], br#"{"name":"sum","arguments":[1,2]}"#);
        assert_eq!(r.headers.get("x-custom").unwrap(), "kept");
        assert_eq!(
            r.headers.get("authorization").unwrap().to_str().unwrap(),
            format!("Bearer {token}")
        );
        assert_eq!(r.headers.get("accept").unwrap(), "application/json");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_hyper_transport_works_end_to_end() {
    let (server, admin_token) = server_with_admin().await;
    let app = App::builder(server.app_id())
        .base_url(format!("{}/", server.url()))
        .in_memory_store()
        .transport(latchkey_transport_hyper::HyperTransport::new())
        .device_info("e2e-hyper", "0.0.1")
        .build()
        .unwrap();
    let user = register_and_log_in(&app, "hyper@example.com").await;
    assert!(!user.is_anonymous());
    assert_eq!(user.user_type().as_deref(), Some("normal"));
    assert_eq!(user.provider_type().as_deref(), Some("local-userpass"));
    let expires = user.access_token_expires_at().unwrap();
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(
        left > Duration::from_secs(29 * 60) && left <= Duration::from_secs(30 * 60),
        "{left:?}"
    );
    let key = user.api_keys().create("h").await.unwrap();
    assert_eq!(user.api_keys().fetch_all().await.unwrap().len(), 1);
    admin_ok(
        &server,
        &admin_token,
        Method::PUT,
        &format!("/users/{}/custom_data", user.id()),
        Some(json!({ "plan": "hyper", "seats": 1 })),
    )
    .await;
    server.advance_clock(Duration::from_secs(31 * 60));
    user.refresh_profile().await.unwrap();
    assert_eq!(user.custom_data::<Plan>().unwrap().unwrap().plan, "hyper");
    user.api_keys().delete(&key.id).await.unwrap();
    user.log_out().await.unwrap();
    assert_eq!(user.state(), UserState::LoggedOut);
    let err = app
        .log_in(Credentials::email_password(
            "hyper@example.com",
            "nope-nope",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::InvalidPassword));
    server.shutdown().await;
}

#[tokio::test]
async fn later_logins_send_the_device_id_and_device_info() {
    use latchkey::transport::HttpTransport;
    use std::sync::{Arc, Mutex};
    let server = TestServer::start().await;
    let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let log = bodies.clone();
    let inner = Arc::new(ReqwestTransport::new());
    let transport =
        latchkey::transport::transport_fn(move |req: latchkey::transport::HttpRequest, opts| {
            if req.uri().path().ends_with("/login") {
                log.lock()
                    .unwrap()
                    .push(serde_json::from_slice(req.body()).unwrap());
            }
            let inner = inner.clone();
            async move { inner.send(req, &opts).await }
        });
    let app = App::builder(server.app_id())
        .base_url(server.url())
        .in_memory_store()
        .transport(transport)
        .device_info("e2e-app", "9.9.9")
        .build()
        .unwrap();
    let first = app.log_in(Credentials::anonymous()).await.unwrap();
    let device = first.device_id().unwrap();
    let second = register_and_log_in(&app, "dev@example.com").await;
    assert_eq!(second.device_id().as_deref(), Some(device.as_str()));

    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    let d0 = &bodies[0]["options"]["device"];
    let d1 = &bodies[1]["options"]["device"];
    assert!(
        d0.get("deviceId")
            .is_none_or(|v| v.is_null() || v["$oid"] == "000000000000000000000000"),
        "no device id before the first login: {d0}"
    );
    // Sent as an ObjectId in Extended JSON, as realm-core does.
    assert_eq!(d1["deviceId"], json!({ "$oid": device }), "{d1}");
    for d in [d0, d1] {
        assert_eq!(d["appId"], "e2e-app", "{d}");
        assert_eq!(d["appVersion"], "9.9.9", "{d}");
        assert_eq!(d["sdk"], "latchkey", "{d}");
    }
    assert_eq!(bodies[1]["username"], "dev@example.com");
    server.shutdown().await;
}
