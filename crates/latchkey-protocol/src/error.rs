//! The error body and the `error_code` catalogue (protocol.md §8).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The JSON error body: `{"error", "error_code", "link"}`. All keys are optional.
///
/// ```
/// use latchkey_protocol::{ErrorBody, ErrorCode};
/// let body: ErrorBody = serde_json::from_str(
///     r#"{"error":"invalid username/password","error_code":"InvalidPassword","link":"x"}"#,
/// ).unwrap();
/// assert_eq!(body.code(), Some(ErrorCode::InvalidPassword));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The code name, e.g. `InvalidSession`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// A link to server logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl ErrorBody {
    /// A body with a code and message and no link.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: Some(message.into()),
            error_code: Some(code.as_str().to_owned()),
            link: None,
        }
    }

    /// The parsed `error_code`, if present.
    pub fn code(&self) -> Option<ErrorCode> {
        self.error_code.as_deref().map(ErrorCode::from_name)
    }
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $name:ident = $num:expr ),* $(,)?) => {
        /// An App Services `error_code`, with its realm-core number.
        ///
        /// Unknown names are kept in [`ErrorCode::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $name, )*
            /// A code this crate does not know, kept verbatim.
            Other(String),
        }

        impl ErrorCode {
            /// The wire name.
            pub fn as_str(&self) -> &str {
                match self {
                    $( ErrorCode::$name => stringify!($name), )*
                    ErrorCode::Other(s) => s,
                }
            }

            /// realm-core's numeric code (e.g. 4349 for `InvalidPassword`), if known.
            pub fn number(&self) -> Option<i32> {
                match self {
                    $( ErrorCode::$name => Some($num), )*
                    ErrorCode::Other(_) => None,
                }
            }

            /// Parse a wire name; unknown names become [`ErrorCode::Other`].
            pub fn from_name(name: &str) -> ErrorCode {
                match name {
                    $( stringify!($name) => ErrorCode::$name, )*
                    other => ErrorCode::Other(other.to_owned()),
                }
            }
        }
    };
}

error_codes! {
    /// Missing Authorization header.
    MissingAuthReq = 4300,
    /// Token expired, revoked, unknown or otherwise invalid.
    InvalidSession = 4301,
    /// The token belongs to another app.
    UserAppDomainMismatch = 4302,
    /// The request's origin is not allowed.
    DomainNotAllowed = 4303,
    /// A parameter is invalid.
    InvalidParameter = 4305,
    /// A parameter is missing.
    MissingParameter = 4306,
    /// The server failed.
    InternalServerError = 4315,
    /// The provider is unknown or disabled.
    AuthProviderNotFound = 4316,
    /// No such API key.
    APIKeyNotFound = 4334,
    /// The host is restricted.
    RestrictedHost = 4338,
    /// An API key with that name exists.
    APIKeyAlreadyExists = 4339,
    /// The email/password user is already confirmed.
    UserAlreadyConfirmed = 4343,
    /// No such user.
    UserNotFound = 4344,
    /// The user is disabled.
    UserDisabled = 4345,
    /// A credential was rejected (custom JWT, custom function, OAuth).
    AuthError = 4346,
    /// The request is malformed.
    BadRequest = 4347,
    /// The email is already registered.
    AccountNameInUse = 4348,
    /// Wrong email or password.
    InvalidPassword = 4349,
    /// Unknown app error.
    AppUnknownError = 4351,
    /// The server is in maintenance.
    MaintenanceInProgress = 4352,
    /// A confirmation or reset token pair is invalid.
    UserpassTokenInvalid = 4353,
    /// The server's response could not be understood.
    InvalidServerResponse = 4354,
    /// A server error with an unknown code.
    AppServerError = 4355,
    /// Too many requests (latchkey extension; realm clients treat it as `AppServerError`).
    TooManyRequests = 4399,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorCode {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(ErrorCode::from_name(s))
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(ErrorCode::from_name(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_numbers() {
        assert_eq!(
            ErrorCode::from_name("InvalidPassword"),
            ErrorCode::InvalidPassword
        );
        assert_eq!(ErrorCode::InvalidPassword.number(), Some(4349));
        assert_eq!(ErrorCode::InvalidSession.number(), Some(4301));
        assert_eq!(ErrorCode::APIKeyNotFound.as_str(), "APIKeyNotFound");
        let other = ErrorCode::from_name("SomethingNew");
        assert_eq!(other, ErrorCode::Other("SomethingNew".into()));
        assert_eq!(other.number(), None);
    }

    #[test]
    fn body_serializes_without_absent_keys() {
        let body = ErrorBody::new(ErrorCode::BadRequest, "nope");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":"nope","error_code":"BadRequest"}"#
        );
        let empty: ErrorBody = serde_json::from_str("{}").unwrap();
        assert_eq!(empty.code(), None);
    }
}
