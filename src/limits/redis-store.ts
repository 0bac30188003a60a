/**
 * The Redis limit store: limits and budgets shared by every replica (principle 7). Every
 * reserve is one EVALSHA of a Lua script (`redis-scripts.ts`), so checks and charges across all
 * buckets of a call are atomic across replicas and cost one round trip; `finish` settles a call's
 * caller and deployment reservations in one script too, and the finishes asked for in one
 * event-loop turn share one (see `finish`).
 *
 * The client fails fast instead of queueing (`enableOfflineQueue: false`, a command timeout):
 * when Redis is unreachable the limiter must decide at once whether to fail closed or open.
 */
import { Redis, ReplyError } from 'ioredis';
import { admittedResult, fits, refusalOf, statusOf, type EntryEvaluation } from './evaluation.ts';
import { calendarPeriod, counterKey, planReservation, recordTtlMs, settleDelta, storeLimit } from './plan.ts';
import {
  REPLY_ENTRIES_OFFSET,
  RESERVE_FIELDS_PER_ENTRY,
  RESERVE_REPLY_PER_ENTRY,
  RESERVE_SCRIPT,
  SETTLE_FIELDS_PER_ENTRY,
  SETTLE_SCRIPT,
} from './redis-scripts.ts';
import {
  LimitStoreUnavailableError,
  type Bucket,
  type FinishRequest,
  type LimitStore,
  type Reservation,
  type ReservedEntry,
  type ReserveRequest,
  type ReserveResult,
  type Usage,
} from './types.ts';

/**
 * The most reservations one settle script carries: a turn's batch is sent at the turn's end, or
 * at once when it reaches this many. A script runs alone on the server; 64 reservations are a
 * few hundred counters to adjust (a call's caller part has 9 with every limit set, its deployment
 * part 2).
 */
const MAX_FINISH_BATCH = 64;
const RESERVE_COMMAND = 'seedLimitsReserve';
const SETTLE_COMMAND = 'seedLimitsSettle';
/** A budget key outlives its period by this much, so a late settle still lands in it. */
const BUDGET_RETENTION_MS = 2 * 24 * 60 * 60 * 1000;
/** Replies that mean "Redis cannot serve now", not "our script is wrong". */
const UNAVAILABLE_REPLY = /^(LOADING|READONLY|MASTERDOWN|BUSY|CLUSTERDOWN|TRYAGAIN|NOREPLICAS)/;

/** A Lua script as a command: `[number of keys, ...keys, ...arguments]` in one array (see `defineScript`). */
type ScriptCommand = (keysAndArguments: ReadonlyArray<string | number>) => Promise<unknown>;

/** A finish waiting for its turn's settle script (`RedisLimitStore.finish`). */
interface PendingFinish {
  readonly reservations: readonly Reservation[];
  readonly usage: Usage | 'release';
  resolve(applied: readonly boolean[]): void;
  reject(error: unknown): void;
}

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
 * A connection that has carried nothing back for `socketTimeoutMs` while commands wait on it is
 * closed and made again. A server that stops answering without an error (a failover, a partition
 * that drops packets) otherwise kept the one connection until TCP gave up, ~15 minutes on
 * Linux: every command timed out on it, and calls were refused (or admitted unchecked) all that
 * time, long after Redis was back.
 *
 * @example
 * const store = new RedisLimitStore({ client: createRedisClient({ url: 'redis://127.0.0.1:6379' }) });
 */
