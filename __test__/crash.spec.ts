// Crash safety at scale, on every backend: 100 SIGKILLs of a process writing one id over and
// over (payloads from a few bytes to 64 KiB). After each kill the storage opens, holds a
// whole written version, and never one older than the last write the child saw acknowledged.
import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

import pg from "pg";

import { createMongoPersist, createPostgresPersist, createRedisPersist, createS3Persist, createSqlitePersist, RustFilePersist } from "../index.js";
import { makeTempDir, removeDir, sleep, sqliteAll, startWriter } from "./helpers";
import { mongoClient, s3Dump, s3Env, s3Options } from "./stores";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { isPayload, payload } = require("./fixtures/backends.cjs");

const KILLS = 100;

interface Subject {
  /** A store of the entity the child writes, as a fresh process would open it. */
  open(): any;
  env: NodeJS.ProcessEnv;
  /** Checks on the raw storage after a kill, beyond reading through a fresh store. */
  inspect(): Promise<void>;
  close(): Promise<void>;
}

let root: string;
beforeAll(async () => {
  root = await makeTempDir("crash");
});
afterAll(async () => {
  await removeDir(root);
});

const subjects: Record<string, () => Subject> = {
  file: () => {
    const baseDir = path.join(root, "file");
    return {
      open: () => new RustFilePersist("crash-ent", baseDir),
      env: {},
      async inspect() {
        const dir = path.join(baseDir, "crash-ent");
        for (const name of await fs.readdir(dir)) {
          if (name.startsWith(".tmp-")) continue; // an interrupted write: never listed, swept when stale
          const text = await fs.readFile(path.join(dir, name), "utf8");
          expect(isPayload(JSON.parse(text)), `${name} holds a written version`).toBe(true);
        }
      },
      close: async () => undefined,
    };
  },
  sqlite: () => {
    const db = path.join(root, "crash.sqlite");
    const Persist = createSqlitePersist({ path: db });
    return {
      open: () => new Persist("crash-ent", path.join(root, "file")),
      env: { BACKTEST_KIT_RS_SQLITE_PATH: db },
      async inspect() {
        expect(Object.values(sqliteAll(db, "PRAGMA integrity_check")[0])[0]).toBe("ok");
      },
      close: () => Persist.close(),
    };
  },
  redis: () => {
    // The child's RustRedisPersist: this URL, the default prefix; the unique temporary baseDir
    // keeps its hash apart from every other test's.
    const url = inject("redisUrl");
    const Persist = createRedisPersist({ url });
    return {
      open: () => new Persist("crash-ent", path.join(root, "file")),
      env: { BACKTEST_KIT_RS_REDIS_URL: url },
      inspect: async () => undefined,
      close: () => Persist.close(),
    };
  },
  postgres: () => {
    const url = inject("postgresUrl");
    const table = "crash_test";
    const Persist = createPostgresPersist({ url, table });
    return {
      open: () => new Persist("crash-ent", path.join(root, "file")),
      env: { BACKTEST_KIT_RS_POSTGRES_URL: url, BKRS_STORE_NAME: table },
      async inspect() {
        // One row, whole, and nothing moved aside.
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          const { rows } = await client.query(`SELECT value FROM ${table} WHERE entity = 'crash-ent'`);
          expect(rows).toHaveLength(1);
          expect(isPayload(JSON.parse(rows[0].value))).toBe(true);
          expect((await client.query(`SELECT count(*)::int AS n FROM ${table}_quarantine`)).rows[0].n).toBe(0);
        } finally {
          await client.end();
        }
      },
      close: () => Persist.close(),
    };
  },
  mongodb: () => {
    const url = inject("mongoUrl");
    const collection = "crash_test";
    const Persist = createMongoPersist({ url, collection });
    return {
      open: () => new Persist("crash-ent", path.join(root, "file")),
      env: { BACKTEST_KIT_RS_MONGO_URL: url, BKRS_STORE_NAME: collection },
      async inspect() {
        // One document, whole, and nothing moved aside.
        const client = await mongoClient(url);
        try {
          const db = client.db("backtest_kit");
          const docs = await db.collection<{ _id: string; v: string }>(collection).find({}).toArray();
          expect(docs).toHaveLength(1);
          expect(isPayload(JSON.parse(docs[0].v))).toBe(true);
          expect(await db.collection(`${collection}_quarantine`).countDocuments()).toBe(0);
        } finally {
          await client.close();
        }
      },
      close: () => Persist.close(),
    };
  },
  s3: () => {
    const prefix = `crash-${process.pid}`;
    const Persist = createS3Persist(s3Options(prefix));
    return {
      open: () => new Persist("crash-ent", path.join(root, "file")),
      env: { ...s3Env(), BKRS_STORE_NAME: prefix },
      async inspect() {
        // One object, whole, and nothing moved aside.
        const objects = Object.values(await s3Dump(prefix));
        expect(objects).toHaveLength(1);
        expect(isPayload(JSON.parse(objects[0]))).toBe(true);
      },
      close: () => Persist.close(),
    };
  },
};

describe.each(Object.keys(subjects))("%s backend", (name) => {
  it(`survives ${KILLS} SIGKILLs of a writing process: no acknowledged write is lost`, { timeout: 240_000 }, async () => {
    const subject = subjects[name]();
    const baseDir = path.join(root, "file");
    const first = subject.open();
    await first.waitForInit(true);
    await first.writeValue("BTCUSDT", payload(0));
    await subject.close();
    let seq = 1;
    let acknowledged = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const writer = startWriter([name, baseDir, "crash-ent", "BTCUSDT", seq, 0], subject.env);
      await writer.ready;
      await sleep(5 + Math.random() * 60);
      writer.child.kill("SIGKILL");
      const { signal } = await writer.exited;
      expect(signal, writer.stderr()).toBe("SIGKILL");
      const acked = writer.lastAck();
      acknowledged += Math.max(0, acked - seq + 1);

      await subject.inspect();
      const store = subject.open();
      await store.waitForInit(true);
      const value = await store.readValue("BTCUSDT");
      expect(isPayload(value)).toBe(true);
      // The storage holds the last acknowledged write or a later one.
      expect(value.seq).toBeGreaterThanOrEqual(acked);
      await subject.close();
      seq = Math.max(seq, acked, value.seq) + 1;
    }
    expect(acknowledged).toBeGreaterThan(KILLS); // the children did write between kills
  });
});
