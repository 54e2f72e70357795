"use strict";
// The JavaScript adapters a user would otherwise write: straightforward IPersistBase classes
// over better-sqlite3, ioredis, node-postgres, the mongodb driver and the MinIO S3 client, at the
// same durability and layout as ours.
const path = require("node:path");
const Database = require("better-sqlite3");
const Redis = require("ioredis");
const pg = require("pg");
const { MongoClient } = require("mongodb");
const Minio = require("minio");

const keyOrder = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" }).compare;
const namespaceOf = (baseDir) => path.posix.normalize(baseDir.replace(/\\/g, "/")).replace(/^\.\/|\/$/g, "");

/** better-sqlite3: WAL, one autocommit transaction per write (synchronous FULL or NORMAL). */
function createBetterSqlitePersist({ path: file, synchronous }) {
  let db = null;
  let statements = null;
  const open = () => {
    if (db) return statements;
    db = new Database(file);
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${synchronous}`);
    db.exec(`CREATE TABLE IF NOT EXISTS entities (namespace TEXT NOT NULL, entity TEXT NOT NULL, id TEXT NOT NULL,
             value TEXT NOT NULL, PRIMARY KEY (namespace, entity, id)) WITHOUT ROWID`);
    statements = {
      get: db.prepare("SELECT value FROM entities WHERE namespace = ? AND entity = ? AND id = ?"),
      has: db.prepare("SELECT 1 FROM entities WHERE namespace = ? AND entity = ? AND id = ?"),
      put: db.prepare(`INSERT INTO entities (namespace, entity, id, value) VALUES (?, ?, ?, ?)
                       ON CONFLICT (namespace, entity, id) DO UPDATE SET value = excluded.value`),
      all: db.prepare("SELECT id, value FROM entities WHERE namespace = ? AND entity = ?"),
      ids: db.prepare("SELECT id FROM entities WHERE namespace = ? AND entity = ?"),
      del: db.prepare("DELETE FROM entities WHERE namespace = ? AND entity = ? AND id = ?"),
    };
    return statements;
  };
  return class BetterSqlitePersist {
    constructor(entityName, baseDir) {
      this.entityName = entityName;
      this.namespace = namespaceOf(baseDir);
    }
    static close() {
      db?.close();
      db = null;
    }
    static bulkLoad(entityName, baseDir, entries) {
      const s = open();
      db.transaction(() => {
        for (const [id, value] of entries) s.put.run(namespaceOf(baseDir), entityName, String(id), JSON.stringify(value));
      })();
    }
    async waitForInit() {
      if (this.ready) return;
      const s = open();
      for (const row of s.all.all(this.namespace, this.entityName)) {
        try {
          JSON.parse(row.value);
        } catch {
          s.del.run(this.namespace, this.entityName, row.id);
        }
      }
      this.ready = true;
    }
    async readValue(id) {
      const row = open().get.get(this.namespace, this.entityName, String(id));
      if (!row) throw new Error(`Entity ${this.entityName}:${id} not found`);
      return JSON.parse(row.value);
    }
    async hasValue(id) {
      return open().has.get(this.namespace, this.entityName, String(id)) !== undefined;
    }
    async writeValue(id, value) {
      open().put.run(this.namespace, this.entityName, String(id), JSON.stringify(value));
    }
    async *keys() {
      yield* open().ids.all(this.namespace, this.entityName).map((r) => r.id).sort(keyOrder);
    }
  };
}

/**
 * ioredis: one hash per entity, one shared client; with `cluster` (seed URLs) an ioredis
 * `Cluster` and the same hash-tag key layout as ours there.
 */
function createIoredisPersist({ url, prefix, cluster }) {
  let client = null;
  const seeds = () => cluster.map((seed) => ({ host: new URL(seed).hostname, port: Number(new URL(seed).port) }));
  const connect = () => (client ??= cluster ? new Redis.Cluster(seeds()) : new Redis(url, { lazyConnect: false }));
  const keyOf = (baseDir, entityName) => {
    const pair = JSON.stringify([namespaceOf(baseDir), entityName]);
    return cluster ? `${prefix}:{${pair}}` : `${prefix}:${pair}`;
  };
  return class IoredisPersist {
    constructor(entityName, baseDir) {
      this.entityName = entityName;
      this.key = keyOf(baseDir, entityName);
    }
    static close() {
      client?.disconnect();
      client = null;
    }
    static async bulkLoad(entityName, baseDir, entries) {
      const key = keyOf(baseDir, entityName);
      const pipeline = connect().pipeline();
      for (const [id, value] of entries) pipeline.hset(key, String(id), JSON.stringify(value));
      await pipeline.exec();
    }
    async waitForInit() {
      if (this.ready) return;
      const all = await connect().hgetall(this.key);
      for (const [id, value] of Object.entries(all)) {
        try {
          JSON.parse(value);
        } catch {
          await client.hdel(this.key, id);
        }
      }
      this.ready = true;
    }
    async readValue(id) {
      const value = await connect().hget(this.key, String(id));
      if (value === null) throw new Error(`Entity ${this.entityName}:${id} not found`);
      return JSON.parse(value);
    }
    async hasValue(id) {
      return (await connect().hexists(this.key, String(id))) === 1;
    }
    async writeValue(id, value) {
      await connect().hset(this.key, String(id), JSON.stringify(value));
    }
    async *keys() {
      yield* (await connect().hkeys(this.key)).sort(keyOrder);
    }
  };
}

/**
 * node-postgres: a pool of 10 connections, our table layout, one autocommit upsert per write
 * (`INSERT … ON CONFLICT`, as backtest-kit's author's TypeORM adapter does), one query per read.
 */
function createPgPersist({ url, table }) {
  let pool = null;
  let created = null;
  const connect = () => (pool ??= new pg.Pool({ connectionString: url, max: 10 }));
  const ensure = () =>
    (created ??= connect().query(
      `CREATE TABLE IF NOT EXISTS ${table} (namespace text COLLATE "C" NOT NULL, entity text COLLATE "C" NOT NULL, ` +
        `id text COLLATE "C" NOT NULL, value text NOT NULL, PRIMARY KEY (namespace, entity, id))`,
    ));
  return class PgPersist {
    constructor(entityName, baseDir) {
      this.entityName = entityName;
      this.where = [namespaceOf(baseDir), entityName];
    }
    static async close() {
      const closing = pool;
      pool = null;
      created = null;
      await closing?.end();
    }
    static async bulkLoad(entityName, baseDir, entries) {
      await ensure();
      await connect().query(
        `INSERT INTO ${table} SELECT $1, $2, d.id, d.value FROM unnest($3::text[], $4::text[]) AS d(id, value) ` +
          "ON CONFLICT (namespace, entity, id) DO UPDATE SET value = EXCLUDED.value",
        [namespaceOf(baseDir), entityName, entries.map(([id]) => String(id)), entries.map(([, value]) => JSON.stringify(value))],
      );
    }
    async waitForInit() {
      if (this.ready) return;
      await ensure();
      const { rows } = await connect().query(`SELECT id, value FROM ${table} WHERE namespace = $1 AND entity = $2`, this.where);
      for (const { id, value } of rows) {
        try {
          JSON.parse(value);
        } catch {
          await connect().query(`DELETE FROM ${table} WHERE namespace = $1 AND entity = $2 AND id = $3`, [...this.where, id]);
        }
      }
      this.ready = true;
    }
    async readValue(id) {
      const { rows } = await connect().query(`SELECT value FROM ${table} WHERE namespace = $1 AND entity = $2 AND id = $3`, [...this.where, String(id)]);
      if (rows.length === 0) throw new Error(`Entity ${this.entityName}:${id} not found`);
      return JSON.parse(rows[0].value);
    }
    async hasValue(id) {
      const { rows } = await connect().query(`SELECT 1 FROM ${table} WHERE namespace = $1 AND entity = $2 AND id = $3`, [...this.where, String(id)]);
      return rows.length > 0;
    }
    async writeValue(id, value) {
      await connect().query(
        `INSERT INTO ${table} VALUES ($1, $2, $3, $4) ON CONFLICT (namespace, entity, id) DO UPDATE SET value = EXCLUDED.value`,
        [...this.where, String(id), JSON.stringify(value)],
      );
    }
    async *keys() {
      const { rows } = await connect().query(`SELECT id FROM ${table} WHERE namespace = $1 AND entity = $2`, this.where);
      yield* rows.map((row) => row.id).sort(keyOrder);
    }
  };
}

/**
 * The mongodb driver: our layout (one collection, `_id` = JSON [namespace, entity, id], `v` = the
 * JSON text), one `replaceOne` upsert per write with `j: true` (as our durable writes), one
 * `findOne` per read, `keys()` a range query on `_id`.
 */
function createMongoDriverPersist({ url, collection }) {
  let client = null;
  const documents = () => (client ??= new MongoClient(url)).db("backtest_kit").collection(collection);
  return class MongoDriverPersist {
    // Upserts name `_id` in the replacement as well: nx-27017 gives an upserted replacement
    // without one a new ObjectId.
    constructor(entityName, baseDir) {
      this.entityName = entityName;
      const pair = JSON.stringify([namespaceOf(baseDir), entityName]);
      this.prefix = `${pair.slice(0, -1)},`;
    }
    static async close() {
      const closing = client;
      client = null;
      await closing?.close();
    }
    static async bulkLoad(entityName, baseDir, entries) {
      const store = new MongoDriverPersist(entityName, baseDir);
      await documents().bulkWrite(
        entries.map(([id, value]) => ({ replaceOne: { filter: { _id: store.key(id) }, replacement: { _id: store.key(id), v: JSON.stringify(value) }, upsert: true } })),
      );
    }
    key(id) {
      return `${this.prefix}${JSON.stringify(String(id))}]`;
    }
    async waitForInit() {
      if (this.ready) return;
      for await (const doc of documents().find(this.range())) {
        try {
          JSON.parse(doc.v);
        } catch {
          await documents().deleteOne({ _id: doc._id });
        }
      }
      this.ready = true;
    }
    range() {
      return { _id: { $gte: this.prefix, $lt: `${this.prefix.slice(0, -1)}-` } };
    }
    async readValue(id) {
      const doc = await documents().findOne({ _id: this.key(id) });
      if (!doc) throw new Error(`Entity ${this.entityName}:${id} not found`);
      return JSON.parse(doc.v);
    }
    async hasValue(id) {
      return (await documents().countDocuments({ _id: this.key(id) }, { limit: 1 })) > 0;
    }
    async writeValue(id, value) {
      const key = this.key(id);
      await documents().replaceOne({ _id: key }, { _id: key, v: JSON.stringify(value) }, { upsert: true, writeConcern: { journal: true } });
    }
    async *keys() {
      const ids = await documents().find(this.range()).project({ _id: 1 }).toArray();
      yield* ids.map((doc) => JSON.parse(doc._id)[2]).sort(keyOrder);
    }
  };
}

/**
 * The MinIO client (the S3 client of backtest-kit's author's adapter): our layout
 * (`{prefix}/{namespace}/{entityName}/{id}.json`), one PUT per write, one GET per read, `keys()` a
 * ListObjectsV2 of the entity's "directory".
 */
function createMinioPersist({ endpoint, bucket, prefix, accessKeyId, secretAccessKey }) {
  const url = new URL(endpoint);
  const client = new Minio.Client({
    endPoint: url.hostname,
    port: Number(url.port),
    useSSL: url.protocol === "https:",
    accessKey: accessKeyId,
    secretKey: secretAccessKey,
    pathStyle: true,
    region: "us-east-1",
  });
  const text = async (stream) => {
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    return Buffer.concat(chunks).toString("utf8");
  };
  return class MinioPersist {
    constructor(entityName, baseDir) {
      this.entityName = entityName;
      this.dir = [prefix, namespaceOf(baseDir), entityName].filter(Boolean).join("/");
    }
    static async close() {}
    key(id) {
      return `${this.dir}/${id}.json`;
    }
    async waitForInit() {}
    async readValue(id) {
      try {
        return JSON.parse(await text(await client.getObject(bucket, this.key(id))));
      } catch (e) {
        if (e?.code === "NoSuchKey") throw new Error(`Entity ${this.entityName}:${id} not found`);
        throw e;
      }
    }
    async hasValue(id) {
      try {
        await client.statObject(bucket, this.key(id));
        return true;
      } catch (e) {
        if (e?.code === "NotFound" || e?.code === "NoSuchKey") return false;
        throw e;
      }
    }
    async writeValue(id, value) {
      await client.putObject(bucket, this.key(id), Buffer.from(JSON.stringify(value)));
    }
    async *keys() {
      const ids = [];
      for await (const item of client.listObjectsV2(bucket, `${this.dir}/`, false)) {
        if (item.name?.endsWith(".json")) ids.push(item.name.slice(this.dir.length + 1, -5));
      }
      yield* ids.sort(keyOrder);
    }
  };
}

module.exports = { createMongoDriverPersist, createMinioPersist, createBetterSqlitePersist, createIoredisPersist, createPgPersist };
