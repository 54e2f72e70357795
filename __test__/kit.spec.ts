// usePersist over backtest-kit 19.5.0's own adapters: every one of the 16 domains goes through
// our backends with the framework's logic unchanged (same results as its default JSON files).
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";
import * as kit from "backtest-kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import {
  createSqlitePersist,
  DOMAINS,
  RustFilePersist,
  useDefaultPersist,
  usePersist,
} from "../index.js";
import { BACKENDS } from "./backends";
import type { PersistCtor } from "./conformance";
import { collect, makeTempDir, removeDir, signalRow, treeSnapshot } from "./helpers";

const when = new Date(Date.UTC(2026, 10, 20, 12, 0));
const candleStart = Date.UTC(2026, 10, 20, 0, 0);
const candles = Array.from({ length: 5 }, (_, i) => ({
  timestamp: candleStart + i * 60_000,
  open: 42000 + i,
  high: 42010 + i,
  low: 41990 + i,
  close: 42005 + i,
  volume: 12.5 + i,
}));
const pending = { ...signalRow(1), id: "sig-1", minuteEstimatedTime: Infinity };

/** One write-then-read exchange per domain through backtest-kit's public adapter utilities. */
const scenarios: Record<string, () => Promise<unknown>> = {
  signal: async () => {
    await kit.PersistSignalAdapter.writeSignalData(pending as any, "BTCUSDT", "s1", "ex1");
    return kit.PersistSignalAdapter.readSignalData("BTCUSDT", "s1", "ex1");
  },
  risk: async () => {
    const rows: any = [["BTCUSDT:s1", { signal: pending, strategyName: "s1", exchangeName: "ex1", openTimestamp: 1 }]];
    await kit.PersistRiskAdapter.writePositionData(rows, "r1", "ex1", when);
    return kit.PersistRiskAdapter.readPositionData("r1", "ex1", when);
  },
  schedule: async () => {
    await kit.PersistScheduleAdapter.writeScheduleData({ ...pending, id: "sched-1" } as any, "BTCUSDT", "s1", "ex1");
    return kit.PersistScheduleAdapter.readScheduleData("BTCUSDT", "s1", "ex1");
  },
  strategy: async () => {
    const row: any = { pendingSignalId: "sig-1", lastPendingId: "sig-0", createdSignal: pending, commitQueue: [], retryOpenCount: 0 };
    await kit.PersistStrategyAdapter.writeStrategyData(row, "BTCUSDT", "s1", "ex1");
    return kit.PersistStrategyAdapter.readStrategyData("BTCUSDT", "s1", "ex1");
  },
  partial: async () => {
    const data: any = { "sig-1": { profitLevels: [10, 20], lossLevels: [] } };
    await kit.PersistPartialAdapter.writePartialData(data, "BTCUSDT", "s1", "sig-1", "ex1", when);
    return kit.PersistPartialAdapter.readPartialData("BTCUSDT", "s1", "sig-1", "ex1", when);
  },
  breakeven: async () => {
    const data: any = { "sig-1": { reached: true } };
    await kit.PersistBreakevenAdapter.writeBreakevenData(data, "BTCUSDT", "s1", "sig-1", "ex1", when);
    return kit.PersistBreakevenAdapter.readBreakevenData("BTCUSDT", "s1", "sig-1", "ex1", when);
  },
  candle: async () => {
    await kit.PersistCandleAdapter.writeCandlesData(candles as any, "BTCUSDT", "1m", "ex1");
    return kit.PersistCandleAdapter.readCandlesData("BTCUSDT", "1m", "ex1", 5, candleStart, candleStart + 5 * 60_000);
  },
  storage: async () => {
    await kit.PersistStorageAdapter.writeStorageData([{ ...pending, id: "st-2", priority: 2 }, { ...pending, id: "st-1", priority: 1 }] as any, false);
    return kit.PersistStorageAdapter.readStorageData(false);
  },
  notification: async () => {
    await kit.PersistNotificationAdapter.writeNotificationData([{ id: "n-1", type: "signal.opened", createdAt: 1, cost: 10 }] as any, true);
    return kit.PersistNotificationAdapter.readNotificationData(true);
  },
  log: async () => {
    await kit.PersistLogAdapter.writeLogData([{ id: "log-1", type: "info", priority: 1, topic: "t", args: [1] }] as any);
    return kit.PersistLogAdapter.readLogData();
  },
  measure: async () => {
    await kit.PersistMeasureAdapter.writeMeasureData({ id: "m", data: { rsi: 55 }, removed: false } as any, "rsi_1h_0", "BTCUSDT_1", when);
    const read = await kit.PersistMeasureAdapter.readMeasureData("rsi_1h_0", "BTCUSDT_1");
    return { read, keys: await collect(kit.PersistMeasureAdapter.listMeasureData("rsi_1h_0")) };
  },
  interval: async () => {
    await kit.PersistIntervalAdapter.writeIntervalData({ id: "i", data: [1, 2], when, removed: false } as any, "tick_1m_0", "BTCUSDT_1", when);
    const read = await kit.PersistIntervalAdapter.readIntervalData("tick_1m_0", "BTCUSDT_1");
    return { read, keys: await collect(kit.PersistIntervalAdapter.listIntervalData("tick_1m_0")) };
  },
  memory: async () => {
    await kit.PersistMemoryAdapter.writeMemoryData({ priority: 1, data: { note: "x" }, removed: false, index: 0, when: 1 } as any, "sig-1", "notes", "m-1", when);
    const read = await kit.PersistMemoryAdapter.readMemoryData("sig-1", "notes", "m-1");
    return { read, has: await kit.PersistMemoryAdapter.hasMemoryData("sig-1", "notes", "m-1"), list: await collect(kit.PersistMemoryAdapter.listMemoryData("sig-1", "notes")) };
  },
  recent: async () => {
    await kit.PersistRecentAdapter.writeRecentData(pending as any, "BTCUSDT", "s1", "ex1", "", false, when);
    return kit.PersistRecentAdapter.readRecentData("BTCUSDT", "s1", "ex1", "", false);
  },
  state: async () => {
    await kit.PersistStateAdapter.writeStateData({ id: "st", data: { step: 3 }, when: 1 } as any, "sig-1", "progress", when);
    return kit.PersistStateAdapter.readStateData("sig-1", "progress");
  },
  session: async () => {
    await kit.PersistSessionAdapter.writeSessionData({ id: "se", data: { k: 1 }, when: 1 } as any, "s1", "ex1", "", when, "BTCUSDT", false);
    return kit.PersistSessionAdapter.readSessionData("s1", "ex1", "", "BTCUSDT", false);
  },
};

