/**
 * Property tests of lineage and the gate, without a database: random lineage graphs over the
 * shipped terms, checked against an oracle that walks the graph itself.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildSample, partitionByPurpose, samplePermissions, type LineageSource, type SampleInput, type SampleRecord, type StoredSample } from '../src/datasets/index.ts';
import { allows, PURPOSES, type Purpose } from '../src/terms/index.ts';
import { shippedRegistry } from './datasets-fixtures.ts';
import { fuzzRuns } from './helpers/fuzz-runs.ts';

const registry = shippedRegistry();
const PROFILE_IDS = registry.list().map((profile) => profile.id);
const FIELDS = ['text', 'label', 'messages'] as const;

/** A node: a root with a profile, or derived per field from fields of earlier nodes. */
interface NodeSpec {
  readonly root: string | null;
  readonly fields: readonly { name: (typeof FIELDS)[number]; parents: readonly { node: number; field: number }[] }[];
}

const nodeArbitrary = fc.record({
  root: fc.option(fc.constantFrom(...PROFILE_IDS), { nil: null }),
  fields: fc.uniqueArray(
    fc.record({ name: fc.constantFrom(...FIELDS), parents: fc.array(fc.record({ node: fc.nat(), field: fc.nat() }), { maxLength: 3 }) }),
    { minLength: 1, maxLength: 3, selector: (field) => field.name },
  ),
});

function sourceFor(profile: string, index: number): LineageSource {
  if (profile === 'human') return { kind: 'human', author: null };
  return { kind: 'import', source: `node-${index}`, termsProfile: profile, termsVersion: 'x' };
}

/** Builds the graph with the library, and the oracle's per-field profile sets by walking it. */
function buildGraph(specs: readonly NodeSpec[]): { samples: StoredSample[]; oracle: Array<Map<string, Set<string>>> } {
  const samples: StoredSample[] = [];
  const oracle: Array<Map<string, Set<string>>> = [];
  const parents = new Map<string, SampleRecord>();
  specs.forEach((spec, index) => {
    const fields: Record<string, SampleInput['fields'][string]> = {};
    const profiles = new Map<string, Set<string>>();
    for (const field of spec.fields) {
      // Parents must be earlier nodes; a node with no earlier nodes (or no root) is a root.
      const references = index === 0 ? [] : field.parents.map((parent) => {
        const node = parent.node % index;
        const names = [...(oracle[node]?.keys() ?? [])];
        return { node, field: names[parent.field % names.length] as string };
      });
      const root = spec.root ?? (references.length === 0 ? 'human' : null);
      const set = new Set<string>(root === null ? [] : [root]);
      for (const reference of references) for (const profile of oracle[reference.node]?.get(reference.field) ?? []) set.add(profile);
      profiles.set(field.name, set);
      fields[field.name] = {
        value: `${field.name} of ${index}`,
        origin: root === null ? { kind: 'derived' } : sourceFor(root, index),
        transform: references.length === 0 ? null : 'rewriting',
        derivedFrom: references.map((reference) => ({ sample: samples[reference.node]?.hash as string, field: reference.field })),
      };
    }
    const sample = buildSample({ input: { id: `s${index}`, fields }, parents });
    parents.set(sample.hash, sample.record);
    samples.push(sample);
    oracle.push(profiles);
  });
  return { samples, oracle };
}

function oracleAllows({ profiles, purpose }: { profiles: Iterable<string>; purpose: Purpose }): boolean {
  return [...profiles].every((id) => allows({ profile: registry.require(id), purpose }));
}

