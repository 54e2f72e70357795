"use strict";
// usePersist / useDefaultPersist: registration of storage classes with backtest-kit 8.4+
// (per-domain instance classes), checked in full before anything is registered.

const { logger } = require("../errors.js");
const { setCandleCacheLimit } = require("./candle-cache.js");
const { CACHE_DOMAINS, checkDomainName, checkKit, discoverDomains, domainParts, invalidOption } = require("./domains.js");
const { instanceClass } = require("./instances.js");

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
      if (problem) logger().warn(`backtest-kit-rs usePersist: domain ${domain} not registered: ${problem}`);
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
    setCandleCacheLimit(options.candleCache);
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

module.exports = { usePersist, useDefaultPersist };
