//! `RedisStore`: one hash per entity (`{prefix}:["namespace","entity"]`, field = id, value =
//! JSON text) over one multiplexed, auto-reconnecting connection per configuration, shared by
//! every store in the process: to one server, to a Redis Cluster (seed nodes; MOVED and ASK
//! are followed), or to the primary that Redis Sentinels name (found again after a failover).
//! On a cluster the hash's name is a hash tag, `{prefix}:{["namespace","entity"]}`, so an
//! entity and its quarantine share a slot.
//!
//! With `replicas: n`, a write is followed on the same connection by `WAIT n timeout` and
//! resolves only once n replicas have it.
//!
//! Every write is a single command, acknowledged by Redis before the future resolves. Listing
//! an entity reads its own hash (HKEYS), never the keyspace. Each command is bounded by the
//! command timeout, so an outage turns into `PERSIST_UNAVAILABLE` errors, and the connection
//! manager reconnects when the server returns, without recreating stores.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, RedisError, TlsMode};
use serde_json::{json, Value};

use crate::contract::options::{query_pairs, take_url_params, Setting};
use crate::contract::{BackendConfig, Listing, Options, Storage, Store, StoreStats, WriteMode};
use crate::error::{PersistError, Result, ServerFailure};
use crate::registry::Backend;

use crate::remote::connections::{
    install_crypto_provider, Counters, Link, PerConfig, SharedConnection,
};
use crate::remote::credentials::{redact_url, scrub_secrets};
use crate::remote::engine::{now_ms, Batch, Documents, Entity, Judged, Served};

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
/// Comma-separated seed URLs of a Redis Cluster.
const CLUSTER_ENV: &str = "BACKTEST_KIT_RS_REDIS_CLUSTER";
const DEFAULT_REPLICAS_TIMEOUT_MS: u64 = 1000;
const DEFAULT_URL: &str = "redis://127.0.0.1:6379";
const DEFAULT_TIMEOUT_MS: u64 = 5000;

pub struct RedisBackend;

impl Backend for RedisBackend {
    type Config = (RedisConfig, Settings);

    const NAME: &str = "redis";
    const SCHEMES: &[&str] = &["redis", "rediss"];

    fn open(
        &self,
        (config, settings): (RedisConfig, Settings),
        entity: &str,
        base_dir: &str,
    ) -> Result<Arc<dyn Store>> {
        Ok(Arc::new(Served(RedisStore::new(
            config, &settings, base_dir, entity,
        )?)))
    }

    fn describe(&self, (config, settings): &(RedisConfig, Settings)) -> Value {
        let mut described = json!({
            "url": redact_url(&config.url),
            "prefix": settings.prefix,
            "connectTimeoutMs": config.connect_timeout.as_millis() as u64,
            "commandTimeoutMs": config.command_timeout.as_millis() as u64,
            "tls": { "ca": config.ca_pem.is_some() },
        });
        if !config.cluster.is_empty() {
            described["cluster"] = json!(config
                .cluster
                .iter()
                .map(|u| redact_url(u))
                .collect::<Vec<_>>());
        }
        if let Some(sentinel) = &config.sentinel {
            described["sentinel"] = json!({
                "nodes": sentinel.nodes.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
                "masterName": sentinel.master_name,
                "credentials": sentinel.username.is_some() || sentinel.password.is_some(),
                "db": sentinel.db,
            });
        }
        if let Some(replicas) = &settings.replicas {
            described["replicas"] = json!(replicas.count);
            described["replicasTimeoutMs"] = json!(replicas.timeout.as_millis() as u64);
        }
        described
    }

    fn stats(&self, (config, _): &(RedisConfig, Settings)) -> StoreStats {
        PER_CONFIG.get(config).counters.snapshot()
    }

    fn entities(
        &self,
        (config, settings): (RedisConfig, Settings),
        _root: &str,
    ) -> Result<Listing> {
        if !config.cluster.is_empty() {
            return Err(PersistError::InvalidConfig {
                detail: "redis: listing the entities of a Redis Cluster is not supported (SCAN \
                         covers one node)"
                    .into(),
            });
        }
        let prefix = settings.prefix.clone();
        // A store of no entity: its connection is the configuration's shared one.
        let probe = RedisStore::new(config, &settings, "", "")?;
        Ok(Box::pin(async move { probe.entities(&prefix).await }))
    }

    fn release((config, _): &(RedisConfig, Settings)) {
        RedisStore::close(config);
    }
}

/// What a store does on the connection beyond reaching it.
#[derive(Debug, Clone)]
pub struct Settings {
    prefix: String,
    replicas: Option<Replicas>,
}

/// `WAIT count timeout` after every write.
#[derive(Debug, Clone, Copy)]
struct Replicas {
    count: u64,
    timeout: Duration,
}

