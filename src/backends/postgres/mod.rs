//! `PostgresStore`: every entity in one table, `(namespace, entity, id) → value`, the value
//! being the JSON text exactly as written (`text`, not `jsonb`, which would reorder keys).
//!
//! Per configuration the process keeps two connections, shared by every store: one for reads,
//! on which concurrent statements are pipelined, and one owned by a writer task that takes
//! every write queued meanwhile and commits them as one transaction (`BEGIN`, one `unnest`
//! upsert per write mode for all their documents, one statement per removal, `COMMIT`, sent in
//! one go): 64 concurrent writers cost one round trip and one WAL flush. A write resolves once
//! its transaction committed, at the server's `synchronous_commit`.
//!
//! The schema is versioned (table `{table}_meta`) and created or migrated in one transaction
//! under an advisory lock, so that processes starting together are safe; a newer version is
//! refused, never altered.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::contract::{
    last_per_id, BackendConfig, Listing, Options, Storage, Store, StoreStats, WriteMode,
};
use crate::error::{PersistError, Result, ServerFailure};
use crate::exec::{lock, spawn};
use crate::registry::Backend;
use crate::remote::connections::{
    install_crypto_provider, Counters, Link, PerConfig, SharedConnection,
};
use crate::remote::credentials::{redact_url, scrub_secrets};
use crate::remote::engine::{now_ms, Batch, Documents, Entity, Judged, Served};
use crate::remote::server_url::{with_causes, ServerTable, ServerUrl};

const URL_ENV: &str = "BACKTEST_KIT_RS_POSTGRES_URL";
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DEFAULT_TABLE: &str = "backtest_kit";
const DEFAULT_SCHEMA: &str = "public";
const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// The schema this version writes, in `{table}_meta`.
const SCHEMA_VERSION: i64 = 1;
/// Requests one group commit takes at most (the rest wait for the next).
const MAX_GROUP: usize = 512;
/// Longest table name we accept: `_quarantine` is appended, and PostgreSQL cuts names at 63.
const MAX_TABLE_NAME: usize = 63 - "_quarantine".len();

pub struct PostgresBackend;

impl Backend for PostgresBackend {
    type Config = PostgresConfig;

    const NAME: &str = "postgres";
    const SCHEMES: &[&str] = &["postgres", "postgresql"];

    fn open(&self, config: PostgresConfig, entity: &str, base_dir: &str) -> Result<Arc<dyn Store>> {
        Ok(Arc::new(Served(PostgresStore::new(
            config, base_dir, entity,
        )?)))
    }

    fn describe(&self, config: &PostgresConfig) -> Value {
        json!({
            "url": redact_url(&config.table.url),
            "schema": config.table.space,
            "table": config.table.name,
            "sslmode": config.ssl.name(),
            "connectTimeoutMs": config.connect_timeout.as_millis() as u64,
            "commandTimeoutMs": config.command_timeout.as_millis() as u64,
            "tls": { "ca": config.ca_pem.is_some() },
        })
    }

    fn stats(&self, config: &PostgresConfig) -> StoreStats {
        PER_CONFIG.get(config).counters.snapshot()
    }

    fn entities(&self, config: PostgresConfig, _root: &str) -> Result<Listing> {
        let probe = PostgresStore::new(config, "", "")?;
        Ok(Box::pin(async move {
            let rows = probe.query(|s| &s.entities, &[]).await?;
            Ok(rows
                .into_iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect())
        }))
    }

    fn release(config: &PostgresConfig) {
        let resources = PER_CONFIG.get(config);
        resources.reader.close();
        // The writer task ends once its queue is empty and every sender is gone.
        *lock(&resources.writer) = None;
    }
}

/// `sslmode` as libpq reads it: `prefer` and `require` encrypt without checking the server's
/// certificate (unless a CA is given, which makes them check the chain as `verify-ca` does),
/// `verify-ca` checks the chain, `verify-full` the chain and the host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Ssl {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Ssl {
    fn parse(text: &str) -> Option<Ssl> {
        Some(match text {
            "disable" => Ssl::Disable,
            "prefer" => Ssl::Prefer,
            "require" => Ssl::Require,
            "verify-ca" => Ssl::VerifyCa,
            "verify-full" => Ssl::VerifyFull,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Ssl::Disable => "disable",
            Ssl::Prefer => "prefer",
            Ssl::Require => "require",
            Ssl::VerifyCa => "verify-ca",
            Ssl::VerifyFull => "verify-full",
        }
    }
}

