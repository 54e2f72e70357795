// Typed view of dev/redis-server.cjs, shared with the benchmark.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const shared = require("../dev/redis-server.cjs");

export interface RedisServer {
  port: number;
  /** `redis://127.0.0.1:{port}` (or `rediss://` with TLS), without credentials. */
  url: string;
  stop(): Promise<void>;
  /** Start again on the same port with the same arguments (an empty dataset). */
  start(): Promise<void>;
}

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

export const freePort: () => Promise<number> = shared.freePort;
export const makeTlsFiles: (dir: string) => TlsFiles = shared.makeTlsFiles;
export const startRedisServer: (extraArgs?: string[], tls?: TlsFiles) => Promise<RedisServer> = shared.startRedisServer;
