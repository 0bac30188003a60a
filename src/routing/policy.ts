/**
 * Which deployments may serve a call: the caller's region, and the terms of each deployment
 * against the declared purpose. The router never tries an excluded deployment, so a call
 * declared `train` cannot silently produce outputs whose terms forbid training.
 */
import { SeedError } from '../errors.ts';
import type { Caller } from '../gateway/hooks.ts';
import { allows } from '../terms/permissions.ts';
import { purposeNotAllowedError } from '../terms/purpose.ts';
import type { TermsRegistry } from '../terms/registry.ts';
import { PURPOSES, type Purpose } from '../terms/vocabulary.ts';
import type { Deployment, Route, RouteTable } from './route-table.ts';

export type DeploymentPolicy = (input: {
  deployment: Deployment;
  route: Route;
  purpose: Purpose;
  caller: Caller;
}) => SeedError | null;

export function createDeploymentPolicy(input: { table: RouteTable; terms: TermsRegistry }): DeploymentPolicy {
  // Verdicts are fixed for the life of a config: compute them once, not per request.
  const permitted = new Map<string, ReadonlySet<Purpose>>();
  for (const deployment of input.table.deployments.values()) {
    const profile = deployment.terms ? input.terms.get(deployment.terms) : undefined;
    permitted.set(deployment.name, new Set(profile ? PURPOSES.filter((purpose) => allows({ profile, purpose })) : []));
  }

  return ({ deployment, route, purpose, caller }) => {
    if (caller.region && deployment.region !== caller.region && deployment.region !== 'global') {
      return new SeedError(
        'region_not_allowed',
        `No deployment of route "${route.name}" is in region "${caller.region}", the only region this key may use.`,
        { param: 'model' },
      );
    }
    if (permitted.get(deployment.name)?.has(purpose)) return null;
    return purposeNotAllowedError({
      route: route.name,
      purpose,
      candidates: route.targets.flatMap((target) => {
        const profile = target.deployment.terms ? input.terms.get(target.deployment.terms) : undefined;
        return profile ? [{ deployment: target.deployment.name, profile }] : [];
      }),
    });
  };
}
