// RustRedisPersist behaviour beyond the shared suite: outage and recovery, AUTH, ACL users,
// TLS, isolation, key layout, self-healing, and credentials kept out of every message.
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import Redis from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";

import { createRedisPersist, RustRedisPersist, setLogger } from "../index.js";
import { collect, makeTempDir, removeDir, sleep } from "./helpers";
import { makeTlsFiles, startRedisServer, type RedisServer } from "./redis-server";

const PASSWORD = "s3cret-Pa55word";
const ACL_PASSWORD = "alice-Pw-0987";

let messages: string[];
const classes: Array<{ close(): Promise<void> }> = [];

/** A class with a unique prefix; every error it raises is recorded for the credential check. */
function bind(options: Parameters<typeof createRedisPersist>[0]) {
  const Ctor = createRedisPersist({ prefix: `bkrs-test-${randomUUID()}`, ...options });
  classes.push(Ctor);
  return Ctor;
}

async function rejection(promise: Promise<unknown>): Promise<any> {
  const err = await promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e) => e,
  );
  messages.push(String(err.message), String(err.stack));
  return err;
}

beforeEach(() => {
  messages = [];
  setLogger({ warn: (message: string) => messages.push(message) });
});
afterEach(async () => {
  setLogger({ warn: (message: string) => console.warn(message) });
  for (const Ctor of classes.splice(0)) await Ctor.close();
  for (const secret of [PASSWORD, ACL_PASSWORD]) {
    for (const message of messages) expect(message).not.toContain(secret);
  }
});

describe("outage", () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it("rejects every operation within the timeout while Redis is down, then the same instances recover", async () => {
    const Persist = bind({ url: server.url, commandTimeoutMs: 500, connectTimeoutMs: 500 });
    const store = new Persist("BTCUSDT_s1_ex1", "./dump/data/signal/");
    await store.waitForInit(true);
    await store.writeValue("BTCUSDT", { v: 1 });

    await server.stop();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const operations: Array<[string, () => Promise<unknown>]> = [
        ["readValue", () => store.readValue("BTCUSDT")],
        ["hasValue", () => store.hasValue("BTCUSDT")],
        ["writeValue", () => store.writeValue("BTCUSDT", { v: 2 })],
        ["keys", () => collect(store.keys())],
        ["removeValue", () => store.removeValue("BTCUSDT")],
        ["waitForInit of a new instance", () => new Persist("other", "./dump/data/signal/").waitForInit(true)],
      ];
      for (const [name, operation] of operations) {
        const started = Date.now();
        const err = await rejection(operation());
        const elapsed = Date.now() - started;
        expect(err.code, `${name}: ${err.message}`).toBe("PERSIST_UNAVAILABLE");
        expect(err.message).toContain(`127.0.0.1:${server.port}`);
        // At most a connect attempt and a command, each bounded by its timeout (500 ms here).
        expect(elapsed, name).toBeLessThan(2000);
      }
    } finally {
      await sleep(50);
      process.off("unhandledRejection", onUnhandled);
    }
    expect(unhandled).toEqual([]);

    await server.start();
    // The shared connection reconnects by itself; allow it a few attempts.
    let recovered = false;
    for (let attempt = 0; attempt < 40 && !recovered; attempt++) {
      recovered = await store.writeValue("BTCUSDT", { v: 3 }).then(
        () => true,
        async () => {
          await sleep(250);
          return false;
        },
      );
    }
    expect(recovered).toBe(true);
    expect(await store.readValue("BTCUSDT")).toEqual({ v: 3 });
  });

  it("fails concurrent first users of a configuration together, not one connect attempt after another", async () => {
    await server.stop();
    const Persist = bind({ url: server.url, commandTimeoutMs: 400, connectTimeoutMs: 400 });
    const started = Date.now();
    const errors = await Promise.all(Array.from({ length: 20 }, (_, i) => rejection(new Persist(`e${i}`, "ns").readValue("k"))));
    expect(errors.every((e) => e.code === "PERSIST_UNAVAILABLE")).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
    await server.start();
  });

  it("fails init clearly when no server was ever there, and retries it later", async () => {
    await server.stop();
    const Persist = bind({ url: server.url, commandTimeoutMs: 300, connectTimeoutMs: 300 });
    const store = new Persist("e", "ns");
    const err = await rejection(store.waitForInit(true));
    expect(err.code).toBe("PERSIST_UNAVAILABLE");
    await server.start();
    await store.waitForInit(true);
    await store.writeValue("k", 1);
    expect(await store.readValue("k")).toBe(1);
  });
});

