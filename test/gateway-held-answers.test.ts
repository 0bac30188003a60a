/**
 * The end of an answer waits for its record to be durable. The ledger's journal writes the calls
 * of a turn together at the turn's end (src/ledger/journal.ts) and gives the gateway a promise of
 * that write; until it settles the client must not have the end of its answer, or a process
 * killed in between would lose a call it answered. Here a sink holds that promise open at will:
 * each kind of answer (JSON, stream, embedding, refusal, upstream failure) must wait for it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startStack, type Stack } from './helpers/stack.ts';
import { waitFor } from './helpers/fuzz-http.ts';
import type { CallRecord } from '../src/ledger/types.ts';

/** A sink whose records stay "not yet durable" until `release`. */
class HoldingSink {
  readonly held: CallRecord[] = [];
  #release: (() => void) | null = null;
  #gate: Promise<void> = this.#close();

  record(call: CallRecord): Promise<void> {
    this.held.push(call);
    return this.#gate;
  }

  /** Lets every answer held so far go, and holds the next ones again. */
  release(): void {
    this.#release?.();
    this.#gate = this.#close();
  }

  #close(): Promise<void> {
    return new Promise<void>((resolve) => (this.#release = resolve));
  }
}

let stack: Stack;
const sink = new HoldingSink();

before(async () => {
  stack = await startStack({ start: { sinks: [sink] } });
});
after(async () => {
  sink.release();
  await stack.close();
});

const TURNS_TO_WAIT_MS = 150;

/** Resolves with `value` once `promise` settles, or with 'pending' after `ms`. */
async function stateAfter<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `body` to `path` and resolves with the whole answer (status and text). */
async function answer(path: string, body: unknown): Promise<{ status: number; text: string }> {
  const response = await request(`${stack.seed.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.statusCode, text: await response.body.text() };
}

/** Waits until the sink has been handed the `count`th record. */
async function recorded(count: number): Promise<CallRecord> {
  await waitFor(() => sink.held.length >= count, `record ${count}`);
  return sink.held[count - 1]!;
}

async function assertHeldThenAnswered(path: string, body: unknown, expect: (result: { status: number; text: string }, record: CallRecord) => void) {
  const count = sink.held.length + 1;
  const answering = answer(path, body);
  const record = await recorded(count);
  assert.equal(await stateAfter(answering, TURNS_TO_WAIT_MS), 'pending', `the answer to call ${record.id} (${record.status}) left before its record was durable`);
  sink.release();
  const result = await answering;
  expect(result, record);
}

const messages = [{ role: 'user', content: 'hello' }];

test('a JSON answer waits for its record', async () => {
  await assertHeldThenAnswered('/v1/chat/completions', { model: 'gpt-4o-mini', messages }, (result, record) => {
    assert.equal(result.status, 200, result.text);
    assert.equal(record.status, 'ok');
    assert.equal((JSON.parse(result.text) as { object: string }).object, 'chat.completion');
  });
});

test('a stream ends only once its record is durable', async () => {
  // (This one arrives in one upstream read: its chunks wait with its end, to leave in one write.)
  await assertHeldThenAnswered('/v1/chat/completions', { model: 'gpt-4o-mini', messages, stream: true }, (result, record) => {
    assert.equal(result.status, 200);
    assert.equal(record.stream, true);
    assert.equal(record.status, 'ok');
    assert.match(result.text, /"chat\.completion\.chunk"/);
    assert.match(result.text, /data: \[DONE\]\n\n$/);
  });
});

test('a stream paced by its upstream sends its chunks as they come; only its end waits', async () => {
  stack.simulator.setFaults({ model: 'gpt-4o-mini', faults: [{ kind: 'slow-stream', tokensPerSecond: 50 }] });
  try {
    const count = sink.held.length + 1;
    const response = await request(`${stack.seed.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages, stream: true, max_tokens: 6 }),
    });
    assert.equal(response.statusCode, 200, 'the headers and first chunk left before the end');
    let text = '';
    response.body.setEncoding('utf8');
    const ended = new Promise<void>((resolve, reject) => {
      response.body.on('data', (chunk: string) => (text += chunk));
      response.body.on('end', resolve);
      response.body.on('error', reject);
    });
    const record = await recorded(count);
    assert.equal(record.stream, true);
    assert.equal(await stateAfter(ended, TURNS_TO_WAIT_MS), 'pending', 'the stream ended before its record was durable');
    assert.match(text, /"chat\.completion\.chunk"/, 'the content reached the client while the end waited');
    assert.doesNotMatch(text, /\[DONE\]/);
    sink.release();
    await ended;
    assert.match(text, /data: \[DONE\]\n\n$/);
  } finally {
    stack.simulator.setFaults({ model: 'gpt-4o-mini', faults: [] });
  }
});

test('an embedding waits for its record', async () => {
  await assertHeldThenAnswered('/v1/embeddings', { model: 'text-embedding-3-small', input: 'hello' }, (result) => {
    assert.equal(result.status, 200, result.text);
  });
});

test('a refusal (an unknown model) waits for its record', async () => {
  await assertHeldThenAnswered('/v1/chat/completions', { model: 'no-such-model', messages }, (result, record) => {
    assert.equal(result.status, 404, result.text);
    assert.equal(record.errorCode, 'model_not_found');
    assert.equal((JSON.parse(result.text) as { error: { code: string } }).error.code, 'model_not_found');
  });
});

test('an upstream failure waits for its record', async () => {
  // The upstream refuses the request (a 400 is not retried): the gateway relays the refusal.
  stack.simulator.setFaults({ model: 'gpt-4o-mini', faults: [{ kind: '400' }] });
  try {
    await assertHeldThenAnswered('/v1/chat/completions', { model: 'gpt-4o-mini', messages }, (result, record) => {
      assert.equal(record.status, 'error');
      assert.equal(result.status, 400, result.text);
      assert.equal(typeof (JSON.parse(result.text) as { error: { message: string } }).error.message, 'string');
    });
  } finally {
    stack.simulator.setFaults({ model: 'gpt-4o-mini', faults: [] });
  }
});

test('a stream that fails after its first bytes ends with its error event only once its record is durable', async () => {
  stack.simulator.setFaults({ model: 'gpt-4o-mini', faults: [{ kind: 'error-mid-stream', afterChunks: 2 }] });
  try {
    await assertHeldThenAnswered('/v1/chat/completions', { model: 'gpt-4o-mini', messages, stream: true }, (result, record) => {
      assert.equal(record.status, 'error');
      assert.equal(result.status, 200);
      assert.match(result.text, /data: \{"error":/);
    });
  } finally {
    stack.simulator.setFaults({ model: 'gpt-4o-mini', faults: [] });
  }
});
