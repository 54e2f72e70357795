//! Helpers for the backends' unit tests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "bkrs-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

use std::sync::Arc;

use super::{Doc, InitReport, Request, Response, Store, WriteMode};
use crate::error::Result;
use crate::layers::call;

/// The request API as plain async calls, for the backends' unit tests.
pub struct Client(pub Arc<dyn Store>);

impl Client {
    pub async fn init(&self, validate: bool) -> Result<InitReport> {
        match call(&self.0, Request::Init { validate }).await? {
            Response::Init(report) => Ok(report),
            other => panic!("unexpected {other:?}"),
        }
    }
    pub async fn read(&self, id: &str) -> Result<Option<String>> {
        let request = Request::Read {
            ids: vec![id.to_owned()],
            stop_at_missing: false,
            heal: false,
        };
        match call(&self.0, request).await? {
            Response::Docs(mut docs) => match docs.pop() {
                Some(Doc::Text(text)) => Ok(Some(text)),
                _ => Ok(None),
            },
            other => panic!("unexpected {other:?}"),
        }
    }
    pub async fn read_many(&self, ids: &[&str], stop: bool, heal: bool) -> Result<Vec<Doc>> {
        let ids = ids.iter().map(|id| id.to_string()).collect();
        let request = Request::Read {
            ids,
            stop_at_missing: stop,
            heal,
        };
        match call(&self.0, request).await? {
            Response::Docs(docs) => Ok(docs),
            other => panic!("unexpected {other:?}"),
        }
    }
    pub async fn has(&self, id: &str) -> Result<bool> {
        match call(
            &self.0,
            Request::Has {
                ids: vec![id.to_owned()],
            },
        )
        .await?
        {
            Response::Flags(flags) => Ok(flags[0]),
            other => panic!("unexpected {other:?}"),
        }
    }
    pub async fn write(&self, id: &str, json: &str) -> Result<()> {
        self.write_many(&[(id, json)], WriteMode::Replace, true)
            .await
            .map(drop)
    }
    pub async fn write_many(
        &self,
        docs: &[(&str, &str)],
        mode: WriteMode,
        durable: bool,
    ) -> Result<usize> {
        let docs = docs
            .iter()
            .map(|(id, text)| (id.to_string(), text.to_string()))
            .collect();
        let request = Request::Write {
            docs,
            mode,
            durable,
        };
        match call(&self.0, request).await? {
            Response::Written(n) => Ok(n),
            other => panic!("unexpected {other:?}"),
        }
    }
    pub async fn remove(&self, id: &str) -> Result<()> {
        call(&self.0, Request::Remove { id: id.to_owned() })
            .await
            .map(drop)
    }
    pub async fn keys(&self) -> Result<Vec<String>> {
        match call(&self.0, Request::Keys).await? {
            Response::Keys(mut keys) => {
                keys.sort();
                Ok(keys)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    pub async fn remove_all(&self) -> Result<()> {
        call(&self.0, Request::RemoveAll).await.map(drop)
    }
    pub async fn scan(&self) -> Result<Vec<(String, String)>> {
        match call(&self.0, Request::Scan).await? {
            Response::Entries(mut entries) => {
                entries.sort();
                Ok(entries)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime")
}
