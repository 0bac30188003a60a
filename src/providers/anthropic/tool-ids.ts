/**
 * Tool call ids and their pairing, as the Messages API requires them.
 *
 * OpenAI-format clients replay conversations whose ids other providers made: `functions.lookup:0`
 * and `Bash:12` (Moonshot, Fireworks), `call_0` again in every turn (several open-model servers),
 * ids with spaces or `|`. OpenAI takes them; Anthropic refuses a `tool_use` id outside
 * `[a-zA-Z0-9_-]+` and a repeated one, and refuses the whole request, so one such id in the
 * history makes every later turn fail. Seed gives each call an id Anthropic takes, unique in the
 * request, and each tool result the id of the call it answers: the nearest earlier call with the
 * client's id, as OpenAI reads it.
 *
 * Anthropic also needs every `tool_use` answered by a `tool_result` in the next (user) message,
 * and every `tool_result` to answer a `tool_use` of the message before. `checkToolPairing`
 * refuses a translated conversation that breaks either rule with an error naming the client's
 * own messages; the upstream's error would name positions in the translated request instead.
 */
import { SeedError } from '../../errors.ts';
import type { AnthropicMessage, AnthropicToolResultBlock } from './wire.ts';

const TOOL_USE_ID = /^[a-zA-Z0-9_-]+$/;

/** Where a tool call or tool result came from in the client's request. */
interface Origin {
  /** The client's id. */
  id: string;
  /** The client's message index. */
  message: number;
}

export class ToolCallIds {
  /** Client id → Anthropic id of the latest call with that id. */
  private readonly latest = new Map<string, string>();
  /** Anthropic id (each one given out) → where the call came from. */
  private readonly calls = new Map<string, Origin>();
  /** Each tool result → the client message it came from. */
  private readonly results = new Map<AnthropicToolResultBlock, Origin>();
  private unmatched = 0;

  /**
   * Ids for the calls of one assistant message, in order.
   *
   * @example
   * const ids = new ToolCallIds();
   * ids.forCalls({ ids: ['functions.f:0'], message: 1 }); // → ['functions_f_0']
   * ids.forCalls({ ids: ['functions_f_0'], message: 3 }); // → ['functions_f_0_2']
   */
  forCalls(input: { ids: readonly string[]; message: number }): string[] {
    const seen = new Set<string>();
    return input.ids.map((id, index) => {
      if (seen.has(id)) {
        throw new SeedError(
          'invalid_request',
          `messages[${input.message}] has two tool calls with id ${JSON.stringify(id)}; each call needs its own id, or its tool result cannot say which call it answers.`,
          { param: `messages[${input.message}].tool_calls[${index}].id` },
        );
      }
      seen.add(id);
      const base = TOOL_USE_ID.test(id) ? id : id.replace(/[^a-zA-Z0-9_-]/g, '_') || 'call';
      let assigned = base;
      for (let suffix = 2; this.calls.has(assigned); suffix += 1) assigned = `${base}_${suffix}`;
      this.latest.set(id, assigned);
      this.calls.set(assigned, { id, message: input.message });
      return assigned;
    });
  }

  /** The `tool_result` block for a tool message: it answers the latest call with the client's id. */
  result(input: { toolCallId: string; message: number; content: AnthropicToolResultBlock['content'] }): AnthropicToolResultBlock {
    // A result for a call never made gets an id no call has; checkToolPairing refuses it.
    const toolUseId = this.latest.get(input.toolCallId) ?? `unmatched_${(this.unmatched += 1)}`;
    const block: AnthropicToolResultBlock = { type: 'tool_result', tool_use_id: toolUseId, content: input.content };
    this.results.set(block, { id: input.toolCallId, message: input.message });
    return block;
  }

  /**
   * Refuses a translated conversation in which a `tool_use` is not answered in the next message
   * or a `tool_result` answers no `tool_use` of the message before.
   */
  checkToolPairing(messages: readonly AnthropicMessage[]): void {
    messages.forEach((message, position) => {
      if (message.role === 'assistant') {
        const next = messages[position + 1];
        const answered = new Set(
          next?.role === 'user' ? next.content.flatMap((block) => (block.type === 'tool_result' ? [block.tool_use_id] : [])) : [],
        );
        for (const block of message.content) {
          if (block.type !== 'tool_use' || answered.has(block.id)) continue;
          const call = this.calls.get(block.id);
          const id = JSON.stringify(call?.id ?? block.id);
          throw new SeedError(
            'invalid_request',
            `Tool call ${id} in messages[${call?.message ?? '?'}] has no tool message answering it before the assistant speaks again; ` +
              'send a message with role "tool" and that tool_call_id after it.',
            { param: `messages[${call?.message ?? 0}].tool_calls` },
          );
        }
        return;
      }
      const previous = messages[position - 1];
      const called = new Set(
        previous?.role === 'assistant' ? previous.content.flatMap((block) => (block.type === 'tool_use' ? [block.id] : [])) : [],
      );
      for (const block of message.content) {
        if (block.type !== 'tool_result' || called.has(block.tool_use_id)) continue;
        const result = this.results.get(block);
        const id = JSON.stringify(result?.id ?? block.tool_use_id);
        throw new SeedError(
          'invalid_request',
          `messages[${result?.message ?? '?'}] answers tool call ${id}, which the assistant message before it did not make.`,
          { param: `messages[${result?.message ?? 0}].tool_call_id` },
        );
      }
    });
  }
}
