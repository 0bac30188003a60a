/**
 * A bound on how deeply a request body may nest. JSON.parse accepts a million levels of `[`
 * within the body limit, but JSON.stringify (on the way upstream) overflows the stack at a few
 * thousand, and that failure used to look like a broken deployment: a 502, and the deployment
 * put in cooldown for every caller. 128 is serde_json's default limit (TGI and other Rust
 * servers), deeper than any real tool schema.
 */
import { SeedError } from '../../errors.ts';

export const MAX_BODY_DEPTH = 128;

/**
 * The walk's stacks, kept between calls (the walk is synchronous, and emptied when it ends):
 * this runs on every request, and a stack of `{ value, depth }` pairs and an `Object.values`
 * array per object were a few hundred bytes of garbage per call.
 */
const pendingValues: object[] = [];
const pendingDepths: number[] = [];

/** Throws `invalid_request` when `value` nests deeper than `maxDepth` arrays or objects. */
export function assertBodyDepth(value: unknown, maxDepth: number = MAX_BODY_DEPTH): void {
  if (value === null || typeof value !== 'object') return;
  // Iterative on purpose: a recursive walk would overflow on exactly the bodies it must reject.
  pendingValues.push(value);
  pendingDepths.push(1);
  try {
    while (pendingValues.length > 0) {
      const next = pendingValues.pop() as Record<string, unknown>;
      const depth = pendingDepths.pop() as number;
      if (depth > maxDepth) {
        throw new SeedError('invalid_request', `The request body nests more than ${maxDepth} levels deep.`);
      }
      // JSON.parse makes only plain objects and arrays, with no inherited enumerable keys.
      for (const key in next) {
        const child = next[key];
        if (child !== null && typeof child === 'object') {
          pendingValues.push(child);
          pendingDepths.push(depth + 1);
        }
      }
    }
  } finally {
    pendingValues.length = 0;
    pendingDepths.length = 0;
  }
}
