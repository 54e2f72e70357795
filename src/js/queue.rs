//! One completion queue per JS environment for the hot operations (read, has, write).
//!
//! A napi `async fn` creates a threadsafe function for every call, which costs the JS thread
//! more than a point read itself. Instead the facade numbers each request, the work runs on the
//! tokio runtime, and results are pushed onto this queue; a single (weak) threadsafe function
//! wakes JS once per batch, and JS drains every completed request in one call.

use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::Function;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;

/// The result of one request, in the shape JS settles it.
pub enum Outcome {
    Null,
    Text(String),
    Bool(bool),
    /// `"CODE: message"`, as the async methods reject.
    Error(String),
}

/// Completed requests, as parallel arrays (cheaper to cross than one object each).
#[napi(object)]
pub struct CompletedBatch {
    pub requests: Vec<u32>,
    /// 0 null, 1 text, 2 false, 3 true, 4 error (text holds "CODE: message").
    pub kinds: Vec<u32>,
    pub texts: Vec<Option<String>>,
}

type Wake = ThreadsafeFunction<(), (), (), Status, false, true>;

pub struct QueueInner {
    done: Mutex<Vec<(u32, Outcome)>>,
    wake: Wake,
}

fn lock(done: &Mutex<Vec<(u32, Outcome)>>) -> MutexGuard<'_, Vec<(u32, Outcome)>> {
    // A plain Vec: nothing to repair if a holder panicked.
    done.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl QueueInner {
    /// Record a result; wake JS only when the queue was empty (a drain is already due otherwise).
    pub fn complete(&self, request: u32, outcome: Outcome) {
        let was_empty = {
            let mut done = lock(&self.done);
            done.push((request, outcome));
            done.len() == 1
        };
        if was_empty {
            self.wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

/// A request that must be settled exactly once. Dropped unsettled (its task panicked, or the
/// thread that held it went away), it settles as an error so the JS promise never hangs.
pub struct Pending {
    queue: Arc<QueueInner>,
    request: u32,
    settled: bool,
}

impl Pending {
    pub fn new(queue: Arc<QueueInner>, request: u32) -> Self {
        Pending {
            queue,
            request,
            settled: false,
        }
    }

    pub fn settle(mut self, outcome: Outcome) {
        self.settled = true;
        self.queue.complete(self.request, outcome);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.settled {
            self.queue.complete(
                self.request,
                Outcome::Error(
                    "PERSIST_IO: internal error: the operation ended without a result".into(),
                ),
            );
        }
    }
}

#[napi]
pub struct CompletionQueue {
    pub(crate) inner: Arc<QueueInner>,
}

#[napi]
impl CompletionQueue {
    /// `onReady` is called (with no arguments) when completions wait to be drained. The wake-up
    /// is weak: it does not keep the process alive by itself; the facade does while requests
    /// are outstanding.
    #[napi(constructor)]
    pub fn new(on_ready: Function<(), ()>) -> napi::Result<Self> {
        let wake = on_ready
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        Ok(CompletionQueue {
            inner: Arc::new(QueueInner {
                done: Mutex::new(Vec::new()),
                wake,
            }),
        })
    }

    /// Every request completed since the last drain.
    #[napi]
    pub fn drain(&self) -> CompletedBatch {
        let done = std::mem::take(&mut *lock(&self.inner.done));
        let mut batch = CompletedBatch {
            requests: Vec::with_capacity(done.len()),
            kinds: Vec::with_capacity(done.len()),
            texts: Vec::with_capacity(done.len()),
        };
        for (request, outcome) in done {
            let (kind, text) = match outcome {
                Outcome::Null => (0, None),
                Outcome::Text(text) => (1, Some(text)),
                Outcome::Bool(false) => (2, None),
                Outcome::Bool(true) => (3, None),
                Outcome::Error(message) => (4, Some(message)),
            };
            batch.requests.push(request);
            batch.kinds.push(kind);
            batch.texts.push(text);
        }
        batch
    }
}
