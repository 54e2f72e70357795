"use strict";
// Our storage classes handed straight to backtest-kit 8.4+'s per-domain adapters, the package's
// one-line design: `PersistSignalAdapter.usePersistSignalAdapter(RustFilePersist)`. Such an adapter
// constructs the class it was given with the domain's own arguments (symbol, strategyName,
// exchangeName; riskName, exchangeName; none for Log …) and calls the domain's methods
// (readSignalData, writePositionData, …). An object made that way becomes a forwarder to the
// framework's own PersistXInstance with its storage replaced by the same class — the very class
// `usePersist(kit, C, { domains: [x] })` registers — so both styles keep the same keys and files
// and take the same batch paths, and a bot can switch between them and keep its positions.
//
// Who constructed the object decides what it is: the first frame below its constructors being
// backtest-kit's own bundle (8.4 or later) makes it a domain instance, and that frame names the
// very copy of backtest-kit (CommonJS or ES module) whose PersistXInstance to use, so no second
// copy is ever picked. Anything else is a storage `(entityName, baseDir)`, as before.

const fs = require("node:fs");
const path = require("node:path");
const { fileURLToPath, pathToFileURL } = require("node:url");

const { PersistError } = require("./errors.js");
const { discoverDomains } = require("./kit/domains.js");
// instances.js needs the storage class, which needs this file: required when first used.
const instances = () => require("./kit/instances.js");

/**
 * The domain methods of backtest-kit 19.x's instances (`*`: async generator). They are on every
 * class from the start, so that a domain instance the framework made can never meet "is not a
 * function"; a later version's further domains are added when its bundle is first seen.
 */
const DOMAIN_METHODS = [
  "readSignalData writeSignalData",
  "readPositionData writePositionData",
  "readScheduleData writeScheduleData",
  "readStrategyData writeStrategyData",
  "readPartialData writePartialData",
  "readBreakevenData writeBreakevenData",
  "readCandlesData writeCandlesData",
  "readStorageData writeStorageData",
  "readNotificationData writeNotificationData",
  "readLogData writeLogData",
  "readMeasureData writeMeasureData removeMeasureData listMeasureData*",
  "readIntervalData writeIntervalData removeIntervalData listIntervalData*",
  "readMemoryData hasMemoryData writeMemoryData removeMemoryData listMemoryData* dispose",
  "readRecentData writeRecentData",
  "readStateData writeStateData dispose",
  "readSessionData writeSessionData dispose",
].flatMap((line) => line.split(" "));

/** Per-domain adapters (instance classes) arrived in backtest-kit 8.4. */
const FIRST_ADAPTER_VERSION = [8, 4];

/** backtest-kit bundle file → its version has per-domain adapters (memoised; null: not backtest-kit). */
const bundles = new Map();

function adapterBundle(file) {
  if (bundles.has(file)) return bundles.get(file);
  let result = null;
  const local = file.startsWith("file:") ? fileURLToPath(file) : file;
  if (/[\\/]backtest-kit[\\/]build[\\/]index\.(c|m)js$/.test(local)) {
    try {
      const manifest = JSON.parse(fs.readFileSync(path.join(path.dirname(local), "..", "package.json"), "utf8"));
      const [major, minor] = String(manifest.version).split(".").map(Number);
      const [firstMajor, firstMinor] = FIRST_ADAPTER_VERSION;
      if (manifest.name === "backtest-kit" && (major > firstMajor || (major === firstMajor && minor >= firstMinor))) {
        result = { file: local, esm: local.endsWith(".mjs"), version: manifest.version };
      }
    } catch {
      // not a package we can read: not a framework caller
    }
  }
  bundles.set(file, result);
  return result;
}

/** The backtest-kit 8.4+ bundle that called the constructor chain below `ctorOf`, or null. */
function frameworkCaller(ctorOf) {
  const { prepareStackTrace, stackTraceLimit } = Error;
  let sites = [];
  try {
    Error.stackTraceLimit = 24;
    Error.prepareStackTrace = (_error, callSites) => callSites;
    const holder = {};
    Error.captureStackTrace(holder, ctorOf);
    sites = Array.isArray(holder.stack) ? holder.stack : [];
  } finally {
    Error.prepareStackTrace = prepareStackTrace;
    Error.stackTraceLimit = stackTraceLimit;
  }
  // Skip the rest of the constructor chain (subclasses of ours) and built-ins (Reflect.construct);
  // the next frame is whoever asked for the object.
  for (const site of sites) {
    if (site.isConstructor() || !site.getFileName()) continue;
    return adapterBundle(site.getFileName());
  }
  return null;
}

/** The module object of a bundle that is already loaded (it called us). */
async function loadBundle(bundle) {
  return bundle.esm ? import(pathToFileURL(bundle.file).href) : (require.cache[bundle.file]?.exports ?? require(bundle.file));
}

/** The domains of a bundle's module, found once (discoverDomains walks every export). */
const domainsByBundle = new WeakMap();

function domainsOf(bundleModule) {
  let domains = domainsByBundle.get(bundleModule);
  if (!domains) domainsByBundle.set(bundleModule, (domains = discoverDomains(bundleModule)));
  return domains;
}

