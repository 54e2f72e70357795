//! `FileStore`: backtest-kit's `PersistBase` layout (`{baseDir}/{entityName}/{id}.json`, the
//! `JSON.stringify` text as is), written atomically and durably.
//!
//! A write goes to a unique `.tmp-{12 hex}-{id}.json` in the same directory, is fsynced,
//! renamed over the target, and then the directory is fsynced so the rename itself survives
//! power loss (the step `PersistBase` skips). Readers therefore see the old or the new
//! document, never a torn one, and a crash leaves at most a tmp file that a later `init`
//! sweeps once it is older than [`STALE_TMP_AGE`].

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use crate::contract::{
    entity_segments, validate_id, BackendConfig, Doc, InitReport, Listing, Options, Reply, Request,
    Response, Scope, Storage, Store, StoreStats, WriteMode, TMP_PREFIX,
};
use crate::error::{PersistError, Result};
use crate::exec::{lock, runtime, spawn};
use crate::json::is_valid_json;
use crate::registry::Backend;

/// Tmp files younger than this may belong to a writer in another process; `PersistBase`
/// uses the same 120 s.
pub const STALE_TMP_AGE: Duration = Duration::from_secs(120);

const DOC_SUFFIX: &str = ".json";

/// Threads that run document writes. Each write waits on two fsyncs; on the disks measured,
/// about 16 in flight give the most writes per second, and a fixed set of threads keeps
/// memory steady where a growing and shrinking pool made RSS swing by tens of MiB.
const WRITE_THREADS: usize = 16;

type WriteJob = Box<dyn FnOnce() + Send>;

/// Run `job` on the file-write threads, started on first use. Err when no thread could be
/// started, in which case the job is handed back for the caller to run elsewhere.
fn run_on_write_threads(job: WriteJob) -> std::result::Result<(), WriteJob> {
    static POOL: OnceLock<Option<std::sync::Mutex<std::sync::mpsc::Sender<WriteJob>>>> =
        OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel::<WriteJob>();
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        let started = (0..WRITE_THREADS)
            .filter(|n| {
                let receiver = Arc::clone(&receiver);
                std::thread::Builder::new()
                    .name(format!("bkrs-file-write-{n}"))
                    .spawn(move || loop {
                        // Hold the lock only to take a job, not while running it.
                        let next = lock(&receiver).recv();
                        match next {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    })
                    .is_ok()
            })
            .count();
        (started > 0).then(|| std::sync::Mutex::new(sender))
    });
    match pool {
        Some(sender) => lock(sender)
            .send(job)
            .map_err(|std::sync::mpsc::SendError(job)| job),
        None => Err(job),
    }
}

/// Counters of every file write in the process (files have no shared resource to count per).
static WRITES: AtomicU64 = AtomicU64::new(0);
static COMMITS: AtomicU64 = AtomicU64::new(0);

/// Requests with more ids than this run on the blocking pool rather than on a runtime worker.
const INLINE_IDS: usize = 16;
/// Largest cache request run on the calling thread (a candle window is usually far smaller).
const MAX_IN_PLACE_DOCS: usize = 128;

/// `file:` alone: a file store's directories are the baseDirs backtest-kit gives each domain.
fn options_from_url(url: &str) -> Result<serde_json::Value> {
    match url {
        "file:" | "file://" => Ok(serde_json::json!({})),
        _ => Err(PersistError::InvalidConfig {
            detail: format!(
                "file: a file store writes where backtest-kit's baseDir says (./dump/data/…), so its URL is file: alone, got {url:?}"
            ),
        }),
    }
}

/// The file backend has no options but `encryption` (which the layers take).
impl BackendConfig for () {
    fn from_options(options: &serde_json::Value) -> Result<()> {
        Options::new("file", options)?.finish()
    }

    fn storage(&self) -> Storage {
        storage()
    }
}

/// The file backend: atomic, durable files where backtest-kit's baseDir says.
pub struct FileBackend;

impl Backend for FileBackend {
    type Config = ();

