/**
 * The OpenAI Chat Completions and Embeddings wire format: Seed's canonical request and
 * response shapes. Every adapter translates to and from these; the gateway validates client
 * bodies against the request schemas once, at the edge.
 *
 * Request schemas are `loose` (unknown fields pass through, so new OpenAI parameters reach an
 * OpenAI upstream untouched) but every known field is type-checked, so a wrong type is a 400
 * naming the field instead of an upstream surprise.
 */
import { z } from 'zod';

/**
 * A request's `model`: the route it names. Control characters never belong in a name, and one
 * would reach the ledger verbatim (PostgreSQL refuses NUL in text, so one such call would fail
 * every batch it was written in).
 */
const routeName = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters');

const textPart = z.object({ type: z.literal('text'), text: z.string() }).loose();
const imagePart = z
  .object({
    type: z.literal('image_url'),
    image_url: z.object({ url: z.string(), detail: z.enum(['auto', 'low', 'high']).optional() }).loose(),
  })
  .loose();
const audioPart = z
  .object({ type: z.literal('input_audio'), input_audio: z.object({ data: z.string(), format: z.string() }).loose() })
  .loose();
const filePart = z.object({ type: z.literal('file'), file: z.record(z.string(), z.unknown()) }).loose();
const refusalPart = z.object({ type: z.literal('refusal'), refusal: z.string() }).loose();

export const contentPartSchema = z.discriminatedUnion('type', [textPart, imagePart, audioPart, filePart, refusalPart]);
export type ContentPart = z.infer<typeof contentPartSchema>;

const toolCallSchema = z
  .object({
    id: z.string(),
    type: z.literal('function'),
    function: z.object({ name: z.string(), arguments: z.string() }).loose(),
  })
  .loose();
export type ToolCall = z.infer<typeof toolCallSchema>;

const nameField = z.string().max(256).optional();

export const messageSchema = z.discriminatedUnion('role', [
  z
    .object({
      role: z.literal('system'),
      content: z.union([z.string(), z.array(textPart)]),
      name: nameField,
    })
    .loose(),
  z
    .object({
      role: z.literal('developer'),
      content: z.union([z.string(), z.array(textPart)]),
      name: nameField,
    })
    .loose(),
  z
    .object({
      role: z.literal('user'),
      content: z.union([z.string(), z.array(contentPartSchema)]),
      name: nameField,
    })
    .loose(),
  z
    .object({
      role: z.literal('assistant'),
      content: z.union([z.string(), z.array(z.union([textPart, refusalPart])), z.null()]).optional(),
      name: nameField,
      tool_calls: z.array(toolCallSchema).optional(),
      refusal: z.string().nullable().optional(),
    })
    .loose(),
  z
    .object({
      role: z.literal('tool'),
      content: z.union([z.string(), z.array(textPart)]),
      tool_call_id: z.string(),
    })
    .loose(),
]);
export type ChatMessage = z.infer<typeof messageSchema>;

export const toolSchema = z
  .object({
    type: z.literal('function'),
    function: z
      .object({
        name: z.string().min(1).max(64),
        description: z.string().optional(),
        parameters: z.record(z.string(), z.unknown()).optional(),
        strict: z.boolean().nullable().optional(),
      })
      .loose(),
  })
  .loose();
export type Tool = z.infer<typeof toolSchema>;

export const toolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: z.string() }).loose() }).loose(),
]);
export type ToolChoice = z.infer<typeof toolChoiceSchema>;

export const responseFormatSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }).loose(),
  z.object({ type: z.literal('json_object') }).loose(),
  z
    .object({
      type: z.literal('json_schema'),
      json_schema: z
        .object({
          name: z.string().min(1).max(64),
          description: z.string().optional(),
          schema: z.record(z.string(), z.unknown()).optional(),
          strict: z.boolean().nullable().optional(),
        })
        .loose(),
    })
    .loose(),
]);
export type ResponseFormat = z.infer<typeof responseFormatSchema>;

export const chatCompletionRequestSchema = z
  .object({
    model: routeName,
    messages: z.array(messageSchema).min(1),
    stream: z.boolean().nullable().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).loose().nullable().optional(),
    max_tokens: z.number().int().positive().nullable().optional(),
    max_completion_tokens: z.number().int().positive().nullable().optional(),
    temperature: z.number().min(0).max(2).nullable().optional(),
    top_p: z.number().min(0).max(1).nullable().optional(),
    n: z.number().int().min(1).max(128).nullable().optional(),
    stop: z.union([z.string(), z.array(z.string()).max(4)]).nullable().optional(),
    presence_penalty: z.number().min(-2).max(2).nullable().optional(),
    frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
    logit_bias: z.record(z.string(), z.number()).nullable().optional(),
    logprobs: z.boolean().nullable().optional(),
    top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
    seed: z.number().int().nullable().optional(),
    user: z.string().optional(),
    tools: z.array(toolSchema).optional(),
    tool_choice: toolChoiceSchema.optional(),
    parallel_tool_calls: z.boolean().optional(),
    response_format: responseFormatSchema.optional(),
    metadata: z.record(z.string().max(64), z.string().max(512)).nullable().optional(),
    store: z.boolean().nullable().optional(),
    reasoning_effort: z.string().nullable().optional(),
  })
  .loose();
