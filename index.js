"use strict";
// Public entry: thin classes over the generated napi loader (binding.js). JSON encoding,
// id normalisation, key ordering and error objects live here; storage logic lives in Rust, and
// which backend a class uses is a name in the native registry.

const path = require("node:path");
const util = require("node:util");

const adapters = require("./adapters.js");

// Loading this module never throws and makes no native call: the binary is loaded, and a backend's
// environment read, when a store is first made (a missing binary or a malformed variable is then
// an error of that call, not of `require`).
let loaded = null;

/** The generated loader (binding.js), loaded on first use. */
function binding() {
  loaded ??= loadBinding();
  return loaded;
}

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

// Every native operation settles through one completion queue: each request gets a number,
// the backend posts its outcome, and one wake-up drains every finished request. A napi async
// method would create a threadsafe function per call, which costs more than the work.
const pending = new Map();
let nextRequest = 0;
let queue = null;
const completionQueue = () => (queue ??= new (binding().CompletionQueue)(drainCompletions));
// The native wake-up is weak; this timer keeps the process alive while requests are pending.
const keepAlive = setInterval(() => {}, 2 ** 31 - 1);
keepAlive.unref();

function drainCompletions() {
  const { requests, values, failures } = queue.drain();
  for (let i = 0; i < requests.length; i++) {
    const settle = pending.get(requests[i]);
    if (!settle) continue; // not ours to settle (never happens unless the numbering breaks)
    pending.delete(requests[i]);
    bytesInFlight -= settle.bytes;
    if (failures[i]) settle.reject(fromFailure(failures[i]));
    else settle.resolve(values[i]);
  }
  releaseHeld();
  if (pending.size === 0) keepAlive.unref();
}

// Backpressure: write payloads handed to the native side and not yet settled are bounded. Past
// the bound, requests wait here, in issue order (a read issued after a held write waits too),
// holding their JSON text once: in the JS heap, where --max-old-space-size and heap snapshots
// see it, rather than piling up natively. A held write costs more (about 5 KB per 1.5 KB write,
// measured, against about 2 KB in flight), so the default bound is a safety valve, not a
// throttle: 1 Gi characters.
const DEFAULT_MAX_BYTES_IN_FLIGHT = 2 ** 30;
let maxBytesInFlight = DEFAULT_MAX_BYTES_IN_FLIGHT;
let bytesInFlight = 0;
const held = [];
let heldHead = 0;

const nothingHeld = () => heldHead === held.length;

/** Whether a request of `bytes` may start now. One that alone exceeds the bound starts alone. */
const fits = (bytes) => bytes === 0 || bytesInFlight === 0 || bytesInFlight + bytes <= maxBytesInFlight;

function releaseHeld() {
  while (!nothingHeld() && fits(held[heldHead].bytes)) {
    const { submit, bytes, resolve, reject } = held[heldHead];
    held[heldHead++] = undefined;
    start(submit, bytes).then(resolve, reject);
  }
  if (nothingHeld()) {
    held.length = 0;
    heldHead = 0;
  }
}

/**
 * Start `submit(request)` on the native side; the promise settles when the queue reports it.
 * A `submit` that finished on the calling thread returns its value (not `null`/`undefined`),
 * and the request number is never used. `bytes`: the payload it hands over (writes).
 */
function request(submit, bytes = 0) {
  return nothingHeld() && fits(bytes) ? start(submit, bytes) : hold(submit, bytes);
}

function hold(submit, bytes) {
  return new Promise((resolve, reject) => held.push({ submit, bytes, resolve, reject }));
}

function start(submit, bytes) {
  const id = nextRequest;
  nextRequest = (nextRequest + 1) >>> 0;
  let done;
  try {
    done = submit(id);
  } catch (err) {
    return Promise.reject(fromNative(err));
  }
  if (done !== null && done !== undefined) return Promise.resolve(done);
  // Completions are drained on this thread, so registering after the submit is in time.
  bytesInFlight += bytes;
  const promise = new Promise((resolve, reject) => pending.set(id, { resolve, reject, bytes }));
  if (pending.size === 1) keepAlive.ref();
  return promise;
}

/**
 * The bound on JSON text (in characters) that writes may have handed to the native side and not
 * yet settled, per process; further requests wait, in order, until it drops below. Default 1 Gi.
 * Returns the previous bound.
 */
