import { PersistBase } from "backtest-kit";

import path from "node:path";

import { createSqlitePersist, RustFilePersist } from "../index.js";
import { persistConformance, type PersistCtor } from "./conformance";
import { makeTempDir, removeDir, sqliteAll, treeSnapshot } from "./helpers";

function fileBackend(Ctor: PersistCtor, tag: string) {
  return async () => {
    const root = await makeTempDir(tag);
    return {
      Ctor,
      root,
      snapshot: () => treeSnapshot(root),
      cleanup: () => removeDir(root),
    };
  };
}

// The reference runs first: the suite is only right if backtest-kit's own PersistBase passes it.
persistConformance("backtest-kit PersistBase (reference)", fileBackend(PersistBase as unknown as PersistCtor, "ref"), {
  strictIds: false,
  errorCodes: false,
  extras: false,
});

persistConformance("RustFilePersist", fileBackend(RustFilePersist, "file"), {
  strictIds: true,
  errorCodes: true,
  extras: true,
});

persistConformance(
  "RustSqlitePersist",
  async () => {
    const root = await makeTempDir("sqlite");
    const Ctor = createSqlitePersist({ path: path.join(root, "db", "state.sqlite") });
    return {
      Ctor,
      root,
      snapshot: async () => ({
        rows: sqliteAll(Ctor.database.path, "SELECT * FROM entities ORDER BY namespace, entity, id"),
        tree: await treeSnapshot(path.join(root, "data")) }),
      cleanup: async () => {
        await Ctor.close();
        await removeDir(root);
      },
    };
  },
  { strictIds: true, errorCodes: true, extras: true },
);
