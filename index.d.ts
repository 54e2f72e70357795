// Public types of backtest-kit-rs. Structural, so backtest-kit stays an optional peer: the
// classes are assignable to its `TPersistBaseCtor` and their instances to `IPersistBase`.

export type EntityId = string | number;

/** Every error the backends raise carries one of these in `code` (see the README). */
export type PersistErrorCode =
  | "PERSIST_NOT_FOUND"
  | "PERSIST_INVALID_ID"
  | "PERSIST_INVALID_NAME"
  | "PERSIST_INVALID_VALUE"
  | "PERSIST_CORRUPT"
  | "PERSIST_SCHEMA"
  | "PERSIST_UNAVAILABLE"
  | "PERSIST_AUTH"
  | "PERSIST_NOT_REPLICATED"
  | "PERSIST_INVALID_CONFIG"
  | "PERSIST_DECRYPT"
  | "PERSIST_IO";

/**
 * Encryption at rest, for every backend (XChaCha20-Poly1305, each document bound to its
 * namespace, entity and id). Keys are 32 random bytes, base64 (`openssl rand -base64 32`); the
 * first encrypts, every one decrypts. Default: env `BACKTEST_KIT_RS_KEY` (comma-separated keys),
 * else off. `false` turns it off whatever the environment says.
 */
export type EncryptionOption =
  | false
  | {
      key?: string;
      keys?: string[];
      /** A file with one base64 key per line (`#` comments allowed), the first encrypting. */
      keyFile?: string;
    };

/** `encryption` as the classes' `options` show it: the key ids, never the keys. */
export type EncryptionDescription = false | { keyIds: string[] };

export declare class PersistError extends Error {
  readonly code: PersistErrorCode;
  /** The operating system's error number, where there is one. */
  readonly errno?: number;
  /** The file or database concerned, where there is one. */
  readonly path?: string;
  constructor(code: PersistErrorCode, message: string, options?: { cause?: unknown });
}

export interface PersistLogger {
  warn(message: string): void;
}

/** Where init reports removed stale tmp files and invalid documents moved aside; `console.warn` by default. */
export declare function setLogger(logger: PersistLogger): void;

/**
 * Bound the JSON text (in characters) that writes have handed to the native side and not yet
 * settled, per process (default 1 Gi). Past it, further requests wait in order in the JS heap,
 * holding their text once, instead of piling up natively. Returns the previous bound.
 * `PERSIST_INVALID_CONFIG` unless a positive whole number.
 */
export declare function setMaxBytesInFlight(bytes: number): number;

/** Diagnostics: JSON text handed to the native side and not settled, and requests held back. */
export declare function inFlight(): { bytes: number; held: number };

/** The `IPersistBase` contract plus the seed-era extras, shared by every backend class. */
declare abstract class NativePersist<Entity = any> {
  readonly entityName: string;
  readonly baseDir: string;
  /** First call prepares and self-heals storage; later calls are free; a failed init is retried. */
  waitForInit(initial: boolean): Promise<void>;
  /** Rejects with `PERSIST_NOT_FOUND` ("Entity {entityName}:{id} not found") when missing. */
  readValue(entityId: EntityId): Promise<Entity>;
  hasValue(entityId: EntityId): Promise<boolean>;
  /** Resolves once the value is durable and a following read returns it. */
  writeValue(entityId: EntityId, entity: Entity): Promise<void>;
  /** Ids as strings, in PersistBase's order (numeric-aware, case-insensitive). */
  keys(): AsyncGenerator<string, void, unknown>;
  removeValue(entityId: EntityId): Promise<void>;
  removeAll(): Promise<void>;
  values(): AsyncGenerator<Entity, void, unknown>;
  filter(predicate: (value: Entity) => boolean | Promise<boolean>): AsyncGenerator<Entity, void, unknown>;
  take(total: number, predicate?: (value: Entity) => boolean | Promise<boolean>): AsyncGenerator<Entity, void, unknown>;
  [Symbol.asyncIterator](): AsyncGenerator<Entity, void, unknown>;

