/**
 * Tells, without `JSON.parse` and without decoding its bytes, whether one event of an
 * OpenAI-format stream is a plain content chunk: a chunk the gateway relays as the upstream's
 * bytes and reads nothing from but its completion characters. Parsing every chunk (and collecting the objects it allocates) was the
 * largest per-chunk cost of a streamed call; a stream is mostly such chunks, and the few that
 * matter (the finish chunk, the usage chunk, an error) are parsed as before.
 *
 * The scan is a full JSON validator, not a pattern match: whatever it accepts, `JSON.parse`
 * accepts too (test/provider-stream-fast-path.test.ts checks this against truncations and
 * corruptions of real chunks). A line cut short or corrupted upstream (a missing brace, a
 * Python `NaN`, a raw control character) therefore still fails as `upstream_invalid_response`
 * instead of reaching the client as garbage. A cheaper check (brackets balanced outside strings)
 * would catch truncation but relay such lines to clients whose JSON parsers then fail, with the
 * call recorded as a success; validating costs one pass in JavaScript that allocates (next to)
 * nothing.
 *
 * That pass is shortened by what a stream repeats: its content chunks differ only in the
 * content string (the id, model and envelope before it are the same, and so, mostly, are the
 * closing `logprobs`, `finish_reason` and `usage` after it). A scanner remembers the bytes before
 * the content string of the last line it accepted and, for a line that starts with the same
 * bytes, resumes from there: a deterministic scan reaches that point in the same state whatever
 * follows, so only the rest of the line needs scanning. It also remembers the bytes after that
 * string, to the line's end: from the same state, the same bytes get the same verdict, so a line
 * that ends with them needs only its content string scanned.
 */

import type { ReportedUsage } from '../wire/stream-chunk.ts';
import { MAX_TOKEN_COUNT } from '../wire/openai.ts';

/** What `scan` returns for an event that must go through `JSON.parse`. */
export const MUST_PARSE = -1;

/**
 * What `scan` returns for a usage chunk (`"choices":[]` and a `usage` object, OpenAI's last chunk
 * when usage is asked for): its token counts are in `usage`. `JSON.parse` of that one line, with
 * its objects and their collection, took 5.8–6.1 µs of the event loop per streamed call on the
 * CPU (bench/oncpu.ts), where comparing the envelopes of all its content chunks took 4.0–4.3; the
 * scan reads the three counts the gateway settles on as it validates the line.
 */
export const USAGE_ONLY = -2;

/**
 * What `scanJoined` returns for a line it cannot vouch for: find the line's end and `scan` it.
 */
export const NOT_JOINED = -3;

/** Digits of a token count read in place; a longer number (or any other shape) goes to `JSON.parse`. */
const MAX_COUNT_DIGITS = 10;

/** Deeper than any chunk; a deeper value is left to `JSON.parse` rather than to recursion here. */
const MAX_DEPTH = 32;

/** Resumed lines in a row that may end otherwise than the remembered suffix before a stream stops remembering one. */
const MAX_SUFFIX_MISSES = 4;

const TAB = 0x09;
const SPACE = 0x20;
const QUOTE = 0x22;
const PLUS = 0x2b;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const ONE = 0x31;
const NINE = 0x39;
const COLON = 0x3a;
const UPPER_E = 0x45;
const OPEN_BRACKET = 0x5b;
const BACKSLASH = 0x5c;
const CLOSE_BRACKET = 0x5d;
const LOWER_E = 0x65;
const LOWER_F = 0x66;
const LOWER_N = 0x6e;
const LOWER_T = 0x74;
const LOWER_U = 0x75;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/** The shortest envelope (see `Resumption.envelope`) worth a comparison of its own. */
const MIN_ENVELOPE = 32;

/** What comes between two events of the usual framing: the blank line, and the next event's field. */
const EVENT_GAP = Buffer.from('\n\ndata: ');

/** Container kinds on the scanner's stack. */
const OBJECT = 1;
const ARRAY = 2;

const EMPTY = new Uint8Array(0);

/** Escapes JSON allows after a backslash, besides `\u`: `" \ / b f n r t`. */
const SIMPLE_ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);

/**
 * `Buffer#compare` and `Buffer#copy` (memcmp and memcpy in C++), called on any Uint8Array: for the
 * 50 to 250 bytes a prefix or suffix has, one native call costs a fraction of a loop in JavaScript.
 */
const compareBytes = Buffer.prototype.compare;
const copyBytes = Buffer.prototype.copy;

/**
 * Bytes of a line, copied to outlive its read (a view would keep the whole read alive, and
 * `Buffer#slice` is one), into a store reused from copy to copy. A typed array of more than 64
 * bytes lives outside V8's heap and costs about as much to allocate as scanning a line; the store
 * comes from Node's pool of small buffers instead (uninitialized, but only copied bytes are read).
 */
