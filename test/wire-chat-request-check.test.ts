/**
 * The quick yes for chat requests (src/wire/chat-request-check.ts) against the schema it
 * stands in for (`chatCompletionRequestSchema`, src/wire/openai.ts). Sound: whenever the check
 * says yes, the schema accepts the value and its copy is deep-equal to it, on real requests,
 * generated requests near every limit, mutations of them and arbitrary values. Useful: it says
 * yes to what the SDKs send, and to most generated requests the schema accepts unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { isPlainChatRequest } from '../src/wire/chat-request-check.ts';
import { chatCompletionRequestSchema } from '../src/wire/openai.ts';
import { mutated, pathsIn, show, type Mutation } from './helpers/mutations.ts';
import { fuzzRuns } from './helpers/fuzz-runs.ts';

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
const toolCall = { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Rome"}' } };
const hello = [{ role: 'user', content: 'Say hello.' }];
/** One code point, two UTF-16 units: zod 4 measures string lengths in code points. */
const EMOJI = '\u{1F600}';

/** Bodies as clients send them: the first seven captured from the openai SDK and the AI SDK, then variants. */
const REAL_REQUESTS: ReadonlyArray<readonly [string, unknown]> = [
  [
    'openai SDK: chat',
    { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'Be brief.' }, ...hello], max_tokens: 50 },
  ],
  [
    'openai SDK: streamed, with usage',
    { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Count.' }], stream: true, stream_options: { include_usage: true }, max_tokens: 40 },
  ],
  ['openai SDK: tools', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weatherTool], tool_choice: 'required' }],
  ['AI SDK: generateText', { model: 'gpt-4o-mini', max_tokens: 30, messages: hello }],
  ['AI SDK: streamText', { model: 'gpt-4o-mini', max_tokens: 30, messages: [{ role: 'user', content: 'Count.' }], stream: true, stream_options: { include_usage: true } }],
  [
    'AI SDK: a tool round trip with an image and sampling settings',
    {
      model: 'gpt-4o-mini',
      temperature: 0.2,
      top_p: 0.9,
      frequency_penalty: 0.1,
      presence_penalty: 0.1,
      stop: ['END'],
      seed: 7,
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] },
        { role: 'assistant', content: null, tool_calls: [toolCall] },
        { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}' },
      ],
      tools: [{ type: 'function', function: { name: 'weather', description: 'Weather in a city', parameters: weatherTool.function.parameters } }],
      tool_choice: 'required',
    },
  ],
  [
    'AI SDK: generateObject (json_schema)',
    {
      model: 'gpt-4o-mini',
      response_format: {
        type: 'json_schema',
        json_schema: {
          schema: {
            $schema: 'http://json-schema.org/draft-07/schema#',
            type: 'object',
            properties: { name: { type: 'string' }, age: { type: 'number' } },
            required: ['name', 'age'],
            additionalProperties: false,
          },
          strict: true,
          name: 'response',
        },
      },
      messages: [{ role: 'user', content: 'Make a person.' }],
    },
  ],
  [
    'strict tools, a named tool_choice, no parallel calls',
    {
      model: 'gpt-4o',
      messages: hello,
      tools: [{ type: 'function', function: { ...weatherTool.function, strict: true } }, { type: 'function', function: { name: 'now', strict: null } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
    },
  ],
  ['json_object, n, logprobs', { model: 'gpt-4o', messages: hello, response_format: { type: 'json_object' }, n: 3, logprobs: true, top_logprobs: 5, seed: 42 }],
  ['response_format text, max_completion_tokens, reasoning_effort', { model: 'o3', messages: hello, response_format: { type: 'text' }, max_completion_tokens: 2048, reasoning_effort: 'low' }],
  [
    'developer message, multi-part system, image detail, names',
    {
      model: 'gpt-4o',
      messages: [
        { role: 'developer', content: 'Answer in French.', name: 'ops' },
        { role: 'system', content: [{ type: 'text', text: 'Part one.' }, { type: 'text', text: 'Part two.' }] },
        { role: 'user', name: 'ada', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'low' } }, { type: 'text', text: '?' }] },
      ],
    },
  ],
  [
    'assistant parts, refusals, an empty tool call list, tool text parts',
    {
      model: 'gpt-4o',
      messages: [
        ...hello,
        { role: 'assistant', content: [{ type: 'text', text: 'Hi.' }, { type: 'refusal', refusal: 'No.' }], refusal: null, tool_calls: [] },
        { role: 'assistant', refusal: 'I cannot.', name: 'bot' },
        { role: 'assistant', content: '', tool_calls: [toolCall, { ...toolCall, id: 'call_2' }] },
        { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: '21' }], name: 'weather' },
      ],
    },
  ],
  [
    'every nullable field null',
    {
      model: 'gpt-4o',
      messages: hello,
      stream: null,
      stream_options: null,
      max_tokens: null,
      max_completion_tokens: null,
      temperature: null,
      top_p: null,
      n: null,
      stop: null,
      presence_penalty: null,
      frequency_penalty: null,
      logit_bias: null,
      logprobs: null,
      top_logprobs: null,
      seed: null,
      metadata: null,
      store: null,
      reasoning_effort: null,
    },
  ],
  ['store, metadata, user, stream_options without usage', { model: 'gpt-4o', messages: hello, store: true, metadata: { team: 'search', run: '17' }, user: 'user-123', stream: false, stream_options: {} }],
  ['logit_bias, stop as a string', { model: 'gpt-4o', messages: hello, logit_bias: { '50256': -100, '1734': 5.5 }, stop: '\n\n' }],
  [
    'unknown fields at every level (the schema is loose)',
    {
      model: 'gpt-4o',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', cache_control: { type: 'ephemeral' } }], extra: [1, { a: null }] }],
      service_tier: 'auto',
      modalities: ['text'],
      prediction: { type: 'content', content: 'x' },
      stream_options: { include_usage: true, include_obfuscation: false },
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' }, x: 1 }, y: 2 }],
    },
  ],
  [
    'every bound at its limit',
    {
      model: 'm'.repeat(256),
      messages: [{ role: 'user', content: 'hi', name: 'n'.repeat(256) }],
      temperature: 2,
      top_p: 0,
      n: 128,
      presence_penalty: -2,
      frequency_penalty: 2,
      top_logprobs: 20,
      seed: -Number.MAX_SAFE_INTEGER,
      max_tokens: Number.MAX_SAFE_INTEGER,
      max_completion_tokens: 1,
      stop: ['a', 'b', 'c', 'd'],
      metadata: { ['k'.repeat(64)]: 'v'.repeat(512) },
    },
  ],
  [
    'limits counted in code points, not UTF-16 units',
    {
      model: EMOJI.repeat(256),
      messages: [{ role: 'system', content: 'x', name: EMOJI.repeat(256) }],
      tools: [{ type: 'function', function: { name: EMOJI.repeat(64) } }],
      response_format: { type: 'json_schema', json_schema: { name: 'a'.repeat(63) + EMOJI } },
      metadata: { [EMOJI.repeat(64)]: EMOJI.repeat(512) },
    },
  ],
  ['a non-ASCII route name', { model: 'gpt\u4f60\u597d', messages: hello }],
];

