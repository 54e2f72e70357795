//! The behaviour every [`Store`](super::Store) keeps, as the request API sees it, run in
//! `cargo test` over the backends that need no server (file, SQLite). The JavaScript conformance
//! suite checks the same, and more, over every backend through the addon; this one fails before
//! an addon is built. A store here is raw (no layers): it takes any text, so a test plants a
//! document that is not JSON by writing it.

use std::sync::Arc;

use super::testutil::Client;
use super::{Doc, WriteMode};
use crate::error::PersistError;
use crate::json::is_valid_json;

/// Every check, each on entities of its own; `open(base_dir, entity)` makes a store (no I/O).
pub async fn check(open: impl Fn(&str, &str) -> Client) {
    round_trip(&open("conf/rt", "e")).await;
    namespaces_and_entities_apart(&open).await;
    batch_modes(&open("conf/modes", "e")).await;
    windows_stop_at_the_first_missing_and_heal(&open("conf/window", "e")).await;
    init_moves_what_is_not_json_aside(&open("conf/init", "e")).await;
    concurrent_writes_leave_one_whole_version(open("conf/race", "e")).await;
}

async fn round_trip(store: &Client) {
    store.init(true).await.expect("init");
    assert_eq!(store.keys().await.expect("keys"), Vec::<String>::new());
    store.write("10", "{\"a\":1}").await.expect("write");
    assert_eq!(
        store.read("10").await.expect("read").as_deref(),
        Some("{\"a\":1}")
    );
    assert!(store.has("10").await.expect("has"));
    assert_eq!(store.read("11").await.expect("read"), None);
    assert!(!store.has("11").await.expect("has"));
    store.write("10", "[2]").await.expect("overwrite");
    assert_eq!(
        store.read("10").await.expect("read").as_deref(),
        Some("[2]")
    );
    assert_eq!(store.keys().await.expect("keys"), vec!["10"]);
    assert_eq!(
        store.scan().await.expect("scan"),
        vec![("10".to_owned(), "[2]".to_owned())]
    );
    store.remove("10").await.expect("remove");
    assert!(matches!(
        store.remove("10").await,
        Err(PersistError::NotFound)
    ));
    assert_eq!(store.read("10").await.expect("read"), None);
}

/// The same id in two base directories and in two entities: four documents; `./x/` and `x`
/// are one base directory; removing all of one entity leaves the others.
async fn namespaces_and_entities_apart(open: &impl Fn(&str, &str) -> Client) {
    let signal = open("./conf/signal/", "e");
    let same = open("conf/signal", "e");
    let schedule = open("conf/schedule", "e");
    let other = open("conf/signal", "f");
    for (store, text) in [(&signal, "[1]"), (&schedule, "[2]"), (&other, "[3]")] {
        store.init(true).await.expect("init");
        store.write("BTC", text).await.expect("write");
    }
    assert_eq!(
        same.read("BTC").await.expect("read").as_deref(),
        Some("[1]")
    );
    assert_eq!(
        schedule.read("BTC").await.expect("read").as_deref(),
        Some("[2]")
    );
    assert_eq!(
        other.read("BTC").await.expect("read").as_deref(),
        Some("[3]")
    );
    signal.remove_all().await.expect("remove all");
    assert_eq!(same.keys().await.expect("keys"), Vec::<String>::new());
    assert_eq!(schedule.keys().await.expect("keys"), vec!["BTC"]);
    assert_eq!(other.keys().await.expect("keys"), vec!["BTC"]);
}

async fn batch_modes(store: &Client) {
    store.init(false).await.expect("init");
    let insert = |docs| store.write_many(docs, WriteMode::InsertOnly, false);
    assert_eq!(
        insert(&[("1", "[1]"), ("2", "[2]")]).await.expect("insert"),
        2
    );
    assert_eq!(
        insert(&[("1", "[9]"), ("3", "[3]")]).await.expect("again"),
        1
    );
    assert_eq!(store.read("1").await.expect("read").as_deref(), Some("[1]"));
    let changed = store
        .write_many(
            &[("1", "[1]"), ("2", "[22]")],
            WriteMode::ReplaceChanged,
            true,
        )
        .await
        .expect("changed");
    assert_eq!(changed, 1);
    assert_eq!(
        store.read("2").await.expect("read").as_deref(),
        Some("[22]")
    );
    assert_eq!(store.keys().await.expect("keys"), vec!["1", "2", "3"]);
}

async fn windows_stop_at_the_first_missing_and_heal(store: &Client) {
    store.init(false).await.expect("init");
    for (id, text) in [("1", "[1]"), ("2", "{torn"), ("4", "[4]")] {
        store.write(id, text).await.expect("plant");
    }
    let docs = store.read_many(&["1", "3", "4"], true, false).await;
    assert_eq!(
        docs.expect("read"),
        vec![Doc::Text("[1]".into()), Doc::Missing]
    );
    // Without healing, a document that is not JSON is answered as stored (the caller judges
    // it) and stays where it is.
    let docs = store.read_many(&["2"], false, false).await.expect("read");
    assert_eq!(docs, vec![Doc::Text("{torn".into())]);
    assert_eq!(store.keys().await.expect("keys"), vec!["1", "2", "4"]);
    let docs = store.read_many(&["1", "2", "4"], false, true).await;
    let docs = docs.expect("read");
    assert!(
        matches!(&docs[1], Doc::Corrupt { id, .. } if id == "2"),
        "{docs:?}"
    );
    assert_eq!(docs[2], Doc::Text("[4]".into()));
    // The move may be queued with the writes (SQLite's writer): a write issued after it has
    // finished once it resolves.
    store.write("5", "[5]").await.expect("later write");
    assert_eq!(store.read("2").await.expect("read"), None);
    assert_eq!(store.keys().await.expect("keys"), vec!["1", "4", "5"]);
}

async fn init_moves_what_is_not_json_aside(store: &Client) {
    store.init(true).await.expect("init");
    store.write("good", "[1]").await.expect("write");
    store.write("bad", "{\"torn\":").await.expect("plant");
    let report = store.init(true).await.expect("init");
    assert_eq!(report.removed_invalid.len(), 1, "{report:?}");
    assert!(report.failed_removals.is_empty(), "{report:?}");
    assert_eq!(store.keys().await.expect("keys"), vec!["good"]);
    // What was moved aside stays aside: a later init finds nothing.
    let report = store.init(true).await.expect("init again");
    assert!(report.removed_invalid.is_empty(), "{report:?}");
}

async fn concurrent_writes_leave_one_whole_version(store: Client) {
    let store = Arc::new(store);
    store.init(true).await.expect("init");
    let writes = (0..200)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.write("k", &format!("[{i}]")).await })
        })
        .collect::<Vec<_>>();
    for write in writes {
        write.await.expect("join").expect("write");
    }
    let text = store.read("k").await.expect("read").expect("present");
    assert!(is_valid_json(text.as_bytes()), "{text}");
    assert_eq!(store.keys().await.expect("keys"), vec!["k"]);
}
