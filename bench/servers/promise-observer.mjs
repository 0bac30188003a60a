// Preloaded into a benchmarked server (`node --import bench/servers/promise-observer.mjs …`):
// counts the promises the process creates (an async_hooks `init` of type PROMISE: every
// `new Promise`, every async function's call, every `then` and `await` that makes one). SIGUSR2
// writes the count so far to SEED_BENCH_PROMISES_OUT as JSON; with SEED_BENCH_PROMISE_SITES=1 it
// also notes where each promise was made between one SIGUSR2 and the next (the first JavaScript
// frames of its stack, in this process's files), which costs a stack trace per promise: the
// count stays exact, the speed does not. Plain JavaScript: it runs before bin/run-ts.mjs
// registers the TypeScript loader.
import { createHook } from 'node:async_hooks';
import { writeFileSync } from 'node:fs';

const output = process.env.SEED_BENCH_PROMISES_OUT;
if (!output) throw new Error('promise-observer: SEED_BENCH_PROMISES_OUT is required');
const withSites = process.env.SEED_BENCH_PROMISE_SITES === '1';
/** Frames of a creation stack kept to name its site. */
const SITE_FRAMES = 4;

let promises = 0;
let recordingSites = false;
const sites = new Map();

function siteOfNewPromise() {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  const kept = [];
  for (const frame of frames) {
    if (frame.includes('promise-observer.mjs') || frame.includes('node:internal/async_hooks')) continue;
    // Paths shortened to what follows the project's root, so sites read the same on any machine.
    kept.push(frame.trim().replace(/\(file:\/\/.*?\/(dist|src|node_modules)\//, '($1/').replace(/\(\/.*?\/(dist|src|node_modules)\//, '($1/'));
    if (kept.length === SITE_FRAMES) break;
  }
  return kept.join(' < ');
}

createHook({
  init(_id, type) {
    if (type !== 'PROMISE') return;
    promises += 1;
    if (recordingSites) {
      const site = siteOfNewPromise();
      sites.set(site, (sites.get(site) ?? 0) + 1);
    }
  },
}).enable();

if (withSites) Error.stackTraceLimit = 16;

process.on('SIGUSR2', () => {
  writeFileSync(output, JSON.stringify({ promises, sites: [...sites].sort((a, b) => b[1] - a[1]) }));
  sites.clear();
  recordingSites = withSites;
});
