// RustRedisPersist on a Redis Cluster (3 primaries + 3 replicas, started here on free loopback
// ports) and replica-acknowledged writes (WAIT) on a cluster and on a single server with a
// replica. The shared conformance suite runs on the cluster as on every backend.
import { randomUUID } from "node:crypto";
import path from "node:path";
import Redis from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";

import { createRedisPersist } from "../index.js";
import { persistConformance } from "./conformance";
import { collect, expectRestoredPosition, makeTempDir, optionsError, removeDir, runBacktest, runLiveDemo, sleep, startWriter } from "./helpers";
import { startRedisServer, type RedisServer } from "./redis-server";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startRedisCluster } = require("../dev/redis-cluster.cjs");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { isPayload } = require("./fixtures/backends.cjs");


let cluster: { nodes: string[]; ports: number[]; stop(): Promise<void> };
let inspector: InstanceType<typeof Redis.Cluster>;

// Replicas sync at once (Redis waits 5 s for more replicas before a diskless sync by default,
// and a write waiting for a replica's acknowledgement would wait that long).
const FAST_SYNC = ["--repl-diskless-sync-delay", "0"];

/** Until every replica's link to its primary is up (its first sync done). */
async function replicasOnline(clients: Redis[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const client of clients) {
    while (!/master_link_status:up/.test(await client.info("replication"))) {
      if (Date.now() > deadline) throw new Error("replicas did not come online");
      await sleep(50);
    }
  }
}

beforeAll(async () => {
  cluster = await startRedisCluster(FAST_SYNC);
  inspector = new Redis.Cluster(cluster.ports.map((port) => ({ host: "127.0.0.1", port })));
  await new Promise((resolve) => inspector.once("ready", resolve));
  await replicasOnline(inspector.nodes("slave"));
}, 60_000);
afterAll(async () => {
  inspector?.disconnect();
  await cluster?.stop();
});

/** Every key under `prefix` on the cluster's primaries, with its hash. */
async function clusterDump(prefix: string): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {};
  for (const node of inspector.nodes("master")) {
    for (const key of (await node.keys(`${prefix}:*`)).sort()) out[key] = await node.hgetall(key);
  }
  return out;
}

persistConformance(
  "RustRedisPersist on a Redis Cluster",
  async () => {
    const prefix = `bkrs-cluster-${randomUUID()}`;
    const Ctor = createRedisPersist({ cluster: cluster.nodes, prefix });
    const root = await makeTempDir("cluster");
    return {
      Ctor,
      root,
      snapshot: () => clusterDump(prefix),
      cleanup: async () => {
        await Ctor.close();
        await removeDir(root);
      },
    };
  },
  { strictIds: true, errorCodes: true, extras: true, issueOrder: true },
);

describe("layout on a cluster", () => {
  it("keeps an entity and its quarantine in one slot (a hash tag), and lists it with HKEYS", async () => {
    const prefix = `bkrs-slot-${randomUUID()}`;
    const Persist = createRedisPersist({ cluster: cluster.nodes, prefix });
    try {
      const store = new Persist("BTCUSDT_s1_ex1", "./dump/data/signal/");
      await store.waitForInit(true);
      for (let i = 0; i < 50; i++) await store.writeValue(`id${i}`, { i });
      const key = `${prefix}:{["dump/data/signal","BTCUSDT_s1_ex1"]}`;
      expect(await inspector.hlen(key)).toBe(50);
      const slot = await inspector.cluster("KEYSLOT", key);
      expect(await inspector.cluster("KEYSLOT", `${prefix}:quarantine:{["dump/data/signal","BTCUSDT_s1_ex1"]}`)).toBe(slot);
      expect(await collect(store.keys())).toHaveLength(50);
    } finally {
      await Persist.close();
    }
  });

  it("refuses options that cannot work on a cluster, and url together with cluster", () => {
    const refused = (options: object) => optionsError(createRedisPersist, options)?.code;
    expect(refused({ cluster: cluster.nodes, prefix: "a{b}" })).toBe("PERSIST_INVALID_CONFIG");
    expect(refused({ cluster: cluster.nodes, url: "redis://127.0.0.1:1" })).toBe("PERSIST_INVALID_CONFIG");
    expect(refused({ cluster: [] })).toBe("PERSIST_INVALID_CONFIG");
    expect(refused({ cluster: ["http://x"] })).toBe("PERSIST_INVALID_CONFIG");
    expect(refused({ replicasTimeoutMs: 100 })).toBe("PERSIST_INVALID_CONFIG");
  });
});

