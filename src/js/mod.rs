//! The napi binding: one class over any backend the core's registry knows. Each method turns
//! its arguments into a core `Request`, and each outcome into a JS value or a failure record
//! (code, message, errno, path). It names no backend; JSON encoding, id normalisation and key
//! ordering live in the hand-written `index.js` facade.

mod queue;

use std::sync::Arc;

use napi::bindgen_prelude::{Null, ToNapiValue, TypeName, ValueType};
use napi::sys;
use napi_derive::napi;
use serde_json::Value;

pub use queue::CompletionQueue;
use queue::{Pending, QueueInner};

use crate::contract::{Doc, InitReport, Request, Response, Store, WriteMode};
use crate::error::{Op, PersistError};
use crate::{layers, registry};

/// An error's code as napi's status, so synchronous throws carry `err.code` (napi cannot set a
/// custom code on an async rejection, napi-rs#1632, hence failure records for those).
pub struct PersistCode(String);

impl AsRef<str> for PersistCode {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A failed operation as data: the facade builds its `PersistError` from these fields.
#[napi(object, object_from_js = false)]
pub struct NativeFailure {
    pub code: String,
    /// In backtest-kit's wording for the operation (`Failed to write entity e:id: …`).
    pub message: String,
    /// The operating system's error number, where there is one.
    pub errno: Option<i32>,
    /// The file or database concerned, where there is one.
    pub path: Option<String>,
}

impl NativeFailure {
    fn new(err: &PersistError, op: Op, entity: &str, id: Option<&str>) -> Self {
        NativeFailure {
            code: err.code().to_owned(),
            message: err.describe(op, entity, id),
            errno: err.errno(),
            path: err.path().map(|p| p.display().to_string()),
        }
    }

    fn corrupt(detail: String, entity: &str, id: &str) -> Self {
        NativeFailure {
            code: "PERSIST_CORRUPT".to_owned(),
            message: format!("Failed to read entity {entity}:{id}: {detail}"),
            errno: None,
            path: None,
        }
    }

    fn into_error(self) -> napi::Error<PersistCode> {
        napi::Error::new(PersistCode(self.code), self.message)
    }
}

fn coded(err: PersistError, op: Op, entity: &str) -> napi::Error<PersistCode> {
    NativeFailure::new(&err, op, entity, None).into_error()
}

/// Errors of class-level calls (options, stats, close), which concern no entity.
fn config_error(err: PersistError) -> napi::Error<PersistCode> {
    napi::Error::new(PersistCode(err.code().to_owned()), err.to_string())
}

#[napi(object, object_from_js = false)]
pub struct NativeInitReport {
    pub removed_stale_tmp: Vec<String>,
    pub removed_invalid: Vec<String>,
    pub failed_removals: Vec<String>,
}

impl From<InitReport> for NativeInitReport {
    fn from(r: InitReport) -> Self {
        NativeInitReport {
            removed_stale_tmp: r.removed_stale_tmp,
            removed_invalid: r.removed_invalid,
            failed_removals: r.failed_removals,
        }
    }
}

/// A core response as JS sees it: documents as `string | null | NativeFailure` (corrupt),
/// flags as booleans, a write as the number of documents changed, a scan as `[ids, texts]`.
pub struct Answer {
    response: Response,
    entity: Arc<str>,
}

impl TypeName for Answer {
    fn type_name() -> &'static str {
        "unknown"
    }

    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ToNapiValue for Answer {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        match val.response {
            Response::Init(report) => NativeInitReport::to_napi_value(env, report.into()),
            Response::Docs(docs) => {
                let values: Vec<DocValue> = docs
                    .into_iter()
                    .map(|doc| match doc {
                        Doc::Missing => DocValue::Missing,
                        Doc::Text(text) => DocValue::Text(text),
                        Doc::Corrupt { id, detail } => {
                            DocValue::Corrupt(NativeFailure::corrupt(detail, &val.entity, &id))
                        }
                    })
                    .collect();
                Vec::to_napi_value(env, values)
            }
            Response::Flags(flags) => Vec::to_napi_value(env, flags),
            Response::Written(count) => {
                u32::to_napi_value(env, count.try_into().unwrap_or(u32::MAX))
            }
            Response::Done => Null::to_napi_value(env, Null),
            Response::Keys(keys) => Vec::to_napi_value(env, keys),
            Response::Entries(entries) => {
                let (ids, texts): (Vec<String>, Vec<String>) = entries.into_iter().unzip();
                Vec::to_napi_value(env, vec![ids, texts])
            }
        }
    }
}