class ByteCopy {
  private store: Uint8Array = EMPTY;
  /** -1 until something is copied. */
  length = -1;

  copy(bytes: Uint8Array, from: number, to: number): void {
    const length = to - from;
    if (length > this.store.length) this.store = Buffer.allocUnsafe(Math.max(length, 2 * this.store.length, 256));
    copyBytes.call(bytes, this.store, 0, from, to);
    this.length = length;
  }

  clear(): void {
    this.length = -1;
  }

  /** Copies `first`, then `middle`, then `last` (both copies set) back to back. */
  join(first: ByteCopy, middle: Uint8Array, last: ByteCopy): void {
    const length = first.length + middle.length + last.length;
    if (length > this.store.length) this.store = Buffer.allocUnsafe(Math.max(length, 2 * this.store.length, 512));
    copyBytes.call(first.store, this.store, 0, 0, first.length);
    copyBytes.call(middle, this.store, first.length, 0, middle.length);
    copyBytes.call(last.store, this.store, first.length + middle.length, 0, last.length);
    this.length = length;
  }

  /** Whether `bytes` holds the copy from `at`; the caller has checked that they are that long. */
  isAt(bytes: Uint8Array, at: number): boolean {
    return compareBytes.call(this.store, bytes, at, at + this.length, 0, this.length) === 0;
  }
}

/**
 * UTF-16 code units (what `String#length` counts) of the UTF-8 bytes in `[from, to)`: one per
 * character, two for a character outside the BMP (a four-byte sequence). Whether the bytes are
 * valid UTF-8 is checked where they leave (openai-stream.ts), not here.
 */
function utf16Length(bytes: Uint8Array, from: number, to: number): number {
  let length = 0;
  for (let at = from; at < to; at += 1) {
    const code = bytes[at] as number;
    if (code < 0x80) length += 1;
    else if (code >= 0xf0) length += 2;
    else if (code >= 0xc0) length += 1;
  }
  return length;
}

const isDigit = (code: number) => code >= ZERO && code <= NINE;
const isHex = (code: number) => isDigit(code) || (code >= 0x41 && code <= 0x46) || (code >= 0x61 && code <= 0x66);

/**
 * Where the last accepted line that had a counted string had its first one, the scan's state
 * there, and how the last accepted line that started the same went on after it. A scanner has
 * one, overwritten in place as its stream goes on.
 */
class Resumption {
  /** The line's bytes before the string's opening quote; `length` -1 until a line had one. */
  readonly prefix = new ByteCopy();
  /** Kinds of the containers open there, at each depth (index 0 unused), and how deep. */
  readonly containers = new Uint8Array(MAX_DEPTH + 1);
  depth = 0;
  /** Top-level `choices` seen before it, and whether it is inside that array. */
  choices = 0;
  inChoices = false;
  /**
   * The bytes after the string (or after the value a resumed line had in its place) to the end of
   * the line. The scan is in the same state after any value there, so another line that starts
   * with `prefix` and ends with these bytes after its own value gets the same verdict.
   */
  readonly suffix = new ByteCopy();
  /** The completion characters of the counted strings in `suffix` (an `arguments` after a `content`). */
  suffixChars = 0;
  /**
   * `suffix`, the gap between two events of the usual framing (`\n\ndata: `) and `prefix`: in a
   * stream's read, where one line ends as the last did and the next one starts as the last did.
   * One comparison with it checks both (see `endsWithSuffix`). Empty (-1) until a line ends with
   * the current suffix.
   */
  readonly joint = new ByteCopy();
  /**
   * The bytes of a line before its top-level `"choices"` key, when nothing before it was a key
   * the gateway reads: a stream's envelope (`id`, `object`, `created`, `model`,
   * `system_fingerprint`…), the same on every line of it, the first lines, the finish line and
   * the usage chunk included, which do not start with `prefix`. A line that starts with it is
   * scanned from its `choices` on, in the state the envelope always leaves: inside the top-level
   * object, before a member. Empty (-1) until a line had one.
   */
  readonly envelope = new ByteCopy();
  /**
   * Accepted lines in a row that started with `prefix` but did not end with `suffix`. Where every
   * line ends otherwise (`logprobs` after the content), copying each one's suffix would cost a
   * stream more than remembering it saves: past MAX_SUFFIX_MISSES, none is kept until the prefix changes.
   */
  misses = 0;
}

