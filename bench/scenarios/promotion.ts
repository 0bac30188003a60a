/**
 * Scenario 7 — the high-promotion state, counted over fresh processes.
 *
 * Some Node processes, under the same load as others of the same build, promote ~1 MB to the old
 * generation at every scavenge instead of tens of KiB, with scavenges 3–4× longer, and stay that
 * way. The cause found was V8's allocation-site pretenuring: a burst that starts with many calls
 * in flight can make V8 allocate a per-call object in the old generation from then on, and every
 * young object such an object points to then survives each scavenge until the next full GC
 * (src/node-flags.ts; docs/benchmark-log.md, 2026-12-05 (00:03–)). Whether a process falls into it is a matter of chance
 * at a burst's start, so one process says little: this scenario starts `processes` fresh Seeds
 * with their `npm start` flags and as many without `--no-allocation-site-pretenuring` (Node's
 * default there), alternating which goes first. Each is warmed up like section 1's processes,
 * then takes `phases` streaming open-loop phases at the p99 target's rate, 2 s apart (each from a
 * new client pool: bursts after idle spells, which is when the state begins). The last phases
 * but the first are measured: the median bytes a scavenge promoted (`--trace-gc-nvp`), the median
 * scavenge pause, and the pooled p99 latency.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { GcTraceLog, medianPromotedBytes, type ScavengeTrace } from '../lib/gc-trace.ts';
import { openLoop } from '../lib/load.ts';
import { median, percentile } from '../lib/stats.ts';
import { serverNodeFlagsOf, startSeedServer, startSimulator } from '../lib/targets.ts';
import { NO_PRETENURING_FLAG } from '../../src/node-flags.ts';
import { requestFor, warmUp } from './overhead.ts';

/** A process whose median scavenge promoted more than this is counted as in the high-promotion state. */
export const HIGH_PROMOTION_KIB = 256;
/** The idle spell before each phase (a burst after idling is what tips a site into pretenuring). */
export const PHASE_GAP_SECONDS = 2;

export interface PromotionProcess {
  /** Median KiB a scavenge promoted to the old generation in the measured phases. */
  promotedKiBMedian: number;
  scavengeMedianMs: number;
  scavenges: number;
  /** p99 of every request of the measured phases. */
  latencyP99Ms: number;
  failures: number;
}

export interface PromotionVariant {
  label: string;
  flags: string[];
  processes: PromotionProcess[];
}

export interface PromotionResult {
  ratePerSecond: number;
  phaseSeconds: number;
  phases: number;
  highThresholdKiB: number;
  variants: PromotionVariant[];
}

/** How one process's measured scavenges read. */
export function summarizeScavenges(scavenges: readonly ScavengeTrace[]): Pick<PromotionProcess, 'promotedKiBMedian' | 'scavengeMedianMs' | 'scavenges'> {
  return {
    promotedKiBMedian: medianPromotedBytes(scavenges) / 1024,
    scavengeMedianMs: median(scavenges.map((each) => each.pauseMs)),
    scavenges: scavenges.length,
  };
}

/** Processes of a variant in the high-promotion state (NaN medians, from a process with no scavenge measured, are not). */
export function highPromotionCount(variant: Pick<PromotionVariant, 'processes'>, thresholdKiB = HIGH_PROMOTION_KIB): number {
  return variant.processes.filter((each) => each.promotedKiBMedian > thresholdKiB).length;
}

export async function runPromotion(input: {
  processes: number;
  ratePerSecond: number;
  phaseSeconds?: number;
  phases?: number;
  concurrency: number;
  workDirectory: string;
  log: (line: string) => void;
}): Promise<PromotionResult> {
  const phaseSeconds = input.phaseSeconds ?? 5;
  const phases = input.phases ?? 3;
  const startFlags = serverNodeFlagsOf();
  if (!startFlags.includes(NO_PRETENURING_FLAG)) throw new Error(`npm start's flags do not include ${NO_PRETENURING_FLAG}; this scenario compares with and without it`);
  const variants: PromotionVariant[] = [
    { label: "`npm start`'s flags", flags: startFlags, processes: [] },
    { label: `without \`${NO_PRETENURING_FLAG}\``, flags: startFlags.filter((flag) => flag !== NO_PRETENURING_FLAG), processes: [] },
  ];
  const simulator = await startSimulator();
  try {
    for (let round = 0; round < input.processes; round++) {
      const order = round % 2 === 0 ? variants : [...variants].reverse();
      for (const variant of order) {
        const index = variants.indexOf(variant);
        const directory = join(input.workDirectory, `promotion-${index}-${round}`);
        mkdirSync(directory, { recursive: true });
        const traceFile = join(directory, 'gc.nvp.log');
        const seed = await startSeedServer({
          simulatorUrl: simulator.url,
          workDirectory: directory,
          name: `seed (${variant.label}, ${round + 1})`,
          nodeFlags: variant.flags,
          nodeArguments: ['--trace-gc-nvp'],
          stdoutFile: traceFile,
        });
        try {
          const target = { origin: seed.url, headers: seed.headers };
          await warmUp(target, true, input.concurrency);
          const trace = new GcTraceLog(traceFile);
          const request = requestFor(target, true);
          const latencies: number[] = [];
          let failures = 0;
          for (let phase = 0; phase < phases; phase++) {
            await sleep(PHASE_GAP_SECONDS * 1_000);
            if (phase === 1) trace.mark();
            const result = await openLoop({ request, ratePerSecond: input.ratePerSecond, count: Math.round(input.ratePerSecond * phaseSeconds), keepSamples: phase >= 1 });
            if (phase >= 1) {
              latencies.push(...(result.samples ?? []).map((sample) => sample.latencyMs));
              failures += result.failures;
            }
          }
          // The trace is printed as collections end; give the last one a moment to reach the file.
          await sleep(200);
          const measured: PromotionProcess = { ...summarizeScavenges(trace.since()), latencyP99Ms: percentile(latencies, 0.99), failures };
          variant.processes.push(measured);
          input.log(
            `promotion ${variant.label} #${round + 1}: ${measured.promotedKiBMedian.toFixed(0)} KiB promoted per scavenge (median of ${measured.scavenges}), ` +
              `scavenge median ${measured.scavengeMedianMs.toFixed(2)} ms, p99 ${measured.latencyP99Ms.toFixed(2)} ms, failures ${failures}`,
          );
        } finally {
          await seed.stop();
        }
      }
    }
  } finally {
    await simulator.stop();
  }
  return { ratePerSecond: input.ratePerSecond, phaseSeconds, phases, highThresholdKiB: HIGH_PROMOTION_KIB, variants };
}
