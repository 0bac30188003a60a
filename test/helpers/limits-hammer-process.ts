/**
 * One "replica" of the multi-process fidelity test: opens the shared Redis store, prints
 * `ready`, reads the common start time (epoch ms) from stdin — so slow boots cannot shorten
 * the run — hammers the bucket described in argv[2] (JSON), then prints its report as JSON.
 */
import { once } from 'node:events';
import { hammer } from './limits-hammer-loop.ts';
import { openRedisStore } from './limits-stores.ts';
import type { Bucket } from '../../src/limits/types.ts';

interface HammerArguments {
  prefix: string;
  bucket: Bucket;
  durationMs: number;
  loops: number;
}

const parsed: HammerArguments = JSON.parse(process.argv[2] ?? '{}');
const store = await openRedisStore({ prefix: parsed.prefix });
process.stdout.write('ready\n');
const [startLine] = (await once(process.stdin, 'data')) as [Buffer];
const startAt = Number(startLine.toString().trim());
const report = await hammer({ store, bucket: parsed.bucket, startAt, durationMs: parsed.durationMs, loops: parsed.loops });
process.stdout.write(`${JSON.stringify(report)}\n`);
await store.close();