/// How to reach the table: one pair of shared connections per distinct value. `Debug` shows
/// the URL with its credentials redacted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/db?…` as given (sslmode included), and the table.
    table: ServerTable,
    ssl: Ssl,
    ca_pem: Option<String>,
    connect_timeout: Duration,
    command_timeout: Duration,
}

impl PostgresConfig {
    fn quoted(&self, suffix: &str) -> String {
        format!("\"{}\".\"{}{suffix}\"", self.table.space, self.table.name)
    }
}

impl BackendConfig for PostgresConfig {
    fn from_options(options: &Value) -> Result<Self> {
        let mut options = Options::new("postgres", options)?;
        // `?table=` and `?schema=` are ours; libpq's own parameters stay for the driver.
        let server = ServerUrl::resolve(
            &mut options,
            &[URL_ENV, "DATABASE_URL"],
            DEFAULT_URL,
            &["table", "schema"],
            &["postgres", "postgresql"],
        )?;
        let (connect, ssl) = split_sslmode(&server.url)
            .map_err(|detail| options.invalid(format!("{detail} (from {})", server.origin)))?;
        if let Err(e) = connect.parse::<tokio_postgres::Config>() {
            return Err(server.refused(&options, &with_causes(&e)));
        }
        let schema = options
            .string_or_url_param("schema", &server.params)?
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_owned());
        let table = options
            .string_or_url_param("table", &server.params)?
            .unwrap_or_else(|| DEFAULT_TABLE.to_owned());
        for (name, value, max) in [("schema", &schema, 63), ("table", &table, MAX_TABLE_NAME)] {
            if !is_plain_identifier(value, max) {
                return Err(options.invalid(format!(
                    "{name} must be 1 to {max} letters, digits or _ (not starting with a digit), \
                 got {value:?}"
                )));
            }
        }
        let connect_timeout = options.milliseconds("connectTimeoutMs", DEFAULT_TIMEOUT_MS)?;
        let command_timeout = options.milliseconds("commandTimeoutMs", DEFAULT_TIMEOUT_MS)?;
        let ca_pem = options.tls_ca()?;
        if let Some(ca) = &ca_pem {
            if CertificateDer::pem_slice_iter(ca.as_bytes())
                .next()
                .is_none()
            {
                return Err(options.invalid("tls.ca holds no PEM certificate"));
            }
            if ssl == Ssl::Disable {
                return Err(options.invalid("tls.ca with sslmode=disable"));
            }
        }
        options.finish()?;
        Ok(PostgresConfig {
            table: ServerTable {
                url: server.url,
                noun: "table",
                space: schema,
                name: table,
            },
            ssl,
            ca_pem,
            connect_timeout,
            command_timeout,
        })
    }

    fn storage(&self) -> Storage {
        Storage::new("postgres", self.table.identity())
    }
}

/// The URL without its `sslmode` parameter, and the mode (`prefer` when absent, as libpq).
fn split_sslmode(url: &str) -> std::result::Result<(String, Ssl), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), Ssl::Prefer));
    };
    let mut ssl = Ssl::Prefer;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", mode)) => {
                ssl = Ssl::parse(mode).ok_or_else(|| {
                    format!(
                        "sslmode must be disable, prefer, require, verify-ca or verify-full, \
                         got {mode:?}"
                    )
                })?;
            }
            _ => kept.push(pair),
        }
    }
    Ok(if kept.is_empty() {
        (base.to_owned(), ssl)
    } else {
        (format!("{base}?{}", kept.join("&")), ssl)
    })
}

