// RustS3Persist beyond the shared suites: the object layout (backtest-kit's file layout in a bucket,
// with its key encoding), listing past one ListObjectsV2 page, create-only candle writes, healing
// beside the document, options and credentials (SigV4 checked by the server), and a server killed
// and restarted under load. The shared server is s3s-fs; the outage test starts its own.
import { randomUUID } from "node:crypto";
import * as kit from "backtest-kit";
import { describe, expect, inject, it } from "vitest";

import IORedis from "ioredis";

import { createRedisPersist, createS3Persist, setLogger, usePersist, useDefaultPersist } from "../index.js";
import { collect, optionsError, withEnv } from "./helpers";
import { outageUnderLoad } from "./outage";
import { s3Client, s3Dump, s3Options, s3Put, s3RemoveAll } from "./stores";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startS3 } = require("../dev/s3-server.cjs");

/** A class over the shared server under a fresh prefix; `done()` removes what it stored. */
function fresh(extra: object = {}) {
  const prefix = `s3spec-${randomUUID()}`;
  const Persist = createS3Persist({ ...s3Options(prefix), ...extra });
  return {
    prefix,
    Persist,
    done: async () => {
      await Persist.close();
      await s3RemoveAll(s3Client(), prefix);
    },
  };
}

describe("layout", () => {
  it("{prefix}/{namespace}/{entityName}/{id}.json holding the JSON text exactly as written; odd ids round-trip", async () => {
    const { prefix, Persist, done } = fresh();
    try {
      const store = new Persist("BTCUSDT_s1", "./dump/data/signal/");
      await store.waitForInit(true);
      await store.writeValue("1", { b: 1, a: [1.5, "2"], "é": null });
      const live = new Persist("", "./dump/data/session/");
      await live.writeValue("BTCUSDT_live", 5);
      // Characters S3 advises against are stored %-encoded, and decoded when listed.
      const odd = ["a#b", "50%", "x y", "[q]", "é"];
      for (const id of odd) await store.writeValue(id, id);
      const dump = await s3Dump(prefix);
      expect(dump[`${prefix}/dump/data/signal/BTCUSDT_s1/1.json`]).toBe('{"b":1,"a":[1.5,"2"],"é":null}');
      expect(dump[`${prefix}/dump/data/session/BTCUSDT_live.json`]).toBe("5");
      expect(dump[`${prefix}/dump/data/signal/BTCUSDT_s1/a%23b.json`]).toBe('"a#b"');
      expect(dump[`${prefix}/dump/data/signal/BTCUSDT_s1/50%25.json`]).toBe('"50%"');
      expect(Object.keys(dump)).toHaveLength(7);
      expect((await collect(store.keys())).sort()).toEqual(["1", ...odd].sort());
      for (const id of odd) expect(await store.readValue(id)).toBe(id);
      // The empty entity lists only its own documents, not the entities below it.
      expect(await collect(new Persist("", "./dump/data/signal/").keys())).toEqual([]);
    } finally {
      await done();
    }
  });

  it("lists an entity past one ListObjectsV2 page (1,000 keys)", { timeout: 60_000 }, async () => {
    const { Persist, done } = fresh();
    try {
      const store = new Persist("many", "ns");
      await store.waitForInit(true);
      const ids = Array.from({ length: 1234 }, (_, i) => `id-${String(i).padStart(4, "0")}`);
      for (let i = 0; i < ids.length; i += 100) await Promise.all(ids.slice(i, i + 100).map((id) => store.writeValue(id, 1)));
      expect((await collect(store.keys())).sort()).toEqual(ids);
    } finally {
      await done();
    }
  });

  it("candles are written create-only (If-None-Match): a cached candle is never replaced", async () => {
    const { prefix, Persist, done } = fresh();
    usePersist(kit, Persist, { domains: ["candle"] });
    try {
      const since = 1_767_225_600_000;
      const candles = Array.from({ length: 50 }, (_, i) => ({ timestamp: since + i * 60_000, open: 1, high: 2, low: 0.5, close: 1.5, volume: i }));
      await kit.PersistCandleAdapter.writeCandlesData(candles as any, "BTCUSDT", "1m", "ex");
      const key = `${prefix}/dump/data/candle/ex/BTCUSDT/1m/${since}.json`;
      const planted = JSON.stringify({ ...candles[0], volume: 999 });
      await s3Put(s3Client(), key, planted);
      const before = Persist.stats();
      await kit.PersistCandleAdapter.writeCandlesData(candles as any, "BTCUSDT", "1m", "ex");
      expect(Persist.stats()).toEqual(before);
      expect((await s3Dump(prefix))[key]).toBe(planted);
    } finally {
      useDefaultPersist(kit);
      await done();
    }
  });

  it("init moves objects that are not JSON aside beside them ({id}.json.corrupt-{ms}), logs them, and leaves the rest", async () => {
    const { prefix, Persist, done } = fresh();
    const warnings: string[] = [];
    setLogger({ warn: (message: string) => warnings.push(message) } as any);
    try {
      await new Persist("e", "ns").writeValue("good", { ok: true });
      await s3Put(s3Client(), `${prefix}/ns/e/torn.json`, '{"truncated":');
      await s3Put(s3Client(), `${prefix}/ns/e/notes.txt`, "not a document: never listed, never moved");
      const store = new Persist("e", "ns");
      await store.waitForInit(true);
      expect(await collect(store.keys())).toEqual(["good"]);
      const dump = await s3Dump(prefix);
      const moved = Object.keys(dump).filter((key) => key.startsWith(`${prefix}/ns/e/torn.json.corrupt-`));
      expect(moved).toHaveLength(1);
      expect(dump[moved[0]]).toBe('{"truncated":');
      expect(dump[`${prefix}/ns/e/torn.json`]).toBeUndefined();
      expect(dump[`${prefix}/ns/e/notes.txt`]).toBeDefined();
      expect(warnings.join("\n")).toMatch(/id=torn.*moved aside/);
      // A later init leaves what was moved aside alone.
      await new Persist("e", "ns").waitForInit(true);
      expect(Object.keys(await s3Dump(prefix))).toEqual(Object.keys(dump));
    } finally {
      setLogger(console as any);
      await done();
    }
  });
});

