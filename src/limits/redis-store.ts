/**
 * The Redis limit store: limits and budgets shared by every replica (principle 7). A reserve
 * runs in a Lua script (`redis-scripts.ts`), so checks and charges across all buckets of a call
 * are atomic across replicas; `finish` settles a call's caller and deployment reservations in one
 * script too. The reserves asked for in one event-loop turn share one script, and so do the
 * finishes (`TurnBatch`): under load a replica serves many calls a turn, and a script per call
 * cost each a socket write and a reply to parse, on the gateway and on Redis.
 *
 * The client fails fast instead of queueing (`enableOfflineQueue: false`, a command timeout):
 * when Redis is unreachable the limiter must decide at once whether to fail closed or open.
 */
import { createHash } from 'node:crypto';
import { Command, Redis, ReplyError } from 'ioredis';
import { admittedResult, fits, refusalOf, statusOf, type EntryEvaluation } from './evaluation.ts';
import { calendarPeriod, counterKey, planReservation, recordTtlMs, resetAfterCharge, settleDelta, storeLimit } from './plan.ts';
import {
  FIELDS_PER_LIST,
  LEADING_ARGUMENTS,
  REPLY_ENTRIES_OFFSET,
  RESERVE_ADMITTED,
  RESERVE_ADMITTED_MOVED,
  RESERVE_FIELDS_PER_CALL,
  RESERVE_FIELDS_PER_COUNTER,
  RESERVE_FIELDS_PER_PART,
  RESERVE_REFUSED,
  RESERVE_REPLY_PER_ADMITTED_ENTRY,
  RESERVE_REPLY_PER_MOVED_ENTRY,
  RESERVE_REPLY_PER_REFUSED_ENTRY,
  RESERVE_SCRIPT,
  SETTLE_FIELDS_PER_COUNTER,
  SETTLE_FIELDS_PER_RESERVATION,
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
/**
 * The most calls one reserve script carries, as `MAX_FINISH_BATCH`: the script reads each
 * counter once and writes it back once (`redis-scripts.ts`), so a call whose counters the calls
 * before it already read costs Redis little, and one whose counters are its own about 30 Redis
 * commands with every limit set. A call's reserve and settle cost Redis ~280 thousand
 * instructions together when ten calls of a script share their buckets, ~1 million when they
 * share none (`bench/redis-instructions.ts`; ~35 µs and ~70–85 µs on the benchmark host before
 * the scripts' last changes cut a quarter of the first), so a script of 32 calls holds the server
 * for at most a few milliseconds.
 */
const MAX_RESERVE_BATCH = 32;
/** Replies that mean "Redis cannot serve now", not "our script is wrong". */
const UNAVAILABLE_REPLY = /^(LOADING|READONLY|MASTERDOWN|BUSY|CLUSTERDOWN|TRYAGAIN|NOREPLICAS)/;

/** A Lua script as a command of its filled arguments (see `defineScript`). */
type ScriptCommand = (script: ScriptArguments) => Promise<unknown>;

/** A request waiting in a `TurnBatch`, answered from its part of the batch's reply. */
interface Pending<Result> {
  resolve(result: Result): void;
  reject(error: unknown): void;
}

/** A reserve waiting for its turn's reserve script (`RedisLimitStore.reserve`). */
interface PendingReserve extends Pending<ReserveResult> {
  readonly request: ReserveRequest;
  readonly now: number;
  readonly reservations: Reservation[];
  readonly entryCount: number;
}

/** A finish waiting for its turn's settle script (`RedisLimitStore.finish`). */
interface PendingFinish extends Pending<readonly boolean[]> {
  readonly reservations: readonly Reservation[];
  readonly usage: Usage | 'release';
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
  readonly #reserves: TurnBatch<PendingReserve>;
  readonly #finishes: TurnBatch<PendingFinish>;

  constructor(options: RedisLimitStoreOptions) {
    this.client = options.client;
    this.#prefix = options.keyPrefix ?? 'seed:limits:';
    this.#now = options.now ?? Date.now;
    this.#reserveCommand = defineScript({ client: this.client, lua: RESERVE_SCRIPT });
    this.#settleCommand = defineScript({ client: this.client, lua: SETTLE_SCRIPT });
    this.#reserves = new TurnBatch({ maxWeight: MAX_RESERVE_BATCH, send: (reserves) => this.#sendReserve(reserves) });
    this.#finishes = new TurnBatch({ maxWeight: MAX_FINISH_BATCH, send: (finishes, reservationCount) => this.#sendSettle(finishes, reservationCount) });
  }

  /**
   * Reserves for a call. The reserves asked for in one event-loop turn go to Redis in one script
   * at the turn's end (at once when `MAX_RESERVE_BATCH` wait), each as if it ran alone after the
   * ones before it. The turn's end comes right after the turn's other callbacks, so the wait adds
   * no more to a call than their work.
   */
  reserve(request: ReserveRequest): Promise<ReserveResult> {
    const now = this.#now();
    let reservations: Reservation[];
    try {
      reservations = planReservation(request, now);
    } catch (error) {
      return Promise.reject(error);
    }
    let entryCount = 0;
    for (const reservation of reservations) entryCount += reservation.entries.length;
    return new Promise<ReserveResult>((resolve, reject) => {
      this.#reserves.add({ request, now, reservations, entryCount, resolve, reject }, 1);
    });
  }

  /** The reserve script of `reserves`, sent; answers each from its part of the reply. */
  #sendReserve(reserves: readonly PendingReserve[]): Promise<void> {
    const counters = new ScriptCounters();
    const lists = new ScriptLists();
    // Per part: its list, and its tokens and micro-dollars as its entries charge them.
    const partLists: number[] = [];
    const partAmounts: number[] = [];
    const recordKeys: string[] = [];
    const partCounters: number[] = [];
    for (const { reservations, now } of reserves) {
      for (const reservation of reservations) {
        recordKeys.push(this.#recordKey(reservation.id));
        partCounters.length = 0;
        let tokens = -1;
        let usd = -1;
        for (const entry of reservation.entries) {
          partCounters.push(counters.indexOf(this.#counterKey(entry), entry.bucket, now));
          const { kind } = entry.bucket;
          if (kind === 'tokens') tokens = sameAmount(tokens, entry.amount);
          else if (kind === 'usd') usd = sameAmount(usd, entry.amount);
          else if (entry.amount !== 1) throw new Error(`a ${kind} entry charging ${entry.amount}, where the reserve script charges 1`);
        }
        partLists.push(lists.indexOf(partCounters));
        partAmounts.push(Math.max(tokens, 0), Math.max(usd, 0));
      }
    }
    const counterCount = counters.keys.length;
    const command = scriptHead({
      counters,
      recordKeys,
      batchSize: reserves.length,
      argumentsAfter:
        counterCount * RESERVE_FIELDS_PER_COUNTER +
        listArgumentCount(lists) +
        reserves.length * RESERVE_FIELDS_PER_CALL +
        recordKeys.length * RESERVE_FIELDS_PER_PART,
    });
    for (let counter = 0; counter < counterCount; counter += 1) {
      addCounterArguments(command, counters.buckets[counter] as Bucket, counters.nows[counter] as number);
    }
    addListArguments(command, lists);
    let partIndex = 0;
    for (const { request, now, reservations } of reserves) {
      command.add(now);
      command.add(request.leaseMs);
      command.add(recordTtlMs(request.leaseMs));
      command.add(reservations.length);
      for (const reservation of reservations) {
        command.add(reservation.id);
        command.add(partLists[partIndex] as number);
        command.add(partAmounts[2 * partIndex] as number);
        command.add(partAmounts[2 * partIndex + 1] as number);
        partIndex += 1;
      }
    }
    return answerEach({
      script: 'reserve',
      sent: this.#reserveCommand(command),
      requests: reserves,
      partLength: (reserve, reply, offset) => REPLY_ENTRIES_OFFSET + reserve.entryCount * replyPerEntry(reply[offset]),
      answer: reserveResult,
    });
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
      this.#finishes.add({ reservations, usage, resolve, reject }, reservations.length);
    });
  }

  /**
   * The settle script of `finishes` (`reservationCount` reservations in all), sent; settles every
   * finish. An entry that would change nothing (a delta of 0 outside a concurrency slot) is left
   * out of its reservation's list.
   */
  #sendSettle(finishes: readonly PendingFinish[], reservationCount: number): Promise<void> {
    const counters = new ScriptCounters();
    const lists = new ScriptLists();
    const recordKeys: string[] = [];
    // Per reservation: its list, tokens delta, micro-dollars delta and slot count; its slots in `slots`.
    const perReservation: number[] = [];
    const slots: string[] = [];
    const listCounters: number[] = [];
    const windowSlots: string[] = [];
    for (const { reservations, usage } of finishes) {
      for (const reservation of reservations) {
        recordKeys.push(this.#recordKey(reservation.id));
        listCounters.length = 0;
        windowSlots.length = 0;
        let tokensDelta: number | null = null;
        let usdDelta: number | null = null;
        for (const entry of reservation.entries) {
          const delta = settleDelta(entry, usage);
          const { kind } = entry.bucket;
          if (delta === 0 && kind !== 'concurrent') continue;
          listCounters.push(counters.indexOf(this.#counterKey(entry), entry.bucket, 0));
          if (kind === 'tokens') tokensDelta = sameDelta(tokensDelta, delta, kind);
          else if (kind === 'usd') usdDelta = sameDelta(usdDelta, delta, kind);
          else if (kind === 'requests') sameDelta(-1, delta, kind);
          if (kind === 'requests' || kind === 'tokens') windowSlots.push(entry.slot);
        }
        let slotCount = Math.min(windowSlots.length, 1);
        for (const slot of windowSlots) if (slot !== windowSlots[0]) slotCount = windowSlots.length;
        for (let index = 0; index < slotCount; index += 1) slots.push(windowSlots[index] as string);
        perReservation.push(lists.indexOf(listCounters), tokensDelta ?? 0, usdDelta ?? 0, slotCount);
      }
    }
    const command = scriptHead({
      counters,
      recordKeys,
      batchSize: reservationCount,
      argumentsAfter:
        counters.keys.length * SETTLE_FIELDS_PER_COUNTER +
        listArgumentCount(lists) +
        reservationCount * SETTLE_FIELDS_PER_RESERVATION +
        slots.length,
    });
    for (const bucket of counters.buckets) command.add(kindCode(bucket));
    addListArguments(command, lists);
    let reservationIndex = 0;
    let slotIndex = 0;
    for (const { reservations } of finishes) {
      for (const reservation of reservations) {
        const fields = reservationIndex * 4;
        command.add(reservation.id);
        command.add(perReservation[fields] as number);
        command.add(perReservation[fields + 1] as number);
        command.add(perReservation[fields + 2] as number);
        const slotCount = perReservation[fields + 3] as number;
        command.add(slotCount);
        for (const end = slotIndex + slotCount; slotIndex < end; slotIndex += 1) command.add(slots[slotIndex] as string);
        reservationIndex += 1;
      }
    }
    return answerEach({
      script: 'settle',
      sent: this.#settleCommand(command),
      requests: finishes,
      partLength: (finish) => finish.reservations.length,
      answer: (finish, reply, offset) => {
        const applied = new Array<boolean>(finish.reservations.length);
        for (let position = 0; position < applied.length; position += 1) applied[position] = reply[offset + position] === 1;
        return applied;
      },
    });
  }

  /** Sends what still waits for its turn's end and waits for every script sent, then disconnects. */
  async close(): Promise<void> {
    await Promise.all([this.#reserves.drain(), this.#finishes.drain()]);
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

/**
 * The requests of one event-loop turn, sent together at the turn's end (`setImmediate` runs
 * right after the turn's I/O callbacks), or at once when their weight reaches `maxWeight`.
 * `send` answers every request it is given; a throw while it builds the command rejects them all.
 */
class TurnBatch<Request extends { reject(error: unknown): void }> {
  readonly #maxWeight: number;
  readonly #send: (requests: readonly Request[], weight: number) => Promise<void>;
  #waiting: Request[] = [];
  #weight = 0;
  #scheduled = false;
  /** Batches sent and not yet answered: `drain` waits for them. */
  readonly #inFlight = new Set<Promise<void>>();

  constructor({ maxWeight, send }: { maxWeight: number; send: (requests: readonly Request[], weight: number) => Promise<void> }) {
    this.#maxWeight = maxWeight;
    this.#send = send;
  }

  add(request: Request, weight: number): void {
    this.#waiting.push(request);
    this.#weight += weight;
    if (this.#weight >= this.#maxWeight) this.#flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.#flush();
      });
    }
  }

  /** Sends what waits, then waits for every batch sent. */
  async drain(): Promise<void> {
    this.#flush();
    await Promise.all(this.#inFlight);
  }

  #flush(): void {
    const requests = this.#waiting;
    if (requests.length === 0) return;
    const weight = this.#weight;
    this.#waiting = [];
    this.#weight = 0;
    let sent: Promise<void>;
    try {
      sent = this.#send(requests, weight);
    } catch (error) {
      // Runs at a turn's end, outside any caller's frame: a throw here would end the process.
      for (const request of requests) request.reject(error);
      return;
    }
    this.#inFlight.add(sent);
    void sent.finally(() => this.#inFlight.delete(sent));
  }
}

/**
 * Answers each of a batch's `requests` from its part of the script's reply, in order, each part
 * `partLength` numbers long (which may depend on the part's first number). A reply of another
 * length rejects them all, and so does a failed command (as `commandFailure` says); a part that
 * cannot be read rejects its own request only.
 */
function answerEach<Result, Request extends Pending<Result>>({
  script,
  sent,
  requests,
  partLength,
  answer,
}: {
  script: string;
  sent: Promise<unknown>;
  requests: readonly Request[];
  partLength: (request: Request, reply: readonly number[], offset: number) => number;
  answer: (request: Request, reply: readonly number[], offset: number) => Result;
}): Promise<void> {
  return sent.then(
    (raw) => {
      let reply: number[];
      // Where each request's part starts.
      const offsets = new Array<number>(requests.length);
      try {
        reply = toNumbers(raw);
        let offset = 0;
        for (let index = 0; index < requests.length && offset <= reply.length; index += 1) {
          offsets[index] = offset;
          // Past the reply's end, a part reads as empty, and the check below fails.
          if (offset < reply.length) offset += partLength(requests[index] as Request, reply, offset);
          else offset += 1;
        }
        if (offset !== reply.length) {
          throw new Error(`the ${script} script answered ${reply.length} numbers, which are not a part for each of its ${requests.length} requests`);
        }
      } catch (error) {
        for (const request of requests) request.reject(error);
        return;
      }
      for (let index = 0; index < requests.length; index += 1) {
        const request = requests[index] as Request;
        try {
          request.resolve(answer(request, reply, offsets[index] as number));
        } catch (error) {
          request.reject(error);
        }
      }
    },
    (error: unknown) => {
      const failure = commandFailure(error);
      for (const request of requests) request.reject(failure);
    },
  );
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
 * A Lua script as a command: EVALSHA of its arguments, or EVAL when the server has not got the
 * script (a restart, a failover, SCRIPT FLUSH), which sends it whole and keeps it for the next.
 *
 * Not ioredis's `defineCommand`: its commands copy every argument with `Array.prototype.flat`
 * and check each one's type again, ~0.07 µs an argument on Node 20, and a call's reserve and
 * settle carry ~150. The command is made with no arguments and given the filled array as it is
 * (`ScriptArguments` holds strings only, as ioredis would have made them).
 */
function defineScript({ client, lua }: { client: Redis; lua: string }): ScriptCommand {
  const sha = createHash('sha1').update(lua).digest('hex');
  return (script) =>
    sendScript(client, 'evalsha', script.withScript(sha)).catch((error: unknown) => {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return sendScript(client, 'eval', script.withScript(lua));
    });
}

const NO_ARGUMENTS: string[] = [];

function sendScript(client: Redis, name: 'evalsha' | 'eval', values: string[]): Promise<unknown> {
  const command = new Command(name, NO_ARGUMENTS);
  command.args = values;
  void client.sendCommand(command);
  return command.promise as Promise<unknown>;
}

/** A counter's kind in both scripts: r requests, t tokens (both windows), c concurrency, u usd. */
function kindCode(bucket: Bucket): 'r' | 't' | 'c' | 'u' {
  if (bucket.kind === 'requests') return 'r';
  if (bucket.kind === 'tokens') return 't';
  if (bucket.kind === 'concurrent') return 'c';
  return 'u';
}

/**
 * A reservation's settle delta for one kind of entry: every entry of that kind moves by the same
 * (`settleDelta` in `plan.ts`), which is what lets the settle script take it from the
 * reservation once.
 */
function sameDelta(known: number | null, delta: number, kind: string): number {
  if (known !== null && known !== delta) throw new Error(`one reservation moving its ${kind} entries by ${known} and by ${delta}`);
  return delta;
}

/**
 * A part's amount for one kind of entry: every entry of that kind charges the same (`amountFor`
 * in `plan.ts`), which is what lets the reserve script take it from the part once.
 */
function sameAmount(known: number, amount: number): number {
  if (known !== -1 && known !== amount) throw new Error(`one part charging ${known} and ${amount} to entries of one kind`);
  return amount;
}

/**
 * The distinct counters of one script's entries, numbered from 1 in the order first met: the
 * calls of a turn mostly share theirs (one tenant's key, team and org, one deployment), and each
 * is sent once with its bucket's fields (see `RESERVE_SCRIPT`).
 */
class ScriptCounters {
  readonly keys: string[] = [];
  /** Per counter, the bucket it was first met with, whose kind, limit and window are sent. */
  readonly buckets: Bucket[] = [];
  /** Per counter, the time of the call it was first met in: a budget's period ends after it. */
  readonly nows: number[] = [];
  readonly #indexes = new Map<string, number>();

  /**
   * The counter (1-based) of `bucket`'s entry on `key`. Another bucket on the same key that
   * differs in kind, limit, window or period (buckets reloaded within a turn) gets a counter of
   * its own: the script charges each as its own entry said.
   */
  indexOf(key: string, bucket: Bucket, now: number): number {
    const known = this.#indexes.get(key);
    if (known !== undefined && sameCounterFields(this.buckets[known - 1] as Bucket, bucket)) return known;
    this.keys.push(key);
    this.buckets.push(bucket);
    this.nows.push(now);
    this.#indexes.set(key, this.keys.length);
    return this.keys.length;
  }
}

/**
 * The distinct bucket lists of one script's parts (reserve) or reservations (settle), numbered
 * from 1 in the order first met, each as its counters (`ScriptCounters`' indexes): the calls of
 * a turn mostly share their parts' buckets (one tenant's key, team and org; one deployment), and
 * each list is sent once.
 * A script holds a few lists, and two lists mostly differ in their first counter (counters are
 * numbered as first met), so a part's list is looked up by comparing it with each.
 */
class ScriptLists {
  readonly lists: number[][] = [];
  /** The counters in all lists. */
  counterTotal = 0;

  /** The list (1-based) of a part whose entries' counters are `counters`. */
  indexOf(counters: readonly number[]): number {
    for (let index = 0; index < this.lists.length; index += 1) {
      if (sameNumbers(this.lists[index] as number[], counters)) return index + 1;
    }
    this.lists.push(counters.slice());
    this.counterTotal += counters.length;
    return this.lists.length;
  }
}

/** The arguments `addListArguments` adds. */
function listArgumentCount(lists: ScriptLists): number {
  return 1 + lists.lists.length * FIELDS_PER_LIST + lists.counterTotal;
}

/** A script's lists: their count, then per list its length and its counters (see `RESERVE_SCRIPT`). */
function addListArguments(command: ScriptArguments, lists: ScriptLists): void {
  command.add(lists.lists.length);
  for (const list of lists.lists) {
    command.add(list.length);
    for (const counter of list) command.add(counter);
  }
}

function sameNumbers(first: readonly number[], other: readonly number[]): boolean {
  if (first.length !== other.length) return false;
  for (let index = 0; index < first.length; index += 1) if (first[index] !== other[index]) return false;
  return true;
}

/**
 * A script's arguments with what both scripts begin with filled: the key count, the counter keys,
 * the record keys, the counter count and the batch's size (`LEADING_ARGUMENTS`), sized for
 * `argumentsAfter` more.
 */
function scriptHead({
  counters,
  recordKeys,
  batchSize,
  argumentsAfter,
}: {
  counters: ScriptCounters;
  recordKeys: readonly string[];
  batchSize: number;
  argumentsAfter: number;
}): ScriptArguments {
  const keyCount = counters.keys.length + recordKeys.length;
  const command = new ScriptArguments(1 + keyCount + LEADING_ARGUMENTS + argumentsAfter);
  command.add(keyCount);
  for (const key of counters.keys) command.add(key);
  for (const key of recordKeys) command.add(key);
  command.add(counters.keys.length);
  command.add(batchSize);
  return command;
}

function sameCounterFields(first: Bucket, other: Bucket): boolean {
  if (first === other) return true;
  if (first.kind !== other.kind || first.limit !== other.limit) return false;
  if (first.kind === 'usd') return other.kind === 'usd' && first.period === other.period;
  if (first.kind === 'requests' || first.kind === 'tokens') return (other.kind === 'requests' || other.kind === 'tokens') && first.windowMs === other.windowMs;
  return true;
}

/**
 * A script's command arguments: the script's SHA or text (`defineScript`), the number of keys,
 * the keys, then the arguments, as strings. Filled in order into an array of its final size: a
 * pushed array would grow, and be copied, several times on every call.
 */
class ScriptArguments {
  readonly #values: string[];
  /** The script's own place is the first. */
  #length = 1;

  /** `size`: the number of keys, the keys and the arguments. */
  constructor(size: number) {
    this.#values = new Array<string>(size + 1);
  }

  add(value: string | number): void {
    this.#values[this.#length] = typeof value === 'string' ? value : String(value);
    this.#length += 1;
  }

  /** The arguments after `script`, once filled exactly as sized: the script would misread anything else. */
  withScript(script: string): string[] {
    if (this.#length !== this.#values.length) throw new Error('script arguments out of step with the script');
    this.#values[0] = script;
    return this.#values;
  }
}

/** One counter's fields of the reserve script's ARGV (`RESERVE_FIELDS_PER_COUNTER`). */
function addCounterArguments(command: ScriptArguments, bucket: Bucket, now: number): void {
  command.add(kindCode(bucket));
  command.add(storeLimit(bucket));
  if (bucket.kind === 'usd') command.add(calendarPeriod({ now, period: bucket.period }).endsAt);
  else if (bucket.kind === 'concurrent') command.add(0);
  else command.add(bucket.windowMs);
}

/**
 * A call's result from its part of the reserve script's reply, at `base`. An admitted call whose
 * window entries the script charged in a later sub-window than planned (this clock lags; see
 * `redis-scripts.ts`) has those entries, and their reservation, made anew.
 */
function reserveResult({ request, now, reservations, entryCount }: PendingReserve, reply: readonly number[], base: number): ReserveResult {
  const outcome = reply[base];
  if (outcome === RESERVE_REFUSED) return refusedReply({ reservations, reply, base });
  if (outcome !== RESERVE_ADMITTED && outcome !== RESERVE_ADMITTED_MOVED) throw new Error(`the reserve script answered a call with outcome ${outcome}`);
  const stride = replyPerEntry(outcome);
  // Per entry (`admittedResult`'s layout): its usage before the charge, and when it empties.
  if (resultValues.length < entryCount * 2) resultValues = new Float64Array(entryCount * 4);
  const values = resultValues;
  let index = 0;
  for (let part = 0; part < reservations.length; part += 1) {
    const reservation = reservations[part] as Reservation;
    let moved: ReservedEntry[] | null = null;
    for (let position = 0; position < reservation.entries.length; position += 1) {
      const entry = reservation.entries[position] as ReservedEntry;
      const at = base + REPLY_ENTRIES_OFFSET + index * stride;
      const used = reply[at] as number;
      let chargedSlot = entry.subWindow;
      if (outcome === RESERVE_ADMITTED_MOVED && (entry.bucket.kind === 'requests' || entry.bucket.kind === 'tokens')) {
        chargedSlot = reply[at + 1] as number;
        if (chargedSlot !== entry.subWindow) {
          moved ??= [...reservation.entries];
          moved[position] = { bucket: entry.bucket, amount: entry.amount, slot: String(chargedSlot), subWindow: chargedSlot };
        }
      }
      values[index * 2] = used;
      values[index * 2 + 1] = resetAfterCharge(entry, used, now, chargedSlot);
      index += 1;
    }
    if (moved !== null) reservations[part] = { id: reservation.id, entries: moved, reservedAt: now, tokens: reservation.tokens, usd: reservation.usd };
  }
  return admittedResult(reservations, request.report ?? 'every-bucket', values, 0, 2);
}

/** The numbers per entry in a call's part of the reserve script's reply, by its outcome. */
function replyPerEntry(outcome: number | undefined): number {
  if (outcome === RESERVE_ADMITTED) return RESERVE_REPLY_PER_ADMITTED_ENTRY;
  if (outcome === RESERVE_ADMITTED_MOVED) return RESERVE_REPLY_PER_MOVED_ENTRY;
  return RESERVE_REPLY_PER_REFUSED_ENTRY;
}

/** `reserveResult`'s scratch, filled and read within one call (`admittedResult` copies what it keeps). */
let resultValues = new Float64Array(32);

/** A refused call's result: the refusal, and every bucket's status before anything was charged. */
function refusedReply({ reservations, reply, base }: { reservations: readonly Reservation[]; reply: readonly number[]; base: number }): ReserveResult {
  const evaluations: EntryEvaluation[] = [];
  for (const reservation of reservations) {
    for (const entry of reservation.entries) {
      const offset = base + REPLY_ENTRIES_OFFSET + evaluations.length * RESERVE_REPLY_PER_REFUSED_ENTRY;
      evaluations.push({
        bucket: entry.bucket,
        amount: entry.amount,
        used: reply[offset] ?? 0,
        resetMs: nullIfNegative(reply[offset + 1]),
        retryAfterMs: nullIfNegative(reply[offset + 2]),
      });
    }
  }
  const refusedIndex = reply[base + 1];
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
