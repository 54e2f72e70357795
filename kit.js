"use strict";
// Registration of storage classes with backtest-kit 8.4+ (per-domain instance classes).
//
// Each default `PersistXInstance` keeps one `PersistBase` in `this._storage` and talks to it
// only through the IPersistBase methods. We subclass the framework's own class and swap that
// storage for the chosen backend, constructed with the same entity name and base directory,
// so every domain keeps backtest-kit's logic (keys, transforms, restore rules) exactly and
// existing data stays where the default JSON files put it.

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

function domainParts(kit, domain) {
  if (!DOMAINS.includes(domain)) {
    throw new TypeError(`usePersist: unknown domain ${JSON.stringify(domain)}; known: ${DOMAINS.join(", ")}`);
  }
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

/** The framework's own instance class for `domain`, with its storage replaced by `Backend`. */
function instanceClass({ name, DefaultInstance }, Backend) {
  class Instance extends DefaultInstance {
    constructor(...args) {
      super(...args);
      const { entityName, baseDir } = this._storage;
      if (typeof entityName !== "string" || typeof baseDir !== "string") {
        throw new TypeError(`usePersist: Persist${name}Instance no longer keeps a PersistBase in _storage`);
      }
      this._storage = Reflect.construct(Backend, [entityName, baseDir]);
    }
  }
  Object.defineProperty(Instance, "name", { value: `${Backend.name || "Custom"}${name}Instance` });
  return Instance;
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

/** `backend` as a per-domain map: a class for all (or `domains`), or `{ signal: A, candle: B, ... }`. */
function plan(backend, options) {
  if (typeof backend === "function") {
    const domains = options.domains ?? DOMAINS;
    if (!Array.isArray(domains)) throw new TypeError("usePersist: options.domains must be an array of domain names");
    return domains.map((domain) => [domain, backend]);
  }
  if (backend && typeof backend === "object") {
    if (options.domains) throw new TypeError("usePersist: options.domains goes with a single backend class, not a map");
    const { default: fallback, ...perDomain } = backend;
    const unknown = Object.keys(perDomain).filter((domain) => !DOMAINS.includes(domain));
    if (unknown.length) {
      throw new TypeError(`usePersist: unknown domain ${JSON.stringify(unknown[0])}; known: ${DOMAINS.join(", ")}`);
    }
    const domains = fallback ? DOMAINS : Object.keys(perDomain);
    return domains.map((domain) => [domain, domain in perDomain ? perDomain[domain] : fallback]).filter(([, B]) => B !== null);
  }
  throw new TypeError("usePersist: backend must be a storage class or a { domain: class } map");
}

/**
 * Register `backend` for backtest-kit's persistence domains (all 16 by default).
 *
 *   usePersist(kit, RustSqlitePersist)
 *   usePersist(kit, RustFilePersist, { domains: ["signal", "risk"] })
 *   usePersist(kit, { default: RustSqlitePersist, candle: RustFilePersist, log: null })
 *
 * In a map, `default` covers every domain not named, and `null` leaves a domain as it is.
 * Returns the domains registered. Takes effect at once (backtest-kit drops cached instances).
 */
function usePersist(kit, backend, options = {}) {
  checkKit(kit);
  const steps = plan(backend, options);
  // Validate everything before registering anything, so a mistake changes nothing.
  const classes = steps.map(([domain, Backend]) => {
    checkBackend(domain, Backend);
    const parts = domainParts(kit, domain);
    return { domain, parts, Instance: instanceClass(parts, Backend) };
  });
  for (const { parts, Instance } of classes) parts.register.call(parts.adapter, Instance);
  return classes.map(({ domain }) => domain);
}

/** Back to backtest-kit's own JSON files (`useJson()`) for all domains, or for `domains`. */
function useDefaultPersist(kit, domains = DOMAINS) {
  checkKit(kit);
  const parts = domains.map((domain) => domainParts(kit, domain));
  for (const { adapter } of parts) adapter.useJson();
  return [...domains];
}

module.exports = { DOMAINS, usePersist, useDefaultPersist };
