//! `local-userpass`: email/password credentials.
//!
//! Registration, confirmation and password reset are domain flows (`auth::userpass`);
//! this module verifies a login. Registration stores credentials only (pending, or
//! confirmed with `auto_confirm`); the user and its identity come into being at the
//! first login. The identity id is the credential id.

use std::borrow::Cow;

use async_trait::async_trait;
use latchkey_protocol::{LoginBody, ProviderType, Secret};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{Provider, ProviderContext, VerifiedIdentity, required_str};
use crate::error::Error;
use crate::settings::{ConfigError, expose_optional_secret, yes};
use crate::store::{CredentialStatus, Store, UserpassRecord};

/// Longest accepted email address, in bytes (of the canonical form, and of what a
/// client sends).
pub(crate) const MAX_EMAIL_LEN: usize = 254;

/// Why an email address has no canonical form. The messages never echo the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EmailError {
    /// Not `local@domain` with both parts non-empty.
    #[error("email invalid: expected local-part@domain")]
    Shape,
    /// Longer than [`MAX_EMAIL_LEN`] bytes.
    #[error("email invalid: longer than {MAX_EMAIL_LEN} bytes")]
    TooLong,
    /// An invisible, control, format, separator (whitespace), private-use or unassigned
    /// character.
    #[error("email invalid: contains the invisible or control character U+{0:04X}")]
    Forbidden(u32),
    /// The domain is not a valid internationalised domain name.
    #[error("email invalid: the domain is not a valid domain name")]
    Domain,
}

/// The one canonical form of an email address, used for uniqueness, login, the
/// confirmation and reset flows, the outbox and every limit:
///
/// 1. refused (400) if it holds a character of Unicode's general categories `C*`
///    (control `Cc`, format `Cf` such as U+200B ZERO WIDTH SPACE or U+FEFF, surrogate,
///    private use, unassigned) or `Z*` (spaces, line and paragraph separators);
/// 2. NFKC, so that compatibility forms (fullwidth `ａ`, ligatures, superscripts) and
///    the NFD spelling of `café` are the same address as their plain form;
/// 3. the local part lowercased (Unicode), as Firebase Auth and Supabase GoTrue do:
///    mail providers treat local parts case-insensitively, and an address whose case
///    alone made another account is an impersonation, not a second mailbox;
/// 4. the domain through IDNA (UTS 46) to its ASCII (A-label, punycode) form, which also
///    lowercases it: `bücher.example` is `xn--bcher-kva.example`;
/// 5. at most [`MAX_EMAIL_LEN`] bytes.
///
/// The result is its own canonical form (the function is idempotent).
pub(crate) fn canonical_email(raw: &str) -> Result<String, EmailError> {
    use icu_properties::CodePointMapData;
    use icu_properties::props::{GeneralCategory, GeneralCategoryGroup};

    // Bound the work before normalising (NFKC may grow a string up to 18 times).
    if raw.len() > 4 * MAX_EMAIL_LEN {
        return Err(EmailError::TooLong);
    }
    let categories = CodePointMapData::<GeneralCategory>::new();
    let forbidden = |c: char| {
        let category = categories.get(c);
        GeneralCategoryGroup::Other.contains(category)
            || GeneralCategoryGroup::Separator.contains(category)
    };
    if let Some(c) = raw.chars().find(|&c| forbidden(c)) {
        return Err(EmailError::Forbidden(u32::from(c)));
    }
    let nfkc = icu_normalizer::ComposingNormalizerBorrowed::new_nfkc();
    let normalized = nfkc.normalize(raw);
    let (local, domain) = normalized.rsplit_once('@').ok_or(EmailError::Shape)?;
    if local.is_empty() || domain.is_empty() {
        return Err(EmailError::Shape);
    }
    // Lowercasing can leave a string that is not NFKC-stable (U+0130 gives `i` and a
    // combining dot): normalise again.
    let local = nfkc.normalize(&local.to_lowercase()).into_owned();
    let domain = idna::domain_to_ascii_cow(domain.as_bytes(), idna::AsciiDenyList::URL)
        .map_err(|_| EmailError::Domain)?;
    // No empty label: `example..com`, and `example.com.` (the same host as
    // `example.com` in DNS), are refused rather than made a second spelling.
    if domain.split('.').any(str::is_empty) {
        return Err(EmailError::Domain);
    }
    let email = format!("{local}@{domain}");
    if email.len() > MAX_EMAIL_LEN {
        return Err(EmailError::TooLong);
    }
    if let Some(c) = email.chars().find(|&c| forbidden(c)) {
        return Err(EmailError::Forbidden(u32::from(c)));
    }
    Ok(email)
}

impl From<EmailError> for Error {
    fn from(e: EmailError) -> Self {
        Error::bad_request(e.to_string())
    }
}

