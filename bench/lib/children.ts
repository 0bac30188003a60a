/**
 * Starts every server of the benchmark in its own child process, so CPU and RSS can be read
 * per process, and stops them by their own pid. A Node child reports readiness with one JSON
 * line on stdout: `{"ready":true,"url":"http://127.0.0.1:PORT"}`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';

export interface ServerProcess {
  name: string;
  url: string;
  pid: number;
  /** Last lines of stderr, for error messages. */
  stderrTail(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

const ROOT = resolve(import.meta.dirname, '..', '..');

/**
 * What an interrupted benchmark leaves behind, ended and removed when it is interrupted: every
 * child process it started (servers, `perf`, `strace`, valgrind) and its scratch directories.
 * Without this, a `kill` of a bench command (a CI timeout, `timeout`, a `kill PID`) ended the
 * command alone: its servers kept running and a system-wide `perf sched record` kept writing
 * into /tmp until someone stopped it (59 MB within minutes, in the run that found this).
 * (Ctrl-C in a terminal signals the whole process group, so the children got it anyway.)
 */
const liveChildren = new Set<ChildProcess>();
const scratchDirectories = new Set<string>();
/** How long interrupted children get to end on SIGTERM before SIGKILL. */
const INTERRUPT_GRACE_MS = 3_000;
/** The signals that interrupt a bench command (a re-run on the bench's Node flags forwards them: client-flags.ts). */
export const INTERRUPTING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let cleanupInstalled = false;
let interrupted = false;

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  for (const signal of INTERRUPTING_SIGNALS) process.on(signal, () => void interrupt(signal));
  // An exit with children still running (an uncaught error past every `finally`): they are
  // told to end; the exit cannot wait for them.
  process.on('exit', () => {
    for (const child of liveChildren) child.kill('SIGTERM');
  });
}

async function interrupt(signal: (typeof INTERRUPTING_SIGNALS)[number]): Promise<void> {
  if (interrupted) return;
  interrupted = true;
  process.stderr.write(`\n${signal}: ending ${liveChildren.size} child process(es) and removing ${scratchDirectories.size} scratch director${scratchDirectories.size === 1 ? 'y' : 'ies'}\n`);
  const children = [...liveChildren];
  await Promise.all(children.map((child) => stopper(child)(INTERRUPT_GRACE_MS)));
  for (const directory of scratchDirectories) rmSync(directory, { recursive: true, force: true });
  process.exit(signalExitCode(signal));
}

/** A shell's exit status for a process ended by `signal`: 128 + its number. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal];
}

/**
 * Registers `child` to be ended if the benchmark is interrupted or exits before it does; returns
 * it. Every process a bench command starts goes through this (`startNodeServer` and
 * `startExecutableServer` do it themselves).
 */
export function endWithBenchmark<Child extends ChildProcess>(child: Child): Child {
  installCleanup();
  // Started while the benchmark is being interrupted (a scenario that went on meanwhile): ended at once.
  if (interrupted) child.kill('SIGTERM');
  else if (child.exitCode === null && child.signalCode === null) {
    liveChildren.add(child);
    child.once('exit', () => liveChildren.delete(child));
  }
  return child;
}

/**
 * A new directory under the system's temporary directory (`mkdtemp` with `prefix`), removed if
 * the benchmark is interrupted; removing it when done is still the caller's (a command may keep it).
 */
export function scratchDirectory(prefix: string): string {
  installCleanup();
  const directory = mkdtempSync(join(tmpdir(), prefix));
  scratchDirectories.add(directory);
  return directory;
}

function tailOf(child: ChildProcess): () => string {
  const lines: string[] = [];
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    lines.push(...chunk.split('\n').filter(Boolean));
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  });
  return () => lines.join('\n');
}

/** SIGTERM, then SIGKILL after `graceMs` (5 s by default); resolves once `child` has exited. */
export function stopper(child: ChildProcess): (graceMs?: number) => Promise<void> {
  const exited = new Promise<void>((resolveExit) => {
    if (child.exitCode !== null || child.signalCode !== null) resolveExit();
    else child.once('exit', () => resolveExit());
  });
  return async (graceMs = 5_000) => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
}

/**
 * Runs `node [nodeArguments] SCRIPT [scriptArguments]` (a `.ts` script goes through
 * bin/run-ts.mjs, like `npm start`) and waits for its ready line.
 */
export async function startNodeServer(input: {
  name: string;
  script: string;
  /** The checkout the script and its imports come from (another build of Seed, for an A/B run); this one by default. */
  root?: string;
  scriptArguments?: string[];
  nodeArguments?: string[];
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Append the child's stdout to this file (what `--trace-gc-nvp` prints, say); otherwise it is read and dropped. */
  stdoutFile?: string;
  /** A command the process runs under, its arguments first (`['valgrind', '--tool=callgrind']`); for valgrind the pid is still the program's. */
  wrapper?: readonly string[];
}): Promise<ServerProcess> {
  const root = input.root ?? ROOT;
  const script = resolve(root, input.script);
  const entry = script.endsWith('.ts') ? [resolve(root, 'bin/run-ts.mjs'), script] : [script];
  const command = [...(input.wrapper ?? []), process.execPath, ...(input.nodeArguments ?? []), ...entry, ...(input.scriptArguments ?? [])];
  const child = endWithBenchmark(
    spawn(command[0]!, command.slice(1), {
      cwd: root,
      env: { ...process.env, ...input.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const stderrTail = tailOf(child);
  const stop = stopper(child);
  const url = await new Promise<string>((resolveReady, rejectReady) => {
    const timer = setTimeout(() => rejectReady(new Error(`${input.name} did not start in time:\n${stderrTail()}`)), input.timeoutMs ?? 30_000);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (!line.startsWith('{"ready"')) return;
      const message = JSON.parse(line) as { url: string };
      clearTimeout(timer);
      resolveReady(message.url);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      rejectReady(new Error(`${input.name} exited before it was ready (code ${code}, signal ${signal}):\n${stderrTail()}`));
    });
  }).catch(async (error: unknown) => {
    await stop(1_000);
    throw error;
  });
  // Keep draining stdout so a chatty child never blocks on a full pipe.
  if (input.stdoutFile) child.stdout?.pipe(createWriteStream(input.stdoutFile, { flags: 'a' }));
  else child.stdout?.resume();
  return { name: input.name, url, pid: child.pid!, stderrTail, stop };
}

/** A free TCP port on 127.0.0.1, for servers (nginx) that cannot report an ephemeral one. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, rejectPort) => {
    const server = createServer();
    server.once('error', rejectPort);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolveProbe) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolveProbe(true);
      });
      socket.once('error', () => resolveProbe(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  }
}

/** Starts any executable as a server on a known port (nginx). */
export async function startExecutableServer(input: {
  name: string;
  command: string;
  arguments: string[];
  port: number;
}): Promise<ServerProcess> {
  const child = endWithBenchmark(spawn(input.command, input.arguments, { stdio: ['ignore', 'ignore', 'pipe'] }));
  const stderrTail = tailOf(child);
  const stop = stopper(child);
  const exited = new Promise<never>((_, rejectExit) =>
    child.once('exit', (code) => rejectExit(new Error(`${input.name} exited (code ${code}):\n${stderrTail()}`))),
  );
  exited.catch(() => undefined);
  try {
    await Promise.race([waitForPort(input.port), exited]);
  } catch (error) {
    await stop(1_000);
    throw error;
  }
  return { name: input.name, url: `http://127.0.0.1:${input.port}`, pid: child.pid!, stderrTail, stop };
}
