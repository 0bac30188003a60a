/**
 * Anthropic Messages response → OpenAI `chat.completion`. Text blocks are joined into
 * `content`, `tool_use` blocks become `tool_calls`, and `thinking`/`redacted_thinking` (and
 * any block type Seed does not know) are dropped so no reasoning leaks to clients that did not
 * ask for it.
 */
import type { ChatCompletion, FinishReason, ToolCall, Usage } from '../../wire/openai.ts';
import type { AnthropicMessageResponse, AnthropicUsage } from './wire.ts';

/** How Anthropic's `stop_reason` reads in OpenAI's vocabulary. */
export function toFinishReason(input: { stopReason: string | null | undefined; responseFormatTool: string | undefined }): FinishReason {
  switch (input.stopReason) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      // A forced response-format tool is how the model answered, not a call the client must run.
      return input.responseFormatTool === undefined ? 'tool_calls' : 'stop';
    case 'refusal':
      return 'content_filter';
    default:
      // end_turn, stop_sequence, pause_turn and any future reason: the turn ended normally.
      return 'stop';
  }
}

/** Prompt tokens include cache reads and writes: Anthropic reports them apart from `input_tokens`. */
export function toUsage(usage: AnthropicUsage): Usage {
  const cachedTokens = usage.cache_read_input_tokens ?? 0;
  const promptTokens = (usage.input_tokens ?? 0) + cachedTokens + (usage.cache_creation_input_tokens ?? 0);
  const completionTokens = usage.output_tokens ?? 0;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
  };
}

/**
 * Translates a validated Messages response. `created` comes from the injected clock because
 * Anthropic responses carry no timestamp.
 *
 * @example
 * toChatCompletion({ response, createdMs: Date.now(), responseFormatTool: undefined }).choices[0].message.content
 */
export function toChatCompletion(input: {
  response: AnthropicMessageResponse;
  createdMs: number;
  responseFormatTool: string | undefined;
}): ChatCompletion {
  const { response, responseFormatTool } = input;
  const texts: string[] = [];
  const toolCalls: ToolCall[] = [];
  let formatted: string | undefined;
  for (const block of response.content) {
    if (block.type === 'text' && block.text !== undefined) texts.push(block.text);
    if (block.type !== 'tool_use' || block.id === undefined || block.name === undefined) continue;
    const argumentsText = JSON.stringify(block.input ?? {});
    if (block.name === responseFormatTool) formatted = argumentsText;
    else toolCalls.push({ id: block.id, type: 'function', function: { name: block.name, arguments: argumentsText } });
  }
  // With a response format, the client expects parseable JSON, so any preamble text is not content.
  const content = formatted ?? (texts.length > 0 ? texts.join('') : toolCalls.length > 0 ? null : '');
  return {
    id: response.id,
    object: 'chat.completion',
    created: Math.floor(input.createdMs / 1000),
    model: response.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content,
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
          refusal: null,
        },
        finish_reason: toFinishReason({ stopReason: response.stop_reason, responseFormatTool }),
        logprobs: null,
      },
    ],
    usage: toUsage(response.usage),
  };
}
