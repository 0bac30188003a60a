/**
 * The structural response checks (src/wire/chat-completion-check.ts) against the zod schemas
 * they stand in for (src/wire/openai.ts): on real-shaped responses and on generated mutations
 * of them (a field dropped, retyped, nulled, wrapped in junk; junk added), the check passes
 * exactly when the schema does, fails at the path of zod's first issue, and hands back the
 * value it was given rather than a copy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ZodType } from 'zod';
import { checkChatCompletion, checkEmbeddingResponse, type CheckResult } from '../src/wire/chat-completion-check.ts';
import { chatCompletionSchema, embeddingResponseSchema, MAX_TOKEN_COUNT } from '../src/wire/openai.ts';
import { mutated, pathsIn, show, type Mutation } from './helpers/mutations.ts';
import { fuzzRuns } from './helpers/fuzz-runs.ts';

const safe = { filtered: false, severity: 'safe' };
const filters = { hate: safe, self_harm: safe, sexual: safe, violence: safe };
const usage = {
  prompt_tokens: 12,
  completion_tokens: 7,
  total_tokens: 19,
  prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
};
const completion = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1_760_000_000,
  model: 'gpt-4o-mini-2024-07-18',
  choices,
  usage,
  service_tier: 'default',
  system_fingerprint: 'fp_simulator',
  ...extra,
});
const text = (content: string | null, extra: Record<string, unknown> = {}) => ({
  index: 0,
  message: { role: 'assistant', content, refusal: null, annotations: [] },
  logprobs: null,
  finish_reason: 'stop',
  ...extra,
});
const toolCall = {
  index: 0,
  message: {
    role: 'assistant',
    content: null,
    tool_calls: [{ id: 'call_abc', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
    refusal: null,
    annotations: [],
  },
  logprobs: null,
  finish_reason: 'tool_calls',
};

/** Responses as upstreams send them: the simulator's shapes (OpenAI and Azure) and their variants. */
const VALID_COMPLETIONS: ReadonlyArray<readonly [string, unknown]> = [
  ['simulator text', completion([text('Hello there.')])],
  ['simulator tool call', completion([toolCall])],
  ['several choices, one cut at length', completion([text('a'), text('b', { index: 1, finish_reason: 'length' })])],
  [
    'Azure content filter results',
    completion([text('Hi', { content_filter_results: filters })], {
      prompt_filter_results: [{ prompt_index: 0, content_filter_results: filters }],
    }),
  ],
  [
    'logprobs',
    completion([
      text('Hi', {
        logprobs: { content: [{ token: 'Hi', logprob: -0.01, bytes: [72, 105], top_logprobs: [{ token: 'Hi', logprob: -0.01, bytes: [72, 105] }] }], refusal: null },
      }),
    ]),
  ],
  ['null content, no refusal field', completion([{ index: 0, message: { role: 'assistant', content: null }, finish_reason: 'stop' }])],
  ['a refusal', completion([text(null, { message: { role: 'assistant', content: null, refusal: 'I cannot help with that.' } })])],
  ['finish_reason null, logprobs absent', completion([{ index: 0, message: { role: 'assistant', content: '' }, finish_reason: null }])],
  ['no choices', completion([])],
  ['no usage, no fingerprint', { id: 'x', object: 'chat.completion', created: 0, model: 'm', choices: [text('hi')] }],
  ['usage details null', completion([text('hi')], { usage: { ...usage, prompt_tokens_details: null, completion_tokens_details: null } })],
  ['usage details without their counts', completion([text('hi')], { usage: { ...usage, prompt_tokens_details: {}, completion_tokens_details: { audio_tokens: 3 } } })],
  ['usage with reasoning tokens', completion([text('hi')], { usage: { ...usage, completion_tokens_details: { reasoning_tokens: 64 } } })],
  ['fingerprint null', completion([text('hi')], { system_fingerprint: null })],
  ['fractional and negative numbers where they are not token counts', completion([text('hi', { index: -1 })], { created: 1.5 })],
  ['the largest token counts the ledger stores', completion([text('hi')], { usage: { ...usage, prompt_tokens: MAX_TOKEN_COUNT, total_tokens: MAX_TOKEN_COUNT } })],
  [
    'unknown fields everywhere',
    completion(
      [
        text('hi', {
          message: {
            role: 'assistant',
            content: 'hi',
            audio: { id: 'a', data: '' },
            tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}', extra: 1 }, extra: [] }],
            function_call: null,
          },
          stop_reason: 'x',
        }),
      ],
      { usage: { ...usage, extra: { nested: true } }, anything: [1, 'two', null] },
    ),
  ],
  ['an empty tool call list', completion([text('hi', { message: { role: 'assistant', content: 'hi', tool_calls: [] } })])],
];

