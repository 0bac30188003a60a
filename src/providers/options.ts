/**
 * Adapter options live under a deployment's `options` in seed.yaml and are validated against
 * the adapter's own schema when the config is checked. At call time an adapter reads them
 * through `optionsOf`, which parses once per deployment and remembers the result.
 */
import type { z } from 'zod';
import type { DeploymentTarget } from './types.ts';

const cache = new WeakMap<object, WeakMap<DeploymentTarget, unknown>>();

export function optionsOf<Schema extends z.ZodType>(schema: Schema, deployment: DeploymentTarget): z.infer<Schema> {
  let bySchema = cache.get(schema);
  if (!bySchema) {
    bySchema = new WeakMap();
    cache.set(schema, bySchema);
  }
  if (bySchema.has(deployment)) return bySchema.get(deployment) as z.infer<Schema>;
  const parsed = schema.parse(deployment.options) as z.infer<Schema>;
  bySchema.set(deployment, parsed);
  return parsed;
}
