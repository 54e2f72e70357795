"use strict";
// A storage class per backend of the native registry, by name or by store URL: the classes carry
// no per-backend code, only the backend's name and options.

const { NativePersist } = require("./persist.js");
const { PersistError, describeArgument } = require("./errors.js");
const { binding, completionQueue, native, request } = require("./native.js");

/** Options as JSON for the native side; Buffers (a TLS CA) become their text. */
function optionsJson(options) {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new PersistError("PERSIST_INVALID_CONFIG", `options must be an object or a store URL string, got ${describeArgument(options)}`);
  }
  return JSON.stringify(options, (_key, value) =>
    value && value.type === "Buffer" && Array.isArray(value.data) ? Buffer.from(value.data).toString() : value,
  );
}

/**
 * The public class name of each backend, as index.js names its default class (`defaultClass`):
 * for messages and the classes `createPersist` makes. A backend without one is named after it.
 */
const classNames = new Map();
const classNameOf = (kind) => classNames.get(kind) ?? `Rust(${kind})Persist`;

/** The backend a store URL names and the options it stands for, as JSON (the core parses it). */
const storeUrl = (url) => native(() => binding().backendForUrl(url));

function optionsOfUrl(kind, className, url) {
  const parsed = storeUrl(url);
  if (parsed.kind !== kind) {
    throw new PersistError(
      "PERSIST_INVALID_CONFIG",
      `${className}: ${JSON.stringify(url.split(":")[0])} URLs are for ${classNameOf(parsed.kind)} (createPersist(url) picks the backend from the URL)`,
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
  return backendClass(kind, classNameOf(kind), json, true);
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
     * that wrote them (SQLite and PostgreSQL transactions, file sync groups, Redis write round trips,
     * MongoDB update commands, S3 requests).
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
const factory = (kind) => (options = {}) => defineBackend(kind, classNameOf(kind), options);

/** The class `className` of backend `kind` with its defaults, made at load and checked when first used. */
function defaultClass(kind, className) {
  classNames.set(kind, className);
  return defineBackend(kind, className, {}, { checkNow: false });
}

/**
 * Every backend this build registers (the core's list, in its order): `{ name, schemes,
 * className }`, `className` being the class index.js exports for it.
 */
const listBackends = () =>
  native(() => binding().listBackends()).map(({ name, schemes }) => ({ name, schemes, className: classNameOf(name) }));

/**
 * For the `backtest-kit-rs` command: the store a URL names, `{ kind, options, root, base }` (the
 * core's `tool_store`: a file URL names a dump directory, `root`, whose namespaces are relative to
 * `base`; a bare scheme stands for the backend's defaults).
 */
function toolStore(url) {
  const { kind, optionsJson, root, base } = native(() => binding().toolStore(url));
  return { kind, options: JSON.parse(optionsJson), root, base };
}

/** For the `backtest-kit-rs` command: every (namespace, entity) a store holds. */
function entities(kind, options, root) {
  const json = optionsJson(options);
  return request((id) => binding().listEntities(completionQueue(), id, kind, json, root));
}

/** For the `backtest-kit-rs` command: the backtest-kit domain of a namespace (the core's layout). */
const domainOf = (namespace) => native(() => binding().domainOf(namespace));

module.exports = { createPersist, defineBackend, factory, defaultClass, listBackends, toolStore, entities, domainOf };
