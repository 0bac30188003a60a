/**
 * Sends chat calls for the fault suites and reads back what the client observed, so each can
 * be checked against its ledger record: the status and error code of a JSON answer, or for a
 * stream that started, whether it finished (`[DONE]`) or ended with an error event.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import type { CallRecord } from '../../src/ledger/types.ts';

export interface Observed {
  /** The call id the gateway returned (`x-request-id`). */
  requestId: string;
  /** The id the client sent (`x-request-id` in the request), which the record must keep. */
  clientRequestId: string;
  status: number;
  /** Null when the call succeeded (a JSON 200, or a stream that reached `[DONE]`). */
  errorCode: string | null;
  deployment: string | undefined;
  retryAfter: string | undefined;
  body: string;
}

export async function callChat(input: {
  baseUrl: string;
  dispatcher: Dispatcher;
  model: string;
  stream?: boolean;
  timeoutMs?: number;
}): Promise<Observed> {
  const clientRequestId = `fault_${randomUUID().replaceAll('-', '')}`;
  const response = await request(`${input.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: input.dispatcher,
    headers: { 'content-type': 'application/json', 'x-request-id': clientRequestId },
    body: JSON.stringify({ model: input.model, stream: input.stream === true, messages: [{ role: 'user', content: 'hi' }] }),
    headersTimeout: input.timeoutMs ?? 10_000,
    bodyTimeout: input.timeoutMs ?? 10_000,
  });
  const body = await response.body.text();
  const header = (name: string) => {
    const value = response.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  let errorCode: string | null = null;
  if (response.statusCode !== 200) {
    errorCode = (JSON.parse(body) as { error: { code: string } }).error.code;
  } else if (input.stream === true && !body.trimEnd().endsWith('data: [DONE]')) {
    const last = body.trimEnd().split('\n\n').at(-1) ?? '';
    errorCode = (JSON.parse(last.replace(/^data: /, '')) as { error: { code: string } }).error.code;
  }
  return { requestId: header('x-request-id') ?? '', clientRequestId, status: response.statusCode, errorCode, deployment: header('x-seed-deployment'), retryAfter: header('retry-after'), body };
}

/** Each observed call has exactly one record, and the record says what the client saw. */
export function assertRecorded(observed: readonly Observed[], records: readonly CallRecord[]): void {
  for (const call of observed) {
    const matching = records.filter((record) => record.id === call.requestId);
    assert.equal(matching.length, 1, `one record for ${call.requestId} (${call.status} ${call.errorCode})`);
    const record = matching[0] as CallRecord;
    assert.equal(record.clientRequestId, call.clientRequestId, call.requestId);
    assert.equal(record.errorCode, call.errorCode, `${call.requestId}: record ${record.errorCode}, client saw ${call.errorCode}`);
    assert.equal(record.status, call.errorCode === null ? 'ok' : 'error', call.requestId);
    // A stream that failed after its first byte went out as a 200; the record keeps the failure's own status.
    if (call.status !== 200) assert.equal(record.httpStatus, call.status, call.requestId);
  }
}
