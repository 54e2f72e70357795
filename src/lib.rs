//! Storage backends for backtest-kit, exposed to Node.js through a thin napi binding.
//!
//! The core (`error`, `exec`, `json`, `store`) is plain Rust with no napi types, so `cargo test
//! --no-default-features` exercises it without Node. `js` is the binding layer.

#![deny(clippy::all)]
#![deny(clippy::unwrap_used)]

pub mod error;
pub mod exec;
pub mod json;
pub mod store;

#[cfg(feature = "napi")]
// napi-derive registers exported free functions only outside `cfg(test)`, so the test build
// of the binding sees them as unused.
#[cfg_attr(test, allow(dead_code))]
mod js;
