"use strict";
// The generated napi loader (binding.js), loaded on first use, and the one path every native
// request settles through: the completion queue, with backpressure on write payloads in flight.

const { PersistError, fromFailure, fromNative } = require("./errors.js");

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
    return require("../binding.js");
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

function native(call) {
  try {
    return call();
  } catch (err) {
    throw fromNative(err);
  }
}

module.exports = { binding, completionQueue, request, nothingHeld, native, setMaxBytesInFlight, inFlight };
