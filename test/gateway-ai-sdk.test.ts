/** The Vercel AI SDK (generateText, streamText) against the gateway, for every provider kind. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateText, streamText, tool, jsonSchema } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { startStack, type Stack } from './helpers/stack.ts';

let stack: Stack;

before(async () => {
  stack = await startStack();
});
after(async () => stack.close());

const provider = () => createOpenAI({ baseURL: stack.baseURL, apiKey: 'unused' });

for (const route of ['gpt-4o-mini', 'azure-mini', 'llama', 'claude-sonnet']) {
  test(`generateText through ${route}`, async () => {
    const result = await generateText({ model: provider().chat(route), prompt: 'Say hello.', maxOutputTokens: 30 });
    assert.ok(result.text.length > 0);
    assert.ok((result.usage.outputTokens ?? 0) > 0);
    assert.ok(['stop', 'length'].includes(result.finishReason), result.finishReason);
  });

  test(`streamText through ${route}`, async () => {
    const result = streamText({ model: provider().chat(route), prompt: 'Count.', maxOutputTokens: 30 });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    assert.ok(text.length > 0);
    assert.equal(text, await result.text);
    const usage = await result.usage;
    assert.ok((usage.outputTokens ?? 0) > 0);
  });
}

test('generateText with a tool through the Anthropic adapter', async () => {
  const result = await generateText({
    model: provider().chat('claude-sonnet'),
    prompt: 'Weather in Rome?',
    tools: {
      weather: tool({
        description: 'Weather in a city',
        inputSchema: jsonSchema<{ city: string }>({
          type: 'object',
          properties: { city: { type: 'string' } },
          required: ['city'],
        }),
      }),
    },
    toolChoice: 'required',
  });
  assert.equal(result.toolCalls[0]?.toolName, 'weather');
  assert.equal(typeof (result.toolCalls[0]?.input as { city?: unknown }).city, 'string');
});
