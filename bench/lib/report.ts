/** Renders the results as Markdown: printed to the console and written to docs/benchmarks.md. */
import type { Machine } from './machine.ts';
import type { ClientGc } from './load.ts';
import { format, judgedRange, median, medianInterval, quartiles, toldFrom, type MedianInterval, type Quartiles } from './stats.ts';
import { perProcessMedians, type OverheadResult, type PairedRatio, type PairedTail, type PhaseName, type TargetSummary } from '../scenarios/overhead.ts';
import type { ProfileResult } from '../scenarios/profile.ts';
import type { SoakResult } from '../scenarios/soak.ts';
import type { GcPhase, ProcessObservation } from '../scenarios/gc.ts';
import type { LedgerBackendResult } from '../scenarios/ledger.ts';
import type { RestartResult } from '../scenarios/restart.ts';
import type { LimitRun } from '../scenarios/limits.ts';
import type { AbResult } from '../scenarios/ab.ts';
import { DEFAULT_KEEP_WARM_BYTES_PER_SECOND } from '../../src/young-generation.ts';
import type { FeatureStep, FeaturesResult } from '../scenarios/features.ts';
import type { AllocResult } from '../scenarios/alloc.ts';
import type { JobsResult } from '../scenarios/jobs.ts';
import { pacedSummary, type PacedResult } from '../scenarios/paced.ts';
import { highPromotionCount, PHASE_GAP_SECONDS, type PromotionResult } from '../scenarios/promotion.ts';
import { TARGET_LABELS, type TargetId } from './targets.ts';
import { NO_PRETENURING_FLAG } from '../../src/node-flags.ts';

export interface RunReport {
  command: string;
  date: string;
  machine: Machine;
  /**
   * The Node flags Seed ran with (its `npm start` flags) and those of the bench's other Node
   * processes (simulator, proxies, Portkey: `benchNodeFlags`). Absent in runs before
   * 2026-12-05 (02:25–), where Seed had its flags and the others Node's defaults. `client`: the
   * load generator's own (bench/lib/client-flags.ts); absent in runs before 2026-12-05 (13:27–),
   * when it ran on Node's defaults.
   */
  nodeFlags?: { seed: string[]; others: string[]; client?: string[] };
  overhead?: OverheadResult;
  profile?: ProfileResult;
  soak?: SoakResult;
  gc?: GcPhase[];
  promotion?: PromotionResult;
  ledger?: LedgerBackendResult[];
  restart?: RestartResult;
  limits?: LimitRun[];
  ab?: AbResult;
  features?: FeaturesResult;
  alloc?: AllocResult;
  jobs?: JobsResult;
  paced?: PacedResult;
  /** Scenario name → why it did not run. */
  pending: Array<{ scenario: string; reason: string }>;
  /** Hand-written analysis kept in bench/analysis.md (its session log is docs/benchmark-log.md). */
  analysis?: string;
}

/** A rolling restart under streamed load (bench/scenarios/restart.ts). */
export function restartSection(restart: RestartResult): string {
  return [
    '### Restarting under load',
    `Two \`seed serve\` processes as \`npm start\` runs them (A and B, each with its own SQLite ledger), one simulator pacing its tokens ` +
      `(calls of ~${format(restart.callSeconds, 1)} s); ${restart.callsPerVariant} streamed calls at ${restart.ratePerSecond}/s (open loop), the first ` +
      'half to A. At the half A gets the signal and the rest go to B, as a load balancer sends them once A leaves. A is then started once more ' +
      'on its files (it replays its spill directory) and stopped. Lost = calls whose client got an answer (a whole stream or an error) with ' +
      'no ledger row; broken = a stream or connection cut with no answer (unrecorded unless the column says otherwise). `kill` is the ' +
      "baseline: a process that cannot shut down, whose ledger journal keeps the calls it answered; `kill-nojournal` is that kill with " +
      '`ledger.journal: false`.',
    table(
      ['variant', 'signal', 'drain', 'in flight at signal', 'A: ok', 'A: errors', 'A: broken (recorded)', 'A exited after', 'exit code', 'spilled at exit', 'A: lost / answered', 'B: ok / calls', 'B: lost', 'error'],
      restart.readings.map((reading) => [
        reading.variant,
        reading.signal,
        `${format(reading.drainMs / 1_000, 1)} s`,
        String(reading.inFlightAtSignal),
        String(reading.ok),
        Object.entries(reading.errors).map(([code, count]) => `${count} \`${code}\``).join(', ') || '0',
        `${reading.broken} (${reading.brokenRecorded})`,
        Number.isFinite(reading.exitMs) ? `${format(reading.exitMs)} ms` : '—',
        reading.exitCode === null ? 'killed' : String(reading.exitCode),
        reading.spilledAtExit === null ? '—' : String(reading.spilledAtExit),
        `**${reading.lost}** / ${reading.answeredByA}`,
        `${reading.okB} / ${reading.callsToB}`,
        `**${reading.lostB}**`,
        reading.error ?? '',
      ]),
    ),
  ].join('\n\n');
}

/** Section 1's streaming ratio again, with the upstream pacing its tokens (bench/scenarios/paced.ts). */
export function pacedSection(paced: PacedResult): string {
  const summary = pacedSummary(paced);
  return [
    '### Streaming with a paced upstream',
    `The simulator sends a token every ${format(1_000 / paced.tokensPerSecond, 1)} ms (${paced.tokensPerSecond} tokens/s), as a model does, so every ` +
      `event reaches the proxy in a read of its own; ${paced.connections} connections, ${paced.calls} streamed calls per target and round after as ` +
      `many to warm up, ${paced.rounds} rounds, the order rotated. CPU = user+sys of the proxy process (/proc, 10 ms ticks) over the round ÷ calls ` +
      '(and ÷ the events the client received).',
    table(
      ['target', 'CPU µs per streamed call (median)', 'CPU µs per event', 'events per call'],
      summary.map((row) => [row.target === 'seed' ? 'Seed' : 'minimal undici proxy', format(row.perCall), format(row.perEvent, 1), format(row.eventsPerCall, 1)]),
    ),
    `Seed ÷ minimal undici proxy, CPU per streamed call, by round: ${paced.ratios.map((ratio) => `${format(ratio, 2)}×`).join(', ')}; median **${format(median(paced.ratios), 2)}×**.`,
  ].join('\n\n');
}

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : '—';
}

/**
 * `value` as a ratio judged against `goal`: with a third decimal where two would round it onto
 * the goal's other side (0.798 printed as 0.80 beside "not met" of "≥ 0.8").
 */
export function ratioAgainst(value: number, goal: number): string {
  const text = ratio(value);
  if (!Number.isFinite(value)) return text;
  return value.toFixed(2) !== goal.toFixed(2) || value === goal ? text : `${value.toFixed(3)}×`;
}

function signed(value: number, decimals = 2): string {
  if (!Number.isFinite(value)) return '—';
  return `${value >= 0 ? '+' : ''}${value.toFixed(decimals)}`;
}

function closedTable(targets: TargetSummary[], phase: PhaseName): string {
  return table(
    ['target', 'req/s', 'p50 ms', 'p99 ms', '× undici proxy', '× Portkey', 'proxy CPU µs/req', 'failures'],
    targets.map((target) => {
      const result = target.phases[phase];
      return [
        target.label,
        format(result.requestsPerSecond),
        format(result.latencyP50Ms, 2),
        format(result.latencyP99Ms, 2),
        ratio(result.ratioToUndici),
        ratio(result.ratioToPortkey),
        format(result.cpuMicrosecondsPerRequest),
        String(result.failures),
      ];
    }),
  );
}

function openTable(targets: TargetSummary[], phase: PhaseName): string {
  return table(
    ['target', 'achieved req/s', 'p50 ms', 'p99 ms', 'added p50 ms', 'added p99 ms', 'first byte p50 ms', 'added first byte p50 ms', 'proxy CPU µs/req', 'failures'],
    targets.map((target) => {
      const result = target.phases[phase];
      return [
        target.label,
        format(result.requestsPerSecond),
        format(result.latencyP50Ms, 2),
        format(result.latencyP99Ms, 2),
        signed(result.addedP50Ms),
        signed(result.addedP99Ms),
        format(result.firstByteP50Ms, 2),
        signed(result.addedFirstByteP50Ms),
        format(result.cpuMicrosecondsPerRequest),
        String(result.failures),
      ];
    }),
  );
}

