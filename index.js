"use strict";
// Public entry: thin classes over the generated napi loader (binding.js). JSON encoding,
// id normalisation, key ordering and error codes live here; storage logic lives in Rust.

const path = require("node:path");
const { CompletionQueue, NativeStore, redisClose, sqliteClose, sqliteStats } = loadBinding();

/** The generated loader finds a local build or the platform package; say plainly when neither exists. */
function loadBinding() {
  try {
    return require("./binding.js");
  } catch (err) {
    const { platform, arch } = process;
    const abi =
      platform === "linux"
        ? process.report?.getReport().header.glibcVersionRuntime
          ? "-gnu"
          : "-musl"
        : platform === "win32"
          ? "-msvc"
          : "";
    throw new Error(
      `backtest-kit-rs has no native binary for ${platform}-${arch}${abi}. Prebuilt binaries come as the ` +
        `optional dependency backtest-kit-rs-${platform}-${arch}${abi} (reinstall without --no-optional / ` +
        `--omit=optional); or build from source in a checkout of the repository with a Rust toolchain: ` +
        `npm install && npm run build. Cause: ${err.message}`,
      { cause: err },
    );
  }
}

/** `PersistBase.keys()` order: `a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" })`. */
const keyOrder = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" }).compare;

// Hot operations (read, has, write) settle through one completion queue: each request gets a
// number, the native side posts results, and one wake-up drains every finished request. A napi
// async method would create a threadsafe function per call, which costs more than the work.
const pending = new Map();
let nextRequest = 0;
const queue = new CompletionQueue(drainCompletions);
// The native wake-up is weak; this timer keeps the process alive while requests are pending.
const keepAlive = setInterval(() => {}, 2 ** 31 - 1);
keepAlive.unref();

function drainCompletions() {
  const { requests, kinds, texts } = queue.drain();
  for (let i = 0; i < requests.length; i++) {
    const settle = pending.get(requests[i]);
    pending.delete(requests[i]);
    switch (kinds[i]) {
      case 0:
        settle.resolve(null);
        break;
      case 1:
        settle.resolve(texts[i]);
        break;
      case 2:
        settle.resolve(false);
        break;
      case 3:
        settle.resolve(true);
        break;
      default:
        settle.reject(fromNative(new Error(texts[i])));
    }
  }
  if (pending.size === 0) keepAlive.unref();
}

/** Start `submit(request)` on the native side; the promise settles when the queue reports it. */
function request(submit) {
  const id = nextRequest;
  nextRequest = (nextRequest + 1) >>> 0;
  const promise = new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
  if (pending.size === 1) keepAlive.ref();
  try {
    submit(id);
  } catch (err) {
    pending.delete(id);
    if (pending.size === 0) keepAlive.unref();
    throw err;
  }
  return promise;
}

class PersistError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = "PersistError";
    this.code = code;
  }
}

let logger = { warn: (message) => console.warn(message) };

/** Route init clean-up reports (removed stale tmp files and invalid documents) elsewhere. */
function setLogger(next) {
  if (!next || typeof next.warn !== "function") {
    throw new TypeError("setLogger expects an object with a warn(message) method");
  }
  logger = next;
}

/** The native side rejects with "CODE: message"; give users `err.code` and the plain message. */
function fromNative(err) {
  const match = /^(PERSIST_[A-Z_]+): ([\s\S]*)$/.exec(err && err.message);
  return match ? new PersistError(match[1], match[2]) : err;
}

/** backtest-kit's wording per operation, as the Rust core uses (src/error.rs `describe`). */
const failure = {
  read: (name, id) => `Failed to read entity ${name}:${id}`,
  has: (name, id) => `Failed to check existence of entity ${name}:${id}`,
  write: (name, id) => `Failed to write entity ${name}:${id}`,
  remove: (name, id) => `Failed to remove entity ${name}:${id}`,
};