type Call = { op: string; entityName: string; baseDir: string; id?: string };

/** Wrap a backend class so each instance reports the calls reaching it. */
function recording(Backend: PersistCtor, calls: Call[]): PersistCtor {
  return class Recorded extends Backend {
    async readValue(id: string | number) {
      calls.push({ op: "read", entityName: this.entityName, baseDir: this.baseDir, id: String(id) });
      return super.readValue(id);
    }
    async hasValue(id: string | number) {
      calls.push({ op: "has", entityName: this.entityName, baseDir: this.baseDir, id: String(id) });
      return super.hasValue(id);
    }
    async writeValue(id: string | number, value: unknown) {
      calls.push({ op: "write", entityName: this.entityName, baseDir: this.baseDir, id: String(id) });
      return super.writeValue(id, value);
    }
    keys() {
      calls.push({ op: "keys", entityName: this.entityName, baseDir: this.baseDir });
      return super.keys();
    }
  };
}

/** `body` run with `cwd` as the working directory (backtest-kit's base directories are relative). */
async function inCwd<T>(cwd: string, body: () => Promise<T>): Promise<T> {
  const previous = process.cwd();
  process.chdir(cwd);
  try {
    return await body();
  } finally {
    process.chdir(previous);
  }
}

/** Each domain's scenario run in a fresh cwd, returning what the framework returned. */
function runScenarios(cwd: string): Promise<Record<string, unknown>> {
  return inCwd(cwd, async () => {
    const results: Record<string, unknown> = {};
    for (const domain of DOMAINS) results[domain] = await scenarios[domain]();
    return results;
  });
}

