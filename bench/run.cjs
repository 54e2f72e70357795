"use strict";
// `npm run bench`: our backends against the JavaScript peers a user would otherwise pick, in one
// run, interleaved, with repetitions. Prints medians and ratios; writes raw results as JSON.
// Every operation is preceded by waitForInit(false), as backtest-kit does.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { randomUUID } = require("node:crypto");
const { promisify } = require("node:util");
const execFile = promisify(require("node:child_process").execFile);
const { PersistBase } = require("backtest-kit");

const { createMongoPersist, createPostgresPersist, createRedisPersist, createS3Persist, createSqlitePersist, RustFilePersist } = require("..");
const { startRedisServer } = require("../dev/redis-server.cjs");
const { signalRow } = require("../dev/signal-row.cjs");
const { createBetterSqlitePersist, createIoredisPersist, createMinioPersist, createMongoDriverPersist, createPgPersist } = require("./peers.cjs");
const { runBacktestBench, formatBacktestTable } = require("./backtest.cjs");
const { runStartupBench, formatStartupTable } = require("./startup.cjs");
const { startRedisCluster } = require("../dev/redis-cluster.cjs");
const { startPostgres } = require("../dev/postgres-server.cjs");
const { startMongo } = require("../dev/mongo-server.cjs");
const { startS3 } = require("../dev/s3-server.cjs");

const REPS = Number(process.env.BENCH_REPS ?? 3);
const QUICK = process.env.BENCH_QUICK === "1"; // smaller sizes, for checking the harness itself
const scale = (n) => (QUICK ? Math.max(1, Math.round(n / 20)) : n);
const TIME_BOX_MS = QUICK ? 300 : 2000;

const PAYLOAD_BYTES = JSON.stringify(signalRow(0)).length;

const hr = () => Number(process.hrtime.bigint()) / 1e6;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
function shuffled(items, seed) {
  const out = [...items];
  let x = seed * 2654435761 + 1;
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Run `op(n)` one at a time until `limit` runs or the time box; operations per second. */
async function sequentialRate(limit, op) {
  let done = 0;
  const started = hr();
  while (done < limit && hr() - started < TIME_BOX_MS) await op(done++);
  return (done / (hr() - started)) * 1000;
}

/** Run `op(n)` from 64 concurrent loops until `limit` runs or the time box; operations per second. */
async function concurrentRate(limit, op) {
  let done = 0;
  const started = hr();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (done < limit && hr() - started < TIME_BOX_MS) await op(done++);
    }),
  );
  return (done / (hr() - started)) * 1000;
}

/** Write `entries` quickly for workloads that need data in place (not measured). */
async function preload(Ctor, entityName, baseDir, entries) {
  if (typeof Ctor.bulkLoad === "function") return Ctor.bulkLoad(entityName, baseDir, entries);
  const store = new Ctor(entityName, baseDir);
  await store.waitForInit(true);
  for (let i = 0; i < entries.length; i += 64) {
    await Promise.all(entries.slice(i, i + 64).map(([id, value]) => store.writeValue(id, value)));
  }
}

// ---------------------------------------------------------------------------------------------
// Subjects: each `open(root)` gives { Ctor, close(), preloadWith? } in a fresh namespace.