function setMaxBytesInFlight(bytes) {
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new PersistError("PERSIST_INVALID_CONFIG", `setMaxBytesInFlight expects a positive whole number, got ${String(bytes)}`);
  }
  const previous = maxBytesInFlight;
  maxBytesInFlight = bytes;
  releaseHeld();
  return previous;
}

/** What writes hold now: `{ bytes }` handed to the native side, `{ held }` requests waiting here. */
function inFlight() {
  return { bytes: bytesInFlight, held: held.length - heldHead };
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

/**
 * A failure record from the native side (code, message, errno, path) as a `PersistError`. An
 * operating-system failure also gets `cause`: an Error shaped like Node's own system errors
 * (`code` such as "EACCES", `errno`, `path`), so code written for `fs` errors can inspect it.
 */
function fromFailure(failure) {
  let cause;
  if (failure.errno != null) {
    let name = `errno ${failure.errno}`;
    try {
      if (process.platform !== "win32") name = util.getSystemErrorName(-failure.errno);
    } catch {
      // an errno libuv does not name
    }
    cause = Object.assign(new Error(`${name}${failure.path != null ? `: ${failure.path}` : ""}`), {
      code: name,
      errno: failure.errno,
      ...(failure.path != null && { path: failure.path }),
    });
  }
  const err = new PersistError(failure.code, failure.message, cause && { cause });
  if (failure.errno != null) err.errno = failure.errno;
  if (failure.path != null) err.path = failure.path;
  return err;
}

/** Errors the binding throws synchronously carry their code in `err.code`. */
function fromNative(err) {
  if (err instanceof PersistError || typeof err?.code !== "string" || !err.code.startsWith("PERSIST_")) return err;
  return new PersistError(err.code, err.message);
}

/** backtest-kit's wording per operation, as the Rust core uses (src/error.rs `describe`). */
const failure = {
  read: (name, id) => `Failed to read entity ${name}:${id}`,
  has: (name, id) => `Failed to check existence of entity ${name}:${id}`,
  write: (name, id) => `Failed to write entity ${name}:${id}`,
  remove: (name, id) => `Failed to remove entity ${name}:${id}`,
};

const NOT_WELL_FORMED = "it is not well-formed UTF-16 (it holds a lone surrogate, which would alias U+FFFD)";

/** `10` and `"10"` name one entity, as in PersistBase; anything else is not an id. */
function toKey(entityName, entityId, op) {
  if (typeof entityId === "string") {
    if (entityId.isWellFormed()) return entityId;
    throw new PersistError("PERSIST_INVALID_ID", `${failure[op](entityName, JSON.stringify(entityId))}: invalid entity id: ${NOT_WELL_FORMED}`);
  }
  if (typeof entityId === "number") {
    // PersistBase would store NaN as "NaN.json" and 1.5 as "1.5.json": never an id the framework makes.
    if (Number.isSafeInteger(entityId)) return String(entityId);
    throw new PersistError(
      "PERSIST_INVALID_ID",
      `${failure[op](entityName, String(entityId))}: invalid entity id: a numeric id must be a whole number, got ${String(entityId)}`,
    );
  }
  throw new PersistError(
    "PERSIST_INVALID_ID",
    `${failure[op](entityName, String(entityId))}: invalid entity id: expected a string or a number, got ${typeof entityId}`,
  );
}

/** How every encrypted document's text begins (src/store/sealed.rs ENVELOPE_HEAD). */
const ENVELOPE_HEAD = '{"$bkrs":';

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
  // A document whose text starts so is taken for an encryption envelope when read: accepting it
  // would resolve a write that no read could ever return.
  if (json.startsWith(ENVELOPE_HEAD)) {
    throw new PersistError(
      "PERSIST_INVALID_VALUE",
      `${failure.write(entityName, key)}: an object whose first key is "$bkrs" cannot be stored: that key marks an encrypted document`,
    );
  }
  return json;
}

/** A document as read (`string | null | failure record`) as the value `readValue` returns. */
function parseDoc(entityName, key, doc) {
  if (doc === null || doc === undefined) {
    throw new PersistError("PERSIST_NOT_FOUND", `Entity ${entityName}:${key} not found`);
  }
  if (typeof doc !== "string") throw fromFailure(doc);
  try {
    return JSON.parse(doc);
  } catch (err) {
    throw new PersistError("PERSIST_CORRUPT", `${failure.read(entityName, key)}: ${err.message}`, { cause: err });
  }
}

