/**
 * bench/lib/sched-waits.ts: who a thread waited behind while ready to run, from run slices.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunSlice } from '../bench/lib/sched-bursts.ts';
import { taskFamily, waitHolders } from '../bench/lib/sched-waits.ts';

/** A slice from ms on perf's clock (the lib works in seconds). */
function slice(input: { tid: number; pid?: number; cpu: number; startMs: number; endMs: number; delayMs?: number; state?: string; name?: string }): RunSlice {
  const made: RunSlice = {
    start: input.startMs / 1_000,
    end: input.endMs / 1_000,
    cpu: input.cpu,
    name: input.name ?? 'node',
    tid: input.tid,
    pid: input.pid ?? input.tid,
    delayMs: input.delayMs ?? 0,
  };
  if (input.state !== undefined) made.state = input.state;
  return made;
}

const SUBJECT = 10;
const LOAD = 20;
const SIMULATOR = 30;
const holder = (ran: RunSlice) => (ran.pid === LOAD ? 'load generator' : ran.pid === SIMULATOR ? 'simulator' : ran.name);

// The subject sleeps after [0, 1], wakes at 3 and runs at 5 on CPU 1 (a 2 ms delay), behind the
// load generator there until 4.5, that CPU then idle; CPU 0 idles until 3.5, then runs the simulator.
// Preempted at the end of [5, 7], it waits until it runs at 8 on CPU 0, behind the simulator,
// while CPU 1 idles.
const SLICES: RunSlice[] = [
  slice({ tid: SUBJECT, cpu: 1, startMs: 0, endMs: 1, state: 'S' }),
  slice({ tid: LOAD, cpu: 1, startMs: 2.5, endMs: 4.5, state: 'S' }),
  slice({ tid: SIMULATOR, cpu: 0, startMs: 3.5, endMs: 8, state: 'S' }),
  slice({ tid: SUBJECT, cpu: 1, startMs: 5, endMs: 7, delayMs: 2, state: 'R' }),
  slice({ tid: SUBJECT, cpu: 0, startMs: 8, endMs: 9, state: 'S' }),
  // After every wait: counts for nothing.
  slice({ tid: LOAD, cpu: 1, startMs: 9, endMs: 12, state: 'S' }),
];

test('a wait after a wake-up runs from the wake-up; one after a preemption from the preemption', () => {
  const waits = waitHolders(SLICES, SUBJECT, holder);
  assert.equal(waits.waits, 2);
  assert.equal(waits.preempted, 1);
  assert.ok(Math.abs(waits.waitMs - 3) < 1e-9, String(waits.waitMs));
});

test('what ran on the CPU the thread then ran on is what it waited behind; the rest of its wait that CPU idled', () => {
  const waits = waitHolders(SLICES, SUBJECT, holder);
  const behind = Object.fromEntries(waits.behind.map(({ holder: name, ms }) => [name, Number(ms.toFixed(9))]));
  // Wake-up wait [3, 5] on CPU 1: the load generator 3–4.5; preemption wait [7, 8] on CPU 0: the simulator.
  assert.deepEqual(behind, { 'load generator': 1.5, simulator: 1 });
  assert.deepEqual(waits.behind.map(({ holder: name }) => name), ['load generator', 'simulator'], 'most first');
  assert.ok(Math.abs(waits.idleThereMs - 0.5) < 1e-9, String(waits.idleThereMs));
});

test('another CPU idle during a wait: time the thread could have run at once', () => {
  const waits = waitHolders(SLICES, SUBJECT, holder);
  // CPU 0 idled 3–3.5 of the first wait; CPU 1 idled all of the second (7–8).
  assert.ok(Math.abs(waits.idleElsewhereMs - 1.5) < 1e-9, String(waits.idleElsewhereMs));
});

test('on more CPUs, time counts as idle elsewhere once, however many CPUs idled in it', () => {
  const slices = [
    slice({ tid: SUBJECT, cpu: 0, startMs: 0, endMs: 1, state: 'R' }),
    slice({ tid: LOAD, cpu: 0, startMs: 1, endMs: 3, state: 'S' }),
    // CPUs 1 and 2 both idle 1–2 (CPU 1 busy after 2, CPU 2 after 1.5: idle elsewhere is 1–2 once).
    slice({ tid: SIMULATOR, cpu: 1, startMs: 2, endMs: 3, state: 'S' }),
    slice({ tid: 99, cpu: 2, startMs: 1.5, endMs: 3, state: 'S', name: 'kworker/2:1' }),
    slice({ tid: SUBJECT, cpu: 0, startMs: 3, endMs: 4, state: 'S' }),
  ];
  const waits = waitHolders(slices, SUBJECT, holder);
  assert.equal(waits.waits, 1);
  assert.ok(Math.abs(waits.idleElsewhereMs - 1) < 1e-9, String(waits.idleElsewhereMs));
  assert.deepEqual(waits.behind.map(({ holder: name }) => name), ['load generator']);
});

test('waits shorter than minWaitMs are left out; a thread that never waited has none', () => {
  assert.equal(waitHolders(SLICES, SUBJECT, holder, { minWaitMs: 1.5 }).waits, 1);
  const none = waitHolders(SLICES, 12345, holder);
  assert.deepEqual(none, { waits: 0, preempted: 0, waitMs: 0, behind: [], idleThereMs: 0, idleElsewhereMs: 0 });
});

test('a kernel thread’s family drops its CPU and instance', () => {
  assert.equal(taskFamily('kworker/1:2H'), 'kworker');
  assert.equal(taskFamily('ksoftirqd/0'), 'ksoftirqd');
  assert.equal(taskFamily('kdamond.0'), 'kdamond.0');
  assert.equal(taskFamily('node'), 'node');
});
