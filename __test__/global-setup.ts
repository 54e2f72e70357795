// One private server of each kind for the whole run, started side by side: redis-server, a
// PostgreSQL cluster, a MongoDB-wire server (nx-27017) and an S3 server (s3s-fs). Suites that stop
// servers start their own.
import type { TestProject } from "vitest/node";

import { startRedisServer, type RedisServer } from "./redis-server";
/* eslint-disable @typescript-eslint/no-require-imports */
const { startPostgres } = require("../dev/postgres-server.cjs");
const { startMongo } = require("../dev/mongo-server.cjs");
const { startS3 } = require("../dev/s3-server.cjs");
/* eslint-enable @typescript-eslint/no-require-imports */

interface Destroyable {
  destroy(): Promise<void>;
}

let server: RedisServer | undefined;
let others: Destroyable[] = [];

/** The bucket every suite shares (each test writes under a prefix of its own). */
const S3_BUCKET = "bkrs-test";

export async function setup(project: TestProject): Promise<void> {
  // Where no server can run (the release workflow on Windows), only suites that need none are
  // run, named on the command line, with BKRS_TEST_WITHOUT_REDIS=1.
  if (process.env.BKRS_TEST_WITHOUT_REDIS === "1") {
    project.provide("redisUrl", "");
    project.provide("postgresUrl", "");
    project.provide("mongoUrl", "");
    project.provide("s3", { endpoint: "", bucket: "", accessKeyId: "", secretAccessKey: "", root: "" });
    return;
  }
  // BKRS_TEST_MONGO_URL: a real MongoDB (the release workflow's service container) instead of
  // nx-27017 for the shared suites; each test uses collections of its own.
  const realMongo = process.env.BKRS_TEST_MONGO_URL;
  const [redis, postgres, mongo, s3] = await startAll([
    startRedisServer().then((redis) => Object.assign(redis, { destroy: () => redis.stop() })),
    startPostgres(),
    realMongo ? { url: realMongo, destroy: async () => undefined } : startMongo(),
    startS3(),
  ] as const);
  server = redis;
  others = [postgres, mongo, s3];
  project.provide("redisUrl", redis.url);
  project.provide("postgresUrl", postgres.url);
  project.provide("mongoUrl", mongo.url);
  project.provide("s3", {
    endpoint: s3.endpoint,
    bucket: s3.bucket(S3_BUCKET),
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    root: s3.root,
  });
}

/**
 * Every server started, or — if any cannot start — the ones that did stopped (their processes would
 * keep vitest from exiting) and the run failed at once with every reason, before a test is collected.
 */
async function startAll<T extends readonly (Destroyable | Promise<Destroyable>)[]>(
  starts: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const results = await Promise.allSettled(starts);
  const reasons = results.flatMap((result) => (result.status === "rejected" ? [String(result.reason?.message ?? result.reason)] : []));
  if (reasons.length) {
    await Promise.all(results.map((result) => (result.status === "fulfilled" ? result.value.destroy() : undefined)));
    throw new Error(`a test server could not start:\n${reasons.join("\n")}`);
  }
  return results.map((result) => (result as PromiseFulfilledResult<Destroyable>).value) as never;
}

export async function teardown(): Promise<void> {
  await Promise.all([server?.stop(), ...others.map((o) => o.destroy())]);
}

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
    /** `postgres://postgres@127.0.0.1:{port}/postgres` (trust authentication). */
    postgresUrl: string;
    /** `mongodb://127.0.0.1:{port}/?directConnection=true` (nx-27017, no authentication). */
    mongoUrl: string;
    /** An s3s-fs server and a bucket on it, with the one access key it accepts. */
    s3: { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string; root: string };
  }
}
