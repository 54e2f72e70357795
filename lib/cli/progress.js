"use strict";
// Progress of a long command on stderr: a bar with rate and ETA on a terminal, plain lines
// (one a second) otherwise.

function progress(label, total) {
  const started = Date.now();
  if (process.stderr.isTTY) {
    const cliProgress = require("cli-progress");
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} docs | {rate}/s | ETA {eta_formatted}`, stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { rate: 0 });
    return {
      update: (done) => bar.update(done, { rate: Math.round(done / Math.max(0.001, (Date.now() - started) / 1000)) }),
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  const line = (done) => {
    const seconds = (Date.now() - started) / 1000;
    const rate = done / Math.max(0.001, seconds);
    const eta = rate > 0 ? Math.round((total - done) / rate) : 0;
    process.stderr.write(`${label}: ${done}/${total} documents, ${Math.round(rate)}/s, ETA ${eta} s\n`);
  };
  return {
    update: (done) => {
      if (Date.now() - last >= 1000 || done === total) {
        last = Date.now();
        line(done);
      }
    },
    stop: () => {},
  };
}

module.exports = { progress };
