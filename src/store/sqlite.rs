//! `SqliteStore`: every entity of a process in one SQLite database, keyed by
//! (namespace from `baseDir`, entity name, id).
//!
//! One database per (path, synchronous level) is shared by every store in the process. Reads
//! use a small pool of connections and never wait for writes (WAL). Writes go to a single
//! writer thread that coalesces whatever is queued into one transaction (group commit): each
//! write's future resolves only after the transaction holding it committed, so with
//! `synchronous=FULL` an acknowledged write survives power loss while concurrent writers share
//! the fsync. Other processes may open the same file; SQLite's locks plus a busy timeout and
//! retries serialise the writers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::{entity_segments, namespace_of, validate_id, InitReport, PersistStore};
use crate::error::{PersistError, Result};
use crate::json::is_valid_json;

/// The schema this version writes; stored in `PRAGMA user_version` so a later format can migrate.
const SCHEMA_VERSION: i64 = 1;
/// How long one lock attempt waits inside SQLite before we retry.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a writer keeps retrying a busy database (another process holding the write lock).
const BUSY_GIVE_UP: Duration = Duration::from_secs(60);
/// Upper bound on writes per group-commit transaction, to bound latency of the first.
const MAX_BATCH: usize = 512;
/// Idle read connections kept per database.
const MAX_IDLE_READERS: usize = 8;

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

/// Counters of one open database, to observe group commit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SqliteStats {
    /// Write operations committed (puts and deletes).
    pub writes: u64,
    /// Transactions that committed them.
    pub transactions: u64,
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    config: Arc<SqliteConfig>,
    namespace: Arc<str>,
    entity: Arc<str>,
}

impl SqliteStore {
    /// No I/O: the database opens on first use.
    pub fn new(config: SqliteConfig, base_dir: &str, entity_name: &str) -> Result<Self> {
        // Same name rules as the file backend, so an entity name valid here is valid there.
        entity_segments(entity_name)?;
        Ok(SqliteStore {
            config: Arc::new(config),
            namespace: namespace_of(base_dir).into(),
            entity: entity_name.into(),
        })
    }

    async fn database(&self) -> Result<Arc<Database>> {
        if let Some(db) = self.database_if_open() {
            return Ok(db);
        }
        let config = Arc::clone(&self.config);
        blocking(move || registry().get_or_open(&config)).await
    }