function pairedOf(report: RunReport, baseline: string, stream: boolean): PairedRatio | undefined {
  // Saved runs from before paired ratios existed have none.
  return (report.overhead?.paired ?? []).find((each) => (each.subject ?? 'seed') === 'seed' && each.baseline === baseline && each.stream === stream);
}

function pairedTable(paired: readonly PairedRatio[]): string {
  const several = paired.some((each) => each.processPairs !== undefined);
  return table(
    ['ratio', 'mode', 'median', 'quartiles', 'pairs', 'CPU per request, same ratio (quartiles)', ...(several ? ['median by process (subject; baseline)'] : []), 'every pair'],
    paired.map((each) => [
      `${TARGET_LABELS[each.subject ?? 'seed']} ÷ ${each.baseline === 'portkey' ? 'Portkey' : TARGET_LABELS[each.baseline]}`,
      each.stream ? 'streaming' : 'non-streaming',
      ratio(each.median),
      `${ratio(each.lowerQuartile)}–${ratio(each.upperQuartile)}`,
      String(each.ratios.length),
      cpuRatioText(each),
      ...(several ? [byProcess(each)] : []),
      each.ratios.map((value) => value.toFixed(2)).join(' '),
    ]),
  );
}

/** Per-pair differences (ms) as "median (lower to upper quartile)". */
function signedSpread(spread: Quartiles): string {
  return `${signed(spread.median)} (${signed(spread.lowerQuartile)} to ${signed(spread.upperQuartile)})`;
}

/** How a paired tail was measured, and each pair's own difference. */
function tailPairsText(tail: PairedTail): string {
  const perPair = quartiles(tail.addedP99PerPair);
  return (
    `pooled over ${tail.pairs} pairs of ${tail.sliceSeconds} s slices; per pair median ${signed(perPair.median)}, ` +
    `quartiles ${signed(perPair.lowerQuartile)} to ${signed(perPair.upperQuartile)}`
  );
}

/**
 * The paired added latencies (bench/scenarios/overhead.ts, `pairedTail`), as a heading, a note
 * and a table; then those measured pinned, as a second, or why they were not (`pinnedSkipped`).
 */
export function pairedTailsSection(tails: readonly PairedTail[], hostSkipped?: string, pinnedSkipped?: string): string[] {
  const pinned = tails.filter((tail) => tail.pinned !== undefined);
  const layout = pinned[0]?.pinned;
  return [
    ...tailsSection(
      tails.filter((tail) => tail.pinned === undefined),
      hostSkipped,
    ),
    ...(layout
      ? [
          `### Added latency, paired, the proxy on a CPU of its own`,
          `The same slices again, with the load generator and the simulator on CPU ${layout.world} and the proxy ` +
            `on CPU ${layout.gateway} (\`taskset\`), as a deployment has its clients and its provider on other hosts. Unpinned, ` +
            "the kernel wakes a server on the CPU of the process that wrote to its socket, and it waits there while another " +
            'CPU idles (docs/benchmark-log.md, 2026-12-07 (21:00–), item 3). Here the proxy has one CPU for all its threads, ' +
            "Seed's ledger thread and V8's helpers included, and the load generator and the simulator share one, so direct's " +
            'p99 is not the unpinned table\'s: another view of the same machine, with costs of its own (item 7 there).',
          ...tailsTable(pinned),
        ]
      : []),
    ...(pinnedSkipped ? [`The paired tails were not measured pinned in this run: ${pinnedSkipped}.`] : []),
  ];
}

/** The unpinned paired tails' heading, note and table. */
function tailsSection(tails: readonly PairedTail[], hostSkipped?: string): string[] {
  if (tails.length === 0) return [];
  const first = tails[0]!;
  const withClientGc = tails.some((tail) => tail.clientGc !== undefined);
  const withHost = tails.some((tail) => tail.hostBursts !== undefined);
  return [
    `### Added latency, paired (alternating open-loop slices at ${first.ratePerSecond} req/s)`,
    `A proxy and the simulator itself (direct) take turns in ${first.sliceSeconds} s open-loop slices ` +
      `(${Math.round(first.ratePerSecond * first.sliceSeconds)} requests each, latency from each request's scheduled send), who goes ` +
      'first alternating, each slice starting once every process of the benchmark is idle' +
      (first.openLoopWarmUp ? ', after one unmeasured open-loop slice of each side (the first open loop after closed loops re-optimizes code)' : '') +
      '. The percentiles pool every request ' +
      'of a side over all its slices, so both sides share the machine\'s drift and a p99 rests on thousands of requests; the ' +
      'added p99 the targets table judges is the pooled p99 of the proxy minus that of direct. Each pair\'s own difference ' +
      '(a slice\'s p99 is only its tenth-slowest request) is shown for its spread. The undici proxy\'s row is what a proxy ' +
      'that only forwards adds on this machine in this run.',
    ...(withClientGc
      ? [
          "The load generator's GC column is its own garbage collection during each side's slices (major GCs, and all its " +
            'pauses summed): a pause of the client delays every request in flight, whichever side it falls in.',
        ]
      : []),
    ...(withHost
      ? [
          'The host columns come from `perf sched record -a` over all the slices: a host burst is a stretch in which tasks ' +
            "outside the benchmark (kernel threads, the machine's other services) ran with gaps under 2 ms and took 2 ms of CPU or " +
            'more, a core the benchmark\'s processes could not use. "Slowest 1% in a burst" counts the requests at or above ' +
            "each side's pooled p99 that a burst overlapped; the p99 clear of bursts is that of the requests no burst " +
            'overlapped, and its difference is what the proxy added apart from the host\'s bursts (`bench/host-bursts.ts` ' +
            'measures the same for one target at a time).',
        ]
      : []),
    ...tailsTable(tails),
    ...(hostSkipped ? [`The host's bursts were not attributed in this run: ${hostSkipped}.`] : []),
  ];
}

/** The paired tails' table and the line of the host's tasks under it. */
function tailsTable(tails: readonly PairedTail[]): string[] {
  const withClientGc = tails.some((tail) => tail.clientGc !== undefined);
  const withHost = tails.some((tail) => tail.hostBursts !== undefined);
  return [
    table(
      [
        'proxy',
        'mode',
        'p50 ms',
        'p50 direct',
        'added p50',
        'p99 ms',
        'p99 direct',
        'added p99',
        'added p99 per pair: median (quartiles)',
        'pairs',
        'failures',
        ...(withClientGc ? ["load generator's GC: proxy's slices; direct's"] : []),
        ...(withHost ? ['host bursts (their CPU)', "slowest 1% in a burst: proxy's; direct's", 'p99 clear of bursts: proxy; direct', 'added p99 clear of bursts'] : []),
      ],
      tails.map((tail) => {
        return [
          TARGET_LABELS[tail.subject],
          tail.stream ? 'streaming' : 'non-streaming',
          format(tail.subjectP50Ms, 2),
          format(tail.baselineP50Ms, 2),
          signed(tail.subjectP50Ms - tail.baselineP50Ms),
          format(tail.subjectP99Ms, 2),
          format(tail.baselineP99Ms, 2),
          signed(addedP99(tail)),
          signedSpread(quartiles(tail.addedP99PerPair)),
          String(tail.pairs),
          String(tail.failures),
          ...(withClientGc ? [tail.clientGc ? `${clientGcCell(tail.clientGc.subject)}; ${clientGcCell(tail.clientGc.baseline)}` : '—'] : []),
          ...(withHost ? hostCells(tail.hostBursts) : []),
        ];
      }),
    ),
    ...hostTasksLine(tails),
  ];
}

/** The paired tail's host-burst cells: bursts, the slowest in them, and the p99s clear of them. */
function hostCells(host: PairedTail['hostBursts']): string[] {
  if (host === undefined) return ['—', '—', '—', '—'];
  const { subject, baseline } = host.overlap;
  return [
    `${host.bursts} in ${host.seconds.toFixed(0)} s (${host.cpuMs.toFixed(0)} ms)`,
    `${subject.slowestInBurst} of ${subject.slowest}; ${baseline.slowestInBurst} of ${baseline.slowest}`,
    `${format(subject.p99ClearMs, 2)}; ${format(baseline.p99ClearMs, 2)}`,
    signed(addedClearP99(host)),
  ];
}