    const NAME: &str = "file";
    const SCHEMES: &[&str] = &["file"];

    fn options_from_url(&self, url: &str) -> Result<serde_json::Value> {
        options_from_url(url)
    }

    /// A tool's `file:./dump`: the directory backtest-kit's file layout is under.
    fn listing_root(&self, location: &str) -> Result<Option<String>> {
        match location.strip_prefix("//").unwrap_or(location) {
            "" => Err(PersistError::InvalidConfig {
                detail: "file: needs a directory, e.g. file:./dump".into(),
            }),
            root => Ok(Some(root.to_owned())),
        }
    }

    fn open(&self, (): (), entity: &str, base_dir: &str) -> Result<Arc<dyn Store>> {
        Ok(Arc::new(FileStore::new(base_dir, entity)?))
    }

    fn describe(&self, (): &()) -> serde_json::Value {
        serde_json::json!({})
    }

    /// The whole process's file writes.
    fn stats(&self, (): &()) -> StoreStats {
        StoreStats {
            writes: WRITES.load(Ordering::Relaxed),
            commits: COMMITS.load(Ordering::Relaxed),
        }
    }

    fn entities(&self, (): (), root: &str) -> Result<Listing> {
        let root = PathBuf::from(root);
        Ok(Box::pin(async move {
            crate::exec::blocking(move || entities_under(&root)).await
        }))
    }
}

#[derive(Debug, Clone)]
pub struct FileStore {
    dir: Arc<PathBuf>,
    scope: Arc<Scope>,
}

/// Every file store is in one storage, the file system; its entity is its directory.
fn storage() -> Storage {
    Storage::new("file", "")
}

impl FileStore {
    /// No I/O: the directory is created by `init`.
    pub fn new(base_dir: impl AsRef<Path>, entity_name: &str) -> Result<Self> {
        let mut dir = base_dir.as_ref().to_path_buf();
        dir.extend(entity_segments(entity_name)?);
        let scope = storage().entity(dir.display().to_string());
        Ok(FileStore {
            dir: Arc::new(dir),
            scope,
        })
    }

    pub fn directory(&self) -> &Path {
        &self.dir
    }

