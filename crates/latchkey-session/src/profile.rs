//! What the server says about a user: its state on this device, its identities and its
//! profile.

use latchkey_protocol::{ProfileResponse, ProviderType};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The state of a user on this device (protocol.md §9.1).
///
/// ```
/// use latchkey_session::UserState;
/// assert_ne!(UserState::LoggedIn, UserState::LoggedOut);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UserState {
    /// Has tokens and can make requests.
    LoggedIn,
    /// Tokens cleared; still known on this device (profile and identities kept).
    LoggedOut,
    /// Forgotten by this device.
    Removed,
}

/// One identity (provider account) linked to a user.
///
/// ```
/// use latchkey_session::UserIdentity;
/// let i = UserIdentity { id: "x".into(), provider_type: "anon-user".into() };
/// assert_eq!(i.provider_type, "anon-user");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserIdentity {
    /// Provider-specific identity id.
    pub id: String,
    /// Provider name, e.g. `"local-userpass"`.
    pub provider_type: String,
}

/// A user's profile metadata (`data` of `GET /auth/profile`), with typed accessors for the
/// well-known keys.
///
/// ```
/// use latchkey_session::UserProfile;
/// let mut data = serde_json::Map::new();
/// data.insert("email".into(), "a@b.c".into());
/// data.insert("picture".into(), "https://x/p.png".into());
/// let p = UserProfile::from_data(data);
/// assert_eq!(p.email().as_deref(), Some("a@b.c"));
/// assert_eq!(p.picture_url().as_deref(), Some("https://x/p.png"));
/// assert_eq!(p.name().as_deref(), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserProfile {
    data: Map<String, Value>,
}

impl UserProfile {
    /// A profile from its raw `data` document.
    pub fn from_data(data: Map<String, Value>) -> Self {
        UserProfile { data }
    }

    fn str(&self, key: &str) -> Option<String> {
        self.data
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// `name`.
    ///
    /// The accessors return owned values, so `let email = user.profile().email();` works
    /// (a profile is a snapshot taken from the user handle).
    pub fn name(&self) -> Option<String> {
        self.str("name")
    }
    /// `email`.
    pub fn email(&self) -> Option<String> {
        self.str("email")
    }
    /// `picture_url` (realm-core's key), else `picture` (realm-web's).
    pub fn picture_url(&self) -> Option<String> {
        self.str("picture_url").or_else(|| self.str("picture"))
    }
    /// `first_name`.
    pub fn first_name(&self) -> Option<String> {
        self.str("first_name")
    }
    /// `last_name`.
    pub fn last_name(&self) -> Option<String> {
        self.str("last_name")
    }
    /// `gender`.
    pub fn gender(&self) -> Option<String> {
        self.str("gender")
    }
    /// `birthday`.
    pub fn birthday(&self) -> Option<String> {
        self.str("birthday")
    }
    /// `min_age`.
    pub fn min_age(&self) -> Option<String> {
        self.str("min_age")
    }
    /// `max_age`.
    pub fn max_age(&self) -> Option<String> {
        self.str("max_age")
    }
    /// Any key of the raw document.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.data.get(key).cloned()
    }
    /// The raw `data` document.
    pub fn data(&self) -> &Map<String, Value> {
        &self.data
    }
    /// The raw `data` document, owned (realm's `profileAsBsonDocument()`).
    pub fn into_data(self) -> Map<String, Value> {
        self.data
    }
}

/// The last profile read for a user: its `data`, identities and `type`.
#[derive(Debug, Clone, Default)]
pub(crate) struct CachedProfile {
    /// Profile `data`.
    pub(crate) data: Map<String, Value>,
    /// Linked identities.
    pub(crate) identities: Vec<UserIdentity>,
    /// The profile `type` (`normal`, `server`).
    pub(crate) user_type: Option<String>,
}

impl CachedProfile {
    /// The cached form of a `GET /auth/profile` answer.
    pub(crate) fn from_response(p: ProfileResponse) -> Self {
        let identities = p
            .identities
            .iter()
            .map(|i| UserIdentity {
                id: i.id.clone(),
                provider_type: i.provider_type.clone(),
            })
            .collect();
        let user_type = serde_json::to_value(&p.user_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        CachedProfile {
            data: p.data,
            identities,
            user_type,
        }
    }

    /// Exactly one identity, of type `anon-user`.
    pub(crate) fn is_anonymous(&self) -> bool {
        self.identities.len() == 1
            && self.identities[0].provider_type == ProviderType::Anonymous.as_str()
    }
}