/** What a paired tail's subject adds to the p99 over its baseline, pooled over the pairs (ms). */
function addedP99(tail: PairedTail): number {
  return tail.subjectP99Ms - tail.baselineP99Ms;
}

/** The proxy's p99 less direct's, both over the requests no host burst overlapped. */
function addedClearP99(host: NonNullable<PairedTail['hostBursts']>): number {
  return host.overlap.subject.p99ClearMs - host.overlap.baseline.p99ClearMs;
}

/** The tasks outside the benchmark that took the most CPU during the paired tails, summed over them (none without a recording): what the host's bursts were. */
function hostTasksLine(tails: readonly PairedTail[]): string[] {
  const byName = new Map<string, number>();
  let seconds = 0;
  for (const tail of tails) {
    if (!tail.hostBursts) continue;
    seconds += tail.hostBursts.seconds;
    for (const task of tail.hostBursts.tasks) byName.set(task.name, (byName.get(task.name) ?? 0) + task.cpuMs);
  }
  if (seconds === 0) return [];
  const top = [...byName.entries()].sort((left, right) => right[1] - left[1]).slice(0, 5);
  return [
    `Tasks outside the benchmark with the most CPU during the paired tails (${seconds.toFixed(0)} s recorded, each tail's five busiest summed): ` +
      top.map(([name, cpuMs]) => `\`${name}\` ${cpuMs.toFixed(0)} ms`).join(', ') +
      '.',
  ];
}

/** "2 major, 14.1 ms". */
function clientGcCell(gc: ClientGc): string {
  return `${gc.majors} major, ${gc.pauseMs.toFixed(1)} ms`;
}

/** The A/B run's latency at the p99 target's rate, for runs that measured it. */
export function abTailSection(ab: AbResult): string[] {
  const measured = ab.modes.flatMap((mode) => (mode.tail === undefined ? [] : [{ stream: mode.stream, tail: mode.tail }]));
  if (measured.length === 0) return [];
  const first = measured[0]!.tail;
  return [
    `Then the two builds take turns in ${first.sliceSeconds} s open-loop slices at ${first.ratePerSecond} req/s, ` +
      `${first.pairs} pairs per mode, who goes first alternating, each slice starting once the processes are idle; every ` +
      'request of a build is pooled into one p50 and p99 (latency from the scheduled send), as the overhead scenario pairs ' +
      "each proxy with the simulator. The per-pair column is each pair's own p99 difference, for its spread.",
    table(
      ['mode', 'p50 ms this / baseline', 'p99 ms this / baseline', 'p99 difference', 'p99 difference per pair: median (quartiles)', 'failures'],
      measured.map(({ stream, tail }) => [
        stream ? 'streaming' : 'non-streaming',
        `${format(tail.currentP50Ms, 2)} / ${format(tail.baselineP50Ms, 2)}`,
        `${format(tail.currentP99Ms, 2)} / ${format(tail.baselineP99Ms, 2)}`,
        signed(tail.currentP99Ms - tail.baselineP99Ms),
        signedSpread(tail.p99DifferencePerPair),
        String(tail.failures),
      ]),
    ),
  ];
}

/** The pairs' CPU-per-request ratio as "median (quartiles)", or a dash for runs before it was measured. */
function cpuRatioText(paired: PairedRatio): string {
  if (paired.cpuRatios === undefined || paired.cpuRatios.length === 0) return '—';
  const spread = quartiles(paired.cpuRatios);
  return `${ratio(spread.median)} (${ratio(spread.lowerQuartile)}–${ratio(spread.upperQuartile)})`;
}

/** The median ratio per process of each side, where the pairs rotated over several. */
function byProcess(paired: PairedRatio): string {
  if (paired.processPairs === undefined) return '—';
  const side = (index: 0 | 1) => perProcessMedians(paired, index).map(ratio).join(' ');
  return `${side(0)}; ${side(1)}`;
}

function severalProcessesNote(paired: readonly PairedRatio[]): string {
  const rotated = paired.find((each) => each.processPairs !== undefined);
  if (rotated === undefined) return '';
  return (
    ` Identical processes keep speeds 5–15% apart for their whole life, so the pairs rotate over ` +
    `${rotated.subjectProcesses} processes of Seed and ${rotated.baselineProcesses} of the minimal undici proxy, pair k measuring ` +
    (rotated.cpuRatios !== undefined
      ? 'Seed process k mod n against proxy process (k + ⌊k / n⌋) mod n, so both sides change process on every pair (each process idles as long between its slices) and every process of one side meets every process of the other; '
      : 'process k mod n of the first side against process ⌊k / n⌋ of the second, so every process of one side meets every process of the other; ') +
    'the column by process shows how far apart they were. Against a single baseline process (the buffered proxy, Portkey) that process is measured in every pair. The CPU ratio is of whole processes (user + system over the slice ÷ requests): where it is near 1 and the throughput ratio is not, the difference is how the two shared cores were scheduled, not work. Every process is warmed up alike and the pairs run ' +
    'before the rounds, so the processes compared have the same history (a process that has served more is warmer).'
  );
}

function verdict(pass: boolean | undefined): string {
  return pass === undefined ? 'not measured' : pass ? 'met' : '**not met**';
}

/**
 * The verdict on a paired ratio that must reach `goal`, judged on the 95% interval of its median
 * when the run has enough pairs for one (`medianInterval`): met when the whole interval reaches
 * the goal, not met when none of it does, and not resolved when the goal lies inside it, where
 * the run cannot tell which side the median is on. Without an interval, the median alone.
 */
export function atLeastVerdict(median: number, interval: MedianInterval | undefined, goal: number): string {
  if (!Number.isFinite(median)) return verdict(undefined);
  if (interval === undefined) return verdict(median >= goal);
  if (interval.lower >= goal) return verdict(true);
  if (interval.upper < goal) return verdict(false);
  return `**not resolved** (${median >= goal ? 'at or above' : 'under'} it by the median)`;
}