function subjects({ redisUrl, clusterNodes, postgresUrl, mongoUrl, s3 } = {}) {
  const sqlite = (synchronous) => (root) => {
    const Ctor = createSqlitePersist({ path: path.join(root, "rust.sqlite"), synchronous });
    return { Ctor, close: () => Ctor.close() };
  };
  const better = (synchronous) => (root) => {
    const Ctor = createBetterSqlitePersist({ path: path.join(root, "better.sqlite"), synchronous });
    return { Ctor, close: async () => Ctor.close() };
  };
  return [
    { name: "RustFilePersist", peer: "PersistBase", open: () => ({ Ctor: RustFilePersist, close: async () => {} }), ours: true },
    { name: "PersistBase", open: () => ({ Ctor: PersistBase, close: async () => {}, preloadWith: RustFilePersist }) },
    { name: "RustSqlitePersist FULL", peer: "better-sqlite3 FULL", open: sqlite("FULL"), ours: true },
    { name: "better-sqlite3 FULL", open: better("FULL") },
    { name: "RustSqlitePersist NORMAL", peer: "better-sqlite3 NORMAL", open: sqlite("NORMAL"), ours: true },
    { name: "better-sqlite3 NORMAL", open: better("NORMAL") },
    {
      name: "RustRedisPersist",
      peer: "ioredis",
      ours: true,
      open: () => {
        const Ctor = createRedisPersist({ url: redisUrl, prefix: `bench-${randomUUID()}` });
        return { Ctor, close: () => Ctor.close() };
      },
    },
    {
      name: "ioredis",
      open: () => {
        const Ctor = createIoredisPersist({ url: redisUrl, prefix: `bench-${randomUUID()}` });
        return { Ctor, close: async () => Ctor.close() };
      },
    },
    // A private PostgreSQL (synchronous_commit on, fsync on): ours against node-postgres.
    ...(postgresUrl !== undefined
      ? [
          {
            name: "RustPostgresPersist",
            peer: "pg",
            ours: true,
            postgres: true,
            open: () => {
              const Ctor = createPostgresPersist({ url: postgresUrl, table: `bench_${randomUUID().replace(/-/g, "")}` });
              return { Ctor, close: () => Ctor.close() };
            },
          },
          {
            name: "pg",
            postgres: true,
            open: () => {
              const Ctor = createPgPersist({ url: postgresUrl, table: `bench_${randomUUID().replace(/-/g, "")}` });
              return { Ctor, close: () => Ctor.close() };
            },
          },
        ]
      : []),
    // A private MongoDB-wire server (nx-27017): ours against the mongodb driver.
    ...(mongoUrl !== undefined
      ? [
          {
            name: "RustMongoPersist",
            peer: "mongodb driver",
            ours: true,
            external: true,
            open: () => {
              const Ctor = createMongoPersist({ url: mongoUrl, collection: `bench_${randomUUID().replace(/-/g, "")}` });
              return { Ctor, close: () => Ctor.close() };
            },
          },
          {
            name: "mongodb driver",
            external: true,
            open: () => {
              const Ctor = createMongoDriverPersist({ url: mongoUrl, collection: `bench_${randomUUID().replace(/-/g, "")}` });
              return { Ctor, close: () => Ctor.close() };
            },
          },
        ]
      : []),
    // A private S3 server (s3s-fs): ours against the MinIO client.
    ...(s3 !== undefined
      ? [
          {
            name: "RustS3Persist",
            peer: "minio",
            ours: true,
            external: true,
            open: () => {
              const Ctor = createS3Persist({ ...s3, prefix: `bench-${randomUUID()}` });
              return { Ctor, close: () => Ctor.close() };
            },
          },
          {
            name: "minio",
            external: true,
            open: () => {
              const Ctor = createMinioPersist({ ...s3, prefix: `bench-${randomUUID()}` });
              return { Ctor, close: () => Ctor.close() };
            },
          },
        ]
      : []),
    // The same on a 3-primary + 3-replica Redis Cluster, and what replicas: 1 (WAIT) costs.
    ...(clusterNodes
      ? [
          {
            name: "RustRedisPersist cluster",
            peer: "ioredis Cluster",
            ours: true,
            cluster: true,
            open: () => {
              const Ctor = createRedisPersist({ cluster: clusterNodes, prefix: `bench-${randomUUID()}` });
              return { Ctor, close: () => Ctor.close() };
            },
          },
          {
            name: "RustRedisPersist cluster replicas:1",
            peer: "RustRedisPersist cluster",
            ours: true,
            cluster: true,
            open: () => {
              const Ctor = createRedisPersist({ cluster: clusterNodes, prefix: `bench-${randomUUID()}`, replicas: 1 });
              return { Ctor, close: () => Ctor.close() };
            },
          },
          {
            name: "ioredis Cluster",
            cluster: true,
            open: () => {
              const Ctor = createIoredisPersist({ cluster: clusterNodes, prefix: `bench-${randomUUID()}` });
              return { Ctor, close: async () => Ctor.close() };
            },
          },
        ]
      : []),
  ];
}

// ---------------------------------------------------------------------------------------------
// Workloads: each returns { value, unit, higherIsBetter, extra? } for one run.

