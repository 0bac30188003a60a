// Preloaded into a benchmarked server (`node --import bench/servers/alloc-observer.mjs …`): V8's
// sampling heap profiler, keeping the samples of objects the garbage collector has already freed,
// so the profile counts what was allocated, not what is still alive. SIGUSR2 starts a profile;
// the next SIGUSR2 writes it to SEED_BENCH_ALLOC_OUT (written beside it, then renamed, so a reader
// never sees half a file). Plain JavaScript: it runs before bin/run-ts.mjs registers the
// TypeScript loader.
import { Session } from 'node:inspector';
import { renameSync, writeFileSync } from 'node:fs';

const output = process.env.SEED_BENCH_ALLOC_OUT;
if (!output) throw new Error('alloc-observer: SEED_BENCH_ALLOC_OUT is required');
/** Bytes between samples on average: small enough that 10 000 calls of ~50 KB give ~1M samples. */
const SAMPLING_INTERVAL = 512;

const session = new Session();
session.connect();
const post = (method, params) =>
  new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));

let sampling = false;
process.on('SIGUSR2', () => {
  const starting = !sampling;
  sampling = starting;
  const done = starting
    ? post('HeapProfiler.startSampling', {
        samplingInterval: SAMPLING_INTERVAL,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      })
    : post('HeapProfiler.stopSampling').then(({ profile }) => {
        writeFileSync(`${output}.partial`, JSON.stringify(profile));
        renameSync(`${output}.partial`, output);
      });
  done.catch((error) => process.stderr.write(`alloc-observer: ${error}\n`));
});