export function targetsTable(report: RunReport): string {
  const seed = report.overhead?.targets.find((target) => target.id === 'seed');
  const rows: string[][] = [];
  if (seed) {
    for (const phase of ['closed', 'closed-stream'] as const) {
      const kind = phase === 'closed' ? 'non-streaming' : 'streaming';
      const stream = phase === 'closed-stream';
      const concurrency = report.overhead!.options.concurrency;
      for (const [baseline, goal, name] of [
        ['undici', 0.8, `minimal undici proxy (${kind}, c=${concurrency})`],
        ['portkey', 8, `Portkey (${kind})`],
      ] as const) {
        const rounds = baseline === 'undici' ? seed.phases[phase].ratioToUndici : seed.phases[phase].ratioToPortkey;
        // Judged on the paired ratio when there is one: it is the one the machine's drift does not skew.
        const paired = pairedOf(report, baseline, stream);
        const judged = paired ? paired.median : rounds;
        const cpu = paired && paired.cpuRatios !== undefined ? `, CPU per request ${cpuRatioText(paired)}` : '';
        const interval = paired ? medianInterval(paired.ratios) : undefined;
        const within = interval ? `95% interval of the median ${ratio(interval.lower)}–${ratio(interval.upper)}, ` : '';
        const measured = paired
          ? `${ratioAgainst(paired.median, goal)} paired (${within}quartiles ${ratio(paired.lowerQuartile)}–${ratio(paired.upperQuartile)}${cpu}); ${ratio(rounds)} by rounds`
          : ratioAgainst(rounds, goal);
        rows.push([`throughput ≥ ${goal}× ${name}`, measured, atLeastVerdict(judged, interval, goal)]);
      }
    }
    for (const phase of ['open', 'open-stream'] as const) {
      const rounds = seed.phases[phase].addedP99Ms;
      // Judged on the paired slices when there are some, for the reason the throughput is.
      const tail = (report.overhead!.pairedTails ?? []).find((each) => each.subject === 'seed' && each.stream === (phase === 'open-stream') && each.pinned === undefined);
      const judged = tail ? addedP99(tail) : rounds;
      rows.push([
        `added p99 ≤ 1 ms at ${report.overhead!.options.ratePerSecond} req/s (${phase === 'open' ? 'non-streaming' : 'streaming'})`,
        tail
          ? `${signed(judged)} ms paired (${tailPairsText(tail)}); ${signed(rounds)} ms by rounds` +
            (tail.hostBursts
              ? `; ${signed(addedClearP99(tail.hostBursts))} ms paired over the requests no host burst overlapped ` +
                `(${tail.hostBursts.overlap.subject.slowestInBurst} of Seed's slowest ${tail.hostBursts.overlap.subject.slowest} were in one)`
              : '')
          : `${signed(rounds)} ms`,
        verdict(Number.isFinite(judged) ? judged <= 1 : undefined),
      ]);
    }
    for (const stream of [false, true]) {
      const pinned = (report.overhead!.pairedTails ?? []).find((each) => each.subject === 'seed' && each.stream === stream && each.pinned !== undefined);
      if (pinned === undefined) continue;
      rows.push([
        `added p99 ≤ 1 ms at ${pinned.ratePerSecond} req/s (${stream ? 'streaming' : 'non-streaming'}), Seed on a CPU of its own`,
        `${signed(addedP99(pinned))} ms paired (${tailPairsText(pinned)}; the load generator and the simulator on CPU ${pinned.pinned!.world}, Seed on CPU ${pinned.pinned!.gateway})`,
        verdict(Number.isFinite(addedP99(pinned)) ? addedP99(pinned) <= 1 : undefined),
      ]);
    }
    const ttft = seed.phases['open-stream'].addedFirstByteP50Ms;
    rows.push(['added time to first streamed byte ≤ 1 ms (p50)', `${signed(ttft)} ms`, verdict(Number.isFinite(ttft) ? ttft <= 1 : undefined)]);
  }
  if (report.soak) {
    rows.push([`RSS growth ≤ 10% (${report.soak.completed} requests)`, `${signed(report.soak.growthPercent, 1)}%`, verdict(report.soak.growthPercent <= 10)]);
  }
  return rows.length ? table(['target from the issue', 'measured (Seed)', 'verdict'], rows) : '_no Seed measurement in this run_';
}

/**
 * The issue's p99 and Portkey targets restated against the baseline measured in the same run, as
 * bench/analysis.md proposes for hosts where a do-nothing proxy misses them too: Seed's added p99
 * within 1 ms of the minimal undici proxy's, and Seed ÷ Portkey at least 0.8× of the proxy ÷
 * Portkey. One row per target and mode the run measured both sides of; none otherwise.
 */
export function restatedTargetRows(overhead: Pick<OverheadResult, 'paired' | 'pairedTails'>): string[][] {
  const rows: string[][] = [];
  for (const stream of [false, true]) {
    const kind = stream ? 'streaming' : 'non-streaming';
    const tailOf = (subject: TargetId, pinned: boolean) =>
      (overhead.pairedTails ?? []).find((each) => each.subject === subject && each.stream === stream && (each.pinned !== undefined) === pinned);
    for (const pinned of [false, true]) {
      const seedTail = tailOf('seed', pinned);
      const proxyTail = tailOf('undici', pinned);
      if (seedTail === undefined || proxyTail === undefined) continue;
      const seedAdded = addedP99(seedTail);
      const proxyAdded = addedP99(proxyTail);
      const over = seedAdded - proxyAdded;
      const clear =
        seedTail.hostBursts && proxyTail.hostBursts
          ? `; over the requests no host burst overlapped Seed ${signed(addedClearP99(seedTail.hostBursts))} ms, the proxy ${signed(addedClearP99(proxyTail.hostBursts))} ms`
          : '';
      rows.push([
        `Seed's added p99 within 1 ms of the minimal undici proxy's at ${seedTail.ratePerSecond} req/s (${kind})${pinned ? ', each on a CPU of its own' : ''}`,
        `Seed ${signed(seedAdded)} ms, the proxy ${signed(proxyAdded)} ms: ${signed(over)} ms${clear}`,
        verdict(Number.isFinite(over) ? over <= 1 : undefined),
      ]);
    }
    const seedPortkey = (overhead.paired ?? []).find((each) => (each.subject ?? 'seed') === 'seed' && each.baseline === 'portkey' && each.stream === stream);
    const proxyPortkey = (overhead.paired ?? []).find((each) => each.subject === 'undici' && each.baseline === 'portkey' && each.stream === stream);
    if (seedPortkey && proxyPortkey) {
      const share = seedPortkey.median / proxyPortkey.median;
      rows.push([
        `Seed ÷ Portkey ≥ 0.8× of the minimal undici proxy ÷ Portkey (${kind})`,
        `${ratio(seedPortkey.median)} against ${ratio(proxyPortkey.median)}: ${ratioAgainst(share, 0.8)}`,
        verdict(Number.isFinite(share) ? share >= 0.8 : undefined),
      ]);
    }
  }
  return rows;
}

/** How the run's upstream reported its quota: a gateway that reads the headers pays for that on every call. */
function quotaNote(quota: { requests: string; tokens: string } | undefined): string {
  if (quota === undefined) return '; the simulator reported no quota: no `x-ratelimit-*` headers';
  return (
    `; every answer carries \`x-ratelimit-*\` headers, as OpenAI's do, with limits of ${quota.requests} requests and ` +
    `${quota.tokens} tokens, far above the load, so Seed's router carries the quota forward on every call as in production`
  );
}

function flagList(flags: readonly string[] | undefined): string {
  if (flags === undefined) return "its `npm start` flags";
  return flags.length === 0 ? "Node's defaults" : flags.map((flag) => `\`${flag}\``).join(' ');
}

