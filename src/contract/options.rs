//! Strict reading of a backend's JSON options: each name is taken once, with its type checked,
//! and [`Options::finish`] refuses whatever is left, so a misspelt option is an error instead of
//! a silent fallback to the default.

use serde_json::{Map, Value};

use crate::contract::Storage;
use crate::error::{PersistError, Result};

/// A backend's configuration as its options resolve: read strictly (see [`Options`]), defaults
/// taken from the environment and the working directory at this moment.
pub trait BackendConfig: Sized {
    fn from_options(options: &Value) -> Result<Self>;

    /// The storage this configuration names (its stores' scopes have it), so that closing it
    /// waits for their requests issued before.
    fn storage(&self) -> Storage;
}

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

    /// The option `name`, else the first non-empty variable of `envs`, with where it came from
    /// ("the url option" or the variable's name), so an error can say which setting to fix.
    pub fn string_or_env(&mut self, name: &str, envs: &[&'static str]) -> Result<Option<Setting>> {
        if let Some(value) = self.string(name)? {
            return Ok(Some(Setting {
                value,
                origin: format!("the {name} option"),
            }));
        }
        Ok(Setting::from_env(envs))
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
        self.string_list(name, true)
    }

    /// A non-empty array of strings whose values never appear in an error (keys).
    pub fn secrets(&mut self, name: &str) -> Result<Option<Vec<String>>> {
        self.string_list(name, false)
    }

    /// A non-empty array of strings; `show`: an error may echo the value given.
    fn string_list(&mut self, name: &str, show: bool) -> Result<Option<Vec<String>>> {
        let got = |value: &Value| match show {
            true => format!(", got {value}"),
            false => String::new(),
        };
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) if !items.is_empty() => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    other => Err(self.invalid(format!("{name} must hold strings{}", got(&other)))),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(other) => Err(self.invalid(format!(
                "{name} must be a non-empty array of strings{}",
                got(&other)
            ))),
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
        let ms = self.positive(name, MAX_MILLISECONDS)?;
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
        let hints = unknown
            .iter()
            .filter_map(|name| suggestion(name).map(|hint| format!("; {name:?}: {hint}")))
            .collect::<String>();
        Err(invalid(
            self.backend,
            format!("unknown option {names}{hints}"),
        ))
    }
}

/// The parameters of a URL's query, in order, as (pair, name, raw value): `pair` is the text as
/// written (to hand on to a driver), the value still percent-encoded.
pub fn query_pairs(url: &str) -> impl Iterator<Item = (&str, &str, &str)> {
    let query = url
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or_default();
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (pair, name, value)
        })
}

/// The longest timeout an option or URL parameter may give, in milliseconds (the timers' range).
pub const MAX_MILLISECONDS: u64 = i32::MAX as u64;

/// A timeout URL parameter (`?commandTimeoutMs=20000`): whole milliseconds, 1 to
/// [`MAX_MILLISECONDS`], as the option of that name.
pub fn milliseconds_param(name: &str, value: &str) -> std::result::Result<u64, String> {
    value
        .parse::<u64>()
        .ok()
        .filter(|ms| (1..=MAX_MILLISECONDS).contains(ms))
        .ok_or_else(|| {
            format!(
                "url: {name} must be a whole number from 1 to {MAX_MILLISECONDS}, got {value:?}"
            )
        })
}

/// A boolean URL parameter (`?pathStyle=true`, `?syncReads=false`).
pub fn boolean_param(name: &str, value: &str) -> std::result::Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("url: {name} must be true or false, got {other:?}")),
    }
}

