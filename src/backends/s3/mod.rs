//! `S3Store`: an object per document, `{prefix}/{namespace}/{entityName}/{id}.json`, holding the
//! JSON text as written: backtest-kit's file layout, in a bucket. Path parts are encoded as
//! object_store encodes them (characters S3 advises against, `%` included, become `%XX`), and
//! decoded when listed.
//!
//! S3 has no transactions: each object is written atomically (a reader sees the old or the new
//! text), a batch is many requests run concurrently. Create-only writes (the candle cache) are
//! conditional (`If-None-Match: *`), so a cached candle is never replaced. A PUT resolves once
//! the server acknowledged it: the service's durability, not a local sync. Issue order per id
//! is kept within the process by the core; between processes the last write wins.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::{Path, PathPart};
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};
use serde_json::{json, Value};

use crate::contract::options::{boolean_param, milliseconds_param, query_pairs};
use crate::contract::{
    last_per_id, BackendConfig, Listing, Options, Storage, Store, StoreStats, WriteMode,
};
use crate::error::{PersistError, Result, ServerFailure};
use crate::registry::Backend;
use crate::remote::connections::{install_crypto_provider, Counters, PerConfig, SharedConnection};
use crate::remote::credentials::{percent_decode, redact_url};
use crate::remote::engine::{Batch, Documents, Entity, Judged, Served};

const URL_ENV: &str = "BACKTEST_KIT_RS_S3_URL";
const DEFAULT_REGION: &str = "us-east-1";
const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// Requests one store keeps in flight for a batch.
const CONCURRENCY: usize = 32;
const SUFFIX: &str = ".json";
/// S3's limit on an object key, in bytes.
const MAX_KEY_BYTES: usize = 1024;

pub struct S3Backend;

impl Backend for S3Backend {
    type Config = S3Config;

    const NAME: &str = "s3";
    const SCHEMES: &[&str] = &["s3"];

    fn open(&self, config: S3Config, entity: &str, base_dir: &str) -> Result<Arc<dyn Store>> {
        if config.bucket.is_empty() {
            return Err(PersistError::InvalidConfig {
                detail: format!(
                    "s3: no bucket: give url (s3://bucket/prefix), bucket, or {URL_ENV}"
                ),
            });
        }
        Ok(Arc::new(Served(S3Store::new(config, base_dir, entity)?)))
    }

    fn describe(&self, config: &S3Config) -> Value {
        json!({
            "bucket": Some(&config.bucket).filter(|b| !b.is_empty()),
            "prefix": config.prefix,
            "region": config.region,
            "endpoint": config.endpoint,
            "pathStyle": config.path_style,
            "credentials": match (&config.access_key_id, config.from_env) {
                (None, _) => "default chain",
                (Some(_), true) => "environment",
                (Some(_), false) => "options",
            },
            "connectTimeoutMs": config.connect_timeout.as_millis() as u64,
            "commandTimeoutMs": config.command_timeout.as_millis() as u64,
        })
    }

    fn stats(&self, config: &S3Config) -> StoreStats {
        PER_CONFIG.get(config).counters.snapshot()
    }

    fn entities(&self, config: S3Config, _root: &str) -> Result<Listing> {
        if config.bucket.is_empty() {
            return Err(PersistError::InvalidConfig {
                detail: "s3: no bucket".into(),
            });
        }
        let probe = S3Store::new(config, "", "")?;
        Ok(Box::pin(async move { probe.entities().await }))
    }

    fn release(config: &S3Config) {
        PER_CONFIG.get(config).client.close();
    }
}

