/**
 * The Redis limit store sends the finishes (settles, releases) asked for in one event-loop turn
 * as one settle script: these tests count the scripts that reach the client's socket.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Command } from 'ioredis';
import type { RedisLimitStore } from '../src/limits/redis-store.ts';
import { LimitStoreUnavailableError, type Bucket, type Reservation, type ReserveResult } from '../src/limits/types.ts';
import { limitStoreBackends, ManualClock, type StoreHandle } from './helpers/limits-stores.ts';

const backends = await limitStoreBackends({ file: 'finish-batch' });
const found = backends.find((backend) => backend.name === 'redis');
if (found === undefined) throw new Error('no Redis backend among the limit store backends');
const redis = found;

const MINUTE = 60_000;
const LEASE = 120_000;
const BUCKETS: Bucket[] = [
  { kind: 'requests', id: 'key:k:rpm', limit: 1_000, windowMs: MINUTE },
  { kind: 'tokens', id: 'key:k:tpm', limit: 100_000, windowMs: MINUTE },
];

function reservationOf(result: ReserveResult): Reservation {
  assert.ok(result.admitted, 'admitted');
  const [reservation] = result.reservations;
  assert.ok(reservation);
  return reservation;
}

/** Counts the Lua scripts (EVALSHA, or EVAL after a NOSCRIPT) the store's client sends from now on. */
function countScripts(store: RedisLimitStore): { readonly sent: number } {
  const client = store.client;
  const original = client.sendCommand.bind(client);
  const counter = { sent: 0 };
  client.sendCommand = ((command: Command, ...rest: unknown[]) => {
    if (command.name === 'evalsha' || command.name === 'eval') counter.sent += 1;
    return (original as (...args: unknown[]) => unknown)(command, ...rest);
  }) as typeof client.sendCommand;
  return counter;
}

describe('Redis limit store: the finishes of one turn share one settle script', { skip: redis.skip }, () => {
  const handles: StoreHandle[] = [];
  async function open(): Promise<{ handle: StoreHandle; store: RedisLimitStore }> {
    const clock = new ManualClock('2025-01-31T10:00:00.000Z');
    const handle = await redis.open({ now: clock.now });
    handles.push(handle);
    return { handle, store: handle.store as RedisLimitStore };
  }
  async function reserveOne(store: RedisLimitStore, tokens: number): Promise<Reservation> {
    return reservationOf(await store.reserve({ parts: [{ buckets: BUCKETS, tokens, usd: 0 }], leaseMs: LEASE }));
  }
  after(async () => {
    await Promise.all(handles.map((handle) => handle.cleanup()));
  });

  test('settles and releases asked for in one turn go as one script, each answered with its own results', async () => {
    const { store } = await open();
    const [a, b, c] = [await reserveOne(store, 100), await reserveOne(store, 100), await reserveOne(store, 100)];
    const scripts = countScripts(store);
    const results = await Promise.all([
      store.settle(a!, { tokens: 10, usd: 0 }),
      store.settle(b!, { tokens: 20, usd: 0 }),
      store.release(c!),
      // The same reservation again, in the same script: settled once only.
      store.settle(a!, { tokens: 999, usd: 0 }),
      store.finish({ reservations: [], usage: 'release' }),
    ]);
    assert.deepEqual(results, [true, true, true, false, []]);
    assert.equal(scripts.sent, 1, 'one settle script for the turn');

    // Each finish's own usage reached the counters: 10 + 20 tokens, c's request refunded.
    const probe = await store.reserve({ parts: [{ buckets: BUCKETS, tokens: 0, usd: 0 }], leaseMs: LEASE });
    assert.ok(probe.admitted);
    const remaining = (id: string) => probe.statuses.find((status) => status.bucket.id === id)?.remaining;
    assert.equal(remaining('key:k:tpm'), 100_000 - 30);
    assert.equal(remaining('key:k:rpm'), 1_000 - 3);
    assert.equal(scripts.sent, 2, 'the reserve is a script of its own, sent at once');
  });

  test('finishes in different turns go in different scripts', async () => {
    const { store } = await open();
    const [a, b] = [await reserveOne(store, 5), await reserveOne(store, 5)];
    const scripts = countScripts(store);
    assert.equal(await store.settle(a!, { tokens: 1, usd: 0 }), true);
    assert.equal(await store.settle(b!, { tokens: 1, usd: 0 }), true);
    assert.equal(scripts.sent, 2);
  });

  test('a turn with more than 64 reservations to finish sends them in scripts of at most 64', async () => {
    const { store } = await open();
    const reservations: Reservation[] = [];
    for (let index = 0; index < 100; index += 1) reservations.push(await reserveOne(store, 1));
    const scripts = countScripts(store);
    const results = await Promise.all(reservations.map((reservation) => store.settle(reservation, { tokens: 2, usd: 0 })));
    assert.equal(results.filter(Boolean).length, 100);
    assert.equal(scripts.sent, 2, '64, then the other 36 at the end of the turn');
  });

  test("a turn's finishes fail together, as an unavailable store, when Redis cannot be reached", async () => {
    // A replica of its own: the handle's first store stays connected to clean up.
    const store = (await (await open()).handle.sibling()) as RedisLimitStore;
    const [a, b] = [await reserveOne(store, 5), await reserveOne(store, 5)];
    store.client.disconnect();
    const outcomes = await Promise.allSettled([store.settle(a!, { tokens: 1, usd: 0 }), store.release(b!)]);
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 'rejected');
      assert.ok(outcome.status === 'rejected' && outcome.reason instanceof LimitStoreUnavailableError, String(outcome.status === 'rejected' ? outcome.reason : ''));
    }
  });

  test('close sends the finishes still waiting for their turn and waits for their answers', async () => {
    const { handle, store: other } = await open();
    const store = (await handle.sibling()) as RedisLimitStore;
    const a = await reserveOne(store, 5);
    const settled = store.settle(a, { tokens: 1, usd: 0 });
    await store.close();
    assert.equal(await settled, true);
    // Another replica sees it settled: a second settle changes nothing.
    assert.equal(await other.settle(a, { tokens: 1, usd: 0 }), false);
  });
});
