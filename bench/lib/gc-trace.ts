/**
 * Reads what `node --trace-gc-nvp` prints: one line per collection, `[pid:isolate] T ms: key=value …`,
 * with `gc=s` for a scavenge and `promoted=` the bytes it moved to the old generation. A process
 * with worker threads prints its workers' collections too, each under its own isolate address;
 * the main thread's isolate is the first to print.
 */
import { readFileSync } from 'node:fs';
import { median } from './stats.ts';

export interface ScavengeTrace {
  promotedBytes: number;
  pauseMs: number;
}

const LINE = /^\[\d+:(0x[0-9a-f]+)\]\s+[\d.]+ ms: (.*)$/;

/** The main isolate's scavenges in `text` (whole lines; a partial last line is ignored). */
export function scavengesOf(text: string, mainIsolate?: string): { isolate: string | undefined; scavenges: ScavengeTrace[] } {
  let isolate = mainIsolate;
  const scavenges: ScavengeTrace[] = [];
  const lines = text.split('\n');
  // The text after the last newline is a line still being written (or nothing).
  lines.pop();
  for (const line of lines) {
    const match = LINE.exec(line);
    if (!match) continue;
    isolate ??= match[1];
    if (match[1] !== isolate) continue;
    const fields = new Map<string, string>();
    for (const pair of (match[2] as string).split(' ')) {
      const equals = pair.indexOf('=');
      if (equals > 0) fields.set(pair.slice(0, equals), pair.slice(equals + 1));
    }
    if (fields.get('gc') !== 's') continue;
    const promoted = Number(fields.get('promoted'));
    const pause = Number(fields.get('pause'));
    if (Number.isFinite(promoted) && Number.isFinite(pause)) scavenges.push({ promotedBytes: promoted, pauseMs: pause });
  }
  return { isolate, scavenges };
}

/**
 * A `--trace-gc-nvp` log that grows while a process runs: `mark()` notes where a measurement
 * starts, `since()` returns the main isolate's scavenges printed after the mark.
 */
export class GcTraceLog {
  #offset = 0;
  #isolate: string | undefined;

  constructor(private readonly file: string) {}

  #read(): string {
    try {
      return readFileSync(this.file, 'latin1');
    } catch {
      return '';
    }
  }

  mark(): void {
    const text = this.#read();
    // The main isolate prints from start-up, before any worker: learn it from the whole log.
    this.#isolate ??= scavengesOf(text).isolate;
    this.#offset = text.length;
  }

  since(): ScavengeTrace[] {
    const text = this.#read();
    const { isolate, scavenges } = scavengesOf(text.slice(this.#offset), this.#isolate);
    this.#isolate ??= isolate;
    return scavenges;
  }
}

/** Median bytes promoted per scavenge, or NaN without scavenges. */
export function medianPromotedBytes(scavenges: readonly ScavengeTrace[]): number {
  return scavenges.length === 0 ? Number.NaN : median(scavenges.map((scavenge) => scavenge.promotedBytes));
}
