//! `SqliteStore`: every entity of a process in one SQLite database, keyed by
//! (namespace from `baseDir`, entity name, id).
//!
//! One database per (path, synchronous level) is shared by every store in the process. Reads
//! use a small pool of connections and never wait for writes (WAL); point reads run on the
//! calling thread once the database is open. Writes go to a single writer thread that
//! coalesces whatever is queued into one transaction (group commit): each write's reply comes
//! only after the transaction holding it committed, so with `synchronous=FULL` an acknowledged
//! durable write survives power loss while concurrent writers share the fsync. Writes marked
//! not durable (cache domains) commit in their own transactions at `synchronous=NORMAL`:
//! atomic, kept across a process crash, possibly rolled back by a power loss. Other processes
//! may open the same file; SQLite's locks plus a busy timeout and retries serialise writers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::contract::options::{boolean_param, query_pairs};
use crate::contract::{
    entity_segments, namespace_of, BackendConfig, BoxFuture, Doc, InitReport, Listing, Options,
    Reply, Request, Response, Scope, Storage, Store, StoreStats, WriteMode,
};
use crate::error::{PersistError, Result};
use crate::exec::{blocking, lock, spawn};
use crate::json::is_valid_json;
use crate::registry::Backend;
use crate::remote::credentials::percent_decode;

/// The schema this version writes; stored in `PRAGMA user_version`. 2 added `quarantine`.
const SCHEMA_VERSION: i64 = 2;
/// How long one lock attempt waits inside SQLite before we retry.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a writer keeps retrying a busy database (another process holding the write lock).
const BUSY_GIVE_UP: Duration = Duration::from_secs(60);
/// Upper bound on write requests per group-commit transaction, to bound latency of the first.
const MAX_BATCH: usize = 512;
/// Idle read connections kept per database.
const MAX_IDLE_READERS: usize = 8;
/// Reads with more ids than this run on the blocking pool when not served in place.
const INLINE_IDS: usize = 16;
/// Largest cache write committed on the calling thread (about a millisecond of inserts).
const MAX_IN_PLACE_DOCS: usize = 1024;

const PATH_ENV: &str = "BACKTEST_KIT_RS_SQLITE_PATH";
const SYNCHRONOUS_ENV: &str = "BACKTEST_KIT_RS_SQLITE_SYNCHRONOUS";
const DEFAULT_PATH: &str = "dump/backtest-kit.sqlite";

/// `sqlite:PATH?synchronous=NORMAL&syncReads=false`: the database file and the two settings.
fn options_from_url(url: &str) -> Result<Value> {
    let invalid = |detail: String| PersistError::InvalidConfig {
        detail: format!("sqlite: {detail}"),
    };
    let rest = url
        .split_once(':')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    let mut options = serde_json::Map::new();
    if !path.is_empty() {
        options.insert("path".into(), Value::String(percent_decode(path)));
    }
    for (_, name, value) in query_pairs(url) {
        let value = match name {
            "synchronous" => Value::String(percent_decode(value)),
            "syncReads" => Value::Bool(boolean_param(name, value).map_err(invalid)?),
            other => {
                return Err(invalid(format!(
                    "url: unknown parameter {other:?} (synchronous, syncReads)"
                )))
            }
        };
        options.insert(name.into(), value);
    }
    Ok(Value::Object(options))
}

pub struct SqliteBackend;

impl Backend for SqliteBackend {
    type Config = Resolved;

    const NAME: &str = "sqlite";
    const SCHEMES: &[&str] = &["sqlite"];

    fn options_from_url(&self, url: &str) -> Result<Value> {
        options_from_url(url)
    }

    fn open(&self, resolved: Resolved, entity: &str, base_dir: &str) -> Result<Arc<dyn Store>> {
        Ok(Arc::new(SqliteStore::new(
            resolved.config,
            resolved.sync_reads,
            base_dir,
            entity,
        )?))
    }

    fn describe(&self, resolved: &Resolved) -> Value {
        json!({
            "path": resolved.config.path.display().to_string(),
            "synchronous": resolved.config.synchronous.pragma(),
            "syncReads": resolved.sync_reads,
        })
    }

    fn stats(&self, resolved: &Resolved) -> StoreStats {
        registry()
            .get(&resolved.config)
            .map(|db| db.stats())
            .unwrap_or_default()
    }

    fn entities(&self, resolved: Resolved, _root: &str) -> Result<Listing> {
        let path = resolved.config.path;
        Ok(Box::pin(async move {
            crate::exec::blocking(move || list_entities(&path)).await
        }))
    }

    fn close(&self, resolved: Resolved) -> BoxFuture<Result<()>> {
        Box::pin(async move { SqliteStore::close(&resolved.config).await })
    }
}

/// Every (namespace, entity) of the database: read-only, and never created, so listing changes
/// nothing.
fn list_entities(path: &Path) -> Result<Vec<(String, String)>> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| PersistError::database(path, e))?;
    let mut statement = conn
        .prepare("SELECT DISTINCT namespace, entity FROM entities")
        .map_err(|e| PersistError::database(path, e))?;
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| PersistError::database(path, e))
}

