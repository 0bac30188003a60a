/**
 * `POST /v1/chat/completions` (and Azure's deployment route): reads the few fields the
 * simulator acts on, plans each choice, and renders a `chat.completion` or the chunk stream
 * OpenAI sends (role chunk, token chunks, finish chunk, optional usage chunk, `[DONE]`).
 */
import { planCompletion, conversationHash, type CompletionPlan, type ResponseShape, type ToolRequest } from './completion.ts';
import { estimateTokens } from './content.ts';
import type { SimulatorContext } from './context.ts';
import type { Dialect } from './dialect.ts';
import type { Exchange, StreamFrame } from './exchange.ts';
import {
  InvalidRequest,
  contentCharacters,
  conversationFingerprint,
  isRecord,
  optionalInteger,
  optionalStringList,
  requireList,
  requireObject,
  requireString,
  type JsonObject,
} from './fields.ts';
import { admitModelCall, deliverJson, deliverStream, type Overrides } from './model-call.ts';

/**
 * OpenAI's pairing of tool calls and tool messages: an assistant message with `tool_calls` must
 * be followed by a tool message for each call before any other message, and a tool message must
 * answer a call of that run. Both are 400s on the real API, in these words.
 */
function checkToolMessages(messages: readonly unknown[]): void {
  let pending: { index: number; ids: Set<string> } | undefined;
  const unanswered = () => {
    if (pending === undefined || pending.ids.size === 0) return;
    throw new InvalidRequest({
      message:
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. " +
        `The following tool_call_ids did not have response messages: ${[...pending.ids].join(', ')}`,
      param: `messages.[${pending.index}].role`,
    });
  };
  messages.forEach((message, index) => {
    if (!isRecord(message)) return;
    if (message.role === 'tool') {
      if (pending === undefined || !pending.ids.delete(String(message.tool_call_id))) {
        throw new InvalidRequest({
          message: "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
          param: `messages.[${index}].role`,
        });
      }
      return;
    }
    unanswered();
    pending = undefined;
    if (message.role === 'assistant' && Array.isArray(message.tool_calls) && message.tool_calls.length > 0) {
      pending = { index, ids: new Set(message.tool_calls.map((call) => String(isRecord(call) ? call.id : undefined))) };
    }
  });
  unanswered();
}

/** The tool to call: the one `tool_choice` names, else the first; none when tool_choice is "none". */
function chooseTool(body: JsonObject): ToolRequest | undefined {
  const tools = body.tools;
  if (tools === undefined || tools === null) return undefined;
  if (!Array.isArray(tools)) throw new InvalidRequest({ message: "'tools' must be an array.", param: 'tools' });
  if (tools.length === 0 || body.tool_choice === 'none') return undefined;
  const functions = tools.map((tool) => (isRecord(tool) && isRecord(tool.function) ? tool.function : undefined));
  const choice = body.tool_choice;
  const wanted = isRecord(choice) && isRecord(choice.function) ? choice.function.name : undefined;
  const chosen = typeof wanted === 'string' ? functions.find((tool) => tool?.name === wanted) : functions[0];
  if (chosen === undefined && typeof wanted === 'string') {
    throw new InvalidRequest({ message: `Tool '${wanted}' named in tool_choice is not in tools.`, param: 'tool_choice' });
  }
  if (chosen === undefined || typeof chosen.name !== 'string') {
    throw new InvalidRequest({ message: "Missing required parameter: 'tools[0].function.name'.", param: 'tools' });
  }
  return { name: chosen.name, parameters: chosen.parameters };
}

function responseShape(body: JsonObject): ResponseShape {
  const format = body.response_format;
  if (!isRecord(format)) return { type: 'text' };
  if (format.type === 'json_object') return { type: 'json_object' };
  if (format.type === 'json_schema') {
    return { type: 'json_schema', schema: isRecord(format.json_schema) ? format.json_schema.schema : undefined };
  }
  return { type: 'text' };
}

function finishReason(plan: CompletionPlan): string {
  if (plan.finish === 'tool') return 'tool_calls';
  return plan.finish === 'length' ? 'length' : 'stop';
}

