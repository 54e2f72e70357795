// Compiled with `tsc --noEmit` by types.spec.ts: our classes must satisfy backtest-kit's types.
import {
  PersistBase,
  PersistLogAdapter,
  PersistMeasureAdapter,
  PersistStorageAdapter,
  PersistPartialAdapter,
  PersistRiskAdapter,
  PersistScheduleAdapter,
  PersistSignalAdapter,
  type IPersistBase,
  type TPersistBaseCtor,
} from "backtest-kit";
import {
  createMongoPersist,
  createPersist,
  createPostgresPersist,
  createRedisPersist,
  createS3Persist,
  createSqlitePersist,
  listBackends,
  PersistError,
  RustFilePersist,
  RustMongoPersist,
  RustPostgresPersist,
  RustRedisPersist,
  RustS3Persist,
  RustSqlitePersist,
  setLogger,
  type BackendClass,
  useDefaultPersist,
  usePersist,
  type PersistErrorCode,
} from "backtest-kit-rs";

const Ctor: TPersistBaseCtor = RustFilePersist;
const Typed: TPersistBaseCtor<string, { price: number } | null> = RustFilePersist;
const asBase: IPersistBase = new RustFilePersist("signal", "./dump/data/signal/");
const viaReflect = Reflect.construct(Ctor, ["risk", "./dump/data/risk/"]) as IPersistBase;

class Audited extends RustFilePersist {
  override async writeValue(id: string | number, value: unknown): Promise<void> {
    await super.writeValue(id, value);
  }
}
const Sub: TPersistBaseCtor = Audited;
const Sqlite: TPersistBaseCtor = RustSqlitePersist;
const SignalsDb: TPersistBaseCtor = createSqlitePersist({ path: "./state/signals.sqlite", synchronous: "NORMAL" });
const stats: number = RustSqlitePersist.stats().commits;
const closing: Promise<void> = createSqlitePersist().close();
const RedisCtor: TPersistBaseCtor = RustRedisPersist;
const Dashboards: TPersistBaseCtor = createRedisPersist({ url: "rediss://:pw@cache:6380/2", prefix: "bot", tls: { ca: "PEM" } });
const Sentinels: TPersistBaseCtor = createRedisPersist({ sentinel: { nodes: ["redis://s1:26379"], masterName: "mymaster", password: "pw" }, replicas: 1 });
const PostgresCtor: TPersistBaseCtor = RustPostgresPersist;
const Trading: TPersistBaseCtor = createPostgresPersist({ url: "postgres://bot:pw@db/trading?sslmode=verify-full", table: "bot_a", tls: { ca: "PEM" } });
const sslmode: string = RustPostgresPersist.options.sslmode;
const MongoCtor: TPersistBaseCtor = RustMongoPersist;
const Positions: TPersistBaseCtor = createMongoPersist({ url: "mongodb://db/trading", collection: "bot_a" });
const collection: string = RustMongoPersist.options.collection;
const S3Ctor: TPersistBaseCtor = RustS3Persist;
const Archive: TPersistBaseCtor = createS3Persist("s3://bucket/bot-a?region=eu-west-1");
const bucket: string | null = RustS3Persist.options.bucket;
const sqlitePath: string = RustSqlitePersist.database.path;
const encrypted: boolean = RustFilePersist.options.encryption !== false;
const FromUrlClass: BackendClass<object> = createPersist("sqlite:./state.sqlite");
// One class type for every backend; instances are typed by their entity.
const typedStore: RustFilePersist<{ price: number }> = new RustFilePersist<{ price: number }>("signal");
const price: Promise<{ price: number }> = typedStore.readValue("BTCUSDT");
// @ts-expect-error an option a backend does not resolve is not there
void RustRedisPersist.options.table;

async function use(store: IPersistBase<{ price: number } | null>): Promise<number> {
  await store.waitForInit(true);
  await store.writeValue("BTCUSDT", { price: 1 });
  const value = await store.readValue("BTCUSDT");
  for await (const key of store.keys()) void key;
  return value?.price ?? 0;
}

function codeOf(err: unknown): PersistErrorCode | undefined {
  return err instanceof PersistError ? err.code : undefined;
}

import * as kit from "backtest-kit";
const registered: string[] = usePersist(kit, RustSqlitePersist, { domains: ["signal", "risk"] });
usePersist(kit, { default: RustSqlitePersist, candle: RustFilePersist, log: null });
usePersist(kit, PersistBase);
useDefaultPersist(kit, ["signal"]);
// @ts-expect-error a misspelt domain does not compile
usePersist(kit, RustSqlitePersist, { domains: ["signall"] });
// @ts-expect-error nor does one in durability
usePersist(kit, RustSqlitePersist, { durability: { candel: "durable" } });

// The package's one line: each adapter takes any of our classes or factory results itself.
PersistSignalAdapter.usePersistSignalAdapter(RustFilePersist);
PersistRiskAdapter.usePersistRiskAdapter(RustSqlitePersist);
PersistStorageAdapter.usePersistStorageAdapter(createSqlitePersist({ path: "./state/storage.sqlite" }));
PersistLogAdapter.usePersistLogAdapter(RustRedisPersist);
PersistMeasureAdapter.usePersistMeasureAdapter(createPostgresPersist({ table: "bot_a" }));
PersistScheduleAdapter.usePersistScheduleAdapter(Audited);
const FromUrl: TPersistBaseCtor = createPersist("redis://cache:6379/2?prefix=bot-a");
const RedisFromUrl: TPersistBaseCtor = createRedisPersist("redis://cache:6379/2?prefix=bot-a");
void [FromUrl, RedisFromUrl];

setLogger({ warn: () => undefined });
void [registered, Ctor, Typed, asBase, viaReflect, Sub, Sqlite, SignalsDb, stats, closing, RedisCtor, Dashboards, Sentinels, PostgresCtor, Trading, sslmode, use, codeOf, PersistBase];
void [PersistSignalAdapter, PersistRiskAdapter, PersistScheduleAdapter, PersistPartialAdapter];

// The registry's list, typed.
const backends: Array<{ name: string; schemes: string[]; className: string }> = listBackends();
void backends;
