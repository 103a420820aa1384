//! The provider half of the browser OAuth redirect flow (protocol.md §3.7): where a
//! provider's authorization endpoint is, which redirect URIs an app allows, and how an
//! authorization code becomes the credential body the provider already verifies
//! (`{id_token}` for Google and Apple, `{accessToken}` for Facebook).
//!
//! The code exchange is in [`super::exchange`]; the rules of the flow (state,
//! linking, the final redirect) live in `auth::oauth`.
//! Codes, secrets, verifiers and tokens never appear in a message or log.

use latchkey_protocol::Secret;

use crate::settings::{ConfigError, check_url, invalid};

/// How an authorization code is exchanged.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Exchange<'c> {
    /// An OpenID Connect token endpoint (Google, Apple): `POST` form
    /// `grant_type=authorization_code`; the answer's `id_token` is the credential.
    IdToken {
        /// The token endpoint.
        token_url: &'c str,
        /// The client secret (Apple: the client-secret JWT).
        client_secret: &'c Secret,
    },
    /// Facebook: `GET {graph_url}/oauth/access_token`; the answer's `access_token` is
    /// the credential.
    Facebook {
        /// The Graph API base URL.
        graph_url: &'c str,
        /// The App Secret.
        app_secret: &'c Secret,
    },
}

/// One provider's redirect flow, as an app configured it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RedirectFlow<'c> {
    /// Message prefix: "Google", "Facebook", "Apple".
    pub(crate) label: &'static str,
    /// The provider's authorization endpoint.
    pub(crate) authorization_url: &'c str,
    /// The OAuth client id.
    pub(crate) client_id: &'c str,
    /// The scopes asked for.
    pub(crate) scope: &'static str,
    /// Whether the provider takes PKCE (S256).
    pub(crate) pkce: bool,
    /// Whether the provider answers with a form POST (Apple's `response_mode=form_post`).
    pub(crate) form_post: bool,
    /// The app's allowed final redirect URIs (exact match).
    pub(crate) redirect_uris: &'c [String],
    /// How the code is exchanged.
    pub(crate) exchange: Exchange<'c>,
}

impl RedirectFlow<'_> {
    /// Whether `uri` is one of the app's redirect URIs: byte for byte, scheme, host,
    /// port, path, query and trailing slash included (as App Services compared them).
    ///
    /// One rule more, for native apps (RFC 8252 §7.3, a loopback listener on a port the
    /// OS picks): an entry on the loopback IP literal **without a port**,
    /// `http://127.0.0.1/path` or `http://[::1]/path`, allows that same URI with any
    /// port (`http://127.0.0.1:49152/path`); the rest still matches byte for byte.
    pub(crate) fn allows_redirect(&self, uri: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|allowed| allowed == uri || loopback_any_port(allowed, uri))
    }

    /// The authorization URL the browser is sent to.
    pub(crate) fn authorization_request(
        &self,
        callback: &str,
        state: &str,
        code_challenge: Option<&str>,
    ) -> String {
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", self.client_id),
            ("redirect_uri", callback),
            ("scope", self.scope),
            ("state", state),
        ];
        if self.form_post {
            query.push(("response_mode", "form_post"));
        }
        if let Some(challenge) = code_challenge {
            query.push(("code_challenge", challenge));
            query.push(("code_challenge_method", "S256"));
        }
        let sep = if self.authorization_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}{}", self.authorization_url, form_encode(&query))
    }
}

/// Whether `allowed` is a loopback entry without a port (`http://127.0.0.1/...` or
/// `http://[::1]/...`) and `uri` is the same with a port (1-65535, plain digits).
fn loopback_any_port(allowed: &str, uri: &str) -> bool {
    ["http://127.0.0.1", "http://[::1]"].iter().any(|host| {
        let (Some(rest), Some(with_port)) = (allowed.strip_prefix(host), uri.strip_prefix(host))
        else {
            return false;
        };
        let Some(with_port) = with_port.strip_prefix(':') else {
            return false;
        };
        let digits = with_port.bytes().take_while(u8::is_ascii_digit).count();
        rest.starts_with('/')
            && (1..=5).contains(&digits)
            && !with_port.starts_with('0')
            && with_port[..digits].parse::<u16>().is_ok()
            && &with_port[digits..] == rest
    })
}

