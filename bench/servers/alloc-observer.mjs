// Preloaded into a benchmarked server (`node --import bench/servers/alloc-observer.mjs …`): V8's
// sampling heap profiler. SIGUSR2 starts a profile; the next SIGUSR2 writes it to
// SEED_BENCH_ALLOC_OUT (written beside it, then renamed, so a reader never sees half a file).
// What a profile counts is read, when it starts, from SEED_BENCH_ALLOC_OUT.mode:
// - `allocated` (the default): the samples of objects the garbage collector has already freed
//   are kept, so the profile counts what was allocated, not what is still alive;
// - `survived`: samples of objects a scavenge freed are dropped, and a scavenge is forced just
//   before the profile is written (the server needs `--expose-gc`), so what is left no scavenge
//   freed: what was promoted to the old generation, or was still alive at the end.
// Plain JavaScript: it runs before bin/run-ts.mjs registers the TypeScript loader.
import { Session } from 'node:inspector';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const output = process.env.SEED_BENCH_ALLOC_OUT;
if (!output) throw new Error('alloc-observer: SEED_BENCH_ALLOC_OUT is required');
/** Bytes between samples on average: small enough that 10 000 calls of ~50 KB give ~1M samples. */
const SAMPLING_INTERVAL = 512;

const session = new Session();
session.connect();
const post = (method, params) =>
  new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));

function modeOfNextProfile() {
  let mode = 'allocated';
  try {
    mode = readFileSync(`${output}.mode`, 'utf8').trim();
  } catch {
    // No mode file: allocations.
  }
  if (mode !== 'allocated' && mode !== 'survived') throw new Error(`alloc-observer: unknown mode ${mode}`);
  if (mode === 'survived' && typeof globalThis.gc !== 'function') throw new Error('alloc-observer: the survived mode needs node --expose-gc');
  return mode;
}

/** The mode of the profile running, or null. */
let running = null;
process.on('SIGUSR2', () => {
  let done;
  if (running === null) {
    try {
      running = modeOfNextProfile();
    } catch (error) {
      process.stderr.write(`${error.message}\n`);
      return;
    }
    done = post('HeapProfiler.startSampling', {
      samplingInterval: SAMPLING_INTERVAL,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: running === 'allocated',
    });
  } else {
    // The young generation still holds the garbage of the last requests: collected now, its
    // samples leave the profile rather than count as survivors.
    if (running === 'survived') globalThis.gc({ type: 'minor', execution: 'sync' });
    running = null;
    done = post('HeapProfiler.stopSampling').then(({ profile }) => {
      writeFileSync(`${output}.partial`, JSON.stringify(profile));
      renameSync(`${output}.partial`, output);
    });
  }
  done.catch((error) => process.stderr.write(`alloc-observer: ${error}\n`));
});
