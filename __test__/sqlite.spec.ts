// RustSqlitePersist behaviour beyond the shared suite: crash safety, several processes on one
// database, self-healing, refusal of foreign files, group commit, configuration.
import fs from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { createSqlitePersist, RustSqlitePersist, setLogger } from "../index.js";
import { collect, makeTempDir, removeDir, sleep, sqliteAll, sqliteExec, sqliteHoldLock, startWriter } from "./helpers";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { isPayload, payload } = require("./fixtures/backends.cjs");

const BATCH = Symbol.for("backtest-kit-rs.batch");

let root: string;
let dbPath: string;
let warnings: string[];
const messages = () => warnings;
let Persist: ReturnType<typeof createSqlitePersist>;

beforeEach(async () => {
  root = await makeTempDir("sqlitespec");
  dbPath = path.join(root, "state.sqlite");
  Persist = createSqlitePersist({ path: dbPath });
  warnings = [];
  setLogger({ warn: (message: string) => warnings.push(message) });
});
afterEach(async () => {
  setLogger({ warn: (message: string) => console.warn(message) });
  await Persist.close();
  await removeDir(root);
});

const pragma = (name: string) => Object.values(sqliteAll(dbPath, `PRAGMA ${name}`)[0])[0];

describe("durability", () => {
  it("uses WAL and synchronous=FULL by default, NORMAL on request", async () => {
    const store = new Persist("e", "./dump/data/signal/");
    await store.waitForInit(true);
    expect(pragma("journal_mode")).toBe("wal");
    expect(Persist.database.synchronous).toBe("FULL");
    expect(createSqlitePersist({ path: dbPath, synchronous: "NORMAL" }).database.synchronous).toBe("NORMAL");
    expect(() => createSqlitePersist({ path: dbPath, synchronous: "OFF" as any }).database).toThrow(/FULL.*NORMAL/);
  });

  it("two processes writing one database lose no acknowledged write and never see SQLITE_BUSY", async () => {
    const env = { BACKTEST_KIT_RS_SQLITE_PATH: dbPath };
    const writers = [
      startWriter(["sqlite", "ns", "two", "a", 0, 400], env),
      startWriter(["sqlite", "ns", "two", "b", 0, 400], env),
      startWriter(["sqlite", "ns", "two", "shared", 0, 200], env),
      startWriter(["sqlite", "ns", "two", "shared", 100000, 200], env),
    ];
    const results = await Promise.all(writers.map((w) => w.exited));
    for (const [i, r] of results.entries()) {
      expect(writers[i].stderr()).not.toMatch(/BUSY|locked/i);
      expect(r.code, writers[i].stderr()).toBe(0);
    }
    const store = new Persist("two", "ns");
    await store.waitForInit(true);
    expect((await store.readValue("a")).seq).toBe(399);
    expect((await store.readValue("b")).seq).toBe(399);
    expect([199, 100199]).toContain((await store.readValue("shared")).seq);
  });

  it("a write blocked by another connection's lock waits for it; reads of other ids do not", async () => {
    const store = new Persist("lock", "ns");
    await store.waitForInit(true);
    await store.writeValue("k", { v: 1 });
    await store.writeValue("other", { v: 1 });
    const lock = await sqliteHoldLock(dbPath, 2000);
    let landed = false;
    const write = store.writeValue("k", { v: 2 }).then(() => (landed = true));
    expect(await store.readValue("other")).toEqual({ v: 1 });
    // Issued after the write, a read of its id waits for it (issue order).
    const readAfter = store.readValue("k");
    await sleep(300);
    expect(landed).toBe(false);
    await lock.released;
    await write;
    expect(await readAfter).toEqual({ v: 2 });
  });
});

