"use strict";
// Crash and restore with backtest-kit 19.x in live mode, its state in backtest-kit-rs.
//
//   npm run demo                      # embedded default: RustSqlitePersist
//   npm run demo -- --backend file    # or redis (REDIS_URL / BACKTEST_KIT_RS_REDIS_URL),
//                                     # or postgres (DATABASE_URL / BACKTEST_KIT_RS_POSTGRES_URL),
//                                     # or mongodb (MONGODB_URI / BACKTEST_KIT_RS_MONGO_URL),
//                                     # or s3 (BACKTEST_KIT_RS_S3_URL and the AWS_* credentials)
//   npm run demo -- --style adapters  # each PersistXAdapter.usePersistXAdapter(Class) instead of
//                                     # usePersist(kit, Class): the same storage either way
//
// A child process starts a live session on a deterministic synthetic exchange (no network);
// its strategy opens a long position, which backtest-kit persists through our backend. The
// child then kills itself with SIGKILL. A second process starts the same session and must get
// the same position back from storage (not open a new one), with the risk profile counting it.
const { spawn } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const SYMBOL = "BTCUSDT";
const STRATEGY = "demo-breakout";
const EXCHANGE = "demo-exchange";
const RISK = "demo-max-1";
const STEP_MS = { "1m": 60e3, "3m": 180e3, "5m": 300e3, "15m": 900e3, "30m": 1800e3, "1h": 3600e3, "2h": 7200e3, "4h": 14400e3, "6h": 21600e3, "8h": 28800e3, "1d": 86400e3 };

function parseArgs(argv) {
  const args = { backend: "sqlite", style: "usePersist", json: false };
  // --restore-backend differs from --backend to show a switch, e.g. from backtest-kit's own
  // files ("default") to RustFilePersist, which reads them as they are.
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--backend") args.backend = argv[++i];
    else if (arg === "--dir") args.dir = argv[++i];
    else if (arg === "--restore-backend") args.restoreBackend = argv[++i];
    else if (arg === "--phase") args.phase = argv[++i];
    else if (arg === "--run-id") args.runId = argv[++i];
    else if (arg === "--style") args.style = argv[++i];
    else if (arg === "--json") args.json = true;
    else throw new Error(`unknown argument ${arg}`);
  }
  args.restoreBackend ??= args.backend;
  if (!["usePersist", "adapters"].includes(args.style)) throw new Error(`--style must be usePersist or adapters, got ${args.style}`);
  for (const backend of [args.backend, args.restoreBackend]) {
    if (!["file", "sqlite", "redis", "postgres", "mongodb", "s3", "default"].includes(backend)) {
      throw new Error(`--backend must be file, sqlite, redis, postgres, mongodb, s3 or default (backtest-kit's own files), got ${backend}`);
    }
  }
  return args;
}

// ---------------------------------------------------------------------------------------------
// Child: one live session (phase "open" or "restore").