function usage(input: { promptTokens: number; completionTokens: number }): JsonObject {
  return {
    prompt_tokens: input.promptTokens,
    completion_tokens: input.completionTokens,
    total_tokens: input.promptTokens + input.completionTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function message(plan: CompletionPlan): JsonObject {
  if (plan.kind === 'text') return { role: 'assistant', content: plan.text, refusal: null, annotations: [] };
  return {
    role: 'assistant',
    content: null,
    tool_calls: [{ id: `call_${plan.idSuffix}`, type: 'function', function: { name: plan.name, arguments: plan.arguments } }],
    refusal: null,
    annotations: [],
  };
}

/** The first delta of a choice: the role, and for a tool call its id and name with empty arguments. */
function openingDelta(plan: CompletionPlan): JsonObject {
  if (plan.kind === 'text') return { role: 'assistant', content: '', refusal: null };
  return {
    role: 'assistant',
    content: null,
    tool_calls: [{ index: 0, id: `call_${plan.idSuffix}`, type: 'function', function: { name: plan.name, arguments: '' } }],
    refusal: null,
  };
}

function streamFrames(input: {
  id: string;
  created: number;
  model: string;
  plans: readonly CompletionPlan[];
  includeUsage: boolean;
  usage: JsonObject;
  dialect: Dialect;
}): StreamFrame[] {
  const { plans } = input;
  // Chunks differ only in their choice; build the envelope once (this is the hot path of benchmarks).
  const head = `{"id":"${input.id}","object":"chat.completion.chunk","created":${input.created},"model":${JSON.stringify(input.model)},"service_tier":"default","system_fingerprint":"fp_simulator","choices":[`;
  const tail = input.includeUsage ? '],"usage":null}' : ']}';
  const choice = (index: number, delta: string, finish: string | null) =>
    `${head}{"index":${index},"delta":${delta},"logprobs":null,"finish_reason":${finish === null ? 'null' : `"${finish}"`}}${tail}`;
  const frames: StreamFrame[] = [];
  if (input.dialect.contentFilterResults !== undefined) {
    const filters = [{ prompt_index: 0, content_filter_results: input.dialect.contentFilterResults }];
    const data = JSON.stringify({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: filters });
    frames.push({ data, paced: false });
  }
  plans.forEach((plan, index) => frames.push({ data: choice(index, JSON.stringify(openingDelta(plan)), null), paced: false }));
  const longest = Math.max(...plans.map((plan) => plan.pieces.length));
  // Choices interleave token by token, as OpenAI's do when n > 1.
  for (let position = 0; position < longest; position += 1) {
    plans.forEach((plan, index) => {
      const piece = plan.pieces[position];
      if (piece === undefined) return;
      const delta =
        plan.kind === 'tool'
          ? `{"tool_calls":[{"index":0,"function":{"arguments":${JSON.stringify(piece)}}}]}`
          : `{"content":${JSON.stringify(piece)}}`;
      frames.push({ data: choice(index, delta, null), paced: true });
    });
  }
  plans.forEach((plan, index) => frames.push({ data: choice(index, '{}', finishReason(plan)), paced: false }));
  if (input.includeUsage) frames.push({ data: `${head}],"usage":${JSON.stringify(input.usage)}}`, paced: false });
  frames.push({ data: '[DONE]', paced: false });
  return frames;
}

/**
 * Answers one chat completion. `deployment` is Azure's: it names the model options and
 * limits instead of the body's `model`.
 */
export async function handleChatCompletion(input: {
  context: SimulatorContext;
  exchange: Exchange;
  dialect: Dialect;
  overrides: Overrides;
  body: unknown;
  deployment?: string;
}): Promise<void> {
  const { context, exchange, dialect } = input;
  const body = requireObject(input.body);
  const modelKey = input.deployment ?? requireString({ body, name: 'model', missing: 'you must provide a model parameter' });
  const messages = requireList({ body, name: 'messages' });
  checkToolMessages(messages);
  // OpenAI refuses stream options on a request that does not stream (a gateway that strips
  // `stream` for a buffered call must strip them too); null counts as absent.
  if (body.stream !== true && body.stream_options != null) {
    throw new InvalidRequest({ message: "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param: 'stream_options' });
  }
  const choices = optionalInteger({ body, name: 'n', min: 1, max: 128 }) ?? 1;
  const maxTokens =
    optionalInteger({ body, name: 'max_completion_tokens', min: 1 }) ?? optionalInteger({ body, name: 'max_tokens', min: 1 });
  const stop = optionalStringList({ body, name: 'stop' });
  const tool = chooseTool(body);
  const shape = responseShape(body);
  const toolCharacters = tool === undefined ? 0 : JSON.stringify(body.tools).length;
  const promptTokens = estimateTokens(contentCharacters(messages) + toolCharacters);
  const admission = await admitModelCall({
    context,
    exchange,
    dialect,
    overrides: input.overrides,
    modelKey,
    promptTokens,
    maxTokens,
    choices,
  });
  if (admission === undefined) return;
  const hash = conversationHash({ fingerprint: conversationFingerprint({ messages }), seed: context.options.seed });
  const plans: CompletionPlan[] = [];
  let completionTokens = 0;
  for (let index = 0; index < choices; index += 1) {
    const plan = planCompletion({ hash, choiceIndex: index, maxTokens, stop, tool, shape, length: admission.completionTokens });
    completionTokens += plan.tokens;
    plans.push(plan);
  }
  const id = `chatcmpl-${context.nextId()}`;
  const created = Math.floor(Date.now() / 1_000);
  const model = admission.options.model;
  const totals = usage({ promptTokens, completionTokens });
  if (body.stream === true) {
    const includeUsage = isRecord(body.stream_options) && body.stream_options.include_usage === true;
    const frames = streamFrames({ id, created, model, plans, includeUsage, usage: totals, dialect });
    deliverStream({ exchange, admission, frames });
    return;
  }
  const filters = dialect.contentFilterResults;
  const completion = {
    id,
    object: 'chat.completion',
    created,
    model,
    choices: plans.map((plan, index) => ({
      index,
      message: message(plan),
      logprobs: null,
      finish_reason: finishReason(plan),
      ...(filters !== undefined ? { content_filter_results: filters } : {}),
    })),
    usage: totals,
    service_tier: 'default',
    system_fingerprint: 'fp_simulator',
    ...(filters !== undefined ? { prompt_filter_results: [{ prompt_index: 0, content_filter_results: filters }] } : {}),
  };
  const tokens = Math.max(...plans.map((plan) => plan.tokens));
  await deliverJson({ exchange, admission, body: JSON.stringify(completion), tokens });
}
