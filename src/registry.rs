//! The registry of backends: opens a store of a backend named by name or URL (wrapped in the
//! layers), describes, counts, lists and closes what its options name. Nothing here names a
//! backend: the list is `backends::ALL`.

use std::sync::Arc;

use serde_json::Value;

use crate::backends::ALL as KINDS;
use crate::contract::{BoxFuture, Listing, Storage, Store, StoreStats};
use crate::error::{PersistError, Result};
use crate::layers::{order, sealed};

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
    /// The storage these options name (its stores' scopes have it), so closing it waits for
    /// their requests issued before.
    pub storage: fn(&Value) -> Result<Storage>,
    /// Release the shared resource (database, connection); writes issued before have finished.
    pub close: fn(&Value) -> Result<BoxFuture<Result<()>>>,
    /// Every (namespace, entity) holding documents, for tools (the hot path never lists). `root`:
    /// the directory of backtest-kit's layout (`./dump`), for the file backend.
    pub entities: fn(&Value, &str) -> Result<Listing>,
}
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
    let kind = kind(kind_name)?;
    let options = split_encryption(options).0;
    let storage = (kind.storage)(&options)?;
    let release = (kind.close)(&options)?;
    Ok(Box::pin(async move {
        // Writes still waiting in issue order would open the database or connection again.
        order::settled(&storage).await;
        release.await
    }))
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
