//! `RedisStore`: one hash per entity (`{prefix}:["namespace","entity"]`, field = id, value =
//! JSON text) over one multiplexed, auto-reconnecting connection per configuration, shared by
//! every store in the process.
//!
//! Every write is a single command, acknowledged by Redis before the future resolves. Listing
//! an entity reads its own hash (HKEYS), never the keyspace. Each command is bounded by the
//! command timeout, so an outage turns into `PERSIST_UNAVAILABLE` errors, and the connection
//! manager reconnects when the server returns, without recreating stores.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};
use serde_json::{json, Value};

use super::{
    entity_segments, namespace_of, Doc, InitReport, Kind, Options, Reply, Request, Response, Store,
    StoreStats, WriteMode,
};
use crate::error::{PersistError, RedisFailure, Result};
use crate::exec::{lock, spawn};
use crate::json::is_valid_json;

/// Fields fetched per HSCAN step while validating an entity at init.
const SCAN_COUNT: usize = 1000;

/// Moves a field that is not JSON to the entity's quarantine hash (field `{id}@{ms}`), only if
/// it still holds the value seen, so a concurrent rewrite by another process is never moved.
const MOVE_ASIDE_IF_UNCHANGED: &str = "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then \
     redis.call('HSET', KEYS[2], ARGV[1] .. '@' .. ARGV[3], ARGV[2]); \
     return redis.call('HDEL', KEYS[1], ARGV[1]) else return 0 end";

/// Writes (id, text) pairs from ARGV; ARGV[1] is the mode: `changed` skips fields already
/// holding the text, `insert` skips fields that exist. Returns how many fields it wrote.
const WRITE_SOME: &str = "local written = 0 \
     for i = 2, #ARGV, 2 do \
       local write = true \
       if ARGV[1] == 'insert' then write = redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 \
       else write = redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] end \
       if write then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); written = written + 1 end \
     end return written";

const URL_ENV: &str = "BACKTEST_KIT_RS_REDIS_URL";
const DEFAULT_URL: &str = "redis://127.0.0.1:6379";
const DEFAULT_TIMEOUT_MS: u64 = 5000;

pub static KIND: Kind = Kind {
    name: "redis",
    open: |entity_name, base_dir, options| {
        let (config, prefix) = resolve(options)?;
        Ok(Arc::new(RedisStore::new(
            config,
            &prefix,
            base_dir,
            entity_name,
        )?))
    },
    describe: |options| {
        let (config, prefix) = resolve(options)?;
        Ok(json!({
            "url": redact_url(&config.url),
            "prefix": prefix,
            "connectTimeoutMs": config.connect_timeout.as_millis() as u64,
            "commandTimeoutMs": config.command_timeout.as_millis() as u64,
            "tls": { "ca": config.ca_pem.is_some() },
        }))
    },
    stats: |options| {
        let (config, _) = resolve(options)?;
        Ok(registry().counters(&config).snapshot())
    },
    close: |options| {
        let (config, _) = resolve(options)?;
        RedisStore::close(&config);
        Ok(Box::pin(async { Ok(()) }))
    },
};

