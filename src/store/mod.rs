//! The storage contract every backend implements, the registry of backends, and the id and
//! name rules they share.
//!
//! A backend is one module: a type implementing [`Store`] (which decides on which thread each
//! request runs) and a [`Kind`] entry in [`KINDS`] that opens it from JSON options. Nothing
//! outside this folder names a backend.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::oneshot;

use crate::error::{PersistError, Result};

mod credentials;
pub mod file;
pub mod layout;
pub mod mongo;
mod options;
mod order;
pub mod postgres;
pub mod redis;
pub mod s3;
pub mod sealed;
mod servers;
pub mod sqlite;

pub use options::Options;

/// Longest id in bytes. A document file is `{id}.json` and its temporary sibling is
/// `.tmp-{12 hex}-{id}.json`; that name must fit the usual 255-byte file-name limit.
pub const MAX_ID_BYTES: usize = 255 - ".tmp-".len() - 12 - "-".len() - ".json".len();

/// Prefix of in-flight atomic-write files, the same as backtest-kit's `PersistBase`, so
/// each side recognises and sweeps the other's leftovers.
pub const TMP_PREFIX: &str = ".tmp-";

/// What the first `init` of an entity cleaned up, for the caller to log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// Atomic-write leftovers older than the stale age, removed.
    pub removed_stale_tmp: Vec<String>,
    /// Documents that were not valid JSON, removed or moved aside.
    pub removed_invalid: Vec<String>,
    /// Removals that failed, as `location: reason`; the documents are still there.
    pub failed_removals: Vec<String>,
}

/// How a write treats documents that already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Create or replace.
    Replace,
    /// Create or replace, but leave a document whose stored text is already this text (no
    /// write, no sync): rewriting a list of 500 documents with one change writes one.
    ReplaceChanged,
    /// Create only; an existing document is kept as it is (backtest-kit's candle cache).
    InsertOnly,
}

/// One operation on one entity. Batches are one request, so they cross from JS once and each
/// backend can run them as one transaction, one directory sync, or one round trip.
#[derive(Debug)]
pub enum Request {
    /// Prepare storage. `validate`: check every document and set aside those that are not JSON
    /// (O(documents)); without it, start-up costs the same whatever the entity holds.
    Init {
        validate: bool,
    },
    /// The documents of `ids`, in order. `stop_at_missing`: end the answer at the first missing
    /// id (inclusive). `heal`: a document that is not JSON is moved aside and reported as
    /// [`Doc::Corrupt`], so the next write of that id can replace it.
    Read {
        ids: Vec<String>,
        stop_at_missing: bool,
        heal: bool,
    },
    /// Whether each of `ids` has a document.
    Has {
        ids: Vec<String>,
    },
    /// Write `docs` (id, JSON text) in order. `durable`: the data is synced to disk before the
    /// reply; otherwise the write is atomic (old or new document, never torn) but may be lost
    /// on power loss.
    Write {
        docs: Vec<(String, String)>,
        mode: WriteMode,
        durable: bool,
    },
    Remove {
        id: String,
    },
    RemoveAll,
    /// Every id, unordered (the JS facade sorts with `PersistBase`'s own comparator).
    Keys,
    /// Every (id, text) pair, unordered: a list read in one request.
    Scan,
}

impl Request {
    /// Every id the request names must be one `validate_id` accepts.
    fn validate(&self) -> Result<()> {
        match self {
            Request::Read { ids, .. } | Request::Has { ids } => {
                ids.iter().try_for_each(|id| validate_id(id))
            }
            Request::Write { docs, .. } => docs.iter().try_for_each(|(id, _)| validate_id(id)),
            Request::Remove { id } => validate_id(id),
            Request::Init { .. } | Request::RemoveAll | Request::Keys | Request::Scan => Ok(()),
        }
    }
}

/// One document as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Doc {
    Missing,
    Text(String),
    /// Not a JSON document. The detail says why and, for a read that heals, where it was moved
    /// (the id then reads as missing).
    Corrupt {
        id: String,
        detail: String,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub enum Response {
    Init(InitReport),
    Docs(Vec<Doc>),
    Flags(Vec<bool>),
    /// How many documents a write changed.
    Written(usize),
    Done,
    Keys(Vec<String>),
    Entries(Vec<(String, String)>),
}

/// Receives a request's outcome exactly once, on whatever thread finished it.
pub type Reply = Box<dyn FnOnce(Result<Response>) + Send>;

/// Counters of the storage a store writes to (a database, a server, the process's files).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Documents written (created or changed).
    pub writes: u64,
    /// Commits that wrote them: SQLite transactions, file-backend sync groups (one directory
    /// sync per batch), Redis write round trips.
    pub commits: u64,
}

