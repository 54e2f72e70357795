//! Where the core runs work: one tokio runtime of its own, so any thread (the JS thread
//! included) can hand work to a backend, and the poison-tolerant lock every shared map uses.

use std::future::Future;
use std::sync::{Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::runtime::{Builder, Runtime};

use crate::error::{PersistError, Result};

/// The core's runtime: two workers (this is I/O-bound work on small machines), built on first use.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bkrs-runtime")
            .enable_all()
            .build()
            // Without a runtime no backend can run at all; this fails only when the process
            // cannot start threads.
            .unwrap_or_else(|e| panic!("backtest-kit-rs cannot start its runtime: {e}"))
    })
}

/// Run `future` on the runtime; its output is dropped (callers report through their reply).
pub fn spawn(future: impl Future<Output = ()> + Send + 'static) {
    drop(runtime().spawn(future));
}

/// Run blocking `work` on the runtime's blocking pool and await its result.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    runtime()
        .spawn_blocking(work)
        .await
        .map_err(|e| PersistError::Task(e.to_string()))?
}

/// Lock a mutex whose data stays consistent even if a holder panicked (maps, pools, queues).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `lock` for readers of an `RwLock`.
pub fn read<T>(rwlock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    rwlock
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `lock` for the writer of an `RwLock`.
pub fn write<T>(rwlock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    rwlock
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
