import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Bucket, LimitStore, Reservation, ReserveResult } from '../src/limits/types.ts';
import type { RedisLimitStore } from '../src/limits/redis-store.ts';
import { limitStoreBackends, ManualClock, remainingOf, openRedisStore, type StoreHandle } from './helpers/limits-stores.ts';

const backends = await limitStoreBackends({ file: 'store' });
const MINUTE = 60_000;
const LEASE = 120_000;

function admitted(result: ReserveResult): readonly Reservation[] {
  assert.equal(result.admitted, true, result.admitted ? '' : `refused by ${result.refusal.bucket.id}`);
  return result.admitted ? result.reservations : [];
}

function only(reservations: readonly Reservation[]): Reservation {
  const [reservation] = reservations;
  assert.ok(reservation);
  return reservation;
}

async function reserve(store: LimitStore, buckets: Bucket[], amounts: { tokens?: number; usd?: number } = {}, leaseMs = LEASE) {
  return store.reserve({ parts: [{ buckets, tokens: amounts.tokens ?? 0, usd: amounts.usd ?? 0 }], leaseMs });
}


for (const backend of backends) {
  describe(`limit store (${backend.name})`, { skip: backend.skip }, () => {
    const handles: StoreHandle[] = [];
    async function open(clock?: ManualClock): Promise<StoreHandle> {
      const handle = await backend.open(clock === undefined ? {} : { now: clock.now });
      handles.push(handle);
      return handle;
    }
    after(async () => {
      await Promise.all(handles.map((handle) => handle.cleanup()));
    });

    test('a reserve is all-or-nothing across buckets and names the bucket that refused', async () => {
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const { store } = await open(clock);
      const buckets: Bucket[] = [
        { kind: 'requests', id: 'key:k:rpm', limit: 10, windowMs: MINUTE },
        { kind: 'tokens', id: 'team:t:tpm', limit: 100, windowMs: MINUTE },
        { kind: 'usd', id: 'org:o:usd-day', limit: 1, period: 'day' },
      ];
      admitted(await reserve(store, buckets, { tokens: 60, usd: 0.25 }));
      const refused = await reserve(store, buckets, { tokens: 60, usd: 0.25 });
      assert.equal(refused.admitted, false);
      if (refused.admitted) return;
      assert.equal(refused.refusal.bucket.id, 'team:t:tpm');
      assert.equal(refused.refusal.limit, 100);
      assert.equal(refused.refusal.remaining, 40);
      assert.equal(refused.refusal.requested, 60);
      // Everything was charged in the sub-window starting now: it leaves the window after 60.5 s.
      assert.equal(refused.refusal.retryAfterMs, 60_500);
      // Nothing of the refused reserve was charged: requests and dollars are as after the first.
      assert.equal(remainingOf(refused, 'key:k:rpm'), 9);
      assert.equal(remainingOf(refused, 'org:o:usd-day'), 0.75);
      const fitting = await reserve(store, buckets, { tokens: 40, usd: 0.25 });
      admitted(fitting);
      assert.equal(remainingOf(fitting, 'key:k:rpm'), 8);
      assert.equal(remainingOf(fitting, 'team:t:tpm'), 0);
      assert.equal(remainingOf(fitting, 'org:o:usd-day'), 0.5);
    });

    test("report 'headers' gives each part's tightest requests and tokens statuses, the same objects' values as every bucket's", async () => {
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const { store } = await open(clock);
      const callerBuckets: Bucket[] = [
        { kind: 'requests', id: 'key:k:rpm', limit: 10, windowMs: MINUTE },
        { kind: 'tokens', id: 'key:k:tpm', limit: 1_000, windowMs: MINUTE },
        { kind: 'usd', id: 'key:k:usd-day', limit: 5, period: 'day' },
        { kind: 'requests', id: 'team:t:rpm', limit: 4, windowMs: MINUTE },
        { kind: 'tokens', id: 'team:t:tpm', limit: 5_000, windowMs: MINUTE },
        { kind: 'requests', id: 'org:o:rpm', limit: 4, windowMs: MINUTE },
      ];
      const deploymentBuckets: Bucket[] = [{ kind: 'tokens', id: 'deployment:d:tpm', limit: 700, windowMs: MINUTE }];
      const parts = [
        { buckets: callerBuckets, tokens: 300, usd: 0.01 },
        { buckets: deploymentBuckets, tokens: 300, usd: 0.01 },
      ];
      const every = await store.reserve({ parts, leaseMs: LEASE });
      clock.advance(1_000);
      const headers = await store.reserve({ parts, leaseMs: LEASE, report: 'headers' });
      assert.ok(every.admitted && headers.admitted);
      assert.equal(every.statuses.length, 7);
      assert.deepEqual(headers.statuses, [], "report 'headers' builds no status per bucket");
      // Ties go to the first bucket: team and org both have 4 requests a minute.
      assert.deepEqual(
        headers.headerStatuses.map(({ requests, tokens }) => [requests?.bucket.id, requests?.remaining, requests?.resetMs, tokens?.bucket.id, tokens?.remaining]),
        [
          ['team:t:rpm', 2, 60_500, 'key:k:tpm', 400],
          [undefined, undefined, undefined, 'deployment:d:tpm', 100],
        ],
      );
      // With every bucket reported, the header statuses are among the statuses, chosen the same way.
      assert.equal(every.headerStatuses[0]?.requests, every.statuses[3]);
      assert.equal(every.headerStatuses[0]?.tokens, every.statuses[1]);
      assert.equal(every.headerStatuses[1]?.tokens, every.statuses[6]);
      assert.equal(every.headerStatuses[1]?.requests, undefined);
    });

    test('requests leave the sliding window one sub-window after it ends, not before', async () => {
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const { store } = await open(clock);
      const rpm: Bucket[] = [{ kind: 'requests', id: 'key:k:rpm', limit: 3, windowMs: MINUTE }];
      admitted(await reserve(store, rpm));
      admitted(await reserve(store, rpm));
      clock.advance(30_000);
      admitted(await reserve(store, rpm));
      const full = await reserve(store, rpm);
      assert.equal(full.admitted, false);
      if (full.admitted) return;
      assert.equal(full.refusal.retryAfterMs, 30_500);
      assert.equal(full.refusal.resetMs, 60_500, 'full reset when the newest request leaves');
      clock.advance(30_499);
      assert.equal((await reserve(store, rpm)).admitted, false, 'still inside the window');
      clock.advance(1);
      admitted(await reserve(store, rpm));
      admitted(await reserve(store, rpm));
      assert.equal((await reserve(store, rpm)).admitted, false, 'the request from t+30 s still counts');
      clock.advance(2 * MINUTE);
      const fresh = await reserve(store, rpm);
      admitted(fresh);
      assert.equal(remainingOf(fresh, 'key:k:rpm'), 2);
    });

    test('a token window under half an hour of random traffic, settles and idle gaps matches the sliding-window rules', async () => {
      // The rules (src/limits/plan.ts): a reserve counts every charge of the sub-windows that
      // overlap the last window (120 of 500 ms, plus the current one), settled amounts included.
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const { store } = await open(clock);
      const limit = 1_000;
      const tpm: Bucket[] = [{ kind: 'tokens', id: 'key:k:tpm', limit, windowMs: MINUTE }];
      const width = MINUTE / 120;
      const charges: Array<{ subWindow: number; amount: number; reservation: Reservation; settled: boolean }> = [];
      // mulberry32: a small seeded generator, so a failure replays exactly.
      let seed = 7;
      const random = (below: number) => {
        seed = (seed + 0x6d2b79f5) | 0;
        let mixed = Math.imul(seed ^ (seed >>> 15), seed | 1);
        mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
        return (((mixed ^ (mixed >>> 14)) >>> 0) % below);
      };
      const seen = { admitted: 0, refused: 0, settled: 0, gaps: 0 };
      for (let step = 0; step < 2_000; step += 1) {
        // Mostly small steps, now and then a gap of more than a window.
        const gap = random(200) === 0;
        if (gap) seen.gaps += 1;
        clock.advance(gap ? MINUTE + random(3 * MINUTE) : random(1_500));
        const now = clock.now();
        const oldestLive = Math.floor(now / width) - 120;
        const used = charges.filter((charge) => charge.subWindow >= oldestLive).reduce((sum, charge) => sum + charge.amount, 0);
        const open = charges.filter((charge) => !charge.settled);
        if (open.length > 0 && random(3) === 0) {
          // A reservation settles once (a second settle changes nothing: another test).
          const charge = open[random(open.length)]!;
          const actual = random(300);
          await store.settle(charge.reservation, { tokens: actual, usd: 0 });
          charge.amount = actual;
          charge.settled = true;
          seen.settled += 1;
          continue;
        }
        const amount = 1 + random(200);
        const result = await reserve(store, tpm, { tokens: amount });
        const fits = used + amount <= limit && used < limit;
        assert.equal(result.admitted, fits, `step ${step}: ${used} used, ${amount} asked`);
        if (result.admitted) {
          assert.equal(remainingOf(result, 'key:k:tpm'), Math.max(0, limit - used - amount), `step ${step}`);
          charges.push({ subWindow: Math.floor(now / width), amount, reservation: only(result.reservations), settled: false });
          seen.admitted += 1;
        } else seen.refused += 1;
      }
      // The run exercised what it claims to (it would pass vacuously otherwise).
      for (const [what, count] of Object.entries(seen)) assert.ok(count >= 5, `only ${count} ${what}`);
    });

    test('settle replaces the token and dollar estimates with actual usage, up or down', async () => {
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const { store } = await open(clock);
      const buckets: Bucket[] = [
        { kind: 'tokens', id: 'key:k:tpm', limit: 1_000, windowMs: MINUTE },
        { kind: 'usd', id: 'key:k:usd-day', limit: 1, period: 'day' },
      ];
      const first = only(admitted(await reserve(store, buckets, { tokens: 800, usd: 0.8 })));
      assert.equal((await reserve(store, buckets, { tokens: 300, usd: 0.1 })).admitted, false);
      clock.advance(10_000);
      assert.equal(await store.settle(first, { tokens: 300, usd: 0.3 }), true);
      const second = await reserve(store, buckets, { tokens: 700, usd: 0.7 });
      assert.equal(remainingOf(second, 'key:k:tpm'), 0, 'refund went back to the original sub-window');
      assert.equal(remainingOf(second, 'key:k:usd-day'), 0);
      const secondReservation = only(admitted(second));
      assert.equal(await store.settle(secondReservation, { tokens: 900, usd: 0.9 }), true);
      const over = await reserve(store, buckets, { tokens: 1, usd: 0.01 });
      assert.equal(over.admitted, false, 'charging more than estimated can exhaust the bucket');
      if (over.admitted) return;
      assert.equal(over.refusal.bucket.id, 'key:k:tpm');
      assert.equal(remainingOf(over, 'key:k:usd-day'), 0);
    });

    test('settle and release adjust each window in its own sub-window, whatever its length', async () => {
      // Windows of different lengths charged at one instant are charged in different sub-windows
      // (a minute's are 0.5 s wide, an hour's 30 s): a finish must move each in its own.
      const clock = new ManualClock('2025-01-31T10:00:07.250Z');
      const { store } = await open(clock);
      const HOUR = 60 * MINUTE;
      const buckets: Bucket[] = [
        { kind: 'requests', id: 'key:w:rpm', limit: 10, windowMs: MINUTE },
        { kind: 'requests', id: 'key:w:rph', limit: 10, windowMs: HOUR },
        { kind: 'tokens', id: 'key:w:tpm', limit: 1_000, windowMs: MINUTE },
        { kind: 'tokens', id: 'key:w:tph', limit: 1_000, windowMs: HOUR },
      ];
      const settled = only(admitted(await reserve(store, buckets, { tokens: 500 })));
      const released = only(admitted(await reserve(store, buckets, { tokens: 200 })));
      clock.advance(1_000);
      assert.deepEqual(await Promise.all([store.settle(settled, { tokens: 120, usd: 0 }), store.release(released)]), [true, true]);
      const after = await reserve(store, buckets, { tokens: 0 });
      admitted(after);
      assert.deepEqual(
        buckets.map((bucket) => remainingOf(after, bucket.id)),
        [10 - 1 - 1, 10 - 1 - 1, 1_000 - 120, 1_000 - 120],
        'the settle moved both token windows to 120, the release freed its request and tokens in both',
      );
    });

    test('settle and release are idempotent: the second call changes nothing', async () => {
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const { store } = await open(clock);
      const buckets: Bucket[] = [
        { kind: 'requests', id: 'key:k:rpm', limit: 5, windowMs: MINUTE },
        { kind: 'tokens', id: 'key:k:tpm', limit: 1_000, windowMs: MINUTE },
        { kind: 'concurrent', id: 'key:k:concurrent', limit: 1 },
      ];
      const reservation = only(admitted(await reserve(store, buckets, { tokens: 500 })));
      assert.equal(await store.settle(reservation, { tokens: 100, usd: 0 }), true);
      assert.equal(await store.settle(reservation, { tokens: 100, usd: 0 }), false);
      assert.equal(await store.release(reservation), false, 'a settled reservation cannot be refunded');
      const next = await reserve(store, buckets, { tokens: 10 });
      assert.equal(remainingOf(next, 'key:k:tpm'), 890, 'tokens refunded once: 1000 − 100 − 10');
      assert.equal(remainingOf(next, 'key:k:rpm'), 3);
      const released = only(admitted(next));
      assert.equal(await store.release(released), true);
      assert.equal(await store.release(released), false);
      const after = await reserve(store, buckets, { tokens: 0 });
      assert.equal(remainingOf(after, 'key:k:rpm'), 3, 'release refunded the request count once');
      assert.equal(remainingOf(after, 'key:k:tpm'), 900);
    });

    test("finish settles or releases a call's reservations in one operation, each exactly once", async () => {
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const { store } = await open(clock);
      const caller: Bucket[] = [
        { kind: 'requests', id: 'key:k:rpm', limit: 10, windowMs: MINUTE },
        { kind: 'tokens', id: 'key:k:tpm', limit: 1_000, windowMs: MINUTE },
      ];
      const deployment: Bucket[] = [
        { kind: 'requests', id: 'deployment:d:rpm', limit: 10, windowMs: MINUTE },
        { kind: 'tokens', id: 'deployment:d:tpm', limit: 1_000, windowMs: MINUTE },
        { kind: 'concurrent', id: 'deployment:d:concurrent', limit: 1 },
      ];
      const reserveBoth = async () =>
        admitted(await store.reserve({ parts: [{ buckets: caller, tokens: 500, usd: 0 }, { buckets: deployment, tokens: 500, usd: 0 }], leaseMs: LEASE }));
      const settled = await reserveBoth();
      assert.equal(settled.length, 2);
      assert.deepEqual(await store.finish({ reservations: settled, usage: { tokens: 100, usd: 0 } }), [true, true]);
      assert.deepEqual(await store.finish({ reservations: settled, usage: { tokens: 900, usd: 0 } }), [false, false]);

      const [callerPart, deploymentPart] = await reserveBoth();
      assert.ok(callerPart && deploymentPart);
      assert.equal(await store.settle(callerPart, { tokens: 50, usd: 0 }), true);
      assert.deepEqual(await store.finish({ reservations: [callerPart, deploymentPart], usage: 'release' }), [false, true]);

      const probe = await store.reserve({ parts: [{ buckets: [...caller, ...deployment], tokens: 0, usd: 0 }], leaseMs: LEASE });
      admitted(probe);
      assert.equal(remainingOf(probe, 'key:k:tpm'), 1_000 - 100 - 50);
      assert.equal(remainingOf(probe, 'key:k:rpm'), 10 - 3, 'two calls and the probe');
      assert.equal(remainingOf(probe, 'deployment:d:tpm'), 1_000 - 100, 'the released reservation refunded its tokens');
      assert.equal(remainingOf(probe, 'deployment:d:rpm'), 10 - 2, 'and its request');
      assert.equal(remainingOf(probe, 'deployment:d:concurrent'), 0, 'both slots were freed: only the probe holds one');
    });

    test('the concurrency gauge counts held slots and ages out reservations nobody settled', async () => {
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const { store } = await open(clock);
      const gauge: Bucket[] = [{ kind: 'concurrent', id: 'key:k:concurrent', limit: 2 }];
      const first = only(admitted(await reserve(store, gauge, {}, 10_000)));
      admitted(await reserve(store, gauge, {}, 5_000)); // this one's process "dies": never settled
      const full = await reserve(store, gauge);
      assert.equal(full.admitted, false);
      if (full.admitted) return;
      assert.equal(full.refusal.bucket.kind, 'concurrent');
      assert.equal(full.refusal.retryAfterMs, null, 'nobody knows when a call ends');
      assert.equal(await store.settle(first, { tokens: 0, usd: 0 }), true);
      const third = only(admitted(await reserve(store, gauge, {}, 60_000)));
      assert.equal((await reserve(store, gauge)).admitted, false);
      clock.advance(5_000);
      admitted(await reserve(store, gauge, {}, 60_000)); // the dead one's lease ran out
      assert.equal((await reserve(store, gauge)).admitted, false);
      assert.equal(await store.release(third), true);
      admitted(await reserve(store, gauge));
    });

    test('dollar budgets run per UTC day and month and settle into the period they were reserved in', async () => {
      const clock = new ManualClock('2025-01-30T10:00:00.000Z');
      const { store } = await open(clock);
      const budgets: Bucket[] = [
        { kind: 'usd', id: 'key:k:usd-day', limit: 1, period: 'day' },
        { kind: 'usd', id: 'key:k:usd-month', limit: 1.5, period: 'month' },
      ];
      const spent = only(admitted(await reserve(store, budgets, { usd: 0.5 })));
      assert.equal(await store.settle(spent, { tokens: 0, usd: 0.9 }), true);
      const dayFull = await reserve(store, budgets, { usd: 0.2 });
      assert.equal(dayFull.admitted, false);
      if (dayFull.admitted) return;
      assert.equal(dayFull.refusal.bucket.id, 'key:k:usd-day');
      assert.ok(Math.abs(dayFull.refusal.remaining - 0.1) < 1e-9);
      assert.equal(dayFull.refusal.retryAfterMs, 14 * 3_600_000, 'until midnight UTC');

      clock.current = Date.parse('2025-01-31T23:00:00.000Z');
      const late = only(admitted(await reserve(store, budgets, { usd: 0.5 }, 3 * 3_600_000))); // lease outlives the wait below
      const monthFull = await reserve(store, budgets, { usd: 0.2 });
      assert.equal(monthFull.admitted, false);
      if (monthFull.admitted) return;
      assert.equal(monthFull.refusal.bucket.id, 'key:k:usd-month');
      assert.equal(monthFull.refusal.retryAfterMs, 3_600_000, 'until 1 February UTC');

      clock.current = Date.parse('2025-02-01T00:30:00.000Z');
      // Settled after midnight, the January reservation still lands in January: February is untouched.
      assert.equal(await store.settle(late, { tokens: 0, usd: 0.6 }), true);
      const february = await reserve(store, budgets, { usd: 1 });
      admitted(february);
      assert.equal(remainingOf(february, 'key:k:usd-day'), 0);
      assert.equal(remainingOf(february, 'key:k:usd-month'), 0.5);
    });

    test('race: 200 concurrent reservations against a budget for 50 admit exactly 50', async () => {
      const handle = await open();
      const replicas = [handle.store, await handle.sibling(), await handle.sibling(), await handle.sibling()];
      const budget: Bucket[] = [
        { kind: 'usd', id: 'org:o:usd-month', limit: 0.5, period: 'month' },
        { kind: 'requests', id: 'org:o:rpm', limit: 10_000, windowMs: MINUTE },
      ];
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, index) => reserve(replicas[index % replicas.length] as LimitStore, budget, { usd: 0.01 })),
      );
      assert.equal(results.filter((result) => result.admitted).length, 50);
      const after = await reserve(handle.store, budget, { usd: 0 });
      assert.equal(after.admitted, false, 'budget fully spent, not over-spent');
      assert.equal(remainingOf(after, 'org:o:rpm'), 10_000 - 50, 'refused reserves charged no requests');
    });

    test('race: 200 concurrent reservations against 37 requests per window admit exactly 37', async () => {
      const handle = await open();
      const replicas = [handle.store, await handle.sibling(), await handle.sibling(), await handle.sibling()];
      const rpm: Bucket[] = [{ kind: 'requests', id: 'key:k:rpm', limit: 37, windowMs: MINUTE }];
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, index) => reserve(replicas[index % replicas.length] as LimitStore, rpm)),
      );
      assert.equal(results.filter((result) => result.admitted).length, 37);
    });

    test('a bucket id twice in one reserve is a programming error, not a double check', async () => {
      const { store } = await open();
      const bucket: Bucket = { kind: 'requests', id: 'key:k:rpm', limit: 1, windowMs: MINUTE };
      await assert.rejects(
        store.reserve({ parts: [{ buckets: [bucket], tokens: 0, usd: 0 }, { buckets: [bucket], tokens: 0, usd: 0 }], leaseMs: LEASE }),
        /appears twice/,
      );
      // The same id in another bucket object of the same part is the same counter: refused too.
      const lookalike: Bucket = { kind: 'tokens', id: 'key:k:rpm', limit: 5, windowMs: MINUTE };
      await assert.rejects(store.reserve({ parts: [{ buckets: [bucket, lookalike], tokens: 0, usd: 0 }], leaseMs: LEASE }), /key:k:rpm appears twice/);
      // Frozen lists are checked once and remembered as checked together: a list checked with
      // one second part, or alone, is still checked with another.
      const caller = Object.freeze<Bucket[]>([{ kind: 'requests', id: 'key:k2:rpm', limit: 10, windowMs: MINUTE }]);
      const deployment = Object.freeze<Bucket[]>([{ kind: 'requests', id: 'deployment:d:rpm', limit: 10, windowMs: MINUTE }]);
      const clash = Object.freeze<Bucket[]>([{ kind: 'tokens', id: 'key:k2:rpm', limit: 10, windowMs: MINUTE }]);
      const invalid = Object.freeze<Bucket[]>([{ kind: 'requests', id: 'deployment:e:rpm', limit: -1, windowMs: MINUTE }]);
      const twoParts = (second: readonly Bucket[]) => ({ parts: [{ buckets: caller, tokens: 0, usd: 0 }, { buckets: second, tokens: 0, usd: 0 }], leaseMs: LEASE });
      for (let time = 0; time < 2; time += 1) {
        admitted(await store.reserve({ parts: [{ buckets: caller, tokens: 0, usd: 0 }], leaseMs: LEASE }));
        admitted(await store.reserve(twoParts(deployment)));
        await assert.rejects(store.reserve(twoParts(clash)), /key:k2:rpm appears twice/);
        await assert.rejects(store.reserve(twoParts(invalid)), /deployment:e:rpm has an invalid limit/);
      }
    });

    test('reservations that charge the same amounts to the same buckets settle each on its own', async () => {
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const { store } = await open(clock);
      const buckets: Bucket[] = [
        { kind: 'requests', id: 'key:k:rpm', limit: 10, windowMs: MINUTE },
        { kind: 'tokens', id: 'key:k:tpm', limit: 1_000, windowMs: MINUTE },
        { kind: 'usd', id: 'key:k:usd-day', limit: 1, period: 'day' },
      ];
      const first = only(admitted(await reserve(store, buckets, { tokens: 200, usd: 0.2 })));
      const second = only(admitted(await reserve(store, buckets, { tokens: 200, usd: 0.2 })));
      assert.equal(await store.settle(first, { tokens: 50, usd: 0.05 }), true);
      assert.equal(await store.release(second), true);
      assert.equal(await store.settle(first, { tokens: 50, usd: 0.05 }), false);
      const probe = await reserve(store, buckets);
      assert.equal(remainingOf(probe, 'key:k:rpm'), 10 - 2, 'the released reservation refunded its request');
      assert.equal(remainingOf(probe, 'key:k:tpm'), 1_000 - 50);
      assert.ok(Math.abs((remainingOf(probe, 'key:k:usd-day') ?? 0) - 0.95) < 1e-9);
    });

    // Two Redis stores on one Redis are one store; two memory stores are not.
    if (backend.name === 'memory') test('a reservation settles only in the store that made it, and only before its record expires', async () => {
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const { store } = await open(clock);
      const { store: other } = await open(clock);
      const buckets: Bucket[] = [
        { kind: 'requests', id: 'key:k:rpm', limit: 10, windowMs: MINUTE },
        { kind: 'tokens', id: 'key:k:tpm', limit: 1_000, windowMs: MINUTE },
      ];
      const mine = only(admitted(await reserve(store, buckets, { tokens: 500 })));
      admitted(await reserve(other, buckets, { tokens: 500 }));
      assert.equal(await other.release(mine), false, 'another store does not know the reservation');
      assert.equal(remainingOf(await reserve(other, buckets), 'key:k:tpm'), 500, 'nor refunds it');
      assert.equal(await store.release(mine), true);
      assert.equal(remainingOf(await reserve(store, buckets), 'key:k:tpm'), 1_000);
      // Settle finds a reservation for an hour past its lease; after that its charge has long left the window.
      const late = only(admitted(await reserve(store, buckets, { tokens: 100 })));
      clock.advance(LEASE + 60 * MINUTE);
      assert.equal(await store.settle(late, { tokens: 0, usd: 0 }), false);
    });

    // Only replicas can disagree about the time: the memory store is one process with one clock.
    if (backend.name !== 'memory') test('a replica whose clock lags settles in the sub-window the script charged, not the one it planned', async () => {
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const handle = await open(clock);
      const tpm: Bucket[] = [{ kind: 'tokens', id: 'key:k:tpm', limit: 1_000, windowMs: MINUTE }];
      admitted(await reserve(handle.store, tpm, { tokens: 100 }));
      // Ten seconds (twenty sub-windows) behind: the script moves its charge up to the newest sub-window.
      const lagging = await openRedisStore({ prefix: handle.redisPrefix ?? '', now: () => clock.now() - 10_000 });
      try {
        const lateResult = await reserve(lagging, tpm, { tokens: 200 });
        const late = only(admitted(lateResult));
        // Its newest usage is in the sub-window charged, the leading clock's: it empties a window
        // and a sub-window after that one begins, 10 s later than the lagging clock's own would.
        assert.equal(lateResult.statuses[0]?.resetMs, 121 * 500 + 10_000, 'reset from the sub-window charged');
        assert.equal(await lagging.settle(late, { tokens: 50, usd: 0 }), true);
      } finally {
        await lagging.close();
      }
      const probe = await reserve(handle.store, tpm, { tokens: 0 });
      assert.equal(remainingOf(probe, 'key:k:tpm'), 1_000 - 100 - 50, 'the lagging reservation was settled down to its real usage');
    });

    // Redis keeps only what expires: a counter or record without a TTL would stay forever.
    if (backend.name !== 'memory') test('every key the scripts write expires: windows after the window, budgets after their period, records after the lease', async () => {
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const handle = await open(clock);
      const store = handle.store as RedisLimitStore;
      const buckets: Bucket[] = [
        { kind: 'tokens', id: 'key:e:tpm', limit: 1_000, windowMs: MINUTE },
        { kind: 'usd', id: 'key:e:usd-day', limit: 5, period: 'day' },
        { kind: 'concurrent', id: 'key:e:parallel', limit: 5 },
      ];
      const ttls = async (): Promise<Map<string, number>> => {
        const keys = await store.client.keys(`${handle.redisPrefix ?? ''}*`);
        const found = new Map<string, number>();
        for (const key of keys) found.set(key.slice((handle.redisPrefix ?? '').length).replace(/^r:.*/, 'record'), await store.client.pttl(key));
        return found;
      };
      const first = only(admitted(await reserve(store, buckets, { tokens: 100, usd: 0.5 })));
      const day = 24 * 60 * MINUTE;
      const expect = async (when: string) => {
        const found = await ttls();
        const within = (key: string, most: number) => {
          const ttl = found.get(key);
          assert.ok(ttl !== undefined && ttl > most - 5_000 && ttl <= most, `${when}: ${key} expires in ${ttl} ms, expected about ${most}`);
        };
        // A minute's window and two of its 500 ms sub-windows; the rest of the day plus two days; the lease.
        within(`w:key:e:tpm:${MINUTE}`, MINUTE + 1_000);
        within('u:key:e:usd-day:2025-01-31', 14 * 60 * MINUTE + 2 * day);
        within('c:key:e:parallel', LEASE);
        within('record', LEASE + 60 * MINUTE);
      };
      await expect('after the first reserve');
      // A second charge of an existing budget, and a settle of both, keep every expiry.
      clock.advance(1_000);
      const second = only(admitted(await reserve(store, buckets, { tokens: 100, usd: 0.5 })));
      // A charge in a sub-window that already holds a count leaves the window's expiry as it was.
      const windowKey = `${handle.redisPrefix ?? ''}w:key:e:tpm:${MINUTE}`;
      const before = await store.client.pttl(windowKey);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const third = only(admitted(await reserve(store, buckets, { tokens: 100, usd: 0 })));
      const afterThird = await store.client.pttl(windowKey);
      assert.ok(afterThird > 0 && afterThird < before, `the window's expiry stays (${before} ms, then ${afterThird})`);
      assert.equal(await store.release(third), true);
      assert.equal(await store.settle(first, { tokens: 10, usd: 0.1 }), true);
      assert.equal(await store.settle(second, { tokens: 10, usd: 0.1 }), true);
      const found = await ttls();
      for (const [key, ttl] of found) assert.ok(ttl > 0, `${key} expires (PTTL ${ttl})`);
      assert.ok(found.has('u:key:e:usd-day:2025-01-31'), 'the budget key is still there');
    });
  });
}
