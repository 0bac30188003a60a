import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { attributeBursts, burstOverlap, foreignBursts, foreignTaskCpu, hostBurstsText, outside, parseTimehist, processTree, schedRecordingUnavailable, startSchedRecording, type Burst } from '../bench/lib/sched-bursts.ts';

// Lines as `perf sched timehist` prints them (perf 6.1, a run of 2026-12-05), with its header.
const TIMEHIST = `Samples of sched_switch event do not have callchains.
           time    cpu  task name                       wait time  sch delay   run time
                        [tid/pid]                          (msec)     (msec)     (msec)
--------------- ------  ------------------------------  ---------  ---------  ---------
     282.392316 [0001]  node[7384]                                                       awakened: node[7389/7384]
     282.392330 [0001]  node[7389/7384]                    76.903      0.004      0.009
     282.395586 [0000]  kdamond.0[83]                     507.294      0.007      3.505
     282.396713 [0001]  <idle>                              4.197      0.000      0.550
     282.397265 [0000]  1_scheduler[3017/2989]            102.092      1.199      0.492
     282.397849 [0000]  kdamond.0[83]                       1.678      0.000      0.584
     282.402940 [0000]  kworker/0:1[12]                     0.790      0.000      0.371
     282.900000 [0001]  kdamond.0[83]                     500.000      0.000      4.000
`;

test('perf sched timehist: run slices with task, thread and process; wake-ups and the idle task are not slices', () => {
  const slices = parseTimehist(TIMEHIST);
  assert.deepEqual(
    slices.map(({ name, tid, pid, cpu }) => ({ name, tid, pid, cpu })),
    [
      { name: 'node', tid: 7389, pid: 7384, cpu: 1 },
      { name: 'kdamond.0', tid: 83, pid: 83, cpu: 0 },
      { name: '1_scheduler', tid: 3017, pid: 2989, cpu: 0 },
      { name: 'kdamond.0', tid: 83, pid: 83, cpu: 0 },
      { name: 'kworker/0:1', tid: 12, pid: 12, cpu: 0 },
      { name: 'kdamond.0', tid: 83, pid: 83, cpu: 1 },
    ],
  );
  // The start is the switch-out less the run time.
  assert.ok(Math.abs(slices[1]!.start - (282.395586 - 0.003505)) < 1e-9);
  assert.equal(slices[1]!.end, 282.395586);
});

test('foreign slices close together make one burst; our processes, lone blips and far slices do not join it', () => {
  const slices = parseTimehist(TIMEHIST);
  const bursts = foreignBursts(slices, new Set([7384]));
  // kdamond 3.505 + the scheduler 0.492 + kdamond 0.584 are under 2 ms apart; the kworker's
  // slice starts 4.7 ms after, and alone it is under 2 ms; the last kdamond slice is alone, 4 ms.
  assert.equal(bursts.length, 2);
  assert.ok(Math.abs(bursts[0]!.cpuMs - (3.505 + 0.492 + 0.584)) < 1e-6, String(bursts[0]!.cpuMs));
  assert.deepEqual(bursts[0]!.tasks, ['kdamond.0', '1_scheduler']);
  assert.ok(Math.abs(bursts[1]!.cpuMs - 4) < 1e-6);
  // Counting the scheduler's process as ours takes its slice out of the burst.
  assert.deepEqual(foreignBursts(slices, new Set([7384, 2989]))[0]!.tasks, ['kdamond.0']);
  // Our own threads never make a burst, however long.
  assert.deepEqual(foreignBursts(slices, new Set([7384, 2989, 83, 12])), []);
  const byTask = foreignTaskCpu(slices, new Set([7384]));
  assert.equal(byTask[0]!.name, 'kdamond.0');
  assert.ok(Math.abs(byTask[0]!.cpuMs - (3.505 + 0.584 + 4)) < 1e-6);
});

test('burst overlap: which requests a burst overlapped, the slowest among them, and the p99 of the rest', () => {
  const bursts: Burst[] = [{ start: 10, end: 10.01, cpuMs: 8, tasks: ['kdamond.0'] }];
  // 200 requests of 1 ms, 2 ms apart from t = 9.8001 s; the burst's 10 ms overlap five of them, and
  // two of those are made slow (20 ms). Two more slow ones (5 ms) are clear of it.
  const spans = Array.from({ length: 200 }, (_, index) => {
    const start = 9.8001 + index * 0.002;
    return { start, end: start + 0.001 };
  });
  const inBurst = spans.filter((span) => span.start < 10.01 && span.end > 10);
  assert.equal(inBurst.length, 5);
  inBurst[0]!.end = inBurst[0]!.start + 0.02;
  inBurst[1]!.end = inBurst[1]!.start + 0.02;
  spans[0]!.end = spans[0]!.start + 0.005;
  spans[1]!.end = spans[1]!.start + 0.005;
  const overlap = burstOverlap(spans, bursts);
  assert.equal(overlap.requests, 200);
  assert.equal(overlap.inBurst, 5);
  // p99 of 200 is the 199th fastest (nearest rank): a 20 ms request; the slowest 1% are the two.
  assert.ok(Math.abs(overlap.p99Ms - 20) < 1e-6, String(overlap.p99Ms));
  assert.equal(overlap.slowest, 2);
  assert.equal(overlap.slowestInBurst, 2);
  // Clear of the burst, the slowest are the two 5 ms requests: the 99th percentile of 195.
  assert.ok(Math.abs(overlap.p99ClearMs - 5) < 1e-6, String(overlap.p99ClearMs));
  assert.ok(Math.abs(overlap.p50Ms - 1) < 1e-6);
  // No bursts: nothing overlapped, and the clear p99 is the p99.
  const none = burstOverlap(spans, []);
  assert.equal(none.inBurst, 0);
  assert.equal(none.p99ClearMs, none.p99Ms);
});

