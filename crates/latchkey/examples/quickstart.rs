//! Quickstart: log in with each of the eight providers.
//!
//! Everything runs on this machine: [`FullStack`] starts the real `latchkey-server` on
//! `127.0.0.1` with every provider on, next to fake Google, Apple and Facebook servers
//! that sign with real keys. In your own program only the `App::builder(..)` line changes:
//! point it at your server.
//!
//! ```text
//! cargo run -p latchkey --example quickstart
//! ```
//!
//! The longer, narrated tour (linking, custom data, several users, offline start) is
//! `cargo run -p latchkey-testkit --example demo`.

use latchkey::{App, Credentials, User};
use latchkey_testkit::FullStack;
use serde_json::json;

/// One line per login: provider, user id, and the name or email the provider gave.
fn show(provider: &str, user: &User) {
    let profile = user.profile();
    let who = profile.email().or(profile.name()).unwrap_or("-".into());
    println!("{provider:<16} user {}  {who}", user.id());
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stack = FullStack::start().await; // the server and the fake identity providers
    println!("latchkey-server at {}\n", stack.server().url());

    let app = App::builder(stack.server().app_id())
        .base_url(stack.server().url())
        .in_memory_store() // the default store is a file: users survive restarts
        .build()?;

    let anon = app.log_in(Credentials::anonymous()).await?;
    show("anonymous", &anon);

    let auth = app.email_password_auth();
    auth.register_user("ada@example.com", "correct horse")
        .await?;
    let ada = app
        .log_in(Credentials::email_password(
            "ada@example.com",
            "correct horse",
        ))
        .await?;
    show("email/password", &ada);

    // An API key belongs to a user; its secret is shown once, when it is created.
    let key = ada.api_keys().create("quickstart").await?;
    let secret = key
        .key
        .as_ref()
        .expect("shown on create")
        .expose()
        .to_owned();
    show(
        "api key (ada)",
        &app.log_in(Credentials::api_key(secret)).await?,
    );

    // Tokens from your own auth system, the app's auth function, and the big providers.
    let jwt = stack.custom_jwt("ext-42", "Jay Walker", "jay@example.com");
    show("custom JWT", &app.log_in(Credentials::jwt(jwt)).await?);

    let payload = json!({ "username": "ilovemongodb" });
    show(
        "custom function",
        &app.log_in(Credentials::function(payload)).await?,
    );

    let fb = stack.facebook_token("10001", "Fay Book", "fay@example.com");
    show("facebook", &app.log_in(Credentials::facebook(fb)).await?);

    let code = stack.google_auth_code("g-777", "gus@example.com", "Gus");
    show(
        "google",
        &app.log_in(Credentials::google_auth_code(code)).await?,
    );

    let apple = stack.apple_id_token("apple-001", "ann@example.com");
    show("apple", &app.log_in(Credentials::apple(apple)).await?);

    // Every login stays on this device; the last one is the current user.
    let current = app.current_user().expect("someone is logged in");
    println!(
        "\n{} users on this device, current: {}",
        app.all_users().len(),
        current.id()
    );

    // A valid access token for your own API calls (refreshed first if about to expire).
    let token = ada.valid_access_token().await?;
    println!("ada's access token: {} bytes", token.len());

    ada.log_out().await?;
    println!(
        "ada logged out: {:?}, has an access token: {}",
        ada.state(),
        ada.access_token().is_some()
    );
    Ok(())
}
