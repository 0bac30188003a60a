/**
 * Tells, without `JSON.parse`, whether one event of an OpenAI-format stream is a plain content
 * chunk: a chunk the gateway relays as the upstream's text and reads nothing from but its
 * completion characters. Parsing every chunk (and collecting the objects it allocates) was the
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
 * That pass is shortened by what a stream repeats: its content chunks differ only after the
 * content string (the id, model and envelope before it are the same). A scanner remembers the
 * text before the content string of the last line it accepted and, for a line that starts with
 * the same text, resumes from there: a deterministic scan reaches that point in the same state
 * whatever follows, so only the rest of the line needs scanning.
 */

/** What `scan` returns for an event that must go through `JSON.parse`. */
export const MUST_PARSE = -1;

/** Deeper than any chunk; a deeper value is left to `JSON.parse` rather than to recursion here. */
const MAX_DEPTH = 32;

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

/** Container kinds on the scanner's stack. */
const OBJECT = 1;
const ARRAY = 2;

/** Escapes JSON allows after a backslash, besides `\u`: `" \ / b f n r t`. */
const SIMPLE_ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);

/**
 * What makes a string more than the text between two quotes: a backslash (an escape) or a
 * character JSON forbids raw inside a string (a control character). Global, for `lastIndex`.
 */
const SPECIAL = /[\u0000-\u001f\\]/g;

/** Position of the first backslash or control character at or after `from`, or -1. */
function nextSpecial(text: string, from: number): number {
  SPECIAL.lastIndex = from;
  return SPECIAL.test(text) ? SPECIAL.lastIndex - 1 : -1;
}

const isDigit = (code: number) => code >= ZERO && code <= NINE;
const isHex = (code: number) => isDigit(code) || (code >= 0x41 && code <= 0x46) || (code >= 0x61 && code <= 0x66);

/** Where an accepted line's first counted string began, and the scan's state there. */
interface Resumption {
  /** The line's text before the string's opening quote. */
  prefix: string;
  /** Kinds of the containers open there, outermost (depth 1) first. */
  containers: Uint8Array;
  /** Top-level `choices` seen before it. */
  choices: number;
}

/**
 * Scans the events of one stream (it remembers where that stream's lines resume). Each method
 * returns false both for text that is not JSON and for JSON that has to be parsed (a key the
 * gateway reads): either way the caller parses it.
 *
 * @example
 * const scanner = new PlainChunkScanner();
 * scanner.scan('{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}') // 2
 * scanner.scan('{"choices":[],"usage":{"prompt_tokens":1}}') // MUST_PARSE
 */
export class PlainChunkScanner {
  private text = '';
  private at = 0;
  /** Decoded length (UTF-16 code units, like `String#length`) of the string scanned last. */
  private stringLength = 0;
  /** Whether the string scanned last had an escape sequence. */
  private stringEscaped = false;
  private completionChars = 0;
  private choices = 0;
  /** Position of the next backslash or control character (see SPECIAL), or -1 when there is none. */
  private special = -1;
  /** Kind of the container open at each depth (index 0 unused). */
  private readonly containers = new Uint8Array(MAX_DEPTH + 1);
  /** Where this line's first counted string starts (-1: none yet), and the state there. */
  private counted = -1;
  private countedDepth = 0;
  private countedChoices = 0;
  private readonly countedContainers = new Uint8Array(MAX_DEPTH + 1);
  private resumption: Resumption | null = null;