/// Where the objects are and how to reach them. `Debug` shows no credentials.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct S3Config {
    bucket: String,
    /// Path parts under the bucket, joined by `/`; may be empty.
    prefix: String,
    region: String,
    /// `http(s)://host:port` of an S3-compatible server; `None` for AWS.
    endpoint: Option<String>,
    path_style: bool,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    /// The credentials came from AWS_* variables (for `describe`).
    from_env: bool,
    connect_timeout: Duration,
    command_timeout: Duration,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl S3Config {
    /// Names the objects for issue order and `close` (the credentials are not part of it).
    fn identity(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.endpoint.as_deref().unwrap_or("aws"),
            self.bucket,
            self.prefix
        )
    }

    /// For messages: `s3://bucket/prefix` and the endpoint.
    fn shown(&self) -> String {
        let mut shown = format!("s3://{}/{}", self.bucket, self.prefix);
        if let Some(endpoint) = &self.endpoint {
            shown.push_str(&format!(" at {}", redact_url(endpoint)));
        }
        shown
    }

    /// Text that may hold a credential, with them removed.
    fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in [
            &self.secret_access_key,
            &self.session_token,
            &self.access_key_id,
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        {
            text = text.replace(secret.as_str(), "***");
        }
        text
    }
}

impl BackendConfig for S3Config {
    fn from_options(options: &Value) -> Result<Self> {
        let mut options = Options::new("s3", options)?;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let url = options.string_or_env("url", &[URL_ENV])?;
        let mut from_url = match &url {
            Some(url) => parse_url(&url.value)
                .map_err(|detail| options.invalid(format!("{detail} (from {})", url.origin)))?,
            None => UrlParts::default(),
        };
        let bucket_origin = match (&url, from_url.bucket.is_some()) {
            (Some(url), true) => format!(" (from {})", url.origin),
            _ => String::new(),
        };
        // No bucket yet is allowed here (the environment may name it by the time a store is made);
        // `open` refuses it.
        let bucket = options
            .string("bucket")?
            .or(from_url.bucket.take())
            .unwrap_or_default();
        if !(bucket.is_empty() || is_bucket_name(&bucket)) {
            return Err(options.invalid(format!(
            "bucket must be 3 to 63 lowercase letters, digits, - or ., got {bucket:?}{bucket_origin}"
        )));
        }
        let prefix = options.string("prefix")?.or(from_url.prefix.take());
        let prefix = normal_prefix(&options, prefix.unwrap_or_default())?;
        let region = options
            .string("region")?
            .or(from_url.region.take())
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let endpoint = options
            .string("endpoint")?
            .or(from_url.endpoint.take())
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"));
        if let Some(endpoint) = &endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(options.invalid(format!(
                    "endpoint must be an http:// or https:// URL, got {}",
                    redact_url(endpoint)
                )));
            }
        }
        let path_style = options
            .boolean("pathStyle")?
            .or(from_url.path_style)
            .unwrap_or(true);
        let (access_key_id, secret_access_key, session_token, from_env) =
            credentials(&mut options)?;
        let connect_timeout = options.milliseconds(
            "connectTimeoutMs",
            from_url.connect_timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
        )?;
        let command_timeout = options.milliseconds(
            "commandTimeoutMs",
            from_url.command_timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
        )?;
        options.finish()?;
        Ok(S3Config {
            bucket,
            prefix,
            region,
            endpoint,
            path_style,
            access_key_id,
            secret_access_key,
            session_token,
            from_env,
            connect_timeout,
            command_timeout,
        })
    }

    fn storage(&self) -> Storage {
        Storage::new("s3", self.identity())
    }
}

/// The key prefix without empty parts (`a//b/` is `a/b`); `.`, `..` and NUL refused.
fn normal_prefix(options: &Options, prefix: String) -> Result<String> {
    if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains('\0') {
        return Err(options.invalid(format!(
            "prefix must not hold . or .. parts or NUL, got {prefix:?}"
        )));
    }
    Ok(prefix
        .split('/')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/"))
}

/// The rules S3 gives for bucket names (path-style servers accept the same).
fn is_bucket_name(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.'])
}

/// Static credentials as (key, secret, session token, from the environment): the options'
/// pair, else the `AWS_*` variables; none means the default chain.
type Credentials = (Option<String>, Option<String>, Option<String>, bool);

fn credentials(options: &mut Options) -> Result<Credentials> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let given_key = options.secret("accessKeyId")?;
    let given_secret = options.secret("secretAccessKey")?;
    let given_token = options.secret("sessionToken")?;
    let found = match (given_key, given_secret) {
        (Some(key), Some(secret)) => (Some(key), Some(secret), given_token, false),
        (None, None) if given_token.is_none() => (
            env("AWS_ACCESS_KEY_ID"),
            env("AWS_SECRET_ACCESS_KEY"),
            env("AWS_SESSION_TOKEN"),
            true,
        ),
        _ => {
            return Err(options
                .invalid("accessKeyId and secretAccessKey go together (sessionToken with them)"))
        }
    };
    if found.0.is_some() != found.1.is_some() {
        return Err(
            options.invalid("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together")
        );
    }
    Ok(found)
}