const VALID_EMBEDDINGS: ReadonlyArray<readonly [string, unknown]> = [
  [
    'simulator floats',
    { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, -0.2, 0.3] }], model: 'text-embedding-3-small', usage: { prompt_tokens: 2, total_tokens: 2 } },
  ],
  [
    'simulator base64, two inputs',
    {
      object: 'list',
      data: [
        { object: 'embedding', index: 0, embedding: 'zczMPc3MTL6amZk+' },
        { object: 'embedding', index: 1, embedding: 'AAAAAA==' },
      ],
      model: 'text-embedding-3-small',
      usage: { prompt_tokens: 4, total_tokens: 4 },
    },
  ],
  ['no data, unknown fields', { object: 'list', data: [], model: 'm', usage: { prompt_tokens: 0, total_tokens: 0, x: 1 }, id: 'e' }],
  ['an empty vector', { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [] }], model: 'm', usage: { prompt_tokens: 1, total_tokens: 1 } }],
];

interface Subject {
  name: string;
  schema: ZodType;
  check: (value: unknown) => CheckResult<unknown>;
  valid: ReadonlyArray<readonly [string, unknown]>;
}
const SUBJECTS: readonly Subject[] = [
  { name: 'chat completion', schema: chatCompletionSchema, check: checkChatCompletion, valid: VALID_COMPLETIONS },
  { name: 'embeddings', schema: embeddingResponseSchema, check: checkEmbeddingResponse, valid: VALID_EMBEDDINGS },
];

/** The check agrees with the schema on `value`: both pass, or both fail at the same path. */
function assertAgrees(subject: Subject, value: unknown): void {
  const checked = subject.check(value);
  const parsed = subject.schema.safeParse(value);
  if (parsed.success) {
    assert.ok(checked.ok, `the schema accepts ${show(value)} but the check fails at ${checked.ok ? '' : checked.path}`);
    assert.equal(checked.value, value, 'the check hands back the value itself');
  } else {
    const path = parsed.error.issues[0]?.path.join('.') ?? '';
    assert.ok(!checked.ok, `the schema refuses ${show(value)} at ${path} but the check accepts it`);
    assert.equal(checked.path, path, `path for ${show(value)}`);
  }
}

for (const subject of SUBJECTS) {
  test(`${subject.name}: every real-shaped response passes both, as the same object`, () => {
    for (const [name, value] of subject.valid) {
      assert.ok(subject.schema.safeParse(value).success, `fixture "${name}" is valid`);
      const checked = subject.check(value);
      assert.ok(checked.ok, `${name}: ${checked.ok ? '' : checked.path}`);
      assert.equal(checked.value, value);
    }
  });
}

