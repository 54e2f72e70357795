"use strict";
// With our own classes, each domain method runs against a per-call view of the storage
// (`BatchView`): the framework's loops of hasValue/readValue/writeValue are answered from one
// native read made before the call (a candle window), one scan (keys() + readValue), and the
// writes are collected and sent as one native write after it.

const { encode, keyOrder, parseDoc, toKey } = require("../codec.js");
const { BATCH } = require("../persist.js");
const { cacheCandle, candleCacheEnabled } = require("./candle-cache.js");

/** Largest number of ids a fast instance remembers as stored (to answer hasValue without a request). */
const KNOWN_IDS_LIMIT = 10_000;

const STEP_MS = { "1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240, "6h": 360, "8h": 480, "1d": 1440 };

const HINTS = {
  candle: {
    readCandlesData(instance, [limit, since]) {
      const step = STEP_MS[instance.interval] * 60_000;
      if (!(step > 0) || !Number.isSafeInteger(limit) || limit <= 0 || !Number.isFinite(since)) return {};
      return { window: Array.from({ length: limit }, (_, i) => String(since + i * step)), cacheCandles: true };
    },
    // The framework writes a candle only if hasValue says it is absent: insert-only does that
    // natively, in one request, also against candles another process wrote meanwhile.
    writeCandlesData: () => ({ assumeAbsent: true, mode: "insert", cacheCandles: true }),
  },
  log: {
    writeLogData: () => ({ assumeAbsent: true, mode: "insert" }),
  },
};

/**
 * The storage as one call of a domain method sees it. Reads come from what this call fetched,
 * what the instance knows, or the store; writes are collected and flushed as one request.
 */
class BatchView {
  constructor(storage, known, hint, candleShelf) {
    this.storage = storage;
    this.entityName = storage.entityName;
    this.baseDir = storage.baseDir;
    /** Ids this instance has seen stored; no domain deletes documents, so they stay true. */
    this.known = known;
    this.hint = hint;
    /** This storage's shelf of the candle cache, or null outside candle methods. */
    this.candleShelf = candleShelf;
    /** id → JSON text written by this call, flushed after it. */
    this.pending = new Map();
    /** id → `{ value } | { failure } | null` fetched for this call. */
    this.fetched = new Map();
    this.scanned = null;
  }

  waitForInit(initial) {
    return this.storage.waitForInit(initial);
  }

  #key(entityId, op) {
    return toKey(this.entityName, entityId, op);
  }

  /** Fetch the hinted window in one request, serving cached candles without one. */
  async prefetch() {
    const ids = this.hint.window;
    if (!ids) return;
    const missing = [];
    for (const id of ids) {
      const cached = this.candleShelf?.get(id);
      if (cached) this.fetched.set(id, { value: { ...cached } });
      else missing.push(id);
    }
    if (missing.length === 0) return;
    const docs = await this.storage[BATCH].read(missing, true);
    docs.forEach((doc, i) => {
      const id = missing[i];
      if (doc === null) return this.fetched.set(id, null);
      try {
        const value = parseDoc(this.entityName, id, doc);
        this.learn(id);
        if (this.candleShelf && value && typeof value === "object") {
          cacheCandle(this.candleShelf, id, value);
          this.fetched.set(id, { value: { ...value } });
        } else this.fetched.set(id, { value });
      } catch (failure) {
        this.fetched.set(id, { failure });
      }
    });
  }

  learn(id) {
    if (this.candleShelf || this.known.has(id)) return; // candles: the candle cache knows
    this.known.add(id);
    if (this.known.size > KNOWN_IDS_LIMIT) this.known.delete(this.known.values().next().value);
  }

  async hasValue(entityId) {
    const key = this.#key(entityId, "has");
    if (this.pending.has(key)) return true;
    if (this.fetched.has(key)) return this.fetched.get(key) !== null;
    if (this.scanned) return this.scanned.has(key);
    if (this.known.has(key)) return true;
    if (this.candleShelf?.has(key)) return true;
    if (this.hint.assumeAbsent) return false;
    return this.storage.hasValue(key);
  }

  async readValue(entityId) {
    const key = this.#key(entityId, "read");
    if (this.pending.has(key)) return JSON.parse(this.pending.get(key));
    if (this.fetched.has(key)) {
      const doc = this.fetched.get(key);
      if (doc === null) return parseDoc(this.entityName, key, null);
      if (doc.failure) throw doc.failure;
      const value = doc.value;
      this.fetched.delete(key); // a second read gets a fresh copy from storage, as PersistBase would
      return value;
    }
    if (this.scanned?.has(key)) return parseDoc(this.entityName, key, this.scanned.get(key));
    const [doc] = await this.storage[BATCH].read([key], false);
    if (typeof doc === "string") this.learn(key);
    return parseDoc(this.entityName, key, doc);
  }

  async writeValue(entityId, value) {
    const key = this.#key(entityId, "write");
    this.pending.set(key, encode(this.entityName, key, value));
  }

  /** The entity's ids from one scan, whose texts then answer readValue without more requests. */
  async *keys() {
    if (!this.scanned) {
      const [ids, texts] = await this.storage[BATCH].scan();
      this.scanned = new Map();
      ids.forEach((id, i) => {
        this.scanned.set(id, texts[i]);
        this.learn(id);
      });
    }
    yield* [...this.scanned.keys()].sort(keyOrder);
  }

  /**
   * Send the collected writes as one request. The backend compares with what is stored (not
   * with what this process last saw, which another writer may have changed): documents already
   * holding their text are not written.
   */
  async flush() {
    if (this.pending.size === 0) return;
    const ids = [...this.pending.keys()];
    const texts = [...this.pending.values()];
    this.pending.clear();
    const written = await this.storage[BATCH].write(ids, texts, this.hint.mode ?? "changed");
    ids.forEach((id) => this.learn(id));
    // Candles this call stored are what a read would return; when some already existed (another
    // process wrote them), what is stored may differ, and the next read fetches it.
    if (this.candleShelf && candleCacheEnabled() && written === ids.length) {
      ids.forEach((id, i) => {
        const value = JSON.parse(texts[i]);
        if (value && typeof value === "object") cacheCandle(this.candleShelf, id, value);
      });
    }
  }
}

module.exports = { BatchView, HINTS };
