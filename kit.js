"use strict";
// Registration of storage classes with backtest-kit 8.4+ (per-domain instance classes).
//
// Each default `PersistXInstance` keeps one `PersistBase` in `this._storage` and talks to it
// only through the IPersistBase methods. We subclass the framework's own class and swap that
// storage for the chosen backend, constructed with the same entity name and base directory,
// so every domain keeps backtest-kit's logic (keys, transforms, restore rules) exactly and
// existing data stays where the default JSON files put it.
//
// With our own classes, each domain method also runs against a per-call view of the storage
// (`BatchView`): the framework's loops of hasValue/readValue/writeValue are answered from one
// native read made before the call (a candle window), one scan (keys() + readValue), and the
// writes are collected and sent as one native write after it. The framework's code still does
// everything else: it is called, never copied.

/** The 16 persistence domains of backtest-kit 19.x, by the name used in its exports. */
const DOMAINS = Object.freeze([
  "signal",
  "risk",
  "schedule",
  "strategy",
  "partial",
  "breakeven",
  "candle",
  "storage",
  "notification",
  "log",
  "measure",
  "interval",
  "memory",
  "recent",
  "state",
  "session",
]);

/** Caches the framework can refill: atomic writes without fsync, validated at read instead of init. */
const CACHE_DOMAINS = Object.freeze(["candle", "measure", "interval"]);

/** Default size of the in-process cache of closed candles, in candles (about 20 MB). */
const DEFAULT_CANDLE_CACHE = 100_000;

/** Largest number of ids a fast instance remembers as stored (to answer hasValue without a request). */
const KNOWN_IDS_LIMIT = 10_000;

// What index.js shares with this file (it requires this file, so it hands them over rather than
// this file requiring it back, which a module loader may resolve to a second copy).
let shared = null;
const internals = () => shared;
function attach(internalsOfIndex) {
  shared = internalsOfIndex;
}

const capitalised = (domain) => domain[0].toUpperCase() + domain.slice(1);

function checkKit(kit) {
  if (typeof kit === "function") {
    throw new TypeError(
      "usePersist(kit, backend): pass the backtest-kit module first (`import * as kit from \"backtest-kit\"` " +
        "or `require(\"backtest-kit\")`), so that the adapters configured are the ones your code uses",
    );
  }
  if (!kit || typeof kit !== "object" || typeof kit.PersistBase !== "function") {
    throw new TypeError("usePersist: the first argument must be the backtest-kit module");
  }
}

/**
 * Every domain this kit exposes as `PersistXAdapter` (19.x has the 16 of DOMAINS; 20.x adds
 * Dictionary), each with its parts or the reason it cannot be registered.
 */
function discoverDomains(kit) {
  const names = new Set(DOMAINS);
  for (const key of Object.keys(kit)) {
    const match = /^Persist([A-Z][A-Za-z0-9]*)Adapter$/.exec(key);
    if (match) names.add(match[1][0].toLowerCase() + match[1].slice(1));
  }
  return [...names].map((domain) => {
    try {
      return { domain, parts: domainParts(kit, domain) };
    } catch (err) {
      return { domain, problem: err.message };
    }
  });
}

function domainParts(kit, domain) {
  const name = capitalised(domain);
  const adapter = kit[`Persist${name}Adapter`];
  const DefaultInstance = kit[`Persist${name}Instance`];
  const register = adapter && adapter[`usePersist${name}Adapter`];
  if (typeof DefaultInstance !== "function" || typeof register !== "function") {
    throw new TypeError(
      `usePersist: this backtest-kit has no Persist${name}Adapter.usePersist${name}Adapter and Persist${name}Instance ` +
        "(per-domain adapters arrived in 8.4; for older versions pass the storage class to each adapter directly)",
    );
  }
  return { name, adapter, DefaultInstance, register };
}

// ---------------------------------------------------------------------------------------------
// The in-process cache of closed candles: they are never rewritten, so a hit needs no I/O. Only
// candles read from storage or stored by this process enter it (a miss is never cached), so
// candles another process adds are found by the next read. FIFO eviction at the bound; 0 turns it off.

// One shelf (id → candle) per storage identity, so a lookup hashes the short id, not the long
// identity; eviction follows one process-wide insertion queue of (shelf, id) pairs.
const candleShelves = new Map();
const evictionQueue = [];
let evictionHead = 0;
let cachedCandles = 0;
let candleCacheLimit = DEFAULT_CANDLE_CACHE;

