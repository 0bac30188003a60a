/**
 * The export manifest: what was exported (dataset version, purpose, format, a SHA-256 per
 * line), under which terms (each profile's version and verdict), what the export obliges its
 * user to do, and machine-readable provenance in Croissant RAI / PROV terms. Pure.
 */
import { createHash } from 'node:crypto';
import { effectivePermissions, TERMS_DISCLAIMER, verdictFor, type Purpose, type TermsRegistry } from '../terms/index.ts';
import type { JsonValue } from '../audit/types.ts';
import type { ExportFormat } from './formats.ts';
import { lineageOf, profileFor, sourceProfile } from './permissions.ts';
import { formatReference } from './reference.ts';
import type { DatasetVersion, LineageSource, StoredSample } from './types.ts';

/** One exported line: its sample, the fields read, and the text written. */
export interface ExportedLine {
  readonly sample: StoredSample;
  readonly fieldsUsed: readonly string[];
  readonly text: string;
}

export const MANIFEST_FORMAT_VERSION = 1;

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Builds `manifest.json`'s content.
 *
 * @example
 * ```ts
 * const manifest = buildManifest({ version, purpose: 'evaluate', format: 'openai-chat', fields: null, file: 'chats@2.openai-chat.jsonl', lines, registry, createdAt: Date.now() });
 * ```
 */
export function buildManifest({
  version,
  derivedFrom,
  purpose,
  format,
  fields,
  file,
  lines,
  registry,
  createdAt,
}: {
  version: DatasetVersion;
  /** The version the export was made from when violations were dropped into a new one. */
  derivedFrom: DatasetVersion | null;
  purpose: Purpose;
  format: ExportFormat;
  fields: readonly string[] | null;
  file: string;
  lines: readonly ExportedLine[];
  registry: TermsRegistry;
  createdAt: number;
}): { readonly [key: string]: JsonValue } {
  const reference = formatReference(version);
  const sources = lines.flatMap((line) => lineageOf({ record: line.sample.record, fields: line.fieldsUsed }));
  const profileIds = [...new Set(sources.map(sourceProfile))].sort();
  const profiles = profileIds.map((id) => profileFor({ registry, id }));
  const combined = effectivePermissions({ profiles, human: registry.human })[purpose];
  const body = lines.map((line) => `${line.text}\n`).join('');
  return {
    manifestVersion: MANIFEST_FORMAT_VERSION,
    generator: 'seed',
    createdAt: new Date(createdAt).toISOString(),
    dataset: {
      name: version.name,
      version: version.version,
      reference,
      hash: version.hash,
      derivedFrom: derivedFrom === null ? null : { reference: formatReference(derivedFrom), hash: derivedFrom.hash },
    },
    purpose,
    verdict: combined.verdict,
    format,
    fields: fields === null ? null : [...fields],
    records: {
      file,
      count: lines.length,
      sha256: sha256(body),
      lines: lines.map((line) => ({ sampleId: line.sample.record.id, sampleHash: line.sample.hash, sha256: sha256(line.text) })),
    },
    terms: profiles.map((profile) => {
      const result = verdictFor({ profile, purpose });
      const recorded = [...new Set(sources.filter((source) => sourceProfile(source) === profile.id).map(recordedVersion))].sort();
      return {
        profile: profile.id,
        version: profile.version,
        recordedVersions: recorded,
        title: profile.title,
        source: profile.source,
        date: profile.date,
        review: profile.review,
        confirmed: profile.confirmation !== null,
        verdict: result.verdict,
        clause: result.clause,
        reason: result.reason,
      };
    }),
    obligations: combined.obligations.map((entry) => ({
      ...entry.obligation,
      imposedBy: entry.imposedBy.map((clause) => ({ ...clause })),
    })),
    croissant: croissant({ reference, sources, lines, createdAt }),
    disclaimer: TERMS_DISCLAIMER,
  };
}

/** The version of a source's profile recorded when the data came in ("unknown" for human and unrecorded). */
function recordedVersion(source: LineageSource): string {
  if (source.kind === 'human') return 'n/a';
  return source.termsVersion ?? 'unknown';
}

function croissant({
  reference,
  sources,
  lines,
  createdAt,
}: {
  reference: string;
  sources: readonly LineageSource[];
  lines: readonly ExportedLine[];
  createdAt: number;
}): { readonly [key: string]: JsonValue } {
  const derived = new Map<string, { [key: string]: JsonValue }>();
  const count = (key: string, entity: { [key: string]: JsonValue }) => {
    const known = derived.get(key);
    derived.set(key, { ...entity, 'seed:sources': Number(known?.['seed:sources'] ?? 0) + 1 });
  };
  for (const source of sources) {
    if (source.kind === 'call') {
      const key = `call\u0000${source.provider}\u0000${source.deployment}\u0000${source.model}\u0000${source.termsProfile}`;
      count(key, {
        '@type': 'prov:Entity',
        name: `outputs of ${source.model ?? 'unknown model'} (provider ${source.provider ?? 'unknown'}, deployment ${source.deployment ?? 'unknown'})`,
        'seed:termsProfile': source.termsProfile,
      });
    } else if (source.kind === 'import') {
      count(`import\u0000${source.source}\u0000${source.termsProfile}`, { '@type': 'prov:Entity', name: `import ${source.source}`, 'seed:termsProfile': source.termsProfile });
    } else {
      count(`human\u0000${source.author ?? ''}`, { '@type': 'prov:Entity', name: source.author === null ? 'human-written' : `human-written by ${source.author}`, 'seed:termsProfile': 'human' });
    }
  }
  const activities = new Map<string, number>();
  for (const line of lines) {
    for (const field of line.fieldsUsed) {
      const provenance = line.sample.record.provenance[field];
      if (provenance?.transform) activities.set(provenance.transform, (activities.get(provenance.transform) ?? 0) + 1);
      if (provenance?.origin.kind === 'call') activities.set('model-output', (activities.get('model-output') ?? 0) + 1);
    }
  }
  return {
    '@context': {
      '@vocab': 'https://schema.org/',
      cr: 'http://mlcommons.org/croissant/',
      rai: 'http://mlcommons.org/croissant/RAI/',
      prov: 'http://www.w3.org/ns/prov#',
      seed: 'https://seed.dev/ns#',
    },
    '@type': 'Dataset',
    name: reference,
    dateCreated: new Date(createdAt).toISOString(),
    'rai:hasSyntheticData': sources.some((source) => source.kind === 'call'),
    'prov:wasDerivedFrom': [...derived.values()],
    'prov:wasGeneratedBy': [
      ...[...activities.entries()].sort().map(([activity, fields]) => ({ '@type': 'prov:Activity', 'prov:type': `seed:${activity}`, 'seed:fields': fields })),
      { '@type': 'prov:Activity', 'prov:type': 'seed:export', 'prov:endedAtTime': new Date(createdAt).toISOString() },
    ],
  };
}