  /**
   * The completion characters of a plain content chunk, or `MUST_PARSE`. Plain means: one line
   * of valid JSON, an object whose top-level `choices` is a non-empty array, with no `error` key
   * and every `usage` and `finish_reason` null, so the gateway would find nothing in it to act on.
   * Like `isChunk` on the parse path, it checks no more of a chunk's shape than that (a choice
   * without `delta` passes as the upstream sent it).
   *
   * The characters are what the usage estimate counts (used only when the upstream reports no
   * usage): the decoded length of every string-valued `content` and `arguments` key, which in a
   * chunk are `choices[].delta.content` and `choices[].delta.tool_calls[].function.arguments`,
   * the same two fields counted for a parsed chunk.
   */
  scan(data: string): number {
    this.text = data;
    const resumption = this.resumption;
    // (A slice compared with `===` is several times faster than `startsWith` here.)
    const resumes = resumption !== null && data.slice(0, resumption.prefix.length) === resumption.prefix;
    const valid = resumes ? this.resume(resumption) : this.scanWhole();
    this.text = '';
    // Exactly one top-level `choices`: with a duplicate key, which one JSON.parse keeps is a detail not worth trusting.
    return valid && this.at === data.length && this.choices === 1 ? this.completionChars : MUST_PARSE;
  }

  private scanWhole(): boolean {
    this.at = 0;
    this.completionChars = 0;
    this.choices = 0;
    this.counted = -1;
    this.special = nextSpecial(this.text, 0);
    if (this.code() !== OPEN_BRACE || !this.object(1) || this.at !== this.text.length || this.choices !== 1) return false;
    this.remember();
    return true;
  }

  /** Keeps the state at this line's first counted string, for the lines after it. */
  private remember(): void {
    if (this.counted === -1) return;
    this.resumption = {
      prefix: this.text.slice(0, this.counted),
      containers: this.countedContainers.slice(1, this.countedDepth + 1),
      choices: this.countedChoices,
    };
  }

  /** Scans the rest of a line that starts with `resumption.prefix`, closing its open containers. */
  private resume(resumption: Resumption): boolean {
    this.at = resumption.prefix.length;
    this.choices = resumption.choices;
    this.completionChars = 0;
    this.special = nextSpecial(this.text, this.at);
    const { containers } = resumption;
    // Where the remembered line had its string, this one may have spaces first, or another value.
    this.skipSpace();
    const resumed = this.code() === QUOTE ? this.completionString() : this.value(containers.length);
    if (!resumed) return false;
    for (let depth = containers.length; depth >= 1; depth -= 1) {
      const closed = containers[depth - 1] === OBJECT ? this.objectRest(depth) : this.arrayRest(depth);
      if (!closed) return false;
    }
    return true;
  }

  private code(): number {
    return this.text.charCodeAt(this.at);
  }