#[derive(Default, Debug, PartialEq)]
struct UrlParts {
    bucket: Option<String>,
    prefix: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    path_style: Option<bool>,
    connect_timeout_ms: Option<u64>,
    command_timeout_ms: Option<u64>,
}

/// `s3://bucket/prefix?region=…&endpoint=…&pathStyle=true|false&connectTimeoutMs=…&commandTimeoutMs=…`.
fn parse_url(url: &str) -> std::result::Result<UrlParts, String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("url must be an s3:// URL, got {}", redact_url(url)))?;
    let location = rest.split_once('?').map_or(rest, |(location, _)| location);
    let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
    let mut parts = UrlParts {
        bucket: Some(bucket.to_owned()).filter(|b| !b.is_empty()),
        prefix: Some(prefix.to_owned()).filter(|p| !p.is_empty()),
        ..UrlParts::default()
    };
    for (_, name, value) in query_pairs(url) {
        let value = percent_decode(value);
        match name {
            "region" => parts.region = Some(value),
            "endpoint" => parts.endpoint = Some(value),
            "pathStyle" => parts.path_style = Some(boolean_param(name, &value)?),
            "connectTimeoutMs" => {
                parts.connect_timeout_ms = Some(milliseconds_param(name, &value)?)
            }
            "commandTimeoutMs" => {
                parts.command_timeout_ms = Some(milliseconds_param(name, &value)?)
            }
            other => {
                return Err(format!(
                    "url: unknown parameter {other:?} (region, endpoint, pathStyle, \
                     connectTimeoutMs, commandTimeoutMs)"
                ))
            }
        }
    }
    Ok(parts)
}

pub struct S3Store {
    config: Arc<S3Config>,
    /// The entity's "directory": prefix, namespace and entity parts.
    dir: Path,
    entity: Entity,
    resources: Arc<Resources>,
}

impl S3Store {
    fn new(config: S3Config, base_dir: &str, entity_name: &str) -> Result<Self> {
        let entity = Entity::new(&config.storage(), base_dir, entity_name)?;
        // An absolute baseDir keeps its parts; a leading `/` has no place in an object key.
        let namespace_parts = entity
            .namespace
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect::<Vec<_>>();
        let dir: Path = config
            .prefix
            .split('/')
            .filter(|p| !p.is_empty())
            .chain(namespace_parts)
            .chain(entity_name.split('/'))
            .map(PathPart::from)
            .collect();
        Ok(S3Store {
            resources: PER_CONFIG.get(&config),
            config: Arc::new(config),
            dir,
            entity,
        })
    }

    fn object(&self, id: &str) -> Path {
        self.dir
            .clone()
            .join(PathPart::from(format!("{id}{SUFFIX}")))
    }

    /// The id an object directly under the entity's directory names, if it is a document.
    fn id_of(&self, location: &Path) -> Option<String> {
        let name = location.filename()?;
        let id = percent_decode(name.strip_suffix(SUFFIX)?);
        // Only names we would have written (a stray `a%2Fb.json` names no valid id).
        (crate::contract::validate_id(&id).is_ok() && self.object(&id) == *location).then_some(id)
    }

    async fn client(&self) -> Result<Arc<AmazonS3>> {
        let config = &self.config;
        let link = self
            .resources
            .client
            .get(|_| true, async { connect(config) })
            .await?;
        Ok(link.conn)
    }

