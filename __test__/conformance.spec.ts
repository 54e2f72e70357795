import { PersistBase } from "backtest-kit";

import { RustFilePersist } from "../index.js";
import { persistConformance, type PersistCtor } from "./conformance";
import { makeTempDir, removeDir, treeSnapshot } from "./helpers";

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