enum DocValue {
    Missing,
    Text(String),
    Corrupt(NativeFailure),
}

impl ToNapiValue for DocValue {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        match val {
            DocValue::Missing => Null::to_napi_value(env, Null),
            DocValue::Text(text) => String::to_napi_value(env, text),
            DocValue::Corrupt(failure) => NativeFailure::to_napi_value(env, failure),
        }
    }
}

/// A request's outcome, ready for JS.
pub type Settled = Result<Answer, NativeFailure>;

#[napi]
pub struct NativeStore {
    store: Arc<dyn Store>,
    entity: Arc<str>,
    queue: Arc<QueueInner>,
}

impl NativeStore {
    /// Send `request` to the backend; its outcome settles `request_no` on the completion queue.
    /// `id` names the document in error messages (single-document operations).
    fn submit(&self, request_no: u32, op: Op, id: Option<String>, request: Request) {
        let pending = Pending::new(Arc::clone(&self.queue), request_no);
        let entity = Arc::clone(&self.entity);
        layers::submit(
            &self.store,
            request,
            Box::new(move |result| pending.settle(settle(result, op, entity, id.as_deref()))),
        );
    }

    fn in_place(
        &self,
        op: Op,
        id: Option<&str>,
        request: &Request,
    ) -> napi::Result<Option<Answer>, PersistCode> {
        match layers::in_place(&self.store, request) {
            None => Ok(None),
            Some(result) => settle(result, op, Arc::clone(&self.entity), id)
                .map(Some)
                .map_err(NativeFailure::into_error),
        }
    }
}

fn settle(
    result: crate::error::Result<Response>,
    op: Op,
    entity: Arc<str>,
    id: Option<&str>,
) -> Settled {
    match result {
        Ok(response) => Ok(Answer { response, entity }),
        Err(e) => Err(NativeFailure::new(&e, op, &entity, id)),
    }
}

/// The id a one-document request names, for its error messages.
fn single(ids: &[String]) -> Option<String> {
    match ids {
        [id] => Some(id.clone()),
        _ => None,
    }
}

fn write_mode(mode: &str) -> napi::Result<WriteMode, PersistCode> {
    match mode {
        "replace" => Ok(WriteMode::Replace),
        "changed" => Ok(WriteMode::ReplaceChanged),
        "insert" => Ok(WriteMode::InsertOnly),
        other => Err(napi::Error::new(
            PersistCode("PERSIST_INVALID_CONFIG".to_owned()),
            format!("write mode must be \"replace\", \"changed\" or \"insert\", got {other:?}"),
        )),
    }
}

fn options(json: &str) -> crate::error::Result<Value> {
    serde_json::from_str(json).map_err(|e| PersistError::InvalidConfig {
        detail: format!("options are not JSON: {e}"),
    })
}

#[napi]
impl NativeStore {
    /// A store of backend `kind` for (entityName, baseDir); options as JSON. No I/O.
    #[napi(factory)]
    pub fn open(
        kind: String,
        entity_name: String,
        base_dir: String,
        options_json: String,
        queue: &CompletionQueue,
    ) -> napi::Result<Self, PersistCode> {
        let store = options(&options_json)
            .and_then(|options| registry::open(&kind, &entity_name, &base_dir, &options))
            .map_err(|e| coded(e, Op::Init, &entity_name))?;
        Ok(NativeStore {
            store,
            entity: entity_name.into(),
            queue: Arc::clone(&queue.inner),
        })
    }

