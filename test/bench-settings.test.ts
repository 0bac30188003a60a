import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigSetting, seedConfig, settingsText, withSettings } from '../bench/lib/targets.ts';
import { parseConfig } from '../src/config/load.ts';

const generated = () => seedConfig({ simulatorUrl: 'http://127.0.0.1:9', workDirectory: '/tmp/seed-bench-settings' });

test('an A/B baseline setting reaches the config Seed parses, typed as YAML reads its value', () => {
  const base = parseConfig(generated());
  assert.equal(base.ledger.journal, true);
  const settings = ['ledger.journal=false', 'ledger.flushIntervalMs=10'].map(parseConfigSetting);
  const changed = parseConfig(withSettings(generated(), settings));
  assert.equal(changed.ledger.journal, false);
  assert.equal(changed.ledger.flushIntervalMs, 10);
  // The rest of the generated config is untouched, flow-style maps included.
  assert.equal(changed.ledger.spillDirectory, base.ledger.spillDirectory);
  assert.deepEqual(changed.routes, base.routes);
  assert.equal(settingsText(settings), 'ledger.journal=false, ledger.flushIntervalMs=10');
});

test('a setting without a path or an = is refused with what was expected', () => {
  for (const text of ['ledger.journal', '=false', 'ledger..journal=false']) {
    assert.throws(() => parseConfigSetting(text), /expected PATH=VALUE/);
  }
  // A value may itself hold "=": only the first one splits.
  assert.deepEqual(parseConfigSetting('server.host=a=b'), { path: ['server', 'host'], value: 'a=b' });
});

test("the README's --set example puts both A/B sides' limits in Redis, the rest of the config unchanged", () => {
  const base = parseConfig(generated());
  assert.equal(base.limits.store, 'memory');
  // Seed makes a Redis store's operator choose what an unreachable Redis does: no default.
  assert.throws(() => parseConfig(withSettings(generated(), ['limits.store=redis', 'limits.url=redis://127.0.0.1:6379'].map(parseConfigSetting))), /limits\.onUnavailable/);
  const settings = ['limits.store=redis', 'limits.url=redis://127.0.0.1:6379', 'limits.onUnavailable=closed'].map(parseConfigSetting);
  const changed = parseConfig(withSettings(generated(), settings));
  assert.equal(changed.limits.store, 'redis');
  assert.equal(changed.limits.url, 'redis://127.0.0.1:6379');
  assert.equal(changed.limits.onUnavailable, 'closed');
  assert.deepEqual(changed.deployments, base.deployments);
  assert.deepEqual(changed.store, base.store);
});
