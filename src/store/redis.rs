//! `RedisStore`: one hash per entity (`{prefix}:["namespace","entity"]`, field = id, value =
//! JSON text) over one multiplexed, auto-reconnecting connection per configuration, shared by
//! every store in the process.
//!
//! Every write is a single command, acknowledged by Redis before the future resolves. Listing
//! an entity reads its own hash (HKEYS), never the keyspace. Each command is bounded by the
//! command timeout, so an outage turns into `PERSIST_UNAVAILABLE` errors, and the connection
//! manager reconnects when the server returns, without recreating stores.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};

use super::{entity_segments, namespace_of, validate_id, InitReport, PersistStore};
use crate::error::{PersistError, RedisFailure, Result};
use crate::json::is_valid_json;

/// Fields fetched per HSCAN step while validating an entity at init.
const SCAN_COUNT: usize = 1000;

/// Deletes a field only if it still holds the invalid value init saw, so a concurrent rewrite
/// by another process is never removed.
const DELETE_IF_UNCHANGED: &str =
    "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) else return 0 end";

/// How to reach the server: one shared connection per distinct value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedisConfig {
    /// `redis://` or `rediss://`, with optional `user:password@` and `/db`.
    pub url: String,
    /// PEM root certificate to trust for `rediss://` (a private CA); system roots otherwise.
    pub ca_pem: Option<String>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
}

#[derive(Clone)]
pub struct RedisStore {
    config: Arc<RedisConfig>,
    /// Built once, validated in `new`; connecting happens on first use.
    client: Arc<Client>,
    key: Arc<str>,
    /// The shared connection as last looked up, with the registry generation it belongs to,
    /// so that a hot path does not hash the configuration (and its CA) on every command.
    cached: Arc<Mutex<Option<(u64, ConnectionManager)>>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &redact_url(&self.config.url))
            .field("key", &self.key)
            .finish()
    }
}

impl RedisStore {
    /// Parses the URL and names the hash; no I/O.
    pub fn new(
        config: RedisConfig,
        prefix: &str,
        base_dir: &str,
        entity_name: &str,
    ) -> Result<Self> {
        entity_segments(entity_name)?;
        let client = build_client(&config)?;
        let key = entity_key(prefix, &namespace_of(base_dir), entity_name);
        Ok(RedisStore {
            config: Arc::new(config),
            client: Arc::new(client),
            key: key.into(),
            cached: Arc::new(Mutex::new(None)),
        })
    }

    /// The Redis key of this entity's hash.
    pub fn key(&self) -> &str {
        &self.key
    }

    async fn connection(&self) -> Result<ConnectionManager> {
        let generation = registry().generation.load(Ordering::Acquire);
        if let Some((cached_generation, conn)) = &*lock(&self.cached) {
            if *cached_generation == generation {
                return Ok(conn.clone());
            }
        }
        let conn = self.shared_connection().await?;
        *lock(&self.cached) = Some((generation, conn.clone()));
        Ok(conn)
    }

    async fn shared_connection(&self) -> Result<ConnectionManager> {
        if let Some(conn) = lock(&registry().open).get(&*self.config) {
            return Ok(conn.clone());
        }
        // One connect attempt per configuration at a time; callers that queued behind an
        // attempt share its result, so an outage fails them all together, not one by one.
        let slot = Arc::clone(
            lock(&registry().slots)
                .entry((*self.config).clone())
                .or_default(),
        );
        let arrived = Instant::now();
        let _connecting = slot.connecting.lock().await;
        if let Some(conn) = lock(&registry().open).get(&*self.config) {
            return Ok(conn.clone());
        }
        if let Some((failed_at, error)) = &*lock(&slot.last_failure) {
            if *failed_at >= arrived {
                return Err(error.to_error());
            }
        }
        match self.connect().await {
            Ok(conn) => {
                lock(&registry().open).insert((*self.config).clone(), conn.clone());
                Ok(conn)
            }
            Err(error) => {
                if let PersistError::Redis { url, detail, kind } = &error {
                    let shared = SharedFailure {
                        url: url.clone(),
                        detail: detail.clone(),
                        kind: *kind,
                    };
                    *lock(&slot.last_failure) = Some((Instant::now(), shared));
                }
                Err(error)
            }
        }
    }