/// One entity's documents: JSON texts keyed by id. Values cross this boundary as the text
/// `JSON.stringify` produced on the JS side; backends store and return it unchanged.
pub trait Store: Send + Sync + 'static {
    /// Run `request` wherever this backend runs it best, and call `reply` exactly once.
    /// Ids are already validated.
    fn submit(self: Arc<Self>, request: Request, reply: Reply);

    /// Names the stored documents of this entity (two stores naming the same ones return the
    /// same text), so requests of all its stores keep issue order per id. Never shown.
    fn scope(&self) -> &Arc<str>;

    /// Answer `request` on the calling thread if this backend can without waiting on I/O
    /// beyond a page-cache hit or on any lock; `None` sends it through `submit`.
    fn in_place(&self, _request: &Request) -> Option<Result<Response>> {
        None
    }
}

/// Validate `request`'s ids, then hand it to `store` once the writes of its ids issued before
/// it have finished (issue order, see `order`).
pub fn submit(store: &Arc<dyn Store>, request: Request, reply: Reply) {
    match request.validate() {
        Ok(()) => order::submit(Arc::clone(store), request, reply),
        Err(e) => reply(Err(e)),
    }
}

/// `submit` for callers that can wait: the core's own tests and tools.
pub async fn call(store: &Arc<dyn Store>, request: Request) -> Result<Response> {
    let (sender, receiver) = oneshot::channel();
    submit(
        store,
        request,
        Box::new(move |result| drop(sender.send(result))),
    );
    receiver
        .await
        .map_err(|_| PersistError::Task("the request ended without a result".into()))?
}

/// `in_place` after validation; `None` when the backend does not serve it in place, or when
/// a write issued before it to one of its ids has not finished.
pub fn in_place(store: &Arc<dyn Store>, request: &Request) -> Option<Result<Response>> {
    if let Err(e) = request.validate() {
        return Some(Err(e));
    }
    if !order::is_clear(store.as_ref(), request) {
        return None;
    }
    store.in_place(request)
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// (namespace, entity): one entity of a store, as tools list them.
pub type EntityRef = (String, String);

/// The entities of a store, once listed.
pub type Listing = BoxFuture<Result<Vec<EntityRef>>>;

/// A backend as the registry knows it. Options arrive as JSON; each backend resolves its
/// defaults (environment, working directory) and refuses names it does not know.
pub struct Kind {
    pub name: &'static str,
    /// The URL schemes naming this backend (`redis` for `redis://…`), one syntax for factories,
    /// environment variables and the command.
    pub schemes: &'static [&'static str],
    /// The options a URL of one of `schemes` stands for; its parameters are checked when the
    /// options are resolved, the same way whichever way the URL came.
    pub options_from_url: fn(&str) -> Result<Value>,
    /// A store for (entityName, baseDir); no I/O.
    pub open: fn(&str, &str, &Value) -> Result<Arc<dyn Store>>,
    /// The options as resolved now, for users to inspect.
    pub describe: fn(&Value) -> Result<Value>,
    /// Counters of the storage these options name; zero when it is not open.
    pub stats: fn(&Value) -> Result<StoreStats>,
    /// Finish queued work and release the shared resource (database, connection).
    pub close: fn(&Value) -> Result<BoxFuture<Result<()>>>,
    /// Every (namespace, entity) holding documents, for tools (the hot path never lists). `root`:
    /// the directory of backtest-kit's layout (`./dump`), for the file backend.
    pub entities: fn(&Value, &str) -> Result<Listing>,
}

/// Every backend; adding one is a module and a line here.
pub static KINDS: &[&Kind] = &[
    &file::KIND,
    &sqlite::KIND,
    &redis::KIND,
    &postgres::KIND,
    &mongo::KIND,
    &s3::KIND,
];

/// The backend's own options and the `encryption` option (which every backend takes, and none
/// parses: it wraps the store, see `sealed`).
fn split_encryption(options: &Value) -> (Value, Option<Value>) {
    match options {
        Value::Object(map) if map.contains_key("encryption") => {
            let mut rest = map.clone();
            let encryption = rest.remove("encryption");
            (Value::Object(rest), encryption)
        }
        other => (other.clone(), None),
    }
}

