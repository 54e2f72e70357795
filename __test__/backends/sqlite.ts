import fs from "node:fs";
import path from "node:path";

import { createSqlitePersist } from "../../index.js";
import { sqliteAll, sqliteExec } from "../helpers";
import { classes, type Harness, uniqueName } from "./harness";

const quote = (text: string) => `'${text.replace(/'/g, "''")}'`;

export const sqlite: Harness = {
  name: "sqlite",
  capabilities: { server: false },
  // Reads answer on the calling thread by default; the worker-thread path is the other half.
  variants: { "reads on a worker thread": { syncReads: false } },
  async open(root) {
    const db = path.join(root, `${uniqueName("db")}.sqlite`);
    const where = (ns: string, entity: string, id: string) => `namespace = ${quote(ns)} AND entity = ${quote(entity)} AND id = ${quote(id)}`;
    const made = classes((options) => createSqlitePersist({ path: db, ...options }));
    return {
      create: made.create,
      url: `sqlite:${db}`,
      env: {},
      root,
      baseDir: (ns) => `./${ns}/`,
      // Nothing stored before the first store of this place made the database.
      get: async (ns, entity, id) =>
        fs.existsSync(db) ? (sqliteAll(db, `SELECT CAST(value AS TEXT) AS v FROM entities WHERE ${where(ns, entity, id)}`)[0]?.v ?? null) : null,
      set: async (ns, entity, id, text) =>
        sqliteExec(db, `INSERT OR REPLACE INTO entities (namespace, entity, id, value) VALUES (${quote(ns)}, ${quote(entity)}, ${quote(id)}, ${quote(text)})`),
      dump: async () => JSON.stringify(sqliteAll(db, "SELECT namespace, entity, id, CAST(value AS TEXT) AS v FROM entities ORDER BY 1, 2, 3")),
      intact: async () => {
        if (!fs.existsSync(db)) return [];
        const check = String(Object.values(sqliteAll(db, "PRAGMA integrity_check")[0])[0]);
        const aside = sqliteAll(db, "SELECT count(*) AS n FROM quarantine")[0].n;
        return [...(check === "ok" ? [] : [`integrity_check: ${check}`]), ...(aside ? [`${aside} rows moved aside`] : [])];
      },
      cleanup: async () => {
        await made.close();
      },
    };
  },
};
