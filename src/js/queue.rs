//! One completion queue per JS environment for every operation.
//!
//! A napi `async fn` creates a threadsafe function for every call, which costs the JS thread
//! more than a point read itself. Instead the facade numbers each request, the backend runs it
//! where it chooses, and results are pushed onto this queue; a single (weak) threadsafe
//! function wakes JS once per batch, and JS drains every completed request in one call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::Function;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;

use super::{NativeFailure, Settled};
use crate::exec::lock;

/// Completed requests, as parallel arrays (cheaper to cross than one object each): for each
/// request either its value or its failure record.
#[napi(object, object_from_js = false)]
pub struct CompletedBatch {
    pub requests: Vec<u32>,
    #[napi(ts_type = "Array<unknown>")]
    pub values: Vec<Option<super::Answer>>,
    pub failures: Vec<Option<NativeFailure>>,
}

type Wake = ThreadsafeFunction<(), (), (), Status, false, true>;

pub struct QueueInner {
    done: Mutex<Vec<(u32, Settled)>>,
    /// Set when a wake-up could not be queued; the next completion then tries again, so one
    /// failed call cannot leave completions waiting for a drain that never comes.
    wake_failed: AtomicBool,
    wake: Wake,
}

impl QueueInner {
    /// Record a result; wake JS when the queue was empty (a drain is already due otherwise) or
    /// the last wake-up failed.
    pub fn complete(&self, request: u32, outcome: Settled) {
        let must_wake = {
            let mut done = lock(&self.done);
            done.push((request, outcome));
            done.len() == 1 || self.wake_failed.load(Ordering::Acquire)
        };
        if must_wake {
            let status = self.wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
            self.wake_failed
                .store(status != Status::Ok, Ordering::Release);
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

    pub fn settle(mut self, outcome: Settled) {
        self.settled = true;
        self.queue.complete(self.request, outcome);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.settled {
            self.queue.complete(
                self.request,
                Err(NativeFailure {
                    code: "PERSIST_IO".into(),
                    message: "internal error: the operation ended without a result".into(),
                    errno: None,
                    path: None,
                }),
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
                wake_failed: AtomicBool::new(false),
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
            values: Vec::with_capacity(done.len()),
            failures: Vec::with_capacity(done.len()),
        };
        for (request, outcome) in done {
            batch.requests.push(request);
            match outcome {
                Ok(value) => {
                    batch.values.push(Some(value));
                    batch.failures.push(None);
                }
                Err(failure) => {
                    batch.values.push(None);
                    batch.failures.push(Some(failure));
                }
            }
        }
        batch
    }
}
