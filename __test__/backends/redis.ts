import Redis from "ioredis";
import { inject } from "vitest";

import { createRedisPersist } from "../../index.js";
import { classes, type Harness, uniqueName } from "./harness";

export const redis: Harness = {
  name: "redis",
  capabilities: { server: true },
  async open(root) {
    const prefix = uniqueName("t");
    const url = inject("redisUrl");
    const client = new Redis(url);
    const hash = (ns: string, entity: string) => `${prefix}:${JSON.stringify([ns, entity])}`;
    const made = classes((options) => createRedisPersist({ url, prefix, ...options }));
    return {
      create: made.create,
      url: `${url}?prefix=${prefix}`,
      env: {},
      root,
      baseDir: (ns) => `./${ns}/`,
      get: (ns, entity, id) => client.hget(hash(ns, entity), id),
      set: async (ns, entity, id, text) => void (await client.hset(hash(ns, entity), id, text)),
      dump: async () => {
        const keys = (await client.keys(`${prefix}:*`)).sort();
        return JSON.stringify(await Promise.all(keys.map(async (k) => [k, await client.hgetall(k)])));
      },
      intact: async () => (await client.keys(`${prefix}:quarantine:*`)).map((key) => `moved aside: ${key}`),
      cleanup: async () => {
        await made.close();
        const keys = await client.keys(`${prefix}:*`);
        if (keys.length) await client.del(...keys);
        client.disconnect();
      },
    };
  },
};
