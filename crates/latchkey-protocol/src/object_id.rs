//! 24-hex ObjectId strings, as used for user, device and API key ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A 12-byte MongoDB ObjectId, shown as 24 lowercase hex digits.
///
/// ```
/// use latchkey_protocol::ObjectId;
/// let id: ObjectId = "65f0c0ffee0000000000abcd".parse().unwrap();
/// assert_eq!(id.to_string(), "65f0c0ffee0000000000abcd");
/// assert!(ObjectId::ZERO.is_zero());
/// assert!("xyz".parse::<ObjectId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectId([u8; 12]);

impl ObjectId {
    /// `000000000000000000000000`, which both official clients read as "no device id".
    pub const ZERO: ObjectId = ObjectId([0; 12]);

    /// Build from raw bytes.
    pub const fn from_bytes(bytes: [u8; 12]) -> Self {
        ObjectId(bytes)
    }

    /// The raw bytes.
    pub const fn bytes(&self) -> [u8; 12] {
        self.0
    }

    /// True for the all-zero id.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 12]
    }

    /// Read an ObjectId from Extended JSON `{"$oid": "<hex>"}` or a plain hex string.
    ///
    /// ```
    /// use latchkey_protocol::ObjectId;
    /// use serde_json::json;
    /// let a = ObjectId::from_json(&json!({"$oid": "65f0c0ffee0000000000abcd"}));
    /// let b = ObjectId::from_json(&json!("65f0c0ffee0000000000abcd"));
    /// assert_eq!(a, b);
    /// assert!(a.is_some());
    /// assert_eq!(ObjectId::from_json(&json!(42)), None);
    /// ```
    pub fn from_json(value: &Value) -> Option<ObjectId> {
        match value {
            Value::String(s) => s.parse().ok(),
            Value::Object(map) if map.len() == 1 => map.get("$oid")?.as_str()?.parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// The string is not 24 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a 24-hex-digit ObjectId")]
pub struct InvalidObjectId;

impl FromStr for ObjectId {
    type Err = InvalidObjectId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.as_bytes();
        if s.len() != 24 {
            return Err(InvalidObjectId);
        }
        let mut out = [0u8; 12];
        for (i, pair) in s.chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or(InvalidObjectId)?;
            let lo = (pair[1] as char).to_digit(16).ok_or(InvalidObjectId)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Ok(ObjectId(out))
    }
}

impl TryFrom<String> for ObjectId {
    type Error = InvalidObjectId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ObjectId> for String {
    fn from(id: ObjectId) -> String {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upper_and_lower_hex() {
        let id: ObjectId = "65F0C0FFEE0000000000ABCD".parse().unwrap();
        assert_eq!(id.to_string(), "65f0c0ffee0000000000abcd");
        assert!("65f0c0ffee0000000000abc".parse::<ObjectId>().is_err());
        assert!("65f0c0ffee0000000000abcg".parse::<ObjectId>().is_err());
        assert!("é5f0c0ffee0000000000abc".parse::<ObjectId>().is_err());
    }
}