/** Batch operations of our classes, used by `usePersist`'s fast domain instances (kit.js). */
const BATCH = Symbol.for("backtest-kit-rs.batch");

/** How adapters.js reads an object's domain state (not public API). */
const DOMAIN_STATE = Symbol("backtest-kit-rs.domain-state");

// Set while kit.js makes the storage of a framework instance of its own: the arguments are then
// (entityName, baseDir) whoever is on the stack.
let constructingStorage = false;

/** `new Backend(entityName, baseDir)` as a storage, never as a domain instance. */
function constructStorage(Backend, entityName, baseDir) {
  constructingStorage = true;
  try {
    return Reflect.construct(Backend, [entityName, baseDir]);
  } finally {
    constructingStorage = false;
  }
}

/** An argument as an error message shows it: its type, and short primitives themselves. */
function describeArgument(value) {
  if (value === null) return "null";
  if (typeof value === "number" || typeof value === "boolean") return `${typeof value} ${String(value)}`;
  return typeof value;
}

/**
 * Shared behaviour of every backend class: `kind` names a backend of the native registry and
 * `optionsJson` its options. Users subclass the exported backend classes, not this one.
 */
class NativePersist {
  #native;
  #label;
  #ready = false;
  #initializing = null;
  /** Cache domains: no O(documents) validation at init; unreadable documents heal at read. */
  #validateOnInit = true;
  /** Cache domains: atomic writes without fsync. */
  #durable = true;

  #kind;
  #optionsJson;
  /** The options as resolved on first need (SQLite's path: against the cwd of that moment). */
  #resolvedOptions = null;

  /** Set when backtest-kit's adapter made this object as a domain instance (adapters.js). */
  #domain = null;