const workloads = [
  {
    id: "W1",
    title: "sequential writes to one id",
    unit: "ops/s",
    async run({ Ctor, base }) {
      const store = new Ctor("w1_s1_ex1", base);
      await store.waitForInit(true);
      const latencies = [];
      const limit = scale(2000);
      const started = hr();
      for (let i = 0; i < limit && hr() - started < TIME_BOX_MS; i++) {
        const t = hr();
        await store.waitForInit(false);
        await store.writeValue("BTCUSDT", signalRow(i));
        latencies.push(hr() - t);
      }
      const elapsed = hr() - started;
      return { value: (latencies.length / elapsed) * 1000, extra: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) } };
    },
  },
  {
    id: "W2",
    title: "64 instances × 50 writes, 64 in flight",
    unit: "ops/s",
    async run({ Ctor, base }) {
      const perInstance = scale(50);
      const stores = Array.from({ length: 64 }, (_, i) => new Ctor(`w2_${i}`, base));
      await Promise.all(stores.map((s) => s.waitForInit(true)));
      const started = hr();
      await Promise.all(
        stores.map(async (store, i) => {
          for (let n = 0; n < perInstance; n++) {
            await store.waitForInit(false);
            await store.writeValue("BTCUSDT", signalRow(i * 1000 + n));
          }
        }),
      );
      return { value: ((64 * perInstance) / (hr() - started)) * 1000 };
    },
  },
  {
    id: "W3s",
    title: "reads, sequential (100 ids)",
    unit: "ops/s",
    async run({ Ctor, base, preloadCtor }) {
      await preload(preloadCtor, "w3", base, Array.from({ length: 100 }, (_, i) => [`id${i}`, signalRow(i)]));
      const store = new Ctor("w3", base);
      await store.waitForInit(true);
      const value = await sequentialRate(scale(20000), async (n) => {
        await store.waitForInit(false);
        await store.readValue(`id${n % 100}`);
      });
      return { value };
    },
  },
  {
    id: "W3p",
    title: "reads, 64 in flight (100 ids)",
    unit: "ops/s",
    async run({ Ctor, base, preloadCtor }) {
      await preload(preloadCtor, "w3", base, Array.from({ length: 100 }, (_, i) => [`id${i}`, signalRow(i)]));
      const store = new Ctor("w3", base);
      await store.waitForInit(true);
      const value = await concurrentRate(scale(40000), async (n) => {
        await store.waitForInit(false);
        await store.readValue(`id${n % 100}`);
      });
      return { value };
    },
  },
  {
    id: "W4",
    title: "hasValue, sequential (half missing)",
    unit: "ops/s",
    async run({ Ctor, base, preloadCtor }) {
      await preload(preloadCtor, "w4", base, Array.from({ length: 50 }, (_, i) => [`id${i}`, signalRow(i)]));
      const store = new Ctor("w4", base);
      await store.waitForInit(true);
      const value = await sequentialRate(scale(20000), async (n) => {
        await store.waitForInit(false);
        await store.hasValue(`id${n % 100}`);
      });
      return { value };
    },
  },
  {
    id: "W5",
    title: "keys() over 1,000 ids",
    unit: "ms",
    lowerIsBetter: true,
    async run({ Ctor, base, preloadCtor }) {
      const count = scale(1000);
      await preload(preloadCtor, "w5", base, Array.from({ length: count }, (_, i) => [i, { i }]));
      const store = new Ctor("w5", base);
      await store.waitForInit(true);
      const times = [];
      const started = hr();
      while (times.length < 20 && hr() - started < TIME_BOX_MS) {
        const t = hr();
        let n = 0;
        for await (const _ of store.keys()) n++;
        times.push(hr() - t);
        if (n !== count) throw new Error(`keys() listed ${n} of ${count}`);
      }
      return { value: median(times) };
    },
  },
  {
    id: "W6",
    title: "cold waitForInit over 5,000 entries",
    unit: "ms",
    lowerIsBetter: true,
    async run({ Ctor, base, preloadCtor, close }) {
      const count = scale(5000);
      await preload(preloadCtor, "w6", base, Array.from({ length: count }, (_, i) => [`id${i}`, signalRow(i)]));
      const times = [];
      for (let i = 0; i < 3; i++) {
        await close(); // databases and connections closed: the next init opens them
        const store = new Ctor("w6", base);
        const t = hr();
        await store.waitForInit(true);
        times.push(hr() - t);
      }
      return { value: median(times) };
    },
  },
  {
    id: "W7",
    title: "candle cache: 10,000 × (hasValue + insert), then 10,000 × (hasValue + readValue)",
    unit: "ms",
    lowerIsBetter: true,
    async run({ Ctor, base }) {
      const count = scale(10000);
      const store = new Ctor("binance/BTCUSDT/1m", base);
      await store.waitForInit(true);
      const since = Date.UTC(2025, 0, 1);
      const started = hr();
      for (let i = 0; i < count; i++) {
        const timestamp = since + i * 60_000;
        await store.waitForInit(false);
        if (!(await store.hasValue(timestamp))) {
          await store.writeValue(timestamp, { timestamp, open: 42000 + i, high: 42010 + i, low: 41990 + i, close: 42005 + i, volume: 12.5 });
        }
      }
      const written = hr();
      for (let i = 0; i < count; i++) {
        const timestamp = since + i * 60_000;
        await store.waitForInit(false);
        if (await store.hasValue(timestamp)) await store.readValue(timestamp);
      }
      const ended = hr();
      return { value: ended - started, extra: { writeMs: written - started, readMs: ended - written } };
    },
  },
];

