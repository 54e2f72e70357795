// RustFilePersist behaviour beyond the shared suite: byte compatibility with PersistBase,
// crash safety, self-healing and the file-specific failure modes.
import fs from "node:fs/promises";
import path from "node:path";
import { PersistBase } from "backtest-kit";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { RustFilePersist, setLogger } from "../index.js";
import { collect, makeTempDir, removeDir, signalRow, sleep, startWriter, treeSnapshot } from "./helpers";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { isPayload, payload } = require("./fixtures/backends.cjs");

let root: string;
let warnings: string[];

beforeEach(async () => {
  root = await makeTempDir("filespec");
  warnings = [];
  setLogger({ warn: (message: string) => warnings.push(message) });
});
afterEach(async () => {
  setLogger({ warn: (message: string) => console.warn(message) });
  await removeDir(root);
});

describe("interop with backtest-kit's PersistBase", () => {
  const entity = "ex1/BTCUSDT/1m";
  const docs: Array<[string | number, unknown]> = [
    [1764150000000, { open: 42000, close: 42010.5 }],
    [10, { n: 10 }],
    [2, null],
    ["BTCUSDT", signalRow(3)],
    ["positions", [["k", { when: "2026-11-26T00:00:00.000Z" }]]],
  ];

  it("reads what PersistBase wrote", async () => {
    const baseDir = path.join(root, "data/candle/");
    const theirs = new PersistBase(entity, baseDir);
    await theirs.waitForInit(true);
    for (const [id, value] of docs) await theirs.writeValue(id, value as any);

    const ours = new RustFilePersist(entity, baseDir);
    await ours.waitForInit(true);
    for (const [id, value] of docs) expect(await ours.readValue(id)).toEqual(value);
    expect(await collect(ours.keys())).toEqual(await collect(theirs.keys()));
  });

  it("writes what PersistBase reads, byte for byte the same files", async () => {
    const ours = new RustFilePersist(entity, path.join(root, "ours"));
    const theirs = new PersistBase(entity, path.join(root, "theirs"));
    await ours.waitForInit(true);
    await theirs.waitForInit(true);
    for (const [id, value] of docs) {
      await ours.writeValue(id, value);
      await theirs.writeValue(id, value as any);
    }
    expect(await treeSnapshot(path.join(root, "ours"))).toEqual(await treeSnapshot(path.join(root, "theirs")));

    const reader = new PersistBase(entity, path.join(root, "ours"));
    await reader.waitForInit(true);
    for (const [id, value] of docs) expect(await reader.readValue(id)).toEqual(value);
  });
});

describe("crash safety", () => {
  it("two processes writing one id never leave torn or mixed content", async () => {
    const baseDir = path.join(root, "two");
    const seed = new RustFilePersist("ent", baseDir);
    await seed.waitForInit(true);
    await seed.writeValue("k", payload(0));
    const writers = [startWriter(["file", baseDir, "ent", "k", 1, 300]), startWriter(["file", baseDir, "ent", "k", 100000, 300])];
    // Read all the while: a reader must only ever see whole versions.
    let done = false;
    let reads = 0;
    const reader = (async () => {
      while (!done) {
        expect(isPayload(await seed.readValue("k"))).toBe(true);
        reads++;
      }
    })();
    const results = await Promise.all(writers.map((w) => w.exited));
    done = true;
    await reader;
    expect(reads).toBeGreaterThan(10);
    for (const [i, r] of results.entries()) expect(r.code, writers[i].stderr()).toBe(0);
    const store = new RustFilePersist("ent", baseDir);
    await store.waitForInit(true);
    expect(isPayload(await store.readValue("k"))).toBe(true);
    expect(await fs.readdir(path.join(baseDir, "ent"))).toEqual(["k.json"]);
  });
});