/** The longest pause of the event loop while `work` runs (a 5 ms ticker measures it). */
async function longestStall(work: () => Promise<unknown>): Promise<number> {
  let last = Date.now();
  let longest = 0;
  const ticker = setInterval(() => {
    const now = Date.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 5);
  try {
    await work();
  } finally {
    clearInterval(ticker);
  }
  return Math.max(longest, Date.now() - last);
}

describe("the event loop", () => {
  it("never blocks on another process's lock, also before the database is open", async () => {
    const first = new Persist("e", "ns");
    await first.waitForInit(true);
    await first.writeValue("k", 1);
    await Persist.close(); // the next operations must open it again
    const lock = await sqliteHoldLock(dbPath, 1500);
    const store = new Persist("e", "ns");
    let value: unknown;
    const stall = await longestStall(async () => {
      value = await store.readValue("k"); // before waitForInit: the fast path cannot be used yet
      await store.writeValue("k", 2); // waits for the lock, off the JS thread
    });
    await lock.released;
    expect(value).toBe(1);
    expect(await store.readValue("k")).toBe(2);
    expect(stall).toBeLessThan(250);
  });

  it("a cache write (no sync, done in place when it can) never waits on another process's lock", async () => {
    const store = new Persist("candles", "ns");
    await store.waitForInit(true);
    const batch = store[BATCH];
    batch.configure({ durable: false, validateOnInit: false });
    expect(await batch.write(["1"], ["1"], "insert")).toBe(1); // the database is open now
    const lock = await sqliteHoldLock(dbPath, 1500);
    let written: unknown;
    const stall = await longestStall(async () => {
      written = await batch.write(["2", "3"], ["2", "3"], "insert"); // busy: the writer thread waits
    });
    await lock.released;
    expect(written).toBe(2);
    expect(await collect(store.keys())).toEqual(["1", "2", "3"]);
    expect(stall).toBeLessThan(250);
  });
});

describe("issue order", () => {
  it("a cache write never overtakes a durable write issued before it to the same id", async () => {
    // The cache write could commit on the calling thread at once; it must queue behind the
    // durable one still waiting for its group commit, or the older value would win.
    const durable = new Persist("order", "ns");
    const cache = new Persist("order", "ns");
    await durable.waitForInit(true);
    await cache.waitForInit(true);
    cache[BATCH].configure({ durable: false, validateOnInit: false });
    for (let trial = 0; trial < 50; trial++) {
      await Promise.all([durable.writeValue("x", { trial, by: "durable" }), cache[BATCH].write(["x"], [JSON.stringify({ trial, by: "cache" })], "replace")]);
      expect(await durable.readValue("x")).toEqual({ trial, by: "cache" });
    }
  });
});

describe("self-healing and refusal", () => {
  it("reads bytes that are not UTF-8 the way Node reads such files, and heals what is not JSON", async () => {
    const store = new Persist("bytes", "ns");
    await store.waitForInit(true);
    await Persist.close();
    // {"a":"<0xFF>"} is JSON with a broken character inside a string; a lone 0xFF is not JSON.
    sqliteExec(dbPath, `INSERT INTO entities VALUES ('ns', 'bytes', 'odd', CAST(X'7B2261223A22FF227D' AS TEXT)), ('ns', 'bytes', 'junk', X'FF')`);
    const fresh = new Persist("bytes", "ns");
    await fresh.waitForInit(true);
    expect(await collect(fresh.keys())).toEqual(["odd"]);
    expect(await fresh.readValue("odd")).toEqual({ a: "\ufffd" });
    expect(messages().some((w) => w.includes("id=junk"))).toBe(true);
  });

  it("moves rows that are not JSON aside, keeps valid ones, and logs each", async () => {
    const store = new Persist("heal", "./dump/data/risk/");
    await store.waitForInit(true);
    await store.writeValue("good", { ok: true });
    await Persist.close();
    sqliteExec(
      dbPath,
      `INSERT INTO entities (namespace, entity, id, value) VALUES
         ('dump/data/risk', 'heal', 'torn', '{"positions":['),
         ('dump/data/risk', 'heal', 'empty', ''),
         ('dump/data/other', 'heal', 'torn', '{')`, // another namespace: not this entity's business
    );

    const fresh = new Persist("heal", "./dump/data/risk/");
    await fresh.waitForInit(true);
    expect(await collect(fresh.keys())).toEqual(["good"]);
    expect(warnings.filter((w) => w.includes("moved invalid document aside"))).toHaveLength(2);
    expect(sqliteAll(dbPath, "SELECT id, CAST(value AS TEXT) AS value FROM quarantine ORDER BY id")).toEqual([
      { id: "empty", value: "" },
      { id: "torn", value: '{"positions":[' },
    ]);
    expect(warnings.some((w) => w.includes("id=torn") && w.includes(dbPath))).toBe(true);
    expect(sqliteAll(dbPath, "SELECT count(*) AS n FROM entities WHERE namespace = 'dump/data/other'")).toEqual([{ n: 1 }]);
  });

  it("refuses a file that is not a SQLite database, naming it, and leaves it untouched", async () => {
    const garbage = Buffer.from("not a database: somebody's notes\n".repeat(200));
    await fs.writeFile(dbPath, garbage);
    const store = new Persist("e", "ns");
    const err: any = await store.waitForInit(true).catch((e) => e);
    expect(err.code).toBe("PERSIST_CORRUPT");
    expect(err.message).toContain(dbPath);
    expect(await fs.readFile(dbPath)).toEqual(garbage);
    // Not cached: once the file is replaced by a real database, the same instance works.
    await fs.rm(dbPath);
    await store.waitForInit(true);
    await store.writeValue("k", 1);
    expect(await store.readValue("k")).toBe(1);
  });

  it.runIf(process.platform === "linux")("says why a location cannot be written (not just 'unable to open database file')", async () => {
    // sysfs refuses new files even to root: a location no test run can write.
    const Locked = createSqlitePersist({ path: "/sys/bkrs-cannot-write.sqlite" });
    const err: any = await new Locked("e", "ns").waitForInit(true).catch((e) => e);
    expect(err.code).toBe("PERSIST_IO");
    expect(err.message).toMatch(/cannot open database \/sys\/bkrs-cannot-write\.sqlite: (Permission denied|Read-only file system)/);
    expect(err.errno).toBeGreaterThan(0);
    expect(err.path).toBe("/sys/bkrs-cannot-write.sqlite");
    await Locked.close();
  });

  it("refuses a database whose pages are corrupt", async () => {
    const store = new Persist("e", "ns");
    await store.waitForInit(true);
    for (let i = 0; i < 200; i++) await store.writeValue(`k${i}`, { pad: "x".repeat(500) });
    await Persist.close();
    sqliteExec(dbPath, "PRAGMA wal_checkpoint(TRUNCATE)");
    const bytes = await fs.readFile(dbPath);
    bytes.fill(0xa5, 0, 100); // the header
    await fs.writeFile(dbPath, bytes);
    const err: any = await new Persist("e", "ns").waitForInit(true).catch((e) => e);
    expect(err.code).toBe("PERSIST_CORRUPT");
    expect(err.message).toContain(dbPath);
  });
});

describe("group commit", () => {
  it("64 concurrent writers share far fewer transactions than writes", async () => {
    const stores = Array.from({ length: 64 }, (_, i) => new Persist(`w${i}`, "./dump/data/signal/"));
    await Promise.all(stores.map((s) => s.waitForInit(true)));
    const before = Persist.stats();
    await Promise.all(
      stores.map(async (store) => {
        for (let n = 0; n < 20; n++) await store.writeValue("BTCUSDT", payload(n));
      }),
    );
    const after = Persist.stats();
    const writes = after.writes - before.writes;
    const transactions = after.commits - before.commits;
    expect(writes).toBe(64 * 20);
    expect(transactions).toBeLessThan(writes / 4);
    for (const store of stores) expect((await store.readValue("BTCUSDT")).seq).toBe(19);
  });
});

describe("configuration", () => {
  it("defaults to ./dump/backtest-kit.sqlite, overridable by environment and by factory", () => {
    const saved = process.env.BACKTEST_KIT_RS_SQLITE_PATH;
    try {
      delete process.env.BACKTEST_KIT_RS_SQLITE_PATH;
      expect(RustSqlitePersist.database.path).toBe(path.join(process.cwd(), "dump", "backtest-kit.sqlite"));
      process.env.BACKTEST_KIT_RS_SQLITE_PATH = dbPath;
      expect(RustSqlitePersist.database.path).toBe(dbPath);
      expect(createSqlitePersist({ path: "x.sqlite" }).database.path).toBe(path.resolve("x.sqlite"));
    } finally {
      if (saved === undefined) delete process.env.BACKTEST_KIT_RS_SQLITE_PATH;
      else process.env.BACKTEST_KIT_RS_SQLITE_PATH = saved;
    }
  });

  it("two factories with different paths keep separate databases", async () => {
    const Other = createSqlitePersist({ path: path.join(root, "other.sqlite") });
    const a = new Persist("e", "ns");
    const b = new Other("e", "ns");
    await a.waitForInit(true);
    await b.waitForInit(true);
    await a.writeValue("k", "in a");
    expect(await b.hasValue("k")).toBe(false);
    await Other.close();
  });

  it("close() waits for writes issued before it, also those queued behind another write of their id", async () => {
    const store = new Persist("closing", "ns");
    await store.waitForInit(true);
    const writes = [store.writeValue("x", 1), store.writeValue("x", 2), store.writeValue("y", 3)];
    await Persist.close();
    await Promise.all(writes); // none failed as closed
    expect(Persist.stats()).toEqual({ writes: 0, commits: 0 }); // and nothing reopened it
    expect(await store.readValue("x")).toBe(2);
  });

  it("close() releases the database and the class reopens it on next use", async () => {
    const store = new Persist("e", "ns");
    await store.waitForInit(true);
    await store.writeValue("k", 1);
    await Persist.close();
    await Persist.close(); // idempotent
    expect(await store.readValue("k")).toBe(1);
    await store.writeValue("k", 2);
    expect(await new Persist("e", "ns").readValue("k")).toBe(2);
  });
});
