/**
 * The Anthropic Messages API wire format, as far as Seed speaks it. Request shapes are plain
 * types (we build them); response and stream shapes are zod schemas, because upstream bodies
 * are validated at the edge like any other input. Response schemas are `loose` and block
 * types are open-ended: Anthropic adds block and event types over time, and an unknown one
 * must be skipped, not turned into a 502.
 */
import { z } from 'zod';
import { tokenCount } from '../../wire/openai.ts';

export interface AnthropicTextBlock {
  type: 'text';
  text: string;
}

export type AnthropicImageSource =
  | { type: 'base64'; media_type: string; data: string }
  | { type: 'url'; url: string };

export interface AnthropicImageBlock {
  type: 'image';
  source: AnthropicImageSource;
}

export interface AnthropicDocumentBlock {
  type: 'document';
  source: { type: 'base64'; media_type: 'application/pdf'; data: string };
}

export interface AnthropicToolUseBlock {
  type: 'tool_use';
  id: string;
  name: string;
  input: Record<string, unknown>;
}

export interface AnthropicToolResultBlock {
  type: 'tool_result';
  tool_use_id: string;
  content: string | AnthropicTextBlock[];
}

export type AnthropicRequestBlock =
  | AnthropicTextBlock
  | AnthropicImageBlock
  | AnthropicDocumentBlock
  | AnthropicToolUseBlock
  | AnthropicToolResultBlock;

export interface AnthropicMessage {
  role: 'user' | 'assistant';
  content: AnthropicRequestBlock[];
}

export interface AnthropicTool {
  name: string;
  description?: string;
  input_schema: Record<string, unknown>;
}

export type AnthropicToolChoice =
  | { type: 'auto' | 'any'; disable_parallel_tool_use?: boolean }
  | { type: 'tool'; name: string; disable_parallel_tool_use?: boolean }
  | { type: 'none' };

/** Body of `POST /v1/messages`. */
export interface AnthropicMessagesRequest {
  model: string;
  messages: AnthropicMessage[];
  max_tokens: number;
  system?: string | AnthropicTextBlock[];
  stop_sequences?: string[];
  temperature?: number;
  top_p?: number;
  tools?: AnthropicTool[];
  tool_choice?: AnthropicToolChoice;
  metadata?: { user_id: string };
  stream?: boolean;
}

/** A token count as the ledger settles, prices and stores calls on it (`tokenCount`), or absent. */
const optionalTokenCount = tokenCount.nullable().optional();

export const anthropicUsageSchema = z
  .object({
    input_tokens: optionalTokenCount,
    output_tokens: optionalTokenCount,
    cache_creation_input_tokens: optionalTokenCount,
    cache_read_input_tokens: optionalTokenCount,
  })
  .loose();
export type AnthropicUsage = z.infer<typeof anthropicUsageSchema>;

/** One response content block; only the fields Seed reads are typed, the rest pass through. */
export const anthropicResponseBlockSchema = z
  .object({
    type: z.string(),
    text: z.string().optional(),
    id: z.string().optional(),
    name: z.string().optional(),
    input: z.unknown().optional(),
  })
  .loose();
export type AnthropicResponseBlock = z.infer<typeof anthropicResponseBlockSchema>;

export const anthropicMessageResponseSchema = z
  .object({
    id: z.string(),
    type: z.literal('message'),
    role: z.literal('assistant'),
    model: z.string(),
    content: z.array(anthropicResponseBlockSchema),
    stop_reason: z.string().nullable(),
    stop_sequence: z.string().nullable().optional(),
    usage: anthropicUsageSchema,
  })
  .loose();
export type AnthropicMessageResponse = z.infer<typeof anthropicMessageResponseSchema>;

/** `{"type":"error","error":{"type","message"}}`, both as an HTTP body and as a stream event. */
export const anthropicErrorBodySchema = z
  .object({
    type: z.literal('error'),
    error: z.object({ type: z.string(), message: z.string() }).loose(),
  })
  .loose();
export type AnthropicErrorBody = z.infer<typeof anthropicErrorBodySchema>;

/** The stream events Seed acts on. Other event types (new ones included) are skipped by the reader. */
export const anthropicStreamEventSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('message_start'),
      message: z
        .object({ id: z.string(), model: z.string(), usage: anthropicUsageSchema.optional() })
        .loose(),
    })
    .loose(),
  z
    .object({ type: z.literal('content_block_start'), index: z.number(), content_block: anthropicResponseBlockSchema })
    .loose(),
  z
    .object({
      type: z.literal('content_block_delta'),
      index: z.number(),
      delta: z
        .object({ type: z.string(), text: z.string().optional(), partial_json: z.string().optional() })
        .loose(),
    })
    .loose(),
  z.object({ type: z.literal('content_block_stop'), index: z.number() }).loose(),
  z
    .object({
      type: z.literal('message_delta'),
      delta: z.object({ stop_reason: z.string().nullable().optional() }).loose(),
      usage: anthropicUsageSchema.optional(),
    })
    .loose(),
  z.object({ type: z.literal('message_stop') }).loose(),
  z.object({ type: z.literal('ping') }).loose(),
  anthropicErrorBodySchema,
]);
export type AnthropicStreamEvent = z.infer<typeof anthropicStreamEventSchema>;
