// One private redis-server and one private PostgreSQL cluster for the whole run, started side by
// side (suites that stop servers start their own).
import type { TestProject } from "vitest/node";

import { startRedisServer, type RedisServer } from "./redis-server";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startPostgres } = require("../dev/postgres-server.cjs");

let server: RedisServer | undefined;
let postgres: { url: string; destroy(): Promise<void> } | undefined;

export async function setup(project: TestProject): Promise<void> {
  // Where no redis-server can run (the release workflow on Windows), only suites that need none
  // are run, named on the command line, with BKRS_TEST_WITHOUT_REDIS=1.
  if (process.env.BKRS_TEST_WITHOUT_REDIS === "1") {
    project.provide("redisUrl", "");
    project.provide("postgresUrl", "");
    return;
  }
  [server, postgres] = await Promise.all([startRedisServer(), startPostgres()]);
  project.provide("redisUrl", server.url);
  project.provide("postgresUrl", postgres!.url);
}

export async function teardown(): Promise<void> {
  await Promise.all([server?.stop(), postgres?.destroy()]);
}

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
    /** `postgres://postgres@127.0.0.1:{port}/postgres` (trust authentication). */
    postgresUrl: string;
  }
}
