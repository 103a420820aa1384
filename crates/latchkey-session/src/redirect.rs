//! The client half of the browser OAuth redirect flow (protocol.md §3.7, route 1c): the
//! query of the `GET .../auth/providers/{provider}/login` URL, and the reading of the
//! fragment the server redirects back with (`_baas_client_app_id`, `_baas_ua`,
//! `_baas_state`, `_baas_error`, `_baas_link`).
//!
//! `_baas_ua` is `access$refresh$user_id$device_id`: the login response. Tokens never
//! appear in an error message.

use latchkey_protocol::routes::form_encode;
use latchkey_protocol::{LoginResponse, Secret};

use crate::error::Error;

/// The providers with a browser sign-in (the OAuth redirect flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedirectProvider {
    /// `oauth2-google`
    Google,
    /// `oauth2-facebook`
    Facebook,
    /// `oauth2-apple`
    Apple,
}

impl RedirectProvider {
    /// The provider's name in routes (`oauth2-google`, ...).
    pub fn name(self) -> &'static str {
        match self {
            RedirectProvider::Google => "oauth2-google",
            RedirectProvider::Facebook => "oauth2-facebook",
            RedirectProvider::Apple => "oauth2-apple",
        }
    }
}

/// `state=..&redirect=..&device=..`: the query of the login URL.
pub(crate) fn login_query(state: &str, redirect: &str, device_b64: &str) -> String {
    form_encode(&[
        ("state", state),
        ("redirect", redirect),
        ("device", device_b64),
    ])
}

/// Read the fragment (without its `#`) the server redirected to: the login response of
/// a sign-in of app `app_id` started with `state`.
///
/// The state is checked first: an answer with another state (or for another app) is
/// [`ErrorKind::StateMismatch`](crate::ErrorKind::StateMismatch), never read further;
/// `_baas_error` is [`ErrorKind::SignInFailed`](crate::ErrorKind::SignInFailed).
pub(crate) fn parse_fragment(
    fragment: &str,
    app_id: &str,
    state: &str,
) -> Result<LoginResponse, Error> {
    let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
    let mut got_state = None;
    let mut error = None;
    let mut user_auth = None;
    let mut client_app = None;
    for pair in fragment.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(value)
            .ok_or_else(|| Error::sign_in_failed("the sign-in result is not well encoded"))?;
        match key {
            "_baas_state" => got_state = Some(value),
            "_baas_error" => error = Some(value),
            "_baas_ua" => user_auth = Some(Secret::from(value)),
            "_baas_client_app_id" => client_app = Some(value),
            _ => {}
        }
    }
    match got_state {
        None => {
            return Err(Error::sign_in_failed(
                "the redirect holds no sign-in result (_baas_state missing)",
            ));
        }
        Some(s) if s != state => {
            return Err(Error::state_mismatch(
                "the redirect's state is not this sign-in's",
            ));
        }
        Some(_) => {}
    }
    if let Some(error) = error {
        return Err(Error::sign_in_failed(error));
    }
    if client_app.as_deref().is_some_and(|a| a != app_id) {
        return Err(Error::state_mismatch("the redirect is for another app"));
    }
    let user_auth =
        user_auth.ok_or_else(|| Error::sign_in_failed("the redirect holds no login (_baas_ua)"))?;
    let parts: Vec<&str> = user_auth.expose().split('$').collect();
    let [access, refresh, user_id, device_id] = parts[..] else {
        return Err(Error::decode(
            "_baas_ua is not access$refresh$user_id$device_id",
            None,
        ));
    };
    if access.is_empty() || refresh.is_empty() || user_id.is_empty() {
        return Err(Error::decode("_baas_ua lacks a token or the user id", None));
    }
    Ok(LoginResponse {
        access_token: Secret::from(access),
        refresh_token: Some(Secret::from(refresh)),
        user_id: user_id.to_owned(),
        device_id: device_id.to_owned(),
    })
}

/// Percent-decode a form value (`+` is a space); `None` for a bad escape or bad UTF-8.
fn decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    const UA: &str = "a.b.c%24r.s.t%24655e9d7b3c1e4a2b9f0d1c2e%24000000000000000000000000";

    #[test]
    fn fragments() {
        let ok = format!("_baas_client_app_id=app-1&_baas_ua={UA}&_baas_state=st%201");
        let login = parse_fragment(&ok, "app-1", "st 1").unwrap();
        assert_eq!(login.access_token.expose(), "a.b.c");
        assert_eq!(login.refresh_token.unwrap().expose(), "r.s.t");
        assert_eq!(login.user_id, "655e9d7b3c1e4a2b9f0d1c2e");
        assert!(parse_fragment(&format!("#{ok}"), "app-1", "st 1").is_ok());

        let kind = |f: &str| parse_fragment(f, "app-1", "st").unwrap_err().kind();
        assert_eq!(kind(&ok), ErrorKind::StateMismatch);
        let other_app = format!("_baas_client_app_id=app-2&_baas_ua={UA}&_baas_state=st");
        assert_eq!(kind(&other_app), ErrorKind::StateMismatch);
        // The state is checked before the error is read.
        assert_eq!(
            kind("_baas_error=x&_baas_state=no"),
            ErrorKind::StateMismatch
        );
        let denied = parse_fragment("_baas_error=Google%3A%20denied&_baas_state=st", "a", "st");
        let denied = denied.unwrap_err();
        assert_eq!(denied.kind(), ErrorKind::SignInFailed);
        assert!(denied.to_string().contains("Google: denied"), "{denied}");
        assert_eq!(kind(""), ErrorKind::SignInFailed);
        assert_eq!(kind("_baas_state=st"), ErrorKind::SignInFailed);
        assert_eq!(kind("_baas_state=st&_baas_ua=%zz"), ErrorKind::SignInFailed);
        assert_eq!(kind("_baas_state=st&_baas_ua=a%24b"), ErrorKind::Decode);
        let secret = parse_fragment("_baas_state=st&_baas_ua=SECRET%24%24u%24d", "a", "st");
        let secret = secret.unwrap_err();
        assert_eq!(secret.kind(), ErrorKind::Decode);
        assert!(!format!("{secret} {secret:?}").contains("SECRET"));
    }

    #[test]
    fn queries() {
        assert_eq!(
            login_query("a b", "http://127.0.0.1:1/cb", "e30="),
            "state=a%20b&redirect=http%3A%2F%2F127.0.0.1%3A1%2Fcb&device=e30%3D"
        );
        assert_eq!(decode("a%2Bb+c").as_deref(), Some("a+b c"));
        assert_eq!(decode("%4"), None);
        assert_eq!(RedirectProvider::Apple.name(), "oauth2-apple");
    }
}
