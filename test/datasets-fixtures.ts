/**
 * Shared by the datasets and audit suites: stores on each backend, a terms registry, and the
 * wiring of audit + datasets the composition root does.
 */
import { after, before } from 'node:test';
import { createAuditLog, type AuditLog } from '../src/audit/index.ts';
import { createDatasets, datasetIntegrityCheck, type Datasets } from '../src/datasets/index.ts';
import { openStore, type Store } from '../src/store/index.ts';
import { loadTermsRegistry, type TermsRegistry } from '../src/terms/index.ts';
import type { Backend, TestDatabase } from './helpers/backends.ts';
import { ANONYMOUS_CALLER } from '../src/gateway/hooks.ts';
import type { CallRecord } from '../src/ledger/types.ts';
import { startStack, type Stack } from './helpers/stack.ts';

/** Opens a store on a fresh database of `backend` (its own schema on PostgreSQL). */
export async function openTestStore(backend: Backend): Promise<{ store: Store; database: TestDatabase; reopen(): Promise<Store> }> {
  const database = await backend.createDatabase();
  return { store: await openStore(database.storeOptions), database, reopen: () => openStore(database.storeOptions) };
}

/** The registry the composition root builds from an empty `terms:` section. */
export function shippedRegistry(): TermsRegistry {
  return loadTermsRegistry();
}

/**
 * For the enclosing `describe`: a store on `backend`, opened before its tests and closed after
 * them, with datasets over it. `datasets()` is valid inside the tests; `name(prefix)` gives each
 * call a dataset name of its own.
 */
export function datasetsPerSuite(backend: Backend): { datasets(): Datasets; name(prefix: string): string } {
  let store: Store | undefined;
  let database: TestDatabase | undefined;
  let datasets: Datasets | undefined;
  let count = 0;
  before(async () => {
    ({ store, database } = await openTestStore(backend));
    ({ datasets } = provenance({ store }));
  });
  after(async () => {
    await store?.close();
    await database?.dispose();
  });
  return {
    datasets() {
      if (datasets === undefined) throw new Error('datasetsPerSuite: used outside a test of its suite');
      return datasets;
    },
    name: (prefix) => `${prefix}-${(count += 1)}`,
  };
}

/** Audit log with the dataset integrity check, and datasets over it. */
export function provenance({ store, registry = shippedRegistry(), now }: { store: Store; registry?: TermsRegistry; now?: () => number }): {
  audit: AuditLog;
  datasets: Datasets;
  registry: TermsRegistry;
} {
  const audit = createAuditLog({ store, checks: [datasetIntegrityCheck({ store })], ...(now === undefined ? {} : { now }) });
  return { audit, datasets: createDatasets({ store, registry, audit, ...(now === undefined ? {} : { now }) }), registry };
}

/**
 * A gateway in front of the simulator whose callers all store payloads, every call record
 * inserted into `store` as the ledger writer would: what datasets are made from.
 */
export async function startStoringStack(input: { store: Store } & Parameters<typeof startStack>[0]): Promise<{ stack: Stack; stored(): Promise<void>; close(): Promise<void> }> {
  const writes: Promise<unknown>[] = [];
  const { store, ...stackInput } = input;
  const stack = await startStack({
    ...stackInput,
    start: {
      authenticate: () => ({ ...ANONYMOUS_CALLER, storePayloads: true }),
      sinks: [{ record: (call: CallRecord) => void writes.push(store.insertCalls([call])) }],
    },
  });
  return {
    stack,
    /** Resolves once every record received so far is in the store (rejects if an insert failed). */
    async stored() {
      await Promise.all(writes);
    },
    async close() {
      await stack.close();
      await Promise.allSettled(writes);
    },
  };
}
