/**
 * Routes resolved from config: each alias with its weighted deployments (as adapter-ready
 * `DeploymentTarget`s), its fallback chain, retry policy and deadline. Built once at start.
 */
import type { SeedConfig } from '../config/schema.ts';
import type { DeploymentTarget } from '../providers/types.ts';

export interface Deployment extends DeploymentTarget {
  /** Terms profile id of this deployment's outputs. */
  readonly terms: string | undefined;
  readonly limits: Readonly<{ rpm?: number; tpm?: number }>;
  /** Price override (USD per 1M tokens), when the config sets one. */
  readonly pricing: Readonly<{ inputPerMTok: number; outputPerMTok: number; cachedInputPerMTok?: number }> | undefined;
  /** Per-attempt timeout; the route's deadline still bounds it. */
  readonly timeoutMs: number | undefined;
}

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly maxRetryAfterMs: number;
}

export interface Route {
  readonly name: string;
  readonly description: string | undefined;
  readonly targets: ReadonlyArray<{ readonly deployment: Deployment; readonly weight: number }>;
  readonly fallbacks: readonly string[];
  readonly retry: RetryPolicy;
  readonly timeoutMs: number;
  readonly defaultMaxTokens: number | undefined;
  readonly hidden: boolean;
}

export interface RouteTable {
  readonly routes: ReadonlyMap<string, Route>;
  readonly deployments: ReadonlyMap<string, Deployment>;
}

/**
 * @param defaultTerms terms profile of a provider's deployments that name none (from the
 * provider registry, so this module never names a provider).
 */
export function buildRouteTable(config: SeedConfig, defaultTerms: (provider: string) => string | undefined = () => undefined): RouteTable {
  const deployments = new Map<string, Deployment>();
  for (const [name, deployment] of Object.entries(config.deployments)) {
    deployments.set(
      name,
      Object.freeze({
        name,
        provider: deployment.provider,
        baseUrl: deployment.baseUrl,
        model: deployment.model,
        apiKey: deployment.apiKey,
        headers: deployment.headers,
        region: deployment.region,
        options: deployment.options,
        terms: deployment.terms ?? defaultTerms(deployment.provider),
        limits: deployment.limits,
        pricing: deployment.pricing,
        timeoutMs: deployment.timeoutMs,
      }),
    );
  }
  const routes = new Map<string, Route>();
  for (const [name, route] of Object.entries(config.routes)) {
    routes.set(
      name,
      Object.freeze({
        name,
        description: route.description,
        targets: route.deployments.flatMap((target) => {
          const deployment = deployments.get(target.deployment);
          return deployment ? [{ deployment, weight: target.weight }] : [];
        }),
        fallbacks: route.fallbacks,
        retry: route.retry ?? config.retry,
        timeoutMs: route.timeoutMs ?? config.server.requestTimeoutMs,
        defaultMaxTokens: route.defaultMaxTokens,
        hidden: route.hidden,
      }),
    );
  }
  return { routes, deployments };
}

/** The route followed by its fallbacks, depth-first, each route once. */
export function routePlan(table: RouteTable, start: string): Route[] {
  const plan: Route[] = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const route = table.routes.get(name);
    if (!route) return;
    plan.push(route);
    for (const fallback of route.fallbacks) visit(fallback);
  };
  visit(start);
  return plan;
}
