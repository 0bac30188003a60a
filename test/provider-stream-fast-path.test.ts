/**
 * The streaming fast path of OpenAI-format upstreams: plain content chunks pass as the
 * upstream's bytes without decoding or JSON.parse, the chunks the gateway reads (finish reason,
 * usage, errors) are parsed, whatever the scan accepts JSON.parse accepts too (so a corrupted
 * line is an error, never relayed garbage), and any framing the fast path does not know is read
 * by a general SSE parser with the same result.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SeedError } from '../src/errors.ts';
import { MUST_PARSE, PlainChunkScanner, USAGE_ONLY } from '../src/providers/openai-chunk-scan.ts';
import type { UpstreamResponse } from '../src/providers/http.ts';
import { UpstreamBody, headersOf } from '../src/providers/upstream-call.ts';
import { openAIStreamChunks } from '../src/providers/openai-stream.ts';
import type { ChatCompletionChunk } from '../src/wire/openai.ts';
import { PlainChunks, UsageChunk, parsedChunks, streamChunkFrames, type ReportedUsage, type StreamChunk } from '../src/wire/stream-chunk.ts';
import { fuzzRuns } from './helpers/fuzz-runs.ts';

const head = '{"id":"chatcmpl-9x","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1"';
const contentLine = (content: string, tail = ',"usage":null') =>
  `${head},"choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}},"logprobs":null,"finish_reason":null}]${tail}}`;
const FINISH_LINE = `${head},"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`;
const USAGE_LINE = `${head},"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":50,"total_tokens":59}}`;
/** OpenAI's usage chunk as it is sent today, details and all. */
const FULL_USAGE_LINE =
  `${head},"service_tier":"default","choices":[],"usage":{"prompt_tokens":1017,"completion_tokens":32,"total_tokens":1049,` +
  '"prompt_tokens_details":{"cached_tokens":896,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,' +
  '"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}';

/** Lines of the kinds upstreams send that must take the fast path. */
const PLAIN_LINES: readonly string[] = [
  contentLine(' the quick'),
  contentLine('', ''),
  `${head},"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"x1"}`,
  // Raw non-ASCII without escapes (two-, three- and four-byte UTF-8): a resumed line reads it in one pass.
  contentLine('café 日本 😀'),
  // Escapes, non-ASCII, an astral character (two UTF-16 units), a quote and a backslash.
  contentLine('line\n"quoted" \\ tab\t é 😀 \u0001'),
  String.raw`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"caf\u00e9 \ud83d\ude00 \/"},"finish_reason":null}]}`,
  // A tool-call argument delta: escaped JSON inside a string.
  `${head},"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"city\\": \\"Par"}}]},"logprobs":null,"finish_reason":null}],"usage":null}`,
  // Python's json.dumps spacing (vLLM, older servers), n = 2, numbers of every shape.
  '{"id": "cmpl-1", "object": "chat.completion.chunk", "created": 1.5e9, "model": "llama", "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}, {"index": 1, "delta": {"content": "Yo!"}, "finish_reason": null}], "extra": [-0.25, 0, true, false, null, {}, []]}',
  // Azure: content filter results on every content chunk.
  '{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{"content":" Azure"},"finish_reason":null,"index":0,"logprobs":null}],"created":1,"id":"chatcmpl-a","model":"gpt-4o","object":"chat.completion.chunk","system_fingerprint":"fp"}',
];

/** The characters the gateway counts for a parsed chunk (src/gateway/calls.ts). */
function parsedChars(chunk: ChatCompletionChunk): number {
  let chars = 0;
  for (const choice of chunk.choices) {
    chars += (choice.delta.content?.length ?? 0) + (choice.delta.tool_calls?.reduce((sum, call) => sum + (call.function?.arguments?.length ?? 0), 0) ?? 0);
  }
  return chars;
}

/** Every string-valued `content` and `arguments` anywhere in a value: what the scan counts. */
function contentChars(value: unknown): number {
  if (Array.isArray(value)) return value.reduce((sum: number, item: unknown) => sum + contentChars(item), 0);
  if (value === null || typeof value !== 'object') return 0;
  let chars = 0;
  for (const [key, item] of Object.entries(value)) {
    chars += (key === 'content' || key === 'arguments') && typeof item === 'string' ? item.length : contentChars(item);
  }
  return chars;
}

/** Keys anywhere in a value, for checking that an accepted line has no `error`. */
function hasKey(value: unknown, name: string): boolean {
  if (Array.isArray(value)) return value.some((item) => hasKey(item, name));
  if (value === null || typeof value !== 'object') return false;
  return Object.entries(value).some(([key, item]) => key === name || hasKey(item, name));
}

/**
 * What acceptance promises: the line parses, is a chunk with choices, and carries no usage and
 * no error, a finish reason only as a choice's string; and the count is what the parsed value holds.
 */
function assertAcceptedLineIsPlain(line: string, chars: number): void {
  let value: unknown;
  assert.doesNotThrow(() => (value = JSON.parse(line)), `accepted, but JSON.parse rejects: ${JSON.stringify(line)}`);
  const chunk = value as ChatCompletionChunk;
  assert.ok(chunk !== null && typeof chunk === 'object' && !Array.isArray(chunk), line);
  assert.ok(Array.isArray(chunk.choices) && chunk.choices.length > 0, `accepted without choices: ${line}`);
  assert.ok(chunk.usage === undefined || chunk.usage === null, `accepted with usage: ${line}`);
  assert.ok(
    chunk.choices.every((choice) => choice.finish_reason === null || choice.finish_reason === undefined || typeof choice.finish_reason === 'string'),
    `accepted with a finish reason that is not a string: ${line}`,
  );
  assert.ok(!hasKey(value, 'error'), `accepted with an error: ${line}`);
  assert.equal(chars, contentChars(value), `characters of ${line}`);
}

/**
 * Scans `line` where it sits in a buffer between other bytes (`after` follows it: the scan must
 * stop at the line's end, whatever comes next), as a stream's scanner sees a read.
 */
function scanLine(scanner: PlainChunkScanner, line: string, after = '\n\ndata: {"choices":[{"delta":{}}]}\n\n'): number {
  const before = 'data: ';
  const bytes = Buffer.from(before + line + after);
  const start = Buffer.byteLength(before);
  const chars = scanner.scan(bytes, start, start + Buffer.byteLength(line));
  // An accepted line parses (what the other checks hold it to); its finish is what parsing finds.
  if (chars >= 0) assert.equal(scanner.finished, finishedByParsing(line), `finished: ${line}`);
  // A usage chunk's counts are what the gateway reads from the parsed chunk.
  if (chars === USAGE_ONLY) assert.deepEqual(scanner.usage, usageByParsing(line), `usage: ${line}`);
  return chars;
}

/**
 * The counts the gateway settles on when it parses `line` (src/gateway/calls.ts), for a line that
 * is a usage chunk to the scan: an object with an empty `choices`, a `usage` object, no `error`.
 */