/// The database file, whatever synchronous level a store writes its rows at.
fn storage(config: &SqliteConfig) -> Storage {
    Storage::new("sqlite", config.path.display().to_string())
}

/// Options with their defaults applied: env at this moment, paths against the cwd now.
#[derive(Debug)]
pub struct Resolved {
    config: SqliteConfig,
    sync_reads: bool,
}

impl BackendConfig for Resolved {
    fn from_options(options: &Value) -> Result<Self> {
        let mut options = Options::new("sqlite", options)?;
        let env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let path = options
            .string("path")?
            .or_else(|| env(PATH_ENV))
            .unwrap_or_else(|| DEFAULT_PATH.to_owned());
        if path.is_empty() {
            return Err(options.invalid("path must be a non-empty string"));
        }
        let path = std::path::absolute(&path)
            .map_err(|e| options.invalid(format!("path {path:?} cannot be made absolute: {e}")))?;
        let level = options
            .string("synchronous")?
            .or_else(|| env(SYNCHRONOUS_ENV))
            .unwrap_or_else(|| "FULL".to_owned());
        let synchronous = Synchronous::parse(&level).ok_or_else(|| {
            options.invalid(format!(
                "synchronous must be \"FULL\" or \"NORMAL\", got {level:?}"
            ))
        })?;
        let sync_reads = options.boolean("syncReads")?.unwrap_or(true);
        options.finish()?;
        Ok(Resolved {
            config: SqliteConfig { path, synchronous },
            sync_reads,
        })
    }

    fn storage(&self) -> Storage {
        storage(&self.config)
    }
}

/// How hard a commit waits for the disk (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Synchronous {
    /// A resolved write survives power loss.
    Full,
    /// A resolved write survives a process crash; the last commits may roll back on power loss.
    Normal,
}

impl Synchronous {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "FULL" => Some(Synchronous::Full),
            "NORMAL" => Some(Synchronous::Normal),
            _ => None,
        }
    }

    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Which shared database a store uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SqliteConfig {
    pub path: PathBuf,
    pub synchronous: Synchronous,
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    config: Arc<SqliteConfig>,
    sync_reads: bool,
    namespace: Arc<str>,
    entity: Arc<str>,
    scope: Arc<Scope>,
}

impl SqliteStore {
    /// No I/O: the database opens on first use.
    pub fn new(
        config: SqliteConfig,
        sync_reads: bool,
        base_dir: &str,
        entity_name: &str,
    ) -> Result<Self> {
        // Same name rules as the file backend, so an entity name valid here is valid there.
        entity_segments(entity_name)?;
        let namespace = namespace_of(base_dir);
        let scope = storage(&config).entity(format!("{namespace}\n{entity_name}"));
        Ok(SqliteStore {
            config: Arc::new(config),
            sync_reads,
            namespace: namespace.into(),
            entity: entity_name.into(),
            scope,
        })
    }

    /// The database, opened off the calling thread if no store has opened it yet (opening may
    /// wait for another process's lock).
    async fn database(&self) -> Result<Arc<Database>> {
        if let Some(db) = registry().get(&self.config) {
            return Ok(db);
        }
        let config = Arc::clone(&self.config);
        blocking(move || registry().get_or_open(&config)).await
    }

    fn location(&self, id: &str) -> String {
        format!(
            "{} namespace={} entity={} id={id}",
            self.config.path.display(),
            self.namespace,
            self.entity
        )
    }

    /// Hand a write request to the database's writer thread; `reply` runs there once the
    /// transaction holding it committed.
    fn send_write(&self, db: &Database, request: Request, reply: Reply) {
        let (ops, durable) = match request {
            Request::Write {
                docs,
                mode,
                durable,
            } => (
                docs.into_iter()
                    .map(|(id, value)| WriteOp::Put { id, value, mode })
                    .collect(),
                durable,
            ),
            Request::Remove { id } => (vec![WriteOp::Delete { id }], true),
            Request::RemoveAll => (vec![WriteOp::DeleteAll], true),
            other => {
                return reply(Err(PersistError::Task(format!(
                    "not a write request: {other:?}"
                ))))
            }
        };
        let single_removal = matches!(ops.as_slice(), [WriteOp::Delete { .. }]);
        let is_write = matches!(ops.first(), Some(WriteOp::Put { .. })) || ops.is_empty();
        db.send(
            self.batch(ops, durable),
            Box::new(move |result| {
                reply(result.and_then(|affected| {
                    let total: usize = affected.iter().sum();
                    if single_removal && total == 0 {
                        Err(PersistError::NotFound)
                    } else if is_write {
                        Ok(Response::Written(total))
                    } else {
                        Ok(Response::Done)
                    }
                }))
            }),
        );
    }

