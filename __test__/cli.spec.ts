// The `backtest-kit-rs` command on stores written by real backtest-kit: migrate through every
// backend (each one a source and a target) with a bot restored from each target, an interrupted
// migration finished by a second run, --dry-run, inspect and verify on planted invalid documents,
// and export | import, also of a store larger than the process's heap.
import { execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

import { createSqlitePersist } from "../index.js";
import { makeTempDir, removeDir, runBacktest, runLiveDemo, sqliteAll, sqliteExec } from "./helpers";
import { s3Env } from "./stores";

const BIN = path.join(__dirname, "..", "bin", "backtest-kit-rs.cjs");
const DEMO = path.join(__dirname, "..", "examples", "live-demo.js");
const run = promisify(execFile);

let root: string;
let env: NodeJS.ProcessEnv;
beforeAll(async () => {
  root = await makeTempDir("cli");
  env = {
    ...process.env,
    BACKTEST_KIT_RS_REDIS_URL: `${inject("redisUrl")}/3`,
    BACKTEST_KIT_RS_POSTGRES_URL: inject("postgresUrl"),
    BACKTEST_KIT_RS_MONGO_URL: inject("mongoUrl"),
    ...s3Env(),
  };
  delete env.BACKTEST_KIT_RS_KEY;
});
afterAll(async () => {
  await removeDir(root);
});

/** Run the command; resolves to { code, stdout, stderr } whatever the exit code. */
async function cli(args: string[], options: { env?: NodeJS.ProcessEnv; nodeArgs?: string[]; maxBuffer?: number } = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [...(options.nodeArgs ?? []), BIN, ...args], {
      env: options.env ?? env,
      maxBuffer: options.maxBuffer ?? 1 << 26,
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err: any) {
    return { code: err.code as number, stdout: err.stdout as string, stderr: err.stderr as string };
  }
}

/** A bot's restore phase (examples/live-demo.js) on `backend` in `dir`: what it restored. */
async function restoreBot(backend: string, dir: string, runId: string) {
  const { stdout } = await run(process.execPath, [DEMO, "--phase", "restore", "--backend", backend, "--dir", dir, "--run-id", runId], { env, timeout: 60_000 }).catch(
    (err) => err,
  );
  const events = String(stdout)
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));
  return { restored: events.find((e) => e.event === "restored"), risk: events.find((e) => e.event === "risk-checked"), events };
}

/** A sorted export of a store, one line per document. */
async function exported(store: string, extra: string[] = []) {
  const { code, stdout, stderr } = await cli(["export", store, ...extra]);
  expect(code, stderr).toBe(0);
  return stdout.split("\n").filter(Boolean).sort();
}