export function renderReport(report: RunReport): string {
  const { machine } = report;
  const parts: string[] = [];
  parts.push('# Benchmarks');
  parts.push(
    `Generated by \`${report.command}\` on ${report.date}. Every number below was measured by that command in that run; ` +
      'the file is rewritten by each run (the analysis section comes from `bench/analysis.md`).',
  );
  parts.push('## Machine');
  parts.push(
    [
      `- cores (\`nproc\`): ${machine.cores}; CPU: ${machine.cpuModel}${machine.cpuMHz === undefined ? '' : `, ${machine.cpuMHz.toFixed(0)} MHz`}${machine.cacheSize === undefined ? '' : `, cache ${machine.cacheSize}`}${machine.meltdown === undefined ? '' : `; Meltdown: ${machine.meltdown}`}`,
      ...(machine.mitigations === undefined
        ? []
        : [
            `- kernel mitigations in force (some act at every system call, so a system call's cost differs between hosts): ${Object.entries(machine.mitigations)
              .map(([name, mitigation]) => `${name}: ${mitigation}`)
              .join('; ')}`,
          ]),
      ...(machine.calibration === undefined
        ? []
        : [
            `- calibration at start (to relate runs on different hosts): ${machine.calibration.jsonRoundTripMicroseconds.toFixed(2)} µs per ` +
              `\`JSON.parse(JSON.stringify(…))\` of a chat completion, ${machine.calibration.syscallMicroseconds.toFixed(2)} µs per 1-byte \`write\` to /dev/null`,
          ]),
      `- memory: ${machine.memoryGiB.toFixed(1)} GiB (${machine.freeMemoryGiB.toFixed(1)} GiB free at start)`,
      `- Node ${machine.node}, Linux ${machine.kernel}`,
      `- Node flags: Seed ${flagList(report.nodeFlags?.seed)}; the simulator, the Node proxies and Portkey ${report.nodeFlags ? flagList(report.nodeFlags.others) : "Node's defaults"}; the load generator ${report.nodeFlags?.client ? flagList(report.nodeFlags.client) : "Node's defaults"}`,
      `- load average at start: ${machine.loadAverage} (a shared, noisy machine: compare ratios within the run, not absolute numbers across runs)`,
      '- everything on 127.0.0.1; load generator, simulator and each proxy in separate processes sharing the same cores',
    ].join('\n'),
  );
  parts.push('## Targets from the issue');
  parts.push(targetsTable(report));
  if ((report.overhead?.paired ?? []).length > 0) {
    parts.push(
      'A throughput target is judged on the paired ratios: on the 95% interval of their median, from the ' +
        "pairs' order statistics (no assumption about how the ratios are distributed, only that the pairs are " +
        'independent draws; pairs of the same processes are not quite that, so the interval is a little narrow). ' +
        '"Met" means the whole interval reaches the goal, "not met" that none of it does, and "not resolved" that ' +
        'the goal lies inside it: the run cannot tell which side of the goal the median is on, and more pairs (`--pairs`) ' +
        'narrow the interval about as the square root of their number.',
    );
  }
  const restated = report.overhead ? restatedTargetRows(report.overhead) : [];
  if (restated.length > 0) {
    parts.push(
      "The same p99 and Portkey targets restated against the baseline measured in this run, for a host where a proxy that only " +
        'relays misses them as well (not the issue\'s targets: a proposal the analysis explains; both sides paired as above):',
    );
    parts.push(table(['restated target', 'measured', 'verdict'], restated));
  }

  const overhead = report.overhead;
  if (overhead) {
    const { options } = overhead;
    parts.push('## 1. Overhead and throughput');
    parts.push(
      `Request: \`POST /v1/chat/completions\`, \`gpt-4o-mini\`, one short user message, \`max_tokens: 32\` (the simulator answers ` +
        `16–64 tokens, zero latency; streams are SSE chunk by chunk${quotaNote(overhead.upstreamQuota)}). ` +
        `Each target first takes ${overhead.warmUpSeconds ?? 1} s of closed-loop load per mode. ${options.rounds} rounds, targets in a rotated order each round, ` +
        `median reported; ratios and added latencies are computed within each round, then the median taken. ` +
        `Closed loop: autocannon, ${options.concurrency} connections, ${options.durationSeconds} s per phase. ` +
        `Open loop: undici client at ${options.ratePerSecond} req/s, ${Math.round(options.ratePerSecond * options.durationSeconds)} requests per phase, ` +
        `latency from each request's scheduled send time; first byte = first body chunk (first SSE frame when streaming). ` +
        `Proxy CPU = user+sys of the proxy process (/proc/PID/stat) over the phase ÷ completed requests.`,
    );
    parts.push(`### Closed loop, ${options.concurrency} connections — non-streaming`);
    parts.push(closedTable(overhead.targets, 'closed'));
    parts.push(`### Closed loop, ${options.concurrency} connections — streaming`);
    parts.push(closedTable(overhead.targets, 'closed-stream'));
    const paired = overhead.paired ?? [];
    if (paired.length > 0) {
      parts.push('### Paired throughput ratios (alternating 1 s slices)');
      parts.push(
        `Seed and one baseline take turns in 1 s closed-loop slices (${options.concurrency} connections), who goes first ` +
          'alternating, each slice starting once every process of the benchmark is idle (up to 5 s: a slow target ' +
          'otherwise works off its last slice\'s requests in flight during the next one); each adjacent pair gives one ' +
          'ratio of requests per second. The machine drifts within seconds, so these ratios, not the ones between 5 s ' +
          'phases above, are what the targets table judges. The last rows pair the minimal undici proxy with Portkey the ' +
          'same way: how far above Portkey a Node proxy that does nothing but forward gets on this machine in this run.' +
          (paired.some((each) => each.baseline === 'buffered')
            ? ' Seed ÷ the buffered JSON proxy is what Seed\'s features (auth, limits, routing, ledger, accounting) cost over a ' +
              'Fastify server that only parses what it forwards and the answers it gets.'
            : '') +
          severalProcessesNote(paired),
      );
      parts.push(pairedTable(paired));
    }
    parts.push(...pairedTailsSection(overhead.pairedTails ?? [], overhead.hostBurstsSkipped, overhead.pinnedTailsSkipped));
    parts.push(`### Open loop, ${options.ratePerSecond} req/s — non-streaming`);
    parts.push(openTable(overhead.targets, 'open'));
    parts.push(`### Open loop, ${options.ratePerSecond} req/s — streaming`);
    parts.push(openTable(overhead.targets, 'open-stream'));
    parts.push('### Processes');
    parts.push(
      table(
        ['target', 'peak RSS MiB (VmHWM)', 'notes'],
        [
          ...overhead.targets.map((target) => [target.label, format(target.peakRssMiB, 1), target.note]),
          ['(simulator)', format(overhead.simulatorPeakRssMiB, 1), 'the upstream every target shares'],
        ],
      ),
    );
    const lag = Math.max(...overhead.targets.flatMap((target) => [target.phases.open.sendLagP99Ms, target.phases['open-stream'].sendLagP99Ms]).filter(Number.isFinite));
    const otherLoad = overhead.targets.flatMap((target) => Object.values(target.phases).flatMap((phase) => phase.rounds.map((each) => each.otherLoadCores)));
    parts.push(
      `CPU used by processes outside the benchmark during the phases (other engineers' jobs on this shared machine): median ` +
        `${format(median(otherLoad), 2)} cores, max ${format(Math.max(...otherLoad.filter(Number.isFinite)), 2)} cores of ${report.machine.cores}.`,
    );
    parts.push(`Open-loop client send lag (actual − scheduled send), worst p99 over targets: ${format(lag, 2)} ms.`);
    if (overhead.skipped.length) parts.push(`Skipped: ${overhead.skipped.map((each) => `**${each.id}** — ${each.reason}`).join('; ')}.`);
    parts.push(
      '<details><summary>Per-round values (req/s · p50 ms · p99 ms · other load in cores)</summary>\n\n' +
        table(
          ['target', 'phase', ...Array.from({ length: options.rounds }, (_, round) => `round ${round + 1}`)],
          overhead.targets.flatMap((target) =>
            (['closed', 'closed-stream', 'open', 'open-stream'] as const).map((phase) => [
              target.label,
              phase,
              ...target.phases[phase].rounds.map((each) => `${format(each.requestsPerSecond)} · ${format(each.latencyP50Ms, 2)} · ${format(each.latencyP99Ms, 2)} · ${format(each.otherLoadCores, 2)}`),
            ]),
          ),
        ) +
        '\n\n</details>',
    );
  }

  if (report.paced) parts.push(pacedSection(report.paced));

  // What Seed's features cost and allocate: the breakdown of section 1's gap, before the profile.
  if (report.features) parts.push(featuresSection(report.features));
  if (report.alloc) parts.push(allocSection(report.alloc));

  if (report.profile) {
    const { summary } = report.profile;
    parts.push('## Profile of Seed');
    parts.push(
      `\`node --cpu-prof\` on the Seed child during closed-loop load (non-streaming then streaming), ${report.profile.requests} requests, ` +
        `${(summary.busyMs / 1_000).toFixed(1)} s of non-idle samples. Percentages are of non-idle samples. ` +
        'The run leaves the profile (`.cpuprofile`: Chrome DevTools, speedscope) and its measured part as folded stacks (`.folded`: `flamegraph.pl`, inferno, speedscope) in its work directory, for flame graphs.',
    );
    const entries = (list: Array<{ name: string; percent: number }>) => list.map((entry) => [`\`${entry.name}\``, `${entry.percent.toFixed(1)}%`]);
    parts.push('Self time by area (package, src/ folder, Node internals, GC):');
    parts.push(table(['area', 'self %'], entries(summary.topAreas)));
    parts.push('Top functions by self time:');
    parts.push(table(['function', 'self %'], entries(summary.topSelf)));
    parts.push("Seed's own functions by inclusive time:");
    parts.push(table(['function', 'inclusive %'], entries(summary.topSeedInclusive)));
  }

  for (const pending of report.pending) {
    parts.push(`## ${pending.scenario}`);
    parts.push(`Not run: ${pending.reason}`);
  }

  if (report.limits) {
    parts.push('## 2. Limit fidelity');
    parts.push(
      '4 Seed processes share Redis 127.0.0.1:6379 (fresh key prefix). An open-loop client sends 80 req/s for 20 s round-robin over the four — ' +
        'far above each limit and inside one minute (or day), so the allowance is the limit itself. rpm and tpm: a deployment quota, anonymous ' +
        'callers; `used` is admitted requests (rpm) or the `usage.total_tokens` of admitted calls (tpm). usd/day: a dollar budget on one virtual ' +
        'key, the four replicas sharing keys and ledger in one PostgreSQL store; `used` is the ledger\'s cost of the admitted calls.',
    );
    const amount = (each: LimitRun, value: number) => (each.unit === 'usd' ? `$${value.toFixed(6)}` : String(value));
    parts.push(
      table(
        ['limit', 'offered', 'admitted (200)', 'refused (429)', 'other', 'used', 'allowed', 'overshoot'],
        report.limits.map((each) => [
          each.quota,
          String(each.offered),
          String(each.admitted),
          String(each.refused),
          String(each.other),
          amount(each, each.used),
          amount(each, each.allowed),
          `${signed(each.overshootPercent, 1)}%`,
        ]),
      ),
    );
  }

  if (report.ledger) {
    parts.push('## 3. Ledger');
    parts.push(
      'One Seed process (limits + ledger as wired), closed loop, non-streaming; records/s = rows that reached the store ÷ time from ' +
        'load start until the last answered call was a row. PostgreSQL (`127.0.0.1:5432/test`, a throwaway schema) is reached through a TCP ' +
        'relay in the benchmark; for the outage the relay drops every connection and refuses new ones while load continues at 200 req/s, ' +
        'then comes back. Lost = answered calls with no row once the writer has replayed its spill (must be 0). No outage is simulated for SQLite (a local file).',
    );
    parts.push(
      table(
        ['store', 'answered', 'records/s (load → last row)', 'load s', 'all rows after s', 'outage', 'answered / failed during outage run', 'rows', 'lost', 'waited s', 'Seed process', 'error'],
        report.ledger.map((each) => [
          each.backend,
          String(each.answered),
          format(each.recordsPerSecond),
          format(each.loadSeconds, 1),
          format(each.persistedSeconds, 1),
          each.outage ? `${each.outage.outageSeconds} s` : '—',
          each.outage ? `${each.outage.answered} / ${each.outage.failures}` : '—',
          each.outage ? String(each.outage.rowsAtEnd) : '—',
          each.outage ? `**${each.outage.lost}**` : '—',
          each.outage ? format(each.outage.waitedSeconds, 1) : '—',
          each.outage?.seedExited ? '**exited (crashed) during the outage**' : 'alive',
          each.error ?? '',
        ]),
      ),
    );
  }

  if (report.restart) parts.push(restartSection(report.restart));

  if (report.gc) {
    parts.push(`## 5. Garbage collection and event-loop gaps under open-loop load`);
    parts.push(
      'The simulator, the minimal undici proxy and Seed each run with `bench/servers/gc-observer.mjs` preloaded: a ' +
        '`PerformanceObserver` on `gc` entries, and a 1 ms timer that records every event-loop gap over 2 ms with how much of ' +
        'it the main thread spent on a CPU and how much runnable but waiting for one (`/proc/thread-self/schedstat`); the ' +
        'rest is neither (the thread asleep, or the virtual CPU not running). Each target takes the same open-loop load as ' +
        "section 1, one after the other. The client keeps every request's timing, so the slowest 1% can be lined up with " +
        "the gaps. The observers' timers wake each process ~1 000 times a second, so these latencies are this section's " +
        "own, not section 1's." +
        (gcWithPromoted(report.gc)
          ? ' Each process also runs with `--trace-gc-nvp`, which gives the bytes every scavenge promoted to the old ' +
            'generation: what lived past a scavenge, which that scavenge copied. A process in the high-promotion state ' +
            "promotes ~1 MB per scavenge where others promote tens of KiB: V8's allocation-site pretenuring, which Seed's " +
            (report.nodeFlags?.others.includes(NO_PRETENURING_FLAG)
              ? '`npm start` flags turn off, and which every Node process here runs with (section 7; docs/benchmark-log.md, 2026-12-05 (00:03–)).'
              : '`npm start` flags turn off and the other processes here keep (section 7; docs/benchmark-log.md, 2026-12-05 (00:03–)).')
          : ''),
    );
    if (report.gc.some((phase) => !('slowest' in phase))) {
      parts.push('(This run predates the gap measurement; run `npm run bench -- --only gc` for this section.)');
    } else {
      parts.push(gcTable(report.gc));
      parts.push(
        'The slowest 1% of each phase: how many the client itself sent more than 1 ms late, and how many were in flight during ' +
          'an event-loop gap of the proxy or of the simulator (a request can be all three).',
      );
      parts.push(
        table(
          ['target', 'mode', 'slowest 1%', 'sent late by the client', 'overlap a proxy gap', 'overlap a simulator gap', 'none of these'],
          report.gc.map((phase) => [
            gcTargetLabel(phase),
            phase.stream ? 'streaming' : 'non-streaming',
            String(phase.slowest.count),
            String(phase.slowest.sentLate),
            phase.proxy ? String(phase.slowest.overlapProxyGap) : '—',
            String(phase.slowest.overlapSimulatorGap),
            String(phase.slowest.unexplained),
          ]),
        ),
      );
    }
  }
  if (report.jobs) {
    const { jobs } = report;
    parts.push('## 6. Teacher jobs against a TPM ceiling');
    parts.push(
      `The simulator enforces a TPM ceiling of ${jobs.tpm} the way Azure does: ${jobs.tokenWindowMs / 1000} s fixed windows of ` +
        `${Math.floor((jobs.tpm * jobs.tokenWindowMs) / 60_000)} tokens, each request charged its prompt estimate + \`max_tokens\` (${jobs.maxTokens}), ` +
        `and answers after ${jobs.latencyMs} ms. Each client runs ${jobs.durationSeconds} s with ${jobs.concurrency} calls in flight, ` +
        'one after the other, each from a fresh window. Share of the ceiling = tokens the upstream admitted (its own count) ÷ ' +
        `what the ceiling allows in ${jobs.durationSeconds} s (the first window is whole, so a run can pass 100% by up to one window's share). ` +
        'The Seed job is `seed jobs generate`\'s runner through a Seed gateway whose deployment carries the same TPM, at batch priority.',
    );
    parts.push(
      table(
        ['client', 'prompts answered', 'given up', 'share of the TPM ceiling', 'upstream 429s / requests', 'upstream 429 rate', '429s the client saw'],
        jobs.clients.map((client) => [
          client.label,
          String(client.completed),
          String(client.failed),
          `${(100 * client.shareOfCeiling).toFixed(1)}%`,
          `${client.upstreamRateLimited} / ${client.upstreamRequests}`,
          `${((100 * client.upstreamRateLimited) / Math.max(1, client.upstreamRequests)).toFixed(1)}%`,
          String(client.clientRateLimited),
        ]),
      ),
    );
  }
  if (report.promotion) parts.push(promotionSection(report.promotion));
  if (report.soak) {
    const { soak } = report;
    parts.push('## 4. Memory soak');
    parts.push(
      `One fresh Seed process (auth, limits and ledger on), ${soak.completed} completed requests (${soak.failures} failures) in ` +
        `${soak.rssAfterChunkMiB.length} chunks alternating non-streaming and streaming, ${soak.seconds.toFixed(0)} s. RSS is read after each ` +
        `chunk, then again after a forced full GC (\`--expose-gc\`, SIGUSR2); growth compares the post-GC values. After the warm-up ` +
        `(chunk 2): ${soak.warmRssMiB.toFixed(1)} MiB; at the end: ${soak.endRssMiB.toFixed(1)} MiB; growth ${signed(soak.growthPercent, 1)}%; ` +
        `peak ${soak.peakRssMiB.toFixed(1)} MiB. Ledger rows after shutdown: ${soak.ledgerRows} for ${soak.completed} answered calls ` +
        `(${soak.ledgerRows === soak.completed ? 'none lost' : soak.ledgerRows < soak.completed ? `**${soak.completed - soak.ledgerRows} missing**` : `**${soak.ledgerRows - soak.completed} more rows than calls**`}).`,
    );
    parts.push(
      table(
        ['chunk', ...soak.rssAfterChunkMiB.map((_, index) => String(index + 1))],
        [
          ['RSS MiB', ...soak.rssAfterChunkMiB.map((value) => value.toFixed(1))],
          ['after GC', ...soak.rssAfterGcMiB.map((value) => value.toFixed(1))],
        ],
      ),
    );
  }


  if (report.ab) {
    const { ab } = report;
    const intervals = ab.modes.some((mode) => mode.throughput.interval !== undefined);
    parts.push('## A/B: this build against a baseline build');
    parts.push(
      `This checkout (${ab.currentCommit.slice(0, 10)}${ab.currentDirty ? ' with uncommitted changes' : ''}) against ` +
        `\`${ab.baselineRef}\` (${ab.baselineCommit.slice(0, 10)}${ab.baselineSettings ? `, its config changed: ${ab.baselineSettings}` : ''}), both from dist/ with the benchmark config${ab.sharedSettings ? ` changed by ${ab.sharedSettings}` : ''}, in front of one ` +
        `simulator: ${ab.pairs} pairs of alternating 1 s closed-loop slices per mode at ${ab.concurrency} connections` +
        ((ab.processes ?? 1) > 1 ? `, rotating over ${ab.processes} processes of each build (every process of one meets every process of the other)` : ', one process of each build') +
        (intervals
          ? ". Ratios are this ÷ baseline per pair: the median and the 95% interval of the median; a ratio is told from 1 when that interval leaves 1 out"
          : '. Ratios are this ÷ baseline per pair (median, quartiles)') +
        '; the req/s and µs columns are slice medians, for orientation only.',
    );
    const several = ab.modes.some((mode) => mode.byProcess !== undefined);
    const range = (value: Quartiles) => {
      const { lower, upper } = judgedRange(value);
      return `${value.median.toFixed(3)}× (${lower.toFixed(3)}–${upper.toFixed(3)})`;
    };
    const toldFromOne = (value: Quartiles) => (value.interval === undefined ? '—' : toldFrom(value, 1) ? 'yes' : 'no: within the noise');
    parts.push(
      table(
        [
          'mode',
          'throughput ratio',
          ...(intervals ? ['told from 1'] : []),
          'CPU/request ratio',
          ...(intervals ? ['told from 1'] : []),
          'req/s this / baseline',
          'CPU µs/req this / baseline',
          ...(several ? ['throughput ratio by process (this; baseline)'] : []),
        ],
        ab.modes.map((mode) => [
          mode.stream ? 'streaming' : 'non-streaming',
          range(mode.throughput),
          ...(intervals ? [toldFromOne(mode.throughput)] : []),
          range(mode.cpuPerRequest),
          ...(intervals ? [toldFromOne(mode.cpuPerRequest)] : []),
          `${format(mode.current.requestsPerSecond, 0)} / ${format(mode.baselineBuild.requestsPerSecond, 0)}`,
          `${format(mode.current.cpuMicrosecondsPerRequest, 0)} / ${format(mode.baselineBuild.cpuMicrosecondsPerRequest, 0)}`,
          ...(several
            ? [mode.byProcess ? `${mode.byProcess.current.map((each) => each.toFixed(2)).join(', ')}; ${mode.byProcess.baseline.map((each) => each.toFixed(2)).join(', ')}` : '—']
            : []),
        ]),
      ),
    );
    parts.push(...abTailSection(ab));
  }

  if (report.analysis) parts.push(report.analysis.trim());
  return `${parts.join('\n\n')}\n`;
}

