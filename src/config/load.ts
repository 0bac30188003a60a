/**
 * Loads `seed.yaml`: parse, interpolate `${ENV_VAR}` secrets, validate, cross-check, freeze.
 * Every problem is reported with its dotted path and the file's line, all at once, so an
 * operator fixes a file in one pass:
 *
 *   seed.yaml:14 routes.chat.deployments[1].weight: expected a positive number
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isNode } from 'yaml';
import type { z } from 'zod';
import { seedConfigSchema, type SeedConfig } from './schema.ts';

export interface ConfigProblem {
  /** Dotted path, e.g. `routes.chat.deployments[1].weight`. */
  path: string;
  line: number | undefined;
  message: string;
}

export class ConfigError extends Error {
  readonly file: string;
  readonly problems: readonly ConfigProblem[];

  constructor(file: string, problems: ConfigProblem[]) {
    super(
      `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n` +
        problems.map((problem) => `  ${formatProblem(file, problem)}`).join('\n'),
    );
    this.name = 'ConfigError';
    this.file = file;
    this.problems = problems;
  }
}

export function formatProblem(file: string, problem: ConfigProblem): string {
  const where = problem.line === undefined ? file : `${file}:${problem.line}`;
  return `${where} ${problem.path || '(root)'}: ${problem.message}`;
}

export type PathSegment = string | number;

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out;
}

