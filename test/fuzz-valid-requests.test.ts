/**
 * Fuzzes requests that are valid: drawn from the shapes the chat schema accepts (every message
 * role and content form, tool calls and tool results, tools, tool choices, response formats,
 * stop sequences, sampling fields), each sent to every provider route, streamed and not. The
 * random fuzz (fuzz-request-bodies.test.ts) mostly fails validation before routing; these reach
 * the adapters, above all the translation to Anthropic's Messages API. The invariant: a valid
 * success (a `chat.completion`, or a stream that ends with `[DONE]`) or a 4xx in OpenAI format,
 * never a 5xx; and a request the OpenAI route's upstream takes is not refused by the Anthropic
 * route's upstream after Seed translated it. The simulator enforces each API's request rules
 * (src/simulator/anthropic-checks.ts: tool-use ids and pairing, empty text, tool schemas, stop
 * sequences; OpenAI's pairing of tool calls and tool messages), and the conversations carry tool
 * turns with ids as other providers make them (`functions.f:0`, `call_0` in every turn).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { chatCompletionRequestSchema } from '../src/wire/openai.ts';
import { assertOpenAIError } from './helpers/fuzz-http.ts';
import { fuzzRuns, startFuzzStack, type FuzzClient } from './helpers/fuzz-stack.ts';

let client: FuzzClient;
before(async () => {
  client = await startFuzzStack();
});
after(async () => client.close());

const ROUTES = ['gpt-4o-mini', 'azure-mini', 'llama', 'claude-sonnet'] as const;

const text = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('', ' ', 'hello', '{"a":1}', '\n', 'ünïcödé 😀', 'Human: x\n\nAssistant:'));
const textPart = text.map((value) => ({ type: 'text', text: value }));
const imagePart = fc
  .record({
    url: fc.constantFrom('https://example.com/cat.png', 'data:image/png;base64,iVBORw0KGgo=', 'data:image/jpeg;base64,/9j/4AAQ', 'not a url'),
    detail: fc.constantFrom(undefined, 'auto', 'low', 'high'),
  })
  .map(({ url, detail }) => ({ type: 'image_url', image_url: detail === undefined ? { url } : { url, detail } }));
// Ids as clients replay them: OpenAI's, Anthropic's, other providers' (`functions.f:0`, `Bash:12`,
// `call|fc_1`, `call_0` in every turn), and any string.
const callId = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('call_1', 'call_0', 'call_x', 'toolu_01A', 'functions.lookup:0', 'Bash:12', 'call|fc_1', ' call 7', 'a_b', 'a.b') },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 12 }) },
);
const toolName = fc.constantFrom('lookup', 'search', 'f');
const toolCall = fc.record({
  id: callId,
  type: fc.constant('function'),
  function: fc.record({
    name: toolName,
    arguments: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('{}', '{"q":"x"}', '') }, { weight: 1, arbitrary: fc.constantFrom('not json', '[1,2]') }),
  }),
});
const assistantContent = fc.oneof(text, fc.constant(null), fc.array(textPart, { maxLength: 2 }));
const toolContent = fc.oneof(text, fc.array(textPart, { maxLength: 2 }));
/** Any one message, tool calls and tool results included, paired or not. */
const message = fc.oneof(
  { weight: 2, arbitrary: fc.record({ role: fc.constantFrom('system', 'developer'), content: fc.oneof(text, fc.array(textPart, { maxLength: 2 })) }) },
  {
    weight: 3,
    arbitrary: fc.record(
      { role: fc.constant('user'), content: fc.oneof(text, fc.array(fc.oneof(textPart, imagePart), { maxLength: 3 })), name: fc.constantFrom('ann', 'bob') },
      { requiredKeys: ['role', 'content'] },
    ),
  },
  {
    weight: 3,
    arbitrary: fc.record(
      {
        role: fc.constant('assistant'),
        content: assistantContent,
        tool_calls: fc.array(toolCall, { minLength: 1, maxLength: 2 }),
        refusal: fc.constantFrom(null, 'no'),
      },
      { requiredKeys: ['role'] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ role: fc.constant('tool'), content: toolContent, tool_call_id: callId }) },
);
/** A tool turn as clients send it: an assistant message with calls, then a tool message for each, in any order. */
const toolTurn = fc
  .record({ content: assistantContent, calls: fc.array(toolCall, { minLength: 1, maxLength: 3 }), results: fc.array(toolContent, { minLength: 3, maxLength: 3 }) })
  .chain(({ content, calls, results }) =>
    fc
      .shuffledSubarray(
        calls.map((call, index) => ({ role: 'tool', tool_call_id: call.id, content: results[index] })),
        { minLength: calls.length },
      )
      .map((answers) => [{ role: 'assistant', content, tool_calls: calls }, ...answers]),
  );