/// Email/password provider settings (`[apps.providers.local-userpass]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalUserpassConfig {
    /// Whether email/password login and registration are allowed. True when the table is
    /// present and the key is not.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Registered credentials are confirmed at once (development setups).
    #[serde(default)]
    pub auto_confirm: bool,
    /// Confirmation by function: POSTed `{"token","tokenId","username"}` at registration
    /// (and by `confirm/call`); answers `{"status":"success"|"pending"|"fail"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_webhook_url: Option<String>,
    /// Reset by function: POSTed by `reset/call`; `reset/send` is then refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_webhook_url: Option<String>,
    /// HMAC-SHA256 secret signing the two webhooks' requests
    /// (`X-Latchkey-Timestamp: <secs>`, `X-Latchkey-Signature: sha256=<hex HMAC of
    /// "<secs>.<body>">`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_optional_secret"
    )]
    pub webhook_secret: Option<Secret>,
    /// Page the confirmation email links to (`?token=..&tokenId=..` is appended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_url: Option<String>,
    /// Page the password-reset email links to (`?token=..&tokenId=..` is appended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_url: Option<String>,
    /// `From` address of this app's emails (default: `[smtp] from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_from: Option<String>,
}

impl LocalUserpassConfig {
    /// Check the URLs and the webhook secret.
    pub fn validate(&self, app_id: &str) -> Result<(), ConfigError> {
        for (name, url) in [
            ("confirmation_webhook_url", &self.confirmation_webhook_url),
            ("reset_webhook_url", &self.reset_webhook_url),
            ("confirmation_url", &self.confirmation_url),
            ("reset_url", &self.reset_url),
        ] {
            if let Some(url) = url
                && !((url.starts_with("http://") || url.starts_with("https://"))
                    && url.len() > "https://".len()
                    && !url.contains([' ', '#']))
            {
                return Err(ConfigError::Invalid(format!(
                    "app {app_id:?}: local-userpass {name} must be an absolute http(s) URL"
                )));
            }
        }
        if self.webhook_secret.as_ref().is_some_and(Secret::is_empty) {
            return Err(ConfigError::Invalid(format!(
                "app {app_id:?}: local-userpass webhook_secret must not be empty"
            )));
        }
        if let Some(from) = &self.email_from
            && !from.contains('@')
        {
            return Err(ConfigError::Invalid(format!(
                "app {app_id:?}: local-userpass email_from must be an email address"
            )));
        }
        Ok(())
    }
}

/// The credentials an email (as a client wrote it) names: those of its canonical form
/// ([`canonical_email`]), except that a row stored under exactly this spelling comes
/// first. Such rows are an earlier release's, whose canonical form another row already
/// had when the server started (a collision it reported, see
/// `auth::userpass::canonicalize_stored_emails`): each stays reachable by the spelling
/// it was registered with until an operator resolves the collision. An address without
/// a canonical form that names no stored row is a 400.
pub(crate) async fn find_credentials(
    store: &dyn Store,
    app_id: &str,
    email: &str,
) -> Result<Option<UserpassRecord>, Error> {
    let canonical = canonical_email(email);
    if canonical.as_deref() != Ok(email)
        && email.len() <= MAX_EMAIL_LEN
        && let Some(record) = store.find_userpass(app_id, email).await?
    {
        return Ok(Some(record));
    }
    Ok(store.find_userpass(app_id, &canonical?).await?)
}

/// 400 for a login `username` longer than [`MAX_EMAIL_LEN`].
fn username_too_long() -> Error {
    Error::bad_request(format!("username must be at most {MAX_EMAIL_LEN} bytes"))
}

/// The `local-userpass` provider.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalUserpass;

#[async_trait]
impl Provider for LocalUserpass {
    const NAME: &'static str = ProviderType::EmailPassword.as_str();
    type Config = LocalUserpassConfig;

    fn enabled(&self, config: &LocalUserpassConfig) -> bool {
        config.enabled
    }

    fn validate(&self, config: &LocalUserpassConfig, app_id: &str) -> Result<(), ConfigError> {
        config.validate(app_id)
    }

    /// Check a login body `{username, password}`.
    ///
    /// A wrong password and an unknown email give the same answer after the same work
    /// (a dummy hash is verified for unknown emails). Only after the password matches
    /// are pending credentials reported.
    async fn authenticate(
        &self,
        ctx: &ProviderContext<'_>,
        _config: &LocalUserpassConfig,
        body: &LoginBody,
    ) -> Result<VerifiedIdentity, Error> {
        let email = required_str(body, "username")?;
        if email.len() > MAX_EMAIL_LEN {
            // Refused before any hashing.
            return Err(username_too_long());
        }
        let password = Secret::new(required_str(body, "password")?);
        let record = find_credentials(ctx.store, ctx.app_id, email).await?;
        let Some(record) = record else {
            ctx.hasher
                .verify_dummy(&password)
                .await
                .map_err(|e| Error::internal(&e))?;
            tracing::debug!(app = ctx.app_id, "login with unknown email");
            return Err(Error::InvalidPassword);
        };
        let ok = ctx
            .hasher
            .verify(&password, record.password_hash.expose())
            .await
            .map_err(|e| Error::internal(&e))?;
        if !ok {
            tracing::debug!(app = ctx.app_id, credential = %record.id, "wrong password");
            return Err(Error::InvalidPassword);
        }
        if record.status != CredentialStatus::Confirmed {
            return Err(Error::confirmation_required());
        }
        let mut data = Map::new();
        data.insert("email".to_owned(), Value::String(record.email.clone()));
        Ok(VerifiedIdentity {
            provider: Self::NAME,
            id: record.id,
            data,
        })
    }

