//! `MongoStore`: every entity in one collection, a document per (namespace, entity, id):
//! `{ _id: '["namespace","entity","id"]', v: "<the JSON text as written>" }`.
//!
//! The whole key is the string `_id` (JSON makes the triple unambiguous), so one entity's ids are
//! one range of the `_id` index: `keys()` is an index range scan, and no key field can be retyped
//! by a server (a numeric-looking string is still a string in `_id`). The value is a string, not
//! a BSON object, so reads return the bytes and key order `JSON.stringify` produced.
//!
//! Reads are one `find` (`$in` over the ids); a batch write is one `update` command of upserts
//! (the bulk-write protocol every server version speaks), with the URL's write concern, plus
//! `j: true` for durable writes. The driver pools connections and reconnects by itself; every
//! operation is bounded by the timeouts, so an outage turns into `PERSIST_UNAVAILABLE`.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::{doc, Bson, Document, RawBsonRef, RawDocument};
use mongodb::error::ErrorKind;
use mongodb::options::{ClientOptions, CollectionOptions, ConnectionString, WriteConcern};
use mongodb::{Client, Collection, Database};
use serde_json::{json, Value};

use crate::contract::{
    last_per_id, BackendConfig, Doc, Listing, Options, Storage, Store, StoreStats, WriteMode,
};
use crate::error::{PersistError, Result, ServerFailure};
use crate::json::is_valid_json;
use crate::registry::Backend;
use crate::remote::connections::{install_crypto_provider, Counters, PerConfig, SharedConnection};
use crate::remote::credentials::{redact_url, scrub_secrets};
use crate::remote::engine::{now_ms, Batch, Documents, Entity, Judged, Served};
use crate::remote::server_url::{ServerTable, ServerUrl};

const URL_ENV: &str = "BACKTEST_KIT_RS_MONGO_URL";
const DEFAULT_URL: &str = "mongodb://127.0.0.1:27017";
const DEFAULT_DATABASE: &str = "backtest_kit";
const DEFAULT_COLLECTION: &str = "backtest_kit";
const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// Upserts per `update` command: well under the servers' 100,000 writes per batch, and with
/// `MAX_COMMAND_BYTES` under the 16 MiB message limit.
const MAX_BATCH_DOCS: usize = 1000;
const MAX_COMMAND_BYTES: usize = 8 << 20;

pub struct MongoBackend;

impl Backend for MongoBackend {
    type Config = MongoConfig;

    const NAME: &str = "mongodb";
    const SCHEMES: &[&str] = &["mongodb", "mongodb+srv"];

    fn open(&self, config: MongoConfig, entity: &str, base_dir: &str) -> Result<Arc<dyn Store>> {
        Ok(Arc::new(Served(MongoStore::new(config, base_dir, entity)?)))
    }

    fn describe(&self, config: &MongoConfig) -> Value {
        json!({
            "url": redact_url(&config.collection.url),
            "database": config.collection.space,
            "collection": config.collection.name,
            "connectTimeoutMs": config.connect_timeout.as_millis() as u64,
            "commandTimeoutMs": config.command_timeout.as_millis() as u64,
        })
    }

    fn stats(&self, config: &MongoConfig) -> StoreStats {
        PER_CONFIG.get(config).counters.snapshot()
    }

    fn entities(&self, config: MongoConfig, _root: &str) -> Result<Listing> {
        let probe = MongoStore::new(config, "", "")?;
        Ok(Box::pin(async move { probe.entities().await }))
    }

    /// The pool closes when the last operation in flight drops its clone of the client.
    fn release(config: &MongoConfig) {
        PER_CONFIG.get(config).client.close();
    }
}

/// How to reach the collection: one client (pool) per distinct value. `Debug` shows the URL
/// with its credentials redacted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MongoConfig {
    /// `mongodb://` or `mongodb+srv://` as given (TLS and write concern in its options), and
    /// the database and collection.
    collection: ServerTable,
    connect_timeout: Duration,
    command_timeout: Duration,
}