export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

/**
 * The largest token count Seed takes from an upstream: the ledger's token columns are 32-bit
 * integers (PostgreSQL's `integer`), and a row PostgreSQL refuses would hold its whole batch out
 * of the ledger. No call comes near it.
 */
export const MAX_TOKEN_COUNT = 2_147_483_647;

/**
 * A token count in an upstream's usage: a whole number from 0 to `MAX_TOKEN_COUNT`. The ledger
 * settles calls and prices them on these, so a count of another kind makes the answer invalid
 * rather than a negative, fractional or unstorable cost.
 */
export const tokenCount = z.number().int().nonnegative().max(MAX_TOKEN_COUNT);

export const usageSchema = z
  .object({
    prompt_tokens: tokenCount,
    completion_tokens: tokenCount,
    total_tokens: tokenCount,
    prompt_tokens_details: z.object({ cached_tokens: tokenCount.optional() }).loose().nullable().optional(),
    completion_tokens_details: z.object({ reasoning_tokens: tokenCount.optional() }).loose().nullable().optional(),
  })
  .loose();
export type Usage = z.infer<typeof usageSchema>;

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call';

export const chatCompletionSchema = z
  .object({
    id: z.string(),
    object: z.literal('chat.completion'),
    created: z.number(),
    model: z.string(),
    choices: z.array(
      z
        .object({
          index: z.number(),
          message: z
            .object({
              role: z.literal('assistant'),
              content: z.string().nullable(),
              tool_calls: z.array(toolCallSchema).optional(),
              refusal: z.string().nullable().optional(),
            })
            .loose(),
          finish_reason: z.string().nullable(),
          logprobs: z.unknown().optional(),
        })
        .loose(),
    ),
    usage: usageSchema.optional(),
    system_fingerprint: z.string().nullable().optional(),
  })
  .loose();
export type ChatCompletion = z.infer<typeof chatCompletionSchema>;

const chunkToolCallSchema = z
  .object({
    index: z.number(),
    id: z.string().optional(),
    type: z.literal('function').optional(),
    function: z.object({ name: z.string().optional(), arguments: z.string().optional() }).loose().optional(),
  })
  .loose();

export const chatCompletionChunkSchema = z
  .object({
    id: z.string(),
    object: z.literal('chat.completion.chunk'),
    created: z.number(),
    model: z.string(),
    choices: z.array(
      z
        .object({
          index: z.number(),
          delta: z
            .object({
              role: z.literal('assistant').optional(),
              content: z.string().nullable().optional(),
              tool_calls: z.array(chunkToolCallSchema).optional(),
              refusal: z.string().nullable().optional(),
            })
            .loose(),
          finish_reason: z.string().nullable().optional(),
          logprobs: z.unknown().optional(),
        })
        .loose(),
    ),
    usage: usageSchema.nullable().optional(),
    system_fingerprint: z.string().nullable().optional(),
  })
  .loose();
export type ChatCompletionChunk = z.infer<typeof chatCompletionChunkSchema>;

export const embeddingRequestSchema = z
  .object({
    model: routeName,
    input: z.union([
      z.string(),
      z.array(z.string()).min(1).max(2048),
      z.array(z.number().int()).min(1),
      z.array(z.array(z.number().int()).min(1)).min(1).max(2048),
    ]),
    encoding_format: z.enum(['float', 'base64']).optional(),
    dimensions: z.number().int().positive().optional(),
    user: z.string().optional(),
  })
  .loose();
export type EmbeddingRequest = z.infer<typeof embeddingRequestSchema>;

export const embeddingResponseSchema = z
  .object({
    object: z.literal('list'),
    data: z.array(
      z
        .object({
          object: z.literal('embedding'),
          index: z.number(),
          embedding: z.union([z.array(z.number()), z.string()]),
        })
        .loose(),
    ),
    model: z.string(),
    usage: z.object({ prompt_tokens: tokenCount, total_tokens: tokenCount }).loose(),
  })
  .loose();
export type EmbeddingResponse = z.infer<typeof embeddingResponseSchema>;
