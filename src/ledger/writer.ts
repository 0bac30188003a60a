/**
 * The ledger writer: the `CallSink` the gateway records every call into. `record` appends the
 * call to the journal (one `write` per turn of the event loop, which the answer waits for, so a
 * killed process loses nothing it answered) and pushes it
 * onto a bounded in-memory queue; a background flusher writes batches to the store. When the
 * store fails, batches go to the spill directory (fsync'd JSON lines) and are replayed, with
 * backoff, once the store answers again — and at the next start if the process died first.
 * Replays are harmless because the store skips call ids it already has.
 */
import type { CallRecord, CallSink } from './types.ts';
import { SpillDirectory } from './spill.ts';
import { Backoff } from './backoff.ts';
import type { CallJournal } from './journal.ts';
import { withinTime } from '../within-time.ts';

/** The part of the store the writer needs (a `Store` fits; tests can wrap one to inject failures). */
export interface CallStoreWriter {
  insertCalls(records: readonly CallRecord[]): Promise<unknown>;
  /**
   * Whether an insert's error says the store refused the data (a value it cannot store, a
   * constraint) rather than that it is unavailable. With it, such a batch is split until the
   * rows refused are found (see `rejected`); without it, every failure counts as an outage and
   * the batch is spilled and replayed whole.
   */
  refusesData?(error: unknown): boolean;
}

export interface LedgerWriterOptions {
  store: CallStoreWriter;
  /** Where spill files go (default `./data/spill`). One writer per directory. */
  spillDirectory?: string;
  /** Records per store write (default 500). */
  batchSize?: number;
  /** Longest a record waits in memory before a write starts (default 50 ms). */
  flushIntervalMs?: number;
  /** In-memory queue bound; beyond it calls go straight to the spill directory (default 10 000). */
  queueCapacity?: number;
  /** First wait before retrying the store after a failure; doubles up to `retryMaxMs` (default 500). */
  retryInitialMs?: number;
  /** Longest wait between retries (default 30 000). */
  retryMaxMs?: number;
  /**
   * Longest a store write may take before it counts as failed, its calls spilled and replayed
   * later (default 10 000). A store that stops answering without an error (a partition that
   * drops packets) is otherwise heard from only when TCP gives up, ~15 minutes on Linux.
   */
  writeTimeoutMs?: number;
  /**
   * Whether each call is appended to the journal as it is recorded (default true), so a process
   * killed without warning loses none of the calls it answered (see `CallJournal`); `false`
   * saves that `write` per turn and loses the calls of the last `flushIntervalMs` on a kill.
   */
  journal?: boolean;
  /** Size at which a journal segment is closed and a new one begun (default 4 MiB). */
  journalSegmentBytes?: number;
  /** Told about every failure (store write, replay, spill); the writer itself never throws at callers. */
  onError?: (error: unknown, context: { operation: 'write' | 'replay' | 'spill' | 'reject' | 'corrupt' | 'journal' }) => void;
}

/** Counters for metrics. All but `queued` only grow. */
export interface LedgerWriterStats {
  /** Calls waiting in memory right now. */
  queued: number;
  /** Calls handed to `record`. */
  recorded: number;
  /** Calls written to the store by the flusher. */
  written: number;
  /** Calls written to the spill directory (store failure or full queue). */
  spilled: number;
  /** Of those, calls spilled because the in-memory queue was full. */
  overflowed: number;
  /** Calls read back from spill files and accepted by the store (counted again if a replay is interrupted and redone). */
  replayed: number;
  /** Store writes that failed (their calls were spilled). */
  failedBatches: number;
  /** Replay attempts that failed (the spill files were kept). */
  failedReplays: number;
  /** Spill appends that failed (their calls went back to the queue). */
  failedSpills: number;
  /** Unreadable lines skipped in spill files. */
  corruptLines: number;
  /** Calls whose journal write failed (each was still queued for the store, but a kill would lose it). */
  failedJournalWrites: number;
  /**
   * Calls the store refused alone while it took the others of their batch (a value it cannot
   * store): kept in the spill directory's `rejected.jsonl`, never replayed, each one reported.
   */
  rejected: number;
  /** Whether the last store write or replay succeeded. */
  storeHealthy: boolean;
  /** Calls in the journal not yet stored or spilled, right now (0 without a journal). */
  journaled: number;
}

