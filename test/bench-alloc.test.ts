import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allocationSites, type AllocResult, type HeapProfileNode } from '../bench/scenarios/alloc.ts';
import { allocSection } from '../bench/lib/report.ts';

const node = (functionName: string, url: string, selfSize: number, children: HeapProfileNode[] = []): HeapProfileNode => ({
  callFrame: { functionName, url, lineNumber: 9 },
  selfSize,
  children,
});

test('allocation sites add up every node of a frame, wherever it sits in the tree, per request', () => {
  const head = node('(root)', '', 0, [
    node('handler', 'file:///seed/dist/gateway/http/app.js', 4_000, [
      node('parse', 'file:///seed/node_modules/undici/lib/core/util.js', 1_000),
      node('chat', 'file:///seed/dist/gateway/calls.js', 3_000, [node('parse', 'file:///seed/node_modules/undici/lib/core/util.js', 2_000)]),
    ]),
  ]);
  const { bytesPerRequest, sites } = allocationSites(head, 10);
  assert.equal(bytesPerRequest, 1_000);
  assert.deepEqual(sites, [
    { site: 'handler dist/gateway/http/app.js', bytesPerRequest: 400 },
    { site: 'chat dist/gateway/calls.js', bytesPerRequest: 300 },
    { site: 'parse undici/lib/core/util.js:10', bytesPerRequest: 300 },
  ]);
});

test("the allocation section lists Seed's sites beside what the other servers allocate at the same site", () => {
  const mode = (bytesPerRequest: number, sites: Array<[string, number]>) => ({
    stream: false,
    requests: 100,
    bytesPerRequest,
    sites: sites.map(([site, bytes]) => ({ site, bytesPerRequest: bytes })),
  });
  const result: AllocResult = {
    requestsPerMode: 100,
    concurrency: 50,
    servers: [
      { id: 'buffered', label: 'buffered', modes: [mode(2048, [['shared', 700]])] },
      { id: 'seed', label: 'Seed', modes: [mode(4096, [['seed-only', 900], ['shared', 800]])] },
    ],
  };
  const text = allocSection(result);
  assert.match(text, /\| buffered \| 2\.00 \| – \| – \| – \|/);
  assert.match(text, /\| Seed \| 4\.00 \| – \| – \| – \|/);
  assert.doesNotMatch(text, /no scavenge freed —/, 'no survivor sites for a run without that profile');
  assert.match(text, /\| `seed-only` \| 900 \| 0 \|/);
  assert.match(text, /\| `shared` \| 800 \| 700 \|/);
  assert.doesNotMatch(text, /keepWarmBytesPerSecond/, 'a run from before the scenario set it says nothing about it');
  assert.match(allocSection({ ...result, seedKeepWarmBytesPerSecond: 0 }), /Seed runs with `server\.keepWarmBytesPerSecond` 0 here/);
});

test('bytes no scavenge freed get their own columns and, for Seed, their own sites beside the others', () => {
  const sites = (entries: Array<[string, number]>) => entries.map(([site, bytes]) => ({ site, bytesPerRequest: bytes }));
  const mode = (stream: boolean, bytesPerRequest: number, survivedBytes: number, survivedSites: Array<[string, number]>) => ({
    stream,
    requests: 100,
    bytesPerRequest,
    sites: [],
    survived: { requests: 100, bytesPerRequest: survivedBytes, sites: sites(survivedSites) },
  });
  const result: AllocResult = {
    requestsPerMode: 100,
    concurrency: 50,
    servers: [
      { id: 'buffered', label: 'buffered', modes: [mode(false, 2048, 512, [['held', 300]]), mode(true, 4096, 1024, [])] },
      { id: 'seed', label: 'Seed', modes: [mode(false, 4096, 1536, [['queue', 700], ['held', 400]]), mode(true, 8192, 3072, [['stream state', 900]])] },
    ],
  };
  const text = allocSection(result);
  assert.match(text, /\| buffered \| 2\.00 \| 4\.00 \| 0\.50 \| 1\.00 \|/);
  assert.match(text, /\| Seed \| 4\.00 \| 8\.00 \| 1\.50 \| 3\.00 \|/);
  assert.match(text, /no scavenge freed — non-streaming[^]*\| `queue` \| 700 \| 0 \|[^]*\| `held` \| 400 \| 300 \|/);
  assert.match(text, /no scavenge freed — streaming[^]*\| `stream state` \| 900 \| 0 \|/);
});