    /// Commit a cache write on the calling thread, or `None` if that could wait: the writer is
    /// committing, another process holds the write lock, or any step fails (the writer thread
    /// then retries it and reports). Issue order is the caller's (`layers::in_place`).
    fn write_in_place(
        &self,
        db: &Database,
        docs: &[(String, String)],
        mode: WriteMode,
    ) -> Option<Response> {
        let mut guard = db.writer.try_lock().ok()?;
        let conn = guard.as_mut()?;
        let relaxed = db.synchronous == Synchronous::Full;
        // Never wait for a lock on this thread: busy now means "let the writer do it".
        let prepared = conn.busy_timeout(Duration::ZERO).and_then(|()| {
            if relaxed {
                conn.pragma_update(None, "synchronous", Synchronous::Normal.pragma())
            } else {
                Ok(())
            }
        });
        let written = prepared.ok().and_then(|()| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .ok()?;
            let mut rows = 0;
            for (id, value) in docs {
                rows += put(&tx, &self.namespace, &self.entity, id, value, mode).ok()?;
            }
            tx.commit().ok()?;
            Some(rows)
        });
        // Restoring can only fail if the connection is unusable; the writer then reports it.
        let _ = conn.busy_timeout(BUSY_TIMEOUT);
        if relaxed {
            let _ = conn.pragma_update(None, "synchronous", db.synchronous.pragma());
        }
        let rows = written?;
        count(&db.counters, &[vec![rows]]);
        Some(Response::Written(rows))
    }

    fn batch(&self, ops: Vec<WriteOp>, durable: bool) -> WriteBatch {
        WriteBatch {
            namespace: Arc::clone(&self.namespace),
            entity: Arc::clone(&self.entity),
            ops,
            durable,
        }
    }

    /// A read request against an open database, on the calling thread; `None` when `place` is
    /// in place and answering would wait (no idle connection, or a lock).
    fn read(&self, db: &Database, request: &Request, place: Place) -> Result<Option<Response>> {
        let (ns, entity) = (&*self.namespace, &*self.entity);
        match request {
            Request::Read {
                ids,
                stop_at_missing,
                heal,
            } => {
                let found = db.with_reader(place, |conn| {
                    let mut found = Vec::with_capacity(ids.len());
                    for id in ids {
                        let value = read_query(conn, ns, entity, id)?;
                        let missing = value.is_none();
                        found.push(value);
                        if missing && *stop_at_missing {
                            break;
                        }
                    }
                    Ok(found)
                })?;
                let Some(found) = found else {
                    return Ok(None);
                };
                let docs = found
                    .into_iter()
                    .zip(ids)
                    .map(|(value, id)| match value {
                        None => Doc::Missing,
                        Some(bytes) if *heal && !is_valid_json(&bytes) => {
                            self.quarantine(db, id, bytes);
                            Doc::Corrupt {
                                id: id.clone(),
                                detail: format!(
                                    "{} is not JSON; moved aside to table quarantine",
                                    self.location(id)
                                ),
                            }
                        }
                        // Invalid UTF-8 decodes as Node decodes files: U+FFFD, not an error.
                        Some(bytes) => Doc::Text(String::from_utf8_lossy(&bytes).into_owned()),
                    })
                    .collect();
                Ok(Some(Response::Docs(docs)))
            }
            Request::Has { ids } => db
                .with_reader(place, |conn| {
                    ids.iter()
                        .map(|id| has_query(conn, ns, entity, id))
                        .collect()
                })
                .map(|flags| flags.map(Response::Flags)),
            Request::Keys => db
                .with_reader(place, |conn| {
                    entity_rows(conn, "id", ns, entity, |row| row.get(0))
                })
                .map(|keys| keys.map(Response::Keys)),
            Request::Scan => db
                .with_reader(place, |conn| {
                    entity_rows(conn, "id, value", ns, entity, |row| {
                        let value = row.get_ref(1)?.as_bytes()?;
                        Ok((row.get(0)?, String::from_utf8_lossy(value).into_owned()))
                    })
                })
                .map(|entries| entries.map(Response::Entries)),
            other => Err(PersistError::Task(format!("not a read request: {other:?}"))),
        }
    }

    /// `read` off the JS thread, where it may wait and so always answers.
    fn read_on_worker(&self, db: &Database, request: &Request) -> Result<Response> {
        self.read(db, request, Place::Worker)?
            .ok_or_else(|| PersistError::Task("no read connection was available".into()))
    }

    /// Move a row that is not JSON to `quarantine`, unless a writer replaced it meanwhile.
    /// Queued behind earlier writes and ahead of later ones, so a rewrite after this read wins.
    fn quarantine(&self, db: &Database, id: &str, value: Vec<u8>) {
        let op = WriteOp::Quarantine {
            id: id.to_owned(),
            value,
        };
        db.send(self.batch(vec![op], true), Box::new(drop));
    }

    async fn init(&self, validate: bool) -> Result<Response> {
        let db = self.database().await?;
        if !validate {
            return Ok(Response::Init(InitReport::default()));
        }
        let (ns, entity) = (Arc::clone(&self.namespace), Arc::clone(&self.entity));
        let reader = Arc::clone(&db);
        let invalid = blocking(move || {
            reader.with_reader(Place::Worker, |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, value FROM entities WHERE namespace = ?1 AND entity = ?2",
                )?;
                let rows = stmt.query_map(params![&*ns, &*entity], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get_ref(1)?.as_bytes()?.to_vec(),
                    ))
                })?;
                let mut invalid = Vec::new();
                for row in rows {
                    let (id, value) = row?;
                    if !is_valid_json(&value) {
                        invalid.push((id, value));
                    }
                }
                Ok(invalid)
            })
        })
        .await?;
        let mut report = InitReport::default();
        for (id, value) in invalid.unwrap_or_default() {
            let location = self.location(&id);
            let (sender, receiver) = oneshot::channel();
            db.send(
                self.batch(vec![WriteOp::Quarantine { id, value }], true),
                Box::new(move |result| drop(sender.send(result))),
            );
            let closed = || PersistError::Closed {
                path: self.config.path.clone(),
            };
            match receiver.await.map_err(|_| closed()).and_then(|r| r) {
                Ok(affected) if affected.iter().sum::<usize>() == 0 => {} // rewritten meanwhile
                Ok(_) => report
                    .removed_invalid
                    .push(format!("{location} (moved aside to table quarantine)")),
                Err(e) => report.failed_removals.push(format!("{location}: {e}")),
            }
        }
        Ok(Response::Init(report))
    }

    /// Let the writer finish queued writes, then release the database. A later operation on
    /// any store with this configuration opens it again.
    pub async fn close(config: &SqliteConfig) -> Result<()> {
        let Some(db) = registry().remove(config) else {
            return Ok(());
        };
        let (ack, done) = oneshot::channel();
        if db.commands.send(Command::Shutdown(ack)).is_ok() {
            let _ = done.await;
        }
        Ok(())
    }
}

