//! Every provider at once: the real server wired to fake Google, Apple and
//! Facebook (real RSA keys), an in-process custom authentication function and
//! a custom-JWT signing key — for the demo, examples and end-to-end tests.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey_server::config::MetadataField;
use latchkey_server::{CustomFunction, FunctionIdentity};
use serde_json::json;

use crate::idp::{FacebookUser, FakeFacebook, FakeOidc, IdTokenClaims};
use crate::{Config, TestServer};

/// The Google OAuth client id the server expects.
pub const GOOGLE_CLIENT_ID: &str = "latchkey-test.apps.googleusercontent.com";
/// The Google OAuth client secret used for auth-code exchange.
pub const GOOGLE_CLIENT_SECRET: &str = "latchkey-test-google-client-secret";
/// The Apple client id (bundle id) the server expects.
pub const APPLE_CLIENT_ID: &str = "dev.latchkey.test";
/// The Apple client secret (in real life an ES256 client-secret JWT) of the
/// redirect flow's code exchange.
pub const APPLE_CLIENT_SECRET: &str = "latchkey-test-apple-client-secret";

/// A running server with all eight providers on, and the fakes behind them.
#[derive(Debug)]
pub struct FullStack {
    server: Option<TestServer>,
    config: Config,
    /// Fake Google (ID tokens, auth-code exchange).
    pub google: FakeOidc,
    /// Fake Sign in with Apple.
    pub apple: FakeOidc,
    /// Fake Facebook Graph API.
    pub facebook: FakeFacebook,
    jwt_key: String,
    admin_token: String,
}

impl FullStack {
    /// Start the fakes and the server with every provider configured against them.
    ///
    /// The custom function accepts a payload with a non-empty string `username` and
    /// rejects anything else.
    ///
    /// # Panics
    /// If a fake or the server cannot start.
    pub async fn start() -> FullStack {
        Self::start_with_database(None).await
    }

    /// Like [`FullStack::start`], with the server's database at `database`
    /// (e.g. `sqlite:///tmp/x.db`), so that [`FullStack::restart`] keeps its data.
    ///
    /// # Panics
    /// If a fake or the server cannot start.
    pub async fn start_with_database(database: Option<String>) -> FullStack {
        Self::start_with(database, &[]).await
    }

    /// Like [`FullStack::start`], with the browser redirect flow (protocol.md §3.7) of
    /// Google, Facebook and Apple allowing the final redirect URIs `redirect_uris`.
    /// The fakes' consent pages ([`FakeOidc::authorization_url`],
    /// [`FakeFacebook::authorization_url`]) know the server's clients.
    ///
    /// # Panics
    /// If a fake or the server cannot start.
    pub async fn start_with_redirect_uris(redirect_uris: &[String]) -> FullStack {
        Self::start_with(None, redirect_uris).await
    }

