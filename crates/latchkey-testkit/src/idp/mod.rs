//! Fake identity providers (Google, Apple, Facebook) that sign with real keys.
//!
//! Each fake is a small axum server on `127.0.0.1:<free port>`, spawned on the
//! current tokio runtime; its handle exposes the URLs to configure the server
//! under test with and helpers to mint credentials.
//!
//! * [`FakeOidc`] plays Google or Apple: a JWKS endpoint with real RSA-2048 keys,
//!   RS256 ID tokens signed by them, and a Google-style OAuth2 token endpoint that
//!   exchanges server auth codes.
//! * Both have an authorization endpoint with a consent page (`/authorize`, Facebook's
//!   `/dialog/oauth`) that a browser test clicks through, and `approve` / `deny` for a
//!   test without a browser ([`ProviderRedirect`]: where the browser is sent back).
//! * [`FakeFacebook`] plays the Graph API: `debug_token` and `me`, with opaque user
//!   access tokens it issued, can expire and can revoke.
//!
//! The server task stops when the last clone of a handle is dropped (or when the
//! test's runtime shuts down).

mod consent;
mod facebook;
mod keys;
mod oidc;
mod serve;

pub use consent::ProviderRedirect;
pub use facebook::{FacebookUser, FakeFacebook};
pub use oidc::{FakeOidc, IdTokenClaims};