  // The domain methods of backtest-kit 8.4+'s instances, so that every class can be given to a
  // PersistXAdapter.usePersistXAdapter(...) itself. An object the framework's adapter makes answers
  // them through the framework's own PersistXInstance over this class (the same storage as
  // usePersist); on a storage made with (entityName, baseDir) they reject with PERSIST_INVALID_CONFIG.
  readSignalData(...args: any[]): Promise<any>;
  writeSignalData(...args: any[]): Promise<void>;
  readPositionData(...args: any[]): Promise<any>;
  writePositionData(...args: any[]): Promise<void>;
  readScheduleData(...args: any[]): Promise<any>;
  writeScheduleData(...args: any[]): Promise<void>;
  readStrategyData(...args: any[]): Promise<any>;
  writeStrategyData(...args: any[]): Promise<void>;
  readPartialData(...args: any[]): Promise<any>;
  writePartialData(...args: any[]): Promise<void>;
  readBreakevenData(...args: any[]): Promise<any>;
  writeBreakevenData(...args: any[]): Promise<void>;
  readCandlesData(...args: any[]): Promise<any>;
  writeCandlesData(...args: any[]): Promise<void>;
  readStorageData(...args: any[]): Promise<any>;
  writeStorageData(...args: any[]): Promise<void>;
  readNotificationData(...args: any[]): Promise<any>;
  writeNotificationData(...args: any[]): Promise<void>;
  readLogData(...args: any[]): Promise<any>;
  writeLogData(...args: any[]): Promise<void>;
  readMeasureData(...args: any[]): Promise<any>;
  writeMeasureData(...args: any[]): Promise<void>;
  removeMeasureData(...args: any[]): Promise<void>;
  listMeasureData(...args: any[]): AsyncGenerator<any, void, unknown>;
  readIntervalData(...args: any[]): Promise<any>;
  writeIntervalData(...args: any[]): Promise<void>;
  removeIntervalData(...args: any[]): Promise<void>;
  listIntervalData(...args: any[]): AsyncGenerator<any, void, unknown>;
  readMemoryData(...args: any[]): Promise<any>;
  hasMemoryData(...args: any[]): Promise<boolean>;
  writeMemoryData(...args: any[]): Promise<void>;
  removeMemoryData(...args: any[]): Promise<void>;
  listMemoryData(...args: any[]): AsyncGenerator<any, void, unknown>;
  readRecentData(...args: any[]): Promise<any>;
  writeRecentData(...args: any[]): Promise<void>;
  readStateData(...args: any[]): Promise<any>;
  writeStateData(...args: any[]): Promise<void>;
  readSessionData(...args: any[]): Promise<any>;
  writeSessionData(...args: any[]): Promise<void>;
  dispose(): void;
}

export interface StoreStats {
  /** Documents written (created or changed). */
  writes: number;
  /** Commits that wrote them: SQLite and PostgreSQL transactions, file-backend sync groups, Redis write round trips, MongoDB update commands, S3 requests. */
  commits: number;
}

/**
 * A backend's storage class. `new C(entityName, baseDir)` is a storage (backtest-kit's
 * `TPersistBaseCtor`); made by a backtest-kit 8.4+ adapter with its domain's own arguments, it is a
 * domain instance. `Resolved`: the backend's options as `options` shows them.
 */
export interface BackendClass<Resolved> {
  /** `baseDir` defaults to `path.join(process.cwd(), "logs/data")`, as for PersistBase. */
  new <Entity = any>(entityName: string, baseDir?: string): NativePersist<Entity>;
  /** What a backtest-kit 8.4+ adapter passes (its domain's own arguments). */
  new <Entity = any>(...frameworkArguments: unknown[]): NativePersist<Entity>;
  readonly prototype: NativePersist;
  /** The options instances made now would use, defaults resolved (credentials redacted). */
  readonly options: Resolved & { encryption: EncryptionDescription };
  /**
   * Counters of the storage these options name: `commits` are SQLite transactions, file sync
   * groups, Redis write round trips, PostgreSQL transactions, MongoDB write commands, S3 requests.
   */
  stats(): StoreStats;
  /** Finish queued writes and release the shared database or connection; using the class again reopens it. */
  close(): Promise<void>;
}

/** `RustFilePersist.options` (the file backend has no options but `encryption`). */
export type FileResolved = {};

/** Atomic, durable JSON files in backtest-kit's own layout: `{baseDir}/{entityName}/{id}.json`. */
export declare const RustFilePersist: BackendClass<FileResolved>;
export type RustFilePersist<Entity = any> = NativePersist<Entity>;

export interface FileOptions {
  /** See {@link EncryptionOption}. Encrypted files are no longer readable by backtest-kit's own PersistBase. */
  encryption?: EncryptionOption;
}

