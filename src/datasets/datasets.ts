/**
 * Datasets: immutable, content-addressed versions of samples with per-field lineage, made from
 * the ledger, imports or jobs; the export gate; purges; terms re-checks. One object over the
 * store, the terms registry and the audit log; every new version is audited.
 */
import type { AuditLog } from '../audit/index.ts';
import { SeedError } from '../errors.ts';
import type { Store } from '../store/index.ts';
import type { TermsRegistry } from '../terms/index.ts';
import { exportDataset, type ExportOptions, type ExportResult } from './export.ts';
import { samplesFromCsv } from './import-csv.ts';
import { samplesFromJsonl } from './import-jsonl.ts';
import { callSource, matchingCalls, sampleFromCall, type LedgerFilters } from './ledger-source.ts';
import { purge, type PurgeOutcome, type PurgeSource } from './purge.ts';
import { recheckTerms, type RecheckResult } from './recheck.ts';
import { checkDatasetName, parseDatasetReference } from './reference.ts';
import { currentTerms, listVersions, loadRecords, loadSamples, resolveVersion, writeVersion } from './repository.ts';
import { buildSample, type SampleInput } from './sample.ts';
import { termsSnapshot } from './snapshot.ts';
import type { CallSource, DatasetVersion, JsonValue, SampleRecord, StoredSample, TermsSnapshot, VersionSource } from './types.ts';

/** Samples added, removed and changed (same id, other content) between two versions. */
export interface DatasetDiff {
  readonly from: DatasetVersion;
  readonly to: DatasetVersion;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
}

export interface Datasets {
  /** A version from samples built by the caller (jobs); `derivedFrom` references resolve against stored samples. */
  createVersion(input: { name: string; samples: readonly SampleInput[]; description: string; actor: string }): Promise<DatasetVersion>;
  /** A version from stored call payloads; throws when no call matches. */
  createFromLedger(input: { name: string; filters: LedgerFilters; actor: string }): Promise<{ version: DatasetVersion; skipped: number }>;
  /** A version from JSONL text under a declared licence (a terms profile id, default `human`). */
  importJsonl(input: { name: string; text: string; file: string; licence?: string; actor: string }): Promise<DatasetVersion>;
  /** Imports CSV (a header row names the fields) under a declared licence. */
  importCsv(input: { name: string; text: string; file: string; licence?: string; actor: string }): Promise<DatasetVersion>;
  /** The lineage source of a ledger call, for building derived samples. */
  callSource(callId: string): Promise<CallSource>;
  /** Every version of every dataset (or of one), oldest first. */
  list(input?: { name?: string }): Promise<DatasetVersion[]>;
  /** A version by reference (`name`, `name@3`, `name@9f86d081`). */
  get(reference: string): Promise<DatasetVersion>;
  samples(reference: string): Promise<StoredSample[]>;
  /** The version's terms as last evaluated (creation, or the latest re-check). */
  terms(reference: string): Promise<TermsSnapshot>;
  diff(input: { from: string; to: string }): Promise<DatasetDiff>;
  export(options: ExportOptions): Promise<ExportResult>;
  purge(input: { source: PurgeSource; actor: string }): Promise<PurgeOutcome[]>;
  recheckTerms(input: { registry: TermsRegistry; actor: string }): Promise<RecheckResult>;
}

/**
 * @example
 * ```ts
 * const audit = createAuditLog({ store, checks: [datasetIntegrityCheck({ store })] });
 * const datasets = createDatasets({ store, registry, audit });
 * const { version } = await datasets.createFromLedger({ name: 'support', filters: { route: 'chat', since: Date.now() - 7 * 86_400_000 }, actor: 'cli:jane' });
 * const result = await datasets.export({ dataset: 'support@1', purpose: 'train-competing', format: 'openai-chat', actor: 'cli:jane' });
 * if (!result.ok) console.log(result.report.byClause);
 * ```
 */