/// A URL without its query parameters named in `ours` (this library's, such as `prefix`), and
/// their percent-decoded values; every other parameter stays, in order, for the driver. A
/// parameter of ours given twice is refused.
pub fn take_url_params(
    url: &str,
    ours: &[&str],
) -> std::result::Result<(String, Vec<(String, String)>), String> {
    let base = url.split_once('?').map_or(url, |(base, _)| base);
    let (mut kept, mut taken) = (Vec::new(), Vec::<(String, String)>::new());
    for (pair, name, value) in query_pairs(url) {
        if ours.contains(&name) {
            if taken.iter().any(|(seen, _)| seen == name) {
                return Err(format!("url: parameter {name:?} is given twice"));
            }
            taken.push((
                name.to_owned(),
                crate::remote::credentials::percent_decode(value),
            ));
        } else {
            kept.push(pair);
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, taken))
}

impl Options {
    /// Option `name`, else the URL parameter of that name (from [`take_url_params`]); both
    /// together are refused, as one would silently win.
    pub fn string_or_url_param(
        &mut self,
        name: &str,
        params: &[(String, String)],
    ) -> Result<Option<String>> {
        let from_url = params
            .iter()
            .find(|(param, _)| param == name)
            .map(|(_, value)| value.clone());
        match (self.string(name)?, from_url) {
            (Some(_), Some(_)) => Err(self.invalid(format!(
                "{name} is given both as an option and as the url's ?{name}= parameter: give one"
            ))),
            (option, param) => Ok(option.or(param)),
        }
    }
}

/// A setting's value and where it came from (an option or an environment variable).
pub struct Setting {
    pub value: String,
    pub origin: String,
}

impl Setting {
    /// The first non-empty variable of `variables`, with its name as the origin.
    pub fn from_env(variables: &[&'static str]) -> Option<Setting> {
        variables.iter().find_map(|variable| {
            std::env::var(variable)
                .ok()
                .filter(|value| !value.is_empty())
                .map(|value| Setting {
                    value,
                    origin: format!("the environment variable {variable}"),
                })
        })
    }
}

/// What to write instead of an option name other clients (ioredis, pg, keyv, mongodb) use.
fn suggestion(name: &str) -> Option<&'static str> {
    Some(match name {
        "host" | "hostname" | "port" | "password" | "username" | "user" | "db" => {
            "did you mean url? host, port, credentials and database go into it (redis://user:pass@host:6379/0, postgres://user:pass@host/db)"
        }
        "connectionString" | "uri" | "connectionUrl" | "connection" => "did you mean url?",
        "keyPrefix" | "namespace" => "did you mean prefix?",
        "ssl" => "did you mean tls: { ca }? (or rediss:// / sslmode= in the url)",
        _ => return None,
    })
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

        let err = Options::new("redis", &json!({"keyPrefix": "a", "host": "h"}))
            .expect("obj")
            .finish()
            .expect_err("keyv and ioredis names are unknown");
        assert!(err.to_string().contains("did you mean prefix?"), "{err}");
        assert!(err.to_string().contains("did you mean url?"), "{err}");
    }

    #[test]
    fn our_url_parameters_are_taken_out_and_the_driver_keeps_its_own() {
        let (url, taken) =
            take_url_params("redis://h:1/0?prefix=bot%2Da&protocol=resp3", &["prefix"])
                .expect("ok");
        assert_eq!(url, "redis://h:1/0?protocol=resp3");
        assert_eq!(taken, vec![("prefix".to_owned(), "bot-a".to_owned())]);
        let (url, taken) =
            take_url_params("postgres://h/db?table=t", &["table", "schema"]).expect("ok");
        assert_eq!((url.as_str(), taken.len()), ("postgres://h/db", 1));
        assert!(take_url_params("redis://h?prefix=a&prefix=b", &["prefix"]).is_err());

        let params = vec![("prefix".to_owned(), "a".to_owned())];
        let mut both = Options::new("redis", &json!({"prefix": "b"})).expect("obj");
        assert!(both.string_or_url_param("prefix", &params).is_err());
        let mut one = Options::new("redis", &json!({})).expect("obj");
        assert_eq!(
            one.string_or_url_param("prefix", &params)
                .expect("ok")
                .as_deref(),
            Some("a")
        );

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
