//! Run the Google sign-in web app.
//!
//! ```text
//! LATCHKEY_URL=http://127.0.0.1:8080 LATCHKEY_APP_ID=myapp-abcde \
//! GOOGLE_CLIENT_ID=1234-web.apps.googleusercontent.com \
//! GOOGLE_REDIRECT_URI=http://127.0.0.1:3000/auth/callback \
//!     cargo run -p google-web-app
//! ```
//!
//! | variable | default |
//! |---|---|
//! | `LATCHKEY_URL` | `http://127.0.0.1:8080` |
//! | `LATCHKEY_APP_ID` | — (required) |
//! | `GOOGLE_CLIENT_ID` | — (required) |
//! | `GOOGLE_REDIRECT_URI` | `http://127.0.0.1:3000/auth/callback` |
//! | `GOOGLE_AUTHORIZE_URL` | Google's (`https://accounts.google.com/o/oauth2/v2/auth`) |
//! | `LISTEN` | `127.0.0.1:3000` |
//!
//! latchkey-server needs Google enabled for the app with the same client id, its client
//! secret, and `redirect_uri` set to `GOOGLE_REDIRECT_URI`.

use std::env;
use std::process::ExitCode;

use google_web_app::{GOOGLE_AUTHORIZE_URL, WebAppConfig, router};

fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}

fn config() -> Result<WebAppConfig, String> {
    let required = |name: &str| var(name).ok_or_else(|| format!("{name} is not set"));
    let config = WebAppConfig::new(
        var("LATCHKEY_URL").unwrap_or_else(|| "http://127.0.0.1:8080".to_owned()),
        required("LATCHKEY_APP_ID")?,
        required("GOOGLE_CLIENT_ID")?,
        var("GOOGLE_REDIRECT_URI")
            .unwrap_or_else(|| "http://127.0.0.1:3000/auth/callback".to_owned()),
    )
    .with_google_authorize_url(
        var("GOOGLE_AUTHORIZE_URL").unwrap_or_else(|| GOOGLE_AUTHORIZE_URL.to_owned()),
    );
    config.validate()?;
    Ok(config)
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("google-web-app: {e} (see the variables in src/main.rs)");
            return ExitCode::from(2);
        }
    };
    let listen = var("LISTEN").unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("google-web-app: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "google-web-app on http://{listen} (latchkey at {}, app {})",
        config.latchkey_url, config.app_id
    );
    match axum::serve(listener, router(config)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("google-web-app: {e}");
            ExitCode::FAILURE
        }
    }
}
