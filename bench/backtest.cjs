"use strict";
// End-to-end backtest benchmark: milliseconds per simulated minute of a real backtest-kit
// Backtest.run (1-minute frame over one day, strategy reading 1m and 15m candles every 5m),
// with the candle cache on each backend. Every measured run is a fresh process
// (bench/backtest-child.cjs), so "cold" (empty store) and "warm" (the store the cold run left)
// both include the store's first open, as a user's next backtest would.
//
//   node bench/backtest.cjs              standalone: private redis-server, table, raw JSON
//   BENCH_REPS=1 BENCH_QUICK=1 node bench/backtest.cjs    2-hour frame, for checking the harness
//
// As a module: runBacktestBench({ redisUrl, reps, quick }) -> results;
// formatBacktestTable(results) -> markdown.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { randomUUID } = require("node:crypto");
const { promisify } = require("node:util");
const execFile = promisify(require("node:child_process").execFile);

const CHILD = path.join(__dirname, "backtest-child.cjs");
const SUBJECTS = ["floor", "default", "file", "file-adapters", "sqlite", "sqlite-adapters", "redis", "cluster", "postgres", "mongodb", "s3"];
const LABEL = {
  floor: "floor (no persistence)",
  default: "default (PersistBase)",
  file: "file (RustFilePersist)",
  sqlite: "sqlite (RustSqlitePersist)",
  "file-adapters": "file (PersistXAdapter.usePersistXAdapter(RustFilePersist))",
  "sqlite-adapters": "sqlite (PersistXAdapter.usePersistXAdapter(RustSqlitePersist))",
  redis: "redis (createRedisPersist)",
  cluster: "redis cluster (createRedisPersist, 3+3 nodes)",
  postgres: "postgres (createPostgresPersist)",
  mongodb: "mongodb (createMongoPersist, nx-27017)",
  s3: "s3 (createS3Persist, s3s-fs)",
};
const FULL_MINUTES = 1440;
const QUICK_MINUTES = 120;

// The targets. `maxVsFloor`: subject ÷ floor must not exceed it; `minSpeedup`:
// default ÷ subject must reach it.
const TARGETS = {
  file: { warm: { maxVsFloor: 1.1, minSpeedup: 10 }, cold: { maxVsFloor: 1.6 } },
  sqlite: { warm: { maxVsFloor: 1.1, minSpeedup: 10 }, cold: { maxVsFloor: 1.3 } },
  redis: { warm: { maxVsFloor: 1.3, minSpeedup: 10 }, cold: { maxVsFloor: 2 } },
  postgres: { warm: { maxVsFloor: 2 } },
};

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** One measured backtest in a fresh process; resolves to the child's JSON line. */
async function runChild(subject, workdir, minutes, { redisUrl, clusterNodes, postgresUrl, mongoUrl, s3 }) {
  const env = {
    ...process.env,
    BKRS_BENCH_REDIS_URL: redisUrl ?? "",
    BKRS_BENCH_REDIS_CLUSTER: (clusterNodes ?? []).join(","),
    BKRS_BENCH_POSTGRES_URL: postgresUrl ?? "",
    BKRS_BENCH_MONGO_URL: mongoUrl ?? "",
    BKRS_BENCH_S3: s3 ? JSON.stringify(s3) : "",
  };
  // Measure the backends' defaults, whatever the caller's shell configures.
  for (const name of Object.keys(env)) if (name.startsWith("BACKTEST_KIT_RS_")) delete env[name];
  const started = process.hrtime.bigint();
  let stdout;
  try {
    ({ stdout } = await execFile(process.execPath, [CHILD, subject, workdir, String(minutes)], {
      cwd: workdir,
      env,
      maxBuffer: 64 * 2 ** 20,
      timeout: 20 * 60e3,
    }));
  } catch (err) {
    const tail = String(err.stderr ?? "").trim().split("\n").slice(-15).join("\n");
    throw new Error(`backtest child ${subject} in ${workdir} failed (${err.code ?? err.signal ?? err.message}):\n${tail}`);
  }
  // The framework may log to stdout too; ours is the last line.
  const line = stdout.trim().split("\n").pop();
  return { ...JSON.parse(line), processMs: Number(process.hrtime.bigint() - started) / 1e6 };
}

/**
 * Run every subject `reps` times, interleaved (rep 1 of each, then rep 2, ...; the order rotates
 * per rep so no subject always goes first). Each rep of a subject is a cold run on a new workdir
 * (and Redis prefix) followed by a warm run on the same one. Redis is skipped without `redisUrl`.
 */
