//! Encryption at rest, for every backend: [`Sealed`] wraps a store and keeps each document as an
//! envelope, a JSON text (so every backend stores, lists and validates it like any document):
//!
//! `{"$bkrs":"xc20p1","kid":"<key id>","nonce":"<base64>","ct":"<base64>"}`
//!
//! The cipher is XChaCha20-Poly1305 (RustCrypto) with a random 24-byte nonce per write. The
//! associated data is the JSON triple (namespace, entity, id), so a ciphertext copied to another
//! id, entity or namespace fails to decrypt. A document that cannot be decrypted (unknown key id,
//! wrong key, tampered) is `PERSIST_DECRYPT`: never treated as corruption, so init never moves it
//! aside. Several keys can be known at once; the first encrypts, every one decrypts (rotation).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::contract::{
    namespace_of, Doc, Options, Reply, Request, Response, Scope, Store, WriteMode,
};
use crate::error::{PersistError, Result};
use crate::exec::lock;

/// The environment variable that turns encryption on for every store of the process: one or
/// more base64 keys of 32 bytes, comma-separated, the first one encrypting.
pub const KEY_ENV: &str = "BACKTEST_KIT_RS_KEY";
/// The envelope's marker and format version.
const FORMAT: &str = "xc20p1";
/// How every envelope's text begins (`$bkrs` sorts, and is inserted, first): a document whose
/// JSON text starts so is taken for an encrypted one, so `$bkrs` as a first key is reserved.
const ENVELOPE_HEAD: &str = "{\"$bkrs\":";

/// The keys a store may use; never shown (`Debug` names only their ids).
#[derive(Clone)]
pub struct Keyring {
    /// (key id, cipher); the first one encrypts.
    keys: Vec<(String, Arc<XChaCha20Poly1305>)>,
    /// Read documents written before encryption was turned on (for `rekey` only).
    accept_plaintext: bool,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("ids", &self.ids()).finish()
    }
}

impl Keyring {
    /// Keys from their base64 texts; `source` names where they came from, for errors (never the
    /// key itself).
    pub fn parse(encoded: &[String], source: &str, accept_plaintext: bool) -> Result<Keyring> {
        let invalid = |detail: String| PersistError::InvalidConfig {
            detail: format!("encryption: {detail}"),
        };
        if encoded.is_empty() {
            return Err(invalid(format!("{source} holds no key")));
        }
        let mut keys = Vec::with_capacity(encoded.len());
        for (index, text) in encoded.iter().enumerate() {
            let bytes = BASE64
                .decode(text.trim())
                .map_err(|_| invalid(format!("key {} of {source} is not base64", index + 1)))?;
            if bytes.len() != 32 {
                return Err(invalid(format!(
                    "key {} of {source} is {} bytes; a key is 32 random bytes, base64-encoded \
                     (openssl rand -base64 32)",
                    index + 1,
                    bytes.len()
                )));
            }
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
                .map_err(|_| invalid(format!("key {} of {source} is unusable", index + 1)))?;
            keys.push((key_id(&bytes), Arc::new(cipher)));
        }
        Ok(Keyring {
            keys,
            accept_plaintext,
        })
    }

