//! Every backend, one folder each; adding one is a folder and a line here.

use crate::registry::Registered;

pub mod file;
pub mod mongo;
pub mod postgres;
pub mod redis;
pub mod s3;
pub mod sqlite;

/// Every backend; adding one is a module and a line here.
pub static ALL: &[&dyn Registered] = &[
    &file::FileBackend,
    &sqlite::SqliteBackend,
    &redis::RedisBackend,
    &postgres::PostgresBackend,
    &mongo::MongoBackend,
    &s3::S3Backend,
];