/// Options with their defaults applied (env at this moment).
impl BackendConfig for (RedisConfig, Settings) {
    fn from_options(options: &Value) -> Result<Self> {
        let mut options = Options::new("redis", options)?;
        let url_option = options.string("url")?;
        let cluster_option = options.strings("cluster")?;
        let sentinel = match options.object("sentinel")? {
            Some(sentinel) => Some(sentinel_config(sentinel)?),
            None => None,
        };
        let given = [
            url_option.is_some(),
            cluster_option.is_some(),
            sentinel.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(options.invalid(
                "give one of url (one server), cluster (seed nodes) or sentinel (sentinel nodes)",
            ));
        }
        let cluster = match (cluster_option, &url_option, &sentinel) {
            (Some(seeds), _, _) => seeds,
            (None, Some(_), _) | (None, None, Some(_)) => Vec::new(),
            (None, None, None) => cluster_from_env(),
        };
        let (url, url_params) = node_url(&options, url_option, &cluster, sentinel.as_ref())?;
        let prefix = options
            .string_or_url_param("prefix", &url_params)?
            .unwrap_or_else(|| "backtest-kit".to_owned());
        if prefix.is_empty() {
            return Err(options.invalid("prefix must be a non-empty string"));
        }
        if !cluster.is_empty() && prefix.contains(['{', '}']) {
            return Err(options.invalid(
                "on a cluster, prefix must not contain { or }: they would move keys to other slots",
            ));
        }
        let max_ms = u64::from(i32::MAX as u32);
        let connect_timeout = options.milliseconds("connectTimeoutMs", DEFAULT_TIMEOUT_MS)?;
        let command_timeout = options.milliseconds("commandTimeoutMs", DEFAULT_TIMEOUT_MS)?;
        let replicas = options.count("replicas", 64)?;
        let replicas_timeout = options.positive("replicasTimeoutMs", max_ms)?;
        if replicas.is_none() && replicas_timeout.is_some() {
            return Err(options.invalid("replicasTimeoutMs needs replicas"));
        }
        let ca_pem = options.tls_ca()?;
        if ca_pem.is_some()
            && sentinel
                .as_ref()
                .is_some_and(|s| !s.nodes[0].starts_with("rediss:"))
        {
            return Err(options.invalid("tls.ca needs rediss:// sentinel nodes"));
        }
        options.finish()?;
        let replicas = replicas.filter(|n| *n > 0).map(|count| Replicas {
            count,
            timeout: Duration::from_millis(replicas_timeout.unwrap_or(DEFAULT_REPLICAS_TIMEOUT_MS)),
        });
        Ok((
            RedisConfig {
                url,
                cluster,
                sentinel,
                ca_pem,
                connect_timeout,
                command_timeout,
                replicas_timeout: replicas.map_or(Duration::ZERO, |r| r.timeout),
            },
            Settings { prefix, replicas },
        ))
    }

    fn storage(&self) -> Storage {
        storage(&self.0)
    }
}

/// The URL of the server, or of the first cluster or sentinel node, with our own parameters
/// taken out of it, every node URL checked; messages name where the URL came from.
fn node_url(
    options: &Options,
    url_option: Option<String>,
    cluster: &[String],
    sentinel: Option<&SentinelConfig>,
) -> Result<(String, Vec<(String, String)>)> {
    let first_node = cluster.first().or_else(|| sentinel.map(|s| &s.nodes[0]));
    let (url, origin) = match first_node {
        Some(first) => (first.clone(), "the cluster or sentinel nodes".to_owned()),
        None => match url_option {
            Some(url) => (url, "the url option".to_owned()),
            None => Setting::from_env(&[URL_ENV, "REDIS_URL"])
                .map(|setting| (setting.value, setting.origin))
                .unwrap_or_else(|| (DEFAULT_URL.to_owned(), "the default".to_owned())),
        },
    };
    // `?prefix=` is ours; redis-rs reads only `protocol` and would ignore anything else silently.
    let (url, url_params) = take_url_params(&url, &["prefix"])
        .map_err(|detail| options.invalid(format!("{detail} (from {origin})")))?;
    if let Some((_, unknown, _)) = query_pairs(&url).find(|(_, name, _)| *name != "protocol") {
        return Err(options.invalid(format!(
            "url: unknown parameter {unknown:?} (from {origin}); a Redis URL takes ?prefix= and ?protocol="
        )));
    }
    let sentinel_nodes = sentinel.iter().flat_map(|s| s.nodes.iter());
    let nodes = cluster
        .iter()
        .chain(sentinel_nodes)
        .chain(std::iter::once(&url));
    check_node_urls(options, nodes, &origin)?;
    Ok((url, url_params))
}

