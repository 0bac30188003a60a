import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { createAuditLog, entryHash, GENESIS_HASH } from '../src/audit/index.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Store } from '../src/store/index.ts';
import { testBackends, type TestDatabase } from './helpers/backends.ts';
import { openTestStore } from './datasets-fixtures.ts';

const run = promisify(execFile);

for (const backend of await testBackends()) {
  describe(`audit log (${backend.name})`, { skip: backend.skip }, () => {
    const opened: Array<{ database: TestDatabase; stores: Store[] }> = [];
    async function fresh(storeCount = 1): Promise<Store[]> {
      const { store, database, reopen } = await openTestStore(backend);
      const stores: Store[] = [store];
      for (let index = 1; index < storeCount; index += 1) stores.push(await reopen());
      opened.push({ database, stores });
      return stores;
    }
    after(async () => {
      for (const { database, stores } of opened) {
        for (const store of stores) await store.close();
        await database.dispose();
      }
    });

    test('appends chain each entry to the previous one and verify accepts the chain', async () => {
      const [store] = await fresh();
      assert.ok(store);
      let clock = 1_000;
      const audit = createAuditLog({ store, now: () => (clock += 1) });
      const first = await audit.append({ actor: 'cli:jane', action: 'key.created', subject: 'key_1', details: { team: 'ml', nested: { b: 1, a: [1, 2] } } });
      const second = await audit.append({ actor: 'cli:jane', action: 'key.revoked', subject: 'key_1' });
      assert.equal(first.seq, 1);
      assert.equal(first.prevHash, GENESIS_HASH);
      assert.equal(second.seq, 2);
      assert.equal(second.prevHash, first.hash);
      assert.equal(first.hash, entryHash({ ...first }));
      assert.deepEqual(second.details, {});
      assert.deepEqual(await audit.verify(), { ok: true, entries: 2 });
      const listed = await audit.list();
      assert.deepEqual(listed, [first, second]);
      assert.deepEqual(await audit.list({ action: 'key.revoked' }), [second]);
      assert.deepEqual(await audit.list({ limit: 1 }), [second]);
      assert.deepEqual(await audit.list({ since: second.at }), [second]);
    });

    test('an empty actor, action or subject is refused', async () => {
      const [store] = await fresh();
      assert.ok(store);
      const audit = createAuditLog({ store });
      await assert.rejects(audit.append({ actor: ' ', action: 'key.created', subject: 'k' }), /non-empty actor/);
      assert.deepEqual(await audit.verify(), { ok: true, entries: 0 });
    });

    test('concurrent appenders never fork the chain', async () => {
      // On PostgreSQL, two stores are two connection pools; on SQLite one store serializes
      // in-process (other processes are covered by the next test).
      const stores = await fresh(backend.name === 'postgres' ? 2 : 1);
      const logs = stores.map((store) => createAuditLog({ store }));
      const entries = await Promise.all(
        Array.from({ length: 40 }, (_, index) => logs[index % logs.length]?.append({ actor: `writer-${index % 2}`, action: 'key.created', subject: `key_${index}` })),
      );
      const seqs = entries.map((entry) => entry?.seq).sort((left, right) => Number(left) - Number(right));
      assert.deepEqual(seqs, Array.from({ length: 40 }, (_, index) => index + 1));
      assert.deepEqual(await logs[0]?.verify(), { ok: true, entries: 40 });
    });

    // SQLite only: PostgreSQL's separate pools are covered by the test above.
    if (backend.name === 'sqlite') test('appenders in separate processes never fork the chain', async () => {
      const [store] = await fresh();
      assert.ok(store);
      const database = opened.at(-1)?.database;
      assert.ok(database);
      const worker = new URL('./audit-worker.ts', import.meta.url).pathname;
      await Promise.all(
        ['alpha', 'beta', 'gamma'].map((actor) => run(process.execPath, ['--import', 'tsx', worker, database.storeOptions.url, '15', actor], { timeout: 60_000 })),
      );
      const audit = createAuditLog({ store });
      assert.deepEqual(await audit.verify(), { ok: true, entries: 45 });
      const actors = (await audit.list({ limit: 100 })).map((entry) => entry.actor);
      for (const actor of ['alpha', 'beta', 'gamma']) assert.equal(actors.filter((each) => each === actor).length, 15);
    });

    test('an UPDATE of an entry is reported at that entry', async () => {
      const [store] = await fresh();
      assert.ok(store);
      const audit = createAuditLog({ store });
      for (let index = 0; index < 5; index += 1) await audit.append({ actor: 'system', action: 'key.created', subject: `key_${index}` });
      await sql`update audit_log set subject = 'key_forged' where seq = 3`.execute(store.db);
      const result = await audit.verify();
      assert.equal(result.ok, false);
      assert.ok(!result.ok);
      assert.equal(result.firstBadSeq, 3);
      assert.match(result.reason, /hash does not match/);
      assert.equal(result.entries, 5);
    });

    test('rewriting an entry together with its own hash is caught by the next link', async () => {
      const [store] = await fresh();
      assert.ok(store);
      const audit = createAuditLog({ store });
      for (let index = 0; index < 4; index += 1) await audit.append({ actor: 'system', action: 'key.created', subject: `key_${index}` });
      const [second] = await audit.list({ limit: 10 }).then((entries) => entries.filter((entry) => entry.seq === 2));
      assert.ok(second);
      const forged = { ...second, actor: 'mallory' };
      await sql`update audit_log set actor = ${forged.actor}, hash = ${entryHash(forged)} where seq = 2`.execute(store.db);
      const result = await audit.verify();
      assert.ok(!result.ok);
      assert.equal(result.firstBadSeq, 3);
      assert.match(result.reason, /prev_hash/);
    });

    test('a deleted entry in the middle is reported where the gap starts', async () => {
      const [store] = await fresh();
      assert.ok(store);
      const audit = createAuditLog({ store });
      for (let index = 0; index < 4; index += 1) await audit.append({ actor: 'system', action: 'key.created', subject: `key_${index}` });
      await sql`delete from audit_log where seq = 2`.execute(store.db);
      const result = await audit.verify();
      assert.ok(!result.ok);
      assert.equal(result.firstBadSeq, 2);
      assert.match(result.reason, /removed or inserted/);
    });

    test('a failed transaction leaves no entry behind', async () => {
      const [store] = await fresh();
      assert.ok(store);
      const audit = createAuditLog({ store });
      await assert.rejects(
        audit.transact(async ({ append }) => {
          await append({ actor: 'system', action: 'key.created', subject: 'key_1' });
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.deepEqual(await audit.list(), []);
      assert.equal((await audit.append({ actor: 'system', action: 'key.created', subject: 'key_2' })).seq, 1);
    });
  });
}