function child(args) {
  process.chdir(args.dir); // backtest-kit's base directories are relative to the cwd
  const kit = require("backtest-kit");
  const persist = require("..");
  const Backend = {
    default: () => null,
    file: () => persist.RustFilePersist,
    sqlite: () => persist.RustSqlitePersist, // ./dump/backtest-kit.sqlite
    redis: () => persist.createRedisPersist({ prefix: `demo-${args.runId}`, commandTimeoutMs: 3000 }),
    postgres: () => persist.createPostgresPersist({ table: `demo_${args.runId.replace(/-/g, "")}`, commandTimeoutMs: 3000 }),
    mongodb: () => persist.createMongoPersist({ collection: `demo_${args.runId.replace(/-/g, "")}`, commandTimeoutMs: 3000 }),
    s3: () => persist.createS3Persist({ prefix: `demo-${args.runId}`, commandTimeoutMs: 3000 }),
  }[args.backend]();
  if (Backend && args.style === "adapters") {
    // The one line per domain of backtest-kit's own API, with our class as it is.
    for (const domain of persist.DOMAINS) {
      const name = domain[0].toUpperCase() + domain.slice(1);
      kit[`Persist${name}Adapter`][`usePersist${name}Adapter`](Backend);
    }
  } else if (Backend) persist.usePersist(kit, Backend);

  const emit = (event) => process.stdout.write(`${JSON.stringify({ phase: args.phase, ...event })}\n`);
  const fail = (reason) => {
    emit({ event: "failed", reason });
    process.exit(1);
  };
  setTimeout(() => fail("timed out after 30 s"), 30_000).unref();
  kit.listenError((err) => emit({ event: "framework-error", message: String(err?.message ?? err) }));

  // Prices are a function of time only, between 98 and 102: the ±5% exits are never reached.
  const price = (ts) => 100 + 2 * Math.sin(ts / 3.6e6);
  kit.addExchangeSchema({
    exchangeName: EXCHANGE,
    getCandles: async (_symbol, interval, since, limit) =>
      Array.from({ length: limit }, (_, i) => {
        const ts = since.getTime() + i * STEP_MS[interval];
        const open = price(ts);
        const close = price(ts + STEP_MS[interval]);
        return { timestamp: ts, open, close, high: Math.max(open, close) + 0.01, low: Math.min(open, close) - 0.01, volume: 1 };
      }),
    formatPrice: async (_symbol, p) => p.toFixed(2),
    formatQuantity: async (_symbol, q) => q.toFixed(8),
  });

  let probe = null;
  const stops = [];
  kit.addRiskSchema({
    riskName: RISK,
    validations: [
      ({ activePositionCount, activePositions }) => {
        probe = { activePositionCount, activePositions: activePositions.map((p) => ({ symbol: p.symbol, strategyName: p.strategyName })) };
        return activePositionCount >= 1 ? "at most one position at a time" : null;
      },
    ],
    callbacks: {
      onRejected: () => {
        emit({ event: "risk-checked", ...probe });
        stops.forEach((stop) => stop());
        // A live session never ends by itself (it polls every few seconds): exit explicitly.
        setImmediate(() => process.exit(0));
      },
    },
  });

  let getSignalCalls = 0;
  let restored = false;
  const row = (signal) => ({
    id: signal.id,
    position: signal.position,
    priceOpen: signal.originalPriceOpen ?? signal.priceOpen,
    priceTakeProfit: signal.priceTakeProfit,
    priceStopLoss: signal.priceStopLoss,
  });
  kit.addStrategySchema({
    strategyName: STRATEGY,
    interval: "1m",
    riskName: RISK,
    getSignal: async (_symbol, _when, currentPrice) => {
      getSignalCalls++;
      if (args.phase !== "open" || getSignalCalls > 1) return null;
      return { position: "long", priceTakeProfit: currentPrice * 1.05, priceStopLoss: currentPrice * 0.95, minuteEstimatedTime: 1440 };
    },
    callbacks: {
      // After the pending signal, the strategy snapshot and the risk positions were written.
      onOpen: (_symbol, signal) => {
        if (args.phase !== "open") fail("a new position was opened instead of restoring the old one");
        emit({ event: "opened", signal: row(signal), getSignalCalls });
        process.kill(process.pid, "SIGKILL");
      },
      // Fires when the framework restores a pending signal from storage at start-up.
      onActive: (_symbol, signal) => {
        if (args.phase !== "restore" || restored) return;
        restored = true;
        emit({ event: "restored", signal: row(signal), getSignalCalls });
        // A second strategy under the same risk profile: it is refused only if the profile
        // still counts the restored position.
        stops.push(kit.Live.background("ETHUSDT", { strategyName: `${STRATEGY}-2`, exchangeName: EXCHANGE }));
      },
    },
  });
  kit.addStrategySchema({
    strategyName: `${STRATEGY}-2`,
    interval: "1m",
    riskName: RISK,
    getSignal: async (_symbol, _when, currentPrice) => ({ position: "long", priceTakeProfit: currentPrice * 1.05, priceStopLoss: currentPrice * 0.95, minuteEstimatedTime: 60 }),
  });

  emit({ event: "started", backend: args.backend, pid: process.pid });
  stops.push(kit.Live.background(SYMBOL, { strategyName: STRATEGY, exchangeName: EXCHANGE }));
}

