/**
 * Fidelity of the requests window under hammering: 600 requests per minute scaled down to
 * 600 per 6 s. Four child processes (four replicas) share Redis; the memory store gets the
 * same load from 16 loops in this process. Clients ignore retry-after and hammer for 9 s,
 * i.e. one and a half windows, so the window must both refuse and re-admit.
 *
 * Expected (what a perfect sliding log admits to burst clients): 600 at the start, 600 more
 * when the first ones leave the window → 1,200. Checked: total within ±1 % of 1,200, the first
 * window within ±1 % of 600, and no 6 s span anywhere holding more than 600 + 1 %.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Bucket } from '../src/limits/types.ts';
import { hammer, type HammerReport } from './helpers/limits-hammer-loop.ts';
import { limitStoreBackends, type StoreHandle } from './helpers/limits-stores.ts';

const backends = await limitStoreBackends({ file: 'fidelity' });
const LIMIT = 600;
const WINDOW_MS = 6_000;
const DURATION_MS = 9_000;
const PROCESSES = 4;
const LOOPS_PER_PROCESS = 4;
const TOLERANCE = 0.01;
const bucket: Bucket = { kind: 'requests', id: 'deployment:shared:rpm', limit: LIMIT, windowMs: WINDOW_MS };
const helperPath = fileURLToPath(new URL('./helpers/limits-hammer-process.ts', import.meta.url));

interface Child {
  readonly ready: Promise<void>;
  start(startAt: number): void;
  readonly report: Promise<HammerReport>;
}

function spawnChild(argument: object): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', helperPath, JSON.stringify(argument)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let output = '';
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    if (output.startsWith('ready\n')) markReady();
  });
  const report = new Promise<HammerReport>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`hammer process exited with ${code}`));
      resolve(JSON.parse(output.slice('ready\n'.length)) as HammerReport);
    });
  });
  return { ready, report, start: (startAt) => child.stdin.end(`${startAt}\n`) };
}

/** Largest number of admissions inside any span of `windowMs` (two pointers over sorted times). */
function maxInAnyWindow(times: readonly number[], windowMs: number): number {
  let best = 0;
  let start = 0;
  for (let end = 0; end < times.length; end += 1) {
    while ((times[end] as number) - (times[start] as number) >= windowMs) start += 1;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

function summarize({ reports, startAt }: { reports: readonly HammerReport[]; startAt: number }) {
  const times = reports.flatMap((report) => report.admittedAt).sort((a, b) => a - b);
  return {
    total: times.length,
    firstWindow: times.filter((time) => time < startAt + WINDOW_MS).length,
    maxInAnyWindow: maxInAnyWindow(times, WINDOW_MS),
    refused: reports.reduce((sum, report) => sum + report.refused, 0),
  };
}

for (const backend of backends) {
  describe(`requests window fidelity under hammering (${backend.name})`, { skip: backend.skip }, () => {
    let handle: StoreHandle | undefined;
    after(async () => handle?.cleanup());

    test(`${LIMIT} per ${WINDOW_MS / 1000} s stays within ±1 % with ${PROCESSES} replicas`, { timeout: 60_000 }, async () => {
      handle = await backend.open();
      const opened = handle;
      let reports: HammerReport[];
      let startAt: number;
      if (opened.redisPrefix !== null) {
        // Children boot through tsx at different speeds; all start hammering at the same instant.
        const argument = { prefix: opened.redisPrefix, bucket, durationMs: DURATION_MS, loops: LOOPS_PER_PROCESS };
        const children = Array.from({ length: PROCESSES }, () => spawnChild(argument));
        await Promise.all(children.map((child) => child.ready));
        startAt = Date.now() + 200;
        for (const child of children) child.start(startAt);
        reports = await Promise.all(children.map((child) => child.report));
      } else {
        startAt = Date.now() + 100;
        reports = [await hammer({ store: opened.store, bucket, startAt, durationMs: DURATION_MS, loops: PROCESSES * LOOPS_PER_PROCESS })];
      }
      const summary = summarize({ reports, startAt });
      console.log(`# fidelity (${backend.name}): ${JSON.stringify(summary)}`);
      const expectedTotal = LIMIT * 2;
      assert.ok(Math.abs(summary.total - expectedTotal) <= expectedTotal * TOLERANCE, `total ${summary.total} vs ${expectedTotal}`);
      assert.ok(Math.abs(summary.firstWindow - LIMIT) <= LIMIT * TOLERANCE, `first window ${summary.firstWindow}`);
      assert.ok(summary.maxInAnyWindow <= LIMIT * (1 + TOLERANCE), `max in a window ${summary.maxInAnyWindow}`);
      assert.ok(summary.refused > summary.total, 'the clients really pushed past the limit');
    });
  });
}
