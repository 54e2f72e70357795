"use strict";
// Server processes for the tests and the benchmark (Redis Cluster and Sentinel set-ups): starting
// a process whose output is kept and drained, log tails for error messages, and stopping it.
const { spawn } = require("node:child_process");
const path = require("node:path");

const LOG_LIMIT = 64 * 1024;
const STOP_GRACE_MS = 5_000;

/**
 * Start `file args`; returns { proc, log, exited }: `log` keeps the output's last 64 KiB, and
 * `exited` says how the process ended (undefined while it runs).
 */
function launch(file, args) {
  const node = { proc: spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] }), log: "", exited: undefined };
  // Always drain the pipes: a full pipe would block the server on its next log line.
  const onData = (chunk) => {
    node.log = (node.log + chunk.toString()).slice(-LOG_LIMIT);
  };
  node.proc.stdout.on("data", onData);
  node.proc.stderr.on("data", onData);
  node.proc.once("exit", (code, signal) => {
    node.exited = signal ?? `code ${code}`;
  });
  node.proc.once("error", (error) => {
    node.exited = error.message;
  });
  return node;
}

/** The last lines of each process's output, under a heading with its key (a port). */
function logTails(nodes) {
  return [...nodes]
    .map(([key, node]) => `--- ${key}${node.exited ? ` (exited: ${node.exited})` : ""}:\n${node.log.trim().split("\n").slice(-15).join("\n")}`)
    .join("\n");
}

/** Stop with `signal`; after SIGTERM, SIGKILL once the grace period is over. */
async function stopProcess(node, signal) {
  const { proc } = node;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  proc.kill(signal);
  if (signal === "SIGKILL") return void (await exited);
  const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

/** SIGKILL every process still running (for process "exit" handlers: synchronous). */
function killAll(nodes) {
  for (const { proc } of nodes) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once something accepts connections on `port`, or rejects after `ms` or if `node` exits. */
async function waitForPort(port, ms, node) {
  const net = require("node:net");
  const deadline = Date.now() + ms;
  for (;;) {
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    if (node?.exited || Date.now() > deadline) {
      throw new Error(`${path.basename(node?.proc.spawnfile ?? "server")} did not start on ${port} (${node?.exited ?? "timeout"}):\n${node?.log ?? ""}`);
    }
    await sleep(50);
  }
}

/**
 * A server process `file args` that listens on `port`: { start(), stop(signal), log() }; start()
 * (again after a stop) resolves once the port accepts connections.
 */
function service(file, args, port) {
  let node = null;
  return {
    start: async () => {
      node = launch(file, args);
      await waitForPort(port, 20_000, node);
    },
    stop: async (signal = "SIGTERM") => {
      if (node) await stopProcess(node, signal);
    },
    log: () => node?.log ?? "",
  };
}

module.exports = { launch, logTails, stopProcess, killAll, sleep, waitForPort, service };