function usageByParsing(line: string): ReportedUsage {
  const value = parsedOrNot(line);
  assert.notEqual(value, NOT_JSON, `read as a usage chunk, but JSON.parse rejects: ${JSON.stringify(line)}`);
  const chunk = value as ChatCompletionChunk;
  assert.ok(Array.isArray(chunk.choices) && chunk.choices.length === 0, `a usage chunk with choices: ${line}`);
  assert.ok(!hasKey(value, 'error'), `a usage chunk with an error: ${line}`);
  const usage = chunk.usage;
  assert.ok(usage !== null && typeof usage === 'object', `a usage chunk without usage: ${line}`);
  return { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens, cachedTokens: usage.prompt_tokens_details?.cached_tokens ?? 0 };
}

const NOT_JSON = Symbol('not JSON');

/** `line` parsed, or NOT_JSON. */
function parsedOrNot(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return NOT_JSON;
  }
}

/** Whether the parsing path (openai-stream.ts `event`) takes this line for a finished stream. */
function finishedByParsing(line: string): boolean {
  const value = parsedOrNot(line);
  if (value === NOT_JSON) return false;
  const choices = (value as { choices?: unknown } | null)?.choices;
  return Array.isArray(choices) && choices.some((choice) => Boolean((choice as { finish_reason?: unknown } | null)?.finish_reason));
}

/**
 * Scans `line` as the first line of a stream, and after `before` (the line a stream's scanner
 * accepted last, whose bytes before its content string a line sharing it resumes from): both
 * answers must agree. `after` is what follows the line in the read.
 */
function plainChunkChars(line: string, before: string = PLAIN_LINES[0] as string, after?: string): number {
  const fresh = scanLine(new PlainChunkScanner(), line, after);
  const primed = new PlainChunkScanner();
  assert.ok(scanLine(primed, before) >= 0, before);
  assert.equal(scanLine(primed, line, after), fresh, `resumed after ${before}: ${line}`);
  return fresh;
}

/** A scanner that has accepted a content line (it resumes lines that start as that one did). */
function primedScanner(): PlainChunkScanner {
  const scanner = new PlainChunkScanner();
  assert.notEqual(scanLine(scanner, PLAIN_LINES[0] as string), MUST_PARSE);
  return scanner;
}

/** A line of a stream, with what follows it in its read when that is not the usual next event. */
type StreamLine = string | { line: string; after: string };

/**
 * Scans `lines` in order with one scanner, as one stream's, and each also with a fresh scanner:
 * what a scanner remembers of the lines before must change no answer, and an accepted line must
 * be plain. Returns the answers.
 */
function scanStream(lines: readonly StreamLine[]): number[] {
  const scanner = new PlainChunkScanner();
  return lines.map((each) => {
    const { line, after } = typeof each === 'string' ? { line: each, after: undefined } : each;
    const chars = scanLine(scanner, line, after);
    assert.equal(chars, scanLine(new PlainChunkScanner(), line, after), `in a stream: ${line}`);
    if (chars >= 0) assertAcceptedLineIsPlain(line, chars);
    return chars;
  });
}

/**
 * No `error` key, every `usage` null and every `finish_reason` null, at any depth, but for a
 * choice's `finish_reason`, which may be a string: nothing the gateway reads but the finish.
 */
function readsNothing(value: unknown, isChoice = false): boolean {
  if (Array.isArray(value)) return value.every((item) => readsNothing(item));
  if (value === null || typeof value !== 'object') return true;
  return Object.entries(value).every(([key, item]) => {
    if (key === 'error') return false;
    if (key === 'usage') return item === null;
    if (key === 'finish_reason') return item === null || (isChoice && typeof item === 'string');
    return readsNothing(item);
  });
}

/** `readsNothing` for a whole chunk: the elements of its top-level `choices` are choices. */
function chunkReadsNothing(value: object): boolean {
  return Object.entries(value).every(([key, item]) =>
    key === 'choices' && Array.isArray(item) ? item.every((choice) => readsNothing(choice, true)) : readsNothing({ [key]: item }),
  );
}

/**
 * What a scan should answer for `line`, by JSON.parse: its characters when it is a plain chunk,
 * USAGE_ONLY for a usage chunk whose counts are whole numbers, else MUST_PARSE.
 */
function expectedAnswer(line: string): number {
  const value = parsedOrNot(line);
  if (value === NOT_JSON) return MUST_PARSE;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return MUST_PARSE;
  const { choices, usage } = value as { choices?: unknown; usage?: unknown };
  if (Array.isArray(choices) && choices.length === 0 && isCountedUsage(usage) && !hasKey(value, 'error')) return USAGE_ONLY;
  if (!Array.isArray(choices) || choices.length === 0 || !chunkReadsNothing(value)) return MUST_PARSE;
  return contentChars(value);
}

/** A `usage` object the scan reads in place: whole-number prompt and completion counts, and a cached count, if any, too. */
function isCountedUsage(usage: unknown): boolean {
  if (usage === null || typeof usage !== 'object' || Array.isArray(usage)) return false;
  const { prompt_tokens: prompt, completion_tokens: completion, prompt_tokens_details: details } = usage as Record<string, unknown>;
  const isCount = (count: unknown) => Number.isSafeInteger(count) && (count as number) >= 0;
  if (!isCount(prompt) || !isCount(completion)) return false;
  if (details === null || typeof details !== 'object' || Array.isArray(details) || !('cached_tokens' in details)) return true;
  return isCount((details as Record<string, unknown>).cached_tokens);
}