describe("a password-protected cluster", () => {
  it("works with the password in the seed URLs; a wrong one is PERSIST_AUTH, and neither is ever shown", { timeout: 60_000 }, async () => {
    const password = "cluster-pw-5e2d";
    const own = await startRedisCluster(FAST_SYNC, password);
    const seeds = (secret: string) => own.ports.map((port: number) => `redis://:${secret}@127.0.0.1:${port}`);
    const Right = createRedisPersist({ cluster: seeds(password), prefix: "auth" });
    const Wrong = createRedisPersist({ cluster: seeds("not-the-cluster-pw"), prefix: "auth", connectTimeoutMs: 2000 });
    try {
      expect(JSON.stringify(Right.options)).not.toContain(password);
      const store = new Right("e", "ns");
      await store.waitForInit(true);
      // Ids spread over the cluster's slots would not matter here: one entity, one slot; several
      // entities reach several primaries, each connection authenticated.
      for (let i = 0; i < 10; i++) await new Right(`e${i}`, "ns").writeValue("k", { i });
      for (let i = 0; i < 10; i++) expect(await new Right(`e${i}`, "ns").readValue("k")).toEqual({ i });
      const err: any = await new Wrong("e", "ns").readValue("k").catch((e) => e);
      expect(err?.code, err?.message).toBe("PERSIST_AUTH");
      expect(err.message).not.toContain("not-the-cluster-pw");
    } finally {
      await Right.close();
      await Wrong.close();
      await own.stop();
    }
  });
});

describe("replica-acknowledged writes", () => {
  it("on a cluster: resolve once the replica has the write; more replicas than exist reject clearly", async () => {
    const prefix = `bkrs-wait-${randomUUID()}`;
    const One = createRedisPersist({ cluster: cluster.nodes, prefix, replicas: 1 });
    const Two = createRedisPersist({ cluster: cluster.nodes, prefix, replicas: 2, replicasTimeoutMs: 200 });
    try {
      const store = new One("e", "ns");
      await store.waitForInit(true);
      for (let i = 0; i < 20; i++) await store.writeValue(`k${i}`, { i });
      expect(await store.readValue("k19")).toEqual({ i: 19 });

      const greedy = new Two("e", "ns");
      const started = Date.now();
      const err: any = await greedy.writeValue("k0", { i: "again" }).catch((e) => e);
      expect(err.code).toBe("PERSIST_NOT_REPLICATED");
      expect(err.message).toMatch(/1 of 2 replicas.*may be lost/);
      expect(Date.now() - started).toBeLessThan(5000);
      // The primary took it: the error says the write may survive, and here it did.
      expect(await store.readValue("k0")).toEqual({ i: "again" });
    } finally {
      await One.close();
      await Two.close();
    }
  });

  it("on a single server with a replica: the same", async () => {
    const primary: RedisServer = await startRedisServer(FAST_SYNC);
    const replica: RedisServer = await startRedisServer(["--replicaof", "127.0.0.1", String(primary.port)]);
    const probe = new Redis(replica.url);
    const One = createRedisPersist({ url: primary.url, replicas: 1, replicasTimeoutMs: 5000 });
    const Two = createRedisPersist({ url: primary.url, replicas: 2, replicasTimeoutMs: 200 });
    try {
      await replicasOnline([probe]);
      const store = new One("e", "ns");
      await store.waitForInit(true);
      await store.writeValue("k", { v: 1 });
      // Acknowledged by the replica: it answers with the value at once.
      expect(await probe.hget('backtest-kit:["ns","e"]', "k")).toBe('{"v":1}');
      const err: any = await new Two("e", "ns").writeValue("k", { v: 2 }).catch((e) => e);
      expect(err.code).toBe("PERSIST_NOT_REPLICATED");
    } finally {
      probe.disconnect();
      await One.close();
      await Two.close();
      await replica.stop();
      await primary.stop();
    }
  });
});

