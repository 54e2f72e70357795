// Encryption at rest on every backend: documents round-trip, the raw store holds no plaintext, a
// tampered ciphertext or one moved to another id fails with PERSIST_DECRYPT, a wrong key fails the
// same way and init leaves the data untouched, and the fast paths (batch writes, unchanged-skip)
// still hold. Raw documents are read and written with independent clients.
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import * as kit from "backtest-kit";
import Redis from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

import {
  createFilePersist,
  createMongoPersist,
  createPostgresPersist,
  createRedisPersist,
  createS3Persist,
  createSqlitePersist,
  useDefaultPersist,
  usePersist,
} from "../index.js";
import { collect, makeTempDir, removeDir, sqliteAll, sqliteExec, withEnv } from "./helpers";
import { mongoClient, mongoKey, s3Client, s3Dump, s3Get, s3Options, s3Put, s3RemoveAll } from "./stores";

const key = (seed: number) => Buffer.alloc(32, seed).toString("base64");
const KEY = key(7);
const OTHER = key(9);
const NS = "dump/data/signal";

interface Raw {
  /** A class over this test's storage with `options` added (encryption among them). */
  create(options: object): any;
  get(entity: string, id: string): Promise<string | null>;
  set(entity: string, id: string, text: string): Promise<void>;
  /** Everything stored, as text, to search for plaintext and to compare before and after. */
  dump(): Promise<string>;
  cleanup(): Promise<void>;
}

let root: string;
beforeAll(async () => {
  root = await makeTempDir("enc");
});
afterAll(async () => {
  await removeDir(root);
});

const backends: Record<string, () => Promise<Raw>> = {
  file: async () => {
    const dir = fs.mkdtempSync(path.join(root, "file-"));
    const file = (entity: string, id: string) => path.join(dir, NS, entity, `${id}.json`);
    const walk = (d: string): string[] =>
      fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)])) : [];
    return {
      create: (options) => createFilePersist(options),
      get: async (entity, id) => (fs.existsSync(file(entity, id)) ? fs.readFileSync(file(entity, id), "utf8") : null),
      set: async (entity, id, text) => fs.writeFileSync(file(entity, id), text),
      dump: async () => walk(dir).sort().map((f) => `${f}\n${fs.readFileSync(f, "utf8")}`).join("\n"),
      cleanup: async () => undefined,
      base: dir,
    } as Raw & { base: string };
  },
  sqlite: async () => {
    const db = path.join(root, `${randomUUID()}.sqlite`);
    const where = (entity: string, id: string) => `namespace = '${NS}' AND entity = '${entity}' AND id = '${id}'`;
    const classes: any[] = [];
    return {
      create: (options) => {
        const Class = createSqlitePersist({ path: db, ...options });
        classes.push(Class);
        return Class;
      },
      get: async (entity, id) => sqliteAll(db, `SELECT CAST(value AS TEXT) AS v FROM entities WHERE ${where(entity, id)}`)[0]?.v ?? null,
      set: async (entity, id, text) => sqliteExec(db, `UPDATE entities SET value = '${text.replace(/'/g, "''")}' WHERE ${where(entity, id)}`),
      dump: async () => JSON.stringify(sqliteAll(db, "SELECT namespace, entity, id, CAST(value AS TEXT) AS v FROM entities ORDER BY 1, 2, 3")),
      cleanup: async () => {
        for (const Class of classes) await Class.close();
      },
    };
  },
  redis: async () => {
    const prefix = `enc-${randomUUID()}`;
    const client = new Redis(inject("redisUrl"));
    const hash = (entity: string) => `${prefix}:${JSON.stringify([NS, entity])}`;
    return {
      create: (options) => createRedisPersist({ url: inject("redisUrl"), prefix, ...options }),
      get: (entity, id) => client.hget(hash(entity), id),
      set: async (entity, id, text) => void (await client.hset(hash(entity), id, text)),
      dump: async () => {
        const keys = (await client.keys(`${prefix}:*`)).sort();
        return JSON.stringify(await Promise.all(keys.map(async (k) => [k, await client.hgetall(k)])));
      },
      cleanup: async () => {
        const keys = await client.keys(`${prefix}:*`);
        if (keys.length) await client.del(...keys);
        client.disconnect();
      },
    };
  },
  postgres: async () => {
    const table = `enc_${randomUUID().replace(/-/g, "")}`;
    const client = new pg.Client({ connectionString: inject("postgresUrl") });
    await client.connect();
    const classes: any[] = [];
    return {
      create: (options) => {
        const Class = createPostgresPersist({ url: inject("postgresUrl"), table, ...options });
        classes.push(Class);
        return Class;
      },
      get: async (entity, id) => (await client.query(`SELECT value FROM ${table} WHERE namespace = $1 AND entity = $2 AND id = $3`, [NS, entity, id])).rows[0]?.value ?? null,
      set: async (entity, id, text) => void (await client.query(`UPDATE ${table} SET value = $4 WHERE namespace = $1 AND entity = $2 AND id = $3`, [NS, entity, id, text])),
      dump: async () => JSON.stringify((await client.query(`SELECT * FROM ${table} ORDER BY 1, 2, 3`)).rows),
      cleanup: async () => {
        for (const Class of classes) await Class.close();
        await client.query(`DROP TABLE IF EXISTS ${table}, ${table}_quarantine, ${table}_meta`);
        await client.end();
      },
    };
  },
  mongodb: async () => {
    const collection = `enc_${randomUUID().replace(/-/g, "")}`;
    const client = await mongoClient();
    const docs = () => client.db("backtest_kit").collection<{ _id: string; v: string }>(collection);
    return {
      create: (options) => createMongoPersist({ url: inject("mongoUrl"), collection, ...options }),
      get: async (entity, id) => (await docs().findOne({ _id: mongoKey(NS, entity, id) }))?.v ?? null,
      set: async (entity, id, text) => void (await docs().updateOne({ _id: mongoKey(NS, entity, id) }, { $set: { v: text } })),
      dump: async () => JSON.stringify(await docs().find({}).sort({ _id: 1 }).toArray()),
      cleanup: async () => {
        await docs().drop().catch(() => undefined);
        await client.close();
      },
    };
  },
  s3: async () => {
    const prefix = `enc-${randomUUID()}`;
    const client = s3Client();
    const key = (entity: string, id: string) => `${prefix}/${NS}/${entity}/${id}.json`;
    return {
      create: (options) => createS3Persist({ ...s3Options(prefix), ...options }),
      get: (entity, id) => s3Get(client, key(entity, id)),
      set: (entity, id, text) => s3Put(client, key(entity, id), text),
      dump: async () => JSON.stringify(await s3Dump(prefix)),
      cleanup: () => s3RemoveAll(client, prefix),
    };
  },
};