    fn doc_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{DOC_SUFFIX}"))
    }

    /// Every request, on the calling thread.
    fn run(&self, request: &Request) -> Result<Response> {
        match request {
            Request::Init { validate } => {
                if *validate {
                    init_directory(&self.dir).map(Response::Init)
                } else {
                    create_dir_durably(&self.dir).map(|()| Response::Init(InitReport::default()))
                }
            }
            Request::Read {
                ids,
                stop_at_missing,
                heal,
            } => {
                let mut docs = Vec::with_capacity(ids.len());
                for id in ids {
                    let doc = self.read_doc(id, *heal)?;
                    let missing = doc == Doc::Missing;
                    docs.push(doc);
                    if missing && *stop_at_missing {
                        break;
                    }
                }
                Ok(Response::Docs(docs))
            }
            Request::Has { ids } => ids
                .iter()
                .map(|id| {
                    let path = self.doc_path(id);
                    match fs::metadata(&path) {
                        Ok(meta) => Ok(meta.is_file()),
                        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
                        Err(e) => Err(PersistError::io("cannot stat", path, e)),
                    }
                })
                .collect::<Result<_>>()
                .map(Response::Flags),
            Request::Write {
                docs,
                mode,
                durable,
            } => write_docs(&self.dir, docs, *mode, *durable).map(Response::Written),
            Request::Remove { id } => {
                let path = self.doc_path(id);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        return Err(PersistError::NotFound)
                    }
                    Err(e) => return Err(PersistError::io("cannot remove", path, e)),
                }
                sync_dir(&self.dir).map(|()| Response::Done)
            }
            Request::RemoveAll => {
                for id in list_ids(&self.dir)? {
                    let path = self.doc_path(&id);
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        // Removed concurrently: the goal is reached all the same.
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => return Err(PersistError::io("cannot remove", path, e)),
                    }
                }
                sync_dir(&self.dir).map(|()| Response::Done)
            }
            Request::Keys => list_ids(&self.dir).map(Response::Keys),
            Request::Scan => {
                let mut entries = Vec::new();
                for id in list_ids(&self.dir)? {
                    // Removed since the listing: not part of the answer.
                    if let Doc::Text(text) = self.read_doc(&id, false)? {
                        entries.push((id, text));
                    }
                }
                Ok(Response::Entries(entries))
            }
        }
    }

    fn read_doc(&self, id: &str, heal: bool) -> Result<Doc> {
        let path = self.doc_path(id);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Doc::Missing),
            // A directory (or device) under a document's name is not a document: missing, as
            // for `hasValue` and `keys()`.
            Err(_) if !is_document(&path) => return Ok(Doc::Missing),
            Err(e) => return Err(PersistError::io("cannot read", path, e)),
        };
        if heal && !is_valid_json(&bytes) {
            let moved = move_aside(&path)?;
            return Ok(Doc::Corrupt {
                id: id.to_owned(),
                detail: format!(
                    "{} is not JSON; moved aside to {}",
                    path.display(),
                    moved.display()
                ),
            });
        }
        // Node decodes invalid UTF-8 as U+FFFD before JSON.parse; do the same.
        Ok(Doc::Text(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

impl Store for FileStore {
    fn submit(self: Arc<Self>, request: Request, reply: Reply) {
        match request {
            // Writes wait on fsyncs: the fixed write threads.
            Request::Write { .. } => {
                let job: WriteJob = Box::new(move || reply(self.run(&request)));
                // Should no write thread start, the blocking pool still does the job.
                if let Err(job) = run_on_write_threads(job) {
                    drop(runtime().spawn_blocking(job));
                }
            }
            // Reading a few small documents from the page cache costs less than a hop to the
            // blocking pool, so small reads run on a runtime worker.
            Request::Read { ref ids, .. } | Request::Has { ref ids } if ids.len() <= INLINE_IDS => {
                spawn(async move { reply(self.run(&request)) })
            }
            _ => drop(runtime().spawn_blocking(move || reply(self.run(&request)))),
        }
    }

    fn scope(&self) -> &Arc<Scope> {
        &self.scope
    }

    /// Cache-domain requests (reads that heal, writes without a sync) of a few documents run
    /// on the calling thread: from the page cache they cost less than the hop to a thread and
    /// back. Durable writes wait on fsyncs and state reads may be large: those always go to
    /// `submit`. Issue order is the caller's (`layers::in_place`).
    fn in_place(&self, request: &Request) -> Option<Result<Response>> {
        let small = match request {
            Request::Read {
                ids, heal: true, ..
            } => ids.len() <= MAX_IN_PLACE_DOCS,
            Request::Write {
                docs,
                durable: false,
                ..
            } => docs.len() <= MAX_IN_PLACE_DOCS,
            _ => false,
        };
        small.then(|| self.run(request))
    }
}

/// A document is a regular file, or a symlink to one (as `PersistBase`'s `readFile` follows
/// it); directories, devices and dangling links under a document's name are not.
fn is_document(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file())
}

/// Ids of the documents (see `is_document`) in `dir`, skipping atomic-write leftovers.
fn list_ids(dir: &Path) -> Result<Vec<String>> {
    let entries = fs::read_dir(dir).map_err(|e| PersistError::io("cannot list", dir, e))?;
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| PersistError::io("cannot list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TMP_PREFIX) {
            continue;
        }
        let Some(id) = name.strip_suffix(DOC_SUFFIX) else {
            continue;
        };
        // List only what readValue accepts: `.json` (id "") or `a\b.json`, which PersistBase
        // could have written, would otherwise be listed and then refused.
        let regular = entry
            .file_type()
            .is_ok_and(|t| t.is_file() || (t.is_symlink() && is_document(&entry.path())));
        if validate_id(id).is_ok() && regular {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

/// First-use work for an entity: create its directory, sweep stale tmp files, and move aside
/// documents that `JSON.parse` would reject (`PersistBase` deletes them, with 5 s of unlink
/// retries; a document that cannot be moved is reported and kept).
fn init_directory(dir: &Path) -> Result<InitReport> {
    create_dir_durably(dir)?;
    let mut report = InitReport::default();
    let entries = fs::read_dir(dir).map_err(|e| PersistError::io("cannot list", dir, e))?;
    let now = SystemTime::now();
    for entry in entries {
        let entry = entry.map_err(|e| PersistError::io("cannot list", dir, e))?;
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_tmp = name.starts_with(TMP_PREFIX);
        // The identity of the file judged, so that a valid document renamed over it by another
        // process in the meantime is not the one removed.
        let judged = if is_tmp {
            is_stale(&path, now).then(|| file_identity(&path)).flatten()
        } else if name.ends_with(DOC_SUFFIX) {
            invalid_document_identity(&path)?
        } else {
            None
        };
        let Some(identity) = judged else { continue };
        if file_identity(&path) != Some(identity) {
            continue;
        }
        let shown = path.display().to_string();
        if is_tmp {
            match fs::remove_file(&path) {
                Ok(()) => report.removed_stale_tmp.push(shown),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => report.failed_removals.push(format!("{shown}: {e}")),
            }
            continue;
        }
        match move_aside(&path) {
            Ok(moved) => report
                .removed_invalid
                .push(format!("{shown} (moved aside to {})", moved.display())),
            Err(e) => report.failed_removals.push(format!("{shown}: {e}")),
        }
    }
    Ok(report)
}

/// Which file a path names now (device and inode on Unix); `None` if it is gone.
#[cfg(unix)]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    let modified = fs::symlink_metadata(path).ok()?.modified().ok()?;
    let since = modified.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    Some((since.as_secs(), u64::from(since.subsec_nanos())))
}

/// The identity of the document at `path` if its content is not JSON, read through one
/// handle so that content and identity belong to the same file.
fn invalid_document_identity(path: &Path) -> Result<Option<(u64, u64)>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        // Removed by another process since the listing: nothing to validate.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PersistError::io("cannot read", path, e)),
    };
    let identity = handle_identity(&file, path);
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes)
        .map_err(|e| PersistError::io("cannot read", path, e))?;
    Ok(if is_valid_json(&bytes) {
        None
    } else {
        identity
    })
}

