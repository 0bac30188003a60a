/**
 * The Redis limit store: limits and budgets shared by every replica (principle 7). Every
 * reserve and every settle is one EVALSHA of a Lua script (`redis-scripts.ts`), so checks and
 * charges across all buckets of a call are atomic across replicas and cost one round trip;
 * `finish` settles a call's caller and deployment reservations in the same one.
 *
 * The client fails fast instead of queueing (`enableOfflineQueue: false`, a command timeout):
 * when Redis is unreachable the limiter must decide at once whether to fail closed or open.
 */
import { Redis, ReplyError } from 'ioredis';
import { fits, refusalOf, statusOf, type EntryEvaluation } from './evaluation.ts';
import { calendarPeriod, counterKey, planReservation, recordTtlMs, settleDelta, storeLimit } from './plan.ts';
import {
  RESERVE_FIELDS_PER_ENTRY,
  RESERVE_REPLY_PER_ENTRY,
  RESERVE_SCRIPT,
  SETTLE_SCRIPT,
} from './redis-scripts.ts';
import {
  LimitStoreUnavailableError,
  type FinishRequest,
  type LimitStore,
  type Reservation,
  type ReservedEntry,
  type ReserveRequest,
  type ReserveResult,
  type Usage,
} from './types.ts';

const RESERVE_COMMAND = 'seedLimitsReserve';
const SETTLE_COMMAND = 'seedLimitsSettle';
/** A budget key outlives its period by this much, so a late settle still lands in it. */
const BUDGET_RETENTION_MS = 2 * 24 * 60 * 60 * 1000;
/** Replies that mean "Redis cannot serve now", not "our script is wrong". */
const UNAVAILABLE_REPLY = /^(LOADING|READONLY|MASTERDOWN|BUSY|CLUSTERDOWN|TRYAGAIN|NOREPLICAS)/;

type ScriptCommand = (numberOfKeys: number, ...keysAndArguments: Array<string | number>) => Promise<unknown>;

export interface RedisLimitStoreOptions {
  /** An ioredis client; see `createRedisClient` for settings that fail fast. */
  client: Redis;
  /** Prefix of every key; use a `{hash-tag}` in it on Redis Cluster so one script's keys share a slot. */
  keyPrefix?: string;
  now?: () => number;
}

/**
 * An ioredis client tuned for admission: no offline queue, bounded command time, endless
 * reconnects with backoff. Errors are reported by the limiter, not by ioredis's default logger.
 *
 * @example
 * const store = new RedisLimitStore({ client: createRedisClient({ url: 'redis://127.0.0.1:6379' }) });
 */
export function createRedisClient({ url, commandTimeoutMs = 1_000 }: { url: string; commandTimeoutMs?: number }): Redis {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(100 * attempt, 2_000),
  });
  client.on('error', () => {
    // Outages are logged once by the limiter; ioredis would otherwise log every reconnect attempt.
  });
  return client;
}

/**
 * @example
 * const store = new RedisLimitStore({ client: createRedisClient({ url }), keyPrefix: 'seed:limits:' });
 * await waitForRedis(store.client); // optional: avoid refusing the first calls while connecting
 */
export class RedisLimitStore implements LimitStore {
  readonly client: Redis;
  readonly #prefix: string;
  readonly #now: () => number;
  readonly #reserveCommand: ScriptCommand;
  readonly #settleCommand: ScriptCommand;