function candleShelf(identity) {
  let shelf = candleShelves.get(identity);
  if (!shelf) candleShelves.set(identity, (shelf = new Map()));
  return shelf;
}

function cacheCandle(shelf, id, candle) {
  if (candleCacheLimit === 0) return;
  // Flat objects only: a shallow copy per hit is then a full copy.
  for (const field in candle) if (candle[field] !== null && typeof candle[field] === "object") return;
  const known = shelf.has(id);
  shelf.set(id, candle);
  if (known) return;
  evictionQueue.push(shelf, id);
  cachedCandles++;
  evictCandles();
}

function evictCandles() {
  while (cachedCandles > candleCacheLimit) {
    evictionQueue[evictionHead].delete(evictionQueue[evictionHead + 1]);
    evictionHead += 2;
    cachedCandles--;
  }
  // Drop the consumed head now and then, so the queue stays proportional to what is cached.
  if (evictionHead > 4096 && evictionHead * 2 > evictionQueue.length) {
    evictionQueue.splice(0, evictionHead);
    evictionHead = 0;
  }
}


// ---------------------------------------------------------------------------------------------
// Hints: which ids a domain method will ask for, so they can be fetched in one request. A hint
// only decides what is fetched ahead; the framework's own loop decides what is used, so a wrong
// hint costs speed, never correctness.

