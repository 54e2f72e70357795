"use strict";
// The framework's own domain instance classes with their storage replaced by a backend: each
// default PersistXInstance keeps one PersistBase in `this._storage`; we subclass it and swap that
// storage, so every domain keeps backtest-kit's logic exactly. With our own classes, each method
// runs over a BatchView.

const { BATCH, constructStorage } = require("../persist.js");
const { BatchView, HINTS } = require("./batch-view.js");
const { candleShelf } = require("./candle-cache.js");
const { CACHE_DOMAINS } = require("./domains.js");

/** Whether `Backend` answers the batch requests for its own IPersistBase methods. */
function hasBatchPaths(Backend) {
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
      const storage = constructStorage(Backend, entityName, baseDir);
      if (fast) {
        storage[BATCH].configure({ durable: settings.durable, validateOnInit: !settings.cache });
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
      const shelf = hint.cacheCandles ? candleShelf(instance._storage[BATCH].identity()) : null;
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

module.exports = { instanceClass, domainInstanceClass };
