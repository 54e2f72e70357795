// The conformance suite over backtest-kit's own PersistBase (the reference that proves the suite
// right) and over every backend of the harness list, with each backend's variants.
import { PersistBase } from "backtest-kit";

import { BACKENDS } from "./backends";
import { persistConformance, type PersistCtor } from "./conformance";
import { makeTempDir, removeDir, treeSnapshot } from "./helpers";

// The reference runs first: the suite is only right if backtest-kit's own PersistBase passes it.
persistConformance(
  "backtest-kit PersistBase (reference)",
  async () => {
    const root = await makeTempDir("ref");
    return {
      Ctor: PersistBase as unknown as PersistCtor,
      root,
      snapshot: () => treeSnapshot(root),
      cleanup: () => removeDir(root),
    };
  },
  { strictIds: false, errorCodes: false, extras: false, issueOrder: false },
);

for (const backend of BACKENDS) {
  const variants: [string, object][] = [["defaults", {}], ...Object.entries(backend.variants ?? {})];
  for (const [variant, options] of variants) {
    persistConformance(
      `${backend.name} (${variant})`,
      async () => {
        const root = await makeTempDir(`conf-${backend.name}`);
        const place = await backend.open(root);
        return {
          Ctor: place.create(options),
          root: place.root,
          snapshot: () => place.dump(),
          cleanup: async () => {
            await place.cleanup();
            await removeDir(root);
          },
        };
      },
      { strictIds: true, errorCodes: true, extras: true, issueOrder: true, longestId: backend.capabilities.longestId },
    );
  }
}
