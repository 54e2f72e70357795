//! The one `Request` match of the server backends (Redis, PostgreSQL, MongoDB, S3): each gives
//! its primitive operations on one entity ([`Documents`]), and [`Served`] answers every request
//! over them the same way — a window that stops at the first missing id, a corrupt document
//! moved aside by a read that heals (and reported in one wording), init's validation. Each
//! backend keeps its own batch writes (Redis scripts, a PostgreSQL group commit, a MongoDB bulk
//! update, concurrent S3 PUTs): the engine owns only what is identical.

use std::future::Future;
use std::sync::Arc;

use crate::contract::{
    entity_segments, namespace_of, Doc, InitReport, Reply, Request, Response, Scope, Storage,
    Store, WriteMode,
};
use crate::error::{PersistError, Result};
use crate::exec::spawn;

/// One entity of a server store: its namespace (the baseDir as every backend keys it), its name
/// and the scope that orders its requests.
#[derive(Clone)]
pub struct Entity {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub scope: Arc<Scope>,
}

impl Entity {
    /// The entity `entity_name` (checked) under `base_dir` in `storage`; no I/O.
    pub fn new(storage: &Storage, base_dir: &str, entity_name: &str) -> Result<Entity> {
        entity_segments(entity_name)?;
        let namespace = namespace_of(base_dir);
        let scope = storage.entity(pair(&namespace, entity_name));
        Ok(Entity {
            namespace: namespace.into(),
            name: entity_name.into(),
            scope,
        })
    }

    /// `["namespace","entity"]`, the pair as JSON text (MongoDB keys start with it).
    pub fn pair(&self) -> String {
        pair(&self.namespace, &self.name)
    }

    /// Where document `id` is, for messages: `{server} namespace=… entity=… id=…`.
    pub fn location(&self, server: &str, id: &str) -> String {
        format!(
            "{server} namespace={} entity={} id={id}",
            self.namespace, self.name
        )
    }
}

fn pair(namespace: &str, entity: &str) -> String {
    serde_json::to_string(&[namespace, entity]).unwrap_or_default()
}

/// The time a document is moved aside, in milliseconds since the epoch (kept beside it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A batch of writes as a request gives it.
pub struct Batch {
    /// (id, JSON text), in issue order; never empty.
    pub docs: Vec<(String, String)>,
    pub mode: WriteMode,
    /// Durable before the reply, where the backend can ask for it per write (MongoDB's `j`).
    pub durable: bool,
}

/// A stored document as a backend judged it.
pub enum Judged<Raw> {
    /// A JSON text: what a read returns.
    Json(String),
    /// Not a JSON document. `why` completes "{location} …" ("is not JSON", "is not UTF-8");
    /// `unhealed` is what a read that does not heal answers; `raw` is what a move aside compares.
    Invalid {
        why: String,
        unhealed: Doc,
        raw: Raw,
    },
}

impl Judged<String> {
    /// A text read from the server: a document if it is JSON.
    pub fn of_text(text: String) -> Self {
        if crate::json::is_valid_json(text.as_bytes()) {
            return Judged::Json(text);
        }
        Judged::Invalid {
            why: "is not JSON".into(),
            unhealed: Doc::Text(text.clone()),
            raw: text,
        }
    }
}

impl Judged<Vec<u8>> {
    /// Bytes read from the server: a document if they are UTF-8 JSON; bytes that are not UTF-8
    /// cannot be handed on as text, so a read that does not heal reports them corrupt.
    pub fn of_bytes(bytes: Vec<u8>, id: &str, location: impl FnOnce() -> String) -> Self {
        match String::from_utf8(bytes) {
            Ok(text) => match Judged::of_text(text) {
                Judged::Json(text) => Judged::Json(text),
                Judged::Invalid { why, unhealed, raw } => Judged::Invalid {
                    why,
                    unhealed,
                    raw: raw.into_bytes(),
                },
            },
            Err(e) => Judged::Invalid {
                why: "is not UTF-8".into(),
                unhealed: Doc::Corrupt {
                    id: id.to_owned(),
                    detail: format!("{} is not UTF-8", location()),
                },
                raw: e.into_bytes(),
            },
        }
    }
}

/// One entity of a server backend, as primitive operations. Ids are validated and in issue
/// order already (the layers); answers to `get_many` and `has_many` follow `ids`' order.
pub trait Documents: Send + Sync + 'static {
    /// A stored value as read, before it is judged.
    type Raw: Send;

    fn entity(&self) -> &Entity;

    /// Where a document is, for messages (`redis 127.0.0.1:6379 key field id`).
    fn location(&self, id: &str) -> String;

    /// Reach the server and check what an init without validation checks (a schema, a bucket).
    fn prepare(&self) -> impl Future<Output = Result<()>> + Send;

    fn judge(&self, id: &str, raw: Self::Raw) -> Judged<Self::Raw>;

    /// The stored value of each of `ids` (never empty), `None` where there is none.
    fn get_many(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<Option<Self::Raw>>>> + Send;

    /// Whether each of `ids` (never empty) has a document.
    fn has_many(&self, ids: &[String]) -> impl Future<Output = Result<Vec<bool>>> + Send;

    /// Write a batch as its mode says; how many documents changed.
    fn put_many(&self, batch: Batch) -> impl Future<Output = Result<usize>> + Send;

    /// Remove one document; false when there was none.
    fn remove(&self, id: &str) -> impl Future<Output = Result<bool>> + Send;

    fn remove_all(&self) -> impl Future<Output = Result<()>> + Send;

    /// Every id that a read can name.
    fn ids(&self) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Every (id, text), as `keys()` followed by a read of each would see them.
    fn entries(&self) -> impl Future<Output = Result<Vec<(String, String)>>> + Send;

    /// Every stored value, for init's validation.
    fn scan_raw(&self) -> impl Future<Output = Result<Vec<(String, Self::Raw)>>> + Send;

    /// Move a document that is not JSON aside if it still holds `raw`: where it went, or `None`
    /// when a writer replaced it meanwhile (it is then left alone).
    fn quarantine(
        &self,
        id: &str,
        raw: &Self::Raw,
    ) -> impl Future<Output = Result<Option<String>>> + Send;
}

