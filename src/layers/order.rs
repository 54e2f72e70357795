//! Issue order per id, on every backend: a request that reads or writes an id starts only after
//! every write of that id issued before it has finished. Backends run requests on several
//! threads (file write threads, a runtime, a server connection), so without this a later write
//! could land first, or a read could miss a write issued before it.
//!
//! Each entity (a backend's [`Store::scope`]) keeps the writes that have not finished as nodes;
//! a request depends on the last unfinished write of each id it touches and starts when those
//! have finished. A request with no such write (nearly all) starts at once. A whole-document
//! write of one id that arrives while the previous write of that id is still waiting to start
//! takes that write's place: the earlier one is superseded and settles with it, so a burst of
//! writes to one id costs two writes, not one per call in a row.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use crate::contract::{Reply, Request, Response, Scope, Storage, Store, WriteMode};
use crate::error::{PersistError, Result};
use crate::exec::lock;

type NodeId = u64;

/// The ids a request touches, and whether it changes them.
enum Footprint {
    None,
    Read(Vec<String>),
    ReadAll,
    Write(Vec<String>),
    WriteAll,
}

/// Whether `request` may change stored documents (and so is ordered like a write).
fn changes(request: &Request) -> bool {
    matches!(
        request,
        Request::Write { .. }
            | Request::Remove { .. }
            | Request::RemoveAll
            // A read that heals may move a document aside: later writes of its ids wait for it.
            | Request::Read { heal: true, .. }
    )
}

impl Footprint {
    fn of(request: &Request) -> Self {
        match request {
            Request::Init { .. } => Footprint::None,
            Request::Read { ids, .. } if changes(request) => Footprint::Write(ids.clone()),
            Request::Read { ids, .. } | Request::Has { ids } => Footprint::Read(ids.clone()),
            Request::Keys | Request::Scan => Footprint::ReadAll,
            Request::Write { docs, .. } => {
                Footprint::Write(docs.iter().map(|(id, _)| id.clone()).collect())
            }
            Request::Remove { id } => Footprint::Write(vec![id.clone()]),
            Request::RemoveAll => Footprint::WriteAll,
        }
    }

    fn is_write(&self) -> bool {
        matches!(self, Footprint::Write(_) | Footprint::WriteAll)
    }
}

/// A request not yet handed to its backend, or a write handed over and not finished.
struct Node {
    /// Unfinished writes this request waits for.
    blockers: usize,
    /// Requests waiting for this write.
    dependents: Vec<NodeId>,
    /// What to start; taken when started.
    start: Option<(Arc<dyn Store>, Request, Reply)>,
    footprint: Footprint,
    /// Replies of writes this one replaced before they started; they settle with it.
    superseded: Vec<Reply>,
}

#[derive(Default)]
struct EntityQueue {
    next: NodeId,
    nodes: HashMap<NodeId, Node>,
    /// The last unfinished write of each id.
    last_write: HashMap<String, NodeId>,
    /// The last unfinished whole-entity write.
    last_write_all: Option<NodeId>,
    /// Every unfinished write, for whole-entity reads and writes.
    writes: HashSet<NodeId>,
}

impl EntityQueue {
    /// The unfinished writes a request with `footprint` must wait for.
    fn dependencies(&self, footprint: &Footprint) -> Vec<NodeId> {
        let mut deps: Vec<NodeId> = match footprint {
            Footprint::None => return Vec::new(),
            Footprint::ReadAll | Footprint::WriteAll => self.writes.iter().copied().collect(),
            Footprint::Read(ids) | Footprint::Write(ids) => ids
                .iter()
                .filter_map(|id| self.last_write.get(id).copied())
                .chain(self.last_write_all)
                .collect(),
        };
        deps.sort_unstable();
        deps.dedup();
        deps
    }

    /// The node of the write of `id` that `request` may replace: a whole-document write of that
    /// one id, not started yet, no more durable than `request`.
    fn replaceable(&self, request: &Request) -> Option<NodeId> {
        let id = single_replace(request)?;
        let node_id = *self.last_write.get(id)?;
        let node = self.nodes.get(&node_id)?;
        let (_, waiting, _) = node.start.as_ref()?;
        let replaceable = single_replace(waiting) == Some(id)
            && (durable(request) || !durable(waiting))
            && self.last_write_all.is_none_or(|all| all < node_id);
        replaceable.then_some(node_id)
    }

    fn is_idle(&self) -> bool {
        self.nodes.is_empty()
    }
}

fn single_replace(request: &Request) -> Option<&str> {
    match request {
        Request::Write {
            docs,
            mode: WriteMode::Replace,
            ..
        } if docs.len() == 1 => docs.first().map(|(id, _)| id.as_str()),
        _ => None,
    }
}

fn durable(request: &Request) -> bool {
    matches!(request, Request::Write { durable: true, .. })
}

