"use strict";
// backtest-kit@19.5.0 imports `singleton` from di-singleton. The registry reachable here does
// not serve that package, so this stand-in provides what backtest-kit uses: one memoised
// instance per distinct list of primitive arguments, and `.clear(...args)` to drop one or all.

const isPrimitive = (value) =>
  value === null || ["string", "number", "boolean", "undefined"].includes(typeof value);

function singleton(Ctor) {
  const instances = new Map();
  const keyOf = (args) => {
    for (const arg of args) {
      if (!isPrimitive(arg)) {
        throw new TypeError("di-singleton: only primitive arguments can form a singleton key");
      }
    }
    return args.map(String).join("\u0000");
  };
  // A plain function, not an arrow: backtest-kit also calls it with `new`, and a
  // constructor call that returns an object yields that object.
  function factory(...args) {
    const key = keyOf(args);
    if (!instances.has(key)) {
      instances.set(key, new Ctor(...args));
    }
    return instances.get(key);
  }
  factory.clear = (...args) => {
    if (args.length === 0) {
      instances.clear();
    } else {
      instances.delete(keyOf(args));
    }
  };
  return factory;
}

module.exports.singleton = singleton;