/**
 * Scans the events of one stream (it remembers where that stream's lines resume). The data of
 * an event is a range of bytes, as it arrived (UTF-8). Each method returns false both for text
 * that is not JSON and for JSON that has to be parsed (a key the gateway reads): either way the
 * caller parses it.
 *
 * @example
 * const scanner = new PlainChunkScanner();
 * const line = Buffer.from('{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}');
 * scanner.scan(line, 0, line.length) // 2
 * const usage = Buffer.from('{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}');
 * scanner.scan(usage, 0, usage.length) // USAGE_ONLY
 * scanner.usage // { promptTokens: 1, completionTokens: 2, cachedTokens: 0 }
 * const error = Buffer.from('{"error":{"message":"overloaded"}}');
 * scanner.scan(error, 0, error.length) // MUST_PARSE
 */
export class PlainChunkScanner {
  private bytes: Uint8Array = EMPTY;
  /** Where the line being scanned starts and ends (exclusive) in `bytes`. */
  private start = 0;
  private end = 0;
  private at = 0;
  /** Byte length of the string scanned last (what key names are compared by). */
  private stringLength = 0;
  /** UTF-16 length (like `String#length`) of the string scanned last, when it was escaped. */
  private stringUnits = 0;
  /** Whether the string scanned last had an escape sequence. */
  private stringEscaped = false;
  private completionChars = 0;
  private choices = 0;
  /** Top-level `choices` that were empty arrays (a usage chunk's), and top-level `usage` keys, and of those objects. */
  private emptyChoices = 0;
  private usageKeys = 0;
  private usageObjects = 0;
  /** Inside the top-level `usage` object, and inside its `prompt_tokens_details` object. */
  private inUsage = false;
  private inUsageDetails = false;
  /** `usage.prompt_tokens_details` keys seen. */
  private usageDetailsKeys = 0;
  /** The counts read from `usage` (-1: not seen). */
  private promptTokens = -1;
  private completionTokens = -1;
  private cachedTokens = 0;
  /** Inside the top-level `choices` array (its elements, the choices, are at depth 3). */
  private inChoices = false;
  private lineFinished = false;
  /** Kind of the container open at each depth (index 0 unused). */
  private readonly containers = new Uint8Array(MAX_DEPTH + 1);
  /** Where this line's first counted string starts (-1: none yet), and the state there. */
  private counted = -1;
  private countedDepth = 0;
  private countedChoices = 0;
  private countedInChoices = false;
  private readonly countedContainers = new Uint8Array(MAX_DEPTH + 1);
  /** Where this line's first counted string ends, and the completion characters up to there. */
  private countedEnd = 0;
  private countedEndChars = 0;
  private readonly resumption = new Resumption();
  /**
   * Where the next line starts with the remembered prefix, already compared (by the last line's
   * `joint`): the bytes and the position. Good for the next scan only, which must be of a line of
   * the same, unchanged bytes (a stream's read, scanned line after line).
   */
  private verifiedBytes: Uint8Array = EMPTY;
  private verifiedStart = -1;
  /** Where this line's top-level `"choices"` key starts, when nothing before it was read (-1: not yet). */
  private choicesKeyAt = -1;
  /** Where the line `scanJoined` accepted last ends (its line break). */
  lineEnd = -1;

  /**
   * The completion characters of a plain content chunk, or `MUST_PARSE`. Plain means: one line
   * of valid JSON, an object whose top-level `choices` is a non-empty array, with no `error` key,
   * every `usage` null, and every `finish_reason` null or, in a choice, a string (then `finished`
   * says so), so the gateway would find nothing in it to act on but what the scan reports.
   * Like `isChunk` on the parse path, it checks no more of a chunk's shape than that (a choice
   * without `delta` passes as the upstream sent it).
   *
   * The characters are what the usage estimate counts (used only when the upstream reports no
   * usage): the decoded length of every string-valued `content` and `arguments` key, which in a
   * chunk are `choices[].delta.content` and `choices[].delta.tool_calls[].function.arguments`,
   * the same two fields counted for a parsed chunk.
   *
   * `USAGE_ONLY` is the answer for a usage chunk: one line of valid JSON, an object whose
   * top-level `choices` is an empty array and whose one top-level `usage` is an object with
   * whole-number `prompt_tokens` and `completion_tokens` (and, if any, one
   * `prompt_tokens_details`), with no `error` key; `usage` then holds what parsing would read.
   */
  scan(bytes: Uint8Array, start: number, end: number): number {
    this.bytes = bytes;
    this.start = start;
    this.end = end;
    this.lineFinished = false;
    this.inChoices = false;
    this.emptyChoices = 0;
    this.usageKeys = 0;
    this.usageObjects = 0;
    this.usageDetailsKeys = 0;
    this.promptTokens = -1;
    this.completionTokens = -1;
    this.cachedTokens = 0;
    const valid = this.startsWithPrefix() ? this.resume() : this.scanWhole();
    this.bytes = EMPTY;
    this.choicesKeyAt = -1;
    if (!valid || this.at !== end) return MUST_PARSE;
    if (this.isPlain()) return this.completionChars;
    return this.isUsageOnly() ? USAGE_ONLY : MUST_PARSE;
  }

