//! One error type for every backend, each variant with a stable code that the JS facade
//! exposes as `err.code`.

use std::io;
use std::path::PathBuf;

/// Which public operation failed; it selects backtest-kit's wording for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Init,
    Read,
    Has,
    Write,
    Remove,
    RemoveAll,
    Keys,
    /// Closing a backend's storage (`Class.close()`); the "entity" is the backend's name.
    Close,
    /// Listing the entities of a backend's storage (the command); the "entity" is its name.
    List,
}

/// Every variant holds plain data, so one failure can end every request it affects (`Clone`).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// The id cannot name a document safely (see `contract::validate_id`).
    #[error("invalid entity id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },

    /// The entity name would place documents outside `baseDir` or cannot be a path.
    #[error("invalid entity name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    /// `removeValue` of an id that does not exist.
    #[error("not found")]
    NotFound,

    /// Stored bytes are not a JSON document.
    #[error("corrupt document {location}: {detail}")]
    Corrupt { location: String, detail: String },

    #[error("{action} {path}: {cause}")]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: OsError,
    },

    /// The SQLite database failed; `detail` tells how (not a database, corrupt, I/O, ...), and
    /// `code` is SQLite's primary code when SQLite reported it.
    #[error("database {path}: {detail}")]
    Database {
        path: PathBuf,
        detail: String,
        code: Option<rusqlite::ErrorCode>,
    },

    /// The storage (a SQLite file, a PostgreSQL table) was written by a newer version with a
    /// schema this one cannot read; `location` as shown to users (credentials redacted).
    #[error("database {location}: schema version {found} is newer than the {supported} this version of backtest-kit-rs supports")]
    SchemaTooNew {
        location: String,
        found: i64,
        supported: i64,
    },

    /// The shared database was closed while this operation waited for it.
    #[error("database {path} was closed during the operation")]
    Closed { path: PathBuf },

    /// A command to a storage server (`service`: redis, postgres, mongodb, s3) or the
    /// connection to it failed; `url` has its credentials redacted.
    #[error("{service} {url}: {detail}")]
    Server {
        service: &'static str,
        url: String,
        detail: String,
        kind: ServerFailure,
    },

    /// An encrypted document that cannot be decrypted with the configured keys (missing or wrong
    /// key, tampered, or moved from another id). Never treated as corruption.
    #[error("cannot decrypt the document of id {id:?}: {detail}")]
    Decrypt { id: String, detail: String },

    /// Options that cannot work, such as a malformed Redis URL.
    #[error("invalid configuration: {detail}")]
    InvalidConfig { detail: String },

    /// A blocking task ended without a result (it panicked or the runtime is shutting down).
    #[error("internal task failed: {0}")]
    Task(String),
}

