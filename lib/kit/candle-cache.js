"use strict";
// The in-process cache of closed candles: they are never rewritten, so a hit needs no I/O. Only
// candles read from storage or stored by this process enter it (a miss is never cached), so
// candles another process adds are found by the next read. FIFO eviction at the bound; 0 turns it off.

/** Default size of the in-process cache of closed candles, in candles (about 20 MB). */
const DEFAULT_CANDLE_CACHE = 100_000;

// One shelf (id → candle) per storage identity, so a lookup hashes the short id, not the long
// identity; eviction follows one process-wide insertion queue of (shelf, id) pairs.
const candleShelves = new Map();
const evictionQueue = [];
let evictionHead = 0;
let cachedCandles = 0;
let candleCacheLimit = DEFAULT_CANDLE_CACHE;

function candleShelf(identity) {
  let shelf = candleShelves.get(identity);
  if (!shelf) candleShelves.set(identity, (shelf = new Map()));
  return shelf;
}

function cacheCandle(shelf, id, candle) {
  if (candleCacheLimit === 0) return;
  // Flat objects only: a shallow copy per hit is then a full copy.
  for (const field in candle) if (candle[field] !== null && typeof candle[field] === "object") return;
  const known = shelf.has(id);
  shelf.set(id, candle);
  if (known) return;
  evictionQueue.push(shelf, id);
  cachedCandles++;
  evictCandles();
}

function evictCandles() {
  while (cachedCandles > candleCacheLimit) {
    evictionQueue[evictionHead].delete(evictionQueue[evictionHead + 1]);
    evictionHead += 2;
    cachedCandles--;
  }
  // Drop the consumed head now and then, so the queue stays proportional to what is cached.
  if (evictionHead > 4096 && evictionHead * 2 > evictionQueue.length) {
    evictionQueue.splice(0, evictionHead);
    evictionHead = 0;
  }
}

// Hints: which ids a domain method will ask for, so they can be fetched in one request. A hint
// only decides what is fetched ahead; the framework's own loop decides what is used, so a wrong
// hint costs speed, never correctness.

/** Change the bound (0 turns the cache off); evicts at once down to it. */
function setCandleCacheLimit(limit) {
  candleCacheLimit = limit;
  evictCandles();
}

const candleCacheEnabled = () => candleCacheLimit > 0;

/** How many candles the in-process cache holds now (for tests and diagnostics). */
function candleCacheSize() {
  return cachedCandles;
}

module.exports = { DEFAULT_CANDLE_CACHE, candleShelf, cacheCandle, setCandleCacheLimit, candleCacheEnabled, candleCacheSize };
