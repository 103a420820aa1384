//! The one redacting wrapper for secrets, shared by every latchkey crate.
//!
//! Every secret field (passwords, tokens, API keys, signing secrets, client secrets,
//! stored hashes) is a [`Secret`], so `Debug` can be derived on any struct that holds
//! one: a new field cannot leak by being left out of a hand-written `Debug` impl.

use std::fmt;

/// A secret string (token, password, key) that never shows itself in `Debug` or
/// `Display`.
///
/// ```
/// use latchkey_protocol::Secret;
/// let s = Secret::new("hunter22");
/// assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
/// assert_eq!(format!("{s}"), "<redacted>");
/// assert_eq!(s.expose(), "hunter22");
/// ```
///
/// It deserializes from a plain string (configuration files), and deliberately does
/// not implement `Serialize`: writing a secret out has to be spelled
/// [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret value, without copying it. Do not log it.
    pub fn into_exposed(self) -> String {
        self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret's length in bytes (not secret itself: minimum-length checks need it).
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

/// Serialize a [`Secret`] as its plain string, for the few places that must write one
/// out (a wire body, a configuration file): `#[serde(serialize_with =
/// "latchkey_protocol::secret::expose")]`. Named, so that it is greppable.
///
/// ```
/// use latchkey_protocol::Secret;
/// #[derive(serde::Serialize)]
/// struct Body {
///     #[serde(serialize_with = "latchkey_protocol::secret::expose")]
///     password: Secret,
/// }
/// let json = serde_json::to_string(&Body { password: Secret::new("pw") }).unwrap();
/// assert_eq!(json, r#"{"password":"pw"}"#);
/// ```
pub fn expose<S: serde::Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

/// [`expose`] for an optional secret.
pub fn expose_option<S: serde::Serializer>(
    secret: &Option<Secret>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_some(secret.expose()),
        None => s.serialize_none(),
    }
}

/// [`expose`] for a list of secrets.
pub fn expose_all<S: serde::Serializer>(secrets: &[Secret], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(secrets.iter().map(Secret::expose))
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Holder {
        name: String,
        password: Secret,
    }

    #[test]
    fn derived_debug_of_a_holder_redacts() {
        let h: Holder = serde_json::from_str(r#"{"name":"n","password":"pw-123456"}"#).unwrap();
        let shown = format!("{h:?} {h:#?}");
        assert!(!shown.contains("pw-123456"), "{shown}");
        assert_eq!(h.password.expose(), "pw-123456");
    }
}
