/**
 * Micro-benchmark of `PlainChunkScanner.scan` (src/providers/openai-chunk-scan.ts): nanoseconds
 * per stream event for streams shaped like real upstream ones, scanned as a stream's reader
 * scans them (a new scanner per stream, each event a range of one read's bytes).
 *
 *   node bin/run-ts.mjs bench/micro/chunk-scan.ts [--baseline FILE] [--rounds 9] [--milliseconds 200]
 *
 * With `--baseline`, another version of the scanner (a copy of the file, e.g. the committed one:
 * `git show HEAD:src/providers/openai-chunk-scan.ts > /tmp/chunk-scan-head.ts`) is measured in
 * the same process, the two alternating round by round, and the table gives each one's median
 * and the median of the per-round ratios. The machine running it is usually shared and noisy:
 * only ratios within one run mean much. Events the two versions answer differently (a version
 * that changed what is plain) are listed first.
 */
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { PlainChunkScanner } from '../../src/providers/openai-chunk-scan.ts';
import { format, median } from '../lib/stats.ts';
import { scratchDirectory } from '../lib/children.ts';

interface Scanner {
  scan(bytes: Uint8Array, start: number, end: number): number;
}

type ScannerClass = new () => Scanner;

interface Version {
  name: string;
  Scanner: ScannerClass;
}

/** Events of one stream in one buffer, framed as an upstream sends them. */
interface Stream {
  name: string;
  bytes: Buffer;
  /** `[start, end)` of each event's data in `bytes`. */
  ranges: ReadonlyArray<readonly [number, number]>;
}

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '9' },
    milliseconds: { type: 'string', default: '200' },
  },
});
const rounds = Number(values.rounds);
const roundNanoseconds = Number(values.milliseconds) * 1e6;

const HEAD =
  '{"id":"chatcmpl-B9xQeZ7rTnW3kLmP0aHs2vUyCdEfG","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini",' +
  '"service_tier":"default","system_fingerprint":"fp_f85bea6784"';

/** OpenAI's usual content chunk (`stream_options.include_usage` on, so every chunk has `"usage":null`). */
const chunk = (delta: object, finishReason: string | null = null, logprobs: unknown = null) =>
  `${HEAD},"choices":[{"index":0,"delta":${JSON.stringify(delta)},"logprobs":${JSON.stringify(logprobs)},"finish_reason":${JSON.stringify(finishReason)}}],"usage":null}`;

const USAGE = `${HEAD},"choices":[],"usage":{"prompt_tokens":19,"completion_tokens":31,"total_tokens":50}}`;

const WORDS = (
  'With| a| gentle| breeze|,| the| café| on| the| corner| opened| its| doors|.\n\n|The| owner|,| "Mia|",| said|:| “|Good| morning|!”| ' +
  'and| poured| the| first| coffee|.'
).split('|');

/** Role chunk, 31 content chunks (escapes and non-ASCII among them), finish chunk, usage chunk: 34 events. */
const contentStream = [
  chunk({ role: 'assistant', content: '', refusal: null }),
  ...WORDS.slice(0, 31).map((word) => chunk({ content: word })),
  chunk({}, 'stop'),
  USAGE,
];

const ARGUMENT_PARTS = ['{"', 'location', '":"', 'Paris', ',', ' France', '","', 'unit', '":"', 'c', 'elsius', '"}'];
const toolCallStream = [
  chunk({
    role: 'assistant',
    content: null,
    tool_calls: [{ index: 0, id: 'call_Xk2pQw9rTz', type: 'function', function: { name: 'get_weather', arguments: '' } }],
    refusal: null,
  }),
  ...ARGUMENT_PARTS.map((part) => chunk({ tool_calls: [{ index: 0, function: { arguments: part } }] })),
  chunk({}, 'tool_calls'),
  USAGE,
];

/** `logprobs: true`: the bytes after the content string differ on every chunk. */
const logprobsStream = [
  chunk({ role: 'assistant', content: '', refusal: null }, null, { content: [], refusal: null }),
  ...WORDS.slice(0, 31).map((word, index) =>
    chunk({ content: word }, null, {
      content: [{ token: word, logprob: -0.0001 * (index + 1), bytes: [...Buffer.from(word)], top_logprobs: [] }],
      refusal: null,
    }),
  ),
  chunk({}, 'stop'),
  USAGE,
];