test('every real request passes the check, and the schema copies it unchanged', () => {
  for (const [name, value] of REAL_REQUESTS) {
    const parsed = chatCompletionRequestSchema.safeParse(value);
    assert.ok(parsed.success, `fixture "${name}" is valid`);
    assert.deepStrictEqual(parsed.data, value, `fixture "${name}" is copied unchanged`);
    assert.ok(isPlainChatRequest(value), name);
  }
});

const base = { model: 'gpt-4o', messages: hello };
const withMessage = (message: unknown) => ({ ...base, messages: [message] });
const withTool = (definition: unknown) => ({ ...base, tools: [{ type: 'function', function: definition }] });

/** The check says no: the schema refuses these, copies them changed, or is left to decide. */
const NOT_PLAIN: ReadonlyArray<readonly [string, unknown]> = [
  ['null', null],
  ['an array', [base]],
  ['a class instance', new (class ChatBody {
    model = 'gpt-4o';
    messages = hello;
  })()],
  ['a null-prototype object (zod copies it into a {})', Object.assign(Object.create(null), base)],
  ['no messages', { model: 'gpt-4o' }],
  ['empty messages', { ...base, messages: [] }],
  ['empty model', { ...base, model: '' }],
  ['model with a control character', { ...base, model: 'gpt\n' }],
  ['model with DEL', { ...base, model: 'gpt\u007f' }],
  ['model of 257 code points', { ...base, model: EMOJI.repeat(257) }],
  ['temperature above 2', { ...base, temperature: 2.000_000_1 }],
  ['temperature NaN', { ...base, temperature: Number.NaN }],
  ['top_p Infinity', { ...base, top_p: Infinity }],
  ['max_tokens 0', { ...base, max_tokens: 0 }],
  ['max_tokens 1.5', { ...base, max_tokens: 1.5 }],
  ['max_tokens beyond safe integers', { ...base, max_tokens: 2 ** 53 }],
  ['n 129', { ...base, n: 129 }],
  ['top_logprobs 21', { ...base, top_logprobs: 21 }],
  ['seed 1e300', { ...base, seed: 1e300 }],
  ['five stop sequences', { ...base, stop: ['a', 'b', 'c', 'd', 'e'] }],
  ['user null (optional, not nullable)', { ...base, user: null }],
  ['tools null', { ...base, tools: null }],
  ['parallel_tool_calls null', { ...base, parallel_tool_calls: null }],
  ['stream_options.include_usage null', { ...base, stream_options: { include_usage: null } }],
  ['tool name of 65 code points', withTool({ name: 'a'.repeat(64) + EMOJI })],
  ['empty tool name', withTool({ name: '' })],
  ['tool parameters an array', withTool({ name: 'f', parameters: [] })],
  ['metadata key of 65 code points', { ...base, metadata: { ['k'.repeat(65)]: 'v' } }],
  ['metadata value of 513 code points', { ...base, metadata: { k: EMOJI.repeat(513) } }],
  ['metadata value a number', { ...base, metadata: { k: 1 } }],
  ['logit_bias value a string', { ...base, logit_bias: { '1': '-100' } }],
  ['logit_bias value Infinity', { ...base, logit_bias: { '1': -Infinity } }],
  ['unknown role', withMessage({ role: 'function', content: 'x' })],
  ['user content null', withMessage({ role: 'user', content: null })],
  ['tool message without tool_call_id', withMessage({ role: 'tool', content: 'x' })],
  ['assistant tool_calls null', withMessage({ role: 'assistant', content: 'x', tool_calls: null })],
  ['image detail "ultra"', withMessage({ role: 'user', content: [{ type: 'image_url', image_url: { url: 'u', detail: 'ultra' } }] })],
  ['tool_choice "any"', { ...base, tool_choice: 'any' }],
  ['response_format json_schema without a name', { ...base, response_format: { type: 'json_schema', json_schema: {} } }],
  // zod accepts these but drops the key from its copy; an adapter's Object.assign would even take it as a prototype.
  ['an own __proto__ key', JSON.parse('{"model":"m","messages":[{"role":"user","content":"x"}],"__proto__":{"a":1}}')],
  ['an own __proto__ key in a message', JSON.parse('{"model":"m","messages":[{"role":"user","content":"x","__proto__":1}]}')],
  ['an own __proto__ key in tool parameters', withTool({ name: 'f', parameters: JSON.parse('{"__proto__":{"a":1}}') })],
  // Valid, but not mirrored: the schema decides.
  ['an audio part', withMessage({ role: 'user', content: [{ type: 'input_audio', input_audio: { data: '', format: 'wav' } }] })],
  ['a file part', withMessage({ role: 'user', content: [{ type: 'file', file: { file_id: 'file-1' } }] })],
];

