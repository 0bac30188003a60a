/**
 * Samples from the ledger: calls whose payloads were stored, one sample per call. Both fields
 * (`messages`, the request's conversation, and `completion`, the assistant's reply) have the
 * call as origin: the ledger cannot tell who wrote the prompt (earlier assistant turns may be
 * model output), so the whole sample carries the call's terms.
 */
import { SeedError } from '../errors.ts';
import type { CallRecord } from '../ledger/types.ts';
import type { Store } from '../store/index.ts';
import type { SampleInput } from './sample.ts';
import type { CallSource, JsonValue } from './types.ts';

/** Which calls become samples. */
export interface LedgerFilters {
  readonly route?: string;
  /** Inclusive lower bound on the call's start (epoch ms). */
  readonly since?: number;
  /** Exclusive upper bound on the call's start (epoch ms). */
  readonly until?: number;
  /** The purpose the caller declared. */
  readonly purpose?: string;
  /** Every pair must be in the call's metadata. */
  readonly metadata?: { readonly [key: string]: string };
}

/** The lineage source a call contributes; throws when the call has no terms profile recorded. */
export function callSource(call: CallRecord): CallSource {
  if (call.termsProfile === null) {
    throw new SeedError('unprocessable_entity', `call ${call.id} has no terms profile recorded, so its outputs cannot be used in a dataset`);
  }
  return {
    kind: 'call',
    callId: call.id,
    provider: call.provider,
    deployment: call.deployment,
    model: call.model,
    route: call.route,
    startedAt: call.startedAt,
    termsProfile: call.termsProfile,
    termsVersion: call.termsVersion,
  };
}

/** Every successful chat call matching `filters` whose payload was stored, oldest first. */
export async function matchingCalls({ store, filters }: { store: Pick<Store, 'listCalls'>; filters: LedgerFilters }): Promise<{ calls: CallRecord[]; skipped: number }> {
  const calls: CallRecord[] = [];
  let skipped = 0;
  let cursor: string | null = null;
  do {
    const page = await store.listCalls({
      filters: {
        status: 'ok',
        ...(filters.route === undefined ? {} : { route: filters.route }),
        ...(filters.since === undefined ? {} : { since: filters.since }),
        ...(filters.until === undefined ? {} : { until: filters.until }),
      },
      limit: 1000,
      cursor,
    });
    for (const call of page.calls) {
      if (call.endpoint !== 'chat.completions') continue;
      if (filters.purpose !== undefined && call.purpose !== filters.purpose) continue;
      if (!metadataMatches({ call, wanted: filters.metadata })) continue;
      // No payload (tenant did not opt in) or no terms: nothing usable, but worth reporting.
      if (call.payload === null || call.termsProfile === null) skipped += 1;
      else calls.push(call);
    }
    cursor = page.nextCursor;
  } while (cursor !== null);
  return { calls: calls.reverse(), skipped };
}

/** The sample a stored chat call becomes. */
export function sampleFromCall(call: CallRecord): SampleInput {
  const source = callSource(call);
  const request = call.payload?.request;
  const messages = isObject(request) && Array.isArray(request['messages']) ? (request['messages'] as JsonValue[]) : null;
  if (messages === null) throw new SeedError('unprocessable_entity', `call ${call.id}: stored request has no messages`);
  return {
    id: call.id,
    fields: {
      messages: { value: messages, origin: source },
      completion: { value: completionOf({ call }), origin: source },
    },
  };
}

/** The assistant message of a response, or of a stream's collected chunks. */
function completionOf({ call }: { call: CallRecord }): JsonValue {
  const response = call.payload?.response;
  if (Array.isArray(response)) {
    let content = '';
    for (const chunk of response) {
      const choices = isObject(chunk) && Array.isArray(chunk['choices']) ? chunk['choices'] : [];
      const first: unknown = choices[0];
      const delta = isObject(first) && isObject(first['delta']) ? first['delta'] : {};
      if (typeof delta['content'] === 'string') content += delta['content'];
    }
    return { role: 'assistant', content };
  }
  const choices = isObject(response) && Array.isArray(response['choices']) ? response['choices'] : [];
  const first: unknown = choices[0];
  if (isObject(first) && isObject(first['message'])) return JSON.parse(JSON.stringify(first['message'])) as JsonValue;
  throw new SeedError('unprocessable_entity', `call ${call.id}: stored response has no message`);
}

function metadataMatches({ call, wanted }: { call: CallRecord; wanted: LedgerFilters['metadata'] }): boolean {
  if (wanted === undefined) return true;
  return Object.entries(wanted).every(([key, value]) => call.metadata?.[key] === value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