fn is_plain_identifier(name: &str, max: usize) -> bool {
    let mut chars = name.chars();
    name.len() <= max
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub struct PostgresStore {
    config: Arc<PostgresConfig>,
    entity: Entity,
    resources: Arc<Resources>,
}

impl PostgresStore {
    fn new(config: PostgresConfig, base_dir: &str, entity_name: &str) -> Result<Self> {
        // PostgreSQL text cannot hold NUL; ids and entity names are refused it already.
        if base_dir.contains('\0') {
            return Err(PersistError::InvalidName {
                name: base_dir.to_owned(),
                reason: "the base directory contains a NUL character",
            });
        }
        Ok(PostgresStore {
            entity: Entity::new(&config.storage(), base_dir, entity_name)?,
            resources: PER_CONFIG.get(&config),
            config: Arc::new(config),
        })
    }

    /// The shared read connection, connected again when it was lost.
    async fn reader(&self) -> Result<Link<PgConn>> {
        let usable = |conn: &PgConn| !conn.client.is_closed();
        let connect = connect(&self.config, &self.resources);
        self.resources.reader.get(usable, connect).await
    }

    /// A read statement on the shared connection, within the command timeout.
    async fn query(
        &self,
        statement: impl FnOnce(&Statements) -> &Statement,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let Link { conn, .. } = self.reader().await?;
        let statement = statement(&conn.statements).clone();
        within(
            &self.config,
            self.config.command_timeout,
            conn.client.query(&statement, params),
        )
        .await
        .and_then(|reply| reply.map_err(|e| failure(&self.config, &e)))
    }

    /// Hand a write to the writer task and wait for its commit.
    async fn write(&self, job: WriteJob) -> Result<u64> {
        let (sender, receiver) = oneshot::channel();
        let queue = {
            let mut writer = lock(&self.resources.writer);
            match &*writer {
                Some(queue) if !queue.is_closed() => queue.clone(),
                _ => {
                    let (queue, jobs) = mpsc::unbounded_channel();
                    spawn(writer_task(
                        Arc::clone(&self.config),
                        Arc::clone(&self.resources),
                        jobs,
                    ));
                    *writer = Some(queue.clone());
                    queue
                }
            }
        };
        let lost = || PersistError::Task("the PostgreSQL writer stopped".into());
        queue.send((job, sender)).map_err(|_| lost())?;
        receiver.await.map_err(|_| lost())?
    }

    fn job(&self, kind: JobKind) -> WriteJob {
        WriteJob {
            namespace: Arc::clone(&self.entity.namespace),
            entity: Arc::clone(&self.entity.name),
            kind,
        }
    }
}

impl Documents for PostgresStore {
    type Raw = String;

    fn entity(&self) -> &Entity {
        &self.entity
    }

    fn location(&self, id: &str) -> String {
        self.entity.location(&self.config.table.shown(), id)
    }

    /// Connect (creating or checking the schema).
    async fn prepare(&self) -> Result<()> {
        self.reader().await.map(drop)
    }

    fn judge(&self, _id: &str, text: String) -> Judged<String> {
        Judged::of_text(text)
    }

    async fn get_many(&self, ids: &[String]) -> Result<Vec<Option<String>>> {
        let (ns, entity) = (&*self.entity.namespace, &*self.entity.name);
        let rows = self.query(|s| &s.read, &[&ns, &entity, &ids]).await?;
        let mut found: HashMap<String, String> = rows
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        Ok(ids.iter().map(|id| found.remove(id)).collect())
    }

    async fn has_many(&self, ids: &[String]) -> Result<Vec<bool>> {
        let (ns, entity) = (&*self.entity.namespace, &*self.entity.name);
        let rows = self.query(|s| &s.has, &[&ns, &entity, &ids]).await?;
        let present: std::collections::HashSet<String> =
            rows.into_iter().map(|row| row.get(0)).collect();
        Ok(ids.iter().map(|id| present.contains(id)).collect())
    }

    async fn put_many(&self, Batch { docs, mode, .. }: Batch) -> Result<usize> {
        // One row per id: the last text given for it (ON CONFLICT may touch a row once).
        let (ids, texts): (Vec<String>, Vec<String>) = last_per_id(docs).into_iter().unzip();
        let written = self
            .write(self.job(JobKind::Upsert { ids, texts, mode }))
            .await?;
        Ok(written as usize)
    }

    async fn remove(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        Ok(self.write(self.job(JobKind::Remove { id })).await? > 0)
    }

    async fn remove_all(&self) -> Result<()> {
        self.write(self.job(JobKind::RemoveAll)).await.map(drop)
    }

    async fn ids(&self) -> Result<Vec<String>> {
        let (ns, entity) = (&*self.entity.namespace, &*self.entity.name);
        let rows = self.query(|s| &s.keys, &[&ns, &entity]).await?;
        Ok(rows.into_iter().map(|row| row.get(0)).collect())
    }

    async fn entries(&self) -> Result<Vec<(String, String)>> {
        let (ns, entity) = (&*self.entity.namespace, &*self.entity.name);
        let rows = self.query(|s| &s.scan, &[&ns, &entity]).await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect())
    }

    async fn scan_raw(&self) -> Result<Vec<(String, String)>> {
        self.entries().await
    }

    /// Move a row that is not JSON to the quarantine table, only if it still holds that text,
    /// so a concurrent rewrite by another process is never moved. One statement: atomic.
    async fn quarantine(&self, id: &str, text: &String) -> Result<Option<String>> {
        let (ns, entity) = (&*self.entity.namespace, &*self.entity.name);
        let rows = self
            .query(|s| &s.move_aside, &[&ns, &entity, &id, text, &now_ms()])
            .await?;
        Ok((!rows.is_empty()).then(|| format!("table {}", self.config.quoted("_quarantine"))))
    }
}