  /**
   * Scans the line whose data starts at `start` in `bytes` when the last line scanned vouched for
   * that start (its `joint` matched: see `endsWithSuffix`), without knowing where the line ends.
   * When this line ends as the last did (its own joint matches), it is a plain content chunk
   * ending at `lineEnd`, followed by a blank line and a line that starts with the remembered
   * prefix: the answer is its completion characters, and a reader need not look for its end. Any
   * other line gets `NOT_JOINED`, and is to be scanned with `scan` once its end is found (the same
   * verdict; the start stays vouched for).
   *
   * The content string is read no further than its closing quote, and a line break inside it (a
   * control character) stops the read, so nothing past the line's end decides anything: the
   * prefix, the suffix and the gap are the bytes of lines already accepted and of the framing.
   */
  scanJoined(bytes: Uint8Array, start: number): number {
    if (bytes !== this.verifiedBytes || start !== this.verifiedStart) return NOT_JOINED;
    const { resumption } = this;
    const { joint } = resumption;
    this.bytes = bytes;
    this.end = bytes.length;
    this.at = start + resumption.prefix.length;
    this.completionChars = 0;
    const joined = this.code() === QUOTE && this.plainCompletionString() && bytes.length - this.at >= joint.length && joint.isAt(bytes, this.at);
    this.bytes = EMPTY;
    if (!joined) return NOT_JOINED;
    this.lineEnd = this.at + resumption.suffix.length;
    this.verifiedStart = this.at + joint.length - resumption.prefix.length;
    resumption.misses = 0;
    return this.completionChars + resumption.suffixChars;
  }

  /** Whether the line so far has had no key the gateway reads (the state an envelope must leave). */
  private readsNothingYet(): boolean {
    // No counted string yet (`counted`) means no completion characters either.
    return this.choices === 0 && this.emptyChoices === 0 && this.usageKeys === 0 && this.counted === -1 && !this.lineFinished;
  }

  /** The counts of the line scanned last, when `scan` answered `USAGE_ONLY`. */
  get usage(): ReportedUsage {
    return { promptTokens: this.promptTokens, completionTokens: this.completionTokens, cachedTokens: this.cachedTokens };
  }

  /**
   * Exactly one top-level `choices`, not empty, and no `usage` object: with a duplicate key,
   * which one JSON.parse keeps is a detail not worth trusting.
   */
  private isPlain(): boolean {
    return this.choices === 1 && this.emptyChoices === 0 && this.usageObjects === 0;
  }

  /** One top-level `choices`, empty, and one top-level `usage`, an object with both counts (duplicates: parse). */
  private isUsageOnly(): boolean {
    return (
      this.choices === 0 &&
      this.emptyChoices === 1 &&
      this.usageKeys === 1 &&
      this.usageObjects === 1 &&
      this.usageDetailsKeys <= 1 &&
      this.promptTokens !== -1 &&
      this.completionTokens !== -1
    );
  }

  /**
   * Whether the line scanned last (when it was plain) had a choice with a finish reason: the
   * stream reached its end even if `[DONE]` never comes. (A finish chunk is otherwise a content
   * chunk like the others, relayed as it came: the gateway reads nothing else from it.)
   */
  get finished(): boolean {
    return this.lineFinished;
  }

  private startsWithPrefix(): boolean {
    const { prefix } = this.resumption;
    const verified = this.bytes === this.verifiedBytes && this.start === this.verifiedStart;
    this.verifiedBytes = EMPTY;
    if (prefix.length === -1 || this.end - this.start < prefix.length) return false;
    return verified || prefix.isAt(this.bytes, this.start);
  }

  /**
   * Scans a line that does not start with the remembered prefix: from its `choices` on when it
   * starts with the remembered envelope, else from its first byte.
   */
  private scanWhole(): boolean {
    const { bytes, start, end } = this;
    const { envelope } = this.resumption;
    this.completionChars = 0;
    this.choices = 0;
    this.counted = -1;
    let valid: boolean;
    if (envelope.length !== -1 && end - start > envelope.length && envelope.isAt(bytes, start)) {
      this.at = start + envelope.length;
      this.containers[1] = OBJECT;
      // Where the envelope ended the remembered line had its key; this one may have spaces first.
      this.skipSpace();
      valid = this.member(1) && this.objectRest(1);
    } else {
      this.at = start;
      valid = this.code() === OPEN_BRACE && this.object(1);
      if (valid && this.at === end && this.choicesKeyAt - start >= MIN_ENVELOPE) envelope.copy(bytes, start, this.choicesKeyAt);
    }
    if (!valid || this.at !== end) return false;
    if (this.isPlain()) this.remember();
    return true;
  }

