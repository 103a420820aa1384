//! A user-written transport: it wraps latchkey's reqwest transport and adds a header to
//! every request (here a tenant id for a reverse proxy), then hands it to the
//! [`App`](latchkey::App) with `AppBuilder::transport`.
//!
//! ```text
//! LATCHKEY_URL=http://127.0.0.1:8080 LATCHKEY_APP_ID=latchkey-dev \
//!     cargo run -p latchkey --example custom_transport
//! ```
//!
//! Without `LATCHKEY_URL` it explains itself and exits.

use latchkey::http::HeaderValue;
use latchkey::transport::ReqwestTransport;
use latchkey::transport::{
    HttpRequest, HttpResponse, HttpTransport, RequestOptions, TransportError,
};
use latchkey::{App, Credentials};

/// Adds `X-Tenant: <tenant>` to every request, then delegates to reqwest.
#[derive(Debug)]
struct TenantHeader {
    inner: ReqwestTransport,
    tenant: HeaderValue,
}

#[latchkey::async_trait]
impl HttpTransport for TenantHeader {
    async fn send(
        &self,
        mut request: HttpRequest,
        options: &RequestOptions,
    ) -> Result<HttpResponse, TransportError> {
        request
            .headers_mut()
            .insert("x-tenant", self.tenant.clone());
        let response = self.inner.send(request, options).await?;
        // Never log request headers: they carry tokens. Status and path are fine.
        eprintln!("attempt {} -> {}", options.attempt(), response.status());
        Ok(response)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let transport = TenantHeader {
        inner: ReqwestTransport::new(),
        tenant: HeaderValue::from_static("acme"),
    };
    let Ok(url) = std::env::var("LATCHKEY_URL") else {
        println!("LATCHKEY_URL is not set; built {transport:?}.");
        println!(
            "Start a server (`latchkey-server dev --port 8080`, see docs/server.md) and set LATCHKEY_URL (and LATCHKEY_APP_ID=latchkey-dev) to try it."
        );
        return Ok(());
    };
    let app_id = std::env::var("LATCHKEY_APP_ID").unwrap_or_else(|_| "latchkey-dev".into());
    let app = App::builder(app_id)
        .base_url(url)
        .in_memory_store()
        .transport(transport)
        .build()?;
    #[cfg(feature = "anonymous")]
    {
        let user = app.log_in(Credentials::anonymous()).await?;
        println!("logged in anonymously as {}", user.id());
        user.log_out().await?;
    }
    #[cfg(not(feature = "anonymous"))]
    {
        let _ = (&app, std::any::type_name::<Credentials>());
        println!("enable the `anonymous` feature to log in");
    }
    Ok(())
}