/** W8: RSS and heap after 1,000,000 mixed operations against after the first 10,000 (ours only). */
async function memoryWorkload(subject, root) {
  const { Ctor, close } = subject.open(root);
  const store = new Ctor("w8", path.join(root, "data"));
  await store.waitForInit(true);
  for (let i = 0; i < 100; i++) await store.writeValue(`id${i}`, signalRow(i));
  const total = QUICK ? 20_000 : 1_000_000;
  let done = 0;
  // Run `until` operations from 64 concurrent loops (88% read, 10% has, 2% write).
  const runUntil = (until) =>
    Promise.all(
      Array.from({ length: 64 }, async (_, worker) => {
        let n = worker + done;
        while (done < until) {
          const id = `id${n++ % 100}`;
          await store.waitForInit(false);
          const pick = n % 100;
          if (pick < 2) await store.writeValue(id, signalRow(n));
          else if (pick < 12) await store.hasValue(id);
          else await store.readValue(id);
          done++;
        }
      }),
    );
  // Both samples at a quiet point (all operations settled, a short idle, a full GC), so that
  // buffers of operations in flight are not counted as growth.
  const sample = async () => {
    await new Promise((resolve) => setTimeout(resolve, 250));
    global.gc?.();
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed };
  };
  // Each side is the median of three such samples (RSS of glibc-allocated memory is noisy).
  const medianSample = (samples) => ({
    rss: median(samples.map((m) => m.rss)),
    heapUsed: median(samples.map((m) => m.heapUsed)),
  });
  const started = hr();
  const earlySamples = [];
  for (const until of [10_000, 15_000, 20_000]) {
    await runUntil(until);
    earlySamples.push(await sample());
  }
  const lateSamples = [];
  for (const until of [total - 10_000, total - 5_000, total]) {
    await runUntil(until);
    lateSamples.push(await sample());
  }
  const early = medianSample(earlySamples);
  const late = medianSample(lateSamples);
  await close();
  return {
    ops: done,
    seconds: (hr() - started) / 1000,
    early,
    late,
    rssGrowthPct: ((late.rss - early.rss) / early.rss) * 100,
    heapGrowthPct: ((late.heapUsed - early.heapUsed) / early.heapUsed) * 100,
  };
}

/**
 * W9: backtest-kit's notification list through usePersist: 500 notifications written, then the
 * same 500 with one changed (the framework rewrites the whole list on every new notification).
 * Counts what the second write cost: documents written and commits (stats()), and its time.
 */
