//! Which ids and entity names name one document of one entity, and the namespace a `baseDir`
//! names in the database backends.

use crate::error::{PersistError, Result};

/// Longest id in bytes. A document file is `{id}.json` and its temporary sibling is
/// `.tmp-{12 hex}-{id}.json`; that name must fit the usual 255-byte file-name limit.
pub const MAX_ID_BYTES: usize = 255 - ".tmp-".len() - 12 - "-".len() - ".json".len();

/// Prefix of in-flight atomic-write files, the same as backtest-kit's `PersistBase`, so
/// each side recognises and sweeps the other's leftovers.
pub const TMP_PREFIX: &str = ".tmp-";

/// Reject ids that could name something other than one document of this entity.
pub fn validate_id(id: &str) -> Result<()> {
    let reason = if id.is_empty() {
        "it is empty"
    } else if id.contains(['/', '\\']) {
        "it contains a path separator"
    } else if id.contains('\0') {
        "it contains a NUL character"
    } else if id == "." || id == ".." {
        "it is a relative path component"
    } else if id.starts_with(TMP_PREFIX) {
        "it starts with the reserved temporary-file prefix \".tmp-\""
    } else if id.len() > MAX_ID_BYTES {
        "it is longer than 232 bytes"
    } else if let Some(reason) = cfg!(windows).then(|| windows_reason(id)).flatten() {
        reason
    } else {
        return Ok(());
    };
    Err(PersistError::InvalidId {
        id: id.to_owned(),
        reason,
    })
}

/// Split an entity name into path segments the way Node's `path.join` would read it,
/// refusing `..` (which would leave `baseDir`) and NUL. `""` and `/` are allowed: backtest-kit
/// uses an empty name for live sessions and `exchange/symbol/interval` for candles.
pub fn entity_segments(name: &str) -> Result<Vec<&str>> {
    let invalid = |reason| PersistError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.contains('\0') {
        return Err(invalid("it contains a NUL character"));
    }
    let mut segments = Vec::new();
    for segment in name.split(path_separators()) {
        match segment {
            "" | "." => {}
            ".." => return Err(invalid("it contains a \"..\" segment")),
            other => {
                if let Some(reason) = cfg!(windows).then(|| windows_reason(other)).flatten() {
                    return Err(invalid(reason));
                }
                segments.push(other)
            }
        }
    }
    Ok(segments)
}

/// Why a path component is unsafe on Windows: `C:x` joined to a path replaces it, `a:b` names
/// an alternate data stream, and device names such as `NUL` or `COM1.json` are not files.
fn windows_reason(component: &str) -> Option<&'static str> {
    if component.contains(':') {
        return Some("it contains a \":\", which Windows reads as a drive or a data stream");
    }
    let stem = component.split('.').next().unwrap_or(component).trim_end();
    let reserved = matches!(
        stem.to_ascii_uppercase().as_str(),
        "CON" | "PRN" | "AUX" | "NUL"
    ) || (stem.len() == 4
        && stem
            .get(..3)
            .is_some_and(|p| ["COM", "LPT"].contains(&p.to_ascii_uppercase().as_str()))
        && stem.as_bytes()[3].is_ascii_digit());
    reserved.then_some("it is a device name on Windows")
}

/// The namespace a `baseDir` names in the database backends, normalised lexically so that
/// `./dump/data/signal/` and `dump/data/signal` are one namespace (as they are one directory).
/// It is not made absolute: a shared database must not depend on each process's cwd.
pub fn namespace_of(base_dir: &str) -> String {
    let absolute = base_dir.starts_with('/') || (cfg!(windows) && base_dir.starts_with('\\'));
    let mut parts: Vec<&str> = Vec::new();
    for segment in base_dir.split(path_separators()) {
        match segment {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

fn path_separators() -> &'static [char] {
    // A backslash is an ordinary file-name character on POSIX, as it is for PersistBase.
    if cfg!(windows) {
        &['/', '\\']
    } else {
        &['/']
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_name_one_document_pass() {
        for id in [
            "BTCUSDT",
            "10",
            "positions",
            "a.b",
            "...",
            "x..y",
            "é",
            ".hidden",
        ] {
            assert!(validate_id(id).is_ok(), "{id:?}");
        }
        assert!(validate_id(&"x".repeat(MAX_ID_BYTES)).is_ok());
    }

    #[test]
    fn ids_that_escape_or_collide_are_rejected() {
        for id in ["", "../x", "a/b", "a\\b", "a\0b", ".", "..", ".tmp-abc"] {
            let err = validate_id(id).expect_err(id);
            assert_eq!(err.code(), "PERSIST_INVALID_ID");
        }
        assert!(validate_id(&"x".repeat(MAX_ID_BYTES + 1)).is_err());
        assert_eq!(MAX_ID_BYTES, 232);
    }

    #[test]
    fn windows_components_that_escape_or_are_devices_are_named() {
        for bad in ["C:x", "a:b", "NUL", "nul.json", "COM1", "lpt9.txt", "CON "] {
            assert!(windows_reason(bad).is_some(), "{bad:?}");
        }
        for ok in [
            "BTCUSDT",
            "console",
            "COM10",
            "nullable",
            "a.b",
            "C\u{20ac}",
            "\u{e9}\u{e9}",
        ] {
            assert!(windows_reason(ok).is_none(), "{ok:?}");
        }
    }

    #[test]
    fn namespaces_normalise_lexically() {
        assert_eq!(namespace_of("./dump/data/signal/"), "dump/data/signal");
        assert_eq!(namespace_of("dump/data/signal"), "dump/data/signal");
        assert_eq!(namespace_of("dump//data/./x/../signal"), "dump/data/signal");
        assert_eq!(namespace_of("/abs/dir/"), "/abs/dir");
        assert_eq!(namespace_of("/../x"), "/x");
        assert_eq!(namespace_of("../up"), "../up");
        assert_eq!(namespace_of(""), "");
        assert_ne!(
            namespace_of("./dump/data/signal/"),
            namespace_of("./dump/data/schedule/")
        );
    }

    #[test]
    fn entity_names_normalise_like_path_join() {
        assert_eq!(
            entity_segments("ex1/BTCUSDT/1m").ok(),
            Some(vec!["ex1", "BTCUSDT", "1m"])
        );
        assert_eq!(entity_segments("").ok(), Some(vec![]));
        assert_eq!(entity_segments("/a//./b/").ok(), Some(vec!["a", "b"]));
        assert!(entity_segments("../etc").is_err());
        assert!(entity_segments("a/../../b").is_err());
        assert!(entity_segments("a\0").is_err());
    }
}
