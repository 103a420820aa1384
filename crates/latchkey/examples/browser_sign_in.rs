//! Sign in with Google from a desktop or CLI app: the browser, and a loopback redirect.
//!
//! Everything runs on this machine: [`FullStack`] starts the real `latchkey-server` next to
//! a fake Google whose consent page has "Allow" and "Deny" buttons. The server's Google
//! table allows the redirect `http://127.0.0.1/latchkey/callback` (no port: any loopback
//! port, RFC 8252). Open the printed URL in a browser on this machine, click "Allow", and
//! the program prints the signed-in user. In your own program, point `App::builder` at
//! your server, and open the URL with your platform's opener.
//!
//! ```text
//! cargo run -p latchkey --features browser-sign-in --example browser_sign_in
//! ```

use std::time::Duration;

use latchkey::App;
use latchkey::browser::{CALLBACK_PATH, RedirectProvider};
use latchkey_testkit::FullStack;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let allowed = format!("http://127.0.0.1{CALLBACK_PATH}");
    let stack = FullStack::start_with_redirect_uris(&[allowed]).await;
    let app = App::builder(stack.server().app_id())
        .base_url(stack.server().url())
        .in_memory_store()
        .build()?;

    let sign_in = app.browser_sign_in(RedirectProvider::Google).await?;
    println!(
        "Open this URL in a browser on this machine to sign in:\n\n  {}\n",
        sign_in.url()
    );
    // A desktop app opens it itself, e.g. with the `open` or `webbrowser` crate.
    let user = sign_in.finish(Duration::from_secs(300)).await?;

    let profile = user.profile();
    println!(
        "signed in: user {} ({}) with {:?}",
        user.id(),
        profile.email().unwrap_or("-".into()),
        user.provider_type()
    );
    user.refresh_access_token().await?; // the tokens work
    println!("access token refreshed");
    Ok(())
}