function framed(name: string, events: readonly string[]): Stream {
  const before = 'data: ';
  let text = '';
  const ranges: Array<readonly [number, number]> = [];
  for (const event of events) {
    const start = Buffer.byteLength(text + before);
    text += `${before}${event}\n\n`;
    ranges.push([start, start + Buffer.byteLength(event)]);
  }
  return { name, bytes: Buffer.from(text), ranges };
}

const streams = [
  framed('content', contentStream),
  // Only the lines that resume (all but the first scanned whole): what a plain chunk costs.
  framed('content chunks only', contentStream.slice(1, -2)),
  framed('tool-call arguments', toolCallStream),
  framed('logprobs', logprobsStream),
];

/** Scans a stream `times` times, each with a new scanner; the sum keeps the work observable. */
function scanStream(Scanner: ScannerClass, stream: Stream, times: number): number {
  let sum = 0;
  for (let time = 0; time < times; time += 1) {
    const scanner = new Scanner();
    for (const [start, end] of stream.ranges) sum += scanner.scan(stream.bytes, start, end);
  }
  return sum;
}

/** Nanoseconds per event of `times` scans of the stream. */
function measure(Scanner: ScannerClass, stream: Stream, times: number): number {
  const started = process.hrtime.bigint();
  const sum = scanStream(Scanner, stream, times);
  const elapsed = Number(process.hrtime.bigint() - started);
  if (Number.isNaN(sum)) throw new Error('unreachable');
  return elapsed / (times * stream.ranges.length);
}

const versions: Version[] = [];
if (values.baseline !== undefined) {
  // Imported as an ES module wherever it lies (a `.ts` outside a `"type": "module"` package would load as CommonJS).
  const directory = scratchDirectory('chunk-scan-');
  const copy = join(directory, 'baseline.mts');
  copyFileSync(values.baseline, copy);
  const module = (await import(pathToFileURL(copy).href)) as { PlainChunkScanner: ScannerClass };
  rmSync(directory, { recursive: true });
  versions.push({ name: 'baseline', Scanner: module.PlainChunkScanner });
}
versions.push({ name: 'current', Scanner: PlainChunkScanner });

for (const stream of streams) {
  const answers = versions.map(({ Scanner }) => {
    const scanner = new Scanner();
    return stream.ranges.map(([start, end]) => scanner.scan(stream.bytes, start, end)).join(',');
  });
  // A version that changes what is plain (finish chunks became plain after this benchmark was
  // written) does different work on those events: said, and measured anyway.
  const [first, ...others] = answers.map((answer) => answer.split(','));
  for (const other of others) {
    const differing = (first as string[]).flatMap((answer, index) => (answer === other[index] ? [] : [index]));
    if (differing.length > 0) console.warn(`${stream.name}: the versions answer differently for events ${differing.join(', ')} (of ${first?.length})`);
  }
}

console.log(`node ${process.version}, ${rounds} rounds of ~${values.milliseconds} ms per version and stream\n`);
console.log(['stream', 'events', ...versions.map(({ name }) => `${name} ns/event`), ...(versions.length > 1 ? ['current / baseline'] : [])].join(' | '));
for (const stream of streams) {
  // Warm-up (and calibration): enough scans for the optimizing compiler to settle on every version.
  const times = versions.map(({ Scanner }) => {
    scanStream(Scanner, stream, 20_000);
    const perEvent = measure(Scanner, stream, 5_000);
    return Math.max(1, Math.round(roundNanoseconds / (perEvent * stream.ranges.length)));
  });
  const samples = versions.map((): number[] => []);
  const ratios: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    // Alternate which version goes first, so drift in the machine's load does not favour one.
    const order = round % 2 === 0 ? versions.map((_, index) => index) : versions.map((_, index) => versions.length - 1 - index);
    const results: number[] = [];
    for (const index of order) results[index] = measure((versions[index] as Version).Scanner, stream, times[index] as number);
    results.forEach((result, index) => samples[index]?.push(result));
    if (versions.length > 1) ratios.push((results[1] as number) / (results[0] as number));
  }
  const cells = [stream.name, String(stream.ranges.length), ...samples.map((perRound) => format(median(perRound), 0))];
  if (versions.length > 1) cells.push(format(median(ratios), 2));
  console.log(cells.join(' | '));
}