fn scopes() -> &'static Mutex<HashMap<Arc<Scope>, EntityQueue>> {
    static SCOPES: OnceLock<Mutex<HashMap<Arc<Scope>, EntityQueue>>> = OnceLock::new();
    SCOPES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Whether `request` may run now on the calling thread: no unfinished write it depends on.
pub fn is_clear(store: &dyn Store, request: &Request) -> bool {
    let scopes = lock(scopes());
    match scopes.get(store.scope()) {
        None => true,
        Some(scope) => scope.is_idle() || scope.dependencies(&Footprint::of(request)).is_empty(),
    }
}

/// A request ready to hand to its backend, once the lock is released.
struct Start {
    /// The write's node, to finish when it replies; `None` for reads.
    node: Option<NodeId>,
    store: Arc<dyn Store>,
    request: Request,
    reply: Reply,
    superseded: Vec<Reply>,
}

/// Start `request` now, or once the writes issued before it that it depends on have finished.
pub fn submit(store: Arc<dyn Store>, request: Request, reply: Reply) {
    let key = Arc::clone(store.scope());
    let mut all = lock(scopes());
    if !changes(&request) && all.get(&key).is_none_or(EntityQueue::is_idle) {
        // Nothing pending and nothing to track: the common read starts untracked.
        drop(all);
        return store.submit(request, reply);
    }
    let scope = all.entry(Arc::clone(&key)).or_default();
    let start = enqueue(scope, store, request, reply);
    drop(all);
    if let Some(start) = start {
        launch(key, start);
    }
}

/// Record `request` in `scope`; the start to make now, if it depends on nothing.
fn enqueue(
    scope: &mut EntityQueue,
    store: Arc<dyn Store>,
    request: Request,
    reply: Reply,
) -> Option<Start> {
    if let Some(node) = scope
        .replaceable(&request)
        .and_then(|n| scope.nodes.get_mut(&n))
    {
        if let Some((_, _, earlier)) = node.start.replace((store, request, reply)) {
            node.superseded.push(earlier);
        }
        return None;
    }
    let footprint = Footprint::of(&request);
    let deps = scope.dependencies(&footprint);
    if deps.is_empty() && !footprint.is_write() {
        return Some(Start {
            node: None,
            store,
            request,
            reply,
            superseded: Vec::new(),
        });
    }
    let id = scope.next;
    scope.next += 1;
    for dep in &deps {
        if let Some(node) = scope.nodes.get_mut(dep) {
            node.dependents.push(id);
        }
    }
    match &footprint {
        Footprint::Write(ids) => {
            for written in ids {
                scope.last_write.insert(written.clone(), id);
            }
            scope.writes.insert(id);
        }
        Footprint::WriteAll => {
            scope.last_write_all = Some(id);
            scope.writes.insert(id);
        }
        _ => {}
    }
    scope.nodes.insert(
        id,
        Node {
            blockers: deps.len(),
            dependents: Vec::new(),
            start: Some((store, request, reply)),
            footprint,
            superseded: Vec::new(),
        },
    );
    if deps.is_empty() {
        take_start(scope, id)
    } else {
        None
    }
}

/// The start of node `id`, whose blockers have all finished. A read leaves the scope now
/// (nothing depends on reads); a write stays until it finishes.
fn take_start(scope: &mut EntityQueue, id: NodeId) -> Option<Start> {
    let node = scope.nodes.get_mut(&id)?;
    let (store, request, reply) = node.start.take()?;
    let superseded = std::mem::take(&mut node.superseded);
    let is_write = node.footprint.is_write();
    if !is_write {
        scope.nodes.remove(&id);
    }
    Some(Start {
        node: is_write.then_some(id),
        store,
        request,
        reply,
        superseded,
    })
}

/// Hand a request to its backend. A write's reply first finishes its node, then settles the
/// writes it superseded and itself, then starts what waited for it.
fn launch(key: Arc<Scope>, start: Start) {
    let Start {
        node,
        store,
        request,
        reply,
        superseded,
    } = start;
    let Some(node) = node else {
        return store.submit(request, reply);
    };
    let mut running = Running {
        key,
        node,
        superseded,
        done: false,
    };
    let finished: Reply = Box::new(move |result: Result<Response>| running.finish(result, reply));
    store.submit(request, finished);
}

/// A write handed to its backend. Its node is released when the backend replies, or when the
/// reply is dropped without being called (a task that panicked, a queue that went away): an id
/// must never stay blocked behind a write that will not finish.
struct Running {
    key: Arc<Scope>,
    node: NodeId,
    superseded: Vec<Reply>,
    done: bool,
}

