/**
 * Reading what valgrind's callgrind writes (bench/instructions.ts): each `callgrind_control
 * --dump` writes `<out-file>.N`, N counting up from 1, whose `totals:` line is the instructions
 * counted since the counters were last zeroed.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** The `totals:` of the newest dump named `callgrind.out.N` in `directory`; the file is removed once read. */
export function takeLastDumpTotal(directory: string): number {
  const dumps = readdirSync(directory)
    .map((name) => /^callgrind\.out\.(\d+)$/.exec(name))
    .filter((match): match is RegExpExecArray => match !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]));
  const newest = dumps.at(-1);
  if (newest === undefined) throw new Error(`callgrind wrote no dump into ${directory}`);
  const file = join(directory, newest[0]);
  const total = /^totals: (\d+)$/m.exec(readFileSync(file, 'utf8'));
  if (total === null) throw new Error(`no totals line in ${file}`);
  rmSync(file);
  return Number(total[1]);
}

/**
 * Of `wanted` Seed settings, those the build whose config schema is `schemaSource` knows (an
 * older baseline may refuse a newer key); `configKeyOf` names each setting's key in the schema.
 */
export function knownSettings<Settings extends Record<string, number>>(
  wanted: Settings,
  schemaSource: string,
  configKeyOf: (setting: keyof Settings & string) => string,
): Partial<Settings> {
  return Object.fromEntries(Object.entries(wanted).filter(([name]) => new RegExp(`\\b${configKeyOf(name)}\\s*:`).test(schemaSource))) as Partial<Settings>;
}
