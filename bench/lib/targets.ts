/**
 * The servers compared in the overhead scenario, each started in its own process in front of
 * one simulator process: direct, nginx, a minimal undici proxy, a buffered JSON proxy on
 * Fastify, Seed, and the Portkey gateway.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml, parseDocument } from 'yaml';
import { freePort, startExecutableServer, startNodeServer, type ServerProcess } from './children.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

/**
 * The Node flags a checkout's `npm start` runs Seed with (`node FLAGS… bin/seed.mjs serve`), so
 * that each build in an A/B runs as its own `npm start` would, flags included.
 */
export function serverNodeFlagsOf(root: string = ROOT): string[] {
  const { scripts } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const words = (scripts?.['start'] ?? '').trim().split(/\s+/);
  const entry = words.indexOf('bin/seed.mjs');
  if (words[0] !== 'node' || entry < 0) throw new Error(`${root}/package.json: the start script is not \`node [flags] bin/seed.mjs …\`: ${scripts?.['start']}`);
  return words.slice(1, entry);
}

export type TargetId = 'direct' | 'nginx' | 'undici' | 'buffered' | 'seed' | 'portkey';
export const TARGET_IDS: readonly TargetId[] = ['direct', 'nginx', 'undici', 'buffered', 'seed', 'portkey'];

/** How the report names a target. */
export const TARGET_LABELS: Readonly<Record<TargetId, string>> = {
  direct: 'direct (simulator)',
  nginx: 'nginx',
  undici: 'minimal undici proxy',
  buffered: 'buffered JSON proxy (Fastify)',
  seed: 'Seed',
  portkey: 'Portkey gateway',
};

export interface Target {
  id: TargetId;
  label: string;
  origin: string;
  /** Headers every request to this target carries (auth, provider routing). */
  headers: Record<string, string>;
  /** The proxy's own process; undefined for `direct`. */
  server: ServerProcess | undefined;
  note: string;
}

export interface SkippedTarget {
  id: TargetId;
  reason: string;
}

/** The API key the bench's proxies send to the simulator (which accepts any). */
export const SIMULATOR_KEY = 'sk-bench-simulator';

/** What every request to a proxy that forwards to the simulator carries (the proxies send no key of their own). */
export const SIMULATOR_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  authorization: `Bearer ${SIMULATOR_KEY}`,
  'content-type': 'application/json',
});

/** The admin token of the benchmark's Seed (loopback only, a throwaway process). */
const ADMIN_TOKEN = 'bench-admin-token-not-a-secret';

/** What src/main.ts wires at the time of the run, read from its source (the brief's "as wired"). */
export function seedWiring(): { limits: boolean; ledger: boolean; auth: boolean; summary: string } {
  const main = readFileSync(join(ROOT, 'src/main.ts'), 'utf8');
  const limits = /from '\.\/limits\//.test(main);
  const ledger = /from '\.\/ledger\/(writer|index)\.ts'/.test(main);
  // The journal is on unless the config turns it off; the benchmark's config leaves it on.
  const journal = /journal: config\.ledger\.journal/.test(main);
  const auth = /from '\.\/tenants\//.test(main);
  const state = (wired: boolean) => (wired ? 'on' : 'not wired yet');
  return {
    limits,
    ledger,
    auth,
    summary:
      `auth: ${state(auth)}${auth ? ' (auth.mode keys, a virtual key on every request)' : ''}; limits: ${state(limits)}${limits ? ' (memory store; rpm, tpm and usd/day on the key, team and org, rpm/tpm quota on the deployment: every call reserves and settles all of them)' : ''}; ` +
      `ledger: ${state(ledger)}${ledger ? ` (every call ${journal ? 'appended to the journal (one write per event-loop turn, the answers held until it), then ' : ''}a row in a SQLite file)` : ''}; Seed run from dist/`,
  };
}

/**
 * Seed's benchmark config: one route to the simulator, the ledger into a throwaway SQLite file
 * (or `storeUrl`), limits in memory (or Redis) with a deployment quota (so admission reserves and
 * settles on every call), and, with `auth`, virtual keys required (see `provisionKey`).
 */
