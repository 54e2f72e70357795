//! Strict reading of a backend's JSON options: each name is taken once, with its type checked,
//! and [`Options::finish`] refuses whatever is left, so a misspelt option is an error instead of
//! a silent fallback to the default.

use serde_json::{Map, Value};

use crate::error::{PersistError, Result};

pub struct Options {
    backend: &'static str,
    rest: Map<String, Value>,
}

impl Options {
    /// `value` must be a JSON object (or null, read as no options).
    pub fn new(backend: &'static str, value: &Value) -> Result<Self> {
        let rest = match value {
            Value::Object(map) => map.clone(),
            Value::Null => Map::new(),
            other => {
                return Err(invalid(
                    backend,
                    format!("options must be an object, got {other}"),
                ))
            }
        };
        Ok(Options { backend, rest })
    }

    pub fn invalid(&self, detail: impl Into<String>) -> PersistError {
        invalid(self.backend, detail.into())
    }

    /// A value that is absent or `null` reads as not given.
    fn take(&mut self, name: &str) -> Option<Value> {
        self.rest.remove(name).filter(|v| !v.is_null())
    }

    pub fn string(&mut self, name: &str) -> Result<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.invalid(format!("{name} must be a string, got {other}"))),
        }
    }

    /// A string whose value never appears in an error (a password).
    pub fn secret(&mut self, name: &str) -> Result<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.invalid(format!("{name} must be a string"))),
        }
    }

    pub fn boolean(&mut self, name: &str) -> Result<Option<bool>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.invalid(format!("{name} must be a boolean, got {other}"))),
        }
    }

    /// A whole number in `1..=max`.
    pub fn positive(&mut self, name: &str, max: u64) -> Result<Option<u64>> {
        match self.take(name) {
            None => Ok(None),
            Some(value) => match value.as_u64().filter(|n| (1..=max).contains(n)) {
                Some(n) => Ok(Some(n)),
                None => Err(self.invalid(format!(
                    "{name} must be a whole number from 1 to {max}, got {value}"
                ))),
            },
        }
    }

    /// A non-empty array of strings.
    pub fn strings(&mut self, name: &str) -> Result<Option<Vec<String>>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) if !items.is_empty() => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    other => Err(self.invalid(format!("{name} must hold strings, got {other}"))),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(other) => Err(self.invalid(format!(
                "{name} must be a non-empty array of strings, got {other}"
            ))),
        }
    }

    /// A non-empty array of strings whose values never appear in an error (keys).
    pub fn secrets(&mut self, name: &str) -> Result<Option<Vec<String>>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) if !items.is_empty() => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    _ => Err(self.invalid(format!("{name} must hold strings"))),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(self.invalid(format!("{name} must be a non-empty array of strings"))),
        }
    }

    /// A whole number in `0..=max`.
    pub fn count(&mut self, name: &str, max: u64) -> Result<Option<u64>> {
        match self.take(name) {
            None => Ok(None),
            Some(value) => match value.as_u64().filter(|n| *n <= max) {
                Some(n) => Ok(Some(n)),
                None => Err(self.invalid(format!(
                    "{name} must be a whole number from 0 to {max}, got {value}"
                ))),
            },
        }
    }

    /// A duration in whole milliseconds, 1 to 2^31 - 1 (what Node's timers accept), else `default_ms`.
    pub fn milliseconds(&mut self, name: &str, default_ms: u64) -> Result<std::time::Duration> {
        let ms = self.positive(name, u64::from(i32::MAX as u32))?;
        Ok(std::time::Duration::from_millis(ms.unwrap_or(default_ms)))
    }

    /// `tls: { ca }`: the PEM text of a private CA to trust, if given.
    pub fn tls_ca(&mut self) -> Result<Option<String>> {
        match self.object("tls")? {
            Some(mut tls) => {
                let ca = tls.string("ca")?;
                tls.finish()?;
                Ok(ca)
            }
            None => Ok(None),
        }
    }

    /// A nested options object, read with the same strictness.
    pub fn object(&mut self, name: &str) -> Result<Option<Options>> {
        match self.take(name) {
            None => Ok(None),
            Some(value @ Value::Object(_)) => Options::new(self.backend, &value).map(Some),
            Some(other) => Err(self.invalid(format!("{name} must be an object, got {other}"))),
        }
    }

    /// Refuse every option not taken.
    pub fn finish(self) -> Result<()> {
        let mut unknown: Vec<&String> = self.rest.keys().collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort();
        let names = unknown
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        Err(invalid(self.backend, format!("unknown option {names}")))
    }
}

fn invalid(backend: &str, detail: String) -> PersistError {
    PersistError::InvalidConfig {
        detail: format!("{backend}: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_and_mistyped_options_are_refused() {
        let mut opts = Options::new("redis", &json!({"url": "redis://h", "urll": 1})).expect("obj");
        assert_eq!(
            opts.string("url").expect("url").as_deref(),
            Some("redis://h")
        );
        let err = opts.finish().expect_err("urll is unknown");
        assert_eq!(err.code(), "PERSIST_INVALID_CONFIG");
        assert!(err.to_string().contains("\"urll\""), "{err}");

        let mut opts = Options::new("sqlite", &json!({"syncReads": "yes"})).expect("obj");
        assert!(opts.boolean("syncReads").is_err());
        let mut opts = Options::new("redis", &json!({"commandTimeoutMs": 0})).expect("obj");
        assert!(opts.positive("commandTimeoutMs", 1000).is_err());
        assert!(Options::new("file", &json!([1])).is_err());
        assert!(Options::new("file", &Value::Null)
            .expect("null")
            .finish()
            .is_ok());
    }
}
