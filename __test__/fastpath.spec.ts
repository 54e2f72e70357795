// usePersist's fast paths (lib/kit/) against the real backtest-kit 19.5.0: each domain method runs
// against a per-call BatchView (a candle window is one native read, a list one scan, the writes of
// a call one native write), and candles read from storage enter an in-process cache. These tests
// check that the framework still sees exactly what its default PersistBase would give it: the same
// values, the same misses and warnings, the same files; and that the shortcuts (unchanged-skip,
// insert-only, no fsync for caches, the candle cache) do what they promise and no more.
import fs from "node:fs";
import path from "node:path";
import * as kit from "backtest-kit";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { RustFilePersist, useDefaultPersist, usePersist } from "../index.js";
import { BACKENDS, type Harness as Backend, type Place } from "./backends";
import { file } from "./backends/file";
import { makeTempDir, removeDir, treeSnapshot } from "./helpers";

// vitest runs index.js inline, but index.js loads lib/ with Node's own require. An ESM import of a
// lib/ file or of index.js would give other copies (a candle cache that is never filled, a logger
// lib/ never calls): take them from Node's require.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { candleCacheSize } = require("../lib/kit/candle-cache.js") as { candleCacheSize(): number };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { setLogger } = require("../index.js") as { setLogger(logger: { warn(message: string): void }): void };

// ---------------------------------------------------------------------------------------------
// Backends (the shared harness list), and a way to see and tamper with what they stored without
// going through our classes, addressed as backtest-kit addresses them: (baseDir, entity, id).

interface Harness {
  name: Backend["name"];
  Backend: any;
  /** The stored text of `{baseDir}/{entity}/{id}`, read by an independent client; null when absent. */
  stored(baseDir: string, entity: string, id: string | number): Promise<string | null>;
  /** Replace the stored text behind the library's back (a torn copy, a bad disk, a manual edit). */
  tamper(baseDir: string, entity: string, id: string | number, text: string): Promise<void>;
  close(): Promise<void>;
}

