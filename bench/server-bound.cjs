"use strict";
// Is the test server or the client the bottleneck? `node bench/server-bound.cjs`: for MongoDB
// (nx-27017) and S3 (s3s-fs), ours and the JavaScript peer each run 64 writers, then 64 readers, for
// 3 s; prints throughput beside the CPU the server process and this process used (in cores).
// A server near 1 core (nx-27017 is single-threaded Python) is saturated whatever the client.
const fs = require("node:fs");
const { randomUUID } = require("node:crypto");
const { execFileSync } = require("node:child_process");

const { createMongoPersist, createS3Persist } = require("..");
const { startMongo } = require("../dev/mongo-server.cjs");
const { startS3 } = require("../dev/s3-server.cjs");
const { signalRow } = require("../dev/signal-row.cjs");
const { createMinioPersist, createMongoDriverPersist } = require("./peers.cjs");

const SECONDS = 3;
const TICK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));

/** CPU seconds (user + system) a process used so far. */
function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

async function measure(label, Ctor, serverPid) {
  const stores = Array.from({ length: 64 }, (_, i) => new Ctor(`e${i}`, "ns"));
  await Promise.all(stores.map((s) => s.waitForInit(true)));
  for (const [phase, op] of [
    ["writes", (store, n) => store.writeValue("k", signalRow(n))],
    ["reads", (store) => store.readValue("k")],
  ]) {
    const serverBefore = cpuSeconds(serverPid);
    const selfBefore = process.cpuUsage();
    const started = Date.now();
    let done = 0;
    await Promise.all(
      stores.map(async (store) => {
        while (Date.now() - started < SECONDS * 1000) await op(store, done++);
      }),
    );
    const wall = (Date.now() - started) / 1000;
    const self = process.cpuUsage(selfBefore);
    const server = (cpuSeconds(serverPid) - serverBefore) / wall;
    const client = (self.user + self.system) / 1e6 / wall;
    console.log(`${label.padEnd(16)} ${phase.padEnd(6)} ${String(Math.round(done / wall)).padStart(6)}/s  server ${server.toFixed(2)} cores  client ${client.toFixed(2)} cores`);
  }
  await Ctor.close();
}

(async () => {
  const [mongo, s3] = await Promise.all([startMongo(), startS3()]);
  try {
    const pidOf = (port) => execFileSync("sh", ["-c", `ss -ltnpH 'sport = :${port}' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2`], { encoding: "utf8" }).trim();
    const options = { endpoint: s3.endpoint, bucket: s3.bucket("load"), accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
    const collection = () => `load_${randomUUID().replace(/-/g, "")}`;
    await measure("RustMongoPersist", createMongoPersist({ url: mongo.url, collection: collection() }), pidOf(mongo.port));
    await measure("mongodb driver", createMongoDriverPersist({ url: mongo.url, collection: collection() }), pidOf(mongo.port));
    await measure("RustS3Persist", createS3Persist({ ...options, prefix: randomUUID() }), pidOf(s3.port));
    await measure("minio", createMinioPersist({ ...options, prefix: randomUUID() }), pidOf(s3.port));
  } finally {
    await Promise.all([mongo.destroy(), s3.destroy()]);
  }
})();