    /// `operation` within the timeouts, its error mapped.
    async fn bounded<T>(
        &self,
        operation: impl Future<Output = object_store::Result<T>>,
    ) -> Result<T> {
        let limit = self.config.connect_timeout + self.config.command_timeout;
        match tokio::time::timeout(limit, operation).await {
            Ok(outcome) => outcome.map_err(|e| failure(&self.config, &e)),
            Err(_) => Err(server_error(
                &self.config,
                format!("no reply within {} ms", limit.as_millis()),
                ServerFailure::Unavailable,
            )),
        }
    }

    /// The stored bytes of `id`, `None` when there is no object.
    async fn get(&self, client: &AmazonS3, id: &str) -> Result<Option<Vec<u8>>> {
        let location = self.object(id);
        let outcome = self
            .bounded(async {
                match client.get(&location).await {
                    Ok(found) => found.bytes().await.map(|b| Some(b.to_vec())),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(outcome)
    }

    /// `work` for each item, `CONCURRENCY` at a time, results in the items' order.
    async fn each<T, R, F>(&self, items: Vec<T>, work: impl Fn(T) -> F) -> Result<Vec<R>>
    where
        F: Future<Output = Result<R>>,
    {
        let mut results: Vec<(usize, R)> = stream::iter(items.into_iter().enumerate())
            .map(|(index, item)| {
                let job = work(item);
                async move { job.await.map(|r| (index, r)) }
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
        results.sort_by_key(|(index, _)| *index);
        Ok(results.into_iter().map(|(_, r)| r).collect())
    }

    async fn list(&self, client: &AmazonS3) -> Result<Vec<String>> {
        let listed = self
            .bounded(client.list_with_delimiter(Some(&self.dir)))
            .await?;
        Ok(listed
            .objects
            .iter()
            .filter_map(|meta| self.id_of(&meta.location))
            .collect())
    }

    /// Every (namespace, entity) with a document under the prefix, split by backtest-kit's layout:
    /// a listing of the whole prefix, for tools only.
    async fn entities(&self) -> Result<Vec<(String, String)>> {
        let client = self.client().await?;
        let mut listing = client.list(Some(&self.dir));
        let mut found = std::collections::BTreeSet::new();
        let depth = self.dir.parts().count();
        loop {
            let next = self.bounded(async { Ok(listing.next().await) }).await?;
            let Some(meta) = next else { break };
            let meta = meta.map_err(|e| failure(&self.config, &e))?;
            let parts: Vec<String> = meta
                .location
                .parts()
                .skip(depth)
                .map(|part| percent_decode(part.as_ref()))
                .collect();
            let Some((file, dir)) = parts.split_last() else {
                continue;
            };
            let is_document = file
                .strip_suffix(SUFFIX)
                .is_some_and(|id| crate::contract::validate_id(id).is_ok());
            if is_document {
                let dir: Vec<&str> = dir.iter().map(String::as_str).collect();
                found.insert(crate::contract::layout::split(&dir));
            }
        }
        Ok(found.into_iter().collect())
    }

    /// Write one document as `mode` says; true when it was written.
    async fn put(
        &self,
        client: &AmazonS3,
        id: &str,
        text: String,
        mode: WriteMode,
    ) -> Result<bool> {
        if mode == WriteMode::ReplaceChanged
            && self.get(client, id).await?.as_deref() == Some(text.as_bytes())
        {
            return Ok(false);
        }
        let put_mode = match mode {
            WriteMode::InsertOnly => PutMode::Create,
            _ => PutMode::Overwrite,
        };
        let location = self.object(id);
        if location.as_ref().len() > MAX_KEY_BYTES {
            return Err(PersistError::InvalidId {
                id: id.to_owned(),
                reason: "its object key (prefix, namespace, entity and id) would be longer than \
                         the 1024 bytes S3 allows",
            });
        }
        let options = PutOptions {
            mode: put_mode,
            ..PutOptions::default()
        };
        let payload = PutPayload::from(text.into_bytes());
        let written = self
            .bounded(async {
                match client.put_opts(&location, payload, options).await {
                    Ok(_) => Ok(true),
                    // Create-only and the object exists: kept as it is.
                    Err(
                        object_store::Error::AlreadyExists { .. }
                        | object_store::Error::Precondition { .. },
                    ) if mode == WriteMode::InsertOnly => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await
            .map_err(|e| e.uncertain("applied"))?;
        if written {
            self.resources.counters.count(1);
        }
        Ok(written)
    }

    /// Check the bucket answers, and with `validate` move aside every document that is not JSON.
    /// Copy a document that is not JSON to `{id}.json.corrupt-{ms}` beside it (a name no listing
    /// takes for a document), then delete it if it still has the ETag copied; returns the copy's
    /// key, or `None` when it changed meanwhile (the copy is then removed). S3 has no
    /// conditional delete: a write landing between the check and the delete is the one race.
    async fn move_aside(&self, client: &AmazonS3, id: &str) -> Result<Option<String>> {
        let location = self.object(id);
        let before = self.bounded(client.head(&location)).await?;
        let moved_at = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let aside = self
            .dir
            .clone()
            .join(PathPart::from(format!("{id}{SUFFIX}.corrupt-{moved_at}")));
        self.bounded(client.copy(&location, &aside)).await?;
        let now = self.bounded(client.head(&location)).await?;
        if now.e_tag != before.e_tag {
            self.bounded(client.delete(&aside)).await?;
            return Ok(None);
        }
        self.bounded(client.delete(&location)).await?;
        Ok(Some(aside.to_string()))
    }
}

impl S3Store {
    /// Whether the object of `id` exists.
    async fn exists(&self, client: &AmazonS3, id: &str) -> Result<bool> {
        let location = self.object(id);
        self.bounded(async {
            match client.head(&location).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// The object of each id, concurrently; `None` where there is none.
    async fn get_each(&self, client: &AmazonS3, ids: Vec<String>) -> Result<Vec<Option<Vec<u8>>>> {
        self.each(ids, |id| async move { self.get(client, &id).await })
            .await
    }
}

impl Documents for S3Store {
    type Raw = Vec<u8>;

    fn entity(&self) -> &Entity {
        &self.entity
    }

    fn location(&self, id: &str) -> String {
        let server = self.config.shown();
        format!(
            "{} (object {})",
            self.entity.location(&server, id),
            self.object(id)
        )
    }

    /// One ListObjectsV2 page: reachable, credentials accepted, bucket there.
    async fn prepare(&self) -> Result<()> {
        let client = self.client().await?;
        let mut first = client.list(Some(&self.dir));
        if let Some(Err(e)) = self.bounded(async { Ok(first.next().await) }).await? {
            return Err(failure(&self.config, &e));
        }
        Ok(())
    }

    fn judge(&self, id: &str, bytes: Vec<u8>) -> Judged<Vec<u8>> {
        Judged::of_bytes(bytes, id, || self.location(id))
    }

    async fn get_many(&self, ids: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let client = self.client().await?;
        self.get_each(&client, ids.to_vec()).await
    }

    async fn has_many(&self, ids: &[String]) -> Result<Vec<bool>> {
        let client = self.client().await?;
        let client = &*client;
        self.each(
            ids.to_vec(),
            |id| async move { self.exists(client, &id).await },
        )
        .await
    }

    async fn put_many(&self, Batch { docs, mode, .. }: Batch) -> Result<usize> {
        let client = self.client().await?;
        let client = &*client;
        // One PUT per id: the last text given for it.
        let written = self
            .each(last_per_id(docs), |(id, text)| async move {
                self.put(client, &id, text, mode).await
            })
            .await?;
        Ok(written.into_iter().filter(|w| *w).count())
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        let client = self.client().await?;
        // S3 deletes succeed whether or not the object exists: look first.
        if !self.exists(&client, id).await? {
            return Ok(false);
        }
        self.bounded(client.delete(&self.object(id))).await?;
        self.resources.counters.count(1);
        Ok(true)
    }

    async fn remove_all(&self) -> Result<()> {
        let client = self.client().await?;
        let client = &*client;
        let ids = self.list(client).await?;
        let removed = ids.len() as u64;
        self.each(ids, |id| async move {
            self.bounded(client.delete(&self.object(&id))).await
        })
        .await?;
        self.resources.counters.count(removed);
        Ok(())
    }

    async fn ids(&self) -> Result<Vec<String>> {
        let client = self.client().await?;
        self.list(&client).await
    }

    async fn entries(&self) -> Result<Vec<(String, String)>> {
        let found = self.scan_raw().await?;
        Ok(found
            .into_iter()
            .filter_map(|(id, bytes)| Some((id, String::from_utf8(bytes).ok()?)))
            .collect())
    }

    async fn scan_raw(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let client = self.client().await?;
        let ids = self.list(&client).await?;
        let found = self.get_each(&client, ids.clone()).await?;
        Ok(ids
            .into_iter()
            .zip(found)
            .filter_map(|(id, bytes)| Some((id, bytes?)))
            .collect())
    }

    async fn quarantine(&self, id: &str, _bytes: &Vec<u8>) -> Result<Option<String>> {
        let client = self.client().await?;
        self.move_aside(&client, id).await
    }
}

/// The S3 client for the configuration (no I/O: it connects per request, pooled).
fn connect(config: &S3Config) -> Result<Arc<AmazonS3>> {
    install_crypto_provider();
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_virtual_hosted_style_request(!config.path_style)
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(config.connect_timeout)
                .with_timeout(config.command_timeout)
                .with_allow_http(
                    config
                        .endpoint
                        .as_deref()
                        .is_some_and(|e| e.starts_with("http://")),
                ),
        )
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: config.command_timeout,
        });
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let (Some(key), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
        builder = builder
            .with_access_key_id(key)
            .with_secret_access_key(secret);
        if let Some(token) = &config.session_token {
            builder = builder.with_token(token);
        }
    }
    builder
        .build()
        .map(Arc::new)
        .map_err(|e| PersistError::InvalidConfig {
            detail: format!("s3: {}: {}", config.shown(), config.scrub(&e.to_string())),
        })
}

fn server_error(config: &S3Config, detail: String, kind: ServerFailure) -> PersistError {
    PersistError::Server {
        service: "s3",
        url: config.shown(),
        detail: config.scrub(&detail),
        kind,
    }
}

fn failure(config: &S3Config, err: &object_store::Error) -> PersistError {
    use object_store::client::{HttpError, HttpErrorKind};
    use object_store::Error as E;
    let mut detail = err.to_string();
    let mut no_answer = false;
    let mut cause = std::error::Error::source(err);
    while let Some(inner) = cause {
        if let Some(http) = inner.downcast_ref::<HttpError>() {
            no_answer |= matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            );
        }
        let text = inner.to_string();
        if !detail.contains(&text) {
            detail.push_str(&format!(": {text}"));
        }
        cause = inner.source();
    }
    let kind = match err {
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => ServerFailure::Auth,
        // A listing's refusal comes as a generic error with the status in its text.
        _ if detail.contains("status code: 403") || detail.contains("status code: 401") => {
            ServerFailure::Auth
        }
        // No answer (refused, reset, timed out), or the server says it cannot serve now.
        _ if no_answer
            || detail.contains("status code: 5")
            || detail.contains("SlowDown")
            || detail.contains("ServiceUnavailable") =>
        {
            ServerFailure::Unavailable
        }
        _ => ServerFailure::Other,
    };
    server_error(config, detail, kind)
}

/// Everything shared by the stores of one configuration.
#[derive(Default)]
struct Resources {
    client: SharedConnection<Arc<AmazonS3>>,
    counters: Counters,
}

/// What the stores of one configuration share, for the process.
static PER_CONFIG: PerConfig<S3Config, Resources> = PerConfig::new();

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::testutil::rt;

    #[test]
    fn urls_name_bucket_prefix_and_endpoint() {
        assert_eq!(
            parse_url("s3://bk/live/a?region=eu-west-1&endpoint=http%3A%2F%2F127.0.0.1%3A9000&pathStyle=false&commandTimeoutMs=20000"),
            Ok(UrlParts {
                bucket: Some("bk".into()),
                prefix: Some("live/a".into()),
                region: Some("eu-west-1".into()),
                endpoint: Some("http://127.0.0.1:9000".into()),
                path_style: Some(false),
                connect_timeout_ms: None,
                command_timeout_ms: Some(20000),
            })
        );
        assert!(parse_url("https://bk/x").is_err());
        assert!(parse_url("s3://bk?regio=x").is_err());
        assert!(parse_url("s3://bk?pathStyle=yes").is_err());
        for bad in ["0", "-1", "1.5", "2147483648", "soon"] {
            assert!(
                parse_url(&format!("s3://bk?connectTimeoutMs={bad}")).is_err(),
                "{bad}"
            );
        }
        // The option wins over the URL's parameter, as for every part of the URL.
        let config = S3Config::from_options(&json!({ "url": "s3://bkt?commandTimeoutMs=20000" }))
            .expect("url");
        assert_eq!(config.command_timeout, Duration::from_millis(20000));
        let config = S3Config::from_options(
            &json!({ "url": "s3://bkt?commandTimeoutMs=20000", "commandTimeoutMs": 7 }),
        )
        .expect("both");
        assert_eq!(config.command_timeout, Duration::from_millis(7));
    }

    #[test]
    fn options_are_checked_and_credentials_never_shown() {
        let refused = |options: Value| S3Config::from_options(&options).expect_err("refused");
        assert_eq!(
            crate::registry::Registered::open(&S3Backend, "e", "d", &json!({}))
                .err()
                .map(|e| e.code()),
            Some("PERSIST_INVALID_CONFIG")
        );
        for options in [
            json!({ "bucket": "Upper" }),
            json!({ "bucket": "ab" }),
            json!({ "bucket": "bk", "prefix": "a/../b" }),
            json!({ "bucket": "bk", "endpoint": "ftp://h" }),
            json!({ "bucket": "bk", "accessKeyId": "AK" }),
            json!({ "bucket": "bk", "pathStyle": "yes" }),
            json!({ "bucket": "bk", "buckets": "x" }),
        ] {
            assert_eq!(refused(options).code(), "PERSIST_INVALID_CONFIG");
        }
        let config = S3Config::from_options(&json!({
            "url": "s3://bkt/p/?endpoint=http://127.0.0.1:1",
            "accessKeyId": "AKIDEXAMPLE",
            "secretAccessKey": "hunter22secret",
        }))
        .expect("valid");
        assert_eq!(config.prefix, "p");
        assert!(!format!("{config:?}").contains("hunter22"));
        assert_eq!(config.scrub("x hunter22secret y"), "x *** y");
    }

    #[test]
    fn objects_follow_the_file_layout_and_name_their_id() {
        let config =
            S3Config::from_options(&json!({ "bucket": "bkt", "prefix": "p" })).expect("valid");
        let store = S3Store::new(config.clone(), "./dump/data/signal/", "BTC_s1").expect("ok");
        assert_eq!(
            store.object("x").to_string(),
            "p/dump/data/signal/BTC_s1/x.json"
        );
        for id in ["a#b%c", "é ü", "x.json", ".hidden", "1"] {
            assert_eq!(store.id_of(&store.object(id)).as_deref(), Some(id), "{id}");
        }
        let deep = S3Store::new(config.clone(), &"d/".repeat(600), "e").expect("ok");
        let put = rt().block_on(async {
            let client = deep.client().await.expect("client");
            deep.put(&client, &"x".repeat(200), "1".into(), WriteMode::Replace)
                .await
        });
        assert_eq!(put.err().map(|e| e.code()), Some("PERSIST_INVALID_ID"));
        let live = S3Store::new(config, "./dump/data/signal/", "").expect("ok");
        assert_eq!(live.object("x").to_string(), "p/dump/data/signal/x.json");
        assert_eq!(live.id_of(&store.object("x")), None);
    }
}
