/**
 * The fuzz suites' stack: the standard topology with a small body limit (so bodies beyond it
 * are cheap to build) and a client whose every request has a timeout, so a hang fails the
 * property instead of stalling the run.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Agent, request } from 'undici';
import { ANONYMOUS_CALLER, type Caller } from '../../src/gateway/hooks.ts';
import { standardConfig, startStack, type Stack } from './stack.ts';

export const FUZZ_BODY_LIMIT_BYTES = 64 * 1024;

export { FUZZ_SEED, fuzzRuns } from './fuzz-runs.ts';

/**
 * Names of Object.prototype's properties. A table kept in a plain object and looked up with
 * text from outside finds them (`table['constructor']` is a function), so every fuzz suite
 * draws them among its strings.
 */
export const prototypeName = fc.constantFrom('constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf');

export interface FuzzClient {
  stack: Stack;
  send(input: { path: string; body?: string | Buffer; headers?: Record<string, string> }): Promise<{
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: string;
  }>;
  /** A plain, valid chat completion must still succeed. */
  assertStillServes(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The caller of every fuzzed request: token limits far above the runs, so admission estimates
 * every body (where tokenizer input comes from the client) without refusing any.
 */
const FUZZ_CALLER: Caller = {
  ...ANONYMOUS_CALLER,
  keyId: 'key_fuzz',
  teamId: 'team_fuzz',
  limits: [{ owner: 'key', id: 'key_fuzz', limits: { tpm: 1_000_000_000_000 } }],
};

export async function startFuzzStack(): Promise<FuzzClient> {
  const stack = await startStack({
    config: (url) => `server: { bodyLimitBytes: ${FUZZ_BODY_LIMIT_BYTES} }\n${standardConfig(url)}`,
    start: { authenticate: () => FUZZ_CALLER },
  });
  const dispatcher = new Agent({ connections: 8, headersTimeout: 5_000, bodyTimeout: 5_000 });
  const send: FuzzClient['send'] = async (input) => {
    const response = await request(`${stack.seed.url}${input.path}`, {
      method: 'POST',
      dispatcher,
      headers: input.headers ?? { 'content-type': 'application/json' },
      ...(input.body === undefined ? {} : { body: input.body }),
    });
    return { status: response.statusCode, headers: response.headers, body: await response.body.text() };
  };
  return {
    stack,
    send,
    async assertStillServes() {
      const answer = await send({
        path: '/v1/chat/completions',
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'still there?' }] }),
      });
      assert.equal(answer.status, 200, answer.body);
    },
    async close() {
      await dispatcher.close();
      await stack.close();
    },
  };
}