  /**
   * Keeps the state at this line's first counted string, and what followed it, for the lines
   * after it. (Never the prefix already kept: a line that starts with it is resumed, not scanned whole.)
   */
  private remember(): void {
    // A line with a finish reason (once per choice a stream) is not remembered: a line resumed
    // from it, or ending as it did, would skip the finish reason the scan must report.
    if (this.counted === -1 || this.lineFinished) return;
    const { resumption } = this;
    resumption.prefix.copy(this.bytes, this.start, this.counted);
    resumption.containers.set(this.countedContainers);
    resumption.depth = this.countedDepth;
    resumption.choices = this.countedChoices;
    resumption.inChoices = this.countedInChoices;
    resumption.suffix.copy(this.bytes, this.countedEnd, this.end);
    resumption.suffixChars = this.completionChars - this.countedEndChars;
    resumption.joint.clear();
    resumption.misses = 0;
  }

  /** Scans the rest of a line that starts with `resumption.prefix`, closing its open containers. */
  private resume(): boolean {
    const { end, resumption } = this;
    const { containers, depth } = resumption;
    this.at = this.start + resumption.prefix.length;
    this.choices = resumption.choices;
    this.inChoices = resumption.inChoices;
    this.completionChars = 0;
    if (this.code() === QUOTE) {
      // The string alone is read (an escaped one too): the rest of the line may be the
      // remembered suffix, which needs no scanning.
      if (!this.plainCompletionString() && !this.completionString()) return false;
      if (this.endsWithSuffix()) return true;
    } else {
      // Where the remembered line had its string, this one may have spaces first, or another value.
      this.skipSpace();
      const resumed = this.code() === QUOTE ? this.completionString() : this.value(depth);
      if (!resumed) return false;
    }
    const suffixStart = this.at;
    const charsBefore = this.completionChars;
    for (let level = depth; level >= 1; level -= 1) {
      const closed = containers[level] === OBJECT ? this.objectRest(level) : this.arrayRest(level);
      if (!closed) return false;
      // The array at depth 2, while inside `choices`, is `choices` itself.
      if (level === 2) this.inChoices = false;
    }
    if (this.at === end && this.isPlain()) this.rememberSuffix(suffixStart, charsBefore);
    return true;
  }

  /**
   * Whether the rest of a resumed line, from `at` (after its content string), is the remembered
   * suffix; if so the line is scanned. The remembered line went on from the same state with the
   * same bytes and was accepted, so it ended with exactly one `choices`, and so does this one.
   *
   * In a run of content chunks each line ends as the last did and the next starts as the last
   * did: one comparison with the `joint` (this suffix, the gap between events, the prefix) checks
   * both, and the next scan, of that line, need not compare its prefix again. A native comparison
   * costs more per call than per byte, so this saves a stream about one call per line.
   */
  private endsWithSuffix(): boolean {
    const { resumption, end, bytes } = this;
    const { suffix, joint } = resumption;
    if (end - this.at !== suffix.length) return false;
    if (joint.length !== -1 && bytes.length - this.at >= joint.length && joint.isAt(bytes, this.at)) {
      this.verifiedBytes = bytes;
      this.verifiedStart = this.at + joint.length - resumption.prefix.length;
    } else if (!suffix.isAt(bytes, this.at)) return false;
    // Joined once a suffix repeats (a stream whose lines all end differently never pays for it).
    else if (joint.length === -1) joint.join(suffix, EVENT_GAP, resumption.prefix);
    this.completionChars += resumption.suffixChars;
    this.choices = 1;
    this.at = end;
    resumption.misses = 0;
    return true;
  }

  /**
   * Keeps the suffix of a resumed line accepted although it ended otherwise (the stream's
   * envelope changed): the lines after it likely end as it did. `suffixStart` is where it begins,
   * `charsBefore` the completion characters before it.
   */
  private rememberSuffix(suffixStart: number, charsBefore: number): void {
    const { resumption } = this;
    if (this.lineFinished) return;
    resumption.misses += 1;
    if (resumption.misses > MAX_SUFFIX_MISSES) {
      resumption.suffix.clear();
      resumption.joint.clear();
    } else {
      resumption.suffix.copy(this.bytes, suffixStart, this.end);
      resumption.suffixChars = this.completionChars - charsBefore;
      resumption.joint.clear();
    }
  }

