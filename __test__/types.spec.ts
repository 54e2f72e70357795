import { execFileSync } from "node:child_process";
import path from "node:path";
import { expect, it } from "vitest";

it("index.d.ts satisfies backtest-kit's TPersistBaseCtor and IPersistBase (tsc --noEmit)", () => {
  const tsc = require.resolve("typescript/bin/tsc");
  const project = path.join(__dirname, "types", "tsconfig.json");
  let output = "";
  try {
    execFileSync(process.execPath, [tsc, "-p", project], { encoding: "utf8" });
  } catch (err: any) {
    output = `${err.stdout}${err.stderr}`;
  }
  expect(output).toBe("");
});