    #[napi]
    pub fn init(&self, request: u32, validate: bool) {
        self.submit(request, Op::Init, None, Request::Init { validate });
    }

    #[napi]
    pub fn read(&self, request: u32, ids: Vec<String>, stop_at_missing: bool, heal: bool) {
        let id = single(&ids);
        let request_body = Request::Read {
            ids,
            stop_at_missing,
            heal,
        };
        self.submit(request, Op::Read, id, request_body);
    }

    /// `read` on the calling thread where the backend serves it so; `null` otherwise.
    #[napi(ts_return_type = "Array<string | null | NativeFailure> | null")]
    pub fn read_in_place(
        &self,
        ids: Vec<String>,
        stop_at_missing: bool,
        heal: bool,
    ) -> napi::Result<Option<Answer>, PersistCode> {
        let id = single(&ids);
        let request = Request::Read {
            ids,
            stop_at_missing,
            heal,
        };
        self.in_place(Op::Read, id.as_deref(), &request)
    }

    #[napi]
    pub fn has(&self, request: u32, ids: Vec<String>) {
        let id = single(&ids);
        self.submit(request, Op::Has, id, Request::Has { ids });
    }

    /// `has` on the calling thread where the backend serves it so; `null` otherwise.
    #[napi(ts_return_type = "Array<boolean> | null")]
    pub fn has_in_place(&self, ids: Vec<String>) -> napi::Result<Option<Answer>, PersistCode> {
        let id = single(&ids);
        self.in_place(Op::Has, id.as_deref(), &Request::Has { ids })
    }

    /// Write `texts[i]` as `ids[i]`; mode "replace", "changed" or "insert". Returns the count
    /// written when the backend did it on the calling thread (`request` is then unused), or
    /// `null` when the outcome will settle `request` on the completion queue.
    #[napi(ts_return_type = "number | null")]
    pub fn write(
        &self,
        request: u32,
        ids: Vec<String>,
        texts: Vec<String>,
        mode: String,
        durable: bool,
    ) -> napi::Result<Option<Answer>, PersistCode> {
        let mode = write_mode(&mode)?;
        let id = single(&ids);
        let docs = ids.into_iter().zip(texts).collect();
        let body = Request::Write {
            docs,
            mode,
            durable,
        };
        let done = self.in_place(Op::Write, id.as_deref(), &body)?;
        if done.is_none() {
            self.submit(request, Op::Write, id, body);
        }
        Ok(done)
    }

    #[napi]
    pub fn remove(&self, request: u32, id: String) {
        let body = Request::Remove { id: id.clone() };
        self.submit(request, Op::Remove, Some(id), body);
    }

    #[napi]
    pub fn remove_all(&self, request: u32) {
        self.submit(request, Op::RemoveAll, None, Request::RemoveAll);
    }

    #[napi]
    pub fn keys(&self, request: u32) {
        self.submit(request, Op::Keys, None, Request::Keys);
    }

    #[napi]
    pub fn scan(&self, request: u32) {
        self.submit(request, Op::Keys, None, Request::Scan);
    }
}

/// The options of backend `kind` as resolved now (JSON), for users to inspect.
#[napi]
pub fn describe_backend(kind: String, options_json: String) -> napi::Result<String, PersistCode> {
    options(&options_json)
        .and_then(|options| registry::describe(&kind, &options))
        .map(|value| value.to_string())
        .map_err(config_error)
}

#[napi(object, object_from_js = false)]
pub struct NativeUrl {
    /// The backend the URL's scheme names.
    pub kind: String,
    /// The options it stands for, as JSON.
    pub options_json: String,
}