  /** The byte at `at`, or -1 past the end of the line (the buffer goes on with other data). */
  private byteAt(at: number): number {
    return at < this.end ? (this.bytes[at] as number) : -1;
  }

  private code(): number {
    return this.byteAt(this.at);
  }

  /**
   * Space and tab only: a line break in the data means a chunk spread over several `data:`
   * lines, which cannot be relayed as one SSE line and is serialized again after parsing.
   */
  private skipSpace(): void {
    let code = this.byteAt(this.at);
    while (code === SPACE || code === TAB) code = this.byteAt(++this.at);
  }

  private object(depth: number): boolean {
    if (depth > MAX_DEPTH) return false;
    this.containers[depth] = OBJECT;
    this.at += 1;
    this.skipSpace();
    if (this.code() === CLOSE_BRACE) {
      this.at += 1;
      return true;
    }
    return this.member(depth) && this.objectRest(depth);
  }

  /** The members after an object's first, and its closing brace. */
  private objectRest(depth: number): boolean {
    for (;;) {
      this.skipSpace();
      const next = this.code();
      this.at += 1;
      if (next === CLOSE_BRACE) return true;
      if (next !== COMMA) return false;
      this.skipSpace();
      if (!this.member(depth)) return false;
    }
  }

  /** `"key": value`, at the key's opening quote. */
  private member(depth: number): boolean {
    if (this.code() !== QUOTE) return false;
    const keyStart = this.at + 1;
    if (!this.string()) return false;
    // An escaped key may spell `usage` or `error` in disguise: parse.
    if (this.stringEscaped) return false;
    const keyLength = this.stringLength;
    this.skipSpace();
    if (this.code() !== COLON) return false;
    this.at += 1;
    this.skipSpace();
    return this.memberValue(keyStart, keyLength, depth);
  }

  /**
   * The value of the key at `keyStart`, where the keys the gateway reads are decided:
   * - `usage`: `null`, or at the top level an object whose counts are read (see `usageObject`);
   * - `finish_reason`: `null` anywhere, or a string in a choice (see `finishReason`);
   * - `error` (at any depth): never plain;
   * - `choices` (top level): an array, as a chunk with content has (an empty one is a usage chunk's);
   * - `content`, `arguments` (at any depth) with a string value: completion characters;
   * - inside the top-level `usage`: `prompt_tokens`, `completion_tokens`, and
   *   `prompt_tokens_details.cached_tokens`, whole numbers.
   */
  private memberValue(keyStart: number, keyLength: number, depth: number): boolean {
    switch (keyLength) {
      case 5:
        if (this.keyIs(keyStart, 'usage')) return depth === 1 ? this.usageValue() : this.word('null');
        if (this.keyIs(keyStart, 'error')) return false;
        break;
      case 13:
        if (this.keyIs(keyStart, 'finish_reason')) return this.code() === QUOTE ? this.finishReason(depth) : this.word('null');
        if (this.inUsage && depth === 2 && this.keyIs(keyStart, 'prompt_tokens')) return (this.promptTokens = this.count()) !== -1;
        if (this.inUsageDetails && depth === 3 && this.keyIs(keyStart, 'cached_tokens')) return (this.cachedTokens = this.count()) !== -1;
        break;
      case 7:
        if (depth === 1 && this.keyIs(keyStart, 'choices')) {
          if (this.choicesKeyAt === -1 && this.readsNothingYet()) this.choicesKeyAt = keyStart - 1;
          return this.choicesArray(depth);
        }
        if (this.code() === QUOTE && this.keyIs(keyStart, 'content')) return this.countedString(depth);
        break;
      case 9:
        if (this.code() === QUOTE && this.keyIs(keyStart, 'arguments')) return this.countedString(depth);
        break;
      case 17:
        if (this.inUsage && depth === 2 && this.keyIs(keyStart, 'completion_tokens')) return (this.completionTokens = this.count()) !== -1;
        break;
      case 21:
        if (this.inUsage && depth === 2 && this.keyIs(keyStart, 'prompt_tokens_details')) return this.usageDetails(depth);
        break;
    }
    return this.value(depth);
  }

  /**
   * The top-level `usage`: `null` (a content chunk's), or an object whose counts are read. A
   * `usage` nested deeper is not the chunk's: only `null` is accepted there, as before, so a
   * line with one is parsed.
   */
  private usageValue(): boolean {
    this.usageKeys += 1;
    if (this.code() !== OPEN_BRACE) return this.word('null');
    this.usageObjects += 1;
    this.inUsage = true;
    const valid = this.object(2);
    this.inUsage = false;
    return valid;
  }

