"use strict";
// Values and ids as backtest-kit's PersistBase takes them, to and from the JSON texts and string
// ids the native side stores.

const { PersistError, fromFailure, failure } = require("./errors.js");

/** `PersistBase.keys()` order: `a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" })`. */
const keyOrder = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" }).compare;

const NOT_WELL_FORMED = "it is not well-formed UTF-16 (it holds a lone surrogate, which would alias U+FFFD)";

/** `10` and `"10"` name one entity, as in PersistBase; anything else is not an id. */
function toKey(entityName, entityId, op) {
  if (typeof entityId === "string") {
    if (entityId.isWellFormed()) return entityId;
    throw new PersistError("PERSIST_INVALID_ID", `${failure[op](entityName, JSON.stringify(entityId))}: invalid entity id: ${NOT_WELL_FORMED}`);
  }
  if (typeof entityId === "number") {
    // PersistBase would store NaN as "NaN.json" and 1.5 as "1.5.json": never an id the framework makes.
    if (Number.isSafeInteger(entityId)) return String(entityId);
    throw new PersistError(
      "PERSIST_INVALID_ID",
      `${failure[op](entityName, String(entityId))}: invalid entity id: a numeric id must be a whole number, got ${String(entityId)}`,
    );
  }
  throw new PersistError(
    "PERSIST_INVALID_ID",
    `${failure[op](entityName, String(entityId))}: invalid entity id: expected a string or a number, got ${typeof entityId}`,
  );
}

/** How every encrypted document's text begins (src/layers/sealed.rs ENVELOPE_HEAD). */
const ENVELOPE_HEAD = '{"$bkrs":';

function encode(entityName, key, value) {
  let json;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new PersistError("PERSIST_INVALID_VALUE", `${failure.write(entityName, key)}: ${err.message}`, { cause: err });
  }
  if (typeof json !== "string") {
    throw new PersistError(
      "PERSIST_INVALID_VALUE",
      `${failure.write(entityName, key)}: the value (${typeof value}) has no JSON representation`,
    );
  }
  // A document whose text starts so is taken for an encryption envelope when read: accepting it
  // would resolve a write that no read could ever return.
  if (json.startsWith(ENVELOPE_HEAD)) {
    throw new PersistError(
      "PERSIST_INVALID_VALUE",
      `${failure.write(entityName, key)}: an object whose first key is "$bkrs" cannot be stored: that key marks an encrypted document`,
    );
  }
  return json;
}

/** A document as read (`string | null | failure record`) as the value `readValue` returns. */
function parseDoc(entityName, key, doc) {
  if (doc === null || doc === undefined) {
    throw new PersistError("PERSIST_NOT_FOUND", `Entity ${entityName}:${key} not found`);
  }
  if (typeof doc !== "string") throw fromFailure(doc);
  try {
    return JSON.parse(doc);
  } catch (err) {
    throw new PersistError("PERSIST_CORRUPT", `${failure.read(entityName, key)}: ${err.message}`, { cause: err });
  }
}

module.exports = { keyOrder, NOT_WELL_FORMED, toKey, ENVELOPE_HEAD, encode, parseDoc };