/// `BACKTEST_KIT_RS_REDIS_CLUSTER`: comma-separated seed nodes, none when unset.
fn cluster_from_env() -> Vec<String> {
    std::env::var(CLUSTER_ENV)
        .map(|seeds| {
            seeds
                .split(',')
                .map(str::trim)
                .filter(|seed| !seed.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Every node must be a `redis://` or `rediss://` URL that redis-rs can read; shown redacted.
fn check_node_urls<'a>(
    options: &Options,
    nodes: impl Iterator<Item = &'a String>,
    origin: &str,
) -> Result<()> {
    for each in nodes {
        if !(each.starts_with("redis://") || each.starts_with("rediss://")) {
            return Err(options.invalid(format!(
                "url, cluster seeds and sentinel nodes must be redis:// or rediss:// URLs, got {} (from {origin})",
                redact_url(each)
            )));
        }
        if redis::IntoConnectionInfo::into_connection_info(each.as_str()).is_err() {
            return Err(options.invalid(format!(
                "{} (from {origin}) is not a valid Redis URL (redis[s]://[user:password@]host[:port][/db])",
                redact_url(each)
            )));
        }
    }
    Ok(())
}

/// `sentinel: { nodes, masterName, username, password, db }`: the sentinels' own credentials
/// are in their URLs, the primary's here.
fn sentinel_config(mut sentinel: Options) -> Result<SentinelConfig> {
    let nodes = sentinel
        .strings("nodes")?
        .ok_or_else(|| sentinel.invalid("sentinel.nodes (the sentinels' URLs) is required"))?;
    let master_name = sentinel
        .string("masterName")?
        .filter(|name| !name.is_empty())
        .ok_or_else(|| {
            sentinel.invalid("sentinel.masterName (the name the sentinels monitor) is required")
        })?;
    let username = sentinel.string("username")?;
    let password = sentinel.secret("password")?;
    let db = sentinel.count("db", i32::MAX as u64)?.unwrap_or(0) as i64;
    let tls = nodes[0].starts_with("rediss:");
    if nodes.iter().any(|node| node.starts_with("rediss:") != tls) {
        return Err(sentinel.invalid("sentinel nodes must all be redis:// or all rediss://"));
    }
    // One set of credentials reaches every sentinel (what the client can do).
    let mut credentials = None;
    for node in &nodes {
        let user_info = node
            .split_once("://")
            .and_then(|(_, rest)| rest.rsplit_once('@'))
            .map(|(user_info, _)| user_info);
        if *credentials.get_or_insert(user_info) != user_info {
            return Err(
                sentinel.invalid("every sentinel node must have the same user and password")
            );
        }
    }
    sentinel.finish()?;
    Ok(SentinelConfig {
        nodes,
        master_name,
        username,
        password,
        db,
    })
}

/// A primary found through Redis Sentinel. With `rediss://` sentinels, the primary is reached
/// over TLS too.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SentinelConfig {
    /// The sentinels' URLs, with the sentinels' credentials if they need any.
    pub nodes: Vec<String>,
    pub master_name: String,
    /// The primary's credentials and database.
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
}

/// How to reach the server: one shared connection per distinct value. `Debug` shows the URL
/// with its credentials redacted.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RedisConfig {
    /// `redis://` or `rediss://`, with optional `user:password@` and `/db`; on a cluster, the
    /// first seed (for messages).
    pub url: String,
    /// Seed nodes of a Redis Cluster; empty for one server.
    pub cluster: Vec<String>,
    /// Set when the primary is found through sentinels (`url` is then the first sentinel).
    pub sentinel: Option<SentinelConfig>,
    /// PEM root certificate to trust for `rediss://` (a private CA); system roots otherwise.
    pub ca_pem: Option<String>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// How long writes wait for replicas (`WAIT`); the connection's own response timeout must
    /// allow for it. Zero without `replicas`.
    pub replicas_timeout: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field(
                "cluster",
                &self
                    .cluster
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>(),
            )
            .field(
                "ca_pem",
                &self
                    .ca_pem
                    .as_ref()
                    .map(|pem| format!("{} bytes", pem.len())),
            )
            .field(
                "sentinel",
                &self.sentinel.as_ref().map(|s| {
                    let nodes: Vec<_> = s.nodes.iter().map(|u| redact_url(u)).collect();
                    format!("{} via {}", s.master_name, nodes.join(","))
                }),
            )
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

impl RedisConfig {
    /// Text a library produced, without any credential this configuration holds.
    fn scrub(&self, text: &str) -> String {
        let mut urls: Vec<String> = std::iter::once(&self.url)
            .chain(&self.cluster)
            .cloned()
            .collect();
        if let Some(sentinel) = &self.sentinel {
            urls.extend(sentinel.nodes.iter().cloned());
            // The primary's credentials, in the shape the URL scrubber reads.
            let user = sentinel.username.as_deref().unwrap_or_default();
            let password = sentinel.password.as_deref().unwrap_or_default();
            if !(user.is_empty() && password.is_empty()) {
                urls.push(format!("redis://{user}:{password}@primary"));
            }
        }
        urls.iter()
            .fold(text.to_owned(), |text, url| scrub_secrets(&text, url))
    }

    /// The private CA to trust, as the redis crate takes it.
    fn trusted_ca(&self) -> Option<redis::TlsCertificates> {
        self.ca_pem.as_ref().map(|ca| redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca.as_bytes().to_vec()),
        })
    }

    /// The redis crate refused to build a client (`what`: URL, cluster, sentinel) of this
    /// configuration.
    fn refused(&self, what: &str, err: &RedisError) -> PersistError {
        PersistError::InvalidConfig {
            detail: format!(
                "redis {what} {}: {}",
                self.shown(),
                self.scrub(&err.to_string())
            ),
        }
    }

    /// Where the store is, for messages: the URL with credentials redacted (the first seed of
    /// a cluster; the first sentinel and the master's name with Sentinel).
    fn shown(&self) -> String {
        match &self.sentinel {
            Some(sentinel) => format!(
                "{} (sentinel, master {})",
                redact_url(&self.url),
                sentinel.master_name
            ),
            None => redact_url(&self.url),
        }
    }
}