  /**
   * Space and tab only: a newline in the data means a chunk spread over several `data:` lines,
   * which cannot be relayed as one SSE line and is serialized again after parsing.
   */
  private skipSpace(): void {
    let code = this.text.charCodeAt(this.at);
    while (code === SPACE || code === TAB) code = this.text.charCodeAt(++this.at);
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
   * - `usage`, `finish_reason` (at any depth): only `null` keeps the chunk plain;
   * - `error` (at any depth): never plain;
   * - `choices` (top level): a non-empty array, as a chunk with content has;
   * - `content`, `arguments` (at any depth) with a string value: completion characters.
   */
  private memberValue(keyStart: number, keyLength: number, depth: number): boolean {
    switch (keyLength) {
      case 5:
        if (this.keyIs(keyStart, 'usage')) return this.word('null');
        if (this.keyIs(keyStart, 'error')) return false;
        break;
      case 13:
        if (this.keyIs(keyStart, 'finish_reason')) return this.word('null');
        break;
      case 7:
        if (depth === 1 && this.keyIs(keyStart, 'choices')) return this.choicesArray(depth);
        if (this.code() === QUOTE && this.keyIs(keyStart, 'content')) return this.countedString(depth);
        break;
      case 9:
        if (this.code() === QUOTE && this.keyIs(keyStart, 'arguments')) return this.countedString(depth);
        break;
    }
    return this.value(depth);
  }

  /** Whether the key at `keyStart` (of a length already compared) is `name`. */
  private keyIs(keyStart: number, name: string): boolean {
    return this.text.startsWith(name, keyStart);
  }

  /** The top-level `choices`: a non-empty array (an empty one is a usage or filter chunk). */
  private choicesArray(depth: number): boolean {
    if (this.code() !== OPEN_BRACKET) return false;
    let next = this.at + 1;
    while (this.text.charCodeAt(next) === SPACE || this.text.charCodeAt(next) === TAB) next += 1;
    if (this.text.charCodeAt(next) === CLOSE_BRACKET) return false;
    this.choices += 1;
    return this.array(depth + 1);
  }

  /** A `content` or `arguments` string; the first in a line is where the next lines may resume. */
  private countedString(depth: number): boolean {
    if (this.counted === -1) {
      this.counted = this.at;
      this.countedDepth = depth;
      this.countedChoices = this.choices;
      // Containers opened later in the line overwrite `containers`: keep these as they are now.
      for (let level = 1; level <= depth; level += 1) this.countedContainers[level] = this.containers[level] as number;
    }
    return this.completionString();
  }

  private completionString(): boolean {
    if (!this.string()) return false;
    this.completionChars += this.stringLength;
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
   * Most strings have no escape: those end at the next quote, found natively (`indexOf`),
   * when no backslash or control character comes before that quote.
   */
  private string(): boolean {
    const text = this.text;
    const start = this.at + 1;
    const end = text.indexOf('"', start);
    if (end === -1) return false;
    if (this.special !== -1 && this.special < start) this.special = nextSpecial(text, start);
    if (this.special === -1 || this.special > end) {
      this.at = end + 1;
      this.stringLength = end - start;
      this.stringEscaped = false;
      return true;
    }
    return this.escapedString(start);
  }

  /** The general case of `string`, one character at a time. */
  private escapedString(start: number): boolean {
    const text = this.text;
    let at = start;
    let length = 0;
    let escaped = false;
    for (;;) {
      const code = text.charCodeAt(at);
      if (code === QUOTE) break;
      if (code === BACKSLASH) {
        escaped = true;
        const escape = text.charCodeAt(at + 1);
        if (escape === LOWER_U) {
          if (!(isHex(text.charCodeAt(at + 2)) && isHex(text.charCodeAt(at + 3)) && isHex(text.charCodeAt(at + 4)) && isHex(text.charCodeAt(at + 5)))) {
            return false;
          }
          at += 6;
        } else if (SIMPLE_ESCAPES.has(escape)) at += 2;
        else return false;
      } else if (code >= SPACE) at += 1;
      // A control character, or the end of the text (NaN) inside a string.
      else return false;
      length += 1;
    }
    this.at = at + 1;
    this.stringLength = length;
    this.stringEscaped = escaped;
    return true;
  }

  private number(): boolean {
    const text = this.text;
    let at = this.at;
    if (text.charCodeAt(at) === MINUS) at += 1;
    const first = text.charCodeAt(at);
    if (first === ZERO) at += 1;
    else if (first >= ONE && first <= NINE) while (isDigit(text.charCodeAt(at))) at += 1;
    else return false;
    if (text.charCodeAt(at) === DOT) {
      at += 1;
      if (!isDigit(text.charCodeAt(at))) return false;
      while (isDigit(text.charCodeAt(at))) at += 1;
    }
    const exponent = text.charCodeAt(at);
    if (exponent === LOWER_E || exponent === UPPER_E) {
      at += 1;
      const sign = text.charCodeAt(at);
      if (sign === PLUS || sign === MINUS) at += 1;
      if (!isDigit(text.charCodeAt(at))) return false;
      while (isDigit(text.charCodeAt(at))) at += 1;
    }
    this.at = at;
    return true;
  }

  private word(word: 'true' | 'false' | 'null'): boolean {
    if (!this.text.startsWith(word, this.at)) return false;
    this.at += word.length;
    return true;
  }
}