impl PersistError {
    /// Stable machine-readable code; part of the public API, listed in the README.
    pub fn code(&self) -> &'static str {
        match self {
            PersistError::InvalidId { .. } => "PERSIST_INVALID_ID",
            PersistError::InvalidName { .. } => "PERSIST_INVALID_NAME",
            PersistError::NotFound => "PERSIST_NOT_FOUND",
            PersistError::Corrupt { .. } => "PERSIST_CORRUPT",
            PersistError::Database { code, .. } => match code {
                Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                    "PERSIST_CORRUPT"
                }
                _ => "PERSIST_IO",
            },
            PersistError::SchemaTooNew { .. } => "PERSIST_SCHEMA",
            PersistError::Server { kind, .. } => match kind {
                ServerFailure::Unavailable => "PERSIST_UNAVAILABLE",
                ServerFailure::Auth => "PERSIST_AUTH",
                ServerFailure::NotReplicated => "PERSIST_NOT_REPLICATED",
                ServerFailure::Other => "PERSIST_IO",
            },
            PersistError::InvalidConfig { .. } => "PERSIST_INVALID_CONFIG",
            PersistError::Decrypt { .. } => "PERSIST_DECRYPT",
            PersistError::Io { .. } | PersistError::Task(_) | PersistError::Closed { .. } => {
                "PERSIST_IO"
            }
        }
    }

    /// The operating system's error number behind this error, where there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            PersistError::Io { cause, .. } => cause.errno,
            _ => None,
        }
    }

    /// The file or database this error is about, where there is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            PersistError::Io { path, .. }
            | PersistError::Database { path, .. }
            | PersistError::Closed { path } => Some(path),
            _ => None,
        }
    }

    /// The same error for a write whose server connection failed while it was in flight: it
    /// may or may not have been `outcome` ("committed", "applied"), and the message says so.
    pub fn uncertain(&self, outcome: &str) -> PersistError {
        match self {
            PersistError::Server {
                service,
                url,
                detail,
                kind: kind @ ServerFailure::Unavailable,
            } => PersistError::Server {
                service,
                url: url.clone(),
                detail: format!("{detail} (the write may or may not have been {outcome})"),
                kind: *kind,
            },
            other => other.clone(),
        }
    }

    pub fn database(path: impl Into<PathBuf>, source: rusqlite::Error) -> Self {
        PersistError::Database {
            path: path.into(),
            code: source.sqlite_error_code(),
            detail: source.to_string(),
        }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        PersistError::Io {
            action,
            path: path.into(),
            cause: OsError::from(source),
        }
    }

    /// The message users see, in backtest-kit's own wording for each operation so that
    /// logs and `catch` blocks written against `PersistBase` keep working.
    pub fn describe(&self, op: Op, entity: &str, id: Option<&str>) -> String {
        let id = id.unwrap_or("");
        match (op, self) {
            (Op::Remove, PersistError::NotFound) => {
                format!("Entity {entity}:{id} not found for deletion")
            }
            (_, PersistError::NotFound) => format!("Entity {entity}:{id} not found"),
            (Op::Init, e) => format!("Failed to initialise entity {entity}: {e}"),
            (Op::Read, e) => format!("Failed to read entity {entity}:{id}: {e}"),
            (Op::Has, e) => format!("Failed to check existence of entity {entity}:{id}: {e}"),
            (Op::Write, e) => format!("Failed to write entity {entity}:{id}: {e}"),
            (Op::Remove, e) => format!("Failed to remove entity {entity}:{id}: {e}"),
            (Op::RemoveAll, e) => format!("Failed to remove all entities of {entity}: {e}"),
            (Op::Keys, e) => format!("Failed to read keys for {entity}: {e}"),
            (Op::Close, e) => format!("Failed to close the {entity} storage: {e}"),
            (Op::List, e) => format!("Failed to list the entities of the {entity} storage: {e}"),
        }
    }
}

/// What kind of server failure, which decides the error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFailure {
    /// Refused, dropped or timed out: the server is not reachable now.
    Unavailable,
    /// Wrong credentials or missing permissions.
    Auth,
    /// The primary took a write but fewer replicas than asked acknowledged it in time: it may or
    /// may not survive a failover.
    NotReplicated,
    /// Anything else the server or client reported.
    Other,
}

pub type Result<T, E = PersistError> = std::result::Result<T, E>;

/// An operating system error as it was: its number (for `err.errno`) and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsError {
    pub errno: Option<i32>,
    pub message: String,
}

impl From<io::Error> for OsError {
    fn from(source: io::Error) -> Self {
        OsError {
            errno: source.raw_os_error(),
            message: source.to_string(),
        }
    }
}

impl std::fmt::Display for OsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_backtest_kit_wording() {
        let missing = PersistError::NotFound;
        assert_eq!(
            missing.describe(Op::Read, "sig", Some("BTC")),
            "Entity sig:BTC not found"
        );
        assert_eq!(
            missing.describe(Op::Remove, "sig", Some("BTC")),
            "Entity sig:BTC not found for deletion"
        );
        let bad = PersistError::InvalidId {
            id: "../x".into(),
            reason: "contains a path separator",
        };
        assert_eq!(
            bad.describe(Op::Write, "sig", Some("../x")),
            "Failed to write entity sig:../x: invalid entity id \"../x\": contains a path separator"
        );
        assert_eq!(bad.code(), "PERSIST_INVALID_ID");
    }
}
