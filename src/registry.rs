//! The registry of backends: opens a store of a backend named by name or URL (wrapped in the
//! layers), describes, counts, lists and closes what its options name. Nothing here names a
//! backend: the list is `backends::ALL`.

use std::sync::Arc;

use serde_json::Value;

use crate::backends::ALL as BACKENDS;
use crate::contract::{BackendConfig, BoxFuture, Listing, Storage, Store, StoreStats};
use crate::error::{PersistError, Result};
use crate::layers::{order, sealed};

/// A backend: a name, the URL schemes naming it, and what the registry does with a resolved
/// configuration. Options arrive as JSON; its `Config` resolves their defaults (environment,
/// working directory) and refuses names it does not know, so every other call starts from a
/// checked one.
pub trait Backend: Sync + 'static {
    /// The options resolved; its `Debug` shows no credentials.
    type Config: BackendConfig + std::fmt::Debug + Send + 'static;

    const NAME: &'static str;

    /// The URL schemes naming this backend (`redis` for `redis://…`), one syntax for factories,
    /// environment variables and the command.
    const SCHEMES: &'static [&'static str];

    /// The options a URL of one of `schemes` stands for; a server URL stands for `{ url }`, whose
    /// parameters `config` checks, the same way whichever way the URL came.
    fn options_from_url(&self, url: &str) -> Result<Value> {
        Ok(serde_json::json!({ "url": url }))
    }

    /// For a tool given a URL of this backend: the directory to list entities under, for a
    /// backend whose documents sit where backtest-kit's baseDir says (files: `file:./dump`).
    /// `location` is the URL after its scheme. None: the options name the store.
    fn listing_root(&self, location: &str) -> Result<Option<String>> {
        let _ = location;
        Ok(None)
    }

    /// A store for (entityName, baseDir); no I/O.
    fn open(&self, config: Self::Config, entity: &str, base_dir: &str) -> Result<Arc<dyn Store>>;

    /// The configuration for users to inspect (credentials redacted).
    fn describe(&self, config: &Self::Config) -> Value;

    /// Counters of the storage; zero when it is not open.
    fn stats(&self, config: &Self::Config) -> StoreStats;

    /// Every (namespace, entity) holding documents, for tools (the hot path never lists). `root`:
    /// the directory of backtest-kit's layout (`./dump`), for the file backend.
    fn entities(&self, config: Self::Config, root: &str) -> Result<Listing>;

    /// Release the shared resource (database, connection); writes issued before have finished.
    fn close(&self, config: Self::Config) -> BoxFuture<Result<()>> {
        Box::pin(async move {
            Self::release(&config);
            Ok(())
        })
    }

    /// What `close` does when releasing takes no waiting: drop the shared connection (requests
    /// in flight finish on their clone of it). Nothing by default (files hold nothing open).
    fn release(_config: &Self::Config) {}
}

/// A [`Backend`] as the registry holds it, options as JSON (so the list can hold every backend).
pub trait Registered: Sync {
    fn name(&self) -> &'static str;
    fn schemes(&self) -> &'static [&'static str];
    fn options_from_url(&self, url: &str) -> Result<Value>;
    fn listing_root(&self, location: &str) -> Result<Option<String>>;
    fn open(&self, entity: &str, base_dir: &str, options: &Value) -> Result<Arc<dyn Store>>;
    fn describe(&self, options: &Value) -> Result<Value>;
    fn storage(&self, options: &Value) -> Result<Storage>;
    fn stats(&self, options: &Value) -> Result<StoreStats>;
    fn entities(&self, options: &Value, root: &str) -> Result<Listing>;
    fn close(&self, options: &Value) -> Result<BoxFuture<Result<()>>>;
}

impl<B: Backend> Registered for B {
    fn name(&self) -> &'static str {
        B::NAME
    }
    fn schemes(&self) -> &'static [&'static str] {
        B::SCHEMES
    }
    fn options_from_url(&self, url: &str) -> Result<Value> {
        Backend::options_from_url(self, url)
    }
    fn listing_root(&self, location: &str) -> Result<Option<String>> {
        Backend::listing_root(self, location)
    }
    fn open(&self, entity: &str, base_dir: &str, options: &Value) -> Result<Arc<dyn Store>> {
        Backend::open(self, B::Config::from_options(options)?, entity, base_dir)
    }
    fn describe(&self, options: &Value) -> Result<Value> {
        Ok(Backend::describe(self, &B::Config::from_options(options)?))
    }
    fn storage(&self, options: &Value) -> Result<Storage> {
        Ok(B::Config::from_options(options)?.storage())
    }
    fn stats(&self, options: &Value) -> Result<StoreStats> {
        Ok(Backend::stats(self, &B::Config::from_options(options)?))
    }
    fn entities(&self, options: &Value, root: &str) -> Result<Listing> {
        Backend::entities(self, B::Config::from_options(options)?, root)
    }
    fn close(&self, options: &Value) -> Result<BoxFuture<Result<()>>> {
        Ok(Backend::close(self, B::Config::from_options(options)?))
    }
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
    let store = backend(kind_name)?.open(entity, base_dir, &backend_options)?;
    Ok(match keyring {
        Some(keyring) => Arc::new(sealed::Sealed::new(store, keyring, base_dir, entity)),
        None => Arc::new(sealed::Guarded::new(store)),
    })
}

