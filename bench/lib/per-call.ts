/**
 * What the per-call counters share (bench/instructions.ts, bench/syscalls.ts): which targets and
 * modes a run measures, the run's directory, simulator and baseline build, and serving an exact
 * number of calls to one target.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool } from 'undici';
import { countedCalls } from './load.ts';
import { startSimulator, type MeasuredServer } from './targets.ts';
import { prepareBaseline, removeBaseline } from '../scenarios/ab.ts';
import { requestFor } from '../scenarios/overhead.ts';
import { scratchDirectory } from './children.ts';

export type CountedTarget = 'seed' | 'undici' | 'baseline';
export type CountedMode = 'json' | 'stream';

/**
 * The targets and modes of `--targets`, `--modes` and `--baseline`: `baseline` (Seed from another
 * build) is added when a ref is given, and needs one. Throws on a name it does not know.
 */
export function targetsAndModes(values: { targets: string; modes: string; baseline?: string | undefined }): { targets: CountedTarget[]; modes: CountedMode[] } {
  const targets = values.targets.split(',').map((target) => target.trim());
  for (const target of targets) {
    if (target !== 'seed' && target !== 'undici' && target !== 'baseline') throw new Error(`--targets: seed, undici or baseline, got ${target}`);
  }
  if (values.baseline !== undefined && !targets.includes('baseline')) targets.push('baseline');
  if (targets.includes('baseline') && values.baseline === undefined) throw new Error('--targets baseline needs --baseline GIT_REF');
  const modes = values.modes.split(',').map((mode) => mode.trim());
  for (const mode of modes) if (mode !== 'json' && mode !== 'stream') throw new Error(`--modes: json or stream, got ${mode}`);
  return { targets: targets as CountedTarget[], modes: modes as CountedMode[] };
}

/** Each named option a whole number of at least 1, or an error naming the option. */
export function wholeNumbers<Name extends string>(values: Readonly<Record<Name, string>>): Record<Name, number> {
  const numbers = {} as Record<Name, number>;
  for (const name of Object.keys(values) as Name[]) {
    const value = Number(values[name]);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name}: expected a whole number of at least 1`);
    numbers[name] = value;
  }
  return numbers;
}

/** `count` calls of `mode` with `concurrency` in flight; every one must succeed (a failure would count other work). */
export function serveCounted(input: { pool: Pool; server: MeasuredServer; mode: CountedMode; count: number; concurrency: number }): Promise<void> {
  const { pool, server } = input;
  const request = requestFor({ origin: server.url, headers: server.headers }, input.mode === 'stream');
  return countedCalls({ pool, request, count: input.count, concurrency: input.concurrency, name: server.name, describe: () => server.stderrTail() });
}

/**
 * Runs `measure` for each target in turn against one simulator, in a fresh work directory (removed
 * afterwards), with the baseline's build checked out beside it when `baseline` is given (as `npm
 * run bench -- --only ab` does): `root` is that checkout for the target `baseline`, else undefined
 * (this checkout).
 */
export async function forEachTarget(input: {
  targets: readonly CountedTarget[];
  baseline: string | undefined;
  workPrefix: string;
  measure: (target: CountedTarget, context: { simulatorUrl: string; root: string | undefined; workDirectory: string }) => Promise<void>;
}): Promise<void> {
  const workDirectory = scratchDirectory(input.workPrefix);
  const baselineRoot = join(workDirectory, 'baseline-checkout');
  try {
    if (input.baseline !== undefined) prepareBaseline(input.baseline, baselineRoot, (line) => console.error(line));
    const simulator = await startSimulator();
    try {
      for (const target of input.targets) {
        await input.measure(target, { simulatorUrl: simulator.url, root: target === 'baseline' ? baselineRoot : undefined, workDirectory });
      }
    } finally {
      await simulator.stop();
    }
  } finally {
    removeBaseline(baselineRoot);
    rmSync(workDirectory, { recursive: true, force: true });
  }
}
