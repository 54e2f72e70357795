"use strict";
// Private MongoDB-wire servers on free loopback ports, for the tests and the benchmark: nx-27017
// (PyPI), a MongoDB wire-protocol server written in Python over SQLite. No MongoDB server installs
// from the registries this project reaches; .ci/run makes the venv (.venv-mongo) it runs from.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const { freePort } = require("./redis-server.cjs");
const { binary, service } = require("./processes.cjs");

const VENV_BINARY = path.join(__dirname, "..", ".venv-mongo", "bin", "nx-27017");

function nxBinary() {
  if (process.env.BKRS_NX27017) return process.env.BKRS_NX27017;
  if (fs.existsSync(VENV_BINARY)) return VENV_BINARY;
  try {
    return binary("nx-27017", "(none)");
  } catch {
    throw new Error(
      "nx-27017 not found: python3 -m venv .venv-mongo && .venv-mongo/bin/pip install nx-27017==0.8.1 (.ci/run does)",
    );
  }
}

/**
 * Start nx-27017 on a free loopback port. `persistent`: data in a SQLite file that survives a
 * restart (for kill-and-restart tests); otherwise in memory. Returns { port, url, stop(signal),
 * start(), destroy() }; start() restarts on the same port with the same data.
 */
async function startMongo({ persistent = false } = {}) {
  const file = nxBinary();
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bkrs-mongo-"));
  const args = [
    "--db", persistent ? path.join(dir, "data.db") : "memory",
    "--host", "127.0.0.1",
    "-p", String(port),
    "--log-file", path.join(dir, "nx.log"),
    "--pid-file", path.join(dir, "nx.pid"),
  ];
  const server = service(file, args, port);
  await server.start();
  return {
    ...server,
    port,
    url: `mongodb://127.0.0.1:${port}/?directConnection=true`,
    destroy: async () => {
      await server.stop("SIGKILL");
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startMongo };
