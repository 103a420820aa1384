//! API key credentials for latchkey: log in with a user API key or a server API key; and
//! the user API key client ([`ApiKeys`]): create, list, enable, disable and delete the keys
//! of a logged-in user.
//!
//! Both kinds of key use the `api-key` provider.
//!
//! ```
//! use latchkey_api_key::ApiKeyCredential;
//! use latchkey_protocol::Credential;
//!
//! let cred = ApiKeyCredential::new("my-secret-key");
//! assert_eq!(cred.provider_name(), "api-key");
//! assert_eq!(cred.login_body().unwrap()["key"], "my-secret-key");
//! assert!(!format!("{cred:?}").contains("my-secret-key"));
//! ```
#![deny(missing_docs)]

use http::Method;
use latchkey_protocol::routes::paths;
use latchkey_protocol::{ApiKeyResponse, Credential, CredentialError, LoginBody, ProviderType};
use latchkey_session::{Error, Secret, User};
use serde_json::{Value, json};

/// Log in with a user or server API key.
#[derive(Debug, Clone)]
pub struct ApiKeyCredential {
    key: Secret,
}

impl ApiKeyCredential {
    /// A credential for `key`, the secret shown once when the key was created.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKeyCredential {
            key: Secret::new(key),
        }
    }
}

impl Credential for ApiKeyCredential {
    fn provider_name(&self) -> &str {
        ProviderType::ApiKey.as_str()
    }

    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        let mut body = LoginBody::new();
        body.insert("key".into(), Value::String(self.key.expose().to_owned()));
        Ok(body)
    }
}

/// A user API key, as returned by the API key routes.
///
/// The secret [`key`](Self::key) is present only in the value returned by
/// [`ApiKeys::create`]: the server never shows it again. It never appears in `Debug`.
///
/// ```
/// # use latchkey_api_key::ApiKey;
/// # fn demo(k: ApiKey) {
/// println!("{} ({}) disabled={}", k.name, k.id, k.disabled);
/// if let Some(secret) = &k.key {
///     store_somewhere_safe(secret.expose());
/// }
/// # }
/// # fn store_somewhere_safe(_: &str) {}
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiKey {
    /// The key's id (24 hex digits).
    pub id: String,
    /// The key's name.
    pub name: String,
    /// Whether the key is disabled.
    pub disabled: bool,
    /// The secret, only right after creation.
    pub key: Option<Secret>,
}

impl From<ApiKeyResponse> for ApiKey {
    fn from(r: ApiKeyResponse) -> Self {
        ApiKey {
            id: r.id,
            name: r.name,
            disabled: r.disabled,
            key: r.key,
        }
    }
}

/// The user API key client of one user (`/api/client/v2.0/auth/api_keys...`).
///
/// Every request is authenticated with the user's **refresh** token, as both official
/// clients do. A `401` answer means that token is no longer valid: the user is logged out
/// locally and the error is [`ErrorKind::SessionExpired`](latchkey_session::ErrorKind).
/// An unknown key is a server error with status 404 and code
/// [`ErrorCode::APIKeyNotFound`](latchkey_session::ErrorCode::APIKeyNotFound).
/// Reads (`fetch`, `fetch_all`) and `enable`/`disable` are retried after transient
/// failures; `create` and `delete` are not.
///
/// With the `latchkey` facade, write `user.api_keys()`.
///
/// ```no_run
/// # async fn demo(user: &latchkey_session::User) -> Result<(), latchkey_session::Error> {
/// use latchkey_api_key::ApiKeys;
/// let keys = ApiKeys::new(user);
/// let created = keys.create("ci").await?;
/// let secret = created.key.clone().expect("shown once, on create");
/// keys.disable(&created.id).await?;
/// assert!(keys.fetch(&created.id).await?.disabled);
/// for k in keys.fetch_all().await? {
///     println!("{k:?}");
/// }
/// keys.delete(&created.id).await?;
/// # let _ = secret; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ApiKeys {
    user: User,
}

impl ApiKeys {
    /// The API key client of `user`.
    pub fn new(user: &User) -> Self {
        ApiKeys { user: user.clone() }
    }

    /// The user whose keys these are.
    pub fn user(&self) -> &User {
        &self.user
    }

    /// Create a key named `name` (`POST /auth/api_keys` with `{"name": ...}`). The returned
    /// key carries the secret [`ApiKey::key`], shown this once.
    pub async fn create(&self, name: impl Into<String>) -> Result<ApiKey, Error> {
        let url = self.user.app_core().routes().await?.api_keys();
        let resp = self
            .user
            .send_with_refresh_token(
                Method::POST,
                paths::API_KEYS,
                &url,
                Some(json!({ "name": name.into() })),
            )
            .await?;
        decode::<ApiKeyResponse>(resp.body(), "created API key").map(ApiKey::from)
    }

