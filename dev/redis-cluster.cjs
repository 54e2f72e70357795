"use strict";
// A private Redis Cluster (3 primaries + 3 replicas) on free loopback ports, for the tests and the
// benchmark. Same approach as redis-server.cjs; status checks go through redis-cli so no npm client
// is needed.
const { execFile } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const { killAll, launch, logTails, sleep, stopProcess } = require("./processes.cjs");
const { findBinary } = require("./test-deps.cjs");

const NODE_COUNT = 6;
const START_TIMEOUT_MS = 30_000;
// Every node also listens on its cluster-bus port P + 10000, so P must stay below 55536. The kernel's
// ephemeral range (32768-60999) often hands out ports that are too high, so pick our own candidates.
const PORT_MIN = 20_000;
const PORT_MAX = 45_000;
const BUS_OFFSET = 10_000;


/** Resolves true when 127.0.0.1:port can be bound now. */
function canBind(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** `count` ports P with P and P + 10000 both free, and no port of the set clashing with another's bus port. */
async function freeClusterPorts(count) {
  const taken = new Set();
  const ports = [];
  for (let attempt = 0; ports.length < count; attempt++) {
    if (attempt > 1000) throw new Error(`no ${count} free port pairs (P, P+${BUS_OFFSET}) in ${PORT_MIN}-${PORT_MAX}`);
    const port = PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN));
    if (taken.has(port) || taken.has(port + BUS_OFFSET)) continue;
    if (!(await canBind(port)) || !(await canBind(port + BUS_OFFSET))) continue;
    taken.add(port).add(port + BUS_OFFSET);
    ports.push(port);
  }
  return ports;
}


/** Parse CLUSTER NODES output into { port, flags, slots } rows. */
function parseClusterNodes(text) {
  return text
    .split("\n")
    .map((line) => line.trim().split(" "))
    .filter((fields) => fields.length >= 8)
    .map((fields) => {
      const address = fields[1].split("@")[0];
      return {
        port: Number(address.slice(address.lastIndexOf(":") + 1)),
        flags: fields[2].split(","),
        slots: fields.slice(8),
      };
    });
}

/**
 * Start a 3-primary + 3-replica cluster; resolves when it is ready. With `password`, every node
 * requires it (of clients, and of each other for replication).
 */
