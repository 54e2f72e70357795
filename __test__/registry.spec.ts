// The core's registry is the one list of backends: every backend it registers has a test
// harness (so every suite runs over it), an exported class and factory, declarations in
// index.d.ts, a use in types/check.ts, and its URL schemes in the refusal of an unknown one.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import * as lib from "../index.js";
import { BACKENDS } from "./backends";

const registered = lib.listBackends();
const read = (file: string) => fs.readFileSync(path.join(__dirname, file), "utf8");

describe("the backend registry", () => {
  it("lists each backend once, and each has a test harness", () => {
    const names = registered.map((b) => b.name);
    expect(new Set(names).size).toBe(names.length);
    expect([...names].sort()).toEqual(BACKENDS.map((h) => h.name).sort());
  });

  it.each(registered)("$name: exported as $className with its factory, declared and type-checked", ({ className }) => {
    const factory = className.replace(/^Rust/, "create");
    expect((lib as any)[className]?.name).toBe(className);
    expect(typeof (lib as any)[factory]).toBe("function");
    const dts = read("../index.d.ts");
    expect(dts).toContain(`export declare const ${className}: BackendClass<`);
    expect(dts).toContain(`export declare function ${factory}(`);
    expect(read("types/check.ts")).toContain(className);
  });

  it("names every registered scheme when a URL's scheme is unknown", () => {
    let message = "";
    try {
      lib.createPersist("nosuch://host/x");
    } catch (err: any) {
      expect(err.code).toBe("PERSIST_INVALID_CONFIG");
      message = err.message;
    }
    for (const { schemes } of registered) for (const scheme of schemes) expect(message).toContain(`${scheme}:`);
  });
});
