"use strict";
// Private MongoDB-wire servers on free loopback ports, for the tests and the benchmark: nx-27017
// (PyPI), a MongoDB wire-protocol server written in Python over SQLite. No MongoDB server installs
// from the registries this project reaches; dev/test-deps.cjs installs it into .test-deps/.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const { freePort } = require("./redis-server.cjs");
const { service } = require("./processes.cjs");
const { findBinary } = require("./test-deps.cjs");


/**
 * Start nx-27017 on a free loopback port. `persistent`: data in a SQLite file that survives a
 * restart (for kill-and-restart tests); otherwise in memory. Returns { port, url, stop(signal),
 * start(), destroy() }; start() restarts on the same port with the same data.
 */
async function startMongo({ persistent = false } = {}) {
  const file = findBinary("nx-27017", "BKRS_NX27017");
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
