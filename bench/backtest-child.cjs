"use strict";
// One measured end-to-end backtest, in its own process (see bench/backtest.cjs):
//   node bench/backtest-child.cjs <backend> <workdir> [minutes]
// backend: floor | default | file | sqlite | redis | cluster | postgres | mongodb | s3 (redis reads BKRS_BENCH_REDIS_URL,
// cluster BKRS_BENCH_REDIS_CLUSTER; the key prefix is derived from the workdir, so a second run
// on the same workdir is warm).
// Times only the Backtest.run loop and prints one JSON line:
//   { msPerMinute, minutes, closedTrades, tradesHash, getCandlesCalls, errors, elapsedMs }
const { closedTrade, tradesHash } = require("../dev/trades.cjs");
const fs = require("node:fs");
const path = require("node:path");

const [backend, workdirArg, minutesArg] = process.argv.slice(2);
const MINUTES = Number(minutesArg ?? 1440);
if (!backend || !workdirArg || !(MINUTES >= 1)) {
  console.error("usage: node bench/backtest-child.cjs <floor|default|file|sqlite|redis|cluster|postgres|mongodb|s3> <workdir> [minutes]");
  process.exit(2);
}
const workdir = path.resolve(workdirArg);
fs.mkdirSync(workdir, { recursive: true });
// Every store that resolves a relative path (PersistBase, RustFilePersist, the SQLite default
// ./dump/backtest-kit.sqlite) must land in the workdir.
process.chdir(workdir);

const kit = require("backtest-kit");
const { RustFilePersist, RustSqlitePersist, createMongoPersist, createPostgresPersist, createRedisPersist, createS3Persist, usePersist } = require("../index.js");

/** The package's one line per domain: each PersistXAdapter given the class itself. */
function registerWithEachAdapter(Backend) {
  for (const key of Object.keys(kit)) {
    const match = /^Persist([A-Z]\w*)Adapter$/.exec(key);
    if (match && typeof kit[key][`usePersist${match[1]}Adapter`] === "function") kit[key][`usePersist${match[1]}Adapter`](Backend);
  }
}

// Persistence setup per subject; returns the class to close at the end (if any).
function configurePersistence() {
  switch (backend) {
    case "file-adapters":
      registerWithEachAdapter(RustFilePersist);
      return null;
    case "sqlite-adapters":
      registerWithEachAdapter(RustSqlitePersist);
      return RustSqlitePersist;
    case "floor":
      // Only the candle cache is touched in backtest mode; without it nothing is persisted.
      kit.PersistCandleAdapter.useDummy();
      return null;
    case "default":
      return null;
    case "file":
      usePersist(kit, RustFilePersist);
      return null;
    case "sqlite":
      usePersist(kit, RustSqlitePersist);
      return RustSqlitePersist;
    case "redis": {
      const url = process.env.BKRS_BENCH_REDIS_URL;
      if (!url) throw new Error("redis subject needs BKRS_BENCH_REDIS_URL");
      const Redis = createRedisPersist({ url, prefix: `bench-backtest-${path.basename(workdir)}` });
      usePersist(kit, Redis);
      return Redis;
    }
    case "cluster": {
      const seeds = (process.env.BKRS_BENCH_REDIS_CLUSTER ?? "").split(",").filter(Boolean);
      if (!seeds.length) throw new Error("cluster subject needs BKRS_BENCH_REDIS_CLUSTER");
      const Redis = createRedisPersist({ cluster: seeds, prefix: `bench-backtest-${path.basename(workdir)}` });
      usePersist(kit, Redis);
      return Redis;
    }
    case "postgres": {
      const url = process.env.BKRS_BENCH_POSTGRES_URL;
      if (!url) throw new Error("postgres subject needs BKRS_BENCH_POSTGRES_URL");
      const table = `bt_${path.basename(workdir).replace(/[^A-Za-z0-9_]/g, "_")}`.slice(0, 50);
      const Postgres = createPostgresPersist({ url, table });
      usePersist(kit, Postgres);
      return Postgres;
    }
    case "mongodb": {
      const url = process.env.BKRS_BENCH_MONGO_URL;
      if (!url) throw new Error("mongodb subject needs BKRS_BENCH_MONGO_URL");
      const Mongo = createMongoPersist({ url, collection: `bt_${path.basename(workdir).replace(/[^A-Za-z0-9_]/g, "_")}` });
      usePersist(kit, Mongo);
      return Mongo;
    }
    case "s3": {
      const s3 = process.env.BKRS_BENCH_S3;
      if (!s3) throw new Error("s3 subject needs BKRS_BENCH_S3");
      const S3 = createS3Persist({ ...JSON.parse(s3), prefix: `bt-${path.basename(workdir)}` });
      usePersist(kit, S3);
      return S3;
    }
    default:
      throw new Error(`unknown backend ${backend}`);
  }
}