/** How many of Seed's allocation sites the report lists, per mode. */
const ALLOC_SITES = 15;
/** Sites listed per mode for the bytes no scavenge freed. */
const SURVIVOR_SITES = 10;

/** Bytes allocated per request by server and mode, and Seed's largest sites beside the others' (bench/scenarios/alloc.ts). */
export function allocSection(alloc: AllocResult): string {
  const kib = (bytes: number | undefined) => (bytes === undefined ? '–' : (bytes / 1024).toFixed(2));
  const parts = [
    '## Allocation per request',
    `V8's sampling heap profiler in each server (freed objects kept, one sample per 512 bytes on average) over ` +
      `${alloc.requestsPerMode} closed-loop requests per mode at ${alloc.concurrency} connections, after the usual warm-up. ` +
      'What a call allocates barely depends on the machine\'s other load, so these figures compare across runs where CPU ' +
      'figures cannot.' +
      (alloc.seedKeepWarmBytesPerSecond === undefined
        ? ''
        : ` Seed runs with \`server.keepWarmBytesPerSecond\` ${alloc.seedKeepWarmBytesPerSecond} here: that timer's allocation ` +
          `(${DEFAULT_KEEP_WARM_BYTES_PER_SECOND / 1024 / 1024} MiB a second by default, whatever the load) is the process's, not a call's.`),
    table(
      ['server', 'KiB per non-streaming request', 'KiB per streamed request', 'of which no scavenge freed: non-streaming', 'streaming'],
      alloc.servers.map((server) => [
        server.label,
        kib(server.modes.find((mode) => !mode.stream)?.bytesPerRequest),
        kib(server.modes.find((mode) => mode.stream)?.bytesPerRequest),
        kib(server.modes.find((mode) => !mode.stream)?.survived?.bytesPerRequest),
        kib(server.modes.find((mode) => mode.stream)?.survived?.bytesPerRequest),
      ]),
    ),
  ];
  if (alloc.servers.some((server) => server.modes.some((mode) => mode.survived !== undefined))) {
    parts.push(
      'The last two columns come from a second profile over as many requests, without the samples of objects a scavenge ' +
        'freed and with a scavenge forced at its end: the bytes per request no scavenge freed, which V8 promoted to the old ' +
        'generation (an object is promoted when it survives its second scavenge) or which were still alive at the end. ' +
        'They are what the old generation grows by, and what major GCs then mark and free; an object that survives one ' +
        'scavenge and dies before the next is copied once and is not counted here.',
    );
  }
  const seed = alloc.servers.find((server) => server.id === 'seed');
  const others = alloc.servers.filter((server) => server !== seed);
  for (const mode of seed?.modes ?? []) {
    const otherSites = others.map((server) => new Map((server.modes.find((each) => each.stream === mode.stream)?.sites ?? []).map((site) => [site.site, site.bytesPerRequest])));
    parts.push(`### Seed's largest allocation sites — ${mode.stream ? 'streaming' : 'non-streaming'} (bytes per request)`);
    parts.push(
      table(
        ['site (function that allocated)', 'Seed', ...others.map((server) => server.label)],
        mode.sites.slice(0, ALLOC_SITES).map((site) => [
          `\`${site.site}\``,
          site.bytesPerRequest.toFixed(0),
          ...otherSites.map((sites) => (sites.get(site.site) ?? 0).toFixed(0)),
        ]),
      ),
    );
    if (mode.survived === undefined) continue;
    const otherSurvivors = others.map(
      (server) => new Map((server.modes.find((each) => each.stream === mode.stream)?.survived?.sites ?? []).map((site) => [site.site, site.bytesPerRequest])),
    );
    parts.push(`### Seed's largest sites of bytes no scavenge freed — ${mode.stream ? 'streaming' : 'non-streaming'} (bytes per request)`);
    parts.push(
      table(
        ['site (function that allocated)', 'Seed', ...others.map((server) => server.label)],
        mode.survived.sites.slice(0, SURVIVOR_SITES).map((site) => [
          `\`${site.site}\``,
          site.bytesPerRequest.toFixed(0),
          ...otherSurvivors.map((sites) => (sites.get(site.site) ?? 0).toFixed(0)),
        ]),
      ),
    );
  }
  return parts.join('\n\n');
}

