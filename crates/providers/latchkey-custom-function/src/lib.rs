//! Custom function credentials for latchkey (provider `custom-function`): the
//! login body is your own payload, which the server hands to the app's
//! authentication function (a webhook) to decide who the user is.
//!
//! ```
//! use latchkey_custom_function::FunctionCredential;
//! use latchkey_protocol::Credential;
//! use serde_json::json;
//!
//! let cred = FunctionCredential::new(json!({ "username": "ilovemongodb" }));
//! assert_eq!(cred.provider_name(), "custom-function");
//! assert_eq!(cred.login_body().unwrap()["username"], "ilovemongodb");
//!
//! // Any Serialize type works; a payload that is not a JSON object is a typed error.
//! assert!(FunctionCredential::new(42).login_body().is_err());
//! ```
#![deny(missing_docs)]

use std::fmt;

use latchkey_protocol::{Credential, CredentialError, LoginBody, ProviderType};
use serde::Serialize;
use serde_json::Value;

/// Log in through the app's custom authentication function.
#[derive(Clone)]
pub struct FunctionCredential {
    payload: Result<LoginBody, String>,
}

impl FunctionCredential {
    /// A credential whose login body is `payload`, which must serialize to a JSON object.
    /// It is sent as canonical Extended JSON (`42` as `{"$numberInt": "42"}`), as the
    /// official clients send it; servers read both forms.
    ///
    /// Serialization happens here; a failure is reported by
    /// [`Credential::login_body`] (so `log_in` returns a typed error).
    pub fn new<T: Serialize>(payload: T) -> Self {
        let payload = match serde_json::to_value(payload) {
            Ok(Value::Object(map)) => {
                match latchkey_protocol::ejson::to_canonical(Value::Object(map)) {
                    Value::Object(map) => Ok(map),
                    _ => Err("the custom function payload must be a JSON object".to_owned()),
                }
            }
            Ok(other) => Err(format!(
                "the custom function payload must serialize to a JSON object, not {}",
                kind(&other)
            )),
            Err(e) => Err(format!(
                "the custom function payload cannot be serialized: {e}"
            )),
        };
        FunctionCredential { payload }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl fmt::Debug for FunctionCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The payload may hold secrets (passwords, tokens): show only its keys.
        let keys: Vec<&str> = match &self.payload {
            Ok(map) => map.keys().map(String::as_str).collect(),
            Err(_) => Vec::new(),
        };
        f.debug_struct("FunctionCredential")
            .field("payload_keys", &keys)
            .finish()
    }
}

impl Credential for FunctionCredential {
    fn provider_name(&self) -> &str {
        ProviderType::CustomFunction.as_str()
    }

    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        self.payload.clone().map_err(CredentialError::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn debug_shows_keys_not_values() {
        let c = FunctionCredential::new(json!({"user": "u", "password": "hunter2"}));
        let s = format!("{c:?}");
        assert!(s.contains("password") && !s.contains("hunter2"));
    }

    #[test]
    fn numbers_are_sent_as_canonical_extended_json() {
        let body = FunctionCredential::new(json!({"username": "u", "pin": 42, "ratio": 0.5}))
            .login_body()
            .unwrap();
        assert_eq!(
            Value::Object(body),
            json!({"username": "u", "pin": {"$numberInt": "42"}, "ratio": {"$numberDouble": "0.5"}})
        );
    }

    #[test]
    fn unserializable_payload_is_an_error() {
        use std::collections::HashMap;
        // Maps with non-string keys cannot become JSON objects.
        let mut bad = HashMap::new();
        bad.insert(vec![1u8], 1);
        let err = FunctionCredential::new(bad).login_body().unwrap_err();
        assert!(err.to_string().contains("cannot be serialized"));
    }
}
