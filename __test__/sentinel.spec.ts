// RustRedisPersist on a primary found through Redis Sentinel (one primary, one replica, three
// sentinels, all password-protected, started here on free loopback ports): the shared conformance
// suite, options and failures, and failovers (SENTINEL FAILOVER and a killed primary) under a
// writing child process.
import { randomUUID } from "node:crypto";
import Redis from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { createRedisPersist } from "../index.js";
import { persistConformance } from "./conformance";
import { makeTempDir, optionsError, removeDir, sleep, startWriter } from "./helpers";
import { freePort } from "./redis-server";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startRedisSentinel } = require("../dev/redis-sentinel.cjs");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { isPayload } = require("./fixtures/backends.cjs");

interface SentinelSetup {
  masterName: string;
  dataPassword: string;
  sentinelPassword: string;
  dataPorts: number[];
  sentinels: string[];
  primaryPort(): Promise<number>;
  kill(port: number): Promise<void>;
  restartAsReplica(port: number, primary: number): Promise<void>;
  failover(): Promise<void>;
  settled(old?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

let setup: SentinelSetup;

beforeAll(async () => {
  setup = await startRedisSentinel();
}, 60_000);
afterAll(async () => {
  await setup?.stop();
});

const sentinelOptions = (extra: object = {}) => ({
  nodes: setup.sentinels,
  masterName: setup.masterName,
  password: setup.dataPassword,
  ...extra,
});

/** A client of the current primary, for looking at what is stored. */
async function primaryClient(): Promise<Redis> {
  return new Redis({ host: "127.0.0.1", port: await setup.primaryPort(), password: setup.dataPassword, lazyConnect: true });
}

persistConformance(
  "RustRedisPersist through Redis Sentinel",
  async () => {
    const prefix = `bkrs-sentinel-${randomUUID()}`;
    const Ctor = createRedisPersist({ sentinel: sentinelOptions(), prefix });
    const root = await makeTempDir("sentinel");
    return {
      Ctor,
      root,
      snapshot: async () => {
        const client = await primaryClient();
        try {
          const out: Record<string, Record<string, string>> = {};
          for (const key of (await client.keys(`${prefix}:*`)).sort()) out[key] = await client.hgetall(key);
          return out;
        } finally {
          client.disconnect();
        }
      },
      cleanup: async () => {
        await Ctor.close();
        await removeDir(root);
      },
    };
  },
  { strictIds: true, errorCodes: true, extras: true, issueOrder: true },
);

describe("sentinel options and failures", () => {
  const refusal = (options: object) => optionsError(createRedisPersist, options);

  it("refuses incomplete or conflicting sentinel options, naming what is wrong and never the password", () => {
    const cases: Array<[object, RegExp]> = [
      [{ sentinel: { masterName: "m" } }, /sentinel\.nodes/],
      [{ sentinel: { nodes: setup.sentinels } }, /masterName/],
      [{ sentinel: { nodes: setup.sentinels, masterName: "" } }, /masterName/],
      [{ sentinel: { nodes: [], masterName: "m" } }, /nodes/],
      [{ sentinel: sentinelOptions({ pasword: "x" }) }, /pasword/],
      [{ sentinel: sentinelOptions(), url: "redis://127.0.0.1:1" }, /one of url/],
      [{ sentinel: sentinelOptions(), cluster: ["redis://127.0.0.1:1"] }, /one of url/],
      [{ sentinel: { nodes: ["redis://127.0.0.1:1", "rediss://127.0.0.1:2"], masterName: "m" } }, /all be redis:\/\/ or all rediss/],
      [{ sentinel: { nodes: ["http://127.0.0.1:1"], masterName: "m" } }, /redis:\/\/ or rediss/],
      [{ sentinel: { nodes: ["redis://:a@127.0.0.1:1", "redis://:b@127.0.0.1:2"], masterName: "m" } }, /same user and password/],
      [{ sentinel: sentinelOptions({ password: 1234567 }) }, /password must be a string/],
      [{ sentinel: sentinelOptions({ db: -1 }) }, /db/],
      [{ sentinel: sentinelOptions(), tls: { ca: "-----BEGIN CERTIFICATE-----" } }, /rediss/],
    ];
    for (const [options, message] of cases) {
      const err = refusal(options);
      expect(err?.code, JSON.stringify(options)).toBe("PERSIST_INVALID_CONFIG");
      expect(err.message).toMatch(message);
      for (const secret of [setup.dataPassword, setup.sentinelPassword, "1234567"]) expect(err.message).not.toContain(secret);
    }
  });

  it("describes the configuration without credentials", () => {
    const described = createRedisPersist({ sentinel: sentinelOptions({ db: 3 }) }).options as any;
    expect(described.sentinel).toEqual({
      nodes: setup.sentinels.map((url) => url.replace(`:${setup.sentinelPassword}@`, "***@")),
      masterName: setup.masterName,
      credentials: true,
      db: 3,
    });
    const text = JSON.stringify(described);
    expect(text).not.toContain(setup.dataPassword);
    expect(text).not.toContain(setup.sentinelPassword);
  });

  it("uses the database it is given", async () => {
    const prefix = `bkrs-db-${randomUUID()}`;
    const Persist = createRedisPersist({ sentinel: sentinelOptions({ db: 5 }), prefix });
    const client = await primaryClient();
    try {
      await new Persist("e", "ns").writeValue("k", { v: 5 });
      await client.select(5);
      expect(await client.hget(`${prefix}:["ns","e"]`, "k")).toBe('{"v":5}');
    } finally {
      client.disconnect();
      await Persist.close();
    }
  });

  it("a wrong primary or sentinel password: PERSIST_AUTH, without the password", async () => {
    const WrongData = createRedisPersist({ sentinel: sentinelOptions({ password: "not-the-data-pw" }), connectTimeoutMs: 2000 });
    const wrongSentinels = setup.sentinels.map((url) => url.replace(setup.sentinelPassword, "not-the-sentinel-pw"));
    const WrongSentinel = createRedisPersist({ sentinel: sentinelOptions({ nodes: wrongSentinels }), connectTimeoutMs: 2000 });
    try {
      for (const [Persist, secret] of [
        [WrongData, "not-the-data-pw"],
        [WrongSentinel, "not-the-sentinel-pw"],
      ] as const) {
        const err: any = await new Persist("e", "ns").waitForInit(true).catch((e) => e);
        expect(err?.code, err?.message).toBe("PERSIST_AUTH");
        expect(err.message).not.toContain(secret);
      }
    } finally {
      await WrongData.close();
      await WrongSentinel.close();
    }
  });

  it("a master name the sentinels do not know, or no sentinel up: PERSIST_UNAVAILABLE within the timeout", async () => {
    const Unknown = createRedisPersist({ sentinel: sentinelOptions({ masterName: "nosuchmaster" }), connectTimeoutMs: 2000 });
    const downPort = await freePort();
    const Down = createRedisPersist({ sentinel: sentinelOptions({ nodes: [`redis://127.0.0.1:${downPort}`] }), connectTimeoutMs: 2000 });
    try {
      for (const Persist of [Unknown, Down]) {
        const started = Date.now();
        const err: any = await new Persist("e", "ns").readValue("k").catch((e) => e);
        expect(err?.code, err?.message).toBe("PERSIST_UNAVAILABLE");
        expect(err.message).toMatch(/sentinel, master/);
        expect(Date.now() - started).toBeLessThan(4000);
      }
    } finally {
      await Unknown.close();
      await Down.close();
    }
  });
});

describe("failover through the sentinels", () => {
  it(
    "with replicas: 1, a writing process keeps every acknowledged write across 3 SENTINEL FAILOVERs and 3 killed primaries, and carries on in the same process",
    { timeout: 300_000 },
    async () => {
      const prefix = `bkrs-sentinel-failover-${randomUUID()}`;
      const writer = startWriter([JSON.stringify({ sentinel: sentinelOptions(), prefix }), "each"], {}, "redis-writer.cjs");
      const windows: number[] = [];
      try {
        await writer.ready;
        await writer.untilAck(20);
        for (let round = 0; round < 6; round++) {
          const old = await setup.primaryPort();
          const failedBefore = writer.failures().length;
          const ackedBefore = writer.lastAck();
          const started = Date.now();
          if (round % 2 === 0) {
            await setup.failover();
          } else {
            await setup.kill(old);
            // The promoted replica has no replica of its own until the old primary comes back as
            // one: meanwhile writes are taken but PERSIST_NOT_REPLICATED.
            await until(async () => (await setup.primaryPort()) !== old, 30_000);
            await setup.restartAsReplica(old, await setup.primaryPort());
          }
          await setup.settled(old);
          // The same process carries on, on the new primary.
          await writer.untilAck(ackedBefore + 10, 30_000);
          windows.push(Date.now() - started);
          // Only these, for the failover window: nothing that looks like a broken store.
          expect(writer.failures().slice(failedBefore).filter((f) => !/^PERSIST_(UNAVAILABLE|NOT_REPLICATED) /.test(f))).toEqual([]);
        }
        writer.child.kill("SIGKILL");
        await writer.exited;
        const acked = writer.lastAck();
        const Persist = createRedisPersist({ sentinel: sentinelOptions(), prefix });
        try {
          const store = new Persist("failover", "ns");
          const missing: number[] = [];
          for (let seq = 0; seq <= acked; seq++) {
            const value = await store.readValue(`k${seq}`).catch(() => undefined);
            if (!isPayload(value) || value.seq !== seq) missing.push(seq);
          }
          expect({ lost: missing.length, first: missing.slice(0, 10) }, `acknowledged writes lost (of 0..${acked})`).toEqual({ lost: 0, first: [] });
        } finally {
          await Persist.close();
        }
        console.log(`sentinel failovers: acknowledged writes resumed (the old primary back as a replica) after ${windows.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(", ")}`);
      } finally {
        writer.child.kill("SIGKILL");
      }
    },
  );
});

async function until(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition().catch(() => false))) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the failover");
    await sleep(100);
  }
}
