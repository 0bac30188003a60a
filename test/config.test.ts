import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, interpolate, parseConfig } from '../src/config/load.ts';
import { EXAMPLE_CONFIG, loadSeedConfig, providerChecks } from '../src/config/seed-config.ts';

function problemsOf(text: string, env: NodeJS.ProcessEnv = {}) {
  try {
    parseConfig(text, { env, checks: providerChecks });
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems.map((problem) => `${problem.line}:${problem.path}: ${problem.message}`);
  }
  assert.fail('expected a ConfigError');
}

const VALID = `
deployments:
  a:
    provider: openai
    baseUrl: http://127.0.0.1:1/v1
    model: gpt-4o-mini
  b:
    provider: openai
    baseUrl: http://127.0.0.1:2/v1
    model: gpt-4o-mini
routes:
  chat:
    deployments:
      - deployment: a
      - deployment: b
        weight: 2
`;

test('a valid config parses, with defaults filled in, and is frozen', () => {
  const config = parseConfig(VALID, { env: {} });
  assert.equal(config.server.port, 4000);
  assert.equal(config.server.host, '127.0.0.1');
  assert.equal(config.routes.chat?.deployments[1]?.weight, 2);
  assert.equal(config.routes.chat?.deployments[0]?.weight, 1);
  assert.ok(Object.isFrozen(config.routes.chat));
});

test('limits.promptEstimate is approximate unless set; a wrong value is a problem naming the choices', () => {
  assert.equal(parseConfig(VALID, { env: {} }).limits.promptEstimate, 'approximate');
  assert.equal(parseConfig(`limits: { store: memory, promptEstimate: exact }\n${VALID}`, { env: {} }).limits.promptEstimate, 'exact');
  const redis = `limits: { store: redis, url: redis://127.0.0.1:6379, onUnavailable: open }\n${VALID}`;
  assert.equal(parseConfig(redis, { env: {} }).limits.promptEstimate, 'approximate');
  const [problem, ...others] = problemsOf(`limits: { store: memory, promptEstimate: bpe }\n${VALID}`);
  assert.deepEqual(others, []);
  assert.match(problem ?? '', /^1:limits\.promptEstimate: .*"approximate".*"exact"/);
});

test('a bad weight is reported with its path and line', () => {
  const problems = problemsOf(VALID.replace('weight: 2', 'weight: -2'));
  assert.deepEqual(problems, ['16:routes.chat.deployments[1].weight: expected a positive number']);
});

test('every problem is reported at once, each with its line', () => {
  const text = `
server:
  port: "eighty"
deployments:
  a:
    provider: nosuch
    baseUrl: not-a-url
    model: m
    colour: blue
routes:
  chat:
    deployments:
      - deployment: missing
    fallbacks: [nowhere]
`;
  const problems = problemsOf(text);
  assert.ok(problems.some((problem) => problem.startsWith('3:server.port:')), problems.join('\n'));
  assert.ok(problems.some((problem) => problem.startsWith('7:deployments.a.baseUrl:')), problems.join('\n'));
  assert.ok(problems.some((problem) => problem.startsWith('9:deployments.a: unknown key colour')), problems.join('\n'));
});

test('cross references are checked: unknown deployments, unknown fallbacks, cycles, providers', () => {
  const text = `${VALID}
  other:
    deployments: [{ deployment: a }]
    fallbacks: [chat, ghost]
`.replace('        weight: 2', '        weight: 2\n    fallbacks: [other]');
  const problems = problemsOf(text);
  assert.ok(problems.some((problem) => problem.includes('routes.other.fallbacks[1]: unknown route "ghost"')), problems.join('\n'));
  assert.ok(problems.some((problem) => problem.includes('fallback cycle')), problems.join('\n'));

  const unknownProvider = problemsOf(VALID.replace('provider: openai', 'provider: nosuch'));
  assert.ok(unknownProvider[0]?.startsWith('4:deployments.a.provider: unknown provider "nosuch"'), unknownProvider.join('\n'));
});

test('adapter options are validated by the adapter, with lines', () => {
  const text = VALID.replace('    model: gpt-4o-mini\n  b:', '    model: gpt-4o-mini\n    options:\n      organisation: typo\n  b:');
  const problems = problemsOf(text);
  assert.ok(problems.some((problem) => problem.includes('deployments.a.options')), problems.join('\n'));
});

test('YAML syntax errors carry their line', () => {
  const problems = problemsOf('deployments:\n  a: [unclosed\nroutes: {}\n');
  assert.ok(problems[0]?.match(/^\d+:/), problems.join('\n'));
});

test('secrets are interpolated from the environment; a missing one is a problem naming the variable', () => {
  const text = VALID.replace('model: gpt-4o-mini\n  b:', 'model: gpt-4o-mini\n    apiKey: ${SECRET_KEY}\n  b:');
  assert.equal(parseConfig(text, { env: { SECRET_KEY: 'sk-1' } }).deployments.a?.apiKey, 'sk-1');
  assert.deepEqual(problemsOf(text), ['7:deployments.a.apiKey: environment variable SECRET_KEY is not set']);
});

test('interpolation supports defaults and escapes', () => {
  assert.deepEqual(interpolate('${A:-fallback}', {}), { value: 'fallback', missing: [] });
  assert.deepEqual(interpolate('${A:-fallback}', { A: 'set' }), { value: 'set', missing: [] });
  assert.deepEqual(interpolate('$${A}', { A: 'set' }), { value: '${A}', missing: [] });
  assert.deepEqual(interpolate('x-${A}-${B}', { A: '1' }), { value: 'x-1-', missing: ['B'] });
});

test('enabledIfEnv / disabledIfEnv switch deployments, and their missing secrets are not problems', () => {
  const text = `
deployments:
  real:
    enabledIfEnv: REAL_KEY
    provider: openai
    baseUrl: https://api.openai.com/v1
    model: gpt-4o-mini
    apiKey: \${REAL_KEY}
  sim:
    disabledIfEnv: REAL_KEY
    provider: openai
    baseUrl: http://127.0.0.1:4010/v1
    model: gpt-4o-mini
routes:
  chat:
    deployments: [{ deployment: real }, { deployment: sim }]
`;
  const offline = parseConfig(text, { env: {} });
  assert.deepEqual(Object.keys(offline.deployments), ['sim']);
  assert.deepEqual(offline.routes.chat?.deployments.map((target) => target.deployment), ['sim']);
  const online = parseConfig(text, { env: { REAL_KEY: 'sk-real' } });
  assert.deepEqual(Object.keys(online.deployments), ['real']);
});

test('the bundled example is valid offline and with an OpenAI key', () => {
  const offline = loadSeedConfig({ path: EXAMPLE_CONFIG, env: {} });
  assert.ok(offline.isExample);
  for (const route of ['gpt-4o-mini', 'claude-sonnet', 'text-embedding-3-small']) assert.ok(offline.config.routes[route], route);
  assert.ok(Object.values(offline.config.deployments).every((deployment) => deployment.baseUrl.startsWith('http://127.0.0.1:4010')));
  assert.equal(
    Object.values(offline.config.deployments).find((deployment) => deployment.provider === 'anthropic')?.baseUrl,
    'http://127.0.0.1:4010',
  );
  const online = loadSeedConfig({ path: EXAMPLE_CONFIG, env: { OPENAI_API_KEY: 'sk-test' } });
  const chat = online.config.routes['gpt-4o-mini'];
  assert.deepEqual(chat?.deployments.map((target) => target.deployment), ['openai-gpt-4o-mini']);
  assert.equal(online.config.deployments['openai-gpt-4o-mini']?.apiKey, 'sk-test');
});