describe("self-healing init", () => {
  it("moves empty, truncated and garbage documents aside, keeps valid ones, and logs each path", async () => {
    const dir = path.join(root, "heal", "ent");
    await fs.mkdir(dir, { recursive: true });
    // Deeper than serde_json's default limit of 128, which must not make a document "invalid".
    const deep = "[".repeat(2000) + "]".repeat(2000);
    const valid: Record<string, string> = {
      "good.json": JSON.stringify(signalRow(1)),
      "null.json": "null",
      "deep.json": deep,
      "huge-number.json": "1e400",
      "lone-surrogate.json": JSON.stringify("\ud800"),
    };
    const invalid: Record<string, string> = {
      "empty.json": "",
      "truncated.json": JSON.stringify(signalRow(2)).slice(0, 100),
      "garbage.json": "\u0000\u0001binary garbage",
      "trailing.json": "{} {}",
    };
    for (const [name, text] of Object.entries({ ...valid, ...invalid })) await fs.writeFile(path.join(dir, name), text);

    const store = new RustFilePersist("ent", path.join(root, "heal"));
    await store.waitForInit(true);
    const after = await fs.readdir(dir);
    expect(after.filter((n) => n.endsWith(".json")).sort()).toEqual(Object.keys(valid).sort());
    for (const [name, text] of Object.entries(invalid)) {
      expect(warnings.some((w) => w.includes("moved invalid document aside") && w.includes(path.join(dir, name)))).toBe(true);
      // Moved aside, not destroyed: the bytes are kept under a name no init or keys() touches.
      const aside = after.filter((n) => n.startsWith(`${name}.corrupt-`));
      expect(aside).toHaveLength(1);
      expect(await fs.readFile(path.join(dir, aside[0]), "utf8")).toBe(text);
    }
    expect(JSON.stringify(await store.readValue("deep"))).toBe(deep);
    expect(await store.readValue("huge-number")).toBe(Infinity);

    // PersistBase agrees on what is valid (it keeps the same documents) and leaves what we moved aside alone.
    const reference = new PersistBase("ent", path.join(root, "heal"));
    await reference.waitForInit(true);
    expect((await fs.readdir(dir)).sort()).toEqual(after.sort());
  });

  it("keeps exactly the documents JSON.parse accepts (400 mutated documents)", async () => {
    const dir = path.join(root, "fuzz", "ent");
    await fs.mkdir(dir, { recursive: true });
    // A deterministic generator: valid documents, then single-character mutations of them.
    let seed = 12345;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    const alphabet = ['{', '}', '[', ']', '"', ':', ',', '\\', '-', '.', 'e', '0', '1', ' ', '\n', 'n', 't', 'u', '\u00e9'];
    const expected: string[] = [];
    for (let i = 0; i < 400; i++) {
      let text = JSON.stringify({ i, v: [1.5e300, -0, "s\"q\\", null, true], nested: { deep: [[{}]] } });
      if (i % 4 !== 0) {
        const at = random(text.length);
        const op = random(3);
        const ch = alphabet[random(alphabet.length)];
        text = op === 0 ? text.slice(0, at) + text.slice(at + 1) : op === 1 ? text.slice(0, at) + ch + text.slice(at) : text.slice(0, at) + ch + text.slice(at + 1);
      }
      await fs.writeFile(path.join(dir, `d${i}.json`), text);
      try {
        JSON.parse(text);
        expected.push(`d${i}`);
      } catch {
        // JSON.parse rejects it: init must remove it
      }
    }
    const store = new RustFilePersist("ent", path.join(root, "fuzz"));
    await store.waitForInit(true);
    const kept = await collect(store.keys());
    expect(kept.sort()).toEqual(expected.sort());
    expect(expected.length).toBeGreaterThan(100);
    expect(expected.length).toBeLessThan(400);
  });

  it("sweeps tmp files older than 120 s, keeps younger ones, and never lists them", async () => {
    const dir = path.join(root, "sweep", "ent");
    await fs.mkdir(dir, { recursive: true });
    const stale = path.join(dir, ".tmp-0123456789ab-a.json");
    const fresh = path.join(dir, ".tmp-ba9876543210-a.json");
    await fs.writeFile(stale, '{"half":');
    await fs.writeFile(fresh, '{"in-flight":');
    const old = new Date(Date.now() - 121_000);
    await fs.utimes(stale, old, old);
    await fs.writeFile(path.join(dir, "a.json"), "1");

    const store = new RustFilePersist("ent", path.join(root, "sweep"));
    await store.waitForInit(true);
    expect((await fs.readdir(dir)).sort()).toEqual([path.basename(fresh), "a.json"].sort());
    expect(warnings.some((w) => w.includes("stale atomic-write tmp file") && w.includes(stale))).toBe(true);
    expect(await collect(store.keys())).toEqual(["a"]);
  });

  it("lists only ids that readValue accepts (PersistBase may have written others)", async () => {
    const dir = path.join(root, "odd", "ent");
    await fs.mkdir(dir, { recursive: true });
    for (const name of [".json", "a\\b.json", "ok.json", "notes.txt"]) await fs.writeFile(path.join(dir, name), "1");
    await fs.mkdir(path.join(dir, "sub.json"));
    const store = new RustFilePersist("ent", path.join(root, "odd"));
    await store.waitForInit(true);
    expect(await collect(store.keys())).toEqual(["ok"]);
    for await (const key of store.keys()) expect(await store.readValue(key)).toBe(1);
  });

  it("reports a document corrupted after init as PERSIST_CORRUPT", async () => {
    const store = new RustFilePersist("ent", root);
    await store.waitForInit(true);
    await fs.writeFile(path.join(root, "ent", "bad.json"), "{oops");
    const err: any = await store.readValue("bad").catch((e) => e);
    expect(err.code).toBe("PERSIST_CORRUPT");
    expect(err.message).toMatch(/^Failed to read entity ent:bad: /);
  });
});

