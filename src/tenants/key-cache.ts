/**
 * The in-memory index of virtual keys that keeps the request path off the database. A key is
 * loaded from the store on its first use (once, however many requests arrive together), unknown
 * hashes are remembered briefly, and a poll every ~250 ms picks up revocations and limit changes
 * made by any replica: `updated_at > watermark − overlap` on the three tenant tables.
 *
 * The overlap re-reads recent changes on every poll, because a change can commit after a later
 * one was already seen, and replicas' clocks differ; rows are only reloaded when their
 * `updated_at` differs from the cached one, so re-reading costs one small query.
 *
 * Every wait on the store is bounded (`storeTimeoutMs`): a store that stops answering without an
 * error would otherwise hold a caller's first request, and a hung poll would hold every poll
 * after it (polls run one at a time), so revocations stopped arriving even once the store was back.
 */
import { SeedError } from '../errors.ts';
import type { Store } from '../store/index.ts';
import { withinTime } from '../within-time.ts';
import { credentialByHash, credentialsByKeyId, latestChange, tenantChangesReader, type Credential, type TenantChanges } from './credentials.ts';
import { tenantDatabase, type TenantDb } from './tables.ts';

export interface KeyCacheOptions {
  store: Pick<Store, 'db'>;
  now?: () => number;
  /** How often to look for changes (default 250 ms: revocations reach every replica within ~0.5 s). */
  pollIntervalMs?: number;
  /** How far back each poll re-reads (default 30 s, also the clock skew tolerated between replicas). */
  overlapMs?: number;
  /** How long an unknown key is answered from memory (default 5 s). */
  negativeTtlMs?: number;
  /** Most unknown keys remembered at once; the oldest are forgotten first (default 10 000). */
  maxNegativeEntries?: number;
  /** Store lookups of unknown keys allowed per second, so random keys cannot hammer the store (default 100). */
  storeLookupsPerSecond?: number;
  /**
   * How long a key lookup or a poll waits for the store (default 5 000 ms). A lookup that waits
   * longer is answered `auth_unavailable` (503, retryable); a poll that does is given up, and
   * the next one starts afresh.
   */
  storeTimeoutMs?: number;
  onWarning?: (message: string, detail?: unknown) => void;
}

/** `throttled`: the hash is not cached and the store lookup budget is spent. */
export type CacheResult = Credential | 'unknown' | 'throttled';

