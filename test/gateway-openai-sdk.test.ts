/**
 * The official `openai` npm SDK against the gateway in front of the simulator, for every
 * provider kind: chat, streaming, tools, embeddings, error classes and retries.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, type Stack } from './helpers/stack.ts';

let stack: Stack;
let client: OpenAI;

before(async () => {
  stack = await startStack();
  client = new OpenAI({ baseURL: stack.baseURL, apiKey: 'unused-in-open-mode', maxRetries: 0 });
});
after(async () => stack.close());

const CHAT_ROUTES = ['gpt-4o-mini', 'azure-mini', 'llama', 'claude-sonnet'];

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

for (const route of CHAT_ROUTES) {
  describe(`route ${route}`, () => {
    test('chat completion', async () => {
      const { data, response } = await client.chat.completions
        .create({
          model: route,
          messages: [
            { role: 'system', content: 'Be brief.' },
            { role: 'user', content: 'Say hello.' },
          ],
          max_tokens: 50,
        })
        .withResponse();
      assert.equal(data.object, 'chat.completion');
      assert.equal(data.choices[0]?.message.role, 'assistant');
      assert.ok((data.choices[0]?.message.content ?? '').length > 0);
      assert.ok(data.usage && data.usage.prompt_tokens > 0 && data.usage.completion_tokens > 0);
      assert.equal(response.headers.get('x-seed-route'), route);
      assert.ok(response.headers.get('x-seed-deployment'));
      assert.equal(response.headers.get('x-seed-attempts'), '1');
      assert.match(response.headers.get('x-request-id') ?? '', /^req_/);
    });

    test('stream options on a call that does not stream are not sent on (the API would refuse them)', async () => {
      // Clients that build one options object for both kinds of call send this; OpenAI answers
      // it with a 400, and so does the simulator.
      const completion = await client.chat.completions.create({
        model: route,
        messages: [{ role: 'user', content: 'Say hello.' }],
        stream: false,
        stream_options: { include_usage: true },
        max_tokens: 20,
      });
      assert.equal(completion.object, 'chat.completion');
      assert.ok(completion.usage && completion.usage.completion_tokens > 0);
    });

    test('streamed chat completion with usage', async () => {
      const stream = await client.chat.completions.create({
        model: route,
        messages: [{ role: 'user', content: 'Count to five.' }],
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: 40,
      });
      let text = '';
      let finish: string | null | undefined;
      let usage: OpenAI.CompletionUsage | null | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
        if (chunk.usage) usage = chunk.usage;
      }
      assert.ok(text.length > 0);
      assert.ok(finish === 'stop' || finish === 'length', `finish_reason ${finish}`);
      assert.ok(usage && usage.completion_tokens > 0, 'usage chunk present');
    });

    test('tool calls', async () => {
      const completion = await client.chat.completions.create({
        model: route,
        messages: [{ role: 'user', content: 'Weather in Paris?' }],
        tools: [weatherTool],
        tool_choice: 'required',
      });
      const call = completion.choices[0]?.message.tool_calls?.[0];
      assert.equal(completion.choices[0]?.finish_reason, 'tool_calls');
      assert.ok(call && call.type === 'function');
      assert.equal(call.function.name, 'get_weather');
      assert.equal(typeof JSON.parse(call.function.arguments).city, 'string');

      const followUp = await client.chat.completions.create({
        model: route,
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'assistant', content: null, tool_calls: [call] },
          { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' },
        ],
        tools: [weatherTool],
      });
      assert.ok(followUp.choices[0]?.message);
    });

    test('streamed tool calls assemble into valid arguments', async () => {
      const stream = client.chat.completions.stream({
        model: route,
        messages: [{ role: 'user', content: 'Weather in Oslo?' }],
        tools: [weatherTool],
        tool_choice: { type: 'function', function: { name: 'get_weather' } },
      });
      const final = await stream.finalChatCompletion();
      const call = final.choices[0]?.message.tool_calls?.[0];
      assert.ok(call && call.type === 'function');
      assert.equal(call.function.name, 'get_weather');
      assert.equal(typeof JSON.parse(call.function.arguments).city, 'string');
    });
  });
}

test('json_schema response format yields JSON content', async () => {
  for (const route of CHAT_ROUTES) {
    const completion = await client.chat.completions.create({
      model: route,
      messages: [{ role: 'user', content: 'A person.' }],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'person',
          schema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
        },
      },
    });
    const content = completion.choices[0]?.message.content ?? '';
    assert.doesNotThrow(() => JSON.parse(content), `${route}: ${content}`);
  }
});

test('embeddings', async () => {
  const result = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['one', 'two'] });
  assert.equal(result.data.length, 2);
  assert.ok(result.data[0]!.embedding.length > 0);
  assert.ok(result.usage.prompt_tokens > 0);
  const reduced = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'one', dimensions: 8 });
  assert.equal(reduced.data[0]!.embedding.length, 8);
});

test('models lists the routes', async () => {
  const models = [];
  for await (const model of client.models.list()) models.push(model.id);
  assert.deepEqual(models.sort(), ['azure-mini', 'claude-sonnet', 'gpt-4o-mini', 'llama', 'text-embedding-3-small']);
});

test('errors map onto the SDK error classes', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-route', messages: [{ role: 'user', content: 'x' }] }),
    (error: unknown) => {
      assert.ok(error instanceof OpenAI.NotFoundError);
      assert.equal(error.code, 'model_not_found');
      assert.equal(error.param, 'model');
      return true;
    },
  );
  await assert.rejects(
    // @ts-expect-error a wrong type on purpose
    client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }),
    (error: unknown) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.equal(error.param, 'temperature');
      return true;
    },
  );
  await assert.rejects(
    client.chat.completions.create({ model: 'claude-sonnet', messages: [{ role: 'user', content: 'x' }] }, {
      headers: { 'x-seed-purpose': 'world-domination' },
    }),
    (error: unknown) => error instanceof OpenAI.BadRequestError && error.param === 'x-seed-purpose',
  );
});

test('the SDK retries a 429 with retry-after and then succeeds; the ledger records both calls', async () => {
  const retrying = new OpenAI({ baseURL: stack.baseURL, apiKey: 'x', maxRetries: 2 });
  const before = stack.records.length;
  // The simulator's first request of this model is a 429 storm of one; the gateway's own
  // retry absorbs it, so the client sees one success and attempts = 2.
  stack.simulator.setFaults({ model: 'gpt-4o-mini', faults: [{ kind: '429', firstRequests: 1, retryAfterSeconds: 0 }] });
  try {
    const { response } = await retrying.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })
      .withResponse();
    assert.equal(response.headers.get('x-seed-attempts'), '2');
  } finally {
    stack.simulator.setFaults({ model: 'gpt-4o-mini', faults: [] });
  }
  const records = await stack.waitForRecords(before + 1);
  assert.equal(records.at(-1)?.attempts, 2);
  assert.equal(records.at(-1)?.status, 'ok');
});

test('every call is priced from the shipped price table, streamed ones too', async () => {
  const before = stack.records.length;
  await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'price me' }] });
  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'and me' }], stream: true });
  for await (const _chunk of stream) void _chunk;
  const records = (await stack.waitForRecords(before + 2)).slice(before);
  for (const record of records) {
    // gpt-4o-mini: $0.15 in / $0.60 out per 1M tokens.
    const expected = (record.promptTokens * 0.15 + record.completionTokens * 0.6) / 1e6;
    assert.ok(record.promptTokens > 0 && record.completionTokens > 0);
    assert.ok(Math.abs(record.costUsd - expected) < 1e-9, `${record.costUsd} vs ${expected}`);
    assert.equal(record.usageReported, true);
  }
});

test('a parameter the upstream cannot honour is reported in x-seed-warnings, never dropped silently', async () => {
  const { response } = await client.chat.completions
    .create({ model: 'claude-sonnet', messages: [{ role: 'user', content: 'x' }], presence_penalty: 0.5, seed: 7 })
    .withResponse();
  const warnings = response.headers.get('x-seed-warnings') ?? '';
  assert.match(warnings, /presence_penalty/);
  assert.match(warnings, /seed/);
  const { response: plain } = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], presence_penalty: 0.5 })
    .withResponse();
  assert.equal(plain.headers.get('x-seed-warnings'), null);
});