describe('lineage and the export gate (properties)', () => {
  test('no sample the gate lets through has a lineage that forbids the purpose, and none is refused without cause', () => {
    fc.assert(
      fc.property(fc.array(nodeArbitrary, { minLength: 1, maxLength: 12 }), fc.constantFrom(...PURPOSES), (specs, purpose) => {
        const { samples, oracle } = buildGraph(specs);
        const { allowed, violations } = partitionByPurpose({ samples, purpose, registry });
        for (const sample of allowed) {
          const index = Number(sample.record.id.slice(1));
          const profiles = [...(oracle[index]?.values() ?? [])].flatMap((set) => [...set]);
          assert.ok(oracleAllows({ profiles, purpose }), `${sample.record.id} passed the gate for ${purpose} with ${profiles.join(',')}`);
        }
        for (const violation of violations) {
          const index = Number(violation.sampleId.slice(1));
          const profiles = [...(oracle[index]?.values() ?? [])].flatMap((set) => [...set]);
          assert.ok(!oracleAllows({ profiles, purpose }));
          assert.ok(violation.forbiddenBy.length > 0);
          for (const responsibility of violation.forbiddenBy) assert.ok(profiles.includes(responsibility.profile));
        }
        assert.equal(allowed.length + violations.length, samples.length);
      }),
      fuzzRuns(100),
    );
  });

  test('per field: a field is judged by its own lineage only', () => {
    fc.assert(
      fc.property(fc.array(nodeArbitrary, { minLength: 1, maxLength: 10 }), fc.constantFrom(...PURPOSES), (specs, purpose) => {
        const { samples, oracle } = buildGraph(specs);
        samples.forEach((sample, index) => {
          for (const [field, profiles] of oracle[index] ?? []) {
            const verdict = samplePermissions({ record: sample.record, fields: [field], registry })[purpose].verdict;
            assert.equal(verdict !== 'notAllowed', oracleAllows({ profiles, purpose }), `${sample.record.id}.${field}`);
          }
        });
      }),
      fuzzRuns(100),
    );
  });

  test('a model label on a human text taints the label, not the text', () => {
    const models = PROFILE_IDS.filter((id) => !allows({ profile: registry.require(id), purpose: 'train-competing' }));
    assert.ok(models.includes('openai'));
    fc.assert(
      fc.property(fc.constantFrom(...models), fc.string(), (profile, text) => {
        const human = buildSample({ input: { id: 'h', fields: { text: { value: text, origin: { kind: 'human', author: 'annotator@acme' } } } }, parents: new Map() });
        const call: LineageSource = { kind: 'call', callId: 'call_1', provider: 'p', deployment: 'd', model: 'm', route: 'r', startedAt: 0, termsProfile: profile, termsVersion: null };
        const labelled = buildSample({
          input: {
            id: 'h',
            fields: {
              text: { value: text, origin: { kind: 'derived' }, derivedFrom: [{ sample: human.hash, field: 'text' }] },
              label: { value: 'positive', origin: call, transform: 'annotation', derivedFrom: [{ sample: human.hash, field: 'text' }] },
            },
          },
          parents: new Map([[human.hash, human.record]]),
        });
        assert.equal(samplePermissions({ record: labelled.record, fields: ['text'], registry })['train-competing'].verdict, 'allowed');
        const label = samplePermissions({ record: labelled.record, fields: ['label'], registry })['train-competing'];
        assert.equal(label.verdict, 'notAllowed');
        assert.equal(label.forbiddenBy[0]?.profile, profile);
        const textOnly = partitionByPurpose({ samples: [labelled], purpose: 'train-competing', registry, fieldsOf: () => ['text'] });
        assert.equal(textOnly.allowed.length, 1);
        assert.equal(partitionByPurpose({ samples: [labelled], purpose: 'train-competing', registry }).violations.length, 1);
      }),
      fuzzRuns(100),
    );
  });

  test('a reference to an unknown sample or field is refused', () => {
    assert.throws(() => buildSample({ input: { id: 'x', fields: { text: { value: 'a', origin: { kind: 'derived' }, derivedFrom: [{ sample: 'nope', field: 'text' }] } } }, parents: new Map() }), /unknown sample/);
    assert.throws(() => buildSample({ input: { id: 'x', fields: { text: { value: 'a', origin: { kind: 'derived' } } } }, parents: new Map() }), /needs derivedFrom/);
  });

  test('an unknown terms profile forbids every purpose (fail closed)', () => {
    const sample = buildSample({ input: { id: 'x', fields: { text: { value: 'a', origin: { kind: 'import', source: 'f', termsProfile: 'no-such-profile', termsVersion: '1' } } } }, parents: new Map() });
    for (const purpose of PURPOSES) assert.equal(samplePermissions({ record: sample.record, registry })[purpose].verdict, 'notAllowed');
  });
});
