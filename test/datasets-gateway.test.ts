/**
 * End to end through the gateway: purpose-aware routing recorded in the ledger, a dataset made
 * from stored outputs, the export gate, and a purge — on SQLite and PostgreSQL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../src/store/index.ts';
import { testBackends, type TestDatabase } from './helpers/backends.ts';
import { standardConfig, type Stack } from './helpers/stack.ts';
import { openTestStore, provenance, startStoringStack } from './datasets-fixtures.ts';

function config(simulatorUrl: string): string {
  // A route over two deployments whose terms differ on `train`: Azure's profile awaits review.
  return `${standardConfig(simulatorUrl)}  mixed: { deployments: [{ deployment: openai-mini }, { deployment: azure-mini }] }\n`;
}

for (const backend of await testBackends()) {
  describe(`datasets through the gateway (${backend.name})`, { skip: backend.skip }, () => {
    let store: Store;
    let database: TestDatabase;
    let stack: Stack;
    let storing: Awaited<ReturnType<typeof startStoringStack>>;
    before(async () => {
      ({ store, database } = await openTestStore(backend));
      storing = await startStoringStack({ store, config });
      stack = storing.stack;
    });
    after(async () => {
      await storing?.close();
      await store?.close();
      await database?.dispose();
    });

    async function chat({ route, purpose, content }: { route: string; purpose?: string; content: string }): Promise<number> {
      const response = await fetch(`${stack.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(purpose === undefined ? {} : { 'x-seed-purpose': purpose }) },
        body: JSON.stringify({ model: route, messages: [{ role: 'user', content }] }),
      });
      await response.text();
      return response.status;
    }

    test('calls for training reach only deployments whose terms allow it; datasets follow the terms; purge removes a provider', async () => {
      for (let index = 0; index < 8; index += 1) assert.equal(await chat({ route: 'mixed', purpose: 'train', content: `train ${index}` }), 200);
      assert.equal(await chat({ route: 'azure-mini', purpose: 'train', content: 'blocked' }), 403);
      for (let index = 0; index < 3; index += 1) assert.equal(await chat({ route: 'llama', purpose: 'train', content: `llama ${index}` }), 200);
      await stack.waitForRecords(12);
      await storing.stored();

      const trainCalls = (await store.listCalls({ filters: { status: 'ok' }, limit: 1000 })).calls.filter((call) => call.purpose === 'train');
      assert.equal(trainCalls.length, 11);
      assert.deepEqual([...new Set(trainCalls.map((call) => call.deployment))].sort(), ['local-llama', 'openai-mini']);
      assert.ok(trainCalls.every((call) => call.payload !== null && call.termsProfile !== null));

      const { datasets, audit } = provenance({ store });
      const { version: openaiOnly } = await datasets.createFromLedger({ name: 'gpt-outputs', filters: { route: 'mixed', purpose: 'train' }, actor: 'test' });
      assert.equal(openaiOnly.sampleCount, 8);
      const refused = await datasets.export({ dataset: 'gpt-outputs', purpose: 'train-competing', format: 'openai-chat', actor: 'test' });
      assert.ok(!refused.ok);
      assert.equal(refused.report.violating, 8);
      assert.deepEqual(refused.report.byClause.map((clause) => [clause.profile, clause.samples]), [['openai', 8]]);
      const accepted = await datasets.export({ dataset: 'gpt-outputs', purpose: 'evaluate', format: 'openai-chat', actor: 'test' });
      assert.ok(accepted.ok);
      const lines = accepted.jsonl.trim().split('\n').map((line) => JSON.parse(line) as { messages: { role: string; content: string }[] });
      assert.equal(lines.length, 8);
      assert.ok(lines.every((line) => line.messages[0]?.role === 'user' && line.messages.at(-1)?.role === 'assistant'));
      assert.equal((accepted.manifest['croissant'] as Record<string, unknown>)['rai:hasSyntheticData'], true);

      const { version: all } = await datasets.createFromLedger({ name: 'all-train', filters: { purpose: 'train' }, actor: 'test' });
      assert.equal(all.sampleCount, 11);
      const outcomes = await datasets.purge({ source: { provider: 'openai' }, actor: 'test' });
      const purged = outcomes.find((outcome) => outcome.dataset === 'all-train');
      assert.equal(purged?.to, 'all-train@2');
      assert.equal(purged?.removed.length, 8);
      const remaining = await datasets.samples('all-train');
      assert.equal(remaining.length, 3);
      for (const sample of remaining) {
        const sources = Object.values(sample.record.provenance).flatMap((field) => field.lineage);
        assert.ok(sources.every((source) => source.kind === 'call' && source.provider !== 'openai' && source.deployment === 'local-llama'));
      }
      assert.equal((await datasets.get('gpt-outputs')).sampleCount, 0);
      assert.deepEqual(await audit.verify(), { ok: true, entries: (await audit.list({ limit: 10_000 })).length });
    });
  });
}
