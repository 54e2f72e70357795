import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["__test__/**/*.spec.ts"],
    globalSetup: ["__test__/global-setup.ts"],
    // Native addons and child processes: one fork per file keeps crashes contained.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
