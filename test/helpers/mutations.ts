/**
 * Mutations of JSON-like values at a path, for property tests that hold a hand-written check
 * to a schema's verdict (test/wire-chat-completion-check.test.ts, test/wire-chat-request-check.test.ts).
 */

export type Key = string | number;

/** The path to every value inside `value`, itself included. */
export function pathsIn(value: unknown, prefix: readonly Key[] = []): Key[][] {
  const paths: Key[][] = [[...prefix]];
  if (Array.isArray(value)) value.forEach((each, index) => paths.push(...pathsIn(each, [...prefix, index])));
  else if (typeof value === 'object' && value !== null) {
    for (const [key, each] of Object.entries(value)) paths.push(...pathsIn(each, [...prefix, key]));
  }
  return paths;
}

/** A deep copy that keeps what JSON cannot carry (NaN, undefined) and own `__proto__` keys as own keys. */
function copyOf(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copyOf);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, each]) => [key, copyOf(each)]));
  return value;
}

/** Sets an own property, even one named `__proto__`. */
function setOwn(target: object, key: Key, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

export type Mutation =
  | { kind: 'drop' }
  | { kind: 'set'; value: unknown }
  | { kind: 'wrap'; inArray: boolean }
  | { kind: 'add'; key: string; value: unknown };

/** `root` with `mutation` applied at `path` (a fresh copy; `root` is left alone). */
export function mutated(root: unknown, path: readonly Key[], mutation: Mutation): unknown {
  const apply = (value: unknown): unknown => {
    switch (mutation.kind) {
      case 'set':
        return mutation.value;
      case 'wrap':
        return mutation.inArray ? [value] : { value };
      case 'add':
        if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
        setOwn(value, mutation.key, mutation.value);
        return value;
      case 'drop':
        return value;
    }
  };
  const copy = copyOf(root);
  if (path.length === 0) return mutation.kind === 'drop' ? undefined : apply(copy);
  let parent = copy as Record<Key, unknown>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<Key, unknown>;
  const last = path.at(-1)!;
  if (mutation.kind !== 'drop') setOwn(parent, last, apply(parent[last]));
  else if (Array.isArray(parent)) parent.splice(last as number, 1);
  else delete parent[last];
  return copy;
}

/** A value for an assertion message: JSON with non-finite numbers spelled out, cut at 600 characters. */
export function show(value: unknown): string {
  try {
    const text = JSON.stringify(value, (_, each: unknown) => (typeof each === 'number' && !Number.isFinite(each) ? String(each) : each)) ?? String(value);
    return text.length > 600 ? `${text.slice(0, 600)}…` : text;
  } catch {
    return String(value);
  }
}
