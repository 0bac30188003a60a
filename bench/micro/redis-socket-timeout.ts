/**
 * Micro-benchmark of ioredis's `socketTimeout` (src/limits/redis-store.ts sets it so that a
 * connection that stops answering is made again): what arming and clearing its timer costs per
 * command. Two clients on one Redis, with and without it, run rounds of commands in turn (the
 * order alternating), `--concurrency` in flight; the table gives medians over the rounds, and the
 * ratio of the two within one run.
 *
 *   node bin/run-ts.mjs bench/micro/redis-socket-timeout.ts [--commands 40000] [--rounds 16] [--concurrency 50]
 *
 * Needs Redis at `REDIS_URL` (default redis://127.0.0.1:6379); it increments one key and deletes it.
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { format, median } from '../lib/stats.ts';

const { values } = parseArgs({
  options: {
    commands: { type: 'string', default: '40000' },
    rounds: { type: 'string', default: '16' },
    concurrency: { type: 'string', default: '50' },
  },
});
const commands = Number(values.commands);
const rounds = Number(values.rounds);
const concurrency = Number(values.concurrency);
const url = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const key = `seed-bench:socket-timeout:${process.pid}`;

/** The options of createRedisClient, with or without the socket timeout. */
const client = (socketTimeout: number | undefined) =>
  new Redis(url, { maxRetriesPerRequest: 0, commandTimeout: 1_000, ...(socketTimeout === undefined ? {} : { socketTimeout }) });
const sides = { without: client(undefined), with: client(2_000) };

async function round(redis: Redis): Promise<{ perSecond: number; cpuMicros: number }> {
  const cpu = process.cpuUsage();
  const startedAt = process.hrtime.bigint();
  let sent = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (sent < commands) {
        sent += 1;
        await redis.incr(key);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
  const used = process.cpuUsage(cpu);
  return { perSecond: commands / seconds, cpuMicros: (used.user + used.system) / commands };
}

const results = { without: { perSecond: [] as number[], cpuMicros: [] as number[] }, with: { perSecond: [] as number[], cpuMicros: [] as number[] } };
for (let warm = 0; warm < 3; warm += 1) for (const redis of Object.values(sides)) await round(redis);
for (let index = 0; index < rounds; index += 1) {
  const order = index % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const);
  for (const side of order) {
    const measured = await round(sides[side]);
    results[side].perSecond.push(measured.perSecond);
    results[side].cpuMicros.push(measured.cpuMicros);
  }
}
await sides.without.del(key);
for (const redis of Object.values(sides)) redis.disconnect();

const row = (name: string, perSecond: string, cpu: string) => `| ${name.padEnd(22)} | ${perSecond.padStart(12)} | ${cpu.padStart(16)} |`;
console.log(`${commands} commands a round, ${concurrency} in flight, ${rounds} rounds each, medians (node ${process.version})`);
console.log(row('client', 'commands/s', 'CPU µs/command'));
console.log(row('-'.repeat(22), '-'.repeat(12), '-'.repeat(16)));
for (const side of ['without', 'with'] as const) {
  console.log(row(`${side} socketTimeout`, format(median(results[side].perSecond)), format(median(results[side].cpuMicros), 2)));
}
console.log(
  row(
    'with ÷ without',
    format(median(results.with.perSecond) / median(results.without.perSecond), 3),
    format(median(results.with.cpuMicros) / median(results.without.cpuMicros), 3),
  ),
);