impl Store for SqliteStore {
    fn scope(&self) -> &Arc<Scope> {
        &self.scope
    }

    fn submit(self: Arc<Self>, request: Request, reply: Reply) {
        match request {
            Request::Write { .. } | Request::Remove { .. } | Request::RemoveAll => {
                // Straight to the writer thread when the database is open: one hop fewer.
                if let Some(db) = registry().get(&self.config) {
                    return self.send_write(&db, request, reply);
                }
                spawn(async move {
                    match self.database().await {
                        Ok(db) => self.send_write(&db, request, reply),
                        Err(e) => reply(Err(e)),
                    }
                })
            }
            Request::Init { validate } => spawn(async move { reply(self.init(validate).await) }),
            Request::Read { ref ids, .. } | Request::Has { ref ids } if ids.len() <= INLINE_IDS => {
                spawn(async move {
                    let db = self.database().await;
                    reply(db.and_then(|db| self.read_on_worker(&db, &request)))
                })
            }
            _ => spawn(async move {
                let result = match self.database().await {
                    Ok(db) => blocking(move || self.read_on_worker(&db, &request)).await,
                    Err(e) => Err(e),
                };
                reply(result)
            }),
        }
    }

    /// A primary-key lookup from SQLite's page cache takes microseconds and, in WAL mode, never
    /// waits for a writer, so it costs less in place than a hop to another thread (as with
    /// better-sqlite3). Only once the database is open: opening may wait for locks.
    ///
    /// Cache writes (not durable) likewise commit in place, without a sync, when the writer is
    /// idle and no one holds the write lock; otherwise the writer thread takes them. A thread
    /// hop both ways costs more than such a transaction.
    fn in_place(&self, request: &Request) -> Option<Result<Response>> {
        if !self.sync_reads {
            return None;
        }
        match request {
            Request::Read { .. } | Request::Has { .. } => {
                let db = registry().get(&self.config)?;
                self.read(&db, request, Place::InPlace).transpose()
            }
            Request::Write {
                docs,
                mode,
                durable: false,
            } if docs.len() <= MAX_IN_PLACE_DOCS => {
                let db = registry().get(&self.config)?;
                self.write_in_place(&db, docs, *mode).map(Ok)
            }
            _ => None,
        }
    }
}

/// `columns` of every row of the entity, each made into a `T` by `row_to`.
fn entity_rows<T>(
    conn: &Connection,
    columns: &str,
    ns: &str,
    entity: &str,
    row_to: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let sql = format!("SELECT {columns} FROM entities WHERE namespace = ?1 AND entity = ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![ns, entity], row_to)?;
    rows.collect()
}

fn read_query(
    conn: &Connection,
    ns: &str,
    entity: &str,
    id: &str,
) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached(
        "SELECT value FROM entities WHERE namespace = ?1 AND entity = ?2 AND id = ?3",
    )?
    .query_row(params![ns, entity, id], |row| {
        Ok(row.get_ref(0)?.as_bytes()?.to_vec())
    })
    .optional()
}

fn has_query(conn: &Connection, ns: &str, entity: &str, id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM entities WHERE namespace = ?1 AND entity = ?2 AND id = ?3")?
        .exists(params![ns, entity, id])
}

