"use strict";
// A private PostgreSQL cluster on a free loopback port, for the tests and the benchmark: initdb and
// pg_ctl from Debian's `postgresql` package, in a temporary directory, stopped at the end. The
// server refuses to run as root, so as root it runs as the `postgres` user. The machine's own server
// (port 5432) is never touched.
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const { freePort, makeTlsFiles } = require("./redis-server.cjs");
const { postgresBinDir } = require("./test-deps.cjs");

function binDir() {
  const dir = postgresBinDir();
  if (!dir) throw new Error("PostgreSQL not found: run `node dev/test-deps.cjs` (npm test does), which installs every test dependency");
  return dir;
}

/**
 * Start a cluster. `password`: scram-sha-256 for every connection (else trust); `tls`: also serve
 * TLS with a certificate for 127.0.0.1/localhost signed by a throwaway CA (`ca` in the result).
 * Returns { port, url, ca?, dir, stop(), start(), sql(text) }.
 */
async function startPostgres({ password, tls = false, extraConfig = [] } = {}) {
  const bin = binDir();
  const asRoot = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bkrs-pg-"));
  const data = path.join(dir, "data");
  const run = (program, args, options = {}) => {
    const file = path.join(bin, program);
    // runuser keeps the arguments as they are (no shell quoting).
    return asRoot
      ? execFileSync("runuser", ["-u", "postgres", "--", file, ...args], { encoding: "utf8", stdio: "pipe", ...options })
      : execFileSync(file, args, { encoding: "utf8", stdio: "pipe", ...options });
  };
  // As root, files the server reads belong to the postgres user.
  const owner = asRoot
    ? {
        uid: Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim()),
        gid: Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim()),
      }
    : null;
  const own = (file) => owner && fs.chownSync(file, owner.uid, owner.gid);
  own(dir);

  const initArgs = ["-D", data, "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"];
  if (password) {
    const pwfile = path.join(dir, "pwfile");
    fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    own(pwfile);
    initArgs.push("-A", "scram-sha-256", `--pwfile=${pwfile}`);
  } else {
    initArgs.push("-A", "trust");
  }
  run("initdb", initArgs);

  const settings = [`listen_addresses = '127.0.0.1'`, `unix_socket_directories = '${dir}'`, ...extraConfig];
  let ca;
  if (tls) {
    const files = makeTlsFiles(dir);
    for (const file of [files.cert, files.key]) {
      own(file);
      fs.chmodSync(file, 0o600);
    }
    ca = fs.readFileSync(files.ca, "utf8");
    settings.push("ssl = on", `ssl_cert_file = '${files.cert}'`, `ssl_key_file = '${files.key}'`);
  }
  const port = await freePort();
  settings.push(`port = ${port}`);
  fs.appendFileSync(path.join(data, "postgresql.conf"), `\n${settings.join("\n")}\n`);

  const log = path.join(dir, "server.log");
  let running = false;
  const start = () => {
    try {
      run("pg_ctl", ["-D", data, "-l", log, "-w", "-t", "30", "start"]);
    } catch (error) {
      throw new Error(`PostgreSQL did not start on ${port}: ${error.message}\n${fs.existsSync(log) ? fs.readFileSync(log, "utf8").slice(-3000) : ""}`);
    }
    running = true;
  };
  /** `fast` (the default) rolls back open transactions; `immediate` is a crash (recovery on start). */
  const stop = (mode = "fast") => {
    if (!running) return;
    running = false;
    run("pg_ctl", ["-D", data, "-m", mode, "-w", "-t", "30", "stop"]);
  };
  const cleanup = () => {
    try {
      stop("immediate");
    } catch {
      // already stopped
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // A run that ends without stop() would leave a server behind.
  const onExit = () => cleanup();
  process.once("exit", onExit);

  start();
  const credentials = password ? `postgres:${encodeURIComponent(password)}` : "postgres";
  return {
    port,
    url: `postgres://${credentials}@127.0.0.1:${port}/postgres`,
    ca,
    dir,
    start: async () => start(),
    stop: async (mode) => stop(mode),
    /** Stop for good and remove the directory. */
    destroy: async () => {
      process.removeListener("exit", onExit);
      cleanup();
    },
    /** Run SQL through psql (as the postgres user, over the socket); returns its unaligned output. */
    sql: (text, database = "postgres") =>
      run("psql", ["-h", dir, "-p", String(port), "-U", "postgres", "-d", database, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", text], {
        env: { ...process.env, PGPASSWORD: password ?? "" },
      }).trim(),
  };
}

module.exports = { startPostgres };