#[derive(Clone)]
pub struct RedisStore {
    config: Arc<RedisConfig>,
    /// Built once, validated in `new`; connecting happens on first use.
    client: Arc<Target>,
    replicas: Option<Replicas>,
    key: Arc<str>,
    /// Its namespace and name, and the scope ordering its requests (holds the URL: never shown).
    entity: Entity,
    /// Where values that are not JSON are moved.
    quarantine_key: Arc<str>,
    /// This configuration's shared connection and counters, looked up once (a hot path then
    /// never hashes the configuration and its CA).
    resources: Arc<Resources>,
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
    fn new(
        config: RedisConfig,
        settings: &Settings,
        base_dir: &str,
        entity_name: &str,
    ) -> Result<Self> {
        let entity = Entity::new(&storage(&config), base_dir, entity_name)?;
        let client = build_client(&config)?;
        let namespace = &entity.namespace;
        let prefix = &settings.prefix;
        let tagged = !config.cluster.is_empty();
        let key = entity_key(prefix, namespace, entity_name, tagged);
        let quarantine_key = entity_key(
            &format!("{prefix}:quarantine"),
            namespace,
            entity_name,
            tagged,
        );
        Ok(RedisStore {
            resources: PER_CONFIG.get(&config),
            config: Arc::new(config),
            client: Arc::new(client),
            replicas: settings.replicas,
            key: key.into(),
            entity,
            quarantine_key: quarantine_key.into(),
        })
    }

    /// The Redis key of this entity's hash.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Every (namespace, entity) with a hash under `prefix`: a SCAN of the keyspace, for tools
    /// only (the stores never list keys).
    async fn entities(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let escaped: String = prefix
            .chars()
            .flat_map(|c| match c {
                '*' | '?' | '[' | ']' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let pattern = format!("{escaped}:[[]*");
        let head = format!("{prefix}:");
        let mut found = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = self
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(SCAN_COUNT)
                        .to_owned(),
                )
                .await?;
            found.extend(keys.into_iter().filter_map(|key| {
                let key = String::from_utf8(key).ok()?;
                serde_json::from_str::<(String, String)>(key.strip_prefix(&head)?).ok()
            }));
            if next == 0 {
                return Ok(found);
            }
            cursor = next;
        }
    }

    /// This configuration's shared connection (see `SharedConnection::get`).
    async fn connection(&self) -> Result<Link<Conn>> {
        self.resources
            .connection
            .get(|_| true, self.connect())
            .await
    }

