/** `seed serve`, `seed simulate` and `seed config check`. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../config/load.ts';
import { createLogger, type Logger } from '../log.ts';
import { loadSeedConfig, startSeed } from '../main.ts';
import { simulatorOptionsSchema, startSimulator } from '../simulator/index.ts';
import { nodeFlagsAdvice } from '../node-flags.ts';

function exitOnConfigError(error: unknown): never {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

/** How long a close may run once hurried (its calls cut, the ledger still to write) before the process exits at once. */
const HURRIED_CLOSE_MS = 5_000;

/**
 * How a long-running command ends.
 * - `SIGTERM` or `SIGINT`: `close` (for the gateway, the drain), then exit 0.
 * - An uncaught exception or unhandled rejection: logged with its stack, then the same `close`,
 *   then exit 1. Node's default is to exit at once, which loses the calls in flight and the
 *   ledger's last records; the process is suspect, but the calls in flight are usually sound,
 *   and the close is bounded.
 * - A second signal or fatal error while closing: `hurry` (the calls still running are cut now,
 *   their clients told and each recorded; the close goes on to write the ledger), exit 1.
 * - A third, or a close still running `graceMs` after it began (`HURRIED_CLOSE_MS` once
 *   hurried): `abandon` (the ledger's unstored calls go to its spill directory), exit 1 at once.
 */
