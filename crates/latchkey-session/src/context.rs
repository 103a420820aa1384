//! What a user handle needs from its app, and nothing more: the clock, device info, the
//! routes, sending requests, events, and the user registry. [`AppContext`] is shared by
//! the app and every user handle; its parts stay private behind these methods.

use std::sync::Arc;
use std::time::SystemTime;

use http::Method;
use latchkey_protocol::routes::{Routes, paths};
use latchkey_protocol::{DeviceInfo, ProfileResponse, Secret};
use latchkey_transport::{HttpResponse, SharedTransport};

use crate::client::Client;
use crate::config::AppConfig;
use crate::error::Error;
use crate::events::{EventReceiver, Events, UserEvent};
use crate::registry::Registry;
use crate::store::UserStore;
use crate::wire::{self, ApiRequest};

/// The shared state of one app.
pub(crate) struct AppContext {
    config: AppConfig,
    client: Client,
    registry: Registry,
    events: Events,
}

impl AppContext {
    /// Validate `config` and load the users from `store` (no network).
    pub(crate) fn new(
        config: AppConfig,
        transport: SharedTransport,
        store: Arc<dyn UserStore>,
    ) -> Result<Self, Error> {
        config.validate()?;
        let events = Events::new();
        let registry = Registry::load(
            config.app_id(),
            store,
            events.clone(),
            config.now(),
            config.corrupt_store_recovery(),
        )?;
        Ok(AppContext {
            client: Client::new(&config, transport),
            config,
            registry,
            events,
        })
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &AppConfig {
        &self.config
    }

    /// The users of this app.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The current time by the configured clock.
    pub(crate) fn now(&self) -> SystemTime {
        self.config.now()
    }

    /// `options.device` for a login or link request.
    pub(crate) fn device_info(&self) -> DeviceInfo {
        self.config.device_info(self.registry.device_id())
    }

    /// A new receiver of user events.
    pub(crate) fn subscribe(&self) -> EventReceiver {
        self.events.subscribe()
    }

    /// Send a user event.
    pub(crate) fn emit(&self, event: UserEvent) {
        self.events.emit(event);
    }

    /// The routes on the app's host (the location is fetched once, lazily).
    pub(crate) async fn routes(&self) -> Result<Routes, Error> {
        self.client.routes().await
    }

    /// Send a request; any status is `Ok`.
    pub(crate) async fn send(&self, req: ApiRequest) -> Result<HttpResponse, Error> {
        self.client.execute(req).await
    }

    /// Send a request; a non-2xx status is a server error.
    pub(crate) async fn send_checked(&self, req: ApiRequest) -> Result<HttpResponse, Error> {
        self.client.execute_checked(req).await
    }

    /// Revoke the session of `refresh` (`DELETE /auth/session`), best effort: a failure is
    /// logged at `warn` level.
    pub(crate) async fn revoke(&self, refresh: &Secret) {
        let revoke = async {
            let url = self.routes().await?.session();
            let req = wire::build(
                Method::DELETE,
                Some(paths::SESSION),
                &url,
                Some(refresh),
                None,
            )?;
            wire::check_status(self.send(req).await?)
        };
        if let Err(e) = revoke.await {
            tracing::warn!(error = %e, "revoking the session failed");
        }
    }

    /// `GET /auth/profile` with `access`, no replay.
    pub(crate) async fn fetch_profile(&self, access: &Secret) -> Result<ProfileResponse, Error> {
        let routes = self.routes().await?;
        let req = wire::build(
            Method::GET,
            Some(paths::PROFILE),
            &routes.profile(),
            Some(access),
            None,
        )?;
        let resp = self.send_checked(req).await?;
        wire::parse_json(&resp, "profile")
    }
}
