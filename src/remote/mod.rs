//! What the server backends share: one connection per server and options for every store of
//! a process (`connections`), and the redaction of credentials in what is shown (`credentials`).

pub mod connections;
pub mod credentials;