    /// The key ids, the encrypting one first (safe to show: a hash prefix, not the key).
    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|(id, _)| id.clone()).collect()
    }

    fn seal(&self, aad: &[u8], text: &str) -> Result<String> {
        let (kid, cipher) = &self.keys[0];
        let nonce = XNonce::generate();
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: text.as_bytes(),
                    aad,
                },
            )
            .map_err(|_| PersistError::Task("encryption failed".into()))?;
        Ok(serde_json::json!({
            "$bkrs": FORMAT,
            "kid": kid,
            "nonce": BASE64.encode(nonce.as_slice()),
            "ct": BASE64.encode(ct),
        })
        .to_string())
    }

    /// The plaintext of a stored document, or why there is none.
    fn open(&self, aad: &[u8], stored: &str) -> std::result::Result<String, String> {
        let envelope: Value = match serde_json::from_str(stored) {
            Ok(Value::Object(map)) if map.get("$bkrs").is_some() => Value::Object(map),
            _ if self.accept_plaintext => return Ok(stored.to_owned()),
            _ => return Err("the document is not encrypted".into()),
        };
        let field = |name: &str| envelope.get(name).and_then(Value::as_str);
        if field("$bkrs") != Some(FORMAT) {
            return Err(format!(
                "unknown envelope format {}",
                envelope.get("$bkrs").unwrap_or(&Value::Null)
            ));
        }
        let kid = field("kid").unwrap_or_default();
        let Some((_, cipher)) = self.keys.iter().find(|(id, _)| id == kid) else {
            return Err(format!(
                "it was encrypted with key {kid:?}, which is not configured"
            ));
        };
        let decode = |name: &str| field(name).and_then(|text| BASE64.decode(text).ok());
        let (Some(nonce), Some(ct)) = (decode("nonce"), decode("ct")) else {
            return Err("the envelope is malformed".into());
        };
        let nonce = XNonce::try_from(nonce.as_slice()).map_err(|_| "the nonce is malformed")?;
        let plain = cipher
            .decrypt(&nonce, Payload { msg: &ct, aad })
            .map_err(|_| {
                format!(
                    "authentication failed with key {kid:?}: a wrong key, a tampered document, or \
                     one moved from another id"
                )
            })?;
        String::from_utf8(plain).map_err(|_| "the plaintext is not UTF-8".into())
    }
}

/// A key's id: the first 6 bytes of SHA-256("backtest-kit-rs key id" ‖ key), in hex.
fn key_id(key: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(b"backtest-kit-rs key id")
        .chain_update(key)
        .finalize();
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// The keyring for a store: `option` (`encryption` of the options: `false`, or an object with
/// `key`, `keys`, `keyFile`) if given, else the environment; `None` when encryption is off.
///
/// One keyring per configuration, kept for the process: a store is made per entity instance, and
/// its construction does no I/O, so a key file is read when the class is defined, not each time.
pub fn keyring(option: Option<&Value>) -> Result<Option<Keyring>> {
    static MADE: OnceLock<Mutex<HashMap<String, Option<Keyring>>>> = OnceLock::new();
    let env = std::env::var(KEY_ENV)
        .ok()
        .filter(|value| !value.trim().is_empty());
    let config = format!(
        "{}\n{}",
        option.map(Value::to_string).unwrap_or_default(),
        env.as_deref().unwrap_or_default()
    );
    let made = MADE.get_or_init(Default::default);
    if let Some(ring) = lock(made).get(&config) {
        return Ok(ring.clone());
    }
    let ring = make_keyring(option, env)?;
    lock(made).insert(config, ring.clone());
    Ok(ring)
}

fn make_keyring(option: Option<&Value>, env: Option<String>) -> Result<Option<Keyring>> {
    match option {
        None | Some(Value::Null) => match env {
            Some(value) => {
                let keys: Vec<String> = value.split(',').map(str::to_owned).collect();
                Keyring::parse(&keys, KEY_ENV, false).map(Some)
            }
            None => Ok(None),
        },
        Some(Value::Bool(false)) => Ok(None),
        Some(value @ Value::Object(_)) => {
            let mut options = Options::new("encryption", value)?;
            let key = options.secret("key")?;
            let more = options.secrets("keys")?;
            let key_file = options.string("keyFile")?;
            let accept_plaintext = options.boolean("acceptPlaintext")?.unwrap_or(false);
            let mut sources = Vec::new();
            let mut keys: Vec<String> = Vec::new();
            if let Some(key) = key {
                keys.push(key);
                sources.push("encryption.key");
            }
            if let Some(more) = more {
                keys.extend(more);
                sources.push("encryption.keys");
            }
            if let Some(path) = key_file {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| options.invalid(format!("keyFile {path}: {}", e.kind())))?;
                keys.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|line| !line.is_empty() && !line.starts_with('#'))
                        .map(str::to_owned),
                );
                sources.push("encryption.keyFile");
            }
            if sources.is_empty() {
                return Err(options.invalid("give key, keys or keyFile (or false to turn it off)"));
            }
            options.finish()?;
            Keyring::parse(&keys, &sources.join(" + "), accept_plaintext).map(Some)
        }
        Some(_) => Err(PersistError::InvalidConfig {
            detail: "encryption: must be false or an object { key | keys | keyFile }".into(),
        }),
    }
}

