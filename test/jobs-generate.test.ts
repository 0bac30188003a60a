/**
 * Generation jobs (src/jobs/): prompt files, the runner against a real gateway in front of the
 * simulator (batch pacing, purpose refusal, lineage into a dataset), its retry rules against a
 * scripted gateway, and `seed jobs generate` as a user runs it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { datasetFromJob, parsePrompts, runGenerateJob, type ItemResult } from '../src/jobs/index.ts';
import { isSeedError } from '../src/errors.ts';
import { ANONYMOUS_CALLER } from '../src/gateway/hooks.ts';
import { openStore, type Store } from '../src/store/index.ts';
import { provenance, startStoringStack } from './datasets-fixtures.ts';
import { standardConfig, startStack, type Stack } from './helpers/stack.ts';

const ROOT = resolve(import.meta.dirname, '..');

function prompts(count: number): ReturnType<typeof parsePrompts> {
  return parsePrompts(Array.from({ length: count }, (_, index) => JSON.stringify({ id: `p${index}`, prompt: `Write fact ${index}.` })).join('\n'));
}

describe('prompt files', () => {
  test('a line is messages or a prompt with an optional system message; the line number is the default id', () => {
    const items = parsePrompts(
      [
        '{"id":"a","prompt":"Name a colour.","system":"Be brief."}',
        '',
        '{"messages":[{"role":"user","content":"Hi"}]}',
        '{"id":7,"prompt":"Seven"}',
      ].join('\n'),
    );
    assert.deepEqual(items, [
      { id: 'a', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Name a colour.' }] },
      { id: '3', messages: [{ role: 'user', content: 'Hi' }] },
      { id: '7', messages: [{ role: 'user', content: 'Seven' }] },
    ]);
  });

  test('every problem names its file and line, before any call', () => {
    const cases: Array<[string, RegExp]> = [
      ['{"prompt":"ok"}\nnot json', /^p\.jsonl:2: not valid JSON/],
      ['[1,2]', /p\.jsonl:1: expected a JSON object/],
      ['{"id":"x","prompt":"a"}\n{"id":"x","prompt":"b"}', /p\.jsonl:2: id "x" appears twice/],
      ['{"messages":[]}', /"messages" must be a non-empty array/],
      ['{"messages":[{"content":"no role"}]}', /messages\[0\] must be an object with a string "role"/],
      ['{"prompt":"a","messages":[{"role":"user","content":"b"}]}', /not both/],
      ['{"id":true,"prompt":"a"}', /"id" must be a string or a number/],
      ['{"text":"a"}', /expected "messages" \(an array\) or "prompt"/],
      ['\n\n', /no prompts/],
    ];
    for (const [text, expected] of cases) {
      assert.throws(
        () => parsePrompts(text, 'p.jsonl'),
        (error: unknown) => isSeedError(error) && error.code === 'invalid_request' && expected.test(error.message),
        text,
      );
    }
  });
});

describe('a job through the gateway', () => {
  let stack: Stack;
  let store: Store;
  let storing: Awaited<ReturnType<typeof startStoringStack>>;
  before(async () => {
    store = await openStore({ url: 'sqlite::memory:' });
    storing = await startStoringStack({
      store,
      // The teacher's upstream allows 5 requests a second (Azure-style short windows): far less
      // than the job's 8 calls in flight, so the upstream answers 429 unless calls wait. An
      // interactive call waits out no upstream retry-after here (maxRetryAfterMs 0); only the
      // job's batch priority makes the gateway wait.
      simulator: { models: { 'gpt-4o-mini': { limits: { rpm: 300, windowMs: 1_000 } } } },
      config: (url) => standardConfig(url).replace('retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 50 }', 'retry: { maxAttempts: 20, initialDelayMs: 5, maxDelayMs: 50, maxRetryAfterMs: 0 }'),
    });
    stack = storing.stack;
  });
  after(async () => {
    await storing?.close();
    await store?.close();
  });

  test('at batch priority the gateway paces the job to the upstream quota: every prompt answered, no 429 reaches the job', async () => {
    const results: ItemResult[] = [];
    const items = prompts(20);
    const upstreamBefore = (await (await fetch(`${stack.simulator.url}/_sim/stats`)).json()) as { rateLimited: number; requests: number };
    const summary = await runGenerateJob({
      gateway: stack.seed.url,
      route: 'gpt-4o-mini',
      purpose: 'train',
      items,
      jobId: 'job-paced',
      concurrency: 8,
      maxTokens: 16,
      onResult: (result) => results.push(result),
    });
    assert.equal(summary.succeeded, 20, JSON.stringify(results.filter((result) => !result.ok)));
    assert.equal(summary.failed, 0);
    assert.equal(summary.rateLimited, 0);
    assert.equal(summary.requests, 20);
    assert.deepEqual(results.map((result) => result.id).sort(), items.map((item) => item.id).sort());
    for (const result of results) {
      assert.ok(result.ok);
      assert.match(result.callId ?? '', /^req_/);
      assert.equal((result.message as { role: string }).role, 'assistant');
      assert.ok((result.usage?.completion_tokens ?? 0) > 0);
    }
    // The upstream did refuse while the job ran at 8 in flight against 5 a second: the gateway
    // absorbed every refusal (its router waits out the upstream's retry-after for batch calls).
    const upstream = (await (await fetch(`${stack.simulator.url}/_sim/stats`)).json()) as { rateLimited: number; requests: number };
    assert.ok(upstream.rateLimited - upstreamBefore.rateLimited > 0, 'the upstream never refused: the test does not exercise pacing');

    // Every call is in the ledger with the job's tag, and the job's calls become a dataset whose
    // samples' lineage is exactly those calls.
    await stack.waitForRecords(20);
    await storing.stored();
    const { datasets } = provenance({ store });
    const version = await datasetFromJob({ store, datasets, name: 'facts', jobId: 'job-paced', purpose: 'train', startedAt: Date.now() - 60_000, expected: 20, actor: 'test' });
    assert.equal(version.sampleCount, 20);
    const samples = await datasets.samples('facts');
    const lineage = new Set(samples.flatMap((sample) => Object.values(sample.record.provenance).flatMap((field) => field.lineage.map((source) => (source.kind === 'call' ? source.callId : source.kind)))));
    assert.deepEqual([...lineage].sort(), results.map((result) => (result.ok ? result.callId : null)).sort());
    const calls = (await store.listCalls({ filters: { status: 'ok' }, limit: 100 })).calls.filter((call) => call.metadata?.['seed_job'] === 'job-paced');
    assert.equal(calls.length, 20);
    assert.ok(calls.every((call) => call.purpose === 'train' && call.clientRequestId?.startsWith('job-paced:')));
  });

  test('a purpose the route\'s terms do not allow stops the job at once instead of failing every prompt', async () => {
    const results: ItemResult[] = [];
    const summary = await runGenerateJob({
      gateway: stack.baseURL,
      route: 'azure-mini',
      purpose: 'train',
      items: prompts(50),
      jobId: 'job-refused',
      concurrency: 2,
      onResult: (result) => results.push(result),
    });
    assert.equal(summary.succeeded, 0);
    assert.equal(summary.stoppedBy?.code, 'purpose_not_allowed');
    assert.equal(summary.stoppedBy?.status, 403);
    assert.ok(summary.failed <= 2, `${summary.failed} prompts failed one by one`);
    assert.equal(summary.notAttempted, 50 - summary.failed);
    assert.ok(results.every((result) => !result.ok && result.attempts === 1));
  });

  test('a dataset from calls made without stored payloads is refused with what to do', async () => {
    await assert.rejects(
      datasetFromJob({
        store: { listCalls: async () => ({ calls: [{ ...(await store.listCalls({ filters: { status: 'ok' }, limit: 1 })).calls[0]!, payload: null, metadata: { seed_job: 'x' } }], nextCursor: null }) },
        datasets: { createFromLedger: async () => assert.fail('must not create') },
        name: 'x',
        jobId: 'x',
        purpose: 'train',
        startedAt: Date.now() - 60_000,
        expected: 1,
        actor: 'test',
      }),
      /recorded without their payloads.*--store-payloads/,
    );
  });
});

describe('retries, against a scripted gateway', () => {
  let server: ReturnType<typeof createServer>;
  let url: string;
  let script: (request: IncomingMessage, response: ServerResponse, count: number) => void;
  let count = 0;
  const bodies: Array<Record<string, unknown>> = [];
  const headers: Array<IncomingMessage['headers']> = [];
  before(async () => {
    server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk));
      request.on('end', () => {
        count += 1;
        bodies.push(JSON.parse(body) as Record<string, unknown>);
        headers.push(request.headers);
        script(request, response, count);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const ok = (response: ServerResponse, id: string) => {
    response.writeHead(200, { 'content-type': 'application/json', 'x-request-id': id });
    response.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: 'fact' }, finish_reason: 'stop' }], usage: { prompt_tokens: 5, completion_tokens: 2 } }));
  };
  const error = (response: ServerResponse, status: number, code: string, extra: Record<string, string> = {}) => {
    response.writeHead(status, { 'content-type': 'application/json', ...extra });
    response.end(JSON.stringify({ error: { message: `scripted ${code}`, type: 'x', code, param: null } }));
  };

  test('429 waits retry-after-ms, 5xx and broken connections back off, 400 fails the prompt alone; the request carries the job headers', async () => {
    count = 0;
    bodies.length = 0;
    headers.length = 0;
    const sentAt: number[] = [];
    script = (request, response, n) => {
      sentAt.push(performance.now());
      const id = (JSON.parse(JSON.stringify(bodies.at(-1)!['metadata'])) as { seed_item: string }).seed_item;
      if (id === 'bad') return error(response, 400, 'invalid_request');
      if (n === 1) return error(response, 429, 'rate_limit_exceeded', { 'retry-after-ms': '120', 'retry-after': '1' });
      if (n === 2) return error(response, 503, 'no_healthy_deployment');
      if (n === 3) return request.socket.destroy();
      ok(response, `req_${n}`);
    };
    const results: ItemResult[] = [];
    const summary = await runGenerateJob({
      gateway: `${url}/v1/`,
      apiKey: 'sk-seed-test',
      route: 'teacher',
      purpose: 'evaluate',
      items: parsePrompts('{"id":"good","prompt":"a"}\n{"id":"bad","prompt":"b"}'),
      jobId: 'job-retry',
      concurrency: 1,
      maxTokens: 9,
      temperature: 0.2,
      backoffMs: () => 10,
      onResult: (result) => results.push(result),
    });
    assert.deepEqual(
      { succeeded: summary.succeeded, failed: summary.failed, requests: summary.requests, rateLimited: summary.rateLimited, stoppedBy: summary.stoppedBy },
      { succeeded: 1, failed: 1, requests: 5, rateLimited: 1, stoppedBy: null },
    );
    assert.ok(sentAt[1]! - sentAt[0]! >= 110, `retried after ${sentAt[1]! - sentAt[0]!} ms, not the 120 ms retry-after-ms asked`);
    const good = results.find((result) => result.id === 'good');
    assert.ok(good?.ok);
    assert.equal(good.attempts, 4);
    assert.equal(good.callId, 'req_4');
    const bad = results.find((result) => result.id === 'bad');
    assert.ok(bad && !bad.ok);
    assert.deepEqual(bad.error, { status: 400, code: 'invalid_request', message: 'scripted invalid_request' });
    assert.equal(bad.attempts, 1);
    assert.equal(summary.promptTokens + summary.completionTokens, 7);
    assert.deepEqual(bodies[0], { model: 'teacher', messages: [{ role: 'user', content: 'a' }], max_tokens: 9, temperature: 0.2, metadata: { seed_job: 'job-retry', seed_item: 'good' } });
    assert.equal(headers[0]!['authorization'], 'Bearer sk-seed-test');
    assert.equal(headers[0]!['x-seed-priority'], 'batch');
    assert.equal(headers[0]!['x-seed-purpose'], 'evaluate');
    assert.equal(headers[0]!['x-client-request-id'], 'job-retry:0');
  });

  test('a prompt that keeps failing gives up after maxAttempts; a spent budget stops the job', async () => {
    count = 0;
    script = (_request, response) => error(response, 502, 'upstream_error');
    const gaveUp = await runGenerateJob({ gateway: url, route: 'r', purpose: 'train', items: prompts(2), jobId: 'j1', concurrency: 1, maxAttempts: 3, backoffMs: () => 1 });
    assert.deepEqual([gaveUp.failed, gaveUp.requests, gaveUp.stoppedBy], [2, 6, null]);

    count = 0;
    script = (_request, response, n) => (n <= 2 ? ok(response, `req_${n}`) : error(response, 429, 'budget_exceeded'));
    const spent = await runGenerateJob({ gateway: url, route: 'r', purpose: 'train', items: prompts(10), jobId: 'j2', concurrency: 1, backoffMs: () => 1 });
    assert.deepEqual([spent.succeeded, spent.failed, spent.notAttempted, spent.requests, spent.stoppedBy?.code], [2, 1, 7, 3, 'budget_exceeded']);
  });

  test('aborting the job stops dispatching; calls in flight are abandoned and their prompts reported as not attempted', async () => {
    count = 0;
    script = (_request, response, n) => setTimeout(() => ok(response, `req_${n}`), 30);
    const abort = new AbortController();
    const summary = await runGenerateJob({
      gateway: url,
      route: 'r',
      purpose: 'train',
      items: prompts(100),
      jobId: 'j-abort',
      concurrency: 12,
      signal: abort.signal,
      onResult: () => abort.abort(),
    });
    assert.ok(summary.succeeded >= 1 && summary.succeeded < 100);
    assert.equal(summary.failed, 0);
    assert.equal(summary.succeeded + summary.notAttempted, 100);
    assert.ok(summary.requests < 30, `${summary.requests} requests after the abort`);
  });

  test('bad options are refused before any call', async () => {
    count = 0;
    const base = { gateway: url, route: 'r', purpose: 'train' as const, items: prompts(1), jobId: 'ok' };
    await assert.rejects(runGenerateJob({ ...base, jobId: 'has space' }), /job id "has space"/);
    await assert.rejects(runGenerateJob({ ...base, concurrency: 0 }), /concurrency must be a positive integer/);
    await assert.rejects(runGenerateJob({ ...base, gateway: 'localhost:4000' }), /expected an http:\/\/ or https:\/\/ URL|is not a URL/);
    assert.equal(count, 0);
  });
});

describe('seed jobs generate', () => {
  let stack: Stack;
  let directory: string;
  before(async () => {
    stack = await startStack();
    directory = await mkdtemp(join(tmpdir(), 'seed-jobs-cli-'));
  });
  after(async () => {
    await stack?.close();
    await rm(directory, { recursive: true, force: true });
  });

  const seed = (args: string[]) => runSeed(directory, args);

  test('answers go to --output as JSONL, the summary to stderr; exit 0', async () => {
    const input = join(directory, 'prompts.jsonl');
    await writeFile(input, ['{"id":"a","prompt":"One."}', '{"id":"b","prompt":"Two."}', '{"id":"c","prompt":"Three."}'].join('\n'));
    const output = join(directory, 'out.jsonl');
    const run = await seed(['jobs', 'generate', '--input', input, '--route', 'gpt-4o-mini', '--gateway', stack.seed.url, '--job-id', 'cli-1', '--output', output, '--max-tokens', '8']);
    assert.equal(run.code, 0, run.stderr);
    const lines = (await readFile(output, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { id: string; call_id: string; message: { role: string } });
    assert.deepEqual(lines.map((line) => line.id).sort(), ['a', 'b', 'c']);
    assert.ok(lines.every((line) => line.call_id.startsWith('req_') && line.message.role === 'assistant'));
    assert.match(run.stderr, /job cli-1: 3 of 3 succeeded, 0 failed/);
  });

  test('SIGTERM stops the job as Ctrl-C does: no more calls, every answer so far written whole, the summary, exit 1', async () => {
    // Every call takes ~0.5 s (10 tokens at 20 a second), so the job is mid-way when the signal comes.
    stack.simulator.setFaults({ model: 'gpt-4o-mini', faults: [{ kind: 'slow-stream', tokensPerSecond: 20 }] });
    try {
      const input = join(directory, 'many.jsonl');
      await writeFile(input, Array.from({ length: 30 }, (_, index) => JSON.stringify({ id: `p${index}`, prompt: 'Go.' })).join('\n'));
      const child = spawn(
        process.execPath,
        [join(ROOT, 'bin/seed.mjs'), 'jobs', 'generate', '--input', input, '--route', 'gpt-4o-mini', '--gateway', stack.seed.url, '--concurrency', '2', '--max-tokens', '10', '--job-id', 'cli-term'],
        { cwd: directory, env: { ...process.env, SEED_FROM_SOURCE: '1' } },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
      const closed = new Promise<number | null>((resolvePromise) => child.on('close', (code) => resolvePromise(code)));
      const deadline = Date.now() + 30_000;
      while (!stdout.includes('\n')) {
        if (Date.now() > deadline) throw new Error(`no answer yet: ${stderr}`);
        await new Promise((resolvePromise) => setTimeout(resolvePromise, 20));
      }
      child.kill('SIGTERM');
      const code = await closed;
      // Stopped, not killed: the summary says what was left, and the exit status that it was left.
      assert.equal(code, 1, stderr);
      const summary = /job cli-term: (\d+) of 30 succeeded, 0 failed, (\d+) not attempted/.exec(stderr);
      assert.ok(summary, stderr);
      assert.ok(Number(summary[2]) > 0 && Number(summary[1]) + Number(summary[2]) === 30, stderr);
      const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as { id: string });
      assert.ok(lines.length >= Number(summary[1]), `${lines.length} lines for ${summary[1]} answers`);
    } finally {
      stack.simulator.setFaults({ model: 'gpt-4o-mini', faults: [] });
    }
  });

  test('a bad prompt file or an unknown route exits 1 with what is wrong', async () => {
    const input = join(directory, 'bad.jsonl');
    await writeFile(input, '{"prompt":"fine"}\n{"prompt":');
    const bad = await seed(['jobs', 'generate', '--input', input, '--route', 'gpt-4o-mini', '--gateway', stack.seed.url]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /bad\.jsonl:2: not valid JSON/);

    const missing = await seed(['jobs', 'generate', '--input', join(directory, 'nope.jsonl'), '--route', 'gpt-4o-mini']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read .*nope\.jsonl/);

    await writeFile(input, '{"prompt":"a"}\n{"prompt":"b"}\n');
    const unknown = await seed(['jobs', 'generate', '--input', input, '--route', 'no-such-route', '--gateway', stack.seed.url, '--concurrency', '1']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /1 not attempted/);
    assert.match(unknown.stderr, /stopped: .*\(model_not_found\)/);
    assert.match(unknown.stdout, /"code":"model_not_found"/);
  });
});

describe('seed jobs generate --dataset', () => {
  let stack: Stack;
  let directory: string;
  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'seed-jobs-dataset-'));
    // The gateway's ledger in a SQLite file that the CLI opens too, as an operator's would be.
    stack = await startStack({
      config: (url) => `store: { url: "sqlite:${join(directory, 'seed.db')}" }\n${standardConfig(url)}`,
      start: { authenticate: () => ({ ...ANONYMOUS_CALLER, storePayloads: true }) },
    });
  });
  after(async () => {
    await stack?.close();
    await rm(directory, { recursive: true, force: true });
  });

  test("the job's calls become a dataset version whose samples' lineage is their calls", async () => {
    const input = join(directory, 'prompts.jsonl');
    await writeFile(input, ['{"id":"a","prompt":"One."}', '{"id":"b","prompt":"Two."}'].join('\n'));
    const store = `sqlite:${join(directory, 'seed.db')}`;
    const run = await runSeed(directory, ['jobs', 'generate', '--input', input, '--route', 'gpt-4o-mini', '--gateway', stack.seed.url, '--job-id', 'cli-ds', '--dataset', 'cli-facts', '--store', store, '--actor', 'test']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /created cli-facts@1 \(2 samples/);
    const callIds = run.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { call_id: string }).call_id).sort();
    const shown = await runSeed(directory, ['datasets', 'show', 'cli-facts', '--store', store]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /cli-facts@1/);
    const opened = await openStore({ url: store });
    try {
      const { datasets } = provenance({ store: opened });
      const samples = await datasets.samples('cli-facts');
      const lineage = samples.flatMap((sample) => Object.values(sample.record.provenance).flatMap((field) => field.lineage.map((source) => (source.kind === 'call' ? source.callId : source.kind))));
      assert.deepEqual([...new Set(lineage)].sort(), callIds);
    } finally {
      await opened.close();
    }
  });
});

function runSeed(cwd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/seed.mjs'), ...args], { cwd, env: { ...process.env, SEED_FROM_SOURCE: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}