struct Registry {
    open: Mutex<HashMap<SqliteConfig, Arc<Database>>>,
    /// Bumped by every close, so that an open that was in flight is not kept.
    closes: AtomicU64,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        open: Mutex::new(HashMap::new()),
        closes: AtomicU64::new(0),
    })
}

impl Registry {
    fn get(&self, config: &SqliteConfig) -> Option<Arc<Database>> {
        lock(&self.open).get(config).cloned()
    }

    /// Opens outside the lock, so a database waiting for another process's lock never delays
    /// the others. Two first users may both open; the second copy is dropped (its writer exits).
    /// An open that a `close()` overtook serves only the operation that made it.
    fn get_or_open(&self, config: &SqliteConfig) -> Result<Arc<Database>> {
        // Before the lookup: a close between the two must count as overtaking this open.
        let closes = self.closes.load(Ordering::Acquire);
        if let Some(db) = self.get(config) {
            return Ok(db);
        }
        let db = Arc::new(Database::open(config)?);
        let mut open = lock(&self.open);
        if self.closes.load(Ordering::Acquire) != closes {
            return Ok(db);
        }
        Ok(Arc::clone(open.entry(config.clone()).or_insert(db)))
    }

    fn remove(&self, config: &SqliteConfig) -> Option<Arc<Database>> {
        let mut open = lock(&self.open);
        self.closes.fetch_add(1, Ordering::AcqRel);
        open.remove(config)
    }
}

enum WriteOp {
    Put {
        id: String,
        value: String,
        mode: WriteMode,
    },
    Delete {
        id: String,
    },
    DeleteAll,
    /// A row that is not JSON, moved to `quarantine` unless a writer replaced it meanwhile.
    Quarantine {
        id: String,
        value: Vec<u8>,
    },
}

/// One request's writes to one entity, committed in one transaction (with others queued).
struct WriteBatch {
    namespace: Arc<str>,
    entity: Arc<str>,
    ops: Vec<WriteOp>,
    durable: bool,
}

/// Rows affected per op, sent once the transaction holding the batch committed.
type WriteReply = Box<dyn FnOnce(Result<Vec<usize>>) + Send>;

struct WriteRequest {
    batch: WriteBatch,
    reply: WriteReply,
}

enum Command {
    Write(WriteRequest),
    Shutdown(oneshot::Sender<()>),
}

#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    commits: AtomicU64,
}

pub struct Database {
    path: PathBuf,
    synchronous: Synchronous,
    commands: mpsc::Sender<Command>,
    /// The write connection: the writer thread holds it while committing a group; the calling
    /// thread may borrow it, when free, for a cache write (`SqliteStore::write_in_place`).
    /// `None` once the writer has shut down.
    writer: Arc<Mutex<Option<Connection>>>,
    idle_readers: Mutex<Vec<Connection>>,
    counters: Arc<Counters>,
}

impl Database {
    fn open(config: &SqliteConfig) -> Result<Self> {
        let path = &config.path;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| PersistError::io("cannot create directory", parent, e))?;
        }
        let mut writer = open_connection(path).map_err(|e| explain_open_failure(path, e))?;
        prepare_schema(&mut writer, path, config.synchronous)?;
        let (commands, queue) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let writer = Arc::new(Mutex::new(Some(writer)));
        let thread_writer = Arc::clone(&writer);
        let thread_counters = Arc::clone(&counters);
        let thread_path = path.clone();
        let synchronous = config.synchronous;
        thread::Builder::new()
            .name("bkrs-sqlite-writer".into())
            .spawn(move || {
                run_writer(
                    &thread_writer,
                    &thread_path,
                    synchronous,
                    queue,
                    &thread_counters,
                )
            })
            .map_err(|e| PersistError::io("cannot start the writer thread for", path, e))?;
        // One read connection ready, so reads can run in place from the start.
        let reader = open_connection(path)?;
        Ok(Database {
            path: path.clone(),
            synchronous,
            commands,
            writer,
            idle_readers: Mutex::new(vec![reader]),
            counters,
        })
    }

    /// Run `query` on a pooled read connection. In place, `None` instead of waiting: when no
    /// connection is idle (opening one may wait for another process's lock) or a lock is held.
    fn with_reader<T>(
        &self,
        place: Place,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        let pooled = lock(&self.idle_readers).pop();
        let conn = match (pooled, place) {
            (Some(conn), _) => conn,
            (None, Place::InPlace) => return Ok(None),
            (None, Place::Worker) => open_connection(&self.path)?,
        };
        let in_place = place == Place::InPlace;
        let result = if in_place && conn.busy_timeout(Duration::ZERO).is_err() {
            None
        } else {
            let result = query(&conn);
            if in_place {
                let _ = conn.busy_timeout(BUSY_TIMEOUT);
            }
            Some(result)
        };
        let mut idle = lock(&self.idle_readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        drop(idle);
        match result {
            None => Ok(None),
            Some(Err(e)) if in_place && is_busy(&e) => Ok(None),
            Some(result) => result
                .map(Some)
                .map_err(|e| PersistError::database(&self.path, e)),
        }
    }

    /// Queue `batch` for the writer; `reply` runs on the writer thread after its commit.
    fn send(&self, batch: WriteBatch, reply: WriteReply) {
        let request = WriteRequest { batch, reply };
        if let Err(mpsc::SendError(Command::Write(request))) =
            self.commands.send(Command::Write(request))
        {
            (request.reply)(Err(PersistError::Closed {
                path: self.path.clone(),
            }));
        }
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            writes: self.counters.writes.load(Ordering::Relaxed),
            commits: self.counters.commits.load(Ordering::Relaxed),
        }
    }
}

fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| PersistError::database(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| PersistError::database(path, e))?;
    Ok(conn)
}

/// WAL, the synchronous level, and the versioned schema (created or migrated). Fails (never
/// recreates) when the file is not a SQLite database, is corrupt, or has a newer schema.
fn prepare_schema(conn: &mut Connection, path: &Path, synchronous: Synchronous) -> Result<()> {
    let db_err = |e| PersistError::database(path, e);
    let mode: String = retry_busy(|| conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)))
        .map_err(db_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(PersistError::database(
            path,
            rusqlite::Error::InvalidParameterName(format!("journal_mode is {mode}, WAL expected")),
        ));
    }
    conn.pragma_update(None, "synchronous", synchronous.pragma())
        .map_err(db_err)?;
    // macOS's fsync leaves data in the drive's cache; only F_FULLFSYNC reaches the disk.
    if cfg!(target_os = "macos") && synchronous == Synchronous::Full {
        conn.pragma_update(None, "fullfsync", "ON")
            .map_err(db_err)?;
        conn.pragma_update(None, "checkpoint_fullfsync", "ON")
            .map_err(db_err)?;
    }
    // Only a new or older database needs the write lock; a current one is checked with a read.
    let current: i64 =
        retry_busy(|| conn.query_row("PRAGMA user_version", [], |r| r.get(0))).map_err(db_err)?;
    let found = if current >= SCHEMA_VERSION {
        current
    } else {
        retry_busy(|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version < SCHEMA_VERSION {
                tx.execute_batch(
                    "CREATE TABLE IF NOT EXISTS entities (
                        namespace TEXT NOT NULL,
                        entity TEXT NOT NULL,
                        id TEXT NOT NULL,
                        value TEXT NOT NULL,
                        PRIMARY KEY (namespace, entity, id)
                    ) WITHOUT ROWID;
                    CREATE TABLE IF NOT EXISTS quarantine (
                        namespace TEXT NOT NULL,
                        entity TEXT NOT NULL,
                        id TEXT NOT NULL,
                        value BLOB NOT NULL,
                        moved_at_ms INTEGER NOT NULL
                    );
                    PRAGMA user_version = 2;",
                )?;
            }
            tx.commit()?;
            Ok(version)
        })
        .map_err(db_err)?
    };
    if found > SCHEMA_VERSION {
        return Err(PersistError::SchemaTooNew {
            location: path.display().to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// SQLite says only "unable to open database file"; when the location cannot be written, say
/// why with the operating system's error (read-only file system, permission denied). The probe
/// opens an existing file for writing without changing it, or creates and removes a file of
/// its own next to it.
fn explain_open_failure(path: &Path, err: PersistError) -> PersistError {
    let cannot_open = matches!(
        &err,
        PersistError::Database {
            code: Some(ErrorCode::CannotOpen),
            ..
        }
    );
    if !cannot_open {
        return err;
    }
    let probe = if path.exists() {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map(drop)
    } else {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".probe-{}", std::process::id()));
        let probe = PathBuf::from(name);
        std::fs::File::create_new(&probe).map(|file| {
            drop(file);
            let _ = std::fs::remove_file(&probe);
        })
    };
    match probe {
        Err(io) => PersistError::io("cannot open database", path, io),
        Ok(()) => err,
    }
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Where a read runs: in place it must not wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    InPlace,
    Worker,
}

/// SQLite's busy handler already waits `BUSY_TIMEOUT`; beyond that, keep trying while another
/// process holds the write lock, so contention never surfaces as `SQLITE_BUSY`.
fn retry_busy<T>(mut attempt: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let started = Instant::now();
    loop {
        match attempt() {
            Err(e) if is_busy(&e) && started.elapsed() < BUSY_GIVE_UP => {
                thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn run_writer(
    writer: &Mutex<Option<Connection>>,
    path: &Path,
    synchronous: Synchronous,
    queue: mpsc::Receiver<Command>,
    counters: &Counters,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = Vec::new();
        let mut shutdown = None;
        match first {
            Command::Write(request) => batch.push(request),
            Command::Shutdown(ack) => shutdown = Some(ack),
        }
        while shutdown.is_none() && batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(Command::Write(request)) => batch.push(request),
                Ok(Command::Shutdown(ack)) => shutdown = Some(ack),
                Err(_) => break,
            }
        }
        let mut guard = lock(writer);
        let Some(conn) = guard.as_mut() else { return };
        // Consecutive requests of one durability share a transaction; order is kept.
        while !batch.is_empty() {
            let durable = batch[0].batch.durable;
            let run = batch
                .iter()
                .take_while(|r| r.batch.durable == durable)
                .count();
            let group: Vec<WriteRequest> = batch.drain(..run).collect();
            let relaxed = !durable && synchronous == Synchronous::Full;
            if relaxed {
                let _ = conn.pragma_update(None, "synchronous", Synchronous::Normal.pragma());
            }
            commit_group(conn, path, group, counters);
            if relaxed {
                let _ = conn.pragma_update(None, "synchronous", synchronous.pragma());
            }
        }
        if let Some(ack) = shutdown {
            *guard = None;
            drop(guard);
            let _ = ack.send(());
            // Writes that queue behind the shutdown do not happen: say so plainly, also to a
            // sender that still held this database when it was closed, until none is left.
            while let Ok(command) = queue.recv() {
                if let Command::Write(request) = command {
                    (request.reply)(Err(PersistError::Closed {
                        path: path.to_path_buf(),
                    }));
                }
            }
            return;
        }
    }
}

/// One transaction for the whole group. If it fails, each request is retried alone so that one
/// failing write cannot fail the others.
fn commit_group(conn: &mut Connection, path: &Path, group: Vec<WriteRequest>, counters: &Counters) {
    let batches: Vec<&WriteBatch> = group.iter().map(|r| &r.batch).collect();
    match apply(conn, &batches) {
        Ok(affected) => {
            count(counters, &affected);
            for (request, rows) in group.into_iter().zip(affected) {
                (request.reply)(Ok(rows));
            }
        }
        Err(e) if group.len() == 1 => {
            if let Some(request) = group.into_iter().next() {
                (request.reply)(Err(PersistError::database(path, e)));
            }
        }
        Err(e) if affects_every_write(&e) => {
            // Busy beyond the retry budget, I/O, disk full: retrying each write alone would only
            // repeat the wait per write. Fail them all with the same cause.
            let error = PersistError::database(path, e);
            for request in group {
                (request.reply)(Err(error.clone()));
            }
        }
        Err(_) => {
            for request in group {
                let result = apply(conn, &[&request.batch]);
                if let Ok(affected) = &result {
                    count(counters, affected);
                }
                (request.reply)(
                    result
                        .map(|mut rows| rows.pop().unwrap_or_default())
                        .map_err(|e| PersistError::database(path, e)),
                );
            }
        }
    }
}

/// A transaction counts as a commit when it changed a row.
fn count(counters: &Counters, affected: &[Vec<usize>]) {
    let rows: usize = affected.iter().flatten().sum();
    if rows > 0 {
        counters.commits.fetch_add(1, Ordering::Relaxed);
        counters.writes.fetch_add(rows as u64, Ordering::Relaxed);
    }
}

fn affects_every_write(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::CannotOpen
                | ErrorCode::NotADatabase
                | ErrorCode::DatabaseCorrupt
        )
    )
}