    /// Failed logins are counted per canonical email (whether it exists or not), so that
    /// every spelling of one address shares its limits; an address without a canonical
    /// form is counted as written (and refused by `authenticate`).
    fn login_identifier<'b>(&self, body: &'b LoginBody) -> Result<Option<Cow<'b, str>>, Error> {
        match body.get("username") {
            Some(Value::String(u)) if u.len() > MAX_EMAIL_LEN => Err(username_too_long()),
            Some(Value::String(u)) => Ok(Some(match canonical_email(u) {
                Ok(canonical) => Cow::Owned(canonical),
                Err(_) => Cow::Borrowed(u.as_str()),
            })),
            _ => Ok(None),
        }
    }

    fn enable_for_dev(&self, config: &mut LocalUserpassConfig) {
        config.enabled = true;
        config.auto_confirm = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_canonical_form_for_the_issue_spellings() {
        for spelling in [
            "victim@example.com",
            "VICTIM@example.com",
            "victim@EXAMPLE.COM",
            "Victim@Example.Com",
            // Fullwidth `ｖ` and `ａ` (NFKC).
            "\u{ff56}ictim@ex\u{ff41}mple.com",
            // A fullwidth `＠`.
            "victim\u{ff20}example.com",
        ] {
            assert_eq!(
                canonical_email(spelling).as_deref(),
                Ok("victim@example.com"),
                "{spelling:?}"
            );
        }
        // NFD and NFC `café` are one address; the domain in IDNA ASCII form.
        let nfc = canonical_email("caf\u{e9}@caf\u{e9}.example").unwrap();
        let nfd = canonical_email("cafe\u{301}@CAFE\u{301}.example").unwrap();
        assert_eq!(nfc, nfd);
        assert_eq!(nfc, "caf\u{e9}@xn--caf-dma.example");
    }

    #[test]
    fn invisible_and_control_characters_are_refused() {
        for (spelling, code) in [
            ("victim@example.com\u{200b}", 0x200b),
            ("\u{feff}victim@example.com", 0xfeff),
            ("vic\u{ad}tim@example.com", 0xad),
            ("victim@exa\u{202e}mple.com", 0x202e),
            ("victim@example.com\u{0}", 0),
            ("victim@example.com\n", 0x0a),
            ("vic tim@example.com", 0x20),
            ("victim@example.com\u{a0}", 0xa0),
            ("victim@example.com\u{2028}", 0x2028),
            ("vi\u{e000}ctim@example.com", 0xe000),
        ] {
            let err = canonical_email(spelling).unwrap_err();
            assert_eq!(err, EmailError::Forbidden(code), "{spelling:?}");
            let shown = Error::from(err).to_string();
            assert!(shown.starts_with("email invalid"), "{shown}");
            assert!(!shown.contains("victim"), "never echoed: {shown}");
        }
    }

    #[test]
    fn shapes_domains_and_lengths() {
        for bad in [
            "nobody",
            "@example.com",
            "victim@",
            "victim@example..com",
            "victim@example.com.",
            "victim@exa mple.com",
            "victim@xn--a.example",
        ] {
            assert!(canonical_email(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            canonical_email(&format!("{}@example.com", "a".repeat(250))),
            Err(EmailError::TooLong)
        );
        assert!(canonical_email(&"\u{fdfa}".repeat(1000)).is_err());
        assert_eq!(
            canonical_email("Some.One+Tag@Example.org").as_deref(),
            Ok("some.one+tag@example.org")
        );
    }

    #[test]
    fn the_canonical_form_is_its_own() {
        for spelling in [
            "VICTIM@example.com",
            "\u{130}stanbul@example.com",
            "Stra\u{df}e@B\u{fc}cher.example",
            "\u{fb01}le@example.com",
            "x\u{b2}@example.com",
            "\u{3a3}\u{391}\u{3a3}@example.gr",
        ] {
            let once = canonical_email(spelling).unwrap();
            assert_eq!(
                canonical_email(&once).as_deref(),
                Ok(once.as_str()),
                "{spelling:?}"
            );
        }
    }
}