    async fn connect(&self) -> Result<Conn> {
        let connect = async {
            match &*self.client {
                Target::Single(client) => {
                    let manager_config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(self.config.connect_timeout))
                        .set_response_timeout(Some(
                            self.config.command_timeout + self.config.replicas_timeout,
                        ))
                        .set_number_of_retries(1)
                        .set_max_delay(Duration::from_millis(500));
                    ConnectionManager::new_with_config(client.clone(), manager_config)
                        .await
                        .map(Conn::Single)
                }
                Target::Cluster(client) => client
                    .get_async_connection()
                    .await
                    .map(|conn| Conn::Cluster(Box::new(conn))),
                // Asks the sentinels for the primary and checks its ROLE before use.
                Target::Sentinel(client) => {
                    let connection_config = AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(self.config.connect_timeout))
                        .set_response_timeout(Some(
                            self.config.command_timeout + self.config.replicas_timeout,
                        ));
                    client
                        .lock()
                        .await
                        .get_async_connection_with_config(&connection_config)
                        .await
                        .map(Conn::Sentinel)
                }
            }
        };
        match tokio::time::timeout(self.config.connect_timeout, connect).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.failure(&e)),
            Err(_) => Err(self.timed_out("connect", self.config.connect_timeout)),
        }
    }

    /// Run one command with the command timeout.
    async fn query<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T> {
        let mut link = self.connection().await?;
        let reply = self
            .within(self.config.command_timeout, cmd.query_async(&mut link.conn))
            .await;
        self.settle(link.epoch, reply)
    }

    /// A reply's failures as `PersistError`; the connection is forgotten when it failed as
    /// unavailable.
    fn settle<T>(&self, epoch: u64, reply: Result<redis::RedisResult<T>>) -> Result<T> {
        let outcome = reply.and_then(|reply| reply.map_err(|e| self.failure(&e)));
        if let Err(PersistError::Server {
            kind: ServerFailure::Unavailable,
            ..
        }) = &outcome
        {
            self.forget(epoch);
        }
        outcome
    }

    /// A connection found through the sentinels does not reconnect by itself, and its server
    /// may no longer be the primary: it is dropped (unless a newer one replaced it), so the next
    /// command asks the sentinels again.
    fn forget(&self, epoch: u64) {
        if matches!(*self.client, Target::Sentinel(_)) {
            self.resources.connection.forget(epoch);
        }
    }

    /// A pipeline of commands on this entity's hash (one round trip), within `limit`. The
    /// cluster connection follows ASK and MOVED for pipelines as for commands (a slot being
    /// moved), but not once its retries went on a failover: MOVED then reaches us, and means
    /// nothing ran on the old owner, so a keyed command refreshes the routing and the pipeline
    /// is sent again.
    async fn keyed_pipeline<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
        limit: Duration,
    ) -> Result<T> {
        let mut link = self.connection().await?;
        let mut attempts = 0;
        loop {
            let reply = self.within(limit, pipe.query_async(&mut link.conn)).await;
            match &reply {
                Ok(Err(e)) if e.code() == Some("MOVED") && attempts < 3 => {
                    attempts += 1;
                    self.query::<bool>(redis::cmd("EXISTS").arg(&*self.key).to_owned())
                        .await?;
                }
                _ => return self.settle(link.epoch, reply),
            }
        }
    }

    /// The reply, or `PERSIST_UNAVAILABLE` when it takes longer than `limit`; the reply's own
    /// error is left to the caller.
    async fn within<T>(
        &self,
        limit: Duration,
        reply: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<redis::RedisResult<T>> {
        tokio::time::timeout(limit, reply)
            .await
            .map_err(|_| self.timed_out("reply", limit))
    }

    /// A write command; with `replicas`, followed on the same connection (and, on a cluster,
    /// the same node: the pipeline goes where its key lives) by `WAIT`, so that it resolves only
    /// once that many replicas have it.
    async fn write_command<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T> {
        let Some(replicas) = self.replicas else {
            return self.query(cmd).await;
        };
        let mut pipe = redis::pipe();
        pipe.add_command(cmd)
            .cmd("WAIT")
            .arg(replicas.count)
            .arg(replicas.timeout.as_millis() as u64);
        let limit = self.config.command_timeout + replicas.timeout;
        let (value, acknowledged): (T, u64) = self.keyed_pipeline(&pipe, limit).await?;
        if acknowledged < replicas.count {
            return Err(PersistError::Server {
                service: "redis",
                url: self.config.shown(),
                detail: format!(
                    "the primary took the write, but {acknowledged} of {} replicas acknowledged \
                     it within {} ms: it may be lost if the primary fails before they have it",
                    replicas.count,
                    replicas.timeout.as_millis()
                ),
                kind: ServerFailure::NotReplicated,
            });
        }
        Ok(value)
    }

    fn failure(&self, err: &RedisError) -> PersistError {
        // When every seed of a cluster fails, the cluster connection reports one I/O error whose
        // detail is the last seed's error as text: an authentication failure shows only there.
        let auth_in_detail = err.detail().is_some_and(|detail| {
            ["AuthenticationFailed", "WRONGPASS", "NOAUTH"]
                .iter()
                .any(|marker| detail.contains(marker))
        });
        let kind = if err.kind() == redis::ErrorKind::AuthenticationFailed
            || matches!(err.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
            || auth_in_detail
        {
            ServerFailure::Auth
        } else if err.is_io_error()
            // A cluster between topologies (a failover, a slot moving) or a server still loading.
            || matches!(
                err.code(),
                Some(
                    "CLUSTERDOWN" | "TRYAGAIN" | "MASTERDOWN" | "LOADING" | "READONLY" | "MOVED"
                        | "ASK"
                )
            )
            || matches!(
                err.kind(),
                redis::ErrorKind::ClusterConnectionNotFound
                    // Sentinels that name no primary that answers as one: a failover under way.
                    | redis::ErrorKind::MasterNameNotFoundBySentinel
            )
            || err.is_connection_refusal()
            || err.is_timeout()
            || err.is_connection_dropped()
            || err.is_unrecoverable_error()
        {
            ServerFailure::Unavailable
        } else {
            ServerFailure::Other
        };
        PersistError::Server {
            service: "redis",
            url: self.config.shown(),
            detail: self.config.scrub(&err.to_string()),
            kind,
        }
    }

    fn timed_out(&self, what: &str, limit: Duration) -> PersistError {
        PersistError::Server {
            service: "redis",
            url: self.config.shown(),
            detail: format!("no {what} within {} ms", limit.as_millis()),
            kind: ServerFailure::Unavailable,
        }
    }

    /// Drop this configuration's shared connection (commands in flight finish on their clone;
    /// a connect in flight is not kept); later use connects again.
    pub fn close(config: &RedisConfig) {
        PER_CONFIG.get(config).connection.close();
    }
}

impl RedisStore {
    async fn move_aside(&self, id: &str, value: &[u8]) -> Result<i64> {
        let moved_at = now_ms();
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

impl Documents for RedisStore {
    /// Bytes, not strings: one value that is not UTF-8 must not fail the whole read.
    type Raw = Vec<u8>;

    fn entity(&self) -> &Entity {
        &self.entity
    }

    fn location(&self, id: &str) -> String {
        format!("{} key={} field={id}", self.config.shown(), self.key)
    }

    async fn prepare(&self) -> Result<()> {
        self.connection().await.map(drop)
    }

    fn judge(&self, id: &str, bytes: Vec<u8>) -> Judged<Vec<u8>> {
        Judged::of_bytes(bytes, id, || self.location(id))
    }

    /// HMGET even for one id: the same round trip as HGET, one code path.
    async fn get_many(&self, ids: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.query(redis::cmd("HMGET").arg(&*self.key).arg(ids).to_owned())
            .await
    }

    /// A pipeline of HEXISTS (Redis has no multi-field form), one round trip.
    async fn has_many(&self, ids: &[String]) -> Result<Vec<bool>> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HEXISTS").arg(&*self.key).arg(id);
        }
        self.keyed_pipeline(&pipe, self.config.command_timeout)
            .await
    }

    /// Durability is the server's (appendfsync); every write is acknowledged.
    async fn put_many(&self, Batch { docs, mode, .. }: Batch) -> Result<usize> {
        let key = &*self.key;
        let written = match mode {
            WriteMode::Replace => {
                let mut cmd = redis::cmd("HSET");
                cmd.arg(key);
                for (id, text) in &docs {
                    cmd.arg(id).arg(text);
                }
                self.write_command::<i64>(cmd).await?;
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
                usize::try_from(self.write_command::<i64>(cmd).await?).unwrap_or_default()
            }
        };
        self.resources.counters.count(written as u64);
        Ok(written)
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        let removed: i64 = self
            .write_command(redis::cmd("HDEL").arg(&*self.key).arg(id).to_owned())
            .await?;
        Ok(removed > 0)
    }

    async fn remove_all(&self) -> Result<()> {
        self.write_command::<i64>(redis::cmd("DEL").arg(&*self.key).to_owned())
            .await
            .map(drop)
    }

    /// A field that is not UTF-8 cannot be named by any id: not listed.
    async fn ids(&self) -> Result<Vec<String>> {
        let fields: Vec<Vec<u8>> = self
            .query(redis::cmd("HKEYS").arg(&*self.key).to_owned())
            .await?;
        Ok(fields
            .into_iter()
            .filter_map(|f| String::from_utf8(f).ok())
            .collect())
    }

    async fn entries(&self) -> Result<Vec<(String, String)>> {
        let pairs: Vec<RawField> = self
            .query(redis::cmd("HGETALL").arg(&*self.key).to_owned())
            .await?;
        let mut entries = Vec::with_capacity(pairs.len());
        for (field, value) in pairs {
            let Ok(id) = String::from_utf8(field) else {
                continue;
            };
            // As keys() + readValue would: a value that is not UTF-8 fails the read.
            let text = String::from_utf8(value).map_err(|_| PersistError::Corrupt {
                location: self.location(&id),
                detail: "not UTF-8".into(),
            })?;
            entries.push((id, text));
        }
        Ok(entries)
    }

    /// Every field, a page of HSCAN at a time; fields that are not UTF-8 cannot be named by any
    /// id and are left alone.
    async fn scan_raw(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut fields = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, page): (u64, Vec<RawField>) = self
                .query(
                    redis::cmd("HSCAN")
                        .arg(&*self.key)
                        .arg(cursor)
                        .arg("COUNT")
                        .arg(SCAN_COUNT)
                        .to_owned(),
                )
                .await?;
            fields.extend(
                page.into_iter()
                    .filter_map(|(field, value)| Some((String::from_utf8(field).ok()?, value))),
            );
            if next == 0 {
                return Ok(fields);
            }
            cursor = next;
        }
    }

    async fn quarantine(&self, id: &str, value: &Vec<u8>) -> Result<Option<String>> {
        let moved = self.move_aside(id, value).await?;
        Ok((moved > 0).then(|| self.quarantine_key.to_string()))
    }
}

