/**
 * Reading what valgrind's callgrind writes (bench/instructions.ts): each `callgrind_control
 * --dump` writes `<out-file>.N`, N counting up from 1, whose `totals:` line is the instructions
 * counted since the counters were last zeroed.
 */
import { readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The `totals:` of the newest dump named `callgrind.out.N` in `directory`; the file is removed
 * once read, or renamed to `keepAs` (for `callgrind_annotate`).
 */
export function takeLastDumpTotal(directory: string, keepAs?: string): number {
  const dumps = readdirSync(directory)
    .map((name) => /^callgrind\.out\.(\d+)$/.exec(name))
    .filter((match): match is RegExpExecArray => match !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]));
  const newest = dumps.at(-1);
  if (newest === undefined) throw new Error(`callgrind wrote no dump into ${directory}`);
  const file = join(directory, newest[0]);
  const total = /^totals: (\d+)$/m.exec(readFileSync(file, 'utf8'));
  if (total === null) throw new Error(`no totals line in ${file}`);
  if (keepAs === undefined) rmSync(file);
  else renameSync(file, keepAs);
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

/** One entry of the map `node --perf-basic-prof` writes (`/tmp/perf-PID.map`): JIT code and what it is. */
export interface PerfMapEntry {
  start: bigint;
  end: bigint;
  name: string;
}

/** Lines `START SIZE NAME` (hexadecimal), in the order V8 wrote them. */
export function parsePerfMap(text: string): PerfMapEntry[] {
  const entries: PerfMapEntry[] = [];
  for (const line of text.split('\n')) {
    const match = /^([0-9a-f]+) ([0-9a-f]+) (.+)$/i.exec(line);
    if (match === null) continue;
    const start = BigInt(`0x${match[1]}`);
    entries.push({ start, end: start + BigInt(`0x${match[2]}`), name: match[3] as string });
  }
  return entries;
}

/**
 * Self instructions per function from `callgrind_annotate --inclusive=no` output. Code callgrind
 * could not name (`???:0x…`) is named through `map` (V8 reuses freed code space, so the entry
 * written last that holds the address wins), else called `(unnamed code)`.
 */
export function selfCostByFunction(annotated: string, map: readonly PerfMapEntry[]): Map<string, number> {
  const costs = new Map<string, number>();
  let listing = false;
  for (const line of annotated.split('\n')) {
    if (line.includes('file:function')) {
      listing = true;
      continue;
    }
    if (!listing) continue;
    const match = /^\s*([\d,]+)\s+\([^)]*\)\s+(.+)$/.exec(line);
    if (match === null) continue;
    const cost = Number((match[1] as string).replaceAll(',', ''));
    const name = functionName((match[2] as string).trim(), map);
    costs.set(name, (costs.get(name) ?? 0) + cost);
  }
  return costs;
}

function functionName(entry: string, map: readonly PerfMapEntry[]): string {
  const address = /^\?\?\?:(0x[0-9a-f]+)(?:'\d+)? \[\?\?\?\]$/i.exec(entry);
  if (address === null) return entry.replace(/^\?\?\?:/, '').replace(/ \[[^\]]*\]$/, '');
  const at = BigInt(address[1] as string);
  for (let index = map.length - 1; index >= 0; index -= 1) {
    const candidate = map[index] as PerfMapEntry;
    if (candidate.start <= at && at < candidate.end) return candidate.name.replace(/ file:\/\/\S*?\/(?=(?:dist|src|bench|node_modules)\/)/, ' ');
  }
  return '(unnamed code)';
}
