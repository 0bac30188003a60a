/** Datasets with per-field lineage, the export gate, purge and terms re-check. */
export { createDatasets, type Datasets, type DatasetDiff } from './datasets.ts';
export { datasetIntegrityCheck } from './integrity.ts';
export { buildSample, contentHash, type FieldInput, type SampleInput } from './sample.ts';
export { samplePermissions, lineageOf, partitionByPurpose, refusalReport, type RefusalReport, type Violation } from './permissions.ts';
export { EXPORT_FORMATS, isExportFormat, formatRecord, type ExportFormat } from './formats.ts';
export { MANIFEST_FORMAT_VERSION } from './manifest.ts';
export type { ExportOptions, ExportResult } from './export.ts';
export { matchesSource, type PurgeSource, type PurgeOutcome } from './purge.ts';
export type { RecheckResult, StatusChange, ProfileChange } from './recheck.ts';
export type { LedgerFilters } from './ledger-source.ts';
export { parseDatasetReference, formatReference, checkDatasetName } from './reference.ts';
export { formatRefusal, formatVersion, formatVersionList, formatDiff, formatPurge, formatRecheck } from './format.ts';
export {
  TRANSFORMS,
  type Transform,
  type CallSource,
  type ImportSource,
  type HumanSource,
  type LineageSource,
  type Origin,
  type FieldReference,
  type FieldProvenance,
  type SampleRecord,
  type StoredSample,
  type VersionSource,
  type TermsSnapshot,
  type DatasetVersion,
} from './types.ts';