/**
 * Whether a measured cost is told apart from zero: the 95% interval of its median lies on one
 * side of it (in runs saved before the interval was kept, its quartiles). Of 20 pairs the
 * interval runs from the 6th value to the 15th and the quartiles from the 5th to the 15th; with
 * more pairs the interval narrows and the quartiles do not.
 */
export function featureCostResolved(cost: Pick<Quartiles, 'lowerQuartile' | 'upperQuartile' | 'interval'>): boolean {
  return toldFrom(cost, 0);
}

/** Per-feature costs: each rung of the ladder against the one below it (bench/scenarios/features.ts). */
export function featuresSection(features: FeaturesResult): string {
  const range = (value: Quartiles, digits: number, unit: string, signed = false) => {
    const sign = (number: number) => (signed && number >= 0 ? '+' : '');
    const { lower, upper } = judgedRange(value);
    return `${sign(value.median)}${value.median.toFixed(digits)}${unit} (${sign(lower)}${lower.toFixed(digits)} … ${sign(upper)}${upper.toFixed(digits)})`;
  };
  const intervals = features.steps.some((step) => step.modes.some((mode) => mode.cpuAdded.interval !== undefined));
  const stepsTable = (steps: readonly FeatureStep[], first: string) =>
    table(
      [first, 'mode', 'throughput with ÷ without', 'CPU added per request', 'resolved', 'CPU µs/req with / without'],
      steps.flatMap((step) =>
        step.modes.map((mode, index) => [
          index === 0 ? step.feature : '',
          mode.stream ? 'streaming' : 'non-streaming',
          range(mode.throughput, 3, '×'),
          range(mode.cpuAdded, 1, ' µs', true),
          featureCostResolved(mode.cpuAdded) ? 'yes' : 'no: within the noise',
          `${format(mode.with.cpuMicrosecondsPerRequest, 0)} / ${format(mode.without.cpuMicrosecondsPerRequest, 0)}`,
        ]),
      ),
    );
  const total = (stream: boolean) =>
    features.steps.reduce((sum, step) => sum + (step.modes.find((mode) => mode.stream === stream)?.cpuAdded.median ?? Number.NaN), 0);
  const stores =
    features.storeSteps !== undefined && features.storeSteps.length > 0
      ? [
          '### The production stores',
          `The same build with every feature on, its store (ledger rows, virtual keys) and limits moved to the servers a ` +
            `deployment of several replicas shares: ${features.storeSteps.map((step) => step.withLabel).join(' → ')} → ` +
            `${features.storeSteps.at(-1)?.withoutLabel ?? ''}, measured as the ladder above is. The CPU is Seed's process ` +
            "only: Redis and PostgreSQL run on this machine's cores too, so their work shows in the throughput ratio, not in the µs.",
          stepsTable(features.storeSteps, 'store (what the rung above changes)'),
        ]
      : features.storesSkipped !== undefined
        ? ['### The production stores', `Not measured in this run: ${features.storesSkipped}.`]
        : [];
  return [
    '## What each feature costs',
    `Seed as a ladder of processes of the same build, each with one feature fewer than the one above, down to proxies ` +
      `without Seed: ${features.steps.map((step) => step.withLabel).join(' → ')} → ${features.steps.at(-1)?.withoutLabel ?? ''}. ` +
      `Every process warmed alike, then each rung paired with the one below in ${features.pairs} pairs of alternating 1 s ` +
      `closed-loop slices per mode (${features.concurrency} connections). The cost is the rung's CPU per request minus the ` +
      `lower rung's, per pair (median, ${intervals ? '95% interval of the median' : 'quartiles'}); the throughput ratio is with ÷ without. ` +
      `A cost is resolved when ${intervals ? 'that interval lies' : 'its quartiles lie'} on one side of zero; otherwise the feature costs less than this machine's noise can show in this many pairs. ` +
      'The µs column is slice medians, for orientation only.',
    stepsTable(features.steps, 'feature (what the rung above adds)'),
    `Sum of the medians, ${features.steps[0]?.withLabel ?? ''} over ${features.steps.at(-1)?.withoutLabel ?? ''}: ${format(total(false), 1)} µs per non-streaming request, ` +
      `${format(total(true), 1)} µs per streamed one (medians do not add exactly; the per-step rows are the measurement).`,
    ...stores,
  ].join('\n\n');
}