/// A write for the writer task: what one request changes, and where.
struct WriteJob {
    namespace: Arc<str>,
    entity: Arc<str>,
    kind: JobKind,
}

enum JobKind {
    Upsert {
        ids: Vec<String>,
        texts: Vec<String>,
        mode: WriteMode,
    },
    Remove {
        id: String,
    },
    RemoveAll,
}

type Queued = (WriteJob, oneshot::Sender<Result<u64>>);

/// Takes every write queued meanwhile and commits them together; runs until every sender is
/// gone (the server's entry closed and no store holds a clone).
async fn writer_task(
    config: Arc<PostgresConfig>,
    resources: Arc<Resources>,
    mut jobs: mpsc::UnboundedReceiver<Queued>,
) {
    let mut conn: Option<PgConn> = None;
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if conn.as_ref().is_none_or(|open| open.client.is_closed()) {
            conn = None;
            match connect(&config, &resources).await {
                Ok(fresh) => conn = Some(fresh),
                Err(error) => {
                    for (_, reply) in group {
                        let _ = reply.send(Err(error.clone()));
                    }
                    continue;
                }
            }
        }
        let Some(open) = &conn else { continue };
        if !commit_group(&config, &resources, open, group).await {
            conn = None;
        }
    }
}

/// One transaction for the whole group, its statements pipelined: one upsert per write mode for
/// all documents of the group, one statement per removal. If any statement fails, nothing was
/// committed and each request runs again on its own, so that only the failing one gets its
/// error. Returns false when the connection must be abandoned.
async fn commit_group(
    config: &PostgresConfig,
    resources: &Resources,
    conn: &PgConn,
    group: Vec<Queued>,
) -> bool {
    if group.len() == 1 {
        for queued in group {
            run_alone(config, resources, conn, queued).await;
        }
        return true;
    }
    let jobs: Vec<&WriteJob> = group.iter().map(|(job, _)| job).collect();
    let mut steps: Vec<Pin<Box<dyn Future<Output = StepResult> + Send + '_>>> = Vec::new();
    steps.push(Box::pin(async {
        conn.client.batch_execute("BEGIN").await.map(|_| Vec::new())
    }));
    steps.extend(statements(conn, &jobs));
    steps.push(Box::pin(async {
        conn.client
            .batch_execute("COMMIT")
            .await
            .map(|_| Vec::new())
    }));
    // join_all polls the steps in order, so they are sent in order, in one go.
    let outcome = within(
        config,
        config.command_timeout,
        futures_util::future::join_all(steps),
    )
    .await;
    let results = match outcome {
        Ok(results) => results,
        Err(timed_out) => {
            // The transaction may be open or committing: the connection is abandoned (the
            // server rolls back what did not commit), and the outcome is unknown.
            for (_, reply) in group {
                let _ = reply.send(Err(timed_out.uncertain("committed")));
            }
            return false;
        }
    };
    if results.iter().all(Result::is_ok) {
        let mut counts = vec![0u64; group.len()];
        for (job, count) in results.into_iter().flatten().flatten() {
            counts[job] += count;
        }
        resources.counters.count(counts.iter().sum());
        for ((_, reply), count) in group.into_iter().zip(counts) {
            let _ = reply.send(Ok(count));
        }
        return true;
    }
    if conn.client.is_closed() {
        let error = results
            .into_iter()
            .find_map(Result::err)
            .map(|e| failure(config, &e).uncertain("committed"))
            .unwrap_or_else(|| PersistError::Task("the connection closed".into()));
        for (_, reply) in group {
            let _ = reply.send(Err(error.clone()));
        }
        return false;
    }
    // A statement failed, so the transaction rolled back (COMMIT answered ROLLBACK).
    let _ = conn.client.batch_execute("ROLLBACK").await;
    for queued in group {
        run_alone(config, resources, conn, queued).await;
    }
    true
}

/// One request in its own (implicit) transaction.
async fn run_alone(
    config: &PostgresConfig,
    resources: &Resources,
    conn: &PgConn,
    (job, reply): Queued,
) {
    let jobs = [&job];
    let steps = futures_util::future::try_join_all(statements(conn, &jobs));
    let outcome = within(config, config.command_timeout, steps)
        .await
        .map_err(|timed_out| timed_out.uncertain("committed"))
        .and_then(|r| r.map_err(|e| failure(config, &e)))
        .map(|results| results.into_iter().flatten().map(|(_, count)| count).sum());
    if let Ok(written) = &outcome {
        resources.counters.count(*written);
    }
    let _ = reply.send(outcome);
}

