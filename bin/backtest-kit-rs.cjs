#!/usr/bin/env node
"use strict";
// backtest-kit-rs: inspect, verify, migrate, export, import and re-key the state a backtest-kit bot
// keeps in any backend. Arguments with Node's util.parseArgs; progress with cli-progress.
const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");
const { parseArgs } = require("node:util");

// The command makes classes of any backend by name and lists stores: the library's own internals.
const tools = require("../lib/backends.js");
const { BATCH } = require("../lib/persist.js");

const HELP = `backtest-kit-rs — operate the state a backtest-kit bot keeps in backtest-kit-rs storage

Usage:
  backtest-kit-rs inspect STORE [--domain D] [--entity E] [--json]
  backtest-kit-rs verify  STORE [--json]
  backtest-kit-rs migrate --from STORE --to STORE [--domains d1,d2] [--dry-run]
  backtest-kit-rs export  STORE [--domains d1,d2] > backup.ndjson
  backtest-kit-rs import  STORE < backup.ndjson
  backtest-kit-rs rekey   STORE --key-file KEYS

STORE:
  file:./dump                        backtest-kit's own layout (the bot's ./dump directory)
  sqlite:./dump/backtest-kit.sqlite  RustSqlitePersist's database
  redis://… rediss://…               RustRedisPersist (prefix: ?prefix=… , default backtest-kit)
  postgres://… postgresql://…        RustPostgresPersist (?table=…&schema=… besides libpq's)
  mongodb://… mongodb+srv://…        RustMongoPersist (?collection=… besides the driver's)
  s3://bucket/prefix?…               RustS3Persist (AWS_* credentials)
  redis: postgres: mongodb: s3: sqlite:   the backend with the classes' environment defaults

Encryption: BACKTEST_KIT_RS_KEY applies as it does to the classes; per store, --key-file F
(--from-key-file, --to-key-file for migrate) or --plaintext (--from-plaintext, --to-plaintext).
For rekey, the key file's first key encrypts and every key in it decrypts.

Exit codes: 0 done; 1 verify found invalid or undecryptable documents, or a migration did not
verify; 2 usage; 3 a store failed (its error code is printed).`;

class UsageError extends Error {}

// ---------------------------------------------------------------------------------------------
// Stores

/**
 * { kind, options, root, baseDirOf(namespace), label } for a STORE argument. `encryption`:
 * undefined (the environment decides), false, or { keyFile }.
 */