/// Options with their defaults applied (env at this moment).
fn resolve(options: &Value) -> Result<(RedisConfig, String)> {
    let mut options = Options::new("redis", options)?;
    let env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    let url = options
        .string("url")?
        .or_else(|| env(URL_ENV))
        .or_else(|| env("REDIS_URL"))
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(options.invalid(format!(
            "url must be a redis:// or rediss:// URL, got {}",
            redact_url(&url)
        )));
    }
    let prefix = options
        .string("prefix")?
        .unwrap_or_else(|| "backtest-kit".to_owned());
    if prefix.is_empty() {
        return Err(options.invalid("prefix must be a non-empty string"));
    }
    let max_ms = u64::from(i32::MAX as u32);
    let connect_timeout = options
        .positive("connectTimeoutMs", max_ms)?
        .unwrap_or(DEFAULT_TIMEOUT_MS);
    let command_timeout = options
        .positive("commandTimeoutMs", max_ms)?
        .unwrap_or(DEFAULT_TIMEOUT_MS);
    let ca_pem = match options.object("tls")? {
        Some(mut tls) => {
            let ca = tls.string("ca")?;
            tls.finish()?;
            ca
        }
        None => None,
    };
    options.finish()?;
    Ok((
        RedisConfig {
            url,
            ca_pem,
            connect_timeout: Duration::from_millis(connect_timeout),
            command_timeout: Duration::from_millis(command_timeout),
        },
        prefix,
    ))
}

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
    /// Where values that are not JSON are moved.
    quarantine_key: Arc<str>,
    counters: Arc<Counters>,
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
        let namespace = namespace_of(base_dir);
        let key = entity_key(prefix, &namespace, entity_name);
        let quarantine_key = entity_key(&format!("{prefix}:quarantine"), &namespace, entity_name);
        Ok(RedisStore {
            counters: registry().counters(&config),
            config: Arc::new(config),
            client: Arc::new(client),
            key: key.into(),
            quarantine_key: quarantine_key.into(),
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
        self.bounded(cmd.query_async(&mut conn)).await
    }

    /// Run a pipeline (one round trip) with the command timeout.
    async fn query_pipeline<T: redis::FromRedisValue>(&self, pipe: redis::Pipeline) -> Result<T> {
        let mut conn = self.connection().await?;
        self.bounded(pipe.query_async(&mut conn)).await
    }

    /// A reply within the command timeout, its failures as `PersistError`.
    async fn bounded<T>(&self, reply: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
        match tokio::time::timeout(self.config.command_timeout, reply).await {
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

impl RedisStore {
    async fn run(&self, request: Request) -> Result<Response> {
        let key = &*self.key;
        match request {
            Request::Init { validate } => self.init(validate).await.map(Response::Init),
            Request::Read {
                ids,
                stop_at_missing,
                heal,
            } => {
                let mut values: Vec<Option<String>> = match ids.as_slice() {
                    [] => Vec::new(),
                    [id] => vec![
                        self.query(redis::cmd("HGET").arg(key).arg(id).to_owned())
                            .await?,
                    ],
                    _ => {
                        self.query(redis::cmd("HMGET").arg(key).arg(&ids).to_owned())
                            .await?
                    }
                };
                if stop_at_missing {
                    if let Some(first_missing) = values.iter().position(Option::is_none) {
                        values.truncate(first_missing + 1);
                    }
                }
                let mut docs = Vec::with_capacity(values.len());
                for (id, value) in ids.iter().zip(values) {
                    docs.push(match value {
                        None => Doc::Missing,
                        Some(text) if heal && !is_valid_json(text.as_bytes()) => {
                            self.move_aside(id, &text).await?;
                            Doc::Corrupt(format!(
                                "{} is not JSON; moved aside to {}",
                                self.location(id),
                                self.quarantine_key
                            ))
                        }
                        Some(text) => Doc::Text(text),
                    });
                }
                Ok(Response::Docs(docs))
            }
            Request::Has { ids } => {
                let flags = match ids.as_slice() {
                    [id] => vec![
                        self.query(redis::cmd("HEXISTS").arg(key).arg(id).to_owned())
                            .await?,
                    ],
                    _ => {
                        let mut pipe = redis::pipe();
                        for id in &ids {
                            pipe.cmd("HEXISTS").arg(key).arg(id);
                        }
                        self.query_pipeline(pipe).await?
                    }
                };
                Ok(Response::Flags(flags))
            }
            Request::Write { docs, mode, .. } => {
                // Durability is the server's (appendfsync); every write is acknowledged.
                if docs.is_empty() {
                    return Ok(Response::Written(0));
                }
                let written = match mode {
                    WriteMode::Replace => {
                        let mut cmd = redis::cmd("HSET");
                        cmd.arg(key);
                        for (id, text) in &docs {
                            cmd.arg(id).arg(text);
                        }
                        self.query::<i64>(cmd).await?;
                        docs.len()
                    }
                    WriteMode::ReplaceChanged | WriteMode::InsertOnly => {
                        let mut cmd = redis::cmd("EVAL");
                        cmd.arg(WRITE_SOME).arg(1).arg(key);
                        cmd.arg(if mode == WriteMode::InsertOnly {
                            "insert"
                        } else {
                            "changed"
                        });
                        for (id, text) in &docs {
                            cmd.arg(id).arg(text);
                        }
                        usize::try_from(self.query::<i64>(cmd).await?).unwrap_or_default()
                    }
                };
                self.counters.count(written);
                Ok(Response::Written(written))
            }
            Request::Remove { id } => {
                let removed: i64 = self
                    .query(redis::cmd("HDEL").arg(key).arg(&id).to_owned())
                    .await?;
                if removed == 0 {
                    return Err(PersistError::NotFound);
                }
                Ok(Response::Done)
            }
            Request::RemoveAll => self
                .query::<i64>(redis::cmd("DEL").arg(key).to_owned())
                .await
                .map(|_| Response::Done),
            Request::Keys => self
                .query(redis::cmd("HKEYS").arg(key).to_owned())
                .await
                .map(Response::Keys),
            Request::Scan => self
                .query(redis::cmd("HGETALL").arg(key).to_owned())
                .await
                .map(Response::Entries),
        }
    }

    /// Connect, and with `validate` move aside every field that is not JSON.
    async fn init(&self, validate: bool) -> Result<InitReport> {
        self.connection().await?;
        let mut report = InitReport::default();
        if !validate {
            return Ok(report);
        }
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
        for (id, value) in invalid {
            let location = self.location(&id);
            match self.move_aside(&id, &value).await {
                Ok(0) => {}
                Ok(_) => report.removed_invalid.push(format!(
                    "{location} (moved aside to {})",
                    self.quarantine_key
                )),
                Err(e) => report.failed_removals.push(format!("{location}: {e}")),
            }
        }
        Ok(report)
    }

    async fn move_aside(&self, id: &str, value: &str) -> Result<i64> {
        let moved_at = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        self.query(
            redis::cmd("EVAL")
                .arg(MOVE_ASIDE_IF_UNCHANGED)
                .arg(2)
                .arg(&*self.key)
                .arg(&*self.quarantine_key)
                .arg(id)
                .arg(value)
                .arg(moved_at.to_string())
                .to_owned(),
        )
        .await
    }
}

impl Store for RedisStore {
    fn submit(self: Arc<Self>, request: Request, reply: Reply) {
        spawn(async move { reply(self.run(request).await) })
    }
}

#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    commits: AtomicU64,
}

impl Counters {
    /// One write round trip that changed `written` fields.
    fn count(&self, written: usize) {
        if written > 0 {
            self.writes.fetch_add(written as u64, Ordering::Relaxed);
            self.commits.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> StoreStats {
        StoreStats {
            writes: self.writes.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
        }
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
    counters: Mutex<HashMap<RedisConfig, Arc<Counters>>>,
    slots: Mutex<HashMap<RedisConfig, Arc<ConnectSlot>>>,
    /// Bumped by every close, invalidating the connections stores cached.
    generation: AtomicU64,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        open: Mutex::new(HashMap::new()),
        counters: Mutex::new(HashMap::new()),
        slots: Mutex::new(HashMap::new()),
        generation: AtomicU64::new(0),
    })
}

impl Registry {
    fn counters(&self, config: &RedisConfig) -> Arc<Counters> {
        Arc::clone(lock(&self.counters).entry(config.clone()).or_default())
    }
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
