//! Offline restart: users outlive the program and the network.
//!
//! 1. Log in, with the user store in a directory (`storage_dir`).
//! 2. Drop the `App` (the program exits) and stop the server (the network is gone).
//! 3. Build a new `App` on the same directory: the user is back, logged in, with no request.
//!    A failed refresh while offline is a transient error and logs nobody out.
//! 4. Start the server again (same database, new port): the restored session works.
//!
//! Everything runs on `127.0.0.1`, with the embedded server of `latchkey-testkit`.
//!
//! ```text
//! cargo run -p latchkey --example offline_restart
//! ```

use latchkey::{App, Credentials, User};
use latchkey_testkit::FullStack;

/// The user's id, state, email and whether an access token is at hand.
fn show(label: &str, user: &User) {
    let profile = user.profile();
    println!(
        "{label:<10} user {}  {:?}  {}  access token: {}",
        user.id(),
        user.state(),
        profile.email().unwrap_or("-".into()),
        if user.access_token().is_some() {
            "yes"
        } else {
            "no"
        },
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    let users_dir = work.path().join("users"); // the client's store
    let database = format!("sqlite://{}", work.path().join("server.db").display());
    let mut stack = FullStack::start_with_database(Some(database)).await;
    let app_id = stack.server().app_id().to_owned();
    let url = stack.server().url();
    println!(
        "latchkey-server at {url}; users stored in {}\n",
        users_dir.display()
    );

    // 1. Log in; every change is written to <users_dir>/<app id>.users.json at once.
    let app = App::builder(&app_id)
        .base_url(&url)
        .storage_dir(&users_dir)
        .build()?;
    app.email_password_auth()
        .register_user("ada@example.com", "correct horse")
        .await?;
    let ada = app
        .log_in(Credentials::email_password(
            "ada@example.com",
            "correct horse",
        ))
        .await?;
    show("logged in", &ada);

    // 2. The program exits and the server goes away.
    drop(app);
    stack.stop().await;
    println!("\n[program exits, server stopped: nothing listens at {url}]\n");

    // 3. A new program on the same store: the user is restored without any network.
    let app = App::builder(&app_id)
        .base_url(&url)
        .storage_dir(&users_dir)
        .build()?;
    let ada = app.current_user().expect("the current user is restored");
    show("restored", &ada);
    let token = ada.valid_access_token().await?; // still valid: no request needed
    println!(
        "offline: valid_access_token() -> {} bytes from the store",
        token.len()
    );
    match ada.refresh_access_token().await {
        Ok(()) => println!("offline: refresh unexpectedly succeeded"),
        Err(e) => println!(
            "offline: refresh failed, transient={}: {e}",
            e.is_transient()
        ),
    }
    show("still", &ada);
    drop(app);

    // 4. The server is back (same database, new port). The store is keyed by app id, so
    //    pointing the app at the new address keeps its users.
    stack.restart().await;
    let url = stack.server().url();
    println!("\n[server restarted at {url}]\n");
    let app = App::builder(&app_id)
        .base_url(&url)
        .storage_dir(&users_dir)
        .build()?;
    let ada = app.current_user().expect("the current user is restored");
    ada.refresh_access_token().await?; // a new access token from the restored session
    let token = ada.valid_access_token().await?;
    println!(
        "online: refreshed, valid_access_token() -> {} bytes",
        token.len()
    );
    let profile = ada.refresh_profile().await?; // an authenticated request
    println!(
        "online: profile from the server: {}",
        profile.email().unwrap_or("-".into())
    );

    ada.log_out().await?;
    show("logged out", &ada);
    stack.stop().await;
    Ok(())
}