test('the check says no to refused, changed and unmirrored requests', () => {
  for (const [name, value] of NOT_PLAIN) {
    assert.equal(isPlainChatRequest(value), false, name);
    assertSound(value);
  }
});

test('regression: an own __proto__ key is accepted by the schema but left out of its copy', () => {
  const value = NOT_PLAIN.find(([name]) => name === 'an own __proto__ key')![1];
  const parsed = chatCompletionRequestSchema.safeParse(value);
  assert.ok(parsed.success);
  assert.equal(isDeepStrictEqual(parsed.data, value), false);
});

// Generated requests and mutations.

/** Whether the schema accepts `value` and hands back an equal copy: what the check may say yes to. */
function schemaKeepsUnchanged(value: unknown): boolean {
  const parsed = chatCompletionRequestSchema.safeParse(value);
  return parsed.success && isDeepStrictEqual(parsed.data, value);
}

function assertSound(value: unknown): void {
  if (isPlainChatRequest(value)) assert.ok(schemaKeepsUnchanged(value), `the check says yes to ${show(value)}, which the schema refuses or changes`);
}

/** Counts how often the check says yes to what the schema keeps unchanged, so it is not trivially no. */
function shareCounter() {
  let kept = 0;
  let accepted = 0;
  return {
    record(value: unknown): void {
      assertSound(value);
      if (!schemaKeepsUnchanged(value)) return;
      kept += 1;
      if (isPlainChatRequest(value)) accepted += 1;
    },
    assertShare(minimum: number, minimumKept: number): void {
      assert.ok(kept >= minimumKept, `only ${kept} generated values were valid; the generator drifted`);
      assert.ok(accepted / kept >= minimum, `the check said yes to ${accepted} of ${kept} values the schema keeps unchanged`);
    },
  };
}