/// A hash field and its value as stored: bytes, which need not be UTF-8.
type RawField = (Vec<u8>, Vec<u8>);

/// The server, cluster or sentinel set a configuration names.
fn storage(config: &RedisConfig) -> Storage {
    Storage::new("redis", config.url.clone())
}

/// Everything shared by the stores of one configuration.
#[derive(Default)]
struct Resources {
    connection: SharedConnection<Conn>,
    counters: Counters,
}

/// What the stores of one configuration share, for the process.
static PER_CONFIG: PerConfig<RedisConfig, Resources> = PerConfig::new();

/// What connections are made from: one server's client, or a cluster's. One per store, behind
/// an `Arc`: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Target {
    Single(Client),
    Cluster(ClusterClient),
    /// Locked while asking the sentinels (connects are one at a time anyway).
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

/// A shared connection: clones multiplex onto it.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(Box<ClusterConnection>),
    /// To the primary the sentinels named; not reconnected (see `RedisStore::settle`).
    Sentinel(MultiplexedConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(conn) => conn.req_packed_command(cmd),
            Conn::Sentinel(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(conn) => conn.get_db(),
            Conn::Cluster(conn) => conn.get_db(),
            Conn::Sentinel(conn) => conn.get_db(),
        }
    }
}

fn build_client(config: &RedisConfig) -> Result<Target> {
    if let Some(sentinel) = &config.sentinel {
        build_sentinel_client(config, sentinel)
            .map(|client| Target::Sentinel(tokio::sync::Mutex::new(client)))
    } else if config.cluster.is_empty() {
        build_single_client(config).map(Target::Single)
    } else {
        build_cluster_client(config).map(Target::Cluster)
    }
}

