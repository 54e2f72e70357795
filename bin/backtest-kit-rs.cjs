#!/usr/bin/env node
"use strict";
// backtest-kit-rs: inspect, verify, migrate, export, import and re-key the state a backtest-kit bot
// keeps in any backend. Arguments with Node's util.parseArgs; the stores, commands and progress
// are in lib/cli/.
const path = require("node:path");
const { parseArgs } = require("node:util");

const { UsageError, openStore } = require("../lib/cli/stores.js");
const { inspect, verify, migrate, exportStore, importStore, rekey } = require("../lib/cli/commands.js");

const HELP = `backtest-kit-rs — operate the state a backtest-kit bot keeps in backtest-kit-rs storage

Usage:
  backtest-kit-rs inspect STORE [--domain D] [--entity E] [--json]
  backtest-kit-rs verify  STORE [--json]
  backtest-kit-rs migrate --from STORE --to STORE [--domains d1,d2] [--dry-run]
  backtest-kit-rs export  STORE [--domains d1,d2] > backup.ndjson
  backtest-kit-rs import  STORE < backup.ndjson
  backtest-kit-rs rekey   STORE --key-file KEYS

STORE:
  file:./dump                        backtest-kit's own layout (the bot's ./dump directory)
  sqlite:./dump/backtest-kit.sqlite  RustSqlitePersist's database
  redis://… rediss://…               RustRedisPersist (prefix: ?prefix=… , default backtest-kit)
  postgres://… postgresql://…        RustPostgresPersist (?table=…&schema=… besides libpq's)
  mongodb://… mongodb+srv://…        RustMongoPersist (?collection=… besides the driver's)
  s3://bucket/prefix?…               RustS3Persist (AWS_* credentials)
  redis: postgres: mongodb: s3: sqlite:   the backend with the classes' environment defaults

Encryption: BACKTEST_KIT_RS_KEY applies as it does to the classes; per store, --key-file F
(--from-key-file, --to-key-file for migrate) or --plaintext (--from-plaintext, --to-plaintext).
For rekey, the key file's first key encrypts and every key in it decrypts.

Exit codes: 0 done; 1 verify found invalid or undecryptable documents, or a migration did not
verify; 2 usage; 3 a store failed (its error code is printed).`;

// ---------------------------------------------------------------------------------------------

function encryptionOf(flags, prefix) {
  if (flags[`${prefix}plaintext`]) return false;
  const file = flags[`${prefix}key-file`];
  return file ? { keyFile: path.resolve(file) } : undefined;
}

async function main(argv) {
  const { values: flags, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: "boolean", short: "h" },
      json: { type: "boolean" },
      domain: { type: "string" },
      domains: { type: "string" },
      entity: { type: "string" },
      from: { type: "string" },
      to: { type: "string" },
      "dry-run": { type: "boolean" },
      "key-file": { type: "string" },
      "from-key-file": { type: "string" },
      "to-key-file": { type: "string" },
      plaintext: { type: "boolean" },
      "from-plaintext": { type: "boolean" },
      "to-plaintext": { type: "boolean" },
    },
  });
  const [command, target, ...extra] = positionals;
  if (flags.help || !command) {
    process.stdout.write(`${HELP}\n`);
    return command || flags.help ? 0 : 2;
  }
  if (extra.length) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  const store = () => openStore(target, encryptionOf(flags, ""));
  switch (command) {
    case "inspect":
      return (await inspect(store(), flags)) ?? 0;
    case "verify":
      return verify(store(), flags);
    case "migrate":
      if (target) throw new UsageError("migrate takes --from STORE --to STORE");
      return migrate(openStore(flags.from, encryptionOf(flags, "from-")), openStore(flags.to, encryptionOf(flags, "to-")), flags);
    case "export":
      return exportStore(store(), flags);
    case "import":
      return importStore(store());
    case "rekey": {
      if (!flags["key-file"]) throw new UsageError("rekey needs --key-file with the new key first, then the old ones");
      const encryption = { keyFile: path.resolve(flags["key-file"]), acceptPlaintext: true };
      return rekey(openStore(target, encryption));
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    if (err instanceof UsageError || err?.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" || err?.code?.startsWith?.("ERR_PARSE_ARGS")) {
      process.stderr.write(`backtest-kit-rs: ${err.message}\nRun backtest-kit-rs --help for usage.\n`);
      process.exitCode = 2;
    } else if (err?.code === "PERSIST_INVALID_CONFIG") {
      // A STORE, a flag or an environment variable to fix: a usage error, in one line.
      process.stderr.write(`backtest-kit-rs: ${err.message.replace(/^invalid configuration: /, "")}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`backtest-kit-rs: ${err?.code ? `${err.code}: ` : ""}${err?.message ?? err}\n`);
      process.exitCode = 3;
    }
  },
);
