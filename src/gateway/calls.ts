/**
 * The call service: one mechanism for every caller (HTTP clients, jobs, evals, bots). It admits
 * a call, routes it across deployments, settles usage, and emits one CallRecord whatever the
 * outcome. The HTTP layer only parses requests and writes responses around it.
 */
import { SeedError, toSeedError, type UpstreamQuota } from '../errors.ts';
import type { CallContext, ProviderAdapter } from '../providers/types.ts';
import type { Deployment, Route } from '../routing/route-table.ts';
import type { Router } from '../routing/router.ts';
import type { CallEndpoint, CallRecord, CallSink } from '../ledger/types.ts';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, EmbeddingRequest, EmbeddingResponse } from '../wire/openai.ts';
import type { Admission, AdmissionTicket, Caller, Priority, Usage } from './hooks.ts';
import type { Purpose } from '../terms/purpose.ts';
import type { Redact } from '../ledger/redact.ts';
import { chunkCompletionChars, PlainChunks, UsageChunk, reportedUsage, type ReportedUsage, type StreamChunk } from '../wire/stream-chunk.ts';
import type { CallSignal } from '../abort.ts';

export interface CallInput<Body> {
  body: Body;
  caller: Caller;
  purpose: Purpose;
  priority: Priority;
  /** The call's id (`newCallId`), unique; the ledger's key. */
  requestId: string;
  /** The client's own id for the request, when it sent one; stored, never used as a key. */
  clientRequestId: string | null;
  /** Aborts when the client goes away (and, with `abort`, when the call's deadline passes). */
  signal: CallSignal;
  /**
   * Aborts `signal`; given, the router aborts it at the call's deadline rather than creating a
   * second signal (see `RouteCallInput.abort`). The HTTP layer passes it; callers that share one
   * signal across calls must not.
   */
  abort?: (reason: SeedError) => void;
}

/** What the service tells the HTTP layer about a finished (or started) call. */
export interface CallMeta {
  requestId: string;
  clientRequestId: string | null;
  route: string;
  deployment: string | null;
  attempts: number;
  warnings: string[];
  /** Extra response headers (the caller's `x-ratelimit-*`). */
  headers: Record<string, string>;
}

export interface ChatCallResult {
  meta: CallMeta;
  response: ChatCompletion;
}

export interface ChatStreamCall {
  meta: CallMeta;
  /**
   * Chunks for the client, in batches (one per upstream read, never empty), each parsed or a
   * plain content chunk still in the upstream's text (src/wire/stream-chunk.ts). Errors after
   * the first batch surface here as SeedErrors.
   */
  chunks: AsyncIterable<readonly StreamChunk[]>;
  /**
   * Whether the stream has ended, recorded, and what is left is the wait for the record to be
   * durable before the end leaves (see `CallSink`).
   */
  ended(): boolean;
}

export interface EmbeddingCallResult {
  meta: CallMeta;
  response: EmbeddingResponse;
}

/** A call admitted: its route, its capacity, and when its deadline passes (epoch ms). */
interface Admitted {
  readonly route: Route;
  readonly ticket: AdmissionTicket;
  readonly deadlineAt: number;
}

export interface CallServiceDependencies {
  router: Router;
  routes: { get(name: string): Route | undefined };
  adapterFor: (deployment: Deployment) => ProviderAdapter;
  admission: Admission;
  sink: CallSink;
  price: (input: { deployment: Deployment; promptTokens: number; completionTokens: number; cachedTokens: number }) => number;
  /** Why a deployment may not serve this purpose or caller, or null. */
  exclude: (input: { deployment: Deployment; route: Route; purpose: Purpose; caller: Caller }) => SeedError | null;
  /** Applied to request/response payloads before they are stored (opted-in keys only). */
  redact?: Redact;
  /** Version of a deployment's terms profile, for the record. */
  termsVersion: (deployment: Deployment) => string | null;
  now: () => number;
}

/**
 * Whether the call's signal says the client went away. With `CallInput.abort` the same signal
 * also aborts when the client is still there to be told why: at the deadline (a
 * deadline_exceeded SeedError) and when a shutting-down gateway's drain ends (shutting_down);
 * any other reason counts as the client leaving.
 */