  constructor(options: RedisLimitStoreOptions) {
    this.client = options.client;
    this.#prefix = options.keyPrefix ?? 'seed:limits:';
    this.#now = options.now ?? Date.now;
    this.#reserveCommand = defineScript({ client: this.client, name: RESERVE_COMMAND, lua: RESERVE_SCRIPT });
    this.#settleCommand = defineScript({ client: this.client, name: SETTLE_COMMAND, lua: SETTLE_SCRIPT });
  }

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    const now = this.#now();
    const parts = planReservation({ request, now });
    const entries = parts.flatMap((part) => part.entries.map((entry) => ({ entry, member: part.id })));
    const keys = [...parts.map((part) => this.#recordKey(part.id)), ...entries.map(({ entry }) => this.#prefix + counterKey(entry))];
    const argumentsList: Array<string | number> = [now, parts.length, request.leaseMs, recordTtlMs(request.leaseMs)];
    for (const { entry, member } of entries) argumentsList.push(...scriptArguments({ entry, member, now }));
    const reply = toNumbers(await this.#run(() => this.#reserveCommand(keys.length, ...keys, ...argumentsList)));

    const [admittedFlag, refusedIndex] = reply;
    const evaluations: EntryEvaluation[] = entries.map(({ entry }, index) => {
      const offset = 2 + index * RESERVE_REPLY_PER_ENTRY;
      return {
        bucket: entry.bucket,
        amount: entry.amount,
        used: reply[offset] ?? 0,
        resetMs: nullIfNegative(reply[offset + 1]),
        retryAfterMs: nullIfNegative(reply[offset + 2]),
      };
    });
    if (admittedFlag !== 1) {
      const refused = evaluations[(refusedIndex ?? 1) - 1] ?? evaluations.find((evaluation) => !fits({ ...evaluation, limit: storeLimit(evaluation.bucket) }));
      if (refused === undefined) throw new Error('limit store reply names no refused bucket');
      return {
        admitted: false,
        refusal: refusalOf(refused),
        statuses: evaluations.map((evaluation) => statusOf({ evaluation, admitted: false })),
      };
    }
    let entryIndex = 0;
    const reservations: Reservation[] = parts.map((part) => ({
      id: part.id,
      reservedAt: now,
      tokens: part.tokens,
      usd: part.usd,
      entries: part.entries.map((entry) => {
        const chargedSlot = reply[2 + entryIndex * RESERVE_REPLY_PER_ENTRY + 3];
        entryIndex += 1;
        const isWindow = entry.bucket.kind === 'requests' || entry.bucket.kind === 'tokens';
        return isWindow && chargedSlot !== undefined ? { ...entry, slot: String(chargedSlot) } : entry;
      }),
    }));
    return { admitted: true, reservations, statuses: evaluations.map((evaluation) => statusOf({ evaluation, admitted: true })) };
  }

  async settle(reservation: Reservation, usage: Usage): Promise<boolean> {
    const [applied = false] = await this.finish({ reservations: [reservation], usage });
    return applied;
  }

  async release(reservation: Reservation): Promise<boolean> {
    const [applied = false] = await this.finish({ reservations: [reservation], usage: 'release' });
    return applied;
  }

  async finish({ reservations, usage }: FinishRequest): Promise<readonly boolean[]> {
    if (reservations.length === 0) return [];
    const keys: string[] = [];
    const argumentsList: Array<string | number> = [reservations.length];
    for (const reservation of reservations) {
      keys.push(this.#recordKey(reservation.id));
      argumentsList.push(reservation.entries.length);
      for (const entry of reservation.entries) {
        keys.push(this.#prefix + counterKey(entry));
        argumentsList.push(kindCode(entry), settleDelta({ entry, usage }), entry.slot, reservation.id);
      }
    }
    const reply = toNumbers(await this.#run(() => this.#settleCommand(keys.length, ...keys, ...argumentsList)));
    return reply.map((applied) => applied === 1);
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }

  #recordKey(id: string): string {
    return `${this.#prefix}r:${id}`;
  }

  async #run(command: () => Promise<unknown>): Promise<unknown> {
    try {
      return await command();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (isReplyError(error) && !UNAVAILABLE_REPLY.test(message)) throw error;
      throw new LimitStoreUnavailableError(`Redis limit store unavailable: ${message}`, { cause: error });
    }
  }
}

/** Resolves once the client is ready, or rejects after `timeoutMs`. */
export async function waitForRedis({ client, timeoutMs = 5_000 }: { client: Redis; timeoutMs?: number }): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new LimitStoreUnavailableError(`Redis not ready after ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    function onReady(): void {
      clearTimeout(timer);
      resolve();
    }
    client.once('ready', onReady);
  });
}

/** ioredis types `ReplyError` as `any`; narrow it once here. */
function isReplyError(error: unknown): boolean {
  const replyErrorClass: unknown = ReplyError;
  return typeof replyErrorClass === 'function' && error instanceof replyErrorClass;
}

function defineScript({ client, name, lua }: { client: Redis; name: string; lua: string }): ScriptCommand {
  client.defineCommand(name, { lua });
  const command: unknown = Reflect.get(client, name);
  if (typeof command !== 'function') throw new Error(`ioredis did not define ${name}`);
  return (numberOfKeys, ...keysAndArguments) => Promise.resolve(command.call(client, numberOfKeys, ...keysAndArguments));
}

function kindCode(entry: ReservedEntry): 'w' | 'c' | 'u' {
  if (entry.bucket.kind === 'concurrent') return 'c';
  if (entry.bucket.kind === 'usd') return 'u';
  return 'w';
}

function scriptArguments({ entry, member, now }: { entry: ReservedEntry; member: string; now: number }): Array<string | number> {
  const { bucket } = entry;
  const common = [kindCode(entry), storeLimit(bucket), entry.amount];
  let extra: Array<string | number>;
  if (bucket.kind === 'usd') extra = [calendarPeriod({ now, period: bucket.period }).endsAt, BUDGET_RETENTION_MS];
  else if (bucket.kind === 'concurrent') extra = [0, 0];
  else extra = [entry.slot, bucket.windowMs];
  const all = [...common, ...extra, member];
  if (all.length !== RESERVE_FIELDS_PER_ENTRY) throw new Error('reserve arguments out of step with the script');
  return all;
}

function toNumbers(reply: unknown): number[] {
  if (!Array.isArray(reply) || !reply.every((value): value is number => typeof value === 'number')) {
    throw new Error('unexpected reply from the limit store script');
  }
  return reply;
}

function nullIfNegative(value: number | undefined): number | null {
  return value === undefined || value < 0 ? null : value;
}
