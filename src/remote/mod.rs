//! What the server backends share: one connection per server and options for every store of
//! a process (`connections`), the redaction of credentials in what is shown (`credentials`), and
//! the one engine that answers requests over a backend's primitive operations (`engine`), and
//! the `url` option of a server (`server_url`).

pub mod connections;
pub mod credentials;
pub mod engine;
pub mod server_url;