async function startRedisCluster(extraArgs = [], password = undefined) {
  const auth = password ? ["--no-auth-warning", "-a", password] : [];
  const serverBinary = findBinary("redis-server");
  const cliBinary = findBinary("redis-cli");
  const deadline = Date.now() + START_TIMEOUT_MS;
  const ports = await freeClusterPorts(NODE_COUNT);
  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), "bkrs-redis-cluster-"));
  /** port -> { proc, log, exited } */
  const nodes = new Map();
  let stopped = false;

  const cli = (port, args, timeout = 2_000) =>
    new Promise((resolve, reject) => {
      execFile(cliBinary, ["-h", "127.0.0.1", "-p", String(port), ...auth, ...args], { timeout, encoding: "utf8" }, (error, stdout, stderr) => {
        if (error) reject(new Error(`redis-cli -p ${port} ${args.join(" ")}: ${(stderr || stdout || error.message).trim()}`));
        else resolve(stdout);
      });
    });

  const fail = (message) => new Error(`Redis Cluster did not start (ports ${ports.join(", ")}): ${message}\n${logTails(nodes)}`);

  // A test run that throws or calls process.exit() without stop() would otherwise leave six orphaned
  // redis-server processes behind (nothing closes them when our pipes go away).
  const killOnExit = () => {
    killAll(nodes.values());
    fs.rmSync(baseDir, { recursive: true, force: true });
  };
  process.once("exit", killOnExit);

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all([...nodes.values()].map((node) => stopProcess(node, "SIGTERM")));
    process.removeListener("exit", killOnExit);
    fs.rmSync(baseDir, { recursive: true, force: true });
  };

  const kill = async (port) => {
    const node = nodes.get(port);
    if (!node) throw new Error(`port ${port} is not a node of this cluster (${ports.join(", ")})`);
    await stopProcess(node, "SIGKILL");
  };

  const alivePorts = () => ports.filter((port) => nodes.get(port)?.exited === undefined);

  /** Primaries that own slots and are not flagged failing, as seen by the first node that answers. */
  const primaryPorts = async () => {
    let lastError = new Error("no live node");
    for (const port of alivePorts()) {
      try {
        return parseClusterNodes(await cli(port, ["cluster", "nodes"]))
          .filter((row) => row.flags.includes("master") && !row.flags.includes("fail") && !row.flags.includes("fail?") && row.slots.length > 0)
          .map((row) => row.port)
          .sort((a, b) => a - b);
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  };

  try {
    for (const port of ports) {
      const dir = path.join(baseDir, String(port));
      fs.mkdirSync(dir);
      const args = [
        "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no",
        "--cluster-enabled", "yes", "--cluster-config-file", path.join(dir, "nodes.conf"), "--cluster-node-timeout", "2000",
        // Redis 7.0 waits 5 s before a diskless full sync in case more replicas come; the replicas here
        // all attach at once, so the wait only delays start-up.
        "--repl-diskless-sync-delay", "0",
        ...(password ? ["--requirepass", password, "--masterauth", password] : []),
        ...extraArgs,
      ];
      nodes.set(port, launch(serverBinary, args));
    }

    // Polls until check() resolves true (otherwise it returns what is still missing, for the timeout
    // message); a node dying meanwhile fails at once instead of at the deadline.
    const waitFor = async (what, check) => {
      let last = "";
      for (;;) {
        const dead = ports.filter((port) => nodes.get(port).exited !== undefined);
        if (dead.length > 0) throw fail(`node(s) ${dead.join(", ")} exited while waiting for ${what}`);
        try {
          const result = await check();
          if (result === true) return;
          last = result;
        } catch (error) {
          last = error.message;
        }
        if (Date.now() > deadline) throw fail(`timed out after ${START_TIMEOUT_MS / 1000} s waiting for ${what}${last ? ` (last: ${last})` : ""}`);
        await sleep(100);
      }
    };

    // `--cluster create` needs every node listening, or it fails with "Connection refused".
    await waitFor("every node to answer PING", async () => {
      const replies = await Promise.all(ports.map(async (port) => [port, (await cli(port, ["ping"])).trim()]));
      const wrong = replies.filter(([, reply]) => reply !== "PONG");
      return wrong.length === 0 || wrong.map(([port, reply]) => `${port} replied ${reply}`).join("; ");
    });

    const hosts = ports.map((port) => `127.0.0.1:${port}`);
    await new Promise((resolve, reject) => {
      execFile(
        cliBinary,
        [...auth, "--cluster", "create", ...hosts, "--cluster-replicas", "1", "--cluster-yes"],
        { timeout: Math.max(1_000, deadline - Date.now()), encoding: "utf8" },
        (error, stdout, stderr) => (error ? reject(fail(`redis-cli --cluster create failed:\n${stdout}${stderr}`)) : resolve()),
      );
    });

    // `create` returns once the slots are assigned, but some nodes may not yet see the others (a client
    // connecting now could get CLUSTERDOWN or stale topology), and a replica is listed as `slave` before
    // its first sync: one that never synced refuses to fail over, which breaks failover tests.
    await waitFor("cluster_state:ok, three replicas and every replica synced", async () => {
      const views = await Promise.all(
        ports.map(async (port) => ({
          port,
          info: await cli(port, ["cluster", "info"]),
          nodes: await cli(port, ["cluster", "nodes"]),
          replication: await cli(port, ["info", "replication"]),
        })),
      );
      const missing = views.flatMap((view) => {
        const replicas = parseClusterNodes(view.nodes).filter((row) => row.flags.includes("slave")).length;
        return [
          ...(view.info.includes("cluster_state:ok") ? [] : [`${view.port} not cluster_state:ok`]),
          ...(replicas === 3 ? [] : [`${view.port} sees ${replicas} replicas`]),
          ...(!view.replication.includes("role:slave") || view.replication.includes("master_link_status:up") ? [] : [`${view.port} not synced`]),
        ];
      });
      return missing.length === 0 || missing.join("; ");
    });
  } catch (error) {
    // Leave nothing behind when start-up fails half-way.
    await stop();
    throw error;
  }

  return {
    ports,
    nodes: ports.map((port) => `redis://127.0.0.1:${port}`),
    primaryPorts,
    stop,
    kill,
  };
}

module.exports = { startRedisCluster };