impl BackendConfig for MongoConfig {
    fn from_options(options: &Value) -> Result<Self> {
        let mut options = Options::new("mongodb", options)?;
        // `?collection=` (and `?database=`, also the URL's path) are ours; the driver's stay.
        let server = ServerUrl::resolve(
            &mut options,
            &[URL_ENV, "MONGODB_URI"],
            DEFAULT_URL,
            &["collection", "database"],
            &["mongodb", "mongodb+srv"],
        )?;
        let parsed = ConnectionString::parse(&server.url)
            .map_err(|e| server.refused(&options, &error_message(&e)))?;
        if parsed
            .write_concern
            .as_ref()
            .is_some_and(|wc| wc.w == Some(mongodb::options::Acknowledgment::Nodes(0)))
        {
            return Err(options.invalid(
                "url asks for w=0 (unacknowledged writes): a write must be acknowledged before it \
             resolves",
            ));
        }
        let database = options
            .string_or_url_param("database", &server.params)?
            .or(parsed.default_database.clone())
            .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        // The server's rules for names; `$` would make a name an operator.
        if database.is_empty()
            || database.len() > 63
            || database.contains(['/', '\\', '.', ' ', '"', '$', '\0'])
        {
            return Err(options.invalid(format!(
                "database must be 1 to 63 characters without / \\ . space \" $, got {database:?}"
            )));
        }
        let collection = options
            .string_or_url_param("collection", &server.params)?
            .unwrap_or_else(|| DEFAULT_COLLECTION.to_owned());
        if collection.is_empty()
            || collection.len() > 200
            || collection.contains(['$', '\0'])
            || collection.starts_with("system.")
        {
            return Err(options.invalid(format!(
                "collection must be 1 to 200 characters without $, not starting with \"system.\", \
             got {collection:?}"
            )));
        }
        let connect_timeout = options.milliseconds("connectTimeoutMs", DEFAULT_TIMEOUT_MS)?;
        let command_timeout = options.milliseconds("commandTimeoutMs", DEFAULT_TIMEOUT_MS)?;
        options.finish()?;
        Ok(MongoConfig {
            collection: ServerTable {
                url: server.url,
                noun: "collection",
                space: database,
                name: collection,
            },
            connect_timeout,
            command_timeout,
        })
    }

    fn storage(&self) -> Storage {
        Storage::new("mongodb", self.collection.identity())
    }
}

pub struct MongoStore {
    config: Arc<MongoConfig>,
    entity: Entity,
    /// `["namespace","entity",`: every `_id` of this entity starts with it.
    key_prefix: String,
    resources: Arc<Resources>,
    /// The URL's write concern (the driver does not add it to `run_command`).
    write_concern: WriteConcern,
}

impl MongoStore {
    fn new(config: MongoConfig, base_dir: &str, entity_name: &str) -> Result<Self> {
        let entity = Entity::new(&config.storage(), base_dir, entity_name)?;
        let pair = entity.pair();
        // `["ns","entity"]` without its `]`: the triple's text up to the id.
        let key_prefix = format!("{},", &pair[..pair.len() - 1]);
        let write_concern = ConnectionString::parse(&config.collection.url)
            .ok()
            .and_then(|parsed| parsed.write_concern)
            .unwrap_or_default();
        Ok(MongoStore {
            write_concern,
            resources: PER_CONFIG.get(&config),
            config: Arc::new(config),
            entity,
            key_prefix,
        })
    }

    fn key(&self, id: &str) -> String {
        format!(
            "{}{}]",
            self.key_prefix,
            serde_json::to_string(id).unwrap_or_default()
        )
    }

    /// The id a key of this entity names; `None` for a key we did not make.
    fn id_of(&self, key: &str) -> Option<String> {
        let quoted = key.strip_prefix(&self.key_prefix)?.strip_suffix(']')?;
        serde_json::from_str(quoted).ok()
    }

    /// Every key of this entity: `key_prefix <= _id < key_prefix` with its last `,` raised to `-`.
    fn entity_range(&self) -> Document {
        let upper = format!("{}-", &self.key_prefix[..self.key_prefix.len() - 1]);
        doc! { "_id": { "$gte": &self.key_prefix, "$lt": upper } }
    }

    /// The documents of `ids`: an equality for one (the common point read, which servers answer
    /// faster than a one-element `$in`), `$in` for more.
    fn ids_filter(&self, ids: &[impl AsRef<str>]) -> Document {
        match ids {
            [id] => doc! { "_id": self.key(id.as_ref()) },
            _ => {
                let keys: Vec<String> = ids.iter().map(|id| self.key(id.as_ref())).collect();
                doc! { "_id": { "$in": keys } }
            }
        }
    }

    async fn database(&self) -> Result<Database> {
        let config = &self.config;
        let link = self.resources.client.get(|_| true, connect(config)).await?;
        Ok(link.conn.database(&config.collection.space))
    }

