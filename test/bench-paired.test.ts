import assert from 'node:assert/strict';
import { test } from 'node:test';
import { listenOnLoopback } from './helpers/loopback.ts';
import { perProcessMedians, sliceOptions, TAIL_SLICE_SECONDS, warmUpOpenLoop, type PairedRatio, type PairedTail } from '../bench/scenarios/overhead.ts';
import { abTailSection, pairedTailsSection, renderReport } from '../bench/lib/report.ts';
import { alternatingPair, pairedOpenLoop, processesOfPair } from '../bench/lib/alternate.ts';
import type { AbResult } from '../bench/scenarios/ab.ts';
import { percentile, quartiles, type Quartiles } from '../bench/lib/stats.ts';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';

test('paired slices rotate so that any S × B pairs in a row meet every pairing of processes once', () => {
  for (const [subjects, baselines] of [
    [3, 3],
    [3, 1],
    [1, 3],
    [2, 3],
  ] as const) {
    for (const start of [0, 5]) {
      const met = new Set<string>();
      for (let pair = start; pair < start + subjects * baselines; pair += 1) {
        const [subject, baseline] = processesOfPair(pair, subjects, baselines);
        assert.ok(subject >= 0 && subject < subjects && baseline >= 0 && baseline < baselines);
        met.add(`${subject}/${baseline}`);
      }
      // Starting at 0 every pairing comes once; a window starting elsewhere may wrap, still meeting each process.
      if (start === 0) assert.equal(met.size, subjects * baselines, `${subjects} × ${baselines}`);
    }
  }
  assert.deepEqual(processesOfPair(0, 1, 1), [0, 0], 'one process each: always the same two');
});

test('with as many processes a side, both sides change process on every pair, so each process idles alike', () => {
  // (Two a side cannot do both: after 0/0 and 1/1, meeting 0/1 holds one side for a pair.)
  for (const count of [3, 4, 5]) {
    const lastSeen = [new Map<number, number>(), new Map<number, number>()];
    const gaps: [number[], number[]] = [[], []];
    for (let pair = 0; pair < count * count * 3; pair += 1) {
      const pairing = processesOfPair(pair, count, count);
      if (pair > 0) {
        const previous = processesOfPair(pair - 1, count, count);
        assert.notEqual(pairing[0], previous[0], `subject held at pair ${pair} (${count} a side)`);
        assert.notEqual(pairing[1], previous[1], `baseline held at pair ${pair} (${count} a side)`);
      }
      for (const side of [0, 1] as const) {
        const seen = lastSeen[side]!.get(pairing[side]);
        if (seen !== undefined) gaps[side].push(pair - seen);
        lastSeen[side]!.set(pairing[side], pair);
      }
    }
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    assert.ok(Math.abs(mean(gaps[0]) - mean(gaps[1])) < 0.25, `${count} a side: mean pairs between a process's slices ${mean(gaps[0])} vs ${mean(gaps[1])}`);
  }
});

test('the median by process takes only the pairs each process measured', () => {
  const paired: PairedRatio = {
    subject: 'seed',
    baseline: 'undici',
    stream: false,
    ratios: [0.5, 0.7, 0.9, 0.6, 0.8, 1.0],
    median: 0.75,
    lowerQuartile: 0.6,
    upperQuartile: 0.9,
    processPairs: [0, 1, 2, 3, 4, 5].map((pair) => processesOfPair(pair, 3, 2)),
    subjectProcesses: 3,
    baselineProcesses: 2,
  };
  assert.deepEqual(perProcessMedians(paired, 0), [0.55, 0.75, 0.95]);
  assert.deepEqual(perProcessMedians(paired, 1), [0.7, 0.8]);
  const single: PairedRatio = { ...paired, processPairs: undefined, subjectProcesses: undefined, baselineProcesses: undefined };
  assert.deepEqual(perProcessMedians(single, 0), [0.75]);
});

