/**
 * bench/lib/affinity.ts: the pinned layout, and pinning every thread of a running process.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { machineLayout, pinLayout, pinProcess, threadAffinity, whilePinned } from '../bench/lib/affinity.ts';

test('the layout: CPU 0 for the load generator and the upstream, the rest for the gateway', () => {
  assert.deepEqual(pinLayout(2), { world: '0', gateway: '1' });
  assert.deepEqual(pinLayout(8), { world: '0', gateway: '1-7' });
  assert.match((pinLayout(1) as { unavailable: string }).unavailable, /at least 2 CPUs; this machine offers 1/);
});

const canPin =
  process.platform !== 'linux'
    ? 'thread affinity is read from /proc: Linux only'
    : spawnSync('taskset', ['--version']).error
      ? 'taskset is not installed (Debian: util-linux)'
      : availableParallelism() < 2
        ? 'one CPU: nothing to pin apart'
        : false;

test('pinning reaches every thread of the process, and threads it starts later', { skip: canPin }, async () => {
  // A process with worker threads now, and one more once told.
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const { Worker } = require('node:worker_threads');
       const start = () => new Worker('setInterval(() => {}, 1000)', { eval: true });
       start();
       process.stdin.once('data', () => { start(); setTimeout(() => process.stdout.write('started\\n'), 300); });
       setTimeout(() => process.stdout.write('ready\\n'), 300);`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  try {
    await once(child.stdout, 'data');
    const before = threadAffinity(child.pid!);
    pinProcess(child.pid!, '1');
    const pinned = threadAffinity(child.pid!);
    assert.ok(pinned.size >= 2, `threads: ${pinned.size}`);
    assert.deepEqual(new Set(pinned.values()), new Set(['1']), `before: ${[...before.values()].join(' ')}`);
    child.stdin.write('go\n');
    await once(child.stdout, 'data');
    const later = threadAffinity(child.pid!);
    assert.ok(later.size > pinned.size, 'a thread started after the pin');
    assert.deepEqual(new Set(later.values()), new Set(['1']));
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
});

test('pinning a process that is gone says so', { skip: canPin }, () => {
  assert.throws(() => pinProcess(2 ** 22 + 12345, '0'), /taskset could not pin process 4206649 to CPUs 0: no such process/);
});

test('a CPU list the machine does not have is refused', { skip: canPin }, async () => {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)'], { stdio: 'ignore' });
  try {
    assert.throws(() => pinProcess(child.pid!, '4095'), /taskset could not pin process \d+ to CPUs 4095: /);
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
});

test('whilePinned gives each process back its CPUs afterwards, when the body throws too', { skip: canPin }, async () => {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)'], { stdio: 'ignore' });
  try {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = threadAffinity(child.pid!).get(child.pid!);
    let inside: string | undefined;
    await assert.rejects(
      whilePinned([{ pid: child.pid!, cpus: '1' }], async () => {
        inside = threadAffinity(child.pid!).get(child.pid!);
        throw new Error('the body failed');
      }),
      /the body failed/,
    );
    assert.equal(inside, '1');
    assert.equal(threadAffinity(child.pid!).get(child.pid!), before);
    assert.equal(await whilePinned([{ pid: child.pid!, cpus: '0' }], async () => threadAffinity(child.pid!).get(child.pid!)), '0');
    assert.equal(threadAffinity(child.pid!).get(child.pid!), before);
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
});

test('machineLayout gives the layout where the machine can be split', { skip: canPin }, () => {
  assert.deepEqual(machineLayout(), pinLayout());
});