const BOUNDARY_NUMBERS = [
  -(2 ** 53), -Number.MAX_SAFE_INTEGER, -2.000_000_1, -2, -1, -0, 0, 5e-324, 0.5, 1, 1.000_000_1, 1.5, 2, 2.000_000_1,
  20, 21, 128, 129, Number.MAX_SAFE_INTEGER, 2 ** 53, 1e308, Number.NaN, Infinity, -Infinity,
];
const BOUNDARY_STRINGS = [
  '', 'x', 'gpt-4o-mini', 'a'.repeat(64), 'a'.repeat(65), EMOJI.repeat(64), EMOJI.repeat(65), 'a'.repeat(63) + EMOJI,
  // A lone surrogate is one code point each; a broken pair is two.
  '\ud800'.repeat(64), '\ud800'.repeat(65), `${'a'.repeat(63)}\udc00\ud800`,
  'a'.repeat(256), 'a'.repeat(257), EMOJI.repeat(256), EMOJI.repeat(257), 'v'.repeat(512), 'v'.repeat(513), EMOJI.repeat(512), EMOJI.repeat(513),
  'gpt\n', 'gpt\u007f', '\u0000', '\u001f', '\u0080', 'x'.repeat(100_000),
];
const LITERALS = [
  'system', 'developer', 'user', 'assistant', 'tool', 'function', 'text', 'image_url', 'input_audio', 'file', 'refusal',
  'json_schema', 'json_object', 'none', 'auto', 'required', 'low', 'high', 'ultra',
];

const nearNumber = fc.oneof(fc.constantFrom(...BOUNDARY_NUMBERS), fc.double(), fc.integer({ min: -300, max: 300 }));
const nearString = fc.oneof(fc.constantFrom(...BOUNDARY_STRINGS, ...LITERALS), fc.string({ unit: 'binary', maxLength: 8 }));
/** Mostly `valid`, sometimes anything near a limit or of another kind. */
const mostly = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof(
    { arbitrary: valid, weight: 30 },
    { arbitrary: fc.oneof(nearNumber, nearString, fc.constantFrom(null, true, [], {})), weight: 1 },
  );
const nullable = <T>(valid: fc.Arbitrary<T>) => mostly(fc.oneof({ arbitrary: valid, weight: 3 }, { arbitrary: fc.constant(null), weight: 1 }));
const text = fc.string({ maxLength: 12 });
/** Mostly within [min, max]; sometimes at an edge or just beyond it. */
const numberIn = (min: number, max: number) =>
  nullable(fc.oneof({ arbitrary: fc.double({ min, max, noNaN: true }), weight: 6 }, { arbitrary: fc.constantFrom(min, max, min - 1e-9, max + 1e-9), weight: 1 }));
const integerIn = (min: number, max: number) =>
  nullable(
    fc.oneof(
      { arbitrary: fc.bigInt({ min: BigInt(min), max: BigInt(max) }).map(Number), weight: 6 },
      { arbitrary: fc.constantFrom(min, max, min - 1, max + 1, min + 0.5), weight: 1 },
    ),
  );

/** Records and dictionaries as JSON.parse makes them: never null-prototype (the check refuses those; see NOT_PLAIN). */
const PLAIN = { noNullPrototype: true } as const;

