/**
 * A generation job: prompts sent to a teacher route through a Seed gateway, as any client's
 * calls are (principle 6: one admission path, one ledger). What makes it a job rather than a
 * loop over the SDK:
 *
 * - **The gateway paces it.** Every call carries `x-seed-priority: batch`, so when the key's
 *   limits or the deployment's quota are used up the gateway holds the call until capacity frees
 *   (within the route's deadline) instead of answering 429. A job can therefore run with a fixed
 *   number of calls in flight and still use the quota to its ceiling without a 429 storm: the
 *   gateway knows every other caller's use of the same quota, which no client can.
 * - **The purpose is declared** (`x-seed-purpose`, default `train`): the router only picks
 *   deployments whose terms allow it, and refuses the whole job at once when none does.
 * - **Every call is tagged** with `metadata: { seed_job, seed_item }` and a client request id, so
 *   the job's outputs can become a dataset with each sample's call as its lineage
 *   (`seed datasets create NAME --from-ledger --metadata seed_job=ID`).
 * - **Retries follow the gateway's errors:** 408, 409, 429 and 5xx, and broken connections, are
 *   retried after `retry-after-ms` / `retry-after` or an exponential backoff with jitter; an error
 *   no other item could escape (an invalid key, a purpose or route not allowed, an unknown route,
 *   a spent budget) stops the job instead of failing every item one by one.
 */
import { setMaxListeners } from 'node:events';
import { Pool } from 'undici';
import { SeedError } from '../errors.ts';
import { retryAfterMs } from '../providers/http.ts';
import { headersOf } from '../providers/upstream-call.ts';
import type { Purpose } from '../terms/index.ts';
import type { PromptItem } from './prompts.ts';

export interface GenerateJobOptions {
  /** The gateway's base URL: `http://host:port` or `http://host:port/v1`. */
  readonly gateway: string;
  /** A virtual key (sent as a bearer token); none when the gateway runs without auth. */
  readonly apiKey?: string;
  /** The teacher route (model alias). */
  readonly route: string;
  readonly purpose: Purpose;
  readonly items: readonly PromptItem[];
  /** Tags every call (`metadata.seed_job`); letters, digits and `._:-`, up to 64 characters. */
  readonly jobId: string;
  readonly maxTokens?: number;
  readonly temperature?: number;
  /** Calls in flight at once (default 8). */
  readonly concurrency?: number;
  /** Tries per item, the first included (default 6). */
  readonly maxAttempts?: number;
  /** Told about every item as it ends, in the order they end. */
  readonly onResult?: (result: ItemResult) => void;
  /** Stops dispatching; calls in flight are abandoned and their items reported as not attempted. */
  readonly signal?: AbortSignal;
  /** Backoff for retries without a `retry-after` (default 500 ms, doubling, up to 30 s, with jitter). */
  readonly backoffMs?: (attempt: number) => number;
}

export type ItemResult =
  | {
      readonly id: string;
      readonly ok: true;
      /** The gateway's call id (`x-request-id`): the sample's lineage in the ledger. */
      readonly callId: string | null;
      readonly message: unknown;
      readonly finishReason: string | null;
      readonly usage: { readonly prompt_tokens: number; readonly completion_tokens: number } | null;
      readonly attempts: number;
    }
  | {
      readonly id: string;
      readonly ok: false;
      readonly error: JobCallError;
      readonly attempts: number;
    };

/** An error as the gateway reported it (OpenAI format), or a transport failure (status 0). */
export interface JobCallError {
  readonly status: number;
  readonly code: string | null;
  readonly message: string;
}

export interface JobSummary {
  readonly jobId: string;
  readonly items: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Items never sent because the job stopped (a job-wide error, or the signal). */
  readonly notAttempted: number;
  /** HTTP requests made, retries included. */
  readonly requests: number;
  /** Responses with status 429 (each retried unless it was the item's last try). */
  readonly rateLimited: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly elapsedMs: number;
  /** Prompt + completion tokens of the succeeded items per minute of the job. */
  readonly tokensPerMinute: number;
  /** Why the job stopped early, when it did. */
  readonly stoppedBy: JobCallError | null;
}