async function notificationWorkload(redisUrl, root) {
  const kit = require("backtest-kit");
  const { usePersist, useDefaultPersist } = require("..");
  const subjectsW9 = [
    { name: "PersistBase", Ctor: null },
    { name: "RustFilePersist", Ctor: RustFilePersist },
    { name: "RustSqlitePersist FULL", Ctor: createSqlitePersist({ path: path.join(root, "w9.sqlite") }) },
    { name: "RustRedisPersist", Ctor: createRedisPersist({ url: redisUrl, prefix: `w9-${randomUUID()}` }) },
  ];
  const cwd = process.cwd();
  const results = [];
  try {
    for (const { name, Ctor } of subjectsW9) {
      const dir = fs.mkdtempSync(path.join(root, "w9-"));
      process.chdir(dir);
      if (Ctor) usePersist(kit, Ctor, { domains: ["notification"] });
      else useDefaultPersist(kit, ["notification"]);
      const list = Array.from({ length: scale(500) }, (_, i) => ({ id: `n${i}`, type: "signal.opened", createdAt: i, ...signalRow(i) }));
      await kit.PersistNotificationAdapter.writeNotificationData(list, true);
      list[list.length >> 1] = { ...list[list.length >> 1], note: "changed" };
      const before = Ctor?.stats();
      const started = hr();
      await kit.PersistNotificationAdapter.writeNotificationData(list, true);
      const ms = hr() - started;
      const after = Ctor?.stats();
      results.push({
        name,
        ms,
        writes: after ? after.writes - before.writes : list.length,
        commits: after ? after.commits - before.commits : list.length,
      });
      await Ctor?.close();
    }
  } finally {
    process.chdir(cwd);
    useDefaultPersist(kit, ["notification"]);
  }
  return results;
}

// ---------------------------------------------------------------------------------------------

const TARGETS = {
  RustFilePersist: { W1: 2, W2: 3, W3s: 2, W5: 10, W6: 10, W7: 3 },
  "RustSqlitePersist FULL": { W1: 1, W2: 4, W3s: 0.8, W3p: 1.2 },
  "RustSqlitePersist NORMAL": { W1: 1, W2: 4, W3s: 0.8, W3p: 1.2 },
  RustRedisPersist: { W1: 1, W2: 1.2, W3p: 1.2 },
  "RustRedisPersist cluster": {},
  RustPostgresPersist: { W1: 1, W2: 3, W3s: 1, W3p: 1 },
  RustMongoPersist: { W1: 1, W2: 1, W3s: 1, W3p: 1 },
  RustS3Persist: { W1: 1, W2: 1, W3s: 1, W3p: 1 },
  // Against our own cluster runs without replicas: the price of WAIT (no target).
  "RustRedisPersist cluster replicas:1": {},
};
/** Extra comparisons the targets ask for (W7 of SQLite against PersistBase). */
const CROSS = [{ subject: "RustSqlitePersist FULL", peer: "PersistBase", workload: "W7", target: 5 }];

function ratio(workload, ours, peer) {
  return workload.lowerIsBetter ? peer / ours : ours / peer;
}

