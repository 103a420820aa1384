//! Password hashing: argon2id (OWASP parameters m=19456 KiB, t=2, p=1), run on
//! tokio's blocking pool and gated by a semaphore so a burst of logins cannot
//! exhaust memory or starve the async executor. A hash's permit is released on the
//! hashing thread when the hash ends, so the next waiting hash starts at once.
//!
//! argon2's working memory (19 MiB at these parameters) is reused from one hash to the
//! next while others are waiting or running ([`Memory`]): allocating it per hash costs
//! a fill of 19 MiB and thousands of page faults, about a tenth of a login's CPU. When
//! the last hash of a burst ends its memory is freed, so an idle server holds none.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

fn hash_error(e: impl fmt::Display) -> PasswordError {
    PasswordError::Hash(e.to_string())
}

/// argon2 working memory kept for the next hash while hashes are waiting or running.
#[derive(Debug, Default)]
struct Memory {
    state: Mutex<MemoryState>,
    /// The most buffers kept idle (the number of permits).
    keep_at_most: usize,
}

#[derive(Debug, Default)]
struct MemoryState {
    /// Buffers of finished hashes.
    idle: Vec<Vec<Block>>,
    /// Hashes asked for and not finished (waiting for a permit or running).
    wanted: usize,
}

impl Memory {
    fn new(keep_at_most: usize) -> Self {
        Memory {
            keep_at_most,
            ..Memory::default()
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A hash ended (giving back its buffer) or was cancelled: keep at most one idle
    /// buffer per hash still wanted (and per permit), free the rest.
    fn release(&self, buffer: Option<Vec<Block>>) {
        let (surplus, unkept) = {
            let mut state = self.state();
            state.wanted = state.wanted.saturating_sub(1);
            let keep = state.wanted.min(self.keep_at_most);
            let unkept = match buffer {
                Some(b) if state.idle.len() < keep => {
                    state.idle.push(b);
                    None
                }
                other => other,
            };
            let kept = keep.min(state.idle.len());
            let surplus = state.idle.split_off(kept);
            (surplus, unkept)
        };
        // Freed outside the lock.
        drop((surplus, unkept));
    }

    fn idle_buffers(&self) -> usize {
        self.state().idle.len()
    }
}

/// One hash's claim on the shared memory, from its request until it ends. Dropped
/// without [`Claim::give_back`] (a cancelled request, a panic), it just stops counting.
struct Claim {
    memory: Arc<Memory>,
    released: bool,
}

impl Claim {
    fn new(memory: Arc<Memory>) -> Self {
        memory.state().wanted += 1;
        Claim {
            memory,
            released: false,
        }
    }

    /// A buffer of at least `blocks` blocks: an idle one, or a new one.
    fn take(&self, blocks: usize) -> Vec<Block> {
        let mut buffer = self.memory.state().idle.pop().unwrap_or_default();
        if buffer.len() < blocks {
            buffer.resize(blocks, Block::default());
        }
        buffer
    }

    fn give_back(mut self, buffer: Vec<Block>) {
        self.released = true;
        self.memory.release(Some(buffer));
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.released {
            self.memory.release(None);
        }
    }
}

fn argon2() -> Argon2<'static> {
    // The OWASP parameters are always valid.
    let params =
        Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// argon2 of `password` and `salt` into `out`, in memory the claim takes and gives back.
fn hash_into(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    claim: Claim,
) -> Result<(), PasswordError> {
    let mut blocks = claim.take(argon2.params().block_count());
    let result = argon2.hash_password_into_with_memory(password, salt, out, &mut blocks[..]);
    claim.give_back(blocks);
    result.map_err(hash_error)
}

/// A new PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of `password`.
fn hash_blocking(password: &str, claim: Claim) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let argon2 = argon2();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    hash_into(&argon2, password.as_bytes(), &salt, &mut out, claim)?;
    let salt = SaltString::encode_b64(&salt).map_err(hash_error)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(hash_error)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(hash_error)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc` (any argon2 variant, version and
/// parameters it names), compared in constant time.
fn verify_blocking(password: &str, phc: &str, claim: Claim) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(hash_error)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(hash_error)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(hash_error)?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(hash_error)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(PasswordError::Hash(
            "the stored hash has no salt or no output".to_owned(),
        ));
    };
    let mut salt_bytes = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_bytes).map_err(hash_error)?;
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = &mut out[..expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    hash_into(&argon2, password.as_bytes(), salt, out, claim)?;
    // `Output`'s equality is constant-time.
    Ok(Output::new(out).map_err(hash_error)? == expected)
}

/// Hashes and verifies passwords on a bounded blocking pool.
#[derive(Clone)]
pub(crate) struct PasswordHasher {
    permits: Arc<Semaphore>,
    memory: Arc<Memory>,
    dummy: Arc<OnceCell<String>>,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("available_permits", &self.permits.available_permits())
            .field("idle_buffers", &self.memory.idle_buffers())
            .finish()
    }
}

impl PasswordHasher {
    /// A hasher that runs at most `max_concurrent` hashes at once (at least 1).
    pub(crate) fn new(max_concurrent: usize) -> Self {
        let permits = max_concurrent.max(1);
        PasswordHasher {
            permits: Arc::new(Semaphore::new(permits)),
            memory: Arc::new(Memory::new(permits)),
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

    /// Run `f` on the blocking pool once a permit is free, with the shared memory.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(Claim) -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let claim = Claim::new(Arc::clone(&self.memory));
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| PasswordError::Task(e.to_string()))?;
        // The permit goes with the hash and is released on the hashing thread the moment
        // the hash ends, so the next waiting hash starts without waiting for this
        // request's task to be polled again.
        tokio::task::spawn_blocking(move || {
            let result = f(claim);
            drop(permit);
            result
        })
        .await
        .map_err(|e| PasswordError::Task(e.to_string()))?
    }

    /// Hash a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
    pub(crate) async fn hash(&self, password: &Secret) -> Result<String, PasswordError> {
        let password = password.clone();
        self.run(move |claim| hash_blocking(password.expose(), claim))
            .await
    }

    /// Check a password against a PHC string.
    pub(crate) async fn verify(&self, password: &Secret, phc: &str) -> Result<bool, PasswordError> {
        let password = password.clone();
        let phc = phc.to_owned();
        self.run(move |claim| verify_blocking(password.expose(), &phc, claim))
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

    /// At most `max_concurrent` hashes run at once, however many are asked for; each
    /// permit goes with its hash to the hashing thread and comes back when it ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_max_concurrent_hashes_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let h = PasswordHasher::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (h, running, most) = (h.clone(), Arc::clone(&running), Arc::clone(&most));
                tokio::spawn(async move {
                    h.run(move |_claim| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(30));
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok(i)
                    })
                    .await
                })
            })
            .collect();
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap().unwrap());
        }
        assert_eq!(done, (0..8).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(h.permits.available_permits(), 2);
        assert_eq!(h.memory.idle_buffers(), 0);
    }

    /// Stored hashes made by the argon2 crate's own API (every hash stored before the
    /// memory was reused) verify, and ours verify with it: other variants, versions,
    /// parameters and output lengths included, in one reused buffer of changing size.
    #[test]
    fn agrees_with_the_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let memory = Arc::new(Memory::new(1));
        // Another hash waiting all along: the buffer is kept between hashes, as under load.
        let _waiting = Claim::new(Arc::clone(&memory));
        let claim = || Claim::new(Arc::clone(&memory));
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let variants = [
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(19_456, 2, 1, None),
            ),
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(8, 1, 1, Some(64)),
            ),
            (
                Algorithm::Argon2i,
                Version::V0x10,
                Params::new(64, 3, 2, None),
            ),
            (
                Algorithm::Argon2d,
                Version::V0x13,
                Params::new(32_768, 1, 1, Some(16)),
            ),
        ];
        for (algorithm, version, params) in variants {
            let theirs = Argon2::new(algorithm, version, params.unwrap());
            let phc = theirs
                .hash_password(b"hunter22", &salt)
                .unwrap()
                .to_string();
            assert!(verify_blocking("hunter22", &phc, claim()).unwrap(), "{phc}");
            assert!(
                !verify_blocking("hunter23", &phc, claim()).unwrap(),
                "{phc}"
            );
        }
        assert_eq!(memory.idle_buffers(), 1, "the buffer was kept and reused");
        let ours = hash_blocking("hunter22", claim()).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2().verify_password(b"hunter22", &parsed).is_ok());
        assert!(argon2().verify_password(b"hunter23", &parsed).is_err());
        // Malformed stored hashes are errors, not mismatches.
        for bad in [
            "not a hash",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
            "$scrypt$ln=1,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        ] {
            assert!(verify_blocking("x", bad, claim()).is_err(), "{bad}");
        }
    }

    /// Memory is kept only for a hash that is waiting or running, at most one buffer per
    /// permit; after a burst nothing is held.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_is_kept_only_while_hashes_wait() {
        let memory = Arc::new(Memory::new(2));
        let claim = || Claim::new(Arc::clone(&memory));
        claim().give_back(vec![Block::default(); 8]);
        assert_eq!(memory.idle_buffers(), 0, "no other hash wants it");
        let waiting: Vec<Claim> = (0..4).map(|_| claim()).collect();
        for _ in 0..4 {
            claim().give_back(vec![Block::default(); 8]);
        }
        assert_eq!(memory.idle_buffers(), 2, "at most one per permit");
        let next = claim();
        assert!(next.take(16).len() >= 16);
        assert_eq!(memory.idle_buffers(), 1);
        drop(next);
        drop(waiting);
        assert_eq!(
            memory.idle_buffers(),
            0,
            "cancelled claims free what nobody wants"
        );

        let h = PasswordHasher::new(2);
        let phc = h.hash(&Secret::new("hunter22")).await.unwrap();
        let mut burst = tokio::task::JoinSet::new();
        for i in 0..6 {
            let (h, phc) = (h.clone(), phc.clone());
            burst.spawn(async move {
                let password = if i % 2 == 0 { "hunter22" } else { "wrong" };
                (i, h.verify(&Secret::new(password), &phc).await.unwrap())
            });
        }
        while let Some(done) = burst.join_next().await {
            let (i, matched) = done.unwrap();
            assert_eq!(matched, i % 2 == 0);
        }
        assert_eq!(h.memory.state().wanted, 0);
        assert_eq!(h.memory.idle_buffers(), 0, "an idle hasher holds no memory");
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert!(!format!("{:?}", Secret::new("hunter22")).contains("hunter22"));
    }
}
