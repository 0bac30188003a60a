/**
 * Turns anything thrown while handling a request into an OpenAI-format error response. Fastify's
 * own failures (unparseable JSON, oversized bodies) get their Seed code here, so no input can
 * reach the client as a 5xx unless Seed itself failed.
 */
import type { ZodError } from 'zod';
import { SeedError, toSeedError } from '../../errors.ts';

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message?: string;
}

export function httpError(thrown: unknown): SeedError {
  if (thrown instanceof SeedError) return thrown;
  const error = (thrown ?? {}) as FastifyLikeError;
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new SeedError('body_too_large', 'The request body is larger than this gateway accepts.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new SeedError('invalid_json', 'The request body is empty; send a JSON object.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new SeedError('unsupported_media_type', 'Send the request body as application/json.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new SeedError('invalid_request', 'The Content-Length header does not match the body.');
    default:
      break;
  }
  if (thrown instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new SeedError('invalid_json', `The request body is not valid JSON: ${error.message ?? 'parse error'}.`);
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    if (error.statusCode === 413) return new SeedError('body_too_large', 'The request body is larger than this gateway accepts.');
    if (error.statusCode === 415) return new SeedError('unsupported_media_type', 'Send the request body as application/json.');
    return new SeedError('invalid_request', error.message ?? 'The request is invalid.');
  }
  return toSeedError(thrown);
}

/** `messages[0].content` style path, as OpenAI writes `param`. */
export function paramPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out;
}

/** The first validation problem of a request body, as a 400 naming the parameter. */
export function validationError(error: ZodError): SeedError {
  const issue = error.issues[0];
  if (!issue) return new SeedError('invalid_request', 'The request body is invalid.');
  const param = paramPath(issue.path);
  let message = issue.message;
  if (issue.code === 'invalid_type') {
    message = issue.input === undefined ? `Missing required parameter: '${param}'.` : `Invalid type for '${param}': ${issue.message.replace(/^Invalid input: /, '')}.`;
  } else if (issue.code === 'invalid_union' && issue.path.at(-1) === 'role') {
    message = `Invalid value for '${param}': expected one of system, developer, user, assistant, tool.`;
  } else {
    message = `Invalid value for '${param}': ${issue.message.replace(/^Invalid input: /, '')}.`;
  }
  return new SeedError('invalid_request', message, { param: param || null });
}
