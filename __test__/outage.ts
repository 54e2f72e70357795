// A server lost under load, for every server backend: eight instances write their own id in a
// loop while the server is stopped (or killed) and started again on the same port.
import { expect } from "vitest";

import { sleep } from "./helpers";

export interface Restartable {
  stop(): Promise<void>;
  start(): Promise<void>;
}

/**
 * While eight writers run: `server.stop()`; a read must fail with PERSIST_UNAVAILABLE within
 * `limitMs`; `server.start()`; every writer must resume on its own instance, no other error code
 * may have reached them, nothing may be unhandled, and every write acknowledged before the stop
 * must still be there (the server's durability, at the level the backend asks for).
 */
export async function outageUnderLoad(Persist: any, server: Restartable, limitMs: number): Promise<void> {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  try {
    const stores = Array.from({ length: 8 }, (_, i) => new Persist(`e${i}`, "ns"));
    await Promise.all(stores.map((store) => store.waitForInit(true)));
    let running = true;
    const acked = new Map<string, number>();
    const codes = new Set<string>();
    const writers = stores.map(async (store, i) => {
      for (let seq = 0; running; seq++) {
        try {
          await store.writeValue("k", { seq });
          acked.set(`e${i}`, seq);
        } catch (e: any) {
          codes.add(e.code);
          await sleep(20);
        }
      }
    });
    await sleep(300);
    await server.stop();
    const before = new Map(acked);
    expect(before.size, "every writer had a write acknowledged before the stop").toBe(stores.length);
    const started = Date.now();
    const err: any = await stores[0].readValue("k").catch((e: unknown) => e);
    expect(err?.code, err?.message).toBe("PERSIST_UNAVAILABLE");
    expect(Date.now() - started).toBeLessThan(limitMs);
    await sleep(500);
    await server.start();
    const deadline = Date.now() + 20_000;
    while (stores.some((_, i) => (acked.get(`e${i}`) ?? -1) <= (before.get(`e${i}`) ?? -1))) {
      if (Date.now() > deadline) throw new Error(`writes did not resume: ${[...codes]}`);
      await sleep(50);
    }
    running = false;
    await Promise.all(writers);
    expect([...codes].filter((code) => code !== "PERSIST_UNAVAILABLE")).toEqual([]);
    for (const [entity, seq] of before) {
      const value: any = await new Persist(entity, "ns").readValue("k");
      expect(value.seq, entity).toBeGreaterThanOrEqual(seq);
    }
    expect(unhandled).toEqual([]);
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
}