let root: string;
let reference: Record<string, unknown>;
let referenceTree: Record<string, string>;

beforeAll(async () => {
  root = await makeTempDir("kit");
  useDefaultPersist(kit);
  const cwd = path.join(root, "default");
  await import("node:fs/promises").then((fs) => fs.mkdir(cwd));
  reference = await runScenarios(cwd);
  referenceTree = await treeSnapshot(cwd);
});
afterAll(async () => {
  useDefaultPersist(kit);
  await removeDir(root);
});

/** Every backend of the harness list: a class over a fresh place of it, and its cleanup. */
const backends = BACKENDS.map((backend) => [
  backend.name,
  async (): Promise<{ Backend: PersistCtor; close(): Promise<void> }> => {
    const place = await backend.open(root);
    return { Backend: place.create(), close: () => place.cleanup() };
  },
] as const);

/**
 * `body` with a class over a fresh place of the backend and a working directory of its own;
 * afterwards the default storage is back and the place and the directory are gone.
 */
async function withBackend(make: (typeof backends)[number][1], tag: string, body: (Backend: PersistCtor, cwd: string) => Promise<void>) {
  const { Backend, close } = await make();
  const cwd = await makeTempDir(tag);
  try {
    await body(Backend, cwd);
  } finally {
    useDefaultPersist(kit);
    await close();
    await removeDir(cwd);
  }
}

/** Every domain's adapter given `Backend` itself, the package's one-line design; returns the domains. */
function registerWithAdapters(Backend: PersistCtor): string[] {
  return DOMAINS.map((domain) => {
    const name = domain[0].toUpperCase() + domain.slice(1);
    (kit as any)[`Persist${name}Adapter`][`usePersist${name}Adapter`](Backend);
    return domain;
  });
}

/** Files under `dir/dump`: none may appear when a database backend holds every domain. */
async function dumpFiles(dir: string): Promise<string[]> {
  return Object.keys(await treeSnapshot(dir)).filter((file) => file.startsWith("dump/") && !file.includes(".sqlite"));
}

describe.each(backends)("PersistXAdapter.usePersistXAdapter(%s), without usePersist", (name, make) => {
  it("routes all 16 domains through the backend: the framework's results, the same keys as usePersist, no JSON files", async () => {
    await withBackend(make, "kit-adapters", async (Backend, cwd) => {
      const calls: Call[] = [];
      registerWithAdapters(recording(Backend, calls));
      const results = await runScenarios(cwd);
      expect(results).toEqual(reference);
      expect((results.signal as any).minuteEstimatedTime).toBe(Infinity);
      for (const domain of DOMAINS) {
        const seen = calls.filter((c) => c.baseDir.includes(`/${domain}/`) || c.baseDir.startsWith(`./dump/${domain}/`));
        expect(seen.some((c) => c.op === "write"), `${domain} written through the backend`).toBe(true);
      }
      // The file backend writes backtest-kit's own layout in the working directory.
      if (name === "file") expect(await treeSnapshot(cwd)).toEqual(referenceTree);
      else expect(await dumpFiles(cwd), "nothing fell back to backtest-kit's JSON files").toEqual([]);
      expect((Backend as any).stats().writes, `${name}: the writes reached the backend`).toBeGreaterThan(0);

      // A bot switching to usePersist (or back) finds what the other style stored: same keys.
      usePersist(kit, Backend);
      await inCwd(cwd, async () => {
        expect(await kit.PersistSignalAdapter.readSignalData("BTCUSDT", "s1", "ex1")).toEqual(reference.signal);
        expect(await kit.PersistRiskAdapter.readPositionData("r1", "ex1", when)).toEqual(reference.risk);
        expect(await kit.PersistStorageAdapter.readStorageData(false)).toEqual(reference.storage);
      });
    });
  });
});

