/**
 * Datasets over a real store, on SQLite and PostgreSQL: the export gate and purge as
 * properties over random lineage graphs, tamper evidence, diff, drop-violations, re-check.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import fc from 'fast-check';
import type { SampleInput } from '../src/datasets/index.ts';
import type { Store } from '../src/store/index.ts';
import { loadTermsRegistry, type Purpose } from '../src/terms/index.ts';
import { makeCall, testBackends, type TestDatabase } from './helpers/backends.ts';
import { openTestStore, provenance, shippedRegistry } from './datasets-fixtures.ts';
import { fuzzRuns } from './helpers/fuzz-runs.ts';

const registry = shippedRegistry();
const PROVIDERS = [
  { provider: 'openai', deployment: 'gpt', model: 'gpt-4o-mini', termsProfile: 'openai' },
  { provider: 'anthropic', deployment: 'claude', model: 'claude-sonnet', termsProfile: 'anthropic' },
  { provider: 'openai-compatible', deployment: 'llama', model: 'llama-3.1-8b', termsProfile: 'llama-3.1' },
  { provider: 'openai-compatible', deployment: 'old-llama', model: 'llama-2-70b', termsProfile: 'llama-2' },
] as const;

const graphArbitrary = fc.array(
  fc.record({
    root: fc.option(fc.nat({ max: PROVIDERS.length - 1 }), { nil: null }),
    parents: fc.array(fc.nat(), { maxLength: 2 }),
  }),
  { minLength: 1, maxLength: 8 },
);

for (const backend of await testBackends()) {
  describe(`datasets over the store (${backend.name})`, { skip: backend.skip }, () => {
    let store: Store;
    let database: TestDatabase;
    let run = 0;
    before(async () => {
      ({ store, database } = await openTestStore(backend));
    });
    after(async () => {
      await store?.close();
      await database?.dispose();
    });

    /** Stores a random graph as one dataset; returns each sample's provider indexes (the oracle). */
    async function storeGraph(graph: readonly { root: number | null; parents: readonly number[] }[]) {
      run += 1;
      const { datasets } = provenance({ store });
      const name = `graph-${run}`;
      const closures: Array<Set<number>> = [];
      const inputs: SampleInput[] = [];
      const calls = graph.map((node, index) => makeCall({ id: `call_${run}_${index}`, ...PROVIDERS[node.root ?? 0], startedAt: 1_000 + index }));
      await store.insertCalls(calls);
      // Roots first as one version, so derived samples can reference their hashes.
      const hashes = new Map<number, string>();
      for (const [index, node] of graph.entries()) {
        const parents = index === 0 ? [] : [...new Set(node.parents.map((parent) => parent % index))];
        const closure = new Set<number>(node.root === null ? [] : [node.root]);
        for (const parent of parents) for (const each of closures[parent] ?? []) closure.add(each);
        closures.push(closure);
        const origin = node.root === null ? (parents.length === 0 ? { kind: 'human' as const, author: null } : { kind: 'derived' as const }) : await datasets.callSource(`call_${run}_${index}`);
        // Both fields come from the same origin and parents, so the sample's lineage is the node's.
        const derivedFrom = parents.map((parent) => ({ sample: hashes.get(parent) as string, field: 'messages' }));
        const transform = parents.length === 0 ? null : ('generation' as const);
        const finalInput: SampleInput = {
          id: `s${index}`,
          fields: {
            messages: { value: [{ role: 'user', content: `q${index}` }], origin, transform, derivedFrom },
            completion: { value: `a${index}`, origin, transform, derivedFrom },
          },
        };
        const version = await datasets.createVersion({ name: `${name}-node-${index}`, samples: [finalInput], description: 'node', actor: 'test' });
        const [stored] = await datasets.samples(`${version.name}@${version.version}`);
        hashes.set(index, stored?.hash as string);
        inputs.push(finalInput);
      }
      const combined = await datasets.createVersion({ name, samples: inputs, description: 'graph', actor: 'test' });
      return { datasets, name, combined, closures };
    }

    test('property: an export never contains a sample whose lineage forbids the purpose', async () => {
      await fc.assert(
        fc.asyncProperty(graphArbitrary, fc.constantFrom<Purpose>('evaluate', 'train', 'train-competing'), async (graph, purpose) => {
          const { datasets, name, closures } = await storeGraph(graph);
          const forbidden = (index: number) =>
            [...(closures[index] ?? [])].some((provider) => registry.require(PROVIDERS[provider]?.termsProfile ?? '').purposes[purpose].verdict === 'notAllowed');
          const result = await datasets.export({ dataset: name, purpose, format: 'openai-chat', dropViolations: true, actor: 'test' });
          const expectedAllowed = graph.map((_, index) => index).filter((index) => !forbidden(index));
          if (!result.ok) {
            assert.equal(expectedAllowed.length, 0, 'refused although some samples were allowed');
            return;
          }
          const exported = (result.manifest['records'] as { lines: { sampleId: string }[] }).lines.map((line) => line.sampleId).sort();
          assert.deepEqual(exported, expectedAllowed.map((index) => `s${index}`).sort());
          assert.equal(result.jsonl.trim().split('\n').length, exported.length);
        }),
        fuzzRuns(15),
      );
    });

    test('property: purging a source leaves no descendant of it in any latest version', async () => {
      await fc.assert(
        fc.asyncProperty(graphArbitrary, fc.nat({ max: PROVIDERS.length - 1 }), async (graph, purged) => {
          const { datasets, closures } = await storeGraph(graph);
          const target = PROVIDERS[purged];
          assert.ok(target);
          await datasets.purge({ source: { deployment: target.deployment }, actor: 'test' });
          const latest = new Map((await datasets.list()).map((version) => [version.name, version]));
          for (const version of latest.values()) {
            for (const sample of await datasets.samples(`${version.name}@${version.version}`)) {
              const lineage = Object.values(sample.record.provenance).flatMap((field) => field.lineage);
              assert.ok(!lineage.some((source) => source.kind === 'call' && source.deployment === target.deployment), `${version.name} keeps ${sample.record.id}`);
            }
          }
          // The oracle agrees with what the graph dataset kept.
          const name = [...latest.keys()].filter((each) => /^graph-\d+$/.test(each)).sort((left, right) => Number(right.slice(6)) - Number(left.slice(6)))[0];
          const kept = (await datasets.samples(name ?? '')).map((sample) => sample.record.id).sort();
          assert.deepEqual(kept, graph.map((_, index) => index).filter((index) => !closures[index]?.has(purged)).map((index) => `s${index}`).sort());
        }),
        fuzzRuns(10),
      );
      const { audit } = provenance({ store });
      assert.deepEqual((await audit.verify()).ok, true);
    });

    test('an UPDATE of a sample record, a membership or a terms snapshot makes verify name the version entry', async () => {
      const { database: own, store: isolated } = await openTestStore(backend);
      try {
        const { datasets, audit } = provenance({ store: isolated });
        await datasets.importJsonl({ name: 'first', text: '{"id":"a","text":"x"}\n', file: 'a.jsonl', actor: 'test' });
        const version = await datasets.importJsonl({ name: 'notes', text: '{"id":"a","text":"hello"}\n{"id":"b","text":"bye"}\n', file: 'n.jsonl', licence: 'openai', actor: 'test' });
        await audit.append({ actor: 'test', action: 'key.created', subject: 'key_1' });
        assert.deepEqual(await audit.verify(), { ok: true, entries: 3 });
        const [entry] = await audit.list({ action: 'dataset.version.created' }).then((entries) => entries.filter((each) => each.subject === 'notes@1'));
        assert.ok(entry);

        const [sample] = (await datasets.samples('notes@1')).filter((each) => each.record.id === 'b');
        assert.ok(sample);
        await sql`update dataset_samples set record = replace(record, 'bye', 'goodbye') where hash = ${sample.hash}`.execute(isolated.db);
        let result = await audit.verify();
        assert.ok(!result.ok);
        assert.equal(result.firstBadSeq, entry.seq);
        assert.match(result.reason, /notes@1: sample "b" was modified/);
        await sql`update dataset_samples set record = replace(record, 'goodbye', 'bye') where hash = ${sample.hash}`.execute(isolated.db);
        assert.equal((await audit.verify()).ok, true);

        await sql`delete from dataset_members where name = 'notes' and sample_id = 'a'`.execute(isolated.db);
        result = await audit.verify();
        assert.ok(!result.ok);
        assert.equal(result.firstBadSeq, entry.seq);
        assert.match(result.reason, /content hash mismatch/);

        await sql`update dataset_versions set terms = replace(terms, '"forbidden":2', '"forbidden":0') where name = 'notes'`.execute(isolated.db);
        result = await audit.verify();
        assert.ok(!result.ok);
        assert.equal(result.firstBadSeq, entry.seq);
        assert.equal(version.version, 1);
      } finally {
        await isolated.close();
        await own.dispose();
      }
    });

    test('a version inserted without an audit entry is reported', async () => {
      const { database: own, store: isolated } = await openTestStore(backend);
      try {
        const { datasets, audit } = provenance({ store: isolated });
        await datasets.importJsonl({ name: 'notes', text: '{"text":"hello"}\n', file: 'n.jsonl', actor: 'test' });
        await sql`insert into dataset_versions (name, version, hash, parent_version, source, terms, sample_count, created_at, created_by)
          select name, 2, hash, 1, source, terms, sample_count, created_at, created_by from dataset_versions where name = 'notes'`.execute(isolated.db);
        const result = await audit.verify();
        assert.ok(!result.ok);
        assert.equal(result.firstBadSeq, 0);
        assert.match(result.reason, /notes@2 exists but no audit entry/);
      } finally {
        await isolated.close();
        await own.dispose();
      }
    });

    test('diff, references by number and hash, and drop-violations writing an audited version', async () => {
      const { datasets, audit } = provenance({ store });
      const first = await datasets.importJsonl({ name: 'mixed', text: '{"id":"h1","instruction":"hi","output":"yo"}\n', file: 'h.jsonl', actor: 'test' });
      const calls = [makeCall({ id: `mixed_call_${backend.name}`, payload: { request: { messages: [{ role: 'user', content: 'q' }] }, response: { choices: [{ message: { role: 'assistant', content: 'a' } }] } } })];
      await store.insertCalls(calls);
      const openaiSource = await datasets.callSource(calls[0]?.id ?? '');
      const previous = await datasets.samples('mixed@1');
      const second = await datasets.createVersion({
        name: 'mixed',
        samples: [
          ...previous.map((sample) => ({ id: sample.record.id, fields: Object.fromEntries(Object.keys(sample.record.fields).map((field) => [field, { value: sample.record.fields[field] ?? null, origin: { kind: 'derived' as const }, derivedFrom: [{ sample: sample.hash, field }] }])) })),
          { id: 'gpt1', fields: { instruction: { value: 'q', origin: openaiSource }, output: { value: 'a', origin: openaiSource } } },
        ],
        description: 'add a model sample',
        actor: 'test',
      });
      assert.equal(second.version, first.version + 1);
      assert.equal((await datasets.get(`mixed@${second.hash.slice(0, 10)}`)).version, second.version);
      const diff = await datasets.diff({ from: 'mixed@1', to: 'mixed@2' });
      assert.deepEqual([diff.added, diff.removed], [['gpt1'], []]);

      const refused = await datasets.export({ dataset: 'mixed@2', purpose: 'train-competing', format: 'alpaca', actor: 'test' });
      assert.ok(!refused.ok);
      assert.deepEqual(refused.report.sampleIds, ['gpt1']);
      assert.equal(refused.report.byClause[0]?.profile, 'openai');
      const dropped = await datasets.export({ dataset: 'mixed@2', purpose: 'train-competing', format: 'alpaca', dropViolations: true, actor: 'test' });
      assert.ok(dropped.ok);
      assert.equal(dropped.version.version, 3);
      assert.equal(dropped.version.parentVersion, 2);
      assert.deepEqual(JSON.parse(dropped.jsonl), { instruction: 'hi', input: '', output: 'yo' });
      assert.equal((await datasets.diff({ from: 'mixed@2', to: 'mixed@3' })).removed[0], 'gpt1');
      const actions = (await audit.list({ limit: 1000 })).filter((entry) => entry.subject.startsWith('mixed@')).map((entry) => `${entry.action} ${entry.subject}`);
      assert.deepEqual(actions.slice(-4), ['dataset.version.created mixed@2', 'dataset.export.refused mixed@2', 'dataset.version.created mixed@3', 'dataset.exported mixed@3']);
    });

    test('terms re-check lists the versions whose export status changed, once', async () => {
      const { datasets, audit } = provenance({ store });
      await datasets.importJsonl({ name: 'recheck', text: '{"text":"a"}\n{"text":"b"}\n', file: 'r.jsonl', licence: 'openai', actor: 'test' });
      const relaxed = loadTermsRegistry({
        overrides: [
          {
            id: 'openai',
            version: '2099-01-01',
            purposes: { 'train-competing': { verdict: 'allowed', clause: 'hypothetical 2099 terms', reason: 'test', obligations: [] } },
          },
        ],
      });
      const result = await datasets.recheckTerms({ registry: relaxed, actor: 'test' });
      assert.ok(result.changedProfiles.some((change) => change.profile === 'openai' && change.to === '2099-01-01'));
      const change = result.changed.find((each) => each.dataset === 'recheck@1');
      assert.ok(change);
      assert.deepEqual(change.purposes.map((each) => [each.purpose, each.exportableBefore, each.exportableAfter]), [['train-competing', false, true]]);
      assert.equal((await datasets.terms('recheck@1')).status['train-competing']?.forbidden, 0);
      const entries = await audit.list({ action: 'terms.changed' });
      assert.equal(entries.at(-1)?.subject.includes('openai'), true);
      const again = await datasets.recheckTerms({ registry: relaxed, actor: 'test' });
      assert.deepEqual([again.rechecked, again.changed.length], [0, 0]);
      assert.equal((await audit.list({ action: 'terms.changed' })).length, entries.length);
    });
  });
}
