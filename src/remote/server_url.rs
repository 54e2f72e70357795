//! The `url` option of a server backend (PostgreSQL, MongoDB): where it came from, this library's
//! parameters taken out of it, its scheme checked, the driver's refusal of it shown without its
//! credentials, and the table it names with it.

use crate::contract::options::{take_url_params, Options};
use crate::error::{PersistError, Result};
use crate::remote::credentials::{redact_url, scrub_secrets};

/// A server URL and the one table (PostgreSQL) or collection (MongoDB) holding every entity:
/// what names a storage of those backends.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServerTable {
    /// As given, credentials included: never shown (`shown` redacts it).
    pub url: String,
    /// "table" or "collection", for messages.
    pub noun: &'static str,
    /// The schema (PostgreSQL) or database (MongoDB) the table is in.
    pub space: String,
    pub name: String,
}

impl ServerTable {
    /// Names the storage for issue order and `close` (holds the URL: never shown).
    pub fn identity(&self) -> String {
        format!("{}\n{}.{}", self.url, self.space, self.name)
    }

    /// For messages: the redacted URL and the table (`postgres://***@h/db table public.t`).
    pub fn shown(&self) -> String {
        format!(
            "{} {} {}.{}",
            redact_url(&self.url),
            self.noun,
            self.space,
            self.name
        )
    }
}

impl std::fmt::Debug for ServerTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

pub struct ServerUrl {
    /// The URL without the parameters that are ours.
    pub url: String,
    /// Where it came from ("the url option", a variable's name, "the default"), for messages.
    pub origin: String,
    /// Our parameters (`?table=`), percent-decoded.
    pub params: Vec<(String, String)>,
}

impl ServerUrl {
    /// The `url` option, else the first non-empty variable of `envs`, else `default`; `ours`
    /// taken out of its query; its scheme one of `schemes`.
    pub fn resolve(
        options: &mut Options,
        envs: &[&'static str],
        default: &str,
        ours: &[&str],
        schemes: &[&str],
    ) -> Result<ServerUrl> {
        let (url, origin) = match options.string_or_env("url", envs)? {
            Some(setting) => (setting.value, setting.origin),
            None => (default.to_owned(), "the default".to_owned()),
        };
        let (url, params) = take_url_params(&url, ours)
            .map_err(|detail| options.invalid(format!("{detail} (from {origin})")))?;
        let prefixes: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        if !prefixes
            .iter()
            .any(|prefix| url.starts_with(prefix.as_str()))
        {
            return Err(options.invalid(format!(
                "url must be a {} URL, got {} (from {origin})",
                prefixes.join(" or "),
                redact_url(&url)
            )));
        }
        Ok(ServerUrl {
            url,
            origin,
            params,
        })
    }

    /// The driver refused the URL: its message, credentials scrubbed in case it echoes them.
    pub fn refused(&self, options: &Options, driver_message: &str) -> PersistError {
        options.invalid(format!(
            "url {} (from {}): {}",
            redact_url(&self.url),
            self.origin,
            scrub_secrets(driver_message, &self.url)
        ))
    }
}

/// An error's message followed by those of its causes that it does not already hold
/// (`invalid connection string: unknown option \`tabel\``), for drivers whose top message is
/// only the kind of failure.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = inner.source();
    }
    message
}
