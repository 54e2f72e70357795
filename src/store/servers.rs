//! What the backends on a network server (Redis, PostgreSQL) share: one entry of shared state per
//! configuration, write counters, and the TLS crypto provider.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::StoreStats;
use crate::exec::lock;

/// The shared state of each configuration, made on first use and kept for the process.
pub struct Registry<Config, Server> {
    servers: OnceLock<Mutex<HashMap<Config, Arc<Server>>>>,
}

impl<Config: Hash + Eq + Clone, Server: Default> Registry<Config, Server> {
    pub const fn new() -> Self {
        Registry {
            servers: OnceLock::new(),
        }
    }

    pub fn server(&self, config: &Config) -> Arc<Server> {
        let servers = self.servers.get_or_init(|| Mutex::new(HashMap::new()));
        Arc::clone(lock(servers).entry(config.clone()).or_default())
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
