//! A third-party credential: a type outside latchkey implements [`latchkey::credentials::Credential`]
//! and logs in with `app.log_in(..)`, with no change to latchkey.
//!
//! This one logs in through the app's custom authentication function (provider
//! `custom-function`) with an employee badge id and a one-time code; the function decides
//! who the user is.
//!
//! ```text
//! LATCHKEY_URL=http://127.0.0.1:8080 LATCHKEY_APP_ID=latchkey-dev \
//!     cargo run -p latchkey --example custom_credential
//! ```
//!
//! Without `LATCHKEY_URL` it shows the keys of the login body it would send and exits.

use std::fmt;

use latchkey::App;
use latchkey::credentials::{Credential, CredentialError, LoginBody};
use serde_json::json;

/// Badge id plus a one-time code. The code is a secret: it never appears in `Debug`.
struct BadgeCredential {
    badge_id: String,
    one_time_code: String,
}

impl fmt::Debug for BadgeCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BadgeCredential")
            .field("badge_id", &self.badge_id)
            .field("one_time_code", &"<redacted>")
            .finish()
    }
}

impl Credential for BadgeCredential {
    fn provider_name(&self) -> &str {
        "custom-function"
    }

    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        if self.one_time_code.len() != 6 {
            return Err(CredentialError::new("the one-time code must have 6 digits"));
        }
        let mut body = LoginBody::new();
        body.insert("badgeId".into(), json!(self.badge_id));
        body.insert("code".into(), json!(self.one_time_code));
        Ok(body)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let credential = BadgeCredential {
        badge_id: "B-1042".into(),
        one_time_code: "314159".into(),
    };
    println!("credential: {credential:?}");

    let Ok(url) = std::env::var("LATCHKEY_URL") else {
        let body = credential.login_body()?;
        let keys: Vec<&String> = body.keys().collect();
        println!(
            "LATCHKEY_URL is not set; the login body would have the keys {keys:?} (plus options)."
        );
        println!(
            "Start a server (`latchkey-server dev --port 8080`, see docs/server.md) and set LATCHKEY_URL (and LATCHKEY_APP_ID=latchkey-dev) to log in."
        );
        return Ok(());
    };
    let app_id = std::env::var("LATCHKEY_APP_ID").unwrap_or_else(|_| "latchkey-dev".into());
    let app = App::builder(app_id)
        .base_url(url)
        .in_memory_store()
        .build()?;
    match app.log_in(credential).await {
        Ok(user) => {
            println!("logged in as {} ({:?})", user.id(), user.identities());
            user.log_out().await?;
        }
        Err(e) => println!("login failed: {e}"),
    }
    Ok(())
}