export function seedConfig(input: {
  simulatorUrl: string;
  workDirectory: string;
  auth?: boolean;
  deploymentQuota?: boolean;
  /** `server.keepWarmBytesPerSecond`; Seed's default when absent. */
  keepWarmBytesPerSecond?: number;
  /** `auth.keyPollIntervalMs`; Seed's default when absent. */
  keyPollIntervalMs?: number;
  /** `ledger.flushIntervalMs`; Seed's default when absent. */
  ledgerFlushIntervalMs?: number;
  /** The store's URL (ledger, keys): a PostgreSQL URL, say; a SQLite file in `workDirectory` when absent. */
  storeUrl?: string;
  /** Limits in Redis (`onUnavailable: closed`, so an unreachable Redis refuses calls rather than admitting them unchecked); in memory when absent. */
  redisLimits?: { url: string; keyPrefix: string };
}): string {
  const poll = input.keyPollIntervalMs === undefined ? '' : `, keyPollIntervalMs: ${input.keyPollIntervalMs}`;
  const flush = input.ledgerFlushIntervalMs === undefined ? '' : `, flushIntervalMs: ${input.ledgerFlushIntervalMs}`;
  const limits =
    input.redisLimits === undefined
      ? 'limits: { store: memory }'
      : `limits: { store: redis, url: "${input.redisLimits.url}", keyPrefix: "${input.redisLimits.keyPrefix}", onUnavailable: closed }`;
  return `
server: { host: 127.0.0.1, port: 0${input.keepWarmBytesPerSecond === undefined ? '' : `, keepWarmBytesPerSecond: ${input.keepWarmBytesPerSecond}`} }
store: { url: "${input.storeUrl ?? `sqlite:${join(input.workDirectory, 'seed-ledger.db')}`}" }
ledger: { spillDirectory: "${join(input.workDirectory, 'spill')}"${flush} }
${limits}
${input.auth === false ? '' : `auth: { mode: keys, adminToken: ${ADMIN_TOKEN}${poll} }`}
deployments:
  sim-mini:
    provider: openai
    baseUrl: ${input.simulatorUrl}/v1
    model: gpt-4o-mini
    apiKey: ${SIMULATOR_KEY}
    terms: openai
${
  input.deploymentQuota === false
    ? ''
    : `    # High enough never to refuse, so every call pays reserve + settle without being limited.
    limits: { rpm: 100000000, tpm: 100000000000 }
`
}routes:
  gpt-4o-mini: { deployments: [{ deployment: sim-mini }] }
`;
}

/** Limits far above any benchmark load: checked, reserved and settled on every call, never refusing. */
const UNREACHED_LIMITS = { rpm: 100_000_000, tpm: 100_000_000_000, usdPerDay: 1_000_000 };

/**
 * Creates an org, a team and a virtual key through Seed's admin API, each with limits, and
 * returns the key's secret: the benchmark's requests then pay for key lookup and for the
 * limits of all three scopes, as production traffic would.
 */
