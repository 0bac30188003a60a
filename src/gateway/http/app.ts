/**
 * The OpenAI-compatible HTTP surface: parse and validate at the edge, hand the call to the
 * call service, write JSON or SSE back. Every error leaves as an OpenAI-format body with its
 * one status; no input produces a 5xx.
 */
import type { z } from 'zod';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { SeedError } from '../../errors.ts';
import { chatCompletionRequestSchema, embeddingRequestSchema } from '../../wire/openai.ts';
import { isPlainChatRequest } from '../../wire/chat-request-check.ts';
import { parsePurpose } from '../../terms/purpose.ts';
import type { CallInput, CallMeta, CallService } from '../calls.ts';
import { CallFailure } from '../calls.ts';
import type { Authenticate, Caller, Priority } from '../hooks.ts';
import { assertBodyDepth } from './body-depth.ts';
import { frameworkErrorHandler, handleClientError } from './client-errors.ts';
import { httpError, validationError } from './errors.ts';
import { parseJsonBody } from './json-body.ts';
import { writeEventStream } from './sse.ts';
import { toJsonText } from '../../wire/json-text.ts';
import { CallAbort, type CallSignal } from '../../abort.ts';
import { newCallId } from '../../ledger/call-id.ts';
import { CallDrain } from './drain.ts';

export interface GatewayAppOptions {
  calls: CallService;
  authenticate: Authenticate;
  bodyLimitBytes: number;
  headersTimeoutMs: number;
  /** Routes listed by GET /v1/models for a caller. */
  listModels: (caller: Caller) => Array<{ id: string; created: number; owned_by: string }>;
  /** Prometheus text exposition. */
  metricsText: () => Promise<string>;
  /** Counts every error response by code (metrics). */
  onError?: (error: SeedError) => void;
  /** Extra routes (admin API, usage) registered by other modules. */
  plugins?: Array<(app: FastifyInstance) => void | Promise<void>>;
  log?: (level: 'error' | 'warn', message: string, detail?: unknown) => void;
  /** Tracks the calls in flight for a graceful shutdown (drain.ts); one of its own if not given. */
  drain?: CallDrain;
}

/** What a client's own request id may be: it is stored in the ledger and echoed in a header. */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The client's own id for the request: `x-client-request-id` (OpenAI's header for it) or,
 * failing that, an incoming `x-request-id` (what proxies and tracing set). Stored with the call
 * and echoed as `x-client-request-id`; one that is not 1–128 of `A-Za-z0-9._:-` is ignored.
 */
function clientRequestIdOf(request: FastifyRequest): string | null {
  const headers = request.headers;
  const given = headers['x-client-request-id'] ?? headers['x-request-id'];
  return typeof given === 'string' && CLIENT_REQUEST_ID.test(given) ? given : null;
}

/** `x-request-id`, and `x-client-request-id` when the client sent a usable one. */
function idHeaders(request: FastifyRequest): Record<string, string> {
  const clientRequestId = clientRequestIdOf(request);
  return clientRequestId === null ? { 'x-request-id': request.id } : { 'x-request-id': request.id, 'x-client-request-id': clientRequestId };
}

function priorityOf(request: FastifyRequest): Priority {
  const value = request.headers['x-seed-priority'];
  if (value === undefined) return 'interactive';
  if (value === 'batch' || value === 'interactive') return value;
  throw new SeedError('invalid_request', "x-seed-priority must be 'interactive' or 'batch'.", { param: 'x-seed-priority' });
}

const HEADER_UNSAFE = /[^\x20-\x7e]/;
const HEADER_UNSAFE_ALL = /[^\x20-\x7e]/g;

/** `text` as a header value: printable ASCII only, at most 1 000 characters. */
function headerSafe(text: string): string {
  const bounded = text.length > 1_000 ? text.slice(0, 1_000) : text;
  // Tested before replacing: almost every value is already safe, and this runs on every response.
  return HEADER_UNSAFE.test(bounded) ? bounded.replace(HEADER_UNSAFE_ALL, '?') : bounded;
}

