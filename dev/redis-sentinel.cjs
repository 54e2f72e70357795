"use strict";
// A private Redis Sentinel set-up on free loopback ports, for the tests: one primary, one replica
// and three sentinels (quorum 2) watching them as `mymaster`. Data nodes and sentinels each have a
// password, so that both credential paths are used. Nodes can be killed, restarted as replicas of
// the current primary, and failed over by hand.
const { execFile } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const { killAll, launch, logTails, sleep, stopProcess } = require("./processes.cjs");
const { findBinary } = require("./test-deps.cjs");
const { freePort } = require("./redis-server.cjs");

const MASTER_NAME = "mymaster";
const DATA_PASSWORD = "data-pw-7c1e";
const SENTINEL_PASSWORD = "sentinel-pw-91ab";
const START_TIMEOUT_MS = 30_000;

/**
 * Start the set-up; resolves once the replica is synced and every sentinel knows the primary, the
 * replica and the other two sentinels.
 */
async function startRedisSentinel() {
  const serverBinary = findBinary("redis-server");
  const cliBinary = findBinary("redis-cli");
  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), "bkrs-redis-sentinel-"));
  const dataPorts = [await freePort(), await freePort()];
  const sentinelPorts = [await freePort(), await freePort(), await freePort()];
  /** port -> { proc, log, exited } (see processes.cjs) */
  const processes = new Map();
  let stopped = false;

  const cli = (port, password, args, timeout = 2_000) =>
    new Promise((resolve, reject) => {
      execFile(
        cliBinary,
        ["-h", "127.0.0.1", "-p", String(port), "--no-auth-warning", "-a", password, ...args],
        { timeout, encoding: "utf8" },
        (error, stdout, stderr) => {
          if (error) reject(new Error(`redis-cli -p ${port} ${args.join(" ")}: ${(stderr || stdout || error.message).trim()}`));
          else resolve(stdout.trim());
        },
      );
    });
  const dataCli = (port, ...args) => cli(port, DATA_PASSWORD, args);
  const sentinelCli = (port, ...args) => cli(port, SENTINEL_PASSWORD, args);

  const start = (port, args) => void processes.set(port, launch(serverBinary, args));

  const dataArgs = (port, primaryPort) => {
    const dir = path.join(baseDir, String(port));
    fs.mkdirSync(dir, { recursive: true });
    return [
      "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no",
      "--requirepass", DATA_PASSWORD, "--masterauth", DATA_PASSWORD,
      // A replica syncs at once (Redis waits 5 s for more replicas before a diskless sync).
      "--repl-diskless-sync-delay", "0",
      ...(primaryPort ? ["--replicaof", "127.0.0.1", String(primaryPort)] : []),
    ];
  };

  const killOnExit = () => {
    killAll(processes.values());
    fs.rmSync(baseDir, { recursive: true, force: true });
  };
  process.once("exit", killOnExit);

  const stopPort = async (port, signal) => {
    const node = processes.get(port);
    if (node) await stopProcess(node, signal);
  };

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all([...processes.keys()].map((port) => stopPort(port, "SIGKILL")));
    process.removeListener("exit", killOnExit);
    fs.rmSync(baseDir, { recursive: true, force: true });
  };

  /** Polls until check() resolves true (otherwise it returns what is still missing, for the message). */
  const waitFor = async (what, check, timeoutMs = START_TIMEOUT_MS) => {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (;;) {
      try {
        const result = await check();
        if (result === true) return;
        last = result;
      } catch (error) {
        last = error.message;
      }
      if (Date.now() > deadline) throw new Error(`Redis Sentinel: timed out waiting for ${what}${last ? ` (last: ${last})` : ""}\n${logTails(processes)}`);
      await sleep(100);
    }
  };

  /** The primary's port as the first sentinel that answers names it. */
  const primaryPort = async () => {
    let lastError = new Error("no sentinel answered");
    for (const port of sentinelPorts) {
      try {
        const [, primary] = (await sentinelCli(port, "sentinel", "get-master-addr-by-name", MASTER_NAME)).split("\n");
        return Number(primary);
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  };

  /** Until every sentinel names a primary other than `old` that answers as one, with a synced replica. */
  const settled = async (old, timeoutMs = START_TIMEOUT_MS) =>
    waitFor(
      "a primary with a synced replica, named by every sentinel",
      async () => {
        const named = await Promise.all(
          sentinelPorts.map(async (port) => Number((await sentinelCli(port, "sentinel", "get-master-addr-by-name", MASTER_NAME)).split("\n")[1])),
        );
        if (new Set(named).size !== 1) return `sentinels name ${named.join(", ")}`;
        const [primary] = named;
        if (primary === old) return `still ${old}`;
        const replication = await dataCli(primary, "info", "replication");
        if (!replication.includes("role:master")) return `${primary} is not a primary yet`;
        const replica = dataPorts.find((port) => port !== primary);
        const replicaInfo = await dataCli(replica, "info", "replication");
        if (!replicaInfo.includes(`master_port:${primary}`) || !replicaInfo.includes("master_link_status:up")) return `${replica} not synced to ${primary}`;
        return true;
      },
      timeoutMs,
    );

  try {
    start(dataPorts[0], dataArgs(dataPorts[0]));
    start(dataPorts[1], dataArgs(dataPorts[1], dataPorts[0]));
    await waitFor("the replica's first sync", async () => (await dataCli(dataPorts[1], "info", "replication")).includes("master_link_status:up") || "not yet");
    for (const port of sentinelPorts) {
      const config = path.join(baseDir, `sentinel-${port}.conf`);
      // Sentinel rewrites its config file as it learns the topology, so each has its own.
      fs.writeFileSync(
        config,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          `dir ${baseDir}`,
          `requirepass ${SENTINEL_PASSWORD}`,
          `sentinel sentinel-pass ${SENTINEL_PASSWORD}`,
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${dataPorts[0]} 2`,
          `sentinel auth-pass ${MASTER_NAME} ${DATA_PASSWORD}`,
          `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
          `sentinel failover-timeout ${MASTER_NAME} 3000`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
          "",
        ].join("\n"),
      );
      start(port, [config, "--sentinel"]);
    }
    await waitFor("every sentinel to know the replica and the other sentinels", async () => {
      const views = await Promise.all(
        sentinelPorts.map(async (port) => {
          const [replicas, sentinels] = await Promise.all([
            sentinelCli(port, "sentinel", "replicas", MASTER_NAME),
            sentinelCli(port, "sentinel", "sentinels", MASTER_NAME),
          ]);
          const knowsReplica = replicas.includes(String(dataPorts[1]));
          const others = sentinelPorts.filter((other) => other !== port && sentinels.includes(String(other))).length;
          return knowsReplica && others === 2 ? "" : `${port}: replica ${knowsReplica}, ${others} other sentinels`;
        }),
      );
      const missing = views.filter(Boolean);
      return missing.length === 0 || missing.join("; ");
    });
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    masterName: MASTER_NAME,
    dataPassword: DATA_PASSWORD,
    sentinelPassword: SENTINEL_PASSWORD,
    dataPorts,
    sentinelPorts,
    /** The sentinels' URLs, with their password. */
    sentinels: sentinelPorts.map((port) => `redis://:${SENTINEL_PASSWORD}@127.0.0.1:${port}`),
    primaryPort,
    /** SIGKILL a data node. */
    kill: (port) => stopPort(port, "SIGKILL"),
    /** Start a killed data node again, empty, as a replica of `primary`. */
    restartAsReplica: async (port, primary) => {
      start(port, dataArgs(port, primary));
      await waitFor(`${port} to sync from ${primary}`, async () => (await dataCli(port, "info", "replication")).includes("master_link_status:up") || "not yet");
    },
    /** `SENTINEL FAILOVER`, as an operator would ask it (retried while a previous failover cools down). */
    failover: async () =>
      waitFor("SENTINEL FAILOVER to be accepted", async () => (await sentinelCli(sentinelPorts[0], "sentinel", "failover", MASTER_NAME)) === "OK" || "refused"),
    settled,
    dataCli,
    stop,
  };
}

module.exports = { startRedisSentinel };