/** Instance classes per (our class, framework instance class), made once like usePersist's. */
const instanceClasses = new WeakMap();

function instanceClassFor(Backend, domain, parts) {
  let byDefault = instanceClasses.get(Backend);
  if (!byDefault) instanceClasses.set(Backend, (byDefault = new Map()));
  let Instance = byDefault.get(parts.DefaultInstance);
  if (!Instance) byDefault.set(parts.DefaultInstance, (Instance = instances().domainInstanceClass(domain, parts, Backend)));
  return Instance;
}

/**
 * The state of an object the framework made as a domain instance: its constructor arguments, the
 * bundle that made it, the `initial` of the first waitForInit, and (once a domain method named the
 * domain) the framework instance it forwards to.
 */
function domainState(object, ctorOf, args, label) {
  const bundle = frameworkCaller(ctorOf);
  if (!bundle) return null;
  const state = { args, bundle, label, initial: undefined, delegate: null };
  states.set(object, state);
  return state;
}

/** The domain state of each object the framework made; a storage has none. */
const states = new WeakMap();
const stateOf = (object) => states.get(object) ?? null;

/** Bundles whose domain methods are on our prototype already. */
const scanned = new Set();

/**
 * waitForInit of a domain instance. Before the first domain call there is nothing to prepare; the
 * first one per bundle adds the methods of domains newer than the 19.x list, which the framework
 * calls right after it.
 */
async function waitForInit(state, initial) {
  if (state.delegate) return (await state.delegate).waitForInit(initial);
  state.initial ??= initial;
  if (!scanned.has(state.bundle.file)) {
    addDomainMethods(methodsOf(await loadBundle(state.bundle)));
    scanned.add(state.bundle.file);
  }
}

function delegateFor(self, state, method) {
  state.delegate ??= makeDelegate(self.constructor, state, method).catch((error) => {
    state.delegate = null;
    throw error;
  });
  return state.delegate;
}

async function makeDelegate(Backend, state, method) {
  const bundle = await loadBundle(state.bundle);
  const found = domainsOf(bundle).find(({ parts }) => parts && typeof parts.DefaultInstance.prototype[method] === "function");
  if (!found) {
    throw new PersistError(
      "PERSIST_INVALID_CONFIG",
      `${state.label}: backtest-kit ${state.bundle.version} called ${method} on it, which none of its Persist*Instance classes has`,
    );
  }
  const Instance = instanceClassFor(Backend, found.domain, found.parts);
  const instance = new Instance(...state.args);
  await instance.waitForInit(state.initial ?? true);
  return instance;
}

const isAsyncGenerator = (fn) => Object.prototype.toString.call(fn) === "[object AsyncGeneratorFunction]";

/** The storage classes' common prototype, where domain methods go. */
let host = null;

/**
 * Give the storage classes' common prototype the domain methods; a storage's domain call is
 * refused with the registration that works.
 */
function installDomainMethods(prototype) {
  host = prototype;
  addDomainMethods(DOMAIN_METHODS);
}

/** Forwarding methods for `names` (`*` marks an async generator), each answered by the object's framework instance. */
function addDomainMethods(names) {
  const prototype = host;
  const refuse = (self, method) =>
    new PersistError(
      "PERSIST_INVALID_CONFIG",
      `${self.constructor.name}.${method}: this object was made as a storage (entityName, baseDir), not by a ` +
        "backtest-kit adapter, so it has no domain methods; if backtest-kit is bundled into your program, register " +
        `with usePersist(kit, ${self.constructor.name}) instead`,
    );
  for (const entry of names) {
    const generator = entry.endsWith("*");
    const method = generator ? entry.slice(0, -1) : entry;
    if (Object.prototype.hasOwnProperty.call(prototype, method)) continue;
    let forward;
    if (method === "dispose") {
      // Synchronous in the framework; nothing to release before the first domain call.
      forward = function dispose() {
        stateOf(this)?.delegate?.then((instance) => instance.dispose?.(), () => undefined);
      };
    } else if (generator) {
      forward = async function* (...args) {
        const state = stateOf(this);
        if (!state) throw refuse(this, method);
        const instance = await delegateFor(this, state, method);
        yield* instance[method](...args);
      };
    } else {
      forward = async function (...args) {
        const state = stateOf(this);
        if (!state) throw refuse(this, method);
        const instance = await delegateFor(this, state, method);
        return instance[method](...args);
      };
    }
    Object.defineProperty(forward, "name", { value: method });
    Object.defineProperty(prototype, method, { value: forward, writable: true, configurable: true });
  }
}

/** The domain methods of a bundle's instance classes, `*` marking async generators (for later versions). */
function methodsOf(bundleModule) {
  return domainsOf(bundleModule).flatMap(({ parts }) =>
    parts
      ? Object.getOwnPropertyNames(parts.DefaultInstance.prototype)
          .filter((name) => !["constructor", "waitForInit"].includes(name))
          .map((name) => (isAsyncGenerator(parts.DefaultInstance.prototype[name]) ? `${name}*` : name))
      : [],
  );
}

module.exports = { installDomainMethods, domainState, waitForInit };
