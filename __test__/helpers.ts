import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "vitest";

/** A fresh directory per test; never the user's real data directories. */
export async function makeTempDir(tag: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `bkrs-${tag}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
}

/** Every file under `dir` with its content, and every directory: to prove nothing changed. */
export async function treeSnapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(current: string): Promise<void> {
    let entries;
    try {
      entries = await fs.readdir(current, { withFileTypes: true });
    } catch (err: any) {
      if (err.code === "ENOENT") return;
      throw err;
    }
    for (const entry of entries) {
      const full = path.join(current, entry.name);
      const rel = path.relative(dir, full);
      if (entry.isDirectory()) {
        out[rel + "/"] = "<dir>";
        await walk(full);
      } else {
        out[rel] = await fs.readFile(full, "utf8");
      }
    }
  }
  await walk(dir);
  return out;
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** A backtest-kit `ISignalRow` of realistic size and shape (shared with the benchmark). */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const signalRow: (n?: number) => Record<string, any> = (n = 0) => require("../dev/signal-row.cjs").signalRow(n);

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { promisify } from "node:util";

export interface Writer {
  child: ChildProcess;
  /** Highest seq whose write resolved in the child. */
  lastAck(): number;
  /** "CODE message" of each write that rejected (fixtures that retry print them). */
  failures(): string[];
  /** Resolves once an ack of `seq` or later was seen. */
  untilAck(seq: number, timeoutMs?: number): Promise<void>;
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

/**
 * Start a writing child, `__test__/fixtures/writer.cjs` by default (see there for the
 * arguments); it prints "ready", "ack <seq>" and possibly "fail <code> <message>" lines.
 */
export function startWriter(args: Array<string | number>, env: NodeJS.ProcessEnv = {}, fixture = "writer.cjs"): Writer {
  const child = spawn(process.execPath, [path.join(__dirname, "fixtures", fixture), ...args.map(String)], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let last = -1;
  let err = "";
  let buffered = "";
  const fails: string[] = [];
  let waiters: Array<{ seq: number; resolve: () => void }> = [];
  let onReady: () => void;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split("\n");
    buffered = lines.pop()!;
    for (const line of lines) {
      if (line === "ready") onReady();
      else if (line.startsWith("ack ")) last = Number(line.slice(4));
      else if (line.startsWith("fail ")) fails.push(line.slice(5));
    }
    const reached = waiters.filter((w) => last >= w.seq);
    waiters = waiters.filter((w) => last < w.seq);
    reached.forEach((w) => w.resolve());
  });
  const untilAck = (seq: number, timeoutMs = 20_000) =>
    new Promise<void>((resolve, reject) => {
      if (last >= seq) return resolve();
      const timer = setTimeout(
        () => reject(new Error(`the writer reached ack ${last}, not ${seq}; last failures: ${fails.slice(-3).join("; ")}\n${err}`)),
        timeoutMs,
      );
      waiters.push({ seq, resolve: () => (clearTimeout(timer), resolve()) });
    });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // "close", not "exit": by then stdout is drained, so the last ack seen is the last one sent.
    child.on("close", (code, signal) => {
      onReady();
      resolve({ code, signal });
    }),
  );
  return { child, lastAck: () => last, failures: () => fails, untilAck, ready, exited, stderr: () => err };
}

/** The error `create(options)` throws when its options are resolved (`.options`), if any. */
export function optionsError(create: (options: any) => { options: unknown }, options: object): any {
  try {
    void create(options).options;
  } catch (e) {
    return e;
  }
  return undefined;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

import { execFileSync } from "node:child_process";

const sqliteTool = path.join(__dirname, "fixtures", "sqlite-tool.cjs");

/** Rows of `sql`, read by an independent SQLite client in another process. */
export function sqliteAll(db: string, sql: string, params: unknown[] = []): any[] {
  return JSON.parse(execFileSync(process.execPath, [sqliteTool, db, "all", sql, JSON.stringify(params)], { encoding: "utf8" }));
}

/** Run statements through an independent SQLite client in another process. */
export function sqliteExec(db: string, sql: string): void {
  execFileSync(process.execPath, [sqliteTool, db, "exec", sql]);
}

/** Hold the database's write lock from another process for `ms`; resolves once it is held. */
export async function sqliteHoldLock(db: string, ms: number): Promise<{ released: Promise<void> }> {
  const child = spawn(process.execPath, [sqliteTool, db, "lock", String(ms)], { stdio: ["ignore", "pipe", "inherit"] });
  const released = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  await new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()));
  return { released };
}

const runChild = promisify(execFile);

/**
 * `examples/live-demo.js` (open a position, SIGKILL, restore) in `dir`; its JSON summary. A failed
 * demo still prints one, with `ok: false` and the reason.
 */
export async function runLiveDemo(dir: string, backend: string, restoreBackend: string, env: NodeJS.ProcessEnv, style = "usePersist"): Promise<any> {
  const demo = path.join(__dirname, "..", "examples/live-demo.js");
  const args = [demo, "--backend", backend, "--restore-backend", restoreBackend, "--dir", dir, "--style", style, "--json"];
  const { stdout } = await runChild(process.execPath, args, {
    env,
    timeout: 60_000,
  }).catch((err) => err);
  return JSON.parse(stdout.trim().split("\n").pop());
}

/**
 * The live demo's summary says the restore phase got back the very position the open phase opened,
 * without asking the strategy again, and the risk profile counts it; returns that position.
 */
export function expectRestoredPosition(summary: any): any {
  expect(summary.ok, summary.reason).toBe(true);
  const opened = summary.open.events.find((e: any) => e.event === "opened").signal;
  const restored = summary.restore.events.find((e: any) => e.event === "restored");
  expect(restored.signal).toEqual(opened);
  expect(restored.getSignalCalls).toBe(0);
  expect(summary.restore.events.find((e: any) => e.event === "risk-checked").activePositionCount).toBe(1);
  return opened;
}

/** `fixtures/backtest-run.cjs` (see there): one JSON line per run, parsed. */
export async function runBacktest(backend: string, workdir: string, runs: number, env: NodeJS.ProcessEnv, domains = false): Promise<any[]> {
  const args = [path.join(__dirname, "fixtures/backtest-run.cjs"), backend, workdir, String(runs), ...(domains ? ["--domains"] : [])];
  const { stdout } = await runChild(process.execPath, args, { env, timeout: 120_000, maxBuffer: 1 << 24 });
  return stdout.trim().split("\n").map((line) => JSON.parse(line));
}

/**
 * Run `body` with environment variables set (a value) or removed (undefined), then put them back.
 * The variables are changed in place: replacing `process.env` would hide later changes from the
 * native side, which reads the real environment.
 */
export function withEnv<T>(vars: Record<string, string | undefined>, body: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(vars);
  try {
    return body();
  } finally {
    apply(saved);
  }
}
