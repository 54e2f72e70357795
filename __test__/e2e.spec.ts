// End to end with the real backtest-kit 19.5.0: live crash-and-restore (the README demo) and
// deterministic backtests, on each backend, in child processes.
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import Redis from "ioredis";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";

import { expectRestoredPosition, makeTempDir, removeDir, runBacktest, runLiveDemo, sqliteAll } from "./helpers";
import { mongoClient, mongoKey, s3Client, s3Env, s3Get } from "./stores";

let dir: string;

beforeEach(async () => {
  dir = await makeTempDir("e2e");
});
afterEach(async () => {
  await removeDir(dir);
});

const redisEnv = () => ({
  ...process.env,
  BACKTEST_KIT_RS_REDIS_URL: `${inject("redisUrl")}/2`,
  BACKTEST_KIT_RS_POSTGRES_URL: inject("postgresUrl"),
  BACKTEST_KIT_RS_MONGO_URL: inject("mongoUrl"),
  ...s3Env(),
});
const signalEntity = "BTCUSDT_demo-breakout_demo-exchange";

const demo = (backend: string, restoreBackend = backend, style = "usePersist") => runLiveDemo(dir, backend, restoreBackend, redisEnv(), style);

/** Every file under `root/dump` that is not our SQLite database: backtest-kit's own JSON files. */
function jsonFilesUnder(root: string): string[] {
  const dump = path.join(root, "dump");
  if (!fs.existsSync(dump)) return [];
  return (fs.readdirSync(dump, { recursive: true }) as string[]).filter((file) => file.endsWith(".json"));
}

describe("live mode: open a position, SIGKILL, restart", () => {
  it.each(["file", "sqlite", "redis", "postgres", "mongodb", "s3"])("restores the same position and its risk slot with %s", async (backend) => {
    const summary = await demo(backend);
    expect(summary.ok, summary.reason).toBe(true);
    const opened = summary.open.events.find((e: any) => e.event === "opened").signal;
    const restored = summary.restore.events.find((e: any) => e.event === "restored");
    expect(restored.signal).toEqual(opened);
    expect(restored.getSignalCalls).toBe(0);
    const risk = summary.restore.events.find((e: any) => e.event === "risk-checked");
    expect(risk.activePositionCount).toBe(1);
    expect(risk.activePositions).toEqual([{ symbol: "BTCUSDT", strategyName: "demo-breakout" }]);

    // The position is in our storage, and (for the databases) not in backtest-kit's files.
    const signalFile = path.join(dir, "dump/data/signal", signalEntity, "BTCUSDT.json");
    let stored: any;
    if (backend === "file") {
      stored = JSON.parse(fs.readFileSync(signalFile, "utf8"));
    } else if (backend === "sqlite") {
      const [row] = sqliteAll(path.join(dir, "dump/backtest-kit.sqlite"), "SELECT value FROM entities WHERE namespace = ? AND entity = ? AND id = ?", [
        "dump/data/signal",
        signalEntity,
        "BTCUSDT",
      ]);
      stored = JSON.parse(row.value);
    } else if (backend === "postgres") {
      const client = new pg.Client({ connectionString: inject("postgresUrl") });
      await client.connect();
      const table = `demo_${summary.runId.replace(/-/g, "")}`;
      const { rows } = await client.query(`SELECT value FROM ${table} WHERE namespace = $1 AND entity = $2 AND id = $3`, [
        "dump/data/signal",
        signalEntity,
        "BTCUSDT",
      ]);
      await client.end();
      stored = JSON.parse(rows[0].value);
    } else if (backend === "mongodb") {
      const client = await mongoClient();
      const found = await client
        .db("backtest_kit")
        .collection<{ _id: string; v: string }>(`demo_${summary.runId.replace(/-/g, "")}`)
        .findOne({ _id: mongoKey("dump/data/signal", signalEntity, "BTCUSDT") });
      await client.close();
      stored = JSON.parse(found!.v);
    } else if (backend === "s3") {
      stored = JSON.parse((await s3Get(s3Client(), `demo-${summary.runId}/dump/data/signal/${signalEntity}/BTCUSDT.json`))!);
    } else {
      const redis = new Redis(`${inject("redisUrl")}/2`);
      stored = JSON.parse((await redis.hget(`demo-${summary.runId}:["dump/data/signal","${signalEntity}"]`, "BTCUSDT"))!);
      redis.disconnect();
    }
    expect(stored.id).toBe(opened.id);
    expect(stored.priceTakeProfit).toBe(opened.priceTakeProfit);
    if (backend !== "file") expect(fs.existsSync(signalFile)).toBe(false);
  });

  it("a bot switching from backtest-kit's own files to RustFilePersist keeps its open position", async () => {
    const summary = await demo("default", "file");
    expect(summary.ok, summary.reason).toBe(true);
    const opened = summary.open.events.find((e: any) => e.event === "opened").signal;
    expect(summary.restore.events.find((e: any) => e.event === "restored").signal).toEqual(opened);
  });
});

