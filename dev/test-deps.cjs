"use strict";
// What the tests need besides `npm install`, found and (with `node dev/test-deps.cjs`) installed:
// the Debian packages whose servers and tools the suites start (apt-get, when run as root), and the
// two test servers no Debian package provides, pinned, installed once into `.test-deps/` (ignored by
// git): nx-27017 (a MongoDB wire-protocol server, PyPI) in a venv of its own, and s3s-fs (an S3
// server, crates.io) through `cargo install --root`. `scripts/test.sh` and `.ci/run` call it; the
// server helpers in dev/ find their binaries through `findBinary` (that folder first, then PATH).
const { execFileSync, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.join(__dirname, "..");
const DEPS_DIR = path.join(ROOT, ".test-deps");

// The versions the suites are written against. A new pin gets a new folder, so a bump installs
// again by itself. s3s-fs 0.15+ needs a newer Rust than 1.95.
const NX_27017 = "0.8.1";
const S3S_FS = "0.14.1";

/** The tools installed into `.test-deps/`: where each binary lands and how it gets there. */
const LOCAL_TOOLS = [
  {
    binary: "nx-27017",
    version: NX_27017,
    why: "the MongoDB wire-protocol server the MongoDB suites start (PyPI; no MongoDB server installs from these registries)",
    dir: path.join(DEPS_DIR, `nx-27017-${NX_27017}`),
    install(dir) {
      run("python3", ["-m", "venv", dir]);
      run(path.join(dir, "bin", "pip"), ["install", "--quiet", "--disable-pip-version-check", `nx-27017==${NX_27017}`]);
    },
  },
  {
    binary: "s3s-fs",
    version: S3S_FS,
    why: "the S3 server the S3 suites start (crates.io; about 2 minutes of compiling, once)",
    dir: path.join(DEPS_DIR, `s3s-fs-${S3S_FS}`),
    install(dir) {
      run("cargo", ["install", "--quiet", "--locked", "--root", dir, "--features", "binary", `s3s-fs@${S3S_FS}`]);
    },
  },
];

/** Debian packages the suites use, each with the check that says it is there. */
const SYSTEM_PACKAGES = [
  { name: "redis-server", why: "private Redis servers, a cluster and sentinels", present: () => onPath("redis-server") },
  { name: "redis-tools", why: "redis-cli, which builds the test cluster", present: () => onPath("redis-cli") },
  { name: "postgresql", why: "private PostgreSQL clusters (initdb, pg_ctl)", present: () => postgresBinDir() !== null },
  { name: "openssl", why: "TLS test certificates", present: () => onPath("openssl") },
  { name: "strace", why: "the durability traces", present: () => onPath("strace") },
  { name: "python3-venv", why: "the venv nx-27017 runs in", present: pythonCanMakeVenvs },
];

function run(file, args) {
  execFileSync(file, args, { stdio: ["ignore", "inherit", "inherit"] });
}

function onPath(name) {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return null;
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function pythonCanMakeVenvs() {
  // Debian's python3 has the venv module but not ensurepip until python3-venv is installed.
  return spawnSync("python3", ["-c", "import venv, ensurepip"], { stdio: "ignore" }).status === 0;
}

/** The newest /usr/lib/postgresql/N/bin holding initdb, or null. */
function postgresBinDir() {
  const root = "/usr/lib/postgresql";
  if (!fs.existsSync(root)) return null;
  const versions = fs
    .readdirSync(root)
    .filter((version) => isExecutable(path.join(root, version, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? path.join(root, versions[0], "bin") : null;
}

/**
 * The path of a test binary: an override variable, then `.test-deps/`, then PATH. Throws an error
 * that says how to get it (the command that installs everything) when it is nowhere.
 */
function findBinary(name, overrideVariable) {
  const override = overrideVariable && process.env[overrideVariable];
  if (override) return override;
  const tool = LOCAL_TOOLS.find((candidate) => candidate.binary === name);
  if (tool && isExecutable(path.join(tool.dir, "bin", name))) return path.join(tool.dir, "bin", name);
  const found = onPath(name);
  if (found) return found;
  throw new Error(`${name} not found: run \`node dev/test-deps.cjs\` (npm test does), which installs every test dependency`);
}

/** Install what is missing; returns false (after saying what to run) when it may not. */
function provision() {
  // The package names and places are Debian's; elsewhere (the release workflow's macOS runners)
  // the system's own package manager provides the servers.
  const missing = process.platform === "linux" ? SYSTEM_PACKAGES.filter((pkg) => !pkg.present()) : [];
  if (missing.length) {
    const names = missing.map((pkg) => pkg.name);
    const asRoot = process.getuid?.() === 0;
    if (!asRoot || !onPath("apt-get")) {
      console.error(
        `test dependencies: missing system packages ${names.join(", ")} (${missing.map((pkg) => pkg.why).join("; ")}); ` +
          `install them with: sudo apt-get install -y ${names.join(" ")}`,
      );
      return false;
    }
    console.log(`test dependencies: installing ${names.join(", ")} with apt-get (${missing.map((pkg) => pkg.why).join("; ")})`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    // apt's progress goes nowhere; its errors still reach the terminal.
    const quiet = { stdio: ["ignore", "ignore", "inherit"], env };
    execFileSync("apt-get", ["update", "-qq"], quiet);
    execFileSync("apt-get", ["install", "-y", "-qq", ...names], quiet);
  }

  const toInstall = LOCAL_TOOLS.filter((tool) => !isExecutable(path.join(tool.dir, "bin", tool.binary)));
  for (const tool of toInstall) {
    console.log(`test dependencies: installing ${tool.binary} ${tool.version} into ${path.relative(ROOT, tool.dir)}/ — ${tool.why}`);
    // A half-made folder from an interrupted run would look installed to nothing but confuse pip.
    fs.rmSync(tool.dir, { recursive: true, force: true });
    fs.mkdirSync(DEPS_DIR, { recursive: true });
    try {
      tool.install(tool.dir);
    } catch (error) {
      fs.rmSync(tool.dir, { recursive: true, force: true });
      console.error(`test dependencies: installing ${tool.binary} ${tool.version} failed: ${error.message}`);
      return false;
    }
  }

  if (!missing.length && !toInstall.length) {
    const versions = LOCAL_TOOLS.map((tool) => `${tool.binary} ${tool.version}`).join(", ");
    console.log(`test dependencies: all present, nothing to install (${SYSTEM_PACKAGES.map((pkg) => pkg.name).join(", ")}; ${versions} in .test-deps/)`);
  }
  return true;
}

if (require.main === module) {
  try {
    process.exit(provision() ? 0 : 1);
  } catch (error) {
    console.error(`test dependencies: ${error.message}`);
    process.exit(1);
  }
}

module.exports = { DEPS_DIR, findBinary, postgresBinDir, provision };