describe("end to end with backtest-kit on the cluster (BACKTEST_KIT_RS_REDIS_CLUSTER)", () => {
  const clusterEnv = () => {
    const env: NodeJS.ProcessEnv = { ...process.env, BACKTEST_KIT_RS_REDIS_CLUSTER: cluster.nodes.join(",") };
    delete env.BACKTEST_KIT_RS_REDIS_URL;
    delete env.REDIS_URL;
    return env;
  };
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir("cluster-e2e");
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it("live mode: opens a position, is SIGKILLed, and restores it and its risk slot", async () => {
    const summary = await runLiveDemo(dir, "redis", "redis", clusterEnv());
    const opened = expectRestoredPosition(summary);
    // Stored on the cluster, under the hash-tag layout.
    const stored = await inspector.hget(`demo-${summary.runId}:{["dump/data/signal","BTCUSDT_demo-breakout_demo-exchange"]}`, "BTCUSDT");
    expect(JSON.parse(stored!).id).toBe(opened.id);
  });

  it("backtest mode: closed trades identical to backtest-kit's own storage, cold, warm and from another process", async () => {
    // One prefix for the cluster runs, so the later processes find what the first one stored.
    const env = { ...clusterEnv(), BKRS_REDIS_PREFIX: `bt-${randomUUID()}` };
    const backtest = (backend: string, runs: number) => runBacktest(backend, path.join(dir, backend), runs, env);
    const [reference] = await backtest("default", 1);
    const [cold, warm] = await backtest("redis", 2);
    const [nextProcess] = await backtest("redis", 1);
    expect(reference.closedTrades).toBeGreaterThan(10);
    for (const [label, result] of [["cold", cold], ["warm", warm], ["next process", nextProcess]] as const) {
      expect(result.hash, label).toBe(reference.hash);
    }
    expect(cold.getCandlesCalls).toBeGreaterThan(0);
    expect(warm.getCandlesCalls, "the warm run reads the candles the cold one stored").toBe(0);
    expect(nextProcess.getCandlesCalls, "so does another process").toBe(0);
  });
});

/** The port of the primary that owns `key`'s slot now. */
async function ownerOf(client: InstanceType<typeof Redis.Cluster>, key: string): Promise<number> {
  const slot = (await client.cluster("KEYSLOT", key)) as number;
  const ranges = (await client.cluster("SLOTS")) as Array<[number, number, [string, number]]>;
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  if (!range) throw new Error(`no owner for slot ${slot}`);
  return range[2][1];
}