/// A store whose documents are encrypted with `keyring`, bound to their (namespace, entity, id).
pub struct Sealed {
    inner: Arc<dyn Store>,
    keyring: Keyring,
    /// `["namespace","entity",` — the associated data up to the id.
    aad_prefix: String,
}

impl Sealed {
    pub fn new(inner: Arc<dyn Store>, keyring: Keyring, base_dir: &str, entity: &str) -> Sealed {
        let pair =
            serde_json::to_string(&[namespace_of(base_dir).as_str(), entity]).unwrap_or_default();
        Sealed {
            inner,
            keyring,
            aad_prefix: format!("{},", &pair[..pair.len() - 1]),
        }
    }

    fn aad(&self, id: &str) -> Vec<u8> {
        format!(
            "{}{}]",
            self.aad_prefix,
            serde_json::to_string(id).unwrap_or_default()
        )
        .into_bytes()
    }

    fn open(&self, id: &str, stored: &str) -> Result<String> {
        self.keyring
            .open(&self.aad(id), stored)
            .map_err(|detail| PersistError::Decrypt {
                id: id.to_owned(),
                detail,
            })
    }

    fn seal_docs(&self, docs: Vec<(String, String)>) -> Result<Vec<(String, String)>> {
        docs.into_iter()
            .map(|(id, text)| {
                let sealed = self.keyring.seal(&self.aad(&id), &text)?;
                Ok((id, sealed))
            })
            .collect()
    }

    /// The plaintexts of a reply that carries documents.
    fn open_response(&self, response: Response, ids: &[String]) -> Result<Response> {
        Ok(match response {
            Response::Docs(docs) => Response::Docs(
                docs.into_iter()
                    .zip(ids)
                    .map(|(doc, id)| match doc {
                        Doc::Text(text) => self.open(id, &text).map(Doc::Text),
                        other => Ok(other),
                    })
                    .collect::<Result<_>>()?,
            ),
            Response::Entries(entries) => Response::Entries(
                entries
                    .into_iter()
                    .map(|(id, text)| {
                        let plain = self.open(&id, &text)?;
                        Ok((id, plain))
                    })
                    .collect::<Result<_>>()?,
            ),
            other => other,
        })
    }

    /// Every seal differs (a fresh nonce), so the backend cannot see an unchanged document:
    /// compare plaintexts here, then replace only what changed.
    fn replace_changed(self: Arc<Self>, docs: Vec<(String, String)>, durable: bool, reply: Reply) {
        let read = Request::Read {
            ids: docs.iter().map(|(id, _)| id.clone()).collect(),
            stop_at_missing: false,
            heal: false,
        };
        let this = Arc::clone(&self);
        Arc::clone(&self.inner).submit(
            read,
            Box::new(move |outcome| {
                let stored = match outcome {
                    Ok(Response::Docs(stored)) => stored,
                    Ok(_) => return reply(Err(PersistError::Task("bad reply".into()))),
                    Err(e) => return reply(Err(e)),
                };
                let changed: Vec<(String, String)> = docs
                    .into_iter()
                    .zip(stored)
                    .filter(|((id, text), doc)| match doc {
                        Doc::Text(old) => this.open(id, old).ok().as_ref() != Some(text),
                        _ => true,
                    })
                    .map(|(doc, _)| doc)
                    .collect();
                match this.seal_docs(changed) {
                    Ok(sealed) => Arc::clone(&this.inner).submit(
                        Request::Write {
                            docs: sealed,
                            mode: WriteMode::Replace,
                            durable,
                        },
                        reply,
                    ),
                    Err(e) => reply(Err(e)),
                }
            }),
        );
    }
}

