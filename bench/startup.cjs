"use strict";
// W10: start-up with a large candle cache. One symbol's 1-minute candles (200,000: under five
// months) are stored through usePersist; then a fresh process times its first candle read —
// the instance's waitForInit plus a one-candle window — as every backtest or bot start pays it
// per symbol and interval. Target: at most 50 ms on every backend, whatever the count.
// The page cache is dropped before each measured start when this process may do so (root on
// Linux); the table says which.
//
//   node bench/startup.cjs                 standalone: private redis-server, table
//   BENCH_QUICK=1 node bench/startup.cjs   20,000 candles, for checking the harness
//
// As a module: runStartupBench({ redisUrl, root, quick }) -> results; formatStartupTable(results).
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { promisify } = require("node:util");
const execFile = promisify(require("node:child_process").execFile);

// "file-validating" is the reference: a subclass overriding waitForInit takes the generic path,
// whose waitForInit validates every document, as before read-time validation (and as PersistBase).
const SUBJECTS = ["file", "sqlite", "redis", "file-validating"];
const LABEL = {
  file: "RustFilePersist",
  sqlite: "RustSqlitePersist",
  redis: "createRedisPersist",
  "file-validating": "reference: RustFilePersist on the generic path (validates every candle at init)",
};
const TARGET_MS = 50;
const EXCHANGE = "bench-synth";
const SYMBOL = "BTCUSDT";
const START = Date.parse("2024-01-01T00:00:00Z");
const CHUNK = 5000;

/** The backend class a child uses; Redis keys are prefixed per workdir so runs never meet. */
function backendFor(name, workdir, redisUrl) {
  const { RustFilePersist, RustSqlitePersist, createRedisPersist } = require("../index.js");
  if (name === "file") return RustFilePersist;
  if (name === "file-validating") {
    return class ValidatingFilePersist extends RustFilePersist {
      waitForInit(initial) {
        return super.waitForInit(initial);
      }
    };
  }
  if (name === "sqlite") return RustSqlitePersist;
  return createRedisPersist({ url: redisUrl, prefix: `bench-startup-${path.basename(workdir)}` });
}

const candle = (ts) => {
  const open = 100 + Math.sin(ts / 3.6e6);
  return { timestamp: ts, open, high: open + 0.05, low: open - 0.05, close: open + 0.01, volume: 1 + ((ts / 60e3) % 7) };
};

/** Child: store `count` candles through usePersist, in the framework's own write calls. */
async function seed(name, workdir, redisUrl, count) {
  process.chdir(workdir);
  const kit = require("backtest-kit");
  const { usePersist } = require("../index.js");
  // The reference stores the same files through the fast path (its own would take minutes).
  const Backend = backendFor(name === "file-validating" ? "file" : name, workdir, redisUrl);
  usePersist(kit, Backend, { domains: ["candle"], candleCache: 0 });
  for (let first = 0; first < count; first += CHUNK) {
    const list = Array.from({ length: Math.min(CHUNK, count - first) }, (_, i) => candle(START + (first + i) * 60e3));
    await kit.PersistCandleAdapter.writeCandlesData(list, SYMBOL, "1m", EXCHANGE);
  }
  await Backend.close?.();
  return { seeded: count };
}

/** Child: a fresh process's first candle read (waitForInit + a one-candle window), in ms. */
async function firstRead(name, workdir, redisUrl, count) {
  process.chdir(workdir);
  const kit = require("backtest-kit");
  const { usePersist } = require("../index.js");
  const Backend = backendFor(name, workdir, redisUrl);
  usePersist(kit, Backend, { domains: ["candle"] });
  const since = START + Math.floor(count / 2) * 60e3;
  const started = process.hrtime.bigint();
  const window = await kit.PersistCandleAdapter.readCandlesData(SYMBOL, "1m", EXCHANGE, 1, since, since + 60e3);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  await Backend.close?.();
  // A miss would mean the measurement read nothing: the seeding failed.
  if (!window || window.length !== 1 || window[0].timestamp !== since) throw new Error(`${name}: the seeded candle was not found`);
  return { ms };
}

async function child(mode, ...args) {
  const { stdout } = await execFile(process.execPath, [__filename, `--${mode}`, ...args], { maxBuffer: 16 * 2 ** 20, timeout: 15 * 60e3 });
  return JSON.parse(stdout.trim().split("\n").pop());
}

/** Drop the page cache (root on Linux only); false when not permitted. */
function dropPageCache() {
  try {
    require("node:child_process").execFileSync("sync");
    fs.writeFileSync("/proc/sys/vm/drop_caches", "3");
    return true;
  } catch {
    return false;
  }
}

async function runStartupBench({ redisUrl, root, quick = process.env.BENCH_QUICK === "1", reps = 3 } = {}) {
  const count = quick ? 20_000 : 200_000;
  const subjects = SUBJECTS.filter((s) => s !== "redis" || redisUrl);
  const results = { count, reps, subjects, coldPageCache: true, runs: {} };
  for (const name of subjects) {
    const workdir = fs.mkdtempSync(path.join(root, `startup-${name}-`));
    const seedStarted = Date.now();
    await child("seed", name, workdir, redisUrl ?? "", String(count));
    const seedSeconds = (Date.now() - seedStarted) / 1000;
    const times = [];
    // The reference takes seconds per start; one is enough to show the difference.
    for (let rep = 0; rep < (name === "file-validating" ? 1 : reps); rep++) {
      results.coldPageCache = dropPageCache() && results.coldPageCache;
      times.push((await child("first-read", name, workdir, redisUrl ?? "", String(count))).ms);
    }
    results.runs[name] = { times, seedSeconds };
    process.stderr.write(`W10 ${name}: ${times.map((t) => t.toFixed(1)).join(", ")} ms (seeded in ${seedSeconds.toFixed(0)} s)\n`);
    fs.rmSync(workdir, { recursive: true, force: true });
  }
  return results;
}

function formatStartupTable(results) {
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const lines = [
    `W10 start-up: a fresh process's first candle read (waitForInit + a one-candle window) with ${results.count.toLocaleString("en-US")} one-minute candles of the symbol stored; ` +
      `${results.coldPageCache ? "page cache dropped before each start" : "page cache NOT dropped (not permitted here)"}; median of ${results.reps} (target: ≤ ${TARGET_MS} ms)`,
    "",
    "| storage | first read | runs | target |",
    "|---|---:|---|---:|",
  ];
  for (const name of results.subjects) {
    const { times } = results.runs[name];
    const ms = median(times);
    const verdict = name === "file-validating" ? "–" : ms <= TARGET_MS ? "met" : "MISSED";
    lines.push(`| ${LABEL[name]} | ${ms.toFixed(1)} ms | ${times.map((t) => t.toFixed(1)).join(", ")} | ${verdict} |`);
  }
  return lines.join("\n");
}

module.exports = { runStartupBench, formatStartupTable };

const modes = { "--seed": seed, "--first-read": firstRead };
if (require.main === module) {
  const mode = modes[process.argv[2]];
  const run = mode
    ? async () => {
        const [name, workdir, redisUrl, count] = process.argv.slice(3);
        console.log(JSON.stringify(await mode(name, workdir, redisUrl, Number(count))));
        process.exit(0);
      }
    : async () => {
        const { startRedisServer } = require("../dev/redis-server.cjs");
        const redis = await startRedisServer();
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "bkrs-startup-"));
        try {
          console.log(formatStartupTable(await runStartupBench({ redisUrl: redis.url, root })));
        } finally {
          await redis.stop();
          fs.rmSync(root, { recursive: true, force: true });
        }
      };
  run().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