/** `./dump/data/candle/` → `dump/data/candle`, as every backend names namespaces. */
const namespaceOf = (baseDir: string) => baseDir.replace(/^\.\//, "").replace(/\/+$/, "");

function harnessOf(backend: Backend, place: Place): Harness {
  return {
    name: backend.name,
    Backend: place.create(),
    stored: (baseDir, entity, id) => place.get(namespaceOf(baseDir), entity, String(id)),
    tamper: (baseDir, entity, id, text) => place.set(namespaceOf(baseDir), entity, String(id), text),
    close: () => place.cleanup(),
  };
}

// ---------------------------------------------------------------------------------------------
// Per-test environment: a fresh cwd (backtest-kit writes to ./dump/...), default storage after.

const DEFAULT_CANDLE_CACHE = 100_000;

/**
 * Empty the process-wide candle cache and set its bound. `domains: []` registers nothing; the
 * option alone trims the cache (0 empties it). Keeps one test's cached candles out of the next.
 */
function resetCandleCache(size = DEFAULT_CANDLE_CACHE): void {
  usePersist(kit, RustFilePersist, { domains: [], candleCache: 0 });
  usePersist(kit, RustFilePersist, { domains: [], candleCache: size });
}

interface Env {
  /** The working directory of the test (the place's root: the file backend's documents land there). */
  dir: string;
  /** What the suite made and removes after. */
  temp: string;
  previousCwd: string;
  h: Harness;
}

async function enter(backend: Backend): Promise<Env> {
  const temp = await makeTempDir(`fast-${backend.name}`);
  const place = await backend.open(temp);
  const previousCwd = process.cwd();
  process.chdir(place.root);
  useDefaultPersist(kit); // adapters drop instances made for another cwd
  resetCandleCache();
  return { dir: place.root, temp, previousCwd, h: harnessOf(backend, place) };
}

async function leave(env: Env): Promise<void> {
  useDefaultPersist(kit);
  resetCandleCache();
  setLogger({ warn: (message: string) => console.warn(message) });
  vi.restoreAllMocks();
  await env.h.close();
  process.chdir(env.previousCwd);
  await removeDir(env.temp);
}

/** `{ writes, commits }` added to `Backend.stats()` by `fn` (file counters are process-wide: run alone). */
async function statsDelta(Backend: any, fn: () => Promise<unknown>): Promise<{ writes: number; commits: number }> {
  const before = Backend.stats();
  await fn();
  const after = Backend.stats();
  return { writes: after.writes - before.writes, commits: after.commits - before.commits };
}

// ---------------------------------------------------------------------------------------------
// Data.

const EXCHANGE = "ex1";
const SYMBOL = "BTCUSDT";
const CANDLE_DIR = "./dump/data/candle/";
const STEP: Record<string, number> = { "1m": 60_000, "15m": 900_000 };
/** Well in the past, so every candle from here is closed. */
const T0 = Date.UTC(2026, 0, 5, 0, 0);

const candleEntity = (interval: string, symbol = SYMBOL) => `${EXCHANGE}/${symbol}/${interval}`;

/** A closed candle with values whose JSON text must round-trip exactly (long fractions). */
function candle(timestamp: number, seed = 0) {
  const base = 42000 + (timestamp / 60_000) % 997 + seed;
  return {
    timestamp,
    open: base + 0.1,
    high: base + 0.30000000000000004,
    low: base - 1 / 3,
    close: base + 0.2,
    volume: 12.5 + seed / 7,
  };
}

const candles = (interval: string, count: number, start = T0, seed = 0) =>
  Array.from({ length: count }, (_, i) => candle(start + i * STEP[interval], seed));

const writeCandles = (list: object[], interval = "1m", symbol = SYMBOL) =>
  kit.PersistCandleAdapter.writeCandlesData(list as any, symbol, interval as any, EXCHANGE);

const readCandles = (limit: number, since = T0, interval = "1m", symbol = SYMBOL) =>
  kit.PersistCandleAdapter.readCandlesData(symbol, interval as any, EXCHANGE, limit, since, since + limit * STEP[interval]);

/** Notifications without `cost`/`minuteEstimatedTime`, so the framework's read restores add nothing. */
const notifications = (count: number) =>
  Array.from({ length: count }, (_, i) => ({ id: `n-${i}`, type: "signal.info", createdAt: 1_767_000_000_000 + i, note: `note ${i}` }));

const writeNotifications = (list: object[]) => kit.PersistNotificationAdapter.writeNotificationData(list as any, true);
const readNotifications = async () => byId(await kit.PersistNotificationAdapter.readNotificationData(true));
const byId = (list: any[]) => [...list].sort((a, b) => a.id.localeCompare(b.id));

const NOTIFICATION_DIR = "./dump/data/notification/";

const logEntries = (count: number) =>
  Array.from({ length: count }, (_, i) => ({ id: `log-${i}`, type: "info", priority: i, createdAt: "2026-01-05", timestamp: T0 + i, methodContext: null, executionContext: null, topic: "t", args: [i] }));

// ---------------------------------------------------------------------------------------------

describe.each(BACKENDS.map((backend) => [backend.name, backend] as const))("%s backend through usePersist", (_name, backend) => {
  let env: Env;
  let h: Harness;
  beforeEach(async () => {
    env = await enter(backend);
    h = env.h;
  });
  afterEach(async () => {
    await leave(env);
  });

  describe("candle windows", () => {
    it("a window with a missing candle in the middle is a miss", async () => {
      usePersist(kit, h.Backend, { domains: ["candle"] });
      const all = candles("1m", 10);
      await writeCandles(all.filter((_, i) => i !== 4));
      // The one-request window read ends at the missing id; the framework must still see a miss.
      expect(await readCandles(10)).toBeNull();
      expect(await readCandles(4)).toEqual(all.slice(0, 4));
      expect(await readCandles(5, all[5].timestamp)).toEqual(all.slice(5));
    });

    it("an unreadable candle warns and misses, is moved aside, and the next write stores it again", async () => {
      usePersist(kit, h.Backend, { domains: ["candle"] });
      const all = candles("1m", 5);
      await writeCandles(all);
      const bad = all[2].timestamp;
      await h.tamper(CANDLE_DIR, candleEntity("1m"), bad, "{not json");
      expect(await h.stored(CANDLE_DIR, candleEntity("1m"), bad)).toBe("{not json");
      resetCandleCache(); // read from storage, not the candles this process stored

      const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
      expect(await readCandles(5)).toBeNull();
      // The framework's own warning: it saw a present-but-unreadable candle, not a missing one.
      expect(warn).toHaveBeenCalledWith(expect.stringContaining("PersistCandleInstance.readCandlesData found invalid candle"), expect.anything());
      expect(warn.mock.calls.some(([message]) => String(message).includes(`timestamp=${bad}`))).toBe(true);

      // Healed at read: the id now reads as missing (PersistBase would keep the garbage, and its
      // insert-only writes would then never replace it).
      expect(await h.stored(CANDLE_DIR, candleEntity("1m"), bad)).toBeNull();
      if (h.name === "file") {
        const names = fs.readdirSync(path.join(env.dir, CANDLE_DIR, candleEntity("1m")));
        expect(names.some((n) => n.startsWith(`${bad}.json.corrupt-`))).toBe(true);
      }

      await writeCandles(all);
      expect(await h.stored(CANDLE_DIR, candleEntity("1m"), bad)).toBe(JSON.stringify(all[2]));
      warn.mockClear();
      expect(await readCandles(5)).toEqual(all);
      expect(warn).not.toHaveBeenCalled();
    });

    it("candles that have not closed yet are not written", async () => {
      usePersist(kit, h.Backend, { domains: ["candle"] });
      const minute = Math.floor(Date.now() / 60_000) * 60_000;
      const closed = candle(minute - 60_000); // closed at `minute`, before now
      const current = candle(minute); // closes at the end of this minute
      const next = candle(minute + 60_000);
      await writeCandles([closed, current, next]);
      const currentWasOpen = Date.now() < minute + 60_000; // else the write may rightly keep it
      expect(await h.stored(CANDLE_DIR, candleEntity("1m"), closed.timestamp)).toBe(JSON.stringify(closed));
      if (currentWasOpen) expect(await h.stored(CANDLE_DIR, candleEntity("1m"), current.timestamp)).toBeNull();
      expect(await h.stored(CANDLE_DIR, candleEntity("1m"), next.timestamp)).toBeNull();
    });

    it("an existing candle is never rewritten (insert-only), across calls and within one", async () => {
      usePersist(kit, h.Backend, { domains: ["candle"] });
      const first = candle(T0);
      const other = { ...first, close: first.close + 1, volume: 999 };
      // No read in between: nothing is in the candle cache, so only the native insert-only write
      // can keep `first` (a replace or "changed" write would store `other`).
      await writeCandles([first]);
      await writeCandles([other]);
      expect(await h.stored(CANDLE_DIR, candleEntity("1m"), T0)).toBe(JSON.stringify(first));

      const second = candle(T0 + 60_000);
      await writeCandles([second, { ...second, open: 1 }]);
      expect(await h.stored(CANDLE_DIR, candleEntity("1m"), second.timestamp)).toBe(JSON.stringify(second));

      kit.PersistCandleAdapter.clear();
      expect(await readCandles(2)).toEqual([first, second]);
    });
  });

  describe("candle values and the candle cache", () => {
    it("reads back exactly what was written (1m and 15m, several windows), also from a fresh adapter and from storage", async () => {
      usePersist(kit, h.Backend, { domains: ["candle"] });
      const m1 = candles("1m", 120);
      const m15 = candles("15m", 40, T0, 3);
      await writeCandles(m1, "1m");
      await writeCandles(m15, "15m");

      const windows = async () => ({
        m1All: await readCandles(120, T0, "1m"),
        m1Middle: await readCandles(30, m1[45].timestamp, "1m"),
        m1One: await readCandles(1, m1[119].timestamp, "1m"),
        m1PastEnd: await readCandles(10, m1[115].timestamp, "1m"),
        m15All: await readCandles(40, T0, "15m"),
        m15Middle: await readCandles(7, m15[20].timestamp, "15m"),
      });
      const expected = {
        m1All: m1,
        m1Middle: m1.slice(45, 75),
        m1One: [m1[119]],
        m1PastEnd: null,
        m15All: m15,
        m15Middle: m15.slice(20, 27),
      };
      expect(await windows()).toEqual(expected); // what this process stored, from the cache
      resetCandleCache();
      expect(await windows()).toEqual(expected); // from storage, filling the cache
      expect(candleCacheSize()).toBeGreaterThan(0);
      expect(await windows()).toEqual(expected); // cache hits
      kit.PersistCandleAdapter.clear(); // a second, fresh adapter instance
      expect(await windows()).toEqual(expected);
      resetCandleCache(0); // nothing cached: every candle from storage again
      kit.PersistCandleAdapter.clear();
      expect(await windows()).toEqual(expected);
      expect(candleCacheSize()).toBe(0);
    });

    it("respects its bound", async () => {
      usePersist(kit, h.Backend, { domains: ["candle"], candleCache: 50 });
      const all = candles("1m", 200);
      await writeCandles(all);
      expect(await readCandles(200)).toEqual(all);
      expect(candleCacheSize()).toBeGreaterThan(0); // it is in use...
      expect(candleCacheSize()).toBeLessThanOrEqual(50); // ...and bounded
      expect(await readCandles(200)).toEqual(all);
      expect(candleCacheSize()).toBeLessThanOrEqual(50);
    });

    it("never serves a value that was not written: a miss is not cached, and callers get copies", async () => {
      usePersist(kit, h.Backend, { domains: ["candle"] });
      const all = candles("1m", 6);
      await writeCandles(all.filter((_, i) => i !== 3));
      expect(await readCandles(6)).toBeNull(); // caches 0..2, never the missing 3
      await writeCandles([all[3]]);
      const read = await readCandles(6);
      expect(read).toEqual(all);

      // A caller mutating what it got must not change what the next caller gets.
      read![0].close = -1;
      (read![1] as any).extra = true;
      expect(await readCandles(6)).toEqual(all);
    });

    it("keeps candles this process stored, so a read needs no I/O, but only when all of a write's candles were new", async () => {
      usePersist(kit, h.Backend, { domains: ["candle"] });
      const all = candles("1m", 5);
      await writeCandles(all);
      expect(candleCacheSize()).toBe(5);
      // Served from memory: what storage holds now is not consulted (closed candles never change).
      await h.tamper(CANDLE_DIR, candleEntity("1m"), all[2].timestamp, JSON.stringify(candle(all[2].timestamp, 9)));
      expect(await readCandles(5)).toEqual(all);

      // Another writer stored a different candle first: insert-only keeps it, so nothing of this
      // write is cached and reads return what is stored.
      resetCandleCache();
      const later = candles("1m", 3, T0 + 10 * STEP["1m"]);
      const other = new h.Backend(candleEntity("1m"), CANDLE_DIR);
      await other.waitForInit(false);
      await other.writeValue(String(later[0].timestamp), candle(later[0].timestamp, 7));
      await writeCandles(later);
      expect(candleCacheSize()).toBe(0);
      expect(await readCandles(3, later[0].timestamp)).toEqual([candle(later[0].timestamp, 7), later[1], later[2]]);
    });
  });

  describe("unchanged documents are skipped, changed ones always written", () => {
    it("rewriting 500 notifications with one changed writes one document", async () => {
      usePersist(kit, h.Backend, { domains: ["notification"] });
      const list = notifications(500);
      const first = await statsDelta(h.Backend, () => writeNotifications(list));
      expect(first.writes).toBe(500);

      const next = list.map((n, i) => (i === 250 ? { ...n, note: "changed" } : n));
      const second = await statsDelta(h.Backend, () => writeNotifications(next));
      expect(second).toMatchObject({ writes: 1 });
      expect(second.commits).toBeLessThanOrEqual(2);

      // A fresh instance knows no texts: the native "changed" write compares with what is stored.
      kit.PersistNotificationAdapter.clear();
      const again = next.map((n, i) => (i === 7 ? { ...n, note: "changed too" } : n));
      const third = await statsDelta(h.Backend, () => writeNotifications(again));
      expect(third).toMatchObject({ writes: 1 });
      expect(third.commits).toBeLessThanOrEqual(2);
      expect(await readNotifications()).toEqual(byId(again));
    });

    it("the generic path (a subclass overriding writeValue) writes all 500: the assertion above can fail", async () => {
      // Control: without the batch path every writeValue is a write, so `writes: 1` above is
      // something the fast path earns, not something the counters always say.
      class Plain extends h.Backend {
        async writeValue(id: string, value: unknown) {
          return super.writeValue(id, value);
        }
      }
      usePersist(kit, Plain, { domains: ["notification"] });
      const list = notifications(500);
      await writeNotifications(list);
      const second = await statsDelta(h.Backend, () => writeNotifications(list.map((n, i) => (i === 1 ? { ...n, note: "x" } : n))));
      expect(second.writes).toBe(500);
    });

    it("changing 3 of 500 writes exactly those 3, and they read back changed", async () => {
      usePersist(kit, h.Backend, { domains: ["notification"] });
      const list = notifications(500);
      await writeNotifications(list);
      const changed = new Set([0, 123, 499]);
      const next = list.map((n, i) => (changed.has(i) ? { ...n, note: `changed ${i}`, extra: [i] } : n));
      const delta = await statsDelta(h.Backend, () => writeNotifications(next));
      expect(delta.writes).toBe(3);
      for (const i of changed) {
        expect(await h.stored(NOTIFICATION_DIR, "backtest", `n-${i}`)).toBe(JSON.stringify(next[i]));
      }
      expect(await readNotifications()).toEqual(byId(next));
      kit.PersistNotificationAdapter.clear();
      expect(await readNotifications()).toEqual(byId(next));
    });

    it("a document changed by another writer meanwhile is written again when the framework writes its version", async () => {
      // The unchanged-skip may only skip what storage already holds. Another writer on the same
      // storage (another process sharing the directory, database or server; a repair tool)
      // changes n-1; the framework then writes its list again, and afterwards storage must hold
      // what it wrote, as with backtest-kit's default storage, which rewrites every document.
      const list = notifications(3);
      const scenario = async (register: () => void) => {
        register();
        await writeNotifications(list);
        const other = new h.Backend("backtest", NOTIFICATION_DIR);
        await other.waitForInit(false);
        await other.writeValue("n-1", { ...list[1], note: "from another writer" });
        expect(JSON.parse((await h.stored(NOTIFICATION_DIR, "backtest", "n-1"))!).note).toBe("from another writer");
        await writeNotifications(list);
        return h.stored(NOTIFICATION_DIR, "backtest", "n-1");
      };
      // The reference: the default storage shares the file backend's files.
      if (h.name === "file") expect(await scenario(() => useDefaultPersist(kit))).toBe(JSON.stringify(list[1]));
      expect(await scenario(() => usePersist(kit, h.Backend, { domains: ["notification"] }))).toBe(JSON.stringify(list[1]));
    });
  });

  it("a 17th domain in the 19.x shape is registered and lands in this backend; an unknown shape is reported, not registered", async () => {
    const { fakeKit, adapter, DefaultInstance } = dictionaryKit();
    const warnings: string[] = [];
    setLogger({ warn: (message: string) => warnings.push(message) });

    const registered = usePersist(fakeKit, h.Backend);
    expect(registered).toContain("dictionary");
    expect(registered).not.toContain("odd");
    expect(registered).toHaveLength(17);
    expect(warnings.filter((w) => /domain odd not registered/.test(w))).toHaveLength(1);
    expect(Object.getPrototypeOf(adapter.Ctor.prototype)).toBe(DefaultInstance.prototype);

    const when = new Date(T0);
    expect(await adapter.readDictionaryData("sig-1", "prices")).toBeNull();
    await adapter.writeDictionaryData({ a: 1, list: [1, 2] }, "sig-1", "prices", when);
    expect(await h.stored("./dump/dictionary/sig-1/", "prices", "prices")).toBe(JSON.stringify({ a: 1, list: [1, 2] }));
    await adapter.writeDictionaryData({ a: 2 }, "sig-1", "prices", when);
    expect(await adapter.readDictionaryData("sig-1", "prices")).toEqual({ a: 2 });
    adapter.clear();
    expect(await adapter.readDictionaryData("sig-1", "prices")).toEqual({ a: 2 });
    // Not in backtest-kit's default files (for the file backend those are ours).
    if (h.name !== "file") expect(fs.existsSync(path.join(env.dir, "dump/dictionary"))).toBe(false);
  });

  it("a subclass overriding readValue takes the generic path and reads the same candle windows", async () => {
    usePersist(kit, h.Backend, { domains: ["candle"] });
    const all = candles("1m", 30);
    await writeCandles(all.filter((_, i) => i !== 20));
    const fast = { whole: await readCandles(20), gap: await readCandles(30) };

    const reads: string[] = [];
    class Audited extends h.Backend {
      async readValue(id: string) {
        reads.push(String(id));
        return super.readValue(id);
      }
    }
    usePersist(kit, Audited, { domains: ["candle"] });
    const generic = { whole: await readCandles(20), gap: await readCandles(30) };
    expect(generic).toEqual(fast);
    expect(generic).toEqual({ whole: all.slice(0, 20), gap: null });
    // The override saw every read: the batch path did not bypass it.
    expect(reads).toEqual(all.slice(0, 20).map((c) => String(c.timestamp)).concat(all.slice(0, 20).map((c) => String(c.timestamp))));
  });
});

// ---------------------------------------------------------------------------------------------
// File backend only: its counters and files can be compared with backtest-kit's own.

describe("RustFilePersist only", () => {
  let env: Env;
  beforeEach(async () => {
    env = await enter(file);
  });
  afterEach(async () => {
    await leave(env);
  });

  // Only the file backend: SQLite counts a transaction per write request whatever the
  // durability, and Redis a round trip; neither has a separate "synced" step to observe.
  it("cache domains write without sync, state domains and durable caches with it", async () => {
    usePersist(kit, RustFilePersist, { domains: ["candle", "notification"] });
    const candleWrite = await statsDelta(RustFilePersist, () => writeCandles(candles("1m", 20)));
    expect(candleWrite).toEqual({ writes: 20, commits: 0 });

    const notificationWrite = await statsDelta(RustFilePersist, () => writeNotifications(notifications(5)));
    expect(notificationWrite.writes).toBe(5);
    expect(notificationWrite.commits).toBeGreaterThanOrEqual(1);

    usePersist(kit, RustFilePersist, { domains: ["candle"], durability: { candle: "durable" } });
    const durableWrite = await statsDelta(RustFilePersist, () => writeCandles(candles("1m", 20, T0 + 20 * 60_000)));
    expect(durableWrite.writes).toBe(20);
    expect(durableWrite.commits).toBeGreaterThanOrEqual(1);
  });

  it("writes byte-identical files to backtest-kit's default storage, which reads them back", async () => {
    const m1 = candles("1m", 30);
    const m15 = candles("15m", 10, T0, 1);
    const list = notifications(20);
    const list2 = list.map((n, i) => (i % 5 === 0 ? { ...n, note: "again", when: new Date(T0) } : n));
    const logs = logEntries(5);
    const scenario = async () => {
      await writeCandles(m1, "1m");
      await writeCandles(m15, "15m");
      await writeCandles([{ ...m1[0], close: 1 }], "1m"); // insert-only: ignored by both
      await writeNotifications(list);
      await writeNotifications(list2);
      await kit.PersistLogAdapter.writeLogData(logs as any);
      await kit.PersistLogAdapter.writeLogData([{ ...logs[0], topic: "dup" }, ...logEntries(7).slice(5)] as any);
    };
    const reference = path.join(env.dir, "reference");
    const fast = path.join(env.dir, "fast");
    fs.mkdirSync(reference);
    fs.mkdirSync(fast);

    process.chdir(reference);
    useDefaultPersist(kit);
    await scenario();
    process.chdir(fast);
    usePersist(kit, RustFilePersist);
    await scenario();

    const referenceTree = await treeSnapshot(path.join(reference, "dump"));
    expect(Object.keys(referenceTree).length).toBeGreaterThan(60);
    expect(await treeSnapshot(path.join(fast, "dump"))).toEqual(referenceTree);

    // backtest-kit's own storage reads the fast path's files.
    useDefaultPersist(kit);
    expect(await readCandles(30, T0, "1m")).toEqual(m1);
    expect(await readCandles(10, T0, "15m")).toEqual(m15);
    expect(await readNotifications()).toEqual(byId(JSON.parse(JSON.stringify(list2))));
    expect(byId(await kit.PersistLogAdapter.readLogData())).toEqual(byId(logEntries(7)));
  });

  it("after a cwd change and adapter clear(), candles are written to and read from the new directory", async () => {
    // backtest-kit: "Call clear() when process.cwd() changes between strategy iterations so new
    // instances are created with the updated base path." The same sequence with the default
    // storage and with ours must give the same result. The candle cache must not carry candles
    // of the old directory into the new one: neither as reads, nor as "already stored" on write.
    const run = async (tag: string, register: () => void) => {
      const a = path.join(env.dir, `${tag}-a`);
      const b = path.join(env.dir, `${tag}-b`);
      fs.mkdirSync(a);
      fs.mkdirSync(b);
      process.chdir(a);
      register();
      await writeCandles(candles("1m", 5, T0, 0));
      await readCandles(5); // our classes cache these
      process.chdir(b);
      kit.PersistCandleAdapter.clear();
      await writeCandles(candles("1m", 5, T0, 100)); // other values, same timestamps
      return {
        read: await readCandles(5),
        fileInB: fs.existsSync(path.join(b, CANDLE_DIR, candleEntity("1m"), `${T0}.json`)),
      };
    };
    const reference = await run("default", () => useDefaultPersist(kit));
    expect(reference).toEqual({ read: candles("1m", 5, T0, 100), fileInB: true });
    expect(await run("fast", () => usePersist(kit, RustFilePersist, { domains: ["candle"] }))).toEqual(reference);
  });
});

// ---------------------------------------------------------------------------------------------

/**
 * backtest-kit plus a Dictionary domain in the 19.x per-domain shape (as 20.x adds it), and a
 * `PersistOddAdapter` with no instance class, which usePersist cannot take.
 */
function dictionaryKit() {
  class PersistDictionaryInstance {
    _storage: any;
    constructor(
      readonly signalId: string,
      readonly dictionaryName: string,
    ) {
      this._storage = new (kit.PersistBase as any)(dictionaryName, `./dump/dictionary/${signalId}/`);
    }
    async waitForInit(initial: boolean) {
      await this._storage.waitForInit(initial);
    }
    async readDictionaryData() {
      if (await this._storage.hasValue(this.dictionaryName)) return this._storage.readValue(this.dictionaryName);
      return null;
    }
    async writeDictionaryData(data: unknown, _when: Date) {
      await this._storage.writeValue(this.dictionaryName, data);
    }
  }
  const instances = new Map<string, any>();
  const adapter = {
    Ctor: PersistDictionaryInstance as any,
    usePersistDictionaryAdapter(Ctor: any) {
      this.Ctor = Ctor;
      instances.clear();
    },
    useJson() {
      this.usePersistDictionaryAdapter(PersistDictionaryInstance);
    },
    clear() {
      instances.clear();
    },
    async instance(signalId: string, name: string) {
      const key = `${signalId}:${name}`;
      const isInitial = !instances.has(key);
      if (isInitial) instances.set(key, Reflect.construct(this.Ctor, [signalId, name]));
      const instance = instances.get(key);
      await instance.waitForInit(isInitial);
      return instance;
    },
    async readDictionaryData(signalId: string, name: string) {
      return (await this.instance(signalId, name)).readDictionaryData();
    },
    async writeDictionaryData(data: unknown, signalId: string, name: string, when: Date) {
      return (await this.instance(signalId, name)).writeDictionaryData(data, when);
    },
  };
  const fakeKit = { ...kit, PersistDictionaryAdapter: adapter, PersistDictionaryInstance, PersistOddAdapter: {} };
  return { fakeKit, adapter, DefaultInstance: PersistDictionaryInstance };
}