const messages = fc
  .array(fc.oneof({ weight: 3, arbitrary: message.map((one) => [one]) }, { weight: 2, arbitrary: toolTurn }), { minLength: 1, maxLength: 4 })
  .map((turns) => turns.flat());
const tool = fc.record(
  {
    type: fc.constant('function'),
    function: fc.record(
      {
        name: toolName,
        description: text,
        parameters: fc.constantFrom({}, { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] }, { type: 'object' }),
        strict: fc.constantFrom(true, false, null),
      },
      { requiredKeys: ['name'] },
    ),
  },
  { requiredKeys: ['type', 'function'] },
);
const request = fc.record(
  {
    messages,
    max_tokens: fc.integer({ min: 1, max: 64 }),
    temperature: fc.constantFrom(0, 0.7, 1, 2, null),
    top_p: fc.constantFrom(0.1, 1, null),
    stop: fc.oneof(fc.constant(null), text, fc.array(text, { minLength: 1, maxLength: 4 })),
    tools: fc.oneof(
      { weight: 3, arbitrary: fc.uniqueArray(tool, { selector: (drawn) => drawn.function.name, minLength: 1, maxLength: 3 }) },
      { weight: 1, arbitrary: fc.array(tool, { minLength: 1, maxLength: 3 }) },
    ),
    tool_choice: fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom('none', 'auto', 'required') },
      { weight: 1, arbitrary: fc.constantFrom('lookup', 'other').map((name) => ({ type: 'function', function: { name } })) },
    ),
    parallel_tool_calls: fc.boolean(),
    response_format: fc.oneof(
      fc.constantFrom({ type: 'text' }, { type: 'json_object' }),
      fc.constant({ type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object', properties: { a: { type: 'string' } } }, strict: true } }),
    ),
    seed: fc.integer({ min: 0, max: 1_000 }),
    user: fc.constantFrom('u1', ''),
    n: fc.constantFrom(1, 2),
    presence_penalty: fc.constantFrom(0, 1),
  },
  { requiredKeys: ['messages'] },
);

/** The answer must be a 2xx of the endpoint's shape or a 4xx in OpenAI format; returns the error code, null on success. */
function checkAnswer(answer: { status: number; body: string }, stream: boolean, context: string): string | null {
  assert.ok(answer.status < 500, `${context}: ${answer.status} ${answer.body.slice(0, 300)}`);
  if (answer.status !== 200) {
    assertOpenAIError(answer.body, answer.status);
    return (JSON.parse(answer.body) as { error: { code: string } }).error.code;
  }
  if (stream) {
    assert.ok(answer.body.trimEnd().endsWith('data: [DONE]'), `${context}: ${answer.body.slice(-300)}`);
    return null;
  }
  const parsed = JSON.parse(answer.body) as { object?: unknown; choices?: unknown[] };
  assert.equal(parsed.object, 'chat.completion', context);
  assert.ok(Array.isArray(parsed.choices) && parsed.choices.length >= 1, context);
  return null;
}

for (const stream of [false, true]) {
  test(`valid requests of every shape on every provider route${stream ? ', streamed' : ''}: never a 5xx, and what OpenAI takes Anthropic's translation does not make the upstream refuse`, async (t) => {
    const tally = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(request, async (drawn) => {
        // The generator draws only what the schema accepts: a request it refuses is the generator's fault.
        assert.ok(chatCompletionRequestSchema.safeParse({ ...drawn, model: 'gpt-4o-mini' }).success, JSON.stringify(drawn));
        const codes = new Map<(typeof ROUTES)[number], string | null>();
        for (const route of ROUTES) {
          const body = JSON.stringify({ ...drawn, model: route, stream });
          const answer = await client.send({ path: '/v1/chat/completions', body });
          const code = checkAnswer(answer, stream, `${route} ${body.slice(0, 600)}`);
          codes.set(route, code);
          const key = `${route} ${code ?? 'success'}`;
          tally.set(key, (tally.get(key) ?? 0) + 1);
        }
        // The OpenAI route passes the request through: the upstream's verdict on it is the
        // reference. Where it took the request, the Anthropic route may refuse it only for
        // something Claude cannot do (Seed's own 4xx), never with the upstream refusing what
        // Seed translated.
        if (codes.get('gpt-4o-mini') === null) {
          assert.notEqual(codes.get('claude-sonnet'), 'upstream_bad_request', `claude-sonnet refused what gpt-4o-mini took: ${JSON.stringify(drawn).slice(0, 600)}`);
        }
      }),
      fuzzRuns(100),
    );
    t.diagnostic(`answers by route: ${JSON.stringify(Object.fromEntries([...tally].sort()))}`);
    // Not vacuous: the drawn conversations reach both upstreams and come back answered.
    assert.ok((tally.get('gpt-4o-mini success') ?? 0) > 0 && (tally.get('claude-sonnet success') ?? 0) > 0, JSON.stringify([...tally]));
  });
}
