/**
 * The gateway's one request-body parser: JSON, whatever the content type says. Malformed JSON
 * keeps JSON.parse's own message (where it broke); keys that would set an object's prototype
 * (`__proto__`, `constructor.prototype`) are refused, as Fastify's own JSON parser refuses them,
 * so that no code that copies a body can be handed a prototype. A compressed body is refused
 * with its reason rather than read as broken JSON.
 */
import secureJson from 'secure-json-parse';
import { SeedError } from '../../errors.ts';

const FORBIDDEN_KEYS = { protoAction: 'error', constructorAction: 'error' } as const;
/** secure-json-parse's message for a forbidden key; any other SyntaxError is JSON.parse's. */
const FORBIDDEN_KEY_MESSAGE = 'Object contains forbidden prototype property';

export function parseJsonBody(contentEncoding: string | undefined, text: string): unknown {
  const encoding = contentEncoding?.trim().toLowerCase();
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
    throw new SeedError('unsupported_media_type', `Request bodies with Content-Encoding ${JSON.stringify(contentEncoding)} are not supported; send the JSON uncompressed.`);
  }
  if (text.trim() === '') throw new SeedError('invalid_json', 'The request body is empty; send a JSON object.');
  try {
    return secureJson.parse(text, null, FORBIDDEN_KEYS);
  } catch (error) {
    const message = (error as Error).message;
    if (message === FORBIDDEN_KEY_MESSAGE) {
      throw new SeedError('invalid_request', 'The request body has a "__proto__" or "constructor.prototype" key, which this gateway refuses.');
    }
    throw new SeedError('invalid_json', `The request body is not valid JSON: ${message}.`);
  }
}
