/**
 * Summarizes a V8 `.cpuprofile` (from `node --cpu-prof`): self time per function, inclusive
 * time per function under `src/`, and self time per area (a package under node_modules, a
 * folder of src/, Node internals, GC); and writes its stacks in the folded format flame graph
 * tools read (`foldedStacks`).
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  percent: number;
}

export interface ProfileSummary {
  /** Sampled time excluding idle, in ms. */
  busyMs: number;
  topSelf: ProfileEntry[];
  topAreas: ProfileEntry[];
  topSeedInclusive: ProfileEntry[];
}

/** Where Seed's own code lives in a profile: `src/` through tsx, `dist/` when run from the build. */
const SEED_CODE = /\/(?:src|dist)\//;

/** The offset of `src/` or `dist/` in a URL of Seed's own code (not a dependency's), or -1. */
function seedCodeIndex(url: string): number {
  if (url.includes('node_modules/')) return -1;
  return url.search(SEED_CODE);
}

function shortUrl(url: string): string {
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) return url.slice(modules + 'node_modules/'.length);
  const source = seedCodeIndex(url);
  if (source >= 0) return url.slice(source + 1);
  return url.replace(/^file:\/\//, '');
}

function areaOf(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const parts = url.slice(modules + 'node_modules/'.length).split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? url);
  }
  const source = seedCodeIndex(url);
  if (source >= 0) {
    const parts = url.slice(source + 1).split('/');
    return parts.length > 2 ? `${parts[0]}/${parts[1]}/` : `${parts.join('/')}`;
  }
  if (url.startsWith('node:')) return 'node: internals';
  return shortUrl(url);
}

/** A frame as the reports name it: function, then its package file with line, or its src/ (dist/) file. */
export function frameLabel(frame: { functionName: string; url: string; lineNumber: number }): string {
  // Line numbers of Seed's files are those of transpiled output, not of the .ts source.
  const line = seedCodeIndex(frame.url) >= 0 || !frame.url ? '' : `:${frame.lineNumber + 1}`;
  return `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}${line}`.trim();
}

function top(totals: Map<string, number>, busyMs: number, count: number): ProfileEntry[] {
  return [...totals.entries()]
    .sort((left, right) => right[1] - left[1])
    .slice(0, count)
    .map(([name, ms]) => ({ name, percent: (100 * ms) / busyMs }));
}

/** A profile with its nodes by id and each node's parent, as both readers below walk it. */
interface LoadedProfile {
  profile: CpuProfile;
  byId: Map<number, ProfileNode>;
  parent: Map<number, number>;
}

function loadProfile(file: string): LoadedProfile {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  return { profile, byId, parent };
}

/** Calls `visit` for each busy (not idle) sample at or after `fromMicroseconds`, with its node and its time in µs. */
function forEachBusySample(
  { profile, byId }: LoadedProfile,
  fromMicroseconds: number,
  visit: (node: ProfileNode, microseconds: number) => void,
): void {
  let timestamp = profile.startTime;
  profile.samples.forEach((sample, index) => {
    const microseconds = profile.timeDeltas[index] ?? 0;
    timestamp += microseconds;
    const node = byId.get(sample);
    if (!node || timestamp < fromMicroseconds || node.callFrame.functionName === '(idle)') return;
    visit(node, microseconds);
  });
}

/**
 * `fromMicroseconds`: samples before this monotonic timestamp (µs, same clock as
 * `process.hrtime`) are ignored, so start-up (module loading, compilation) stays out.
 */
export function summarizeProfile(file: string, options: { count?: number; fromMicroseconds?: number } = {}): ProfileSummary {
  const count = options.count ?? 15;
  const loaded = loadProfile(file);
  const { byId, parent } = loaded;

  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  const seedInclusive = new Map<string, number>();
  let busyMs = 0;
  forEachBusySample(loaded, options.fromMicroseconds ?? 0, (node, microseconds) => {
    const milliseconds = microseconds / 1_000;
    busyMs += milliseconds;
    const name = frameLabel(node.callFrame);
    self.set(name, (self.get(name) ?? 0) + milliseconds);
    const area = areaOf(node.callFrame);
    areas.set(area, (areas.get(area) ?? 0) + milliseconds);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)?.callFrame;
      if (!frame || seedCodeIndex(frame.url) < 0) continue;
      const key = frameLabel(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      seedInclusive.set(key, (seedInclusive.get(key) ?? 0) + milliseconds);
    }
  });
  return {
    busyMs,
    topSelf: top(self, busyMs, count),
    topAreas: top(areas, busyMs, count),
    topSeedInclusive: top(seedInclusive, busyMs, count),
  };
}

/**
 * The profile's busy samples (from `fromMicroseconds` on) as folded stacks, the input of flame
 * graph tools (`flamegraph.pl`, inferno, speedscope): one line per distinct stack, its frames
 * from the root down joined by `;`, then a space and the stack's time in microseconds. Lines come
 * sorted, so two profiles' files can be diffed (`difffolded.pl`).
 *
 * @example
 * writeFileSync('seed.folded', foldedStacks('seed.cpuprofile', { fromMicroseconds: loadStart }));
 * // flamegraph.pl seed.folded > seed.svg   (or open seed.folded in speedscope)
 */
export function foldedStacks(file: string, options: { fromMicroseconds?: number } = {}): string {
  const loaded = loadProfile(file);
  const { byId, parent } = loaded;
  const stackOf = new Map<number, string>();
  const stack = (id: number): string => {
    let folded = stackOf.get(id);
    if (folded === undefined) {
      const frames: string[] = [];
      // The root node is V8's `(root)`: left out, as flame graph tools draw their own root.
      for (let at: number | undefined = id; at !== undefined && parent.has(at); at = parent.get(at)) {
        frames.push(frameLabel(byId.get(at)!.callFrame).replaceAll(';', ':'));
      }
      folded = frames.reverse().join(';');
      stackOf.set(id, folded);
    }
    return folded;
  };
  const totals = new Map<string, number>();
  forEachBusySample(loaded, options.fromMicroseconds ?? 0, (node, microseconds) => {
    const key = stack(node.id);
    totals.set(key, (totals.get(key) ?? 0) + microseconds);
  });
  return [...totals.entries()]
    .filter(([, microseconds]) => microseconds > 0)
    .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
    .map(([key, microseconds]) => `${key} ${Math.round(microseconds)}\n`)
    .join('');
}
