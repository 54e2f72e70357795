//! Every backend, one folder each; adding one is a folder and a line here.

use crate::registry::Kind;

pub mod file;
pub mod mongo;
pub mod postgres;
pub mod redis;
pub mod s3;
pub mod sqlite;

/// Every backend; adding one is a module and a line here.
pub static ALL: &[&Kind] = &[
    &file::KIND,
    &sqlite::KIND,
    &redis::KIND,
    &postgres::KIND,
    &mongo::KIND,
    &s3::KIND,
];
