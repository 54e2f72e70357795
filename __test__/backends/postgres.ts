import pg from "pg";
import { inject } from "vitest";

import { createPostgresPersist } from "../../index.js";
import { classes, type Harness, uniqueName } from "./harness";

export const postgres: Harness = {
  name: "postgres",
  capabilities: { server: true },
  async open(root) {
    const table = uniqueName("t");
    const url = inject("postgresUrl");
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const made = classes((options) => createPostgresPersist({ url, table, ...options }));
    return {
      create: made.create,
      url: `${url}${url.includes("?") ? "&" : "?"}table=${table}`,
      env: {},
      root,
      baseDir: (ns) => `./${ns}/`,
      get: async (ns, entity, id) => {
        // Nothing stored before the first store of this place made the table.
        if ((await client.query("SELECT to_regclass($1) AS t", [table])).rows[0].t === null) return null;
        return (await client.query(`SELECT value FROM ${table} WHERE namespace = $1 AND entity = $2 AND id = $3`, [ns, entity, id])).rows[0]?.value ?? null;
      },
      set: async (ns, entity, id, text) => {
        // The table exists once a store of this place has been initialised.
        await new (made.create())(entity, `./${ns}/`).waitForInit(false);
        await client.query(
          `INSERT INTO ${table} (namespace, entity, id, value) VALUES ($1, $2, $3, $4) ON CONFLICT (namespace, entity, id) DO UPDATE SET value = $4`,
          [ns, entity, id, text],
        );
      },
      dump: async () => JSON.stringify((await client.query(`SELECT * FROM ${table} ORDER BY 1, 2, 3`).catch(() => ({ rows: [] }))).rows),
      intact: async () => {
        if ((await client.query("SELECT to_regclass($1) AS t", [`${table}_quarantine`])).rows[0].t === null) return [];
        const { n } = (await client.query(`SELECT count(*)::int AS n FROM ${table}_quarantine`)).rows[0];
        return n ? [`${n} rows moved aside`] : [];
      },
      cleanup: async () => {
        await made.close();
        await client.query(`DROP TABLE IF EXISTS ${table}, ${table}_quarantine, ${table}_meta`);
        await client.end();
      },
    };
  },
};