// Deterministic synthetic market: smooth waves, so TP/SL both get hit during the day.
const STEP = { "1m": 60e3, "3m": 180e3, "5m": 300e3, "15m": 900e3, "30m": 1800e3, "1h": 3600e3, "2h": 7200e3, "4h": 14400e3, "6h": 21600e3, "8h": 28800e3, "1d": 86400e3 };
const price = (ts) => 100 + 3 * Math.sin(ts / 3.6e6) + 0.8 * Math.sin(ts / 7.3e5) + 0.2 * Math.sin(ts / 9.7e4);
let getCandlesCalls = 0;
kit.addExchangeSchema({
  exchangeName: "bench-synth",
  getCandles: async (_symbol, interval, since, limit) => {
    getCandlesCalls++;
    const step = STEP[interval];
    return Array.from({ length: limit }, (_, i) => {
      const ts = since.getTime() + i * step;
      const open = price(ts);
      const close = price(ts + step);
      const wiggle = 0.02 + 0.01 * ((ts / 60e3) % 3);
      return { timestamp: ts, open, close, high: Math.max(open, close) + wiggle, low: Math.min(open, close) - wiggle, volume: 1 + ((ts / 60e3) % 7) };
    });
  },
  formatPrice: async (_s, p) => p.toFixed(2),
  formatQuantity: async (_s, q) => q.toFixed(8),
});

const START = Date.parse("2025-03-01T00:00:00Z");
kit.addFrameSchema({
  frameName: "bench-day",
  interval: "1m",
  startDate: new Date(START),
  // The frame is inclusive of endDate: MINUTES ticks in all.
  endDate: new Date(START + (MINUTES - 1) * 60e3),
});

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
kit.addStrategySchema({
  strategyName: "bench-trend",
  interval: "5m",
  // Candle reads go through the framework (and so through its candle cache), as a real strategy's do.
  getSignal: async (symbol, _when, currentPrice) => {
    const m1 = await kit.getCandles(symbol, "1m", 60);
    const m15 = await kit.getCandles(symbol, "15m", 16);
    const long = mean(m1.map((c) => c.close)) >= mean(m15.map((c) => c.close));
    return long
      ? { position: "long", priceTakeProfit: currentPrice * 1.01, priceStopLoss: currentPrice * 0.99, minuteEstimatedTime: 120 }
      : { position: "short", priceTakeProfit: currentPrice * 0.99, priceStopLoss: currentPrice * 1.01, minuteEstimatedTime: 120 };
  },
});

// The framework swallows candle-cache failures (falling back to the exchange); count them so
// a broken backend shows up instead of just looking like a cache miss.
let errors = 0;
kit.listenError(() => errors++);

(async () => {
  const Closable = configurePersistence();
  const closed = [];
  const started = process.hrtime.bigint();
  for await (const r of kit.Backtest.run("BTCUSDT", { strategyName: "bench-trend", exchangeName: "bench-synth", frameName: "bench-day" })) {
    const trade = closedTrade(r);
    if (trade) closed.push(trade);
  }
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  if (Closable) await Closable.close();
  const hash = tradesHash(closed);
  console.log(JSON.stringify({ msPerMinute: elapsedMs / MINUTES, minutes: MINUTES, closedTrades: closed.length, tradesHash: hash, getCandlesCalls, errors, elapsedMs }));
  process.exit(0);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
