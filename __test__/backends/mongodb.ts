import { inject } from "vitest";

import { createMongoPersist } from "../../index.js";
import { mongoClient, mongoKey } from "../stores";
import { type Harness, uniqueName } from "./harness";

export const mongodb: Harness = {
  name: "mongodb",
  capabilities: { server: true },
  async open(root) {
    const collection = uniqueName("t");
    const url = inject("mongoUrl");
    const client = await mongoClient();
    const docs = () => client.db("backtest_kit").collection<{ _id: string; v: string }>(collection);
    const classes: any[] = [];
    return {
      create: (options = {}) => {
        const Class = createMongoPersist({ url, collection, ...options });
        classes.push(Class);
        return Class;
      },
      url: `${url}${url.includes("?") ? "&" : "?"}collection=${collection}`,
      env: {},
      root,
      baseDir: (ns) => `./${ns}/`,
      get: async (ns, entity, id) => (await docs().findOne({ _id: mongoKey(ns, entity, id) }))?.v ?? null,
      set: async (ns, entity, id, text) => void (await docs().updateOne({ _id: mongoKey(ns, entity, id) }, { $set: { v: text } }, { upsert: true })),
      dump: async () => JSON.stringify(await docs().find({}).sort({ _id: 1 }).toArray()),
      intact: async () => {
        const n = await client.db("backtest_kit").collection(`${collection}_quarantine`).countDocuments();
        return n ? [`${n} documents moved aside`] : [];
      },
      cleanup: async () => {
        for (const Class of classes) await Class.close();
        await docs().drop().catch(() => undefined);
        await client.close();
      },
    };
  },
};
