//! The latchkey demo: starts the embedded server and logs users in through the SDK.
//!
//! Run it with `cargo xtask demo` (or `cargo run -p latchkey-testkit --example demo`).

use std::time::{Duration, SystemTime};

use latchkey::{App, Credentials, User};
use latchkey_testkit::TestServer;

fn step(n: u32, title: &str) {
    println!("\n[{n}] {title}");
}

fn expires_in(user: &User) -> String {
    match user.access_token_expires_at() {
        Some(at) => match at.duration_since(SystemTime::now()) {
            Ok(left) => format!("expires in {}s", left.as_secs()),
            Err(_) => "expired".to_owned(),
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
    println!(
        "    user {}  state={:?}  identities={:?}  access token {}",
        user.id(),
        user.state(),
        providers,
        expires_in(user)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let db = work.path().join("server.db");
    let store = work.path().join("client-store");

    println!("latchkey demo: the SDK against the embedded latchkey-server");
    let mut config = TestServer::config();
    config.database = format!("sqlite://{}", db.display());
    let server = TestServer::start_with(config.clone()).await;
    println!(
        "    server listening on {} (app id {:?})",
        server.url(),
        server.app_id()
    );
    println!("    client user store in {}", store.display());

    let app = App::builder(server.app_id())
        .base_url(server.url())
        .storage_dir(&store)
        .build()?;

    step(1, "Log in anonymously");
    let anon = app.log_in(Credentials::anonymous()).await?;
    show(&anon);
    let again = app.log_in(Credentials::anonymous()).await?;
    println!(
        "    logging in anonymously again reuses the same user: {}",
        again.id() == anon.id()
    );

    step(2, "Register and log in with email/password");
    let email = "ada@example.com";
    app.email_password_auth()
        .register_user(email, "correct horse battery")
        .await?;
    println!("    registered {email}");
    let ada = app
        .log_in(Credentials::email_password(email, "correct horse battery"))
        .await?;
    show(&ada);
    println!("    profile email: {:?}", ada.profile().email());

    step(3, "A wrong password is a typed error, not a panic");
    match app
        .log_in(Credentials::email_password(email, "wrong password"))
        .await
    {
        Ok(_) => anyhow::bail!("the server accepted a wrong password"),
        Err(err) => println!(
            "    rejected: error_code={:?} status={:?} ({err})",
            err.error_code(),
            err.status()
        ),
    }

    step(4, "Refresh the access token");
    let before = ada.access_token();
    tokio::time::sleep(Duration::from_millis(1100)).await; // new `iat`, new token
    ada.refresh_access_token().await?;
    println!(
        "    new access token issued: {}",
        before != ada.access_token()
    );
    show(&ada);

    step(5, "Several users per app");
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
        6,
        "Stop the server and restart the program: users come back offline",
    );
    server.shutdown().await;
    drop(app);
    let offline = App::builder(config.apps[0].id.clone())
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
        7,
        "Start the server again (new port, same database) and log out",
    );
    let server = TestServer::start_with(config).await;
    println!("    server listening on {}", server.url());
    let app = App::builder(server.app_id())
        .base_url(server.url())
        .storage_dir(&store)
        .build()?;
    let ada = app.current_user().expect("current user");
    let token = ada.valid_access_token().await?;
    println!(
        "    valid access token obtained ({} bytes), refresh token still good",
        token.len()
    );
    ada.log_out().await?;
    println!(
        "    logged out: state={:?}, access token present: {}",
        ada.state(),
        ada.access_token().is_some()
    );
    let anon = app
        .all_users()
        .into_iter()
        .find(|u| u.id() == anon.id())
        .expect("anonymous user still known");
    anon.log_out().await?;
    println!(
        "    anonymous user logged out and removed: state={:?}",
        anon.state()
    );
    println!("    users left on this device: {}", app.all_users().len());

    server.shutdown().await;
    println!("\nDemo finished: every step succeeded.");
    Ok(())
}
