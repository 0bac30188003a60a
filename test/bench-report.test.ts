/**
 * The report's header says which Node flags every process of the run had: a ratio between Node
 * processes on different V8 settings measures the settings as much as the code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderReport, type RunReport } from '../bench/lib/report.ts';
import { SERVER_NODE_FLAGS } from '../src/node-flags.ts';

const machine = { cores: 2, cpuModel: 'test CPU', memoryGiB: 24, freeMemoryGiB: 20, node: 'v20.20.2', kernel: '6.1', loadAverage: '0.1' };
const base: RunReport = { command: 'npm run bench', date: '2026-12-05T00:00:00.000Z', machine, pending: [] };

test("the report names Seed's Node flags and the other processes'", () => {
  const rendered = renderReport({ ...base, nodeFlags: { seed: [...SERVER_NODE_FLAGS], others: [...SERVER_NODE_FLAGS] } });
  const line = rendered.split('\n').find((text) => text.startsWith('- Node flags:'));
  assert.ok(line, 'no Node flags line');
  assert.equal(line.split('`--no-allocation-site-pretenuring`').length, 3, line);
  assert.match(line, /the simulator, the Node proxies and Portkey `--min-semi-space-size=16`/);
});

test("a run on Node's defaults for the other processes, or one saved before the flags were recorded, says so", () => {
  const defaults = renderReport({ ...base, nodeFlags: { seed: [...SERVER_NODE_FLAGS], others: [] } });
  assert.match(defaults, /- Node flags: Seed `--min-semi-space-size=16`.*; the simulator, the Node proxies and Portkey Node's defaults/);
  const older = renderReport(base);
  assert.match(older, /- Node flags: Seed its `npm start` flags; the simulator, the Node proxies and Portkey Node's defaults/);
});