    /// Scans that may touch many rows (init, keys) run on the blocking pool.
    async fn read_with<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection, &str, &str) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.database().await?;
        let (namespace, entity) = (Arc::clone(&self.namespace), Arc::clone(&self.entity));
        blocking(move || db.with_reader(|conn| query(conn, &namespace, &entity))).await
    }

    fn put_op(&self, id: &str, json: String) -> WriteOp {
        WriteOp::Put {
            namespace: self.namespace.to_string(),
            entity: self.entity.to_string(),
            id: id.to_owned(),
            value: json,
        }
    }

    /// The database if a store has opened it; `None` means an operation must take the async
    /// path, which opens it off the calling thread.
    pub fn database_if_open(&self) -> Option<Arc<Database>> {
        registry().get(&self.config)
    }

    /// `read` on the calling thread. A point lookup by primary key takes microseconds from
    /// SQLite's page cache and, in WAL mode, never waits for a writer's lock, which makes it
    /// cheaper to run in place than to hand to another thread (as better-sqlite3 does).
    /// `PersistError::NotOpen` when the database is not open yet: opening may wait for locks,
    /// so it never happens here.
    pub fn read_blocking(&self, id: &str) -> Result<Option<String>> {
        validate_id(id)?;
        let db = self.database_if_open().ok_or(PersistError::NotOpen)?;
        db.with_reader(|conn| read_query(conn, &self.namespace, &self.entity, id))
    }

    /// `write` into an open database without a future: `done` runs on the writer thread once
    /// the transaction holding the write committed (or the write failed).
    pub fn write_to(
        &self,
        db: &Database,
        id: &str,
        json: String,
        done: impl FnOnce(Result<()>) + Send + 'static,
    ) {
        if let Err(e) = validate_id(id) {
            return done(Err(e));
        }
        let request = WriteRequest {
            op: self.put_op(id, json),
            reply: Reply::Callback(Box::new(move |result| done(result.map(drop)))),
        };
        if let Err(mpsc::SendError(Command::Write(request))) =
            db.commands.send(Command::Write(request))
        {
            request.reply.send(Err(PersistError::Closed {
                path: db.path.clone(),
            }));
        }
    }

    /// `has` on the calling thread; see `read_blocking`.
    pub fn has_blocking(&self, id: &str) -> Result<bool> {
        validate_id(id)?;
        let db = self.database_if_open().ok_or(PersistError::NotOpen)?;
        db.with_reader(|conn| has_query(conn, &self.namespace, &self.entity, id))
    }

    async fn submit(&self, op: WriteOp) -> Result<usize> {
        let db = self.database().await?;
        db.submit(op).await
    }

    fn location(&self, id: &str) -> String {
        format!(
            "{} namespace={} entity={} id={id}",
            self.config.path.display(),
            self.namespace,
            self.entity
        )
    }

    /// Counters of this configuration's database, if it is open.
    pub fn stats(config: &SqliteConfig) -> Option<SqliteStats> {
        registry().get(config).map(|db| db.stats())
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

impl PersistStore for SqliteStore {
    async fn init(&self) -> Result<InitReport> {
        let rows = self
            .read_with(|conn, ns, entity| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, value FROM entities WHERE namespace = ?1 AND entity = ?2",
                )?;
                let rows = stmt.query_map(params![ns, entity], |row| {
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
            .await?;
        let mut report = InitReport::default();
        for (id, value) in rows {
            let location = self.location(&id);
            let op = WriteOp::DeleteIfUnchanged {
                namespace: self.namespace.to_string(),
                entity: self.entity.to_string(),
                id,
                value,
            };
            match self.submit(op).await {
                Ok(0) => {} // rewritten meanwhile: no longer the invalid row
                Ok(_) => report.removed_invalid.push(location),
                Err(e) => report.failed_removals.push(format!("{location}: {e}")),
            }
        }
        Ok(report)
    }

    async fn read(&self, id: &str) -> Result<Option<String>> {
        validate_id(id)?;
        let db = self.database().await?;
        // In place rather than on the blocking pool, for the reason given on `read_blocking`.
        db.with_reader(|conn| read_query(conn, &self.namespace, &self.entity, id))
    }

    async fn has(&self, id: &str) -> Result<bool> {
        validate_id(id)?;
        let db = self.database().await?;
        db.with_reader(|conn| has_query(conn, &self.namespace, &self.entity, id))
    }

    async fn write(&self, id: &str, json: String) -> Result<()> {
        validate_id(id)?;
        self.submit(self.put_op(id, json)).await.map(drop)
    }

    async fn remove(&self, id: &str) -> Result<()> {
        validate_id(id)?;
        let removed = self
            .submit(WriteOp::Delete {
                namespace: self.namespace.to_string(),
                entity: self.entity.to_string(),
                id: id.to_owned(),
            })
            .await?;
        if removed == 0 {
            return Err(PersistError::NotFound);
        }
        Ok(())
    }

    async fn remove_all(&self) -> Result<()> {
        self.submit(WriteOp::DeleteAll {
            namespace: self.namespace.to_string(),
            entity: self.entity.to_string(),
        })
        .await
        .map(drop)
    }

    async fn keys(&self) -> Result<Vec<String>> {
        self.read_with(|conn, ns, entity| {
            let mut stmt = conn
                .prepare_cached("SELECT id FROM entities WHERE namespace = ?1 AND entity = ?2")?;
            let ids = stmt.query_map(params![ns, entity], |row| row.get(0))?;
            ids.collect()
        })
        .await
    }
}

fn read_query(
    conn: &Connection,
    ns: &str,
    entity: &str,
    id: &str,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT value FROM entities WHERE namespace = ?1 AND entity = ?2 AND id = ?3",
    )?
    // Bytes, decoded as Node decodes files: invalid UTF-8 becomes U+FFFD, not an error.
    .query_row(params![ns, entity, id], |row| {
        Ok(String::from_utf8_lossy(row.get_ref(0)?.as_bytes()?).into_owned())
    })
    .optional()
}

fn has_query(conn: &Connection, ns: &str, entity: &str, id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM entities WHERE namespace = ?1 AND entity = ?2 AND id = ?3")?
        .exists(params![ns, entity, id])
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| PersistError::Task(e.to_string()))?
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves no broken invariant (a map or a pool).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Registry(Mutex<HashMap<SqliteConfig, Arc<Database>>>);

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry(Mutex::new(HashMap::new())))
}

