/**
 * Call ids: `req_` and 32 hex digits laid out as a UUIDv7 (RFC 9562): 48 bits of Unix time in
 * milliseconds, the version digit 7, then 74 random bits (with the variant bits).
 *
 * Ids are the ledger's primary key, and they sort by the millisecond they were made in, so each
 * insert lands at the right edge of the key's B-tree (SQLite's and PostgreSQL's alike) instead
 * of on a random page. With random (v4) ids the SQLite insert cost 17–25 µs per row up to 200 000
 * rows, growing with the table, against 7.6–9.2 µs with these (bench/micro/ledger-insert.ts).
 * The table's other indexes all end in `started_at` and grow at one place per tenant or route.
 *
 * The random digits come from a pool of random bytes (`crypto.randomFillSync`, refilled every
 * ~400 ids) and are written, with the millisecond's digits kept while it lasts, into one buffer
 * that becomes the id in one string: ~60 bytes of garbage per id. Built from `randomUUID()` and
 * three slices, an id cost ~850 bytes (the UUID is itself built by concatenation), the largest
 * single allocation of a gateway call outside Seed's async frames (`npm run bench -- --only alloc`).
 * The `uuid` package's `v7()` measured ~7 µs per id on Node 20.
 * Ids made in the same millisecond are unordered among themselves; nothing relies on more.
 */
import { randomFillSync } from 'node:crypto';

const PREFIX_LENGTH = 'req_'.length + 12 + 1;
/** Hex digits after the version digit: 3 of rand_a, the variant digit, 15 of rand_b. */
const RANDOM_DIGITS = 19;
/** The 0-based random digit that carries the variant (binary 10xx: 8, 9, a or b). */
const VARIANT_DIGIT = 3;
const ID_LENGTH = PREFIX_LENGTH + RANDOM_DIGITS;
const BYTES_PER_ID = Math.ceil(RANDOM_DIGITS / 2);
const HEX = Buffer.from('0123456789abcdef', 'latin1');

const pool = Buffer.allocUnsafe(BYTES_PER_ID * 400);
let poolOffset = pool.length;
/** The id being written: the last millisecond's prefix stays in place while calls arrive within it. */
const id = Buffer.alloc(ID_LENGTH);
let lastMillisecond = -1;

/** A new call id; `now` is the epoch millisecond it is made in. */
export function newCallId(now: number = Date.now()): string {
  if (now !== lastMillisecond) {
    lastMillisecond = now;
    id.write(`req_${now.toString(16).padStart(12, '0')}7`, 0, 'latin1');
  }
  if (poolOffset + BYTES_PER_ID > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  for (let digit = 0; digit < RANDOM_DIGITS; digit += 1) {
    const byte = pool[poolOffset + (digit >> 1)] as number;
    const nibble = digit & 1 ? byte & 0x0f : byte >> 4;
    id[PREFIX_LENGTH + digit] = HEX[digit === VARIANT_DIGIT ? 0x8 | (nibble & 0x3) : nibble] as number;
  }
  poolOffset += BYTES_PER_ID;
  return id.toString('latin1', 0, ID_LENGTH);
}
