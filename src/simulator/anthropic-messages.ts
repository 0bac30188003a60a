/**
 * `POST /v1/messages`: Anthropic's Messages API. Renders the shared completion plan as a
 * `message` (text or `tool_use` block) or as Anthropic's event sequence: `message_start`,
 * `content_block_start`, `ping`, `content_block_delta`…, `content_block_stop`,
 * `message_delta` (stop reason and output tokens), `message_stop`.
 */
import { checkMessagesRequest } from './anthropic-checks.ts';
import { conversationHash, planCompletion, type CompletionPlan, type ToolRequest } from './completion.ts';
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

/** The tool `tool_choice` names, else the first; none for `{"type":"none"}`. */
function chooseTool(body: JsonObject): ToolRequest | undefined {
  const tools = body.tools;
  if (tools === undefined || tools === null) return undefined;
  if (!Array.isArray(tools)) throw new InvalidRequest({ message: 'tools: Input should be a valid list', param: 'tools' });
  const choice = isRecord(body.tool_choice) ? body.tool_choice : undefined;
  if (tools.length === 0 || choice?.type === 'none') return undefined;
  const wanted = choice?.type === 'tool' ? choice.name : undefined;
  const chosen: unknown =
    typeof wanted === 'string' ? tools.find((tool) => isRecord(tool) && tool.name === wanted) : tools[0];
  if (!isRecord(chosen) || typeof chosen.name !== 'string') {
    const message = typeof wanted === 'string' ? `tool_choice: tool '${wanted}' not found in tools` : 'tools.0.name: Field required';
    throw new InvalidRequest({ message, param: 'tools' });
  }
  return { name: chosen.name, parameters: chosen.input_schema };
}

function stopReason(plan: CompletionPlan): string {
  switch (plan.finish) {
    case 'tool':
      return 'tool_use';
    case 'length':
      return 'max_tokens';
    case 'stop_sequence':
      return 'stop_sequence';
    default:
      return 'end_turn';
  }
}

function usage(input: { inputTokens: number; outputTokens: number }): JsonObject {
  return {
    input_tokens: input.inputTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    output_tokens: input.outputTokens,
  };
}

function contentBlock(plan: CompletionPlan): JsonObject {
  return plan.kind === 'tool'
    ? { type: 'tool_use', id: `toolu_${plan.idSuffix}`, name: plan.name, input: plan.input }
    : { type: 'text', text: plan.text };
}

function streamFrames(input: { message: JsonObject; plan: CompletionPlan; inputTokens: number }): StreamFrame[] {
  const { plan } = input;
  const event = (name: string, data: JsonObject, paced = false): StreamFrame => ({ event: name, data: JSON.stringify(data), paced });
  const opening = plan.kind === 'tool' ? { ...contentBlock(plan), input: {} } : { type: 'text', text: '' };
  const frames: StreamFrame[] = [
    event('message_start', {
      type: 'message_start',
      message: { ...input.message, content: [], stop_reason: null, stop_sequence: null, usage: usage({ inputTokens: input.inputTokens, outputTokens: 1 }) },
    }),
    event('content_block_start', { type: 'content_block_start', index: 0, content_block: opening }),
    event('ping', { type: 'ping' }),
  ];
  for (const piece of plan.pieces) {
    const delta = plan.kind === 'tool' ? { type: 'input_json_delta', partial_json: piece } : { type: 'text_delta', text: piece };
    frames.push(event('content_block_delta', { type: 'content_block_delta', index: 0, delta }, true));
  }
  frames.push(
    event('content_block_stop', { type: 'content_block_stop', index: 0 }),
    event('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stopReason(plan), stop_sequence: plan.kind === 'text' ? plan.stopSequence : null },
      usage: { output_tokens: plan.tokens },
    }),
    event('message_stop', { type: 'message_stop' }),
  );
  return frames;
}

export async function handleMessages(input: {
  context: SimulatorContext;
  exchange: Exchange;
  dialect: Dialect;
  overrides: Overrides;
  body: unknown;
}): Promise<void> {
  const { context, exchange, dialect } = input;
  const body = requireObject(input.body);
  const modelKey = requireString({ body, name: 'model', missing: 'model: Field required' });
  const maxTokens = optionalInteger({ body, name: 'max_tokens', min: 1 });
  if (maxTokens === undefined) throw new InvalidRequest({ message: 'max_tokens: Field required', param: 'max_tokens' });
  const messages = requireList({ body, name: 'messages', missing: 'messages: Field required' });
  const stop = optionalStringList({ body, name: 'stop_sequences' });
  checkMessagesRequest({ body, messages, stop });
  const tool = chooseTool(body);
  const toolCharacters = tool === undefined ? 0 : JSON.stringify(body.tools).length;
  const inputTokens = estimateTokens(contentCharacters(messages) + contentCharacters(body.system) + toolCharacters);
  const admission = await admitModelCall({
    context,
    exchange,
    dialect,
    overrides: input.overrides,
    modelKey,
    promptTokens: inputTokens,
    maxTokens,
    choices: 1,
  });
  if (admission === undefined) return;
  const fingerprint = conversationFingerprint({ system: body.system, messages });
  const plan = planCompletion({
    hash: conversationHash({ fingerprint, seed: context.options.seed }),
    choiceIndex: 0,
    maxTokens,
    stop,
    tool,
    shape: { type: 'text' },
    length: admission.completionTokens,
  });
  const message = { id: `msg_${context.nextId()}`, type: 'message', role: 'assistant', model: admission.options.model };
  if (body.stream === true) {
    deliverStream({ exchange, admission, frames: streamFrames({ message, plan, inputTokens }) });
    return;
  }
  const response = {
    ...message,
    content: plan.kind === 'text' && plan.text === '' ? [] : [contentBlock(plan)],
    stop_reason: stopReason(plan),
    stop_sequence: plan.kind === 'text' ? plan.stopSequence : null,
    usage: usage({ inputTokens, outputTokens: plan.tokens }),
  };
  await deliverJson({ exchange, admission, body: JSON.stringify(response), tokens: plan.tokens });
}
