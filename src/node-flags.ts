/**
 * The Node (V8) flags `seed serve` runs with: a young generation fixed at 16 MB.
 *
 * V8 sizes the young generation (new space) between 1 MB and its maximum as it sees fit: it
 * grows it under allocation pressure and its memory reducer shrinks it again whenever the
 * process goes idle. A gateway's traffic comes in bursts, and each call's state lives while the
 * upstream answers, so after every quiet spell the gateway served its next burst with a small
 * young generation: about twice the scavenges (6.9–9.4 per 1 000 calls against 3.8–3.9 with
 * these flags) and 15–21 µs of scavenge pauses per call against 11–12 (bench/analysis.md).
 * Larger fixed sizes (32, 64 MB) scavenged less often but made each call's other work slower
 * (the allocation front no longer stays in the CPU's caches), so 16 MB it is.
 *
 * These are start-up flags (the heap is configured before any JavaScript runs, and Node does not
 * accept `--min-semi-space-size` in NODE_OPTIONS), so they are on `npm start`'s command line;
 * `seed serve` started without them says so once.
 */
export const SERVER_NODE_FLAGS: readonly string[] = Object.freeze(['--min-semi-space-size=16', '--max-semi-space-size=16']);

/** What `seed serve` logs when it runs without `SERVER_NODE_FLAGS`, or null when it has them. */
export function nodeFlagsAdvice(execArgv: readonly string[] = process.execArgv): string | null {
  const missing = SERVER_NODE_FLAGS.filter((flag) => !execArgv.includes(flag));
  if (missing.length === 0) return null;
  return (
    `node runs without ${missing.join(' ')}: the young generation shrinks whenever the gateway idles, ` +
    `and bursts after a quiet spell pay for it in garbage collection; start it as ` +
    `\`node ${SERVER_NODE_FLAGS.join(' ')} bin/seed.mjs serve\` (what \`npm start\` does; docs/configuration.md)`
  );
}