    async fn start_with(database: Option<String>, redirect_uris: &[String]) -> FullStack {
        let (google, apple, facebook) =
            tokio::join!(FakeOidc::google(), FakeOidc::apple(), FakeFacebook::start());
        let mut config = TestServer::config();
        if let Some(database) = database {
            config.database = database.into();
        }
        let admin_token = config
            .admin_token
            .clone()
            .expect("the dev configuration has an admin token")
            .into_exposed();
        let app = &mut config.apps[0];
        let p = &mut app.providers;

        p.google.enabled = true;
        p.google.client_id = GOOGLE_CLIENT_ID.to_owned();
        p.google.client_secret = Some(GOOGLE_CLIENT_SECRET.into());
        p.google.jwks_url = google.jwks_url();
        p.google.token_url = google.token_url();
        p.google.issuers = vec![google.issuer().to_owned()];
        p.google.authorization_url = google.authorization_url();
        p.google.redirect_uris = redirect_uris.to_vec();
        google.register_client(GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET);

        p.apple.enabled = true;
        p.apple.client_id = APPLE_CLIENT_ID.to_owned();
        p.apple.jwks_url = apple.jwks_url();
        p.apple.issuer = apple.issuer().to_owned();
        p.apple.client_secret = Some(APPLE_CLIENT_SECRET.into());
        p.apple.authorization_url = apple.authorization_url();
        p.apple.token_url = apple.token_url();
        p.apple.redirect_uris = redirect_uris.to_vec();
        apple.register_client(APPLE_CLIENT_ID, APPLE_CLIENT_SECRET);

        p.facebook.enabled = true;
        p.facebook.app_id = facebook.app_id().to_owned();
        p.facebook.app_secret = facebook.app_secret().into();
        p.facebook.graph_url = facebook.graph_url();
        p.facebook.authorization_url = facebook.authorization_url();
        p.facebook.redirect_uris = redirect_uris.to_vec();

        p.custom_function.enabled = true;
        p.custom_function.function = Some(CustomFunction::new(|payload| async move {
            match payload.get("username").and_then(|u| u.as_str()) {
                Some(name) if !name.is_empty() => {
                    let mut who = FunctionIdentity::new(format!("fn:{name}"));
                    who.name = Some(name.to_owned());
                    Ok(who)
                }
                _ => Err("the payload needs a non-empty \"username\"".to_owned()),
            }
        }));

        p.custom_token.metadata_fields = ["name", "email"]
            .into_iter()
            .map(|field| MetadataField {
                name: field.to_owned(),
                field_name: None,
                required: false,
            })
            .collect();

        let jwt_key = p
            .custom_token
            .signing_keys
            .first()
            .cloned()
            .expect("the dev configuration has a custom-token key")
            .into_exposed();
        let server = TestServer::start_with(config.clone()).await;
        FullStack {
            server: Some(server),
            config,
            google,
            apple,
            facebook,
            jwt_key,
            admin_token,
        }
    }

    /// The running server.
    ///
    /// # Panics
    /// Between [`FullStack::stop`] and [`FullStack::restart`].
    pub fn server(&self) -> &TestServer {
        self.server.as_ref().expect("the server is stopped")
    }

    /// Stop the server (the fakes keep running).
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Start the server again with the same configuration (and database), on a new port.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.server = Some(TestServer::start_with(self.config.clone()).await);
    }

    /// The admin API bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// A custom JWT for `sub`, signed with the app's HS256 key, valid for 10 minutes,
    /// with `name` and `email` claims.
    pub fn custom_jwt(&self, sub: &str, name: &str, email: &str) -> String {
        let now = unix_now();
        let claims = json!({
            "sub": sub, "aud": self.config.apps[0].id, "iat": now, "exp": now + 600,
            "name": name, "email": email,
        });
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(self.jwt_key.as_bytes()).expect("HMAC key"),
        )
        .expect("HS256 signing")
    }

    /// A Google ID token for `sub`.
    pub fn google_id_token(&self, sub: &str, email: &str, name: &str) -> String {
        self.google.id_token(
            &IdTokenClaims::new(sub, GOOGLE_CLIENT_ID)
                .email(email)
                .email_verified(true)
                .name(name),
        )
    }

    /// A single-use Google server auth code for `sub`.
    pub fn google_auth_code(&self, sub: &str, email: &str, name: &str) -> String {
        self.google.auth_code(
            GOOGLE_CLIENT_ID,
            GOOGLE_CLIENT_SECRET,
            &IdTokenClaims::new(sub, GOOGLE_CLIENT_ID)
                .email(email)
                .name(name),
        )
    }

    /// An Apple ID token for `sub`.
    pub fn apple_id_token(&self, sub: &str, email: &str) -> String {
        self.apple
            .id_token(&IdTokenClaims::new(sub, APPLE_CLIENT_ID).email(email))
    }

    /// A Facebook user access token.
    pub fn facebook_token(&self, id: &str, name: &str, email: &str) -> String {
        self.facebook
            .issue_token(FacebookUser::new(id, name).email(email))
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