// ---------------------------------------------------------------------------------------------
// Parent: run both phases and check what they saw.

function runPhase(args, phase) {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [__filename, "--phase", phase, "--backend", phase === "open" ? args.backend : args.restoreBackend, "--dir", args.dir, "--run-id", args.runId, "--style", args.style],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const events = [];
    let buffered = "";
    proc.stdout.setEncoding("utf8").on("data", (chunk) => {
      buffered += chunk;
      const lines = buffered.split("\n");
      buffered = lines.pop();
      for (const line of lines) if (line.trim()) events.push(JSON.parse(line));
    });
    proc.on("error", reject);
    proc.on("close", (code, signal) => resolve({ code, signal, events }));
  });
}

async function parent(args) {
  args.runId = crypto.randomUUID();
  args.dir ??= fs.mkdtempSync(path.join(os.tmpdir(), `backtest-kit-rs-demo-${args.backend}-`));
  fs.mkdirSync(args.dir, { recursive: true });
  const say = (text) => args.json || console.log(text);
  const summary = { backend: args.backend, restoreBackend: args.restoreBackend, dir: args.dir, runId: args.runId, ok: false };
  const finish = (ok, reason) => {
    summary.ok = ok;
    if (reason) summary.reason = reason;
    if (args.json) console.log(JSON.stringify(summary));
    else console.log(ok ? "\nOK: the position survived a SIGKILL through backtest-kit-rs." : `\nFAILED: ${reason}`);
    process.exitCode = ok ? 0 : 1;
  };

  const backends = args.restoreBackend === args.backend ? args.backend : `${args.backend}, then ${args.restoreBackend}`;
  say(`backtest-kit live mode, state in backtest-kit-rs (${backends}); working directory ${args.dir}`);
  say("[1/3] open: starting a live session; the strategy opens a long position");
  const open = await runPhase(args, "open");
  const opened = open.events.find((e) => e.event === "opened");
  summary.open = { signal: open.signal, code: open.code, events: open.events };
  if (!opened) return finish(false, `no position was opened: ${JSON.stringify(open.events)}`);
  say(`      opened ${opened.signal.id} at ${opened.signal.priceOpen.toFixed(4)} (TP ${opened.signal.priceTakeProfit.toFixed(4)}, SL ${opened.signal.priceStopLoss.toFixed(4)})`);
  say(`[2/3] crash: the process was killed by ${open.signal ?? `exit code ${open.code}`} right after the position was persisted`);
  if (open.signal !== "SIGKILL") return finish(false, `the open phase ended with ${open.signal ?? open.code}, not SIGKILL`);

  say("[3/3] restore: a new process starts the same session");
  const restore = await runPhase(args, "restore");
  summary.restore = { code: restore.code, events: restore.events };
  const restored = restore.events.find((e) => e.event === "restored");
  const risk = restore.events.find((e) => e.event === "risk-checked");
  if (!restored) return finish(false, `nothing was restored: ${JSON.stringify(restore.events)}`);
  const same = JSON.stringify(restored.signal) === JSON.stringify(opened.signal);
  say(`      restored ${restored.signal.id} at ${restored.signal.priceOpen.toFixed(4)}: ${same ? "the same position" : "A DIFFERENT POSITION"}; getSignal was called ${restored.getSignalCalls} times`);
  if (risk) say(`      the risk profile counts ${risk.activePositionCount} active position(s): ${risk.activePositions.map((p) => `${p.symbol}/${p.strategyName}`).join(", ")}`);
  if (!same) return finish(false, "the restored position differs from the opened one");
  if (restored.getSignalCalls !== 0) return finish(false, "getSignal was called: a new position was considered");
  if (!risk || risk.activePositionCount !== 1) return finish(false, "the risk profile does not count the restored position");
  if (restore.code !== 0) return finish(false, `the restore phase exited with ${restore.code}`);
  finish(true);
}

const args = parseArgs(process.argv.slice(2));
(args.phase ? Promise.resolve().then(() => child(args)) : parent(args)).catch((err) => {
  console.error(err);
  process.exit(1);
});
