//! Route paths and a URL builder.
//!
//! The path constants use axum's `{param}` syntax so that the server can mount
//! them directly; [`Routes`] fills them in for clients.

/// Prefix of every client route.
pub const API_PREFIX: &str = "/api/client/v2.0";

/// Route paths (after the host), with `{app_id}`, `{provider}` and `{key_id}` placeholders.
pub mod paths {
    /// `GET` location.
    pub const LOCATION: &str = "/api/client/v2.0/app/{app_id}/location";
    /// `POST` login (`?link=true` to link); `GET` starts the browser OAuth redirect
    /// flow (`?state&redirect&device`, or `?link=true&providerRedirectHeader=true`).
    pub const LOGIN: &str = "/api/client/v2.0/app/{app_id}/auth/providers/{provider}/login";
    /// `GET` (or `POST`, Apple's `form_post`): where an identity provider sends the
    /// browser back in the OAuth redirect flow.
    pub const OAUTH_CALLBACK: &str = "/api/client/v2.0/auth/callback";
    /// `POST` refresh / `DELETE` log out, refresh-token bearer.
    pub const SESSION: &str = "/api/client/v2.0/auth/session";
    /// `GET` profile, access-token bearer.
    pub const PROFILE: &str = "/api/client/v2.0/auth/profile";
    /// `DELETE` the user, access-token bearer.
    pub const DELETE_USER: &str = "/api/client/v2.0/auth/delete";
    /// `POST` create / `GET` list user API keys, refresh-token bearer.
    pub const API_KEYS: &str = "/api/client/v2.0/auth/api_keys";
    /// `GET` / `DELETE` one user API key.
    pub const API_KEY: &str = "/api/client/v2.0/auth/api_keys/{key_id}";
    /// `PUT` enable a user API key.
    pub const API_KEY_ENABLE: &str = "/api/client/v2.0/auth/api_keys/{key_id}/enable";
    /// `PUT` disable a user API key.
    pub const API_KEY_DISABLE: &str = "/api/client/v2.0/auth/api_keys/{key_id}/disable";
    /// Email/password routes: this prefix plus an [`super::EmailPasswordRoute`] suffix.
    pub const LOCAL_USERPASS: &str = "/api/client/v2.0/app/{app_id}/auth/providers/local-userpass";
    /// `POST` register.
    pub const REGISTER: &str =
        "/api/client/v2.0/app/{app_id}/auth/providers/local-userpass/register";
    /// `POST` confirm.
    pub const CONFIRM: &str = "/api/client/v2.0/app/{app_id}/auth/providers/local-userpass/confirm";
    /// `POST` resend the confirmation email.
    pub const CONFIRM_SEND: &str =
        "/api/client/v2.0/app/{app_id}/auth/providers/local-userpass/confirm/send";
    /// `POST` retry the custom confirmation function.
    pub const CONFIRM_CALL: &str =
        "/api/client/v2.0/app/{app_id}/auth/providers/local-userpass/confirm/call";
    /// `POST` reset the password with a token pair.
    pub const RESET: &str = "/api/client/v2.0/app/{app_id}/auth/providers/local-userpass/reset";
    /// `POST` send a reset email.
    pub const RESET_SEND: &str =
        "/api/client/v2.0/app/{app_id}/auth/providers/local-userpass/reset/send";
    /// `POST` call the reset function.
    pub const RESET_CALL: &str =
        "/api/client/v2.0/app/{app_id}/auth/providers/local-userpass/reset/call";
    /// `GET` the app's JSON Web Key Set: the public keys that verify its access tokens
    /// (empty for an app that signs with HS256). A latchkey extension.
    pub const JWKS: &str = "/api/client/v2.0/app/{app_id}/.well-known/jwks.json";
    /// `GET` a minimal OpenID discovery document naming [`JWKS`] as `jwks_uri`. A
    /// latchkey extension.
    pub const OPENID_CONFIGURATION: &str =
        "/api/client/v2.0/app/{app_id}/.well-known/openid-configuration";
}

