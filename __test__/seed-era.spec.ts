// backtest-kit <= 8.3 took a storage class per adapter. The registry reachable here serves
// only 19.5.0, so this replays 1.3.2's adapter protocol (shared/reference §4): one memoised
// instance per key made with Reflect.construct(Ctor, [entityName, baseDir]), waitForInit(isInitial)
// before each call, hasValue then readValue on reads, writeValue (null to clear) on writes.
import path from "node:path";
import { PersistBase } from "backtest-kit";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { createSqlitePersist, RustFilePersist } from "../index.js";
import type { PersistCtor, PersistLike } from "./conformance";
import { makeTempDir, removeDir, signalRow, sqliteAll, treeSnapshot } from "./helpers";

class SeedAdapter<Empty> {
  private Ctor: PersistCtor = PersistBase as unknown as PersistCtor;
  private memo = new Map<string, PersistLike>();
  constructor(
    private readonly baseDir: string,
    private readonly empty: () => Empty,
  ) {}

  use(Ctor: PersistCtor): void {
    this.Ctor = Ctor;
  }

  private async storage(entityName: string): Promise<PersistLike> {
    const isInitial = !this.memo.has(entityName);
    if (isInitial) this.memo.set(entityName, Reflect.construct(this.Ctor, [entityName, this.baseDir]));
    const storage = this.memo.get(entityName)!;
    await storage.waitForInit(isInitial);
    return storage;
  }

  async read(entityName: string, id: string): Promise<unknown> {
    const storage = await this.storage(entityName);
    if (await storage.hasValue(id)) return storage.readValue(id);
    return this.empty();
  }

  async write(entityName: string, id: string, value: unknown): Promise<void> {
    const storage = await this.storage(entityName);
    await storage.writeValue(id, value);
  }
}

/** 1.3.2's four adapters: [entityName, entityId] per call, as in the reference table. */
function seedKit() {
  const signal = new SeedAdapter("./dump/data/signal/", () => null);
  const risk = new SeedAdapter("./dump/data/risk/", () => []);
  const schedule = new SeedAdapter("./dump/data/schedule/", () => null);
  const partial = new SeedAdapter("./dump/data/partial/", () => ({}));
  return {
    PersistSignalAdapter: {
      usePersistSignalAdapter: (C: PersistCtor) => signal.use(C),
      readSignalData: (strategyName: string, symbol: string) => signal.read(strategyName, symbol),
      writeSignalData: (row: unknown, strategyName: string, symbol: string) => signal.write(strategyName, symbol, row),
    },
    PersistRiskAdapter: {
      usePersistRiskAdapter: (C: PersistCtor) => risk.use(C),
      readPositionData: (riskName: string) => risk.read(riskName, "positions"),
      writePositionData: (rows: unknown, riskName: string) => risk.write(riskName, "positions", rows),
    },
    PersistScheduleAdapter: {
      usePersistScheduleAdapter: (C: PersistCtor) => schedule.use(C),
      readScheduleData: (strategyName: string, symbol: string) => schedule.read(strategyName, symbol),
      writeScheduleData: (row: unknown, strategyName: string, symbol: string) => schedule.write(strategyName, symbol, row),
    },
    PersistPartialAdapter: {
      usePersistPartialAdapter: (C: PersistCtor) => partial.use(C),
      readPartialData: (symbol: string) => partial.read(symbol, "levels"),
      writePartialData: (data: unknown, symbol: string) => partial.write(symbol, "levels", data),
    },
  };
}

type SeedKit = ReturnType<typeof seedKit>;

/** What a live bot of that era persisted, then read back after a restart (a fresh kit). */
async function liveSession(register: (kit: SeedKit) => void) {
  const before = seedKit();
  register(before);
  await before.PersistSignalAdapter.writeSignalData(signalRow(1), "s1", "BTCUSDT");
  await before.PersistRiskAdapter.writePositionData([["s1:BTCUSDT", { signal: signalRow(1) }]], "r1");
  await before.PersistScheduleAdapter.writeScheduleData(null, "s1", "BTCUSDT");
  await before.PersistPartialAdapter.writePartialData({ "sig-1": { profitLevels: [10], lossLevels: [] } }, "BTCUSDT");
  const after = seedKit();
  register(after);
  return {
    signal: await after.PersistSignalAdapter.readSignalData("s1", "BTCUSDT"),
    risk: await after.PersistRiskAdapter.readPositionData("r1"),
    schedule: await after.PersistScheduleAdapter.readScheduleData("s1", "BTCUSDT"),
    partial: await after.PersistPartialAdapter.readPartialData("BTCUSDT"),
    missing: await after.PersistSignalAdapter.readSignalData("s2", "ETHUSDT"),
  };
}

const useAll = (Ctor: PersistCtor) => (kit: SeedKit) => {
  kit.PersistSignalAdapter.usePersistSignalAdapter(Ctor);
  kit.PersistRiskAdapter.usePersistRiskAdapter(Ctor);
  kit.PersistScheduleAdapter.usePersistScheduleAdapter(Ctor);
  kit.PersistPartialAdapter.usePersistPartialAdapter(Ctor);
};

let root: string;
let previousCwd: string;
beforeEach(async () => {
  root = await makeTempDir("seed");
  previousCwd = process.cwd();
  process.chdir(root);
});
afterEach(async () => {
  process.chdir(previousCwd);
  await removeDir(root);
});

describe("backtest-kit <= 8.3: usePersistXAdapter(RustFilePersist)", () => {
  it("restores signal, risk, schedule and partial state like the default storage, in the same files", async () => {
    await import("node:fs/promises").then((fs) => fs.mkdir(path.join(root, "default")));
    process.chdir(path.join(root, "default"));
    const expected = await liveSession(() => undefined);
    const defaultFiles = await treeSnapshot(".");

    await import("node:fs/promises").then((fs) => fs.mkdir(path.join(root, "rust")));
    process.chdir(path.join(root, "rust"));
    expect(await liveSession(useAll(RustFilePersist))).toEqual(expected);
    expect(expected.signal).toEqual(signalRow(1));
    expect(expected.missing).toBeNull();
    expect(await treeSnapshot(".")).toEqual(defaultFiles);
    expect(Object.keys(defaultFiles)).toContain(path.join("dump", "data", "signal", "s1", "BTCUSDT.json"));
  });

  it("works the same with RustSqlitePersist, and nothing goes to JSON files", async () => {
    const Sqlite = createSqlitePersist({ path: path.join(root, "seed.sqlite") });
    try {
      const state = await liveSession(useAll(Sqlite));
      expect(state.signal).toEqual(signalRow(1));
      expect(state.partial).toEqual({ "sig-1": { profitLevels: [10], lossLevels: [] } });
      expect(state.schedule).toBeNull();
      expect(state.missing).toBeNull();
    } finally {
      await Sqlite.close();
    }
    const rows = sqliteAll(path.join(root, "seed.sqlite"), "SELECT namespace, entity, id FROM entities ORDER BY namespace");
    expect(rows).toEqual([
      { namespace: "dump/data/partial", entity: "BTCUSDT", id: "levels" },
      { namespace: "dump/data/risk", entity: "r1", id: "positions" },
      { namespace: "dump/data/schedule", entity: "s1", id: "BTCUSDT" },
      { namespace: "dump/data/signal", entity: "s1", id: "BTCUSDT" },
    ]);
    expect(Object.keys(await treeSnapshot(".")).filter((f) => f.endsWith(".json"))).toEqual([]);
  });
});
