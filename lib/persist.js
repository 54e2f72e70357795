"use strict";
// The storage class every backend's class extends: backtest-kit's IPersistBase over one native
// store, its batch paths for usePersist, and its domain-instance role for backtest-kit's adapters.

const path = require("node:path");

const adapters = require("./adapters.js");
const { NOT_WELL_FORMED, encode, keyOrder, parseDoc, toKey } = require("./codec.js");
const { PersistError, describeArgument, fromNative, logger } = require("./errors.js");
const { binding, completionQueue, nothingHeld, request } = require("./native.js");

/** Batch operations of our classes, used by `usePersist`'s fast domain instances (kit.js). */
const BATCH = Symbol.for("backtest-kit-rs.batch");

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
      this.#domain = adapters.domainState(this, new.target, args, label);
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
      logger().warn(`backtest-kit-rs ${this.#label} removed stale atomic-write tmp file filePath=${location} ${entity}`);
    }
    for (const location of report.removedInvalid) {
      logger().warn(`backtest-kit-rs ${this.#label} moved invalid document aside filePath=${location} ${entity}`);
    }
    for (const failed of report.failedRemovals) {
      logger().warn(`backtest-kit-rs ${this.#label} failed to move invalid document aside ${failed} ${entity}`);
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

adapters.installDomainMethods(NativePersist.prototype);

module.exports = { NativePersist, BATCH, constructStorage };
