/**
 * Scenario 3 — the ledger while serving. For SQLite and PostgreSQL: closed-loop load on one
 * Seed process, then the time until every answered call is a row in the store (records/s).
 * For PostgreSQL, also an outage: Seed reaches the database through a TCP relay in this process;
 * the relay drops every connection and refuses new ones for a while mid-load, then comes back.
 * Every answered call must end up in the store (spill to disk, replay): lost = answered − rows.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { closedLoop, openLoop } from '../lib/load.ts';
import { sampleProcess } from '../lib/proc.ts';
import { POSTGRES_URL, throwawaySchema } from '../lib/stores.ts';
import { startSeedServer, seedConfig, startSimulator } from '../lib/targets.ts';
import { requestFor } from './overhead.ts';

export interface LedgerBackendResult {
  backend: 'sqlite' | 'postgres';
  answered: number;
  failures: number;
  loadSeconds: number;
  /** From load start until the last answered call was a row. */
  persistedSeconds: number;
  recordsPerSecond: number;
  outage?: { answered: number; failures: number; outageSeconds: number; rowsAtEnd: number; lost: number; waitedSeconds: number; seedExited: boolean };
  error?: string;
}

/** A TCP relay to PostgreSQL that can be cut (drop everything, refuse new connections) and restored. */
async function startRelay(target: { host: string; port: number }): Promise<{ port: number; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolveListen) => {
      server = createServer((client) => {
        const upstream = connect(target);
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => undefined);
        }
        client.pipe(upstream).pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      server.listen(port, '127.0.0.1', () => {
        const address = server!.address();
        port = typeof address === 'object' && address ? address.port : port;
        resolveListen();
      });
    });
  const cut = async () => {
    const closing = new Promise<void>((resolveClose) => (server ? server.close(() => resolveClose()) : resolveClose()));
    for (const socket of sockets) socket.destroy();
    await closing;
    server = undefined;
  };
  await listen();
  return { port, cut, restore: listen, close: cut };
}

async function waitForRows(
  count: () => Promise<number>,
  expected: number,
  timeoutMs: number,
  alive: () => boolean = () => true,
): Promise<{ rows: number; at: number }> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const rows = await count().catch(() => -1);
    // A dead Seed process replays nothing more: stop waiting.
    if (rows >= expected || performance.now() > deadline || !alive()) return { rows, at: performance.now() };
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
}

async function runBackend(input: {
  backend: 'sqlite' | 'postgres';
  durationSeconds: number;
  concurrency: number;
  outageSeconds: number;
  workDirectory: string;
  simulatorUrl: string;
  log: (line: string) => void;
}): Promise<LedgerBackendResult> {
  const { backend } = input;
  const workDirectory = join(input.workDirectory, `ledger-${backend}`);
  let storeUrl: string;
  let count: () => Promise<number>;
  let cleanup = async (): Promise<void> => undefined;
  let relay: Awaited<ReturnType<typeof startRelay>> | undefined;
  if (backend === 'sqlite') {
    const file = join(workDirectory, 'ledger.db');
    storeUrl = `sqlite:${file}`;
    let database: Database.Database | undefined;
    count = async () => {
      database ??= new Database(file, { readonly: true, fileMustExist: true });
      return (database.prepare('SELECT count(*) AS n FROM calls').get() as { n: number }).n;
    };
    cleanup = async () => {
      database?.close();
    };
  } else {
    // A schema of its own keeps the run away from other users of `test`.
    const store = await throwawaySchema('ledger');
    const url = new URL(POSTGRES_URL);
    relay = await startRelay({ host: url.hostname, port: Number(url.port || 5432) });
    url.port = String(relay.port);
    storeUrl = store.storeUrl(url);
    count = async () => Number((await store.admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${store.schema}.calls`)).rows[0]?.n ?? 0);
    cleanup = async () => {
      await store.drop();
      await relay?.close();
    };
  }
  mkdirSync(workDirectory, { recursive: true });
  const configFile = join(workDirectory, 'seed.yaml');
  writeFileSync(
    configFile,
    // No keys here: this scenario measures the ledger, and the outage run restarts nothing.
    seedConfig({ simulatorUrl: input.simulatorUrl, workDirectory, auth: false, storeUrl }),
  );
  const result: LedgerBackendResult = { backend, answered: 0, failures: 0, loadSeconds: 0, persistedSeconds: Number.NaN, recordsPerSecond: Number.NaN };
  try {
    const seed = await startSeedServer({ simulatorUrl: input.simulatorUrl, workDirectory, name: `seed (ledger ${backend})`, configFile, env: { SEED_BENCH_LOG: '1' } });
    try {
      const target = { origin: seed.url, headers: { 'content-type': 'application/json' } };
      const before = await count();
      const start = performance.now();
      const load = await closedLoop({ request: requestFor(target, false), connections: input.concurrency, durationSeconds: input.durationSeconds });
      result.loadSeconds = (performance.now() - start) / 1_000;
      result.answered = load.completed;
      result.failures = load.failures;
      // Rows can exceed answered: calls still in flight when the load stops are recorded too.
      const persisted = await waitForRows(count, before + load.completed, 30_000);
      result.persistedSeconds = (persisted.at - start) / 1_000;
      result.recordsPerSecond = (persisted.rows - before) / result.persistedSeconds;
      input.log(`ledger ${backend}: ${load.completed} answered, ${persisted.rows - before} rows, ${result.recordsPerSecond.toFixed(0)} records/s`);

      if (relay) {
        const rowsBefore = await count();
        const rate = 200;
        const outageRelay = relay;
        const cutAt = setTimeout(() => {
          input.log(`ledger ${backend}: store outage for ${input.outageSeconds} s`);
          void outageRelay.cut();
          setTimeout(() => void outageRelay.restore(), input.outageSeconds * 1_000);
        }, 2_000);
        const outageLoad = await openLoop({ request: requestFor(target, false), ratePerSecond: rate, count: rate * (input.outageSeconds + 6) });
        clearTimeout(cutAt);
        const waitStart = performance.now();
        const alive = () => sampleProcess(seed.pid) !== undefined;
        const settled = await waitForRows(count, rowsBefore + outageLoad.completed, 90_000, alive);
        result.outage = {
          answered: outageLoad.completed,
          failures: outageLoad.failures,
          outageSeconds: input.outageSeconds,
          rowsAtEnd: settled.rows - rowsBefore,
          lost: Math.max(0, outageLoad.completed - (settled.rows - rowsBefore)),
          waitedSeconds: (settled.at - waitStart) / 1_000,
          seedExited: !alive(),
        };
        input.log(
          `ledger ${backend} outage: ${outageLoad.completed} answered, ${outageLoad.failures} failed, ` +
            `${settled.rows - rowsBefore} rows after ${result.outage.waitedSeconds.toFixed(1)} s`,
        );
        if (result.outage.lost > 0) input.log(`Seed's log (tail):\n${seed.stderrTail()}`);
      }
    } finally {
      await seed.stop(20_000);
    }
  } catch (error) {
    result.error = String(error).slice(0, 400);
  } finally {
    await cleanup();
  }
  return result;
}

export async function runLedger(input: {
  durationSeconds: number;
  concurrency: number;
  outageSeconds: number;
  workDirectory: string;
  log: (line: string) => void;
}): Promise<LedgerBackendResult[]> {
  const simulator = await startSimulator();
  try {
    const results: LedgerBackendResult[] = [];
    for (const backend of ['sqlite', 'postgres'] as const) results.push(await runBackend({ ...input, backend, simulatorUrl: simulator.url }));
    return results;
  } finally {
    await simulator.stop();
  }
}