/// The backend and options a store URL stands for (`redis://…?prefix=a`, `sqlite:./db.sqlite`).
#[napi]
pub fn backend_for_url(url: String) -> napi::Result<NativeUrl, PersistCode> {
    registry::from_url(&url)
        .map(|(kind, options)| NativeUrl {
            kind: kind.to_owned(),
            options_json: options.to_string(),
        })
        .map_err(config_error)
}

#[napi(object, object_from_js = false)]
pub struct NativeBackend {
    /// The registry's name (`createPersist` and the classes name it).
    pub name: String,
    /// The URL schemes naming it (`redis` for `redis://…`).
    pub schemes: Vec<String>,
}

/// Every backend this build registers, in registration order.
#[napi]
pub fn list_backends() -> Vec<NativeBackend> {
    registry::list()
        .map(|(name, schemes)| NativeBackend {
            name: name.to_owned(),
            schemes: schemes.iter().map(|s| (*s).to_owned()).collect(),
        })
        .collect()
}

#[napi(object, object_from_js = false)]
pub struct NativeToolStore {
    pub kind: String,
    /// The options the URL stands for, as JSON.
    pub options_json: String,
    /// Where the entities are listed from (the file backend's dump directory); else empty.
    pub root: String,
    /// The directory a listed namespace's baseDir is relative to; else empty.
    pub base: String,
}

/// The store a URL names for the command (`file:./dump`, a bare `redis:`, any store URL).
#[napi]
pub fn tool_store(url: String) -> napi::Result<NativeToolStore, PersistCode> {
    registry::tool_store(&url)
        .map(|store| NativeToolStore {
            kind: store.kind.to_owned(),
            options_json: store.options.to_string(),
            root: store.root,
            base: store.base,
        })
        .map_err(config_error)
}

/// The backtest-kit domain a namespace belongs to (`dump/data/signal` → `signal`), for the command.
#[napi]
pub fn domain_of(namespace: String) -> String {
    crate::contract::layout::domain_of(&namespace)
}

#[napi(object, object_from_js = false)]
pub struct NativeStats {
    pub writes: f64,
    pub commits: f64,
}

/// Counters of the storage these options name.
#[napi]
pub fn backend_stats(kind: String, options_json: String) -> napi::Result<NativeStats, PersistCode> {
    options(&options_json)
        .and_then(|options| registry::stats(&kind, &options))
        .map(|s| NativeStats {
            writes: s.writes as f64,
            commits: s.commits as f64,
        })
        .map_err(config_error)
}

/// Finish queued work and release the shared resource these options name, settling `request`.
#[napi]
pub fn close_backend(
    queue: &CompletionQueue,
    request: u32,
    kind: String,
    options_json: String,
) -> napi::Result<(), PersistCode> {
    let closing = options(&options_json)
        .and_then(|options| registry::close(&kind, &options))
        .map_err(config_error)?;
    let pending = Pending::new(Arc::clone(&queue.inner), request);
    crate::exec::spawn(async move {
        let result = closing.await.map(|()| Response::Done);
        pending.settle(settle(result, Op::Close, Arc::from(kind), None));
    });
    Ok(())
}

/// Every (namespace, entity) the store holds documents of, as `[namespaces, entities]`, settling
/// `request` (for the command-line tool; `root` is the file backend's `./dump` directory).
#[napi]
pub fn list_entities(
    queue: &CompletionQueue,
    request: u32,
    kind: String,
    options_json: String,
    root: String,
) -> napi::Result<(), PersistCode> {
    let options = options(&options_json).map_err(config_error)?;
    let pending = Pending::new(Arc::clone(&queue.inner), request);
    crate::exec::spawn(async move {
        let result = registry::entities(&kind, &options, &root)
            .await
            .map(Response::Entries);
        pending.settle(settle(result, Op::List, Arc::from(kind), None));
    });
    Ok(())
}
