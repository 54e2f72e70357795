// One store URL syntax, parsed once in the core: the factories (options or the URL string),
// createPersist(url), the environment variables and the command's STORE all read `?prefix=`,
// `?table=`, `?collection=` the same way, and refuse what they do not know.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

import * as lib from "../index.js";
import { makeTempDir, removeDir, withEnv } from "./helpers";

const BIN = path.join(__dirname, "..", "bin", "backtest-kit-rs.cjs");
const run = promisify(execFile);

let root: string;
beforeAll(async () => {
  root = await makeTempDir("urls");
});
afterAll(async () => {
  await removeDir(root);
});

const tag = () => randomUUID().replace(/-/g, "").slice(0, 16);

/** `base` with `name=value` added to its query. */
const withParam = (base: string, name: string, value: string) => `${base}${base.includes("?") ? "&" : "?"}${name}=${value}`;

/** Per server backend: its default store's URL, the parameter naming another store, its env variable. */
const servers: Array<{ kind: string; env: string; param: string; base: () => string; Default: () => any; create: (o: any) => any }> = [
  { kind: "redis", env: "BACKTEST_KIT_RS_REDIS_URL", param: "prefix", base: () => `${inject("redisUrl")}/4`, Default: () => lib.RustRedisPersist, create: lib.createRedisPersist },
  { kind: "postgres", env: "BACKTEST_KIT_RS_POSTGRES_URL", param: "table", base: () => inject("postgresUrl"), Default: () => lib.RustPostgresPersist, create: lib.createPostgresPersist },
  { kind: "mongodb", env: "BACKTEST_KIT_RS_MONGO_URL", param: "collection", base: () => inject("mongoUrl"), Default: () => lib.RustMongoPersist, create: lib.createMongoPersist },
];

async function roundTrip(Backend: any, write?: unknown): Promise<unknown> {
  const store = new Backend("BTCUSDT_s1_ex1", "./dump/data/signal/");
  await store.waitForInit(true);
  if (write !== undefined) await store.writeValue("BTCUSDT", write);
  return (await store.hasValue("BTCUSDT")) ? store.readValue("BTCUSDT") : undefined;
}

describe.each(servers)("$kind: one URL in code, in the environment and in the command", ({ kind, env, param, base, Default, create }) => {
  it("names the same store whichever way it is given, and no other", async () => {
    const mine = withParam(base(), param, `url_${tag()}`);
    const value = { id: randomUUID(), kind };
    const FromFactory = create(mine);
    const FromCreate = lib.createPersist(mine);
    expect(FromCreate.name).toBe(Default().name);
    try {
      await roundTrip(FromFactory, value);
      expect(await roundTrip(FromCreate)).toEqual(value);
      // The environment variable: the default class reads the same store.
      const fromEnv = await withEnv({ [env]: mine }, () => roundTrip(Default()));
      expect(fromEnv).toEqual(value);
      // Without the parameter the URL names the default store, which does not hold it.
      const Plain = create(base());
      expect(await roundTrip(Plain)).not.toEqual(value);
      await Plain.close();
      // The command lists the entity under the same URL.
      const { stdout } = await run(process.execPath, [BIN, "inspect", mine, "--json"], { env: { ...process.env, BACKTEST_KIT_RS_KEY: "" } });
      expect(stdout).toContain("BTCUSDT_s1_ex1");
    } finally {
      await FromFactory.close();
      await FromCreate.close();
    }
  });

  it("refuses a parameter it does not know, the parameter given twice, and a URL of another backend", () => {
    const invalid = (pattern: RegExp) => expect.objectContaining({ code: "PERSIST_INVALID_CONFIG", message: expect.stringMatching(pattern) });
    const mine = withParam(base(), param, `url_${tag()}`);
    expect(() => create({ url: mine, [param]: "other" })).toThrow(invalid(/given both as an option and as the url/));
    expect(() => create(withParam(mine, param, "again"))).toThrow(invalid(/given twice/));
    expect(() => lib.createSqlitePersist(mine)).toThrow(invalid(/URLs are for Rust/));
  });
});

describe("the URL syntax", () => {
  it("picks each backend from the scheme, and refuses what is not a store URL", () => {
    const cases: Array<[string, string]> = [
      ["file:", "RustFilePersist"],
      [`sqlite:${path.join(root, "a.sqlite")}?synchronous=NORMAL&syncReads=false`, "RustSqlitePersist"],
      ["redis://127.0.0.1:1/0?prefix=a", "RustRedisPersist"],
      ["rediss://127.0.0.1:1/0", "RustRedisPersist"],
      ["postgres://u@127.0.0.1:1/db?table=t", "RustPostgresPersist"],
      ["postgresql://u@127.0.0.1:1/db", "RustPostgresPersist"],
      ["mongodb://127.0.0.1:1/?collection=c", "RustMongoPersist"],
      ["s3://bucket-a/prefix?region=eu-west-1&endpoint=http://127.0.0.1:1", "RustS3Persist"],
    ];
    for (const [url, name] of cases) expect(lib.createPersist(url).name, url).toBe(name);
    expect((lib.createPersist(cases[1][0]) as any).options).toMatchObject({ synchronous: "NORMAL", syncReads: false });
    expect((lib.createPersist("redis://127.0.0.1:1/0?prefix=bot-a") as any).options.prefix).toBe("bot-a");
    const invalid = (pattern: RegExp) => expect.objectContaining({ code: "PERSIST_INVALID_CONFIG", message: expect.stringMatching(pattern) });
    expect(() => lib.createPersist("ftp://x")).toThrow(invalid(/not a store URL .*file:, sqlite:, redis:/));
    expect(() => lib.createPersist("redis://127.0.0.1:1/0?prefx=a")).toThrow(invalid(/unknown parameter "prefx"/));
    expect(() => lib.createPersist("sqlite:./x.sqlite?sync=FULL")).toThrow(invalid(/unknown parameter "sync"/));
    // The drivers' own parsers refuse what is neither ours nor theirs.
    expect(() => lib.createPersist("postgres://u@127.0.0.1:1/db?tabel=x")).toThrow(invalid(/invalid connection string/));
    expect(() => lib.createPersist("mongodb://127.0.0.1:1/?collecton=x")).toThrow(invalid(/collecton is an invalid option/));
    expect(() => lib.createPersist("s3://bucket-a/p?regoin=x")).toThrow(invalid(/unknown parameter "regoin"/));
    expect(() => lib.createPersist("file:./dump")).toThrow(invalid(/file: alone/));
    expect(() => lib.createPersist(42 as any)).toThrow(invalid(/expects a store URL string/));
    expect(() => lib.createRedisPersist({ url: "redis://" })).toThrow(invalid(/not a valid Redis URL/));
    expect(() => lib.createRedisPersist({ host: "h", keyPrefix: "p" } as any)).toThrow(invalid(/did you mean prefix\?/));
  });

  it("is refused by the command the same way: one line naming the setting, exit 2", async () => {
    const failed = await run(process.execPath, [BIN, "inspect", "redis://127.0.0.1:1/0?prefx=a"]).catch((err) => err);
    expect(failed.code).toBe(2);
    expect(failed.stderr.trim().split("\n")).toHaveLength(1);
    expect(failed.stderr).toMatch(/unknown parameter "prefx"/);
    const env = { ...process.env, BACKTEST_KIT_RS_REDIS_URL: "redis://" };
    const fromEnv = await run(process.execPath, [BIN, "inspect", "redis:"], { env }).catch((err) => err);
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toMatch(/the environment variable BACKTEST_KIT_RS_REDIS_URL/);
  });
});
