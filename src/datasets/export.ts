/**
 * The export gate. Formats every sample, checks the lineage of the fields each record reads
 * against the purpose, and either refuses with a report, or (with `dropViolations`) writes a
 * new version without the violating samples and exports that. Every outcome is audited.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEntry, AuditLog, JsonValue } from '../audit/index.ts';
import type { Store } from '../store/index.ts';
import { SeedError } from '../errors.ts';
import type { Purpose, TermsRegistry } from '../terms/index.ts';
import { formatRecord, type ExportFormat } from './formats.ts';
import { buildManifest, sha256, type ExportedLine } from './manifest.ts';
import { partitionByPurpose, refusalReport, type RefusalReport } from './permissions.ts';
import { formatReference, parseDatasetReference } from './reference.ts';
import { loadSamples, resolveVersion, writeVersion } from './repository.ts';
import { termsSnapshot } from './snapshot.ts';
import type { DatasetVersion, StoredSample } from './types.ts';

export interface ExportOptions {
  /** `name`, `name@3` or `name@<hash prefix>`; the latest version when none is given. */
  readonly dataset: string;
  readonly purpose: Purpose;
  readonly format: ExportFormat;
  /** Write a new version without the samples the purpose forbids, and export that. */
  readonly dropViolations?: boolean;
  /** Export only these fields (and check only their lineage); default: whatever the format reads. */
  readonly fields?: readonly string[];
  /** Write `<name>@<version>.<format>.jsonl` and `manifest.json` here. */
  readonly outDirectory?: string;
  readonly actor: string;
}

export type ExportResult =
  | {
      readonly ok: true;
      /** The version exported (new when violations were dropped). */
      readonly version: DatasetVersion;
      /** What was dropped, and from which version; null when nothing was. */
      readonly dropped: { readonly from: DatasetVersion; readonly report: RefusalReport } | null;
      readonly jsonl: string;
      readonly manifest: { readonly [key: string]: JsonValue };
      readonly files: { readonly records: string; readonly manifest: string } | null;
      readonly entry: AuditEntry;
    }
  | { readonly ok: false; readonly version: DatasetVersion; readonly report: RefusalReport; readonly entry: AuditEntry };

export interface ExportContext {
  readonly store: Pick<Store, 'db'>;
  readonly audit: AuditLog;
  readonly registry: TermsRegistry;
  readonly now: () => number;
}

/** See {@link ExportOptions}; `Datasets.export` is the public entry. */
export async function exportDataset({ context, options }: { context: ExportContext; options: ExportOptions }): Promise<ExportResult> {
  const { store, audit, registry, now } = context;
  const requested = await resolveVersion({ db: store.db, reference: parseDatasetReference(options.dataset) });
  const samples = await loadSamples({ db: store.db, name: requested.name, version: requested.version });
  const formatted = new Map(samples.map((sample) => [sample.hash, format({ sample, options })]));
  const fieldsOf = (sample: StoredSample) => formatted.get(sample.hash)?.fieldsUsed ?? [];
  const { allowed, violations } = partitionByPurpose({ samples, purpose: options.purpose, registry, fieldsOf });
  const report = refusalReport({ purpose: options.purpose, total: samples.length, violations });
  const subject = formatReference(requested);

  if (violations.length > 0 && (!options.dropViolations || allowed.length === 0)) {
    const entry = await audit.append({
      actor: options.actor,
      action: 'dataset.export.refused',
      subject,
      details: { purpose: options.purpose, format: options.format, violating: report.violating, total: report.total, byClause: report.byClause.map((clause) => ({ ...clause })) },
    });
    return { ok: false, version: requested, report, entry };
  }

  let version = requested;
  if (violations.length > 0) {
    ({ version } = await writeVersion({
      audit,
      version: {
        name: requested.name,
        samples: allowed,
        source: { kind: 'drop-violations', from: requested.version, purpose: options.purpose, fields: options.fields === undefined ? null : [...options.fields] },
        terms: termsSnapshot({ samples: allowed, registry }),
        parentVersion: requested.version,
        actor: options.actor,
        now: now(),
      },
    }));
  }

  const lines: ExportedLine[] = allowed.map((sample) => {
    const result = formatted.get(sample.hash);
    if (result === undefined) throw new SeedError('internal_error', `sample ${sample.record.id} was not formatted`);
    return { sample, fieldsUsed: result.fieldsUsed, text: JSON.stringify(result.record) };
  });
  const file = `${formatReference(version)}.${options.format}.jsonl`;
  const manifest = buildManifest({
    version,
    derivedFrom: version === requested ? null : requested,
    purpose: options.purpose,
    format: options.format,
    fields: options.fields ?? null,
    file,
    lines,
    registry,
    createdAt: now(),
  });
  const jsonl = lines.map((line) => `${line.text}\n`).join('');
  const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
  let files: { records: string; manifest: string } | null = null;
  if (options.outDirectory !== undefined) {
    mkdirSync(options.outDirectory, { recursive: true });
    files = { records: join(options.outDirectory, file), manifest: join(options.outDirectory, 'manifest.json') };
    writeFileSync(files.records, jsonl);
    writeFileSync(files.manifest, manifestText);
  }
  const entry = await audit.append({
    actor: options.actor,
    action: 'dataset.exported',
    subject: formatReference(version),
    details: {
      purpose: options.purpose,
      format: options.format,
      fields: options.fields === undefined ? null : [...options.fields],
      records: lines.length,
      recordsSha256: sha256(jsonl),
      manifestSha256: sha256(manifestText),
      droppedFrom: version === requested ? null : subject,
      dropped: report.violating,
    },
  });
  return { ok: true, version, dropped: version === requested ? null : { from: requested, report }, jsonl, manifest, files, entry };
}

function format({ sample, options }: { sample: StoredSample; options: ExportOptions }) {
  const selected = options.fields;
  const fields = selected === undefined ? sample.record.fields : Object.fromEntries(Object.entries(sample.record.fields).filter(([name]) => selected.includes(name)));
  return formatRecord({ format: options.format, sampleId: sample.record.id, fields });
}
