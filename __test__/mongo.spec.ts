// RustMongoPersist beyond the shared suites: the stored document's exact shape (no field a server
// could retype), batch reads and writes as one command each, healing into the quarantine
// collection, options and credentials, and a server killed and restarted under load. The shared
// server is nx-27017 (a MongoDB wire-protocol server over SQLite); the outage test starts its own.
import { randomUUID } from "node:crypto";
import * as kit from "backtest-kit";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { MongoClient } from "mongodb";

import { createMongoPersist, setLogger, usePersist, useDefaultPersist } from "../index.js";
import { collect, optionsError, withEnv } from "./helpers";
import { outageUnderLoad } from "./outage";
import { mongoClient, mongoKey } from "./stores";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startMongo } = require("../dev/mongo-server.cjs");

const uniqueCollection = () => `c_${randomUUID().replace(/-/g, "")}`;

let inspector: MongoClient;
beforeAll(async () => {
  inspector = await mongoClient();
});
afterAll(async () => {
  await inspector?.close();
});

const documents = (collection: string) => inspector.db("backtest_kit").collection<{ _id: string; v: unknown }>(collection);

describe("layout", () => {
  it("one document per id: _id is the JSON [namespace, entity, id], v the JSON text exactly as written", async () => {
    const collection = uniqueCollection();
    const Persist = createMongoPersist({ url: inject("mongoUrl"), collection });
    try {
      const store = new Persist("BTCUSDT_s1", "./dump/data/signal/");
      await store.waitForInit(true);
      // Numeric-looking ids and values are where a server could turn a string into a number.
      await store.writeValue("1", 5);
      await store.writeValue("007", { b: 1, a: [1.5, "2"], "é": null });
      const stored = await documents(collection).find({}).sort({ _id: 1 }).toArray();
      expect(stored).toEqual([
        { _id: mongoKey("dump/data/signal", "BTCUSDT_s1", "007"), v: '{"b":1,"a":[1.5,"2"],"é":null}' },
        { _id: mongoKey("dump/data/signal", "BTCUSDT_s1", "1"), v: "5" },
      ]);
      for (const doc of stored) {
        expect(typeof doc._id).toBe("string");
        expect(typeof doc.v).toBe("string");
      }
      expect(await store.readValue("1")).toBe(5);
      expect(await collect(store.keys())).toEqual(["1", "007"]); // PersistBase's order: numeric ids by value
    } finally {
      await Persist.close();
      await documents(collection).drop();
    }
  });

  it("a candle window is one find and its write one update command, whatever its length", async () => {
    const collection = uniqueCollection();
    const Persist = createMongoPersist({ url: inject("mongoUrl"), collection });
    usePersist(kit, Persist, { domains: ["candle"] });
    try {
      const since = 1_767_225_600_000;
      const candles = Array.from({ length: 500 }, (_, i) => ({ timestamp: since + i * 60_000, open: 1, high: 2, low: 0.5, close: 1.5, volume: i }));
      const before = Persist.stats();
      await kit.PersistCandleAdapter.writeCandlesData(candles as any, "BTCUSDT", "1m", "ex");
      const after = Persist.stats();
      expect(after.writes - before.writes).toBe(500);
      expect(after.commits - before.commits).toBe(1);
      // Written again: create-only, so nothing is written.
      await kit.PersistCandleAdapter.writeCandlesData(candles as any, "BTCUSDT", "1m", "ex");
      expect(Persist.stats()).toEqual(after);
      expect(await kit.PersistCandleAdapter.readCandlesData("BTCUSDT", "1m", "ex", 500, since, since + 500 * 60_000)).toEqual(candles);
      expect(await documents(collection).countDocuments()).toBe(500);
    } finally {
      useDefaultPersist(kit);
      await Persist.close();
      await documents(collection).drop();
    }
  });

  it("init moves documents that are not JSON texts aside into {collection}_quarantine, logs them, and leaves the rest", async () => {
    const collection = uniqueCollection();
    const Persist = createMongoPersist({ url: inject("mongoUrl"), collection });
    const warnings: string[] = [];
    setLogger({ warn: (message: string) => warnings.push(message) } as any);
    try {
      await new Persist("e", "ns").writeValue("good", { ok: true });
      const planted = [
        { _id: mongoKey("ns", "e", "torn"), v: '{"truncated":' },
        { _id: mongoKey("ns", "e", "number"), v: 5 },
        { _id: mongoKey("ns", "e", "none"), other: "x" },
      ];
      await documents(collection).insertMany(planted as any);
      // Not ours: another entity's range is never touched.
      await documents(collection).insertOne({ _id: mongoKey("ns", "other", "x"), v: "not json" });
      const store = new Persist("e", "ns");
      await store.waitForInit(true);
      expect(await collect(store.keys())).toEqual(["good"]);
      const moved = await inspector.db("backtest_kit").collection(`${collection}_quarantine`).find({}).toArray();
      expect(moved.map((m) => m.document).sort((a, b) => (a._id < b._id ? -1 : 1))).toEqual(
        [...planted].sort((a, b) => (a._id < b._id ? -1 : 1)),
      );
      for (const id of ["torn", "number", "none"]) expect(warnings.join("\n")).toMatch(new RegExp(`id=${id}.*moved aside`));
      expect(await documents(collection).countDocuments({ _id: mongoKey("ns", "other", "x") })).toBe(1);
    } finally {
      setLogger(console as any);
      await Persist.close();
      await documents(collection).drop();
      await inspector.db("backtest_kit").collection(`${collection}_quarantine`).drop().catch(() => undefined);
    }
  });
});