const textPart = fc.record({ type: fc.constant('text'), text: mostly(text) }, PLAIN);
const imagePart = fc.record(
  { type: fc.constant('image_url'), image_url: mostly(fc.record({ url: mostly(text), detail: mostly(fc.constantFrom('auto', 'low', 'high')) }, { ...PLAIN, requiredKeys: ['url'] })) },
  PLAIN,
);
const otherPart = fc.constantFrom(
  { type: 'refusal', refusal: 'no' },
  { type: 'input_audio', input_audio: { data: '', format: 'wav' } },
  { type: 'file', file: { file_id: 'f' } },
);
const userPart = fc.oneof({ arbitrary: textPart, weight: 4 }, { arbitrary: imagePart, weight: 4 }, { arbitrary: otherPart, weight: 1 });
const textContent = mostly(fc.oneof(text, fc.array(textPart, { maxLength: 3 })));
/** A string that is sometimes one of the boundary strings. */
const limitString = fc.oneof({ arbitrary: text, weight: 4 }, { arbitrary: fc.constantFrom(...BOUNDARY_STRINGS), weight: 1 });
const name = mostly(limitString);
const generatedToolCall = fc.record({
  id: mostly(text),
  type: mostly(fc.constant('function')),
  function: mostly(fc.record({ name: mostly(text), arguments: mostly(fc.constant('{}')) }, PLAIN)),
}, PLAIN);
const jsonObject = mostly(fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { ...PLAIN, maxKeys: 3 }));

const systemMessage = fc.record({ role: fc.constantFrom('system', 'developer'), content: textContent, name }, { ...PLAIN, requiredKeys: ['role', 'content'] });
const userMessage = fc.record(
  { role: fc.constant('user'), content: mostly(fc.oneof(text, fc.array(userPart, { maxLength: 3 }))), name },
  { ...PLAIN, requiredKeys: ['role', 'content'] },
);
const assistantMessage = fc.record(
  {
    role: fc.constant('assistant'),
    content: mostly(fc.oneof(text, fc.constant(null), fc.array(fc.oneof(textPart, fc.constant({ type: 'refusal', refusal: 'no' })), { maxLength: 2 }))),
    name,
    tool_calls: mostly(fc.array(generatedToolCall, { maxLength: 2 })),
    refusal: nullable(text),
  },
  { ...PLAIN, requiredKeys: ['role'] },
);
const toolMessage = fc.record(
  { role: fc.constant('tool'), content: textContent, tool_call_id: mostly(text), name: fc.anything({ maxDepth: 1 }) },
  { ...PLAIN, requiredKeys: ['role', 'content', 'tool_call_id'] },
);
const message = fc.oneof(
  { arbitrary: systemMessage, weight: 5 },
  { arbitrary: userMessage, weight: 5 },
  { arbitrary: assistantMessage, weight: 5 },
  { arbitrary: toolMessage, weight: 5 },
  { arbitrary: fc.record({ role: fc.constantFrom('function', 'model'), content: text }, PLAIN), weight: 1 },
);

const tool = fc.record({
  type: mostly(fc.constant('function')),
  function: mostly(
    fc.record(
      { name: mostly(limitString), description: mostly(text), parameters: jsonObject, strict: nullable(fc.boolean()) },
      { ...PLAIN, requiredKeys: ['name'] },
    ),
  ),
}, PLAIN);

const responseFormat = fc.oneof(
  fc.record({ type: fc.constantFrom('text', 'json_object', 'xml') }, PLAIN),
  fc.record({
    type: fc.constant('json_schema'),
    json_schema: mostly(
      fc.record(
        { name: mostly(limitString), description: mostly(text), schema: jsonObject, strict: nullable(fc.boolean()) },
        { ...PLAIN, requiredKeys: ['name'] },
      ),
    ),
  }, PLAIN),
);