impl Store for Sealed {
    fn scope(&self) -> &Arc<Scope> {
        self.inner.scope()
    }

    fn submit(self: Arc<Self>, request: Request, reply: Reply) {
        match request {
            Request::Read {
                ids,
                stop_at_missing,
                heal,
            } => {
                let read = Request::Read {
                    ids: ids.clone(),
                    stop_at_missing,
                    heal,
                };
                let this = Arc::clone(&self);
                Arc::clone(&self.inner).submit(
                    read,
                    Box::new(move |outcome| {
                        reply(outcome.and_then(|response| this.open_response(response, &ids)))
                    }),
                );
            }
            Request::Scan => {
                let this = Arc::clone(&self);
                Arc::clone(&self.inner).submit(
                    Request::Scan,
                    Box::new(move |outcome| {
                        reply(outcome.and_then(|response| this.open_response(response, &[])))
                    }),
                );
            }
            Request::Write {
                docs,
                mode: WriteMode::ReplaceChanged,
                durable,
            } => self.replace_changed(docs, durable, reply),
            Request::Write {
                docs,
                mode,
                durable,
            } => match self.seal_docs(docs) {
                Ok(sealed) => Arc::clone(&self.inner).submit(
                    Request::Write {
                        docs: sealed,
                        mode,
                        durable,
                    },
                    reply,
                ),
                Err(e) => reply(Err(e)),
            },
            other => Arc::clone(&self.inner).submit(other, reply),
        }
    }

    fn in_place(&self, request: &Request) -> Option<Result<Response>> {
        match request {
            Request::Read { ids, .. } => {
                let ids = ids.clone();
                let outcome = self.inner.in_place(request)?;
                Some(outcome.and_then(|response| self.open_response(response, &ids)))
            }
            Request::Has { .. } | Request::Keys => self.inner.in_place(request),
            Request::Write {
                docs,
                mode: mode @ (WriteMode::Replace | WriteMode::InsertOnly),
                durable,
            } => {
                let sealed = match self.seal_docs(docs.clone()) {
                    Ok(sealed) => sealed,
                    Err(e) => return Some(Err(e)),
                };
                self.inner.in_place(&Request::Write {
                    docs: sealed,
                    mode: *mode,
                    durable: *durable,
                })
            }
            _ => None,
        }
    }
}

/// A store without a key. Documents pass through, except an encrypted one: it is refused with
/// `PERSIST_DECRYPT` rather than handed to the bot as if its envelope were the value (a bot
/// started without its key must not run on garbage).
pub struct Guarded {
    inner: Arc<dyn Store>,
}

impl Guarded {
    pub fn new(inner: Arc<dyn Store>) -> Guarded {
        Guarded { inner }
    }
}

fn refuse_envelopes(response: Response, ids: &[String]) -> Result<Response> {
    let no_key = |id: &str| PersistError::Decrypt {
        id: id.to_owned(),
        detail: "the document is encrypted and no key is configured (BACKTEST_KIT_RS_KEY or the \
                 encryption option)"
            .into(),
    };
    match &response {
        Response::Docs(docs) => {
            let found = docs
                .iter()
                .position(|doc| matches!(doc, Doc::Text(text) if text.starts_with(ENVELOPE_HEAD)));
            if let Some(index) = found {
                // Without the ids (not kept for requests sent on: a window of candles would be
                // copied for every read), the document is named by its place in the request.
                let id = ids
                    .get(index)
                    .cloned()
                    .unwrap_or_else(|| format!("#{} of the request", index + 1));
                return Err(no_key(&id));
            }
        }
        Response::Entries(entries) => {
            if let Some((id, _)) = entries.iter().find(|(_, t)| t.starts_with(ENVELOPE_HEAD)) {
                return Err(no_key(id));
            }
        }
        _ => {}
    }
    Ok(response)
}

