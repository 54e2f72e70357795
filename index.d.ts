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
  | "PERSIST_IO";

export declare class PersistError extends Error {
  readonly code: PersistErrorCode;
  constructor(code: PersistErrorCode, message: string, options?: { cause?: unknown });
}

export interface PersistLogger {
  warn(message: string): void;
}

/** Where init reports removed stale tmp files and invalid documents; `console.warn` by default. */
export declare function setLogger(logger: PersistLogger): void;

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
}

/** Atomic, durable JSON files in backtest-kit's own layout: `{baseDir}/{entityName}/{id}.json`. */
export declare class RustFilePersist<Entity = any> extends NativePersist<Entity> {
  /** `baseDir` defaults to `path.join(process.cwd(), "logs/data")`, as for PersistBase. */
  constructor(entityName: string, baseDir?: string);
}