/// A store of backend `kind` for (entityName, baseDir), encrypted when the options or the
/// environment ask for it; no I/O.
pub fn open(
    kind_name: &str,
    entity: &str,
    base_dir: &str,
    options: &Value,
) -> Result<Arc<dyn Store>> {
    let (backend_options, encryption) = split_encryption(options);
    let keyring = sealed::keyring(encryption.as_ref())?;
    let store = (kind(kind_name)?.open)(entity, base_dir, &backend_options)?;
    Ok(match keyring {
        Some(keyring) => Arc::new(sealed::Sealed::new(store, keyring, base_dir, entity)),
        None => Arc::new(sealed::Guarded::new(store)),
    })
}

/// The options as resolved now (credentials redacted; for encryption, the key ids only).
pub fn describe(kind_name: &str, options: &Value) -> Result<Value> {
    let (backend_options, encryption) = split_encryption(options);
    let keyring = sealed::keyring(encryption.as_ref())?;
    let mut described = (kind(kind_name)?.describe)(&backend_options)?;
    if let Value::Object(map) = &mut described {
        map.insert("encryption".into(), sealed::describe(&keyring));
    }
    Ok(described)
}

/// Counters of the storage the options name.
pub fn stats(kind_name: &str, options: &Value) -> Result<StoreStats> {
    (kind(kind_name)?.stats)(&split_encryption(options).0)
}

/// Every (namespace, entity) the store holds documents of, sorted (see `Kind::entities`).
pub async fn entities(
    kind_name: &str,
    options: &Value,
    root: &str,
) -> Result<Vec<(String, String)>> {
    let mut pairs = (kind(kind_name)?.entities)(&split_encryption(options).0, root)?.await?;
    pairs.sort();
    pairs.dedup();
    Ok(pairs)
}

/// Finish queued work and release the shared resource the options name.
pub fn close(kind_name: &str, options: &Value) -> Result<BoxFuture<Result<()>>> {
    (kind(kind_name)?.close)(&split_encryption(options).0)
}

/// A server URL stands for `{ url }`: the backend's own resolution reads its parameters.
pub fn url_option(url: &str) -> Result<Value> {
    Ok(serde_json::json!({ "url": url }))
}

