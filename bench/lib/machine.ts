/** The machine a run happened on, for the report. */
import { execFileSync } from 'node:child_process';
import { cpus, freemem, loadavg, release, totalmem } from 'node:os';

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  freeMemoryGiB: number;
  node: string;
  kernel: string;
  loadAverage: string;
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
  };
}
