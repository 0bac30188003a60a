/**
 * Load generators. Closed loop: autocannon (fixed concurrency, as fast as the target answers).
 * Open loop: a small undici client that sends at a fixed rate whatever the target does, times
 * each request from its *scheduled* start (so a stalled target cannot hide its queueing) and
 * records the time to the first body byte — the first SSE frame for streams.
 */
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { percentile } from './stats.ts';

export interface RequestShape {
  /** Base URL, e.g. `http://127.0.0.1:4000`. */
  origin: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface ClosedLoopResult {
  requestsPerSecond: number;
  completed: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  failures: number;
}

/**
 * Fixed concurrency for `durationSeconds`, or for `amount` requests when given. With `amount`,
 * requests/s is timed to the last response: autocannon notices the count is reached only at its
 * next once-a-second sample, and its own duration then counts that wait (10 000 requests in
 * 2.0x s read as 4 965–4 974 req/s whatever the server did).
 */
export async function closedLoop(input: {
  request: RequestShape;
  connections: number;
  durationSeconds?: number;
  amount?: number;
}): Promise<ClosedLoopResult> {
  const startedAt = performance.now();
  let lastResponseAt = startedAt;
  const result = await new Promise<autocannon.Result>((resolveRun, rejectRun) => {
    const instance = autocannon(
      {
        url: `${input.request.origin}${input.request.path}`,
        method: 'POST',
        headers: input.request.headers,
        body: input.request.body,
        connections: input.connections,
        pipelining: 1,
        timeout: 30,
        ...(input.amount !== undefined ? { amount: input.amount } : { duration: input.durationSeconds ?? 5 }),
      },
      (error, value) => (error ? rejectRun(error) : resolveRun(value)),
    );
    if (input.amount !== undefined) instance.on('response', () => (lastResponseAt = performance.now()));
  });
  const completed = result['2xx'];
  const seconds = input.amount !== undefined ? (lastResponseAt - startedAt) / 1_000 : result.duration;
  return {
    requestsPerSecond: seconds > 0 ? completed / seconds : 0,
    completed,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    failures: result.non2xx + result.errors,
  };
}

export interface OpenLoopResult {
  sent: number;
  completed: number;
  failures: number;
  /** Completed requests per second of wall time, from the first send to the last response. */
  achievedPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  firstByteP50Ms: number;
  firstByteP99Ms: number;
  /** p99 of (actual send − scheduled send): large values mean the client itself fell behind. */
  sendLagP99Ms: number;
  /** Every completed request, when asked for (`keepSamples`). */
  samples?: OpenLoopSample[];
  /** The load generator's own garbage collection while it sent and waited: its pauses count in every latency. */
  clientGc: ClientGc;
}

/** Garbage collection in the load generator's process during one open loop. */
export interface ClientGc {
  /** Mark-compact collections (V8's major GC), which stop the client's event loop for several ms. */
  majors: number;
  /** Every GC pause, summed (ms). */
  pauseMs: number;
  /** The longest pause (ms). */
  maxPauseMs: number;
}

/** "2 major GCs, 14.1 ms paused in all (longest 7.2)". */
export function clientGcText(gc: ClientGc): string {
  return `${gc.majors} major GC${gc.majors === 1 ? '' : 's'}, ${gc.pauseMs.toFixed(1)} ms paused in all (longest ${gc.maxPauseMs.toFixed(1)})`;
}

/** Sums GC entries (`PerformanceObserver` on `gc`) into a `ClientGc`. */
export function clientGcOf(entries: readonly PerformanceEntry[]): ClientGc {
  const gc: ClientGc = { majors: 0, pauseMs: 0, maxPauseMs: 0 };
  for (const entry of entries) {
    if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.majors += 1;
    gc.pauseMs += entry.duration;
    gc.maxPauseMs = Math.max(gc.maxPauseMs, entry.duration);
  }
  return gc;
}

/** One completed request of an open loop. */
export interface OpenLoopSample {
  /** Its place in the send order (0-based): what `headersFor` was given for it. */
  index: number;
  /** Its scheduled send time on the wall clock (ms since the epoch, sub-ms precision). */
  scheduledAt: number;
  /** Actual send − scheduled send. */
  sendLagMs: number;
  /** Last byte − scheduled send. */
  latencyMs: number;
}

let fullGc: (() => void) | undefined;

/**
 * A full garbage collection of the load generator's own heap, run before every open loop so
 * that a major GC the client owes from earlier phases does not fall in the loop: its pauses
 * count in every latency it measures (docs/benchmark-log.md, 2026-12-05 (13:27–)).
 */
export function collectClientGarbage(): void {
  if (fullGc === undefined) {
    setFlagsFromString('--expose-gc');
    fullGc = runInNewContext('gc') as () => void;
  }
  fullGc();
}

/** The connection pool an open loop sends through: up to 256 connections, each kept open for 30 s unless the server says less. */
export function openLoopPool(origin: string): Pool {
  return new Pool(origin, { connections: 256, keepAliveTimeout: 30_000 });
}

/** Sends `count` requests at `ratePerSecond`, then waits up to `drainMs` for the last answers. */
export async function openLoop(input: {
  request: RequestShape;
  ratePerSecond: number;
  count: number;
  drainMs?: number;
  /** Return every completed request's timing too (for lining them up with a server's pauses). */
  keepSamples?: boolean;
  /** Headers for the request with this index (0-based), over `request.headers`: to tag each request (bench/tail-trace.ts). */
  headersFor?: (index: number) => Readonly<Record<string, string>>;
  /** The caller's pool (`openLoopPool`), kept open after the loop so that its next loop reuses the connections; otherwise a fresh one, closed at the end. */
  pool?: Pool;
}): Promise<OpenLoopResult> {
  const { request } = input;
  const pool = input.pool ?? openLoopPool(request.origin);
  collectClientGarbage();
  const gcEntries: PerformanceEntry[] = [];
  const gcObserver = new PerformanceObserver((list) => gcEntries.push(...list.getEntries()));
  gcObserver.observe({ entryTypes: ['gc'] });
  const latencies: number[] = [];
  const firstBytes: number[] = [];
  const sendLags: number[] = [];
  const samples: OpenLoopSample[] = [];
  let failures = 0;
  let completed = 0;
  let lastEnd = 0;
  const interval = 1_000 / input.ratePerSecond;
  const inFlight = new Set<Promise<void>>();

  const fire = (scheduled: number, index: number) => {
    const sendLag = performance.now() - scheduled;
    sendLags.push(sendLag);
    const done = pool
      .request({ path: request.path, method: 'POST', headers: input.headersFor ? { ...request.headers, ...input.headersFor(index) } : request.headers, body: request.body })
      .then(async (response) => {
        let firstByte: number | undefined;
        // Read in flowing mode, each chunk as it was pushed. An async iterator's `read()` joins
        // the chunks queued since the last read into a new buffer: a response of several HTTP
        // chunks in one socket read (Seed's streams: one per write) cost the load generator a
        // copy of the body in a fresh ArrayBuffer, ~7.5 KB more per streamed request than one
        // chunk did, and with it a mark-compact in every slice (docs/benchmark-log.md, 2026-12-05 (13:27–)).
        await new Promise<void>((resolveBody, rejectBody) => {
          response.body.on('data', () => {
            firstByte ??= performance.now();
          });
          response.body.once('end', resolveBody);
          response.body.once('error', rejectBody);
        });
        const end = performance.now();
        if (response.statusCode !== 200) {
          failures += 1;
          return;
        }
        completed += 1;
        lastEnd = end;
        latencies.push(end - scheduled);
        firstBytes.push((firstByte ?? end) - scheduled);
        if (input.keepSamples) samples.push({ index, scheduledAt: performance.timeOrigin + scheduled, sendLagMs: sendLag, latencyMs: end - scheduled });
      })
      .catch(() => {
        failures += 1;
      });
    inFlight.add(done);
    void done.then(() => inFlight.delete(done));
  };

  const start = performance.now();
  let next = 0;
  while (next < input.count) {
    const now = performance.now();
    while (next < input.count && start + next * interval <= now) {
      fire(start + next * interval, next);
      next += 1;
    }
    await new Promise((resolveTick) => setTimeout(resolveTick, 1));
  }
  const drained = Promise.all(inFlight).then(() => true);
  const timedOut = new Promise<boolean>((resolveTimeout) => setTimeout(() => resolveTimeout(false), input.drainMs ?? 15_000).unref());
  if (!(await Promise.race([drained, timedOut]))) failures += inFlight.size;
  gcEntries.push(...gcObserver.takeRecords());
  gcObserver.disconnect();
  if (input.pool === undefined) await pool.destroy();
  return {
    sent: input.count,
    completed,
    failures,
    achievedPerSecond: completed > 0 ? (completed * 1_000) / (lastEnd - start) : 0,
    latencyP50Ms: percentile(latencies, 0.5),
    latencyP99Ms: percentile(latencies, 0.99),
    firstByteP50Ms: percentile(firstBytes, 0.5),
    firstByteP99Ms: percentile(firstBytes, 0.99),
    sendLagP99Ms: percentile(sendLags, 0.99),
    ...(input.keepSamples ? { samples } : {}),
    clientGc: clientGcOf(gcEntries),
  };
}

/** One request, for a smoke check before a target is measured; resolves to an error text or undefined. */
/**
 * `count` requests with `concurrency` in flight on `pool`, each body read whole and handed to
 * `onAnswer`; every answer must be a 200 (a failure would measure other work): the first that is
 * not rejects, with `describe()` (say, the server's last stderr) after the answer's start.
 */
export async function countedCalls(input: {
  pool: Pool;
  request: RequestShape;
  count: number;
  concurrency: number;
  name: string;
  onAnswer?: (text: string) => void;
  describe?: () => string;
}): Promise<void> {
  const { pool, request, count } = input;
  let next = 0;
  await Promise.all(
    Array.from({ length: input.concurrency }, async () => {
      while (next < count) {
        next += 1;
        const response = await pool.request({ path: request.path, method: 'POST', headers: request.headers, body: request.body });
        const text = await response.body.text();
        if (response.statusCode !== 200) {
          throw new Error(`${input.name} answered ${response.statusCode}: ${text.slice(0, 300)}${input.describe ? `\n${input.describe()}` : ''}`);
        }
        input.onAnswer?.(text);
      }
    }),
  );
}

export async function checkTarget(request: RequestShape, expect: string): Promise<string | undefined> {
  try {
    const response = await fetch(`${request.origin}${request.path}`, { method: 'POST', headers: request.headers, body: request.body });
    const text = await response.text();
    if (response.status !== 200) return `HTTP ${response.status}: ${text.slice(0, 200)}`;
    if (!text.includes(expect)) return `unexpected body: ${text.slice(0, 200)}`;
    return undefined;
  } catch (error) {
    return String(error);
  }
}