#[cfg(unix)]
fn handle_identity(file: &File, _path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn handle_identity(_file: &File, path: &Path) -> Option<(u64, u64)> {
    file_identity(path)
}

/// `create_dir_all`, then fsync the parent of every directory it created, so that a new
/// entity directory (and the documents later renamed into it) survives power loss.
fn create_dir_durably(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut probe = Some(dir);
    while let Some(candidate) = probe {
        if candidate.as_os_str().is_empty() || candidate.exists() {
            break;
        }
        missing.push(candidate.to_path_buf());
        probe = candidate.parent();
    }
    fs::create_dir_all(dir).map_err(|e| PersistError::io("cannot create directory", dir, e))?;
    for created in &missing {
        if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

fn is_stale(path: &Path, now: SystemTime) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| now.duration_since(modified).ok())
        .is_some_and(|age| age >= STALE_TMP_AGE)
}

/// Write `docs` into `dir`: every document to its own tmp file (synced when `durable`), then
/// every rename, then one directory sync, so a batch costs one sync group. Returns how many
/// documents changed.
fn write_docs(
    dir: &Path,
    docs: &[(String, String)],
    mode: WriteMode,
    durable: bool,
) -> Result<usize> {
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::with_capacity(docs.len());
    let discard = |staged: &[(PathBuf, PathBuf)]| {
        for (tmp, _) in staged {
            let _ = fs::remove_file(tmp);
        }
    };
    for (id, json) in docs {
        let target = dir.join(format!("{id}{DOC_SUFFIX}"));
        let keep = match mode {
            WriteMode::Replace => false,
            WriteMode::InsertOnly => fs::symlink_metadata(&target).is_ok(),
            WriteMode::ReplaceChanged => fs::read(&target).is_ok_and(|old| old == json.as_bytes()),
        };
        if keep {
            continue;
        }
        let staging = create_tmp(dir, id).and_then(|(tmp, mut file)| {
            let written = file
                .write_all(json.as_bytes())
                .and_then(|()| if durable { file.sync_data() } else { Ok(()) })
                .map_err(|e| PersistError::io("cannot write", &tmp, e));
            match written {
                Ok(()) => Ok(tmp),
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    Err(e)
                }
            }
        });
        match staging {
            Ok(tmp) => staged.push((tmp, target)),
            Err(e) => {
                discard(&staged);
                return Err(e);
            }
        }
    }
    let mut written = 0;
    for (n, (tmp, target)) in staged.iter().enumerate() {
        let placed = if mode == WriteMode::InsertOnly {
            // A hard link never replaces an existing document, even one another process
            // created since the check above.
            let linked = match fs::hard_link(tmp, target) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(PersistError::io("cannot link into", target, e)),
            };
            let _ = fs::remove_file(tmp);
            linked
        } else {
            fs::rename(tmp, target)
                .map(|()| true)
                .map_err(|e| PersistError::io("cannot rename into", target, e))
        };
        match placed {
            Ok(changed) => written += usize::from(changed),
            Err(e) => {
                discard(&staged[n..]);
                return Err(e);
            }
        }
    }
    if written > 0 {
        WRITES.fetch_add(written as u64, Ordering::Relaxed);
        if durable {
            sync_dir(dir)?;
            COMMITS.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(written)
}

/// Rename a document that is not JSON to `{name}.corrupt-{12 hex}`, a name neither `keys()` nor
/// any init (ours or `PersistBase`'s) lists or touches, so it can be recovered by hand.
fn move_aside(path: &Path) -> Result<PathBuf> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{}", unique_hex12()));
    let aside = path.with_file_name(name);
    fs::rename(path, &aside).map_err(|e| PersistError::io("cannot move aside", path, e))?;
    Ok(aside)
}