export function clientLeft(signal: CallSignal): boolean {
  if (!signal.aborted) return false;
  const reason: unknown = signal.reason;
  return !(reason instanceof SeedError && SERVER_ABORTS.has(reason.code));
}

/** Why the gateway itself may abort a call whose client is still there. */
const SERVER_ABORTS: ReadonlySet<string> = new Set(['deadline_exceeded', 'shutting_down']);

export class CallFailure extends Error {
  readonly error: SeedError;
  readonly meta: CallMeta;

  constructor(error: SeedError, meta: CallMeta) {
    super(error.message);
    this.name = 'CallFailure';
    this.error = error;
    this.meta = meta;
  }
}

export function createCallService(dependencies: CallServiceDependencies) {
  const { router, adapterFor, admission, sink, now } = dependencies;
  const redact: Redact = dependencies.redact ?? ((payload) => payload);
  // Payloads are stored only for keys (or teams) that opted in, and a request may still opt out
  // with OpenAI's own `store: false`.
  const storesPayload = (input: CallInput<ChatCompletionRequest>) => input.caller.storePayloads && input.body.store !== false;

  function baseRecord(input: CallInput<ChatCompletionRequest | EmbeddingRequest>, endpoint: CallEndpoint, startedAt: number): CallRecord {
    const metadata = 'metadata' in input.body && input.body.metadata ? (input.body.metadata as Record<string, string>) : null;
    return {
      id: input.requestId,
      clientRequestId: input.clientRequestId,
      startedAt,
      endpoint,
      route: input.body.model,
      servedRoute: null,
      deployment: null,
      provider: null,
      model: null,
      region: null,
      purpose: input.purpose,
      termsProfile: null,
      termsVersion: null,
      orgId: input.caller.orgId,
      teamId: input.caller.teamId,
      keyId: input.caller.keyId,
      status: 'ok',
      httpStatus: 200,
      errorCode: null,
      stream: endpoint === 'chat.completions' && (input.body as ChatCompletionRequest).stream === true,
      attempts: 0,
      promptTokens: 0,
      completionTokens: 0,
      cachedTokens: 0,
      usageReported: false,
      costUsd: 0,
      latencyMs: 0,
      ttftMs: null,
      metadata: input.caller.storePayloads ? metadata : null,
      payload: null,
    };
  }

  function withDeployment(record: CallRecord, route: Route | undefined, deployment: Deployment | undefined, attempts: number): void {
    record.attempts = attempts;
    if (route) record.servedRoute = route.name;
    if (deployment) {
      record.deployment = deployment.name;
      record.provider = deployment.provider;
      record.model = deployment.model;
      record.region = deployment.region;
      record.termsProfile = deployment.terms ?? null;
      record.termsVersion = dependencies.termsVersion(deployment);
    }
  }

  function finishUsage(record: CallRecord, deployment: Deployment | undefined, usage: Omit<Usage, 'costUsd'>, reported: boolean): Usage {
    record.promptTokens = usage.promptTokens;
    record.completionTokens = usage.completionTokens;
    record.cachedTokens = usage.cachedTokens;
    record.usageReported = reported;
    record.costUsd = deployment ? dependencies.price({ deployment, ...usage }) : 0;
    // Not `{ ...usage, costUsd }`: in Node 20 a key added to a spread copy costs about 1 µs.
    return { promptTokens: usage.promptTokens, completionTokens: usage.completionTokens, cachedTokens: usage.cachedTokens, costUsd: record.costUsd };
  }

  function fail(record: CallRecord, error: SeedError, ticket: AdmissionTicket | undefined): Promise<never> {
    record.status = error.code === 'client_closed_request' ? 'aborted' : 'error';
    record.httpStatus = error.status;
    record.errorCode = error.code;
    record.latencyMs = now() - record.startedAt;
    ticket?.release();
    const durable = sink.record(record);
    const failure = new CallFailure(error, {
      requestId: record.id,
      clientRequestId: record.clientRequestId,
      route: record.route,
      deployment: record.deployment,
      attempts: record.attempts,
      warnings: [],
      headers: {},
    });
    return throwWhenDurable(durable, failure);
  }

  /**
   * The call's route and its admission; thrown as a recorded failure when either refuses.
   * Without a promise when admission answered in this turn (limits in memory, nothing to wait for).
   */
  function admit(
    input: CallInput<ChatCompletionRequest | EmbeddingRequest>,
    endpoint: CallEndpoint,
    record: CallRecord,
  ): Admitted | Promise<Admitted> {
    const route = dependencies.routes.get(input.body.model);
    if (!route || (input.caller.allowedRoutes && !input.caller.allowedRoutes.has(route.name))) {
      const error = new SeedError(
        'model_not_found',
        `The model \`${input.body.model}\` does not exist or you do not have access to it.`,
        { param: 'model' },
      );
      return fail(record, error, undefined);
    }
    const deadlineAt = record.startedAt + route.timeoutMs;
    let admitting: AdmissionTicket | Promise<AdmissionTicket>;
    try {
      admitting = admission.admit({
        caller: input.caller,
        route,
        endpoint,
        body: input.body,
        purpose: input.purpose,
        priority: input.priority,
        deadlineAt,
        signal: input.signal,
      });
    } catch (error) {
      return fail(record, toSeedError(error), undefined);
    }
    if (admitting instanceof Promise) {
      return admitting.then(
        (ticket) => ({ route, ticket, deadlineAt }),
        (error: unknown) => fail(record, toSeedError(error), undefined),
      );
    }
    return { route, ticket: admitting, deadlineAt };
  }

  /**
   * The part every call shares: record, admission, routing across deployments (reserving each
   * attempt's deployment quota), and the failure path. `operation` is one upstream attempt.
   */
  async function routed<T extends { upstream: { rateLimit: UpstreamQuota } }>(
    input: CallInput<ChatCompletionRequest | EmbeddingRequest>,
    endpoint: CallEndpoint,
    stream: boolean,
    operation: (adapter: ProviderAdapter, context: CallContext) => Promise<T>,
  ) {
    const startedAt = now();
    const record = baseRecord(input, endpoint, startedAt);
    record.stream = stream;
    const admitting = admit(input, endpoint, record);
    const { ticket, deadlineAt } = admitting instanceof Promise ? await admitting : admitting;
    const result = await router.route({
      routeName: input.body.model,
      signal: input.signal,
      abort: input.abort,
      deadlineAt,
      // Batch work waits out upstream retry-after as long as its deadline allows. (A value, not a
      // conditional spread: keys after a spread in a literal take Node 20's slow path.)
      maxWaitMs: input.priority === 'batch' ? Number.POSITIVE_INFINITY : undefined,
      tokens: ticket.estimatedTokens === undefined ? undefined : () => ticket.estimatedTokens?.() ?? 0,
      exclude: (deployment: Deployment, route: Route) =>
        dependencies.exclude({ deployment, route, purpose: input.purpose, caller: input.caller }),
      run: async (attempt) => {
        const reserving = ticket.reserveDeployment?.(attempt.deployment);
        if (reserving !== undefined) await reserving;
        const value = await operation(adapterFor(attempt.deployment), {
          deployment: attempt.deployment,
          signal: attempt.signal,
          timeoutMs: attempt.timeoutMs,
          requestId: input.requestId,
        });
        return { value, quota: value.upstream.rateLimit };
      },
    });
    withDeployment(record, result.route, result.deployment, result.attempts);
    if (!result.ok) return fail(record, result.error, ticket);
    const meta = (warnings: string[]): CallMeta => ({
      requestId: input.requestId,
      clientRequestId: input.clientRequestId,
      route: input.body.model,
      deployment: result.deployment.name,
      attempts: result.attempts,
      warnings,
      headers: ticket.headers?.() ?? {},
    });
    return { startedAt, record, ticket, deployment: result.deployment, value: result.value, meta };
  }

  async function chat(input: CallInput<ChatCompletionRequest>): Promise<ChatCallResult> {
    const call = await routed(input, 'chat.completions', false, (adapter, context) => adapter.chat(input.body, context));
    const { response, warnings } = call.value;
    const usage = finishUsage(
      call.record,
      call.deployment,
      response.usage ? reportedUsage(response.usage) : { promptTokens: 0, completionTokens: 0, cachedTokens: 0 },
      response.usage !== undefined,
    );
    call.ticket.settle(usage);
    call.record.latencyMs = now() - call.startedAt;
    if (storesPayload(input)) call.record.payload = redact({ request: input.body, response });
    const durable = sink.record(call.record);
    if (durable instanceof Promise) await durable;
    return { meta: call.meta(warnings), response };
  }

  async function streamChat(input: CallInput<ChatCompletionRequest>): Promise<ChatStreamCall> {
    // The first chunk is pulled inside the attempt: until a byte reaches the client, a failure
    // may still be retried or fall back; after it, the stream is committed to this deployment.
    const call = await routed(input, 'chat.completions', true, async (adapter, context) => {
      const outcome = await adapter.streamChat(input.body, context);
      const iterator = outcome.chunks[Symbol.asyncIterator]();
      const first = await iterator.next();
      return { iterator, first, warnings: outcome.warnings, upstream: outcome.upstream };
    });
    call.record.ttftMs = now() - call.startedAt;
    const { iterator, first, warnings } = call.value;
    const relay = new RelayedStream({
      source: iterator,
      first,
      signal: input.signal,
      includeUsage: input.body.stream_options?.include_usage === true,
      collected: storesPayload(input) ? [] : null,
      settle: (usage, completionChars, outcome) => {
        const { record } = call;
        // Without upstream usage (aborted, failed, or a server that sends none), settle on
        // what was streamed: Seed's estimate, marked as such in the record.
        const settled = finishUsage(
          record,
          call.deployment,
          usage ?? { promptTokens: 0, completionTokens: Math.ceil(completionChars / 4), cachedTokens: 0 },
          usage !== null,
        );
        call.ticket.settle(settled);
        record.latencyMs = now() - call.startedAt;
        if (outcome) {
          record.status = outcome.code === 'client_closed_request' ? 'aborted' : 'error';
          record.httpStatus = outcome.status;
          record.errorCode = outcome.code;
        }
        if (relay.collected) record.payload = redact({ request: input.body, response: relay.collected });
        return sink.record(record);
      },
    });
    return { meta: call.meta(warnings), chunks: relay, ended: () => relay.ended };
  }

  async function embed(input: CallInput<EmbeddingRequest>): Promise<EmbeddingCallResult> {
    const call = await routed(input, 'embeddings', false, (adapter, context) => adapter.embed(input.body, context));
    const { response, warnings } = call.value;
    const usage = { promptTokens: response.usage.prompt_tokens, completionTokens: 0, cachedTokens: 0 };
    call.ticket.settle(finishUsage(call.record, call.deployment, usage, true));
    call.record.latencyMs = now() - call.startedAt;
    const durable = sink.record(call.record);
    if (durable instanceof Promise) await durable;
    return { meta: call.meta(warnings), response };
  }

  return { chat, streamChat, embed };
}