/** `10` and `"10"` name one entity, as in PersistBase; anything else is not an id. */
function toKey(entityName, entityId, op) {
  if (typeof entityId === "string") return entityId;
  if (typeof entityId === "number") return String(entityId);
  throw new PersistError(
    "PERSIST_INVALID_ID",
    `${failure[op](entityName, String(entityId))}: invalid entity id: expected a string or a number, got ${typeof entityId}`,
  );
}

function encode(entityName, key, value) {
  let json;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new PersistError("PERSIST_INVALID_VALUE", `${failure.write(entityName, key)}: ${err.message}`, { cause: err });
  }
  if (typeof json !== "string") {
    throw new PersistError(
      "PERSIST_INVALID_VALUE",
      `${failure.write(entityName, key)}: the value (${typeof value}) has no JSON representation`,
    );
  }
  return json;
}

/**
 * Shared behaviour of every backend class. Subclasses pass an opened NativeStore and a label
 * for log lines; users subclass the exported backend classes, not this one.
 */
class NativePersist {
  #native;
  #label;
  #syncReads;
  #ready = false;
  #initializing = null;

  /** `syncReads`: serve readValue/hasValue on the calling thread (SQLite point lookups). */
  constructor(entityName, baseDir, openNative, label, { syncReads = false } = {}) {
    if (typeof entityName !== "string") {
      throw new TypeError(`${label}: entityName must be a string, got ${typeof entityName}`);
    }
    if (typeof baseDir !== "string") {
      throw new TypeError(`${label}: baseDir must be a string, got ${typeof baseDir}`);
    }
    this.entityName = entityName;
    this.baseDir = baseDir;
    this.#label = label;
    this.#syncReads = syncReads;
    try {
      this.#native = openNative(entityName, baseDir);
    } catch (err) {
      throw fromNative(err);
    }
  }

  /** First call prepares and self-heals storage; later calls are free. A failure is retried next call. */
  waitForInit(_initial) {
    if (this.#ready) return Promise.resolve();
    if (!this.#initializing) {
      this.#initializing = this.#native.init().then(
        (report) => {
          this.#log(report);
          this.#ready = true;
        },
        (err) => {
          this.#initializing = null;
          throw fromNative(err);
        },
      );
    }
    return this.#initializing;
  }

  #log(report) {
    const entity = `entityName=${this.entityName}`;
    for (const location of report.removedStaleTmp) {
      logger.warn(`backtest-kit-rs ${this.#label} removed stale atomic-write tmp file filePath=${location} ${entity}`);
    }
    for (const location of report.removedInvalid) {
      logger.warn(`backtest-kit-rs ${this.#label} removed invalid document filePath=${location} ${entity}`);
    }
    for (const failed of report.failedRemovals) {
      logger.warn(`backtest-kit-rs ${this.#label} failed to remove invalid document ${failed} ${entity}`);
    }
  }

  async readValue(entityId) {
    const key = toKey(this.entityName, entityId, "read");
    let text;
    try {
      text = this.#syncReads ? await this.#inPlace(
            () => this.#native.readSync(key),
            (id) => this.#native.submitRead(id, key),
          ) : await request((id) => this.#native.submitRead(id, key));
    } catch (err) {
      throw fromNative(err);
    }
    if (text === null) {
      throw new PersistError("PERSIST_NOT_FOUND", `Entity ${this.entityName}:${key} not found`);
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new PersistError("PERSIST_CORRUPT", `${failure.read(this.entityName, key)}: ${err.message}`, { cause: err });
    }
  }

  async hasValue(entityId) {
    const key = toKey(this.entityName, entityId, "has");
    try {
      return this.#syncReads ? await this.#inPlace(
            () => this.#native.hasSync(key),
            (id) => this.#native.submitHas(id, key),
          ) : await request((id) => this.#native.submitHas(id, key));
    } catch (err) {
      throw fromNative(err);
    }
  }

  async writeValue(entityId, entity) {
    const key = toKey(this.entityName, entityId, "write");
    const json = encode(this.entityName, key, entity);
    try {
      await request((id) => this.#native.submitWrite(id, key, json));
    } catch (err) {
      throw fromNative(err);
    }
  }

  /** `sync()` in place, or the queued call while the database is not open (opening may wait). */
  #inPlace(sync, queued) {
    try {
      return sync();
    } catch (err) {
      if (!String(err?.message).startsWith("PERSIST_NOT_OPEN:")) throw err;
      return request(queued);
    }
  }

  async removeValue(entityId) {
    const key = toKey(this.entityName, entityId, "remove");
    try {
      await this.#native.remove(key);
    } catch (err) {
      throw fromNative(err);
    }
  }

  async removeAll() {
    try {
      await this.#native.removeAll();
    } catch (err) {
      throw fromNative(err);
    }
  }

  async *keys() {
    let ids;
    try {
      ids = await this.#native.keys();
    } catch (err) {
      throw fromNative(err);
    }
    yield* ids.sort(keyOrder);
  }

  /** Every stored value in key order; entities removed while iterating are skipped. */
  async *values() {
    for await (const key of this.keys()) {
      let value;
      try {
        value = await this.readValue(key);
      } catch (err) {
        if (err.code === "PERSIST_NOT_FOUND") continue;
        throw err;
      }
      yield value;
    }
  }

  async *filter(predicate) {
    for await (const value of this.values()) {
      if (await predicate(value)) yield value;
    }
  }

  async *take(total, predicate) {
    if (!(total > 0)) return;
    let taken = 0;
    for await (const value of this.values()) {
      if (predicate && !(await predicate(value))) continue;
      yield value;
      if (++taken >= total) return;
    }
  }

  [Symbol.asyncIterator]() {
    return this.values();
  }
}