describe('PlainChunkScanner', () => {
  test('plain content chunks take the fast path and count what the gateway would count', () => {
    for (const line of PLAIN_LINES) {
      const chars = plainChunkChars(line);
      assert.notEqual(chars, MUST_PARSE, line);
      assert.equal(chars, parsedChars(JSON.parse(line) as ChatCompletionChunk), line);
      assertAcceptedLineIsPlain(line, chars);
    }
    assert.equal(plainChunkChars(contentLine('😀')), 2, 'UTF-16 code units, like String#length');
  });

  test('chunks the gateway reads are parsed, whatever their spacing', () => {
    const mustParse = [
      // usage on a chunk with choices, with spaces around the colon, and pretty-printed (multi-line) JSON.
      '{"choices":[{"index":0,"delta":{"content":"a"}}],"usage" : {"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}',
      '{"choices":[{"index":0,"delta":{"content":"a"}}],"usage":0}',
      '{\n  "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": null}]\n}',
      // Errors, at the top or nested.
      '{"error":{"message":"overloaded","type":"server_error"}}',
      '{"choices":[{"index":0,"delta":{"content":"a"}}],"error":{"message":"x"}}',
      '{"choices":[{"index":0,"delta":{"content":"a"},"content_filter_results":{"error":{"code":"x"}}}]}',
      // Keys spelled with escapes could be usage or error in disguise.
      String.raw`{"choices":[{"index":0,"delta":{"content":"a"}}],"us\u0061ge":{"prompt_tokens":1}}`,
      // Not a chunk with choices: missing, empty (usage and Azure filter chunks), not an array, duplicated, nested only.
      '{"id":"x","object":"chat.completion.chunk"}',
      '{"choices":[],"prompt_filter_results":[]}',
      '{"choices":[ ],"id":""}',
      '{"choices":{"0":{"delta":{"content":"a"}}}}',
      '{"choices":[{"delta":{}}],"choices":[{"delta":{"content":"a"}}]}',
      '{"data":{"choices":[{"delta":{"content":"a"}}]}}',
      // Not an object.
      '[{"choices":[{"delta":{"content":"a"}}]}]',
      '"{\\"choices\\":[1]}"',
      'null',
      '',
    ];
    for (const line of mustParse) assert.equal(plainChunkChars(line), MUST_PARSE, line);
  });

  test('usage chunks are read in place, with the counts parsing gives; any other usage is parsed', () => {
    const read: ReadonlyArray<readonly [string, ReportedUsage]> = [
      [USAGE_LINE, { promptTokens: 9, completionTokens: 50, cachedTokens: 0 }],
      [FULL_USAGE_LINE, { promptTokens: 1017, completionTokens: 32, cachedTokens: 896 }],
      ['{"id": "c", "choices": [ ], "usage" : {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}', { promptTokens: 1, completionTokens: 2, cachedTokens: 0 }],
      ['{"usage":{"completion_tokens":0,"prompt_tokens":0,"prompt_tokens_details":null},"choices":[]}', { promptTokens: 0, completionTokens: 0, cachedTokens: 0 }],
      ['{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":6,"prompt_tokens_details":{"audio_tokens":1}}}', { promptTokens: 5, completionTokens: 6, cachedTokens: 0 }],
      // A repeated count: JSON.parse keeps the last, and so does the scan.
      ['{"choices":[],"usage":{"prompt_tokens":5,"prompt_tokens":7,"completion_tokens":6}}', { promptTokens: 7, completionTokens: 6, cachedTokens: 0 }],
      // Counts nested elsewhere are not the chunk's.
      ['{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":6,"completion_tokens_details":{"prompt_tokens":99,"cached_tokens":98}},"x":{"prompt_tokens":97}}', { promptTokens: 5, completionTokens: 6, cachedTokens: 0 }],
      ['{"choices":[],"usage":{"prompt_tokens":2147483647,"completion_tokens":6,"prompt_tokens_details":{"cached_tokens":4,"x":{"cached_tokens":5}}}}', { promptTokens: 2_147_483_647, completionTokens: 6, cachedTokens: 4 }],
    ];
    for (const [line, usage] of read) {
      for (const scanner of [new PlainChunkScanner(), primedScanner()]) {
        assert.equal(scanLine(scanner, line), USAGE_ONLY, line);
        assert.deepEqual(scanner.usage, usage, line);
      }
      assert.equal(expectedAnswer(line), USAGE_ONLY, line);
    }
    const parsed = [
      // Counts that are not whole numbers in JSON's plainest spelling, or missing.
      '{"choices":[],"usage":{"prompt_tokens":1.0,"completion_tokens":2}}',
      '{"choices":[],"usage":{"prompt_tokens":1e2,"completion_tokens":2}}',
      '{"choices":[],"usage":{"prompt_tokens":-1,"completion_tokens":2}}',
      '{"choices":[],"usage":{"prompt_tokens":"1","completion_tokens":2}}',
      '{"choices":[],"usage":{"prompt_tokens":null,"completion_tokens":2}}',
      '{"choices":[],"usage":{"prompt_tokens":1234567890123456,"completion_tokens":2}}',
      // Beyond what the ledger's integer columns hold (MAX_TOKEN_COUNT): the parse path refuses it.
      '{"choices":[],"usage":{"prompt_tokens":2147483648,"completion_tokens":2}}',
      '{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":9999999999}}}',
      '{"choices":[],"usage":{"completion_tokens":2,"total_tokens":2}}',
      '{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":0.5}}}',
      '{"choices":[],"usage":{"prompt_tokens":1,"prompt_tokens":null,"completion_tokens":2}}',
      // Duplicated keys whose last value JSON.parse keeps is not the one read, or two shapes of chunk at once.
      '{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2},"usage":null}',
      '{"choices":[],"usage":null,"usage":{"prompt_tokens":1,"completion_tokens":2}}',
      '{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":1},"prompt_tokens_details":null}}',
      '{"choices":[],"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}',
      '{"choices":[{"delta":{}}],"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}',
      // No usage, a usage that is not an object, an error, a usage nested deeper.
      '{"choices":[],"usage":null}',
      '{"choices":[],"usage":[1,2]}',
      '{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2},"error":{"message":"x"}}',
      '{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"error":null}}',
      '{"choices":[],"x":{"usage":{"prompt_tokens":1,"completion_tokens":2}}}',
      String.raw`{"choices":[],"us\u0061ge":{"prompt_tokens":1,"completion_tokens":2}}`,
      // An escaped key JSON.parse reads as a count the scan would have read.
      String.raw`{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"prompt\u005ftokens":10}}`,
    ];
    for (const line of parsed) assert.equal(plainChunkChars(line), MUST_PARSE, line);
  });

  test('finish chunks stay plain and report the finish; a finish reason anywhere but in a choice is parsed', () => {
    const finishing = [
      FINISH_LINE,
      '{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason" : "length"}]}',
      '{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":\t"stop"}]}',
      String.raw`{"choices":[{"index":0,"delta":{},"finish_reason":"\u0073top"}]}`,
      '{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null},{"index":1,"delta":{},"finish_reason":"stop"}]}',
    ];
    for (const line of finishing) {
      const scanner = new PlainChunkScanner();
      assert.notEqual(scanLine(scanner, line), MUST_PARSE, line);
      assert.equal(scanner.finished, true, line);
    }
    // An empty reason is no finish, for the parsing path too.
    const empty = new PlainChunkScanner();
    assert.equal(scanLine(empty, '{"choices":[{"delta":{"content":"a"},"finish_reason":""}]}'), 1);
    assert.equal(empty.finished, false);
    // The flag is the last line's: a content line after a finish line is not finished.
    const stream = new PlainChunkScanner();
    scanLine(stream, FINISH_LINE);
    scanLine(stream, contentLine('b'));
    assert.equal(stream.finished, false);
    const parsed = [
      '{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":1}]}',
      '{"choices":[{"index":0,"delta":{"content":"a","finish_reason":"stop"}}]}',
      '{"choices":[{"index":0,"delta":{"content":"a"}}],"finish_reason":"stop"}',
      '{"choices":[[{"finish_reason":"stop"}]]}',
      '{"x":[{"finish_reason":"stop"}],"choices":[{"delta":{"content":"a"}}]}',
    ];
    for (const line of parsed) assert.equal(plainChunkChars(line), MUST_PARSE, line);
  });

  test('truncated and corrupted lines that look like chunks are never accepted', () => {
    const corrupt = [
      // A missing brace: starts with {" and ends with }, but is not JSON.
      '{"id":"x","choices":[{"delta":{"content":"a"}}]',
      '{"choices":[}',
      '{"choices":[{"delta":{"content":"a"}]}',
      '{"choices":[{"delta":{"content":"a}}]}',
      '{"choices":[{"delta":{"content":"a"}}]}}',
      '{"choices":[{"delta":{"content":"a"}}]}{"choices":[{"delta":{"content":"b"}}]}',
      '{"choices":[{"delta":{"content":"a\\x"}}]}',
      '{"choices":[{"delta":{"content":"a\\u12"}}]}',
      '{"choices":[{"delta":{"content":"a\tb"}}]}',
      '{"choices":[{"delta":{"content":"a"},}]}',
      '{"choices":[{"delta":{"content":"a"}},]}',
      '{"choices":[{"delta":{"content" "a"}}]}',
      '{"choices":[{"index":01,"delta":{"content":"a"}}]}',
      '{"choices":[{"index":1.,"delta":{"content":"a"}}]}',
      '{"choices":[{"index":-,"delta":{"content":"a"}}]}',
      '{"choices":[{"logprobs":nul,"delta":{"content":"a"}}]}',
      '{"choices":[{"logprobs":NaN,"delta":{"content":"a"}}]}',
      "{'choices':[{'delta':{'content':'a'}}]}",
    ];
    for (const line of corrupt) {
      assert.throws(() => JSON.parse(line), `the case is invalid JSON: ${line}`);
      assert.equal(plainChunkChars(line), MUST_PARSE, line);
    }
  });

  test('fuzz: whatever the scan accepts, JSON.parse accepts, with the same meaning', () => {
    const replacements = ['{', '}', '[', ']', '"', '\\', ':', ',', ' ', '\t', '\n', 'n', 'u', '0', '-', '.', 'e', '\u0001', 'x'];
    let accepted = 0;
    let readAsUsage = 0;
    let checked = 0;
    for (const original of [...PLAIN_LINES, FINISH_LINE, USAGE_LINE, FULL_USAGE_LINE]) {
      // A mutation after the content string is scanned from where the original resumes.
      const before = PLAIN_LINES.includes(original) ? original : (PLAIN_LINES[0] as string);
      // What follows a line in the buffer is the rest of the original: a scan that read past
      // the line's end would accept a truncated line.
      const check = (line: string, after = '') => {
        checked += 1;
        const chars = plainChunkChars(line, before, after);
        // A usage chunk's counts were checked against JSON.parse's in scanLine.
        if (chars === USAGE_ONLY) readAsUsage += 1;
        if (chars < 0) return;
        accepted += 1;
        assertAcceptedLineIsPlain(line, chars);
      };
      for (let cut = 0; cut < original.length; cut += 1) check(original.slice(0, cut), original.slice(cut));
      for (let at = 0; at < original.length; at += 1) {
        check(original.slice(0, at) + original.slice(at + 1));
        for (const replacement of replacements) {
          check(original.slice(0, at) + replacement + original.slice(at + 1));
          check(original.slice(0, at) + replacement + original.slice(at));
        }
      }
      for (const other of PLAIN_LINES) check(original.slice(0, original.length >> 1) + other.slice(other.length >> 1));
    }
    // Deleting a character inside a string or a number keeps a valid plain chunk, so some are accepted.
    assert.ok(accepted > 100 && readAsUsage > 100 && checked > 50_000, `${accepted} plain and ${readAsUsage} usage of ${checked}`);
  });

  test('a line that ends as the last one did still has its content string checked and counted', () => {
    const [before, after] = contentLine('CONTENT').split('"CONTENT"') as [string, string];
    const plain = ['"plain"', '""', String.raw`"line\nbreak \"q\" \\ \/"`, String.raw`"caf\u00e9 \ud83d\ude00"`, '"é 😀 \u2028"'];
    for (const content of plain) {
      const line = before + content + after;
      assert.equal(plainChunkChars(line, contentLine('x')), (JSON.parse(content) as string).length, line);
    }
    // A raw control character, escapes JSON lacks, and strings that end elsewhere than their first quote.
    const corrupt = ['"a\u0001b"', '"a\tb"', String.raw`"\x"`, String.raw`"\u12G4"`, String.raw`"a\"`, '"a"b"', '"a\u0000"'];
    for (const content of corrupt) {
      const line = before + content + after;
      assert.throws(() => JSON.parse(line), line);
      assert.equal(plainChunkChars(line, contentLine('x')), MUST_PARSE, line);
    }
  });

  test('the remembered suffix is the one after the prefix a line resumes from', () => {
    // The same closing bytes after a deeper prefix do not close it.
    const shallow = (content: string) => `{"choices":[{"delta":{"content":${content}}}]}`;
    const deep = (content: string, tail = '}}}]}') => `{"choices":[{"delta":{"x":{"content":${content}${tail}`;
    assert.deepEqual(scanStream([shallow('"a"'), deep('"bb"'), deep('"c"', '}}]}'), deep('"dd"')]), [1, 2, MUST_PARSE, 2]);
    // A line resumed from the prefix but ending otherwise is remembered too, when accepted: the lines after it end like it.
    const envelope = (content: string, tail = '},"finish_reason":null}],"usage":null}') => `{"choices":[{"index":0,"delta":{"content":${content}${tail}`;
    assert.deepEqual(
      scanStream([
        envelope('"a"'),
        envelope('"bb"', '},"finish_reason":null}]}'),
        envelope('"ccc"', '},"finish_reason":null}]}'),
        envelope('"d"'),
        envelope('"ee"', '},"finish_reason":null}]'),
        envelope('"ff"', '},"finish_reason":"stop"}]}'),
        envelope('"g"', '},"finish_reason":null}]}'),
        envelope('"hh"', '},"finish_reason":null}]}}'),
        envelope('"ii"', '},"finish_reason":null}]}}'),
        envelope('"j"', '},"finish_reason":null}]}'),
        // Finish chunks are plain, and never remembered: each one's finish is seen (scanLine checks).
        envelope('"kk"', '},"finish_reason":"stop"}]}'),
        envelope('"l"', '},"finish_reason":"stop"}]}'),
        envelope('"mm"', '},"finish_reason":null}]}'),
      ]),
      [1, 2, 3, 1, MUST_PARSE, 2, 1, MUST_PARSE, MUST_PARSE, 1, 2, 1, 2],
    );
  });

  test('counted strings after the first are counted on lines that end as the last one did', () => {
    const withArguments = (content: string, args = '"xyz"') => `{"choices":[{"delta":{"content":${content},"arguments":${args}}}]}`;
    assert.deepEqual(
      scanStream([withArguments('"a"'), withArguments('"bb"'), withArguments('"c"', String.raw`"x\ny"`), withArguments('"dd"', String.raw`"x\ny"`)]),
      [4, 5, 4, 5],
    );
    // The first counted string before the top-level choices: the suffix holds the choices.
    const topLevel = (content: string, tail = ',"choices":[{"delta":{}}]}') => `{"content":${content}${tail}`;
    assert.deepEqual(
      scanStream([topLevel('"a"'), topLevel('"bb"'), topLevel('"c"', ',"choices":[{"delta":{}}],"choices":[{}]}'), topLevel('"ddd"'), topLevel('"e"', ',"choices":[]}')]),
      [1, 2, MUST_PARSE, 3, MUST_PARSE],
    );
  });

  test('a line that is the start of the last one, or goes on after it, is not taken for it', () => {
    const line = contentLine('same');
    const answers = scanStream([
      line,
      line,
      // What was cut off follows in the read: a scan past the line's end would find the whole line.
      ...Array.from({ length: 60 }, (_, cut) => ({ line: line.slice(0, line.length - 1 - cut), after: line.slice(line.length - 1 - cut) })),
      `${line}}`,
      `${line} `,
      `${line},"x":1}`,
      contentLine('samesame'),
      line,
    ]);
    assert.deepEqual(answers, [4, 4, ...Array.from({ length: 60 }, () => MUST_PARSE), MUST_PARSE, MUST_PARSE, MUST_PARSE, 8, 4]);
  });

  test('a stream whose lines all end differently is scanned the same', () => {
    // After a few such lines the scanner stops remembering their suffix, until a line with another prefix.
    const withLogprobs = (word: string, logprob: number) =>
      `${head},"choices":[{"index":0,"delta":{"content":${JSON.stringify(word)}},"logprobs":{"content":[{"token":${JSON.stringify(word)},"logprob":${logprob}}]},"finish_reason":null}]}`;
    const lines = [...Array.from({ length: 12 }, (_, index) => withLogprobs(`w${index}`, -index)), withLogprobs('again', -1), withLogprobs('again', -1)];
    const shallow = (content: string) => `{"choices":[{"delta":{"content":${JSON.stringify(content)}}}]}`;
    assert.deepEqual(scanStream([...lines, `${lines[0]}}`, contentLine('new'), contentLine('suffix'), shallow('a'), shallow('bb'), `${shallow('c')}}`]), [
      ...Array.from({ length: 12 }, (_, index) => `w${index}`.length),
      5,
      5,
      MUST_PARSE,
      3,
      6,
      1,
      2,
      MUST_PARSE,
    ]);
  });

  test("lines that start with the stream's envelope are scanned from choices on, with the verdict of a whole scan", () => {
    // After a content line, the finish line, the usage line and lines that differ only after the
    // envelope do not start with the remembered prefix, but with the remembered envelope.
    const afterEnvelope = [
      ',"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}',
      ',  "choices":[{"index":0,"delta":{"content":"spaced"}}]}',
      ',"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}',
      ',"usage":{"prompt_tokens":3,"completion_tokens":4},"choices":[]}',
      ',"usage":{"prompt_tokens":3,"completion_tokens":4},"choices":[{"delta":{"content":"a"}}]}',
      ',"error":{"message":"x"},"choices":[{"delta":{"content":"a"}}]}',
      ',"choices":[{"delta":{"content":"a"}}],"choices":[]}',
      ',"choices":[{"delta":{"content":"a"}}]',
      ',"choices":[{"delta":{"content":"a"}}]}}',
      '}',
      ',}',
      ',"choices":[{"delta":{"content":"a"}}],"x":[1,{"y":"z"}]}',
    ];
    for (const rest of afterEnvelope) {
      const line = head + rest;
      const answer = plainChunkChars(line);
      assert.equal(answer, expectedAnswer(line), line);
      // And after a line with no envelope worth remembering, or with another one.
      assert.equal(plainChunkChars(line, '{"choices":[{"delta":{"content":"x"}}]}'), answer, line);
      assert.equal(plainChunkChars(line, contentLine('x').replace('fp_1', 'fp_2')), answer, line);
    }
    const stream = [contentLine('a'), contentLine('b'), FINISH_LINE, FULL_USAGE_LINE, USAGE_LINE, contentLine('c')];
    assert.deepEqual(scanStream(stream), [1, 1, 0, USAGE_ONLY, USAGE_ONLY, 1]);
  });

  test('a remembered line outlives its read, whose bytes may be reused; reads may be plain Uint8Arrays', () => {
    // Overwritten with a line of the same length before its first content string, that opens one object fewer.
    const first = '{"choices":[{"delta":{"content":"a"}}]}';
    const second = '{"choices":[{"xxxx":0,"content":"a"}]}';
    const prefixOf = (line: string) => line.slice(0, line.indexOf('"a"'));
    assert.equal(prefixOf(second).length, prefixOf(first).length);
    const scanner = new PlainChunkScanner();
    const read = Buffer.from(first);
    assert.equal(scanner.scan(read, 0, read.length), 1);
    read.write(prefixOf(second));
    // Plain Uint8Arrays (what fetch reads) are compared and copied as Buffers are.
    for (const [line, chars] of [[second, 1], [second.replace('"a"', '"bc"'), 2], [`${second}}`, MUST_PARSE]] as const) {
      const next = new TextEncoder().encode(line);
      assert.equal(scanner.scan(next, 0, next.length), chars, line);
    }
  });

  test('property: lines of a stream sharing prefixes and suffixes, some corrupted, get the verdict JSON.parse gives', () => {
    // Where the first counted string starts (the prefix a line resumes from), at several depths and spacings.
    const prefixes = [
      '{"choices":[{"delta":{"content":',
      '{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":',
      '{"choices":[{"delta":{"x":{"content":',
      '{"content":',
      '{"choices": [{"delta": {"content": ',
      `${head},"choices":[{"index":0,"delta":{"content":`,
    ];
    // What may follow the string: closings of some prefixes (after another, not JSON or a
    // different chunk), with counted strings, and with keys the gateway reads.
    const suffixes = [
      '}}]}',
      '},"logprobs":null,"finish_reason":null}],"usage":null}',
      '},"finish_reason":null}]}',
      ',"arguments":"x\\"y"}}]}',
      '},"finish_reason":"stop"}]}',
      '}}],"usage":{"prompt_tokens":1}}',
      '}}]}}]}',
      '},"type":"function"}]},"finish_reason":null}]}',
      '}}}]}',
      '},"arguments":"zz"}}]}',
      ',"choices":[{"delta":{}}]}',
      ',"choices":[{"delta":{"content":"q"}}]}',
      ',"choices":[]}',
      '}, "finish_reason": null}]}',
      '},"error":null}]}',
    ];
    const pieces = fc.oneof(fc.string({ unit: 'binary', maxLength: 3 }), fc.constantFrom('\n', '"', '\\', '/', '\u0001', 'é', '😀', '\u2028', ' '));
    const unicodeEscapes = (text: string) => Array.from({ length: text.length }, (_, at) => `\\u${text.charCodeAt(at).toString(16).padStart(4, '0')}`).join('');
    // A JSON string, each piece spelled as JSON.stringify does or with \u escapes.
    const jsonString = fc
      .array(fc.tuple(pieces, fc.boolean()), { maxLength: 6 })
      .map((parts) => `"${parts.map(([text, escaped]) => (escaped ? unicodeEscapes(text) : JSON.stringify(text).slice(1, -1))).join('')}"`);
    // Other values where the string was, and strings JSON does not allow.
    const otherValue = fc.constantFrom('null', '12', '{"content":"hé"}', '["x"]', '  "sp"', '\t"t"', 'true', '"a\u0001b"', '"\\x"', '"\\u12G4"', '"a\\"', '"a"b"', '"open');
    const corruption = fc.record({
      fromEnd: fc.boolean(),
      offset: fc.nat({ max: 90 }),
      kind: fc.constantFrom('delete', 'insert', 'replace', 'cut'),
      text: fc.constantFrom('{', '}', '[', ']', '"', '\\', ':', ',', ' ', '\t', '\n', 'n', 'u', '0', '-', 'e', '\u0001', 'x', 'é'),
    });
    // Pairs of them that make a chunk: the envelopes of a stream.
    const envelopes: ReadonlyArray<readonly [number, number]> = [
      ...[0, 1, 2, 3, 4, 5, 13, 14].map((suffix) => [0, suffix] as const),
      [1, 6],
      [1, 7],
      [2, 8],
      [2, 9],
      [3, 10],
      [3, 11],
      [3, 12],
      [4, 0],
      [4, 13],
      [5, 1],
      [5, 2],
    ];
    // A line mostly keeps the last line's envelope (null), or the stream changes to another, or to any pair.
    const envelope = fc.oneof(
      { weight: 6, arbitrary: fc.constant(null) },
      { weight: 2, arbitrary: fc.constantFrom(...envelopes) },
      { weight: 1, arbitrary: fc.tuple(fc.nat({ max: prefixes.length - 1 }), fc.nat({ max: suffixes.length - 1 })) },
    );
    const streamLine = fc.record({
      envelope,
      value: fc.oneof({ weight: 5, arbitrary: jsonString }, { weight: 1, arbitrary: otherValue }),
      corruption: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: corruption }),
    });
    // Lines after an accepted one with the same prefix and suffix: intact (the remembered suffix is
    // reused), and corrupted (it must not be).
    let repeated = 0;
    let repeatedCorrupted = 0;
    fc.assert(
      fc.property(fc.array(streamLine, { minLength: 1, maxLength: 12 }), (lines) => {
        const scanner = new PlainChunkScanner();
        let [prefix, suffix] = [0, 0];
        let lastAccepted = false;
        for (const spec of lines) {
          const repeats = lastAccepted && spec.envelope === null;
          [prefix, suffix] = spec.envelope ?? [prefix, suffix];
          const whole = `${prefixes[prefix]}${spec.value}${suffixes[suffix]}`;
          let line = whole;
          let after: string | undefined;
          if (spec.corruption !== null) {
            const { fromEnd, offset, kind, text } = spec.corruption;
            const at = fromEnd ? Math.max(0, whole.length - 1 - offset) : Math.min(offset, whole.length);
            if (kind === 'cut') [line, after] = [whole.slice(0, at), whole.slice(at)];
            else line = whole.slice(0, at) + (kind === 'delete' ? '' : text) + whole.slice(kind === 'insert' ? at : at + 1);
          }
          const chars = scanLine(scanner, line, after);
          assert.equal(chars, scanLine(new PlainChunkScanner(), line, after), `in a stream: ${JSON.stringify(line)}`);
          // Whatever the scan accepts is plain; an intact line is accepted exactly when it is plain.
          if (chars !== MUST_PARSE || spec.corruption === null) assert.equal(chars, expectedAnswer(line), JSON.stringify(line));
          if (repeats && spec.corruption === null && chars !== MUST_PARSE) repeated += 1;
          if (repeats && spec.corruption !== null) repeatedCorrupted += 1;
          lastAccepted = spec.corruption === null && chars !== MUST_PARSE;
        }
      }),
      fuzzRuns(3_000),
    );
    assert.ok(repeated > 2_500 && repeatedCorrupted > 900, `${repeated} repeated lines, ${repeatedCorrupted} of them corrupted`);
  });
});