/** A RustFilePersist class with options (encryption). */
export declare function createFilePersist(options?: FileOptions): typeof RustFilePersist;

export interface SqliteOptions {
  /** See {@link EncryptionOption}. */
  encryption?: EncryptionOption;
  /** Database file; default `BACKTEST_KIT_RS_SQLITE_PATH`, else `./dump/backtest-kit.sqlite` (resolved against the cwd). */
  path?: string;
  /** `"FULL"` (default, or `BACKTEST_KIT_RS_SQLITE_SYNCHRONOUS`): a resolved write survives power loss. `"NORMAL"`: survives a process crash. */
  synchronous?: "FULL" | "NORMAL";
  /** `true` (default): readValue/hasValue run on the calling thread, microseconds from SQLite's
   * page cache and never waiting for writers (WAL), as better-sqlite3 does; so do cache-domain
   * writes (no sync) when nothing is queued for the writer and the write lock is free at once.
   * `false`: every operation on a worker thread, for databases too large for the cache on slow
   * disks. */
  syncReads?: boolean;
}

/** `RustSqlitePersist.options`. */
export interface SqliteResolved {
  path: string;
  synchronous: "FULL" | "NORMAL";
  syncReads: boolean;
}

/** Every entity in one embedded SQLite database shared by all instances of the class. */
export declare const RustSqlitePersist: BackendClass<SqliteResolved> & { /** The same as `options`. */ readonly database: SqliteResolved };
export type RustSqlitePersist<Entity = any> = NativePersist<Entity>;

/** A RustSqlitePersist class bound to explicit options (e.g. one database per domain). */
export declare function createSqlitePersist(options?: SqliteOptions | StoreUrl): typeof RustSqlitePersist;

export interface RedisOptions {
  /** See {@link EncryptionOption}. */
  encryption?: EncryptionOption;
  /** `redis://` or `rediss://`, with optional `user:password@` and `/db`. Default: env
   * `BACKTEST_KIT_RS_REDIS_URL`, then `REDIS_URL`, then `redis://127.0.0.1:6379`. */
  url?: string;
  /** Seed nodes of a Redis Cluster (the rest is discovered; MOVED/ASK are followed). Not with
   * `url`. Default when neither is given: env `BACKTEST_KIT_RS_REDIS_CLUSTER` (comma-separated). */
  cluster?: string[];
  /** The primary that Redis Sentinels monitor as `masterName`, found through them and found again
   * after a failover. Not with `url` or `cluster`. */
  sentinel?: RedisSentinelOptions;
  /** First part of every key; default `"backtest-kit"`. On a cluster it may not hold `{` or `}`. */
  prefix?: string;
  /** Each write resolves only once this many replicas have it (`WAIT`); fewer in time rejects
   * with `PERSIST_NOT_REPLICATED` (the write may or may not survive a failover). Default 0. */
  replicas?: number;
  /** How long a write waits for its replicas; default 1000. */
  replicasTimeoutMs?: number;
  /** Limit for establishing the connection; default 5000. */
  connectTimeoutMs?: number;
  /** Limit for each command; default 5000. */
  commandTimeoutMs?: number;
  /** TLS settings for `rediss://`: `ca`, a PEM certificate of a private CA to trust. */
  tls?: { ca?: string | Buffer };
}

export interface RedisSentinelOptions {
  /** The sentinels' `redis://` (or all `rediss://`) URLs, with the sentinels' own credentials if
   * they need any (the same for every node). With `rediss://` the primary is reached over TLS
   * too, trusting `tls.ca`. */
  nodes: string[];
  /** The name the sentinels monitor (`sentinel monitor <masterName> …`). */
  masterName: string;
  /** The primary's ACL user and password, and database (default 0). */
  username?: string;
  password?: string;
  db?: number;
}

/** `RustRedisPersist.options`. */
export interface RedisResolved {
  url: string;
  cluster?: string[];
  sentinel?: { nodes: string[]; masterName: string; credentials: boolean; db: number };
  prefix: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  replicas?: number;
  replicasTimeoutMs?: number;
  tls: { ca: boolean };
}

/** Every entity in Redis (one hash per entity) over one shared, self-healing connection. */
export declare const RustRedisPersist: BackendClass<RedisResolved>;
export type RustRedisPersist<Entity = any> = NativePersist<Entity>;