function gcTargetLabel(phase: GcPhase): string {
  return TARGET_LABELS[phase.target];
}

/** Whether the run read promoted bytes from `--trace-gc-nvp` (runs before 2026-12-04 did not). */
function gcWithPromoted(phases: readonly GcPhase[]): boolean {
  return phases.some((phase) => phase.simulator.promotedKiBMedian !== undefined || phase.proxy?.promotedKiBMedian !== undefined);
}

/** One row per observed process of each phase: its GC pauses and its event-loop gaps, split by where the time went. */
function gcTable(phases: readonly GcPhase[]): string {
  const withPromoted = gcWithPromoted(phases);
  const rows = phases.flatMap((phase) => {
    const processes: Array<[string, ProcessObservation]> = [
      ...(phase.proxy ? [[phase.target === 'seed' ? 'Seed' : 'undici proxy', phase.proxy] as [string, ProcessObservation]] : []),
      ['simulator', phase.simulator],
    ];
    return processes.map(([name, observation], index) => [
      index === 0 ? gcTargetLabel(phase) : '',
      index === 0 ? (phase.stream ? 'streaming' : 'non-streaming') : '',
      index === 0 ? format(phase.latencyP99Ms, 2) : '',
      name,
      format(observation.scavengesPerThousand, 1),
      format(observation.scavengeMedianMs, 2),
      ...(withPromoted ? [observation.promotedKiBMedian === undefined ? '—' : format(observation.promotedKiBMedian, 0)] : []),
      String(observation.majorCollections),
      format(observation.pausedPercent, 1),
      `${observation.gaps} · ${format(observation.gapMs, 0)}`,
      format(observation.gapOnCpuMs, 0),
      format(observation.gapGcMs, 0),
      format(observation.gapWaitingMs, 0),
      format(observation.gapOtherMs, 0),
    ]);
  });
  return table(
    ['target', 'mode', 'p99 ms', 'process', 'scavenges / 1000 req', 'scavenge median ms', ...(withPromoted ? ['promoted KiB / scavenge (median)'] : []), 'major + incremental', 'time paused %', 'gaps > 2 ms · total ms', 'on CPU ms', '(of which GC ms)', 'waiting for a CPU ms', 'neither ms'],
    rows,
  );
}

/** Section 7: how many fresh processes of each set of flags fell into the high-promotion state. */
export function promotionSection(promotion: PromotionResult): string {
  const perProcess = promotion.variants[0]?.processes.length ?? 0;
  const range = (values: number[], decimals: number) => {
    const finite = values.filter((value) => Number.isFinite(value));
    return finite.length === 0 ? '—' : `${format(median(finite), decimals)} (${format(Math.min(...finite), decimals)}–${format(Math.max(...finite), decimals)})`;
  };
  const intro =
    `## 7. The high-promotion state over fresh processes\n\n` +
    `${perProcess} fresh Seed processes with \`npm start\`'s flags and ${perProcess} without \`${NO_PRETENURING_FLAG}\` ` +
    `(Node's default there), alternating which starts first. Each is warmed up like section 1's, then takes ${promotion.phases} ` +
    `streaming open-loop phases of ${promotion.phaseSeconds} s at ${promotion.ratePerSecond} req/s, ${PHASE_GAP_SECONDS} s apart, each from a new ` +
    'client pool; every phase but the first is measured. A process whose median scavenge promoted more than ' +
    `${promotion.highThresholdKiB} KiB to the old generation (\`--trace-gc-nvp\`) is counted as in the high-promotion state ` +
    '(docs/benchmark-log.md, 2026-12-05 (00:03–); src/node-flags.ts). Medians over the processes, with the lowest and highest in brackets.';
  return [
    intro,
    table(
      ['flags', 'processes', 'in the high-promotion state', 'promoted KiB / scavenge', 'scavenge median ms', 'p99 ms', 'failures', 'promoted KiB / scavenge, each process'],
      promotion.variants.map((variant) => [
        variant.label,
        String(variant.processes.length),
        String(highPromotionCount(variant, promotion.highThresholdKiB)),
        range(variant.processes.map((each) => each.promotedKiBMedian), 0),
        range(variant.processes.map((each) => each.scavengeMedianMs), 2),
        range(variant.processes.map((each) => each.latencyP99Ms), 2),
        String(variant.processes.reduce((sum, each) => sum + each.failures, 0)),
        variant.processes.map((each) => format(each.promotedKiBMedian, 0)).join(', '),
      ]),
    ),
  ].join('\n\n');
}