/** The x-seed-* headers and the caller's x-ratelimit-* headers of a call's response. */
function metaHeaders(meta: CallMeta): Record<string, string> {
  const headers: Record<string, string> = {
    'x-request-id': meta.requestId,
    // The route is the client's `model`, any string; raw, a character Node refuses in a
    // header turned a 404 model_not_found into a 500.
    'x-seed-route': headerSafe(meta.route),
    'x-seed-attempts': String(meta.attempts),
  };
  if (meta.deployment) headers['x-seed-deployment'] = meta.deployment;
  if (meta.clientRequestId !== null) headers['x-client-request-id'] = meta.clientRequestId;
  if (meta.warnings.length > 0) headers['x-seed-warnings'] = headerSafe(meta.warnings.join('; '));
  // Assigned rather than spread into the literal above, and unsafe characters tested before any
  // replace: the spread-and-replace version took 6.6–8.4 µs per response (1.5% of the gateway's
  // CPU in a profile), this one 0.2–0.25 µs. The rate-limit names never collide with these.
  for (const name in meta.headers) headers[name] = meta.headers[name] as string;
  return headers;
}

/**
 * The call's signal: aborted when the client goes away before the response is complete, and by
 * the router when the call's deadline passes (through `abort`; one signal per call). The
 * response's 'close' is enough to see the client leave: it fires when the connection drops at
 * any point after the body was read (the handler runs only then).
 */
function callSignal(reply: FastifyReply, drain: CallDrain): { signal: CallSignal; abort: (reason: SeedError) => void } {
  // Not an AbortController: see src/abort.ts (about 4 µs per call in Node 20).
  const call = new CallAbort();
  const abort = (reason: SeedError) => call.abort(reason);
  // In flight until its response closes: a shutdown waits for it, or ends it (drain.ts).
  const slot = drain.add(abort);
  reply.raw.once('close', () => {
    drain.delete(slot);
    if (!reply.raw.writableFinished) call.abort(new SeedError('client_closed_request', 'The client closed the request.'));
  });
  return { signal: call, abort };
}

