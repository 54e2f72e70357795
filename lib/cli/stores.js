"use strict";
// The command's STORE arguments: a store of any backend by URL (the library's own classes and
// listing, not the public API), its entities by backtest-kit domain, its documents in chunks.
const path = require("node:path");

const tools = require("../backends.js");
const { BATCH } = require("../persist.js");

/** A mistake in the command line: exit 2 with the message and a pointer to --help. */
class UsageError extends Error {}

/**
 * { kind, options, root, baseDirOf(namespace), label } for a STORE argument. `encryption`:
 * undefined (the environment decides), false, or { keyFile }.
 */
function openStore(text, encryption) {
  if (typeof text !== "string" || !text) throw new UsageError("a STORE is required");
  const withEncryption = (options) => (encryption === undefined ? options : { ...options, encryption });
  const label = text.replace(/\/\/[^@/]*@/, "//***@");
  // The core's parser, as for the factories and the environment variables (`?prefix=`,
  // `?table=`, …); `file:./dump` names a dump directory, a bare scheme (redis:, sqlite:, s3:) the
  // backend with its defaults and environment.
  let parsed;
  try {
    parsed = tools.toolStore(text);
  } catch (err) {
    throw new UsageError(`STORE ${label}: ${err.message.replace(/^invalid configuration: /, "")}`);
  }
  const { kind, options, root, base } = parsed;
  const store = { kind, options: withEncryption(options), root, baseDirOf: (ns) => (base ? path.join(base, ns) : ns) };
  store.Class = tools.defineBackend(store.kind, `${store.kind} store`, store.options);
  store.label = label;
  return store;
}

/** Every entity of the store as { namespace, entity, domain }, sorted, filtered by domains. */
async function entitiesOf(store, domains) {
  const [namespaces, entities] = await tools.entities(store.kind, store.options, store.root);
  return namespaces
    .map((namespace, i) => ({ namespace, entity: entities[i], domain: tools.domainOf(namespace) }))
    .filter((e) => !domains || domains.includes(e.domain));
}

function instance(store, { namespace, entity }) {
  return new store.Class(entity, store.baseDirOf(namespace));
}

const CHUNK = 500;

/**
 * Yields [ids, docs] of an entity, CHUNK documents at a time, docs as a batch read gives them
 * (text, null, or a failure record). With `perId`, a chunk that fails as a whole is read again one
 * document at a time, and a document's own failure (PERSIST_DECRYPT, PERSIST_CORRUPT) stands in
 * its place; the store failing (down, refused) still throws.
 */
async function* chunksOf(persist, perId = false) {
  const ids = [];
  for await (const id of persist.keys()) ids.push(id);
  for (let i = 0; i < ids.length; i += CHUNK) {
    const slice = ids.slice(i, i + CHUNK);
    try {
      yield [slice, await persist[BATCH].read(slice, false)];
    } catch (err) {
      if (!perId) throw err;
      const docs = [];
      for (const id of slice) {
        const own = (e) => {
          if (e?.code === "PERSIST_DECRYPT" || e?.code === "PERSIST_CORRUPT") return e;
          throw e;
        };
        docs.push(await persist[BATCH].read([id], false).then((r) => r[0], own));
      }
      yield [slice, docs];
    }
  }
}

/** The texts of a chunk's docs; null where there is none. */
const textsOf = (docs) => docs.map((doc) => (typeof doc === "string" ? doc : null));

module.exports = { UsageError, openStore, entitiesOf, instance, chunksOf, textsOf, CHUNK };