describe("a class given to an adapter", () => {
  it("is a storage when made by anything but the framework, and says so when asked for a domain method", async () => {
    const cwd = await makeTempDir("kit-storage");
    try {
      const store: any = new RustFilePersist("ent", path.join(cwd, "base"));
      await store.waitForInit(true);
      await store.writeValue("a", { x: 1 });
      expect(await store.readValue("a")).toEqual({ x: 1 });
      await expect(store.readSignalData()).rejects.toMatchObject({ code: "PERSIST_INVALID_CONFIG", message: /usePersist\(kit, RustFilePersist\)/ });
    } finally {
      await removeDir(cwd);
    }
  });

  it("refuses storage arguments that are not names, with PERSIST_INVALID_NAME", () => {
    for (const args of [[42, "./d"], ["ent", 7], [], [true], [null, "./d"]]) {
      expect(() => new (RustFilePersist as any)(...args), JSON.stringify(args)).toThrow(expect.objectContaining({ code: "PERSIST_INVALID_NAME" }));
    }
  });

  it("made by the other module copy of backtest-kit forwards to that copy's own instance classes", async () => {
    // The suite imports backtest-kit's ES module; its CommonJS build is a second copy with
    // adapters of its own, as in a program that mixes import and require.
    const other: any = createRequire(__filename)("backtest-kit");
    expect(other.PersistRiskAdapter).not.toBe((kit as any).PersistRiskAdapter);
    const Sqlite = createSqlitePersist({ path: path.join(root, `esm-${randomUUID()}.sqlite`) });
    const cwd = await makeTempDir("kit-esm");
    try {
      other.PersistRiskAdapter.usePersistRiskAdapter(Sqlite);
      const rows: any = [["BTCUSDT:s1", { signal: pending, strategyName: "s1", exchangeName: "ex1", openTimestamp: 1 }]];
      await inCwd(cwd, async () => {
        await other.PersistRiskAdapter.writePositionData(rows, "r1", "ex1", when);
        expect(await other.PersistRiskAdapter.readPositionData("r1", "ex1", when)).toEqual(reference.risk);
      });
      expect(Sqlite.stats().writes).toBe(1);
      expect(await dumpFiles(cwd)).toEqual([]);
    } finally {
      other.PersistRiskAdapter.useJson();
      await Sqlite.close();
      await removeDir(cwd);
    }
  });
});

describe.each(backends)("usePersist(kit, %s)", (name, make) => {
  it("routes all 16 domains through the backend with backtest-kit's behaviour unchanged", async () => {
    await withBackend(make, "kit-run", async (Backend, cwd) => {
      const calls: Call[] = [];
      expect(usePersist(kit, recording(Backend, calls))).toEqual([...DOMAINS]);
      const results = await runScenarios(cwd);
      expect(results).toEqual(reference);
      // Restores from JSON, as the default does: Infinity comes back, defaults fill in.
      expect((results.signal as any).minuteEstimatedTime).toBe(Infinity);
      for (const domain of DOMAINS) {
        const seen = calls.filter((c) => c.baseDir.includes(`/${domain}/`) || c.baseDir.startsWith(`./dump/${domain}/`));
        expect(seen.some((c) => c.op === "write"), `${domain} written through the backend`).toBe(true);
        expect(seen.some((c) => c.op === "read" || c.op === "keys"), `${domain} read through the backend`).toBe(true);
      }
      if (name === "file") {
        // Same files, byte for byte, as backtest-kit's default storage wrote.
        expect(await treeSnapshot(cwd)).toEqual(referenceTree);
      }
    });
  });
});

