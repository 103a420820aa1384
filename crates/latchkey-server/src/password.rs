//! Password hashing: argon2id (OWASP parameters m=19456 KiB, t=2, p=1), run on
//! tokio's blocking pool and gated by a semaphore so a burst of logins cannot
//! exhaust memory or starve the async executor.

use std::fmt;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use tokio::sync::{OnceCell, Semaphore};

/// argon2id memory cost in KiB (OWASP).
pub(crate) const ARGON2_M_COST_KIB: u32 = 19_456;
/// argon2id iterations (OWASP).
pub(crate) const ARGON2_T_COST: u32 = 2;
/// argon2id lanes (OWASP).
pub(crate) const ARGON2_P_COST: u32 = 1;

pub(crate) use latchkey_protocol::Secret;

/// Hashing failed for a reason other than a wrong password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum PasswordError {
    /// argon2 rejected its input or a stored hash is malformed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The blocking task panicked or was cancelled.
    #[error("password hashing task failed: {0}")]
    Task(String),
}

/// Hashes and verifies passwords on a bounded blocking pool.
#[derive(Clone)]
pub(crate) struct PasswordHasher {
    permits: Arc<Semaphore>,
    dummy: Arc<OnceCell<String>>,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("available_permits", &self.permits.available_permits())
            .finish()
    }
}

fn argon2() -> Argon2<'static> {
    // The OWASP parameters are always valid.
    let params =
        Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

fn verify_blocking(password: &str, phc: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(|e| PasswordError::Hash(e.to_string()))?;
    match argon2().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(PasswordError::Hash(e.to_string())),
    }
}

impl PasswordHasher {
    /// A hasher that runs at most `max_concurrent` hashes at once (at least 1).
    pub(crate) fn new(max_concurrent: usize) -> Self {
        PasswordHasher {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy: Arc::new(OnceCell::new()),
        }
    }

    /// A hasher sized to the machine's parallelism.
    pub(crate) fn for_this_machine() -> Self {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        PasswordHasher::new(n)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| PasswordError::Task(e.to_string()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| PasswordError::Task(e.to_string()))?
    }

    /// Hash a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
    pub(crate) async fn hash(&self, password: &Secret) -> Result<String, PasswordError> {
        let password = password.clone();
        self.run(move || hash_blocking(password.expose())).await
    }

    /// Check a password against a PHC string.
    pub(crate) async fn verify(&self, password: &Secret, phc: &str) -> Result<bool, PasswordError> {
        let password = password.clone();
        let phc = phc.to_owned();
        self.run(move || verify_blocking(password.expose(), &phc))
            .await
    }

    /// Compute the throwaway hash used by [`PasswordHasher::verify_dummy`] now, so that
    /// the first unknown-email login is not slower than later ones.
    pub(crate) async fn warm_up(&self) {
        if let Err(e) = self.dummy_hash().await {
            tracing::warn!(error = %e, "cannot precompute the dummy password hash");
        }
    }

    async fn dummy_hash(&self) -> Result<String, PasswordError> {
        self.dummy
            .get_or_try_init(|| async { self.hash(&Secret::new("latchkey-dummy-password")).await })
            .await
            .cloned()
    }

    /// Spend the same work as [`PasswordHasher::verify`] against a throwaway hash, so
    /// that an unknown account answers as slowly as a wrong password.
    pub(crate) async fn verify_dummy(&self, password: &Secret) -> Result<(), PasswordError> {
        let dummy = self.dummy_hash().await?;
        self.verify(password, &dummy).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new(2);
        let phc = h.hash(&Secret::new("hunter22")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(h.verify(&Secret::new("hunter22"), &phc).await.unwrap());
        assert!(!h.verify(&Secret::new("hunter23"), &phc).await.unwrap());
        assert!(h.verify(&Secret::new("x"), "not a hash").await.is_err());
        let again = h.hash(&Secret::new("hunter22")).await.unwrap();
        assert_ne!(phc, again, "salts must differ");
        h.verify_dummy(&Secret::new("whatever")).await.unwrap();
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert!(!format!("{:?}", Secret::new("hunter22")).contains("hunter22"));
    }
}
