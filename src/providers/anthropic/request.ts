/**
 * OpenAI Chat Completions request → Anthropic Messages request. Every parameter is either
 * translated or reported in `warnings`; nothing the client sent disappears silently.
 *
 * `response_format` is emulated with a forced tool whose `input_schema` is the requested
 * schema: tool inputs are produced by constrained decoding of a JSON object, so the reply is
 * parseable JSON in the requested shape, whereas a system instruction only asks for it (and
 * the model may wrap it in prose or code fences). The response and stream translators turn
 * that tool's input back into `message.content`. When the client also sends its own tools, a
 * forced tool would stop the model from calling them, so Seed falls back to a system
 * instruction and says so in a warning.
 */
import { SeedError } from '../../errors.ts';
import type { ChatCompletionRequest, ResponseFormat, Tool, ToolChoice } from '../../wire/openai.ts';
import { toAnthropicMessages } from './messages.ts';
import type { AnthropicMessagesRequest, AnthropicTextBlock, AnthropicTool, AnthropicToolChoice } from './wire.ts';

export interface AnthropicRequestTranslation {
  body: AnthropicMessagesRequest;
  warnings: string[];
  /** Name of the forced tool that emulates `response_format`; its input is the reply's content. */
  responseFormatTool: string | undefined;
}

/** Fields this translator reads, or that the gateway handles before the adapter (`stream_options`). */
const HANDLED_FIELDS = new Set([
  'model',
  'messages',
  'stream',
  'stream_options',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'stop',
  'user',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
]);

/**
 * Builds the Messages API body for one chat request.
 *
 * @example
 * const { body, warnings } = toAnthropicRequest({
 *   request: { model: 'claude', messages: [{ role: 'user', content: 'Hi' }], seed: 7 },
 *   model: 'claude-sonnet-4-5',
 *   defaultMaxTokens: 4096,
 *   stream: false,
 * });
 * // body.max_tokens === 4096; warnings[0] mentions `seed`
 */
export function toAnthropicRequest(input: {
  request: ChatCompletionRequest;
  /** The deployment's upstream model name (not the client's alias). */
  model: string;
  defaultMaxTokens: number;
  stream: boolean;
}): AnthropicRequestTranslation {
  const { request } = input;
  const warnings = new Set<string>();
  const warn = (warning: string) => warnings.add(warning);
  unsupportedFields({ request, warn });

  const translated = toAnthropicMessages({ messages: request.messages, warn });
  const tools = request.tools ?? [];
  const format = responseFormat({ format: request.response_format, hasClientTools: tools.length > 0, warn });
  const system = appendSystem({ system: translated.system, extra: format.instruction });
  const toolChoice = format.tool
    ? ({ type: 'tool', name: format.tool.name } satisfies AnthropicToolChoice)
    : toAnthropicToolChoice({ request, warn });
  const allTools = [...toAnthropicTools({ tools, warn }), ...(format.tool ? [format.tool] : [])];

  const body: AnthropicMessagesRequest = {
    model: input.model,
    messages: translated.messages,
    max_tokens: request.max_completion_tokens ?? request.max_tokens ?? input.defaultMaxTokens,
    ...(system !== undefined ? { system } : {}),
    ...stopSequences({ stop: request.stop, warn }),
    ...sampling({ request, warn }),
    ...(allTools.length > 0 ? { tools: allTools } : {}),
    ...(toolChoice !== undefined ? { tool_choice: toolChoice } : {}),
    ...(request.user ? { metadata: { user_id: request.user } } : {}),
    ...(input.stream ? { stream: true } : {}),
  };
  return { body, warnings: [...warnings], responseFormatTool: format.tool?.name };
}

/** Warns about every field we do not translate, unless it holds a neutral value (null, 0, false, n=1, {}). */
function unsupportedFields(input: { request: ChatCompletionRequest; warn: (warning: string) => void }): void {
  for (const [field, value] of Object.entries(input.request)) {
    if (HANDLED_FIELDS.has(field) || isNeutral({ field, value })) continue;
    const detail = field === 'n' ? `; one choice is returned instead of ${String(value)}` : ' and was ignored';
    input.warn(`Parameter \`${field}\` is not supported by Anthropic${detail}.`);
  }
}