test('the paired added latency pools each side, and shows each pair’s own difference beside it', () => {
  const tail: PairedTail = {
    subject: 'seed',
    baseline: 'direct',
    stream: true,
    ratePerSecond: 500,
    sliceSeconds: 2,
    pairs: 4,
    failures: 0,
    subjectP50Ms: 1.8,
    subjectP99Ms: 12.5,
    baselineP50Ms: 1.2,
    baselineP99Ms: 11.75,
    addedP99PerPair: [0.5, -1, 2, 1],
  };
  const [heading, note, rows] = pairedTailsSection([tail]);
  assert.match(heading!, /alternating open-loop slices at 500 req\/s/);
  assert.match(note!, /2 s open-loop slices \(1000 requests each/);
  assert.match(rows!, /\| Seed \| streaming \| 1\.80 \| 1\.20 \| \+0\.60 \| 12\.50 \| 11\.75 \| \+0\.75 \| \+0\.75 \(-1\.00 to \+1\.00\) \| 4 \| 0 \|/);
  assert.deepEqual(pairedTailsSection([]), []);
});

test('paired open-loop slices alternate who goes first and keep every request of each side apart', async () => {
  // The subject answers its requests after 4 ms, one in ten after 30 ms; the baseline at once.
  const servers: Server[] = [];
  const origins: string[] = [];
  const order: string[] = [];
  /** The slices each client connection carried requests in. */
  const slicesOfSocket = new Map<Socket, Set<number>>();
  for (const name of ['subject', 'baseline']) {
    let count = 0;
    let lastSlice = -1;
    const server = createServer((request, response) => {
      request.resume();
      count += 1;
      const seen = slicesOfSocket.get(request.socket) ?? new Set<number>();
      slicesOfSocket.set(request.socket, seen.add(slices));
      if (order.at(-1) !== name || lastSlice !== slices) order.push(name);
      lastSlice = slices;
      const delay = name === 'baseline' ? 0 : count % 10 === 0 ? 30 : 4;
      setTimeout(() => response.end('{}'), delay);
    });
    servers.push(server);
    origins.push(await listenOnLoopback(server));
  }
  let slices = 0;
  try {
    const request = (origin: string) => ({ origin, path: '/', headers: { 'content-type': 'application/json' }, body: '{}' });
    const measured = await pairedOpenLoop({
      subject: request(origins[0]!),
      baseline: request(origins[1]!),
      ratePerSecond: 200,
      sliceSeconds: 0.25,
      pairs: 3,
      beforeSlice: async () => {
        slices += 1;
      },
    });
    assert.equal(slices, 6);
    assert.deepEqual(order, ['subject', 'baseline', 'baseline', 'subject', 'subject', 'baseline']);
    assert.equal(measured.subjectLatencies.length, 150);
    assert.equal(measured.baselineLatencies.length, 150);
    assert.equal(measured.failures, 0);
    assert.equal(measured.addedP99PerPair.length, 3);
    // Only lower bounds are certain on a busy machine: each subject request takes about 4 ms or more, one in ten 30 ms or more.
    // (Node timers may fire up to ~1 ms early on the clock the client measures with.)
    assert.ok(Math.min(...measured.subjectLatencies) >= 2.5, 'no baseline request was pooled with the subject’s');
    assert.ok(measured.subjectLatencies.filter((latency) => latency >= 28).length >= 15);
    assert.ok(percentile(measured.subjectLatencies, 0.99) >= 28);
    for (const added of measured.addedP99PerPair) assert.ok(Number.isFinite(added));
    // Each side keeps its connections from slice to slice, as a client in production does.
    assert.ok([...slicesOfSocket.values()].some((seen) => seen.size >= 2), 'no connection served more than one slice');
  } finally {
    for (const server of servers) server.close();
  }
});

test('paired open-loop slices over several processes a side send each pair to the processes the rotation names', async () => {
  const servers: Server[] = [];
  const origins: string[] = [];
  /** Per slice, which server answered its requests. */
  const answeredBy = new Map<number, Set<string>>();
  let slices = 0;
  for (const name of ['s0', 's1', 's2', 'b0', 'b1', 'b2']) {
    const server = createServer((request, response) => {
      request.resume();
      answeredBy.set(slices, (answeredBy.get(slices) ?? new Set<string>()).add(name));
      response.end('{}');
    });
    servers.push(server);
    origins.push(await listenOnLoopback(server));
  }
  try {
    const request = (origin: string) => ({ origin, path: '/', headers: { 'content-type': 'application/json' }, body: '{}' });
    const pairs = 4;
    const measured = await pairedOpenLoop({
      subject: origins.slice(0, 3).map(request),
      baseline: origins.slice(3).map(request),
      ratePerSecond: 200,
      sliceSeconds: 0.1,
      pairs,
      beforeSlice: async () => {
        slices += 1;
      },
    });
    assert.equal(measured.failures, 0);
    assert.equal(measured.subjectLatencies.length, pairs * 20);
    for (let pair = 0; pair < pairs; pair += 1) {
      const [subject, baseline] = processesOfPair(pair, 3, 3);
      const [first, second] = pair % 2 === 0 ? [`s${subject}`, `b${baseline}`] : [`b${baseline}`, `s${subject}`];
      assert.deepEqual([...answeredBy.get(pair * 2 + 1)!], [first], `pair ${pair}, first slice`);
      assert.deepEqual([...answeredBy.get(pair * 2 + 2)!], [second], `pair ${pair}, second slice`);
    }
  } finally {
    for (const server of servers) server.close();
  }
});

test('alternatingPair runs the subject first in even pairs and the baseline first in odd ones', async () => {
  const ran: string[] = [];
  const run = (name: string) => async () => {
    ran.push(name);
    return name;
  };
  assert.deepEqual(await alternatingPair(0, run('s'), run('b')), { subject: 's', baseline: 'b' });
  assert.deepEqual(await alternatingPair(1, run('s'), run('b')), { subject: 's', baseline: 'b' });
  assert.deepEqual(ran, ['s', 'b', 'b', 's']);
});

test('the A/B report gives each build’s pooled latency at the open-loop rate, and nothing for runs without it', () => {
  const mode = {
    stream: true,
    throughput: { median: 1, lowerQuartile: 0.9, upperQuartile: 1.1 },
    cpuPerRequest: { median: 1, lowerQuartile: 0.9, upperQuartile: 1.1 },
    current: { requestsPerSecond: 1000, cpuMicrosecondsPerRequest: 200 },
    baselineBuild: { requestsPerSecond: 1000, cpuMicrosecondsPerRequest: 200 },
  };
  const ab = abRun([
    {
      ...mode,
      tail: {
        ratePerSecond: 500,
        sliceSeconds: 2,
        pairs: 20,
        failures: 0,
        currentP50Ms: 1.4,
        currentP99Ms: 8.25,
        baselineP50Ms: 1.5,
        baselineP99Ms: 9.5,
        p99DifferencePerPair: { median: -0.5, lowerQuartile: -2, upperQuartile: 1 },
      },
    },
  ]);
  const [note, rows] = abTailSection(ab);
  assert.match(note!, /2 s open-loop slices at 500 req\/s, 20 pairs per mode/);
  assert.match(rows!, /\| streaming \| 1\.40 \/ 1\.50 \| 8\.25 \/ 9\.50 \| -1\.25 \| -0\.50 \(-2\.00 to \+1\.00\) \| 0 \|/);
  assert.deepEqual(abTailSection({ ...ab, modes: [mode] }), []);
});

test('the paired added latency shows the host’s bursts: the slowest in them, the p99s clear of them, and whose they were', () => {
  const overlap = (p99ClearMs: number, slowestInBurst: number) => ({ requests: 4000, p50Ms: 1, p99Ms: 9, inBurst: 90, slowest: 40, slowestInBurst, p99ClearMs });
  const tail: PairedTail = {
    subject: 'seed',
    baseline: 'direct',
    stream: false,
    ratePerSecond: 500,
    sliceSeconds: 2,
    pairs: 2,
    failures: 0,
    subjectP50Ms: 1.8,
    subjectP99Ms: 12.5,
    baselineP50Ms: 1.2,
    baselineP99Ms: 11.75,
    addedP99PerPair: [0.5, 1],
    openLoopWarmUp: true,
    hostBursts: {
      overlap: { subject: overlap(6.5, 38), baseline: overlap(4.25, 12) },
      bursts: 21,
      cpuMs: 150.4,
      seconds: 10.2,
      tasks: [
        { name: 'kdamond.0', cpuMs: 120 },
        { name: 'redis-server', cpuMs: 9 },
      ],
    },
  };
  const lines = pairedTailsSection([tail]);
  const rows = lines.find((line) => line.startsWith('| proxy'))!;
  assert.match(rows, /\| host bursts \(their CPU\) \| slowest 1% in a burst: proxy's; direct's \| p99 clear of bursts: proxy; direct \| added p99 clear of bursts \|/);
  assert.match(rows, /\| 21 in 10 s \(150 ms\) \| 38 of 40; 12 of 40 \| 6\.50; 4\.25 \| \+2\.25 \|/);
  assert.ok(lines.some((line) => /perf sched record -a/.test(line)), 'the note says how the bursts were recorded');
  assert.match(lines[1]!, /idle, after one unmeasured open-loop slice of each side/);
  assert.doesNotMatch(pairedTailsSection([{ ...tail, openLoopWarmUp: undefined }])[1]!, /unmeasured/, 'older runs did not warm up so');
  assert.ok(lines.some((line) => /`kdamond\.0` 120 ms, `redis-server` 9 ms/.test(line)), lines.join('\n'));
  // A tail without them (perf missing) gets dashes and the reason.
  const without: PairedTail = { ...tail, hostBursts: undefined };
  const skipped = pairedTailsSection([without], 'perf is not installed');
  assert.ok(!skipped.some((line) => /host bursts/.test(line)));
  assert.match(skipped.at(-1)!, /not attributed in this run: perf is not installed\./);
  assert.match(pairedTailsSection([tail, without]).find((line) => line.startsWith('| proxy'))!, /\| — \| — \| — \| — \|/);
});

test('paired open-loop slices keep each request’s span on the monotonic clock when asked', async () => {
  const server = createServer((request, response) => {
    request.resume();
    setTimeout(() => response.end('{}'), 5);
  });
  const origin = await listenOnLoopback(server);
  try {
    const request = { origin, path: '/', headers: { 'content-type': 'application/json' }, body: '{}' };
    const before = Number(process.hrtime.bigint()) / 1e9;
    const measured = await pairedOpenLoop({ subject: request, baseline: { ...request }, ratePerSecond: 100, sliceSeconds: 0.2, pairs: 2, keepSpans: true });
    const after = Number(process.hrtime.bigint()) / 1e9;
    assert.equal(measured.spans!.subject.length, measured.subjectLatencies.length);
    assert.equal(measured.spans!.baseline.length, 40);
    for (const [spans, latencies] of [
      [measured.spans!.subject, measured.subjectLatencies],
      [measured.spans!.baseline, measured.baselineLatencies],
    ] as const) {
      spans.forEach((span, index) => {
        assert.ok(span.start >= before - 0.001 && span.end <= after + 0.001, `span ${span.start}–${span.end} outside ${before}–${after}`);
        assert.ok(Math.abs((span.end - span.start) * 1_000 - latencies[index]!) < 1e-6);
      });
    }
    const without = await pairedOpenLoop({ subject: request, baseline: { ...request }, ratePerSecond: 100, sliceSeconds: 0.1, pairs: 1 });
    assert.equal(without.spans, undefined);
  } finally {
    server.close();
  }
});

test('the open-loop warm-up sends one slice at the rate through a pool of its own, and closes it', async () => {
  let requests = 0;
  const server = createServer((request, response) => {
    request.resume();
    requests += 1;
    response.end('{}');
  });
  const origin = await listenOnLoopback(server);
  try {
    const started = performance.now();
    await warmUpOpenLoop({ origin, headers: { 'content-type': 'application/json' } }, false, 100);
    const seconds = (performance.now() - started) / 1_000;
    assert.equal(requests, 100 * TAIL_SLICE_SECONDS);
    // At the rate: the last request is scheduled (count − 1) / rate after the first.
    assert.ok(seconds >= TAIL_SLICE_SECONDS - 0.05, `${requests} requests in ${seconds.toFixed(2)} s`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
    const open = await new Promise<number>((resolveCount, rejectCount) => server.getConnections((error, count) => (error ? rejectCount(error) : resolveCount(count))));
    assert.equal(open, 0, 'the warm-up left connections open');
  } finally {
    server.close();
  }
});

test('the slice commands’ options: whole slices, a positive rate, --json for non-streaming', () => {
  assert.deepEqual(sliceOptions({ slices: '3', rate: '500', json: false }), { slices: 3, rate: 500, stream: true });
  assert.deepEqual(sliceOptions({ slices: '1', rate: '12.5', json: true }), { slices: 1, rate: 12.5, stream: false });
  assert.throws(() => sliceOptions({ slices: '0', rate: '500', json: false }), /--slices: expected a whole number of at least 1, got 0/);
  assert.throws(() => sliceOptions({ slices: '2.5', rate: '500', json: false }), /--slices/);
  assert.throws(() => sliceOptions({ slices: '3', rate: 'fast', json: false }), /--rate: expected a positive number, got fast/);
  assert.throws(() => sliceOptions({ slices: '3', rate: '-1', json: false }), /--rate/);
});

test("the A/B table gives each ratio's 95% interval and whether it is told from 1, and quartiles for runs saved before", () => {
  const slices = { requestsPerSecond: 1000, cpuMicrosecondsPerRequest: 200 };
  const faster = quartiles([1.02, 1.05, 1.06, 1.08, 1.09, 1.1, 1.11, 1.12, 1.12, 1.13, 1.15, 1.16, 1.18, 1.2, 1.21, 1.22, 1.25, 1.3, 1.31, 1.4]);
  const same = quartiles([0.8, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 1, 1, 1.01, 1.02, 1.03, 1.04, 1.05, 1.06, 1.08, 1.1, 1.12, 1.2, 1.3]);
  const ab = abRun([{ stream: false, throughput: faster, cpuPerRequest: same, current: slices, baselineBuild: slices }]);
  const base = { command: 'npm run bench -- --only ab', date: '2026-12-08T00:00:00.000Z', pending: [] };
  const machine = { cores: 2, cpuModel: 'test CPU', memoryGiB: 24, freeMemoryGiB: 20, node: 'v20.20.2', kernel: '6.1', loadAverage: '0.1' };
  const rendered = renderReport({ ...base, machine, ab });
  assert.match(rendered, /the median and the 95% interval of the median; a ratio is told from 1 when that interval leaves 1 out/);
  // 20 pairs: the 6th and the 15th values.
  assert.match(rendered, /\| non-streaming \| 1\.140× \(1\.100–1\.210\) \| yes \| 1\.015× \(0\.980–1\.060\) \| no: within the noise \|/);
  const strip = ({ interval: _interval, ...rest }: Quartiles) => rest;
  const older = renderReport({ ...base, machine, ab: { ...ab, modes: [{ ...ab.modes[0]!, throughput: strip(faster), cpuPerRequest: strip(same) }] } });
  assert.match(older, /per pair \(median, quartiles\)/);
  assert.match(older, /\| non-streaming \| 1\.140× \(1\.090–1\.210\) \| 1\.015× \(0\.970–1\.060\) \|/);
});

/** An A/B run of 20 pairs at 50 connections of HEAD~1 against this checkout, with these modes. */
function abRun(modes: AbResult['modes']): AbResult {
  return { baselineRef: 'HEAD~1', baselineCommit: 'a'.repeat(40), currentCommit: 'b'.repeat(40), currentDirty: false, pairs: 20, concurrency: 50, modes };
}