  /** `usage.prompt_tokens_details`: an object whose `cached_tokens` is read, or any other value (then no cached tokens). */
  private usageDetails(depth: number): boolean {
    this.usageDetailsKeys += 1;
    if (this.code() !== OPEN_BRACE) return this.value(depth);
    this.inUsageDetails = true;
    const valid = this.object(depth + 1);
    this.inUsageDetails = false;
    return valid;
  }

  /**
   * A token count: a whole number in JSON's plainest spelling (`0`, or digits not starting with
   * 0), no sign, fraction or exponent, at most `MAX_TOKEN_COUNT`. -1 for anything else, which
   * sends the line to `JSON.parse` (and the parse path's check refuses a count it cannot store).
   */
  private count(): number {
    const start = this.at;
    let at = start;
    let value = 0;
    for (let code = this.byteAt(at); isDigit(code); code = this.byteAt(++at)) value = value * 10 + (code - ZERO);
    const digits = at - start;
    if (digits === 0 || digits > MAX_COUNT_DIGITS || (digits > 1 && this.bytes[start] === ZERO) || value > MAX_TOKEN_COUNT) return -1;
    const next = this.byteAt(at);
    if (next === DOT || next === LOWER_E || next === UPPER_E) return -1;
    this.at = at;
    return value;
  }

  /**
   * A choice's `finish_reason` string: the line stays plain and is `finished` (when the string
   * is not empty, as the parsing path counts it). Anywhere else a string there is not a chunk's
   * finish reason: the line is parsed.
   */
  private finishReason(depth: number): boolean {
    if (depth !== 3 || !this.inChoices || !this.string()) return false;
    if (this.stringLength > 0) this.lineFinished = true;
    return true;
  }

  /** Whether the key at `keyStart` (of a length already compared) is `name`. */
  private keyIs(keyStart: number, name: string): boolean {
    return this.bytesAre(keyStart, name);
  }

  /** Whether the bytes at `at` spell the ASCII `word`. */
  private bytesAre(at: number, word: string): boolean {
    if (at + word.length > this.end) return false;
    for (let index = 0; index < word.length; index += 1) if (this.bytes[at + index] !== word.charCodeAt(index)) return false;
    return true;
  }

  /** The top-level `choices`: an array, counted apart when empty (a usage or filter chunk's). */
  private choicesArray(depth: number): boolean {
    if (this.code() !== OPEN_BRACKET) return false;
    let next = this.at + 1;
    while (this.byteAt(next) === SPACE || this.byteAt(next) === TAB) next += 1;
    if (this.byteAt(next) === CLOSE_BRACKET) {
      this.emptyChoices += 1;
      this.at = next + 1;
      return true;
    }
    this.choices += 1;
    this.inChoices = true;
    const valid = this.array(depth + 1);
    this.inChoices = false;
    return valid;
  }

  /** A `content` or `arguments` string; the first in a line is where the next lines may resume. */
  private countedString(depth: number): boolean {
    if (this.counted === -1) {
      this.counted = this.at;
      this.countedDepth = depth;
      this.countedChoices = this.choices;
      this.countedInChoices = this.inChoices;
      // Containers opened later in the line overwrite `containers`: keep these as they are now.
      for (let level = 1; level <= depth; level += 1) this.countedContainers[level] = this.containers[level] as number;
      if (!this.completionString()) return false;
      this.countedEnd = this.at;
      this.countedEndChars = this.completionChars;
      return true;
    }
    return this.completionString();
  }

  /**
   * The string at `at` (its opening quote) when it has no escape and no control character, read
   * in one pass: its closing quote found and its UTF-16 units counted together. A resumed line's
   * content string is most often a token of a few bytes, for which this loop costs less than
   * `completionString`'s two passes (the string, then its count). False, with nothing changed,
   * for any other string.
   */
  private plainCompletionString(): boolean {
    const { bytes, end } = this;
    const start = this.at + 1;
    let units = 0;
    for (let at = start; at < end; at += 1) {
      const code = bytes[at] as number;
      if (code === QUOTE) {
        this.at = at + 1;
        this.stringLength = at - start;
        this.stringEscaped = false;
        this.completionChars += units;
        return true;
      }
      if (code < SPACE || code === BACKSLASH) return false;
      // As utf16Length counts: a UTF-8 lead or ASCII byte starts a character, a four-byte one is two units.
      if (code < 0x80 || code >= 0xc0) units += code >= 0xf0 ? 2 : 1;
    }
    return false;
  }

  private completionString(): boolean {
    const start = this.at + 1;
    if (!this.string()) return false;
    this.completionChars += this.stringEscaped ? this.stringUnits : utf16Length(this.bytes, start, start + this.stringLength);
    return true;
  }

