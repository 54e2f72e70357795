// RustPostgresPersist beyond the shared suites: group commit, schema versioning and the migration
// lock, healing, options and credentials, password (scram-sha-256) and TLS servers, two processes
// on one table, and a server stopped and started under load. Servers that are stopped or configured
// differently are started here; the rest use the run's shared one.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

import { createPostgresPersist, setLogger } from "../index.js";
import { collect, makeTempDir, optionsError, removeDir, startWriter, withEnv } from "./helpers";
import { outageUnderLoad } from "./outage";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startPostgres } = require("../dev/postgres-server.cjs");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { isPayload } = require("./fixtures/backends.cjs");

interface PostgresServer {
  port: number;
  url: string;
  ca?: string;
  stop(mode?: string): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
  sql(text: string, database?: string): string;
}

const uniqueTable = () => `t_${randomUUID().replace(/-/g, "")}`;

let inspector: pg.Client;
beforeAll(async () => {
  inspector = new pg.Client({ connectionString: inject("postgresUrl") });
  await inspector.connect();
});
afterAll(async () => {
  await inspector?.end();
});

const refusal = (options: object) => optionsError(createPostgresPersist, options);

describe("writes", () => {
  it("64 concurrent writes are committed in a few transactions, not 64, and all land", async () => {
    const table = uniqueTable();
    const Persist = createPostgresPersist({ url: inject("postgresUrl"), table });
    try {
      await new Persist("warm", "ns").waitForInit(true);
      const before = Persist.stats();
      await Promise.all(Array.from({ length: 64 }, (_, i) => new Persist(`e${i % 4}`, "ns").writeValue(`id${i}`, { i })));
      const after = Persist.stats();
      expect(after.writes - before.writes).toBe(64);
      expect(after.commits - before.commits).toBeLessThanOrEqual(16);
      const { rows } = await inspector.query(`SELECT count(*)::int AS n FROM ${table}`);
      expect(rows[0].n).toBe(64);
    } finally {
      await Persist.close();
    }
  });

  it("a statement the server refuses fails only its own request; the others of its group commit", async () => {
    const table = uniqueTable();
    const Persist = createPostgresPersist({ url: inject("postgresUrl"), table });
    try {
      await new Persist("e", "ns").waitForInit(true);
      // A trigger (as a DBA might add) that refuses one id.
      await inspector.query(`CREATE FUNCTION ${table}_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.id = 'poison' THEN RAISE EXCEPTION 'refused by policy'; END IF; RETURN NEW; END $$`);
      await inspector.query(`CREATE TRIGGER guard BEFORE INSERT OR UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_guard()`);
      const ids = ["a", "b", "poison", "c", "d", "e", "f", "g"];
      const outcomes = await Promise.all(
        ids.map((id, i) => new Persist(`e${i}`, "ns").writeValue(id, { id }).then(() => "ok", (e: any) => `${e.code} ${e.message}`)),
      );
      expect(outcomes.filter((o) => o === "ok")).toHaveLength(7);
      expect(outcomes[2]).toMatch(/^PERSIST_IO .*refused by policy/);
      const { rows } = await inspector.query(`SELECT id FROM ${table} ORDER BY id`);
      expect(rows.map((r: any) => r.id)).toEqual(["a", "b", "c", "d", "e", "f", "g"]);
    } finally {
      await Persist.close();
    }
  });

  it("stores the JSON text exactly as written: key order, spacing of nested values, unicode", async () => {
    const table = uniqueTable();
    const Persist = createPostgresPersist({ url: inject("postgresUrl"), table });
    try {
      const value = { z: 1, a: { y: [1, 2, { b: "é\u2028😀" }], x: null }, "": "empty key", n: 1e21 };
      await new Persist("e", "ns").writeValue("k", value);
      const { rows } = await inspector.query(`SELECT value FROM ${table} WHERE id = 'k'`);
      expect(rows[0].value).toBe(JSON.stringify(value));
      expect(await new Persist("e", "ns").readValue("k")).toEqual(value);
    } finally {
      await Persist.close();
    }
  });
});