/// The seven email/password routes under `.../providers/local-userpass/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmailPasswordRoute {
    /// `register`
    Register,
    /// `confirm`
    Confirm,
    /// `confirm/send`
    ConfirmSend,
    /// `confirm/call`
    ConfirmCall,
    /// `reset`
    Reset,
    /// `reset/send`
    ResetSend,
    /// `reset/call`
    ResetCall,
}

impl EmailPasswordRoute {
    /// The suffix after `local-userpass/`.
    pub const fn suffix(self) -> &'static str {
        match self {
            EmailPasswordRoute::Register => "register",
            EmailPasswordRoute::Confirm => "confirm",
            EmailPasswordRoute::ConfirmSend => "confirm/send",
            EmailPasswordRoute::ConfirmCall => "confirm/call",
            EmailPasswordRoute::Reset => "reset",
            EmailPasswordRoute::ResetSend => "reset/send",
            EmailPasswordRoute::ResetCall => "reset/call",
        }
    }

    /// The route template, one of the [`paths`] constants (e.g. [`paths::REGISTER`]).
    pub const fn path(self) -> &'static str {
        match self {
            EmailPasswordRoute::Register => paths::REGISTER,
            EmailPasswordRoute::Confirm => paths::CONFIRM,
            EmailPasswordRoute::ConfirmSend => paths::CONFIRM_SEND,
            EmailPasswordRoute::ConfirmCall => paths::CONFIRM_CALL,
            EmailPasswordRoute::Reset => paths::RESET,
            EmailPasswordRoute::ResetSend => paths::RESET_SEND,
            EmailPasswordRoute::ResetCall => paths::RESET_CALL,
        }
    }
}

/// Builds absolute URLs from a host (the base URL, or the location's `hostname`)
/// and an app id.
///
/// A trailing `/` on the host is trimmed, as realm-core does.
///
/// ```
/// use latchkey_protocol::routes::Routes;
/// let r = Routes::new("https://auth.example.org/", "app-1");
/// assert_eq!(r.session(), "https://auth.example.org/api/client/v2.0/auth/session");
/// assert_eq!(r.location(), "https://auth.example.org/api/client/v2.0/app/app-1/location");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    host: String,
    app_id: String,
}

impl Routes {
    /// Routes for `app_id` on `host`.
    pub fn new(host: impl Into<String>, app_id: impl Into<String>) -> Self {
        let mut host = host.into();
        while host.ends_with('/') {
            host.pop();
        }
        Routes {
            host,
            app_id: app_id.into(),
        }
    }

    /// The host, without a trailing slash.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    fn app_root(&self) -> String {
        format!("{}{}/app/{}", self.host, API_PREFIX, self.app_id)
    }

    /// `GET .../app/{app_id}/location`.
    pub fn location(&self) -> String {
        format!("{}/location", self.app_root())
    }

    /// `POST .../app/{app_id}/auth/providers/{provider}/login[?link=true]`.
    pub fn login(&self, provider: &str, link: bool) -> String {
        let mut url = format!("{}/auth/providers/{}/login", self.app_root(), provider);
        if link {
            url.push_str("?link=true");
        }
        url
    }

    /// `.../auth/session` (refresh with POST, log out with DELETE).
    pub fn session(&self) -> String {
        format!("{}{}", self.host, paths::SESSION)
    }

    /// `GET .../auth/profile`.
    pub fn profile(&self) -> String {
        format!("{}{}", self.host, paths::PROFILE)
    }

    /// `DELETE .../auth/delete`.
    pub fn delete_user(&self) -> String {
        format!("{}{}", self.host, paths::DELETE_USER)
    }

    /// `.../auth/api_keys`.
    pub fn api_keys(&self) -> String {
        format!("{}{}", self.host, paths::API_KEYS)
    }

    /// `.../auth/api_keys/{key_id}`.
    pub fn api_key(&self, key_id: &str) -> String {
        format!("{}/{}", self.api_keys(), key_id)
    }

    /// `PUT .../auth/api_keys/{key_id}/enable` or `/disable`.
    pub fn api_key_enabled(&self, key_id: &str, enable: bool) -> String {
        let action = if enable { "enable" } else { "disable" };
        format!("{}/{}", self.api_key(key_id), action)
    }

    /// `POST .../app/{app_id}/auth/providers/local-userpass/{suffix}`.
    pub fn email_password(&self, route: EmailPasswordRoute) -> String {
        format!(
            "{}/auth/providers/local-userpass/{}",
            self.app_root(),
            route.suffix()
        )
    }

    /// `POST .../app/{app_id}/functions/call`.
    pub fn function_call(&self) -> String {
        format!("{}/functions/call", self.app_root())
    }
}