export interface KeyCache {
  /** A cached or remembered-unknown key answers at once, without a promise; only a store lookup is awaited. */
  lookup(hash: string): CacheResult | Promise<CacheResult>;
  /** Applies changes now instead of at the next poll (after an admin change on this replica; tests). */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

/** @example const cache = createKeyCache({ store }); const found = await cache.lookup(hashKeySecret(secret)); */
export function createKeyCache(options: KeyCacheOptions): KeyCache {
  const db: TenantDb = tenantDatabase(options.store);
  const changesAfter = tenantChangesReader(db);
  const now = options.now ?? Date.now;
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const overlapMs = options.overlapMs ?? 30_000;
  const negativeTtlMs = options.negativeTtlMs ?? 5_000;
  const maxNegativeEntries = options.maxNegativeEntries ?? 10_000;
  const lookupsPerSecond = options.storeLookupsPerSecond ?? 100;
  const storeTimeoutMs = options.storeTimeoutMs ?? 5_000;

  const known = new Map<string, Credential>();
  /** Unknown hash → when to forget it. Map order is insertion order, so the first entry is the oldest. */
  const unknown = new Map<string, number>();
  const loading = new Map<string, Promise<Credential | null>>();
  let watermark: number | null = null;
  let lookupTokens = lookupsPerSecond;
  let tokensAt = now();
  let warnedAt = -Infinity;
  let unavailableWarnedAt = -Infinity;
  /** Bumped when a poll is given up on, so that its late results are not applied over newer ones. */
  let pollGeneration = 0;
  let polling: Promise<void> | null = null;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;

  function takeLookupToken(): boolean {
    const at = now();
    lookupTokens = Math.min(lookupsPerSecond, lookupTokens + ((at - tokensAt) / 1000) * lookupsPerSecond);
    tokensAt = at;
    if (lookupTokens < 1) {
      if (at - warnedAt > 10_000) {
        warnedAt = at;
        options.onWarning?.('auth: unknown keys arrive faster than the store lookup budget; refusing them unchecked', { lookupsPerSecond });
      }
      return false;
    }
    lookupTokens -= 1;
    return true;
  }

  function rememberUnknown(hash: string): void {
    unknown.delete(hash);
    unknown.set(hash, now() + negativeTtlMs);
    while (unknown.size > maxNegativeEntries) {
      const oldest = unknown.keys().next();
      if (oldest.done) break;
      unknown.delete(oldest.value);
    }
  }

  function fromStore<T>(work: Promise<T>, what: string): Promise<T> {
    return withinTime(work, storeTimeoutMs, () => new Error(`auth: the store did not answer ${what} within ${storeTimeoutMs} ms (auth.storeTimeoutMs)`));
  }

  /** A key not cached, from the store; a store that fails or does not answer is `auth_unavailable`. */
  async function load(hash: string): Promise<Credential | null> {
    let credential: Credential | null;
    try {
      credential = await fromStore(credentialByHash({ db, hash }), 'a key lookup');
    } catch (error) {
      const at = now();
      if (at - unavailableWarnedAt > 10_000) {
        unavailableWarnedAt = at;
        options.onWarning?.('auth: a key could not be looked up in the store; keys not yet cached are refused with auth_unavailable (503)', error);
      }
      throw new SeedError('auth_unavailable', 'Seed cannot check this API key right now: its store is not answering. Try again shortly.');
    }
    if (credential) known.set(hash, credential);
    else rememberUnknown(hash);
    return credential;
  }

  async function apply(changes: TenantChanges, current: () => boolean): Promise<void> {
    const stale = new Set<string>();
    const changedTeams = new Map(changes.teams.map((team) => [team.id, team.updatedAt]));
    const changedOrgs = new Map(changes.orgs.map((org) => [org.id, org.updatedAt]));
    for (const key of changes.keys) {
      unknown.delete(key.hash);
      const cached = known.get(key.hash);
      if (cached && cached.versions.key !== key.updatedAt) stale.add(cached.caller.keyId);
    }
    for (const cached of known.values()) {
      const team = changedTeams.get(cached.caller.teamId);
      const org = changedOrgs.get(cached.caller.orgId);
      if ((team !== undefined && team !== cached.versions.team) || (org !== undefined && org !== cached.versions.org)) {
        stale.add(cached.caller.keyId);
      }
    }
    if (stale.size === 0) return;
    const fresh = await credentialsByKeyId({ db, keyIds: [...stale] });
    if (!current()) return;
    for (const [hash, cached] of known) if (stale.has(cached.caller.keyId)) known.delete(hash);
    for (const credential of fresh) known.set(credential.hash, credential);
  }

  /** Reads and applies the changes since the watermark; once `current()` is false (given up on), changes nothing. */
  async function pollOnce(current: () => boolean): Promise<void> {
    const since = watermark ?? (await latestChange({ db }));
    if (!current()) return;
    watermark ??= since;
    const changes = await changesAfter(watermark - overlapMs);
    if (!current()) return;
    await apply(changes, current);
    if (!current()) return;
    const newest = [...changes.keys, ...changes.teams, ...changes.orgs].reduce((latest, row) => Math.max(latest, row.updatedAt), watermark);
    watermark = Math.max(watermark, newest);
  }

  async function boundedPoll(): Promise<void> {
    const generation = pollGeneration;
    try {
      await fromStore(
        pollOnce(() => generation === pollGeneration),
        'a poll for key changes',
      );
    } catch (error) {
      // A poll that failed or was given up on must not change the cache if it finishes later.
      pollGeneration += 1;
      throw error;
    }
  }

  function refresh(): Promise<void> {
    // One poll at a time; a refresh during a poll waits for it and then polls again.
    const run = async () => {
      await polling?.catch(() => undefined);
      await boundedPoll();
    };
    const current = run();
    polling = current;
    return current;
  }

  function schedule(): void {
    if (closed) return;
    timer = setTimeout(() => {
      refresh()
        .catch((error: unknown) => options.onWarning?.('auth: polling the store for key changes failed; serving cached keys', error))
        .finally(schedule);
    }, pollIntervalMs);
    // The poll must not keep a finished process (a CLI, a test) alive.
    timer.unref();
  }
  schedule();

  return {
    lookup(hash) {
      const cached = known.get(hash);
      if (cached) return cached;
      const forgetAt = unknown.get(hash);
      if (forgetAt !== undefined) {
        if (forgetAt > now()) return 'unknown';
        unknown.delete(hash);
      }
      let pending = loading.get(hash);
      if (!pending) {
        if (!takeLookupToken()) return 'throttled';
        pending = load(hash).finally(() => loading.delete(hash));
        loading.set(hash, pending);
      }
      return pending.then((found) => found ?? 'unknown');
    },
    refresh,
    async close() {
      closed = true;
      clearTimeout(timer);
      await polling?.catch(() => undefined);
    },
  };
}