describe("migrate", () => {
  // One store written by real backtest-kit: a live session with an open position (SIGKILLed and
  // restored by the demo), and a backtest's candle cache, both in the embedded default (SQLite).
  let source: string;
  let opened: any;
  let runId: string;
  beforeAll(async () => {
    const dir = path.join(root, "source");
    fs.mkdirSync(dir);
    const summary = await runLiveDemo(dir, "sqlite", "sqlite", env);
    expect(summary.ok, summary.reason).toBe(true);
    opened = summary.open.events.find((e: any) => e.event === "opened").signal;
    runId = summary.runId;
    await runBacktest("sqlite", dir, 1, env);
    source = `sqlite:${path.join(dir, "dump/backtest-kit.sqlite")}`;
  }, 240_000);

  it("through every backend, each a source and a target; a bot restored from each target keeps its position", { timeout: 300_000 }, async () => {
    const s3 = inject("s3");
    const compact = runId.replace(/-/g, "");
    // Each target is where the demo's own configuration for that backend looks (its prefix, table,
    // collection), so the restore phase below is a bot as a user would start it.
    const chain: Array<{ store: string; backend: string; dir: string }> = [
      { store: source, backend: "sqlite", dir: path.join(root, "source") },
      { store: `file:${path.join(root, "file", "dump")}`, backend: "file", dir: path.join(root, "file") },
      { store: `${inject("redisUrl")}/3?prefix=demo-${runId}`, backend: "redis", dir: path.join(root, "redis") },
      { store: `${inject("postgresUrl")}?table=demo_${compact}`, backend: "postgres", dir: path.join(root, "postgres") },
      { store: `${inject("mongoUrl")}&collection=demo_${compact}`, backend: "mongodb", dir: path.join(root, "mongodb") },
      { store: `s3://${s3.bucket}/demo-${runId}?endpoint=${encodeURIComponent(s3.endpoint)}`, backend: "s3", dir: path.join(root, "s3") },
      { store: `sqlite:${path.join(root, "back", "dump/backtest-kit.sqlite")}`, backend: "sqlite", dir: path.join(root, "back") },
    ];
    const original = await exported(source);
    expect(original.length).toBeGreaterThan(500); // the candle cache, besides the live state
    for (let i = 1; i < chain.length; i++) {
      const [from, to] = [chain[i - 1], chain[i]];
      fs.mkdirSync(to.dir, { recursive: true });
      // The bots restored below add what a live session writes (candles, recent state), so each
      // migration copies what its source holds by then.
      const holding = (await exported(from.store)).length;
      const { code, stdout, stderr } = await cli(["migrate", "--from", from.store, "--to", to.store]);
      expect(code, `${from.backend} -> ${to.backend}: ${stderr}`).toBe(0);
      expect(stdout).toMatch(`migrated and verified: ${holding} documents`);
      expect(stderr).toMatch(/migrate: \d+\/\d+ documents, \d+\/s, ETA \d+ s/); // plain progress lines off a terminal
      const bot = await restoreBot(to.backend, to.dir, runId);
      expect(bot.restored?.signal, `${to.backend}: ${JSON.stringify(bot.events)}`).toEqual(opened);
      expect(bot.restored.getSignalCalls).toBe(0);
      expect(bot.risk?.activePositionCount, to.backend).toBe(1);
    }
    // Round trip: every cached candle of the first store reached the last one, text for text
    // (candles are never rewritten; the restored bots may have added some).
    const last = new Set(await exported(chain[chain.length - 1].store, ["--domains", "candle"]));
    const first = await exported(source, ["--domains", "candle"]);
    expect(first.filter((line) => !last.has(line))).toEqual([]);
  });

  it("between every ordered pair of backends, on the live state the bot left", { timeout: 300_000 }, async () => {
    const s3 = inject("s3");
    const tag = randomUUID().replace(/-/g, "").slice(0, 12);
    // A fresh store of each backend, named by `n` so that every migration writes a new one.
    const stores: Record<string, (n: string) => string> = {
      sqlite: (n) => `sqlite:${path.join(root, `pairs-${n}.sqlite`)}`,
      file: (n) => `file:${path.join(root, `pairs-${n}`, "dump")}`,
      redis: (n) => `${inject("redisUrl")}/3?prefix=pairs-${n}`,
      postgres: (n) => `${inject("postgresUrl")}?table=pairs_${n}`,
      mongodb: (n) => `${inject("mongoUrl")}&collection=pairs_${n}`,
      s3: (n) => `s3://${s3.bucket}/pairs-${n}?endpoint=${encodeURIComponent(s3.endpoint)}`,
    };
    const live = ["--domains", "signal,risk,strategy,schedule,partial,breakeven"];
    const expected = await exported(source, live);
    expect(expected.length).toBeGreaterThan(0);
    const names = Object.keys(stores);
    // Each backend first gets the live state from the source, then serves as the source of a
    // migration to every other backend.
    await Promise.all(
      names.map(async (name) => {
        const { code, stderr } = await cli(["migrate", "--from", source, "--to", stores[name](`${tag}_${name}`), ...live]);
        expect(code, `seed ${name}: ${stderr}`).toBe(0);
      }),
    );
    for (const from of names) {
      await Promise.all(
        names
          .filter((to) => to !== from)
          .map(async (to) => {
            const target = stores[to](`${tag}_${from}_${to}`);
            const { code, stdout, stderr } = await cli(["migrate", "--from", stores[from](`${tag}_${from}`), "--to", target]);
            expect(code, `${from} -> ${to}: ${stderr}`).toBe(0);
            expect(stdout).toMatch(`migrated and verified: ${expected.length} documents`);
            expect(await exported(target), `${from} -> ${to}`).toEqual(expected);
          }),
      );
    }
  });

  it("interrupted by SIGKILL, a second run completes and verifies; --dry-run changes nothing", { timeout: 120_000 }, async () => {
    const target = `file:${path.join(root, "interrupted", "dump")}`;
    const dry = await cli(["migrate", "--from", source, "--to", target, "--dry-run"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/dry run: \d+ documents/);
    expect(fs.existsSync(path.join(root, "interrupted"))).toBe(false);

    const child = spawn(process.execPath, [BIN, "migrate", "--from", source, "--to", target], { env, stdio: ["ignore", "pipe", "pipe"] });
    // Killed once the first chunk is written (its progress line), well before the last.
    await new Promise<void>((resolve) => child.stderr.on("data", (chunk) => /migrate: [1-9]/.test(String(chunk)) && resolve()));
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    const partial = (await exported(target)).length;
    const total = (await exported(source)).length;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(total);

    const again = await cli(["migrate", "--from", source, "--to", target]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(`migrated and verified: ${total} documents`);
    expect(await exported(target)).toEqual(await exported(source));
  });
});

describe("inspect, verify, export, import", () => {
  let db: string;
  beforeAll(async () => {
    db = path.join(root, "planted", "state.sqlite");
    fs.mkdirSync(path.dirname(db), { recursive: true });
    const Persist = createSqlitePersist({ path: db });
    const signal = new Persist("BTCUSDT_s1_ex1", "./dump/data/signal/");
    await signal.writeValue("BTCUSDT", { id: "sig-1", position: "long", symbol: "BTCUSDT", priceOpen: 100, priceTakeProfit: 110, priceStopLoss: 95, pendingAt: Date.now() - 120_000 });
    const risk = new Persist("r1_ex1", "./dump/data/risk/");
    await risk.writeValue("positions", [["BTCUSDT:s1", { signal: { position: "long" }, strategyName: "s1", exchangeName: "ex1", openTimestamp: Date.now() - 60_000 }]]);
    const candles = new Persist("ex1/BTCUSDT/1m", "./dump/data/candle/");
    for (let i = 0; i < 10; i++) await candles.writeValue(1_767_225_600_000 + i * 60_000, { timestamp: 1_767_225_600_000 + i * 60_000, close: i });
    await Persist.close();
    // Written behind the library's back: a torn document and one that is not JSON at all.
    sqliteExec(db, `INSERT INTO entities (namespace, entity, id, value) VALUES ('dump/data/signal', 'ETHUSDT_s1_ex1', 'ETHUSDT', '{"torn":'), ('dump/data/candle', 'ex1/BTCUSDT/1m', '1', 'garbage')`);
  });

  it("inspect lists domains, entities and what the bot holds; --json parses; nothing changes", async () => {
    const before = sqliteAll(db, "SELECT * FROM entities ORDER BY namespace, entity, id");
    const text = await cli(["inspect", `sqlite:${db}`]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/signal \(2 documents\)/);
    expect(text.stdout).toMatch(/open long BTCUSDT \(.*\): entry 100, TP 110, SL 95, age 2 min/);
    expect(text.stdout).toMatch(/risk position BTCUSDT:s1: long opened 1 min ago/);
    const json = await cli(["inspect", `sqlite:${db}`, "--domain", "candle", "--json"]);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      { domain: "candle", namespace: "dump/data/candle", entity: "ex1/BTCUSDT/1m", documents: 11, bytes: expect.any(Number) },
    ]);
    expect(sqliteAll(db, "SELECT * FROM entities ORDER BY namespace, entity, id")).toEqual(before);
  });

  it("verify reports each invalid document with its location, exits 1, and changes nothing", async () => {
    const before = sqliteAll(db, "SELECT * FROM entities ORDER BY namespace, entity, id");
    const result = await cli(["verify", `sqlite:${db}`, "--json"]);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report.checked).toBe(14);
    expect(report.problems.map((p: any) => [p.namespace, p.entity, p.id, p.code]).sort()).toEqual([
      ["dump/data/candle", "ex1/BTCUSDT/1m", "1", "PERSIST_CORRUPT"],
      ["dump/data/signal", "ETHUSDT_s1_ex1", "ETHUSDT", "PERSIST_CORRUPT"],
    ]);
    expect(sqliteAll(db, "SELECT * FROM entities ORDER BY namespace, entity, id")).toEqual(before);
    expect(sqliteAll(db, "SELECT count(*) AS n FROM quarantine")[0].n).toBe(0);
  });

  it("export | import round-trips every valid document; usage errors exit 2", async () => {
    const dump = await cli(["export", `sqlite:${db}`]);
    expect(dump.code, dump.stderr).toBe(0);
    const lines = dump.stdout.split("\n").filter(Boolean);
    expect(lines).toHaveLength(12); // the two planted documents are not JSON: reported, not exported
    expect(dump.stderr).toMatch("skipped 2 documents that are not JSON");
    for (const line of lines) expect(Object.keys(JSON.parse(line))).toEqual(["domain", "namespace", "entity", "id", "json"]);
    const copy = path.join(root, "imported.sqlite");
    const imported = spawn(process.execPath, [BIN, "import", `sqlite:${copy}`], { env, stdio: ["pipe", "pipe", "pipe"] });
    imported.stdin.end(dump.stdout);
    expect(await new Promise((resolve) => imported.once("exit", resolve))).toBe(0);
    expect(await exported(`sqlite:${copy}`)).toEqual([...lines].sort());
    expect((await cli(["migrate", "--from", `sqlite:${db}`])).code).toBe(2);
    expect((await cli(["inspect", "ftp://x"])).code).toBe(2);
    expect((await cli(["verify", `sqlite:${db}`, "--no-such-flag"])).code).toBe(2);
  });

  it("exports a store larger than the heap it is given (--max-old-space-size=48)", { timeout: 120_000 }, async () => {
    const big = path.join(root, "big.sqlite");
    const Persist = createSqlitePersist({ path: big });
    const BATCH = Symbol.for("backtest-kit-rs.batch");
    const pad = "x".repeat(2000);
    for (let chunk = 0; chunk < 40; chunk++) {
      const store: any = new Persist(`e${chunk % 4}`, "./dump/data/log/");
      const ids = Array.from({ length: 1000 }, (_, i) => `id-${chunk}-${i}`);
      await store[BATCH].write(ids, ids.map((id) => JSON.stringify({ id, pad })), "replace");
    }
    await Persist.close();
    const out = path.join(root, "big.ndjson");
    const child = spawn(process.execPath, ["--max-old-space-size=48", BIN, "export", `sqlite:${big}`], { env, stdio: ["ignore", fs.openSync(out, "w"), "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    expect(await new Promise((resolve) => child.once("exit", resolve)), stderr).toBe(0);
    expect(fs.statSync(out).size).toBeGreaterThan(80 << 20); // more than the 48 MiB heap
    expect(stderr).toMatch("exported 40000 documents");
  });
});

describe("encryption through the command", () => {
  it("rekey rotates to a new key; the old key alone no longer reads, the new one does", async () => {
    const db = path.join(root, `rekey-${randomUUID()}.sqlite`);
    const key32 = (seed: string) => Buffer.alloc(32, seed).toString("base64");
    const [k1, k2] = [key32("1"), key32("2")];
    const Old = createSqlitePersist({ path: db, encryption: { key: k1 } });
    await new Old("e", "./dump/data/signal/").writeValue("BTCUSDT", { marker: "ROTATE-ME" });
    await Old.close();
    // Written before encryption was turned on: rekey encrypts it too.
    const Plain = createSqlitePersist({ path: db, encryption: false });
    await new Plain("e", "./dump/data/signal/").writeValue("ETHUSDT", { marker: "PLAIN-BEFORE" });
    await Plain.close();
    const keys = path.join(root, "keys.txt");
    fs.writeFileSync(keys, `# new key first, then the old ones\n${k2}\n${k1}\n`);
    const result = await cli(["rekey", `sqlite:${db}`, "--key-file", keys]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/re-encrypted 2 documents/);
    const New = createSqlitePersist({ path: db, encryption: { key: k2 } });
    expect(await new New("e", "./dump/data/signal/").readValue("BTCUSDT")).toEqual({ marker: "ROTATE-ME" });
    expect(await new New("e", "./dump/data/signal/").readValue("ETHUSDT")).toEqual({ marker: "PLAIN-BEFORE" });
    expect(JSON.stringify(sqliteAll(db, "SELECT CAST(value AS TEXT) AS v FROM entities"))).not.toMatch(/ROTATE-ME|PLAIN-BEFORE/);
    await New.close();
    const OldOnly = createSqlitePersist({ path: db, encryption: { key: k1 } });
    await expect(new OldOnly("e", "./dump/data/signal/").readValue("BTCUSDT")).rejects.toMatchObject({ code: "PERSIST_DECRYPT" });
    await OldOnly.close();
    // verify without the key reports the document as undecryptable.
    const verify = await cli(["verify", `sqlite:${db}`, "--json"]);
    expect(verify.code).toBe(1);
    expect(JSON.parse(verify.stdout).problems[0].code).toBe("PERSIST_DECRYPT");
  });
});
