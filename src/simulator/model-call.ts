/**
 * The pipeline every model request goes through, whatever its wire format: per-request
 * overrides (`x-sim-*` headers), fault injection, quota enforcement, latency, then delivery
 * of the rendered body — whole, streamed, or broken on purpose.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { SimulatorContext } from './context.ts';
import { sendError, statusMessage, type Dialect } from './dialect.ts';
import type { Exchange, HeaderMap, StreamCut, StreamFrame } from './exchange.ts';
import { parseFaultHeader } from './faults.ts';
import { InvalidRequest } from './fields.ts';
import type { FaultRule, ResolvedModelOptions } from './options.ts';

/** Per-request overrides, read from `x-sim-*` headers. */
export interface Overrides {
  latencyMs?: number;
  ttftMs?: number;
  tokensPerSecond?: number;
  completionTokens?: number;
  fault?: FaultRule;
}

function numberHeader(input: { headers: IncomingHttpHeaders; name: string; integer?: boolean }): number | undefined {
  const raw = input.headers[input.name];
  if (raw === undefined) return undefined;
  const text = Array.isArray(raw) ? (raw[0] ?? '') : raw;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0 || (input.integer === true && !Number.isInteger(value))) {
    throw new InvalidRequest({ message: `${input.name}: "${text}" is not a number ≥ 0.` });
  }
  return value;
}

/**
 * Reads `x-sim-latency-ms`, `x-sim-ttft-ms`, `x-sim-tokens-per-second`,
 * `x-sim-completion-tokens` and `x-sim-fault`. A malformed value is a 400.
 */
export function readOverrides(headers: IncomingHttpHeaders): Overrides {
  const overrides: Overrides = {};
  const latencyMs = numberHeader({ headers, name: 'x-sim-latency-ms' });
  if (latencyMs !== undefined) overrides.latencyMs = latencyMs;
  const ttftMs = numberHeader({ headers, name: 'x-sim-ttft-ms' });
  if (ttftMs !== undefined) overrides.ttftMs = ttftMs;
  const tokensPerSecond = numberHeader({ headers, name: 'x-sim-tokens-per-second' });
  if (tokensPerSecond !== undefined) overrides.tokensPerSecond = tokensPerSecond;
  const completionTokens = numberHeader({ headers, name: 'x-sim-completion-tokens', integer: true });
  if (completionTokens !== undefined) {
    if (completionTokens < 1) throw new InvalidRequest({ message: 'x-sim-completion-tokens must be at least 1.' });
    overrides.completionTokens = completionTokens;
  }
  const fault = headers['x-sim-fault'];
  if (typeof fault === 'string' && fault.trim() !== '') {
    const parsed = parseFaultHeader(fault);
    if ('error' in parsed) throw new InvalidRequest({ message: parsed.error });
    overrides.fault = parsed.rule;
  }
  return overrides;
}

/** What a renderer needs once a call is admitted. */
export interface Admission {
  options: ResolvedModelOptions;
  /** Quota headers for the successful response (empty without limits). */
  headers: HeaderMap;
  /** Delay before the first token and between tokens, in milliseconds. */
  ttftMs: number;
  intervalMs: number;
  /** Completion length range, narrowed to one value by `x-sim-completion-tokens`. */
  completionTokens: { readonly min: number; readonly max: number };
  /** A fault that changes how the body is delivered (malformed-*, reset-, stall-, error-mid-stream). */
  bodyFault: FaultRule | undefined;
  /** The provider's error format, for `error-mid-stream`. */
  dialect: Dialect;
}

const statusFaults: ReadonlySet<string> = new Set(['400', '401', '403', '404', '408', '429', '500', '502', '503', '504', '529']);

/**
 * Runs faults, limits and latency for one call. Returns undefined when the call was already
 * answered (error, reset), left hanging, or abandoned by the client.
 *
 * `maxTokens` and `choices` feed the TPM estimate the way Azure counts: prompt + max_tokens
 * per choice, with the model's longest completion standing in for an absent max_tokens.
 */
