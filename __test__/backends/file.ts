import fs from "node:fs";
import path from "node:path";

import { createFilePersist } from "../../index.js";
import type { Harness } from "./harness";

const walk = (dir: string): string[] =>
  fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)])) : [];

export const file: Harness = {
  name: "file",
  capabilities: { server: false },
  // Encryption wraps any backend; over files, the whole contract holds on envelopes.
  variants: { encrypted: { encryption: { key: Buffer.alloc(32, 3).toString("base64") } } },
  async open(root) {
    const dir = fs.mkdtempSync(path.join(root, "file-"));
    const doc = (ns: string, entity: string, id: string) => path.join(dir, ns, entity, `${id}.json`);
    return {
      create: (options = {}) => createFilePersist(options),
      url: "file:",
      env: {},
      root: dir,
      baseDir: (ns) => path.join(dir, ns),
      get: async (ns, entity, id) => (fs.existsSync(doc(ns, entity, id)) ? fs.readFileSync(doc(ns, entity, id), "utf8") : null),
      set: async (ns, entity, id, text) => {
        fs.mkdirSync(path.dirname(doc(ns, entity, id)), { recursive: true });
        fs.writeFileSync(doc(ns, entity, id), text);
      },
      dump: async () => walk(dir).sort().map((f) => `${f}\n${fs.readFileSync(f, "utf8")}`).join("\n"),
      intact: async () => walk(dir).filter((f) => f.includes(".corrupt-")).map((f) => `moved aside: ${f}`),
      cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  },
};
