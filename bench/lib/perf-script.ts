/**
 * Reads what `perf script` prints for a `perf record -e cpu-clock -g` of a Node process started
 * with `--perf-basic-prof` (which names JIT-compiled JavaScript in /tmp/perf-PID.map), and sums
 * it per thread and, on one thread, per owner: the nearest JavaScript function on each sample's
 * stack, and that function's area (a package, a folder of Seed's build, Node's internals).
 *
 * Unlike V8's `--cpu-prof`, which samples the event loop's stack on a timer whether or not the
 * thread is running, `cpu-clock` samples are taken only while a thread is on a CPU, and they see
 * the kernel. On a busy two-core machine the difference matters: a thread descheduled inside a
 * system call is charged to that call by `--cpu-prof` (docs/benchmark-log.md, 2026-12-05 (05:49–)).
 */

/** One stack frame: the symbol (a C++ name, `JS:*name url:line:col` for JavaScript) and its object. */
export interface PerfFrame {
  symbol: string;
  dso: string;
}

/** One sample: the thread it was taken on and its stack, the leaf first. */
export interface PerfSample {
  tid: number;
  frames: PerfFrame[];
}

/** A frame line: address, symbol (with `+0x…` offset, or `[unknown]`), then the object in parentheses. */
const FRAME = /^\s*[0-9a-f]+\s+(.*?)\s+\(([^()]*)\)\s*$/;
/** A sample's first line: `comm tid` and, depending on the fields asked for, more after them. */
const HEADER = /^(\S.*?)\s+(\d+)(?:\s|$)/;

/**
 * Parses `perf script -F comm,tid,ip,sym,dso` output (a header line per sample, then its frames,
 * then a blank line). Lines it does not understand are skipped.
 */
export function parsePerfScript(text: string): PerfSample[] {
  const samples: PerfSample[] = [];
  let current: PerfSample | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      current = null;
      continue;
    }
    if (current === null) {
      const header = HEADER.exec(line);
      if (header === null) continue;
      current = { tid: Number(header[2]), frames: [] };
      samples.push(current);
      continue;
    }
    const frame = FRAME.exec(line);
    if (frame !== null) current.frames.push({ symbol: (frame[1] as string).replace(/\+0x[0-9a-f]+$/, ''), dso: frame[2] as string });
  }
  return samples;
}

/** A JavaScript frame of `--perf-basic-prof`: `JS:` then a tier mark (`*` optimized, `^`, `~`), the name, and the script's URL with line and column. */
const JS_FRAME = /^JS:[*^~+]?(.*?)\s+(\S+):(\d+):\d+$/;

/** A JavaScript function as the reports name it: `name file:line`, paths shortened to the package or to src/ (dist/). */
export function jsFunctionOf(frame: PerfFrame): { name: string; url: string; line: number } | null {
  if (!frame.symbol.startsWith('JS:')) return null;
  const match = JS_FRAME.exec(frame.symbol);
  // wasm functions (undici's llhttp) and builtins without a script.
  if (match === null) return null;
  return { name: match[1] || '(anonymous)', url: shortUrl(match[2] as string), line: Number(match[3]) };
}