/** A RustRedisPersist class bound to explicit options (another server, database or prefix). */
export declare function createRedisPersist(options?: RedisOptions | StoreUrl): typeof RustRedisPersist;

export interface PostgresOptions {
  /** See {@link EncryptionOption}. */
  encryption?: EncryptionOption;
  /** `postgres://user:password@host:port/db?sslmode=…` (`disable`, `prefer` (default), `require`,
   * `verify-ca`, `verify-full`). Default: env `BACKTEST_KIT_RS_POSTGRES_URL`, then `DATABASE_URL`,
   * then `postgres://postgres@127.0.0.1:5432/postgres`. */
  url?: string;
  /** Schema of the tables; default `"public"` (created when missing). */
  schema?: string;
  /** Name of the table (also `{table}_quarantine` and `{table}_meta`); default `"backtest_kit"`. */
  table?: string;
  /** Limit for establishing a connection; default 5000. */
  connectTimeoutMs?: number;
  /** Limit for each statement or group commit; default 5000. */
  commandTimeoutMs?: number;
  /** `ca`: a PEM certificate of a private CA to trust (the system's roots otherwise). */
  tls?: { ca?: string | Buffer };
}

/** `RustPostgresPersist.options`. */
export interface PostgresResolved {
  url: string;
  schema: string;
  table: string;
  sslmode: "disable" | "prefer" | "require" | "verify-ca" | "verify-full";
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  tls: { ca: boolean };
}

/** Every entity in one PostgreSQL table, `(namespace, entity, id) → JSON text`. */
export declare const RustPostgresPersist: BackendClass<PostgresResolved>;
export type RustPostgresPersist<Entity = any> = NativePersist<Entity>;

/** A RustPostgresPersist class bound to explicit options (another database, schema or table). */
export declare function createPostgresPersist(options?: PostgresOptions | StoreUrl): typeof RustPostgresPersist;

export interface MongoOptions {
  /** See {@link EncryptionOption}. */
  encryption?: EncryptionOption;
  /** `mongodb://user:password@host:port/db?…` or `mongodb+srv://…`; TLS (`tls=true&tlsCAFile=…`),
   * write concern (`w=majority`, `journal=true`) and pool settings go in its parameters. Default:
   * env `BACKTEST_KIT_RS_MONGO_URL`, then `MONGODB_URI`, then `mongodb://127.0.0.1:27017`. */
  url?: string;
  /** Default: the URL's database, else `"backtest_kit"`. */
  database?: string;
  /** The collection of every entity (and `{collection}_quarantine`); default `"backtest_kit"`. */
  collection?: string;
  /** Limit for reaching a server (connection and server selection); default 5000. */
  connectTimeoutMs?: number;
  /** Limit for each operation, added to the connect limit; default 5000. */
  commandTimeoutMs?: number;
}