describe("authentication", () => {
  let server: RedisServer;
  beforeAll(async () => {
    // Redis joins the words after --user into one ACL rule line.
    server = await startRedisServer(["--requirepass", PASSWORD, "--user", "alice", "on", `>${ACL_PASSWORD}`, "~*", "&*", "+@all"]);
  });
  afterAll(async () => {
    await server.stop();
  });
  const withCredentials = (userInfo: string) => server.url.replace("redis://", `redis://${userInfo}@`);

  it("works with requirepass and with an ACL user", async () => {
    for (const userInfo of [`:${PASSWORD}`, `default:${PASSWORD}`, `alice:${ACL_PASSWORD}`]) {
      const Persist = bind({ url: withCredentials(userInfo) });
      const store = new Persist("auth", "ns");
      await store.waitForInit(true);
      await store.writeValue("k", { user: userInfo.split(":")[0] });
      expect(await store.readValue("k")).toEqual({ user: userInfo.split(":")[0] });
    }
  });

  it("never shows a password that holds URL delimiters", async () => {
    for (const userInfo of [`:${PASSWORD}/x`, `:${PASSWORD}?x#y`, `alice:${ACL_PASSWORD}#z`]) {
      const url = withCredentials(userInfo);
      const err = await rejection(
        (async () => {
          const store = new (bind({ url, connectTimeoutMs: 500, commandTimeoutMs: 500 }))("e", "ns");
          await store.waitForInit(true);
        })(),
      );
      expect(["PERSIST_INVALID_CONFIG", "PERSIST_AUTH", "PERSIST_UNAVAILABLE"]).toContain(err.code);
    }
  });

  it("rejects wrong or missing credentials with PERSIST_AUTH and never shows them", async () => {
    for (const userInfo of [`alice:wrong-${ACL_PASSWORD}`, `:wrong-${PASSWORD}`, null]) {
      const Persist = bind({ url: userInfo ? withCredentials(userInfo) : server.url, connectTimeoutMs: 1000 });
      const err = await rejection(new Persist("auth", "ns").waitForInit(true));
      expect(err.code, err.message).toBe("PERSIST_AUTH");
      expect(err.message).toMatch(/redis redis:\/\/(\*\*\*@)?127\.0\.0\.1/);
      expect(err.message).not.toContain("wrong-");
    }
  });
});

describe("TLS", () => {
  let server: RedisServer;
  let dir: string;
  let ca: string;
  beforeAll(async () => {
    dir = await makeTempDir("tls");
    const files = makeTlsFiles(dir);
    ca = fs.readFileSync(files.ca, "utf8");
    server = await startRedisServer(["--requirepass", PASSWORD], files);
  });
  afterAll(async () => {
    await server.stop();
    await removeDir(dir);
  });

  it("connects over rediss:// trusting a private CA, with a password", async () => {
    const Persist = bind({ url: server.url.replace("rediss://", `rediss://:${PASSWORD}@`), tls: { ca } });
    const store = new Persist("tls", "ns");
    await store.waitForInit(true);
    await store.writeValue("k", { secure: true });
    expect(await store.readValue("k")).toEqual({ secure: true });
  });

  it("refuses a server whose certificate it cannot verify", async () => {
    const Persist = bind({ url: server.url.replace("rediss://", `rediss://:${PASSWORD}@`), connectTimeoutMs: 2000 });
    const err = await rejection(new Persist("tls", "ns").waitForInit(true));
    expect(err.code).toBe("PERSIST_UNAVAILABLE");
    expect(err.message).toMatch(/certificate|issuer|tls/i);
  });
});