async function main() {
  const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(",") : null;
  const redis = await startRedisServer();
  // A Redis Cluster for the cluster subjects (BENCH_CLUSTER=0 leaves them out).
  const cluster = process.env.BENCH_CLUSTER === "0" ? null : await startRedisCluster();
  // Private PostgreSQL, MongoDB-wire and S3 servers (BENCH_POSTGRES=0, BENCH_MONGO=0, BENCH_S3=0
  // leave their subjects out), started side by side.
  const [postgres, mongo, s3server] = await Promise.all([
    process.env.BENCH_POSTGRES === "0" ? null : startPostgres(),
    process.env.BENCH_MONGO === "0" ? null : startMongo(),
    process.env.BENCH_S3 === "0" ? null : startS3(),
  ]);
  const s3 = s3server
    ? { endpoint: s3server.endpoint, bucket: s3server.bucket("bench"), accessKeyId: s3server.accessKeyId, secretAccessKey: s3server.secretAccessKey }
    : undefined;
  const servers = { redisUrl: redis.url, clusterNodes: cluster?.nodes, postgresUrl: postgres?.url, mongoUrl: mongo?.url, s3 };
  const all = subjects(servers);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "bkrs-bench-"));
  const runStarted = Date.now();
  const raw = {};
  try {
    // The backtest first: the workloads below create and delete hundreds of thousands of files,
    // and on ext4 files created soon after mass deletions cost several times more (see
    // bench/backtest.cjs), which would be charged to the cold file backend.
    const backtest =
      !only || only.includes("BT")
        ? await runBacktestBench({ ...servers, reps: REPS, quick: QUICK })
        : null;
    for (const workload of workloads.filter((w) => !only || only.includes(w.id))) {
      const reps = workload.id === "W7" ? Math.min(REPS, 2) : REPS;
      for (let rep = 0; rep < reps; rep++) {
        for (const subject of shuffled(all, rep + workload.id.length)) {
          const dir = fs.mkdtempSync(path.join(root, "run-"));
          const opened = subject.open(dir);
          const preloadCtor = subject.preloadWith ?? opened.preloadWith ?? opened.Ctor;
          const result = await workload.run({ Ctor: opened.Ctor, base: path.join(dir, "data"), preloadCtor, close: opened.close });
          await opened.close();
          fs.rmSync(dir, { recursive: true, force: true });
          ((raw[workload.id] ??= {})[subject.name] ??= []).push(result);
          process.stderr.write(`${workload.id} rep ${rep + 1}/${reps} ${subject.name}: ${result.value.toFixed(1)} ${workload.unit}\n`);
        }
      }
    }
    const memory = {};
    if (!only || only.includes("W8")) {
      for (const subject of all.filter((s) => s.ours && !s.cluster && !s.postgres && !s.external)) {
        const dir = fs.mkdtempSync(path.join(root, "mem-"));
        // A fresh process each: memory the earlier workloads left behind would blur the growth.
        // V8's young generation grows to its working size (12 -> 37 MiB committed, measured)
        // in the first ~100k operations whatever the backend; pinning it measures the addon.
        const v8 = ["--expose-gc", "--min-semi-space-size=16", "--max-semi-space-size=16"];
        const { stdout } = await execFile(process.execPath, [...v8, __filename, "--w8", subject.name, redis.url, dir], {
          env: { ...process.env, BENCH_QUICK: QUICK ? "1" : "0" },
        });
        memory[subject.name] = JSON.parse(stdout);
        process.stderr.write(`W8 ${subject.name}: rss ${memory[subject.name].rssGrowthPct.toFixed(1)}%\n`);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    const notifications = !only || only.includes("W9") ? await notificationWorkload(redis.url, root) : [];
    const startup = !only || only.includes("W10") ? await runStartupBench({ redisUrl: redis.url, root, quick: QUICK, reps: REPS }) : null;
    report(raw, memory, notifications, startup, backtest, (Date.now() - runStarted) / 1000);
  } finally {
    await redis.stop();
    await cluster?.stop();
    await Promise.all([postgres?.destroy(), mongo?.destroy(), s3server?.destroy()]);
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function report(raw, memory, notifications, startup, backtest, seconds) {
  const med = (w, s) => (raw[w]?.[s] ? median(raw[w][s].map((r) => r.value)) : undefined);
  const rows = [];
  for (const workload of workloads) {
    if (!raw[workload.id]) continue;
    for (const [subject, targets] of Object.entries(TARGETS)) {
      const peer = subjects({ redisUrl: "", clusterNodes: [], postgresUrl: "", mongoUrl: "", s3: {} }).find((s) => s.name === subject)?.peer;
      const ours = med(workload.id, subject);
      const theirs = med(workload.id, peer);
      if (ours === undefined || theirs === undefined) continue;
      rows.push({ workload, subject, peer, ours, theirs, ratio: ratio(workload, ours, theirs), target: targets[workload.id] });
    }
    for (const cross of CROSS.filter((c) => c.workload === workload.id)) {
      const ours = med(workload.id, cross.subject);
      const theirs = med(workload.id, cross.peer);
      if (ours === undefined || theirs === undefined) continue;
      rows.push({ workload, subject: cross.subject, peer: cross.peer, ours, theirs, ratio: ratio(workload, ours, theirs), target: cross.target });
    }
  }
  const fmt = (v, unit) => (unit === "ms" ? `${v.toFixed(1)} ms` : `${Math.round(v).toLocaleString("en-US")}/s`);
  const machine = `${os.cpus().length} × ${os.cpus()[0].model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}, Node ${process.version}`;
  const lines = [];
  // The figure users feel leads: a real backtest, milliseconds per simulated minute.
  if (backtest) lines.push(formatBacktestTable(backtest), "");
  if (notifications.length) {
    lines.push(
      "W9 notification list: 500 written, then the same 500 with one changed (second write measured; target: at most 2 commits)",
      "",
      "| storage | documents written | commits (transactions / sync groups / round trips) | time | target |",
      "|---|---:|---:|---:|---:|",
    );
    for (const n of notifications) {
      const verdict = n.name === "PersistBase" ? "–" : n.commits <= 2 ? "met" : "MISSED";
      lines.push(`| ${n.name} | ${n.writes} | ${n.commits} | ${n.ms.toFixed(1)} ms | ${verdict} |`);
    }
    lines.push("");
  }
  if (startup) lines.push(formatStartupTable(startup), "");
  lines.push(
    `backtest-kit-rs benchmark — ${new Date().toISOString().slice(0, 10)} — ${machine}`,
    `payload ${PAYLOAD_BYTES} B ISignalRow; medians of ${REPS} interleaved repetitions (W7: ${Math.min(REPS, 2)}); ` +
      `time box ${TIME_BOX_MS} ms per run; run took ${seconds.toFixed(0)} s${QUICK ? "; QUICK sizes (not comparable)" : ""}`,
    "ratio = how many times better than the peer (throughput ÷, or time ÷ inverted)",
    "",
    "| workload | ours | peer | ours | peer | ratio | target |",
    "|---|---|---|---:|---:|---:|---:|",
  );
  for (const r of rows) {
    const verdict = r.target === undefined ? "–" : `${r.target}× ${r.ratio >= r.target ? "met" : "MISSED"}`;
    lines.push(`| ${r.workload.id} ${r.workload.title} | ${r.subject} | ${r.peer} | ${fmt(r.ours, r.workload.unit)} | ${fmt(r.theirs, r.workload.unit)} | ${r.ratio.toFixed(2)}× | ${verdict} |`);
  }
  const w1 = raw.W1;
  if (w1) {
    lines.push("", "W1 latency (median of runs): p50 / p99");
    for (const [subject, runs] of Object.entries(w1)) {
      lines.push(`- ${subject}: ${median(runs.map((r) => r.extra.p50)).toFixed(2)} ms / ${median(runs.map((r) => r.extra.p99)).toFixed(2)} ms`);
    }
  }
  if (Object.keys(memory).length) {
    lines.push("", "W8 memory after 1,000,000 mixed ops (88% read, 10% has, 2% write, 64 in flight) vs after the first 10,000 (medians of 3 quiet-point samples each side), fresh process per backend, V8 young generation pinned at 16 MiB (target: RSS growth < 10%)");
    for (const [subject, m] of Object.entries(memory)) {
      lines.push(
        `- ${subject}: RSS ${(m.early.rss / 2 ** 20).toFixed(0)} → ${(m.late.rss / 2 ** 20).toFixed(0)} MiB (${m.rssGrowthPct.toFixed(1)}%), ` +
          `heap ${(m.early.heapUsed / 2 ** 20).toFixed(1)} → ${(m.late.heapUsed / 2 ** 20).toFixed(1)} MiB; ${(m.ops / m.seconds).toFixed(0)} ops/s ${m.rssGrowthPct < 10 ? "met" : "MISSED"}`,
      );
    }
  }
  const text = lines.join("\n");
  console.log(text);
  const outDir = path.join(__dirname, "results");
  fs.mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const json = { date: new Date().toISOString(), machine, payloadBytes: PAYLOAD_BYTES, reps: REPS, quick: QUICK, raw, memory, notifications, startup, backtest, table: rows.map((r) => ({ ...r, workload: r.workload.id })) };
  fs.writeFileSync(path.join(outDir, `bench-${stamp}.json`), JSON.stringify(json, null, 2));
  fs.writeFileSync(path.join(outDir, "latest.md"), text + "\n");
  console.log(`\nraw results: bench/results/bench-${stamp}.json`);
}

const w8 = process.argv.indexOf("--w8");
const entry =
  w8 > 0
    ? async () => {
        // Child mode for W8: node bench/run.cjs --w8 <subject> <redisUrl> <dir>
        const [name, redisUrl, dir] = process.argv.slice(w8 + 1);
        const subject = subjects({ redisUrl }).find((s) => s.name === name);
        process.stdout.write(JSON.stringify(await memoryWorkload(subject, dir)));
      }
    : main;
entry().catch((err) => {
  console.error(err);
  process.exit(1);
});
