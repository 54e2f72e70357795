//! The napi binding: one class over `AnyStore`. Each method converts arguments, awaits the
//! core and maps errors; JSON encoding, id normalisation, key ordering and `err.code` live
//! in the hand-written `index.js` facade.

mod queue;

use std::sync::Arc;

use napi::bindgen_prelude::{spawn, spawn_blocking};
use napi::{Error, Status};
use napi_derive::napi;

pub use queue::CompletionQueue;
use queue::{Outcome, Pending, QueueInner};

use crate::error::{Op, PersistError};
use std::time::Duration;

use crate::store::file::run_on_write_threads;
use crate::store::{
    AnyStore, FileStore, InitReport, PersistStore, RedisConfig, RedisStore, SqliteConfig,
    SqliteStore, Synchronous,
};

/// Errors cross as `"CODE: message"`; napi cannot attach a custom `code` to an async
/// rejection (napi-rs#1632), so the facade splits the prefix into `err.code`.
fn js_error(err: PersistError, op: Op, entity: &str, id: Option<&str>) -> Error {
    Error::new(Status::GenericFailure, coded_message(err, op, entity, id))
}

fn coded_message(err: PersistError, op: Op, entity: &str, id: Option<&str>) -> String {
    format!("{}: {}", err.code(), err.describe(op, entity, id))
}

#[napi(object)]
pub struct NativeInitReport {
    pub removed_stale_tmp: Vec<String>,
    pub removed_invalid: Vec<String>,
    pub failed_removals: Vec<String>,
}

impl From<InitReport> for NativeInitReport {
    fn from(r: InitReport) -> Self {
        NativeInitReport {
            removed_stale_tmp: r.removed_stale_tmp,
            removed_invalid: r.removed_invalid,
            failed_removals: r.failed_removals,
        }
    }
}

#[napi]
pub struct NativeStore {
    store: Arc<AnyStore>,
    entity: Arc<str>,
    queue: Arc<QueueInner>,
}

impl NativeStore {
    fn wrap(store: AnyStore, entity_name: String, queue: &CompletionQueue) -> Self {
        NativeStore {
            store: Arc::new(store),
            entity: entity_name.into(),
            queue: Arc::clone(&queue.inner),
        }
    }

    /// Run `work` on the runtime and post its outcome to the completion queue as `request`.
    fn submit<F>(&self, request: u32, work: impl FnOnce(Arc<AnyStore>, Arc<str>) -> F)
    where
        F: std::future::Future<Output = Outcome> + Send + 'static,
    {
        let future = work(Arc::clone(&self.store), Arc::clone(&self.entity));
        let pending = Pending::new(Arc::clone(&self.queue), request);
        spawn(async move { pending.settle(future.await) });
    }
}

#[napi]
impl NativeStore {
    /// A `FileStore` for `{baseDir}/{entityName}`; validates the name, touches no file.
    #[napi(factory)]
    pub fn file(
        entity_name: String,
        base_dir: String,
        queue: &CompletionQueue,
    ) -> napi::Result<Self> {
        let store = FileStore::new(&base_dir, &entity_name)
            .map_err(|e| js_error(e, Op::Init, &entity_name, None))?;
        Ok(Self::wrap(AnyStore::File(store), entity_name, queue))
    }

    /// A `SqliteStore` in the shared database at `databasePath`; opens nothing yet.
    #[napi(factory)]
    pub fn sqlite(
        entity_name: String,
        base_dir: String,
        database_path: String,
        synchronous: String,
        queue: &CompletionQueue,
    ) -> napi::Result<Self> {
        let config = sqlite_config(database_path, &synchronous)?;
        let store = SqliteStore::new(config, &base_dir, &entity_name)
            .map_err(|e| js_error(e, Op::Init, &entity_name, None))?;
        Ok(Self::wrap(AnyStore::Sqlite(store), entity_name, queue))
    }

    /// A `RedisStore` on the shared connection for `options`; connects on first use.
    #[napi(factory)]
    pub fn redis(
        entity_name: String,
        base_dir: String,
        options: NativeRedisOptions,
        queue: &CompletionQueue,
    ) -> napi::Result<Self> {
        let prefix = options.prefix.clone();
        let store = RedisStore::new(redis_config(options), &prefix, &base_dir, &entity_name)
            .map_err(|e| js_error(e, Op::Init, &entity_name, None))?;
        Ok(Self::wrap(AnyStore::Redis(store), entity_name, queue))
    }

    /// `read`, settled through the completion queue as `request`.
    #[napi]
    pub fn submit_read(&self, request: u32, id: String) {
        self.submit(request, |store, entity| async move {
            match store.read(&id).await {
                Ok(Some(text)) => Outcome::Text(text),
                Ok(None) => Outcome::Null,
                Err(e) => Outcome::Error(coded_message(e, Op::Read, &entity, Some(&id))),
            }
        });
    }

    /// `has`, settled through the completion queue as `request`.
    #[napi]
    pub fn submit_has(&self, request: u32, id: String) {
        self.submit(request, |store, entity| async move {
            match store.has(&id).await {
                Ok(found) => Outcome::Bool(found),
                Err(e) => Outcome::Error(coded_message(e, Op::Has, &entity, Some(&id))),
            }
        });
    }

