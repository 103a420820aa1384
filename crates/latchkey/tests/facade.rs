//! The facade's API against a scripted in-memory server.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use latchkey::credentials::{Credential, CredentialError, LoginBody};
use latchkey::http::{self, Method};
use latchkey::transport::{
    HttpRequest, HttpResponse, RequestOptions, TransportError, transport_fn,
};
use latchkey::{App, Error, ErrorKind};
use serde_json::{Value, json};

fn jwt(sub: &str, n: usize) -> String {
    let e = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!(
        "{}.{}.sig",
        e(json!({"alg": "HS256"})),
        e(json!({"sub": sub, "iat": now, "exp": now + 1800, "n": n}))
    )
}

type Log = Arc<Mutex<Vec<(Method, String, String)>>>;

fn server(log: Log) -> impl latchkey::transport::HttpTransport + 'static {
    let counter = Arc::new(Mutex::new(0usize));
    transport_fn(move |req: HttpRequest, _o: RequestOptions| {
        let log = log.clone();
        let counter = counter.clone();
        async move {
            let path = req.uri().path().to_owned();
            log.lock().unwrap().push((
                req.method().clone(),
                path.clone(),
                String::from_utf8_lossy(req.body()).into_owned(),
            ));
            let mut n = counter.lock().unwrap();
            *n += 1;
            let (status, body) = if path.ends_with("/location") {
                (200, json!({"hostname": "http://h.test"}))
            } else if path.ends_with("/login") {
                let provider = path.rsplit('/').nth(1).unwrap();
                let uid = format!("{provider}-{n}");
                (
                    200,
                    json!({"access_token": jwt(&uid, *n), "refresh_token": jwt(&uid, *n + 1000),
                    "user_id": uid, "device_id": "65f0c0ffee0000000000abcd"}),
                )
            } else if path.ends_with("/profile") {
                let provider = if !req.headers()["authorization"].to_str().unwrap().is_empty() {
                    // The provider is encoded in the user id (sub) of the token.
                    let token = req.headers()["authorization"].to_str().unwrap()[7..].to_owned();
                    let payload = token.split('.').nth(1).unwrap().to_owned();
                    let claims: Value = serde_json::from_slice(
                        &base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .decode(payload)
                            .unwrap(),
                    )
                    .unwrap();
                    let sub = claims["sub"].as_str().unwrap().to_owned();
                    sub.rsplit_once('-').unwrap().0.to_owned()
                } else {
                    String::new()
                };
                (
                    200,
                    json!({"identities": [{"id": "i", "provider_type": provider}],
                    "data": {"email": "a@b.c"}, "type": "normal"}),
                )
            } else if path.ends_with("/register") {
                (201, json!({}))
            } else {
                (204, Value::Null)
            };
            let mut b = http::Response::builder().status(status);
            let body = if body.is_null() {
                bytes::Bytes::new()
            } else {
                b = b.header("content-type", "application/json");
                bytes::Bytes::from(body.to_string())
            };
            Ok::<HttpResponse, TransportError>(b.body(body).unwrap())
        }
    })
}

fn app(log: &Log) -> App {
    App::builder("myapp-abcde")
        .base_url("http://127.0.0.1:9")
        .in_memory_store()
        .transport(server(log.clone()))
        .build()
        .unwrap()
}

#[cfg(feature = "anonymous")]
#[tokio::test]
async fn anonymous_login_reuse_and_logout() {
    use latchkey::events::UserEvent;
    use latchkey::{Credentials, UserState};
    let log = Log::default();
    let app = app(&log);
    let mut events = app.subscribe();
    let user = app.log_in(Credentials::anonymous()).await.unwrap();
    assert_eq!(user.state(), UserState::LoggedIn);
    assert!(user.access_token().is_some());
    assert_eq!(app.log_in(Credentials::anonymous()).await.unwrap(), user);
    let other = app.log_in(Credentials::anonymous_no_reuse()).await.unwrap();
    assert_ne!(other, user);
    assert_eq!(app.all_users().len(), 2);
    other.log_out().await.unwrap();
    assert_eq!(other.state(), UserState::Removed);
    assert_eq!(app.all_users(), vec![user.clone()]);
    assert_eq!(app.current_user(), Some(user.clone()));
    assert_eq!(
        events.recv().await.unwrap(),
        UserEvent::LoggedIn {
            user_id: user.id().to_owned()
        }
    );
    let login = log
        .lock()
        .unwrap()
        .iter()
        .find(|(_, p, _)| p.ends_with("/login"))
        .cloned()
        .unwrap();
    assert!(login.1.ends_with("/auth/providers/anon-user/login"));
    let body: Value = serde_json::from_str(&login.2).unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "only options: {body}");
}

