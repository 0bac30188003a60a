/**
 * The Prometheus alerting rules shipped in config/prometheus/seed-alerts.yaml stay true to the
 * gateway: every expression parses as PromQL (Prometheus's own grammar, @prometheus-io/lezer-promql),
 * every metric it reads is one a running gateway exposes at /metrics, with the labels it matches
 * on, and every alert has its runbook section in docs/monitoring.md. A renamed metric or label
 * fails here instead of silencing an alert in production.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parser } from '@prometheus-io/lezer-promql';
import { request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { startStack, type Stack } from './helpers/stack.ts';

const root = new URL('..', import.meta.url).pathname;
const rulesFile = parseYaml(readFileSync(`${root}config/prometheus/seed-alerts.yaml`, 'utf8')) as {
  groups: { name: string; rules: { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> }[] }[];
};
const rules = rulesFile.groups.flatMap((group) => group.rules);
/** Series Prometheus makes itself, not the gateway. */
const PROMETHEUS_SERIES = new Set(['up']);

interface Selector {
  metric: string;
  matchers: { label: string; op: string; value: string }[];
}

/** Parses `expr`; throws at the first syntax error, else returns its vector selectors. */
function selectorsOf(expr: string): Selector[] {
  const tree = parser.parse(expr);
  const selectors: Selector[] = [];
  const cursor = tree.cursor();
  do {
    if (cursor.type.isError) assert.fail(`PromQL syntax error at ${cursor.from} in: ${expr}`);
    if (cursor.name !== 'VectorSelector') continue;
    const node = cursor.node;
    const metric = node.getChild('Identifier');
    const selector: Selector = { metric: metric === null ? '' : expr.slice(metric.from, metric.to), matchers: [] };
    for (const matcher of node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) {
      const part = (name: string) => {
        const child = matcher.getChild(name);
        return child === null ? '' : expr.slice(child.from, child.to);
      };
      selector.matchers.push({ label: part('LabelName'), op: part('MatchOp'), value: JSON.parse(part('StringLiteral')) as string });
    }
    selectors.push(selector);
  } while (cursor.next());
  return selectors;
}

/** Series in the text format: metric name → the label sets it was exposed with. */
function seriesOf(text: string): Map<string, Record<string, string>[]> {
  const series = new Map<string, Record<string, string>[]>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (match === null) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] as string] = pair[2] as string;
    const name = match[1] as string;
    series.set(name, [...(series.get(name) ?? []), labels]);
  }
  return series;
}

let stack: Stack;
let exposed: Map<string, Record<string, string>[]>;

before(async () => {
  stack = await startStack();
  // Calls that succeed (streamed and not) and one that fails, so the call, first-token and error series exist.
  const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 };
  for (const body of [JSON.stringify(chat), JSON.stringify({ ...chat, stream: true }), '{']) {
    const answer = await request(`${stack.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await answer.body.text();
  }
  exposed = seriesOf(await (await request(`${stack.seed.url}/metrics`)).body.text());
});
after(async () => stack.close());

test('the rules file is well formed: unique alert names, a severity, a summary and a runbook link for each', () => {
  assert.ok(rules.length >= 10, `only ${rules.length} rules`);
  const names = rules.map((rule) => rule.alert);
  assert.equal(new Set(names).size, names.length, 'alert names are unique');
  for (const rule of rules) {
    assert.match(rule.alert, /^Seed[A-Z][A-Za-z]+$/, rule.alert);
    assert.ok(['page', 'warn'].includes(rule.labels.severity ?? ''), `${rule.alert}: severity page or warn`);
    assert.ok((rule.annotations.summary ?? '').length > 20, `${rule.alert}: a summary`);
    assert.equal(rule.annotations.runbook, `docs/monitoring.md#${rule.alert.toLowerCase()}`, rule.alert);
    if (rule.for !== undefined) assert.match(rule.for, /^\d+[smh]$/, `${rule.alert}: for`);
  }
});

test('every expression parses as PromQL and reads metrics and labels the gateway exposes', () => {
  for (const rule of rules) {
    const selectors = selectorsOf(rule.expr);
    assert.ok(selectors.length > 0, `${rule.alert}: reads no metric`);
    for (const { metric, matchers } of selectors) {
      if (PROMETHEUS_SERIES.has(metric)) continue;
      const series = exposed.get(metric);
      assert.ok(series !== undefined, `${rule.alert}: /metrics has no ${metric}; it has ${[...exposed.keys()].filter((name) => name.startsWith('seed_')).join(', ')}`);
      for (const { label, op, value } of matchers) {
        assert.ok(series.some((labels) => label in labels), `${rule.alert}: ${metric} has no label ${label}`);
        // A fixed set of values (the ledger's and limiter's counters) must hold the one matched.
        if (op === '=' && (metric === 'seed_ledger' || metric === 'seed_limits')) {
          assert.ok(series.some((labels) => labels[label] === value), `${rule.alert}: ${metric}{${label}="${value}"} is not exposed`);
        }
      }
    }
  }
});

test('a syntax error or an unknown metric fails the checks above (they are not vacuous)', () => {
  assert.throws(() => selectorsOf('sum by (route (rate(seed_calls_total[5m]))'), /PromQL syntax error/);
  assert.deepEqual(selectorsOf('seed_ledger{counter="rejected"} > 0'), [{ metric: 'seed_ledger', matchers: [{ label: 'counter', op: '=', value: 'rejected' }] }]);
  assert.equal(exposed.get('seed_no_such_metric'), undefined);
});

test("docs/monitoring.md's dashboard queries parse and read exposed metrics too", () => {
  const doc = readFileSync(`${root}docs/monitoring.md`, 'utf8');
  const queries = [...doc.matchAll(/```promql\n([\s\S]*?)```/g)].flatMap((block) =>
    (block[1] ?? '').split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#')),
  );
  assert.ok(queries.length >= 4, `${queries.length} queries`);
  for (const query of queries) {
    for (const { metric } of selectorsOf(query)) assert.ok(exposed.has(metric), `${query}: /metrics has no ${metric}`);
  }
});

test('every alert has a section in docs/monitoring.md', () => {
  const doc = readFileSync(`${root}docs/monitoring.md`, 'utf8');
  const headings = new Set([...doc.matchAll(/^### (Seed[A-Za-z]+)$/gm)].map((match) => match[1]));
  for (const rule of rules) assert.ok(headings.has(rule.alert), `docs/monitoring.md has no "### ${rule.alert}" section`);
});
