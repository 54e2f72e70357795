// Independent clients for the MongoDB and S3 test servers (the `mongodb` driver and the MinIO
// client from npm), to see and tamper with what our backends stored without going through them.
import fs from "node:fs";
import path from "node:path";

import * as Minio from "minio";
import { MongoClient } from "mongodb";
import { inject } from "vitest";

/** Options of createS3Persist for the shared test server and bucket, under `prefix`. */
export function s3Options(prefix: string) {
  const s3 = inject("s3");
  return { bucket: s3.bucket, prefix, endpoint: s3.endpoint, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
}

/** The environment a child process needs to reach the shared S3 server (AWS_* variables). */
export function s3Env(): Record<string, string> {
  const s3 = inject("s3");
  return {
    BACKTEST_KIT_RS_S3_URL: `s3://${s3.bucket}?endpoint=${encodeURIComponent(s3.endpoint)}`,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };
}

export function s3Client(): Minio.Client {
  const s3 = inject("s3");
  const url = new URL(s3.endpoint);
  return new Minio.Client({
    endPoint: url.hostname,
    port: Number(url.port),
    useSSL: false,
    accessKey: s3.accessKeyId,
    secretKey: s3.secretAccessKey,
    pathStyle: true,
    region: "us-east-1",
  });
}

/**
 * Every object under `prefix/` with its text, by key, read from the server's own directory (s3s-fs
 * keeps object `key` of bucket `b` at `{root}/b/key`; its metadata files live elsewhere).
 */
export async function s3Dump(prefix: string): Promise<Record<string, string>> {
  const s3 = inject("s3");
  const top = path.join(s3.root, s3.bucket);
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else out[path.relative(top, full).split(path.sep).join("/")] = fs.readFileSync(full, "utf8");
    }
  };
  walk(path.join(top, prefix));
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

export async function s3Get(client: Minio.Client, key: string): Promise<string | null> {
  try {
    const stream = await client.getObject(inject("s3").bucket, key);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  } catch (e: any) {
    if (e?.code === "NoSuchKey" || e?.code === "NotFound") return null;
    throw e;
  }
}

export async function s3Put(client: Minio.Client, key: string, text: string): Promise<void> {
  await client.putObject(inject("s3").bucket, key, Buffer.from(text));
}

/** Remove every object under `prefix/` (by their keys, as found in the server's directory). */
export async function s3RemoveAll(client: Minio.Client, prefix: string): Promise<void> {
  const keys = Object.keys(await s3Dump(prefix));
  for (const key of keys) await client.removeObject(inject("s3").bucket, key);
}

/** A connected client of the shared MongoDB-wire server. */
export async function mongoClient(url = inject("mongoUrl")): Promise<MongoClient> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000 });
  await client.connect();
  return client;
}

/** `_id` of a document as RustMongoPersist names it. */
export const mongoKey = (namespace: string, entity: string, id: string | number) => JSON.stringify([namespace, entity, String(id)]);
