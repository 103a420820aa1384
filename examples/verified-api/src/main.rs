//! `cargo run -p verified-api`: the example API on `LISTEN` (default
//! `127.0.0.1:3000`), trusting tokens of `LATCHKEY_APP_ID` (default `myapp`) issued by
//! the server at `LATCHKEY_URL` (default `http://127.0.0.1:8080`).

use latchkey_verify::Verifier;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let verifier = Verifier::builder(
        env("LATCHKEY_URL", "http://127.0.0.1:8080"),
        env("LATCHKEY_APP_ID", "myapp"),
    )
    .build();
    let listener = tokio::net::TcpListener::bind(env("LISTEN", "127.0.0.1:3000")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    verified_api::serve(listener, verifier).await
}