function isNeutral(input: { field: string; value: unknown }): boolean {
  const { field, value } = input;
  if (value === null || value === undefined || value === false) return true;
  if (field === 'n') return value === 1;
  if (field === 'presence_penalty' || field === 'frequency_penalty') return value === 0;
  return typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0;
}

function sampling(input: {
  request: ChatCompletionRequest;
  warn: (warning: string) => void;
}): Pick<AnthropicMessagesRequest, 'temperature' | 'top_p'> {
  const { temperature, top_p: topP } = input.request;
  const result: Pick<AnthropicMessagesRequest, 'temperature' | 'top_p'> = {};
  if (typeof temperature === 'number') {
    // OpenAI's range is 0–2, Anthropic's 0–1; values above 1 are clamped rather than rejected.
    if (temperature > 1) input.warn(`temperature ${temperature} is above Anthropic's maximum of 1 and was clamped to 1.`);
    result.temperature = Math.min(1, temperature);
  }
  if (typeof topP === 'number') result.top_p = topP;
  return result;
}

/**
 * Anthropic refuses a stop sequence without a visible character ("each stop sequence must
 * contain non-whitespace"), which OpenAI takes (`"\n"` is a common one). Such sequences are not
 * sent, with a warning: the answer may then run on past where the client wanted it cut.
 */
function stopSequences(input: {
  stop: ChatCompletionRequest['stop'];
  warn: (warning: string) => void;
}): Pick<AnthropicMessagesRequest, 'stop_sequences'> {
  const { stop } = input;
  if (stop === null || stop === undefined) return {};
  const sequences = typeof stop === 'string' ? [stop] : stop;
  const visible = sequences.filter((sequence) => sequence.trim() !== '');
  if (visible.length < sequences.length) {
    input.warn('Stop sequences of only whitespace are not supported by Anthropic and were not sent.');
  }
  return visible.length > 0 ? { stop_sequences: visible } : {};
}

/** Tools with the distinct names Anthropic requires ("Tool names must be unique"). */
function toAnthropicTools(input: { tools: readonly Tool[]; warn: (warning: string) => void }): AnthropicTool[] {
  const seen = new Set<string>();
  return input.tools.map((tool, index) => {
    const name = tool.function.name;
    if (seen.has(name)) {
      throw new SeedError('invalid_request', `Anthropic needs distinct tool names; ${JSON.stringify(name)} is in \`tools\` twice.`, {
        param: `tools[${index}].function.name`,
      });
    }
    seen.add(name);
    return toAnthropicTool({ tool, index, warn: input.warn });
  });
}

function toAnthropicTool(input: { tool: Tool; index: number; warn: (warning: string) => void }): AnthropicTool {
  const { function: definition } = input.tool;
  if (definition.strict === true) {
    input.warn('Tool `strict` mode is not supported by Anthropic; tool arguments are not schema-enforced.');
  }
  return {
    name: definition.name,
    ...(definition.description !== undefined ? { description: definition.description } : {}),
    input_schema: inputSchema({ parameters: definition.parameters, param: `tools[${input.index}].function.parameters` }),
  };
}

/**
 * Anthropic requires an input schema of `"type": "object"`. OpenAI allows none for a function
 * without parameters, and takes a schema without `type` (`{}`, or properties alone); both mean
 * an object of arguments, so they get the type. A schema of another type cannot describe
 * arguments on either side and is refused.
 */
function inputSchema(input: { parameters: Record<string, unknown> | undefined; param: string }): Record<string, unknown> {
  const { parameters } = input;
  if (parameters === undefined) return { type: 'object', properties: {} };
  const type = parameters['type'];
  if (type === undefined) return { ...parameters, type: 'object' };
  if (type === 'object') return parameters;
  throw new SeedError('invalid_request', `Tool parameters must be a JSON schema of type "object", not ${JSON.stringify(type)}.`, {
    param: input.param,
  });
}