const INTERPOLATION = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${NAME}` with the environment variable and `${NAME:-default}` with it or the
 * default when unset or empty. `$${` escapes a literal `${`.
 */
export function interpolate(
  text: string,
  env: NodeJS.ProcessEnv,
): { value: string; missing: string[] } {
  const missing: string[] = [];
  const value = text
    .split('$${')
    .map((piece) =>
      piece.replace(INTERPOLATION, (_match, variable: string, fallback: string | undefined) => {
        const found = env[variable];
        if (found !== undefined && found !== '') return found;
        if (fallback !== undefined) return fallback;
        missing.push(variable);
        return '';
      }),
    )
    .join('${');
  return { value, missing };
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Checks that need more than the schema (e.g. the provider registry); paths get line numbers. */
  checks?: (config: SeedConfig) => Array<{ path: PathSegment[]; message: string }>;
}

/** Reads and validates a config file. Throws ConfigError listing every problem. */
export function loadConfigFile(file: string, options: LoadOptions = {}): SeedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [{ path: '', line: undefined, message: `cannot read: ${(error as Error).message}` }]);
  }
  return parseConfig(text, { ...options, file });
}

/** Parses config text. `file` only names the source in messages. */
export function parseConfig(text: string, options: LoadOptions & { file?: string } = {}): SeedConfig {
  const file = options.file ?? 'seed.yaml';
  const env = options.env ?? process.env;
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: true });
  const lineOf = (path: readonly PathSegment[]): number | undefined => {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = depth === 0 ? document.contents : document.getIn(path.slice(0, depth), true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };

  if (document.errors.length > 0) {
    throw new ConfigError(
      file,
      document.errors.map((error) => ({
        path: '',
        line: error.linePos?.[0]?.line,
        message: (error.message.split('\n')[0] ?? error.message).replace(/ at line \d+, column \d+:?$/, ''),
      })),
    );
  }

  const raw: unknown = document.toJS({ maxAliasCount: 100 }) ?? {};
  const problems: ConfigProblem[] = [];
  const interpolated = interpolateTree(raw, [], env, (path, variable) =>
    problems.push({ path: formatPath(path), line: lineOf(path), message: `environment variable ${variable} is not set` }),
  );

  const enabled = dropDisabledDeployments(interpolated, env);
  // A missing secret of a deployment that is switched off is not a problem.
  const relevant = problems.filter((problem) => !enabled.dropped.some((name) => problem.path.startsWith(`deployments.${name}.`)));

  const parsed = seedConfigSchema.safeParse(enabled.value);
  if (!parsed.success) relevant.push(...zodProblems(parsed.error, lineOf));
  else {
    relevant.push(...crossCheck(parsed.data, lineOf, enabled.dropped));
    for (const problem of options.checks?.(parsed.data) ?? []) {
      relevant.push({ path: formatPath(problem.path), line: lineOf(problem.path), message: problem.message });
    }
  }

  if (relevant.length > 0) throw new ConfigError(file, relevant);
  return deepFreeze(parsed.data as SeedConfig);
}

function interpolateTree(
  value: unknown,
  path: PathSegment[],
  env: NodeJS.ProcessEnv,
  onMissing: (path: PathSegment[], variable: string) => void,
): unknown {
  if (typeof value === 'string') {
    const result = interpolate(value, env);
    for (const variable of result.missing) onMissing(path, variable);
    return result.value;
  }
  if (Array.isArray(value)) return value.map((item, index) => interpolateTree(item, [...path, index], env, onMissing));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, interpolateTree(item, [...path, key], env, onMissing)]),
    );
  }
  return value;
}

function isSet(env: NodeJS.ProcessEnv, variable: unknown): boolean {
  return typeof variable === 'string' && env[variable] !== undefined && env[variable] !== '';
}

/** Removes deployments switched off by `enabledIfEnv` / `disabledIfEnv`, and their route targets. */
function dropDisabledDeployments(config: unknown, env: NodeJS.ProcessEnv): { value: unknown; dropped: string[] } {
  if (config === null || typeof config !== 'object') return { value: config, dropped: [] };
  const record = config as Record<string, unknown>;
  const deployments = record.deployments;
  if (deployments === null || typeof deployments !== 'object') return { value: config, dropped: [] };
  const dropped: string[] = [];
  const kept: Record<string, unknown> = {};
  for (const [name, deployment] of Object.entries(deployments as Record<string, unknown>)) {
    const options = (deployment ?? {}) as Record<string, unknown>;
    const off =
      ('enabledIfEnv' in options && !isSet(env, options.enabledIfEnv)) ||
      ('disabledIfEnv' in options && isSet(env, options.disabledIfEnv));
    if (off) dropped.push(name);
    else kept[name] = deployment;
  }
  if (dropped.length === 0) return { value: config, dropped };
  const routes = record.routes;
  const keptRoutes: Record<string, unknown> = {};
  if (routes !== null && typeof routes === 'object') {
    for (const [name, route] of Object.entries(routes as Record<string, unknown>)) {
      const routeRecord = route as Record<string, unknown> | null;
      if (routeRecord && Array.isArray(routeRecord.deployments)) {
        keptRoutes[name] = {
          ...routeRecord,
          deployments: routeRecord.deployments.filter(
            (target) => !dropped.includes((target as { deployment?: string } | null)?.deployment ?? ''),
          ),
        };
      } else keptRoutes[name] = route;
    }
  }
  return { value: { ...record, deployments: kept, routes: keptRoutes }, dropped };
}

function zodProblems(error: z.ZodError, lineOf: (path: readonly PathSegment[]) => number | undefined): ConfigProblem[] {
  return error.issues.map((issue) => {
    const path = issue.path.filter((segment): segment is PathSegment => typeof segment !== 'symbol');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
      return { path: formatPath(path), line: lineOf([...path, issue.keys[0] ?? '']), message };
    }
    if (issue.code === 'invalid_type' && message.startsWith('Invalid input: expected')) {
      message = message.replace('Invalid input: ', '');
    }
    return { path: formatPath(path), line: lineOf(path), message };
  });
}

function crossCheck(
  config: SeedConfig,
  lineOf: (path: readonly PathSegment[]) => number | undefined,
  dropped: readonly string[],
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const problem = (path: PathSegment[], message: string) =>
    problems.push({ path: formatPath(path), line: lineOf(path), message });

  for (const [routeName, route] of Object.entries(config.routes)) {
    if (route.deployments.length === 0) {
      problem(['routes', routeName, 'deployments'], 'no deployment left: every one is switched off by enabledIfEnv/disabledIfEnv');
    }
    route.deployments.forEach((target, index) => {
      if (!(target.deployment in config.deployments) && !dropped.includes(target.deployment)) {
        problem(['routes', routeName, 'deployments', index, 'deployment'], `unknown deployment "${target.deployment}"`);
      }
    });
    route.fallbacks.forEach((fallback, index) => {
      if (!(fallback in config.routes)) problem(['routes', routeName, 'fallbacks', index], `unknown route "${fallback}"`);
      if (fallback === routeName) problem(['routes', routeName, 'fallbacks', index], 'a route cannot fall back to itself');
    });
  }
  const cycle = findFallbackCycle(config);
  if (cycle) problem(['routes', cycle[0] ?? '', 'fallbacks'], `fallback cycle: ${cycle.join(' → ')}`);
  return problems;
}

function findFallbackCycle(config: SeedConfig): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (route: string, trail: string[]): string[] | undefined => {
    if (state.get(route) === 'done') return undefined;
    if (state.get(route) === 'visiting') return [...trail.slice(trail.indexOf(route)), route];
    state.set(route, 'visiting');
    for (const next of config.routes[route]?.fallbacks ?? []) {
      if (next === route) continue;
      const found = visit(next, [...trail, route]);
      if (found) return found;
    }
    state.set(route, 'done');
    return undefined;
  };
  for (const route of Object.keys(config.routes)) {
    const found = visit(route, []);
    if (found) return found;
  }
  return undefined;
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