/// The backend a URL names and the options it stands for: `redis://…/0?prefix=bot-a` is
/// `("redis", { url })`, `sqlite:./state.sqlite` is `("sqlite", { path })`.
pub fn from_url(url: &str) -> Result<(&'static str, Value)> {
    let scheme = url
        .split_once(':')
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    let found = scheme
        .as_deref()
        .and_then(|scheme| KINDS.iter().find(|kind| kind.schemes.contains(&scheme)));
    match found {
        Some(kind) => Ok((kind.name, (kind.options_from_url)(url)?)),
        None => Err(PersistError::InvalidConfig {
            detail: format!(
                "not a store URL{}: the schemes are {}",
                scheme
                    .map(|s| format!(" (scheme {s:?})"))
                    .unwrap_or_default(),
                KINDS
                    .iter()
                    .flat_map(|kind| kind.schemes.iter().map(|s| format!("{s}:")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

pub fn kind(name: &str) -> Result<&'static Kind> {
    KINDS
        .iter()
        .copied()
        .find(|k| k.name == name)
        .ok_or_else(|| PersistError::InvalidConfig {
            detail: format!("unknown backend {name:?}"),
        })
}

/// `docs` with one entry per id, the last text given for it (a backend that sends a batch as
/// one statement or as concurrent requests must not write an id twice).
pub fn last_per_id(docs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut last: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(docs.len());
    for (index, (id, _)) in docs.iter().enumerate() {
        last.insert(id, index);
    }
    let keep: Vec<bool> = docs
        .iter()
        .enumerate()
        .map(|(index, (id, _))| last.get(id.as_str()) == Some(&index))
        .collect();
    docs.into_iter()
        .zip(keep)
        .filter_map(|(doc, keep)| keep.then_some(doc))
        .collect()
}

/// Reject ids that could name something other than one document of this entity.
pub fn validate_id(id: &str) -> Result<()> {
    let reason = if id.is_empty() {
        "it is empty"
    } else if id.contains(['/', '\\']) {
        "it contains a path separator"
    } else if id.contains('\0') {
        "it contains a NUL character"
    } else if id == "." || id == ".." {
        "it is a relative path component"
    } else if id.starts_with(TMP_PREFIX) {
        "it starts with the reserved temporary-file prefix \".tmp-\""
    } else if id.len() > MAX_ID_BYTES {
        "it is longer than 232 bytes"
    } else if let Some(reason) = cfg!(windows).then(|| windows_reason(id)).flatten() {
        reason
    } else {
        return Ok(());
    };
    Err(PersistError::InvalidId {
        id: id.to_owned(),
        reason,
    })
}

/// Split an entity name into path segments the way Node's `path.join` would read it,
/// refusing `..` (which would leave `baseDir`) and NUL. `""` and `/` are allowed: backtest-kit
/// uses an empty name for live sessions and `exchange/symbol/interval` for candles.
pub fn entity_segments(name: &str) -> Result<Vec<&str>> {
    let invalid = |reason| PersistError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.contains('\0') {
        return Err(invalid("it contains a NUL character"));
    }
    let mut segments = Vec::new();
    for segment in name.split(path_separators()) {
        match segment {
            "" | "." => {}
            ".." => return Err(invalid("it contains a \"..\" segment")),
            other => {
                if let Some(reason) = cfg!(windows).then(|| windows_reason(other)).flatten() {
                    return Err(invalid(reason));
                }
                segments.push(other)
            }
        }
    }
    Ok(segments)
}

/// Why a path component is unsafe on Windows: `C:x` joined to a path replaces it, `a:b` names
/// an alternate data stream, and device names such as `NUL` or `COM1.json` are not files.
fn windows_reason(component: &str) -> Option<&'static str> {
    if component.contains(':') {
        return Some("it contains a \":\", which Windows reads as a drive or a data stream");
    }
    let stem = component.split('.').next().unwrap_or(component).trim_end();
    let reserved = matches!(
        stem.to_ascii_uppercase().as_str(),
        "CON" | "PRN" | "AUX" | "NUL"
    ) || (stem.len() == 4
        && stem
            .get(..3)
            .is_some_and(|p| ["COM", "LPT"].contains(&p.to_ascii_uppercase().as_str()))
        && stem.as_bytes()[3].is_ascii_digit());
    reserved.then_some("it is a device name on Windows")
}

/// The namespace a `baseDir` names in the database backends, normalised lexically so that
/// `./dump/data/signal/` and `dump/data/signal` are one namespace (as they are one directory).
/// It is not made absolute: a shared database must not depend on each process's cwd.
pub fn namespace_of(base_dir: &str) -> String {
    let absolute = base_dir.starts_with('/') || (cfg!(windows) && base_dir.starts_with('\\'));
    let mut parts: Vec<&str> = Vec::new();
    for segment in base_dir.split(path_separators()) {
        match segment {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

fn path_separators() -> &'static [char] {
    // A backslash is an ordinary file-name character on POSIX, as it is for PersistBase.
    if cfg!(windows) {
        &['/', '\\']
    } else {
        &['/']
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A directory under the system temp dir, removed on drop.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> Self {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "bkrs-{tag}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&path);
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    use std::sync::Arc;

    use super::{call, Doc, InitReport, Request, Response, Store, WriteMode};
    use crate::error::Result;

    /// The request API as plain async calls, for the backends' unit tests.
    pub struct Client(pub Arc<dyn Store>);

    impl Client {
        pub async fn init(&self, validate: bool) -> Result<InitReport> {
            match call(&self.0, Request::Init { validate }).await? {
                Response::Init(report) => Ok(report),
                other => panic!("unexpected {other:?}"),
            }
        }
        pub async fn read(&self, id: &str) -> Result<Option<String>> {
            let request = Request::Read {
                ids: vec![id.to_owned()],
                stop_at_missing: false,
                heal: false,
            };
            match call(&self.0, request).await? {
                Response::Docs(mut docs) => match docs.pop() {
                    Some(Doc::Text(text)) => Ok(Some(text)),
                    _ => Ok(None),
                },
                other => panic!("unexpected {other:?}"),
            }
        }
        pub async fn read_many(&self, ids: &[&str], stop: bool, heal: bool) -> Result<Vec<Doc>> {
            let ids = ids.iter().map(|id| id.to_string()).collect();
            let request = Request::Read {
                ids,
                stop_at_missing: stop,
                heal,
            };
            match call(&self.0, request).await? {
                Response::Docs(docs) => Ok(docs),
                other => panic!("unexpected {other:?}"),
            }
        }
        pub async fn has(&self, id: &str) -> Result<bool> {
            match call(
                &self.0,
                Request::Has {
                    ids: vec![id.to_owned()],
                },
            )
            .await?
            {
                Response::Flags(flags) => Ok(flags[0]),
                other => panic!("unexpected {other:?}"),
            }
        }
        pub async fn write(&self, id: &str, json: &str) -> Result<()> {
            self.write_many(&[(id, json)], WriteMode::Replace, true)
                .await
                .map(drop)
        }
        pub async fn write_many(
            &self,
            docs: &[(&str, &str)],
            mode: WriteMode,
            durable: bool,
        ) -> Result<usize> {
            let docs = docs
                .iter()
                .map(|(id, text)| (id.to_string(), text.to_string()))
                .collect();
            let request = Request::Write {
                docs,
                mode,
                durable,
            };
            match call(&self.0, request).await? {
                Response::Written(n) => Ok(n),
                other => panic!("unexpected {other:?}"),
            }
        }
        pub async fn remove(&self, id: &str) -> Result<()> {
            call(&self.0, Request::Remove { id: id.to_owned() })
                .await
                .map(drop)
        }
        pub async fn keys(&self) -> Result<Vec<String>> {
            match call(&self.0, Request::Keys).await? {
                Response::Keys(mut keys) => {
                    keys.sort();
                    Ok(keys)
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    pub fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_name_one_document_pass() {
        for id in [
            "BTCUSDT",
            "10",
            "positions",
            "a.b",
            "...",
            "x..y",
            "é",
            ".hidden",
        ] {
            assert!(validate_id(id).is_ok(), "{id:?}");
        }
        assert!(validate_id(&"x".repeat(MAX_ID_BYTES)).is_ok());
    }

    #[test]
    fn ids_that_escape_or_collide_are_rejected() {
        for id in ["", "../x", "a/b", "a\\b", "a\0b", ".", "..", ".tmp-abc"] {
            let err = validate_id(id).expect_err(id);
            assert_eq!(err.code(), "PERSIST_INVALID_ID");
        }
        assert!(validate_id(&"x".repeat(MAX_ID_BYTES + 1)).is_err());
        assert_eq!(MAX_ID_BYTES, 232);
    }

    #[test]
    fn windows_components_that_escape_or_are_devices_are_named() {
        for bad in ["C:x", "a:b", "NUL", "nul.json", "COM1", "lpt9.txt", "CON "] {
            assert!(windows_reason(bad).is_some(), "{bad:?}");
        }
        for ok in [
            "BTCUSDT",
            "console",
            "COM10",
            "nullable",
            "a.b",
            "C\u{20ac}",
            "\u{e9}\u{e9}",
        ] {
            assert!(windows_reason(ok).is_none(), "{ok:?}");
        }
    }

    #[test]
    fn a_batch_keeps_the_last_text_of_each_id() {
        let doc = |id: &str, text: &str| (id.to_owned(), text.to_owned());
        assert_eq!(
            last_per_id(vec![doc("a", "1"), doc("b", "2"), doc("a", "3")]),
            vec![doc("b", "2"), doc("a", "3")]
        );
        assert_eq!(last_per_id(Vec::new()), Vec::new());
    }

    #[test]
    fn namespaces_normalise_lexically() {
        assert_eq!(namespace_of("./dump/data/signal/"), "dump/data/signal");
        assert_eq!(namespace_of("dump/data/signal"), "dump/data/signal");
        assert_eq!(namespace_of("dump//data/./x/../signal"), "dump/data/signal");
        assert_eq!(namespace_of("/abs/dir/"), "/abs/dir");
        assert_eq!(namespace_of("/../x"), "/x");
        assert_eq!(namespace_of("../up"), "../up");
        assert_eq!(namespace_of(""), "");
        assert_ne!(
            namespace_of("./dump/data/signal/"),
            namespace_of("./dump/data/schedule/")
        );
    }

    #[test]
    fn entity_names_normalise_like_path_join() {
        assert_eq!(
            entity_segments("ex1/BTCUSDT/1m").ok(),
            Some(vec!["ex1", "BTCUSDT", "1m"])
        );
        assert_eq!(entity_segments("").ok(), Some(vec![]));
        assert_eq!(entity_segments("/a//./b/").ok(), Some(vec!["a", "b"]));
        assert!(entity_segments("../etc").is_err());
        assert!(entity_segments("a/../../b").is_err());
        assert!(entity_segments("a\0").is_err());
    }
}
