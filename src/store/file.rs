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

use super::{entity_segments, validate_id, InitReport, PersistStore, TMP_PREFIX};
use crate::error::{PersistError, Result};
use crate::json::is_valid_json;

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
pub fn run_on_write_threads(job: WriteJob) -> std::result::Result<(), WriteJob> {
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
                        let next = receiver
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .recv();
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
        Some(sender) => sender
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .send(job)
            .map_err(|std::sync::mpsc::SendError(job)| job),
        None => Err(job),
    }
}

#[derive(Debug, Clone)]
pub struct FileStore {
    dir: Arc<PathBuf>,
}

impl FileStore {
    /// No I/O: the directory is created by `init`.
    pub fn new(base_dir: impl AsRef<Path>, entity_name: &str) -> Result<Self> {
        let mut dir = base_dir.as_ref().to_path_buf();
        dir.extend(entity_segments(entity_name)?);
        Ok(FileStore { dir: Arc::new(dir) })
    }

    pub fn directory(&self) -> &Path {
        &self.dir
    }

    /// `write` on the calling thread, for callers already on a blocking thread.
    pub fn write_blocking(&self, id: &str, json: &str) -> Result<()> {
        validate_id(id)?;
        write_atomic(&self.dir, id, json.as_bytes())
    }

    fn doc_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{DOC_SUFFIX}"))
    }

    /// Run blocking filesystem work off the async worker threads.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Path) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let dir = Arc::clone(&self.dir);
        tokio::task::spawn_blocking(move || work(&dir))
            .await
            .map_err(|e| PersistError::Task(e.to_string()))?
    }
}

impl PersistStore for FileStore {
    async fn init(&self) -> Result<InitReport> {
        self.blocking(init_directory).await
    }

    async fn read(&self, id: &str) -> Result<Option<String>> {
        validate_id(id)?;
        // Reading one small document from the page cache costs less than a hop to the
        // blocking pool, so point reads run where the future is polled.
        let path = self.doc_path(id);
        match fs::read(&path) {
            // Node decodes invalid UTF-8 as U+FFFD before JSON.parse; do the same.
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PersistError::io("cannot read", path, e)),
        }
    }

    async fn has(&self, id: &str) -> Result<bool> {
        validate_id(id)?;
        let path = self.doc_path(id);
        match fs::metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(PersistError::io("cannot stat", path, e)),
        }
    }

    async fn write(&self, id: &str, json: String) -> Result<()> {
        validate_id(id)?;
        let store = self.clone();
        let id = id.to_owned();
        self.blocking(move |_| store.write_blocking(&id, &json))
            .await
    }

    async fn remove(&self, id: &str) -> Result<()> {
        validate_id(id)?;
        let path = self.doc_path(id);
        self.blocking(move |dir| {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => return Err(PersistError::NotFound),
                Err(e) => return Err(PersistError::io("cannot remove", path, e)),
            }
            sync_dir(dir)
        })
        .await
    }

    async fn remove_all(&self) -> Result<()> {
        self.blocking(|dir| {
            for id in list_ids(dir)? {
                let path = dir.join(format!("{id}{DOC_SUFFIX}"));
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    // Removed concurrently: the goal is reached all the same.
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(PersistError::io("cannot remove", path, e)),
                }
            }
            sync_dir(dir)
        })
        .await
    }

    async fn keys(&self) -> Result<Vec<String>> {
        self.blocking(list_ids).await
    }
}

/// Ids of the regular `*.json` files in `dir`, skipping atomic-write leftovers.
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
        if validate_id(id).is_ok() && entry.file_type().is_ok_and(|t| t.is_file()) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

/// First-use work for an entity: create its directory, sweep stale tmp files, and remove
/// documents that `JSON.parse` would reject (as `PersistBase` does, but without its 5 s of
/// unlink retries: a document that cannot be removed is reported and kept).
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
        match fs::remove_file(&path) {
            Ok(()) if is_tmp => report.removed_stale_tmp.push(shown),
            Ok(()) => report.removed_invalid.push(shown),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
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

fn write_atomic(dir: &Path, id: &str, bytes: &[u8]) -> Result<()> {
    let target = dir.join(format!("{id}{DOC_SUFFIX}"));
    let (tmp, mut file) = create_tmp(dir, id)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_data())
        .map_err(|e| PersistError::io("cannot write", &tmp, e))
        .and_then(|()| {
            drop(file);
            fs::rename(&tmp, &target)
                .map_err(|e| PersistError::io("cannot rename into", &target, e))
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::{rt, TempDir};

    #[test]
    fn round_trip_uses_persist_base_layout() {
        let tmp = TempDir::new("layout");
        rt().block_on(async {
            let store = FileStore::new(&tmp.0, "ex1/BTCUSDT/1m").expect("store");
            store.init().await.expect("init");
            store.write("10", "{\"a\":1}".into()).await.expect("write");
            let on_disk = fs::read_to_string(tmp.0.join("ex1/BTCUSDT/1m/10.json")).expect("file");
            assert_eq!(on_disk, "{\"a\":1}");
            assert_eq!(
                store.read("10").await.expect("read").as_deref(),
                Some("{\"a\":1}")
            );
            assert!(store.has("10").await.expect("has"));
            assert_eq!(store.read("11").await.expect("read"), None);
            assert!(!store.has("11").await.expect("has"));
            assert_eq!(store.keys().await.expect("keys"), vec!["10".to_owned()]);
            store.remove("10").await.expect("remove");
            assert!(matches!(
                store.remove("10").await,
                Err(PersistError::NotFound)
            ));
        });
    }

    #[test]
    fn init_heals_directory() {
        let tmp = TempDir::new("heal");
        rt().block_on(async {
            let store = FileStore::new(&tmp.0, "e").expect("store");
            store.init().await.expect("init");
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

            let report = store.init().await.expect("init again");
            assert_eq!(report.removed_invalid.len(), 2);
            assert_eq!(report.removed_stale_tmp, vec![stale.display().to_string()]);
            let mut keys = store.keys().await.expect("keys");
            keys.sort();
            assert_eq!(keys, vec!["good".to_owned()]);
            assert!(dir.join(".tmp-000000000000-fresh.json").exists());
        });
    }

    #[test]
    fn invalid_ids_touch_nothing() {
        let tmp = TempDir::new("ids");
        rt().block_on(async {
            let store = FileStore::new(&tmp.0, "e").expect("store");
            store.init().await.expect("init");
            for id in ["../x", "", ".tmp-1", "a/b"] {
                let err = store.write(id, "1".into()).await.expect_err(id);
                assert_eq!(err.code(), "PERSIST_INVALID_ID");
            }
            assert_eq!(fs::read_dir(&tmp.0).expect("ls").count(), 1);
            assert_eq!(fs::read_dir(tmp.0.join("e")).expect("ls").count(), 0);
        });
    }

    #[test]
    fn concurrent_writes_to_one_id_leave_one_whole_version() {
        let tmp = TempDir::new("race");
        rt().block_on(async {
            let store = FileStore::new(&tmp.0, "e").expect("store");
            store.init().await.expect("init");
            let writes = (0..200)
                .map(|i| {
                    let store = store.clone();
                    tokio::spawn(async move { store.write("k", format!("[{i}]")).await })
                })
                .collect::<Vec<_>>();
            for w in writes {
                w.await.expect("join").expect("write");
            }
            let text = store.read("k").await.expect("read").expect("present");
            assert!(is_valid_json(text.as_bytes()));
            assert_eq!(store.keys().await.expect("keys"), vec!["k".to_owned()]);
        });
    }
}
