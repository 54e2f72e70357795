import { PersistBase } from "backtest-kit";

import path from "node:path";

import { randomUUID } from "node:crypto";
import Redis from "ioredis";
import pg from "pg";
import { inject } from "vitest";

import { createFilePersist, createMongoPersist, createPostgresPersist, createRedisPersist, createS3Persist, createSqlitePersist, RustFilePersist } from "../index.js";
import { persistConformance, type PersistCtor } from "./conformance";
import { makeTempDir, removeDir, sqliteAll, treeSnapshot } from "./helpers";
import { mongoClient, s3Client, s3Dump, s3Options, s3RemoveAll } from "./stores";

function fileBackend(Ctor: PersistCtor, tag: string) {
  return async () => {
    const root = await makeTempDir(tag);
    return {
      Ctor,
      root,
      snapshot: () => treeSnapshot(root),
      cleanup: () => removeDir(root),
    };
  };
}

// The reference runs first: the suite is only right if backtest-kit's own PersistBase passes it.
persistConformance("backtest-kit PersistBase (reference)", fileBackend(PersistBase as unknown as PersistCtor, "ref"), {
  strictIds: false,
  errorCodes: false,
  extras: false,
  issueOrder: false,
});

persistConformance("RustFilePersist", fileBackend(RustFilePersist, "file"), {
  strictIds: true,
  errorCodes: true,
  extras: true,
  issueOrder: true,
});

// Encryption at rest wraps any backend; the wrapped store keeps the whole contract (the raw
// documents are envelopes, so the snapshots below show ciphertext).
const KEY = Buffer.alloc(32, 3).toString("base64");
persistConformance("RustFilePersist, encrypted", fileBackend(createFilePersist({ encryption: { key: KEY } }), "file-enc"), {
  strictIds: true,
  errorCodes: true,
  extras: true,
  issueOrder: true,
});

for (const syncReads of [true, false]) {
  persistConformance(
    `RustSqlitePersist (${syncReads ? "reads on the calling thread" : "reads on a worker thread"})`,
    async () => {
      const root = await makeTempDir("sqlite");
      const Ctor = createSqlitePersist({ path: path.join(root, "db", "state.sqlite"), syncReads });
      return {
        Ctor,
        root,
        snapshot: async () => ({
          rows: sqliteAll(Ctor.database.path, "SELECT * FROM entities ORDER BY namespace, entity, id"),
          tree: await treeSnapshot(path.join(root, "data")),
        }),
        cleanup: async () => {
          await Ctor.close();
          await removeDir(root);
        },
      };
    },
    { strictIds: true, errorCodes: true, extras: true, issueOrder: true },
  );
}

/** Every key under `prefix` with its hash, read through an independent client (ioredis). */
export async function redisDump(redis: Redis, prefix: string): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {};
  for (const key of (await redis.keys(`${prefix}:*`)).sort()) out[key] = await redis.hgetall(key);
  return out;
}

persistConformance(
  "RustRedisPersist",
  async () => {
    const url = inject("redisUrl");
    const prefix = `bkrs-test-${randomUUID()}`;
    const Ctor = createRedisPersist({ url, prefix });
    const inspector = new Redis(url);
    const root = await makeTempDir("redis");
    return {
      Ctor,
      root,
      snapshot: () => redisDump(inspector, prefix),
      cleanup: async () => {
        const keys = await inspector.keys(`${prefix}:*`);
        if (keys.length) await inspector.del(...keys);
        inspector.disconnect();
        await Ctor.close();
        await removeDir(root);
      },
    };
  },
  { strictIds: true, errorCodes: true, extras: true, issueOrder: true },
);

persistConformance(
  "RustPostgresPersist",
  async () => {
    const url = inject("postgresUrl");
    // A table of its own per test: isolation without a database per test.
    const table = `t_${randomUUID().replace(/-/g, "")}`;
    const Ctor = createPostgresPersist({ url, table });
    const inspector = new pg.Client({ connectionString: url });
    await inspector.connect();
    const root = await makeTempDir("postgres");
    const exists = async () => (await inspector.query("SELECT to_regclass($1) AS t", [table])).rows[0].t !== null;
    return {
      Ctor,
      root,
      snapshot: async () =>
        (await exists()) ? (await inspector.query(`SELECT namespace, entity, id, value FROM ${table} ORDER BY 1, 2, 3`)).rows : [],
      cleanup: async () => {
        await Ctor.close();
        await inspector.query(`DROP TABLE IF EXISTS ${table}, ${table}_quarantine, ${table}_meta`);
        await inspector.end();
        await removeDir(root);
      },
    };
  },
  { strictIds: true, errorCodes: true, extras: true, issueOrder: true },
);

persistConformance(
  "RustMongoPersist",
  async () => {
    // A collection of its own per test.
    const collection = `c_${randomUUID().replace(/-/g, "")}`;
    const Ctor = createMongoPersist({ url: inject("mongoUrl"), collection });
    const inspector = await mongoClient();
    const root = await makeTempDir("mongo");
    const db = inspector.db("backtest_kit");
    return {
      Ctor,
      root,
      snapshot: () => db.collection(collection).find({}).sort({ _id: 1 }).toArray(),
      cleanup: async () => {
        await Ctor.close();
        await db.collection(collection).drop().catch(() => undefined);
        await db.collection(`${collection}_quarantine`).drop().catch(() => undefined);
        await inspector.close();
        await removeDir(root);
      },
    };
  },
  { strictIds: true, errorCodes: true, extras: true, issueOrder: true },
);

persistConformance(
  "RustS3Persist",
  async () => {
    // A prefix of its own per test, in the shared bucket.
    const prefix = `conf-${randomUUID()}`;
    const Ctor = createS3Persist(s3Options(prefix));
    const inspector = s3Client();
    const root = await makeTempDir("s3");
    return {
      Ctor,
      root,
      snapshot: () => s3Dump(prefix),
      cleanup: async () => {
        await Ctor.close();
        await s3RemoveAll(inspector, prefix);
        await removeDir(root);
      },
    };
  },
  { strictIds: true, errorCodes: true, extras: true, issueOrder: true, longestId: 64 },
);
