/**
 * What the minimal undici proxy's relay costs it: the bench's baseline (bench/servers/undici-proxy.ts,
 * `stream/promises` `pipeline`) against the same proxy relaying with `Readable#pipe` (`RELAY=pipe`),
 * and Seed against each, in alternating 1 s closed-loop
 * slices at 50 connections (who goes first alternating, each slice once every process is idle),
 * after the usual warm-up. Ratios are medians over the pairs of slices; CPU is each process's
 * user + system over its slice ÷ its calls.
 *
 *   node bin/run-ts.mjs bench/proxy-relay.ts [--pairs 16]
 *
 * Seed runs from dist/ (`npm run build` first) with every feature on, as in `npm run bench`.
 */
import './lib/client-flags.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { closedLoop } from './lib/load.ts';
import { wholeNumbers } from './lib/per-call.ts';
import { sampleProcess, waitForQuiet } from './lib/proc.ts';
import { median } from './lib/stats.ts';
import { SIMULATOR_HEADERS, startSeedServer, startSimulator, startUndiciProxy } from './lib/targets.ts';
import { requestFor, warmUp } from './scenarios/overhead.ts';

const { values } = parseArgs({ options: { pairs: { type: 'string', default: '16' } } });
const { pairs } = wholeNumbers({ pairs: values.pairs });

const workDirectory = mkdtempSync(join(tmpdir(), 'seed-proxy-relay-'));
const simulator = await startSimulator();
const servers = [
  await startUndiciProxy({ simulatorUrl: simulator.url, name: 'pipeline' }),
  await startUndiciProxy({ simulatorUrl: simulator.url, name: 'pipe', env: { RELAY: 'pipe' } }),
  await startSeedServer({ simulatorUrl: simulator.url, workDirectory, name: 'seed' }),
];
const targets = servers.map((server) => ({
  name: server.name,
  pid: server.pid,
  origin: server.url,
  headers: 'headers' in server ? (server.headers as Record<string, string>) : { ...SIMULATOR_HEADERS },
}));
const rows: string[] = [];
try {
  for (const stream of [false, true]) for (const target of targets) await warmUp(target, stream, 50);
  for (const stream of [false, true]) {
    const perSecond = new Map<string, number[]>(targets.map((target) => [target.name, []]));
    const cpu = new Map<string, number[]>(targets.map((target) => [target.name, []]));
    for (let pair = 0; pair < pairs; pair++) {
      for (const target of pair % 2 === 0 ? targets : [...targets].reverse()) {
        await waitForQuiet([...targets.map((each) => each.pid), simulator.pid], { maxCores: 0.2, maxMs: 5_000 });
        const before = sampleProcess(target.pid);
        const result = await closedLoop({ request: requestFor(target, stream), connections: 50, durationSeconds: 1 });
        const after = sampleProcess(target.pid);
        if (before === undefined || after === undefined) throw new Error(`${target.name} exited`);
        perSecond.get(target.name)?.push(result.requestsPerSecond);
        cpu.get(target.name)?.push(((after.cpuMs - before.cpuMs) * 1_000) / Math.max(1, result.completed));
      }
    }
    const ratio = (of: Map<string, number[]>, subject: string, baseline: string) => {
      const base = of.get(baseline) ?? [];
      return median((of.get(subject) ?? []).map((value, index) => value / (base[index] as number)));
    };
    for (const [subject, baseline] of [
      ['pipe', 'pipeline'],
      ['seed', 'pipeline'],
      ['seed', 'pipe'],
    ] as const) {
      rows.push(`| ${subject} ÷ ${baseline} | ${stream ? 'streaming' : 'non-streaming'} | ${ratio(perSecond, subject, baseline).toFixed(3)}× | ${ratio(cpu, subject, baseline).toFixed(3)}× |`);
    }
  }
} finally {
  for (const server of servers) await server.stop();
  await simulator.stop();
  rmSync(workDirectory, { recursive: true, force: true });
}
console.log(`\nPaired 1 s closed-loop slices, 50 connections, ${pairs} pairs per mode; medians of the per-pair ratios\n`);
console.log('| ratio | mode | req/s | CPU per request |');
console.log('|---|---|---:|---:|');
for (const row of rows) console.log(row);
