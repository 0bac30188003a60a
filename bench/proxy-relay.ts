/**
 * What the minimal undici proxy's relay costs it: the bench's baseline (bench/servers/undici-proxy.ts,
 * `Readable#pipe`) against the same proxy relaying with `stream/promises`' `pipeline`
 * (`RELAY=pipeline`, the baseline of runs before 2026-12-07), and Seed against the `pipeline`
 * proxy, each as the overhead scenario's paired ratios are measured (`pairedRatio`: alternating
 * 1 s closed-loop slices at 50 connections, who goes first alternating, each slice once every
 * process is idle), after the usual warm-up: it says how the older runs' ratios relate to today's.
 * Seed against the `pipe` proxy is what `npm run bench` pairs already, and is measured here too.
 *
 *   node bin/run-ts.mjs bench/proxy-relay.ts [--pairs 16]
 *
 * Seed runs from dist/ (`npm run build` first) with every feature on, as in `npm run bench`.
 */
import './lib/client-flags.ts';
import { rmSync } from 'node:fs';
import { wholeNumbers } from './lib/per-call.ts';
import { median } from './lib/stats.ts';
import { SIMULATOR_HEADERS, startSeedServer, startSimulator, startUndiciProxy, type Target } from './lib/targets.ts';
import { pairedRatio, warmUp } from './scenarios/overhead.ts';
import { parseCommandLine } from './lib/command-line.ts';
import { scratchDirectory } from './lib/children.ts';

const { values } = parseCommandLine(import.meta.filename, { options: { pairs: { type: 'string', default: '16' } } });
const { pairs } = wholeNumbers({ pairs: values.pairs });

const workDirectory = scratchDirectory('seed-proxy-relay-');
const simulator = await startSimulator();
const pipelineProxy = await startUndiciProxy({ simulatorUrl: simulator.url, name: 'pipeline', env: { RELAY: 'pipeline' } });
const pipeProxy = await startUndiciProxy({ simulatorUrl: simulator.url, name: 'pipe' });
const seed = await startSeedServer({ simulatorUrl: simulator.url, workDirectory, name: 'seed' });
// Both proxies are the undici proxy to the report types; the labels tell them apart here.
const proxy = (server: typeof pipeProxy, label: string): Target => ({ id: 'undici', label, origin: server.url, headers: { ...SIMULATOR_HEADERS }, server, note: '' });
const pipeline = proxy(pipelineProxy, '`pipeline` proxy');
const pipe = proxy(pipeProxy, '`pipe` proxy');
const seedTarget: Target = { id: 'seed', label: 'Seed', origin: seed.url, headers: seed.headers, server: seed, note: '' };
const quietPids = [simulator.pid, pipelineProxy.pid, pipeProxy.pid, seed.pid];
const rows: string[] = [];
try {
  for (const stream of [false, true]) for (const target of [pipeline, pipe, seedTarget]) await warmUp(target, stream, 50);
  for (const stream of [false, true]) {
    for (const [subject, baseline] of [
      [pipe, pipeline],
      [seedTarget, pipe],
      [seedTarget, pipeline],
    ] as const) {
      const paired = await pairedRatio({ subjects: [subject], baselines: [baseline], stream, options: { concurrency: 50, pairs }, quietPids });
      const cpu = paired.cpuRatios === undefined ? Number.NaN : median(paired.cpuRatios);
      rows.push(
        `| ${subject.label} ÷ ${baseline.label} | ${stream ? 'streaming' : 'non-streaming'} | ${paired.median.toFixed(3)}× (${paired.lowerQuartile.toFixed(3)}–${paired.upperQuartile.toFixed(3)}) | ${cpu.toFixed(3)}× |`,
      );
    }
  }
} finally {
  for (const server of [seed, pipeProxy, pipelineProxy, simulator]) await server.stop();
  rmSync(workDirectory, { recursive: true, force: true });
}
console.log(`\nPaired 1 s closed-loop slices, 50 connections, ${pairs} pairs per ratio and mode; medians (quartiles) of the per-pair ratios\n`);
console.log('| ratio | mode | req/s | CPU per request |');
console.log('|---|---|---:|---:|');
for (const row of rows) console.log(row);