impl Running {
    fn finish(&mut self, result: Result<Response>, reply: Reply) {
        self.done = true;
        let next = finish(&self.key, self.node);
        for earlier in self.superseded.drain(..) {
            earlier(duplicate(&result));
        }
        reply(result);
        for start in next {
            launch(Arc::clone(&self.key), start);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let next = finish(&self.key, self.node);
        for earlier in self.superseded.drain(..) {
            earlier(Err(PersistError::Task(
                "the write that superseded this one ended without a result".into(),
            )));
        }
        for start in next {
            launch(Arc::clone(&self.key), start);
        }
    }
}

/// Resolves once no request of an entity of `storage` is pending (queued or running writes), so
/// that closing a database or connection waits for what was issued before it.
pub async fn settled(storage: &Storage) {
    loop {
        let busy = lock(scopes())
            .iter()
            .any(|(key, queue)| key.storage == *storage && !queue.is_idle());
        if !busy {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Forget write `node` and collect the requests that waited only for it.
fn finish(key: &Arc<Scope>, node: NodeId) -> Vec<Start> {
    let mut all = lock(scopes());
    let Some(scope) = all.get_mut(key) else {
        return Vec::new();
    };
    let Some(done) = scope.nodes.remove(&node) else {
        return Vec::new();
    };
    match &done.footprint {
        Footprint::Write(ids) => {
            for id in ids {
                if scope.last_write.get(id) == Some(&node) {
                    scope.last_write.remove(id);
                }
            }
        }
        Footprint::WriteAll if scope.last_write_all == Some(node) => scope.last_write_all = None,
        _ => {}
    }
    scope.writes.remove(&node);
    let mut ready = Vec::new();
    for dependent in done.dependents {
        if let Some(waiting) = scope.nodes.get_mut(&dependent) {
            waiting.blockers -= 1;
            if waiting.blockers == 0 {
                ready.push(dependent);
            }
        }
    }
    let starts = ready
        .into_iter()
        .filter_map(|id| take_start(scope, id))
        .collect();
    if scope.is_idle() {
        all.remove(key);
    }
    starts
}

/// The outcome of a write for a write it superseded.
fn duplicate(result: &Result<Response>) -> Result<Response> {
    match result {
        Ok(Response::Written(count)) => Ok(Response::Written(*count)),
        Ok(_) => Ok(Response::Done),
        Err(e) => Err(e.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::oneshot;

    use crate::backends::file::FileStore;
    use crate::contract::testutil::{rt, Client, TempDir};
    use crate::contract::{Request, Response, Store, WriteMode};
    use crate::layers;

    /// Submit a one-document write without waiting; the receiver gets its outcome.
    fn write(store: &Arc<dyn Store>, id: &str, text: String) -> oneshot::Receiver<bool> {
        let (done, outcome) = oneshot::channel();
        let request = Request::Write {
            docs: vec![(id.to_owned(), text)],
            mode: WriteMode::Replace,
            durable: true,
        };
        layers::submit(
            store,
            request,
            Box::new(move |r| {
                let _ = done.send(matches!(r, Ok(Response::Written(1))));
            }),
        );
        outcome
    }

    /// A file store of entity `e` under `tmp`, its directory made.
    async fn initialised_store(tmp: &TempDir) -> Arc<dyn Store> {
        let store: Arc<dyn Store> = Arc::new(FileStore::new(&tmp.0, "e").expect("store"));
        Client(Arc::clone(&store)).init(true).await.expect("init");
        store
    }

    #[test]
    fn the_last_write_issued_wins_whatever_the_sizes() {
        let tmp = TempDir::new("order");
        rt().block_on(async {
            let store = initialised_store(&tmp).await;
            for trial in 0..100 {
                let large = format!("\"{trial}{}\"", "L".repeat(256 * 1024));
                let first = write(&store, "x", large);
                let second = write(&store, "x", format!("\"{trial}s\""));
                assert!(first.await.expect("first settled"));
                assert!(second.await.expect("second settled"));
                let stored = Client(Arc::clone(&store)).read("x").await.expect("read");
                assert_eq!(stored, Some(format!("\"{trial}s\"")), "trial {trial}");
            }
        });
    }

    #[test]
    fn a_burst_to_one_id_is_its_first_and_last_write_and_all_settle() {
        let tmp = TempDir::new("burst");
        rt().block_on(async {
            let store = initialised_store(&tmp).await;
            // Another store of the same entity shares the order.
            let twin = initialised_store(&tmp).await;
            let outcomes: Vec<_> = (0..500)
                .map(|i| {
                    write(
                        if i % 2 == 0 { &store } else { &twin },
                        "hot",
                        i.to_string(),
                    )
                })
                .collect();
            for outcome in outcomes {
                assert!(outcome.await.expect("settled"));
            }
            let stored = Client(Arc::clone(&store)).read("hot").await.expect("read");
            assert_eq!(stored.as_deref(), Some("499"));
            // Nothing is left behind for the entity once all settled.
            assert!(super::lock(super::scopes()).get(store.scope()).is_none());
        });
    }
}
