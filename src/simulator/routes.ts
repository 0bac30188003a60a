/**
 * Routing of one request: which provider surface a path belongs to, its method and header
 * checks, reading the JSON body, and the control API under `/_sim/`. Every failure is
 * answered in the format of the provider the path imitates.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { anthropicDialect, checkAnthropicRequest } from './anthropic-dialect.ts';
import { handleMessages } from './anthropic-messages.ts';
import { azureDialect, checkAzureRequest } from './azure.ts';
import type { SimulatorContext } from './context.ts';
import { sendError, type Dialect } from './dialect.ts';
import { Exchange } from './exchange.ts';
import { InvalidRequest } from './fields.ts';
import { readOverrides } from './model-call.ts';
import { handleChatCompletion } from './openai-chat.ts';
import { openaiDialect } from './openai-dialect.ts';
import { handleEmbeddings, handleModels } from './openai-embeddings.ts';
import { faultRuleSchema } from './options.ts';

const azurePath = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/;

function decodeDeployment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new InvalidRequest({ status: 404, message: `Deployment '${segment}' is not a valid path segment.` });
  }
}

/** Reads the body as text, refusing more than `limit` bytes with a 413. */
function readBody(input: { request: IncomingMessage; limit: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    input.request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > input.limit) {
        reject(new InvalidRequest({ status: 413, message: `The request body exceeds ${input.limit} bytes.` }));
        input.request.removeAllListeners('data');
        input.request.resume();
        return;
      }
      chunks.push(chunk);
    });
    input.request.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer).toString() : Buffer.concat(chunks).toString()));
    input.request.once('error', reject);
  });
}

async function readJson(input: { request: IncomingMessage; limit: number }): Promise<unknown> {
  const text = await readBody(input);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InvalidRequest({
      message:
        'We could not parse the JSON body of your request. The API expects a JSON payload, but what was sent was not valid JSON.',
    });
  }
}

const setFaultsSchema = z.object({ model: z.string().min(1).optional(), faults: z.array(faultRuleSchema) }).strict();

async function handleControl(input: {
  context: SimulatorContext;
  exchange: Exchange;
  request: IncomingMessage;
  path: string;
  openConnections: () => number;
  reset: () => void;
}): Promise<void> {
  const { context, exchange, request, path } = input;
  const json = (body: unknown) => exchange.send({ status: 200, body: JSON.stringify(body) });
  const route = `${request.method ?? 'GET'} ${path}`;
  switch (route) {
    case 'GET /_sim/stats':
      // The connection asking is open by definition; leave it out so a quiet simulator reads 0.
      return json(context.stats.snapshot({ openConnections: Math.max(0, input.openConnections() - 1) }));
    case 'GET /_sim/faults':
      return json({ faults: context.faults.snapshot() });
    case 'POST /_sim/faults': {
      const parsed = setFaultsSchema.safeParse(await readJson({ request, limit: context.options.maxBodyBytes }));
      if (!parsed.success) throw new InvalidRequest({ message: z.prettifyError(parsed.error) });
      context.faults.set(parsed.data);
      return json({ faults: context.faults.snapshot() });
    }
    case 'DELETE /_sim/faults':
      context.faults.clear();
      return json({ faults: {} });
    case 'POST /_sim/reset':
      input.reset();
      return json({ ok: true });
    default:
      throw new InvalidRequest({ status: 404, message: `Invalid URL (${route})` });
  }
}

/** Handles one request; never throws. */
export async function dispatch(input: {
  context: SimulatorContext;
  request: IncomingMessage;
  response: ServerResponse;
  openConnections: () => number;
  reset: () => void;
}): Promise<void> {
  const { context, request, response } = input;
  const raw = request.url ?? '/';
  const queryAt = raw.indexOf('?');
  const path = queryAt === -1 ? raw : raw.slice(0, queryAt);
  const method = request.method ?? 'GET';
  const control = path.startsWith('/_sim/');
  const requestId = `req_${context.nextId()}`;
  const exchange = new Exchange({ request, response, requestId, stats: context.stats, counted: !control });
  const azure = azurePath.exec(path);
  const dialect: Dialect = azure !== null ? azureDialect : path === '/v1/messages' ? anthropicDialect : openaiDialect;
  if (dialect === anthropicDialect) exchange.setHeader('request-id', requestId);
  const known = azure !== null || ['/v1/chat/completions', '/v1/embeddings', '/v1/models', '/v1/messages'].includes(path);
  if (!control) context.stats.requestStarted(known ? path : 'unknown');
  try {
    if (control) return await handleControl({ ...input, exchange, path });
    if (!known) throw new InvalidRequest({ status: 404, message: `Invalid URL (${method} ${path})` });
    const expected = path === '/v1/models' ? 'GET' : 'POST';
    if (method !== expected) throw new InvalidRequest({ status: 405, message: `Invalid method for URL (${method} ${path})` });
    if (path === '/v1/models') return handleModels({ context, exchange });
    const refusal =
      azure !== null
        ? checkAzureRequest({ url: new URL(raw, 'http://simulator'), headers: request.headers })
        : dialect === anthropicDialect
          ? checkAnthropicRequest(request.headers)
          : undefined;
    if (refusal !== undefined) return sendError({ exchange, dialect, error: refusal });
    const overrides = readOverrides(request.headers);
    const body = await readJson({ request, limit: context.options.maxBodyBytes });
    const call = { context, exchange, dialect, overrides, body };
    if (azure !== null) {
      const deployment = decodeDeployment(azure[1] as string);
      if (azure[2] === 'embeddings') return await handleEmbeddings({ ...call, deployment });
      return await handleChatCompletion({ ...call, deployment });
    }
    if (path === '/v1/chat/completions') return await handleChatCompletion(call);
    if (path === '/v1/embeddings') return await handleEmbeddings(call);
    return await handleMessages(call);
  } catch (error) {
    if (exchange.closed || response.headersSent) return;
    if (error instanceof InvalidRequest) {
      sendError({ exchange, dialect, error: { status: error.status, message: error.message, param: error.param } });
      return;
    }
    // A bug in the simulator: answer like a provider's internal error rather than crash the process.
    sendError({ exchange, dialect, error: { status: 500, message: `Simulator error: ${String(error)}` } });
  }
}