function shortUrl(url: string): string {
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) return url.slice(modules + 'node_modules/'.length);
  const seed = url.search(/\/(?:src|dist|bench)\//);
  if (seed >= 0) return url.slice(seed + 1);
  return url.replace(/^file:\/\//, '');
}

/** The area of a script: its package (`undici`, `@scope/name`), `node:` internals, or its folder of Seed's code (`dist/limits`). */
export function areaOfUrl(url: string): string {
  if (url.startsWith('node:')) return 'node: internals';
  const parts = url.split('/');
  if (parts[0] === 'src' || parts[0] === 'dist' || parts[0] === 'bench') return parts.length > 2 ? `${parts[0]}/${parts[1]}` : url;
  if (parts[0]?.startsWith('@')) return `${parts[0]}/${parts[1] ?? ''}`;
  return parts[0] ?? url;
}

/** Whether a frame is the kernel's. */
export function isKernel(frame: PerfFrame): boolean {
  return frame.dso === '[kernel.kallsyms]';
}

/** V8's garbage collector, by the C++ names of its phases. */
const GC_SYMBOL = /v8::internal::(?:Heap::|Scavenger|ScavengerCollector|MarkCompactCollector|MinorMarkCompact|MarkingVisitor|ConcurrentMarking|Sweeper|IncrementalMarking)/;

/**
 * Who a sample's CPU time is charged to: the nearest JavaScript function on the stack (native
 * code and the kernel run on its behalf), or, with none, what the stack is: GC, the kernel, or
 * native code (the event loop's own work, V8's runtime).
 */
export function ownerOf(sample: PerfSample): { area: string; fn: string } {
  for (const frame of sample.frames) {
    const fn = jsFunctionOf(frame);
    if (fn !== null) return { area: areaOfUrl(fn.url), fn: `${fn.name} ${fn.url}:${fn.line}` };
  }
  if (sample.frames.some((frame) => GC_SYMBOL.test(frame.symbol))) return { area: '(GC, no JS caller)', fn: '(GC, no JS caller)' };
  const leaf = sample.frames[0];
  if (leaf !== undefined && isKernel(leaf)) return { area: '(kernel, no JS caller)', fn: '(kernel, no JS caller)' };
  return { area: '(native, no JS caller)', fn: '(native, no JS caller)' };
}

/** What one thread spent, in samples: in all, in the kernel, in GC, and per owner area and function. */
export interface ThreadProfile {
  tid: number;
  samples: number;
  kernel: number;
  gc: number;
  areas: Map<string, number>;
  functions: Map<string, number>;
}

/** Sums the samples of thread `tid`. */
export function profileThread(samples: readonly PerfSample[], tid: number): ThreadProfile {
  const profile: ThreadProfile = { tid, samples: 0, kernel: 0, gc: 0, areas: new Map(), functions: new Map() };
  for (const sample of samples) {
    if (sample.tid !== tid) continue;
    profile.samples += 1;
    const leaf = sample.frames[0];
    if (leaf !== undefined && isKernel(leaf)) profile.kernel += 1;
    if (sample.frames.some((frame) => GC_SYMBOL.test(frame.symbol))) profile.gc += 1;
    const { area, fn } = ownerOf(sample);
    profile.areas.set(area, (profile.areas.get(area) ?? 0) + 1);
    profile.functions.set(fn, (profile.functions.get(fn) ?? 0) + 1);
  }
  return profile;
}

/** Samples per thread, most first. */
export function samplesByThread(samples: readonly PerfSample[]): Array<{ tid: number; samples: number }> {
  const counts = new Map<number, number>();
  for (const sample of samples) counts.set(sample.tid, (counts.get(sample.tid) ?? 0) + 1);
  return [...counts.entries()].map(([tid, count]) => ({ tid, samples: count })).sort((left, right) => right.samples - left.samples);
}

/**
 * What a thread other than the main one is, from its stacks: the ledger's insert worker (a
 * worker thread running JavaScript), V8's platform threads (concurrent GC and compilers), or
 * libuv's pool.
 */
export function threadKind(samples: readonly PerfSample[], tid: number): string {
  let javascript = 0;
  let platform = 0;
  let pool = 0;
  for (const sample of samples) {
    if (sample.tid !== tid) continue;
    for (const frame of sample.frames) {
      if (frame.symbol.startsWith('JS:')) {
        javascript += 1;
        break;
      }
      if (frame.symbol.includes('PlatformWorkerThread')) {
        platform += 1;
        break;
      }
      // libuv is linked into node: its pool threads run `worker` (threadpool.c) and `uv__work_*`.
      if (frame.symbol === 'worker' || frame.symbol.startsWith('uv__work')) {
        pool += 1;
        break;
      }
    }
  }
  if (javascript >= platform && javascript >= pool && javascript > 0) return 'worker thread (JavaScript)';
  if (platform >= pool && platform > 0) return 'V8 platform (GC, compiler)';
  if (pool > 0) return 'libuv pool';
  return 'other';
}

/**
 * Inclusive samples per frame name on the threads `tids`: each sample counts once for every
 * distinct function on its stack (JavaScript as `name file:line`, native and kernel code by
 * symbol), so a caller's count includes its callees'. For threads with no single owner worth
 * naming, such as the ledger's insert worker, whose time is mostly native (SQLite, V8's
 * deserializer, the kernel's writes).
 */
export function inclusiveFrames(samples: readonly PerfSample[], tids: ReadonlySet<number>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const sample of samples) {
    if (!tids.has(sample.tid)) continue;
    const seen = new Set<string>();
    for (const frame of sample.frames) {
      const fn = jsFunctionOf(frame);
      const name = fn !== null ? `${fn.name} ${fn.url}:${fn.line}` : isKernel(frame) ? `[kernel] ${frame.symbol}` : frame.symbol;
      if (seen.has(name)) continue;
      seen.add(name);
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
  }
  return counts;
}