/// A [`Store`] over a backend's [`Documents`]: every request runs on the core's runtime.
pub struct Served<D>(pub D);

impl<D: Documents> Store for Served<D> {
    fn submit(self: Arc<Self>, request: Request, reply: Reply) {
        spawn(async move { reply(self.run(request).await) })
    }

    fn scope(&self) -> &Arc<Scope> {
        &self.0.entity().scope
    }
}

impl<D: Documents> Served<D> {
    async fn run(&self, request: Request) -> Result<Response> {
        let documents = &self.0;
        match request {
            Request::Init { validate } => self.init(validate).await.map(Response::Init),
            Request::Read {
                ids,
                stop_at_missing,
                heal,
            } => self
                .read(ids, stop_at_missing, heal)
                .await
                .map(Response::Docs),
            Request::Has { ids } if ids.is_empty() => Ok(Response::Flags(Vec::new())),
            Request::Has { ids } => documents.has_many(&ids).await.map(Response::Flags),
            Request::Write { docs, .. } if docs.is_empty() => Ok(Response::Written(0)),
            Request::Write {
                docs,
                mode,
                durable,
            } => documents
                .put_many(Batch {
                    docs,
                    mode,
                    durable,
                })
                .await
                .map(Response::Written),
            Request::Remove { id } => match documents.remove(&id).await? {
                true => Ok(Response::Done),
                false => Err(PersistError::NotFound),
            },
            Request::RemoveAll => documents.remove_all().await.map(|()| Response::Done),
            Request::Keys => documents.ids().await.map(Response::Keys),
            Request::Scan => documents.entries().await.map(Response::Entries),
        }
    }

    async fn read(&self, ids: Vec<String>, stop_at_missing: bool, heal: bool) -> Result<Vec<Doc>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let documents = &self.0;
        let mut values = documents.get_many(&ids).await?;
        if stop_at_missing {
            if let Some(first_missing) = values.iter().position(Option::is_none) {
                values.truncate(first_missing + 1);
            }
        }
        let mut docs = Vec::with_capacity(values.len());
        for (id, value) in ids.into_iter().zip(values) {
            let Some(raw) = value else {
                docs.push(Doc::Missing);
                continue;
            };
            docs.push(match documents.judge(&id, raw) {
                Judged::Json(text) => Doc::Text(text),
                Judged::Invalid { unhealed, .. } if !heal => unhealed,
                Judged::Invalid { why, raw, .. } => {
                    let Some(place) = documents.quarantine(&id, &raw).await? else {
                        // A writer replaced it meanwhile (it was left alone): theirs is the answer.
                        docs.push(self.read_again(&id).await?);
                        continue;
                    };
                    Doc::Corrupt {
                        detail: format!(
                            "{} {why}; moved aside to {place}",
                            documents.location(&id)
                        ),
                        id,
                    }
                }
            });
        }
        Ok(docs)
    }

    /// Document `id` as it is now, without healing (a read that lost a race to a writer).
    async fn read_again(&self, id: &str) -> Result<Doc> {
        let documents = &self.0;
        let value = documents.get_many(&[id.to_owned()]).await?.pop().flatten();
        Ok(match value.map(|raw| documents.judge(id, raw)) {
            None => Doc::Missing,
            Some(Judged::Json(text)) => Doc::Text(text),
            Some(Judged::Invalid { unhealed, .. }) => unhealed,
        })
    }

    /// Reach the server, and with `validate` move aside every document that is not JSON.
    async fn init(&self, validate: bool) -> Result<InitReport> {
        let documents = &self.0;
        documents.prepare().await?;
        let mut report = InitReport::default();
        if !validate {
            return Ok(report);
        }
        for (id, raw) in documents.scan_raw().await? {
            let Judged::Invalid { raw, .. } = documents.judge(&id, raw) else {
                continue;
            };
            let location = documents.location(&id);
            match documents.quarantine(&id, &raw).await {
                Ok(None) => {} // rewritten meanwhile
                Ok(Some(place)) => report
                    .removed_invalid
                    .push(format!("{location} (moved aside to {place})")),
                Err(e) => report.failed_removals.push(format!("{location}: {e}")),
            }
        }
        Ok(report)
    }
}