describe("options and credentials", () => {
  it("refuses bad options, naming what is wrong, never a secret", () => {
    const cases: Array<[object, RegExp]> = [
      [{ url: "https://bucket/x" }, /s3:\/\//],
      [{ url: "s3://bkt/x?regoin=eu" }, /regoin/],
      [{ bucket: "Not_A_Bucket" }, /bucket must be/],
      [{ bucket: "bkt", prefix: "a/../b" }, /prefix/],
      [{ bucket: "bkt", endpoint: "127.0.0.1:9000" }, /endpoint/],
      [{ bucket: "bkt", accessKeyId: "AKIA", secretAccessKey: undefined, sessionToken: "hunter2" }, /together/],
      [{ bucket: "bkt", pathstyle: true }, /pathstyle/],
    ];
    for (const [options, message] of cases) {
      const err = optionsError(createS3Persist, options);
      expect(err?.code, JSON.stringify(options)).toBe("PERSIST_INVALID_CONFIG");
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain("hunter2");
    }
    // No bucket yet is not an error for the class (the environment may name one later), but
    // making an instance without one is.
    withEnv({ BACKTEST_KIT_RS_S3_URL: undefined }, () => {
      const Persist = createS3Persist();
      expect((Persist.options as any).bucket).toBeNull();
      expect(() => new Persist("e", "ns")).toThrow(expect.objectContaining({ code: "PERSIST_INVALID_CONFIG" }));
    });
  });

  it("describes the options without credentials, and takes them from the URL and the AWS environment", () => {
    const env = {
      BACKTEST_KIT_RS_S3_URL: "s3://bot-state/live/a?region=eu-west-1&endpoint=http%3A%2F%2F127.0.0.1%3A9000",
      AWS_ACCESS_KEY_ID: "AKIAEXAMPLE",
      AWS_SECRET_ACCESS_KEY: "hunter2hunter2",
      AWS_SESSION_TOKEN: undefined,
    };
    withEnv(env, () => {
      const described = createS3Persist().options;
      expect(described).toEqual({
        bucket: "bot-state",
        prefix: "live/a",
        region: "eu-west-1",
        endpoint: "http://127.0.0.1:9000",
        pathStyle: true,
        credentials: "environment",
        connectTimeoutMs: 5000,
        commandTimeoutMs: 5000,
        encryption: false,
      });
      expect(JSON.stringify(described)).not.toMatch(/hunter2|AKIAEXAMPLE/);
      expect(createS3Persist({ prefix: "other", accessKeyId: "a", secretAccessKey: "b" }).options).toMatchObject({ prefix: "other", credentials: "options" });
    });
  });

  it("a wrong secret is PERSIST_AUTH (the server checks SigV4) and never shows; a missing bucket is named", async () => {
    const s3 = inject("s3");
    const Wrong = createS3Persist({ ...s3Options("auth"), secretAccessKey: "hunter2-wrong-secret" });
    const err: any = await new Wrong("e", "ns").waitForInit(true).catch((e) => e);
    expect(err?.code, err?.message).toBe("PERSIST_AUTH");
    expect(`${err.message} ${err.stack}`).not.toContain("hunter2");
    await Wrong.close();
    const NoBucket = createS3Persist({ ...s3Options("x"), bucket: "no-such-bucket" });
    const missing: any = await new NoBucket("e", "ns").waitForInit(true).catch((e) => e);
    expect(missing?.code, missing?.message).toBe("PERSIST_IO");
    expect(missing.message).toMatch(/NoSuchBucket|not found/i);
    await NoBucket.close();
    expect(s3.bucket).toBe("bkrs-test");
  });

  it("a server that is not there is PERSIST_UNAVAILABLE within the timeouts", async () => {
    const Persist = createS3Persist({ ...s3Options("x"), endpoint: "http://127.0.0.1:9", connectTimeoutMs: 500, commandTimeoutMs: 500 });
    const started = Date.now();
    const err: any = await new Persist("e", "ns").waitForInit(true).catch((e) => e);
    expect(err?.code, err?.message).toBe("PERSIST_UNAVAILABLE");
    expect(Date.now() - started).toBeLessThan(3000);
    await Persist.close();
  });
});

describe("outage", () => {
  it("a server killed under load: PERSIST_UNAVAILABLE within the timeouts, nothing unhandled; the same instances work once it is back", { timeout: 120_000 }, async () => {
    const server = await startS3();
    const Persist = createS3Persist({
      bucket: server.bucket("outage"),
      endpoint: server.endpoint,
      accessKeyId: server.accessKeyId,
      secretAccessKey: server.secretAccessKey,
      connectTimeoutMs: 1000,
      commandTimeoutMs: 1000,
    });
    try {
      await outageUnderLoad(Persist, { stop: () => server.stop("SIGKILL"), start: () => server.start() }, 2500);
    } finally {
      await Persist.close();
      await server.destroy();
    }
  });
});

describe("the guide's hybrid pattern", () => {
  it("usePersist(kit, { default: Redis, partial: S3 }): partial levels land in S3, the live signal in Redis", async () => {
    const redisPrefix = `hybrid-${randomUUID()}`;
    const Redis = createRedisPersist({ url: inject("redisUrl"), prefix: redisPrefix });
    const inspector = new IORedis(inject("redisUrl"));
    const { prefix, Persist, done } = fresh();
    usePersist(kit, { default: Redis, partial: Persist });
    try {
      const when = new Date("2026-01-05T00:00:00Z");
      const signal: any = { id: "sig-1", position: "long", priceOpen: 100, priceTakeProfit: 110, priceStopLoss: 95, minuteEstimatedTime: 60, symbol: "BTCUSDT" };
      const levels: any = { "sig-1": { profitLevels: [10, 20], lossLevels: [] } };
      await kit.PersistSignalAdapter.writeSignalData(signal, "BTCUSDT", "s1", "ex1");
      await kit.PersistPartialAdapter.writePartialData(levels, "BTCUSDT", "s1", "sig-1", "ex1", when);
      expect(await kit.PersistPartialAdapter.readPartialData("BTCUSDT", "s1", "sig-1", "ex1", when)).toEqual(levels);
      expect(await kit.PersistSignalAdapter.readSignalData("BTCUSDT", "s1", "ex1")).toMatchObject(signal);
      const objects = Object.keys(await s3Dump(prefix));
      expect(objects.length).toBeGreaterThan(0);
      expect(objects.every((key) => key.startsWith(`${prefix}/dump/data/partial/`)), objects.join()).toBe(true);
      const hashes = await inspector.keys(`${redisPrefix}:*`);
      expect(hashes.some((key) => key.includes('"dump/data/signal"')), hashes.join()).toBe(true);
      expect(hashes.some((key) => key.includes("partial")), hashes.join()).toBe(false);
    } finally {
      useDefaultPersist(kit);
      await Redis.close();
      const hashes = await inspector.keys(`${redisPrefix}:*`);
      if (hashes.length) await inspector.del(...hashes);
      inspector.disconnect();
      await done();
    }
  });
});
