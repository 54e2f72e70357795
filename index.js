"use strict";
// Public entry: the storage classes, one per backend of the native registry, and what goes with
// them. Each concept has a file under lib/: native.js (the loader, the completion queue,
// backpressure), errors.js, codec.js (values and ids), persist.js (the storage class),
// backends.js (classes by backend name or URL), adapters.js (backtest-kit's adapters), kit/
// (usePersist). Loading this module never throws and makes no native call: the binary is loaded,
// and a backend's environment read, when a store is first made.

const { createPersist, defaultClass, factory, listBackends } = require("./lib/backends.js");
const { PersistError, setLogger } = require("./lib/errors.js");
const { inFlight, setMaxBytesInFlight } = require("./lib/native.js");
const { DOMAINS } = require("./lib/kit/domains.js");
const { usePersist, useDefaultPersist } = require("./lib/kit/registration.js");

// One class and one factory per backend of the native registry (src/backends/): a name and its
// documentation, nothing else.

/**
 * A RustFilePersist class with options; the file backend has one, `encryption` (which every
 * backend takes): `createFilePersist({ encryption: { key } })`.
 */
const createFilePersist = factory("file");

/** Atomic, durable JSON files in backtest-kit's own layout: `{baseDir}/{entityName}/{id}.json`. */
const RustFilePersist = defaultClass("file", "RustFilePersist");

/**
 * A RustSqlitePersist class bound to explicit options, for example one database per domain:
 * `usePersistSignalAdapter(createSqlitePersist({ path: "./state/signals.sqlite" }))`.
 * Options: `path`, `synchronous` ("FULL" | "NORMAL"), `syncReads`.
 */
const createSqlitePersist = factory("sqlite");

/** All entities in one embedded SQLite database (`./dump/backtest-kit.sqlite` unless configured). */
const RustSqlitePersist = defaultClass("sqlite", "RustSqlitePersist");

/**
 * A RustRedisPersist class bound to explicit options, e.g. a separate database or server per
 * domain: `createRedisPersist({ url: "redis://127.0.0.1:6379/2", prefix: "bot-a" })`.
 * Options: `url`, `cluster` (seed URLs of a Redis Cluster) or `sentinel` ({ nodes, masterName,
 * username, password, db }: the primary Redis Sentinels name), `prefix`, `connectTimeoutMs`,
 * `commandTimeoutMs`, `replicas` and `replicasTimeoutMs` (writes wait for replicas), `tls: { ca }`.
 */
const createRedisPersist = factory("redis");

/** Every entity in Redis, one hash per entity, over one shared connection (`REDIS_URL` etc.). */
const RustRedisPersist = defaultClass("redis", "RustRedisPersist");

/**
 * A RustPostgresPersist class bound to explicit options: `createPostgresPersist({ url:
 * "postgres://bot:secret@db.internal/trading?sslmode=verify-full", table: "bot_a" })`.
 * Options: `url` (else env BACKTEST_KIT_RS_POSTGRES_URL, then DATABASE_URL), `schema`, `table`,
 * `connectTimeoutMs`, `commandTimeoutMs`, `tls: { ca }`.
 */
const createPostgresPersist = factory("postgres");

/** Every entity in one PostgreSQL table, over shared connections (`DATABASE_URL` etc.). */
const RustPostgresPersist = defaultClass("postgres", "RustPostgresPersist");

/**
 * A RustMongoPersist class bound to explicit options: `createMongoPersist({ url:
 * "mongodb+srv://bot:secret@cluster0.example.net/?w=majority", collection: "bot_a" })`.
 * Options: `url` (else env BACKTEST_KIT_RS_MONGO_URL, then MONGODB_URI; TLS and write concern in
 * its parameters), `database`, `collection`, `connectTimeoutMs`, `commandTimeoutMs`.
 */
const createMongoPersist = factory("mongodb");

/** Every entity in one MongoDB collection, `_id` = `["namespace","entity","id"]` (`MONGODB_URI` etc.). */
const RustMongoPersist = defaultClass("mongodb", "RustMongoPersist");

/**
 * A RustS3Persist class bound to explicit options: `createS3Persist({ url:
 * "s3://my-bucket/bot-a?region=eu-west-1" })`, or an S3-compatible server with `endpoint`.
 * Options: `url` (`s3://bucket/prefix?region=…&endpoint=…&pathStyle=…`, else env
 * BACKTEST_KIT_RS_S3_URL), `bucket`, `prefix`, `region`, `endpoint`, `pathStyle`, `accessKeyId`,
 * `secretAccessKey`, `sessionToken` (else the AWS_* variables), `connectTimeoutMs`, `commandTimeoutMs`.
 */
const createS3Persist = factory("s3");

/** An S3 object per document, `{prefix}/{namespace}/{entityName}/{id}.json` (`BACKTEST_KIT_RS_S3_URL`). */
const RustS3Persist = defaultClass("s3", "RustS3Persist");

module.exports.RustFilePersist = RustFilePersist;
module.exports.createFilePersist = createFilePersist;
module.exports.RustMongoPersist = RustMongoPersist;
module.exports.createMongoPersist = createMongoPersist;
module.exports.RustS3Persist = RustS3Persist;
module.exports.createS3Persist = createS3Persist;
module.exports.RustPostgresPersist = RustPostgresPersist;
module.exports.createPostgresPersist = createPostgresPersist;
module.exports.RustRedisPersist = RustRedisPersist;
module.exports.createRedisPersist = createRedisPersist;
module.exports.RustSqlitePersist = RustSqlitePersist;
module.exports.createSqlitePersist = createSqlitePersist;
module.exports.createPersist = createPersist;
module.exports.listBackends = listBackends;
module.exports.PersistError = PersistError;
module.exports.setLogger = setLogger;
module.exports.setMaxBytesInFlight = setMaxBytesInFlight;
module.exports.inFlight = inFlight;
module.exports.DOMAINS = DOMAINS;
module.exports.usePersist = usePersist;
module.exports.useDefaultPersist = useDefaultPersist;
