"use strict";
// The package's error type, its codes and backtest-kit's wording, and the logger init reports go to.

const util = require("node:util");

class PersistError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = "PersistError";
    this.code = code;
  }
}

let current = { warn: (message) => console.warn(message) };

/** Route init clean-up reports (removed stale tmp files and invalid documents) elsewhere. */
function setLogger(next) {
  if (!next || typeof next.warn !== "function") {
    throw new TypeError("setLogger expects an object with a warn(message) method");
  }
  current = next;
}

/** Where init clean-up reports go now. */
const logger = () => current;

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

/** An argument as an error message shows it: its type, and short primitives themselves. */
function describeArgument(value) {
  if (value === null) return "null";
  if (typeof value === "number" || typeof value === "boolean") return `${typeof value} ${String(value)}`;
  return typeof value;
}

module.exports = { PersistError, setLogger, logger, fromFailure, fromNative, failure, describeArgument };