/** `RustMongoPersist.options`. */
export interface MongoResolved {
  url: string;
  database: string;
  collection: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

/** Every entity in one MongoDB collection: `{ _id: '["namespace","entity","id"]', v: "<JSON text>" }`. */
export declare const RustMongoPersist: BackendClass<MongoResolved>;
export type RustMongoPersist<Entity = any> = NativePersist<Entity>;

/** A RustMongoPersist class bound to explicit options (another server, database or collection). */
export declare function createMongoPersist(options?: MongoOptions | StoreUrl): typeof RustMongoPersist;

export interface S3Options {
  /** See {@link EncryptionOption}. */
  encryption?: EncryptionOption;
  /** `s3://bucket/prefix?region=…&endpoint=…&pathStyle=true|false`; default env `BACKTEST_KIT_RS_S3_URL`.
   * The options below override its parts. */
  url?: string;
  bucket?: string;
  /** Key prefix under the bucket (`/`-separated); default none. */
  prefix?: string;
  /** Default: env `AWS_REGION`, then `AWS_DEFAULT_REGION`, then `"us-east-1"`. */
  region?: string;
  /** An S3-compatible server, `http(s)://host:port`; default env `AWS_ENDPOINT_URL_S3`, then
   * `AWS_ENDPOINT_URL`, else AWS. */
  endpoint?: string;
  /** Path-style requests (`endpoint/bucket/key`); default true. */
  pathStyle?: boolean;
  /** Static credentials; default env `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
   * `AWS_SESSION_TOKEN`. Never shown in errors, logs or `options`. */
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Limit for establishing a connection; default 5000. */
  connectTimeoutMs?: number;
  /** Limit for each request, retries included; default 5000. */
  commandTimeoutMs?: number;
}

/** `RustS3Persist.options`. */
export interface S3Resolved {
  /** null until a URL, option or BACKTEST_KIT_RS_S3_URL names one (making an instance then fails). */
  bucket: string | null;
  prefix: string;
  region: string;
  endpoint: string | null;
  pathStyle: boolean;
  credentials: "options" | "environment" | "default chain";
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

/** An S3 object per document, `{prefix}/{namespace}/{entityName}/{id}.json` holding the JSON text. */
export declare const RustS3Persist: BackendClass<S3Resolved>;
export type RustS3Persist<Entity = any> = NativePersist<Entity>;

/** A RustS3Persist class bound to explicit options (another bucket, prefix or server). */
export declare function createS3Persist(options?: S3Options | StoreUrl): typeof RustS3Persist;

/**
 * A store URL: `sqlite:PATH?synchronous=NORMAL`, `redis://…/0?prefix=bot-a`, `rediss://…`,
 * `postgres://…?table=bot_a&schema=…`, `mongodb://…?collection=bot_a`, `mongodb+srv://…`,
 * `s3://bucket/prefix?region=…&endpoint=…`, `file:`. The same syntax as the environment variables
 * and the `backtest-kit-rs` command; a parameter a backend does not know is refused.
 */
export type StoreUrl = string;

/** A storage class for a store URL, the backend picked from its scheme. */
export declare function createPersist(url: StoreUrl): BackendClass<object>;

/** A backend this build registers: its name, the URL schemes naming it, its exported class. */
export interface RegisteredBackend {
  name: string;
  schemes: string[];
  className: string;
}

/** Every backend this build registers, in the core's order (for tools and help texts). */
export declare function listBackends(): RegisteredBackend[];

/** backtest-kit's persistence domains: the 16 of 19.x and 20.x's "dictionary". A misspelt one does not compile. */
export type PersistDomain =
  | "signal"
  | "risk"
  | "schedule"
  | "strategy"
  | "partial"
  | "breakeven"
  | "candle"
  | "storage"
  | "notification"
  | "log"
  | "measure"
  | "interval"
  | "memory"
  | "recent"
  | "state"
  | "session"
  | "dictionary";

/**
 * A domain a newer backtest-kit exposes that this version does not name (usePersist registers it
 * and returns its name): the one explicit escape, `"ledger" as DiscoveredDomain`.
 */
export type DiscoveredDomain = string & { readonly __discoveredDomain: true };

export declare const DOMAINS: readonly PersistDomain[];

/** Any `TPersistBaseCtor`: ours or your own. */
export type PersistBackend = new (entityName: string, baseDir: string) => {
  waitForInit(initial: boolean): Promise<void>;
  readValue(entityId: EntityId): Promise<any>;
  hasValue(entityId: EntityId): Promise<boolean>;
  writeValue(entityId: EntityId, entity: any): Promise<void>;
  keys(): AsyncGenerator<EntityId>;
};

/** `default` covers every domain not named; `null` leaves a domain as it is. */
export type PersistBackendMap = Partial<Record<PersistDomain | DiscoveredDomain | "default", PersistBackend | null>>;

export interface UsePersistOptions {
  /** Only these domains (with a single backend class). */
  domains?: readonly (PersistDomain | DiscoveredDomain)[];
  /**
   * Per domain: `"durable"` (synced to disk before the promise resolves; the default for state
   * domains) or `"atomic"` (never torn, may be lost on power loss; the default for the caches
   * candle, measure and interval).
   */
  durability?: Partial<Record<PersistDomain | DiscoveredDomain, "durable" | "atomic">>;
  /** Closed candles kept in memory by our classes, process-wide; default 100,000, 0 turns it off. */
  candleCache?: number;
}

/**
 * Register storage for backtest-kit 8.4+'s per-domain adapters (every domain the kit exposes by
 * default). Pass the backtest-kit module you import, so the adapters configured are the ones your
 * code uses. Returns the domains registered.
 */
export declare function usePersist(
  kit: object,
  backend: PersistBackend | PersistBackendMap,
  options?: UsePersistOptions,
): (PersistDomain | DiscoveredDomain)[];

/** Back to backtest-kit's own JSON files for all domains, or for `domains`. */
export declare function useDefaultPersist(kit: object, domains?: readonly PersistDomain[]): (PersistDomain | DiscoveredDomain)[];
