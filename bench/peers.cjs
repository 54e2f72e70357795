"use strict";
// The JavaScript adapters a user would otherwise write: straightforward IPersistBase classes
// over better-sqlite3, ioredis and node-postgres, at the same durability and layout as ours.
const path = require("node:path");
const Database = require("better-sqlite3");
const Redis = require("ioredis");
const pg = require("pg");

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

module.exports = { createBetterSqlitePersist, createIoredisPersist, createPgPersist };