fn apply(conn: &mut Connection, batches: &[&WriteBatch]) -> rusqlite::Result<Vec<Vec<usize>>> {
    retry_busy(|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut affected = Vec::with_capacity(batches.len());
        for batch in batches {
            let rows = batch
                .ops
                .iter()
                .map(|op| execute(&tx, &batch.namespace, &batch.entity, op))
                .collect::<rusqlite::Result<Vec<usize>>>()?;
            affected.push(rows);
        }
        tx.commit()?;
        Ok(affected)
    })
}

fn execute(conn: &Connection, ns: &str, entity: &str, op: &WriteOp) -> rusqlite::Result<usize> {
    match op {
        WriteOp::Put { id, value, mode } => put(conn, ns, entity, id, value, *mode),
        WriteOp::Delete { id } => conn
            .prepare_cached(
                "DELETE FROM entities WHERE namespace = ?1 AND entity = ?2 AND id = ?3",
            )?
            .execute(params![ns, entity, id]),
        WriteOp::DeleteAll => conn
            .prepare_cached("DELETE FROM entities WHERE namespace = ?1 AND entity = ?2")?
            .execute(params![ns, entity]),
        WriteOp::Quarantine { id, value } => {
            let moved_at = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or_default();
            let moved = conn
                .prepare_cached(
                    "INSERT INTO quarantine (namespace, entity, id, value, moved_at_ms)
                     SELECT namespace, entity, id, CAST(value AS BLOB), ?5 FROM entities
                     WHERE namespace = ?1 AND entity = ?2 AND id = ?3 AND CAST(value AS BLOB) = ?4",
                )?
                .execute(params![ns, entity, id, value, moved_at])?;
            if moved == 0 {
                return Ok(0);
            }
            conn.prepare_cached(
                "DELETE FROM entities
                 WHERE namespace = ?1 AND entity = ?2 AND id = ?3 AND CAST(value AS BLOB) = ?4",
            )?
            .execute(params![ns, entity, id, value])
        }
    }
}