type Counters = Omit<LedgerWriterStats, 'queued' | 'storeHealthy' | 'journaled'>;

export class LedgerWriter implements CallSink {
  readonly #store: CallStoreWriter;
  readonly #spill: SpillDirectory;
  readonly #batchSize: number;
  readonly #flushIntervalMs: number;
  readonly #queueCapacity: number;
  readonly #backoff: Backoff;
  readonly #writeTimeoutMs: number;
  readonly #onError: NonNullable<LedgerWriterOptions['onError']>;
  readonly #journal: CallJournal | null;
  /** Whether the last journal append failed: a streak of failures is reported once. */
  #journalFailing = false;
  #queue: CallRecord[] = [];
  /** Calls over capacity, waiting for the (async) spill append. */
  #overflow: CallRecord[] = [];
  #overflowWrite: Promise<void> | null = null;
  /** The batch (or overflow) being written: out of the queue, not yet known to be stored. */
  #batchInFlight: CallRecord[] | null = null;
  #overflowInFlight: CallRecord[] | null = null;
  #draining: Promise<void> | null = null;
  #replaying: Promise<void> | null = null;
  #flushTimer: NodeJS.Timeout | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #storeHealthy = true;
  #closed = false;
  #closing: Promise<void> | null = null;
  #counters: Counters = {
    recorded: 0,
    written: 0,
    spilled: 0,
    overflowed: 0,
    replayed: 0,
    failedBatches: 0,
    failedReplays: 0,
    failedSpills: 0,
    corruptLines: 0,
    failedJournalWrites: 0,
    rejected: 0,
  };

  private constructor({ options, spill }: { options: LedgerWriterOptions; spill: SpillDirectory }) {
    this.#store = options.store;
    this.#spill = spill;
    this.#batchSize = options.batchSize ?? 500;
    this.#flushIntervalMs = options.flushIntervalMs ?? 50;
    this.#queueCapacity = options.queueCapacity ?? 10_000;
    this.#backoff = new Backoff({ initialMs: options.retryInitialMs ?? 500, maxMs: options.retryMaxMs ?? 30_000 });
    this.#writeTimeoutMs = options.writeTimeoutMs ?? 10_000;
    this.#onError = options.onError ?? (() => {});
    this.#journal =
      options.journal === false
        ? null
        : spill.journal({ segmentBytes: options.journalSegmentBytes, onWritten: (records, error) => this.#journalWritten(records, error) });
  }

  /**
   * Opens the spill directory (locking it) and starts replaying calls a previous run left there.
   *
   * @example
   * const writer = await LedgerWriter.open({ store });
   * gateway.onCall((call) => writer.record(call));
   * // at shutdown
   * await writer.close();
   */
  static async open(options: LedgerWriterOptions): Promise<LedgerWriter> {
    const spill = await SpillDirectory.open({ directory: options.spillDirectory ?? './data/spill' });
    const writer = new LedgerWriter({ options, spill });
    if (spill.hasRecords) void writer.#replay();
    return writer;
  }

  /**
   * Journals and queues `call` and returns at once; never throws, never drops. With the journal,
   * returns the promise of the journal's write of this turn's calls: hold the end of the answer
   * until it settles (it never rejects), and a killed process has journaled every call it answered.
   */
  record(call: CallRecord): Promise<void> | undefined {
    this.#counters.recorded += 1;
    if (this.#closed) {
      this.#spillSync([call]);
      return undefined;
    }
    const journaled = this.#journal === null ? undefined : this.#journalAppend(this.#journal, call);
    if (this.#queue.length >= this.#queueCapacity) {
      this.#counters.overflowed += 1;
      this.#overflow.push(call);
      this.#overflowWrite ??= this.#writeOverflow();
      return journaled;
    }
    this.#queue.push(call);
    if (this.#queue.length >= this.#batchSize) this.#scheduleDrain(0);
    else this.#scheduleDrain(this.#flushIntervalMs);
    return journaled;
  }

  /** Writes everything recorded so far to the store, or to the spill directory when the store fails; then tries a replay if spill files exist. */
  async flush(): Promise<void> {
    await this.#overflowWrite;
    // A drain the timer started stops at a partial batch: wait for it, then write everything.
    while (this.#draining !== null) await this.#draining;
    await this.#drain({ everything: true });
    await this.#replaying;
    if (this.#spill.hasRecords) await this.#replay();
  }

  /** Flushes, stops the timers and releases the spill directory. Calls recorded afterwards are spilled synchronously. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.flush();
      this.#stop();
      await this.#draining;
      await this.#overflowWrite;
      await this.#replaying;
      // Anything recorded while the final flush was running stays durable for the next start.
      const leftovers = this.#takeWaiting();
      if (leftovers.length > 0) this.#spillSync(leftovers);
      this.#journal?.close();
      await this.#spill.close();
    })();
    return this.#closing;
  }

  /**
   * For a process about to exit without `close` (a second signal, a fatal error, a shutdown that
   * hung): writes every call not known to be stored, synchronously, to the spill directory, the
   * next start replays it. That is the queue, the calls over capacity, and the batch whose store
   * write or spill has not returned: it may have committed, but inserts skip the ids already
   * stored, so replaying it is harmless. Calls recorded afterwards are spilled as they come.
   * Returns how many calls it wrote (those it could not are reported through `onError`).
   */
  abandon(): number {
    this.#stop();
    const unsettled = [...(this.#batchInFlight ?? []), ...(this.#overflowInFlight ?? []), ...this.#takeWaiting()];
    this.#batchInFlight = null;
    this.#overflowInFlight = null;
    const before = this.#counters.spilled;
    if (unsettled.length > 0) this.#spillSync(unsettled);
    // What the spill could not take stays in the journal's segments, for the next start.
    this.#journal?.close();
    return this.#counters.spilled - before;
  }

  /** No more writes from here on: calls recorded later are spilled as they come; the timers stop. */
  #stop(): void {
    this.#closed = true;
    if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
  }

  /** Takes the calls waiting in memory: the queue and those over its capacity. */
  #takeWaiting(): CallRecord[] {
    return [...this.#queue.splice(0), ...this.#overflow.splice(0)];
  }

  /**
   * Journal segments a process that did not close left in the spill directory (it was killed, or
   * the machine stopped), found when this writer opened and replayed with the spill files.
   */
  get adoptedJournalSegments(): number {
    return this.#spill.adoptedJournalSegments;
  }

  /** Counters for metrics. */
  stats(): LedgerWriterStats {
    return {
      ...this.#counters,
      queued: this.#queue.length + this.#overflow.length,
      storeHealthy: this.#storeHealthy,
      journaled: this.#journal?.unsettled ?? 0,
    };
  }

  #journalAppend(journal: CallJournal, call: CallRecord): Promise<void> | undefined {
    try {
      return journal.append(call);
    } catch (error) {
      this.#journalWritten(1, error);
      return undefined;
    }
  }

  /** A journal write's outcome: failures are counted by call, and a streak of them reported once. */
  #journalWritten(records: number, error: unknown): void {
    if (error === null) {
      this.#journalFailing = false;
      return;
    }
    this.#counters.failedJournalWrites += records;
    if (!this.#journalFailing) this.#onError(error, { operation: 'journal' });
    this.#journalFailing = true;
  }

  /** `records` are stored, spilled or kept as refused: their journal lines are no longer needed. */
  #settled(records: readonly CallRecord[]): void {
    if (this.#journal === null) return;
    try {
      this.#journal.settle(records);
    } catch (error) {
      // A segment that could not be deleted stays, and is replayed (harmlessly) at the next start.
      this.#onError(error, { operation: 'journal' });
    }
  }

  #scheduleDrain(delayMs: number): void {
    if (this.#draining !== null) return;
    if (this.#flushTimer !== null) {
      if (delayMs > 0) return;
      clearTimeout(this.#flushTimer);
    }
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = null;
      void this.#drain();
    }, delayMs);
    this.#flushTimer.unref();
  }

  /**
   * Writes the queue out in batches; one drain at a time. After the first batch it goes on only
   * while a whole batch is waiting (or with `everything`, as `flush` asks): the calls recorded
   * while a batch was being written wait for the next flush interval and go with the ones after
   * them. Going on with whatever had arrived made every commit small under load: at 4 000 calls/s
   * and 3 ms per write, batches of 12 calls (318 commits a second) where the interval allows
   * ~200, and a SQLite commit writes every B-tree page it touched (the table's last page and each
   * index's) however few rows it holds (docs/benchmark-log.md, 2026-12-05 (16:14–)).
   */
  #drain(options: { everything?: boolean } = {}): Promise<void> {
    // With nothing queued the body below would finish synchronously, clearing `#draining`
    // before `??=` assigns it: the stale promise would then block every later drain.
    if (this.#draining === null && this.#queue.length === 0) return Promise.resolve();
    this.#draining ??= (async () => {
      try {
        while (this.#queue.length > 0) {
          const batch = this.#queue.splice(0, this.#batchSize);
          if (!(await this.#writeBatch(batch))) break;
          if (!options.everything && this.#queue.length < this.#batchSize) break;
        }
      } finally {
        this.#draining = null;
      }
      // Calls recorded while the last batch was in flight.
      if (this.#queue.length > 0 && !this.#closed) this.#scheduleDrain(this.#flushIntervalMs);
    })();
    return this.#draining;
  }

  /** Stores or spills `batch`; false when even the spill failed (the batch is back in the queue). */
  async #writeBatch(batch: CallRecord[]): Promise<boolean> {
    this.#batchInFlight = batch;
    try {
      return await this.#storeOrSpill(batch);
    } finally {
      this.#batchInFlight = null;
    }
  }

  async #storeOrSpill(batch: CallRecord[]): Promise<boolean> {
    if (this.#storeHealthy) {
      try {
        this.#counters.written += batch.length - (await this.#insert(batch));
        this.#settled(batch);
        // Calls spilled while healthy (queue overflow) go back to the store without waiting for a failure.
        if (this.#spill.hasRecords && this.#replaying === null) void this.#replay();
        return true;
      } catch (error) {
        this.#counters.failedBatches += 1;
        this.#onError(error, { operation: 'write' });
        this.#markUnhealthy();
      }
    }
    try {
      await this.#spill.append(batch);
      this.#counters.spilled += batch.length;
      this.#settled(batch);
      return true;
    } catch (error) {
      this.#counters.failedSpills += 1;
      this.#onError(error, { operation: 'spill' });
      this.#queue.unshift(...batch);
      return false;
    }
  }

  async #writeOverflow(): Promise<void> {
    // Let a burst accumulate within this tick so it becomes one append and one fsync.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      while (this.#overflow.length > 0) {
        const records = this.#overflow;
        this.#overflow = [];
        this.#overflowInFlight = records;
        try {
          await this.#spill.append(records);
          this.#counters.spilled += records.length;
          this.#settled(records);
        } catch (error) {
          this.#counters.failedSpills += 1;
          this.#onError(error, { operation: 'spill' });
          // Never drop: past capacity, but memory is the only place left.
          this.#queue.push(...records);
          this.#scheduleDrain(this.#flushIntervalMs);
        } finally {
          this.#overflowInFlight = null;
        }
      }
    } finally {
      this.#overflowWrite = null;
    }
  }

  #spillSync(records: CallRecord[]): void {
    try {
      this.#spill.appendSync(records);
      this.#counters.spilled += records.length;
      this.#settled(records);
    } catch (error) {
      this.#counters.failedSpills += 1;
      this.#onError(error, { operation: 'spill' });
      // Nowhere durable left: keep them reachable from memory rather than lose them silently.
      this.#queue.push(...records);
    }
  }

  #markUnhealthy(): void {
    this.#storeHealthy = false;
    if (this.#retryTimer !== null || this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.#replay();
    }, this.#backoff.next());
    this.#retryTimer.unref();
  }

  /**
   * Moves every spill file into the store; deletes each file only after all its calls are stored.
   * Until the first pass ends the store counts as unhealthy, so calls recorded meanwhile are
   * spilled to a new file; once it has ended they go straight to the store, and further passes
   * take what was spilled in between, until one finds nothing. (With a single pass, the last calls
   * of a burst that ended during the replay stayed on disk until the next call or shutdown.)
   */
  #replay(): Promise<void> {
    this.#replaying ??= (async () => {
      try {
        do {
          await this.#replayPass();
          this.#storeHealthy = true;
          this.#backoff.reset();
        } while (this.#spill.hasRecords);
      } catch (error) {
        this.#counters.failedReplays += 1;
        this.#onError(error, { operation: 'replay' });
        this.#markUnhealthy();
      } finally {
        this.#replaying = null;
      }
    })();
    return this.#replaying;
  }

  /**
   * Inserts `records`, returning how many the store refused. A failed insert is an outage (it
   * throws, and the caller spills or keeps the batch) unless the store says it refused the data:
   * then some row is one it cannot take, which would fail every retry of its batch and, replayed
   * forever, keep the store marked unhealthy, so every later call went to disk instead of the
   * ledger. The batch is halved until the refused rows are alone; they go to `rejected.jsonl` and
   * the rest is stored. Inserts are idempotent (ids already stored are skipped), so halves stored
   * before an outage interrupts the search are harmless when the whole batch is replayed.
   */
  async #insert(records: readonly CallRecord[]): Promise<number> {
    try {
      await this.#withinTimeout(this.#store.insertCalls(records), records.length);
      return 0;
    } catch (error) {
      if (this.#store.refusesData?.(error) !== true) throw error;
      if (records.length === 1) {
        await this.#spill.reject(records);
        this.#counters.rejected += 1;
        this.#onError(error, { operation: 'reject' });
        return 1;
      }
      const middle = records.length >>> 1;
      return (await this.#insert(records.slice(0, middle))) + (await this.#insert(records.slice(middle)));
    }
  }

  /**
   * `write`, failing after `writeTimeoutMs`. Without the bound, a store that stopped answering
   * held this batch, and every call behind it, in memory until TCP gave up, and a replay that hung
   * kept every later one waiting. The write may still complete after it was given up on: its
   * calls are then stored, and their replay skips them.
   */
  #withinTimeout(write: Promise<unknown>, calls: number): Promise<unknown> {
    return withinTime(
      write,
      this.#writeTimeoutMs,
      () => new Error(`the store did not answer a write of ${calls} call(s) within ${this.#writeTimeoutMs} ms (ledger.writeTimeoutMs)`),
    );
  }

  /** Replays the spill files there are now (sealing the one being appended to). */
  async #replayPass(): Promise<void> {
    const files = await this.#spill.seal();
    for (const file of files) {
      const report = await this.#spill.read({
        file,
        batchSize: this.#batchSize,
        onBatch: async (records) => {
          this.#counters.replayed += records.length - (await this.#insert(records));
        },
      });
      this.#counters.corruptLines += report.corruptLines;
      if (report.corruptLines > 0) {
        // The file goes once replayed: this report is all that is left of what it could not read.
        const lines = report.corruptLines === 1 ? 'line' : 'lines';
        this.#onError(new Error(`${file}: ${report.corruptLines} unreadable ${lines} skipped; their calls are not in the ledger`), { operation: 'corrupt' });
      }
      await this.#spill.remove({ file });
    }
  }
}
