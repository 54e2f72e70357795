//! What wraps every backend's store: issue order per id (`order`) and encryption at rest or the
//! refusal of envelope-shaped values (`sealed`). Requests enter through [`submit`], [`call`] or
//! [`in_place`], which validate them and keep issue order.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::contract::{Reply, Request, Response, Store};
use crate::error::{PersistError, Result};

pub mod order;
pub mod sealed;

/// Validate `request`'s ids, then hand it to `store` once the writes of its ids issued before
/// it have finished (issue order, see `order`).
pub fn submit(store: &Arc<dyn Store>, request: Request, reply: Reply) {
    match request.validate() {
        Ok(()) => order::submit(Arc::clone(store), request, reply),
        Err(e) => reply(Err(e)),
    }
}

/// `submit` for callers that can wait: the core's own tests and tools.
pub async fn call(store: &Arc<dyn Store>, request: Request) -> Result<Response> {
    let (sender, receiver) = oneshot::channel();
    submit(
        store,
        request,
        Box::new(move |result| drop(sender.send(result))),
    );
    receiver
        .await
        .map_err(|_| PersistError::Task("the request ended without a result".into()))?
}

/// `in_place` after validation; `None` when the backend does not serve it in place, or when
/// a write issued before it to one of its ids has not finished.
pub fn in_place(store: &Arc<dyn Store>, request: &Request) -> Option<Result<Response>> {
    if let Err(e) = request.validate() {
        return Some(Err(e));
    }
    if !order::is_clear(store.as_ref(), request) {
        return None;
    }
    store.in_place(request)
}