describe("schema", () => {
  it("processes starting at once on a new table all succeed, under the migration lock", { timeout: 60_000 }, async () => {
    const table = uniqueTable();
    const script = `
      const { createPostgresPersist } = require(${JSON.stringify(path.join(__dirname, "..", "index.js"))});
      const Persist = createPostgresPersist({ url: process.env.URL, table: process.env.TABLE });
      const store = new Persist("e", "ns");
      // All at the same moment, so that without the lock their CREATE TABLEs would race.
      new Promise((resolve) => setTimeout(resolve, Number(process.env.AT) - Date.now()))
        .then(() => store.waitForInit(true))
        .then(() => store.writeValue(process.env.ID, { id: process.env.ID }))
        .then(() => Persist.close())
        .then(() => console.log("ok"), (e) => { console.log(e.code + " " + e.message); process.exit(1); });`;
    const at = Date.now() + 2000;
    const children = Array.from({ length: 6 }, (_, i) =>
      new Promise<string>((resolve) =>
        execFile(process.execPath, ["-e", script], { env: { ...process.env, URL: inject("postgresUrl"), TABLE: table, ID: `p${i}`, AT: String(at) } }, (error, stdout) =>
          resolve(error ? `failed: ${stdout}${error.message}` : stdout.trim()),
        ),
      ),
    );
    expect(await Promise.all(children)).toEqual(Array(6).fill("ok"));
    expect((await inspector.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(6);
    expect((await inspector.query(`SELECT value FROM ${table}_meta WHERE key = 'schema_version'`)).rows[0].value).toBe("1");
  });

  it("a newer schema version is refused with PERSIST_SCHEMA and left as it is", async () => {
    const table = uniqueTable();
    const url = inject("postgresUrl");
    const First = createPostgresPersist({ url, table });
    await new First("e", "ns").writeValue("k", { v: 1 });
    await First.close();
    await inspector.query(`UPDATE ${table}_meta SET value = '2' WHERE key = 'schema_version'`);
    // Another configuration (another timeout): a process that has not seen the table yet.
    const Later = createPostgresPersist({ url, table, commandTimeoutMs: 4000 });
    try {
      const err: any = await new Later("e", "ns").readValue("k").catch((e) => e);
      expect(err?.code, err?.message).toBe("PERSIST_SCHEMA");
      expect(err.message).toMatch(/schema version 2 is newer than the 1/);
      expect((await inspector.query(`SELECT value FROM ${table}`)).rows).toEqual([{ value: '{"v":1}' }]);
      expect((await inspector.query(`SELECT value FROM ${table}_meta`)).rows).toEqual([{ value: "2" }]);
    } finally {
      await Later.close();
    }
  });

  it("init moves rows that are not JSON aside, logs them, and leaves the rest", async () => {
    const table = uniqueTable();
    const Persist = createPostgresPersist({ url: inject("postgresUrl"), table });
    const warnings: string[] = [];
    setLogger({ warn: (message: string) => warnings.push(message) } as any);
    try {
      await new Persist("e", "ns").writeValue("good", { ok: true });
      await inspector.query(`INSERT INTO ${table} VALUES ('ns', 'e', 'bad', '{"truncated":')`);
      const store = new Persist("e", "ns");
      await store.waitForInit(true);
      expect(await collect(store.keys())).toEqual(["good"]);
      const { rows } = await inspector.query(`SELECT id, value FROM ${table}_quarantine`);
      expect(rows).toEqual([{ id: "bad", value: '{"truncated":' }]);
      expect(warnings.join("\n")).toMatch(/id=bad.*moved aside/);
    } finally {
      setLogger(console as any);
      await Persist.close();
    }
  });
});

describe("options and credentials", () => {
  it("refuses bad options, naming what is wrong, never the password", () => {
    const cases: Array<[object, RegExp]> = [
      [{ url: "mysql://u:hunter2@h/db" }, /postgres:\/\//],
      [{ url: "postgres://u:hunter2@h/db?sslmode=sometimes" }, /sslmode/],
      [{ table: "drop table x" }, /table must be/],
      [{ schema: "9lives" }, /schema must be/],
      [{ table: "t".repeat(53) }, /table must be/],
      [{ tabel: "x" }, /tabel/],
      [{ connectTimeoutMs: -1 }, /connectTimeoutMs/],
      [{ tls: { ca: "no certificate here" } }, /PEM/],
      [{ url: "postgres://h/db?sslmode=disable", tls: { ca: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n" } }, /sslmode=disable/],
    ];
    for (const [options, message] of cases) {
      const err = refusal(options);
      expect(err?.code, JSON.stringify(options)).toBe("PERSIST_INVALID_CONFIG");
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain("hunter2");
    }
  });

  it("describes the options without credentials, and takes the URL from the environment", () => {
    const described = createPostgresPersist({ url: "postgres://bot:hunter2@db.internal:6543/trading?sslmode=verify-full", table: "bot_a" }).options as any;
    expect(described).toEqual({
      url: "postgres://***@db.internal:6543/trading?sslmode=verify-full",
      schema: "public",
      table: "bot_a",
      sslmode: "verify-full",
      connectTimeoutMs: 5000,
      commandTimeoutMs: 5000,
      tls: { ca: false },
      encryption: false,
    });
    withEnv({ BACKTEST_KIT_RS_POSTGRES_URL: undefined, DATABASE_URL: "postgres://a:hunter2@from-database-url/db" }, () => {
      expect((createPostgresPersist().options as any).url).toBe("postgres://***@from-database-url/db");
      withEnv({ BACKTEST_KIT_RS_POSTGRES_URL: "postgres://from-our-variable/db" }, () => {
        expect((createPostgresPersist().options as any).url).toBe("postgres://from-our-variable/db");
      });
    });
  });

  it("refuses a database whose encoding is not UTF8", async () => {
    const database = `latin_${randomUUID().replace(/-/g, "")}`;
    await inspector.query(`CREATE DATABASE ${database} ENCODING 'SQL_ASCII' TEMPLATE template0`);
    const url = inject("postgresUrl").replace(/\/postgres$/, `/${database}`);
    const Persist = createPostgresPersist({ url });
    try {
      const err: any = await new Persist("e", "ns").waitForInit(true).catch((e) => e);
      expect(err?.code, err?.message).toBe("PERSIST_INVALID_CONFIG");
      expect(err.message).toMatch(/encoding is SQL_ASCII/);
    } finally {
      await Persist.close();
      await inspector.query(`DROP DATABASE ${database} WITH (FORCE)`);
    }
  });
});

describe("a password-protected server (scram-sha-256) with TLS", () => {
  let server: PostgresServer;
  const password = "pg-secret-4f1a";
  beforeAll(async () => {
    server = await startPostgres({ password, tls: true });
  }, 60_000);
  afterAll(async () => {
    await server?.destroy();
  });
  const base = () => `postgres://postgres:${password}@127.0.0.1:${server.port}/postgres`;

  /** Whether the library's connections to `server` are encrypted, as the server sees them. */
  const encrypted = () =>
    server.sql("SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'backtest-kit-rs'");

  it("the right password works; a wrong or missing one is PERSIST_AUTH, and the password never shows", async () => {
    const Right = createPostgresPersist({ url: `${base()}?sslmode=disable`, table: uniqueTable() });
    const Wrong = createPostgresPersist({ url: `postgres://postgres:not-${password}@127.0.0.1:${server.port}/postgres?sslmode=disable` });
    const Missing = createPostgresPersist({ url: `postgres://postgres@127.0.0.1:${server.port}/postgres?sslmode=disable` });
    try {
      await new Right("e", "ns").writeValue("k", { v: 1 });
      expect(await new Right("e", "ns").readValue("k")).toEqual({ v: 1 });
      for (const Persist of [Wrong, Missing]) {
        const err: any = await new Persist("e", "ns").readValue("k").catch((e) => e);
        expect(err?.code, err?.message).toBe("PERSIST_AUTH");
        expect(err.message).not.toContain(password);
      }
      expect(JSON.stringify(Right.options)).not.toContain(password);
    } finally {
      await Promise.all([Right.close(), Wrong.close(), Missing.close()]);
    }
  });

  it("sslmode=verify-full with the CA, and require without it, connect encrypted; verify-full without the CA is refused", async () => {
    const Verified = createPostgresPersist({ url: `${base()}?sslmode=verify-full`, tls: { ca: server.ca }, table: uniqueTable() });
    const Required = createPostgresPersist({ url: `${base()}?sslmode=require`, table: uniqueTable() });
    const Untrusted = createPostgresPersist({ url: `${base()}?sslmode=verify-full`, connectTimeoutMs: 3000 });
    try {
      await new Verified("e", "ns").writeValue("k", { v: "verified" });
      await new Required("e", "ns").writeValue("k", { v: "required" });
      expect(encrypted()).toBe("t");
      const err: any = await new Untrusted("e", "ns").readValue("k").catch((e) => e);
      expect(err?.code).toMatch(/^PERSIST_/);
      expect(err.message).toMatch(/certificate|tls|TLS/);
      expect(err.message).not.toContain(password);
    } finally {
      await Promise.all([Verified.close(), Required.close(), Untrusted.close()]);
    }
  });
});

describe("outage", () => {
  it("a server stopped under load: PERSIST_UNAVAILABLE within the timeouts, nothing unhandled; the same instances work once it is back", { timeout: 120_000 }, async () => {
    const server: PostgresServer = await startPostgres();
    const Persist = createPostgresPersist({ url: server.url, connectTimeoutMs: 1000, commandTimeoutMs: 1000 });
    try {
      // A crash: the server recovers from its WAL on start (synchronous_commit: on).
      await outageUnderLoad(Persist, { stop: () => server.stop("immediate"), start: () => server.start() }, 2500);
    } finally {
      await Persist.close();
      await server.destroy();
    }
  });

  it("two processes writing one table at once: every acknowledged write of each is there", { timeout: 60_000 }, async () => {
    const root = await makeTempDir("pg-two");
    const table = uniqueTable();
    const env = { BACKTEST_KIT_RS_POSTGRES_URL: inject("postgresUrl"), BKRS_STORE_NAME: table };
    const writers = ["a", "b"].map((id) => startWriter(["postgres", root, "shared", id, 0, 0], env));
    try {
      await Promise.all(writers.map((w) => w.ready));
      await Promise.all(writers.map((w) => w.untilAck(200)));
      for (const w of writers) w.child.kill("SIGKILL");
      await Promise.all(writers.map((w) => w.exited));
      const Persist = createPostgresPersist({ url: inject("postgresUrl"), table });
      try {
        for (const [id, w] of [["a", writers[0]], ["b", writers[1]]] as const) {
          const value: any = await new Persist("shared", root).readValue(id);
          expect(isPayload(value)).toBe(true);
          expect(value.seq).toBeGreaterThanOrEqual(w.lastAck());
        }
      } finally {
        await Persist.close();
      }
    } finally {
      for (const w of writers) w.child.kill("SIGKILL");
      await removeDir(root);
    }
  });
});