  private value(depth: number): boolean {
    switch (this.code()) {
      case QUOTE:
        return this.string();
      case OPEN_BRACE:
        return this.object(depth + 1);
      case OPEN_BRACKET:
        return this.array(depth + 1);
      case LOWER_T:
        return this.word('true');
      case LOWER_F:
        return this.word('false');
      case LOWER_N:
        return this.word('null');
      default:
        return this.number();
    }
  }

  private array(depth: number): boolean {
    if (depth > MAX_DEPTH) return false;
    this.containers[depth] = ARRAY;
    this.at += 1;
    this.skipSpace();
    if (this.code() === CLOSE_BRACKET) {
      this.at += 1;
      return true;
    }
    return this.value(depth) && this.arrayRest(depth);
  }

  /** The elements after an array's first, and its closing bracket. */
  private arrayRest(depth: number): boolean {
    for (;;) {
      this.skipSpace();
      const next = this.code();
      this.at += 1;
      if (next === CLOSE_BRACKET) return true;
      if (next !== COMMA) return false;
      this.skipSpace();
      if (!this.value(depth)) return false;
    }
  }

  /**
   * A string starting at the current quote; no raw control characters, only JSON's escapes.
   * Most strings have no escape: those end at the first quote, when no backslash or control
   * character comes before it, found in one loop. (Bytes of a multi-byte UTF-8 character are all
   * 0x80 or above, so they are never taken for a quote or a backslash.) The strings of a chunk
   * are keys and short values: a loop over their few bytes costs a fraction of a native search
   * (`Buffer#indexOf`), whose call alone cost more than the loop (a whole-line scan took 1.5 µs,
   * about what `JSON.parse` of the line takes, with a native search per string). The loop is
   * `plainCompletionString`'s without the count of UTF-16 units: one loop for both, counting
   * keys too, cost 0.7–0.9% more instructions per streamed call (bench/instructions.ts).
   */
  private string(): boolean {
    const { bytes, end } = this;
    const start = this.at + 1;
    for (let at = start; at < end; at += 1) {
      const code = bytes[at] as number;
      if (code === QUOTE) {
        this.at = at + 1;
        this.stringLength = at - start;
        this.stringEscaped = false;
        return true;
      }
      if (code < SPACE || code === BACKSLASH) return this.escapedString(start);
    }
    return false;
  }

  /**
   * The general case of `string`, one byte at a time. `stringLength` is the byte length (only
   * compared for key names, and an escaped key is never one the gateway matches); `stringUnits`
   * is the decoded length in UTF-16 code units, for the completion characters.
   */
  private escapedString(start: number): boolean {
    let at = start;
    let units = 0;
    let escaped = false;
    for (;;) {
      const code = this.byteAt(at);
      if (code === QUOTE) break;
      if (code === BACKSLASH) {
        escaped = true;
        const escape = this.byteAt(at + 1);
        if (escape === LOWER_U) {
          if (!(isHex(this.byteAt(at + 2)) && isHex(this.byteAt(at + 3)) && isHex(this.byteAt(at + 4)) && isHex(this.byteAt(at + 5)))) {
            return false;
          }
          at += 6;
        } else if (SIMPLE_ESCAPES.has(escape)) at += 2;
        else return false;
        units += 1;
      } else if (code >= SPACE) {
        at += 1;
        // A UTF-8 lead or ASCII byte starts a character; a four-byte one is two UTF-16 units.
        if (code < 0x80 || code >= 0xc0) units += code >= 0xf0 ? 2 : 1;
      }
      // A control character, or the end of the line (-1) inside a string.
      else return false;
    }
    this.at = at + 1;
    this.stringLength = at - start;
    this.stringUnits = units;
    this.stringEscaped = escaped;
    return true;
  }

  private number(): boolean {
    let at = this.at;
    if (this.byteAt(at) === MINUS) at += 1;
    const first = this.byteAt(at);
    if (first === ZERO) at += 1;
    else if (first >= ONE && first <= NINE) while (isDigit(this.byteAt(at))) at += 1;
    else return false;
    if (this.byteAt(at) === DOT) {
      at += 1;
      if (!isDigit(this.byteAt(at))) return false;
      while (isDigit(this.byteAt(at))) at += 1;
    }
    const exponent = this.byteAt(at);
    if (exponent === LOWER_E || exponent === UPPER_E) {
      at += 1;
      const sign = this.byteAt(at);
      if (sign === PLUS || sign === MINUS) at += 1;
      if (!isDigit(this.byteAt(at))) return false;
      while (isDigit(this.byteAt(at))) at += 1;
    }
    this.at = at;
    return true;
  }

  private word(word: 'true' | 'false' | 'null'): boolean {
    if (!this.bytesAre(this.at, word)) return false;
    this.at += word.length;
    return true;
  }
}