const STREAM_DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * Throws `error` once the call's record is durable (`durable`, from `CallSink.record`), at once
 * when it already is: a failure is an answer too, and leaves only after its record.
 */
function throwWhenDurable(durable: void | Promise<void>, error: unknown): Promise<never> {
  if (durable instanceof Promise) return durable.then(() => Promise.reject(error));
  throw error;
}

/**
 * The chunks of a streamed call on their way to the client: counts what the estimate needs,
 * keeps the usage the upstream reports (and the client sees only if it asked), and settles the
 * call exactly once, when the stream ends, fails, or is left by its consumer (`return`). A
 * plain iterator rather than an async generator: one promise per batch, the upstream's own.
 */
class RelayedStream implements AsyncIterableIterator<StreamChunk[]> {
  readonly collected: ChatCompletionChunk[] | null;
  private first: IteratorResult<readonly StreamChunk[]> | null;
  private usage: ReportedUsage | null = null;
  private completionChars = 0;
  private settled = false;
  private readonly onStep = (step: IteratorResult<readonly StreamChunk[]>) => this.forward(step);
  private readonly onError = (error: unknown) => this.fail(error);

  constructor(
    private readonly input: {
      source: AsyncIterator<readonly StreamChunk[]>;
      /** The first step, pulled inside the routed attempt (until a byte leaves, a failure may fall back). */
      first: IteratorResult<readonly StreamChunk[]>;
      signal: CallSignal;
      includeUsage: boolean;
      /** Every chunk parsed, when the payload is stored; else null. */
      collected: ChatCompletionChunk[] | null;
      /** Records the call; a promise says the end of the stream must wait for it (see `CallSink`). */
      settle: (usage: ReportedUsage | null, completionChars: number, outcome: SeedError | null) => void | Promise<void>;
    },
  ) {
    this.first = input.first;
    this.collected = input.collected;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Whether the call is settled and recorded: no chunk is left to come. */
  get ended(): boolean {
    return this.settled;
  }

  next(): Promise<IteratorResult<StreamChunk[]>> {
    if (this.settled) return Promise.resolve(STREAM_DONE);
    const first = this.first;
    if (first !== null) {
      this.first = null;
      try {
        const step = this.forward(first);
        return step instanceof Promise ? step : Promise.resolve(step);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.input.source.next().then(this.onStep, this.onError);
  }

  async return(): Promise<IteratorResult<StreamChunk[]>> {
    if (this.settled) return STREAM_DONE;
    let durable: void | Promise<void>;
    try {
      await this.input.source.return?.();
    } finally {
      durable = this.settle(null);
    }
    if (durable instanceof Promise) await durable;
    return STREAM_DONE;
  }

  /** The client's part of one upstream batch; a batch with nothing for the client pulls the next. */
  private forward(step: IteratorResult<readonly StreamChunk[]>): IteratorResult<StreamChunk[]> | Promise<IteratorResult<StreamChunk[]>> {
    if (step.done) {
      // The end of the stream (`[DONE]`) leaves once the record is durable.
      const durable = this.settle(null);
      return durable instanceof Promise ? durable.then(() => STREAM_DONE) : STREAM_DONE;
    }
    const { includeUsage } = this.input;
    const collected = this.collected;
    const forClient: StreamChunk[] = [];
    for (const chunk of step.value) {
      // Plain content chunks carry no usage (the adapter vouched) and nothing else the gateway
      // reads: they go out as they came, counted for the estimate, and parsed only to be stored.
      if (chunk instanceof PlainChunks) {
        this.completionChars += chunk.completionChars;
        if (collected) collected.push(...chunk.parse());
        forClient.push(chunk);
        continue;
      }
      // A usage chunk as the upstream's bytes, its counts read (the adapter vouched): it has no
      // choices, so the client gets it only if it asked for usage.
      if (chunk instanceof UsageChunk) {
        this.usage = chunk.usage;
        if (collected) collected.push(chunk.parse());
        if (includeUsage) forClient.push(chunk);
        continue;
      }
      if (chunk.usage) this.usage = reportedUsage(chunk.usage);
      this.completionChars += chunkCompletionChars(chunk);
      collected?.push(chunk);
      // Seed always asks the upstream for usage; the client sees it only if it asked too.
      const usageOnly = chunk.choices.length === 0 && chunk.usage;
      if (includeUsage || !usageOnly) forClient.push(includeUsage || !chunk.usage ? chunk : { ...chunk, usage: undefined });
    }
    if (forClient.length > 0) return { done: false, value: forClient };
    return this.input.source.next().then(this.onStep, this.onError);
  }

  private fail(error: unknown): Promise<never> {
    const outcome = clientLeft(this.input.signal) ? new SeedError('client_closed_request', 'The client closed the stream.') : toSeedError(error);
    return throwWhenDurable(this.settle(outcome), outcome);
  }

  /**
   * Settles and records the call, once; a stream the client left is recorded as aborted. A
   * promise returned is the record's way to durable: what ends the stream waits for it.
   */
  private settle(outcome: SeedError | null): void | Promise<void> {
    if (this.settled) return;
    this.settled = true;
    if (!outcome && clientLeft(this.input.signal)) outcome = new SeedError('client_closed_request', 'The client closed the stream.');
    return this.input.settle(this.usage, this.completionChars, outcome);
  }
}

export type CallService = ReturnType<typeof createCallService>;