    /// Fetch one key by id (`GET /auth/api_keys/{id}`); no secret.
    pub async fn fetch(&self, id: &str) -> Result<ApiKey, Error> {
        let url = self.key_url(id).await?;
        let resp = self
            .user
            .send_with_refresh_token(Method::GET, paths::API_KEY, &url, None)
            .await?;
        decode::<ApiKeyResponse>(resp.body(), "API key").map(ApiKey::from)
    }

    /// The URL of key `id` (`/auth/api_keys/{id}`), refusing ids that would change it.
    async fn key_url(&self, id: &str) -> Result<String, Error> {
        let routes = self.user.app_core().routes().await?;
        Ok(routes.api_key(&path_segment(id)?))
    }

    /// Fetch every key of the user (`GET /auth/api_keys`); no secrets.
    pub async fn fetch_all(&self) -> Result<Vec<ApiKey>, Error> {
        let url = self.user.app_core().routes().await?.api_keys();
        let resp = self
            .user
            .send_with_refresh_token(Method::GET, paths::API_KEYS, &url, None)
            .await?;
        decode::<Vec<ApiKeyResponse>>(resp.body(), "API key list")
            .map(|v| v.into_iter().map(ApiKey::from).collect())
    }

    /// Enable a key (`PUT /auth/api_keys/{id}/enable`).
    pub async fn enable(&self, id: &str) -> Result<(), Error> {
        self.set_enabled(id, true).await
    }

    /// Disable a key (`PUT /auth/api_keys/{id}/disable`): logins with it fail until it is
    /// enabled again.
    pub async fn disable(&self, id: &str) -> Result<(), Error> {
        self.set_enabled(id, false).await
    }

    async fn set_enabled(&self, id: &str, enable: bool) -> Result<(), Error> {
        let url = self
            .user
            .app_core()
            .routes()
            .await?
            .api_key_enabled(&path_segment(id)?, enable);
        let route = if enable {
            paths::API_KEY_ENABLE
        } else {
            paths::API_KEY_DISABLE
        };
        self.user
            .send_with_refresh_token(Method::PUT, route, &url, None)
            .await
            .map(|_| ())
    }

    /// Delete a key (`DELETE /auth/api_keys/{id}`).
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        let url = self.key_url(id).await?;
        self.user
            .send_with_refresh_token(Method::DELETE, paths::API_KEY, &url, None)
            .await
            .map(|_| ())
    }
}

/// Key ids are 24 hex digits; refuse anything that would change the URL's path or query.
fn path_segment(id: &str) -> Result<String, Error> {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(id.to_owned())
    } else {
        Err(Error::invalid_argument(format!(
            "invalid API key id {id:?}"
        )))
    }
}

/// Decode a reply, accepting Extended JSON (`{"$oid": ..}` ids, as realm-web does).
fn decode<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Error> {
    serde_json::from_slice::<Value>(body)
        .map(latchkey_protocol::ejson::to_plain)
        .and_then(serde_json::from_value)
        .map_err(|e| Error::decode(format!("cannot decode the {what}: {e}"), Some(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_key_keeps_the_secret_out_of_debug() {
        let k: ApiKey = decode::<ApiKeyResponse>(
            br#"{"_id":{"$oid":"65f0c0ffee00000000001234"},"key":"s3cr3t-key","name":"ci","disabled":false}"#,
            "key",
        )
        .unwrap()
        .into();
        assert_eq!(k.id, "65f0c0ffee00000000001234");
        assert_eq!(k.key.as_ref().unwrap().expose(), "s3cr3t-key");
        let dbg = format!("{k:?}");
        assert!(dbg.contains("ci") && !dbg.contains("s3cr3t-key"), "{dbg}");
        let cred = ApiKeyCredential::new("s3cr3t-key");
        assert!(!format!("{cred:?}").contains("s3cr3t-key"));
    }

    #[test]
    fn bad_replies_are_decode_errors_without_the_secret() {
        let err = decode::<ApiKeyResponse>(br#"{"key":"s3cr3t-key"}"#, "key").unwrap_err();
        assert_eq!(err.kind(), latchkey_session::ErrorKind::Decode);
        assert!(!format!("{err:?}").contains("s3cr3t-key"));
        assert!(decode::<Vec<ApiKeyResponse>>(b"garbage", "list").is_err());
    }

    #[test]
    fn ids_that_change_the_url_are_refused() {
        assert!(path_segment("65f0c0ffee00000000001234").is_ok());
        for bad in ["", "../x", "a/b", "a?b=c", "a#b", "a b"] {
            assert_eq!(
                path_segment(bad).unwrap_err().kind(),
                latchkey_session::ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
    }
}