describe("options and credentials", () => {
  it("refuses bad options, naming what is wrong, never the password", () => {
    const cases: Array<[object, RegExp]> = [
      [{ url: "postgres://u:hunter2@h/db" }, /mongodb:\/\//],
      [{ url: "mongodb://u:hunter2@h/db?w=0" }, /w=0/],
      [{ url: "mongodb://u:hunter2@h/db?connectTimeoutMS=soon" }, /connectTimeoutMS/i],
      [{ database: "a.b" }, /database must be/],
      [{ collection: "system.users" }, /collection must be/],
      [{ colection: "x" }, /colection/],
      [{ commandTimeoutMs: 0 }, /commandTimeoutMs/],
    ];
    for (const [options, message] of cases) {
      const err = optionsError(createMongoPersist, options);
      expect(err?.code, JSON.stringify(options)).toBe("PERSIST_INVALID_CONFIG");
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain("hunter2");
    }
  });

  it("describes the options without credentials, and takes the URL from the environment", () => {
    expect(createMongoPersist({ url: "mongodb+srv://bot:hunter2@cluster0.example.net/trading?w=majority", collection: "bot_a" }).options).toEqual({
      url: "mongodb+srv://***@cluster0.example.net/trading?w=majority",
      database: "trading",
      collection: "bot_a",
      connectTimeoutMs: 5000,
      commandTimeoutMs: 5000,
      encryption: false,
    });
    withEnv({ BACKTEST_KIT_RS_MONGO_URL: undefined, MONGODB_URI: "mongodb://a:hunter2@from-mongodb-uri/db" }, () => {
      expect((createMongoPersist().options as any).url).toBe("mongodb://***@from-mongodb-uri/db");
      withEnv({ BACKTEST_KIT_RS_MONGO_URL: "mongodb://from-our-variable/" }, () => {
        expect(createMongoPersist().options).toMatchObject({ url: "mongodb://from-our-variable/", database: "backtest_kit" });
      });
    });
  });

  it("a server that is not there is PERSIST_UNAVAILABLE within the timeouts, and the password never shows", async () => {
    const Persist = createMongoPersist({ url: "mongodb://bot:hunter2@127.0.0.1:9/?directConnection=true", connectTimeoutMs: 500, commandTimeoutMs: 500 });
    const started = Date.now();
    const err: any = await new Persist("e", "ns").waitForInit(true).catch((e) => e);
    expect(err?.code, err?.message).toBe("PERSIST_UNAVAILABLE");
    expect(Date.now() - started).toBeLessThan(3000);
    expect(`${err.message} ${err.stack}`).not.toContain("hunter2");
    await Persist.close();
  });
});

describe("outage", () => {
  it("a server killed under load: PERSIST_UNAVAILABLE within the timeouts, nothing unhandled; the same instances work once it is back", { timeout: 120_000 }, async () => {
    const server = await startMongo({ persistent: true });
    const Persist = createMongoPersist({ url: server.url, connectTimeoutMs: 1000, commandTimeoutMs: 1000 });
    try {
      await outageUnderLoad(Persist, { stop: () => server.stop("SIGKILL"), start: () => server.start() }, 2500);
    } finally {
      await Persist.close();
      await server.destroy();
    }
  });
});