describe("construction and init", () => {
  it("does no I/O in the constructor and defaults baseDir like PersistBase", async () => {
    const baseDir = path.join(root, "not-created");
    new RustFilePersist("ent", baseDir);
    await expect(fs.stat(baseDir)).rejects.toThrow();
    const defaulted = new RustFilePersist("ent");
    expect(defaulted.baseDir).toBe(path.join(process.cwd(), "logs/data"));
    expect(defaulted.entityName).toBe("ent");
  });

  it("throws when called without new", () => {
    expect(() => (RustFilePersist as any)("ent", root)).toThrow(TypeError);
  });

  it("rejects entity names that leave baseDir, before touching the disk", async () => {
    for (const name of ["..", "../x", "a/../../b", "nul\0"]) {
      let err: any;
      try {
        new RustFilePersist(name, path.join(root, "base"));
      } catch (e) {
        err = e;
      }
      expect(err?.code).toBe("PERSIST_INVALID_NAME");
    }
    expect(await treeSnapshot(root)).toEqual({});
  });

  it("retries a failed init instead of caching the failure", async () => {
    const blocker = path.join(root, "blocker");
    await fs.writeFile(blocker, "a file where a directory should be");
    const store = new RustFilePersist("ent", blocker);
    const err: any = await store.waitForInit(true).catch((e) => e);
    expect(err.code).toBe("PERSIST_IO");
    expect(err.message).toContain(blocker);
    await fs.rm(blocker);
    await store.waitForInit(false);
    await store.writeValue("k", 1);
    expect(await store.readValue("k")).toBe(1);
  });

  it("fails a write before init like PersistBase, with PERSIST_IO", async () => {
    const store = new RustFilePersist("ent", path.join(root, "uninit"));
    const err: any = await store.writeValue("k", 1).catch((e) => e);
    expect(err.code).toBe("PERSIST_IO");
    expect(err.message).toMatch(/^Failed to write entity ent:k: /);
  });
});

describe("what counts as a document", () => {
  // Creating symlinks needs a privilege on Windows.
  it.runIf(process.platform !== "win32")("hasValue, readValue and keys() agree on directories, symlinks and dangling links", async () => {
    const store = new RustFilePersist("odd", root);
    await store.waitForInit(true);
    await store.writeValue("real", { ok: 1 });
    const dir = path.join(root, "odd");
    await fs.mkdir(path.join(dir, "folder.json"));
    await fs.symlink(path.join(dir, "nowhere.json"), path.join(dir, "dangling.json"));
    await fs.symlink(path.join(dir, "real.json"), path.join(dir, "linked.json"));

    // Not documents: absent everywhere, as they would be for a reader that only sees files.
    for (const id of ["folder", "dangling"]) {
      expect(await store.hasValue(id)).toBe(false);
      const err: any = await store.readValue(id).catch((e) => e);
      expect(err.code).toBe("PERSIST_NOT_FOUND");
    }
    // A link to a document is that document, as PersistBase's readFile follows it.
    expect(await store.hasValue("linked")).toBe(true);
    expect(await store.readValue("linked")).toEqual({ ok: 1 });
    expect(await collect(store.keys())).toEqual(["linked", "real"]);
  });
});

describe("the completion queue", () => {
  it("settles every one of 20,000 interleaved requests", async () => {
    const stores = Array.from({ length: 8 }, (_, i) => new RustFilePersist(`q${i}`, root));
    await Promise.all(stores.map((s) => s.waitForInit(true)));
    const settled = await Promise.allSettled(
      Array.from({ length: 20_000 }, (_, i) => {
        const store = stores[i % stores.length];
        const id = `k${i % 50}`;
        // Reads of ids never written fail, writes succeed: both kinds must come back.
        return i % 3 === 0 ? store.writeValue(id, i) : i % 3 === 1 ? store.hasValue(id) : store.readValue(`absent${i}`);
      }),
    );
    expect(settled.filter((r) => r.status === "fulfilled")).toHaveLength(20_000 - Math.floor(20_000 / 3));
    expect(settled.filter((r) => r.status === "rejected").every((r: any) => r.reason.code === "PERSIST_NOT_FOUND")).toBe(true);
  });
});

describe("errors carry their cause", () => {
  it("an operating-system failure has errno, path and a Node-style cause", async () => {
    await fs.writeFile(path.join(root, "blocker"), "a file where a directory belongs");
    const store = new RustFilePersist("ent", path.join(root, "blocker"));
    const err: any = await store.waitForInit(true).catch((e) => e);
    expect(err.code).toBe("PERSIST_IO");
    expect(err.errno).toBeGreaterThan(0);
    expect(err.path).toContain("blocker");
    expect(err.cause).toBeInstanceOf(Error);
    expect(err.cause.code).toMatch(/^E[A-Z]+$/); // ENOTDIR or EEXIST, as Node names it
    expect(err.cause.errno).toBe(err.errno);
    expect(err.cause.path).toBe(err.path);
  });
});
