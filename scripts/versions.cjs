"use strict";
// Keeps the versions of Cargo.toml, package.json and npm/*/package.json in step (the packed
// main package's optionalDependencies are derived from them by scripts/pack.cjs).
//   node scripts/versions.cjs          check: exit 1 and name every file that drifted
//   node scripts/versions.cjs --write  set them all to package.json's version (npm version runs this)
//   --root DIR                         another checkout (the tests use a copy)
const fs = require("node:fs");
const path = require("node:path");

const rootFlag = process.argv.indexOf("--root");
const root = rootFlag > 0 ? path.resolve(process.argv[rootFlag + 1]) : path.join(__dirname, "..");
const read = (file) => fs.readFileSync(path.join(root, file), "utf8");
const write = (file, text) => fs.writeFileSync(path.join(root, file), text);
const json = (file) => JSON.parse(read(file));

const main = json("package.json");
const version = main.version;
const cargoVersion = /^version = "([^"]+)"/m.exec(read("Cargo.toml"))?.[1];
const platformDirs = fs.readdirSync(path.join(root, "npm")).filter((d) => fs.existsSync(path.join(root, "npm", d, "package.json")));
const expectedPlatforms = (main.napi?.targets ?? []).length;

const drift = [];
if (cargoVersion !== version) drift.push(`Cargo.toml has ${cargoVersion}, package.json ${version}`);
if (platformDirs.length !== expectedPlatforms) drift.push(`npm/ has ${platformDirs.length} platform packages, napi.targets lists ${expectedPlatforms}`);
for (const dir of platformDirs) {
  const pkg = json(`npm/${dir}/package.json`);
  if (pkg.version !== version) drift.push(`npm/${dir} has ${pkg.version}, package.json ${version}`);
  // optionalDependencies are written into the packed package.json by scripts/pack.cjs (they
  // cannot sit in the repo's own: npm ci refuses a lock file with unpublished optional packages).
  if (main.optionalDependencies?.[pkg.name] !== undefined && main.optionalDependencies[pkg.name] !== version) {
    drift.push(`optionalDependencies["${pkg.name}"] is ${main.optionalDependencies[pkg.name]}, expected ${version}`);
  }
}

if (process.argv.includes("--write")) {
  write("Cargo.toml", read("Cargo.toml").replace(/^version = "[^"]+"/m, `version = "${version}"`));
  write("Cargo.lock", read("Cargo.lock").replace(/(name = "backtest-kit-rs"\nversion = )"[^"]+"/, `$1"${version}"`));
  for (const dir of platformDirs) {
    const file = `npm/${dir}/package.json`;
    const pkg = json(file);
    pkg.version = version;
    write(file, `${JSON.stringify(pkg, null, 2)}\n`);
  }
  write("package.json", `${JSON.stringify(main, null, 2)}\n`);
  console.log(`versions set to ${version}: Cargo.toml, package.json, ${platformDirs.map((d) => `npm/${d}`).join(", ")}`);
} else if (drift.length) {
  console.error(`versions drifted:\n- ${drift.join("\n- ")}\nrun: node scripts/versions.cjs --write`);
  process.exit(1);
} else {
  console.log(`versions in step: ${version} (Cargo.toml, package.json, ${platformDirs.length} platform packages)`);
}
