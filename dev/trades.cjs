"use strict";
// The closed trades of a backtest as the tests and the benchmark compare them across storages.
const crypto = require("node:crypto");

/** What identifies one closed trade in a `Backtest.run` result, or null for other results. */
function closedTrade(result) {
  if (result.action !== "closed") return null;
  return {
    position: result.signal.position,
    openTime: result.signal.pendingAt,
    closeTime: result.closeTimestamp,
    priceOpen: result.signal.originalPriceOpen ?? result.signal.priceOpen,
    closePrice: result.currentPrice,
    pnlPercentage: result.pnl.pnlPercentage,
    closeReason: result.closeReason,
  };
}

const tradesHash = (trades) => crypto.createHash("sha256").update(JSON.stringify(trades)).digest("hex");

module.exports = { closedTrade, tradesHash };
