// Every JavaScript block of the README runs as pasted, and its TypeScript block compiles: each in a
// project of its own where `backtest-kit-rs` and `backtest-kit` are installed (links to this
// checkout), with the test servers in the environment variables the README names. A snippet that
// drifts from the code fails here.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

import { makeTempDir, removeDir } from "./helpers";
import { makeTlsFiles } from "./redis-server";
import { s3Env } from "./stores";

const run = promisify(execFile);
const repo = path.join(__dirname, "..");
const readme = fs.readFileSync(path.join(repo, "README.md"), "utf8");

/** Fenced blocks of `language`, with the line each starts on. */
function blocks(language: string): Array<{ line: number; code: string }> {
  const found: Array<{ line: number; code: string }> = [];
  const lines = readme.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```" + language) continue;
    const end = lines.indexOf("```", i + 1);
    found.push({ line: i + 1, code: lines.slice(i + 1, end).join("\n") });
    i = end;
  }
  return found;
}

let project: string;
beforeAll(async () => {
  project = await makeTempDir("readme");
  const modules = path.join(project, "node_modules");
  fs.mkdirSync(modules);
  fs.symlinkSync(repo, path.join(modules, "backtest-kit-rs"));
  fs.symlinkSync(path.join(repo, "node_modules", "backtest-kit"), path.join(modules, "backtest-kit"));
  fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "readme-snippets", private: true }));
  // The files the snippets name: private CAs and a key file.
  const tls = makeTlsFiles(project);
  fs.copyFileSync(tls.ca, path.join(project, "ca.pem"));
  fs.copyFileSync(tls.ca, path.join(project, "db-ca.pem"));
  fs.mkdirSync(path.join(project, "secrets"));
  fs.writeFileSync(path.join(project, "secrets", "bot-keys"), `${randomBytes(32).toString("base64")}\n`);
});
afterAll(async () => {
  await removeDir(project);
});

describe("README", () => {
  const js = blocks("js");

  it("has JavaScript blocks to run", () => {
    expect(js.length).toBeGreaterThanOrEqual(8);
  });

  it.each(js.map((block) => [block.line, block.code] as const))("the js block at line %i runs as pasted", async (line, code) => {
    const file = path.join(project, `snippet-${line}.${/^import /m.test(code) ? "mjs" : "cjs"}`);
    fs.writeFileSync(file, code);
    const s3 = s3Env();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...s3,
      REDIS_URL: inject("redisUrl"),
      DATABASE_URL: inject("postgresUrl"),
      MONGODB_URI: inject("mongoUrl"),
      BOT_KEY: randomBytes(32).toString("base64"),
      MINIO_ACCESS_KEY: s3.AWS_ACCESS_KEY_ID,
      MINIO_SECRET_KEY: s3.AWS_SECRET_ACCESS_KEY,
    };
    delete env.BACKTEST_KIT_RS_KEY;
    const result = await run(process.execPath, [file], { cwd: project, env, timeout: 30_000 }).catch((err) => err);
    expect(result.stderr ?? "", `README line ${line}:\n${code}`).toBe("");
    expect(result.code ?? 0, `README line ${line}`).toBe(0);
  });

  it("its TypeScript block compiles against the package's types", async () => {
    const ts = blocks("ts");
    expect(ts.length).toBeGreaterThanOrEqual(1);
    // Inside the package, so that `backtest-kit-rs` resolves to it (self-reference), as check.ts does.
    const dir = fs.mkdtempSync(path.join(repo, "__test__", "types", ".readme-"));
    try {
      ts.forEach((block, i) => fs.writeFileSync(path.join(dir, `snippet-${i}.ts`), block.code));
      fs.writeFileSync(
        path.join(dir, "tsconfig.json"),
        JSON.stringify({ extends: "../tsconfig.json", files: ts.map((_, i) => `snippet-${i}.ts`) }),
      );
      const tsc = require.resolve("typescript/bin/tsc");
      const result = await run(process.execPath, [tsc, "-p", path.join(dir, "tsconfig.json")]).catch((err) => err);
      expect(`${result.stdout ?? ""}${result.stderr ?? ""}`).toBe("");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
