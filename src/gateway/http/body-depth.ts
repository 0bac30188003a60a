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
  // Iterative on purpose: a recursive walk would overflow on exactly the bodies it must reject.
  const pending: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (pending.length > 0) {
    const next = pending.pop() as { value: unknown; depth: number };
    if (next.value === null || typeof next.value !== 'object') continue;
    const depth = next.depth + 1;
    if (depth > maxDepth) {
      throw new SeedError('invalid_request', `The request body nests more than ${maxDepth} levels deep.`);
    }
    for (const child of Object.values(next.value)) {
      if (child !== null && typeof child === 'object') pending.push({ value: child, depth });
    }
  }
}
