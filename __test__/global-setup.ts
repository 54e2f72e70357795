// One private redis-server for the whole run (suites that stop servers start their own).
import type { TestProject } from "vitest/node";

import { startRedisServer, type RedisServer } from "./redis-server";

let server: RedisServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  // Where no redis-server can run (the release workflow on Windows), only suites that need none
  // are run, named on the command line, with BKRS_TEST_WITHOUT_REDIS=1.
  if (process.env.BKRS_TEST_WITHOUT_REDIS === "1") {
    project.provide("redisUrl", "");
    return;
  }
  server = await startRedisServer();
  project.provide("redisUrl", server.url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
  }
}
