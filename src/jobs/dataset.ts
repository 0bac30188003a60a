/**
 * A generation job's outputs as a dataset version: the job's calls, found in the ledger by their
 * `seed_job` metadata, become samples whose lineage is their call (deployment, terms profile and
 * version), through the same `createFromLedger` as `seed datasets create --from-ledger`.
 */
import type { Datasets, DatasetVersion, LedgerFilters } from '../datasets/index.ts';
import { matchingCalls } from '../datasets/ledger-source.ts';
import { SeedError } from '../errors.ts';
import type { Store } from '../store/index.ts';
import type { Purpose } from '../terms/index.ts';

/** The ledger filters that select one job's calls. */
export function jobCallFilters(input: { jobId: string; purpose: Purpose; startedAt: number }): LedgerFilters {
  // The gateway stamps a call when it starts; a minute's margin covers clocks a little apart.
  return { since: input.startedAt - 60_000, purpose: input.purpose, metadata: { seed_job: input.jobId } };
}

/**
 * Waits until the ledger holds the job's `expected` calls (the gateway writes them in batches,
 * off the request path), then creates the dataset version from them.
 */
export async function datasetFromJob(input: {
  store: Pick<Store, 'listCalls'>;
  datasets: Pick<Datasets, 'createFromLedger'>;
  name: string;
  jobId: string;
  purpose: Purpose;
  startedAt: number;
  /** Calls the job saw succeed. */
  expected: number;
  actor: string;
  /** How long to wait for the ledger (default 30 s). */
  timeoutMs?: number;
  pollMs?: number;
}): Promise<DatasetVersion> {
  const filters = jobCallFilters(input);
  const deadline = Date.now() + (input.timeoutMs ?? 30_000);
  for (;;) {
    const { calls, skipped } = await matchingCalls({ store: input.store, filters });
    if (calls.length + skipped >= input.expected) {
      if (skipped > 0) {
        throw new SeedError(
          'unprocessable_entity',
          `${skipped} of the job's ${calls.length + skipped} calls were recorded without their payloads, so they cannot become samples: ` +
            'run the job with a key that stores payloads (seed keys create … --store-payloads)',
        );
      }
      break;
    }
    if (Date.now() >= deadline) {
      throw new SeedError(
        'unprocessable_entity',
        `the ledger holds ${calls.length + skipped} of the job's ${input.expected} calls after ${Math.round((input.timeoutMs ?? 30_000) / 1000)} s: ` +
          'is this the gateway\'s store (--config / --store)? Once they are there: ' +
          `seed datasets create ${input.name} --from-ledger --purpose ${input.purpose} --metadata seed_job=${input.jobId}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, input.pollMs ?? 250));
  }
  const { version } = await input.datasets.createFromLedger({ name: input.name, filters, actor: input.actor });
  return version;
}