/** An upstream's SSE body, in the usual framing. */
const frames = (events: readonly string[]): string => events.map((data) => `data: ${data}\n\n`).join('');

/** An upstream response whose body delivers these reads, each on its own turn (an async source). */
function responseOf(reads: ReadonlyArray<string | Uint8Array>): UpstreamResponse {
  const body = new UpstreamBody();
  let next = 0;
  const pushNext = () => {
    if (next === reads.length) return body.end();
    const read = reads[next++] as string | Uint8Array;
    body.push(typeof read === 'string' ? Buffer.from(read) : Buffer.from(read.buffer, read.byteOffset, read.byteLength));
    setImmediate(pushNext);
  };
  setImmediate(pushNext);
  return { status: 200, headers: headersOf({}), body };
}

async function collectReads(reads: ReadonlyArray<string | Uint8Array>): Promise<{ chunks: StreamChunk[]; error: unknown }> {
  const chunks: StreamChunk[] = [];
  try {
    for await (const batch of openAIStreamChunks(responseOf(reads), 'dep', new AbortController().signal)) chunks.push(...batch);
    return { chunks, error: null };
  } catch (error) {
    return { chunks, error };
  }
}

/** Each batch of events arrives as one read. */
const collect = (batches: ReadonlyArray<readonly string[]>) => collectReads(batches.map(frames));