#[cfg(feature = "email-password")]
#[tokio::test]
async fn email_password_register_and_login() {
    use latchkey::Credentials;
    let log = Log::default();
    let app = app(&log);
    app.email_password_auth()
        .register_user("a@b.c", "Pa55w0rd!")
        .await
        .unwrap();
    let user = app
        .log_in(Credentials::email_password("a@b.c", "Pa55w0rd!"))
        .await
        .unwrap();
    assert_eq!(user.profile().email().as_deref(), Some("a@b.c"));
    assert_eq!(user.identities()[0].provider_type, "local-userpass");
    let log = log.lock().unwrap();
    let reg = log
        .iter()
        .find(|(_, p, _)| p.ends_with("/register"))
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&reg.2).unwrap(),
        json!({"email": "a@b.c", "password": "Pa55w0rd!"})
    );
    let login = log.iter().find(|(_, p, _)| p.ends_with("/login")).unwrap();
    let body: Value = serde_json::from_str(&login.2).unwrap();
    assert_eq!(body["username"], "a@b.c");
    assert_eq!(body["password"], "Pa55w0rd!");
    let c = Credentials::email_password("a@b.c", "Pa55w0rd!");
    assert!(!format!("{c:?}").contains("Pa55w0rd!"));
}

#[derive(Debug)]
struct Magic;
impl Credential for Magic {
    fn provider_name(&self) -> &str {
        "custom-token"
    }
    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        let mut b = LoginBody::new();
        b.insert("token".into(), json!("t"));
        Ok(b)
    }
}

#[derive(Debug)]
struct Broken;
impl Credential for Broken {
    fn provider_name(&self) -> &str {
        "custom-function"
    }
    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        Err(CredentialError::new("payload does not serialize"))
    }
}

#[tokio::test]
async fn third_party_credentials_work() {
    let log = Log::default();
    let app = app(&log);
    let user = app.log_in(Magic).await.unwrap();
    assert_eq!(user.identities()[0].provider_type, "custom-token");
    let err: Error = app.log_in(Broken).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Credential);
    let user2 = app
        .log_in(latchkey::Credentials::custom(Magic))
        .await
        .unwrap();
    assert_ne!(user2, user);
    app.switch_user(&user).unwrap();
    assert_eq!(app.current_user(), Some(user.clone()));
    app.delete_user(&user).await.unwrap();
    assert_eq!(
        app.current_user(),
        Some(user2.clone()),
        "moves to the next logged-in user"
    );
    app.remove_user(&user2).await.unwrap();
    assert!(app.all_users().is_empty());
    assert_eq!(app.current_user(), None);
}

#[test]
fn builder_validates_without_network() {
    let err = App::builder("a").in_memory_store().build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    let err = App::builder("a")
        .base_url("nope")
        .in_memory_store()
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}

#[cfg(feature = "file-store")]
#[tokio::test]
async fn storage_dir_persists_users_across_apps() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let mk = |log: &Log| {
        App::builder("myapp-abcde")
            .base_url("http://127.0.0.1:9")
            .storage_dir(dir.path())
            .transport(server(log.clone()))
            .build()
            .unwrap()
    };
    let user = mk(&log).log_in(Magic).await.unwrap();
    let log2 = Log::default();
    let app2 = mk(&log2);
    let again = app2.current_user().unwrap();
    assert_eq!(again.id(), user.id());
    assert_eq!(again.access_token(), user.access_token());
    assert!(log2.lock().unwrap().is_empty());
    // Pointing the app at another host keeps its users (keyed by app id).
    let app3 = App::builder("myapp-abcde")
        .base_url("http://other.example")
        .storage_dir(dir.path())
        .transport(server(log2.clone()))
        .build()
        .unwrap();
    assert_eq!(app3.all_users().len(), 1);
}

#[cfg(not(any(feature = "reqwest", feature = "hyper")))]
#[test]
fn no_transport_is_a_config_error() {
    let err = App::builder("a")
        .base_url("http://x")
        .in_memory_store()
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}

/// Futures of the public API are `Send` (they can be spawned), and the error works with `?`
/// into boxed errors.
#[allow(dead_code)]
fn public_futures_are_send(app: App, user: latchkey::User) {
    fn send<T: Send>(_: T) {}
    fn send_sync_static<T: Send + Sync + 'static>() {}
    send(app.log_in(Magic));
    send(app.remove_user(&user));
    send(app.delete_user(&user));
    send(user.valid_access_token());
    send(user.refresh_access_token());
    send(user.refresh_custom_data());
    send(user.refresh_profile());
    send(user.log_out());
    send(user.request(http::Request::new(bytes::Bytes::new())));
    #[cfg(feature = "email-password")]
    send(app.email_password_auth().register_user("a", "b"));
    send_sync_static::<Error>();
    send_sync_static::<App>();
    send_sync_static::<latchkey::User>();
    let _boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Error::not_logged_in("x"));
}