impl Store for Guarded {
    fn scope(&self) -> &Arc<Scope> {
        self.inner.scope()
    }

    fn submit(self: Arc<Self>, request: Request, reply: Reply) {
        if !matches!(request, Request::Read { .. } | Request::Scan) {
            return Arc::clone(&self.inner).submit(request, reply);
        }
        Arc::clone(&self.inner).submit(
            request,
            Box::new(move |outcome| {
                reply(outcome.and_then(|response| refuse_envelopes(response, &[])))
            }),
        );
    }

    fn in_place(&self, request: &Request) -> Option<Result<Response>> {
        let outcome = self.inner.in_place(request)?;
        Some(match request {
            Request::Read { ids, .. } => {
                outcome.and_then(|response| refuse_envelopes(response, ids))
            }
            _ => outcome,
        })
    }
}

/// The map of key ids → nothing, for `describe` (which keys, never the keys).
pub fn describe(keyring: &Option<Keyring>) -> Value {
    match keyring {
        None => Value::Bool(false),
        Some(ring) => serde_json::json!({ "keyIds": ring.ids() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[[u8; 32]]) -> Keyring {
        let encoded: Vec<String> = keys.iter().map(|k| BASE64.encode(k)).collect();
        Keyring::parse(&encoded, "test", false).expect("keys")
    }

    #[test]
    fn sealed_documents_open_only_with_the_key_and_at_their_own_id() {
        let a = ring(&[[1; 32]]);
        let sealed = a.seal(b"[\"ns\",\"e\",\"1\"]", "{\"x\":1}").expect("seal");
        assert!(!sealed.contains("\"x\""), "{sealed}");
        assert!(serde_json::from_str::<Value>(&sealed).is_ok());
        assert_eq!(
            a.open(b"[\"ns\",\"e\",\"1\"]", &sealed),
            Ok("{\"x\":1}".into())
        );
        // Another id, a wrong key, a tampered ciphertext: refused.
        assert!(a.open(b"[\"ns\",\"e\",\"2\"]", &sealed).is_err());
        assert!(ring(&[[2; 32]])
            .open(b"[\"ns\",\"e\",\"1\"]", &sealed)
            .is_err());
        let tampered = sealed.replacen("\"ct\":\"", "\"ct\":\"AA", 1);
        assert!(a.open(b"[\"ns\",\"e\",\"1\"]", &tampered).is_err());
        // Rotation: the new key encrypts, the old one still opens.
        let both = ring(&[[2; 32], [1; 32]]);
        assert_eq!(
            both.open(b"[\"ns\",\"e\",\"1\"]", &sealed),
            Ok("{\"x\":1}".into())
        );
        assert_ne!(both.ids()[0], a.ids()[0]);
        // Plaintext is refused unless asked for.
        assert!(a.open(b"x", "{\"x\":1}").is_err());
        assert!(sealed.starts_with(ENVELOPE_HEAD), "{sealed}");
    }

    #[test]
    fn bad_keys_are_refused_without_showing_them() {
        for bad in ["not base64!", "c2hvcnQ="] {
            let err = Keyring::parse(&[bad.to_owned()], "test", false).expect_err(bad);
            assert_eq!(err.code(), "PERSIST_INVALID_CONFIG");
            assert!(!err.to_string().contains(bad), "{err}");
        }
        assert!(keyring(Some(&serde_json::json!({ "kee": "x" }))).is_err());
        assert!(keyring(Some(&serde_json::json!(false)))
            .expect("off")
            .is_none());
    }
}
