"use strict";
// A pending signal written by RustFilePersist survives a SIGKILL of the process that wrote it.
// Run: npm run example
const { spawn } = require("node:child_process");
const path = require("node:path");
const { RustFilePersist } = require("..");

const baseDir = path.join(process.cwd(), "dump", "example", "signal");
const entityName = "BTCUSDT_demo-strategy_demo-exchange";

const signal = {
  id: "demo-signal-1",
  position: "long",
  symbol: "BTCUSDT",
  strategyName: "demo-strategy",
  exchangeName: "demo-exchange",
  priceOpen: 42000.5,
  priceTakeProfit: 43260.5,
  priceStopLoss: 41370.5,
  minuteEstimatedTime: 240,
  pendingAt: Date.UTC(2026, 10, 26, 12, 0),
};

async function child() {
  const store = new RustFilePersist(entityName, baseDir);
  await store.waitForInit(true);
  await store.writeValue("BTCUSDT", signal);
  console.log(`[2/3] child ${process.pid}: wrote pending signal ${signal.id} at ${signal.priceOpen}; killing myself with SIGKILL`);
  process.kill(process.pid, "SIGKILL");
}

async function parent() {
  console.log(`[1/3] starting a child process that opens a position through RustFilePersist (${baseDir})`);
  const { signal: how } = await new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [__filename, "--child"], { stdio: "inherit" });
    proc.on("error", reject);
    proc.on("exit", (code, sig) => resolve({ code, signal: sig }));
  });
  if (how !== "SIGKILL") throw new Error(`child ended with ${how}, expected SIGKILL`);

  const store = new RustFilePersist(entityName, baseDir);
  await store.waitForInit(true);
  const restored = await store.readValue("BTCUSDT");
  const same = JSON.stringify(restored) === JSON.stringify(signal);
  console.log(`[3/3] after the crash a fresh process reads ${restored.id} at ${restored.priceOpen}: ${same ? "restored exactly" : "MISMATCH"}`);
  if (!same) process.exitCode = 1;
}

(process.argv.includes("--child") ? child() : parent()).catch((err) => {
  console.error(err);
  process.exit(1);
});