describe("resharding", () => {
  it(
    "moving the slot of an entity being written to another primary: no error reaches the writers, nothing acknowledged is lost",
    { timeout: 120_000 },
    async () => {
      // Two writers on one entity (one hash tag, so one slot): one with replicas: 1 (each write
      // and its WAIT go as one pipeline), one without (single commands).
      const run = randomUUID();
      const writers = [1, 0].map((replicas) => {
        const prefix = `bkrs-reshard-${replicas}-${run}`;
        return { prefix, writer: startWriter([JSON.stringify({ cluster: cluster.nodes, prefix, replicas }), "each"], {}, "redis-writer.cjs") };
      });
      const key = `${writers[0].prefix}:{["ns","failover"]}`;
      const node = (port: number) => inspector.nodes("master").find((n) => n.options.port === port)!;
      try {
        for (const { writer } of writers) {
          await writer.ready;
          await writer.untilAck(20);
        }
        const slot = (await inspector.cluster("KEYSLOT", key)) as number;
        const from = await ownerOf(inspector, key);
        const to = inspector.nodes("master").map((n) => n.options.port!).find((port) => port !== from)!;
        const [fromId, toId] = await Promise.all([node(from).cluster("MYID"), node(to).cluster("MYID")]);
        // The steps of `redis-cli --cluster reshard`, with pauses so that writes meet each state:
        // migrating with the hashes still on the source, then moved (ASK), then the new owner (MOVED).
        await node(to).cluster("SETSLOT", slot, "IMPORTING", fromId);
        await node(from).cluster("SETSLOT", slot, "MIGRATING", toId);
        await sleep(500);
        const acksWhileMigrating = writers.map(({ writer }) => writer.lastAck());
        const keys = (await node(from).cluster("GETKEYSINSLOT", slot, 1000)) as string[];
        expect(keys).toEqual(expect.arrayContaining(writers.map(({ prefix }) => `${prefix}:{["ns","failover"]}`)));
        await node(from).call("MIGRATE", "127.0.0.1", to, "", 0, 5000, "KEYS", ...keys);
        await sleep(1000);
        for (const port of [to, from, ...inspector.nodes("master").map((n) => n.options.port!).filter((p) => p !== to && p !== from)]) {
          await node(port).cluster("SETSLOT", slot, "NODE", toId);
        }
        for (const [i, { writer }] of writers.entries()) {
          expect(writer.lastAck(), "writes went on while the hash moved").toBeGreaterThan(acksWhileMigrating[i] + 10);
          await writer.untilAck(writer.lastAck() + 20);
        }
        expect(await ownerOf(inspector, key)).toBe(to);
        for (const { writer } of writers) {
          writer.child.kill("SIGKILL");
          await writer.exited;
          expect(writer.failures()).toEqual([]);
        }
        for (const { prefix, writer } of writers) {
          const Persist = createRedisPersist({ cluster: cluster.nodes, prefix });
          try {
            const store = new Persist("failover", "ns");
            const missing: number[] = [];
            for (let seq = 0; seq <= writer.lastAck(); seq++) {
              const value = await store.readValue(`k${seq}`);
              if (!isPayload(value) || value.seq !== seq) missing.push(seq);
            }
            expect(missing, `${prefix}: acknowledged writes lost`).toEqual([]);
          } finally {
            await Persist.close();
          }
        }
      } finally {
        for (const { writer } of writers) writer.child.kill("SIGKILL");
      }
    },
  );
});

describe("failover", () => {

  it(
    "with replicas: 1, killing the primary of a live entity loses no acknowledged write; the promoted replica takes writes (10 times)",
    { timeout: 300_000 },
    async () => {
      for (let round = 0; round < 10; round++) {
        const own = await startRedisCluster(FAST_SYNC);
        const client = new Redis.Cluster(own.ports.map((port: number) => ({ host: "127.0.0.1", port })));
        const prefix = `bkrs-failover-${round}`;
        const key = `${prefix}:{["ns","failover"]}`;
        const writer = startWriter([JSON.stringify({ cluster: own.nodes, prefix }), "one"], {}, "redis-writer.cjs");
        try {
          await writer.ready;
          await writer.untilAck(20);
          const victim = await ownerOf(client, key);
          const failedBefore = writer.failures().length;
          await own.kill(victim);
          // Writes fail as unavailable for the failover window; then the promoted replica takes
          // them in the same process, but it has no replica of its own to acknowledge them, so
          // with replicas: 1 they are PERSIST_NOT_REPLICATED (taken, not yet safe).
          await until(() => writer.failures().slice(failedBefore).some((f) => f.startsWith("PERSIST_NOT_REPLICATED ")), 30_000);
          writer.child.kill("SIGKILL");
          await writer.exited;
          const acked = writer.lastAck();
          const Persist = createRedisPersist({ cluster: own.nodes.filter((n: string) => !n.endsWith(`:${victim}`)), prefix });
          try {
            const store = new Persist("failover", "ns");
            const value = await store.readValue("k");
            expect(isPayload(value)).toBe(true);
            expect(value.seq).toBeGreaterThanOrEqual(acked);
            await store.writeValue("after", { round }); // without replicas: acknowledged by the new primary
            expect(await store.readValue("after")).toEqual({ round });
          } finally {
            await Persist.close();
          }
          // Only these, for the failover window: nothing that looks like a broken store.
          expect(writer.failures().filter((f) => !/^PERSIST_(UNAVAILABLE|NOT_REPLICATED) /.test(f))).toEqual([]);
        } finally {
          writer.child.kill("SIGKILL");
          client.disconnect();
          await own.stop();
        }
      }
    },
  );
});


async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the failover");
    await sleep(50);
  }
}