/// A new tmp file that no other writer, in this process or another, can be using.
fn create_tmp(dir: &Path, id: &str) -> Result<(PathBuf, File)> {
    loop {
        let path = dir.join(format!("{TMP_PREFIX}{}-{id}{DOC_SUFFIX}", unique_hex12()));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o666);
        match options.open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(PersistError::io("cannot create", path, e)),
        }
    }
}

/// 48 bits that differ per call and per process (a randomly keyed hash of a counter).
fn unique_hex12() -> String {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = KEYS.get_or_init(RandomState::new).build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!("{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

/// Make renames and removals in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| PersistError::io("cannot sync directory", dir, e))
    }
    // Windows cannot open a directory as a file; NTFS journals the rename itself.
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok::<(), PersistError>(())
    }
}

/// Every directory under `root` (backtest-kit's `./dump`) holding a document, split into
/// (namespace, entity) by backtest-kit's layout, paths starting with `root`'s own name.
fn entities_under(root: &Path) -> Result<Vec<(String, String)>> {
    let name = root
        .canonicalize()
        .map_err(|e| PersistError::io("list", root, e))?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut found = Vec::new();
    let mut pending = vec![(root.to_path_buf(), vec![name])];
    while let Some((dir, segments)) = pending.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| PersistError::io("list", &dir, e))?;
        let mut holds_documents = false;
        for entry in entries {
            let entry = entry.map_err(|e| PersistError::io("list", &dir, e))?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            // Symbolic links are not followed: a link to a directory is not part of the tree.
            let kind = entry
                .file_type()
                .map_err(|e| PersistError::io("list", &dir, e))?;
            if kind.is_dir() {
                let mut below = segments.clone();
                below.push(file_name);
                pending.push((entry.path(), below));
            } else if let Some(id) = file_name.strip_suffix(".json") {
                holds_documents |= crate::contract::validate_id(id).is_ok();
            }
        }
        if holds_documents {
            let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
            found.push(crate::contract::layout::split(&parts));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::conformance;
    use crate::contract::testutil::{rt, Client, TempDir};

    fn client(root: &Path, entity: &str) -> Client {
        Client(Arc::new(FileStore::new(root, entity).expect("store")))
    }

    #[test]
    fn keeps_the_store_contract() {
        let tmp = TempDir::new("conformance");
        rt().block_on(conformance::check(|base, entity| {
            client(&tmp.0.join(base), entity)
        }));
    }

    #[test]
    fn documents_are_files_in_persist_base_layout_and_no_temporary_stays() {
        let tmp = TempDir::new("layout");
        rt().block_on(async {
            let store = client(&tmp.0, "ex1/BTCUSDT/1m");
            store.init(true).await.expect("init");
            store.write("10", "{\"a\":1}").await.expect("write");
            let batch = [("11", "[1]"), ("12", "[2]")];
            store
                .write_many(&batch, WriteMode::ReplaceChanged, false)
                .await
                .expect("batch");
            let on_disk = fs::read_to_string(tmp.0.join("ex1/BTCUSDT/1m/10.json")).expect("file");
            assert_eq!(on_disk, "{\"a\":1}");
            let mut names: Vec<_> = fs::read_dir(tmp.0.join("ex1/BTCUSDT/1m"))
                .expect("ls")
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect();
            names.sort();
            assert_eq!(names, ["10.json", "11.json", "12.json"]);
        });
    }

    #[test]
    fn init_heals_directory_by_moving_invalid_documents_aside() {
        let tmp = TempDir::new("heal");
        rt().block_on(async {
            let store = client(&tmp.0, "e");
            store.init(true).await.expect("init");
            let dir = tmp.0.join("e");
            fs::write(dir.join("good.json"), "[1]").expect("good");
            fs::write(dir.join("empty.json"), "").expect("empty");
            fs::write(dir.join("torn.json"), "{\"a\":[1,").expect("torn");
            fs::write(dir.join(".tmp-000000000000-fresh.json"), "{").expect("fresh tmp");
            let stale = dir.join(".tmp-000000000001-old.json");
            fs::write(&stale, "{").expect("stale tmp");
            let old = SystemTime::now() - Duration::from_secs(3600);
            File::options()
                .write(true)
                .open(&stale)
                .and_then(|f| f.set_modified(old))
                .expect("age stale tmp");

            let report = store.init(true).await.expect("init again");
            assert_eq!(report.removed_invalid.len(), 2);
            assert_eq!(report.removed_stale_tmp, vec![stale.display().to_string()]);
            assert_eq!(store.keys().await.expect("keys"), vec!["good".to_owned()]);
            assert!(dir.join(".tmp-000000000000-fresh.json").exists());
            let aside: Vec<String> = fs::read_dir(&dir)
                .expect("ls")
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.contains(".json.corrupt-"))
                .collect();
            assert_eq!(aside.len(), 2, "{aside:?}");
            // A later init leaves what was moved aside alone.
            store.init(true).await.expect("third init");
            assert_eq!(fs::read_dir(&dir).expect("ls").count(), 4);
        });
    }

    #[test]
    fn invalid_ids_touch_nothing() {
        let tmp = TempDir::new("ids");
        rt().block_on(async {
            let store = client(&tmp.0, "e");
            store.init(true).await.expect("init");
            for id in ["../x", "", ".tmp-1", "a/b"] {
                let err = store.write(id, "1").await.expect_err(id);
                assert_eq!(err.code(), "PERSIST_INVALID_ID");
            }
            assert_eq!(fs::read_dir(&tmp.0).expect("ls").count(), 1);
            assert_eq!(fs::read_dir(tmp.0.join("e")).expect("ls").count(), 0);
        });
    }
}