export async function admitModelCall(input: {
  context: SimulatorContext;
  exchange: Exchange;
  dialect: Dialect;
  overrides: Overrides;
  modelKey: string;
  promptTokens: number;
  maxTokens: number | undefined;
  choices: number;
}): Promise<Admission | undefined> {
  const { context, exchange, dialect, overrides } = input;
  const options = context.modelOptions(input.modelKey);
  context.stats.model(input.modelKey);
  const fault = overrides.fault ?? context.faults.pick({ modelKey: input.modelKey, configured: options.faults });
  if (fault !== undefined) {
    context.stats.fault(fault.kind);
    if (statusFaults.has(fault.kind)) {
      const status = Number(fault.kind);
      const retryAfter = fault.retryAfterSeconds ?? (status === 429 ? 1 : undefined);
      sendError({
        exchange,
        dialect,
        error: { status, message: statusMessage(status), ...(status === 429 ? { code: 'rate_limit_exceeded' } : {}) },
        ...(retryAfter !== undefined ? { headers: dialect.retryHeaders(retryAfter * 1_000) } : {}),
      });
      return undefined;
    }
    if (fault.kind === 'reset') {
      exchange.resetConnection();
      return undefined;
    }
    // Accept and never answer; the exchange is released when the client closes the connection.
    if (fault.kind === 'hang') return undefined;
  }
  let headers: HeaderMap = {};
  if (options.limits !== undefined) {
    const now = Date.now();
    const completion = overrides.completionTokens ?? options.completionTokens.max;
    const tokens = input.promptTokens + (input.maxTokens ?? completion) * input.choices;
    const decision = context.limiter.admit({ key: input.modelKey, limits: options.limits, tokens, now });
    headers = dialect.quotaHeaders({ decision, now });
    if (!decision.allowed) {
      context.stats.limited();
      sendError({
        exchange,
        dialect,
        error: dialect.rateLimitError({ decision, model: options.model }),
        headers: { ...headers, ...dialect.retryHeaders(decision.retryAfterMs ?? 1_000) },
      });
      return undefined;
    }
    if (options.limits.tpm !== undefined) context.stats.admitted(tokens);
  }
  if (!(await exchange.sleep(overrides.latencyMs ?? options.latencyMs))) return undefined;
  const tokensPerSecond =
    fault?.kind === 'slow-stream' ? (fault.tokensPerSecond ?? 4) : (overrides.tokensPerSecond ?? options.tokensPerSecond);
  const forced = overrides.completionTokens;
  return {
    options,
    headers,
    ttftMs: overrides.ttftMs ?? options.ttftMs,
    intervalMs: tokensPerSecond > 0 ? 1_000 / tokensPerSecond : 0,
    completionTokens: forced !== undefined ? { min: forced, max: forced } : options.completionTokens,
    bodyFault: fault !== undefined && fault.kind !== 'slow-stream' ? fault : undefined,
    dialect,
  };
}

/**
 * Sends a complete JSON body after the generation time (TTFT plus the token pace), or the
 * body fault instead: half the JSON, an event stream of garbage, half a body then a drop, or
 * half a body then silence (the connection held open until the client gives up); with
 * `error-mid-stream`, which fails a stream after it started, the provider's 500.
 */
export async function deliverJson(input: {
  exchange: Exchange;
  admission: Admission;
  body: string;
  tokens: number;
}): Promise<void> {
  const { exchange, admission } = input;
  const generationMs = admission.ttftMs + Math.max(0, input.tokens - 1) * admission.intervalMs;
  if (!(await exchange.sleep(generationMs))) return;
  const half = input.body.slice(0, Math.floor(input.body.length / 2));
  switch (admission.bodyFault?.kind) {
    case 'malformed-json':
      exchange.send({ status: 200, headers: admission.headers, body: half });
      return;
    case 'malformed-sse':
      exchange.send({
        status: 200,
        headers: admission.headers,
        contentType: 'text/event-stream; charset=utf-8',
        body: `data: ${half}\n\nnot an event stream\n\n`,
      });
      return;
    case 'reset-mid-stream':
      exchange.sendTruncated({ status: 200, headers: admission.headers, contentType: 'application/json', body: input.body });
      return;
    case 'stall-mid-stream':
      exchange.sendTruncated({ status: 200, headers: admission.headers, contentType: 'application/json', body: input.body, then: 'stall' });
      return;
    case 'error-mid-stream':
      // A body that is not streamed fails before its first byte: the provider's 500.
      sendError({ exchange, dialect: admission.dialect, error: { status: 500, message: statusMessage(500) } });
      return;
    default:
      exchange.send({ status: 200, headers: admission.headers, body: input.body });
  }
}

/** Streams frames at the admitted pace, applying a body fault if one was drawn. */
export function deliverStream(input: { exchange: Exchange; admission: Admission; frames: StreamFrame[] }): void {
  const { admission } = input;
  const fault = admission.bodyFault;
  let frames = input.frames;
  if (fault?.kind === 'malformed-json') {
    // Valid SSE framing, but the first token's JSON is cut in half.
    const target = frames.findIndex((frame) => frame.paced);
    frames = frames.map((frame, index) =>
      index === target ? { ...frame, data: frame.data.slice(0, Math.floor(frame.data.length / 2)) } : frame,
    );
  }
  const cut = streamCut(fault, admission.dialect);
  input.exchange.stream({
    headers: admission.headers,
    frames,
    ttftMs: admission.ttftMs,
    intervalMs: admission.intervalMs,
    ...(cut === undefined ? {} : { cut }),
  });
}

/** Where and how a body fault cuts a stream short, if it does. */
function streamCut(fault: FaultRule | undefined, dialect: Dialect): StreamCut | undefined {
  const afterFrames = fault?.afterChunks ?? 2;
  switch (fault?.kind) {
    case 'reset-mid-stream':
      return { afterFrames, then: 'reset' };
    case 'stall-mid-stream':
      return { afterFrames, then: 'stall' };
    case 'error-mid-stream':
      return { afterFrames, then: 'error', frame: dialect.streamErrorFrame() };
    case 'malformed-sse':
      return { afterFrames: 2, then: 'garbage' };
    default:
      return undefined;
  }
}