describe.each(Object.keys(backends))("%s backend", (name) => {
  let raw: Raw & { base?: string };
  let Sealed: any;
  const base = () => (raw.base ? path.join(raw.base, NS) : `./${NS}/`);
  beforeAll(async () => {
    raw = await backends[name]();
    Sealed = raw.create({ encryption: { key: KEY } });
  });
  afterAll(async () => {
    await Sealed.close();
    await raw.cleanup();
  });

  it("round-trips documents and stores no plaintext", async () => {
    const marker = `PLAINTEXT-MARKER-${randomUUID()}`;
    const store = new Sealed("BTCUSDT_s1_ex1", base());
    await store.waitForInit(true);
    await store.writeValue("BTCUSDT", { marker, priceOpen: 100.5 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.writeValue(`id-${i}`, { marker, i })));
    expect(await store.readValue("BTCUSDT")).toEqual({ marker, priceOpen: 100.5 });
    expect(await store.readValue("id-7")).toEqual({ marker, i: 7 });
    expect((await collect(store.keys())).length).toBe(21);
    const stored = await raw.dump();
    expect(stored).not.toContain(marker);
    expect(stored).not.toContain("priceOpen");
    expect(JSON.parse((await raw.get("BTCUSDT_s1_ex1", "BTCUSDT"))!)).toMatchObject({ $bkrs: "xc20p1", kid: expect.any(String) });
  });

  it("a tampered ciphertext, or one moved to another id, fails with PERSIST_DECRYPT", async () => {
    const store = new Sealed("moved_s1_ex1", base());
    await store.waitForInit(true);
    await store.writeValue("A", { side: "A" });
    await store.writeValue("B", { side: "B" });
    const a = (await raw.get("moved_s1_ex1", "A"))!;
    await raw.set("moved_s1_ex1", "B", a);
    await expect(store.readValue("B")).rejects.toMatchObject({ code: "PERSIST_DECRYPT" });
    const envelope = JSON.parse(a);
    const flipped = envelope.ct[5] === "A" ? "B" : "A";
    await raw.set("moved_s1_ex1", "A", JSON.stringify({ ...envelope, ct: envelope.ct.slice(0, 5) + flipped + envelope.ct.slice(6) }));
    await expect(store.readValue("A")).rejects.toMatchObject({ code: "PERSIST_DECRYPT" });
  });

  it("a wrong or missing key fails with PERSIST_DECRYPT, and init leaves the data untouched", async () => {
    const store = new Sealed("keyed_s1_ex1", base());
    await store.waitForInit(true);
    await store.writeValue("BTCUSDT", { secret: true });
    const before = await raw.dump();
    const Wrong = raw.create({ encryption: { key: OTHER } });
    const wrong = new Wrong("keyed_s1_ex1", base());
    await wrong.waitForInit(true); // validates: the envelope is JSON, so nothing is moved aside
    const err = await wrong.readValue("BTCUSDT").catch((e: any) => e);
    expect(err.code).toBe("PERSIST_DECRYPT");
    expect(err.message).not.toContain(OTHER);
    expect(err.message).not.toContain(KEY);
    expect(await raw.dump()).toEqual(before);
    await Wrong.close();
    // Two keys: the second still opens what the first does not.
    const Both = raw.create({ encryption: { keys: [OTHER, KEY] } });
    expect(await new Both("keyed_s1_ex1", base()).readValue("BTCUSDT")).toEqual({ secret: true });
    await Both.close();
  });
});

