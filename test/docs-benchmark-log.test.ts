/**
 * The benchmark log (docs/benchmark-log.md) is cited by session and item from the code, the
 * README, the docs and the analysis (bench/analysis.md): "2026-12-05 (08:28–), item 2". A
 * citation of a session the log does not have, or of an item that session does not number,
 * sends a reader nowhere; this checks every one, and that docs/benchmarks.md ends with the
 * analysis as it is now (the report renders bench/analysis.md verbatim).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const root = resolve(import.meta.dirname, '..');
const LOG = 'docs/benchmark-log.md';

/** A session's heading key, as cited: `2026-12-05 (08:28–)`. */
const SESSION = String.raw`(\d{4}-\d{2}-\d{2}) \((\d{2}:\d{2})–\)`;

/** Each session of the log (by its cited key) and the item numbers it has. */
function sessionsOf(log: string): Map<string, Set<number>> {
  const sessions = new Map<string, Set<number>>();
  let items: Set<number> | null = null;
  for (const line of log.split('\n')) {
    if (line.startsWith('## ')) {
      // "on 2026-12-05 (08:28–)", "late on 2026-12-03 (19:00–)", "on the night of 2026-12-03 (21:48–)"
      const match = new RegExp(`^## What was done (?:on |late on |on the night of )${SESSION}$`).exec(line);
      items = match === null ? null : new Set<number>();
      if (match !== null && items !== null) sessions.set(`${match[1]} (${match[2]}–)`, items);
      continue;
    }
    const item = /^(\d+)\. /.exec(line);
    if (item !== null && items !== null) items.add(Number(item[1]));
  }
  return sessions;
}

/** The item numbers a citation's tail names: "item 2", "items 1–4", "items 1, 4", "items 1 and 4". */
function citedItems(tail: string): number[] {
  const numbers: number[] = [];
  for (const part of tail.split(/,\s*|\s+and\s+/)) {
    const range = /^(\d+)(?:–(\d+))?$/.exec(part.trim());
    if (range === null) break;
    const from = Number(range[1]);
    const to = range[2] === undefined ? from : Number(range[2]);
    for (let item = from; item <= to; item += 1) numbers.push(item);
  }
  return numbers;
}

interface Citation {
  file: string;
  session: string;
  items: number[];
}

/** Every citation of a session in `text`, with the items it names after it ("…, item N") or before it ("item N of …"). */
function citationsIn(file: string, text: string): Citation[] {
  const flat = text.replace(/\s*\n\s*(?:\*\s+|\/\/\s*)?/g, ' ');
  const citations: Citation[] = [];
  const after = new RegExp(`${SESSION}(?:,? items? ((?:\\d+(?:–\\d+)?(?:, | and )?)+))?`, 'g');
  for (const match of flat.matchAll(after)) {
    citations.push({ file, session: `${match[1]} (${match[2]}–)`, items: match[3] === undefined ? [] : citedItems(match[3]) });
  }
  const before = new RegExp(`items? ((?:\\d+(?:–\\d+)?(?:, | and )?)+) of ${SESSION}`, 'g');
  for (const match of flat.matchAll(before)) {
    citations.push({ file, session: `${match[2]} (${match[3]}–)`, items: citedItems(match[1] ?? '') });
  }
  return citations;
}

function filesUnder(directory: string, extensions: readonly string[]): string[] {
  const files: string[] = [];
  for (const name of readdirSync(directory)) {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) files.push(...filesUnder(path, extensions));
    else if (extensions.some((extension) => name.endsWith(extension))) files.push(path);
  }
  return files;
}

/** Where the log is cited from: the code, the bench, the docs (the log's sessions cite each other; the rendered report is the analysis again), the README. */
function citingFiles(): string[] {
  return [
    ...filesUnder(join(root, 'src'), ['.ts']),
    ...filesUnder(join(root, 'bench'), ['.ts', '.mjs', '.md']),
    ...filesUnder(join(root, 'docs'), ['.md']).filter((file) => !file.endsWith('benchmarks.md')),
    join(root, 'README.md'),
  ];
}

test('the citation parser reads items after and before a session', () => {
  const citations = citationsIn('x', 'as measured (2026-12-05 (08:28–), items 1–3 and 5); see item 4 of 2026-12-04\n * (03:14–) too');
  assert.deepEqual(
    citations.map(({ session, items }) => ({ session, items })),
    [
      { session: '2026-12-05 (08:28–)', items: [1, 2, 3, 5] },
      { session: '2026-12-04 (03:14–)', items: [] },
      { session: '2026-12-04 (03:14–)', items: [4] },
    ],
  );
  const sessions = sessionsOf(
    '## What was done on 2026-12-05 (08:28–)\n\nText.\n\n1. **One**\n   more\n2. **Two**\n\n## Other\n3. **Not a session item**\n' +
      '## What was done on the night of 2026-12-03 (21:48–)\n1. **Three**\n',
  );
  assert.deepEqual([...sessions.entries()].map(([key, items]) => [key, [...items]]), [['2026-12-05 (08:28–)', [1, 2]], ['2026-12-03 (21:48–)', [1]]]);
});

test('every citation of the benchmark log names a session it has, and items that session numbers', () => {
  const sessions = sessionsOf(readFileSync(join(root, LOG), 'utf8'));
  assert.ok(sessions.size > 30, `the log's sessions were read (${sessions.size})`);
  const citations = citingFiles().flatMap((file) => citationsIn(relative(root, file), readFileSync(file, 'utf8')));
  assert.ok(citations.length > 50, `citations were found (${citations.length})`);
  const broken: string[] = [];
  for (const { file, session, items } of citations) {
    const known = sessions.get(session);
    if (known === undefined) broken.push(`${file}: ${session} is not a session of ${LOG}`);
    else for (const item of items) if (!known.has(item)) broken.push(`${file}: ${session} has no item ${item}`);
  }
  assert.deepEqual(broken, []);
});

test('docs/benchmarks.md ends with bench/analysis.md as it is (re-render after editing the analysis)', () => {
  const report = readFileSync(join(root, 'docs/benchmarks.md'), 'utf8');
  const analysis = readFileSync(join(root, 'bench/analysis.md'), 'utf8');
  assert.ok(report.endsWith(analysis), 'docs/benchmarks.md does not end with bench/analysis.md: run `npm run bench -- --render FILE`, or splice it in');
});