const JOB_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Error codes after which no other item of the job could succeed either. */
const JOB_WIDE_CODES: ReadonlySet<string> = new Set([
  'missing_api_key',
  'invalid_api_key',
  'key_expired',
  'key_revoked',
  'route_not_allowed',
  'purpose_not_allowed',
  'region_not_allowed',
  'model_not_found',
  'budget_exceeded',
]);

/** The statuses the OpenAI SDKs retry, which the gateway's retryable errors map to. */
function retryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

function defaultBackoffMs(attempt: number): number {
  const ceiling = Math.min(30_000, 500 * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function sleep(milliseconds: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, milliseconds);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function gatewayUrl(gateway: string): URL {
  let url: URL;
  try {
    url = new URL(gateway);
  } catch {
    throw new SeedError('invalid_request', `--gateway: "${gateway}" is not a URL (expected http://host:port)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new SeedError('invalid_request', `--gateway: expected an http:// or https:// URL, got ${url.protocol}`);
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = `${path.endsWith('/v1') ? path : `${path}/v1`}/chat/completions`;
  return url;
}

async function errorOf(status: number, body: { text(): Promise<string> }): Promise<JobCallError> {
  const text = await body.text().catch(() => '');
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown; code?: unknown } };
    if (parsed.error && typeof parsed.error.message === 'string') {
      return { status, code: typeof parsed.error.code === 'string' ? parsed.error.code : null, message: parsed.error.message };
    }
  } catch {
    // Not JSON: reported as text below.
  }
  return { status, code: null, message: text.slice(0, 500) || `HTTP ${status}` };
}

/**
 * Runs every item through the gateway and resolves with the job's summary once all have ended.
 *
 * @example
 * const summary = await runGenerateJob({
 *   gateway: 'http://127.0.0.1:8080', apiKey: process.env.SEED_API_KEY, route: 'teacher',
 *   purpose: 'train', items: parsePrompts(text), jobId: 'gen-2026-12-03', concurrency: 16,
 *   onResult: (result) => out.write(`${JSON.stringify(result)}\n`),
 * });
 */
export async function runGenerateJob(options: GenerateJobOptions): Promise<JobSummary> {
  if (!JOB_ID.test(options.jobId)) throw new SeedError('invalid_request', `job id "${options.jobId}": use 1–64 letters, digits and . _ : -`);
  const concurrency = options.concurrency ?? 8;
  const maxAttempts = options.maxAttempts ?? 6;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new SeedError('invalid_request', `concurrency must be a positive integer, got ${concurrency}`);
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new SeedError('invalid_request', `maxAttempts must be a positive integer, got ${maxAttempts}`);
  const url = gatewayUrl(options.gateway);
  const backoffMs = options.backoffMs ?? defaultBackoffMs;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-seed-priority': 'batch',
    'x-seed-purpose': options.purpose,
    ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
  };
  const pool = new Pool(url.origin, { connections: concurrency });
  // One signal of the job's own, followed by every request and wait in flight: as many listeners
  // as calls in flight, which is not the leak Node warns about past 10.
  const stop = new AbortController();
  setMaxListeners(0, stop.signal);
  const onAbort = () => stop.abort(options.signal?.reason);
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });
  const signal = stop.signal;
  const started = performance.now();
  let requests = 0;
  let rateLimited = 0;
  let succeeded = 0;
  let failed = 0;
  let promptTokens = 0;
  let completionTokens = 0;
  let stoppedBy: JobCallError | null = null;
  let next = 0;
  const stopped = () => stoppedBy !== null || signal.aborted;

  async function send(item: PromptItem, index: number): Promise<{ done: ItemResult } | { retryInMs: number; error: JobCallError }> {
    const body = JSON.stringify({
      model: options.route,
      messages: item.messages,
      ...(options.maxTokens === undefined ? {} : { max_tokens: options.maxTokens }),
      ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
      metadata: { seed_job: options.jobId, seed_item: item.id },
    });
    requests += 1;
    let response;
    try {
      response = await pool.request({
        path: url.pathname,
        method: 'POST',
        headers: { ...headers, 'x-client-request-id': `${options.jobId}:${index}` },
        body,
        signal,
      });
    } catch (error) {
      return { retryInMs: Number.NaN, error: { status: 0, code: null, message: `the gateway could not be reached: ${(error as Error).message}` } };
    }
    const { statusCode } = response;
    if (statusCode === 200) {
      let parsed: { choices?: Array<{ message?: unknown; finish_reason?: unknown }>; usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } };
      try {
        parsed = (await response.body.json()) as typeof parsed;
      } catch (error) {
        return { retryInMs: Number.NaN, error: { status: 200, code: null, message: `the gateway's answer could not be read: ${(error as Error).message}` } };
      }
      const choice = parsed.choices?.[0];
      const usage =
        typeof parsed.usage?.prompt_tokens === 'number' && typeof parsed.usage.completion_tokens === 'number'
          ? { prompt_tokens: parsed.usage.prompt_tokens, completion_tokens: parsed.usage.completion_tokens }
          : null;
      const callId = response.headers['x-request-id'];
      return {
        done: {
          id: item.id,
          ok: true,
          callId: typeof callId === 'string' ? callId : null,
          message: choice?.message ?? null,
          finishReason: typeof choice?.finish_reason === 'string' ? choice.finish_reason : null,
          usage,
          attempts: 0,
        },
      };
    }
    if (statusCode === 429) rateLimited += 1;
    const error = await errorOf(statusCode, response.body);
    if (statusCode === 401 || (error.code !== null && JOB_WIDE_CODES.has(error.code))) {
      stoppedBy ??= error;
      return { done: { id: item.id, ok: false, error, attempts: 0 } };
    }
    if (!retryableStatus(statusCode)) return { done: { id: item.id, ok: false, error, attempts: 0 } };
    return { retryInMs: retryAfterMs(headersOf(response.headers)) ?? Number.NaN, error };
  }

  async function run(item: PromptItem, index: number): Promise<ItemResult | null> {
    for (let attempt = 1; ; attempt += 1) {
      const outcome = await send(item, index);
      if ('done' in outcome) return { ...outcome.done, attempts: attempt };
      if (attempt >= maxAttempts) return { id: item.id, ok: false, error: outcome.error, attempts: attempt };
      if (stopped()) return null;
      await sleep(Number.isNaN(outcome.retryInMs) ? backoffMs(attempt) : outcome.retryInMs, signal);
      if (stopped()) return null;
    }
  }

  let ended = 0;
  async function worker(): Promise<void> {
    while (!stopped() && next < options.items.length) {
      const index = next;
      next += 1;
      const result = await run(options.items[index] as PromptItem, index);
      if (result === null) continue;
      ended += 1;
      if (result.ok) {
        succeeded += 1;
        promptTokens += result.usage?.prompt_tokens ?? 0;
        completionTokens += result.usage?.completion_tokens ?? 0;
      } else failed += 1;
      options.onResult?.(result);
    }
  }

  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, options.items.length) }, worker));
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await pool.close().catch(() => undefined);
  }
  const elapsedMs = performance.now() - started;
  return {
    jobId: options.jobId,
    items: options.items.length,
    succeeded,
    failed,
    notAttempted: options.items.length - ended,
    requests,
    rateLimited,
    promptTokens,
    completionTokens,
    elapsedMs,
    tokensPerMinute: elapsedMs > 0 ? ((promptTokens + completionTokens) * 60_000) / elapsedMs : 0,
    stoppedBy,
  };
}