/// The sentinels' addresses and their one set of credentials (from their URLs), and the
/// primary's credentials, database and TLS (that of the sentinels, trusting the same CA).
fn build_sentinel_client(
    config: &RedisConfig,
    sentinel: &SentinelConfig,
) -> Result<SentinelClient> {
    let invalid = |e: RedisError| config.refused("sentinel", &e);
    let mut addresses = Vec::with_capacity(sentinel.nodes.len());
    // The same for every node (checked with the options).
    let mut credentials = None;
    for node in &sentinel.nodes {
        let info = node.as_str().into_connection_info().map_err(invalid)?;
        let settings = info.redis_settings();
        credentials = Some((
            settings.username().map(str::to_owned),
            settings.password().map(str::to_owned),
        ));
        addresses.push(info.addr().clone());
    }
    let tls = sentinel.nodes[0].starts_with("rediss:");
    if tls {
        install_crypto_provider();
    }
    let built =
        SentinelClientBuilder::new(addresses, &sentinel.master_name, SentinelServerType::Master)
            .map(|mut builder| {
                if let Some((username, password)) = credentials {
                    if let Some(username) = username {
                        builder = builder.set_client_to_sentinel_username(username);
                    }
                    if let Some(password) = password {
                        builder = builder.set_client_to_sentinel_password(password);
                    }
                }
                if let Some(username) = &sentinel.username {
                    builder = builder.set_client_to_redis_username(username);
                }
                if let Some(password) = &sentinel.password {
                    builder = builder.set_client_to_redis_password(password);
                }
                builder = builder.set_client_to_redis_db(sentinel.db);
                if tls {
                    builder = builder.set_client_to_redis_tls_mode(TlsMode::Secure);
                }
                if let Some(certificates) = config.trusted_ca() {
                    builder = builder
                        .set_client_to_sentinel_certificates(certificates.clone())
                        .set_client_to_redis_certificates(certificates);
                }
                builder
            })
            .and_then(SentinelClientBuilder::build);
    built.map_err(invalid)
}

fn build_cluster_client(config: &RedisConfig) -> Result<ClusterClient> {
    let invalid = |e: RedisError| config.refused("cluster", &e);
    if config
        .cluster
        .iter()
        .any(|seed| seed.starts_with("rediss:"))
    {
        install_crypto_provider();
    }
    let mut builder = ClusterClient::builder(config.cluster.iter().map(String::as_str))
        .connection_timeout(config.connect_timeout)
        .response_timeout(config.command_timeout + config.replicas_timeout)
        .retries(2);
    if let Some(certificates) = config.trusted_ca() {
        builder = builder.certs(certificates);
    }
    builder.build().map_err(invalid)
}

