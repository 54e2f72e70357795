"use strict";
// Pack the npm tarballs a release publishes, into a folder (default: ./pack):
// - the main package, whose package.json gains optionalDependencies on every platform package
//   (napi-rs's layout; they are not in the repo's own package.json because npm ci rejects a
//   lock file naming unpublished packages);
// - one platform package for each native binary present (backtest-kit-rs.<platform>.node in the
//   repository root, or in artifacts/ as the release workflow downloads them).
//   node scripts/pack.cjs [outDir]
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const root = path.join(__dirname, "..");
const outDir = path.resolve(process.argv[2] ?? path.join(root, "pack"));
const main = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
const binaryName = main.napi.binaryName;
const npmPack = (dir) =>
  execFileSync("npm", ["pack", "--ignore-scripts", "--pack-destination", outDir, "--json"], { cwd: dir, encoding: "utf8" });

function stage(files, from, manifest) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bkrs-pack-"));
  // Relative paths are kept (bin/backtest-kit-rs.cjs requires ../index.js); a folder is copied whole.
  for (const file of files) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.cpSync(path.join(from, file), path.join(dir, file), { recursive: true });
  }
  fs.writeFileSync(path.join(dir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  return dir;
}

fs.mkdirSync(outDir, { recursive: true });
const packed = [];
const platforms = fs.readdirSync(path.join(root, "npm")).filter((d) => fs.existsSync(path.join(root, "npm", d, "package.json")));

const optionalDependencies = {};
for (const platform of platforms) {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, "npm", platform, "package.json"), "utf8"));
  optionalDependencies[manifest.name] = main.version;
  const binary = `${binaryName}.${platform}.node`;
  const source = [path.join(root, binary), path.join(root, "artifacts", binary)].find((f) => fs.existsSync(f));
  if (!source) continue;
  const dir = stage(["README.md"], path.join(root, "npm", platform), manifest);
  fs.copyFileSync(source, path.join(dir, binary));
  packed.push(JSON.parse(npmPack(dir))[0].filename);
}

const mainManifest = { ...main, optionalDependencies };
delete mainManifest.devDependencies;
delete mainManifest.overrides;
delete mainManifest.allowScripts;
// Consumers get prebuilt binaries; building from source is for a checkout of this repository.
mainManifest.scripts = {};
const files = main.files.filter((f) => !f.includes("*"));
const mainDir = stage([...files, "README.md", "LICENSE"], root, mainManifest);
packed.unshift(JSON.parse(npmPack(mainDir))[0].filename);

console.log(packed.map((f) => path.join(outDir, f)).join("\n"));
