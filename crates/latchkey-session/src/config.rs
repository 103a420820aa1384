//! The configuration of an app, and the device info it reports at login.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use latchkey_protocol::DeviceInfo;

use crate::clock::{SharedClock, SystemClock};
use crate::error::Error;
use crate::retry::RetryPolicy;

/// Default per-request timeout (realm-core's 60 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The SDK name sent in `options.device.sdk`.
pub const SDK_NAME: &str = "latchkey";

/// Configuration of an [`AppCore`](crate::AppCore).
///
/// ```
/// use std::time::Duration;
/// use latchkey_session::AppConfig;
/// let c = AppConfig::new("myapp-abcde", "http://127.0.0.1:8080/")
///     .with_request_timeout(Duration::from_secs(5))
///     .with_local_app("demo", "1.0");
/// assert_eq!(c.app_id(), "myapp-abcde");
/// assert_eq!(c.base_url(), "http://127.0.0.1:8080");
/// ```
#[derive(Debug, Clone)]
pub struct AppConfig {
    app_id: String,
    base_url: String,
    request_timeout: Duration,
    app_name: Option<String>,
    app_version: Option<String>,
    sdk_version: String,
    clock: SharedClock,
    retry: RetryPolicy,
    recover_corrupt_store: bool,
}

impl AppConfig {
    /// A configuration for `app_id` served at `base_url` (a trailing `/` is trimmed).
    pub fn new(app_id: impl Into<String>, base_url: impl Into<String>) -> Self {
        let mut base_url = base_url.into();
        while base_url.ends_with('/') {
            base_url.pop();
        }
        AppConfig {
            app_id: app_id.into(),
            base_url,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            app_name: None,
            app_version: None,
            sdk_version: env!("CARGO_PKG_VERSION").to_owned(),
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
            recover_corrupt_store: false,
        }
    }

    /// What to do when the user store reports its data as corrupt while the app is built.
    ///
    /// `false` (the default of this engine): fail with an
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) error. `true` (the default of the
    /// `latchkey` facade's `App`): ask the store to move the data aside
    /// ([`UserStore::set_aside`](crate::UserStore::set_aside)), start with no users, log a
    /// warning and send [`UserEvent::StoreRecovered`](crate::UserEvent::StoreRecovered) to the
    /// first event receiver.
    pub fn with_corrupt_store_recovery(mut self, recover: bool) -> Self {
        self.recover_corrupt_store = recover;
        self
    }

    /// Whether a corrupt user store is moved aside at build (see
    /// [`with_corrupt_store_recovery`](Self::with_corrupt_store_recovery)).
    pub fn corrupt_store_recovery(&self) -> bool {
        self.recover_corrupt_store
    }

    /// Set the retry policy for idempotent requests (default: [`RetryPolicy::default`],
    /// two retries).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Set the per-request timeout (default 60 s).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Name and version of the local application, sent as device info at login.
    pub fn with_local_app(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.app_name = Some(name.into());
        self.app_version = Some(version.into());
        self
    }

    /// The SDK version reported at login (the facade sets its own).
    pub fn with_sdk_version(mut self, version: impl Into<String>) -> Self {
        self.sdk_version = version.into();
        self
    }

    /// The wall clock used for token expiry (tests inject a manual one).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The configured clock.
    pub(crate) fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    /// The current time by the configured clock.
    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// `options.device` of a login or link request, with the device id the server assigned
    /// to this device, if any.
    pub(crate) fn device_info(&self, device_id: Option<String>) -> DeviceInfo {
        DeviceInfo {
            sdk: Some(SDK_NAME.to_owned()),
            sdk_version: Some(self.sdk_version.clone()),
            platform: Some(std::env::consts::OS.to_owned()),
            platform_version: Some(platform_version()),
            cpu_arch: Some(std::env::consts::ARCH.to_owned()),
            app_id: self.app_name.clone(),
            app_version: self.app_version.clone(),
            device_id,
        }
    }

    /// Check the app id and the base URL (http or https, a host, no query).
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.app_id.trim().is_empty() {
            return Err(Error::invalid_config("the app id is empty"));
        }
        let uri: http::Uri = self
            .base_url
            .parse()
            .map_err(|e| Error::invalid_config(format!("invalid base URL: {e}")))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(Error::invalid_config(
                    "invalid base URL: the scheme must be http or https",
                ));
            }
        }
        if uri.authority().is_none() {
            return Err(Error::invalid_config("invalid base URL: no host"));
        }
        if uri.query().is_some() {
            return Err(Error::invalid_config(
                "invalid base URL: it must not have a query",
            ));
        }
        Ok(())
    }
}

/// The OS version reported as `options.device.platformVersion` (realm-core requires one):
/// the kernel release on Linux and Android, else `0.0.0` (realm-web's "unknown").
fn platform_version() -> String {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION
        .get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty() && s.len() < 64)
                .unwrap_or_else(|| "0.0.0".to_owned())
        })
        .clone()
}
