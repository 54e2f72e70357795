//! Storage backends for backtest-kit, exposed to Node.js through a thin napi binding.
//!
//! The core is plain Rust with no napi types, so `cargo test --no-default-features` exercises
//! it without Node: `contract` (the request, the `Store` trait, ids, names and options), `layers`
//! (issue order, encryption), `remote` (what the server backends share), `backends` (one folder
//! each) and `registry` (open, describe, close by backend name or URL). `js` is the binding.

#![deny(clippy::all)]
#![deny(clippy::unwrap_used)]

pub mod backends;
pub mod contract;
pub mod error;
pub mod exec;
pub mod json;
pub mod layers;
pub mod registry;
pub mod remote;

#[cfg(feature = "napi")]
// napi-derive registers exported free functions only outside `cfg(test)`, so the test build
// of the binding sees them as unused.
#[cfg_attr(test, allow(dead_code))]
mod js;
