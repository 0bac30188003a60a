/**
 * The Redis limit store sends the reserves asked for in one event-loop turn as one reserve
 * script, and the finishes (settles, releases) as one settle script: these tests count the
 * scripts that reach the client's socket, and check that each request still gets its own answer,
 * as if it had gone alone.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Command } from 'ioredis';
import type { RedisLimitStore } from '../src/limits/redis-store.ts';
import { LimitStoreUnavailableError, type Bucket, type Reservation, type ReserveResult } from '../src/limits/types.ts';
import { limitStoreBackends, ManualClock, remainingOf, type StoreHandle } from './helpers/limits-stores.ts';

const backends = await limitStoreBackends({ file: 'turn-batch' });
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

/** A store on a fresh key prefix with a manual clock, kept in `handles` for cleaning up. */
async function openStore(
  handles: StoreHandle[],
  start = '2025-01-31T10:00:00.000Z',
): Promise<{ handle: StoreHandle; store: RedisLimitStore; clock: ManualClock }> {
  const clock = new ManualClock(start);
  const handle = await redis.open({ now: clock.now });
  handles.push(handle);
  return { handle, store: handle.store as RedisLimitStore, clock };
}

describe('Redis limit store: the finishes of one turn share one settle script', { skip: redis.skip }, () => {
  const handles: StoreHandle[] = [];
  const open = () => openStore(handles);
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
    assert.equal(remainingOf(probe, 'key:k:tpm'), 100_000 - 30);
    assert.equal(remainingOf(probe, 'key:k:rpm'), 1_000 - 3);
    assert.equal(scripts.sent, 2, 'the reserve, alone in its turn, is a script of its own');
  });

  test('finishes in different turns go in different scripts', async () => {
    const { store } = await open();
    const [a, b] = [await reserveOne(store, 5), await reserveOne(store, 5)];
    const scripts = countScripts(store);
    assert.equal(await store.settle(a!, { tokens: 1, usd: 0 }), true);
    assert.equal(await store.settle(b!, { tokens: 1, usd: 0 }), true);
    assert.equal(scripts.sent, 2);
  });

  test("finishes of one turn on one counter add up, in one sub-window or in several, and a budget's too", async () => {
    // The settle script reads each counter once and writes it back once at its end: each
    // finish must still land in its own sub-window, and one that aged out in none.
    const { store, clock } = await open();
    const buckets: Bucket[] = [
      { kind: 'tokens', id: 'key:f:tpm', limit: 100_000, windowMs: MINUTE },
      { kind: 'usd', id: 'key:f:usd', limit: 100, period: 'day' },
    ];
    const reserve = async () => reservationOf(await store.reserve({ parts: [{ buckets, tokens: 100, usd: 1 }], leaseMs: LEASE }));
    const early = await reserve();
    const alsoEarly = await reserve();
    clock.advance(1_000); // two sub-windows of 500 ms later
    const late = await reserve();
    const scripts = countScripts(store);
    const settled = await Promise.all([
      store.settle(early, { tokens: 10, usd: 0.1 }),
      store.settle(alsoEarly, { tokens: 20, usd: 0.2 }),
      store.settle(late, { tokens: 40, usd: 0.4 }),
    ]);
    assert.deepEqual(settled, [true, true, true]);
    assert.equal(scripts.sent, 1);
    const probe = async () => {
      const result = await store.reserve({ parts: [{ buckets, tokens: 0, usd: 0 }], leaseMs: LEASE });
      assert.ok(result.admitted);
      return result.statuses.map((status) => status.limit - status.remaining);
    };
    const [tokens, usd] = await probe();
    assert.equal(tokens, 70, '10 + 20 + 40 tokens');
    assert.ok(Math.abs((usd ?? 0) - 0.7) < 1e-9, `$0.70 spent, got ${usd}`);
    // A minute on, the early sub-window has aged out and the late one has not.
    clock.advance(MINUTE - 400);
    const [tokensLater] = await probe();
    assert.equal(tokensLater, 40);
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

describe('Redis limit store: the reserves of one turn share one reserve script', { skip: redis.skip }, () => {
  const handles: StoreHandle[] = [];
  const open = () => openStore(handles);
  const TIGHT: Bucket[] = [
    { kind: 'requests', id: 'key:t:rpm', limit: 2, windowMs: MINUTE },
    { kind: 'tokens', id: 'key:t:tpm', limit: 100, windowMs: MINUTE },
  ];
  /** A reserve of `buckets` alone, for no tokens. */
  function reserveOn(store: RedisLimitStore, buckets: Bucket[]): Promise<ReserveResult> {
    return store.reserve({ parts: [{ buckets, tokens: 0, usd: 0 }], leaseMs: LEASE });
  }
  function reserveTight(store: RedisLimitStore, tokens: number): Promise<ReserveResult> {
    return store.reserve({ parts: [{ buckets: TIGHT, tokens, usd: 0 }], leaseMs: LEASE });
  }
  after(async () => {
    await Promise.all(handles.map((handle) => handle.cleanup()));
  });

  test('each reserve of a turn sees the ones before it, and a refused one charges nothing', async () => {
    const { store } = await open();
    const scripts = countScripts(store);
    // 80 fits; 50 does not fit after it; 20 does, since the refused 50 was not charged; the
    // fourth fits the tokens but would be the third request of a limit of 2.
    const results = await Promise.all([reserveTight(store, 80), reserveTight(store, 50), reserveTight(store, 20), reserveTight(store, 0)]);
    assert.equal(scripts.sent, 1, 'one reserve script for the turn');
    assert.deepEqual(
      results.map((result) => result.admitted),
      [true, false, true, false],
    );
    const [, tokensRefused, , requestsRefused] = results;
    assert.ok(tokensRefused && !tokensRefused.admitted && requestsRefused && !requestsRefused.admitted);
    assert.equal(tokensRefused.refusal.bucket.id, 'key:t:tpm');
    assert.equal(tokensRefused.refusal.remaining, 20, 'the second saw only the first');
    assert.equal(requestsRefused.refusal.bucket.id, 'key:t:rpm');
    assert.equal(requestsRefused.refusal.remaining, 0, 'the fourth saw the two admitted');
    const tokensSeen = requestsRefused.statuses.find((status) => status.bucket.id === 'key:t:tpm');
    assert.equal(tokensSeen?.remaining, 0, 'the fourth saw 80 + 20 tokens taken, not the refused 50');

    // Each admitted call holds its own reservation: releasing the first frees its 80 tokens.
    const first = reservationOf(results[0]!);
    assert.notEqual(first.id, reservationOf(results[2]!).id);
    assert.equal(await store.release(first), true);
    const after = await reserveTight(store, 80);
    assert.ok(after.admitted, 'the released 80 tokens are free again');
  });

  test('calls of one turn with buckets of their own charge their own counters and hold their own records', async () => {
    const { store } = await open();
    const only = (name: string): Bucket[] => [{ kind: 'requests', id: `key:${name}:rpm`, limit: 1, windowMs: MINUTE }];
    const reserveOnly = (name: string) => reserveOn(store, only(name));
    const scripts = countScripts(store);
    const first = await Promise.all([reserveOnly('a'), reserveOnly('b'), reserveOnly('c')]);
    assert.equal(scripts.sent, 1);
    assert.deepEqual(first.map((result) => result.admitted), [true, true, true], 'each had its own limit of 1');
    const again = await Promise.all([reserveOnly('a'), reserveOnly('b'), reserveOnly('c')]);
    assert.deepEqual(again.map((result) => result.admitted), [false, false, false], 'each spent its own limit');
    // Each reservation's record is its own: each releases once, and frees its own bucket.
    assert.deepEqual(await Promise.all(first.map((result) => store.release(reservationOf(result)))), [true, true, true]);
    assert.deepEqual((await Promise.all([reserveOnly('b')])).map((result) => result.admitted), [true]);
  });

  test("calls of one turn on the same buckets charge each its own estimates, each part its own", async () => {
    // The script carries a list of buckets once for all the parts on it, and each part's tokens
    // and dollars: each entry must still charge its own part's amount. The lists are separate
    // arrays of the same buckets, as two limiters on one Redis would hold.
    const { store } = await open();
    const caller = (): Bucket[] => [
      { kind: 'requests', id: 'key:e:rpm', limit: 100, windowMs: MINUTE },
      { kind: 'tokens', id: 'key:e:tpm', limit: 1_000, windowMs: MINUTE },
      { kind: 'usd', id: 'key:e:usd-day', limit: 10, period: 'day' },
      { kind: 'concurrent', id: 'key:e:concurrent', limit: 10 },
    ];
    const deployment = (): Bucket[] => [
      { kind: 'requests', id: 'deployment:e:rpm', limit: 100, windowMs: MINUTE },
      { kind: 'tokens', id: 'deployment:e:tpm', limit: 1_000, windowMs: MINUTE },
    ];
    const reserve = (tokens: number, usd: number, deploymentTokens: number) =>
      store.reserve({
        parts: [
          { buckets: caller(), tokens, usd },
          { buckets: deployment(), tokens: deploymentTokens, usd: 0 },
        ],
        leaseMs: LEASE,
        report: 'every-bucket',
      });
    const scripts = countScripts(store);
    const [first, second] = await Promise.all([reserve(100, 0.1, 40), reserve(300.2, 0.3, 70)]);
    assert.equal(scripts.sent, 1, 'one reserve script for the turn');
    assert.ok(first?.admitted && second?.admitted);
    assert.deepEqual(
      ['key:e:rpm', 'key:e:tpm', 'key:e:usd-day', 'key:e:concurrent', 'deployment:e:rpm', 'deployment:e:tpm'].map((id) => remainingOf(second, id)),
      [98, 1_000 - 100 - 301, 10 - 0.1 - 0.3, 8, 98, 1_000 - 40 - 70],
      'the second saw the first charge its own amounts, and charged its own (tokens rounded up)',
    );
    const [amounts] = await Promise.all([reserve(0, 0, 0)]);
    assert.ok(amounts?.admitted);
    assert.equal(remainingOf(amounts, 'key:e:tpm'), 599);
    assert.equal(remainingOf(amounts, 'deployment:e:tpm'), 890);
  });

  test('calls of one turn on one counter key with different limits are each checked against their own', async () => {
    // The same bucket made again with another limit (as a reload does): one key, two limits. The
    // script carries each distinct counter once, so the two must not be taken for one counter.
    const { store } = await open();
    const loose: Bucket[] = [{ kind: 'requests', id: 'key:s:rpm', limit: 10, windowMs: MINUTE }];
    const strict: Bucket[] = [{ kind: 'requests', id: 'key:s:rpm', limit: 1, windowMs: MINUTE }];
    assert.ok((await reserveOn(store, loose)).admitted);
    const scripts = countScripts(store);
    const results = await Promise.all([reserveOn(store, strict), reserveOn(store, loose), reserveOn(store, strict)]);
    assert.equal(scripts.sent, 1);
    assert.deepEqual(
      results.map((result) => result.admitted),
      [false, true, false],
      'the limit of 1 is spent, the limit of 10 is not',
    );
    const [refused] = results;
    assert.ok(refused && !refused.admitted);
    assert.equal(refused.refusal.limit, 1);
  });

  test('counters on one key with different limits see what the turn charged through either', async () => {
    // The script keeps one state per key, however many counters name it: a call through one
    // bucket must see the charge another call made through the other.
    const { store } = await open();
    const loose: Bucket[] = [{ kind: 'requests', id: 'key:h:rpm', limit: 10, windowMs: MINUTE }];
    const two: Bucket[] = [{ kind: 'requests', id: 'key:h:rpm', limit: 2, windowMs: MINUTE }];
    assert.ok((await reserveOn(store, loose)).admitted);
    const scripts = countScripts(store);
    const results = await Promise.all([reserveOn(store, loose), reserveOn(store, two)]);
    assert.equal(scripts.sent, 1);
    assert.deepEqual(
      results.map((result) => result.admitted),
      [true, false],
      'the limit of 2 sees the two requests charged through the limit of 10',
    );
  });

  test("calls of one turn on either side of midnight charge each its own day's budget", async () => {
    const { store, clock } = await openStore(handles, '2025-01-31T23:59:59.990Z');
    const budget: Bucket[] = [{ kind: 'usd', id: 'key:d:usd', limit: 1, period: 'day' }];
    const reserveUsd = () => store.reserve({ parts: [{ buckets: budget, tokens: 0, usd: 0.6 }], leaseMs: LEASE });
    const scripts = countScripts(store);
    const beforeMidnight = reserveUsd();
    clock.advance(20);
    const afterMidnight = reserveUsd();
    const results = await Promise.all([beforeMidnight, afterMidnight, reserveUsd()]);
    assert.equal(scripts.sent, 1);
    // $0.60 on the 31st and $0.60 on the 1st fit; a second $0.60 on the 1st does not.
    assert.deepEqual(
      results.map((result) => result.admitted),
      [true, true, false],
    );
    const [first, second, third] = results;
    assert.ok(first?.admitted && second?.admitted && third && !third.admitted);
    assert.equal(first.statuses[0]?.resetMs, 10, "the 31st's budget resets at its own midnight");
    assert.equal(second.statuses[0]?.resetMs, 24 * 60 * 60 * 1000 - 10, "the 1st's at the next");
    assert.equal(third.refusal.retryAfterMs, 24 * 60 * 60 * 1000 - 10);
  });

  test('a call of a turn in a later sub-window sees the charges of the calls before it', async () => {
    // The reserve script charges what it has read in place and writes it back at its end; a call
    // in another sub-window reads the window again, which must first hold the earlier charges.
    const { store, clock } = await open();
    const results: Promise<ReserveResult>[] = [reserveTight(store, 10)];
    clock.advance(600);
    results.push(reserveTight(store, 10), reserveTight(store, 10));
    const scripts = countScripts(store);
    assert.deepEqual(
      (await Promise.all(results)).map((result) => result.admitted),
      [true, true, false],
      'two requests of a limit of 2, across two sub-windows',
    );
    assert.equal(scripts.sent, 1);
    const probe = await reserveTight(store, 0);
    assert.ok(!probe.admitted);
    assert.equal(probe.statuses.find((status) => status.bucket.id === 'key:t:tpm')?.remaining, 80);
  });

  test("a turn's calls on one concurrency limit each see the slots taken before them", async () => {
    const { store } = await open();
    const slots: Bucket[] = [{ kind: 'concurrent', id: 'key:c:concurrency', limit: 2 }];
    const reserveSlot = () => store.reserve({ parts: [{ buckets: slots, tokens: 0, usd: 0 }], leaseMs: LEASE });
    const results = await Promise.all([reserveSlot(), reserveSlot(), reserveSlot()]);
    assert.deepEqual(
      results.map((result) => result.admitted),
      [true, true, false],
    );
    assert.equal(await store.release(reservationOf(results[0]!)), true);
    const [again, full] = await Promise.all([reserveSlot(), reserveSlot()]);
    assert.deepEqual([again?.admitted, full?.admitted], [true, false], 'the released slot, and only it, is free again');
  });

  test("a call refused in a turn is told when it fits, counting the turn's earlier charges", async () => {
    const { store } = await open();
    const [first, second] = await Promise.all([reserveTight(store, 60), reserveTight(store, 60)]);
    assert.ok(first?.admitted);
    assert.ok(second && !second.admitted);
    assert.equal(second.refusal.bucket.id, 'key:t:tpm');
    // The first call's 60 tokens sit in the clock's sub-window; they leave the window a minute
    // and one sub-window of 500 ms later, and then the 60 fit.
    assert.equal(second.refusal.retryAfterMs, MINUTE + 500);
    assert.equal(second.refusal.resetMs, MINUTE + 500);
  });

  test('a turn with more than 32 reserves sends them in scripts of at most 32, in order', async () => {
    const { store } = await open();
    const scripts = countScripts(store);
    const many: Bucket[] = [{ kind: 'requests', id: 'key:m:rpm', limit: 35, windowMs: MINUTE }];
    const results = await Promise.all(
      Array.from({ length: 40 }, () => store.reserve({ parts: [{ buckets: many, tokens: 0, usd: 0 }], leaseMs: LEASE })),
    );
    assert.equal(scripts.sent, 2, '32, then the other 8 at the end of the turn');
    assert.deepEqual(
      results.map((result) => result.admitted),
      Array.from({ length: 40 }, (_, index) => index < 35),
    );
  });

  test("a turn's reserves fail together, as an unavailable store, when Redis cannot be reached", async () => {
    const store = (await (await open()).handle.sibling()) as RedisLimitStore;
    store.client.disconnect();
    const outcomes = await Promise.allSettled([reserveTight(store, 1), reserveTight(store, 2)]);
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 'rejected');
      assert.ok(outcome.status === 'rejected' && outcome.reason instanceof LimitStoreUnavailableError, String(outcome.status === 'rejected' ? outcome.reason : ''));
    }
  });

  test("a reply that is not a part for each of a turn's reserves rejects them all, and each part is read at its own length", async () => {
    // An admitted call's part is shorter than a refused one's (1 number an entry against 3):
    // the store finds each part from the one before it, and a reply of any other length is the
    // script and the store out of step, never a silent wrong answer.
    const { store } = await open();
    const client = store.client;
    const original = client.sendCommand.bind(client);
    let change: (reply: number[]) => number[] = (reply) => reply;
    client.sendCommand = ((command: Command, ...rest: unknown[]) => {
      if (command.name === 'evalsha' || command.name === 'eval') {
        const resolve = command.resolve;
        command.resolve = ((reply: number[]) => resolve(change(reply))) as typeof command.resolve;
      }
      return (original as (...args: unknown[]) => unknown)(command, ...rest);
    }) as typeof client.sendCommand;
    // Admitted, refused (tokens), admitted, refused (requests): parts of 2 + 2×1, 2 + 2×3, ...
    const mixed = await Promise.all([reserveTight(store, 60), reserveTight(store, 50), reserveTight(store, 40), reserveTight(store, 0)]);
    assert.deepEqual(mixed.map((result) => result.admitted), [true, false, true, false]);
    const [first, second, third, fourth] = mixed;
    assert.ok(first?.admitted && second && !second.admitted && third?.admitted && fourth && !fourth.admitted);
    assert.equal(second.refusal.remaining, 40, 'the refused part was read at its own length');
    assert.equal(fourth.refusal.bucket.id, 'key:t:rpm');
    assert.equal(remainingOf(third, 'key:t:tpm'), 0, 'the part after a refused one was read where it starts');
    for (const broken of [(reply: number[]) => reply.slice(0, -1), (reply: number[]) => [...reply, 0], (reply: number[]) => reply.slice(0, 2)]) {
      change = broken;
      const outcomes = await Promise.allSettled([reserveTight(store, 0), reserveTight(store, 0)]);
      for (const outcome of outcomes) {
        assert.equal(outcome.status, 'rejected');
        assert.match(String(outcome.status === 'rejected' ? outcome.reason : ''), /reserve script answered \d+ numbers/);
      }
    }
  });

  test('a server that has forgotten the scripts (a restart, SCRIPT FLUSH) is sent them whole, once', async () => {
    const { store } = await open();
    const names: string[] = [];
    const client = store.client;
    const original = client.sendCommand.bind(client);
    client.sendCommand = ((command: Command, ...rest: unknown[]) => {
      names.push(command.name);
      return (original as (...args: unknown[]) => unknown)(command, ...rest);
    }) as typeof client.sendCommand;
    const reserveOne = () => store.reserve({ parts: [{ buckets: BUCKETS, tokens: 10, usd: 0 }], leaseMs: LEASE });
    const reserved = reservationOf(await reserveOne());
    await client.script('FLUSH');
    names.length = 0;
    const again = await reserveOne();
    assert.ok(again.admitted, 'the reserve after the flush went through');
    assert.equal(await store.settle(reserved, { tokens: 5, usd: 0 }), true);
    assert.ok((await reserveOne()).admitted);
    // Each script: EVALSHA refused with NOSCRIPT, then EVAL; after that EVALSHA finds it.
    assert.deepEqual(names.filter((name) => name !== 'script'), ['evalsha', 'eval', 'evalsha', 'eval', 'evalsha']);
  });

  test('close sends the reserves still waiting for their turn and waits for their answers', async () => {
    const { handle, store: other } = await open();
    const store = (await handle.sibling()) as RedisLimitStore;
    const reserved = reserveTight(store, 100);
    await store.close();
    assert.ok((await reserved).admitted);
    // Another replica sees the tokens taken.
    assert.equal((await reserveTight(other, 1)).admitted, false);
  });
});