async function runBacktestBench({ reps = Number(process.env.BENCH_REPS ?? 3), quick = process.env.BENCH_QUICK === "1", ...servers } = {}) {
  const { redisUrl, clusterNodes, postgresUrl, mongoUrl, s3 } = servers;
  const minutes = quick ? QUICK_MINUTES : FULL_MINUTES;
  const available = { redis: redisUrl, cluster: clusterNodes, postgres: postgresUrl, mongodb: mongoUrl, s3 };
  // BENCH_SUBJECTS=floor,file,file-adapters: a subset, for a focused comparison in one run.
  const only = process.env.BENCH_SUBJECTS?.split(",").filter(Boolean);
  const subjects = SUBJECTS.filter((s) => (!(s in available) || available[s]) && (!only || only.includes(s)));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "bkrs-backtest-"));
  const started = Date.now();
  const runs = [];
  try {
    for (let rep = 1; rep <= reps; rep++) {
      const order = subjects.map((_, i) => subjects[(i + rep - 1) % subjects.length]);
      for (const subject of order) {
        // The workdir name also makes the Redis prefix, so it must be unique per (subject, rep).
        const workdir = path.join(root, `${subject}-${rep}-${randomUUID().slice(0, 8)}`);
        fs.mkdirSync(workdir);
        for (const phase of ["cold", "warm"]) {
          const result = await runChild(subject, workdir, minutes, servers);
          runs.push({ subject, rep, phase, ...result });
          process.stderr.write(
            `backtest rep ${rep}/${reps} ${subject} ${phase}: ${result.msPerMinute.toFixed(3)} ms/min, ` +
              `${result.closedTrades} trades, ${result.getCandlesCalls} exchange getCandles\n`,
          );
        }
        // Workdirs are removed only at the end: on ext4, creating files soon after thousands
        // were deleted costs several times more (the inode allocator skips recently freed
        // inodes), which would charge one subject's clean-up to the next subject's cold run.
      }
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  const results = {
    date: new Date().toISOString(),
    machine: machine(),
    reps,
    quick,
    minutes,
    subjects,
    seconds: (Date.now() - started) / 1000,
    runs,
  };
  results.summary = summarize(results);
  return results;
}

/** Medians, ratios, target verdicts and trade agreement, from the raw runs. */
function summarize({ runs, subjects }) {
  const of = (subject, phase) => runs.filter((r) => r.subject === subject && (!phase || r.phase === phase));
  const med = (subject, phase) => median(of(subject, phase).map((r) => r.msPerMinute));
  const hashesOf = (subject) => [...new Set(of(subject).map((r) => r.tradesHash))];
  const reference = (subject) => {
    const hashes = hashesOf(subject);
    return hashes.length === 1 ? hashes[0] : null;
  };
  const allHashes = [...new Set(runs.map((r) => r.tradesHash))];
  const perSubject = {};
  for (const subject of subjects) {
    const row = { hashes: hashesOf(subject), closedTrades: [...new Set(of(subject).map((r) => r.closedTrades))] };
    for (const phase of ["cold", "warm"]) {
      const ms = med(subject, phase);
      const target = TARGETS[subject]?.[phase] ?? {};
      const vsFloor = subjects.includes("floor") ? ms / med("floor", phase) : undefined;
      const speedup = subjects.includes("default") ? med("default", phase) / ms : undefined;
      row[phase] = {
        msPerMinute: ms,
        vsFloor,
        speedupVsDefault: speedup,
        maxVsFloor: target.maxVsFloor,
        vsFloorMet: target.maxVsFloor === undefined ? undefined : vsFloor <= target.maxVsFloor,
        minSpeedup: target.minSpeedup,
        speedupMet: target.minSpeedup === undefined ? undefined : speedup >= target.minSpeedup,
        getCandlesCalls: median(of(subject, phase).map((r) => r.getCandlesCalls)),
        errors: Math.max(...of(subject, phase).map((r) => r.errors)),
      };
    }
    row.sameAsDefault = row.hashes.length === 1 && row.hashes[0] === reference("default");
    row.sameAsFloor = row.hashes.length === 1 && row.hashes[0] === reference("floor");
    perSubject[subject] = row;
  }
  return { perSubject, tradesConsistent: allHashes.length === 1, distinctHashes: allHashes.length };
}

const x = (v) => (v === undefined || Number.isNaN(v) ? "–" : `${v.toFixed(2)}×`);
const verdict = (met) => (met ? "met" : "MISSED");

/** Markdown: the table and the target verdicts, for the README or the main bench's report. */
function formatBacktestTable(results) {
  const summary = results.summary ?? summarize(results);
  const span = results.minutes === FULL_MINUTES ? "one day" : `${results.minutes} minutes`;
  const lines = [
    `End-to-end backtest — backtest-kit Backtest.run, 1m frame over ${span} (${results.minutes} simulated minutes) from 2025-03-01, ` +
      `strategy every 5m reading 60×1m + 16×15m candles via getCandles; fresh process per run; ` +
      `medians of ${results.reps} interleaved repetition(s); run took ${results.seconds.toFixed(0)} s${results.quick ? "; QUICK (not comparable)" : ""}`,
    `${results.machine}`,
    "ms/min = milliseconds of Backtest.run per simulated minute (lower is better); ×floor = subject ÷ floor; speed-up = default ÷ subject; " +
      "cold = empty store, warm = next process on the store the cold run left",
    "",
    "| subject | cold ms/min | warm ms/min | cold ×floor (target) | warm ×floor (target) | speed-up vs default cold | speed-up vs default warm (target) | closed trades | trades = default | trades = floor | exchange getCandles cold / warm |",
    "|---|---:|---:|---:|---:|---:|---:|---:|:---:|:---:|---:|",
  ];
  for (const subject of results.subjects) {
    const row = summary.perSubject[subject];
    const withTarget = (value, limit, met, sign) => (limit === undefined ? x(value) : `${x(value)} (${sign}${limit} ${verdict(met)})`);
    const cells = [
      LABEL[subject],
      row.cold.msPerMinute.toFixed(3),
      row.warm.msPerMinute.toFixed(3),
      withTarget(row.cold.vsFloor, row.cold.maxVsFloor, row.cold.vsFloorMet, "≤"),
      withTarget(row.warm.vsFloor, row.warm.maxVsFloor, row.warm.vsFloorMet, "≤"),
      x(row.cold.speedupVsDefault),
      withTarget(row.warm.speedupVsDefault, row.warm.minSpeedup, row.warm.speedupMet, "≥"),
      row.closedTrades.join("/"),
      row.sameAsDefault ? "yes" : "**NO**",
      row.sameAsFloor ? "yes" : "**NO**",
      `${row.cold.getCandlesCalls} / ${row.warm.getCandlesCalls}`,
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  lines.push("");
  lines.push(
    summary.tradesConsistent
      ? `Trades: identical in all ${results.runs.length} runs (sha256 ${results.runs[0].tradesHash.slice(0, 16)}…).`
      : `**Trades DIFFER**: ${summary.distinctHashes} distinct trade hashes across runs — a correctness failure.`,
  );
  // A warm persisted run should not need the exchange at all; non-zero means cache misses.
  const leaky = results.subjects.filter((s) => s !== "floor" && summary.perSubject[s].warm.getCandlesCalls > 0);
  if (leaky.length) lines.push(`Warm runs still calling the exchange (candle cache misses): ${leaky.join(", ")}.`);
  const erring = results.subjects.filter((s) => summary.perSubject[s].cold.errors || summary.perSubject[s].warm.errors);
  if (erring.length) lines.push(`Framework errors reported (listenError; e.g. swallowed cache failures): ${erring.join(", ")}.`);
  return lines.join("\n");
}

function machine() {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}, Node ${process.version}`;
}

async function main() {
  const { startRedisServer } = require("../dev/redis-server.cjs");
  const { startRedisCluster } = require("../dev/redis-cluster.cjs");
  const redis = await startRedisServer();
  const cluster = process.env.BENCH_CLUSTER === "0" ? null : await startRedisCluster();
  const { startPostgres } = require("../dev/postgres-server.cjs");
  const { startMongo } = require("../dev/mongo-server.cjs");
  const { startS3 } = require("../dev/s3-server.cjs");
  const [postgres, mongo, s3server] = await Promise.all([
    process.env.BENCH_POSTGRES === "0" ? null : startPostgres(),
    process.env.BENCH_MONGO === "0" ? null : startMongo(),
    process.env.BENCH_S3 === "0" ? null : startS3(),
  ]);
  let results;
  try {
    const s3 = s3server && { endpoint: s3server.endpoint, bucket: s3server.bucket("bench"), accessKeyId: s3server.accessKeyId, secretAccessKey: s3server.secretAccessKey };
    results = await runBacktestBench({ redisUrl: redis.url, clusterNodes: cluster?.nodes, postgresUrl: postgres?.url, mongoUrl: mongo?.url, s3 });
  } finally {
    await redis.stop();
    await cluster?.stop();
    await Promise.all([postgres?.destroy(), mongo?.destroy(), s3server?.destroy()]);
  }
  console.log(formatBacktestTable(results));
  const outDir = path.join(__dirname, "results");
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `backtest-${results.date.replace(/[:.]/g, "-")}.json`);
  fs.writeFileSync(file, JSON.stringify(results, null, 2));
  console.log(`\nraw results: ${path.relative(process.cwd(), file)}`);
  if (!results.summary.tradesConsistent) process.exitCode = 1;
}

module.exports = { runBacktestBench, formatBacktestTable, summarize };

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