/** Interval lengths for candle windows (the framework's own keys are `since + i * step`). */
const STEP_MS = { "1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240, "6h": 360, "8h": 480, "1d": 1440 };

const HINTS = {
  candle: {
    readCandlesData(instance, [limit, since]) {
      const step = STEP_MS[instance.interval] * 60_000;
      if (!(step > 0) || !Number.isSafeInteger(limit) || limit <= 0 || !Number.isFinite(since)) return {};
      return { window: Array.from({ length: limit }, (_, i) => String(since + i * step)), cacheCandles: true };
    },
    // The framework writes a candle only if hasValue says it is absent: insert-only does that
    // natively, in one request, also against candles another process wrote meanwhile.
    writeCandlesData: () => ({ assumeAbsent: true, mode: "insert", cacheCandles: true }),
  },
  log: {
    writeLogData: () => ({ assumeAbsent: true, mode: "insert" }),
  },
};

/**
 * The storage as one call of a domain method sees it. Reads come from what this call fetched,
 * what the instance knows, or the store; writes are collected and flushed as one request.
 */
class BatchView {
  constructor(storage, known, hint, candleShelf) {
    this.storage = storage;
    this.entityName = storage.entityName;
    this.baseDir = storage.baseDir;
    /** Ids this instance has seen stored; no domain deletes documents, so they stay true. */
    this.known = known;
    this.hint = hint;
    /** This storage's shelf of the candle cache, or null outside candle methods. */
    this.candleShelf = candleShelf;
    /** id → JSON text written by this call, flushed after it. */
    this.pending = new Map();
    /** id → `{ value } | { failure } | null` fetched for this call. */
    this.fetched = new Map();
    this.scanned = null;
  }

  waitForInit(initial) {
    return this.storage.waitForInit(initial);
  }

  #key(entityId, op) {
    return internals().toKey(this.entityName, entityId, op);
  }

  /** Fetch the hinted window in one request, serving cached candles without one. */
  async prefetch() {
    const ids = this.hint.window;
    if (!ids) return;
    const missing = [];
    for (const id of ids) {
      const cached = this.candleShelf?.get(id);
      if (cached) this.fetched.set(id, { value: { ...cached } });
      else missing.push(id);
    }
    if (missing.length === 0) return;
    const docs = await this.storage[internals().BATCH].read(missing, true);
    const { parseDoc } = internals();
    docs.forEach((doc, i) => {
      const id = missing[i];
      if (doc === null) return this.fetched.set(id, null);
      try {
        const value = parseDoc(this.entityName, id, doc);
        this.learn(id);
        if (this.candleShelf && value && typeof value === "object") {
          cacheCandle(this.candleShelf, id, value);
          this.fetched.set(id, { value: { ...value } });
        } else this.fetched.set(id, { value });
      } catch (failure) {
        this.fetched.set(id, { failure });
      }
    });
  }

  learn(id) {
    if (this.candleShelf || this.known.has(id)) return; // candles: the candle cache knows
    this.known.add(id);
    if (this.known.size > KNOWN_IDS_LIMIT) this.known.delete(this.known.values().next().value);
  }

  async hasValue(entityId) {
    const key = this.#key(entityId, "has");
    if (this.pending.has(key)) return true;
    if (this.fetched.has(key)) return this.fetched.get(key) !== null;
    if (this.scanned) return this.scanned.has(key);
    if (this.known.has(key)) return true;
    if (this.candleShelf?.has(key)) return true;
    if (this.hint.assumeAbsent) return false;
    return this.storage.hasValue(key);
  }

  async readValue(entityId) {
    const key = this.#key(entityId, "read");
    const { parseDoc } = internals();
    if (this.pending.has(key)) return JSON.parse(this.pending.get(key));
    if (this.fetched.has(key)) {
      const doc = this.fetched.get(key);
      if (doc === null) return parseDoc(this.entityName, key, null);
      if (doc.failure) throw doc.failure;
      const value = doc.value;
      this.fetched.delete(key); // a second read gets a fresh copy from storage, as PersistBase would
      return value;
    }
    if (this.scanned?.has(key)) return parseDoc(this.entityName, key, this.scanned.get(key));
    const [doc] = await this.storage[internals().BATCH].read([key], false);
    if (typeof doc === "string") this.learn(key);
    return parseDoc(this.entityName, key, doc);
  }

  async writeValue(entityId, value) {
    const key = this.#key(entityId, "write");
    this.pending.set(key, internals().encode(this.entityName, key, value));
  }

  /** The entity's ids from one scan, whose texts then answer readValue without more requests. */
  async *keys() {
    if (!this.scanned) {
      const [ids, texts] = await this.storage[internals().BATCH].scan();
      this.scanned = new Map();
      ids.forEach((id, i) => {
        this.scanned.set(id, texts[i]);
        this.learn(id);
      });
    }
    yield* [...this.scanned.keys()].sort(internals().keyOrder);
  }

  /**
   * Send the collected writes as one request. The backend compares with what is stored (not
   * with what this process last saw, which another writer may have changed): documents already
   * holding their text are not written.
   */
  async flush() {
    if (this.pending.size === 0) return;
    const ids = [...this.pending.keys()];
    const texts = [...this.pending.values()];
    this.pending.clear();
    const written = await this.storage[internals().BATCH].write(ids, texts, this.hint.mode ?? "changed");
    ids.forEach((id) => this.learn(id));
    // Candles this call stored are what a read would return; when some already existed (another
    // process wrote them), what is stored may differ, and the next read fetches it.
    if (this.candleShelf && candleCacheLimit > 0 && written === ids.length) {
      ids.forEach((id, i) => {
        const value = JSON.parse(texts[i]);
        if (value && typeof value === "object") cacheCandle(this.candleShelf, id, value);
      });
    }
  }
}

/** Whether `Backend` answers the batch requests for its own IPersistBase methods. */
function hasBatchPaths(Backend) {
  const { BATCH } = internals();
  // A subclass that overrides readValue & co. without also overriding the batch paths would be
  // bypassed by them: such classes take the generic path.
  const depthOf = (name) => {
    let depth = 0;
    for (let proto = Backend.prototype; proto; proto = Object.getPrototypeOf(proto), depth++) {
      if (Object.prototype.hasOwnProperty.call(proto, name)) return depth;
    }
    return Infinity;
  };
  const batchDepth = depthOf(BATCH);
  return (
    batchDepth !== Infinity &&
    ["waitForInit", "readValue", "hasValue", "writeValue", "keys"].every((m) => depthOf(m) >= batchDepth)
  );
}

const isAsyncGenerator = (fn) => Object.prototype.toString.call(fn) === "[object AsyncGeneratorFunction]";

