// Memory proportional to the work in flight, and a bound past which requests wait in order.
import { execFileSync } from "node:child_process";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { inFlight, setMaxBytesInFlight } from "../index.js";
import { BACKENDS, type Place } from "./backends";
import { makeTempDir, removeDir } from "./helpers";

describe.each(BACKENDS)("$name backend", (backend) => {
  let dir: string;
  let place: Place;
  beforeEach(async () => {
    dir = await makeTempDir("backpressure");
    place = await backend.open(dir);
  });
  afterEach(async () => {
    await place.cleanup();
    await removeDir(dir);
  });

  it("300,000 un-awaited 1.5 KB writes: the last value issued wins, at most 2 KB of peak RSS each", { timeout: 240_000 }, () => {
    // A fresh process with an explicit GC, so the growth is this burst's alone.
    const out = execFileSync(process.execPath, ["--expose-gc", path.join(__dirname, "fixtures", "pending-writes.cjs"), place.url, place.baseDir("base")], {
      encoding: "utf8",
      env: { ...process.env, ...place.env },
      maxBuffer: 2 ** 20,
    });
    const { peakGrowthPerWrite, lastWins } = JSON.parse(out.trim().split("\n").pop()!);
    expect(lastWins).toBe(true);
    expect(peakGrowthPerWrite).toBeLessThanOrEqual(2048);
  });

  it("past the bound on bytes in flight, requests wait in issue order and all settle", async () => {
    const Persist = place.create();
    const store = new Persist("bounded", place.baseDir("base"));
    await store.waitForInit(true);
    const bound = 64 * 1024;
    const previous = setMaxBytesInFlight(bound);
    let worst = 0;
    let sampling = true;
    const sample = () => {
      worst = Math.max(worst, inFlight().bytes);
      if (sampling) setImmediate(sample);
    };
    sample();
    try {
      const pad = "q".repeat(1500);
      const writes: Promise<void>[] = [];
      const reads: Array<Promise<any>> = [];
      for (let i = 0; i < 2000; i++) {
        writes.push(store.writeValue(`k${i % 20}`, { i, pad }));
        worst = Math.max(worst, inFlight().bytes);
        if (i % 100 === 99) reads.push(store.readValue(`k${i % 20}`)); // issued after write i
      }
      expect(inFlight().held).toBeGreaterThan(0); // the bound was reached
      await Promise.all(writes);
      (await Promise.all(reads)).forEach((value, n) => expect(value.i).toBeGreaterThanOrEqual(n * 100 + 99));
      for (let id = 0; id < 20; id++) expect((await store.readValue(`k${id}`)).i).toBe(1980 + id);
    } finally {
      sampling = false;
      setMaxBytesInFlight(previous);
    }
    expect(worst).toBeLessThanOrEqual(bound + 1600);
    expect(inFlight()).toEqual({ bytes: 0, held: 0 });
  });
});

it("refuses a bound that is not a positive whole number", () => {
  for (const bad of [0, -1, 1.5, NaN, "10" as any]) {
    let err: any;
    try {
      setMaxBytesInFlight(bad);
    } catch (e) {
      err = e;
    }
    expect(err?.code).toBe("PERSIST_INVALID_CONFIG");
  }
});
