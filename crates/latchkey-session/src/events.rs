//! User events broadcast by an app.

use tokio::sync::broadcast;

/// The receiver returned by [`AppCore::subscribe`](crate::AppCore::subscribe).
pub type EventReceiver = tokio::sync::broadcast::Receiver<UserEvent>;

/// Something that happened to a user of an app. Subscribe with
/// [`AppCore::subscribe`](crate::AppCore::subscribe).
///
/// ```
/// use latchkey_session::UserEvent;
/// let e = UserEvent::LoggedIn { user_id: "u1".into() };
/// assert_eq!(e.user_id(), Some("u1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserEvent {
    /// A user logged in (new or returning).
    LoggedIn {
        /// The user's id.
        user_id: String,
    },
    /// A user's access token was refreshed.
    TokenRefreshed {
        /// The user's id.
        user_id: String,
    },
    /// A user logged out (its tokens were cleared).
    LoggedOut {
        /// The user's id.
        user_id: String,
    },
    /// A user's refresh token was rejected: the user is logged out and must log in again.
    SessionExpired {
        /// The user's id.
        user_id: String,
    },
    /// A user was removed from this device (or deleted on the server).
    Removed {
        /// The user's id.
        user_id: String,
    },
    /// The current user changed; `None` when no user is logged in any more.
    Switched {
        /// The new current user's id.
        user_id: Option<String>,
    },
}

impl UserEvent {
    /// The user the event is about.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            UserEvent::LoggedIn { user_id }
            | UserEvent::TokenRefreshed { user_id }
            | UserEvent::LoggedOut { user_id }
            | UserEvent::SessionExpired { user_id }
            | UserEvent::Removed { user_id } => Some(user_id),
            UserEvent::Switched { user_id } => user_id.as_deref(),
        }
    }
}

/// The sending side of an app's event broadcast. Cheap to clone; clones send to the same
/// receivers.
#[derive(Debug, Clone)]
pub(crate) struct Events(broadcast::Sender<UserEvent>);

impl Events {
    /// A broadcast keeping up to 256 events for slow receivers.
    pub(crate) fn new() -> Self {
        Events(broadcast::channel(256).0)
    }

    /// A new receiver of every event sent from now on.
    pub(crate) fn subscribe(&self) -> EventReceiver {
        self.0.subscribe()
    }

    /// Send `event` to every receiver (none is fine).
    pub(crate) fn emit(&self, event: UserEvent) {
        tracing::debug!(?event, "user event");
        let _ = self.0.send(event);
    }
}