/// The options as resolved now (credentials redacted; for encryption, the key ids only).
pub fn describe(kind_name: &str, options: &Value) -> Result<Value> {
    let (backend_options, encryption) = split_encryption(options);
    let keyring = sealed::keyring(encryption.as_ref())?;
    let mut described = backend(kind_name)?.describe(&backend_options)?;
    if let Value::Object(map) = &mut described {
        map.insert("encryption".into(), sealed::describe(&keyring));
    }
    Ok(described)
}

/// Counters of the storage the options name.
pub fn stats(kind_name: &str, options: &Value) -> Result<StoreStats> {
    backend(kind_name)?.stats(&split_encryption(options).0)
}

/// Every (namespace, entity) the store holds documents of, sorted (see `Backend::entities`).
pub async fn entities(
    kind_name: &str,
    options: &Value,
    root: &str,
) -> Result<Vec<(String, String)>> {
    let mut pairs = backend(kind_name)?
        .entities(&split_encryption(options).0, root)?
        .await?;
    pairs.sort();
    pairs.dedup();
    Ok(pairs)
}

/// Finish queued work and release the shared resource the options name.
pub fn close(kind_name: &str, options: &Value) -> Result<BoxFuture<Result<()>>> {
    let backend = backend(kind_name)?;
    let options = split_encryption(options).0;
    let storage = backend.storage(&options)?;
    let release = backend.close(&options)?;
    Ok(Box::pin(async move {
        // Writes still waiting in issue order would open the database or connection again.
        order::settled(&storage).await;
        release.await
    }))
}

/// The backend a URL names and the options it stands for: `redis://…/0?prefix=bot-a` is
/// `("redis", { url })`, `sqlite:./state.sqlite` is `("sqlite", { path })`.
pub fn from_url(url: &str) -> Result<(&'static str, Value)> {
    let backend = by_scheme(url)?;
    Ok((backend.name(), backend.options_from_url(url)?))
}

/// A store as a tool (the command) names it by URL.
#[derive(Debug)]
pub struct ToolStore {
    pub kind: &'static str,
    pub options: Value,
    /// Where its entities are listed from (see `Backend::listing_root`), absolute; else empty.
    pub root: String,
    /// The directory a listed namespace is relative to, for its baseDir (the root's parent);
    /// empty where the namespace is the baseDir itself.
    pub base: String,
}

/// The store a tool's URL names: as `from_url`, except that a bare scheme (`redis:`, `s3:`)
/// is the backend with its defaults and environment, and a file URL names a dump directory.
pub fn tool_store(url: &str) -> Result<ToolStore> {
    let backend = by_scheme(url)?;
    let location = url.split_once(':').map_or("", |(_, rest)| rest);
    if let Some(root) = backend.listing_root(location)? {
        let root = std::path::absolute(&root).map_err(|e| PersistError::InvalidConfig {
            detail: format!("{}: {root:?}: {e}", backend.name()),
        })?;
        let base = root.parent().unwrap_or(&root).display().to_string();
        return Ok(ToolStore {
            kind: backend.name(),
            options: serde_json::json!({}),
            root: root.display().to_string(),
            base,
        });
    }
    let bare = location.trim_start_matches("//").is_empty();
    Ok(ToolStore {
        kind: backend.name(),
        options: match bare {
            true => serde_json::json!({}),
            false => backend.options_from_url(url)?,
        },
        root: String::new(),
        base: String::new(),
    })
}

/// The registered backend a URL's scheme names.
fn by_scheme(url: &str) -> Result<&'static dyn Registered> {
    let scheme = url
        .split_once(':')
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    let found = scheme
        .as_deref()
        .and_then(|scheme| BACKENDS.iter().find(|b| b.schemes().contains(&scheme)));
    found.copied().ok_or_else(|| PersistError::InvalidConfig {
        detail: format!(
            "not a store URL{}: the schemes are {}",
            scheme
                .map(|s| format!(" (scheme {s:?})"))
                .unwrap_or_default(),
            BACKENDS
                .iter()
                .flat_map(|b| b.schemes().iter().map(|s| format!("{s}:")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// Every registered backend's name and the URL schemes naming it, in registration order.
pub fn list() -> impl Iterator<Item = (&'static str, &'static [&'static str])> {
    BACKENDS.iter().map(|b| (b.name(), b.schemes()))
}

/// The registered backend of this name.
pub fn backend(name: &str) -> Result<&'static dyn Registered> {
    BACKENDS
        .iter()
        .copied()
        .find(|b| b.name() == name)
        .ok_or_else(|| PersistError::InvalidConfig {
            detail: format!("unknown backend {name:?}"),
        })
}