  constructor(args, kind, optionsJson, label) {
    const asStorage = constructingStorage;
    constructingStorage = false;
    this.#label = label;
    this.#kind = kind;
    this.#optionsJson = optionsJson;
    if (!asStorage) {
      this.#domain = adapters.domainState(new.target, args, label);
      if (this.#domain) return;
    }
    const [entityName, baseDir = defaultBaseDir()] = args;
    if (typeof entityName !== "string" || typeof baseDir !== "string") {
      const what = typeof entityName !== "string" ? `entityName must be a string, got ${describeArgument(entityName)}` : `baseDir must be a string, got ${describeArgument(baseDir)}`;
      throw new PersistError("PERSIST_INVALID_NAME", `${label}: ${what} (a storage is made as new ${label}(entityName, baseDir))`);
    }
    // Crossing to Rust, a lone surrogate would become U+FFFD, so two names would alias.
    for (const [what, text] of [["entity name", entityName], ["baseDir", baseDir]]) {
      if (!text.isWellFormed()) {
        throw new PersistError("PERSIST_INVALID_NAME", `${label}: invalid ${what} ${JSON.stringify(text)}: ${NOT_WELL_FORMED}`);
      }
    }
    this.entityName = entityName;
    this.baseDir = baseDir;
    const { NativeStore } = binding();
    try {
      this.#native = NativeStore.open(kind, entityName, baseDir, optionsJson, completionQueue());
    } catch (err) {
      throw fromNative(err);
    }
  }

  /** The native store; a domain instance has none (its framework instance holds storages of its own). */
  get #store() {
    if (this.#native) return this.#native;
    throw new PersistError(
      "PERSIST_INVALID_CONFIG",
      `${this.#label}: this object is a backtest-kit domain instance (made by a Persist*Adapter), not a storage; ` +
        `make a storage with new ${this.#label}(entityName, baseDir)`,
    );
  }

  static [DOMAIN_STATE](object) {
    return #domain in object ? object.#domain : null;
  }

  /** First call prepares and self-heals storage; later calls are free. A failure is retried next call. */
  waitForInit(initial) {
    if (this.#ready) return Promise.resolve();
    if (this.#domain) return adapters.waitForInit(this.#domain, initial);
    if (!this.#initializing) {
      this.#initializing = request((id) => this.#store.init(id, this.#validateOnInit)).then(
        (report) => {
          this.#log(report);
          this.#ready = true;
        },
        (err) => {
          this.#initializing = null;
          throw err;
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
      logger.warn(`backtest-kit-rs ${this.#label} moved invalid document aside filePath=${location} ${entity}`);
    }
    for (const failed of report.failedRemovals) {
      logger.warn(`backtest-kit-rs ${this.#label} failed to move invalid document aside ${failed} ${entity}`);
    }
  }

  /** Documents of `ids` as `string | null | failure record`, in place where the backend serves it so. */
  #read(ids, stopAtMissing) {
    const heal = !this.#validateOnInit;
    let docs;
    try {
      // Not ahead of requests held back (issue order).
      docs = nothingHeld() ? this.#store.readInPlace(ids, stopAtMissing, heal) : null;
    } catch (err) {
      return Promise.reject(fromNative(err));
    }
    return docs !== null ? Promise.resolve(docs) : request((id) => this.#store.read(id, ids, stopAtMissing, heal));
  }

  #has(ids) {
    let flags;
    try {
      flags = nothingHeld() ? this.#store.hasInPlace(ids) : null;
    } catch (err) {
      return Promise.reject(fromNative(err));
    }
    return flags !== null ? Promise.resolve(flags) : request((id) => this.#store.has(id, ids));
  }

  #write(ids, texts, mode) {
    let bytes = 0;
    for (const text of texts) bytes += text.length;
    const durable = this.#durable; // as configured when issued, also if held back
    const store = this.#store;
    return request((id) => store.write(id, ids, texts, mode, durable), bytes);
  }

  async readValue(entityId) {
    const key = toKey(this.entityName, entityId, "read");
    return parseDoc(this.entityName, key, (await this.#read([key], false))[0]);
  }

  async hasValue(entityId) {
    const key = toKey(this.entityName, entityId, "has");
    return (await this.#has([key]))[0];
  }

  async writeValue(entityId, entity) {
    const key = toKey(this.entityName, entityId, "write");
    await this.#write([key], [encode(this.entityName, key, entity)], "replace");
  }

  async removeValue(entityId) {
    const key = toKey(this.entityName, entityId, "remove");
    await request((id) => this.#store.remove(id, key));
  }

  async removeAll() {
    await request((id) => this.#store.removeAll(id));
  }

  async *keys() {
    const ids = await request((id) => this.#store.keys(id));
    yield* ids.sort(keyOrder);
  }

  /** One native request per batch, for kit.js. Ids are strings already. */
  get [BATCH]() {
    return {
      /** Per domain: `durable` false = atomic writes without fsync; `validateOnInit` false = heal at read. */
      configure: ({ durable, validateOnInit }) => {
        this.#durable = durable;
        this.#validateOnInit = validateOnInit;
      },
      /** `string | null | failure record` per id, ending at the first missing one if `stopAtMissing`. */
      read: (ids, stopAtMissing) => this.#read(ids, stopAtMissing),
      has: (ids) => this.#has(ids),
      /** `mode`: "replace", "changed" (skip documents already holding the text) or "insert". */
      write: (ids, texts, mode) => this.#write(ids, texts, mode),
      /** Every document as `[ids, texts]`. */
      scan: () => request((id) => this.#store.scan(id)),
      /**
       * Which documents this instance names now: the backend, its resolved options (a SQLite
       * path depends on the cwd when the instance was made), the resolved base directory (the
       * file backend resolves it per operation) and the entity. Keys the candle cache.
       */
      identity: () => {
        this.#resolvedOptions ??= binding().describeBackend(this.#kind, this.#optionsJson);
        return `${this.#kind}\n${this.#resolvedOptions}\n${path.resolve(this.baseDir)}\n${this.entityName}\n`;
      },
    };
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

adapters.attach(NativePersist.prototype, (object) => NativePersist[DOMAIN_STATE](object), (code, message) => new PersistError(code, message));

/** Options as JSON for the native side; Buffers (a TLS CA) become their text. */
function optionsJson(options) {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new PersistError("PERSIST_INVALID_CONFIG", `options must be an object or a store URL string, got ${describeArgument(options)}`);
  }
  return JSON.stringify(options, (_key, value) =>
    value && value.type === "Buffer" && Array.isArray(value.data) ? Buffer.from(value.data).toString() : value,
  );
}

/** The class name of each backend, for messages and `createPersist`. */
const CLASS_NAMES = {
  file: "RustFilePersist",
  sqlite: "RustSqlitePersist",
  redis: "RustRedisPersist",
  postgres: "RustPostgresPersist",
  mongodb: "RustMongoPersist",
  s3: "RustS3Persist",
};

/** A factory's URL string as its options (the core parses it); a URL of another backend is refused. */
/** The backend a store URL names and the options it stands for, as JSON (the core parses it). */
const storeUrl = (url) => native(() => binding().backendForUrl(url));

function optionsOfUrl(kind, className, url) {
  const parsed = storeUrl(url);
  if (parsed.kind !== kind) {
    throw new PersistError(
      "PERSIST_INVALID_CONFIG",
      `${className}: ${JSON.stringify(url.split(":")[0])} URLs are for ${CLASS_NAMES[parsed.kind]} (createPersist(url) picks the backend from the URL)`,
    );
  }
  return parsed.optionsJson;
}

/**
 * A storage class for a store URL, the backend picked from its scheme: `file:`, `sqlite:PATH`,
 * `redis://…?prefix=…`, `rediss://`, `postgres://…?table=…`, `mongodb://…?collection=…`,
 * `mongodb+srv://`, `s3://bucket/prefix?region=…`. The same URLs work in the environment
 * variables and in the `backtest-kit-rs` command.
 */
function createPersist(url) {
  if (typeof url !== "string") {
    throw new PersistError("PERSIST_INVALID_CONFIG", `createPersist expects a store URL string, got ${describeArgument(url)}`);
  }
  const { kind, optionsJson: json } = storeUrl(url);
  return backendClass(kind, CLASS_NAMES[kind], json, true);
}

function native(call) {
  try {
    return call();
  } catch (err) {
    throw fromNative(err);
  }
}

/**
 * A storage class over backend `kind` of the native registry, with `options` bound. Options are
 * checked at once (unknown names and wrong types throw PERSIST_INVALID_CONFIG); their defaults
 * (environment, working directory) are resolved when an instance is made.
 */
function defineBackend(kind, className, options, { checkNow = true } = {}) {
  const json = typeof options === "string" ? optionsOfUrl(kind, className, options) : optionsJson(options);
  return backendClass(kind, className, json, checkNow);
}

/** The class of `defineBackend` over options already as JSON. */
function backendClass(kind, className, json, checkNow) {
  // The default classes made at load are checked when first used instead: loading reads no
  // environment, and a malformed variable of an unused backend stops nothing.
  if (checkNow) native(() => binding().describeBackend(kind, json));
  const Backend = class extends NativePersist {
    /**
     * `(entityName, baseDir)`: a storage (TPersistBaseCtor). Made by a backtest-kit 8.4+ adapter
     * with that domain's arguments: a domain instance over this class (adapters.js).
     */
    constructor(...args) {
      super(args, kind, json, className);
    }

    /** The options this class uses now, defaults resolved (credentials redacted). */
    static get options() {
      return JSON.parse(native(() => binding().describeBackend(kind, json)));
    }

    /** The same as `options` (the SQLite class's original name for it). */
    static get database() {
      return this.options;
    }

    /**
     * `{ writes, commits }` of the storage these options name: documents written, and the commits
     * that wrote them (SQLite transactions, file sync groups, Redis write round trips).
     */
    static stats() {
      return native(() => binding().backendStats(kind, json));
    }

    /** Finish queued writes and release the shared database or connection; using the class again reopens it. */
    static async close() {
      await request((id) => binding().closeBackend(completionQueue(), id, kind, json));
    }
  };
  Object.defineProperty(Backend, "name", { value: className });
  return Backend;
}

/** `create…Persist(options)` of backend `kind`: a class with `options` bound, checked at once. */
const factory = (kind) => (options = {}) => defineBackend(kind, CLASS_NAMES[kind], options);

/** The class of backend `kind` with its defaults, made at load and checked when first used. */
const defaultClass = (kind) => defineBackend(kind, CLASS_NAMES[kind], {}, { checkNow: false });

/**
 * A RustFilePersist class with options; the file backend has one, `encryption` (which every
 * backend takes): `createFilePersist({ encryption: { key } })`.
 */
const createFilePersist = factory("file");

/** Atomic, durable JSON files in backtest-kit's own layout: `{baseDir}/{entityName}/{id}.json`. */
const RustFilePersist = defaultClass("file");

/**
 * A RustSqlitePersist class bound to explicit options, for example one database per domain:
 * `usePersistSignalAdapter(createSqlitePersist({ path: "./state/signals.sqlite" }))`.
 * Options: `path`, `synchronous` ("FULL" | "NORMAL"), `syncReads`.
 */
const createSqlitePersist = factory("sqlite");

/** All entities in one embedded SQLite database (`./dump/backtest-kit.sqlite` unless configured). */
const RustSqlitePersist = defaultClass("sqlite");

/**
 * A RustRedisPersist class bound to explicit options, e.g. a separate database or server per
 * domain: `createRedisPersist({ url: "redis://127.0.0.1:6379/2", prefix: "bot-a" })`.
 * Options: `url`, `cluster` (seed URLs of a Redis Cluster) or `sentinel` ({ nodes, masterName,
 * username, password, db }: the primary Redis Sentinels name), `prefix`, `connectTimeoutMs`,
 * `commandTimeoutMs`, `replicas` and `replicasTimeoutMs` (writes wait for replicas), `tls: { ca }`.
 */
const createRedisPersist = factory("redis");

/** Every entity in Redis, one hash per entity, over one shared connection (`REDIS_URL` etc.). */
const RustRedisPersist = defaultClass("redis");

/**
 * A RustPostgresPersist class bound to explicit options: `createPostgresPersist({ url:
 * "postgres://bot:secret@db.internal/trading?sslmode=verify-full", table: "bot_a" })`.
 * Options: `url` (else env BACKTEST_KIT_RS_POSTGRES_URL, then DATABASE_URL), `schema`, `table`,
 * `connectTimeoutMs`, `commandTimeoutMs`, `tls: { ca }`.
 */
const createPostgresPersist = factory("postgres");

/** Every entity in one PostgreSQL table, over shared connections (`DATABASE_URL` etc.). */
const RustPostgresPersist = defaultClass("postgres");

/**
 * A RustMongoPersist class bound to explicit options: `createMongoPersist({ url:
 * "mongodb+srv://bot:secret@cluster0.example.net/?w=majority", collection: "bot_a" })`.
 * Options: `url` (else env BACKTEST_KIT_RS_MONGO_URL, then MONGODB_URI; TLS and write concern in
 * its parameters), `database`, `collection`, `connectTimeoutMs`, `commandTimeoutMs`.
 */
const createMongoPersist = factory("mongodb");

/** Every entity in one MongoDB collection, `_id` = `["namespace","entity","id"]` (`MONGODB_URI` etc.). */
const RustMongoPersist = defaultClass("mongodb");

/**
 * A RustS3Persist class bound to explicit options: `createS3Persist({ url:
 * "s3://my-bucket/bot-a?region=eu-west-1" })`, or an S3-compatible server with `endpoint`.
 * Options: `url` (`s3://bucket/prefix?region=…&endpoint=…&pathStyle=…`, else env
 * BACKTEST_KIT_RS_S3_URL), `bucket`, `prefix`, `region`, `endpoint`, `pathStyle`, `accessKeyId`,
 * `secretAccessKey`, `sessionToken` (else the AWS_* variables), `connectTimeoutMs`, `commandTimeoutMs`.
 */
const createS3Persist = factory("s3");

/** An S3 object per document, `{prefix}/{namespace}/{entityName}/{id}.json` (`BACKTEST_KIT_RS_S3_URL`). */
const RustS3Persist = defaultClass("s3");

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
module.exports.PersistError = PersistError;
module.exports.setLogger = setLogger;
module.exports.setMaxBytesInFlight = setMaxBytesInFlight;
module.exports.inFlight = inFlight;

/**
 * For the `backtest-kit-rs` command (not public API): a class of any backend with options, and
 * every (namespace, entity) a store holds as `[namespaces, entities]`.
 */
module.exports[Symbol.for("backtest-kit-rs.tools")] = {
  defineBackend,
  backendForUrl: (url) => {
    const { kind, optionsJson: json } = storeUrl(url);
    return { kind, options: JSON.parse(json) };
  },
  BATCH,
  entities: (kind, options, root) => {
    const json = optionsJson(options);
    return request((id) => binding().listEntities(completionQueue(), id, kind, json, root));
  },
};

const kit = require("./kit.js");
// What kit.js's fast domain instances share with the classes (not public API).
kit.attach({ BATCH, PersistError, encode, parseDoc, keyOrder, toKey, constructStorage, logger: () => logger });

module.exports.DOMAINS = kit.DOMAINS;
module.exports.usePersist = kit.usePersist;
module.exports.useDefaultPersist = kit.useDefaultPersist;