test('the process tree holds a child and its child', async () => {
  const child = spawn('sh', ['-c', 'sleep 30 & wait'], { stdio: 'ignore' });
  try {
    // Give sh time to start its sleep.
    let grandchildren: number[] = [];
    for (let attempt = 0; attempt < 50 && grandchildren.length === 0; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      grandchildren = [...processTree(child.pid!)].filter((pid) => pid !== child.pid);
    }
    const tree = processTree(process.pid);
    assert.ok(tree.has(process.pid));
    assert.ok(tree.has(child.pid!), 'the child is in the tree');
    assert.equal(grandchildren.length, 1, 'sh started one sleep');
    assert.ok(tree.has(grandchildren[0]!), 'the grandchild is in the tree');
    assert.ok(!tree.has(1), 'init is not');
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
});

/** Runs `body` with test/fixtures/bench/fake-perf first on PATH, in a fresh directory holding TIMEHIST. */
async function withFakePerf(body: (directory: string) => Promise<void>, env: Record<string, string> = {}): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'seed-fake-perf-'));
  const saved = { PATH: process.env['PATH'], FAKE_PERF_TIMEHIST: process.env['FAKE_PERF_TIMEHIST'], FAKE_PERF_FAIL: process.env['FAKE_PERF_FAIL'] };
  writeFileSync(join(directory, 'timehist.txt'), TIMEHIST);
  process.env['PATH'] = `${resolve(import.meta.dirname, 'fixtures', 'bench', 'fake-perf')}:${saved.PATH ?? ''}`;
  process.env['FAKE_PERF_TIMEHIST'] = join(directory, 'timehist.txt');
  for (const [name, value] of Object.entries(env)) process.env[name] = value;
  try {
    await body(directory);
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    rmSync(directory, { recursive: true, force: true });
  }
}

test('a recording runs until stopped, then gives the foreign run slices only, and leaves no file', async () => {
  await withFakePerf(async (directory) => {
    assert.equal(schedRecordingUnavailable(directory), undefined);
    const file = join(directory, 'tail.data');
    const recording = await startSchedRecording(file);
    assert.ok(existsSync(file), 'perf is recording into the file');
    const foreign = await recording.stop(outside(new Set([7384, 2989])));
    assert.deepEqual(
      foreign.map((slice) => slice.name),
      ['kdamond.0', 'kdamond.0', 'kworker/0:1', 'kdamond.0'],
    );
    assert.ok(!existsSync(file), 'the recording is removed once read');
    assert.deepEqual(readdirSync(directory).sort(), ['timehist.txt']);
  });
});

test('where perf cannot record the whole system, the reason is perf’s first line', async () => {
  await withFakePerf(
    async (directory) => {
      assert.match(schedRecordingUnavailable(directory) ?? '', /perf sched record -a failed .*: Error: Access to performance monitoring and observability operations is limited\.$/);
    },
    { FAKE_PERF_FAIL: 'Error: Access to performance monitoring and observability operations is limited.\nConsider adjusting /proc/sys/kernel/perf_event_paranoid' },
  );
  const saved = process.env['PATH'];
  process.env['PATH'] = '/nonexistent';
  try {
    assert.match(schedRecordingUnavailable(tmpdir()) ?? '', /perf is not installed/);
  } finally {
    process.env['PATH'] = saved;
  }
});

test('bursts are attributed to each side’s requests, within the requests’ window only', () => {
  // As a recording's `stop` gives them: without the benchmark's own (node, 7384).
  const slices = parseTimehist(TIMEHIST).filter((slice) => slice.pid !== 7384);
  // Side a: a request across the first burst (282.3921–282.3978); side b: one after it. The
  // lone kdamond slice at 282.896–282.900 is after every request: outside the window.
  const host = attributeBursts(slices, {
    a: [{ start: 282.39, end: 282.395 }],
    b: [{ start: 282.398, end: 282.399 }],
  });
  assert.equal(host.bursts, 1);
  assert.equal(host.overlap.a.inBurst, 1);
  assert.equal(host.overlap.b.inBurst, 0);
  assert.ok(Math.abs(host.seconds - 0.009) < 1e-9);
  assert.equal(host.tasks[0]!.name, 'kdamond.0');
  assert.match(hostBurstsText(host), /^host: 1 bursts \(5 ms of CPU; foreign tasks' CPU kdamond\.0 4.*slowest 1% in a burst: a 1 of 1 \(p99 clear of bursts NaN ms\), b 0 of 1 \(1\.00\)$/);
});

test('timehist --state: the state a task left the CPU in, and the scheduling delay before its slice', () => {
  const [preempted, slept] = parseTimehist(`     282.392330 [0001]  node[7389/7384]                    0.000      0.000      0.009      R
     282.395586 [0000]  kdamond.0[83]                     507.294      0.007      3.505      S
`);
  assert.equal(preempted!.state, 'R');
  assert.equal(preempted!.delayMs, 0);
  assert.equal(slept!.state, 'S');
  assert.equal(slept!.delayMs, 0.007);
  // Listed without --state, a slice has none.
  assert.equal(parseTimehist(TIMEHIST)[0]!.state, undefined);
});
