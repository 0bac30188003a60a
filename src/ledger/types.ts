/**
 * A call as recorded in the ledger: one request through the gateway, whatever its outcome.
 * The gateway emits one `CallRecord` after every call (success, error, abort); sinks (the
 * ledger writer, metrics, tests) subscribe to that event.
 */
import type { ErrorCode } from '../errors.ts';

export type CallStatus = 'ok' | 'error' | 'aborted';
export type CallEndpoint = 'chat.completions' | 'embeddings';

export interface CallRecord {
  /**
   * Unique per call and made by Seed (`newCallId`, time-ordered); also the `x-request-id`
   * returned to the client.
   */
  id: string;
  /**
   * The client's own id for the request (`x-client-request-id`, or an incoming `x-request-id`),
   * when it sent a usable one; not unique, since clients reuse ids (retries, one trace id for
   * several calls).
   */
  clientRequestId: string | null;
  startedAt: number;
  endpoint: CallEndpoint;
  /** The route (model alias) the client asked for. */
  route: string;
  /** The route that finally served the call (differs after a fallback). */
  servedRoute: string | null;
  deployment: string | null;
  provider: string | null;
  /** Upstream model name of the deployment that served the call. */
  model: string | null;
  region: string | null;
  purpose: string;
  /** Terms profile of the serving deployment and its version, when known. */
  termsProfile: string | null;
  termsVersion: string | null;
  orgId: string | null;
  teamId: string | null;
  keyId: string | null;
  status: CallStatus;
  httpStatus: number;
  errorCode: ErrorCode | null;
  stream: boolean;
  attempts: number;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  /** Whether token counts came from the upstream's usage (true) or Seed's estimate (false). */
  usageReported: boolean;
  costUsd: number;
  latencyMs: number;
  /** Time to the first streamed byte; null for non-streamed calls. */
  ttftMs: number | null;
  /** Client-supplied `metadata` (≤16 pairs), stored only when the key or team opted in. */
  metadata: Record<string, string> | null;
  /** Request and response bodies, only when the tenant opted in to payload storage. */
  payload: { request: unknown; response: unknown } | null;
}

/** Where finished calls go. `record` must return at once: it is called on the request path. */
export interface CallSink {
  /**
   * Takes a finished call. A promise returned says the call is not yet durable (the ledger's
   * journal writes at the end of the turn): the caller holds the end of its answer until the
   * promise settles, so no answered call is lost with the process. It never rejects.
   */
  record(call: CallRecord): void | Promise<void>;
}
