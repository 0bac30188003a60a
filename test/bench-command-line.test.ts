/**
 * The bench tools' command lines (`bench/lib/command-line.ts`): `--help` prints the tool's header
 * comment, and a wrong flag exits 2 with what was wrong, where it printed a stack trace.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { usageOf } from '../bench/lib/command-line.ts';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const TOOLS = ['bench/run.ts', 'bench/oncpu.ts', 'bench/syscalls.ts', 'bench/tail-trace.ts', 'bench/redis-instructions.ts'];

async function runTool(tool: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/run-ts.mjs', tool, ...args], { cwd: root, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

test('usageOf is the first doc comment without its comment marks', () => {
  const usage = usageOf(resolve(root, 'bench/run.ts'));
  assert.match(usage, /^Seed's benchmark suite/);
  assert.match(usage, /\n {2}npm run bench {3,}# everything/, 'indentation inside the comment is kept');
  assert.doesNotMatch(usage, /^\s*\*/m, 'no comment marks left');
});

for (const tool of TOOLS) {
  test(`${tool} --help prints its usage; an unknown flag exits 2 and says which, without a stack trace`, async () => {
    const help = await runTool(tool, ['--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.equal(help.stdout, usageOf(resolve(root, tool)));
    const wrong = await runTool(tool, ['--no-such-flag']);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /Unknown option '--no-such-flag'/);
    assert.match(wrong.stderr, /--help/);
    assert.doesNotMatch(wrong.stderr, /\n\s+at /, 'no stack trace');
  });
}

test('bench/run.ts --render of a missing or foreign file exits 2 and says why, without a stack trace', async () => {
  const missing = await runTool('bench/run.ts', ['--render', 'bench/results/no-such-run.json', '--no-write']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--render .*no-such-run\.json: no such file/);
  assert.doesNotMatch(missing.stderr, /\n\s+at /, 'no stack trace');
  const foreign = await runTool('bench/run.ts', ['--render', 'package.json', '--no-write']);
  assert.equal(foreign.code, 2);
  assert.match(foreign.stderr, /--render .*package\.json: not a saved run/);
  assert.doesNotMatch(foreign.stderr, /\n\s+at /, 'no stack trace');
});