/// Store one document according to `mode`; the rows it changed (0 or 1).
fn put(
    conn: &Connection,
    ns: &str,
    entity: &str,
    id: &str,
    value: &str,
    mode: WriteMode,
) -> rusqlite::Result<usize> {
    let sql = match mode {
        WriteMode::Replace => {
            "INSERT INTO entities (namespace, entity, id, value) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (namespace, entity, id) DO UPDATE SET value = excluded.value"
        }
        WriteMode::ReplaceChanged => {
            "INSERT INTO entities (namespace, entity, id, value) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (namespace, entity, id) DO UPDATE SET value = excluded.value
             WHERE CAST(value AS BLOB) IS NOT CAST(excluded.value AS BLOB)"
        }
        WriteMode::InsertOnly => {
            "INSERT INTO entities (namespace, entity, id, value) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (namespace, entity, id) DO NOTHING"
        }
    };
    conn.prepare_cached(sql)?
        .execute(params![ns, entity, id, value])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::conformance;
    use crate::contract::testutil::{rt, Client, TempDir};

    fn open(cfg: &SqliteConfig, base: &str, entity: &str) -> Client {
        Client(Arc::new(
            SqliteStore::new(cfg.clone(), true, base, entity).expect("store"),
        ))
    }

    fn stats(cfg: &SqliteConfig) -> StoreStats {
        registry().get(cfg).expect("open").stats()
    }

    fn config(dir: &TempDir) -> SqliteConfig {
        SqliteConfig {
            path: dir.0.join("db").join("test.sqlite"),
            synchronous: Synchronous::Full,
        }
    }

    #[test]
    fn keeps_the_store_contract() {
        let dir = TempDir::new("sqlite-conformance");
        let cfg = config(&dir);
        rt().block_on(async {
            conformance::check(|base, entity| open(&cfg, base, entity)).await;
            SqliteStore::close(&cfg).await.expect("close");
        });
    }

    #[test]
    fn concurrent_writes_share_transactions() {
        let dir = TempDir::new("sqlite-group");
        let cfg = config(&dir);
        rt().block_on(async {
            let store = Arc::new(open(&cfg, "ns", "e"));
            store.init(true).await.expect("init");
            let before = stats(&cfg);
            let writes = (0..256)
                .map(|i| {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move {
                        // Distinct ids: writes of one id would wait for each other (issue order).
                        store.write(&format!("k{i}"), &format!("{i}")).await
                    })
                })
                .collect::<Vec<_>>();
            for w in writes {
                w.await.expect("join").expect("write");
            }
            let after = stats(&cfg);
            assert_eq!(after.writes - before.writes, 256);
            assert!(after.commits - before.commits < 256, "{before:?} {after:?}");
            assert_eq!(store.keys().await.expect("keys").len(), 256);
            SqliteStore::close(&cfg).await.expect("close");
        });
    }

    #[test]
    fn refuses_a_file_that_is_not_a_database_and_keeps_it() {
        let dir = TempDir::new("sqlite-notadb");
        let cfg = config(&dir);
        let parent = cfg.path.parent().expect("parent");
        std::fs::create_dir_all(parent).expect("mkdir");
        let garbage = "this is not a database, and it is the user's file".repeat(100);
        std::fs::write(&cfg.path, &garbage).expect("write garbage");
        rt().block_on(async {
            let store = open(&cfg, "ns", "e");
            let err = store.init(true).await.expect_err("must refuse");
            assert_eq!(err.code(), "PERSIST_CORRUPT");
            assert!(err.to_string().contains(&cfg.path.display().to_string()));
        });
        assert_eq!(std::fs::read_to_string(&cfg.path).expect("kept"), garbage);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = TempDir::new("sqlite-schema");
        let cfg = config(&dir);
        std::fs::create_dir_all(cfg.path.parent().expect("parent")).expect("mkdir");
        let conn = Connection::open(&cfg.path).expect("open");
        conn.execute_batch("PRAGMA user_version = 99")
            .expect("version");
        drop(conn);
        rt().block_on(async {
            let store = open(&cfg, "ns", "e");
            let err = store.init(true).await.expect_err("must refuse");
            assert_eq!(err.code(), "PERSIST_SCHEMA");
        });
    }

    #[test]
    fn init_names_where_a_row_that_is_not_json_went() {
        let dir = TempDir::new("sqlite-heal");
        let cfg = config(&dir);
        rt().block_on(async {
            let store = open(&cfg, "ns", "e");
            store.init(true).await.expect("init");
            store.write("bad", "{\"torn\":").await.expect("write");
            let report = store.init(true).await.expect("init");
            assert!(report.removed_invalid[0].contains("id=bad (moved aside to table quarantine)"));
            SqliteStore::close(&cfg).await.expect("close");
        });
    }
}