pub(crate) use latchkey_protocol::routes::form_encode;

/// Check an app's `redirect_uris` (and, when there are some, that the flow's other
/// settings are present: `needs` names a missing one).
pub(crate) fn check_redirect_uris(
    app: &str,
    provider: &str,
    uris: &[String],
    needs: Option<&str>,
) -> Result<(), ConfigError> {
    if uris.is_empty() {
        return Ok(());
    }
    if let Some(missing) = needs {
        return invalid(
            app,
            provider,
            format!("redirect_uris (the browser redirect flow) needs {missing}"),
        );
    }
    for uri in uris {
        check_url(app, provider, "redirect_uris", uri)?;
        if uri.contains('#') {
            return invalid(app, provider, "a redirect URI must not hold a fragment (#)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_urls_and_allow_list() {
        let secret = Secret::from("s");
        let uris = vec!["http://127.0.0.1:3000/cb".to_owned()];
        let flow = RedirectFlow {
            label: "Google",
            authorization_url: "https://idp.example/auth",
            client_id: "id 1",
            scope: "openid email",
            pkce: true,
            form_post: true,
            redirect_uris: &uris,
            exchange: Exchange::IdToken {
                token_url: "https://idp.example/token",
                client_secret: &secret,
            },
        };
        let url = flow.authorization_request("http://s/cb?x", "st", Some("ch"));
        assert_eq!(
            url,
            "https://idp.example/auth?response_type=code&client_id=id%201&\
             redirect_uri=http%3A%2F%2Fs%2Fcb%3Fx&scope=openid%20email&state=st&\
             response_mode=form_post&code_challenge=ch&code_challenge_method=S256"
        );
        assert!(flow.allows_redirect("http://127.0.0.1:3000/cb"));
        for other in [
            "http://127.0.0.1:3000/cb/",
            "http://127.0.0.1:3000/CB",
            "https://127.0.0.1:3000/cb",
            "http://127.0.0.1:3000/cb?x=1",
            "http://127.0.0.1:3001/cb",
            "",
        ] {
            assert!(!flow.allows_redirect(other), "{other}");
        }
        assert!(check_redirect_uris("a", "p", &uris, None).is_ok());

        // Loopback entries without a port allow any port (RFC 8252 §7.3), nothing else.
        let uris = vec![
            "http://127.0.0.1/cb".to_owned(),
            "http://[::1]/native?x=1".to_owned(),
            "http://localhost/cb".to_owned(),
        ];
        let native = RedirectFlow {
            redirect_uris: &uris,
            ..flow
        };
        for ok in [
            "http://127.0.0.1/cb",
            "http://127.0.0.1:1/cb",
            "http://127.0.0.1:49152/cb",
            "http://127.0.0.1:65535/cb",
            "http://[::1]:8080/native?x=1",
            "http://localhost/cb",
        ] {
            assert!(native.allows_redirect(ok), "{ok}");
        }
        for other in [
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:065/cb",
            "http://127.0.0.1:65536/cb",
            "http://127.0.0.1:/cb",
            "http://127.0.0.1:80/cb/",
            "http://127.0.0.1:80/cb?x",
            "http://127.0.0.1:80/cb#f",
            "http://127.0.0.1:80@evil.example/cb",
            "http://127.0.0.1:80.evil.example/cb",
            "https://127.0.0.1:80/cb",
            "http://127.0.0.2:80/cb",
            "http://[::1]:80/native",
            "http://localhost:80/cb",
        ] {
            assert!(!native.allows_redirect(other), "{other}");
        }
        assert!(check_redirect_uris("a", "p", &uris, Some("client_secret")).is_err());
        assert!(check_redirect_uris("a", "p", &["/relative".to_owned()], None).is_err());
        assert!(check_redirect_uris("a", "p", &["http://a/#f".to_owned()], None).is_err());
        assert!(check_redirect_uris("a", "p", &[], Some("x")).is_ok());
    }
}