    /// `write`, settled through the completion queue as `request`. File and SQLite writes go
    /// straight to the thread that does the work (a blocking-pool thread, the database's writer
    /// thread) and report from there: two thread hops per write instead of four.
    #[napi]
    pub fn submit_write(&self, request: u32, id: String, json: String) {
        let pending = Pending::new(Arc::clone(&self.queue), request);
        let entity = Arc::clone(&self.entity);
        let settle = move |result: Result<(), PersistError>, id: &str| {
            pending.settle(match result {
                Ok(()) => Outcome::Null,
                Err(e) => Outcome::Error(coded_message(e, Op::Write, &entity, Some(id))),
            })
        };
        match &*self.store {
            AnyStore::File(store) => {
                let store = store.clone();
                let job: Box<dyn FnOnce() + Send> =
                    Box::new(move || settle(store.write_blocking(&id, &json), &id));
                // Should no write thread start, the blocking pool still does the job.
                if let Err(job) = run_on_write_threads(job) {
                    spawn_blocking(job);
                }
                return;
            }
            AnyStore::Sqlite(store) => {
                if let Some(db) = store.database_if_open() {
                    let key = id.clone();
                    store.write_to(&db, &key, json, move |result| settle(result, &id));
                    return;
                }
            }
            AnyStore::Redis(_) => {}
        }
        // Redis, or a SQLite database not open yet (opening may wait for another process's
        // lock, so never on the JS thread): the async path.
        let store = Arc::clone(&self.store);
        spawn(async move { settle(store.write(&id, json).await, &id) });
    }

    #[napi(catch_unwind)]
    pub async fn init(&self) -> napi::Result<NativeInitReport> {
        self.store
            .init()
            .await
            .map(NativeInitReport::from)
            .map_err(|e| js_error(e, Op::Init, &self.entity, None))
    }

    /// `read` on the calling thread, for SQLite (see `SqliteStore::read_blocking`); rejects with
    /// PERSIST_NOT_OPEN when the database is not open, and the facade then uses `submitRead`.
    #[napi]
    pub fn read_sync(&self, id: String) -> napi::Result<Option<String>> {
        match &*self.store {
            AnyStore::Sqlite(store) => store.read_blocking(&id),
            _ => {
                return Err(Error::new(
                    Status::InvalidArg,
                    "readSync serves SQLite stores only",
                ))
            }
        }
        .map_err(|e| js_error(e, Op::Read, &self.entity, Some(&id)))
    }

    /// `has` on the calling thread, for SQLite.
    #[napi]
    pub fn has_sync(&self, id: String) -> napi::Result<bool> {
        match &*self.store {
            AnyStore::Sqlite(store) => store.has_blocking(&id),
            _ => {
                return Err(Error::new(
                    Status::InvalidArg,
                    "hasSync serves SQLite stores only",
                ))
            }
        }
        .map_err(|e| js_error(e, Op::Has, &self.entity, Some(&id)))
    }

    #[napi(catch_unwind)]
    pub async fn remove(&self, id: String) -> napi::Result<()> {
        self.store
            .remove(&id)
            .await
            .map_err(|e| js_error(e, Op::Remove, &self.entity, Some(&id)))
    }

    #[napi(catch_unwind)]
    pub async fn remove_all(&self) -> napi::Result<()> {
        self.store
            .remove_all()
            .await
            .map_err(|e| js_error(e, Op::RemoveAll, &self.entity, None))
    }

    #[napi(catch_unwind)]
    pub async fn keys(&self) -> napi::Result<Vec<String>> {
        self.store
            .keys()
            .await
            .map_err(|e| js_error(e, Op::Keys, &self.entity, None))
    }
}

fn sqlite_config(database_path: String, synchronous: &str) -> napi::Result<SqliteConfig> {
    let synchronous = Synchronous::parse(synchronous).ok_or_else(|| {
        Error::new(
            Status::InvalidArg,
            format!("synchronous must be \"FULL\" or \"NORMAL\", got {synchronous:?}"),
        )
    })?;
    Ok(SqliteConfig {
        path: database_path.into(),
        synchronous,
    })
}

#[napi(object)]
pub struct NativeSqliteStats {
    pub writes: i64,
    pub transactions: i64,
}

/// Group-commit counters of an open database; `null` when it is not open.
#[napi]
pub fn sqlite_stats(
    database_path: String,
    synchronous: String,
) -> napi::Result<Option<NativeSqliteStats>> {
    let config = sqlite_config(database_path, &synchronous)?;
    Ok(SqliteStore::stats(&config).map(|s| NativeSqliteStats {
        writes: i64::try_from(s.writes).unwrap_or(i64::MAX),
        transactions: i64::try_from(s.transactions).unwrap_or(i64::MAX),
    }))
}

/// Finish queued writes and release the database; later use opens it again.
#[napi(catch_unwind)]
pub async fn sqlite_close(database_path: String, synchronous: String) -> napi::Result<()> {
    let config = sqlite_config(database_path, &synchronous)?;
    SqliteStore::close(&config)
        .await
        .map_err(|e| js_error(e, Op::Init, "", None))
}

#[napi(object)]
pub struct NativeRedisOptions {
    pub url: String,
    pub prefix: String,
    pub connect_timeout_ms: u32,
    pub command_timeout_ms: u32,
    /// PEM certificate of a private CA for `rediss://`.
    pub ca: Option<String>,
}

fn redis_config(options: NativeRedisOptions) -> RedisConfig {
    RedisConfig {
        url: options.url,
        ca_pem: options.ca,
        connect_timeout: Duration::from_millis(options.connect_timeout_ms.into()),
        command_timeout: Duration::from_millis(options.command_timeout_ms.into()),
    }
}

/// Drop the shared connection for these options; later use connects again.
#[napi]
pub fn redis_close(options: NativeRedisOptions) {
    RedisStore::close(&redis_config(options));
}