/** The framework's own instance class for `domain`, with its storage replaced by `Backend`. */
function instanceClass(domain, { name, DefaultInstance }, Backend, settings) {
  const fast = hasBatchPaths(Backend);
  const known = new WeakMap();
  class Instance extends DefaultInstance {
    constructor(...args) {
      super(...args);
      const { entityName, baseDir } = this._storage;
      if (typeof entityName !== "string" || typeof baseDir !== "string") {
        throw new TypeError(`usePersist: Persist${name}Instance no longer keeps a PersistBase in _storage`);
      }
      const storage = internals().constructStorage(Backend, entityName, baseDir);
      if (fast) {
        storage[internals().BATCH].configure({ durable: settings.durable, validateOnInit: !settings.cache });
        known.set(this, new Set());
      }
      this._storage = storage;
    }
  }
  Object.defineProperty(Instance, "name", { value: `${Backend.name || "Custom"}${name}Instance` });
  if (!fast) return Instance;

  const hints = HINTS[domain] ?? {};
  for (const method of Object.getOwnPropertyNames(DefaultInstance.prototype)) {
    const original = DefaultInstance.prototype[method];
    if (["constructor", "waitForInit", "dispose"].includes(method) || typeof original !== "function") continue;
    const view = (instance, args) => {
      const hint = hints[method]?.(instance, args) ?? {};
      const shelf = hint.cacheCandles ? candleShelf(instance._storage[internals().BATCH].identity()) : null;
      const batchView = new BatchView(instance._storage, known.get(instance), hint, shelf);
      // The framework's method runs with this view as its storage; everything else is the instance.
      return { batchView, self: Object.create(instance, { _storage: { value: batchView } }) };
    };
    Instance.prototype[method] = isAsyncGenerator(original)
      ? async function* (...args) {
          if (this._storage instanceof BatchView) return yield* original.apply(this, args); // called from a method
          const { batchView, self } = view(this, args);
          try {
            yield* original.apply(self, args);
          } finally {
            await batchView.flush();
          }
        }
      : async function (...args) {
          if (this._storage instanceof BatchView) return original.apply(this, args); // called from a method
          const { batchView, self } = view(this, args);
          try {
            await batchView.prefetch();
            return await original.apply(self, args);
          } finally {
            await batchView.flush();
          }
        };
  }
  return Instance;
}

/** `instanceClass` with usePersist's default settings for `domain` (for adapters.js). */
function domainInstanceClass(domain, parts, Backend) {
  const cache = CACHE_DOMAINS.includes(domain);
  return instanceClass(domain, parts, Backend, { cache, durable: !cache });
}

function checkBackend(domain, Backend) {
  const proto = Backend && Backend.prototype;
  const missing = ["waitForInit", "readValue", "hasValue", "writeValue", "keys"].filter(
    (method) => !proto || typeof proto[method] !== "function",
  );
  if (typeof Backend !== "function" || missing.length) {
    throw new TypeError(
      `usePersist: the backend for ${domain} must be a class with the IPersistBase methods (missing: ${missing.join(", ") || "a constructor"})`,
    );
  }
}

const invalidOption = (detail) => new (internals().PersistError)("PERSIST_INVALID_CONFIG", `usePersist: ${detail}`);

/** A domain name this kit has, else PERSIST_INVALID_CONFIG naming the valid ones. */
function checkDomainName(known, domain, where) {
  if (known.includes(domain)) return;
  const close = known.find((name) => name.startsWith(String(domain).slice(0, 3)));
  throw invalidOption(
    `unknown domain ${JSON.stringify(domain)} in ${where}${close ? ` (did you mean ${JSON.stringify(close)}?)` : ""}; known: ${known.join(", ")}`,
  );
}

/** Options checked before anything is registered; unknown names are refused. */
function checkOptions(options, known) {
  if (options === null || typeof options !== "object") throw invalidOption("options must be an object");
  const unknown = Object.keys(options).filter((k) => !["domains", "durability", "candleCache"].includes(k));
  if (unknown.length) throw invalidOption(`unknown option ${JSON.stringify(unknown[0])}; known: domains, durability, candleCache`);
  const durability = options.durability ?? {};
  if (durability === null || typeof durability !== "object") throw invalidOption("durability must be an object");
  for (const [domain, level] of Object.entries(durability)) {
    checkDomainName(known, domain, "durability");
    if (level !== "durable" && level !== "atomic") {
      throw invalidOption(`durability.${domain} must be "durable" or "atomic", got ${JSON.stringify(level)}`);
    }
  }
  const { candleCache } = options;
  if (candleCache !== undefined && !(Number.isSafeInteger(candleCache) && candleCache >= 0)) {
    throw invalidOption(`candleCache must be a whole number of candles (0 turns it off), got ${String(candleCache)}`);
  }
}