/**
 * `auto`/`none`/`required`/named function → `auto`/`none`/`any`/`tool`, with
 * `parallel_tool_calls: false` carried as `disable_parallel_tool_use`.
 */
export function toAnthropicToolChoice(input: {
  request: Pick<ChatCompletionRequest, 'tools' | 'tool_choice' | 'parallel_tool_calls'>;
  warn: (warning: string) => void;
}): AnthropicToolChoice | undefined {
  const { tools = [], tool_choice: choice, parallel_tool_calls: parallel } = input.request;
  if (tools.length === 0) {
    if (choice === 'required' || (typeof choice === 'object' && choice !== undefined)) {
      throw new SeedError('invalid_request', '`tool_choice` requires at least one tool in `tools`.', { param: 'tool_choice' });
    }
    return undefined;
  }
  const base = baseToolChoice({ choice, tools });
  if (parallel !== false) return base;
  if (base?.type === 'none') return base;
  return { ...(base ?? { type: 'auto' }), disable_parallel_tool_use: true };
}

function baseToolChoice(input: { choice: ToolChoice | undefined; tools: readonly Tool[] }): AnthropicToolChoice | undefined {
  const { choice, tools } = input;
  if (choice === undefined) return undefined;
  if (choice === 'auto') return { type: 'auto' };
  if (choice === 'none') return { type: 'none' };
  if (choice === 'required') return { type: 'any' };
  const name = choice.function.name;
  if (!tools.some((tool) => tool.function.name === name)) {
    throw new SeedError('invalid_request', `\`tool_choice\` names function ${name}, which is not in \`tools\`.`, {
      param: 'tool_choice.function.name',
    });
  }
  return { type: 'tool', name };
}

interface FormatEmulation {
  tool: AnthropicTool | undefined;
  instruction: string | undefined;
}

function responseFormat(input: {
  format: ResponseFormat | undefined;
  hasClientTools: boolean;
  warn: (warning: string) => void;
}): FormatEmulation {
  const { format } = input;
  if (format === undefined || format.type === 'text') return { tool: undefined, instruction: undefined };
  const schema = format.type === 'json_schema' ? format.json_schema.schema : undefined;
  // A tool input is always an object, so only object schemas (or json_object) can use the forced tool.
  const objectSchema = schema === undefined || schema['type'] === 'object';
  if (!input.hasClientTools && objectSchema) {
    const name = format.type === 'json_schema' ? format.json_schema.name : 'json_object';
    const description =
      (format.type === 'json_schema' ? format.json_schema.description : undefined) ??
      'Give your complete answer as the input of this tool, as a JSON object.';
    return { tool: { name, description, input_schema: schema ?? { type: 'object' } }, instruction: undefined };
  }
  input.warn(
    input.hasClientTools
      ? '`response_format` together with `tools` is emulated with a system instruction on Anthropic; the JSON output is not enforced.'
      : '`response_format` with a non-object schema is emulated with a system instruction on Anthropic; the JSON output is not enforced.',
  );
  const instruction =
    schema === undefined
      ? 'Respond only with a valid JSON object, without any other text or code fences.'
      : `Respond only with JSON that conforms to this JSON schema, without any other text or code fences:\n${JSON.stringify(schema)}`;
  return { tool: undefined, instruction };
}

function appendSystem(input: {
  system: string | AnthropicTextBlock[] | undefined;
  extra: string | undefined;
}): string | AnthropicTextBlock[] | undefined {
  const { system, extra } = input;
  if (extra === undefined) return system;
  if (system === undefined) return extra;
  const blocks: AnthropicTextBlock[] = typeof system === 'string' ? [{ type: 'text', text: system }] : system;
  return [...blocks, { type: 'text', text: extra }];
}