describe("layout and isolation", () => {
  let server: RedisServer;
  let inspector: Redis;
  beforeAll(async () => {
    server = await startRedisServer();
    inspector = new Redis(server.url);
  });
  afterAll(async () => {
    inspector.disconnect();
    await server.stop();
  });

  it("keeps one hash per entity under {prefix}:[namespace, entityName], field = id", async () => {
    const Persist = bind({ url: server.url, prefix: "layout" });
    const store = new Persist("BTCUSDT_s1_ex1", "./dump/data/signal/");
    await store.waitForInit(true);
    await store.writeValue("BTCUSDT", { id: "sig" });
    expect(await inspector.hgetall('layout:["dump/data/signal","BTCUSDT_s1_ex1"]')).toEqual({ BTCUSDT: '{"id":"sig"}' });
  });

  it("never scans the keyspace", async () => {
    await inspector.config("RESETSTAT");
    const Persist = bind({ url: server.url });
    const store = new Persist("e", "ns");
    await store.waitForInit(true);
    for (let i = 0; i < 20; i++) await store.writeValue(i, i);
    await collect(store.keys());
    await collect(store.values());
    await store.removeAll();
    const stats = await inspector.info("commandstats");
    expect(stats).not.toMatch(/cmdstat_(keys|scan):/);
  });

  it("separates prefixes and database numbers", async () => {
    const A = bind({ url: `${server.url}/0`, prefix: "a" });
    const B = bind({ url: `${server.url}/0`, prefix: "b" });
    const C = bind({ url: `${server.url}/3`, prefix: "a" });
    const [a, b, c] = [new A("e", "ns"), new B("e", "ns"), new C("e", "ns")];
    for (const s of [a, b, c]) await s.waitForInit(true);
    await a.writeValue("k", "from a");
    expect(await b.hasValue("k")).toBe(false);
    expect(await c.hasValue("k")).toBe(false);
    await c.writeValue("k", "from c");
    expect(await a.readValue("k")).toBe("from a");
    expect(await inspector.select(3).then(() => inspector.exists('a:["ns","e"]'))).toBe(1);
    await inspector.select(0);
  });

  it("moves stored values that are not JSON aside at init, and logs which", async () => {
    const Persist = bind({ url: server.url, prefix: "heal" });
    const key = 'heal:["dump/data/risk","r_ex"]';
    await inspector.hset(key, "positions", "[]", "torn", '{"a":', "empty", "");
    const store = new Persist("r_ex", "./dump/data/risk/");
    await store.waitForInit(true);
    expect(await collect(store.keys())).toEqual(["positions"]);
    const removed = messages.filter((m) => m.includes("moved invalid document aside"));
    expect(removed).toHaveLength(2);
    expect(removed.some((m) => m.includes(`key=${key} field=torn`))).toBe(true);
    const aside = await inspector.hgetall('heal:quarantine:["dump/data/risk","r_ex"]');
    expect(Object.values(aside).sort()).toEqual(["", '{"a":']);
  });

  it("treats bytes that are not UTF-8 as a corrupt document: moved aside at init, PERSIST_CORRUPT after", async () => {
    const Persist = bind({ url: server.url, prefix: "bytes" });
    const key = 'bytes:["ns","b_ex"]';
    const bad = Buffer.from([0x22, 0xff, 0xfe, 0x22]); // a JSON string holding two invalid bytes
    await inspector.hset(key, "good", "1", "bad", bad);
    const store = new Persist("b_ex", "ns");
    await store.waitForInit(true);
    expect(await collect(store.keys())).toEqual(["good"]);
    const aside = await inspector.hgetallBuffer('bytes:quarantine:["ns","b_ex"]');
    expect(Object.values(aside).some((v) => v.equals(bad))).toBe(true);
    expect(messages.some((m) => m.includes("field=bad"))).toBe(true);

    // Written behind the store's back after init: a clear code, and the entity stays usable.
    await inspector.hset(key, "later", bad);
    const err = await rejection(store.readValue("later"));
    expect(err.code).toBe("PERSIST_CORRUPT");
    expect(err.message).toMatch(/later.*not UTF-8/);
    expect(await store.readValue("good")).toBe(1);
    expect(await collect(store.keys())).toEqual(["good", "later"]);
    // A field name that is not UTF-8 can be named by no id: not listed, left alone.
    await inspector.hset(key, Buffer.from([0xc3, 0x28]), "2");
    expect(await collect(store.keys())).toEqual(["good", "later"]);
  });

  it("the plain class reads BACKTEST_KIT_RS_REDIS_URL, then REDIS_URL", async () => {
    const saved = { a: process.env.BACKTEST_KIT_RS_REDIS_URL, b: process.env.REDIS_URL };
    try {
      delete process.env.BACKTEST_KIT_RS_REDIS_URL;
      process.env.REDIS_URL = `${server.url}/5`;
      const store = new RustRedisPersist("env", "ns");
      await store.waitForInit(true);
      await store.writeValue("k", 1);
      await inspector.select(5);
      expect(await inspector.hget('backtest-kit:["ns","env"]', "k")).toBe("1");
      await inspector.select(0);
      await RustRedisPersist.close();
      process.env.BACKTEST_KIT_RS_REDIS_URL = "redis://127.0.0.1:1";
      process.env.REDIS_URL = server.url;
      const refused = await rejection(new RustRedisPersist("env", "ns").waitForInit(true));
      expect(refused.code).toBe("PERSIST_UNAVAILABLE");
    } finally {
      for (const [name, value] of [["BACKTEST_KIT_RS_REDIS_URL", saved.a], ["REDIS_URL", saved.b]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it("rejects malformed options before connecting", () => {
    expect(() => new (createRedisPersist({ url: "http://x" }))("e", "ns")).toThrow(/redis:\/\//);
    expect(() => new (createRedisPersist({ commandTimeoutMs: 0 }))("e", "ns")).toThrow(/commandTimeoutMs/);
    expect(() => new (createRedisPersist({ prefix: "" }))("e", "ns")).toThrow(/prefix/);
  });
});

describe("the shared connection", () => {
  it("is shared by every instance of a configuration (one client on the server)", async () => {
    const server = await startRedisServer();
    const inspector = new Redis(server.url);
    try {
      const Persist = bind({ url: server.url });
      const stores = Array.from({ length: 20 }, (_, i) => new Persist(`e${i}`, "ns"));
      await Promise.all(stores.map((s) => s.waitForInit(true)));
      await Promise.all(stores.map((s, i) => s.writeValue("k", i)));
      const clients = (await inspector.client("LIST")) as string;
      // Ours plus the inspector.
      expect(clients.trim().split("\n")).toHaveLength(2);
      // close() keeps no connection, though every instance has used it; the next use reconnects.
      await Persist.close();
      await sleep(100);
      expect(((await inspector.client("LIST")) as string).trim().split("\n")).toHaveLength(1);
      expect(await stores[3].readValue("k")).toBe(3);
    } finally {
      inspector.disconnect();
      await server.stop();
    }
  });
});