export function createRedisClient({
  url,
  commandTimeoutMs = 1_000,
  socketTimeoutMs = 2 * commandTimeoutMs,
}: {
  url: string;
  commandTimeoutMs?: number;
  socketTimeoutMs?: number;
}): Redis {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    socketTimeout: socketTimeoutMs,
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
  readonly #counterKeys = new WeakMap<Bucket, { readonly key: string; readonly slot: string }>();
  /** The finishes of this turn, waiting for the turn's settle script (`finish`). */
  #finishes: PendingFinish[] = [];
  #finishReservations = 0;
  #finishScheduled = false;
  /** Settle scripts sent and not yet answered: `close` waits for them. */
  readonly #settling = new Set<Promise<void>>();

  constructor(options: RedisLimitStoreOptions) {
    this.client = options.client;
    this.#prefix = options.keyPrefix ?? 'seed:limits:';
    this.#now = options.now ?? Date.now;
    this.#reserveCommand = defineScript({ client: this.client, name: RESERVE_COMMAND, lua: RESERVE_SCRIPT });
    this.#settleCommand = defineScript({ client: this.client, name: SETTLE_COMMAND, lua: SETTLE_SCRIPT });
  }

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    const now = this.#now();
    const reservations = planReservation(request, now);
    let entryCount = 0;
    for (const reservation of reservations) entryCount += reservation.entries.length;
    const command = new ScriptArguments(1 + reservations.length + entryCount + 4 + entryCount * RESERVE_FIELDS_PER_ENTRY);
    command.add(reservations.length + entryCount);
    for (const reservation of reservations) command.add(this.#recordKey(reservation.id));
    for (const reservation of reservations) for (const entry of reservation.entries) command.add(this.#counterKey(entry));
    command.add(now);
    command.add(reservations.length);
    command.add(request.leaseMs);
    command.add(recordTtlMs(request.leaseMs));
    for (const reservation of reservations) {
      for (const entry of reservation.entries) addReserveArguments({ command, entry, member: reservation.id, now });
    }
    // Awaited here, not in a helper: every awaiting layer adds a promise and a frame per call.
    let raw: unknown;
    try {
      raw = await this.#reserveCommand(command.filled());
    } catch (error) {
      throw commandFailure(error);
    }
    const reply = toNumbers(raw);
    if (reply[0] !== 1) return refusedReply({ reservations, reply });

    let index = 0;
    for (let part = 0; part < reservations.length; part += 1) {
      const reservation = reservations[part] as Reservation;
      let moved: ReservedEntry[] | null = null;
      for (let position = 0; position < reservation.entries.length; position += 1) {
        const entry = reservation.entries[position] as ReservedEntry;
        const offset = REPLY_ENTRIES_OFFSET + index * RESERVE_REPLY_PER_ENTRY;
        // The script charges a later sub-window than planned when this clock lags (see
        // `redis-scripts.ts`); such an entry, and its reservation, are made anew.
        const chargedSlot = reply[offset + 3];
        const isWindow = entry.bucket.kind === 'requests' || entry.bucket.kind === 'tokens';
        if (isWindow && chargedSlot !== undefined && chargedSlot !== entry.subWindow) {
          moved ??= [...reservation.entries];
          moved[position] = { bucket: entry.bucket, amount: entry.amount, slot: String(chargedSlot), subWindow: chargedSlot };
        }
        index += 1;
      }
      if (moved !== null) reservations[part] = { id: reservation.id, entries: moved, reservedAt: now, tokens: reservation.tokens, usd: reservation.usd };
    }
    return admittedResult(reservations, request.report ?? 'every-bucket', reply, REPLY_ENTRIES_OFFSET, RESERVE_REPLY_PER_ENTRY);
  }

  async settle(reservation: Reservation, usage: Usage): Promise<boolean> {
    const [applied = false] = await this.finish({ reservations: [reservation], usage });
    return applied;
  }

  async release(reservation: Reservation): Promise<boolean> {
    const [applied = false] = await this.finish({ reservations: [reservation], usage: 'release' });
    return applied;
  }

  /**
   * Settles or releases `reservations`. The finishes asked for in one event-loop turn go to Redis
   * in one settle script at the turn's end (at once when `MAX_FINISH_BATCH` reservations wait):
   * under load a replica finishes many calls a turn, and a script call per call cost each call a
   * socket write and a reply to read, on the gateway and on Redis. Nothing waits on a finish
   * (the limiter settles without awaiting), so waiting for the turn's end delays no answer. Each
   * finish still gets its own results, or the batch's error.
   */
  finish({ reservations, usage }: FinishRequest): Promise<readonly boolean[]> {
    if (reservations.length === 0) return Promise.resolve([]);
    return new Promise<readonly boolean[]>((resolve, reject) => {
      this.#finishes.push({ reservations, usage, resolve, reject });
      this.#finishReservations += reservations.length;
      if (this.#finishReservations >= MAX_FINISH_BATCH) this.#sendFinishes();
      else if (!this.#finishScheduled) {
        this.#finishScheduled = true;
        setImmediate(() => {
          this.#finishScheduled = false;
          this.#sendFinishes();
        });
      }
    });
  }

  /** Sends the waiting finishes as one settle script and answers each from its part of the reply. */
  #sendFinishes(): void {
    const finishes = this.#finishes;
    if (finishes.length === 0) return;
    this.#finishes = [];
    const reservationCount = this.#finishReservations;
    this.#finishReservations = 0;
    let settled: Promise<void>;
    try {
      settled = this.#sendSettle(finishes, reservationCount);
    } catch (error) {
      // Runs at a turn's end, outside any caller's frame: a throw here would end the process.
      for (const finish of finishes) finish.reject(error);
      return;
    }
    this.#settling.add(settled);
    void settled.finally(() => this.#settling.delete(settled));
  }

  /** The settle script of `finishes` (`reservationCount` reservations in all), sent; settles every finish. */
  #sendSettle(finishes: readonly PendingFinish[], reservationCount: number): Promise<void> {
    let entryCount = 0;
    for (const finish of finishes) for (const reservation of finish.reservations) entryCount += reservation.entries.length;
    const keyCount = reservationCount + entryCount;
    const command = new ScriptArguments(1 + keyCount + 1 + reservationCount + entryCount * SETTLE_FIELDS_PER_ENTRY);
    command.add(keyCount);
    for (const finish of finishes) {
      for (const reservation of finish.reservations) {
        command.add(this.#recordKey(reservation.id));
        for (const entry of reservation.entries) command.add(this.#counterKey(entry));
      }
    }
    command.add(reservationCount);
    for (const { reservations, usage } of finishes) {
      for (const reservation of reservations) {
        command.add(reservation.entries.length);
        for (const entry of reservation.entries) {
          command.add(kindCode(entry));
          command.add(settleDelta(entry, usage));
          command.add(entry.slot);
          command.add(reservation.id);
        }
      }
    }
    return this.#settleCommand(command.filled()).then(
      (raw) => {
        let reply: number[];
        try {
          reply = toNumbers(raw);
          if (reply.length !== reservationCount) throw new Error(`the settle script answered ${reply.length} results for ${reservationCount} reservations`);
        } catch (error) {
          for (const finish of finishes) finish.reject(error);
          return;
        }
        let index = 0;
        for (const finish of finishes) {
          const applied = new Array<boolean>(finish.reservations.length);
          for (let position = 0; position < applied.length; position += 1) applied[position] = reply[index + position] === 1;
          index += applied.length;
          finish.resolve(applied);
        }
      },
      (error: unknown) => {
        const failure = commandFailure(error);
        for (const finish of finishes) finish.reject(failure);
      },
    );
  }

  /** Sends the finishes still waiting for their turn's end and waits for every settle sent, then disconnects. */
  async close(): Promise<void> {
    this.#sendFinishes();
    await Promise.all(this.#settling);
    this.client.disconnect();
  }

  #recordKey(id: string): string {
    return `${this.#prefix}r:${id}`;
  }

  /** The prefixed counter key of an entry, kept per bucket object (see `counterKey`). */
  #counterKey(entry: ReservedEntry): string {
    const cached = this.#counterKeys.get(entry.bucket);
    // A budget's key names its period (the entry's slot), so it is built again when that changes.
    if (cached !== undefined && (entry.bucket.kind !== 'usd' || cached.slot === entry.slot)) return cached.key;
    const key = this.#prefix + counterKey(entry);
    this.#counterKeys.set(entry.bucket, { key, slot: entry.slot });
    return key;
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

/**
 * What a failed script command throws: an error of the script itself as it is; anything else
 * (no connection, a timeout, a server that cannot serve now) as LimitStoreUnavailableError.
 */
function commandFailure(error: unknown): unknown {
  const message = error instanceof Error ? error.message : String(error);
  if (isReplyError(error) && !UNAVAILABLE_REPLY.test(message)) return error;
  return new LimitStoreUnavailableError(`Redis limit store unavailable: ${message}`, { cause: error });
}

/** ioredis types `ReplyError` as `any`; narrow it once here. */
function isReplyError(error: unknown): boolean {
  const replyErrorClass: unknown = ReplyError;
  return typeof replyErrorClass === 'function' && error instanceof replyErrorClass;
}

/**
 * The script as a function of one array: the number of keys, the keys, then the arguments.
 * ioredis flattens array arguments into the command, so the array is passed as it is, not
 * spread (twice) into calls.
 */
function defineScript({ client, name, lua }: { client: Redis; name: string; lua: string }): ScriptCommand {
  client.defineCommand(name, { lua });
  const command: unknown = Reflect.get(client, name);
  if (typeof command !== 'function') throw new Error(`ioredis did not define ${name}`);
  return (keysAndArguments) => Promise.resolve(command.call(client, keysAndArguments));
}

function kindCode(entry: ReservedEntry): 'w' | 'c' | 'u' {
  if (entry.bucket.kind === 'concurrent') return 'c';
  if (entry.bucket.kind === 'usd') return 'u';
  return 'w';
}

/**
 * A script's `[number of keys, ...keys, ...arguments]`, filled in order into an array of its
 * final size: a pushed array would grow, and be copied, several times on every call.
 */
class ScriptArguments {
  readonly #values: Array<string | number>;
  #length = 0;

  constructor(size: number) {
    this.#values = new Array<string | number>(size);
  }

  add(value: string | number): void {
    this.#values[this.#length] = value;
    this.#length += 1;
  }

  /** The array, once filled exactly as sized: the script would misread anything else. */
  filled(): ReadonlyArray<string | number> {
    if (this.#length !== this.#values.length) throw new Error('script arguments out of step with the script');
    return this.#values;
  }
}

/** One entry's fields of the reserve script's ARGV (`RESERVE_FIELDS_PER_ENTRY`). */
function addReserveArguments({ command, entry, member, now }: { command: ScriptArguments; entry: ReservedEntry; member: string; now: number }): void {
  const { bucket } = entry;
  command.add(kindCode(entry));
  command.add(storeLimit(bucket));
  command.add(entry.amount);
  if (bucket.kind === 'usd') {
    command.add(calendarPeriod({ now, period: bucket.period }).endsAt);
    command.add(BUDGET_RETENTION_MS);
  } else if (bucket.kind === 'concurrent') {
    command.add(0);
    command.add(0);
  } else {
    command.add(entry.slot);
    command.add(bucket.windowMs);
  }
  command.add(member);
}

/** A refused reserve's reply: the refusal, and every bucket's status before anything was charged. */
function refusedReply({ reservations, reply }: { reservations: readonly Reservation[]; reply: readonly number[] }): ReserveResult {
  const evaluations: EntryEvaluation[] = [];
  for (const reservation of reservations) {
    for (const entry of reservation.entries) {
      const offset = REPLY_ENTRIES_OFFSET + evaluations.length * RESERVE_REPLY_PER_ENTRY;
      evaluations.push({
        bucket: entry.bucket,
        amount: entry.amount,
        used: reply[offset] ?? 0,
        resetMs: nullIfNegative(reply[offset + 1]),
        retryAfterMs: nullIfNegative(reply[offset + 2]),
      });
    }
  }
  const refusedIndex = reply[1];
  const refused =
    evaluations[(refusedIndex ?? 1) - 1] ?? evaluations.find((evaluation) => !fits({ ...evaluation, limit: storeLimit(evaluation.bucket) }));
  if (refused === undefined) throw new Error('limit store reply names no refused bucket');
  return {
    admitted: false,
    refusal: refusalOf(refused),
    statuses: evaluations.map((evaluation) => statusOf({ evaluation, admitted: false })),
  };
}

function toNumbers(reply: unknown): number[] {
  if (!Array.isArray(reply)) throw new Error('unexpected reply from the limit store script');
  for (const value of reply) if (typeof value !== 'number') throw new Error('unexpected reply from the limit store script');
  return reply;
}

function nullIfNegative(value: number | undefined): number | null {
  return value === undefined || value < 0 ? null : value;
}
