//! Request and response bodies of every client route.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Secret;

/// `GET .../location` response (protocol.md §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationResponse {
    /// e.g. `"GLOBAL"` or `"LOCAL"`.
    #[serde(default)]
    pub deployment_model: String,
    /// Region, e.g. `"US-VA"`.
    #[serde(default)]
    pub location: String,
    /// Absolute URL without trailing slash: the host for every later call.
    pub hostname: String,
    /// Base of the sync websocket URL (realm-core requires the key).
    #[serde(default)]
    pub ws_hostname: String,
    /// Optional full sync URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_route: Option<String>,
}

/// Device information sent in `options.device` of a login body (protocol.md §3.3).
///
/// Serialized the way realm-web does: undefined keys omitted, `deviceId` as `{"$oid": ..}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// SDK name (e.g. `"latchkey"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk: Option<String>,
    /// SDK version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<String>,
    /// OS or runtime name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// OS or runtime version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    /// CPU architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_arch: Option<String>,
    /// Local application name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Local application version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// Device id from an earlier login (sent as `{"$oid": "<hex>"}`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "oid_option")]
    pub device_id: Option<String>,
}

mod oid_option {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::{Value, json};

    pub(super) fn serialize<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(id) => serde::Serialize::serialize(&json!({ "$oid": id }), s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(crate::ObjectId::from_json(&v).map(|id| id.to_string()))
    }
}

/// Login success body (protocol.md §3.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    /// The new access token (a JWT).
    #[serde(serialize_with = "crate::secret::expose")]
    pub access_token: Secret,
    /// The refresh token (a JWT). Absent only on some link responses.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::secret::expose_option"
    )]
    pub refresh_token: Option<Secret>,
    /// The user's id.
    pub user_id: String,
    /// The device id (24 hex, all zeros meaning none).
    pub device_id: String,
}

/// `POST /auth/session` success body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshResponse {
    /// The new access token.
    #[serde(serialize_with = "crate::secret::expose")]
    pub access_token: Secret,
}

/// One identity of a user (a provider-specific account linked to it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Provider-specific identity id.
    pub id: String,
    /// Provider name, e.g. `"anon-user"`.
    pub provider_type: String,
    /// Provider configuration id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// Provider metadata (no client reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_data: Option<Map<String, Value>>,
}

/// `type` of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum UserType {
    /// An ordinary user.
    Normal,
    /// A server API key's user.
    Server,
    /// Server-internal.
    System,
}

/// `GET /auth/profile` success body (protocol.md §4.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileResponse {
    /// User id.
    #[serde(default)]
    pub user_id: String,
    /// App (domain) id.
    #[serde(default)]
    pub domain_id: String,
    /// Linked identities.
    pub identities: Vec<Identity>,
    /// Profile metadata: `name`, `email`, `picture`, `first_name`, ... as strings.
    pub data: Map<String, Value>,
    /// `normal` or `server`.
    #[serde(rename = "type")]
    pub user_type: UserType,
}

/// `POST /auth/api_keys` request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateApiKeyRequest {
    /// Name of the new key.
    pub name: String,
}

/// A user API key as returned by the API key routes. `key` is present only on create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyResponse {
    /// 24-hex id (a plain string, as realm-core requires).
    #[serde(rename = "_id")]
    pub id: String,
    /// The secret, only in the create response.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::secret::expose_option"
    )]
    pub key: Option<Secret>,
    /// The key's name.
    pub name: String,
    /// Whether the key is disabled.
    pub disabled: bool,
}

/// `local-userpass/register` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// Email address.
    pub email: String,
    /// Password.
    #[serde(serialize_with = "crate::secret::expose")]
    pub password: Secret,
}

/// `local-userpass/confirm` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmRequest {
    /// Token from the confirmation link.
    #[serde(serialize_with = "crate::secret::expose")]
    pub token: Secret,
    /// Token id from the confirmation link.
    #[serde(rename = "tokenId")]
    pub token_id: String,
}

/// Body of `confirm/send`, `confirm/call` and `reset/send`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailRequest {
    /// Email address.
    pub email: String,
}

/// `local-userpass/reset` body (core key order: password, token, tokenId).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetPasswordRequest {
    /// The new password.
    #[serde(serialize_with = "crate::secret::expose")]
    pub password: Secret,
    /// Token from the reset link.
    #[serde(serialize_with = "crate::secret::expose")]
    pub token: Secret,
    /// Token id from the reset link.
    #[serde(rename = "tokenId")]
    pub token_id: String,
}

/// `local-userpass/reset/call` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallResetPasswordFunctionRequest {
    /// Email address.
    pub email: String,
    /// The new password.
    #[serde(serialize_with = "crate::secret::expose")]
    pub password: Secret,
    /// Extra arguments for the reset function.
    #[serde(default)]
    pub arguments: Vec<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn device_info_serializes_like_realm_web() {
        let d = DeviceInfo {
            sdk_version: Some("0.1.0".into()),
            platform: Some("linux".into()),
            device_id: Some("65f0c0ffee0000000000abcd".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({"sdkVersion":"0.1.0","platform":"linux","deviceId":{"$oid":"65f0c0ffee0000000000abcd"}})
        );
        let back: DeviceInfo =
            serde_json::from_value(json!({"deviceId": "65f0c0ffee0000000000abcd"})).unwrap();
        assert_eq!(back.device_id.as_deref(), Some("65f0c0ffee0000000000abcd"));
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let r = RegisterRequest {
            email: "a@b.c".into(),
            password: "hunter22".into(),
        };
        assert!(!format!("{r:?}").contains("hunter22"));
        let l = LoginResponse {
            access_token: "AT-secret".into(),
            refresh_token: Some("RT-secret".into()),
            user_id: "u".into(),
            device_id: "d".into(),
        };
        let s = format!("{l:?}");
        assert!(!s.contains("AT-secret") && !s.contains("RT-secret"));
        let k = ApiKeyResponse {
            id: "i".into(),
            key: Some("K-secret".into()),
            name: "n".into(),
            disabled: false,
        };
        assert!(!format!("{k:?}").contains("K-secret"));
        let rp = ResetPasswordRequest {
            password: "pw-secret".into(),
            token: "tok-secret".into(),
            token_id: "tid".into(),
        };
        let s = format!("{rp:?}");
        assert!(!s.contains("pw-secret") && !s.contains("tok-secret"));
    }

    #[test]
    fn profile_parses_minimal_and_full() {
        let p: ProfileResponse = serde_json::from_value(json!({
            "identities": [{"id": "x", "provider_type": "anon-user"}],
            "data": {}, "type": "normal"
        }))
        .unwrap();
        assert_eq!(p.user_type, UserType::Normal);
        assert_eq!(p.identities[0].provider_type, "anon-user");
    }
}