export function createDatasets({
  store,
  registry,
  audit,
  now = Date.now,
}: {
  store: Pick<Store, 'db' | 'getCall' | 'listCalls'>;
  registry: TermsRegistry;
  audit: AuditLog;
  now?: () => number;
}): Datasets {
  const context = { store, audit, registry, now };
  const { db } = store;

  async function write({ name, samples, source, actor }: { name: string; samples: readonly StoredSample[]; source: VersionSource; actor: string }) {
    const parent = (await listVersions({ db, name })).at(-1)?.version ?? null;
    const { version } = await writeVersion({
      audit,
      version: { name: checkDatasetName(name), samples, source, terms: termsSnapshot({ samples, registry }), parentVersion: parent, actor, now: now() },
    });
    return version;
  }

  async function build(inputs: readonly SampleInput[]): Promise<StoredSample[]> {
    const references = inputs.flatMap((input) => Object.values(input.fields).flatMap((field) => (field.derivedFrom ?? []).map((reference) => reference.sample)));
    const parents: Map<string, SampleRecord> = await loadRecords({ db, hashes: references });
    return inputs.map((input) => buildSample({ input, parents }));
  }

  return Object.freeze({
    async createVersion({ name, samples, description, actor }) {
      if (samples.length === 0) throw new SeedError('invalid_request', 'a dataset version needs at least one sample');
      return write({ name, samples: await build(samples), source: { kind: 'samples', description }, actor });
    },
    async createFromLedger({ name, filters, actor }) {
      const { calls, skipped } = await matchingCalls({ store, filters });
      if (calls.length === 0) {
        throw new SeedError('not_found', `no successful chat calls with stored payloads match ${JSON.stringify(filters)}` + (skipped > 0 ? ` (${skipped} matched without a payload or terms profile)` : ''));
      }
      const samples = await build(calls.map(sampleFromCall));
      const recorded = Object.fromEntries(Object.entries(filters).filter(([, value]) => value !== undefined)) as { [key: string]: JsonValue };
      return { version: await write({ name, samples, source: { kind: 'ledger', filters: recorded }, actor }), skipped };
    },
    async importJsonl({ name, text, file, licence = 'human', actor }) {
      const profile = registry.require(licence);
      const inputs = samplesFromJsonl({ text, source: { kind: 'import', source: file, termsProfile: profile.id, termsVersion: profile.version } });
      return write({ name, samples: await build(inputs), source: { kind: 'import', file, licence: profile.id }, actor });
    },
    async importCsv({ name, text, file, licence = 'human', actor }) {
      const profile = registry.require(licence);
      const inputs = samplesFromCsv({ text, source: { kind: 'import', source: file, termsProfile: profile.id, termsVersion: profile.version } });
      return write({ name, samples: await build(inputs), source: { kind: 'import', file, licence: profile.id }, actor });
    },
    async callSource(callId) {
      const call = await store.getCall(callId);
      if (call === null) throw new SeedError('not_found', `no call ${callId} in the ledger`);
      return callSource(call);
    },
    list: ({ name } = {}) => listVersions({ db, ...(name === undefined ? {} : { name }) }),
    get: (reference) => resolveVersion({ db, reference: parseDatasetReference(reference) }),
    async samples(reference) {
      const version = await resolveVersion({ db, reference: parseDatasetReference(reference) });
      return loadSamples({ db, name: version.name, version: version.version });
    },
    async terms(reference) {
      return currentTerms({ db, version: await resolveVersion({ db, reference: parseDatasetReference(reference) }) });
    },
    async diff({ from, to }) {
      const [left, right] = await Promise.all([from, to].map((reference) => resolveVersion({ db, reference: parseDatasetReference(reference) })));
      if (left === undefined || right === undefined) throw new SeedError('internal_error', 'diff resolved no versions');
      const [leftSamples, rightSamples] = await Promise.all([left, right].map((version) => loadSamples({ db, name: version.name, version: version.version })));
      const before = new Map((leftSamples ?? []).map((sample) => [sample.record.id, sample.hash]));
      const after = new Map((rightSamples ?? []).map((sample) => [sample.record.id, sample.hash]));
      return {
        from: left,
        to: right,
        added: [...after.keys()].filter((id) => !before.has(id)).sort(),
        removed: [...before.keys()].filter((id) => !after.has(id)).sort(),
        changed: [...after.entries()].filter(([id, hash]) => before.has(id) && before.get(id) !== hash).map(([id]) => id).sort(),
      };
    },
    export: (options) => exportDataset({ context, options }),
    purge: ({ source, actor }) => purge({ context, criteria: source, actor }),
    recheckTerms: ({ registry: current, actor }) => recheckTerms({ context, registry: current, actor }),
  } satisfies Datasets);
}
