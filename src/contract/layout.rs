//! backtest-kit's directory layout, for the backends that mirror it (files, S3 objects) when a
//! tool lists what they hold: which part of a document's directory is the namespace (the
//! `baseDir` a domain passes) and which is the entity name. The database backends store the two
//! apart and need none of this.
//!
//! backtest-kit 19.x: `./dump/data/{domain}/{entity}` (the candle entity is
//! `{exchange}/{symbol}/{interval}`), `./dump/memory/{signalId}/{bucket}`,
//! `./dump/state/{signalId}/{bucket}` and `./dump/session/{strategy}/{exchange}/{frame}`
//! (`frame` empty in live mode: documents straight in the namespace).

/// (namespace, entity) of a document directory given as path segments from the bot's working
/// directory, the first being the dump directory's own name (`dump`). Unknown shapes: the
/// parent is the namespace and the last segment the entity.
pub fn split(segments: &[&str]) -> (String, String) {
    let join = |parts: &[&str]| parts.join("/");
    let at = |n: usize| {
        (
            join(&segments[..n.min(segments.len())]),
            join(&segments[n.min(segments.len())..]),
        )
    };
    match segments {
        [_, "data", _, ..] => at(3),
        [_, "memory" | "state", _, ..] => at(3),
        [_, "session", _, _, ..] => at(4),
        [] => (String::new(), String::new()),
        [only] => (String::new(), (*only).to_owned()),
        [.., _] => at(segments.len() - 1),
    }
}

/// The backtest-kit domain a namespace belongs to: the part after `data` (`dump/data/signal` →
/// `signal`), else `memory`, `state` or `session` where the namespace holds one, else its last
/// part (`(root)` when it has none). For tools that group what a store holds by domain.
pub fn domain_of(namespace: &str) -> String {
    let parts: Vec<&str> = namespace.split('/').collect();
    let after_data = parts
        .iter()
        .rposition(|part| *part == "data")
        .and_then(|at| parts.get(at + 1))
        .filter(|domain| !domain.is_empty());
    if let Some(domain) = after_data {
        return (*domain).to_owned();
    }
    if let Some(domain) = ["memory", "state", "session"]
        .into_iter()
        .find(|domain| parts.contains(domain))
    {
        return domain.to_owned();
    }
    match parts.last() {
        Some(last) if !last.is_empty() => (*last).to_owned(),
        _ => "(root)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(path: &str) -> (String, String) {
        split(&path.split('/').collect::<Vec<_>>())
    }

    #[test]
    fn domains_split_where_backtest_kit_puts_their_base_directories() {
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            of("dump/data/signal/BTC_s1_ex1"),
            pair("dump/data/signal", "BTC_s1_ex1")
        );
        assert_eq!(
            of("dump/data/candle/ex/BTC/1m"),
            pair("dump/data/candle", "ex/BTC/1m")
        );
        assert_eq!(
            of("dump/memory/sig-1/bucket"),
            pair("dump/memory/sig-1", "bucket")
        );
        assert_eq!(of("dump/session/s1/ex1"), pair("dump/session/s1/ex1", ""));
        assert_eq!(
            of("dump/session/s1/ex1/frame"),
            pair("dump/session/s1/ex1", "frame")
        );
        assert_eq!(of("other/a/b"), pair("other/a", "b"));
        assert_eq!(of("dump/data/log"), pair("dump/data/log", ""));
    }

    #[test]
    fn namespaces_belong_to_the_domain_backtest_kit_writes_them_for() {
        for (namespace, domain) in [
            ("dump/data/signal", "signal"),
            ("bot/dump/data/candle", "candle"),
            ("dump/memory/sig-1", "memory"),
            ("dump/state/sig-1", "state"),
            ("dump/session/s1/ex1", "session"),
            ("dump/data", "data"),
            ("elsewhere/custom", "custom"),
            ("", "(root)"),
        ] {
            assert_eq!(domain_of(namespace), domain, "{namespace}");
        }
    }
}