function openStore(text, encryption) {
  if (typeof text !== "string" || !text) throw new UsageError("a STORE is required");
  const withEncryption = (options) => (encryption === undefined ? options : { ...options, encryption });
  const label = text.replace(/\/\/[^@/]*@/, "//***@");
  const scheme = text.slice(0, text.indexOf(":") + 1).toLowerCase();
  const rest = text.slice(scheme.length);
  let store;
  if (scheme === "file:") {
    // The command's own: which backtest-kit dump to walk (a bot's file store has no location
    // beyond the baseDirs the framework gives it).
    if (!rest) throw new UsageError("file: needs a directory, e.g. file:./dump");
    const root = path.resolve(rest);
    store = { kind: "file", options: withEncryption({}), root, baseDirOf: (ns) => path.join(path.dirname(root), ns) };
  } else {
    // The same parser as the factories and the environment variables (`?prefix=`, `?table=`, …);
    // a bare scheme (redis:, sqlite:, s3:) is that backend with its defaults and environment.
    const bare = !rest.replace(/^\/\//, "");
    let parsed;
    try {
      parsed = tools.backendForUrl(text);
    } catch (err) {
      throw new UsageError(`STORE ${label}: ${err.message.replace(/^invalid configuration: /, "")}`);
    }
    store = { kind: parsed.kind, options: withEncryption(bare ? {} : parsed.options) };
  }
  store.root ??= "";
  store.baseDirOf ??= (ns) => ns;
  store.Class = tools.defineBackend(store.kind, `${store.kind} store`, store.options);
  store.label = label;
  return store;
}

/** Every entity of the store as { namespace, entity, domain }, sorted, filtered by domains. */
async function entitiesOf(store, domains) {
  const [namespaces, entities] = await tools.entities(store.kind, store.options, store.root);
  return namespaces
    .map((namespace, i) => ({ namespace, entity: entities[i], domain: domainOf(namespace) }))
    .filter((e) => !domains || domains.includes(e.domain));
}

/** The backtest-kit domain a namespace belongs to (`dump/data/signal` → signal). */
function domainOf(namespace) {
  const parts = namespace.split("/");
  const at = parts.lastIndexOf("data");
  if (at >= 0 && parts[at + 1]) return parts[at + 1];
  for (const domain of ["memory", "state", "session"]) if (parts.includes(domain)) return domain;
  return parts[parts.length - 1] || "(root)";
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

// ---------------------------------------------------------------------------------------------
// Progress: a bar with rate and ETA on a terminal, plain lines otherwise.

function progress(label, total) {
  const started = Date.now();
  if (process.stderr.isTTY) {
    const cliProgress = require("cli-progress");
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} docs | {rate}/s | ETA {eta_formatted}`, stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { rate: 0 });
    return {
      update: (done) => bar.update(done, { rate: Math.round(done / Math.max(0.001, (Date.now() - started) / 1000)) }),
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  const line = (done) => {
    const seconds = (Date.now() - started) / 1000;
    const rate = done / Math.max(0.001, seconds);
    const eta = rate > 0 ? Math.round((total - done) / rate) : 0;
    process.stderr.write(`${label}: ${done}/${total} documents, ${Math.round(rate)}/s, ETA ${eta} s\n`);
  };
  return {
    update: (done) => {
      if (Date.now() - last >= 1000 || done === total) {
        last = Date.now();
        line(done);
      }
    },
    stop: () => {},
  };
}

// ---------------------------------------------------------------------------------------------
// Commands

async function inspect(store, flags) {
  const domains = flags.domain ? [flags.domain] : null;
  const list = (await entitiesOf(store, domains)).filter((e) => !flags.entity || e.entity === flags.entity);
  const report = [];
  for (const ref of list) {
    const persist = instance(store, ref);
    let count = 0;
    let bytes = 0;
    const documents = [];
    for await (const [ids, docs] of chunksOf(persist)) {
      const texts = textsOf(docs);
      count += ids.length;
      texts.forEach((text, i) => {
        bytes += text ? Buffer.byteLength(text) : 0;
        if (LIVE_DOMAINS.has(ref.domain) && text) documents.push([ids[i], safeParse(text)]);
      });
    }
    const entry = { domain: ref.domain, namespace: ref.namespace, entity: ref.entity, documents: count, bytes };
    if (store.kind === "file") {
      const dir = path.join(store.baseDirOf(ref.namespace), ref.entity);
      entry.modified = fs.existsSync(dir) ? fs.statSync(dir).mtime.toISOString() : null;
    }
    if (LIVE_DOMAINS.has(ref.domain)) entry.state = liveState(ref, documents);
    report.push(entry);
  }
  if (flags.json) return void process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (!report.length) return void process.stdout.write(`${store.label}: no documents\n`);
  for (const domain of [...new Set(report.map((r) => r.domain))]) {
    const rows = report.filter((r) => r.domain === domain);
    process.stdout.write(`\n${domain} (${rows.reduce((n, r) => n + r.documents, 0)} documents)\n`);
    for (const r of rows) {
      const modified = r.modified ? `  modified ${r.modified}` : "";
      process.stdout.write(`  ${r.entity || "(no entity)"}  ${r.documents} docs, ${r.bytes} bytes${modified}\n`);
      for (const line of r.state ?? []) process.stdout.write(`    ${line}\n`);
    }
  }
}

const LIVE_DOMAINS = new Set(["signal", "schedule", "risk", "partial"]);

function safeParse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** What a bot holds, in readable lines: open and scheduled signals, risk positions, partial levels. */
function liveState(ref, documents) {
  const age = (ms) => (Number.isFinite(ms) ? `${Math.round((Date.now() - ms) / 60000)} min` : "?");
  const lines = [];
  for (const [id, value] of documents) {
    if (value === undefined) {
      lines.push(`${id}: not JSON`);
    } else if (ref.domain === "signal" || ref.domain === "schedule") {
      if (!value) continue;
      const [symbol, strategy] = [value.symbol ?? id, value.strategyName ?? ref.entity];
      const when = value.pendingAt ?? value.scheduledAt;
      lines.push(
        `${ref.domain === "signal" ? "open" : "scheduled"} ${value.position ?? "?"} ${symbol} (${strategy}): entry ${value.priceOpen}, TP ${value.priceTakeProfit}, SL ${value.priceStopLoss}, age ${age(when)}`,
      );
    } else if (ref.domain === "risk") {
      for (const [key, position] of Array.isArray(value) ? value : []) {
        lines.push(`risk position ${key}: ${position?.signal?.position ?? "?"} opened ${age(position?.openTimestamp)} ago`);
      }
    } else if (ref.domain === "partial") {
      for (const [signalId, levels] of Object.entries(value ?? {})) {
        lines.push(`partial ${signalId}: profit ${JSON.stringify(levels?.profitLevels ?? [])}, loss ${JSON.stringify(levels?.lossLevels ?? [])}`);
      }
    }
  }
  return lines;
}

async function verify(store, flags) {
  const problems = [];
  let checked = 0;
  for (const ref of await entitiesOf(store, null)) {
    // A chunk failing as a whole (one undecryptable document; without a key, any encrypted one) is
    // read one by one to name the documents.
    for await (const [slice, read] of chunksOf(instance(store, ref), true)) {
      read.forEach((doc, j) => {
        checked++;
        const where = { domain: ref.domain, namespace: ref.namespace, entity: ref.entity, id: slice[j] };
        // A failure: an Error from a one-by-one read, or a batch read's failure record.
        if (doc && typeof doc === "object") problems.push({ ...where, code: doc.code, problem: doc.message });
        else if (typeof doc === "string" && safeParse(doc) === undefined) problems.push({ ...where, code: "PERSIST_CORRUPT", problem: "not JSON" });
      });
    }
  }
  if (flags.json) process.stdout.write(`${JSON.stringify({ checked, problems }, null, 2)}\n`);
  else {
    for (const p of problems) process.stdout.write(`${p.code} ${p.namespace} ${p.entity || "(no entity)"} ${p.id}: ${p.problem}\n`);
    process.stdout.write(`${store.label}: ${checked} documents checked, ${problems.length} invalid or undecryptable\n`);
  }
  return problems.length ? 1 : 0;
}

async function migrate(from, to, flags) {
  const domains = flags.domains ? flags.domains.split(",") : null;
  const list = await entitiesOf(from, domains);
  let total = 0;
  const keysOf = new Map();
  for (const ref of list) {
    const ids = [];
    for await (const id of instance(from, ref).keys()) ids.push(id);
    keysOf.set(ref, ids);
    total += ids.length;
  }
  if (flags["dry-run"]) {
    const perDomain = {};
    for (const ref of list) perDomain[ref.domain] = (perDomain[ref.domain] ?? 0) + keysOf.get(ref).length;
    process.stdout.write(`dry run: ${total} documents in ${list.length} entities would be copied from ${from.label} to ${to.label}\n`);
    for (const [domain, n] of Object.entries(perDomain)) process.stdout.write(`  ${domain}: ${n}\n`);
    return 0;
  }
  const bar = progress("migrate", total);
  let done = 0;
  try {
    for (const ref of list) {
      const source = instance(from, ref);
      const target = instance(to, ref);
      await target.waitForInit(false);
      const ids = keysOf.get(ref);
      for (let i = 0; i < ids.length; i += CHUNK) {
        const slice = ids.slice(i, i + CHUNK);
        const read = await source[BATCH].read(slice, false);
        const present = slice.map((id, j) => [id, read[j]]).filter(([, text]) => typeof text === "string");
        // "changed": a document already holding the text is not written again, so a second run
        // after an interruption only writes what is missing.
        if (present.length) await target[BATCH].write(present.map(([id]) => id), present.map(([, t]) => t), "changed");
        done += slice.length;
        bar.update(done);
      }
    }
  } finally {
    bar.stop();
  }
  // Verify: the same ids and the same JSON texts on both sides.
  const mismatches = [];
  for (const ref of list) {
    const ids = keysOf.get(ref);
    const [source, target] = [instance(from, ref), instance(to, ref)];
    const targetIds = new Set();
    for await (const id of target.keys()) targetIds.add(id);
    for (let i = 0; i < ids.length; i += CHUNK) {
      const slice = ids.slice(i, i + CHUNK);
      const [a, b] = await Promise.all([source[BATCH].read(slice, false), target[BATCH].read(slice, false)]);
      slice.forEach((id, j) => {
        if (a[j] !== b[j]) mismatches.push(`${ref.namespace} ${ref.entity} ${id}`);
      });
    }
    for (const id of ids) targetIds.delete(id);
    // Documents only the target has are left alone (never deleted), and reported.
    for (const id of targetIds) process.stderr.write(`note: ${ref.namespace} ${ref.entity} ${id} exists only in the target\n`);
  }
  if (mismatches.length) {
    for (const m of mismatches.slice(0, 20)) process.stderr.write(`differs: ${m}\n`);
    process.stdout.write(`migration NOT verified: ${mismatches.length} of ${total} documents differ\n`);
    return 1;
  }
  process.stdout.write(`migrated and verified: ${total} documents in ${list.length} entities, ${from.label} -> ${to.label}\n`);
  return 0;
}

async function exportStore(store, flags) {
  const domains = flags.domains ? flags.domains.split(",") : null;
  const out = process.stdout;
  const write = (line) => (out.write(line) ? undefined : new Promise((resolve) => out.once("drain", resolve)));
  let count = 0;
  let skipped = 0;
  for (const ref of await entitiesOf(store, domains)) {
    for await (const [ids, docs] of chunksOf(instance(store, ref))) {
      const texts = textsOf(docs);
      for (let i = 0; i < ids.length; i++) {
        if (texts[i] === null) continue;
        // A document that is not JSON cannot be imported anywhere: `verify` names it.
        if (safeParse(texts[i]) === undefined) {
          skipped++;
          continue;
        }
        const line = `${JSON.stringify({ domain: ref.domain, namespace: ref.namespace, entity: ref.entity, id: ids[i], json: texts[i] })}\n`;
        await write(line);
        count++;
      }
    }
  }
  process.stderr.write(`exported ${count} documents\n`);
  if (skipped) process.stderr.write(`skipped ${skipped} documents that are not JSON (backtest-kit-rs verify lists them)\n`);
  return 0;
}

async function importStore(store) {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let pending = null;
  let count = 0;
  const flush = async () => {
    if (!pending?.ids.length) return;
    const persist = instance(store, pending.ref);
    await persist.waitForInit(false);
    await persist[BATCH].write(pending.ids, pending.texts, "changed");
    count += pending.ids.length;
    pending = { ref: pending.ref, ids: [], texts: [] };
  };
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (!line.trim()) continue;
    let doc;
    try {
      doc = JSON.parse(line);
      JSON.parse(doc.json);
    } catch {
      throw new UsageError(`line ${lineNo}: not a document line ({ namespace, entity, id, json })`);
    }
    const same = pending && pending.ref.namespace === doc.namespace && pending.ref.entity === doc.entity;
    if (!same) {
      await flush();
      pending = { ref: { namespace: doc.namespace, entity: doc.entity }, ids: [], texts: [] };
    }
    pending.ids.push(String(doc.id));
    pending.texts.push(doc.json);
    if (pending.ids.length >= CHUNK) await flush();
  }
  await flush();
  process.stderr.write(`imported ${count} documents into ${store.label}\n`);
  return 0;
}

async function rekey(store) {
  let total = 0;
  for (const ref of await entitiesOf(store, null)) {
    const persist = instance(store, ref);
    for await (const [ids, docs] of chunksOf(persist)) {
      const texts = textsOf(docs);
      const present = ids.map((id, i) => [id, texts[i]]).filter(([, t]) => t !== null);
      // "replace": every document is sealed again with the first key.
      if (present.length) await persist[BATCH].write(present.map(([id]) => id), present.map(([, t]) => t), "replace");
      total += present.length;
    }
  }
  process.stdout.write(`re-encrypted ${total} documents of ${store.label} with key ${store.Class.options.encryption?.keyIds?.[0]}\n`);
  return 0;
}

// ---------------------------------------------------------------------------------------------

function encryptionOf(flags, prefix) {
  if (flags[`${prefix}plaintext`]) return false;
  const file = flags[`${prefix}key-file`];
  return file ? { keyFile: path.resolve(file) } : undefined;
}

async function main(argv) {
  const { values: flags, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: "boolean", short: "h" },
      json: { type: "boolean" },
      domain: { type: "string" },
      domains: { type: "string" },
      entity: { type: "string" },
      from: { type: "string" },
      to: { type: "string" },
      "dry-run": { type: "boolean" },
      "key-file": { type: "string" },
      "from-key-file": { type: "string" },
      "to-key-file": { type: "string" },
      plaintext: { type: "boolean" },
      "from-plaintext": { type: "boolean" },
      "to-plaintext": { type: "boolean" },
    },
  });
  const [command, target, ...extra] = positionals;
  if (flags.help || !command) {
    process.stdout.write(`${HELP}\n`);
    return command || flags.help ? 0 : 2;
  }
  if (extra.length) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  const store = () => openStore(target, encryptionOf(flags, ""));
  switch (command) {
    case "inspect":
      return (await inspect(store(), flags)) ?? 0;
    case "verify":
      return verify(store(), flags);
    case "migrate":
      if (target) throw new UsageError("migrate takes --from STORE --to STORE");
      return migrate(openStore(flags.from, encryptionOf(flags, "from-")), openStore(flags.to, encryptionOf(flags, "to-")), flags);
    case "export":
      return exportStore(store(), flags);
    case "import":
      return importStore(store());
    case "rekey": {
      if (!flags["key-file"]) throw new UsageError("rekey needs --key-file with the new key first, then the old ones");
      const encryption = { keyFile: path.resolve(flags["key-file"]), acceptPlaintext: true };
      return rekey(openStore(target, encryption));
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    if (err instanceof UsageError || err?.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" || err?.code?.startsWith?.("ERR_PARSE_ARGS")) {
      process.stderr.write(`backtest-kit-rs: ${err.message}\nRun backtest-kit-rs --help for usage.\n`);
      process.exitCode = 2;
    } else if (err?.code === "PERSIST_INVALID_CONFIG") {
      // A STORE, a flag or an environment variable to fix: a usage error, in one line.
      process.stderr.write(`backtest-kit-rs: ${err.message.replace(/^invalid configuration: /, "")}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`backtest-kit-rs: ${err?.code ? `${err.code}: ` : ""}${err?.message ?? err}\n`);
      process.exitCode = 3;
    }
  },
);
