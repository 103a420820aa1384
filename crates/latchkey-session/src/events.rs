//! User events broadcast by an app.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

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
    /// The user store was corrupt when the app was built: its data was moved aside (kept
    /// for inspection) and the app started with no users. Sent once, at build; the first
    /// receiver the app hands out gets it.
    StoreRecovered {
        /// Where the corrupt data was kept, if on disk.
        moved_to: Option<PathBuf>,
        /// What was wrong, as the store reported it.
        error: String,
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
            UserEvent::StoreRecovered { .. } => None,
        }
    }
}

/// The sending side of an app's event broadcast. Cheap to clone; clones send to the same
/// receivers.
#[derive(Debug, Clone)]
pub(crate) struct Events {
    sender: broadcast::Sender<UserEvent>,
    /// A receiver made before anyone subscribed, for the first subscriber: it holds the
    /// events sent while the app was built.
    early: Arc<Mutex<Option<EventReceiver>>>,
}

impl Events {
    /// A broadcast keeping up to 256 events for slow receivers.
    pub(crate) fn new() -> Self {
        Events {
            sender: broadcast::channel(256).0,
            early: Arc::default(),
        }
    }

    /// A new receiver of every event sent from now on (the first one also gets what was
    /// kept by [`keep_for_first_subscriber`](Self::keep_for_first_subscriber)).
    pub(crate) fn subscribe(&self) -> EventReceiver {
        let early = self.early.lock().unwrap_or_else(|p| p.into_inner()).take();
        early.unwrap_or_else(|| self.sender.subscribe())
    }

    /// Keep the events sent from now on for the first subscriber (for an event sent before
    /// anyone could subscribe).
    pub(crate) fn keep_for_first_subscriber(&self) {
        let mut early = self.early.lock().unwrap_or_else(|p| p.into_inner());
        if early.is_none() {
            *early = Some(self.sender.subscribe());
        }
    }

    /// Send `event` to every receiver (none is fine).
    pub(crate) fn emit(&self, event: UserEvent) {
        tracing::debug!(?event, "user event");
        let _ = self.sender.send(event);
    }
}