/// `application/x-www-form-urlencoded` pairs with every byte but RFC 3986's unreserved
/// characters percent-encoded (a space is `%20`): the query of the browser sign-in's login
/// route and the fragment of its final redirect (protocol.md §3.7).
///
/// ```
/// use latchkey_protocol::routes::form_encode;
/// assert_eq!(form_encode(&[("state", "a b"), ("r", "http://h/")]), "state=a%20b&r=http%3A%2F%2Fh%2F");
/// ```
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encode everything but RFC 3986's unreserved characters: safe in a path
/// segment, a query value or a fragment.
///
/// ```
/// use latchkey_protocol::routes::percent_encode;
/// assert_eq!(percent_encode("a b/ü~"), "a%20b%2F%C3%BC~");
/// ```
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(path: &str) -> String {
        path.replace("{app_id}", "a")
            .replace("{provider}", "anon-user")
            .replace("{key_id}", "k")
    }

    #[test]
    fn builder_matches_path_constants() {
        let r = Routes::new("http://h", "a");
        assert_eq!(r.location(), format!("http://h{}", fill(paths::LOCATION)));
        assert_eq!(
            r.login("anon-user", false),
            format!("http://h{}", fill(paths::LOGIN))
        );
        assert_eq!(
            r.login("anon-user", true),
            format!("http://h{}?link=true", fill(paths::LOGIN))
        );
        assert_eq!(r.profile(), format!("http://h{}", fill(paths::PROFILE)));
        assert_eq!(r.api_key("k"), format!("http://h{}", fill(paths::API_KEY)));
        assert_eq!(
            r.api_key_enabled("k", true),
            format!("http://h{}", fill(paths::API_KEY_ENABLE))
        );
        assert_eq!(
            r.api_key_enabled("k", false),
            format!("http://h{}", fill(paths::API_KEY_DISABLE))
        );
        let pairs = [
            (EmailPasswordRoute::Register, paths::REGISTER),
            (EmailPasswordRoute::Confirm, paths::CONFIRM),
            (EmailPasswordRoute::ConfirmSend, paths::CONFIRM_SEND),
            (EmailPasswordRoute::ConfirmCall, paths::CONFIRM_CALL),
            (EmailPasswordRoute::Reset, paths::RESET),
            (EmailPasswordRoute::ResetSend, paths::RESET_SEND),
            (EmailPasswordRoute::ResetCall, paths::RESET_CALL),
        ];
        for (route, path) in pairs {
            assert_eq!(r.email_password(route), format!("http://h{}", fill(path)));
        }
    }

    #[test]
    fn email_password_templates_match_their_suffixes() {
        for route in [
            EmailPasswordRoute::Register,
            EmailPasswordRoute::Confirm,
            EmailPasswordRoute::ConfirmSend,
            EmailPasswordRoute::ConfirmCall,
            EmailPasswordRoute::Reset,
            EmailPasswordRoute::ResetSend,
            EmailPasswordRoute::ResetCall,
        ] {
            assert_eq!(
                route.path(),
                format!("{}/{}", paths::LOCAL_USERPASS, route.suffix())
            );
        }
    }

    #[test]
    fn trailing_slashes_trimmed_and_path_prefix_kept() {
        let r = Routes::new("https://proxy.example/auth//", "x");
        assert_eq!(
            r.session(),
            "https://proxy.example/auth/api/client/v2.0/auth/session"
        );
    }
}