const defaultBaseDir = () => path.join(process.cwd(), "logs/data");

/** Atomic, durable JSON files in backtest-kit's own layout: `{baseDir}/{entityName}/{id}.json`. */
class RustFilePersist extends NativePersist {
  constructor(entityName, baseDir = defaultBaseDir()) {
    super(entityName, baseDir, (name, dir) => NativeStore.file(name, dir, queue), "RustFilePersist");
  }
}

const SQLITE_PATH_ENV = "BACKTEST_KIT_RS_SQLITE_PATH";
const SQLITE_SYNCHRONOUS_ENV = "BACKTEST_KIT_RS_SQLITE_SYNCHRONOUS";

/** Options of a SQLite-backed class, resolved when an instance is made (env and cwd at that time). */
function resolveSqliteOptions(options) {
  const file = options.path ?? process.env[SQLITE_PATH_ENV] ?? path.join("dump", "backtest-kit.sqlite");
  if (typeof file !== "string" || file === "") {
    throw new TypeError(`RustSqlitePersist: path must be a non-empty string, got ${String(file)}`);
  }
  const synchronous = String(options.synchronous ?? process.env[SQLITE_SYNCHRONOUS_ENV] ?? "FULL").toUpperCase();
  if (synchronous !== "FULL" && synchronous !== "NORMAL") {
    throw new TypeError(`RustSqlitePersist: synchronous must be "FULL" or "NORMAL", got ${synchronous}`);
  }
  const syncReads = options.syncReads ?? true;
  if (typeof syncReads !== "boolean") {
    throw new TypeError(`RustSqlitePersist: syncReads must be a boolean, got ${String(syncReads)}`);
  }
  return { path: path.resolve(file), synchronous, syncReads };
}

/**
 * A RustSqlitePersist class bound to explicit options, for example one database per domain:
 * `usePersistSignalAdapter(createSqlitePersist({ path: "./state/signals.sqlite" }))`.
 */