describe("choosing domains and backends", () => {
  it("registers a subset, or a different backend per domain, and goes back to the default", async () => {
    const fileCalls: Call[] = [];
    const sqliteCalls: Call[] = [];
    const Sqlite = createSqlitePersist({ path: path.join(root, "hybrid.sqlite") });
    const cwd = await makeTempDir("kit-hybrid");
    try {
      expect(usePersist(kit, recording(RustFilePersist, fileCalls), { domains: ["signal", "risk"] })).toEqual(["signal", "risk"]);
      expect(usePersist(kit, { default: recording(Sqlite, sqliteCalls), signal: null, risk: null, candle: recording(RustFilePersist, fileCalls) })).toHaveLength(14);
      const results = await runScenarios(cwd);
      expect(results).toEqual(reference);
      const domainsOf = (calls: Call[]) => new Set(calls.map((c) => DOMAINS.find((d) => c.baseDir.includes(`/${d}/`))));
      expect(domainsOf(fileCalls)).toEqual(new Set(["signal", "risk", "candle"]));
      expect(domainsOf(sqliteCalls).size).toBe(13);

      useDefaultPersist(kit);
      fileCalls.length = 0;
      sqliteCalls.length = 0;
      await runScenarios(cwd);
      expect(fileCalls).toEqual([]);
      expect(sqliteCalls).toEqual([]);
    } finally {
      useDefaultPersist(kit);
      await Sqlite.close();
      await removeDir(cwd);
    }
  });

  it("refuses mistakes before registering anything", async () => {
    const calls: Call[] = [];
    const other: Call[] = [];
    usePersist(kit, recording(RustFilePersist, calls));
    const Other = recording(RustFilePersist, other);
    expect(() => usePersist(RustFilePersist as any, RustFilePersist)).toThrow(/backtest-kit module first/);
    expect(() => usePersist(kit, Other, { domains: ["signal", "nope"] })).toThrow(/unknown domain "nope"/);
    expect(() => usePersist(kit, class {} as any)).toThrow(/IPersistBase methods/);
    expect(() => usePersist(kit, { signal: Other, risk: {} as any })).toThrow(/risk/);
    expect(() => usePersist(kit, { default: Other, signals: null })).toThrow(/unknown domain "signals"/);
    // Every misspelt domain is PERSIST_INVALID_CONFIG naming the valid ones, wherever it is written.
    const invalid = (pattern: RegExp) => expect.objectContaining({ code: "PERSIST_INVALID_CONFIG", message: expect.stringMatching(pattern) });
    expect(() => usePersist(kit, Other, { durability: { candel: "durable" } as any })).toThrow(invalid(/"candel".*did you mean "candle".*known: signal/));
    expect(() => usePersist(kit, Other, { domains: ["signall"] as any })).toThrow(invalid(/"signall" in options.domains/));
    expect(() => usePersist(kit, { default: Other, candel: Other } as any)).toThrow(invalid(/"candel" in the backend map/));
    expect(() => useDefaultPersist(kit, ["signall"] as any)).toThrow(invalid(/"signall" in useDefaultPersist/));
    expect(() => usePersist(kit, Other, { domains: "signal" as any })).toThrow(invalid(/must be an array/));
    const cwd = await makeTempDir("kit-refused");
    try {
      await runScenarios(cwd);
      expect(calls.length).toBeGreaterThan(0);
      expect(other).toEqual([]); // the refused calls registered nothing, not even the valid part
    } finally {
      useDefaultPersist(kit);
      await removeDir(cwd);
    }
  });
});

describe("switching from backtest-kit's default JSON files", () => {
  it("RustFilePersist reads what the default storage wrote", async () => {
    const cwd = await makeTempDir("kit-switch");
    try {
      useDefaultPersist(kit);
      await inCwd(cwd, async () => {
        await scenariosWriteOnly();
        usePersist(kit, RustFilePersist);
        expect(await kit.PersistSignalAdapter.readSignalData("BTCUSDT", "s1", "ex1")).toEqual(reference.signal);
        expect(await kit.PersistRiskAdapter.readPositionData("r1", "ex1", when)).toEqual(reference.risk);
        expect(await kit.PersistCandleAdapter.readCandlesData("BTCUSDT", "1m", "ex1", 5, candleStart, 0)).toEqual(reference.candle);
      });
    } finally {
      useDefaultPersist(kit);
      await removeDir(cwd);
    }
  });
});

async function scenariosWriteOnly(): Promise<void> {
  await kit.PersistSignalAdapter.writeSignalData(pending as any, "BTCUSDT", "s1", "ex1");
  const rows: any = [["BTCUSDT:s1", { signal: pending, strategyName: "s1", exchangeName: "ex1", openTimestamp: 1 }]];
  await kit.PersistRiskAdapter.writePositionData(rows, "r1", "ex1", when);
  await kit.PersistCandleAdapter.writeCandlesData(candles as any, "BTCUSDT", "1m", "ex1");
}
