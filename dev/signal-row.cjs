"use strict";
// A realistic backtest-kit ISignalRow (about 1.5 KB as JSON), shared by the tests and the benchmark.

/** Version `n` of the row: ids, prices and times vary with `n`. */
function signalRow(n) {
  return {
    id: `7f3c2a91-5d1e-4b8a-9c0f-${String(n).padStart(12, "0")}`,
    position: n % 2 ? "short" : "long",
    note: "breakout above the 4h range high with rising volume, confirmed on the 15m close",
    priceOpen: 42000.5 + n,
    priceTakeProfit: 43260.515 + n,
    priceStopLoss: 41370.49 + n,
    minuteEstimatedTime: 240,
    symbol: "BTCUSDT",
    exchangeName: "binance",
    strategyName: "breakout-4h",
    frameName: "",
    scheduledAt: 1764150000000 + n,
    pendingAt: 1764150060000 + n,
    timestamp: 1764150060000 + n,
    _isScheduled: false,
    cost: 100,
    leverage: 1,
    multiplier: 1,
    isolated: true,
    totalExecuted: 0,
    _peak: { price: 42110.25, timestamp: 1764150120000, pnlPercentage: 0.26, pnlCost: 0.26 },
    _fall: { price: 41990.75, timestamp: 1764150180000, pnlPercentage: -0.02, pnlCost: -0.02 },
    _entry: [{ price: 42000.5 + n, cost: 100, timestamp: 1764150060000 + n }],
    _partial: [
      { type: "profit", percent: 25, price: 42630.5, level: 1, cost: 25, timestamp: 1764150300000 },
      { type: "profit", percent: 25, price: 42945.25, level: 2, cost: 25, timestamp: 1764150900000 },
    ],
    _trailingPriceStopLoss: 41580.75,
    _trailingPriceTakeProfit: null,
    _breakeven: { reached: false, price: 42084.5 },
    riskName: "max-2-positions",
    comment: "opened by the 4h breakout rule; risk 1% of equity; TP at 3R, SL below the range",
    _commit: [
      { action: "partial-profit", percent: 25, price: 42630.5, timestamp: 1764150300000, reason: "first target reached" },
      { action: "trailing-stop", percent: 0.5, price: 41580.75, timestamp: 1764150600000, reason: "lock in breakeven" },
    ],
    updatedAt: 1764150900000 + n,
  };
}
module.exports = { signalRow };
