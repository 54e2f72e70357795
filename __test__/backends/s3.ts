import { inject } from "vitest";

import { createS3Persist } from "../../index.js";
import { s3Client, s3Dump, s3Get, s3Options, s3Put, s3RemoveAll } from "../stores";
import { classes, type Harness, uniqueName } from "./harness";

const SLOW_SERVER_MS = 30_000;

export const s3: Harness = {
  name: "s3",
  capabilities: { server: true, longestId: 64 },
  async open(root) {
    const prefix = uniqueName("t");
    const server = inject("s3");
    const client = s3Client();
    const key = (ns: string, entity: string, id: string) => `${prefix}/${ns}/${entity}/${id}.json`;
    // Every suite on this list shares one s3s-fs, and a burst of 300,000 writes keeps it busy for
    // most of a minute: classes and children of a place get a longer bound per request than the
    // default 5 s, so a slow moment of the test server does not fail a test about something else
    // (the bounds themselves are tested in s3.spec.ts with their own options).
    const made = classes((options) => createS3Persist({ ...s3Options(prefix), commandTimeoutMs: SLOW_SERVER_MS, ...options }));
    return {
      create: made.create,
      url: `s3://${server.bucket}/${prefix}?endpoint=${encodeURIComponent(server.endpoint)}&commandTimeoutMs=${SLOW_SERVER_MS}`,
      env: { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey },
      root,
      baseDir: (ns) => `./${ns}/`,
      get: (ns, entity, id) => s3Get(client, key(ns, entity, id)),
      set: (ns, entity, id, text) => s3Put(client, key(ns, entity, id), text),
      dump: async () => JSON.stringify(await s3Dump(prefix)),
      intact: async () => Object.keys(await s3Dump(prefix)).filter((key) => key.includes(".corrupt-")).map((key) => `moved aside: ${key}`),
      cleanup: async () => {
        await made.close();
        await s3RemoveAll(client, prefix);
      },
    };
  },
};
