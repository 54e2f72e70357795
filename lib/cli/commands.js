"use strict";
// The commands: inspect, verify, migrate, export, import, rekey. Each takes opened stores and
// the flags, writes its report to stdout, and returns the exit code.
const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");

const { BATCH } = require("../persist.js");
const { progress } = require("./progress.js");
const { UsageError, entitiesOf, instance, chunksOf, textsOf, CHUNK } = require("./stores.js");

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

module.exports = { inspect, verify, migrate, exportStore, importStore, rekey };
