// Crash safety at scale, on every backend of the harness list: 100 SIGKILLs of a process writing
// one id over and over (payloads from a few bytes to 64 KiB). After each kill the storage opens,
// holds a whole written version, never one older than the last write the child saw acknowledged,
// and nothing was moved aside or damaged.
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { BACKENDS } from "./backends";
import { makeTempDir, removeDir, sleep, startWriter } from "./helpers";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { isPayload, payload } = require("./fixtures/backends.cjs");

const KILLS = 100;
const [NS, ENTITY, ID] = ["crash", "crash-ent", "BTCUSDT"];

let root: string;
beforeAll(async () => {
  root = await makeTempDir("crash");
});
afterAll(async () => {
  await removeDir(root);
});

describe.each(BACKENDS.map((backend) => [backend.name, backend] as const))("%s backend", (_name, backend) => {
  it(`survives ${KILLS} SIGKILLs of a writing process: no acknowledged write is lost`, { timeout: 240_000 }, async () => {
    const place = await backend.open(root);
    const Persist = place.create();
    const baseDir = place.baseDir(NS);
    // A store as a fresh process opens it: the class is closed between kills.
    const open = () => new Persist(ENTITY, baseDir);
    try {
      const first = open();
      await first.waitForInit(true);
      await first.writeValue(ID, payload(0));
      await Persist.close();
      let seq = 1;
      let acknowledged = 0;
      for (let kill = 0; kill < KILLS; kill++) {
        // The child opens the same place through its store URL: the class a bot would make.
        const writer = startWriter([place.url, baseDir, ENTITY, ID, seq, 0], place.env);
        await writer.ready;
        await sleep(5 + Math.random() * 60);
        writer.child.kill("SIGKILL");
        const { signal } = await writer.exited;
        expect(signal, writer.stderr()).toBe("SIGKILL");
        const acked = writer.lastAck();
        acknowledged += Math.max(0, acked - seq + 1);

        expect(await place.intact(), "nothing moved aside or damaged").toEqual([]);
        const raw = await place.get(NS, ENTITY, ID);
        expect(isPayload(JSON.parse(raw ?? "null")), "the stored text is one whole version").toBe(true);
        const store = open();
        await store.waitForInit(true);
        const value = await store.readValue(ID);
        expect(isPayload(value)).toBe(true);
        // The storage holds the last acknowledged write or a later one.
        expect(value.seq).toBeGreaterThanOrEqual(acked);
        await Persist.close();
        seq = Math.max(seq, acked, value.seq) + 1;
      }
      expect(acknowledged).toBeGreaterThan(KILLS); // the children did write between kills
    } finally {
      await place.cleanup();
    }
  });
});
