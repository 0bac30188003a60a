import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAuditLog } from '../src/audit/index.ts';
import { isSeedError } from '../src/errors.ts';
import { openStore } from '../src/store/index.ts';
import { createAuthenticator } from '../src/tenants/index.ts';
import { makeCall } from './helpers/backends.ts';

const run = promisify(execFile);
const SEED = join(import.meta.dirname, '..', 'bin', 'seed.mjs');

describe('seed orgs|teams|keys|usage (CLI over a SQLite file)', () => {
  let directory: string;
  let storeUrl: string;

  async function seed(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
    try {
      const { stdout, stderr } = await run(process.execPath, [SEED, ...args, '--store', storeUrl], { cwd: directory });
      return { stdout, stderr, code: 0 };
    } catch (error) {
      const failed = error as { stdout: string; stderr: string; code: number };
      return { stdout: failed.stdout, stderr: failed.stderr, code: failed.code };
    }
  }

  before(() => {
    directory = mkdtempSync(join(tmpdir(), 'seed-cli-'));
    storeUrl = `sqlite:${join(directory, 'seed.db')}`;
  });
  after(() => rmSync(directory, { recursive: true, force: true }));

  test('create an org, a team and a key; the secret is printed once and works; revoke it', async () => {
    assert.equal((await seed('orgs', 'create', 'acme', '--usd-per-month', '500')).code, 0);
    const team = await seed('teams', 'create', 'search', '--org', 'acme', '--rpm', '100');
    assert.equal(team.code, 0, team.stderr);
    assert.match(team.stdout, /search\s+rpm=100/);

    const created = await seed('keys', 'create', '--team', 'acme/search', '--name', 'ci', '--routes', 'gpt-4o-mini,llama', '--region', 'eu', '--tpm', '5000', '--usd-per-day', '2.5', '--expires', '30d', '--store-payloads');
    assert.equal(created.code, 0, created.stderr);
    const secret = created.stdout.trim();
    assert.match(secret, /^sk-seed-[A-Za-z0-9_-]{43}$/, 'stdout is the secret alone, for scripts');
    assert.match(created.stderr, /shown once/);

    const listed = await seed('keys', 'list', '--team', 'search');
    assert.equal(listed.code, 0);
    assert.ok(!listed.stdout.includes(secret));
    const [header, row] = listed.stdout.trim().split('\n');
    assert.match(header ?? '', /^ID\s+KEY\s+TEAM\s+NAME\s+REGION\s+ROUTES\s+LIMITS\s+EXPIRES\s+STATUS$/);
    assert.match(row ?? '', /sk-seed-.{4}…\s+team_\S+\s+ci\s+eu\s+gpt-4o-mini,llama\s+tpm=5000,usdPerDay=2.5\s+\d{4}-\d{2}-\d{2} \d{2}:\d{2}\s+active$/);
    // Columns line up: each header word starts where its cells start.
    assert.equal(row?.indexOf('sk-seed-'), header?.indexOf('KEY'));
    const keyId = row?.split(/\s+/)[0] ?? '';

    const store = await openStore({ url: storeUrl });
    const authenticator = createAuthenticator({ store, mode: 'keys', host: '127.0.0.1' });
    try {
      const caller = await authenticator.authenticate({ authorization: `Bearer ${secret}` });
      assert.equal(caller.keyId, keyId);
      assert.equal(caller.region, 'eu');
      assert.equal(caller.storePayloads, true);

      const revoked = await seed('keys', 'revoke', keyId);
      assert.equal(revoked.code, 0, revoked.stderr);
      await authenticator.refresh();
      await assert.rejects(Promise.resolve(authenticator.authenticate({ authorization: `Bearer ${secret}` })), (error: unknown) => isSeedError(error) && error.code === 'key_revoked');
      assert.match((await seed('keys', 'list')).stdout, /revoked$/m);

      const entries = await createAuditLog({ store }).list();
      const actor = `cli:${userInfo().username}`;
      assert.deepEqual(
        entries.map((entry) => [entry.actor, entry.action]),
        [[actor, 'org.created'], [actor, 'team.created'], [actor, 'key.created'], [actor, 'key.revoked']],
      );
      assert.ok(!JSON.stringify(entries).includes(secret));
    } finally {
      await authenticator.close();
      await store.close();
    }
  });

  test('usage prints an aligned table grouped as asked', async () => {
    const store = await openStore({ url: storeUrl });
    const now = Date.now();
    await store.insertCalls([
      makeCall({ startedAt: now - 3_600_000, teamId: 'team_x', route: 'chat', promptTokens: 10, costUsd: 0.5 }),
      makeCall({ startedAt: now - 7_200_000, teamId: 'team_x', route: 'chat', promptTokens: 20, costUsd: 0.25 }),
      makeCall({ startedAt: now - 3_600_000, teamId: 'team_longer_name', route: 'embed', promptTokens: 5, costUsd: 0 }),
      makeCall({ startedAt: now - 30 * 86_400_000, teamId: 'team_x', route: 'chat' }),
    ]);
    await store.close();
    // A dimension named twice groups (and prints) once.
    const usage = await seed('usage', '--by', 'team,route,team', '--since', '7d');
    assert.equal(usage.code, 0, usage.stderr);
    const lines = usage.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^TEAM\s+ROUTE\s+REQUESTS\s+ERRORS\s+PROMPT\s+COMPLETION\s+COST_USD\s+AVG_MS$/);
    assert.equal(lines.length, 3);
    const chat = lines.find((line) => line.startsWith('team_x '));
    assert.match(chat ?? '', /^team_x\s+chat\s+2\s+0\s+30\s+40\s+0\.750000\s+250$/);
    // Numbers are right-aligned under their header.
    const requestsEnd = (lines[0] ?? '').indexOf('REQUESTS') + 'REQUESTS'.length;
    for (const line of lines.slice(1)) assert.equal(line[requestsEnd - 1], line === chat ? '2' : '1');

    const json = await seed('usage', '--by', 'route', '--since', '7d', '--json');
    assert.deepEqual((JSON.parse(json.stdout) as Array<{ route: string; requests: number }>).map((row) => [row.route, row.requests]), [['chat', 2], ['embed', 1]]);
  });

  test('mistakes exit 1 with one clear line', async () => {
    // Independent invocations, run together: each one pays the CLI's start-up time.
    const [unknownTeam, badLimit, badGroup, duplicate] = await Promise.all([
      seed('keys', 'create', '--team', 'nope'),
      seed('keys', 'create', '--team', 'search', '--rpm', '0'),
      seed('usage', '--by', 'colour'),
      seed('orgs', 'create', 'acme'),
    ]);
    assert.equal(unknownTeam.code, 1);
    assert.equal(unknownTeam.stderr.trim(), 'seed: No team with id or name "nope".');
    assert.equal(badLimit.code, 1);
    assert.match(badLimit.stderr, /^seed: --rpm: expected a positive number/);
    assert.equal(badGroup.code, 1);
    assert.match(badGroup.stderr, /--by/);
    assert.equal(duplicate.code, 1);
    assert.match(duplicate.stderr, /already exists/);
  });

  test('without --store, the store URL comes from the config file', async () => {
    const config = join(directory, 'seed.yaml');
    writeFileSync(config, `store: { url: ${JSON.stringify(storeUrl)} }\ndeployments: {}\nroutes: {}\n`);
    const { stdout } = await run(process.execPath, [SEED, 'orgs', 'list', '--config', config], { cwd: directory });
    assert.match(stdout, /acme\s+usdPerMonth=500/);
  });
});