describe("configuration and fast paths", () => {
  it("BACKTEST_KIT_RS_KEY turns encryption on for every store; encryption: false turns it off; keys never show", async () => {
    const db = path.join(root, "env.sqlite");
    const Env = createSqlitePersist({ path: db });
    await withEnv({ BACKTEST_KIT_RS_KEY: `${KEY},${OTHER}` }, async () => {
      expect((Env.options as any).encryption).toEqual({ keyIds: [expect.stringMatching(/^[0-9a-f]{12}$/), expect.any(String)] });
      expect(JSON.stringify(Env.options)).not.toContain(KEY);
      await new Env("e", "./ns/").writeValue("x", { hidden: "ENV-MARKER" });
    });
    expect(sqliteAll(db, "SELECT CAST(value AS TEXT) AS v FROM entities")[0].v).not.toContain("ENV-MARKER");
    // Without a key an encrypted document is refused, not handed over as if its envelope were the value.
    const Plain = createSqlitePersist({ path: db, encryption: false });
    await expect(new Plain("e", "./ns/").readValue("x")).rejects.toMatchObject({ code: "PERSIST_DECRYPT", message: expect.stringMatching(/no key is configured/) });
    await new Plain("e", "./ns/").writeValue("plain", { ok: 1 });
    expect(await new Plain("e", "./ns/").readValue("plain")).toEqual({ ok: 1 });
    for (const bad of [{ key: "c2hvcnQ=" }, { kee: KEY }, "yes", { keyFile: path.join(root, "missing") }]) {
      expect(() => createSqlitePersist({ path: db, encryption: bad } as any).options).toThrow(expect.objectContaining({ code: "PERSIST_INVALID_CONFIG" }));
    }
    await Env.close();
    await Plain.close();
  });

  it("through usePersist: candles and notification lists encrypted, an unchanged list rewrite writes one document", async () => {
    const db = path.join(root, "fast.sqlite");
    const Sealed = createSqlitePersist({ path: db, encryption: { key: KEY } });
    usePersist(kit, Sealed, { domains: ["candle", "notification"] });
    try {
      const since = 1_767_225_600_000;
      const candles = Array.from({ length: 30 }, (_, i) => ({ timestamp: since + i * 60_000, open: 1, high: 2, low: 0.5, close: 1.5, volume: i }));
      await kit.PersistCandleAdapter.writeCandlesData(candles as any, "BTCUSDT", "1m", "ex");
      expect(await kit.PersistCandleAdapter.readCandlesData("BTCUSDT", "1m", "ex", 30, since, since + 30 * 60_000)).toEqual(candles);
      const list = Array.from({ length: 50 }, (_, i) => ({ id: `n-${i}`, type: "signal.info", createdAt: 1_767_000_000_000 + i, note: `NOTE-MARKER ${i}` }));
      await kit.PersistNotificationAdapter.writeNotificationData(list as any, true);
      const before = Sealed.stats();
      list[10] = { ...list[10], note: "changed" };
      await kit.PersistNotificationAdapter.writeNotificationData(list as any, true);
      expect(Sealed.stats().writes - before.writes).toBe(1);
      const texts = sqliteAll(db, "SELECT CAST(value AS TEXT) AS v FROM entities").map((r: any) => r.v).join("\n");
      expect(texts).not.toContain("NOTE-MARKER");
      expect(texts).not.toContain('"volume"');
    } finally {
      useDefaultPersist(kit);
      await Sealed.close();
    }
  });
});