/** `backend` as [domain, class] steps: a class for all (or `domains`), or `{ signal: A, candle: B, ... }`. */
function plan(found, backend, options) {
  const known = found.map((d) => d.domain);
  // Every domain this kit can take; the others are reported, not silently skipped.
  const registrable = () => {
    for (const { domain, problem } of found) {
      if (problem) internals().logger().warn(`backtest-kit-rs usePersist: domain ${domain} not registered: ${problem}`);
    }
    return found.filter((d) => !d.problem).map((d) => d.domain);
  };
  if (typeof backend === "function") {
    const domains = options.domains ?? registrable();
    if (!Array.isArray(domains)) throw invalidOption("options.domains must be an array of domain names");
    domains.forEach((domain) => checkDomainName(known, domain, "options.domains"));
    return domains.map((domain) => [domain, backend]);
  }
  if (backend && typeof backend === "object") {
    if (options.domains) throw invalidOption("options.domains goes with a single backend class, not a map");
    const { default: fallback, ...perDomain } = backend;
    Object.keys(perDomain).forEach((domain) => checkDomainName(known, domain, "the backend map"));
    const domains = fallback ? [...new Set([...registrable(), ...Object.keys(perDomain)])] : Object.keys(perDomain);
    return domains.map((domain) => [domain, domain in perDomain ? perDomain[domain] : fallback]).filter(([, B]) => B !== null);
  }
  throw new TypeError("usePersist: backend must be a storage class or a { domain: class } map");
}

/**
 * Register `backend` for backtest-kit's persistence domains (every one the kit exposes by default).
 *
 *   usePersist(kit, RustSqlitePersist)
 *   usePersist(kit, RustFilePersist, { domains: ["signal", "risk"] })
 *   usePersist(kit, { default: RustSqlitePersist, candle: RustFilePersist, log: null })
 *   usePersist(kit, RustSqlitePersist, { durability: { candle: "durable" }, candleCache: 0 })
 *
 * In a map, `default` covers every domain not named, and `null` leaves a domain as it is.
 * `durability`: per domain, "durable" (synced before the promise resolves; the default for
 * state) or "atomic" (never torn, may be lost on power loss; the default for the caches
 * candle, measure and interval). `candleCache`: candles kept in memory by our classes
 * (default 100,000; 0 = none). Returns the domains registered. Takes effect at once.
 */
function usePersist(kit, backend, options = {}) {
  checkKit(kit);
  const found = discoverDomains(kit);
  checkOptions(options, found.map((d) => d.domain));
  const steps = plan(found, backend, options);
  // Validate everything before registering anything, so a mistake changes nothing.
  const classes = steps.map(([domain, Backend]) => {
    checkBackend(domain, Backend);
    const parts = domainParts(kit, domain);
    const cache = CACHE_DOMAINS.includes(domain);
    const durable = (options.durability?.[domain] ?? (cache ? "atomic" : "durable")) === "durable";
    return { domain, parts, Instance: instanceClass(domain, parts, Backend, { cache, durable }) };
  });
  if (options.candleCache !== undefined) {
    candleCacheLimit = options.candleCache;
    evictCandles();
  }
  for (const { parts, Instance } of classes) parts.register.call(parts.adapter, Instance);
  return classes.map(({ domain }) => domain);
}

/** Back to backtest-kit's own JSON files (`useJson()`) for every domain the kit has, or for `domains`. */
function useDefaultPersist(kit, domains) {
  checkKit(kit);
  const found = discoverDomains(kit);
  if (domains !== undefined && !Array.isArray(domains)) throw invalidOption("useDefaultPersist: domains must be an array of domain names");
  domains?.forEach((domain) => checkDomainName(found.map((d) => d.domain), domain, "useDefaultPersist's domains"));
  const chosen = domains ?? found.filter((d) => !d.problem).map((d) => d.domain);
  const parts = chosen.map((domain) => domainParts(kit, domain));
  for (const { adapter } of parts) adapter.useJson();
  return [...chosen];
}

/** How many candles the in-process cache holds now (for tests and diagnostics). */
function candleCacheSize() {
  return cachedCandles;
}

module.exports = { DOMAINS, CACHE_DOMAINS, usePersist, useDefaultPersist, candleCacheSize, attach, discoverDomains, domainInstanceClass };
