/**
 * Quota enforcement the way Azure OpenAI does it: requests are counted over short fixed
 * windows (rpm × windowMs / 60 000 per window, so bursts are refused even when the minute's
 * total would fit), tokens as the prompt estimate plus max_tokens. Refused requests consume
 * nothing. State is per model (or Azure deployment) key, in memory.
 */
import type { Limits } from './options.ts';

/** Quota of one dimension as the headers report it: the enforced window's cap. */
export interface QuotaReading {
  limit: number;
  remaining: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

export interface LimitDecision {
  allowed: boolean;
  /** Which quota refused the request. */
  exceeded?: 'requests' | 'tokens';
  /** How many the refused request asked for, for the error message. */
  requested?: number;
  /** Present when rpm is configured. */
  requests?: QuotaReading;
  /** Present when tpm is configured. */
  tokens?: QuotaReading;
  /** When refused: milliseconds until the refusing window resets. */
  retryAfterMs?: number;
}

interface WindowCounter {
  start: number;
  used: number;
}

/** Cap of one window: the per-minute rate scaled to the window, at least 1. */
function windowCap(input: { perMinute: number; windowMs: number }): number {
  return Math.max(1, Math.floor((input.perMinute * input.windowMs) / 60_000));
}

/** Advances a counter to the window that contains `now` (windows are aligned to the epoch). */
function current(input: { counter: WindowCounter | undefined; windowMs: number; now: number }): WindowCounter {
  const start = input.now - (input.now % input.windowMs);
  if (input.counter === undefined || input.counter.start !== start) return { start, used: 0 };
  return input.counter;
}

function refuse(input: {
  decision: LimitDecision;
  exceeded: 'requests' | 'tokens';
  requested: number;
  retryAfterMs: number;
}): void {
  input.decision.allowed = false;
  input.decision.exceeded = input.exceeded;
  input.decision.requested = input.requested;
  input.decision.retryAfterMs = input.retryAfterMs;
}

/** In-memory limiter; one instance per simulator. */
export class RateLimiter {
  private readonly requestCounters = new Map<string, WindowCounter>();
  private readonly tokenCounters = new Map<string, WindowCounter>();

  /** Admits one request of `tokens` estimated tokens, or refuses it without consuming anything. */
  admit(input: { key: string; limits: Limits; tokens: number; now: number }): LimitDecision {
    const { key, limits, now } = input;
    const decision: LimitDecision = { allowed: true };
    let requestCounter: WindowCounter | undefined;
    let tokenCounter: WindowCounter | undefined;
    if (limits.rpm !== undefined) {
      requestCounter = current({ counter: this.requestCounters.get(key), windowMs: limits.windowMs, now });
      const limit = windowCap({ perMinute: limits.rpm, windowMs: limits.windowMs });
      const resetMs = requestCounter.start + limits.windowMs - now;
      decision.requests = { limit, remaining: Math.max(0, limit - requestCounter.used), resetMs };
      if (requestCounter.used + 1 > limit) {
        refuse({ decision, exceeded: 'requests', requested: 1, retryAfterMs: resetMs });
      }
    }
    if (limits.tpm !== undefined) {
      tokenCounter = current({ counter: this.tokenCounters.get(key), windowMs: limits.tokenWindowMs, now });
      const limit = windowCap({ perMinute: limits.tpm, windowMs: limits.tokenWindowMs });
      const resetMs = tokenCounter.start + limits.tokenWindowMs - now;
      decision.tokens = { limit, remaining: Math.max(0, limit - tokenCounter.used), resetMs };
      if (decision.allowed && tokenCounter.used + input.tokens > limit) {
        refuse({ decision, exceeded: 'tokens', requested: input.tokens, retryAfterMs: resetMs });
      }
    }
    if (!decision.allowed) return decision;
    if (requestCounter !== undefined && decision.requests !== undefined) {
      this.requestCounters.set(key, { start: requestCounter.start, used: requestCounter.used + 1 });
      decision.requests.remaining -= 1;
    }
    if (tokenCounter !== undefined && decision.tokens !== undefined) {
      this.tokenCounters.set(key, { start: tokenCounter.start, used: tokenCounter.used + input.tokens });
      decision.tokens.remaining = Math.max(0, decision.tokens.remaining - input.tokens);
    }
    return decision;
  }

  reset(): void {
    this.requestCounters.clear();
    this.tokenCounters.clear();
  }
}

/** OpenAI's duration format: `"12ms"`, `"1s"`, `"1.5s"`, `"6m0s"`, `"1h2m3s"`. */
export function formatDuration(milliseconds: number): string {
  const rounded = Math.max(0, Math.ceil(milliseconds));
  if (rounded < 1_000) return `${rounded}ms`;
  if (rounded < 60_000) return `${Number((rounded / 1_000).toFixed(3))}s`;
  const hours = Math.floor(rounded / 3_600_000);
  const minutes = Math.floor((rounded % 3_600_000) / 60_000);
  const seconds = Number(((rounded % 60_000) / 1_000).toFixed(3));
  return hours > 0 ? `${hours}h${minutes}m${seconds}s` : `${minutes}m${seconds}s`;
}

/** `retry-after` in whole seconds (rounded up, as clients must not come back early). */
export function retryAfterSeconds(milliseconds: number): string {
  return String(Math.max(0, Math.ceil(milliseconds / 1_000)));
}
