/**
 * Micro-benchmark of one upstream call as the gateway sends it: Seed's `postJson` and whole-body
 * read (src/providers/upstream-call.ts: undici's dispatcher with Seed's own handler) against
 * undici's `request` API with `body.text()` (what Seed used before), each parsing the answer,
 * against the simulator in its own process on loopback, non-streaming and streaming.
 *
 *   node bin/run-ts.mjs bench/micro/upstream-call.ts [--rounds 9] [--milliseconds 1500] [--in-flight 50]
 *
 * Each round runs both ways for `--milliseconds` each, alternating which goes first, with
 * `--in-flight` calls at once on one undici Pool per way; the table gives CPU µs per call
 * (`process.cpuUsage` of this process, so the simulator's share is out) and the median of the
 * per-round ratios. The machine is usually shared and noisy: only ratios within one run mean much.
 */
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { CallAbort } from '../../src/abort.ts';
import { decodedBody, postJson, readJsonText, type BodyDecoder } from '../../src/providers/http.ts';
import { format, median } from '../lib/stats.ts';
import { startSimulator } from '../lib/targets.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '9' },
    milliseconds: { type: 'string', default: '1500' },
    'in-flight': { type: 'string', default: '50' },
  },
});
const rounds = Number(values.rounds);
const milliseconds = Number(values.milliseconds);
const inFlight = Number(values['in-flight']);
for (const [name, value] of [['rounds', rounds], ['milliseconds', milliseconds], ['in-flight', inFlight]] as const) {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name}: expected a positive whole number`);
}

const BODY = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 32 };
const HEADERS = { 'content-type': 'application/json', authorization: 'Bearer sk-bench-simulator' };
const PATH = '/v1/chat/completions';

/** Counts the reads of a streamed body: the decoding itself is the same either way. */
class ReadCounter implements BodyDecoder<number> {
  readonly complete = false;
  read(bytes: Uint8Array, batch: number[]): void {
    batch.push(bytes.length);
  }
  end(): void {}
}

type Way = (stream: boolean) => Promise<void>;

const simulator = await startSimulator();
const pools = { request: new Pool(simulator.url, { connections: 256 }), seed: new Pool(simulator.url, { connections: 256 }) };

const ways: Record<'request' | 'seed', Way> = {
  async request(stream) {
    const signal = new CallAbort();
    const response = await pools.request.request({
      path: PATH,
      method: 'POST',
      headers: HEADERS,
      body: JSON.stringify(stream ? { ...BODY, stream: true } : BODY),
      signal,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    if (response.statusCode !== 200) throw new Error(`simulator answered ${response.statusCode}`);
    if (stream) for await (const read of response.body) void read;
    else JSON.parse(await response.body.text());
  },
  async seed(stream) {
    const signal = new CallAbort();
    const response = await postJson({
      dispatcher: pools.seed,
      url: `${simulator.url}${PATH}`,
      headers: HEADERS,
      body: stream ? { ...BODY, stream: true } : BODY,
      signal,
      timeoutMs: 30_000,
      label: 'simulator',
    });
    if (response.status !== 200) throw new Error(`simulator answered ${response.status}`);
    if (stream) for await (const batch of decodedBody(response, signal, new ReadCounter())) void batch;
    else await readJsonText(response, 'simulator');
  },
};

async function measure(way: Way, stream: boolean, durationMs: number): Promise<number> {
  let calls = 0;
  const end = Date.now() + durationMs;
  const before = process.cpuUsage();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (Date.now() < end) {
        await way(stream);
        calls += 1;
      }
    }),
  );
  const used = process.cpuUsage(before);
  return (used.user + used.system) / calls;
}

try {
  console.log(`# upstream call: CPU µs per call, ${rounds} rounds of ${milliseconds} ms a way, ${inFlight} in flight\n`);
  console.log('| shape | undici request API | Seed (upstream-call.ts) | Seed ÷ request, median of rounds |');
  console.log('|---|---|---|---|');
  for (const stream of [false, true]) {
    // Warm both ways up before anything counts.
    await measure(ways.request, stream, 1_000);
    await measure(ways.seed, stream, 1_000);
    const request: number[] = [];
    const seed: number[] = [];
    const ratios: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (['request', 'seed'] as const) : (['seed', 'request'] as const);
      const result = { request: 0, seed: 0 };
      for (const name of order) result[name] = await measure(ways[name], stream, milliseconds);
      request.push(result.request);
      seed.push(result.seed);
      ratios.push(result.seed / result.request);
    }
    console.log(
      `| ${stream ? 'streaming' : 'non-streaming'} | ${format(median(request), 1)} | ${format(median(seed), 1)} | ${format(median(ratios), 2)}× (${format(Math.min(...ratios), 2)}–${format(Math.max(...ratios), 2)}) |`,
    );
  }
} finally {
  await Promise.all([pools.request.close(), pools.seed.close()]);
  await simulator.stop();
}
