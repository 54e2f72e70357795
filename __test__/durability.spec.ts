// Durability proven by a system-call trace (strace): a durable write's data and its name reach
// the disk before its promise resolves; a cache write (atomic, no sync) issues no sync at all.
// SIGKILL tests cannot show this (the page cache survives a killed process); these tests fail
// when a sync is removed.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { makeTempDir, removeDir } from "./helpers";

const FIXTURE = path.join(__dirname, "fixtures", "durable-write.cjs");

interface Call {
  name: string;
  args: string;
  result: string;
}

/**
 * The calls a traced child made, in the order they completed (a call another thread
 * interrupted is joined with its "resumed" half), from its "start" marker to its "acked" one.
 */
function traceWrite(backend: "file" | "sqlite", dir: string, mode: "durable" | "atomic"): { calls: Call[]; fdPaths: Map<string, string[]> } {
  const out = path.join(dir, "trace.txt");
  execFileSync(
    "strace",
    ["-f", "-qq", "-s", "256", "-e", "trace=openat,open,fsync,fdatasync,rename,renameat,renameat2,linkat,write", "-o", out, process.execPath, FIXTURE, backend, dir, mode],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const unfinished = new Map<string, string>();
  const all: Call[] = [];
  for (const line of fs.readFileSync(out, "utf8").split("\n")) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, pid, rest] = m;
    let text = rest;
    if (text.endsWith("<unfinished ...>")) {
      unfinished.set(pid, text.slice(0, -"<unfinished ...>".length));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(text);
    if (resumed) text = (unfinished.get(pid) ?? "") + resumed[1];
    const call = /^(\w+)\((.*)\)\s+=\s+(.*)$/.exec(text);
    if (call) all.push({ name: call[1], args: call[2], result: call[3] });
  }
  // Which paths each fd number named (fd numbers are reused; any of them counts).
  const fdPaths = new Map<string, string[]>();
  for (const c of all) {
    const opened = /"([^"]+)"/.exec(c.args);
    if ((c.name === "openat" || c.name === "open") && opened && /^\d+/.test(c.result)) {
      const fd = c.result.split(" ")[0];
      fdPaths.set(fd, [...(fdPaths.get(fd) ?? []), opened[1]]);
    }
  }
  const marker = (text: string) => all.findIndex((c) => c.name === "write" && c.args.startsWith(`1, "${text}\\n"`));
  const start = marker("start");
  const acked = marker("acked");
  expect(start, "start marker traced").toBeGreaterThanOrEqual(0);
  expect(acked, "acked marker traced").toBeGreaterThan(start);
  return { calls: all.slice(start + 1, acked), fdPaths };
}

// strace is Linux's; macOS's syncs (F_FULLFSYNC) and Windows' are documented in the README.
const onLinux = process.platform === "linux";

const isSync = (c: Call) => (c.name === "fsync" || c.name === "fdatasync") && c.result.startsWith("0");
const fdOf = (c: Call) => c.args.split(",")[0].trim();

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir("strace");
});
afterEach(async () => {
  await removeDir(dir);
});

describe.runIf(onLinux)("RustFilePersist", () => {
  it("a durable write: fdatasync(tmp) → rename(tmp → doc) → fsync(directory), all before the promise resolves", () => {
    const { calls } = traceWrite("file", dir, "durable");
    const entityDir = path.join(dir, "base", "ent");
    const tmpOpen = calls.findIndex((c) => c.name === "openat" && c.args.includes(`${entityDir}/.tmp-`) && c.args.includes("doc.json"));
    expect(tmpOpen, "the tmp file is created").toBeGreaterThanOrEqual(0);
    const tmpFd = calls[tmpOpen].result.split(" ")[0];
    const dataSync = calls.findIndex((c, i) => i > tmpOpen && isSync(c) && fdOf(c) === tmpFd);
    const rename = calls.findIndex((c) => c.name.startsWith("rename") && c.args.includes(`${entityDir}/doc.json"`) && c.result.startsWith("0"));
    const dirOpen = calls.findIndex((c, i) => i > rename && c.name === "openat" && c.args.includes(`"${entityDir}"`));
    const dirFd = dirOpen >= 0 ? calls[dirOpen].result.split(" ")[0] : "none";
    const dirSync = calls.findIndex((c, i) => i > dirOpen && isSync(c) && fdOf(c) === dirFd);
    expect(dataSync, "the tmp file's data is synced").toBeGreaterThan(tmpOpen);
    expect(rename, "then renamed over the document").toBeGreaterThan(dataSync);
    expect(dirSync, "then the directory is synced (the rename survives power loss)").toBeGreaterThan(rename);
  });

  it("a cache write (atomic): tmp file and rename, no sync", () => {
    const { calls } = traceWrite("file", dir, "atomic");
    expect(calls.some((c) => c.name.startsWith("rename") || c.name === "linkat")).toBe(true);
    expect(calls.filter(isSync)).toEqual([]);
  });
});

describe.runIf(onLinux)("RustSqlitePersist (synchronous=FULL)", () => {
  it("a durable write: the WAL is synced before the promise resolves", () => {
    const { calls, fdPaths } = traceWrite("sqlite", dir, "durable");
    const walSyncs = calls.filter((c) => isSync(c) && (fdPaths.get(fdOf(c)) ?? []).some((p) => p.endsWith("state.sqlite-wal")));
    expect(walSyncs.length, JSON.stringify(calls)).toBeGreaterThanOrEqual(1);
  });

  it("a cache write (atomic): committed without a sync", () => {
    const { calls } = traceWrite("sqlite", dir, "atomic");
    expect(calls.filter(isSync)).toEqual([]);
  });
});
