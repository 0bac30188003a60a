/**
 * The reading of `perf script` output behind bench/oncpu.ts: samples and their stacks, the owner
 * of a sample (the nearest JavaScript function, or GC, the kernel, native code), the sums per
 * thread, and what a thread is.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { areaOfUrl, inclusiveFrames, jsFunctionOf, ownerOf, parsePerfScript, profileThread, samplesByThread, threadKind } from '../bench/lib/perf-script.ts';

// Four samples as `perf script -F comm,tid,ip,sym,dso` prints them (stacks shortened).
const SCRIPT = `node 100 
\tffffffff82242009 pvm_irq_enable+0x9 ([kernel.kallsyms])
\tffffffff8210a1b2 tcp_sendmsg+0x22 ([kernel.kallsyms])
\t    7f5d3826cd4a JS:*clearBuffer node:internal/streams/writable:744:21 (/tmp/perf-100.map)
\t    7f5d381eefcb JS:^writeEventStream file:///work/main/dist/gateway/http/sse.js:4:39 (/tmp/perf-100.map)
\t         14ac8a7 uv_run (/usr/bin/node)

node 100 
\t         14d488e Builtins_KeyedStoreIC_Megamorphic (/usr/bin/node)
\t    7f5d3826cd4a JS:*parseHeaders /work/main/node_modules/undici/lib/core/util.js:436:23 (/tmp/perf-100.map)
\t          9ddd6a node::LibuvStreamWrap::ReadStart()::{lambda(uv_stream_s*, long, uv_buf_t const*)#2}::_FUN (/usr/bin/node)

node 100 
\t          b1c2d3 v8::internal::ScavengerCollector::CollectGarbage+0x40 (/usr/bin/node)
\t          b1c000 v8::internal::Heap::Scavenge (/usr/bin/node)
\t         14ac8a7 uv_run (/usr/bin/node)

node 107 
\t          1dbd607 v8::internal::compiler::GraphReducer::Reduce+0x67 (/usr/bin/node)
\t          932ce1 node::(anonymous namespace)::PlatformWorkerThread+0x191 (/usr/bin/node)
\t           891f5 start_thread+0x305 (/usr/lib/x86_64-linux-gnu/libc.so.6)

node 104 
\t    7f5d3826aaaa JS:*insert file:///work/main/dist/store/call-insert-worker.js:20:5 (/tmp/perf-100.map)
\t           891f5 start_thread+0x305 (/usr/lib/x86_64-linux-gnu/libc.so.6)
`;

test('parses samples: the thread, and the stack leaf first, offsets dropped', () => {
  const samples = parsePerfScript(SCRIPT);
  assert.equal(samples.length, 5);
  assert.deepEqual(
    samples.map((sample) => sample.tid),
    [100, 100, 100, 107, 104],
  );
  assert.deepEqual(samples[0]?.frames[0], { symbol: 'pvm_irq_enable', dso: '[kernel.kallsyms]' });
  assert.equal(samples[1]?.frames[2]?.symbol, 'node::LibuvStreamWrap::ReadStart()::{lambda(uv_stream_s*, long, uv_buf_t const*)#2}::_FUN');
  assert.equal(samples[1]?.frames[2]?.dso, '/usr/bin/node');
});

test('a JavaScript frame names its function and script, shortened; areas are packages, node internals or folders of the build', () => {
  assert.deepEqual(jsFunctionOf({ symbol: 'JS:*parseHeaders /work/main/node_modules/undici/lib/core/util.js:436:23', dso: '/tmp/perf-1.map' }), {
    name: 'parseHeaders',
    url: 'undici/lib/core/util.js',
    line: 436,
  });
  assert.deepEqual(jsFunctionOf({ symbol: 'JS:^ file:///work/main/dist/gateway/http/app.js:193:38', dso: '/tmp/perf-1.map' }), {
    name: '(anonymous)',
    url: 'dist/gateway/http/app.js',
    line: 193,
  });
  assert.equal(jsFunctionOf({ symbol: 'JS:wasm-function[20]-20-turbofan', dso: '/tmp/perf-1.map' }), null);
  assert.equal(jsFunctionOf({ symbol: 'Builtins_LoadIC', dso: '/usr/bin/node' }), null);
  assert.equal(areaOfUrl('undici/lib/core/util.js'), 'undici');
  assert.equal(areaOfUrl('@hono/node-server/dist/index.js'), '@hono/node-server');
  assert.equal(areaOfUrl('node:internal/streams/writable'), 'node: internals');
  assert.equal(areaOfUrl('dist/gateway/http/app.js'), 'dist/gateway');
  assert.equal(areaOfUrl('dist/main.js'), 'dist/main.js');
});

test("a sample belongs to the nearest JavaScript function; without one, to GC, the kernel or native code", () => {
  const [kernelUnderJs, icUnderJs, gc, compiler] = parsePerfScript(SCRIPT);
  assert.deepEqual(ownerOf(kernelUnderJs!), { area: 'node: internals', fn: 'clearBuffer node:internal/streams/writable:744' });
  assert.deepEqual(ownerOf(icUnderJs!), { area: 'undici', fn: 'parseHeaders undici/lib/core/util.js:436' });
  assert.equal(ownerOf(gc!).area, '(GC, no JS caller)');
  assert.equal(ownerOf(compiler!).area, '(native, no JS caller)');
  assert.equal(ownerOf({ tid: 1, frames: [{ symbol: 'do_epoll_wait', dso: '[kernel.kallsyms]' }] }).area, '(kernel, no JS caller)');
});

test('sums a thread: samples, kernel leaves, GC stacks, areas and functions; threads by samples and by kind', () => {
  const samples = parsePerfScript(SCRIPT);
  const main = profileThread(samples, 100);
  assert.equal(main.samples, 3);
  assert.equal(main.kernel, 1);
  assert.equal(main.gc, 1);
  assert.equal(main.areas.get('node: internals'), 1);
  assert.equal(main.areas.get('undici'), 1);
  assert.equal(main.functions.get('parseHeaders undici/lib/core/util.js:436'), 1);
  assert.deepEqual(samplesByThread(samples)[0], { tid: 100, samples: 3 });
  assert.equal(threadKind(samples, 107), 'V8 platform (GC, compiler)');
  assert.equal(threadKind(samples, 104), 'worker thread (JavaScript)');
  assert.equal(threadKind(samples, 999), 'other');
});

test('inclusive frames: every distinct function on a stack counts once, on the threads asked for only', () => {
  const samples = parsePerfScript(SCRIPT);
  const main = inclusiveFrames(samples, new Set([100]));
  assert.equal(main.get('uv_run'), 2);
  assert.equal(main.get('[kernel] tcp_sendmsg'), 1);
  assert.equal(main.get('clearBuffer node:internal/streams/writable:744'), 1);
  assert.equal(main.get('insert dist/store/call-insert-worker.js:20'), undefined);
  const twice = parsePerfScript('node 5 \n\t1 f (/x)\n\t2 g (/x)\n\t3 f (/x)\n');
  assert.equal(inclusiveFrames(twice, new Set([5])).get('f'), 1);
  const worker = inclusiveFrames(samples, new Set([104, 107]));
  assert.equal(worker.get('start_thread'), 2);
  assert.equal(worker.get('insert dist/store/call-insert-worker.js:20'), 1);
});
