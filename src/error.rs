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
}

#[derive(Debug, thiserror::Error)]
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

    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The SQLite database failed; `source` tells how (not a database, corrupt, I/O, ...).
    #[error("database {path}: {source}")]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// The database was written by a newer version with a schema this one cannot read.
    #[error("database {path}: schema version {found} is newer than the {supported} this version of backtest-kit-rs supports")]
    SchemaTooNew {
        path: PathBuf,
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
            PersistError::Database { source, .. } => match source.sqlite_error_code() {
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
            PersistError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The file or database this error is about, where there is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            PersistError::Io { path, .. }
            | PersistError::Database { path, .. }
            | PersistError::SchemaTooNew { path, .. }
            | PersistError::Closed { path } => Some(path),
            _ => None,
        }
    }

    /// The same failure again, for every request it ended (errors carry sources that are not
    /// `Clone`; an I/O error keeps its errno, a SQLite error its codes and message).
    pub fn duplicate(&self) -> PersistError {
        match self {
            PersistError::InvalidId { id, reason } => PersistError::InvalidId {
                id: id.clone(),
                reason,
            },
            PersistError::InvalidName { name, reason } => PersistError::InvalidName {
                name: name.clone(),
                reason,
            },
            PersistError::NotFound => PersistError::NotFound,
            PersistError::Corrupt { location, detail } => PersistError::Corrupt {
                location: location.clone(),
                detail: detail.clone(),
            },
            PersistError::Io {
                action,
                path,
                source,
            } => PersistError::Io {
                action,
                path: path.clone(),
                source: match source.raw_os_error() {
                    Some(errno) => io::Error::from_raw_os_error(errno),
                    None => io::Error::new(source.kind(), source.to_string()),
                },
            },
            PersistError::Database { path, source } => PersistError::Database {
                path: path.clone(),
                source: duplicate_sqlite(source),
            },
            PersistError::SchemaTooNew {
                path,
                found,
                supported,
            } => PersistError::SchemaTooNew {
                path: path.clone(),
                found: *found,
                supported: *supported,
            },
            PersistError::Closed { path } => PersistError::Closed { path: path.clone() },
            PersistError::Server {
                service,
                url,
                detail,
                kind,
            } => PersistError::Server {
                service,
                url: url.clone(),
                detail: detail.clone(),
                kind: *kind,
            },
            PersistError::InvalidConfig { detail } => PersistError::InvalidConfig {
                detail: detail.clone(),
            },
            PersistError::Decrypt { id, detail } => PersistError::Decrypt {
                id: id.clone(),
                detail: detail.clone(),
            },
            PersistError::Task(detail) => PersistError::Task(detail.clone()),
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
            other => other.duplicate(),
        }
    }

    pub fn database(path: impl Into<PathBuf>, source: rusqlite::Error) -> Self {
        PersistError::Database {
            path: path.into(),
            source,
        }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        PersistError::Io {
            action,
            path: path.into(),
            source,
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

/// rusqlite errors are not `Clone`; a SQLite failure is fully described by its codes and message.
pub fn duplicate_sqlite(err: &rusqlite::Error) -> rusqlite::Error {
    match err {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::InvalidParameterName(other.to_string()),
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