export async function provisionKey(
  seedUrl: string,
  limits: { org: object; team: object; key: object } = { org: UNREACHED_LIMITS, team: UNREACHED_LIMITS, key: UNREACHED_LIMITS },
): Promise<{ secret: string; keyId: string }> {
  const admin = async (path: string, body: object): Promise<Record<string, unknown>> => {
    const response = await fetch(`${seedUrl}/v1/seed/admin${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = (await response.json()) as Record<string, unknown>;
    if (response.status !== 201) throw new Error(`admin ${path}: ${response.status} ${JSON.stringify(answer)}`);
    return answer;
  };
  // Scenarios may share a ledger file: a fresh org name each time.
  const org = await admin('/orgs', { name: `bench-${process.pid}-${Date.now()}`, limits: limits.org });
  const team = await admin('/teams', { org: org['id'], name: 'load', limits: limits.team });
  const key = await admin('/keys', { team: team['id'], name: 'bench', limits: limits.key });
  return { secret: String(key['secret']), keyId: String(key['id']) };
}

/** A server process and the headers every request to it carries (its key, JSON). */
export interface MeasuredServer extends ServerProcess {
  headers: Record<string, string>;
}

/** A Seed process; its headers are JSON, and its virtual key when auth is on. */
export type SeedServer = MeasuredServer;

/** Settings of a generated Seed config without limits or virtual keys (`auth.mode: open`). */
export const OPEN_SEED = Object.freeze({ auth: false, callerLimits: false, deploymentQuota: false });

/**
 * Starts Seed (from dist/) on the generated config, or SEED_BENCH_CONFIG with SEED_BENCH_KEY,
 * or the caller's config file; with the generated config, provisions a key and waits until the
 * gateway accepts it.
 */
export async function startSeedServer(input: {
  simulatorUrl: string;
  workDirectory: string;
  nodeArguments?: string[];
  /** The Node flags to run Seed with instead of its build's `npm start` flags (`nodeArguments` still follow). */
  nodeFlags?: readonly string[];
  name?: string;
  /** The checkout to run Seed from (its dist/); this one by default. */
  root?: string;
  /** A config file written by the caller; otherwise SEED_BENCH_CONFIG or the generated one. */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Generated config only: virtual keys required (default) or `auth.mode: open`. */
  auth?: boolean;
  /** Generated config only: the deployment's rpm/tpm quota (default on). */
  deploymentQuota?: boolean;
  /** Generated config only: the provisioned org, team and key have rpm, tpm and usd/day limits (default) or none. */
  callerLimits?: boolean;
  /** Generated config only: `server.keepWarmBytesPerSecond` (Seed's default when absent). */
  keepWarmBytesPerSecond?: number;
  /** Generated config only: `auth.keyPollIntervalMs` (Seed's default when absent). */
  keyPollIntervalMs?: number;
  /** Generated config only: `ledger.flushIntervalMs` (Seed's default when absent). */
  ledgerFlushIntervalMs?: number;
  /** Generated config only: the store's URL (see `seedConfig`). */
  storeUrl?: string;
  /** Generated config only: limits in Redis (see `seedConfig`). */
  redisLimits?: { url: string; keyPrefix: string };
  /** Where Seed's stdout goes (see `startNodeServer`). */
  stdoutFile?: string;
  /** A command Seed runs under (see `startNodeServer`). */
  wrapper?: readonly string[];
  /** How long to wait for the ready line (see `startNodeServer`). */
  timeoutMs?: number;
  /** Settings laid over the config, generated or not (`withSettings`): an A/B of a config change. */
  settings?: readonly ConfigSetting[];
}): Promise<SeedServer> {
  let file = input.configFile;
  const custom = process.env['SEED_BENCH_CONFIG'];
  const generated = file === undefined && !custom;
  if (!file) {
    file = join(input.workDirectory, 'seed.yaml');
    writeFileSync(file, custom ? readFileSync(custom, 'utf8') : seedConfig(input));
  }
  if (input.settings !== undefined && input.settings.length > 0) {
    const changed = join(input.workDirectory, 'seed.settings.yaml');
    writeFileSync(changed, withSettings(readFileSync(file, 'utf8'), input.settings));
    file = changed;
  }
  const server = await startNodeServer({
    name: input.name ?? 'seed',
    script: 'bench/servers/seed.ts',
    ...(input.root ? { root: input.root } : {}),
    scriptArguments: [file],
    // Seed as that build's `npm start` runs it (src/node-flags.ts).
    nodeArguments: [...(input.nodeFlags ?? serverNodeFlagsOf(input.root)), ...(input.nodeArguments ?? [])],
    env: input.env ?? {},
    ...(input.stdoutFile ? { stdoutFile: input.stdoutFile } : {}),
    ...(input.wrapper ? { wrapper: input.wrapper } : {}),
    ...(input.timeoutMs ? { timeoutMs: input.timeoutMs } : {}),
  });
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  try {
    const provisioned = generated && input.auth !== false;
    const key = provisioned
      ? (await provisionKey(server.url, input.callerLimits === false ? { org: {}, team: {}, key: {} } : undefined)).secret
      : generated
        ? undefined
        : process.env['SEED_BENCH_KEY'];
    if (key) headers['authorization'] = `Bearer ${key}`;
    if (provisioned) await waitForKey(server.url, headers);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { ...server, headers };
}

/** One setting of a Seed config by its dotted path, as `--baseline-set ledger.journal=false` gives it. */
export interface ConfigSetting {
  path: readonly string[];
  value: unknown;
}

/**
 * Parses `PATH=VALUE` (`ledger.journal=false`, `ledger.flushIntervalMs=10`): the path is split at
 * dots, the value read as YAML (so `false`, `10` and `"x"` have their types).
 */
export function parseConfigSetting(text: string): ConfigSetting {
  const equals = text.indexOf('=');
  const path = equals <= 0 ? [] : text.slice(0, equals).split('.');
  if (path.length === 0 || path.some((key) => key === '')) throw new Error(`expected PATH=VALUE (e.g. ledger.journal=false), got ${text}`);
  return { path, value: parseYaml(text.slice(equals + 1)) as unknown };
}

/** `config` (YAML text) with each setting laid over it; keys it does not have are added. */
export function withSettings(config: string, settings: readonly ConfigSetting[]): string {
  const document = parseDocument(config);
  for (const setting of settings) document.setIn(setting.path, setting.value);
  return document.toString();
}

/** "ledger.journal=false, …", for a log or a report. */
export function settingsText(settings: readonly ConfigSetting[]): string {
  return settings.map((setting) => `${setting.path.join('.')}=${JSON.stringify(setting.value)}`).join(', ');
}

/** Keys reach the gateway's cache by polling (every 250 ms): wait until this one is accepted. */
export async function waitForKey(seedUrl: string, headers: Record<string, string>): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const response = await fetch(`${seedUrl}/v1/models`, { headers });
    await response.arrayBuffer();
    if (response.status === 200) return;
    if (Date.now() > deadline) throw new Error(`Seed refused the provisioned key: ${response.status}`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
}

function nginxConfig(input: { prefix: string; port: number; upstreamPort: number }): string {
  const { prefix } = input;
  return `daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  upstream simulator {
    server 127.0.0.1:${input.upstreamPort};
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${input.port};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://simulator;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
`;
}

function nginxBinary(): string | undefined {
  for (const candidate of ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx']) if (existsSync(candidate)) return candidate;
  try {
    return execFileSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The Node flags of every Node server the bench starts besides Seed (the simulator, the undici and
 * buffered proxies, the Portkey peer): Seed's `npm start` flags by default, so that every Node
 * process in a comparison runs on the same V8 settings and a ratio compares code with code (a
 * proxy on Node's defaults can fall into the high-promotion state Seed's flags prevent:
 * src/node-flags.ts, and flatter Seed). `SEED_BENCH_NODE_FLAGS=none` runs them on Node's defaults.
 */
export function benchNodeFlags(setting: string | undefined = process.env['SEED_BENCH_NODE_FLAGS']): string[] {
  if (setting === undefined || setting === '' || setting === 'npm-start') return serverNodeFlagsOf();
  if (setting === 'none') return [];
  throw new Error(`SEED_BENCH_NODE_FLAGS: expected npm-start or none, got ${setting}`);
}

/** Starts one of the bench's own Node servers (bench/servers/) with `benchNodeFlags()` before its own arguments. */
export function startBenchNodeServer(input: Parameters<typeof startNodeServer>[0]): Promise<ServerProcess> {
  return startNodeServer({ ...input, nodeArguments: [...benchNodeFlags(), ...(input.nodeArguments ?? [])] });
}

/** Starts the provider simulator (bench/servers/simulator.ts), the upstream of every scenario. */
export function startSimulator(
  input: { name?: string; env?: NodeJS.ProcessEnv; nodeArguments?: string[]; stdoutFile?: string } = {},
): Promise<ServerProcess> {
  return startBenchNodeServer({ ...input, name: input.name ?? 'simulator', script: 'bench/servers/simulator.ts' });
}

/** Starts the minimal undici proxy (bench/servers/undici-proxy.ts) in front of `simulatorUrl`. */
export function startUndiciProxy(input: {
  simulatorUrl: string;
  name?: string;
  env?: NodeJS.ProcessEnv;
  nodeArguments?: string[];
  stdoutFile?: string;
  wrapper?: readonly string[];
  timeoutMs?: number;
}): Promise<ServerProcess> {
  const { simulatorUrl, ...rest } = input;
  return startBenchNodeServer({ ...rest, name: input.name ?? 'undici-proxy', script: 'bench/servers/undici-proxy.ts', env: { UPSTREAM: simulatorUrl, ...input.env } });
}

/** Starts the proxies in front of `simulatorUrl`; a proxy that cannot start is skipped with its reason. */
export async function startTargets(input: {
  simulatorUrl: string;
  workDirectory: string;
  only: readonly TargetId[];
  /** Seed's `server.keepWarmBytesPerSecond` (0: the timer off); Seed's default when absent. */
  seedKeepWarmBytesPerSecond?: number;
}): Promise<{ targets: Target[]; skipped: SkippedTarget[] }> {
  const targets: Target[] = [];
  const skipped: SkippedTarget[] = [];
  const bearer = { ...SIMULATOR_HEADERS };
  const upstreamPort = Number(new URL(input.simulatorUrl).port);
  const wanted = (id: TargetId) => input.only.includes(id);

  if (wanted('direct')) {
    targets.push({ id: 'direct', label: TARGET_LABELS.direct, origin: input.simulatorUrl, headers: bearer, server: undefined, note: 'no proxy' });
  }
  if (wanted('nginx')) {
    const binary = nginxBinary();
    if (!binary) skipped.push({ id: 'nginx', reason: 'nginx is not installed (apt-get install -y nginx)' });
    else {
      const prefix = join(input.workDirectory, 'nginx');
      mkdirSync(prefix, { recursive: true });
      const port = await freePort();
      const file = join(prefix, 'nginx.conf');
      writeFileSync(file, nginxConfig({ prefix, port, upstreamPort }));
      try {
        const server = await startExecutableServer({ name: 'nginx', command: binary, arguments: ['-e', join(prefix, 'stderr.log'), '-p', prefix, '-c', file], port });
        // `nginx -v` prints to stderr.
        const version = spawnSync(binary, ['-v'], { encoding: 'utf8' }).stderr.trim().replace('nginx version: ', '') || 'nginx';
        targets.push({ id: 'nginx', label: TARGET_LABELS.nginx, origin: server.url, headers: bearer, server, note: `${version}, 1 process (master_process off), keepalive upstream, proxy_buffering off` });
      } catch (error) {
        skipped.push({ id: 'nginx', reason: `nginx did not start: ${String(error).slice(0, 300)}` });
      }
    }
  }
  const nodeFlags = benchNodeFlags();
  const flagsNote = nodeFlags.length > 0 ? `; Node flags as Seed's npm start (${nodeFlags.join(' ')})` : "; Node's default flags (SEED_BENCH_NODE_FLAGS=none)";
  if (wanted('undici')) {
    try {
      const server = await startUndiciProxy({ simulatorUrl: input.simulatorUrl });
      targets.push({ id: 'undici', label: TARGET_LABELS.undici, origin: server.url, headers: bearer, server, note: `node:http + undici Pool, relays the body with \`Readable#pipe\`${flagsNote}` });
    } catch (error) {
      skipped.push({ id: 'undici', reason: String(error).slice(0, 300) });
    }
  }
  if (wanted('buffered')) {
    try {
      const server = await startBenchNodeServer({ name: 'buffered-proxy', script: 'bench/servers/buffered-proxy.ts', env: { UPSTREAM: input.simulatorUrl } });
      targets.push({
        id: 'buffered',
        label: TARGET_LABELS.buffered,
        origin: server.url,
        headers: bearer,
        server,
        note: `Fastify parses the request, undici Pool; JSON answers read whole and parsed, SSE relayed chunk by chunk${flagsNote}`,
      });
    } catch (error) {
      skipped.push({ id: 'buffered', reason: String(error).slice(0, 300) });
    }
  }
  if (wanted('seed')) {
    try {
      const keepWarm = input.seedKeepWarmBytesPerSecond;
      const server = await startSeedServer({
        simulatorUrl: input.simulatorUrl,
        workDirectory: input.workDirectory,
        ...(keepWarm === undefined ? {} : { keepWarmBytesPerSecond: keepWarm }),
      });
      targets.push({
        id: 'seed',
        label: TARGET_LABELS.seed,
        origin: server.url,
        headers: server.headers,
        server,
        note: `${seedWiring().summary}${keepWarm === undefined ? '' : `; server.keepWarmBytesPerSecond ${keepWarm}${keepWarm === 0 ? ' (the keep-warm timer off)' : ''}`}`,
      });
    } catch (error) {
      skipped.push({ id: 'seed', reason: String(error).slice(0, 500) });
    }
  }
  if (wanted('portkey')) {
    if (!existsSync(join(ROOT, 'node_modules/@portkey-ai/gateway/build/start-server.js'))) {
      skipped.push({ id: 'portkey', reason: '@portkey-ai/gateway is not installed (npm install --save-dev @portkey-ai/gateway)' });
    } else {
      try {
        const server = await startBenchNodeServer({ name: 'portkey', script: 'bench/servers/portkey.mjs', env: { NODE_ENV: 'production' } });
        const version = (JSON.parse(readFileSync(join(ROOT, 'node_modules/@portkey-ai/gateway/package.json'), 'utf8')) as { version: string }).version;
        targets.push({
          id: 'portkey',
          label: TARGET_LABELS.portkey,
          origin: server.url,
          headers: { ...bearer, 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${input.simulatorUrl}/v1` },
          server,
          note: `@portkey-ai/gateway ${version}, @hono/node-server 1.13.8, provider openai + x-portkey-custom-host${flagsNote}`,
        });
      } catch (error) {
        skipped.push({ id: 'portkey', reason: String(error).slice(0, 300) });
      }
    }
  }
  return { targets, skipped };
}