function superviseProcess(
  target: { close(): Promise<void>; hurry?(): void; abandon?(): string },
  { logger, graceMs }: { logger: Logger; graceMs: number },
): void {
  let stage: 'serving' | 'closing' | 'hurrying' = 'serving';
  let watchdog: NodeJS.Timeout | undefined;
  const exitNow = (reason: string) => {
    const saved = target.abandon?.();
    logger('error', `${reason}: exiting now${saved ? `; ${saved}` : ''}`);
    process.exit(1);
  };
  const arm = (milliseconds: number) => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => exitNow(`shutdown still running after ${milliseconds} ms`), milliseconds);
  };
  const stop = (reason: string, exitCode: number) => {
    if (stage === 'hurrying' || (stage === 'closing' && !target.hurry)) return exitNow(`${reason} while shutting down`);
    if (stage === 'closing') {
      stage = 'hurrying';
      process.exitCode = 1;
      logger('warn', `${reason} while shutting down: ending the calls in flight now (once more exits at once)`);
      target.hurry!();
      arm(HURRIED_CLOSE_MS);
      return;
    }
    stage = 'closing';
    process.exitCode = exitCode;
    logger('info', `${reason}: shutting down`);
    arm(graceMs);
    target.close().then(
      () => {
        clearTimeout(watchdog);
        process.exit(process.exitCode);
      },
      (error: unknown) => {
        clearTimeout(watchdog);
        logger('error', 'shutdown failed', error);
        exitNow('shutdown failed');
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT', 0));
  process.on('SIGTERM', () => stop('SIGTERM', 0));
  // Unhandled rejections reach this too (Node's default --unhandled-rejections=throw).
  process.on('uncaughtException', (error, origin) => {
    logger('error', origin === 'unhandledRejection' ? 'unhandled promise rejection' : 'uncaught exception', error);
    stop(`fatal ${origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception'}`, 1);
  });
}

export function registerServeCommands(program: Command, helpers: { portNumber: (value: string) => number }): void {
  program
    .command('serve')
    .description('Start the gateway (default: ./seed.yaml, else the bundled example on the simulator).')
    .option('-c, --config <file>', 'config file (also SEED_CONFIG)')
    .option('-p, --port <port>', 'port to listen on (also PORT)', helpers.portNumber)
    .option('-H, --host <host>', 'address to bind (default 127.0.0.1)')
    .action(async (options: { config?: string; port?: number; host?: string }) => {
      const logger = createLogger({ level: process.env.SEED_LOG_LEVEL === 'debug' ? 'debug' : 'info' });
      let loaded;
      try {
        loaded = loadSeedConfig({ ...(options.config ? { path: options.config } : {}) });
      } catch (error) {
        exitOnConfigError(error);
      }
      if (loaded.isExample) {
        logger('info', `no seed.yaml found: using the bundled example config (${loaded.path})`);
        const upstreams = Object.entries(loaded.config.deployments).map(([name, deployment]) => `${name} → ${deployment.baseUrl}`);
        logger('info', `example deployments: ${upstreams.join(', ')}`);
        if (!process.env.OPENAI_API_KEY) logger('info', 'OPENAI_API_KEY is not set: OpenAI routes are served by the bundled simulator');
      } else logger('info', `config: ${loaded.path}`);
      const envPort = process.env.PORT ? helpers.portNumber(process.env.PORT) : undefined;
      const port = options.port ?? envPort;
      let seed;
      try {
        seed = await startSeed({
          config: loaded.config,
          logger,
          ...(options.host ? { host: options.host } : {}),
          ...(port !== undefined ? { port } : {}),
        });
      } catch (error) {
        const code = (error as { code?: string }).code;
        const hint =
          code === 'EADDRINUSE'
            ? ' (another process holds that port: is Seed already running? change server.port / --port, or simulator.port)'
            : '';
        process.stderr.write(`seed: cannot start: ${(error as Error).message}${hint}\n`);
        process.exit(1);
      }
      logger('info', `gateway listening on ${seed.url} (OpenAI-compatible: ${seed.url}/v1)`);
      logger('info', `routes: ${[...Object.keys(loaded.config.routes)].join(', ')}`);
      const advice = nodeFlagsAdvice();
      if (advice) logger('info', advice);
      // The watchdog leaves the drain its time and the ledger's last write 10 s more.
      superviseProcess(seed, { logger, graceMs: loaded.config.server.shutdownTimeoutMs + 10_000 });
    });

  program
    .command('simulate')
    .description("Run Seed's provider simulator (OpenAI, Azure OpenAI and Anthropic wire formats) on loopback.")
    .option('-c, --config <file>', 'simulator options as YAML (latency, limits, faults per model)')
    .option('-p, --port <port>', 'port to listen on', helpers.portNumber, 4010)
    .option('-H, --host <host>', 'address to bind', '127.0.0.1')
    .option('--seed <number>', 'seed for deterministic content', (value) => Number(value))
    .action(async (options: { config?: string; port: number; host: string; seed?: number }) => {
      const fileOptions = options.config ? (parseYaml(readFileSync(options.config, 'utf8')) as unknown) : {};
      const parsed = simulatorOptionsSchema.safeParse(fileOptions ?? {});
      if (!parsed.success) {
        process.stderr.write(
          `${options.config}: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('\n')}\n`,
        );
        process.exit(1);
      }
      const simulator = await startSimulator({
        ...parsed.data,
        host: options.host,
        port: options.port,
        ...(options.seed !== undefined ? { seed: options.seed } : {}),
      });
      process.stderr.write(
        `seed simulator listening on ${simulator.url}\n` +
          `  OpenAI:       ${simulator.url}/v1/chat/completions, /v1/embeddings, /v1/models\n` +
          `  Azure OpenAI: ${simulator.url}/openai/deployments/{name}/chat/completions?api-version=…\n` +
          `  Anthropic:    ${simulator.url}/v1/messages\n`,
      );
      superviseProcess(simulator, { logger: createLogger(), graceMs: 10_000 });
    });

  const configCommand = program.command('config').description('Work with seed.yaml.');
  configCommand
    .command('check')
    .description('Validate a config file; prints every problem with its line, exits 1 if any.')
    .argument('[file]', 'config file (default: ./seed.yaml, else the bundled example)')
    .action((file: string | undefined) => {
      try {
        const loaded = loadSeedConfig({ ...(file ? { path: file } : {}) });
        const routes = Object.keys(loaded.config.routes).length;
        const deployments = Object.keys(loaded.config.deployments).length;
        process.stdout.write(`${loaded.path}: ok (${routes} routes, ${deployments} deployments)\n`);
      } catch (error) {
        exitOnConfigError(error);
      }
    });
}