/// (index of the request in its group, rows it changed) for each request a statement served.
type StepResult = std::result::Result<Vec<(usize, u64)>, tokio_postgres::Error>;
type Step<'a> = Pin<Box<dyn Future<Output = StepResult> + Send + 'a>>;

/// The statements that carry out `jobs`: the documents of every upsert of one write mode in one
/// `unnest` statement, and each removal on its own.
fn statements<'a>(conn: &'a PgConn, jobs: &[&'a WriteJob]) -> Vec<Step<'a>> {
    let s = &conn.statements;
    let mut by_mode: [Vec<(usize, &'a WriteJob)>; 3] = Default::default();
    let mut steps: Vec<Step<'a>> = Vec::new();
    for (index, job) in jobs.iter().copied().enumerate() {
        let (ns, entity) = (&*job.namespace, &*job.entity);
        match &job.kind {
            JobKind::Upsert { mode, .. } => {
                // In the order of the statements below.
                let slot = match mode {
                    WriteMode::Replace => 0,
                    WriteMode::ReplaceChanged => 1,
                    WriteMode::InsertOnly => 2,
                };
                by_mode[slot].push((index, job));
            }
            JobKind::Remove { id } => steps.push(Box::pin(async move {
                let removed = conn.client.execute(&s.remove, &[&ns, &entity, id]).await?;
                Ok(vec![(index, removed)])
            })),
            JobKind::RemoveAll => steps.push(Box::pin(async move {
                let removed = conn.client.execute(&s.remove_all, &[&ns, &entity]).await?;
                Ok(vec![(index, removed)])
            })),
        }
    }
    for (statement, members) in [&s.upsert, &s.upsert_changed, &s.insert_only]
        .into_iter()
        .zip(by_mode)
    {
        if !members.is_empty() {
            steps.push(Box::pin(upsert(conn, statement, members)));
        }
    }
    steps
}

/// The documents of `members` in one statement; each row it changed is credited to its request.
async fn upsert(
    conn: &PgConn,
    statement: &Statement,
    members: Vec<(usize, &WriteJob)>,
) -> StepResult {
    let (mut namespaces, mut entities, mut ids, mut texts) = (vec![], vec![], vec![], vec![]);
    let mut owner: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for (index, job) in &members {
        if let JobKind::Upsert {
            ids: job_ids,
            texts: job_texts,
            ..
        } = &job.kind
        {
            for (id, text) in job_ids.iter().zip(job_texts) {
                namespaces.push(&*job.namespace);
                entities.push(&*job.entity);
                ids.push(id.as_str());
                texts.push(text.as_str());
                owner.insert((&*job.namespace, &*job.entity, id.as_str()), *index);
            }
        }
    }
    let rows = conn
        .client
        .query(statement, &[&namespaces, &entities, &ids, &texts])
        .await?;
    let mut counts: HashMap<usize, u64> = members.iter().map(|(index, _)| (*index, 0)).collect();
    for row in &rows {
        let key: (&str, &str, &str) = (row.get(0), row.get(1), row.get(2));
        if let Some(index) = owner.get(&key) {
            *counts.entry(*index).or_default() += 1;
        }
    }
    Ok(counts.into_iter().collect())
}

/// Statements prepared once per connection.
struct Statements {
    read: Statement,
    has: Statement,
    keys: Statement,
    scan: Statement,
    upsert: Statement,
    upsert_changed: Statement,
    insert_only: Statement,
    remove: Statement,
    remove_all: Statement,
    move_aside: Statement,
    entities: Statement,
}

impl Statements {
    async fn prepare(
        client: &Client,
        config: &PostgresConfig,
    ) -> std::result::Result<Self, tokio_postgres::Error> {
        let table = config.quoted("");
        let quarantine = config.quoted("_quarantine");
        let entity = "namespace = $1 AND entity = $2";
        // Documents of any entities, as four parallel arrays; the rows changed come back.
        let insert = format!(
            "INSERT INTO {table} AS stored (namespace, entity, id, value) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
        );
        let upsert = format!(
            "{insert} ON CONFLICT (namespace, entity, id) DO UPDATE SET value = EXCLUDED.value"
        );
        let changed = "RETURNING namespace, entity, id";
        let texts = [
            format!("SELECT id, value FROM {table} WHERE {entity} AND id = ANY($3::text[])"),
            format!("SELECT id FROM {table} WHERE {entity} AND id = ANY($3::text[])"),
            format!("SELECT id FROM {table} WHERE {entity}"),
            format!("SELECT id, value FROM {table} WHERE {entity}"),
            format!("{upsert} {changed}"),
            format!("{upsert} WHERE stored.value IS DISTINCT FROM EXCLUDED.value {changed}"),
            format!("{insert} ON CONFLICT (namespace, entity, id) DO NOTHING {changed}"),
            format!("DELETE FROM {table} WHERE {entity} AND id = $3"),
            format!("DELETE FROM {table} WHERE {entity}"),
            format!(
                "WITH moved AS (DELETE FROM {table} WHERE {entity} AND id = $3 AND value = $4 \
                 RETURNING namespace, entity, id, value) \
                 INSERT INTO {quarantine} (namespace, entity, id, value, moved_at_ms) \
                 SELECT namespace, entity, id, value, $5 FROM moved RETURNING id"
            ),
            format!("SELECT DISTINCT namespace, entity FROM {table}"),
        ];
        // Pipelined: one round trip for all of them.
        let prepared =
            futures_util::future::try_join_all(texts.iter().map(|text| client.prepare(text)))
                .await?;
        let [read, has, keys, scan, upsert, upsert_changed, insert_only, remove, remove_all, move_aside, entities] =
            <[Statement; 11]>::try_from(prepared).unwrap_or_else(|_| unreachable!("eleven texts"));
        Ok(Statements {
            read,
            has,
            keys,
            scan,
            upsert,
            upsert_changed,
            insert_only,
            remove,
            remove_all,
            move_aside,
            entities,
        })
    }
}

/// A connection with its prepared statements.
#[derive(Clone)]
struct PgConn {
    client: Arc<Client>,
    statements: Arc<Statements>,
}

/// Connect, make sure the schema is there (once per configuration), and prepare.
async fn connect(config: &PostgresConfig, resources: &Resources) -> Result<PgConn> {
    let attempt = async {
        // `sslmode` is ours to handle (from_options checked both steps).
        let (url, _) = split_sslmode(&config.table.url)
            .map_err(|detail| PersistError::InvalidConfig { detail })?;
        let mut pg = url
            .parse::<tokio_postgres::Config>()
            .map_err(|e| failure(config, &e))?;
        pg.connect_timeout(config.connect_timeout)
            .application_name("backtest-kit-rs");
        let opened = match config.ssl {
            Ssl::Disable => open(pg.ssl_mode(SslMode::Disable), NoTls).await,
            mode => {
                let tls = MakeRustlsConnect::new(tls_config(config)?);
                pg.ssl_mode(if mode == Ssl::Prefer {
                    SslMode::Prefer
                } else {
                    SslMode::Require
                });
                open(&pg, tls).await
            }
        };
        let client = opened.map_err(|e| failure(config, &e))?;
        if !resources.schema_ready.load(Ordering::Acquire) {
            ensure_schema(&client, config).await?;
            resources.schema_ready.store(true, Ordering::Release);
        }
        let statements = Statements::prepare(&client, config)
            .await
            .map_err(|e| failure(config, &e))?;
        Ok(PgConn {
            client: Arc::new(client),
            statements: Arc::new(statements),
        })
    };
    within(
        config,
        config.connect_timeout + config.command_timeout,
        attempt,
    )
    .await
    .and_then(|r| r)
}

/// A client whose connection runs on the runtime until the client is dropped.
async fn open<T>(
    pg: &tokio_postgres::Config,
    tls: T,
) -> std::result::Result<Client, tokio_postgres::Error>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    let (client, connection) = pg.connect(tls).await?;
    spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Create the tables, or check their version, in one transaction under an advisory lock named
/// after the table, so that processes starting at once do not race.
async fn ensure_schema(client: &Client, config: &PostgresConfig) -> Result<()> {
    let err = |e: tokio_postgres::Error| failure(config, &e);
    let encoding: String = client
        .query_one("SHOW server_encoding", &[])
        .await
        .map_err(err)?
        .get(0);
    if encoding != "UTF8" {
        return Err(PersistError::InvalidConfig {
            detail: format!(
                "{}: the database encoding is {encoding}; documents are UTF-8 text, so the \
                 database must be UTF8",
                config.table.shown()
            ),
        });
    }
    let lock_key = advisory_key(&format!(
        "backtest-kit-rs {}.{}",
        config.table.space, config.table.name
    ));
    client.batch_execute("BEGIN").await.map_err(err)?;
    let outcome = create_or_read_schema(client, config, lock_key).await;
    match outcome {
        Ok(found) if found > SCHEMA_VERSION => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(PersistError::SchemaTooNew {
                location: config.table.shown(),
                found,
                supported: SCHEMA_VERSION,
            })
        }
        Ok(_) => client.batch_execute("COMMIT").await.map_err(err),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(err(e))
        }
    }
}

/// Under the advisory lock, in the caller's transaction: create the schema, tables and version
/// row if missing; the version found (this one's when just created).
async fn create_or_read_schema(
    client: &Client,
    config: &PostgresConfig,
    lock_key: i64,
) -> std::result::Result<i64, tokio_postgres::Error> {
    let (table, meta, quarantine) = (
        config.quoted(""),
        config.quoted("_meta"),
        config.quoted("_quarantine"),
    );
    client
        .execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key])
        .await?;
    let schema_exists = client
        .query_opt(
            "SELECT 1 FROM pg_namespace WHERE nspname = $1",
            &[&config.table.space],
        )
        .await?
        .is_some();
    if !schema_exists {
        client
            .batch_execute(&format!("CREATE SCHEMA \"{}\"", config.table.space))
            .await?;
    }
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {meta} (key text PRIMARY KEY, value text NOT NULL)"
        ))
        .await?;
    let found: Option<i64> = client
        .query_opt(
            &format!("SELECT value::bigint FROM {meta} WHERE key = 'schema_version'"),
            &[],
        )
        .await?
        .map(|row| row.get(0));
    if found.is_none() {
        client
            .batch_execute(&format!(
                "CREATE TABLE {table} (namespace text COLLATE \"C\" NOT NULL, \
                   entity text COLLATE \"C\" NOT NULL, id text COLLATE \"C\" NOT NULL, \
                   value text NOT NULL, PRIMARY KEY (namespace, entity, id)); \
                 CREATE TABLE {quarantine} (namespace text NOT NULL, entity text NOT NULL, \
                   id text NOT NULL, value text NOT NULL, moved_at_ms bigint NOT NULL); \
                 INSERT INTO {meta} (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')"
            ))
            .await?;
    }
    Ok(found.unwrap_or(SCHEMA_VERSION))
}