export async function createGatewayApp(options: GatewayAppOptions): Promise<FastifyInstance> {
  const drain = options.drain ?? new CallDrain();
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimitBytes,
    // A slow or silent client must not hold a socket forever (slowloris).
    connectionTimeout: 0,
    requestTimeout: options.headersTimeoutMs * 2,
    keepAliveTimeout: 65_000,
    // A request that reaches a closing server on a connection it already had is served, with
    // `Connection: close` (Fastify adds it while closing), rather than refused: drain.ts.
    return503OnClosing: false,
    // `request.id` is the call id: unique and time-ordered (ledger/call-id.ts), the ledger's
    // key, and the response's `x-request-id`, as OpenAI returns its own. A client's id is kept
    // apart (`clientRequestIdOf`).
    genReqId: () => newCallId(),
    // Node checks header and request timeouts only this often (30 s by default), so a
    // slowloris client outlived a 1 s headersTimeoutMs by half a minute.
    http: { connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(options.headersTimeoutMs / 4))) },
    clientErrorHandler: handleClientError,
    frameworkErrors: frameworkErrorHandler(idHeaders),
  });
  app.server.headersTimeout = options.headersTimeoutMs;
  // Before validation, so no handler, schema or serializer ever walks a pathologically deep body.
  // A callback hook, not an async one: Fastify chains an async hook's promise on every request.
  app.addHook('preValidation', (request, _reply, done) => {
    try {
      assertBodyDepth(request.body);
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  });

  // Every body is read as JSON whatever its content type (curl -d sends a form type, some SDKs
  // none, some text/plain), by one parser, so the same bytes get the same answer.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    try {
      done(null, parseJsonBody(request.headers['content-encoding'], typeof body === 'string' ? body : body.toString('utf8')));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  app.setErrorHandler((thrown, request, reply) => {
    const error = httpError(thrown);
    if (error.code === 'internal_error' || error.code === 'store_unavailable') options.log?.('error', 'request failed', { url: request.url, error: thrown });
    options.onError?.(error);
    reply
      .status(error.status)
      .headers({ ...idHeaders(request), ...error.responseHeaders() })
      .send(error.toBody());
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new SeedError('not_found', `Unknown endpoint: ${request.method} ${request.url.split('?')[0]}.`);
    options.onError?.(error);
    reply.status(404).headers(idHeaders(request)).send(error.toBody());
  });

  const failed = (reply: FastifyReply, thrown: unknown) => {
    if (thrown instanceof CallFailure) {
      options.onError?.(thrown.error);
      if (reply.raw.headersSent || reply.raw.destroyed) return reply;
      return reply
        .status(thrown.error.status)
        .headers({ ...metaHeaders(thrown.meta), ...thrown.error.responseHeaders() })
        .send(thrown.error.toBody());
    }
    throw thrown;
  };

  /**
   * Authentication, body validation and the x-seed-* headers: the same for every call endpoint.
   * `isPlain`, where given, says yes only to bodies `schema` accepts and would copy unchanged.
   */
  function callInput<Body>(
    request: FastifyRequest,
    reply: FastifyReply,
    schema: z.ZodType<Body>,
    isPlain?: (body: unknown) => body is Body,
  ): CallInput<Body> | Promise<CallInput<Body>> {
    const clientRequestId = clientRequestIdOf(request);
    // A cached key answers without a promise: no await, no suspended frame (src/tenants/authenticator.ts).
    const authenticated = options.authenticate(request.headers);
    if (authenticated instanceof Promise) {
      return authenticated.then((caller) => authenticatedInput(request, reply, caller, clientRequestId, schema, isPlain));
    }
    return authenticatedInput(request, reply, authenticated, clientRequestId, schema, isPlain);
  }

  function authenticatedInput<Body>(
    request: FastifyRequest,
    reply: FastifyReply,
    caller: Caller,
    clientRequestId: string | null,
    schema: z.ZodType<Body>,
    isPlain?: (body: unknown) => body is Body,
  ): CallInput<Body> {
    let body: Body;
    // zod's copy of a common body equals the body and was garbage on every call (chat-request-check.ts).
    if (isPlain?.(request.body)) body = request.body;
    else {
      const parsed = schema.safeParse(request.body);
      if (!parsed.success) throw validationError(parsed.error, request.body);
      body = parsed.data;
    }
    const { signal, abort } = callSignal(reply, drain);
    return {
      body,
      caller,
      purpose: parsePurpose(request.headers['x-seed-purpose']),
      priority: priorityOf(request),
      requestId: request.id,
      clientRequestId,
      signal,
      abort,
    };
  }

  app.post('/v1/chat/completions', async (request, reply) => {
    const pending = callInput(request, reply, chatCompletionRequestSchema, isPlainChatRequest);
    const input = pending instanceof Promise ? await pending : pending;
    try {
      if (input.body.stream === true) {
        const call = await options.calls.streamChat(input);
        reply.hijack();
        await writeEventStream({
          response: reply.raw,
          headers: metaHeaders(call.meta),
          chunks: call.chunks,
          ended: call.ended,
          signal: input.signal,
          // A reader that stops reading is given as long as a client that stops sending.
          stallTimeoutMs: options.headersTimeoutMs,
        });
        return reply;
      }
      const result = await options.calls.chat(input);
      // A response relayed unchanged leaves as the upstream's own text (json-text.ts).
      return reply
        .headers(metaHeaders(result.meta))
        .header('content-type', 'application/json; charset=utf-8')
        .send(toJsonText(result.response));
    } catch (thrown) {
      return failed(reply, thrown);
    }
  });

  app.post('/v1/embeddings', async (request, reply) => {
    const input = await callInput(request, reply, embeddingRequestSchema);
    try {
      const result = await options.calls.embed(input);
      return reply.headers(metaHeaders(result.meta)).send(result.response);
    } catch (thrown) {
      return failed(reply, thrown);
    }
  });

  app.get('/v1/models', async (request, reply) => {
    const caller = await options.authenticate(request.headers);
    return reply.send({ object: 'list', data: options.listModels(caller).map((model) => ({ object: 'model', ...model })) });
  });

  // While draining, a load balancer's check learns to send no more traffic here.
  app.get('/healthz', async (_request, reply) => (drain.draining ? reply.status(503).send({ status: 'draining' }) : reply.send({ status: 'ok' })));

  app.get('/metrics', async (_request, reply) =>
    reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').send(await options.metricsText()),
  );

  for (const plugin of options.plugins ?? []) await plugin(app);
  return app;
}
