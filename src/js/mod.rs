//! The napi binding: one class over `AnyStore`. Each method converts arguments, awaits the
//! core and maps errors; JSON encoding, id normalisation, key ordering and `err.code` live
//! in the hand-written `index.js` facade.

use std::sync::Arc;

use napi::{Error, Status};
use napi_derive::napi;

use crate::error::{Op, PersistError};
use std::time::Duration;

use crate::store::{
    AnyStore, FileStore, InitReport, PersistStore, RedisConfig, RedisStore, SqliteConfig,
    SqliteStore, Synchronous,
};

/// Errors cross as `"CODE: message"`; napi cannot attach a custom `code` to an async
/// rejection (napi-rs#1632), so the facade splits the prefix into `err.code`.
fn js_error(err: PersistError, op: Op, entity: &str, id: Option<&str>) -> Error {
    Error::new(
        Status::GenericFailure,
        format!("{}: {}", err.code(), err.describe(op, entity, id)),
    )
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
}

impl NativeStore {
    fn wrap(store: AnyStore, entity_name: String) -> Self {
        NativeStore {
            store: Arc::new(store),
            entity: entity_name.into(),
        }
    }
}

#[napi]
impl NativeStore {
    /// A `FileStore` for `{baseDir}/{entityName}`; validates the name, touches no file.
    #[napi(factory)]
    pub fn file(entity_name: String, base_dir: String) -> napi::Result<Self> {
        let store = FileStore::new(&base_dir, &entity_name)
            .map_err(|e| js_error(e, Op::Init, &entity_name, None))?;
        Ok(Self::wrap(AnyStore::File(store), entity_name))
    }

    /// A `SqliteStore` in the shared database at `databasePath`; opens nothing yet.
    #[napi(factory)]
    pub fn sqlite(
        entity_name: String,
        base_dir: String,
        database_path: String,
        synchronous: String,
    ) -> napi::Result<Self> {
        let config = sqlite_config(database_path, &synchronous)?;
        let store = SqliteStore::new(config, &base_dir, &entity_name)
            .map_err(|e| js_error(e, Op::Init, &entity_name, None))?;
        Ok(Self::wrap(AnyStore::Sqlite(store), entity_name))
    }

    /// A `RedisStore` on the shared connection for `options`; connects on first use.
    #[napi(factory)]
    pub fn redis(
        entity_name: String,
        base_dir: String,
        options: NativeRedisOptions,
    ) -> napi::Result<Self> {
        let prefix = options.prefix.clone();
        let store = RedisStore::new(redis_config(options), &prefix, &base_dir, &entity_name)
            .map_err(|e| js_error(e, Op::Init, &entity_name, None))?;
        Ok(Self::wrap(AnyStore::Redis(store), entity_name))
    }

    #[napi(catch_unwind)]
    pub async fn init(&self) -> napi::Result<NativeInitReport> {
        self.store
            .init()
            .await
            .map(NativeInitReport::from)
            .map_err(|e| js_error(e, Op::Init, &self.entity, None))
    }

    #[napi(catch_unwind)]
    pub async fn read(&self, id: String) -> napi::Result<Option<String>> {
        self.store
            .read(&id)
            .await
            .map_err(|e| js_error(e, Op::Read, &self.entity, Some(&id)))
    }

    #[napi(catch_unwind)]
    pub async fn has(&self, id: String) -> napi::Result<bool> {
        self.store
            .has(&id)
            .await
            .map_err(|e| js_error(e, Op::Has, &self.entity, Some(&id)))
    }

    #[napi(catch_unwind)]
    pub async fn write(&self, id: String, json: String) -> napi::Result<()> {
        self.store
            .write(&id, json)
            .await
            .map_err(|e| js_error(e, Op::Write, &self.entity, Some(&id)))
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