    async fn connect(&self) -> Result<ConnectionManager> {
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(self.config.command_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connect = ConnectionManager::new_with_config((*self.client).clone(), manager_config);
        match tokio::time::timeout(self.config.connect_timeout, connect).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.failure(&e)),
            Err(_) => Err(self.timed_out("connect", self.config.connect_timeout)),
        }
    }

    /// Run one command with the command timeout.
    async fn query<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T> {
        let mut conn = self.connection().await?;
        match tokio::time::timeout(self.config.command_timeout, cmd.query_async(&mut conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.failure(&e)),
            Err(_) => Err(self.timed_out("reply", self.config.command_timeout)),
        }
    }

    fn failure(&self, err: &RedisError) -> PersistError {
        let kind = if err.kind() == redis::ErrorKind::AuthenticationFailed
            || matches!(err.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
        {
            RedisFailure::Auth
        } else if err.is_io_error()
            || err.is_connection_refusal()
            || err.is_timeout()
            || err.is_connection_dropped()
            || err.is_unrecoverable_error()
        {
            RedisFailure::Unavailable
        } else {
            RedisFailure::Other
        };
        PersistError::Redis {
            url: redact_url(&self.config.url),
            detail: scrub_secrets(&err.to_string(), &self.config.url),
            kind,
        }
    }

    fn timed_out(&self, what: &str, limit: Duration) -> PersistError {
        PersistError::Redis {
            url: redact_url(&self.config.url),
            detail: format!("no {what} within {} ms", limit.as_millis()),
            kind: RedisFailure::Unavailable,
        }
    }

    fn location(&self, id: &str) -> String {
        format!(
            "{} key={} field={id}",
            redact_url(&self.config.url),
            self.key
        )
    }

    /// Drop this configuration's shared connection; later use connects again.
    pub fn close(config: &RedisConfig) {
        lock(&registry().open).remove(config);
        // Stores holding the closed connection look it up again.
        registry().generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl PersistStore for RedisStore {
    async fn init(&self) -> Result<InitReport> {
        let mut invalid = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, page): (u64, Vec<(String, String)>) = self
                .query(
                    redis::cmd("HSCAN")
                        .arg(&*self.key)
                        .arg(cursor)
                        .arg("COUNT")
                        .arg(SCAN_COUNT)
                        .to_owned(),
                )
                .await?;
            invalid.extend(
                page.into_iter()
                    .filter(|(_, value)| !is_valid_json(value.as_bytes())),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut report = InitReport::default();
        for (id, value) in invalid {
            let location = self.location(&id);
            let removed: Result<i64> = self
                .query(
                    redis::cmd("EVAL")
                        .arg(DELETE_IF_UNCHANGED)
                        .arg(1)
                        .arg(&*self.key)
                        .arg(&id)
                        .arg(&value)
                        .to_owned(),
                )
                .await;
            match removed {
                Ok(0) => {}
                Ok(_) => report.removed_invalid.push(location),
                Err(e) => report.failed_removals.push(format!("{location}: {e}")),
            }
        }
        Ok(report)
    }

    async fn read(&self, id: &str) -> Result<Option<String>> {
        validate_id(id)?;
        self.query(redis::cmd("HGET").arg(&*self.key).arg(id).to_owned())
            .await
    }

    async fn has(&self, id: &str) -> Result<bool> {
        validate_id(id)?;
        self.query(redis::cmd("HEXISTS").arg(&*self.key).arg(id).to_owned())
            .await
    }

    async fn write(&self, id: &str, json: String) -> Result<()> {
        validate_id(id)?;
        self.query::<i64>(
            redis::cmd("HSET")
                .arg(&*self.key)
                .arg(id)
                .arg(json)
                .to_owned(),
        )
        .await
        .map(drop)
    }

    async fn remove(&self, id: &str) -> Result<()> {
        validate_id(id)?;
        let removed: i64 = self
            .query(redis::cmd("HDEL").arg(&*self.key).arg(id).to_owned())
            .await?;
        if removed == 0 {
            return Err(PersistError::NotFound);
        }
        Ok(())
    }

    async fn remove_all(&self) -> Result<()> {
        self.query::<i64>(redis::cmd("DEL").arg(&*self.key).to_owned())
            .await
            .map(drop)
    }

    async fn keys(&self) -> Result<Vec<String>> {
        self.query(redis::cmd("HKEYS").arg(&*self.key).to_owned())
            .await
    }
}

/// The outcome of the last failed connect attempt, handed to callers that waited for it.
#[derive(Clone)]
struct SharedFailure {
    url: String,
    detail: String,
    kind: RedisFailure,
}

impl SharedFailure {
    fn to_error(&self) -> PersistError {
        PersistError::Redis {
            url: self.url.clone(),
            detail: self.detail.clone(),
            kind: self.kind,
        }
    }
}

#[derive(Default)]
struct ConnectSlot {
    connecting: tokio::sync::Mutex<()>,
    last_failure: Mutex<Option<(Instant, SharedFailure)>>,
}

struct Registry {
    open: Mutex<HashMap<RedisConfig, ConnectionManager>>,
    slots: Mutex<HashMap<RedisConfig, Arc<ConnectSlot>>>,
    /// Bumped by every close, invalidating the connections stores cached.
    generation: AtomicU64,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        open: Mutex::new(HashMap::new()),
        slots: Mutex::new(HashMap::new()),
        generation: AtomicU64::new(0),
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The map stays consistent even if a holder panicked.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn build_client(config: &RedisConfig) -> Result<Client> {
    let invalid = |e: RedisError| PersistError::InvalidConfig {
        detail: format!(
            "redis URL {}: {}",
            redact_url(&config.url),
            scrub_secrets(&e.to_string(), &config.url)
        ),
    };
    match &config.ca_pem {
        Some(ca) => {
            install_crypto_provider();
            Client::build_with_tls(
                config.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.as_bytes().to_vec()),
                },
            )
            .map_err(invalid)
        }
        None => {
            if config.url.starts_with("rediss:") {
                install_crypto_provider();
            }
            Client::open(config.url.as_str()).map_err(invalid)
        }
    }
}

/// rustls needs a process-wide crypto provider before the first TLS connection.
fn install_crypto_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Err means another library installed one first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// `{prefix}:["namespace","entity"]`: JSON makes the pair unambiguous whatever the
/// characters in either part.
pub fn entity_key(prefix: &str, namespace: &str, entity: &str) -> String {
    let pair = serde_json::to_string(&[namespace, entity])
        .unwrap_or_else(|_| format!("[{namespace:?},{entity:?}]"));
    format!("{prefix}:{pair}")
}

/// The URL with any `user:password@` replaced, for messages and logs. Everything up to the
/// last `@` is credentials, even if a password holds an unencoded `/`, `?` or `#`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Remove the URL's user name and password from text a library produced, in case it echoed
/// them (the user info whole, the password at any length, a user name of 3 characters or more).
fn scrub_secrets(text: &str, url: &str) -> String {
    let (Some(scheme_end), Some(at)) = (url.find("://"), url.rfind('@')) else {
        return text.to_owned();
    };
    if at <= scheme_end {
        return text.to_owned();
    }
    let user_info = &url[scheme_end + 3..at];
    let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
    let mut scrubbed = text.replace(user_info, "***");
    if !password.is_empty() {
        scrubbed = scrubbed.replace(password, "***");
    }
    if user.len() >= 3 {
        scrubbed = scrubbed.replace(user, "***");
    }
    scrubbed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unambiguous() {
        assert_eq!(
            entity_key("backtest-kit", "dump/data/signal", "BTC_s_e"),
            "backtest-kit:[\"dump/data/signal\",\"BTC_s_e\"]"
        );
        assert_ne!(entity_key("p", "a:b", "c"), entity_key("p", "a", "b:c"));
        assert_ne!(
            entity_key("p", "a\",\"b", "c"),
            entity_key("p", "a", "b\",\"c")
        );
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://alice:s3cret@127.0.0.1:6380/2"),
            "redis://***@127.0.0.1:6380/2"
        );
        assert_eq!(redact_url("rediss://:pw@host"), "rediss://***@host");
        assert_eq!(redact_url("redis://host:1/0"), "redis://host:1/0");
        assert_eq!(
            redact_url("redis://:hunter/22?#x@host:6379/1"),
            "redis://***@host:6379/1"
        );
        assert_eq!(scrub_secrets("bad pw ab!", "redis://:ab@h"), "bad pw ***!");
        assert_eq!(
            scrub_secrets("WRONGPASS for alice with s3cret", "redis://alice:s3cret@h"),
            "WRONGPASS for *** with ***"
        );
    }

    #[test]
    fn bad_urls_fail_without_leaking_the_password() {
        let config = RedisConfig {
            url: "http://bob:hunter22@host".into(),
            ca_pem: None,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(1),
        };
        let err = RedisStore::new(config, "p", "ns", "e").expect_err("not a redis URL");
        assert_eq!(err.code(), "PERSIST_INVALID_CONFIG");
        assert!(!err.to_string().contains("hunter22"), "{err}");
    }
}
