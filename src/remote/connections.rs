//! What every server backend (Redis, PostgreSQL, MongoDB, S3) keeps per configuration: its
//! resources (made once per process), one shared connection, write counters, and the TLS crypto
//! provider.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

use crate::contract::StoreStats;
use crate::error::{PersistError, Result};
use crate::exec::{lock, read, write};

/// The resources of each configuration, made on first use and kept for the process.
pub struct PerConfig<Config, Resources> {
    resources: OnceLock<Mutex<HashMap<Config, Arc<Resources>>>>,
}

impl<Config: Hash + Eq + Clone, Resources: Default> Default for PerConfig<Config, Resources> {
    fn default() -> Self {
        Self::new()
    }
}

impl<Config: Hash + Eq + Clone, Resources: Default> PerConfig<Config, Resources> {
    pub const fn new() -> Self {
        PerConfig {
            resources: OnceLock::new(),
        }
    }

    pub fn get(&self, config: &Config) -> Arc<Resources> {
        let resources = self.resources.get_or_init(|| Mutex::new(HashMap::new()));
        Arc::clone(lock(resources).entry(config.clone()).or_default())
    }
}

/// A connection in use, and which one it is: [`SharedConnection::forget`] drops it only if no newer one
/// replaced it meanwhile.
#[derive(Clone)]
pub struct Link<C> {
    pub conn: C,
    pub epoch: u64,
}

/// One connection per configuration, shared by every store of it: opened on first use, by one
/// caller at a time; callers that queued behind an attempt share its outcome, so an outage fails
/// them all together, not one connect timeout after another.
pub struct SharedConnection<C> {
    /// Read on every command by every store: a read lock, uncontended.
    open: RwLock<Option<Link<C>>>,
    connecting: tokio::sync::Mutex<()>,
    last_failure: Mutex<Option<(Instant, PersistError)>>,
    /// Numbers the connections made, for `Link::epoch`.
    epochs: AtomicU64,
    /// Bumped by `close`, so that a connect that was in flight is not kept.
    closes: AtomicU64,
}

impl<C> Default for SharedConnection<C> {
    fn default() -> Self {
        SharedConnection {
            open: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            last_failure: Mutex::new(None),
            epochs: AtomicU64::new(0),
            closes: AtomicU64::new(0),
        }
    }
}

impl<C: Clone> SharedConnection<C> {
    /// The open connection if `usable` says it still is, else one made by `connect`.
    pub async fn get<F>(&self, usable: impl Fn(&C) -> bool, connect: F) -> Result<Link<C>>
    where
        F: Future<Output = Result<C>>,
    {
        let current = || read(&self.open).clone().filter(|link| usable(&link.conn));
        if let Some(link) = current() {
            return Ok(link);
        }
        let arrived = Instant::now();
        let _connecting = self.connecting.lock().await;
        if let Some(link) = current() {
            return Ok(link);
        }
        if let Some((failed_at, error)) = &*lock(&self.last_failure) {
            if *failed_at >= arrived {
                return Err(error.clone());
            }
        }
        let closes = self.closes.load(Ordering::Acquire);
        match connect.await {
            Ok(conn) => {
                let link = Link {
                    conn,
                    epoch: self.epochs.fetch_add(1, Ordering::AcqRel) + 1,
                };
                let mut open = write(&self.open);
                // A close() during the connect: this operation uses the connection, nothing
                // keeps it.
                if self.closes.load(Ordering::Acquire) == closes {
                    *open = Some(link.clone());
                }
                Ok(link)
            }
            Err(error) => {
                *lock(&self.last_failure) = Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// Drop connection `epoch` if it is still the open one: the next `get` connects again.
    pub fn forget(&self, epoch: u64) {
        let mut open = write(&self.open);
        if open.as_ref().is_some_and(|link| link.epoch == epoch) {
            *open = None;
        }
    }

    /// Drop the connection (operations in flight finish on their clone; a connect in flight is
    /// not kept); later use connects again.
    pub fn close(&self) {
        let mut open = write(&self.open);
        self.closes.fetch_add(1, Ordering::AcqRel);
        *open = None;
    }
}

/// Documents written and the commits (round trips, transactions) that wrote them.
#[derive(Default)]
pub struct Counters {
    writes: AtomicU64,
    commits: AtomicU64,
}

impl Counters {
    /// One commit that changed `written` documents; one that changed none is not counted.
    pub fn count(&self, written: u64) {
        if written > 0 {
            self.writes.fetch_add(written, Ordering::Relaxed);
            self.commits.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> StoreStats {
        StoreStats {
            writes: self.writes.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
        }
    }
}

/// rustls needs a process-wide crypto provider before the first TLS connection.
pub fn install_crypto_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Err means another library installed one first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