impl Registry {
    fn get(&self, config: &SqliteConfig) -> Option<Arc<Database>> {
        lock(&self.0).get(config).cloned()
    }

    /// Opens outside the lock, so a database waiting for another process's lock never delays
    /// the others. Two first users may both open; the second copy is dropped (its writer exits).
    fn get_or_open(&self, config: &SqliteConfig) -> Result<Arc<Database>> {
        if let Some(db) = self.get(config) {
            return Ok(db);
        }
        let db = Arc::new(Database::open(config)?);
        let mut open = lock(&self.0);
        Ok(Arc::clone(open.entry(config.clone()).or_insert(db)))
    }

    fn remove(&self, config: &SqliteConfig) -> Option<Arc<Database>> {
        lock(&self.0).remove(config)
    }
}

enum WriteOp {
    Put {
        namespace: String,
        entity: String,
        id: String,
        value: String,
    },
    Delete {
        namespace: String,
        entity: String,
        id: String,
    },
    DeleteAll {
        namespace: String,
        entity: String,
    },
    /// Init's removal of an invalid row, skipped if a writer replaced it in the meantime.
    DeleteIfUnchanged {
        namespace: String,
        entity: String,
        id: String,
        value: Vec<u8>,
    },
}

struct WriteRequest {
    op: WriteOp,
    /// Rows affected, sent once the transaction holding this write committed.
    reply: Reply,
}

/// Where a write's outcome goes: an awaiting future, or a callback run on the writer thread
/// (one thread hop fewer for callers that are not on the async runtime).
enum Reply {
    Future(oneshot::Sender<Result<usize>>),
    Callback(Box<dyn FnOnce(Result<usize>) + Send>),
}

impl Reply {
    fn send(self, result: Result<usize>) {
        match self {
            // The waiting future may be gone (its caller dropped it); nothing to tell then.
            Reply::Future(sender) => drop(sender.send(result)),
            Reply::Callback(callback) => callback(result),
        }
    }
}

enum Command {
    Write(WriteRequest),
    Shutdown(oneshot::Sender<()>),
}

#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    transactions: AtomicU64,
}

pub struct Database {
    path: PathBuf,
    commands: mpsc::Sender<Command>,
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
        let mut writer = open_connection(path)?;
        prepare_schema(&mut writer, path, config.synchronous)?;
        let (commands, queue) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let thread_path = path.clone();
        thread::Builder::new()
            .name("bkrs-sqlite-writer".into())
            .spawn(move || run_writer(writer, &thread_path, queue, &thread_counters))
            .map_err(|e| PersistError::io("cannot start the writer thread for", path, e))?;
        Ok(Database {
            path: path.clone(),
            commands,
            idle_readers: Mutex::new(Vec::new()),
            counters,
        })
    }

    fn with_reader<T>(&self, query: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let pooled = lock(&self.idle_readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_connection(&self.path)?,
        };
        let result = query(&conn).map_err(|e| PersistError::database(&self.path, e));
        let mut idle = lock(&self.idle_readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    async fn submit(&self, op: WriteOp) -> Result<usize> {
        let closed = || PersistError::Closed {
            path: self.path.clone(),
        };
        let (reply, result) = oneshot::channel();
        self.commands
            .send(Command::Write(WriteRequest {
                op,
                reply: Reply::Future(reply),
            }))
            .map_err(|_| closed())?;
        result.await.map_err(|_| closed())?
    }

    fn stats(&self) -> SqliteStats {
        SqliteStats {
            writes: self.counters.writes.load(Ordering::Relaxed),
            transactions: self.counters.transactions.load(Ordering::Relaxed),
        }
    }
}

fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| PersistError::database(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| PersistError::database(path, e))?;
    Ok(conn)
}

