/**
 * `name@version` references. A version is the increasing number (`chats@3`) or a prefix of at
 * least 8 hex digits of the content hash (`chats@9f86d081`); no version means the latest.
 */
import { SeedError } from '../errors.ts';

export interface DatasetReference {
  readonly name: string;
  readonly version: { readonly kind: 'latest' } | { readonly kind: 'number'; readonly value: number } | { readonly kind: 'hash'; readonly prefix: string };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Checks a dataset name: letters, digits, `.`, `_`, `-`; starts with a letter or digit. */
export function checkDatasetName(name: string): string {
  if (!NAME.test(name)) {
    throw new SeedError('invalid_request', `invalid dataset name "${name}": use letters, digits, ".", "_" and "-"`, { param: 'name' });
  }
  return name;
}

/**
 * Parses `name`, `name@3` or `name@9f86d081…`.
 *
 * @example
 * ```ts
 * parseDatasetReference('chats@3'); // { name: 'chats', version: { kind: 'number', value: 3 } }
 * ```
 */
export function parseDatasetReference(text: string): DatasetReference {
  const at = text.lastIndexOf('@');
  const name = checkDatasetName(at === -1 ? text : text.slice(0, at));
  if (at === -1) return { name, version: { kind: 'latest' } };
  const version = text.slice(at + 1);
  if (/^[1-9][0-9]{0,8}$/.test(version)) return { name, version: { kind: 'number', value: Number(version) } };
  if (/^[0-9a-f]{8,64}$/.test(version)) return { name, version: { kind: 'hash', prefix: version } };
  throw new SeedError('invalid_request', `invalid version "${version}" in "${text}": expected a number or at least 8 hex digits of the hash`);
}

/** `name@version`. */
export function formatReference({ name, version }: { name: string; version: number }): string {
  return `${name}@${version}`;
}
