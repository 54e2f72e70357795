//! The storage contract every backend implements: one request per operation on one entity, the
//! [`Store`] trait that answers it, and the id, name and option rules every backend shares.
//! Nothing here names a backend or a layer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Result;

#[cfg(test)]
pub(crate) mod conformance;
pub mod layout;
pub mod names;
pub mod options;
#[cfg(test)]
pub(crate) mod testutil;

pub use names::{entity_segments, namespace_of, validate_id, MAX_ID_BYTES, TMP_PREFIX};
pub use options::{BackendConfig, Options};

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
    pub fn validate(&self) -> Result<()> {
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

/// Where a store's documents are: a backend's storage (a database file, a server, a directory
/// tree) and one entity in it. Requests of stores with equal scopes keep issue order per id, and
/// closing a storage waits for its requests issued before (see `layers::order`). Never shown: a
/// location may hold credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub storage: Storage,
    /// The entity within the storage, in the backend's own terms (a directory, a hash key, the
    /// JSON pair of namespace and entity name).
    pub entity: String,
}

/// One backend's storage, as a set of options names it: two stores share one when their
/// documents are the same ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Storage {
    pub backend: &'static str,
    pub location: String,
}

impl Storage {
    pub fn new(backend: &'static str, location: impl Into<String>) -> Self {
        Storage {
            backend,
            location: location.into(),
        }
    }

    pub fn entity(&self, entity: impl Into<String>) -> Arc<Scope> {
        Arc::new(Scope {
            storage: self.clone(),
            entity: entity.into(),
        })
    }
}

/// One entity's documents: JSON texts keyed by id. Values cross this boundary as the text
/// `JSON.stringify` produced on the JS side; backends store and return it unchanged.
pub trait Store: Send + Sync + 'static {
    /// Run `request` wherever this backend runs it best, and call `reply` exactly once.
    /// Ids are already validated.
    fn submit(self: Arc<Self>, request: Request, reply: Reply);

    /// Names the stored documents of this entity (two stores naming the same ones return equal
    /// scopes), so requests of all its stores keep issue order per id. Never shown.
    fn scope(&self) -> &Arc<Scope>;

    /// Answer `request` on the calling thread if this backend can without waiting on I/O
    /// beyond a page-cache hit or on any lock; `None` sends it through `submit`.
    fn in_place(&self, _request: &Request) -> Option<Result<Response>> {
        None
    }
}
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// (namespace, entity): one entity of a store, as tools list them.
pub type EntityRef = (String, String);

/// The entities of a store, once listed.
pub type Listing = BoxFuture<Result<Vec<EntityRef>>>;
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
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_the_last_text_of_each_id() {
        let doc = |id: &str, text: &str| (id.to_owned(), text.to_owned());
        assert_eq!(
            last_per_id(vec![doc("a", "1"), doc("b", "2"), doc("a", "3")]),
            vec![doc("b", "2"), doc("a", "3")]
        );
        assert_eq!(last_per_id(Vec::new()), Vec::new());
    }
}