describe("live mode with each PersistXAdapter given the class itself (no usePersist)", () => {
  it.each(["file", "sqlite", "redis"])("restores the same position and its risk slot with %s", async (backend) => {
    expectRestoredPosition(await demo(backend, backend, "adapters"));
    if (backend !== "file") expect(jsonFilesUnder(dir), "nothing fell back to backtest-kit's JSON files").toEqual([]);
  });
});

const runId = randomUUID();

// One prefix (Redis) or table (PostgreSQL) per workdir, so a later process finds what an earlier
// one stored.
const backtest = (backend: string, workdir: string, runs: number, domains = false, registration = "usePersist") =>
  runBacktest(
    backend,
    workdir,
    runs,
    {
      ...redisEnv(),
      BKRS_REGISTRATION: registration,
      BKRS_REDIS_PREFIX: `bt-${runId}-${workdir}`,
      BKRS_STORE_NAME: `bt_${createHash("sha1").update(`${runId}${workdir}`).digest("hex").slice(0, 20)}`,
    },
    domains,
  );

describe("backtest mode", () => {
  it("gives identical closed trades with the default storage and every backend, cold, warm and warm from another process", async () => {
    const results: Record<string, any[]> = {};
    const nextProcess: Record<string, any> = {};
    for (const backend of ["default", "file", "sqlite", "redis", "postgres", "mongodb", "s3"]) {
      results[backend] = await backtest(backend, path.join(dir, backend), 2);
      nextProcess[backend] = (await backtest(backend, path.join(dir, backend), 1))[0];
    }
    const reference = results.default[0];
    expect(reference.closedTrades).toBeGreaterThan(10);
    for (const [backend, lines] of Object.entries(results)) {
      const [first, second, seen] = lines;
      expect(first.hash, backend).toBe(reference.hash);
      expect(second.hash, backend).toBe(reference.hash);
      expect(first.getCandlesCalls, backend).toBeGreaterThan(0);
      expect(second.getCandlesCalls, `${backend}: the second run reads the cache the first wrote`).toBe(0);
      expect(seen.seen.candle.write, backend).toBeGreaterThan(backend === "default" ? 100 : 0);
      expect(nextProcess[backend].hash, `${backend}, next process`).toBe(reference.hash);
      expect(nextProcess[backend].getCandlesCalls, `${backend}, next process`).toBe(0);
    }
    // Our file backend left the same candle files as backtest-kit's own storage.
    const candleDir = (backend: string) => path.join(dir, backend, "dump/data/candle/synth/BTCUSDT/1m");
    expect(fs.readdirSync(candleDir("file")).sort()).toEqual(fs.readdirSync(candleDir("default")).sort());
  });

  it("gives the same trades with each PersistXAdapter given the class itself, reading what usePersist wrote", async () => {
    const reference = (await backtest("default", path.join(dir, "default"), 1))[0];
    for (const backend of ["file", "sqlite", "redis"]) {
      const workdir = path.join(dir, `adapters-${backend}`);
      const [cold, warm, counted] = await backtest(backend, workdir, 2, false, "adapters");
      expect(cold.hash, backend).toBe(reference.hash);
      expect(warm.hash, backend).toBe(reference.hash);
      expect(counted.seen.candle.write, `${backend}: candles written through our class`).toBeGreaterThan(0);
      expect(warm.getCandlesCalls, `${backend}: the warm run reads the cache the cold one wrote`).toBe(0);
      if (backend !== "file") expect(jsonFilesUnder(workdir), backend).toEqual([]);
      // The other style in the next process finds every candle: the same keys.
      const [next] = await backtest(backend, workdir, 1);
      expect(next.hash, backend).toBe(reference.hash);
      expect(next.getCandlesCalls, `${backend}: usePersist reads what the adapters' style wrote`).toBe(0);
    }
  });

  it.each(["sqlite", "redis", "postgres", "mongodb", "s3"])("routes the optional domains through %s when the framework enables them", async (backend) => {
    const lines = await backtest(backend, dir, 1, true);
    const { seen, errors } = lines[lines.length - 1];
    expect(errors).toEqual([]);
    for (const domain of ["candle", "storage", "notification", "log", "measure", "interval", "memory", "recent", "state", "session"]) {
      expect(seen[domain]?.read, `${domain} read`).toBeGreaterThan(0);
      expect(seen[domain]?.write, `${domain} written`).toBeGreaterThan(0);
    }
  });
});
