"use strict";
// Private S3 servers on free loopback ports, for the tests and the benchmark: s3s-fs (crates.io),
// an S3 server over a local directory that checks SigV4 signatures and supports ListObjectsV2
// and conditional PUT. dev/test-deps.cjs installs it into .test-deps/.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const { freePort } = require("./redis-server.cjs");
const { service } = require("./processes.cjs");
const { findBinary } = require("./test-deps.cjs");


/**
 * Start s3s-fs on a free loopback port over a fresh directory, with one access key. Returns
 * { port, endpoint, accessKeyId, secretAccessKey, root, bucket(name), stop(signal), start(),
 * destroy() }: bucket() creates a bucket (a directory); start() restarts with the same data.
 */
async function startS3() {
  const file = findBinary("s3s-fs", "BKRS_S3S_FS");
  const port = await freePort();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "bkrs-s3-"));
  const accessKeyId = "bkrs-test-access";
  const secretAccessKey = `bkrs-test-secret-${process.pid}`;
  const args = ["--host", "127.0.0.1", "--port", String(port), "--access-key", accessKeyId, "--secret-key", secretAccessKey, root];
  const server = service(file, args, port);
  await server.start();
  return {
    ...server,
    port,
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId,
    secretAccessKey,
    root,
    bucket: (name) => {
      fs.mkdirSync(path.join(root, name), { recursive: true });
      return name;
    },
    destroy: async () => {
      await server.stop("SIGKILL");
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

module.exports = { startS3 };
