// Release hygiene that needs no build: versions in step, platform packages complete, manifest.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";

import { makeTempDir, removeDir } from "./helpers";

const repo = path.join(__dirname, "..");
const versions = (...args: string[]) =>
  execFileSync(process.execPath, [path.join(repo, "scripts/versions.cjs"), ...args], { encoding: "utf8", stdio: "pipe" });
const pkg = JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8"));

let copy: string;
beforeEach(async () => {
  copy = await makeTempDir("versions");
  for (const file of ["package.json", "Cargo.toml", "Cargo.lock"]) fs.copyFileSync(path.join(repo, file), path.join(copy, file));
  fs.cpSync(path.join(repo, "npm"), path.join(copy, "npm"), { recursive: true });
});
afterEach(async () => {
  await removeDir(copy);
});

it("keeps Cargo.toml, package.json and every npm/* package at one version", () => {
  expect(versions()).toContain(`versions in step: ${pkg.version}`);
});

it("fails naming the file that drifted, and --write brings everything back in step", () => {
  const file = path.join(copy, "npm/linux-arm64-gnu/package.json");
  fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(`"version": "${pkg.version}"`, '"version": "9.9.9"'));
  let message = "";
  try {
    versions("--root", copy);
  } catch (err: any) {
    message = err.stderr;
  }
  expect(message).toContain("npm/linux-arm64-gnu has 9.9.9");

  const manifest = JSON.parse(fs.readFileSync(path.join(copy, "package.json"), "utf8"));
  manifest.version = "1.2.3";
  fs.writeFileSync(path.join(copy, "package.json"), JSON.stringify(manifest));
  versions("--root", copy, "--write");
  expect(versions("--root", copy)).toContain("versions in step: 1.2.3");
  expect(fs.readFileSync(path.join(copy, "Cargo.toml"), "utf8")).toMatch(/^version = "1.2.3"$/m);
  expect(fs.readFileSync(path.join(copy, "Cargo.lock"), "utf8")).toContain('name = "backtest-kit-rs"\nversion = "1.2.3"');
});

it("has a platform package with the right os, cpu and libc for every target", () => {
  const expected: Record<string, { os: string; cpu: string; libc?: string }> = {
    "linux-x64-gnu": { os: "linux", cpu: "x64", libc: "glibc" },
    "linux-arm64-gnu": { os: "linux", cpu: "arm64", libc: "glibc" },
    "linux-x64-musl": { os: "linux", cpu: "x64", libc: "musl" },
    "darwin-x64": { os: "darwin", cpu: "x64" },
    "darwin-arm64": { os: "darwin", cpu: "arm64" },
    "win32-x64-msvc": { os: "win32", cpu: "x64" },
  };
  expect(fs.readdirSync(path.join(repo, "npm")).sort()).toEqual(Object.keys(expected).sort());
  for (const [platform, want] of Object.entries(expected)) {
    const manifest = JSON.parse(fs.readFileSync(path.join(repo, "npm", platform, "package.json"), "utf8"));
    expect(manifest.name).toBe(`backtest-kit-rs-${platform}`);
    expect(manifest.os).toEqual([want.os]);
    expect(manifest.cpu).toEqual([want.cpu]);
    expect(manifest.libc).toEqual(want.libc ? [want.libc] : undefined);
    expect(manifest.main).toBe(`backtest-kit-rs.${platform}.node`);
    expect(manifest.files).toEqual([`backtest-kit-rs.${platform}.node`]);
  }
});

it("publishes a clean manifest: files whitelist, engines, exports with types, optional peer", () => {
  expect(pkg.files).toEqual(["index.js", "index.d.ts", "lib", "binding.js", "binding.d.ts", "CHANGELOG.md", "bin/backtest-kit-rs.cjs"]);
  expect(pkg.bin).toEqual({ "backtest-kit-rs": "bin/backtest-kit-rs.cjs" });
  expect(fs.readFileSync(path.join(repo, pkg.bin["backtest-kit-rs"]), "utf8")).toMatch(/^#!\/usr\/bin\/env node\n/);
  expect(pkg.engines.node).toMatch(/^>=20/);
  expect(pkg.exports["."]).toEqual({ types: "./index.d.ts", default: "./index.js" });
  expect(pkg.peerDependenciesMeta["backtest-kit"].optional).toBe(true);
  expect(pkg.license).toBe("MIT");
  expect(fs.existsSync(path.join(repo, "LICENSE"))).toBe(true);
  expect(fs.existsSync(path.join(repo, "CHANGELOG.md"))).toBe(true);
});

it("loads with any malformed environment of backends it does not use; each is reported, named, when its store is made", () => {
  const cwd = copy;
  const script = `
    const lib = require(${JSON.stringify(repo)});
    const out = {};
    const sqlite = new lib.RustSqlitePersist("e", "./dump/data/x/");
    sqlite.waitForInit(true).then(async () => {
      await sqlite.writeValue("a", { ok: 1 });
      out.sqlite = await sqlite.readValue("a");
      for (const name of ["RustS3Persist", "RustMongoPersist", "RustPostgresPersist", "RustRedisPersist"]) {
        try { new lib[name]("e", "./dump/data/x/"); out[name] = "made"; } catch (err) { out[name] = [err.code, err.message]; }
      }
      await lib.RustSqlitePersist.close();
      console.log(JSON.stringify(out));
    });
  `;
  const env = {
    ...process.env,
    BACKTEST_KIT_RS_S3_URL: "s3://x/y",
    BACKTEST_KIT_RS_MONGO_URL: "mongodb://",
    BACKTEST_KIT_RS_POSTGRES_URL: "postgres://:99999999/",
    BACKTEST_KIT_RS_REDIS_URL: "redis://:a:b",
  };
  const out = JSON.parse(execFileSync(process.execPath, ["-e", script], { cwd, env, encoding: "utf8" }).trim());
  expect(out.sqlite).toEqual({ ok: 1 });
  for (const [name, variable] of [
    ["RustS3Persist", "BACKTEST_KIT_RS_S3_URL"],
    ["RustMongoPersist", "BACKTEST_KIT_RS_MONGO_URL"],
    ["RustPostgresPersist", "BACKTEST_KIT_RS_POSTGRES_URL"],
    ["RustRedisPersist", "BACKTEST_KIT_RS_REDIS_URL"],
  ]) {
    expect(out[name][0], name).toBe("PERSIST_INVALID_CONFIG");
    expect(out[name][1], name).toContain(`the environment variable ${variable}`);
  }
  // The command's help needs no store at all.
  const help = execFileSync(process.execPath, [path.join(repo, "bin/backtest-kit-rs.cjs"), "--help"], { cwd, env, encoding: "utf8" });
  expect(help).toMatch(/inspect/);
});
