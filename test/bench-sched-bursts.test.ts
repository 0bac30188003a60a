import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { burstOverlap, foreignBursts, foreignTaskCpu, parseTimehist, processTree, type Burst } from '../bench/lib/sched-bursts.ts';

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