const generatedRequest = fc.record(
  {
    model: mostly(fc.oneof({ arbitrary: fc.constantFrom('gpt-4o-mini', 'claude-sonnet'), weight: 4 }, { arbitrary: fc.constantFrom(...BOUNDARY_STRINGS), weight: 1 })),
    messages: mostly(fc.array(message, { minLength: 1, maxLength: 3 })),
    stream: nullable(fc.boolean()),
    stream_options: nullable(fc.record({ include_usage: mostly(fc.boolean()) }, { ...PLAIN, requiredKeys: [] })),
    max_tokens: integerIn(1, Number.MAX_SAFE_INTEGER),
    max_completion_tokens: integerIn(1, Number.MAX_SAFE_INTEGER),
    temperature: numberIn(0, 2),
    top_p: numberIn(0, 1),
    n: integerIn(1, 128),
    stop: nullable(fc.oneof(text, fc.array(text, { maxLength: 5 }))),
    presence_penalty: numberIn(-2, 2),
    frequency_penalty: numberIn(-2, 2),
    logit_bias: nullable(fc.dictionary(fc.constantFrom('50256', '1', 'x'), fc.double(), { ...PLAIN, maxKeys: 2 })),
    logprobs: nullable(fc.boolean()),
    top_logprobs: integerIn(0, 20),
    seed: integerIn(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
    user: mostly(text),
    tools: mostly(fc.array(tool, { maxLength: 2 })),
    tool_choice: mostly(fc.oneof(fc.constantFrom('none', 'auto', 'required'), fc.record({ type: mostly(fc.constant('function')), function: mostly(fc.record({ name: mostly(text) }, PLAIN)) }, PLAIN))),
    parallel_tool_calls: mostly(fc.boolean()),
    response_format: mostly(responseFormat),
    metadata: nullable(fc.dictionary(limitString, mostly(limitString), { ...PLAIN, maxKeys: 2 })),
    store: nullable(fc.boolean()),
    reasoning_effort: nullable(text),
    service_tier: fc.anything({ maxDepth: 2 }),
  },
  { ...PLAIN, requiredKeys: ['model', 'messages'] },
);

/** Replacement values: JSON of every kind, numbers and strings at the limits, the schema's literals and shapes, and what JSON cannot carry. */
const replacement = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  nearNumber,
  nearString,
  fc.constantFrom(
    null, undefined, true, [], {}, [null], ['a', 'b', 'c', 'd', 'e'],
    { role: 'user', content: 'hi' }, { role: 'assistant', content: null }, { type: 'text', text: 't' }, { type: 'refusal', refusal: 'r' },
    { type: 'input_audio', input_audio: { data: '', format: 'wav' } }, { url: 'u', detail: 'high' }, toolCall, weatherTool, { include_usage: true },
    JSON.parse('{"__proto__":{"a":1}}'),
  ),
  fc.anything({ maxDepth: 2 }),
);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant({ kind: 'drop' as const }),
  replacement.map((value) => ({ kind: 'set' as const, value })),
  fc.boolean().map((inArray) => ({ kind: 'wrap' as const, inArray })),
  fc.record({
    kind: fc.constant('add' as const),
    key: fc.constantFrom(
      'junk', 'name', 'role', 'content', 'type', 'text', 'tool_calls', 'tool_call_id', 'refusal', 'detail', 'strict', 'description',
      'parameters', 'schema', 'include_usage', 'metadata', 'user', 'temperature', 'tools', '__proto__', 'constructor',
    ),
    value: replacement,
  }),
);

/** `value` with each mutation applied in turn, each at a path picked among the current value's. */
function withMutations(value: unknown, mutations: ReadonlyArray<readonly [number, Mutation]>): unknown {
  let current = value;
  for (const [pick, each] of mutations) {
    const paths = pathsIn(current);
    current = mutated(current, paths[pick % paths.length]!, each);
  }
  return current;
}

test('generated requests near every limit, some mutated: the check is sound, and says yes to most of what the schema keeps', () => {
  const share = shareCounter();
  fc.assert(
    fc.property(generatedRequest, fc.array(fc.tuple(fc.nat(), mutation), { maxLength: 2 }), (value, mutations) => share.record(withMutations(value, mutations))),
    fuzzRuns(5_000),
  );
  share.assertShare(0.9, 300);
});

test('mutations of real requests: the check is sound, and says yes to most of what the schema keeps', () => {
  const fixtures = REAL_REQUESTS.map(([, value]) => value);
  const share = shareCounter();
  fc.assert(
    fc.property(fc.nat({ max: fixtures.length - 1 }), fc.array(fc.tuple(fc.nat(), mutation), { minLength: 1, maxLength: 3 }), (fixtureIndex, mutations) =>
      share.record(withMutations(fixtures[fixtureIndex], mutations)),
    ),
    fuzzRuns(4_000),
  );
  share.assertShare(0.9, 500);
});

test('arbitrary values: the check is sound', () => {
  fc.assert(
    fc.property(fc.anything({ maxDepth: 3 }), (value) => assertSound(value)),
    fuzzRuns(1_000),
  );
});