/// WAL, the synchronous level, and the versioned schema. Fails (never recreates) when the
/// file is not a SQLite database or is corrupt.
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
    // Only a new database needs the write lock; an existing one is checked with a read.
    let current: i64 =
        retry_busy(|| conn.query_row("PRAGMA user_version", [], |r| r.get(0))).map_err(db_err)?;
    let found = if current != 0 {
        current
    } else {
        retry_busy(|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version == 0 {
                tx.execute_batch(
                    "CREATE TABLE IF NOT EXISTS entities (
                        namespace TEXT NOT NULL,
                        entity TEXT NOT NULL,
                        id TEXT NOT NULL,
                        value TEXT NOT NULL,
                        PRIMARY KEY (namespace, entity, id)
                    ) WITHOUT ROWID;
                    PRAGMA user_version = 1;",
                )?;
            }
            tx.commit()?;
            Ok(version)
        })
        .map_err(db_err)?
    };
    if found > SCHEMA_VERSION {
        return Err(PersistError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// SQLite's busy handler already waits `BUSY_TIMEOUT`; beyond that, keep trying while another
/// process holds the write lock, so contention never surfaces as `SQLITE_BUSY`.
fn retry_busy<T>(mut attempt: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let started = Instant::now();
    loop {
        match attempt() {
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && started.elapsed() < BUSY_GIVE_UP =>
            {
                thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn run_writer(
    mut conn: Connection,
    path: &Path,
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
        if !batch.is_empty() {
            commit_batch(&mut conn, path, batch, counters);
        }
        if let Some(ack) = shutdown {
            drop(conn);
            // Writes that queued behind the shutdown did not happen: say so plainly.
            while let Ok(command) = queue.try_recv() {
                if let Command::Write(request) = command {
                    request.reply.send(Err(PersistError::Closed {
                        path: path.to_path_buf(),
                    }));
                }
            }
            let _ = ack.send(());
            return;
        }
    }
}

/// One transaction for the whole batch. If it fails, each write is retried alone so that one
/// failing write cannot fail the others.
fn commit_batch(conn: &mut Connection, path: &Path, batch: Vec<WriteRequest>, counters: &Counters) {
    let ops: Vec<&WriteOp> = batch.iter().map(|r| &r.op).collect();
    match apply(conn, &ops) {
        Ok(affected) => {
            counters.transactions.fetch_add(1, Ordering::Relaxed);
            counters
                .writes
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            for (request, rows) in batch.into_iter().zip(affected) {
                request.reply.send(Ok(rows));
            }
        }
        Err(e) if batch.len() == 1 => {
            if let Some(request) = batch.into_iter().next() {
                request.reply.send(Err(PersistError::database(path, e)));
            }
        }
        Err(e) if affects_every_write(&e) => {
            // Busy beyond the retry budget, I/O, disk full: retrying each write alone would only
            // repeat the wait per write. Fail them all with the same cause.
            for request in batch {
                request
                    .reply
                    .send(Err(PersistError::database(path, copy_error(&e))));
            }
        }
        Err(_) => {
            for request in batch {
                let result = apply(conn, &[&request.op]);
                if result.is_ok() {
                    counters.transactions.fetch_add(1, Ordering::Relaxed);
                    counters.writes.fetch_add(1, Ordering::Relaxed);
                }
                request.reply.send(
                    result
                        .map(|rows| rows.first().copied().unwrap_or(0))
                        .map_err(|e| PersistError::database(path, e)),
                );
            }
        }
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

/// rusqlite errors are not Clone; a SQLite failure is fully described by its codes and message.
fn copy_error(err: &rusqlite::Error) -> rusqlite::Error {
    match err {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::InvalidParameterName(other.to_string()),
    }
}

fn apply(conn: &mut Connection, ops: &[&WriteOp]) -> rusqlite::Result<Vec<usize>> {
    retry_busy(|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut affected = Vec::with_capacity(ops.len());
        for op in ops {
            affected.push(execute(&tx, op)?);
        }
        tx.commit()?;
        Ok(affected)
    })
}

fn execute(conn: &Connection, op: &WriteOp) -> rusqlite::Result<usize> {
    match op {
        WriteOp::Put {
            namespace,
            entity,
            id,
            value,
        } => conn
            .prepare_cached(
                "INSERT INTO entities (namespace, entity, id, value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (namespace, entity, id) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![namespace, entity, id, value]),
        WriteOp::Delete {
            namespace,
            entity,
            id,
        } => conn
            .prepare_cached(
                "DELETE FROM entities WHERE namespace = ?1 AND entity = ?2 AND id = ?3",
            )?
            .execute(params![namespace, entity, id]),
        WriteOp::DeleteAll { namespace, entity } => conn
            .prepare_cached("DELETE FROM entities WHERE namespace = ?1 AND entity = ?2")?
            .execute(params![namespace, entity]),
        WriteOp::DeleteIfUnchanged {
            namespace,
            entity,
            id,
            value,
        } => conn
            .prepare_cached(
                "DELETE FROM entities
                 WHERE namespace = ?1 AND entity = ?2 AND id = ?3 AND CAST(value AS BLOB) = ?4",
            )?
            .execute(params![namespace, entity, id, value]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::{rt, TempDir};

    fn config(dir: &TempDir) -> SqliteConfig {
        SqliteConfig {
            path: dir.0.join("db").join("test.sqlite"),
            synchronous: Synchronous::Full,
        }
    }

    #[test]
    fn round_trip_and_namespaces() {
        let dir = TempDir::new("sqlite-rt");
        let cfg = config(&dir);
        rt().block_on(async {
            let signal =
                SqliteStore::new(cfg.clone(), "./dump/data/signal/", "BTC_s_e").expect("store");
            let same = SqliteStore::new(cfg.clone(), "dump/data/signal", "BTC_s_e").expect("store");
            let schedule =
                SqliteStore::new(cfg.clone(), "./dump/data/schedule/", "BTC_s_e").expect("store");
            signal.init().await.expect("init");
            schedule.init().await.expect("init");
            signal
                .write("BTC", "{\"p\":1}".into())
                .await
                .expect("write");
            schedule
                .write("BTC", "{\"s\":2}".into())
                .await
                .expect("write");
            assert_eq!(
                same.read("BTC").await.expect("read").as_deref(),
                Some("{\"p\":1}")
            );
            assert_eq!(
                schedule.read("BTC").await.expect("read").as_deref(),
                Some("{\"s\":2}")
            );
            assert!(signal.has("BTC").await.expect("has"));
            assert!(!signal.has("ETH").await.expect("has"));
            assert_eq!(signal.keys().await.expect("keys"), vec!["BTC".to_owned()]);
            signal.remove("BTC").await.expect("remove");
            assert!(matches!(
                signal.remove("BTC").await,
                Err(PersistError::NotFound)
            ));
            assert_eq!(schedule.keys().await.expect("keys"), vec!["BTC".to_owned()]);
            SqliteStore::close(&cfg).await.expect("close");
        });
    }

    #[test]
    fn concurrent_writes_share_transactions() {
        let dir = TempDir::new("sqlite-group");
        let cfg = config(&dir);
        rt().block_on(async {
            let store = SqliteStore::new(cfg.clone(), "ns", "e").expect("store");
            store.init().await.expect("init");
            let before = SqliteStore::stats(&cfg).expect("open");
            let writes = (0..256)
                .map(|i| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store.write(&format!("k{}", i % 64), format!("{i}")).await
                    })
                })
                .collect::<Vec<_>>();
            for w in writes {
                w.await.expect("join").expect("write");
            }
            let after = SqliteStore::stats(&cfg).expect("open");
            assert_eq!(after.writes - before.writes, 256);
            assert!(
                after.transactions - before.transactions < 256,
                "{before:?} {after:?}"
            );
            assert_eq!(store.keys().await.expect("keys").len(), 64);
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
            let store = SqliteStore::new(cfg.clone(), "ns", "e").expect("store");
            let err = store.init().await.expect_err("must refuse");
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
            let store = SqliteStore::new(cfg.clone(), "ns", "e").expect("store");
            let err = store.init().await.expect_err("must refuse");
            assert_eq!(err.code(), "PERSIST_SCHEMA");
        });
    }

    #[test]
    fn init_removes_rows_that_are_not_json() {
        let dir = TempDir::new("sqlite-heal");
        let cfg = config(&dir);
        rt().block_on(async {
            let store = SqliteStore::new(cfg.clone(), "ns", "e").expect("store");
            store.init().await.expect("init");
            store.write("good", "[1]".into()).await.expect("write");
            store
                .write("bad", "{\"torn\":".into())
                .await
                .expect("write");
            let report = store.init().await.expect("init");
            assert_eq!(report.removed_invalid.len(), 1);
            assert!(report.removed_invalid[0].ends_with("id=bad"));
            assert_eq!(store.keys().await.expect("keys"), vec!["good".to_owned()]);
            SqliteStore::close(&cfg).await.expect("close");
        });
    }
}
