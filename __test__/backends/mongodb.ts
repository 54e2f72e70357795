import { inject } from "vitest";

import { createMongoPersist } from "../../index.js";
import { mongoClient, mongoKey } from "../stores";
import { classes, type Harness, uniqueName } from "./harness";

export const mongodb: Harness = {
  name: "mongodb",
  capabilities: { server: true },
  async open(root) {
    const collection = uniqueName("t");
    const url = inject("mongoUrl");
    const client = await mongoClient();
    const docs = () => client.db("backtest_kit").collection<{ _id: string; v: string }>(collection);
    const made = classes((options) => createMongoPersist({ url, collection, ...options }));
    return {
      create: made.create,
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
        await made.close();
        await docs().drop().catch(() => undefined);
        await client.close();
      },
    };
  },
};
