import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["__test__/**/*.spec.ts"],
    globalSetup: ["__test__/global-setup.ts"],
    // Native addons and child processes: one fork per file keeps crashes contained.
    pool: "forks",
    // Most suites wait on servers, child processes and kills, not on the CPU: two files at a time
    // on a 2-core machine (vitest's default there is one) keeps the run well inside CI's budget.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
