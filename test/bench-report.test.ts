/**
 * The report's header says which Node flags every process of the run had: a ratio between Node
 * processes on different V8 settings measures the settings as much as the code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelMitigations } from '../bench/lib/machine.ts';
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

test('the machine section lists the kernel mitigations in force, read from one file per vulnerability', () => {
  const directory = mkdtempSync(join(tmpdir(), 'seed-vulnerabilities-'));
  try {
    writeFileSync(join(directory, 'tsa'), 'Mitigation: Clear CPU buffers: user/kernel boundary\n');
    writeFileSync(join(directory, 'meltdown'), 'Not affected\n');
    writeFileSync(join(directory, 'spectre_v2'), 'Mitigation: Retpolines; IBPB: conditional\n');
    writeFileSync(join(directory, 'mds'), 'Vulnerable; SMT disabled\n');
    const mitigations = kernelMitigations(directory);
    assert.deepEqual(mitigations, { spectre_v2: 'Retpolines; IBPB: conditional', tsa: 'Clear CPU buffers: user/kernel boundary' });
    const line = renderReport({ ...base, machine: { ...machine, mitigations } })
      .split('\n')
      .find((text) => text.startsWith('- kernel mitigations in force'));
    assert.ok(line, 'no mitigations line');
    assert.match(line, /spectre_v2: Retpolines; IBPB: conditional; tsa: Clear CPU buffers: user\/kernel boundary$/);
    assert.deepEqual(kernelMitigations(join(directory, 'missing')), {}, 'a kernel that reports nothing gives nothing');
    assert.equal(renderReport(base).includes('kernel mitigations'), false, 'a report saved without them has no line');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
