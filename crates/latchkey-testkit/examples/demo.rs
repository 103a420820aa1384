//! The latchkey demo: starts the embedded server (with fake Google, Apple and
//! Facebook that sign with real keys) and logs users in through the SDK with
//! every provider.
//!
//! Run it with `cargo xtask demo` (or `cargo run -p latchkey-testkit --example demo`).

use std::time::{Duration, SystemTime};

use latchkey::{App, Credentials, User};
use latchkey_testkit::FullStack;
use serde_json::json;

fn step(n: u32, title: &str) {
    println!("\n[{n}] {title}");
}

fn expires_in(user: &User) -> String {
    match user.access_token_expires_at() {
        Some(at) => match at.duration_since(SystemTime::now()) {
            Ok(left) => format!("access token valid {}s", left.as_secs()),
            Err(_) => "access token expired".to_owned(),
        },
        None => "no access token".to_owned(),
    }
}

fn show(user: &User) {
    let providers: Vec<String> = user
        .identities()
        .iter()
        .map(|i| i.provider_type.clone())
        .collect();
    let profile = user.profile();
    let who = profile
        .email()
        .or(profile.name())
        .map(|s| format!("  {s}"))
        .unwrap_or_default();
    println!(
        "    user {}  {:?}  {}  identities={:?}{}",
        user.id(),
        user.state(),
        expires_in(user),
        providers,
        who
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let db = work.path().join("server.db");
    let store = work.path().join("client-store");

    println!("latchkey demo: the SDK against the embedded latchkey-server, every provider");
    let mut stack =
        FullStack::start_with_database(Some(format!("sqlite://{}", db.display()))).await;
    let app_id = stack.server().app_id().to_owned();
    println!(
        "    server listening on {} (app id {app_id:?}); fake Google, Apple and Facebook running",
        stack.server().url()
    );
    println!("    client user store in {}", store.display());

    let app = App::builder(&app_id)
        .base_url(stack.server().url())
        .storage_dir(&store)
        .build()?;

    step(1, "Anonymous");
    let anon = app.log_in(Credentials::anonymous()).await?;
    show(&anon);
    let again = app.log_in(Credentials::anonymous()).await?;
    println!(
        "    logging in anonymously again reuses the same user: {}",
        again.id() == anon.id()
    );

    step(2, "Email/password: register, log in, and a wrong password");
    let email = "ada@example.com";
    app.email_password_auth()
        .register_user(email, "correct horse battery")
        .await?;
    let ada = app
        .log_in(Credentials::email_password(email, "correct horse battery"))
        .await?;
    show(&ada);
    match app
        .log_in(Credentials::email_password(email, "wrong password"))
        .await
    {
        Ok(_) => anyhow::bail!("the server accepted a wrong password"),
        Err(err) => println!(
            "    wrong password rejected: error_code={:?} status={:?}",
            err.error_code(),
            err.status()
        ),
    }

    step(
        3,
        "API key: Ada creates a user API key, a CLI logs in with it",
    );
    let key = ada.api_keys().create("demo-cli").await?;
    println!("    created key {:?} (secret shown once)", key.name);
    let secret = key
        .key
        .as_ref()
        .expect("the secret is returned on create")
        .expose()
        .to_owned();
    let cli = App::builder(&app_id)
        .base_url(stack.server().url())
        .in_memory_store()
        .build()?;
    let as_ada = cli.log_in(Credentials::api_key(secret)).await?;
    println!(
        "    logged in with the API key as Ada: {}",
        as_ada.id() == ada.id()
    );

    step(4, "Custom JWT (signed by your own auth system)");
    let jwt_user = app
        .log_in(Credentials::jwt(stack.custom_jwt(
            "ext-42",
            "Jay Walker",
            "jay@example.com",
        )))
        .await?;
    show(&jwt_user);

    step(
        5,
        "Custom function (the app's authentication function decides)",
    );
    let fn_user = app
        .log_in(Credentials::function(json!({ "username": "ilovemongodb" })))
        .await?;
    show(&fn_user);

    step(6, "Facebook (access token checked with the Graph API)");
    let fb_user = app
        .log_in(Credentials::facebook(stack.facebook_token(
            "10001",
            "Fay Book",
            "fay@example.com",
        )))
        .await?;
    show(&fb_user);

    step(
        7,
        "Google: an ID token, then a server auth code for the same account",
    );
    let g_user = app
        .log_in(Credentials::google_id_token(stack.google_id_token(
            "g-777",
            "gus@example.com",
            "Gus",
        )))
        .await?;
    show(&g_user);
    let g_again = app
        .log_in(Credentials::google_auth_code(stack.google_auth_code(
            "g-777",
            "gus@example.com",
            "Gus",
        )))
        .await?;
    println!(
        "    auth code logs in the same user: {}",
        g_again.id() == g_user.id()
    );

    step(8, "Sign in with Apple");
    let apple_user = app
        .log_in(Credentials::apple(
            stack.apple_id_token("apple-001", "ann@example.com"),
        ))
        .await?;
    show(&apple_user);

    step(9, "Link an email/password identity to the anonymous user");
    app.switch_user(&anon)?;
    app.email_password_auth()
        .register_user("anon-upgraded@example.com", "correct horse battery")
        .await?;
    anon.link_credentials(Credentials::email_password(
        "anon-upgraded@example.com",
        "correct horse battery",
    ))
    .await?;
    show(&anon);

    step(
        10,
        "Custom user data set by an operator, read after a refresh",
    );
    let admin = reqwest::Client::new();
    let url = format!(
        "{}/admin/v1/apps/{app_id}/users/{}/custom_data",
        stack.server().url(),
        ada.id()
    );
    let resp = admin
        .put(url)
        .bearer_auth(stack.admin_token())
        .json(&json!({ "plan": "pro", "seats": 3 }))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "admin API: {}", resp.status());
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new `iat`, so a new token
    ada.refresh_custom_data().await?;
    let data: Option<serde_json::Value> = ada.custom_data()?;
    println!("    Ada's custom data: {}", data.unwrap_or_default());

    step(11, "Several users on one device");
    for u in app.all_users() {
        show(&u);
    }
    println!(
        "    current user: {}",
        app.current_user()
            .map(|u| u.id().to_owned())
            .unwrap_or_default()
    );

    step(
        12,
        "Stop the server and restart the program: users come back offline",
    );
    app.switch_user(&ada)?;
    stack.stop().await;
    drop(app);
    let offline = App::builder(&app_id)
        .base_url("http://127.0.0.1:9") // nothing listens here: no network is used
        .storage_dir(&store)
        .build()?;
    let restored = offline
        .current_user()
        .expect("current user restored from the file store");
    println!(
        "    restored {} users from disk; current user:",
        offline.all_users().len()
    );
    show(&restored);
    drop(offline);

    step(
        13,
        "Start the server again (new port, same database) and log out",
    );
    stack.restart().await;
    println!("    server listening on {}", stack.server().url());
    let app = App::builder(&app_id)
        .base_url(stack.server().url())
        .storage_dir(&store)
        .build()?;
    let ada = app.current_user().expect("current user");
    let token = ada.valid_access_token().await?;
    println!(
        "    a valid access token ({} bytes) without logging in again",
        token.len()
    );
    ada.log_out().await?;
    println!(
        "    Ada logged out: state={:?}, access token present: {}",
        ada.state(),
        ada.access_token().is_some()
    );
    println!("    users left on this device: {}", app.all_users().len());

    stack.stop().await;
    println!("\nDemo finished: every provider logged in, every step succeeded.");
    Ok(())
}
