/**
 * CPU per streamed call with a paced upstream, Seed against the minimal undici proxy: the
 * `paced` scenario of `npm run bench` (bench/scenarios/paced.ts), alone and with its own settings.
 *
 *   node bin/run-ts.mjs bench/paced.ts [--tokens-per-second 500] [--connections 50]
 *       [--calls 2000] [--rounds 3] [--json]
 *
 * Prints a line per round and target, then the section `npm run bench` writes for it: the median
 * CPU per call of each and Seed ÷ the proxy, round by round.
 */
import './lib/client-flags.ts';
import { rmSync } from 'node:fs';
import { pacedSection } from './lib/report.ts';
import { runPaced, type PacedResult } from './scenarios/paced.ts';
import { parseCommandLine } from './lib/command-line.ts';
import { scratchDirectory } from './lib/children.ts';

const { values } = parseCommandLine(import.meta.filename, {
  options: {
    'tokens-per-second': { type: 'string', default: '500' },
    connections: { type: 'string', default: '50' },
    calls: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
});
const tokensPerSecond = Number(values['tokens-per-second']);
const connections = Number(values.connections);
const calls = Number(values.calls);
const rounds = Number(values.rounds);
if (!Number.isFinite(tokensPerSecond) || tokensPerSecond <= 0) throw new Error('--tokens-per-second: expected a positive number');
for (const [name, value] of [['connections', connections], ['calls', calls], ['rounds', rounds]] as const) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name}: expected a whole number of at least 1`);
}

const workDirectory = scratchDirectory('seed-paced-');
let result: PacedResult;
try {
  result = await runPaced({ tokensPerSecond, connections, calls, rounds, workDirectory, log: values.json ? () => undefined : (line) => console.error(line) });
} finally {
  rmSync(workDirectory, { recursive: true, force: true });
}
console.log(values.json ? JSON.stringify(result, null, 2) : `\n${pacedSection(result)}`);
