//! The server with fake Google, Facebook and Apple (consent pages included) for the
//! browser sign-in suite (`tests/compat/browser_oauth.js`).
//!
//! `cargo run -p latchkey-testkit --example oauth_stack -- <redirect URI>...` prints
//! one JSON line `{"url","app_id"}` and serves until its standard input closes.

use std::io::Read as _;

use latchkey_testkit::FullStack;

#[tokio::main]
async fn main() {
    let redirect_uris: Vec<String> = std::env::args().skip(1).collect();
    if redirect_uris.is_empty() {
        eprintln!("usage: oauth_stack <redirect URI>...");
        std::process::exit(2);
    }
    let stack = FullStack::start_with_redirect_uris(&redirect_uris).await;
    println!(
        "{}",
        serde_json::json!({
            "url": stack.server().url(),
            "app_id": stack.server().app_id(),
        })
    );
    // Serve until the parent closes our stdin (or exits).
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await;
}
