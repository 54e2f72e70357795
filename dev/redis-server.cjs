"use strict";
// Private redis-server processes on free loopback ports, for the tests and the benchmark.
const { execFileSync, spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const { findBinary } = require("./test-deps.cjs");


/** A port nothing listens on now (the kernel's choice for port 0). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A throwaway CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI. */
function makeTlsFiles(dir) {
  const file = (name) => path.join(dir, name);
  const openssl = (...args) => execFileSync("openssl", args, { stdio: "pipe" });
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=backtest-kit-rs test CA", "-keyout", file("ca.key"), "-out", file("ca.crt"));
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", file("server.key"), "-out", file("server.csr"));
  fs.writeFileSync(file("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n");
  openssl("x509", "-req", "-in", file("server.csr"), "-CA", file("ca.crt"), "-CAkey", file("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", file("san.ext"), "-out", file("server.crt"));
  return { ca: file("ca.crt"), cert: file("server.crt"), key: file("server.key") };
}

/**
 * Start redis-server on a free loopback port (TLS-only when `tls` files are given), with no
 * persistence. Returns { port, url, stop(), start() }; start() restarts on the same port.
 */
async function startRedisServer(extraArgs = [], tls) {
  const binary = findBinary("redis-server");
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bkrs-redis-"));
  const portArgs = tls
    ? ["--port", "0", "--tls-port", String(port), "--tls-cert-file", tls.cert, "--tls-key-file", tls.key, "--tls-ca-cert-file", tls.ca, "--tls-auth-clients", "no"]
    : ["--port", String(port)];
  const args = [...portArgs, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", ...extraArgs];
  let child = null;

  const start = async () => {
    const proc = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    let log = "";
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start on ${port}:\n${log}`)), 10_000);
      const onData = (chunk) => {
        log += chunk.toString();
        if (log.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout.on("data", onData);
      proc.stderr.on("data", onData);
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${log}`));
      });
    });
  };

  const stop = async () => {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGKILL");
    await exited;
  };

  await start();
  return { port, url: `${tls ? "rediss" : "redis"}://127.0.0.1:${port}`, stop, start };
}

module.exports = { freePort, makeTlsFiles, startRedisServer };