function createSqlitePersist(options = {}) {
  if (options === null || typeof options !== "object") {
    throw new TypeError("createSqlitePersist expects an options object");
  }
  const bound = { ...options };
  return class RustSqlitePersist extends NativePersist {
    constructor(entityName, baseDir = defaultBaseDir()) {
      const { path: file, synchronous, syncReads } = resolveSqliteOptions(bound);
      super(entityName, baseDir, (name, dir) => NativeStore.sqlite(name, dir, file, synchronous, queue), "RustSqlitePersist", {
        syncReads,
      });
    }

    /** The database this class uses now: absolute path, synchronous level, where reads run. */
    static get database() {
      return resolveSqliteOptions(bound);
    }

    /** Writes and transactions committed so far (group commit shares one transaction among many writes). */
    static stats() {
      const { path: file, synchronous } = resolveSqliteOptions(bound);
      return sqliteStats(file, synchronous) ?? { writes: 0, transactions: 0 };
    }

    /** Finish queued writes and release the database; using the class again reopens it. */
    static async close() {
      const { path: file, synchronous } = resolveSqliteOptions(bound);
      try {
        await sqliteClose(file, synchronous);
      } catch (err) {
        throw fromNative(err);
      }
    }
  };
}

/** All entities in one embedded SQLite database (`./dump/backtest-kit.sqlite` unless configured). */
const RustSqlitePersist = createSqlitePersist();

const REDIS_URL_ENV = "BACKTEST_KIT_RS_REDIS_URL";

function positiveMs(name, value) {
  if (!Number.isInteger(value) || value <= 0 || value > 2 ** 31 - 1) {
    throw new TypeError(`RustRedisPersist: ${name} must be a positive whole number of milliseconds, got ${String(value)}`);
  }
  return value;
}

/** Options of a Redis-backed class, resolved when an instance is made (env at that time). */
function resolveRedisOptions(options) {
  const url = options.url ?? process.env[REDIS_URL_ENV] ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  if (typeof url !== "string" || !/^rediss?:\/\//.test(url)) {
    throw new TypeError("RustRedisPersist: url must be a redis:// or rediss:// URL");
  }
  const prefix = options.prefix ?? "backtest-kit";
  if (typeof prefix !== "string" || prefix === "") {
    throw new TypeError("RustRedisPersist: prefix must be a non-empty string");
  }
  const ca = options.tls?.ca;
  if (ca !== undefined && typeof ca !== "string" && !Buffer.isBuffer(ca)) {
    throw new TypeError("RustRedisPersist: tls.ca must be a PEM string or Buffer");
  }
  return {
    url,
    prefix,
    connectTimeoutMs: positiveMs("connectTimeoutMs", options.connectTimeoutMs ?? 5000),
    commandTimeoutMs: positiveMs("commandTimeoutMs", options.commandTimeoutMs ?? 5000),
    ca: ca === undefined ? undefined : String(ca),
  };
}

/**
 * A RustRedisPersist class bound to explicit options, e.g. a separate database or server per
 * domain: `createRedisPersist({ url: "redis://127.0.0.1:6379/2", prefix: "bot-a" })`.
 */
function createRedisPersist(options = {}) {
  if (options === null || typeof options !== "object") {
    throw new TypeError("createRedisPersist expects an options object");
  }
  const bound = { ...options, tls: options.tls && { ...options.tls } };
  return class RustRedisPersist extends NativePersist {
    constructor(entityName, baseDir = defaultBaseDir()) {
      const resolved = resolveRedisOptions(bound);
      super(entityName, baseDir, (name, dir) => NativeStore.redis(name, dir, resolved, queue), "RustRedisPersist");
    }

    /** Drop the shared connection these options use; using the class again reconnects. */
    static async close() {
      redisClose(resolveRedisOptions(bound));
    }
  };
}

/** Every entity in Redis, one hash per entity, over one shared connection (`REDIS_URL` etc.). */
const RustRedisPersist = createRedisPersist();

module.exports.RustFilePersist = RustFilePersist;
module.exports.RustRedisPersist = RustRedisPersist;
module.exports.createRedisPersist = createRedisPersist;
module.exports.RustSqlitePersist = RustSqlitePersist;
module.exports.createSqlitePersist = createSqlitePersist;
module.exports.PersistError = PersistError;
module.exports.setLogger = setLogger;

const kit = require("./kit.js");

module.exports.DOMAINS = kit.DOMAINS;
module.exports.usePersist = kit.usePersist;
module.exports.useDefaultPersist = kit.useDefaultPersist;
