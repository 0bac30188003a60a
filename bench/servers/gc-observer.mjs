// Preloaded into a benchmarked server (`node --import bench/servers/gc-observer.mjs …`): counts
// its garbage-collection pauses. SIGWINCH starts a measurement (forgetting earlier pauses); the
// next SIGWINCH writes the pauses since then to SEED_BENCH_GC_OUT as JSON. Plain JavaScript: it
// runs before bin/run-ts.mjs registers the TypeScript loader.
import { writeFileSync } from 'node:fs';
import { PerformanceObserver, constants, performance } from 'node:perf_hooks';

const output = process.env.SEED_BENCH_GC_OUT;
if (!output) throw new Error('gc-observer: SEED_BENCH_GC_OUT is required');

const KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

let pauses = null;
let startedAt = 0;
new PerformanceObserver((list) => {
  if (pauses === null) return;
  for (const entry of list.getEntries()) pauses.push({ kind: KINDS[entry.detail?.kind] ?? 'other', ms: entry.duration });
}).observe({ entryTypes: ['gc'] });

process.on('SIGWINCH', () => {
  if (pauses === null) {
    pauses = [];
    startedAt = performance.now();
    return;
  }
  writeFileSync(output, JSON.stringify({ seconds: (performance.now() - startedAt) / 1000, pauses }));
  pauses = null;
});
