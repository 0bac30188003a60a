/**
 * What the simulated model "says", independent of any wire format: text (plain or JSON) cut by
 * stop sequences and max_tokens, or one tool call. The OpenAI and Anthropic formats render
 * the same plan, so both providers answer a conversation with the same words.
 */
import {
  createRandom,
  generatePhrase,
  generatePieces,
  hashText,
  randomInteger,
  splitIntoTokens,
  valueFromSchema,
} from './content.ts';

/** Why generation ended, in neutral terms each format maps onto its own vocabulary. */
export type FinishReason = 'end' | 'length' | 'stop_sequence' | 'tool';

export type ResponseShape = { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; schema: unknown };

export interface ToolRequest {
  name: string;
  /** JSON schema of the arguments; the call fills its required properties. */
  parameters: unknown;
}

export interface TextPlan {
  kind: 'text';
  /** Stream pieces, one token each; joined they are `text`. */
  pieces: string[];
  text: string;
  finish: 'end' | 'length' | 'stop_sequence';
  stopSequence: string | null;
  tokens: number;
}

export interface ToolPlan {
  kind: 'tool';
  /** 24 base62 characters; each format adds its prefix (`call_`, `toolu_`). */
  idSuffix: string;
  name: string;
  input: unknown;
  arguments: string;
  /** The arguments split the way OpenAI and Anthropic stream them. */
  pieces: string[];
  tokens: number;
  finish: 'tool';
}

export type CompletionPlan = TextPlan | ToolPlan;

/** Hash of the conversation and the simulator seed: the root of every choice's randomness. */
export function conversationHash(input: { fingerprint: string; seed: number }): number {
  return hashText({ text: input.fingerprint, seed: input.seed });
}

const base62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function randomId(random: () => number): string {
  let id = '';
  for (let index = 0; index < 24; index += 1) id += base62[Math.floor(random() * 62)];
  return id;
}

/** Keeps the pieces that lie before character offset `end`, cutting the last one. */
function piecesBefore(input: { pieces: readonly string[]; end: number }): string[] {
  const kept: string[] = [];
  let consumed = 0;
  for (const piece of input.pieces) {
    if (consumed + piece.length <= input.end) {
      kept.push(piece);
      consumed += piece.length;
      continue;
    }
    const part = piece.slice(0, input.end - consumed);
    if (part !== '') kept.push(part);
    break;
  }
  return kept;
}

/** A stop sequence ends generation where it first appears, unless max_tokens runs out sooner. */
function cutText(input: { pieces: string[]; stop: readonly string[]; maxTokens: number | undefined }): TextPlan {
  let kept = input.pieces;
  let finish: TextPlan['finish'] = 'end';
  let stopSequence: string | null = null;
  if (input.stop.length > 0) {
    const text = kept.join('');
    let earliest = -1;
    for (const sequence of input.stop) {
      if (sequence === '') continue;
      const at = text.indexOf(sequence);
      if (at !== -1 && (earliest === -1 || at < earliest)) {
        earliest = at;
        stopSequence = sequence;
      }
    }
    if (earliest !== -1) {
      kept = piecesBefore({ pieces: kept, end: earliest });
      finish = 'stop_sequence';
    }
  }
  if (input.maxTokens !== undefined && kept.length > input.maxTokens) {
    kept = kept.slice(0, input.maxTokens);
    finish = 'length';
    stopSequence = null;
  }
  return { kind: 'text', pieces: kept, text: kept.join(''), finish, stopSequence, tokens: kept.length };
}

/**
 * Plans choice `choiceIndex` of a request. A tool, when given, is always called (the
 * formats decide from tool_choice whether to pass one); JSON shapes produce valid JSON unless
 * max_tokens cuts it short, exactly like the real models.
 */
export function planCompletion(input: {
  hash: number;
  choiceIndex: number;
  maxTokens: number | undefined;
  stop: readonly string[];
  tool: ToolRequest | undefined;
  shape: ResponseShape;
  length: { readonly min: number; readonly max: number };
}): CompletionPlan {
  const random = createRandom((input.hash ^ Math.imul(input.choiceIndex + 1, 0x85ebca6b)) >>> 0);
  if (input.tool !== undefined) {
    const idSuffix = randomId(random);
    const value = valueFromSchema({ schema: input.tool.parameters, random, fixedString: 'x' });
    const argumentsText = JSON.stringify(value);
    const pieces = splitIntoTokens(argumentsText);
    return {
      kind: 'tool',
      idSuffix,
      name: input.tool.name,
      input: value,
      arguments: argumentsText,
      pieces,
      tokens: pieces.length,
      finish: 'tool',
    };
  }
  if (input.shape.type === 'text') {
    const count = randomInteger({ random, min: input.length.min, max: input.length.max });
    return cutText({ pieces: generatePieces({ random, count }), stop: input.stop, maxTokens: input.maxTokens });
  }
  const value =
    input.shape.type === 'json_schema' && input.shape.schema !== undefined
      ? valueFromSchema({ schema: input.shape.schema, random })
      : { answer: generatePhrase({ random }) };
  return cutText({ pieces: splitIntoTokens(JSON.stringify(value)), stop: input.stop, maxTokens: input.maxTokens });
}