fn build_single_client(config: &RedisConfig) -> Result<Client> {
    let invalid = |e: RedisError| config.refused("URL", &e);
    match config.trusted_ca() {
        Some(certificates) => {
            install_crypto_provider();
            Client::build_with_tls(config.url.as_str(), certificates).map_err(invalid)
        }
        None => {
            if config.url.starts_with("rediss:") {
                install_crypto_provider();
            }
            Client::open(config.url.as_str()).map_err(invalid)
        }
    }
}

/// `{prefix}:["namespace","entity"]`: JSON makes the pair unambiguous whatever the
/// characters in either part.
/// `{prefix}:["namespace","entity"]`; on a cluster the pair is a hash tag, `{prefix}:{[…]}`, so
/// that every key of the entity (its hash, its quarantine) lives in one slot whatever the
/// prefix (which then holds no braces).
pub fn entity_key(prefix: &str, namespace: &str, entity: &str, tagged: bool) -> String {
    let pair = serde_json::to_string(&[namespace, entity])
        .unwrap_or_else(|_| format!("[{namespace:?},{entity:?}]"));
    if tagged {
        format!("{prefix}:{{{pair}}}")
    } else {
        format!("{prefix}:{pair}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration of one server at `url`, one-second timeouts.
    fn single(url: &str) -> RedisConfig {
        RedisConfig {
            url: url.to_owned(),
            cluster: Vec::new(),
            sentinel: None,
            ca_pem: None,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(1),
            replicas_timeout: Duration::ZERO,
        }
    }

    #[test]
    fn keys_are_unambiguous() {
        assert_eq!(
            entity_key("backtest-kit", "dump/data/signal", "BTC_s_e", false),
            "backtest-kit:[\"dump/data/signal\",\"BTC_s_e\"]"
        );
        assert_ne!(
            entity_key("p", "a:b", "c", false),
            entity_key("p", "a", "b:c", false)
        );
        assert_ne!(
            entity_key("p", "a\",\"b", "c", false),
            entity_key("p", "a", "b\",\"c", false)
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

    /// Every URL shape: the secret never survives, in `redact_url`, in scrubbed library text
    /// that echoes the URL or the secret, or in `Debug`; and text without secrets is unchanged.
    #[test]
    fn credentials_never_show_for_any_url_shape() {
        let plain = "redis error: connection refused by default server at host (os error 111)";
        // (url, secrets that must not appear)
        let shapes: &[(&str, &[&str])] = &[
            ("redis://@host:6379", &[]),
            ("redis://:@host:6379", &[]),
            ("redis://user@host", &["user@"]),
            ("redis://:pw@host", &[":pw@"]),
            ("redis://:p@host", &[":p@"]),
            ("redis://alice:s3cret@host/2", &["s3cret", "alice"]),
            ("redis://redis:redis@host", &["redis:redis"]),
            ("redis://default:hunter2@host", &["hunter2"]),
            ("redis://bob:a/b?c#d@host:1/0", &["a/b?c#d"]),
            ("redis://bob:p%40ss%2Fw@host", &["p%40ss%2Fw", "p@ss/w"]),
            ("rediss://error:connection@host", &["error:connection"]),
        ];
        for (url, secrets) in shapes {
            let redacted = redact_url(url);
            let echoed = scrub_secrets(&format!("cannot reach {url}: {secrets:?} {plain}"), url);
            let config = single(url);
            let debug = format!("{config:?}");
            for secret in *secrets {
                for shown in [&redacted, &echoed, &debug] {
                    assert!(!shown.contains(secret), "{url}: {secret:?} in {shown:?}");
                }
            }
            assert!(!debug.contains(url), "{debug}");
        }
        // No credentials, empty ones, or ones that are ordinary words: the text survives.
        for url in [
            "redis://host",
            "redis://@host",
            "redis://:@host",
            "redis://default:x@host",
        ] {
            assert_eq!(scrub_secrets(plain, url), plain, "{url}");
        }
        assert_eq!(
            scrub_secrets("redis says: a redistribution", "redis://redis:pw@host"),
            "*** says: a redistribution"
        );
    }

    #[test]
    fn bad_urls_fail_without_leaking_the_password() {
        let config = single("http://bob:hunter22@host");
        let settings = Settings {
            prefix: "p".into(),
            replicas: None,
        };
        let err = RedisStore::new(config, &settings, "ns", "e").expect_err("not a redis URL");
        assert_eq!(err.code(), "PERSIST_INVALID_CONFIG");
        assert!(!err.to_string().contains("hunter22"), "{err}");
    }
}