/** What the client receives for these parts. */
function relayed(chunks: readonly StreamChunk[]): string {
  return Buffer.concat(chunks.map((chunk) => Buffer.from(streamChunkFrames(chunk)))).toString('utf8');
}

/** Counts JSON.parse calls (every caller's) while `run` runs. */
async function countingParses<T>(run: () => Promise<T>): Promise<{ result: T; parsed: string[] }> {
  const original = JSON.parse;
  const parsed: string[] = [];
  JSON.parse = ((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
    parsed.push(text);
    return original(text, reviver);
  }) as typeof JSON.parse;
  try {
    return { result: await run(), parsed };
  } finally {
    JSON.parse = original;
  }
}

const plainCount = (chunks: readonly StreamChunk[]) =>
  chunks.reduce((sum, chunk) => sum + (chunk instanceof PlainChunks ? chunk.parse().length : 0), 0);

describe('openAIStreamChunks', () => {
  const words = Array.from({ length: 50 }, (_, index) => ` word${index}`);
  const stream = [contentLine('', ''), ...words.map((word) => contentLine(word)), FINISH_LINE, USAGE_LINE, '[DONE]'];

  test('content, finish and usage chunks pass as the upstream bytes, never parsed; the usage chunk with its counts', async () => {
    // Reads of one, two and three events, as a network delivers them.
    const batches: string[][] = [];
    for (let at = 0, size = 1; at < stream.length; at += size, size = (size % 3) + 1) batches.push(stream.slice(at, at + size));
    assert.deepEqual(batches.flat(), stream);
    const { result, parsed } = await countingParses(() => collect(batches));
    assert.equal(result.error, null);
    assert.deepEqual(parsed, [], 'JSON.parse never ran');
    const usage = result.chunks.filter((chunk) => chunk instanceof UsageChunk);
    assert.deepEqual(usage.map((chunk) => chunk.usage), [{ promptTokens: 9, completionTokens: 50, cachedTokens: 0 }]);
    assert.equal(relayed(result.chunks), frames(stream.slice(0, -1)), 'every chunk leaves as the upstream wrote it');
    assert.equal(plainCount(result.chunks), 52);
    assert.ok(result.chunks.filter((chunk) => chunk instanceof PlainChunks).length <= batches.length, 'a read of plain chunks is one part');
    assert.equal(
      result.chunks.reduce((sum, chunk) => sum + (chunk instanceof PlainChunks ? chunk.completionChars : 0), 0),
      words.join('').length,
    );
    // Parsed on demand (payload capture), plain chunks are the chunks the old path produced.
    const parsedAll = result.chunks.flatMap(parsedChunks);
    assert.deepEqual(parsedAll, stream.slice(0, -1).map((line) => JSON.parse(line)));
    assert.equal(streamChunkFrames(parsedAll[1] as ChatCompletionChunk), frames([contentLine(' word0')]), 'and still relays as its text');
  });

  test('property: a run of content chunks with one byte changed anywhere relays what parsing every line gives', async () => {
    // In one read, a line that ends as the last one did is compared with the next line's start
    // in one go (openai-chunk-scan.ts, `joint`): a change in either, or in the gap between, must
    // still be found, whichever line it is in.
    const edits = ['{', '}', '[', ']', '"', '\\', ':', ',', ' ', '\n', 'x', '0', 'é', '\u0001', ''];
    const word = fc.oneof(fc.constantFrom(' the', ' quick', 'é', ' 😀', '', '\\n'), fc.string({ maxLength: 4 }));
    let broken = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(word, { minLength: 3, maxLength: 8 }),
        fc.nat(),
        fc.nat(),
        fc.constantFrom(...edits),
        fc.option(fc.nat(), { nil: undefined }),
        async (words, lineSeed, offsetSeed, edit, cutSeed) => {
          const lines = [...words.map((text) => contentLine(text)), FINISH_LINE];
          const target = 1 + (lineSeed % (lines.length - 1));
          const events = lines.map((line) => `data: ${line}\n\n`);
          // An offset in the target event, its `data: ` and blank line included.
          const offset = offsetSeed % (events[target] as string).length;
          const event = events[target] as string;
          events[target] = event.slice(0, offset) + edit + event.slice(offset + 1);
          const body = Buffer.from(events.join('') + 'data: [DONE]\n\n');
          const reads = cutSeed === undefined ? [body] : [body.subarray(0, cutSeed % body.length), body.subarray(cutSeed % body.length)];
          const { chunks, error } = await collectReads(reads);
          // The reference: the general SSE parser and JSON.parse of every event.
          const reference = await collectReads([Buffer.from(events.join('').replaceAll('\n', '\r\n') + 'data: [DONE]\r\n\r\n')]);
          if (reference.error === null) {
            assert.equal(error, null, events[target]);
            assert.deepEqual(chunks.flatMap(parsedChunks), reference.chunks.flatMap(parsedChunks), events[target]);
          } else {
            broken += 1;
            assert.ok(error instanceof SeedError, events[target]);
            assert.equal(error.code, (reference.error as SeedError).code, events[target]);
            // What came before the broken line still reached the client, as the upstream sent it.
            assert.ok(relayed(chunks).length <= events.slice(0, target).join('').length, events[target]);
            assert.ok(events.join('').startsWith(relayed(chunks)), events[target]);
          }
        },
      ),
      fuzzRuns(1_500),
    );
    assert.ok(broken > 500, `${broken} broken streams`);
  });

  test('a stream cut into reads anywhere gives the same bytes and chunks', async () => {
    const short = [...stream.slice(0, 6), ...stream.slice(-3)];
    const body = frames(short);
    const whole = await collectReads([body]);
    assert.equal(whole.error, null);
    const bytes = Buffer.from(body);
    for (let cut = 1; cut < bytes.length; cut += 1) {
      const split = await collectReads([bytes.subarray(0, cut), bytes.subarray(cut)]);
      assert.equal(split.error, null, `cut at ${cut}`);
      assert.equal(relayed(split.chunks), relayed(whole.chunks), `cut at ${cut}`);
    }
    const byteByByte = await collectReads(Array.from(bytes, (byte) => Buffer.from([byte])));
    assert.equal(relayed(byteByByte.chunks), frames(short.slice(0, -1)));
    assert.equal(plainCount(byteByByte.chunks), 7);
  });

  test('other framings are read by the general parser, with the same chunks', async () => {
    const events = [contentLine('a'), contentLine('b'), FINISH_LINE, USAGE_LINE];
    const expected = events.map((line) => JSON.parse(line) as unknown);
    const bodies: Record<string, string> = {
      crlf: events.map((data) => `data: ${data}\r\n\r\n`).join('') + 'data: [DONE]\r\n\r\n',
      'no space after the colon': events.map((data) => `data:${data}\n\n`).join('') + 'data:[DONE]\n\n',
      'event and id fields': events.map((data, index) => `event: message\nid: ${index}\ndata: ${data}\n\n`).join('') + 'data: [DONE]\n\n',
      'a switch mid-stream': `data: ${events[0]}\n\n: ping\r\ndata: ${events[1]}\r\n\r\n${frames(events.slice(2))}data: [DONE]\n\n`,
      'data over several lines': events.map((data) => `data: ${data.replace('"choices":', '\ndata: "choices":')}\n\n`).join('') + 'data: [DONE]\n\n',
      'a byte-order mark': `\uFEFF${frames([...events, '[DONE]'])}`,
      'no blank line at the end': `${frames(events)}data: [DONE]`,
    };
    for (const [name, body] of Object.entries(bodies)) {
      for (const reads of [[body], Array.from(Buffer.from(body), (byte) => Buffer.from([byte]))]) {
        const { chunks, error } = await collectReads(reads);
        assert.equal(error, null, name);
        assert.deepEqual(chunks.flatMap(parsedChunks), expected, name);
        // Whatever the framing, the client gets the usual one.
        assert.equal(relayed(chunks), frames(events.map((line) => JSON.stringify(JSON.parse(line)))), name);
      }
    }
  });

  test('an event longer than the fast path keeps across reads arrives whole, in small reads', async () => {
    const long = contentLine('x'.repeat(200_000));
    const bytes = Buffer.from(frames([contentLine('a'), long, contentLine('b'), FINISH_LINE, '[DONE]']));
    const reads: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += 4_096) reads.push(bytes.subarray(at, at + 4_096));
    const { chunks, error } = await collectReads(reads);
    assert.equal(error, null);
    assert.deepEqual(chunks.flatMap(parsedChunks).map((chunk) => chunk.choices[0]?.delta.content?.length ?? 0), [1, 200_000, 1, 0]);
  });

  test('comments and blank lines between events keep the fast path', async () => {
    const body = `: OPENROUTER PROCESSING\n\n: keep-alive\n${frames([contentLine('a')])}\n: ping\n\n${frames([contentLine('b'), FINISH_LINE, '[DONE]'])}`;
    const { chunks, error } = await collectReads([body]);
    assert.equal(error, null);
    assert.equal(plainCount(chunks), 3);
    assert.equal(relayed(chunks), frames([contentLine('a'), contentLine('b'), FINISH_LINE]));
  });

  test('a stream without [DONE] is complete when a plain finish chunk came, and cut short otherwise', async () => {
    const complete = await countingParses(() => collect([[contentLine('a')], [FINISH_LINE]]));
    assert.equal(complete.result.error, null);
    assert.deepEqual(complete.parsed, [], 'the finish was seen without parsing');
    assert.equal(relayed(complete.result.chunks), frames([contentLine('a'), FINISH_LINE]));
    const cut = await collect([[contentLine('a')], [contentLine('b')]]);
    assert.ok(cut.error instanceof SeedError);
    assert.match(cut.error.message, /ended the stream before it finished/);
  });

  test('a body that ends after reads that decode to nothing fails as cut short, without waiting', async () => {
    // Reads that hold nothing to hand out (comments), and the body's end, all come before the
    // consumer asks: the reader must see the end rather than wait for a read that never comes.
    for (const reads of [[': keep-alive\n\n'], [frames([contentLine('a')]), ': ping\n\n']]) {
      const body = new UpstreamBody();
      for (const read of reads) body.push(Buffer.from(read));
      body.end();
      const batches = openAIStreamChunks({ status: 200, headers: headersOf({}), body }, 'dep', new AbortController().signal);
      await new Promise((resolve) => setImmediate(resolve));
      const outcome = await Promise.race([
        (async () => {
          try {
            for (;;) if ((await batches.next()).done) return null;
          } catch (error) {
            return error;
          }
        })(),
        new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 2_000).unref()),
      ]);
      assert.ok(outcome instanceof SeedError, String(outcome));
      assert.equal(outcome.code, 'upstream_invalid_response');
      assert.match(outcome.message, /ended the stream before it finished/);
    }
  });

  test('content that is not UTF-8 reaches the client as replacement characters, not as the bytes', async () => {
    const [before, after] = contentLine('ab').split('ab') as [string, string];
    const body = Buffer.concat([Buffer.from(`data: ${before}a`), Buffer.from([0xff, 0xc3]), Buffer.from(`b${after}\n\n${frames([FINISH_LINE])}`)]);
    const { chunks, error } = await collectReads([body]);
    assert.equal(error, null);
    assert.equal(plainCount(chunks), 0);
    assert.equal(chunks.flatMap(parsedChunks)[0]?.choices[0]?.delta.content, 'a\uFFFD\uFFFDb');
    assert.ok(isValidUtf8(relayed(chunks)));
  });

  test('a usage chunk that is not UTF-8 is parsed, and reaches a client that asked for it as replacement characters', async () => {
    const [before, after] = USAGE_LINE.split('chatcmpl-9x') as [string, string];
    const body = Buffer.concat([Buffer.from(`${frames([FINISH_LINE])}data: ${before}x`), Buffer.from([0xff]), Buffer.from(`y${after}\n\ndata: [DONE]\n\n`)]);
    const { chunks, error } = await collectReads([body]);
    assert.equal(error, null);
    assert.ok(!chunks.some((chunk) => chunk instanceof UsageChunk));
    const usageChunk = chunks.flatMap(parsedChunks).at(-1);
    assert.equal(usageChunk?.id, 'x\uFFFDy');
    assert.deepEqual(usageChunk?.usage, { prompt_tokens: 9, completion_tokens: 50, total_tokens: 59 });
    assert.ok(isValidUtf8(relayed(chunks)));
  });

  test('a corrupted line that looks like a content chunk fails the stream after what came before', async () => {
    for (const corrupt of ['{"id":"x","choices":[{"delta":{"content":"a"}}]', '{"choices":[}', contentLine('half').slice(0, 60) + '}']) {
      const { chunks, error } = await collect([[contentLine('a'), corrupt, contentLine('b')], [FINISH_LINE, '[DONE]']]);
      assert.equal(relayed(chunks), frames([contentLine('a')]), corrupt);
      assert.ok(error instanceof SeedError, String(error));
      assert.equal(error.code, 'upstream_invalid_response');
      assert.match(error.message, /dep sent a stream event that is not JSON/);
    }
  });

  test('an error event mid-stream is upstream_error; JSON that is not a chunk is upstream_invalid_response', async () => {
    const failed = await collect([[contentLine('a')], ['{"error":{"message":"The server is overloaded","type":"server_error"}}']]);
    assert.ok(failed.error instanceof SeedError);
    assert.equal(failed.error.code, 'upstream_error');
    assert.match(failed.error.message, /dep failed mid-stream: The server is overloaded/);
    for (const value of ['{"id":"x"}', '[1,2]', '42', '{"choices":{"a":1}}']) {
      const { error } = await collect([[contentLine('a'), value]]);
      assert.ok(error instanceof SeedError, value);
      assert.equal(error.code, 'upstream_invalid_response', value);
      assert.match(error.message, /not a chat\.completion\.chunk/, value);
    }
  });

  test('usage and finish reasons are found whatever the spacing; pretty JSON is written on one line', async () => {
    const spacedFinish = '{"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason" : "length"}]}';
    const spacedUsage = '{"id": "c", "choices": [], "usage" : {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}';
    const pretty = '{\n  "id": "c",\n  "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": null}]\n}';
    const prettyBody = `data: ${pretty.split('\n').join('\ndata: ')}\n\n`;
    // No [DONE]: only a finish reason the fast path did not miss lets the stream end complete.
    const { chunks, error } = await collectReads([prettyBody + frames([spacedFinish, spacedUsage])]);
    assert.equal(error, null);
    assert.ok(chunks.every((chunk) => !(chunk instanceof PlainChunks)));
    assert.equal(streamChunkFrames(chunks[0] as StreamChunk), frames([JSON.stringify(JSON.parse(pretty))]));
    assert.deepEqual(parsedChunks(chunks[2] as StreamChunk)[0]?.usage, { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 });
    // Without the finish chunk, the same stream is unfinished.
    const unfinished = await collect([[contentLine('a'), contentLine('b')]]);
    assert.ok(unfinished.error instanceof SeedError);
    assert.match(unfinished.error.message, /ended the stream before it finished/);
  });
});

function isValidUtf8(text: string): boolean {
  return !/[\uD800-\uDFFF]/.test(text.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ''));
}
