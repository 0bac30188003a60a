/**
 * Counters behind `GET /_sim/stats` and `stats()`. Control requests (`/_sim/…`) are not
 * counted, so polling the stats does not change them.
 */

/** What the simulator has seen since it started (or since the last reset). */
export interface SimulatorStats {
  /** Model-API requests received (control requests excluded). */
  requests: number;
  /** Model-API requests whose response has not ended or been abandoned yet. */
  inFlight: number;
  /** TCP connections open now (for `GET /_sim/stats`, the asking connection excluded). */
  openConnections: number;
  /** Requests per path, e.g. `/v1/chat/completions`. */
  byPath: Record<string, number>;
  /** Requests per model (Azure: per deployment). */
  byModel: Record<string, number>;
  /** Responses per status; `reset` for connections reset before any status, `none` for hung or abandoned ones. */
  byStatus: Record<string, number>;
  /** Injected faults per kind. */
  faults: Record<string, number>;
  /** Requests refused by the configured RPM/TPM limits. */
  rateLimited: number;
  /** Tokens charged against configured TPM limits by admitted requests (prompt estimate + max_tokens, as Azure counts them). */
  admittedTokens: number;
  /** Responses the client abandoned before they ended. */
  clientAborts: number;
}

function increment(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

export class StatsRecorder {
  private requests = 0;
  private inFlight = 0;
  private rateLimited = 0;
  private admittedTokens = 0;
  private clientAborts = 0;
  private readonly byPath = new Map<string, number>();
  private readonly byModel = new Map<string, number>();
  private readonly byStatus = new Map<string, number>();
  private readonly faults = new Map<string, number>();

  requestStarted(path: string): void {
    this.requests += 1;
    this.inFlight += 1;
    increment(this.byPath, path);
  }

  /** Called once per request when its response ends or its connection closes. */
  requestEnded(input: { abandoned: boolean; statusSent: boolean }): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (input.abandoned) this.clientAborts += 1;
    if (!input.statusSent) increment(this.byStatus, 'none');
  }

  model(key: string): void {
    increment(this.byModel, key);
  }

  status(status: number | 'reset'): void {
    increment(this.byStatus, String(status));
  }

  fault(kind: string): void {
    increment(this.faults, kind);
  }

  limited(): void {
    this.rateLimited += 1;
  }

  /** A request the limits admitted, charged `tokens`. */
  admitted(tokens: number): void {
    this.admittedTokens += tokens;
  }

  snapshot(input: { openConnections: number }): SimulatorStats {
    return {
      requests: this.requests,
      inFlight: this.inFlight,
      openConnections: input.openConnections,
      byPath: Object.fromEntries(this.byPath),
      byModel: Object.fromEntries(this.byModel),
      byStatus: Object.fromEntries(this.byStatus),
      faults: Object.fromEntries(this.faults),
      rateLimited: this.rateLimited,
      admittedTokens: this.admittedTokens,
      clientAborts: this.clientAborts,
    };
  }

  /** Clears the counters; requests in flight stay in flight. */
  reset(): void {
    this.requests = 0;
    this.rateLimited = 0;
    this.admittedTokens = 0;
    this.clientAborts = 0;
    this.byPath.clear();
    this.byModel.clear();
    this.byStatus.clear();
    this.faults.clear();
  }
}