    /// The collection (`suffix` "") or its quarantine ("_quarantine"). Writes through it are
    /// journaled (`j: true`): each is a rare one that must last (a removal, a move aside); batch
    /// writes go through `update` commands with their own concern.
    async fn collection(&self, suffix: &str) -> Result<Collection<Document>> {
        let name = format!("{}{suffix}", self.config.collection.name);
        let options = CollectionOptions::builder()
            .write_concern(self.write_concern(true))
            .build();
        Ok(self
            .database()
            .await?
            .collection_with_options(&name, options))
    }

    /// `operation` within the timeouts (server selection included), its error mapped.
    async fn bounded<T>(
        &self,
        operation: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<T> {
        let limit = self.config.connect_timeout + self.config.command_timeout;
        match tokio::time::timeout(limit, operation.into_future()).await {
            Ok(outcome) => outcome.map_err(|e| failure(&self.config, &e)),
            Err(_) => Err(server_error(
                &self.config,
                format!("no reply within {} ms", limit.as_millis()),
                ServerFailure::Unavailable,
            )),
        }
    }

    /// The documents matching `filter`, as (id, stored document), for keys of this entity.
    async fn find(&self, filter: Document, ids_only: bool) -> Result<Vec<(String, Stored)>> {
        let collection = self.collection("").await?;
        let mut find = collection.find(filter);
        if ids_only {
            find = find.projection(doc! { "_id": 1 });
        }
        self.bounded(async {
            let mut cursor = find.await?;
            let mut found = Vec::new();
            while cursor.advance().await? {
                let document = cursor.current();
                let Ok(key) = document.get_str("_id") else {
                    continue;
                };
                if let Some(id) = self.id_of(key) {
                    found.push((id, Stored::of(document)));
                }
            }
            Ok(found)
        })
        .await
    }

    /// Every (namespace, entity) with a document in the collection: all `_id`s, for tools only.
    async fn entities(&self) -> Result<Vec<(String, String)>> {
        let collection = self.collection("").await?;
        self.bounded(async {
            let mut cursor = collection
                .find(doc! {})
                .projection(doc! { "_id": 1 })
                .await?;
            let mut found = std::collections::BTreeSet::new();
            while cursor.advance().await? {
                let Ok(key) = cursor.current().get_str("_id") else {
                    continue;
                };
                if let Ok((namespace, entity, _)) =
                    serde_json::from_str::<(String, String, String)>(key)
                {
                    found.insert((namespace, entity));
                }
            }
            Ok(found.into_iter().collect())
        })
        .await
    }

    /// The URL's write concern; `j: true` added for a durable write (journaled before the reply).
    fn write_concern(&self, durable: bool) -> WriteConcern {
        let mut concern = self.write_concern.clone();
        if durable {
            concern.journal = Some(true);
        }
        concern
    }

    /// How many documents an `update` reply says were written, or its write error.
    fn applied(&self, reply: &Document, mode: WriteMode, sent: usize) -> Result<usize> {
        if let Ok(errors) = reply.get_array("writeErrors") {
            let first = errors
                .first()
                .and_then(Bson::as_document)
                .map(|e| {
                    format!(
                        "write error {}: {}",
                        e.get_i32("code").unwrap_or_default(),
                        e.get_str("errmsg").unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "write error".to_owned());
            return Err(server_error(&self.config, first, ServerFailure::Other));
        }
        if let Ok(concern) = reply.get_document("writeConcernError") {
            return Err(server_error(
                &self.config,
                format!(
                    "the primary took the write, but its write concern was not satisfied \
                     ({}): it may be lost if the primary fails",
                    concern.get_str("errmsg").unwrap_or_default()
                ),
                ServerFailure::NotReplicated,
            ));
        }
        Ok(match mode {
            WriteMode::InsertOnly => reply.get_array("upserted").map_or(0, Vec::len),
            _ => sent,
        })
    }

    /// Copy a document that is not a JSON text to `{collection}_quarantine`, then remove it only
    /// if it is unchanged (a concurrent rewrite by another process is kept, and the copy, ours,
    /// dropped). Without transactions (a single test server has none) copy-then-remove is the
    /// order that never loses the document.
    async fn move_aside(&self, id: &str, stored: &Stored) -> Result<bool> {
        let moved_at = now_ms();
        let key = self.key(id);
        let quarantine = self.collection("_quarantine").await?;
        let copy = doc! { "key": &key, "document": stored.raw.clone(), "movedAtMs": moved_at };
        let inserted = self.bounded(quarantine.insert_one(copy)).await?;
        let mut unchanged = doc! { "_id": &key };
        match stored.raw.get("v") {
            Some(value) => unchanged.insert("v", value.clone()),
            None => unchanged.insert("v", doc! { "$exists": false }),
        };
        let collection = self.collection("").await?;
        let removed = self.bounded(collection.delete_one(unchanged)).await?;
        if removed.deleted_count == 0 {
            self.bounded(quarantine.delete_one(doc! { "_id": inserted.inserted_id }))
                .await?;
            return Ok(false);
        }
        Ok(true)
    }
}

/// A stored document as found: its value when that is a string, and the whole document (for
/// the quarantine copy of one that is not).
pub struct Stored {
    value: Option<String>,
    raw: Document,
    /// Why the document is not a JSON text, if it is not.
    invalid: Option<&'static str>,
}

impl Stored {
    fn of(document: &RawDocument) -> Stored {
        let value = match document.get("v") {
            Ok(Some(RawBsonRef::String(text))) => Some(text.to_owned()),
            _ => None,
        };
        let invalid = match &value {
            Some(text) if is_valid_json(text.as_bytes()) => None,
            Some(_) => Some("is not JSON"),
            None if matches!(document.get("v"), Ok(None)) => Some("has no value field v"),
            None => Some("has a value v that is not a string"),
        };
        Stored {
            value,
            raw: Document::try_from(document).unwrap_or_default(),
            invalid,
        }
    }

    /// The JSON text, or why there is none.
    fn text(&self) -> std::result::Result<String, &'static str> {
        match (self.invalid, &self.value) {
            (None, Some(text)) => Ok(text.clone()),
            (Some(why), _) => Err(why),
            (None, None) => Err("has no value"),
        }
    }
}

impl Documents for MongoStore {
    type Raw = Stored;

    fn entity(&self) -> &Entity {
        &self.entity
    }

    fn location(&self, id: &str) -> String {
        self.entity.location(&self.config.collection.shown(), id)
    }

    async fn prepare(&self) -> Result<()> {
        self.database().await.map(drop)
    }

    fn judge(&self, _id: &str, stored: Stored) -> Judged<Stored> {
        match stored.text() {
            Ok(text) => Judged::Json(text),
            Err(why) => Judged::Invalid {
                why: why.into(),
                unhealed: stored.value.clone().map_or(Doc::Missing, Doc::Text),
                raw: stored,
            },
        }
    }

    async fn get_many(&self, ids: &[String]) -> Result<Vec<Option<Stored>>> {
        let mut found: HashMap<String, Stored> = self
            .find(self.ids_filter(ids), false)
            .await?
            .into_iter()
            .collect();
        Ok(ids.iter().map(|id| found.remove(id)).collect())
    }

    async fn has_many(&self, ids: &[String]) -> Result<Vec<bool>> {
        let present: std::collections::HashSet<String> = self
            .find(self.ids_filter(ids), true)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        Ok(ids.iter().map(|id| present.contains(id)).collect())
    }

    /// Upserts in `update` commands of at most `MAX_BATCH_DOCS`; returns the documents written.
    async fn put_many(&self, batch: Batch) -> Result<usize> {
        let Batch {
            docs,
            mode,
            durable,
        } = batch;
        // One update per id: the last text given for it.
        let docs = last_per_id(docs);
        let mut pending: Vec<&(String, String)> = docs.iter().collect();
        if pending.is_empty() {
            return Ok(0);
        }
        if mode == WriteMode::ReplaceChanged {
            // Servers differ in whether an identical replacement counts as modified: compare
            // here, so that unchanged documents are neither sent nor counted.
            let ids: Vec<&str> = pending.iter().map(|(id, _)| id.as_str()).collect();
            let stored: HashMap<String, Stored> = self
                .find(self.ids_filter(&ids), false)
                .await?
                .into_iter()
                .collect();
            pending.retain(|(id, text)| {
                stored
                    .get(id)
                    .and_then(|s| s.value.as_deref())
                    .is_none_or(|old| old != text)
            });
        }
        let concern = mongodb::bson::to_document(&self.write_concern(durable))
            .map_err(|e| PersistError::Task(format!("write concern: {e}")))?;
        let database = self.database().await?;
        let mut written = 0;
        let mut rest = pending.as_slice();
        while !rest.is_empty() {
            let mut bytes = 0;
            let take = rest
                .iter()
                .take(MAX_BATCH_DOCS)
                .take_while(|(id, text)| {
                    bytes += id.len() + text.len() + 64;
                    bytes <= MAX_COMMAND_BYTES
                })
                .count()
                .max(1);
            let (batch, tail) = rest.split_at(take);
            rest = tail;
            let updates: Vec<Document> = batch
                .iter()
                .map(|(id, text)| {
                    let key = self.key(id);
                    let update = match mode {
                        WriteMode::InsertOnly => doc! { "$setOnInsert": { "v": text } },
                        _ => doc! { "_id": &key, "v": text },
                    };
                    doc! { "q": { "_id": key }, "u": update, "upsert": true }
                })
                .collect();
            let mut command = doc! {
                "update": &self.config.collection.name,
                "updates": updates,
                "ordered": true,
            };
            if !concern.is_empty() {
                command.insert("writeConcern", concern.clone());
            }
            let reply = self
                .bounded(database.run_command(command))
                .await
                .map_err(|e| e.uncertain("applied"))?;
            let count = self.applied(&reply, mode, batch.len())?;
            self.resources.counters.count(count as u64);
            written += count;
        }
        Ok(written)
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        let collection = self.collection("").await?;
        let removed = self
            .bounded(collection.delete_one(doc! { "_id": self.key(id) }))
            .await?;
        self.resources.counters.count(removed.deleted_count);
        Ok(removed.deleted_count > 0)
    }

    async fn remove_all(&self) -> Result<()> {
        let collection = self.collection("").await?;
        let removed = self
            .bounded(collection.delete_many(self.entity_range()))
            .await?;
        self.resources.counters.count(removed.deleted_count);
        Ok(())
    }

    async fn ids(&self) -> Result<Vec<String>> {
        let found = self.find(self.entity_range(), true).await?;
        Ok(found.into_iter().map(|(id, _)| id).collect())
    }

    async fn entries(&self) -> Result<Vec<(String, String)>> {
        let found = self.find(self.entity_range(), false).await?;
        Ok(found
            .into_iter()
            .filter_map(|(id, stored)| stored.value.map(|text| (id, text)))
            .collect())
    }

    async fn scan_raw(&self) -> Result<Vec<(String, Stored)>> {
        self.find(self.entity_range(), false).await
    }

    async fn quarantine(&self, id: &str, stored: &Stored) -> Result<Option<String>> {
        let moved = self.move_aside(id, stored).await?;
        Ok(moved.then(|| format!("collection {}_quarantine", self.config.collection.name)))
    }
}

/// A client for the configuration, once a `ping` shows the server answers. The driver keeps
/// reconnecting by itself, so the client is made once (parsing a `mongodb+srv://` URL resolves
/// DNS) and kept: later stores of the configuration start without a round trip.
async fn connect(config: &MongoConfig) -> Result<Client> {
    install_crypto_provider();
    let parse = ClientOptions::parse(&config.collection.url);
    let mut options = match tokio::time::timeout(config.connect_timeout, parse).await {
        Ok(outcome) => outcome.map_err(|e| failure(config, &e))?,
        Err(_) => {
            return Err(server_error(
                config,
                format!(
                    "the URL's hosts were not resolved within {} ms",
                    config.connect_timeout.as_millis()
                ),
                ServerFailure::Unavailable,
            ))
        }
    };
    options.app_name = Some("backtest-kit-rs".into());
    options.connect_timeout = Some(config.connect_timeout);
    // An outage fails an operation after this long instead of the driver's 30 s.
    options.server_selection_timeout = Some(config.connect_timeout);
    let client = Client::with_options(options).map_err(|e| failure(config, &e))?;
    let admin = client.database("admin");
    let ping = admin.run_command(doc! { "ping": 1 });
    match tokio::time::timeout(
        config.connect_timeout + config.command_timeout,
        ping.into_future(),
    )
    .await
    {
        Ok(outcome) => outcome.map_err(|e| failure(config, &e))?,
        Err(_) => {
            return Err(server_error(
                config,
                "no reply to ping within the timeouts".into(),
                ServerFailure::Unavailable,
            ))
        }
    };
    Ok(client)
}

fn server_error(config: &MongoConfig, detail: String, kind: ServerFailure) -> PersistError {
    PersistError::Server {
        service: "mongodb",
        url: config.collection.shown(),
        detail: scrub_secrets(&detail, &config.collection.url),
        kind,
    }
}

/// The driver's message without the URL's credentials.
fn error_message(err: &mongodb::error::Error) -> String {
    match &*err.kind {
        ErrorKind::Command(command) => format!(
            "{} ({}): {}",
            command.code_name, command.code, command.message
        ),
        _ => err.to_string(),
    }
}

/// Resources codes meaning the server is going away or is not the primary now.
const UNAVAILABLE_CODES: &[i32] = &[6, 7, 89, 91, 189, 9001, 10107, 11600, 11602, 13435, 13436];
/// Unauthorized, AuthenticationFailed.
const AUTH_CODES: &[i32] = &[13, 18];

fn failure(config: &MongoConfig, err: &mongodb::error::Error) -> PersistError {
    let message = error_message(err);
    let kind = match &*err.kind {
        ErrorKind::Authentication { .. } => ServerFailure::Auth,
        ErrorKind::Command(command) if AUTH_CODES.contains(&command.code) => ServerFailure::Auth,
        ErrorKind::Command(command) if UNAVAILABLE_CODES.contains(&command.code) => {
            ServerFailure::Unavailable
        }
        // Selection fails with the last connection error; wrong credentials surface there.
        ErrorKind::ServerSelection { message, .. } if message.contains("Authentication failed") => {
            ServerFailure::Auth
        }
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. } => ServerFailure::Unavailable,
        ErrorKind::InvalidArgument { .. } | ErrorKind::InvalidTlsConfig { .. } => {
            return PersistError::InvalidConfig {
                detail: format!(
                    "mongodb: {}: {}",
                    config.collection.shown(),
                    scrub_secrets(&message, &config.collection.url)
                ),
            }
        }
        _ if err.contains_label("NetworkError") => ServerFailure::Unavailable,
        _ => ServerFailure::Other,
    };
    server_error(config, message, kind)
}

/// Everything shared by the stores of one configuration.
#[derive(Default)]
struct Resources {
    client: SharedConnection<Client>,
    counters: Counters,
}

/// What the stores of one configuration share, for the process.
static PER_CONFIG: PerConfig<MongoConfig, Resources> = PerConfig::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_and_credentials_never_shown() {
        let refused = |options: Value| MongoConfig::from_options(&options).expect_err("refused");
        for options in [
            json!({ "url": "redis://h" }),
            json!({ "url": "mongodb://h/?w=0" }),
            json!({ "url": "mongodb://h/?connectTimeoutMS=x" }),
            json!({ "database": "a.b" }),
            json!({ "database": "" }),
            json!({ "collection": "system.x" }),
            json!({ "collection": "a$b" }),
            json!({ "commandTimeoutMs": 0 }),
            json!({ "collections": "x" }),
        ] {
            assert_eq!(refused(options).code(), "PERSIST_INVALID_CONFIG");
        }
        let err = refused(json!({ "url": "mongodb://bob:hunter22@h/?w=zero&w=0" }));
        assert!(!err.to_string().contains("hunter22"), "{err}");
        let config =
            MongoConfig::from_options(&json!({ "url": "mongodb://bob:hunter22@h/trading" }))
                .expect("ok");
        assert_eq!(config.collection.space, "trading");
        assert!(!format!("{config:?}").contains("hunter22"));
        assert!(!config.collection.shown().contains("hunter22"));
    }

    #[test]
    fn keys_are_one_range_per_entity_and_name_their_id() {
        let config = MongoConfig::from_options(&json!({ "url": "mongodb://h" })).expect("ok");
        let store = MongoStore::new(config.clone(), "./dump/data/signal/", "BTC_s1").expect("ok");
        let key = store.key("1");
        assert_eq!(key, r#"["dump/data/signal","BTC_s1","1"]"#);
        assert_eq!(store.id_of(&key).as_deref(), Some("1"));
        let odd = store.key("a\"],[\"b");
        assert_eq!(store.id_of(&odd).as_deref(), Some("a\"],[\"b"));
        // A neighbouring entity's keys are outside the range.
        let other = MongoStore::new(config, "./dump/data/signal/", "BTC_s").expect("ok");
        let upper = format!("{}-", &store.key_prefix[..store.key_prefix.len() - 1]);
        for key in [other.key("1"), other.key("zzz")] {
            assert!(key < store.key_prefix || key >= upper, "{key}");
            assert_eq!(store.id_of(&key), None);
        }
        assert!(key >= store.key_prefix && key < upper);
    }
}
