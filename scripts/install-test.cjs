"use strict";
// Install test: pack the package the way a release does (scripts/pack.cjs), install the
// tarballs into an empty project outside the repository, and check that `require` and `import`
// both load it and that a write/read round trip works on every backend (Redis against a private
// server). Also checks that loading works without the platform package, and the error when a
// store is then made.
//   node scripts/install-test.cjs
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { startRedisServer } = require("../dev/redis-server.cjs");

const root = path.join(__dirname, "..");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "bkrs-install-"));
const results = [];
const check = (name, fn) => {
  try {
    fn();
    results.push([name, true]);
    console.log(`ok   ${name}`);
  } catch (err) {
    results.push([name, false]);
    console.log(`FAIL ${name}\n${err.stdout ?? ""}${err.stderr ?? ""}${err.stack}`);
  }
};
const run = (cmd, args, options) => execFileSync(cmd, args, { encoding: "utf8", stdio: "pipe", ...options });

const roundTrip = (mod) => `
const fs = require("node:fs"), os = require("node:os"), path = require("node:path");
module.exports = async function check(lib, label) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bkrs-app-"));
  const signal = { id: "s1", priceOpen: 42000.5, minuteEstimatedTime: Infinity };
  const Sqlite = lib.createSqlitePersist({ path: path.join(dir, "db.sqlite") });
  const Redis = lib.createRedisPersist({ url: process.env.REDIS_URL, prefix: "install-" + label });
  for (const Backend of [lib.RustFilePersist, Sqlite, Redis]) {
    const store = new Backend("BTCUSDT_s1_ex1", path.join(dir, "dump/data/signal/"));
    await store.waitForInit(true);
    await store.writeValue("BTCUSDT", signal);
    const back = await store.readValue("BTCUSDT");
    if (JSON.stringify(back) !== JSON.stringify({ ...signal, minuteEstimatedTime: null })) throw new Error(Backend.name + " round trip: " + JSON.stringify(back));
    const keys = []; for await (const k of store.keys()) keys.push(k);
    if (keys.join() !== "BTCUSDT") throw new Error(Backend.name + " keys: " + keys);
  }
  await Sqlite.close(); await Redis.close();
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(label + " round trip ok on file, sqlite, redis");
};`;

(async () => {
  const redis = await startRedisServer();
  try {
    const tarballs = run(process.execPath, [path.join(root, "scripts/pack.cjs"), path.join(work, "pack")]).trim().split("\n");
    const [mainTarball, ...platformTarballs] = tarballs;
    console.log(`packed ${tarballs.map((t) => path.basename(t)).join(", ")}`);
    check("the main tarball holds only the runtime files", () => {
      const listed = run("tar", ["-tzf", mainTarball]).trim().split("\n").sort();
      const lib = fs
        .readdirSync(path.join(root, "lib"), { recursive: true })
        .filter((f) => f.endsWith(".js"))
        .map((f) => `lib/${f.split(path.sep).join("/")}`);
      const expected = ["CHANGELOG.md", "LICENSE", "README.md", "bin/backtest-kit-rs.cjs", "binding.d.ts", "binding.js", "index.d.ts", "index.js", ...lib, "package.json"]
        .map((f) => `package/${f}`)
        .sort();
      if (JSON.stringify(listed) !== JSON.stringify(expected)) throw new Error(`tarball lists ${listed.join(", ")}`);
    });
    if (platformTarballs.length === 0) throw new Error("no native binary was packed: build first (npm run build)");

    const app = path.join(work, "app");
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "install-test-app", private: true, version: "1.0.0" }));
    run("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", mainTarball, ...platformTarballs], { cwd: app });
    fs.writeFileSync(path.join(app, "check.cjs"), roundTrip());
    fs.writeFileSync(path.join(app, "cjs.cjs"), `require("./check.cjs")(require("backtest-kit-rs"), "cjs").catch((e) => { console.error(e); process.exit(1); });`);
    fs.writeFileSync(
      path.join(app, "esm.mjs"),
      `import * as lib from "backtest-kit-rs";\nimport { RustFilePersist, usePersist } from "backtest-kit-rs";\nimport { createRequire } from "node:module";\n` +
        `if (typeof RustFilePersist !== "function" || typeof usePersist !== "function") throw new Error("named ESM exports missing");\n` +
        `await createRequire(import.meta.url)("./check.cjs")(lib, "esm");\n`,
    );
    const env = { ...process.env, REDIS_URL: redis.url, NODE_PATH: "" };
    check("it resolves from the project's node_modules, not the repository", () => {
      const resolved = run(process.execPath, ["-p", "require.resolve('backtest-kit-rs')"], { cwd: app, env }).trim();
      if (!resolved.startsWith(fs.realpathSync(app))) throw new Error(`resolved to ${resolved}`);
    });
    check("require() loads it and round-trips on every backend", () => run(process.execPath, ["cjs.cjs"], { cwd: app, env }));
    check("import loads it and round-trips on every backend", () => run(process.execPath, ["esm.mjs"], { cwd: app, env }));

    check("the backtest-kit-rs command runs from the installed package: an encrypted store migrated and verified", () => {
      const help = run("npx", ["--no-install", "backtest-kit-rs", "--help"], { cwd: app, env });
      if (!/Usage:/.test(help)) throw new Error(`--help printed: ${help}`);
      const key = require("node:crypto").randomBytes(32).toString("base64");
      const keyed = { ...env, BACKTEST_KIT_RS_KEY: key };
      run(
        process.execPath,
        ["-e", `const lib = require("backtest-kit-rs"); new lib.RustSqlitePersist("BTCUSDT_s1_ex1", "./dump/data/signal/").writeValue("BTCUSDT", { secret: "INSTALL-MARKER" }).then(() => lib.RustSqlitePersist.close())`],
        { cwd: app, env: keyed },
      );
      if (fs.readFileSync(path.join(app, "dump/backtest-kit.sqlite")).includes("INSTALL-MARKER")) throw new Error("plaintext in the database");
      const migrated = run("npx", ["--no-install", "backtest-kit-rs", "migrate", "--from", "sqlite:./dump/backtest-kit.sqlite", "--to", "file:./copy/dump"], { cwd: app, env: keyed });
      if (!/migrated and verified: 1 documents/.test(migrated)) throw new Error(`migrate printed: ${migrated}`);
      const verified = run("npx", ["--no-install", "backtest-kit-rs", "verify", "file:./copy/dump"], { cwd: app, env: keyed });
      if (!/1 documents checked, 0 invalid/.test(verified)) throw new Error(`verify printed: ${verified}`);
    });

    const bare = path.join(work, "bare");
    fs.mkdirSync(bare);
    fs.writeFileSync(path.join(bare, "package.json"), JSON.stringify({ name: "bare-app", private: true, version: "1.0.0" }));
    run("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", "--omit=optional", mainTarball], { cwd: bare });
    check("without its platform package it loads, and making a store fails with a message naming the platform", () => {
      run(process.execPath, ["-e", "require('backtest-kit-rs')"], { cwd: bare, env });
      let message = "";
      try {
        run(process.execPath, ["-e", "const { RustFilePersist } = require('backtest-kit-rs'); new RustFilePersist('e', './d')"], { cwd: bare, env });
      } catch (err) {
        message = err.stderr;
      }
      if (!/has no native binary for linux-x64-gnu/.test(message) || !/npm run build/.test(message)) throw new Error(`message was: ${message}`);
    });
  } finally {
    await redis.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
  const failed = results.filter(([, ok]) => !ok).length;
  console.log(`install test: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
