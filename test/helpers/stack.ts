/**
 * Starts the provider simulator and a gateway in front of it, in this process, on loopback
 * ephemeral ports. Every call record the gateway emits is collected in `records`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import { providerChecks } from '../../src/config/seed-config.ts';
import type { CallRecord } from '../../src/ledger/types.ts';
import { silentLogger } from '../../src/log.ts';
import { startSeed, type SeedInstance, type StartOptions } from '../../src/main.ts';
import { startSimulator, type SimulatorOptions } from '../../src/simulator/index.ts';

export type Simulator = Awaited<ReturnType<typeof startSimulator>>;

export interface Stack {
  seed: SeedInstance;
  simulator: Simulator;
  /** Gateway base URL for OpenAI clients: `http://127.0.0.1:PORT/v1`. */
  baseURL: string;
  records: CallRecord[];
  /**
   * Resolves once `count` records have arrived. A call is recorded before the end of its answer
   * leaves (the end waits for the ledger's journal); a call whose client left is recorded when the
   * gateway sees it go, which may be after the client has moved on.
   */
  waitForRecords(count: number, timeoutMs?: number): Promise<CallRecord[]>;
  close(): Promise<void>;
}

/** The default test topology: every provider kind in front of the simulator. */
export function standardConfig(simulatorUrl: string): string {
  return `
retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 50 }
health: { failureThreshold: 3, cooldownMs: 500, maxCooldownMs: 2000 }
deployments:
  openai-mini:
    provider: openai
    baseUrl: ${simulatorUrl}/v1
    model: gpt-4o-mini
    apiKey: sk-test
    terms: openai
  azure-mini:
    provider: azure-openai
    baseUrl: ${simulatorUrl}
    model: gpt-4o-mini
    apiKey: azure-test
    terms: azure-openai
  local-llama:
    provider: openai-compatible
    baseUrl: ${simulatorUrl}/v1
    model: llama-3.1-8b
    terms: llama-3.1
  claude:
    provider: anthropic
    baseUrl: ${simulatorUrl}
    model: claude-sonnet-4-20250514
    apiKey: sk-ant-test
    terms: anthropic
  embed:
    provider: openai
    baseUrl: ${simulatorUrl}/v1
    model: text-embedding-3-small
    apiKey: sk-test
    terms: openai
routes:
  gpt-4o-mini: { deployments: [{ deployment: openai-mini }] }
  azure-mini: { deployments: [{ deployment: azure-mini }] }
  llama: { deployments: [{ deployment: local-llama }] }
  claude-sonnet: { deployments: [{ deployment: claude }] }
  text-embedding-3-small: { deployments: [{ deployment: embed }] }
`;
}

export async function startStack(
  input: {
    config?: (simulatorUrl: string) => string;
    simulator?: SimulatorOptions;
    env?: NodeJS.ProcessEnv;
    start?: Partial<StartOptions>;
  } = {},
): Promise<Stack> {
  const simulator = await startSimulator({ port: 0, ...input.simulator });
  const parsed = parseConfig((input.config ?? standardConfig)(simulator.url), {
    env: input.env ?? {},
    checks: providerChecks,
  });
  // Test files run in parallel: each stack gets its own in-memory store and spill directory
  // unless the test's config names them.
  const spillDirectory = await mkdtemp(join(tmpdir(), 'seed-test-spill-'));
  const config = {
    ...parsed,
    store: parsed.store.url === 'sqlite:./data/seed.db' ? { ...parsed.store, url: 'sqlite::memory:' } : parsed.store,
    ledger: parsed.ledger.spillDirectory === './data/spill' ? { ...parsed.ledger, spillDirectory } : parsed.ledger,
  };
  const records: CallRecord[] = [];
  const waiters: Array<() => void> = [];
  const seed = await startSeed({
    config,
    logger: silentLogger,
    port: 0,
    ...input.start,
    sinks: [
      {
        record(call) {
          records.push(call);
          for (const waiter of waiters.splice(0)) waiter();
        },
      },
      ...(input.start?.sinks ?? []),
    ],
  });
  return {
    seed,
    simulator,
    baseURL: `${seed.url}/v1`,
    records,
    async waitForRecords(count, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (records.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} call records, got ${records.length}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
      return records;
    },
    async close() {
      await seed.close();
      await simulator.close();
      await rm(spillDirectory, { recursive: true, force: true });
    },
  };
}
