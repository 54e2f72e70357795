import { inject } from "vitest";

import { createS3Persist } from "../../index.js";
import { s3Client, s3Dump, s3Get, s3Options, s3Put, s3RemoveAll } from "../stores";
import { type Harness, uniqueName } from "./harness";

export const s3: Harness = {
  name: "s3",
  capabilities: { server: true, longestId: 64 },
  async open(root) {
    const prefix = uniqueName("t");
    const server = inject("s3");
    const client = s3Client();
    const key = (ns: string, entity: string, id: string) => `${prefix}/${ns}/${entity}/${id}.json`;
    const classes: any[] = [];
    return {
      create: (options = {}) => {
        const Class = createS3Persist({ ...s3Options(prefix), ...options });
        classes.push(Class);
        return Class;
      },
      // Child processes (bursts of 300,000 writes, crash loops) share one s3s-fs with the suites
      // running beside them: a longer bound per request than the default 5 s keeps a slow moment
      // of the test server from failing a test about something else.
      url: `s3://${server.bucket}/${prefix}?endpoint=${encodeURIComponent(server.endpoint)}&commandTimeoutMs=30000`,
      env: { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey },
      root,
      baseDir: (ns) => `./${ns}/`,
      get: (ns, entity, id) => s3Get(client, key(ns, entity, id)),
      set: (ns, entity, id, text) => s3Put(client, key(ns, entity, id), text),
      dump: async () => JSON.stringify(await s3Dump(prefix)),
      intact: async () => Object.keys(await s3Dump(prefix)).filter((key) => key.includes(".corrupt-")).map((key) => `moved aside: ${key}`),
      cleanup: async () => {
        for (const Class of classes) await Class.close();
        await s3RemoveAll(client, prefix);
      },
    };
  },
};