test('chat completion: common failures name the field as zod does', () => {
  const base = VALID_COMPLETIONS[1]![1] as ReturnType<typeof completion>;
  const cases: ReadonlyArray<readonly [unknown, string]> = [
    [null, ''],
    [[], ''],
    ['{}', ''],
    [{}, 'id'],
    [{ ...base, object: 'chat.completion.chunk' }, 'object'],
    [{ ...base, created: '1760000000' }, 'created'],
    [{ ...base, created: Number.NaN }, 'created'],
    [{ ...base, choices: undefined }, 'choices'],
    [{ ...base, choices: [null] }, 'choices.0'],
    [{ ...base, choices: [{ ...toolCall, message: { ...toolCall.message, role: 'user' } }] }, 'choices.0.message.role'],
    [{ ...base, choices: [{ ...toolCall, message: { role: 'assistant' } }] }, 'choices.0.message.content'],
    [{ ...base, choices: [{ ...toolCall, message: { ...toolCall.message, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f' } }] } }] }, 'choices.0.message.tool_calls.0.function.arguments'],
    [{ ...base, choices: [{ ...toolCall, finish_reason: undefined }] }, 'choices.0.finish_reason'],
    [{ ...base, usage: { ...usage, total_tokens: null } }, 'usage.total_tokens'],
    [{ ...base, usage: { ...usage, prompt_tokens_details: { cached_tokens: '3' } } }, 'usage.prompt_tokens_details.cached_tokens'],
    // Token counts are whole and not negative: the ledger prices calls on them.
    [{ ...base, usage: { ...usage, prompt_tokens: 0.5 } }, 'usage.prompt_tokens'],
    [{ ...base, usage: { ...usage, completion_tokens: -1 } }, 'usage.completion_tokens'],
    [{ ...base, usage: { ...usage, total_tokens: 1e300 } }, 'usage.total_tokens'],
    [{ ...base, usage: { ...usage, prompt_tokens: MAX_TOKEN_COUNT + 1 } }, 'usage.prompt_tokens'],
    [{ ...base, usage: { ...usage, completion_tokens_details: { reasoning_tokens: -64 } } }, 'usage.completion_tokens_details.reasoning_tokens'],
    [{ ...base, system_fingerprint: 1 }, 'system_fingerprint'],
  ];
  for (const [value, path] of cases) {
    const checked = checkChatCompletion(value);
    assert.deepEqual(checked, { ok: false, path }, show(value));
    assertAgrees(SUBJECTS[0]!, value);
  }
});

// Generated mutations of the valid responses.

/** Replacement values: JSON of every kind, the schemas' own literals, and what JSON cannot carry. */
const replacement = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(
    null, undefined, '', 0, -0, 1.5, Number.NaN, Infinity, -Infinity, true, [], {}, [1, 2], ['a'], [null],
    'chat.completion', 'chat.completion.chunk', 'assistant', 'function', 'list', 'embedding', 'stop',
    { role: 'assistant', content: null }, { id: 'c', type: 'function', function: { name: 'f', arguments: '' } },
  ),
  fc.anything({ maxDepth: 2 }),
);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant({ kind: 'drop' as const }),
  replacement.map((value) => ({ kind: 'set' as const, value })),
  fc.constant({ kind: 'set' as const, value: null }),
  fc.boolean().map((inArray) => ({ kind: 'wrap' as const, inArray })),
  fc.record({ kind: fc.constant('add' as const), key: fc.constantFrom('junk', 'content', 'usage', 'role', 'index', 'x'), value: replacement }),
);

for (const subject of SUBJECTS) {
  test(`${subject.name}: on generated mutations the check passes exactly when the schema does, failing at its path`, () => {
    const fixtures = subject.valid.map(([, value]) => ({ value, paths: pathsIn(value) }));
    fc.assert(
      fc.property(
        fc.nat({ max: fixtures.length - 1 }),
        fc.array(fc.tuple(fc.nat(), mutation), { minLength: 1, maxLength: 3 }),
        (fixtureIndex, mutations) => {
          let value: unknown = fixtures[fixtureIndex]!.value;
          for (const [pick, each] of mutations) {
            const paths = pathsIn(value);
            value = mutated(value, paths[pick % paths.length]!, each);
          }
          assertAgrees(subject, value);
        },
      ),
      fuzzRuns(3_000),
    );
  });

  test(`${subject.name}: arbitrary values agree with the schema too`, () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 3 }), (value) => assertAgrees(subject, value)),
      fuzzRuns(500),
    );
  });
}
