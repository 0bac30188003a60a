/** Hammers one requests bucket from several concurrent loops; records when each admission happened. */
import { setTimeout as delay } from 'node:timers/promises';
import type { Bucket, LimitStore } from '../../src/limits/types.ts';

export interface HammerReport {
  /** Store clock of each admitted reserve. */
  readonly admittedAt: number[];
  readonly refused: number;
}

export async function hammer({
  store,
  bucket,
  startAt,
  durationMs,
  loops,
}: {
  store: LimitStore;
  bucket: Bucket;
  startAt: number;
  durationMs: number;
  loops: number;
}): Promise<HammerReport> {
  const admittedAt: number[] = [];
  let refused = 0;
  await delay(Math.max(0, startAt - Date.now()));
  const endAt = startAt + durationMs;
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (Date.now() < endAt) {
        const result = await store.reserve({ parts: [{ buckets: [bucket], tokens: 0, usd: 0 }], leaseMs: 60_000 });
        if (result.admitted) {
          const reservation = result.reservations[0];
          if (reservation !== undefined && reservation.reservedAt < endAt) admittedAt.push(reservation.reservedAt);
        } else {
          refused += 1;
          // Ignore retry-after on purpose (a hostile client), but yield so timers and I/O run.
          await delay(Math.random() * 2);
        }
      }
    }),
  );
  return { admittedAt, refused };
}