/// FNV-1a: a stable 64-bit key for `pg_advisory_xact_lock`, the same in every process.
fn advisory_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

fn tls_config(config: &PostgresConfig) -> Result<rustls::ClientConfig> {
    install_crypto_provider();
    let invalid = |detail: String| PersistError::InvalidConfig {
        detail: format!("{}: {detail}", config.table.shown()),
    };
    let verify = match config.ssl {
        // libpq: with a root certificate, prefer and require check the chain as verify-ca.
        Ssl::Prefer | Ssl::Require if config.ca_pem.is_none() => Verify::Nothing,
        Ssl::VerifyFull => Verify::Full,
        _ => Verify::Chain,
    };
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    // Roots only when a chain is checked: loading the system's costs file reads per connect.
    let webpki = if verify == Verify::Nothing {
        None
    } else {
        let mut roots = RootCertStore::empty();
        match &config.ca_pem {
            Some(ca) => {
                for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                    let cert = cert.map_err(|e| invalid(format!("tls.ca: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| invalid(format!("tls.ca: {e}")))?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .ok()
    };
    let verifier = Arc::new(CertificateCheck {
        verify,
        webpki,
        provider,
    });
    Ok(rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    Nothing,
    Chain,
    Full,
}

/// The server certificate checked as `sslmode` asks: not at all (the connection is still
/// encrypted, as libpq's `require`), the chain only, or the chain and the host name.
#[derive(Debug)]
struct CertificateCheck {
    verify: Verify,
    /// Absent when nothing is checked, or when no root could be loaded: then every chain check
    /// fails.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for CertificateCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if self.verify == Verify::Nothing {
            return Ok(ServerCertVerified::assertion());
        }
        let Some(webpki) = &self.webpki else {
            return Err(rustls::Error::General(
                "no trusted root certificates: give tls.ca".into(),
            ));
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.verify == Verify::Chain => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The outcome, or `PERSIST_UNAVAILABLE` when it takes longer than `limit`.
async fn within<T>(
    config: &PostgresConfig,
    limit: Duration,
    outcome: impl Future<Output = T>,
) -> Result<T> {
    tokio::time::timeout(limit, outcome)
        .await
        .map_err(|_| PersistError::Server {
            service: "postgres",
            url: redact_url(&config.table.url),
            detail: format!("no reply within {} ms", limit.as_millis()),
            kind: ServerFailure::Unavailable,
        })
}

fn failure(config: &PostgresConfig, err: &tokio_postgres::Error) -> PersistError {
    let kind = match err.code() {
        Some(code)
            if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                || *code == SqlState::INSUFFICIENT_PRIVILEGE =>
        {
            ServerFailure::Auth
        }
        // Connection exceptions, the server shutting down or starting, too many clients.
        Some(code)
            if code.code().starts_with("08")
                || code.code().starts_with("57P")
                || *code == SqlState::TOO_MANY_CONNECTIONS =>
        {
            ServerFailure::Unavailable
        }
        Some(_) => ServerFailure::Other,
        // The server asked for a password the URL does not give (the client's only way to say so).
        None if std::error::Error::source(err)
            .is_some_and(|source| source.to_string().contains("password missing")) =>
        {
            ServerFailure::Auth
        }
        None if err.is_closed() => ServerFailure::Unavailable,
        None => {
            let io = std::error::Error::source(err)
                .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some());
            if io || err.to_string().contains("timed out") {
                ServerFailure::Unavailable
            } else {
                ServerFailure::Other
            }
        }
    };
    let detail = match err.as_db_error() {
        Some(db) => format!("{} ({}): {}", db.severity(), db.code().code(), db.message()),
        None => match std::error::Error::source(err) {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        },
    };
    PersistError::Server {
        service: "postgres",
        url: redact_url(&config.table.url),
        detail: scrub_secrets(&detail, &config.table.url),
        kind,
    }
}

/// Everything shared by the stores of one configuration.
#[derive(Default)]
struct Resources {
    /// The read connection.
    reader: SharedConnection<PgConn>,
    /// The writer task's queue, while it runs.
    writer: Mutex<Option<mpsc::UnboundedSender<Queued>>>,
    /// Set once the schema was created or checked in this process.
    schema_ready: AtomicBool,
    counters: Counters,
}

/// What the stores of one configuration share, for the process.
static PER_CONFIG: PerConfig<PostgresConfig, Resources> = PerConfig::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_url_names_what_the_driver_refused_without_the_password() {
        let err =
            PostgresConfig::from_options(&json!({ "url": "postgres://u:hunter22@h/db?tabel=x" }))
                .expect_err("refused");
        let message = err.to_string();
        // The URL is shown too: the driver's own words must name the parameter.
        let (_, driver) = message
            .split_once("(from the url option): ")
            .expect("wording");
        assert!(driver.contains("tabel"), "{message}");
        assert!(!message.contains("hunter22"), "{message}");
    }

    #[test]
    fn sslmode_is_taken_out_of_the_url() {
        assert_eq!(
            split_sslmode("postgres://u:p@h/db?sslmode=verify-full&connect_timeout=3"),
            Ok((
                "postgres://u:p@h/db?connect_timeout=3".to_owned(),
                Ssl::VerifyFull
            ))
        );
        assert_eq!(
            split_sslmode("postgres://h/db"),
            Ok(("postgres://h/db".to_owned(), Ssl::Prefer))
        );
        assert!(split_sslmode("postgres://h/db?sslmode=allow-ish").is_err());
    }

    #[test]
    fn options_are_checked_and_credentials_never_shown() {
        let refused = |options: Value| PostgresConfig::from_options(&options).expect_err("refused");
        for options in [
            json!({ "url": "mysql://h/db" }),
            json!({ "table": "a-b" }),
            json!({ "table": "1a" }),
            json!({ "schema": "" }),
            json!({ "table": "x".repeat(60) }),
            json!({ "url": "postgres://h/db?sslmode=nope" }),
            json!({ "commandTimeoutMs": 0 }),
            json!({ "tls": { "ca": "not a certificate" } }),
            json!({ "tables": "x" }),
        ] {
            assert_eq!(refused(options).code(), "PERSIST_INVALID_CONFIG");
        }
        let err = refused(json!({ "url": "http://bob:hunter22@h/db" }));
        assert!(!err.to_string().contains("hunter22"), "{err}");
        let config =
            PostgresConfig::from_options(&json!({ "url": "postgres://bob:hunter22@h/db" }))
                .expect("valid");
        assert!(!format!("{config:?}").contains("hunter22"));
        assert!(!config.table.shown().contains("hunter22"));
    }

    #[test]
    fn advisory_keys_are_stable() {
        assert_eq!(advisory_key(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_ne!(advisory_key("a.b"), advisory_key("a.c"));
    }
}
