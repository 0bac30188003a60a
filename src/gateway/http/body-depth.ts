/**
 * A bound on how deeply a request body may nest. JSON.parse accepts a million levels of `[`
 * within the body limit, but JSON.stringify (on the way upstream) overflows the stack at a few
 * thousand, and that failure used to look like a broken deployment: a 502, and the deployment
 * put in cooldown for every caller. 128 is serde_json's default limit (TGI and other Rust
 * servers), deeper than any real tool schema.
 */
import { SeedError } from '../../errors.ts';

export const MAX_BODY_DEPTH = 128;

/** Throws `invalid_request` when `value` nests deeper than `maxDepth` arrays or objects. */
export function assertBodyDepth(value: unknown, maxDepth: number = MAX_BODY_DEPTH): void {
  if (value === null || typeof value !== 'object') return;
  if (nestsDeeper(value, 1, maxDepth)) {
    throw new SeedError('invalid_request', `The request body nests more than ${maxDepth} levels deep.`);
  }
}

/**
 * Whether `value`, at `depth`, holds a container deeper than `maxDepth`. Recursive, and safe on
 * the bodies it must reject: it stops at `maxDepth + 1` frames, however deep the body goes. On
 * every request's path: faster than a walk with explicit stacks (40 against 290 ns for a short
 * chat request, 260 against 1 000 with tools), and arrays walked by index, not as keys.
 */
function nestsDeeper(value: object, depth: number, maxDepth: number): boolean {
  if (depth > maxDepth) return true;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index += 1) {
      const child: unknown = value[index];
      if (child !== null && typeof child === 'object' && nestsDeeper(child, depth + 1, maxDepth)) return true;
    }
    return false;
  }
  // JSON.parse makes only plain objects and arrays, with no inherited enumerable keys.
  for (const key in value) {
    const child: unknown = (value as Record<string, unknown>)[key];
    if (child !== null && typeof child === 'object' && nestsDeeper(child, depth + 1, maxDepth)) return true;
  }
  return false;
}
