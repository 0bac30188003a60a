/** The machine a run happened on, for the report. */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, freemem, loadavg, release, totalmem } from 'node:os';

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  freeMemoryGiB: number;
  node: string;
  kernel: string;
  loadAverage: string;
  /** From /proc/cpuinfo, when it says: the (virtual) CPU's clock and cache. */
  cpuMHz?: number;
  cacheSize?: string;
  /** How the kernel guards against Meltdown (`Mitigation: PTI` makes every system call dearer). */
  meltdown?: string;
  /**
   * The kernel's mitigations of CPU vulnerabilities in force (`/sys/devices/system/cpu/vulnerabilities`,
   * the entries that read `Mitigation: …`), by vulnerability. Several act at every entry to or exit
   * from the kernel (`tsa`'s "Clear CPU buffers", `meltdown`'s PTI), so a system call costs a
   * different multiple of its instructions on each host: one reason the same code's ratios move
   * between hosts, and why bench/syscalls.ts counts system calls apart.
   */
  mitigations?: Record<string, string>;
  /**
   * Two costs measured at the start of the run, the median of 5 rounds, to relate runs on
   * different hosts (the ratios between targets moved between hosts with the same code): a
   * JavaScript workload (`JSON.stringify` and `JSON.parse` of a chat completion) and a system
   * call (a 1-byte `write` to /dev/null).
   */
  calibration?: { jsonRoundTripMicroseconds: number; syscallMicroseconds: number };
}

export function describeMachine(): Machine {
  let cores = cpus().length;
  try {
    cores = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || cores;
  } catch {
    // nproc missing: os.cpus() is close enough.
  }
  return {
    cores,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: totalmem() / 1024 ** 3,
    freeMemoryGiB: freemem() / 1024 ** 3,
    node: process.version,
    kernel: release(),
    loadAverage: loadavg()
      .map((value) => value.toFixed(2))
      .join(' '),
    ...cpuInfo(),
    calibration: calibrate(),
  };
}

function cpuInfo(): Pick<Machine, 'cpuMHz' | 'cacheSize' | 'meltdown' | 'mitigations'> {
  const info: Pick<Machine, 'cpuMHz' | 'cacheSize' | 'meltdown' | 'mitigations'> = {};
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(text)?.[1];
    const cache = /^cache size\s*:\s*(.+)$/m.exec(text)?.[1];
    if (mhz !== undefined) info.cpuMHz = Number(mhz);
    if (cache !== undefined) info.cacheSize = cache.trim();
  } catch {
    // Not Linux: nothing to add.
  }
  try {
    info.meltdown = readFileSync(join(VULNERABILITIES, 'meltdown'), 'utf8').trim();
  } catch {
    // Not reported by this kernel.
  }
  const mitigations = kernelMitigations();
  if (Object.keys(mitigations).length > 0) info.mitigations = mitigations;
  return info;
}

const VULNERABILITIES = '/sys/devices/system/cpu/vulnerabilities';

/** The mitigations in force in `directory` (one file per vulnerability), by vulnerability, in name order; {} where it cannot be read. */
export function kernelMitigations(directory: string = VULNERABILITIES): Record<string, string> {
  let names: string[];
  try {
    names = readdirSync(directory).sort();
  } catch {
    return {};
  }
  const mitigations: Record<string, string> = {};
  for (const name of names) {
    let text: string;
    try {
      text = readFileSync(join(directory, name), 'utf8').trim();
    } catch {
      continue;
    }
    const mitigation = /^Mitigation:\s*(.+)$/.exec(text)?.[1];
    if (mitigation !== undefined) mitigations[name] = mitigation;
  }
  return mitigations;
}

const COMPLETION = {
  id: 'chatcmpl-B9xQeZ7rTnW3kLmP0aHs2vUyCdEfG',
  object: 'chat.completion',
  created: 1_730_000_000,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello! How can I help you today?', refusal: null }, logprobs: null, finish_reason: 'stop' }],
  usage: { prompt_tokens: 8, completion_tokens: 9, total_tokens: 17 },
};

function calibrate(): Machine['calibration'] {
  const json: number[] = [];
  const syscall: number[] = [];
  const descriptor = openSync('/dev/null', 'w');
  const byte = Buffer.from('x');
  try {
    for (let round = 0; round < 6; round += 1) {
      let started = process.hrtime.bigint();
      let length = 0;
      for (let index = 0; index < 5_000; index += 1) length += (JSON.parse(JSON.stringify(COMPLETION)) as { id: string }).id.length;
      if (length === 0) throw new Error('unreachable');
      const jsonMicroseconds = Number(process.hrtime.bigint() - started) / 1_000 / 5_000;
      started = process.hrtime.bigint();
      for (let index = 0; index < 5_000; index += 1) writeSync(descriptor, byte);
      const syscallMicroseconds = Number(process.hrtime.bigint() - started) / 1_000 / 5_000;
      // The first round warms the JIT up.
      if (round > 0) {
        json.push(jsonMicroseconds);
        syscall.push(syscallMicroseconds);
      }
    }
  } finally {
    closeSync(descriptor);
  }
  const middle = (values: number[]) => [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)] ?? Number.NaN;
  return { jsonRoundTripMicroseconds: middle(json), syscallMicroseconds: middle(syscall) };
}
