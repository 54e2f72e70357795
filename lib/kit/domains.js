"use strict";
// backtest-kit's persistence domains: the 16 of 19.x, and whichever a kit exposes as
// Persist<Name>Adapter with its Persist<Name>Instance.

const { PersistError } = require("../errors.js");

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

const invalidOption = (detail) => new PersistError("PERSIST_INVALID_CONFIG", `usePersist: ${detail}`);

/** A domain name this kit has, else PERSIST_INVALID_CONFIG naming the valid ones. */
function checkDomainName(known, domain, where) {
  if (known.includes(domain)) return;
  const close = known.find((name) => name.startsWith(String(domain).slice(0, 3)));
  throw invalidOption(
    `unknown domain ${JSON.stringify(domain)} in ${where}${close ? ` (did you mean ${JSON.stringify(close)}?)` : ""}; known: ${known.join(", ")}`,
  );
}

module.exports = { DOMAINS, CACHE_DOMAINS, checkKit, discoverDomains, domainParts, checkDomainName, invalidOption };
