// Encryption at rest on every backend: documents round-trip, the raw store holds no plaintext, a
// tampered ciphertext or one moved to another id fails with PERSIST_DECRYPT, a wrong key fails the
// same way and init leaves the data untouched, and the fast paths (batch writes, unchanged-skip)
// still hold. Raw documents are read and written with independent clients.
import { randomUUID } from "node:crypto";
import path from "node:path";
import * as kit from "backtest-kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { createSqlitePersist, useDefaultPersist, usePersist } from "../index.js";
import { BACKENDS, type Place } from "./backends";
import { collect, makeTempDir, removeDir, sqliteAll, withEnv } from "./helpers";

const key = (seed: number) => Buffer.alloc(32, seed).toString("base64");
const KEY = key(7);
const OTHER = key(9);
const NS = "dump/data/signal";

let root: string;
beforeAll(async () => {
  root = await makeTempDir("enc");
});
afterAll(async () => {
  await removeDir(root);
});

describe.each(BACKENDS)("$name backend", (backend) => {
  let raw: Place;
  let Sealed: any;
  const base = () => raw.baseDir(NS);
  beforeAll(async () => {
    raw = await backend.open(root);
    Sealed = raw.create({ encryption: { key: KEY } });
  });
  afterAll(async () => {
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
    expect(JSON.parse((await raw.get(NS, "BTCUSDT_s1_ex1", "BTCUSDT"))!)).toMatchObject({ $bkrs: "xc20p1", kid: expect.any(String) });
  });

  it("a tampered ciphertext, or one moved to another id, fails with PERSIST_DECRYPT", async () => {
    const store = new Sealed("moved_s1_ex1", base());
    await store.waitForInit(true);
    await store.writeValue("A", { side: "A" });
    await store.writeValue("B", { side: "B" });
    const a = (await raw.get(NS, "moved_s1_ex1", "A"))!;
    await raw.set(NS, "moved_s1_ex1", "B", a);
    await expect(store.readValue("B")).rejects.toMatchObject({ code: "PERSIST_DECRYPT" });
    const envelope = JSON.parse(a);
    const flipped = envelope.ct[5] === "A" ? "B" : "A";
    await raw.set(NS, "moved_s1_ex1", "A", JSON.stringify({ ...envelope, ct: envelope.ct.slice(0, 5) + flipped + envelope.ct.slice(6) }));
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
