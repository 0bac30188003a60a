/**
 * The Node (V8) flags `seed serve` runs with, and why each is there.
 *
 * They are start-up flags (the heap is configured before any JavaScript runs, and Node refuses
 * `--min-semi-space-size` and `--no-allocation-site-pretenuring` in NODE_OPTIONS), so they are on
 * `npm start`'s command line; `seed serve` started without them says which are missing, once. The
 * measurements behind them are in docs/benchmark-log.md (2026-12-04 (03:14–); the pretenuring flag
 * 2026-12-05 (00:03–)).
 */
interface ServerNodeFlag {
  readonly flag: string;
  /** What goes wrong without it, as the start-up log says it. */
  readonly without: string;
}

const YOUNG_GENERATION =
  'the young generation shrinks whenever the gateway idles, and bursts after a quiet spell pay for it in garbage collection';

/** The flag that keeps V8 from pretenuring allocation sites (below); the promotion benchmark runs Seed with and without it. */
export const NO_PRETENURING_FLAG = '--no-allocation-site-pretenuring';

const FLAGS: readonly ServerNodeFlag[] = [
  // V8 sizes the young generation (new space) between 1 MB and its maximum as it sees fit: it
  // grows it under allocation pressure and its memory reducer shrinks it again whenever the
  // process goes idle. A gateway's traffic comes in bursts, and each call's state lives while
  // the upstream answers, so after every quiet spell the gateway served its next burst with a
  // small young generation: about twice the scavenges (6.9–9.4 per 1 000 calls against 3.8–3.9
  // with these flags) and 15–21 µs of scavenge pauses per call against 11–12. Larger fixed
  // sizes (32, 64 MB) scavenged less often but made each call's other work slower (the
  // allocation front no longer stays in the CPU's caches), so 16 MB it is.
  { flag: '--min-semi-space-size=16', without: YOUNG_GENERATION },
  { flag: '--max-semi-space-size=16', without: YOUNG_GENERATION },
  // V8's memory reducer runs up to three memory-reducing full GCs once a process has idled for
  // ~8 s. Such a GC does not keep the maps (hidden classes) that no live object uses any more,
  // and optimized code that depends on one of them is thrown away: at one reducer GC of an idle
  // gateway, 89 optimized functions (node:http's, undici's and Seed's request path) were marked
  // for deoptimization. The next burst then runs interpreted and recompiles: in the first second
  // after 80 s idle a gateway served 0.19–0.27× of what a gateway warmed just before served
  // (~1 300 µs of CPU per streamed call against ~180), 0.37–0.57× with this flag
  // (bench/idle-burst.ts). The cost is the heap an idle gateway keeps committed (~45 MB that the
  // reducer gave back in that trace).
  {
    flag: '--no-memory-reducer',
    without: 'an idle spell of ~8 s throws away most optimized code, and the next burst runs several times slower while it recompiles',
  },
  // V8 watches which allocation sites' objects survive a scavenge and, past a threshold, allocates
  // that site's objects in the old generation from then on. A burst that begins with many calls
  // in flight can push a per-call site over it. From then on every call's object from that site
  // is born old, and whatever young objects it points to (the call's request, response, header
  // strings: ~4 KB a call) survive every scavenge until the next full GC, because old objects
  // are roots for a scavenge whether they are still in use or not. 13 of 38 gateway
  // processes measured under streaming load fell into that state and stayed in it: ~1.1 MB
  // promoted per scavenge instead of 11–73 KB, scavenges of 3.9–9.2 ms instead of 1.1–2.8, and
  // a full GC every few seconds. With this flag none of 10 did.
  {
    flag: NO_PRETENURING_FLAG,
    without:
      "V8 may start allocating some per-call object in the old generation, after which each call's young objects survive every scavenge (~1 MB promoted per scavenge, pauses 3–4× longer)",
  },
];

export const SERVER_NODE_FLAGS: readonly string[] = Object.freeze(FLAGS.map((each) => each.flag));

/** What `seed serve` logs when it runs without some of `SERVER_NODE_FLAGS`, or null when it has them all. */
export function nodeFlagsAdvice(execArgv: readonly string[] = process.execArgv): string | null {
  const missing = FLAGS.filter((each) => !execArgv.includes(each.flag));
  if (missing.length === 0) return null;
  const consequences = [...new Set(missing.map((each) => each.without))];
  return (
    `node runs without ${missing.map((each) => each.flag).join(' ')}: ${consequences.join('; ')}; start it as ` +
    `\`node ${SERVER_NODE_FLAGS.join(' ')} bin/seed.mjs serve\` (what \`npm start\` does; docs/configuration.md)`
  );
}
